"""The `milepost` command: one noun per module of milepost/cli, each imported when it is
used, so that a command pays only for its own imports and `milepost --help` for none.

Exit codes: 0 success, 1 the work failed, 2 bad input or a missing prerequisite, 3 refused
(emergency-patch), 128 + the signal when interrupted.
"""

import importlib
import inspect
import sys
from typing import Any

import typer
from typer._click import Command, Context, HelpFormatter
from typer._click.exceptions import NoArgsIsHelpError
from typer.core import TyperCommand, TyperGroup, TyperOption

from milepost.errors import MilepostError, Stopped, printable
from milepost.input_checks import shown

HELP = "Milepost: operations and maintenance automation for a Road Usage Charge program."

#: Every noun of `milepost`, in the order `milepost --help` lists them: the module that
#: holds it, the typer.Typer there, and the line the listing shows (the noun's own help,
#: which tests/unit/cli/test_main.py compares with the module's).
NOUNS: dict[str, tuple[str, str, str]] = {
    "exposure": (
        "milepost.cli.exposure",
        "exposure_app",
        "Per host and advisory: the CVEs it fixes, installed and fixed version, due date, days"
        " left or overdue, and the run that closed it (from the ledger's package facts and"
        " changes).",
    ),
    "stop": (
        "milepost.cli.stop",
        "stop_app",
        "Kill switch: running maintenance stops before its next batch; new runs refuse.",
    ),
    "maintain": (
        "milepost.cli.maintain",
        "maintain_app",
        "Run the maintenance cycle (playbooks/maintain.yml) after checking the inventory.",
    ),
    "plan": (
        "milepost.cli.plan",
        "plan_app",
        "Change plans: exactly what a run would change, signed and approved before it runs.",
    ),
    "approve": (
        "milepost.cli.plan",
        "approve_app",
        "Approve a plan: sign its id, content hash and expiry with your SSH key. Refused for"
        " the plan's author (four eyes), a key the allowed-signers file does not list, and a"
        " plan that has expired.",
    ),
    "apply": (
        "milepost.cli.plan",
        "apply_app",
        "Apply a plan, exactly: refused (exit 3) when it has expired, lacks the approvals its"
        " hosts need, was made with other options (--limit, -e, --allow-downgrade must be the"
        " plan's), or is stale (a new dry run differs). Then the cycle (a maintenance plan) or"
        " the remediation (a remediation plan, with its own options) runs with the plan: no"
        " other host, package, version or resource (each host checks it again before it is"
        " touched).",
    ),
    "emergency-patch": (
        "milepost.cli.emergency",
        "emergency_app",
        "Patch every host exposed to one advisory now: canary first, health-gated, failed"
        " hosts rolled back, maintenance windows overridden (the reason is recorded).",
    ),
    "evidence": (
        "milepost.cli.evidence",
        "evidence_app",
        "Evidence for auditors: one signed bundle of a period's changes, plans and approvals,"
        " outcomes and QC, deadlines, exceptions, drift and emergencies; `verify` checks it"
        " offline.",
    ),
    "lab": ("milepost.cli.lab", "lab_app", "The local lab fleet of Debian hosts."),
    "ledger": ("milepost.cli.ledger", "ledger_app", "The maintenance ledger."),
    "drift": ("milepost.cli.drift", "drift_app", "Configuration drift findings."),
    "change": (
        "milepost.cli.change",
        "change_app",
        "Planned changes: drift they cover is planned, not unauthorised.",
    ),
    "advisory": ("milepost.cli.advisory", "advisory_app", "Security advisories."),
    "exception": (
        "milepost.cli.exception",
        "exception_app",
        "Patch exceptions: accepted, time-limited exposure with a compensating control.",
    ),
    "vendor": (
        "milepost.cli.vendor",
        "vendor_app",
        "Vendors: their data and the questions register.",
    ),
    "note": (
        "milepost.cli.note",
        "note_app",
        "Registers: lessons learned and their follow-up actions, desired changes, glitches.",
    ),
    "qc": ("milepost.cli.qc", "qc_app", "Quality control after every change."),
    "report": (
        "milepost.cli.report",
        "report_app",
        "Reports for communications and customer-service staff.",
    ),
    "notify": (
        "milepost.cli.notify",
        "notify_app",
        "Notices for communications and customer-service staff.",
    ),
}


def as_sentences(text: str | None) -> str | None:
    """Help text as the terminal should wrap it: the lines of each paragraph (docstrings
    keep their hard line breaks) joined into one, paragraphs kept apart. A paragraph with
    an indented or bulleted line is left as it is."""
    if not text:
        return text
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines = [line.strip() for line in paragraph.strip().splitlines()]
        laid_out = any(line.startswith(("- ", "* ", "  ")) for line in paragraph.splitlines()[1:])
        paragraphs.append(paragraph.strip() if laid_out else " ".join(lines))
    return "\n\n".join(paragraphs)


def _reflowed(command: Command) -> Command:
    """``command`` and every command under it with their help as sentences."""
    command.help = as_sentences(command.help)
    for sub in getattr(command, "commands", {}).values():
        _reflowed(sub)
    return command


def build(name: str) -> Command:
    """The click command of noun ``name``, built from its module's typer.Typer."""
    module_name, attribute, _ = NOUNS[name]
    noun_app: typer.Typer = getattr(importlib.import_module(module_name), attribute)
    # As typer.main.get_command builds an app, without its shell-completion options.
    single = noun_app.registered_commands
    command: Command
    if len(single) == 1 and not (noun_app.registered_callback or noun_app.registered_groups):
        command = typer.main.get_command_from_info(
            single[0],
            pretty_exceptions_short=noun_app.pretty_exceptions_short,
            rich_markup_mode=noun_app.rich_markup_mode,
        )
    else:
        command = typer.main.get_group(noun_app)
    command.name = name
    return _reflowed(command)


class _NotLoaded(TyperCommand):
    """A noun of `milepost` whose module is not imported yet: its name and line of help,
    for the listing of `milepost --help`."""


class MilepostGroup(TyperGroup):
    """The `milepost` group. A noun is imported and built when first used (not while the
    help lists it), so one command does not pay for every other command's imports."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if isinstance(command, _NotLoaded) and not self._listing:
            command = self.commands[cmd_name] = build(cmd_name)
        return command

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None:
            # Not given, the flag's value is None, which typer coerces through a pydantic
            # TypeAdapter: pydantic would load (70 ms and more) before `milepost stop
            # --help` reaches stop's own --help. False means the same and is not coerced.
            option.default = False
        return option

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def command() -> MilepostGroup:
    """`milepost`, every noun not loaded yet."""
    return MilepostGroup(
        name="milepost",
        help=HELP,
        no_args_is_help=True,
        commands={name: _NotLoaded(name, help=line) for name, (_, _, line) in NOUNS.items()},
    )


def full_command() -> MilepostGroup:
    """`milepost` with every noun loaded: the whole command tree (the CLI reference and the
    tests walk it)."""
    group = command()
    for name in NOUNS:
        group.commands[name] = build(name)
    return group


def _one_line(bad: typer.TyperException) -> str:
    return " ".join(bad.format_message().split()) + " (see --help)"


def _undecodable(argv: list[str]) -> str | None:
    """The first argument holding bytes that are not UTF-8 (Python hands them over as lone
    surrogates, which no file, ledger or message can take), shown safely, or None."""
    for arg in argv:
        if any("\ud800" <= char <= "\udfff" for char in arg):
            return shown(arg)
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error is one line on stderr, never a traceback."""
    undecodable = _undecodable(sys.argv[1:] if argv is None else argv)
    if undecodable is not None:
        print(
            f"milepost: error: argument {undecodable} is not UTF-8 text: use UTF-8",
            file=sys.stderr,
        )
        return 2
    try:
        result = command().main(args=argv, prog_name="milepost", standalone_mode=False)
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        print("milepost: interrupted", file=sys.stderr)
        return 130
    except NoArgsIsHelpError as no_args:
        print(no_args.format_message(), file=sys.stderr)
        return 2
    except typer.TyperException as bad:
        print(f"milepost: error: {_one_line(bad)}", file=sys.stderr)
        return 2
    except Stopped as stopped:
        print(f"milepost: {printable(str(stopped))}", file=sys.stderr)
        return stopped.exit_code
    except MilepostError as failed:
        print(f"milepost: error: {printable(str(failed))}", file=sys.stderr)
        return failed.exit_code
    except KeyboardInterrupt:
        print("milepost: interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
