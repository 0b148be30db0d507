#!/usr/bin/python3
"""Independent check of `dsinfer eplb` against DeepSeek's published EPLB algorithm.

The reference below is written from the algorithm's description (balanced packing of groups onto
nodes, replication by highest load per replica, balanced packing of replicas onto GPUs), with the
same PyTorch operations the published eplb.py relies on for its tie-breaking: float32 loads,
torch.sort(descending=True) (not stable) and torch.max(dim=-1).indices (first maximum), and
Python's min() for the lightest pack (first pack among equals). It runs on random inputs (many with
tied loads, so the sort's tie order matters) and requires `dsinfer eplb --json` to produce the very
same phy2log, log2phy and logcnt. For `--policy refined` it checks the plan's constraints and that
no layer's most loaded GPU is heavier than under the DeepSeek plan.

usage: eplb_reference.py --dsinfer PATH [--cases N] [--seed S]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import torch

README_LOAD = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
               [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]
README_PHY2LOG = [[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
                  [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]]


def pack_rows(weights, num_packs):
    """weights: float32 [rows, n]. Items, heaviest first, go to the lightest pack with room."""
    rows, n = weights.shape
    per_pack = n // num_packs
    if per_pack == 1:
        return [list(range(n)) for _ in range(rows)], [[0] * n for _ in range(rows)]
    order = torch.sort(weights, dim=-1, descending=True).indices.tolist()
    packs, ranks = [], []
    for r in range(rows):
        pack_load = torch.zeros(num_packs, dtype=torch.float32)
        filled = [0] * num_packs
        pack, rank = [-1] * n, [-1] * n
        for item in order[r]:
            loads = pack_load.tolist()  # exact float32 values
            open_packs = [p for p in range(num_packs) if filled[p] < per_pack]
            chosen = min(open_packs, key=lambda p: loads[p])
            pack[item], rank[item] = chosen, filled[chosen]
            filled[chosen] += 1
            pack_load[chosen] += weights[r, item]  # float32 accumulation
        packs.append(pack)
        ranks.append(rank)
    return packs, ranks


def replicate_rows(weights, num_slots):
    """weights: float32 [rows, n]. Extra slots go, one by one, to the highest load per replica."""
    rows, n = weights.shape
    count = torch.ones(rows, n, dtype=torch.int64)
    slot_expert = [list(range(n)) for _ in range(rows)]
    slot_rank = [[0] * n for _ in range(rows)]
    for _ in range(n, num_slots):
        pick = (weights / count).max(dim=-1).indices.tolist()
        for r in range(rows):
            slot_expert[r].append(pick[r])
            slot_rank[r].append(int(count[r, pick[r]]))
            count[r, pick[r]] += 1
    return slot_expert, slot_rank, count


def reference_plan(load, replicas, groups, nodes, gpus):
    w = torch.tensor(load, dtype=torch.float64).float()
    layers, experts = w.shape
    if groups % nodes != 0:  # the global policy: one group on one node
        groups, nodes = 1, 1
    group_size = experts // groups
    groups_per_node = groups // nodes
    experts_per_node = experts // nodes
    slots_per_node = replicas // nodes
    gpus_per_node = gpus // nodes
    slots_per_gpu = replicas // gpus

    group_pack, group_rank = pack_rows(w.reshape(layers, groups, group_size).sum(-1), nodes)
    # node_experts[l][n * experts_per_node + j]: node n's j-th expert
    node_experts = [[0] * experts for _ in range(layers)]
    for l in range(layers):
        for g in range(groups):
            base = (group_pack[l][g] * groups_per_node + group_rank[l][g]) * group_size
            for k in range(group_size):
                node_experts[l][base + k] = g * group_size + k
    node_w = torch.stack([w[l, node_experts[l]] for l in range(layers)]).reshape(layers * nodes, experts_per_node)
    slot_expert, slot_rank, count = replicate_rows(node_w, slots_per_node)
    replica_w = torch.stack([node_w[r, slot_expert[r]] / count[r, slot_expert[r]] for r in range(layers * nodes)])
    pack, rank = pack_rows(replica_w, gpus_per_node)

    phy2log = [[-1] * replicas for _ in range(layers)]
    phyrank = [[-1] * replicas for _ in range(layers)]
    for row in range(layers * nodes):
        l, n = divmod(row, nodes)
        for i in range(slots_per_node):
            slot = n * slots_per_node + pack[row][i] * slots_per_gpu + rank[row][i]
            phy2log[l][slot] = node_experts[l][n * experts_per_node + slot_expert[row][i]]
            phyrank[l][slot] = slot_rank[row][i]
    logcnt = [[row.count(e) for e in range(experts)] for row in phy2log]
    most = max(max(row) for row in logcnt)
    log2phy = [[[-1] * most for _ in range(experts)] for _ in range(layers)]
    for l in range(layers):
        for s in range(replicas):
            log2phy[l][phy2log[l][s]][phyrank[l][s]] = s
    return phy2log, log2phy, logcnt


def max_over_mean(load, phy2log, logcnt, gpus):
    out = []
    for l, row in enumerate(phy2log):
        per_gpu = len(row) // gpus
        loads = [sum(load[l][e] / logcnt[l][e] for e in row[g * per_gpu:(g + 1) * per_gpu]) for g in range(gpus)]
        total = sum(loads)
        out.append(1.0 if total <= 0 else max(loads) / (total / gpus))
    return out


def check_valid(load, plan, replicas, groups, nodes, gpus, where):
    """Constraints any plan must meet, whatever the policy."""
    layers, experts = len(load), len(load[0])
    hierarchical = groups % nodes == 0
    for l in range(layers):
        row = plan["phy2log"][l]
        assert len(row) == replicas, where
        assert all(0 <= e < experts for e in row), where
        for e in range(experts):
            slots = [s for s in range(replicas) if row[s] == e]
            assert slots, f"{where}: layer {l} expert {e} has no replica"
            assert plan["logcnt"][l][e] == len(slots), where
            assert sorted(s for s in plan["log2phy"][l][e] if s >= 0) == slots, where
        if hierarchical:
            group_size = experts // groups
            slots_per_node = replicas // nodes
            for g in range(groups):
                homes = {s // slots_per_node for s in range(replicas) if row[s] // group_size == g}
                assert len(homes) == 1, f"{where}: layer {l} group {g} spans nodes {homes}"


def random_case(rng, index):
    """A random (load, replicas, groups, nodes, gpus), biased to shapes where ties and both policies occur."""
    layers = rng.randint(1, 3)
    nodes = rng.choice([1, 2, 3, 4])
    gpus = nodes * rng.choice([1, 2, 3, 4, 6])
    groups = rng.choice([1, 2, 3, 4, 6, 8])
    if groups % nodes == 0:  # hierarchical: experts must split evenly into groups
        experts = groups * rng.choice([1, 2, 3, 4, 8])
    else:  # global: any expert count
        experts = rng.randint(2, 40)
    slots_per_gpu = -(-experts // gpus) + rng.choice([0, 0, 1, 2])
    replicas = slots_per_gpu * gpus
    kind = index % 4
    if kind == 0:  # many ties: tiny integers
        load = [[rng.randint(0, 3) for _ in range(experts)] for _ in range(layers)]
    elif kind == 1:  # skewed counts
        load = [[int(1000 / (1 + rng.random() * experts) ** 1.2) for _ in range(experts)] for _ in range(layers)]
    elif kind == 2:  # wide range
        load = [[rng.randint(0, 100000) for _ in range(experts)] for _ in range(layers)]
    else:  # repeated values
        pool = [rng.randint(0, 50) for _ in range(3)]
        load = [[rng.choice(pool) for _ in range(experts)] for _ in range(layers)]
    return load, replicas, groups, nodes, gpus


def deepseek_shapes(rng):
    """DeepSeek-V3's deployments (256 experts, 288 slots, 8 groups) with tied and skewed loads."""
    cases = []
    for gpus, nodes in ((32, 4), (144, 18), (8, 1)):
        tied = [[rng.randint(0, 4) for _ in range(256)]]
        skew = [[int(4000 / (1 + rng.random() * 256) ** 1.1) for _ in range(256)]]
        cases += [(tied, 288, 8, nodes, gpus), (skew, 288, 8, nodes, gpus)]
    return cases


def run_dsinfer(dsinfer, path, replicas, groups, nodes, gpus, policy):
    cmd = [dsinfer, "eplb", "--load", path, "--replicas", str(replicas), "--groups", str(groups), "--nodes",
           str(nodes), "--gpus", str(gpus), "--policy", policy, "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr}")
    return json.loads(res.stdout)


def unstable_ties(load, replicas, groups, nodes, gpus):
    """Whether this case sorts a row where torch's default sort differs from a stable sort."""
    w = torch.tensor(load, dtype=torch.float64).float()
    rows = [w]
    if groups % nodes == 0 and w.shape[1] % groups == 0:
        rows.append(w.reshape(w.shape[0], groups, -1).sum(-1))
    for t in rows:
        if t.shape[1] > 16 and not torch.equal(torch.sort(t, dim=-1, descending=True).indices,
                                               torch.sort(t, dim=-1, descending=True, stable=True).indices):
            return True
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--cases", type=int, default=120)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    # The reference itself must give the public README result, or nothing below means anything.
    ref = reference_plan(README_LOAD, 16, 4, 2, 8)
    assert ref[0] == README_PHY2LOG, f"reference disagrees with the EPLB README: {ref[0]}"

    cases = [(README_LOAD, 16, 4, 2, 8)] + deepseek_shapes(rng) + [random_case(rng, i) for i in range(args.cases)]
    compared = tied = improved = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "load.json")
        for i, (load, replicas, groups, nodes, gpus) in enumerate(cases):
            where = f"case {i} (replicas {replicas}, groups {groups}, nodes {nodes}, gpus {gpus}, load {load})"
            with open(path, "w") as f:
                json.dump(load, f)
            got = run_dsinfer(args.dsinfer, path, replicas, groups, nodes, gpus, "deepseek")
            phy2log, log2phy, logcnt = reference_plan(load, replicas, groups, nodes, gpus)
            for name, want in (("phy2log", phy2log), ("log2phy", log2phy), ("logcnt", logcnt)):
                if got[name] != want:
                    sys.exit(f"MISMATCH in {name} for {where}:\n  dsinfer   {got[name]}\n  reference {want}")
            ours = max_over_mean(load, phy2log, logcnt, gpus)
            if any(abs(a - b) > 1e-9 * max(1.0, b) for a, b in zip(got["max_over_mean"], ours)):
                sys.exit(f"max_over_mean {got['max_over_mean']} != {ours} for {where}")
            check_valid(load, got, replicas, groups, nodes, gpus, where)
            compared += 1
            tied += unstable_ties(load, replicas, groups, nodes, gpus)

            refined = run_dsinfer(args.dsinfer, path, replicas, groups, nodes, gpus, "refined")
            check_valid(load, refined, replicas, groups, nodes, gpus, where + " [refined]")
            better = max_over_mean(load, refined["phy2log"], refined["logcnt"], gpus)
            for l, (r, d) in enumerate(zip(better, ours)):
                if r > d * (1 + 1e-12):
                    sys.exit(f"refined is worse than deepseek on layer {l} ({r} > {d}) for {where}")
            improved += any(r < d * (1 - 1e-9) for r, d in zip(better, ours))

    # The tie order of torch's unstable sort must have been exercised, not just stable cases.
    assert tied >= 5, f"only {tied} cases had sort ties beyond 16 items; the tie-breaking check is too weak"
    print(f"eplb reference: {compared} cases identical to the reference ({tied} with unstable-sort ties); "
          f"refined valid and never worse, better on {improved}")


if __name__ == "__main__":
    main()
