"""The metrics document of a stream, assembled from its section selectors."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date
from decimal import Decimal

from boards.models import Column
from metrics.models import ChannelDay, CycleDay
from metrics.selectors.channels import channel_pareto
from metrics.selectors.constraint import constraint
from metrics.selectors.conversion import conversion_by_cycle
from metrics.selectors.durations import WindowDurations, window_durations
from metrics.selectors.flow import (
    OpenCard,
    column_metrics,
    flow_efficiency,
    open_cards,
    weekly_series,
)
from metrics.selectors.query import MetricsQuery
from metrics.selectors.readmodel import (
    Aging,
    AgingCard,
    ColumnMetrics,
    CycleMetrics,
    DemandVsCapacity,
    QueryEcho,
    StreamFlow,
    StreamMetricsDocument,
    StreamXmR,
    WeeklySeries,
    Window,
)
from metrics.selectors.statistics import DAY, distribution, win_rate, xmr
from pdca.models import Cycle
from vsm.timing import timed_calls


@timed_calls("metrics.document")
def stream_metrics_compute(query: MetricsQuery) -> StreamMetricsDocument:
    """The metrics document of ``query.stream`` over its window, from the aggregates.

    Reads are bounded by the window or by the size of the board, not by the history.
    With ``query.cycle_id`` only that cycle's columns and cycle are listed (the
    constraint is still sought over every column); with ``query.channel_key`` the
    card-level numbers count that channel's cards only (see MetricsQuery).
    """
    window = query.window()
    cycles = list(Cycle.objects.filter(value_stream=query.stream).order_by("order"))
    columns = list(
        Column.objects.filter(cycle__value_stream=query.stream)
        .select_related("cycle")
        .order_by("cycle__order", "order")
    )
    cycle_columns: dict[int, list[Column]] = defaultdict(list)
    for column in columns:
        cycle_columns[column.cycle_id].append(column)
    durations = window_durations(query)
    cards = open_cards(query)
    column_docs = column_metrics(query, window, columns, durations, cards)
    cycle_docs = cycle_metrics(query, window, cycles, cycle_columns, column_docs, durations)
    if query.cycle_id is not None:
        shown_columns = [doc for doc in column_docs if doc.cycle_id == query.cycle_id]
        shown_cycles = [doc for doc in cycle_docs if doc.id == query.cycle_id]
    else:
        shown_columns, shown_cycles = column_docs, cycle_docs
    return StreamMetricsDocument(
        computed_at=query.now,
        window=window,
        columns=shown_columns,
        cycles=shown_cycles,
        stream=stream_flow(query, window, durations),
        aging=aging(query, cycle_docs, cards),
        channels=channel_pareto(query),
        constraint=constraint(column_docs),
        query=QueryEcho(cycle_id=query.cycle_id, channel_key=query.channel_key),
    )


def cycle_metrics(
    query: MetricsQuery,
    window: Window,
    cycles: list[Cycle],
    cycle_columns: dict[int, list[Column]],
    column_docs: list[ColumnMetrics],
    durations: WindowDurations,
) -> list[CycleMetrics]:
    """Per cycle: WIP now, arrivals, departures, won and lost by week (each close on the
    day of the card's final close), cycle time (abandoned passages beside it),
    conversion of the window's cohort, flow efficiency."""
    names = ("arrivals", "departures", "won", "lost")
    by_day: dict[int, dict[str, dict[date, int]]] = defaultdict(
        lambda: {name: defaultdict(int) for name in names}
    )
    for cycle_id, day, *counts in CycleDay.objects.filter(
        value_stream=query.stream, day__gte=window.start, day__lte=window.end
    ).values_list("cycle_id", "day", *names):
        for name, count in zip(names, counts, strict=True):
            by_day[cycle_id][name][day] += count
    conversions = conversion_by_cycle(query, cycles, cycle_columns)
    result = []
    for cycle in cycles:
        weekly = {name: weekly_series(window, by_day[cycle.pk][name]) for name in names}
        result.append(
            CycleMetrics(
                id=cycle.pk,
                name=cycle.name,
                wip_now=sum(doc.wip_now for doc in column_docs if doc.cycle_id == cycle.pk),
                arrivals_weekly=weekly["arrivals"],
                departures_weekly=weekly["departures"],
                won_weekly=weekly["won"],
                lost_weekly=weekly["lost"],
                cycle_time=distribution(
                    durations.cycles[cycle.pk],
                    abandoned=durations.abandoned_cycles.get(cycle.pk, 0),
                ),
                conversion=conversions[cycle.pk],
                flow_efficiency=flow_efficiency(cycle_columns[cycle.pk], durations.columns),
            )
        )
    return result


def stream_flow(query: MetricsQuery, window: Window, durations: WindowDurations) -> StreamFlow:
    """Arrivals, won (count, value), lost, win rate and median lead time per full week
    and so far this week; demand against capacity and XmR over the full weeks only."""
    days = ChannelDay.objects.filter(
        value_stream=query.stream, day__gte=window.start, day__lte=window.end
    )
    if query.channel_key is not None:
        days = days.filter(channel_key=query.channel_key)
    counts: dict[str, dict[date, int | Decimal]] = {
        name: defaultdict(int) for name in ("arrivals", "won", "won_value", "lost")
    }
    for day, day_arrivals, day_won, day_won_value, day_lost in days.values_list(
        "day", "arrivals", "won", "won_value", "lost"
    ):
        counts["arrivals"][day] += day_arrivals
        counts["won"][day] += day_won
        counts["won_value"][day] += Decimal(day_won_value)
        counts["lost"][day] += day_lost
    weekly = {name: weekly_series(window, values) for name, values in counts.items()}
    won_value = weekly["won_value"]
    won_value_weekly = WeeklySeries(
        values=[float(value) for value in won_value.values], so_far=float(won_value.so_far)
    )

    won, lost = weekly["won"], weekly["lost"]
    win_rates = WeeklySeries(
        values=[win_rate(w, x) for w, x in zip(won.values, lost.values, strict=True)],
        so_far=win_rate(won.so_far, lost.so_far),
    )

    def median_days(week: date) -> float | None:
        seconds = durations.lead_median_by_week.get(week)
        return round(seconds / DAY, 2) if seconds is not None else None

    lead_medians = WeeklySeries(
        values=[median_days(week) for week in window.weeks],
        so_far=median_days(window.current_week),
    )
    closed = [w + x for w, x in zip(won.values, lost.values, strict=True)]

    def mean(values: list) -> float:
        return round(statistics.fmean(values), 2) if values else 0.0

    return StreamFlow(
        lead_time=distribution(durations.lead, abandoned=durations.abandoned_leads),
        arrivals_weekly=weekly["arrivals"],
        won_weekly=won,
        won_value_weekly=won_value_weekly,
        lost_weekly=lost,
        win_rate_weekly=win_rates,
        lead_time_median_weekly=lead_medians,
        demand_vs_capacity=DemandVsCapacity(
            arrivals_per_week=mean(weekly["arrivals"].values),
            won_per_week=mean(won.values),
            departures_per_week=mean(closed),
        ),
        xmr=StreamXmR(
            won_weekly=xmr([float(value) for value in won.values]),
            win_rate_weekly=xmr(win_rates.values, ceiling=1.0),
            lead_time_median_weekly=xmr(lead_medians.values),
        ),
    )


def aging(query: MetricsQuery, cycle_docs: list[CycleMetrics], cards: list[OpenCard]) -> Aging:
    """Open cards older in their cycle than the cycle's 85th percentile cycle time,
    oldest first (the first 100), and how many cards are open (one channel's, with
    ``query.channel_key``)."""
    p85 = {doc.id: doc.cycle_time.p85 for doc in cycle_docs}
    if query.channel_key is not None:
        cards = [card for card in cards if card.channel_key == query.channel_key]
    flagged = []
    for card in cards:
        age_days = (query.now - card.cycle_entered_at).total_seconds() / DAY
        limit = p85.get(card.cycle_id)
        if limit is not None and age_days > limit:
            column_age = (query.now - card.column_entered_at).total_seconds() / DAY
            flagged.append(
                AgingCard(
                    card_id=card.card_id,
                    column_id=card.column_id,
                    cycle_id=card.cycle_id,
                    age_in_cycle_days=round(age_days, 2),
                    age_in_column_days=round(column_age, 2),
                    cycle_p85_days=limit,
                )
            )
    flagged.sort(key=lambda card: (-card.age_in_cycle_days, card.card_id))
    return Aging(
        over_cycle_p85=flagged[:100], over_cycle_p85_count=len(flagged), open_cards=len(cards)
    )
