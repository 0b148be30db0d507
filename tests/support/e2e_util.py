"""What the end-to-end tests share: processes they start (and always stop), HTTP calls that never
raise for a refused or dead peer, /metrics lookups, bounded waits, and a failure list that the
test turns into its exit status."""
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

procs = []
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def start(bin_, args, env=None, port=0):
    cmd = [bin_] + args + ["--host", "127.0.0.1", "--port", str(port)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=dict(os.environ, **(env or {})))
    procs.append(p)
    deadline = time.time() + 60
    out = ""
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        out += line
        m = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", line)
        if m:
            p.lines = out.splitlines()
            p.cmd = " ".join(cmd[1:4])

            def drain():  # keep reading (a full pipe would block it), keep the lines for a failure
                for text in p.stdout:
                    p.lines.append(text.rstrip())
            threading.Thread(target=drain, daemon=True).start()
            p.url, p.port = m.group(1), int(m.group(2))
            return p
    raise RuntimeError(f"{' '.join(cmd)} did not start: {out}")


def get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def post(url, body, timeout=60):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    req = urllib.request.Request(url, data=data.encode() if isinstance(data, str) else data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def stream(url, path, body, on_event=None, timeout=60):
    """Streams one request; returns (status, events as parsed JSON or the string '[DONE]')."""
    host, port = url[len("http://"):].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    c.request("POST", path, json.dumps(dict(body, stream=True)), {"Content-Type": "application/json"})
    r = c.getresponse()
    events, buf = [], b""
    if r.status != 200:
        return r.status, [r.read().decode()]
    try:
        while True:
            chunk = r.read1(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                ev = ev.decode()
                if not ev.startswith("data: "):
                    continue
                payload = ev[6:]
                events.append("[DONE]" if payload == "[DONE]" else json.loads(payload))
                if on_event:
                    on_event(events[-1])
    except (OSError, http.client.HTTPException) as e:
        events.append(f"connection error: {e}")
    return r.status, events


def metric(url, name, labels=""):
    _, text = get(url + "/metrics")
    m = re.search(r"^" + re.escape(name) + (r"\{[^}]*" + labels + r"[^}]*\}" if labels else r"(?:\{[^}]*\})?") +
                  r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_for(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return check(False, f"timed out ({timeout} s) waiting for {what}")




def tiny_model(dsinfer, work, preset="tiny-v3", seed=3):
    """A random model made once per work directory (make-model is seeded: every run gets the same)."""
    model = os.path.join(work, preset)
    if not os.path.exists(os.path.join(model, "config.json")):
        os.makedirs(work, exist_ok=True)
        subprocess.run([dsinfer, "make-model", "--preset", preset, "--out", model + ".tmp", "--seed", str(seed)],
                       check=True, stdout=subprocess.DEVNULL)
        os.replace(model + ".tmp", model)
    return model


def dsinfer_logits(dsinfer, model, tokens, precision, work, mtp=False):
    """`dsinfer logits` over token ids: the main model's logits [n, V], and with mtp the MTP
    module's [n - 1, V] too (numpy arrays)."""
    import numpy as np  # only the tests that compare logits need numpy
    out, mtp_out = os.path.join(work, "logits.npy"), os.path.join(work, "mtp.npy")
    subprocess.run([dsinfer, "logits", "--model", model, "--tokens", ",".join(map(str, tokens)), "--out", out,
                    "--precision", precision] + (["--mtp-out", mtp_out] if mtp else []), check=True,
                   capture_output=True)
    return (np.load(out), np.load(mtp_out)) if mtp else np.load(out)


def generate_json(dsinfer, model, prompt, max_new_tokens, *extra):
    """`dsinfer generate --json` at temperature 0 (extra flags after): its JSON report."""
    r = subprocess.run([dsinfer, "generate", "--model", model, "--prompt", prompt, "--max-new-tokens",
                        str(max_new_tokens), "--temperature", "0", "--json", *extra], check=True,
                       capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def write_report(report, out):
    """A benchmark's JSON report: printed, and written to `out` when one is given."""
    text = json.dumps(report, indent=2)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    print(text)


def finish(name, t0):
    """Prints the verdict and exits with it: the end of every test script, after its `finally:
    stop_all()` (an exception on the way skips this and fails the script with its traceback)."""
    print(f"{name}: {len(failures)} failures in {time.time() - t0:.0f} s")
    sys.exit(1 if failures else 0)


def stop_all():
    """Kills every process a test started and reports what the failed ones said."""
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass
    if failures:
        for p in procs:
            print(f"--- {getattr(p, 'cmd', '?')} {getattr(p, 'url', '')} (exit {p.returncode}):")
            for line in getattr(p, "lines", [])[-40:]:
                print("   ", line)
