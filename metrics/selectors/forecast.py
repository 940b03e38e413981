"""The history a forecast samples: won deals per calendar day."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Sum

from metrics.models import ChannelDay
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
