"""The hash chain: canonical form, record hashes, and the walk that checks a chain.

The canonical form of a record is

    json.dumps({"seq", "kind", "run_id", "host", "recorded_at", "body"},
               sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

and its hash is ``sha256(prev_hash_hex.encode() + b"\\n" + canonical).hexdigest()``; the
first record's prev_hash is 64 zeros. The body is stored as its own canonical JSON text, so
the canonical form is built by splicing that text into the envelope (JSON serialisation is
compositional, so this equals the json.dumps above); a body whose stored text was altered,
even to equivalent JSON, no longer hashes the same.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path, PurePath
from typing import Any

from milepost.errors import UserError

GENESIS_HASH = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> str:
    """Now, in the ledger's time format: UTC, fixed width, microseconds (sorts as text)."""
    return datetime.now(UTC).strftime(TIME_FORMAT)


def format_time(value: datetime | str) -> str:
    """A datetime or ISO-8601 string in the ledger's time format. Naive times are UTC.

    Raises ValueError for a string that is not ISO-8601, or a time that falls outside
    years 1..9999 in UTC.
    """
    moment = (
        datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range in UTC") from None
    # strftime's %Y does not pad years before 1000: the width must stay fixed to sort.
    return f"{moment.year:04d}" + moment.strftime(TIME_FORMAT[2:])


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def _plain(value: Any) -> bool:
    """Does json.dumps alone give the canonical text? Not when a mapping has a key that is
    not text (json sorts 80 before 443, the text "443" sorts first: parsed and dumped again,
    the body would no longer match its hash), is not a dict, or a set holds the values."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return not isinstance(value, Mapping | set | frozenset)


def _key(key: Any) -> str:
    """A mapping key as the text json.dumps would make of it (str() for other types)."""
    if isinstance(key, str):
        return key.encode("utf-8", "replace").decode("utf-8")
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float) and math.isfinite(key):
        return float.__repr__(key)
    return str(key).encode("utf-8", "replace").decode("utf-8")


def _scrub(value: Any) -> Any:
    """A JSON-safe copy: text keys, lone surrogates (undecodable bytes smuggled into str)
    replaced, NaN and infinities as text, sets as sorted lists."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, Mapping):
        return {_key(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, set | frozenset):
        return [_scrub(v) for v in sorted(value, key=repr)]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _refusal(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "it is nested too deeply or contains itself"
    if "integer string conversion" in str(error):
        return "it holds an integer of more than 4300 digits (store it as text)"
    return " ".join(str(error).split())[:200]


def _dumps(value: Any) -> str:
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
    )


def load_body(text: str) -> dict[str, Any]:
    """A stored record's body as a dict; {} when it is not a JSON object, so that a reader
    never fails on one odd record (`milepost ledger verify` is what judges the records)."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def canonical_body(body: Mapping[str, Any]) -> str:
    """The canonical JSON text of a record body (what the ledger stores).

    Values JSON cannot hold are stored as text (datetimes as ISO-8601, NaN as "nan"), never
    rejected: the ledger does not drop a record because of an odd value. Keys that are not
    text become the text JSON gives them (80 -> "80") before sorting, so the canonical text
    parsed and made canonical again is the same text.

    Raises UserError (nothing can be stored) for a body JSON cannot express at all: one
    that contains itself, is nested deeper than Python's recursion limit, or holds an
    integer of more than 4300 digits.
    """
    try:
        if not _plain(body):
            raise TypeError("not plain JSON")
        text = _dumps(body)
        text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        try:
            text = _dumps(_scrub(body))
        except (ValueError, RecursionError) as bad:
            raise UserError(f"ledger record body cannot be stored: {_refusal(bad)}") from None
        # str() of an odd object may still hold a lone surrogate.
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _text(value: str | None) -> str:
    return json.dumps(value, ensure_ascii=False)


def canonical_record(
    seq: int, kind: str, run_id: str | None, host: str | None, recorded_at: str, body_text: str
) -> bytes:
    """The canonical form of a record whose body is stored as ``body_text``."""
    return (
        '{"body":'
        + body_text
        + ',"host":'
        + _text(host)
        + ',"kind":'
        + _text(kind)
        + ',"recorded_at":'
        + _text(recorded_at)
        + ',"run_id":'
        + _text(run_id)
        + ',"seq":'
        + str(int(seq))
        + "}"
    ).encode("utf-8")


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """The hash of a record given its predecessor's hash and its canonical form."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical).hexdigest()


def record_line(
    seq: int,
    kind: str,
    run_id: str | None,
    host: str | None,
    recorded_at: str,
    body_text: str,
    prev_hash: str,
    record_hash: str,
) -> str:
    """One record as a JSON line with every field (export and archive files), no newline."""
    return (
        '{"seq":'
        + str(int(seq))
        + ',"kind":'
        + _text(kind)
        + ',"run_id":'
        + _text(run_id)
        + ',"host":'
        + _text(host)
        + ',"recorded_at":'
        + _text(recorded_at)
        + ',"body":'
        + body_text
        + ',"prev_hash":'
        + _text(prev_hash)
        + ',"hash":'
        + _text(record_hash)
        + "}"
    )


@dataclass
class VerifyResult:
    """What a chain check found. ``first_bad_seq`` names the first record that fails."""

    ok: bool
    count: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None
    first_seq: int | None = None
    head_seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ChainWalker:
    """Checks records fed in seq order, in constant memory.

    ``anchors`` maps archived_through_seq -> archived_last_hash (from archive_anchor records):
    the first record may follow an archived prefix only if an anchor vouches for its
    prev_hash. ``start`` fixes the expected first seq and prev_hash instead (an archive file).
    """

    def __init__(
        self,
        anchors: Mapping[int, str] | None = None,
        start: tuple[int, str] | None = None,
    ) -> None:
        self._anchors = dict(anchors or {})
        self._start = start
        self.count = 0
        self.first_seq: int | None = None
        self.head_seq: int | None = None
        self.head_hash = GENESIS_HASH if start is None else start[1]
        self.first_bad_seq: int | None = None
        self.reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def _fail(self, seq: int, reason: str) -> bool:
        self.first_bad_seq = seq
        self.reason = reason
        return False

    def _first(self, seq: int, prev_hash: str) -> bool:
        if self._start is not None:
            want_seq, want_prev = self._start
            if seq != want_seq:
                return self._fail(want_seq, f"the first record should be {want_seq}, found {seq}")
            self.head_hash = want_prev
            return True
        if seq == 1:
            self.head_hash = GENESIS_HASH
            return True
        anchored = self._anchors.get(seq - 1)
        if anchored is None:
            covered = max((s for s in self._anchors if s < seq), default=0)
            missing = (
                f"record {covered + 1}"
                if covered + 1 == seq - 1
                else (f"records {covered + 1}..{seq - 1}")
            )
            return self._fail(
                covered + 1,
                f"{missing} missing before the first record {seq},"
                " and no archive anchor accounts for them",
            )
        if prev_hash != anchored:
            return self._fail(
                seq,
                f"record {seq} does not follow the archived records: its prev_hash differs"
                f" from the archive anchor's last hash for record {seq - 1}",
            )
        self.head_hash = anchored
        return True

    def feed(
        self,
        seq: int,
        kind: str,
        run_id: str | None,
        host: str | None,
        recorded_at: str,
        body_text: str,
        prev_hash: str,
        record_hash: str,
    ) -> bool:
        """Check one record; False (and first_bad_seq/reason set) at the first failure."""
        if self.reason is not None:
            return False
        if self.head_seq is None:
            if not self._first(seq, prev_hash):
                return False
            self.first_seq = seq
            if prev_hash != self.head_hash:
                return self._fail(seq, f"record {seq}'s prev_hash is not the chain's start")
        else:
            expected = self.head_seq + 1
            if seq > expected:
                gap = (
                    f"record {expected} is"
                    if seq == expected + 1
                    else (f"records {expected}..{seq - 1} are")
                )
                return self._fail(expected, f"{gap} missing (deleted): the next record is {seq}")
            if seq < expected:
                return self._fail(seq, f"record {seq} is out of order after record {self.head_seq}")
            if prev_hash != self.head_hash:
                return self._fail(
                    seq,
                    f"record {seq}'s prev_hash does not match the hash of record {self.head_seq}:"
                    f" a record was altered, removed or inserted at {self.head_seq} or {seq}",
                )
        computed = chain_hash(
            self.head_hash, canonical_record(seq, kind, run_id, host, recorded_at, body_text)
        )
        if computed != record_hash:
            return self._fail(
                seq,
                f"record {seq}'s content does not match its hash: it was altered"
                " (or moved from another position)",
            )
        self.count += 1
        self.head_seq = seq
        self.head_hash = record_hash
        return True

    def result(self) -> VerifyResult:
        return VerifyResult(
            ok=self.ok,
            count=self.count,
            head_hash=self.head_hash,
            first_bad_seq=self.first_bad_seq,
            reason=self.reason,
            first_seq=self.first_seq,
            head_seq=self.head_seq,
        )


@dataclass(frozen=True)
class Checkpoint:
    """A signed head, read from ``path`` with its signature checked
    (milepost.ledger.checkpoint.load_checkpoint)."""

    path: Path
    seq: int
    count: int
    head_hash: str
    created_at: str
    public_key: str


def compare(
    result: VerifyResult, point: Checkpoint, hash_at_seq: str | None, anchors: dict[int, str]
) -> VerifyResult:
    """Does an intact chain still extend the checkpointed head?"""
    head = result.head_seq or 0
    if head < point.seq:
        return replace(
            result,
            ok=False,
            first_bad_seq=head + 1,
            reason=(
                f"the ledger ends at record {head} but checkpoint {point.path.name} covers"
                f" records through {point.seq}: records were removed from the end"
            ),
        )
    if hash_at_seq is None:
        archived = anchors.get(point.seq)
        if archived == point.head_hash:
            return result
        if archived is None:
            return replace(
                result,
                ok=False,
                first_bad_seq=None,
                reason=(
                    f"record {point.seq} (checkpoint {point.path.name}) was archived: check"
                    " the checkpoint against the archive file with"
                    " `milepost ledger verify --archive FILE --checkpoint CHECKPOINT`"
                ),
            )
        hash_at_seq = archived
    if hash_at_seq != point.head_hash:
        return replace(
            result,
            ok=False,
            first_bad_seq=point.seq,
            reason=(
                f"record {point.seq} no longer has the hash checkpoint {point.path.name}"
                f" signed: the chain was rewritten at or before record {point.seq}"
            ),
        )
    return result
