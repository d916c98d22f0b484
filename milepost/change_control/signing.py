"""Signatures over plans with people's SSH keys, as Git signs commits: `ssh-keygen -Y sign`
in Milepost's own namespace, checked against an allowed-signers file (ssh-keygen(1),
"ALLOWED SIGNERS") that the inventory names. A signature says which principal made it and
with which key (its SHA256 fingerprint); nothing here trusts a name the signer typed.

Every failure is one line (UserError): a key that cannot sign, a signature that is not
Milepost's, made for another namespace, or by a key the file does not allow.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from milepost.errors import UserError
from milepost.input_checks import shown

#: The namespace of every Milepost signature: a signature made for Git or for a file
#: (`-n git`, `-n file`) is never taken for an approval.
NAMESPACE = "milepost-change-plan@milepost"
#: Key types an allowed-signers line may name (OpenSSH's, hardware-backed ones included).
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_OPTION = r'(?:cert-authority|namespaces="[^"]*"|valid-(?:after|before)="?[0-9TZ:-]+"?)'
ALLOWED_LINE = re.compile(
    r"(?P<principals>[^\s,\"]+(?:,[^\s,\"]+)*)\s+"
    rf"(?:{_OPTION}(?:,{_OPTION})*\s+)?"
    rf"(?P<type>{'|'.join(re.escape(t) for t in KEY_TYPES)})\s+"
    r"(?P<key>[A-Za-z0-9+/]+={0,2})(?:\s+.*)?"
)
GOOD = re.compile(
    r'Good "(?P<ns>[^"]+)" signature for (?P<principal>\S+) with \S+ key (?P<fp>SHA256:\S+)'
)
BEGIN, END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"
#: Seconds ssh-keygen may take (a hardware key waits for a touch).
TIMEOUT = 120


@dataclass(frozen=True)
class Signer:
    """Who made a good signature: the allowed-signers principal and the key's fingerprint."""

    principal: str
    fingerprint: str


def check_allowed_signers(path: Path) -> dict[str, list[str]]:
    """{principal: [key, ...]} of an allowed-signers file; UserError naming the file and the
    first line that is not "principals [options] keytype base64-key [comment]"."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"allowed-signers file {shown(str(path), 200)}: cannot read it"
            f" ({exc.__class__.__name__})"
        ) from None
    found: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = ALLOWED_LINE.fullmatch(line)
        if match is None:
            raise UserError(
                f"allowed-signers file {shown(str(path), 200)} line {number} is not"
                " 'principal[,principal] [options] key-type base64-key': fix it"
            )
        for principal in match["principals"].split(","):
            found.setdefault(principal, []).append(f"{match['type']} {match['key']}")
    if not found:
        raise UserError(
            f"allowed-signers file {shown(str(path), 200)} allows nobody: add one line per"
            " approver's public key"
        )
    return found


def _keygen(argv: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["ssh-keygen", *argv], input=data, capture_output=True, timeout=TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise UserError("ssh-keygen is not installed: apt-get install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise UserError(
            f"ssh-keygen took more than {TIMEOUT}s: was a hardware key touched?"
        ) from None


def _last_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = proc.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit code {proc.returncode}"


def sign(data: bytes, key: Path) -> str:
    """The armored SSH signature of ``data`` by the private ``key`` (in NAMESPACE)."""
    if not key.is_file():
        raise UserError(f"--key {shown(str(key), 200)} is not a file: name your SSH private key")
    proc = _keygen(["-q", "-Y", "sign", "-f", str(key), "-n", NAMESPACE], data)
    signature = proc.stdout.decode(errors="replace")
    if proc.returncode != 0 or BEGIN not in signature:
        raise UserError(
            f"ssh-keygen could not sign with {shown(str(key), 200)}: {_last_line(proc)}"
        )
    return signature


def check_signature_text(signature: str) -> str:
    """The armored signature, or UserError when it is not one."""
    text = signature.strip()
    if not (text.startswith(BEGIN) and text.endswith(END)) or len(text) > 16_384:
        raise UserError("the signature is not an SSH signature (-----BEGIN SSH SIGNATURE-----)")
    return text + "\n"


def verify(data: bytes, signature: str, allowed_signers: Path) -> Signer:
    """Who signed ``data``: the principal of ``allowed_signers`` whose key made
    ``signature`` in NAMESPACE. UserError when no allowed key made it, it was made for
    another namespace, or ``data`` is not what was signed."""
    check_allowed_signers(allowed_signers)
    text = check_signature_text(signature)
    with tempfile.TemporaryDirectory(prefix="milepost-sig-") as tmp:
        sig = Path(tmp) / "plan.sig"
        sig.write_text(text)
        found = _keygen(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)], b"")
        principals = found.stdout.decode(errors="replace").split()
        if found.returncode != 0 or not principals:
            raise UserError(
                "the signature's key is not in the allowed-signers file"
                f" {shown(str(allowed_signers), 200)}: only the approvers listed there may sign"
            )
        reasons = []
        for principal in principals:
            proc = _keygen(
                [
                    "-Y", "verify", "-f", str(allowed_signers), "-I", principal,
                    "-n", NAMESPACE, "-s", str(sig),
                ],
                data,
            )  # fmt: skip
            good = GOOD.search(proc.stdout.decode(errors="replace"))
            if proc.returncode == 0 and good and good["ns"] == NAMESPACE:
                return Signer(principal=good["principal"], fingerprint=good["fp"])
            reasons.append(_last_line(proc))
    why = next((r for r in reasons if "namespace" in r), reasons[0] if reasons else "")
    if "namespace" in why:
        raise UserError(
            f"the signature was made for another purpose (namespace), not a Milepost plan"
            f" ({NAMESPACE}): sign with `milepost approve`"
        )
    raise UserError(f"the signature does not verify for this plan: {why}")
