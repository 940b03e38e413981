"""Every named constraint of the pdca models: the valid row saves, the invalid one is refused."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from pdca.models import (
    HYPOTHESIS_MAX_LENGTH,
    METRIC_SCOPE,
    PLANNED_WEEKS_MAX,
    ControlPoint,
    Criterion,
    Cycle,
    Experiment,
    ExperimentDecision,
    ExperimentStage,
    MetricScope,
    SignalRule,
    TargetedMetric,
)
from tests.constraints import violates
from tests.factories import (
    ChannelFactory,
    ColumnFactory,
    ControlPointFactory,
    CriterionFactory,
    CycleFactory,
    ExperimentFactory,
    ValueStreamFactory,
)

pytestmark = pytest.mark.django_db


def test_cycle_order_unique_per_stream():
    cycle = CycleFactory(order=1)
    elsewhere = CycleFactory(order=1)
    assert Cycle.objects.get(pk=elsewhere.pk).value_stream_id != cycle.value_stream_id

    with violates(Cycle, "pdca_cycle_unique_order_per_stream"):
        CycleFactory(value_stream=cycle.value_stream, order=1)


def test_cycle_name_unique_per_stream():
    cycle = CycleFactory(name="Collaboration")
    elsewhere = CycleFactory(name="Collaboration")
    assert Cycle.objects.get(pk=elsewhere.pk).value_stream_id != cycle.value_stream_id

    with violates(Cycle, "pdca_cycle_unique_name_per_stream"):
        CycleFactory(value_stream=cycle.value_stream, name="Collaboration")


def test_cycle_name_not_blank():
    assert CycleFactory(name="Repeat/Upsell").pk

    with violates(Cycle, "pdca_cycle_name_not_blank"):
        CycleFactory(name="")


def test_control_point_factory_keeps_both_cycles_in_one_stream():
    control_point = ControlPoint.objects.select_related("from_cycle", "to_cycle").get(
        pk=ControlPointFactory().pk
    )

    assert control_point.from_cycle.value_stream_id == control_point.to_cycle.value_stream_id
    assert control_point.from_cycle_id != control_point.to_cycle_id


def test_control_point_unique_per_cycle_pair():
    control_point = ControlPointFactory()
    assert ControlPointFactory(
        from_cycle=control_point.to_cycle, to_cycle=control_point.from_cycle
    ).pk

    with violates(ControlPoint, "pdca_controlpoint_unique_cycle_pair"):
        ControlPointFactory(from_cycle=control_point.from_cycle, to_cycle=control_point.to_cycle)


def test_control_point_joins_distinct_cycles():
    stream = ValueStreamFactory()
    first, second = CycleFactory(value_stream=stream), CycleFactory(value_stream=stream)
    assert ControlPointFactory(from_cycle=first, to_cycle=second).pk

    with violates(ControlPoint, "pdca_controlpoint_distinct_cycles"):
        ControlPointFactory(from_cycle=first, to_cycle=first)


def test_criterion_text_not_blank():
    assert CriterionFactory(text="Decision maker identified").pk

    with violates(Criterion, "pdca_criterion_text_not_blank"):
        CriterionFactory(text="")


# --- experiments ---------------------------------------------------------------------

MONDAY = datetime.date(2025, 3, 3)
AT = datetime.datetime(2025, 3, 3, 9, 0, tzinfo=datetime.UTC)
LATER = AT + datetime.timedelta(weeks=4)
STARTED = {
    "stage": ExperimentStage.DO,
    "window_start": MONDAY,
    "started_at": AT,
    "baseline": Decimal("4.00"),
    "baseline_cards": 24,
    "baseline_weekly": [4, 3, 5, 4, 4, 4],
}
CHECKED = {
    **STARTED,
    "stage": ExperimentStage.CHECK,
    "stopped_at": LATER,
    "checked_at": LATER,
    "measured_value": Decimal("6.50"),
    "measured_cards": 26,
    "measured_weekly": [6, 7, 6, 7],
}
ACTED = {
    **CHECKED,
    "stage": ExperimentStage.ACT,
    "decision": ExperimentDecision.ADOPT,
    "decided_at": LATER,
}


def scoped(metric: str) -> dict:
    """An experiment's metric with the scope it needs, on a new cycle."""
    cycle = CycleFactory()
    scope = METRIC_SCOPE[metric]
    return {
        "cycle": cycle,
        "targeted_metric": metric,
        "column": ColumnFactory(cycle=cycle) if scope == MetricScope.COLUMN else None,
        "channel": (
            ChannelFactory(value_stream=cycle.value_stream)
            if scope == MetricScope.CHANNEL
            else None
        ),
    }


@pytest.mark.parametrize("stage", [STARTED, CHECKED, ACTED])
def test_experiment_stage_valid_accepts_every_stage(stage):
    experiment = ExperimentFactory(**stage)

    assert Experiment.objects.get(pk=experiment.pk).stage == stage["stage"]


def test_experiment_stage_valid_refuses_unknown_stage():
    with violates(Experiment, "pdca_experiment_stage_valid"):
        ExperimentFactory(stage="hope")


@pytest.mark.parametrize("decision", [d for d in ExperimentDecision.values if d])
def test_experiment_decision_valid_accepts_every_decision(decision):
    experiment = ExperimentFactory(**{**ACTED, "decision": decision})

    assert Experiment.objects.get(pk=experiment.pk).decision == decision


def test_experiment_decision_valid_refuses_unknown_decision():
    with violates(Experiment, "pdca_experiment_decision_valid"):
        ExperimentFactory(**{**ACTED, "decision": "ignore"})


@pytest.mark.parametrize("metric", TargetedMetric.values)
def test_experiment_targeted_metric_valid_accepts_every_metric_with_its_scope(metric):
    experiment = ExperimentFactory(**scoped(metric))

    assert Experiment.objects.get(pk=experiment.pk).targeted_metric == metric


def test_experiment_targeted_metric_valid_refuses_unknown_metric():
    with violates(Experiment, "pdca_experiment_targeted_metric_valid"):
        ExperimentFactory(targeted_metric="vanity")


@pytest.mark.parametrize("rule", [r for r in SignalRule.values if r])
def test_experiment_signal_rule_valid_accepts_every_rule(rule):
    experiment = ExperimentFactory(**CHECKED, signal=True, signal_rule=rule)

    assert Experiment.objects.get(pk=experiment.pk).signal_rule == rule


def test_experiment_signal_rule_valid_refuses_unknown_rule():
    with violates(Experiment, "pdca_experiment_signal_rule_valid"):
        ExperimentFactory(**CHECKED, signal=True, signal_rule="gut_feeling")


def test_experiment_hypothesis_length():
    assert ExperimentFactory(hypothesis="x" * HYPOTHESIS_MAX_LENGTH).pk

    with violates(Experiment, "pdca_experiment_hypothesis_length"):
        ExperimentFactory(hypothesis="")
    with violates(Experiment, "pdca_experiment_hypothesis_length"):
        ExperimentFactory(hypothesis="x" * (HYPOTHESIS_MAX_LENGTH + 1))


def test_experiment_planned_weeks_range():
    assert ExperimentFactory(planned_weeks=1).pk
    assert ExperimentFactory(planned_weeks=PLANNED_WEEKS_MAX).pk

    with violates(Experiment, "pdca_experiment_planned_weeks_range"):
        ExperimentFactory(planned_weeks=0)
    with violates(Experiment, "pdca_experiment_planned_weeks_range"):
        ExperimentFactory(planned_weeks=PLANNED_WEEKS_MAX + 1)


def test_experiment_window_starts_on_monday():
    assert ExperimentFactory(window_start=MONDAY).pk

    with violates(Experiment, "pdca_experiment_window_starts_on_monday"):
        ExperimentFactory(window_start=MONDAY + datetime.timedelta(days=2))


def test_experiment_target_range():
    assert ExperimentFactory(target=Decimal("250")).pk  # throughput: no ceiling
    assert ExperimentFactory(**scoped(TargetedMetric.CONVERSION), target=Decimal("100")).pk

    with violates(Experiment, "pdca_experiment_target_range"):
        ExperimentFactory(target=Decimal("-1"))
    with violates(Experiment, "pdca_experiment_target_range"):
        ExperimentFactory(**scoped(TargetedMetric.WIN_RATE), target=Decimal("100.01"))


@pytest.mark.parametrize(
    ("metric", "wrong"),
    [
        (TargetedMetric.CONVERSION, "no column"),
        (TargetedMetric.THROUGHPUT, "a column"),
        (TargetedMetric.ARRIVALS, "a column instead of the channel"),
        (TargetedMetric.WIP, "a channel besides the column"),
    ],
)
def test_experiment_scope_fits_metric(metric, wrong):
    fields = scoped(metric)
    column = ColumnFactory(cycle=fields["cycle"])
    channel = ChannelFactory(value_stream=fields["cycle"].value_stream)
    fields.update(
        {
            "no column": {"column": None},
            "a column": {"column": column},
            "a column instead of the channel": {"column": column, "channel": None},
            "a channel besides the column": {"channel": channel},
        }[wrong]
    )

    with violates(Experiment, "pdca_experiment_scope_fits_metric"):
        ExperimentFactory(**fields)


def test_experiment_plan_not_started():
    with violates(Experiment, "pdca_experiment_plan_not_started"):
        ExperimentFactory(started_at=AT)
    with violates(Experiment, "pdca_experiment_plan_not_started"):
        ExperimentFactory(baseline=Decimal("4"))


@pytest.mark.parametrize("missing", ["started_at", "baseline", "baseline_cards"])
def test_experiment_started_has_baseline(missing):
    with violates(Experiment, "pdca_experiment_started_has_baseline"):
        ExperimentFactory(**{**STARTED, missing: None})


def test_experiment_stopped_after_start():
    assert ExperimentFactory(**STARTED, stopped_at=AT).pk

    with violates(Experiment, "pdca_experiment_stopped_after_start"):
        ExperimentFactory(**STARTED, stopped_at=AT - datetime.timedelta(seconds=1))


def test_experiment_stopped_early_has_stop():
    assert ExperimentFactory(**STARTED, stopped_at=LATER, stopped_early=True).pk

    with violates(Experiment, "pdca_experiment_stopped_early_has_stop"):
        ExperimentFactory(**STARTED, stopped_early=True)


@pytest.mark.parametrize(
    "missing", ["stopped_at", "checked_at", "measured_value", "measured_cards"]
)
def test_experiment_checked_has_measure(missing):
    with violates(Experiment, "pdca_experiment_checked_has_measure"):
        ExperimentFactory(**{**CHECKED, missing: None})


@pytest.mark.parametrize(
    "measure",
    [
        {"checked_at": LATER},
        {"measured_value": Decimal("6")},
        {"measured_cards": 3},
        {"signal": True, "signal_rule": SignalRule.BEYOND_UPPER_LIMIT},
    ],
)
def test_experiment_measure_only_when_checked(measure):
    with violates(Experiment, "pdca_experiment_measure_only_when_checked"):
        ExperimentFactory(**STARTED, **measure)


def test_experiment_signal_names_rule():
    assert ExperimentFactory(**CHECKED, signal=False, signal_rule=SignalRule.NONE).pk

    with violates(Experiment, "pdca_experiment_signal_names_rule"):
        ExperimentFactory(**CHECKED, signal=True, signal_rule=SignalRule.NONE)
    with violates(Experiment, "pdca_experiment_signal_names_rule"):
        ExperimentFactory(**CHECKED, signal=False, signal_rule=SignalRule.RUN_OF_EIGHT_ABOVE)


@pytest.mark.parametrize("stage", [{}, STARTED, CHECKED])
def test_experiment_decision_only_when_acting(stage):
    assert ExperimentFactory(**stage).pk

    with violates(Experiment, "pdca_experiment_decision_only_when_acting"):
        ExperimentFactory(**stage, decision=ExperimentDecision.ADOPT)
    with violates(Experiment, "pdca_experiment_decision_only_when_acting"):
        ExperimentFactory(**stage, decided_at=LATER)


@pytest.mark.parametrize(
    "missing", [{"decision": ExperimentDecision.UNDECIDED}, {"decided_at": None}]
)
def test_experiment_act_has_decision(missing):
    with violates(Experiment, "pdca_experiment_act_has_decision"):
        ExperimentFactory(**{**ACTED, **missing})


def test_experiment_values_not_negative():
    with violates(Experiment, "pdca_experiment_values_not_negative"):
        ExperimentFactory(**{**STARTED, "baseline": Decimal("-0.01")})
    with violates(Experiment, "pdca_experiment_values_not_negative"):
        ExperimentFactory(**{**CHECKED, "measured_value": Decimal("-1")})
