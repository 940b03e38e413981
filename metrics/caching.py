"""Derived values kept in Django's cache, where a failing cache costs time, not a page."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.core.cache import cache


def cached[T](key: str, compute: Callable[[], T], *, kind: type[T], timeout: int) -> T:
    """``compute()``, kept under ``key`` for ``timeout`` seconds. A cache that is down,
    or that holds anything but a ``kind`` under the key, is skipped: the value is
    computed (and stored if the cache takes it)."""
    try:
        found = cache.get(key)
    except Exception:  # a cache that is down must not fail the caller
        found = None
    if isinstance(found, kind):
        return found
    value = compute()
    with contextlib.suppress(Exception):
        cache.set(key, value, timeout=timeout)
    return value
