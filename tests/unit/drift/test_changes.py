"""Planned changes in a real SQLite ledger: validation, closing, states, covering."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from change_records import closed, opened

from milepost.drift.changes import changes, close_change, covering, open_change
from milepost.errors import UserError
from milepost.ledger import Ledger

KNOWN = {"pay-01", "pay-02", "report-01"}
T0 = datetime(2025, 3, 3, tzinfo=UTC)


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def count(ledger: Ledger) -> int:
    with ledger.read_transaction() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM ledger_records").scalar_one())


def test_open_change_records_a_change(ledger, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "alice")
    until = datetime.now(UTC) + timedelta(days=2)
    record = open_change(
        ledger,
        ["pay-01", " pay-02", "pay-01"],
        ["file:/etc/ruc/*", "service:ruc-*", "*"],
        "  rotate\n the   gateway keys ",
        until=until,
        known_hosts=KNOWN,
    )
    body = record["body"]
    assert re.fullmatch(r"C-[0-9a-f]{8}", body["change_id"])
    assert record["kind"] == "change_opened" and record["host"] is None
    assert record["run_id"] is None
    assert body["hosts"] == ["pay-01", "pay-02"]
    assert body["resources"] == ["file:/etc/ruc/*", "service:ruc-*", "*"]
    assert body["reason"] == "rotate the gateway keys"
    assert body["opened_by"] == "alice"
    assert body["until"].startswith(until.strftime("%Y-%m-%dT%H:%M:%S"))
    [change] = changes(ledger)
    assert change.change_id == body["change_id"] and change.state == "open"
    assert change.hosts == ("pay-01", "pay-02") and change.until == body["until"]
    assert change.opened_by == "alice" and change.closed_at is None


def test_open_change_without_sudo_user_names_the_login(ledger, monkeypatch):
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "bob")
    record = open_change(ledger, ["pay-01"], ["sshd:*"], "why", known_hosts=KNOWN)
    assert record["body"]["opened_by"] == "bob" and record["body"]["until"] is None
    explicit = open_change(
        ledger, ["pay-01"], ["sshd:*"], "why", opened_by="carol", known_hosts=KNOWN
    )
    assert explicit["body"]["opened_by"] == "carol"


@pytest.mark.parametrize(
    ("hosts", "resources", "reason", "until", "message"),
    [
        (["pay-01", "nope-9"], ["file:/x"], "r", None, "unknown host(s) nope-9: hosts must be"),
        ([" ", ""], ["file:/x"], "r", None, "at least one inventory host"),
        (["pay-01"], ["files:/etc/x"], "r", None, "resource pattern 'files:/etc/x' is not"),
        (["pay-01"], ["file:"], "r", None, "resource pattern 'file:' is not"),
        (["pay-01"], ["nginx"], "r", None, "KIND one of file, service, package"),
        (["pay-01"], [" "], "r", None, "at least one resource pattern"),
        (["pay-01"], ["file:/x"], " \n\t ", None, "needs a reason"),
        (["pay-01"], ["file:/x"], "r", "2020-01-01", "is not in the future"),
        (["pay-01"], ["file:/x"], "r", "next tuesday", "is not a time"),
    ],
)
def test_open_change_refuses_bad_input(ledger, hosts, resources, reason, until, message):
    before = count(ledger)
    with pytest.raises(UserError) as bad:
        open_change(ledger, hosts, resources, reason, until=until, known_hosts=KNOWN)
    text = str(bad.value)
    assert message in text and "\n" not in text
    assert count(ledger) == before


def test_unknown_hosts_are_listed_and_pointed_at_the_inventory(ledger):
    with pytest.raises(UserError) as bad:
        open_change(ledger, ["x1", "pay-01", "x2"], ["*"], "r", known_hosts=KNOWN)
    assert str(bad.value) == (
        "unknown host(s) x1, x2: hosts must be in the inventory (see `ansible-inventory --graph`)"
    )


def test_close_change_once(ledger):
    change_id = open_change(ledger, ["pay-01"], ["*"], "r", known_hosts=KNOWN)["body"]["change_id"]
    record = close_change(ledger, change_id, note="  done,\n all good ")
    assert record["kind"] == "change_closed"
    assert record["body"]["note"] == "done, all good"
    [change] = changes(ledger)
    assert change.state == "closed" and change.note == "done, all good"
    assert change.closed_at == record["recorded_at"]
    before = count(ledger)
    with pytest.raises(UserError, match=f"change {change_id} was already closed at"):
        close_change(ledger, change_id)
    with pytest.raises(UserError, match="no change 'C-00000000' in the ledger"):
        close_change(ledger, "C-00000000")
    assert count(ledger) == before


def test_states_open_closed_expired(ledger):
    opened(ledger, "C-00000001", ["pay-01"], ["*"], at(0))
    opened(ledger, "C-00000002", ["pay-01"], ["*"], at(0), until=at(2))
    opened(ledger, "C-00000003", ["pay-01"], ["*"], at(0), until=at(10))
    closed(ledger, "C-00000003", at(1))
    states = {c.change_id: c.state for c in changes(ledger, now=at(1))}
    assert states == {"C-00000001": "open", "C-00000002": "open", "C-00000003": "closed"}
    states = {c.change_id: c.state for c in changes(ledger, now=at(3))}
    assert states == {"C-00000001": "open", "C-00000002": "expired", "C-00000003": "closed"}
    # An expired change may still be closed, once.
    close_change(ledger, "C-00000002")
    assert {c.change_id: c.state for c in changes(ledger)}["C-00000002"] == "closed"


def test_covering_checks_time_host_and_pattern(ledger):
    opened(ledger, "C-0000000a", ["pay-01"], ["file:/etc/ruc/*", "service:ruc-*"], at(1), at(5))
    opened(ledger, "C-0000000b", ["pay-02"], ["*"], at(1))
    closed(ledger, "C-0000000b", at(3))
    found = changes(ledger)
    hit = covering(found, "pay-01", "file:/etc/ruc/sub/x.conf", at(2))
    assert hit is not None and hit.change_id == "C-0000000a"
    assert covering(found, "pay-01", "service:ruc-payment-gateway", at(4.9)) is not None
    assert covering(found, "pay-01", "file:/etc/ruc/x.conf", at(0.5)) is None  # before open
    assert covering(found, "pay-01", "file:/etc/ruc/x.conf", at(5)) is None  # until passed
    assert covering(found, "pay-01", "file:/etc/ssh/sshd_config", at(2)) is None
    assert covering(found, "pay-01", "package:nmap", at(2)) is None
    assert covering(found, "report-01", "file:/etc/ruc/x.conf", at(2)) is None
    assert covering(found, "pay-02", "sysctl:net.ipv4.ip_forward", at(2)) is not None
    assert covering(found, "pay-02", "sysctl:net.ipv4.ip_forward", at(3)) is None  # closed


def test_covering_prefers_the_newest_change(ledger):
    opened(ledger, "C-00000001", ["pay-01"], ["*"], at(0))
    opened(ledger, "C-00000002", ["pay-01"], ["file:*"], at(1))
    hit = covering(changes(ledger), "pay-01", "file:/etc/x", at(2))
    assert hit is not None and hit.change_id == "C-00000002"
    hit = covering(changes(ledger), "pay-01", "user:ops", at(2))
    assert hit is not None and hit.change_id == "C-00000001"
