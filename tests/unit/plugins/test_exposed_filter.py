"""plugins/filter/milepost_exposed.py: the packages of an advisory a host must patch, and
the version each gets (the fixed one, or the one the archive offers at or above it)."""

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

FILTER = Path(__file__).resolve().parents[3] / "plugins" / "filter" / "milepost_exposed.py"
_spec = importlib.util.spec_from_file_location("_filter_milepost_exposed", FILTER)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
exposed = _module.FilterModule().filters()["milepost_exposed"]

FACTS = {
    "libssl3": [{"version": "3.0.17-1~deb12u2"}],
    "openssl": [{"version": "3.0.22-1~deb12u2"}],
    "libexpat1": [{"version": "2.5.0-1+deb12u5"}],
}
FIXED = {"libssl3": "3.0.18-1~deb12u1", "openssl": "3.0.18-1~deb12u1", "zlib1g": "1:1.3-1"}


def test_only_installed_packages_older_than_the_fix_are_exposed():
    assert exposed(FIXED, FACTS) == {"libssl3": "3.0.18-1~deb12u1"}


def test_an_exposed_package_gets_the_version_to_install_when_one_is_named():
    install = {"libssl3": "3.0.22-1~deb12u2", "openssl": "3.0.22-1~deb12u2"}
    assert exposed(FIXED, FACTS, install) == {"libssl3": "3.0.22-1~deb12u2"}


def test_install_must_be_a_mapping():
    with pytest.raises(AnsibleFilterError):
        exposed(FIXED, FACTS, ["libssl3"])
