"""What the experiment pages read: a stream's experiments, one experiment with its
Check in words and its chart, the teams whose experiments a viewer runs, and the
windows the dashboard marks. The reads of pdca.selectors, plus the measuring's limits
(metrics.experiments)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.utils import timezone

from metrics.charts import Chart, Window, experiment_chart
from metrics.experiments import experiment_limits
from metrics.selectors.readmodel import XmR
from pdca.errors import ExperimentNotFound
from pdca.models import METRIC_UNIT, Experiment, ExperimentStage, SignalRule
from pdca.selectors import ExperimentQuery, experiment_get, experiment_runner
from vsm.actors import Actor
from vsm.models import Team, ValueStream

# The stages whose window the dashboard marks: running, or measured and not yet decided.
MARKED_STAGES = (ExperimentStage.DO, ExperimentStage.CHECK)


def experiment_teams_run_by(*, actor: Actor, stream: ValueStream) -> list[Team]:
    """The stream's teams whose experiments ``actor`` may plan and run (one query per
    team: a stream has a handful)."""
    teams = Team.objects.filter(value_stream=stream).order_by("name")
    return [
        team for team in teams if experiment_runner(actor=actor, stream=stream, team_id=team.pk)
    ]


@dataclass(frozen=True)
class ExperimentPage:
    """One experiment as its page shows it: who may run it, whether its Check is due,
    the baseline's limits, the Check in words, the people of each step and the chart."""

    experiment: Experiment
    can_run: bool
    check_ready: bool
    window_over: bool
    unit: str
    limits: XmR
    verdict: str
    people: dict[str, str]
    chart: Chart


def experiment_in_stream(*, actor: Actor, stream: ValueStream, experiment_id: int) -> Experiment:
    """Raises: ExperimentNotFound (missing, out of reach, or of another stream)."""
    experiment = experiment_get(actor=actor, experiment_id=experiment_id)
    if experiment.cycle.value_stream.pk != stream.pk:
        raise ExperimentNotFound(data={"experiment_id": experiment_id})
    return experiment


def experiment_page_get(
    *, actor: Actor, stream: ValueStream, experiment_id: int, at: datetime | None = None
) -> ExperimentPage:
    """Raises: ExperimentNotFound (missing, out of reach, or of another stream)."""
    experiment = experiment_in_stream(actor=actor, stream=stream, experiment_id=experiment_id)
    limits = experiment_limits(experiment)
    now = at or timezone.now()
    return ExperimentPage(
        experiment=experiment,
        can_run=experiment_runner(actor=actor, stream=stream, team_id=experiment.team_id),
        check_ready=experiment.check_ready(now),
        window_over=now >= experiment.window_ends_at,
        unit=METRIC_UNIT[experiment.targeted_metric],
        limits=limits,
        verdict=check_verdict(experiment, limits),
        people=_people(experiment),
        chart=experiment_chart(experiment, limits),
    )


def check_verdict(experiment: Experiment, limits: XmR) -> str:
    """The Check in one sentence: signal or noise, and the rule that fired."""
    if experiment.stage not in (ExperimentStage.CHECK, ExperimentStage.ACT):
        return ""
    bounds = (
        f" (natural process limits {limits.lower:g} to {limits.upper:g})"
        if limits.lower is not None and limits.upper is not None
        else ""
    )
    if experiment.signal:
        rule = SignalRule(experiment.signal_rule).label
        return f"Signal: {rule[0].lower()}{rule[1:]}{bounds}. The change is real, not noise."
    return (
        f"Noise: no detection rule fired against the baseline{bounds}. The difference is "
        "routine variation, not a signal."
    )


def _people(experiment: Experiment) -> dict[str, str]:
    """Who planned, started, stopped and decided, by name (one query; a user removed
    since is 'a former user')."""
    ids = {
        "planned": experiment.created_by_id,
        "started": experiment.started_by_id,
        "stopped": experiment.stopped_by_id,
        "decided": experiment.decided_by_id,
    }
    users = get_user_model().objects.in_bulk([pk for pk in ids.values() if pk is not None])
    names: dict[str, str] = {}
    for step, pk in ids.items():
        if pk is None:
            names[step] = "the system" if step != "planned" else ""
            continue
        user = users.get(pk)
        names[step] = (user.get_full_name() or user.get_username()) if user else "a former user"
    return names


def experiment_windows(stream: ValueStream) -> list[Window]:
    """The windows of the stream's running and checked experiments, for the dashboard's
    charts with a time axis. One query."""
    rows = (
        ExperimentQuery(stream=stream, stages=MARKED_STAGES)
        .experiments()
        .order_by("window_start", "id")
    )
    return [
        Window(
            label=f"Experiment: {experiment.hypothesis[:40]}"
            + ("…" if len(experiment.hypothesis) > 40 else ""),
            first_day=experiment.window_start,
            last_day=experiment.measured_last_day
            if experiment.stopped_at is not None
            else experiment.window_last_day,
        )
        for experiment in rows
    ]
