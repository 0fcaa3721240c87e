#!/usr/bin/env python3
"""The report pages beside the GraphQL answers they show, in one run.

Usage (after `cargo build --release -p plangraph-server` and `apt-get install wrk`):

    python3 bench/page.py [SECONDS]

Starts the release binary on a fresh SQLite store with the generated 17 × 6 data set (102
reports, labelled synthetic beside the published Peru report), rate limits off, and measures
with `wrk` for SECONDS (default 10) at 16 and 64 connections:

- the Peru page, `GET /reports/PER/2023`, beside `POST /graphql` with the query the page is
  rendered from (crates/pages/src/queries.rs, REPORT);
- the index, `GET /reports` (102 reports), beside `POST /graphql` with its query (INDEX);
- a reload of the unchanged Peru page (`If-None-Match` with its ETag): every answer a 304.

It prints requests/s, p50 and p99 for each, the cost of a page as the GraphQL answer's
requests/s ÷ the page's (the goal: at most 1.5), and the server's peak resident memory. Every
answer is checked before measuring: status, and for the pages a figure of the report. Talks to
127.0.0.1 only.
"""
import json
import os
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
QUERIES = (ROOT / "crates" / "pages" / "src" / "queries.rs").read_text()
SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10


def query(name: str) -> str:
    """A query of the pages crate, as the pages run it (with the `Figures` fragment when the
    query is `concat!`ed with it)."""
    match = re.search(rf'pub const {name}: &str = (concat!\(\s*)?r#"(.*?)"#', QUERIES, re.S)
    text = match.group(2)
    if match.group(1):
        text += re.search(r'macro_rules! figures \{.*?r#"(.*?)"#', QUERIES, re.S).group(1)
    return text


def milliseconds(value: str, unit: str) -> float:
    return float(value) / 1000 if unit == "us" else float(value) * 1000 if unit == "s" else float(value)


def wrk(url: str, script: str, connections: int, workdir: str) -> tuple[float, float, float, str]:
    path = pathlib.Path(workdir) / "bench.lua"
    path.write_text(script)
    out = subprocess.run(
        ["wrk", "--latency", "-t", "2", "-c", str(connections), "-d", f"{SECONDS}s", "-s",
         str(path), url],
        capture_output=True, text=True, timeout=SECONDS + 60, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = milliseconds(*re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups())
    p99 = milliseconds(*re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups())
    return rate, p50, p99, out


def post_script(text: str, variables: dict | None = None) -> str:
    body = {"query": text}
    if variables is not None:
        body["variables"] = variables
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )


def get_script(headers: dict[str, str] | None = None, status: int = 200) -> str:
    lines = ['wrk.method = "GET"']
    for key, value in (headers or {}).items():
        lines.append(f"wrk.headers[{json.dumps(key)}] = {json.dumps(value)}")
    # Counts answers with another status, so the run can fail on them.
    lines.append(
        f"""other = 0
response = function(status, headers, body)
  if status ~= {status} then other = other + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("other statuses: %d\\n", other))
end"""
    )
    return "\n".join(lines) + "\n"


def peak_rss_mib(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    if not BINARY.exists():
        sys.exit("first: cargo build --release -p plangraph-server")
    workdir = tempfile.mkdtemp(prefix="plangraph-page-")
    url = f"sqlite://{workdir}/plangraph.db?mode=rwc"
    env = dict(os.environ, DATABASE_URL=url, RUST_LOG="warn")
    subprocess.run([str(BINARY), "generate", "--countries", "17", "--years", "6"], env=env,
                   check=True, capture_output=True, timeout=600)
    server = subprocess.Popen(
        [str(BINARY), "serve", "--listen", "127.0.0.1:0", "--rate-per-address", "0",
         "--rate-per-token", "0"],
        env=dict(env, RUST_LOG="info"), stderr=subprocess.PIPE, text=True)
    try:
        addr = None
        for line in server.stderr:
            match = re.search(r"listening on http://([0-9.:]+)/graphql", line)
            if match:
                addr = match.group(1)
                threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
                break
        if addr is None:
            sys.exit("the server did not start")
        base = f"http://{addr}"
        with urllib.request.urlopen(f"{base}/reports/PER/2023", timeout=30) as response:
            page = response.read().decode()
            etag = response.headers["ETag"]
        if "$488.5 K" not in page:
            sys.exit("the Peru page does not show its figures")
        with urllib.request.urlopen(f"{base}/reports", timeout=30) as response:
            index = response.read().decode()
        reports = index.count('href="/reports/')
        if reports < 102:
            sys.exit(f"the index lists {reports} reports, not 102")
        runs = [
            ("Peru page", f"{base}/reports/PER/2023", get_script()),
            ("Peru, its GraphQL answer", f"{base}/graphql",
             post_script(query("REPORT"), {"iso3": "PER", "year": 2023})),
            ("index page", f"{base}/reports", get_script()),
            ("index, its GraphQL answer", f"{base}/graphql", post_script(query("INDEX"))),
            ("Peru page, 304 reload", f"{base}/reports/PER/2023",
             get_script({"If-None-Match": etag}, 304)),
        ]
        print(f"release build, SQLite, {reports} reports (17 × 6 generated, Peru published), "
              f"wrk -t 2 -d {SECONDS}s, rate limits off, caches as shipped")
        print(f"| what | connections | req/s | p50 ms | p99 ms |")
        print("|---|---|---|---|---|")
        rates = {}
        for name, target, script in runs:
            for connections in (16, 64):
                rate, p50, p99, out = wrk(target, script, connections, workdir)
                other = re.search(r"other statuses: (\d+)", out)
                if ("Non-2xx" in out and "304" not in name) or (other and int(other.group(1))):
                    sys.exit(f"{name}: answers with another status\n{out}")
                rates[(name, connections)] = rate
                print(f"| {name} | {connections} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |")
        for page_name, answer_name in [("Peru page", "Peru, its GraphQL answer"),
                                       ("index page", "index, its GraphQL answer")]:
            for connections in (16, 64):
                cost = rates[(answer_name, connections)] / rates[(page_name, connections)]
                print(f"{page_name} at {connections} connections costs {cost:.2f}× its GraphQL "
                      "answer (goal ≤ 1.5×)")
        print(f"peak resident memory: {peak_rss_mib(server.pid):.1f} MiB")
    finally:
        server.kill()
        subprocess.run(["rm", "-rf", workdir], check=False)


if __name__ == "__main__":
    main()
