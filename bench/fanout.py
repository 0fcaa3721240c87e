#!/usr/bin/env python3
"""Fan-out: how long one committed change takes to reach 1,000 subscribers, over WebSocket,
GraphQL over SSE and multipart HTTP, and what the serving processes weigh before and after.

Usage (after `cargo build --release -p plangraph-server` and `npm ci` in tests/interop):

    python3 bench/fanout.py [SUBSCRIBERS]

Four runs, each printed as one table row:

1.-3. one `plangraph serve` on a fresh SQLite file (the embedded default, in-process broker),
   with the subscribers on WebSocket (graphql-transport-ws), on SSE streams (distinct
   connections mode) and on multipart HTTP streams (Apollo's protocol), each its own TCP
   connection;
4. two `plangraph serve` processes sharing one Postgres database (a throwaway Postgres 15
   cluster this script starts from PG_BIN, default /usr/lib/postgresql/15/bin), subscribers
   split between them, the change made through the first (LISTEN/NOTIFY carries it to the
   second).

Subscribers are opened by tests/interop/fanout.mjs (Node), one connection each.
Each subscribes to `figuresChanged` for the Peru report's Education row and selects the new
value, so every event is resolved against the store (one DataLoader per event and process). The
change is one `setSectorFigures` mutation over HTTP; latency runs from just before it is sent to
each subscriber's first event (wall clock, both sides on this machine). Every event is checked for
GraphQL errors. Bounded: every wait has a timeout; everything talks to 127.0.0.1.
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
FANOUT = ROOT / "tests" / "interop" / "fanout.mjs"
PG_BIN = pathlib.Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
SUBSCRIBERS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SUBSCRIPTION = (
    'subscription { figuresChanged(reportId: "1", sectorCode: "EDU") '
    "{ revision changes { path after } figures { peopleReached fundingUsd } } }"
)


def rss_mib(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workdir: str, url: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, DATABASE_URL=url, RUST_LOG="warn,plangraph_server=info")
    server = subprocess.Popen(
        [str(BINARY), "serve", "--listen", "127.0.0.1:0", "--rate-per-address", "0"],
        cwd=workdir,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    for line in server.stderr:
        match = re.search(r"listening on http://([0-9.:]+)/graphql", line)
        if match:
            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            return server, match.group(1)
        if time.time() > deadline:
            break
    server.kill()
    sys.exit(f"the server on {url} did not start")


def post(addr: str, query: str, token: str | None = None) -> dict:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://{addr}/graphql", data=json.dumps({"query": query}).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    if answer.get("errors"):
        sys.exit(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def admin_token(url: str, workdir: str) -> str:
    out = subprocess.run(
        [str(BINARY), "token", "create", "--role", "admin", "--name", "fan-out benchmark"],
        cwd=workdir,
        env=dict(os.environ, DATABASE_URL=url, RUST_LOG="error"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def run(label: str, servers: list[tuple[subprocess.Popen, str]], token: str,
        protocol: str = "graphql-transport-ws") -> dict:
    writer = servers[0][1]
    # Warm each process (first query, pools) before weighing it.
    for _, addr in servers:
        post(addr, '{ report(id: "1") { revision sector(code: "EDU") { peopleReached } } }')
    before = [rss_mib(p.pid) for p, _ in servers]
    scheme = "ws" if protocol.startswith("graphql") else "http"
    urls = ",".join(f"{scheme}://{addr}/graphql" for _, addr in servers)
    fleet = subprocess.Popen(
        ["node", str(FANOUT), "--urls", urls, "--subscribers", str(SUBSCRIBERS),
         "--query", SUBSCRIPTION, "--timeout-ms", "60000", "--protocol", protocol],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = json.loads(fleet.stdout.readline() or "{}")
    if ready.get("type") != "ready":
        fleet.kill()
        sys.exit(f"{label}: the subscribers did not get ready: {ready}")
    subscribed = [rss_mib(p.pid) for p, _ in servers]
    revision = post(writer, '{ report(id: "1") { revision } }')["report"]["revision"]
    fleet.stdin.write(json.dumps({"sentAt": time.time() * 1000}) + "\n")
    fleet.stdin.flush()
    post(
        writer,
        f'mutation {{ setSectorFigures(reportId: "1", expectedRevision: {revision}, '
        f'sectorCode: "EDU", figures: {{ peopleReached: "40.1 K" }}) {{ revision }} }}',
        token,
    )
    result = json.loads(fleet.stdout.readline() or "{}")
    fleet.wait(timeout=60)
    after = [rss_mib(p.pid) for p, _ in servers]
    if result.get("received") != SUBSCRIBERS or result.get("withErrors"):
        sys.exit(f"{label}: not every subscriber got a clean event: {result}")
    return {
        "label": label,
        "result": result,
        "before": before,
        "subscribed": subscribed,
        "after": after,
    }


def sqlite_run(protocol: str, transport: str) -> dict:
    workdir = tempfile.mkdtemp(prefix="plangraph-fanout-")
    url = f"sqlite://{workdir}/plangraph.db?mode=rwc"
    server = start_server(workdir, url)
    try:
        return run(f"1 process, SQLite, {transport}", [server], admin_token(url, workdir), protocol)
    finally:
        server[0].kill()
        shutil.rmtree(workdir, ignore_errors=True)


def as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def postgres_run() -> dict:
    workdir = tempfile.mkdtemp(prefix="plangraph-fanout-pg-")
    data = os.path.join(workdir, "data")
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    subprocess.run(
        as_owner([str(PG_BIN / "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync"]),
        check=True, capture_output=True, timeout=120,
    )
    port = free_port()
    subprocess.run(
        as_owner([str(PG_BIN / "pg_ctl"), "-D", data, "-l", os.path.join(workdir, "pg.log"),
                  "-o", f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c max_connections=200",
                  "-w", "start"]),
        check=True, capture_output=True, timeout=120,
    )
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    servers = []
    try:
        # The first process migrates and loads the Peru report; the second finds it there.
        servers.append(start_server(workdir, url))
        servers.append(start_server(workdir, url))
        return run("2 processes, one Postgres, WebSocket", servers, admin_token(url, workdir))
    finally:
        for server, _ in servers:
            server.kill()
        subprocess.run(
            as_owner([str(PG_BIN / "pg_ctl"), "-D", data, "-m", "immediate", "stop"]),
            capture_output=True, timeout=60,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    if not BINARY.exists():
        sys.exit("build first: cargo build --release -p plangraph-server")
    if not (ROOT / "tests" / "interop" / "node_modules").exists():
        sys.exit("install the clients first: (cd tests/interop && npm ci)")
    rows = [
        sqlite_run("graphql-transport-ws", "WebSocket"),
        sqlite_run("sse", "SSE"),
        sqlite_run("multipart", "multipart"),
        postgres_run(),
    ]
    print(f"fan-out of one change to {SUBSCRIBERS} subscribers")
    print("| setup | first event | p50 | p95 | last event | RSS idle | RSS subscribed | RSS after |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        r = row["result"]
        mib = lambda xs: " + ".join(f"{x:.1f}" for x in xs) + " MiB"
        print(
            f"| {row['label']} | {r['firstMs']:.1f} ms | {r['p50Ms']:.1f} ms | {r['p95Ms']:.1f} ms "
            f"| {r['lastMs']:.1f} ms | {mib(row['before'])} | {mib(row['subscribed'])} "
            f"| {mib(row['after'])} |"
        )


if __name__ == "__main__":
    main()
