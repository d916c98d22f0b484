"""Docker Engine for the lab: started with its bridge disabled and iptables off."""

import os
import subprocess
import time
from pathlib import Path

from milepost.errors import MilepostError, UserError
from milepost.lab.commands import require

DOCKERD_ARGS = ["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false"]


def is_running() -> bool:
    proc = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return proc.returncode == 0


def ensure_running(log_file: Path, wait_seconds: float = 60.0) -> None:
    """Start dockerd (no bridge, no iptables) unless a Docker Engine already answers."""
    require("docker")
    if is_running():
        return
    require("dockerd")
    if os.geteuid() != 0:
        raise UserError("Docker Engine is not running and starting it needs root: run as root")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        subprocess.Popen(  # noqa: S603 - fixed argument list
            DOCKERD_ARGS,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if is_running():
            return
        time.sleep(0.5)
    raise MilepostError(f"dockerd did not start within {wait_seconds:.0f}s: see {log_file}")
