#!/usr/bin/env python3
"""`dsinfer tokenize` / `dsinfer detokenize` on the command line: the happy paths and every error a
user can hit exit with status 1 and a message that says what to fix."""
import argparse
import json
import subprocess
import sys

failures = []


def run(args, cmd, stdin=""):
    data = stdin if isinstance(stdin, bytes) else stdin.encode()
    p = subprocess.run([args.dsinfer, *cmd], input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode(), p.stderr.decode(errors="strict")


def expect(name, got, want_rc, want_out=None, want_err=None):
    rc, out, err = got
    ok = rc == want_rc and (want_out is None or out == want_out) and (want_err is None or want_err in err)
    print(("ok   " if ok else "FAIL ") + name)
    if not ok:
        failures.append(name)
        print(f"     rc={rc} stdout={out[:200]!r} stderr={err[:300]!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--model", required=True)
    args = ap.parse_args()
    m = ["--model", args.model]
    text = "Hello world! 12345 你好世界 <｜User｜>hi<｜end▁of▁sentence｜>"
    ids = [19923, 2058, 3, 223, 6895, 1883, 223, 30594, 3427, 223, 128803, 6366, 1]
    expect("tokenize --text", run(args, ["tokenize", *m, "--text", text]), 0,
           json.dumps(ids).replace(" ", "") + "\n")
    expect("tokenize --add-bos", run(args, ["tokenize", *m, "--add-bos", "--text", "hi"]), 0, "[0,6366]\n")
    # A blank line is the empty string: output line N answers input line N.
    expect("tokenize stdin", run(args, ["tokenize", *m], json.dumps(text) + "\n\n" + json.dumps("") + "\n"), 0,
           json.dumps(ids).replace(" ", "") + "\n[]\n[]\n")
    expect("tokenize keeps blank lines", run(args, ["tokenize", *m], '"hi"\n\n\r\n"hi"\n'), 0,
           "[6366]\n[]\n[]\n[6366]\n")
    expect("detokenize keeps blank lines", run(args, ["detokenize", *m], "[6366]\n\n[6366]\n"), 0, '"hi"\n""\n"hi"\n')
    expect("chat render keeps blank lines", run(args, ["tokenize", *m, "--chat", "--render"], "\n"), 0, '""\n')
    expect("detokenize stdin", run(args, ["detokenize", *m], json.dumps(ids) + "\n"), 0,
           json.dumps(text, ensure_ascii=False) + "\n")
    expect("detokenize --ids --skip-special", run(args, ["detokenize", *m, "--skip-special", "--ids", "0,6366,1"]), 0,
           '"hi"\n')
    expect("chat render", run(args, ["tokenize", *m, "--chat", "--render"],
                              '{"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true}\n'),
           0, json.dumps("<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>", ensure_ascii=False) + "\n")

    expect("missing --model", run(args, ["tokenize", "--text", "x"]), 1, want_err="--model is required")
    expect("unknown flag", run(args, ["tokenize", *m, "--txt", "x"]), 1, want_err="unknown flag --txt")
    expect("model dir without tokenizer.json", run(args, ["tokenize", "--model", "/nonexistent", "--text", "x"]), 1,
           want_err="no tokenizer.json in /nonexistent")
    expect("stdin line not JSON", run(args, ["tokenize", *m], '"ok"\nnot json\n'), 1,
           want_err="stdin line 2 is not valid JSON")
    expect("stdin line not a string", run(args, ["tokenize", *m], "[1, 2]\n"), 1,
           want_err="stdin line 1 must be a JSON string")
    expect("invalid UTF-8 in JSON", run(args, ["tokenize", *m], b'"\xff"\n'), 1,
           want_err="stdin line 1 is not valid JSON")
    expect("detokenize id out of range", run(args, ["detokenize", *m], "[1, 99999999]\n"), 1,
           want_err="token id 99999999 is out of range")
    expect("detokenize not ids", run(args, ["detokenize", *m], '["a"]\n'), 1, want_err='"a" is not a token id')
    expect("detokenize bad --ids", run(args, ["detokenize", *m, "--ids", "1,x"]), 1, want_err="'x' is not a token id")
    expect("--render without --chat", run(args, ["tokenize", *m, "--render"]), 1, want_err="--render needs --chat")
    expect("chat line without messages", run(args, ["tokenize", *m, "--chat"], '{"msgs": []}\n'), 1,
           want_err='stdin line 1: the object has no "messages"')
    expect("chat line with an unknown role", run(args, ["tokenize", *m, "--chat"],
                                                 '[{"role": "function", "content": "x"}]\n'), 1,
           want_err="stdin line 1: message 0 has role 'function'")
    # Tool-call arguments nested 70,000 deep overflowed the stack when dumped into the prompt.
    deep = "[" * 70000 + "]" * 70000
    expect("chat line nested 70,000 deep", run(args, ["tokenize", *m, "--chat"],
                                               '[{"role": "assistant", "content": null, "tool_calls": [{"type": "function", '
                                               '"function": {"name": "f", "arguments": {"a": ' + deep + '}}}]}]\n'), 1,
           want_err="stdin line 1 nests JSON deeper than 128 levels")
    if failures:
        sys.exit(f"{len(failures)} CLI check(s) failed")
    print("all CLI checks passed")


if __name__ == "__main__":
    main()
