#!/usr/bin/python3
"""Speculative decoding with the MTP module, measured (docs/benchmarks.md, "Speculative decoding
with MTP").

    scripts/mtp_bench.py [--quick] [--dsinfer build/dsinfer] [--model assets/demo-model] [--out FILE.json]

1. Batch 1: `dsinfer generate --json` (greedy, 256 new tokens) from held-out prompts, without
   drafts and with K = 1 and 2, interleaved, several rounds: decode tokens/s (median per
   setting), the acceptance rate a, and the measured cost c of the MTP passes per step relative to
   a main forward without drafts (both from the runs' own timers). For K = 1 the most drafts can
   give is (1 + a) / (1 + c) if verifying a draft were free; the speed-up reached is reported as
   a fraction of that bound, beside V (the verify forward's cost in forwards without drafts) and
   (1 + a) / (V + c), the bound counting it (docs/benchmarks.md says why V > 1 at batch 1).
2. Batch 32: `dsinfer serve` without and with `--speculative mtp`, each loaded by `dsinfer bench`
   at concurrency 32 (random-token prompts of 64, 128 greedy tokens each): output tokens/s, and
   the acceptance and tokens per step the server counted.
--quick: two prompts, 32 tokens, one round, a small batch: a smoke run for CI (the figures mean
nothing on a machine doing other work).
--model: any BF16 or FP8 checkpoint with an MTP layer; the demo model widened by zero MLP units
(tools/train_demo/widen.py: the same function and drafts, weights read from DRAM) measures the
regime the (1 + a) / (1 + c) bound assumes.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "support"))
from e2e_util import check, failures, start, stop_all, write_report  # noqa: E402

PROMPTS = ["The jury said", "He was a little", "It is not", "In the afternoon", "She looked at the",
           "The President of the United States", "There is no reason to believe that", "The committee will meet"]


def generate(a, prompt, tokens, k):
    cmd = [a.dsinfer, "generate", "--model", a.model, "--prompt", prompt, "--max-new-tokens", str(tokens),
           "--temperature", "0", "--json"] + (["--speculative", "mtp", "--draft-tokens", str(k)] if k else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0, f"{' '.join(cmd[1:])}: {r.stderr.strip()[-300:]}")
    return json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else None


def batch_one(a, report):
    prompts = PROMPTS[:2] if a.quick else PROMPTS
    tokens, rounds = (32, 1) if a.quick else (256, 3)
    runs = {k: [] for k in (0, 1, 2)}
    for _ in range(rounds):
        for p in prompts:
            outs = {k: generate(a, p, tokens, k) for k in runs}
            if any(o is None for o in outs.values()):
                continue
            for k in (1, 2):
                check(outs[k]["token_ids"] == outs[0]["token_ids"], f"{p!r}, K = {k}: the tokens differ from no drafts")
            for k, o in outs.items():
                runs[k].append(o)
    if not runs[0]:
        return
    forward_ms = statistics.median(o["forward_ms_per_step"] for o in runs[0])
    rows = {}
    for k, outs in runs.items():
        row = {"decode_tokens_per_s": statistics.median(o["decode_tokens_per_s"] for o in outs),
               "forward_ms_per_step": statistics.median(o["forward_ms_per_step"] for o in outs)}
        if k:
            drafted = sum(o["mtp_drafted_tokens"] for o in outs)
            row["acceptance_rate"] = sum(o["mtp_accepted_tokens"] for o in outs) / max(1, drafted)
            row["tokens_per_step"] = statistics.median(o["tokens_per_step"] for o in outs)
            row["mtp_ms_per_step"] = statistics.median(o["mtp_ms_per_step"] for o in outs)
            row["mtp_cost"] = row["mtp_ms_per_step"] / forward_ms
            row["speedup"] = row["decode_tokens_per_s"] / rows[0]["decode_tokens_per_s"]
        rows[k] = row
    one = rows[1]
    one["bound"] = (1 + one["acceptance_rate"]) / (1 + one["mtp_cost"])
    one["of_bound"] = one["speedup"] / one["bound"]
    # The bound above counts the forward that verifies a draft as free; V is what it costs, in
    # forwards without drafts, and (1 + a) / (V + c) what drafts can give counting it.
    one["verify_cost"] = one["forward_ms_per_step"] / forward_ms
    one["bound_with_verify"] = (1 + one["acceptance_rate"]) / (one["verify_cost"] + one["mtp_cost"])
    report["batch_1"] = {"prompts": len(prompts), "new_tokens": tokens, "rounds": rounds,
                         "no_drafts": rows[0], "k1": rows[1], "k2": rows[2]}
    print(f"   batch 1: {rows[0]['decode_tokens_per_s']:.1f} tok/s without drafts; K=1 {one['decode_tokens_per_s']:.1f} "
          f"(x{one['speedup']:.2f}, a={one['acceptance_rate']:.3f}, c={one['mtp_cost']:.3f}, bound x{one['bound']:.2f}, "
          f"{100 * one['of_bound']:.0f}% of it; V={one['verify_cost']:.2f}, so x{one['bound_with_verify']:.2f} counting "
          f"the verify row); K=2 {rows[2]['decode_tokens_per_s']:.1f} "
          f"(x{rows[2]['speedup']:.2f}, a={rows[2]['acceptance_rate']:.3f})", flush=True)


def batch_many(a, report):
    conc, n, out_len = (4, 8, 16) if a.quick else (32, 64, 128)
    rows = {}
    for name, extra in (("no_drafts", []), ("k1", ["--speculative", "mtp"])):
        s = start(a.dsinfer, ["serve", "--model", a.model, "--served-model-name", "bench", "--max-running-requests",
                              str(conc)] + extra)
        out = os.path.join(a.work, f"bench_{name}.json")
        r = subprocess.run([a.dsinfer, "bench", "--url", s.url, "--concurrency", str(conc), "--num-requests", str(n),
                            "--input-len", "64", "--output-len", str(out_len), "--input-len-spread", "0",
                            "--output-len-spread", "0", "--seed", "3", "--out", out], capture_output=True, text=True)
        s.kill()
        s.wait()
        if not check(r.returncode == 0, f"bench against serve {' '.join(extra)}: {r.stderr.strip()[-300:]}"):
            continue
        level = json.load(open(out))["levels"][0]
        check(level["failed"] == 0, f"{name}: {level['failed']} requests failed")
        rows[name] = {k: level[k] for k in ("output_tokens_per_s", "mtp_acceptance_rate", "tokens_per_step")
                      if k in level}
    if len(rows) == 2 and check(rows["no_drafts"].get("output_tokens_per_s", 0) > 0, "bench measured a throughput"):
        check("mtp_acceptance_rate" in rows["k1"], "bench reports the server's MTP acceptance")
        rows["k1"]["speedup"] = rows["k1"]["output_tokens_per_s"] / rows["no_drafts"]["output_tokens_per_s"]
    report["batch_many"] = dict(rows, concurrency=conc, requests=n, output_len=out_len)
    print(f"   batch {conc}: {json.dumps(rows)}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", default=os.path.join(here, "..", "build", "dsinfer"))
    ap.add_argument("--model", default=os.path.join(here, "..", "assets", "demo-model"))
    ap.add_argument("--work", default="/tmp/dsinfer-mtp-bench")
    ap.add_argument("--out", default="")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    report = {"model": os.path.basename(os.path.normpath(a.model)), "cpus": os.cpu_count()}
    t0 = time.time()
    try:
        print("== batch 1: generate without drafts, K = 1, K = 2", flush=True)
        batch_one(a, report)
        print("== batch many: serve + bench without and with MTP", flush=True)
        batch_many(a, report)
    finally:
        stop_all()
    write_report(report, a.out)
    print(f"mtp_bench: {len(failures)} failures in {time.time() - t0:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
