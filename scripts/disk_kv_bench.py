#!/usr/bin/python3
"""The prefix cache's disk tier, measured (docs/benchmarks.md, "The disk tier (issue 16)").

    scripts/disk_kv_bench.py [--quick] [--dsinfer build/dsinfer] [--work /tmp/dsinfer-disk-bench]

1. The device: sequential read of a test file in the tier's directory with dd, O_DIRECT and
   through a dropped page cache: the limit a disk hit is held against, measured in this run; and
   the tier's read path alone on the same file system (`dsinfer disk-tier-bench`: a prompt's
   block files looked up, verified and copied into a pool; io_uring and pread).
2. TTFT of a 4,096-token prompt on bench-v3-small (max_tokens 1, so TTFT is the whole request):
   cold (computed), RAM hit, disk hit from a second process sharing the directory (its files in
   the page cache, as right after another instance wrote them), disk hit with the page cache
   dropped, and with O_DIRECT reads; the tier's read GB/s from /metrics beside dd's.
3. A multi-turn chat load (`dsinfer bench --conversations`) with a RAM cache too small for every
   conversation's history: the prefix-cache hit ratio and TTFT with the disk tier off and on.
--quick: tiny-v3, short prompts, a small load: a smoke run for CI (the figures mean nothing).
Dropping the page cache needs root (/proc/sys/vm/drop_caches); without it that row is skipped.
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from e2e_util import check, failures, metric, post, start, stop_all, tiny_model, wait_for, write_report  # noqa: E402


def drop_page_cache():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def dd_read(path, direct):
    """dd's own figure for a sequential read of `path` (4 MB blocks), in GB/s."""
    flags = ["iflag=direct"] if direct else []
    r = subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=4M"] + flags, capture_output=True, text=True)
    m = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", r.stderr)
    check(m is not None, f"dd read {path}: {r.stderr.strip()}")
    return int(m.group(1)) / float(m.group(2)) / 1e9 if m else 0.0


def device_read(disk_dir, mb):
    os.makedirs(disk_dir, exist_ok=True)
    path = os.path.join(disk_dir, "dd-test-file")
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=4M", f"count={max(1, mb // 4)}", "oflag=direct"],
                   capture_output=True, check=True)
    out = {"file_mb": mb, "direct_gbps": statistics.median(dd_read(path, True) for _ in range(3))}
    cached = []
    for _ in range(3):
        if not drop_page_cache():
            break
        cached.append(dd_read(path, False))
    if cached:
        out["dropped_cache_gbps"] = statistics.median(cached)
    out["page_cache_gbps"] = statistics.median(dd_read(path, False) for _ in range(3))  # now cached
    os.remove(path)
    return out


def serve(dsinfer, model, extra):
    return start(dsinfer, ["serve", "--model", model, "--served-model-name", "bench"] + extra)


def ttft(server, prompt):
    t0 = time.time()
    st, text = post(server.url + "/v1/completions", {"model": "bench", "prompt": prompt, "max_tokens": 1,
                                                     "temperature": 0}, timeout=3600)
    dt = time.time() - t0
    check(st == 200, f"request answered {st}: {text[:200]}")
    usage = json.loads(text)["usage"] if st == 200 else {}
    return dt, usage.get("prompt_cache_hit_tokens", 0), usage.get("prompt_cache_hit_disk_tokens", 0)


def disk_reads(server):
    return (metric(server.url, "dsinfer_kv_disk_read_bytes_total") or 0,
            metric(server.url, "dsinfer_kv_disk_read_seconds_total") or 0)


def measure(server, prompts, label, want_cached, want_disk):
    """Median TTFT over the prompts; the hit each got must be the one this row is about."""
    b0, s0 = disk_reads(server)
    times = []
    for p in prompts:
        dt, cached, disk = ttft(server, p)
        check(cached >= want_cached and disk >= want_disk,
              f"{label}: the hit is the expected one (cached {cached}, disk {disk})")
        times.append(dt)
    b1, s1 = disk_reads(server)
    row = {"ttft_ms": statistics.median(times) * 1e3, "samples_ms": [round(t * 1e3, 1) for t in times]}
    if b1 > b0:
        row["disk_read_gbps"] = (b1 - b0) / (s1 - s0) / 1e9
        row["disk_read_mb_per_prompt"] = (b1 - b0) / len(prompts) / 1e6
    print(f"{label:>34}: TTFT {row['ttft_ms']:9.1f} ms" +
          (f"   disk tier read {row['disk_read_gbps']:.2f} GB/s" if "disk_read_gbps" in row else ""), flush=True)
    return row


def stop(server):
    server.kill()
    server.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dsinfer", default=os.path.join(os.path.dirname(__file__), "..", "build", "dsinfer"))
    ap.add_argument("--work", default="/tmp/dsinfer-disk-bench")
    ap.add_argument("--out", default="")
    ap.add_argument("--parts", default="device,ttft,chat", help="which of device, ttft, chat to run")
    a = ap.parse_args()
    q = a.quick
    preset = "tiny-v3" if q else "bench-v3-small"
    model = tiny_model(a.dsinfer, a.work, preset, seed=0)
    disk = os.path.join(a.work, "kv-disk")
    shutil.rmtree(disk, ignore_errors=True)
    n, repeats = (256, 2) if q else (4096, 3)
    rng = random.Random(11)
    prompts = [[rng.randrange(1000, 100000) for _ in range(n)] for _ in range(repeats)]
    hit = n - 1  # the last prompt token is always computed (its logits are the first token's)
    report = {"preset": preset, "prompt_tokens": n, "repeats": repeats, "cores": os.cpu_count()}
    base = ["--kv-cache-gb", "0.2" if q else "2", "--max-batch-tokens", "2048"]
    with_disk = base + ["--kv-disk-dir", disk, "--kv-disk-gb", "20"]
    parts = a.parts.split(",")
    try:
        if "device" in parts:
            print(f"== device: sequential read in {disk}", flush=True)
            report["device"] = device_read(disk, 64 if q else 1024)
            print("   dd:", report["device"], flush=True)
            # The tier's read path alone, on the same file system, in the same minutes.
            r = subprocess.run([a.dsinfer, "disk-tier-bench", "--dir", os.path.join(disk, "tier-bench"), "--json",
                                "--blocks", str(n // 64), "--rounds", "3" if q else "5"] + (["--layers", "2"] if q else []),
                               capture_output=True, text=True, check=True)
            report["tier_read"] = json.loads(r.stdout.strip().splitlines()[-1])
            print("   disk-tier-bench:", report["tier_read"], flush=True)
        if "ttft" in parts:
            ttft_rows(a, report, model, prompts, with_disk, hit, disk, n, repeats, preset)
        if "chat" in parts:
            multi_turn(a, report, model, disk, q)
    finally:
        stop_all()
        shutil.rmtree(disk, ignore_errors=True)
    write_report(report, a.out)
    print(f"disk_kv_bench: {len(failures)} failures")
    sys.exit(1 if failures else 0)


def ttft_rows(a, report, model, prompts, with_disk, hit, disk, n, repeats, preset):
    print(f"== TTFT of a {n}-token prompt ({preset}), median of {repeats}", flush=True)
    s1 = serve(a.dsinfer, model, with_disk)
    rows = report["ttft"] = {}
    rows["cold"] = measure(s1, prompts, "cold (computed)", 0, 0)
    rows["ram_hit"] = measure(s1, prompts, "RAM hit", hit, 0)
    wait_for(lambda: (metric(s1.url, "dsinfer_kv_disk_written_blocks_total") or 0) >= repeats * (n // 64), 60,
             "every full block written through")
    s2 = serve(a.dsinfer, model, with_disk)
    rows["disk_hit_second_process"] = measure(s2, prompts, "disk hit, second process", hit, hit)
    stop(s1)
    stop(s2)
    if drop_page_cache():
        s3 = serve(a.dsinfer, model, with_disk)
        drop_page_cache()  # the model's load read pages too: the blocks' must not be cached
        rows["disk_hit_page_cache_dropped"] = measure(s3, prompts, "disk hit, page cache dropped", hit, hit)
        stop(s3)
    else:
        print("   (not root: the dropped-page-cache row is skipped)", flush=True)
    s4 = serve(a.dsinfer, model, with_disk + ["--kv-disk-direct-io"])
    rows["disk_hit_o_direct"] = measure(s4, prompts, "disk hit, O_DIRECT", hit, hit)
    stop(s4)
    for k in ("disk_hit_second_process", "disk_hit_page_cache_dropped", "disk_hit_o_direct"):
        if k in rows:
            rows[k]["cold_over_this"] = rows["cold"]["ttft_ms"] / rows[k]["ttft_ms"]
            if "disk_read_gbps" in rows[k] and "device" in report:
                rows[k]["read_over_dd_direct"] = rows[k]["disk_read_gbps"] / report["device"]["direct_gbps"]


def multi_turn(a, report, model, disk, q):
    print("== multi-turn chat, RAM cache too small for every history: disk tier off, then on", flush=True)
    conv = (["--conversations", "6", "--turns", "3", "--input-len", "128", "--turn-input-len", "32",
             "--output-len", "8", "--concurrency", "2"] if q else
            ["--conversations", "16", "--turns", "4", "--input-len", "1024", "--turn-input-len", "128",
             "--output-len", "32", "--concurrency", "4"])
    small = ["--kv-cache-gb", "0.001" if q else "0.12", "--max-batch-tokens", "2048"]
    chat = report["multi_turn"] = {}
    shutil.rmtree(disk, ignore_errors=True)
    for name, extra in (("disk_off", small), ("disk_on", small + ["--kv-disk-dir", disk, "--kv-disk-gb", "20"])):
        s = serve(a.dsinfer, model, extra)
        out = os.path.join(a.work, f"multi_turn_{name}.json")
        subprocess.run([a.dsinfer, "bench", "--url", s.url, "--no-load", "--seed", "5", "--timeout", "3600",
                        "--out", out] + conv, check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            mt = json.load(f)["multi_turn"]
        check(mt["failed"] == 0, f"multi-turn {name}: every request completed")
        later = [t["ttft"]["p50_ms"] for t in mt["per_turn"][1:]]
        chat[name] = {"hit_ratio": mt["hit_ratio"], "disk_hit_ratio": mt["disk_hit_ratio"],
                      "input_tokens": mt["input_tokens"], "cached_input_tokens": mt["cached_input_tokens"],
                      "later_turns_ttft_p50_ms": statistics.median(later) if later else None}
        print(f"{name:>9}: hit ratio {mt['hit_ratio']:.3f} (disk {mt['disk_hit_ratio']:.3f}), "
              f"later turns' TTFT p50 {chat[name]['later_turns_ttft_p50_ms']:.0f} ms", flush=True)
        stop(s)
    check(chat["disk_on"]["hit_ratio"] >= chat["disk_off"]["hit_ratio"], "the disk tier never lowers the hit ratio")
    if not q:
        check(chat["disk_on"]["disk_hit_ratio"] > 0, "the disk tier serves hits the RAM cache lost")


if __name__ == "__main__":
    main()
