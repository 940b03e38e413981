"""The dashboard's "Conversion per week" chart, worked out by hand: a stream driven by
dated events through the board services, the expected numbers computed below from the
definitions, not by the code.

The script (09:00 UTC; settings.TIME_ZONE is UTC). Today is Wednesday 11 June 2025: the
last full week is the one of Monday 2 June. In Sales/Buying, each week's cards enter on
Monday, reach Information on Tuesday; on Wednesday the week's movers go on to Knowledge
(one in the week of 19 May is won from Information instead: moving on too); on Thursday
the others are lost in Information; on Friday the movers are won in Knowledge. Every
card is settled within its week, so the week it entered, reached the step and left it
are one week.

    week of       reached Information   moved on   conversion (%)
    14 Apr        1                     0          (before the chart)
    21 Apr        2                     1          50
    28 Apr        0                     0          no point (None)
     5 May        4                     1          25
    12 May        3                     1          33.3333 (1/3, four decimals)
    19 May        2                     2          100
    26 May        3                     0          0
     2 Jun        5                     2          40
     9 Jun        1                     1          (this week, not a full week)

The experiment on Sales/Buying's Information step runs from Monday 2 June for two weeks:
its baseline is max(2, 6) = 6 full weeks before, from Monday 21 April. So the chart has
the 7 weeks 21 Apr ... 2 Jun, and the window (2 Jun to 15 Jun, weeks of 2 and 9 June)
is clipped to its last label: one band on the week of 2 June. The target, 40 %, is a
reference line. Collaboration's Information step has 2 of 2 cards moving on in the week
of 5 May (100 %), and no card in the other weeks.
"""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from boards.models import Column, Outcome
from metrics.charts import (
    CONVERSION_WEEKLY_EMPTY,
    CONVERSION_WEEKLY_KEY,
    Band,
    ReferenceLine,
)
from metrics.experiments import MEASURES, Period, Scope
from metrics.selectors import MetricsQuery, stream_metrics_compute
from metrics.selectors.conversion_weekly import CONVERSION_LINES_MAX, CONVERSION_WEEKS_MAX
from metrics.selectors.dashboard import dashboard_chart, dashboard_get
from metrics.selectors.query import week_start
from metrics.services import stream_metrics_advance
from pdca.models import ExperimentDecision, ExperimentStage, TargetedMetric
from tests.factories import ExperimentFactory
from tests.metrics.scripted import Board
from tests.support import COLLABORATION, REPEAT, SALES, column_of, logged_in
from vsm.models import ValueStream

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
NOW = datetime.datetime(2025, 6, 11, 10, 0, tzinfo=UTC)
WINDOW_START = datetime.date(2025, 6, 2)
# Per week (Monday): cards that reach Sales/Buying's Information, and how many move on.
SALES_WEEKS = {
    datetime.date(2025, 4, 14): (1, 0),
    datetime.date(2025, 4, 21): (2, 1),
    datetime.date(2025, 5, 5): (4, 1),
    datetime.date(2025, 5, 12): (3, 1),
    datetime.date(2025, 5, 19): (2, 2),
    datetime.date(2025, 5, 26): (3, 0),
    datetime.date(2025, 6, 2): (5, 2),
    datetime.date(2025, 6, 9): (1, 1),
}
WON_FROM_INFORMATION = (datetime.date(2025, 5, 19), 1)  # the second mover of that week
COLLABORATION_WEEKS = {datetime.date(2025, 5, 5): (2, 2)}
MONDAYS = [datetime.date(2025, 4, 21) + datetime.timedelta(weeks=n) for n in range(7)]
SALES_STEP = f"Information → Knowledge, {SALES}"
HYPOTHESIS = "A trial offer moves more prospects from Information to Knowledge"


def at(monday: datetime.date, day: int) -> datetime.datetime:
    return datetime.datetime.combine(
        monday + datetime.timedelta(days=day), datetime.time(9), tzinfo=UTC
    )


def script(board: Board, cycle: str, weeks: dict) -> None:
    for monday, (reached, moved_on) in weeks.items():
        keys = [f"{cycle} {monday} {n}" for n in range(reached)]
        for key in keys:
            board.enter(key, None, 100, at(monday, 0), cycle=cycle)
        for key in keys:
            board.move(key, "Information", at(monday, 1))
        for n, key in enumerate(keys):
            if n >= moved_on:
                board.close(key, Outcome.LOST, at(monday, 3))
            elif (monday, n) == WON_FROM_INFORMATION:
                board.close(key, Outcome.WON, at(monday, 2))
            else:
                board.move(key, "Knowledge", at(monday, 2))
                board.close(key, Outcome.WON, at(monday, 4))  # Knowledge's WIP limit


@pytest.fixture
def board(stream: ValueStream, manager) -> Board:
    board = Board(stream, manager)
    script(board, SALES, SALES_WEEKS)
    script(board, COLLABORATION, COLLABORATION_WEEKS)
    stream_metrics_advance(stream_id=stream.pk)
    return board


def conversion_experiment(column: Column, stage: str = ExperimentStage.DO, **fields):
    """An experiment on ``column``'s conversion at ``stage``, with the fields the stage
    needs (the model's named constraints)."""
    fields.setdefault("window_start", WINDOW_START)
    fields.setdefault("hypothesis", HYPOTHESIS)
    fields.setdefault("planned_weeks", 2)
    started = datetime.datetime.combine(fields["window_start"], datetime.time(9), tzinfo=UTC)
    if stage != ExperimentStage.PLAN:
        fields |= {"started_at": started, "baseline": Decimal("30"), "baseline_cards": 12}
    if stage in (ExperimentStage.CHECK, ExperimentStage.ACT):
        fields.setdefault("stopped_at", started + datetime.timedelta(weeks=fields["planned_weeks"]))
        fields |= {
            "checked_at": fields["stopped_at"],
            "measured_value": Decimal("35"),
            "measured_cards": 10,
        }
    if stage == ExperimentStage.ACT:
        fields |= {"decision": ExperimentDecision.ADOPT, "decided_at": fields["checked_at"]}
    return ExperimentFactory(
        cycle=column.cycle,
        targeted_metric=TargetedMetric.CONVERSION,
        column=column,
        target=Decimal("40"),
        stage=stage,
        **fields,
    )


def chart_of(stream: ValueStream, **filters):
    return dashboard_chart(MetricsQuery(stream=stream, now=NOW, **filters), CONVERSION_WEEKLY_KEY)


def test_a_decided_experiment_stays_on_the_chart(board):
    """Adopted, adapted or abandoned after its Check, it still ran: its window and its
    step stay part of the stream's story."""
    conversion_experiment(board.column(SALES, "Information"), ExperimentStage.ACT)

    chart = chart_of(board.stream)

    assert [series.name for series in chart.series] == [SALES_STEP]
    assert chart.series[0].values == [50.0, None, 25.0, 33.3333, 100.0, 0.0, 40.0]
    assert [band.label for band in chart.bands] == [f"Experiment: {HYPOTHESIS[:40]}…"]


def test_a_targeted_step_is_its_weekly_conversion_with_the_window_and_the_target(board):
    stream = board.stream
    conversion_experiment(board.column(SALES, "Information"))
    # Not drawn: a plan, another metric, another stream's.
    conversion_experiment(board.column(SALES, "Knowledge"), ExperimentStage.PLAN)
    ExperimentFactory(cycle=board.column(SALES, "Data").cycle, stage=ExperimentStage.PLAN)

    chart = chart_of(stream)

    assert chart.labels == [monday.isoformat() for monday in MONDAYS]
    assert [series.name for series in chart.series] == [SALES_STEP]
    assert chart.series[0].values == [50.0, None, 25.0, 33.3333, 100.0, 0.0, 40.0]
    assert chart.series[0].kind == "line"
    assert chart.bands == [Band(f"Experiment: {HYPOTHESIS[:40]}…", "2025-06-02", "2025-06-02")]
    assert chart.lines == [ReferenceLine(f"{SALES_STEP}: target", 40.0)]
    assert chart.empty_reason is None
    assert chart.rows[0] == ["2025-04-21", 50.0, ""]
    assert chart.rows[-1] == ["2025-06-02", 40.0, chart.bands[0].label]
    # 2 + 0 + 4 + 3 + 2 + 3 + 5 cards passed the step in these weeks.
    assert f"19 at {SALES_STEP}" in chart.caption


def test_it_follows_the_funnels_and_downloads_as_csv(board, manager):
    stream = board.stream
    conversion_experiment(board.column(SALES, "Information"))
    dashboard = dashboard_get(MetricsQuery(stream=stream, now=NOW))
    keys = [chart.key for chart in dashboard.charts]
    last_funnel = max(i for i, key in enumerate(keys) if key.startswith("funnel-"))
    assert keys[last_funnel + 1] == CONVERSION_WEEKLY_KEY
    chart = dashboard.chart(CONVERSION_WEEKLY_KEY)
    assert chart == chart_of(stream)

    csv_url = reverse("metrics:dashboard-csv", args=[stream.slug, CONVERSION_WEEKLY_KEY])
    response = logged_in(manager).get(csv_url)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["week", f"{SALES_STEP} (%)", "experiment window"]
    # The download is today's: the chart of a query at the present.
    today = dashboard_chart(MetricsQuery.for_stream(stream), CONVERSION_WEEKLY_KEY)
    assert response.content.decode() == today.csv()
    assert len(rows) == 1 + len(today.labels) > 1


def test_a_stopped_experiment_is_marked_to_its_last_measured_day(board):
    column = board.column(SALES, "Information")
    # Window 12 May to 25 May, stopped early on Wednesday 14 May: measured to 13 May.
    conversion_experiment(
        column,
        ExperimentStage.CHECK,
        window_start=datetime.date(2025, 5, 12),
        stopped_at=datetime.datetime(2025, 5, 14, 9, 0, tzinfo=UTC),
        stopped_early=True,
    )
    chart = chart_of(board.stream)
    # Baseline from 6 weeks before the window: Monday 31 March.
    assert chart.labels[0] == "2025-03-31"
    assert [(band.start, band.end) for band in chart.bands] == [("2025-05-12", "2025-05-12")]
    assert [row[-1] for row in chart.rows].count(chart.bands[0].label) == 1


def test_without_an_experiment_it_says_how_to_get_one_for_one_query(
    board, django_assert_num_queries
):
    query = MetricsQuery(stream=board.stream, now=NOW)
    document = stream_metrics_compute(query)
    conversion_experiment(board.column(SALES, "Information"), ExperimentStage.PLAN)
    with django_assert_num_queries(1):
        chart = dashboard_chart(query, CONVERSION_WEEKLY_KEY, document=document)
    assert chart.empty_reason == CONVERSION_WEEKLY_EMPTY
    assert "Plan an experiment on a conversion step" in chart.empty_reason
    assert (chart.labels, chart.series, chart.rows, chart.bands) == ([], [], [], [])


def test_a_cycle_filter_keeps_that_cycle_s_experiments(board):
    stream = board.stream
    conversion_experiment(board.column(SALES, "Information"))
    conversion_experiment(
        board.column(COLLABORATION, "Information"), hypothesis="Calls within a day"
    )

    everything = chart_of(stream)
    sales = chart_of(stream, cycle_id=board.column(SALES, "Data").cycle_id)
    repeat = chart_of(stream, cycle_id=board.column(REPEAT, "Data").cycle_id)

    # Flow order: Collaboration's step first.
    assert [series.name for series in everything.series] == [
        f"Information → Knowledge, {COLLABORATION}",
        SALES_STEP,
    ]
    assert everything.series[0].values == [None, None, 100.0, None, None, None, None]
    assert len(everything.bands) == 2
    assert [series.name for series in sales.series] == [SALES_STEP]
    assert sales.series[0].values == [50.0, None, 25.0, 33.3333, 100.0, 0.0, 40.0]
    assert [band.label for band in sales.bands] == [f"Experiment: {HYPOTHESIS[:40]}…"]
    assert repeat.series == [] and repeat.empty_reason == CONVERSION_WEEKLY_EMPTY


def test_it_draws_at_most_six_steps_and_twenty_six_weeks(board):
    stream = board.stream
    monday = week_start(NOW.date())
    steps = [
        column_of(stream, cycle, name)
        for cycle in (COLLABORATION, SALES)
        for name in ("Data", "Information", "Knowledge", "Wisdom")
    ]
    # The oldest window first: the two oldest steps are left out. The newest runs 26
    # weeks, so its baseline starts 27 weeks back, beyond the chart's reach.
    for n, column in enumerate(steps):
        conversion_experiment(
            column,
            window_start=monday - datetime.timedelta(weeks=len(steps) - n),
            planned_weeks=26 if n == len(steps) - 1 else 2,
        )

    chart = chart_of(stream)

    assert [series.name for series in chart.series] == [
        f"Knowledge → Wisdom, {COLLABORATION}",
        f"Wisdom → handed on or won, {COLLABORATION}",
        f"Data → Information, {SALES}",
        SALES_STEP,
        f"Knowledge → Wisdom, {SALES}",
        f"Wisdom → handed on or won, {SALES}",
    ]
    assert len(chart.series) == CONVERSION_LINES_MAX
    assert len(chart.labels) == CONVERSION_WEEKS_MAX
    assert chart.labels[0] == (monday - datetime.timedelta(weeks=26)).isoformat()
    assert chart.labels[-1] == (monday - datetime.timedelta(weeks=1)).isoformat()
    assert "2 more targeted steps not drawn" in chart.caption


def test_the_queries_do_not_grow_with_the_cards(board, django_assert_max_num_queries):
    stream = board.stream
    query = MetricsQuery(stream=stream, now=NOW)
    for cycle in (COLLABORATION, SALES):
        for name in ("Data", "Information", "Knowledge", "Wisdom"):
            conversion_experiment(column_of(stream, cycle, name))
    document = stream_metrics_compute(query)
    column = board.column(SALES, "Information")
    with CaptureQueriesContext(connection) as one_step:
        MEASURES[TargetedMetric.CONVERSION](
            Scope(stream=stream, cycle_id=column.cycle_id, column_id=column.pk),
            Period(MONDAYS[0], MONDAYS[-1] + datetime.timedelta(days=6)),
        )
    # One query for the experiments, then the measure of each step drawn.
    with django_assert_max_num_queries(1 + CONVERSION_LINES_MAX * len(one_step)):
        dashboard_chart(query, CONVERSION_WEEKLY_KEY, document=document)

    with CaptureQueriesContext(connection) as few:
        dashboard_get(query)
    script(board, SALES, {monday: (12, 5) for monday in MONDAYS})
    script(board, COLLABORATION, {monday: (12, 7) for monday in MONDAYS})
    stream_metrics_advance(stream_id=stream.pk)
    with django_assert_max_num_queries(len(few)):
        chart = dashboard_get(query).chart(CONVERSION_WEEKLY_KEY)
    assert len(chart.series) == CONVERSION_LINES_MAX
    sales = next(series for series in chart.series if series.name == SALES_STEP)
    # The week of 21 April: (1 + 5) of (2 + 12) cards moved on.
    assert sales.values[0] == 42.8571
