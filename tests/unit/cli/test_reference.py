"""The CLI reference, docs/cli.md: current with the command's own definition, naming every
command and group, and showing what `--help` shows (milepost/cli/reference.py)."""

from pathlib import Path

from typer._click import Command, Context

from milepost.cli.main import full_command
from milepost.cli.reference import render

CLI_MD = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def command_paths(command: Command, ctx: Context) -> list[str]:
    """The full path of ``command`` and of every command under it."""
    paths = [ctx.command_path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += command_paths(sub, Context(sub, parent=ctx, info_name=name))
    return paths


def section(text: str, path: str) -> str:
    """The part of the reference under the heading of command ``path``."""
    heading = f"\n## `{path}`\n"
    assert heading in text, f"no heading for {path}"
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_docs_cli_md_is_current() -> None:
    assert CLI_MD.read_text(encoding="utf-8") == render(), (
        "docs/cli.md differs from the command's definition: run `make cli-reference`"
    )


def test_every_command_path_has_a_heading() -> None:
    root = full_command()
    text = render()
    paths = command_paths(root, Context(root, info_name="milepost"))
    assert "milepost ledger runs" in paths and "milepost vendor question add" in paths
    for path in paths:
        assert f"\n## `{path}`\n" in text, path


def test_render_is_deterministic() -> None:
    assert render() == render()


def test_maintain_lists_its_options() -> None:
    maintain = section(render(), "milepost maintain")
    assert "Run the maintenance cycle (playbooks/maintain.yml)" in maintain
    assert "| `--override-window` |  | Run outside the maintenance window" in maintain
    assert "| `-i`, `--inventory` | `PATH` |" in maintain
    assert "| `--help`" not in maintain


def test_required_arguments_and_defaults_are_shown() -> None:
    text = render()
    assert "| `RUN` (required) | `<str>` | A run id from `ledger runs`. |" in section(
        text, "milepost ledger show"
    )
    assert "| `--canary` | `N` | Hosts in the canary batch. | `1` |" in section(
        text, "milepost emergency-patch"
    )
    assert "| `--kev` / `--no-kev` |" in section(text, "milepost advisory add")
