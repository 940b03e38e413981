"""Derived values kept in Django's cache, where a failing cache costs time, not a page."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.core.cache import cache


def cached[T](key: str, compute: Callable[[], T], *, kind: type[T], timeout: int) -> T:
    """``compute()``, kept under ``key`` for ``timeout`` seconds. A cache that is down,
    or that holds anything but a ``kind`` under the key, is skipped: the value is
    computed (and stored if the cache takes it)."""
    found = cache_get_quietly(key)
    if isinstance(found, kind):
        return found
    value = compute()
    cache_set_quietly(key, value, timeout=timeout)
    return value


def cache_get_quietly(key: str) -> object | None:
    """What the cache holds under ``key``, or None when it holds nothing or is down."""
    try:
        return cache.get(key)
    except Exception:  # a cache that is down must not fail the caller
        return None


def cache_set_quietly(key: str, value: object, *, timeout: float) -> None:
    """Keep ``value`` under ``key`` for ``timeout`` seconds if the cache takes it."""
    with contextlib.suppress(Exception):
        cache.set(key, value, timeout=timeout)
