#!/usr/bin/python3
"""Check `dsinfer logits` against the reference on a model `dsinfer make-model` writes.

    check_dsinfer.py --dsinfer build/dsinfer --preset tiny-v3 [--fp8] [--n-tokens 12]
                     --check fp32:1e-4 [--check default:3e-2:0.9 ...] [--step-from K ...]
                     [--attention MODE] [--workdir DIR] [--fresh]

--check PRECISION:MAX_REL_L2[:MIN_ARGMAX_AGREE] runs `dsinfer logits --precision PRECISION`
and bounds its per-position relative L2 error (and argmax agreement) against the reference.

Makes the model (once per workdir unless --fresh), computes the reference logits in float64,
then runs `dsinfer logits` for every check and every path (prefill, and each --step-from K) and
compares every position. Exit status 1 when any comparison breaks a bound or a command fails.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare_logits  # noqa: E402
import deepseek_ref  # noqa: E402


def run(cmd):
    print("+ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        raise SystemExit(f"command failed with status {r.returncode}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--fp8", action="store_true")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--n-tokens", type=int, default=12)
    ap.add_argument("--check", action="append", required=True, metavar="PRECISION:MAX_REL[:MIN_AGREE]")
    ap.add_argument("--attention", default=None, help="passed to dsinfer logits --attention")
    ap.add_argument("--step-from", type=int, action="append", default=[],
                    help="also check the decode path with this many prefilled tokens (repeatable)")
    ap.add_argument("--no-prefill", action="store_true", help="only the --step-from paths")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--fresh", action="store_true", help="remake the model even if the workdir has it")
    args = ap.parse_args(argv)
    checks = []
    for c in args.check:
        parts = c.split(":")
        if len(parts) not in (2, 3):
            ap.error(f"--check {c}: expected PRECISION:MAX_REL_L2[:MIN_ARGMAX_AGREE]")
        checks.append((parts[0], parts[1], parts[2] if len(parts) == 3 else None))

    work = args.workdir or tempfile.mkdtemp(prefix="dsinfer-ref-")
    model = os.path.join(work, f"{args.preset}{'-fp8' if args.fp8 else ''}"
                         f"{'' if args.seed is None else f'-s{args.seed}'}")
    if args.fresh and os.path.exists(model):
        shutil.rmtree(model)
    if not os.path.exists(os.path.join(model, "config.json")):
        cmd = [args.dsinfer, "make-model", "--preset", args.preset, "--out", model]
        cmd += ["--fp8"] if args.fp8 else []
        cmd += ["--seed", str(args.seed)] if args.seed is not None else []
        run(cmd)
    vocab = json.load(open(os.path.join(model, "config.json")))["vocab_size"]
    # a fixed, spread-out token sequence (a repeat included, so two positions share a token)
    tokens = [(7919 * i + 13) % vocab for i in range(args.n_tokens)]
    if args.n_tokens > 4:
        tokens[-2] = tokens[1]
    tok_arg = ",".join(map(str, tokens))

    ref_path = os.path.join(model, f"ref-{args.n_tokens}.npy")
    if not os.path.exists(ref_path):
        np.save(ref_path, deepseek_ref.forward(model, tokens).numpy().astype(np.float32))

    paths = ([] if args.no_prefill else [None]) + args.step_from
    failed = 0
    for precision, max_rel, min_agree in checks:
        for k in paths:
            label = f"precision {precision}, " + ("prefill" if k is None else f"step-from {k}")
            got = os.path.join(work, "got.npy")
            cmd = [args.dsinfer, "logits", "--model", model, "--tokens", tok_arg, "--out", got,
                   "--precision", precision]
            cmd += ["--attention", args.attention] if args.attention else []
            cmd += ["--step-from", str(k)] if k is not None else []
            run(cmd)
            print(f"[{args.preset}{' fp8' if args.fp8 else ''}, {label}]", flush=True)
            bounds = ["--max-rel-l2", max_rel] + (["--min-argmax-agree", min_agree] if min_agree else [])
            if compare_logits.main(["--ref", ref_path, "--got", got, "--verbose"] + bounds) != 0:
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
