"""The filter plugins that read registered results for the roles: the services to restart
(milepost_restarts), the undeclared drop-ins (milepost_dropins) and the package changes and
the versions before them (milepost_package_changes)."""

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

FILTERS = Path(__file__).resolve().parents[3] / "plugins" / "filter"


def _filter(name):
    spec = importlib.util.spec_from_file_location(f"_filter_{name}", FILTERS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()[name]


restarts = _filter("milepost_restarts")
dropins = _filter("milepost_dropins")
package_changes = _filter("milepost_package_changes")


def test_only_changed_items_name_services_to_restart_each_once():
    templates = {
        "results": [
            {"changed": True, "item": {"path": "/etc/ssh/sshd_config", "restart": "ssh"}},
            {"changed": False, "item": {"path": "/etc/chrony.conf", "restart": "chrony"}},
            {"changed": True, "item": {"path": "/etc/motd"}},
            {"skipped": True, "item": {"path": "/etc/x", "restart": "x"}},
        ]
    }
    contents = {
        "results": [{"changed": True, "item": {"path": "/etc/a", "restart": ["rsyslog", "ssh"]}}]
    }
    skipped_whole = {"skipped": True}
    assert restarts([templates, contents, skipped_whole, {}]) == ["ssh", "rsyslog"]
    assert restarts([]) == []
    with pytest.raises(AnsibleFilterError):
        restarts({"results": []})


def test_dropins_are_resources_kind_by_kind():
    found = {
        "sudoers": {"files": [{"path": "/etc/sudoers.d/extra"}]},
        "sshd": {"files": [{"path": "/etc/ssh/sshd_config.d/x.conf"}]},
    }
    assert dropins(found) == ["sudoers:/etc/sudoers.d/extra", "sshd:/etc/ssh/sshd_config.d/x.conf"]
    assert dropins({"sudoers": {"skipped": True}, "sshd": {}}) == []
    with pytest.raises(AnsibleFilterError):
        dropins([])


def test_package_changes_of_a_loop_and_the_versions_before_them():
    first = {"package": "ruc-x", "from_version": "1.0", "to_version": "1.1"}
    second = {"package": "ruc-y", "from_version": None, "to_version": "2.0"}
    again = {"package": "ruc-x", "from_version": "1.1", "to_version": "1.2"}
    looped = {
        "results": [
            {"milepost_package_changes": [first]},
            {"skipped": True},
            {"milepost_package_changes": [second, again]},
        ]
    }
    assert package_changes(looped) == [first, second, again]
    assert package_changes({"milepost_package_changes": [first]}) == [first]
    assert package_changes({"skipped": True, "results": []}) == []
    # What a rollback restores: each package's version before its first change.
    assert package_changes(looped, before=True) == {"ruc-x": "1.0", "ruc-y": None}
    assert package_changes([first, again], before=True) == {"ruc-x": "1.0"}
    with pytest.raises(AnsibleFilterError):
        package_changes("ruc-x")
