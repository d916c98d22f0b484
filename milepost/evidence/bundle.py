"""An evidence bundle: a directory an auditor checks offline with only the agency's public
key (and, for plan signatures, the allowed-signers file it holds).

Its files:

- ``ledger.jsonl``: the ledger segment (milepost.evidence.segment), every field as
  `milepost ledger export --format jsonl` writes it;
- ``checkpoint.json``: a signed checkpoint (milepost.ledger.checkpoint) of the head, the
  segment's last record;
- ``evidence.json``: the evidence of the period, computed from the segment alone
  (milepost.evidence.content); ``evidence.html``: the same for people
  (milepost.reports.evidence_page);
- ``allowed_signers``: a copy of the inventory's allowed-signers file (ssh-keygen's format);
- ``MANIFEST.json``: each of the files above with its sha256 and size;
- ``MANIFEST.sig``: {format, manifest_sha256, signature}: the Ed25519 signature, with the
  ledger's signing key (the checkpoints' key), of "milepost-evidence-manifest/1
  sha256:<sha256 of MANIFEST.json>\\n".

Verifying trusts only the key it is given (milepost.ledger.checkpoint.trusted_public_key),
never one inside the bundle, and stops at the first file that is not what was signed,
naming it: MANIFEST.sig (its signature is not the trusted key's, or it is not in its
canonical form), MANIFEST.json (not the one signed), a listed file missing or with another
sha256, a file the manifest does not list, the checkpoint's own signature, the chain of
ledger.jsonl (each hash from the previous one and the record) and its end (the checkpoint's
head), evidence.json (not what ledger.jsonl gives, plan signatures checked again with
ssh-keygen) and evidence.html (not the page evidence.json gives).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milepost.errors import UserError
from milepost.evidence.content import Inputs, evidence, policy_from
from milepost.evidence.segment import (
    SegmentError,
    check_chain,
    first_needed,
    read_segment,
    segment_ledger,
    write_segment,
)
from milepost.input_checks import shown
from milepost.ledger.book import Ledger
from milepost.ledger.chain import utc_now
from milepost.ledger.checkpoint import (
    load_checkpoint,
    sign_bytes,
    signature_valid,
    trusted_public_key,
    write_checkpoint,
)
from milepost.ledger.config import FILE_MODE
from milepost.ledger.files import fsync_dir
from milepost.patching.policy import PatchSettings
from milepost.reports.evidence_page import render_evidence

LEDGER = "ledger.jsonl"
CHECKPOINT = "checkpoint.json"
EVIDENCE_JSON = "evidence.json"
EVIDENCE_HTML = "evidence.html"
SIGNERS = "allowed_signers"
MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.sig"
#: The files MANIFEST.json lists (every file of a bundle but the manifest and its signature).
LISTED = (LEDGER, CHECKPOINT, EVIDENCE_JSON, EVIDENCE_HTML, SIGNERS)
MANIFEST_FORMAT = "milepost-evidence-manifest/1"
SIGNATURE_FORMAT = "milepost-evidence-signature/1"
NO_SIGNERS = "# the inventory names no allowed-signers file: no plan signature can verify\n"


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_message(manifest_sha256: str) -> bytes:
    return f"{MANIFEST_FORMAT} sha256:{manifest_sha256}\n".encode("ascii")


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


@dataclass(frozen=True)
class Made:
    """A bundle written: where, its records and its checkpoint."""

    path: Path
    first_seq: int
    last_seq: int
    records: int
    summary: dict[str, Any]


def _target(out: Path) -> Path:
    try:
        exists = out.exists() or out.is_symlink()
    except (OSError, ValueError) as bad:
        why = getattr(bad, "strerror", None) or "not a usable path"
        raise UserError(f"--out {shown(str(out))}: {why}; give a new directory") from None
    if exists:
        raise UserError(
            f"--out {shown(str(out))} exists: a bundle is written into a new directory only;"
            " give another"
        )
    return out.absolute()


def write_bundle(
    ledger: Ledger,
    out: Path,
    *,
    start: str,
    end: str,
    settings: PatchSettings,
    allowed_signers: Path | None,
    key_path: Path | None = None,
) -> Made:
    """Write the bundle of the period [start, end) (ledger time text) into the new directory
    ``out``: every file in a temporary sibling directory first, renamed into place at the
    end (nothing half-written). UserError for an ``out`` that exists."""
    target = _target(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as bad:
        raise UserError(f"--out {shown(str(out))}: cannot write there ({bad.strerror})") from None
    try:
        made = _fill(ledger, work, start, end, settings, allowed_signers, key_path)
        if target.exists():
            raise UserError(f"--out {shown(str(out))} appeared while the bundle was made")
        os.rename(work, target)
        fsync_dir(target.parent)
    except OSError as bad:
        raise UserError(f"--out {shown(str(out))}: cannot write there ({bad.strerror})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Made(target, made.first_seq, made.last_seq, made.records, made.summary)


def _fill(
    ledger: Ledger,
    work: Path,
    start: str,
    end: str,
    settings: PatchSettings,
    allowed_signers: Path | None,
    key_path: Path | None,
) -> Made:
    made_at = utc_now()
    point = write_checkpoint(ledger, work / CHECKPOINT, key_path=key_path)
    head = int(point["seq"])
    first = first_needed(ledger, start, end, head)
    write_segment(ledger, work / LEDGER, first, head)
    if allowed_signers is not None:
        try:
            text = allowed_signers.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise UserError(
                f"allowed-signers file {shown(str(allowed_signers), 200)}: cannot read it"
            ) from None
    else:
        text = NO_SIGNERS
    _write(work / SIGNERS, text)
    records = read_segment(work / LEDGER)
    segment = _segment_facts(records[0].seq, records[-1].seq, len(records), point)
    inputs = Inputs(start, end, made_at, settings, work / SIGNERS)
    with segment_ledger(records) as scratch:
        data = evidence(scratch, inputs, segment)
    _write(work / EVIDENCE_JSON, _json(data))
    _write(work / EVIDENCE_HTML, render_evidence(data))
    manifest = {
        "format": MANIFEST_FORMAT,
        "made_at": made_at,
        "public_key": point["public_key"],
        "files": {
            name: {"sha256": _sha256(raw), "size": len(raw)}
            for name in LISTED
            for raw in [(work / name).read_bytes()]
        },
    }
    manifest_text = _json(manifest)
    _write(work / MANIFEST, manifest_text)
    digest = _sha256(manifest_text.encode("utf-8"))
    signature, _ = sign_bytes(signed_message(digest), key_path)
    _write(
        work / SIGNATURE,
        _json({"format": SIGNATURE_FORMAT, "manifest_sha256": digest, "signature": signature}),
    )
    fsync_dir(work)
    return Made(work, records[0].seq, records[-1].seq, len(records), data["summary"])


def _segment_facts(first: int, last: int, count: int, point: dict[str, Any]) -> dict[str, Any]:
    return {
        "first_seq": first,
        "last_seq": last,
        "records": count,
        "head_hash": point["head_hash"],
        "checkpoint_created_at": point["created_at"],
        "public_key": point["public_key"],
    }


# ------------------------------------------------------------------ verifying


class BadBundle(Exception):
    """The first file of a bundle that is not what was signed, and why."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name}: {why}")
        self.name = name
        self.why = why


@dataclass(frozen=True)
class Verified:
    first_seq: int
    last_seq: int
    records: int
    head_hash: str
    checkpoint_created_at: str
    signatures: int
    key_source: str


def _read(directory: Path, name: str) -> bytes:
    try:
        return (directory / name).read_bytes()
    except FileNotFoundError:
        raise BadBundle(name, "missing (removed)") from None
    except IsADirectoryError:
        raise BadBundle(name, "is a directory, not the file that was signed") from None
    except OSError as bad:
        raise BadBundle(name, f"cannot be read ({bad.strerror})") from None


def _check_signature(directory: Path, trusted: str, source: str) -> dict[str, Any]:
    raw = _read(directory, SIGNATURE)
    try:
        document = json.loads(raw)
        if not isinstance(document, dict) or _json(document).encode("utf-8") != raw:
            raise ValueError
        digest, signature = str(document["manifest_sha256"]), str(document["signature"])
        if document.get("format") != SIGNATURE_FORMAT or set(document) != {
            "format", "manifest_sha256", "signature"
        }:  # fmt: skip
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise BadBundle(SIGNATURE, "is not a bundle signature as Milepost writes it") from None
    if not signature_valid(signed_message(digest), signature, trusted):
        raise BadBundle(
            SIGNATURE,
            f"its signature does not verify with the trusted key (from {source}): the"
            " signature was altered, or the bundle was signed by another key",
        )
    manifest_raw = _read(directory, MANIFEST)
    if _sha256(manifest_raw) != digest:
        raise BadBundle(MANIFEST, "sha256 differs from the one MANIFEST.sig signs: it was altered")
    manifest: dict[str, Any] = json.loads(manifest_raw)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or sorted(files) != sorted(LISTED):
        raise BadBundle(MANIFEST, f"does not list exactly {', '.join(LISTED)}")
    return manifest


def _check_files(directory: Path, manifest: dict[str, Any]) -> None:
    for name in sorted(LISTED):
        raw = _read(directory, name)
        want = manifest["files"][name]
        if len(raw) != want.get("size") or _sha256(raw) != want.get("sha256"):
            raise BadBundle(name, "sha256 differs from MANIFEST.json")
    for entry in sorted(os.listdir(directory)):
        if entry not in (*LISTED, MANIFEST, SIGNATURE):
            raise BadBundle(entry, "not listed in MANIFEST.json (added)")


def _is_bundle(directory: Path) -> bool:
    try:
        names = set(os.listdir(directory))
    except OSError:
        return False
    return bool(names & {MANIFEST, SIGNATURE, LEDGER, CHECKPOINT})


def verify_bundle(
    directory: Path, public_key: str | None = None, allowed_signers: Path | None = None
) -> Verified:
    """Check the bundle in ``directory`` (see the module's docstring); BadBundle naming the
    first bad file. UserError (bad input): no such directory, not a bundle, no trusted key,
    an unreadable --allowed-signers file."""
    if not directory.is_dir():
        raise UserError(f"{shown(str(directory))} is not a directory: give an evidence bundle")
    if not _is_bundle(directory):
        raise UserError(
            f"{shown(str(directory))} is not an evidence bundle (no {MANIFEST}): give a"
            " directory `milepost evidence` wrote"
        )
    trusted, source = trusted_public_key(public_key)
    if allowed_signers is not None and not allowed_signers.is_file():
        raise UserError(f"--allowed-signers {shown(str(allowed_signers), 200)} is not a file")
    manifest = _check_signature(directory, trusted, source)
    _check_files(directory, manifest)
    try:
        point = load_checkpoint(directory / CHECKPOINT, trusted)
    except UserError as bad:
        raise BadBundle(CHECKPOINT, str(bad).replace(str(directory / CHECKPOINT), "it")) from None
    try:
        records = read_segment(directory / LEDGER)
    except (SegmentError, UnicodeDecodeError) as bad:
        raise BadBundle(LEDGER, str(bad)) from None
    chain = check_chain(records)
    if not chain.ok:
        raise BadBundle(LEDGER, f"record {chain.first_bad_seq}: {chain.reason}")
    if (records[-1].seq, records[-1].hash) != (point.seq, point.head_hash):
        raise BadBundle(
            LEDGER,
            f"it ends at record {records[-1].seq}, not at the head checkpoint.json signs"
            f" (record {point.seq})",
        )
    stated = _stated(directory)
    signers = allowed_signers or directory / SIGNERS
    try:
        inputs = Inputs(
            str(stated["period"]["from"]), str(stated["period"]["to"]), str(stated["made_at"]),
            policy_from(stated["patch_policy"]), signers,
        )  # fmt: skip
        segment = _segment_facts(
            records[0].seq,
            records[-1].seq,
            len(records),
            {"head_hash": point.head_hash, "created_at": point.created_at,
             "public_key": point.public_key},
        )  # fmt: skip
    except (KeyError, TypeError, UserError) as bad:
        raise BadBundle(EVIDENCE_JSON, f"its inputs are malformed ({bad})") from None
    with segment_ledger(records) as scratch:
        again = json.loads(_json(evidence(scratch, inputs, segment)))
    if again != stated:
        where = _first_difference(stated, again)
        whose = "the bundle's" if allowed_signers is None else str(allowed_signers)
        raise BadBundle(
            EVIDENCE_JSON,
            f"it is not what ledger.jsonl gives (with {whose} allowed-signers file):"
            f" {where} differs",
        )
    page = render_evidence(stated).encode("utf-8")
    if page != _read(directory, EVIDENCE_HTML):
        raise BadBundle(EVIDENCE_HTML, "it is not the page evidence.json gives")
    signatures = sum(len(p["signatures"]) for p in stated.get("plans", []))
    return Verified(
        first_seq=records[0].seq,
        last_seq=records[-1].seq,
        records=len(records),
        head_hash=point.head_hash,
        checkpoint_created_at=point.created_at,
        signatures=signatures,
        key_source=source,
    )


def _stated(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read(directory, EVIDENCE_JSON))
    except (ValueError, UnicodeDecodeError):
        raise BadBundle(EVIDENCE_JSON, "it is not JSON") from None
    if not isinstance(data, dict):
        raise BadBundle(EVIDENCE_JSON, "it is not a JSON object")
    return data


def _first_difference(old: Any, new: Any, where: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{where}.{key}".lstrip("."))
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (one, other) in enumerate(zip(old, new, strict=True)):
            if one != other:
                return _first_difference(one, other, f"{where}[{index}]")
    return where or "the whole"
