"""OS patching in playbooks/maintain.yml against the lab, on Debian's real updates (the lab
repository mirrors Debian's bookworm, bookworm-updates and bookworm-security): security-only
then all updates, every version change in the ledger, services running replaced code
restarted, a pending reboot recorded. What a host must get is read from the lab repository
itself, never from a list of packages or versions."""

import subprocess

from conftest import INVENTORY, ROOT, ssh
from lab_fleet import host_versions, is_behind, upgrades
from test_maintain import env_for, records

MAINTAIN = ROOT / "playbooks" / "maintain.yml"


def run(env: dict[str, str], host: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", str(INVENTORY), str(MAINTAIN), "--limit", host, *args],
        capture_output=True,
        text=True,
        env=env,
    )


def stale_processes(container: str) -> list[str]:
    """Command lines of the processes (sshd aside) that map a deleted shared library."""
    script = (
        "for m in /proc/[0-9]*/maps; do grep -qE '[.]so[.0-9]* [(]deleted[)]$' $m"
        " 2>/dev/null && tr '\\0' ' ' < ${m%maps}cmdline && echo; done"
    )
    out = subprocess.run(
        ["docker", "exec", container, "sh", "-c", script], capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line and not line.startswith("sshd")]


def os_changes(env: dict[str, str]) -> set[tuple[str, str, str, str]]:
    return {
        (r["host"], r["body"]["package"], r["body"]["from_version"], r["body"]["to_version"])
        for r in records(env, "package_change")
        if not r["body"]["package"].startswith("ruc-")
    }


def os_only(versions: dict[str, str]) -> dict[str, str]:
    """The operating system's packages (the RUC packages are app_update's)."""
    return {p: v for p, v in versions.items() if not p.startswith("ruc-")}


def changed(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    return os_only({p: v for p, v in after.items() if before.get(p) != v})


def behind_host(hosts: list[dict], index: int = 0) -> dict:
    """A host the lab started behind: Debian's real updates are waiting on it."""
    return [h for h in hosts if is_behind(h, hosts)][index]


def test_security_updates_only_then_all_updates_each_change_recorded(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    host = behind_host(fresh_lab)
    container = f"milepost-lab-{host['name']}"
    before = host_versions(container)
    security_only = os_only(upgrades(before, security_only=True))
    everything = os_only(upgrades(before))
    assert everything, f"{host['name']} started behind, yet the lab offers it no update"

    security = run(env, host["name"], "-e", "os_patch_scope=security")
    assert security.returncode == 0, security.stdout[-3000:]
    after = host_versions(container)
    assert changed(before, after) == security_only
    # Services that had a replaced library loaded were restarted onto the new one.
    assert stale_processes(container) == []
    assert os_changes(env) == {(host["name"], p, before[p], v) for p, v in security_only.items()}

    full = run(env, host["name"])
    assert full.returncode == 0, full.stdout[-3000:]
    now = host_versions(container)
    assert changed(before, now) == everything
    assert os_only(upgrades(now)) == {}, "an update the lab offers was left"
    rest = os_only(upgrades(after))
    assert {(host["name"], p, after[p], v) for p, v in rest.items()} <= os_changes(env)

    again = run(env, host["name"])
    assert again.returncode == 0, again.stdout[-3000:]
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]


def test_check_mode_plans_the_upgrade_and_changes_nothing(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    host = behind_host(fresh_lab, 1)
    container = f"milepost-lab-{host['name']}"
    # A real run configures the package source, with every OS update held back; the
    # updates are left for the check run to plan.
    configure = run(env, host["name"], "-e", '{"os_patch_exclude": ["*"]}')
    assert configure.returncode == 0, configure.stdout[-3000:]
    before = host_versions(container)
    assert os_only(upgrades(before)), f"{host['name']} started behind, yet nothing to update"
    recorded = len(records(env, "package_change"))
    check = run(env, host["name"], "--check")
    assert check.returncode == 0, check.stdout[-3000:]
    task = "os_patch : PATCH | Upgrade the packages, restart what runs replaced code"
    assert task in check.stdout
    upgrade = check.stdout.split(task)[1]
    assert upgrade.split("TASK [")[0].strip().splitlines()[-1].startswith("changed:")
    assert host_versions(container) == before
    assert len(records(env, "package_change")) == recorded


def test_a_pending_reboot_is_shown_and_recorded(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    host = next(h for h in fresh_lab if h["group"] == "account_management")
    # What a kernel update's postinst hook leaves on a Debian host.
    marker = ssh(
        host["port"],
        "printf '*** System restart required ***\\n' | sudo tee /run/reboot-required >/dev/null"
        " && echo linux-image-6.1.0-99-amd64 | sudo tee /run/reboot-required.pkgs >/dev/null",
    )
    assert marker.returncode == 0, marker.stderr
    proc = run(env, host["name"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "needs a reboot to finish its updates (linux-image-6.1.0-99-amd64)" in proc.stdout
    reboots = records(env, "reboot_required")
    assert [(r["host"], r["body"]["packages"]) for r in reboots] == [
        (host["name"], ["linux-image-6.1.0-99-amd64"])
    ]


def test_a_bad_scope_fails_before_any_host_is_touched(lab_hosts, tmp_path):
    env = env_for(tmp_path)
    host = lab_hosts[0]
    before = host_versions(f"milepost-lab-{host['name']}")
    proc = run(env, f"localhost,{host['name']}", "-e", "os_patch_scope=everything")
    assert proc.returncode != 0
    assert "os_patch_scope must be all or security" in proc.stdout
    # The validation play runs on the controller and stops the run: no host play started.
    assert "PLAY [Check every RUC host before maintenance]" not in proc.stdout
    assert host_versions(f"milepost-lab-{host['name']}") == before


def boot_time(container: str) -> str:
    return subprocess.run(
        ["docker", "exec", container, "cut", "-d", " ", "-f", "22", "/proc/1/stat"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_a_required_reboot_is_done_when_allowed_and_the_host_comes_back_healthy(
    fresh_lab, tmp_path
):
    env = env_for(tmp_path)
    host = next(h for h in fresh_lab if h["group"] == "sftp_exchange")
    container = f"milepost-lab-{host['name']}"
    marker = ssh(host["port"], "sudo touch /run/reboot-required")
    assert marker.returncode == 0, marker.stderr
    booted = boot_time(container)

    proc = run(env, host["name"], "-e", "os_patch_reboot=if_required")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert boot_time(container) != booted, "the host was not rebooted"
    assert ssh(host["port"], "test ! -e /run/reboot-required").returncode == 0
    # The health gate ran after the reboot: the RUC service came back and is healthy.
    assert ssh(host["port"], "ruc-sftp-bridge health").returncode == 0
    reboots = [
        r
        for r in records(env, "task_result")
        if r["host"] == host["name"] and "PATCH | Reboot the host" in r["body"]["task"]
    ]
    assert [r["body"]["status"] for r in reboots] == ["changed"]
    assert [r["host"] for r in records(env, "reboot_required")] == [host["name"]]
