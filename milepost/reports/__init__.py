"""Reports for people who do not run the playbooks: the status dashboard (a static page
and status.json), read from the ledger and the inventory."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milepost.reports.dashboard import render_dashboard, write_dashboard
    from milepost.reports.status import build_status, status_data
    from milepost.reports.status_model import DashboardStatus

# Loaded when first used: importing any milepost.reports.<module> runs this file first, and
# the dashboard's Jinja2 and the status model's SQLAlchemy would otherwise load with it
# (`milepost report dashboard --help` needs neither).
_HOMES = {
    "render_dashboard": "dashboard",
    "write_dashboard": "dashboard",
    "DashboardStatus": "status_model",
    "build_status": "status",
    "status_data": "status",
}

__all__ = ["DashboardStatus", "build_status", "render_dashboard", "status_data", "write_dashboard"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
