#!/usr/bin/python3
"""`dsinfer eplb` as a user runs it: the table, the JSON, and a clear message (exit 1) for every
invalid input the issue lists.

usage: eplb_cli_test.py --dsinfer PATH
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

README = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
          [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]
README_PHY2LOG = [[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
                  [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]]

failures = []


def run(dsinfer, *args):
    return subprocess.run([dsinfer, "eplb", *args], capture_output=True, text=True)


def expect(cond, what):
    if not cond:
        failures.append(what)


def expect_error(dsinfer, args, needle, what, status=1):
    res = run(dsinfer, *args)
    expect(res.returncode == status, f"{what}: exit {res.returncode}, want {status} (stderr: {res.stderr.strip()})")
    expect(needle in res.stderr, f"{what}: stderr lacks '{needle}': {res.stderr.strip()}")
    expect("internal error" not in res.stderr, f"{what}: reported as an internal error")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    dsinfer = ap.parse_args().dsinfer
    with tempfile.TemporaryDirectory() as tmp:
        def write(name, text):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write(text)
            return path

        readme = write("readme.json", json.dumps(README))
        shape = ["--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"]

        res = run(dsinfer, "--load", readme, *shape, "--json")
        expect(res.returncode == 0, f"--json failed: {res.stderr}")
        out = json.loads(res.stdout)
        expect(out["phy2log"] == README_PHY2LOG, f"README phy2log: {out['phy2log']}")
        expect(out["logcnt"][0] == [1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1], f"logcnt: {out['logcnt']}")
        expect(len(out["log2phy"]) == 2 and len(out["log2phy"][0]) == 12 and len(out["log2phy"][0][0]) == 2,
               "log2phy shape")
        # Layer 0 by hand: GPU loads of the published placement, 16 slots on 8 GPUs.
        cnt = out["logcnt"][0]
        loads = [sum(README[0][e] / cnt[e] for e in README_PHY2LOG[0][2 * g:2 * g + 2]) for g in range(8)]
        want = max(loads) / (sum(loads) / 8)
        expect(abs(out["max_over_mean"][0] - want) < 1e-12, f"max_over_mean {out['max_over_mean'][0]} != {want}")
        expect(out["mode"] == "hierarchical" and out["policy"] == "deepseek", "mode/policy fields")
        # The shape it was planned for: --eplb-placement refuses a plan made for another rank count.
        expect(out.get("gpus") == 8 and out.get("nodes") == 2, f"gpus/nodes fields: {out.get('gpus')}, {out.get('nodes')}")

        res = run(dsinfer, "--load", readme, *shape)
        expect(res.returncode == 0, f"table failed: {res.stderr}")
        table = res.stdout
        expect("hierarchical mode" in table and "layer 1: max/mean" in table, f"table header:\n{table}")
        # GPU 0 of layer 0 holds experts 5 (2 replicas) and 6: 165/2 + 39 = 121.5; before: 90 + 132.
        expect(any(line.split()[:5] == ["0", "0", "121.5", "222.0", "5/2"] for line in table.splitlines()),
               f"GPU 0 row missing or wrong:\n{table}")
        expect("all layers: max/mean before" in table, "table summary")

        res = run(dsinfer, "--load", readme, *shape, "--policy", "refined", "--json")
        expect(res.returncode == 0 and json.loads(res.stdout)["policy"] == "refined", "refined policy runs")

        # Invalid shapes.
        expect_error(dsinfer, ["--load", readme, "--replicas", "15", "--groups", "4", "--nodes", "2", "--gpus", "8"],
                     "must be a multiple of gpus", "replicas not a multiple of GPUs")
        expect_error(dsinfer, ["--load", readme, "--replicas", "18", "--groups", "4", "--nodes", "4", "--gpus", "6"],
                     "must be a multiple of nodes", "GPUs not a multiple of nodes")
        expect_error(dsinfer, ["--load", readme, "--replicas", "8", "--groups", "4", "--nodes", "2", "--gpus", "8"],
                     "at least the number of experts", "fewer replicas than experts")
        expect_error(dsinfer, ["--load", readme, "--replicas", "16", "--groups", "8", "--nodes", "2", "--gpus", "8"],
                     "divisible by groups", "experts not divisible by groups")
        expect_error(dsinfer, ["--load", readme, "--replicas", "0", "--groups", "4", "--nodes", "2", "--gpus", "8"],
                     "--replicas must be a positive integer", "zero replicas")
        expect_error(dsinfer, ["--load", readme, "--replicas", "x", "--groups", "4", "--nodes", "2", "--gpus", "8"],
                     "must be an integer", "non-integer replicas", status=2)  # a usage error (apps/dsinfer/args.h)
        # Invalid loads.
        for name, text, needle in (("neg.json", "[[1, -2, 3]]", "load[0][1] = -2 is negative"),
                                   ("nan.json", "[[1, NaN, 3]]", "not valid JSON"),
                                   ("ragged.json", "[[1, 2, 3], [1, 2]]", "ragged arrays"),
                                   ("str.json", "[[1, \"a\"]]", "not a number"),
                                   ("flat.json", "[1, 2, 3]", "not an array"),
                                   ("empty.json", "[]", "no layers")):
            expect_error(dsinfer, ["--load", write(name, text), "--replicas", "4", "--groups", "1", "--nodes", "1",
                                   "--gpus", "1"], needle, name)
        expect_error(dsinfer, ["--load", os.path.join(tmp, "missing.json"), *shape], "cannot open", "missing file")
        # Flags.
        expect_error(dsinfer, ["--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"],
                     "--load is required", "missing --load")
        expect_error(dsinfer, ["--load", readme, "--groups", "4", "--nodes", "2", "--gpus", "8"],
                     "--replicas is required", "missing --replicas")
        expect_error(dsinfer, ["--load", readme, *shape, "--policy", "best"], "choose deepseek or refined", "policy")
        expect_error(dsinfer, ["--load", readme, *shape, "--jsn"], "unknown flag --jsn", "unknown flag")

    if failures:
        print("\n".join("FAIL: " + f for f in failures))
        sys.exit(1)
    print("eplb cli: all checks passed")


if __name__ == "__main__":
    main()
