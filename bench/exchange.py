#!/usr/bin/env python3
"""Exports and imports at response size: the generated data set (17 countries x 6 years: 102
reports, 101 labelled synthetic in the store and the bundled Peru report in its own slot) exported in every
format, and its JSON imported back into an empty store, on SQLite and on Postgres.

Usage (after `cargo build --release -p plangraph-server`):

    python3 bench/exchange.py [--smoke]

For each store, one table row per command: wall time, the process's peak resident memory
(ru_maxrss of the finished child), bytes written. Exports must stream: the peak of each format's
export of all reports is printed over that of one report's, as a ratio (goal: within 2x).
The round trip is checked too: the re-export of the imported JSON must be byte-equal.
`--smoke` runs the debug build on 2 countries x 2 years (used by .ci/run: checks, no figures).
Postgres is a throwaway cluster this script starts from PG_BIN (default
/usr/lib/postgresql/15/bin). Every child has a timeout.
"""
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMOKE = "--smoke" in sys.argv
BINARY = ROOT / "target" / ("debug" if SMOKE else "release") / "plangraph"
PG_BIN = pathlib.Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
COUNTRIES, YEARS = (2, 2) if SMOKE else (17, 6)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(url: str, args: list[str], workdir: str) -> tuple[float, float]:
    """Runs `plangraph ARGS`; its wall time (s) and peak RSS (MiB). Fails loudly."""
    started = time.monotonic()
    child = subprocess.Popen(
        [str(BINARY), *args],
        cwd=workdir,
        env={**os.environ, "DATABASE_URL": url, "PLANGRAPH_LOG_FORMAT": "json", "RUST_LOG": "warn"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = started + 600
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            child.kill()
            sys.exit(f"plangraph {args} took over 600 s")
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"plangraph {' '.join(args)} failed ({code}):\n{stderr}")
    return elapsed, usage.ru_maxrss / 1024


def measure(label: str, url: str, empty_url: str, workdir: str) -> list[str]:
    rows = []

    def row(what: str, args: list[str], output: str | None = None, db: str = url):
        seconds, mib = run(db, args, workdir)
        size = os.path.getsize(os.path.join(workdir, output)) if output else 0
        rows.append(f"| {label} | {what} | {seconds * 1000:.0f} ms | {mib:.1f} MiB | "
                    f"{size / 1024:.0f} KiB |" if output else
                    f"| {label} | {what} | {seconds * 1000:.0f} ms | {mib:.1f} MiB | |")
        return mib

    row(f"generate {COUNTRIES} x {YEARS}", ["generate", "--countries", str(COUNTRIES),
                                           "--years", str(YEARS)])
    ones, peaks = {}, {}
    for fmt, name in [("json", "all.json"), ("csv", "all.csv"), ("hxl", "all.hxl.csv"),
                      ("xlsx", "all.xlsx")]:
        ones[fmt] = row(f"export {fmt}, 1 report", ["export", "--format", fmt, "--country",
                                                   "PER", "--year", "2023", "-o", "one-" + name],
                        "one-" + name)
        peaks[fmt] = row(f"export {fmt}, all", ["export", "--format", fmt, "-o", name], name)
    row("import json into an empty store", ["import", "all.json"], db=empty_url)
    row("re-export json", ["export", "--format", "json", "-o", "again.json"], "again.json",
        db=empty_url)
    same = pathlib.Path(workdir, "all.json").read_bytes() == pathlib.Path(workdir, "again.json").read_bytes()
    if not same:
        sys.exit(f"{label}: the re-export of the imported JSON differs from the export")
    ratios = ", ".join(f"{fmt} {peaks[fmt] / ones[fmt]:.2f}x" for fmt in peaks)
    rows.append(f"| {label} | streaming: peak RSS of the export of all ÷ of one report | "
                f"{ratios} | | round trip byte-equal: {same} |")
    return rows


def sqlite_rows() -> list[str]:
    workdir = tempfile.mkdtemp(prefix="plangraph-exchange-")
    try:
        return measure("SQLite", f"sqlite://{workdir}/a.db?mode=rwc",
                       f"sqlite://{workdir}/b.db?mode=rwc", workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def postgres_rows() -> list[str]:
    workdir = tempfile.mkdtemp(prefix="plangraph-exchange-pg-")
    data = os.path.join(workdir, "data")
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
        os.chmod(workdir, 0o777)
    subprocess.run(as_owner([str(PG_BIN / "initdb"), "-D", data, "-A", "trust", "-U",
                             "postgres", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    subprocess.run(as_owner([str(PG_BIN / "pg_ctl"), "-D", data, "-l",
                             os.path.join(workdir, "pg.log"), "-o",
                             f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1", "-w",
                             "start"]),
                   check=True, capture_output=True, timeout=120)
    base = f"postgres://postgres@127.0.0.1:{port}"
    try:
        subprocess.run(as_owner([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                                 "-U", "postgres", "empty"]),
                       check=True, capture_output=True, timeout=60)
        return measure("Postgres", f"{base}/postgres", f"{base}/empty", workdir)
    finally:
        subprocess.run(as_owner([str(PG_BIN / "pg_ctl"), "-D", data, "-m", "immediate",
                                 "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    if not BINARY.exists():
        sys.exit(f"build first: {BINARY} is missing")
    rows = sqlite_rows() + postgres_rows()
    print(f"exports and imports, {COUNTRIES} countries x {YEARS} years generated "
          f"(the Peru report keeps its slot), {BINARY.parent.name} build")
    print("| store | command | wall | peak RSS | bytes |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
