"""Integration tests run against the lab fleet that `make integration` brings up."""

import json
import subprocess

import pytest
from lab_fleet import (  # noqa: F401 (the tests import them from here)
    INVENTORY,
    KEY,
    KNOWN_HOSTS,
    LAB,
    ROOT,
    STATE,
    ansible_env,
    lab_status,
    ssh,
)


@pytest.fixture(scope="session")
def lab_hosts() -> list[dict]:
    if not INVENTORY.is_file() or not STATE.is_file():
        pytest.fail("the lab is not up: run `make lab` (scripts/lab up) first")
    return json.loads(STATE.read_text())["hosts"]


@pytest.fixture
def fresh_lab(lab_hosts) -> list[dict]:
    """The lab as `up` leaves it: every host on its oldest RUC release, no RUC source, no
    maintenance lock."""
    proc = subprocess.run([str(LAB), "reset"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return lab_hosts
