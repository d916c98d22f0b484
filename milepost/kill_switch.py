"""The kill switch: a file that stops maintenance runs from starting new batches.

`milepost stop --reason TEXT` sets it; `milepost stop --clear` clears it. Playbooks check
it before every batch (playbooks/tasks/kill_switch.yml), so a batch already running
finishes and no new one starts.
"""

import getpass
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from milepost.errors import UserError
from milepost.paths import state_dir

FILE_NAME = "stop"


def path() -> Path:
    return state_dir() / FILE_NAME


def set_switch(reason: str) -> dict[str, Any]:
    if not reason.strip():
        raise UserError("--reason must say why the runs are being stopped")
    record = {
        "reason": " ".join(reason.split()),
        "by": getpass.getuser(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, target)
    return record


def clear() -> bool:
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True


def read() -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path().read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"reason": "unreadable kill switch file", "by": "?", "at": "?"}
    return data
