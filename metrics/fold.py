"""The metrics fold's per-move logic and its writes (used by metrics.services).

A move is a tuple of MOVE_FIELDS. ``Fold.apply`` advances one card's flow state and
gathers the deltas: finished intervals, first reaches, day buckets and all-time
counters; ``Fold.write`` writes them in a few statements. The incremental advance and
the rebuild run the very same ``apply``, so their numbers are identical by
construction; only the writing differs (COPY for a rebuild on PostgreSQL).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Q

from boards.models import CardMove, Column, MoveKind
from metrics.models import (
    CardFlowState,
    CardReach,
    ChannelDay,
    ColumnDay,
    ColumnReachCount,
    CycleConversionCount,
    CycleDay,
    DurationKind,
    FlowDuration,
)
from pdca.models import Cycle

logger = logging.getLogger(__name__)

# Every table the fold writes for a stream, dropped by a rebuild.
AGGREGATES = (
    CardFlowState,
    ColumnDay,
    CycleDay,
    ChannelDay,
    CardReach,
    FlowDuration,
    ColumnReachCount,
    CycleConversionCount,
)

# A move as the fold reads it: a tuple of these fields, in this order.
MOVE_FIELDS = (
    "id",
    "card_id",
    "kind",
    "to_column_id",
    "moved_at",
    "channel_id",
    "estimated_value",
)
_ENTER, _MOVE, _HANDOFF, _WON, _LOST, _REOPEN = (
    str(MoveKind.ENTER),
    str(MoveKind.MOVE),
    str(MoveKind.HANDOFF),
    str(MoveKind.WON),
    str(MoveKind.LOST),
    str(MoveKind.REOPEN),
)
_COLUMN, _CYCLE, _LEAD = str(DurationKind.COLUMN), str(DurationKind.CYCLE), str(DurationKind.LEAD)

_DURATION_FIELDS = (
    "value_stream_id",
    "card_id",
    "kind",
    "column_id",
    "cycle_id",
    "channel_key",
    "started_at",
    "ended_at",
    "seconds",
    "move_id",
)
_REACH_FIELDS = ("value_stream_id", "card_id", "column_id", "channel_key", "reached_at")
_STATE_FIELDS = (
    "card_id",
    "value_stream_id",
    "last_move_id",
    "channel_id",
    "column_id",
    "cycle_id",
    "is_open",
    "column_entered_at",
    "cycle_entered_at",
    "stream_entered_at",
)


class CardState:
    """A card's flow state (a CardFlowState row) plus what the fold needs to count a
    card once: the columns it reached (with the channel key of its first reach) and
    the cycles it was won in."""

    __slots__ = (*_STATE_FIELDS, "reached", "won")

    def __init__(self, row: tuple) -> None:
        (
            self.card_id,
            self.value_stream_id,
            self.last_move_id,
            self.channel_id,
            self.column_id,
            self.cycle_id,
            self.is_open,
            self.column_entered_at,
            self.cycle_entered_at,
            self.stream_entered_at,
        ) = row
        self.reached: dict[int, int] = {}
        self.won: set[int] = set()

    def row(self) -> tuple:
        return (
            self.card_id,
            self.value_stream_id,
            self.last_move_id,
            self.channel_id,
            self.column_id,
            self.cycle_id,
            self.is_open,
            self.column_entered_at,
            self.cycle_entered_at,
            self.stream_entered_at,
        )


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
        stream = {"value_stream_id": self.stream_id}
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
        for model, keys, values, rows in buckets:
            if copy:
                insert_rows(
                    model,
                    ("value_stream_id", *keys, *values),
                    [(self.stream_id, *key, *counts) for key, counts in rows.items()],
                    copy=True,
                )
            elif model is ChannelDay:  # unique per (stream, channel key, day)
                upsert_add(
                    model,
                    ("value_stream_id", *keys),
                    values,
                    {},
                    {(self.stream_id, *key): counts for key, counts in rows.items()},
                )
            else:
                upsert_add(model, keys, values, stream, rows)
            rows.clear()
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


def insert_rows(model, fields: tuple[str, ...], rows: list[tuple], *, copy: bool) -> None:
    """Insert rows (tuples in ``fields`` order): COPY on PostgreSQL when ``copy``,
    else bulk_create (so SQLite stores values exactly as the ORM does)."""
    if not rows:
        return
    if copy:
        columns = ", ".join(model._meta.get_field(name).column for name in fields)
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as stream,
        ):
            for row in rows:
                stream.write_row(row)
        return
    model.objects.bulk_create(
        [model(**dict(zip(fields, row, strict=True))) for row in rows], batch_size=1000
    )


def upsert_add(model, key_fields, value_fields, constants, rows) -> None:
    """Add counters into buckets: INSERT ... ON CONFLICT DO UPDATE SET c = c + new.

    Both PostgreSQL and SQLite speak this; Django's bulk_create can only overwrite.
    """
    if not rows:
        return
    table = model._meta.db_table
    columns = [*constants, *key_fields, *value_fields]
    quote = connection.ops.quote_name
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updates = ", ".join(
        f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in value_fields
    )
    sql_head = f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) VALUES "
    sql_tail = f" ON CONFLICT ({', '.join(quote(c) for c in key_fields)}) DO UPDATE SET {updates}"
    items = list(rows.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            params: list = []
            for key, values in chunk:
                params.extend([*constants.values(), *key, *values])
            cursor.execute(sql_head + ", ".join([placeholders] * len(chunk)) + sql_tail, params)


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


def read_moves(
    stream_id: int, *, filter_q: Q | None = None, limit: int | None = None, **filters
) -> list[tuple]:
    """Moves of the stream as tuples in MOVE_FIELDS order, by id."""
    moves = (
        CardMove.objects.filter(value_stream_id=stream_id, **filters)
        .filter(filter_q or Q())
        .order_by("id")
        .values_list(*MOVE_FIELDS)
    )
    return list(moves[:limit] if limit else moves)
