"""The safety invariants of docs/SAFETY.md, each on the lab, on the paths it applies to.

One converged pair of redundant hosts (payment_gateway: pay-01, pay-02) and one ledger are
shared by the module; every scenario then tries to make the fleet less safe and must be
refused or fail closed, with the hosts untouched and the ledger saying why.

1. Never less secure: a pin below the installed version, to a release an advisory says is
   vulnerable, is refused on maintain.yml and remediate.yml (plain ansible-playbook) and
   through `milepost drift remediate`, even when the downgrade is named; the dry run
   shows the refusal.
2. Never all at once: the two payment hosts are never in the same batch (maintain.yml
   here and through `milepost drift remediate`; the emergency patch in
   test_emergency_patch.py).
3. Fail closed: QC that cannot run fails the run.
4. No silent bypass: extra vars are in run_started; test-only variables are refused
   against a production inventory; a downgrade the run does not pin is refused (exit 2).
5. Controls where every path passes: a kill switch set from another controller's state
   directory, sharing the ledger, stops a plain ansible-playbook run before its batch.
(6 and 7, ledger data as untrusted input and the hardening, are tested without the lab:
tests/unit/ledger/test_bodies.py, tests/unit/test_hardening.py.)
"""

import json
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import INVENTORY, ROOT, ssh
from test_maintain import env_for, records
from test_streaming import private_data_dir, streamed

PAY = ("pay-01", "pay-02")
PACKAGE = "ruc-payment-gateway"
FIXED = "2.4.0"
VULNERABLE = "2.3.0"
ADVISORY = "ADV-PAY-2026-1"
PLAYBOOKS = ROOT / "playbooks"
EXAMPLE = ROOT / "inventory" / "example"


def playbook(env, name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", str(INVENTORY), str(PLAYBOOKS / name), *args],
        capture_output=True,
        text=True,
        env=env,
    )


def milepost(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["milepost", *args], capture_output=True, text=True, env=env)


def versions(lab_hosts) -> dict[str, str]:
    found = {}
    for host in lab_hosts:
        if host["name"] in PAY:
            proc = ssh(host["port"], f"dpkg-query -W -f='${{Version}}' {PACKAGE}")
            assert proc.returncode == 0, proc.stderr
            found[host["name"]] = proc.stdout.strip()
    return found


def run_of(env, proc) -> str:
    """The run id of the newest run_started record (the run just made; one ledger read)."""
    return records(env, "run_started")[-1]["run_id"]


def unlock(lab_hosts) -> None:
    """Remove the host locks that runs of other ledgers (or refused runs) left."""
    for host in lab_hosts:
        if host["name"] in PAY:
            proc = ssh(host["port"], "sudo rm -f /var/lib/milepost/maintenance.lock")
            assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def shared(lab_hosts, tmp_path_factory) -> Iterator[dict]:
    """The payment hosts converged (at the fixed release) by a plain ansible-playbook
    run, recorded in a ledger of this module, with an extra var and a secret one."""
    unlock(lab_hosts)
    env = env_for(tmp_path_factory.mktemp("safety"))
    proc = playbook(
        env,
        "maintain.yml",
        "--limit",
        "payment_gateway",
        "-e",
        "milepost_change_ticket=CHG-77",
        "-e",
        "vendor_api_token=canary-s3cret-value",
        "-e",
        "change_window_note=ordinary-canary",
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert versions(lab_hosts) == dict.fromkeys(PAY, FIXED)
    added = milepost(
        env,
        "advisory",
        "add",
        "--id",
        ADVISORY,
        "--package",
        f"{PACKAGE}={FIXED}",
        "--severity",
        "critical",
        "--title",
        "Payment gateway flaw fixed in 2.4.0",
    )
    assert added.returncode == 0, added.stderr
    yield {"env": env, "run_id": records(env, "run_started")[0]["run_id"]}
    unlock(lab_hosts)


# ---------------------------------------------------------------- 2. never all at once


def test_two_redundant_hosts_are_never_in_the_same_batch(shared):
    batches = [
        r["body"]
        for r in records(shared["env"], "batch_started")
        if r["run_id"] == shared["run_id"]
    ]
    assert batches, "the run recorded no batch"
    for batch in batches:
        assert not set(PAY) <= set(batch["hosts"]), batch
    patching = [b for b in batches if b["play"].startswith("Patch the OS")]
    assert [b["number"] for b in patching] == [1, 2]


def test_a_remediation_takes_the_two_payment_hosts_in_different_batches(shared):
    env = shared["env"]
    proc = milepost(env, "drift", "remediate", "--full", "--limit", "payment_gateway")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    run = run_of(env, proc)
    batches = [
        r["body"]
        for r in records(env, "batch_started")
        if r["run_id"] == run and r["body"]["play"].startswith("Correct the drift")
    ]
    assert [(b["number"], b["hosts"]) for b in batches] == [(1, ["pay-01"]), (2, ["pay-02"])]


# ---------------------------------------------------------------- 4. no silent bypass


def test_every_extra_var_is_in_run_started_and_secrets_are_masked(shared):
    started = next(
        r for r in records(shared["env"], "run_started") if r["run_id"] == shared["run_id"]
    )
    extra = started["body"]["extra_vars"]
    assert extra["milepost_change_ticket"] == "CHG-77"
    assert extra["vendor_api_token"] == "********"
    assert extra["change_window_note"] == "(value not recorded)"
    assert "canary-s3cret-value" not in json.dumps(started)
    assert "ordinary-canary" not in json.dumps(started)


# ---------------------------------------------------------------- 1. never less secure


DOWNGRADE = json.dumps({"app_update_versions": {PACKAGE: VULNERABLE}})
NAMED = json.dumps({"milepost_allow_downgrade": [PACKAGE]})


@pytest.mark.parametrize("check", [True, False], ids=["dry-run", "run"])
def test_maintain_refuses_a_pin_to_a_vulnerable_release_even_when_named(shared, lab_hosts, check):
    args = ["--limit", "payment_gateway", "-e", DOWNGRADE, "-e", NAMED]
    proc = playbook(shared["env"], "maintain.yml", *args, *(["--check"] if check else []))
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert f"{VULNERABLE} is vulnerable to advisory {ADVISORY}" in proc.stdout
    assert versions(lab_hosts) == dict.fromkeys(PAY, FIXED)
    run = run_of(shared["env"], proc)
    failed = [
        r
        for r in records(shared["env"], "task_result")
        if r["run_id"] == run and r["body"]["status"] == "failed"
    ]
    assert failed and all(ADVISORY in r["body"]["summary"] for r in failed), failed
    # Only the canary was tried: the run stopped before the second payment host.
    assert {r["host"] for r in failed} == {"pay-01"}


def test_remediation_refuses_the_downgrade_on_every_path(shared, lab_hosts):
    pins = json.dumps({"baseline_package_pins": {PACKAGE: VULNERABLE}})
    for extra in ([], ["--check"]):
        proc = playbook(
            shared["env"], "remediate.yml", "--limit", "payment_gateway", "-e", pins, *extra
        )
        assert proc.returncode == 2, proc.stdout[-3000:]
        assert "would downgrade the installed" in proc.stdout
        assert f"vulnerable to advisory {ADVISORY}" in proc.stdout
    assert versions(lab_hosts) == dict.fromkeys(PAY, FIXED)


@pytest.fixture(scope="module")
def low_pin(shared, tmp_path_factory) -> Path:
    """The lab inventory with the payment gateway pinned below the installed, fixed
    release: the scenario of a pin set lower by mistake."""
    copy = tmp_path_factory.mktemp("low-pin") / "inventory"
    shutil.copytree(INVENTORY.parent, copy)
    pins = copy / "group_vars" / "payment_gateway.yml"
    pins.write_text(pins.read_text().replace(f'{PACKAGE}: "{FIXED}"', f'{PACKAGE}: "{VULNERABLE}"'))
    assert VULNERABLE in pins.read_text()
    return copy / "hosts.yml"


def test_milepost_maintain_and_remediate_refuse_the_low_pin_and_their_dry_runs_show_it(
    shared, low_pin, lab_hosts
):
    env, inventory = shared["env"], str(low_pin)
    runs = [
        ["maintain", "-i", inventory, "--limit", "payment_gateway", "--check"],
        ["maintain", "-i", inventory, "--limit", "payment_gateway"],
        [
            "drift",
            "remediate",
            "--full",
            "-i",
            inventory,
            "--limit",
            "payment_gateway",
            "--dry-run",
        ],
        ["drift", "remediate", "--full", "-i", inventory, "--limit", "payment_gateway"],
    ]
    for args in runs:
        proc = milepost(env, *args)
        assert proc.returncode == 1, (args, proc.stdout[-3000:], proc.stderr)
        assert f"vulnerable to advisory {ADVISORY}" in proc.stdout, args
        assert versions(lab_hosts) == dict.fromkeys(PAY, FIXED), args


def test_a_streamed_job_as_awx_runs_it_refuses_the_low_pin(shared, low_pin, lab_hosts, tmp_path):
    env = {k: v for k, v in shared["env"].items() if k.startswith("MILEPOST_LEDGER")}
    env["MILEPOST_STATE_DIR"] = str(tmp_path / "worker-state")
    data = private_data_dir(tmp_path / "controller", tmp_path / "worker", env)
    shutil.rmtree(data / "inventory")
    shutil.copytree(low_pin.parent, data / "inventory")
    processed = streamed(data, tmp_path / "worker", "--limit", "payment_gateway")
    assert processed.returncode != 0
    assert f"vulnerable to advisory {ADVISORY}" in processed.stdout
    assert versions(lab_hosts) == dict.fromkeys(PAY, FIXED)


# ---------------------------------------------------------------- 3. fail closed


def test_qc_that_cannot_run_fails_the_run(shared, lab_hosts):
    env = {**shared["env"], "PYTEST_ADDOPTS": "--no-such-pytest-option"}
    proc = playbook(env, "maintain.yml", "--limit", "pay-01")
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert "QC could not run on pay-01" in proc.stdout
    run = run_of(env, proc)
    ended = [r for r in records(env, "run_ended") if r["run_id"] == run]
    assert ended[0]["body"]["status"] == "failed"


# ---------------------------------------------------------------- 5. every path


def batches_started(env) -> list[int]:
    """The batch numbers the ledger holds so far (read straight from the SQLite file, fast
    enough to poll while a run goes on)."""
    database = env["MILEPOST_LEDGER_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT body FROM ledger_records WHERE kind = 'batch_started'")
        return [json.loads(body)["number"] for (body,) in rows]


def test_a_kill_switch_from_another_controller_stops_a_plain_run_before_its_next_batch(
    shared, tmp_path, lab_hosts
):
    env = shared["env"]
    # The canary has real work to do (an update, a restart, the health gate), so the
    # switch is set while its batch runs.
    as_root(lab_hosts, "pay-01", f"apt-get install -y -q --allow-downgrades {PACKAGE}={VULNERABLE}")
    seen = len(batches_started(env))
    run = subprocess.Popen(
        ["ansible-playbook", "-i", str(INVENTORY), str(PLAYBOOKS / "maintain.yml"),
         "--limit", "payment_gateway"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    other = {**env, "MILEPOST_STATE_DIR": str(tmp_path / "other-controller")}
    try:
        for _ in range(1200):
            if len(batches_started(env)) > seen or run.poll() is not None:
                break
            time.sleep(0.1)
        stopped = milepost(other, "stop", "--reason", "payment processor incident")
        assert stopped.returncode == 0, stopped.stderr
        assert "the ledger" in stopped.stdout
        out, _ = run.communicate(timeout=900)
    finally:
        cleared = milepost(other, "stop", "--clear")
        assert cleared.returncode == 0, cleared.stderr
    assert run.returncode == 2, out[-3000:]
    assert "Kill switch set in the ledger" in out and "payment processor incident" in out
    # The canary's batch finished (pay-01 updated); the next batch never started.
    assert batches_started(env)[seen:] == [1]
    assert versions(lab_hosts) == dict.fromkeys(PAY, FIXED)
    run_id = run_of(env, run)
    changes = [r["host"] for r in records(env, "package_change") if r["run_id"] == run_id]
    assert set(changes) == {"pay-01"}
    states = [r["body"]["state"] for r in records(env, "kill_switch")]
    assert states[-2:] == ["set", "cleared"]


def as_root(lab_hosts, name: str, command: str) -> None:
    port = next(h["port"] for h in lab_hosts if h["name"] == name)
    proc = ssh(port, f"sudo sh -c {json.dumps(command)}")
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- bad input


def test_test_only_variables_are_refused_against_a_production_inventory(shared):
    env = shared["env"]
    proc = milepost(env, "maintain", "-i", str(EXAMPLE), "-e", "preflight_window_now=2026-01-01")
    assert proc.returncode == 2, proc.stderr
    assert "are for tests" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    plain = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(EXAMPLE),
            str(PLAYBOOKS / "maintain.yml"),
            "-e",
            "preflight_lock_path=/tmp/elsewhere.lock",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert plain.returncode == 2, plain.stdout[-3000:]
    assert "are for tests" in plain.stdout


def test_a_downgrade_the_run_does_not_pin_is_refused(shared):
    proc = milepost(shared["env"], "maintain", "--allow-downgrade", "openssl")
    assert proc.returncode == 2, proc.stderr
    assert "not a package this run pins" in proc.stderr
    bad = milepost(shared["env"], "maintain", "--allow-downgrade", "Not A Package")
    assert bad.returncode == 2 and "not a Debian package name" in bad.stderr


def test_the_safety_document_lists_each_invariant():
    text = (ROOT / "docs" / "SAFETY.md").read_text()
    for title in ("Never less secure", "Never all at once", "Fail closed", "No silent bypass"):
        assert title in text
    assert Path(__file__).name in text
