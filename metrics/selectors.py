"""Metrics computed from the running aggregates (never from the raw move log).

Every number here is defined in docs/metrics.md; the reads are bounded by the
window (default 12 ISO weeks) or by the size of the board, not by the history.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from boards.models import Card, Column, ColumnSplit, Outcome
from metrics.models import (
    CardFlowState,
    ChannelDay,
    ColumnDay,
    ColumnReachCount,
    CycleConversionCount,
    CycleDay,
    DurationKind,
    FlowDuration,
)
from pdca.models import Cycle
from vsm.models import Channel, ValueStream

WINDOW_WEEKS = 12
PERCENTILES = (50, 70, 85, 95)
LITTLE_TOLERANCE = 0.25
XMR_SCALING = 2.66
DAY = 86_400


def percentile(sorted_values: Sequence[float], p: int) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return None
    # p x n / 100, not p / 100 x n: 7 / 100 x 100 is 7.000000000000001 in floating point.
    rank = max(1, math.ceil(p * len(sorted_values) / 100))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Spread:
    """What the document needs of a set of durations: how many, their total, and the
    nearest-rank percentiles (PERCENTILES), all in seconds."""

    count: int = 0
    total: int = 0
    ranked: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, seconds: Sequence[int]) -> Spread:
        ordered = sorted(seconds)
        return cls(len(ordered), sum(ordered), {p: percentile(ordered, p) for p in PERCENTILES})

    @property
    def mean_days(self) -> float | None:
        return self.total / self.count / DAY if self.count else None


def distribution(seconds: Sequence[int] | Spread) -> dict:
    """Percentiles of durations, in days, with the count they rest on and the mean."""
    spread = seconds if isinstance(seconds, Spread) else Spread.of(seconds)
    result: dict = {"count": spread.count}
    for p in PERCENTILES:
        value = spread.ranked.get(p)
        result[f"p{p}"] = round(value / DAY, 2) if value is not None else None
    mean = spread.mean_days
    result["mean"] = round(mean, 2) if mean is not None else None
    return result


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def xmr(values: Sequence[float | None]) -> dict:
    """Process behaviour (XmR) limits and the signals they raise.

    Natural process limits: mean +/- 2.66 x average moving range (the lower one not
    below zero). Signals: a point outside the limits; eight points in a row on one
    side of the mean. A None is a week with no value (a rate with nothing to rate):
    it is skipped, the moving range spans it, and signal indexes stay those of
    ``values``.
    """
    points = [(index, value) for index, value in enumerate(values) if value is not None]
    if len(points) < 2:
        return {"mean": None, "upper": None, "lower": None, "signals": []}
    present = [value for _, value in points]
    mean = statistics.fmean(present)
    moving_ranges = [abs(b - a) for a, b in zip(present, present[1:], strict=False)]
    average_range = statistics.fmean(moving_ranges)
    upper = mean + XMR_SCALING * average_range
    lower = max(0.0, mean - XMR_SCALING * average_range)
    signals = []
    for index, value in points:
        if value > upper:
            signals.append({"index": index, "rule": "above the upper limit"})
        elif value < lower:
            signals.append({"index": index, "rule": "below the lower limit"})
    run_side, run_length = 0, 0
    for index, value in points:
        side = (value > mean) - (value < mean)
        run_length = run_length + 1 if side and side == run_side else (1 if side else 0)
        run_side = side
        if run_length == 8:
            signals.append({"index": index, "rule": "eight in a row on one side of the mean"})
    return {
        "mean": round(mean, 2),
        "upper": round(upper, 2),
        "lower": round(lower, 2),
        "average_moving_range": round(average_range, 2),
        "signals": signals,
    }


def _weeks(today: date, weeks: int) -> list[date]:
    current = week_start(today)
    return [current - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


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


def _reach_counts(stream: ValueStream) -> dict[tuple[int, int], int]:
    """Cards that ever reached each column, by (column, channel key): counters the
    fold keeps as it writes first reaches."""
    return {
        (column_id, channel_key): cards
        for column_id, channel_key, cards in ColumnReachCount.objects.filter(
            value_stream=stream
        ).values_list("column_id", "channel_key", "cards")
    }


def _conversion_counts(
    stream: ValueStream,
) -> tuple[dict[int, dict[int, int]], dict[int, dict[int, int]]]:
    """Per cycle, by channel key: the cards handed on (reached this cycle's first
    column and the next cycle's, under the channel on the event that first reached the
    next one; a card that entered the next cycle directly never was in this cycle's
    funnel), and the cards won while in it (each card once: won, reopened and won
    again is one card, under the channel of its first win). Counters of the fold."""
    handed_on: dict[int, dict[int, int]] = defaultdict(dict)
    won: dict[int, dict[int, int]] = defaultdict(dict)
    for cycle_id, channel_key, handed, wins in CycleConversionCount.objects.filter(
        value_stream=stream
    ).values_list("cycle_id", "channel_key", "handed_on", "won"):
        if handed:
            handed_on[cycle_id][channel_key] = handed
        if wins:
            won[cycle_id][channel_key] = wins
    return handed_on, won


def _conversion(columns, next_reached, reach_counts, won_by_channel) -> dict:
    """Of the cards that entered the cycle's first column: the share that reached each
    later column, the next cycle, and won (cumulative), and each step's share of the
    step before it (next-step). Overall and per channel."""

    def steps_for(channel_keys: set[int] | None) -> list[dict]:
        def reached(column_id: int) -> int:
            return sum(
                count
                for (cid, key), count in reach_counts.items()
                if cid == column_id and (channel_keys is None or key in channel_keys)
            )

        names = [(column.name, reached(column.pk)) for column in columns]
        if next_reached is not None:
            names.append(
                (
                    "next cycle",
                    sum(
                        n
                        for key, n in next_reached.items()
                        if channel_keys is None or key in channel_keys
                    ),
                )
            )
        won = sum(
            n for key, n in won_by_channel.items() if channel_keys is None or key in channel_keys
        )
        names.append(("won", won))
        base = names[0][1] if names else 0
        result = []
        previous = base
        for name, count in names:
            result.append(
                {
                    "step": name,
                    "reached": count,
                    "cumulative": round(count / base, 4) if base else None,
                    "next_step": round(count / previous, 4) if previous else None,
                }
            )
            previous = count
        return result

    channel_keys = {key for (_, key) in reach_counts}
    return {
        "all": steps_for(None),
        "by_channel": {str(key): steps_for({key}) for key in sorted(channel_keys)},
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


def _channel_pareto(stream: ValueStream) -> dict:
    """Won count and value per channel, largest value first, with the cumulative share
    and the smallest set of channels that gives 80% of the won value."""
    names = dict(Channel.objects.filter(value_stream=stream).values_list("pk", "name"))
    # SQLite sums decimals without their scale: quantize as the field stores them.
    cents = Decimal(1).scaleb(-ChannelDay._meta.get_field("won_value").decimal_places)
    totals = {
        row["channel_key"]: {
            "arrivals": row["arrivals"],
            "won": row["won"],
            "won_value": Decimal(row["won_value"]).quantize(cents),
            "lost": row["lost"],
        }
        for row in ChannelDay.objects.filter(value_stream=stream)
        .values("channel_key")
        .annotate(
            arrivals=Sum("arrivals"), won=Sum("won"), won_value=Sum("won_value"), lost=Sum("lost")
        )
    }
    ordered = sorted(
        totals.items(), key=lambda item: (-item[1]["won_value"], -item[1]["won"], item[0])
    )
    grand_total = sum((entry["won_value"] for _, entry in ordered), Decimal(0))
    rows, cumulative, pareto = [], Decimal(0), []
    for key, entry in ordered:
        in_set = bool(grand_total) and cumulative < grand_total * Decimal("0.8")
        cumulative += entry["won_value"]
        if in_set:
            pareto.append(key)
        rows.append(
            {
                "channel_id": key or None,
                "name": names.get(key, "No channel"),
                "arrivals": entry["arrivals"],
                "won": entry["won"],
                "lost": entry["lost"],
                "won_value": str(entry["won_value"]),
                "win_rate": round(entry["won"] / entry["arrivals"], 4)
                if entry["arrivals"]
                else None,
                "cumulative_share": round(float(cumulative / grand_total), 4)
                if grand_total
                else None,
                "in_pareto_80": in_set,
            }
        )
    return {"rows": rows, "pareto_80": [names.get(k, "No channel") for k in pareto]}


STARVING_WEIGHT = 2.0


def _constraint(column_docs: list[dict], cycle_columns: dict[int, list[Column]]) -> dict:
    """Rank columns by the evidence that they limit the flow (Theory of Constraints).

    Evidence, each scaled to 0..1 across the stream's columns: queue growth over the
    window, median age of the open cards in it, share of its cycle's time spent in it,
    blocked cards now. A column at its WIP limit while the next column of its cycle
    starves (at most one card) is the textbook sign of a constraint: it scores 2 more,
    and the queue growth in front of it (earlier columns of the cycle) counts as its
    own, because that work waits on it.
    """
    by_id = {doc["id"]: doc for doc in column_docs}
    neighbours: dict[int, tuple[list[int], int | None]] = {}
    for columns in cycle_columns.values():
        ids = [column.pk for column in columns]
        for index, column_id in enumerate(ids):
            following = ids[index + 1] if index + 1 < len(ids) else None
            neighbours[column_id] = (ids[:index], following)

    def share_of_cycle(doc: dict) -> float:
        means = [by_id[c.pk]["time_in_column"]["mean"] or 0 for c in cycle_columns[doc["cycle_id"]]]
        total = sum(means)
        return (doc["time_in_column"]["mean"] or 0) / total if total else 0.0

    def growth(doc: dict) -> int:
        return max(0, doc["wip_now"] - doc["wip_at_window_start"])

    def starves_next(doc: dict) -> bool:
        following = neighbours[doc["id"]][1]
        return (
            doc["wip_limit"] is not None
            and doc["wip_now"] >= doc["wip_limit"]
            and following is not None
            and by_id[following]["wip_now"] <= 1
        )

    raw = {}
    for doc in column_docs:
        upstream = neighbours[doc["id"]][0]
        queue_growth = growth(doc)
        if starves_next(doc):
            queue_growth += sum(growth(by_id[column_id]) for column_id in upstream)
        raw[doc["id"]] = {
            "queue_growth": queue_growth,
            "median_age_days": doc["median_age_days"] or 0.0,
            "share_of_cycle_time": share_of_cycle(doc),
            "blocked_now": doc["blocked_now"],
        }
    maxima = {
        name: max((values[name] for values in raw.values()), default=0)
        for name in ("queue_growth", "median_age_days", "share_of_cycle_time", "blocked_now")
    }
    ranking = []
    for doc in column_docs:
        values = raw[doc["id"]]
        score = sum(values[name] / maxima[name] for name in maxima if maxima[name])
        starving = starves_next(doc)
        if starving:
            score += STARVING_WEIGHT
        ranking.append(
            {
                "column_id": doc["id"],
                "name": f"{doc['cycle']} / {doc['name']}",
                "score": round(score, 3),
                "at_limit_while_next_starves": starving,
                **{name: round(value, 2) for name, value in values.items()},
            }
        )
    ranking.sort(key=lambda entry: (-entry["score"], entry["column_id"]))
    if not ranking or ranking[0]["score"] == 0:
        return {"column_id": None, "name": None, "evidence": [], "ranking": ranking}
    top = ranking[0]
    doc = by_id[top["column_id"]]
    evidence = []
    if top["at_limit_while_next_starves"]:
        following = by_id[neighbours[doc["id"]][1]]
        evidence.append(
            f"It sits at its WIP limit ({doc['wip_now']}/{doc['wip_limit']}) while the next "
            f"column, {following['name']}, holds {following['wip_now']}."
        )
    if top["queue_growth"]:
        evidence.append(f"Work waiting on it grew by {top['queue_growth']} cards over the window.")
    if doc["median_age_days"] is not None:
        evidence.append(f"Cards in it are {doc['median_age_days']} days old at the median.")
    if top["share_of_cycle_time"]:
        evidence.append(
            f"It takes {round(top['share_of_cycle_time'] * 100)}% of the time cards spend in "
            f"{doc['cycle']}."
        )
    if top["blocked_now"]:
        evidence.append(f"{top['blocked_now']} of its cards are blocked now.")
    return {
        "column_id": top["column_id"],
        "name": top["name"],
        "evidence": evidence,
        "ranking": ranking,
    }


__all__ = ["cumulative_flow", "distribution", "percentile", "stream_metrics_compute", "xmr"]
