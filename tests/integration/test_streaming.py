"""AWX / Automation Platform run jobs on execution nodes through ansible-runner's streaming
protocol: `ansible-runner transmit` packs the private data directory (project, inventory,
extra vars, environment), `ansible-runner worker` runs the playbook where the hosts are
reachable, `ansible-runner process` takes the events back. The maintenance cycle run that
way records in the ledger what the same cycle records when run locally."""

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml
from conftest import INVENTORY, ROOT, ansible_env
from test_maintain import records

BIN = Path(sys.executable).parent
#: What an AWX project holds of this repository for a job: the checkout's playbooks,
#: roles, plugins, QC checks and its ansible.cfg.
PROJECT = ("ansible.cfg", "playbooks", "roles", "plugins", "tests/qc")
HOST = "report-01"


def ledger_env(tmp_path: Path, name: str) -> dict[str, str]:
    return {
        "MILEPOST_LEDGER_URL": f"sqlite:///{tmp_path / name / 'ledger.sqlite'}",
        "MILEPOST_STATE_DIR": str(tmp_path / name / "state"),
    }


def local_run(tmp_path: Path) -> dict[str, str]:
    env = {**ansible_env(), **ledger_env(tmp_path, "local"), "MILEPOST_ROOT": str(ROOT)}
    proc = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(INVENTORY),
            "--limit",
            HOST,
            str(ROOT / "playbooks" / "maintain.yml"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return env


def private_data_dir(directory: Path, worker: Path, env: dict[str, str]) -> Path:
    """A private data directory as AWX prepares one: project/, inventory/, env/."""
    project = directory / "project"
    for name in PROJECT:
        source = ROOT / name
        target = project / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    shutil.copytree(INVENTORY.parent, directory / "inventory")
    (directory / "env").mkdir()
    # The worker runs in its own directory (as an execution node does): the job's
    # environment points the callback at the ledger and Milepost at the project there.
    # ansible-runner sets ANSIBLE_CALLBACK_PLUGINS to its own callback directory, which
    # replaces ansible.cfg's callback_plugins: the job adds the project's (the execution
    # environment sets it for /runner/project).
    project_dir = worker / "project"
    envvars = {
        **env,
        "MILEPOST_ROOT": str(project_dir),
        "ANSIBLE_CALLBACK_PLUGINS": str(project_dir / "plugins" / "callback"),
    }
    (directory / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    return directory


def streamed(data: Path, worker: Path, *args: str) -> subprocess.CompletedProcess:
    """maintain.yml through `ansible-runner transmit | worker | process`: what `process`
    printed (the job's output), and the worker's exit code (the playbook's) or else
    process's."""
    path = {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/root")}
    runner = str(BIN / "ansible-runner")
    transmit = subprocess.Popen(
        [runner, "transmit", str(data), "-p", "playbooks/maintain.yml", *args],
        stdout=subprocess.PIPE,
        env=path,
    )
    work = subprocess.Popen(
        [runner, "worker", "--private-data-dir", str(worker)],
        stdin=transmit.stdout,
        stdout=subprocess.PIPE,
        env=path,
    )
    assert transmit.stdout is not None
    transmit.stdout.close()
    processed = subprocess.run(
        [runner, "process", str(data)], stdin=work.stdout, capture_output=True, text=True, env=path
    )
    assert transmit.wait() == 0
    # The worker exits as the playbook did; process as the job's events say.
    worker_rc = work.wait()
    return subprocess.CompletedProcess(
        processed.args, worker_rc or processed.returncode, processed.stdout, processed.stderr
    )


def streamed_run(tmp_path: Path) -> dict[str, str]:
    env = {**ledger_env(tmp_path, "streamed")}
    worker = tmp_path / "worker"
    data = private_data_dir(tmp_path / "controller", worker, env)
    processed = streamed(data, worker, "--limit", HOST)
    assert processed.returncode == 0, processed.stdout[-3000:] + processed.stderr[-2000:]
    return {**ansible_env(), **env}


def shape(env: dict[str, str]) -> dict[str, object]:
    """What a run recorded, without what differs between two runs (ids, times)."""
    found = records(env, None)
    return {
        "kinds": Counter((r["kind"], r["host"]) for r in found),
        "tasks": Counter(
            (r["host"], r["body"].get("task"), r["body"].get("status"))
            for r in found
            if r["kind"] == "task_result"
        ),
        "changes": sorted(
            (r["host"], r["body"]["package"], r["body"]["from_version"], r["body"]["to_version"])
            for r in found
            if r["kind"] == "package_change"
        ),
        "status": [r["body"].get("status") for r in found if r["kind"] == "run_ended"],
    }


def test_the_cycle_through_transmit_worker_process_records_what_a_local_run_records(
    fresh_lab, tmp_path
):
    local = shape(local_run(tmp_path))
    reset = subprocess.run([str(ROOT / "scripts" / "lab"), "reset"], capture_output=True)
    assert reset.returncode == 0
    streamed_env = streamed_run(tmp_path)
    streamed = shape(streamed_env)
    assert streamed["status"] == ["successful"]
    assert streamed["changes"], "the streamed cycle changed nothing"
    assert streamed == local
    verify = subprocess.run(["milepost", "ledger", "verify"], env=streamed_env)
    assert verify.returncode == 0
