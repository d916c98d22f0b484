"""Which variable values came from ansible-vault, and their decrypted text: what the ledger
callback and the notices mask. A value is a vault value if it is an inline ``!vault``
string or was read from a file encrypted as a whole (``ansible-vault encrypt vars.yml``:
group_vars/all/vault.yml, vars_files, include_vars, ``-e @file``); the latter carry no vault
tag of their own, only the file they came from (ansible-core 2.19's Origin tag)."""

from __future__ import annotations

from typing import Any

from ansible._internal._datatag._tags import Origin
from ansible.parsing.vault import VaultHelper, is_encrypted_file

#: path -> whether that file is vault-encrypted (a file is opened once per process).
_ENCRYPTED_FILES: dict[str, bool] = {}


def from_encrypted_file(value: Any) -> bool:
    """True if the scalar ``value`` was read from a file encrypted as a whole."""
    if isinstance(value, bool | dict | list | tuple) or value is None:
        return False
    try:
        origin = Origin.get_tag(value)
    except Exception:  # noqa: BLE001 - a value without tags is not from a file
        return False
    path = getattr(origin, "path", None)
    if not path:
        return False
    if path not in _ENCRYPTED_FILES:
        try:
            with open(path, "rb") as handle:
                _ENCRYPTED_FILES[path] = bool(is_encrypted_file(handle))
        except OSError:
            _ENCRYPTED_FILES[path] = False
    return _ENCRYPTED_FILES[path]


def is_vaulted(value: Any) -> bool:
    """An inline !vault string or a value read from a vault-encrypted file."""
    try:
        if VaultHelper.get_ciphertext(value, with_tags=False) is not None:
            return True
    except Exception:  # noqa: BLE001 - an undecryptable value is not ours to judge
        return False
    return from_encrypted_file(value)


def vault_values(variables: Any) -> list[str]:
    """Decrypted values of vault-encrypted variables, found anywhere in nested data. A
    value that cannot be decrypted is left out (then it cannot be shown either)."""
    found = []
    stack = [variables]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif is_vaulted(value):
            text = _decrypted(value)
            if text is not None:
                found.append(text)
    return found


def _decrypted(value: Any) -> str | None:
    """The text of a vault value, or None when no secret given can decrypt it."""
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - Ansible's error types vary: none of them matter here
        return None
