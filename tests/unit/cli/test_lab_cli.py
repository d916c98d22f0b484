"""`scripts/lab` refuses bad input with one line and exit 2, before anything starts."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "scripts" / "lab"


def fake_path(tmp_path: Path) -> dict[str, str]:
    """A PATH whose docker/dockerd only record that they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "dockerd"):
        script = bin_dir / tool
        script.write_text(f"#!/bin/sh\necho {tool} >> {tmp_path}/called\nexit 1\n")
        script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}


@pytest.mark.parametrize(
    "args",
    [
        ["up", "--hosts", "0"],
        ["up", "--hosts", "51"],
        ["up", "--hosts", "abc"],
        ["up", "--hosts", ""],
        ["launch"],
        ["up", "--bogus"],
        ["status", "extra"],
    ],
)
def test_bad_input_is_one_line_exit_2_and_starts_nothing(tmp_path, args):
    proc = subprocess.run(
        [str(LAB), *args], capture_output=True, text=True, env=fake_path(tmp_path)
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "called").exists(), "docker was called for bad input"


def test_host_count_message_says_what_is_allowed(tmp_path):
    proc = subprocess.run(
        [str(LAB), "up", "--hosts", "51"], capture_output=True, text=True, env=fake_path(tmp_path)
    )
    assert "from 1 to 50" in proc.stderr


def test_missing_programs_are_named_with_their_debian_packages(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    proc = subprocess.run([str(LAB), "up"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    for package in ("docker.io", "openssh-client", "gnupg", "apt-utils"):
        assert package in proc.stderr


def test_install_deps_as_non_root_names_what_to_install(tmp_path):
    """Run as nobody with dpkg-query saying nothing is installed: a clear message, exit 2."""
    bin_dir = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's tmp_path is private to root
    bin_dir.chmod(0o755)
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "dpkg-query").chmod(0o755)
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "env",
            f"PATH={bin_dir}:/usr/bin:/bin",
            "sh",
            str(ROOT / "scripts" / "install-deps"),
        ],
        capture_output=True,
        text=True,
    )
    shutil.rmtree(bin_dir)
    assert proc.returncode == 2
    assert "docker.io" in proc.stderr and "debootstrap" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_virtualenv_is_explained(tmp_path):
    copy = tmp_path / "checkout" / "scripts"
    copy.mkdir(parents=True)
    (copy / "lab").write_text(LAB.read_text())
    (copy / "lab").chmod(0o755)
    proc = subprocess.run([str(copy / "lab"), "status"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "make venv" in proc.stderr
