"""The Check in words: signal or noise, and whether a signal went the way the target
aims (no database: the experiment is built in memory)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from metrics.charts import experiment_chart
from metrics.selectors.experiments import VerdictTone, check_verdict
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
