"""Variables only tests may set (safety invariant 4, docs/SAFETY.md): the clock the
maintenance window is judged at (preflight_window_now) and the per-host lock file
(preflight_lock_path). Against anything but the lab inventory (milepost_environment: lab)
they would bypass the window and the lock, so the action plugins that use them refuse
them there (milepost_probe, milepost_window_check, milepost_host_lock)."""

from __future__ import annotations

from typing import Any

#: The one per-host lock file of every run outside the lab.
STANDARD_LOCK_PATH = "/var/lib/milepost/maintenance.lock"


def lab_only_problem(environment: Any, *, now: Any = None, lock_path: Any = None) -> str | None:
    """The one-line refusal when a test-only value is set outside the lab, else None."""
    if str(environment or "") == "lab":
        return None
    given = []
    if str(now or "").strip():
        given.append("preflight_window_now (the window's clock)")
    if lock_path and str(lock_path) != STANDARD_LOCK_PATH:
        given.append(f"preflight_lock_path (the lock file {lock_path})")
    if not given:
        return None
    return (
        f"{' and '.join(given)}: test-only variables are for tests against the lab inventory"
        f" only (milepost_environment is {environment or 'not set'}); remove them from the"
        " extra vars and the inventory"
    )
