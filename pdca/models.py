"""PDCA cycles of a value stream, the control points between them, and experiments."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from vsm.models import Team, ValueStream


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
    CONVERSION = "conversion", "Conversion (%)"
    CYCLE_TIME = "cycle_time", "Cycle time (days)"
    THROUGHPUT = "throughput", "Throughput (cards per week)"
    WON_VALUE = "won_value", "Won value per week"
    ARRIVALS = "arrivals", "Arrivals per week"


class Experiment(models.Model):
    """A PDCA iteration run by a team on its cycle: hypothesis, target, window, result."""

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="experiments")
    team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="experiments"
    )
    hypothesis = models.TextField()
    targeted_metric = models.CharField(max_length=20, choices=TargetedMetric.choices)
    baseline = models.DecimalField(max_digits=12, decimal_places=2)
    target = models.DecimalField(max_digits=12, decimal_places=2)
    window_start = models.DateField()
    window_end = models.DateField()
    stage = models.CharField(
        max_length=8, choices=ExperimentStage.choices, default=ExperimentStage.PLAN
    )
    measured_result = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Filled from the metrics at Check, not typed.",
    )
    decision = models.CharField(
        max_length=8, choices=ExperimentDecision.choices, blank=True, default=""
    )
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-window_start", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(window_end__gte=F("window_start")),
                name="pdca_experiment_window_ordered",
                violation_error_message=(
                    "An experiment's window ends on or after the day it starts."
                ),
            ),
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
                condition=~Q(hypothesis=""),
                name="pdca_experiment_hypothesis_not_blank",
                violation_error_message="Say what the experiment's hypothesis is.",
            ),
            # A decision is the Act step: it cannot exist before the stage gets there.
            models.CheckConstraint(
                condition=Q(decision="") | Q(stage=ExperimentStage.ACT),
                name="pdca_experiment_decision_only_when_acting",
                violation_error_message=(
                    "A decision is taken at the Act stage: set the stage to Act, or leave the "
                    "decision empty."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cycle.name}: {self.hypothesis[:60]}"
