"""Publishing a task after commit, coalesced by a cache mark, never failing the caller
(vsm.tasks.task_publish): what metrics, webhooks and the intake each rely on.

A test task stands in for theirs; publishing is captured at its ``apply_async`` (or,
by name, at the signature's), and run in-process for the tests that say so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from unittest import mock

import pytest
from celery import shared_task
from celery.canvas import Signature
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerDown

from vsm.tasks import PENDING_SECONDS, task_pending_clear, task_publish

pytestmark = pytest.mark.django_db

TASK_NAME = "tests.vsm.publish_target"
KEY = "tests:publish-target-pending:7"
OTHER_KEY = "tests:publish-target-pending:8"
IF_LOST = "the test's sweeper will"

runs: list[int] = []


@shared_task(name=TASK_NAME)
def publish_target(item_id: int) -> None:
    task_pending_clear(KEY)
    runs.append(item_id)


@pytest.fixture(autouse=True)
def _no_marks() -> Iterator[None]:
    cache.clear()
    runs.clear()
    yield
    cache.clear()


@pytest.fixture
def published() -> Iterator[mock.MagicMock]:
    """The test task's ``apply_async``, captured: nothing runs."""
    with mock.patch.object(publish_target, "apply_async") as apply_async:
        yield apply_async


def slow_failure(*args, **kwargs):
    time.sleep(django_settings.VSM_REDIS_TIMEOUT_SECONDS)
    raise TimeoutError("Timeout reading from socket")


def fast_failure(*args, **kwargs):
    raise ConnectionRefusedError("Connection refused")


def test_it_is_published_only_once_the_transaction_commits(
    published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        task_publish(publish_target, 7, pending_key=KEY, countdown=2.5, if_lost=IF_LOST)
        published.assert_not_called()
        assert cache.get(KEY) is None, "marked before commit"

    assert len(callbacks) == 1
    callbacks[0]()  # the commit
    published.assert_called_once_with((7,), countdown=2.5)
    assert cache.get(KEY) == 1


def test_after_commit_false_publishes_at_once_inside_a_transaction(
    published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST, after_commit=False)
        published.assert_called_once_with((7,), countdown=None)

    assert callbacks == []


def test_two_publishes_before_the_task_starts_publish_once_then_again_after_it_starts(
    published, django_capture_on_commit_callbacks
):
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)
    assert published.call_count == 1

    # Another key is another task's run: not coalesced with this one.
    with django_capture_on_commit_callbacks(execute=True):
        task_publish(publish_target, 8, pending_key=OTHER_KEY, if_lost=IF_LOST)
    assert published.call_count == 2

    task_pending_clear(KEY)  # the task starts
    with django_capture_on_commit_callbacks(execute=True):
        task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)
    assert [call.args[0] for call in published.call_args_list] == [(7,), (8,), (7,)]


def test_the_mark_expires_by_itself(published, django_capture_on_commit_callbacks):
    with (
        mock.patch.object(cache, "add", wraps=cache.add) as add,
        django_capture_on_commit_callbacks(execute=True),
    ):
        task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)

    add.assert_called_once_with(KEY, 1, PENDING_SECONDS)
    assert 0 < PENDING_SECONDS <= 60


def test_without_a_pending_key_every_publish_goes_out(
    published, django_capture_on_commit_callbacks
):
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            task_publish(publish_target, 7, if_lost=IF_LOST)

    assert published.call_count == 3


def test_a_failed_publish_clears_its_mark_is_logged_and_never_raises(
    published, django_capture_on_commit_callbacks, caplog
):
    published.side_effect = [BrokerDown("broker down"), None]

    with (
        caplog.at_level(logging.WARNING, logger="vsm.tasks"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)

    assert cache.get(KEY) is None
    [warning] = [r for r in caplog.records if r.name == "vsm.tasks"]
    assert f"Could not enqueue {TASK_NAME}" in warning.getMessage()
    assert IF_LOST in warning.getMessage()
    assert warning.exc_info is not None

    # So the next publish goes out.
    with django_capture_on_commit_callbacks(execute=True):
        task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)
    assert published.call_count == 2


def test_a_cache_that_is_down_publishes_without_coalescing(
    published, django_capture_on_commit_callbacks
):
    with mock.patch.object(cache, "add", side_effect=fast_failure):
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)

    assert published.call_count == 2


def test_a_cache_that_hangs_publishes_nothing_and_leaves_it_to_the_sweeper(
    published, django_capture_on_commit_callbacks, caplog
):
    with (
        mock.patch.object(cache, "add", side_effect=slow_failure) as add,
        caplog.at_level(logging.WARNING, logger="vsm.tasks"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)

    assert add.call_count == 1
    published.assert_not_called()
    assert IF_LOST in caplog.text


def test_a_broker_that_hangs_leaves_the_mark_to_expire(
    published, django_capture_on_commit_callbacks
):
    published.side_effect = slow_failure

    with (
        mock.patch.object(cache, "delete_many", wraps=cache.delete_many) as delete_many,
        django_capture_on_commit_callbacks(execute=True),
    ):
        task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)

    assert published.call_count == 1
    assert delete_many.call_count == 0  # clearing it would wait on Redis once more
    assert cache.get(KEY) == 1


def test_by_name_it_is_published_through_the_signature(django_capture_on_commit_callbacks):
    with (
        mock.patch.object(Signature, "apply_async", autospec=True) as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        task_publish(TASK_NAME, 7, 3, countdown=1.5, if_lost=IF_LOST)

    [call] = apply_async.call_args_list
    signature = call.args[0]
    assert (signature.task, tuple(signature.args)) == (TASK_NAME, (7, 3))
    assert call.kwargs == {"countdown": 1.5}


@pytest.mark.usefixtures("eager_tasks")
def test_run_in_process_the_task_runs_after_commit_and_clears_its_mark(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        task_publish(TASK_NAME, 7, pending_key=KEY, if_lost=IF_LOST)
        assert runs == [], "ran before commit"

    assert runs == [7]
    assert cache.get(KEY) is None


@pytest.mark.usefixtures("eager_tasks")
def test_run_in_process_a_failing_task_never_fails_the_caller(
    django_capture_on_commit_callbacks, caplog
):
    with (
        mock.patch.object(publish_target, "run", side_effect=RuntimeError("the task failed")),
        caplog.at_level(logging.WARNING, logger="vsm.tasks"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        task_publish(publish_target, 7, if_lost=IF_LOST)

    assert f"Could not enqueue {TASK_NAME}" in caplog.text


@pytest.mark.django_db(transaction=True)
class TestRealCommits:
    """Real transactions: the publish happens when the database commits."""

    def test_a_commit_publishes_and_a_rollback_publishes_nothing_and_marks_nothing(self, published):
        with pytest.raises(RuntimeError), transaction.atomic():
            task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)
            raise RuntimeError("the caller gave up")
        published.assert_not_called()
        assert cache.get(KEY) is None

        with transaction.atomic():
            task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)
            published.assert_not_called()
        published.assert_called_once_with((7,), countdown=None)

    def test_outside_a_transaction_it_is_published_at_once(self, published):
        task_publish(publish_target, 7, pending_key=KEY, if_lost=IF_LOST)

        published.assert_called_once_with((7,), countdown=None)
