"""A CLI that starts at once: what `milepost --help`, `milepost stop --help` and `milepost
ledger runs` import (the heavy libraries only where a command needs them), and that
building the command groups lazily changed no command, help text or exit code.

Behaviour, not time: bench/cli_startup.py measures the time.
"""

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from typer._click import Context

from milepost.cli import main as cli
from milepost.cli.main import NOUNS, full_command, main

#: Loaded by no `--help`: the database layer, Ansible, templates, YAML, SSH, cron parsing,
#: signing, and the modules that bring them.
NOT_FOR_HELP = (
    "alembic",
    "ansible",
    "ansible_runner",
    "croniter",
    "cryptography",
    "jinja2",
    "paramiko",
    "sqlalchemy",
    "yaml",
    "milepost.inventory.checks",
    "milepost.inventory.reading",
    "milepost.ledger.database",
    "milepost.ledger.store",
    "milepost.reports.dashboard",
    "milepost.reports.status",
    "milepost.reports.status_model",
    "milepost.reports.status_sections",
)
#: Reading an empty ledger needs SQLAlchemy and the store, none of these.
NOT_FOR_LEDGER_RUNS = (
    "alembic",
    "ansible",
    "ansible_runner",
    "croniter",
    "cryptography",
    "jinja2",
    "paramiko",
    "yaml",
    "milepost.drift.findings",
    "milepost.reports.dashboard",
    "milepost.reports.status",
    "milepost.reports.status_model",
    "milepost.reports.status_sections",
)

SCRIPT = """
import contextlib, io, json, sys
from milepost.cli.main import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def imported_by(tmp_path, *argv: str) -> dict[str, Any]:
    """Run `milepost argv` in a fresh interpreter: its exit code, output and sys.modules."""
    env = dict(
        os.environ,
        MILEPOST_LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        MILEPOST_STATE_DIR=str(tmp_path / "state"),
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (packages count with their submodules) are in ``modules``."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


@pytest.mark.parametrize("argv", [["--help"], ["stop", "--help"], ["ledger", "--help"]])
def test_help_imports_nothing_heavy(tmp_path, argv):
    result = imported_by(tmp_path, *argv)
    assert result["code"] == 0
    assert "Usage: milepost" in result["out"]
    assert loaded(result["modules"], NOT_FOR_HELP) == []


def test_stop_help_does_not_load_pydantic(tmp_path):
    """Typer coerces option values through pydantic; `stop --help` coerces none, and the
    top-level --help flag, not given, is not coerced either (MilepostGroup)."""
    result = imported_by(tmp_path, "stop", "--help")
    assert loaded(result["modules"], ("pydantic",)) == []


def test_ledger_runs_on_an_empty_ledger_loads_only_the_database_layer(tmp_path):
    first = imported_by(tmp_path, "ledger", "runs")  # creates the schema (Alembic)
    assert first["code"] == 0 and "no runs in the ledger match" in first["out"]
    result = imported_by(tmp_path, "ledger", "runs")
    assert result["code"] == 0 and "no runs in the ledger match" in result["out"]
    assert "sqlalchemy" in result["modules"]
    assert "milepost.ledger.store" in result["modules"]
    assert loaded(result["modules"], NOT_FOR_LEDGER_RUNS) == []


def test_a_noun_is_built_only_when_used():
    group = cli.command()
    assert list(group.commands) == list(NOUNS)
    assert all(isinstance(c, cli._NotLoaded) for c in group.commands.values())
    ctx = Context(group)
    with ctx:
        ledger = group.get_command(ctx, "ledger")
    assert ledger is not None and not isinstance(ledger, cli._NotLoaded)
    assert "runs" in getattr(ledger, "commands", {})
    assert group.commands["ledger"] is ledger
    assert all(isinstance(group.commands[n], cli._NotLoaded) for n in NOUNS if n != "ledger")


def test_the_listing_is_the_nouns_own(capsys, monkeypatch):
    """`milepost --help` lists the nouns not loaded exactly as the loaded ones: same order,
    names and help (NOUNS holds a copy of each noun's help; this proves it equal)."""
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["--help"]) == 0
    lazy = capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        full_command().main(["--help"], prog_name="milepost")
    assert done.value.code == 0
    assert capsys.readouterr().out == lazy
    for name in NOUNS:
        assert f" {name} " in lazy


def test_help_reads_as_sentences():
    """Docstrings keep their hard line breaks; the help joins each paragraph's lines."""
    assert cli.as_sentences("Check hosts (check mode: nothing\n    changes) and record.") == (
        "Check hosts (check mode: nothing changes) and record."
    )
    laid_out = "Cycles:\n\n- noop: nothing\n- updating: all"
    assert cli.as_sentences(laid_out) == laid_out
    drift = full_command().commands["drift"]
    check = getattr(drift, "commands", {})["check"]
    assert "nothing changes)" in (check.help or "")


def command_paths() -> list[tuple[str, ...]]:
    """Every group and command of `milepost`, from the Typer app as typer builds it."""
    found: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(full_command(), ())
    return found


PATHS = command_paths()


def test_every_command_is_found():
    assert len(PATHS) > 40
    for expected in [("ledger", "runs"), ("stop",), ("vendor", "question", "add"), ("lab", "up")]:
        assert expected in PATHS


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "milepost")
def test_every_help_works(path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main([*path, "--help"]) == 0
    out, err = capsys.readouterr()
    assert f"Usage: milepost {' '.join(path)}".rstrip() in out
    assert err == ""


def test_bad_input_still_exits_2_in_one_line(capsys):
    assert main(["nope"]) == 2
    err = capsys.readouterr().err
    assert err == "milepost: error: No such command 'nope'. Did you mean 'note'? (see --help)\n"
    assert main(["ledger", "runz"]) == 2
    assert capsys.readouterr().err.startswith("milepost: error: No such command 'runz'.")
    assert main(["ledger"]) == 2  # a group without a command: its help, exit 2
