#!/usr/bin/env python3
"""The nested dashboard query through Hive Gateway and directly, side by side, in one run.

Usage (after `cargo build --release -p plangraph-server`, `npm ci` in tests/interop, and
`apt-get install wrk`):

    python3 bench/gateway.py [SECONDS]

Starts a throwaway Postgres 15 cluster (PG_BIN, default /usr/lib/postgresql/15/bin) with
pg_stat_statements, plangraph on it (release build, rate limits off), the test peer subgraph
(tests/interop/peer-subgraph.mjs) and Hive Gateway composing both. Then:

1. SQL statements per request: 50 sequential requests directly and 50 through the gateway,
   counted by pg_stat_statements (reset before each batch; plangraph's own statements only);
2. throughput and latency: `wrk` POSTs bench/nested.graphql for SECONDS (default 10) on 4
   connections, directly and through the gateway.

Every answer is checked for GraphQL errors before measuring. Talks to 127.0.0.1 only.
"""
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "plangraph"
INTEROP = ROOT / "tests" / "interop"
PG_BIN = pathlib.Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
NESTED = (ROOT / "bench" / "nested.graphql").read_text()
SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def post(addr: str, query: str) -> dict:
    request = urllib.request.Request(
        f"http://{addr}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    if answer.get("errors"):
        sys.exit(f"GraphQL errors from {addr}: {answer['errors']}")
    return answer


def wait_for(process: subprocess.Popen, pattern: str, stream) -> str:
    for line in stream:
        match = re.search(pattern, line)
        if match:
            threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
            return match.group(1) if match.groups() else line
    process.kill()
    sys.exit(f"{process.args[0]} did not start")


def psql(port: int, workdir: str, sql: str) -> str:
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-At", "-c", sql],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return out.stdout.strip()


def statements_per_request(addr: str, port: int, workdir: str, requests: int = 50) -> float:
    psql(port, workdir, "SELECT pg_stat_statements_reset()")
    for _ in range(requests):
        post(addr, NESTED)
    # plangraph's statements only: not the reset, not this count.
    calls = psql(
        port, workdir,
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
        "WHERE query NOT ILIKE '%pg_stat_statements%' AND query NOT ILIKE 'SELECT $1' "
        "AND query NOT ILIKE 'BEGIN%' AND query NOT ILIKE 'COMMIT%'",
    )
    return int(calls) / requests


def wrk(addr: str, workdir: str) -> tuple[float, float]:
    script = pathlib.Path(workdir) / "nested.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps({'query': NESTED}))}\n"
    )
    out = subprocess.run(
        ["wrk", "--latency", "-t", "1", "-c", "4", "-d", f"{SECONDS}s", "-s", str(script),
         f"http://{addr}/graphql"],
        capture_output=True, text=True, timeout=SECONDS + 30, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    match = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    value, unit = float(match.group(1)), match.group(2)
    p99 = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    if "Non-2xx" in out:
        sys.exit(f"wrk saw non-2xx answers:\n{out}")
    return rate, p99


def main() -> None:
    for need, hint in [(BINARY, "cargo build --release -p plangraph-server"),
                       (INTEROP / "node_modules", "(cd tests/interop && npm ci)")]:
        if not need.exists():
            sys.exit(f"first: {hint}")
    workdir = tempfile.mkdtemp(prefix="plangraph-gateway-")
    data = os.path.join(workdir, "data")
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    subprocess.run(as_owner([str(PG_BIN / "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
                             "-E", "UTF8", "--no-sync"]), check=True, capture_output=True, timeout=120)
    port = free_port()
    subprocess.run(as_owner([str(PG_BIN / "pg_ctl"), "-D", data, "-l", os.path.join(workdir, "pg.log"),
                             "-o", f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 "
                                   "-c shared_preload_libraries=pg_stat_statements",
                             "-w", "start"]), check=True, capture_output=True, timeout=120)
    processes = []
    try:
        psql(port, workdir, "CREATE EXTENSION pg_stat_statements")
        url = f"postgres://postgres@127.0.0.1:{port}/postgres"
        server = subprocess.Popen(
            [str(BINARY), "serve", "--listen", "127.0.0.1:0", "--rate-per-address", "0",
             "--rate-per-token", "0"],
            cwd=workdir, env=dict(os.environ, DATABASE_URL=url), stderr=subprocess.PIPE, text=True)
        processes.append(server)
        direct = wait_for(server, r"listening on http://([0-9.:]+)/graphql", server.stderr)
        peer_port = free_port()
        peer = subprocess.Popen(["node", str(INTEROP / "peer-subgraph.mjs"), "--port", str(peer_port)],
                                cwd=INTEROP, stdout=subprocess.PIPE, text=True)
        processes.append(peer)
        wait_for(peer, r'("listening")', peer.stdout)
        gateway_port = free_port()
        gateway = subprocess.Popen(
            ["node", str(INTEROP / "node_modules/@graphql-hive/gateway/dist/bin.js"), "supergraph",
             "-c", "gateway.config.ts", "-h", "127.0.0.1", "-p", str(gateway_port),
             "--dev-service", f"plangraph=http://{direct}/graphql",
             "--dev-service", f"peer=http://127.0.0.1:{peer_port}/"],
            cwd=INTEROP / "gateway", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        processes.append(gateway)
        wait_for(gateway, r"(Listening on)", gateway.stdout)
        through = f"127.0.0.1:{gateway_port}"

        post(direct, NESTED)
        post(through, NESTED)
        direct_statements = statements_per_request(direct, port, workdir)
        gateway_statements = statements_per_request(through, port, workdir)
        direct_rate, direct_p99 = wrk(direct, workdir)
        gateway_rate, gateway_p99 = wrk(through, workdir)
        print(f"nested dashboard query, release build, Postgres 15, wrk -c 4 -d {SECONDS}s")
        print(f"  directly:             {direct_rate:7.0f} req/s, p99 {direct_p99:6.2f} ms, "
              f"{direct_statements:.1f} SQL statements per request")
        print(f"  through Hive Gateway: {gateway_rate:7.0f} req/s, p99 {gateway_p99:6.2f} ms, "
              f"{gateway_statements:.1f} SQL statements per request")
    finally:
        for process in processes:
            process.kill()
        subprocess.run(as_owner([str(PG_BIN / "pg_ctl"), "-D", data, "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
