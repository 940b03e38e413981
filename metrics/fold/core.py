"""The fold: one card's flow state advanced per move, and the deltas it gathers."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection

from boards.models import Column
from metrics.fold.rows import (
    _CARD_CYCLE_FIELDS,
    _COLUMN,
    _CYCLE,
    _DURATION_FIELDS,
    _ENTER,
    _HANDOFF,
    _LEAD,
    _LOST,
    _MOVE,
    _REOPEN,
    _STATE_FIELDS,
    _WON,
    CC_CLOSED_AT,
    CC_MASK,
    CC_OUTCOME,
    CardState,
)
from metrics.fold.timeline import (
    VISITS,
    WAITED_CARDS,
    WAITED_SECONDS,
    Timeline,
    day_function,
    metrics_zone,
)
from metrics.fold.writes import insert_rows, upsert_add
from metrics.models import (
    COLUMN_DAY_COUNTERS,
    CardCycle,
    CardFlowState,
    ChannelDay,
    ColumnDay,
    ColumnFlowState,
    CycleDay,
    CycleOutcome,
    FlowDuration,
)
from vsm.timing import timed

logger = logging.getLogger(__name__)

_OPEN, _HANDED_ON = str(CycleOutcome.OPEN), str(CycleOutcome.HANDED_ON)


@dataclass
class Fold:
    """Card states and the deltas gathered while folding moves, written in a few
    statements. Moves are tuples in MOVE_FIELDS order.

    A card counts once, by its final state: a close (won or lost) is counted on its
    day, and a reopen takes it back (its cycle and lead intervals, its won or lost,
    its departure from the cycle). Per-channel numbers count a card under the channel
    it arrived through.
    """

    stream_id: int
    column_cycle: dict[int, int]
    # A column's position in its cycle (0: the first column): its bit in a CardCycle mask.
    column_position: dict[int, int]
    timeline: Timeline
    day_of: Callable[[datetime], date]
    states: dict[int, CardState] = field(default_factory=dict)
    # False for a rebuild: the tables are empty, every state is in memory.
    stored: bool = True
    touched: set[int] = field(default_factory=set)
    column_days: dict[tuple[int, date], list] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(COLUMN_DAY_COUNTERS))
    )
    cycle_days: dict[tuple[int, date], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0])
    )
    channel_days: dict[tuple[int, date], list] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, Decimal(0), 0])
    )
    durations: list[tuple] = field(default_factory=list)
    # Closing moves taken back by a reopen: their cycle and lead intervals are dropped.
    retracted: set[int] = field(default_factory=set)
    # Those whose rows may already be in the table (a rebuild deletes them at its end).
    retracted_written: set[int] = field(default_factory=set)
    timeline_loaded: bool = False
    # What the aggregates depend on besides the log (see layout_key).
    layout: str = ""

    @classmethod
    def for_stream(cls, stream_id: int) -> Fold:
        columns = list(
            Column.objects.filter(cycle__value_stream_id=stream_id)
            .order_by("cycle__order", "order")
            .values_list("pk", "cycle_id", "wip_limit")
        )
        column_cycle: dict[int, int] = {}
        column_position: dict[int, int] = {}
        per_cycle: dict[int, int] = defaultdict(int)
        for column_id, cycle_id, _ in columns:
            column_cycle[column_id] = cycle_id
            column_position[column_id] = per_cycle[cycle_id]
            per_cycle[cycle_id] += 1
        zone = metrics_zone()
        timeline = Timeline.for_columns([(column, limit) for column, _, limit in columns], zone)
        return cls(
            stream_id=stream_id,
            column_cycle=column_cycle,
            column_position=column_position,
            timeline=timeline,
            day_of=day_function(zone),
            layout=layout_key(
                zone.key, [(cycle_id, column_id) for column_id, cycle_id, _ in columns]
            ),
        )

    def load(self, card_ids: Iterable[int]) -> None:
        """Read the stored state of these cards (those not in memory yet): flow state
        and passages through cycles; and, once, the columns' timeline."""
        if not self.stored:
            return
        if not self.timeline_loaded:
            self.timeline.load(self.stream_id)
            self.timeline_loaded = True
        missing = [card_id for card_id in set(card_ids) if card_id not in self.states]
        for start in range(0, len(missing), 2_000):
            chunk = missing[start : start + 2_000]
            for row in CardFlowState.objects.filter(card_id__in=chunk).values_list(*_STATE_FIELDS):
                self.states[row[0]] = CardState(row)
            for row in CardCycle.objects.filter(card_id__in=chunk).values_list(*_CARD_CYCLE_FIELDS):
                if row[1] in self.states:
                    self.states[row[1]].cycles[row[2]] = list(row)

    def _duration(
        self, move: tuple, state: CardState, kind: str, start: datetime, *, abandoned: bool = False
    ) -> int:
        """Record a finished interval; returns its length in whole seconds."""
        moved_at = move[4]
        seconds = max(0, int((moved_at - start).total_seconds()))
        self.durations.append(
            (
                self.stream_id,
                move[1],
                kind,
                state.column_id if kind == _COLUMN else None,
                state.cycle_id,
                state.channel_key,
                start,
                moved_at,
                seconds,
                move[0],
                abandoned,
            )
        )
        return seconds

    def _visit(self, move: tuple, state: CardState, day: date) -> None:
        """A visit to the card's column ended: its interval, and the sums that relate a
        visit's length to the WIP the card found on arriving (queueing, see ColumnDay)."""
        seconds = self._duration(move, state, _COLUMN, state.column_entered_at)
        ahead = state.column_entered_wip
        if ahead is None:
            return
        minutes = seconds // 60
        sums = self.column_days[(state.column_id, day)]
        sums[VISITS] += 1
        sums[VISITS + 1] += ahead
        sums[VISITS + 2] += ahead * ahead
        sums[VISITS + 3] += minutes
        sums[VISITS + 4] += minutes * minutes
        sums[VISITS + 5] += ahead * minutes

    def _enter_cycle(self, state: CardState, cycle_id: int, at: datetime) -> None:
        passage = state.cycles.get(cycle_id)
        if passage is None:
            state.cycles[cycle_id] = [
                self.stream_id,
                state.card_id,
                cycle_id,
                state.channel_key,
                at,
                0,
                _OPEN,
                None,
            ]
        else:  # entering a cycle it left before: the passage goes on
            self._set_outcome(state, cycle_id, _OPEN, None)

    @staticmethod
    def _set_outcome(state: CardState, cycle_id: int, outcome: str, at: datetime | None) -> None:
        """The card's state in a cycle it passed through: open, handed on, won or lost."""
        passage = state.cycles.get(cycle_id)
        if passage is not None:
            passage[CC_OUTCOME], passage[CC_CLOSED_AT] = outcome, at

    def _reach(self, state: CardState, column_id: int) -> None:
        passage = state.cycles[self.column_cycle[column_id]]
        passage[CC_MASK] |= 1 << self.column_position[column_id]

    def _arrive(self, state: CardState, column_id: int, at: datetime) -> None:
        state.column_id = column_id
        state.column_entered_at = at
        state.column_entered_wip = self.timeline.wip.get(column_id, 0)
        self.timeline.shift(column_id, 1)
        state.next_full_mark = self.timeline.mark(column_id)

    def apply(self, move: tuple) -> None:
        move_id, card_id, kind, to_column_id, moved_at, channel_id, value = move
        day = self.day_of(moved_at)
        to_cycle = self.column_cycle[to_column_id]
        state = self.states.get(card_id)
        self.touched.add(card_id)
        self.timeline.advance(moved_at, self.column_days)
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
                    "",
                    None,
                    None,
                    None,
                    None,
                    None,
                )
            )
            if previous is not None:  # its passages through cycles stay the card's
                state.cycles = previous.cycles
            self.states[card_id] = state
            self.column_days[(to_column_id, day)][0] += 1
            self.cycle_days[(to_cycle, day)][0] += 1
            self.channel_days[(state.channel_key, day)][0] += 1
            self._enter_cycle(state, to_cycle, moved_at)
            self._reach(state, to_column_id)
            self._arrive(state, to_column_id, moved_at)
            return
        if state is None:
            self.touched.discard(card_id)
            logger.warning("Move %s of card %s has no entry before it", move_id, card_id)
            return
        from_column_id = state.column_id
        if kind in (_MOVE, _HANDOFF):
            self._visit(move, state, day)
            self.column_days[(from_column_id, day)][1] += 1
            arriving = self.column_days[(to_column_id, day)]
            arriving[0] += 1
            if (
                state.next_full_mark is not None
                and self.timeline.next_column.get(from_column_id) == to_column_id
            ):
                waited = self.timeline.full_total.get(to_column_id, 0) - state.next_full_mark
                if waited > 0:
                    arriving[WAITED_SECONDS] += waited
                    arriving[WAITED_CARDS] += 1
            self.timeline.shift(from_column_id, -1)
            if kind == _HANDOFF:
                self._duration(move, state, _CYCLE, state.cycle_entered_at)
                self.cycle_days[(state.cycle_id, day)][1] += 1
                self.cycle_days[(to_cycle, day)][0] += 1
                self._set_outcome(state, state.cycle_id, _HANDED_ON, moved_at)
                self._enter_cycle(state, to_cycle, moved_at)
                state.cycle_id = to_cycle
                state.cycle_entered_at = moved_at
            self._reach(state, to_column_id)
            self._arrive(state, to_column_id, moved_at)
        elif kind in (_WON, _LOST):
            abandoned = kind == _LOST
            self._visit(move, state, day)
            self._duration(move, state, _CYCLE, state.cycle_entered_at, abandoned=abandoned)
            self._duration(move, state, _LEAD, state.stream_entered_at, abandoned=abandoned)
            self.column_days[(from_column_id, day)][1] += 1
            self._count_close(state, day, kind, value, +1)
            self._set_outcome(state, state.cycle_id, kind, moved_at)
            state.closed_kind, state.closed_at = kind, moved_at
            state.closed_value, state.closed_move_id = value, move_id
            state.is_open = False
            self.timeline.shift(from_column_id, -1)
        elif kind == _REOPEN:
            if state.closed_kind:
                # A close sets its kind, time and move together (above).
                assert state.closed_at is not None and state.closed_move_id is not None
                # The earlier close no longer counts: the card's final state decides.
                self._count_close(
                    state, self.day_of(state.closed_at), state.closed_kind, state.closed_value, -1
                )
                self.retracted.add(state.closed_move_id)
            self._set_outcome(state, to_cycle, _OPEN, None)
            self.column_days[(to_column_id, day)][0] += 1
            state.is_open = True
            state.closed_kind, state.closed_at = "", None
            state.closed_value = state.closed_move_id = None
            state.cycle_id = to_cycle  # the cycle's first start stays: time off counts
            self._arrive(state, to_column_id, moved_at)
        state.last_move_id = move_id

    def _count_close(
        self, state: CardState, day: date, kind: str, value: Decimal | None, sign: int
    ) -> None:
        """Count a close (sign +1) or take it back (sign -1) on the day it happened."""
        cycle_day = self.cycle_days[(state.cycle_id, day)]
        channel_day = self.channel_days[(state.channel_key, day)]
        cycle_day[1] += sign
        if kind == _WON:
            cycle_day[2] += sign
            channel_day[1] += sign
            channel_day[2] += sign * (value or 0)
        else:
            cycle_day[3] += sign
            channel_day[3] += sign

    def write_intervals(self, *, copy: bool) -> None:
        """Write the finished intervals gathered so far, after dropping those of the
        closes a reopen took back. A rebuild (``stored`` False) deletes the taken-back
        rows it wrote in earlier batches once, at the end (``write``)."""
        if self.retracted:
            retracted = self.retracted
            self.durations = [
                row for row in self.durations if row[2] == _COLUMN or row[9] not in retracted
            ]
            self.retracted_written |= retracted
            retracted.clear()
        if self.stored:
            self._delete_retracted()
        insert_rows(FlowDuration, _DURATION_FIELDS, self.durations, copy=copy)
        self.durations.clear()

    def _delete_retracted(self) -> None:
        ids = sorted(self.retracted_written)
        for start in range(0, len(ids), 10_000):
            FlowDuration.objects.filter(
                value_stream_id=self.stream_id, move_id__in=ids[start : start + 10_000]
            ).exclude(kind=_COLUMN).delete()
        self.retracted_written.clear()

    def write(self, *, rebuild: bool = False) -> None:
        """Write everything gathered: intervals, counters added into their buckets, the
        touched card states and passages, and the columns' timeline. A rebuild writes
        into emptied tables: on PostgreSQL with COPY."""
        copy = rebuild and connection.vendor == "postgresql"
        self.write_intervals(copy=copy)
        self._delete_retracted()
        buckets = (
            (ColumnDay, ("column_id", "day"), COLUMN_DAY_COUNTERS, self.column_days),
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
        )
        for model, keys, values, counters in buckets:
            fields = ("value_stream_id", *keys, *values)
            rows = [(self.stream_id, *key, *counts) for key, counts in counters.items()]
            if copy:
                insert_rows(model, fields, rows, copy=True)
            else:
                upsert_add(model, fields, values, rows)
            counters.clear()
        touched = sorted(self.touched)
        states = [self.states[card_id].row() for card_id in touched]
        passages = [
            tuple(passage)
            for card_id in touched
            for passage in self.states[card_id].cycles.values()
        ]
        if rebuild:
            insert_rows(CardFlowState, _STATE_FIELDS, states, copy=copy)
            insert_rows(CardCycle, _CARD_CYCLE_FIELDS, passages, copy=copy)
        else:
            # One upsert for new and known rows: far cheaper than bulk_update's CASE WHEN.
            _upsert(CardFlowState, _STATE_FIELDS, states, unique=["card"])
            _upsert(CardCycle, _CARD_CYCLE_FIELDS, passages, unique=["card", "cycle"])
        if self.timeline.touched:
            _upsert(
                ColumnFlowState,
                ("column_id", "value_stream_id", "wip", "full_seconds_total", "timeline_at"),
                self.timeline.rows(self.stream_id),
                unique=["column"],
            )
            self.timeline.touched = False
        self.touched.clear()


def layout_key(zone: str, columns: Iterable[tuple[int, int]]) -> str:
    """A fingerprint of what a stream's aggregates depend on besides its move log: the
    time zone of their days, and its cycles' columns in flow order (a column's position
    in its cycle is its bit in a CardCycle mask). When it changes (DJANGO_TIME_ZONE,
    or a column added, removed or reordered), the aggregates must be folded again.
    ``columns``: (cycle id, column id) pairs in flow order."""
    layout = ";".join(f"{cycle_id}:{column_id}" for cycle_id, column_id in columns)
    return hashlib.sha1(f"{zone}|{layout}".encode(), usedforsecurity=False).hexdigest()


def stream_layouts() -> dict[int, str]:
    """Every stream's layout_key as it stands, in one query."""
    columns: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for stream_id, cycle_id, column_id in Column.objects.order_by(
        "cycle__value_stream_id", "cycle__order", "order"
    ).values_list("cycle__value_stream_id", "cycle_id", "pk"):
        columns[stream_id].append((cycle_id, column_id))
    zone = metrics_zone().key
    return {stream_id: layout_key(zone, pairs) for stream_id, pairs in columns.items()}


def _upsert(model, fields: tuple[str, ...], rows: list[tuple], *, unique: list[str]) -> None:
    """Insert rows (tuples in ``fields`` order, attribute names), overwriting the rows
    they collide with on the ``unique`` fields."""
    if not rows:
        return
    names = [model._meta.get_field(attname).name for attname in fields]
    model.objects.bulk_create(
        [model(**dict(zip(fields, row, strict=True))) for row in rows],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=unique,
        update_fields=[name for name in names if name not in {*unique, "value_stream"}],
    )


def fold_moves(fold: Fold, moves: list[tuple]) -> int:
    """Fold these moves (any order across cards, id order within a card) into the
    fold, skipping those a card's flow state shows as folded already."""
    if not moves:
        return 0
    with timed("metrics.fold", items=len(moves)):
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
