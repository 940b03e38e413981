"""`seed_demo` outside development: refused unless forced, and then no shared password.

The six months of history take tens of seconds and say nothing about passwords: here a
demo stream's simulation makes its people only (tests/boards/test_demo.py seeds it all).
"""

from __future__ import annotations

import re
from io import StringIO
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from boards.demo import DEMO_PASSWORD, _StreamSimulation

pytestmark = pytest.mark.django_db

PRINTED = ["admin", "mfg-manager", "mfg-coordinator", "mfg-lead-sales", "mfg-member1"]
NOT_PRINTED = ["mfg-member2", "mfg-lead-awareness"]


@pytest.fixture(autouse=True)
def people_only():
    with mock.patch.object(_StreamSimulation, "run", _StreamSimulation._people):
        yield


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    return dict(re.findall(r"^  (\S+)\s+(\S+)\s{2,}", output, re.MULTILINE))


def user(username: str):
    return get_user_model().objects.get(username=username)


def test_seed_demo_runs_with_debug_on_only(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--force"):
        seed()
    assert not get_user_model().objects.exists()

    settings.DEBUG = True
    output = seed()

    # In development, as the README says: one shared password.
    assert f"password for all: {DEMO_PASSWORD}" in output
    for username in PRINTED + NOT_PRINTED:
        assert user(username).check_password(DEMO_PASSWORD), username


def test_forced_seed_gives_random_passwords_printed_once(settings):
    settings.DEBUG = False

    first = seed("--force")
    second = seed("--force")

    passwords = printed_passwords(first)
    assert DEMO_PASSWORD not in first
    assert set(PRINTED) <= passwords.keys()
    assert len(set(passwords.values())) == len(passwords)
    for username, password in passwords.items():
        assert len(password) >= 16, username
        assert user(username).check_password(password), username
        assert not user(username).check_password(DEMO_PASSWORD), username
    # The people no one is told about cannot log in at all.
    for username in NOT_PRINTED:
        assert not user(username).has_usable_password(), username
    # A second run shows no password, and changes none.
    assert set(printed_passwords(second).values()) == {"(unchanged)"}
    assert all(user(name).check_password(password) for name, password in passwords.items())
