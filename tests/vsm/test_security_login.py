"""Login throttling (django-axes): failures counted by username and by client address, on
the site's login form and the admin's, a finite cool-off, and a page that says when to
try again.

Axes keeps its counts in the database, so each test starts from none (pytest-django
rolls every test's writes back).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, UserFactory
from vsm.accounts import client_ip_address

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")
ADMIN_LOGIN = reverse("admin:login")


def log_in(client: Client, username: str, password: str, *, address="10.0.0.1", url=LOGIN):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def fail_until_locked(client: Client, usernames, addresses, url=LOGIN):
    """One failed login per (username, address) pair, up to the limit; returns the last answer."""
    answers = [
        log_in(client, username, "wrong password", address=address, url=url)
        for username, address in zip(usernames, addresses, strict=True)
    ]
    assert len(answers) == settings.AXES_FAILURE_LIMIT
    # Below the limit, the form again, with its error.
    assert [answer.status_code for answer in answers[:-1]] == [200] * (len(answers) - 1)
    assert b'name="password"' in answers[0].content
    return answers[-1]


def assert_lockout_page(response) -> None:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert response.status_code == 429
    assert response["Retry-After"] == str(minutes * 60)
    assert "no-store" in response["Cache-Control"]
    # The site's page, styled, that says when to come back.
    assert b'href="/static/css/vsm.css"' in response.content
    assert b"Too many failed log-ins" in response.content
    assert f"Try again in {minutes} minutes".encode() in response.content
    retry_at = datetime.fromisoformat(
        re.search(r'<time datetime="([^"]+)">', response.text).group(1)
    )
    expected = timezone.now() + settings.AXES_COOLOFF_TIME
    assert abs(retry_at - expected) < timedelta(minutes=1)


def test_failures_for_one_username_lock_it_out_from_every_address(client):
    user = UserFactory()
    limit = settings.AXES_FAILURE_LIMIT
    addresses = [f"10.0.1.{n}" for n in range(limit)]

    last_failure = fail_until_locked(client, [user.username] * limit, addresses)
    right_password = log_in(client, user.username, PASSWORD, address="10.0.9.9")

    assert_lockout_page(last_failure)
    assert_lockout_page(right_password)
    assert SESSION_KEY not in client.session


def test_failures_from_one_address_lock_it_out_for_every_username(client):
    user = UserFactory()
    limit = settings.AXES_FAILURE_LIMIT
    usernames = [f"guess{n}" for n in range(limit)]

    fail_until_locked(client, usernames, ["10.0.2.1"] * limit)
    same_address = log_in(client, user.username, PASSWORD, address="10.0.2.1")
    other_address = log_in(Client(), user.username, PASSWORD, address="10.0.2.2")

    assert_lockout_page(same_address)
    assert other_address.status_code == 302
    assert other_address.url == reverse("boards:stream-list")


def test_the_lockout_ends_after_the_cool_off(client):
    user = UserFactory()
    limit = settings.AXES_FAILURE_LIMIT
    fail_until_locked(client, [user.username] * limit, ["10.0.3.1"] * limit)
    assert log_in(client, user.username, PASSWORD, address="10.0.3.1").status_code == 429

    # As if the cool-off had passed since the last failure.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    response = log_in(client, user.username, PASSWORD, address="10.0.3.1")

    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(user.pk)


def test_the_admin_login_is_throttled_and_shares_the_count(client):
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    limit = settings.AXES_FAILURE_LIMIT
    usernames = [admin_user.username] * limit

    last_failure = fail_until_locked(client, usernames, ["10.0.4.1"] * limit, url=ADMIN_LOGIN)
    admin_right_password = log_in(
        client, admin_user.username, PASSWORD, address="10.0.4.2", url=ADMIN_LOGIN
    )
    site_right_password = log_in(Client(), admin_user.username, PASSWORD, address="10.0.4.3")

    assert_lockout_page(last_failure)
    assert_lockout_page(admin_right_password)
    assert_lockout_page(site_right_password)


@pytest.mark.parametrize(
    ("username", "counted_as"),
    # The form normalises a username (NFKC) before it is counted: "²" is "2".
    [("a" * 300, "a" * 255), ("²", "2"), ("x\x00y", None), ("", None)],
    ids=["too long", "unicode digit", "NUL", "empty"],
)
def test_odd_usernames_never_answer_a_500(client, username, counted_as):
    limit = settings.AXES_FAILURE_LIMIT

    answers = [log_in(client, username, "x") for _ in range(limit)]

    if counted_as is None:
        # Refused by the form before any authentication: nothing to count.
        assert [answer.status_code for answer in answers] == [200] * limit
        assert not AccessAttempt.objects.exists()
    else:
        assert [answer.status_code for answer in answers] == [200] * (limit - 1) + [429]
        assert AccessAttempt.objects.get().username == counted_as


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "remote", "expected"),
    [
        (0, "203.0.113.7", "192.0.2.1", "192.0.2.1"),
        (1, "203.0.113.7", "192.0.2.1", "203.0.113.7"),
        # What the client wrote before the proxy's entry is not trusted.
        (1, "198.51.100.1, 203.0.113.7", "192.0.2.1", "203.0.113.7"),
        (2, "198.51.100.1, 203.0.113.7, 10.1.1.1", "192.0.2.1", "203.0.113.7"),
        (1, "", "192.0.2.1", "192.0.2.1"),
        (1, "not-an-address", "192.0.2.1", "192.0.2.1"),
        (1, "fe80::1%eth0", "2001:db8::1", "2001:db8::1"),
        (0, "", "garbage", None),
    ],
)
def test_client_address_behind_trusted_proxies(settings, proxies, forwarded_for, remote, expected):
    settings.VSM_TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().post(LOGIN, HTTP_X_FORWARDED_FOR=forwarded_for, REMOTE_ADDR=remote)

    assert client_ip_address(request) == expected


def test_failures_behind_the_proxy_are_counted_per_client(client, settings):
    settings.VSM_TRUSTED_PROXY_COUNT = 1
    user = UserFactory()
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit):
        client.post(
            LOGIN,
            {"username": f"guess{n}", "password": "wrong"},
            REMOTE_ADDR="172.17.0.1",
            HTTP_X_FORWARDED_FOR="203.0.113.7",
        )

    other_client = Client().post(
        LOGIN,
        {"username": user.username, "password": PASSWORD},
        REMOTE_ADDR="172.17.0.1",
        HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.8",
    )
    garbage = Client().post(
        LOGIN,
        {"username": "guess", "password": "wrong"},
        REMOTE_ADDR="172.17.0.1",
        HTTP_X_FORWARDED_FOR="<script>, '; DROP TABLE",
    )

    assert other_client.status_code == 302
    assert garbage.status_code == 200
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {
        "203.0.113.7",
        "172.17.0.1",
    }


def test_wrong_current_passwords_on_the_password_page_count_as_failed_logins(client):
    user = UserFactory(username="ada")
    client.force_login(user)
    url = reverse("password_change")
    tries = [
        client.post(
            url,
            {
                "old_password": f"guess {n}",
                "new_password1": "N3w-pass!",
                "new_password2": "N3w-pass!",
            },
            REMOTE_ADDR="10.0.0.9",
        )
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]

    assert [t.status_code for t in tries[:-1]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert_lockout_page(tries[-1])
    assert_lockout_page(client.get(url, REMOTE_ADDR="10.0.0.9"))
    # The right password is refused too while locked; the login form refuses it as well.
    right = client.post(
        url,
        {"old_password": PASSWORD, "new_password1": "N3w-pass!", "new_password2": "N3w-pass!"},
        REMOTE_ADDR="10.0.0.9",
    )
    assert right.status_code == 429
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert log_in(Client(), "ada", PASSWORD, address="10.0.0.77").status_code == 429
