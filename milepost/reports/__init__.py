"""Reports for people who do not run the playbooks: the status dashboard (a static page
and status.json), read from the ledger and the inventory."""

from milepost.reports.dashboard import render_dashboard, write_dashboard
from milepost.reports.status import DashboardStatus, build_status, status_data

__all__ = ["DashboardStatus", "build_status", "render_dashboard", "status_data", "write_dashboard"]
