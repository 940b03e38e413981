"""The Check in words: signal or noise, and whether a signal went the way the target
aims (no database: the experiment is built in memory)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from metrics.charts import experiment_chart
from metrics.experiments import experiment_verdict, rare_counts
from metrics.selectors.experiments import VerdictTone, check_verdict, experiment_aim
from metrics.selectors.readmodel import XmR
from metrics.selectors.statistics import xmr
from pdca.models import Experiment, ExperimentStage, SignalRule, TargetedMetric

LIMITS = XmR(mean=31.0, upper=70.0, lower=0.0, average_moving_range=14.7)


def checked(*, baseline: str, target: str, measured: str, rule: SignalRule) -> Experiment:
    return Experiment(
        targeted_metric=TargetedMetric.CONVERSION,
        stage=ExperimentStage.CHECK,
        baseline=Decimal(baseline),
        target=Decimal(target),
        measured_value=Decimal(measured),
        signal=rule != SignalRule.NONE,
        signal_rule=rule,
    )


@pytest.mark.parametrize(
    ("target", "measured", "rule", "tone", "words"),
    [
        ("40", "46", SignalRule.BEYOND_UPPER_LIMIT, VerdictTone.BETTER, "the way you aimed"),
        ("40", "12", SignalRule.BEYOND_LOWER_LIMIT, VerdictTone.WORSE, "the wrong way"),
        ("20", "12", SignalRule.RUN_OF_EIGHT_BELOW, VerdictTone.BETTER, "went down, as"),
        ("20", "46", SignalRule.THREE_OF_FOUR_UPPER, VerdictTone.WORSE, "asks for it to go down"),
        ("40", "35", SignalRule.NONE, VerdictTone.NOISE, "routine variation"),
    ],
)
def test_a_signal_says_whether_it_went_the_way_the_target_aims(target, measured, rule, tone, words):
    verdict = check_verdict(
        checked(baseline="31", target=target, measured=measured, rule=rule), LIMITS
    )

    assert verdict.tone == tone
    assert words in verdict.text
    assert "natural process limits 0 to 70 %" in verdict.text


@pytest.mark.parametrize(
    ("target", "measured", "reached"),
    [("40", "46", True), ("40", "39.5", False), ("20", "20", True), ("20", "21", False)],
)
def test_it_says_whether_the_target_is_reached(target, measured, reached):
    verdict = check_verdict(
        checked(baseline="31", target=target, measured=measured, rule=SignalRule.NONE), LIMITS
    )

    assert (f"the target of {target} % is reached" in verdict.text) is reached
    assert f"Measured {measured} % against a baseline of 31 %" in verdict.text


def test_before_the_check_there_is_no_verdict():
    experiment = checked(baseline="31", target="40", measured="46", rule=SignalRule.NONE)
    experiment.stage = ExperimentStage.DO

    assert check_verdict(experiment, LIMITS).text == ""


def test_the_chart_says_why_its_central_line_is_not_the_baseline():
    """Weekly shares 50, 25, 25, 50, 25, 25 % of 2, 4, 4, 2, 4, 4 cards (1 moved on each
    week): a mean of 33.33 % against a pooled 6 of 20 = 30 %; a 4-week window has the
    6-week minimum baseline."""
    experiment = checked(baseline="30", target="50", measured="45", rule=SignalRule.NONE)
    experiment.window_start = datetime.date(2026, 6, 1)
    experiment.planned_weeks = 4
    experiment.baseline_cards = 20
    experiment.baseline_weekly = [50.0, 25.0, 25.0] * 2

    caption = experiment_chart(experiment, xmr([50.0, 25.0, 25.0] * 2, ceiling=100.0)).caption

    assert "6 weeks although the window has 4" in caption
    assert "The central line, 33.33 %, is the mean of the baseline's weekly values" in caption
    assert "the baseline figure, 30 %, counts all its 20 cards together" in caption


def test_a_limit_clamped_at_zero_has_no_halfway_rule_below():
    """Limits 0 .. 20 around 5 (the lower one clamped): weeks at 0 sit on the floor,
    not beyond a limit, so three of four of them are no signal. Unclamped (limits 2 ..
    8, halfway line 3.5), three of four weeks at 3 are."""
    clamped = XmR(mean=5.0, upper=20.0, lower=0.0, average_moving_range=5.6)
    free = XmR(mean=5.0, upper=8.0, lower=2.0, average_moving_range=1.1)

    assert experiment_verdict(clamped, [0.0, 0.0, 6.0, 0.0]).rule == SignalRule.NONE
    assert experiment_verdict(free, [3.0, 3.0, 6.0, 3.0]).rule == SignalRule.THREE_OF_FOUR_LOWER


def test_signals_are_found_on_one_side_when_asked():
    limits = XmR(mean=10.0, upper=16.0, lower=4.0, average_moving_range=2.26)
    weeks = [17.0, 3.0]

    assert experiment_verdict(limits, weeks).rule == SignalRule.BEYOND_UPPER_LIMIT
    assert experiment_verdict(limits, weeks, side=1).week == 0
    assert experiment_verdict(limits, weeks, side=-1).rule == SignalRule.BEYOND_LOWER_LIMIT


def test_a_window_with_signals_both_ways_is_called_unstable():
    experiment = checked(baseline="31", target="40", measured="40", rule=SignalRule.NONE)
    experiment.signal, experiment.signal_rule = True, SignalRule.BEYOND_UPPER_LIMIT
    experiment.window_start = datetime.date(2026, 9, 21)
    experiment.measured_weekly = [80.0, 30.0, 0.0, 30.0]  # 80 above 70; 0 is not below 0
    one_way = check_verdict(experiment, LIMITS)
    # With a lower limit of 5, the 2 of the third week is below it.
    experiment.measured_weekly = [80.0, 30.0, 2.0, 30.0]
    both = check_verdict(experiment, XmR(mean=31.0, upper=70.0, lower=5.0))

    assert one_way.tone == VerdictTone.BETTER
    assert both.tone == VerdictTone.WORSE
    assert both.text.startswith("Signals both ways")
    assert "(week of Mon 21 Sep 2026)" in both.text and "(week of Mon 5 Oct 2026)" in both.text


def test_rare_counts_are_too_few_to_judge():
    """Arrivals of 1, 0, 0, 0, 0, 0 a week: limits from such a baseline read routine
    empty weeks as signals, so the Check judges nothing."""
    experiment = checked(baseline="0.17", target="2", measured="0.25", rule=SignalRule.NONE)
    experiment.targeted_metric = TargetedMetric.ARRIVALS
    experiment.baseline_weekly = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]

    verdict = check_verdict(experiment, xmr(experiment.baseline_weekly))

    assert verdict.text.startswith("Too few to judge")
    assert rare_counts(experiment)
    experiment.baseline_weekly = [1.0, 2.0, 0.0, 1.0, 0.0, 3.0]
    assert not rare_counts(experiment)


def test_the_aim_is_said_once_started():
    experiment = checked(baseline="81.82", target="60", measured="70", rule=SignalRule.NONE)

    aim = experiment_aim(experiment, XmR(mean=80.0, upper=100.0, lower=0.0))

    assert aim.startswith("Aims down: the target, 60 %, is below the baseline, 81.82 %.")
    assert "no single week can be a signal" in aim
    experiment.baseline = None
    assert experiment_aim(experiment, XmR()) == ""


def test_the_chart_marks_an_early_stop_s_window_to_its_last_measured_week():
    experiment = checked(baseline="30", target="50", measured="45", rule=SignalRule.NONE)
    experiment.window_start = datetime.date(2026, 6, 1)
    experiment.planned_weeks = 4
    experiment.baseline_weekly = [30.0] * 6
    limits = xmr([30.0] * 6, ceiling=100.0)

    assert experiment_chart(experiment, limits).bands[0].end == "2026-06-22"
    experiment.stopped_at = datetime.datetime(2026, 6, 10, 9, tzinfo=datetime.UTC)
    assert experiment_chart(experiment, limits).bands[0].end == "2026-06-08"
