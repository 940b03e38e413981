"""The fold: one card's flow state advanced per move, and the deltas it gathers."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection

from boards.models import Column
from metrics.fold.rows import (
    _COLUMN,
    _CYCLE,
    _DURATION_FIELDS,
    _ENTER,
    _HANDOFF,
    _LEAD,
    _LOST,
    _MOVE,
    _REACH_FIELDS,
    _REOPEN,
    _STATE_FIELDS,
    _WON,
    CardState,
)
from metrics.fold.writes import insert_rows, upsert_add
from metrics.models import (
    CardFlowState,
    CardReach,
    ChannelDay,
    ColumnDay,
    ColumnReachCount,
    CycleConversionCount,
    CycleDay,
    FlowDuration,
)
from pdca.models import Cycle

logger = logging.getLogger(__name__)


@dataclass
class Fold:
    """Card states and the deltas gathered while folding moves, written in a few
    statements. Moves are tuples in MOVE_FIELDS order."""

    stream_id: int
    column_cycle: dict[int, int]
    # First column of cycle n+1 -> (cycle n, first column of cycle n), and the reverse
    # first column of cycle n -> (cycle n, first column of cycle n+1): a card that
    # reached both is handed on from cycle n (its funnel), whatever the order.
    closes_funnel: dict[int, tuple[int, int]]
    opens_funnel: dict[int, tuple[int, int]]
    states: dict[int, CardState] = field(default_factory=dict)
    # False for a rebuild: the tables are empty, every state is in memory.
    stored: bool = True
    touched: set[int] = field(default_factory=set)
    column_days: dict[tuple[int, date], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    cycle_days: dict[tuple[int, date], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0])
    )
    channel_days: dict[tuple[int, date], list] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, Decimal(0), 0])
    )
    reach_counts: dict[tuple[int, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0])
    )
    conversions: dict[tuple[int, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    reaches: list[tuple] = field(default_factory=list)
    durations: list[tuple] = field(default_factory=list)

    @classmethod
    def for_stream(cls, stream_id: int) -> Fold:
        cycles = list(
            Cycle.objects.filter(value_stream_id=stream_id)
            .order_by("order")
            .values_list("pk", flat=True)
        )
        first_columns: dict[int, int] = {}
        column_cycle: dict[int, int] = {}
        for column_id, cycle_id in (
            Column.objects.filter(cycle__value_stream_id=stream_id)
            .order_by("cycle__order", "order")
            .values_list("pk", "cycle_id")
        ):
            column_cycle[column_id] = cycle_id
            first_columns.setdefault(cycle_id, column_id)
        closes_funnel, opens_funnel = {}, {}
        for cycle_id, next_cycle_id in zip(cycles, cycles[1:], strict=False):
            if cycle_id in first_columns and next_cycle_id in first_columns:
                first, next_first = first_columns[cycle_id], first_columns[next_cycle_id]
                closes_funnel[next_first] = (cycle_id, first)
                opens_funnel[first] = (cycle_id, next_first)
        return cls(
            stream_id=stream_id,
            column_cycle=column_cycle,
            closes_funnel=closes_funnel,
            opens_funnel=opens_funnel,
        )

    def load(self, card_ids: Iterable[int]) -> None:
        """Read the stored state of these cards (those not in memory yet): flow state,
        first reaches, cycles won in."""
        if not self.stored:
            return
        missing = [card_id for card_id in set(card_ids) if card_id not in self.states]
        for start in range(0, len(missing), 2_000):
            chunk = missing[start : start + 2_000]
            for row in CardFlowState.objects.filter(card_id__in=chunk).values_list(*_STATE_FIELDS):
                self.states[row[0]] = CardState(row)
            for card_id, column_id, channel_key in CardReach.objects.filter(
                card_id__in=chunk
            ).values_list("card_id", "column_id", "channel_key"):
                if card_id in self.states:
                    self.states[card_id].reached[column_id] = channel_key
            for card_id, cycle_id in FlowDuration.objects.filter(
                card_id__in=chunk, kind=_LEAD
            ).values_list("card_id", "cycle_id"):
                if card_id in self.states:
                    self.states[card_id].won.add(cycle_id)

    def _duration(self, move: tuple, state: CardState, kind: str, start: datetime) -> None:
        moved_at = move[4]
        self.durations.append(
            (
                self.stream_id,
                move[1],
                kind,
                state.column_id if kind == _COLUMN else None,
                state.cycle_id,
                move[5] or 0,
                start,
                moved_at,
                max(0, int((moved_at - start).total_seconds())),
                move[0],
            )
        )

    def _reach(self, move: tuple, state: CardState) -> None:
        """The card reached a column: counted only the first time (per card)."""
        column_id = move[3]
        if column_id in state.reached:
            return
        channel_key = move[5] or 0
        state.reached[column_id] = channel_key
        self.reaches.append((self.stream_id, move[1], column_id, channel_key, move[4]))
        self.reach_counts[(column_id, channel_key)][0] += 1
        if column_id in self.closes_funnel:
            cycle_id, first = self.closes_funnel[column_id]
            if first in state.reached:
                self.conversions[(cycle_id, channel_key)][0] += 1
        if column_id in self.opens_funnel:
            cycle_id, next_first = self.opens_funnel[column_id]
            if next_first in state.reached:
                self.conversions[(cycle_id, state.reached[next_first])][0] += 1

    def apply(self, move: tuple) -> None:
        move_id, card_id, kind, to_column_id, moved_at, channel_id, value = move
        day = moved_at.date()
        to_cycle = self.column_cycle[to_column_id]
        channel_key = channel_id or 0
        state = self.states.get(card_id)
        self.touched.add(card_id)
        if kind == _ENTER:
            previous = state
            state = CardState(
                (
                    card_id,
                    self.stream_id,
                    move_id,
                    channel_id,
                    to_column_id,
                    to_cycle,
                    True,
                    moved_at,
                    moved_at,
                    moved_at,
                )
            )
            if previous is not None:  # first reaches and wins stay the card's
                state.reached, state.won = previous.reached, previous.won
            self.states[card_id] = state
            self.column_days[(to_column_id, day)][0] += 1
            self.cycle_days[(to_cycle, day)][0] += 1
            self.channel_days[(channel_key, day)][0] += 1
            self._reach(move, state)
            return
        if state is None:
            self.touched.discard(card_id)
            logger.warning("Move %s of card %s has no entry before it", move_id, card_id)
            return
        if kind in (_MOVE, _HANDOFF):
            self._duration(move, state, _COLUMN, state.column_entered_at)
            self.column_days[(state.column_id, day)][1] += 1
            self.column_days[(to_column_id, day)][0] += 1
            if kind == _HANDOFF:
                self._duration(move, state, _CYCLE, state.cycle_entered_at)
                self.cycle_days[(state.cycle_id, day)][1] += 1
                self.cycle_days[(to_cycle, day)][0] += 1
                state.cycle_id = to_cycle
                state.cycle_entered_at = moved_at
            state.column_id = to_column_id
            state.column_entered_at = moved_at
            self._reach(move, state)
        elif kind in (_WON, _LOST):
            self._duration(move, state, _COLUMN, state.column_entered_at)
            self.column_days[(state.column_id, day)][1] += 1
            cycle_day = self.cycle_days[(state.cycle_id, day)]
            cycle_day[1] += 1
            channel_day = self.channel_days[(channel_key, day)]
            if kind == _WON:
                self._duration(move, state, _CYCLE, state.cycle_entered_at)
                self._duration(move, state, _LEAD, state.stream_entered_at)
                cycle_day[2] += 1
                channel_day[1] += 1
                channel_day[2] += value
                if state.cycle_id not in state.won:  # each card once per cycle
                    state.won.add(state.cycle_id)
                    self.conversions[(state.cycle_id, channel_key)][1] += 1
            else:
                cycle_day[3] += 1
                channel_day[3] += 1
            state.is_open = False
        elif kind == _REOPEN:
            self.column_days[(to_column_id, day)][0] += 1
            self.cycle_days[(to_cycle, day)][0] += 1
            state.is_open = True
            state.column_id = to_column_id
            state.cycle_id = to_cycle
            state.column_entered_at = moved_at
            state.cycle_entered_at = moved_at
        state.last_move_id = move_id

    def write_intervals(self, *, copy: bool) -> None:
        """Write the finished intervals and first reaches gathered so far."""
        insert_rows(FlowDuration, _DURATION_FIELDS, self.durations, copy=copy)
        insert_rows(CardReach, _REACH_FIELDS, self.reaches, copy=copy)
        self.durations.clear()
        self.reaches.clear()

    def write(self, *, rebuild: bool = False) -> None:
        """Write everything gathered: intervals, counters added into their buckets, and
        the touched card states. A rebuild writes into emptied tables: on PostgreSQL
        with COPY."""
        copy = rebuild and connection.vendor == "postgresql"
        self.write_intervals(copy=copy)
        buckets = (
            (ColumnDay, ("column_id", "day"), ("arrivals", "departures"), self.column_days),
            (
                CycleDay,
                ("cycle_id", "day"),
                ("arrivals", "departures", "won", "lost"),
                self.cycle_days,
            ),
            (
                ChannelDay,
                ("channel_key", "day"),
                ("arrivals", "won", "won_value", "lost"),
                self.channel_days,
            ),
            (ColumnReachCount, ("column_id", "channel_key"), ("cards",), self.reach_counts),
            (
                CycleConversionCount,
                ("cycle_id", "channel_key"),
                ("handed_on", "won"),
                self.conversions,
            ),
        )
        for model, keys, values, counters in buckets:
            fields = ("value_stream_id", *keys, *values)
            rows = [(self.stream_id, *key, *counts) for key, counts in counters.items()]
            if copy:
                insert_rows(model, fields, rows, copy=True)
            else:
                upsert_add(model, fields, values, rows)
            counters.clear()
        states = [self.states[card_id].row() for card_id in sorted(self.touched)]
        if rebuild:
            insert_rows(CardFlowState, _STATE_FIELDS, states, copy=copy)
        elif states:
            # One upsert for new and known states: far cheaper than bulk_update's CASE WHEN.
            CardFlowState.objects.bulk_create(
                [CardFlowState(**dict(zip(_STATE_FIELDS, row, strict=True))) for row in states],
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["card"],
                update_fields=[
                    "last_move_id",
                    "column",
                    "cycle",
                    "is_open",
                    "column_entered_at",
                    "cycle_entered_at",
                ],
            )
        self.touched.clear()


def fold_moves(fold: Fold, moves: list[tuple]) -> int:
    """Fold these moves (any order across cards, id order within a card) into the
    fold, skipping those a card's flow state shows as folded already."""
    if not moves:
        return 0
    fold.load(move[1] for move in moves)
    states = fold.states
    applied = 0
    for move in sorted(moves):
        state = states.get(move[1])
        if state is not None and move[0] <= state.last_move_id:
            continue  # folded by an earlier run: a duplicate or overlapping run
        fold.apply(move)
        applied += 1
    return applied
