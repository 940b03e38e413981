"""PDCA cycles of a value stream, the control points between them, and experiments."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThan, LessThanOrEqual
from django.utils import timezone
from django.utils.dateformat import format as date_format

from vsm.models import Channel, Team, ValueStream


class Cycle(models.Model):
    """One PDCA loop of a stream: Collaboration, Sales/Buying, Repeat/Upsell by default."""

    value_stream = models.ForeignKey(ValueStream, on_delete=models.CASCADE, related_name="cycles")
    name = models.CharField(max_length=120)
    order = models.PositiveSmallIntegerField()
    owning_team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_cycles"
    )

    class Meta:
        ordering = ["value_stream", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["value_stream", "order"], name="pdca_cycle_unique_order_per_stream"
            ),
            models.UniqueConstraint(
                fields=["value_stream", "name"], name="pdca_cycle_unique_name_per_stream"
            ),
            models.CheckConstraint(
                condition=~Q(name=""),
                name="pdca_cycle_name_not_blank",
                violation_error_message="A cycle needs a name.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.value_stream}: {self.name}"


class ControlPoint(models.Model):
    """The gate between one cycle and the next; passing it is a handoff."""

    from_cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="outgoing_control_points"
    )
    to_cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="incoming_control_points"
    )
    name = models.CharField(max_length=120, blank=True)
    receiving_team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="receiving_control_points",
        help_text="The team a card belongs to after the handoff. Empty: the next cycle's team.",
    )

    class Meta:
        ordering = ["from_cycle__value_stream", "from_cycle__order"]
        constraints = [
            models.UniqueConstraint(
                fields=["from_cycle", "to_cycle"], name="pdca_controlpoint_unique_cycle_pair"
            ),
            models.CheckConstraint(
                condition=~Q(from_cycle=F("to_cycle")),
                name="pdca_controlpoint_distinct_cycles",
                violation_error_message="A control point leads from one cycle to another.",
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"{self.from_cycle.name} -> {self.to_cycle.name}"


class Criterion(models.Model):
    """One item of a control point's checklist."""

    control_point = models.ForeignKey(
        ControlPoint, on_delete=models.CASCADE, related_name="criteria"
    )
    text = models.CharField(max_length=300)
    required = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["control_point", "order", "id"]
        verbose_name_plural = "criteria"
        constraints = [
            models.CheckConstraint(
                condition=~Q(text=""),
                name="pdca_criterion_text_not_blank",
                violation_error_message="A criterion cannot be empty.",
            ),
        ]

    def __str__(self) -> str:
        return self.text


# Experiments: a team's PDCA iteration on its cycle. Written by pdca.services only; the
# numbers they hold (the baseline, the Check) are measured by metrics.experiments, never
# typed.

# The longest Do an experiment may plan: half a year of weekly points is plenty to see
# a change; a longer window mixes the change with everything else that happens.
PLANNED_WEEKS_MAX = 26
# The baseline rests on the same number of full weeks before the window as the window
# has, and on at least this many: natural process limits computed from fewer values are
# too soft to tell a signal from noise (Wheeler, Understanding Variation: "useful limits
# may be found with as few as five or six values").
BASELINE_MIN_WEEKS = 6
HYPOTHESIS_MAX_LENGTH = 2000
DECISION_NOTES_MAX_LENGTH = 2000
# An experiment starts in its window's first week: a later start would count days before
# the change as part of the Do; an earlier one would measure a baseline whose last week
# is not over yet.
START_WITHIN = timedelta(days=7)

# A day as every page and refusal gives it, "Mon 7 Dec 2026" (the templates' date filter
# takes the same format: ``|date:"D j M Y"``).
DAY_FORMAT = "D j M Y"


def day_text(day: date) -> str:
    """``day`` in words as the pages give it: "Mon 7 Dec 2026" (DAY_FORMAT)."""
    return date_format(day, DAY_FORMAT)


def local_day(at: datetime) -> date:
    """The calendar day of ``at`` in settings.TIME_ZONE, as the metrics count days."""
    return at.astimezone(timezone.get_default_timezone()).date()


class ExperimentStage(models.TextChoices):
    PLAN = "plan", "Plan"
    DO = "do", "Do"
    CHECK = "check", "Check"
    ACT = "act", "Act"


class ExperimentDecision(models.TextChoices):
    UNDECIDED = "", "Not decided"
    ADOPT = "adopt", "Adopt"
    ADAPT = "adapt", "Adapt"
    ABANDON = "abandon", "Abandon"


class TargetedMetric(models.TextChoices):
    """What the metrics can measure for an experiment; each needs one scope (see
    METRIC_SCOPE) and has one unit (METRIC_UNIT). metrics.experiments.MEASURES says how
    each is measured."""

    CONVERSION = "conversion", "Conversion from a column to the next step"
    CYCLE_TIME_P50 = "cycle_time_p50", "Cycle time of the cycle, median (p50)"
    CYCLE_TIME_P85 = "cycle_time_p85", "Cycle time of the cycle, 85th percentile"
    TIME_IN_COLUMN_P50 = "time_in_column_p50", "Time in a column, median (p50)"
    TIME_IN_COLUMN_P85 = "time_in_column_p85", "Time in a column, 85th percentile"
    THROUGHPUT = "throughput", "Throughput of the cycle"
    WIP = "wip", "WIP of a column"
    ARRIVALS = "arrivals", "Arrivals through a channel"
    WIN_RATE = "win_rate", "Win rate of a channel"


class MetricScope(models.TextChoices):
    """What a targeted metric is measured on, besides the experiment's cycle."""

    CYCLE = "cycle", "The cycle"
    COLUMN = "column", "A column of the cycle"
    CHANNEL = "channel", "A channel of the stream"


METRIC_SCOPE: dict[str, MetricScope] = {
    TargetedMetric.CONVERSION: MetricScope.COLUMN,
    TargetedMetric.CYCLE_TIME_P50: MetricScope.CYCLE,
    TargetedMetric.CYCLE_TIME_P85: MetricScope.CYCLE,
    TargetedMetric.TIME_IN_COLUMN_P50: MetricScope.COLUMN,
    TargetedMetric.TIME_IN_COLUMN_P85: MetricScope.COLUMN,
    TargetedMetric.THROUGHPUT: MetricScope.CYCLE,
    TargetedMetric.WIP: MetricScope.COLUMN,
    TargetedMetric.ARRIVALS: MetricScope.CHANNEL,
    TargetedMetric.WIN_RATE: MetricScope.CHANNEL,
}

METRIC_UNIT: dict[str, str] = {
    TargetedMetric.CONVERSION: "%",
    TargetedMetric.CYCLE_TIME_P50: "days",
    TargetedMetric.CYCLE_TIME_P85: "days",
    TargetedMetric.TIME_IN_COLUMN_P50: "days",
    TargetedMetric.TIME_IN_COLUMN_P85: "days",
    TargetedMetric.THROUGHPUT: "cards per week",
    # No parentheses: the unit is shown in them after the metric's name.
    TargetedMetric.WIP: "cards on an average day",
    TargetedMetric.ARRIVALS: "cards per week",
    TargetedMetric.WIN_RATE: "%",
}

# Shares, in percent: their targets and values run from 0 to 100.
PERCENT_METRICS = frozenset({TargetedMetric.CONVERSION, TargetedMetric.WIN_RATE})
# Shares and percentiles of cards: with few cards they say nothing (one card moves a
# share of five by 20 points), so their Check needs MIN_CHECK_CARDS. Counts and WIP are
# measured whatever their size: a week with nothing done is a real 0.
SAMPLED_METRICS = frozenset(
    {
        TargetedMetric.CONVERSION,
        TargetedMetric.WIN_RATE,
        TargetedMetric.CYCLE_TIME_P50,
        TargetedMetric.CYCLE_TIME_P85,
        TargetedMetric.TIME_IN_COLUMN_P50,
        TargetedMetric.TIME_IN_COLUMN_P85,
    }
)
# The fewest cards a sampled baseline or Check may rest on: the dashboard calls a
# percentile of fewer than 10 cards a rough figure, and a share of fewer than 10 cards
# moves in steps of more than 10 points.
MIN_CHECK_CARDS = 10


def _metrics_of(scope: MetricScope) -> list[str]:
    return [metric for metric, needs in METRIC_SCOPE.items() if needs == scope]


class SignalRule(models.TextChoices):
    """Which detection rule found a signal in the Do's weeks, against the natural process
    limits of the baseline's weeks (XmR): Wheeler's three detection rules, Understanding
    Variation (2nd ed., 2000), each on the side it fired. "" is routine variation (noise).
    """

    NONE = "", "No signal (routine variation)"
    BEYOND_UPPER_LIMIT = "beyond_upper_limit", "A week above the upper natural process limit"
    BEYOND_LOWER_LIMIT = "beyond_lower_limit", "A week below the lower natural process limit"
    THREE_OF_FOUR_UPPER = (
        "three_of_four_upper",
        "3 of 4 weeks in a row closer to the upper limit than to the central line",
    )
    THREE_OF_FOUR_LOWER = (
        "three_of_four_lower",
        "3 of 4 weeks in a row closer to the lower limit than to the central line",
    )
    RUN_OF_EIGHT_ABOVE = "run_of_eight_above", "8 weeks in a row above the central line"
    RUN_OF_EIGHT_BELOW = "run_of_eight_below", "8 weeks in a row below the central line"


_NOT_STARTED = Q(stage=ExperimentStage.PLAN)
_CHECKED = Q(stage__in=[ExperimentStage.CHECK, ExperimentStage.ACT])
# Abandoned in its Do without a Check (nothing measurable, or nothing worth measuring):
# decided and stopped, with no measured value.
_ABANDONED_UNCHECKED = Q(
    stage=ExperimentStage.ACT,
    decision=ExperimentDecision.ABANDON,
    checked_at__isnull=True,
    stopped_at__isnull=False,
)
# A plan withdrawn before it started: abandoned, never started, nothing measured.
_WITHDRAWN = Q(
    stage=ExperimentStage.ACT,
    decision=ExperimentDecision.ABANDON,
    started_at__isnull=True,
    baseline__isnull=True,
    baseline_cards__isnull=True,
    stopped_at__isnull=True,
    checked_at__isnull=True,
)


class Experiment(models.Model):
    """A PDCA iteration run by a team on its cycle: Plan a hypothesis and a target for
    one metric over a window of whole ISO weeks; Do it (start, stop); Check the value
    measured over the window against the baseline measured before it; Act on it.

    The window runs from ``window_start`` (a Monday, in settings.TIME_ZONE) for
    ``planned_weeks`` weeks. The baseline is the metric over the ``baseline_weeks``
    full weeks before it, frozen at the start; ``baseline_weekly`` holds its weekly
    values, on which the natural process limits of the Check rest. Whether the target
    is a rise or a fall follows from the target against the baseline (``direction``).
    Who did each step is kept by user id, null for the system or an API token (the
    audit log names every actor). Like the audit log's actor, the id outlives the person:
    no key, nothing done when the user is deleted.
    """

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="experiments")
    # Deleting the team leaves its experiments without a team (vsm.services.team_delete).
    team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="experiments"
    )
    hypothesis = models.TextField(max_length=HYPOTHESIS_MAX_LENGTH)
    targeted_metric = models.CharField(max_length=20, choices=TargetedMetric.choices)
    # The scope besides the cycle (METRIC_SCOPE). By name: pdca does not import boards.
    # A column or channel is deleted only when no card ever passed through it, so an
    # experiment on it has nothing measured to lose: it goes with it.
    column = models.ForeignKey(
        "boards.Column", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    window_start = models.DateField(help_text="The Monday the Do starts (settings.TIME_ZONE).")
    planned_weeks = models.PositiveSmallIntegerField()
    target = models.DecimalField(max_digits=12, decimal_places=2)
    stage = models.CharField(
        max_length=8, choices=ExperimentStage.choices, default=ExperimentStage.PLAN
    )
    started_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    baseline = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    baseline_cards = models.PositiveIntegerField(null=True, blank=True)
    baseline_weekly = models.JSONField(default=list, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    stopped_early = models.BooleanField(default=False)
    measured_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    measured_cards = models.PositiveIntegerField(null=True, blank=True)
    measured_weekly = models.JSONField(default=list, blank=True)
    signal = models.BooleanField(default=False)
    signal_rule = models.CharField(
        max_length=20, choices=SignalRule.choices, blank=True, default=SignalRule.NONE
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(
        max_length=8, choices=ExperimentDecision.choices, blank=True, default=""
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    decision_notes = models.TextField(max_length=DECISION_NOTES_MAX_LENGTH, blank=True)
    # Adapt: the experiment this one follows up.
    follow_up_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="follow_ups"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Optimistic concurrency: a caller names the version it saw (or measured for).
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-window_start", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stage__in=ExperimentStage.values),
                name="pdca_experiment_stage_valid",
                violation_error_message="Choose a stage: Plan, Do, Check or Act.",
            ),
            models.CheckConstraint(
                condition=Q(decision__in=ExperimentDecision.values),
                name="pdca_experiment_decision_valid",
                violation_error_message="Choose a decision: adopt, adapt or abandon (or none yet).",
            ),
            models.CheckConstraint(
                condition=Q(targeted_metric__in=TargetedMetric.values),
                name="pdca_experiment_targeted_metric_valid",
                violation_error_message="Choose the metric the experiment targets.",
            ),
            models.CheckConstraint(
                condition=Q(signal_rule__in=SignalRule.values),
                name="pdca_experiment_signal_rule_valid",
                violation_error_message="A signal is named by one of the detection rules.",
            ),
            models.CheckConstraint(
                condition=Q(GreaterThan(Length("hypothesis"), 0))
                & Q(LessThanOrEqual(Length("hypothesis"), HYPOTHESIS_MAX_LENGTH)),
                name="pdca_experiment_hypothesis_length",
                violation_error_message=(
                    f"Say what the experiment's hypothesis is, in at most "
                    f"{HYPOTHESIS_MAX_LENGTH:,} characters."
                ),
            ),
            models.CheckConstraint(
                condition=Q(planned_weeks__gte=1) & Q(planned_weeks__lte=PLANNED_WEEKS_MAX),
                name="pdca_experiment_planned_weeks_range",
                violation_error_message=(
                    f"An experiment runs for 1 to {PLANNED_WEEKS_MAX} whole weeks."
                ),
            ),
            models.CheckConstraint(
                condition=Q(window_start__iso_week_day=1),
                name="pdca_experiment_window_starts_on_monday",
                violation_error_message="An experiment's window starts on a Monday.",
            ),
            models.CheckConstraint(
                condition=Q(target__gte=0)
                & (~Q(targeted_metric__in=sorted(PERCENT_METRICS)) | Q(target__lte=100)),
                name="pdca_experiment_target_range",
                violation_error_message="A target is 0 or more, and at most 100 for a share (%).",
            ),
            models.CheckConstraint(
                condition=(
                    ~Q(targeted_metric__in=_metrics_of(MetricScope.CYCLE))
                    | Q(column__isnull=True, channel__isnull=True)
                )
                & (
                    ~Q(targeted_metric__in=_metrics_of(MetricScope.COLUMN))
                    | Q(column__isnull=False, channel__isnull=True)
                )
                & (
                    ~Q(targeted_metric__in=_metrics_of(MetricScope.CHANNEL))
                    | Q(column__isnull=True, channel__isnull=False)
                ),
                name="pdca_experiment_scope_fits_metric",
                violation_error_message=(
                    "A column metric names a column, a channel metric a channel, and a cycle "
                    "metric neither."
                ),
            ),
            models.CheckConstraint(
                condition=~_NOT_STARTED
                | Q(
                    started_at__isnull=True,
                    baseline__isnull=True,
                    baseline_cards__isnull=True,
                    stopped_at__isnull=True,
                ),
                name="pdca_experiment_plan_not_started",
                violation_error_message="A plan has not started: it has no start and no baseline.",
            ),
            models.CheckConstraint(
                condition=_NOT_STARTED
                | _WITHDRAWN
                | Q(started_at__isnull=False, baseline__isnull=False, baseline_cards__isnull=False),
                name="pdca_experiment_started_has_baseline",
                violation_error_message=(
                    "A started experiment has its start and its baseline; only a plan "
                    "withdrawn before its start has none."
                ),
            ),
            models.CheckConstraint(
                condition=Q(stopped_at__isnull=True) | Q(stopped_at__gte=F("started_at")),
                name="pdca_experiment_stopped_after_start",
                violation_error_message="An experiment stops after it started.",
            ),
            models.CheckConstraint(
                condition=Q(stopped_early=False) | Q(stopped_at__isnull=False),
                name="pdca_experiment_stopped_early_has_stop",
                violation_error_message="An experiment stopped early has its stop.",
            ),
            models.CheckConstraint(
                condition=~_CHECKED
                | _ABANDONED_UNCHECKED
                | _WITHDRAWN
                | Q(
                    stopped_at__isnull=False,
                    checked_at__isnull=False,
                    measured_value__isnull=False,
                    measured_cards__isnull=False,
                ),
                name="pdca_experiment_checked_has_measure",
                violation_error_message=(
                    "A checked experiment has stopped and holds its measured value; only one "
                    "abandoned in its Do, or a plan withdrawn, has none."
                ),
            ),
            models.CheckConstraint(
                condition=(_CHECKED & Q(checked_at__isnull=False))
                | Q(
                    checked_at__isnull=True,
                    measured_value__isnull=True,
                    measured_cards__isnull=True,
                    signal=False,
                    signal_rule=SignalRule.NONE,
                ),
                name="pdca_experiment_measure_only_when_checked",
                violation_error_message="A measured value is recorded at the Check stage.",
            ),
            models.CheckConstraint(
                condition=Q(signal=True, signal_rule__gt="")
                | Q(signal=False, signal_rule=SignalRule.NONE),
                name="pdca_experiment_signal_names_rule",
                violation_error_message="A signal names the rule that found it; noise names none.",
            ),
            # A decision is the Act step: it cannot exist before the stage gets there.
            models.CheckConstraint(
                condition=Q(stage=ExperimentStage.ACT)
                | Q(decision=ExperimentDecision.UNDECIDED, decided_at__isnull=True),
                name="pdca_experiment_decision_only_when_acting",
                violation_error_message=(
                    "A decision is taken at the Act stage: set the stage to Act, or leave the "
                    "decision empty."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(stage=ExperimentStage.ACT)
                | (~Q(decision=ExperimentDecision.UNDECIDED) & Q(decided_at__isnull=False)),
                name="pdca_experiment_act_has_decision",
                violation_error_message="An experiment at the Act stage has its decision.",
            ),
            models.CheckConstraint(
                condition=(Q(baseline__isnull=True) | Q(baseline__gte=0))
                & (Q(measured_value__isnull=True) | Q(measured_value__gte=0)),
                name="pdca_experiment_values_not_negative",
                violation_error_message="Measured values are 0 or more.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cycle.name}: {self.hypothesis[:60]}"

    @property
    def unit(self) -> str:
        """The unit its target and values are given in (METRIC_UNIT)."""
        return METRIC_UNIT[self.targeted_metric]

    @property
    def abandoned_unchecked(self) -> bool:
        """Abandoned without a Check (in its Do, or a plan withdrawn): decided, nothing
        measured."""
        return self.stage == ExperimentStage.ACT and self.checked_at is None

    @property
    def withdrawn(self) -> bool:
        """A plan withdrawn before it started: abandoned, never started."""
        return self.stage == ExperimentStage.ACT and self.started_at is None

    @property
    def window_last_day(self) -> date:
        """The window's last day: the Sunday of its last week."""
        return self.window_start + timedelta(weeks=self.planned_weeks, days=-1)

    @property
    def window_ends_at(self) -> datetime:
        """The moment the window is over: midnight after its last day, settings.TIME_ZONE."""
        return _midnight(self.window_start + timedelta(weeks=self.planned_weeks))

    @property
    def baseline_weeks(self) -> int:
        """How many full weeks before the window the baseline rests on."""
        return max(self.planned_weeks, BASELINE_MIN_WEEKS)

    @property
    def baseline_first_day(self) -> date:
        return self.window_start - timedelta(weeks=self.baseline_weeks)

    @property
    def measured_last_day(self) -> date:
        """The Do's last whole day: the window's last day, or the day before the stop if
        it stopped earlier (the stop's own day is partial)."""
        if self.stopped_at is None:
            return self.window_last_day
        stopped_on = local_day(self.stopped_at)
        return min(self.window_last_day, stopped_on - timedelta(days=1))

    @property
    def measured_weeks(self) -> int:
        """The Do's full weeks: its weekly points (a partial last week is no point)."""
        return max(0, (self.measured_last_day - self.window_start).days + 1) // 7

    @property
    def is_running(self) -> bool:
        return self.stage == ExperimentStage.DO and self.stopped_at is None

    def check_ready(self, at: datetime) -> bool:
        """Whether its Check may be taken at ``at``: started, and stopped or its window
        over (a Check taken already may be taken again until the Act); never for one
        stopped on its window's first day, which has no whole day to measure (it can
        only be abandoned)."""
        if self.stage == ExperimentStage.CHECK:
            return True
        if self.stopped_at is not None and self.measured_last_day < self.window_start:
            return False
        return self.stage == ExperimentStage.DO and (
            self.stopped_at is not None or at >= self.window_ends_at
        )

    @property
    def direction(self) -> int:
        """+1 when the target is a rise from the baseline, -1 a fall, 0 before the start."""
        if self.baseline is None or self.target == self.baseline:
            return 0
        return 1 if self.target > self.baseline else -1


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())
