#!/usr/bin/env python3
"""The demo model's tokenizer (tools/train_demo/bpe.py's files) against Hugging Face's.

    check_demo_tokenizer.py --dsinfer build/dsinfer --model DIR --work DIR

DIR holds the tokenizer.json and tokenizer_config.json that ship with the demo model. Trains
nothing. npm `tokenizers` (installed under --work, as check_exactness.py does) and
`dsinfer tokenize`/`detokenize` must give the same ids and text for: the committed held-out
sample of the demo's corpus (each line, and the whole sample), the tokenizer corpus of
tests/tokenizer/corpus (Unicode edge cases the Brown text lacks), BOS as add_bos_token says it,
and a chat turn. Decoding must give the text back. The Python encoder the trainer uses
(tools/train_demo/bpe.py) must give Hugging Face's ids too, so the model trains on the ids it is
served with. Exit status 0 only when everything matches."""
import argparse
import json
import os
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools", "train_demo"))
import bpe  # noqa: E402
from check_exactness import Checker, ensure_npm  # noqa: E402


def unicode14(text):
    """Whether Python's unicodedata (Unicode 14) knows every character: only where it does not can
    bpe.py's character classes differ from Hugging Face's (Unicode 16)."""
    return all(unicodedata.category(c) != "Cn" for c in text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--model", required=True, help="directory with the demo's tokenizer files")
    ap.add_argument("--sample", default=os.path.join(ROOT, "tools", "train_demo", "heldout_sample.txt"))
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus", "corpus.jsonl"))
    ap.add_argument("--work", required=True, help="scratch folder (npm install goes here)")
    args = ap.parse_args()
    args.work = os.path.abspath(args.work)
    ensure_npm(args.work)
    c = Checker(args)

    def check(name, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")
        c.failures += not ok

    cfg = json.load(open(os.path.join(args.model, "tokenizer_config.json"), encoding="utf-8"))
    content = lambda t: t.get("content") if isinstance(t, dict) else t  # a string or an AddedToken
    check("tokenizer_config.json: add_bos_token, BOS and EOS as DeepSeek-V3 names them",
          cfg.get("add_bos_token") is True and content(cfg.get("bos_token")) == bpe.BOS
          and content(cfg.get("eos_token")) == bpe.EOS,
          json.dumps({k: cfg.get(k) for k in ("add_bos_token", "bos_token", "eos_token")}, ensure_ascii=False))

    sample = open(args.sample, encoding="utf-8").read()
    lines = sample.split("\n")[:-1]
    texts = lines + [sample]
    labels = [f"sample line {i + 1}" for i in range(len(lines))] + ["whole sample"]
    print(f"held-out sample: {len(lines)} lines, {len(sample.encode())} bytes")
    ids = c.check_tokenizer("held-out sample", args.model, texts, labels)
    decoded = c.hf("decode", args.model, ids)
    check("held-out sample: decode(encode(text)) is the text", decoded == texts)
    print(f"     {len(ids[-1])} tokens, {len(sample.encode()) / max(1, len(ids[-1])):.2f} bytes per token")

    rows = [json.loads(l) for l in open(args.corpus, encoding="utf-8") if l.strip()]
    corpus = [r[1] for r in rows]
    corpus_ids = c.check_tokenizer("tokenizer corpus", args.model, corpus, [r[0] for r in rows])

    # BOS: Hugging Face's post-processor and dsinfer's add_bos_token must agree.
    with_bos = c.hf("encode", args.model, texts, ["special"])
    check("BOS: Hugging Face's post-processor puts BOS (id 0) first, as add_bos_token: true tells dsinfer to",
          with_bos == [[0] + i for i in ids] and c.ours("tokenize", args.model, texts, ["--add-bos"]) == with_bos)

    conv = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who won?"},
                         {"role": "assistant", "content": "The jury."}, {"role": "user", "content": "Why?"}],
            "add_generation_prompt": True}
    rendered = c.ours("tokenize", args.model, [conv], ["--chat", "--render"])
    want = f"{bpe.BOS}Be brief.<｜User｜>Who won?<｜Assistant｜>The jury.{bpe.EOS}<｜User｜>Why?<｜Assistant｜>"
    check("chat template: DeepSeek-V3's format", rendered == [want], repr(rendered))
    check("chat template: ids are Hugging Face's encoding of the rendered text",
          c.ours("tokenize", args.model, [conv], ["--chat"]) == c.hf("encode", args.model, [want]))

    tok = bpe.load(args.model)
    check("bpe.py encode: the held-out sample as Hugging Face", [tok.encode(t) for t in texts] == ids)
    differ = [t for t, i in zip(corpus, corpus_ids) if tok.encode(t) != i]
    unexplained = [t for t in differ if unicode14(t)]
    check(f"bpe.py encode: the tokenizer corpus as Hugging Face ({len(corpus) - len(differ)}/{len(corpus)} identical,"
          f" {len(differ)} differ, each with characters Python's Unicode 14 lacks)", not unexplained,
          f"{len(unexplained)} differ with no such character, first {unexplained[:1]!r}")
    check("bpe.py decode: the held-out sample", [tok.decode(i) for i in ids] == texts)

    if c.failures:
        sys.exit(f"{c.failures} check(s) failed")
    print("the demo tokenizer: dsinfer, Hugging Face and bpe.py agree")


if __name__ == "__main__":
    main()
