#!/usr/bin/env python3
"""Chat template exactness: every conversation in corpus/conversations.jsonl rendered with the real
Jinja template of tokenizer_config.json (Debian's python3-jinja2, set up as Hugging Face
transformers sets it up) must equal `dsinfer tokenize --chat --render` byte for byte, and
`dsinfer tokenize --chat` must give the ids of that text."""
import argparse
import json
import os
import subprocess
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


def jinja_render(template, bos, conv):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    return env.from_string(template).render(messages=conv["messages"], bos_token=bos,
                                            add_generation_prompt=conv["add_generation_prompt"])


def dsinfer(args, extra, stdin):
    p = subprocess.run([args.dsinfer, "tokenize", "--model", args.model, *extra], input=stdin.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit(f"FAILED: dsinfer tokenize {' '.join(extra)} exited {p.returncode}: {p.stderr.decode()}")
    return [json.loads(l) for l in p.stdout.decode().split("\n") if l]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--conversations", default=os.path.join(HERE, "corpus", "conversations.jsonl"))
    args = ap.parse_args()
    cfg = json.load(open(os.path.join(args.model, "tokenizer_config.json"), encoding="utf-8"))
    bos = cfg["bos_token"]["content"] if isinstance(cfg["bos_token"], dict) else cfg["bos_token"]
    convs = [json.loads(l) for l in open(args.conversations, encoding="utf-8") if l.strip()]
    lines = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in convs)
    ours = dsinfer(args, ["--chat", "--render"], lines)
    expected = [jinja_render(cfg["chat_template"], bos, c) for c in convs]
    bad = 0
    for c, e, o in zip(convs, expected, ours):
        if e != o:
            bad += 1
            k = next((i for i in range(min(len(e), len(o))) if e[i] != o[i]), min(len(e), len(o)))
            print(f"FAIL render '{c['name']}': first difference at {k}: expected {e[k:k + 60]!r} got {o[k:k + 60]!r}")
    # The ids of a rendered conversation are the ids of its text.
    ids = dsinfer(args, ["--chat"], lines)
    ids_of_text = dsinfer(args, [], "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in expected))
    for c, a, b in zip(convs, ids, ids_of_text):
        if a != b:
            bad += 1
            print(f"FAIL ids '{c['name']}': --chat gives {a[:20]} but the text gives {b[:20]}")
    print(f"{len(convs) - bad}/{len(convs)} conversations identical to the Jinja template" if len(ours) == len(convs)
          else f"FAIL: {len(ours)} renders for {len(convs)} conversations")
    if bad or len(ours) != len(convs):
        sys.exit(1)


if __name__ == "__main__":
    main()
