#!/usr/bin/env python3
"""The nested dashboard query's latency, alone and under a flood of over-limit documents.

Usage (after `cargo build --release -p plangraph-server`; needs `wrk`, `apt-get install wrk`):

    python3 bench/flood.py [SECONDS [MEASURED_CONNECTIONS [FLOOD_CONNECTIONS [limited]]]]

Starts the release binary on a fresh SQLite file (rate limits off, so the flood reaches the
query limits rather than being turned away at the door), then, in one run:

1. baseline: `wrk` POSTs bench/nested.graphql for SECONDS (default 10) on MEASURED connections
   (default 4);
2. flood: the same measurement while a second `wrk` POSTs, on FLOOD connections (default 8),
   as fast as it can, documents just
   over the limits (a fragment-doubling document of 29 levels, 51 aliases, 13 levels deep),
   each refused with its code.

Prints the nested query's p50/p99 both times and their ratio, and how many flood documents were
refused per second. Every nested answer is checked once for GraphQL errors before measuring, and
a sample of each flood document for its refusal code. Talks to 127.0.0.1 only.
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
NESTED = (ROOT / "bench" / "nested.graphql").read_text()
SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
# Connections of the measured client and of the flood.
MEASURED = int(sys.argv[2]) if len(sys.argv) > 2 else 4
FLOODERS = int(sys.argv[3]) if len(sys.argv) > 3 else 8
# "limited": the flood comes with a token and the server's per-token rate limit (its default,
# 100 a second) applies, as it would to a partner system gone wrong; per-address limits stay off
# because both clients share the loopback address here.
LIMITED = len(sys.argv) > 4 and sys.argv[4] == "limited"


def doubling(levels: int) -> str:
    doc = f"query {{ countries {{ ...F{levels} }} }}\nfragment F0 on Country {{ iso3 }}\n"
    for n in range(1, levels + 1):
        doc += f"fragment F{n} on Country {{ ...F{n - 1} ...F{n - 1} }}\n"
    return doc


FLOOD = [
    (doubling(29), "QUERY_TOO_COMPLEX"),
    ("{ " + " ".join(f"a{n}: __typename" for n in range(51)) + " }", "TOO_MANY_ALIASES"),
    ('{ sector(code: "PRO-GBV") { ' + "parent { " * 13 + "code" + " }" * 13 + " } }", "QUERY_TOO_DEEP"),
]


def post(addr: str, query: str) -> dict:
    request = urllib.request.Request(
        f"http://{addr}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def lua(workdir: str, name: str, bodies: list[str], token: str | None = None) -> str:
    """A wrk script that POSTs the bodies in turn."""
    path = pathlib.Path(workdir) / f"{name}.lua"
    quoted = ",\n".join(json.dumps(json.dumps({"query": b})) for b in bodies)
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n' + auth +
        f"local bodies = {{\n{quoted}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\n"
        "end\n"
    )
    return str(path)


def wrk(addr: str, script: str, connections: int, seconds: int) -> str:
    out = subprocess.run(
        ["wrk", "--latency", "-t", "1", "-c", str(connections), "-d", f"{seconds}s",
         "-s", script, f"http://{addr}/graphql"],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    )
    return out.stdout


def percentile(report: str, p: str) -> float:
    match = re.search(rf"^\s+{re.escape(p)}\s+([\d.]+)(us|ms|s)\s*$", report, re.M)
    if not match:
        sys.exit(f"no {p} in wrk's report:\n{report}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def rate(report: str) -> float:
    match = re.search(r"Requests/sec:\s+([\d.]+)", report)
    return float(match.group(1)) if match else float("nan")


def main() -> None:
    if not BINARY.exists():
        sys.exit("build first: cargo build --release -p plangraph-server")
    workdir = tempfile.mkdtemp(prefix="plangraph-flood-")
    server = subprocess.Popen(
        [str(BINARY), "serve", "--listen", "127.0.0.1:0", "--rate-per-address", "0"]
        + ([] if LIMITED else ["--rate-per-token", "0"]),
        cwd=workdir, stderr=subprocess.PIPE, text=True,
    )
    addr = None
    for line in server.stderr:
        match = re.search(r"listening on http://([0-9.:]+)/graphql", line)
        if match:
            addr = match.group(1)
            break
    if addr is None:
        sys.exit("the server did not start")
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    try:
        answer = post(addr, NESTED)
        if answer.get("errors"):
            sys.exit(f"the nested query fails: {answer['errors']}")
        for doc, code in FLOOD:
            refused = post(addr, doc)
            got = refused.get("errors", [{}])[0].get("extensions", {}).get("code")
            if got != code:
                sys.exit(f"expected {code}, got {refused}")
        nested = lua(workdir, "nested", [NESTED])
        flood = lua(workdir, "flood", [doc for doc, _ in FLOOD], "pgt_flood" if LIMITED else None)

        baseline = wrk(addr, nested, MEASURED, SECONDS)
        flood_report = {}
        flooding = threading.Thread(
            target=lambda: flood_report.setdefault("out", wrk(addr, flood, FLOODERS, SECONDS + 2))
        )
        flooding.start()
        time.sleep(1)
        under = wrk(addr, nested, MEASURED, SECONDS)
        flooding.join()

        b50, b99 = percentile(baseline, "50%"), percentile(baseline, "99%")
        u50, u99 = percentile(under, "50%"), percentile(under, "99%")
        print(f"nested query, wrk -c {MEASURED} -d {SECONDS}s, release build, SQLite; flood wrk -c {FLOODERS}")
        print(f"  baseline:     p50 {b50:.2f} ms, p99 {b99:.2f} ms, {rate(baseline):.0f} req/s")
        print(f"  under flood:  p50 {u50:.2f} ms, p99 {u99:.2f} ms, {rate(under):.0f} req/s")
        print(f"  p99 ratio:    {u99 / b99:.2f}x")
        what = "answered (429 past the token's rate)" if LIMITED else "refused"
        print(f"flood: {rate(flood_report['out']):.0f} over-limit documents {what} per second")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
