"""The weekly review of a stream: one full ISO week's tiles and charts against the week
before and the average of the window's weeks, what stood out first, and what the
managers decided.

The review covers the weeks from the ISO week of the stream's first event to the last
full week (``ReviewWeeks``); it reads each through ``week_query``: 12 full weeks that end
with it, or only those since the stream's first week, so that the weeks before the
stream existed do not count as zeros in its averages and process limits.

``weekly_review_get`` reads the week from the snapshot taken the Monday after it, when
there is one whose window is the review's (its document: the numbers, the constraint and
the cards over their cycle's 85th percentile as they stood then), else replays it from
the move log (``MetricsQuery.for_week``): the counts stop at the week's end; the fold
keeps no past positions, so the open cards are today's that were already in their
present column at the week's end, their ages counted to the week's end (a card moved or
closed since is left out). Either way the charts drawn from the log's aggregates
(cumulative flow, cycle time dots) stop at the week's end; the work item age chart,
whose card states are today's, shows its dots only on the Monday right after the week
(as the dashboard does for a range that ends before today). Its number of queries does
not depend on the length of the history, the number of cards or of entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Subquery

from boards.models import Card, card_display_name
from boards.templatetags.board_tags import card_url_prefix
from metrics.charts import Chart
from metrics.models import ReviewEntry, ReviewEntryKind, WeeklySnapshot
from metrics.selectors.dashboard import Dashboard, dashboard_chart, dashboard_get
from metrics.selectors.document import stream_metrics_compute
from metrics.selectors.query import (
    WINDOW_WEEKS,
    MetricsQuery,
    last_full_week,
    stream_first_week,
)
from metrics.selectors.readmodel import (
    Constraint,
    SchemaError,
    StreamMetricsDocument,
    WeeklySeries,
    XmR,
)
from vsm.errors import NotFound
from vsm.models import ValueStream

# The picker offers the last this many full weeks, beside the weeks that have a snapshot
# or entries (none before the stream's first week).
PICKER_WEEKS = 26

# The XmR series whose signals the review reports, in this order: the series in the
# document, its name in words, its unit (count, share, days) and the tile that shows it.
SIGNAL_SERIES = (
    ("won_weekly", "Won", "count", "won"),
    ("win_rate_weekly", "Conversion to won", "share", "win-rate"),
    ("lead_time_median_weekly", "Lead time median", "days", "time-p50"),
)


class WeekNotReviewable(NotFound, ValueError):
    """The week asked for is not one the review covers (see ReviewWeeks)."""

    code = "week_not_reviewable"


def week_query(stream: ValueStream, monday: date, *, first_week: date) -> MetricsQuery:
    """The query the review and the digest read the ISO week of ``monday`` with: the 12
    full weeks that end with it (MetricsQuery.for_week), or, near the stream's start,
    only the weeks since ``first_week``, so that the weeks before the stream existed do
    not count as zeros in the averages and the process limits. Raises: ValueError
    (``monday`` is not a Monday)."""
    since_first = (monday - first_week).days // 7 + 1
    return MetricsQuery.for_week(stream, monday, weeks=max(1, min(WINDOW_WEEKS, since_first)))


@dataclass(frozen=True)
class ReviewWeeks:
    """The weeks a stream's review covers: the Mondays from ``first``, the ISO week of
    the stream's first event, to ``last``, the last full week. Empty (false) while the
    stream's first week is not over (``first`` after ``last``)."""

    first: date
    last: date

    def __contains__(self, monday: object) -> bool:
        return (
            isinstance(monday, date) and monday.weekday() == 0 and self.first <= monday <= self.last
        )

    def __bool__(self) -> bool:
        return self.first <= self.last

    def query(self, stream: ValueStream, monday: date) -> MetricsQuery:
        return week_query(stream, monday, first_week=self.first)


def review_weeks(stream: ValueStream, *, now: datetime | None = None) -> ReviewWeeks:
    """The weeks the stream's review covers at ``now`` (default: the present). One query."""
    return ReviewWeeks(first=stream_first_week(stream), last=last_full_week(now))


def _not_reviewable(monday: date, weeks: ReviewWeeks) -> WeekNotReviewable:
    if not weeks:
        return WeekNotReviewable(
            "The stream's first week is not over yet: there is no week to review."
        )
    return WeekNotReviewable(
        f"{monday} does not start a week the review covers: the Mondays from "
        f"{weeks.first} (the stream's first week) to {weeks.last}."
    )


@dataclass(frozen=True)
class Anomaly:
    """One thing of the reviewed week worth a look first, in words.

    ``kind``: signal (an XmR signal on the week), constraint (the constraint changed
    against the week before) or aging (an open card older in its cycle than the cycle's
    85th percentile). ``href``: where to look (a tile or section of the page, or a card);
    ``link_text`` names it.
    """

    kind: str
    text: str
    href: str
    link_text: str


@dataclass(frozen=True)
class WeekChoice:
    """A week the picker offers: its Monday, whether a snapshot was taken the Monday
    after it, and how many decisions and notes were recorded for it (withdrawn ones
    included)."""

    monday: date
    snapshot: bool
    entries: int


@dataclass(frozen=True)
class WeeklyReview:
    """The review of the ISO week of ``week`` (a Monday).

    ``dashboard``: the tiles (that week against the week before and the window's
    average) and the charts of the window that ends with it: 12 weeks, or the weeks
    since ``first_week``, the stream's first (see week_query). ``snapshot_taken_at``:
    when the snapshot it comes from was taken (None: replayed from the move log: the
    open cards are today's that were in their present column at the week's end, aged to
    the week's end). ``previous_from_snapshot``: whether the week before, which the
    constraint is compared with, came from its snapshot too (else replayed).
    ``anomalies``: XmR signals, then a change of constraint, then cards older than their
    cycle's 85th percentile.
    ``entries``: the week's decisions and notes, oldest first, withdrawn ones included.
    ``decided_last_time``: the standing decisions of ``last_time_week``, the latest
    earlier week that has any. ``weeks``: the picker's weeks, newest first.
    ``previous_week``: None on the stream's first week; ``next_week``: None when
    ``week`` is the last full week.
    """

    stream: ValueStream
    week: date
    first_week: date
    dashboard: Dashboard
    snapshot_taken_at: datetime | None
    previous_from_snapshot: bool
    anomalies: list[Anomaly]
    entries: list[ReviewEntry]
    decided_last_time: list[ReviewEntry]
    last_time_week: date | None
    weeks: list[WeekChoice]
    previous_week: date | None
    next_week: date | None

    @property
    def from_snapshot(self) -> bool:
        return self.snapshot_taken_at is not None

    @property
    def week_end(self) -> date:
        """The Sunday that ends the week."""
        return self.week + timedelta(days=6)

    @property
    def window_from_first_week(self) -> bool:
        """Whether the window starts with the stream's first week (shorter than 12 weeks,
        or exactly 12 from it): its average is of the weeks since the stream began."""
        weeks = self.dashboard.document.window.weeks
        return bool(weeks) and weeks[0] == self.first_week


def weekly_review_get(
    stream: ValueStream, monday: date, *, now: datetime | None = None
) -> WeeklyReview:
    """The weekly review of ``stream`` for the ISO week starting on ``monday``.

    Raises: WeekNotReviewable, a ValueError (``monday`` is not a week the review covers
    at ``now``, see ReviewWeeks).
    """
    weeks = review_weeks(stream, now=now)
    if monday not in weeks:
        raise _not_reviewable(monday, weeks)
    before = monday - timedelta(weeks=1) if monday > weeks.first else None
    snapshot_weeks = set(
        WeeklySnapshot.objects.filter(value_stream=stream).values_list("week_start", flat=True)
    )
    # The snapshot taken on the Monday after a week holds that week as its last full week.
    queries = {week: weeks.query(stream, week) for week in (monday, before) if week is not None}
    wanted = {
        week: query
        for week, query in queries.items()
        if week + timedelta(weeks=1) in snapshot_weeks
    }
    snapshots = _snapshot_documents(stream, wanted)
    dashboard, taken_at = _week_dashboard(queries[monday], snapshots)
    previous: StreamMetricsDocument | None = (
        snapshots[before][0] if before is not None and before in snapshots else None
    )
    previous_from_snapshot = previous is not None
    if previous is None and before is not None:
        previous = stream_metrics_compute(queries[before])
    document = dashboard.document
    anomalies = [
        *xmr_anomalies(document),
        *constraint_anomalies(document.constraint, previous.constraint if previous else None),
        *aging_anomalies(stream, document),
    ]
    entries = list(
        ReviewEntry.objects.filter(value_stream=stream, week_start=monday)
        .select_related("author", "withdrawn_by")
        .order_by("created_at", "id")
    )
    decided, last_time_week = decided_last_time(stream, monday)
    return WeeklyReview(
        stream=stream,
        week=monday,
        first_week=weeks.first,
        dashboard=dashboard,
        snapshot_taken_at=taken_at,
        previous_from_snapshot=previous_from_snapshot,
        anomalies=anomalies,
        entries=entries,
        decided_last_time=decided,
        last_time_week=last_time_week,
        weeks=week_choices(stream, monday, snapshot_weeks=snapshot_weeks, weeks=weeks),
        previous_week=before,
        next_week=monday + timedelta(weeks=1) if monday < weeks.last else None,
    )


def week_dashboard_get(
    stream: ValueStream, monday: date, *, now: datetime | None = None
) -> tuple[Dashboard, datetime | None]:
    """The dashboard of the ISO week of ``monday`` (its tiles and charts), and when the
    snapshot it comes from was taken (None: replayed).
    Raises: WeekNotReviewable (see weekly_review_get)."""
    query, document, taken_at = _week_source(stream, monday, now=now)
    return dashboard_get(query, document=document), taken_at


def week_chart_get(
    stream: ValueStream, monday: date, key: str, *, now: datetime | None = None
) -> Chart:
    """One chart of the week's dashboard (its CSV download), built alone.
    Raises: WeekNotReviewable; ChartNotFound (no chart of that key)."""
    query, document, _ = _week_source(stream, monday, now=now)
    return dashboard_chart(query, key, document=document)


def _week_source(
    stream: ValueStream, monday: date, *, now: datetime | None
) -> tuple[MetricsQuery, StreamMetricsDocument | None, datetime | None]:
    """The week's query, its snapshot's document (None: replayed) and when it was taken."""
    weeks = review_weeks(stream, now=now)
    if monday not in weeks:
        raise _not_reviewable(monday, weeks)
    query = weeks.query(stream, monday)
    document, taken_at = _snapshot_documents(stream, {monday: query}).get(monday, (None, None))
    return query, document, taken_at


def _week_dashboard(
    query: MetricsQuery, snapshots: dict[date, tuple[StreamMetricsDocument, datetime]]
) -> tuple[Dashboard, datetime | None]:
    document, taken_at = snapshots.get(query.window().weeks[-1], (None, None))
    return dashboard_get(query, document=document), taken_at


def _snapshot_documents(
    stream: ValueStream, queries: dict[date, MetricsQuery]
) -> dict[date, tuple[StreamMetricsDocument, datetime]]:
    """The documents of the snapshots taken the Monday after each of the weeks of
    ``queries`` (reviewed Mondays and the queries they are read with), by week, with
    when each was taken. A snapshot whose window is not its query's (taken late, by
    hand, for another week; or of the 12 weeks that end with the week when some of
    them came before the stream's first) or of an unknown schema is left out: the week
    is replayed instead. One query, none without weeks."""
    if not queries:
        return {}
    found = {}
    rows = WeeklySnapshot.objects.filter(
        value_stream=stream, week_start__in=[week + timedelta(weeks=1) for week in queries]
    )
    for taken_week, taken_at, data in rows.values_list("week_start", "taken_at", "data"):
        reviewed = taken_week - timedelta(weeks=1)
        try:
            document = StreamMetricsDocument.from_json(data)
        except SchemaError:
            continue
        if document.window.weeks == queries[reviewed].window().weeks:
            found[reviewed] = (document, taken_at)
    return found


def _amount(value: float | None, unit: str) -> str:
    """A value or limit in words: "0.41", "41%", "12.5 days"."""
    if value is None:
        return "nothing"
    if unit == "share":
        return f"{value * 100:.0f}%"
    if unit == "days":
        return f"{value:.1f} days"
    return f"{round(value, 2):g}"


def _signal_text(label: str, unit: str, series: WeeklySeries, xmr: XmR, rule: str) -> str:
    index = len(series.values) - 1
    value = series.values[index]
    shown = _amount(value, unit)
    if rule == "above the upper limit":
        return (
            f"{label}: {shown} in the week, above the upper natural process limit "
            f"({_amount(xmr.upper, unit)}): more than routine variation explains."
        )
    if rule == "below the lower limit":
        return (
            f"{label}: {shown} in the week, below the lower natural process limit "
            f"({_amount(xmr.lower, unit)}): more than routine variation explains."
        )
    if rule == "moving range above its upper limit":
        earlier = [v for v in series.values[:index] if v is not None]
        start = _amount(earlier[-1], unit) if earlier else "nothing"
        return (
            f"{label}: from {start} to {shown} since the week before, a jump above the "
            f"moving-range limit ({_amount(xmr.moving_range_upper, unit)})."
        )
    if rule == "eight in a row on one side of the mean":
        above = value is not None and xmr.mean is not None and value > xmr.mean
        side = "above" if above else "below"
        return (
            f"{label}: the eighth week in a row {side} its mean "
            f"({_amount(xmr.mean, unit)}): the process has shifted."
        )
    return f"{label}: {shown} in the week ({rule})."


def xmr_anomalies(document: StreamMetricsDocument) -> list[Anomaly]:
    """The XmR signals on the document's last full week: won, then conversion to won,
    then the lead time median; within a series, in the rules' order."""
    last = len(document.window.weeks) - 1
    found = []
    for name, label, unit, tile in SIGNAL_SERIES:
        series: WeeklySeries = getattr(document.stream, name)
        xmr: XmR = getattr(document.stream.xmr, name)
        for signal in xmr.signals:
            if signal.index == last:
                found.append(
                    Anomaly(
                        kind="signal",
                        text=_signal_text(label, unit, series, xmr, signal.rule),
                        href=f"#tile-{tile}",
                        link_text=f"The {label} tile",
                    )
                )
    return found


def constraint_anomalies(current: Constraint, previous: Constraint | None) -> list[Anomaly]:
    """A change of constraint (by column) from the week before's document to this one's;
    none when they agree or the week before is unknown."""
    if previous is None or previous.column_id == current.column_id:
        return []
    if current.column_id is None:
        text = (
            f"No column stands out as the constraint any more; the week before it was "
            f"{previous.name}."
        )
    elif previous.column_id is None:
        text = f"{current.name} became the constraint; the week before no column stood out."
    else:
        text = f"The constraint moved from {previous.name} to {current.name}."
    return [Anomaly(kind="constraint", text=text, href="#constraint", link_text="The evidence")]


def aging_anomalies(stream: ValueStream, document: StreamMetricsDocument) -> list[Anomaly]:
    """The open cards older in their cycle than the cycle's 85th percentile cycle time at
    the week's end, oldest first, with their names and links (one query; none without
    such cards), and a line for those the document counts but does not list."""
    aging = document.aging
    if not aging.over_cycle_p85:
        return []
    ids = [card.card_id for card in aging.over_cycle_p85]
    names = {
        card_id: card_display_name(person, company)
        for card_id, person, company in Card.objects.filter(
            value_stream=stream, pk__in=ids
        ).values_list("pk", "person_name", "company")
    }
    cycles = {cycle.id: cycle.name for cycle in document.cycles}
    columns = {column.id: column.name for column in document.columns}
    prefix = card_url_prefix(stream)
    found = []
    for card in aging.over_cycle_p85:
        name = names.get(card.card_id) or f"Card {card.card_id}"
        cycle = cycles.get(card.cycle_id, "its cycle")
        column = columns.get(card.column_id)
        where = f" (in its {column} column)" if column else ""
        found.append(
            Anomaly(
                kind="aging",
                text=(
                    f"{name}: {card.age_in_cycle_days:.1f} days in {cycle}{where}, older "
                    f"than the cycle's 85th percentile ({card.cycle_p85_days:.1f} days)."
                ),
                href=f"{prefix}{card.card_id}/",
                link_text=f"Open {name}",
            )
        )
    unlisted = aging.over_cycle_p85_count - len(aging.over_cycle_p85)
    if unlisted > 0:
        found.append(
            Anomaly(
                kind="aging",
                text=(
                    "And 1 more open card older than its cycle's 85th percentile."
                    if unlisted == 1
                    else f"And {unlisted} more open cards older than their cycle's 85th percentile."
                ),
                href="#chart-aging",
                link_text="See the work item age chart",
            )
        )
    return found


def decided_last_time(stream: ValueStream, monday: date) -> tuple[list[ReviewEntry], date | None]:
    """The standing (not withdrawn) decisions of the latest week before ``monday`` that
    has any, oldest first, and that week (None: no earlier decision). One query."""
    standing = ReviewEntry.objects.filter(
        value_stream=stream, kind=ReviewEntryKind.DECISION, withdrawn_at__isnull=True
    )
    latest = standing.filter(week_start__lt=monday).order_by("-week_start").values("week_start")[:1]
    decisions = list(
        standing.filter(week_start=Subquery(latest))
        .select_related("author")
        .order_by("created_at", "id")
    )
    return decisions, (decisions[0].week_start if decisions else None)


def week_choices(
    stream: ValueStream, monday: date, *, snapshot_weeks: set[date], weeks: ReviewWeeks
) -> list[WeekChoice]:
    """The weeks the picker offers, newest first: the last PICKER_WEEKS full weeks, the
    weeks a snapshot holds, the weeks with entries, and ``monday``; none before the
    stream's first week. One query."""
    entry_counts = dict(
        ReviewEntry.objects.filter(value_stream=stream)
        .order_by()
        .values("week_start")
        .annotate(n=Count("id"))
        .values_list("week_start", "n")
    )
    held = {week - timedelta(weeks=1) for week in snapshot_weeks}
    recent = {weeks.last - timedelta(weeks=n) for n in range(PICKER_WEEKS)}
    offered = {week for week in recent | held | set(entry_counts) | {monday} if week in weeks}
    return [
        WeekChoice(monday=week, snapshot=week in held, entries=entry_counts.get(week, 0))
        for week in sorted(offered, reverse=True)
    ]


def review_entry_in_week(stream: ValueStream, monday: date, entry_id: int) -> bool:
    """Whether the entry ``entry_id`` was recorded for this stream's week. One query."""
    return ReviewEntry.objects.filter(value_stream=stream, week_start=monday, pk=entry_id).exists()
