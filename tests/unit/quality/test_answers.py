"""QC changes answer something: `milepost qc record-change --glitch --lesson` links the glitches
and lessons a change answers, records the checks added for glitches (their
@pytest.mark.answers markers), and a later failure of such a check says it was "caught by
the check added for glitch G-..." in its qc_result, in the glitch it opens and on screen.
Unknown ids and malformed markers: one line, exit 2, nothing recorded."""

import json
from pathlib import Path

import pytest

from milepost.cli.main import main
from milepost.oversight.register_reading import notes
from milepost.oversight.register_writing import add_note, open_glitch
from milepost.quality.answers import check_answers
from milepost.quality.qc import (
    CheckResult,
    catalogue,
    catalogue_digest,
    qc_records,
    recorded_answers,
    with_answers,
)

ROOT = Path(__file__).resolve().parents[3]
CHECK = """
def test_the_ingest_spool_has_room(host):
    assert host.file("/var/spool/ruc").exists
"""


def tagged(*glitch_ids: str) -> str:
    ids = ", ".join(f'"{g}"' for g in glitch_ids)
    return f"import pytest\n\n\n@pytest.mark.answers({ids})" + CHECK


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout of its own (MILEPOST_ROOT) whose catalogue holds the project's
    conftest.py and one check, test_spool.py."""
    root = tmp_path / "checkout"
    (root / "tests" / "qc").mkdir(parents=True)
    (root / "ansible.cfg").write_text("[defaults]\n")
    (root / "tests/qc/conftest.py").write_text((ROOT / "tests/qc/conftest.py").read_text())
    (root / "tests/qc/test_spool.py").write_text(CHECK)
    monkeypatch.setenv("MILEPOST_ROOT", str(root))
    return root


def qc_process(ledger):
    return notes(ledger, type="qc-process")


def record(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["qc", "record-change", "--title", "Spool check", "--reason", "why", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_check_added_for_a_glitch_says_so_when_it_fails_later(ledger, checkout, capsys):
    found = open_glitch(ledger, title="Mileage files lost: spool full", detected_by="customers")
    lesson = add_note(ledger, "lesson", title="Watch the spool", category="technology")
    assert record(capsys)[0] == 0  # the catalogue as it was
    (checkout / "tests/qc/test_spool.py").write_text(tagged(found.note_id))

    code, out, _ = record(capsys, "--lesson", lesson.note_id)
    assert code == 0, out
    assert f"test_the_ingest_spool_has_room answers {found.note_id}" in out
    change = qc_process(ledger)[-1]
    assert change.details["answers"] == {"test_the_ingest_spool_has_room": [found.note_id]}
    # The glitch of the newly marked check is linked, with the lesson given.
    assert change.links["glitches"] == [found.note_id]
    assert change.links["notes"] == [lesson.note_id]
    assert recorded_answers(ledger) == {"test_the_ingest_spool_has_room": [found.note_id]}

    # A later QC run: the check fails on ingest-01 (another check passes).
    results = with_answers(
        [
            CheckResult("ingest-01", "test_the_ingest_spool_has_room", "failed", "no spool"),
            CheckResult("ingest-01", "test_every_ruc_service_is_running", "passed", None),
        ],
        recorded_answers(ledger),
    )
    records, glitch_id = qc_records("q-1", results, catalogue_digest(checkout)[0], own_run=True)
    ledger.append(records)
    caught = f"caught by the check added for glitch {found.note_id}"
    assert results[0].caught_by == caught and results[1].caught_by == ""
    bodies = [r["body"] for r in records if r["kind"] == "qc_result"]
    assert bodies[0]["answers"] == [found.note_id] and "answers" not in bodies[1]
    [opened] = [n for n in notes(ledger, type="glitch") if n.note_id == glitch_id]
    assert opened.detected_by == "qc"
    assert opened.text == f"ingest-01 test_the_ingest_spool_has_room: no spool ({caught})"
    assert main(["ledger", "verify"]) == 0


def test_only_the_newest_recorded_change_says_what_checks_answer(ledger, checkout, capsys):
    first = open_glitch(ledger, title="Spool full", detected_by="qc")
    second = open_glitch(ledger, title="Spool full again", detected_by="qc")
    (checkout / "tests/qc/test_spool.py").write_text(tagged(first.note_id))
    assert record(capsys, "--glitch", second.note_id)[0] == 0
    change = qc_process(ledger)[-1]
    assert change.links["glitches"] == [second.note_id, first.note_id]
    # The marker goes (a new check replaces it): the check answers nothing any more.
    (checkout / "tests/qc/test_spool.py").write_text(CHECK)
    assert record(capsys)[0] == 0
    assert qc_process(ledger)[-1].links["glitches"] == []
    assert recorded_answers(ledger) == {}


@pytest.mark.parametrize(
    ("args", "source", "problem"),
    [
        (["--glitch", "G-00000000"], None, "glitch 'G-00000000' is not in the ledger"),
        (["--lesson", "L-00000000"], None, "lesson 'L-00000000' is not in the ledger"),
        (["--lesson", "GLITCH"], None, "is not in the ledger"),
        (["--glitch", "G-1\nx"], None, "glitch"),
        (
            [],
            tagged("G-00000000"),
            "glitch 'G-00000000' (the answers marker of test_the_ingest_spool_has_room)",
        ),
        ([], tagged("L-1"), "is not a glitch id"),
        ([], "import pytest\n\n\n@pytest.mark.answers(GLITCH)" + CHECK, "glitch ids as text"),
        ([], "import pytest\n\n\n@pytest.mark.answers()" + CHECK, "glitch ids only"),
        ([], "def test_x(:\n", "is not valid Python"),
    ],
)
def test_unknown_ids_and_bad_markers_are_refused(ledger, checkout, capsys, args, source, problem):
    found = open_glitch(ledger, title="Spool full", detected_by="qc")
    if "GLITCH" in args:
        args = ["--lesson", found.note_id]  # a glitch is not a lesson
    if source is not None:
        (checkout / "tests/qc/test_spool.py").write_text(source.replace("GLITCH", "G"))
    code, _, err = record(capsys, *args)
    assert code == 2, err
    assert problem in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert qc_process(ledger) == []


def test_markers_on_classes_and_of_several_glitches(tmp_path):
    (tmp_path / "test_a.py").write_text(
        "import pytest\nfrom pytest import mark\n\n\n"
        '@pytest.mark.answers("G-1", "G-2")\n'
        "class TestSpool:\n"
        "    def test_room(self, host): ...\n\n"
        '    @mark.answers("G-3")\n'
        "    def test_owner(self, host): ...\n\n\n"
        "@pytest.mark.parametrize('x', [1])\n"
        '@pytest.mark.answers("G-2")\n'
        "def test_plain(host, x): ...\n\n\n"
        "def test_untagged(host): ...\n"
    )
    assert check_answers(tmp_path, tmp_path) == {
        "test_owner": ["G-1", "G-2", "G-3"],
        "test_plain": ["G-2"],
        "test_room": ["G-1", "G-2"],
    }


def test_the_project_catalogue_registers_the_marker_and_reads_clean():
    assert check_answers(ROOT, catalogue(ROOT)) == {}
    text = (ROOT / "tests/qc/conftest.py").read_text()
    assert '"answers(*glitch_ids)' in text


def test_qc_run_json_carries_what_a_check_answers():
    result = CheckResult("pay-01", "test_x", "error", "boom", ("G-1",))
    assert json.loads(json.dumps(result.as_dict()))["answers"] == ["G-1"]
    assert result.caught_by == "caught by the check added for glitch G-1"
    assert CheckResult("pay-01", "test_x", "passed", None, ("G-1", "G-2")).caught_by == ""
