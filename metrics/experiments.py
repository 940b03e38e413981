"""Measuring experiments: the baseline before the window, the Check over it, and whether
the change is a signal or noise.

``MEASURES`` maps each targeted metric (``pdca.models.TargetedMetric``) to the function
that measures it on the experiment's scope over a period of whole days, from the running
aggregates the metrics document reads (conversion alone reads the move log of its
column: see ``measure_conversion``), by the counting rules of docs/metrics.md: a card
counts once, by its final state; percentiles are nearest-rank; days and ISO weeks are
calendar days of settings.TIME_ZONE (UTC by default). Each returns a ``Measurement``:
the value over the period, the cards it rests on, and its value in each full week of the
period (a trailing partial week counts in the value, never as a weekly point).

``experiment_baseline_start`` and ``experiment_check`` measure and record through the
pdca services (pdca never imports metrics). The Check's verdict compares the Do's weekly
values with the natural process limits of the baseline's weekly values (XmR): see
``experiment_verdict``.

A period's measure does not change once the period is over: counts and intervals are
dated (conversion by the day a card left its column), so a Check taken again later, or
the baseline measured late, gives the same value.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import F, Sum
from django.utils import timezone

from boards.models import CardMove, Column, MoveKind
from metrics.fold.timeline import metrics_zone
from metrics.models import (
    ChannelDay,
    ColumnDay,
    CycleDay,
    DurationKind,
    FlowDuration,
)
from metrics.percentiles import percentile
from metrics.selectors.readmodel import XmR
from metrics.selectors.statistics import DAY, win_rate, xmr
from metrics.services import stream_metrics_advance
from pdca.models import (
    PERCENT_METRICS,
    Experiment,
    ExperimentStage,
    SignalRule,
    TargetedMetric,
)
from pdca.selectors import experiment_get
from pdca.services import (
    experiment_check_record,
    experiment_runner_check,
    experiment_start,
    experiment_version_check,
)
from vsm.actors import Actor
from vsm.models import ValueStream

# The metrics that count cards per week, for which a week of none is common.
COUNTED_METRICS = frozenset({TargetedMetric.THROUGHPUT, TargetedMetric.ARRIVALS})
# Wheeler's detection rules 2 and 3 (see experiment_verdict).
THREE_OF_FOUR = (3, 4)
RUN_LENGTH = 8


@dataclass(frozen=True)
class Scope:
    """What an experiment measures on: its stream and cycle, and the column or channel
    its metric needs (pdca.models.METRIC_SCOPE)."""

    stream: ValueStream
    cycle_id: int
    column_id: int | None = None
    channel_id: int | None = None

    @property
    def column(self) -> int:
        """The column of a column metric."""
        if self.column_id is None:
            raise ValueError("This metric is measured on a column; the scope names none.")
        return self.column_id

    @property
    def channel(self) -> int:
        """The channel of a channel metric."""
        if self.channel_id is None:
            raise ValueError("This metric is measured on a channel; the scope names none.")
        return self.channel_id

    @classmethod
    def of(cls, experiment: Experiment) -> Scope:
        return cls(
            stream=experiment.cycle.value_stream,
            cycle_id=experiment.cycle_id,
            column_id=experiment.column_id,
            channel_id=experiment.channel_id,
        )


@dataclass(frozen=True)
class Period:
    """Whole calendar days from ``first_day`` (a Monday) to ``last_day``, inclusive,
    in settings.TIME_ZONE. Its full weeks are its weekly points."""

    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return max(0, (self.last_day - self.first_day).days + 1)

    @property
    def full_weeks(self) -> int:
        return self.days // 7

    def starts_at(self) -> datetime:
        return datetime.combine(self.first_day, time.min, tzinfo=metrics_zone())

    def ends_at(self) -> datetime:
        """Midnight after the last day: the period's first instant past it."""
        return datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=metrics_zone())

    def dates(self) -> Iterable[date]:
        return (self.first_day + timedelta(days=n) for n in range(self.days))

    def week_of(self, day: date) -> int | None:
        """The index of the full week ``day`` falls in, None in a trailing partial week
        (or outside the period)."""
        index = (day - self.first_day).days // 7
        return index if 0 <= index < self.full_weeks and day <= self.last_day else None

    def week_of_moment(self, moment: datetime) -> int | None:
        return self.week_of(moment.astimezone(metrics_zone()).date())


@dataclass(frozen=True)
class Measurement:
    """A metric over a period: ``value`` (None when there was nothing to measure, such as
    a share of no cards), the number of ``cards`` it rests on, and its value in each
    full week (None for a week with nothing to measure)."""

    value: float | None
    cards: int
    weekly: list[float | None] = field(default_factory=list)


Measure = Callable[[Scope, Period], Measurement]
# What a refused step is given: the pdca service refuses it before it looks at numbers.
NOTHING = Measurement(value=None, cards=0, weekly=[])


def _share(part: int, whole: int) -> float | None:
    """part / whole in percent, None of nothing."""
    return 100 * part / whole if whole else None


def _rounded(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def measure_conversion(scope: Scope, period: Period) -> Measurement:
    """Conversion from the scope's column to the next step, in %: of the cards that left
    the column in the period, the share that moved on (to a later column of the cycle,
    handed on out of the cycle, or won) rather than back to an earlier column or lost.
    A card counts once, by the last time it left the column in the period (in a weekly
    value, by the last time in that week, so a week reads the same in any period);
    cards still in it are not counted yet. From the cycle's last column, moving on is
    leaving the cycle handed on or won. Rests on the cards that left; weekly by the
    week they left (docs/metrics.md, "Conversion of an experiment").

    Counted at the column's exit, as a pipeline's stage conversion is, rather than by
    the cohort that reached the column (the dashboard's funnel): a cohort is only
    complete once its last card has left, which on a column where prospects stay for
    weeks is after a window of a few weeks has ended, so the Check would measure the
    window's cards half-way. Exits are dated: the period's value does not change once it
    is over. Read from the move log (``boards.CardMove`` by its ``from_column`` index):
    the aggregates count departures, not where they went.
    """
    column = Column.objects.only("cycle_id", "order").get(pk=scope.column)
    departures = (
        CardMove.objects.filter(
            value_stream=scope.stream,
            from_column_id=column.pk,
            moved_at__gte=period.starts_at(),
            moved_at__lt=period.ends_at(),
        )
        .exclude(kind__in=(MoveKind.ENTER, MoveKind.REOPEN))
        .order_by("moved_at", "pk")
        .values_list("card_id", "moved_at", "kind", "to_column__cycle_id", "to_column__order")
    )
    last_exit: dict[int, bool] = {}
    last_exit_in_week: dict[tuple[int, int], bool] = {}
    for card, moved_at, kind, cycle_id, order in departures:
        onward = kind in (MoveKind.HANDOFF, MoveKind.WON) or (
            kind == MoveKind.MOVE and cycle_id == column.cycle_id and order > column.order
        )
        last_exit[card] = onward
        week = period.week_of_moment(moved_at)
        if week is not None:
            last_exit_in_week[(card, week)] = onward
    weekly_left, weekly_on = [0] * period.full_weeks, [0] * period.full_weeks
    for (_, week), onward in last_exit_in_week.items():
        weekly_left[week] += 1
        weekly_on[week] += onward
    moved_on = sum(last_exit.values())
    return Measurement(
        value=_share(moved_on, len(last_exit)),
        cards=len(last_exit),
        weekly=[_rounded(_share(on, of)) for on, of in zip(weekly_on, weekly_left, strict=True)],
    )


def _measure_durations(kind: DurationKind, p: int) -> Measure:
    def measure(scope: Scope, period: Period) -> Measurement:
        intervals = FlowDuration.objects.filter(
            value_stream=scope.stream,
            kind=kind,
            abandoned=False,
            ended_at__gte=period.starts_at(),
            ended_at__lt=period.ends_at(),
        )
        if kind == DurationKind.COLUMN:
            intervals = intervals.filter(column_id=scope.column)
        else:
            intervals = intervals.filter(cycle_id=scope.cycle_id)
        seconds: list[int] = []
        weekly: list[list[int]] = [[] for _ in range(period.full_weeks)]
        for ended_at, length in intervals.values_list("ended_at", "seconds"):
            seconds.append(length)
            week = period.week_of_moment(ended_at)
            if week is not None:
                weekly[week].append(length)
        return Measurement(
            value=_days_percentile(seconds, p),
            cards=len(seconds),
            weekly=[_rounded(_days_percentile(values, p)) for values in weekly],
        )

    name = "cycle time" if kind == DurationKind.CYCLE else "time in the column"
    measure.__doc__ = (
        f"The {p}th percentile {name}, in days (seconds / 86,400), nearest rank (the value "
        f"at rank ceil({p}/100 x n) of the n sorted intervals), of the intervals that "
        "ended in the period, abandoned (lost) passages left out (docs/metrics.md, "
        "'Intervals'). Rests on the intervals; weekly by the week they ended."
    )
    return measure


def _days_percentile(seconds: list[int], p: int) -> float | None:
    ranked = percentile(sorted(seconds), p)
    return ranked / DAY if ranked is not None else None


def _by_day(rows: Iterable[tuple[date, int]]) -> dict[date, int]:
    totals: dict[date, int] = defaultdict(int)
    for day, count in rows:
        totals[day] += count
    return totals


def _per_week(by_day: dict[date, int], period: Period) -> Measurement:
    """Counts per day as a rate per week: the total over the period's days x 7 / its
    days, and each full week's total. Rests on the counted cards."""
    total = sum(by_day.values())
    weekly: list[float | None] = [0.0] * period.full_weeks
    for day, count in by_day.items():
        week = period.week_of(day)
        if week is not None:
            weekly[week] = (weekly[week] or 0.0) + count
    value = total * 7 / period.days if period.days else None
    return Measurement(value=value, cards=total, weekly=weekly)


def measure_throughput(scope: Scope, period: Period) -> Measurement:
    """Throughput of the cycle, cards per week: its departures (handed on, won or lost,
    each card by its final close, on that day: docs/metrics.md, "Flow per column, cycle
    and channel") over the period's days x 7. Rests on the departures."""
    days = CycleDay.objects.filter(
        value_stream=scope.stream,
        cycle_id=scope.cycle_id,
        day__gte=period.first_day,
        day__lte=period.last_day,
    ).values_list("day", "departures")
    return _per_week(_by_day(days), period)


def measure_arrivals(scope: Scope, period: Period) -> Measurement:
    """Arrivals through the channel, cards per week: the stream's prospects whose enter
    event was of this channel, over the period's days x 7 (docs/metrics.md, "Channel
    arrivals"). Rests on the arrivals."""
    days = ChannelDay.objects.filter(
        value_stream=scope.stream,
        channel_key=scope.channel,
        day__gte=period.first_day,
        day__lte=period.last_day,
    ).values_list("day", "arrivals")
    return _per_week(_by_day(days), period)


def measure_win_rate(scope: Scope, period: Period) -> Measurement:
    """Win rate of the channel, in %: won / (won + lost) of the deals of its cards whose
    final close fell in the period (docs/metrics.md, "Channel Pareto"; the document's
    ``win_rate``). Rests on the closed deals; a week without a close has no value."""
    rows = ChannelDay.objects.filter(
        value_stream=scope.stream,
        channel_key=scope.channel,
        day__gte=period.first_day,
        day__lte=period.last_day,
    ).values_list("day", "won", "lost")
    won, lost = 0, 0
    weekly_won, weekly_lost = [0] * period.full_weeks, [0] * period.full_weeks
    for day, day_won, day_lost in rows:
        won += day_won
        lost += day_lost
        week = period.week_of(day)
        if week is not None:
            weekly_won[week] += day_won
            weekly_lost[week] += day_lost
    rate = win_rate(won, lost)
    return Measurement(
        value=rate * 100 if rate is not None else None,
        cards=won + lost,
        weekly=[
            _rounded(_share(week_won, week_won + week_lost))
            for week_won, week_lost in zip(weekly_won, weekly_lost, strict=True)
        ],
    )


def measure_wip(scope: Scope, period: Period) -> Measurement:
    """WIP of the column, cards (average per day): the mean of its end-of-day WIP over
    the period's days, WIP on day d being all its arrivals up to and including d minus
    all its departures (docs/metrics.md, "Average WIP"). Rests on the cards that were in
    it: its WIP when the period began plus its arrivals during it."""
    days = ColumnDay.objects.filter(value_stream=scope.stream, column_id=scope.column)
    before = days.filter(day__lt=period.first_day).aggregate(
        net=Sum(F("arrivals") - F("departures"))
    )["net"]
    wip = before or 0
    net: dict[date, int] = defaultdict(int)
    arrived = 0
    for day, arrivals, departures in days.filter(
        day__gte=period.first_day, day__lte=period.last_day
    ).values_list("day", "arrivals", "departures"):
        net[day] += arrivals - departures
        arrived += arrivals
    cards = wip + arrived
    end_of_day: list[int] = []
    weekly: list[list[int]] = [[] for _ in range(period.full_weeks)]
    for day in period.dates():
        wip += net.get(day, 0)
        end_of_day.append(wip)
        week = period.week_of(day)
        if week is not None:
            weekly[week].append(wip)
    return Measurement(
        value=statistics.fmean(end_of_day) if end_of_day else None,
        cards=cards,
        weekly=[_rounded(statistics.fmean(values)) for values in weekly],
    )


MEASURES: dict[str, Measure] = {
    TargetedMetric.CONVERSION: measure_conversion,
    TargetedMetric.CYCLE_TIME_P50: _measure_durations(DurationKind.CYCLE, 50),
    TargetedMetric.CYCLE_TIME_P85: _measure_durations(DurationKind.CYCLE, 85),
    TargetedMetric.TIME_IN_COLUMN_P50: _measure_durations(DurationKind.COLUMN, 50),
    TargetedMetric.TIME_IN_COLUMN_P85: _measure_durations(DurationKind.COLUMN, 85),
    TargetedMetric.THROUGHPUT: measure_throughput,
    TargetedMetric.WIP: measure_wip,
    TargetedMetric.ARRIVALS: measure_arrivals,
    TargetedMetric.WIN_RATE: measure_win_rate,
}


def experiment_measure(experiment: Experiment, period: Period) -> Measurement:
    """The experiment's metric on its scope over ``period`` (nothing for an empty one)."""
    if period.days == 0:
        return Measurement(value=None, cards=0, weekly=[])
    return MEASURES[experiment.targeted_metric](Scope.of(experiment), period)


def baseline_period(experiment: Experiment) -> Period:
    """The ``baseline_weeks`` full weeks before the window."""
    return Period(experiment.baseline_first_day, experiment.window_start - timedelta(days=1))


def check_period(experiment: Experiment) -> Period:
    """The Do: from the window's first day to its last, or to the day before an earlier
    stop."""
    return Period(experiment.window_start, experiment.measured_last_day)


@dataclass(frozen=True)
class Verdict:
    """The Check's judgement: the baseline's natural process limits, and the first
    detection rule that fired in the Do's weeks (NONE: routine variation, no signal),
    with the index of the Do's week at which it fired. ``rare``: the baseline counted
    nothing in most of its weeks, so its limits cannot judge (no rule is applied)."""

    limits: XmR
    rule: SignalRule = SignalRule.NONE
    week: int | None = None
    rare: bool = False

    @property
    def signal(self) -> bool:
        return self.rule != SignalRule.NONE


def experiment_limits(experiment: Experiment) -> XmR:
    """The natural process limits of the experiment's baseline weeks (none before it
    started): for the Check and for its chart."""
    return xmr(list(experiment.baseline_weekly), ceiling=_ceiling(experiment))


def _ceiling(experiment: Experiment) -> float | None:
    return 100.0 if experiment.targeted_metric in PERCENT_METRICS else None


def rare_counts(experiment: Experiment) -> bool:
    """Whether the experiment counts cards (throughput, arrivals) and its baseline
    counted none in more than half its weeks: limits drawn from such rare counts put
    the lower one at 0 and read routine zeros as signals (Wheeler's advice for rare
    events is to chart the time between them instead), so the Check makes no
    judgement."""
    if experiment.targeted_metric not in COUNTED_METRICS:
        return False
    weeks = [value for value in experiment.baseline_weekly if value is not None]
    return bool(weeks) and sum(value == 0 for value in weeks) * 2 > len(weeks)


def experiment_judged(experiment: Experiment, measured_weekly: Sequence[float | None]) -> Verdict:
    """``experiment_verdict`` for this experiment's baseline, its metric's bounds and
    its baseline's rarity."""
    limits = experiment_limits(experiment)
    if rare_counts(experiment):
        return Verdict(limits, rare=True)
    return experiment_verdict(limits, measured_weekly, ceiling=_ceiling(experiment))


def experiment_verdict(
    limits: XmR,
    measured_weekly: Sequence[float | None],
    *,
    ceiling: float | None = None,
    side: int = 0,
) -> Verdict:
    """Whether the Do's weekly values differ from the baseline: the natural process
    limits of the baseline's weeks (``limits``: ``metrics.selectors.statistics.xmr``,
    mean +/- 2.66 x the average moving range, the lower one clamped at 0 and a share's
    upper one at ``ceiling``) carried forward over the Do, and Wheeler's three detection
    rules applied to the Do's weeks (weeks without a value skipped), in this order:

    1. a week beyond a natural process limit (BEYOND_UPPER_LIMIT, BEYOND_LOWER_LIMIT);
    2. three of four successive weeks closer to the same limit than to the central line,
       beyond the line halfway between them (THREE_OF_FOUR_UPPER, _LOWER); not on a
       side whose limit is clamped at a bound the metric cannot pass (0, or a share's
       100): there the halfway line is an artefact of the clamp, and a week at the
       bound would read as a signal;
    3. eight successive weeks on the same side of the central line (RUN_OF_EIGHT_ABOVE,
       _BELOW); a week on the line breaks a run.

    Each rule fires at the earliest week that completes it; a higher rule wins over a
    lower one. ``side``: +1 looks for signals above the central line only, -1 below
    only, 0 both. A Do shorter than four (eight) weeks cannot fire rule 2 (3): with few
    points only a large change shows, as it should. Source: Donald J. Wheeler,
    *Understanding Variation: The Key to Managing Chaos* (2nd ed., 2000), the detection
    rules for process behaviour charts; the limits as in docs/metrics.md, "Variation
    (XmR)". No limits (a baseline of fewer than two weekly values): no signal.
    """
    if limits.mean is None or limits.upper is None or limits.lower is None:
        return Verdict(limits)
    mean, upper, lower = limits.mean, limits.upper, limits.lower
    looks_up, looks_down = side >= 0, side <= 0
    points = [(week, value) for week, value in enumerate(measured_weekly) if value is not None]
    for week, value in points:
        if looks_up and value > upper:
            return Verdict(limits, SignalRule.BEYOND_UPPER_LIMIT, week)
        if looks_down and value < lower:
            return Verdict(limits, SignalRule.BEYOND_LOWER_LIMIT, week)
    upper_half, lower_half = (mean + upper) / 2, (mean + lower) / 2
    upper_free = looks_up and (ceiling is None or upper < ceiling)
    lower_free = looks_down and lower > 0
    beyond, of = THREE_OF_FOUR
    for end in range(of, len(points) + 1):
        window = [value for _, value in points[end - of : end]]
        if upper_free and sum(value > upper_half for value in window) >= beyond:
            return Verdict(limits, SignalRule.THREE_OF_FOUR_UPPER, points[end - 1][0])
        if lower_free and sum(value < lower_half for value in window) >= beyond:
            return Verdict(limits, SignalRule.THREE_OF_FOUR_LOWER, points[end - 1][0])
    run_side, run = 0, 0
    for week, value in points:
        here = (value > mean) - (value < mean)
        run = run + 1 if here and here == run_side else (1 if here else 0)
        run_side = here
        if run == RUN_LENGTH and (side == 0 or side == run_side):
            rule = SignalRule.RUN_OF_EIGHT_ABOVE if run_side > 0 else SignalRule.RUN_OF_EIGHT_BELOW
            return Verdict(limits, rule, week)
    return Verdict(limits)


def _decimal(value: float | None) -> Decimal | None:
    # repr: the shortest decimal that is the float; pdca rounds it to the cent.
    return Decimal(repr(value)) if value is not None else None


def experiment_baseline_start(
    *,
    experiment_id: int,
    actor: Actor,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> Experiment:
    """Start an experiment with its baseline measured now: its metric over the
    ``baseline_weeks`` full weeks before its window (``baseline_period``), through
    ``pdca.services.experiment_start`` for the version measured. ``expected_version``:
    the version the caller saw (None: any), checked before anything is measured.

    Folds the stream's moves not folded yet first, so the baseline counts them.
    Raises: what experiment_start raises (ExperimentNotFound, PermissionRefused, Stale,
    ExperimentStarted, WindowNotOpen, WindowPassed, TooLittleData, TargetIsBaseline).
    Side effects: the fold's writes; experiment_start's.
    """
    experiment = _runnable(
        experiment_id=experiment_id, actor=actor, expected_version=expected_version
    )
    measured = NOTHING
    if experiment.stage == ExperimentStage.PLAN:  # else experiment_start refuses
        measured = _fresh_measure(experiment, baseline_period(experiment))
    return experiment_start(
        experiment_id=experiment.pk,
        actor=actor,
        baseline=_decimal(measured.value),
        baseline_cards=measured.cards,
        baseline_weekly=measured.weekly,
        expected_version=experiment.version,
        at=at,
    )


def experiment_check(
    *,
    experiment_id: int,
    actor: Actor,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> Experiment:
    """Take an experiment's Check: its metric over the Do (``check_period``), judged
    against the natural process limits of its baseline weeks (``experiment_verdict``),
    recorded through ``pdca.services.experiment_check_record`` for the version measured.
    Safe to run again until the Act (a later Check replaces an earlier one).
    ``expected_version``: the version the caller saw (None: any), checked before
    anything is measured.

    Folds the stream's moves not folded yet first, so the Check counts them.
    Raises: what experiment_check_record raises (ExperimentNotFound, PermissionRefused,
    Stale, CheckNotReady, ExperimentDecided, TooLittleData).
    Side effects: the fold's writes; experiment_check_record's.
    """
    experiment = _runnable(
        experiment_id=experiment_id, actor=actor, expected_version=expected_version
    )
    measured = NOTHING
    if experiment.check_ready(at or timezone.now()):  # else experiment_check_record refuses
        measured = _fresh_measure(experiment, check_period(experiment))
    verdict = experiment_judged(experiment, measured.weekly)
    return experiment_check_record(
        experiment_id=experiment.pk,
        actor=actor,
        measured_value=_decimal(measured.value),
        measured_cards=measured.cards,
        measured_weekly=measured.weekly,
        signal_rule=verdict.rule,
        expected_version=experiment.version,
        at=at,
    )


def _runnable(*, experiment_id: int, actor: Actor, expected_version: int | None) -> Experiment:
    """The experiment, if ``actor`` may run it and it is the version the caller saw.
    Raises: ExperimentNotFound, PermissionRefused, Stale (before anything is measured;
    the pdca service checks the version again under its row lock)."""
    experiment = experiment_get(actor=actor, experiment_id=experiment_id)
    experiment_runner_check(
        actor=actor, stream=experiment.cycle.value_stream, team_id=experiment.team_id
    )
    experiment_version_check(experiment, expected_version)
    return experiment


def _fresh_measure(experiment: Experiment, period: Period) -> Measurement:
    """The measure over ``period`` once the stream's aggregates hold every committed move
    (a fold of the moves not folded yet, as the worker's; nothing to do when it is up to
    date)."""
    stream_metrics_advance(stream_id=experiment.cycle.value_stream_id, summarize=False)
    return experiment_measure(experiment, period)
