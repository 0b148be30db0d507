#!/usr/bin/python3
"""Checks of the reference's own pieces against hand-worked values and textbook definitions.

Runs in a few seconds; prints one line per check; exit status 1 if any check fails.
    /usr/bin/python3 tests/reference/self_test.py
"""

import json
import math
import os
import struct
import sys
import tempfile
import traceback

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare_logits  # noqa: E402
import deepseek_ref as ref  # noqa: E402
import safetensors_np as st  # noqa: E402

torch.set_num_threads(1)
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def close(a, b, tol=1e-12, what=""):
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
    err = (a - b).abs().max().item() if a.numel() else 0.0
    assert err <= tol, f"{what}: max abs error {err:.3e} > {tol:.1e}\n{a}\n{b}"


# ============================================================================ test-only writers

def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> (dtype name, numpy array of the raw storage)."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, arr) in tensors.items():
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def f32_to_bf16_bits(x):
    """Round-to-nearest-even float32 -> bf16 bit pattern (test helper, independent of the reader)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = u + 0x7FFF + ((u >> 16) & 1)
    return (u >> 16).astype(np.uint16)


def e4m3_encode(x):
    """Nearest finite E4M3FN byte for each value of x (test helper)."""
    table = st.E4M3FN_TABLE.astype(np.float64)
    finite = np.nonzero(np.isfinite(table))[0]
    vals = table[finite]
    order = np.argsort(vals, kind="stable")
    vals, codes = vals[order], finite[order]
    x = np.clip(np.asarray(x, dtype=np.float64), -448.0, 448.0)
    pos = np.clip(np.searchsorted(vals, x), 1, len(vals) - 1)
    lo, hi = vals[pos - 1], vals[pos]
    pick = np.where(np.abs(x - lo) <= np.abs(hi - x), pos - 1, pos)
    return codes[pick].astype(np.uint8)


def quantize_fp8_blocks(w, block=128):
    """w [O, I] float -> (e4m3 bytes [O, I], scale_inv float32 [ceil(O/128), ceil(I/128)])."""
    O, I = w.shape
    bo, bi = -(-O // block), -(-I // block)
    scale = np.zeros((bo, bi), dtype=np.float32)
    q = np.zeros((O, I), dtype=np.uint8)
    for a in range(bo):
        for b in range(bi):
            blk = w[a * block:(a + 1) * block, b * block:(b + 1) * block]
            s = np.float32(max(np.abs(blk).max(), 1e-12) / 448.0)
            scale[a, b] = s
            q[a * block:(a + 1) * block, b * block:(b + 1) * block] = e4m3_encode(blk / s)
    return q, scale


TINY_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "vocab_size": 50, "hidden_size": 136,
    "intermediate_size": 72, "moe_intermediate_size": 24, "num_hidden_layers": 3,
    "num_attention_heads": 3, "num_key_value_heads": 3, "q_lora_rank": 40, "kv_lora_rank": 32,
    "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 12, "n_routed_experts": 8,
    "n_shared_experts": 1, "num_experts_per_tok": 3, "first_k_dense_replace": 1,
    "moe_layer_freq": 1, "n_group": 4, "topk_group": 2, "topk_method": "noaux_tc",
    "scoring_func": "sigmoid", "norm_topk_prob": True, "routed_scaling_factor": 2.5,
    "rope_theta": 10000, "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
    "max_position_embeddings": 4096, "num_nextn_predict_layers": 1,
    "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 64,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
}


def tiny_weights(cfg, seed=0):
    """name -> float32 array, random with activations O(1); includes one MTP layer to be ignored."""
    rng = np.random.default_rng(seed)
    c = ref.Config(cfg)
    D, H = c.hidden_size, c.num_attention_heads
    dn, dr, dv, dc = c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim, c.kv_lora_rank
    w = {}

    def lin(name, o, i):
        w[name + ".weight"] = (rng.standard_normal((o, i)) / math.sqrt(i)).astype(np.float32)

    def norm(name, n):
        w[name + ".weight"] = (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w["model.embed_tokens.weight"] = rng.standard_normal((c.vocab_size, D)).astype(np.float32)
    for i in range(c.num_hidden_layers + 1):  # the last one is an MTP layer
        p = f"model.layers.{i}"
        norm(p + ".input_layernorm", D)
        norm(p + ".post_attention_layernorm", D)
        a = p + ".self_attn"
        if c.q_lora_rank:
            lin(a + ".q_a_proj", c.q_lora_rank, D)
            norm(a + ".q_a_layernorm", c.q_lora_rank)
            lin(a + ".q_b_proj", H * (dn + dr), c.q_lora_rank)
        else:
            lin(a + ".q_proj", H * (dn + dr), D)
        lin(a + ".kv_a_proj_with_mqa", dc + dr, D)
        norm(a + ".kv_a_layernorm", dc)
        lin(a + ".kv_b_proj", H * (dn + dv), dc)
        lin(a + ".o_proj", D, H * dv)
        m = p + ".mlp"
        if c.is_moe_layer(i):
            F = c.moe_intermediate_size
            w[m + ".gate.weight"] = (rng.standard_normal((c.n_routed_experts, D)) / math.sqrt(D)).astype(np.float32)
            if c.topk_method == "noaux_tc":
                w[m + ".gate.e_score_correction_bias"] = (0.05 * rng.standard_normal(c.n_routed_experts)).astype(np.float32)
            for e in range(c.n_routed_experts):
                for n, o, i_ in (("gate_proj", F, D), ("up_proj", F, D), ("down_proj", D, F)):
                    lin(f"{m}.experts.{e}.{n}", o, i_)
            Fs = F * c.n_shared_experts
            for n, o, i_ in (("gate_proj", Fs, D), ("up_proj", Fs, D), ("down_proj", D, Fs)):
                lin(f"{m}.shared_experts.{n}", o, i_)
        else:
            for n, o, i_ in (("gate_proj", c.intermediate_size, D), ("up_proj", c.intermediate_size, D),
                             ("down_proj", D, c.intermediate_size)):
                lin(f"{m}.{n}", o, i_)
    norm("model.norm", D)
    lin("lm_head", c.vocab_size, D)
    return w


def is_fp8_linear(name):
    return (name.startswith("model.layers.") and name.endswith("proj.weight"))


def save_model(d, cfg, weights, fmt="F32", shards=1):
    """Write config.json and the weights as F32, F64, BF16 or FP8 (V3 style), in `shards` files."""
    os.makedirs(d, exist_ok=True)
    cfg = dict(cfg)
    if fmt == "FP8":
        cfg["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                      "weight_block_size": [128, 128]}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    tensors = {}
    for name, a in weights.items():
        if fmt == "FP8" and is_fp8_linear(name):
            q, s = quantize_fp8_blocks(a)
            tensors[name] = ("F8_E4M3", q)
            tensors[name + "_scale_inv"] = ("F32", s)
        elif fmt == "BF16" and not name.endswith("e_score_correction_bias"):
            tensors[name] = ("BF16", f32_to_bf16_bits(a))
        elif fmt == "F64":
            tensors[name] = ("F64", np.asarray(a, dtype=np.float64))
        else:
            tensors[name] = ("F32", a)
    names = sorted(tensors)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors, {"format": "pt"})
        return
    weight_map = {}
    for k in range(shards):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[k::shards]}
        write_safetensors(os.path.join(d, fname), part)
        weight_map.update({n: fname for n in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)


# ============================================================================ dtype decoding

@check
def e4m3_known_bytes():
    t = st.e4m3_to_f32(np.array([0x7E, 0x01, 0x00, 0x80, 0x38, 0x08, 0x07, 0xFE, 0x40, 0xB8, 0x3C],
                                dtype=np.uint8))
    want = [448.0, 2.0 ** -9, 0.0, -0.0, 1.0, 2.0 ** -6, 7 * 2.0 ** -9, -448.0, 2.0, -1.0, 1.5]
    close(t, want, 0, "e4m3 values")
    assert np.signbit(t[3]) and not np.signbit(t[2]), "e4m3 signed zero"
    nan = st.e4m3_to_f32(np.array([0x7F, 0xFF], dtype=np.uint8))
    assert np.all(np.isnan(nan)), "0x7f / 0xff must be NaN"
    assert np.sum(np.isnan(st.E4M3FN_TABLE)) == 2, "E4M3FN has exactly two NaN codes and no inf"
    assert not np.any(np.isinf(st.E4M3FN_TABLE))


@check
def e4m3_normals_match_float32_bit_layout():
    # A normal e4m3 value s eeee mmm is the float32 with the same sign, exponent e - 7 + 127 and
    # mantissa m in its top three bits: build it from bits and compare with the table.
    for b in range(256):
        e, m, s = (b >> 3) & 0xF, b & 7, b >> 7
        if e == 0 or (b & 0x7F) == 0x7F:
            continue
        bits = (s << 31) | ((e - 7 + 127) << 23) | (m << 20)
        want = np.array([bits], dtype=np.uint32).view(np.float32)[0]
        assert st.E4M3FN_TABLE[b] == want, f"byte {b:#x}: {st.E4M3FN_TABLE[b]} != {want}"
    # subnormals are evenly spaced by 2^-9 below the smallest normal 2^-6
    close(st.E4M3FN_TABLE[0:8], np.arange(8) * 2.0 ** -9, 0, "e4m3 subnormals")


@check
def bf16_known_bits():
    got = st.bf16_to_f32(np.array([0x3F80, 0xC000, 0x7F80, 0x0001, 0x4049, 0x0000, 0x8000], dtype=np.uint16))
    assert got[0] == 1.0 and got[1] == -2.0 and np.isinf(got[2]) and got[2] > 0
    assert got[3] == 2.0 ** -133, "smallest bf16 subnormal"
    assert got[4] == np.float32(3.140625), "0x4049 = 3.140625"
    assert got[5] == 0 and np.signbit(got[6])
    x = np.float32([1.0, -0.15625, 65504.0, 3.0e38])  # exactly representable in bf16? check round trip
    back = st.bf16_to_f32(f32_to_bf16_bits(x))
    assert back[0] == 1.0 and back[1] == -0.15625


@check
def safetensors_round_trip_and_sharding():
    rng = np.random.default_rng(1)
    a32 = rng.standard_normal((3, 5)).astype(np.float32)
    a16 = rng.standard_normal((4,)).astype(np.float16)
    bf = f32_to_bf16_bits(np.float32([[1.5, -2.25], [0.0, 1024.0]]))
    with tempfile.TemporaryDirectory() as d:
        write_safetensors(os.path.join(d, "model-00001-of-00002.safetensors"),
                          {"a": ("F32", a32), "scalar": ("F32", np.array(7.0, dtype=np.float32))},
                          {"format": "pt"})
        write_safetensors(os.path.join(d, "model-00002-of-00002.safetensors"),
                          {"h": ("F16", a16), "b": ("BF16", bf), "q": ("F8_E4M3", np.array([0x7E, 0x01], np.uint8))})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                      "scalar": "model-00001-of-00002.safetensors",
                                      "h": "model-00002-of-00002.safetensors",
                                      "b": "model-00002-of-00002.safetensors",
                                      "q": "model-00002-of-00002.safetensors"}}, f)
        ck = st.Checkpoint(d)
        assert sorted(ck.names()) == ["a", "b", "h", "q", "scalar"]
        assert np.array_equal(ck.get("a"), a32)
        assert ck.get("scalar").shape == () and ck.get("scalar") == 7.0
        assert np.array_equal(ck.get("h"), a16.astype(np.float32))
        assert np.array_equal(ck.get("b"), np.float32([[1.5, -2.25], [0.0, 1024.0]]))
        assert np.array_equal(ck.get("q"), np.float32([448.0, 2.0 ** -9]))
        assert ck.dtype("q") == "F8_E4M3" and ck.shape("a") == (3, 5)


@check
def safetensors_rejects_broken_files():
    with tempfile.TemporaryDirectory() as d:
        good = os.path.join(d, "x.safetensors")
        write_safetensors(good, {"a": ("F32", np.zeros((2, 2), np.float32))})
        blob = open(good, "rb").read()
        hlen = struct.unpack("<Q", blob[:8])[0]
        header = json.loads(blob[8:8 + hlen])
        cases = {
            "truncated": blob[:-4],
            "short": blob[:5],
            "huge header length": struct.pack("<Q", 1 << 40) + blob[8:],
            "bad json": struct.pack("<Q", hlen) + b"{" * hlen + blob[8 + hlen:],
        }
        for label, h in (("offsets past end", {"a": {**header["a"], "data_offsets": [0, 32]}}),
                         ("size mismatch", {"a": {**header["a"], "shape": [2, 3]}}),
                         ("unknown dtype", {"a": {**header["a"], "dtype": "F7"}})):
            hb = json.dumps(h).encode()
            cases[label] = struct.pack("<Q", len(hb)) + hb + blob[8 + hlen:]
        for label, data in cases.items():
            p = os.path.join(d, "bad.safetensors")
            open(p, "wb").write(data)
            try:
                st.SafetensorsFile(p)
            except st.SafetensorsError as err:
                assert "bad.safetensors" in str(err), f"{label}: error does not name the file: {err}"
            else:
                raise AssertionError(f"{label}: accepted a broken file")


@check
def fp8_block_dequantisation_with_partial_blocks():
    # weight [130, 260]: 2 x 3 blocks of 128, the last row/column blocks partial
    q = torch.ones(130, 260, dtype=torch.float64)
    s = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=torch.float64)
    w = ref.dequantize_blocks(q, s, (128, 128))
    assert w[0, 0] == 1 and w[127, 127] == 1 and w[127, 128] == 2 and w[0, 256] == 3
    assert w[128, 0] == 4 and w[129, 255] == 5 and w[129, 259] == 6
    try:
        ref.dequantize_blocks(q, s[:, :2], (128, 128))
    except ValueError:
        pass
    else:
        raise AssertionError("accepted a scale of the wrong shape")


# ============================================================================ norms, MLP

@check
def rms_norm_hand_value():
    x = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    got = ref.rms_norm(x, torch.tensor([1.0, 2.0], dtype=torch.float64), 0.0)
    r = math.sqrt((9 + 16) / 2)
    close(got, [[3 / r, 8 / r]], 1e-15, "rms_norm")


@check
def gated_mlp_hand_value():
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    wg = torch.tensor([[1.0, 0.0]], dtype=torch.float64)   # gate = 1
    wu = torch.tensor([[0.0, 1.0]], dtype=torch.float64)   # up = 2
    wd = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
    silu1 = 1.0 / (1.0 + math.exp(-1.0))
    close(ref.gated_mlp(x, wg, wu, wd), [[2 * silu1, -2 * silu1]], 1e-15, "swiglu")


# ============================================================================ RoPE / YaRN

def cfg_with(**over):
    d = dict(TINY_V3)
    d.update(over)
    return ref.Config(d)


@check
def yarn_factor_one_is_plain_rope():
    rs = {"type": "yarn", "factor": 1.0, "original_max_position_embeddings": 4096, "beta_fast": 32,
          "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}
    c = cfg_with(qk_rope_head_dim=64, rope_scaling=rs)
    inv, mag = ref.rope_inv_freq(c)
    close(inv, [10000.0 ** (-2 * i / 64) for i in range(32)], 1e-15, "inv_freq")
    assert mag == 1.0
    close(ref.softmax_scale(c), (16 + 64) ** -0.5, 1e-15, "softmax scale with factor 1")
    c0 = cfg_with(qk_rope_head_dim=64, rope_scaling=None)
    close(ref.rope_inv_freq(c0)[0], inv, 1e-15, "no rope_scaling")


@check
def yarn_v3_hand_worked():
    # DeepSeek-V3: dr=64, base 1e4, original 4096, beta_fast 32, beta_slow 1, factor 40.
    # correction dim(32) = 64 ln(4096 / (64 pi)) / (2 ln 1e4) = 10.47 -> floor 10
    # correction dim(1)  = 64 ln(4096 / (2 pi))  / (2 ln 1e4) = 22.50 -> ceil 23
    assert ref.yarn_correction_range(32, 1, 64, 10000, 4096) == (10, 23)
    close(ref.yarn_correction_dim(32, 64, 10000, 4096), 64 * math.log(4096 / (64 * math.pi)) / (2 * math.log(1e4)), 1e-12)
    cfg = json.load(open(os.path.join(HERE, "..", "..", "..", "shared", "configs", "deepseek-v3.json"))) \
        if os.path.exists(os.path.join(HERE, "..", "..", "..", "shared", "configs", "deepseek-v3.json")) else None
    rs = {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32,
          "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}
    if cfg is not None:
        assert cfg["rope_scaling"]["factor"] == 40 and cfg["rope_scaling"]["beta_fast"] == 32
    c = cfg_with(qk_rope_head_dim=64, qk_nope_head_dim=128, rope_scaling=rs)
    inv, mag = ref.rope_inv_freq(c)
    plain = torch.tensor([10000.0 ** (-2 * i / 64) for i in range(32)], dtype=torch.float64)
    close(inv[:11], plain[:11], 1e-15, "pairs 0..10 extrapolated (unchanged)")
    close(inv[23:], plain[23:] / 40, 1e-15, "pairs 23..31 interpolated (/40)")
    r = (16 - 10) / 13  # ramp at pair 16
    close(inv[16], plain[16] / 40 * r + plain[16] * (1 - r), 1e-15, "pair 16 blended")
    assert mag == 1.0
    m = 0.1 * math.log(40) + 1
    close(ref.softmax_scale(c), 192 ** -0.5 * m * m, 1e-15, "V3 softmax scale")
    # V2-Lite: mscale = mscale_all_dim = 0.707 -> rope magnitude 1, softmax scale uses 0.707
    rs2 = dict(rs, mscale=0.707, mscale_all_dim=0.707)
    c2 = cfg_with(qk_rope_head_dim=64, qk_nope_head_dim=128, rope_scaling=rs2)
    m2 = 0.1 * 0.707 * math.log(40) + 1
    close(ref.softmax_scale(c2), 192 ** -0.5 * m2 * m2, 1e-15, "V2-Lite softmax scale")
    close(ref.rope_inv_freq(c2)[1], 1.0, 1e-15, "V2-Lite rope magnitude")


@check
def rope_hand_value_and_relative_position():
    # one pair, theta = 1: (1, 0) at position 1 rotates to (cos 1, sin 1)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)  # [T=2, 2]
    cos = torch.tensor([[math.cos(1.0)], [math.cos(2.0)]], dtype=torch.float64)
    sin = torch.tensor([[math.sin(1.0)], [math.sin(2.0)]], dtype=torch.float64)
    close(ref.apply_rope(x, cos, sin), [[math.cos(1), math.sin(1)], [-math.sin(2), math.cos(2)]], 1e-15, "rope pair")
    # pairs are consecutive elements: rotating only pair 1 leaves elements 0, 1 of pair 0 alone
    y = ref.apply_rope(torch.tensor([[5.0, 6.0, 1.0, 0.0]], dtype=torch.float64),
                       torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 1.0]], dtype=torch.float64))
    close(y, [[5.0, 6.0, 0.0, 1.0]], 1e-15, "interleaved pairs")
    # <R_m q, R_n k> depends only on m - n, and rotation keeps norms (magnitude 1 here)
    c = cfg_with()
    cs, sn = ref.rope_tables(c, torch.arange(12))
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 8, generator=g, dtype=torch.float64).expand(12, 8)
    k = torch.randn(1, 8, generator=g, dtype=torch.float64).expand(12, 8)
    rq, rk = ref.apply_rope(q, cs, sn), ref.apply_rope(k, cs, sn)
    close(rq.norm(dim=-1), q.norm(dim=-1), 1e-12, "rope keeps norm")
    close((rq[7] * rk[3]).sum(), (rq[5] * rk[1]).sum(), 1e-12, "relative position")
    # head broadcast: [T, H, dr] rotates each head like [T, dr]
    qh = torch.randn(12, 3, 8, generator=g, dtype=torch.float64)
    close(ref.apply_rope(qh, cs, sn)[:, 1], ref.apply_rope(qh[:, 1], cs, sn), 0, "rope per head")


@check
def rope_interleaved_equals_deinterleave_then_rotate_half():
    # A second textbook formulation: gather the even elements then the odd ones, and rotate
    # halves, y = x' cos(cat(f, f)) + rotate_half(x') sin(cat(f, f)) with rotate_half(a, b) =
    # (-b, a). It is the complex-pair rotation up to that fixed permutation of the output, so
    # every q.k product is the same.
    c = cfg_with()
    cs, sn = ref.rope_tables(c, torch.arange(9))                           # [T, dr/2]
    g = torch.Generator().manual_seed(2)
    x = torch.randn(9, 3, 8, generator=g, dtype=torch.float64)             # [T, H, dr]
    perm = torch.cat((torch.arange(0, 8, 2), torch.arange(1, 8, 2)))
    xp = x[..., perm]
    cos2, sin2 = torch.cat((cs, cs), -1)[:, None, :], torch.cat((sn, sn), -1)[:, None, :]
    rot = torch.cat((-xp[..., 4:], xp[..., :4]), -1)
    other = xp * cos2 + rot * sin2
    close(ref.apply_rope(x, cs, sn)[..., perm], other, 1e-14, "two rope formulations")


# ============================================================================ attention

@check
def attention_one_token_is_v_and_causal():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(4, 2, 5, generator=g, dtype=torch.float64)
    k = torch.randn(4, 2, 5, generator=g, dtype=torch.float64)
    v = torch.randn(4, 2, 3, generator=g, dtype=torch.float64)
    close(ref.causal_attention(q[:1], k[:1], v[:1], 0.7), v[:1], 1e-15, "one token -> v")
    full = ref.causal_attention(q, k, v, 0.7)
    close(full[0], v[0], 1e-15, "position 0 sees only itself")
    close(full[:2], ref.causal_attention(q[:2], k[:2], v[:2], 0.7), 1e-15, "prefix unchanged by later tokens")
    # position 1 by hand, head 0
    s = torch.stack([(q[1, 0] * k[j, 0]).sum() * 0.7 for j in range(2)])
    p = torch.exp(s - s.max())
    p = p / p.sum()
    close(full[1, 0], p[0] * v[0, 0] + p[1] * v[1, 0], 1e-14, "position 1 by hand")


# ============================================================================ routing

def routing_cfg(method, scoring="sigmoid", K=2, G=4, topk_group=2, norm=True, scale=1.0, arch="DeepseekV3ForCausalLM"):
    return cfg_with(architectures=[arch], topk_method=method, scoring_func=scoring, num_experts_per_tok=K,
                    n_group=G, topk_group=topk_group, norm_topk_prob=norm, routed_scaling_factor=scale)


@check
def routing_group_limited_greedy_hand_worked():
    # 8 experts in 4 groups {0,1} {2,3} {4,5} {6,7}, K = 3, topk_group = 2.
    s = torch.tensor([[0.30, 0.01, 0.29, 0.28, 0.295, 0.02, 0.10, 0.05]], dtype=torch.float64)
    # group score = max in group: g0 .30, g1 .29, g2 .295, g3 .10 -> keep g0, g2;
    # top-3 within {0, 1, 4, 5}: 0 (.30), 4 (.295), 5 (.02).  Plain greedy: 0, 4, 2.
    idx, gate = ref.select_experts(s, routing_cfg("group_limited_greedy", "softmax", K=3, norm=False))
    assert sorted(idx[0].tolist()) == [0, 4, 5], idx
    close(gate[0].sort().values, torch.tensor([0.02, 0.295, 0.30], dtype=torch.float64), 0, "gates = scores")
    idx, _ = ref.select_experts(s, routing_cfg("greedy", "softmax", K=3, norm=False))
    assert sorted(idx[0].tolist()) == [0, 2, 4], idx
    # topk_group 1 -> only group 0: experts 0 and 1
    idx, _ = ref.select_experts(s, routing_cfg("group_limited_greedy", "softmax", topk_group=1, norm=False))
    assert sorted(idx[0].tolist()) == [0, 1], idx


@check
def routing_noaux_tc_hand_worked():
    # sigmoid affinities (given directly as scores), bias shifts the choice only.
    s = torch.tensor([[0.90, 0.10, 0.50, 0.45, 0.60, 0.05, 0.20, 0.20]], dtype=torch.float64)
    b = torch.tensor([-0.50, 0.00, 0.10, 0.10, 0.00, 0.00, 0.00, 0.00], dtype=torch.float64)
    b[4] = -0.01
    # choice = s + b = .40 .10 | .60 .55 | .59 .05 | .20 .20
    # group score = sum of its top-2 choices: g0 .50, g1 1.15, g2 .64, g3 .40 -> keep g1, g2;
    # top-2 choice within {2, 3, 4, 5}: 2 (.60) and 4 (.59). Expert 0, the best unbiased
    # score, is excluded by its bias.
    idx, gate = ref.select_experts(s, routing_cfg("noaux_tc", norm=True, scale=2.5), bias=b)
    order = idx[0].argsort()
    assert idx[0][order].tolist() == [2, 4], idx
    # gates are the UNBIASED scores .50 and .60, normalised to sum 1, times 2.5
    close(gate[0][order], torch.tensor([0.50, 0.60], dtype=torch.float64) / 1.10 * 2.5, 1e-14, "noaux_tc gates")
    # group score is the sum of the top two, not the max: one very large expert alone loses
    s2 = torch.tensor([[0.95, 0.00, 0.50, 0.50, 0.48, 0.48, 0.00, 0.00]], dtype=torch.float64)
    z = torch.zeros(8, dtype=torch.float64)
    idx, _ = ref.select_experts(s2, routing_cfg("noaux_tc", topk_group=1, norm=True), bias=z)
    # top-2 sums: g0 .95, g1 1.00, g2 .96 -> g1, though g0 has the largest single value
    assert sorted(idx[0].tolist()) == [2, 3], idx
    # without norm_topk_prob: gates are raw scores times the scale
    idx, gate = ref.select_experts(s2, routing_cfg("noaux_tc", topk_group=4, norm=False, scale=2.0), bias=z)
    close(gate[0].sort().values, torch.tensor([0.50, 0.95], dtype=torch.float64) * 2.0, 1e-15, "unnormalised")


@check
def routing_norm_and_scale_per_architecture():
    s = torch.tensor([[0.1, 0.2, 0.3, 0.4]], dtype=torch.float64)
    for arch, want_sum in (("DeepseekV3ForCausalLM", 3.0), ("DeepseekV2ForCausalLM", 1.0)):
        _, gate = ref.select_experts(s, routing_cfg("greedy", "softmax", K=2, G=1, topk_group=1, norm=True,
                                                   scale=3.0, arch=arch))
        close(gate.sum(), want_sum, 1e-14, f"{arch}: normalised gates times scale")
        close(gate[0].sort().values, torch.tensor([0.3, 0.4], dtype=torch.float64) / 0.7 * want_sum, 1e-14)
    # sigmoid with all chosen scores zero: the 1e-20 keeps it finite
    _, gate = ref.select_experts(torch.zeros(1, 4, dtype=torch.float64),
                                 routing_cfg("greedy", K=2, G=1, topk_group=1, norm=True))
    assert torch.all(gate == 0)


@check
def expert_scores_definitions():
    l = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    close(ref.expert_scores(l, "softmax"), [[0.25, 0.75]], 1e-15, "softmax")
    close(ref.expert_scores(l, "sigmoid"), [[0.5, 0.75]], 1e-15, "sigmoid")


# ============================================================================ whole model

@check
def config_rejects_bad_values():
    for over, field in (({"architectures": ["LlamaForCausalLM"]}, "architectures"),
                        ({"topk_method": "best"}, "topk_method"),
                        ({"scoring_func": "relu"}, "scoring_func"),
                        ({"kv_lora_rank": None}, "kv_lora_rank")):
        try:
            cfg_with(**over)
        except ValueError as err:
            assert field in str(err), err
        else:
            raise AssertionError(f"accepted {over}")
    for name in ("deepseek-v3.json", "deepseek-v2-lite.json"):
        p = os.path.join(HERE, "..", "..", "..", "shared", "configs", name)
        if os.path.exists(p):
            c = ref.Config(json.load(open(p)))
            assert c.qk_head_dim == 192
    c = ref.Config(TINY_V3)
    assert [c.is_moe_layer(i) for i in range(3)] == [False, True, True]
    c2 = cfg_with(moe_layer_freq=2, first_k_dense_replace=0)
    assert [c2.is_moe_layer(i) for i in range(4)] == [True, False, True, False]


@check
def model_zero_blocks_gives_norm_head():
    # every attention and MLP output projection zero -> logits = lm_head(RMSNorm(embedding))
    w = tiny_weights(TINY_V3, seed=3)
    for n in w:
        if n.endswith("o_proj.weight") or n.endswith("down_proj.weight"):
            w[n] = np.zeros_like(w[n])
    with tempfile.TemporaryDirectory() as d:
        save_model(d, TINY_V3, w)
        logits = ref.forward(d, [4, 9])
    e = torch.from_numpy(w["model.embed_tokens.weight"][[4, 9]].astype(np.float64))
    h = e / torch.sqrt((e * e).mean(-1, keepdim=True) + 1e-6) * torch.from_numpy(w["model.norm.weight"].astype(np.float64))
    close(logits, h @ torch.from_numpy(w["lm_head.weight"].astype(np.float64)).t(), 1e-10, "norm + head")


@check
def model_is_causal_and_formats_agree():
    w = tiny_weights(TINY_V3, seed=4)
    tokens = [5, 17, 30, 2, 49, 11, 0]
    with tempfile.TemporaryDirectory() as d:
        f32 = os.path.join(d, "f32")
        save_model(f32, TINY_V3, w, "F32", shards=1)
        full = ref.forward(f32, tokens)
        assert full.shape == (7, 50) and torch.all(torch.isfinite(full))
        close(ref.forward(f32, tokens[:3]), full[:3], 1e-12, "prefix logits unchanged by later tokens")
        # an MTP layer (index num_hidden_layers) exists in the file and must not matter
        w2 = dict(w)
        for n in list(w2):
            if n.startswith(f"model.layers.{TINY_V3['num_hidden_layers']}."):
                w2[n] = w2[n] * 7
        f32b = os.path.join(d, "f32b")
        save_model(f32b, TINY_V3, w2, "F32", shards=3)  # sharded too
        close(ref.forward(f32b, tokens), full, 0, "MTP layer ignored, sharding transparent")

        # FP8: the reference on the FP8 files equals the reference on F32 files holding exactly
        # the dequantised values (q * scale per 128x128 block; hidden 136 makes partial blocks)
        fp8 = os.path.join(d, "fp8")
        save_model(fp8, TINY_V3, w, "FP8")
        deq = {}
        for n, a in w.items():
            if is_fp8_linear(n):
                q, s = quantize_fp8_blocks(a)
                s_full = np.repeat(np.repeat(s, 128, 0), 128, 1)[:a.shape[0], :a.shape[1]]
                deq[n] = st.e4m3_to_f32(q).astype(np.float64) * s_full  # exact in f64, not in f32
            else:
                deq[n] = a
        f32d = os.path.join(d, "f64d")
        save_model(f32d, TINY_V3, deq, "F64")
        got = ref.forward(fp8, tokens)
        close(got, ref.forward(f32d, tokens), 1e-12, "fp8 == its dequantised values")
        rel, _ = compare_logits.compare(full.numpy(), got.numpy())
        # e4m3 keeps 3 mantissa bits (BF16 keeps 7): ~16x BF16's ~0.7% logit error here, plus
        # the odd routing flip; a sanity bound only
        assert rel.max() < 0.6, f"fp8 far from f32: {rel.max()}"


@check
def compare_logits_bounds():
    a = np.array([[3.0, 4.0], [1.0, 0.0]])
    rel, agree = compare_logits.compare(a, a + np.array([[0.0, 0.05], [0.0, 2.0]]))
    close(rel, [0.01, 2.0], 1e-12, "rel l2")
    assert agree == 0.5
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "a.npy"), a.astype(np.float32))
        np.save(os.path.join(d, "b.npy"), (a * (1 + 1e-6)).astype(np.float32))
        args = ["--ref", os.path.join(d, "a.npy"), "--got", os.path.join(d, "b.npy")]
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            assert compare_logits.main(args + ["--max-rel-l2", "1e-4"]) == 0
            assert compare_logits.main(args + ["--max-rel-l2", "1e-8"]) == 1
            assert compare_logits.main(args + ["--max-rel-l2", "1", "--min-argmax-agree", "1.0"]) == 0


def main():
    failed = 0
    for fn in CHECKS:
        try:
            fn()
            print(f"ok   {fn.__name__}")
        except Exception:  # noqa: BLE001 - report every failing check
            failed += 1
            print(f"FAIL {fn.__name__}")
            traceback.print_exc()
    print(f"{len(CHECKS) - failed}/{len(CHECKS)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
