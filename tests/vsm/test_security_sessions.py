"""Sessions: a self-service password change, an idle limit that costs no write per board
poll, and a maximum lifetime."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD
from tests.support import logged_in
from vsm.accounts import SESSION_REFRESHED, SESSION_STARTED, session_refresh_interval

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a new and long enough passphrase"
PAGE = reverse("boards:stream-list")


def expiry(client) -> object:
    return Session.objects.get(session_key=client.session.session_key).expire_date


def test_the_top_bar_links_to_the_password_change(user):
    response = logged_in(user).get(PAGE)

    assert f'href="{reverse("password_change")}"'.encode() in response.content


def test_a_user_changes_their_password_and_stays_logged_in(user):
    client = logged_in(user)
    elsewhere = logged_in(user)

    page = client.get(reverse("password_change"))
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert page.status_code == 200
    assert b'name="old_password"' in page.content
    assert response.status_code == 302
    assert response.url == reverse("password_change_done")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    done = client.get(response.url)
    assert done.status_code == 200
    assert b"Password changed" in done.content
    assert client.get(PAGE).status_code == 200
    # Every other session of the user ends with the old password.
    assert elsewhere.get(PAGE).status_code == 302


@pytest.mark.parametrize(
    ("old", "new1", "new2", "message"),
    [
        ("wrong", NEW_PASSWORD, NEW_PASSWORD, b"Your old password was entered incorrectly"),
        (PASSWORD, NEW_PASSWORD, "something else", b"didn\xe2\x80\x99t match"),
        (PASSWORD, "short", "short", b"too short"),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(user, old, new1, new2, message):
    response = logged_in(user).post(
        reverse("password_change"),
        {"old_password": old, "new_password1": new1, "new_password2": new2},
    )

    assert response.status_code == 200
    assert message in response.content
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_the_password_change_needs_a_login(client):
    response = client.get(reverse("password_change"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_polling_does_not_write_the_session_until_its_refresh_is_due(user):
    client = logged_in(user)
    client.get(PAGE)
    first = expiry(client)

    polls = [client.get(PAGE) for _ in range(3)]
    after_polls = expiry(client)
    # As if the last refresh were a refresh interval ago.
    session = client.session
    session[SESSION_REFRESHED] -= session_refresh_interval()
    session.save()
    aged = expiry(client)
    client.get(PAGE)
    refreshed = expiry(client)

    assert all(poll.status_code == 200 for poll in polls)
    assert after_polls == first
    assert refreshed > aged
    expected = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert abs(refreshed - expected) < timedelta(seconds=30)


def test_the_refresh_is_often_enough_for_the_idle_limit():
    assert 0 < session_refresh_interval() <= settings.SESSION_COOKIE_AGE // 10


def started_ago(client, seconds: int) -> None:
    session = client.session
    session[SESSION_STARTED] = int(time.time()) - seconds
    session[SESSION_REFRESHED] = int(time.time())
    session.save()


def test_a_session_ends_at_its_maximum_age_however_active(user):
    client = logged_in(user)
    client.get(PAGE)

    started_ago(client, settings.VSM_SESSION_MAX_AGE - 60)
    younger = client.get(PAGE)
    started_ago(client, settings.VSM_SESSION_MAX_AGE + 1)
    older = client.get(PAGE)

    assert younger.status_code == 200
    assert older.status_code == 302
    assert older.url.startswith(reverse("login"))
    assert SESSION_KEY not in client.session
