"""plugins/modules/milepost_apt_source.py: the source file as deb822_repository writes it,
one-line refusals of bad input, and when the APT cache is refreshed."""

from __future__ import annotations

import os
from pathlib import Path

from ansible.module_utils.milepost_packages import cache_age, cache_refreshed_at, mark_refreshed
from conftest import load_module

source = load_module("milepost_apt_source")
KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQENBF\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n"
PARAMS = {
    "name": "milepost-ruc",
    "uris": ["http://127.0.0.1:8780/"],
    "suites": ["bookworm"],
    "components": ["main"],
    "signing_key": KEY,
}


def test_render_writes_the_file_deb822_repository_writes() -> None:
    assert source.render(PARAMS) == (
        "Components: main\n"
        "Enabled: yes\n"
        "X-Repolib-Name: milepost-ruc\n"
        "Signed-By:\n"
        "    -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
        "    .\n"
        "    mQENBF\n"
        "    =abcd\n"
        "    -----END PGP PUBLIC KEY BLOCK-----\n"
        "Suites: bookworm\n"
        "Types: deb\n"
        "URIs: http://127.0.0.1:8780/\n"
    )
    assert source.slug("Milepost RUC_main") == "milepost-ruc-main"


def test_problems_names_every_bad_argument() -> None:
    assert source.problems(PARAMS) == []
    bad = {
        **PARAMS,
        "uris": ["127.0.0.1:8780", "http://ok/"],
        "suites": ["bookworm; rm -rf /"],
        "components": [],
        "signing_key": "https://example.gov/key.asc",
    }
    found = source.problems(bad)
    assert found == [
        "uri '127.0.0.1:8780' is not a URI",
        "suites entry 'bookworm; rm -rf /' is not a plain word",
        "components must not be empty",
        "signing_key must hold the ASCII-armored public key text"
        " (not a URL, a path or a fingerprint)",
    ]


def test_cache_age_and_when_the_cache_is_refreshed(tmp_path: Path) -> None:
    stamp = tmp_path / "stamp"
    lists = tmp_path / "lists"
    assert cache_age(1000, str(stamp), str(lists)) is None
    lists.mkdir()
    os.utime(lists, (400, 400))
    assert cache_age(1000, str(stamp), str(lists)) == 600
    stamp.write_text("")
    os.utime(stamp, (900, 900))
    assert cache_age(1000, str(stamp), str(lists)) == 100
    assert source.needs_refresh(False, 100, 3600) is False
    assert source.needs_refresh(True, 100, 3600) is True
    assert source.needs_refresh(False, 4000, 3600) is True
    assert source.needs_refresh(False, None, 3600) is True


def test_a_source_whose_package_lists_are_missing_is_refreshed(tmp_path: Path) -> None:
    """A run stopped between writing the source and apt-get update, or lists removed: the
    next run finds the source unchanged and the cache young, and still refreshes, because
    a package list of this source is missing. Lists of other sources do not count; a list
    kept compressed does. A refresh that changed no list still counts (mark_refreshed)."""
    lists = tmp_path / "lists"
    lists.mkdir()
    dest = "/etc/apt/sources.list.d/milepost-ruc.sources"
    ours = lists / "127.0.0.1:8780_dists_bookworm_main_binary-amd64_Packages"
    other = lists / "deb.debian.org_dists_bookworm_main_binary-amd64_Packages"
    text = (
        f"{dest}:1\t{ours}\n"
        f"/etc/apt/sources.list.d/debian.sources:1\t{other}\n"
        f"{dest}:2\t{ours}-security\n"
    )
    assert source.missing_lists(text, dest) == [str(ours), f"{ours}-security"]
    ours.write_text("")
    Path(f"{ours}-security.lz4").write_text("")
    assert source.missing_lists(text, dest) == []
    assert source.missing_lists(f"{dest}:1\t{tmp_path}/absent/x_Packages\n", dest) == [
        f"{tmp_path}/absent/x_Packages"
    ]
    assert source.needs_refresh(False, 10, 3600, True) is True
    assert source.needs_refresh(False, 10, 3600, False) is False
    os.utime(lists, (400, 400))
    assert cache_refreshed_at(str(tmp_path / "stamp"), str(lists)) == 400
    mark_refreshed(str(tmp_path / "stamp"), str(lists))
    assert cache_refreshed_at(str(tmp_path / "stamp"), str(lists)) > 400
