"""An error raised before any view (a middleware reading the session while the database
is unreachable) is answered "try again", 503, never Django's bare 500."""

from __future__ import annotations

from importlib import import_module

import psycopg
import pytest
from django.conf import settings
from django.db import OperationalError

from tests.support import logged_in

pytestmark = pytest.mark.django_db


def session_store() -> type:
    """The store this run's settings read sessions with (vsm.sessions with Redis)."""
    return import_module(settings.SESSION_ENGINE).SessionStore


def lost_connection(*args, **kwargs):
    try:
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    except psycopg.OperationalError as cause:
        raise OperationalError("server closed the connection unexpectedly") from cause


def test_a_database_lost_while_reading_the_session_is_try_again(member, monkeypatch):
    client = logged_in(member)
    client.raise_request_exception = False
    monkeypatch.setattr(session_store(), "load", lost_connection)

    page = client.get("/streams/")
    fragment = client.get("/streams/", headers={"HX-Request": "true"})

    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "Could not reach the database just now" in page.content.decode()
    assert "Busy for a moment" in page.content.decode()
    assert fragment.status_code == 503 and fragment["Content-Type"].startswith("text/plain")


def test_any_other_error_before_a_view_is_the_500_page(member, monkeypatch):
    client = logged_in(member)
    client.raise_request_exception = False

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(session_store(), "load", broken)

    answer = client.get("/streams/")

    assert answer.status_code == 500
    assert "Something went wrong on our side" in answer.content.decode()
