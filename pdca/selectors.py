"""Reads of a stream's experiments, scoped to what the actor may see.

``experiment_get`` answers by id through ``vsm.access`` (not found for both missing and
forbidden). The others take an ``ExperimentQuery`` whose stream the caller has read
through ``vsm.access`` already (the page's own stream), as the metrics selectors take
their ``MetricsQuery``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from pdca.errors import ExperimentNotFound
from pdca.models import Cycle, Experiment, ExperimentStage
from vsm.access import StreamNotFound, actor_steers, stream_access
from vsm.actors import Actor, UserActor
from vsm.models import Membership, Role, ValueStream

# Who runs (plans, starts, stops, checks, decides) a team's experiments besides those
# who steer the stream (admins, the system, the value stream manager): its leaders and
# coordinators. Members see them.
RUNNER_ROLES = (Role.TEAM_LEADER, Role.TEAM_COORDINATOR, Role.VALUE_STREAM_MANAGER)


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
    """One cycle of the stream with its experiments, newest window first."""

    cycle: Cycle
    experiments: list[Experiment] = field(default_factory=list)

    @property
    def running(self) -> list[Experiment]:
        return [experiment for experiment in self.experiments if experiment.is_running]


def experiments_by_cycle(query: ExperimentQuery) -> list[CycleExperiments]:
    """Every cycle of the stream in flow order (or the query's one), each with its
    experiments (of the query's stages), newest window first. Two queries."""
    cycles = Cycle.objects.filter(value_stream=query.stream).order_by("order")
    if query.cycle_id is not None:
        cycles = cycles.filter(pk=query.cycle_id)
    listed = {cycle.pk: CycleExperiments(cycle) for cycle in cycles}
    for experiment in query.experiments().order_by("-window_start", "-id"):
        listed[experiment.cycle_id].experiments.append(experiment)
    return list(listed.values())


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


def cycles_running(query: ExperimentQuery, *, at: datetime | None = None) -> dict[int, int]:
    """{cycle id: how many experiments run in it}, for the cycles with a running one
    (started, not stopped, its window not over at ``at``, default now): the board marks
    them. One query."""
    started = (
        query.experiments()
        .filter(stage=ExperimentStage.DO, stopped_at__isnull=True)
        .order_by()
        .values_list("cycle_id", "window_start", "planned_weeks")
    )
    now = at or timezone.now()
    running: Counter[int] = Counter()
    # Few rows (a stream's running experiments): the window's end is computed here,
    # where date arithmetic is the same on every database.
    for cycle_id, window_start, planned_weeks in started:
        if now < Experiment(window_start=window_start, planned_weeks=planned_weeks).window_ends_at:
            running[cycle_id] += 1
    return dict(running)
