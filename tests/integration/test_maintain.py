"""playbooks/maintain.yml against the lab: the whole cycle, recorded in the ledger."""

import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from conftest import INVENTORY, LAB, ROOT, ansible_env, lab_status
from lab_fleet import os_start, upgrades

sys.path.insert(0, str(ROOT / "tests"))
from browser import DashboardDom, chromium  # noqa: E402
from notice_servers import PROXY_VARIABLES, Collector, smtp_server, webhook_server  # noqa: E402

from milepost.lab import ruc_packages

MAINTAIN = ROOT / "playbooks" / "maintain.yml"
QC_CHECKS = {
    "test_every_ruc_package_is_at_its_pinned_version",
    "test_every_ruc_configuration_file_is_valid",
    "test_every_ruc_service_is_running",
    "test_every_ruc_service_answers_its_health_check",
}


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        **ansible_env(),
        "MILEPOST_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "MILEPOST_STATE_DIR": str(tmp_path / "state"),
        "MILEPOST_ROOT": str(ROOT),
    }


def maintain(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", str(INVENTORY), str(MAINTAIN), *args],
        capture_output=True,
        text=True,
        env=env,
    )


def ledger_json(env: dict[str, str], *args: str):
    proc = subprocess.run(
        ["milepost", "ledger", *args, "--json"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def records(env: dict[str, str], kind: str | None) -> list[dict]:
    """The ledger's records of ``kind`` (None: every record), in seq order."""
    proc = subprocess.run(
        ["milepost", "ledger", "export", "--format", "jsonl"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    found = [json.loads(line) for line in proc.stdout.splitlines()]
    return [r for r in found if kind is None or r["kind"] == kind]


def installed_versions() -> dict[str, dict[str, str]]:
    return {row["name"]: row["versions"] for row in lab_status()}


NOTIFY = """\
milepost_notify:
  contact: RUC Operations, ops@ruc.example.gov
  from: RUC Operations <ruc-ops@ruc.example.gov>
  smtp: {{host: 127.0.0.1, port: {port}, attempts: 2, retry_delay_seconds: 0}}
  webhook: {{attempts: 2, retry_delay_seconds: 0}}
  audiences:
    communications:
      email: [communications@ruc.example.gov]
      webhook: {hook}
    customer_service:
      email: [cs-leads@ruc.example.gov]
  notices:
    upcoming: [communications, customer_service]
    completed: [communications, customer_service]
"""


@dataclass
class Cycle:
    """One maintenance cycle of the reset lab by `milepost maintain`, notices configured."""

    env: dict[str, str]
    inventory: Path
    proc: subprocess.CompletedProcess
    mail: Collector
    hooks: list[dict]


@pytest.fixture(scope="module")
def first_cycle(lab_hosts, tmp_path_factory) -> Iterator[Cycle]:
    """The lab reset, then `milepost maintain` with notices going to a real SMTP server and
    a webhook receiver on 127.0.0.1 (the lab inventory copied, with milepost_notify)."""
    reset = subprocess.run([str(LAB), "reset"], capture_output=True, text=True)
    assert reset.returncode == 0, reset.stderr
    tmp_path = tmp_path_factory.mktemp("first-cycle")
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY.parent, inventory)
    env = {k: v for k, v in env_for(tmp_path).items() if k not in PROXY_VARIABLES}
    hosts = str(inventory / "hosts.yml")
    # As `make demo`: what each host has installed (a dry run), then Debian's advisories.
    for argv in (["maintain", "--check", "-i", hosts], ["advisory", "sync", "-i", hosts]):
        done = subprocess.run(["milepost", *argv], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with smtp_server() as mail, webhook_server() as hooks:
        (inventory / "group_vars" / "all" / "notify.yml").write_text(
            NOTIFY.format(port=mail.port, hook=f"{hooks.base_url}/hooks/comms")
        )
        proc = subprocess.run(
            ["milepost", "maintain", "-i", hosts],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        yield Cycle(env, inventory / "hosts.yml", proc, mail, hooks.received)


def test_the_cycle_updates_every_host_and_records_each_change(first_cycle, lab_hosts):
    env = first_cycle.env
    assert first_cycle.proc.returncode == 0, first_cycle.proc.stdout[-3000:]
    for host in lab_hosts:
        package = ruc_packages.package_for_group(host["group"])
        assert installed_versions()[host["name"]] == {package.name: package.latest.version}
    all_changes = {
        (r["host"], r["body"]["package"], r["body"]["from_version"], r["body"]["to_version"])
        for r in records(env, "package_change")
    }
    changes = {c for c in all_changes if c[1].startswith("ruc-")}
    expected = set()
    for host in lab_hosts:
        package = ruc_packages.package_for_group(host["group"])
        expected.add((host["name"], package.name, package.initial.version, package.latest.version))
    assert changes == expected
    # os_patch ran first: Debian's real updates the lab offers each host (those the lab
    # started behind), each host's from/to versions recorded.
    os_changes = all_changes - changes
    expected_os = {
        (host["name"], package, start[package], version)
        for host in lab_hosts
        for start in [os_start(host, lab_hosts)]
        for package, version in upgrades(start).items()
    }
    assert expected_os, "the lab started no host behind Debian's updates"
    assert os_changes == expected_os
    assert "before" in first_cycle.proc.stdout and "current" in first_cycle.proc.stdout
    # Quality control ran at the end of the cycle: every check passed on every host,
    # recorded under the cycle's run.
    (run_id,) = {r["run_id"] for r in records(env, "package_change")}
    qc = [r for r in records(env, "qc_result") if r["run_id"] == run_id]
    assert {r["host"] for r in qc} == {h["name"] for h in lab_hosts}
    assert {r["body"]["check"] for r in qc} == QC_CHECKS
    assert all(r["body"]["status"] == "passed" for r in qc), qc


def test_staff_are_told_before_the_cycle_and_after_it_what_changed(first_cycle, lab_hosts):
    env, mail = first_cycle.env, first_cycle.mail
    (run_id,) = {r["run_id"] for r in records(env, "package_change")}
    subjects = [mail.subject(i) for i in range(len(mail.messages))]
    # Two notices, each to both audiences by e-mail (and to communications' webhook).
    assert len(mail.messages) == 4, subjects
    recipients = [tuple(m["to"]) for m in mail.messages]
    assert sorted(recipients) == sorted(
        [("communications@ruc.example.gov",), ("cs-leads@ruc.example.gov",)] * 2
    )
    # The upcoming notice went out before the run, the completed one after it.
    completed = [2, 3]
    text = mail.text(completed[0])
    words = yaml.safe_load((ROOT / "inventory/lab/group_vars/all/systems.yml").read_text())
    for system in words["milepost_systems"].values():
        # Every lab system changed: named in plain words, with what customers may notice.
        assert system["name"] in text
        assert " ".join(system["impact"].split()) in " ".join(text.split())
    main_text = text.split("\n--\n")[0]
    assert not any(host["name"] in main_text for host in lab_hosts), main_text
    assert run_id in text  # the engineers' footer names the run
    assert [h["json"]["notice"] for h in first_cycle.hooks] == ["upcoming", "completed"]
    # Every delivery is in the ledger: audience, recipients, subject, the body's hash.
    notices = records(env, "notice")
    assert [(n["body"]["notice"], n["body"]["channel"]) for n in notices] == [
        ("upcoming", "email"),
        ("upcoming", "webhook"),
        ("upcoming", "email"),
        ("completed", "email"),
        ("completed", "webhook"),
        ("completed", "email"),
    ]
    assert all(n["body"]["result"] == "sent" and n["run_id"] == run_id for n in notices)
    sent = {(n["body"]["subject"], n["body"]["body_sha256"]) for n in notices}
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert (mail.subject(completed[0]), digest) in sent


def test_the_dashboard_shows_every_lab_system_and_its_last_maintenance(
    first_cycle, lab_hosts, tmp_path
):
    out = tmp_path / "dashboard"
    proc = subprocess.run(
        ["milepost", "report", "dashboard", "--out", str(out), "-i", str(first_cycle.inventory)],
        capture_output=True,
        text=True,
        env=first_cycle.env,
    )
    assert proc.returncode == 0, proc.stderr
    index = out / "index.html"
    dom = DashboardDom()
    dom.feed(chromium(tmp_path, "--dump-dom", index.as_uri()).stdout)
    words = yaml.safe_load((ROOT / "inventory/lab/group_vars/all/systems.yml").read_text())
    today = datetime.now(UTC)
    for key, system in words["milepost_systems"].items():
        row = dom.rows[f"data-system={key}"]
        text = " ".join(row["text"].split())
        assert system["name"] in text
        assert row["attrs"]["data-status"] == "normal", text
        assert f"{today.day} {today:%B %Y}" in text and "Completed successfully" in text, text
        assert "Window open now" in text, text  # the lab's window (group_vars/all/windows.yml)
    # The vendor interfaces the lab serves (HTTPS through the lab CA, SFTP), checked by the
    # cycle, each with its certificate days.
    interfaces = {k.split("=", 1)[1]: " ".join(v["text"].split())
                  for k, v in dom.rows.items() if k.startswith("data-interface=")}  # fmt: skip
    assert {*topology_apis(), "file-exchange"} <= set(interfaces), interfaces
    assert all("Up" in text for text in interfaces.values()), interfaces
    assert all("days left" in interfaces[name] for name in topology_apis()), interfaces
    # Debian's real security updates the cycle installed, with the CVE ids they fix.
    updates = [" ".join(v["text"].split()) for k, v in dom.rows.items()
               if k.startswith("data-update=DEB-")]  # fmt: skip
    installed = [text for text in updates if "Installed on" in text and "CVE-" in text]
    assert installed, updates
    shot = tmp_path / "dashboard.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", index.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def topology_apis() -> list[str]:
    from milepost.lab.topology import VENDOR_APIS

    return [name for name, _version in VENDOR_APIS.values()]


def test_a_rerun_changes_nothing_and_a_plain_playbook_run_sends_the_notices_too(first_cycle):
    env = first_cycle.env
    changes = len(records(env, "package_change"))
    second = subprocess.run(
        ["ansible-playbook", "-i", str(first_cycle.inventory), str(MAINTAIN)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert second.returncode == 0, second.stdout[-3000:]
    runs = ledger_json(env, "runs")
    # The dry run before the cycle (as `make demo`), the cycle, this one.
    assert [r["status"] for r in runs] == ["successful"] * 3
    newest = runs[0]
    assert sum(c["changed"] for c in newest["hosts"].values()) == 0
    assert len(records(env, "package_change")) == changes
    # The notices come from the playbook and its callback, not from `milepost maintain`:
    # ansible-playbook alone sends them too (docs/SAFETY.md, invariant 5).
    # The lab's window is open all day: this run falls in the opening the cycle already
    # announced, and an opening is announced to an audience once; the completed notice
    # goes out again.
    assert len(first_cycle.mail.messages) == 6
    ours = [n for n in records(env, "notice") if n["run_id"] == newest["run_id"]]
    sent = [n["body"]["notice"] for n in ours if n["body"].get("result") == "sent"]
    assert sent == ["completed"] * 3
    assert subprocess.run(["milepost", "ledger", "verify"], env=env).returncode == 0


def test_a_cycle_with_nothing_to_do_costs_each_host_few_results_and_module_runs(first_cycle):
    """The probe decides: a no-op cycle is at most 12 task results per host in the ledger,
    at most 6 of them a module run on the host; the probe before and after is recorded."""
    env = first_cycle.env
    noop = subprocess.run(
        ["milepost", "maintain", "-i", str(first_cycle.inventory)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert noop.returncode == 0, noop.stdout[-3000:]
    run_id = ledger_json(env, "runs")[0]["run_id"]
    results = [
        r for r in records(env, "task_result") if r["run_id"] == run_id and r["host"] != "localhost"
    ]
    per_host = Counter(r["host"] for r in results)
    on_host = Counter(r["host"] for r in results if r["body"].get("runs_on") == "host")
    assert len(per_host) == 6 and max(per_host.values()) <= 12, per_host
    assert max(on_host.values()) <= 6, on_host
    assert not any(r["body"]["status"] == "changed" for r in results)
    skipped = {r["body"]["task"] for r in results if r["body"]["status"] == "skipped"}
    assert "os_patch : PATCH | Apply the operating-system updates the host needs" in skipped
    assert "app_update : PATCH | Bring the RUC packages to their pinned versions" in skipped
    probes = [r for r in records(env, "host_probe") if r["run_id"] == run_id]
    assert Counter(p["host"] for p in probes) == {host: 2 for host in per_host}
    before = probes[0]["body"]
    assert before["os_upgrades"] == [] and before["pins_pending"] == []
    assert before["dpkg"]["audit"] == [] and all(s["healthy"] for s in before["services"].values())


def test_check_mode_on_a_converged_fleet_reports_no_change(first_cycle, tmp_path):
    """The fleet first_cycle converged (the tests before this one change nothing)."""
    assert first_cycle.proc.returncode == 0
    env = env_for(tmp_path)
    check = maintain(env, "--check", "--diff")
    assert check.returncode == 0, check.stdout[-3000:]
    runs = ledger_json(env, "runs")
    assert runs[0]["check_mode"] is True
    assert sum(c["changed"] for c in runs[0]["hosts"].values()) == 0


def test_check_mode_on_fresh_hosts_plans_the_update_and_changes_nothing(fresh_lab, tmp_path):
    """The RUC source is not configured yet, so check mode cannot read the pinned versions
    from the APT cache: app_update plans them from the pins alone."""
    env = env_for(tmp_path)
    before = installed_versions()
    check = maintain(env, "--check")
    assert check.returncode == 0, check.stdout[-3000:]
    assert installed_versions() == before
    # Planned from the pins (the cache does not know them yet), not refused as unknown.
    planned = [
        r
        for r in records(env, "task_result")
        if r["body"]["task"].startswith("app_update : PATCH | Install the pinned versions")
    ]
    assert {r["host"] for r in planned} == {h["name"] for h in fresh_lab}
    assert {r["body"]["status"] for r in planned} == {"changed"}
    runs = ledger_json(env, "runs")
    assert runs[0]["check_mode"] is True
    changed = {host: counts["changed"] for host, counts in runs[0]["hosts"].items()}
    assert all(changed[h["name"]] > 0 for h in fresh_lab)
    assert records(env, "package_change") == []


def test_a_broken_release_fails_the_canary_rolls_it_back_and_stops_the_run(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    before = installed_versions()
    proc = maintain(env, "-e", '{"app_update_versions": {"ruc-payment-gateway": "2.3.1"}}')
    assert proc.returncode != 0
    canary = fresh_lab[0]["name"]
    assert canary == "pay-01"
    assert "rolled back ruc-payment-gateway 2.3.1 -> 2.3.0" in proc.stdout
    after = installed_versions()
    assert after == before, "the canary was not rolled back or another host was touched"
    changes = [
        (r["host"], r["body"]["from_version"], r["body"]["to_version"])
        for r in records(env, "package_change")
        if r["body"]["package"] == "ruc-payment-gateway"
    ]
    assert changes == [(canary, "2.3.0", "2.3.1"), (canary, "2.3.1", "2.3.0")]
    # The canary's OS updates passed their own health gate and stay; no other host moved.
    assert {r["host"] for r in records(env, "package_change")} == {canary}
    runs = ledger_json(env, "runs")
    assert runs[0]["status"] == "failed"
    # Other hosts got the package source in preflight, but no package change at all.
    assert {h for h, _, _ in changes} == {canary}
    health = subprocess.run(
        [
            "ansible",
            "-i",
            str(INVENTORY),
            canary,
            "-m",
            "ansible.builtin.command",
            "-a",
            "ruc-payment-gateway health",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert health.returncode == 0 and "2.3.0" in health.stdout


def test_outside_the_window_the_run_refuses_and_an_override_is_recorded(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    window = (
        '{"milepost_window": {"cron": "0 2 * * 0", "duration_minutes": 120,'
        ' "timezone": "America/Los_Angeles"},'
        ' "preflight_window_now": "2026-11-25T12:00:00-08:00"}'
    )
    refused = maintain(env, "-e", window)
    assert refused.returncode != 0
    assert "outside the maintenance window" in refused.stdout
    assert "next window opens 2026-11-29" in refused.stdout
    assert installed_versions() == {
        h["name"]: {
            ruc_packages.package_for_group(h["group"]).name: ruc_packages.package_for_group(
                h["group"]
            ).initial.version
        }
        for h in fresh_lab
    }
    # The override is per host: two hosts of different groups show it.
    two = [
        fresh_lab[0]["name"],
        next(h["name"] for h in fresh_lab if h["group"] != "payment_gateway"),
    ]
    allowed = maintain(
        env,
        "--limit",
        ",".join(two),
        "-e",
        window,
        "-e",
        "preflight_override_window=true",
        "-e",
        "preflight_override_reason='CVE fix approved by change board'",
    )
    assert allowed.returncode == 0, allowed.stdout[-3000:]
    overrides = records(env, "window_override")
    assert {r["host"] for r in overrides} == set(two)
    assert all("change board" in r["body"]["reason"] for r in overrides)


def write_lock(host: str, run_id: str, expires_at: str) -> None:
    lock = {
        "run_id": run_id,
        "controller": "elsewhere",
        "pid": 1,
        "acquired_at": "2026-11-24T00:00:00Z",
        "expires_at": expires_at,
    }
    subprocess.run(
        [
            "docker",
            "exec",
            "-i",
            f"milepost-lab-{host}",
            "sh",
            "-c",
            "mkdir -p /var/lib/milepost && cat > /var/lib/milepost/maintenance.lock",
        ],
        input=json.dumps(lock),
        text=True,
        check=True,
    )


def test_a_host_locked_by_another_run_is_refused_and_a_stale_lock_is_recovered(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    host = fresh_lab[0]["name"]
    write_lock(host, "20261124T000000Z-other1", "2099-01-01T00:00:00Z")
    refused = maintain(env, "--limit", host)
    assert refused.returncode != 0
    assert "20261124T000000Z-other1" in refused.stdout

    write_lock(host, "20261124T000000Z-dead01", "2026-01-01T00:00:00Z")  # expired
    recovered = maintain(env, "--limit", host)
    assert recovered.returncode == 0, recovered.stdout[-3000:]
    # The takeover is shown (a warning of the lock task) and recorded.
    shown = " ".join((recovered.stdout + recovered.stderr).split())
    assert "took over the maintenance lock of run 20261124T000000Z-dead01" in shown
    overrides = records(env, "safety_override")
    assert [o["body"]["from_run"] for o in overrides] == ["20261124T000000Z-dead01"]
    gone = subprocess.run(
        [
            "docker",
            "exec",
            f"milepost-lab-{host}",
            "test",
            "-e",
            "/var/lib/milepost/maintenance.lock",
        ]
    )
    assert gone.returncode != 0, "the run did not release its lock"


def test_the_kill_switch_stops_new_batches_and_leaves_hosts_untouched(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    stop = subprocess.run(
        ["milepost", "stop", "--reason", "payment vendor incident"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert stop.returncode == 0, stop.stderr
    before = installed_versions()
    proc = maintain(env)
    assert proc.returncode != 0
    assert "Kill switch set in the ledger" in proc.stdout
    assert "payment vendor incident" in proc.stdout
    assert installed_versions() == before
    assert subprocess.run(["milepost", "stop", "--clear"], env=env).returncode == 0
    # Cleared, the next run proceeds (one host is enough to show it).
    host = fresh_lab[0]["name"]
    assert maintain(env, "--limit", host).returncode == 0
    assert installed_versions()[host] != before[host]


def test_lab_reset_brings_hosts_back_to_their_initial_versions(lab_hosts):
    assert subprocess.run([str(LAB), "reset"], capture_output=True).returncode == 0
    for host in lab_hosts:
        package = ruc_packages.package_for_group(host["group"])
        assert installed_versions()[host["name"]] == {package.name: package.initial.version}


def test_in_hypercare_the_canary_is_one_host_and_qc_runs_after_every_batch(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    # milepost_serial asks for a canary of three: hypercare makes it one. Three hosts of
    # three groups: the canary, then a batch of two.
    phase = '{"milepost_phase": "hypercare", "milepost_serial": [3, "100%"]}'
    three = [h for h in fresh_lab if h["group"] != "payment_gateway"][:2] + [fresh_lab[0]]
    limit = ",".join([*(h["name"] for h in three), "localhost"])
    proc = maintain(env, "--limit", limit, "-e", phase)
    assert proc.returncode == 0, proc.stdout[-3000:]
    ordered = [r for r in records(env, None) if r["kind"] in ("package_change", "qc_result")]
    changes = [r for r in ordered if r["kind"] == "package_change"]
    canary = changes[0]["host"]
    checks = [r for r in ordered if r["kind"] == "qc_result"]
    # The first QC checked the canary alone, before any other host was changed.
    first_qc = [r for r in checks if r["seq"] < min(
        r["seq"] for r in changes if r["host"] != canary
    )]  # fmt: skip
    assert first_qc and {r["host"] for r in first_qc} == {canary}
    assert {r["body"]["check"] for r in first_qc} == QC_CHECKS
    # Then the rest of the hosts in one batch, checked after it, and everyone at the end.
    hosts = {h["name"] for h in three}
    for host in hosts:
        mine = [r for r in checks if r["host"] == host]
        assert len(mine) == 2 * len(QC_CHECKS), host
    assert all(r["body"]["status"] == "passed" for r in checks)
