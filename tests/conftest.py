"""Shared fixtures and the hooks every test run needs.

Tests marked ``postgres`` need PostgreSQL's row locks and triggers: on any other
backend they are skipped with a reason, and the summary names the backend used, so CI
can check that they really ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection, transaction

from boards.models import Column
from boards.services import value_stream_create
from pdca.models import Cycle
from tests.factories import MembershipFactory, UserFactory
from tests.support import SALES, TEST_SYSTEM, column_of
from vsm.celery import app as celery_app
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


# The experiment scenario (tests/pdca/test_experiments.py, tests/metrics/test_experiment_*):
# the stream's team leader runs an experiment on Sales/Buying, on its Information column.
# tests/support.py arranges an experiment at each stage (experiment_running, ...).


@pytest.fixture
def leader(team):
    """A team leader of the stream's default team: runs its experiments."""
    return MembershipFactory(team=team, role=Role.TEAM_LEADER).user


@pytest.fixture
def sales(stream) -> Cycle:
    """The stream's Sales/Buying cycle."""
    return Cycle.objects.get(value_stream=stream, name=SALES)


@pytest.fixture
def sales_information(stream) -> Column:
    """Sales/Buying's Information column: a conversion experiment's scope."""
    return column_of(stream, SALES, "Information")


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


@pytest.fixture
def other_stream(db) -> ValueStream:
    return value_stream_create(
        actor=TEST_SYSTEM,
        name="Private clinics",
        customer_market="Group practices",
        manager=UserFactory(username="clinic-manager"),
    )


ANNOUNCED_TASK = "tests.stream_changed"


@pytest.fixture
def announced(settings, django_capture_on_commit_callbacks):
    """``with announced() as sent:`` the block as one committed transaction: what was
    pending before counts as committed already, and the block's on-commit callbacks run
    and are cleared as a commit would; ``sent`` gets the (stream id, changes) of each
    "stream changed" sent to the consumers."""
    settings.VSM_STREAM_CHANGED_TASKS = [ANNOUNCED_TASK]
    connection = transaction.get_connection()

    @contextmanager
    def capture() -> Iterator[list[tuple[int, list[str]]]]:
        sent: list[tuple[int, list[str]]] = []
        connection.run_on_commit.clear()
        cache.clear()  # as if the consumers had run: no announcement pending
        with (
            mock.patch.object(celery_app, "signature") as signature,
            django_capture_on_commit_callbacks(execute=True),
        ):
            yield sent
        connection.run_on_commit.clear()
        sent.extend(
            call.kwargs["args"]
            for call in signature.call_args_list
            if call.args == (ANNOUNCED_TASK,)
        )

    return capture
