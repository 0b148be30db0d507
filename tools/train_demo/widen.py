#!/usr/bin/python3
"""The demo model with its MLPs widened by units whose weights are zero: the same function, more
bytes per token, so that batch-1 decode streams its weights from DRAM instead of the caches.

    tools/train_demo/widen.py --model assets/demo-model --out DIR [--dense N] [--shared N] [--routed N]

--dense N   the dense MLPs' intermediate_size times N
--shared N  the shared expert's width times N (n_shared_experts times N: the config sizes the
            shared expert as moe_intermediate_size x n_shared_experts)
--routed N  moe_intermediate_size times N: every routed expert's width, and the shared one's with it

Why it is the same model: a unit of a gated MLP whose gate and up rows are zero gives
silu(0) * 0 = 0, which a zero column of down_proj adds to nothing. dsinfer keeps each output's
reduction order over the original units (kernels/gemm_internal.h) and a zero product leaves a
partial sum as it was, so the widened model's logits are bit-identical to the original's, MTP
module included (tests/demo/check_widened_model.py). Its acceptance rate is the trained model's;
only what a token costs changes. docs/benchmarks.md uses it to measure speculative decoding in
the regime its bound assumes (verifying a draft nearly free), which the 17 MB model, resident in
the caches, is not.

BF16 checkpoints only (an FP8 one would need its 128 x 128 scale tiles padded too).
"""
import argparse
import json
import os
import re
import shutil
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import safetensors_io as st  # noqa: E402

# An MLP matrix: (shared_experts | experts, or neither for a dense layer's MLP), gate/up/down.
_MLP = re.compile(r"model\.layers\.\d+\.mlp\.(?:(shared_experts)\.|(experts)\.\d+\.)?(gate_proj|up_proj|down_proj)\.weight")


def widen(tensors, cfg, dense, shared, routed):
    """New tensors and config: every MLP matrix padded with zeros to its widened width."""
    new = dict(cfg)
    new["intermediate_size"] = cfg["intermediate_size"] * dense
    new["moe_intermediate_size"] = cfg["moe_intermediate_size"] * routed
    new["n_shared_experts"] = cfg["n_shared_experts"] * shared
    width = {"dense": new["intermediate_size"], "shared_experts": new["moe_intermediate_size"] * new["n_shared_experts"],
             "experts": new["moe_intermediate_size"]}
    out = {}
    for name, (dtype, arr) in tensors.items():
        m = _MLP.fullmatch(name)
        if not m:
            out[name] = (dtype, arr)
            continue
        if dtype != "BF16":
            sys.exit(f"widen.py: {name} is {dtype}; only BF16 checkpoints can be widened")
        w = width[m.group(1) or m.group(2) or "dense"]
        if m.group(3) == "down_proj":  # [hidden, units]: zero columns for the new units
            padded = np.zeros((arr.shape[0], w), dtype=arr.dtype)
            padded[:, : arr.shape[1]] = arr
        else:  # gate and up, [units, hidden]: zero rows
            padded = np.zeros((w, arr.shape[1]), dtype=arr.dtype)
            padded[: arr.shape[0]] = arr
        out[name] = (dtype, padded)
    return out, new


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    for flag in ("dense", "shared", "routed"):
        ap.add_argument(f"--{flag}", type=int, default=1)
    a = ap.parse_args()
    if min(a.dense, a.shared, a.routed) < 1:
        sys.exit("widen.py: --dense, --shared and --routed are factors of at least 1")
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("n_shared_experts", 0) < 1 and a.shared > 1:
        sys.exit("widen.py: the model has no shared expert to widen")
    tensors, cfg = widen(st.read(os.path.join(a.model, "model.safetensors")), cfg, a.dense, a.shared, a.routed)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    st.write(os.path.join(a.out, "model.safetensors"), tensors, {"format": "pt"})
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(a.model, name)):
            shutil.copyfile(os.path.join(a.model, name), os.path.join(a.out, name))
    size = os.path.getsize(os.path.join(a.out, "model.safetensors"))
    print(f"{a.out}: intermediate {cfg['intermediate_size']}, moe_intermediate {cfg['moe_intermediate_size']}, "
          f"shared experts {cfg['n_shared_experts']}; {size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
