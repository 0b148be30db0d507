#!/usr/bin/python3
"""`dsinfer generate` against `dsinfer logits` on the same model.

Greedy generation must pick, at every step, the argmax of the logits that `dsinfer logits`
computes on the same path (prefill the prompt, then one token per step) for the prompt plus the
tokens generated so far; --prompt must tokenize like
`dsinfer tokenize` (after BOS); --dump-expert-load must write one count per MoE layer and expert
summing to tokens x top_k per layer, in the format `dsinfer eplb --load` accepts.
Usage: generate_consistency.py DSINFER_BIN
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

BIN = sys.argv[1]
failures = []


def run(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"dsinfer {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def expect(cond, what):
    if not cond:
        failures.append(what)


with tempfile.TemporaryDirectory() as work:
    model = os.path.join(work, "m")
    run("make-model", "--preset", "tiny-v3", "--fp8", "--out", model, "--seed", "3")
    cfg = json.load(open(os.path.join(model, "config.json")))

    prompt = "The quick brown fox"
    load_path = os.path.join(work, "load.json")
    g = json.loads(run("generate", "--model", model, "--prompt", prompt, "--max-new-tokens", "6", "--json",
                       "--dump-expert-load", load_path))
    ids = json.loads(run("tokenize", "--model", model, "--text", prompt))
    prompt_ids = [cfg["bos_token_id"]] + ids
    expect(g["prompt_tokens"] == len(prompt_ids), f"prompt_tokens {g['prompt_tokens']} != {len(prompt_ids)}")
    expect(g["generated_tokens"] == len(g["token_ids"]) == 6, "generated_tokens must count token_ids")
    expect(isinstance(g["text"], str) and len(g["text"]) > 0, "text must be the decoded output")

    # Every greedy pick is the argmax of the full-sequence logits at the previous position.
    seq = prompt_ids + g["token_ids"]
    out = os.path.join(work, "l.npy")
    # --step-from makes logits take generate's exact path: prefill the prompt, then one token a step.
    run("logits", "--model", model, "--tokens", ",".join(map(str, seq[:-1])), "--out", out,
        "--step-from", str(len(prompt_ids)))
    logits = np.load(out)
    # generate only picks ids the tokenizer can spell (the model's vocabulary is padded past it).
    tj = json.load(open(os.path.join(model, "tokenizer.json"), encoding="utf-8"))
    spellable = 1 + max(max(tj["model"]["vocab"].values()), max(t["id"] for t in tj["added_tokens"]))
    picks = logits[len(prompt_ids) - 1:, :spellable].argmax(axis=1).tolist()
    expect(picks == g["token_ids"], f"greedy tokens {g['token_ids']} != logits argmax {picks}")

    load = json.load(open(load_path))
    moe_layers = cfg["num_hidden_layers"] - cfg["first_k_dense_replace"]
    expect(len(load) == moe_layers, f"load has {len(load)} layers, want {moe_layers}")
    steps_tokens = len(prompt_ids) + 5  # the prefill plus 5 decode steps (the 6th token is not fed)
    for i, row in enumerate(load):
        expect(len(row) == cfg["n_routed_experts"], f"layer {i}: {len(row)} experts")
        expect(sum(row) == steps_tokens * cfg["num_experts_per_tok"], f"layer {i}: counts sum {sum(row)}")
    plan = json.loads(run("eplb", "--load", load_path, "--replicas", "16", "--groups", "4", "--nodes", "1",
                          "--gpus", "4", "--json"))
    expect(len(plan["phy2log"]) == moe_layers, "eplb must accept the dumped load")

    chat = json.loads(run("generate", "--model", model, "--prompt", "Hi", "--chat", "--max-new-tokens", "2", "--json"))
    # DeepSeek-V3's template for one user turn with a generation prompt.
    templ = json.loads(run("tokenize", "--model", model, "--text",
                           "<\uff5cbegin\u2581of\u2581sentence\uff5c><\uff5cUser\uff5c>Hi<\uff5cAssistant\uff5c>"))
    expect(chat["prompt_tokens"] == len(templ), f"chat prompt has {chat['prompt_tokens']} tokens, template {len(templ)}")

print("\n".join("FAIL: " + f for f in failures))
print(f"generate_consistency: {0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
