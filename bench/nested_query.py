#!/usr/bin/env python3
"""Start-up time, latency and memory of `plangraph serve` for the full nested dashboard query.

Usage (after `cargo build --release -p plangraph-server`):

    python3 bench/nested_query.py [REQUESTS]

Starts the release binary in a fresh temporary directory (so it migrates a new SQLite file and
loads the bundled Peru report), sends 20 warm-up and then REQUESTS (default 500) sequential
POSTs of bench/nested.graphql to it over loopback, checks every response for GraphQL errors,
and prints the figures. Bounded in count; talks to 127.0.0.1 only.
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "plangraph"
QUERY = (ROOT / "bench" / "nested.graphql").read_text()
REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 500


def main() -> None:
    workdir = tempfile.mkdtemp(prefix="plangraph-bench-")
    started = time.perf_counter()
    server = subprocess.Popen(
        [str(BINARY), "serve", "--listen", "127.0.0.1:0", "--rate-per-address", "0"],
        cwd=workdir,
        stderr=subprocess.PIPE,
        text=True,
    )
    addr = None
    for line in server.stderr:
        match = re.search(r"listening on http://([0-9.:]+)/graphql", line)
        if match:
            addr = match.group(1)
            break
    if addr is None:
        sys.exit("the server did not start")
    ready_ms = (time.perf_counter() - started) * 1000
    # Keep draining the log, or the server blocks once the pipe is full.
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()

    body = json.dumps({"query": QUERY}).encode()

    def once() -> None:
        request = urllib.request.Request(
            f"http://{addr}/graphql", data=body, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
        if answer.get("errors"):
            sys.exit(f"GraphQL errors: {answer['errors']}")

    try:
        for _ in range(20):
            once()
        latencies = []
        for _ in range(REQUESTS):
            t = time.perf_counter()
            once()
            latencies.append((time.perf_counter() - t) * 1000)
        latencies.sort()
        status = pathlib.Path(f"/proc/{server.pid}/status").read_text()
        rss_mib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    finally:
        server.terminate()
        server.wait(timeout=15)

    pct = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))]
    print(f"start to listening (migrate + import Peru into a new SQLite file): {ready_ms:.0f} ms")
    print(
        f"nested query, {REQUESTS} sequential requests: p50 {pct(0.50):.2f} ms, "
        f"p95 {pct(0.95):.2f} ms, max {latencies[-1]:.2f} ms"
    )
    print(f"RSS of the server after the run: {rss_mib:.1f} MiB")


if __name__ == "__main__":
    main()
