"""What a lab host is provisioned with when it is created, before Milepost runs on it: the
baseline's kernel parameters file, which the image cannot carry because the inventory sets
it. An agency's hosts get theirs from their build (image, preseed); the lab's get the
values of the lab inventory and the path of the baseline role's defaults, so a lab host
starts converged to the baseline it is checked against. (The image carries the other
host-level parts of the lab's baseline: the ops user, its sudoers drop-in, the sshd
drop-in.)"""

from pathlib import Path
from typing import Any

import yaml

from milepost.errors import UserError

#: Where the values come from, relative to the checkout.
LAB_VARS = Path("inventory/lab/group_vars/all/lab.yml")
ROLE_DEFAULTS = Path("roles/baseline/defaults/main.yml")


def _mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read it ({exc.__class__.__name__}): fix the file") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a mapping of variables: fix the file")
    return data


def sysctl_file(root: Path) -> tuple[str, str]:
    """The baseline's sysctl file for a lab host: its path and its text, one ``key=value``
    line per parameter, as ansible.posix.sysctl writes it."""
    lab = _mapping(root / LAB_VARS)
    path = lab.get("baseline_sysctl_file") or _mapping(root / ROLE_DEFAULTS).get(
        "baseline_sysctl_file"
    )
    values = lab.get("baseline_sysctl") or {}
    if not isinstance(path, str) or not path.startswith("/") or not isinstance(values, dict):
        raise UserError(
            f"{root / LAB_VARS}: baseline_sysctl must be a mapping and baseline_sysctl_file an"
            " absolute path: fix the file"
        )
    return path, "".join(f"{key}={value}\n" for key, value in values.items())
