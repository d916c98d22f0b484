"""The Debian package-name and version rules and the OS patching choices have one source,
milepost/inventory/debian.py: the modules' copy (module_utils, for hosts without the
package) is proved equal here, the playbooks use the filter milepost_not_debian, and no other
file of the repository writes the rules out."""

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from milepost.errors import UserError
from milepost.inventory import debian

ROOT = Path(__file__).resolve().parents[3]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_modules_copy_is_the_same_rule():
    copy = _load(ROOT / "plugins/module_utils/milepost_debian.py")
    assert copy.PACKAGE_NAME == debian.PACKAGE_NAME.pattern
    assert copy.DEBIAN_VERSION == debian.DEBIAN_VERSION.pattern


def test_no_other_file_writes_the_package_name_rule_out():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    sources = {"milepost/inventory/debian.py", "plugins/module_utils/milepost_debian.py"}
    written = [
        name
        for name in tracked
        if (ROOT / name).is_file()
        and name.endswith((".py", ".yml", ".yaml", ".j2"))
        and debian.PACKAGE_NAME.pattern in (ROOT / name).read_text(errors="replace")
    ]
    assert sorted(written) == sorted(sources)


@pytest.mark.parametrize(
    "name, good",
    [
        ("ruc-payment-gateway", True),
        ("libssl3", True),
        ("g++", True),
        ("Ruc", False),
        ("-x", False),
        ("a", False),
        ("ruc gateway", False),
    ],
)
def test_package_names(name, good):
    if good:
        assert debian.check_package_name(name) == name
    else:
        with pytest.raises(UserError, match="not a Debian package name"):
            debian.check_package_name(name)


@pytest.mark.parametrize(
    "version, good",
    [
        ("2.4.0", True),
        ("1:2.4.0-1", True),
        ("3.0.11-1~deb12u2", True),
        ("v2", False),
        ("", False),
        ("2.4.0 ", False),
    ],
)
def test_versions(version, good):
    if good:
        assert debian.check_version(version) == version
    else:
        with pytest.raises(UserError):
            debian.check_version(version)


def test_the_filter_returns_what_breaks_the_rule():
    plugin = _load(ROOT / "plugins/filter/milepost_not_debian.py")
    not_debian = plugin.FilterModule().filters()["milepost_not_debian"]
    assert not_debian(["ruc-x", "Bad", "Bad", 3]) == ["Bad", 3]
    assert not_debian(["2.4.0", "v2", None], "version") == ["v2", None]


def test_the_os_patching_choices_are_the_roles_and_the_plays():
    os_patch = yaml.safe_load((ROOT / "roles/os_patch/meta/argument_specs.yml").read_text())
    options = os_patch["argument_specs"]["main"]["options"]
    for name, choices in debian.OS_PATCH_CHOICES.items():
        assert tuple(options[name]["choices"]) == choices, name
    preflight = yaml.safe_load((ROOT / "roles/preflight/meta/argument_specs.yml").read_text())
    probe = preflight["argument_specs"]["main"]["options"]["preflight_probe_os_scope"]
    assert tuple(probe["choices"]) == debian.OS_PATCH_CHOICES["os_patch_scope"]
    # The playbook's first play checks them with this source (milepost_inventory_check,
    # tests/unit/inventory/test_checks.py runs it): no copy of the choices in a playbook.
    play = (ROOT / "playbooks/maintain.yml").read_text()
    assert "milepost_inventory_check:" in play
    for playbook in (ROOT / "playbooks").rglob("*.yml"):
        for name in debian.OS_PATCH_CHOICES:
            assert not re.search(rf"{name} \| default\('\w+'\) in \[", playbook.read_text())
