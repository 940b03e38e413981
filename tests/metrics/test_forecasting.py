"""Monte Carlo forecasts of won deals (metrics.forecasting): known throughput gives
known answers, the same seed the same answer, too little history a reason, and the
backtest counts the checkpoints where each confidence level could fail and held, apart
from those where its forecast was 0."""

from __future__ import annotations

import pytest

from metrics.forecasting import (
    CONFIDENCES,
    MAX_DAYS,
    ForecastRefused,
    LevelRecord,
    backtest,
    backtest_fit,
    how_many,
    prospects_needed,
    when,
)

TWO_A_DAY = [2] * 28


def test_a_steady_throughput_forecasts_exactly():
    # Every day of history won 2: every trial wins 2 a day, whatever it draws.
    forecast = how_many(TWO_A_DAY, days=10)
    assert forecast.at_least == {50: 20, 85: 20, 95: 20}
    assert (forecast.history_days, forecast.history_won, forecast.trials) == (28, 56, 10_000)
    # 7 more deals at 2 a day: day 4 (2, 4, 6, 8).
    assert when(TWO_A_DAY, items=7).within_days == {50: 4, 85: 4, 95: 4}


def test_higher_confidence_promises_fewer_deals_and_more_days():
    # Half the days win 0, half win 2: 10 days give 10 on average; at 85% confidence
    # fewer, at 95% fewer still; and the reverse for "when".
    history = [0, 2] * 14
    forecast = how_many(history, days=10, seed=7)
    assert forecast.at_least[95] <= forecast.at_least[85] <= forecast.at_least[50]
    assert forecast.at_least[50] == 10  # the median of twice a Binomial(10, 1/2)
    assert forecast.at_least[95] < 10
    days = when(history, items=10, seed=7).within_days
    assert days[50] <= days[85] <= days[95]
    # Five winning days are needed: exactly half the trials have them by day 9.
    assert days[50] in (9, 10)


def test_the_same_seed_gives_the_same_forecast():
    history = [0, 1, 0, 3, 0, 0, 2] * 4
    assert how_many(history, days=30, seed=3) == how_many(history, days=30, seed=3)
    assert when(history, items=12, seed=3) == when(history, items=12, seed=3)


@pytest.mark.parametrize(
    ("history", "reason"),
    [([1] * 13, "13 days"), ([0] * 30, "No deal was won"), ([1, -1] * 10, "none negative")],
    ids=["under two weeks", "nothing won", "negative"],
)
def test_too_little_history_is_refused_with_a_reason(history, reason):
    with pytest.raises(ForecastRefused, match=reason):
        how_many(history, days=7)
    with pytest.raises(ForecastRefused, match=reason):
        when(history, items=3)


def test_a_goal_out_of_reach_is_said_so_not_invented():
    # One deal in 28 days: 200 more take far longer than two years in most trials.
    rare = [0] * 27 + [1]
    days = when(rare, items=200, trials=500).within_days
    assert days == dict.fromkeys(CONFIDENCES)
    assert when(rare, items=1, trials=500).within_days[50] <= MAX_DAYS


def test_prospects_needed_from_conversion_and_lead_times():
    # A quarter of entrants end won; of the won, 3 of 4 took at most 30 days: each
    # entrant now gives 0.25 x 0.75 = 0.1875 wins within 30 days; 6 wins need 32.
    leads = [10.0, 20.0, 30.0, 45.0]
    assert prospects_needed(items=6, days=30, won_share=0.25, lead_times_days=leads) == 32
    with pytest.raises(ForecastRefused, match="5 days or less"):
        prospects_needed(items=6, days=5, won_share=0.25, lead_times_days=leads)
    with pytest.raises(ForecastRefused, match="No deal was won"):
        prospects_needed(items=6, days=30, won_share=0.0, lead_times_days=[])


def test_the_backtest_counts_the_checkpoints_each_forecast_held():
    # 147 days winning 1 a day, then a week winning nothing; 7 days ahead. The last
    # checkpoint starts 7 days before the end (day 147), the 9 before it a week apart
    # (days 84 to 140), each forecast from the 84 days before it, all at 1 a day: 7 at
    # every confidence. Nine won 7 (held); the last won 0 (missed): 9 of 10 at every level.
    history = [1] * 147 + [0] * 7
    result = backtest(history, horizon=7)
    assert [point.start_index for point in result.checkpoints] == list(range(84, 148, 7))
    assert all(point.at_least == {50: 7, 85: 7, 95: 7} for point in result.checkpoints)
    assert [point.actual for point in result.checkpoints] == [7] * 9 + [0]
    assert result.levels == {
        c: LevelRecord(c, could_fail=10, held=9, was_zero=0) for c in CONFIDENCES
    }
    assert (result.horizon, result.fitted, result.no_win, result.shortened) == (7, 10, 0, False)


def test_a_forecast_of_zero_is_counted_apart_not_as_held():
    # Checkpoints every 14 days, each forecasting 4 days ahead from the 14 days before it
    # (one block): six 14-day blocks, then 4 more days; the six checkpoints start on days
    # 14, 28, ..., 84 and each is judged on the first 4 days of the next block.
    ones, zeros = [1] * 14, [0] * 14
    # 7 wins in 14 days: 4 days ahead win Binomial(4, 1/2): P(0) = 1/16 = 6.25%,
    # P(<= 1) = 5/16 = 31%, P(<= 2) = 11/16 = 69%. At least 2 at 50%, 1 at 85%, and 0 at
    # 95% (6.25% of trials win nothing, more than the 5% it may leave below).
    half_first = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0]  # its first 4 days win 4
    half_later = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]  # its first 4 days win 0
    # 1 win in 14 days: (13/14)^4 = 74% of trials win nothing: 0 at every level.
    one_late = [0] * 13 + [1]
    history = zeros + half_first + half_later + ones + half_first + one_late + [1, 1, 0, 0]
    result = backtest(history, horizon=4, checkpoints=6, step=14, history_days=14)

    # Day 14: the 14 days before it won nothing, no forecast: left out and counted.
    assert (result.fitted, result.no_win, result.horizon) == (6, 1, 4)
    assert [
        (p.start_index, p.at_least[50], p.at_least[85], p.at_least[95], p.actual)
        for p in result.checkpoints
    ] == [
        (28, 2, 1, 0, 0),  # from half_first; half_later's first 4 days win 0
        (42, 2, 1, 0, 4),  # from half_later; ones win 4
        (56, 4, 4, 4, 4),  # from ones; half_first wins 4
        (70, 2, 1, 0, 0),  # from half_first; one_late's first 4 win 0
        (84, 0, 0, 0, 2),  # from one_late: 0 at every level; the last 4 days win 2
    ]
    # Counting every 0 as held would say the 95% forecast held at all 5 and the 85% at
    # 3 of 5. Where they could fail: 95% at 1 (held), 85% at 4 (held at 2).
    assert result.levels == {
        50: LevelRecord(50, could_fail=4, held=2, was_zero=1),
        85: LevelRecord(85, could_fail=4, held=2, was_zero=1),
        95: LevelRecord(95, could_fail=1, held=1, was_zero=4),
    }
    assert result == backtest(history, horizon=4, checkpoints=6, step=14, history_days=14)


@pytest.mark.parametrize(
    ("available", "horizon", "fit"),
    [
        # 84 days of history, 9 steps of 7 days and the horizon: 84 + 63 + 14 = 161.
        (161, 14, (14, 10)),
        # 32 days ahead do not fit in 161: the horizon is cut to 161 - 84 - 63 = 14.
        (161, 32, (14, 10)),
        # 150 leave 3 days for 10 checkpoints, under a week: 7 days ahead, and the
        # checkpoints that fit in 150 - 84 = 66 days: (66 - 7) // 7 + 1 = 9.
        (150, 32, (7, 9)),
        (91, 32, (7, 1)),
        (90, 32, (7, 0)),
        # A horizon under a week is kept: 100 - 84 = 16 days, (16 - 3) // 7 + 1 = 2.
        (100, 3, (3, 2)),
    ],
)
def test_the_backtest_fits_its_horizon_then_its_checkpoints_in_the_history(available, horizon, fit):
    assert backtest_fit(available, horizon=horizon, history_days=84, checkpoints=10, step=7) == fit


def test_the_backtest_shortens_the_horizon_that_does_not_fit():
    # 154 days winning 1 a day, then 7 winning nothing; 32 days ahead asked, 14 fit
    # (161 - 84 - 63). Each checkpoint forecasts 14 (1 a day); the windows overlap: the
    # last (days 147-160) won 7 of them, the nine before 14.
    result = backtest([1] * 154 + [0] * 7, horizon=32)
    assert (result.horizon, result.asked_horizon, result.shortened) == (14, 32, True)
    assert (result.fitted, result.asked) == (10, 10)
    assert [point.start_index for point in result.checkpoints] == list(range(84, 148, 7))
    assert all(point.at_least == {50: 14, 85: 14, 95: 14} for point in result.checkpoints)
    assert [point.actual for point in result.checkpoints] == [14] * 9 + [7]
    assert result.levels[85] == LevelRecord(85, could_fail=10, held=9, was_zero=0)


def test_a_short_history_keeps_the_checkpoints_that_fit():
    # 150 days: 7 days ahead, 9 checkpoints (days 87 to 143), each from the 84 before.
    result = backtest([1] * 150, horizon=32)
    assert (result.horizon, result.fitted, result.asked) == (7, 9, 10)
    assert [point.start_index for point in result.checkpoints] == list(range(87, 144, 7))
    # 90 days hold no checkpoint: 84 of history before it and 7 after.
    empty = backtest([1] * 90, horizon=32)
    assert (empty.checkpoints, empty.fitted, empty.no_win) == ([], 0, 0)
    assert empty.levels[85] == LevelRecord(85, could_fail=0, held=0, was_zero=0)
