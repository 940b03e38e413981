"""What a forecast reads: won deals per calendar day (the history it samples), the
stream's first day, and the entrants' conversion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Min, Q, Sum

from boards.models import MoveKind
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
    """The prospects that entered the stream from ``since`` (the window's first day) to
    now, by their final state now: how many, how many ended won, how many are open."""

    since: date
    entered: int
    won: int
    still_open: int


def stream_entrants(query: MetricsQuery) -> Entrants:
    """The cohort of cards that entered the stream (their last ``enter``) from the
    window's start to ``query.now``, one channel's with ``query.channel_key``, counted
    by their final state (a won deal reopened and lost counts lost). One query on the
    fold's card states (CardFlowState)."""
    rows = CardFlowState.objects.filter(
        value_stream=query.stream,
        stream_entered_at__gte=query.start_moment(),
        stream_entered_at__lte=query.now,
    )
    if query.channel_key is not None:
        rows = rows.filter(channel_id=query.channel_key or None)
    counts = rows.aggregate(
        entered=Count("pk"),
        won=Count("pk", filter=Q(closed_kind=MoveKind.WON)),
        still_open=Count("pk", filter=Q(is_open=True)),
    )
    return Entrants(since=query.window().start, **counts)
