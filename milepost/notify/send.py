"""Sending a notice: read what it says (milepost.notify.content and the content_upcoming,
content_runs and content_glitch modules beside it), render it for each audience, mask every
secret, deliver it by e-mail and webhook, and record every delivery, sent or failed, as one
``notice`` record in the ledger (spooled if the ledger cannot be written).

``send_notice`` is what the CLI calls; ``notify_upcoming_now``, ``notify_completed`` and
``notify_emergency`` are for runs (milepost maintain, emergency-patch): they never raise,
they warn on stderr, and they do nothing when milepost_notify is not set.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.ansible.redaction import Redactor
from milepost.errors import MilepostError, UserError
from milepost.input_checks import shown
from milepost.ledger import Ledger
from milepost.ledger.bodies import usable
from milepost.ledger.schema import records as T
from milepost.ledger.spool import append_or_spool
from milepost.notify import (
    content,
    content_glitch,
    content_review,
    content_runs,
    content_upcoming,
)
from milepost.notify.config import (
    NOTICES,
    Audience,
    check_address,
    plain_http_elsewhere,
    webhook_origin,
)
from milepost.notify.inventory import NotifySetup, load_setup
from milepost.notify.smtp import send_mail
from milepost.notify.templates import Rendered, clean_line, render
from milepost.notify.upcoming import Opening
from milepost.notify.webhook import post_notice
from milepost.operator import operator_name

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger

__all__ = [
    "KIND",
    "Delivery",
    "NotConfigured",
    "Outcome",
    "notify_completed",
    "notify_emergency",
    "notify_upcoming_now",
    "send_notice",
]

KIND = "notice"
EMAIL = "email"
WEBHOOK = "webhook"
SENT = "sent"
FAILED = "failed"
PREVIEW = "preview"
EXAMPLE = "inventory/example/group_vars/all/notify.yml"


class NotConfigured(UserError):
    """milepost_notify is not set in the inventory."""


@dataclass(frozen=True)
class Delivery:
    """One notice to one audience over one channel."""

    notice: str
    audience: str
    channel: str
    #: E-mail addresses; for a webhook only scheme://host[:port].
    recipients: tuple[str, ...]
    subject: str
    text: str = field(repr=False)
    #: sent | failed | preview (a dry run: neither sent nor recorded)
    result: str
    reason: str | None = None
    attempts: int = 0
    #: Sent without TLS by an explicit insecure: true (labs): recorded as insecure: true.
    insecure: bool = False

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass
class Outcome:
    """What a notice came to: one Delivery per audience and channel, and one line for each
    audience left out (already told, no recipients) or for nothing to send."""

    notice: str
    dry_run: bool = False
    deliveries: list[Delivery] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No delivery failed."""
        return all(d.result != FAILED for d in self.deliveries)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.result == FAILED]


@dataclass(frozen=True)
class _Planned:
    audience: Audience
    channel: str
    recipients: tuple[str, ...]
    rendered: Rendered
    about: dict[str, Any]
    run_id: str | None


# ------------------------------------------------------------------ choosing


def _check_audiences(setup: NotifySetup, notice: str, given: Sequence[str] | None) -> list[str]:
    names = list(given) if given is not None else list(setup.config.notices.get(notice, ()))
    known = setup.config.audiences
    for name in names:
        if name not in known:
            raise UserError(f"--audience {shown(name)} is not one of: {', '.join(known)}")
    return list(dict.fromkeys(names))


def _vendor_addresses(setup: NotifySetup, systems: Iterable[Any]) -> list[str]:
    """The contacts of the vendors operating ``systems``; an address that could not stand
    in a mail header on its own is left out with a warning."""
    found: list[str] = []
    for system in systems:
        for key in system.vendors:
            vendor = setup.vendors.get(key)
            for contact in vendor.contacts if vendor is not None else ():
                try:
                    found.append(check_address(contact.email, f"milepost_vendors.{key} contact"))
                except UserError as bad:
                    _warn(f"{bad}: not sent to it")
    return found


def _recipients(setup: NotifySetup, audience: Audience, about: content.Content) -> tuple[str, ...]:
    addresses = list(audience.email)
    if audience.vendor_contacts:
        addresses.extend(_vendor_addresses(setup, about.systems))
    return tuple(dict.fromkeys(addresses))


def _sent(ledger: Ledger, notice: str, audience: str) -> Iterator[dict[str, Any]]:
    """The ``about`` of every ``notice`` sent to ``audience`` (usable records only)."""
    with ledger.read_transaction() as conn:
        rows = conn.execute(select(T.c.seq, T.c.body).where(T.c.kind == KIND).order_by(T.c.seq))
        for seq, text in rows:
            body = usable(seq, KIND, text)
            if body is None or body["notice"] != notice:
                continue
            if body.get("audience") == audience and body.get("result") == SENT:
                given = body.get("about")
                yield given if isinstance(given, dict) else {}


def _already_reminded(ledger: Ledger, audience: str) -> set[str]:
    """The questions a question_reminder already went to ``audience`` about."""
    return {
        str(key)
        for about in _sent(ledger, "question_reminder", audience)
        for key in about.get("questions") or ()
    }


def _already_told(ledger: Ledger, audience: str, starting_now: bool) -> set[str]:
    """The window keys upcoming notices already went to ``audience`` about."""
    return {
        str(key)
        for about in _sent(ledger, "upcoming", audience)
        if bool(about.get("starting_now")) == starting_now
        for key in about.get("windows") or ()
    }


# ------------------------------------------------------------------ delivering


def _redactor(setup: NotifySetup) -> Redactor:
    redactor = Redactor()
    redactor.add_secrets(setup.secrets)
    return redactor


def _scrubbed(rendered: Rendered, redactor: Redactor) -> Rendered:
    return Rendered(
        subject=clean_line(redactor.scrub(rendered.subject)),
        text=redactor.scrub(rendered.text),
    )


def _deliver(setup: NotifySetup, plan: _Planned, notice: str, redactor: Redactor) -> Delivery:
    config = setup.config
    if plan.channel == EMAIL:
        assert config.smtp is not None and config.sender is not None  # checked in config
        attempted = send_mail(
            config.smtp,
            sender=config.sender,
            recipients=plan.recipients,
            subject=plan.rendered.subject,
            text=plan.rendered.text,
            redactor=redactor,
        )
        shown_to = plan.recipients
        insecure = config.smtp.insecure
    else:
        assert plan.audience.webhook is not None
        payload = {
            "notice": notice,
            "audience": plan.audience.name,
            "subject": plan.rendered.subject,
            "text": plan.rendered.text,
            "about": plan.about,
        }
        attempted = post_notice(
            plan.audience.webhook,
            payload,
            policy=config.webhook,
            redactor=redactor,
            allow_insecure=config.webhook_insecure,
        )
        shown_to = (webhook_origin(plan.audience.webhook),)
        insecure = plain_http_elsewhere(plan.audience.webhook)
    return Delivery(
        notice=notice,
        audience=plan.audience.name,
        channel=plan.channel,
        recipients=shown_to,
        subject=plan.rendered.subject,
        text=plan.rendered.text,
        result=SENT if attempted.ok else FAILED,
        reason=attempted.reason,
        attempts=attempted.attempts,
        insecure=insecure,
    )


def _record(delivery: Delivery, plan: _Planned) -> dict[str, Any]:
    body: dict[str, Any] = {
        "notice": delivery.notice,
        "audience": delivery.audience,
        "channel": delivery.channel,
        "recipients": list(delivery.recipients),
        "subject": delivery.subject,
        "body_sha256": delivery.body_sha256,
        "result": delivery.result,
        "attempts": delivery.attempts,
        "about": plan.about,
        "operator": operator_name(),
    }
    if delivery.reason is not None:
        body["reason"] = delivery.reason
    if delivery.insecure:
        body["insecure"] = True
    return {"kind": KIND, "run_id": plan.run_id, "host": None, "body": body}


# ------------------------------------------------------------------ planning


def _contents(
    ledger: Ledger,
    setup: NotifySetup,
    notice: str,
    audiences: Sequence[str],
    outcome: Outcome,
    *,
    clock: datetime,
    run_id: str | None,
    note_id: str | None,
    now: bool,
    within_hours: float,
    systems: Sequence[str] | None,
    hosts: Sequence[str] | None,
    review: Mapping[str, Any] | None = None,
) -> list[tuple[str, content.Content]]:
    """(audience, content) for each audience that gets the notice."""
    if notice == "daily_review":
        same = content_review.daily_review(setup, review, now=clock)
        return [(name, same) for name in audiences]
    if notice == "question_reminder":
        due = content_review.reminder_questions(ledger, clock, within_hours)
        if not due:
            outcome.skipped.append(
                f"nothing to send: no vendor question to the agency is due within"
                f" {within_hours:g} hours"
            )
            return []
        reminders = []
        for name in audiences:
            told = _already_reminded(ledger, name)
            waiting = [q for q in due if q.question_id not in told]
            if not waiting:
                outcome.skipped.append(
                    f"{name}: already reminded of {', '.join(q.question_id for q in due)}:"
                    " not sent again"
                )
                continue
            reminders.append(
                (
                    name,
                    content_review.question_reminder(
                        setup, waiting, now=clock, within_hours=within_hours
                    ),
                )
            )
        return reminders
    if notice == "completed":
        if not run_id:
            raise UserError("the completed notice needs --run-id: `milepost ledger runs`")
        same = content_runs.completed(ledger, setup, run_id, now=clock)
        return [(name, same) for name in audiences]
    if notice == "emergency":
        if not run_id:
            raise UserError("the emergency notice needs --run-id of the emergency patch run")
        same = content_runs.emergency(ledger, setup, run_id, now=clock)
        return [(name, same) for name in audiences]
    if notice == "glitch":
        if not note_id:
            raise UserError("the glitch notice needs --note: `milepost note list --type glitch`")
        same = content_glitch.glitch(ledger, setup, note_id, now=clock)
        return [(name, same) for name in audiences]
    chosen = content_upcoming.upcoming_openings(
        setup,
        now=clock,
        within_hours=within_hours,
        systems=systems,
        hosts=hosts,
        starting_now=now,
    )
    if not chosen:
        outcome.skipped.append(
            "nothing to send: no system of the run is in the inventory's systems"
            if now
            else "nothing to send: no maintenance window opens within"
            f" {within_hours:g} hour{'' if within_hours == 1 else 's'}"
        )
        return []
    found = []
    for name in audiences:
        told = _already_told(ledger, name, now)
        fresh: list[Opening] = [o for o in chosen if o.key not in told]
        if not fresh:
            outcome.skipped.append(
                f"{name}: already told about {', '.join(o.key for o in chosen)}: not sent again"
            )
            continue
        if len(fresh) < len(chosen):
            outcome.skipped.append(
                f"{name}: already told about"
                f" {', '.join(o.key for o in chosen if o.key in told)}: left out"
            )
        found.append((name, content_upcoming.upcoming(setup, fresh, now=clock, run_id=run_id)))
    return found


def _plan(
    setup: NotifySetup,
    wanted: Sequence[tuple[str, content.Content]],
    redactor: Redactor,
    outcome: Outcome,
) -> list[_Planned]:
    """Render every notice first (a template error stops everything before anything is
    sent), then choose the channels of each audience."""
    planned: list[_Planned] = []
    cache: dict[int, Rendered] = {}
    for name, about in wanted:
        audience = setup.config.audiences[name]
        if id(about) not in cache:
            rendered = render(setup.config.templates_dir, about.notice, about.context)
            cache[id(about)] = _scrubbed(rendered, redactor)
        rendered = cache[id(about)]
        recipients = _recipients(setup, audience, about)
        channels = 0
        if recipients:
            planned.append(
                _Planned(audience, EMAIL, recipients, rendered, about.about, about.run_id)
            )
            channels += 1
        if audience.webhook:
            planned.append(_Planned(audience, WEBHOOK, (), rendered, about.about, about.run_id))
            channels += 1
        if not channels:
            outcome.skipped.append(f"{name}: no recipients for this notice (no vendor contacts)")
    return planned


def send_notice(
    kind: str,
    *,
    sources: Sequence[Path] | None = None,
    run_id: str | None = None,
    note_id: str | None = None,
    audiences: Sequence[str] | None = None,
    now: bool = False,
    within_hours: float = 48,
    systems: Sequence[str] | None = None,
    hosts: Sequence[str] | None = None,
    dry_run: bool = False,
    at: datetime | None = None,
    review: Mapping[str, Any] | None = None,
) -> Outcome:
    """Send the ``kind`` notice (NOTICES) to ``audiences``
    (default: milepost_notify.notices.<kind>) and record each delivery.

    ``run_id``: the run (completed, emergency; upcoming: the run starting); ``note_id``: the
    glitch; ``now``: upcoming work starting now on ``hosts`` (or ``systems``);
    ``within_hours``, ``systems``: which windows an upcoming notice tells of (a
    question_reminder: the questions due within ``within_hours``); ``review``: the daily
    review's data (milepost.reports.daily_review); ``dry_run``: render only (nothing sent
    or recorded); ``at``: the time taken as now (default: now).

    UserError (exit 2) for bad input: not configured (NotConfigured), an unknown audience,
    run or glitch, a template that does not render. Delivery failures never raise: they
    are in the Outcome and in the ledger.
    """

    if kind not in NOTICES:
        raise UserError(f"notice {shown(kind)} is not one of: {', '.join(NOTICES)}")
    if not 0 < within_hours <= 24 * 400:
        raise UserError(
            f"--within must be more than 0 and at most {24 * 400} hours, not {within_hours:g}"
        )
    setup = load_setup(sources)
    if setup is None:
        raise NotConfigured(
            "milepost_notify is not set in the inventory: add it to group_vars/all to send"
            f" notices (see {EXAMPLE})"
        )
    names = _check_audiences(setup, kind, audiences)
    outcome = Outcome(notice=kind, dry_run=dry_run)
    if not names:
        outcome.skipped.append(
            f"nothing to send: milepost_notify.notices.{kind} names no audience and none was"
            " given with --audience"
        )
        return outcome
    clock = (at or datetime.now(UTC)).astimezone(UTC)
    redactor = _redactor(setup)
    with Ledger.open() as ledger:
        wanted = _contents(
            ledger,
            setup,
            kind,
            names,
            outcome,
            clock=clock,
            run_id=run_id,
            note_id=note_id,
            now=now,
            within_hours=within_hours,
            systems=systems,
            hosts=hosts,
            review=review,
        )
        planned = _plan(setup, wanted, redactor, outcome)
        for plan in planned:
            if dry_run:
                outcome.deliveries.append(
                    Delivery(
                        notice=kind,
                        audience=plan.audience.name,
                        channel=plan.channel,
                        recipients=plan.recipients
                        or (webhook_origin(plan.audience.webhook or ""),),
                        subject=plan.rendered.subject,
                        text=plan.rendered.text,
                        result=PREVIEW,
                    )
                )
                continue
            delivery = _deliver(setup, plan, kind, redactor)
            outcome.deliveries.append(delivery)
            append_or_spool([_record(delivery, plan)], f"the {kind} notice record", ledger)
    return outcome


# ------------------------------------------------------------------ for runs


def _warn(text: str) -> None:
    print(f"milepost: warning: {text}", file=sys.stderr)


def _automatic(kind: str, sources: Sequence[Path] | None, **options: Any) -> Outcome | None:
    """send_notice for a run: never raises; warns on stderr; None when not configured or
    when the notice could not be prepared."""
    try:
        outcome = send_notice(kind, sources=sources, **options)
    except NotConfigured:
        return None
    except (MilepostError, OSError) as exc:
        _warn(f"the {kind} notice was not sent ({' '.join(str(exc).split())})")
        return None
    except Exception as exc:  # noqa: BLE001 - a notice must never fail a maintenance run
        _warn(f"the {kind} notice was not sent ({type(exc).__name__}: {exc})")
        return None
    for delivery in outcome.failed:
        _warn(
            f"the {kind} notice to {delivery.audience} ({delivery.channel}) failed:"
            f" {delivery.reason}"
        )
    return outcome


def notify_upcoming_now(
    run_id: str, hosts: Sequence[str], sources: Sequence[Path] | None = None
) -> Outcome | None:
    """Tell the upcoming notice's audiences that maintenance of the systems of ``hosts``
    starts now (a run starting)."""
    return _automatic("upcoming", sources, run_id=run_id, hosts=list(hosts), now=True)


def notify_completed(run_id: str, sources: Sequence[Path] | None = None) -> Outcome | None:
    """Tell the completed notice's audiences how run ``run_id`` went."""
    return _automatic("completed", sources, run_id=run_id)


def notify_emergency(run_id: str, sources: Sequence[Path] | None = None) -> Outcome | None:
    """Tell the emergency notice's audiences about emergency patch run ``run_id``: its
    start, or its outcome once its emergency_result is recorded."""
    return _automatic("emergency", sources, run_id=run_id)
