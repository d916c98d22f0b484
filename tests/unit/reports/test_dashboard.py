"""The status dashboard (milepost report dashboard), rendered from a real SQLite ledger and a
small inventory, then opened in a real headless Chromium: every system shows its status in
words, the last maintenance and the open glitch show, the charts are SVG with a title, and
secrets never reach the page or status.json."""

import json
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from inventories import (
    PATCH_POLICY,
    PAYMENTS_WINDOW,
    RUC_HOSTS,
    ruc_vendors,
    vendors_yaml,
    write_inventory,
)
from typer.testing import CliRunner

from milepost.cli.report import report_app
from milepost.ledger import package_change, package_facts
from milepost.ledger.chain import format_time
from milepost.ledger.runs import run_ended, run_started, task_result
from milepost.oversight.register_writing import open_glitch, run_glitch_record, update_note
from milepost.patching.advisories import add_advisory

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from browser import DashboardDom, chromium, words  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
CANARY = "CANARY-7f3a9c"

# Three more systems beside the RUC inventory's two, all run by Odometrix.
ODOMETRIX_GROUPS = """\
        mileage_ingest:
          hosts:
            ingest-01: {ansible_host: 127.0.0.1, ansible_port: 1}
          vars: {milepost_vendor: odometrix_devices}
        sftp_exchange:
          hosts:
            sftp-01: {ansible_host: 127.0.0.1, ansible_port: 1}
          vars: {milepost_vendor: odometrix_devices}
        reporting:
          hosts:
            report-01: {ansible_host: 127.0.0.1, ansible_port: 1}
          vars: {milepost_vendor: odometrix_devices}
"""
HOSTS = RUC_HOSTS + ODOMETRIX_GROUPS
ODOMETRIX = """\
name: Odometrix Devices Corp.
role: mileage device vendor
contacts: [{name: Lee Okafor, email: lee@odometrix.example}]
groups: [mileage_ingest, sftp_exchange, reporting]
interfaces: [mileage-file-exchange]
commitments:
  patch_days: {critical: 30, high: 30, medium: 90, low: 180}
  question_response_hours: 72
  interface_availability_percent: 99.0
"""
# Keystone runs accounts-api here, and Odometrix is a third vendor.
VENDORS = ruc_vendors()
VENDORS["keystone_accounts"]["interfaces"] = ["accounts-api"]
VENDORS["odometrix_devices"] = yaml.safe_load(ODOMETRIX)
INTERFACES = """\
milepost_interfaces:
  - {name: payments-api, vendor: harbor_payments, kind: https, url: "https://127.0.0.1:1/"}
  - {name: accounts-api, vendor: keystone_accounts, kind: https, url: "https://127.0.0.1:2/"}
  - {name: mileage-file-exchange, vendor: odometrix_devices, kind: sftp, host: 127.0.0.1}
"""
IMPACT = "Miles reported on one day may appear in accounts a day late."

#: What each system must show (data-status and its words).
EXPECTED = {
    "payment_gateway": ("normal", "Working normally"),
    "account_management": ("overdue", "Security update overdue"),
    "mileage_ingest": ("problem", "Problem reported"),
    "reporting": ("normal", "Working normally"),
    "sftp_exchange": ("unknown", "Not yet checked"),
}


@pytest.fixture
def inventory(tmp_path):
    root = write_inventory(
        tmp_path / "inventory",
        HOSTS,
        systems=(ROOT / "inventory/lab/group_vars/all/systems.yml").read_text(),
        vendors=vendors_yaml(VENDORS),
        interfaces=INTERFACES,
        patch_policy=PATCH_POLICY,
    )
    (root / "group_vars" / "payment_gateway.yml").write_text(PAYMENTS_WINDOW)
    return root


def ago(now: datetime, days: float = 0, hours: float = 0) -> str:
    return format_time(now - timedelta(days=days, hours=hours))


def at(record: dict, when: str) -> dict:
    return {**record, "recorded_at": when}


def interface_check(name: str, status: str, when: str, messages=(), cert_days=None) -> dict:
    body = {"name": name, "kind": "https", "status": status, "messages": list(messages)}
    if cert_days is not None:
        body["cert_days_left"] = cert_days
    return {"kind": "interface_check", "run_id": None, "host": None, "recorded_at": when,
            "body": body}  # fmt: skip


def qc_result(run_id: str, host: str, status: str, when: str, message=None) -> dict:
    body = {"check": "test_service_answers", "status": status, "message": message}
    return {"kind": "qc_result", "run_id": run_id, "host": host, "recorded_at": when,
            "body": body}  # fmt: skip


def maintenance_run(ledger, run_id: str, started: str, hosts: dict, records: list,
                    status: str) -> None:  # fmt: skip
    """A maintenance run: started, a task result per host ({host: status}), the run's other
    records, ended (with per-host counts added by the ledger)."""
    start = run_started(playbook="playbooks/maintain.yml", kind="scheduled", run_id=run_id,
                        started_at=started)  # fmt: skip
    results = [
        at(task_result(run_id, host, "PATCH | Bring the RUC packages to their pinned versions",
                       result, summary=None if result != "failed" else
                       f"health check failed: db_password={CANARY}"), started)
        for host, result in hosts.items()
    ]  # fmt: skip
    ledger.append([start, *results, *records, at(run_ended(run_id, status), started)])


def build_ledger(ledger, now: datetime) -> str:
    """The scenario; returns the id of the open glitch."""
    facts = {
        "pay-01": {"ruc-payment-gateway": "2.3.0", "libssl3": "3.0.11", "openssl": "3.0.11",
                   "tzdata": "2024a"},
        "pay-02": {"ruc-payment-gateway": "2.3.0", "libssl3": "3.0.11", "openssl": "3.0.11",
                   "tzdata": "2024a"},
        "acct-01": {"ruc-account-api": "1.4.0"},
        "ingest-01": {"ruc-mileage-ingest": "3.1.0"},
        "report-01": {"ruc-reporting": "1.0.0"},
    }  # fmt: skip
    ledger.append([at(package_facts("r0", h, p), ago(now, 40)) for h, p in facts.items()])
    # A successful maintenance run 10 days ago: payments and reports updated.
    when = ago(now, 10)
    changes = [
        package_change("r1", host, name, before, after)
        for host in ("pay-01", "pay-02")
        for name, before, after in (
            ("ruc-payment-gateway", "2.3.0", "2.4.0"),
            ("libssl3", "3.0.11", "3.0.13"),
            ("openssl", "3.0.11", "3.0.13"),
            ("tzdata", "2024a", "2024b"),
        )
    ] + [package_change("r1", "report-01", "ruc-reporting", "1.0.0", "1.1.0")]
    qc = [
        qc_result("r1", h, "passed", when)
        for h in ("pay-01", "pay-02", "acct-01", "ingest-01", "report-01")
    ]
    maintenance_run(
        ledger,
        "r1",
        when,
        {h: "changed" for h in ("pay-01", "pay-02", "acct-01", "ingest-01", "report-01")},
        [at(c, when) for c in changes] + qc,
        "successful",
    )
    # A failed run 3 days ago: the mileage update failed its health check, rolled back.
    when = ago(now, 3)
    rollback = [
        at(package_change("r2", "ingest-01", "ruc-mileage-ingest", "3.1.0", "3.2.0"), when),
        at(package_change("r2", "ingest-01", "ruc-mileage-ingest", "3.2.0", "3.1.0"), when),
    ]
    glitch = run_glitch_record(
        "r2",
        f"playbooks/maintain.yml run failed on ingest-01 (failed, rolled back) token: {CANARY}",
        ["ingest-01"],
        text=f"ingest-01: health check failed: password={CANARY}",
    )
    maintenance_run(
        ledger, "r2", when, {"ingest-01": "failed"}, [*rollback, at(glitch, when)], "failed"
    )
    glitch_id = glitch["body"]["glitch_id"]
    update_note(ledger, glitch_id, customer_impact=IMPACT, status="investigating")
    # A glitch on a payments host, resolved: it no longer counts.
    old = open_glitch(ledger, title="Payments slow for an hour", detected_by="monitoring",
                      hosts=["pay-01"])  # fmt: skip
    update_note(ledger, old.note_id, status="resolved", resolution="Cache restarted.",
                cause="A full cache", no_action_reason="It now evicts by itself")  # fmt: skip
    # Interface checks: payments up every month, file exchange slow at last, accounts never.
    ledger.append(
        [interface_check("payments-api", "ok", ago(now, days), cert_days=60 + days)
         for days in (5, 40, 70, 100)]
        + [
            interface_check("mileage-file-exchange", "ok", ago(now, 6)),
            interface_check("mileage-file-exchange", "warning", ago(now, 1),
                            [f"slow login, api_key: {CANARY}"]),
        ]
    )  # fmt: skip
    # A critical advisory published 60 days ago: acct-01 still runs the old version.
    add_advisory(
        ledger,
        advisory_id="RUC-2026-0101",
        packages={"ruc-account-api": "1.5.0"},
        severity="critical",
        published=(now - timedelta(days=60)).date().isoformat(),
        title="Account API session fixation",
    )
    return glitch_id


def render(tmp_path, inventory, *extra) -> Path:
    out = tmp_path / "site" / "status"
    result = CliRunner().invoke(
        report_app, ["dashboard", "--out", str(out), "-i", str(inventory), *extra]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    index = out / "index.html"
    assert result.stdout.strip() == str(index.resolve()) or result.stdout.strip() == str(index)
    return out


def test_the_dashboard_in_a_real_browser(ledger, inventory, tmp_path):
    now = datetime.now(UTC)
    glitch_id = build_ledger(ledger, now)
    out = render(tmp_path, inventory, "--months", "4")
    index = out / "index.html"
    html = index.read_text()
    data = json.loads((out / "status.json").read_text())

    # Self-contained: no script, nothing fetched.
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert not re.search(r"@import|url\(", html)

    dom_text = chromium(tmp_path, "--dump-dom", index.as_uri()).stdout
    dom = DashboardDom()
    dom.feed(dom_text)

    # Structure and accessibility.
    assert re.search(r"<html[^>]*\blang=\"en\"", dom_text)
    assert dom.tags.get("h1") == 1
    assert dom.tags.get("h2", 0) >= 7
    assert any(a.get("tag") == "a" and a.get("href") == "#main" for a in dom.attrs_seen)
    assert dom.tags.get("caption", 0) >= 6
    assert "@media print" in dom_text
    assert "Records verified" in dom_text

    # Every system, its status in words, its last maintenance.
    systems = {k.split("=", 1)[1]: v for k, v in dom.rows.items() if k.startswith("data-system=")}
    assert set(systems) == set(EXPECTED)
    for key, (status, text) in EXPECTED.items():
        assert systems[key]["attrs"]["data-status"] == status, (key, words(systems[key]["text"]))
        assert text in words(systems[key]["text"]), key
    r1_date = (now - timedelta(days=10)).strftime("%B %Y")
    payments = words(systems["payment_gateway"]["text"])
    assert "Payments" in payments and "Completed successfully" in payments and r1_date in payments
    assert "Sunday" in payments  # the next window of its group
    assert "No window set" in words(systems["reporting"]["text"])
    ingest = words(systems["mileage_ingest"]["text"])
    assert "previous version restored" in ingest
    assert "None recorded" in words(systems["sftp_exchange"]["text"])

    # The open glitch with its impact and the system it affects; the resolved one is gone.
    glitches = {k: v for k, v in dom.rows.items() if k.startswith("data-glitch=")}
    assert list(glitches) == [f"data-glitch={glitch_id}"]
    listed = words(glitches[f"data-glitch={glitch_id}"]["text"])
    assert IMPACT in listed and "Mileage reporting" in listed and "Being investigated" in listed

    # Vendor interfaces in words.
    interfaces = {k.split("=", 1)[1]: words(v["text"]) for k, v in dom.rows.items()
                  if k.startswith("data-interface=")}  # fmt: skip
    assert "Up" in interfaces["payments-api"]
    assert "65 days left" in interfaces["payments-api"]  # its certificate, as last checked
    assert "Not known" in interfaces["accounts-api"]  # never checked: no certificate seen
    assert "Slow or warning" in interfaces["mileage-file-exchange"]
    assert "Not used (SSH host key)" in interfaces["mileage-file-exchange"]
    assert "Not yet checked" in interfaces["accounts-api"]

    # Recent changes in plain words.
    page = words(dom_text)
    assert "Software updated: ruc-payment-gateway 2.3.0 → 2.4.0" in page
    assert "Operating-system updates installed (3 packages)" in page
    assert "Rolled back after a failed health check" in page
    assert "1 server waiting for a security update, 1 of them past the deadline" in page
    # Each security update: what it fixes, its deadline, the servers waiting for it.
    updates = {k.split("=", 1)[1]: words(v["text"]) for k, v in dom.rows.items()
               if k.startswith("data-update=")}  # fmt: skip
    assert list(updates) == ["RUC-2026-0101"]
    assert "Account API session fixation" in updates["RUC-2026-0101"]
    assert "Waiting on 1 server" in updates["RUC-2026-0101"]
    assert "Past the deadline" in updates["RUC-2026-0101"]
    assert [u["advisory_id"] for u in data["exposure"]["updates"]] == ["RUC-2026-0101"]

    # Charts: SVG images with a title, and their figures as a table.
    charts = [s for s in dom.svgs if s["attrs"].get("role") == "img"]
    assert len(charts) == 3
    assert all(s["title"] and s["attrs"].get("aria-labelledby") for s in charts)
    assert "Vendor interfaces up, last 4 months: the figures" in page
    assert any(p["percent"] is not None for p in data["availability"])
    assert len(data["availability"]) == 4

    # The same data for other tools.
    assert [s["key"] for s in data["systems"]] == list(systems)
    assert {s["key"]: s["status"] for s in data["systems"]} == {
        k: v[0] for k, v in EXPECTED.items()
    }

    # Secrets never reach the page, the JSON or the browser's DOM.
    for text in (html, (out / "status.json").read_text(), dom_text):
        assert CANARY not in text

    shot = tmp_path / "dashboard.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", index.as_uri())
    assert shot.is_file() and shot.stat().st_size > 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    try:
        artifacts = ROOT / ".milepost" / "test-artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, artifacts / "dashboard.png")
    except OSError:
        pass  # a read-only checkout: the screenshot stays in tmp_path


def test_a_run_under_way_and_an_empty_history(ledger, inventory, tmp_path):
    from milepost.reports import write_dashboard

    now = datetime.now(UTC)
    start = run_started(playbook="playbooks/maintain.yml", kind="scheduled", run_id="r9",
                        started_at=ago(now, hours=1))  # fmt: skip
    ledger.append([start, at(task_result("r9", "report-01", "AUDIT | Check", "ok"), ago(now))])
    # A QC run on its own: acct-01 failed a check (its message holds a secret).
    ledger.append([qc_result("q1", "acct-01", "failed", ago(now, 2),
                             f"connection refused; password={CANARY}")])  # fmt: skip
    index = write_dashboard(tmp_path / "out", [inventory], months=3)
    data = json.loads((index.parent / "status.json").read_text())
    status = {s["key"]: s["status"] for s in data["systems"]}
    assert status["reporting"] == "under-way"
    assert status["payment_gateway"] == "unknown"
    assert status["account_management"] == "problem"
    accounts = next(s for s in data["systems"] if s["key"] == "account_management")
    assert accounts["status_detail"] == "A quality check failed after the last maintenance"
    reporting = next(s for s in data["systems"] if s["key"] == "reporting")
    assert reporting["last_maintenance"]["outcome"] == "In progress"
    html = index.read_text()
    assert 'data-system="reporting" data-status="under-way"' in html
    assert "Maintenance under way" in html
    # No advisories and no checks: the charts say so instead of drawing zeros.
    assert "No known security advisories affect the fleet" in html
    assert html.count(">No data yet</text>") == 3
    assert all(p["percent"] is None for p in data["patch_compliance"] + data["availability"])
    assert len(data["availability"]) == 3
    assert CANARY not in html and CANARY not in json.dumps(data)


def test_an_out_that_is_a_file_is_refused(ledger, inventory, tmp_path):
    target = tmp_path / "index.html"
    target.write_text("not a directory")
    result = CliRunner().invoke(
        report_app, ["dashboard", "--out", str(target), "-i", str(inventory)]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a file" in lines[0] and "Traceback" not in result.output
    assert target.read_text() == "not a directory"


def test_a_missing_inventory_is_refused(ledger, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        report_app, ["dashboard", "--out", str(out), "-i", str(tmp_path / "nowhere")]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0]
    assert not out.exists()


def test_bad_months_are_refused(ledger, inventory, tmp_path):
    result = CliRunner().invoke(
        report_app, ["dashboard", "--out", str(tmp_path / "o"), "-i", str(inventory),
                     "--months", "0"]
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--months" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_security_updates_list_waiting_ones_then_those_installed_lately():
    from datetime import date

    from milepost.patching.advisories import Advisory
    from milepost.patching.exposure import Exposure
    from milepost.reports.status_sections import _update_rows

    def advisory(advisory_id, cves):
        return Advisory(
            advisory_id=advisory_id, source="debian", title=f"{advisory_id} upload",
            severity="high", kev=False, published="2026-11-01", due_date=None,
            packages={"libexpat1": "2.5.0-1+deb12u3"}, vendor_project=None, product=None,
            recorded_at="2026-11-02T00:00:00.000000Z", seq=1, cves=tuple(cves),
        )  # fmt: skip

    def exposure(host, advisory_id, status, closed_at=None, kev=False):
        return Exposure(
            host=host, advisory_id=advisory_id, package="libexpat1", installed="2.5.0-1+deb12u2",
            fixed="2.5.0-1+deb12u3", status=status, severity="high", kev=kev,
            due="2026-12-15", days_left=8, overdue=False, closed_at=closed_at,
        )  # fmt: skip

    advisories = {
        "DEB-expat-1": advisory("DEB-expat-1", ["CVE-2026-0001", "CVE-2026-0002"]),
        "DEB-expat-2": advisory("DEB-expat-2", ["CVE-2026-0003"]),
        "DEB-expat-3": advisory("DEB-expat-3", []),
    }
    items = [
        exposure("acct-01", "DEB-expat-1", "fixed", "2026-12-06T10:00:00Z"),
        exposure("pay-02", "DEB-expat-1", "fixed", "2026-12-07T10:00:00Z"),
        exposure("pay-01", "DEB-expat-1", "fixed"),  # never needed it
        exposure("sftp-01", "DEB-expat-2", "exposed", kev=True),
        exposure("acct-01", "DEB-expat-3", "fixed", "2026-09-01T10:00:00Z"),  # long ago
    ]
    rows = _update_rows(items, advisories, date(2026, 12, 7))
    assert [r.advisory_id for r in rows] == ["DEB-expat-2", "DEB-expat-1"]
    waiting, installed = rows
    assert (waiting.open_hosts, waiting.cves, waiting.kev) == (["sftp-01"], ["CVE-2026-0003"], True)
    assert (installed.open_hosts, installed.closed_hosts) == ([], ["acct-01", "pay-02"])
    assert installed.closed_on == "2026-12-07"
    assert installed.cves == ["CVE-2026-0001", "CVE-2026-0002"]


def test_qc_catch_rate_chart_and_its_table_in_a_real_browser(ledger, inventory, tmp_path):
    """The catch-rate scenario of tests/unit/quality (known figures) on the page: a chart
    with a title and description, its figures as a table, and the checks to look at."""
    from test_catch_rate import NOW, build_catch_ledger

    from milepost.reports import write_dashboard

    build_catch_ledger(ledger)
    index = write_dashboard(tmp_path / "out", [inventory], months=3, ledger=ledger, now=NOW)
    data = json.loads((index.parent / "status.json").read_text())
    assert [m["caught_percent"] for m in data["qc_catch"]["months"]] == [66.7, 50.0, 50.0]

    dom_text = chromium(tmp_path, "--dump-dom", index.as_uri()).stdout
    dom = DashboardDom()
    dom.feed(dom_text)
    [chart] = [s for s in dom.svgs if s["attrs"].get("aria-labelledby", "").startswith(
        "chart-qc-catch")]  # fmt: skip
    assert chart["title"] == "Problems our own checks found first, last 3 months"
    page = words(dom_text)
    assert "Latest: 50% in Jun 2026" in page
    caption = "Problems our own checks found first, last 3 months: the figures"
    table = words(dom_text.split(caption, 1)[1].split("</table>", 1)[0])
    for heading in (
        "Month",
        "Share",
        "Found first",
        "Problems",
        "Reported by people",
        "Mean time to detect",
        "Mean time to correct",
        "Same cause as before",
    ):
        assert f">{heading}</th>" in table
    # A row per month: month, share, found first, problems, reported, detect, correct,
    # recurring.
    cells = re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", table)
    assert cells[8:] == [
        "Apr 2026", "66.7%", "2", "3", "1", "27 hours", "18 hours", "0",
        "May 2026", "50%", "1", "2", "1", "2 hours", "24 hours", "1",
        "Jun 2026", "50%", "1", "2", "1", "-", "-", "2",
    ]  # fmt: skip
    assert "test_old_reliable" in words(dom.rows["data-stale-check=test_old_reliable"]["text"])
    flaky = dom_text.split('data-flaky-check="test_flaky"', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r"<t[hd][^>]*>([^<]*)<", flaky)[:3] == ["test_flaky", "2", "pay-01, pay-02"]
    assert '<time datetime="2026-06-02T00:00:00.000000Z">2026-06-02</time>' in flaky
    assert "data-recurring=G-a0000003 G-b0000003" in dom.rows
