"""The kill switch: stops maintenance runs from starting new batches.

`milepost stop --reason TEXT` sets it; `milepost stop --clear` clears it. It is a
`kill_switch` record in the maintenance ledger (body: state set | cleared, reason,
operator, controller, at), so every run that records into the same ledger stops, from any
controller, however it was started: the action plugin milepost_kill_switch reads it before
every batch (playbooks/tasks/kill_switch.yml). The local file is written too, for a
controller that cannot reach its ledger; either one set stops the next batch.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from milepost.errors import MilepostError, UserError
from milepost.ledger import Ledger
from milepost.ledger.book import open_existing
from milepost.ledger.chain import load_body
from milepost.ledger.schema import records as T
from milepost.operator import operator_name
from milepost.paths import state_dir

FILE_NAME = "stop"
KIND = "kill_switch"


def path() -> Path:
    return state_dir() / FILE_NAME


def _record(state: str, reason: str) -> dict[str, Any]:
    return {
        "state": state,
        "reason": reason,
        "operator": operator_name(),
        "controller": socket.gethostname(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _to_ledger(body: dict[str, Any]) -> str:
    """Append the record; where it went, or why it could not (the file still holds it)."""

    try:
        with Ledger.open() as ledger:
            ledger.append([{"kind": KIND, "run_id": None, "host": None, "body": body}])
    except (MilepostError, OSError) as exc:
        return f"NOT in the ledger ({exc}); only this controller's file"
    return "the ledger"


def set_switch(reason: str) -> tuple[dict[str, Any], str]:
    """Set the switch in the ledger and the local file; (record, where it was recorded)."""
    if not reason.strip():
        raise UserError("--reason must say why the runs are being stopped")
    body = _record("set", " ".join(reason.split()))
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"reason": body["reason"], "by": body["operator"], "at": body["at"]}) + "\n"
    )
    os.replace(tmp, target)
    return body, f"{_to_ledger(body)} and {target}"


def clear() -> tuple[bool, str]:
    """Clear the switch in the ledger and the local file; (was it set, where cleared)."""
    was_set = read() is not None
    try:
        path().unlink()
    except FileNotFoundError:
        pass
    where = _to_ledger(_record("cleared", "cleared with milepost stop --clear"))
    return was_set, f"{where} and {path()}"


def from_ledger(url: str | None = None) -> dict[str, Any] | None:
    """The switch as the ledger's newest kill_switch record says ({reason, by, at, seq}),
    None when cleared or never set, or when a SQLite ledger does not exist yet. A record
    that cannot be read counts as set (fail closed). UserError if the ledger cannot be
    read."""

    ledger = open_existing(url)
    if ledger is None:
        return None
    try:
        with ledger.read_transaction() as conn:
            row = conn.execute(
                select(T.c.seq, T.c.body).where(T.c.kind == KIND).order_by(T.c.seq.desc()).limit(1)
            ).first()
    finally:
        ledger.close()
    if row is None:
        return None
    body = load_body(row.body)
    if body.get("state") == "cleared":
        return None
    return {
        "reason": str(body.get("reason") or f"ledger record {row.seq} (unreadable)"),
        "by": str(body.get("operator") or "?"),
        "at": str(body.get("at") or "?"),
        "seq": int(row.seq),
    }


def from_file(target: Path | None = None) -> dict[str, Any] | None:
    target = target or path()
    try:
        data = json.loads(target.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"reason": f"unreadable kill switch file {target}", "by": "?", "at": "?"}
    if not isinstance(data, dict):
        return {"reason": f"malformed kill switch file {target}", "by": "?", "at": "?"}
    return data


def read() -> dict[str, Any] | None:
    """The switch: the ledger's, else the local file's; a ledger that cannot be read
    counts as set (fail closed)."""
    try:
        found = from_ledger()
    except MilepostError as exc:
        return {
            "reason": f"the kill switch could not be read from the ledger ({exc})",
            "by": "?",
            "at": "?",
        }
    return found if found is not None else from_file()
