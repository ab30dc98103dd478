"""The resend policy both drivers follow after a lost connection: what, how long, how often."""

from __future__ import annotations

import os
from collections.abc import Iterator

import redis.exceptions

from redis_memory.core.requests import Command, Request
from redis_memory.errors import access_denied

# A lost connection (reset, closed, timed out, refused): both drivers send the request again.
LOST = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_NOT_RESENT = {"FT.CURSOR"}  # commands whose effect a resend would repeat (writes carry op ids)


def default_retry_for() -> float:
    """How many seconds a driver keeps resending a request after a lost connection:
    ``$REDIS_MEMORY_RETRY_FOR``, else 3 (read when a backend is made)."""
    return float(os.environ.get("REDIS_MEMORY_RETRY_FOR", "3"))


def resendable(request: Request, exc: BaseException) -> bool:
    """Whether ``request``, met by ``exc`` (one of :data:`LOST`), may be sent again: never
    after a refusal (credentials, TLS certificate: not an outage), nor FT.CURSOR (a resend
    would skip a page). A write may: it carries an operation id, so it is applied once."""
    if access_denied(exc):
        return False
    return not (isinstance(request, Command) and str(request.args[0]).upper() in _NOT_RESENT)


def resend_delays() -> Iterator[float]:
    """The waits between resends: 5 ms, doubling up to 250 ms."""
    delay = 0.005
    while True:
        yield delay
        delay = min(delay * 2, 0.25)
