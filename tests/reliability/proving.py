"""The reliability and security proving ground (`make reliability`; a fast subset runs in
`make test`).

MILEPOST_RELIABILITY=full (what `make reliability` sets) runs every trial the suite
promises (200 crash points, 100 lock races, ...); without it each test runs a small,
seeded subset of the same trials. Seeds are fixed (MILEPOST_RELIABILITY_SEED, default
20261201): a failure names its trial and seed, and rerunning with that seed replays it.

Every test counts what it proved with `tally(line)`; at the end pytest prints the
table (and writes it as JSON to .milepost/reliability/tally.json):

    crashes survived, faults survived, tamper cases detected, races with exactly one
    winner, hostile inputs tried, secrets leaked, records lost

A test adds to the first four only after the trial's checks passed; "secrets leaked" and
"records lost" count what was found (each also fails its test), so the table's last two
lines are 0 exactly when the suite passed.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("MILEPOST_RELIABILITY") == "full"
SEED = int(os.environ.get("MILEPOST_RELIABILITY_SEED", "20261201"))
TALLY_FILE = ROOT / ".milepost" / "reliability" / "tally.json"

LINES = (
    "crashes survived",
    "faults survived",
    "tamper cases detected",
    "races with exactly one winner",
    "hostile inputs tried",
    "secrets leaked",
    "records lost",
)

counts: Counter[str] = Counter({line: 0 for line in LINES})


def tally(line: str, count: int = 1) -> None:
    """Count `count` more on one line of the table (one of LINES)."""
    if line not in LINES:
        raise KeyError(f"no tally line {line!r}: one of {', '.join(LINES)}")
    counts[line] += count


def trials(fast: int, full: int) -> int:
    """How many trials a test runs: `full` under MILEPOST_RELIABILITY=full, else `fast`."""
    return full if FULL else fast
