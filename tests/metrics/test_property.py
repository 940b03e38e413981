"""Property: folding a stream's move log bit by bit, at any points, gives exactly the
aggregates and metrics document that a rebuild from the first event gives.

Hypothesis draws a list of abstract actions (enter, move forwards or backwards inside
the cycle, hand off, win, lose, reopen, edit the card's channel or value), each at a
random gap after the previous one, and after some of them a fold. Every action goes
through the board services; one they refuse (a DomainError, say a full column) is
skipped, as a user's refused drag would be.
"""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from boards.models import Card, CardMove, Column, Outcome
from boards.services import (
    card_close,
    card_create,
    card_move,
    card_reopen,
    card_update,
    handoff_pass,
    value_stream_create,
)
from metrics.models import (
    DurationKind,
    MetricsProgress,
    StreamMetrics,
)
from metrics.selectors import MetricsQuery, stream_metrics_compute
from metrics.services import stream_metrics_advance, stream_metrics_rebuild
from pdca.models import ControlPoint
from tests.metrics.aggregates import aggregate_rows
from tests.support import TEST_SYSTEM, as_actor
from vsm.errors import DomainError
from vsm.models import Channel

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2025, 6, 11, 15, 0, tzinfo=datetime.UTC)
# About 13 weeks before NOW, so some intervals end before the 12-week window starts;
# 30 actions of at most two days each still end before NOW.
START = NOW - datetime.timedelta(days=92)
VALUES = (Decimal("0"), Decimal("100"), Decimal("19.99"), Decimal("250.50"))
_streams = itertools.count()

card_pick = st.integers(min_value=0, max_value=1_000)
channel_pick = st.sampled_from([None, 0, 1])
# A prospect enters the first column of a cycle (mostly the first cycle).
enter = st.tuples(
    st.just("enter"), st.sampled_from([0, 0, 0, 1, 2]), channel_pick, st.sampled_from(VALUES)
)
# An open card moves to a column of its cycle, by order: forwards, backwards, or its
# own column (a reorder, which is no event).
move = st.tuples(st.just("move"), card_pick, st.integers(min_value=0, max_value=3))
handoff = st.tuples(st.just("handoff"), card_pick)
edit = st.tuples(st.just("edit"), card_pick, channel_pick, st.sampled_from(VALUES))
# Weighted by repetition: a board mostly sees moves.
action = st.one_of(
    enter,
    enter,
    move,
    move,
    move,
    move,
    handoff,
    handoff,
    st.tuples(st.just("won"), card_pick),
    st.tuples(st.just("lost"), card_pick),
    st.tuples(st.just("reopen"), card_pick),
    edit,
)
step = st.tuples(
    action,
    st.integers(min_value=0, max_value=48 * 60),  # minutes after the previous action
    st.sampled_from([False, False, False, True]),  # fold after this action?
)


class World:
    """A fresh default stream with two channels and tight WIP limits, so refusals happen."""

    def __init__(self, manager) -> None:
        self.actor = manager
        self.stream = value_stream_create(
            actor=TEST_SYSTEM,
            name=f"Property pumps {next(_streams)}",
            customer_market="Mid-sized manufacturers",
            manager=manager,
        )
        self.channels = [
            Channel.objects.create(value_stream=self.stream, name="Referral"),
            Channel.objects.create(value_stream=self.stream, name="Web form"),
        ]
        columns = Column.objects.filter(cycle__value_stream=self.stream).select_related("cycle")
        self.columns = {(c.cycle.order, c.order): c for c in columns}
        limits = {(1, 2): 2, (1, 3): 1, (1, 4): 1, (2, 1): 1, (2, 2): 1}
        for key, limit in limits.items():
            Column.objects.filter(pk=self.columns[key].pk).update(wip_limit=limit)
        self.control_points = {
            cp.from_cycle.order: (cp.pk, list(cp.criteria.values_list("pk", flat=True)))
            for cp in ControlPoint.objects.filter(
                from_cycle__value_stream=self.stream
            ).select_related("from_cycle")
        }
        self.card_ids: list[int] = []

    def pick(self, index: int, *, open_: bool) -> Card | None:
        outcome = (
            {"outcome": Outcome.OPEN} if open_ else {"outcome__in": [Outcome.WON, Outcome.LOST]}
        )
        cards = list(
            Card.objects.filter(pk__in=self.card_ids, **outcome)
            .select_related("column__cycle")
            .order_by("pk")
        )
        return cards[index % len(cards)] if cards else None

    def channel_id(self, pick: int | None) -> int | None:
        return None if pick is None else self.channels[pick].pk

    def apply(self, action: tuple, at: datetime.datetime) -> None:
        kind, *args = action
        if kind == "enter":
            cycle, channel, value = args
            result = card_create(
                cycle_id=self.columns[(cycle + 1, 1)].cycle_id,
                actor=as_actor(self.actor),
                person_name=f"Prospect {len(self.card_ids)}",
                channel_id=self.channel_id(channel),
                estimated_value=value,
                at=at,
            )
            self.card_ids.append(result.card.pk)
            return
        card = self.pick(args[0], open_=kind != "reopen")
        if card is None:
            return
        if kind == "move":
            target = self.columns[(card.column.cycle.order, args[1] + 1)]
            card_move(card_id=card.pk, to_column_id=target.pk, actor=as_actor(self.actor), at=at)
        elif kind == "handoff":
            if card.column.cycle.order not in self.control_points:
                return  # the last cycle has no control point after it
            control_point_id, criteria = self.control_points[card.column.cycle.order]
            handoff_pass(
                card_id=card.pk,
                control_point_id=control_point_id,
                criteria_met_ids=criteria,
                actor=as_actor(self.actor),
                at=at,
            )
        elif kind in ("won", "lost"):
            outcome = Outcome.WON if kind == "won" else Outcome.LOST
            card_close(card_id=card.pk, outcome=outcome, actor=as_actor(self.actor), at=at)
        elif kind == "reopen":
            card_reopen(card_id=card.pk, actor=as_actor(self.actor), at=at)
        elif kind == "edit":
            channel, value = args[1], args[2]
            card_update(
                card_id=card.pk,
                actor=as_actor(self.actor),
                person_name=card.person_name,
                company=card.company,
                email=card.email,
                channel_id=self.channel_id(channel),
                owner_id=None,
                estimated_value=value,
                notes=card.notes,
                at=at,
            )


def aggregates(stream_id: int) -> dict[str, list[tuple]]:
    """Every aggregate table of the stream, and its fold's progress."""
    return {
        **aggregate_rows(stream_id),
        "progress": [
            MetricsProgress.objects.filter(value_stream_id=stream_id)
            .values_list("last_applied_move_id", "applied_moves", "summary_move_id")
            .get()
        ],
    }


def stored_document(stream_id: int) -> tuple[int, dict]:
    metrics = StreamMetrics.objects.get(value_stream_id=stream_id)
    data = dict(metrics.data)
    data.pop("computed_at")
    return metrics.through_move_id, data


def compute(stream) -> dict:
    return stream_metrics_compute(MetricsQuery(stream=stream, now=NOW)).to_json()


def check_against_the_board(world: World, tables: dict) -> None:
    """Cross-checks of the fold against the board itself, independent of a rebuild."""
    cards = {
        card.pk: card
        for card in Card.objects.filter(pk__in=world.card_ids).select_related("column")
    }
    states = {row[0]: row for row in tables["states"]}
    assert set(states) == set(cards)
    for card_id, card in cards.items():
        _, _, last_move_id, _, column_id, cycle_id, is_open, *_ = states[card_id]
        assert last_move_id == card.moves.order_by("-pk").values_list("pk", flat=True)[0]
        assert (column_id, cycle_id, is_open) == (
            card.column_id,
            card.column.cycle_id,
            card.outcome == Outcome.OPEN,
        )
    # WIP now per column = open cards in it.
    wip: dict[int, int] = {}
    for column_id, _, arrivals, departures, *_ in tables["column_days"]:
        wip[column_id] = wip.get(column_id, 0) + arrivals - departures
    for column in world.columns.values():
        open_cards = sum(
            1 for card in cards.values() if card.column_id == column.pk and card.is_open
        )
        assert wip.get(column.pk, 0) == open_cards, column
    # A card counts once, by its final state: one lead interval per closed card, won
    # or abandoned (lost) as the card is now; the same in the day buckets.
    outcomes = [card.outcome for card in cards.values()]
    leads = [row for row in tables["durations"] if row[1] == DurationKind.LEAD]
    assert sorted(row[2] for row in leads) == sorted(
        card_id for card_id, card in cards.items() if not card.is_open
    )
    assert sum(1 for row in leads if not row[-2]) == outcomes.count(Outcome.WON)
    assert sum(1 for row in leads if row[-2]) == outcomes.count(Outcome.LOST)
    assert sum(row[3] for row in tables["channel_days"]) == outcomes.count(Outcome.WON)
    assert sum(row[5] for row in tables["channel_days"]) == outcomes.count(Outcome.LOST)
    assert sum(row[4] for row in tables["cycle_days"]) == outcomes.count(Outcome.WON)
    assert sum(row[5] for row in tables["cycle_days"]) == outcomes.count(Outcome.LOST)
    # Each card's passage through its current cycle has its outcome there.
    # CardCycle rows: stream, card, cycle, channel, entered, mask, outcome, closed.
    passages = {(row[1], row[2]): row[6] for row in tables["card_cycles"]}
    for card_id, card in cards.items():
        assert passages[(card_id, card.column.cycle_id)] == card.outcome, card_id
    assert all(row[-1] >= 0 for row in tables["durations"])
    # The columns' timeline holds the board's WIP.
    timeline = {row[0]: row[1] for row in tables["column_timeline"]}
    for column in world.columns.values():
        assert timeline.get(column.pk, 0) == wip.get(column.pk, 0), column


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=8, max_size=30))
def test_incremental_fold_equals_a_rebuild(steps):
    # Each example runs in a savepoint rolled back at its end: a fresh database state.
    with transaction.atomic(), mock.patch("django.utils.timezone.now", return_value=NOW):
        manager = get_user_model().objects.create(username=f"property-{next(_streams)}")
        world = World(manager)
        stream_id = world.stream.pk
        at = START
        world.apply(("enter", 0, None, Decimal("100")), at)  # so the log is never empty
        for action, gap_minutes, fold in steps:
            at += datetime.timedelta(minutes=gap_minutes)
            try:
                with transaction.atomic():
                    world.apply(action, at)
            except DomainError as error:
                # Refused (full column, closed card...): the user is told, nothing changes.
                event(f"refused: {type(error).__name__}")
            if fold:
                stream_metrics_advance(stream_id=stream_id)
        stream_metrics_advance(stream_id=stream_id)
        for kind in CardMove.objects.filter(value_stream=world.stream).values_list(
            "kind", flat=True
        ):
            event(f"logged: {kind}")
        incremental = aggregates(stream_id)
        incremental_document = stored_document(stream_id)
        incremental_computed = compute(world.stream)
        check_against_the_board(world, incremental)

        stream_metrics_rebuild(stream_id=stream_id)
        rebuilt = aggregates(stream_id)
        assert incremental == rebuilt
        assert incremental_document == stored_document(stream_id)
        assert incremental_computed == compute(world.stream)
        transaction.set_rollback(True)
