#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from assets/ files and
hand-made cases: valid inputs and near-misses. Deterministic; rerun after changing it and commit
the output. Inputs the fuzzers found that once crashed live beside these as regression-*."""
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ASSETS = os.path.join(ROOT, "assets")
OUT = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def reset(target):
    d = os.path.join(OUT, target)
    if os.path.isdir(d):
        for f in os.listdir(d):
            if not f.startswith("regression-"):  # found crashes stay
                os.remove(os.path.join(d, f))


def j(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# ---- safetensors: 8-byte little-endian header length, JSON header, data ----
def safetensors(tensors, meta=True, pad=True, header_len=None, data=None):
    header, off, blob = {}, 0, b""
    sizes = {"F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1}
    for name, dt, shape in tensors:
        n = sizes.get(dt, 1)
        for s in shape:
            n *= s
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        blob += bytes((off + i) % 251 for i in range(n))
        off += n
    if meta:
        header["__metadata__"] = {"format": "pt"}
    h = j(header).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    hl = len(h) if header_len is None else header_len
    return struct.pack("<Q", hl) + h + (blob if data is None else data)


def raw_safetensors(header_obj, data=b""):
    h = j(header_obj).encode()
    return struct.pack("<Q", len(h)) + h + data


def corpus_safetensors():
    t = "fuzz_safetensors"
    reset(t)
    write(t, "bf16_matrix", safetensors([("model.embed_tokens.weight", "BF16", [4, 8])]))
    write(t, "fp8_with_scale", safetensors([("w", "F8_E4M3", [3, 5]), ("w_scale_inv", "F32", [1, 1])]))
    write(t, "all_dtypes", safetensors([("a", "F32", [2]), ("b", "F16", [3]), ("c", "BF16", [1, 2]), ("d", "F8_E4M3", [7])]))
    write(t, "scalar_and_empty", safetensors([("s", "F32", []), ("e", "BF16", [0, 4])]))
    write(t, "no_metadata", safetensors([("x", "F32", [2, 2])], meta=False, pad=False))
    write(t, "empty_header", raw_safetensors({}))
    # Near-misses.
    write(t, "truncated_data", safetensors([("x", "F32", [4, 4])])[:-5])
    write(t, "header_len_too_big", safetensors([("x", "F32", [2])], header_len=1 << 40))
    write(t, "header_len_short", safetensors([("x", "F32", [2])], header_len=10))
    write(t, "overlap", raw_safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)))
    write(t, "size_mismatch", raw_safetensors({"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)))
    write(t, "negative_dim", raw_safetensors({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}))
    write(t, "huge_dims", raw_safetensors({"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 0]}}))
    write(t, "bad_dtype", raw_safetensors({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)))
    write(t, "offsets_reversed", raw_safetensors({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}}, bytes(8)))
    write(t, "not_an_object", struct.pack("<Q", 2) + b"[]")
    write(t, "short", b"\x04\x00\x00")


# ---- config.json ----
def corpus_config():
    t = "fuzz_config"
    reset(t)
    v3 = json.load(open(os.path.join(ASSETS, "configs", "deepseek-v3.json")))
    v2 = json.load(open(os.path.join(ASSETS, "configs", "deepseek-v2-lite.json")))
    write(t, "deepseek-v3", json.dumps(v3, indent=2))
    write(t, "deepseek-v2-lite", json.dumps(v2, indent=2))
    tiny = dict(v3, vocab_size=1024, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                num_hidden_layers=3, first_k_dense_replace=1, num_attention_heads=4, num_key_value_heads=4,
                q_lora_rank=32, kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2, n_group=4, topk_group=2,
                max_position_embeddings=256, bos_token_id=0, eos_token_id=[1, 2])
    write(t, "tiny-v3", j(tiny))
    write(t, "tiny-v3-no-quant-no-yarn", j(dict(tiny, quantization_config=None, rope_scaling=None, q_lora_rank=None)))
    write(t, "dense-only", j(dict(tiny, n_routed_experts=0, first_k_dense_replace=3)))
    write(t, "v2-group-limited", j(dict(v2, topk_method="group_limited_greedy", n_group=8, topk_group=3)))
    # Near-misses.
    write(t, "wrong_arch", j(dict(tiny, architectures=["LlamaForCausalLM"])))
    write(t, "missing_hidden", j({k: v for k, v in tiny.items() if k != "hidden_size"}))
    write(t, "string_int", j(dict(tiny, vocab_size="1024")))
    write(t, "odd_rope", j(dict(tiny, qk_rope_head_dim=7)))
    write(t, "topk_group_too_big", j(dict(tiny, topk_group=5)))
    write(t, "bad_yarn", j(dict(tiny, rope_scaling={"type": "yarn", "factor": 0.5})))
    write(t, "bad_block", j(dict(tiny, quantization_config={"quant_method": "fp8", "weight_block_size": [128]})))
    write(t, "eos_outside", j(dict(tiny, eos_token_id=5000)))
    write(t, "huge_numbers", j(dict(tiny, rope_theta=1e308, rms_norm_eps=1e-300, routed_scaling_factor=-0.0,
                                    vocab_size=2147483647)))
    write(t, "top_level_array", "[1,2,3]")
    write(t, "truncated", j(tiny)[:200])


# ---- tokenizer.json (+ tokenizer_config.json, + texts), NUL-separated ----
TEXTS = ["Hello world! 12345 the quick brown fox", "你好，世界。こんにちは カタカナ", "  spaces\t\ttabs\r\nnew\nlines  ",
         "emoji 🦀👍🏽 and combining é e\u0301", "<｜begin▁of▁sentence｜>special<｜end▁of▁sentence｜> tokens",
         "\xff\xfe invalid utf-8 \xc3\x28 \xed\xa0\x80"]


def trimmed_deepseek(max_id=600, specials=6):
    """DeepSeek-V3's tokenizer.json, vocabulary cut to the byte tokens and its first merges."""
    t = json.load(open(os.path.join(ASSETS, "tokenizer", "deepseek-v3", "tokenizer.json")))
    vocab = {k: v for k, v in t["model"]["vocab"].items() if v < max_id}
    merges = []
    for m in t["model"]["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in vocab and b in vocab and (a + b) in vocab:
            merges.append(m)
    t["model"]["vocab"] = vocab
    t["model"]["merges"] = merges
    t["added_tokens"] = [a for a in t["added_tokens"][:specials]]
    for i, a in enumerate(t["added_tokens"]):
        a["id"] = i
    return t


def config_json(chat_template=None):
    c = json.load(open(os.path.join(ASSETS, "tokenizer", "deepseek-v3", "tokenizer_config.json")))
    if chat_template is not None:
        c["chat_template"] = chat_template
    return c


def tok_input(tok, cfg, texts):
    parts = [j(tok) if not isinstance(tok, str) else tok, j(cfg) if not isinstance(cfg, str) else cfg] + list(texts)
    return "\0".join(parts).encode("utf-8", "surrogateescape")


def corpus_tokenizer():
    t = "fuzz_tokenizer"
    reset(t)
    ds = trimmed_deepseek()
    short_cfg = {k: v for k, v in config_json().items() if k != "chat_template"}
    texts = [s.encode("latin-1", "ignore").decode("utf-8", "surrogateescape") if s.startswith("\xff") else s
             for s in TEXTS]
    write(t, "deepseek_trimmed", tok_input(ds, short_cfg, texts[:3]))
    write(t, "deepseek_trimmed_2", tok_input(ds, "", texts[3:]))
    # An empty tokenizer.json field: the real DeepSeek-V3 tokenizer from assets/.
    write(t, "deepseek_real", tok_input("", "", texts[:4]))
    write(t, "deepseek_real_2", tok_input("", "", texts[4:] + ["x" * 300, "1234567890" * 5, "\n\n\n \t\u3000\u00a0"]))
    tiny_vocab = {c: i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz ĠĊ")}
    tiny_vocab.update({"ab": 29, "abc": 30, "Ġa": 31})
    base = {"model": {"type": "BPE", "vocab": tiny_vocab, "merges": ["a b", "ab c", "Ġ a"]}}
    write(t, "tiny_plain", tok_input(base, "", ["abc abc", "zzz"]))
    byte_level = dict(base, pre_tokenizer={"type": "ByteLevel", "add_prefix_space": True, "use_regex": True},
                      decoder={"type": "ByteLevel"})
    write(t, "tiny_byte_level", tok_input(byte_level, "", ["abc a b c", "x\ny"]))
    normalizers = dict(base, normalizer={"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Replace", "pattern": {"String": " "}, "content": "Ġ"},
        {"type": "Prepend", "prepend": "Ġ"}, {"type": "Strip", "left": True, "right": False}]})
    write(t, "tiny_normalizers", tok_input(normalizers, "", ["ABC ＡＢＣ abc", "ﬁ"]))
    pretok = dict(base, pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, {"type": "Whitespace"}, {"type": "Punctuation", "behavior": "Isolated"},
        {"type": "Split", "pattern": {"String": "b"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "WhitespaceSplit"}]})
    write(t, "tiny_pre_tokenizers", tok_input(pretok, "", ["ab1 23,c.d", "abcabc"]))
    decoders = dict(base, decoder={"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "Ġ"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})
    write(t, "tiny_decoders", tok_input(decoders, "", ["ab c"]))
    added = dict(base, added_tokens=[
        {"id": 32, "content": "<s>", "special": True, "normalized": False},
        {"id": 33, "content": "[x]", "special": False, "normalized": True, "lstrip": True, "rstrip": True},
        {"id": 34, "content": "ab", "single_word": True}, {"id": 99, "content": "", "special": True}])
    write(t, "tiny_added_tokens", tok_input(added, {"bos_token": "<s>", "eos_token": {"content": "[x]"}},
                                            ["<s>ab [x] abab<s>", "[x][x]"]))
    write(t, "tiny_vocab_gap", tok_input({"model": {"type": "BPE", "vocab": {"a": 0, "b": 5}, "merges": []}}, "", ["ab"]))
    write(t, "merges_as_pairs", tok_input({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
                                                     "merges": [["a", "b"]]}}, "", ["abab"]))
    # Near-misses.
    write(t, "not_bpe", tok_input({"model": {"type": "Unigram", "vocab": []}}, "", ["a"]))
    write(t, "bad_merge", tok_input({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a zz"]}}, "", ["a"]))
    write(t, "bad_regex", tok_input(dict(base, pre_tokenizer={"type": "Split", "pattern": {"Regex": "(["},
                                                              "behavior": "Isolated"}), "", ["a"]))
    write(t, "bad_config", tok_input(base, "{\"bos_token\": 5}", ["a"]))
    write(t, "negative_id", tok_input({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}, "", ["a"]))


# ---- chat messages (the real DeepSeek-V3 template renders them) ----
def corpus_chat_template():
    t = "fuzz_chat_template"
    reset(t)
    call = lambda i, name, args: {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
    cases = {
        "user": [{"role": "user", "content": "Hello!"}],
        "system_user_assistant": [{"role": "system", "content": "Be brief."}, {"role": "system", "content": "Second."},
                                  {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                                  {"role": "user", "content": "Again"}],
        "tool_calls": [{"role": "user", "content": "Weather?"},
                       {"role": "assistant", "content": None, "tool_calls": [call(1, "get_weather", "{\"city\":\"Paris\"}"),
                                                                             call(2, "get_time", {"tz": "CET"})]},
                       {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
                       {"role": "tool", "tool_call_id": "call_2", "content": "14:00"},
                       {"role": "assistant", "content": "22C at 14:00."}],
        "tool_then_user": [{"role": "tool", "content": "x"}, {"role": "user", "content": "y"}],
        "reasoning": [{"role": "user", "content": "Think"},
                      {"role": "assistant", "content": "Done", "reasoning_content": "<think>hmm</think>"}],
        "unicode": [{"role": "user", "content": "中文 🦀 <｜User｜> \u0000 \u00e9"}],
        "unknown_role": [{"role": "developer", "content": "x"}, {"role": "user", "content": "y"}],
        # Near-misses.
        "no_role": [{"content": "x"}],
        "content_array": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "tool_calls_object": [{"role": "assistant", "tool_calls": {"function": {}}}],
        "no_function_name": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}],
        "not_array": {"role": "user", "content": "x"},
    }
    for name, msgs in cases.items():
        write(t, name, json.dumps(msgs, ensure_ascii=False))
    write(t, "lone_surrogate_escape", '[{"role":"user","content":"\\udbff \\ud83e\\udd80"}]')


# ---- request bodies: one mode byte (bit 3: completions; bits 0-1: context; bit 2: small KV) ----
def corpus_protocol():
    t = "fuzz_protocol"
    reset(t)
    CHAT, COMP = 1, 9  # 4096-token context; chat / completions
    chat = {"model": "deepseek-v3", "messages": [{"role": "user", "content": "Hello"}]}
    cases = [
        ("chat_minimal", CHAT, chat),
        ("chat_all_params", CHAT, dict(chat, temperature=0.7, top_p=0.9, top_k=40, min_p=0.05, frequency_penalty=0.5,
                                       presence_penalty=-0.5, repetition_penalty=1.1, n=2, seed=42, stop=["\n\n", "END"],
                                       stop_token_ids=[1, 2], max_tokens=64, stream=True,
                                       stream_options={"include_usage": True}, logprobs=True, top_logprobs=5,
                                       ignore_eos=True)),
        ("chat_tools", CHAT, dict(chat, messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": None,
                                  "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                                  {"role": "tool", "content": "1"}], max_completion_tokens=5)),
        ("chat_small_context", 0, dict(chat, max_tokens=3)),
        ("chat_huge_context_small_kv", 7, chat),
        ("completion_text", COMP, {"model": "m", "prompt": "Once upon a time", "max_tokens": 16, "logprobs": 3,
                                   "echo": False, "suffix": ""}),
        ("completion_ids", COMP, {"model": "m", "prompt": [0, 100, 2000, 127999], "temperature": 0}),
        ("completion_nested", COMP, {"model": "m", "prompt": [[5, 6, 7]]}),
        ("completion_list_of_text", COMP, {"model": "m", "prompt": ["text"], "stop": "x"}),
        # Near-misses.
        ("max_tokens_huge", CHAT, dict(chat, max_tokens=9223372036854775807)),
        ("max_tokens_float", CHAT, dict(chat, max_tokens=1e300)),
        ("temperature_tiny", CHAT, dict(chat, temperature=1e-40, top_k=5)),
        ("top_p_zero", CHAT, dict(chat, top_p=0)),
        ("negative_n", CHAT, dict(chat, n=-1)),
        ("seed_negative", CHAT, dict(chat, seed=-5)),
        ("id_outside_vocab", COMP, {"model": "m", "prompt": [1, 999999999]}),
        ("wrong_model", CHAT, dict(chat, model="gpt-4")),
        ("top_logprobs_without_logprobs", CHAT, dict(chat, top_logprobs=2)),
        ("stream_options_without_stream", CHAT, dict(chat, stream_options={})),
        ("empty_messages", CHAT, dict(chat, messages=[])),
        ("bad_role_type", CHAT, dict(chat, messages=[{"role": 1}])),
        ("echo", COMP, {"model": "m", "prompt": "x", "echo": True}),
    ]
    for name, mode, body in cases:
        write(t, name, bytes([mode]) + json.dumps(body, ensure_ascii=False).encode())
    write(t, "not_json", bytes([CHAT]) + b"{\"model\": ")
    write(t, "array_body", bytes([COMP]) + b"[]")


# ---- HTTP request streams: 4 limit bytes (byte 0 == 0: the defaults), 1 byte seeding the read
# sizes, then the bytes a client sends (possibly several pipelined requests) ----
def corpus_http_parser():
    t = "fuzz_http_parser"
    reset(t)
    DEFAULT, SMALL = b"\0\0\0\0", bytes([64, 40, 6, 16])  # small: 64-byte line, 161 header bytes, 6 fields, 128-byte body
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
    post = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:8000\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)
    chunked = (b"POST /v1/completions HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n1a;ext=1\r\n" + b"x" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n")
    get = b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n"
    cases = [
        ("get", DEFAULT, get),
        ("post_json", DEFAULT, post),
        ("chunked_with_trailer", DEFAULT, chunked),
        ("pipelined", DEFAULT, get + post + b"GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
        ("http10_keep_alive", DEFAULT, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        ("absolute_form_and_fragment", DEFAULT, b"GET http://example.com/v1/models#f HTTP/1.1\nHost: x\n\n"),
        ("options_asterisk", DEFAULT, b"\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("expect_continue", DEFAULT, b"POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3, 3\r\n\r\nabc"),
        ("small_limits_ok", SMALL, b"GET /a HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n"),
        ("small_limits_chunked", SMALL, b"POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: chunked\r\n\r\n40\r\n" + b"y" * 64 + b"\r\n0\r\n\r\n"),
        # Near-misses.
        ("tls_client_hello", DEFAULT, bytes.fromhex("16030100f5010000f10303") + b"\0" * 20),
        ("bare_cr", DEFAULT, b"GET / HTTP/1.1\rHost: h\r\n\r\n"),
        ("te_and_cl", DEFAULT, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
        ("te_gzip", DEFAULT, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        ("conflicting_cl", DEFAULT, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        ("huge_cl", DEFAULT, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n"),
        ("huge_chunk", DEFAULT, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"),
        ("chunk_overrun", SMALL, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"),
        ("obs_fold", DEFAULT, b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"),
        ("no_host", DEFAULT, b"GET / HTTP/1.1\r\n\r\n"),
        ("two_hosts", DEFAULT, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("http2_preface", DEFAULT, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("long_line", SMALL, b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("many_headers", SMALL, b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(8)) + b"\r\n"),
        ("control_in_value", DEFAULT, b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n"),
    ]
    for i, (name, limits, stream) in enumerate(cases):
        write(t, name, limits + bytes([i * 37 % 256]) + stream)


# ---- dictionaries (libFuzzer -dict): JSON syntax, odd numbers, and each input's keywords ----
JSON_TOKENS = ["{", "}", "[", "]", ":", ",", "\"", "true", "false", "null", "\\u0000", "\\ud800", "\\\"",
               "-0", "1e308", "1e-320", "-1", "0.5", "2147483647", "2147483648", "4294967296",
               "9223372036854775807", "9223372036854775808", "18446744073709551615", "1e400"]
KEYWORDS = {
    "fuzz_safetensors": ["dtype", "shape", "data_offsets", "__metadata__", "F32", "BF16", "F16", "F8_E4M3", "format",
                         "\x00\x00\x00\x00\x00\x00\x00"],
    "fuzz_config": ["architectures", "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "vocab_size", "hidden_size",
                    "intermediate_size", "moe_intermediate_size", "num_hidden_layers", "first_k_dense_replace",
                    "moe_layer_freq", "num_attention_heads", "num_key_value_heads", "q_lora_rank", "kv_lora_rank",
                    "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "n_routed_experts", "n_shared_experts",
                    "num_experts_per_tok", "n_group", "topk_group", "topk_method", "greedy", "group_limited_greedy",
                    "noaux_tc", "scoring_func", "softmax", "sigmoid", "norm_topk_prob", "routed_scaling_factor",
                    "rope_theta", "rope_scaling", "yarn", "factor", "original_max_position_embeddings", "beta_fast",
                    "beta_slow", "mscale", "mscale_all_dim", "max_position_embeddings", "rms_norm_eps",
                    "tie_word_embeddings", "bos_token_id", "eos_token_id", "num_nextn_predict_layers",
                    "quantization_config", "quant_method", "fp8", "fmt", "e4m3", "weight_block_size"],
    "fuzz_tokenizer": ["model", "type", "BPE", "vocab", "merges", "added_tokens", "content", "special", "normalized",
                       "lstrip", "rstrip", "single_word", "normalizer", "pre_tokenizer", "decoder", "Sequence",
                       "normalizers", "pretokenizers", "decoders", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Replace",
                       "Prepend", "prepend", "Strip", "Split", "pattern", "Regex", "String", "behavior", "Isolated",
                       "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous", "invert", "ByteLevel",
                       "add_prefix_space", "use_regex", "Digits", "individual_digits", "Whitespace", "WhitespaceSplit",
                       "Punctuation", "ByteFallback", "Fuse", "start", "stop", "left", "right", "bos_token",
                       "eos_token", "chat_template", "\\p{L}", "\\p{N}", "(?!\\S)", "\\s+", "[^", "]+", "{1,3}",
                       "<0xFF>", "Ġ", "｜", "▁", "\x00"],
    "fuzz_chat_template": ["role", "content", "system", "user", "assistant", "tool", "tool_calls", "tool_call_id",
                           "function", "name", "arguments", "type", "id", "reasoning_content", "<think>", "</think>",
                           "<｜User｜>", "<｜Assistant｜>"],
    "fuzz_http_parser": ["\r\n", "\r\n\r\n", "GET ", "POST ", "OPTIONS ", " HTTP/1.1", " HTTP/1.0", "HTTP/2.0",
                         "Host: ", "Content-Length: ", "Transfer-Encoding: ", "chunked", "Connection: ", "close",
                         "keep-alive", "Expect: ", "100-continue", "Content-Encoding: ", "gzip", "http://", "?", "#",
                         ";", "0\r\n\r\n", "ffffffff", "\t", "\x00"],
    "fuzz_protocol": ["model", "deepseek-v3", "messages", "prompt", "role", "content", "user", "assistant", "system",
                      "tool", "tool_calls", "function", "arguments", "name", "temperature", "top_p", "top_k", "min_p",
                      "frequency_penalty", "presence_penalty", "repetition_penalty", "n", "seed", "stop",
                      "stop_token_ids", "max_tokens", "max_completion_tokens", "stream", "stream_options",
                      "include_usage", "logprobs", "top_logprobs", "ignore_eos", "echo", "suffix", "<think>"],
    # Binary: the magic numbers and framing of the bodies it decodes (gzip header and flags, zlib
    # headers at each level, deflate's stored and final-block markers, an empty gzip member).
    "fuzz_content_coding": [b"\x1f\x8b\x08\x00", b"\x1f\x8b\x08\x08", b"\x1f\x8b\x08\x04", b"\x78\x9c",
                            b"\x78\x01", b"\x78\xda", b"\x78\x5e", b"\x03\x00", b"\x01\x00\x00\xff\xff",
                            b"\x00\x00\xff\xff", b"\x00\x00\x00\x00\x00\x00\x00\x00", b"\xff\xff\xff\xff"],
}


def dict_entry(word):
    """A libFuzzer dictionary line: the bytes (a str's UTF-8) quoted, with \\, \" and \\xAB escapes."""
    out = ""
    for b in (word if isinstance(word, bytes) else word.encode("utf-8")):
        c = chr(b)
        out += "\\\\" if c == "\\" else '\\"' if c == '"' else c if 32 <= b < 127 else "\\x%02X" % b
    return '"%s"\n' % out


def dictionaries():
    d = os.path.join(HERE, "dict")
    os.makedirs(d, exist_ok=True)
    for target, words in KEYWORDS.items():
        with open(os.path.join(d, target + ".dict"), "w") as f:
            if target in ("fuzz_http_parser", "fuzz_content_coding"):  # not JSON
                f.write("# Generated by make_corpus.py: HTTP/1.1 syntax.\n" if target == "fuzz_http_parser" else
                        "# Generated by make_corpus.py: gzip, zlib and deflate framing.\n")
                for w in words:
                    f.write(dict_entry(w))
                continue
            f.write("# Generated by make_corpus.py: JSON syntax and this target's keywords.\n")
            for w in JSON_TOKENS:
                f.write(dict_entry(w))
            for w in words:  # names as JSON strings, the rest as they are
                f.write(dict_entry('"%s"' % w if w.replace("_", "").replace("-", "").isalnum() else w))


def main():
    only = sys.argv[1:]
    if not only:
        dictionaries()
    for name, fn in [("safetensors", corpus_safetensors), ("config", corpus_config), ("tokenizer", corpus_tokenizer),
                     ("chat_template", corpus_chat_template), ("protocol", corpus_protocol),
                     ("http_parser", corpus_http_parser)]:
        if not only or name in only:
            fn()


if __name__ == "__main__":
    main()
