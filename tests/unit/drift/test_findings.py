"""Drift findings derived from drift_check records in a real SQLite ledger."""

from datetime import UTC, datetime, timedelta

import pytest
from change_records import closed, opened

from milepost.drift.findings import findings, glitch_record, open_findings, report
from milepost.errors import UserError

T0 = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday: ISO week 2025-W10
CONF = "file:/etc/ruc/ruc-payment-gateway.conf"
SSHD = "sshd:PermitRootLogin"
NMAP = "package:nmap"


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def drift(
    ledger,
    run,
    host,
    when,
    *drifted,
    mode="check",
    group="payment_gateway",
    vendor="harbor_payments",
):
    """Append one drift_check record; ``drifted`` are resource names (or full entries)."""
    entries = [
        d
        if isinstance(d, dict)
        else {"resource": d, "expected": "want", "actual": "have", "diff": ""}
        for d in drifted
    ]
    body = {"mode": mode, "group": group, "vendor": vendor, "resources": 23, "drifted": entries}
    [seq] = ledger.append(
        [{"kind": "drift_check", "run_id": run, "host": host, "recorded_at": when, "body": body}]
    )
    return seq


def by_id(found):
    return {f.id: f for f in found}


def test_an_episode_opens_updates_and_resolves(ledger):
    first = drift(
        ledger,
        "r1",
        "pay-01",
        at(0),
        {"resource": CONF, "expected": "a=1", "actual": "a=2", "diff": "-a=1\n+a=2"},
    )
    drift(ledger, "r1", "pay-02", at(0))
    drift(
        ledger,
        "r2",
        "pay-01",
        at(1),
        {"resource": CONF, "expected": "a=1", "actual": "a=3", "diff": "-a=1\n+a=3"},
    )
    [f] = findings(ledger)
    assert f.id == f"D{first}" and f.state == "open"
    assert (f.host, f.resource, f.kind) == ("pay-01", CONF, "file")
    assert (f.group, f.vendor) == ("payment_gateway", "harbor_payments")
    assert f.first_seen.startswith("2025-03-03T00:00:00") and f.last_seen.startswith("2025-03-04")
    assert (f.actual, f.diff) == ("a=3", "-a=1\n+a=3")
    assert f.resolved_at is None and f.resolution is None and not f.recurring
    assert f.cls == "unauthorised" and f.change_id is None
    # Another host's clean check does not resolve it; the host's own does.
    drift(ledger, "r3", "pay-02", at(2))
    assert findings(ledger)[0].state == "open"
    drift(ledger, "r3", "pay-01", at(2))
    [f] = findings(ledger)
    assert f.state == "resolved" and f.resolution == "resolved"
    assert f.resolved_by_run == "r3" and f.resolved_at.startswith("2025-03-05")
    assert f.last_seen.startswith("2025-03-04") and f.corrected_by_run is None
    assert open_findings(ledger) == []


def test_drift_that_comes_back_is_a_new_recurring_episode(ledger):
    first = drift(ledger, "r1", "pay-01", at(0), CONF, SSHD)
    drift(ledger, "r2", "pay-01", at(1), SSHD)
    again = drift(ledger, "r3", "pay-01", at(2), CONF, SSHD)
    found = by_id(findings(ledger))
    # A record that lists several resources numbers them by their place in its list.
    assert sorted(found) == sorted([f"D{first}.1", f"D{first}.2", f"D{again}.1"])
    old, new = found[f"D{first}.1"], found[f"D{again}.1"]
    assert old.resource == new.resource == CONF
    assert old.state == "resolved" and old.resolved_by_run == "r2" and not old.recurring
    assert new.state == "open" and new.recurring and new.first_seen.startswith("2025-03-05")
    # SSHD stayed drifted all along: one episode, not recurring.
    sshd = found[f"D{first}.2"]
    assert sshd.resource == SSHD and sshd.state == "open" and not sshd.recurring
    assert sshd.last_seen.startswith("2025-03-05")
    # A third episode of CONF, opened by a record listing only it.
    drift(ledger, "r4", "pay-01", at(3), SSHD)
    last = drift(ledger, "r5", "pay-01", at(4), SSHD, CONF)
    last_conf = by_id(findings(ledger))[f"D{last}.2"]
    assert last_conf.resource == CONF and last_conf.recurring
    drift(ledger, "r6", "pay-01", at(5))
    only = drift(ledger, "r7", "pay-01", at(6), NMAP)
    assert by_id(findings(ledger))[f"D{only}"].resource == NMAP


def test_remediated_versus_resolved(ledger):
    drift(ledger, "detect", "pay-01", at(0), CONF, NMAP)
    drift(ledger, "detect", "pay-02", at(0), CONF)
    # The remediation run corrects CONF on pay-01 (and on pay-02, which another run fixed).
    drift(ledger, "fix", "pay-01", at(1), CONF, mode="converge")
    drift(ledger, "fix", "pay-01", at(1.01))
    drift(ledger, "other", "pay-02", at(0.5))
    drift(ledger, "fix", "pay-02", at(1), CONF, mode="converge")
    found = {(f.host, f.resource): f for f in findings(ledger)}
    conf = found[("pay-01", CONF)]
    assert conf.resolution == "remediated" and conf.resolved_by_run == "fix"
    assert conf.corrected_by_run == "fix"
    # NMAP went away in the same run, but the remediation did not list it.
    assert found[("pay-01", NMAP)].resolution == "resolved"
    assert found[("pay-01", NMAP)].corrected_by_run is None
    other = found[("pay-02", CONF)]
    assert other.resolution == "resolved" and other.resolved_by_run == "other"
    assert other.corrected_by_run is None  # the converge came after it was resolved


def test_a_converge_recorded_after_the_verifying_check_still_remediates(ledger):
    drift(ledger, "detect", "pay-01", at(0), CONF)
    drift(ledger, "fix", "pay-01", at(1.01))
    drift(ledger, "fix", "pay-01", at(1), CONF, mode="converge")
    [f] = findings(ledger)
    assert f.resolution == "remediated" and f.corrected_by_run == f.resolved_by_run == "fix"


def test_a_remediation_that_did_not_stick_leaves_the_finding_open(ledger):
    drift(ledger, "detect", "pay-01", at(0), CONF)
    drift(ledger, "fix", "pay-01", at(1), CONF, mode="converge")
    drift(ledger, "fix", "pay-01", at(1.01), CONF)
    [f] = open_findings(ledger)
    assert f.corrected_by_run == "fix" and f.state == "open" and f.resolution is None


def test_a_converge_without_an_open_episode_opens_nothing(ledger):
    drift(ledger, "fix", "pay-01", at(0), CONF, mode="converge")
    drift(ledger, "fix", "pay-01", at(0.1))
    assert findings(ledger) == []


def test_malformed_records_are_skipped(ledger):
    ledger.append(
        [
            {"kind": "drift_check", "run_id": "r", "host": None, "body": {"mode": "check"}},
            {"kind": "drift_check", "run_id": "r", "host": "pay-01", "body": {"mode": "audit"}},
            {
                "kind": "drift_check",
                "run_id": "r",
                "host": "pay-01",
                "body": {"mode": "check", "drifted": [7, {"expected": "x"}, {"resource": SSHD}]},
            },
        ]
    )
    [f] = findings(ledger)
    assert f.resource == SSHD and f.expected is None and f.group is None


def test_planned_versus_unauthorised(ledger):
    opened(ledger, "C-00000001", ["pay-01"], ["file:/etc/ruc/*"], at(0))
    opened(ledger, "C-00000002", ["pay-02"], ["*"], at(0), until=at(1))  # expires
    opened(ledger, "C-00000003", ["pay-03"], ["*"], at(0))
    closed(ledger, "C-00000003", at(1))
    for host in ("pay-01", "pay-02", "pay-03"):
        drift(ledger, "r1", host, at(0.5), CONF, SSHD)
    found = {(f.host, f.resource): f for f in findings(ledger)}
    assert found[("pay-01", CONF)].cls == "planned"
    assert found[("pay-01", CONF)].change_id == "C-00000001"
    assert found[("pay-01", SSHD)].cls == "unauthorised"  # not a resource of the change
    assert found[("pay-02", SSHD)].change_id == "C-00000002"
    assert found[("pay-03", CONF)].cls == "planned"
    # Seen again after the change expired or closed: unauthorised (judged at last_seen).
    for host in ("pay-01", "pay-02", "pay-03"):
        drift(ledger, "r2", host, at(2), CONF, SSHD)
    found = {(f.host, f.resource): f for f in findings(ledger)}
    assert found[("pay-01", CONF)].cls == "planned"
    assert {found[(h, r)].cls for h in ("pay-02", "pay-03") for r in (CONF, SSHD)} == {
        "unauthorised"
    }
    assert found[("pay-02", CONF)].change_id is None


def test_since_reads_only_later_records(ledger):
    drift(ledger, "r1", "pay-01", at(0), CONF)
    later = drift(ledger, "r2", "pay-01", at(7), CONF, NMAP)
    found = findings(ledger, since=at(3))
    # CONF was open since at(0), but that record is not read: it starts at `later`.
    assert {f.id for f in found} == {f"D{later}.1", f"D{later}.2"}
    assert all(f.first_seen.startswith("2025-03-10") for f in found)
    with pytest.raises(UserError, match="is not a date"):
        findings(ledger, since="yesterday-ish")


def test_open_findings_for_some_hosts(ledger):
    drift(ledger, "r1", "pay-01", at(0), CONF)
    drift(ledger, "r1", "pay-02", at(0), SSHD)
    drift(ledger, "r1", "report-01", at(0), NMAP, group="reporting", vendor="ledgerline")
    assert {f.host for f in open_findings(ledger)} == {"pay-01", "pay-02", "report-01"}
    assert [f.resource for f in open_findings(ledger, hosts={"pay-02"})] == [SSHD]


def test_report_counts_and_weekly_trend(ledger):
    opened(ledger, "C-00000001", ["pay-01"], ["file:*"], at(0))
    # Week 2025-W10: two findings on pay-01, one on report-01.
    drift(ledger, "r1", "pay-01", at(0), CONF, SSHD)
    drift(ledger, "r1", "report-01", at(0), NMAP, group="reporting", vendor="ledgerline")
    # Week W11: SSHD resolved, NMAP resolved; W12: SSHD back (recurring).
    drift(ledger, "r2", "pay-01", at(8), CONF)
    drift(ledger, "r2", "report-01", at(8), group="reporting", vendor="ledgerline")
    drift(ledger, "r3", "pay-01", at(15), CONF, SSHD)
    now = T0 + timedelta(days=16, hours=12)
    result = report(ledger, now=now)
    assert result["totals"] == {
        "open": 2,
        "planned": 1,
        "unauthorised": 1,
        "recurring": 1,
        "resolved": 2,
    }
    assert result["groups"] == {
        "payment_gateway": {"open": 2, "planned": 1, "unauthorised": 1, "recurring": 1},
        "reporting": {"open": 0, "planned": 0, "unauthorised": 0, "recurring": 0},
    }
    assert result["vendors"]["harbor_payments"]["open"] == 2
    assert result["vendors"]["ledgerline"]["open"] == 0
    ages = {f["resource"]: f["age_days"] for f in result["open"]}
    assert ages == {CONF: 16.5, SSHD: 1.5}
    assert [f["resource"] for f in result["resolved"]] == [SSHD, NMAP]
    assert result["trend"] == [
        {"week": "2025-W10", "start": "2025-03-03", "new": 3, "resolved": 0, "open": 3},
        {"week": "2025-W11", "start": "2025-03-10", "new": 0, "resolved": 2, "open": 1},
        {"week": "2025-W12", "start": "2025-03-17", "new": 1, "resolved": 0, "open": 2},
    ]
    only = report(ledger, group="reporting", now=now)
    assert only["open"] == [] and list(only["groups"]) == ["reporting"]
    assert only["trend"][0]["new"] == 1 and only["trend"][-1]["open"] == 0
    hosts = report(ledger, hosts={"pay-01"}, now=now)
    assert hosts["totals"]["open"] == 2 and "reporting" not in hosts["groups"]


def test_report_since_starts_the_trend_at_since(ledger):
    drift(ledger, "r1", "pay-01", at(10), CONF)
    result = report(ledger, since=T0, now=T0 + timedelta(days=14))
    assert [w["week"] for w in result["trend"]] == ["2025-W10", "2025-W11", "2025-W12"]
    assert [w["new"] for w in result["trend"]] == [0, 1, 0]
    assert [w["open"] for w in result["trend"]] == [0, 1, 1]
    assert result["since"].startswith("2025-03-03")
    empty = report(ledger, group="nothing-here", now=T0 + timedelta(days=12))
    assert empty["trend"] == [] and empty["open"] == [] and empty["totals"]["open"] == 0


def test_glitch_record_can_be_appended(ledger):
    drift(ledger, "detect", "pay-01", at(0), CONF, SSHD)
    drift(ledger, "detect", "pay-02", at(0), CONF)
    live = open_findings(ledger)
    record = glitch_record(
        "20250303T000000Z-1a2b3c4d",
        ["pay-02", "pay-01", "pay-01"],
        [f.resource for f in live],
        [*live, "D99"],
        " sshd did not\n restart ",
    )
    body = record["body"]
    assert record["kind"] == "glitch" and record["run_id"] == "20250303T000000Z-1a2b3c4d"
    assert body["glitch_id"] == "G-1a2b3c4d"
    assert body["detected_by"] == "remediation" and body["status"] == "open"
    assert body["customer_impact"] == "unknown" and body["reason"] == "sshd did not restart"
    assert body["hosts"] == ["pay-01", "pay-02"] and body["resources"] == [CONF, SSHD]
    assert body["findings"] == sorted({f.id for f in live} | {"D99"})
    assert "pay-01, pay-02" in body["title"]
    [seq] = ledger.append([record])
    assert seq > 0
