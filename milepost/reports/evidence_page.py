"""The evidence page (evidence.html of a bundle written by `milepost evidence`): one static,
self-contained HTML page rendered from the bundle's evidence.json alone, with the
dashboard's template environment (milepost.reports.dashboard: every value escaped) and its
palette. The same data always gives the same page, so a verifier can render it again and
compare."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from milepost.reports.dashboard import template_environment
from milepost.reports.plain import plain_date, plain_time

__all__ = ["TEMPLATE", "render_evidence"]

TEMPLATE = "evidence.html.j2"


def _plain(value: Any, words: Any) -> str:
    try:
        return str(words(str(value)))
    except (ValueError, TypeError, OverflowError):
        return str(value)


def render_evidence(data: Mapping[str, Any]) -> str:
    """The page for the data of an evidence.json."""
    environment = template_environment()
    environment.filters["plain"] = lambda value: _plain(value, plain_time)
    environment.filters["plain_day"] = lambda value: _plain(value, plain_date)
    return environment.get_template(TEMPLATE).render(e=data)
