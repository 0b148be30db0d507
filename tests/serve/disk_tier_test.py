#!/usr/bin/python3
"""The prefix cache's disk tier end to end: `dsinfer serve --kv-disk-dir` processes on a tiny-v3
model, started and killed here.

    disk_tier_test.py DSINFER_BIN WORKDIR

- Two servers share a directory: a prompt one computed is a disk hit on the other, with the same
  tokens and logprobs (the KV loaded is the KV computed).
- kill -9 and a restart: the directory's blocks are found again (the index is rebuilt).
- Corrupt, truncated and foreign block files are misses (recomputed, same output, counted in
  /metrics); the bad files are replaced by sound ones.
- A directory that cannot be written: the server starts, serves from RAM, says so in /metrics.
- /v1/accounting and usage split the hits by tier.
Every wait is bounded.
"""
import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from e2e_util import check, finish, get, stop_all, metric, post, start, tiny_model, wait_for  # noqa: E402

BLOCK = 64


def serve(bin_, model, disk_dir, extra=()):
    return start(bin_, ["serve", "--model", model, "--served-model-name", "tiny", "--kv-cache-gb", "0.05",
                        "--kv-disk-dir", disk_dir, "--kv-disk-gb", "1"] + list(extra))


def complete(server, prompt):
    st, text = post(server.url + "/v1/completions", {"model": "tiny", "prompt": prompt, "max_tokens": 5,
                                                     "temperature": 0, "ignore_eos": True, "logprobs": 3})
    if not check(st == 200, f"completion answered 200 ({st}: {text[:200]})"):
        return None
    j = json.loads(text)
    c = j["choices"][0]
    return {"text": c["text"], "logprobs": c["logprobs"]["token_logprobs"], "top": c["logprobs"]["top_logprobs"],
            "usage": j["usage"]}


def same_output(a, b, what):
    check(a and b and (a["text"], a["logprobs"], a["top"]) == (b["text"], b["logprobs"], b["top"]),
          f"{what}: the same tokens and logprobs as computing")


def block_files(d):
    out = []
    for root, _, names in os.walk(d):
        out += [os.path.join(root, n) for n in names if n.endswith(".kvb")]
    return sorted(out)


def written(server):
    return metric(server.url, "dsinfer_kv_disk_written_blocks_total") or 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dsinfer")
    ap.add_argument("work")
    a = ap.parse_args()
    model = tiny_model(a.dsinfer, a.work)
    disk = os.path.join(a.work, "kv-disk")
    shutil.rmtree(disk, ignore_errors=True)
    prompt = list(range(1000, 1000 + 5 * BLOCK + 17))  # five full blocks and a partial one
    t0 = time.time()
    try:
        # 1. Two instances, one directory.
        s1, s2 = serve(a.dsinfer, model, disk), serve(a.dsinfer, model, disk)
        cold = complete(s1, prompt)
        check(cold and cold["usage"]["prompt_cache_hit_tokens"] == 0, "the first request is a miss")
        wait_for(lambda: written(s1) >= 5, 10, "the five full blocks written through")
        hit = complete(s2, prompt)
        check(hit and hit["usage"].get("prompt_cache_hit_disk_tokens") == 5 * BLOCK,
              f"the other instance hits all five blocks on disk ({hit and hit['usage']})")
        same_output(cold, hit, "a disk hit from another instance")
        check(metric(s2.url, "dsinfer_prefix_cache_hit_tokens_total", 'tier="disk"') == 5 * BLOCK,
              "/metrics counts the hit for the disk tier")
        check((metric(s2.url, "dsinfer_kv_disk_read_gbps") or 0) > 0, "/metrics gives the disk read GB/s")
        _, acct = get(s2.url + "/v1/accounting")
        tiers = json.loads(acct).get("input_cache_hit_by_tier", {})
        check(tiers.get("disk", {}).get("tokens") == 5 * BLOCK and tiers["disk"]["revenue_usd"] > 0,
              f"/v1/accounting splits the hits by tier ({tiers})")
        ram = complete(s2, prompt)
        check(ram and ram["usage"]["prompt_cache_hit_tokens"] == 5 * BLOCK and
              "prompt_cache_hit_disk_tokens" not in ram["usage"], "the next hit is the RAM's")

        # 2. kill -9, restart: the directory's blocks are hits again.
        s1.kill()
        s1.wait(10)
        s3 = serve(a.dsinfer, model, disk)
        check(metric(s3.url, "dsinfer_kv_disk_files") == len(block_files(disk)),
              "the restarted server's index holds every block file")
        again = complete(s3, prompt)
        check(again and again["usage"].get("prompt_cache_hit_disk_tokens") == 5 * BLOCK,
              "after kill -9 and a restart the prompt is a disk hit")
        same_output(cold, again, "a disk hit after a restart")

        # 3. Bad files. Which file holds which block: a hit refreshes its file's mtime, so block 3's
        # is the newest after a 3-block prefix (blocks 0-2 from disk, then in RAM) and then a
        # 4-block one (block 3 alone from disk).
        files = block_files(disk)
        check(len(files) == 5, f"five block files ({len(files)})")
        s4 = serve(a.dsinfer, model, disk)
        for k in (3, 4):
            probe = complete(s4, prompt[:k * BLOCK + 1])
            check(probe and probe["usage"].get("prompt_cache_hit_disk_tokens") == (3 if k == 3 else 1) * BLOCK,
                  f"a {k}-block prefix: the blocks not in RAM come from disk")
            time.sleep(0.02)
        by_age = sorted(files, key=os.path.getmtime)
        block3, block4 = by_age[-1], by_age[0]  # block 4 was used least recently
        size = os.path.getsize(block3)
        with open(block3, "r+b") as f:  # one flipped bit in the rows
            f.seek(-9, os.SEEK_END)
            b = f.read(1)
            f.seek(-9, os.SEEK_END)
            f.write(bytes([b[0] ^ 0x40]))
        with open(block4, "r+b") as f:
            f.truncate(size - 100)
        # A fresh instance: blocks 0-2 hit, block 3 fails verification (the lookup stops there),
        # blocks 3-4 are computed and block 3 is written again.
        s5 = serve(a.dsinfer, model, disk)
        bad = complete(s5, prompt)
        check(bad and bad["usage"].get("prompt_cache_hit_disk_tokens") == 3 * BLOCK,
              f"the blocks before the first bad file are disk hits ({bad and bad['usage']})")
        same_output(cold, bad, "a prompt with a corrupt block file")
        check(metric(s5.url, "dsinfer_kv_disk_bad_blocks_total") == 1, "/metrics counts the bad file")
        wait_for(lambda: os.path.exists(block3) and os.path.getsize(block3) == size, 10, "block 3 written again")
        # The next fresh instance finds the truncated block 4: a miss again, and it too is replaced.
        s6 = serve(a.dsinfer, model, disk)
        trunc = complete(s6, prompt)
        check(trunc and trunc["usage"].get("prompt_cache_hit_disk_tokens") == 4 * BLOCK,
              f"a truncated file is a miss ({trunc and trunc['usage']})")
        same_output(cold, trunc, "a prompt with a truncated block file")
        check(metric(s6.url, "dsinfer_kv_disk_bad_blocks_total") == 1, "/metrics counts the truncated file")
        wait_for(lambda: os.path.exists(block4) and os.path.getsize(block4) == size, 10, "block 4 written again")
        # A foreign file (another block's bytes under this name) is a miss as well.
        shutil.copyfile(by_age[1], block4)
        s7 = serve(a.dsinfer, model, disk)
        foreign = complete(s7, prompt)
        check(foreign and foreign["usage"].get("prompt_cache_hit_disk_tokens") == 4 * BLOCK,
              "a block file holding another key is a miss")
        same_output(cold, foreign, "a prompt with a foreign block file")
        check(metric(s7.url, "dsinfer_kv_disk_bad_blocks_total") == 1, "/metrics counts the foreign file")
        wait_for(lambda: metric(s7.url, "dsinfer_kv_disk_written_blocks_total") == 1, 10, "and it is replaced")
        s8 = serve(a.dsinfer, model, disk)
        fixed = complete(s8, prompt)
        check(fixed and fixed["usage"].get("prompt_cache_hit_disk_tokens") == 5 * BLOCK,
              "once replaced, every block is a hit again")
        same_output(cold, fixed, "the rewritten blocks")

        # 4. A directory that cannot be written: serve from RAM, say so.
        blocker = os.path.join(a.work, "not-a-dir")
        with open(blocker, "w") as f:
            f.write("a file where the disk tier's directory should be")
        s9 = serve(a.dsinfer, model, os.path.join(blocker, "kv"))
        out = complete(s9, prompt)
        same_output(cold, out, "a server whose disk tier cannot write")
        complete(s9, list(range(3000, 3000 + 3 * BLOCK)))  # more blocks it cannot write
        check(metric(s9.url, "dsinfer_kv_disk_writable") == 0, "/metrics says the disk tier cannot write")
        check((metric(s9.url, "dsinfer_kv_disk_skipped_writes_total") or 0) >= 1, "the skipped writes are counted")
        time.sleep(0.2)  # the output reader has the last lines
        said = [line for line in s9.lines if "serving from RAM" in line]
        check(len(said) == 1, f"the server logged it exactly once ({len(said)} times: {said[:3]})")
        st, _ = get(s9.url + "/health")
        check(st == 200, "and it stays healthy")
    finally:
        stop_all()
    finish("disk_tier_test", t0)


if __name__ == "__main__":
    main()
