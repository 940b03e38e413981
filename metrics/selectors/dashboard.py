"""What the value stream manager's dashboard shows: headline tiles and every chart.

One call, ``dashboard_get``, reads a stream's metrics for a MetricsQuery: the stored
document when the query is the worker's own (default filters, the present) and the
document is fresh, else a document computed for the filters; then the charts
(metrics.charts) and the headline tiles. Its number of queries does not depend on the
length of the history or the number of cards.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NotRequired, TypedDict, Unpack

from django.utils import timezone

from metrics import charts
from metrics.charts import MIN_FOR_PERCENTILES, Chart
from metrics.fold.timeline import metrics_zone
from metrics.models import StreamMetrics
from metrics.selectors.cards import AgingCard, FinishedCard, aging_cards, finished_cards
from metrics.selectors.conversion_weekly import conversion_weekly
from metrics.selectors.document import stream_metrics_compute
from metrics.selectors.experiments import experiment_windows
from metrics.selectors.flow import cumulative_flow
from metrics.selectors.lost_reasons import lost_reasons
from metrics.selectors.query import WINDOW_WEEKS, MetricsQuery, week_start
from metrics.selectors.readmodel import (
    SCHEMA_VERSION,
    SchemaError,
    StreamMetricsDocument,
)
from metrics.selectors.statistics import percentile, win_rate
from vsm.caching import cached
from vsm.errors import NotFound

# A stored document older than this is recomputed for the page (the sweeper refreshes
# documents every 15 minutes; this leaves it room).
STORED_DOCUMENT_MAX_AGE = timedelta(minutes=20)
# Part of the cache key of the reads behind a stored document's page: change it when
# what they hold changes.
READS_VERSION = "1"


class ChartNotFound(NotFound, KeyError):
    """No chart of that key on the page asked for."""

    code = "chart_not_found"

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


@dataclass(frozen=True)
class Tile:
    """A headline number of the last full ISO week, against the week before and the
    mean of the window's full weeks.

    ``unit``: count, money, days or share (0..1). ``better``: "up" or "down", the
    direction that is good news (None: neither). ``chart``: the key of the chart that
    shows the number over time. Values are None when the week had nothing to measure
    (no finished card for a percentile, nothing closed for a rate).
    """

    key: str
    label: str
    unit: str
    value: float | None
    previous: float | None
    average: float | None
    explanation: str
    chart: str
    better: str | None = None
    # The sample a percentile rests on, in words (None for counts).
    basis: str | None = None

    @property
    def change_vs_previous(self) -> float | None:
        return _difference(self.value, self.previous)

    @property
    def change_vs_average(self) -> float | None:
        return _difference(self.value, self.average)


def _difference(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None:
        return None
    return round(value - reference, 4)


@dataclass(frozen=True)
class Dashboard:
    """A stream's dashboard for one query. ``week``: the Monday of the full week the
    tiles describe (None when the window has no full week). ``stored``: whether the
    numbers come from the worker's stored document (else computed for this page)."""

    query: MetricsQuery
    document: StreamMetricsDocument
    week: date | None
    tiles: list[Tile]
    # Chart, not charts.Chart: in this class ``charts`` is the field.
    charts: list[Chart]
    stored: bool

    def chart(self, key: str) -> Chart:
        """Raises: ChartNotFound (no chart of that key on this dashboard)."""
        for chart in self.charts:
            if chart.key == key:
                return chart
        raise ChartNotFound(f"No chart {key!r} here.")


def is_default_query(query: MetricsQuery) -> bool:
    return query.cycle_id is None and query.channel_key is None and query.weeks == WINDOW_WEEKS


def stored_document(query: MetricsQuery) -> StreamMetricsDocument | None:
    """The worker's stored document, when it answers ``query``: default filters, the
    present (``query.now`` within STORED_DOCUMENT_MAX_AGE after it was computed) and the
    current schema. One query."""
    if not is_default_query(query):
        return None
    # The time test in SQL: a past week's query never loads the (large) JSON.
    row = (
        StreamMetrics.objects.filter(
            value_stream=query.stream,
            computed_at__lte=query.now,
            computed_at__gte=query.now - STORED_DOCUMENT_MAX_AGE,
        )
        .values_list("data", flat=True)
        .first()
    )
    if row is None:
        return None
    data = row
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        return None
    try:
        document = StreamMetricsDocument.from_json(data)
    except SchemaError:
        return None
    # A week boundary passed since it was computed: its window is not this one.
    if document.window.current_week != week_start(query.today):
        return None
    return document


def _document_for(
    query: MetricsQuery, document: StreamMetricsDocument | None
) -> tuple[StreamMetricsDocument, bool]:
    if document is None:
        document = stored_document(query)
    if document is not None:
        return document, True
    return stream_metrics_compute(query), False


@dataclass(frozen=True)
class _Reads:
    """What the charts and tiles read besides the document, at one moment: the daily
    flow per column, the finished cards, the open cards."""

    flow: dict
    finished: list[FinishedCard]
    open: list[AgingCard]


def _reads(query: MetricsQuery, *, cache_key: str | None = None) -> _Reads:
    """The reads at ``query.now``; with ``cache_key``, kept in the cache as long as a
    stored document is shown (a cache that fails is skipped, never the page)."""

    def read() -> _Reads:
        return _Reads(cumulative_flow(query), finished_cards(query), aging_cards(query))

    if cache_key is None:
        return read()
    timeout = int(STORED_DOCUMENT_MAX_AGE.total_seconds())
    return cached(cache_key, read, kind=_Reads, timeout=timeout)


def _reads_for(
    query: MetricsQuery, document: StreamMetricsDocument, *, worker_stored: bool
) -> _Reads:
    """The reads for a page: with the worker's stored document, made as of the moment it
    was computed, so the page is one consistent picture of that moment (it says when),
    and kept in the cache for every request that shows the same document; otherwise
    made at ``query.now``."""
    if not worker_stored:
        return _reads(query)
    key = (
        f"vsm:dashboard-reads:{READS_VERSION}:{query.stream.pk}:{document.computed_at.isoformat()}"
    )
    return _reads(dataclasses.replace(query, now=document.computed_at), cache_key=key)


def _chart_builders(
    query: MetricsQuery, document: StreamMetricsDocument, reads: Callable[[], _Reads]
) -> dict[str, Callable[[], charts.Chart]]:
    """Every chart of the dashboard by key, in page order, each built on demand."""
    past = query.today < timezone.localdate(timezone=metrics_zone())
    # Both lost-reasons charts draw one read, made only when one of them is built.
    lost = functools.cache(lambda: lost_reasons(query))
    builders: dict[str, Callable[[], charts.Chart]] = {
        "cumulative-flow": lambda: charts.cumulative_flow_chart(query, flow=reads().flow),
        "cycle-time": lambda: charts.cycle_time_scatter(query, document, dots=reads().finished),
        "throughput": lambda: charts.throughput_run_chart(document),
    }
    for cycle in document.cycles:
        builders[f"funnel-{cycle.id}"] = functools.partial(
            charts.conversion_funnel_chart, document, cycle_id=cycle.id
        )
    builders[charts.CONVERSION_WEEKLY_KEY] = lambda: conversion_weekly(query, document)
    builders |= {
        "pareto": lambda: charts.channel_pareto_chart(document),
        charts.LOST_REASONS_KEY: lambda: charts.lost_reasons_by_column_chart(lost()),
        charts.LOST_REASONS_CHANNELS_KEY: lambda: charts.lost_reasons_by_channel_chart(lost()),
        "aging": lambda: charts.aging_chart(
            query, document, ended_before_today=past, cards=reads().open
        ),
        "demand": lambda: charts.demand_vs_capacity_chart(document),
        "littles-law": lambda: charts.littles_law_chart(document),
    }
    return builders


# The charts with a time axis, which mark the running and checked experiments' windows:
# by week (their labels are Mondays) or by day.
WEEKLY_CHARTS = frozenset({"throughput", "demand"})
DAILY_CHARTS = frozenset({"cumulative-flow", "cycle-time"})


def dashboard_get(
    query: MetricsQuery, *, document: StreamMetricsDocument | None = None
) -> Dashboard:
    """The dashboard of ``query.stream`` for ``query``: tiles and charts.

    ``document``: a stored document of this query's window to draw from (a weekly
    snapshot); by default the worker's stored one when it answers the query, else one
    computed now. The WIP and cycle-time tiles, the cumulative flow and the dots read
    the aggregates up to ``query.now``, or, with the worker's stored document, up to
    the moment it was computed (the page shows that moment).
    Raises: nothing of its own; ``query.cycle_id`` must be a cycle of the stream (the
    view validates filters against the stream's cycles and channels).
    """
    worker_stored = document is None
    document, stored = _document_for(query, document)
    reads = _reads_for(query, document, worker_stored=worker_stored and stored)
    builders = _chart_builders(query, document, lambda: reads)
    weeks = document.window.weeks
    windows = experiment_windows(query.stream)
    return Dashboard(
        query=query,
        document=document,
        week=weeks[-1] if weeks else None,
        tiles=headline_tiles(document, flow=reads.flow, finished=reads.finished),
        charts=[
            charts.with_windows(build(), windows, weekly=key in WEEKLY_CHARTS)
            if key in WEEKLY_CHARTS | DAILY_CHARTS
            else build()
            for key, build in builders.items()
        ],
        stored=stored,
    )


def dashboard_chart(
    query: MetricsQuery, key: str, *, document: StreamMetricsDocument | None = None
) -> charts.Chart:
    """One chart of ``dashboard_get(query)`` (its CSV download), built alone.

    Raises: ChartNotFound (no chart of that key on this dashboard).
    """
    worker_stored = document is None
    document, stored = _document_for(query, document)
    # Only the charts that read cards pay for the reads.
    reads = functools.cache(
        lambda: _reads_for(query, document, worker_stored=worker_stored and stored)
    )
    builder = _chart_builders(query, document, reads).get(key)
    if builder is None:
        raise ChartNotFound(f"No chart {key!r} on this dashboard.")
    return builder()


def _last_two_and_mean(values: Sequence[float | None]) -> tuple[float | None, ...]:
    present = [value for value in values if value is not None]
    mean = round(statistics.fmean(present), 4) if present else None
    last = values[-1] if values else None
    previous = values[-2] if len(values) > 1 else None
    return last, previous, mean


class _TileText(TypedDict):
    """The words of a Tile, as ``_tile`` takes them."""

    label: str
    unit: str
    explanation: str
    chart: str
    better: NotRequired[str | None]
    basis: NotRequired[str | None]


def _tile(key: str, series: Sequence[float | None], **fields: Unpack[_TileText]) -> Tile:
    value, previous, average = _last_two_and_mean(series)
    return Tile(key=key, value=value, previous=previous, average=average, **fields)


def weekly_wip(document: StreamMetricsDocument, flow: dict) -> list[int]:
    """Cards on the board (the columns shown) at the end of each full week's Sunday."""
    days = {day: index for index, day in enumerate(flow["days"])}
    result = []
    for monday in document.window.weeks:
        index = days.get((monday + timedelta(days=6)).isoformat())
        result.append(
            sum(column["wip"][index] for column in flow["columns"]) if index is not None else 0
        )
    return result


def finished_by_week(
    document: StreamMetricsDocument, finished: list[FinishedCard]
) -> list[list[float]]:
    """The days of the cards that finished in each full week of the window, sorted."""
    index = {week: position for position, week in enumerate(document.window.weeks)}
    by_week: list[list[float]] = [[] for _ in document.window.weeks]
    for card in finished:
        # The Monday of the card's week (week_start, inlined: thousands of cards).
        position = index.get(card.finished_on - timedelta(days=card.finished_on.weekday()))
        if position is not None:
            by_week[position].append(card.days)
    for days in by_week:
        days.sort()
    return by_week


def weekly_percentiles(by_week: list[list[float]], p: int) -> list[float | None]:
    """The p-th nearest-rank percentile of each week's days (None for a week in which
    none finished)."""
    return [percentile(days, p) for days in by_week]


def headline_tiles(
    document: StreamMetricsDocument, *, flow: dict, finished: list[FinishedCard]
) -> list[Tile]:
    """The headline numbers of the last full week (see Tile): arrivals, won (count and
    value), WIP, lead (or cycle) time p50 and p85, conversion to won, throughput.

    With a cycle filter the counts are that cycle's (arrivals into it, deals won and
    lost in it, cards that left it); won value stays the stream's. With a channel
    filter WIP stays every channel's (the flow per column is not split by channel).
    """
    stream = document.stream
    weekly = charts.weekly_flow(document)
    arrivals, won, lost = weekly.arrivals, weekly.won, weekly.lost
    left = list(weekly.left.values)
    # A cycle's counts are not split by channel: with a channel filter too, say so.
    suffix = " (all channels)" if weekly.all_channels else ""
    cycle = next((c for c in document.cycles if c.id == document.query.cycle_id), None)
    if cycle is not None:
        where, timed = f"{cycle.name}", "Cycle time"
        time_what = f"from entering {cycle.name} to leaving it"
        left_label, left_what = "Throughput", f"Cards that left {cycle.name} in the week: "
        left_what += "handed on, won or lost."
    else:
        where, timed = "the stream", "Lead time"
        time_what = "from entering the stream to being won"
        left_label = "Throughput (closed)"
        left_what = "Cards that finished in the week: won or lost (the won alone are a tile "
        left_what += "of their own, and the weekly chart judges them)."
    win_rates = [win_rate(w, x) for w, x in zip(won.values, lost.values, strict=True)]
    by_week = finished_by_week(document, finished)
    counts = [len(days) for days in by_week]
    channel_note = " All channels: the flow per column is not split by channel."
    return [
        _tile(
            "arrivals",
            arrivals.values,
            label=f"Arrivals{suffix}",
            unit="count",
            explanation=f"New prospects that entered {where} in the week (demand).",
            chart="demand",
        ),
        _tile(
            "won",
            won.values,
            label=f"Won{suffix}",
            unit="count",
            explanation=(
                f"Deals won in {where} in the week, each once, in the week of its final win."
            ),
            chart="throughput",
            better="up",
        ),
        _tile(
            "won-value",
            stream.won_value_weekly.values,
            label="Won value" if cycle is None else "Won value (whole stream)",
            unit="money",
            explanation="The estimated value of the deals won in the week.",
            chart="pareto",
            better="up",
        ),
        _tile(
            "wip",
            weekly_wip(document, flow),
            label="WIP" if document.query.channel_key is None else "WIP (all channels)",
            unit="count",
            explanation=(
                "Cards in process on the board at the end of the week (Sunday). Less WIP "
                "means shorter waits (Little's law)."
                + (channel_note if document.query.channel_key is not None else "")
            ),
            chart="cumulative-flow",
            better="down",
        ),
        _tile(
            "time-p50",
            weekly_percentiles(by_week, 50),
            label=f"{timed} p50",
            unit="days",
            explanation=(
                f"Half the cards that finished in the week took at most this many days {time_what}."
            ),
            chart="cycle-time",
            better="down",
            basis=_basis(counts),
        ),
        _tile(
            "time-p85",
            weekly_percentiles(by_week, 85),
            label=f"{timed} p85",
            unit="days",
            explanation=(
                f"85% of the cards that finished in the week took at most this many days "
                f"{time_what}: a fair promise to a customer."
            ),
            chart="cycle-time",
            better="down",
            basis=_basis(counts),
        ),
        _tile(
            "win-rate",
            win_rates,
            label=f"Conversion to won{suffix}",
            unit="share",
            explanation=(
                f"Of the deals closed in {where} in the week, the share won "
                "(won / (won + lost)). Empty when nothing closed."
            ),
            chart="demand",
            better="up",
        ),
        _tile(
            "throughput",
            left,
            label=left_label + suffix,
            unit="count",
            explanation=left_what,
            chart="demand",
            better="up",
        ),
    ]


def _basis(counts: list[int]) -> str | None:
    """Under a percentile tile: the sample it rests on, a warning when it is small."""
    if not counts:
        return None
    last = counts[-1]
    if last == 0:
        return "No card finished in the week."
    cards = "1 card" if last == 1 else f"{last} cards"
    if last < MIN_FOR_PERCENTILES:
        return f"From {cards} only: a rough figure."
    return f"From {cards}."
