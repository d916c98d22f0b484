"""Signed checkpoints: the chain's head, signed with Ed25519, to publish outside the database.

A checkpoint file is JSON: {format, seq, count, head_hash, created_at, public_key,
signature}. The signature covers the canonical JSON (sorted keys, no spaces) of every other
field. Verifying against a checkpoint proves the ledger still holds record ``seq`` with
hash ``head_hash`` — so it was neither cut short nor rewritten and rehashed up to there.
A checkpoint is only as trustworthy as the place it was published (mail, a ticket, another
server): an attacker who can replace it there can replace it with anything.

The public key a checkpoint file carries is never what makes it trusted: anyone can sign a
forged head with a key of their own. Verifying checks the signature against a configured
key (trusted_public_key): ``--public-key``, else $MILEPOST_CHECKPOINT_PUBLIC_KEY, else
<state_dir>/ledger-signing.pub, written beside the signing key when the key is made (each
a base64 raw Ed25519 key, or a file holding one). With none, verifying refuses.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from milepost.errors import MilepostError, UserError
from milepost.ledger.chain import Checkpoint, utc_now
from milepost.ledger.files import write_atomic
from milepost.ledger.names import ENV_PUBLIC_KEY as ENV_PUBLIC_KEY
from milepost.ledger.names import PUBLIC_KEY_FILE as PUBLIC_KEY_FILE
from milepost.paths import state_dir

if TYPE_CHECKING:
    from milepost.ledger.store import Store

FORMAT = "milepost-ledger-checkpoint/1"
KEY_FILE = "ledger-signing.key"


def default_key_path() -> Path:
    return state_dir() / KEY_FILE


def public_key_path(key_path: Path) -> Path:
    """Where the public half of the signing key at ``key_path`` is kept (``.pub``)."""
    return key_path.with_suffix(".pub")


def _decode_key(text: str) -> str | None:
    """The canonical base64 of a raw Ed25519 public key given as base64 or PEM, or None."""
    text = text.strip()
    if text.startswith("-----BEGIN PUBLIC KEY-----"):
        try:
            loaded = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, TypeError, UnicodeEncodeError):
            return None
        return raw_public_key(loaded) if isinstance(loaded, Ed25519PublicKey) else None
    try:
        raw = base64.b64decode(text, validate=True)
        return raw_public_key(Ed25519PublicKey.from_public_bytes(raw))
    except (ValueError, binascii.Error):
        return None


def _key_from(value: str, source: str) -> str:
    """A key given as base64 (or PEM) text or as a file holding it; UserError naming the
    setting it came from if it is neither."""
    key = _decode_key(value)
    if key is not None:
        return key
    path = Path(value.strip()).expanduser()
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, ValueError):
        raise UserError(
            f"{source} is neither a base64 Ed25519 public key nor a readable file holding one"
        ) from None
    key = _decode_key(text)
    if key is None:
        raise UserError(f"{source}: {path} does not hold a base64 Ed25519 public key")
    return key


def trusted_public_key(given: str | None = None) -> tuple[str, str]:
    """(the key checkpoints must be signed with, where it came from): ``given`` (the
    --public-key option), else $MILEPOST_CHECKPOINT_PUBLIC_KEY, else
    <state_dir>/ledger-signing.pub. UserError when no key is configured: the key inside a
    checkpoint file is never trusted."""
    if given is not None and given.strip():
        return _key_from(given, f"--public-key {given.strip()[:100]!r}"), "--public-key"
    env = os.environ.get(ENV_PUBLIC_KEY, "").strip()
    if env:
        return _key_from(env, f"${ENV_PUBLIC_KEY}"), f"${ENV_PUBLIC_KEY}"
    try:
        default = state_dir() / PUBLIC_KEY_FILE
    except UserError:
        default = None
    if default is not None and default.is_file():
        return _key_from(str(default), str(default)), str(default)
    raise UserError(
        "no trusted checkpoint key: pass --public-key KEY (base64, or a file holding it), set"
        f" ${ENV_PUBLIC_KEY}, or keep {PUBLIC_KEY_FILE} in the state directory; the key"
        " inside a checkpoint file is never trusted"
    )


def _signed_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def raw_public_key(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The signing key at ``path``; a new one (file mode 0600) if there is none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(path)  # another process made it first
        except OSError as bad:
            raise UserError(
                f"cannot create the signing key {path}: {bad.strerror}; pass --key FILE"
            ) from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        write_public_key(key, path)
        return key
    except OSError as bad:
        raise UserError(f"cannot read the signing key {path}: {bad.strerror}") from None
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise UserError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise UserError(f"{path} is not an Ed25519 key")
    return loaded


def write_public_key(key: Ed25519PrivateKey, key_path: Path) -> Path:
    """Keep the public half of ``key`` beside it (``.pub``), the key `ledger verify
    --checkpoint` trusts by default; an existing file is left as it is (a trust anchor is
    never replaced silently)."""
    target = public_key_path(key_path)
    if not target.exists():
        write_atomic(target, raw_public_key(key.public_key()) + "\n")
    return target


def write_checkpoint(ledger: Store, out: Path, key_path: Path | None = None) -> dict[str, Any]:
    """Verify the chain, sign its head and write the checkpoint file; return its content."""
    result = ledger.verify()
    if not result.ok:
        raise MilepostError(
            f"refusing to sign a broken chain: record {result.first_bad_seq}: {result.reason}"
        )
    if result.head_seq is None:
        raise UserError("the ledger is empty: there is no head to checkpoint")
    key_file = key_path or default_key_path()
    key = load_or_create_key(key_file)
    write_public_key(key, key_file)  # for a key made before .pub files were
    payload: dict[str, Any] = {
        "format": FORMAT,
        "seq": result.head_seq,
        "count": result.count,
        "head_hash": result.head_hash,
        "created_at": utc_now(),
        "public_key": raw_public_key(key.public_key()),
    }
    signature = base64.b64encode(key.sign(_signed_bytes(payload))).decode("ascii")
    document = {**payload, "signature": signature}
    write_atomic(out, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return document


def sign_bytes(data: bytes, key_path: Path | None = None) -> tuple[str, str]:
    """(base64 Ed25519 signature of ``data``, base64 public key) with the ledger's signing
    key, the one checkpoints are signed with (made on first use, as for a checkpoint). For
    files published beside a checkpoint (an evidence bundle's manifest)."""
    key_file = key_path or default_key_path()
    key = load_or_create_key(key_file)
    write_public_key(key, key_file)
    signature = base64.b64encode(key.sign(data)).decode("ascii")
    return signature, raw_public_key(key.public_key())


def signature_valid(data: bytes, signature: str, public_key: str) -> bool:
    """Does ``signature`` (base64) over ``data`` verify with ``public_key`` (base64 raw
    Ed25519, as trusted_public_key gives it)?"""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def load_checkpoint(path: Path, public_key: str | None = None) -> Checkpoint:
    """Read a checkpoint and check its signature against the trusted key
    (trusted_public_key(public_key)); UserError if no key is configured, or the file is
    unreadable, malformed, signed by another key, forged or altered."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as bad:
        raise UserError(f"cannot read checkpoint {path}: {bad.strerror}") from None
    except ValueError:
        raise UserError(f"checkpoint {path} is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UserError(f"{path} is not a Milepost ledger checkpoint ({FORMAT})")
    try:
        signature = base64.b64decode(document.pop("signature"), validate=True)
        claimed = str(document["public_key"])
        seq, count = int(document["seq"]), int(document["count"])
        head_hash, created_at = str(document["head_hash"]), str(document["created_at"])
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise UserError(f"checkpoint {path} is missing or has malformed fields") from None
    trusted, source = trusted_public_key(public_key)
    if claimed != trusted:
        raise UserError(
            f"checkpoint {path} was signed by key {claimed[:60]}, not the trusted key"
            f" {trusted} (from {source}): do not trust it"
        )
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(trusted))
    try:
        key.verify(signature, _signed_bytes(document))
    except InvalidSignature:
        raise UserError(
            f"checkpoint {path}: the signature does not match its content: the file was"
            " altered or forged; do not trust it"
        ) from None
    return Checkpoint(
        path=path,
        seq=seq,
        count=count,
        head_hash=head_hash,
        created_at=created_at,
        public_key=trusted,
    )
