"""The dashboard in a real browser, for tests: Debian's chromium, headless, dumps the DOM it
rendered or takes a screenshot; DashboardDom reads the rows the page marks with data-*
attributes, the heading counts and the charts' titles."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
#: Chromium starting on a busy 2-core machine: generous, never an assertion.
CHROMIUM_TIMEOUT = 120


class DashboardDom(HTMLParser):
    """Rows with data-* attributes and their text; h1/h2 counts; svg titles."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, dict] = {}
        self.open_rows: list[dict] = []
        self.tags: dict[str, int] = {}
        self.svgs: list[dict] = []
        self.in_svg_title = False
        self.attrs_seen: list[dict] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attrs_seen.append({"tag": tag, **found})
        if tag == "tr":
            for key in (
                "data-system",
                "data-interface",
                "data-glitch",
                "data-vendor",
                "data-update",
                "data-stale-check",
                "data-flaky-check",
                "data-recurring",
                "data-action",
            ):
                if key in found:
                    row = {"attrs": found, "text": ""}
                    self.rows[f"{key}={found[key]}"] = row
                    self.open_rows.append(row)
                    return
            self.open_rows.append({"attrs": found, "text": ""})
        if tag == "svg":
            self.svgs.append({"attrs": found, "title": ""})
        if tag == "title" and self.svgs:
            self.in_svg_title = True

    def handle_endtag(self, tag):
        if tag == "tr" and self.open_rows:
            self.open_rows.pop()
        if tag == "title":
            self.in_svg_title = False

    def handle_data(self, data):
        for row in self.open_rows:
            row["text"] += data
        if self.in_svg_title and self.svgs and not self.svgs[-1]["title"]:
            self.svgs[-1]["title"] = data.strip()


def words(text: str) -> str:
    return " ".join(text.split())


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make deps` (it installs Debian's chromium)")
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    done = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done
