"""Monte Carlo forecasts of won deals (metrics.forecasting): known throughput gives
known answers, the same seed the same answer, too little history a reason, and the
backtest counts the weeks each confidence level held."""

from __future__ import annotations

import pytest

from metrics.forecasting import (
    CONFIDENCES,
    MAX_DAYS,
    ForecastRefused,
    backtest,
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


def test_the_backtest_counts_the_weeks_each_forecast_held():
    # 147 days winning 1 a day, then a week winning nothing. Each of the last 10 weeks
    # is forecast from the 84 days before it, all at 1 a day: 7 at every confidence.
    # Nine weeks won 7 (held); the last won 0 (missed) -> held 9 of 10 at every level.
    history = [1] * 147 + [0] * 7
    result = backtest(history, weeks=10)
    assert len(result.weeks) == 10
    assert all(week.at_least == {50: 7, 85: 7, 95: 7} for week in result.weeks)
    assert [week.actual for week in result.weeks] == [7] * 9 + [0]
    assert result.held == {50: 9, 85: 9, 95: 9}


def test_the_backtest_leaves_out_weeks_without_enough_history():
    # 20 days: only the last week has 13 days before it... which is under two weeks too;
    # with 21 days the last week has 14 days of history.
    assert backtest([1] * 20, weeks=3).weeks == []
    assert len(backtest([1] * 21, weeks=3).weeks) == 1
