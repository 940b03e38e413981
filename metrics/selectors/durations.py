"""The finished intervals of the window: column visits, cycle passages, lead times."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate

from metrics.fold.timeline import metrics_zone
from metrics.models import DurationKind, FlowDuration
from metrics.selectors.query import MetricsQuery, week_start
from metrics.selectors.statistics import PERCENTILES, Spread


@dataclass
class WindowDurations:
    """Spreads of the intervals that ended in the window (abandoned ones left out),
    by column (visits) and cycle (passages); lead times, in all and by the ISO week of
    their end; and the abandoned passages (by cycle) and lead intervals counted beside."""

    columns: dict[int, Spread]
    cycles: dict[int, Spread]
    lead_seconds: list[int]
    lead_by_week: dict[date, list[int]]
    abandoned_cycles: dict[int, int] = field(default_factory=dict)
    abandoned_leads: int = 0


def window_durations(query: MetricsQuery) -> WindowDurations:
    """The intervals that ended from the window's start to now, one range of index
    metrics_dur_ended per kind.

    The window holds ~120,000 intervals on a 1,000,000-move log. PostgreSQL sorts each
    column's (cycle's) seconds and hands over only count, total and the values at the
    percentile ranks; elsewhere the seconds come over and are ranked here.
    """
    since = query.start_moment()
    window = FlowDuration.objects.filter(value_stream=query.stream, ended_at__gte=since)
    if query.channel_key is not None:
        window = window.filter(channel_key=query.channel_key)
    finished = window.filter(abandoned=False)

    def spreads(kind: str, group: str) -> dict[int, Spread]:
        if connection.vendor != "postgresql":
            grouped: dict[int, list[int]] = defaultdict(list)
            for key, seconds in finished.filter(kind=kind).values_list(group, "seconds"):
                grouped[key].append(seconds)
            return defaultdict(Spread, {key: Spread.of(values) for key, values in grouped.items()})
        # Nearest rank ceil(p x n / 100) in integers: (p x n + 99) / 100; arrays are 1-based.
        ranks = ", ".join(f"ordered[({p} * n + 99) / 100]" for p in PERCENTILES)
        channel_filter = "AND channel_key = %s " if query.channel_key is not None else ""
        params = [query.stream.pk, kind, since]
        if query.channel_key is not None:
            params.append(query.channel_key)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT key, n, total, {ranks} FROM ("
                f"SELECT {group} AS key, COUNT(*) AS n, SUM(seconds) AS total, "
                "ARRAY_AGG(seconds ORDER BY seconds) AS ordered "
                f"FROM {FlowDuration._meta.db_table} "
                "WHERE value_stream_id = %s AND kind = %s AND ended_at >= %s "
                f"AND NOT abandoned {channel_filter}"
                f"GROUP BY {group}) AS grouped",
                params,
            )
            return defaultdict(
                Spread,
                {
                    key: Spread(n, int(total), dict(zip(PERCENTILES, ranked, strict=True)))
                    for key, n, total, *ranked in cursor.fetchall()
                },
            )

    lead_seconds: list[int] = []
    lead_by_week: dict[date, list[int]] = defaultdict(list)
    for seconds, day in finished.filter(kind=DurationKind.LEAD).values_list(
        "seconds", TruncDate("ended_at", tzinfo=metrics_zone())
    ):
        lead_seconds.append(seconds)
        lead_by_week[week_start(day)].append(seconds)
    abandoned_cycles: dict[int, int] = {}
    abandoned_leads = 0
    for kind, cycle_id, count in (
        window.filter(abandoned=True)
        .values("kind", "cycle_id")
        .annotate(n=Count("id"))
        .values_list("kind", "cycle_id", "n")
    ):
        if kind == DurationKind.CYCLE:
            abandoned_cycles[cycle_id] = count
        elif kind == DurationKind.LEAD:
            abandoned_leads += count
    return WindowDurations(
        columns=spreads(DurationKind.COLUMN, "column_id"),
        cycles=spreads(DurationKind.CYCLE, "cycle_id"),
        lead_seconds=lead_seconds,
        lead_by_week=lead_by_week,
        abandoned_cycles=abandoned_cycles,
        abandoned_leads=abandoned_leads,
    )
