"""Many people drag cards on one board at once: the WIP rule, the order and the log hold.

Real threads, each with its own PostgreSQL connection, released together by a barrier.
Marked ``postgres``: on SQLite row locks are no-ops, so tests/conftest.py skips these.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import pytest
from django.db import connection

from boards.errors import WipLimitReached
from boards.models import Card, CardMove, Column, MoveKind, Outcome
from boards.services import MoveResult, card_move
from tests.factories import CardFactory
from tests.support import COLLABORATION, as_actor, column_of, fill
from vsm.errors import Busy
from vsm.models import ValueStream

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def limited(stream: ValueStream, name: str, *, wip_limit: int | None) -> Column:
    """Collaboration's column ``name``, with its WIP limit set to ``wip_limit``."""
    column = column_of(stream, COLLABORATION, name)
    column.wip_limit = wip_limit
    column.save()
    return column


def run_together(tasks: list[Callable[[], object]]) -> list[object]:
    """Run each task in its own thread, all released at once; return results or errors."""
    barrier = threading.Barrier(len(tasks), timeout=30)
    outcomes: list[object] = [None] * len(tasks)

    def work(index: int, task: Callable[[], object]) -> None:
        try:
            barrier.wait()
            outcomes[index] = task()
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(index, task), daemon=True)
        for index, task in enumerate(tasks)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a move never finished"
    return outcomes


def open_positions(column: Column) -> list[int]:
    cards = Card.objects.filter(column=column, outcome=Outcome.OPEN)
    return list(cards.values_list("position", flat=True))


def test_fifty_simultaneous_moves_into_a_column_of_limit_five(stream, member):
    source = limited(stream, "Data", wip_limit=None)
    target = limited(stream, "Information", wip_limit=5)
    cards = fill(source, 50)

    outcomes = run_together(
        [
            partial(card_move, card_id=c.pk, to_column_id=target.pk, actor=as_actor(member))
            for c in cards
        ]
    )

    moved = sorted(
        c.pk for c, outcome in zip(cards, outcomes, strict=True) if isinstance(outcome, MoveResult)
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(moved) == 5
    assert len(refused) == 45
    assert all(type(error) is WipLimitReached for error in refused), refused
    assert {str(error) for error in refused} == {"Information is at its WIP limit, 5/5"}
    in_target = Card.objects.filter(column=target, outcome=Outcome.OPEN)
    assert sorted(in_target.values_list("id", flat=True)) == moved
    assert Card.objects.filter(column=source, outcome=Outcome.OPEN).count() == 45
    assert Card.objects.filter(value_stream=stream).count() == 50
    assert len(set(open_positions(target))) == 5
    log = CardMove.objects.values_list("card_id", "from_column_id", "to_column_id", "kind")
    assert sorted(log) == [(pk, source.pk, target.pk, MoveKind.MOVE) for pk in moved]


def test_crossing_moves_between_two_columns_neither_deadlock_nor_fail(stream, member):
    left = limited(stream, "Information", wip_limit=None)
    right = limited(stream, "Knowledge", wip_limit=100)
    left_cards = fill(left, 20)
    right_cards = fill(right, 20)
    tasks = []
    for going_right, going_left in zip(left_cards, right_cards, strict=True):
        tasks.append(
            partial(
                card_move, card_id=going_right.pk, to_column_id=right.pk, actor=as_actor(member)
            )
        )
        tasks.append(
            partial(card_move, card_id=going_left.pk, to_column_id=left.pk, actor=as_actor(member))
        )

    outcomes = run_together(tasks)

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    in_left = Card.objects.filter(column=left, outcome=Outcome.OPEN)
    in_right = Card.objects.filter(column=right, outcome=Outcome.OPEN)
    assert sorted(in_left.values_list("id", flat=True)) == sorted(c.pk for c in right_cards)
    assert sorted(in_right.values_list("id", flat=True)) == sorted(c.pk for c in left_cards)
    assert len(set(open_positions(left))) == len(set(open_positions(right))) == 20
    log = CardMove.objects.values_list("card_id", "from_column_id", "to_column_id")
    assert sorted(log) == sorted(
        [(c.pk, left.pk, right.pk) for c in left_cards]
        + [(c.pk, right.pk, left.pk) for c in right_cards]
    )


def test_a_move_that_waits_past_the_lock_timeout_is_refused_as_busy(stream, manager):
    """A column held longer than the move's lock bound gives a retryable refusal, not a 500."""
    source = limited(stream, "Data", wip_limit=None)
    target = limited(stream, "Information", wip_limit=None)
    card = CardFactory(column=source)
    holding = threading.Event()
    release = threading.Event()

    def hold_the_target_column() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                Column.objects.select_for_update(no_key=True).get(pk=target.pk)
                holding.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_target_column, daemon=True)
    holder.start()
    assert holding.wait(timeout=10)
    try:
        with pytest.raises(Busy):
            card_move(card_id=card.pk, to_column_id=target.pk, actor=as_actor(manager))
    finally:
        release.set()
        holder.join(timeout=20)
    card.refresh_from_db()
    assert card.column_id == source.pk
    assert not CardMove.objects.filter(card=card, kind=MoveKind.MOVE).exists()
