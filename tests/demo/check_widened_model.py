#!/usr/bin/python3
"""tools/train_demo/widen.py keeps the demo model's function: every MLP widened by zero units
(dense, shared and routed, x2 each here) gives dsinfer bit-identical logits, MTP module
included, at fp32 and at the default precision, and the same greedy tokens, drafts and
acceptance with `--speculative mtp`. docs/benchmarks.md measures speculative decoding on such a
model (weights from DRAM, the trained model's acceptance), so its figures stand on this.

    check_widened_model.py --dsinfer BIN --model assets/demo-model --work DIR
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "support"))
from e2e_util import check, dsinfer_logits, finish, generate_json  # noqa: E402

WIDEN = os.path.join(here, "..", "..", "tools", "train_demo", "widen.py")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    t0 = time.time()
    wide = os.path.join(a.work, "widened")
    os.makedirs(a.work, exist_ok=True)
    subprocess.run([sys.executable, WIDEN, "--model", a.model, "--out", wide, "--dense", "2", "--shared", "2",
                    "--routed", "2"], check=True, capture_output=True)
    with open(os.path.join(a.model, "config.json")) as f:
        base = json.load(f)
    with open(os.path.join(wide, "config.json")) as f:
        cfg = json.load(f)
    check((cfg["intermediate_size"], cfg["moe_intermediate_size"], cfg["n_shared_experts"]) ==
          (2 * base["intermediate_size"], 2 * base["moe_intermediate_size"], 2 * base["n_shared_experts"]),
          f"widened config: {cfg['intermediate_size']}, {cfg['moe_intermediate_size']}, {cfg['n_shared_experts']}")

    first = generate_json(a.dsinfer, a.model, "The jury said", 48, "--speculative", "mtp")
    tokens = first["prompt_token_ids"] + first["token_ids"]
    for precision in ("fp32", "default"):
        want, want_mtp = dsinfer_logits(a.dsinfer, a.model, tokens, precision, a.work, mtp=True)
        got, got_mtp = dsinfer_logits(a.dsinfer, wide, tokens, precision, a.work, mtp=True)
        check(np.array_equal(got, want) and np.array_equal(got_mtp, want_mtp),
              f"{precision}: the widened model's logits over {len(tokens)} tokens are the original's bit for bit "
              f"(largest difference {np.abs(got - want).max():.3g}, MTP {np.abs(got_mtp - want_mtp).max():.3g})")
    for prompt in ("The jury said", "It is not"):
        want, got = (generate_json(a.dsinfer, m, prompt, 48, "--speculative", "mtp") for m in (a.model, wide))
        keys = ("token_ids", "mtp_drafted_tokens", "mtp_accepted_tokens")
        check(all(got[k] == want[k] for k in keys),
              f"{prompt!r} with drafts: widened {[got[k] for k in keys[1:]]} vs original {[want[k] for k in keys[1:]]}")

    r = subprocess.run([sys.executable, WIDEN, "--model", os.path.join(a.model, "fp8"), "--out",
                        os.path.join(a.work, "fp8-widened"), "--dense", "2"], capture_output=True, text=True)
    check(r.returncode != 0 and "only BF16" in r.stderr, f"an FP8 checkpoint is refused by name: {r.stderr.strip()}")
    finish("check_widened_model", t0)


if __name__ == "__main__":
    main()
