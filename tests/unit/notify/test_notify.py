"""Notices (milepost.notify) end to end with real parts: a real SQLite ledger, a small
inventory, real SMTP servers (aiosmtpd: one plain, one requiring STARTTLS and a login) and a
real HTTP server for webhooks, all on 127.0.0.1. Nothing is mocked."""

import hashlib
import json
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from inventories import PAYMENTS_WINDOW, RUC_HOSTS, ruc_vendors, vendors_yaml, write_inventory

from milepost.cli.main import main
from milepost.ledger import package_change, run_ended, run_started, task_result
from milepost.notify import load_notify_config, notify_completed, notify_emergency, send_notice
from milepost.notify.config import parse_notify_config
from milepost.oversight.register_writing import open_glitch, run_glitch_record, update_note
from milepost.patching.advisories import add_advisory

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from interface_servers import free_port  # noqa: E402
from notice_servers import PROXY_VARIABLES, smtp_server, webhook_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
RUN = "20261201T100000Z-aa11bb22"
EMERGENCY_RUN = "20261202T100000Z-cc33dd44"
SMTP_CANARY = "CANARY-smtp-5f2c9a71"
RUN_CANARY = "CANARY-run-77e1d0c4"
HOOK_TOKEN = "CANARYhooktoken9d8e"
HOSTS_NAMES = ("pay-01", "pay-02", "acct-01", "report-01")

# Program reports (Keystone's too) beside the RUC inventory's two systems. Payments' window
# is group_vars/payment_gateway.yml (PAYMENTS_WINDOW).
REPORTING_GROUP = """\
        reporting:
          hosts:
            report-01: {ansible_host: 127.0.0.1, ansible_port: 1}
          vars:
            milepost_vendor: keystone_accounts
            milepost_window: {cron: "0 3 * * *", duration_minutes: 60, timezone: UTC}
"""
HOSTS = RUC_HOSTS + REPORTING_GROUP
SYSTEMS = """\
milepost_systems:
  payment_gateway:
    name: Payments
    serves: Customers pay their road charge by card or bank transfer.
    impact: Payments may fail for a few minutes; customers can try again later.
  account_management:
    name: Customer accounts
    serves: Customers sign in and see their miles and charges.
    impact: Customers may be unable to sign in for a few minutes.
  reporting:
    name: Program reports
    serves: Produces the program's statements and reports.
    impact: Monthly statements may be produced a few hours late.
"""
# Keystone also runs Program reports; this inventory defines no interfaces.
VENDORS = ruc_vendors()
VENDORS["harbor_payments"]["interfaces"] = []
VENDORS["keystone_accounts"]["groups"].append("reporting")
VAULT = f"vault_milepost_smtp_password: {SMTP_CANARY}\n"


# ------------------------------------------------------------------ servers


@pytest.fixture
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture
def secure_smtp(tmp_path):
    """An SMTP server that requires STARTTLS and a login with the canary password."""
    with smtp_server(tls_dir=tmp_path / "tls", password=SMTP_CANARY) as server:
        yield server


@pytest.fixture
def webhook(monkeypatch):
    """An HTTP server collecting JSON POSTs (answering 200); .url holds a canary token."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with webhook_server() as server:
        server.url = f"{server.base_url}/hooks/{HOOK_TOKEN}?key={HOOK_TOKEN}"
        yield server


# ------------------------------------------------------------------ inventory and ledger


def notify_yaml(
    port: int,
    *,
    webhook_url: str | None = None,
    extra_smtp: str = "",
    templates_dir: str | None = None,
) -> str:
    hook = f'\n      webhook: "{webhook_url}"' if webhook_url else ""
    templates = f"\n  templates_dir: {templates_dir}" if templates_dir else ""
    return f"""\
milepost_notify:
  contact: RUC Operations, ops@ruc.example.gov
  from: RUC Operations <ruc-ops@ruc.example.gov>{templates}
  smtp:
    host: 127.0.0.1
    port: {port}
    timeout_seconds: 10
    attempts: 3
    retry_delay_seconds: 0{extra_smtp}
  webhook: {{attempts: 2, retry_delay_seconds: 0}}
  audiences:
    communications:
      email: [communications@ruc.example.gov]{hook}
    customer_service:
      email: [cs-leads@ruc.example.gov]
    vendors:
      email: []
      vendor_contacts: true
  notices:
    upcoming: [communications, customer_service]
    completed: [communications, customer_service]
    emergency: [communications, customer_service, vendors]
    glitch: [communications]
"""


def notify_inventory(root: Path, notify: str | None) -> Path:
    """The inventory with ``notify`` as milepost_notify (None: not configured)."""
    write_inventory(
        root, HOSTS, systems=SYSTEMS, vendors=vendors_yaml(VENDORS), vault=VAULT, notify=notify
    )
    (root / "group_vars" / "payment_gateway.yml").write_text(PAYMENTS_WINDOW)
    return root


@pytest.fixture
def inventory(tmp_path, smtp):
    return notify_inventory(tmp_path / "inventory", notify_yaml(smtp.port))


def add_run(ledger):
    """A maintenance run: Payments updated (RUC software and OS packages), Customer accounts
    failed and rolled back (its failure message holds a secret), Program reports unchanged;
    the failed run opened a glitch."""
    rollback = "health_gate : PATCH | Restore the versions found before"  # any title
    ledger.append(
        [
            run_started(playbook="playbooks/maintain.yml", kind="scheduled", run_id=RUN),
            task_result(RUN, "pay-01", "PATCH | Upgrade the OS packages", "changed"),
            task_result(RUN, "pay-02", "PATCH | Upgrade the OS packages", "changed"),
            package_change(RUN, "pay-01", "libssl3", "3.0.11-1", "3.0.13-1"),
            package_change(RUN, "pay-01", "openssl", "3.0.11-1", "3.0.13-1"),
            package_change(RUN, "pay-01", "ruc-payment-gateway", "2.3.0", "2.4.0"),
            package_change(RUN, "pay-02", "ruc-payment-gateway", "2.3.0", "2.4.0"),
            package_change(RUN, "acct-01", "ruc-account-api", "1.4.0", "1.5.0"),
            task_result(RUN, "acct-01", "AUDIT | Pass the health gate", "failed",
                        summary=f"health check failed: login password={RUN_CANARY}"),
            task_result(RUN, "acct-01", rollback, "changed", rollback=True),
            package_change(RUN, "acct-01", "ruc-account-api", "1.5.0", "1.4.0"),
            task_result(RUN, "report-01", "AUDIT | Check the service", "ok"),
            run_glitch_record(RUN, "playbooks/maintain.yml run failed on acct-01 (failed,"
                              " acct-01 rolled back)", ["acct-01"],
                              text=f"acct-01: password={RUN_CANARY}"),
            run_ended(RUN, "failed"),
        ]
    )  # fmt: skip


def notice_records(ledger) -> list[dict]:
    with ledger.read_transaction() as conn:
        rows = conn.exec_driver_sql(
            "SELECT run_id, host, body FROM ledger_records WHERE kind = 'notice' ORDER BY seq"
        ).all()
    return [{"run_id": r[0], "host": r[1], "body": json.loads(r[2])} for r in rows]


def whole_ledger(ledger) -> str:
    with ledger.read_transaction() as conn:
        return "\n".join(
            str(row) for row in conn.exec_driver_sql("SELECT * FROM ledger_records").all()
        )


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["notify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def main_text(text: str) -> str:
    """The text above the "for engineers" footer."""
    return text.split("\n--\n")[0]


# ------------------------------------------------------------------ configuration


def test_configuration_is_checked_field_by_field(tmp_path):
    good = {
        "from": "Ops <ops@ruc.example.gov>",
        "smtp": {"host": "smtp.ruc.example.gov", "starttls": True},
        "audiences": {"communications": {"email": ["c@ruc.example.gov"]}},
        "notices": {"completed": ["communications"]},
    }
    config = parse_notify_config(good, root=tmp_path)
    assert config.smtp.port == 587 and config.smtp.retry.attempts == 3
    assert config.notices["completed"] == ("communications",)
    assert config.notices["upcoming"] == ()
    bad_cases = [
        ({"audiences": {"x": {"email": ["a@b.example\r\nBcc: evil@x.example"]}}},
         "milepost_notify.audiences.x.email[0]"),
        ({"from": "Ops <ops@ruc.example.gov>\nBcc: evil@x.example"}, "milepost_notify.from"),
        ({"smtp": {"host": "smtp.example.gov", "starttls": True, "ssl": True}}, "not both"),
        ({"smtp": {"host": "smtp.example.gov", "attempts": 0}}, "milepost_notify.smtp.attempts"),
        ({"smtp": {"host": "smtp.example.gov", "attempts": 11}}, "milepost_notify.smtp.attempts"),
        ({"smtp": {"host": "smtp.example.gov", "username": "u"}}, "smtp.password is missing"),
        ({"audiences": {"c": {"webhook": "ftp://x.example/h"}}}, "audiences.c.webhook"),
        ({"audiences": {"c": {"webhook": "https:///nohost"}}}, "audiences.c.webhook"),
        ({"notices": {"completed": ["nobody"]}}, "notices.completed names 'nobody'"),
        ({"notices": {"weekly": ["communications"]}}, "unknown key(s) 'weekly'"),
        ({"smtp": None}, "milepost_notify.smtp is missing"),
        ({"colour": "red"}, "milepost_notify has unknown key(s) 'colour'"),
    ]  # fmt: skip
    from milepost.errors import UserError

    for change, expected in bad_cases:
        value = {**good, **change}
        with pytest.raises(UserError) as caught:
            parse_notify_config(value, root=tmp_path)
        message = str(caught.value)
        assert expected in message, message
        assert "\n" not in message and "\r" not in message


def test_not_configured_is_none_for_the_api_and_exit_2_for_the_cli(tmp_path, ledger, capsys):
    inventory = notify_inventory(tmp_path / "inventory", None)
    assert load_notify_config([inventory]) is None
    add_run(ledger)
    assert notify_completed(RUN, [inventory]) is None
    code, out, err = cli(capsys, "completed", "--run-id", RUN, "-i", str(inventory))
    assert code == 2
    assert err.startswith("milepost: error: milepost_notify is not set in the inventory")
    assert len(err.strip().splitlines()) == 1
    assert notice_records(ledger) == []


# ------------------------------------------------------------------ completed


def test_completed_notice_arrives_by_mail_in_plain_words_and_is_recorded(
    ledger, inventory, smtp, capsys
):
    add_run(ledger)
    code, out, err = cli(capsys, "completed", "--run-id", RUN, "-i", str(inventory))
    assert code == 1 - 1, err
    assert "communications: email to 1 recipient: sent" in out
    assert "customer_service: email to 1 recipient: sent" in out
    assert len(smtp.messages) == 2
    first = smtp.parsed(0)
    assert smtp.messages[0]["to"] == ["communications@ruc.example.gov"]
    assert smtp.messages[0]["from"] == "ruc-ops@ruc.example.gov"
    assert first["From"] == "RUC Operations <ruc-ops@ruc.example.gov>"
    assert first["Message-ID"] and first["Date"]
    assert "completed with problems" in first["Subject"]
    text = smtp.text(0)
    body = main_text(text)
    assert (
        "Payments: software updated (ruc-payment-gateway 2.3.0 to 2.4.0); security and"
        " operating-system updates installed (2 packages)" in text
    )
    assert "Payments may fail for a few minutes" in body
    assert "Customer accounts: the update did not pass its checks" in body
    assert "Customers may be unable to sign in" in body
    assert "No change was needed: Program reports." in body
    assert "payment_gateway" not in text and "account_management" not in text
    for host in HOSTS_NAMES:
        assert host not in text and host not in first["Subject"]
    assert RUN in text.split("\n--\n")[1]  # the engineers' footer names the run
    assert RUN_CANARY not in text

    records = notice_records(ledger)
    assert len(records) == 2
    record = records[0]
    assert record["run_id"] == RUN and record["host"] is None
    body_fields = record["body"]
    assert body_fields["notice"] == "completed"
    assert body_fields["audience"] == "communications"
    assert body_fields["channel"] == "email"
    assert body_fields["recipients"] == ["communications@ruc.example.gov"]
    assert body_fields["result"] == "sent" and body_fields["attempts"] == 1
    assert body_fields["subject"] == first["Subject"]
    assert body_fields["body_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert body_fields["about"]["run_id"] == RUN
    assert body_fields["operator"] == "alice"
    assert "reason" not in body_fields


def test_unknown_run_and_unknown_audience_are_exit_2(ledger, inventory, smtp, capsys):
    add_run(ledger)
    code, _, err = cli(capsys, "completed", "--run-id", "20990101T000000Z-00000000",
                       "-i", str(inventory))  # fmt: skip
    assert code == 2 and "no run '20990101T000000Z-00000000' in the ledger" in err
    code, _, err = cli(capsys, "completed", "--run-id", RUN, "--audience", "press",
                       "-i", str(inventory))  # fmt: skip
    assert code == 2
    assert err.strip() == (
        "milepost: error: --audience 'press' is not one of: communications, customer_service,"
        " vendors"
    )
    assert smtp.messages == [] and notice_records(ledger) == []


def test_webhook_receives_json_and_only_its_origin_is_recorded(
    tmp_path, ledger, smtp, webhook, capsys
):
    inventory = notify_inventory(
        tmp_path / "inventory", notify_yaml(smtp.port, webhook_url=webhook.url)
    )
    add_run(ledger)
    code, out, err = cli(capsys, "completed", "--run-id", RUN, "--audience", "communications",
                         "-i", str(inventory))  # fmt: skip
    assert code == 0, err
    assert len(webhook.received) == 1
    posted = webhook.received[0]
    assert posted["type"] == "application/json"
    payload = posted["json"]
    assert payload["notice"] == "completed" and payload["audience"] == "communications"
    assert payload["about"]["run_id"] == RUN
    assert "Payments" in payload["text"] and payload["subject"]
    assert smtp.text(0) == payload["text"]
    port = webhook.server_address[1]
    records = notice_records(ledger)
    hooks = [r["body"] for r in records if r["body"]["channel"] == "webhook"]
    assert len(hooks) == 1 and hooks[0]["result"] == "sent"
    assert hooks[0]["recipients"] == [f"http://127.0.0.1:{port}"]
    assert HOOK_TOKEN not in whole_ledger(ledger)
    assert HOOK_TOKEN not in out
    assert f"communications: webhook to http://127.0.0.1:{port}: sent" in out


def test_unreachable_mail_server_is_tried_as_configured_then_recorded_failed(
    tmp_path, ledger, capsys
):
    closed = free_port()  # nothing listens there any more
    inventory = notify_inventory(tmp_path / "inventory", notify_yaml(closed))
    add_run(ledger)
    code, out, err = cli(capsys, "completed", "--run-id", RUN, "-i", str(inventory))
    assert code == 1
    assert (
        "communications: email to 1 recipient: failed: connection to the mail server"
        f" 127.0.0.1:{closed} refused" in out
    )
    assert err.startswith(
        "milepost: error: the completed notice to communications by email"
        " failed after 3 attempt(s): connection to the mail server"
    )
    records = notice_records(ledger)
    assert [r["body"]["result"] for r in records] == ["failed", "failed"]
    assert all(r["body"]["attempts"] == 3 for r in records)
    assert "refused" in records[0]["body"]["reason"]


def test_a_run_is_never_failed_by_its_notice(tmp_path, ledger, capsys):
    inventory = notify_inventory(tmp_path / "inventory", notify_yaml(free_port()))
    add_run(ledger)
    outcome = notify_completed(RUN, [inventory])
    assert outcome is not None and not outcome.ok
    assert all(d.attempts == 3 for d in outcome.failed)
    err = capsys.readouterr().err
    assert "milepost: warning: the completed notice to communications (email) failed" in err


# ------------------------------------------------------------------ templates


def copy_templates(tmp_path: Path) -> Path:
    folder = tmp_path / "my-notices"
    shutil.copytree(ROOT / "notices", folder)
    return folder


def test_template_syntax_error_is_exit_2_naming_file_and_line(tmp_path, ledger, smtp, capsys):
    folder = copy_templates(tmp_path)
    lines = (folder / "completed.txt.j2").read_text().splitlines()
    lines[6] = "Broken: {{ run.id }"
    (folder / "completed.txt.j2").write_text("\n".join(lines) + "\n")
    inventory = notify_inventory(
        tmp_path / "inventory", notify_yaml(smtp.port, templates_dir=str(folder))
    )
    add_run(ledger)
    code, out, err = cli(capsys, "completed", "--run-id", RUN, "-i", str(inventory))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"{folder / 'completed.txt.j2'} line 7: " in err
    assert "fix the template" in err and "Traceback" not in err
    assert smtp.messages == [] and notice_records(ledger) == []
    # For a run the bad template is a warning, never a failure.
    assert notify_completed(RUN, [inventory]) is None
    assert "completed.txt.j2 line 7" in capsys.readouterr().err


def test_undefined_variable_in_template_is_exit_2_naming_the_line(tmp_path, ledger, smtp, capsys):
    folder = copy_templates(tmp_path)
    text = (
        (folder / "glitch.txt.j2")
        .read_text()
        .replace(
            "What happened: {{ glitch.title }}", "What happened: {{ glitch.title }} {{ nonsense }}"
        )
    )
    (folder / "glitch.txt.j2").write_text(text)
    line = text.splitlines().index("What happened: {{ glitch.title }} {{ nonsense }}") + 1
    inventory = notify_inventory(
        tmp_path / "inventory", notify_yaml(smtp.port, templates_dir=str(folder))
    )
    glitch = open_glitch(ledger, title="Statements are late", detected_by="staff")
    code, _, err = cli(capsys, "glitch", "--note", glitch.note_id, "-i", str(inventory))
    assert code == 2
    assert f"glitch.txt.j2 line {line}: 'nonsense' is undefined" in err
    assert smtp.messages == []


def test_missing_subject_line_is_exit_2(tmp_path, ledger, smtp, capsys):
    folder = copy_templates(tmp_path)
    path = folder / "glitch.txt.j2"
    path.write_text(path.read_text().replace("Subject: ", "Topic: "))
    inventory = notify_inventory(
        tmp_path / "inventory", notify_yaml(smtp.port, templates_dir=str(folder))
    )
    glitch = open_glitch(ledger, title="Statements are late", detected_by="staff")
    code, _, err = cli(capsys, "glitch", "--note", glitch.note_id, "-i", str(inventory))
    assert code == 2 and "glitch.txt.j2 line 1: the first line must be 'Subject: ...'" in err


# ------------------------------------------------------------------ upcoming


def test_upcoming_window_is_announced_once_per_audience(ledger, inventory, smtp):
    at = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # a Saturday
    first = send_notice("upcoming", sources=[inventory], systems=["payment_gateway"], at=at)
    assert first.ok and [d.audience for d in first.deliveries] == [
        "communications", "customer_service"
    ]  # fmt: skip
    text = smtp.text(0)
    assert "Payments" in text
    assert "Sunday 6 December 2026, 02:00 PST, until 04:00 PST" in text
    assert "Payments may fail for a few minutes" in text
    assert "Planned maintenance: Payments" in smtp.parsed(0)["Subject"]
    records = notice_records(ledger)
    assert records[0]["body"]["about"]["windows"] == ["payment_gateway@2026-12-06T02:00-08:00"]
    assert records[0]["run_id"] is None

    again = send_notice("upcoming", sources=[inventory], systems=["payment_gateway"], at=at)
    assert again.deliveries == [] and again.ok
    assert again.skipped[0].startswith("communications: already told about payment_gateway@")
    assert len(smtp.messages) == 2 and len(notice_records(ledger)) == 2

    # A week later the next window is new.
    later = send_notice("upcoming", sources=[inventory], systems=["payment_gateway"],
                        at=at + timedelta(days=7))  # fmt: skip
    assert len(later.deliveries) == 2


def test_upcoming_from_the_cli_and_work_starting_now(ledger, inventory, smtp, capsys):
    code, out, err = cli(capsys, "upcoming", "--within", "48", "--system", "reporting",
                         "-i", str(inventory))  # fmt: skip
    assert code == 0, err
    assert "communications: email to 1 recipient: sent" in out
    sent = len(smtp.messages)
    assert "Program reports" in smtp.text(0)
    code, out, err = cli(capsys, "upcoming", "--system", "reporting", "-i", str(inventory))
    assert code == 0 and "already told about reporting@" in out
    assert len(smtp.messages) == sent
    code, out, err = cli(capsys, "upcoming", "--system", "billing", "-i", str(inventory))
    assert code == 2 and "--system 'billing' is not one of: payment_gateway" in err

    from milepost.notify import notify_upcoming_now

    outcome = notify_upcoming_now(RUN, ["acct-01"], [inventory])
    assert outcome is not None and outcome.ok and len(outcome.deliveries) == 2
    text = smtp.text(len(smtp.messages) - 1)
    assert "starting now" in text and "Customer accounts" in text
    assert "When: starting now, until the work is done" in text and RUN in text
    assert notice_records(ledger)[-1]["run_id"] == RUN

    # Inside its window, the work is announced until the window closes.
    inside = send_notice("upcoming", sources=[inventory], hosts=["report-01"], now=True,
                         dry_run=True, at=datetime(2026, 12, 5, 3, 30, tzinfo=UTC))  # fmt: skip
    assert "When: starting now, until 04:00 UTC" in inside.deliveries[0].text


def test_dry_run_prints_and_neither_sends_nor_records(ledger, inventory, smtp, capsys):
    add_run(ledger)
    code, out, _ = cli(capsys, "completed", "--run-id", RUN, "--dry-run", "-i", str(inventory))
    assert code == 0
    assert "dry run: not sent" in out and "Subject: " in out and "Payments" in out
    assert smtp.messages == [] and notice_records(ledger) == []


# ------------------------------------------------------------------ emergency and glitch


def test_emergency_notice_at_start_and_end(ledger, inventory, smtp, capsys):
    add_advisory(
        ledger,
        advisory_id="CVE-2026-12345",
        packages={"ruc-payment-gateway": "2.4.1"},
        severity="critical",
        title="Payment gateway accepts forged callbacks",
    )
    patch = {"advisory_id": "CVE-2026-12345", "packages": {"ruc-payment-gateway": "2.4.1"},
             "reason": "KEV", "operator": "alice", "limit": None, "canary": 1,
             "candidates": ["pay-01", "pay-02"], "excepted": []}  # fmt: skip
    ledger.append(
        [
            run_started(
                playbook="playbooks/emergency_patch.yml", kind="emergency", run_id=EMERGENCY_RUN
            ),  # fmt: skip
            {"kind": "emergency_patch", "run_id": EMERGENCY_RUN, "host": None, "body": patch},
        ]
    )
    start = notify_emergency(EMERGENCY_RUN, [inventory])
    assert start is not None and start.ok
    assert [d.audience for d in start.deliveries] == [
        "communications", "customer_service", "vendors"
    ]  # fmt: skip
    vendors = smtp.messages[2]
    assert vendors["to"] == ["dana@harbor.example"]  # the vendor operating Payments
    text = smtp.text(0)
    assert "Urgent security fix starting now: Payments" in smtp.parsed(0)["Subject"]
    assert "critical security problem (CVE-2026-12345: Payment gateway accepts forged" in text
    assert "Payments: Payments may fail" in text
    assert notice_records(ledger)[0]["body"]["about"]["stage"] == "start"

    result = {
        "advisory_id": "CVE-2026-12345",
        "status": "failed",
        "patched": ["pay-01"],
        "rolled_back": ["pay-02"],
        "failed": [],
        "unreachable": [],
        "not_exposed": [],
        "still_exposed": ["pay-02"],
        "reasons": {"pay-02": "health gate failed"},
    }
    ledger.append([run_ended(EMERGENCY_RUN, "failed"),
                   {"kind": "emergency_result", "run_id": EMERGENCY_RUN, "host": None,
                    "body": result}])  # fmt: skip
    end = notify_emergency(EMERGENCY_RUN, [inventory])
    assert end is not None and end.ok
    text = smtp.text(3)
    assert "finished with problems" in smtp.parsed(3)["Subject"]
    assert "Payments: rolled back, still exposed." in text
    for host in HOSTS_NAMES:
        assert host not in text
    assert notice_records(ledger)[-1]["body"]["about"]["stage"] == "end"

    add_run(ledger)
    code, _, err = cli(capsys, "emergency", "--run-id", RUN, "-i", str(inventory))
    assert code == 2 and "is not an emergency patch" in err


def test_glitch_notice_and_unknown_glitch(ledger, inventory, smtp, capsys):
    glitch = open_glitch(
        ledger,
        title="Statements late after acct-01 restart",
        detected_by="qc",
        hosts=["acct-01"],
        customer_impact="Statements arrive a day late.",
    )
    update_note(ledger, glitch.note_id, status="investigating",
                comment="Keystone is re-running the statement job.")  # fmt: skip
    code, out, err = cli(capsys, "glitch", "--note", glitch.note_id, "-i", str(inventory))
    assert code == 0, err
    assert len(smtp.messages) == 1  # glitch notices go to communications only
    text = smtp.text(0)
    assert "Statements late after a Customer accounts server restart" in text
    assert "it is being investigated" in text
    assert "Customer accounts: Statements arrive a day late." in text
    assert "What is being done: Keystone is re-running the statement job." in text
    assert "acct-01" not in text
    assert notice_records(ledger)[0]["body"]["about"]["note_id"] == glitch.note_id
    code, _, err = cli(capsys, "glitch", "--note", "G-00000000", "-i", str(inventory))
    assert code == 2 and "no glitch 'G-00000000' in the registers" in err


# ------------------------------------------------------------------ secrets


def test_starttls_login_and_canary_secrets_never_leave(tmp_path, ledger, secure_smtp, webhook,
                                                       capsys):  # fmt: skip
    extra = (
        "\n    starttls: true\n    username: milepost\n"
        '    password: "{{ vault_milepost_smtp_password }}"\n'
        f"    ca_file: {secure_smtp.ca_file}"
    )
    inventory = notify_inventory(
        tmp_path / "inventory",
        notify_yaml(secure_smtp.port, webhook_url=webhook.url, extra_smtp=extra),
    )
    add_run(ledger)
    glitch = open_glitch(ledger, title="Mail relay login failing", detected_by="staff",
                         run_id=RUN, hosts=["acct-01"])  # fmt: skip
    update_note(ledger, glitch.note_id, comment=f"Rotated {SMTP_CANARY}; old one was"
                f" password={RUN_CANARY} token: {HOOK_TOKEN}")  # fmt: skip

    code, out, err = cli(capsys, "glitch", "--note", glitch.note_id, "-i", str(inventory))
    assert code == 0, err
    code, out2, err2 = cli(capsys, "completed", "--run-id", RUN, "-i", str(inventory))
    assert code == 0, err2
    assert secure_smtp.logins and all(ok and tls for _, ok, tls in secure_smtp.logins)
    assert len(secure_smtp.messages) == 3
    assert all(m["tls"] and m["authenticated"] for m in secure_smtp.messages)
    glitch_text = secure_smtp.text(0)
    assert "What is being done: Rotated ***; old one was password=*** token: ***" in glitch_text

    received = [m["content"].decode("utf-8", "replace") for m in secure_smtp.messages]
    received += [secure_smtp.text(i) for i in range(3)]
    received += [json.dumps(w["json"]) for w in webhook.received]
    notices = json.dumps(notice_records(ledger))
    for canary in (SMTP_CANARY, RUN_CANARY, HOOK_TOKEN):
        for text in [*received, notices, out, out2, err, err2]:
            assert canary not in text
    assert SMTP_CANARY not in whole_ledger(ledger).replace(f"Rotated {SMTP_CANARY}", "")


def test_wrong_password_is_a_failed_delivery_without_the_password(
    tmp_path, ledger, secure_smtp, capsys
):
    extra = (
        "\n    starttls: true\n    username: milepost\n    password: wrong-CANARY-pw-31\n"
        f"    ca_file: {secure_smtp.ca_file}"
    )
    inventory = notify_inventory(
        tmp_path / "inventory", notify_yaml(secure_smtp.port, extra_smtp=extra)
    )
    add_run(ledger)
    code, out, err = cli(capsys, "completed", "--run-id", RUN, "--audience", "communications",
                         "-i", str(inventory))  # fmt: skip
    assert code == 1
    body = notice_records(ledger)[0]["body"]
    assert body["result"] == "failed" and body["attempts"] == 1  # a refused login is final
    assert "refused the login" in body["reason"]
    assert "wrong-CANARY-pw-31" not in out + err + json.dumps(body)
    assert secure_smtp.messages == []


def test_vault_values_are_masked_wherever_a_template_puts_them(tmp_path, ledger, smtp):
    canary = "CANARY-vault-phone-4411"
    notify = notify_yaml(smtp.port).replace(
        "contact: RUC Operations, ops@ruc.example.gov",
        'contact: "RUC Operations, {{ vault_ruc_ops_phone }}"',
    )
    inventory = notify_inventory(tmp_path / "inventory", notify)
    (inventory / "group_vars" / "all" / "vault.yml").write_text(
        f"{VAULT}vault_ruc_ops_phone: {canary}\n"
    )
    outcome = send_notice("upcoming", sources=[inventory], systems=["payment_gateway"],
                          dry_run=True, at=datetime(2026, 12, 5, 12, 0, tzinfo=UTC))  # fmt: skip
    assert outcome.deliveries and all(d.result == "preview" for d in outcome.deliveries)
    text = outcome.deliveries[0].text
    assert "Questions: RUC Operations, ***" in text and canary not in text
    assert notice_records(ledger) == [] and smtp.messages == []

    nothing = send_notice("upcoming", sources=[inventory], systems=["payment_gateway"],
                          within_hours=1, at=datetime(2026, 12, 5, 12, 0, tzinfo=UTC))  # fmt: skip
    assert nothing.ok and nothing.deliveries == []
    assert nothing.skipped == ["nothing to send: no maintenance window opens within 1 hour"]


def test_values_of_a_vault_encrypted_file_are_masked(tmp_path, smtp):
    """A variable read from a file encrypted as a whole (ansible-vault encrypt
    group_vars/all/vault.yml), whatever its name, is masked in a notice; the file is read
    with the password file ansible-playbook would use. A fresh process: Ansible reads its
    vault settings once per process."""
    import os
    import subprocess

    from ansible.parsing.vault import VaultLib, VaultSecret

    canary = "CANARY-whole-file-vault-5127"
    notify = notify_yaml(smtp.port).replace(
        "contact: RUC Operations, ops@ruc.example.gov",
        'contact: "RUC Operations, {{ ruc_ops_phone }}"',
    )
    inventory = notify_inventory(tmp_path / "inventory", notify)
    vault_file = inventory / "group_vars" / "all" / "vault.yml"
    lib = VaultLib([("default", VaultSecret(b"notice vault"))])
    vault_file.write_bytes(lib.encrypt(f"{VAULT}ruc_ops_phone: {canary}\n"))
    password_file = tmp_path / "vault-pass"
    password_file.write_text("notice vault\n")
    proc = subprocess.run(
        [sys.executable, "-m", "milepost.cli.main", "notify", "upcoming", "--now", "--system",
         "payment_gateway", "--dry-run", "-i", str(inventory)],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "MILEPOST_ROOT": str(ROOT),
            "MILEPOST_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
            "ANSIBLE_VAULT_PASSWORD_FILE": str(password_file),
        },
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Questions: RUC Operations, ***" in proc.stdout, proc.stdout
    assert canary not in proc.stdout + proc.stderr


def test_a_notice_record_is_spooled_when_the_ledger_cannot_be_written(
    ledger, capsys, monkeypatch, tmp_path
):
    from milepost.ledger import spool

    record = {
        "kind": "notice",
        "run_id": RUN,
        "host": None,
        "body": {"notice": "completed", "audience": "communications", "result": "sent"},
    }
    # The configured ledger is out of reach (its directory would have to be a file).
    (tmp_path / "not-a-directory").write_text("")
    monkeypatch.setenv(
        "MILEPOST_LEDGER_URL", f"sqlite:///{tmp_path / 'not-a-directory' / 'ledger.sqlite'}"
    )
    assert spool.append_or_spool([record], "the completed notice record") is False
    assert "the completed notice record spooled: `milepost ledger replay` writes them in" in (
        capsys.readouterr().err
    )
    files = spool.pending()
    assert len(files) == 1
    spool.replay(ledger)
    assert notice_records(ledger)[0]["body"]["audience"] == "communications"


def test_a_name_that_does_not_exist_is_not_tried_again_and_a_resolver_failure_is() -> None:
    """EAI_NONAME: the DNS answered that the name does not exist, a retry a few seconds
    later cannot find it; EAI_AGAIN: the resolver did not answer, a retry may."""
    import socket

    from milepost.notify.delivery import connection_reason

    gone = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    busy = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert connection_reason(gone, "the mail server smtp.example:587", 10) == (
        "the mail server smtp.example:587 could not be found (Name or service not known)",
        False,
    )
    assert connection_reason(busy, "the mail server smtp.example:587", 10)[1] is True
    assert connection_reason(ConnectionRefusedError(), "the mail server x", 10)[1] is True


def test_each_run_outside_a_window_is_announced_even_two_in_one_minute(
    ledger, inventory, smtp
) -> None:
    """Work starting now with no window open: its opening is its run's start, to the
    second; a second run in the same minute is announced too. Inside a window the opening
    is the window's, announced once (test_upcoming_from_the_cli_and_work_starting_now)."""
    first = send_notice("upcoming", sources=[inventory], hosts=["acct-01"], now=True,
                        at=datetime(2026, 12, 7, 3, 16, 16, tzinfo=UTC))  # fmt: skip
    again = send_notice("upcoming", sources=[inventory], hosts=["acct-01"], now=True,
                        at=datetime(2026, 12, 7, 3, 16, 57, tzinfo=UTC))  # fmt: skip
    assert first.ok and again.ok
    assert len(first.deliveries) == len(again.deliveries) > 0
    keys = [r["body"]["about"]["windows"] for r in notice_records(ledger)]
    assert ["account_management@2026-12-07T03:16:16+00:00"] in keys
    assert ["account_management@2026-12-07T03:16:57+00:00"] in keys
