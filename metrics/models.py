"""Running aggregates folded from the move log, and the summaries built from them.

The move log (boards.CardMove) is the only source of truth. Everything here can be
dropped and rebuilt with ``manage.py metrics_rebuild``; docs/metrics.md says how
each number is computed.
"""

from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThan, LessThanOrEqual
from django.utils import timezone

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


class _DerivedFieldOptions(TypedDict):
    """Typed so that ``**DERIVED`` checks against the field's keyword arguments."""

    db_constraint: bool


DERIVED: _DerivedFieldOptions = {"db_constraint": False}


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
    folded_layout = models.CharField(
        max_length=40,
        blank=True,
        help_text="metrics.fold.layout_key of the time zone and columns the aggregates "
        "were folded with; when it no longer matches, the next run rebuilds them.",
    )

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
    """Where the fold last saw a card: enough to close its open intervals, and to take
    back its last close if it is reopened (a card counts once, by its final state).

    ``channel`` is the channel the card arrived through (recorded on its ``enter``
    event): every per-channel number counts the card there. ``next_full_mark`` is the
    next column's ``ColumnFlowState.full_seconds_total`` when the card entered its
    column: the difference at its departure is the time it waited while that column
    was full (blocked flow).
    """

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
    # When the card first entered its current cycle: a reopen does not restart it.
    cycle_entered_at = models.DateTimeField()
    stream_entered_at = models.DateTimeField()
    closed_kind = models.CharField(max_length=4, blank=True, default="")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    closed_move_id = models.BigIntegerField(null=True, blank=True)
    next_full_mark = models.BigIntegerField(null=True, blank=True)
    # The column's WIP when the card entered it: the cards it found there.
    column_entered_wip = models.IntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["value_stream", "is_open"], name="metrics_state_open")]

    def __str__(self) -> str:
        return f"card {self.card_id} in column {self.column_id}"


# ColumnDay's counters, in the order the fold gathers them.
COLUMN_DAY_COUNTERS = (
    "arrivals",
    "departures",
    "wip_seconds",
    "wip_squared_seconds",
    "full_seconds",
    "blocked_seconds",
    "waited_seconds",
    "waited_cards",
    "visits",
    "visit_wip",
    "visit_wip_squared",
    "visit_minutes",
    "visit_minutes_squared",
    "visit_wip_minutes",
)


class ColumnDay(models.Model):
    """Arrivals into and departures from a column on one day (in settings.TIME_ZONE),
    and the column's flow over that day's time, in whole seconds:

    - ``wip_seconds``: WIP integrated over time (card-seconds), so a time-weighted
      average WIP is ``wip_seconds`` / the seconds of the period, and
      ``wip_squared_seconds``: WIP squared integrated over time, for its variance;
    - ``full_seconds``: seconds its WIP was at or over its WIP limit;
    - ``blocked_seconds``: seconds it was full while the next column was full too
      (its finished work could not move on);
    - ``waited_seconds`` / ``waited_cards``: cards that arrived this day from the
      column before it, and the time they had waited there while this column was full
      (blocked flow charged to the column that was full);
    - ``visits`` ended this day, and over them the sums of the WIP each card found on
      arriving (w, w squared), of the visit's whole minutes (d, d squared: minutes, so
      that a 25-year visit squared still fits 64 bits many times over) and of w x d: how
      much longer a visit lasts per card found ahead (a queue) or not at all (a delay).
    """

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, db_index=False, **DERIVED
    )
    column = models.ForeignKey(
        Column, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    day = models.DateField()
    arrivals = models.IntegerField(default=0)
    departures = models.IntegerField(default=0)
    wip_seconds = models.BigIntegerField(default=0)
    wip_squared_seconds = models.BigIntegerField(default=0)
    full_seconds = models.BigIntegerField(default=0)
    blocked_seconds = models.BigIntegerField(default=0)
    waited_seconds = models.BigIntegerField(default=0)
    waited_cards = models.IntegerField(default=0)
    visits = models.IntegerField(default=0)
    visit_wip = models.BigIntegerField(default=0)
    visit_wip_squared = models.BigIntegerField(default=0)
    visit_minutes = models.BigIntegerField(default=0)
    visit_minutes_squared = models.BigIntegerField(default=0)
    visit_wip_minutes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["column", "day"], name="metrics_columnday_unique"),
        ]
        indexes = [models.Index(fields=["value_stream", "day"], name="metrics_columnday_stream")]

    def __str__(self) -> str:
        return f"column {self.column_id} on {self.day}"


class CycleDay(models.Model):
    """Per cycle and day: cards entering, leaving (handoff out, won, lost), won and lost.

    A close counts on the day of the card's final close: a reopen takes the earlier
    close (its departure and its won or lost) back, and is not an arrival.
    """

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
    """Per channel and day: prospects arriving in the stream, won (count, value) and lost,
    each card under the channel it arrived through, a close on the day of its final
    close (a reopen takes the earlier one back).

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
    # A cycle or lead interval that ended with ``lost``: counted beside the percentiles,
    # never in them.
    abandoned = models.BooleanField(default=False)

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


class CycleOutcome(models.TextChoices):
    OPEN = "open", "Still in the cycle"
    HANDED_ON = "handed_on", "Handed on to the next cycle"
    WON = "won", "Won in the cycle"
    LOST = "lost", "Lost in the cycle"


class CardCycle(models.Model):
    """One card's passage through one cycle: the base of conversion cohorts.

    ``reached_mask`` has bit i set when the card reached the cycle's column at position
    i (0 = its first column) at least once. ``outcome`` is the card's final state in the
    cycle at the fold's time (a reopen sets it back to open). ``entered_at`` is when it
    first entered the cycle; ``channel_key`` the channel it arrived through (0: none).
    """

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, db_index=False, **DERIVED
    )
    card = models.ForeignKey(
        Card, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="+", db_index=False, **DERIVED
    )
    channel_key = models.BigIntegerField()
    entered_at = models.DateTimeField()
    reached_mask = models.BigIntegerField(default=0)
    outcome = models.CharField(
        max_length=9, choices=CycleOutcome.choices, default=CycleOutcome.OPEN
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["card", "cycle"], name="metrics_cardcycle_unique"),
        ]
        indexes = [
            models.Index(fields=["value_stream", "entered_at"], name="metrics_cardcycle_entered"),
        ]

    def __str__(self) -> str:
        return f"card {self.card_id} in cycle {self.cycle_id}: {self.outcome}"


class ColumnFlowState(models.Model):
    """A column's WIP as the fold last saw it, and how long it has been full in all
    (``full_seconds_total``), as of ``timeline_at``: the fold's clock for the stream."""

    column = models.OneToOneField(
        Column, on_delete=models.CASCADE, primary_key=True, related_name="+", **DERIVED
    )
    value_stream = models.ForeignKey(ValueStream, on_delete=models.CASCADE, **DERIVED)
    wip = models.IntegerField(default=0)
    full_seconds_total = models.BigIntegerField(default=0)
    timeline_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"column {self.column_id}: WIP {self.wip}"


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


# The weekly review: what a stream's managers decided and noted about one ISO week.
# Written by metrics.services (review_entry_record, review_entry_withdraw) only.

REVIEW_ENTRY_MAX_LENGTH = 2000


class ReviewEntryKind(models.TextChoices):
    DECISION = "decision", "Decision"
    NOTE = "note", "Note"


class ReviewEntry(models.Model):
    """A decision or a note recorded at the weekly review of one ISO week of a stream.

    Kept: an entry is never edited or deleted. Withdrawing one (its author or a manager
    of the stream) records who withdrew it and when; its text stays, shown as withdrawn.
    ``author`` and ``withdrawn_by`` become null if that user is deleted; the entry stays.
    """

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, related_name="review_entries", db_index=False
    )
    week_start = models.DateField(help_text="The Monday of the reviewed ISO week.")
    kind = models.CharField(max_length=8, choices=ReviewEntryKind.choices)
    # A TextField: its length rule is the named constraint below, the same on every
    # database (a varchar's own limit would answer first on PostgreSQL, unnamed).
    text = models.TextField(max_length=REVIEW_ENTRY_MAX_LENGTH)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["value_stream", "week_start", "created_at", "id"]
        verbose_name_plural = "review entries"
        indexes = [
            models.Index(fields=["value_stream", "week_start"], name="metrics_review_stream_week"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ReviewEntryKind.values),
                name="metrics_reviewentry_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(GreaterThan(Length("text"), 0))
                & Q(LessThanOrEqual(Length("text"), REVIEW_ENTRY_MAX_LENGTH)),
                name="metrics_reviewentry_text_length",
            ),
            models.CheckConstraint(
                condition=Q(week_start__iso_week_day=1),
                name="metrics_reviewentry_week_is_monday",
            ),
            # A withdrawal names its moment; its actor may later be deleted (null).
            models.CheckConstraint(
                condition=Q(withdrawn_by__isnull=True) | Q(withdrawn_at__isnull=False),
                name="metrics_reviewentry_withdrawal_dated",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.value_stream} week of {self.week_start}"

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None


# The weekly digest e-mail: who asked for it, and which weeks went to which address.
# Written by metrics.services (digest_subscription_set, weekly_digest_send) only; not
# derived data (a rebuild leaves it alone).


class DigestSubscription(models.Model):
    """A member of a stream asked for its weekly digest e-mail. The stream's manager
    always receives it, with or without a row. Deleted when the member stops it; a row
    of a user who is no longer a member is ignored (see selectors.digest)."""

    # No index of its own: the unique constraint leads with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="digest_subscriptions",
        db_index=False,
    )
    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, related_name="digest_subscriptions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "value_stream"], name="metrics_digestsubscription_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} receives the digest of {self.value_stream_id}"


class DigestDelivery(models.Model):
    """One weekly digest sent to one address: a stream's week (``week_start``, the
    reviewed week's Monday) goes to an address at most once, so a retried or repeated
    task never sends it twice. ``address``: as sent to, lower-cased; ``user``: the
    recipient it was sent for (null once that user is deleted)."""

    # No index of its own: the unique constraint leads with it.
    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, related_name="digest_deliveries", db_index=False
    )
    week_start = models.DateField(help_text="The Monday of the reviewed ISO week.")
    address = models.EmailField(max_length=254)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    sent_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "digest deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["value_stream", "week_start", "address"],
                name="metrics_digestdelivery_unique_recipient",
            ),
            models.CheckConstraint(
                condition=Q(week_start__iso_week_day=1),
                name="metrics_digestdelivery_week_is_monday",
            ),
        ]

    def __str__(self) -> str:
        return f"digest of {self.value_stream_id}, week of {self.week_start}, to {self.address}"
