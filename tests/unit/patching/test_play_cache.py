"""milepost.patching.play_cache: the ledger is read once per play for the plugins of every host
(ended runs for the host lock, advisories and exceptions for the security floor), and a
ledger that cannot be read fails closed."""

from __future__ import annotations

from datetime import date

import pytest

from milepost.cli.main import main
from milepost.errors import UserError
from milepost.ledger.runs import run_ended, run_started
from milepost.patching import play_cache
from milepost.patching.safety import security_floor


@pytest.fixture(autouse=True)
def _fresh_cache():
    play_cache.clear()
    yield
    play_cache.clear()


def _advisory(capsys, advisory_id: str, package: str) -> None:
    code = main(
        ["advisory", "add", "--id", advisory_id, "--package", package, "--severity", "high"]
    )
    assert code == 0, capsys.readouterr().err


def test_a_play_reads_the_ledger_once_and_every_host_uses_that_copy(ledger, capsys) -> None:
    done = run_started(playbook="playbooks/maintain.yml", run_id="run-done")
    ledger.append([done, run_ended("run-done", "successful")])
    ledger.append([run_started(playbook="playbooks/maintain.yml", run_id="run-live")])
    _advisory(capsys, "CVE-2026-0001", "ruc-payment-gateway=2.4.0")

    play_cache.load()
    assert play_cache.ended_runs() == ["run-done"]
    floor = security_floor("pay-01", ["ruc-payment-gateway"], date(2026, 12, 6))
    assert floor == {
        "ruc-payment-gateway": [{"advisory": "CVE-2026-0001", "fixed": "2.4.0", "exception": None}]
    }

    # Recorded while the play runs: seen from the next play on, not by this one's hosts.
    _advisory(capsys, "CVE-2026-0002", "ruc-account-api=1.5.0")
    assert security_floor("acct-01", ["ruc-account-api"], date(2026, 12, 6)) == {}
    play_cache.load()
    assert set(security_floor("acct-01", ["ruc-account-api"], date(2026, 12, 6))) == {
        "ruc-account-api"
    }


def test_without_a_play_load_each_reader_loads_the_ledger_itself(ledger, capsys) -> None:
    _advisory(capsys, "CVE-2026-0003", "ruc-reporting=1.2.0")
    assert set(security_floor("report-01", ["ruc-reporting"], date(2026, 12, 6))) == {
        "ruc-reporting"
    }
    assert play_cache.ended_runs() == []


def test_a_ledger_that_cannot_be_read_fails_closed(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "ledger.sqlite"
    bad.write_text("this is not a database")
    monkeypatch.setenv("MILEPOST_LEDGER_URL", f"sqlite:///{bad}")
    with pytest.raises(UserError):
        play_cache.load()
    with pytest.raises(UserError):
        security_floor("pay-01", ["ruc-payment-gateway"], date(2026, 12, 6))
    with pytest.raises(UserError):
        play_cache.ended_runs()
