#!/usr/bin/python3
"""Compare two logits files [n_tokens, vocab] position by position.

    compare_logits.py --ref A.npy --got B.npy --max-rel-l2 1e-4 [--min-argmax-agree 0.9]

For each position t: rel_l2[t] = ||got[t] - ref[t]||_2 / ||ref[t]||_2. Prints every position's
error when asked (--verbose), always the worst position and the argmax agreement (fraction of
positions where argmax(got[t]) == argmax(ref[t])). Exit status 1 when a bound is broken, the
shapes differ, or either file holds a non-finite value; 0 otherwise.
"""

import argparse
import sys

import numpy as np


def compare(ref, got):
    """Returns (rel_l2 [T], argmax_agree fraction)."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    err = np.linalg.norm(got - ref, axis=-1)
    norm = np.linalg.norm(ref, axis=-1)
    rel = err / np.where(norm > 0, norm, 1.0)
    agree = float(np.mean(np.argmax(got, axis=-1) == np.argmax(ref, axis=-1)))
    return rel, agree


def main(argv=None):
    ap = argparse.ArgumentParser(description="per-position relative L2 error of logits")
    ap.add_argument("--ref", required=True)
    ap.add_argument("--got", required=True)
    ap.add_argument("--max-rel-l2", type=float, required=True)
    ap.add_argument("--min-argmax-agree", type=float, default=None)
    ap.add_argument("--verbose", action="store_true", help="print every position")
    args = ap.parse_args(argv)

    ref, got = np.load(args.ref), np.load(args.got)
    if ref.ndim == 1:
        ref = ref[None, :]
    if got.ndim == 1:
        got = got[None, :]
    if ref.shape != got.shape:
        print(f"FAIL: shapes differ: ref {ref.shape}, got {got.shape}")
        return 1
    if ref.ndim != 2 or ref.shape[0] == 0:
        print(f"FAIL: expected [n_tokens, vocab] logits, got shape {ref.shape}")
        return 1
    for label, a in (("ref", ref), ("got", got)):
        if not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))[0]
            print(f"FAIL: {label} has a non-finite value at position {bad[0]}, index {bad[1]}")
            return 1

    rel, agree = compare(ref, got)
    if args.verbose:
        for t, r in enumerate(rel):
            print(f"position {t}: rel_l2 {r:.3e}")
    worst = int(np.argmax(rel))
    print(f"positions {len(rel)}: worst rel_l2 {rel[worst]:.3e} at position {worst}, "
          f"mean {rel.mean():.3e}; argmax agreement {agree:.3f}")
    ok = True
    if not rel[worst] <= args.max_rel_l2:
        over = np.nonzero(rel > args.max_rel_l2)[0]
        print(f"FAIL: rel_l2 above {args.max_rel_l2:g} at {len(over)} position(s): {over[:20].tolist()}")
        ok = False
    if args.min_argmax_agree is not None and agree < args.min_argmax_agree:
        print(f"FAIL: argmax agreement {agree:.3f} below {args.min_argmax_agree:g}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
