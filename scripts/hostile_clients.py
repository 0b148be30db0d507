#!/usr/bin/python3
"""Hostile clients against `dsinfer serve`: slowloris, slow bodies, disconnect storms, body and
header floods, garbage, and 200 concurrent streams, then checks that the server is healthy,
that its memory did not grow, that /metrics shows nothing left running, and that SIGTERM (and a
second SIGTERM) end it on time even with slow sockets open.

Loopback only, bounded in time (about 40 s with --quick, 2-3 minutes without), standard library
only. Either attacks a server you started (--url, and --pid for memory readings; the shutdown
phase is skipped) or starts its own on a tiny random model (--dsinfer BIN).

  scripts/hostile_clients.py --dsinfer build/dsinfer [--quick] [--json results.json]
  scripts/hostile_clients.py --url http://127.0.0.1:8000 --pid PID --model NAME

Exit status 0 when every check held; the table it prints is what docs/serving.md quotes.
"""
import argparse
import gzip
import http.client
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

results = []   # (phase, figure, value, ok)
failures = []


def record(phase, figure, value, ok=True):
    results.append((phase, figure, value, ok))
    if not ok:
        failures.append(f"{phase}: {figure} = {value}")


class Target:
    def __init__(self, host, port, model, pid=None):
        self.host, self.port, self.model, self.pid = host, port, model, pid

    def conn(self, timeout=10):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def get(self, path, timeout=10):
        c = self.conn(timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            c.close()

    def post(self, path, body, timeout=60):
        c = self.conn(timeout)
        try:
            c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            c.close()

    def sock(self, timeout=10):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        return s

    def metric(self, name, labels=""):
        _, text = self.get("/metrics")
        total = None
        for m in re.finditer(r"^" + re.escape(name) + r"\{([^}]*)\} (\S+)$", text, re.M):
            if labels in m.group(1):
                total = (total or 0) + float(m.group(2))
        return total

    def rss_mb(self, field="VmRSS"):
        if not self.pid:
            return None
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return None


def raw_exchange(t, data, timeout=5, shut=False):
    """Sends bytes, returns (first response line, seconds until the server answered or closed)."""
    s = t.sock(timeout)
    start = time.time()
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close before taking it all: its answer is what counts
        out = b""
        try:
            while b"\r\n" not in out:
                b = s.recv(4096)
                if not b:
                    break
                out += b
        except (socket.timeout, ConnectionResetError):
            pass
        return out.split(b"\r\n")[0].decode(errors="replace"), time.time() - start
    finally:
        s.close()


def health_prober(t, stop, latencies, errors):
    while not stop.is_set():
        start = time.time()
        try:
            st, _ = t.get("/health", timeout=5)
            if st != 200:
                errors.append(f"status {st}")
        except Exception as e:  # noqa: BLE001 - any failure to answer counts
            errors.append(repr(e))
        latencies.append(time.time() - start)
        time.sleep(0.1)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def phase_slow_clients(t, n_headers, n_bodies, seconds):
    """Sockets that trickle a header (slowloris) or a body one byte a second, while /health is
    probed every 100 ms from fresh connections."""
    socks = []
    opened = 0
    for i in range(n_headers + n_bodies):
        try:
            s = t.sock(5)
            if i < n_headers:
                s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
            else:
                s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
            s.setblocking(False)
            socks.append(s)
            opened += 1
        except OSError:
            pass
    stop, lat, errs = threading.Event(), [], []
    prober = threading.Thread(target=health_prober, args=(t, stop, lat, errs))
    prober.start()
    end = time.time() + seconds
    closed_by_server = 0
    while time.time() < end:
        for s in list(socks):
            try:
                s.send(b"X-a: b\r\n" if socks.index(s) < n_headers else b" ")
            except OSError:
                closed_by_server += 1
                socks.remove(s)
                s.close()
        time.sleep(1.0)
    stop.set()
    prober.join()
    for s in socks:
        s.close()
    record("slow clients", "sockets opened (header trickle + body trickle)", f"{opened} ({n_headers}+{n_bodies})")
    record("slow clients", "sockets the server closed (deadline or eviction)", closed_by_server)
    record("slow clients", "/health probes answered", f"{len(lat) - len(errs)}/{len(lat)}", not errs and len(lat) > 0)
    record("slow clients", "/health latency p50 / p99 / max (ms)",
           f"{pct(lat, 50) * 1e3:.1f} / {pct(lat, 99) * 1e3:.1f} / {max(lat) * 1e3:.1f}", pct(lat, 99) < 1.0)


def phase_disconnect_storm(t, n):
    """Requests (half streaming) whose clients vanish after 0-300 ms; the engine must end them."""
    aborted0 = t.metric("dsinfer_requests_finished_total", 'reason="abort"') or 0
    body = {"model": t.model, "prompt": "storm", "max_tokens": 2000, "ignore_eos": True}

    def one(i):
        b = dict(body, stream=bool(i % 2))
        payload = json.dumps(b).encode()
        try:
            s = t.sock(5)
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
            time.sleep(random.uniform(0, 0.3))
            s.close()
        except OSError:
            pass

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    start = time.time()
    while time.time() - start < 30:
        if t.metric("dsinfer_requests_running") == 0 and t.metric("dsinfer_requests_waiting") == 0 \
                and t.metric("dsinfer_kv_blocks_used") == 0:
            break
        time.sleep(0.1)
    settle = time.time() - start
    aborted = (t.metric("dsinfer_requests_finished_total", 'reason="abort"') or 0) - aborted0
    record("disconnect storm", "clients that left mid-request", n)
    record("disconnect storm", "requests aborted by the engine", int(aborted), aborted > 0)
    record("disconnect storm", "seconds until nothing runs and no KV block is used", f"{settle:.2f}", settle < 30)


class PeakRss:
    """Samples the server's resident memory every 20 ms while a phase runs."""
    def __init__(self, t):
        self.t, self.peak, self.stop = t, 0.0, threading.Event()
        self.th = threading.Thread(target=self.run)

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.t.rss_mb() or 0)
            time.sleep(0.02)

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join()


def phase_floods(t):
    rss0 = t.rss_mb()
    with PeakRss(t) as peak:
        flood_bodies_and_headers(t)
    rss1 = t.rss_mb()
    if rss0 is not None:
        record("floods", "resident memory before / peak during / after (MB)", f"{rss0:.0f} / {peak.peak:.0f} / {rss1:.0f}",
               peak.peak - rss0 < 100)


def flood_bodies_and_headers(t):
    # A 100 MB chunked body: refused once it passes the limit, not buffered whole.
    s = t.sock(10)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"100000\r\n" + b"a" * (1 << 20) + b"\r\n"
    sent = 0
    try:
        for _ in range(100):
            s.sendall(chunk)
            sent += 1
    except OSError:
        pass
    try:
        s.settimeout(5)
        line = s.recv(4096).split(b"\r\n")[0].decode()
    except OSError:
        line = "(reset)"
    s.close()
    record("floods", "100 MB chunked body", f"{line or '(closed)'} after {sent} MB sent",
           "413" in line or sent < 100)
    bomb = gzip.compress(b"\0" * (100 << 20))
    line, dt = raw_exchange(t, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
                               b"Content-Length: %d\r\n\r\n" % len(bomb) + bomb)
    record("floods", f"gzip bomb ({len(bomb) // 1024} KB -> 100 MB)", f"{line} in {dt * 1e3:.0f} ms", " 413 " in line)
    lines = b"".join(b"X-Flood-%d: v\r\n" % i for i in range(100000))
    line, dt = raw_exchange(t, b"GET /health HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    record("floods", "100,000 header lines", f"{line} in {dt * 1e3:.0f} ms", " 431 " in line)
    line, dt = raw_exchange(t, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * (1 << 20) + b"\r\n\r\n")
    record("floods", "one 1 MB header", f"{line} in {dt * 1e3:.0f} ms", " 431 " in line)
    line, dt = raw_exchange(t, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64))
    record("floods", "TLS ClientHello", f"{line} in {dt * 1e3:.0f} ms", " 400 " in line and dt < 1)
    line, dt = raw_exchange(t, b"garbage garbage\r\n\r\n")
    record("floods", "garbage request line", f"{line} in {dt * 1e3:.0f} ms", " 400 " in line and dt < 1)
    line, dt = raw_exchange(t, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 50 + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    record("floods", "50 pipelined requests", f"first answer {line}", " 200 " in line)
    stops = ["s" * 100000] * 60  # 6 MB: under the body limit, so the stop-string caps must refuse it
    st, _ = t.post("/v1/completions", {"model": t.model, "prompt": "x", "max_tokens": 2, "stop": stops, "n": 8})
    record("floods", "60 stop strings of 100 KB, n=8", f"HTTP {st}", st == 400)


def phase_streams(t, n, max_tokens):
    ok, errors, tokens = [0], [], [0]
    lock = threading.Lock()

    def one(i):
        try:
            c = t.conn(120)
            body = {"model": t.model, "prompt": f"stream {i}", "max_tokens": max_tokens, "ignore_eos": True,
                    "stream": True, "stream_options": {"include_usage": True}}
            c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read().decode()
            c.close()
            events = [e[6:] for e in data.split("\n\n") if e.startswith("data: ")]
            usage = [json.loads(e)["usage"] for e in events[:-1] if json.loads(e).get("usage")]
            good = r.status == 200 and events and events[-1] == "[DONE]" and usage and \
                usage[-1]["completion_tokens"] == max_tokens
            with lock:
                if good:
                    ok[0] += 1
                    tokens[0] += usage[-1]["completion_tokens"]
                else:
                    errors.append(f"status {r.status}, {len(events)} events")
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append(repr(e))

    start = time.time()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    dt = time.time() - start
    record("concurrent streams", f"{n} streams of {max_tokens} tokens completed with usage and [DONE]",
           f"{ok[0]}/{n} in {dt:.1f} s ({tokens[0] / dt:.0f} tokens/s)", ok[0] == n)
    if errors:
        record("concurrent streams", "first error", errors[0], False)


def phase_final(t, rss_before):
    st, _ = t.get("/health")
    record("after", "/health", st, st == 200)
    if rss_before is not None:
        # What the whole run left behind: the KV pool and scratch are sized at start, so every
        # buffer the attacks made the server take must have been given back.
        rss = t.rss_mb()
        record("after", "resident memory before the run / after it (MB)", f"{rss_before:.0f} / {rss:.0f}",
               rss - rss_before < 100)
    start = time.time()
    while time.time() - start < 10 and (t.metric("dsinfer_http_connections_open") or 0) > 2:
        time.sleep(0.2)
    for name in ("dsinfer_requests_running", "dsinfer_requests_waiting", "dsinfer_kv_blocks_used"):
        v = t.metric(name)
        record("after", name, v, v == 0)
    record("after", "dsinfer_http_connections_open", t.metric("dsinfer_http_connections_open"),
           (t.metric("dsinfer_http_connections_open") or 0) <= 2)
    for reason in ("header_timeout", "body_timeout", "evicted", "peer"):
        record("after", f"connections closed ({reason})",
               t.metric("dsinfer_http_connections_closed_total", f'reason="{reason}"'))
    record("after", "responses abandoned by their clients", t.metric("dsinfer_http_responses_abandoned_total"))
    record("after", "requests refused while reading them", t.metric("dsinfer_http_bad_requests_total"))


def start_server(binary, model_dir, extra=()):
    proc = subprocess.Popen([binary, "serve", "--model", model_dir, "--port", "0", "--kv-cache-gb", "0.5",
                             "--served-model-name", "tiny", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on http://([\d.]+):(\d+)", line)
    if not m:
        proc.kill()
        sys.exit(f"server did not start: {line!r}{proc.stdout.read()}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    return proc, Target(m.group(1), int(m.group(2)), "tiny", proc.pid)


def sigterm_and_time(proc, timeout):
    """SIGTERM, then the exit status and how long the process took to exit after it."""
    start = time.time()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = f"still running after {timeout} s"
    return rc, time.time() - start


def phase_shutdown(binary, model_dir):
    payload = json.dumps({"model": "tiny", "prompt": "x", "max_tokens": 4000, "ignore_eos": True, "stream": True}).encode()
    request = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)
    # SIGTERM with a trickling socket and a non-reading stream open: the drain ends on its
    # deadline, not theirs.
    proc, t = start_server(binary, model_dir, ["--drain-timeout", "2"])
    trickle = t.sock()
    trickle.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
    stream = t.sock()
    stream.sendall(request)
    time.sleep(0.5)
    rc, dt = sigterm_and_time(proc, 20)
    record("shutdown", "SIGTERM with slow sockets open (--drain-timeout 2)", f"exit {rc} after {dt:.1f} s",
           rc == 0 and dt < 2 + 5 + 2)
    trickle.close()
    stream.close()
    # A second signal during a drain exits at once.
    proc, t = start_server(binary, model_dir, ["--drain-timeout", "60"])
    s = t.sock()
    s.sendall(request)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    rc, dt = sigterm_and_time(proc, 10)
    record("shutdown", "second SIGTERM during a 60 s drain", f"exit {rc} after {dt:.2f} s", rc == 128 + 15 and dt < 2)
    s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsinfer", help="binary: make a tiny model and start servers of its own")
    ap.add_argument("--url", help="attack a running server instead")
    ap.add_argument("--pid", type=int, help="the running server's pid (memory readings)")
    ap.add_argument("--model", default="tiny", help="model name the running server accepts")
    ap.add_argument("--quick", action="store_true", help="the short version that runs in make test")
    ap.add_argument("--allow-remote", action="store_true",
                    help="let --url name a host other than this machine's loopback (attack only servers you own)")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    random.seed(1)
    scale = dict(headers=300, bodies=100, seconds=6, storm=100, streams=200, tokens=8) if a.quick else \
        dict(headers=1100, bodies=200, seconds=40, storm=200, streams=200, tokens=32)
    proc = None
    tmp = None
    if a.dsinfer:
        tmp = tempfile.TemporaryDirectory(prefix="dsinfer-hostile-")
        model_dir = os.path.join(tmp.name, "tiny-v3")
        subprocess.run([a.dsinfer, "make-model", "--preset", "tiny-v3", "--out", model_dir], check=True,
                       stdout=subprocess.DEVNULL)
        proc, t = start_server(a.dsinfer, model_dir)
    else:
        m = re.match(r"http://([^:/]+):(\d+)", a.url or "")
        if not m:
            sys.exit("give --dsinfer BIN or --url http://HOST:PORT")
        if m.group(1) not in ("127.0.0.1", "localhost", "[::1]", "::1") and not a.allow_remote:
            sys.exit(f"--url names {m.group(1)}, not loopback: this script floods what it targets; "
                     "give --allow-remote to attack a server of yours on another host")
        t = Target(m.group(1), int(m.group(2)), a.model, a.pid)
    started = time.time()
    try:
        rss_before = t.rss_mb() if t.pid else None
        record("before", "resident memory (MB)", f"{rss_before:.0f}" if rss_before is not None else "n/a")
        phase_slow_clients(t, scale["headers"], scale["bodies"], scale["seconds"])
        phase_disconnect_storm(t, scale["storm"])
        phase_floods(t)
        phase_streams(t, scale["streams"], scale["tokens"])
        phase_final(t, rss_before)
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    if a.dsinfer:
        phase_shutdown(a.dsinfer, model_dir)
    record("total", "seconds", f"{time.time() - started:.0f}")
    print("| phase | what | result | ok |\n|---|---|---|---|")
    for phase, figure, value, ok in results:
        print(f"| {phase} | {figure} | {value} | {'yes' if ok else '**NO**'} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump([dict(phase=p, figure=fi, value=str(v), ok=o) for p, fi, v, o in results], f, indent=1)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
