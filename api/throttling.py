"""Requests per API token, counted in the shared cache (Redis in production), so that
every web process counts against one limit.

A sliding window, approximated from two fixed windows (the current one and the one
before, weighted by how much of it the sliding window still covers): one atomic
increment and one read per request, and no burst of twice the rate across a window
boundary, which a plain fixed window allows. A refused request is taken off again, so
``Retry-After`` holds for a caller that waits as told.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from api.models import ApiToken

logger = logging.getLogger(__name__)

# Per token and window; the prefix too, so that a token id a test database hands out
# again never meets an older token's count.
_KEY = "vsm:api-rate:{token.pk}:{token.prefix}:{window}"


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"120/min"`` as (requests, seconds): DRF's notation (a period is read by its
    first letter: s, m, h or d). Raises: ValueError for anything else."""
    number, _, period = rate.partition("/")
    if not (number.isascii() and number.isdigit()) or int(number) < 1:
        raise ValueError(f"A rate is '<requests>/<s|min|hour|day>', not {rate!r}.")
    if not period or period[0] not in _PERIODS:
        raise ValueError(f"A rate's period is s, min, hour or day, not {period!r}.")
    return int(number), _PERIODS[period[0]]


class TokenRateThrottle(BaseThrottle):
    """At most settings.VSM_API_RATE requests per token (e.g. "120/min"). Requests
    without a token are not counted here (they are refused before any work)."""

    def __init__(self) -> None:
        # The clock (a test sets its own). The rate is read per request, not here as
        # DRF's throttles do, so that a changed setting takes effect.
        self.timer: Callable[[], float] = time.time
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        limit, duration = parse_rate(settings.VSM_API_RATE)
        now = self.timer()
        window = int(now // duration)
        key = _KEY.format(token=token, window=window)
        try:
            count = _increment(key, timeout=2 * duration + 1)
            previous = cache.get(_KEY.format(token=token, window=window - 1)) or 0
        except Exception:  # a cache that is down must not take the API down with it
            logger.warning("API rate not counted: the cache failed", exc_info=True)
            return True
        elapsed = now - window * duration
        weight = (duration - elapsed) / duration
        if count + previous * weight <= limit:
            return True
        with contextlib.suppress(Exception):  # a refusal is not counted: Retry-After holds
            cache.decr(key)
        self._wait = _seconds_to_wait(
            limit=limit, duration=duration, elapsed=elapsed, count=count, previous=previous
        )
        return False

    def wait(self) -> float | None:
        if self._wait is None:
            return None
        # Rounded first: 19.000000000000004 s is 19 s, not 20.
        return float(max(1, math.ceil(round(self._wait, 6))))


def _seconds_to_wait(
    *, limit: int, duration: int, elapsed: float, count: int, previous: int
) -> float:
    """Until this request would be let in, if no other came: ``count`` (with it) plus
    the previous window's share must fit the limit. Within this window while its own
    count fits; else into the next one, until this window's weight has fallen enough."""
    if count <= limit and previous:
        return max(0.0, duration * (1 - (limit - count) / previous) - elapsed)
    carried = max(count - 1, 1)  # this window's requests, without this one
    return (duration - elapsed) + max(0.0, duration * (1 - (limit - 1) / carried))


def _increment(key: str, *, timeout: int) -> int:
    """Add one to the counter ``key`` (made, expiring after ``timeout`` seconds, if it
    is not there): atomic on Redis, so processes never lose each other's counts."""
    try:
        return int(cache.incr(key))
    except ValueError:  # not there yet (or expired just now)
        if cache.add(key, 1, timeout=timeout):
            return 1
        return int(cache.incr(key))
