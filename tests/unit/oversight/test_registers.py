"""The registers (lessons learned, desired changes, glitches) on a real SQLite ledger, through
the API and the `milepost note` CLI (no host is contacted)."""

import csv
import io
import json

import pytest

from milepost.cli.main import main
from milepost.drift.findings import glitch_record
from milepost.errors import UserError
from milepost.input_checks import check_multiline
from milepost.ledger import Ledger, package_facts
from milepost.oversight.register_export import CSV_FIELDS, export
from milepost.oversight.register_reading import notes
from milepost.oversight.register_writing import add_note, open_glitch, update_note

RUN = "20260102T030405Z-1a2b3c4d"


@pytest.fixture
def ledger(ledger, monkeypatch):
    """The ledger with one run's records in it; the operator is casey."""
    monkeypatch.setenv("SUDO_USER", "casey")
    ledger.append([package_facts(RUN, "pay-01", {"ruc-payment-gateway": "2.3.0"})])
    return ledger


def count(ledger: Ledger, kind: str | None = None) -> int:
    with ledger.read_transaction() as conn:
        sql = "SELECT count(*) FROM ledger_records" + (" WHERE kind = ?" if kind else "")
        return int(conn.exec_driver_sql(sql, (kind,) if kind else ()).scalar_one())


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def added_id(out: str) -> str:
    words = out.split()
    assert words[-1] == "recorded", out
    return words[-2]


def test_add_lesson_desired_change_and_glitch_from_the_cli(ledger, capsys):
    code, out, err = run_cli(
        capsys,
        "note", "add", "lesson",
        "--title", "Check the SFTP key before rotating",
        "--text", "Line one.\nLine two.",
        "--category", "technology",
        "--owner", "Dana",
        "--run", RUN,
    )  # fmt: skip
    assert code == 0, err
    lesson = added_id(out)
    assert out.startswith(f"lesson {lesson} recorded")
    assert lesson.startswith("L-") and len(lesson) == 10

    code, out, err = run_cli(
        capsys,
        "note", "add", "desired-change",
        "--title", "Tell call centre before fee changes", "--category", "communications",
    )  # fmt: skip
    assert code == 0, err
    change = added_id(out)
    assert change.startswith("DC-")

    code, out, err = run_cli(
        capsys,
        "note", "add", "glitch",
        "--title", "Statements sent twice",
        "--detected-by", "customer service",
        "--system", "reporting", "--system", "mail",
        "--impact", "About 40 customers got two statements",
        "--note", lesson,
    )  # fmt: skip
    assert code == 0, err
    glitch = added_id(out)
    assert out.startswith("glitch G-")

    found = {n.note_id: n for n in notes(ledger)}
    assert found[lesson].status == "open"
    assert found[lesson].text == "Line one.\nLine two."
    assert found[lesson].links["runs"] == [RUN]
    assert found[lesson].added_by == "casey"
    assert found[change].status == "proposed"
    assert found[change].category == "communications"
    g = found[glitch]
    assert (g.type, g.status, g.detected_by) == ("glitch", "open", "customer service")
    assert g.affected_systems == ["reporting", "mail"]
    assert g.links["notes"] == [lesson]
    assert g.detected_at is not None and g.resolution is None
    assert count(ledger, "note") == 2 and count(ledger, "glitch") == 1

    code, out, err = run_cli(capsys, "note", "show", lesson)
    assert code == 0, err
    assert f"linked from: {glitch}" in out and "Line two." in out


def test_update_appends_and_the_history_shows_every_update(ledger, capsys):
    lesson = add_note(ledger, "lesson", title="Pin the kernel", category="technology")
    before = count(ledger)
    code, out, err = run_cli(
        capsys, "note", "update", lesson.note_id, "--owner", "Sam", "--comment", "Sam takes it"
    )
    assert code == 0, err
    code, out, err = run_cli(
        capsys, "note", "update", lesson.note_id, "--status", "applied", "--run", RUN
    )
    assert code == 0, err
    assert "status applied" in out
    assert count(ledger) == before + 2
    assert count(ledger, "note") == 1  # the note record itself was never rewritten

    now = next(n for n in notes(ledger) if n.note_id == lesson.note_id)
    assert (now.status, now.owner, now.links["runs"]) == ("applied", "Sam", [RUN])
    assert [h["status"] for h in now.history] == [None, {"from": "open", "to": "applied"}]
    assert now.history[0]["fields"] == {"owner": "Sam"}
    assert now.history[0]["comment"] == "Sam takes it"
    assert now.updated_at >= now.added_at

    code, out, err = run_cli(capsys, "note", "show", lesson.note_id)
    assert code == 0, err
    assert "history" in out and "open -> applied" in out and "Sam takes it" in out

    code, out, err = run_cli(capsys, "note", "show", lesson.note_id, "--json")
    shown = json.loads(out)
    assert shown["status"] == "applied" and len(shown["history"]) == 2


def test_list_filters(ledger, capsys):
    lesson = add_note(ledger, "lesson", title="A lesson", category="policy")
    dc_tech = add_note(ledger, "desired-change", title="Faster patching", category="technology")
    dc_comm = add_note(ledger, "desired-change", title="Plainer notices", category="communications")
    glitch = add_note(ledger, "glitch", title="Late file", detected_by="monitoring")
    update_note(ledger, dc_tech.note_id, status="done")
    update_note(ledger, glitch.note_id, status="investigating")

    def listed(*args: str) -> list[str]:
        code, out, err = run_cli(capsys, "note", "list", "--json", *args)
        assert code == 0, err
        return [n["note_id"] for n in json.loads(out)]

    assert listed() == [lesson.note_id, dc_tech.note_id, dc_comm.note_id, glitch.note_id]
    assert listed("--type", "desired-change") == [dc_tech.note_id, dc_comm.note_id]
    assert listed("--category", "communications") == [dc_comm.note_id]
    assert listed("--status", "done") == [dc_tech.note_id]
    assert listed("--type", "glitch", "--status", "investigating") == [glitch.note_id]
    assert listed("--open") == [lesson.note_id, dc_comm.note_id, glitch.note_id]

    code, out, err = run_cli(capsys, "note", "list")
    assert code == 0, err
    assert "Plainer notices" in out and "4 entries" in out


def test_export_markdown_and_csv(ledger, capsys, tmp_path):
    lesson = add_note(
        ledger, "lesson", title="Rotate keys <b>before</b> #expiry", text="a\n## not a heading",
        category="technology", owner="Dana",
    )  # fmt: skip
    change = add_note(ledger, "desired-change", title="=SUM(A1)", category="policy")
    glitch = add_note(ledger, "glitch", title="Duplicate charges", detected_by="qc")
    update_note(
        ledger, glitch.note_id, status="resolved", resolution="Reversed the charges",
        cause="A retried settlement file", no_action_reason="The processor fixed its retry",
    )  # fmt: skip

    md_file = tmp_path / "out" / "registers.md"
    code, out, err = run_cli(capsys, "note", "export", "--format", "md", "--out", str(md_file))
    assert code == 0, err
    md = md_file.read_text()
    for heading in ("# Operations registers", "## Lessons learned", "## Desired changes",
                    "### Policy", "## Glitches"):  # fmt: skip
        assert f"\n{heading}\n" in f"\n{md}"
    assert lesson.note_id in md and change.note_id in md and glitch.note_id in md
    assert "<b>" not in md and "\\<b\\>" in md
    assert "\n## not a heading" not in md and "> \\#\\# not a heading" in md
    assert "status open → resolved" in md and "Reversed the charges" in md
    assert "Owner: Dana" in md
    assert list(md_file.parent.iterdir()) == [md_file]  # no temporary file left

    code, out, err = run_cli(capsys, "note", "export", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0]) == CSV_FIELDS
    by_id = {r["note_id"]: r for r in rows if r["type"] != "catch-rate"}
    assert set(by_id) == {lesson.note_id, change.note_id, glitch.note_id}
    assert by_id[lesson.note_id]["text"] == "a\n## not a heading"
    assert by_id[change.note_id]["title"] == "'=SUM(A1)"  # no formula reaches a spreadsheet
    assert by_id[glitch.note_id]["status"] == "resolved"
    assert by_id[glitch.note_id]["resolution"] == "Reversed the charges"
    assert by_id[glitch.note_id]["updates"] == "1"

    buffer = io.StringIO()
    assert export(notes(ledger, type="lesson"), "csv", buffer) == 1


def test_a_drift_glitch_is_listed_and_can_be_resolved(ledger, capsys):
    record = glitch_record(RUN, ["pay-01"], ["file:/etc/ruc/a.conf"], ["D12"], "converge failed")
    ledger.append([record])
    glitch_id = record["body"]["glitch_id"]

    code, out, err = run_cli(capsys, "note", "list", "--type", "glitch", "--json")
    assert code == 0, err
    (listed,) = json.loads(out)
    assert listed["note_id"] == glitch_id
    assert listed["detected_by"] == "remediation" and listed["hosts"] == ["pay-01"]
    assert listed["run_id"] == RUN and listed["links"]["runs"] == [RUN]
    assert listed["text"] == "converge failed" and listed["findings"] == ["D12"]

    code, out, err = run_cli(
        capsys, "note", "update", glitch_id, "--status", "resolved",
        "--resolution", "Reran remediation", "--owner", "on-call",
        "--cause", "A config file edited by hand", "--no-action-reason", "Drift checks catch it",
    )  # fmt: skip
    assert code == 0, err
    (now,) = notes(ledger, type="glitch")
    assert (now.status, now.resolution, now.owner) == ("resolved", "Reran remediation", "on-call")

    code, out, err = run_cli(capsys, "note", "list", "--open", "--json")
    assert json.loads(out) == []


def test_open_glitch_for_other_code(ledger):
    g = open_glitch(ledger, title="QC failed on pay-01", detected_by="qc", run_id=RUN,
                    hosts=["pay-01"], affected_systems=["payments"])  # fmt: skip
    assert g.note_id.startswith("G-") and g.status == "open"
    assert g.run_id == RUN and g.hosts == ["pay-01"] and g.customer_impact == "unknown"
    with ledger.read_transaction() as conn:
        run_id = conn.exec_driver_sql(
            "SELECT run_id FROM ledger_records WHERE kind = 'glitch'"
        ).scalar_one()
    assert run_id == RUN


def test_ledger_verify_passes_then_fails_after_a_note_is_edited(ledger, capsys):
    lesson = add_note(ledger, "lesson", title="Keep notes", category="policy")
    update_note(ledger, lesson.note_id, status="applied", comment="done")
    open_glitch(ledger, title="Something broke", detected_by="monitoring")
    code, out, err = run_cli(capsys, "ledger", "verify")
    assert code == 0, out + err

    with ledger.write_transaction() as conn:
        body = conn.exec_driver_sql(
            "SELECT body FROM ledger_records WHERE kind = 'note'"
        ).scalar_one()
        edited = body.replace("Keep notes", "Forget notes")
        assert edited != body
        conn.exec_driver_sql("UPDATE ledger_records SET body = ? WHERE kind = 'note'", (edited,))
    code, out, err = run_cli(capsys, "ledger", "verify")
    assert code == 1


BAD_INPUTS = [
    (["add", "memo", "--title", "x"], "note type"),
    (["add", "lesson", "--title", "x", "--category", "finance"], "category"),
    (["add", "lesson", "--title", "x"], "--category"),
    (["add", "lesson", "--title", "   ", "--category", "policy"], "title is empty"),
    (["add", "lesson", "--title", "x" * 201, "--category", "policy"], "at most 200"),
    (
        ["add", "lesson", "--title", "x", "--category", "policy", "--text", "y" * 1_000_000],
        "1000000 characters",
    ),
    (
        ["add", "lesson", "--title", "x", "--category", "policy", "--text", "y" * 65537],
        "at most 65536",
    ),
    (["add", "lesson", "--title", "a\0b", "--category", "policy"], "NUL"),
    (["add", "lesson", "--title", "x", "--category", "policy", "--text", "a\nb\0"], "NUL"),
    (
        ["add", "lesson", "--title", "x", "--category", "policy", "--text", "ok\n\u202eevil"],
        "bidirectional",
    ),
    (["add", "lesson", "--title", "x", "--category", "policy", "--text", "a\u200bb"], "zero-width"),
    (["add", "lesson", "--title", "a\u2067b", "--category", "policy"], "bidirectional"),
    (["add", "glitch", "--title", "x"], "--detected-by"),
    (
        ["add", "glitch", "--title", "x", "--detected-by", "qc", "--category", "policy"],
        "no category",
    ),
    (
        ["add", "lesson", "--title", "x", "--category", "policy", "--detected-by", "qc"],
        "only for glitches",
    ),
    (
        ["add", "lesson", "--title", "x", "--category", "policy", "--glitch", "G-00000000"],
        "linked glitch",
    ),
    (
        ["add", "lesson", "--title", "x", "--category", "policy", "--note", "L-00000000"],
        "linked note",
    ),
    (
        ["add", "lesson", "--title", "x", "--category", "policy", "--run", "no-such-run"],
        "linked run",
    ),
    (["update", "L-deadbeef", "--status", "applied"], "unknown note ID"),
    (["update", "{lesson}", "--status", "done"], "open, applied, retired"),
    (["update", "{lesson}"], "nothing to change"),
    (["update", "{lesson}", "--status", "open"], "nothing to change"),
    (["update", "{lesson}", "--resolution", "fixed"], "for glitches"),
    (["update", "{lesson}", "--glitch", "G-12345678"], "linked glitch"),
    (["update", "{lesson}", "--note", "{lesson}"], "itself"),
    (["update", "{glitch}", "--status", "applied"], "open, investigating, resolved, closed"),
    (["update", "{lesson}", "--comment", "a\u200db"], "zero-width"),
    (["show", "L-nothere"], "unknown note ID"),
    (["list", "--type", "memo"], "note type"),
    (["list", "--status", "bogus"], "status"),
    (["list", "--type", "lesson", "--status", "done"], "open, applied, retired"),
    (["export", "--format", "pdf"], "--format"),
]


@pytest.mark.parametrize(("args", "says"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_appends_nothing(ledger, capsys, args, says):
    lesson = add_note(ledger, "lesson", title="Existing", category="policy")
    glitch = add_note(ledger, "glitch", title="Existing glitch", detected_by="qc")
    before = count(ledger)
    argv = [a.format(lesson=lesson.note_id, glitch=glitch.note_id) for a in args]
    code, out, err = run_cli(capsys, "note", *argv)
    assert code == 2, out + err
    assert err.count("\n") == 1 and err.startswith("milepost: error: "), err
    assert says in err
    assert len(err) < 400
    assert count(ledger) == before


def test_check_multiline_keeps_lines_and_refuses_hostile_characters():
    assert check_multiline("one\r\ntwo  \n\nthree\n", "text") == "one\ntwo\n\nthree"
    assert check_multiline("tab\there", "text") == "tab\there"
    for bad in ("a\x1b[31m", "a\u2028b", "\ufeffa", "a\x00"):
        with pytest.raises(UserError):
            check_multiline(bad, "text")
    with pytest.raises(UserError, match="empty"):
        check_multiline(" \n \n", "text")


def test_api_refuses_bad_values_without_appending(ledger):
    before = count(ledger)
    with pytest.raises(UserError, match="unknown note ID"):
        update_note(ledger, "DC-00000000", status="done")
    with pytest.raises(UserError, match="proposed, accepted, in-progress, done, rejected"):
        change = add_note(ledger, "desired-change", title="x", category="policy")
        update_note(ledger, change.note_id, status="open")
    assert count(ledger) == before + 1
