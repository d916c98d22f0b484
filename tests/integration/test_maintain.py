"""playbooks/maintain.yml against the lab: it finds the old versions and the newer ones."""

import ansible_runner
from conftest import INVENTORY, ROOT, ansible_env

from milepost.lab import ruc_packages


def run_maintain(tmp_path, *, check: bool = False):
    cmdline = "--check --diff" if check else ""
    private = tmp_path / "runner"
    private.mkdir(parents=True)
    return ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(ROOT),
        playbook=str(ROOT / "playbooks" / "maintain.yml"),
        inventory=str(INVENTORY),
        envvars={k: v for k, v in ansible_env().items() if k.startswith("ANSIBLE_")},
        cmdline=cmdline,
        quiet=True,
        suppress_env_files=True,
    )


def version_reports(runner) -> dict[str, dict]:
    found = {}
    for event in runner.events:
        data = event.get("event_data", {})
        if event["event"] == "runner_on_ok" and data.get("task_action", "").endswith(
            "milepost_package_versions"
        ):
            found[data["host"]] = data["res"]["packages"]
    return found


def test_maintain_reports_installed_and_available_versions(lab_hosts, tmp_path):
    runner = run_maintain(tmp_path)
    assert runner.status == "successful", runner.stdout.read()
    reports = version_reports(runner)
    assert set(reports) == {h["name"] for h in lab_hosts}
    for host in lab_hosts:
        package = ruc_packages.package_for_group(host["group"])
        entry = reports[host["name"]][package.name]
        assert entry["installed"] == package.initial.version
        assert entry["candidate"] == package.latest.version
        assert entry["outdated"] is True
    assert "pay-01" in runner.stdout.read()


def test_maintain_in_check_mode_changes_nothing_on_a_converged_host(lab_hosts, tmp_path):
    run_maintain(tmp_path / "first")
    runner = run_maintain(tmp_path / "check", check=True)
    assert runner.status == "successful"
    changed = [
        (e["event_data"]["host"], e["event_data"]["task"])
        for e in runner.events
        if e["event"] == "runner_on_ok" and e["event_data"]["res"].get("changed")
    ]
    assert changed == []
