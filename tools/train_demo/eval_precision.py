#!/usr/bin/python3
"""What each reduced precision costs the trained demo model, on held-out text (docs/kernels.md).

    /usr/bin/python3 tools/train_demo/eval_precision.py [--dsinfer build/dsinfer] [--model assets/demo-model]
        [--work /tmp/dsinfer-train-demo] [--windows 12] [--window 512]

Held-out text (data.py's split, never trained on) is cut into windows of --window tokens; dsinfer
computes every position's logits (`dsinfer logits`) in each configuration, and for each we report
the held-out perplexity (exp of the mean next-token cross-entropy) and the share of positions
whose greedy (argmax) token equals fp32's:

  fp32                  fp32 weights widened from BF16, fp32 activations: the reference
  default (prefill)     dsinfer's default: BF16 activations between kernels, a BF16 latent cache
  default (decode)      the same, every token after the first a decode step through the cache
  FP8 weights           the FP8 checkpoint (assets/demo-model/fp8), default precision
  FP8 KV cache          --kv-cache-dtype fp8, decode steps (FlashMLA's FP8 latent rows)
  FP8 dispatch          FP8 weights with FP8 expert activations (--expert-activations fp8): the
                        payload DeepEP's FP8 dispatch sends; the logits are the same on any
                        number of expert-parallel ranks (docs/parallel.md), so one process runs it
  all FP8               FP8 weights, FP8 dispatch and the FP8 KV cache (decode) together
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import bpe  # noqa: E402
import data  # noqa: E402
from train import encode_documents  # noqa: E402

def windows_of(tok, path, n, size):
    """The first n windows of `size` tokens of the held-out stream (documents as BOS, text, EOS, as
    the model trained), spread evenly over the file."""
    ids = encode_documents(tok, path, tok.bos_id, tok.eos_id).tolist()
    stride = max(size, (len(ids) - size) // n)
    return [ids[s: s + size] for s in range(0, len(ids) - size, stride)][:n]


def logits(a, model, tokens, extra, work):
    out = os.path.join(work, "l.npy")
    cmd = [a.dsinfer, "logits", "--model", model, "--tokens", ",".join(map(str, tokens)), "--out", out] + extra
    subprocess.run(cmd, check=True, capture_output=True)
    return np.load(out).astype(np.float64)


def nll_and_argmax(l, tokens):
    """Mean next-token NLL over positions 0..n-2, and the argmax at each of them."""
    l = l[:-1]
    z = l - l.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    target = np.array(tokens[1:])
    return -logp[np.arange(len(target)), target], l.argmax(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", default=os.path.join(here, "..", "..", "build", "dsinfer"))
    ap.add_argument("--model", default=os.path.join(here, "..", "..", "assets", "demo-model"))
    ap.add_argument("--work", default="/tmp/dsinfer-train-demo")
    ap.add_argument("--windows", type=int, default=12)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    _, heldout = data.prepare(a.work)
    tok = bpe.load(a.model)
    wins = windows_of(tok, heldout, a.windows, a.window)
    fp8 = os.path.join(a.model, "fp8")
    configs = [
        ("fp32", a.model, ["--precision", "fp32"]),
        ("default (prefill)", a.model, []),
        ("default (decode)", a.model, ["--step-from", "1"]),
        ("FP8 weights", fp8, []),
        ("FP8 weights + FP8 dispatch", fp8, ["--expert-activations", "fp8"]),
        ("FP8 KV cache (decode)", a.model, ["--kv-cache-dtype", "fp8", "--step-from", "1"]),
        ("all FP8 (decode)", fp8, ["--expert-activations", "fp8", "--kv-cache-dtype", "fp8", "--step-from", "1"]),
    ]
    results = {}
    with tempfile.TemporaryDirectory() as work:
        ref_argmax = []
        for name, model, extra in configs:
            nll, agree, count = 0.0, 0, 0
            for i, w in enumerate(wins):
                n, am = nll_and_argmax(logits(a, model, w, extra, work), w)
                nll += float(n.sum())
                count += len(n)
                if name == "fp32":
                    ref_argmax.append(am)
                agree += int((am == ref_argmax[i]).sum())
            results[name] = {"perplexity": math.exp(nll / count), "greedy_agreement": agree / count, "tokens": count}
            print(f"{name:>38}: perplexity {results[name]['perplexity']:8.3f}  "
                  f"({results[name]['perplexity'] / results['fp32']['perplexity'] - 1:+.2%} vs fp32)  "
                  f"greedy agreement {results[name]['greedy_agreement']:.4f}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
