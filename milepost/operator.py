"""Who is at the keyboard, as every record that names a person says it."""

import getpass
import os


def operator_name() -> str:
    """The sudo caller if any, else the login name (else the numeric uid)."""
    name = os.environ.get("SUDO_USER", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
