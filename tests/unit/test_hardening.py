"""Safety invariant 7 outside the ledger: no SMTP login and no webhook in the clear unless a
lab says so explicitly (and then every such delivery is recorded and printed as insecure),
one CSV writer that escapes formulas, and QC connecting with host key checking on."""

from __future__ import annotations

import contextlib
import csv
import http.server
import io
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from test_notify import RUN, add_run, cli, notice_records, notify_inventory, notify_yaml

from milepost.ansible.redaction import Redactor
from milepost.errors import UserError
from milepost.notify.config import RetryPolicy, SmtpConfig, parse_notify_config
from milepost.notify.webhook import post_notice
from milepost.quality import qc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from interface_servers import free_port  # noqa: E402
from notice_servers import PROXY_VARIABLES  # noqa: E402

PASSWORD = "CANARY-plain-pw-8812"
GOOD = {
    "from": "Ops <ops@ruc.example.gov>",
    "audiences": {"communications": {"email": ["c@ruc.example.gov"]}},
}


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------ SMTP


@pytest.mark.parametrize(
    "smtp",
    [
        {"host": "smtp.example.gov", "username": "u", "password": "p"},
        {"host": "smtp.example.gov", "port": 587, "username": "u", "password": "p"},
        {"host": "smtp.example.gov", "username": "u", "password": "p", "insecure": False},
    ],
)
def test_a_login_without_tls_is_bad_input(tmp_path, smtp):
    with pytest.raises(UserError) as caught:
        parse_notify_config({**GOOD, "smtp": smtp}, root=tmp_path)
    message = str(caught.value)
    assert message.startswith("milepost_notify.smtp:") and "\n" not in message
    assert "starttls: true" in message and "ssl: true" in message and "insecure" in message


def test_tls_or_no_login_or_the_lab_switch_is_accepted(tmp_path):
    for smtp in (
        {"host": "smtp.example.gov", "starttls": True, "username": "u", "password": "p"},
        {"host": "smtp.example.gov", "ssl": True, "username": "u", "password": "p"},
        {"host": "relay.example.gov"},  # an internal relay without a login, as before
    ):
        config = parse_notify_config({**GOOD, "smtp": smtp}, root=tmp_path)
        assert config.smtp is not None and not config.smtp.insecure
    lab = {"host": "127.0.0.1", "username": "u", "password": "p", "insecure": True}
    config = parse_notify_config({**GOOD, "smtp": lab}, root=tmp_path)
    assert config.smtp is not None and config.smtp.insecure


def test_an_smtp_config_made_in_code_cannot_log_in_without_tls():
    with pytest.raises(UserError, match="needs TLS"):
        SmtpConfig("h", 25, False, False, "u", "p", RetryPolicy())


def test_a_login_without_tls_is_exit_2_at_the_cli(tmp_path, ledger, capsys):
    extra = f"\n    username: milepost\n    password: {PASSWORD}"
    inventory = notify_inventory(tmp_path / "inventory", notify_yaml(1, extra_smtp=extra))
    add_run(ledger)
    code, out, err = cli(capsys, "completed", "--run-id", RUN, "-i", str(inventory))
    assert code == 2, out + err
    line = one_line(err)
    assert "milepost_notify.smtp" in line and "starttls" in line
    assert PASSWORD not in out + err
    assert notice_records(ledger) == []


class _Plain:
    """An SMTP server that accepts a login without TLS (what a lab mail catcher does)."""

    def __init__(self) -> None:
        self.logins: list[tuple[bool, bool]] = []
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"

    def authenticator(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
        self.logins.append((ok, session.ssl is not None))
        return AuthResult(success=ok, handled=False)


@contextlib.contextmanager
def plain_login_server() -> Iterator[tuple[_Plain, int]]:
    handler = _Plain()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=handler.authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def test_the_lab_switch_sends_in_the_clear_and_records_and_prints_insecure(
    tmp_path, ledger, capsys
):
    with plain_login_server() as (server, port):
        extra = f"\n    username: milepost\n    password: {PASSWORD}\n    insecure: true"
        inventory = notify_inventory(tmp_path / "inventory", notify_yaml(port, extra_smtp=extra))
        add_run(ledger)
        code, out, err = cli(capsys, "completed", "--run-id", RUN, "--audience",
                             "communications", "-i", str(inventory))  # fmt: skip
    assert code == 0, err
    assert server.logins == [(True, False)] and len(server.messages) == 1
    [record] = notice_records(ledger)
    body = record["body"]
    assert body["result"] == "sent" and body["insecure"] is True
    assert "INSECURE" in body["reason"]
    assert "INSECURE" in out
    assert PASSWORD not in out + err + json.dumps(body)


# ------------------------------------------------------------------ webhook


@pytest.mark.parametrize(
    "url",
    [
        "https://chat.example.gov/hooks/t",
        "http://127.0.0.1:8080/hooks/t",
        "http://localhost/hooks/t",
        "http://[::1]:9000/hooks/t",
    ],
)
def test_webhooks_over_https_or_to_this_machine_are_accepted(tmp_path, url):
    value = {"audiences": {"chat": {"webhook": url}}}
    config = parse_notify_config(value, root=tmp_path)
    assert config.audiences["chat"].webhook == url and not config.webhook_insecure


@pytest.mark.parametrize(
    "url", ["http://chat.example.gov/hooks/t", "http://intranet.example/h", "http://127.0.0.2:81/h"]
)
def test_a_plain_http_webhook_elsewhere_is_bad_input_unless_the_lab_switch_is_set(tmp_path, url):
    value = {"audiences": {"chat": {"webhook": url}}}
    with pytest.raises(UserError) as caught:
        parse_notify_config(value, root=tmp_path)
    message = str(caught.value)
    assert message.startswith("milepost_notify.audiences.chat.webhook is plain http")
    assert "webhook.insecure: true" in message and "hooks/t" not in message
    config = parse_notify_config({**value, "webhook": {"insecure": True}}, root=tmp_path)
    assert config.webhook_insecure


@contextlib.contextmanager
def http_receiver(host: str) -> Iterator[tuple[list[dict], int]]:
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            size = int(self.headers.get("Content-Length") or 0)
            received.append(json.loads(self.rfile.read(size)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield received, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_proxy(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_post_notice_never_sends_plain_http_elsewhere_unless_allowed(no_proxy):
    policy = RetryPolicy(attempts=1, retry_delay_seconds=0)
    with http_receiver("127.0.0.2") as (received, port):
        url = f"http://127.0.0.2:{port}/hooks/tok"
        refused = post_notice(url, {"a": 1}, policy=policy, redactor=Redactor())
        assert not refused.ok and refused.attempts == 0 and "plain http" in str(refused.reason)
        assert received == []
        sent = post_notice(url, {"a": 1}, policy=policy, redactor=Redactor(), allow_insecure=True)
        assert sent.ok and "INSECURE" in str(sent.reason) and received == [{"a": 1}]


def test_a_plain_http_webhook_is_exit_2_or_with_the_switch_recorded_insecure(
    tmp_path, ledger, capsys, no_proxy
):
    from test_notify import smtp_server

    add_run(ledger)
    with smtp_server() as smtp, http_receiver("127.0.0.2") as (received, port):
        url = f"http://127.0.0.2:{port}/hooks/tok"
        notify = notify_yaml(smtp.port, webhook_url=url)
        inventory = notify_inventory(tmp_path / "inventory", notify)
        code, out, err = cli(capsys, "completed", "--run-id", RUN, "--audience",
                             "communications", "-i", str(inventory))  # fmt: skip
        assert code == 2 and "plain http" in one_line(err) and "tok" not in err
        assert received == [] and notice_records(ledger) == []

        lab = notify.replace("webhook: {attempts: 2,", "webhook: {insecure: true, attempts: 2,")
        inventory = notify_inventory(tmp_path / "inventory", lab)
        code, out, err = cli(capsys, "completed", "--run-id", RUN, "--audience",
                             "communications", "-i", str(inventory))  # fmt: skip
    assert code == 0, err
    assert len(received) == 1
    hooks = [r["body"] for r in notice_records(ledger) if r["body"]["channel"] == "webhook"]
    mails = [r["body"] for r in notice_records(ledger) if r["body"]["channel"] == "email"]
    assert hooks[0]["result"] == "sent" and hooks[0]["insecure"] is True
    assert "insecure" not in mails[0]  # a plain relay without a login, as before
    assert "INSECURE" in out


# ------------------------------------------------------------------ CSV


def test_register_csv_goes_through_the_one_csv_writer(ledger, monkeypatch):
    import milepost.ledger.export as ledger_export
    from milepost.oversight.register_export import export
    from milepost.oversight.register_reading import notes
    from milepost.oversight.register_writing import add_note

    for start in ("=", "+", "-", "@"):
        add_note(
            ledger,
            "lesson",
            title=f"{start}cmd|'/c calc'!A1",
            text=f"{start}1+1",
            category="technology",
        )
    seen: list[object] = []
    real = ledger_export.csv_cell

    def spy(value: object) -> object:
        seen.append(value)
        return real(value)

    monkeypatch.setattr(ledger_export, "csv_cell", spy)
    out = io.StringIO()
    assert export(notes(ledger, type="lesson"), "csv", out) == 4
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert seen, "the register export did not use milepost.ledger.export.csv_writer"
    for row in rows:
        assert row["title"].startswith("'") and row["text"].startswith("'"), row
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row


# ------------------------------------------------------------------ QC connection


def test_qc_env_keeps_host_key_checking_on(tmp_path):
    base = {"PATH": "/usr/bin", "ANSIBLE_HOST_KEY_CHECKING": "False"}
    env = qc.qc_env(tmp_path, tmp_path / "r.jsonl", base)
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_CONFIG"] == str(tmp_path / "ansible.cfg")
    for name, value in (
        ("ANSIBLE_SSH_COMMON_ARGS", "-o StrictHostKeyChecking=no"),
        ("ANSIBLE_SSH_EXTRA_ARGS", "-o UserKnownHostsFile=/dev/null"),
        ("ANSIBLE_SSH_ARGS", "-o ControlMaster=auto -o stricthostkeychecking off"),
    ):
        with pytest.raises(UserError, match=f"\\${name} holds"):
            qc.qc_env(tmp_path, tmp_path / "r.jsonl", {**base, name: value})


def _testinfra_host(tmp_path: Path, monkeypatch, host_vars: str):
    """A testinfra host through the ansible backend, as `milepost qc run` makes them."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    pay-01:\n      ansible_host: 127.0.0.1\n      ansible_port: 2222\n"
        + host_vars
    )
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\nhost_key_checking = True\n")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(cfg))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    for name in qc.SSH_ARG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    from testinfra.utils.ansible_runner import AnsibleRunner

    AnsibleRunner._runners.clear()
    return testinfra.get_host("ansible://pay-01", ansible_inventory=str(inventory))


def _ssh_command(host) -> str:
    inner = host.backend.ansible_runner.get_host("pay-01")
    cmd, args = inner.backend._build_ssh_command("true")
    return " ".join(cmd) % tuple(args)


def test_qc_ssh_uses_the_inventory_known_hosts_with_strict_checking(tmp_path, monkeypatch):
    known = tmp_path / "known_hosts"
    host = _testinfra_host(
        tmp_path,
        monkeypatch,
        f"      ansible_ssh_common_args: -o UserKnownHostsFile={known}\n",
    )
    qc.check_host_keys(host.backend)
    qc.check_host_keys(host.backend)  # once per check: the option is added once
    command = _ssh_command(host)
    assert f"-o UserKnownHostsFile={known}" in command
    assert command.count("StrictHostKeyChecking=yes") == 1
    assert "ControlPath" not in command  # outside `milepost qc run`: no shared connection
    # The inventory's options come first, so they win (OpenSSH takes the first value).
    assert command.index("UserKnownHostsFile") < command.index("StrictHostKeyChecking")


def test_qc_keeps_one_connection_per_host_for_the_whole_run(tmp_path, monkeypatch):
    """In `milepost qc run` every check of a host goes through one SSH connection, opened
    (host key checked) by its first check, in the run's own directory."""
    host = _testinfra_host(tmp_path, monkeypatch, "")
    monkeypatch.setenv(qc.CONTROL_DIR_VARIABLE, str(tmp_path / "cp dir"))
    qc.check_host_keys(host.backend)
    qc.check_host_keys(host.backend)
    command = _ssh_command(host)
    assert command.count("-o ControlPath=") == 1
    assert f"-o ControlPath='{tmp_path / 'cp dir'}/%C'" in command
    assert "StrictHostKeyChecking=yes" in command
    elsewhere = "-o ControlPath=/elsewhere/%C"
    assert qc.multiplexed(elsewhere, "/tmp/cp") == elsewhere
    assert qc.multiplexed("-o X=1", None) == "-o X=1"


@pytest.mark.parametrize("args", ["-o StrictHostKeyChecking=no", "-o UserKnownHostsFile=/dev/null"])
def test_qc_refuses_inventory_options_that_switch_host_key_checking_off(
    tmp_path, monkeypatch, args
):
    host = _testinfra_host(tmp_path, monkeypatch, f"      ansible_ssh_common_args: {args}\n")
    with pytest.raises(UserError, match="QC never connects with host key checking off"):
        qc.check_host_keys(host.backend)


def test_qc_refuses_paramiko_which_accepts_unknown_host_keys(tmp_path, monkeypatch):
    host = _testinfra_host(tmp_path, monkeypatch, "      ansible_connection: paramiko_ssh\n")
    with pytest.raises(UserError, match="paramiko"):
        qc.check_host_keys(host.backend)


def test_the_qc_catalogue_checks_host_keys_for_every_host():
    conftest = Path(__file__).resolve().parents[1] / "qc" / "conftest.py"
    text = conftest.read_text()
    assert "@pytest.fixture(autouse=True" in text and "check_host_keys(host.backend)" in text
