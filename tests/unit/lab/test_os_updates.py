"""milepost.lab.os_updates: which real Debian versions the lab's behind hosts start on,
decided from what the archive offers (here: offers as the APT state reads them)."""

from milepost.archive.apt_state import Offer
from milepost.lab.os_updates import BEHIND_SOURCES, behind_versions, is_behind
from milepost.lab.topology import plan


def offer(package, version, suite="bookworm", source=None, **extra):
    return Offer(
        package=package,
        version=version,
        source=source or package,
        source_version=version,
        suite=suite,
        label="Debian-Security" if suite.endswith("security") else "Debian",
        architecture="amd64",
        **extra,
    )


def test_a_source_starts_on_the_oldest_version_offered_for_all_its_binaries():
    installed = {"libssl3": "3.0.20-1", "openssl": "3.0.20-1", "libexpat1": "2.5.0-1+deb12u5"}
    offers = {
        "libssl3": [
            offer("libssl3", "3.0.20-1", source="openssl"),
            offer("libssl3", "3.0.17-1", "bookworm-updates", source="openssl"),
            offer("libssl3", "3.0.15-1", "bookworm-security", source="openssl"),
            offer("libssl3", "3.0.22-1", "bookworm-security", source="openssl"),
        ],
        # 3.0.15 is not offered for openssl: the common oldest is 3.0.17.
        "openssl": [
            offer("openssl", "3.0.20-1"),
            offer("openssl", "3.0.17-1", "bookworm-updates"),
            offer("openssl", "3.0.22-1", "bookworm-security"),
        ],
        # Only newer versions: nothing to start behind on.
        "libexpat1": [offer("libexpat1", "2.5.0-1+deb12u5", "bookworm-security", source="expat")],
    }
    chosen = behind_versions(installed, offers)
    assert {p: o.version for p, o in chosen.items()} == {
        "libssl3": "3.0.17-1",
        "openssl": "3.0.17-1",
    }


def test_the_system_itself_is_never_started_behind():
    installed = {"libc6": "2.36-9+deb12u14", "perl-base": "5.36.0-7+deb12u4"}
    offers = {
        "libc6": [
            offer("libc6", "2.36-9+deb12u14", source="glibc", priority="required"),
            offer(
                "libc6", "2.36-9+deb12u7", "bookworm-security", source="glibc", priority="required"
            ),
        ],
        "perl-base": [
            offer("perl-base", "5.36.0-7+deb12u4", source="perl", essential=True),
            offer("perl-base", "5.36.0-7+deb12u3", source="perl", essential=True),
        ],
    }
    assert behind_versions(installed, offers) == {}


def test_only_sources_a_security_upload_fixed_since_start_behind_the_smallest_first():
    sizes = [9000, 200, 50, 700, 3000]
    installed = {f"lib{i}": "1.0-2" for i in range(len(sizes))} | {"tzdata": "2025b-1"}
    offers = {
        f"lib{i}": [
            offer(f"lib{i}", "1.0-2", "bookworm-security", installed_size=size),
            offer(f"lib{i}", "1.0-1", installed_size=size),
        ]
        for i, size in enumerate(sizes)
    }
    # Newer in bookworm-updates only: no security upload between, so never behind.
    offers["tzdata"] = [
        offer("tzdata", "2025b-1", "bookworm-updates", installed_size=1),
        offer("tzdata", "2024a-1", installed_size=1),
    ]
    chosen = behind_versions(installed, offers)
    smallest = sorted(range(len(sizes)), key=sizes.__getitem__)[:BEHIND_SOURCES]
    assert set(chosen) == {f"lib{i}" for i in smallest}
    assert all(o.version == "1.0-1" for o in chosen.values())

    # The biggest goes on past its security upload to a regular update: it comes first, so
    # that security-only patching and patching all differ.
    installed["lib0"] = "1.0-3"
    offers["lib0"].append(offer("lib0", "1.0-3", installed_size=9000))
    chosen = behind_versions(installed, offers)
    assert set(chosen) == {"lib0", *(f"lib{i}" for i in smallest[: BEHIND_SOURCES - 1])}


def test_every_second_host_starts_behind():
    hosts = plan(6)
    assert [h.name for h in hosts if is_behind(h, hosts)] == ["acct-01", "sftp-01", "pay-02"]
