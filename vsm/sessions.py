"""Sessions read from the shared cache, kept in the database.

Every request reads its session; with the database backend that is a query (and its
ORM compilation) on every board poll, every 2 s for each open board. This store is
Django's ``cached_db`` with two changes, because the cache is a help here, never a
need (``vsm.caching``):

- A cache that is down is skipped: the session is read from and written to the
  database alone (``cached_db`` would fail the request on a failed write-back after a
  database read).
- A session stays in the cache at most ``CACHED_SECONDS``, however long it lives: a
  logout while Redis could not be reached deletes the row but cannot delete the cached
  copy, which must then not outlive the cache's own short bound.

Used only with a cache every process shares (Redis; ``vsm.settings``): with a cache per
process, a logout in one would leave the session cached in the others.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.models import Session
from django.core.cache.backends.base import BaseCache

# How long a session may be read from the cache without the database: the longest a
# logout made while Redis was unreachable can be ignored.
CACHED_SECONDS = 300

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    # What cached_db has and django-stubs does not declare.
    _cache: BaseCache
    _session: dict[str, Any]
    _get_session_from_db: Callable[[], Session | None]

    def _cache_timeout(self, expiry_age: int) -> int:
        return max(0, min(expiry_age, CACHED_SECONDS))

    def load(self) -> dict[str, Any]:
        try:
            data = self._cache.get(self.cache_key)
        except Exception:  # a cache that is down, or a key it refuses
            data = None
        if data is not None:
            return data
        row = self._get_session_from_db()
        if row is None:
            return {}
        data = self.decode(row.session_data)
        with contextlib.suppress(Exception):
            self._cache.set(
                self.cache_key,
                data,
                self._cache_timeout(self.get_expiry_age(expiry=row.expire_date)),
            )
        return data

    def exists(self, session_key: str | None) -> bool:
        with contextlib.suppress(Exception):
            if session_key and (self.cache_key_prefix + session_key) in self._cache:
                return True
        return bool(session_key) and super(cached_db.SessionStore, self).exists(session_key or "")

    def save(self, must_create: bool = False) -> None:
        # The database first (cached_db.DBStore): the cache only ever holds what it has.
        super(cached_db.SessionStore, self).save(must_create)
        with contextlib.suppress(Exception):
            self._cache.set(
                self.cache_key, self._session, self._cache_timeout(self.get_expiry_age())
            )

    def delete(self, session_key: str | None = None) -> None:
        super(cached_db.SessionStore, self).delete(session_key)
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        try:
            self._cache.delete(self.cache_key_prefix + session_key)
        except Exception:
            logger.warning(
                "A deleted session stays in the cache for at most %s s: the cache is down.",
                CACHED_SECONDS,
            )
