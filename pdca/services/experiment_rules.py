"""What an experiment's plan and numbers must be, who runs it, and how each of its
services locks, checks and records: the rules the stage services of
``pdca.services.experiments`` share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import timezone

from pdca.errors import (
    ExperimentNotFound,
    ScopeInvalid,
    TooLittleData,
    WindowPassed,
)
from pdca.models import (
    BASELINE_MIN_WEEKS,
    METRIC_SCOPE,
    MIN_CHECK_CARDS,
    PLANNED_WEEKS_MAX,
    SAMPLED_METRICS,
    START_WITHIN,
    Cycle,
    Experiment,
    MetricScope,
    TargetedMetric,
    day_text,
    local_day,
)
from pdca.selectors import experiment_runner
from vsm.access import StreamNotFound, stream_access
from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.errors import DataValue, InvalidInput, PermissionRefused, Stale
from vsm.events import StreamChange, stream_changed
from vsm.models import Channel, ValueStream
from vsm.services import NotInStream

# As the board's clock (boards.services.clock, which pdca does not import): no CRM
# history is older, and a time further ahead than the clock skew is a wrong date.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)
# How far ahead a window may be planned: a team plans its next improvements, not a
# year's (and a far date would overflow the window's arithmetic).
PLAN_AHEAD_MAX = timedelta(weeks=26)
# Targets and measured values fit the columns (12 digits, 2 decimals).
VALUE_MAX = Decimal("9999999999.99")
CENTS = Decimal("0.01")


def step_time(at: datetime | None) -> datetime:
    """The time to record a step at: now, or ``at``. Raises: InvalidInput."""
    now = timezone.now()
    if at is None:
        return now
    if timezone.is_naive(at):
        raise InvalidInput("A step's time needs its time zone.", field="at")
    if not EARLIEST_TIME <= at <= now + CLOCK_SKEW:
        raise InvalidInput(
            f"A step is dated from {day_text(EARLIEST_TIME.date())} to now, not in the future.",
            field="at",
        )
    return at


def next_monday(at: datetime) -> date:
    """The Monday after ``at``'s day (settings.TIME_ZONE)."""
    day = local_day(at)
    return day + timedelta(days=7 - day.weekday())


def follow_up_window_start(at: datetime) -> date:
    """A follow-up's window: the Monday after the decision, and never one already begun
    (a decision dated in the past, by an import or the demo's history, still plans a
    window the team can start): the next Monday from now at the earliest."""
    return max(next_monday(at), next_monday(timezone.now()))


def metric_check(metric: str) -> TargetedMetric:
    if metric not in TargetedMetric.values:
        raise InvalidInput(
            "Choose the metric the experiment targets.",
            field="targeted_metric",
        )
    return TargetedMetric(metric)


def weeks_check(weeks: int) -> int:
    if not 1 <= weeks <= PLANNED_WEEKS_MAX:
        raise InvalidInput(
            f"An experiment runs for 1 to {PLANNED_WEEKS_MAX} whole weeks.",
            data={"planned_weeks": weeks},
            field="planned_weeks",
        )
    return weeks


def window_start_check(window_start: date, *, at: datetime) -> date:
    """Raises: InvalidInput (not a Monday, or more than PLAN_AHEAD_MAX ahead of ``at``),
    WindowPassed (its first week is over at ``at``: the experiment could never start)."""
    if window_start.weekday() != 0:
        raise InvalidInput(
            "An experiment's window starts on a Monday: it runs in whole ISO weeks.",
            field="window_start",
        )
    latest = local_day(at) + PLAN_AHEAD_MAX
    if window_start > latest:
        raise InvalidInput(
            f"Plan a window that starts within {PLAN_AHEAD_MAX.days // 7} weeks, by "
            f"{day_text(latest)}.",
            field="window_start",
        )
    if local_day(at) >= window_start + START_WITHIN:
        raise WindowPassed(
            f"The first week of a window from {day_text(window_start)} is over: an experiment "
            "starts in its window's first week. Plan a later window.",
            field="window_start",
        )
    return window_start


def amount_check(value: Decimal, *, field: str, percent: bool) -> Decimal:
    """``value`` to the cent. Raises: InvalidInput (not a number, negative, above 100 for
    a share, too large)."""
    try:
        cents = Decimal(value).quantize(CENTS, rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidInput("That is not a number.", field=field) from None
    if not cents.is_finite() or cents < 0:
        raise InvalidInput("A value is a number of 0 or more.", field=field)
    if percent and cents > 100:
        raise InvalidInput("A share is at most 100%.", data={field: cents}, field=field)
    if cents > VALUE_MAX:
        raise InvalidInput("That number is too large.", field=field)
    return cents


def weekly_check(values: Sequence[float | None], *, weeks: int, field: str) -> list[float | None]:
    """The weekly values as stored (JSON numbers, None for a week with nothing to
    measure). Raises: InvalidInput (not one value per week, a negative or not a number)."""
    if len(values) != weeks:
        raise InvalidInput(
            f"One value per full week is expected: {weeks}, not {len(values)}.",
            data={"weeks": weeks, "values": len(values)},
            field=field,
        )
    checked: list[float | None] = []
    for value in values:
        if value is None:
            checked.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise InvalidInput("A weekly value is a number, or empty.", field=field)
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise InvalidInput("A weekly value is a number of 0 or more.", field=field)
        checked.append(number)
    return checked


def enough_data_check(
    experiment: Experiment,
    *,
    value: Decimal | None,
    cards: int,
    weekly: list[float | None],
    min_weeks: int,
    what: str,
    field: str,
    advice: str = "",
) -> None:
    """Raises: TooLittleData when the measure has no value, fewer than ``min_weeks``
    weeks with a value, or (a share or a percentile) fewer than MIN_CHECK_CARDS cards.
    ``advice`` ends each message: what the caller can do about it."""
    data = {"experiment_id": experiment.pk, "cards": cards}
    then = f" {advice}" if advice else ""
    if value is None:
        raise TooLittleData(
            f"The {what} has nothing to measure: no card counts in it. Nothing was recorded.{then}",
            data=data,
            field=field,
        )
    weeks_with_value = sum(point is not None for point in weekly)
    if weeks_with_value < min_weeks:
        raise TooLittleData(
            f"The {what} has {weeks_with_value} full weeks with a value; it needs at least "
            f"{min_weeks}"
            + (" to draw natural process limits." if min_weeks > 1 else ".")
            + f" Nothing was recorded.{then}",
            data={**data, "weeks_with_value": weeks_with_value, "min_weeks": min_weeks},
            field=field,
        )
    if experiment.targeted_metric in SAMPLED_METRICS and cards < MIN_CHECK_CARDS:
        raise TooLittleData(
            f"The {what} rests on {cards} cards; a share or a percentile needs at least "
            f"{MIN_CHECK_CARDS} to mean anything. Nothing was recorded.{then}",
            data={**data, "min_cards": MIN_CHECK_CARDS},
            field=field,
        )


# What a team can do about a baseline with too little data, by what the metric is
# measured on: a longer window (the baseline grows with it) or a busier scope.
_BUSIER = {
    MetricScope.COLUMN: "target a busier column",
    MetricScope.CHANNEL: "target a busier channel",
    MetricScope.CYCLE: "target a busier cycle or another metric",
}


def baseline_advice(experiment: Experiment) -> str:
    """What to do when the baseline has too little data: change the plan."""
    return (
        "To start it, change the plan: lengthen the window: the baseline grows with it "
        f"(as many full weeks before the window as the window has, {BASELINE_MIN_WEEKS} at "
        f"least), or {_BUSIER[METRIC_SCOPE[experiment.targeted_metric]]}."
    )


def amount_text(value: Decimal, unit: str) -> str:
    """An amount as the pages give it (``floatformat:"-2"``): "23.68 %", "40 %"."""
    number = f"{value:.0f}" if value == value.to_integral_value() else f"{value:.2f}"
    return f"{number} {unit}"


def scope_check(
    stream: ValueStream,
    *,
    cycle_id: int,
    metric: TargetedMetric,
    column_id: int | None,
    channel_id: int | None,
) -> None:
    """Raises: ScopeInvalid (a scope the metric does not take, or lacks; a column of
    another cycle), NotInStream (a column or channel of another stream)."""
    scope = METRIC_SCOPE[metric]
    if (column_id is not None) != (scope == MetricScope.COLUMN):
        raise ScopeInvalid(
            f"{metric.label} needs a column of the cycle."
            if column_id is None
            else f"{metric.label} is not measured on a column: leave the column empty.",
            field="column",
        )
    if (channel_id is not None) != (scope == MetricScope.CHANNEL):
        raise ScopeInvalid(
            f"{metric.label} needs a channel."
            if channel_id is None
            else f"{metric.label} is not measured on a channel: leave the channel empty.",
            field="channel",
        )
    if column_id is not None:
        # Columns live in boards, which pdca does not import: through the reverse
        # relation of their cycle.
        column_cycle_id = (
            Cycle.objects.filter(value_stream=stream, columns__pk=column_id)
            .values_list("pk", flat=True)
            .first()
        )
        if column_cycle_id is None:
            raise NotInStream(
                "That column is not one of this value stream's columns.",
                data={"column_id": column_id, "stream_id": stream.pk},
                field="column",
            )
        if column_cycle_id != cycle_id:
            raise ScopeInvalid(
                "That column is in another cycle: an experiment measures a column of its "
                "own cycle.",
                data={"column_id": column_id, "cycle_id": cycle_id},
                field="column",
            )
    if (
        channel_id is not None
        and not Channel.objects.filter(pk=channel_id, value_stream=stream).exists()
    ):
        raise NotInStream(
            "That channel is not one of this value stream's channels.",
            data={"channel_id": channel_id, "stream_id": stream.pk},
            field="channel",
        )


def experiment_runner_check(*, actor: Actor, stream: ValueStream, team_id: int | None) -> None:
    """Raises: PermissionRefused unless ``actor`` runs the team's experiments (see
    ``pdca.selectors.experiment_runner``)."""
    if not experiment_runner(actor=actor, stream=stream, team_id=team_id):
        raise PermissionRefused(
            "Only the team's leaders and coordinators, the value stream manager or an admin "
            "may run its experiments.",
            data={"stream_id": stream.pk, "team_id": team_id},
        )


def experiment_locked(
    *, experiment_id: int, actor: Actor, expected_version: int | None
) -> tuple[Experiment, ValueStream]:
    """The experiment, locked, if ``actor`` may see its stream and run its team's
    experiments, at the version the caller saw.

    Locks: the experiment row (no key: follow-ups may reference it meanwhile).
    Raises: ExperimentNotFound (missing or out of reach, alike), PermissionRefused, Stale.
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
        Experiment.objects.select_for_update(no_key=True, of=("self",))
        .select_related("cycle")
        .filter(pk=experiment_id)
        .first()
    )
    if experiment is None:
        raise missing
    experiment_runner_check(actor=actor, stream=stream, team_id=experiment.team_id)
    experiment_version_check(experiment, expected_version)
    return experiment, stream


def experiment_version_check(experiment: Experiment, expected_version: int | None) -> None:
    """Raises: Stale when the caller saw another version of ``experiment`` than it has
    (None: the caller names none). Under the row lock in every service; the pages also
    check it before measuring (metrics.experiments measures for the version it reads)."""
    if expected_version is not None and experiment.version != expected_version:
        raise Stale(data={"experiment_id": experiment.pk, "version": experiment.version})


def experiment_record(
    *,
    actor: Actor,
    action: str,
    experiment: Experiment,
    stream_id: int,
    data: dict[str, DataValue] | None = None,
) -> None:
    stream_changed(stream_id, StreamChange.SETTINGS)
    audit_record(
        actor=actor,
        action=action,
        stream_id=stream_id,
        target_type="experiment",
        target_id=experiment.pk,
        data={"cycle_id": experiment.cycle_id, "version": experiment.version, **(data or {})},
    )


def plan_data(experiment: Experiment) -> dict[str, DataValue]:
    return {
        "team_id": experiment.team_id,
        "column_id": experiment.column_id,
        "channel_id": experiment.channel_id,
        "planned_weeks": experiment.planned_weeks,
        "target": experiment.target,
        "follow_up_of_id": experiment.follow_up_of_id,
    }
