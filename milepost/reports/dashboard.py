"""The status dashboard: one static, self-contained HTML page (inline CSS and SVG, no
JavaScript, nothing fetched) and status.json with the same data, written atomically.

The template is templates/dashboard.html.j2 next to this module, loaded by path (works from
a checkout, an editable install and a wheel that ships the templates directory). Jinja2
escapes every value (autoescape on), and every string of the model has been scrubbed of
secrets before it reaches the template or the JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.exc import SQLAlchemyError

from milepost.errors import MilepostError, UserError
from milepost.input_checks import shown
from milepost.inventory.reading import source_problem
from milepost.ledger.database import problem
from milepost.ledger.files import write_atomic
from milepost.ledger.housekeeping import open_ledger
from milepost.oversight.catch_rate import duration_text
from milepost.reports.charts import BarChart, percent_chart
from milepost.reports.plain import month_label
from milepost.reports.status import DEFAULT_MONTHS, build_status, check_months, status_data

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger

__all__ = ["INDEX", "STATUS_JSON", "TEMPLATE", "render_dashboard", "write_dashboard"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "dashboard.html.j2"
INDEX = "index.html"
STATUS_JSON = "status.json"


def template_environment() -> Environment:
    """The Jinja2 environment of every page Milepost writes (templates/ beside this module):
    every value escaped, undefined names an error."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"),
            default_for_string=True,
            default=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def charts(data: Mapping[str, Any]) -> list[BarChart]:
    """The dashboard's charts, from the model's monthly figures."""
    months = data["months"]
    return [
        percent_chart(
            "chart-patches",
            title=f"Security patches applied on time, last {months} months",
            points=data["patch_compliance"],
            measure="of patches applied by their deadline",
            good="on time",
            total="due",
        ),
        percent_chart(
            "chart-interfaces",
            title=f"Vendor interfaces up, last {months} months",
            points=data["availability"],
            measure="of vendor interface checks that found the interface up",
            good="checks up",
            total="checks",
        ),
        percent_chart(
            "chart-qc-catch",
            title=f"Problems our own checks found first, last {months} months",
            points=qc_catch_points(data.get("qc_catch")),
            measure="of problems found by quality checks or monitoring before anyone reported them",
            good="found first",
            total="problems",
            more=(
                ("Reported by people", "reported"),
                ("Mean time to detect", "detect"),
                ("Mean time to correct", "correct"),
                ("Same cause as before", "recurring"),
            ),
        ),
    ]


def qc_catch_points(rate: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The catch-rate chart's points, one per month of the model's ``qc_catch``."""
    return [
        {
            "label": month_label(m["month"]),
            "good": m["caught_by_qc"] + m["caught_by_monitoring"],
            "total": m["caught_by_qc"] + m["caught_by_monitoring"] + m["reported"],
            "percent": m["caught_percent"],
            "reported": m["reported"],
            "detect": duration_text(m["detect_hours"]),
            "correct": duration_text(m["correct_hours"]),
            "recurring": m["recurring"],
        }
        for m in (rate or {}).get("months", [])
    ]


def render_dashboard(data: Mapping[str, Any]) -> str:
    """The page for a model from status_data()."""
    template = template_environment().get_template(TEMPLATE)
    return template.render(status=data, charts=charts(data))


def _is_file(out_dir: Path) -> bool:
    """Whether --out names something that is not a directory; UserError (one line) if it
    cannot be a path at all (a NUL, a name too long)."""
    try:
        return out_dir.exists() and not out_dir.is_dir()
    except (OSError, ValueError) as bad:
        why = getattr(bad, "strerror", None) or "not a usable path"
        raise UserError(f"--out {shown(str(out_dir))}: {why}; give a directory") from None


def _out_dir(out_dir: Path) -> Path:
    if _is_file(out_dir):
        raise UserError(
            f"--out {shown(str(out_dir))} is a file: give a directory (index.html and"
            " status.json go in it)"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as bad:
        raise UserError(
            f"--out {shown(str(out_dir))}: cannot create the directory ({bad.strerror})"
        ) from None
    return out_dir


def write_dashboard(
    out_dir: Path,
    sources: Sequence[Path] | None = None,
    months: int = DEFAULT_MONTHS,
    *,
    ledger: Ledger | None = None,
    now: datetime | None = None,
) -> Path:
    """Write ``out_dir``/index.html and ``out_dir``/status.json (each atomically: a temp
    file in ``out_dir``, then a rename) for the inventory at ``sources`` (default: the one
    ansible.cfg names) and ``ledger`` (default: the one MILEPOST_LEDGER_URL names, opened
    as every ledger command opens it: runs whose writer is gone are closed first). Returns
    the path of index.html. UserError (one line) for bad input."""

    check_months(months)
    if _is_file(out_dir):
        _out_dir(out_dir)  # refuse a file before any slow work
    if sources:
        for source in sources:
            unusable = source_problem(source)
            if unusable:
                raise UserError(unusable)
    opened = ledger is None
    book = open_ledger() if ledger is None else ledger
    try:
        status = build_status(book, sources, months, now)
    except SQLAlchemyError as bad:
        raise MilepostError(f"cannot read the ledger {book.masked_url}: {problem(bad)}") from None
    finally:
        if opened:
            book.close()
    data = status_data(status)
    page = render_dashboard(data)
    directory = _out_dir(out_dir)
    index = directory / INDEX
    write_atomic(directory / STATUS_JSON, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    write_atomic(index, page)
    return index
