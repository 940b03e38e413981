"""Every named constraint of the pdca models: the valid row saves, the invalid one is refused."""

from __future__ import annotations

import datetime

import pytest

from pdca.models import (
    ControlPoint,
    Criterion,
    Cycle,
    Experiment,
    ExperimentDecision,
    ExperimentStage,
    TargetedMetric,
)
from tests.constraints import violates
from tests.factories import (
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


def test_experiment_window_ordered():
    start = datetime.date(2025, 3, 3)
    assert ExperimentFactory(window_start=start, window_end=start).pk

    with violates(Experiment, "pdca_experiment_window_ordered"):
        ExperimentFactory(window_start=start, window_end=start - datetime.timedelta(days=1))


@pytest.mark.parametrize("stage", ExperimentStage.values)
def test_experiment_stage_valid_accepts_every_stage(stage):
    experiment = ExperimentFactory(stage=stage)

    assert Experiment.objects.get(pk=experiment.pk).stage == stage


def test_experiment_stage_valid_refuses_unknown_stage():
    with violates(Experiment, "pdca_experiment_stage_valid"):
        ExperimentFactory(stage="hope")


@pytest.mark.parametrize("decision", ExperimentDecision.values)
def test_experiment_decision_valid_accepts_every_decision(decision):
    experiment = ExperimentFactory(stage=ExperimentStage.ACT, decision=decision)

    assert Experiment.objects.get(pk=experiment.pk).decision == decision


def test_experiment_decision_valid_refuses_unknown_decision():
    with violates(Experiment, "pdca_experiment_decision_valid"):
        ExperimentFactory(stage=ExperimentStage.ACT, decision="ignore")


@pytest.mark.parametrize("metric", TargetedMetric.values)
def test_experiment_targeted_metric_valid_accepts_every_metric(metric):
    experiment = ExperimentFactory(targeted_metric=metric)

    assert Experiment.objects.get(pk=experiment.pk).targeted_metric == metric


def test_experiment_targeted_metric_valid_refuses_unknown_metric():
    with violates(Experiment, "pdca_experiment_targeted_metric_valid"):
        ExperimentFactory(targeted_metric="vanity")


def test_experiment_hypothesis_not_blank():
    assert ExperimentFactory(hypothesis="A referral bonus doubles referrals").pk

    with violates(Experiment, "pdca_experiment_hypothesis_not_blank"):
        ExperimentFactory(hypothesis="")


@pytest.mark.parametrize("stage", [ExperimentStage.PLAN, ExperimentStage.DO, ExperimentStage.CHECK])
def test_experiment_decision_only_when_acting(stage):
    assert ExperimentFactory(stage=stage, decision=ExperimentDecision.UNDECIDED).pk
    assert ExperimentFactory(stage=ExperimentStage.ACT, decision=ExperimentDecision.ADOPT).pk

    with violates(Experiment, "pdca_experiment_decision_only_when_acting"):
        ExperimentFactory(stage=stage, decision=ExperimentDecision.ADOPT)
