"""Shared fixtures and the hooks every test run needs.

Tests marked ``postgres`` need PostgreSQL's row locks and triggers: on any other
backend they are skipped with a reason, and the summary names the backend used, so CI
can check that they really ran.
"""

from __future__ import annotations

import pytest
from django.db import connection

from boards.services import value_stream_create
from tests.factories import MembershipFactory, UserFactory
from tests.support import TEST_SYSTEM
from vsm.models import Role, Team, ValueStream


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(
        reason=f"needs PostgreSQL (row locks, triggers); this run uses {connection.vendor}"
    )
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter) -> None:
    # CI greps for this line to prove the PostgreSQL-only tests ran.
    terminalreporter.write_line(f"VSM test database backend: {connection.vendor}")


@pytest.fixture
def user(db):
    """A user with no role in any stream."""
    return UserFactory()


@pytest.fixture
def manager(db):
    return UserFactory(username="vsm-manager")


@pytest.fixture
def stream(manager) -> ValueStream:
    """A stream with its default team, cycles, columns and control points."""
    return value_stream_create(
        actor=TEST_SYSTEM,
        name="Industrial pumps",
        customer_market="Mid-sized manufacturers",
        manager=manager,
    )


@pytest.fixture
def team(stream) -> Team:
    """The stream's default team, the one its manager joined."""
    return Team.objects.get(value_stream=stream, memberships__user=stream.manager)


@pytest.fixture
def member(team):
    """A plain member of the stream's default team."""
    return MembershipFactory(team=team, role=Role.MEMBER).user


@pytest.fixture
def eager_tasks():
    """Celery tasks run in the calling process, as vsm.settings_test has them by default,
    even when the run points CELERY_BROKER_URL at Redis (CI does): for tests of what a
    task does, not of the worker (tests/metrics/test_worker.py runs real workers)."""
    from vsm.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved
