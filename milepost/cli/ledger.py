"""`milepost ledger ...`: read, check, sign, export and archive the maintenance ledger.

Every command first closes runs whose writer process is gone (and replays spool files of
finished writers). Exit codes: 0 done (verify: intact), 1 verify found a broken or
truncated chain or the work failed, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cli.common import (
    JsonOption,
    console,
    open_ledger,
    parse_when,
    print_json,
    short_time,
    warn,
)
from milepost.errors import UserError
from milepost.ledger.names import ENV_PUBLIC_KEY, PUBLIC_KEY_FILE, RUN_KINDS, TASK_STATUSES

if TYPE_CHECKING:
    from milepost.ledger.chain import VerifyResult

ledger_app = typer.Typer(help="The maintenance ledger.", no_args_is_help=True)

STATUS_STYLE = {
    "successful": "green",
    "failed": "red",
    "aborted": "yellow",
    "running": "cyan",
    "ok": "green",
    "changed": "yellow",
    "unreachable": "red",
    "skipped": "dim",
}


def _styled(status: str | None) -> str:
    text = escape(str(status or "-"))
    style = STATUS_STYLE.get(str(status))
    return f"[{style}]{text}[/{style}]" if style else text


def _totals(hosts: dict[str, dict[str, int]]) -> dict[str, int]:
    totals = dict.fromkeys(TASK_STATUSES, 0)
    for counts in hosts.values():
        for status in TASK_STATUSES:
            totals[status] += int(counts.get(status, 0))
    return totals


def _runs_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        "run",
        "playbook",
        "kind",
        "operator",
        "started (UTC)",
        "ended",
        "status",
        "check",
        "hosts",
        *TASK_STATUSES,
    )
    for r in rows:
        totals = _totals(r["hosts"])
        table.add_row(
            escape(r["run_id"]),
            escape(str(r["playbook"] or "-")),
            escape(str(r["kind"] or "-")),
            escape(str(r["operator"] or "-")),
            short_time(r["started_at"]),
            short_time(r["ended_at"]),
            _styled(r["status"]),
            "yes" if r["check_mode"] else "no",
            str(len(r["hosts"])),
            *(str(totals[s]) for s in TASK_STATUSES),
        )
    return table


@ledger_app.command("upgrade")
def upgrade() -> None:
    """Create or upgrade the ledger's schema (Alembic migrations)."""
    ledger = open_ledger()
    console.print(f"ledger {escape(ledger.masked_url)} is at schema revision {ledger.revision()}")


@ledger_app.command("runs")
def runs(
    host: Annotated[str | None, typer.Option("--host", help="Only runs touching HOST.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Started at or after: YYYY-MM-DD, ISO time, 7d.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help=f"Only runs of this kind: {', '.join(RUN_KINDS)}.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="At most N runs, newest first; 0: all.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """Runs, newest first, with per-host result counts."""
    when = parse_when(since, "--since") if since else None
    if kind is not None and kind not in RUN_KINDS:
        raise UserError(f"--kind must be one of {', '.join(RUN_KINDS)}, not {kind!r}")
    if limit < 0:
        raise UserError(f"--limit must be 0 or more, not {limit}")
    rows = open_ledger().runs(host=host, since=when, kind=kind, limit=limit or None)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no runs in the ledger match")
        return
    console.print(_runs_table(rows))


@ledger_app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="A run id from `ledger runs`.")],
    as_json: JsonOption = False,
) -> None:
    """One run: who, what, when, per-host counts and every task result."""
    detail = open_ledger().run(run_id)
    if as_json:
        print_json(detail)
        return
    for label, key in (
        ("run", "run_id"),
        ("playbook", "playbook"),
        ("kind", "kind"),
        ("operator", "operator"),
        ("controller", "controller"),
        ("git commit", "git_commit"),
        ("limit", "limit"),
        ("check mode", "check_mode"),
        ("started", "started_at"),
        ("ended", "ended_at"),
    ):
        console.print(
            f"{label:>11}: {escape(str(detail[key]) if detail[key] is not None else '-')}"
        )
    reason = f" ({escape(detail['reason'])})" if detail["reason"] else ""
    console.print(f"{'status':>11}: {_styled(detail['status'])}{reason}")
    if detail["hosts"]:
        hosts = Table("host", *TASK_STATUSES, title="per host")
        for name, counts in detail["hosts"].items():
            hosts.add_row(escape(name), *(str(counts[s]) for s in TASK_STATUSES))
        console.print(hosts)
    if detail["task_results"]:
        results = Table("seq", "host", "task", "status", "duration (s)", title="task results")
        for r in detail["task_results"]:
            duration = r.get("duration")
            results.add_row(
                str(r["seq"]),
                escape(str(r["host"])),
                escape(str(r.get("task") or "-")),
                _styled(r.get("status")),
                f"{duration:.2f}" if isinstance(duration, int | float) else "-",
            )
        console.print(results)
    if detail["records"]:
        other = Table("seq", "kind", "host", "body", title="other records")
        for r in detail["records"]:
            body = json.dumps(r["body"], ensure_ascii=False, sort_keys=True)
            other.add_row(
                str(r["seq"]),
                escape(r["kind"]),
                escape(str(r["host"] or "-")),
                escape(body if len(body) <= 120 else body[:117] + "..."),
            )
        console.print(other)


@ledger_app.command("host")
def host(
    name: Annotated[str, typer.Argument(metavar="HOST", help="An inventory host name.")],
    limit: Annotated[int, typer.Option("--limit", help="Recent runs to show.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """A host's recent runs, current package versions and recent package changes."""
    if limit < 1:
        raise UserError(f"--limit must be 1 or more, not {limit}")
    detail = open_ledger().host(name, limit=limit)
    if as_json:
        print_json(detail)
        return
    console.print(f"host {escape(name)}")
    if detail["runs"]:
        console.print(_runs_table(detail["runs"]))
    if detail["packages"]:
        as_of = detail["packages_as_of"]
        title = f"packages (facts of {short_time(as_of)})" if as_of else "packages"
        packages = Table("package", "version", title=title)
        for package, version in detail["packages"].items():
            packages.add_row(escape(package), escape(version))
        console.print(packages)
    if detail["package_changes"]:
        changes = Table("recorded (UTC)", "package", "from", "to", "run", title="package changes")
        for c in detail["package_changes"]:
            changes.add_row(
                short_time(c["recorded_at"]),
                escape(str(c["package"])),
                escape(str(c["from_version"] or "-")),
                escape(str(c["to_version"] or "(removed)")),
                escape(str(c["run_id"] or "-")),
            )
        console.print(changes)


def _report(result: VerifyResult, what: str, checkpoint: Path | None, as_json: bool) -> None:
    if as_json:
        print_json(result.as_dict())
    elif result.ok:
        span = f"seq {result.first_seq}..{result.head_seq}" if result.count else "empty"
        extra = f"; extends checkpoint {checkpoint}" if checkpoint else ""
        console.print(
            f"{what} intact: {result.count} records ({span}), head {result.head_hash}{extra}"
        )
    else:
        where = f"record {result.first_bad_seq}: " if result.first_bad_seq is not None else ""
        console.print(f"{what} verify FAILED: {where}{escape(result.reason or '')}")
    if not result.ok:
        raise typer.Exit(1)


@ledger_app.command("verify")
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="Also prove the ledger still extends this signed head."),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help=(
                "The key the checkpoint must be signed with: base64 raw Ed25519, or a file"
                f" holding it (default: ${ENV_PUBLIC_KEY}, else .milepost/{PUBLIC_KEY_FILE});"
                " the key inside the checkpoint file is never trusted."
            ),
        ),
    ] = None,
    archive: Annotated[
        Path | None,
        typer.Option("--archive", help="Check this archive file (on its own) instead."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the hash chain: exit 0 if intact, 1 naming the first bad record.

    With --checkpoint, the checkpoint must be signed by the configured key (--public-key,
    $MILEPOST_CHECKPOINT_PUBLIC_KEY or .milepost/ledger-signing.pub): with none, exit 2.

    Read-only: unlike the other commands it closes no stale run and replays no spool, so
    it never writes onto the chain it judges."""
    from milepost.ledger.archive import verify_archive
    from milepost.ledger.book import Ledger
    from milepost.ledger.checkpoint import load_checkpoint

    if archive is not None:
        _report(
            verify_archive(archive, checkpoint, public_key), f"archive {archive}", None, as_json
        )
        return
    point = load_checkpoint(checkpoint, public_key) if checkpoint is not None else None
    with Ledger.open() as ledger:
        result = ledger.verify(point)
    _report(result, "ledger", checkpoint, as_json)


@ledger_app.command("checkpoint")
def checkpoint(
    out: Annotated[Path, typer.Option("--out", help="Write the signed checkpoint here.")],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Ed25519 signing key (default .milepost/ledger-signing.key)."),
    ] = None,
) -> None:
    """Sign the chain's head (seq, count, hash) for publishing outside the database."""
    from milepost.ledger.checkpoint import write_checkpoint

    document = write_checkpoint(open_ledger(), out, key_path=key)
    console.print(
        f"checkpoint written to {escape(str(out))}: record {document['seq']}, head"
        f" {document['head_hash']}, signing key {document['public_key']}"
    )


@ledger_app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to FILE (default: standard output).")
    ] = None,
) -> None:
    """Every record with its hashes, as JSON lines or CSV."""
    from milepost.ledger.export import FORMATS
    from milepost.ledger.files import atomic_file

    if fmt not in FORMATS:
        raise UserError(f"--format must be jsonl or csv, not {fmt!r}")
    ledger = open_ledger()
    if out is None:
        ledger.export(fmt, sys.stdout)
        sys.stdout.flush()
        return
    # Mode 0600 whatever the umask: the records name hosts, people and failures.
    with atomic_file(out, newline="") as handle:
        count = ledger.export(fmt, handle)
    warn(f"exported {count} records to {out}")


@ledger_app.command("archive")
def archive(
    before: Annotated[
        str, typer.Option("--before", help="Archive records before: YYYY-MM-DD, ISO time, 90d.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="The archive file to create (not overwritten).")
    ],
) -> None:
    """Move old records to an archive file with its chain proof; the live chain still verifies."""
    from milepost.ledger.archive import archive as archive_before

    when = parse_when(before, "--before")
    moved = archive_before(open_ledger(), when, out)
    if moved == 0:
        console.print(f"nothing recorded before {when.isoformat()}: nothing archived")
        return
    console.print(
        f"archived {moved} records to {escape(str(out))}; the ledger holds an archive_anchor"
        " record for it. Keep the file (and copies): `milepost ledger verify --archive` checks it"
    )


@ledger_app.command("replay")
def replay() -> None:
    """Write spooled records (kept while the ledger was unavailable) into the ledger."""
    import milepost.ledger.spool as spooling
    from milepost.ledger.book import Ledger
    from milepost.ledger.housekeeping import tidy

    ledger = Ledger.open()
    count = spooling.replay(ledger)
    tidy(ledger, replay_finished=False)
    console.print(f"replayed {count} spooled records into the ledger")
