"""Columns, cards, the append-only move log and handoffs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from pdca.models import ControlPoint, Criterion, Cycle
from vsm.models import ActorFields, Channel, LostReason, Team, ValueStream


class KnowledgeLevel(models.TextChoices):
    DATA = "data", "Data"
    INFORMATION = "information", "Information"
    KNOWLEDGE = "knowledge", "Knowledge"
    WISDOM = "wisdom", "Wisdom"


class ColumnSplit(models.TextChoices):
    """A column may be split into doing and done, so waiting work shows as a queue."""

    NONE = "", "Not split"
    DOING = "doing", "Doing"
    DONE = "done", "Done (waiting to be pulled)"


class Column(models.Model):
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="columns")
    name = models.CharField(max_length=120)
    knowledge_level = models.CharField(max_length=12, choices=KnowledgeLevel.choices)
    order = models.PositiveSmallIntegerField()
    wip_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: no limit. Otherwise at least 1."
    )
    split = models.CharField(
        max_length=5,
        choices=ColumnSplit.choices,
        blank=True,
        default=ColumnSplit.NONE,
        help_text="Doing/done halves of one step: time in 'done' counts as waiting.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cycle__value_stream", "cycle__order", "order"]
        constraints = [
            models.UniqueConstraint(fields=["cycle", "order"], name="boards_column_unique_order"),
            models.UniqueConstraint(
                fields=["cycle", "name"], name="boards_column_unique_name_per_cycle"
            ),
            models.CheckConstraint(
                condition=Q(wip_limit__isnull=True) | Q(wip_limit__gte=1),
                name="boards_column_wip_limit_empty_or_positive",
                violation_error_message="A WIP limit is empty or at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(knowledge_level__in=KnowledgeLevel.values),
                name="boards_column_knowledge_level_valid",
                violation_error_message=(
                    "Choose a knowledge level: Data, Information, Knowledge or Wisdom."
                ),
            ),
            models.CheckConstraint(
                condition=Q(split__in=ColumnSplit.values),
                name="boards_column_split_valid",
                violation_error_message="Choose whether the column is split, and how.",
            ),
            models.CheckConstraint(
                condition=~Q(name=""),
                name="boards_column_name_not_blank",
                violation_error_message="A column needs a name.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cycle.name} / {self.name}"


class Outcome(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


def card_display_name(person_name: str, company: str) -> str:
    """How a prospect is named: 'person (company)', or whichever of the two it has."""
    if person_name and company:
        return f"{person_name} ({company})"
    return person_name or company


class ChangeStampField(models.BigIntegerField):
    """A column only the database writes (a trigger): Django's UPDATE sets it to itself
    (``F``), so a card saved from a stale object never puts an old stamp back."""

    def pre_save(self, model_instance: models.Model, add: bool) -> object:
        return super().pre_save(model_instance, add) if add else models.F(self.attname)


# A card's notes: the prospect's story in a few paragraphs; longer belongs in comments.
NOTES_MAX_LENGTH = 10_000


class Card(models.Model):
    """A prospect travelling through a value stream."""

    # No single-column indexes: the composite indexes below start with these columns,
    # and every move updates a card's index entries (a move changes indexed columns).
    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.PROTECT, related_name="cards", db_index=False
    )
    column = models.ForeignKey(
        Column, on_delete=models.PROTECT, related_name="cards", db_index=False
    )
    # Gapped integers, ordered by (position, id); see boards.services.positions.
    position = models.BigIntegerField()
    person_name = models.CharField(max_length=200, blank=True)
    company = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, null=True, blank=True, related_name="cards"
    )
    owning_team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="cards"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_cards",
    )
    estimated_value = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    notes = models.TextField(blank=True, max_length=NOTES_MAX_LENGTH)
    is_blocked = models.BooleanField(default=False)
    blocked_reason = models.CharField(max_length=300, blank=True)
    blocked_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=4, choices=Outcome.choices, default=Outcome.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    column_entered_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Optimistic concurrency: a client names the version it saw; a mismatch means stale.
    version = models.PositiveIntegerField(default=1)
    # When the prospect's personal data was erased (boards.services.privacy); the card
    # then keeps its place in the flow and its numbers, under a neutral name.
    erased_at = models.DateTimeField(null=True, blank=True)
    # When the card last changed as a board shows it, in commit order: set by a database
    # trigger on insert and on every change of ``version`` (migration 0012): on
    # PostgreSQL the writing transaction's id (pg_current_xact_id), on SQLite a counter.
    # Live updates send the cards changed since a client's snapshot (boards.selectors.
    # changes). Moving positions apart (a renumber) leaves it alone.
    change_stamp = ChangeStampField(db_default=0, editable=False)

    class Meta:
        ordering = ["column", "position", "id"]
        indexes = [
            models.Index(fields=["column", "outcome", "position"], name="boards_card_column_order"),
            # Covers the board's per-column counts and open values (an index-only scan
            # on PostgreSQL), which otherwise read every open card's row.
            # (The value is a key column, not INCLUDEd: SQLite has no INCLUDE.)
            models.Index(
                fields=["value_stream", "outcome", "column", "estimated_value"],
                name="boards_card_stream_tally",
            ),
            models.Index(fields=["value_stream", "change_stamp"], name="boards_card_stream_stamp"),
        ]
        constraints = [
            # Only open cards hold a place in a column; won and lost cards leave the flow.
            models.UniqueConstraint(
                fields=["column", "position"],
                condition=Q(outcome="open"),
                name="boards_card_unique_open_position",
                violation_error_message="Another open card of this column has that position.",
            ),
            models.CheckConstraint(
                condition=~Q(person_name="") | ~Q(company=""),
                name="boards_card_person_or_company",
                violation_error_message="A prospect needs a person or a company.",
            ),
            models.CheckConstraint(
                condition=Q(estimated_value__gte=0),
                name="boards_card_estimated_value_not_negative",
                violation_error_message="An estimated value is zero or more.",
            ),
            models.CheckConstraint(
                condition=Q(is_blocked=False) | ~Q(blocked_reason=""),
                name="boards_card_blocked_needs_reason",
                violation_error_message="Say why the card is blocked.",
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=Outcome.values),
                name="boards_card_outcome_valid",
                violation_error_message="Choose an outcome: open, won or lost.",
            ),
            models.CheckConstraint(
                condition=Q(outcome="open", closed_at__isnull=True)
                | (~Q(outcome="open") & Q(closed_at__isnull=False)),
                name="boards_card_closed_at_matches_outcome",
                violation_error_message=(
                    "A won or lost card has the time it was closed; an open card has none."
                ),
            ),
            models.CheckConstraint(
                condition=Q(version__gte=1),
                name="boards_card_version_positive",
                violation_error_message="A card's version is at least 1.",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return card_display_name(self.person_name, self.company)

    @property
    def is_open(self) -> bool:
        return self.outcome == Outcome.OPEN


class MoveKind(models.TextChoices):
    ENTER = "enter", "Entered the stream"
    MOVE = "move", "Moved"
    HANDOFF = "handoff", "Handed off through a control point"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    REOPEN = "reopen", "Reopened"


class CardMove(ActorFields):
    """One immutable event in a card's life: the source of truth for every metric.

    Append-only: written by boards.services only, read-only in the admin, and on
    PostgreSQL a trigger refuses UPDATE and DELETE.
    """

    # No single-column indexes: the composite indexes below start with these columns,
    # and every move inserts into each index.
    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.PROTECT, related_name="card_moves", db_index=False
    )
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="moves", db_index=False)
    from_column = models.ForeignKey(
        Column, on_delete=models.PROTECT, null=True, blank=True, related_name="moves_out"
    )
    to_column = models.ForeignKey(Column, on_delete=models.PROTECT, related_name="moves_in")
    moved_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=8, choices=MoveKind.choices)
    # The card's channel and value as they were at this event, so metrics rebuilt
    # later from the log give the same numbers even after the card is edited.
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    estimated_value = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    # The database's clock when the row was written (transaction start): the metrics
    # fold uses it to know when no older move can still be in flight.
    recorded_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["moved_at", "id"]
        indexes = [
            models.Index(fields=["value_stream", "id"], name="boards_move_stream_id"),
            models.Index(fields=["card", "moved_at"], name="boards_move_card_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=MoveKind.values),
                name="boards_cardmove_kind_valid",
                violation_error_message="Choose a kind of move.",
            ),
            # Only a card's first event has no origin column.
            models.CheckConstraint(
                condition=Q(kind="enter", from_column__isnull=True)
                | (~Q(kind="enter") & Q(from_column__isnull=False)),
                name="boards_cardmove_origin_matches_kind",
                violation_error_message=(
                    "Only a card's first move, into the stream, has no origin column."
                ),
            ),
            *ActorFields.actor_constraints("boards_cardmove"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: card {self.card_id} -> column {self.to_column_id}"

    @property
    def wip_override_reason(self) -> str:
        """Why the move went over the WIP limit ("" if it did not, or it was erased).

        Reads the WipOverride row unless it is cached (select_related, or the move just
        made by the service)."""
        try:
            return self.wip_override.reason
        except WipOverride.DoesNotExist:
            return ""


class WipOverride(models.Model):
    """Why a move went over its column's WIP limit, as the value stream manager gave it.

    Kept beside the append-only move log, not in it: the reason is free text, which may
    name a person and may have to be erased, while the move itself never changes. The
    move log says that an override happened (this row exists); this row says why.
    """

    move = models.OneToOneField(
        CardMove, on_delete=models.PROTECT, primary_key=True, related_name="wip_override"
    )
    reason = models.CharField(max_length=300)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason="") | Q(erased_at__isnull=False),
                name="boards_wipoverride_reason_unless_erased",
                violation_error_message="Say why the move went over the WIP limit.",
            ),
        ]

    def __str__(self) -> str:
        return f"WIP override of move {self.move_id}"


LOST_NOTE_MAX_LENGTH = 500


class CardLoss(models.Model):
    """Why a card was lost: a reason from the stream's list (``vsm.LostReason``) and a
    note in the seller's words, kept beside the append-only move log, as a WIP
    override's reason is: the note is free text that may name a person and may have to
    be erased, while the lost move never changes. One per lost move; a card lost again
    after a reopen has one per loss."""

    move = models.OneToOneField(
        CardMove, on_delete=models.PROTECT, primary_key=True, related_name="loss"
    )
    reason = models.ForeignKey(
        LostReason, on_delete=models.PROTECT, null=True, blank=True, related_name="losses"
    )
    note = models.CharField(max_length=LOST_NOTE_MAX_LENGTH, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(reason__isnull=False) | ~Q(note="") | Q(erased_at__isnull=False),
                name="boards_cardloss_reason_or_note",
                violation_error_message="Say why the deal was lost: a reason, a note or both.",
            ),
        ]

    def __str__(self) -> str:
        return f"Loss of move {self.move_id}"


class ActivityKind(models.TextChoices):
    COMMENT = "comment", "Comment"
    EDIT = "edit", "Edited"
    BLOCKED = "blocked", "Blocked"
    UNBLOCKED = "unblocked", "Unblocked"


COMMENT_MAX_LENGTH = 5000


class CardActivity(ActorFields):
    """One entry of a card's history besides its moves (``CardMove``): a comment, a
    change of its fields, or its blocking and unblocking. With the moves, a card's
    timeline: the team's growing knowledge of the prospect, with who and when.

    ``text``: the comment, or the reason it was blocked. ``changes``: for an edit, a
    list of {"field": its label, "old": text, "new": text}, as the person saw them
    (an owner or channel by name). Written by the boards services only, never changed
    (erasure, of a person's data, blanks the text and the changes and stamps
    ``erased_at``).
    """

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="activity")
    kind = models.CharField(max_length=10, choices=ActivityKind.choices)
    text = models.TextField(blank=True, max_length=COMMENT_MAX_LENGTH)
    changes = models.JSONField(default=list, blank=True)
    at = models.DateTimeField(default=timezone.now)
    recorded_at = models.DateTimeField(db_default=Now(), editable=False)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["card", "at"], name="boards_activity_card_time")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ActivityKind.values),
                name="boards_cardactivity_kind_valid",
                violation_error_message="Choose a kind of activity.",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["comment", "blocked"])
                | ~Q(text="")
                | Q(erased_at__isnull=False),
                name="boards_cardactivity_text_when_needed",
                violation_error_message="A comment, or a blocking, says something.",
            ),
            *ActorFields.actor_constraints("boards_cardactivity"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on card {self.card_id}"


class Handoff(ActorFields):
    """A card passing a control point from one cycle to the next."""

    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="handoffs")
    control_point = models.ForeignKey(
        ControlPoint, on_delete=models.PROTECT, related_name="handoffs"
    )
    move = models.OneToOneField(CardMove, on_delete=models.PROTECT, related_name="handoff")
    criteria_met = models.ManyToManyField(Criterion, blank=True, related_name="handoffs")
    from_team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="handoffs_out"
    )
    to_team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="handoffs_in"
    )
    handed_off_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["handed_off_at", "id"]
        constraints = ActorFields.actor_constraints("boards_handoff")

    def __str__(self) -> str:
        return f"{self.card} through {self.control_point}"


class SuppressedEmail(models.Model):
    """An e-mail address whose person asked to be forgotten: no card may carry it again.

    Kept as a SHA-256 digest of the address in lower case, never the address itself, so
    that the entry holds no personal data (the address is only recognised when someone
    types it again). One list for the whole installation: the person asked the
    organisation, not one stream.
    """

    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "suppressed e-mail"
        constraints = [
            models.CheckConstraint(
                condition=Q(digest__regex=r"^[0-9a-f]{64}$"),
                name="boards_suppressedemail_digest_format",
                violation_error_message="A suppression entry is a SHA-256 digest.",
            )
        ]

    def __str__(self) -> str:
        return f"suppressed e-mail {self.digest[:12]}…"
