"""Unit tests for plugins/modules/milepost_package_versions.py (no host).

python3-apt is a Debian package, not on PyPI, so the venv cannot import apt_pkg: the tests
that hold the pure dpkg comparison against apt_pkg.version_compare (what the modules use on a
host) ask Debian's /usr/bin/python3, where `make deps` (scripts/install-deps) installs it.
Without it they fail; they are never skipped.
"""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest
from conftest import load_module

mpv = load_module("milepost_package_versions")
cmp = mpv.dpkg_version_compare


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


# --- dpkg version comparison ------------------------------------------------------------

DPKG_CASES = [
    ("1.5.0", "1.4.0", 1),
    ("1.4.0", "1.5.0", -1),
    ("1.4.0", "1.4.0", 0),
    ("1.10.0", "1.9.0", 1),
    ("2.3.1", "2.3.0", 1),
    ("2.4.0", "2.3.1", 1),
    ("1.0~rc1", "1.0", -1),
    ("1.0", "1.0+deb12u1", -1),
    ("1.0-1", "1.0-2", -1),
    ("1.0-10", "1.0-9", 1),
    ("1:0.9", "2.0", 1),
    ("0:1.0", "1.0", 0),
    ("1.0a", "1.0", 1),
    ("1.0", "1.0.0", -1),
    ("1.00", "1.0", 0),
    ("3.2.0", "3.1.0", 1),
    ("5.1.0", "5.0.0", 1),
    ("1.0~~", "1.0~", -1),
    ("1.0-1~bpo1", "1.0-1", -1),
]


@pytest.mark.parametrize(("left", "right", "expected"), DPKG_CASES)
def test_dpkg_version_compare(left: str, right: str, expected: int) -> None:
    assert _sign(cmp(left, right)) == expected
    assert _sign(cmp(right, left)) == -expected


def _dpkg_sign(left: str, right: str) -> int:
    """dpkg's own ordering (dpkg --compare-versions), as -1, 0 or 1."""
    for relation, sign in (("lt", -1), ("eq", 0), ("gt", 1)):
        done = subprocess.run(["dpkg", "--compare-versions", left, relation, right], check=False)
        if done.returncode == 0:
            return sign
    raise AssertionError(f"dpkg cannot order {left!r} and {right!r}")


@pytest.mark.parametrize(("left", "right", "expected"), DPKG_CASES)
def test_dpkg_version_compare_agrees_with_dpkg(left: str, right: str, expected: int) -> None:
    assert _dpkg_sign(left, right) == _sign(cmp(left, right))


# The unit tests of the APT modules compare versions with dpkg_version_compare where the
# modules, on a host, use apt_pkg.version_compare: the two must order every pair alike.
SYSTEM_PYTHON = "/usr/bin/python3"
APT_PKG_COMPARE = """
import json, sys
import apt_pkg
apt_pkg.init_system()
print(json.dumps([apt_pkg.version_compare(a, b) for a, b in json.load(sys.stdin)]))
"""
# More shapes than DPKG_CASES, for the every-pair comparison below.
MORE_VERSIONS = [
    "0",
    "10",
    "9.99",
    "1.0-0",
    "1.0.a",
    "1.0+b1",
    "1.0~rc1-1",
    "1.0-1+deb12u1",
    "1.0+dfsg-1~bpo12+1",
    "2:0.1",
    "1:1.0-1",
    "1.0-1.1",
]
EVERY_VERSION = sorted(
    {v for left, right, _ in DPKG_CASES for v in (left, right)} | {*MORE_VERSIONS}
)


@pytest.fixture(scope="module")
def apt_pkg_order() -> dict[tuple[str, str], int]:
    """apt_pkg.version_compare of every pair of EVERY_VERSION, as -1, 0 or 1."""
    pairs = [(left, right) for left in EVERY_VERSION for right in EVERY_VERSION]
    try:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-c", APT_PKG_COMPARE],
            input=json.dumps(pairs),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError as missing:
        pytest.fail(f"{SYSTEM_PYTHON}: {missing}: run `make deps`", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{SYSTEM_PYTHON} cannot run apt_pkg.version_compare (install python3-apt:"
            f" `make deps`): {done.stderr.strip()[-400:]}",
            pytrace=False,
        )
    answers = json.loads(done.stdout)
    assert len(answers) == len(pairs)
    return {pair: _sign(answer) for pair, answer in zip(pairs, answers, strict=True)}


@pytest.mark.parametrize(("left", "right", "expected"), DPKG_CASES)
def test_dpkg_version_compare_agrees_with_apt_pkg(
    apt_pkg_order: dict[tuple[str, str], int], left: str, right: str, expected: int
) -> None:
    assert apt_pkg_order[(left, right)] == _sign(cmp(left, right)) == expected


def test_dpkg_version_compare_orders_every_pair_as_apt_pkg_does(
    apt_pkg_order: dict[tuple[str, str], int],
) -> None:
    assert len(apt_pkg_order) == len(EVERY_VERSION) ** 2 > 900
    disagree = {
        pair: (apt, _sign(cmp(*pair)))
        for pair, apt in apt_pkg_order.items()
        if apt != _sign(cmp(*pair))
    }
    assert disagree == {}
    assert len(set(apt_pkg_order.values())) == 3  # the pairs do order both ways and alike


# --- name matching ------------------------------------------------------------------------

KNOWN = ["ruc-account-api", "ruc-reporting", "openssl", "ruc-sftp-bridge", "rucksack"]


def test_match_glob_and_plain_names() -> None:
    names, unmatched = mpv.match_names(["ruc-*", "openssl"], KNOWN)
    assert names == ["openssl", "ruc-account-api", "ruc-reporting", "ruc-sftp-bridge"]
    assert unmatched == []


def test_plain_name_is_not_a_prefix_match() -> None:
    names, unmatched = mpv.match_names(["ruc"], KNOWN)
    assert names == []
    assert unmatched == ["ruc"]


def test_glob_matching_is_case_sensitive() -> None:
    names, unmatched = mpv.match_names(["RUC-*"], KNOWN)
    assert names == []
    assert unmatched == ["RUC-*"]


def test_character_class_and_question_mark_globs() -> None:
    names, _ = mpv.match_names(["ruc-[ar]*", "opens?l"], KNOWN)
    assert names == ["openssl", "ruc-account-api", "ruc-reporting"]


def test_unmatched_patterns_are_reported_once_and_in_order() -> None:
    names, unmatched = mpv.match_names(["nope-*", "gone", "nope-*"], KNOWN)
    assert names == []
    assert unmatched == ["nope-*", "gone"]


def test_overlapping_patterns_do_not_duplicate() -> None:
    names, _ = mpv.match_names(["ruc-*", "ruc-account-api", "*-api"], KNOWN)
    assert names == ["ruc-account-api", "ruc-reporting", "ruc-sftp-bridge"]


# --- sorting and entries -----------------------------------------------------------------


def test_sort_versions_newest_first_without_duplicates() -> None:
    versions = ["2.3.0", "2.4.0", "2.3.1", "2.4.0", "", "2.3.10"]
    assert mpv.sort_versions(versions, cmp) == ["2.4.0", "2.3.10", "2.3.1", "2.3.0"]


def test_entry_outdated_when_candidate_newer() -> None:
    entry = mpv.package_entry("1.4.0", "1.5.0", ["1.4.0", "1.5.0"], cmp)
    assert entry == {
        "installed": "1.4.0",
        "candidate": "1.5.0",
        "versions": ["1.5.0", "1.4.0"],
        "outdated": True,
    }


def test_entry_current_when_candidate_equals_installed() -> None:
    entry = mpv.package_entry("1.5.0", "1.5.0", ["1.5.0", "1.4.0"], cmp)
    assert entry["outdated"] is False


def test_entry_not_outdated_when_installed_is_newer_than_candidate() -> None:
    # e.g. a package pinned back, or installed from a file
    entry = mpv.package_entry("2.0.0", "1.5.0", ["2.0.0", "1.5.0"], cmp)
    assert entry["outdated"] is False


def test_entry_not_installed_is_not_outdated() -> None:
    entry = mpv.package_entry(None, "3.2.0", ["3.1.0", "3.2.0"], cmp)
    assert entry["installed"] is None
    assert entry["outdated"] is False


def test_entry_without_candidate_is_not_outdated() -> None:
    entry = mpv.package_entry("1.0.0", None, ["1.0.0"], cmp)
    assert entry["candidate"] is None
    assert entry["outdated"] is False


def test_build_report() -> None:
    records = {
        "ruc-account-api": {
            "installed": "1.4.0",
            "candidate": "1.5.0",
            "versions": ["1.5.0", "1.4.0"],
        },
        "ruc-reporting": {"installed": None, "candidate": "5.1.0", "versions": ["5.0.0", "5.1.0"]},
        "openssl": {
            "installed": "3.0.15-1~deb12u1",
            "candidate": "3.0.15-1~deb12u1",
            "versions": ["3.0.15-1~deb12u1"],
        },
    }
    packages, unmatched = mpv.build_report(["ruc-*", "ruc-gone"], records, cmp)
    assert sorted(packages) == ["ruc-account-api", "ruc-reporting"]
    assert packages["ruc-account-api"]["outdated"] is True
    assert packages["ruc-reporting"]["versions"] == ["5.1.0", "5.0.0"]
    assert unmatched == ["ruc-gone"]
    json.dumps(packages)  # the result must be plain JSON


# --- python3-apt access with a fake cache ---------------------------------------------------


def _version(text: str) -> SimpleNamespace:
    return SimpleNamespace(version=text)


class FakeCache:
    def __init__(self, packages: dict[str, SimpleNamespace]) -> None:
        self._packages = packages
        self.iterated = False

    def keys(self) -> list[str]:
        self.iterated = True
        return list(self._packages)

    def __contains__(self, name: object) -> bool:
        return name in self._packages

    def __getitem__(self, name: str) -> SimpleNamespace:
        return self._packages[name]


def _fake_cache() -> FakeCache:
    return FakeCache(
        {
            "ruc-account-api": SimpleNamespace(
                versions=[_version("1.5.0"), _version("1.4.0")],
                installed=_version("1.4.0"),
                candidate=_version("1.5.0"),
            ),
            "ruc-payment-gateway": SimpleNamespace(
                versions=[_version("2.4.0"), _version("2.3.1"), _version("2.3.0")],
                installed=None,
                candidate=_version("2.4.0"),
            ),
            "ruc-virtual": SimpleNamespace(versions=[], installed=None, candidate=None),
        }
    )


def test_read_apt_records_glob_skips_packages_without_versions() -> None:
    cache = _fake_cache()
    records = mpv.read_apt_records(cache, ["ruc-*"])
    assert cache.iterated is True
    assert sorted(records) == ["ruc-account-api", "ruc-payment-gateway"]
    assert records["ruc-account-api"] == {
        "installed": "1.4.0",
        "candidate": "1.5.0",
        "versions": ["1.5.0", "1.4.0"],
    }
    assert records["ruc-payment-gateway"]["installed"] is None


def test_read_apt_records_plain_names_do_not_walk_the_cache() -> None:
    cache = _fake_cache()
    records = mpv.read_apt_records(cache, ["ruc-account-api", "absent"])
    assert cache.iterated is False
    assert list(records) == ["ruc-account-api"]


def test_main_is_read_only_and_reports(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from ansible.module_utils.testing import patch_module_args

    monkeypatch.setattr(mpv, "require_apt", lambda module: None)
    monkeypatch.setattr(
        mpv, "apt", SimpleNamespace(Cache=lambda memonly: _fake_cache()), raising=False
    )
    monkeypatch.setattr(mpv, "apt_pkg", SimpleNamespace(version_compare=cmp), raising=False)
    with patch_module_args({"names": ["ruc-*"], "_ansible_check_mode": True}):
        with pytest.raises(SystemExit) as excinfo:
            mpv.main()
    assert excinfo.value.code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["changed"] is False
    assert result["unmatched"] == []
    assert result["packages"]["ruc-account-api"]["outdated"] is True
    assert result["packages"]["ruc-payment-gateway"] == {
        "installed": None,
        "candidate": "2.4.0",
        "versions": ["2.4.0", "2.3.1", "2.3.0"],
        "outdated": False,
    }
