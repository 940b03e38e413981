"""Chart data, shaped in one place: one function per chart, from the metrics document.

Each returns a Chart: the x labels, the series, the reference lines (XmR limits, the
80% line), the table rows that hold exactly the chart's data (the page's data-table
alternative and its CSV download), a caption saying what it shows and how to read it,
and, when there is too little data, the reason in words. No arithmetic is left for
templates or JavaScript: the page passes ``to_json()`` through ``json_script``.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta

from boards.templatetags.board_tags import card_url_prefix
from metrics.selectors.cards import AgingCard, FinishedCard, aging_cards, finished_cards
from metrics.selectors.flow import cumulative_flow
from metrics.selectors.lost_reasons import NOT_RECORDED, NOTE_ONLY, LostReasons, Place
from metrics.selectors.query import MetricsQuery
from metrics.selectors.readmodel import StreamMetricsDocument, WeeklySeries, XmR
from metrics.selectors.statistics import xmr
from pdca.models import METRIC_UNIT, Experiment
from vsm.spreadsheet import write_spreadsheet_rows

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection):
# such a text cell is written with a leading apostrophe.
# Below this many finished cards a percentile line says little: the chart says so.
MIN_FOR_PERCENTILES = 10
# A page's data table shows at most this many rows (one per card can be thousands on a
# big stream: tens of thousands of cells to render); the CSV always has them all.
TABLE_ROWS_SHOWN = 100


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | int | None]
    kind: str = "bar"  # bar, line


@dataclass(frozen=True)
class ReferenceLine:
    """A horizontal line on the value axis: a mean, a process limit, a share."""

    label: str
    value: float


@dataclass(frozen=True)
class Dots:
    """The cards behind a chart's dots, in the order of its first series: their ids,
    names, and the link of card ``id`` = ``link_prefix`` + id + "/". The page's JSON
    sends these instead of the table rows (thousands of dots on a big stream)."""

    ids: list[int]
    names: list[str]
    link_prefix: str


@dataclass(frozen=True)
class Band:
    """A span marked on the x axis (an experiment's window), in the axis's own values:
    week labels (Mondays) on a weekly chart, ISO days on a time axis; drawn as a box."""

    label: str
    start: str
    end: str


@dataclass(frozen=True)
class Window:
    """Days to mark on charts with a time axis: an experiment's window, first to last
    day inclusive."""

    label: str
    first_day: date
    last_day: date


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    caption: str
    labels: list[str]
    series: list[Series]
    columns: list[str]
    rows: list[list[str | int | float | None]]
    lines: list[ReferenceLine] = field(default_factory=list)
    # Points to mark (index into labels, what it means): XmR signals, the 80% set.
    marks: list[tuple[int, str]] = field(default_factory=list)
    empty_reason: str | None = None
    # The chart's answer in one sentence, shown above it (None: it has no single answer).
    verdict: str | None = None
    dots: Dots | None = None
    bands: list[Band] = field(default_factory=list)

    def to_json(self) -> dict:
        # Not dataclasses.asdict: it deep-copies every row, slow for thousands of dots.
        return {
            "key": self.key,
            "title": self.title,
            "caption": self.caption,
            "labels": self.labels,
            "series": [asdict(series) for series in self.series],
            "columns": self.columns,
            # A dot chart's rows repeat its labels, values and card links: the page needs
            # only the cards (the table and the CSV keep the rows).
            "rows": [] if self.dots is not None else self.rows,
            "lines": [asdict(line) for line in self.lines],
            "marks": [list(mark) for mark in self.marks],
            "empty_reason": self.empty_reason,
            "verdict": self.verdict,
            "dots": asdict(self.dots) if self.dots is not None else None,
            "bands": [asdict(band) for band in self.bands],
        }

    @property
    def table_rows(self) -> list[list]:
        """The rows the page's data table shows: the first TABLE_ROWS_SHOWN."""
        return self.rows[:TABLE_ROWS_SHOWN]

    @property
    def rows_not_shown(self) -> int:
        return max(0, len(self.rows) - TABLE_ROWS_SHOWN)

    def csv(self) -> str:
        """The table as CSV, text cells that a spreadsheet would run neutralised."""
        out = io.StringIO()
        write_spreadsheet_rows(out, [self.columns, *self.rows])
        return out.getvalue()


def _week_labels(document: StreamMetricsDocument) -> list[str]:
    return [week.isoformat() for week in document.window.weeks]


def _so_far_note(document: StreamMetricsDocument, series: WeeklySeries, what: str) -> str:
    window = document.window
    if not window.current_week_days:
        return ""  # the window ends with a full week: there is no week so far
    return (
        f"This week so far ({window.current_week_days} of 7 days from "
        f"{window.current_week.isoformat()}): {series.so_far} {what}, not plotted as a week."
    )


@dataclass(frozen=True)
class WeeklyFlow:
    """The weekly counts a page's cycle filter selects: the stream's (arrivals, won,
    lost, and closed = won + lost) or one cycle's (arrivals into it, won and lost in
    it, and the cards that left it: handed on, won or lost). ``where`` names it for
    sentences; ``all_channels``: the counts ignore the page's channel filter (a cycle's
    flow is not split by channel)."""

    where: str
    arrivals: WeeklySeries
    won: WeeklySeries
    lost: WeeklySeries
    left: WeeklySeries
    left_name: str
    won_xmr: XmR
    all_channels: bool


def weekly_flow(document: StreamMetricsDocument) -> WeeklyFlow:
    stream = document.stream
    cycle = next((c for c in document.cycles if c.id == document.query.cycle_id), None)
    if cycle is None:
        closed = WeeklySeries(
            values=[
                won + lost
                for won, lost in zip(
                    stream.won_weekly.values, stream.lost_weekly.values, strict=True
                )
            ],
            so_far=(stream.won_weekly.so_far or 0) + (stream.lost_weekly.so_far or 0),
        )
        return WeeklyFlow(
            "the stream",
            stream.arrivals_weekly,
            stream.won_weekly,
            stream.lost_weekly,
            closed,
            "closed",
            stream.xmr.won_weekly,
            all_channels=False,
        )
    return WeeklyFlow(
        cycle.name,
        cycle.arrivals_weekly,
        cycle.won_weekly,
        cycle.lost_weekly,
        cycle.departures_weekly,
        f"left {cycle.name}",
        xmr([float(value) for value in cycle.won_weekly.values]),
        all_channels=document.query.channel_key is not None,
    )


def _in_where(flow: WeeklyFlow) -> str:
    if flow.where == "the stream":
        return ""
    return f" in {flow.where}" + (" (all channels)" if flow.all_channels else "")


def throughput_run_chart(document: StreamMetricsDocument) -> Chart:
    """Won deals per full ISO week with their XmR natural process limits; weeks that
    signal (outside the limits, a jump beyond the moving-range limit, eight on one side
    of the mean) are marked."""
    flow = weekly_flow(document)
    won, limits = flow.won, flow.won_xmr
    labels = _week_labels(document)
    signals: dict[int, list[str]] = {}
    for signal in limits.signals:
        signals.setdefault(signal.index, []).append(signal.rule)
    if limits.mean is not None and limits.mean < MIN_MEAN_FOR_LIMITS:
        # Rare counts: the rules still fire, but say nothing reliable (see the verdict).
        signals = {index: [*rules, SPARSE_NOTE] for index, rules in signals.items()}
    lines = [
        ReferenceLine(label, value)
        for label, value in (
            ("mean", limits.mean),
            ("upper natural process limit", limits.upper),
            ("lower natural process limit", limits.lower),
        )
        if value is not None
    ]
    return Chart(
        key="throughput",
        title=f"Won deals per week{_in_where(flow)}",
        caption=(
            "Each bar is the deals won in one full ISO week (each deal once, in the week of "
            "its final win). Between the natural process limits the weeks differ by routine "
            "variation; a marked week is a signal worth a look. "
            + _so_far_note(document, won, "won")
        ),
        labels=labels,
        series=[Series("won", list(won.values))],
        columns=["week", "won", "signal"],
        rows=[
            [week, value, "; ".join(signals.get(index, []))]
            for index, (week, value) in enumerate(zip(labels, won.values, strict=True))
        ],
        lines=lines,
        marks=[(index, "; ".join(rules)) for index, rules in sorted(signals.items())],
        empty_reason=_throughput_gap(won, limits.mean),
        verdict=_last_week_verdict(labels, won.values, limits, signals),
    )


# Below one deal a week on average, weekly counts are mostly 0 and 1: XmR limits on
# such rare counts raise signals from nothing (Wheeler, *Understanding Variation*:
# rare events are better charted as the time between them).
MIN_MEAN_FOR_LIMITS = 1.0
SPARSE_NOTE = "not reliable: under one won deal a week"


def _last_week_verdict(
    labels: list[str],
    values: list,
    xmr,
    signals: dict[int, list[str]],
) -> str | None:
    """Whether the last full week's won count is a signal or routine variation."""
    if xmr.upper is None or not values or not any(values):
        return None
    last = len(values) - 1
    week = f"Last week (from {_day(labels[last])}): {values[last]} won"
    if xmr.mean < MIN_MEAN_FOR_LIMITS:
        return (
            f"{week}. Too few deals are won ({xmr.mean:g} a week on average) for process "
            "limits to tell a signal from noise: read the marks with care."
        )
    if last in signals:
        return f"{week}, a signal ({'; '.join(signals[last])}): something changed, find out what."
    return (
        f"{week}, within the natural process limits ({xmr.lower:g} to {xmr.upper:g}) and no "
        "other rule broken: routine variation (noise), not a signal."
    )


def _day(iso: str) -> str:
    """An ISO date as the pages write dates: 23 Nov 2026."""
    day = date.fromisoformat(iso)
    return f"{day.day} {day:%b %Y}"


def _throughput_gap(won: WeeklySeries, mean: float | None) -> str | None:
    if mean is None:
        return "Fewer than two weeks of data: no process limits yet."
    if not any(won.values):
        return f"No deal was won in these {len(won.values)} weeks."
    return None


def demand_vs_capacity_chart(document: StreamMetricsDocument) -> Chart:
    """Prospects arriving against deals won and cards finished per full week: the
    stream's closed (won + lost), or with a cycle filter the cards that left it."""
    flow = weekly_flow(document)
    labels = _week_labels(document)
    averages = document.stream.demand_vs_capacity
    if flow.where == "the stream":
        means = (
            f"On average {averages.arrivals_per_week} arrive and "
            f"{averages.departures_per_week} close a week ({averages.won_per_week} won); "
        )
    else:
        means = ""
    return Chart(
        key="demand",
        title=f"Arrivals against throughput{_in_where(flow)}",
        caption=(
            f"Demand comes from the market: prospects arriving{_in_where(flow)} each week, "
            f"against the deals won and the cards that finished ({flow.left_name}). "
            + (means + "arrivals" if means else "Arrivals")
            + " above them for weeks on end mean work in process is growing. "
            + _so_far_note(document, flow.arrivals, "arrived")
        ),
        labels=labels,
        series=[
            Series("arrivals", list(flow.arrivals.values), "line"),
            Series("won", list(flow.won.values)),
            Series(flow.left_name, list(flow.left.values), "line"),
        ],
        columns=["week", "arrivals", "won", flow.left_name],
        rows=[
            [week, arrived, won, left]
            for week, arrived, won, left in zip(
                labels, flow.arrivals.values, flow.won.values, flow.left.values, strict=True
            )
        ],
    )


def conversion_funnel_chart(document: StreamMetricsDocument, *, cycle_id: int) -> Chart:
    """One cycle's funnel for the cohort that entered it in the window: cards that
    reached each step, and the share of the step before that moved on; then the same
    per channel (the channel each card arrived through), largest cohort first."""
    cycle = next(doc for doc in document.cycles if doc.id == cycle_id)
    steps = cycle.conversion.all
    names = {str(row.channel_id or 0): row.name for row in document.channels.rows}
    by_channel = sorted(
        cycle.conversion.by_channel.items(),
        key=lambda item: (-(item[1][0].reached if item[1] else 0), names.get(item[0], item[0])),
    )
    channel_names = [names.get(key, "No channel" if key == "0" else key) for key, _ in by_channel]
    return Chart(
        key=f"funnel-{cycle_id}",
        title=f"Conversion in {cycle.name}",
        caption=(
            f"The {cycle.conversion.cohort} cards that entered {cycle.name} in this period, "
            "and how many reached each step at least once (ever reached: a card that went "
            "back still counts); won counts the cards whose final state is won. The rate "
            "is the share of the step before that moved on past it, never above 100%. "
            "The other bars split the same cards by the channel they arrived through."
        ),
        labels=[step.step for step in steps],
        series=[
            Series("reached", [step.reached for step in steps]),
            *(
                Series(name, [step.reached for step in channel_steps])
                for name, (_, channel_steps) in zip(channel_names, by_channel, strict=True)
            ),
        ],
        columns=[
            "step",
            "reached",
            "share of the cohort",
            "share of the step before",
            *(f"{name}: reached" for name in channel_names),
            *(f"{name}: share of the step before" for name in channel_names),
        ],
        rows=[
            [
                step.step,
                step.reached,
                step.cumulative,
                step.next_step,
                *(channel_steps[index].reached for _, channel_steps in by_channel),
                *(channel_steps[index].next_step for _, channel_steps in by_channel),
            ]
            for index, step in enumerate(steps)
        ],
        empty_reason=None
        if cycle.conversion.cohort
        else f"No card entered {cycle.name} in this period.",
    )


@dataclass(frozen=True)
class ConversionLine:
    """One conversion step an experiment targets, week by week: ``step`` names it
    ("Information → Knowledge, Sales/Buying"); ``weekly``: its conversion in % (0..100)
    in each week of the chart, None for a week with nothing to measure; ``cards``: the
    cards those values rest on; ``targets``: its experiments' targets, in %."""

    step: str
    weekly: list[float | None]
    cards: int
    targets: list[float] = field(default_factory=list)


CONVERSION_WEEKLY_KEY = "conversion-weekly"
CONVERSION_WEEKLY_EMPTY = (
    "No running or checked experiment targets a conversion step. This chart would show "
    "such a step's conversion week by week, with the experiment's window and target. "
    "Plan an experiment on a conversion step to follow its conversion week by week."
)


def conversion_weekly_chart(
    *,
    weeks: list[date],
    lines: list[ConversionLine],
    windows: list[Window],
    experiments: int,
    left_out: int = 0,
    all_channels: bool = False,
) -> Chart:
    """The weekly conversion (%) of each step that a running or checked experiment
    targets, over ``weeks`` (Mondays of full weeks), the experiments' ``windows`` as
    bands and their targets as reference lines. ``experiments``: how many such
    experiments there are (0: the chart says how to get one); ``left_out``: the targeted
    steps not drawn (the chart has a line cap); ``all_channels``: the page has a channel
    filter that the measure does not apply."""
    labels = [week.isoformat() for week in weeks]
    more = (
        f" {left_out} more targeted step{'s' if left_out != 1 else ''} not drawn: the chart "
        "keeps the steps of the newest experiments; the experiments page lists them all."
        if left_out
        else ""
    )
    caption = (
        "Each line is a conversion step that a running or checked experiment targets: of "
        "the cards that left the step's column in a week, the share that moved on (not "
        "back, not lost), in %, as the experiment's Check measures it (every channel). "
        "Shaded: the experiments' windows; a horizontal line is an experiment's target. A "
        "week in which no card left has no point." + more
    )
    if lines:
        caption += (
            " Cards that left over these weeks: "
            + "; ".join(f"{line.cards} at {line.step}" for line in lines)
            + "."
        )
    if not experiments:
        empty: str | None = CONVERSION_WEEKLY_EMPTY
    elif not weeks:
        empty = "The experiments' baselines start after this range: no full week to draw yet."
    elif not any(value is not None for line in lines for value in line.weekly):
        empty = "No card passed the targeted steps in these weeks."
    else:
        empty = None
    bands = window_bands(labels, windows, weekly=True)
    in_window = [
        "; ".join(band.label for band in bands if band.start <= label <= band.end)
        for label in labels
    ]
    references: list[ReferenceLine] = []
    for line in lines:
        for target in line.targets:
            reference = ReferenceLine(f"{line.step}: target", target)
            if reference not in references:
                references.append(reference)
    return Chart(
        key=CONVERSION_WEEKLY_KEY,
        title="Conversion per week" + (" (all channels)" if all_channels else ""),
        caption=caption,
        labels=labels,
        series=[Series(line.step, list(line.weekly), "line") for line in lines],
        columns=["week", *(f"{line.step} (%)" for line in lines), "experiment window"],
        rows=[
            [label, *(line.weekly[index] for line in lines), in_window[index]]
            for index, label in enumerate(labels)
        ],
        lines=references,
        empty_reason=empty,
        bands=bands,
    )


def channel_pareto_chart(document: StreamMetricsDocument) -> Chart:
    """Won value per channel, largest first, with the running share and the 80% set."""
    rows = document.channels.rows
    return Chart(
        key="pareto",
        title="Won value by channel",
        caption=(
            "Each bar is the estimated value of the deals won through one channel (each "
            "card under the channel it arrived through, by its final state); the line is "
            "the running share of all won value. The marked channels bring 80% of it: "
            "protect and improve them first."
        ),
        labels=[row.name for row in rows],
        series=[
            Series("won value", [float(row.won_value) for row in rows]),
            Series("cumulative share", [row.cumulative_share for row in rows], "line"),
        ],
        columns=["channel", "arrivals", "won", "lost", "win rate", "won value", "cumulative"],
        rows=[
            [
                row.name,
                row.arrivals,
                row.won,
                row.lost,
                row.win_rate,
                str(row.won_value),
                row.cumulative_share,
            ]
            for row in rows
        ],
        lines=[ReferenceLine("80% of won value", 0.8)],
        marks=[(index, "in the 80% set") for index, row in enumerate(rows) if row.in_pareto_80],
        empty_reason=None if any(row.won for row in rows) else "No deal won in this period.",
        # One channel's own share of itself says nothing.
        verdict=_pareto_verdict(rows) if document.query.channel_key is None else None,
    )


def _pareto_verdict(rows) -> str | None:
    if not rows or not rows[0].won_value or rows[0].cumulative_share is None:
        return None
    leader = rows[0]
    sentence = f"{leader.name} brings the most won value: {leader.cumulative_share:.0%} of it."
    vital = [row.name for row in rows if row.in_pareto_80]
    if len(vital) > 1:
        sentence += f" {', '.join(vital[:-1])} and {vital[-1]} together bring 80%."
    return sentence


def littles_law_chart(document: StreamMetricsDocument) -> Chart:
    """Per column: average WIP against throughput x mean time in column."""
    checked = [column for column in document.columns if column.littles_law.checked]
    return Chart(
        key="littles-law",
        title="Little's law per column",
        caption=(
            "For a column in a steady state, its average WIP equals its throughput (per day) "
            "times the mean time a card spends in it. A pair far apart (a gap over 25%) "
            "means the column is filling up or draining."
        ),
        labels=[f"{column.cycle} / {column.name}" for column in checked],
        series=[
            Series("average WIP", [column.littles_law.average_wip for column in checked]),
            Series(
                "throughput x time in column",
                [column.littles_law.throughput_x_time for column in checked],
            ),
        ],
        columns=["column", "average WIP", "throughput x time", "relative gap", "steady"],
        rows=[
            [
                f"{column.cycle} / {column.name}",
                column.littles_law.average_wip,
                column.littles_law.throughput_x_time,
                column.littles_law.relative_gap,
                "no" if column.littles_law.disagrees else "yes",
            ]
            for column in checked
        ],
        empty_reason=None if checked else "No column finished a visit in this period.",
    )


def cumulative_flow_chart(query: MetricsQuery, *, flow: dict | None = None) -> Chart:
    """A cumulative flow diagram of the window: at the bottom the cards that left
    (won or lost; with a cycle filter, left the cycle), counted from the first day; above
    it each column's cards at the end of each day, in flow order, the last column
    lowest. ``flow``: ``cumulative_flow(query)`` when the caller has it already."""
    flow = flow if flow is not None else cumulative_flow(query)
    columns = flow["columns"]
    names = {column["id"]: f"{column['cycle']} / {column['name']}" for column in columns}
    if query.cycle_id is not None:
        done_name, done_what = "left the cycle", "that left the cycle (handed on, won or lost)"
    else:
        done_name, done_what = "done (won or lost)", "that were won or lost"
    return Chart(
        key="cumulative-flow",
        title="Cumulative flow",
        caption=(
            f"The bottom band counts the cards {done_what} since the first day: its slope "
            "is the throughput. Each band above it is one "
            "column's cards at the end of each day, in flow order, built from the moves; "
            "the top edge is every card that arrived. A band that widens is work piling up "
            "in that column; a band that stays flat while the ones above it widen is "
            "starving."
        ),
        labels=flow["days"],
        series=[
            Series(done_name, list(flow["done"]), "area"),
            *(
                Series(names[column["id"]], list(column["wip"]), "area")
                for column in reversed(columns)
            ),
        ],
        columns=["day", *(names[column["id"]] for column in columns), done_name],
        rows=[
            [day, *(column["wip"][index] for column in columns), flow["done"][index]]
            for index, day in enumerate(flow["days"])
        ],
        empty_reason=None
        if any(any(column["wip"]) for column in columns) or any(flow["done"])
        else "No card was on the board in this period.",
    )


def cycle_time_scatter(
    query: MetricsQuery,
    document: StreamMetricsDocument,
    *,
    dots: list[FinishedCard] | None = None,
) -> Chart:
    """Each card that finished in the window as a dot: when it finished, and its lead
    time (entry to final win), or its cycle time in ``query.cycle_id``; with the 50th,
    85th and 95th percentile lines. A dot names its card and links to it."""
    if query.cycle_id is not None:
        cycle = next(doc for doc in document.cycles if doc.id == query.cycle_id)
        spread, what = cycle.cycle_time, f"cycle time in {cycle.name}"
    else:
        spread, what = document.stream.lead_time, "lead time, from entry to won"
    dots = dots if dots is not None else finished_cards(query)
    return Chart(
        key="cycle-time",
        title=f"{what[0].upper()}{what[1:]}",
        caption=(
            f"Each dot is a card that finished in this period: the day it finished and its "
            f"{what}, in days. 85% of the dots lie on or under the 85th percentile line: "
            "a fair answer to 'how long will this take?'. Lost cards are not dots; "
            f"{spread.abandoned} were abandoned in this period."
        ),
        labels=[dot.finished_on.isoformat() for dot in dots],
        series=[Series("days", [dot.days for dot in dots], "scatter")],
        columns=["card", "finished", "days", "link"],
        rows=[[dot.name, dot.finished_on.isoformat(), dot.days, dot.url] for dot in dots],
        lines=[
            ReferenceLine(f"{p}th percentile", value)
            for p, value in ((50, spread.p50), (85, spread.p85), (95, spread.p95))
            if value is not None
        ],
        empty_reason=None
        if spread.count >= MIN_FOR_PERCENTILES
        else (
            f"{spread.count} cards finished in this range: percentiles need at least "
            f"{MIN_FOR_PERCENTILES}."
        ),
        dots=Dots(
            [dot.card_id for dot in dots], [dot.name for dot in dots], card_url_prefix(query.stream)
        ),
        verdict=(
            f"85% of the {spread.count} cards that finished took {spread.p85:g} days or less."
            if spread.count >= MIN_FOR_PERCENTILES and spread.p85 is not None
            else None
        ),
    )


def aging_chart(
    query: MetricsQuery,
    document: StreamMetricsDocument,
    *,
    ended_before_today: bool = False,
    cards: list[AgingCard] | None = None,
) -> Chart:
    """Each open card as a dot in its column, at its age in that column (days), against
    the 50th and 85th percentile of the time cards spent in the column. Ages are
    today's: with ``ended_before_today`` (a range in the past) the chart says so and
    shows none. ``cards``: ``aging_cards(query)`` when the caller has them already."""
    columns = document.columns
    position = {column.id: index for index, column in enumerate(columns)}
    labels = [f"{column.cycle} / {column.name}" for column in columns]
    if ended_before_today:
        # Card states are today's (the fold keeps no past positions): a range that ends
        # before today has no honest ages to show.
        dots = []
        empty: str | None = "Work item age is today's: set the range to end today to see it."
    else:
        cards = cards if cards is not None else aging_cards(query)
        dots = [card for card in cards if card.column_id in position]
        empty = None if dots else "No open card."
    return Chart(
        key="aging",
        title="Work item age",
        caption=(
            "Each dot is an open card, in its column, at the days it has been there. Above "
            "a column's 85th percentile line it has stayed longer than 85% of the cards "
            "before it: look at it first."
        ),
        labels=labels,
        series=[
            Series("age in column (days)", [card.days for card in dots], "scatter"),
            Series("column", [position[card.column_id] for card in dots], "scatter"),
            Series("50th percentile", [column.time_in_column.p50 for column in columns], "line"),
            Series("85th percentile", [column.time_in_column.p85 for column in columns], "line"),
        ],
        columns=["card", "column", "days in column", "column's 85th percentile", "link"],
        rows=[
            [
                card.name,
                labels[position[card.column_id]],
                card.days,
                columns[position[card.column_id]].time_in_column.p85,
                card.url,
            ]
            for card in dots
        ],
        empty_reason=empty,
        dots=Dots(
            [card.card_id for card in dots],
            [card.name for card in dots],
            card_url_prefix(query.stream),
        ),
        verdict=_aging_verdict(dots, columns, position),
    )


def _aging_verdict(dots, columns, position) -> str | None:
    if not dots:
        return None
    late = [
        card
        for card in dots
        if (p85 := columns[position[card.column_id]].time_in_column.p85) is not None
        and card.days > p85
    ]
    if not late:
        return "No open card has stayed in its column longer than its 85th percentile."
    return (
        f"{len(late)} of {len(dots)} open cards have stayed in their column longer than 85% "
        f"of the cards before them; the oldest, {late[0].name}, {late[0].days:g} days."
    )


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def window_bands(labels: list[str], windows: list[Window], *, weekly: bool) -> list[Band]:
    """``windows`` as bands on an x axis of ``labels``, clipped to its range (a window
    outside it is left out). ``weekly``: the labels are week Mondays (a window covers the
    weeks its days fall in); else ISO days on a time axis."""
    if not windows or not labels:
        return []
    first, last = min(labels), max(labels)
    bands = []
    for window in windows:
        start, end = window.first_day, window.last_day
        if weekly:
            start, end = _monday(start), _monday(end)
        start_label, end_label = max(start.isoformat(), first), min(end.isoformat(), last)
        if start_label <= end_label:
            bands.append(Band(window.label, start_label, end_label))
    return bands


def with_windows(chart: Chart, windows: list[Window], *, weekly: bool) -> Chart:
    """``chart`` with ``windows`` marked as bands (see window_bands)."""
    bands = window_bands(chart.labels, windows, weekly=weekly)
    return replace(chart, bands=bands) if bands else chart


def _experiment_caption(experiment: Experiment, limits: XmR, unit: str) -> str:
    weeks, window = experiment.baseline_weeks, experiment.planned_weeks
    length = (
        "as long as the window"
        if weeks == window
        else f"{weeks} weeks although the window has {window}: limits drawn from fewer "
        "weeks are too soft to tell a signal from noise"
    )
    caption = (
        f"Each bar is one full week's value ({unit}): the {weeks} baseline weeks before the "
        f"window ({length}), then the {window} weeks of the window (shaded). Between the "
        "baseline's natural process limits a week differs by routine variation; beyond "
        "them, or in a long run on one side of the central line, the change is a signal."
    )
    if (
        limits.mean is not None
        and experiment.baseline is not None
        and abs(limits.mean - float(experiment.baseline)) >= 0.005
    ):
        caption += (
            f" The central line, {limits.mean:.4g} {unit}, is the mean of the baseline's "
            f"weekly values; the baseline figure, {experiment.baseline.normalize():f} "
            f"{unit}, counts all its {experiment.baseline_cards} cards together: the two "
            "differ when weeks hold different numbers of cards."
        )
    return caption


def experiment_chart(experiment: Experiment, limits: XmR) -> Chart:
    """An experiment's metric per full week: the baseline's weeks, then the window's
    (its measured weeks once checked), with the baseline's central line and natural
    process limits, the target, and the window marked."""
    unit = METRIC_UNIT[experiment.targeted_metric]
    baseline_mondays = [
        experiment.baseline_first_day + timedelta(weeks=n) for n in range(experiment.baseline_weeks)
    ]
    window_mondays = [
        experiment.window_start + timedelta(weeks=n) for n in range(experiment.planned_weeks)
    ]
    baseline = list(experiment.baseline_weekly) or [None] * len(baseline_mondays)
    measured = list(experiment.measured_weekly)
    measured += [None] * (len(window_mondays) - len(measured))
    labels = [monday.isoformat() for monday in baseline_mondays + window_mondays]
    values: list[float | int | None] = [*baseline, *measured]
    lines = [
        ReferenceLine(label, value)
        for label, value in (
            ("central line", limits.mean),
            ("upper natural process limit", limits.upper),
            ("lower natural process limit", limits.lower),
            ("target", float(experiment.target)),
        )
        if value is not None
    ]
    periods = ["baseline"] * len(baseline_mondays) + ["window"] * len(window_mondays)
    return Chart(
        key="experiment",
        title=f"{experiment.get_targeted_metric_display()} per week",
        caption=_experiment_caption(experiment, limits, unit),
        labels=labels,
        series=[Series(f"{experiment.get_targeted_metric_display()} ({unit})", values)],
        columns=["week", "period", unit],
        rows=[
            [label, period, value]
            for label, period, value in zip(labels, periods, values, strict=True)
        ],
        lines=lines,
        empty_reason=None
        if experiment.baseline_weekly
        else "The baseline is measured when the experiment starts: nothing to draw yet.",
        bands=[Band("window", window_mondays[0].isoformat(), _last_window_monday(experiment))],
    )


def _last_window_monday(experiment: Experiment) -> str:
    """The Monday of the window's last week drawn: the planned last week, or the week of
    the last day measured when it stopped early."""
    last_day = experiment.measured_last_day if experiment.stopped_at else experiment.window_last_day
    last_day = max(last_day, experiment.window_start)
    return (last_day - timedelta(days=last_day.weekday())).isoformat()


LOST_REASONS_KEY = "lost-reasons"
LOST_REASONS_CHANNELS_KEY = "lost-reasons-channels"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "0%"


def _lost_reasons_chart(
    lost: LostReasons,
    *,
    key: str,
    title: str,
    place: str,
    places: list[Place],
    counts: Counter[tuple[str, int | None]],
    caption: str,
) -> Chart:
    """Lost cards per place (a column or a channel), stacked by reason; the table holds
    the same counts, one row per place, with its total."""
    totals = {p.key: sum(counts[(reason, p.key)] for reason in lost.reasons) for p in places}
    verdict = None
    if lost.total:
        by_reason = {
            reason: sum(counts[(reason, p.key)] for p in places) for reason in lost.reasons
        }
        top = max(lost.reasons, key=lambda reason: (by_reason[reason], -lost.reasons.index(reason)))
        worst = max(places, key=lambda p: (totals[p.key], -places.index(p)))
        verdict = (
            f"“{top}” is the most frequent reason: {by_reason[top]} of the {lost.total} lost "
            f"deals ({_share(by_reason[top], lost.total)}). The {place} with the most losses: "
            f"{worst.name} ({totals[worst.key]})."
        )
    return Chart(
        key=key,
        title=title,
        caption=caption,
        labels=[p.name for p in places],
        series=[
            Series(reason, [counts[(reason, p.key)] for p in places]) for reason in lost.reasons
        ],
        columns=[place, *lost.reasons, "lost"],
        rows=[
            [p.name, *(counts[(reason, p.key)] for reason in lost.reasons), totals[p.key]]
            for p in places
        ],
        empty_reason=None if lost.total else "No deal was lost in this period.",
        verdict=verdict,
    )


def lost_reasons_by_column_chart(lost: LostReasons) -> Chart:
    """The deals lost in the window, per column they were lost in, by reason."""
    return _lost_reasons_chart(
        lost,
        key=LOST_REASONS_KEY,
        title="Why deals were lost, per column",
        place="column",
        places=lost.columns,
        counts=lost.by_column,
        caption=(
            "Each bar is the deals lost in one column in this period (each deal once, by its "
            "final loss), split by the reason the seller chose from the stream's list. "
            f"“{NOTE_ONLY}”: a note in the seller's words only; “{NOT_RECORDED}”: lost "
            "before the stream kept reasons. Why we lose is knowledge: a reason that piles "
            "up in one column is a step to improve."
        ),
    )


def lost_reasons_by_channel_chart(lost: LostReasons) -> Chart:
    """The deals lost in the window, per channel they came through, by reason."""
    return _lost_reasons_chart(
        lost,
        key=LOST_REASONS_CHANNELS_KEY,
        title="Why deals were lost, per channel",
        place="channel",
        places=lost.channels,
        counts=lost.by_channel,
        caption=(
            "Each bar is the deals lost in this period that came through one channel (each "
            "deal once, by its final loss), split by reason: which channels bring prospects "
            "we cannot serve, and why."
        ),
    )
