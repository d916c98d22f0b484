"""The Ledger's records: append-only, hash-chained, in the ledger's database
(milepost.ledger.database: SQLite or PostgreSQL, one code path).

A record is checked before it is appended (:func:`prepare`); appending reads the head of
the chain and hashes each record onto it under the database's write lock; verifying
recomputes every hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from milepost.errors import UserError
from milepost.ledger.chain import (
    GENESIS_HASH,
    ChainWalker,
    Checkpoint,
    VerifyResult,
    canonical_body,
    canonical_record,
    chain_hash,
    compare,
    format_time,
    load_body,
    utc_now,
)
from milepost.ledger.database import Database, LedgerUnavailable, problem
from milepost.ledger.names import TASK_STATUSES as TASK_STATUSES
from milepost.ledger.schema import records as T

STREAM_BATCH = 5_000
RECORD_FIELDS = frozenset({"kind", "run_id", "host", "body", "recorded_at"})


@dataclass(frozen=True)
class Prepared:
    """A record checked and ready to hash (its recorded_at already in the ledger format)."""

    kind: str
    run_id: str | None
    host: str | None
    recorded_at: str
    body: Mapping[str, Any]


def _is_text(value: object, limit: int) -> TypeGuard[str]:
    """1 to ``limit`` characters of text that UTF-8 can hold (no lone surrogates, which
    the hash of the record could not be computed over)."""
    if not isinstance(value, str) or not value or len(value) > limit:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _optional_text(record: Mapping[str, Any], field: str, limit: int) -> str | None:
    value = record.get(field)
    if value is None:
        return None
    if not _is_text(value, limit):
        raise UserError(
            f"ledger record {field} must be text of 1 to {limit} characters or null, not {value!r}"
        )
    return value


def prepare(record: Mapping[str, Any]) -> Prepared:
    """Check a record dict {kind, run_id, host, body, optional recorded_at}; UserError if bad."""
    if not isinstance(record, Mapping):
        raise UserError(f"a ledger record must be a dict, not {type(record).__name__}")
    extra = set(record) - RECORD_FIELDS
    if extra:
        raise UserError(
            f"ledger record has unexpected fields {sorted(extra)}: put them in its body"
        )
    kind = record.get("kind")
    if not _is_text(kind, 64):
        raise UserError(f"ledger record kind must be text of 1 to 64 characters, not {kind!r}")
    body = record.get("body", {})
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise UserError(f"ledger record body must be a dict, not {type(body).__name__}")
    recorded_at = record.get("recorded_at")
    if recorded_at is None:
        stamp = utc_now()
    else:
        try:
            stamp = format_time(recorded_at)
        except (TypeError, ValueError, AttributeError):
            raise UserError(
                f"ledger record recorded_at must be an ISO-8601 time, not {recorded_at!r}"
            ) from None
    return Prepared(
        kind=kind,
        run_id=_optional_text(record, "run_id", 128),
        host=_optional_text(record, "host", 255),
        recorded_at=stamp,
        body=body,
    )


def add_status(
    counts: dict[str, dict[str, int]], host: str | None, body: Mapping[str, Any]
) -> None:
    """Count a task_result body into per-host {ok, changed, failed, unreachable, skipped}."""
    status = body.get("status")
    if host is None or status not in TASK_STATUSES:
        return
    per_host = counts.setdefault(host, dict.fromkeys(TASK_STATUSES, 0))
    per_host[status] += 1


class Store(Database):
    """The maintenance ledger's records at one database URL: writing, reading in
    transactions, verifying the chain. milepost.ledger.book.Ledger adds what is done with
    them (queries, checkpoints, export, archive, housekeeping).

    Construct with ``Store.open(url)`` (creates or upgrades the schema, see
    milepost.ledger.database.Database). All methods may be called from any thread; a child
    process after fork() gets fresh connections.
    """

    # ---------------------------------------------------------------- writing

    def append(self, records: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append records in one transaction (group commit) and return their seqs.

        Each record: {"kind", "run_id", "host", "body", optional "recorded_at"}. Writers in
        any process are serialised. A run_ended record without "hosts" in its body gets the
        run's per-host task counts added (computed inside the same transaction).

        Raises UserError for a malformed record (nothing stored) and LedgerUnavailable when
        the database cannot be written (nothing stored: spool and replay later).
        """
        prepared = [prepare(record) for record in records]
        if not prepared:
            return []
        try:
            with self.write_transaction() as conn:
                return self.append_locked(conn, prepared)
        except (SQLAlchemyError, OSError) as bad:
            raise LedgerUnavailable(
                f"cannot write to the ledger {self.masked_url}: {problem(bad)}"
            ) from bad

    def append_locked(self, conn: Connection, prepared: Sequence[Prepared]) -> list[int]:
        """Append inside a write_transaction(): read the head, chain, insert."""
        head = conn.execute(select(T.c.seq, T.c.hash).order_by(T.c.seq.desc()).limit(1)).first()
        seq, prev = (int(head.seq), str(head.hash)) if head is not None else (0, GENESIS_HASH)
        batch_counts: dict[str, dict[str, dict[str, int]]] = {}
        rows: list[dict[str, Any]] = []
        for record in prepared:
            body = record.body
            if record.kind == "task_result" and record.run_id is not None:
                add_status(batch_counts.setdefault(record.run_id, {}), record.host, body)
            elif record.kind == "run_ended" and record.run_id is not None and "hosts" not in body:
                counts = self.host_counts(conn, [record.run_id]).get(record.run_id, {})
                for host, per_host in batch_counts.get(record.run_id, {}).items():
                    into = counts.setdefault(host, dict.fromkeys(TASK_STATUSES, 0))
                    for status, n in per_host.items():
                        into[status] += n
                body = {**body, "hosts": counts}
            seq += 1
            body_text = canonical_body(body)
            digest = chain_hash(
                prev,
                canonical_record(
                    seq, record.kind, record.run_id, record.host, record.recorded_at, body_text
                ),
            )
            rows.append(
                {
                    "seq": seq,
                    "kind": record.kind,
                    "run_id": record.run_id,
                    "host": record.host,
                    "recorded_at": record.recorded_at,
                    "body": body_text,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        conn.execute(insert(T), rows)
        return [row["seq"] for row in rows]

    @staticmethod
    def host_counts(
        conn: Connection, run_ids: Sequence[str]
    ) -> dict[str, dict[str, dict[str, int]]]:
        """{run_id: {host: {ok, changed, failed, unreachable, skipped}}} from task_result
        records (through the (kind, run_id) index)."""
        counts: dict[str, dict[str, dict[str, int]]] = {rid: {} for rid in run_ids}
        for start in range(0, len(run_ids), 500):
            chunk = list(run_ids[start : start + 500])
            rows = conn.execute(
                select(T.c.run_id, T.c.host, T.c.body).where(
                    T.c.kind == "task_result", T.c.run_id.in_(chunk)
                )
            )
            for run_id, host, body in rows:
                add_status(counts[run_id], host, load_body(body))
        return counts

    # -------------------------------------------------------------- checking

    def anchors(self, conn: Connection) -> dict[int, str]:
        """archived_through_seq -> archived_last_hash, from archive_anchor records. A body
        that is not a JSON object (altered) vouches for nothing; verify names the record."""
        found: dict[int, str] = {}
        for (body,) in conn.execute(select(T.c.body).where(T.c.kind == "archive_anchor")):
            data = load_body(body)
            try:
                found[int(data["archived_through_seq"])] = str(data["archived_last_hash"])
            except (KeyError, TypeError, ValueError):
                continue
        return found

    def verify(self, checkpoint: Checkpoint | None = None) -> VerifyResult:
        """Recompute every hash in seq order (streaming, constant memory).

        Alone, this proves the records form an unbroken chain from the genesis (or from an
        archive anchor): any single edited, deleted, reordered or inserted record, and any
        seq gap, is found. It cannot see the tail cut off, nor a chain rewritten and rehashed
        from some record on. With a ``checkpoint`` whose signature was checked
        (milepost.ledger.checkpoint.load_checkpoint), it also proves the ledger still
        extends the checkpointed head: truncation and rewrite-and-rehash up to that head
        are found.
        """
        point = checkpoint
        hash_at_point: str | None = None
        with self.read_transaction() as conn:
            anchors = self.anchors(conn)
            walker = ChainWalker(anchors)
            result = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH).execute(
                select(
                    T.c.seq,
                    T.c.kind,
                    T.c.run_id,
                    T.c.host,
                    T.c.recorded_at,
                    T.c.body,
                    T.c.prev_hash,
                    T.c.hash,
                ).order_by(T.c.seq)
            )
            try:
                for row in result:
                    if not walker.feed(*row):
                        break
                    if point is not None and row[0] == point.seq:
                        hash_at_point = row[7]
            finally:
                result.close()
        outcome = walker.result()
        if point is not None and outcome.ok:
            outcome = compare(outcome, point, hash_at_point, anchors)
        return outcome
