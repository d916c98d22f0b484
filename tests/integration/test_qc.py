"""milepost qc run against the lab: a stopped RUC service fails QC, is recorded per host and
check, and opens a glitch."""

import json
import subprocess

from conftest import ssh
from test_maintain import env_for, records

PAY_SERVICE = "/etc/init.d/ruc-payment-gateway"


def test_a_stopped_service_fails_qc_and_opens_a_glitch(lab_hosts, tmp_path):
    env = env_for(tmp_path)
    pay = next(h for h in lab_hosts if h["group"] == "payment_gateway")
    assert ssh(pay["port"], f"sudo {PAY_SERVICE} stop").returncode == 0
    try:
        proc = subprocess.run(
            ["milepost", "qc", "run", "--limit", pay["name"], "--json"],
            capture_output=True,
            text=True,
            env=env,
        )
    finally:
        assert ssh(pay["port"], f"sudo {PAY_SERVICE} start").returncode == 0
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "QC failed" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    shown = json.loads(proc.stdout)
    results = {
        r["body"]["check"]: r["body"]["status"]
        for r in records(env, "qc_result")
        if r["host"] == pay["name"] and r["run_id"] == shown["run_id"]
    }
    assert results["test_every_ruc_service_is_running"] == "failed"
    assert results["test_every_ruc_service_answers_its_health_check"] == "failed"
    assert results["test_every_ruc_configuration_file_is_valid"] == "passed"
    (glitch,) = records(env, "glitch")
    assert glitch["body"]["glitch_id"] == shown["glitch"]
    assert glitch["body"]["detected_by"] == "qc" and glitch["body"]["hosts"] == [pay["name"]]
    assert "test_every_ruc_service_is_running" in glitch["body"]["title"]
    runs = json.loads(
        subprocess.run(
            ["milepost", "ledger", "runs", "--kind", "qc", "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
    )
    assert [(r["run_id"], r["status"]) for r in runs] == [(shown["run_id"], "failed")]
    assert subprocess.run(["milepost", "ledger", "verify"], env=env).returncode == 0
