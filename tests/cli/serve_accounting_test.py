#!/usr/bin/python3
"""Live cost accounting of `dsinfer serve`: GET /v1/accounting and the /metrics accounting lines.

Starts the real server on 127.0.0.1 (any free port) with chosen prices and GPU cost, sends the
same prompt twice (the second hits the prefix cache), and checks that the accounting counts
exactly the tokens the responses' usage reported, prices them as `dsinfer plan` does
(tokens / 1e6 x price), charges gpus x gpu_hour_usd x uptime, and derives the margin as
(revenue - cost) / cost; and that bad price flags are refused.
Usage: serve_accounting_test.py DSINFER_BIN
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


def expect(cond, what):
    if not cond:
        failures.append(what)


def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def http(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


with tempfile.TemporaryDirectory() as work:
    model = os.path.join(work, "m")
    subprocess.run([BIN, "make-model", "--preset", "tiny-v3", "--out", model], check=True, capture_output=True)

    bad = subprocess.run([BIN, "serve", "--model", model, "--port", "0", "--price-output", "-1"],
                         capture_output=True, text=True, timeout=60)
    expect(bad.returncode != 0 and "--price-output" in bad.stderr, f"negative price accepted: {bad.stderr}")

    prices = {"input_cache_hit": 0.5, "input_cache_miss": 2.0, "output": 8.0}
    gpus, gpu_hour = 8.0, 3.0
    proc = subprocess.Popen([BIN, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0",
                             "--price-input-cache-hit", "0.5", "--price-input-cache-miss", "2",
                             "--price-output", "8", "--gpus", "8", "--gpu-hour-usd", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            raise SystemExit(f"no listening line from dsinfer serve: {line!r}")
        base = f"http://127.0.0.1:{m.group(1)}"
        prompt = "The accounting of tokens, " * 30  # > 128 tokens, so a full block can be cached
        usage = []
        for _ in range(2):
            r = json.loads(http(base + "/v1/completions",
                                {"model": "m", "prompt": prompt, "max_tokens": 5, "temperature": 0}))
            usage.append(r["usage"])
        expect(usage[1]["prompt_cache_hit_tokens"] > 0, "second request must hit the prefix cache")
        hit = sum(u["prompt_cache_hit_tokens"] for u in usage)
        miss = sum(u["prompt_cache_miss_tokens"] for u in usage)
        out = sum(u["completion_tokens"] for u in usage)

        a = json.loads(http(base + "/v1/accounting"))
        expect(a["tokens"] == {"input_cache_hit": hit, "input_cache_miss": miss, "output": out},
               f"accounting tokens {a['tokens']} != usage {hit, miss, out}")
        want_rev = {"input_cache_hit": hit / 1e6 * 0.5, "input_cache_miss": miss / 1e6 * 2.0, "output": out / 1e6 * 8.0}
        for k, v in want_rev.items():
            expect(close(a["revenue_usd"][k], v), f"revenue {k}: {a['revenue_usd'][k]} != {v}")
        expect(close(a["revenue_usd"]["total"], sum(want_rev.values())), "revenue total")
        expect(close(a["cost_usd"], gpus * gpu_hour * a["uptime_seconds"] / 3600), "cost = gpus x price x hours")
        expect(a["cost_usd"] > 0 and close(a["cost_profit_margin"],
                                           (a["revenue_usd"]["total"] - a["cost_usd"]) / a["cost_usd"]),
               "margin = (revenue - cost) / cost")
        expect(a["prices_usd_per_million"] == prices, "prices echoed")

        metrics = http(base + "/metrics")
        got = {k: float(v) for k, v in re.findall(r'dsinfer_accounting_tokens_total\{kind="(\w+)"\} (\S+)', metrics)}
        expect(got == {"input_cache_hit": hit, "input_cache_miss": miss, "output": out}, f"/metrics tokens {got}")
        expect("# TYPE dsinfer_accounting_cost_usd_total counter" in metrics, "/metrics cost counter")
        expect(re.search(r"^dsinfer_accounting_cost_profit_margin \S+$", metrics, re.M) is not None, "/metrics margin")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    expect(proc.returncode == 0, f"SIGTERM must drain and exit 0, got {proc.returncode}")

print("\n".join("FAIL: " + f for f in failures))
print(f"serve_accounting: {0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
