""" "Stream changed" after commit: once per stream and transaction, by task name.

The consumers are the tasks named in ``settings.VSM_STREAM_CHANGED_TASKS``; here a
test task stands in for them. Sending is captured at the signature's ``apply_async``
(or, for one test, by the test task itself run eagerly).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from celery import shared_task
from celery.canvas import Signature
from django.core.cache import cache
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerDown

from boards.errors import WipLimitReached
from boards.models import Card, Column
from boards.services import (
    DEFAULT_CYCLES,
    card_create,
    card_move,
    card_set_blocked,
    column_set_wip_limit,
    value_stream_create,
)
from tests.factories import CardFactory, UserFactory
from tests.support import TEST_SYSTEM, as_actor
from vsm.celery import app as celery_app
from vsm.errors import InvalidInput, PermissionRefused
from vsm.events import StreamChange, stream_change_received, stream_changed
from vsm.models import ValueStream

pytestmark = pytest.mark.django_db

CONSUMER = "tests.vsm.stream_changed"
OTHER_CONSUMER = "tests.vsm.stream_changed_too"
MOVES, SETTINGS = StreamChange.MOVES.value, StreamChange.SETTINGS.value

received: list[tuple[int, list[str]]] = []


@shared_task(name=CONSUMER)
def record_stream_changed(stream_id: int, changes: list[str]) -> None:
    received.append((stream_id, changes))


def first_columns(stream: ValueStream) -> list[Column]:
    """The columns of the stream's first cycle, in order."""
    return list(
        Column.objects.filter(cycle__value_stream=stream, cycle__name=DEFAULT_CYCLES[0]).order_by(
            "order"
        )
    )


@pytest.fixture
def consumers(settings):
    settings.VSM_STREAM_CHANGED_TASKS = [CONSUMER]
    return settings


@pytest.fixture
def announced(consumers, django_capture_on_commit_callbacks):
    """``with announced() as sent:`` runs the block, then its on-commit callbacks as a
    commit would, and ``sent`` gets each announcement: (task name, stream id, changes)."""

    @contextmanager
    def capture(*, broker_error: bool = False) -> Iterator[list[tuple[str, int, list[str]]]]:
        sent: list[tuple[str, int, list[str]]] = []
        cache.clear()  # as if each consumer had run: no announcement pending
        with mock.patch.object(Signature, "apply_async", autospec=True) as apply_async:
            if broker_error:
                apply_async.side_effect = [BrokerDown("broker down"), None, None]
            with django_capture_on_commit_callbacks(execute=True):
                yield sent
        sent.extend((call.args[0].task, *call.args[0].args) for call in apply_async.call_args_list)

    return capture


@pytest.fixture
def other_stream(db) -> ValueStream:
    return value_stream_create(
        actor=TEST_SYSTEM,
        name="Water treatment",
        customer_market="Municipal utilities",
        manager=UserFactory(),
    )


def test_many_writes_in_one_transaction_announce_once_with_the_changes_merged(
    announced, stream, manager
):
    data, information, knowledge, _ = first_columns(stream)
    cards = [CardFactory(column=data) for _ in range(3)]

    with announced() as sent, transaction.atomic():
        for card in cards:
            card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))
        card_set_blocked(
            card_id=cards[0].pk, blocked=True, reason="Waiting", actor=as_actor(manager)
        )
        column_set_wip_limit(column_id=knowledge.pk, wip_limit=3, actor=as_actor(manager))

    assert sent == [(CONSUMER, stream.pk, [MOVES, SETTINGS])]


def test_one_announcement_per_stream_of_the_transaction(announced, stream, other_stream, manager):
    here, there = first_columns(stream)[0], first_columns(other_stream)[0]

    with announced() as sent, transaction.atomic():
        card_create(cycle_id=here.cycle_id, actor=TEST_SYSTEM, person_name="Ada Keller")
        card_create(cycle_id=there.cycle_id, actor=TEST_SYSTEM, person_name="Ben Ott")
        card_create(cycle_id=here.cycle_id, actor=TEST_SYSTEM, person_name="Cleo Marx")

    assert sorted(sent) == sorted(
        [(CONSUMER, stream.pk, [MOVES]), (CONSUMER, other_stream.pk, [MOVES])]
    )


def test_each_committed_transaction_announces_again(announced, stream, manager):
    data, information, *_ = first_columns(stream)
    card = CardFactory(column=data)

    with announced() as first:
        card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))
    with announced() as second:
        card_move(card_id=card.pk, to_column_id=data.pk, actor=as_actor(manager))

    assert first == second == [(CONSUMER, stream.pk, [MOVES])]


@pytest.mark.parametrize(
    ("write", "changes"),
    [
        ("create", [MOVES]),
        ("move", [MOVES]),
        ("block", [SETTINGS]),
        ("wip_limit", [SETTINGS]),
    ],
)
def test_each_kind_of_write_says_what_changed(announced, stream, manager, write, changes):
    data, information, *_ = first_columns(stream)
    card = CardFactory(column=data)
    writes = {
        "create": lambda: card_create(
            cycle_id=data.cycle_id, actor=as_actor(manager), person_name="Ada Keller"
        ),
        "move": lambda: card_move(
            card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager)
        ),
        "block": lambda: card_set_blocked(
            card_id=card.pk, blocked=True, reason="Waiting", actor=as_actor(manager)
        ),
        "wip_limit": lambda: column_set_wip_limit(
            column_id=information.pk, wip_limit=2, actor=as_actor(manager)
        ),
    }

    with announced() as sent:
        writes[write]()

    assert sent == [(CONSUMER, stream.pk, changes)]


def test_writes_that_change_nothing_the_consumers_read_announce_nothing(announced, stream, manager):
    data, information, *_ = first_columns(stream)
    first, second = CardFactory(column=data), CardFactory(column=data)

    with announced() as sent:
        # A reorder inside a column is no flow event; the same WIP limit is no change.
        card_move(
            card_id=first.pk, to_column_id=data.pk, after_card_id=second.pk, actor=as_actor(manager)
        )
        column_set_wip_limit(
            column_id=information.pk, wip_limit=information.wip_limit, actor=as_actor(manager)
        )

    assert sent == []


def test_a_rolled_back_transaction_announces_nothing(announced, stream, manager):
    data, information, *_ = first_columns(stream)
    card = CardFactory(column=data)

    with announced() as sent, pytest.raises(RuntimeError), transaction.atomic():
        card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))
        column_set_wip_limit(column_id=information.pk, wip_limit=9, actor=as_actor(manager))
        raise RuntimeError("the caller gave up")

    assert sent == []
    card.refresh_from_db()
    assert card.column_id == data.pk


@pytest.mark.parametrize("refusal", ["full column", "not a manager", "no reason"])
def test_a_refused_write_announces_nothing(announced, stream, member, refusal):
    data, information, *_ = first_columns(stream)
    card = CardFactory(column=data)
    Column.objects.filter(pk=information.pk).update(wip_limit=1)
    CardFactory(column=information)
    refused = {
        "full column": (
            WipLimitReached,
            lambda: card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(member)),
        ),
        "not a manager": (
            PermissionRefused,
            lambda: column_set_wip_limit(
                column_id=information.pk, wip_limit=5, actor=as_actor(member)
            ),
        ),
        "no reason": (
            InvalidInput,
            lambda: card_set_blocked(card_id=card.pk, blocked=True, actor=as_actor(member)),
        ),
    }
    error_class, write = refused[refusal]

    with announced() as sent, pytest.raises(error_class):
        write()

    assert sent == []


def test_a_refusal_after_a_write_in_the_same_transaction_announces_nothing(
    announced, stream, member
):
    data, information, *_ = first_columns(stream)
    card = CardFactory(column=data)

    with announced() as sent, pytest.raises(PermissionRefused), transaction.atomic():
        card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(member))
        column_set_wip_limit(column_id=information.pk, wip_limit=5, actor=as_actor(member))

    assert sent == []


def test_every_consumer_named_in_the_settings_is_sent_the_change(
    announced, consumers, stream, manager
):
    consumers.VSM_STREAM_CHANGED_TASKS = [CONSUMER, OTHER_CONSUMER]
    data = first_columns(stream)[0]

    with announced() as sent:
        card_create(cycle_id=data.cycle_id, actor=as_actor(manager), person_name="Ada Keller")

    assert sent == [(CONSUMER, stream.pk, [MOVES]), (OTHER_CONSUMER, stream.pk, [MOVES])]


def test_no_consumer_no_announcement(announced, consumers, stream, manager):
    consumers.VSM_STREAM_CHANGED_TASKS = []
    data = first_columns(stream)[0]

    with announced() as sent:
        card_create(cycle_id=data.cycle_id, actor=as_actor(manager), person_name="Ada Keller")

    assert sent == []
    assert Card.objects.filter(value_stream=stream).count() == 1


def test_a_broker_error_is_logged_and_the_write_stands(
    announced, consumers, stream, manager, caplog
):
    consumers.VSM_STREAM_CHANGED_TASKS = [CONSUMER, OTHER_CONSUMER]
    data, information, *_ = first_columns(stream)
    card = CardFactory(column=data)

    with (
        caplog.at_level(logging.WARNING, logger="vsm.events"),
        announced(broker_error=True) as sent,
    ):
        card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))

    card.refresh_from_db()
    assert card.column_id == information.pk
    # The first consumer's send failed; the next one was still sent.
    assert sent == [(CONSUMER, stream.pk, [MOVES]), (OTHER_CONSUMER, stream.pk, [MOVES])]
    warnings = [r for r in caplog.records if r.name == "vsm.events"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert CONSUMER in warnings[0].getMessage()
    assert warnings[0].exc_info is not None


@pytest.mark.usefixtures("eager_tasks")
def test_a_registered_consumer_task_runs_with_the_stream_and_changes(
    consumers, stream, manager, django_capture_on_commit_callbacks
):
    data, information, *_ = first_columns(stream)
    card = CardFactory(column=data)
    received.clear()

    with django_capture_on_commit_callbacks(execute=True):
        card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))
        assert received == [], "announced before commit"

    assert received == [(stream.pk, [MOVES])]


def test_the_metrics_consumer_is_named_in_the_settings_and_registered(settings):
    assert "metrics.stream_changed" in settings.VSM_STREAM_CHANGED_TASKS
    assert all(name in celery_app.tasks for name in settings.VSM_STREAM_CHANGED_TASKS)


@pytest.mark.django_db(transaction=True)
class TestRealCommits:
    """Real transactions: the callbacks run when the database commits."""

    @pytest.fixture
    def sent(self, consumers):
        cache.clear()
        with mock.patch.object(Signature, "apply_async", autospec=True) as apply_async:
            yield apply_async

    @staticmethod
    def announcements(apply_async) -> list[tuple[str, int, list[str]]]:
        return [(call.args[0].task, *call.args[0].args) for call in apply_async.call_args_list]

    def test_two_commits_announce_twice_one_commit_once(self, sent, stream, manager):
        data, information, knowledge, _ = first_columns(stream)
        card = CardFactory(column=data)

        card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))
        card_set_blocked(card_id=card.pk, blocked=True, reason="Waiting", actor=as_actor(manager))
        assert self.announcements(sent) == [
            (CONSUMER, stream.pk, [MOVES]),
            (CONSUMER, stream.pk, [SETTINGS]),
        ]
        sent.reset_mock()
        stream_change_received(CONSUMER, stream.pk, [MOVES, SETTINGS])  # the consumer ran

        with transaction.atomic():
            card_move(card_id=card.pk, to_column_id=knowledge.pk, actor=as_actor(manager))
            card_set_blocked(card_id=card.pk, blocked=False, actor=as_actor(manager))
            assert self.announcements(sent) == [], "announced before commit"

        assert self.announcements(sent) == [(CONSUMER, stream.pk, [MOVES, SETTINGS])]

    def test_a_rollback_announces_nothing(self, sent, stream, manager):
        data, information, *_ = first_columns(stream)
        card = CardFactory(column=data)

        with pytest.raises(RuntimeError), transaction.atomic():
            card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))
            raise RuntimeError("the caller gave up")

        assert self.announcements(sent) == []

    def test_outside_a_transaction_the_change_is_announced_at_once(self, sent, stream):
        stream_changed(stream.pk, StreamChange.SETTINGS)

        assert self.announcements(sent) == [(CONSUMER, stream.pk, [SETTINGS])]


def test_a_change_pending_for_a_consumer_is_not_sent_again_until_it_runs(
    stream, consumers, django_capture_on_commit_callbacks
):
    """A burst of moves makes one message per consumer until the consumer starts: each
    message costs the request a broker round trip and the worker a task run."""
    cache.clear()
    with mock.patch.object(Signature, "apply_async", autospec=True) as apply_async:
        for _ in range(3):  # three committed transactions, the consumer not run yet
            with django_capture_on_commit_callbacks(execute=True):
                stream_changed(stream.pk, StreamChange.MOVES)
        assert apply_async.call_count == 1
        with django_capture_on_commit_callbacks(execute=True):
            stream_changed(stream.pk, StreamChange.SETTINGS)  # another kind: sent
        assert [call.args[0].args for call in apply_async.call_args_list] == [
            (stream.pk, [MOVES]),
            (stream.pk, [SETTINGS]),
        ]

        stream_change_received(CONSUMER, stream.pk, [MOVES])  # the consumer starts
        with django_capture_on_commit_callbacks(execute=True):
            stream_changed(stream.pk, StreamChange.MOVES)
        assert apply_async.call_count == 3


def test_a_failed_send_leaves_nothing_pending(
    stream, consumers, django_capture_on_commit_callbacks
):
    cache.clear()
    with mock.patch.object(Signature, "apply_async", autospec=True) as apply_async:
        apply_async.side_effect = [BrokerDown("broker down"), None]
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                stream_changed(stream.pk, StreamChange.MOVES)

    # The second change was sent: the first send's failure did not leave it "pending".
    assert apply_async.call_count == 2
