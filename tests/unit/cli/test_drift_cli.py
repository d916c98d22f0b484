"""`milepost drift report` and `milepost change ...` through milepost.cli.main.main: tables,
JSON, and bad input as one line on stderr with exit 2. No lab hosts needed."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from milepost.cli.main import main
from milepost.ledger import Ledger

INVENTORY = """\
all:
  children:
    ruc:
      children:
        payment_gateway:
          vars:
            milepost_vendor: harbor_payments
          hosts:
            pay-01:
            pay-02:
        reporting:
          vars:
            milepost_vendor: ledgerline_analytics
          hosts:
            report-01:
"""
CONF = "file:/etc/ruc/ruc-payment-gateway.conf"


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return str(path)


def ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def drift(ledger, run, host, when, *resources, mode="check", group="payment_gateway"):
    body = {
        "mode": mode,
        "group": group,
        "vendor": "harbor_payments" if group == "payment_gateway" else "ledgerline_analytics",
        "resources": 23,
        "drifted": [{"resource": r, "expected": "a", "actual": "b", "diff": ""} for r in resources],
    }
    [seq] = ledger.append(
        [{"kind": "drift_check", "run_id": run, "host": host, "recorded_at": when, "body": body}]
    )
    return seq


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("milepost: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def history(ledger):
    """pay-01: CONF open (seen twice); pay-02: sshd remediated; report-01: nmap open."""
    opened = drift(ledger, "detect-1", "pay-01", ago(10), CONF)
    drift(ledger, "detect-1", "pay-02", ago(10), "sshd:PermitRootLogin")
    drift(ledger, "fix", "pay-02", ago(9), "sshd:PermitRootLogin", mode="converge")
    drift(ledger, "fix", "pay-02", ago(9))
    drift(ledger, "detect-2", "pay-01", ago(2), CONF)
    nmap = drift(ledger, "detect-2", "report-01", ago(2), "package:nmap", group="reporting")
    return {"conf": f"D{opened}", "nmap": f"D{nmap}"}


def test_report_tables(history, capsys):
    code, out, err = run_cli(capsys, "drift", "report")
    assert code == 0, err
    assert "open findings" in out and history["conf"] in out and CONF in out
    assert "unauthorised" in out and "per group" in out and "per vendor" in out
    assert "trend per week" in out and "harbor_payments" in out
    assert "2 open (2 unauthorised, 0 planned, 0 recurring), 1 resolved" in out
    assert "resolved findings" not in out
    code, out, _ = run_cli(capsys, "drift", "report", "--all")
    assert code == 0 and "resolved findings" in out and "remediated" in out and "fix" in out


def test_report_json_group_and_since(history, inventory, capsys):
    code, out, _ = run_cli(capsys, "drift", "report", "--json")
    data = json.loads(out)
    assert code == 0 and "resolved" not in data
    assert {f["id"] for f in data["open"]} == {history["conf"], history["nmap"]}
    assert data["groups"]["payment_gateway"]["open"] == 1
    assert data["trend"][-1]["open"] == 2
    code, out, _ = run_cli(capsys, "drift", "report", "--json", "--all", "--group", "reporting")
    data = json.loads(out)
    assert [f["id"] for f in data["open"]] == [history["nmap"]] and data["resolved"] == []
    # A group no finding names, but the inventory has: by its hosts.
    code, out, _ = run_cli(capsys, "drift", "report", "--json", "--group", "ruc", "-i", inventory)
    assert code == 0 and len(json.loads(out)["open"]) == 2 and json.loads(out)["group"] == "ruc"
    code, out, _ = run_cli(capsys, "drift", "report", "--json", "--since", "5d")
    data = json.loads(out)
    assert code == 0 and data["since"] is not None and data["totals"]["resolved"] == 0


def test_report_on_an_empty_ledger(ledger, capsys):
    code, out, _ = run_cli(capsys, "drift", "report")
    assert code == 0 and "no drift findings" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--group", "nosuch"], "unknown group 'nosuch': no drift finding or inventory group"),
        (["--since", "last tuesday"], "--since 'last tuesday' is not a date"),
    ],
)
def test_report_bad_input(history, inventory, capsys, args, message):
    code, out, err = run_cli(capsys, "drift", "report", "-i", inventory, *args)
    assert code == 2 and out == ""
    assert message in one_line_error(err)


def test_change_open_list_close(history, inventory, capsys, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "alice")
    code, out, err = run_cli(
        capsys,
        "change",
        "open",
        "-i",
        inventory,
        "--hosts",
        "pay-01, pay-02",
        "--resources",
        "file:/etc/ruc/*,service:ruc-*",
        "--reason",
        "new gateway certificate",
        "--until",
        "3d",
    )
    assert code == 0, err
    assert "opened until" in out
    code, out, _ = run_cli(capsys, "change", "list", "--json")
    [change] = json.loads(out)
    assert change["state"] == "open" and change["hosts"] == ["pay-01", "pay-02"]
    assert change["opened_by"] == "alice" and change["until"] is not None
    change_id = change["change_id"]
    assert change_id in out
    code, out, _ = run_cli(capsys, "change", "list")
    assert code == 0 and change_id in out and "new gateway certificate" in out
    # Drift seen now inside the change is planned.
    drift(Ledger.open(), "detect-3", "pay-01", ago(0), CONF)
    code, out, _ = run_cli(capsys, "drift", "report", "--json")
    [conf] = [f for f in json.loads(out)["open"] if f["resource"] == CONF]
    assert conf["cls"] == "planned" and conf["change_id"] == change_id
    code, out, _ = run_cli(capsys, "change", "close", change_id, "--note", "done")
    assert code == 0 and f"change {change_id} closed" in out
    code, out, _ = run_cli(capsys, "change", "list", "--json")
    assert json.loads(out)[0]["state"] == "closed" and json.loads(out)[0]["note"] == "done"
    code, out, err = run_cli(capsys, "change", "close", change_id)
    assert code == 2 and "was already closed" in one_line_error(err)
    code, out, err = run_cli(capsys, "change", "close", "C-deadbeef")
    assert code == 2 and "no change 'C-deadbeef'" in one_line_error(err)


def test_change_list_empty(ledger, capsys):
    code, out, _ = run_cli(capsys, "change", "list")
    assert code == 0 and "no changes" in out
    code, out, _ = run_cli(capsys, "change", "list", "--json")
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize(
    ("hosts", "resources", "reason", "extra", "message"),
    [
        ("pay-01,pay-99", "file:/x", "r", [], "unknown host(s) pay-99: hosts must be in the"),
        ("pay-01", "nginx", "r", [], "resource pattern 'nginx' is not KIND:PATTERN"),
        ("pay-01", "files:/etc/*", "r", [], "resource pattern 'files:/etc/*' is not"),
        ("pay-01", "file:/x", "   ", [], "needs a reason"),
        ("pay-01", "file:/x", "r", ["--until", "2020-01-01"], "is not in the future"),
        ("pay-01", "file:/x", "r", ["--until", "someday"], "--until 'someday' is not a date"),
    ],
)
def test_change_open_bad_input(ledger, inventory, capsys, hosts, resources, reason, extra, message):
    args = ["change", "open", "-i", inventory, "--hosts", hosts, "--resources", resources]
    code, out, err = run_cli(capsys, *args, "--reason", reason, *extra)
    assert code == 2 and out == ""
    assert message in one_line_error(err)
    code, out, _ = run_cli(capsys, "change", "list", "--json")
    assert json.loads(out) == []


def test_change_open_with_a_missing_inventory(ledger, tmp_path, capsys):
    missing = str(tmp_path / "nowhere.yml")
    args = ["change", "open", "-i", missing, "--hosts", "pay-01", "--resources", "*"]
    code, _, err = run_cli(capsys, *args, "--reason", "r")
    assert code == 2 and "does not exist" in one_line_error(err)


def test_until_a_date_runs_through_that_day(ledger, inventory, capsys):
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    args = ["change", "open", "-i", inventory, "--hosts", "pay-01", "--resources", "*"]
    code, _, err = run_cli(capsys, *args, "--reason", "r", "--until", day.isoformat())
    assert code == 0, err
    code, out, _ = run_cli(capsys, "change", "list", "--json")
    assert json.loads(out)[0]["until"].startswith((day + timedelta(days=1)).isoformat())
