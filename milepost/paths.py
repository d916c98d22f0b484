"""Where a Milepost checkout keeps its files."""

import os
from pathlib import Path

from milepost.errors import UserError

#: The checkout this package was loaded from (its roles, for what they declare).
PACKAGE_CHECKOUT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """The checkout: $MILEPOST_ROOT, else the nearest directory above cwd holding ansible.cfg
    and playbooks/."""
    env = os.environ.get("MILEPOST_ROOT")
    if env:
        root = Path(env).resolve()
        if not (root / "ansible.cfg").is_file():
            raise UserError(
                f"MILEPOST_ROOT={env} has no ansible.cfg: point it at a Milepost checkout"
            )
        return root
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "ansible.cfg").is_file() and (candidate / "playbooks").is_dir():
            return candidate
    raise UserError("not inside a Milepost checkout: cd into one or set MILEPOST_ROOT")


def state_dir() -> Path:
    """Local state (lab keys and repository, the default ledger, the spool):
    $MILEPOST_STATE_DIR, else <root>/.milepost."""
    env = os.environ.get("MILEPOST_STATE_DIR")
    if env:
        return Path(env).resolve()
    return project_root() / ".milepost"


def lab_dir() -> Path:
    return state_dir() / "lab"
