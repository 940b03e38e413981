"""The stream's columns over time: WIP integrated over time, time at the WIP limit,
time blocked by a full next column. The evidence the constraint detector reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

from metrics.models import ColumnFlowState

# Offsets into a ColumnDay counter list (see Fold.column_days).
WIP_SECONDS, WIP_SQUARED_SECONDS, FULL_SECONDS, BLOCKED_SECONDS = 2, 3, 4, 5
WAITED_SECONDS, WAITED_CARDS, VISITS = 6, 7, 8


def metrics_zone() -> ZoneInfo:
    """The zone whose calendar days and ISO weeks the metrics count in (settings.TIME_ZONE)."""
    return ZoneInfo(settings.TIME_ZONE)


def day_function(zone: ZoneInfo) -> Callable[[datetime], date]:
    """The calendar day of an aware datetime in ``zone``."""
    return lambda moment: moment.astimezone(zone).date()


@dataclass
class Timeline:
    """The fold's clock for one stream and each column's WIP at that time.

    ``advance(t)`` integrates every column from the clock to ``t`` into day buckets: WIP
    x seconds, seconds at or over the WIP limit, seconds full while the next column (in
    flow order, across control points) is full too. Events are folded in log order; an
    event stamped earlier than the clock (a move committed late, or recorded with a
    past time) takes effect at the clock, so time never runs backwards.
    """

    columns: tuple[int, ...]
    limits: dict[int, int | None]
    next_column: dict[int, int | None]
    zone: ZoneInfo
    wip: dict[int, int] = field(default_factory=dict)
    full_total: dict[int, int] = field(default_factory=dict)
    at: datetime | None = None
    touched: bool = False
    _day: date | None = None
    _day_start: int = 0
    _day_end: int | None = None

    @classmethod
    def for_columns(cls, columns: Sequence[tuple[int, int | None]], zone: ZoneInfo) -> Timeline:
        """A timeline of these columns, (id, WIP limit) pairs in flow order: a cycle's
        last column is followed by the next cycle's first."""
        ids = tuple(column_id for column_id, _ in columns)
        return cls(
            columns=ids,
            limits=dict(columns),
            next_column=dict(zip(ids, (*ids[1:], None), strict=True)),
            zone=zone,
        )

    def load(self, stream_id: int) -> None:
        for column_id, wip, full_total, at in ColumnFlowState.objects.filter(
            value_stream_id=stream_id
        ).values_list("column_id", "wip", "full_seconds_total", "timeline_at"):
            if column_id in self.limits:
                self.wip[column_id] = wip
                self.full_total[column_id] = full_total
                if at is not None and (self.at is None or at > self.at):
                    self.at = at

    def _day_bounds(self, second: int) -> tuple[date, int]:
        """The local day of an epoch second, and the epoch second its next day starts."""
        if self._day_end is None or not (self._day_start <= second < self._day_end):
            day = datetime.fromtimestamp(second, self.zone).date()
            start = datetime.combine(day, time.min, tzinfo=self.zone)
            end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=self.zone)
            self._day = day
            self._day_start, self._day_end = int(start.timestamp()), int(end.timestamp())
        assert self._day is not None
        return self._day, self._day_end

    def advance(self, moment: datetime, buckets: dict) -> datetime:
        """Integrate every column up to ``moment`` into ``buckets`` (keyed by (column,
        day), lists of ColumnDay counters); returns the time the event takes effect.

        Whole seconds (timestamps are truncated), so that sums are exact integers
        whatever the batches: an incremental fold and a rebuild give the same numbers.
        """
        if self.at is None:
            self.at = moment
            return moment
        if moment <= self.at:
            return self.at
        self.touched = True
        start, stop = int(self.at.timestamp()), int(moment.timestamp())
        limits, following = self.limits, self.next_column
        busy = [(column_id, wip) for column_id, wip in self.wip.items() if wip]
        full = {
            column_id
            for column_id, wip in busy
            if (limit := limits.get(column_id)) is not None and wip >= limit
        }
        while start < stop:
            day, day_end = self._day_bounds(start)
            end = min(stop, day_end)
            seconds = end - start
            for column_id, wip in busy:
                bucket = buckets[(column_id, day)]
                bucket[WIP_SECONDS] += wip * seconds
                bucket[WIP_SQUARED_SECONDS] += wip * wip * seconds
                if column_id in full:
                    bucket[FULL_SECONDS] += seconds
                    self.full_total[column_id] = self.full_total.get(column_id, 0) + seconds
                    if following.get(column_id) in full:
                        bucket[BLOCKED_SECONDS] += seconds
            start = end
        self.at = moment
        return moment

    def shift(self, column_id: int, change: int) -> None:
        self.touched = True
        self.wip[column_id] = self.wip.get(column_id, 0) + change

    def mark(self, column_id: int) -> int | None:
        """The next column's total full time now: stored on a card entering
        ``column_id``, to measure how long it then waits while the next one is full."""
        following = self.next_column.get(column_id)
        return self.full_total.get(following, 0) if following is not None else None

    def rows(self, stream_id: int) -> list[tuple]:
        """ColumnFlowState rows: column, stream, WIP, total full seconds, clock."""
        return [
            (
                column_id,
                stream_id,
                self.wip.get(column_id, 0),
                self.full_total.get(column_id, 0),
                self.at,
            )
            for column_id in self.columns
        ]
