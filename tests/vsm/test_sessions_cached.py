"""vsm.sessions: sessions read from the shared cache and kept in the database; a cache
that is down costs a query, never a request; a logout leaves nothing to reuse."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.urls import reverse

from tests.vsm.test_security_settings import settings_with
from vsm import sessions

pytestmark = pytest.mark.django_db

LOCAL = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "sessions-t"}


class DownCache(BaseCache):
    """A cache server that refuses every call."""

    def __init__(self, location, params):
        super().__init__(params)

    def _down(self, *args, **kwargs):
        raise ConnectionError("cache down")

    get = set = add = delete = has_key = _down


@pytest.fixture
def cached_sessions(settings):
    settings.SESSION_ENGINE = "vsm.sessions"
    settings.CACHES = {"default": LOCAL}
    caches["default"].clear()
    return caches["default"]


def test_a_request_reads_its_session_from_the_cache_not_the_database(
    cached_sessions, client, member, stream, django_assert_num_queries
):
    client.force_login(member)
    client.get(reverse("boards:stream-list"))
    key = client.session.session_key

    assert cached_sessions.get(sessions.SessionStore.cache_key_prefix + key) is not None
    with django_assert_num_queries(0):
        store = sessions.SessionStore(key)
        assert store.get("_auth_user_id") == str(member.pk)


def test_a_session_stays_in_the_cache_at_most_the_bound(cached_sessions, member, monkeypatch):
    stored: list[float | None] = []
    real_set = type(cached_sessions).set

    def spy(self, key, value, timeout=None, version=None):
        stored.append(timeout)
        return real_set(self, key, value, timeout, version)

    monkeypatch.setattr(type(cached_sessions), "set", spy)
    store = sessions.SessionStore()
    store["who"] = member.pk
    store.set_expiry(7 * 24 * 3600)
    store.save()
    sessions.SessionStore(store.session_key).load()

    assert stored and all(t is not None and t <= sessions.CACHED_SECONDS for t in stored)


def test_a_logout_removes_the_cached_copy(cached_sessions, client, member):
    client.force_login(member)
    key = client.session.session_key
    client.get(reverse("boards:stream-list"))

    client.post(reverse("logout"))

    assert cached_sessions.get(sessions.SessionStore.cache_key_prefix + key) is None
    assert not Session.objects.filter(session_key=key).exists()
    assert sessions.SessionStore(key).load() == {}


def test_with_the_cache_down_logins_pages_and_logouts_work_from_the_database(
    settings, client, member, stream
):
    settings.SESSION_ENGINE = "vsm.sessions"
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.DownCache"}}

    logged_in = client.post(reverse("login"), {"username": member.username, "password": "pw"})
    client.force_login(member)
    page = client.get(reverse("boards:board", args=[stream.slug]))
    key = client.session.session_key
    logged_out = client.post(reverse("logout"))

    assert logged_in.status_code in (200, 302)
    assert page.status_code == 200
    assert logged_out.status_code == 302
    assert not Session.objects.filter(session_key=key).exists()


@pytest.mark.parametrize(
    ("cache_url", "engine"),
    [
        ("redis://127.0.0.1:6379/3", "vsm.sessions"),
        ("locmemcache://vsm", "django.contrib.sessions.backends.db"),
    ],
)
def test_settings_use_it_only_with_a_cache_every_process_shares(cache_url, engine):
    assert settings_with(DJANGO_DEBUG="true", CACHE_URL=cache_url)["SESSION_ENGINE"] == engine
