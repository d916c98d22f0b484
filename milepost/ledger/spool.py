"""The spool: where records wait when the ledger cannot be written. Nothing is dropped.

``spool(records, reason)`` writes ONE new file per call, <state_dir>/spool/
<UTC time>-<pid>-<n>.jsonl: a header line {"milepost_spool": 1, reason, pid, pid_started,
controller, created_at, count} and one line per record (recorded_at stamped at spool time,
so the ledger keeps when things happened). The file is written under a temporary name,
fsynced and renamed into place, so a spool file is always complete: once spool() returns,
the records are acknowledged.

``append_or_spool(records, what)`` is what a command writing its own records calls: it
appends them, or spools them with one warning on stderr when the ledger cannot be written.

``replay(ledger)`` appends each file's records in file-name (time) order, one transaction
per file, together with a ``spool_replayed`` record {file, count, reason, spooled_at, pid,
controller}; the file is removed only after that commit. Replaying is safe to repeat: a
file whose spool_replayed record is already in the ledger (a crash between commit and
removal, or two replays racing — the check is made under the write lock) is only removed,
never appended twice.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from milepost.errors import MilepostError, UserError
from milepost.ledger.chain import canonical_body, load_body, utc_now
from milepost.ledger.config import FILE_MODE
from milepost.ledger.database import LedgerUnavailable, problem
from milepost.ledger.files import fsync_dir
from milepost.ledger.runs import process_alive, process_start_time
from milepost.ledger.schema import records as T
from milepost.ledger.store import Prepared, Store, prepare
from milepost.paths import state_dir

if TYPE_CHECKING:
    from milepost.ledger.store import Store

HEADER_KEY = "milepost_spool"
MARKER_KIND = "spool_replayed"
_counter = itertools.count(1)


def spool_dir() -> Path:
    return state_dir() / "spool"


def pending(directory: Path | None = None) -> list[Path]:
    """Spool files waiting to be replayed, oldest first."""
    folder = directory or spool_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.jsonl") if not p.name.startswith("."))


def _line(record: Prepared) -> str:
    meta = json.dumps(
        {
            "kind": record.kind,
            "run_id": record.run_id,
            "host": record.host,
            "recorded_at": record.recorded_at,
        },
        ensure_ascii=False,
    )
    return meta[:-1] + ',"body":' + canonical_body(record.body) + "}"


def spool(records: Sequence[Mapping[str, Any]], reason: str, directory: Path | None = None) -> Path:
    """Write records to a new spool file (flushed, fsynced, renamed into place); return it.

    MilepostError if even the spool cannot be written: then the records are NOT saved.
    """
    prepared = [prepare(record) for record in records]
    folder = directory or spool_dir()
    created = utc_now()
    pid = os.getpid()
    name = f"{created.replace('-', '').replace(':', '')}-{pid}-{next(_counter):04d}.jsonl"
    header = {
        HEADER_KEY: 1,
        "reason": reason,
        "pid": pid,
        "pid_started": process_start_time(pid),
        "controller": socket.gethostname(),
        "created_at": created,
        "count": len(prepared),
    }
    text = "".join(line + "\n" for line in [json.dumps(header), *map(_line, prepared)])
    final = folder / name
    tmp = folder / f".{name}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.fchmod(fd, FILE_MODE)  # 0600 whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        fsync_dir(folder)
    except OSError as bad:
        tmp.unlink(missing_ok=True)
        raise MilepostError(
            f"cannot spool {len(prepared)} ledger records to {folder}: {bad.strerror or bad};"
            " they are NOT saved"
        ) from None
    return final


def append_or_spool(
    records: Sequence[Mapping[str, Any]], what: str, ledger: Store | None = None
) -> bool:
    """Append ``records`` to ``ledger`` (default: the configured one, opened here). When
    the ledger cannot be written, spool them (nothing is lost: `milepost ledger replay` or
    the next run writes them in) and warn once on stderr, naming ``what`` ("the QC
    results"); if even the spool fails, warn that they were not recorded. True when they
    went into the ledger."""
    try:
        if ledger is not None:
            ledger.append(records)
        else:
            with Store.open() as opened:
                opened.append(records)
        return True
    except (MilepostError, OSError) as exc:
        try:
            spool(records, reason=f"ledger unavailable ({exc})")
        except (MilepostError, OSError) as lost:
            print(f"milepost: warning: {what} not recorded ({lost})", file=sys.stderr)
            return False
        print(
            f"milepost: warning: ledger unavailable ({exc}); {what} spooled:"
            " `milepost ledger replay` writes them in",
            file=sys.stderr,
        )
        return False


def read_spool(path: Path) -> tuple[dict[str, Any], list[Prepared]]:
    """A spool file's header and records; UserError if it is damaged."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as bad:
        raise UserError(f"cannot read spool file {path}: {bad}") from None
    try:
        header = json.loads(lines[0])
        if not isinstance(header, dict) or header.get(HEADER_KEY) != 1:
            raise ValueError("no spool header")
        records = [prepare(json.loads(line)) for line in lines[1:] if line.strip()]
        if header.get("count") != len(records):
            raise ValueError(f"header says {header.get('count')} records, found {len(records)}")
    except (IndexError, ValueError, UserError) as bad:
        raise UserError(
            f"spool file {path} is damaged ({bad}): fix or move it aside, then run"
            " `milepost ledger replay` again"
        ) from None
    return header, records


def _writer_finished(header: Mapping[str, Any]) -> bool:
    pid, started = header.get("pid"), header.get("pid_started")
    if header.get("controller") != socket.gethostname() or not isinstance(pid, int):
        return False
    return not process_alive(pid, started if isinstance(started, int) else None)


def replay(ledger: Store, directory: Path | None = None, only_finished: bool = False) -> int:
    """Append every spooled record to the ledger, oldest file first; return how many.

    ``only_finished``: skip files whose writer process is still running (it replays its
    own). LedgerUnavailable if the ledger still cannot be written (the files stay).
    """
    total = 0
    for path in pending(directory):
        header, records = read_spool(path)
        if only_finished and not _writer_finished(header):
            continue
        marker = prepare(
            {
                "kind": MARKER_KIND,
                "body": {
                    "file": path.name,
                    "count": len(records),
                    "reason": header.get("reason"),
                    "spooled_at": header.get("created_at"),
                    "pid": header.get("pid"),
                    "controller": header.get("controller"),
                },
            }
        )
        try:
            with ledger.write_transaction() as conn:
                done = any(
                    load_body(body).get("file") == path.name
                    for body in conn.scalars(select(T.c.body).where(T.c.kind == MARKER_KIND))
                )
                if not done:
                    ledger.append_locked(conn, [*records, marker])
                    total += len(records)
        except SQLAlchemyError as bad:
            raise LedgerUnavailable(
                f"cannot write to the ledger {ledger.masked_url}: {problem(bad)};"
                f" {path.name} and later spool files stay for the next replay"
            ) from bad
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
    return total
