"""The lab's RUC packages: built with dpkg-deb, inspected with dpkg-deb, their service run."""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from milepost.errors import UserError
from milepost.lab import ruc_packages
from milepost.lab.ruc_packages import CATALOG, build_all, build_deb, package_for_group

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")

PAYMENT = package_for_group("payment_gateway")


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("debs")
    paths = build_all(out)
    return {tuple(p.name.split("_")[:2]): p for p in paths}  # type: ignore[misc]


def deb(debs: dict[tuple[str, str], Path], name: str, version: str) -> Path:
    return debs[(name, version)]


def field(path: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(path), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def extract(path: Path, dest: Path) -> Path:
    subprocess.run(["dpkg-deb", "-x", str(path), str(dest)], check=True)
    return dest


def control(path: Path, dest: Path) -> Path:
    subprocess.run(["dpkg-deb", "-e", str(path), str(dest)], check=True)
    return dest


# --- the catalog -------------------------------------------------------------------------


def test_catalog_names_groups_and_versions() -> None:
    expected = {
        "ruc-account-api": ("account_management", "1.4.0", "1.5.0"),
        "ruc-mileage-ingest": ("mileage_ingest", "3.1.0", "3.2.0"),
        "ruc-payment-gateway": ("payment_gateway", "2.3.0", "2.4.0"),
        "ruc-sftp-bridge": ("sftp_exchange", "1.0.0", "1.1.0"),
        "ruc-reporting": ("reporting", "5.0.0", "5.1.0"),
    }
    got = {p.name: (p.group, p.initial.version, p.latest.version) for p in CATALOG}
    assert got == expected


def test_latest_skips_the_broken_payment_release() -> None:
    versions = [(r.version, r.broken) for r in PAYMENT.releases]
    assert versions == [("2.3.0", False), ("2.3.1", True), ("2.4.0", False)]
    assert PAYMENT.latest.version == "2.4.0"
    assert PAYMENT.latest.fixes == ("CVE-2026-31004",)


def test_every_fix_is_a_known_cve_and_fixed_once() -> None:
    fixes = [cve for p in CATALOG for r in p.releases for cve in r.fixes]
    assert sorted(fixes) == sorted(ruc_packages.CVE_SUMMARIES)
    assert len(fixes) == len(set(fixes))


def test_release_dates_are_rfc2822_and_increase() -> None:
    for pkg in CATALOG:
        stamps = []
        for release in pkg.releases:
            parsed = email.utils.parsedate_to_datetime(release.date)
            assert email.utils.format_datetime(parsed) == release.date  # weekday matches
            stamps.append(release.epoch)
        assert stamps == sorted(stamps)


def test_package_for_unknown_group_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no RUC package for inventory group 'nope'"):
        package_for_group("nope")


# --- the built packages ------------------------------------------------------------------


def test_build_all_names_every_release(debs: dict[tuple[str, str], Path]) -> None:
    names = sorted(p.name for p in debs.values())
    assert names == sorted(f"{p.name}_{r.version}_all.deb" for p in CATALOG for r in p.releases)
    assert not list(next(iter(debs.values())).parent.glob(".*"))  # no partial files left


def test_control_fields(debs: dict[tuple[str, str], Path]) -> None:
    for pkg in CATALOG:
        for release in pkg.releases:
            path = deb(debs, pkg.name, release.version)
            assert field(path, "Package") == pkg.name
            assert field(path, "Version") == release.version
            assert field(path, "Architecture") == "all"
            assert field(path, "Depends") == "python3"
            assert field(path, "Maintainer") == "Milepost Lab <lab@milepost.invalid>"
            assert field(path, "Section") == "net"
            assert field(path, "Priority") == "optional"


def test_contents_owned_by_root(debs: dict[tuple[str, str], Path]) -> None:
    name = "ruc-reporting"
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb(debs, name, "5.1.0"))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files = {line.split()[-1]: line.split()[:2] for line in listing.splitlines()}
    for path, mode in {
        f"./usr/bin/{name}": "-rwxr-xr-x",
        f"./etc/ruc/{name}.conf": "-rw-r--r--",
        f"./etc/init.d/{name}": "-rwxr-xr-x",
        f"./lib/systemd/system/{name}.service": "-rw-r--r--",
        f"./usr/share/doc/{name}/changelog.Debian.gz": "-rw-r--r--",
        f"./usr/share/doc/{name}/copyright": "-rw-r--r--",
    }.items():
        assert files[path] == [mode, "root/root"], path


def test_conffiles_and_md5sums(debs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    name = "ruc-account-api"
    meta = control(deb(debs, name, "1.5.0"), tmp_path / "DEBIAN")
    conffiles = (meta / "conffiles").read_text().splitlines()
    assert conffiles == [f"/etc/ruc/{name}.conf", f"/etc/init.d/{name}"]
    root = extract(deb(debs, name, "1.5.0"), tmp_path / "root")
    for line in (meta / "md5sums").read_text().splitlines():
        digest, path = line.split("  ", 1)
        assert hashlib.md5((root / path).read_bytes()).hexdigest() == digest
        assert f"/{path}" not in conffiles


def test_config_defaults_to_a_unix_socket(
    debs: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    name = "ruc-sftp-bridge"
    root = extract(deb(debs, name, "1.0.0"), tmp_path)
    conf = (root / f"etc/ruc/{name}.conf").read_text()
    assert f"listen = unix:/run/ruc/{name}.sock" in conf
    assert f"log_file = /var/log/ruc/{name}.log" in conf
    assert "[vendor]" in conf
    assert "1.0.0" not in conf  # same conffile in every release: upgrades never prompt


def changelog_of(path: Path, tmp_path: Path) -> str:
    root = extract(path, tmp_path / path.stem)
    name = path.name.split("_")[0]
    return gzip.decompress(
        (root / f"usr/share/doc/{name}/changelog.Debian.gz").read_bytes()
    ).decode()


def test_changelog_names_fixed_cves(debs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    latest = changelog_of(deb(debs, PAYMENT.name, "2.4.0"), tmp_path)
    heads = [line for line in latest.splitlines() if line.startswith(PAYMENT.name)]
    assert heads == [
        "ruc-payment-gateway (2.4.0) bookworm; urgency=high",
        "ruc-payment-gateway (2.3.1) bookworm; urgency=medium",
        "ruc-payment-gateway (2.3.0) bookworm; urgency=medium",
    ]
    assert "  * Security: fix CVE-2026-31004 (" in latest
    assert " -- Milepost Lab <lab@milepost.invalid>  Tue, 20 Oct 2026 09:00:00 +0000" in latest
    initial = changelog_of(deb(debs, PAYMENT.name, "2.3.0"), tmp_path)
    assert "CVE-" not in initial
    mileage = changelog_of(deb(debs, "ruc-mileage-ingest", "3.2.0"), tmp_path)
    assert "fix CVE-2026-31002" in mileage and "fix CVE-2026-31003" in mileage


@pytest.mark.skipif(shutil.which("dpkg-parsechangelog") is None, reason="needs dpkg-dev")
def test_changelog_parses_with_dpkg(debs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    changelog = tmp_path / "changelog"
    changelog.write_text(changelog_of(deb(debs, "ruc-account-api", "1.5.0"), tmp_path))
    out = subprocess.run(
        ["dpkg-parsechangelog", "-l", str(changelog), "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Version: 1.5.0" in out
    assert "CVE-2026-31001" in out


def test_builds_are_reproducible(tmp_path: Path) -> None:
    release = PAYMENT.latest
    first = build_deb(PAYMENT, release, tmp_path / "a").read_bytes()
    second = build_deb(PAYMENT, release, tmp_path / "b").read_bytes()
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()


def test_unknown_release_is_a_user_error(tmp_path: Path) -> None:
    other = CATALOG[0].releases[0]
    with pytest.raises(UserError, match="has no release"):
        build_deb(PAYMENT, other, tmp_path)


def test_missing_dpkg_deb_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="dpkg-deb not found: install the Debian package dpkg"):
        build_deb(PAYMENT, PAYMENT.initial, tmp_path)


# --- maintainer scripts ------------------------------------------------------------------


def test_broken_postinst_fails_with_one_line(
    debs: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    meta = control(deb(debs, PAYMENT.name, "2.3.1"), tmp_path)
    done = subprocess.run(
        ["sh", str(meta / "postinst"), "configure"], capture_output=True, text=True, timeout=10
    )
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ruc-payment-gateway 2.3.1: postinst:")


def test_maintainer_and_init_scripts_are_valid_sh(
    debs: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    for (name, version), path in debs.items():
        meta = control(path, tmp_path / f"{name}-{version}-DEBIAN")
        root = extract(path, tmp_path / f"{name}-{version}")
        scripts = [meta / s for s in ("postinst", "prerm", "postrm")]
        for script in [*scripts, root / f"etc/init.d/{name}"]:
            subprocess.run(["sh", "-n", str(script)], check=True)
            assert os.access(script, os.X_OK), script
        broken = "BROKEN_REASON=''" not in (meta / "postinst").read_text()
        assert broken == (name == PAYMENT.name and version == "2.3.1")


def test_postinst_restarts_the_service_without_systemd(
    debs: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    meta = control(deb(debs, PAYMENT.name, "2.4.0"), tmp_path)
    postinst = (meta / "postinst").read_text()
    assert 'update-rc.d "$NAME" defaults' in postinst
    assert "[ -d /run/systemd/system ]" in postinst
    assert 'invoke-rc.d "$NAME" "$action"' in postinst
    assert '"/etc/init.d/$NAME" "$action"' in postinst
    prerm = (meta / "prerm").read_text()
    assert "remove|upgrade|deconfigure)" in prerm and "ruc_service stop" in prerm
    postrm = (meta / "postrm").read_text()
    assert 'update-rc.d "$NAME" remove' in postrm


def test_systemd_unit(debs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    name = "ruc-account-api"
    root = extract(deb(debs, name, "1.4.0"), tmp_path)
    unit = (root / f"lib/systemd/system/{name}.service").read_text()
    assert f"ExecStart=/usr/bin/{name} run" in unit
    assert "RuntimeDirectory=ruc" in unit
    assert "WantedBy=multi-user.target" in unit


# --- the service itself ------------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: unix socket paths are limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ruc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_config(path: Path, listen: str, log_file: Path) -> Path:
    path.write_text(
        "[service]\n"
        f"listen = {listen}\n"
        f"log_file = {log_file}\n"
        "[vendor]\n"
        "endpoint = https://vendor.example.invalid/ruc\n"
    )
    return path


def service(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(program), *args], capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs /usr/bin/python3")
def test_service_runs_and_answers_health(
    debs: dict[tuple[str, str], Path], short_dir: Path
) -> None:
    name = PAYMENT.name
    root = extract(deb(debs, name, "2.4.0"), short_dir / "root")
    program = root / "usr/bin" / name
    sock = short_dir / "run" / f"{name}.sock"
    config = write_config(short_dir / "svc.conf", f"unix:{sock}", short_dir / "log" / "svc.log")

    assert service(program, "--version").stdout.strip() == f"{name} 2.4.0"
    checked = service(program, "check-config", "--config", str(config))
    assert checked.returncode == 0, checked.stderr
    down = service(program, "health", "--config", str(config))
    assert down.returncode == 1
    assert len(down.stderr.splitlines()) == 1 and "unhealthy" in down.stderr

    daemon = subprocess.Popen(
        [str(program), "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = service(program, "health", "--wait", "10", "--config", str(config))
        assert health.returncode == 0, health.stderr
        body = json.loads(health.stdout)
        assert body["service"] == name
        assert body["version"] == "2.4.0"
        assert body["status"] == "ok"
        assert body["pid"] == daemon.pid
        assert stat.S_IMODE(sock.stat().st_mode) == 0o666  # health works for non-root users
        second = service(program, "run", "--config", str(config))
        assert second.returncode == 1
        assert "already listening" in second.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=10)
    assert daemon.returncode == 0, daemon.stderr.read() if daemon.stderr else ""
    assert not sock.exists()
    log = (short_dir / "log" / "svc.log").read_text()
    assert "listening on unix:" in log and "GET /health" in log and "stopped" in log


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs /usr/bin/python3")
def test_health_fails_when_an_old_version_is_still_running(
    debs: dict[tuple[str, str], Path], short_dir: Path
) -> None:
    name = "ruc-reporting"
    old = extract(deb(debs, name, "5.0.0"), short_dir / "old") / "usr/bin" / name
    new = extract(deb(debs, name, "5.1.0"), short_dir / "new") / "usr/bin" / name
    config = write_config(short_dir / "svc.conf", f"unix:{short_dir}/s.sock", short_dir / "l.log")
    daemon = subprocess.Popen([str(old), "run", "--config", str(config)])
    try:
        assert service(old, "health", "--wait", "10", "--config", str(config)).returncode == 0
        stale = service(new, "health", "--config", str(config))
        assert stale.returncode == 1
        assert "running version 5.0.0 but 5.1.0 is installed" in stale.stderr
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs /usr/bin/python3")
@pytest.mark.parametrize(
    ("service_lines", "message"),
    [
        ("listen = tcp:127.0.0.1:99999\nlog_file = /tmp/x.log\n", "TCP port must be 1-65535"),
        ("listen = unix:relative.sock\nlog_file = /tmp/x.log\n", "must be absolute"),
        ("listen = http://127.0.0.1\nlog_file = /tmp/x.log\n", "expected unix:/PATH"),
        ("log_file = /tmp/x.log\n", "missing listen"),
        ("listen = unix:/run/x.sock\nlog_file = /tmp/x.log\nport = 1\n", "unknown key 'port'"),
        ("garbage without equals\n", "syntax error"),
    ],
)
def test_check_config_rejects_bad_config(
    debs: dict[tuple[str, str], Path], tmp_path: Path, service_lines: str, message: str
) -> None:
    name = "ruc-account-api"
    program = extract(deb(debs, name, "1.5.0"), tmp_path / "root") / "usr/bin" / name
    config = tmp_path / "bad.conf"
    config.write_text(f"[service]\n{service_lines}[vendor]\nendpoint = https://v.invalid/\n")
    done = service(program, "check-config", "--config", str(config))
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"{name}: bad config {config}: ")
    assert message in done.stderr


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs /usr/bin/python3")
def test_service_listens_on_tcp(debs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    name = "ruc-mileage-ingest"
    program = extract(deb(debs, name, "3.2.0"), tmp_path / "root") / "usr/bin" / name
    config = write_config(tmp_path / "svc.conf", "tcp:127.0.0.1:0", tmp_path / "svc.log")
    done = service(program, "check-config", "--config", str(config))
    assert done.returncode == 1 and "TCP port must be 1-65535" in done.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_config(config, f"tcp:127.0.0.1:{port}", tmp_path / "svc.log")
    daemon = subprocess.Popen([str(program), "run", "--config", str(config)])
    try:
        health = service(program, "health", "--wait", "10", "--config", str(config))
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout)["version"] == "3.2.0"
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.mark.skipif(shutil.which("start-stop-daemon") is None, reason="needs start-stop-daemon")
def test_init_script_starts_reports_and_stops(
    debs: dict[tuple[str, str], Path], short_dir: Path
) -> None:
    """The packaged init script, with its paths moved under a temp dir."""
    name = "ruc-sftp-bridge"
    root = extract(deb(debs, name, "1.1.0"), short_dir / "root")
    paths = {
        "DAEMON": str(root / "usr/bin" / name),
        "CONFIG": str(short_dir / "svc.conf"),
        "RUNDIR": str(short_dir / "run"),
        "LOGDIR": str(short_dir / "log"),
    }
    script = short_dir / "init"
    lines = []
    for line in (root / f"etc/init.d/{name}").read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={paths[key]}" if key in paths else line)
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    write_config(
        short_dir / "svc.conf", f"unix:{short_dir}/run/{name}.sock", short_dir / "log/svc.log"
    )

    def init(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), action], capture_output=True, text=True, timeout=60, check=False
        )

    assert init("status").returncode == 3
    try:
        started = init("start")
        assert started.returncode == 0, started.stderr
        assert init("status").returncode == 0
        pid = int((short_dir / "run" / f"{name}.pid").read_text())
        restarted = init("restart")
        assert restarted.returncode == 0, restarted.stderr
        assert int((short_dir / "run" / f"{name}.pid").read_text()) != pid
    finally:
        stopped = init("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert init("status").returncode == 3
    deadline = time.monotonic() + 5
    while (short_dir / "run" / f"{name}.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (short_dir / "run" / f"{name}.sock").exists()

    (short_dir / "svc.conf").write_text("[service]\nlisten = nowhere\n")
    failed = init("start")
    assert failed.returncode == 1
    assert "bad config" in failed.stderr
