"""emergency-patch's live progress: each host's phase, read from the run's ledger records."""

import io

import pytest
from rich.console import Console

from milepost.ledger import Ledger, package_change, task_result
from milepost.patching import emergency_progress

RUN = "20261201T000000Z-00c0ffee"


def results() -> list[dict]:
    return [
        task_result(RUN, "pay-01", "preflight : AUDIT | Check that the host is reachable", "ok",
                    role="preflight"),
        task_result(RUN, "pay-02", "preflight : AUDIT | Check that the host is reachable", "ok",
                    role="preflight"),
        task_result(RUN, "pay-01", "AUDIT | Work out which packages of the advisory this host"
                    " must patch", "ok", role="", progress="exposed"),
        task_result(RUN, "acct-01", "AUDIT | Work out which packages of the advisory this host"
                    " must patch", "ok", role="", progress="not exposed"),
        # A task's title is not an API: only its progress key moves the host.
        task_result(RUN, "acct-01", "AUDIT | Pass the health gate when every service is"
                    " healthy", "ok", role=""),
        task_result(RUN, "pay-01", "app_update : PATCH | Install the pinned versions", "changed",
                    role="app_update"),
        package_change(RUN, "pay-01", "ruc-payment-gateway", "2.3.0", "2.4.0"),
        task_result(RUN, "pay-01", "health_gate : AUDIT | Pass the health gate when every service"
                    " is healthy", "ok", role="health_gate", progress="verified"),
        task_result(RUN, "pay-02", "health_gate : AUDIT | Pass the health gate when every service"
                    " is healthy", "ok", role="health_gate"),
        task_result(RUN, "pay-02", "app_update : PATCH | Install the pinned versions", "failed",
                    role="app_update"),
        task_result(RUN, "pay-02", "health_gate : PATCH | Restore", "changed",
                    role="health_gate", rollback=True),
        task_result(RUN, "report-01", "AUDIT | Check that the host is reachable", "unreachable"),
        # A later, lower phase never moves a host back.
        task_result(RUN, "pay-01", "preflight : PATCH | Release the maintenance lock", "ok",
                    role="preflight"),
    ]  # fmt: skip


def test_follow_moves_each_host_forward_only():
    hosts = {name: emergency_progress.HostProgress() for name in ("pay-01", "pay-02", "acct-01")}
    records = [{"kind": r["kind"], "host": r["host"], "body": r["body"]} for r in results()]
    emergency_progress.follow(records, hosts)
    assert hosts["pay-01"].text() == "verified (ruc-payment-gateway 2.3.0 -> 2.4.0)"
    assert hosts["pay-02"].text().startswith("failed: app_update : PATCH | Install")
    assert hosts["pay-02"].text().endswith("; rolled back")
    assert hosts["acct-01"].text() == "not exposed"
    assert hosts["report-01"].text() == "unreachable"


@pytest.mark.parametrize("terminal", [True, False])
def test_the_progress_view_reads_the_run_from_the_ledger(tmp_path, monkeypatch, terminal):
    monkeypatch.setenv("MILEPOST_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(emergency_progress, "POLL_SECONDS", 0.05)
    with Ledger.open() as ledger:
        ledger.append(results())
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=160)
    progress = emergency_progress._Progress(RUN, ["pay-01", "pay-02", "acct-01"], console)
    progress.start()
    progress.stop()
    text = out.getvalue()
    assert progress.hosts["pay-01"].phase == "verified"
    assert "verified (ruc-payment-gateway 2.3.0 -> 2.4.0)" in text
    assert "not exposed" in text and "unreachable" in text
    if not terminal:
        assert "  acct-01: not exposed\n" in text
