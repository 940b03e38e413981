"""What a metrics read is asked for: one stream, a period, optional filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypedDict, Unpack

from django.db.models import Min
from django.utils import timezone

from metrics.fold.timeline import metrics_zone
from metrics.models import CycleDay
from metrics.selectors.readmodel import Window
from vsm.models import ValueStream

WINDOW_WEEKS = 12


def week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


class QueryFilters(TypedDict, total=False):
    """The optional fields of a MetricsQuery, as its constructors take them."""

    weeks: int
    cycle_id: int | None
    channel_key: int | None


@dataclass(frozen=True)
class MetricsQuery:
    """A stream's metrics over ``weeks`` full ISO weeks before ``now``'s week, plus that
    week so far, in settings.TIME_ZONE; optionally one cycle's columns only
    (``cycle_id``) and one channel's cards only (``channel_key``: a channel id, 0 for
    cards without a channel).

    Flow per column (WIP, cumulative flow, visits, the constraint) is not split by
    channel: with ``channel_key`` set, the card-level numbers are (durations,
    conversion, throughput, channels, aging), the column-level ones are not.

    Counts and intervals stop at ``now``; card states (open or closed, where each card
    is, its age) are the ones the fold holds, the present's: a ``now`` in the past moves
    the window, it does not replay the board as it stood then.
    """

    stream: ValueStream
    now: datetime
    weeks: int = WINDOW_WEEKS
    cycle_id: int | None = None
    channel_key: int | None = None

    @classmethod
    def for_stream(
        cls, stream: ValueStream, *, now: datetime | None = None, **filters: Unpack[QueryFilters]
    ) -> MetricsQuery:
        return cls(stream=stream, now=now or timezone.now(), **filters)

    @classmethod
    def for_week(
        cls, stream: ValueStream, monday: date, **filters: Unpack[QueryFilters]
    ) -> MetricsQuery:
        """The query whose last full week is the ISO week of ``monday``: ``now`` is the
        next Monday at 00:00 local time, so nothing after that week counts (the weekly
        review and the digest). Raises: ValueError (``monday`` is not a Monday)."""
        if monday.weekday() != 0:
            raise ValueError(f"An ISO week starts on a Monday; {monday} is a {monday:%A}.")
        now = datetime.combine(monday + timedelta(weeks=1), time.min, tzinfo=metrics_zone())
        return cls(stream=stream, now=now, **filters)

    @property
    def today(self) -> date:
        return self.now.astimezone(metrics_zone()).date()

    @property
    def last_day(self) -> date:
        """The last calendar day with counts: today, or yesterday when ``now`` is local
        midnight (a week's or a range's end: nothing of today has happened yet, and the
        day buckets cannot be cut within a day)."""
        local = self.now.astimezone(metrics_zone())
        return self.today - timedelta(days=1) if local.time() == time.min else self.today

    def window(self) -> Window:
        current = week_start(self.today)
        weeks = [current - timedelta(weeks=n) for n in range(self.weeks, 0, -1)]
        start = weeks[0] if weeks else current
        end = max(self.last_day, start)
        return Window(
            time_zone=metrics_zone().key,
            weeks=weeks,
            current_week=current,
            # 0 at a week's end (``now`` the next Monday, 00:00): nothing "so far".
            current_week_days=max(0, (end - current).days + 1),
            start=start,
            end=end,
            days=(end - start).days + 1,
        )

    def start_moment(self) -> datetime:
        """The window's first instant (local midnight of its first day), aware."""
        return datetime.combine(self.window().start, time.min, tzinfo=metrics_zone())


def stream_first_week(stream: ValueStream) -> date:
    """The Monday of the ISO week of the stream's first event, in settings.TIME_ZONE:
    the earliest day the fold counted a card entering one of its cycles (every card's
    first event is one), else, with no event folded yet, the day the stream was created.
    One query (on CycleDay's (stream, day) index: it does not grow with the history)."""
    first = CycleDay.objects.filter(value_stream=stream).aggregate(first=Min("day"))["first"]
    if first is None:
        first = stream.created_at.astimezone(metrics_zone()).date()
    return week_start(first)


def last_full_week(now: datetime | None = None) -> date:
    """The Monday of the last ISO week that is over at ``now`` (default: the present),
    in settings.TIME_ZONE: the latest week a review covers."""
    today = (now or timezone.now()).astimezone(metrics_zone()).date()
    return week_start(today) - timedelta(weeks=1)
