"""The ledger's database: one URL (SQLite or PostgreSQL, one code path), its schema created
or upgraded (Alembic), engines and transactions, and how a database failure is reported.

A Database is cheap to construct and safe to use from several threads. Its engine is created
lazily in each process (a forked child never reuses its parent's connections). SQLite
connections use WAL, synchronous=FULL and a busy timeout, set on every connection.
milepost.ledger.store.Store keeps the hash-chained records in it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Self

from sqlalchemy import (
    Engine,
    column,
    create_engine,
    event,
    inspect,
    select,
    table,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from milepost.errors import MilepostError, UserError
from milepost.ledger.config import FILE_MODE, ledger_url, mask_url
from milepost.ledger.schema import SCHEMA_HEAD, VERSION_TABLE

__all__ = ["Database", "LedgerUnavailable", "problem"]

#: pg_advisory_xact_lock key that serialises ledger writers ("MILEPOST" as 8 bytes).
PG_LOCK_KEY = int.from_bytes(b"MILEPOST", "big")
SQLITE_BUSY_TIMEOUT_MS = 15_000
PG_CONNECT_TIMEOUT_S = 10
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class LedgerUnavailable(MilepostError):
    """The ledger could not be written (database down, locked too long, disk full, file
    damaged). Nothing from the batch was stored: spool the records and replay them later."""


def problem(error: BaseException) -> str:
    """The database's complaint as one short line."""
    original = getattr(error, "orig", None) or error
    words = " ".join(str(original).split())
    return words[:300] or type(original).__name__


@cache
def _script_head() -> tuple[str, frozenset[str]]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_alembic_config())
    head = scripts.get_current_head()
    assert head is not None
    return head, frozenset(s.revision for s in scripts.walk_revisions())


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _create_private(path: Path) -> None:
    """Create an empty SQLite file with mode 0600 (whatever the umask) if there is none.
    SQLite gives the -wal and -shm files it makes the database file's mode, so they are
    0600 too. A file that exists is left alone: no descriptor of it is opened here (closing
    one would drop this process's POSIX locks on it, see _check_location)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("milepost_sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """The ledger's database at one URL: its schema, this process's engines, and
    transactions (milepost.ledger.store.Store adds the records).

    Construct with ``open(url)`` (creates or upgrades the schema). All methods may be
    called from any thread; a child process after fork() gets fresh connections.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
        self.masked_url = mask_url(url)
        try:
            self._url = make_url(url)
            self.backend = self._url.get_backend_name()
        except ArgumentError:
            raise UserError(
                f"ledger URL {self.masked_url!r} is not a database URL: use"
                " sqlite:////abs/path/ledger.sqlite or postgresql+psycopg://user:pw@127.0.0.1/db"
            ) from None
        if self.backend not in ("sqlite", "postgresql"):
            raise UserError(
                f"ledger URL {self.masked_url} uses {self.backend!r}: the ledger supports"
                " sqlite and postgresql"
            )
        self.url = url
        self._busy_timeout_ms = busy_timeout_ms
        self._engine: Engine | None = None
        self._write_engine: Engine | None = None
        self._engine_pid = 0
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, url: str | None = None) -> Self:
        """The ledger at ``url`` (default: ledger_url()), its schema created or upgraded.

        UserError (one line naming the URL) for a corrupt or foreign SQLite file, an
        unreachable PostgreSQL, an unwritable path, or a schema newer than this Milepost.
        """
        ledger = cls(url or ledger_url())
        ledger._check_location()
        ledger.upgrade()
        return ledger

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this process's pooled connections (the Ledger can still be used after)."""
        with self._lock:
            if self._engine is not None and self._engine_pid == os.getpid():
                self._engine.dispose()
            self._engine = self._write_engine = None

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    def _hint(self) -> str:
        if self.is_sqlite:
            return (
                "is it a Milepost ledger (a SQLite database)? move the file aside or point"
                " MILEPOST_LEDGER_URL elsewhere"
            )
        return (
            "is PostgreSQL running and the URL right? (scripts/postgres starts a local one;"
            " set MILEPOST_LEDGER_URL)"
        )

    def _check_location(self) -> None:
        if not self.is_sqlite:
            return
        database = self._url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise UserError(
                f"ledger URL {self.masked_url} is not a file: an in-memory ledger would vanish;"
                " use sqlite:////abs/path/ledger.sqlite"
            )
        path = Path(database)
        if path.is_dir():
            raise UserError(f"ledger {self.masked_url}: {path} is a directory, not a file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The file itself is not opened here: closing any descriptor of a SQLite file
            # drops every POSIX lock this process holds on it, under the feet of the
            # process's other ledger connections. A foreign file is found by upgrade().
            if not path.exists() and not os.access(path.parent, os.W_OK):
                raise UserError(
                    f"ledger {self.masked_url}: cannot create files in {path.parent};"
                    " choose a writable place with MILEPOST_LEDGER_URL"
                )
            _create_private(path)
        except OSError as bad:
            raise UserError(
                f"ledger {self.masked_url}: cannot use {path}: {bad.strerror or bad};"
                " choose a writable place with MILEPOST_LEDGER_URL"
            ) from None

    def upgrade(self) -> str:
        """Create or upgrade the schema to this Milepost's head revision; return it."""
        try:
            with self.engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
                current = self._revision(conn) if VERSION_TABLE in tables else None
            if current == SCHEMA_HEAD:
                return current
            head, known = _script_head()
            if current is None and tables:
                raise UserError(
                    f"ledger {self.masked_url} holds other tables ({', '.join(sorted(tables)[:3])})"
                    " and no ledger schema: it is not a Milepost ledger; use an empty database"
                )
            if current is not None and current not in known:
                raise UserError(
                    f"ledger {self.masked_url} has schema revision {current}, unknown to this"
                    " Milepost (made by a newer one?): upgrade Milepost"
                )
            from alembic import command

            with self.write_transaction() as conn:
                config = _alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except SQLAlchemyError as bad:
            if self.is_sqlite and "file is not a database" in str(bad):
                raise UserError(
                    f"ledger {self.masked_url}: {self._url.database} is not a SQLite database;"
                    " move it aside or point MILEPOST_LEDGER_URL elsewhere"
                ) from None
            raise UserError(
                f"cannot open the ledger {self.masked_url}: {problem(bad)}; {self._hint()}"
            ) from None
        return head

    def revision(self) -> str | None:
        """The schema revision the database is at."""
        with self.read_transaction() as conn:
            return self._revision(conn)

    @staticmethod
    def _revision(conn: Connection) -> str | None:
        version_table = table(VERSION_TABLE, column("version_num"))
        versions = conn.scalars(select(version_table.c.version_num)).all()
        return versions[0] if len(versions) == 1 else None

    # ------------------------------------------------------------- connections

    @property
    def engine(self) -> Engine:
        """This process's engine (created on first use, and again after a fork)."""
        pid = os.getpid()
        engine = self._engine
        if engine is not None and self._engine_pid == pid:
            return engine
        with self._lock:
            if self._engine is None or self._engine_pid != pid:
                if self._engine is not None:
                    # Forked: leave the parent's connections to the parent.
                    self._engine.dispose(close=False)
                self._engine = self._create_engine()
                self._write_engine = None
                self._engine_pid = pid
            return self._engine

    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            engine = create_engine(
                self._url, connect_args={"timeout": self._busy_timeout_ms / 1000}
            )
            busy = int(self._busy_timeout_ms)

            def on_connect(dbapi_connection: Any, _record: Any) -> None:
                # SQLAlchemy emits BEGIN itself (see _sqlite_begin): DEFERRED for reads,
                # IMMEDIATE for writes, so a reader sees one snapshot and writers queue.
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                try:
                    cursor.execute(f"PRAGMA busy_timeout = {busy}")
                    cursor.execute("PRAGMA journal_mode = WAL")
                    cursor.execute("PRAGMA synchronous = FULL")
                finally:
                    cursor.close()

            event.listen(engine, "connect", on_connect)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        connect_args: dict[str, Any] = {}
        if self._url.get_driver_name() in ("psycopg", "psycopg2"):
            connect_args = {
                "connect_timeout": PG_CONNECT_TIMEOUT_S,
                "application_name": "milepost-ledger",
            }
        try:
            return create_engine(self._url, connect_args=connect_args, pool_pre_ping=True)
        except (NoSuchModuleError, ImportError) as bad:
            raise UserError(
                f"ledger URL {self.masked_url}: driver not available ({bad}); use"
                " postgresql+psycopg://"
            ) from None

    @contextmanager
    def write_transaction(self) -> Iterator[Connection]:
        """A transaction holding the ledger's write lock (SQLite BEGIN IMMEDIATE, PostgreSQL
        pg_advisory_xact_lock): the head read inside it is the head to append to."""
        engine = self.engine
        if self.is_sqlite:
            write_engine = self._write_engine
            if write_engine is None:
                write_engine = engine.execution_options(milepost_sqlite_begin="IMMEDIATE")
                self._write_engine = write_engine
            engine = write_engine
        with engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            yield conn

    @contextmanager
    def read_transaction(self) -> Iterator[Connection]:
        """One consistent snapshot for reading. Database errors become a one-line UserError."""
        try:
            with self.engine.connect() as conn:
                if not self.is_sqlite:
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        except SQLAlchemyError as bad:
            raise UserError(
                f"cannot read the ledger {self.masked_url}: {problem(bad)}; {self._hint()}"
            ) from None
