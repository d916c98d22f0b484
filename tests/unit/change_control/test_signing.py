"""milepost.change_control.signing with real ssh-keygen and real keys: a plan's signature
says which allowed principal made it; another namespace, another key, other data, a
malformed allowed-signers file are each refused in one line."""

import subprocess
from pathlib import Path

import pytest

from milepost.change_control.signing import (
    NAMESPACE,
    check_allowed_signers,
    sign,
    verify,
)
from milepost.errors import UserError

DATA = b"plan P-0123456789ab sha256:" + b"ab" * 32


def keypair(folder: Path, name: str) -> Path:
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def fingerprint(key: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True, text=True, check=True
    ).stdout
    return out.split()[1]


def public(key: Path) -> str:
    """ "key-type base64-key" of a key's public half."""
    return " ".join(Path(f"{key}.pub").read_text().split()[:2])


@pytest.fixture
def keys(tmp_path):
    alice, bob, mallory = (keypair(tmp_path, n) for n in ("alice", "bob", "mallory"))
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(
        "# approvers of the road-charge program\n"
        f"alice@agency.example {public(alice)}\n"
        f'bob@agency.example namespaces="{NAMESPACE}" {public(bob)} bob\'s laptop\n'
    )
    return {"alice": alice, "bob": bob, "mallory": mallory, "allowed": allowed}


def test_a_signature_names_the_allowed_principal_and_the_key(keys):
    for name in ("alice", "bob"):
        signer = verify(DATA, sign(DATA, keys[name]), keys["allowed"])
        assert signer.principal == f"{name}@agency.example"
        assert signer.fingerprint == fingerprint(keys[name])


def test_a_key_not_allowed_other_data_and_another_namespace_are_refused(keys, tmp_path):
    with pytest.raises(UserError, match="not in the allowed-signers file"):
        verify(DATA, sign(DATA, keys["mallory"]), keys["allowed"])
    with pytest.raises(UserError, match="does not verify"):
        verify(DATA + b"x", sign(DATA, keys["alice"]), keys["allowed"])
    git = subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(keys["alice"]), "-n", "git"],
        input=DATA,
        capture_output=True,
        check=True,
    ).stdout.decode()
    with pytest.raises(UserError, match="another purpose") as raised:
        verify(DATA, git, keys["allowed"])
    assert "\n" not in str(raised.value)
    with pytest.raises(UserError, match="not an SSH signature"):
        verify(DATA, "hello", keys["allowed"])


@pytest.mark.parametrize(
    "line",
    [
        "alice@agency.example",
        "alice@agency.example ssh-ed25519",
        "alice@agency.example ssh-dss AAAAB3NzaC1kc3M=",
        'alice@agency.example namespaces="x ssh-ed25519 AAAA',
        "alice@agency.example ssh-ed25519 not*base64",
    ],
)
def test_a_malformed_allowed_signers_file_is_one_line_naming_the_line(tmp_path, line):
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("# approvers\n\n" + line + "\n")
    with pytest.raises(UserError) as raised:
        check_allowed_signers(allowed)
    assert "line 3" in str(raised.value) and "\n" not in str(raised.value)


def test_an_empty_or_missing_allowed_signers_file_is_refused(tmp_path):
    empty = tmp_path / "allowed_signers"
    empty.write_text("# nobody yet\n")
    with pytest.raises(UserError, match="allows nobody"):
        check_allowed_signers(empty)
    with pytest.raises(UserError, match="cannot read it"):
        check_allowed_signers(tmp_path / "missing")


def test_a_key_that_cannot_sign_is_one_line(tmp_path):
    with pytest.raises(UserError, match="is not a file"):
        sign(DATA, tmp_path / "nokey")
    bad = tmp_path / "bad"
    bad.write_text("not a key\n")
    with pytest.raises(UserError, match="could not sign"):
        sign(DATA, bad)
