#!/usr/bin/python3
"""`dsinfer serve --kv-cache-dtype`: the same --kv-cache-gb holds more tokens as FP8 rows.

Starts the real server twice on a tiny-v3 checkpoint (bf16 cache, then FP8 cache), checks the
start-up line names the format, that the pool's block count follows the row sizes (tiny-v3's
176-wide latent: 352 bytes a row in bf16; 160 e4m3 + 2 fp32 scales + 16 bf16 rope = 200 in FP8),
that a completion works on each, and that no block stays in use afterwards.
Usage: serve_kv_dtype_test.py DSINFER_BIN
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = sys.argv[1]
failures = []


def http(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


def metric(text, name):
    m = re.search(r"^" + name + r"\{[^}]*\} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def run(model, dtype):
    proc = subprocess.Popen([BIN, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0",
                             "--kv-cache-gb", "0.01", "--kv-cache-dtype", dtype],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"model '([^']+)'.*KV cache (\d+) tokens in (\w+)\) listening on (http://127\.0\.0\.1:\d+)", line)
        if not m:
            failures.append(f"{dtype}: unexpected start-up line {line!r}")
            return None
        if m.group(3) != dtype:
            failures.append(f"{dtype}: start-up line names {m.group(3)}")
        url = m.group(4)
        out = json.loads(http(url + "/v1/completions",
                              {"model": m.group(1), "prompt": "The cache", "max_tokens": 6, "temperature": 0}))
        if out["usage"]["completion_tokens"] != 6:
            failures.append(f"{dtype}: completion_tokens {out['usage']['completion_tokens']}")
        # The response can reach us a moment before the engine thread releases the blocks.
        deadline = time.time() + 10
        while True:
            metrics = http(url + "/metrics")
            if metric(metrics, "dsinfer_kv_blocks_used") == 0 or time.time() > deadline:
                break
            time.sleep(0.05)
        if metric(metrics, "dsinfer_kv_blocks_used") != 0:
            failures.append(f"{dtype}: blocks still in use 10 s after the request")
        return metric(metrics, "dsinfer_kv_blocks_total")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


with tempfile.TemporaryDirectory() as work:
    model = os.path.join(work, "m")
    subprocess.run([BIN, "make-model", "--preset", "tiny-v3", "--out", model], check=True, capture_output=True)
    layers, block = 3, 64
    bf16, fp8 = run(model, "bf16"), run(model, "fp8")
    if bf16 is not None and bf16 != int(0.01e9 // (layers * block * 352)):
        failures.append(f"bf16 pool has {bf16} blocks")
    if fp8 is not None and fp8 != int(0.01e9 // (layers * block * 200)):
        failures.append(f"fp8 pool has {fp8} blocks")

for f in failures:
    print("FAIL:", f)
print(f"{'FAILED' if failures else 'ok'}: serve --kv-cache-dtype ({len(failures)} failures)")
sys.exit(1 if failures else 0)
