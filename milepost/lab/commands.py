"""Running the external programs the lab needs, with errors a person can act on."""

import shutil
import subprocess
from collections.abc import Sequence

from milepost.errors import MilepostError, UserError

# program -> Debian package that provides it
PROVIDERS = {
    "docker": "docker.io",
    "dockerd": "docker.io",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "gpg": "gnupg",
    "dpkg-deb": "dpkg",
    "apt-ftparchive": "apt-utils",
}


def require(*programs: str) -> None:
    """Fail with one line naming the Debian packages to install if a program is missing."""
    missing = sorted({PROVIDERS.get(p, p) for p in programs if shutil.which(p) is None})
    if missing:
        raise UserError(
            "missing programs: install them with `apt-get install " + " ".join(missing) + "`"
            " (or run `make deps` as root)"
        )


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a program, capturing text output; on failure raise MilepostError with the last
    line of its stderr."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        require(argv[0])
        raise
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit code {proc.returncode}"
        raise MilepostError(f"{' '.join(argv[:3])} failed: {last}")
    return proc
