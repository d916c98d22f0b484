"""Bounded memory under hostile input.

- A YAML alias bomb ("billion laughs", 9 anchors of 9 aliases each: 9**9 strings once
  expanded) as an inventory file, as vendor data and as the notice settings in group_vars,
  and as a vendor advisory file; /dev/zero as an inventory; a KEV catalog nested a million
  deep. Each goes to the `milepost` command that reads it, run as a real process under
  RLIMIT_AS (2 GiB): exit 2, one line, no traceback, no MemoryError. (PyYAML itself builds
  an aliased node once and shares it, so yaml.safe_load of the bomb is small; Ansible
  copies and templates what it read, which took minutes and 2 GiB before milepost refused
  such inventories itself: milepost.inventory.reading.MAX_ALIAS_EXPANSION.)
- A task that prints 100 MiB (stdout, and stderr of a failing task) in an ansible-playbook
  run recorded by the maintenance_ledger callback: the run is recorded, the ledger
  verifies, the task's stored record stays small, and the run's peak RSS with the ledger
  is at most MARGIN above the same run without it. Peak RSS is each run's
  RUSAGE_CHILDREN ru_maxrss (the largest of ansible-playbook and its workers) read in a
  fresh helper process per run; runs with and without the ledger alternate.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import hostile
import pytest
import yaml
from proving import FULL, ROOT, tally, trials

TALLY = "hostile inputs tried"
BIN = Path(sys.executable).parent
MILEPOST = BIN / "milepost"
#: Address space a milepost command may use here.
LIMIT_AS = 2 * 1024**3
#: What recording a run may add to its peak RSS.
MARGIN = 128 * 1024**2
#: Largest stored body of the noisy task's record.
MAX_RECORD = 64 * 1024
OUTPUT = 100 * 1024**2
#: Lines of the output: short ones, so anything that splits it into lines pays for it.
LINE = ("0123456789abcdef" * 4)[:63] + "\n"


def _env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MILEPOST_ROOT": str(ROOT),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "MILEPOST_STATE_DIR": str(tmp / "state"),
        "MILEPOST_LEDGER_URL": f"sqlite:///{tmp / 'ledger.sqlite'}",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }


#: Runs a command under RLIMIT_AS and prints its exit code, output and peak RSS as JSON. A
#: fresh, small process: ru_maxrss of a child forked straight from pytest would count
#: pytest's own pages (the fork image before exec).
BOUNDED = """\
import json, resource, subprocess, sys
limit = int(sys.argv[1])
def bound():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
done = subprocess.run(sys.argv[2:], capture_output=True, stdin=subprocess.DEVNULL, preexec_fn=bound)
print(json.dumps({
    "rc": done.returncode,
    "out": done.stdout.decode("utf-8", "replace"),
    "err": done.stderr.decode("utf-8", "replace"),
    "peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
}))
"""


def run_bounded(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str, int]:
    """Run argv under RLIMIT_AS; (exit code, stdout, stderr, peak RSS in bytes)."""
    helper = subprocess.run(  # noqa: S603 - argv list
        [sys.executable, "-c", BOUNDED, str(LIMIT_AS), *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=True,
    )
    done = json.loads(helper.stdout)
    return done["rc"], done["out"], done["err"], done["peak"]


def _refused(what: str, result: tuple[int, str, str, int], *words: str) -> None:
    code, out, err, _ = result
    text = out + err
    assert "Traceback" not in text and "MemoryError" not in text, f"{what}: {text[-2000:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"{what}: exit {code}: {err[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("milepost: error: "), f"{what}: {err[-2000:]}"
    for word in words:
        assert word in lines[0], f"{what}: {lines[0]}"


HOSTS = """\
all:
  children:
    ruc:
      children:
        payment_gateway:
          vars:
            milepost_vendor: harbor_payments
          hosts:
            pay-01:
"""


def _bomb_cases(tmp: Path) -> list[tuple[str, list[str], tuple[str, ...]]]:
    """(what, milepost arguments, words of the refusal) for every place a bomb can hide."""
    bomb = hostile.alias_bomb()
    inventory_file = tmp / "bomb-inventory.yml"
    inventory_file.write_text("all:\n  vars:\n" + hostile.alias_bomb(indent=4) + HOSTS[5:])
    vendors = tmp / "bomb-vendors"
    (vendors / "group_vars" / "all").mkdir(parents=True)
    (vendors / "hosts.yml").write_text(HOSTS)
    (vendors / "group_vars" / "all" / "vendors.yml").write_text(
        bomb + "milepost_vendors:\n  harbor_payments:\n    name: *lol8\n"
    )
    notify = tmp / "bomb-notify"
    (notify / "group_vars" / "all").mkdir(parents=True)
    (notify / "hosts.yml").write_text(HOSTS)
    (notify / "group_vars" / "all" / "notify.yml").write_text(
        bomb + "milepost_notify:\n  audiences: *lol8\n"
    )
    beside = tmp / "bomb-beside"  # a file inventory whose group_vars sit next to it
    (beside / "group_vars").mkdir(parents=True)
    (beside / "hosts.yml").write_text(HOSTS)
    (beside / "group_vars" / "all.yml").write_text(bomb + "milepost_systems: *lol8\n")
    advisories = tmp / "bomb-advisories.yml"
    advisories.write_text(bomb + "advisories: *lol8\n")
    kev = tmp / "deep-kev.json"
    kev.write_text("[" * 1_000_000)
    return [
        ("inventory file", ["vendor", "list", "-i", str(inventory_file)], ("alias",)),
        ("maintain", ["maintain", "--check", "-i", str(inventory_file)], ("alias",)),
        ("vendor data", ["vendor", "list", "-i", str(vendors)], ("alias", "vendors.yml")),
        ("notice settings", ["notify", "upcoming", "--dry-run", "-i", str(notify)], ("alias",)),
        ("group_vars beside", ["exposure", "-i", str(beside / "hosts.yml")], ("alias",)),
        ("vendor advisories", ["advisory", "import", str(advisories)], ("aliases",)),
        ("KEV catalog", ["advisory", "import", str(kev), "--format", "kev"], ("not JSON",)),
        ("/dev/zero", ["vendor", "list", "-i", "/dev/zero"], ("not a regular file",)),
    ]


def test_pyyaml_shares_aliased_nodes() -> None:
    """Why the bomb is cheap to load and dear to use: safe_load builds each anchored node
    once (nine lists of nine), and only code that walks or copies the data expands it."""
    tracemalloc.start()
    try:
        data = yaml.safe_load(hostile.alias_bomb())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024**2
    assert data["lol8"][0] is data["lol8"][1] is data["lol7"]


def test_alias_bombs_are_refused_with_bounded_memory(tmp_path: Path) -> None:
    env = _env(tmp_path)
    cases = _bomb_cases(tmp_path)
    for what, args, words in cases:
        result = run_bounded([str(MILEPOST), *args], env, tmp_path)
        _refused(what, result, *words)
        assert result[3] < 512 * 1024**2, f"{what}: peak RSS {result[3] >> 20} MiB"
    tally(TALLY, len(cases))


def test_a_modest_anchor_is_still_fine(tmp_path: Path) -> None:
    """Anchors for reuse, as people write them, are not refused."""
    import shutil

    inventory = tmp_path / "example"
    shutil.copytree(ROOT / "inventory" / "example", inventory)
    vendors = inventory / "group_vars" / "all" / "vendors.yml"
    text = vendors.read_text()
    pci = "patch_days: {critical: 15, high: 15, medium: 60, low: 90}"
    usual = "patch_days: {critical: 30, high: 30, medium: 90, low: 180}"
    assert pci in text and text.count(usual) > 1
    vendors.write_text(
        text.replace(
            usual, "patch_days: &usual {critical: 30, high: 30, medium: 90, low: 180}", 1
        ).replace(usual, "patch_days: *usual")
    )
    code, out, err, _ = run_bounded(
        [str(MILEPOST), "vendor", "list", "--json", "-i", str(inventory)], _env(tmp_path), tmp_path
    )
    assert code == 0 and "Traceback" not in out + err, err[-2000:]
    listed = {vendor["key"]: vendor for vendor in json.loads(out)}
    assert listed["keystone_accounts"]["commitments"]["patch_days"]["low"] == 180


# ---------------------------------------------------------------- 100 MiB of output

PLAYBOOK = """\
- name: A task that prints a great deal
  hosts: all
  gather_facts: false
  tasks:
    - name: AUDIT | Print {size} bytes to standard output
      ansible.builtin.{module}: {command} {big}
      changed_when: false
    - name: AUDIT | Print {size} bytes to standard error and fail
      ansible.builtin.{module}: {error_command}
      changed_when: false
      ignore_errors: true
"""

#: Runs ansible-playbook and prints its exit code and its peak RSS (ru_maxrss of every
#: process it waited for, itself included) as JSON: a fresh process per measurement.
HELPER = """\
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": done.returncode, "peak": peak, "stderr": done.stderr.decode()[-3000:]}))
"""


def _big_file(path: Path, size: int) -> None:
    block = LINE * (1024 * 1024 // len(LINE))
    with path.open("w") as handle:
        written = 0
        while written < size:
            chunk = block[: size - written]
            handle.write(chunk)
            written += len(chunk)


def _playbook(tmp: Path, module: str, size: int) -> Path:
    big = tmp / "big.txt"
    if not big.exists():
        _big_file(big, size)
    if module == "raw":
        # raw: the command runs through the connection as it is, and Ansible reads its
        # output in one piece (the command module's reader takes minutes for 100 MiB).
        command, error_command = "head -c " + str(size), f"head -c {size} {big} >&2; exit 3"
    else:
        command = f"head -c {size}"
        error_command = (
            f"{sys.executable} -c \"import shutil, sys; shutil.copyfileobj(open('{big}'),"
            ' sys.stderr); sys.exit(3)"'
        )
    book = tmp / f"noisy-{module}.yml"
    book.write_text(
        PLAYBOOK.format(
            size=size, module=module, command=command, big=big, error_command=error_command
        )
    )
    return book


def _measure(tmp: Path, book: Path, *, ledger: bool, round_: int) -> dict[str, Any]:
    name = f"ledger-{round_}-{'on' if ledger else 'off'}.sqlite"
    env = {
        **_env(tmp),
        "MILEPOST_LEDGER_URL": f"sqlite:///{tmp / name}",
        "MILEPOST_RUN_KIND": "manual",
    }
    if not ledger:
        # A stdout callback named here is skipped (there is one already): the ledger's is
        # the only one callbacks_enabled would load, so nothing records the run.
        env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.builtin.oneline"
    inventory = tmp / "local.ini"
    inventory.write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    proc = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-c",
            HELPER,
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            str(book),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        check=True,
    )
    measured = json.loads(proc.stdout)
    measured["ledger"] = tmp / name
    assert measured["rc"] == 0, measured["stderr"]
    return measured


def _records(path: Path) -> list[tuple[str, str | None, str]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT kind, host, body FROM ledger_records ORDER BY seq"))


@pytest.mark.parametrize(
    "module",
    [
        "raw",
        pytest.param(
            "command",
            marks=pytest.mark.skipif(not FULL, reason="full mode only: it takes minutes"),
        ),
    ],
)
def test_100_mib_of_output_is_recorded_in_bounded_memory(tmp_path: Path, module: str) -> None:
    from milepost.ledger import Ledger

    book = _playbook(tmp_path, module, OUTPUT)
    rounds = trials(1, 3) if module == "raw" else 1
    with_ledger: list[dict[str, Any]] = []
    without: list[dict[str, Any]] = []
    for round_ in range(rounds):  # interleaved: machine noise hits both alike
        with_ledger.append(_measure(tmp_path, book, ledger=True, round_=round_))
        without.append(_measure(tmp_path, book, ledger=False, round_=round_))

    for run in without:
        assert not run["ledger"].exists() or not _records(run["ledger"]), "the ledger recorded"
    for run in with_ledger:
        records = _records(run["ledger"])
        kinds = [kind for kind, _, _ in records]
        assert kinds[0] == "run_started" and kinds[-1] == "run_ended", kinds
        noisy = [
            json.loads(body)
            for kind, _, body in records
            if kind == "task_result" and "bytes to standard" in body
        ]
        assert [r["status"] for r in noisy] == ["ok", "failed"], noisy
        assert len(noisy[1]["summary"]) <= 500 and LINE.strip() in noisy[1]["summary"]
        for kind, _, body in records:
            assert len(body) < MAX_RECORD, f"a {kind} record of {len(body)} bytes"
        assert run["ledger"].stat().st_size < 4 * 1024**2
        opened = Ledger.open(f"sqlite:///{run['ledger']}")
        try:
            verified = opened.verify()
        finally:
            opened.close()
        assert verified.ok, verified

    peak_on = max(run["peak"] for run in with_ledger)
    peak_off = max(run["peak"] for run in without)
    detail = (
        f"peak RSS with the ledger {[r['peak'] >> 20 for r in with_ledger]} MiB, without"
        f" {[r['peak'] >> 20 for r in without]} MiB (median"
        f" {statistics.median(r['peak'] for r in with_ledger) / 2**20:.0f} vs"
        f" {statistics.median(r['peak'] for r in without) / 2**20:.0f})"
    )
    print(detail)
    assert peak_on <= peak_off + MARGIN, detail
    tally(TALLY, 2 * rounds)


def test_a_failure_summary_of_100_mib_of_stderr_stays_small() -> None:
    """The ledger's one-line summary of a failed task (milepost.ansible.redaction) reads the last
    line of stderr without splitting 100 MiB into lines: its own peak stays near one copy
    of the text, and the summary is 500 characters."""
    from milepost.ansible.redaction import MAX_SUMMARY, Redactor

    redactor = Redactor()
    redactor.add_secrets(["hunter2-password"])
    stderr = LINE * (OUTPUT // len(LINE)) + "the last line names hunter2-password\n"
    tracemalloc.start()
    try:
        summary = redactor.summary(
            {"msg": "non-zero return code", "stderr": stderr}, status="failed", no_log=False
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary == "non-zero return code | the last line names ***"
    assert len(summary) <= MAX_SUMMARY
    # One stripped copy of the text; splitting it into lines took about three.
    assert peak < 1.5 * OUTPUT, f"{peak >> 20} MiB"
    tally(TALLY)
