"""Flow through the columns: WIP, visits, Little's law, flow over time, cumulative flow,
flow efficiency."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum

from boards.models import Card, Column, ColumnSplit, Outcome
from metrics.fold.timeline import (
    BLOCKED_SECONDS,
    FULL_SECONDS,
    WIP_SECONDS,
    WIP_SQUARED_SECONDS,
    Timeline,
    metrics_zone,
)
from metrics.models import COLUMN_DAY_COUNTERS, CardFlowState, ColumnDay, CycleDay
from metrics.selectors.durations import WindowDurations
from metrics.selectors.query import MetricsQuery, week_start
from metrics.selectors.readmodel import (
    ColumnFlow,
    ColumnMetrics,
    FlowEfficiency,
    LittlesLaw,
    WeeklySeries,
    Window,
)
from metrics.selectors.statistics import DAY, Spread, distribution

LITTLE_TOLERANCE = 0.25
MINUTES_PER_DAY = 1_440
VISIT_SUMS = COLUMN_DAY_COUNTERS[COLUMN_DAY_COUNTERS.index("visits") :]


def weekly_series(window: Window, by_day: Mapping[date, int | Decimal]) -> WeeklySeries:
    """Sum day values (counts, or amounts) into the window's full weeks and the current
    week so far."""
    index = {week: position for position, week in enumerate(window.weeks)}
    values: list[int | Decimal] = [0] * len(window.weeks)
    so_far: int | Decimal = 0
    for day, value in by_day.items():
        monday = week_start(day)
        if monday == window.current_week:
            so_far += value
        elif monday in index:
            values[index[monday]] += value
    return WeeklySeries(values=values, so_far=so_far)


@dataclass
class _ColumnWindow:
    arrivals: dict[date, int]
    departures: dict[date, int]
    net: dict[date, int]
    wip_seconds: float = 0.0
    wip_squared_seconds: float = 0.0
    full_seconds: float = 0.0
    blocked_seconds: float = 0.0
    waited_seconds: float = 0.0
    waited_cards: int = 0
    # Sums over the visits that ended in the window (see ColumnDay): n, w, w^2, d, d^2, wd.
    visit_sums: list[int] = field(default_factory=lambda: [0] * 6)


@dataclass(frozen=True)
class OpenCard:
    card_id: int
    column_id: int
    cycle_id: int
    channel_key: int
    column_entered_at: datetime
    cycle_entered_at: datetime


def open_cards(query: MetricsQuery) -> list[OpenCard]:
    """The stream's open cards as the fold last saw them (one read for the ages of the
    columns and the aging list), leaving out those that entered their column after
    ``query.now`` (a past query cannot place them: they would have negative ages)."""
    return [
        OpenCard(card_id, column_id, cycle_id, channel_id or 0, column_entered, cycle_entered)
        for card_id, column_id, cycle_id, channel_id, column_entered, cycle_entered in (
            CardFlowState.objects.filter(
                value_stream=query.stream, is_open=True, column_entered_at__lte=query.now
            ).values_list(
                "card_id",
                "column_id",
                "cycle_id",
                "channel_id",
                "column_entered_at",
                "cycle_entered_at",
            )
        )
    ]


def column_metrics(
    query: MetricsQuery,
    window: Window,
    columns: list[Column],
    durations: WindowDurations,
    cards: list[OpenCard],
) -> list[ColumnMetrics]:
    """Per column, in flow order: WIP now and over the window, arrivals and departures
    by week, time in column, age of its open cards, Little's law, flow over time."""
    stream = query.stream
    now = query.now
    start_moment = query.start_moment()
    window_seconds = max((now - start_moment).total_seconds(), 1.0)
    totals, before = {}, {}
    for column_id, arrivals, departures, net_before in (
        ColumnDay.objects.filter(value_stream=stream, day__lte=window.end)
        .values("column_id")
        .annotate(
            a=Sum("arrivals"),
            d=Sum("departures"),
            before=Sum(F("arrivals") - F("departures"), filter=Q(day__lt=window.start)),
        )
        .values_list("column_id", "a", "d", "before")
    ):
        totals[column_id] = (arrivals, departures)
        before[column_id] = net_before or 0
    days: dict[int, _ColumnWindow] = defaultdict(
        lambda: _ColumnWindow(defaultdict(int), defaultdict(int), defaultdict(int))
    )
    for row in ColumnDay.objects.filter(
        value_stream=stream, day__gte=window.start, day__lte=window.end
    ).values_list("column_id", "day", *COLUMN_DAY_COUNTERS):
        (
            column_id,
            day,
            arrivals,
            departures,
            wip_s,
            wip2_s,
            full_s,
            blocked_s,
            waited_s,
            waited,
            *visit_sums,
        ) = row
        entry = days[column_id]
        entry.arrivals[day] += arrivals
        entry.departures[day] += departures
        entry.net[day] += arrivals - departures
        entry.wip_seconds += wip_s
        entry.wip_squared_seconds += wip2_s
        entry.full_seconds += full_s
        entry.blocked_seconds += blocked_s
        entry.waited_seconds += waited_s
        entry.waited_cards += waited
        entry.visit_sums = [a + b for a, b in zip(entry.visit_sums, visit_sums, strict=True)]
    _add_time_since_last_event(query, window, columns, days)
    entered: dict[int, list[datetime]] = defaultdict(list)
    for card in cards:
        entered[card.column_id].append(card.column_entered_at)
    blocked = dict(
        Card.objects.filter(value_stream=stream, outcome=Outcome.OPEN, is_blocked=True)
        .values("column_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("column_id", "n")
    )
    result = []
    for column in columns:
        arrivals, departures = totals.get(column.pk, (0, 0))
        entry = days[column.pk]
        start_wip = before.get(column.pk, 0)
        wip, wip_sum, day = start_wip, 0, window.start
        while day <= window.end:
            wip += entry.net.get(day, 0)
            wip_sum += wip
            day += timedelta(days=1)
        average_wip = wip_sum / window.days
        arrivals_weekly = weekly_series(window, entry.arrivals)
        departures_weekly = weekly_series(window, entry.departures)
        window_departures = sum(departures_weekly.values) + departures_weekly.so_far
        visits = durations.columns[column.pk]
        ages = sorted((now - moment).total_seconds() / DAY for moment in entered[column.pk])
        result.append(
            ColumnMetrics(
                id=column.pk,
                name=column.name,
                cycle_id=column.cycle_id,
                cycle=column.cycle.name,
                knowledge_level=column.knowledge_level,
                split=column.split,
                wip_limit=column.wip_limit,
                wip_now=arrivals - departures,
                wip_at_window_start=start_wip,
                average_wip=round(average_wip, 2),
                arrivals_total=arrivals,
                departures_total=departures,
                arrivals_weekly=arrivals_weekly,
                departures_weekly=departures_weekly,
                time_in_column=distribution(visits),
                median_age_days=round(statistics.median(ages), 2) if ages else None,
                blocked_now=blocked.get(column.pk, 0),
                # Little's law takes the exact mean visit, not the rounded one shown.
                littles_law=littles_law(
                    average_wip, window_departures / window.days, visits.mean_days
                ),
                flow=_column_flow(column, entry, window_seconds),
            )
        )
    return result


def _add_time_since_last_event(
    query: MetricsQuery, window: Window, columns: list[Column], days: dict[int, _ColumnWindow]
) -> None:
    """The fold integrates each column up to the stream's last event; from there to now
    nothing changed: the fold's own timeline, loaded as it left it, integrates that
    time too (into scratch buckets, of which the window's days are added)."""
    timeline = Timeline.for_columns(
        [(column.pk, column.wip_limit) for column in columns], metrics_zone()
    )
    timeline.load(query.stream.pk)
    if timeline.at is None:
        return
    buckets: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0] * len(COLUMN_DAY_COUNTERS))
    timeline.advance(query.now, buckets)
    for (column_id, day), counts in buckets.items():
        if window.start <= day <= window.end:
            entry = days[column_id]
            entry.wip_seconds += counts[WIP_SECONDS]
            entry.wip_squared_seconds += counts[WIP_SQUARED_SECONDS]
            entry.full_seconds += counts[FULL_SECONDS]
            entry.blocked_seconds += counts[BLOCKED_SECONDS]


def _queueing(visit_sums: list[int]) -> tuple[float | None, float | None]:
    """From the visits that ended in the window: the least-squares slope of a visit's
    length on the WIP the card found on arriving, in days per card found ahead, and the
    Pearson correlation of the two. None with fewer than two visits or no spread.

    In a queue each card ahead adds its service time over the number of people serving
    (1 / the column's capacity per day); in a delay (waiting for the customer) a
    visit's length does not depend on the cards ahead: about 0."""
    n, w, w2, d, d2, wd = visit_sums
    if n < 2:
        return None, None
    var_w = w2 / n - (w / n) ** 2
    var_d = d2 / n - (d / n) ** 2
    if var_w <= 0 or var_d <= 0:
        return None, None
    covariance = wd / n - (w / n) * (d / n)
    # The fold sums whole minutes.
    return max(0.0, covariance / var_w) / MINUTES_PER_DAY, covariance / math.sqrt(var_w * var_d)


def _column_flow(column: Column, entry: _ColumnWindow, window_seconds: float) -> ColumnFlow:
    limited = column.wip_limit is not None
    mean = entry.wip_seconds / window_seconds
    variance = max(0.0, entry.wip_squared_seconds / window_seconds - mean * mean)
    per_card_ahead, correlation = _queueing(entry.visit_sums)
    # Demand (visits per day) x days per card ahead = demand / capacity: utilisation.
    utilisation = (
        entry.visit_sums[0] / (window_seconds / DAY) * per_card_ahead
        if per_card_ahead is not None
        else None
    )
    return ColumnFlow(
        days_per_card_ahead=round(per_card_ahead, 4) if per_card_ahead is not None else None,
        queue_correlation=round(correlation, 3) if correlation is not None else None,
        utilisation=round(utilisation, 3) if utilisation is not None else None,
        time_weighted_wip=round(mean, 3),
        wip_dispersion=round(variance / mean, 3) if mean > 0 else None,
        at_limit_share=round(entry.full_seconds / window_seconds, 4) if limited else None,
        blocked_share=round(entry.blocked_seconds / window_seconds, 4) if limited else None,
        waited_cards=entry.waited_cards,
        waited_days_total=round(entry.waited_seconds / DAY, 2),
        waited_days_mean=round(entry.waited_seconds / entry.waited_cards / DAY, 2)
        if entry.waited_cards
        else None,
    )


def littles_law(
    average_wip: float, departures_per_day: float, mean_days: float | None
) -> LittlesLaw:
    """Little's law: average WIP = throughput x average time in the column."""
    if mean_days is None:
        return LittlesLaw(checked=False, reason="no finished visits in the window")
    expected = departures_per_day * mean_days
    scale = max(average_wip, expected)
    gap = abs(average_wip - expected) / scale if scale else 0.0
    return LittlesLaw(
        checked=True,
        average_wip=round(average_wip, 2),
        throughput_x_time=round(expected, 2),
        relative_gap=round(gap, 3),
        disagrees=gap > LITTLE_TOLERANCE,
    )


def flow_efficiency(
    columns: list[Column], column_spreads: dict[int, Spread]
) -> FlowEfficiency | None:
    """Time in doing (or unsplit) columns over all time in the cycle's columns, for the
    visits finished in the window. Only for cycles that split a column into doing/done."""
    if not any(column.split == ColumnSplit.DONE for column in columns):
        return None
    total = sum(column_spreads[column.pk].total for column in columns)
    waiting = sum(
        column_spreads[column.pk].total for column in columns if column.split == ColumnSplit.DONE
    )
    return FlowEfficiency(
        active_days=round((total - waiting) / DAY, 2),
        waiting_days=round(waiting / DAY, 2),
        efficiency=round((total - waiting) / total, 4) if total else None,
    )


def cumulative_flow(
    query: MetricsQuery, *, start: date | None = None, end: date | None = None
) -> dict:
    """Per column and day: cumulative arrivals, cumulative departures and WIP, from the
    window's first day (or ``start``) to today (or ``end``), days in settings.TIME_ZONE.

    Built from the arrival and departure events, so it exists for any past day.
    ``done``: the cards that left the board (won or lost), or with ``query.cycle_id``
    left that cycle (handed on, won or lost), counted from 0 on the first day: the
    bottom band of a cumulative flow diagram.
    Shape: {"days": [ISO dates], "columns": [{"id", "name", "cycle_id", "cycle",
    "arrived", "departed", "wip"}], "done": [int]}, one value per day in each list.
    """
    window = query.window()
    start = start or window.start
    end = end or window.end
    columns = list(
        Column.objects.filter(cycle__value_stream=query.stream)
        .select_related("cycle")
        .order_by("cycle__order", "order")
    )
    if query.cycle_id is not None:
        columns = [column for column in columns if column.cycle_id == query.cycle_id]
    totals: dict[int, list[int]] = {column.pk: [0, 0] for column in columns}
    for row in (
        ColumnDay.objects.filter(value_stream=query.stream, day__lt=start)
        .values("column_id")
        .annotate(a=Sum("arrivals"), d=Sum("departures"))
    ):
        if row["column_id"] in totals:
            totals[row["column_id"]] = [row["a"], row["d"]]
    by_day: dict[date, dict[int, tuple[int, int]]] = defaultdict(dict)
    for column_id, day, arrivals, departures in ColumnDay.objects.filter(
        value_stream=query.stream, day__gte=start, day__lte=end
    ).values_list("column_id", "day", "arrivals", "departures"):
        by_day[day][column_id] = (arrivals, departures)
    left = CycleDay.objects.filter(value_stream=query.stream, day__gte=start, day__lte=end)
    if query.cycle_id is not None:
        left = left.filter(cycle_id=query.cycle_id).annotate(n=F("departures"))
    else:
        left = left.annotate(n=F("won") + F("lost"))
    left_by_day: dict[date, int] = defaultdict(int)
    for day, count in left.values_list("day", "n"):
        left_by_day[day] += count
    done, finished = [], 0
    days = []
    series: dict[int, dict[str, list[int]]] = {
        column.pk: {"arrived": [], "departed": [], "wip": []} for column in columns
    }
    day = start
    while day <= end:
        days.append(day.isoformat())
        finished += left_by_day.get(day, 0)
        done.append(finished)
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
            {
                "id": column.pk,
                "name": column.name,
                "cycle_id": column.cycle_id,
                "cycle": column.cycle.name,
                **series[column.pk],
            }
            for column in columns
        ],
        "done": done,
    }
