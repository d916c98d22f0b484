"""milepost qc: reading the catalogue's results and refusing bad input before any host."""

import json

import pytest

from milepost.cli.main import main
from milepost.quality.qc import _parse, failures


def test_results_are_read_redacted_and_cut(tmp_path):
    lines = tmp_path / "qc.jsonl"
    lines.write_text(
        "\n".join(
            json.dumps(item)
            for item in (
                {"host": "pay-01", "check": "test_a", "status": "passed", "message": None},
                {
                    "host": "pay-01",
                    "check": "test_b",
                    "status": "failed",
                    "message": "AssertionError: db_password=hunter2hunter2 rejected\n" + "x" * 900,
                },
                {"host": "acct-01", "check": "test_b", "status": "error", "message": "boom"},
            )
        )  # fmt: skip
    )
    results = _parse(lines)
    assert [(r.host, r.check, r.status) for r in results] == [
        ("pay-01", "test_a", "passed"),
        ("pay-01", "test_b", "failed"),
        ("acct-01", "test_b", "error"),
    ]
    # Redacted (the secret's value, not the message) and cut to 300 characters.
    message = results[1].message
    assert message is not None and len(message) == 300
    assert message.startswith("AssertionError: db_password=*** rejected xxx")
    assert "hunter2hunter2" not in message
    assert results[0].message is None and results[2].message == "boom"
    assert [r.host for r in failures(results)] == ["pay-01", "acct-01"]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--limit", "$(id)"], "--limit"),
        (["--limit", ""], "--limit is empty"),
        (["--run-id", "a\nb"], "--run-id"),
    ],
)
def test_bad_input_is_refused_before_any_host(tmp_path, monkeypatch, capsys, args, problem):
    monkeypatch.setenv("MILEPOST_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "state"))
    code = main(["qc", "run", *args])
    _, err = capsys.readouterr()
    assert code == 2 and problem in err and len(err.strip().splitlines()) == 1


def test_a_catalogue_change_is_recorded_with_its_reason_and_digest(tmp_path, monkeypatch, capsys):
    from milepost.ledger import Ledger
    from milepost.paths import project_root
    from milepost.quality.qc import catalogue_digest, catalogue_warning

    monkeypatch.setenv("MILEPOST_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "state"))
    argv = ["qc", "record-change", "--title", "First catalogue", "--reason", "go-live rules"]
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert "qc-process QC-" in out and "tests/qc/test_ruc_services.py" in out
    assert main(["note", "list", "--type", "qc-process", "--json"]) == 0
    [note] = json.loads(capsys.readouterr()[0])
    digest, files = catalogue_digest(project_root())
    assert note["details"]["catalogue_sha256"] == digest
    assert note["text"] == "go-live rules" and "tests/qc/conftest.py" in files
    # Nothing changed since: nothing to record, and no warning.
    assert main(argv) == 2
    assert "has not changed" in capsys.readouterr()[1]
    with Ledger.open() as ledger:
        assert catalogue_warning(ledger, project_root()) is None
    assert main(["ledger", "verify"]) == 0
