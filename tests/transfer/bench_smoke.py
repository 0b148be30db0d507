#!/usr/bin/env python3
"""Runs `dsinfer transfer-bench` briefly and checks its JSON: both paths moved data (GB/s > 0),
the receiving process counted whole messages, and a bad flag is refused.

usage: bench_smoke.py DSINFER_BIN
"""
import json
import subprocess
import sys

BIN = sys.argv[1]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


p = subprocess.run([BIN, "transfer-bench", "--seconds", "0.5", "--mb", "1", "--window", "4", "--json"],
                   capture_output=True, text=True, timeout=60)
check(p.returncode == 0, f"transfer-bench exits 0 (got {p.returncode}; stderr: {p.stderr.strip()[-500:]})")
lines = p.stdout.strip().splitlines()
check(len(lines) == 1, f"one line of output (got {len(lines)})")
try:
    out = json.loads(lines[-1]) if lines else {}
except json.JSONDecodeError as e:
    out = {}
    check(False, f"output parses as JSON ({e}): {p.stdout!r}")
for key in ("message_mb", "raw_ucx_gbps", "agent_gbps", "seconds", "transports"):
    check(key in out, f"JSON has {key}")
check(out.get("message_mb") == 1 and out.get("seconds") == 0.5, "JSON echoes --mb and --seconds")
for key in ("raw_ucx_gbps", "agent_gbps"):
    check(isinstance(out.get(key), (int, float)) and out[key] > 0, f"{key} > 0 (got {out.get(key)})")
for key in ("raw_ucx_bytes", "agent_bytes"):
    check(out.get(key, 0) > 0 and out[key] % (1 << 20) == 0, f"{key} is whole 1 MiB messages (got {out.get(key)})")

p = subprocess.run([BIN, "transfer-bench", "--window", "0"], capture_output=True, text=True, timeout=60)
check(p.returncode == 2 and "--window" in p.stderr, f"--window 0 is a usage error (exit {p.returncode}, {p.stderr.strip()})")

sys.exit(1 if failures else 0)
