"""Notices to a chat webhook: one JSON POST per audience (urllib), success a 2xx answer,
a bounded number of attempts with doubling pauses. Redirects are not followed (the body
would be lost or sent elsewhere). Reasons never show the URL's path or query, which often
hold a token."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, NoReturn

from milepost.notify.config import RetryPolicy, webhook_origin
from milepost.notify.delivery import Attempted, one_line, pause
from milepost.redaction import Redactor

__all__ = ["post_notice"]


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
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the certificate of {origin} could not be verified ({error.verify_message})", False
    if isinstance(error, ConnectionRefusedError):
        return f"connection to the webhook at {origin} refused", True
    if isinstance(error, TimeoutError | socket.timeout):
        return f"no answer from the webhook at {origin} within {policy.timeout_seconds:g} s", True
    if isinstance(error, socket.gaierror):
        return f"the webhook host of {origin} could not be found ({error.strerror})", True
    if isinstance(error, OSError) and error.strerror:
        return f"the webhook at {origin}: {error.strerror}", True
    return f"the webhook at {origin}: {type(error).__name__}", True


def post_notice(
    url: str, payload: Mapping[str, Any], *, policy: RetryPolicy, redactor: Redactor
) -> Attempted:
    """POST ``payload`` as JSON to ``url``; never raises for a delivery failure."""
    origin = webhook_origin(url)
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    opener = _opener(policy)
    why = "not tried"
    attempts = 0
    for attempt in range(1, policy.attempts + 1):
        attempts = attempt
        request = urllib.request.Request(  # noqa: S310 - http(s) only (checked in config)
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "milepost-notify"},
        )
        try:
            with opener.open(request, timeout=policy.timeout_seconds) as answer:  # nosec B310
                status = int(answer.status)
                answer.read(65536)
            if 200 <= status < 300:
                return Attempted(True, attempts)
            why, again = f"the webhook at {origin} answered HTTP {status}", False
        except (urllib.error.URLError, OSError, ValueError) as error:
            why, again = _reason(error, origin, policy)
        if not again:
            break
        if attempt < policy.attempts:
            pause(policy, attempt)
    return Attempted(False, attempts, one_line(redactor.scrub(why)))
