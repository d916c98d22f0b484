"""`milepost maintain` against the lab: the inventory is checked, the cycle runs through
milepost.ansible.runner, and the run is in the ledger."""

import json
import re
import shutil
import subprocess
import time

from conftest import INVENTORY, ROOT
from test_maintain import env_for

# Another run on the same lab (a maintenance lock, a host being reset) is worth a retry.
BUSY = re.compile(r"locked by maintenance run|UNREACHABLE|dpkg lock|Could not get lock")
ATTEMPTS = 5


def milepost(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["milepost", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200
    )


def run_until_not_busy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    for _attempt in range(ATTEMPTS):
        proc = milepost(env, *args)
        if proc.returncode == 0 or not BUSY.search(proc.stdout):
            break
        time.sleep(60)
    return proc


def test_maintain_then_check_mode_on_one_host_are_recorded_in_the_ledger(lab_hosts, tmp_path):
    env = env_for(tmp_path)
    args = ("maintain", "-i", str(INVENTORY), "--limit", "report-01")
    # A real run first: check mode cannot plan against a package source it has not
    # configured yet (the host may just have been reset).
    done = run_until_not_busy(env, *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    proc = run_until_not_busy(env, *args, "--check")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "PLAY RECAP" in proc.stdout  # the playbook's output streams through
    run_id = re.search(r"maintenance run (\S+) successful", proc.stdout).group(1)

    listed = milepost(env, "ledger", "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = {run["run_id"]: run for run in json.loads(listed.stdout)}
    assert len(runs) == 2
    run = runs[run_id]
    assert run["status"] == "successful"
    assert run["playbook"] == "playbooks/maintain.yml"
    assert run["check_mode"] is True
    assert run["limit"] == "report-01"
    assert set(run["hosts"]) - {"localhost"} == {"report-01"}
    assert milepost(env, "ledger", "verify").returncode == 0


def test_an_unknown_target_version_is_refused_before_any_host_is_touched(lab_hosts, tmp_path):
    env = env_for(tmp_path)
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY.parent, inventory)
    (inventory / "group_vars" / "payment_gateway.yml").write_text(
        'app_update_versions:\n  ruc-payment-gateway: "9.9.9"\n'
    )
    proc = milepost(env, "maintain", "-i", str(inventory / "hosts.yml"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "version 9.9.9 of ruc-payment-gateway (app_update_versions) is not in the" in proc.stderr
    assert "which has 2.3.0, 2.3.1, 2.4.0" in proc.stderr
    assert not (tmp_path / "ledger.sqlite").exists()  # nothing ran, nothing was recorded
