#!/usr/bin/python3
"""The shipped demo model (assets/demo-model) against its own trainer (tools/train_demo/model.py):
the first test of dsinfer on trained weights.

    check_demo_model.py --dsinfer BIN --model assets/demo-model --text tools/train_demo/heldout_sample.txt

- dsinfer's fp32 logits over a held-out text equal the PyTorch model's on the same checkpoint
  within 1e-4 relative L2, for the BF16 checkpoint and for its FP8 copy (the trainer's forward on
  the FP8 weights widened exactly as dsinfer widens them), and so do the MTP module's
  (`dsinfer logits --mtp-out`: row i predicts token i + 2);
- greedy generation from three prompts gives the trainer's greedy tokens, up to EOS (a
  difference is allowed only where the trainer's two best logits are within 1e-3: a tie either
  may break);
- the default precision (bf16 activations) stays within 2e-2 relative L2 of fp32;
- `generate --speculative mtp` gives the same greedy tokens and reports its acceptance rate.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tools", "train_demo"))
import bpe  # noqa: E402
import export  # noqa: E402

sys.path.insert(0, os.path.join(here, "..", "support"))
from e2e_util import check, dsinfer_logits, finish, generate_json  # noqa: E402


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--tokens", type=int, default=160)
    a = ap.parse_args()
    t0 = time.time()
    torch.set_num_threads(1)
    tok = bpe.load(a.model)
    with open(a.text, encoding="utf-8") as f:
        text = " ".join(line.strip() for line in f if line.strip())
    tokens = ([tok.bos_id] + tok.encode(text))[: a.tokens]
    with tempfile.TemporaryDirectory() as work:
        for sub in ("", "fp8"):
            d = os.path.join(a.model, sub)
            model, _ = export.load_checkpoint(d)
            with torch.no_grad():
                ref, ref_mtp = (x[0].double().numpy() for x in model(torch.tensor([tokens]), mtp=True))
            got, got_mtp = dsinfer_logits(a.dsinfer, d, tokens, "fp32", work, mtp=True)
            err, mtp_err = rel_l2(got, ref), rel_l2(got_mtp, ref_mtp)
            print(f"     {sub or 'bf16'} checkpoint, {len(tokens)} held-out tokens: relative L2 {err:.2e}, "
                  f"MTP module {mtp_err:.2e}")
            check(err < 1e-4, f"{sub or 'bf16'} checkpoint: dsinfer fp32 logits vs the trainer's, "
                              f"{len(tokens)} held-out tokens: relative L2 {err:.2e} (< 1e-4)")
            check(mtp_err < 1e-4, f"{sub or 'bf16'} checkpoint: dsinfer's MTP module vs the trainer's, "
                                  f"{len(tokens) - 1} rows: relative L2 {mtp_err:.2e} (< 1e-4)")
            if not sub:
                low = dsinfer_logits(a.dsinfer, d, tokens, "default", work)
                err = rel_l2(low, ref)
                print(f"     default precision vs fp32: relative L2 {err:.2e}")
                check(err < 2e-2, f"default precision vs fp32: relative L2 {err:.2e} (< 2e-2)")

        # Greedy continuations, dsinfer against the trainer (both stop at EOS).
        model, _ = export.load_checkpoint(a.model)
        for prompt in ("The jury said", "He was", "It is"):
            ids = [tok.bos_id] + tok.encode(prompt)
            ref_ids, margins = [], []
            with torch.no_grad():
                seq = list(ids)
                while len(ref_ids) < 16 and (not ref_ids or ref_ids[-1] != tok.eos_id):
                    logits = model(torch.tensor([seq]), mtp=False)[0][0, -1]
                    top = torch.topk(logits, 2)
                    ref_ids.append(int(top.indices[0]))
                    margins.append(float(top.values[0] - top.values[1]))
                    seq.append(ref_ids[-1])
            got_ids = generate_json(a.dsinfer, a.model, prompt, 16, "--precision", "fp32")["token_ids"]
            first_diff = next((i for i, (x, y) in enumerate(zip(got_ids, ref_ids)) if x != y), None)
            same = first_diff is None and len(got_ids) == len(ref_ids)
            tie = first_diff is not None and margins[first_diff] < 1e-3
            check(same or tie, f"greedy from {prompt!r}: dsinfer {got_ids} vs trainer {ref_ids}"
                               + (f" (first difference at {first_diff}, margin {margins[first_diff]:.2e})"
                                  if first_diff is not None else ""))
            spec = generate_json(a.dsinfer, a.model, prompt, 16, "--precision", "fp32", "--speculative", "mtp")
            check(spec["token_ids"] == got_ids and 0 <= spec.get("mtp_acceptance_rate", -1) <= 1
                  and spec["tokens_per_step"] >= 1,
                  f"greedy from {prompt!r} with MTP drafts: {spec['token_ids']}, acceptance "
                  f"{spec.get('mtp_acceptance_rate')}, {spec['tokens_per_step']:.2f} tokens per step")
            print(f"     {prompt!r} -> {tok.decode(ref_ids)!r}")
    finish("check_demo_model", t0)


if __name__ == "__main__":
    main()
