"""Running aggregates folded from the move log, and the summaries built from them.

The move log (boards.CardMove) is the only source of truth. Everything here can be
dropped and rebuilt with ``manage.py metrics_rebuild``; docs/metrics.md says how
each number is computed.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from boards.models import Card, Column
from pdca.models import Cycle
from vsm.models import Channel, ValueStream

# The aggregate tables below hold derived data only: they are dropped and refilled
# from the move log by a rebuild. Their foreign keys are therefore not database
# constraints (db_constraint=False): Django still applies on_delete, but PostgreSQL
# no longer checks every written row at COMMIT, which cost a 1,000,000-move rebuild
# 41-61 s of deferred checks. A foreign key gets no index of its own (db_index=False)
# when a composite index already leads with it, or when nothing but a rare cascade
# delete (of a column, cycle or channel, which the move log protects) filters on it:
# fewer indexes to maintain per row written.
DERIVED = {"db_constraint": False}


class MetricsProgress(models.Model):
    """How far the fold has got through a stream's move log.

    ``watermark_move_id``: every move with a smaller or equal id is folded in, and no
    move at or below it can still appear (its transaction is settled, see docs).
    ``last_applied_move_id``: the newest move folded in; moves between the two are
    folded already and recognised per card, so a re-scan never counts them twice.
    """

    value_stream = models.OneToOneField(
        ValueStream, on_delete=models.CASCADE, related_name="metrics_progress"
    )
    watermark_move_id = models.BigIntegerField(default=0)
    last_applied_move_id = models.BigIntegerField(default=0)
    applied_moves = models.BigIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    summary_move_id = models.BigIntegerField(
        default=0, help_text="The last applied move the stored summary reflects."
    )
    summary_computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "metrics progress"
        constraints = [
            models.CheckConstraint(
                condition=Q(last_applied_move_id__gte=models.F("watermark_move_id")),
                name="metrics_progress_applied_not_behind_watermark",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.value_stream}: through move {self.last_applied_move_id}"


class CardFlowState(models.Model):
    """Where the fold last saw a card: enough to close its open intervals."""

    card = models.OneToOneField(Card, on_delete=models.CASCADE, primary_key=True, **DERIVED)
    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, db_index=False, **DERIVED
    )
    last_move_id = models.BigIntegerField()
    channel = models.ForeignKey(
        Channel, on_delete=models.SET_NULL, null=True, blank=True, db_index=False, **DERIVED
    )
    column = models.ForeignKey(
        Column, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    is_open = models.BooleanField(default=True)
    column_entered_at = models.DateTimeField()
    cycle_entered_at = models.DateTimeField()
    stream_entered_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["value_stream", "is_open"], name="metrics_state_open")]

    def __str__(self) -> str:
        return f"card {self.card_id} in column {self.column_id}"


class ColumnDay(models.Model):
    """Arrivals into and departures from a column on one day (UTC)."""

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, db_index=False, **DERIVED
    )
    column = models.ForeignKey(
        Column, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    day = models.DateField()
    arrivals = models.IntegerField(default=0)
    departures = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["column", "day"], name="metrics_columnday_unique"),
        ]
        indexes = [models.Index(fields=["value_stream", "day"], name="metrics_columnday_stream")]

    def __str__(self) -> str:
        return f"column {self.column_id} on {self.day}"


class CycleDay(models.Model):
    """Per cycle and day: cards entering, leaving (handoff out, won, lost), won and lost."""

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, db_index=False, **DERIVED
    )
    cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    day = models.DateField()
    arrivals = models.IntegerField(default=0)
    departures = models.IntegerField(default=0)
    won = models.IntegerField(default=0)
    lost = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cycle", "day"], name="metrics_cycleday_unique"),
        ]
        indexes = [models.Index(fields=["value_stream", "day"], name="metrics_cycleday_stream")]

    def __str__(self) -> str:
        return f"cycle {self.cycle_id} on {self.day}"


class ChannelDay(models.Model):
    """Per channel and day: prospects arriving in the stream, won (count, value) and lost.

    ``channel_key`` is the channel id, or 0 for cards without a channel, so the unique
    constraint holds on every database.
    """

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, db_index=False, **DERIVED
    )
    channel_key = models.BigIntegerField()
    day = models.DateField()
    arrivals = models.IntegerField(default=0)
    won = models.IntegerField(default=0)
    won_value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    lost = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["value_stream", "channel_key", "day"], name="metrics_channelday_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"channel {self.channel_key} on {self.day}"


class CardReach(models.Model):
    """The first time a card reached a column: the base of conversion rates.

    The fold reads a card's rows to know whether a reach is its first; the counts the
    metrics document needs are kept in ColumnReachCount and CycleConversionCount.
    """

    value_stream = models.ForeignKey(ValueStream, on_delete=models.CASCADE, **DERIVED)
    card = models.ForeignKey(
        Card, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    column = models.ForeignKey(
        Column, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    channel_key = models.BigIntegerField()
    reached_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["card", "column"], name="metrics_cardreach_unique"),
        ]

    def __str__(self) -> str:
        return f"card {self.card_id} reached column {self.column_id}"


class DurationKind(models.TextChoices):
    COLUMN = "column", "Time in column"
    CYCLE = "cycle", "Cycle time"
    LEAD = "lead", "Lead time (entry to won)"


class FlowDuration(models.Model):
    """One finished interval: a column visit, a cycle passage, or a lead time."""

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, db_index=False, **DERIVED
    )
    # Indexed: the fold looks up a card's earlier wins (its lead rows).
    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="+", **DERIVED)
    kind = models.CharField(max_length=6, choices=DurationKind.choices)
    column = models.ForeignKey(
        Column,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        **DERIVED,
    )
    cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    channel_key = models.BigIntegerField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    seconds = models.BigIntegerField()
    # The move that closed the interval: makes a fold's writes traceable and unique.
    move_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(seconds__gte=0), name="metrics_flowduration_seconds_not_negative"
            ),
            models.UniqueConstraint(
                fields=["move_id", "kind"], name="metrics_flowduration_unique_per_move"
            ),
        ]
        # The metrics document reads the intervals of each kind that ended in its window.
        indexes = [
            models.Index(fields=["value_stream", "kind", "ended_at"], name="metrics_dur_ended"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of card {self.card_id}: {self.seconds} s"


class ColumnReachCount(models.Model):
    """All-time count of the cards that reached a column at least once, by the channel
    recorded on the event that first reached it (CardReach rows, counted as the fold
    writes them)."""

    value_stream = models.ForeignKey(ValueStream, on_delete=models.CASCADE, **DERIVED)
    column = models.ForeignKey(
        Column, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    channel_key = models.BigIntegerField()
    cards = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["column", "channel_key"], name="metrics_columnreachcount_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"column {self.column_id}, channel {self.channel_key}: {self.cards} cards"


class CycleConversionCount(models.Model):
    """All-time conversion counts of a cycle, by channel key.

    ``handed_on``: cards that reached both this cycle's first column and the next
    cycle's, by the channel on the event that first reached the next cycle's first
    column. ``won``: cards won while in this cycle, each card once, by the channel
    on its first win in it.
    """

    value_stream = models.ForeignKey(ValueStream, on_delete=models.CASCADE, **DERIVED)
    cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    channel_key = models.BigIntegerField()
    handed_on = models.IntegerField(default=0)
    won = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "channel_key"], name="metrics_cycleconversioncount_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"cycle {self.cycle_id}, channel {self.channel_key}"


class StreamMetrics(models.Model):
    """The latest computed metrics of a stream, as one document for dashboards."""

    value_stream = models.OneToOneField(
        ValueStream, on_delete=models.CASCADE, related_name="metrics"
    )
    through_move_id = models.BigIntegerField()
    computed_at = models.DateTimeField()
    data = models.JSONField()

    class Meta:
        verbose_name_plural = "stream metrics"

    def __str__(self) -> str:
        return f"metrics of {self.value_stream} through move {self.through_move_id}"


class WeeklySnapshot(models.Model):
    """The metrics of a stream as they stood for one ISO week, kept for comparison."""

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, related_name="weekly_snapshots"
    )
    week_start = models.DateField(help_text="The Monday of the ISO week.")
    through_move_id = models.BigIntegerField()
    taken_at = models.DateTimeField()
    data = models.JSONField()

    class Meta:
        ordering = ["value_stream", "-week_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["value_stream", "week_start"], name="metrics_weeklysnapshot_unique_week"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.value_stream} week of {self.week_start}"
