"""Ledger overhead: the same playbook (30 tasks x N lab hosts) with no recording, with the
Milepost ledger on SQLite and on PostgreSQL, and with ARA's callback (offline, SQLite).

Variants run interleaved (A B C D, A B C D, ...) so machine noise hits them alike. Prints
medians, spreads, added wall time per run and per recorded result, and ours against ARA's.

A whole run's controller CPU varies by seconds with the machine's load, more than the
ledger's share of it, so the writer's own cost is then measured in-process as well: the
same number of task results, handed over one at a time at the pace of the runs above,
through milepost.ansible.recorder to SQLite and PostgreSQL, against the same loop without a
recorder (`--writer-only` runs just this part, without the lab; `--no-group-commit` writes
each result in a transaction of its own, as the recorder did before it group-committed).

Not a test: it asserts nothing. It runs on every lab host. Usage (after `scripts/lab up
--hosts 20` and `scripts/postgres`):

    .venv/bin/python bench/ledger_overhead.py [--rounds 5] [--writer-only] [--no-group-commit]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from milepost.ansible import recorder
from milepost.ansible.recorder import Recorder
from milepost.ledger import new_run_id, task_result
from milepost.ledger.config import local_postgres_url

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLAYBOOK = ROOT / "bench" / "playbooks" / "thirty_tasks.yml"
INVENTORY = ROOT / "inventory" / "lab" / "hosts.yml"
#: scripts/postgres's database; its random password is read from the 0600 file it keeps.
PG_ADMIN = os.environ.get("MILEPOST_TEST_PG_URL") or local_postgres_url()
TASKS = 30
#: The in-process part hands over this many results, evenly spaced (real results come in
#: bursts, one per host as a task ends, which group better: this errs on the dear side).
WRITER_RESULTS = 200
#: With --writer-only, results 160 ms apart: 600 results in a 96 s run, as on 20 lab hosts.
WRITER_GAP = 0.16
PATH_KEYS = {
    "inventory",
    "roles_path",
    "library",
    "module_utils",
    "filter_plugins",
    "callback_plugins",
}


def ara_callback_dir() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "ara.setup.callback_plugins"], capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit("bench: ARA is not installed: `make bench` installs bench/requirements.txt")
    return out.stdout.strip()


def config_without_callbacks(work: Path) -> Path:
    """ansible.cfg as it is, less `callbacks_enabled`, with its relative paths made absolute."""
    lines = []
    for line in (ROOT / "ansible.cfg").read_text().splitlines():
        key, sep, value = line.partition("=")
        if key.strip() == "callbacks_enabled":
            continue
        if sep and key.strip() in PATH_KEYS:
            line = f"{key}= {ROOT / value.strip()}"
        lines.append(line)
    path = work / "ansible-no-recording.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


def variants(work: Path) -> dict[str, dict[str, str]]:
    base = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "MILEPOST_ROOT": str(ROOT),
        "MILEPOST_STATE_DIR": str(work / "state"),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    return {
        "none": {**base, "ANSIBLE_CONFIG": str(config_without_callbacks(work))},
        "ledger-sqlite": {**base, "MILEPOST_LEDGER_URL": f"sqlite:///{work / 'ledger.sqlite'}"},
        "ledger-postgresql": {**base, "MILEPOST_LEDGER_URL": PG_ADMIN},
        "ara": {
            **base,
            "ANSIBLE_CALLBACK_PLUGINS": f"{ROOT / 'plugins/callback'}:{ara_callback_dir()}",
            "ANSIBLE_CALLBACKS_ENABLED": "ara_default",
            "ARA_API_CLIENT": "offline",
            "ARA_BASE_DIR": str(work / "ara"),
        },
    }


def run_once(env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(PLAYBOOK)],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"bench: the playbook failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def writer_cpu(url: str | None, results: int, gap: float) -> float:
    """Process CPU seconds to hand `results` task results over one at a time, `gap` apart,
    to a recorder writing to `url` (None: the same loop, no recorder)."""
    writer = Recorder(url, print) if url else None
    begin = time.process_time()
    if writer:
        writer.start(playbook="bench.yml", kind="manual")
    run_id = writer.run_id if writer else new_run_id()
    for i in range(results):
        record = task_result(run_id, f"host-{i % 20:02d}", f"task {i // 20}", "ok", 0.1)
        if writer:
            writer.put(record)
        time.sleep(gap)
    if writer:
        writer.finish("successful")
    return time.process_time() - begin


def writer_cost(work: Path, rounds: int, results: int, gap: float) -> None:
    os.environ["MILEPOST_STATE_DIR"] = str(work / "state")
    urls = {
        "none": None,
        "ledger-sqlite": f"sqlite:///{work / 'writer.sqlite'}",
        "ledger-postgresql": PG_ADMIN,
    }
    samples: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            os.environ.pop("MILEPOST_RUN_ID", None)
            samples[name].append(writer_cpu(url, results, gap))
    base = statistics.median(samples["none"])
    mode = "one transaction per result" if recorder.LINGER == 0 else "group commit"
    print(
        f"writer cost in-process ({mode}): {results} results {1000 * gap:.0f} ms apart,"
        f" {rounds} interleaved rounds, medians"
    )
    for name in ("ledger-sqlite", "ledger-postgresql"):
        cpu = statistics.median(samples[name])
        print(f"{name:<18} {1000 * (cpu - base) / results:+.2f} ms cpu per result")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writer-only", action="store_true", help="only the in-process part")
    parser.add_argument("--no-group-commit", action="store_true", help="one transaction per result")
    args = parser.parse_args()
    if args.rounds < 1:
        sys.exit("bench: --rounds must be at least 1")
    if args.no_group_commit:
        recorder.LINGER = 0.0
    if args.writer_only:
        with tempfile.TemporaryDirectory(prefix="milepost-bench-") as tmp:
            writer_cost(Path(tmp), args.rounds, WRITER_RESULTS, WRITER_GAP)
        return
    if not INVENTORY.is_file():
        sys.exit("bench: the lab is not up: run `make lab HOSTS=20`")
    hosts = len(json.loads((ROOT / ".milepost/lab/state.json").read_text())["hosts"])
    results_per_run = TASKS * hosts
    with tempfile.TemporaryDirectory(prefix="milepost-bench-") as tmp:
        envs = variants(Path(tmp))
        for env in envs.values():  # warm up: schema creation, ARA's migrations, SSH masters
            run_once(env)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in envs}
        for round_no in range(1, args.rounds + 1):
            for name, env in envs.items():
                samples[name].append(run_once(env))
                wall, cpu = samples[name][-1]
                print(f"round {round_no} {name}: {wall:.2f}s wall, {cpu:.2f}s cpu", flush=True)
    base_wall = statistics.median(w for w, _ in samples["none"])
    base_cpu = statistics.median(c for _, c in samples["none"])
    print(
        f"ledger overhead: {TASKS} tasks x {hosts} hosts = {results_per_run} results per run,"
        f" {args.rounds} interleaved rounds, medians (min-max)"
    )
    print(
        f"{'variant':<18} {'wall s':>18} {'added':>8} {'ms/result':>10} {'cpu s':>8}"
        f" {'added cpu':>10} {'cpu ms/result':>14}"
    )
    added = {}
    for name, runs in samples.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        wall = statistics.median(walls)
        cpu = statistics.median(cpus)
        added[name] = wall - base_wall
        print(
            f"{name:<18} {wall:8.2f} ({min(walls):.2f}-{max(walls):.2f})"
            f" {100 * (wall - base_wall) / base_wall:+7.1f}%"
            f" {1000 * (wall - base_wall) / results_per_run:+10.2f}"
            f" {cpu:8.2f} {cpu - base_cpu:+10.2f}"
            f" {1000 * (cpu - base_cpu) / results_per_run:+14.2f}"
        )
    if added["ara"] > 0:
        for name in ("ledger-sqlite", "ledger-postgresql"):
            print(f"{name} adds {added[name] / added['ara']:.2f} of what ARA adds")
    with tempfile.TemporaryDirectory(prefix="milepost-bench-") as tmp:
        # Results arrived at the pace of the unrecorded runs.
        writer_cost(Path(tmp), args.rounds, WRITER_RESULTS, base_wall / results_per_run)


if __name__ == "__main__":
    main()
