"""milepost.lab.provision: a lab host is created with the baseline's sysctl file, written as
the baseline role would write it from the lab inventory (so a drift check of a new host
finds no kernel parameter missing; tests/integration/test_drift.py checks that on hosts)."""

import shutil
from pathlib import Path

import pytest
import yaml

from milepost.errors import UserError
from milepost.lab.provision import LAB_VARS, ROLE_DEFAULTS, sysctl_file

ROOT = Path(__file__).resolve().parents[3]


def copy_of_checkout(tmp_path: Path) -> Path:
    for relative in (LAB_VARS, ROLE_DEFAULTS):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    return tmp_path


def test_the_file_holds_every_parameter_of_the_lab_inventory_at_the_roles_path():
    path, text = sysctl_file(ROOT)
    lab = yaml.safe_load((ROOT / LAB_VARS).read_text())
    defaults = yaml.safe_load((ROOT / ROLE_DEFAULTS).read_text())
    assert path == defaults["baseline_sysctl_file"]
    assert lab["baseline_sysctl"]
    assert text.splitlines() == [f"{k}={v}" for k, v in lab["baseline_sysctl"].items()]


def test_the_inventory_may_move_the_file(tmp_path):
    root = copy_of_checkout(tmp_path)
    lab = root / LAB_VARS
    lab.write_text(lab.read_text() + "baseline_sysctl_file: /etc/sysctl.d/99-lab.conf\n")
    assert sysctl_file(root)[0] == "/etc/sysctl.d/99-lab.conf"


@pytest.mark.parametrize(
    "extra",
    [
        "baseline_sysctl: [kernel.randomize_va_space]\n",
        "baseline_sysctl_file: sysctl.conf\n",
        "baseline_sysctl: {a: [\n",
    ],
)
def test_a_lab_inventory_it_cannot_use_is_one_line_saying_which_file(tmp_path, extra):
    root = copy_of_checkout(tmp_path)
    lab = root / LAB_VARS
    lab.write_text(lab.read_text() + extra)
    with pytest.raises(UserError) as raised:
        sysctl_file(root)
    assert str(LAB_VARS) in str(raised.value) and "\n" not in str(raised.value)
