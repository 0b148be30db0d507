#!/usr/bin/env python3
"""Drives `dsinfer plan` and `dsinfer simulate` as a user would and checks what comes out.

usage: cli_test.py DSINFER_BIN SOURCE_DIR ASSETS_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BIN, SOURCE, ASSETS = sys.argv[1:4]
V3 = os.path.join(ASSETS, "configs", "deepseek-v3.json")
HW = os.path.join(SOURCE, "data", "hardware.json")
DAY = os.path.join(SOURCE, "docs", "examples", "deepseek-2025-02-28.json")
failures = []


def run(*args, env=None):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def near(x, want, tol):
    return abs(x - want) <= tol


def within(x, published, share):
    return published * (1 - share) <= x <= published * (1 + share)


# plan: the published day, as JSON and as a table.
rc, out, err = run("plan", "--workload", DAY, "--json")
check(rc == 0, f"plan --json exits 0 ({err.strip()})")
p = json.loads(out) if rc == 0 else {}
check(near(p.get("prefill_nodes", 0), 95.5, 0.05), "plan: 95.5 prefill nodes")
check(near(p.get("decode_nodes", 0), 131.4, 0.05), "plan: 131.4 decode nodes")
check(near(p.get("total_nodes", 0), 226.9, 0.05), "plan: 226.9 nodes")
check(near(p.get("prefill_units", 0), 23.9, 0.05) and near(p.get("decode_units", 0), 7.3, 0.05),
      "plan: 23.9 prefill units, 7.3 decode units")
check(near(p.get("cost_usd_per_day", 0), 87072, 0.5), "plan: $87,072 per day")
check(near(p.get("revenue_usd_per_day", 0), 562000, 1000), "plan: about $562k revenue")
check(near(p.get("cost_profit_margin", 0), 5.45, 0.01), "plan: 545% margin")
rc, out, err = run("plan", "--workload", DAY)
check(rc == 0 and "226.9" in out and "87072" in out, "plan table shows nodes and cost")

tmp = tempfile.mkdtemp(prefix="dsinfer-plan-cli-")
try:
    day = json.load(open(DAY))
    bad = dict(day, cached_input_tokens_per_day=700e9)
    path = os.path.join(tmp, "bad.json")
    json.dump(bad, open(path, "w"))
    rc, out, err = run("plan", "--workload", path)
    check(rc == 1 and "cached_input_tokens_per_day" in err, f"plan: cached > input names the key ({err.strip()})")
    bad = dict(day)
    del bad["decode_tokens_per_s_per_node"]
    json.dump(bad, open(path, "w"))
    rc, out, err = run("plan", "--workload", path)
    check(rc == 1 and "missing key 'decode_tokens_per_s_per_node'" in err, "plan: a missing key is named")
    bad = dict(day, prefill_tokens_per_s_per_node=0)
    json.dump(bad, open(path, "w"))
    rc, out, err = run("plan", "--workload", path)
    check(rc == 1 and "prefill_tokens_per_s_per_node" in err, "plan: a zero rate is named")
    rc, out, err = run("plan")
    check(rc == 1 and "--workload" in err, "plan: --workload is required")
    rc, out, err = run("plan", "--workload", DAY, "--jsn")
    check(rc == 1 and "--jsn" in err, "plan: an unknown flag is named")

    # simulate: the defaults are DeepSeek's production day.
    sim = ["simulate", "--model", V3, "--hardware", "H800", "--hardware-file", HW]
    rc, out, err = run(*sim, "--json")
    check(rc == 0, f"simulate --json exits 0 ({err.strip()})")
    s = json.loads(out) if rc == 0 else {"prefill": {}, "decode": {}}
    pre, dec = s.get("prefill", {}), s.get("decode", {})
    check(within(pre.get("input_tokens_per_s_per_node", 0), 73700, 0.25), "simulate: prefill within 25% of 73.7k")
    check(within(dec.get("output_tokens_per_s_per_node", 0), 14800, 0.25), "simulate: decode within 25% of 14.8k")
    check(20 <= dec.get("per_request_tokens_per_s", 0) <= 22, "simulate: 20-22 tokens/s per request")
    check(len(s.get("decode_curve", [])) >= 5, "simulate --json carries the decode curve")
    names = {b["name"] for b in dec.get("breakdown", [])}
    check({"MLA attention core", "routed experts", "dispatch", "combine"} <= names, "simulate: breakdown names blocks")

    rc, out, err = run(*sim)
    check(rc == 0 and "where one step's time goes" in out and "per node" in out, "simulate prints the table")

    rc, out, err = run("simulate", "--model", V3, "--hardware", "H100", "--hardware-file", HW, "--phase", "decode",
                       "--decode-nodes", "9", "--decode-batch", "256", "--kv-len", "2000", "--length-cv", "0",
                       "--mtp-accept", "0", "--json")
    d = json.loads(out).get("decode", {}) if rc == 0 else {}
    check("prefill" not in json.loads(out) if rc == 0 else False, "simulate --phase decode skips prefill")
    check(within(d.get("output_tokens_per_s_per_node", 0), 22300, 0.25), "simulate: SGLang decode within 25% of 22.3k")

    rc, out, err = run("simulate", "--model", V3, "--hardware", "A100", "--hardware-file", HW)
    check(rc == 1 and "H800, H100, H200, B200" in err, "simulate: unknown hardware lists the names")
    rc, out, err = run(*sim, "--cache-hit", "1.5")
    check(rc == 1 and "--cache-hit" in err, "simulate: a bad option is named")
    rc, out, err = run(*sim, "--prefill-nodes", "1")
    check(rc == 1 and "--prefill-nodes" in err, "simulate: a unit too small for the weights says which flag")
    rc, out, err = run("simulate", "--model", V3, "--hardware", "H800", "--hardware-file", "/nonexistent.json")
    check(rc == 1 and "/nonexistent.json" in err, "simulate: a missing hardware file is named")

    png = os.path.join(tmp, "chart.png")
    if shutil.which("gnuplot"):
        rc, out, err = run(*sim, "--png", png)
        check(rc == 0 and os.path.exists(png) and open(png, "rb").read(4) == b"\x89PNG", "simulate --png writes a PNG")
    else:
        print("skip simulate --png: gnuplot not installed")
    env = dict(os.environ, PATH="/nonexistent")
    rc, out, err = run(*sim, "--png", os.path.join(tmp, "none.png"), env=env)
    check(rc == 1 and "gnuplot was not found" in err, f"simulate --png without gnuplot says so ({err.strip()})")

    # simulate --stage-costs: the overlap model on measured costs (bench/ep_bench --stage-costs).
    # One MoE layer; per micro-batch attention 1 s, experts 1 s, shared 0.5 s and a 1 s dispatch
    # (tests/plan/measured_pipeline_test.cpp works the schedule out): 6 s with one micro-batch,
    # 5 s with two.
    def step(mb, measured, exposed):
        return {"phase": "decode", "payload": "bf16", "micro_batches": mb, "tokens_per_rank": 32,
                "dispatch_mode": "low-latency",
                "stages_s": {"attention": 2, "route": 0, "dispatch_post": 0, "experts": 2, "shared": 1,
                             "combine_finish": 0, "dense": 0, "other": 0},
                "dispatch_bytes": 2e9, "combine_bytes": 0, "measured_step_s": measured, "measured_exposed_s": exposed}
    costs = {"format": "dsinfer-stage-costs-1", "source": "cli_test", "model": "by hand", "ranks": 2, "layers": 1,
             "moe_layers": 1, "network": {"latency_us": 0, "bandwidth_gb_per_s": 1},
             "steps": [step(1, 6, 1), step(2, 5.5, 0.25)]}
    path = os.path.join(tmp, "costs.json")
    json.dump(costs, open(path, "w"))
    rc, out, err = run("simulate", "--stage-costs", path, "--json")
    check(rc == 0, f"simulate --stage-costs --json exits 0 ({err.strip()})")
    rows = json.loads(out).get("steps", []) if rc == 0 else []
    check(len(rows) == 2 and near(rows[0]["predicted_step_s"], 6, 1e-9) and near(rows[1]["predicted_step_s"], 5, 1e-9),
          "simulate --stage-costs: predicted 6 s and 5 s")
    check(len(rows) == 2 and near(rows[1]["predicted_over_measured"], 5 / 5.5, 1e-9)
          and near(rows[1]["measured_on_off"], 5.5 / 6, 1e-9), "simulate --stage-costs: ratios")
    rc, out, err = run("simulate", "--stage-costs", path)
    check(rc == 0 and "predicted" in out and "two micro-batches against one" in out, "simulate --stage-costs table")
    costs["steps"][1]["micro_batches"] = 3
    json.dump(costs, open(path, "w"))
    rc, out, err = run("simulate", "--stage-costs", path)
    check(rc == 1 and "steps[1].micro_batches" in err and path in err,
          f"simulate --stage-costs: a bad key is named ({err.strip()})")
    rc, out, err = run("simulate", "--stage-costs", path, "--model", V3)
    check(rc == 1 and "--model" in err, "simulate --stage-costs refuses --model")
finally:
    shutil.rmtree(tmp)

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
