"""What the experiment pages read: a stream's experiments, one experiment with its
Check in words and its chart, the teams whose experiments a viewer runs, and the
windows the dashboard marks. The reads of pdca.selectors, plus the measuring's limits
(metrics.experiments)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from django.contrib.auth import get_user_model
from django.utils import timezone

from metrics.charts import Chart, Window, experiment_chart
from metrics.experiments import Verdict, experiment_limits, experiment_verdict, rare_counts
from metrics.selectors.readmodel import XmR
from pdca.errors import ExperimentNotFound
from pdca.models import METRIC_UNIT, PERCENT_METRICS, Experiment, ExperimentStage, SignalRule
from pdca.selectors import ExperimentQuery, experiment_get, experiment_runner
from vsm.actors import Actor
from vsm.models import Team, ValueStream

# The stages whose window the dashboard marks, of the experiments that started: running,
# measured, or decided (a decided experiment's window stays part of the stream's story).
MARKED_STAGES = (ExperimentStage.DO, ExperimentStage.CHECK, ExperimentStage.ACT)


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
    verdict: CheckVerdict
    aim: str
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
        aim=experiment_aim(experiment, limits),
        people=_people(experiment),
        chart=experiment_chart(experiment, limits),
    )


class VerdictTone(StrEnum):
    """How the Check reads, for its styling: a signal the way the target aims, a signal
    the other way, or routine variation."""

    BETTER = "better"
    WORSE = "worse"
    NOISE = "noise"


@dataclass(frozen=True)
class CheckVerdict:
    """The Check in words (``text``, empty before a Check) and its ``tone``."""

    text: str = ""
    tone: VerdictTone = VerdictTone.NOISE


# The rules that fire above the central line; the others fire below it.
UPWARD_RULES = frozenset(
    {SignalRule.BEYOND_UPPER_LIMIT, SignalRule.THREE_OF_FOUR_UPPER, SignalRule.RUN_OF_EIGHT_ABOVE}
)


def check_verdict(experiment: Experiment, limits: XmR) -> CheckVerdict:
    """The Check in a few sentences: signal or noise and the rule that fired; for a
    signal, whether the change went the way the target aims (the target above the
    baseline aims up, below it down: the direction of the rule that fired), or both
    ways (the window was unstable); too few to judge for rare counts
    (``metrics.experiments.rare_counts``); the measured value against the baseline
    and the target."""
    if experiment.stage not in (ExperimentStage.CHECK, ExperimentStage.ACT):
        return CheckVerdict()
    if experiment.measured_value is None or experiment.baseline is None:
        return CheckVerdict()
    unit = METRIC_UNIT[experiment.targeted_metric]
    measured, baseline, target = (
        experiment.measured_value,
        experiment.baseline,
        experiment.target,
    )
    bounds = (
        f" (natural process limits {limits.lower:g} to {limits.upper:g} {unit})"
        if limits.lower is not None and limits.upper is not None
        else ""
    )
    aims_up = target > baseline
    reached = measured >= target if aims_up else measured <= target
    figures = (
        f"Measured {_amount(measured, unit)} against a baseline of {_amount(baseline, unit)}; "
        f"the target of {_amount(target, unit)} is {'reached' if reached else 'not reached'}."
    )
    if rare_counts(experiment):
        return CheckVerdict(
            "Too few to judge: in most of the baseline's weeks nothing was counted, and "
            "natural process limits drawn from such rare counts read routine quiet weeks "
            f"as signals. {figures} Judge it over a longer window, or on a busier step.",
            VerdictTone.NOISE,
        )
    ceiling = 100.0 if experiment.targeted_metric in PERCENT_METRICS else None
    weekly = list(experiment.measured_weekly)
    up = experiment_verdict(limits, weekly, ceiling=ceiling, side=1)
    down = experiment_verdict(limits, weekly, ceiling=ceiling, side=-1)
    if up.signal and down.signal:
        return CheckVerdict(
            f"Signals both ways{bounds}: {_rule_at(up, experiment)}, and "
            f"{_rule_at(down, experiment)}. The window was unstable rather than shifted "
            f"one way: look at what changed in those weeks before deciding. {figures}",
            VerdictTone.WORSE,
        )
    if not experiment.signal:
        return CheckVerdict(
            f"Noise: no detection rule fired against the baseline{bounds}. The difference is "
            f"routine variation, not a signal. {figures}",
            VerdictTone.NOISE,
        )
    rule = SignalRule(experiment.signal_rule)
    went_up = rule in UPWARD_RULES
    wording = f"{rule.label[0].lower()}{rule.label[1:]}"
    if went_up == aims_up:
        return CheckVerdict(
            f"Signal, the way you aimed: {wording}{bounds}. The change is real: the metric "
            f"went {'up' if went_up else 'down'}, as the target asks. {figures}",
            VerdictTone.BETTER,
        )
    return CheckVerdict(
        f"Signal, the wrong way: {wording}{bounds}. The change is real, but the metric went "
        f"{'up' if went_up else 'down'} while the target asks for it to go "
        f"{'up' if aims_up else 'down'}. {figures}",
        VerdictTone.WORSE,
    )


def _rule_at(verdict: Verdict, experiment: Experiment) -> str:
    """ "a week above the upper natural process limit (week of Mon 12 Oct 2026)"."""
    label = SignalRule(verdict.rule).label
    week = experiment.window_start + timedelta(weeks=verdict.week or 0)
    return f"{label[0].lower()}{label[1:]} (week of {week:%a %-d %b %Y})"


def experiment_aim(experiment: Experiment, limits: XmR) -> str:
    """Once started, which way the experiment aims, in words, and whether its baseline
    leaves room for a signal: "Aims up: the target, 40 %, is above the baseline, 31.71
    %." Empty before the start."""
    if experiment.baseline is None:
        return ""
    unit = METRIC_UNIT[experiment.targeted_metric]
    aims_up = experiment.target > experiment.baseline
    aim = (
        f"Aims {'up' if aims_up else 'down'}: the target, {_amount(experiment.target, unit)}, "
        f"is {'above' if aims_up else 'below'} the baseline, "
        f"{_amount(experiment.baseline, unit)}."
    )
    ceiling = 100.0 if experiment.targeted_metric in PERCENT_METRICS else None
    if rare_counts(experiment):
        aim += (
            " The baseline counted nothing in most weeks: the Check will say if there is "
            "too little to judge."
        )
    elif (
        limits.lower is not None
        and limits.upper is not None
        and limits.lower <= 0
        and (limits.upper >= ceiling if ceiling is not None else False)
    ):
        aim += (
            f" The baseline's weeks vary so much that its limits span {limits.lower:g} to "
            f"{limits.upper:g} {unit}: no single week can be a signal, only a run of weeks."
        )
    return aim


def _amount(value: Decimal, unit: str) -> str:
    """As the page gives amounts: "45.95 %", "2.5 days"."""
    return f"{value.normalize():f} {unit}"


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
        .filter(started_at__isnull=False)
        .order_by("window_start", "id")
    )
    return [experiment_window(experiment) for experiment in rows]


def experiment_window(experiment: Experiment) -> Window:
    """The experiment's window as the dashboard marks it: its first day to its last, or
    to the last day measured if it stopped early, named by its hypothesis."""
    label = f"Experiment: {experiment.hypothesis[:40]}" + (
        "…" if len(experiment.hypothesis) > 40 else ""
    )
    last_day = (
        experiment.measured_last_day
        if experiment.stopped_at is not None
        else experiment.window_last_day
    )
    return Window(label=label, first_day=experiment.window_start, last_day=last_day)


# How long after its window ends (or its stop) the system keeps trying an experiment's
# Check: after that, one with too little data waits for its team (the review lists it).
AUTOMATIC_CHECK_DAYS = 14


def experiments_due_for_check(at: datetime | None = None) -> list[int]:
    """The ids of every stream's experiments whose Check the system takes on its own:
    in Do (not checked yet), whose window ended or that stopped within the last
    ``AUTOMATIC_CHECK_DAYS`` days before ``at`` (default now), oldest window first. One
    query (the experiments in Do: a few per stream)."""
    now = at or timezone.now()
    since = now - timedelta(days=AUTOMATIC_CHECK_DAYS)
    doing = Experiment.objects.filter(stage=ExperimentStage.DO).order_by("window_start", "id")
    due = []
    for experiment in doing.only("pk", "stage", "window_start", "planned_weeks", "stopped_at"):
        ended = experiment.stopped_at or experiment.window_ends_at
        if experiment.check_ready(now) and ended >= since:
            due.append(experiment.pk)
    return due
