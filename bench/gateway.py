#!/usr/bin/env python3
"""plangraph directly, behind Hive Router and behind Hive Gateway, side by side in one run.

Usage (after `cargo build --release -p plangraph-server`, `npm ci` in tests/interop,
`apt-get install wrk`, and Hive Router built as `.ci/run` builds it):

    python3 bench/gateway.py [SECONDS]

Starts a throwaway Postgres 15 cluster (PG_BIN, default /usr/lib/postgresql/15/bin) with
pg_stat_statements, plangraph on it (release build, rate limits off), the test peer subgraph
(tests/interop/peer-subgraph.mjs), composes the supergraph with the pinned
@theguild/federation-composition (tests/interop/compose.mjs), and serves it with Hive Router
(PLANGRAPH_HIVE_ROUTER, default ~/.cache/plangraph/hive-router-0.3.10/bin/hive_router, with
tests/interop/router/router.config.yaml) and with Hive Gateway as it ships (`hive-gateway
supergraph FILE`, no configuration). Then, for two queries:

- the nested dashboard query (bench/nested.graphql): directly, through each gateway;
- a join (the peer's programmes with plangraph's sectors, through plangraph's `_entities`):
  through each gateway only (plangraph alone cannot answer the peer's fields);

1. SQL statements per request: 50 sequential requests, counted by pg_stat_statements;
2. `wrk` for SECONDS (default 10) at 16 and 64 connections: requests/s, p50, p99;
   then the dashboard again, directly and through Hive Router, with plangraph's response
   and row caches off (restarted on the same port);
   and the CPU time plangraph and the gateway each spent per request during the run;
3. the peak resident memory (VmHWM) of plangraph, the router and the gateway at the end.

Every answer is checked for GraphQL errors (and the gateways' dashboard answers against the
direct one) before measuring. Talks to 127.0.0.1 only.
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
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "plangraph"
INTEROP = ROOT / "tests" / "interop"
PG_BIN = pathlib.Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
NESTED = (ROOT / "bench" / "nested.graphql").read_text()
JOIN = ("{ country(iso3: \"PER\") { iso3 name peerLabel report(year: 2023) { id "
        "peerProgrammes { name sector { code name parent { code } } } } } }")
HIVE_ROUTER = pathlib.Path(os.environ.get(
    "PLANGRAPH_HIVE_ROUTER",
    pathlib.Path(os.environ.get("PLANGRAPH_CACHE", pathlib.Path.home() / ".cache" / "plangraph"))
    / "hive-router-0.3.10" / "bin" / "hive_router"))
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


def statements_per_request(addr: str, query: str, port: int, workdir: str,
                           requests: int = 50) -> float:
    psql(port, workdir, "SELECT pg_stat_statements_reset()")
    for _ in range(requests):
        post(addr, query)
    # plangraph's statements only: not the reset, not this count.
    calls = psql(
        port, workdir,
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
        "WHERE query NOT ILIKE '%pg_stat_statements%' AND query NOT ILIKE 'SELECT $1' "
        "AND query NOT ILIKE 'BEGIN%' AND query NOT ILIKE 'COMMIT%'",
    )
    return int(calls) / requests


def milliseconds(value: str, unit: str) -> float:
    return float(value) / 1000 if unit == "us" else float(value) * 1000 if unit == "s" else float(value)


def wrk(addr: str, query: str, connections: int, workdir: str) -> tuple[float, float, float]:
    script = pathlib.Path(workdir) / "query.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps({'query': query}))}\n"
    )
    out = subprocess.run(
        ["wrk", "--latency", "-t", "2", "-c", str(connections), "-d", f"{SECONDS}s",
         "-s", str(script), f"http://{addr}/graphql"],
        capture_output=True, text=True, timeout=SECONDS + 60, check=True,
    ).stdout
    if "Non-2xx" in out:
        sys.exit(f"wrk saw non-2xx answers from {addr}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = milliseconds(*re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups())
    p99 = milliseconds(*re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups())
    return rate, p50, p99


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def answers(addr: str, attempts: int = 600) -> None:
    for _ in range(attempts):
        try:
            post(addr, "{ __typename }")
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    sys.exit(f"nothing answers on {addr}")


def numbers_as_floats(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return [numbers_as_floats(v) for v in value]
    return {k: numbers_as_floats(v) for k, v in value.items()}


def measure(name, addr, query, server, process, port, workdir):
    """One table row per connection count for `query` at `addr`: SQL statements per request,
    req/s, p50, p99, and the CPU plangraph (`server`) and the gateway (`process`, unless it is
    plangraph itself) spent per request. Yields (connections, req/s)."""
    statements = statements_per_request(addr, query, port, workdir)
    for connections in (16, 64):
        cpu = (cpu_seconds(server.pid), cpu_seconds(process.pid))
        rate, p50, p99 = wrk(addr, query, connections, workdir)
        requests = rate * SECONDS
        own = (cpu_seconds(server.pid) - cpu[0]) / requests * 1e6
        gateway_cpu = ("" if process is server else
                       f"{(cpu_seconds(process.pid) - cpu[1]) / requests * 1e6:19.0f}")
        print(f"  {name:14} {statements:8.1f} {connections:5} {rate:9.0f} "
              f"{p50:8.2f} {p99:8.2f} {own:21.0f} {gateway_cpu}")
        yield connections, rate


def main() -> None:
    for need, hint in [(BINARY, "cargo build --release -p plangraph-server"),
                       (INTEROP / "node_modules", "(cd tests/interop && npm ci)"),
                       (HIVE_ROUTER, "build Hive Router as .ci/run does")]:
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
        plangraph_port = free_port()

        def serve(*extra: str) -> subprocess.Popen:
            process = subprocess.Popen(
                [str(BINARY), "serve", "--listen", f"127.0.0.1:{plangraph_port}",
                 "--rate-per-address", "0", "--rate-per-token", "0", *extra],
                cwd=workdir, env=dict(os.environ, DATABASE_URL=url), stderr=subprocess.PIPE,
                text=True)
            processes.append(process)
            wait_for(process, r"listening on http://([0-9.:]+)/graphql", process.stderr)
            return process

        server = serve()
        direct = f"127.0.0.1:{plangraph_port}"
        peer_port = free_port()
        peer = subprocess.Popen(["node", str(INTEROP / "peer-subgraph.mjs"), "--port", str(peer_port)],
                                cwd=INTEROP, stdout=subprocess.PIPE, text=True)
        processes.append(peer)
        wait_for(peer, r'("listening")', peer.stdout)
        supergraph = pathlib.Path(workdir) / "supergraph.graphql"
        composed = subprocess.run(
            ["node", str(INTEROP / "compose.mjs"), "--plangraph", f"http://{direct}/graphql",
             "--peer", f"http://127.0.0.1:{peer_port}/", "--out", str(supergraph)],
            cwd=INTEROP, capture_output=True, text=True, timeout=120, check=True)
        if not json.loads(composed.stdout.strip().splitlines()[-1])["ok"]:
            sys.exit(f"composition failed: {composed.stdout}")

        router_port = free_port()
        router = subprocess.Popen(
            [str(HIVE_ROUTER)], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, ROUTER_CONFIG_FILE_PATH=str(INTEROP / "router" / "router.config.yaml"),
                     SUPERGRAPH_FILE_PATH=str(supergraph), HOST="127.0.0.1",
                     PORT=str(router_port), LOG_LEVEL="warn"))
        processes.append(router)
        gateway_port = free_port()
        gateway = subprocess.Popen(
            ["node", str(INTEROP / "node_modules/@graphql-hive/gateway/dist/bin.js"), "supergraph",
             str(supergraph), "-h", "127.0.0.1", "-p", str(gateway_port)],
            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        processes.append(gateway)
        wait_for(gateway, r"(Listening on)", gateway.stdout)
        targets = {
            "directly": (direct, server),
            "Hive Router": (f"127.0.0.1:{router_port}", router),
            "Hive Gateway": (f"127.0.0.1:{gateway_port}", gateway),
        }
        for addr, _ in targets.values():
            answers(addr)
        reference = numbers_as_floats(post(direct, NESTED)["data"])
        for name, (addr, _) in targets.items():
            if numbers_as_floats(post(addr, NESTED)["data"]) != reference:
                sys.exit(f"{name} answers the dashboard differently from plangraph")
            if name != "directly":
                post(addr, JOIN)

        print(f"release build, Postgres 15, wrk -t 2 -d {SECONDS}s, rate limits off; "
              "plangraph's response cache on (as shipped)")
        rates = {}
        for label, query in [("dashboard", NESTED), ("join", JOIN)]:
            print(f"\n{label} query")
            print(f"  {'':14} {'SQL/req':>8} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
                  f" {'plangraph CPU µs/req':>21} {'gateway CPU µs/req':>19}")
            for name, (addr, process) in targets.items():
                if label == "join" and name == "directly":
                    continue
                for connections, rate in measure(name, addr, query, server, process, port,
                                                 workdir):
                    rates[(label, name, connections)] = rate
        print("\npeak resident memory (VmHWM)")
        for name, process in [("plangraph", server), ("Hive Router", router),
                              ("Hive Gateway", gateway), ("peer subgraph", peer)]:
            print(f"  {name:14} {peak_rss_mib(process.pid):7.1f} MiB")
        for connections in (16, 64):
            ratio = rates[("dashboard", "Hive Router", connections)] / \
                rates[("dashboard", "directly", connections)]
            print(f"dashboard through Hive Router ÷ directly at {connections} connections: "
                  f"{ratio:.2f}× (goal ≥ 0.7×)")

        # The same with plangraph's caches off (the engine alone answers every request), on the
        # same port, so the router reconnects to the restarted process by itself.
        server.kill()
        server.wait()
        server = serve("--response-cache-bytes", "0", "--row-cache-bytes", "0")
        answers(direct)
        answers(targets["Hive Router"][0])
        print("\ndashboard query, plangraph's response and row caches off")
        print(f"  {'':14} {'SQL/req':>8} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
              f" {'plangraph CPU µs/req':>21} {'gateway CPU µs/req':>19}")
        for name in ("directly", "Hive Router"):
            addr, process = targets[name]
            process = server if name == "directly" else process
            if numbers_as_floats(post(addr, NESTED)["data"]) != reference:
                sys.exit(f"{name} answers the dashboard differently with caches off")
            for connections, rate in measure(name, addr, NESTED, server, process, port, workdir):
                rates[("engine", name, connections)] = rate
        for connections in (16, 64):
            ratio = rates[("engine", "Hive Router", connections)] / \
                rates[("engine", "directly", connections)]
            print(f"caches off, dashboard through Hive Router ÷ directly at {connections} "
                  f"connections: {ratio:.2f}×")
    finally:
        for process in processes:
            process.kill()
        subprocess.run(as_owner([str(PG_BIN / "pg_ctl"), "-D", data, "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
