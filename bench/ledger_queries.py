"""Benchmark (not a test): ledger query times on a ledger holding 1,000,000 task results.

    .venv/bin/python bench/ledger_queries.py [--results N] [--url URL] [--keep]

Builds a temporary SQLite ledger (or uses --url, which must be an EMPTY database) of runs
shaped like real ones (20 hosts x 30 tasks, package facts and changes, start and end),
through Ledger.append in large batches (one transaction each), then prints the median
time of each query the CLI makes. The issue's target: `ledger host` and `ledger runs
--host` under 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from milepost.ledger import (
    Ledger,
    package_change,
    package_facts,
    run_ended,
    run_started,
    task_result,
)

HOSTS = 20
TASKS = 30
RUNS_PER_BATCH = 40
STATUSES = ("ok", "ok", "ok", "changed", "skipped", "ok", "failed", "ok", "unreachable", "ok")


def build(ledger: Ledger, results: int) -> tuple[int, float]:
    runs = max(1, results // (HOSTS * TASKS))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    batch: list[dict[str, Any]] = []
    written = 0
    began = time.perf_counter()
    for r in range(runs):
        when = start + timedelta(hours=6 * r)
        started = run_started(
            playbook="playbooks/maintain.yml",
            kind="scheduled" if r % 7 else "emergency",
            started_at=when.isoformat(),
            pid=1,
        )
        run_id = started["run_id"] = f"bench-{r:07d}"
        batch.append(started)
        for h in range(HOSTS):
            host = f"ruc-host-{h:02d}"
            versions = {f"pkg-{p}": f"1.{r}.{p}" for p in range(40)}
            batch.append({**package_facts(run_id, host, versions), "recorded_at": when})
            for t in range(TASKS):
                status = STATUSES[(r + h + t) % len(STATUSES)]
                record = task_result(
                    run_id, host, f"PATCH | task {t}", status, 0.25, summary="redacted"
                )
                batch.append({**record, "recorded_at": when + timedelta(seconds=t)})
            batch.append(
                {
                    **package_change(run_id, host, "pkg-1", f"1.{r}.1", f"1.{r + 1}.1"),
                    "recorded_at": when + timedelta(seconds=TASKS),
                }
            )
        ended = run_ended(run_id, "successful")
        ended["recorded_at"] = ended["body"]["ended_at"] = (when + timedelta(minutes=5)).isoformat()
        batch.append(ended)
        if (r + 1) % RUNS_PER_BATCH == 0 or r == runs - 1:
            written += len(ledger.append(batch))
            batch = []
            print(f"\r  {written:,} records", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return written, time.perf_counter() - began


def timed(label: str, call: Callable[[], object], repeat: int = 7) -> None:
    call()  # warm the page cache and the connection pool
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    print(f"  {label:<44} {statistics.median(samples):8.2f} ms   (max {max(samples):.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1_000_000, help="task results to make")
    parser.add_argument("--url", help="an EMPTY database URL (default: a temporary SQLite file)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary ledger")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="milepost-bench-"))
    url = args.url or f"sqlite:///{tmp / 'ledger.sqlite'}"
    ledger = Ledger.open(url)
    if ledger.verify().count:
        print(f"{ledger.masked_url} is not empty: give an empty database", file=sys.stderr)
        return 2
    print(f"building {args.results:,} task results in {ledger.masked_url}", file=sys.stderr)
    records, seconds = build(ledger, args.results)
    print(f"built {records:,} records in {seconds:.1f} s ({seconds / records * 1e6:.1f} us each)")

    host = "ruc-host-07"
    newest = ledger.runs(limit=1)[0]["run_id"]
    oldest_month = "2024-02-01"
    print("query times (median of 7):")
    timed("runs() newest 50", lambda: ledger.runs(limit=50))
    timed("runs(host=H) newest 50  [ledger runs --host]", lambda: ledger.runs(host=host, limit=50))
    timed("runs(kind=emergency) newest 50", lambda: ledger.runs(kind="emergency", limit=50))
    timed(
        "runs(host=H, since=30 days after start)",
        lambda: ledger.runs(host=host, since="2024-12-01", limit=50),
    )
    timed("host(H)  [ledger host]", lambda: ledger.host(host))
    timed("run(newest)  [ledger show]", lambda: ledger.run(newest))
    timed("close_stale_runs()  [every command]", ledger.close_stale_runs)
    timed("runs() all", lambda: ledger.runs(), repeat=3)
    timed("runs(host=H) all", lambda: ledger.runs(host=host), repeat=3)
    timed("runs(since=oldest month) all", lambda: ledger.runs(since=oldest_month), repeat=3)
    began = time.perf_counter()
    result = ledger.verify()
    took = time.perf_counter() - began
    print(f"  verify(): ok={result.ok} over {result.count:,} records in {took:.1f} s")
    ledger.close()
    if args.keep or args.url:
        print(f"ledger kept: {url}", file=sys.stderr)
    else:
        for path in tmp.iterdir():
            path.unlink()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
