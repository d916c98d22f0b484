"""The `milepost` command.

Exit codes: 0 success, 1 the work failed, 2 bad input or a missing prerequisite.
"""

import copy
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer._click import Command, Context, HelpFormatter
from typer._click.exceptions import NoArgsIsHelpError
from typer.core import TyperGroup, TyperOption
from typer.models import TyperInfo

# The command modules below keep their heavy imports (SQLAlchemy, Jinja2, Ansible Runner,
# the ledger's store...) inside the commands that use them: every `milepost` command, its
# --help included, imports all of them. tests/unit/test_cli_startup.py checks it.
from milepost.advisory_cli import advisory_app
from milepost.drift_cli import AllowDowngradeOption, allow_downgrade_vars, change_app, drift_app
from milepost.errors import MilepostError, UserError, printable
from milepost.exposure_cli import exception_app, exposure
from milepost.input_checks import shown
from milepost.lab import topology
from milepost.ledger.cli import app as ledger_app
from milepost.notify_cli import notify_app
from milepost.qc_cli import qc_app
from milepost.registers_cli import note_app
from milepost.report_cli import report_app
from milepost.runner import Interrupted
from milepost.vendor_cli import vendor_app


class _NotBuilt(TyperGroup):
    """A command group of `milepost` not built yet: its name and help, for the listing of
    `milepost --help`, and what builds it (see lazy_command)."""

    def __init__(self, info: TyperInfo, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.info = info


class MilepostGroup(TyperGroup):
    """The `milepost` group. A group of its commands that is a _NotBuilt is built when
    first used (not while the help lists it), so one command does not pay for building
    every other command's parameters."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if isinstance(command, _NotBuilt) and not self._listing:
            command = self.commands[cmd_name] = typer.main.get_group_from_info(
                command.info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                suggest_commands=app.suggest_commands,
                rich_markup_mode=app.rich_markup_mode,
            )
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


app = typer.Typer(
    cls=MilepostGroup,
    help="Milepost: operations and maintenance automation for a Road Usage Charge program.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
lab_app = typer.Typer(help="The local lab fleet of Debian hosts.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")
app.add_typer(ledger_app, name="ledger")
app.add_typer(drift_app, name="drift")
app.add_typer(change_app, name="change")
app.add_typer(advisory_app, name="advisory")
app.add_typer(exception_app, name="exception")
app.command("exposure")(exposure)
app.add_typer(vendor_app, name="vendor")
app.add_typer(note_app, name="note")
app.add_typer(qc_app, name="qc")
app.add_typer(report_app, name="report")
app.add_typer(notify_app, name="notify")


def lazy_command() -> MilepostGroup:
    """`milepost` as typer.main.get_command(app) builds it, except that its command groups
    start as _NotBuilt: typer would build every command of every group, with all their
    parameters (some 40 ms), before running one."""
    commands_only = copy.copy(app)
    commands_only.registered_groups = []
    group = typer.main.get_command(commands_only)
    assert isinstance(group, MilepostGroup)
    for info in app.registered_groups:
        solved = typer.main.solve_typer_info_defaults(info)
        name = solved.name or ""
        group.commands[name] = _NotBuilt(
            info,
            name=name,
            help=solved.help,
            short_help=solved.short_help,
            hidden=solved.hidden,
            deprecated=solved.deprecated,
            rich_help_panel=solved.rich_help_panel,
            rich_markup_mode=app.rich_markup_mode,
        )
    return group


console = Console()
if not console.is_terminal:
    # Piped or captured output: do not squeeze tables into 80 columns.
    console = Console(width=200)


@lab_app.command("up")
def lab_up(
    hosts: Annotated[
        str,
        typer.Option(
            "--hosts",
            metavar="N",
            help=f"Number of hosts, {topology.MIN_HOSTS} to {topology.MAX_HOSTS}.",
        ),
    ] = str(topology.DEFAULT_HOSTS),
) -> None:
    """Start the lab: base image, signed APT repository, hosts, inventory/lab/hosts.yml."""
    # isascii: str.isdigit() also says yes to digits int() cannot read, such as '\u00b2'.
    if (
        not (hosts.isascii() and hosts.isdigit())
        or not topology.MIN_HOSTS <= int(hosts) <= topology.MAX_HOSTS
    ):
        raise UserError(
            f"--hosts must be a whole number from {topology.MIN_HOSTS} to {topology.MAX_HOSTS},"
            f" not {shown(hosts)}"
        )
    from milepost.lab import fleet

    started = fleet.up(int(hosts))
    console.print(f"lab up: {len(started)} hosts; inventory written to inventory/lab/hosts.yml")


@lab_app.command("down")
def lab_down() -> None:
    """Remove every lab container and the lab inventory."""
    from milepost.lab import fleet

    removed = fleet.down()
    console.print(f"lab down: removed {len(removed)} containers")


@lab_app.command("reset")
def lab_reset() -> None:
    """Put every lab host back on its oldest RUC release, without the RUC source or lock."""
    from milepost.lab import fleet

    hosts = fleet.reset()
    console.print(f"lab reset: {len(hosts)} hosts back on their initial RUC versions")


@lab_app.command("status")
def lab_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A table of lab hosts: group, vendor, port, reachable, ruc-* versions."""
    from milepost.lab import fleet

    rows = fleet.status()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("no lab hosts: run `scripts/lab up`")
        return
    table = Table("host", "group", "vendor", "port", "reachable", "ruc-* versions")
    for r in rows:
        versions = ", ".join(f"{k} {v}" for k, v in sorted(r["versions"].items())) or "-"
        table.add_row(
            r["name"],
            r["group"],
            r["vendor"],
            str(r["port"]),
            "yes" if r["reachable"] else f"no ({r['container']})",
            versions,
        )
    console.print(table)
    reachable = sum(1 for r in rows if r["reachable"])
    console.print(f"{reachable} of {len(rows)} hosts reachable")
    if reachable < len(rows):
        raise typer.Exit(1)


@app.command("stop")
def stop(
    reason: Annotated[str, typer.Option("--reason", help="Why runs must stop.")] = "",
    clear: Annotated[bool, typer.Option("--clear", help="Let runs start batches again.")] = False,
) -> None:
    """Kill switch: running maintenance stops before its next batch; new runs refuse."""
    from milepost import kill_switch

    if clear:
        was_set, where = kill_switch.clear()
        console.print(
            f"kill switch {'cleared' if was_set else 'was not set; cleared anyway'} in {where}"
        )
        return
    record, where = kill_switch.set_switch(reason)
    console.print(f"kill switch set in {where}: {record['reason']}")


EXTRA_VAR_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: Longest --reason for a window override (as the emergency patch's).
MAX_REASON = 500
OVERRIDE_VARS = ("preflight_override_window", "preflight_override_reason")


def _extra_vars(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs as Ansible reads -e key=value: every value a string."""
    import re

    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(EXTRA_VAR_NAME, key):
            raise UserError(
                f"-e {pair!r} is not KEY=VALUE with KEY a variable name (letters, digits, _)"
            )
        if key in OVERRIDE_VARS:
            raise UserError(f"-e {key} is set by --override-window --reason TEXT: use those")
        if key in ("milepost_environment", "milepost_allow_downgrade"):
            raise UserError(
                f"-e {key} is not an extra var: the inventory says milepost_environment;"
                " name downgrades with --allow-downgrade PACKAGE"
            )
        found[key] = value
    return found


MAINTAIN_HELP = (
    "Run the maintenance cycle (playbooks/maintain.yml) after checking the inventory."
    "\n\n"
    "The inventory is checked before any host is touched: every RUC host has a vendor,"
    " valid package pins and well-formed windows, every vendor interface a url or host."
    " The run is recorded in the maintenance ledger."
    "\n\n"
    "Exit codes: 0 the run succeeded; 1 the run failed (a host failed or was unreachable,"
    " the window was closed, the kill switch was set); 2 bad input (inventory or options),"
    " no host touched; 130 or 143 interrupted by Ctrl-C or SIGTERM (the run is closed as"
    " aborted in the ledger)."
    "\n\n"
    "In hypercare (milepost_phase: hypercare in the inventory, or -e milepost_phase=hypercare)"
    " the canary is one host, QC runs after every batch, warnings open a glitch and a drift"
    " check follows the run."
)


@app.command("maintain", help=MAINTAIN_HELP)
def maintain(
    inventory: Annotated[
        str | None,
        typer.Option(
            "-i",
            "--inventory",
            metavar="PATH",
            help="Inventory file or directory (default: the one ansible.cfg names).",
        ),
    ] = None,
    limit: Annotated[
        str | None,
        typer.Option("--limit", metavar="PATTERN", help="Only these RUC hosts (Ansible pattern)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; report what would change.")
    ] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show the changes to files.")] = False,
    override_window: Annotated[
        bool,
        typer.Option(
            "--override-window",
            help="Run outside the maintenance window; needs --reason (recorded in the ledger).",
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", metavar="TEXT", help="Why the window is overridden."),
    ] = None,
    extra_var: Annotated[
        list[str] | None,
        typer.Option(
            "-e",
            "--extra-var",
            metavar="KEY=VALUE",
            help="An extra variable for the playbook (repeatable; values are strings).",
        ),
    ] = None,
    allow_downgrade: AllowDowngradeOption = None,
) -> None:
    """Check the inventory, then run playbooks/maintain.yml (help: MAINTAIN_HELP)."""
    from milepost.input_checks import check_limit, check_untemplated
    from milepost.runner import run_checked

    variables: dict[str, Any] = dict(_extra_vars(extra_var or []))
    variables.update(allow_downgrade_vars(allow_downgrade))
    if limit is not None:
        limit = check_limit(limit)
    if reason is not None and not override_window:
        raise UserError("--reason is only used with --override-window")
    if override_window:
        if not " ".join((reason or "").split()):
            raise UserError("--override-window needs --reason TEXT saying why (it is recorded)")
        # The reason goes to the playbook as an extra var, which Ansible templates.
        why = check_untemplated(reason or "", "--reason", max_len=MAX_REASON)
        variables.update(preflight_override_window=True, preflight_override_reason=why)
    result = run_checked(
        "maintain.yml",
        inventory=inventory,
        limit=limit,
        check=check,
        diff=diff,
        extravars=variables,
    )
    if not result.succeeded:
        raise MilepostError(
            f"maintenance run {result.run_id} {result.status} (ansible-playbook exit"
            f" {result.rc}); see `milepost ledger show {result.run_id}`"
        )
    console.print(f"maintenance run {result.run_id} successful")
    if result.phase == "hypercare" and not check:
        console.print(
            f"hypercare: drift check recorded under run {result.run_id} (`milepost drift report`)"
        )


EMERGENCY_HELP = (
    "Patch every host exposed to one advisory now: canary first, health-gated, failed hosts"
    " rolled back, maintenance windows overridden (the reason is recorded)."
    "\n\n"
    "The exposed hosts come from the ledger (`milepost exposure --advisory ID`); hosts"
    " without package facts yet are checked live. The run is an `emergency` run in the"
    " ledger, linked to the advisory."
    "\n\n"
    "Exit codes: 0 every exposed host patched and verified; 1 some hosts failed (and were"
    " rolled back), were unreachable or are still exposed; 2 bad input, no host touched;"
    " 3 refused (another emergency patch holds the fleet lock, or the kill switch is set);"
    " 130 or 143 interrupted."
)


@app.command("emergency-patch", help=EMERGENCY_HELP)
def emergency_patch(
    advisory: Annotated[
        str,
        typer.Option("--advisory", metavar="ID", help="The advisory to patch (CVE or vendor id)."),
    ],
    limit: Annotated[
        str | None,
        typer.Option("--limit", metavar="PATTERN", help="Only these RUC hosts (Ansible pattern)."),
    ] = None,
    canary: Annotated[
        str, typer.Option("--canary", metavar="N", help="Hosts in the canary batch.")
    ] = "1",
    reason: Annotated[
        str | None,
        typer.Option("--reason", metavar="TEXT", help="Why (recorded with the window override)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the exposed hosts and the plan; touch nothing.")
    ] = False,
    inventory: Annotated[
        str | None,
        typer.Option(
            "-i",
            "--inventory",
            metavar="PATH",
            help="Inventory file or directory (default: the one ansible.cfg names).",
        ),
    ] = None,
) -> None:
    """Emergency patch of one advisory (help: EMERGENCY_HELP)."""
    from milepost import emergency
    from milepost.fleet_lock import Refused

    try:
        request = emergency.check_request(
            advisory=advisory,
            limit=limit,
            canary=canary,
            reason=reason,
            inventory=inventory,
            yes=yes,
            dry_run=dry_run,
        )
        summary = emergency.emergency_patch(request, console)
    except (UserError, Refused) as refused:
        emergency.record_refusal(advisory, str(refused), refused.exit_code)
        raise
    if summary is None:
        return
    emergency.print_summary(console, summary)
    if not summary.complete:
        raise MilepostError(
            f"emergency run {summary.run_id} did not patch every exposed host; see"
            f" `milepost ledger show {summary.run_id}`"
        )


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
    command = lazy_command()
    undecodable = _undecodable(sys.argv[1:] if argv is None else argv)
    if undecodable is not None:
        print(
            f"milepost: error: argument {undecodable} is not UTF-8 text: use UTF-8",
            file=sys.stderr,
        )
        return 2
    try:
        result = command.main(args=argv, prog_name="milepost", standalone_mode=False)
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
    except Interrupted as stopped:
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
