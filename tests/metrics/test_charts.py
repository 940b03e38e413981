"""Chart data (metrics.charts) equals the metrics of the oracle's hand-worked stream,
and its CSV is exactly the table, with formula-like text neutralised."""

from __future__ import annotations

import csv
import io

import pytest

from metrics.charts import (
    Chart,
    Series,
    aging_chart,
    channel_pareto_chart,
    conversion_funnel_chart,
    cumulative_flow_chart,
    cycle_time_scatter,
    demand_vs_capacity_chart,
    littles_law_chart,
    throughput_run_chart,
)
from metrics.selectors import MetricsQuery, stream_metrics_compute
from metrics.selectors.cards import aging_cards, finished_cards
from tests.metrics.test_oracle import NOW, WEEKS, board  # noqa: F401 (the oracle's stream)
from tests.support import COLLABORATION

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(board):  # noqa: F811
    return stream_metrics_compute(MetricsQuery(stream=board.stream, now=NOW))


def read_csv(chart: Chart) -> list[list[str]]:
    return list(csv.reader(io.StringIO(chart.csv())))


def test_throughput_run_chart_marks_the_signalling_weeks(document):
    chart = throughput_run_chart(document)
    assert chart.labels == WEEKS
    # Won: C in week 6, A in week 7 (the oracle's hand-worked numbers).
    assert chart.series[0].values == [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    # Two deals in 12 weeks: the rules fire, and each mark says it is not reliable.
    sparse = "not reliable: under one won deal a week"
    assert chart.marks == [
        (6, f"above the upper limit; moving range above its upper limit; {sparse}"),
        (7, f"above the upper limit; {sparse}"),
        (8, f"moving range above its upper limit; {sparse}"),
    ]
    assert [line.label for line in chart.lines] == [
        "mean",
        "upper natural process limit",
        "lower natural process limit",
    ]
    assert chart.lines[0].value == document.stream.xmr.won_weekly.mean
    assert "This week so far (3 of 7 days from 2025-06-09): 0 won" in chart.caption
    table = read_csv(chart)
    assert table[0] == ["week", "won", "signal"]
    assert table[7] == [
        "2025-04-28",
        "1",
        f"above the upper limit; moving range above its upper limit; {sparse}",
    ]
    assert len(table) == 13
    assert chart.empty_reason is None


def test_the_funnel_is_the_cycle_s_cohort(document, board):  # noqa: F811
    cycle_id = board.column(COLLABORATION, "Data").cycle_id
    chart = conversion_funnel_chart(document, cycle_id=cycle_id)
    assert chart.labels == ["Data", "Information", "Knowledge", "Wisdom", "next cycle", "won"]
    assert chart.series[0].values == [6, 5, 3, 2, 2, 1]
    # Per channel (the oracle's hand-worked funnels), ties by name: Referral, Web form.
    assert [(series.name, series.values) for series in chart.series[1:]] == [
        ("Referral", [3, 2, 2, 2, 2, 0]),
        ("Web form", [3, 3, 1, 0, 0, 1]),
    ]
    assert chart.columns[4:] == [
        "Referral: reached",
        "Web form: reached",
        "Referral: share of the step before",
        "Web form: share of the step before",
    ]
    assert chart.rows[1] == ["Information", 5, 0.8333, 0.8333, 2, 3, 0.6667, 1.0]
    assert chart.rows[4][-1] is None  # nobody of Web form reached Wisdom: no exit rate
    assert "ever reached" in chart.caption and "6 cards" in chart.caption


def test_the_pareto_marks_the_80_percent_set(document):
    chart = channel_pareto_chart(document)
    assert chart.labels == ["Web form", "Referral"]
    assert chart.series[0].values == [2000.0, 400.0]
    assert chart.marks == [(0, "in the 80% set")]
    assert chart.lines[0].value == 0.8
    assert read_csv(chart)[1] == ["Web form", "3", "1", "0", "1.0", "2000.00", "0.8333"]


def test_demand_and_littles_law(document, board):  # noqa: F811
    demand = demand_vs_capacity_chart(document)
    assert demand.series[0].values == [0, 0, 0, 2, 1, 0, 0, 0, 1, 0, 1, 1]  # arrivals
    assert demand.series[2].values == [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0]  # won + lost
    little = littles_law_chart(document)
    information = little.labels.index(f"{COLLABORATION} / Information")
    assert little.rows[information] == [
        f"{COLLABORATION} / Information",
        0.53,
        0.25,
        0.522,
        "no",
    ]
    # Columns with no finished visit are not checked, so not charted.
    assert len(little.labels) == 6


def test_a_stream_without_data_says_so(stream):
    document = stream_metrics_compute(MetricsQuery(stream=stream, now=NOW))
    assert throughput_run_chart(document).empty_reason == "No deal was won in these 12 weeks."
    assert channel_pareto_chart(document).empty_reason == "No deal won in this period."
    assert littles_law_chart(document).empty_reason == "No column finished a visit in this period."
    cycle = document.cycles[0]
    assert conversion_funnel_chart(document, cycle_id=cycle.id).empty_reason == (
        f"No card entered {cycle.name} in this period."
    )


def test_csv_neutralises_text_a_spreadsheet_would_run():
    chart = Chart(
        key="k",
        title="t",
        caption="c",
        labels=["=1+1"],
        series=[Series("s", [1])],
        columns=["name", "value"],
        rows=[['=HYPERLINK("http://x")', -3], ["+1", None], ["@SUM(A1)", 2], ["plain", 0]],
    )
    assert read_csv(chart)[1:] == [
        ['\'=HYPERLINK("http://x")', "-3"],
        ["'+1", ""],
        ["'@SUM(A1)", "2"],
        ["plain", "0"],
    ]


def test_cumulative_flow_bands_are_the_columns_wip_each_day(board):  # noqa: F811
    chart = cumulative_flow_chart(MetricsQuery(stream=board.stream, now=NOW))
    assert chart.labels[0] == "2025-03-17" and chart.labels[-1] == "2025-06-11"
    assert len(chart.labels) == 87
    # Flow order in the table; the last column at the bottom of the stack.
    assert chart.columns[1:3] == [f"{COLLABORATION} / Data", f"{COLLABORATION} / Information"]
    assert chart.series[-1].name == f"{COLLABORATION} / Data"
    # End of 23 Apr (the oracle's cumulative flow): I1 1 (B), K1 1 (C), W1 0, D2 1 (A).
    row = chart.rows[chart.labels.index("2025-04-23")]
    assert row[:5] == ["2025-04-23", 0, 1, 1, 0]
    assert row[5] == 1
    # The bottom band, cards done since 17 Mar by their final state: B's loss on 15 Apr
    # was taken back; C won 2 May, A 5 May, E lost 28 May.
    assert chart.series[0].name == "done (won or lost)"
    done = dict(zip(chart.labels, chart.series[0].values, strict=True))
    assert [done[day] for day in ("2025-04-23", "2025-05-02", "2025-05-05", "2025-06-11")] == [
        0,
        1,
        2,
        3,
    ]
    assert row[-1] == 0 and chart.columns[-1] == "done (won or lost)"
    # Left Collaboration: A handed on 23 Apr, B 29 Apr, C won 2 May, E lost 28 May.
    collaboration = board.column(COLLABORATION, "Data").cycle_id
    cycle_chart = cumulative_flow_chart(
        MetricsQuery(stream=board.stream, now=NOW, cycle_id=collaboration)
    )
    left = dict(zip(cycle_chart.labels, cycle_chart.series[0].values, strict=True))
    assert [left[day] for day in ("2025-04-22", "2025-04-23", "2025-05-02", "2025-06-11")] == [
        0,
        1,
        3,
        4,
    ]


def test_the_scatter_shows_each_finished_card_with_its_link(board, document):  # noqa: F811
    query = MetricsQuery(stream=board.stream, now=NOW)
    chart = cycle_time_scatter(query, document)
    # Lead times: C won 2 May after 18 days, A won 5 May after 28 days.
    assert chart.labels == ["2025-05-02", "2025-05-05"]
    assert chart.series[0].values == [18.0, 28.0]
    assert [row[0] for row in chart.rows] == ["Prospect C", "Prospect A"]
    assert chart.rows[0][3] == f"/streams/{board.stream.slug}/cards/{board.cards['C']}/"
    assert [line.value for line in chart.lines] == [18.0, 28.0, 28.0]
    assert chart.empty_reason == "2 cards finished in this range: percentiles need at least 10."
    assert "1 were abandoned" in chart.caption  # E, lost
    collaboration = board.column(COLLABORATION, "Data").cycle_id
    in_cycle = cycle_time_scatter(
        MetricsQuery(stream=board.stream, now=NOW, cycle_id=collaboration), document
    )
    # A handed on 23 Apr (16 d), B 29 Apr (21 d, its loss taken back), C won 2 May (18 d).
    assert in_cycle.series[0].values == [16.0, 21.0, 18.0]


def test_aging_puts_each_open_card_in_its_column(board, document):  # noqa: F811
    chart = aging_chart(MetricsQuery(stream=board.stream, now=NOW), document)
    # Open: B in Sales/Buying Data for 43.25 d, D in Information 23.25 d, F in Data 2.25 d.
    assert [row[:3] for row in chart.rows] == [
        ["Prospect B", "Sales/Buying / Data", 43.25],
        ["Prospect D", f"{COLLABORATION} / Information", 23.25],
        ["Prospect F", f"{COLLABORATION} / Data", 2.25],
    ]
    assert chart.rows[1][3] == 6.0  # Information's 85th percentile time in column
    assert chart.series[1].values == [4, 1, 0]  # the columns' positions on the x axis


def test_card_dots_take_one_statement_whatever_their_number(board, django_assert_num_queries):  # noqa: F811
    query = MetricsQuery(stream=board.stream, now=NOW)
    with django_assert_num_queries(1):
        finished_cards(query)
    with django_assert_num_queries(1):
        aging_cards(query)


def test_each_chart_states_its_answer_in_a_sentence(document, board):  # noqa: F811
    query = MetricsQuery(stream=board.stream, now=NOW)
    # The last full week (from 2 June) won nothing; two deals in 12 weeks is too few
    # for process limits to judge.
    assert throughput_run_chart(document).verdict == (
        "Last week (from 2 Jun 2025): 0 won. Too few deals are won (0.17 a week on "
        "average) for process limits to tell a signal from noise: read the marks with care."
    )
    # Web form: 2,000 of 2,400 won (83%), alone over 80%.
    assert channel_pareto_chart(document).verdict == (
        "Web form brings the most won value: 83% of it."
    )
    # Two lead times (18 and 28 days): too few for a percentile promise.
    assert cycle_time_scatter(query, document).verdict is None
    aging = aging_chart(query, document)
    assert aging.verdict is not None and "open cards" in aging.verdict


def test_a_last_week_is_called_a_signal_or_noise_by_its_limits():
    from metrics.charts import _last_week_verdict
    from metrics.selectors.statistics import xmr

    labels = [f"2026-09-{day:02d}" for day in (7, 14, 21, 28)] + ["2026-10-05"]
    steady = [2, 3, 2, 3, 2]
    assert _last_week_verdict(labels, steady, xmr(steady), {}) == (
        "Last week (from 5 Oct 2026): 2 won, within the natural process limits "
        f"({xmr(steady).lower:g} to {xmr(steady).upper:g}) and no other rule broken: "
        "routine variation (noise), not a signal."
    )
    jump = [2, 3, 2, 3, 9]
    limits = xmr(jump)
    signals = {4: ["above the upper limit"]}
    assert _last_week_verdict(labels, jump, limits, signals) == (
        "Last week (from 5 Oct 2026): 9 won, a signal (above the upper limit): something "
        "changed, find out what."
    )
    assert _last_week_verdict(labels, [0] * 5, xmr([0.0] * 5), {}) is None


def test_finished_days_are_the_finished_cards_days(board):  # noqa: F811
    from metrics.selectors.cards import finished_days

    collaboration = board.column(COLLABORATION, "Data").cycle_id
    for query in (
        MetricsQuery(stream=board.stream, now=NOW),
        MetricsQuery(stream=board.stream, now=NOW, cycle_id=collaboration),
    ):
        assert finished_days(query) == sorted(card.days for card in finished_cards(query))
    assert finished_days(MetricsQuery(stream=board.stream, now=NOW)) == [18.0, 28.0]
