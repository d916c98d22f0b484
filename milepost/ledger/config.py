"""Where the ledger lives: $MILEPOST_LEDGER_URL, else a SQLite file in the checkout's state;
the mode of the files it writes; the URL of the local PostgreSQL scripts/postgres runs."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from milepost.errors import UserError
from milepost.paths import state_dir

ENV_URL = "MILEPOST_LEDGER_URL"
DEFAULT_FILE = "ledger.sqlite"
#: The mode of every file the ledger writes (the SQLite file and its -wal/-shm, spool
#: files, exports, archives, checkpoints): records name hosts, people and failures.
FILE_MODE = 0o600
#: scripts/postgres keeps the random password of its `milepost` role here (mode 0600).
ENV_PG_LOGIN_FILE = "MILEPOST_PG_PASSWORD_FILE"
DEFAULT_PG_PASSWORD_FILE = Path("/etc/milepost/postgres-password")
LOCAL_PG_ROLE = "milepost"
LOCAL_PG_DATABASE = "milepost_test"
LOCAL_PG_PORT = 5432


def ledger_url() -> str:
    """$MILEPOST_LEDGER_URL (any SQLAlchemy URL), else sqlite:///<root>/.milepost/ledger.sqlite."""
    url = os.environ.get(ENV_URL, "").strip()
    if url:
        return url
    return f"sqlite:///{state_dir() / DEFAULT_FILE}"


def mask_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@", 1)[-1] if "@" in url else url


def pg_password_file() -> Path:
    """$MILEPOST_PG_PASSWORD_FILE, else /etc/milepost/postgres-password (as scripts/postgres)."""
    given = os.environ.get(ENV_PG_LOGIN_FILE, "").strip()
    return Path(given) if given else DEFAULT_PG_PASSWORD_FILE


def local_postgres_url(database: str = LOCAL_PG_DATABASE, port: int = LOCAL_PG_PORT) -> str:
    """The URL of the local PostgreSQL scripts/postgres starts (role milepost, its random
    password read from pg_password_file()). UserError (one line) if the file is missing
    or unreadable: run scripts/postgres (as root) first."""
    path = pg_password_file()
    try:
        password = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as bad:
        reason = getattr(bad, "strerror", None) or str(bad)
        raise UserError(
            f"cannot read the local PostgreSQL password {path} ({reason}): run"
            f" `scripts/postgres` as root (or set {ENV_PG_LOGIN_FILE})"
        ) from None
    if not password:
        raise UserError(f"{path} is empty: run `scripts/postgres` as root to make a password")
    return (
        f"postgresql+psycopg://{LOCAL_PG_ROLE}:{quote(password, safe='')}@127.0.0.1:{port}"
        f"/{database}"
    )
