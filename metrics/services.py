"""The metrics fold: advance a stream's running aggregates through new moves.

Cost is proportional to the new moves: each move updates one card's flow state and
a few day buckets. A rebuild runs the very same fold from an empty state, so the
incremental and the rebuilt numbers are identical by construction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Now
from django.utils import timezone

from boards.models import CardMove, Column, MoveKind
from metrics.models import (
    CardFlowState,
    CardReach,
    ChannelDay,
    ColumnDay,
    CycleDay,
    DurationKind,
    FlowDuration,
    MetricsProgress,
    StreamMetrics,
    WeeklySnapshot,
)
from vsm.models import ValueStream

logger = logging.getLogger(__name__)

# A move's transaction cannot outlive this (boards.services bounds it with statement,
# lock and idle timeouts), so a move written more than twice this long ago is settled:
# no move with a smaller id can still appear. See docs/metrics.md.
SETTLE_SECONDS = 60
# The metrics document reads the whole window: under a steady stream of moves it is
# recomputed at most this often, while the fold itself runs after every move.
SUMMARY_MIN_INTERVAL = timedelta(seconds=1)
BATCH_SIZE = 5_000


@dataclass
class _Fold:
    """Deltas gathered while folding a batch of moves, written in a few statements."""

    stream_id: int
    column_cycle: dict[int, int]
    states: dict[int, CardFlowState]
    column_days: dict[tuple[int, date], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    cycle_days: dict[tuple[int, date], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0])
    )
    channel_days: dict[tuple[int, date], list] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, Decimal(0), 0])
    )
    reaches: list[CardReach] = field(default_factory=list)
    durations: list[FlowDuration] = field(default_factory=list)

    def _duration(self, move: CardMove, state: CardFlowState, kind: str, start: datetime) -> None:
        self.durations.append(
            FlowDuration(
                value_stream_id=self.stream_id,
                card_id=move.card_id,
                kind=kind,
                column_id=state.column_id if kind == DurationKind.COLUMN else None,
                cycle_id=state.cycle_id,
                channel_key=move.channel_id or 0,
                started_at=start,
                ended_at=move.moved_at,
                seconds=max(0, int((move.moved_at - start).total_seconds())),
                move_id=move.pk,
            )
        )

    def _reach(self, move: CardMove, state: CardFlowState) -> None:
        self.reaches.append(
            CardReach(
                value_stream_id=self.stream_id,
                card_id=move.card_id,
                column_id=move.to_column_id,
                channel_key=move.channel_id or 0,
                reached_at=move.moved_at,
            )
        )

    def apply(self, move: CardMove) -> None:
        day = move.moved_at.date()
        to_cycle = self.column_cycle[move.to_column_id]
        channel_key = move.channel_id or 0
        state = self.states.get(move.card_id)
        if move.kind == MoveKind.ENTER:
            state = CardFlowState(
                card_id=move.card_id,
                value_stream_id=self.stream_id,
                last_move_id=move.pk,
                channel_id=move.channel_id,
                column_id=move.to_column_id,
                cycle_id=to_cycle,
                is_open=True,
                column_entered_at=move.moved_at,
                cycle_entered_at=move.moved_at,
                stream_entered_at=move.moved_at,
            )
            self.states[move.card_id] = state
            self.column_days[(move.to_column_id, day)][0] += 1
            self.cycle_days[(to_cycle, day)][0] += 1
            self.channel_days[(channel_key, day)][0] += 1
            self._reach(move, state)
            return
        if state is None:
            logger.warning("Move %s of card %s has no entry before it", move.pk, move.card_id)
            return
        if move.kind in (MoveKind.MOVE, MoveKind.HANDOFF):
            self._duration(move, state, DurationKind.COLUMN, state.column_entered_at)
            self.column_days[(state.column_id, day)][1] += 1
            self.column_days[(move.to_column_id, day)][0] += 1
            if move.kind == MoveKind.HANDOFF:
                self._duration(move, state, DurationKind.CYCLE, state.cycle_entered_at)
                self.cycle_days[(state.cycle_id, day)][1] += 1
                self.cycle_days[(to_cycle, day)][0] += 1
                state.cycle_id = to_cycle
                state.cycle_entered_at = move.moved_at
            state.column_id = move.to_column_id
            state.column_entered_at = move.moved_at
            self._reach(move, state)
        elif move.kind in (MoveKind.WON, MoveKind.LOST):
            self._duration(move, state, DurationKind.COLUMN, state.column_entered_at)
            self.column_days[(state.column_id, day)][1] += 1
            cycle_day = self.cycle_days[(state.cycle_id, day)]
            cycle_day[1] += 1
            channel_day = self.channel_days[(channel_key, day)]
            if move.kind == MoveKind.WON:
                self._duration(move, state, DurationKind.CYCLE, state.cycle_entered_at)
                self._duration(move, state, DurationKind.LEAD, state.stream_entered_at)
                cycle_day[2] += 1
                channel_day[1] += 1
                channel_day[2] += move.estimated_value
            else:
                cycle_day[3] += 1
                channel_day[3] += 1
            state.is_open = False
        elif move.kind == MoveKind.REOPEN:
            self.column_days[(move.to_column_id, day)][0] += 1
            self.cycle_days[(to_cycle, day)][0] += 1
            state.is_open = True
            state.column_id = move.to_column_id
            state.cycle_id = to_cycle
            state.column_entered_at = move.moved_at
            state.cycle_entered_at = move.moved_at
        state.last_move_id = move.pk

    def write(self) -> None:
        _upsert_add(
            ColumnDay,
            ("column_id", "day"),
            ("arrivals", "departures"),
            {"value_stream_id": self.stream_id},
            self.column_days,
        )
        _upsert_add(
            CycleDay,
            ("cycle_id", "day"),
            ("arrivals", "departures", "won", "lost"),
            {"value_stream_id": self.stream_id},
            self.cycle_days,
        )
        _upsert_add(
            ChannelDay,
            ("value_stream_id", "channel_key", "day"),
            ("arrivals", "won", "won_value", "lost"),
            {},
            {(self.stream_id, *key): values for key, values in self.channel_days.items()},
        )
        CardReach.objects.bulk_create(self.reaches, ignore_conflicts=True, batch_size=1000)
        FlowDuration.objects.bulk_create(self.durations, batch_size=1000)
        # One upsert for new and known states: far cheaper than bulk_update's CASE WHEN.
        CardFlowState.objects.bulk_create(
            list(self.states.values()),
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


def _upsert_add(model, key_fields, value_fields, constants, rows) -> None:
    """Add counters into day buckets: INSERT ... ON CONFLICT DO UPDATE SET c = c + new.

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


def _fold_moves(stream_id: int, moves: list[CardMove]) -> int:
    """Fold these moves (any order across cards, id order within a card) into the
    aggregates, skipping those a card's flow state shows as folded already."""
    if not moves:
        return 0
    card_ids = {move.card_id for move in moves}
    states = {state.card_id: state for state in CardFlowState.objects.filter(card_id__in=card_ids)}
    column_cycle = dict(
        Column.objects.filter(cycle__value_stream_id=stream_id).values_list("pk", "cycle_id")
    )
    fold = _Fold(stream_id=stream_id, column_cycle=column_cycle, states=states)
    applied = 0
    for move in sorted(moves, key=lambda m: m.pk):
        state = fold.states.get(move.card_id)
        if state is not None and move.pk <= state.last_move_id:
            continue  # folded by an earlier run: a duplicate or overlapping run
        fold.apply(move)
        applied += 1
    fold.write()
    return applied


_MOVE_FIELDS = (
    "id",
    "card_id",
    "kind",
    "to_column_id",
    "moved_at",
    "channel_id",
    "estimated_value",
)


def _moves(
    stream_id: int, *, filter_q: Q | None = None, limit: int | None = None, **filters
) -> list[CardMove]:
    moves = (
        CardMove.objects.filter(value_stream_id=stream_id, **filters)
        .filter(filter_q or Q())
        .only(*_MOVE_FIELDS)
        .order_by("id")
    )
    return list(moves[:limit] if limit else moves)


@dataclass(frozen=True)
class AdvanceResult:
    stream_id: int
    applied: int
    last_applied_move_id: int
    watermark_move_id: int
    skipped_busy: bool = False
    # Seconds until the metrics document may be recomputed, when this run deferred it.
    summary_due_in: float | None = None


def stream_metrics_advance(
    *, stream_id: int, summarize: bool = True, throttle: bool = False
) -> AdvanceResult:
    """Fold every committed move the stream's aggregates have not seen, then refresh
    the stream's metrics document.

    The fold costs in proportion to the new moves; the document reads the window's
    aggregates, so with ``throttle`` it is recomputed at most once per
    SUMMARY_MIN_INTERVAL and the result says when it is due.
    Locks: the stream's progress row (SKIP LOCKED: a run already in progress will see
    these moves, so this one returns at once; bursts of moves coalesce).
    Side effects: writes aggregates, progress and StreamMetrics.
    """
    MetricsProgress.objects.get_or_create(value_stream_id=stream_id)
    with transaction.atomic():
        progress = (
            MetricsProgress.objects.select_for_update(skip_locked=True)
            .filter(value_stream_id=stream_id)
            .first()
        )
        if progress is None:
            return AdvanceResult(stream_id, 0, 0, 0, skipped_busy=True)
        # Moves that committed late, below the last applied one: few or none.
        late = _moves(
            stream_id,
            pk__gt=progress.watermark_move_id,
            pk__lte=progress.last_applied_move_id,
            filter_q=Q(card__cardflowstate__isnull=True)
            | Q(card__cardflowstate__last_move_id__lt=F("id")),
        )
        applied = _fold_moves(stream_id, late)
        # Then the new ones, in batches so a rebuild of a long log stays in memory.
        cursor = progress.last_applied_move_id
        while batch := _moves(stream_id, pk__gt=cursor, limit=BATCH_SIZE):
            applied += _fold_moves(stream_id, batch)
            cursor = batch[-1].pk
        progress.last_applied_move_id = cursor
        settled = CardMove.objects.filter(
            value_stream_id=stream_id,
            pk__gt=progress.watermark_move_id,
            pk__lte=progress.last_applied_move_id,
            recorded_at__lt=Now() - timedelta(seconds=SETTLE_SECONDS * 2),
        ).aggregate(m=Max("id"))["m"]
        if settled:
            progress.watermark_move_id = settled
        progress.applied_moves += applied
        progress.last_run_at = timezone.now()
        summary_due_in = None
        if summarize and progress.summary_move_id != progress.last_applied_move_id:
            now = timezone.now()
            since = now - progress.summary_computed_at if progress.summary_computed_at else None
            if throttle and since is not None and since < SUMMARY_MIN_INTERVAL:
                summary_due_in = (SUMMARY_MIN_INTERVAL - since).total_seconds()
            else:
                _summary_write(stream_id, progress.last_applied_move_id, now)
                progress.summary_move_id = progress.last_applied_move_id
                # Count the interval from the end of the compute: a document slower
                # than the interval would otherwise never be throttled.
                progress.summary_computed_at = timezone.now()
        progress.save()
    return AdvanceResult(
        stream_id,
        applied,
        progress.last_applied_move_id,
        progress.watermark_move_id,
        summary_due_in=summary_due_in,
    )


def _summary_write(stream_id: int, through_move_id: int, now: datetime) -> None:
    from metrics.selectors import stream_metrics_compute

    stream = ValueStream.objects.get(pk=stream_id)
    StreamMetrics.objects.update_or_create(
        value_stream=stream,
        defaults={
            "through_move_id": through_move_id,
            "computed_at": now,
            "data": stream_metrics_compute(stream=stream, now=now),
        },
    )


def stream_metrics_rebuild(*, stream_id: int) -> AdvanceResult:
    """Drop a stream's aggregates and fold its whole move log again from the start.

    Locks: the stream's progress row (waits for a running fold to finish).
    """
    MetricsProgress.objects.get_or_create(value_stream_id=stream_id)
    with transaction.atomic():
        progress = MetricsProgress.objects.select_for_update().get(value_stream_id=stream_id)
        for model in (CardFlowState, ColumnDay, CycleDay, ChannelDay, CardReach, FlowDuration):
            model.objects.filter(value_stream_id=stream_id).delete()
        progress.watermark_move_id = 0
        progress.last_applied_move_id = 0
        progress.applied_moves = 0
        progress.summary_move_id = -1
        progress.save()
    return stream_metrics_advance(stream_id=stream_id)


def streams_lagging() -> list[int]:
    """Streams whose log holds moves the fold has not applied, or whose metrics
    document lags the fold (a deferred recompute was lost): for the sweeper."""
    newest = dict(
        CardMove.objects.values("value_stream_id")
        .annotate(m=Max("id"))
        .values_list("value_stream_id", "m")
    )
    progress = {
        stream_id: (applied, summary)
        for stream_id, applied, summary in MetricsProgress.objects.values_list(
            "value_stream_id", "last_applied_move_id", "summary_move_id"
        )
    }
    return sorted(
        stream_id
        for stream_id, last in newest.items()
        if progress.get(stream_id, (0, 0))[0] < last or progress[stream_id][1] < last
    )


def weekly_snapshot_take(*, stream_id: int, week_start: date | None = None) -> WeeklySnapshot:
    """Keep the stream's current metrics as the snapshot of an ISO week (this week by
    default). Taking it again for the same week replaces it."""
    today = timezone.now().date()
    week_start = week_start or today - timedelta(days=today.weekday())
    stream_metrics_advance(stream_id=stream_id)
    metrics = StreamMetrics.objects.get(value_stream_id=stream_id)
    snapshot, _ = WeeklySnapshot.objects.update_or_create(
        value_stream_id=stream_id,
        week_start=week_start,
        defaults={
            "through_move_id": metrics.through_move_id,
            "taken_at": timezone.now(),
            "data": metrics.data,
        },
    )
    return snapshot
