"""What a forecast reads: won deals per calendar day (the history it samples), the
stream's first day, and a cohort of entrants' conversion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Min, Q, Sum

from boards.models import MoveKind
from metrics.fold.timeline import metrics_zone
from metrics.models import CardFlowState, ChannelDay
from metrics.selectors.query import MetricsQuery


def daily_won(query: MetricsQuery, *, days: int) -> list[int]:
    """Won deals on each of the ``days`` full calendar days before ``query.now``'s day
    (settings.TIME_ZONE), oldest first, 0 for a day without a win; each deal once, on
    the day of its final win (docs/metrics.md). One channel's with ``query.channel_key``.
    For metrics.forecasting."""
    last = query.today - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    rows = ChannelDay.objects.filter(value_stream=query.stream, day__gte=first, day__lte=last)
    if query.channel_key is not None:
        rows = rows.filter(channel_key=query.channel_key)
    won = dict(rows.values("day").annotate(n=Sum("won")).order_by().values_list("day", "n"))
    return [won.get(first + timedelta(days=offset), 0) for offset in range(days)]


def stream_first_day(query: MetricsQuery) -> date | None:
    """The calendar day (settings.TIME_ZONE) the stream's first prospect entered, from
    the fold's ChannelDay rows (any channel); None before any. Days before it are no
    history: they are not days on which nothing was won."""
    return ChannelDay.objects.filter(value_stream=query.stream).aggregate(first=Min("day"))["first"]


@dataclass(frozen=True)
class Entrants:
    """A cohort of prospects: those that entered the stream from ``since`` to ``until``
    (calendar days, settings.TIME_ZONE; ``until`` up to now's time of day), the window
    shifted back ``lag_days`` days; by their final state now: how many, how many ended
    won, how many are still open."""

    since: date
    until: date
    lag_days: int
    entered: int
    won: int
    still_open: int


def stream_entrants(query: MetricsQuery, *, lag_days: int) -> Entrants:
    """The cohort of cards whose last ``enter`` into the stream was from the window's
    start (local midnight of its first day, settings.TIME_ZONE) to ``query.now``, both
    moved back ``lag_days`` calendar days (local wall-clock time, whatever daylight
    saving did in between); one channel's with ``query.channel_key``. Counted by their
    final state now (a won deal reopened and lost counts lost; open ones count as
    open). One query on the fold's card states (CardFlowState)."""
    zone = metrics_zone()
    lag = timedelta(days=lag_days)
    since = query.window().start - lag
    # Aware arithmetic in one zone moves the wall clock: the same time of day, lag days earlier.
    until = query.now.astimezone(zone) - lag
    rows = CardFlowState.objects.filter(
        value_stream=query.stream,
        stream_entered_at__gte=datetime.combine(since, time.min, tzinfo=zone),
        stream_entered_at__lte=until,
    )
    if query.channel_key is not None:
        # Channel 0: the cards that arrived through no channel.
        rows = (
            rows.filter(channel_id=query.channel_key)
            if query.channel_key
            else rows.filter(channel_id__isnull=True)
        )
    counts = rows.aggregate(
        entered=Count("pk"),
        won=Count("pk", filter=Q(closed_kind=MoveKind.WON)),
        still_open=Count("pk", filter=Q(is_open=True)),
    )
    return Entrants(since=since, until=until.date(), lag_days=lag_days, **counts)
