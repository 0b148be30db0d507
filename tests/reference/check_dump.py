#!/usr/bin/python3
"""Layer by layer against the reference: every intermediate dsinfer's DSINFER_DUMP hook writes
(src/model/dump.h) is compared, by name, with the same point of tests/reference/deepseek_ref.py.

    check_dump.py --dsinfer BIN --preset tiny-v3 [--fp8] --workdir DIR [--max-rel-l2 1e-4]

Runs `dsinfer logits --precision fp32` over a fixed prompt with DSINFER_DUMP='*', then the
reference in float64 with a dump callback, and checks that each named tensor (embed; per layer
attn_norm, attn_out, ffn_norm, ffn_out, layer_out; final_norm; logits) exists on both sides with
the same shape and a relative L2 error within the bound. The first name that fails tells where
a divergence starts.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--fp8", action="store_true")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--n-tokens", type=int, default=9)
    ap.add_argument("--max-rel-l2", type=float, default=1e-4)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    model = os.path.join(a.workdir, a.preset + ("-fp8" if a.fp8 else ""))
    if not os.path.exists(os.path.join(model, "config.json")):
        subprocess.run([a.dsinfer, "make-model", "--preset", a.preset, "--out", model] + (["--fp8"] if a.fp8 else []),
                       check=True, stdout=subprocess.DEVNULL)
    cfg = json.load(open(os.path.join(model, "config.json")))
    tokens = [(7919 * i + 13) % cfg["vocab_size"] for i in range(a.n_tokens)]
    dump_dir = os.path.join(a.workdir, "dump")
    shutil.rmtree(dump_dir, ignore_errors=True)
    env = dict(os.environ, DSINFER_DUMP="*", DSINFER_DUMP_DIR=dump_dir)
    subprocess.run([a.dsinfer, "logits", "--model", model, "--tokens", ",".join(map(str, tokens)),
                    "--out", os.path.join(a.workdir, "logits.npy"), "--precision", "fp32"], check=True, env=env)

    ref = {}
    deepseek_ref.forward(model, tokens, dump=lambda name, layer, t: ref.__setitem__(
        f"{name}" + ("" if layer is None else f".L{layer}"), t.numpy()))
    failed = 0
    for key, want in ref.items():
        path = os.path.join(dump_dir, f"{key}.s0.npy")
        if not os.path.exists(path):
            print(f"FAIL {key}: dsinfer wrote no {os.path.basename(path)}")
            failed += 1
            continue
        got = np.load(path).astype(np.float64)
        if got.shape != want.shape:
            print(f"FAIL {key}: shape {got.shape}, reference {want.shape}")
            failed += 1
            continue
        rel = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30)
        ok = rel <= a.max_rel_l2
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {key:<16} {str(got.shape):<12} rel L2 {rel:.2e}")
    extra = sorted(set(os.path.basename(p)[:-len(".s0.npy")] for p in glob.glob(os.path.join(dump_dir, "*.s0.npy")))
                   - set(ref))
    if extra:
        print(f"FAIL names the reference does not know: {extra}")
        failed += 1
    expected = 3 + 5 * cfg["num_hidden_layers"]
    if len(ref) != expected:
        print(f"FAIL the reference dumped {len(ref)} tensors, expected {expected}")
        failed += 1
    print(f"{len(ref) - failed} of {len(ref)} intermediates within {a.max_rel_l2:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
