"""Experiments through the pdca services: each stage transition, each refusal, the audit
rows and announcements, who may run them, the selectors, and the read-only admin.

The numbers a start and a Check record are given here as the metrics side would pass
them (tests/metrics/test_experiment_check.py measures them on a scripted stream).
Dates: planned on Thursday 2025-04-10, the window from Monday 2025-04-14 for 4 weeks
(to Sunday 2025-05-11), started on its Monday; settings.TIME_ZONE is UTC.
"""

from __future__ import annotations

import ast
import datetime
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from pdca import services
from pdca.errors import (
    CheckNotReady,
    CycleNotFound,
    ExperimentDecided,
    ExperimentNotChecked,
    ExperimentNotFound,
    ExperimentNotRunning,
    ExperimentStarted,
    ScopeInvalid,
    TargetIsBaseline,
    TooLittleData,
    WindowNotOpen,
    WindowPassed,
)
from pdca.models import (
    BASELINE_MIN_WEEKS,
    METRIC_UNIT,
    MIN_CHECK_CARDS,
    Experiment,
    ExperimentDecision,
    ExperimentStage,
    SignalRule,
    TargetedMetric,
    day_text,
)
from pdca.selectors import (
    LAST_COLUMN_ONWARD,
    ExperimentQuery,
    cycles_running,
    experiment_get,
    experiment_runner,
    experiment_scope_names,
    experiment_steps,
    experiments_by_cycle,
    experiments_check_ready,
)
from tests.factories import ChannelFactory, MembershipFactory, TeamFactory, UserFactory
from tests.support import COLLABORATION, SALES, TEST_SYSTEM, as_actor, column_of, logged_in
from vsm.actors import TokenActor
from vsm.errors import InvalidInput, PermissionRefused, Stale
from vsm.models import AuditEntry, Role, Team
from vsm.services import NotInStream

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
PLANNED_AT = datetime.datetime(2025, 4, 10, 9, 0, tzinfo=UTC)
MONDAY = datetime.date(2025, 4, 14)
STARTED_AT = datetime.datetime(2025, 4, 14, 9, 0, tzinfo=UTC)
IN_THE_WINDOW = datetime.datetime(2025, 4, 30, 12, 0, tzinfo=UTC)
WINDOW_ENDS_AT = datetime.datetime(2025, 5, 12, 0, 0, tzinfo=UTC)
# The baseline of a 4-week experiment rests on BASELINE_MIN_WEEKS (6) weeks.
BASELINE_WEEKLY = [25.0, 50.0, 25.0, 50.0, 25.0, 25.0]
HYPOTHESIS = (
    "We believe that offering a trial will raise Information to Knowledge conversion; "
    "we will know because more cards move on from Information."
)


@pytest.fixture
def plan(sales, team, sales_information, leader):
    """``plan(**changes)``: plan the conversion experiment as the team leader."""

    def planned(**changes) -> Experiment:
        fields = {
            "cycle_id": sales.pk,
            "team_id": team.pk,
            "hypothesis": HYPOTHESIS,
            "targeted_metric": TargetedMetric.CONVERSION,
            "column_id": sales_information.pk,
            "window_start": MONDAY,
            "planned_weeks": 4,
            "target": Decimal("40"),
            "actor": as_actor(leader),
            "at": PLANNED_AT,
        }
        return services.experiment_plan(**(fields | changes))

    return planned


def start(experiment: Experiment, actor, **changes) -> Experiment:
    fields = {
        "experiment_id": experiment.pk,
        "actor": as_actor(actor),
        "baseline": Decimal("33.33"),
        "baseline_cards": 24,
        "baseline_weekly": BASELINE_WEEKLY,
        "at": STARTED_AT,
    }
    return services.experiment_start(**(fields | changes))


def check(experiment: Experiment, actor, **changes) -> Experiment:
    fields = {
        "experiment_id": experiment.pk,
        "actor": as_actor(actor),
        "measured_value": Decimal("81.25"),
        "measured_cards": 16,
        "measured_weekly": [75.0, 75.0, 100.0, 75.0],
        "signal_rule": SignalRule.BEYOND_UPPER_LIMIT,
    }
    return services.experiment_check_record(**(fields | changes))


@pytest.fixture
def checked(plan, leader):
    """A conversion experiment started, run through its window and checked."""
    return check(start(plan(), leader), leader)


def audit(action: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action).latest("id")


# --- Plan ----------------------------------------------------------------------------


def test_a_team_leader_plans_an_experiment(
    plan, stream, sales, team, sales_information, leader, announced
):
    with announced() as sent:
        experiment = plan()

    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.cycle_id, row.team_id, row.column_id, row.channel_id) == (
        ExperimentStage.PLAN,
        sales.pk,
        team.pk,
        sales_information.pk,
        None,
    )
    assert (row.window_start, row.planned_weeks, row.target) == (MONDAY, 4, Decimal("40.00"))
    assert (row.created_by_id, row.created_at, row.version) == (leader.pk, PLANNED_AT, 1)
    assert (row.baseline, row.started_at, row.measured_value, row.decision) == (
        None,
        None,
        None,
        "",
    )
    assert row.window_last_day == datetime.date(2025, 5, 11)
    assert row.window_ends_at == WINDOW_ENDS_AT
    assert (row.baseline_weeks, row.baseline_first_day) == (6, datetime.date(2025, 3, 3))
    entry = audit("experiment.planned")
    assert (entry.actor_id, entry.stream_id, entry.target_type, entry.target_id) == (
        leader.pk,
        stream.pk,
        "experiment",
        row.pk,
    )
    assert entry.data == {
        "cycle_id": sales.pk,
        "version": 1,
        "team_id": team.pk,
        "column_id": sales_information.pk,
        "channel_id": None,
        "planned_weeks": 4,
        "target": "40.00",
        "follow_up_of_id": None,
    }
    assert sent == [(stream.pk, ["settings"])]


@pytest.mark.parametrize("role", [Role.TEAM_LEADER, Role.TEAM_COORDINATOR])
def test_leaders_and_coordinators_of_the_team_run_its_experiments(plan, team, role):
    runner = MembershipFactory(team=team, role=role).user

    assert plan(actor=as_actor(runner)).created_by_id == runner.pk


def test_the_stream_manager_and_the_system_run_every_team_s_experiments(plan, stream, manager):
    other_team = TeamFactory(value_stream=stream, name="Field sales")

    assert plan(actor=as_actor(manager), team_id=other_team.pk).team_id == other_team.pk
    assert plan(actor=TEST_SYSTEM).created_by_id is None


def test_a_member_sees_experiments_but_may_not_plan_one(plan, member, stream, announced):
    with announced() as sent, pytest.raises(PermissionRefused) as refused:
        plan(actor=as_actor(member))

    assert refused.value.data["stream_id"] == stream.pk
    assert not Experiment.objects.exists()
    assert not AuditEntry.objects.filter(action="experiment.planned").exists()
    assert sent == []


def test_a_leader_of_another_team_may_not_plan_for_this_team(plan, stream):
    other_team_leader = MembershipFactory(
        team=TeamFactory(value_stream=stream, name="Field sales"), role=Role.TEAM_LEADER
    ).user

    with pytest.raises(PermissionRefused):
        plan(actor=as_actor(other_team_leader))


def test_outside_the_stream_the_cycle_is_not_found(plan, sales):
    with pytest.raises(CycleNotFound) as refused:
        plan(actor=as_actor(UserFactory()))

    assert refused.value.data == {"cycle_id": sales.pk}


def test_an_api_token_of_the_stream_may_not_plan(plan, stream):
    with pytest.raises(PermissionRefused):
        plan(actor=TokenActor(token_id=1, stream_id=stream.pk))


def test_a_team_of_another_stream_is_refused(plan, other_stream, manager):
    with pytest.raises(NotInStream) as refused:
        plan(actor=as_actor(manager), team_id=Team.objects.filter(value_stream=other_stream)[0].pk)

    assert refused.value.field == "team"


def test_another_stream_s_column_is_no_scope(plan, other_stream):
    with pytest.raises(NotInStream) as refused:
        plan(column_id=column_of(other_stream, SALES, "Information").pk)

    assert refused.value.field == "column"
    assert not Experiment.objects.exists()


def test_another_stream_s_channel_is_no_scope(plan, other_stream):
    channel = ChannelFactory(value_stream=other_stream)

    with pytest.raises(NotInStream) as refused:
        plan(targeted_metric=TargetedMetric.ARRIVALS, column_id=None, channel_id=channel.pk)

    assert refused.value.field == "channel"


def test_a_column_of_another_cycle_is_no_scope(plan, stream):
    with pytest.raises(ScopeInvalid) as refused:
        plan(column_id=column_of(stream, COLLABORATION, "Information").pk)

    assert (refused.value.code, refused.value.field) == ("scope_invalid", "column")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"column_id": None}, "column"),  # conversion needs its column
        ({"targeted_metric": TargetedMetric.THROUGHPUT}, "column"),  # a cycle metric: none
        ({"targeted_metric": TargetedMetric.WIN_RATE, "column_id": None}, "channel"),
    ],
)
def test_each_metric_takes_the_scope_it_needs(plan, changes, field):
    with pytest.raises(ScopeInvalid) as refused:
        plan(**changes)

    assert refused.value.field == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hypothesis": "   "}, "hypothesis"),
        ({"targeted_metric": "vanity"}, "targeted_metric"),
        ({"planned_weeks": 0}, "planned_weeks"),
        ({"planned_weeks": 27}, "planned_weeks"),
        ({"window_start": MONDAY + datetime.timedelta(days=1)}, "window_start"),
        ({"target": Decimal("100.01")}, "target"),  # a share is at most 100%
        ({"target": Decimal("-1")}, "target"),
        ({"at": datetime.datetime(2025, 4, 10, 9, 0)}, "at"),  # naive
    ],
)
def test_a_plan_is_refused_what_it_cannot_hold(plan, changes, field):
    with pytest.raises(InvalidInput) as refused:
        plan(**changes)

    assert refused.value.field == field
    assert not Experiment.objects.exists()


def test_a_window_whose_first_week_is_over_cannot_be_planned(plan):
    with pytest.raises(WindowPassed) as refused:
        plan(at=datetime.datetime(2025, 4, 21, 0, 0, tzinfo=UTC))

    assert refused.value.field == "window_start"


@pytest.mark.parametrize("window_start", [datetime.date(9999, 12, 27), datetime.date(2030, 1, 7)])
def test_a_window_far_ahead_is_refused_with_a_message(plan, window_start):
    # 9999-12-27 overflowed the window's arithmetic: a 500 found by a tryout.
    with pytest.raises(InvalidInput, match="within 26 weeks") as refused:
        plan(window_start=window_start)

    assert refused.value.field == "window_start"
    assert not Experiment.objects.exists()


def test_the_plan_changes_until_the_start(plan, leader, sales_information):
    experiment = plan()

    changed = services.experiment_update_plan(
        experiment_id=experiment.pk,
        actor=as_actor(leader),
        target=Decimal("45"),
        planned_weeks=6,
        hypothesis="We believe a trial and a call raise it.",
        expected_version=1,
        at=PLANNED_AT,
    )

    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.target, row.planned_weeks, row.hypothesis, row.version) == (
        Decimal("45.00"),
        6,
        "We believe a trial and a call raise it.",
        2,
    )
    assert changed.column_id == sales_information.pk
    assert audit("experiment.plan_updated").data["target"] == "45.00"


def test_a_plan_changed_meanwhile_is_stale(plan, leader):
    experiment = plan()

    with pytest.raises(Stale):
        services.experiment_update_plan(
            experiment_id=experiment.pk,
            actor=as_actor(leader),
            target=Decimal("45"),
            expected_version=7,
        )

    assert Experiment.objects.get(pk=experiment.pk).target == Decimal("40.00")


def test_a_new_metric_takes_its_new_scope(plan, leader, stream):
    channel = ChannelFactory(value_stream=stream)
    experiment = plan()

    services.experiment_update_plan(
        experiment_id=experiment.pk,
        actor=as_actor(leader),
        targeted_metric=TargetedMetric.ARRIVALS,
        column_id=None,
        channel_id=channel.pk,
        target=Decimal("12"),
    )

    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.targeted_metric, row.column_id, row.channel_id) == (
        TargetedMetric.ARRIVALS,
        None,
        channel.pk,
    )


# --- Do ------------------------------------------------------------------------------


def test_the_start_freezes_the_baseline(plan, leader, stream, announced):
    experiment = plan()

    with announced() as sent:
        started = start(experiment, leader)

    row = Experiment.objects.get(pk=started.pk)
    assert (row.stage, row.started_at, row.started_by_id) == (
        ExperimentStage.DO,
        STARTED_AT,
        leader.pk,
    )
    assert (row.baseline, row.baseline_cards, row.baseline_weekly) == (
        Decimal("33.33"),
        24,
        BASELINE_WEEKLY,
    )
    assert (row.is_running, row.direction, row.version) == (True, 1, 2)
    assert audit("experiment.started").data == {
        "cycle_id": row.cycle_id,
        "version": 2,
        "baseline": "33.33",
        "baseline_cards": 24,
        "target": "40.00",
    }
    assert sent == [(stream.pk, ["settings"])]


def test_changing_the_target_after_the_start_is_refused(plan, leader):
    experiment = start(plan(), leader)

    with pytest.raises(ExperimentStarted) as refused:
        services.experiment_update_plan(
            experiment_id=experiment.pk, actor=as_actor(leader), target=Decimal("60")
        )

    assert (refused.value.code, refused.value.field) == ("experiment_started", "target")
    assert Experiment.objects.get(pk=experiment.pk).target == Decimal("40.00")


def test_an_experiment_starts_once(plan, leader):
    experiment = start(plan(), leader)

    with pytest.raises(ExperimentStarted):
        start(experiment, leader, baseline=Decimal("20"))

    assert Experiment.objects.get(pk=experiment.pk).baseline == Decimal("33.33")


def test_a_member_may_not_start_an_experiment(plan, member):
    experiment = plan()

    with pytest.raises(PermissionRefused):
        start(experiment, member)

    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.PLAN


def test_it_starts_in_its_window_s_first_week(plan, leader):
    experiment = plan()

    with pytest.raises(WindowNotOpen):
        start(experiment, leader, at=datetime.datetime(2025, 4, 13, 23, 59, tzinfo=UTC))
    with pytest.raises(WindowPassed):
        start(experiment, leader, at=datetime.datetime(2025, 4, 21, 0, 0, tzinfo=UTC))
    assert start(experiment, leader, at=datetime.datetime(2025, 4, 20, 23, 59, tzinfo=UTC)).pk


def test_a_baseline_on_too_few_cards_is_refused(plan, leader):
    experiment = plan()

    with pytest.raises(TooLittleData) as refused:
        start(experiment, leader, baseline_cards=MIN_CHECK_CARDS - 1)

    assert refused.value.data == {
        "experiment_id": experiment.pk,
        "cards": MIN_CHECK_CARDS - 1,
        "min_cards": MIN_CHECK_CARDS,
    }
    assert refused.value.code == "too_little_data"
    # It says what to do: a conversion is measured on a column.
    assert refused.value.message.endswith(
        "To start it, change the plan: lengthen the window: the baseline grows with it (as "
        f"many full weeks before the window as the window has, {BASELINE_MIN_WEEKS} at "
        "least), or target a busier column."
    )
    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.PLAN


def test_a_count_needs_no_minimum_of_cards_but_two_weeks_with_a_value(plan, leader):
    experiment = plan(
        targeted_metric=TargetedMetric.THROUGHPUT, column_id=None, target=Decimal("5")
    )
    one_week = [1.0, None, None, None, None, None]

    with pytest.raises(TooLittleData) as refused:
        start(experiment, leader, baseline=Decimal("1"), baseline_cards=1, baseline_weekly=one_week)
    assert refused.value.data["weeks_with_value"] == 1
    assert "lengthen the window: the baseline grows with it" in refused.value.message
    assert refused.value.message.endswith("target a busier cycle or another metric.")

    started = start(
        experiment,
        leader,
        baseline=Decimal("0.17"),
        baseline_cards=1,
        baseline_weekly=[0, 0, 0, 0, 0, 1],
    )
    assert (started.baseline, started.baseline_cards) == (Decimal("0.17"), 1)


def test_no_baseline_is_too_little_data(plan, leader):
    with pytest.raises(TooLittleData, match="lengthen the window") as refused:
        start(plan(), leader, baseline=None, baseline_cards=0, baseline_weekly=[None] * 6)

    assert refused.value.message.startswith("The baseline has nothing to measure")


def test_a_baseline_has_one_value_per_baseline_week(plan, leader):
    with pytest.raises(InvalidInput) as refused:
        start(plan(), leader, baseline_weekly=BASELINE_WEEKLY[:4])

    assert refused.value.data == {"weeks": BASELINE_MIN_WEEKS, "values": 4}


def test_a_target_equal_to_the_baseline_is_refused(plan, leader):
    with pytest.raises(TargetIsBaseline) as refused:
        start(plan(), leader, baseline=Decimal("40"))

    assert refused.value.field == "target"
    assert "the baseline measured, 40 %:" in refused.value.message


def test_a_target_equal_to_the_baseline_says_what_the_baseline_measured(plan, leader):
    experiment = plan(target=Decimal("23.68"))

    with pytest.raises(TargetIsBaseline) as refused:
        start(experiment, leader, baseline=Decimal("23.68"))

    assert refused.value.message == (
        "The target equals the baseline measured, 23.68 %: an experiment aims for a change. "
        "Edit the plan to a target above or below it."
    )
    assert (refused.value.code, refused.value.data) == (
        "target_is_baseline",
        {"experiment_id": experiment.pk, "baseline": Decimal("23.68")},
    )


def test_stopping_early_is_recorded(plan, leader, announced):
    experiment = start(plan(), leader)

    with announced() as sent:
        stopped = services.experiment_stop(
            experiment_id=experiment.pk, actor=as_actor(leader), at=IN_THE_WINDOW
        )

    row = Experiment.objects.get(pk=stopped.pk)
    assert (row.stage, row.stopped_at, row.stopped_by_id, row.stopped_early) == (
        ExperimentStage.DO,
        IN_THE_WINDOW,
        leader.pk,
        True,
    )
    # Stopped on Wednesday Apr 30: the Do's last whole day is Tuesday; 2 full weeks.
    assert (row.measured_last_day, row.measured_weeks) == (datetime.date(2025, 4, 29), 2)
    assert audit("experiment.stopped").data["stopped_early"] is True
    assert len(sent) == 1


def test_stopping_at_the_window_s_end_is_not_early(plan, leader):
    experiment = start(plan(), leader)

    stopped = services.experiment_stop(
        experiment_id=experiment.pk, actor=as_actor(leader), at=WINDOW_ENDS_AT
    )

    assert (stopped.stopped_early, stopped.measured_weeks) == (False, 4)


def test_only_a_running_experiment_stops(plan, leader):
    experiment = plan()
    with pytest.raises(ExperimentNotRunning):
        services.experiment_stop(experiment_id=experiment.pk, actor=as_actor(leader))

    start(experiment, leader)
    services.experiment_stop(experiment_id=experiment.pk, actor=as_actor(leader), at=IN_THE_WINDOW)
    with pytest.raises(ExperimentNotRunning):
        services.experiment_stop(experiment_id=experiment.pk, actor=as_actor(leader))


def test_a_stop_before_the_start_is_refused(plan, leader):
    experiment = start(plan(), leader)

    with pytest.raises(InvalidInput) as refused:
        services.experiment_stop(
            experiment_id=experiment.pk,
            actor=as_actor(leader),
            at=STARTED_AT - datetime.timedelta(minutes=1),
        )

    assert refused.value.field == "at"


# --- Check ---------------------------------------------------------------------------


def test_the_check_records_the_measured_result(plan, leader, stream, announced):
    experiment = start(plan(), leader)

    with announced() as sent:
        checked = check(experiment, leader)

    row = Experiment.objects.get(pk=checked.pk)
    assert row.stage == ExperimentStage.CHECK
    assert (row.measured_value, row.measured_cards, row.measured_weekly) == (
        Decimal("81.25"),
        16,
        [75.0, 75.0, 100.0, 75.0],
    )
    assert (row.signal, row.signal_rule) == (True, SignalRule.BEYOND_UPPER_LIMIT)
    assert row.checked_at is not None
    # The window ran out without a stop: its end is recorded as the stop, not early.
    assert (row.stopped_at, row.stopped_early, row.stopped_by_id) == (WINDOW_ENDS_AT, False, None)
    assert audit("experiment.checked").data == {
        "cycle_id": row.cycle_id,
        "version": 3,
        "baseline": "33.33",
        "measured_value": "81.25",
        "measured_cards": 16,
        "signal": True,
    }
    assert sent == [(stream.pk, ["settings"])]


def test_no_check_while_the_window_runs(plan, leader):
    experiment = start(plan(), leader)

    with pytest.raises(CheckNotReady):
        check(experiment, leader, at=IN_THE_WINDOW)

    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.DO


def test_no_check_of_a_plan(plan, leader):
    with pytest.raises(CheckNotReady):
        check(plan(), leader)


def test_a_check_after_an_early_stop_measures_the_weeks_it_ran(plan, leader):
    experiment = start(plan(), leader)
    services.experiment_stop(experiment_id=experiment.pk, actor=as_actor(leader), at=IN_THE_WINDOW)

    with pytest.raises(InvalidInput) as refused:
        check(experiment, leader)  # four weekly values for a Do of two full weeks
    assert refused.value.data == {"weeks": 2, "values": 4}

    checked = check(
        experiment,
        leader,
        measured_value=Decimal("75"),
        measured_cards=12,
        measured_weekly=[75.0, 75.0],
        signal_rule=SignalRule.NONE,
    )
    assert (checked.stage, checked.signal, checked.stopped_at) == (
        ExperimentStage.CHECK,
        False,
        IN_THE_WINDOW,
    )


def test_a_check_with_too_little_data_is_refused(plan, leader, announced):
    experiment = start(plan(), leader)

    with announced() as sent, pytest.raises(TooLittleData) as refused:
        check(experiment, leader, measured_cards=MIN_CHECK_CARDS - 1)

    assert refused.value.code == "too_little_data"
    assert refused.value.data["cards"] == MIN_CHECK_CARDS - 1
    # The Check's way out is on its page (abandon without one): no advice on the plan.
    assert "lengthen the window" not in refused.value.message
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.measured_value, row.stopped_at) == (ExperimentStage.DO, None, None)
    assert sent == []


def test_a_do_shorter_than_a_week_is_too_little_data(plan, leader):
    experiment = start(plan(), leader)
    services.experiment_stop(
        experiment_id=experiment.pk,
        actor=as_actor(leader),
        at=STARTED_AT + datetime.timedelta(days=3),
    )

    with pytest.raises(TooLittleData) as refused:
        check(experiment, leader, measured_weekly=[])

    assert refused.value.data["weeks_with_value"] == 0


def test_a_check_may_be_taken_again_until_the_act(checked, leader):
    again = check(checked, leader, measured_value=Decimal("80"), measured_cards=17)

    assert (again.stage, again.measured_value, again.measured_cards) == (
        ExperimentStage.CHECK,
        Decimal("80.00"),
        17,
    )


def test_an_unknown_signal_rule_is_refused(checked, leader):
    with pytest.raises(InvalidInput) as refused:
        check(checked, leader, signal_rule="gut_feeling")

    assert refused.value.field == "signal_rule"


# --- Act -----------------------------------------------------------------------------


def test_act_before_check_is_refused(plan, leader):
    experiment = start(plan(), leader)

    with pytest.raises(ExperimentNotChecked) as refused:
        services.experiment_act(
            experiment_id=experiment.pk, actor=as_actor(leader), decision=ExperimentDecision.ADOPT
        )

    assert (refused.value.code, refused.value.http_status) == ("experiment_not_checked", 409)
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.decision) == (ExperimentStage.DO, "")


def test_adopt_decides_with_notes_who_and_when(checked, leader, stream, announced):
    decided_at = datetime.datetime(2025, 5, 13, 10, 0, tzinfo=UTC)

    with announced() as sent:
        acted = services.experiment_act(
            experiment_id=checked.pk,
            actor=as_actor(leader),
            decision=ExperimentDecision.ADOPT,
            notes="  Trials become the standard offer.  ",
            at=decided_at,
        )

    assert acted.follow_up is None
    row = Experiment.objects.get(pk=checked.pk)
    assert (row.stage, row.decision, row.decision_notes, row.decided_by_id, row.decided_at) == (
        ExperimentStage.ACT,
        ExperimentDecision.ADOPT,
        "Trials become the standard offer.",
        leader.pk,
        decided_at,
    )
    assert audit("experiment.adopted").data == {
        "cycle_id": row.cycle_id,
        "version": 4,
        "signal": True,
        "measured_value": "81.25",
    }
    assert sent == [(stream.pk, ["settings"])]


def test_adapt_plans_a_follow_up_from_the_next_monday(checked, leader):
    decided_at = datetime.datetime(2025, 5, 14, 16, 0, tzinfo=UTC)  # a Wednesday

    with mock.patch("django.utils.timezone.now", return_value=decided_at):  # decided now
        acted = services.experiment_act(
            experiment_id=checked.pk,
            actor=as_actor(leader),
            decision=ExperimentDecision.ADAPT,
            notes="Keep the trial, shorten it.",
            at=decided_at,
        )

    follow_up = Experiment.objects.get(pk=acted.follow_up.pk)
    assert follow_up.follow_up_of_id == checked.pk
    assert follow_up.stage == ExperimentStage.PLAN
    assert follow_up.window_start == datetime.date(2025, 5, 19)
    same = ("cycle_id", "team_id", "hypothesis", "targeted_metric", "column_id", "channel_id")
    same += ("planned_weeks", "target")
    assert [getattr(follow_up, name) for name in same] == [getattr(checked, name) for name in same]
    assert (follow_up.baseline, follow_up.created_by_id, follow_up.created_at) == (
        None,
        leader.pk,
        decided_at,
    )
    assert audit("experiment.adapted").target_id == checked.pk
    planned = audit("experiment.planned")
    assert (planned.target_id, planned.data["follow_up_of_id"]) == (follow_up.pk, checked.pk)
    assert list(Experiment.objects.get(pk=checked.pk).follow_ups.all()) == [follow_up]


def test_a_follow_up_of_a_decision_dated_in_the_past_gets_a_window_not_begun(checked, leader):
    # A decision dated back (an import, the demo's history): the Monday after it is long
    # past, and a window whose first week is over could never start.
    acted = services.experiment_act(
        experiment_id=checked.pk,
        actor=as_actor(leader),
        decision=ExperimentDecision.ADAPT,
        notes="Keep the trial, shorten it.",
        at=datetime.datetime(2025, 5, 14, 16, 0, tzinfo=UTC),
    )

    window_start = Experiment.objects.get(pk=acted.follow_up.pk).window_start
    today = timezone.localdate()
    assert window_start.weekday() == 0
    assert today < window_start <= today + datetime.timedelta(days=7)
    # Its plan can be revised (a window that has not begun is valid) and started then.
    services.experiment_update_plan(
        experiment_id=acted.follow_up.pk,
        actor=as_actor(leader),
        target=Decimal("50"),
        window_start=window_start,
        expected_version=1,
    )


def test_abandon_decides_and_the_decision_stays(checked, leader):
    services.experiment_act(
        experiment_id=checked.pk, actor=as_actor(leader), decision=ExperimentDecision.ABANDON
    )
    assert audit("experiment.abandoned").target_id == checked.pk

    with pytest.raises(ExperimentDecided):
        services.experiment_act(
            experiment_id=checked.pk, actor=as_actor(leader), decision=ExperimentDecision.ADOPT
        )
    with pytest.raises(ExperimentDecided):
        check(checked, leader)
    assert Experiment.objects.get(pk=checked.pk).decision == ExperimentDecision.ABANDON


@pytest.mark.parametrize("decision", ["", "ignore"])
def test_a_decision_is_adopt_adapt_or_abandon(checked, leader, decision):
    with pytest.raises(InvalidInput) as refused:
        services.experiment_act(experiment_id=checked.pk, actor=as_actor(leader), decision=decision)

    assert refused.value.field == "decision"


def test_a_member_may_not_act(checked, member):
    with pytest.raises(PermissionRefused):
        services.experiment_act(
            experiment_id=checked.pk, actor=as_actor(member), decision=ExperimentDecision.ADOPT
        )


def test_outside_the_stream_an_experiment_is_not_found(checked):
    with pytest.raises(ExperimentNotFound) as refused:
        services.experiment_act(
            experiment_id=checked.pk, actor=as_actor(UserFactory()), decision="adopt"
        )

    assert refused.value.data == {"experiment_id": checked.pk}


# --- abandon without a Check --------------------------------------------------------


def test_a_running_experiment_is_abandoned_without_a_check(plan, leader, stream, announced):
    experiment = start(plan(), leader)

    with announced() as sent:
        acted = services.experiment_act(
            experiment_id=experiment.pk,
            actor=as_actor(leader),
            decision=ExperimentDecision.ABANDON,
            notes="  The trial offer was withdrawn by sales.  ",
            expected_version=experiment.version,
            at=IN_THE_WINDOW,
        )

    assert acted.follow_up is None
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.decision, row.decision_notes) == (
        ExperimentStage.ACT,
        ExperimentDecision.ABANDON,
        "The trial offer was withdrawn by sales.",
    )
    assert (row.decided_by_id, row.decided_at, row.version) == (leader.pk, IN_THE_WINDOW, 3)
    # It stops then, early, by whoever abandoned it; nothing is measured.
    assert (row.stopped_at, row.stopped_by_id, row.stopped_early) == (
        IN_THE_WINDOW,
        leader.pk,
        True,
    )
    assert (row.checked_at, row.measured_value, row.measured_cards, row.signal) == (
        None,
        None,
        None,
        False,
    )
    assert row.abandoned_unchecked
    entry = audit("experiment.abandoned")
    assert (entry.actor_id, entry.target_id) == (leader.pk, experiment.pk)
    assert entry.data == {
        "cycle_id": row.cycle_id,
        "version": 3,
        "checked": False,
        "stopped_early": True,
    }
    assert sent == [(stream.pk, ["settings"])]


def test_abandoning_after_the_window_without_a_stop_ends_the_do_at_the_window_s_end(plan, leader):
    # Its window passed with nothing measurable: the Check is refused, the Act too.
    experiment = start(plan(), leader)
    with pytest.raises(TooLittleData):
        check(experiment, leader, measured_value=None, measured_cards=0, signal_rule="")
    with pytest.raises(ExperimentNotChecked):
        services.experiment_act(
            experiment_id=experiment.pk, actor=as_actor(leader), decision="adopt"
        )

    services.experiment_act(
        experiment_id=experiment.pk,
        actor=as_actor(leader),
        decision=ExperimentDecision.ABANDON,
        notes="No prospect reached Information in the window.",
    )

    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.decision) == (ExperimentStage.ACT, ExperimentDecision.ABANDON)
    assert (row.stopped_at, row.stopped_by_id, row.stopped_early) == (WINDOW_ENDS_AT, None, False)


def test_a_stopped_experiment_abandoned_keeps_its_stop(plan, leader):
    experiment = start(plan(), leader)
    services.experiment_stop(experiment_id=experiment.pk, actor=as_actor(leader), at=IN_THE_WINDOW)

    services.experiment_act(
        experiment_id=experiment.pk,
        actor=as_actor(leader),
        decision=ExperimentDecision.ABANDON,
        notes="Stopped: the offer is off.",
        at=IN_THE_WINDOW + datetime.timedelta(hours=1),
    )

    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stopped_at, row.stopped_early) == (IN_THE_WINDOW, True)
    with pytest.raises(ExperimentDecided):
        check(row, leader)


@pytest.mark.parametrize("notes", ["", "   "])
def test_abandoning_without_a_check_needs_notes(plan, leader, notes):
    experiment = start(plan(), leader)

    with pytest.raises(InvalidInput) as refused:
        services.experiment_act(
            experiment_id=experiment.pk,
            actor=as_actor(leader),
            decision=ExperimentDecision.ABANDON,
            notes=notes,
            at=IN_THE_WINDOW,
        )

    assert refused.value.field == "notes"
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.stopped_at, row.version) == (ExperimentStage.DO, None, 2)
    assert not AuditEntry.objects.filter(action="experiment.abandoned").exists()


@pytest.mark.parametrize("decision", [ExperimentDecision.ADOPT, ExperimentDecision.ADAPT])
def test_adopt_and_adapt_still_need_the_check(plan, leader, decision):
    experiment = start(plan(), leader)

    with pytest.raises(ExperimentNotChecked, match="can only be abandoned") as refused:
        services.experiment_act(
            experiment_id=experiment.pk,
            actor=as_actor(leader),
            decision=decision,
            notes="It seems to work.",
            at=IN_THE_WINDOW,
        )

    assert refused.value.field == "decision"
    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.DO
    assert not Experiment.objects.filter(follow_up_of=experiment).exists()


# --- a plan withdrawn (abandoned before its start) ------------------------------------

WITHDRAWN_AT = PLANNED_AT + datetime.timedelta(days=1)


def withdraw(experiment: Experiment, actor, **changes) -> Experiment:
    fields = {
        "experiment_id": experiment.pk,
        "actor": as_actor(actor),
        "decision": ExperimentDecision.ABANDON,
        "notes": " Sales dropped the trial offer before we began. ",
        "expected_version": experiment.version,
        "at": WITHDRAWN_AT,
    }
    return services.experiment_act(**(fields | changes)).experiment


def test_a_plan_is_withdrawn_as_an_abandon_with_notes_who_and_when(plan, leader, stream, announced):
    experiment = plan()

    with announced() as sent:
        withdrawn = withdraw(experiment, leader)

    row = Experiment.objects.get(pk=experiment.pk)
    assert withdrawn.pk == row.pk
    assert (row.stage, row.decision, row.decision_notes) == (
        ExperimentStage.ACT,
        ExperimentDecision.ABANDON,
        "Sales dropped the trial offer before we began.",
    )
    assert (row.decided_by_id, row.decided_at, row.version) == (leader.pk, WITHDRAWN_AT, 2)
    # Never started, nothing measured.
    assert (row.started_at, row.baseline, row.stopped_at, row.checked_at) == (
        None,
        None,
        None,
        None,
    )
    assert row.withdrawn and row.abandoned_unchecked
    entry = audit("experiment.abandoned")
    assert (entry.actor_id, entry.target_id) == (leader.pk, experiment.pk)
    assert entry.data == {
        "cycle_id": row.cycle_id,
        "version": 2,
        "checked": False,
        "started": False,
    }
    assert sent == [(stream.pk, ["settings"])]
    # It leaves the plans: no start, no change of plan, no second decision.
    with pytest.raises(ExperimentStarted):
        start(row, leader)
    with pytest.raises(ExperimentStarted):
        services.experiment_update_plan(
            experiment_id=row.pk, actor=as_actor(leader), target=Decimal("45")
        )
    with pytest.raises(ExperimentDecided):
        withdraw(row, leader)
    planned = ExperimentQuery(stream=stream, stages=(ExperimentStage.PLAN,)).experiments()
    assert not planned.exists()
    assert not any(vars(experiment_steps(row, at=WITHDRAWN_AT)).values())


@pytest.mark.parametrize("notes", ["", "   "])
def test_withdrawing_a_plan_needs_notes(plan, leader, notes):
    experiment = plan()

    with pytest.raises(InvalidInput, match="Say why the plan is withdrawn") as refused:
        withdraw(experiment, leader, notes=notes)

    assert refused.value.field == "notes"
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.decision, row.version) == (ExperimentStage.PLAN, "", 1)
    assert not AuditEntry.objects.filter(action="experiment.abandoned").exists()


@pytest.mark.parametrize("decision", [ExperimentDecision.ADOPT, ExperimentDecision.ADAPT])
def test_a_plan_is_withdrawn_never_adopted_or_adapted(plan, leader, decision):
    experiment = plan()

    with pytest.raises(ExperimentNotChecked, match="can only be withdrawn"):
        withdraw(experiment, leader, decision=decision)

    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.PLAN
    assert not Experiment.objects.filter(follow_up_of=experiment).exists()


def test_a_member_may_not_withdraw_a_plan(plan, member):
    experiment = plan()

    with pytest.raises(PermissionRefused):
        withdraw(experiment, member)

    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.PLAN


def test_a_plan_changed_meanwhile_is_not_withdrawn(plan, leader):
    experiment = plan()
    services.experiment_update_plan(
        experiment_id=experiment.pk, actor=as_actor(leader), target=Decimal("45")
    )

    with pytest.raises(Stale):
        withdraw(experiment, leader, expected_version=1)

    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.PLAN


def test_the_database_holds_a_withdrawn_plan_to_never_started(plan, leader):
    rows = Experiment.objects.filter(pk=withdraw(plan(), leader).pk)
    # A row that breaks both: PostgreSQL names the first by name, SQLite by its order.
    either = "pdca_experiment_(checked_has_measure|started_has_baseline)"

    with (
        pytest.raises(IntegrityError, match="pdca_experiment_started_has_baseline"),
        transaction.atomic(),
    ):
        rows.update(stopped_at=WITHDRAWN_AT)
    with pytest.raises(IntegrityError, match=either), transaction.atomic():
        rows.update(baseline=Decimal("30"), baseline_cards=12)
    with pytest.raises(IntegrityError, match=either), transaction.atomic():
        rows.update(decision=ExperimentDecision.ADOPT)


def test_a_member_may_not_abandon(plan, leader, member):
    experiment = start(plan(), leader)

    with pytest.raises(PermissionRefused):
        services.experiment_act(
            experiment_id=experiment.pk,
            actor=as_actor(member),
            decision=ExperimentDecision.ABANDON,
            notes="Not mine to stop.",
            at=IN_THE_WINDOW,
        )


def test_an_act_on_a_version_changed_meanwhile_is_stale(plan, leader):
    experiment = start(plan(), leader)
    services.experiment_stop(experiment_id=experiment.pk, actor=as_actor(leader), at=IN_THE_WINDOW)

    with pytest.raises(Stale):
        services.experiment_act(
            experiment_id=experiment.pk,
            actor=as_actor(leader),
            decision=ExperimentDecision.ABANDON,
            notes="Seen while it ran.",
            expected_version=2,  # the version started, before the stop
        )

    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.DO


def test_the_database_holds_an_act_without_a_check_to_an_abandon(plan, leader):
    experiment = start(plan(), leader)
    services.experiment_act(
        experiment_id=experiment.pk,
        actor=as_actor(leader),
        decision=ExperimentDecision.ABANDON,
        notes="Given up.",
        at=IN_THE_WINDOW,
    )
    rows = Experiment.objects.filter(pk=experiment.pk)

    with (
        pytest.raises(IntegrityError, match="pdca_experiment_checked_has_measure"),
        transaction.atomic(),
    ):
        rows.update(decision=ExperimentDecision.ADOPT)
    with (
        pytest.raises(IntegrityError, match="pdca_experiment_measure_only_when_checked"),
        transaction.atomic(),
    ):
        rows.update(measured_value=Decimal("10"), measured_cards=12)


# --- dates in refusals -----------------------------------------------------------------


def test_refusals_give_dates_as_the_pages_do(plan, leader):
    experiment = plan()

    with pytest.raises(WindowNotOpen) as not_open:
        start(experiment, leader, at=datetime.datetime(2025, 4, 13, 12, 0, tzinfo=UTC))
    with pytest.raises(WindowPassed) as passed:
        start(experiment, leader, at=datetime.datetime(2025, 4, 21, 12, 0, tzinfo=UTC))
    with pytest.raises(WindowPassed) as planned_late:
        plan(at=datetime.datetime(2025, 4, 21, 0, 0, tzinfo=UTC))

    assert "from Mon 14 Apr 2025:" in not_open.value.message
    assert "ended on Sun 20 Apr 2025:" in passed.value.message
    assert "from Mon 14 Apr 2025 is over" in planned_late.value.message
    for refused in (not_open, passed, planned_late):
        assert "2025-04" not in refused.value.message
    assert day_text(datetime.date(2026, 12, 7)) == "Mon 7 Dec 2026"


# --- selectors -----------------------------------------------------------------------


def test_experiments_are_listed_per_cycle_with_their_stage(plan, leader, stream, sales):
    running = start(plan(), leader)
    planned = plan(window_start=MONDAY + datetime.timedelta(weeks=1))

    listed = experiments_by_cycle(ExperimentQuery(stream=stream))

    assert [entry.cycle.name for entry in listed] == [
        cycle.name for cycle in stream.cycles.order_by("order")
    ]
    sales_entry = next(entry for entry in listed if entry.cycle.pk == sales.pk)
    assert [(e.pk, e.stage) for e in sales_entry.experiments] == [
        (planned.pk, ExperimentStage.PLAN),
        (running.pk, ExperimentStage.DO),
    ]
    with mock.patch("django.utils.timezone.now", return_value=IN_THE_WINDOW):
        assert sales_entry.running == [running]
    with mock.patch("django.utils.timezone.now", return_value=running.window_ends_at):
        assert sales_entry.running == []  # its window is over: its Check is due
    assert experiments_by_cycle(ExperimentQuery(stream=stream, stages=(ExperimentStage.PLAN,)))[
        1
    ].experiments == [planned]


def test_cycles_with_a_running_experiment(plan, leader, stream, sales):
    experiment = start(plan(), leader)
    query = ExperimentQuery(stream=stream)
    assert cycles_running(query, at=IN_THE_WINDOW) == {sales.pk: (experiment.pk,)}
    second = start(plan(), leader)
    assert cycles_running(query, at=IN_THE_WINDOW) == {sales.pk: (experiment.pk, second.pk)}
    services.experiment_stop(experiment_id=second.pk, actor=as_actor(leader), at=IN_THE_WINDOW)
    assert cycles_running(query, at=IN_THE_WINDOW) == {sales.pk: (experiment.pk,)}
    # Once its window is over it no longer runs, stopped or not: its Check is due.
    assert cycles_running(query, at=experiment.window_ends_at) == {}

    services.experiment_stop(experiment_id=experiment.pk, actor=as_actor(leader), at=IN_THE_WINDOW)
    assert cycles_running(query, at=IN_THE_WINDOW) == {}


def test_checks_ready_leave_out_decided_experiments(plan, leader, stream):
    abandoned, kept = start(plan(), leader), start(plan(), leader)
    for experiment in (abandoned, kept):
        services.experiment_stop(
            experiment_id=experiment.pk, actor=as_actor(leader), at=IN_THE_WINDOW
        )
    query = ExperimentQuery(stream=stream)
    assert experiments_check_ready(query, at=WINDOW_ENDS_AT) == [abandoned, kept]

    services.experiment_act(
        experiment_id=abandoned.pk,
        actor=as_actor(leader),
        decision=ExperimentDecision.ABANDON,
        notes="Nothing to measure.",
    )

    assert experiments_check_ready(query, at=WINDOW_ENDS_AT) == [kept]


def test_checks_ready_are_stopped_or_past_their_window_and_not_checked(plan, leader, stream):
    running = start(plan(), leader)
    stopped = start(plan(), leader)
    services.experiment_stop(experiment_id=stopped.pk, actor=as_actor(leader), at=IN_THE_WINDOW)
    check(start(plan(), leader), leader)  # checked already
    plan()  # not started
    query = ExperimentQuery(stream=stream)

    assert experiments_check_ready(query, at=IN_THE_WINDOW) == [stopped]
    # Once the window is over, the one that ran to its end is ready too.
    assert experiments_check_ready(query, at=WINDOW_ENDS_AT) == [running, stopped]


def test_an_experiment_is_read_by_those_who_see_its_stream(plan, member):
    experiment = plan()

    read = experiment_get(actor=as_actor(member), experiment_id=experiment.pk)
    assert (read.pk, read.cycle.value_stream.viewer_manages) == (experiment.pk, False)
    with pytest.raises(ExperimentNotFound):
        experiment_get(actor=as_actor(UserFactory()), experiment_id=experiment.pk)
    with pytest.raises(ExperimentNotFound):
        experiment_get(actor=as_actor(member), experiment_id=experiment.pk + 1000)


def test_who_runs_a_team_s_experiments(stream, team, leader, member, manager):
    stream = stream.__class__.objects.get(pk=stream.pk)

    assert experiment_runner(actor=as_actor(leader), stream=stream, team_id=team.pk)
    assert experiment_runner(actor=as_actor(manager), stream=stream, team_id=None)
    assert not experiment_runner(actor=as_actor(member), stream=stream, team_id=team.pk)
    assert not experiment_runner(actor=as_actor(leader), stream=stream, team_id=None)


# --- the admin and the app graph -----------------------------------------------------


def test_the_admin_shows_experiments_read_only(checked):
    admin = logged_in(UserFactory(is_staff=True, is_superuser=True))

    assert admin.get("/admin/pdca/experiment/").status_code == 200
    page = admin.get(f"/admin/pdca/experiment/{checked.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin.get("/admin/pdca/experiment/add/").status_code == 403
    assert admin.get(f"/admin/pdca/experiment/{checked.pk}/delete/").status_code == 403


def test_pdca_imports_neither_metrics_nor_boards():
    """pdca measures nothing itself: the numbers come from metrics, which imports pdca
    (lint-imports checks the whole graph; this names the rule for experiments)."""
    imported = set()
    for path in Path(services.__file__).parents[1].rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])

    assert {"pdca", "vsm"} <= imported
    assert not imported & {"metrics", "boards"}


# --- what the pages offer and name ----------------------------------------------------


@pytest.mark.parametrize(
    ("at", "offered"),
    [
        (
            datetime.datetime(2025, 4, 13, 23, 0, tzinfo=UTC),
            {"edit", "withdraw", "start_opens_on"},
        ),
        (STARTED_AT, {"edit", "withdraw", "start", "start_until"}),
        (
            datetime.datetime(2025, 4, 20, 23, 59, tzinfo=UTC),
            {"edit", "withdraw", "start", "start_until"},
        ),
        (datetime.datetime(2025, 4, 21, 0, 0, tzinfo=UTC), {"edit", "withdraw", "start_missed"}),
    ],
)
def test_a_plan_offers_its_start_in_its_window_s_first_week(plan, at, offered):
    # A plan may be withdrawn whenever it has not started.
    steps = experiment_steps(plan(), at=at)

    assert {name for name, value in vars(steps).items() if value} == offered
    if "start_opens_on" in offered:
        assert steps.start_opens_on == MONDAY
    if "start_until" in offered:
        assert steps.start_until == datetime.date(2025, 4, 20)


def test_the_do_offers_stop_check_and_abandon_as_its_dates_allow(plan, leader):
    experiment = start(plan(), leader)

    running = experiment_steps(experiment, at=IN_THE_WINDOW)
    over = experiment_steps(experiment, at=WINDOW_ENDS_AT)
    checked_steps = experiment_steps(check(experiment, leader), at=WINDOW_ENDS_AT)

    assert (running.stop, running.check, running.abandon, running.abandon_suggested) == (
        True,
        False,
        True,
        False,
    )
    assert (over.stop, over.check, over.abandon, over.abandon_suggested) == (
        False,
        True,
        True,
        True,
    )
    assert (checked_steps.check, checked_steps.act, checked_steps.abandon) == (True, True, False)


def test_scope_names_say_the_conversion_step_and_the_last_column_s_way_out(
    plan, stream, sales, sales_information
):
    last = column_of(stream, SALES, "Wisdom")
    channel = ChannelFactory(value_stream=stream, name="Referral")
    experiments = [
        plan(),
        plan(column_id=last.pk),
        plan(targeted_metric=TargetedMetric.WIP, column_id=last.pk, target=Decimal("3")),
        plan(targeted_metric=TargetedMetric.ARRIVALS, column_id=None, channel_id=channel.pk),
        plan(targeted_metric=TargetedMetric.THROUGHPUT, column_id=None, target=Decimal("5")),
    ]
    listed = experiments_by_cycle(ExperimentQuery(stream=stream, cycle_id=sales.pk))[0]

    assert [name for _, name in listed.rows][::-1] == [
        "Information → Knowledge",
        f"Wisdom → {LAST_COLUMN_ONWARD}",
        "Wisdom",
        "Referral",
        SALES,
    ]
    assert LAST_COLUMN_ONWARD == "handed on or won"
    one = experiment_get(actor=TEST_SYSTEM, experiment_id=experiments[1].pk)
    assert experiment_scope_names([one]) == {one.pk: "Wisdom → handed on or won"}


def test_a_wip_unit_reads_well_in_parentheses():
    for unit in METRIC_UNIT.values():
        assert "(" not in unit and ")" not in unit
    assert METRIC_UNIT[TargetedMetric.WIP] == "cards on an average day"
