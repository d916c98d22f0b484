"""Where the ledger lives: $MILEPOST_LEDGER_URL, else a SQLite file in the checkout's state."""

from __future__ import annotations

import os

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from milepost.paths import state_dir

ENV_URL = "MILEPOST_LEDGER_URL"
DEFAULT_FILE = "ledger.sqlite"


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
