"""Unit tests for plugins/modules/milepost_unapproved_packages.py: reading the dpkg status,
the approval closure, the apt-get commands, and main() against a faked host."""

from __future__ import annotations

import json

import pytest
from conftest import load_module

mup = load_module("milepost_unapproved_packages")


def _line(
    name,
    version="1.0-1",
    priority="optional",
    essential="no",
    depends="",
    pre_depends="",
    recommends="",
    provides="",
    arch="amd64",
    status="ii ",
):
    fields = [status, name, version, priority, essential, depends, pre_depends]
    return "\t".join(fields + [recommends, provides, arch])


STATUS = "\n".join(
    [
        _line("libc6", "2.36-9", "required", depends="libgcc-s1", arch="amd64"),
        _line("libc6", "2.36-9", "required", depends="libgcc-s1", arch="i386"),
        _line("libgcc-s1", "12.2.0-14", "optional", pre_depends="libc6 (>= 2.35)"),
        _line("dpkg", "1.21.22", "required", essential="yes"),
        _line("bash", "5.2.15-2", "optional", essential="yes", pre_depends="libtinfo6:any"),
        _line("libtinfo6", "6.4-4", "optional"),
        # An approved name pattern needs a virtual package and an alternative.
        _line(
            "ruc-account-api",
            "1.4.0",
            depends="default-mta | mail-transport-agent, python3:any (>= 3.11), jq [amd64]",
            recommends="logrotate",
        ),
        _line("exim4-daemon-light", "4.96-15", provides="mail-transport-agent, exim4 (= 4.96)"),
        _line("postfix", "3.7.11-0", provides="mail-transport-agent"),
        _line("python3", "3.11.2-1", depends="python3.11 (>= 3.11.2-1~)"),
        _line("python3.11", "3.11.2-6"),
        _line("jq", "1.6-2.1", depends="libjq1 (= 1.6-2.1)"),
        _line("libjq1", "1.6-2.1"),
        _line("logrotate", "3.21.0-1", "important", recommends="bsd-mailx"),
        _line("bsd-mailx", "8.1.2-0.2"),
        _line("important-thing", "1", "important"),
        # Unapproved: nothing approved needs them.
        _line("telnet", "0.17+2.4-2", depends="netbase"),
        _line("netbase", "6.4"),
        _line("vim-tiny", "2:9.0.1378-2", "optional", recommends="vim-common"),
        _line("vim-common", "2:9.0.1378-2", "important"),
        _line("libfoo1", "2.0", arch="amd64"),
        _line("libfoo1", "2.0", arch="i386"),
        _line("fonts-dejavu", "2.37-6", arch="all"),
        # Not installed: removed with config files left, or never installed.
        _line("old-tool", "0.9", "required", status="rc "),
        _line("ghost", "1", "required", status="un "),
        # Half-installed still counts as installed.
        _line("broken-thing", "1", status="iHR"),
    ]
)

PRIORITIES = ["required", "important"]
PATTERNS = ["ruc-*"]
UNAPPROVED = ["broken-thing", "fonts-dejavu", "libfoo1", "netbase", "telnet", "vim-tiny"]


# --- reading the status ----------------------------------------------------------------


def test_relation_fields_drop_versions_arch_qualifiers_and_restrictions():
    field = "a (>= 1.0) | b:any, c:amd64 [amd64] <!nocheck>, d (<< 2) | a"
    assert mup.relation_names(field) == [["a", "b"], ["c"], ["d", "a"]]
    assert mup.relation_names("") == []
    assert mup.relation_names(" , ") == []


def test_status_keeps_installed_packages_and_merges_architectures():
    packages = mup.parse_status(STATUS)
    assert "old-tool" not in packages
    assert "ghost" not in packages
    assert "broken-thing" in packages
    assert packages["libc6"]["archs"] == ["amd64", "i386"]
    assert packages["libc6"]["needs"] == [["libgcc-s1"]]
    assert packages["libgcc-s1"]["needs"] == [["libc6"]]
    assert packages["bash"]["essential"] is True
    assert packages["bash"]["needs"] == [["libtinfo6"]]
    assert packages["exim4-daemon-light"]["provides"] == ["mail-transport-agent", "exim4"]
    assert packages["ruc-account-api"]["needs"] == [
        ["default-mta", "mail-transport-agent"],
        ["python3"],
        ["jq"],
        ["logrotate"],
    ]


def test_an_installed_instance_is_kept_when_another_architecture_left_only_config():
    text = "\n".join([_line("libbar1", arch="i386", status="rc "), _line("libbar1", arch="amd64")])
    assert mup.parse_status(text)["libbar1"]["archs"] == ["amd64"]


@pytest.mark.parametrize("line", ["ii \tshort\tline", "\t" * 9, "garbage"])
def test_unreadable_status_lines_are_errors(line):
    with pytest.raises(ValueError):
        mup.parse_status(line)


# --- the approval closure --------------------------------------------------------------


def test_the_closure_follows_depends_predepends_recommends_alternatives_and_provides():
    packages = mup.parse_status(STATUS)
    approved = mup.approved_packages(packages, PRIORITIES, PATTERNS)
    # Priority roots and what they need, both ways round a dependency loop.
    assert {"libc6", "libgcc-s1", "logrotate", "important-thing"} <= approved
    # Essential roots, through an arch-qualified Pre-Depends.
    assert {"dpkg", "bash", "libtinfo6"} <= approved
    # A pattern root: every installed provider of the virtual alternative, python3:any with
    # a version, jq with an architecture restriction, and the Recommends of a Recommends.
    assert {
        "ruc-account-api",
        "exim4-daemon-light",
        "postfix",
        "python3",
        "python3.11",
        "jq",
        "libjq1",
        "bsd-mailx",
    } <= approved
    # A priority makes vim-common approved; it does not approve what recommends it.
    assert "vim-common" in approved
    assert approved.isdisjoint(UNAPPROVED)


def test_unapproved_packages_are_sorted_and_counted():
    unapproved, count = mup.find_unapproved(mup.parse_status(STATUS), PRIORITIES, PATTERNS)
    assert unapproved == UNAPPROVED
    assert count == len(mup.parse_status(STATUS)) - len(UNAPPROVED)


def test_without_the_pattern_its_dependencies_are_unapproved_too():
    unapproved, _ = mup.find_unapproved(mup.parse_status(STATUS), PRIORITIES, [])
    assert {"ruc-account-api", "postfix", "jq", "libjq1", "python3"} <= set(unapproved)
    # logrotate is important by itself, and approves bsd-mailx.
    assert "logrotate" not in unapproved
    assert "bsd-mailx" not in unapproved


def test_priorities_and_patterns_are_parameters():
    packages = mup.parse_status(STATUS)
    unapproved, _ = mup.find_unapproved(packages, ["required"], ["ruc-*", "vim-*", "telnet"])
    assert "important-thing" in unapproved
    assert "vim-tiny" not in unapproved
    assert "telnet" not in unapproved and "netbase" not in unapproved
    # Patterns are case-sensitive shell patterns.
    unapproved, _ = mup.find_unapproved(packages, PRIORITIES, ["ruc-*", "TELNET", "fonts-?ejavu"])
    assert "telnet" in unapproved and "fonts-dejavu" not in unapproved


def test_a_virtual_name_without_an_installed_provider_approves_nothing():
    text = "\n".join([_line("root", priority="required", depends="no-such-thing"), _line("x")])
    assert mup.find_unapproved(mup.parse_status(text), PRIORITIES, []) == (["x"], 1)


# --- commands --------------------------------------------------------------------------


def test_arguments_name_every_installed_architecture():
    packages = mup.parse_status(STATUS)
    assert mup.package_arguments(packages, ["fonts-dejavu", "libfoo1", "telnet"]) == [
        "fonts-dejavu",
        "libfoo1:amd64",
        "libfoo1:i386",
        "telnet:amd64",
    ]


@pytest.mark.parametrize(
    "name",
    ["-oAPT::Get::AllowUnauthenticated=1", "Foo", "a", "foo bar", "foo;rm", "foo_bar", "-"],
)
def test_bad_names_are_rejected(name):
    with pytest.raises(ValueError, match="not a valid Debian package name"):
        mup.package_arguments({}, ["telnet", name])


def test_bad_architectures_are_rejected():
    packages = mup.parse_status(_line("telnet", arch="-evil"))
    with pytest.raises(ValueError, match="architecture"):
        mup.package_arguments(packages, ["telnet"])


def test_apt_commands_simulate_then_remove_non_interactively():
    assert mup.apt_command(["a", "b:i386"], True, True, 60) == [
        "apt-get",
        "-s",
        "-q",
        "purge",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        "DPkg::Lock::Timeout=60",
        "a",
        "b:i386",
    ]
    argv = mup.apt_command(["a"], False, False, 5)
    assert argv[:4] == ["apt-get", "-y", "-q", "remove"]
    assert "DPkg::Lock::Timeout=5" in argv


def test_simulation_output_names_removals_without_architectures():
    out = (
        "Reading package lists...\n"
        "The following packages will be REMOVED:\n"
        "  telnet* libfoo1*\n"
        "Purg telnet [0.17+2.4-2]\n"
        "Purg libfoo1:i386 [2.0]\n"
        "Purg libfoo1 [2.0]\n"
        "Remv ruc-account-api [1.4.0]\n"
        "Inst something [1]\n"
    )
    assert mup.simulated_removals(out) == ["libfoo1", "ruc-account-api", "telnet"]


def test_removed_changes_carry_the_old_version():
    before = mup.parse_status(STATUS)
    after = {k: v for k, v in before.items() if k not in ("telnet", "vim-tiny")}
    removed, changes = mup.removed_changes(before, after)
    assert removed == ["telnet", "vim-tiny"]
    assert changes == [
        {"package": "telnet", "from_version": "0.17+2.4-2", "to_version": None},
        {"package": "vim-tiny", "from_version": "2:9.0.1378-2", "to_version": None},
    ]


# --- main() against a faked host --------------------------------------------------------


class FakeHost:
    """Answers run_command like a Debian host; apt-get -y removes what it is told to."""

    def __init__(self, status, simulation=None, apt_rc=0, apt_err="", has_dpkg=True):
        self.status = status
        self.simulation = simulation
        self.apt_rc = apt_rc
        self.apt_err = apt_err
        self.has_dpkg = has_dpkg
        self.calls = []
        self.environ = []

    def get_bin_path(self, name, *args, **kwargs):
        if name in ("dpkg-query", "apt-get") and self.has_dpkg:
            return "/usr/bin/" + name
        return None

    def run_command(self, argv, *args, **kwargs):
        assert isinstance(argv, list), "commands are argv lists, never shell strings"
        self.calls.append(argv)
        self.environ.append(kwargs.get("environ_update") or {})
        if argv[0] == "dpkg-query":
            return 0, self.status, ""
        if argv[:2] == ["apt-get", "-s"]:
            if self.simulation is not None:
                return 0, self.simulation, ""
            names = [a.split(":")[0] for a in argv[10:]]
            return 0, "".join(f"Purg {n} [1]\n" for n in names), ""
        if argv[:2] == ["apt-get", "-y"]:
            names = {a.split(":")[0] for a in argv[10:]}
            if self.apt_rc == 0:
                self.status = "\n".join(
                    line for line in self.status.splitlines() if line.split("\t")[1] not in names
                )
            else:
                drop = sorted(names)[0]  # one removal happened before the failure
                self.status = "\n".join(
                    line for line in self.status.splitlines() if line.split("\t")[1] != drop
                )
            return self.apt_rc, "", self.apt_err
        raise AssertionError(f"unexpected command {argv!r}")

    @property
    def apt_calls(self):
        return [argv for argv in self.calls if argv[0] == "apt-get"]


def _run_main(monkeypatch, capsys, host, args):
    from ansible.module_utils.basic import AnsibleModule
    from ansible.module_utils.testing import patch_module_args

    monkeypatch.setattr(
        AnsibleModule, "run_command", lambda self, *a, **k: host.run_command(*a, **k)
    )
    monkeypatch.setattr(
        AnsibleModule, "get_bin_path", lambda self, *a, **k: host.get_bin_path(*a, **k)
    )
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            mup.main()
    out = capsys.readouterr().out
    result = json.loads(out)  # the only thing on stdout is the module's JSON
    return excinfo.value.code, result


def test_check_mode_reports_and_changes_nothing(monkeypatch, capsys):
    host = FakeHost(STATUS)
    code, result = _run_main(
        monkeypatch, capsys, host, {"approved": PATTERNS, "_ansible_check_mode": True}
    )
    assert code == 0
    assert result["changed"] is True
    assert result["unapproved"] == UNAPPROVED
    assert result["approved_count"] == len(mup.parse_status(STATUS)) - len(UNAPPROVED)
    assert result["removed"] == []
    assert result["milepost_package_changes"] == []
    assert host.apt_calls == []
    assert [argv[0] for argv in host.calls] == ["dpkg-query"]


def test_check_mode_without_unapproved_packages_is_not_changed(monkeypatch, capsys):
    host = FakeHost(STATUS)
    code, result = _run_main(
        monkeypatch,
        capsys,
        host,
        {"approved": ["*"], "_ansible_check_mode": True},
    )
    assert code == 0
    assert result["changed"] is False
    assert result["unapproved"] == []


def test_removal_purges_the_unapproved_packages_and_reports_the_changes(monkeypatch, capsys):
    host = FakeHost(STATUS)
    code, result = _run_main(monkeypatch, capsys, host, {"approved": PATTERNS})
    assert code == 0, result
    assert result["changed"] is True
    assert result["removed"] == UNAPPROVED
    assert result["unapproved"] == UNAPPROVED
    changes = {c["package"]: c for c in result["milepost_package_changes"]}
    assert sorted(changes) == UNAPPROVED
    assert changes["vim-tiny"] == {
        "package": "vim-tiny",
        "from_version": "2:9.0.1378-2",
        "to_version": None,
    }
    simulate, remove = host.apt_calls
    assert simulate[:4] == ["apt-get", "-s", "-q", "purge"]
    assert remove[:4] == ["apt-get", "-y", "-q", "purge"]
    assert "Dpkg::Options::=--force-confdef" in remove
    assert "Dpkg::Options::=--force-confold" in remove
    assert remove[10:] == [
        "broken-thing:amd64",
        "fonts-dejavu",
        "libfoo1:amd64",
        "libfoo1:i386",
        "netbase:amd64",
        "telnet:amd64",
        "vim-tiny:amd64",
    ]
    assert all(env.get("DEBIAN_FRONTEND") == "noninteractive" for env in host.environ)


def test_purge_false_removes(monkeypatch, capsys):
    host = FakeHost(STATUS, simulation="Remv telnet [1]\n")
    code, result = _run_main(monkeypatch, capsys, host, {"approved": PATTERNS, "purge": False})
    assert code == 0, result
    assert [argv[3] for argv in host.apt_calls] == ["remove", "remove"]


def test_nothing_unapproved_runs_no_apt(monkeypatch, capsys):
    host = FakeHost(STATUS)
    code, result = _run_main(monkeypatch, capsys, host, {"approved": ["*"]})
    assert code == 0
    assert result["changed"] is False
    assert result["removed"] == [] and result["milepost_package_changes"] == []
    assert host.apt_calls == []


def test_refuses_when_the_simulation_would_remove_an_approved_package(monkeypatch, capsys):
    simulation = "Purg telnet [0.17]\nPurg ruc-account-api [1.4.0]\nPurg libfoo1:i386 [2.0]\n"
    host = FakeHost(STATUS, simulation=simulation)
    code, result = _run_main(monkeypatch, capsys, host, {"approved": PATTERNS})
    assert code == 1
    assert result["failed"] is True
    assert "ruc-account-api" in result["msg"]
    assert "\n" not in result["msg"]
    assert result["refused"] == ["ruc-account-api"]
    assert result["changed"] is False
    assert result["removed"] == [] and result["milepost_package_changes"] == []
    assert [argv[1] for argv in host.apt_calls] == ["-s"]


def test_a_bad_package_name_fails_before_apt_runs(monkeypatch, capsys):
    host = FakeHost(STATUS + "\n" + _line("-oDebug::pkgProblemResolver=1"))
    code, result = _run_main(monkeypatch, capsys, host, {"approved": PATTERNS})
    assert code == 1
    assert "not a valid Debian package name" in result["msg"]
    assert "\n" not in result["msg"]
    assert host.apt_calls == []


def test_apt_failure_reports_the_last_error_lines_and_what_was_removed(monkeypatch, capsys):
    err = "E: Sub-process /usr/bin/dpkg returned an error code (1)\n"
    err = "W: something\n" + err
    host = FakeHost(STATUS, apt_rc=100, apt_err=err)
    code, result = _run_main(monkeypatch, capsys, host, {"approved": PATTERNS})
    assert code == 1
    assert result["msg"].endswith("E: Sub-process /usr/bin/dpkg returned an error code (1)")
    assert "after 1 removals" in result["msg"]
    assert result["error_lines"] == [line for line in err.splitlines()]
    assert result["removed"] == ["broken-thing"]
    assert result["milepost_package_changes"] == [
        {"package": "broken-thing", "from_version": "1", "to_version": None}
    ]


def test_a_simulation_error_changes_nothing(monkeypatch, capsys):
    host = FakeHost(STATUS)

    def failing(argv, *args, **kwargs):
        if argv[0] == "apt-get":
            host.calls.append(argv)
            return 100, "", "E: Unable to locate package telnet\n"
        return FakeHost.run_command(host, argv, *args, **kwargs)

    host.run_command = failing
    code, result = _run_main(monkeypatch, capsys, host, {"approved": PATTERNS})
    assert code == 1
    assert result["msg"].endswith("E: Unable to locate package telnet")
    assert [argv[1] for argv in host.apt_calls] == ["-s"]


def test_a_host_without_dpkg_fails_with_one_line(monkeypatch, capsys):
    host = FakeHost(STATUS, has_dpkg=False)
    code, result = _run_main(monkeypatch, capsys, host, {"_ansible_check_mode": True})
    assert code == 1
    assert "dpkg-query" in result["msg"] and "\n" not in result["msg"]
    assert host.calls == []


def test_present_is_not_a_state(monkeypatch, capsys):
    host = FakeHost(STATUS)
    code, result = _run_main(monkeypatch, capsys, host, {"state": "present"})
    assert code == 1
    assert "state" in result["msg"]
    assert host.calls == []
