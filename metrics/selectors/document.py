"""The metrics document of a stream, over the window, from its aggregates."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from boards.models import Card, Column, Outcome
from metrics.models import (
    CardFlowState,
    ChannelDay,
    ColumnDay,
    CycleDay,
    DurationKind,
    FlowDuration,
)
from metrics.selectors.channels import _channel_pareto
from metrics.selectors.constraint import _constraint
from metrics.selectors.conversion import _conversion, _conversion_counts, _reach_counts
from metrics.selectors.flow import _flow_efficiency, _littles_law
from metrics.selectors.statistics import (
    DAY,
    PERCENTILES,
    Spread,
    distribution,
    week_start,
    xmr,
)
from pdca.models import Cycle
from vsm.models import ValueStream

WINDOW_WEEKS = 12


def _weeks(today: date, weeks: int) -> list[date]:
    current = week_start(today)
    return [current - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def stream_metrics_compute(*, stream: ValueStream, now: datetime | None = None) -> dict:
    """The metrics document of a stream, from its aggregates."""
    now = now or timezone.now()
    today = now.date()
    weeks = _weeks(today, WINDOW_WEEKS)
    window_start = weeks[0]
    window_start_dt = datetime.combine(window_start, time.min, tzinfo=now.tzinfo)
    window_days = (today - window_start).days + 1
    week_index = {week: index for index, week in enumerate(weeks)}

    cycles = list(Cycle.objects.filter(value_stream=stream).order_by("order"))
    columns = list(
        Column.objects.filter(cycle__value_stream=stream)
        .select_related("cycle")
        .order_by("cycle__order", "order")
    )
    cycle_columns: dict[int, list[Column]] = defaultdict(list)
    for column in columns:
        cycle_columns[column.cycle_id].append(column)

    column_spreads, cycle_spreads, lead_seconds, lead_by_week = _window_durations(
        stream, window_start_dt
    )

    # Column flow: all-time totals give WIP; the window gives weekly counts.
    column_totals, before_window = {}, {}
    for column_id, arrivals, departures, net_before in (
        ColumnDay.objects.filter(value_stream=stream)
        .values("column_id")
        .annotate(
            a=Sum("arrivals"),
            d=Sum("departures"),
            before=Sum(F("arrivals") - F("departures"), filter=Q(day__lt=window_start)),
        )
        .values_list("column_id", "a", "d", "before")
    ):
        column_totals[column_id] = (arrivals, departures)
        if net_before is not None:
            before_window[column_id] = net_before
    column_weekly: dict[int, dict[str, list[int]]] = {
        column.pk: {"arrivals": [0] * len(weeks), "departures": [0] * len(weeks)}
        for column in columns
    }
    daily_net: dict[int, dict[date, int]] = defaultdict(dict)
    for column_id, day, arrivals, departures in ColumnDay.objects.filter(
        value_stream=stream, day__gte=window_start
    ).values_list("column_id", "day", "arrivals", "departures"):
        index = week_index.get(week_start(day))
        if index is not None and column_id in column_weekly:
            column_weekly[column_id]["arrivals"][index] += arrivals
            column_weekly[column_id]["departures"][index] += departures
        daily_net[column_id][day] = arrivals - departures

    open_states = list(
        CardFlowState.objects.filter(value_stream=stream, is_open=True).values_list(
            "card_id", "column_id", "cycle_id", "column_entered_at", "cycle_entered_at"
        )
    )
    column_entered: dict[int, list[datetime]] = defaultdict(list)
    for _, column_id, _, entered, _ in open_states:
        column_entered[column_id].append(entered)
    blocked_by_column = dict(
        Card.objects.filter(value_stream=stream, outcome=Outcome.OPEN, is_blocked=True)
        .values("column_id")
        .annotate(n=Count("id"))
        .values_list("column_id", "n")
    )

    column_docs = []
    for column in columns:
        arrivals, departures = column_totals.get(column.pk, (0, 0))
        wip_now = arrivals - departures
        start_wip = before_window.get(column.pk, 0)
        wip, wip_sum = start_wip, 0
        day = window_start
        while day <= today:
            wip += daily_net[column.pk].get(day, 0)
            wip_sum += wip
            day += timedelta(days=1)
        average_wip = wip_sum / window_days
        window_departures = sum(column_weekly[column.pk]["departures"])
        visits = column_spreads[column.pk]
        time_in_column = distribution(visits)
        # Little's law takes the exact mean visit, not the rounded one shown.
        mean_visit_days = visits.mean_days
        ages = sorted(
            (now - entered).total_seconds() / DAY for entered in column_entered[column.pk]
        )
        column_docs.append(
            {
                "id": column.pk,
                "name": column.name,
                "cycle_id": column.cycle_id,
                "cycle": column.cycle.name,
                "knowledge_level": column.knowledge_level,
                "split": column.split,
                "wip_limit": column.wip_limit,
                "wip_now": wip_now,
                "wip_at_window_start": start_wip,
                "average_wip": round(average_wip, 2),
                "arrivals_total": arrivals,
                "departures_total": departures,
                "weekly": column_weekly[column.pk],
                "time_in_column": time_in_column,
                "median_age_days": round(statistics.median(ages), 2) if ages else None,
                "blocked_now": blocked_by_column.get(column.pk, 0),
                "littles_law": _littles_law(
                    average_wip, window_departures / window_days, mean_visit_days
                ),
            }
        )

    cycle_days = defaultdict(
        lambda: {
            "arrivals": [0] * len(weeks),
            "departures": [0] * len(weeks),
            "won": [0] * len(weeks),
            "lost": [0] * len(weeks),
        }
    )
    cycle_fields = ("arrivals", "departures", "won", "lost")
    for cycle_id, day, *counts in CycleDay.objects.filter(
        value_stream=stream, day__gte=window_start
    ).values_list("cycle_id", "day", *cycle_fields):
        index = week_index.get(week_start(day))
        if index is None:
            continue
        for name, count in zip(cycle_fields, counts, strict=True):
            cycle_days[cycle_id][name][index] += count

    reach_counts = _reach_counts(stream)
    handed_on, won_from_cycle = _conversion_counts(stream)
    cycle_p85 = {}
    cycle_docs = []
    for position, cycle in enumerate(cycles):
        own_columns = cycle_columns[cycle.pk]
        next_cycle = cycles[position + 1] if position + 1 < len(cycles) else None
        cycle_time = distribution(cycle_spreads[cycle.pk])
        cycle_p85[cycle.pk] = cycle_time["p85"]
        cycle_docs.append(
            {
                "id": cycle.pk,
                "name": cycle.name,
                "wip_now": sum(d["wip_now"] for d in column_docs if d["cycle_id"] == cycle.pk),
                "weekly": cycle_days[cycle.pk],
                "cycle_time": cycle_time,
                "conversion": _conversion(
                    own_columns,
                    handed_on[cycle.pk]
                    if next_cycle and own_columns and cycle_columns[next_cycle.pk]
                    else None,
                    reach_counts,
                    won_from_cycle[cycle.pk],
                ),
                "flow_efficiency": _flow_efficiency(own_columns, column_spreads),
            }
        )

    aging = []
    for card_id, column_id, cycle_id, column_entered, cycle_entered in open_states:
        age_days = (now - cycle_entered).total_seconds() / DAY
        limit = cycle_p85.get(cycle_id)
        if limit is not None and age_days > limit:
            aging.append(
                {
                    "card_id": card_id,
                    "column_id": column_id,
                    "cycle_id": cycle_id,
                    "age_in_cycle_days": round(age_days, 2),
                    "age_in_column_days": round((now - column_entered).total_seconds() / DAY, 2),
                    "cycle_p85_days": limit,
                }
            )
    aging.sort(key=lambda entry: (-entry["age_in_cycle_days"], entry["card_id"]))

    won_weekly = [0] * len(weeks)
    arrivals_weekly = [0] * len(weeks)
    closed_weekly = [0] * len(weeks)
    for day, arrivals, won, lost in ChannelDay.objects.filter(
        value_stream=stream, day__gte=window_start
    ).values_list("day", "arrivals", "won", "lost"):
        index = week_index.get(week_start(day))
        if index is not None:
            won_weekly[index] += won
            arrivals_weekly[index] += arrivals
            closed_weekly[index] += won + lost
    # Rates of weeks in which nothing closed do not exist (None), and XmR skips them;
    # a week with nothing won has a throughput of 0, a real value.
    win_rate_weekly = [
        round(won / closed, 4) if closed else None
        for won, closed in zip(won_weekly, closed_weekly, strict=True)
    ]
    lead_median_weekly = [
        round(statistics.median(lead_by_week[week]) / DAY, 2) if lead_by_week[week] else None
        for week in weeks
    ]
    return {
        "computed_at": now.isoformat(),
        "window": {"weeks": [week.isoformat() for week in weeks], "days": window_days},
        "columns": column_docs,
        "cycles": cycle_docs,
        "stream": {
            "lead_time": distribution(lead_seconds),
            "arrivals_weekly": arrivals_weekly,
            "won_weekly": won_weekly,
            "win_rate_weekly": win_rate_weekly,
            "demand_vs_capacity": {
                "arrivals_per_week": round(statistics.fmean(arrivals_weekly), 2),
                "won_per_week": round(statistics.fmean(won_weekly), 2),
                "departures_per_week": round(statistics.fmean(closed_weekly), 2),
            },
            "xmr": {
                "won_weekly": xmr([float(v) for v in won_weekly]),
                "win_rate_weekly": xmr(win_rate_weekly),
                "lead_time_median_weekly": xmr(lead_median_weekly),
            },
        },
        "aging": {
            "over_cycle_p85": aging[:100],
            "over_cycle_p85_count": len(aging),
            "open_cards": len(open_states),
        },
        "channels": _channel_pareto(stream),
        "constraint": _constraint(column_docs, cycle_columns),
    }


def _window_durations(
    stream: ValueStream, since: datetime
) -> tuple[dict[int, Spread], dict[int, Spread], list[int], dict[date, list[int]]]:
    """The intervals that ended in the window, one range of index metrics_dur_ended per
    kind: the spread of column visits by column and of cycle passages by cycle, and
    the lead times (all, and by the UTC week of their end).

    The window holds ~120,000 intervals on a 1,000,000-move log. PostgreSQL sorts
    each column's (cycle's) seconds and hands over only count, total and the values at
    the percentile ranks; elsewhere the seconds come over and are ranked here.
    """
    window = FlowDuration.objects.filter(value_stream=stream, ended_at__gte=since)

    def spreads(kind: str, group: str) -> dict[int, Spread]:
        if connection.vendor != "postgresql":
            grouped: dict[int, list[int]] = defaultdict(list)
            for key, seconds in window.filter(kind=kind).values_list(group, "seconds"):
                grouped[key].append(seconds)
            return defaultdict(Spread, {key: Spread.of(values) for key, values in grouped.items()})
        # Nearest rank ceil(p x n / 100) in integers: (p x n + 99) / 100; arrays are 1-based.
        ranks = ", ".join(f"ordered[({p} * n + 99) / 100]" for p in PERCENTILES)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT key, n, total, {ranks} FROM ("
                f"SELECT {group} AS key, COUNT(*) AS n, SUM(seconds) AS total, "
                "ARRAY_AGG(seconds ORDER BY seconds) AS ordered "
                f"FROM {FlowDuration._meta.db_table} "
                "WHERE value_stream_id = %s AND kind = %s AND ended_at >= %s "
                f"GROUP BY {group}) AS grouped",
                [stream.pk, kind, since],
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
    for seconds, day in window.filter(kind=DurationKind.LEAD).values_list(
        "seconds", TruncDate("ended_at", tzinfo=UTC)
    ):
        lead_seconds.append(seconds)
        lead_by_week[week_start(day)].append(seconds)
    return (
        spreads(DurationKind.COLUMN, "column_id"),
        spreads(DurationKind.CYCLE, "cycle_id"),
        lead_seconds,
        lead_by_week,
    )
