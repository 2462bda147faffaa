#!/usr/bin/env python3
"""Cold start of `gatehouse serve`: time from spawn to the first 200 on the tenant's
discovery document, with an existing data directory. Used by bench/run.sh.

usage: coldstart.py BIN DATA_DIR PORT TENANT_ID RUNS OUT_JSON

Each run: spawn `BIN serve --data-dir DATA_DIR --listen 127.0.0.1:PORT`, poll
GET https://127.0.0.1:PORT/TENANT_ID/v2.0/.well-known/openid-configuration every 2 ms
(a fresh TLS connection per attempt, verified against DATA_DIR/tls/ca.pem) until it
answers 200, record the elapsed time and the process's VmRSS at that moment, then stop
the process (SIGTERM, SIGKILL after 5 s) and wait for the port to be free. A run that
is not ready within 10 s counts as failed. Total time is bounded (RUNS x ~15 s at most).
"""
import http.client
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time


def vmrss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def one_run(binary, data_dir, port, path, ctx, log):
    while not port_free(port):
        time.sleep(0.05)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    elapsed = None
    rss = None
    attempts = 0
    try:
        while time.perf_counter() - t0 < 10.0:
            if proc.poll() is not None:
                break
            attempts += 1
            try:
                c = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=ctx)
                c.request("GET", path)
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    elapsed = time.perf_counter() - t0
                    rss = vmrss_kib(proc.pid)
                    break
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return elapsed, rss, attempts


def main():
    binary, data_dir, port, tid, runs, out = sys.argv[1:7]
    port, runs = int(port), int(runs)
    ctx = ssl.create_default_context(cafile=os.path.join(data_dir, "tls", "ca.pem"))
    ctx.check_hostname = False  # the leaf is for localhost and 127.0.0.1; we connect by IP
    path = f"/{tid}/v2.0/.well-known/openid-configuration"
    results = []
    with open(os.path.join(os.path.dirname(out), "coldstart-server.log"), "ab") as log:
        for i in range(runs):
            el, rss, attempts = one_run(binary, data_dir, port, path, ctx, log)
            ms = None if el is None else round(el * 1000, 1)
            results.append({"ms": ms, "rss_kib": rss, "polls": attempts})
            print(f"  cold start run {i + 1}/{runs}: "
                  f"{'FAILED (not ready in 10 s)' if ms is None else f'{ms} ms'}"
                  f"{'' if rss is None else f', VmRSS at first 200: {rss / 1024:.1f} MiB'}",
                  flush=True)
    ok = [r["ms"] for r in results if r["ms"] is not None]
    summary = {
        "runs": results,
        "best_ms": min(ok) if ok else None,
        "median_ms": statistics.median(ok) if ok else None,
        "worst_ms": max(ok) if ok else None,
        "failed": runs - len(ok),
    }
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
