"""Configuration drift findings, derived from the ledger's drift_check records.

The baseline role runs in check mode; for each host the callback writes one drift_check
record (run_id, host) with body:

    {"mode": "check" | "converge", "group": ..., "vendor": ..., "resources": 23,
     "drifted": [{"resource": "file:/etc/ruc/x.conf", "expected": ..., "actual": ...,
                  "diff": "unified diff, already redacted, or empty"}]}

``check`` records detect (or verify); ``converge`` records list what a remediation
corrected. A check record always covers the whole baseline of its host.

Records are append-only, so findings are computed here, never stored. A finding is one
episode of drift of (host, resource):

- a check record listing the resource while no episode is open opens one; later check
  records listing it update last_seen, expected, actual, diff. Its id is "D" + the opening
  record's seq ("D1234"); a record listing several resources gives "D1234.1", "D1234.2",
  ... by their place in its list, so ids stay unique and never change;
- a check record of the host not listing it resolves the episode: "remediated" if a
  converge record of the same run and host listed the resource, else "resolved";
- a converge record listing it notes corrected_by_run on the open episode;
- recurring: an earlier episode of the same (host, resource) was resolved;
- class: "planned" if an open change (milepost.drift.changes) covered the host and resource at
  the episode's last_seen, else "unauthorised".
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.drift.changes import covering, load_changes
from milepost.errors import UserError
from milepost.ledger.bodies import usable
from milepost.ledger.chain import format_time, utc_now
from milepost.ledger.names import DRIFT_MODES as MODES
from milepost.ledger.schema import records as T

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger

DRIFT_KIND = "drift_check"
GLITCH_KIND = "glitch"
PLANNED = "planned"
UNAUTHORISED = "unauthorised"
COUNTED = ("open", PLANNED, UNAUTHORISED, "recurring")
#: Hosts and resources named in full in a glitch title; the rest are counted.
TITLE_NAMED = 3


@dataclass(frozen=True)
class Finding:
    """One episode of drift of a host's resource. Times are the ledger's UTC text."""

    id: str
    host: str
    group: str | None
    vendor: str | None
    resource: str
    kind: str
    first_seen: str
    last_seen: str
    state: str
    resolved_at: str | None
    resolved_by_run: str | None
    resolution: str | None
    corrected_by_run: str | None
    recurring: bool
    cls: str
    change_id: str | None
    expected: str | None
    actual: str | None
    diff: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Episode:
    id: str
    host: str
    resource: str
    first_seen: str
    last_seen: str
    group: str | None
    vendor: str | None
    expected: str | None
    actual: str | None
    diff: str | None
    recurring: bool
    corrected_by_run: str | None = None
    resolved_at: str | None = None
    resolved_by_run: str | None = None
    resolution: str | None = None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _drifted(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """resource -> its entry, for the well-formed entries of body["drifted"]."""
    entries = body.get("drifted")
    found: dict[str, dict[str, Any]] = {}
    if not isinstance(entries, list):
        return found
    for entry in entries:
        if isinstance(entry, str) and entry:
            found[entry] = {}
        elif isinstance(entry, dict) and isinstance(entry.get("resource"), str):
            found[entry["resource"]] = entry
    return found


def _since_text(since: datetime | str | None) -> str | None:
    if since is None:
        return None
    try:
        return format_time(since)
    except (TypeError, ValueError, AttributeError):
        raise UserError(f"since {since!r} is not a date or ISO-8601 time") from None


def findings(ledger: Ledger, since: datetime | str | None = None) -> list[Finding]:
    """Every finding, oldest first (by the record that opened it).

    ``since``: read only drift_check records recorded at or after it (an episode already
    open then starts at its first record after ``since``).
    """
    since_at = _since_text(since)
    query = select(T.c.seq, T.c.run_id, T.c.host, T.c.recorded_at, T.c.body).where(
        T.c.kind == DRIFT_KIND
    )
    if since_at is not None:
        query = query.where(T.c.recorded_at >= since_at)
    with ledger.read_transaction() as conn:
        rows = [
            (int(seq), run_id, host, recorded_at, checked)
            for seq, run_id, host, recorded_at, body in conn.execute(query.order_by(T.c.seq))
            if (checked := usable(int(seq), DRIFT_KIND, body)) is not None
        ]
        known_changes = load_changes(conn)

    # (run_id, host) -> resources a converge record of that run corrected on that host.
    corrected: dict[tuple[str | None, str], set[str]] = {}
    for _seq, run_id, host, _at, body in rows:
        if isinstance(body, dict) and body.get("mode") == "converge" and host:
            corrected.setdefault((run_id, host), set()).update(_drifted(body))

    open_now: dict[tuple[str, str], _Episode] = {}
    by_host: dict[str, set[str]] = {}
    seen_before: set[tuple[str, str]] = set()
    episodes: list[_Episode] = []
    for seq, run_id, host, recorded_at, body in rows:
        if not host or not isinstance(body, dict) or body.get("mode") not in MODES:
            continue
        drifted = _drifted(body)
        if body.get("mode") == "converge":
            for resource in drifted:
                episode = open_now.get((host, resource))
                if episode is not None:
                    episode.corrected_by_run = run_id
            continue
        group, vendor = _text(body.get("group")), _text(body.get("vendor"))
        for position, (resource, entry) in enumerate(drifted.items(), start=1):
            key = (host, resource)
            episode = open_now.get(key)
            if episode is None:
                episode = _Episode(
                    id=f"D{seq}" if len(drifted) == 1 else f"D{seq}.{position}",
                    host=host,
                    resource=resource,
                    first_seen=recorded_at,
                    last_seen=recorded_at,
                    group=group,
                    vendor=vendor,
                    expected=None,
                    actual=None,
                    diff=None,
                    recurring=key in seen_before,
                )
                open_now[key] = episode
                by_host.setdefault(host, set()).add(resource)
                episodes.append(episode)
            episode.last_seen = recorded_at
            episode.group, episode.vendor = group or episode.group, vendor or episode.vendor
            episode.expected = _text(entry.get("expected"))
            episode.actual = _text(entry.get("actual"))
            episode.diff = _text(entry.get("diff"))
        for resource in sorted(by_host.get(host, set()) - set(drifted)):
            episode = open_now.pop((host, resource))
            by_host[host].discard(resource)
            episode.resolved_at = recorded_at
            episode.resolved_by_run = run_id
            remediated = resource in corrected.get((run_id, host), set())
            episode.resolution = "remediated" if remediated else "resolved"
            if remediated:
                episode.corrected_by_run = run_id
            seen_before.add((host, resource))

    out = []
    for episode in episodes:
        change = covering(known_changes, episode.host, episode.resource, episode.last_seen)
        out.append(
            Finding(
                id=episode.id,
                host=episode.host,
                group=episode.group,
                vendor=episode.vendor,
                resource=episode.resource,
                kind=episode.resource.partition(":")[0] if ":" in episode.resource else "",
                first_seen=episode.first_seen,
                last_seen=episode.last_seen,
                state="resolved" if episode.resolved_at is not None else "open",
                resolved_at=episode.resolved_at,
                resolved_by_run=episode.resolved_by_run,
                resolution=episode.resolution,
                corrected_by_run=episode.corrected_by_run,
                recurring=episode.recurring,
                cls=PLANNED if change is not None else UNAUTHORISED,
                change_id=change.change_id if change is not None else None,
                expected=episode.expected,
                actual=episode.actual,
                diff=episode.diff,
            )
        )
    return out


def open_findings(ledger: Ledger, hosts: Collection[str] | None = None) -> list[Finding]:
    """The open findings, oldest first; only those of ``hosts`` if given."""
    return [f for f in findings(ledger) if f.state == "open" and (hosts is None or f.host in hosts)]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _counts(selected: Iterable[Finding], key: str) -> dict[str, dict[str, int]]:
    """Per group (or vendor): open findings, and of them planned, unauthorised, recurring.
    A group whose findings are all resolved is listed with zeros."""
    counts: dict[str, dict[str, int]] = {}
    for f in selected:
        name = getattr(f, key) or "-"
        row = counts.setdefault(name, dict.fromkeys(COUNTED, 0))
        if f.state != "open":
            continue
        row["open"] += 1
        row[f.cls] += 1
        row["recurring"] += int(f.recurring)
    return dict(sorted(counts.items()))


def _totals(selected: Sequence[Finding]) -> dict[str, int]:
    """Open findings (and of them planned, unauthorised, recurring), and resolved ones."""
    live = [f for f in selected if f.state == "open"]
    return {
        "open": len(live),
        PLANNED: sum(1 for f in live if f.cls == PLANNED),
        UNAUTHORISED: sum(1 for f in live if f.cls == UNAUTHORISED),
        "recurring": sum(1 for f in live if f.recurring),
        "resolved": len(selected) - len(live),
    }


def _week_label(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _trend(
    selected: Sequence[Finding], start: datetime | None, now: datetime
) -> list[dict[str, Any]]:
    """Per ISO week from ``start``'s week to ``now``'s: new, resolved, open at its end."""
    if start is None:
        return []
    firsts = [_moment(f.first_seen) for f in selected]
    resolved = [_moment(f.resolved_at) if f.resolved_at else None for f in selected]
    monday = datetime(start.year, start.month, start.day, tzinfo=UTC) - timedelta(
        days=start.weekday()
    )
    weeks = []
    while monday <= now:
        end = monday + timedelta(days=7)
        cut = min(end, now)
        weeks.append(
            {
                "week": _week_label(monday),
                "start": monday.date().isoformat(),
                "new": sum(1 for t in firsts if monday <= t < end),
                "resolved": sum(1 for t in resolved if t is not None and monday <= t < end),
                "open": sum(
                    1
                    for t, r in zip(firsts, resolved, strict=True)
                    if t <= cut and (r is None or r > cut)
                ),
            }
        )
        monday = end
    return weeks


def report(
    ledger: Ledger,
    group: str | None = None,
    since: datetime | str | None = None,
    now: datetime | str | None = None,
    *,
    hosts: Collection[str] | None = None,
) -> dict[str, Any]:
    """Open findings (with age_days), resolved findings, counts per group and per vendor
    (open, planned, unauthorised, recurring: of the open findings), totals, and the trend
    per ISO week (new, resolved, open at the end of the week; the current week ends now)
    from the week of ``since`` (else of the earliest first_seen) to now.

    ``group``: only findings of that group; ``hosts``: only findings of those hosts.
    """
    at = _moment(format_time(now)) if now is not None else datetime.now(UTC)
    since_at = _since_text(since)
    selected = [
        f
        for f in findings(ledger, since=since_at)
        if (group is None or f.group == group) and (hosts is None or f.host in hosts)
    ]
    open_now = []
    for f in selected:
        if f.state == "open":
            age = (at - _moment(f.first_seen)).total_seconds() / 86400
            open_now.append({**f.as_dict(), "age_days": round(max(age, 0.0), 1)})
    if since_at is not None:
        start: datetime | None = _moment(since_at)
    elif selected:
        start = min(_moment(f.first_seen) for f in selected)
    else:
        start = None
    return {
        "generated_at": format_time(at),
        "group": group,
        "since": since_at,
        "totals": _totals(selected),
        "open": open_now,
        "resolved": [f.as_dict() for f in selected if f.state == "resolved"],
        "groups": _counts(selected, "group"),
        "vendors": _counts(selected, "vendor"),
        "trend": _trend(selected, start, at),
    }


def _short_run(run_id: str) -> str:
    """The random tail of a run id (20250102T030405Z-1a2b3c4d -> 1a2b3c4d)."""
    tail = run_id.rsplit("-", 1)[-1]
    return tail if tail and tail != run_id else run_id[:16]


def _named(items: Sequence[str]) -> str:
    shown = ", ".join(items[:TITLE_NAMED])
    return shown + (f" and {len(items) - TITLE_NAMED} more" if len(items) > TITLE_NAMED else "")


def glitch_record(
    run_id: str,
    hosts: Iterable[str],
    resources: Iterable[str],
    findings: Iterable[Finding | str],
    reason: str,
) -> dict[str, Any]:
    """A ``glitch`` ledger record for a failed remediation (the caller appends it).

    Body: glitch_id ("G-" + the run id's short form), title, detected_by "remediation",
    run_id, hosts, resources, findings (finding ids), customer_impact "unknown", status
    "open", reason.
    """
    host_list = sorted(set(hosts))
    resource_list = sorted(set(resources))
    ids = sorted({f.id if isinstance(f, Finding) else str(f) for f in findings})
    why = " ".join(str(reason).split()) or "remediation failed"
    title = f"Remediation left drift on {_named(host_list) or 'no host'}"
    if resource_list:
        title += f": {_named(resource_list)}"
    return {
        "kind": GLITCH_KIND,
        "run_id": run_id,
        "host": None,
        "recorded_at": utc_now(),
        "body": {
            "glitch_id": f"G-{_short_run(run_id)}",
            "title": title,
            "detected_by": "remediation",
            "run_id": run_id,
            "hosts": host_list,
            "resources": resource_list,
            "findings": ids,
            "customer_impact": "unknown",
            "status": "open",
            "reason": why,
        },
    }
