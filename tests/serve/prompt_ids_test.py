#!/usr/bin/python3
"""One text prompt, one token sequence: /v1/completions and `dsinfer generate` give the same prompt
ids for the same text, and those are what Hugging Face's tokenizer gives a plain-text prompt
under this tokenizer_config.json (add_bos_token: true): BOS, then the text encoded without
special tokens (npm `tokenizers`, the Rust implementation).

    prompt_ids_test.py --dsinfer BIN --work DIR
"""
import argparse
import json
import os
import re
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tokenizer"))
import check_exactness  # noqa: E402  (ensure_npm: the npm `tokenizers` install)

TEXTS = ["Hello world", "  two leading spaces", "naïve café, 東京 🤖", "line one\nline two\n",
         "digits 1234567890", "a special <｜end▁of▁sentence｜> inside"]


def hf_ids(work, tokenizer_json, texts):
    env = dict(os.environ, DSINFER_NPM_DIR=work)
    r = subprocess.run(["node", os.path.join(HERE, "..", "tokenizer", "hf_reference.js"), "encode", tokenizer_json],
                       input="".join(json.dumps(t) + "\n" for t in texts), capture_output=True, text=True,
                       env=env, check=True)
    return [json.loads(line) for line in r.stdout.splitlines()]


def bos_id(model):
    cfg = json.load(open(os.path.join(model, "tokenizer_config.json")))
    bos = cfg["bos_token"]
    content = bos["content"] if isinstance(bos, dict) else bos
    assert cfg.get("add_bos_token") is True, "this test expects a tokenizer that adds BOS"
    tok = json.load(open(os.path.join(model, "tokenizer.json")))
    return next(t["id"] for t in tok["added_tokens"] if t["content"] == content)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    model = os.path.join(a.work, "tiny-v3")
    if not os.path.exists(os.path.join(model, "config.json")):
        subprocess.run([a.dsinfer, "make-model", "--preset", "tiny-v3", "--out", model], check=True,
                       stdout=subprocess.DEVNULL)
    npm = os.path.join(a.work, "npm")
    check_exactness.ensure_npm(npm)
    bos = bos_id(model)
    expected = [[bos] + ids for ids in hf_ids(npm, os.path.join(model, "tokenizer.json"), TEXTS)]

    generated = []
    for t in TEXTS:
        out = subprocess.run([a.dsinfer, "generate", "--model", model, "--prompt", t, "--max-new-tokens", "1", "--json"],
                             capture_output=True, text=True, check=True).stdout
        generated.append(json.loads(out)["prompt_token_ids"])

    server = subprocess.Popen([a.dsinfer, "serve", "--model", model, "--port", "0", "--kv-cache-gb", "0.05",
                               "--served-model-name", "tiny"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    served = []
    try:
        line = server.stdout.readline()
        url = re.search(r"listening on (http://[\d.]+:\d+)", line).group(1)
        for t in TEXTS:
            body = json.dumps({"model": "tiny", "prompt": t, "max_tokens": 1, "return_token_ids": True}).encode()
            req = urllib.request.Request(url + "/v1/completions", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:
                served.append(json.loads(r.read())["prompt_token_ids"])
    finally:
        server.terminate()
        server.wait(timeout=60)

    failures = 0
    for t, want, gen, srv in zip(TEXTS, expected, generated, served):
        ok = want == gen == srv
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {t!r}: {len(want)} ids" +
              ("" if ok else f"\n  hugging face {want}\n  generate     {gen}\n  completions  {srv}"))
    print(f"{len(TEXTS) - failures} of {len(TEXTS)} prompts: BOS + Hugging Face's ids on both paths")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
