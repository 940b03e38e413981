"""vsm.caching: a value computed once and reused; a failing or polluted cache costs
time, never the caller."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache

from vsm.caching import cached


class DownCache(BaseCache):
    """A cache server that refuses every call."""

    def __init__(self, location, params):
        super().__init__(params)

    def get(self, key, default=None, version=None):
        raise ConnectionError("cache down")

    def set(self, key, value, timeout=None, version=None):
        raise ConnectionError("cache down")


def test_a_value_is_computed_once_then_read_from_the_cache():
    cache.clear()
    calls = []

    def compute() -> list[int]:
        calls.append(1)
        return [1, 2]

    assert cached("vsm:test:once", compute, kind=list, timeout=60) == [1, 2]
    assert cached("vsm:test:once", compute, kind=list, timeout=60) == [1, 2]
    assert len(calls) == 1


def test_something_else_under_the_key_is_not_returned():
    cache.set("vsm:test:kind", "a string, not a list")
    assert cached("vsm:test:kind", lambda: [3], kind=list, timeout=60) == [3]
    assert cache.get("vsm:test:kind") == [3]


def test_a_cache_that_is_down_only_costs_the_computation(settings):
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.DownCache"}}
    with pytest.raises(ConnectionError):
        cache.get("vsm:test:down")  # the override is in effect
    assert cached("vsm:test:down", lambda: [4], kind=list, timeout=60) == [4]
