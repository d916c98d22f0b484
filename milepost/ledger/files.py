"""Files written so that readers see the old content or the new, never a part (mode 0600
whatever the umask): checkpoints, archives, the spool, the dashboard."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from milepost.errors import UserError
from milepost.ledger.config import FILE_MODE

__all__ = ["atomic_file", "fsync_dir", "write_atomic"]


@contextmanager
def atomic_file(path: Path, *, newline: str | None = None) -> Iterator[IO[str]]:
    """A text handle on a new temporary file (mode 0600 whatever the umask) that replaces
    ``path`` when the block ends without error (fsynced): readers see the old content or
    the new, never a part. UserError (one line) if it cannot be written."""
    path = path.resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as bad:
        raise UserError(f"cannot write {path}: {bad.strerror}") from None
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as bad:
        raise UserError(f"cannot write {path}: {bad.strerror}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """Write a file (mode 0600) so readers see the old content or the new, never a part."""
    with atomic_file(path) as handle:
        handle.write(text)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
