"""Archiving: move the oldest records out of the live ledger without breaking its proof.

``archive(before, out)`` takes the prefix of the chain recorded before ``before``, checks
its hashes, writes it to a JSONL file (every field, the same lines as `export --format
jsonl`) followed by one proof line::

    {"archive_proof": {"format", "first_seq", "last_seq", "count", "first_prev_hash",
                       "last_hash", "body_sha256", "before", "created_at"}}

where body_sha256 is the SHA-256 of every byte before the proof line. The file is fsynced
and linked into place (never overwriting) BEFORE anything is deleted; then, in one
transaction, the archived rows are deleted and an ``archive_anchor`` record is appended:
{archived_from_seq, archived_through_seq, archived_last_hash, archived_count,
archive_sha256 (of the whole file), archive_file, before}. Nothing is deleted silently: the
anchor is itself a chain record.

What stays detectable: the live chain still verifies, starting at the first remaining
record, whose prev_hash must equal the last hash an anchor vouches for; the archive file
verifies on its own (verify_archive) and its SHA-256 is in the anchor. What is not: an
archive file can be lost or destroyed (keep copies); and, as for any chain, someone able to
rewrite the database could forge an anchor and drop records — only a checkpoint published
outside the database (taken before) catches that.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from milepost.errors import MilepostError, UserError
from milepost.ledger.chain import (
    ChainWalker,
    VerifyResult,
    canonical_body,
    format_time,
    load_body,
    record_line,
    utc_now,
)
from milepost.ledger.checkpoint import load_checkpoint
from milepost.ledger.database import LedgerUnavailable, problem
from milepost.ledger.files import fsync_dir
from milepost.ledger.schema import records as T
from milepost.ledger.store import prepare

if TYPE_CHECKING:
    from milepost.ledger.store import Store

FORMAT = "milepost-ledger-archive/1"
PROOF_KEY = "archive_proof"
BATCH = 5_000
COLUMNS = ("seq", "kind", "run_id", "host", "recorded_at", "body", "prev_hash", "hash")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive(ledger: Store, before: datetime, out: Path) -> int:
    """Move the records recorded before ``before`` (the chain's prefix up to the first
    record at or after it) to ``out``; return how many (0: nothing to archive, no file).

    Refuses (MilepostError, nothing deleted) if those records do not verify, or if the
    ledger changed underneath; UserError if ``out`` exists or cannot be written.
    """
    cutoff = format_time(before)
    out = out.resolve()
    try:
        if out.exists():
            raise UserError(f"{out} exists: archives are never overwritten; choose a new file")
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as bad:
        raise UserError(f"cannot write the archive {out}: {bad.strerror}") from None
    tmp = Path(tmp_name)
    try:
        count, proof = _write_prefix(ledger, fd, cutoff)
        if count == 0:
            tmp.unlink()
            return 0
        try:
            os.link(tmp, out)
        except FileExistsError:
            raise UserError(
                f"{out} appeared while archiving: archives are never overwritten"
            ) from None
        fsync_dir(out.parent)
    except OSError as bad:
        raise UserError(f"cannot write the archive {out}: {bad.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    anchor = {
        "kind": "archive_anchor",
        "run_id": None,
        "host": None,
        "body": {
            "archived_from_seq": proof["first_seq"],
            "archived_through_seq": proof["last_seq"],
            "archived_last_hash": proof["last_hash"],
            "archived_count": count,
            "archive_sha256": _sha256_file(out),
            "archive_file": out.name,
            "before": cutoff,
        },
    }
    try:
        with ledger.write_transaction() as conn:
            first_now = conn.scalar(select(func.min(T.c.seq)))
            last_now = conn.scalar(select(T.c.hash).where(T.c.seq == proof["last_seq"]))
            rows_now = conn.scalar(
                select(func.count()).select_from(T).where(T.c.seq <= proof["last_seq"])
            )
            if (first_now, last_now, rows_now) != (proof["first_seq"], proof["last_hash"], count):
                raise MilepostError(
                    f"the ledger changed while archiving (another archive?): nothing was"
                    f" deleted; remove {out} and try again"
                )
            conn.execute(delete(T).where(T.c.seq <= proof["last_seq"]))
            ledger.append_locked(conn, [prepare(anchor)])
    except SQLAlchemyError as bad:
        raise LedgerUnavailable(
            f"cannot write to the ledger {ledger.masked_url}: {problem(bad)}; nothing was"
            f" deleted; remove {out} and try again"
        ) from bad
    return count


def _write_prefix(ledger: Store, fd: int, cutoff: str) -> tuple[int, dict[str, Any]]:
    digest = hashlib.sha256()
    count = 0
    proof: dict[str, Any] = {}
    with os.fdopen(fd, "wb") as handle, ledger.read_transaction() as conn:
        walker = ChainWalker(ledger.anchors(conn))
        result = conn.execute(
            select(*(T.c[name] for name in COLUMNS))
            .order_by(T.c.seq)
            .execution_options(stream_results=True, yield_per=BATCH)
        )
        try:
            for row in result:
                if row.recorded_at >= cutoff:
                    break
                if not walker.feed(*row):
                    raise MilepostError(
                        f"refusing to archive a broken chain: record {walker.first_bad_seq}:"
                        f" {walker.reason}; nothing was archived"
                    )
                line = (record_line(*row) + "\n").encode("utf-8")
                digest.update(line)
                handle.write(line)
                if count == 0:
                    proof["first_seq"], proof["first_prev_hash"] = row.seq, row.prev_hash
                count += 1
                proof["last_seq"], proof["last_hash"] = row.seq, row.hash
        finally:
            result.close()
        if count:
            proof.update(
                format=FORMAT,
                count=count,
                body_sha256=digest.hexdigest(),
                before=cutoff,
                created_at=utc_now(),
            )
            handle.write((json.dumps({PROOF_KEY: proof}, sort_keys=True) + "\n").encode())
            handle.flush()
            os.fsync(handle.fileno())
    return count, proof


def _last_line(path: Path) -> bytes:
    last = b""
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                last = line
    return last


def verify_archive(
    path: Path,
    checkpoint: Path | None = None,
    public_key: str | None = None,
    ledger: Store | None = None,
) -> VerifyResult:
    """Check an archive file on its own: its proof line, the SHA-256 of its body, and every
    record's hash and link. With ``checkpoint``: the checkpointed record, if in this file,
    has the signed hash. With ``ledger``: the live ledger holds an archive_anchor for it."""
    point = load_checkpoint(checkpoint, public_key) if checkpoint is not None else None
    try:
        proof_line = _last_line(path)
        proof = json.loads(proof_line)[PROOF_KEY]
        first_seq, last_seq = int(proof["first_seq"]), int(proof["last_seq"])
        first_prev, last_hash = str(proof["first_prev_hash"]), str(proof["last_hash"])
        count, body_sha = int(proof["count"]), str(proof["body_sha256"])
    except OSError as bad:
        raise UserError(f"cannot read the archive {path}: {bad.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path} is not a Milepost ledger archive (no proof line)") from None
    walker = ChainWalker(start=(first_seq, first_prev))
    digest = hashlib.sha256()
    hash_at_point: str | None = None
    body_end = path.stat().st_size - len(proof_line)
    with path.open("rb") as handle:
        position = 0
        for line in handle:
            if position >= body_end:
                break
            position += len(line)
            digest.update(line)
            try:
                rec = json.loads(line)
                fields = (
                    int(rec["seq"]),
                    str(rec["kind"]),
                    rec["run_id"],
                    rec["host"],
                    str(rec["recorded_at"]),
                    canonical_body(rec["body"]),
                    str(rec["prev_hash"]),
                    str(rec["hash"]),
                )
            except (ValueError, KeyError, TypeError):
                seq = (walker.head_seq or first_seq - 1) + 1
                walker.first_bad_seq, walker.reason = seq, f"line for record {seq} is not a record"
                break
            if not walker.feed(*fields):
                break
            if point is not None and fields[0] == point.seq:
                hash_at_point = fields[7]
    result = walker.result()
    if not result.ok:
        return result
    problems = []
    if digest.hexdigest() != body_sha:
        problems.append("the file's SHA-256 does not match its proof line")
    if (result.count, result.first_seq, result.head_seq, result.head_hash) != (
        count,
        first_seq,
        last_seq,
        last_hash,
    ):
        problems.append(
            f"the records ({result.first_seq}..{result.head_seq}, {result.count}) do not match"
            f" the proof line ({first_seq}..{last_seq}, {count})"
        )
    if point is not None:
        if not first_seq <= point.seq <= last_seq:
            problems.append(
                f"checkpoint record {point.seq} is not in this archive ({first_seq}..{last_seq})"
            )
        elif hash_at_point != point.head_hash:
            problems.append(f"record {point.seq} does not have the hash the checkpoint signed")
    if ledger is not None:
        # The anchor for this file, if still live, must name exactly this file. (A later
        # archive may have moved the anchor itself into the next archive file.)
        file_sha = _sha256_file(path)
        with ledger.read_transaction() as conn:
            bodies = conn.scalars(select(T.c.body).where(T.c.kind == "archive_anchor")).all()
        for text in bodies:
            body = load_body(text)
            if body.get("archived_through_seq") == last_seq and (
                body.get("archive_sha256") != file_sha
            ):
                problems.append(
                    f"the ledger's archive_anchor for records through {last_seq} names a"
                    " different file: this is not the archive that was made"
                )
    if problems:
        return replace(result, ok=False, reason="; ".join(problems))
    return result
