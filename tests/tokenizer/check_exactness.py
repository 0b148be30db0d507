#!/usr/bin/env python3
"""Exactness of `dsinfer tokenize` / `dsinfer detokenize` against Hugging Face's tokenizer.

Installs npm `tokenizers` 0.23.x (the Rust implementation) under --work, computes the expected
ids of every corpus string with it, and compares them with dsinfer's, byte for byte; then does the
same for decoding (the expected ids, and random id sequences). Besides the real DeepSeek-V3
tokenizer it checks variants of it that switch on the components DeepSeek does not use
(GPT-2 ByteLevel regex, normalizers, other pre-tokenizers and split behaviors, added-token
flags, BPE options), on a subset of the corpus. Exit status 0 only when everything matches."""
import argparse
import copy
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def ensure_npm(work):
    os.makedirs(work, exist_ok=True)
    pkg = os.path.join(work, "node_modules", "tokenizers", "package.json")
    if os.path.exists(pkg) and json.load(open(pkg)).get("version", "").startswith("0.23."):
        return
    if not os.path.exists(os.path.join(work, "package.json")):
        with open(os.path.join(work, "package.json"), "w") as f:
            f.write('{"private": true}\n')
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "tokenizers@0.23"],
                   cwd=work, check=True)


def run(cmd, stdin_text, env=None):
    p = subprocess.run(cmd, input=stdin_text.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if p.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)} exited {p.returncode}:\n{p.stderr.decode(errors='replace')}")
    # Not splitlines(): it would also split at U+2028, U+0085 and friends inside JSON strings.
    return [l for l in p.stdout.decode().split("\n") if l]


def jsonl(values):
    return "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values)


class Checker:
    def __init__(self, args):
        self.args = args
        self.env = dict(os.environ, DSINFER_NPM_DIR=args.work, RAYON_NUM_THREADS="1")
        self.failures = 0

    def hf(self, mode, tokenizer_dir, values, extra=()):
        cmd = ["node", os.path.join(HERE, "hf_reference.js"), mode, os.path.join(tokenizer_dir, "tokenizer.json"), *extra]
        return [json.loads(l) for l in run(cmd, jsonl(values), self.env)]

    def ours(self, command, tokenizer_dir, values, extra=()):
        cmd = [self.args.dsinfer, command, "--model", tokenizer_dir, *extra]
        return [json.loads(l) for l in run(cmd, jsonl(values))]

    def compare(self, what, inputs, labels, expected, actual, show):
        if len(expected) != len(actual):
            print(f"FAIL {what}: {len(expected)} expected lines, {len(actual)} from dsinfer")
            self.failures += 1
            return
        bad = [i for i in range(len(expected)) if expected[i] != actual[i]]
        status = "ok  " if not bad else "FAIL"
        print(f"{status} {what}: {len(expected) - len(bad)}/{len(expected)} identical")
        for i in bad[:8]:
            e, a = expected[i], actual[i]
            k = next((j for j in range(min(len(e), len(a))) if e[j] != a[j]), min(len(e), len(a)))
            print(f"     [{labels[i]}] input {show(inputs[i])}")
            print(f"       first difference at {k}: expected {e[max(0, k - 3):k + 6]!r} got {a[max(0, k - 3):k + 6]!r}")
        self.failures += bool(bad)

    def check_tokenizer(self, name, tokenizer_dir, texts, labels, decode=True):
        show = lambda s: repr(s if len(s) < 120 else s[:120] + f"... ({len(s)} chars)")
        expected = self.hf("encode", tokenizer_dir, texts)
        actual = self.ours("tokenize", tokenizer_dir, texts)
        self.compare(f"{name}: encode", texts, labels, expected, actual, show)
        if not decode:
            return expected
        for skip in (False, True):
            extra_hf = ["skip"] if skip else []
            extra_ours = ["--skip-special"] if skip else []
            e = self.hf("decode", tokenizer_dir, expected, extra_hf)
            a = self.ours("detokenize", tokenizer_dir, expected, extra_ours)
            self.compare(f"{name}: decode{' skipping special tokens' if skip else ''}", expected, labels, e, a,
                         lambda ids: str(ids[:40]))
        return expected


def make_variants(base, out_dir):
    """tokenizer.json variants exercising what DeepSeek-V3's own file does not."""
    def variant(name, edit):
        j = copy.deepcopy(base)
        edit(j)
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False)
        return name, d

    bl = lambda prefix=False, regex=False: {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": True,
                                            "use_regex": regex}
    rx = lambda r: {"Regex": r}

    def gpt2(j):
        j["pre_tokenizer"] = bl(True, True)

    def normalizers(j):
        j["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "NFKC"}, {"type": "Lowercase"},
            {"type": "Replace", "pattern": {"String": "\t"}, "content": "  "},
            {"type": "Replace", "pattern": rx("\\d{4}"), "content": "#"},
            {"type": "Prepend", "prepend": "▁"}]}

    def nfd(j):
        j["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "NFD"}, {"type": "Strip", "strip_left": True, "strip_right": True}]}

    def nfc(j):
        j["normalizer"] = {"type": "NFKD"}
        j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": rx("\\s+(?!\\S)|\\s+|\\w+|\\h+"), "behavior": "Isolated", "invert": False},
            bl()]}

    def behaviors(j):
        j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithNext", "invert": False},
            {"type": "Split", "pattern": rx("\\p{P}+"), "behavior": "MergedWithPrevious", "invert": False},
            {"type": "Split", "pattern": rx("[aeiouy]+"), "behavior": "Contiguous", "invert": True},
            {"type": "Split", "pattern": rx("q|x|z"), "behavior": "Removed", "invert": False},
            {"type": "Digits", "individual_digits": True},
            {"type": "Punctuation", "behavior": "Contiguous"},
            bl()]}

    def whitespace(j):
        j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"}, {"type": "Digits", "individual_digits": False}, bl(True)]}

    def words(j):
        j["normalizer"] = {"type": "Lowercase"}
        j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Whitespace"},
            {"type": "Split", "pattern": rx("s\\b"), "behavior": "MergedWithNext", "invert": True},
            {"type": "Split", "pattern": {"String": "e"}, "behavior": "Removed", "invert": True},
            bl()]}

    def added_flags(j):
        j["normalizer"] = {"type": "Lowercase"}
        for t in j["added_tokens"]:
            if t["content"] == "<｜User｜>":
                t.update(lstrip=True)
            if t["content"] == "<｜Assistant｜>":
                t.update(rstrip=True, normalized=False)
            if t["content"] == "<｜tool▁sep｜>":
                t.update(single_word=True)
            if t["content"] == "<｜end▁of▁sentence｜>":
                t.update(lstrip=True, rstrip=True)
        nxt = max(t["id"] for t in j["added_tokens"]) + 1
        for content, flags in [("hello", dict(single_word=True, normalized=False)),
                               (" world", dict(lstrip=True, rstrip=True, normalized=True)),
                               ("The", dict(normalized=True)),       # lowercased before matching
                               ("1 2", dict(single_word=True, normalized=True)),
                               ("ab", dict(normalized=True, special=True)),
                               ("Ġdog", dict(normalized=False))]:
            t = dict(id=nxt, content=content, single_word=False, lstrip=False, rstrip=False, normalized=True,
                     special=False)
            t.update(flags)
            j["added_tokens"].append(t)
            nxt += 1

    def bpe_options(j):
        j["model"]["ignore_merges"] = True
        j["model"]["merges"] = [m.split(" ") for m in j["model"]["merges"]]

    return [variant(n, f) for n, f in [("gpt2-bytelevel", gpt2), ("normalizers", normalizers), ("nfd-strip", nfd),
                                       ("nfkd-onig-escapes", nfc), ("split-behaviors", behaviors),
                                       ("whitespace-digits", whitespace), ("whitespace-words", words),
                                       ("added-token-flags", added_flags), ("bpe-options", bpe_options)]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--model", required=True, help="directory with DeepSeek-V3's tokenizer.json")
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus", "corpus.jsonl"))
    ap.add_argument("--work", required=True, help="scratch folder (npm install goes here)")
    ap.add_argument("--variant-stride", type=int, default=5, help="variants use every Nth corpus string")
    args = ap.parse_args()
    args.work = os.path.abspath(args.work)

    ensure_npm(args.work)
    rows = [json.loads(l) for l in open(args.corpus, encoding="utf-8") if l.strip()]
    labels = [r[0] for r in rows]
    texts = [r[1] for r in rows]
    c = Checker(args)
    print(f"corpus: {len(texts)} strings, {sum(len(t.encode()) for t in texts)} bytes")

    expected = c.check_tokenizer("deepseek-v3", args.model, texts, labels)

    # Decoding random id streams: arbitrary byte sequences, broken UTF-8, special tokens.
    rng = random.Random(7)
    vocab_n = len(json.load(open(os.path.join(args.model, "tokenizer.json")))["model"]["vocab"])
    added = [t["id"] for t in json.load(open(os.path.join(args.model, "tokenizer.json")))["added_tokens"]]
    streams = [[rng.choice(added) if rng.random() < 0.05 else rng.randrange(vocab_n) for _ in range(rng.randint(0, 60))]
               for _ in range(400)]
    streams += [ids[: rng.randint(0, len(ids))] for ids in expected[:400]]  # cut mid-character
    for skip in (False, True):
        e = c.hf("decode", args.model, streams, ["skip"] if skip else [])
        a = c.ours("detokenize", args.model, streams, ["--skip-special"] if skip else [])
        c.compare(f"deepseek-v3: decode random id streams{' skipping special' if skip else ''}", streams,
                  ["random"] * len(streams), e, a, lambda ids: str(ids[:40]))

    base = json.load(open(os.path.join(args.model, "tokenizer.json"), encoding="utf-8"))
    sub = list(range(0, len(texts), args.variant_stride))
    for name, d in make_variants(base, os.path.join(args.work, "variants")):
        c.check_tokenizer(name, d, [texts[i] for i in sub], [labels[i] for i in sub], decode=(name == "added-token-flags"))

    if c.failures:
        sys.exit(f"{c.failures} check(s) differ from Hugging Face tokenizers")
    print("all identical to Hugging Face tokenizers")


if __name__ == "__main__":
    main()
