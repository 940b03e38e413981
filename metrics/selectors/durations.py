"""The finished intervals of the window: column visits, cycle passages, lead times."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import connection
from django.db.models import Aggregate, DateField, FloatField, QuerySet
from django.db.models.functions import TruncDate, TruncWeek

from metrics.fold.timeline import metrics_zone
from metrics.models import DurationKind, FlowDuration
from metrics.selectors.query import MetricsQuery, week_start
from metrics.selectors.statistics import PERCENTILES, Spread


@dataclass
class WindowDurations:
    """Spreads of the intervals that ended in the window (abandoned ones left out),
    by column (visits) and cycle (passages); lead times, in all and by the ISO week of
    their end (medians); and the abandoned passages (by cycle) and lead intervals counted
    beside."""

    columns: dict[int, Spread]
    cycles: dict[int, Spread]
    lead: Spread
    # The median lead time (seconds; the mean of the two middle ones for an even count)
    # of the leads that ended in each ISO week.
    lead_median_by_week: dict[date, float]
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
    window = FlowDuration.objects.filter(
        value_stream=query.stream, ended_at__gte=since, ended_at__lte=query.now
    )
    if query.channel_key is not None:
        window = window.filter(channel_key=query.channel_key)

    def spreads(kind: str, group: str) -> tuple[dict[int, Spread], dict[int, int]]:
        """The finished intervals' spreads by ``group``, and the abandoned ones' count."""
        if connection.vendor != "postgresql":
            grouped: dict[int, list[int]] = defaultdict(list)
            abandoned: dict[int, int] = defaultdict(int)
            for key, seconds, lost in window.filter(kind=kind).values_list(
                group, "seconds", "abandoned"
            ):
                if lost:
                    abandoned[key] += 1
                else:
                    grouped[key].append(seconds)
            return (
                defaultdict(Spread, {key: Spread.of(values) for key, values in grouped.items()}),
                dict(abandoned),
            )
        # Nearest rank ceil(p x n / 100) in integers: (p x n + 99) / 100; arrays are 1-based.
        ranks = ", ".join(f"ordered[({p} * n + 99) / 100]" for p in PERCENTILES)
        channel_filter = "AND channel_key = %s " if query.channel_key is not None else ""
        params: list[int | str | datetime] = [query.stream.pk, kind, since, query.now]
        if query.channel_key is not None:
            params.append(query.channel_key)
        finished = "FILTER (WHERE NOT abandoned)"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT key, n, total, abandoned, {ranks} FROM ("
                f"SELECT {group} AS key, COUNT(*) {finished} AS n, "
                f"SUM(seconds) {finished} AS total, "
                f"ARRAY_AGG(seconds ORDER BY seconds) {finished} AS ordered, "
                "COUNT(*) FILTER (WHERE abandoned) AS abandoned "
                f"FROM {FlowDuration._meta.db_table} "
                "WHERE value_stream_id = %s AND kind = %s AND ended_at >= %s AND ended_at <= %s "
                f"{channel_filter}"
                f"GROUP BY {group}) AS grouped",
                params,
            )
            rows = cursor.fetchall()
        return (
            defaultdict(
                Spread,
                {
                    key: Spread(n, int(total), dict(zip(PERCENTILES, ranked, strict=True)))
                    for key, n, total, _, *ranked in rows
                    if n
                },
            ),
            {key: abandoned for key, _, _, abandoned, *_ in rows if abandoned},
        )

    lead_spreads, abandoned_leads = spreads(DurationKind.LEAD, "value_stream_id")
    column_spreads, _ = spreads(DurationKind.COLUMN, "column_id")
    cycle_spreads, abandoned_cycles = spreads(DurationKind.CYCLE, "cycle_id")
    return WindowDurations(
        columns=column_spreads,
        cycles=cycle_spreads,
        lead=lead_spreads[query.stream.pk],
        lead_median_by_week=_lead_medians(window.filter(kind=DurationKind.LEAD, abandoned=False)),
        abandoned_cycles=abandoned_cycles,
        abandoned_leads=abandoned_leads.get(query.stream.pk, 0),
    )


def _lead_medians(leads: QuerySet[FlowDuration]) -> dict[date, float]:
    """The median of the lead times that ended in each ISO week of settings.TIME_ZONE;
    on PostgreSQL in one grouped statement, elsewhere here."""
    zone = metrics_zone()
    if connection.vendor != "postgresql":
        by_week: dict[date, list[int]] = defaultdict(list)
        for seconds, day in leads.values_list("seconds", TruncDate("ended_at", tzinfo=zone)):
            by_week[week_start(day)].append(seconds)
        return {week: statistics.median(values) for week, values in by_week.items()}
    return dict(
        leads.annotate(week=TruncWeek("ended_at", tzinfo=zone, output_field=DateField()))
        .values("week")
        .annotate(median=Median("seconds"))
        .values_list("week", "median")
        .order_by()
    )


class Median(Aggregate):
    """PostgreSQL's percentile_cont(0.5): the middle value, or the mean of the two
    middle ones (as statistics.median)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()
