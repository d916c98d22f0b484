"""milepost.ansible.runner: playbooks run through ansible-runner are recorded in the ledger, leave
nothing on disk, and a Ctrl-C or SIGTERM closes the run as aborted."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from milepost.ansible import runner

ROOT = Path(__file__).resolve().parents[3]
CANARY_EXTRA = "CanaryExtra-5d1f0b7a"
CANARY_ENV = "CanaryEnv-93c2e8d4"

PLAYBOOK = """\
- name: Say hello on the controller
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: AUDIT | Say hello
      ansible.builtin.debug:
        msg: "hello {{ greeting | default('nobody') }}"
    - name: AUDIT | Wait a while
      ansible.builtin.command: sleep {{ nap | default(0) }}
      changed_when: false
    - name: AUDIT | Fail when asked to
      ansible.builtin.fail:
        msg: asked to fail
      when: (fail_now | default('no')) == 'yes'
"""

INVENTORY = """\
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""


@pytest.fixture
def local(tmp_path: Path) -> dict[str, Path]:
    playbook = tmp_path / "hello.yml"
    playbook.write_text(PLAYBOOK)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(INVENTORY)
    return {"playbook": playbook, "inventory": inventory}


def ledger_env(tmp_path: Path) -> dict[str, str]:
    return {
        "MILEPOST_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "MILEPOST_STATE_DIR": str(tmp_path / "state"),
        "MILEPOST_ROOT": str(ROOT),
    }


def ledger_runs(tmp_path: Path) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "milepost.cli.main", "ledger", "runs", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **ledger_env(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_run_is_recorded_by_the_ledger_callback(local, tmp_path):
    result = runner.run_playbook(
        local["playbook"],
        inventory=[local["inventory"]],
        extravars={"greeting": "world"},
        env=ledger_env(tmp_path),
        quiet=True,
    )
    assert result.succeeded, result
    assert (result.status, result.rc, result.interrupted_by) == ("successful", 0, None)
    runs = ledger_runs(tmp_path)
    assert [r["run_id"] for r in runs] == [result.run_id]
    assert runs[0]["status"] == "successful"
    assert runs[0]["playbook"] == str(local["playbook"])
    assert runs[0]["hosts"]["localhost"]["ok"] >= 2


def test_a_failed_run_is_failed_in_the_result_and_the_ledger(local, tmp_path):
    result = runner.run_playbook(
        local["playbook"],
        inventory=[local["inventory"]],
        extravars={"fail_now": "yes"},
        env=ledger_env(tmp_path),
        quiet=True,
    )
    assert not result.succeeded
    assert result.status == "failed" and result.rc != 0
    assert [r["status"] for r in ledger_runs(tmp_path)] == ["failed"]


def test_check_mode_and_limit_reach_the_playbook(local, tmp_path):
    result = runner.run_playbook(
        local["playbook"],
        inventory=[local["inventory"]],
        limit="localhost",
        check=True,
        diff=True,
        env=ledger_env(tmp_path),
        quiet=True,
    )
    assert result.succeeded, result
    (run,) = ledger_runs(tmp_path)
    assert run["check_mode"] is True
    assert run["limit"] == "localhost"


def test_the_private_data_dir_holds_no_env_files_or_secrets_and_is_removed(
    local, tmp_path, monkeypatch
):
    seen: dict[str, object] = {}
    discard = runner._discard

    def inspect_then_discard(private_dir: Path) -> None:
        files = {p.relative_to(private_dir).as_posix(): p for p in private_dir.rglob("*")}
        seen["dir"] = private_dir
        seen["mode"] = private_dir.stat().st_mode & 0o777
        seen["files"] = sorted(files)
        texts = {n: p.read_text(errors="replace") for n, p in files.items() if p.is_file()}
        seen["with_canary"] = [
            name for name, text in texts.items() if CANARY_EXTRA in text or CANARY_ENV in text
        ]
        discard(private_dir)

    monkeypatch.setattr(runner, "_discard", inspect_then_discard)
    result = runner.run_playbook(
        local["playbook"],
        inventory=[local["inventory"]],
        extravars={"greeting": "world", "db_password": CANARY_EXTRA},
        env={**ledger_env(tmp_path), "MILEPOST_TEST_SECRET": CANARY_ENV},
        quiet=True,
    )
    assert result.succeeded, result
    assert seen["mode"] == 0o700
    files = seen["files"]
    assert files, "the runner wrote nothing at all: was it run?"
    assert not any(name == "env" or name.startswith("env/") for name in files), files
    assert not any(name.endswith("/command") for name in files), files
    assert not any("job_events/" in name for name in files), files
    assert seen["with_canary"] == []
    assert not Path(seen["dir"]).exists()


def test_the_environment_keeps_the_project_callback_and_host_key_checking(tmp_path):
    base = {
        "PATH": "/usr/bin:/bin",
        "MILEPOST_LEDGER_URL": "sqlite:///x.sqlite",
        "MILEPOST_OPERATOR": "dana",
        "ANSIBLE_CALLBACK_PLUGINS": "/opt/callbacks",
        "HOME": "/root",
    }
    env = runner.playbook_env(ROOT, "20260101T000000Z-abcdef01", base)
    assert env["ANSIBLE_CONFIG"] == str(ROOT / "ansible.cfg")
    assert env["ANSIBLE_CALLBACK_PLUGINS"] == f"{ROOT}/plugins/callback:/opt/callbacks"
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["MILEPOST_RUN_ID"] == "20260101T000000Z-abcdef01"
    assert env["MILEPOST_LEDGER_URL"] == "sqlite:///x.sqlite"
    assert env["MILEPOST_OPERATOR"] == "dana"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert "HOME" not in env


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


SCRIPT = """\
import sys
from pathlib import Path
from milepost.ansible.runner import run_playbook

result = run_playbook(
    Path(sys.argv[1]), inventory=[Path(sys.argv[2])], extravars={"nap": "120"}, quiet=True
)
print(result.status, result.interrupted_by, result.run_id)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_is_passed_on_and_the_run_closed_as_aborted(local, tmp_path, signum):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(local["playbook"]), str(local["inventory"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ledger_env(tmp_path)},
        cwd=tmp_path,
    )
    try:
        # The sleep task is running once the ledger holds the first task result.
        wait_for(lambda: (tmp_path / "ledger.sqlite").exists() and ledger_runs(tmp_path))
        wait_for(lambda: ledger_runs(tmp_path)[0]["hosts"].get("localhost", {}).get("ok"))
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    status, interrupted_by, run_id = out.split()[-3:]
    assert interrupted_by == str(int(signum)), err
    (run,) = ledger_runs(tmp_path)
    assert run["run_id"] == run_id
    assert run["status"] == "aborted"
    if signum == signal.SIGTERM:
        assert run["reason"] == "terminated by SIGTERM"


HELD_SCRIPT = """\
import os
import signal
import sys
from pathlib import Path
from milepost.ansible.runner import run_playbook, signals_held

with signals_held() as interrupts:
    os.kill(os.getpid(), signal.SIGTERM)  # as if it came while the caller recorded its start
    print("still here", flush=True)
    result = run_playbook(Path(sys.argv[1]), inventory=[Path(sys.argv[2])], quiet=True,
                          interrupts=interrupts)
print(result.status, result.interrupted_by, result.started, result.run_id)
"""


def test_a_signal_caught_before_the_playbook_means_it_never_starts(local, tmp_path):
    """Between signals_held() and run_playbook (the emergency patch records its start and
    sends its notice there), SIGTERM does not end the process: run_playbook then does not
    start the playbook and reports the run interrupted before it began."""
    script = tmp_path / "held.py"
    script.write_text(HELD_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(local["playbook"]), str(local["inventory"])],
        capture_output=True,
        text=True,
        env={**os.environ, **ledger_env(tmp_path)},
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "still here"
    status, interrupted_by, started, run_id = lines[-1].split()
    assert (status, interrupted_by, started) == ("canceled", str(int(signal.SIGTERM)), "False")
    assert not (tmp_path / "ledger.sqlite").exists() or ledger_runs(tmp_path) == []
    message = str(runner.Interrupted(runner.RunResult("canceled", 254, run_id, 15, False)))
    assert message == f"interrupted by SIGTERM before run {run_id} began: no task ran"


SLEEPING_PYTHON = """\
#!/bin/sh
touch {marker}
exec sleep 120
"""


def test_sigterm_of_milepost_maintain_closes_the_run_as_aborted(tmp_path):
    """A RUC host whose Python hangs (connection local, no become: nothing is changed)
    keeps preflight waiting; SIGTERM then closes the run as aborted in the ledger."""
    marker = tmp_path / "python-started"
    python = tmp_path / "hanging-python"
    python.write_text(SLEEPING_PYTHON.format(marker=marker))
    python.chmod(0o755)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        textwrap.dedent(
            f"""\
            all:
              children:
                ruc:
                  children:
                    reporting:
                      vars:
                        milepost_vendor: ledgerline_analytics
                      hosts:
                        hang-01:
                          ansible_connection: local
                          ansible_become: false
                          ansible_python_interpreter: {python}
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "milepost.cli.main", "maintain", "-i", str(inventory), "--check"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ledger_env(tmp_path), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        cwd=ROOT,
    )
    try:
        wait_for(marker.exists, timeout=120)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:] + err
    assert err.strip().splitlines()[-1].startswith("milepost: interrupted by SIGTERM: run ")
    (run,) = ledger_runs(tmp_path)
    assert run["playbook"] == "playbooks/maintain.yml"
    assert (run["status"], run["reason"]) == ("aborted", "terminated by SIGTERM")
