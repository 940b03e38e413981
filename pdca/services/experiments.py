"""Experiments: a team's PDCA iteration on its cycle, through Plan, Do, Check and Act.

Who: the leaders and coordinators of the experiment's team, and those who steer the
stream (admins, the system, its value stream manager); members see experiments but do
not run them (``pdca.selectors.experiment_runner``). Each service locks the experiment
row, checks the version the caller saw (``expected_version``), records an audit row in
its transaction and announces "stream changed" (settings) after commit.

The numbers are never typed: pdca does not import ``metrics``, so the baseline (at the
start) and the Check's measured value are passed in by ``metrics.experiments``, which
measures them from the move log's aggregates. Times (``at``) default to now; a given
time, for an import or the demo history, is aware, not before 2000 and not in the
future. Days and weeks are calendar days of settings.TIME_ZONE, as in the metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from pdca.errors import (
    CheckNotReady,
    CycleNotFound,
    ExperimentDecided,
    ExperimentNotChecked,
    ExperimentNotRunning,
    ExperimentStarted,
    TargetIsBaseline,
    WindowNotOpen,
    WindowPassed,
)
from pdca.models import (
    DECISION_NOTES_MAX_LENGTH,
    HYPOTHESIS_MAX_LENGTH,
    PERCENT_METRICS,
    START_WITHIN,
    Cycle,
    Experiment,
    ExperimentDecision,
    ExperimentStage,
    SignalRule,
    TargetedMetric,
    day_text,
    local_day,
)
from pdca.services.cycles import team_of_stream_check, text_check
from pdca.services.experiment_rules import (
    amount_check,
    amount_text,
    baseline_advice,
    enough_data_check,
    experiment_locked,
    experiment_record,
    experiment_runner_check,
    follow_up_window_start,
    metric_check,
    plan_data,
    scope_check,
    step_time,
    weekly_check,
    weeks_check,
    window_start_check,
)
from vsm.access import StreamNotFound, stream_access
from vsm.actors import Actor
from vsm.errors import InvalidInput
from vsm.services import UNCHANGED, Keep
from vsm.transactions import locking_transaction

_ACTED = {
    ExperimentDecision.ADOPT: "experiment.adopted",
    ExperimentDecision.ADAPT: "experiment.adapted",
    ExperimentDecision.ABANDON: "experiment.abandoned",
}


def experiment_plan(
    *,
    cycle_id: int,
    team_id: int,
    hypothesis: str,
    targeted_metric: str,
    window_start: date,
    planned_weeks: int,
    target: Decimal,
    actor: Actor,
    column_id: int | None = None,
    channel_id: int | None = None,
    at: datetime | None = None,
) -> Experiment:
    """Plan an experiment of a team on its stream's cycle: a hypothesis ("We believe
    that ... will ...; we will know because ..."), the metric it targets and its scope
    (a column of the cycle, or a channel of the stream, as the metric needs), the
    window (a Monday, and 1 to PLANNED_WEEKS_MAX whole weeks) and the target value.

    Raises: CycleNotFound, NotInStream (team, column or channel of another stream),
    PermissionRefused (not a runner of that team), InvalidInput, ScopeInvalid,
    WindowPassed (the window's first week is over at ``at``).
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    at = step_time(at)
    hypothesis = text_check(
        hypothesis, what="A hypothesis", field="hypothesis", max_length=HYPOTHESIS_MAX_LENGTH
    )
    metric = metric_check(targeted_metric)
    planned_weeks = weeks_check(planned_weeks)
    window_start = window_start_check(window_start, at=at)
    target = amount_check(target, field="target", percent=metric in PERCENT_METRICS)
    missing = CycleNotFound(data={"cycle_id": cycle_id}, field="cycle")
    stream_id = Cycle.objects.filter(pk=cycle_id).values_list("value_stream_id", flat=True).first()
    if stream_id is None:
        raise missing
    with locking_transaction():
        try:
            stream = stream_access(actor=actor, stream_id=stream_id)
        except StreamNotFound:
            raise missing from None
        team_of_stream_check(stream, team_id, field="team")
        experiment_runner_check(actor=actor, stream=stream, team_id=team_id)
        scope_check(
            stream, cycle_id=cycle_id, metric=metric, column_id=column_id, channel_id=channel_id
        )
        experiment = Experiment.objects.create(
            cycle_id=cycle_id,
            team_id=team_id,
            hypothesis=hypothesis,
            targeted_metric=metric,
            column_id=column_id,
            channel_id=channel_id,
            window_start=window_start,
            planned_weeks=planned_weeks,
            target=target,
            created_by_id=actor.user_id,
            created_at=at,
        )
        experiment_record(
            actor=actor,
            action="experiment.planned",
            experiment=experiment,
            stream_id=stream.pk,
            data=plan_data(experiment),
        )
    return experiment


def experiment_update_plan(
    *,
    experiment_id: int,
    actor: Actor,
    hypothesis: str | None = None,
    team_id: int | None = None,
    targeted_metric: str | None = None,
    column_id: int | None | Keep = UNCHANGED,
    channel_id: int | None | Keep = UNCHANGED,
    window_start: date | None = None,
    planned_weeks: int | None = None,
    target: Decimal | None = None,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> Experiment:
    """Change a plan before it starts: its hypothesis, team, metric and scope, window or
    target (None or UNCHANGED: as it is). Once started they stay: the baseline was
    measured for them.

    Locks: the experiment. Raises: ExperimentNotFound, PermissionRefused (of the old
    team or the new one), Stale, ExperimentStarted, InvalidInput, ScopeInvalid,
    NotInStream, WindowPassed.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    at = step_time(at)
    with locking_transaction():
        experiment, stream = experiment_locked(
            experiment_id=experiment_id, actor=actor, expected_version=expected_version
        )
        if experiment.stage != ExperimentStage.PLAN:
            given = {
                "hypothesis": hypothesis,
                "team": team_id,
                "targeted_metric": targeted_metric,
                "column": column_id,
                "channel": channel_id,
                "window_start": window_start,
                "planned_weeks": planned_weeks,
                "target": target,
            }
            changing = [name for name, value in given.items() if value not in (None, UNCHANGED)]
            raise ExperimentStarted(
                data={"experiment_id": experiment.pk}, field=changing[0] if changing else ""
            )
        if hypothesis is not None:
            experiment.hypothesis = text_check(
                hypothesis,
                what="A hypothesis",
                field="hypothesis",
                max_length=HYPOTHESIS_MAX_LENGTH,
            )
        if team_id is not None and team_id != experiment.team_id:
            team_of_stream_check(stream, team_id, field="team")
            experiment_runner_check(actor=actor, stream=stream, team_id=team_id)
            experiment.team_id = team_id
        if targeted_metric is not None:
            experiment.targeted_metric = metric_check(targeted_metric)
        metric = TargetedMetric(experiment.targeted_metric)
        if column_id is not UNCHANGED:
            experiment.column_id = column_id
        if channel_id is not UNCHANGED:
            experiment.channel_id = channel_id
        scope_check(
            stream,
            cycle_id=experiment.cycle_id,
            metric=metric,
            column_id=experiment.column_id,
            channel_id=experiment.channel_id,
        )
        if window_start is not None:
            experiment.window_start = window_start_check(window_start, at=at)
        if planned_weeks is not None:
            experiment.planned_weeks = weeks_check(planned_weeks)
        if target is not None:
            experiment.target = target
        # Checked in any case: a new metric may be a share, whose target is at most 100.
        experiment.target = amount_check(
            experiment.target, field="target", percent=metric in PERCENT_METRICS
        )
        experiment.version += 1
        experiment.save()
        experiment_record(
            actor=actor,
            action="experiment.plan_updated",
            experiment=experiment,
            stream_id=stream.pk,
            data=plan_data(experiment),
        )
    return experiment


def experiment_start(
    *,
    experiment_id: int,
    actor: Actor,
    baseline: Decimal | None,
    baseline_cards: int,
    baseline_weekly: Sequence[float | None],
    expected_version: int | None = None,
    at: datetime | None = None,
) -> Experiment:
    """Start the Do, in the window's first week, freezing the baseline: the metric over
    the ``baseline_weeks`` full weeks before the window (``baseline``, None when there
    was nothing to measure), the cards it rests on, and its weekly values, from which
    the Check draws the natural process limits. Called by
    ``metrics.experiments.experiment_baseline_start``, which measures them for the
    version it names in ``expected_version``.

    Locks: the experiment. Raises: ExperimentNotFound, PermissionRefused, Stale,
    ExperimentStarted (started already), WindowNotOpen, WindowPassed, InvalidInput,
    TooLittleData (no value, fewer than two weeks with a value, or too few cards for a
    share or a percentile), TargetIsBaseline.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    at = step_time(at)
    with locking_transaction():
        experiment, stream = experiment_locked(
            experiment_id=experiment_id, actor=actor, expected_version=expected_version
        )
        if experiment.stage != ExperimentStage.PLAN:
            raise ExperimentStarted(
                "This experiment has started already.", data={"experiment_id": experiment.pk}
            )
        day = local_day(at)
        if day < experiment.window_start:
            raise WindowNotOpen(
                f"The experiment starts in its window, from {day_text(experiment.window_start)}: "
                "the baseline's last week is not over before then.",
                data={"experiment_id": experiment.pk},
                field="window_start",
            )
        if day >= experiment.window_start + START_WITHIN:
            last_day = experiment.window_start + START_WITHIN - timedelta(days=1)
            raise WindowPassed(
                f"The first week of the window ended on {day_text(last_day)}: an experiment "
                "starts in its window's first week. Change the plan to a later window.",
                data={"experiment_id": experiment.pk},
                field="window_start",
            )
        percent = experiment.targeted_metric in PERCENT_METRICS
        value = (
            None if baseline is None else amount_check(baseline, field="baseline", percent=percent)
        )
        weekly = weekly_check(
            baseline_weekly, weeks=experiment.baseline_weeks, field="baseline_weekly"
        )
        enough_data_check(
            experiment,
            value=value,
            cards=baseline_cards,
            weekly=weekly,
            min_weeks=2,
            what="baseline",
            field="baseline",
            advice=baseline_advice(experiment),
        )
        assert value is not None  # enough_data_check refuses a baseline without one
        if value == experiment.target:
            raise TargetIsBaseline(
                f"The target equals the baseline measured, {amount_text(value, experiment.unit)}: "
                "an experiment aims for a change. Edit the plan to a target above or below it.",
                data={"experiment_id": experiment.pk, "baseline": value},
                field="target",
            )
        experiment.stage = ExperimentStage.DO
        experiment.started_at = at
        experiment.started_by_id = actor.user_id
        experiment.baseline = value
        experiment.baseline_cards = baseline_cards
        experiment.baseline_weekly = weekly
        experiment.version += 1
        experiment.save()
        experiment_record(
            actor=actor,
            action="experiment.started",
            experiment=experiment,
            stream_id=stream.pk,
            data={"baseline": value, "baseline_cards": baseline_cards, "target": experiment.target},
        )
    return experiment


def experiment_stop(
    *,
    experiment_id: int,
    actor: Actor,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> Experiment:
    """Stop the Do: early (before the window is over, recorded as such) or at its end.
    The Check then measures the window up to the last whole day before the stop.

    Locks: the experiment. Raises: ExperimentNotFound, PermissionRefused, Stale,
    ExperimentNotRunning (not started, or stopped already), InvalidInput (a stop before
    the start).
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    at = step_time(at)
    with locking_transaction():
        experiment, stream = experiment_locked(
            experiment_id=experiment_id, actor=actor, expected_version=expected_version
        )
        if not experiment.is_running:
            raise ExperimentNotRunning(data={"experiment_id": experiment.pk})
        assert experiment.started_at is not None  # running: started
        if at < experiment.started_at:
            raise InvalidInput("An experiment stops after it started.", field="at")
        experiment.stopped_at = at
        experiment.stopped_by_id = actor.user_id
        experiment.stopped_early = at < experiment.window_ends_at
        experiment.version += 1
        experiment.save()
        experiment_record(
            actor=actor,
            action="experiment.stopped",
            experiment=experiment,
            stream_id=stream.pk,
            data={"stopped_early": experiment.stopped_early},
        )
    return experiment


def experiment_check_record(
    *,
    experiment_id: int,
    actor: Actor,
    measured_value: Decimal | None,
    measured_cards: int,
    measured_weekly: Sequence[float | None],
    signal_rule: str,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> Experiment:
    """Record the Check, as ``metrics.experiments.experiment_check`` measured it for the
    version it names: the value over the Do (None when there was nothing to measure),
    the cards it rests on, its value in each full week of the Do (``measured_weeks``),
    and the detection rule that found a signal against the baseline's natural process
    limits ("" for routine variation: no signal). A Check may be taken again until the
    Act (the numbers only grow more complete).

    Taken once the Do stopped, or its window is over (then the window's end is recorded
    as its stop, not early).
    Locks: the experiment. Raises: ExperimentNotFound, PermissionRefused, Stale,
    CheckNotReady (not started, or still running in its window), ExperimentDecided,
    InvalidInput, TooLittleData (no value, no full week with one, or too few cards for
    a share or a percentile).
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    at = step_time(at)
    if signal_rule not in SignalRule.values:
        raise InvalidInput("A signal is named by one of the detection rules.", field="signal_rule")
    with locking_transaction():
        experiment, stream = experiment_locked(
            experiment_id=experiment_id, actor=actor, expected_version=expected_version
        )
        if experiment.stage == ExperimentStage.ACT:
            raise ExperimentDecided(
                "This experiment is decided: its Check stays as it was acted on.",
                data={"experiment_id": experiment.pk},
            )
        if not experiment.check_ready(at):
            if experiment.stage == ExperimentStage.PLAN:
                message = "This experiment has not started yet."
            elif experiment.stopped_at is not None:
                message = (
                    "It stopped on its window's first day: there is no whole day to "
                    "measure. Abandon it without a Check, with a note."
                )
            else:
                message = ""
            raise CheckNotReady(message, data={"experiment_id": experiment.pk})
        if experiment.stopped_at is None:
            # The window is over: it ended the Do.
            experiment.stopped_at = experiment.window_ends_at
            experiment.stopped_early = False
        percent = experiment.targeted_metric in PERCENT_METRICS
        value = (
            None
            if measured_value is None
            else amount_check(measured_value, field="measured_value", percent=percent)
        )
        weekly = weekly_check(
            measured_weekly, weeks=experiment.measured_weeks, field="measured_weekly"
        )
        enough_data_check(
            experiment,
            value=value,
            cards=measured_cards,
            weekly=weekly,
            min_weeks=1,
            what="Check",
            field="measured_value",
        )
        experiment.stage = ExperimentStage.CHECK
        experiment.measured_value = value
        experiment.measured_cards = measured_cards
        experiment.measured_weekly = weekly
        experiment.signal = signal_rule != SignalRule.NONE
        experiment.signal_rule = signal_rule
        experiment.checked_at = at
        experiment.version += 1
        experiment.save()
        experiment_record(
            actor=actor,
            action="experiment.checked",
            experiment=experiment,
            stream_id=stream.pk,
            data={
                "baseline": experiment.baseline,
                "measured_value": value,
                "measured_cards": measured_cards,
                "signal": experiment.signal,
            },
        )
    return experiment


@dataclass(frozen=True)
class ExperimentActed:
    """What an Act changed: the experiment, and the follow-up an adapt planned."""

    experiment: Experiment
    follow_up: Experiment | None = None


def experiment_act(
    *,
    experiment_id: int,
    actor: Actor,
    decision: str,
    notes: str = "",
    expected_version: int | None = None,
    at: datetime | None = None,
) -> ExperimentActed:
    """Act on the Check: adopt the change, abandon it, or adapt it, which plans a
    follow-up (same team, cycle, metric, scope, length, hypothesis and target, its
    window from the next Monday that has not begun, linked by ``follow_up_of``) whose
    baseline is measured when it starts: the state then, and whose plan the team revises
    before then (``experiment_update_plan``). With notes, who and when.

    An experiment in its Do may be abandoned without a Check (stopped, or its window
    over, with nothing measurable; or given up while it runs): the notes, then required,
    say why. It stops then, if it had not, and no Check is recorded; adopt and adapt
    still need the measured result. A plan may be abandoned too, before it starts (the
    pages call it withdrawing the plan): the notes say why; it never starts, and nothing
    is measured.

    Locks: the experiment. Raises: ExperimentNotFound, PermissionRefused, Stale,
    ExperimentNotChecked (the Check comes first; in Plan or Do, except to abandon),
    ExperimentDecided, InvalidInput (no notes to abandon without a Check).
    Side effects: an audit row (and one for the follow-up's plan); "stream changed"
    (settings) after commit.
    """
    at = step_time(at)
    if decision not in _ACTED:
        raise InvalidInput("Choose a decision: adopt, adapt or abandon.", field="decision")
    notes = notes.strip()
    if len(notes) > DECISION_NOTES_MAX_LENGTH:
        raise InvalidInput(
            f"Notes are at most {DECISION_NOTES_MAX_LENGTH:,} characters.",
            data={"max_length": DECISION_NOTES_MAX_LENGTH},
            field="notes",
        )
    with locking_transaction():
        experiment, stream = experiment_locked(
            experiment_id=experiment_id, actor=actor, expected_version=expected_version
        )
        if experiment.stage == ExperimentStage.ACT:
            raise ExperimentDecided(data={"experiment_id": experiment.pk}, field="decision")
        if experiment.stage == ExperimentStage.PLAN and decision == ExperimentDecision.ABANDON:
            _withdraw(experiment, actor=actor, notes=notes, at=at)
            experiment_record(
                actor=actor,
                action=_ACTED[ExperimentDecision.ABANDON],
                experiment=experiment,
                stream_id=stream.pk,
                data={"checked": False, "started": False},
            )
            return ExperimentActed(experiment)
        if experiment.stage == ExperimentStage.DO and decision == ExperimentDecision.ABANDON:
            _abandon_unchecked(experiment, actor=actor, notes=notes, at=at)
            experiment_record(
                actor=actor,
                action=_ACTED[ExperimentDecision.ABANDON],
                experiment=experiment,
                stream_id=stream.pk,
                data={"checked": False, "stopped_early": experiment.stopped_early},
            )
            return ExperimentActed(experiment)
        if experiment.stage == ExperimentStage.DO:
            raise ExperimentNotChecked(
                "Adopt or adapt once its Check is recorded: without a Check, an experiment in "
                "its Do can only be abandoned.",
                data={"experiment_id": experiment.pk},
                field="decision",
            )
        if experiment.stage == ExperimentStage.PLAN:
            raise ExperimentNotChecked(
                "Adopt or adapt once its Check is recorded: a plan that has not started can "
                "only be withdrawn (abandoned).",
                data={"experiment_id": experiment.pk},
                field="decision",
            )
        experiment.stage = ExperimentStage.ACT
        experiment.decision = decision
        experiment.decision_notes = notes
        experiment.decided_at = at
        experiment.decided_by_id = actor.user_id
        experiment.version += 1
        experiment.save()
        experiment_record(
            actor=actor,
            action=_ACTED[ExperimentDecision(decision)],
            experiment=experiment,
            stream_id=stream.pk,
            data={"signal": experiment.signal, "measured_value": experiment.measured_value},
        )
        follow_up = None
        if decision == ExperimentDecision.ADAPT:
            follow_up = Experiment.objects.create(
                cycle_id=experiment.cycle_id,
                team_id=experiment.team_id,
                hypothesis=experiment.hypothesis,
                targeted_metric=experiment.targeted_metric,
                column_id=experiment.column_id,
                channel_id=experiment.channel_id,
                window_start=follow_up_window_start(at),
                planned_weeks=experiment.planned_weeks,
                target=experiment.target,
                follow_up_of=experiment,
                created_by_id=actor.user_id,
                created_at=at,
            )
            experiment_record(
                actor=actor,
                action="experiment.planned",
                experiment=follow_up,
                stream_id=stream.pk,
                data=plan_data(follow_up),
            )
    return ExperimentActed(experiment, follow_up)


def _withdraw(experiment: Experiment, *, actor: Actor, notes: str, at: datetime) -> None:
    """Abandon ``experiment`` (locked, in Plan) before it starts: decided, never started,
    nothing measured (pdca_experiment_started_has_baseline lets such a row be).
    Raises: InvalidInput (no notes, or dated before the plan)."""
    if not notes:
        raise InvalidInput(
            "Say why the plan is withdrawn: the notes are what the team learnt.", field="notes"
        )
    if at < experiment.created_at:
        raise InvalidInput("A plan is withdrawn after it was planned.", field="at")
    experiment.stage = ExperimentStage.ACT
    experiment.decision = ExperimentDecision.ABANDON
    experiment.decision_notes = notes
    experiment.decided_at = at
    experiment.decided_by_id = actor.user_id
    experiment.version += 1
    experiment.save()


def _abandon_unchecked(experiment: Experiment, *, actor: Actor, notes: str, at: datetime) -> None:
    """Abandon ``experiment`` (locked, in its Do) without a Check: stopped at ``at`` if
    it still ran (early, by ``actor``), or at its window's end if that passed unstopped
    (as a Check records it). Raises: InvalidInput (no notes)."""
    if not notes:
        raise InvalidInput(
            "Say why it is abandoned without a Check: the notes are what the team learnt.",
            field="notes",
        )
    assert experiment.started_at is not None  # in Do: started
    if at < experiment.started_at:
        raise InvalidInput("An experiment is abandoned after it started.", field="at")
    if experiment.stopped_at is None:
        if at < experiment.window_ends_at:
            experiment.stopped_at = at
            experiment.stopped_by_id = actor.user_id
            experiment.stopped_early = True
        else:
            experiment.stopped_at = experiment.window_ends_at
            experiment.stopped_early = False
    experiment.stage = ExperimentStage.ACT
    experiment.decision = ExperimentDecision.ABANDON
    experiment.decision_notes = notes
    experiment.decided_at = at
    experiment.decided_by_id = actor.user_id
    experiment.version += 1
    experiment.save()
