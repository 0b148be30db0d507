#!/usr/bin/python3
"""Independent reference forward pass for DeepseekV2ForCausalLM / DeepseekV3ForCausalLM.

Written from the DeepSeek-V2 paper (arXiv 2405.04434: MLA, DeepSeekMoE, YaRN for the decoupled
RoPE key) and the DeepSeek-V3 paper (arXiv 2412.19437: sigmoid affinities, auxiliary-loss-free
bias that only chooses experts, node/group-limited routing, FP8 128x128 block weights), plus the
meaning of the config.json fields of the published checkpoints. It does not share code with the
C++ engine; it is meant to be read next to the papers, one function per equation group.

All arithmetic is float64 by default. Weights are decoded from the checkpoint dtype (BF16, F16,
F32, or F8_E4M3 times its 128x128 `weight_scale_inv` block) straight to float64.

Usage:
    /usr/bin/python3 tests/reference/deepseek_ref.py --model DIR --tokens 5,17,301 --out ref.npy
writes float32 logits [n_tokens, vocab_size], one row per position 0..n-1 of one causal sequence.

Notation: T tokens, D hidden_size, H heads, dn qk_nope_head_dim, dr qk_rope_head_dim,
dv v_head_dim, dc kv_lora_rank, dq q_lora_rank, E routed experts, K experts per token.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import Checkpoint  # noqa: E402

ARCHITECTURES = ("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM")


# ============================================================================ configuration

class Config:
    """The config.json fields that change the forward pass, with the defaults a missing optional
    field takes."""

    def __init__(self, d):
        arch = (d.get("architectures") or [None])[0]
        if arch not in ARCHITECTURES:
            raise ValueError(f"architectures: {arch!r} is not one of {ARCHITECTURES}")
        self.arch = arch
        req = lambda k: _require(d, k)  # noqa: E731
        self.vocab_size = req("vocab_size")
        self.hidden_size = req("hidden_size")
        self.intermediate_size = req("intermediate_size")
        self.num_hidden_layers = req("num_hidden_layers")
        self.num_attention_heads = req("num_attention_heads")
        self.q_lora_rank = d.get("q_lora_rank")  # None -> direct q_proj
        self.kv_lora_rank = req("kv_lora_rank")
        self.qk_nope_head_dim = req("qk_nope_head_dim")
        self.qk_rope_head_dim = req("qk_rope_head_dim")
        self.v_head_dim = req("v_head_dim")
        self.rms_norm_eps = d.get("rms_norm_eps", 1e-6)
        self.rope_theta = d.get("rope_theta", 10000.0)
        self.rope_scaling = d.get("rope_scaling")
        self.tie_word_embeddings = d.get("tie_word_embeddings", False)
        # MoE
        self.n_routed_experts = d.get("n_routed_experts")  # None -> every layer dense
        self.n_shared_experts = d.get("n_shared_experts") or 0
        self.moe_intermediate_size = d.get("moe_intermediate_size")
        self.num_experts_per_tok = d.get("num_experts_per_tok")
        self.first_k_dense_replace = d.get("first_k_dense_replace", 0)
        self.moe_layer_freq = d.get("moe_layer_freq", 1)
        self.n_group = d.get("n_group") or 1
        self.topk_group = d.get("topk_group") or 1
        self.topk_method = d.get("topk_method", "greedy")
        self.scoring_func = d.get("scoring_func", "softmax")
        self.norm_topk_prob = d.get("norm_topk_prob", False)
        self.routed_scaling_factor = d.get("routed_scaling_factor", 1.0)
        q = d.get("quantization_config") or {}
        self.weight_block_size = tuple(q.get("weight_block_size", (128, 128)))

        if self.topk_method not in ("greedy", "group_limited_greedy", "noaux_tc"):
            raise ValueError(f"topk_method: unknown value {self.topk_method!r}")
        if self.scoring_func not in ("softmax", "sigmoid"):
            raise ValueError(f"scoring_func: unknown value {self.scoring_func!r}")
        if self.rope_scaling is not None:
            kind = self.rope_scaling.get("type", self.rope_scaling.get("rope_type"))
            if kind != "yarn":
                raise ValueError(f"rope_scaling.type: only yarn is supported, got {kind!r}")
        if self.n_routed_experts:
            if self.moe_intermediate_size is None or not self.num_experts_per_tok:
                raise ValueError("moe_intermediate_size / num_experts_per_tok: missing for an MoE model")
            if self.n_routed_experts % self.n_group:
                raise ValueError("n_group: does not divide n_routed_experts")
            if not 1 <= self.topk_group <= self.n_group:
                raise ValueError(f"topk_group: {self.topk_group} not in [1, n_group={self.n_group}]")
            reachable = (self.n_routed_experts if self.topk_method == "greedy"
                         else self.topk_group * self.n_routed_experts // self.n_group)
            if self.num_experts_per_tok > reachable:
                raise ValueError(f"num_experts_per_tok: {self.num_experts_per_tok} > the {reachable} experts "
                                 "the kept groups hold")
        if self.qk_rope_head_dim % 2:
            raise ValueError("qk_rope_head_dim: must be even (RoPE rotates pairs)")

    @property
    def qk_head_dim(self):
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def is_moe_layer(self, i):
        return (self.n_routed_experts is not None and i >= self.first_k_dense_replace
                and i % self.moe_layer_freq == 0)

    @staticmethod
    def load(model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            return Config(json.load(f))


def _require(d, key):
    if d.get(key) is None:
        raise ValueError(f"{key}: missing from config.json")
    return d[key]


# ============================================================================ weights

def dequantize_blocks(w, scale_inv, block):
    """FP8 block quantisation (V3 paper section 3.3.2): W[i, j] = q[i, j] * s[i // bo, j // bi].
    w [O, I], scale_inv [ceil(O/bo), ceil(I/bi)]; edge blocks may be partial."""
    bo, bi = block
    O, I = w.shape
    want = (-(-O // bo), -(-I // bi))
    if tuple(scale_inv.shape) != want:
        raise ValueError(f"weight_scale_inv shape {tuple(scale_inv.shape)}, expected {want} for weight {w.shape}")
    s = scale_inv.repeat_interleave(bo, 0).repeat_interleave(bi, 1)[:O, :I]
    return w * s


class Weights:
    """Named checkpoint tensors as float64 torch tensors, shape-checked on access."""

    def __init__(self, model_dir, cfg, dtype=torch.float64):
        self.ckpt = Checkpoint(model_dir)
        self.cfg = cfg
        self.dtype = dtype

    def get(self, name, shape):
        if name not in self.ckpt:
            raise KeyError(f"missing tensor '{name}'")
        got = self.ckpt.shape(name)
        if got != tuple(shape):
            raise ValueError(f"tensor '{name}': shape {got}, expected {tuple(shape)}")
        t = torch.from_numpy(self.ckpt.get(name).astype(np.float64)).to(self.dtype)
        scale_name = name + "_scale_inv"
        if self.ckpt.dtype(name) == "F8_E4M3":
            if scale_name not in self.ckpt:
                raise KeyError(f"tensor '{name}' is F8_E4M3 but '{scale_name}' is missing")
            s = torch.from_numpy(self.ckpt.get(scale_name).astype(np.float64)).to(self.dtype)
            t = dequantize_blocks(t, s, self.cfg.weight_block_size)
        if torch.isnan(t).any():
            raise ValueError(f"tensor '{name}' contains NaN")
        return t

    def linear(self, prefix, out_features, in_features):
        return self.get(prefix + ".weight", (out_features, in_features))

    def has(self, name):
        return name in self.ckpt


# ============================================================================ building blocks

def linear(x, w):
    """y = x W^T with W stored [out, in]."""
    return x @ w.t()


def rms_norm(x, weight, eps):
    """RMSNorm: x / sqrt(mean(x^2) + eps) * weight, over the last dimension."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def silu(x):
    return x * torch.sigmoid(x)


def gated_mlp(x, w_gate, w_up, w_down):
    """SwiGLU FFN: down( silu(gate x) * up x ).  x [T, D] -> [T, D]."""
    return linear(silu(linear(x, w_gate)) * linear(x, w_up), w_down)


# ---------------------------------------------------------------------------- YaRN RoPE

def yarn_correction_dim(num_rotations, dim, base, original_max_pos):
    """The rotary dimension index whose wavelength fits num_rotations times into the original
    context: solves original_max_pos / (2 pi base^(2d/dim)) = num_rotations for d."""
    return dim * math.log(original_max_pos / (num_rotations * 2 * math.pi)) / (2 * math.log(base))


def yarn_correction_range(beta_fast, beta_slow, dim, base, original_max_pos):
    """[low, high] dimension pair indices between which YaRN blends interpolation and
    extrapolation (floor / ceil, clamped to [0, dim-1])."""
    low = math.floor(yarn_correction_dim(beta_fast, dim, base, original_max_pos))
    high = math.ceil(yarn_correction_dim(beta_slow, dim, base, original_max_pos))
    return max(low, 0), min(high, dim - 1)


def yarn_linear_ramp(low, high, n):
    """0 for index <= low, 1 for index >= high, linear between (n pair indices)."""
    if low == high:
        high += 0.001  # avoid a zero division; the ramp becomes a step
    return ((torch.arange(n, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)


def yarn_mscale(factor, mscale=1.0):
    """YaRN attention temperature: 0.1 * mscale * ln(factor) + 1 (1 when factor <= 1)."""
    if factor <= 1:
        return 1.0
    return 0.1 * mscale * math.log(factor) + 1.0


def rope_inv_freq(cfg):
    """Per pair i in [0, dr/2): the angular frequency theta_i of the decoupled RoPE, after YaRN.

    Plain RoPE: theta_i = base^(-2i/dr). YaRN keeps high-frequency pairs (i <= low) as they are
    (extrapolation), divides low-frequency pairs (i >= high) by the factor (interpolation), and
    blends linearly between.  Returns (inv_freq [dr/2], cos/sin magnitude factor)."""
    dr = cfg.qk_rope_head_dim
    base = float(cfg.rope_theta)
    extra = base ** (-torch.arange(0, dr, 2, dtype=torch.float64) / dr)
    rs = cfg.rope_scaling
    if rs is None:
        return extra, 1.0
    factor = float(rs["factor"])
    inter = extra / factor
    low, high = yarn_correction_range(rs.get("beta_fast", 32), rs.get("beta_slow", 1), dr, base,
                                      rs.get("original_max_position_embeddings", 4096))
    keep = 1.0 - yarn_linear_ramp(low, high, dr // 2)  # 1 = keep the original frequency
    inv_freq = inter * (1.0 - keep) + extra * keep
    # The rotary part of q and k is scaled by mscale(mscale) / mscale(mscale_all_dim); with the
    # published configs (mscale == mscale_all_dim) this is 1 and the whole temperature goes into
    # the softmax scale instead (see softmax_scale).
    magnitude = yarn_mscale(factor, rs.get("mscale", 1.0)) / yarn_mscale(factor, rs.get("mscale_all_dim", 0.0))
    return inv_freq, magnitude


def rope_tables(cfg, positions):
    """cos, sin [T, dr/2] of position * theta_i, times the YaRN magnitude factor."""
    inv_freq, magnitude = rope_inv_freq(cfg)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(angles) * magnitude, torch.sin(angles) * magnitude


def apply_rope(x, cos, sin):
    """Rotate consecutive pairs (x[2i], x[2i+1]) as the complex number x[2i] + i x[2i+1]
    multiplied by e^{i pos theta_i}.  x [T, ..., dr], cos/sin [T, dr/2]."""
    shape = x.shape
    pairs = x.reshape(*shape[:-1], shape[-1] // 2, 2)
    re, im = pairs[..., 0], pairs[..., 1]
    extra = (1,) * (x.dim() - 2)  # broadcast over the head dimension, if any
    c = cos.reshape(cos.shape[0], *extra, cos.shape[1])
    s = sin.reshape(sin.shape[0], *extra, sin.shape[1])
    out = torch.stack((re * c - im * s, re * s + im * c), dim=-1)
    return out.reshape(shape)


# ---------------------------------------------------------------------------- attention

def softmax_scale(cfg):
    """1/sqrt(dn + dr), times mscale(factor, mscale_all_dim)^2 when YaRN sets mscale_all_dim
    (the YaRN temperature applied to the whole q.k product)."""
    scale = cfg.qk_head_dim ** -0.5
    rs = cfg.rope_scaling
    if rs is not None and rs.get("mscale_all_dim"):
        m = yarn_mscale(float(rs["factor"]), rs["mscale_all_dim"])
        scale *= m * m
    return scale


def causal_attention(q, k, v, scale):
    """softmax(q k^T * scale + causal mask) v, per head.
    q [T, H, dk], k [T, H, dk], v [T, H, dv] -> [T, H, dv]."""
    T = q.shape[0]
    scores = torch.einsum("thd,shd->hts", q, k) * scale  # [H, T, T]
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(future, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    return torch.einsum("hts,shd->thd", p, v)


def mla(x, W, cfg, i, cos, sin):
    """Multi-head latent attention (V2 paper section 2.1), the non-absorbed form.

    x [T, D] -> [T, D]."""
    T, D = x.shape
    H, dn, dr, dv, dc = (cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim,
                         cfg.v_head_dim, cfg.kv_lora_rank)
    p = f"model.layers.{i}.self_attn"
    eps = cfg.rms_norm_eps

    # queries: c_Q = RMSNorm(W_DQ x); [q_C; q_R] = W_UQ c_Q  (or directly W_Q x without q LoRA)
    if cfg.q_lora_rank:
        dq = cfg.q_lora_rank
        c_q = rms_norm(linear(x, W.linear(p + ".q_a_proj", dq, D)),
                       W.get(p + ".q_a_layernorm.weight", (dq,)), eps)          # [T, dq]
        q = linear(c_q, W.linear(p + ".q_b_proj", H * (dn + dr), dq))            # [T, H*(dn+dr)]
    else:
        q = linear(x, W.linear(p + ".q_proj", H * (dn + dr), D))                 # [T, H*(dn+dr)]
    q = q.reshape(T, H, dn + dr)
    q_nope, q_rope = q[..., :dn], q[..., dn:]                                    # [T,H,dn], [T,H,dr]

    # keys/values: [c_KV; k_R] = W_DKV x (one shared rope key for all heads)
    kv_a = linear(x, W.linear(p + ".kv_a_proj_with_mqa", dc + dr, D))            # [T, dc+dr]
    c_kv = rms_norm(kv_a[:, :dc], W.get(p + ".kv_a_layernorm.weight", (dc,)), eps)  # [T, dc]
    k_rope = kv_a[:, dc:]                                                        # [T, dr]
    kv = linear(c_kv, W.linear(p + ".kv_b_proj", H * (dn + dv), dc)).reshape(T, H, dn + dv)
    k_nope, v = kv[..., :dn], kv[..., dn:]                                       # [T,H,dn], [T,H,dv]

    # decoupled RoPE on the rope parts only
    q_rope = apply_rope(q_rope, cos, sin)                                        # [T, H, dr]
    k_rope = apply_rope(k_rope, cos, sin)                                        # [T, dr]

    q_full = torch.cat((q_nope, q_rope), dim=-1)                                 # [T, H, dn+dr]
    k_full = torch.cat((k_nope, k_rope[:, None, :].expand(T, H, dr)), dim=-1)    # [T, H, dn+dr]
    o = causal_attention(q_full, k_full, v, softmax_scale(cfg))                  # [T, H, dv]
    return linear(o.reshape(T, H * dv), W.linear(p + ".o_proj", D, H * dv))      # [T, D]


# ---------------------------------------------------------------------------- MoE

def expert_scores(logits, scoring_func):
    """Token-to-expert affinity s_{i,t}: softmax over experts (V2) or sigmoid (V3)."""
    if scoring_func == "softmax":
        return torch.softmax(logits, dim=-1)
    return torch.sigmoid(logits)


def select_experts(scores, cfg, bias=None):
    """Which K experts each token uses, and their gate values.

    scores [T, E] affinities; bias [E] or None (noaux_tc's e_score_correction_bias).
      greedy:               top-K of scores.
      group_limited_greedy: keep the topk_group groups whose best score is highest, then top-K
                            of scores within them (V2's device-limited routing).
      noaux_tc:             choice = scores + bias; keep the topk_group groups with the highest
                            sum of their two best choice values, then top-K of choice within
                            them (V3). The bias only chooses; gates come from unbiased scores.
    Gates: the chosen scores, renormalised to sum 1 when norm_topk_prob (and K > 1), then
    multiplied by routed_scaling_factor.  Returns (idx [T, K] long, gate [T, K])."""
    T, E = scores.shape
    K, G = cfg.num_experts_per_tok, cfg.n_group
    if cfg.topk_method == "noaux_tc":
        if bias is None:
            raise ValueError("topk_method noaux_tc needs mlp.gate.e_score_correction_bias")
        choice = scores + bias[None, :]
    else:
        choice = scores

    if cfg.topk_method == "greedy":
        allowed = torch.ones(T, E, dtype=torch.bool)
    else:
        grouped = choice.reshape(T, G, E // G)
        if cfg.topk_method == "group_limited_greedy":
            group_score = grouped.max(dim=-1).values                               # [T, G]
        else:
            group_score = grouped.topk(min(2, E // G), dim=-1).values.sum(-1)      # [T, G]
        keep = group_score.topk(cfg.topk_group, dim=-1).indices                    # [T, topk_group]
        group_ok = torch.zeros(T, G, dtype=torch.bool).scatter(1, keep, True)
        allowed = group_ok[:, :, None].expand(T, G, E // G).reshape(T, E)
    idx = choice.masked_fill(~allowed, float("-inf")).topk(K, dim=-1).indices     # [T, K]
    gate = scores.gather(1, idx)                                                   # [T, K]

    normalised = K > 1 and cfg.norm_topk_prob
    if normalised:
        gate = gate / (gate.sum(-1, keepdim=True) + 1e-20)
    # DeepSeek-V2's gate applies routed_scaling_factor only to unnormalised gates; V3's always.
    if cfg.arch == "DeepseekV3ForCausalLM" or not normalised:
        gate = gate * cfg.routed_scaling_factor
    return idx, gate


def moe(x, W, cfg, i):
    """DeepSeekMoE: h = sum_shared FFN_s(x) + sum_{chosen e} g_e FFN_e(x).  x [T, D] -> [T, D]."""
    T, D = x.shape
    E, F = cfg.n_routed_experts, cfg.moe_intermediate_size
    p = f"model.layers.{i}.mlp"
    logits = linear(x, W.get(p + ".gate.weight", (E, D)))                          # [T, E]
    bias = None
    if cfg.topk_method == "noaux_tc":
        bias = W.get(p + ".gate.e_score_correction_bias", (E,))
    idx, gate = select_experts(expert_scores(logits, cfg.scoring_func), cfg, bias)  # [T, K] each

    out = torch.zeros_like(x)
    for e in torch.unique(idx).tolist():
        tok, slot = (idx == e).nonzero(as_tuple=True)
        q = f"{p}.experts.{e}"
        y = gated_mlp(x[tok], W.linear(q + ".gate_proj", F, D), W.linear(q + ".up_proj", F, D),
                      W.linear(q + ".down_proj", D, F))                            # [n, D]
        out.index_add_(0, tok, gate[tok, slot].unsqueeze(1) * y)
    if cfg.n_shared_experts:
        Fs = F * cfg.n_shared_experts
        q = p + ".shared_experts"
        out = out + gated_mlp(x, W.linear(q + ".gate_proj", Fs, D), W.linear(q + ".up_proj", Fs, D),
                              W.linear(q + ".down_proj", D, Fs))
    return out


def dense_mlp(x, W, cfg, i):
    p = f"model.layers.{i}.mlp"
    D, F = cfg.hidden_size, cfg.intermediate_size
    return gated_mlp(x, W.linear(p + ".gate_proj", F, D), W.linear(p + ".up_proj", F, D),
                     W.linear(p + ".down_proj", D, F))


# ============================================================================ the model

def forward(model_dir, tokens, dtype=torch.float64, dump=None):
    """Logits [T, vocab] for the causal sequence `tokens` at positions 0..T-1.

    dump(name, layer, tensor), when given, receives the named intermediates that dsinfer's
    DSINFER_DUMP writes (src/model/dump.h): embed; per layer attn_norm, attn_out, ffn_norm,
    ffn_out, layer_out; final_norm; logits (layer None for the ones outside a layer)."""
    dump = dump or (lambda name, layer, t: None)
    cfg = Config.load(model_dir)
    W = Weights(model_dir, cfg, dtype)
    tokens = torch.as_tensor(list(tokens), dtype=torch.long)
    if tokens.numel() == 0:
        raise ValueError("empty token list")
    if int(tokens.min()) < 0 or int(tokens.max()) >= cfg.vocab_size:
        raise ValueError(f"token id out of range [0, {cfg.vocab_size})")
    V, D = cfg.vocab_size, cfg.hidden_size
    T = tokens.numel()

    embed = W.get("model.embed_tokens.weight", (V, D))
    x = embed[tokens]                                                              # [T, D]
    dump("embed", None, x)
    cos, sin = rope_tables(cfg, torch.arange(T))                                   # [T, dr/2]
    cos, sin = cos.to(dtype), sin.to(dtype)
    for i in range(cfg.num_hidden_layers):  # layers >= num_hidden_layers are MTP: not used here
        p = f"model.layers.{i}"
        h = rms_norm(x, W.get(p + ".input_layernorm.weight", (D,)), cfg.rms_norm_eps)
        dump("attn_norm", i, h)
        a = mla(h, W, cfg, i, cos, sin)                                            # [T, D]
        dump("attn_out", i, a)
        x = x + a
        h = rms_norm(x, W.get(p + ".post_attention_layernorm.weight", (D,)), cfg.rms_norm_eps)
        dump("ffn_norm", i, h)
        f = moe(h, W, cfg, i) if cfg.is_moe_layer(i) else dense_mlp(h, W, cfg, i)  # [T, D]
        dump("ffn_out", i, f)
        x = x + f
        dump("layer_out", i, x)
    x = rms_norm(x, W.get("model.norm.weight", (D,)), cfg.rms_norm_eps)
    dump("final_norm", None, x)
    if cfg.tie_word_embeddings and not W.has("lm_head.weight"):
        head = embed
    else:
        head = W.get("lm_head.weight", (V, D))
    logits = linear(x, head)                                                       # [T, V]
    dump("logits", None, logits)
    return logits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model directory (config.json + safetensors)")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--out", required=True, help="output .npy, float32 [n_tokens, vocab_size]")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                    help="arithmetic precision (default float64)")
    args = ap.parse_args(argv)
    try:
        tokens = [int(t) for t in args.tokens.split(",") if t.strip() != ""]
        logits = forward(args.model, tokens, getattr(torch, args.dtype))
    except (ValueError, KeyError, OSError) as err:
        print(f"deepseek_ref: {err}", file=sys.stderr)
        return 1
    np.save(args.out, logits.numpy().astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
