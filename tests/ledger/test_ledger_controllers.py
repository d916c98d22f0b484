"""Several controllers record into one ledger at once: four processes, each with its own
state directory and its own ansible-runner private data directory, run a real playbook
(20 tasks, local connection) through milepost.ansible.runner; the ledger holds each run whole and
stays one valid chain."""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

from ledger_helpers import controller_worker

from milepost.ledger import Ledger, queries

ROOT = Path(__file__).resolve().parents[2]
CONTROLLERS, TASKS = 4, 20


def write_playbook(path: Path) -> Path:
    tasks = "".join(
        f"    - name: AUDIT | Run step {n:02d}\n"
        "      ansible.builtin.command: /bin/true\n"
        "      changed_when: false\n"
        for n in range(1, TASKS + 1)
    )
    path.write_text(
        "---\n- name: Run small tasks on the controller\n  hosts: localhost\n"
        "  gather_facts: false\n  tasks:\n" + tasks
    )
    return path


def test_four_controllers_record_whole_runs_into_one_valid_chain(ledger_url, tmp_path):
    playbook = write_playbook(tmp_path / "tasks.yml")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(
            target=controller_worker,
            args=(
                ledger_url,
                str(tmp_path / f"controller-{n}"),
                str(playbook),
                str(inventory),
                str(ROOT),
            ),
        )
        for n in range(CONTROLLERS)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=600)
    assert [proc.exitcode for proc in procs] == [0] * CONTROLLERS

    with Ledger.open(ledger_url) as ledger:
        result = ledger.verify()
        runs = queries.runs(ledger)
    assert result.ok, result
    assert len(runs) == CONTROLLERS
    assert all(run["status"] == "successful" for run in runs)
    assert all(run["hosts"]["localhost"]["ok"] == TASKS for run in runs)
