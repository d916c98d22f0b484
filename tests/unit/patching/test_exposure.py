"""Exposure, patch deadlines, exceptions and emergency-patch's refusals, on a real SQLite
ledger and a small inventory (no host is contacted)."""

import json
from datetime import date, timedelta

import pytest
from inventories import write_inventory

from milepost.cli.main import main
from milepost.errors import UserError
from milepost.ledger import Ledger, package_change, package_facts
from milepost.patching import policy as patch_policy
from milepost.patching.advisories import add_advisory
from milepost.patching.exposure import EXCEPTION_KIND, exposed_packages, exposures, is_fixed, today
from milepost.patching.fleet_lock import FleetLock

POLICY = """\
milepost_patch_policy:
  days: {kev: 14, critical: 30, high: 30, medium: 90, low: 180}
  emergency_target_hours: 24
milepost_kev_products: []
"""
STRICTER = "milepost_patch_policy:\n  days: {critical: 15}\n"


@pytest.fixture
def inventory(tmp_path):
    root = write_inventory(tmp_path / "inventory", patch_policy=POLICY)
    (root / "group_vars" / "payment_gateway").mkdir()
    (root / "group_vars" / "payment_gateway" / "contract.yml").write_text(STRICTER)
    return root


@pytest.fixture
def ledger(ledger):
    """The ledger with package facts of three hosts."""
    ledger.append(
        [
            package_facts("r1", "pay-01", {"ruc-payment-gateway": "2.3.0", "sudo": "1.9.13p3-1"}),
            package_facts("r1", "pay-02", {"ruc-payment-gateway": "2.3.0"}),
            package_facts("r1", "acct-01", {"ruc-account-api": "1.4.0"}),
        ]
    )
    return ledger


def count(ledger: Ledger, kind: str | None = None) -> int:
    with ledger.read_transaction() as conn:
        sql = "SELECT count(*) FROM ledger_records" + (" WHERE kind = ?" if kind else "")
        return int(conn.exec_driver_sql(sql, (kind,) if kind else ()).scalar_one())


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_debian_version_ordering_decides_what_is_fixed():
    assert is_fixed("2.4.0", "2.4.0") and is_fixed("2.10.0", "2.9.1")
    assert not is_fixed("2.4.0~rc1", "2.4.0") and is_fixed("1:1.0", "2.4.0")
    assert not is_fixed("2.4.0", None)
    installed = {"a": "1.0-1", "b": "2.0", "c": "0.9"}
    assert exposed_packages({"a": "1.0-2", "b": "2.0", "d": "1.0", "c": None}, installed) == {
        "a": "1.0-2",
        "c": None,
    }


def test_due_dates_follow_the_policy_and_a_stricter_contract(ledger, inventory):
    published = date(2026, 11, 1)
    add_advisory(
        ledger,
        advisory_id="RUC-2026-0001",
        packages={"ruc-payment-gateway": "2.4.0", "ruc-account-api": "1.5.0"},
        severity="critical",
        published=published,
    )
    settings = patch_policy.load([inventory])
    items = {e.host: e for e in exposures(ledger, settings, on=date(2026, 11, 20))}
    # The payment processor's contract: 15 days; everyone else the agency's 30.
    assert items["pay-01"].due == "2026-11-16" and items["pay-01"].overdue
    assert items["pay-01"].days_left == -4
    assert items["acct-01"].due == "2026-12-01" and not items["acct-01"].overdue


def test_a_kev_entry_is_due_on_the_catalog_date(ledger, inventory):
    add_advisory(
        ledger,
        advisory_id="CVE-2021-3156",
        packages={"sudo": "1.9.13p3-1+deb12u1"},
        severity="high",
        kev=True,
        published="2022-04-06",
        due_date="2022-04-27",
    )
    [item] = exposures(ledger, patch_policy.load([inventory]))
    assert (item.host, item.kev, item.due, item.overdue) == ("pay-01", True, "2022-04-27", True)


def test_a_patched_host_is_fixed_and_names_the_run_that_closed_it(ledger, inventory, capsys):
    add_advisory(
        ledger,
        advisory_id="RUC-2026-0002",
        packages={"ruc-payment-gateway": "2.4.0"},
        severity="high",
    )
    ledger.append([package_change("run-42", "pay-02", "ruc-payment-gateway", "2.3.0", "2.4.0")])
    items = {e.host: e for e in exposures(ledger, patch_policy.load([inventory]))}
    assert items["pay-02"].status == "fixed" and items["pay-02"].closed_by == "run-42"
    assert items["pay-01"].status == "exposed" and items["pay-01"].closed_by is None
    assert "acct-01" not in items  # the package is not installed there
    ledger.append([package_change("run-43", "pay-01", "ruc-payment-gateway", "2.3.0", "2.4.0")])
    code, out, _ = run_cli(capsys, "exposure", "-i", str(inventory / "hosts.yml"))
    assert code == 0
    assert out.splitlines() == [
        "no exposure recorded",
        "1 advisories closed on 2 host(s) by patching (--all lists them)",
    ]


def test_overdue_shows_a_host_past_the_kev_date_until_an_exception_covers_it(
    ledger, inventory, capsys
):
    add_advisory(
        ledger,
        advisory_id="CVE-2021-3156",
        packages={"sudo": "1.9.13p3-1+deb12u1"},
        severity="high",
        kev=True,
        published="2022-04-06",
        due_date="2022-04-27",
    )
    code, out, err = run_cli(capsys, "exposure", "--overdue", "--json", "-i", str(inventory))
    assert code == 0, err
    assert [(e["host"], e["advisory_id"]) for e in json.loads(out)] == [("pay-01", "CVE-2021-3156")]

    expires = (today() + timedelta(days=30)).isoformat()
    code, out, err = run_cli(
        capsys,
        "exception",
        "add",
        "--advisory",
        "CVE-2021-3156",
        "--host",
        "pay-01",
        "--expires",
        expires,
        "--reason",
        "vendor certifies the new sudo next month",
        "--control",
        "sudo limited to the ops group; session recording on",
        "-i",
        str(inventory),
    )
    assert code == 0, err
    code, out, _ = run_cli(capsys, "exposure", "--overdue", "--json", "-i", str(inventory))
    assert json.loads(out) == []
    code, out, _ = run_cli(capsys, "exposure", "--json", "-i", str(inventory))
    [item] = json.loads(out)
    assert item["status"] == "excepted" and item["exception_expires"] == expires


def test_an_expired_exception_shows_the_host_overdue_again(ledger, inventory, capsys):
    add_advisory(
        ledger,
        advisory_id="CVE-2021-3156",
        packages={"sudo": "1.9.13p3-1+deb12u1"},
        severity="high",
        kev=True,
        published="2022-04-06",
        due_date="2022-04-27",
    )
    ledger.append(
        [
            {
                "kind": EXCEPTION_KIND,
                "run_id": None,
                "host": None,
                "body": {
                    "exception_id": "E-0000000a",
                    "advisory_id": "CVE-2021-3156",
                    "hosts": ["pay-01"],
                    "expires": today().isoformat(),
                    "reason": "waiting for the vendor",
                    "compensating_control": "sudo limited to ops",
                    "added_by": "test",
                },
            }
        ]
    )
    code, out, err = run_cli(capsys, "exposure", "--overdue", "--json", "-i", str(inventory))
    assert code == 0, err
    assert [e["host"] for e in json.loads(out)] == ["pay-01"]
    code, out, _ = run_cli(capsys, "exception", "list", "--json")
    assert json.loads(out) == []
    code, out, _ = run_cli(capsys, "exception", "list", "--all", "--json")
    assert [e["exception_id"] for e in json.loads(out)] == ["E-0000000a"]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--host", "pay-09"], "unknown host"),
        (["--host", "pay-01", "--expires", "2020-01-01"], "not in the future"),
        (["--host", "pay-01", "--reason", "  "], "--reason"),
        (["--host", "pay-01", "--control", "a\nb"], "--control"),
        (["--host", "pay-01", "--expires", "next week"], "--expires"),
    ],
)
def test_a_bad_exception_is_refused_and_nothing_is_recorded(
    ledger, inventory, capsys, args, problem
):
    add_advisory(ledger, advisory_id="RUC-2026-0003", packages={"sudo": "9"}, severity="low")
    options = {
        "--expires": (today() + timedelta(days=5)).isoformat(),
        "--reason": "why",
        "--control": "what instead",
    }
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = ["exception", "add", "--advisory", "RUC-2026-0003", "-i", str(inventory)]
    for key, value in {**options, **given}.items():
        argv += [key, value]
    before = count(ledger)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and problem in err and len(err.strip().splitlines()) == 1
    assert count(ledger) == before


def test_a_looser_group_policy_is_refused(inventory, capsys):
    (inventory / "group_vars" / "payment_gateway" / "contract.yml").write_text(
        "milepost_patch_policy:\n  days: {critical: 60}\n"
    )
    with pytest.raises(UserError, match="may only be stricter"):
        patch_policy.load([inventory])


#: Shell metacharacters and option-like strings are refused in ids, limits and numbers;
#: a free-text reason may hold them (it is data, passed to no shell).
SHELLISH = [";rm -rf /", "$(id)", "`id`", "-oProxyCommand=touch /tmp/pwned"]
HOSTILE = [
    *SHELLISH,
    "RUC-2026-0001\nRUC-2026-0002",
    "RUC-2026\x00-0001",
    "R" * 65536,
    "RUC-2026-0001\u202e",
    "RUC-2026\u200b-0001",
]


def _no_run(ledger: Ledger) -> None:
    assert count(ledger, "run_started") == 0
    assert count(ledger, "emergency_patch") == 0


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_emergency_input_is_refused_recorded_and_runs_nothing(
    ledger, inventory, capsys, bad
):
    add_advisory(
        ledger,
        advisory_id="RUC-2026-0001",
        packages={"ruc-payment-gateway": "2.4.0"},
        severity="critical",
    )
    for argv in (
        ["--advisory", bad],
        ["--advisory", "RUC-2026-0001", "--limit", bad],
        ["--advisory", "RUC-2026-0001", "--canary", bad],
        *([] if bad in SHELLISH else [["--advisory", "RUC-2026-0001", "--reason", bad]]),
    ):
        before = count(ledger, "emergency_refused")
        code, out, err = run_cli(capsys, "emergency-patch", *argv, "--yes", "-i", str(inventory))
        assert code == 2, (argv, out, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert len(err) < 400 and "\u202e" not in err and "\x00" not in err
        assert count(ledger, "emergency_refused") == before + 1
    _no_run(ledger)


def test_an_advisory_without_a_fixed_version_is_refused(ledger, inventory, capsys):
    add_advisory(
        ledger, advisory_id="RUC-2026-0004", packages={"ruc-payment-gateway": None}, severity="high"
    )
    code, _, err = run_cli(
        capsys, "emergency-patch", "--advisory", "RUC-2026-0004", "--yes", "-i", str(inventory)
    )
    assert code == 2 and "no fixed version for ruc-payment-gateway" in err
    code, _, err = run_cli(
        capsys, "emergency-patch", "--advisory", "RUC-2026-0999", "--yes", "-i", str(inventory)
    )
    assert code == 2 and "unknown advisory RUC-2026-0999" in err
    _no_run(ledger)


def test_dry_run_shows_the_exposed_hosts_and_touches_nothing(ledger, inventory, capsys):
    add_advisory(
        ledger,
        advisory_id="RUC-2026-0001",
        packages={"ruc-payment-gateway": "2.4.0"},
        severity="critical",
    )
    code, out, err = run_cli(
        capsys,
        "emergency-patch",
        "--advisory",
        "RUC-2026-0001",
        "--dry-run",
        "-i",
        str(inventory),
    )
    assert code == 0, err
    assert "exposed (ledger): pay-01, pay-02" in out and "dry run: no host touched" in out
    _no_run(ledger)


def test_the_kill_switch_and_a_held_fleet_lock_refuse_with_exit_3(ledger, inventory, capsys):
    add_advisory(
        ledger,
        advisory_id="RUC-2026-0001",
        packages={"ruc-payment-gateway": "2.4.0"},
        severity="critical",
    )
    argv = ["emergency-patch", "--advisory", "RUC-2026-0001", "--yes", "-i", str(inventory)]
    code, _, err = run_cli(capsys, "stop", "--reason", "payment processor incident")
    assert code == 0, err
    code, _, err = run_cli(capsys, *argv)
    assert code == 3 and "kill switch is set (payment processor incident" in err
    run_cli(capsys, "stop", "--clear")

    holder = FleetLock()
    holder.acquire({"run_id": "20261201T000000Z-0badf00d", "advisory_id": "CVE-2021-3156"})
    try:
        code, _, err = run_cli(capsys, *argv)
    finally:
        holder.release()
    assert code == 3 and len(err.strip().splitlines()) == 1
    assert "20261201T000000Z-0badf00d for CVE-2021-3156" in err
    assert count(ledger, "emergency_refused") == 2
    _no_run(ledger)


def test_the_cves_an_upload_fixes_are_shown_with_each_exposure(ledger, inventory, capsys):
    """A Debian upload's advisory names its CVEs: the table shows the first three and how
    many more, --json all of them."""
    base = add_advisory(
        ledger,
        advisory_id="DEB-sudo-1.9.13p3.1.deb12u3",
        packages={"sudo": "1.9.13p3-1+deb12u3"},
        severity="high",
        source="debian",
    )
    cves = [f"CVE-2025-3246{n}" for n in range(5)]
    ledger.append(
        [
            {
                "kind": "advisory",
                "run_id": None,
                "host": None,
                "body": {**base.body(), "cves": cves, "source_package": "sudo"},
            }
        ]
    )
    code, out, _ = run_cli(capsys, "exposure", "--json", "-i", str(inventory / "hosts.yml"))
    assert code == 0
    assert [(e["host"], e["cves"]) for e in json.loads(out)] == [("pay-01", cves)]
    code, out, _ = run_cli(capsys, "exposure", "-i", str(inventory / "hosts.yml"))
    assert code == 0
    text = " ".join(out.split())
    assert all(cve in text for cve in cves[:3]) and cves[3] not in text and "+2 more" in text
