"""scripts/emergency-patch against the lab: exactly the exposed hosts are patched, a broken
fix is rolled back on the canary, and a second emergency patch is refused while one runs."""

import json
import shutil
import subprocess
import time
from pathlib import Path

from conftest import INVENTORY, ROOT, lab_status
from notice_servers import PROXY_VARIABLES, smtp_server
from test_maintain import env_for, records

from milepost.lab import ruc_packages

EMERGENCY = ROOT / "scripts" / "emergency-patch"
GATEWAY = "ruc-payment-gateway"


def milepost(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["milepost", *args], capture_output=True, text=True, env=env)


def emergency(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EMERGENCY), *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )


def add_advisory(env: dict[str, str], advisory_id: str, fixed: str) -> None:
    proc = milepost(
        env,
        "advisory",
        "add",
        "--id",
        advisory_id,
        "--package",
        f"{GATEWAY}={fixed}",
        "--severity",
        "critical",
        "--title",
        "Payment gateway accepts replayed settlement files",
    )
    assert proc.returncode == 0, proc.stderr


NOTIFY = """\
milepost_notify:
  from: RUC Operations <ruc-ops@ruc.example.gov>
  smtp: {{host: 127.0.0.1, port: {port}, attempts: 2, retry_delay_seconds: 0}}
  audiences:
    communications: {{email: [communications@ruc.example.gov]}}
    customer_service: {{email: [cs-leads@ruc.example.gov]}}
  notices:
    emergency: [communications, customer_service]
"""


def closed_window_inventory(tmp_path: Path) -> Path:
    """The lab inventory with a maintenance window that is closed today (a blackout
    covers it): an emergency patch overrides it and records why."""
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY.parent, inventory)
    (inventory / "group_vars" / "ruc.yml").write_text(
        "milepost_window: {cron: '0 2 * * 0', duration_minutes: 120, timezone: UTC}\n"
        "milepost_blackouts: [{start: '2000-01-01', end: '2099-12-31'}]\n"
    )
    return inventory / "hosts.yml"


def versions() -> dict[str, dict[str, str]]:
    return {row["name"]: row["versions"] for row in lab_status()}


def exposure(env: dict[str, str], advisory_id: str) -> list[dict]:
    proc = milepost(env, "exposure", "--advisory", advisory_id, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def emergency_runs(env: dict[str, str]) -> list[dict]:
    proc = milepost(env, "ledger", "runs", "--kind", "emergency", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_an_advisory_is_patched_on_exactly_the_exposed_hosts_and_closed(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    add_advisory(env, "RUC-2026-0101", "2.4.0")
    before = versions()
    gateway = ruc_packages.package_for_group("payment_gateway")
    exposed = sorted(h["name"] for h in fresh_lab if h["group"] == "payment_gateway")
    assert exposed and all(before[h] == {GATEWAY: gateway.initial.version} for h in exposed)

    # No package facts in this ledger yet: every RUC host is checked live. The window is
    # closed: the emergency overrides it. Staff are told at the start and at the end.
    inventory = str(closed_window_inventory(tmp_path))
    env = {k: v for k, v in env.items() if k not in PROXY_VARIABLES}
    with smtp_server() as mail:
        (tmp_path / "inventory" / "group_vars" / "all" / "notify.yml").write_text(
            NOTIFY.format(port=mail.port)
        )
        proc = emergency(
            env, "--advisory", "RUC-2026-0101", "--yes", "--reason", "INC-4711", "-i", inventory
        )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "patched and verified: " + ", ".join(exposed) in proc.stdout

    after = versions()
    for host in before:
        if host in exposed:
            assert after[host] == {GATEWAY: "2.4.0"}
        else:
            assert after[host] == before[host], host

    (run,) = emergency_runs(env)
    assert run["status"] == "successful"
    changes = [r for r in records(env, "package_change") if r["run_id"] == run["run_id"]]
    assert sorted((r["host"], r["body"]["to_version"]) for r in changes) == [
        (host, "2.4.0") for host in exposed
    ]
    # Safety invariant 2: the two payment hosts (one group) were never out at once.
    batches = [
        r["body"]["hosts"] for r in records(env, "batch_started") if r["run_id"] == run["run_id"]
    ]
    assert len(batches) == 2 and all(len(set(exposed) & set(b)) == 1 for b in batches), batches
    (link,) = records(env, "emergency_patch")
    assert link["run_id"] == run["run_id"]
    assert link["body"]["advisory_id"] == "RUC-2026-0101"
    assert link["body"]["reason"] == "INC-4711"
    overrides = [r for r in records(env, "window_override") if r["run_id"] == run["run_id"]]
    assert sorted(r["host"] for r in overrides) == sorted(before)
    assert all("RUC-2026-0101: INC-4711" in r["body"]["reason"] for r in overrides)
    (result,) = records(env, "emergency_result")
    assert result["body"]["patched"] == exposed and result["body"]["still_exposed"] == []

    # The emergency notice went to both audiences before the patching began (recorded
    # before the first task result) and again at the end, naming Payments.
    assert [m["to"] for m in mail.messages] == [
        ["communications@ruc.example.gov"],
        ["cs-leads@ruc.example.gov"],
    ] * 2
    assert all(mail.subject(i).startswith("Urgent security fix starting now") for i in (0, 1))
    assert all(mail.subject(i).startswith("Urgent security fix finished:") for i in (2, 3))
    assert "Payments" in mail.text(0) and "RUC-2026-0101" in mail.text(0)
    assert "Payments: " in mail.text(2) and "Every affected system is fixed" in mail.text(2)
    ours = [r for r in records(env, None) if r["run_id"] == run["run_id"]]
    kinds = [r["kind"] for r in ours]
    notices = [r for r in ours if r["kind"] == "notice"]
    assert [n["body"]["notice"] for n in notices] == ["emergency"] * 4
    assert all(n["body"]["result"] == "sent" for n in notices)
    first_result = kinds.index("task_result")
    assert [i for i, k in enumerate(kinds) if k == "notice"][:2] == [
        i for i, k in enumerate(kinds[:first_result]) if k == "notice"
    ]
    assert kinds.index("emergency_result") < len(kinds) - 2 and kinds[-2:] == ["notice"] * 2

    # Exposure now shows none open, each closed by the emergency run.
    items = exposure(env, "RUC-2026-0101")
    assert sorted(i["host"] for i in items) == exposed
    assert all(i["status"] == "fixed" and i["closed_by"] == run["run_id"] for i in items)

    # The ledger knows every host now: a second run finds nothing to patch, touches nothing.
    again = emergency(env, "--advisory", "RUC-2026-0101", "--yes", "-i", inventory)
    assert again.returncode == 0, again.stderr
    assert "no host is exposed to RUC-2026-0101" in again.stdout
    assert len(emergency_runs(env)) == 1


def _wait_for_lock_holder(state: Path, proc: subprocess.Popen) -> dict:
    lock = state / "fleet.lock"
    for _ in range(600):
        if proc.poll() is not None:
            break
        try:
            holder = json.loads(lock.read_text())
        except (OSError, ValueError):
            holder = None
        if holder:
            return holder
        time.sleep(0.1)
    out, err = proc.communicate()
    raise AssertionError(f"the first emergency patch never held the fleet lock: {out}{err}")


def test_a_broken_fix_is_rolled_back_on_the_canary_and_a_second_run_is_refused(fresh_lab, tmp_path):
    env = env_for(tmp_path)
    add_advisory(env, "RUC-2026-0102", "2.3.1")  # the lab's broken release
    before = versions()
    pay_hosts = sorted(h["name"] for h in fresh_lab if h["group"] == "payment_gateway")

    first = subprocess.Popen(
        [str(EMERGENCY), "--advisory", "RUC-2026-0102", "--limit", "payment_gateway", "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    holder = _wait_for_lock_holder(Path(env["MILEPOST_STATE_DIR"]), first)
    second = emergency(env, "--advisory", "RUC-2026-0102", "--yes")
    out, err = first.communicate(timeout=900)

    # While the first ran, the second was refused, naming the holder.
    assert second.returncode == 3, second.stdout + second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert holder["run_id"] in second.stderr and "RUC-2026-0102" in second.stderr
    (refusal,) = records(env, "emergency_refused")
    assert refusal["body"]["exit_code"] == 3

    # The canary took the broken release, failed its health gate and was rolled back; the
    # run stopped, the other host untouched.
    assert first.returncode == 1, out[-3000:] + err
    after = versions()
    assert after == before
    changes = [
        (r["host"], r["body"]["from_version"], r["body"]["to_version"])
        for r in records(env, "package_change")
        if r["run_id"] == holder["run_id"]
    ]
    canary = changes[0][0]
    assert canary in pay_hosts
    assert changes == [(canary, "2.3.0", "2.3.1"), (canary, "2.3.1", "2.3.0")]
    assert f"rolled back: {canary}" in out
    (result,) = records(env, "emergency_result")
    assert result["body"]["rolled_back"] == [canary]
    assert result["body"]["still_exposed"] == pay_hosts
    (run,) = emergency_runs(env)
    assert run["status"] == "failed" and run["run_id"] == holder["run_id"]
    # The failed run opened a glitch naming the canary and its rollback.
    (glitch,) = records(env, "glitch")
    assert glitch["run_id"] == run["run_id"] and glitch["body"]["hosts"] == [canary]
    assert f"{canary} rolled back" in glitch["body"]["title"]
    assert glitch["body"]["status"] == "open" and glitch["body"]["detected_by"] == "failed run"
    assert sorted(
        i["host"] for i in exposure(env, "RUC-2026-0102") if i["status"] == "exposed"
    ) == (pay_hosts)
