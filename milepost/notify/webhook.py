"""Notices to a chat webhook: one JSON POST per audience (urllib), success a 2xx answer,
a bounded number of attempts with doubling pauses. Redirects are not followed (the body
would be lost or sent elsewhere). Reasons never show the URL's path or query, which often
hold a token. Plain http goes only to 127.0.0.1, localhost or ::1, unless the caller allows
it (milepost_notify.webhook.insecure: true, labs only); such a delivery carries the INSECURE
note (printed, and recorded with insecure: true)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, NoReturn

from milepost.ansible.redaction import Redactor
from milepost.notify.config import RetryPolicy, plain_http_elsewhere, webhook_origin
from milepost.notify.delivery import Attempted, Undelivered, connection_reason, deliver

__all__ = ["INSECURE_NOTE", "post_notice"]

#: The note on a delivery over plain http to another machine (webhook.insecure: true).
INSECURE_NOTE = "INSECURE: sent over plain http (milepost_notify.webhook.insecure: true)"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> NoReturn:
        req, fp, code, msg, headers = args[:5]
        raise urllib.error.HTTPError(req.full_url, code, f"redirect ({msg})", headers, fp)


def _opener(policy: RetryPolicy) -> urllib.request.OpenerDirector:
    context = ssl.create_default_context(cafile=str(policy.ca_file) if policy.ca_file else None)
    return urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=context))


def _reason(error: BaseException, origin: str, policy: RetryPolicy) -> tuple[str, bool]:
    """(why, worth trying again)."""
    if isinstance(error, urllib.error.HTTPError):
        again = error.code >= 500 or error.code == 429
        return f"the webhook at {origin} answered HTTP {error.code} {error.reason}", again
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    return connection_reason(error, f"the webhook at {origin}", policy.timeout_seconds)


def post_notice(
    url: str,
    payload: Mapping[str, Any],
    *,
    policy: RetryPolicy,
    redactor: Redactor,
    allow_insecure: bool = False,
) -> Attempted:
    """POST ``payload`` as JSON to ``url``; never raises for a delivery failure. Plain
    http to a host other than this machine is refused (not tried) unless
    ``allow_insecure``."""
    origin = webhook_origin(url)
    insecure = plain_http_elsewhere(url)
    if insecure and not allow_insecure:
        return Attempted(False, 0, f"not sent: the webhook at {origin} is plain http; use https")
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    opener = _opener(policy)

    def once() -> str | None:
        request = urllib.request.Request(  # noqa: S310 - http(s) only (checked in config)
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "milepost-notify"},
        )
        with opener.open(request, timeout=policy.timeout_seconds) as answer:  # nosec B310
            status = int(answer.status)
            answer.read(65536)
        if not 200 <= status < 300:
            raise Undelivered(f"the webhook at {origin} answered HTTP {status}", again=False)
        return INSECURE_NOTE if insecure else None

    return deliver(policy, once, lambda error: _reason(error, origin, policy), redactor)
