"""Helpers shared by the ledger tests (importable by spawned worker processes too)."""

from __future__ import annotations

from typing import Any

from milepost.ledger import Ledger, run_ended, run_started, task_result


def sample_run(
    ledger: Ledger, hosts: int = 3, tasks: int = 2, status: str = "successful", **start: Any
) -> str:
    """Append a small finished run; return its id."""
    started = run_started(playbook=start.pop("playbook", "playbooks/maintain.yml"), **start)
    run_id = started["run_id"]
    records = [started]
    statuses = ["ok", "changed", "failed", "skipped", "unreachable"]
    for t in range(tasks):
        for h in range(hosts):
            records.append(
                task_result(run_id, f"host{h}", f"AUDIT | task {t}", statuses[(t + h) % 5], 0.5)
            )
    records.append(run_ended(run_id, status))
    ledger.append(records)
    return run_id


def plain_records(n: int, kind: str = "note") -> list[dict[str, Any]]:
    return [{"kind": kind, "run_id": None, "host": f"h{i % 3}", "body": {"i": i}} for i in range(n)]


def append_worker(url: str, worker: int, batches: int, size: int) -> None:
    """Run in a spawned process: append `batches` batches of `size` notes."""
    ledger = Ledger.open(url)  # several processes may create the schema at once
    for b in range(batches):
        ledger.append(
            [
                {
                    "kind": "note",
                    "run_id": None,
                    "host": f"w{worker}",
                    "body": {"w": worker, "b": b, "i": i},
                }
                for i in range(size)
            ]
        )
    ledger.close()


def controller_worker(url: str, state: str, playbook: str, inventory: str, root: str) -> None:
    """One controller: its own process, state directory and private data dir (a fresh one
    per run, milepost.ansible.runner), running ``playbook`` into the ledger at ``url``."""
    import sys
    from pathlib import Path

    from milepost.ansible.runner import run_playbook

    result = run_playbook(
        Path(playbook),
        inventory=[Path(inventory)],
        env={"MILEPOST_LEDGER_URL": url, "MILEPOST_STATE_DIR": state},
        quiet=True,
        root=Path(root),
    )
    sys.exit(0 if result.succeeded else 1)
