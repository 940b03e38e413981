"""Unit tests of the metrics building blocks, against docs/metrics.md's definitions:
nearest-rank percentiles, duration distributions, XmR limits and signals, and the
cumulative flow of a tiny stream."""

from __future__ import annotations

import datetime
from dataclasses import asdict
from fractions import Fraction

import pytest

from boards.models import Column, Outcome
from boards.services import card_close, card_create, card_move
from metrics.models import DurationKind, FlowDuration
from metrics.selectors import (
    DAY,
    MetricsQuery,
    Spread,
    cumulative_flow,
    distribution,
    percentile,
    window_durations,
    xmr,
)
from metrics.services import stream_metrics_advance
from tests.support import as_actor

UTC = datetime.UTC
NO_LIMITS = {
    "mean": None,
    "upper": None,
    "lower": None,
    "average_moving_range": None,
    "moving_range_upper": None,
    "signals": [],
}


def xmr_of(values) -> dict:
    return asdict(xmr(values))


def rounded(exact, places: int = 2):
    """Accept exactly the values the hand-computed ``exact`` may round to."""
    return pytest.approx(float(exact), abs=0.5 * 10**-places + 1e-9)


# percentile: nearest rank, the value at rank ceil(p/100 x n) of the sorted values.


@pytest.mark.parametrize(
    ("p", "expected"),
    [(50, 2), (85, 4), (25, 1), (70, 3), (95, 4), (100, 4)],
)
def test_percentile_nearest_rank_of_one_to_four(p, expected):
    # The doc's example: for 1, 2, 3, 4 days, p50 = 2 (rank 2), p85 = 4 (rank ceil(3.4)).
    assert percentile([1, 2, 3, 4], p) == expected


def test_percentile_of_nothing_is_none():
    assert percentile([], 50) is None


@pytest.mark.parametrize("p", [1, 50, 85, 95, 100])
def test_percentile_of_a_single_value_is_that_value(p):
    assert percentile([7.5], p) == 7.5


def test_percentile_of_one_to_ten():
    values = list(range(1, 11))
    # ranks: p50 ceil(5) = 5, p70 ceil(7) = 7, p85 ceil(8.5) = 9, p95 ceil(9.5) = 10.
    assert [percentile(values, p) for p in (50, 70, 85, 95)] == [5, 7, 9, 10]


def test_percentile_rank_is_exact_when_p_times_n_is_a_whole_hundred():
    # 7% of 100 values is rank 7 exactly; 7/100 x 100 in floating point is
    # 7.000000000000001, whose ceiling would wrongly be 8.
    values = list(range(1, 101))
    assert percentile(values, 7) == 7
    assert percentile(values, 14) == 14
    assert percentile(list(range(1, 51)), 14) == 7  # ceil(14/100 x 50) = 7


# distribution: percentiles of durations in days, with count and mean.


def test_distribution_of_one_to_four_days_in_any_order():
    seconds = [4 * DAY, 1 * DAY, 3 * DAY, 2 * DAY]
    assert asdict(distribution(seconds)) == {
        "count": 4,
        "p50": 2.0,  # rank 2
        "p70": 3.0,  # rank ceil(2.8) = 3
        "p85": 4.0,  # rank ceil(3.4) = 4
        "p95": 4.0,  # rank ceil(3.8) = 4
        "mean": 2.5,
        "abandoned": 0,
    }


def test_distribution_of_nothing_has_no_percentiles():
    assert asdict(distribution([])) == {
        "count": 0,
        "p50": None,
        "p70": None,
        "p85": None,
        "p95": None,
        "mean": None,
        "abandoned": 0,
    }


def test_distribution_of_one_interval():
    assert asdict(distribution([36 * 3600])) == {
        "count": 1,
        "p50": 1.5,
        "p70": 1.5,
        "p85": 1.5,
        "p95": 1.5,
        "mean": 1.5,
        "abandoned": 0,
    }


def test_distribution_rounds_days_to_two_places():
    # 1 hour = 1/24 d = 0.0417 -> 0.04; 10 hours = 0.4167 -> 0.42; 20 hours = 0.8333
    # -> 0.83. p50 rank 2 = 10 h; p70 rank ceil(2.1) = 3 = 20 h. Mean 31/72 d = 0.43.
    assert asdict(distribution([3600, 36_000, 72_000])) == {
        "count": 3,
        "p50": 0.42,
        "p70": 0.83,
        "p85": 0.83,
        "p95": 0.83,
        "mean": 0.43,
        "abandoned": 0,
    }


# xmr: mean +/- 2.66 x the average moving range, lower limit not below 0.


def test_xmr_limits_of_a_steady_series():
    # 5 6 5 6 5: mean 27/5 = 5.4; moving ranges 1 1 1 1 -> 1.0;
    # upper 5.4 + 2.66 = 8.06; lower 5.4 - 2.66 = 2.74. Nothing outside, no run.
    # Moving-range upper limit 3.268 x 1.0.
    result = xmr_of([5, 6, 5, 6, 5])
    assert result == {
        "mean": 5.4,
        "upper": 8.06,
        "lower": 2.74,
        "average_moving_range": 1.0,
        "moving_range_upper": 3.27,
        "signals": [],
    }


def test_xmr_signals_a_point_above_the_upper_limit():
    # 5 6 5 6 5 20: mean 47/6 = 7.83; moving ranges 1 1 1 1 15 -> 19/5 = 3.8;
    # upper 47/6 + 2.66 x 3.8 = 17.94; lower 7.83 - 10.11 < 0 -> 0. 20 > 17.94.
    result = xmr_of([5, 6, 5, 6, 5, 20])
    mean = Fraction(47, 6)
    assert result["mean"] == rounded(mean)
    assert result["average_moving_range"] == 3.8
    assert result["upper"] == rounded(mean + Fraction(266, 100) * Fraction(19, 5))
    assert result["lower"] == 0
    # The jump of 15 into it is above the moving-range limit 3.268 x 3.8 = 12.42 too.
    assert result["moving_range_upper"] == rounded(Fraction(3268, 1000) * Fraction(19, 5))
    assert result["signals"] == [
        {"index": 5, "rule": "above the upper limit"},
        {"index": 5, "rule": "moving range above its upper limit"},
    ]


def test_xmr_signals_eight_in_a_row_above_the_mean():
    # 5 6 5 6 5 6 5 6 0 0: mean 4.4, the first eight are all above it -> a run
    # signal at index 7. Moving ranges 1 x 7, 6, 0 -> 13/9; lower limit
    # 4.4 - 2.66 x 13/9 = 0.56, so both 0s are also below the lower limit.
    result = xmr_of([5, 6, 5, 6, 5, 6, 5, 6, 0, 0])
    assert result["mean"] == 4.4
    assert result["average_moving_range"] == rounded(Fraction(13, 9))
    assert result["upper"] == rounded(Fraction(44, 10) + Fraction(266, 100) * Fraction(13, 9))
    assert result["lower"] == rounded(Fraction(44, 10) - Fraction(266, 100) * Fraction(13, 9))
    # The drop of 6 into index 8 is above the moving-range limit 3.268 x 13/9 = 4.72.
    assert sorted((s["index"], s["rule"]) for s in result["signals"]) == [
        (7, "eight in a row on one side of the mean"),
        (8, "below the lower limit"),
        (8, "moving range above its upper limit"),
        (9, "below the lower limit"),
    ]


def test_xmr_signals_eight_in_a_row_below_the_mean():
    # 1 2 1 2 1 2 1 2 9 9: mean 3; the first eight are below it. Moving ranges
    # 1 x 7, 7, 0 -> 14/9; upper 3 + 2.66 x 14/9 = 7.14, so both 9s are above it.
    result = xmr_of([1, 2, 1, 2, 1, 2, 1, 2, 9, 9])
    assert result["mean"] == 3.0
    # The jump of 7 into index 8 is above 3.268 x 14/9 = 5.08.
    assert sorted((s["index"], s["rule"]) for s in result["signals"]) == [
        (7, "eight in a row on one side of the mean"),
        (8, "above the upper limit"),
        (8, "moving range above its upper limit"),
        (9, "above the upper limit"),
    ]


def test_xmr_signals_a_jump_inside_the_natural_limits():
    # 4 5 4 5 4 5 4 14 4 5 4 5: moving ranges 1 x 6, 10, 10, 1 x 3 -> 29/11 = 2.636;
    # moving-range upper limit 3.268 x 29/11 = 8.62: the jumps into index 7 (up 10)
    # and index 8 (down 10) are signals. Mean 63/12 = 5.25; upper 5.25 + 2.66 x 29/11 =
    # 12.26: 14 is above it too.
    result = xmr_of([4, 5, 4, 5, 4, 5, 4, 14, 4, 5, 4, 5])
    assert result["moving_range_upper"] == rounded(Fraction(3268, 1000) * Fraction(29, 11))
    assert [(s["index"], s["rule"]) for s in result["signals"]] == [
        (7, "above the upper limit"),
        (7, "moving range above its upper limit"),
        (8, "moving range above its upper limit"),
    ]
    # A steady series with one smaller jump raises nothing: 3 4 3 4 3 6 (ranges 1 1 1 1
    # 3 -> 1.4; limit 4.58).
    assert xmr_of([3, 4, 3, 4, 3, 6])["signals"] == []


def test_xmr_of_a_rate_keeps_its_upper_limit_at_one():
    # Win rates 0 1 0 1 0: mean 0.4, moving range 1, upper 0.4 + 2.66 = 3.06 -> a rate
    # cannot pass 1, so the limit is 1 (as the lower one is 0).
    assert xmr_of([0, 1, 0, 1, 0])["upper"] == 3.06
    assert asdict(xmr([0, 1, 0, 1, 0], ceiling=1.0))["upper"] == 1.0


def test_xmr_raises_no_run_signal_for_seven_in_a_row():
    # 5 6 5 6 5 6 5 then 0 0 0: mean 38/10 = 3.8; only seven above in a row, then
    # three below.
    result = xmr_of([5, 6, 5, 6, 5, 6, 5, 0, 0, 0])
    assert all(s["rule"] != "eight in a row on one side of the mean" for s in result["signals"])


def test_xmr_needs_two_points_for_a_moving_range():
    assert xmr_of([3.0]) == NO_LIMITS
    assert xmr_of([]) == NO_LIMITS


def test_xmr_skips_weeks_without_a_value():
    # A rate of a week in which nothing closed is None, not 0: 0.5 _ 0.5 _ 0.5 0.9
    # is the series 0.5 0.5 0.5 0.9 (mean 2.4/4 = 0.6; moving ranges 0 0 0.4 -> 0.4/3;
    # upper 0.6 + 2.66 x 0.4/3 = 0.9547, so 0.9 is inside), and the indexes of its
    # signals stay the weeks'. Counted as 0s instead, the two empty weeks would put
    # the lower limit at 0 and the mean at 0.4833.
    result = xmr_of([0.5, None, 0.5, None, 0.5, 0.9])
    assert result["mean"] == 0.6
    assert result["average_moving_range"] == rounded(Fraction(4, 30))
    assert result["upper"] == rounded(Fraction(6, 10) + Fraction(266, 100) * Fraction(4, 30))
    assert result["lower"] == rounded(Fraction(6, 10) - Fraction(266, 100) * Fraction(4, 30))
    assert result["signals"] == []
    # Eight values in a row above the mean, with empty weeks among them: the run
    # counts values, and its signal names the week of the eighth.
    series = [5, None, 6, 5, 6, None, 5, 6, 5, 6, 0, 0]
    run = [s for s in xmr_of(series)["signals"] if s["rule"].startswith("eight")]
    assert run == [{"index": 9, "rule": "eight in a row on one side of the mean"}]


def test_xmr_of_one_value_among_empty_weeks_has_no_limits():
    assert xmr_of([None, 0.4, None]) == NO_LIMITS


# cumulative_flow on a tiny stream.


def test_cumulative_flow_of_a_tiny_stream(stream, manager):
    columns = list(
        Column.objects.filter(cycle__value_stream=stream).order_by("cycle__order", "order")
    )
    data, information, knowledge = columns[0], columns[1], columns[2]

    def at(day: int, hour: int = 9) -> datetime.datetime:
        return datetime.datetime(2025, 5, day, hour, tzinfo=UTC)

    # X: May 5 enter Data; May 6 -> Information; May 8 -> Knowledge.
    # Y: May 6 enter Data; May 7 lost (in Data).
    x = card_create(cycle_id=data.cycle_id, actor=as_actor(manager), person_name="X", at=at(5)).card
    y = card_create(
        cycle_id=data.cycle_id, actor=as_actor(manager), person_name="Y", at=at(6, 10)
    ).card
    card_move(card_id=x.pk, to_column_id=information.pk, actor=as_actor(manager), at=at(6))
    card_close(card_id=y.pk, outcome=Outcome.LOST, actor=as_actor(manager), at=at(7))
    card_move(card_id=x.pk, to_column_id=knowledge.pk, actor=as_actor(manager), at=at(8))
    stream_metrics_advance(stream_id=stream.pk)

    query = MetricsQuery(stream=stream, now=datetime.datetime(2025, 6, 11, 15, tzinfo=UTC))
    flow = cumulative_flow(query, start=datetime.date(2025, 5, 5), end=datetime.date(2025, 5, 9))
    assert flow["days"] == ["2025-05-05", "2025-05-06", "2025-05-07", "2025-05-08", "2025-05-09"]
    assert [c["id"] for c in flow["columns"]] == [c.pk for c in columns]
    series = {c["id"]: c for c in flow["columns"]}
    #           May 5  6  7  8  9
    # Data in:        1  2  2  2  2   (X, Y)       out: 0 1 2 2 2 (X moves, Y lost)
    # Information in: 0  1  1  1  1   (X)          out: 0 0 0 1 1 (X moves on)
    # Knowledge in:   0  0  0  1  1   (X)          out: 0 0 0 0 0
    assert series[data.pk] | {"id": None} == {
        "id": None,
        "name": "Data",
        "cycle_id": data.cycle_id,
        "cycle": "Collaboration",
        "arrived": [1, 2, 2, 2, 2],
        "departed": [0, 1, 2, 2, 2],
        "wip": [1, 1, 0, 0, 0],
    }
    assert (series[information.pk]["arrived"], series[information.pk]["departed"]) == (
        [0, 1, 1, 1, 1],
        [0, 0, 0, 1, 1],
    )
    assert series[information.pk]["wip"] == [0, 1, 1, 0, 0]
    assert series[knowledge.pk]["wip"] == [0, 0, 0, 1, 1]
    for column in columns[3:]:
        assert series[column.pk]["wip"] == [0] * 5, column

    # A range that starts after some events carries their totals in.
    may_7 = cumulative_flow(query, start=datetime.date(2025, 5, 7), end=datetime.date(2025, 5, 7))
    late = {c["id"]: (c["arrived"], c["departed"], c["wip"]) for c in may_7["columns"]}
    assert late[data.pk] == ([2], [2], [0])
    assert late[information.pk] == ([1], [0], [1])
    # A day before any event: nothing yet.
    before = cumulative_flow(query, start=datetime.date(2025, 5, 1), end=datetime.date(2025, 5, 1))
    assert all(c["arrived"] == [0] and c["wip"] == [0] for c in before["columns"])


# The window's spreads: on PostgreSQL ranked in SQL, elsewhere here; the same numbers.


def test_window_spreads_rank_like_percentile(stream, manager):
    columns = list(
        Column.objects.filter(cycle__value_stream=stream).order_by("cycle__order", "order")
    )
    card = card_create(
        cycle_id=columns[0].cycle_id, actor=as_actor(manager), person_name="Spread"
    ).card
    ended = datetime.datetime(2025, 6, 2, 9, tzinfo=UTC)
    # 20 visits of Data (p x n / 100 whole for every percentile: ranks 10, 14, 17, 19),
    # 7 of Information (ranks 4, 5, 6, 7), one of Knowledge; 3 cycle passages; and
    # visits that ended before the window, which count nowhere.
    samples = {
        columns[0]: [(n * 7919) % 1000 * 60 for n in range(20)],
        columns[1]: [5, 3, 3, 9, 1, 8, 2],
        columns[2]: [86_400],
    }
    rows = [
        (DurationKind.COLUMN, column, seconds, ended)
        for column, values in samples.items()
        for seconds in values
    ]
    rows += [(DurationKind.CYCLE, None, seconds, ended) for seconds in (40, 10, 30)]
    rows += [(DurationKind.COLUMN, columns[0], 999_999, ended - datetime.timedelta(days=200))]
    FlowDuration.objects.bulk_create(
        FlowDuration(
            value_stream=stream,
            card=card,
            kind=kind,
            column=column,
            cycle_id=columns[0].cycle_id,
            channel_key=0,
            started_at=at - datetime.timedelta(seconds=seconds),
            ended_at=at,
            seconds=seconds,
            move_id=10_000_000 + index,
        )
        for index, (kind, column, seconds, at) in enumerate(rows)
    )

    # The window of a query at Wednesday 11 June 2025 starts on Monday 17 March.
    durations = window_durations(
        MetricsQuery(stream=stream, now=datetime.datetime(2025, 6, 11, 15, tzinfo=UTC))
    )
    column_spreads, cycle_spreads = durations.columns, durations.cycles

    for column, values in samples.items():
        ordered = sorted(values)
        assert column_spreads[column.pk] == Spread(
            len(values), sum(values), {p: percentile(ordered, p) for p in (50, 70, 85, 95)}
        ), column
    # Information by hand: 1 2 3 3 5 8 9 -> p50 rank 4 = 3, p70 rank ceil(4.9) = 5 -> 5,
    # p85 rank ceil(5.95) = 6 -> 8, p95 rank 7 -> 9.
    assert column_spreads[columns[1].pk].ranked == {50: 3, 70: 5, 85: 8, 95: 9}
    assert cycle_spreads[columns[0].cycle_id] == Spread(3, 80, {50: 30, 70: 40, 85: 40, 95: 40})
    assert column_spreads[columns[3].pk] == Spread()
    assert durations.lead == Spread()
    assert durations.lead_median_by_week == {}
