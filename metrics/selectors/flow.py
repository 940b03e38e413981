"""Flow through the columns: cumulative flow, Little's law, flow efficiency."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from django.db.models import Sum

from boards.models import Column, ColumnSplit
from metrics.models import ColumnDay
from metrics.selectors.statistics import DAY, Spread
from vsm.models import ValueStream

LITTLE_TOLERANCE = 0.25


def cumulative_flow(*, stream: ValueStream, start: date, end: date) -> dict:
    """Per column and day: cumulative arrivals, cumulative departures and WIP.

    Built from the arrival and departure events, so it exists for any past day.
    """
    columns = list(
        Column.objects.filter(cycle__value_stream=stream).order_by("cycle__order", "order")
    )
    totals: dict[int, list[int]] = {column.pk: [0, 0] for column in columns}
    before = (
        ColumnDay.objects.filter(value_stream=stream, day__lt=start)
        .values("column_id")
        .annotate(a=Sum("arrivals"), d=Sum("departures"))
    )
    for row in before:
        totals[row["column_id"]] = [row["a"], row["d"]]
    by_day: dict[date, dict[int, tuple[int, int]]] = defaultdict(dict)
    for column_id, day, arrivals, departures in ColumnDay.objects.filter(
        value_stream=stream, day__gte=start, day__lte=end
    ).values_list("column_id", "day", "arrivals", "departures"):
        by_day[day][column_id] = (arrivals, departures)
    days = []
    series: dict[int, dict[str, list[int]]] = {
        column.pk: {"arrived": [], "departed": [], "wip": []} for column in columns
    }
    day = start
    while day <= end:
        days.append(day.isoformat())
        for column in columns:
            arrivals, departures = by_day.get(day, {}).get(column.pk, (0, 0))
            totals[column.pk][0] += arrivals
            totals[column.pk][1] += departures
            entry = series[column.pk]
            entry["arrived"].append(totals[column.pk][0])
            entry["departed"].append(totals[column.pk][1])
            entry["wip"].append(totals[column.pk][0] - totals[column.pk][1])
        day += timedelta(days=1)
    return {
        "days": days,
        "columns": [
            {"id": column.pk, "name": column.name, "cycle_id": column.cycle_id, **series[column.pk]}
            for column in columns
        ],
    }


def _littles_law(average_wip: float, departures_per_day: float, mean_days: float | None) -> dict:
    """Little's law: average WIP = throughput x average time in the column."""
    if mean_days is None:
        return {"checked": False, "reason": "no finished visits in the window"}
    expected = departures_per_day * mean_days
    scale = max(average_wip, expected)
    gap = abs(average_wip - expected) / scale if scale else 0.0
    return {
        "checked": True,
        "average_wip": round(average_wip, 2),
        "throughput_x_time": round(expected, 2),
        "relative_gap": round(gap, 3),
        "disagrees": gap > LITTLE_TOLERANCE,
    }


def _flow_efficiency(columns: list[Column], column_spreads: dict[int, Spread]) -> dict | None:
    """Time in doing (or unsplit) columns over all time in the cycle's columns, for the
    visits finished in the window. Only for cycles that split a column into doing/done."""
    if not any(column.split == ColumnSplit.DONE for column in columns):
        return None
    total = sum(column_spreads[column.pk].total for column in columns)
    waiting = sum(
        column_spreads[column.pk].total for column in columns if column.split == ColumnSplit.DONE
    )
    return {
        "active_days": round((total - waiting) / DAY, 2),
        "waiting_days": round(waiting / DAY, 2),
        "efficiency": round((total - waiting) / total, 4) if total else None,
    }
