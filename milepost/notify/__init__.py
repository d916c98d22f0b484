"""Notices for communications and customer-service staff, in plain language.

Six notices, each a template in ``notices/`` (editable; ``<notice>.txt.j2``: a first line
``Subject: ...``, a blank line, the body) rendered in Jinja2's sandbox from the LEDGER and
the inventory, never from Ansible's output:

- ``upcoming``: maintenance windows opening soon (or work starting now, from a run);
- ``completed``: how a run went, what changed and what went wrong, per system;
- ``emergency``: an emergency patch, at its start and with its outcome at its end;
- ``glitch``: a glitch of the registers, its impact and what is being done;
- ``question_reminder``: vendors' questions to the agency due for an answer soon (each
  question once per audience);
- ``daily_review``: the hypercare daily review for the program team (milepost.reports.
  daily_review computes it; ``milepost report daily-review --send``).

The program's name is ``milepost_program_name`` (group all; the dashboard's too). Who is
told, and how, is ``milepost_notify`` in group_vars/all
(inventory/example/group_vars/all/notify.yml)::

    milepost_notify:
      contact: RUC Operations, ops@ruc.example.gov, +1-555-0199
      from: RUC Operations <ruc-ops@ruc.example.gov>
      timezone: America/Los_Angeles        # run times in notices (default UTC)
      smtp: {host: smtp.ruc.example.gov, port: 587, starttls: true, username: milepost,
             password: "{{ vault_milepost_smtp_password }}", attempts: 3}
      webhook: {timeout_seconds: 10, attempts: 3, retry_delay_seconds: 2}
      audiences:
        communications: {email: [communications@ruc.example.gov],
                         webhook: https://chat.ruc.example.gov/hooks/abc}
        vendors: {email: [], vendor_contacts: true}
      notices:
        completed: [communications]

Every delivery (one per audience and channel), sent or failed, is one ``notice`` record in
the ledger: audience, channel, recipients (a webhook only as scheme://host:port), subject,
the SHA-256 of the text, the result, attempts, what it was about, the operator. Secrets
(the SMTP password, webhook tokens, vault values, secret-looking text) are masked in every
notice and every reason. An upcoming window is announced to an audience once.

API: :func:`send_notice` (the CLI, ``milepost notify``), and for runs
:func:`notify_upcoming_now`, :func:`notify_completed`, :func:`notify_emergency`, which
never raise and do nothing when milepost_notify is not set.
"""

from milepost.notify.config import NOTICES, NotifyConfig, load_notify_config
from milepost.notify.send import (
    Delivery,
    NotConfigured,
    Outcome,
    notify_completed,
    notify_emergency,
    notify_upcoming_now,
    send_notice,
)

__all__ = [
    "NOTICES",
    "Delivery",
    "NotConfigured",
    "NotifyConfig",
    "Outcome",
    "load_notify_config",
    "notify_completed",
    "notify_emergency",
    "notify_upcoming_now",
    "send_notice",
]
