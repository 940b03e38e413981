"""Reads of a stream's experiments, scoped to what the actor may see.

``experiment_get`` answers by id through ``vsm.access`` (not found for both missing and
forbidden). The others take an ``ExperimentQuery`` whose stream the caller has read
through ``vsm.access`` already (the page's own stream), as the metrics selectors take
their ``MetricsQuery``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone

from pdca.errors import ExperimentNotFound
from pdca.models import (
    METRIC_SCOPE,
    START_WITHIN,
    Cycle,
    Experiment,
    ExperimentStage,
    MetricScope,
    TargetedMetric,
    local_day,
)
from vsm.access import StreamNotFound, actor_steers, stream_access
from vsm.actors import Actor, UserActor
from vsm.models import Membership, Role, ValueStream

# Who runs (plans, starts, stops, checks, decides) a team's experiments besides those
# who steer the stream (admins, the system, the value stream manager): its leaders and
# coordinators. Members see them.
RUNNER_ROLES = (Role.TEAM_LEADER, Role.TEAM_COORDINATOR, Role.VALUE_STREAM_MANAGER)
# What the pages say where a member would find the plan form and the steps' buttons.
RUNNERS_ONLY = (
    "Experiments are planned and run by the team's leaders and coordinators and the "
    "stream's manager."
)


def experiment_runner(*, actor: Actor, stream: ValueStream, team_id: int | None) -> bool:
    """Whether ``actor`` may run experiments of the team ``team_id`` in ``stream`` (read
    through ``vsm.access`` for this actor): it steers the stream, or leads or
    coordinates that team. One query at most."""
    if actor_steers(actor=actor, stream=stream):
        return True
    if not isinstance(actor, UserActor) or not actor.user.is_authenticated or team_id is None:
        return False
    return Membership.objects.filter(
        user_id=actor.user.pk,
        team_id=team_id,
        team__value_stream_id=stream.pk,
        role__in=RUNNER_ROLES,
    ).exists()


@dataclass(frozen=True)
class ExperimentQuery:
    """A stream's experiments (the stream read through ``vsm.access``), optionally one
    cycle's and of some stages only."""

    stream: ValueStream
    cycle_id: int | None = None
    stages: tuple[str, ...] = ()

    def experiments(self) -> QuerySet[Experiment]:
        rows = Experiment.objects.filter(cycle__value_stream=self.stream).select_related(
            "cycle", "team", "column", "channel"
        )
        if self.cycle_id is not None:
            rows = rows.filter(cycle_id=self.cycle_id)
        if self.stages:
            rows = rows.filter(stage__in=self.stages)
        return rows


@dataclass(frozen=True)
class CycleExperiments:
    """One cycle of the stream with its experiments, newest window first, and what each
    measures on in words (``scope_names``)."""

    cycle: Cycle
    experiments: list[Experiment] = field(default_factory=list)
    scope_names: dict[int, str] = field(default_factory=dict)

    @property
    def running(self) -> list[Experiment]:
        """Those running now: started, not stopped, their window not over (as
        ``cycles_running``: one whose window is over awaits its Check)."""
        now = timezone.now()
        return [e for e in self.experiments if e.is_running and now < e.window_ends_at]

    @property
    def rows(self) -> list[tuple[Experiment, str]]:
        """Each experiment with its scope in words, for the list."""
        return [(e, self.scope_names.get(e.pk, "")) for e in self.experiments]


def experiments_by_cycle(query: ExperimentQuery) -> list[CycleExperiments]:
    """Every cycle of the stream in flow order (or the query's one), each with its
    experiments (of the query's stages), newest window first. Three queries."""
    cycles = Cycle.objects.filter(value_stream=query.stream).order_by("order")
    if query.cycle_id is not None:
        cycles = cycles.filter(pk=query.cycle_id)
    listed = {cycle.pk: CycleExperiments(cycle) for cycle in cycles}
    experiments = list(query.experiments().order_by("-window_start", "-id"))
    names = experiment_scope_names(experiments)
    for experiment in experiments:
        entry = listed[experiment.cycle_id]
        entry.experiments.append(experiment)
        entry.scope_names[experiment.pk] = names[experiment.pk]
    return list(listed.values())


# Conversion from a cycle's last column has no next column: it is the share of the cards
# that left the cycle handed on (through its control point) or won
# (metrics.experiments.measure_conversion).
LAST_COLUMN_ONWARD = "handed on or won"


def experiment_scope_names(experiments: Iterable[Experiment]) -> dict[int, str]:
    """{experiment id: what it measures on, in words}: the column, and for a conversion
    the step it measures ("Information → Knowledge"; from the cycle's last column,
    "Wisdom → handed on or won"), the channel, or the cycle. The experiments carry their
    cycle, column and channel (``ExperimentQuery.experiments``); one query reads their
    cycles' columns when a conversion is among them."""
    experiments = list(experiments)
    conversion_cycles = {
        e.cycle_id for e in experiments if e.targeted_metric == TargetedMetric.CONVERSION
    }
    # Columns live in boards, which pdca does not import: through their cycles.
    columns: dict[int, list[tuple[int, str]]] = {}
    if conversion_cycles:
        rows = (
            Cycle.objects.filter(pk__in=conversion_cycles)
            .order_by("pk", "columns__order", "columns__pk")
            .values_list("pk", "columns__pk", "columns__name")
        )
        for cycle_id, column_id, name in rows:
            if column_id is not None:
                columns.setdefault(cycle_id, []).append((column_id, name))
    names: dict[int, str] = {}
    for experiment in experiments:
        scope = METRIC_SCOPE[experiment.targeted_metric]
        if scope == MetricScope.COLUMN and experiment.column is not None:
            names[experiment.pk] = experiment.column.name
            if experiment.targeted_metric == TargetedMetric.CONVERSION:
                onward = next_step_name(columns.get(experiment.cycle_id, []), experiment.column.pk)
                names[experiment.pk] += f" → {onward}"
        elif scope == MetricScope.CHANNEL and experiment.channel is not None:
            names[experiment.pk] = experiment.channel.name
        else:
            names[experiment.pk] = experiment.cycle.name
    return names


def next_step_name(columns: list[tuple[int, str]], column_id: int) -> str:
    """The column after ``column_id`` in its cycle's ``columns`` (in order), or
    LAST_COLUMN_ONWARD after the last one."""
    ids = [pk for pk, _ in columns]
    at = ids.index(column_id) if column_id in ids else len(ids) - 1
    return columns[at + 1][1] if at + 1 < len(columns) else LAST_COLUMN_ONWARD


@dataclass(frozen=True)
class ExperimentSteps:
    """The steps an experiment's page offers at a moment (to those who run it): the
    stage rules of pdca.services.experiments read ahead, so that the page offers no step
    the service would refuse for its stage or its dates."""

    # In Plan: the plan may be changed, or withdrawn (abandoned before it starts); it
    # starts in its window's first week.
    edit: bool = False
    withdraw: bool = False
    start: bool = False
    # In Plan, in its window's first week: the last day it can start.
    start_until: date | None = None
    # In Plan before its window: the day the start opens.
    start_opens_on: date | None = None
    # In Plan after its window's first week: it can no longer start (change the window).
    start_missed: bool = False
    stop: bool = False
    check: bool = False
    # In Do: abandoned without a Check (the Check cannot be taken yet, or finds too
    # little data); ``abandon_suggested`` once the Do is over.
    abandon: bool = False
    abandon_suggested: bool = False
    act: bool = False


def experiment_steps(experiment: Experiment, *, at: datetime | None = None) -> ExperimentSteps:
    """What can be done to ``experiment`` at ``at`` (default now). No query."""
    at = at or timezone.now()
    stage = experiment.stage
    if stage == ExperimentStage.PLAN:
        day = local_day(at)
        opens = experiment.window_start
        start = opens <= day < opens + START_WITHIN
        return ExperimentSteps(
            edit=True,
            withdraw=True,
            start=start,
            start_until=opens + START_WITHIN - timedelta(days=1) if start else None,
            start_opens_on=opens if day < opens else None,
            start_missed=day >= opens + START_WITHIN,
        )
    if stage == ExperimentStage.DO:
        check = experiment.check_ready(at)
        return ExperimentSteps(
            stop=experiment.is_running and at < experiment.window_ends_at,
            check=check,
            abandon=True,
            abandon_suggested=check,
        )
    if stage == ExperimentStage.CHECK:
        return ExperimentSteps(check=True, act=True)
    return ExperimentSteps()


def experiment_get(*, actor: Actor, experiment_id: int) -> Experiment:
    """One experiment, with its cycle, stream, team, scope and the experiment it follows
    up, if ``actor`` may see its stream. Its stream carries ``viewer_manages``.

    Raises: ExperimentNotFound (missing or out of reach, alike).
    """
    missing = ExperimentNotFound(data={"experiment_id": experiment_id})
    stream_id = (
        Experiment.objects.filter(pk=experiment_id)
        .values_list("cycle__value_stream_id", flat=True)
        .first()
    )
    if stream_id is None:
        raise missing
    try:
        stream = stream_access(actor=actor, stream_id=stream_id)
    except StreamNotFound:
        raise missing from None
    experiment = (
        Experiment.objects.select_related("cycle", "team", "column", "channel", "follow_up_of")
        .filter(pk=experiment_id)
        .first()
    )
    if experiment is None:
        raise missing
    experiment.cycle.value_stream = stream
    return experiment


def experiments_check_ready(
    query: ExperimentQuery, *, at: datetime | None = None
) -> list[Experiment]:
    """The experiments whose Check can be taken and is not yet: started, and stopped or
    with their window over at ``at`` (default now), oldest window first. For the weekly
    review and the digest. One query (the experiments in Do, few per stream)."""
    at = at or timezone.now()
    doing = query.experiments().filter(stage=ExperimentStage.DO).order_by("window_start", "id")
    return [experiment for experiment in doing if experiment.check_ready(at)]


def cycles_running(
    query: ExperimentQuery, *, at: datetime | None = None
) -> dict[int, tuple[int, ...]]:
    """{cycle id: the ids of the experiments running in it, oldest window first}, for the
    cycles with a running one (started, not stopped, its window not over at ``at``,
    default now): the board marks them, and links the only one directly. One query."""
    started = (
        query.experiments()
        .filter(stage=ExperimentStage.DO, stopped_at__isnull=True)
        .order_by("window_start", "id")
        .values_list("pk", "cycle_id", "window_start", "planned_weeks")
    )
    now = at or timezone.now()
    running: dict[int, tuple[int, ...]] = {}
    # Few rows (a stream's running experiments): the window's end is computed here,
    # where date arithmetic is the same on every database.
    for pk, cycle_id, window_start, planned_weeks in started:
        if now < Experiment(window_start=window_start, planned_weeks=planned_weeks).window_ends_at:
            running[cycle_id] = (*running.get(cycle_id, ()), pk)
    return running


def person_name(user_id: int | None) -> str:
    """Who took a step, by name, as the experiment's page names them: "the system" for
    no user (the system or an API token), "a former user" for one removed since. One
    query at most."""
    if user_id is None:
        return "the system"
    user = get_user_model().objects.filter(pk=user_id).first()
    return (user.get_full_name() or user.get_username()) if user else "a former user"
