"""CLI startup: wall time of `milepost --help`, `milepost stop --help` and `milepost ledger
runs` (on a new, empty SQLite ledger), against their targets, with the floor beneath them:
the interpreter alone and `import typer`.

Each round runs every case once, in turn (interleaved, so the machine's noise hits them
alike); the medians of the rounds are compared with the targets. The CPU time of each
child (user + system) is printed too: on this shared 2-core machine the wall time grows
with the load (printed before and after), the CPU time much less.

The ledger is created (its schema migrated) by one untimed run first, whose time is shown
on its own: the timed runs read an empty, existing ledger. Milepost's modules are compiled
to bytecode first, as an installed Milepost's are: with PYTHONDONTWRITEBYTECODE set (as
in some shells here) every run would otherwise compile each module changed since.

Not a test: it asserts nothing (tests/unit/cli/test_main.py checks what each command
imports). Usage:

    .venv/bin/python bench/cli_startup.py [--rounds 5]
"""

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MILEPOST = str(BIN / "milepost")
#: (label, argv, target in seconds or None for a floor)
CASES: list[tuple[str, list[str], float | None]] = [
    ("python -c pass (floor)", [sys.executable, "-c", "pass"], None),
    ("python -c 'import typer' (floor)", [sys.executable, "-c", "import typer"], None),
    ("milepost --help", [MILEPOST, "--help"], 0.25),
    ("milepost stop --help", [MILEPOST, "stop", "--help"], 0.25),
    ("milepost ledger runs", [MILEPOST, "ledger", "runs"], 0.4),
]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, child CPU seconds (user + system) and exit code of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    compileall.compile_dir(ROOT / "milepost", quiet=1)
    state = tempfile.mkdtemp(prefix="milepost-bench-cli-")
    env = dict(
        os.environ,
        MILEPOST_LEDGER_URL=f"sqlite:///{state}/ledger.sqlite",
        MILEPOST_STATE_DIR=f"{state}/state",
    )
    load_before = os.getloadavg()
    first, _, rc = timed([MILEPOST, "ledger", "runs"], env)
    print(
        f"new ledger, first `milepost ledger runs` (creates the schema): {first:.3f} s (exit {rc})"
    )

    walls: dict[str, list[float]] = {label: [] for label, _, _ in CASES}
    cpus: dict[str, list[float]] = {label: [] for label, _, _ in CASES}
    for _ in range(args.rounds):
        for label, argv, _ in CASES:
            wall, cpu, rc = timed(argv, env)
            if rc != 0:
                print(f"warning: {label} exited {rc}", file=sys.stderr)
            walls[label].append(wall)
            cpus[label].append(cpu)
    load_after = os.getloadavg()

    print(
        f"{args.rounds} rounds; load average {load_before[0]:.2f} before,"
        f" {load_after[0]:.2f} after ({os.cpu_count()} CPUs)"
    )
    print(f"{'case':34} {'median':>8} {'min-max':>13} {'cpu':>7} {'target':>7}  met")
    for label, _, target in CASES:
        median = statistics.median(walls[label])
        spread = f"{min(walls[label]):.3f}-{max(walls[label]):.3f}"
        cpu = statistics.median(cpus[label])
        if target is None:
            goal, met = "-", "floor"
        else:
            goal, met = f"{target:.2f}", "yes" if median <= target else "NO"
        print(f"{label:34} {median:8.3f} {spread:>13} {cpu:7.3f} {goal:>7}  {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
