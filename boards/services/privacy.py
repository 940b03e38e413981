"""A prospect's personal data: erasure on request, suppression, and retention.

What is personal about a prospect is text: the card's name, company, e-mail, notes and
block reason, and the free text written about it since (comments, the old and new
values of edits, lost notes, WIP override reasons). Erasure blanks all of it and keeps
every event and number (moves, times, channel, value, outcome), so the metrics stay
right and the move log stays append-only: its free text lives beside it (``CardLoss``,
``WipOverride``), which is what erasure changes. The audit log holds ids and numbers
only and needs no erasure (``vsm.models.AuditEntry``).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from boards.errors import CardNotFound
from boards.models import (
    ActivityKind,
    Card,
    CardActivity,
    CardLoss,
    Outcome,
    SuppressedEmail,
    WipOverride,
)
from boards.services.clock import event_time
from boards.services.locks import _check_version, _lock_card
from vsm.access import stream_steer_check, streams_visible_to
from vsm.actors import Actor, SystemActor
from vsm.audit import audit_record
from vsm.errors import InvalidInput
from vsm.transactions import locking_transaction

# What an erased card is called on the board and in the archive: not personal, and
# says what happened.
ERASED_NAME = "Erased prospect"
ERASED_BLOCK_REASON = "(erased)"


class EmailSuppressed(InvalidInput):
    """The person with this e-mail address asked to be forgotten."""

    code = "email_suppressed"
    default_message = (
        "This e-mail address belongs to someone who asked to be forgotten; "
        "it cannot be added again."
    )


def email_canonical(email: str) -> str:
    """An e-mail address as one mailbox: the forms a mail system delivers alike are
    one. Compatibility forms folded (NFKC: a full-width "ｅ" is "e"), invisible format
    characters dropped (a zero-width space), a quoted local part unquoted when the
    quotes add nothing ("a.b"@x is a.b@x), trimmed and in lower case."""
    text = unicodedata.normalize("NFKC", email)
    text = "".join(char for char in text if unicodedata.category(char) != "Cf").strip()
    local, at, domain = text.rpartition("@")
    if at and len(local) > 1 and local[0] == local[-1] == '"':
        unquoted = local[1:-1]
        if re.fullmatch(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+", unquoted):
            local = unquoted
    return f"{local}{at}{domain}".casefold()


def email_digest(email: str) -> str:
    """The SHA-256 hex digest of an e-mail address's canonical form."""
    return hashlib.sha256(email_canonical(email).encode()).hexdigest()


def email_suppression_check(email: str) -> None:
    """Raises: EmailSuppressed (field "email") when ``email`` was erased on request."""
    if email.strip() and SuppressedEmail.objects.filter(digest=email_digest(email)).exists():
        raise EmailSuppressed(field="email")


@dataclass(frozen=True)
class Erasure:
    """What one erasure blanked: counts, for the audit log and the person's answer."""

    card_id: int
    comments: int
    edits: int
    blockings: int
    lost_notes: int
    override_reasons: int
    suppressed: bool


def prospect_erase(
    *,
    card_id: int,
    actor: Actor,
    expected_version: int | None = None,
    suppress: bool = True,
    at: datetime | None = None,
) -> Erasure:
    """Erase a prospect's personal data from its card and everything written about it.

    The card is renamed ``ERASED_NAME`` and loses its company, e-mail and notes (a
    blocked card keeps being blocked, with the reason ``ERASED_BLOCK_REASON``); its
    comments, edits, block reasons, lost note and WIP override reasons are blanked and
    stamped ``erased_at``. Its column, moves, times, channel, owner, value and outcome
    stay. With ``suppress`` (the default) its e-mail is added to the suppression list.
    Only an admin or the stream's manager may (``vsm.access.stream_steer_check``).
    Erasing twice changes nothing more.
    Locks: the card. Raises: CardNotFound, PermissionRefused, StaleBoard, Busy.
    Side effects: an audit row "card.erased" with the counts (no text); the card's
    version and ``updated_at`` change, so open boards show the neutral name.
    """
    at = event_time(at)
    with locking_transaction():
        card = _lock_card(card_id)
        # Out of the actor's sight is answered as missing (vsm.access).
        stream = streams_visible_to(actor).filter(pk=card.value_stream_id).first()
        if stream is None:
            raise CardNotFound(data={"card_id": card_id})
        stream_steer_check(actor=actor, stream=stream, what="erase a prospect's personal data")
        _check_version(card, expected_version)
        erasure = _erase_locked(card, at=at, suppress=suppress)
        _erasure_audit(actor=actor, card=card, erasure=erasure, at=at)
    return erasure


def _erasure_audit(*, actor: Actor, card: Card, erasure: Erasure, at: datetime) -> None:
    audit_record(
        actor=actor,
        action="card.erased",
        stream_id=card.value_stream_id,
        target_type="card",
        target_id=card.pk,
        data={
            "comments": erasure.comments,
            "edits": erasure.edits,
            "blockings": erasure.blockings,
            "lost_notes": erasure.lost_notes,
            "override_reasons": erasure.override_reasons,
            "suppressed": erasure.suppressed,
        },
        at=at,
    )


def _erase_locked(card: Card, *, at: datetime, suppress: bool) -> Erasure:
    """The erasure itself, under the card's lock, in the caller's transaction."""
    suppressed = False
    if suppress and card.email.strip():
        SuppressedEmail.objects.get_or_create(digest=email_digest(card.email))
        suppressed = True
    activity = CardActivity.objects.filter(card=card, erased_at__isnull=True)
    counts = {
        kind: activity.filter(kind=kind).update(text="", changes=[], erased_at=at)
        for kind in (ActivityKind.COMMENT, ActivityKind.EDIT)
    }
    # Block and unblock entries keep that they happened; their reason is text.
    blockings = activity.filter(kind__in=[ActivityKind.BLOCKED, ActivityKind.UNBLOCKED]).update(
        text="", erased_at=at
    )
    lost_notes = (
        CardLoss.objects.filter(move__card=card, erased_at__isnull=True)
        .exclude(note="")
        .update(note="", erased_at=at)
    )
    override_reasons = WipOverride.objects.filter(move__card=card, erased_at__isnull=True).update(
        reason="", erased_at=at
    )
    # The admin's log names what it changed by its name ("Ada Keller (Nordwerk)"):
    # the only other place the card's name is kept.
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Card), object_id=str(card.pk)
    ).exclude(object_repr=ERASED_NAME).update(object_repr=ERASED_NAME)
    if card.erased_at is None or card.person_name != ERASED_NAME:
        card.person_name = ERASED_NAME
        card.company = ""
        card.email = ""
        card.notes = ""
        if card.is_blocked:
            card.blocked_reason = ERASED_BLOCK_REASON
        card.erased_at = at
        card.version += 1
        card.updated_at = at
        card.save(
            update_fields=[
                "person_name",
                "company",
                "email",
                "notes",
                "blocked_reason",
                "erased_at",
                "version",
                "updated_at",
            ]
        )
    return Erasure(
        card_id=card.pk,
        comments=counts[ActivityKind.COMMENT],
        edits=counts[ActivityKind.EDIT],
        blockings=blockings,
        lost_notes=lost_notes,
        override_reasons=override_reasons,
        suppressed=suppressed,
    )


RETENTION_BATCH = 200


def closed_prospects_erase(
    *, retention_days: int, now: datetime | None = None, limit: int | None = None
) -> int:
    """Erase the personal data of cards closed (won or lost) more than
    ``retention_days`` days ago and not erased yet; the system does it, without
    suppressing their e-mails (nobody asked to be forgotten).

    Reads ``RETENTION_BATCH`` cards at a time by id, and erases each in its own
    transaction so that a board is never held up; stops after ``limit`` erasures (None:
    all); returns how many were erased.
    Raises: ValueError when ``retention_days`` is below 1; Busy (from a card locked
    too long: the next run takes it).
    Side effects: an audit row "card.erased" per card, by the system ("retention").
    """
    if retention_days < 1:
        raise ValueError("retention_days is at least 1")
    cutoff = (now or timezone.now()) - timedelta(days=retention_days)
    actor = SystemActor("retention")
    erased = 0
    after_id = 0
    while True:
        due = list(
            Card.objects.filter(
                pk__gt=after_id,
                outcome__in=[Outcome.WON, Outcome.LOST],
                closed_at__lt=cutoff,
                erased_at__isnull=True,
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:RETENTION_BATCH]
        )
        if not due:
            return erased
        for card_id in due:
            with contextlib.suppress(CardNotFound):  # deleted meanwhile
                erased += _retention_erase(card_id=card_id, cutoff=cutoff, actor=actor)
            if limit is not None and erased >= limit:
                return erased
        after_id = due[-1]


def _retention_erase(*, card_id: int, cutoff: datetime, actor: Actor) -> int:
    """Erase one card if, under its lock, it is still closed before ``cutoff`` and not
    erased (it may have been reopened meanwhile): 1 if erased, else 0."""
    at = timezone.now()
    with locking_transaction():
        card = _lock_card(card_id)
        if card.is_open or card.erased_at is not None or not card.closed_at:
            return 0
        if card.closed_at >= cutoff:
            return 0
        erasure = _erase_locked(card, at=at, suppress=False)
        _erasure_audit(actor=actor, card=card, erasure=erasure, at=at)
    return 1


def prospect_export_audit(*, card_id: int, actor: Actor) -> None:
    """Check that ``actor`` may export the prospect of ``card_id`` and record that it
    did (a person's data leaving the product is worth knowing about).

    Only an admin or the stream's manager may. Raises: CardNotFound (missing or out of
    sight), PermissionRefused. Side effects: an audit row "card.exported".
    """
    stream_id = Card.objects.filter(pk=card_id).values_list("value_stream_id", flat=True).first()
    stream = streams_visible_to(actor).filter(pk=stream_id).first() if stream_id else None
    if stream is None:
        raise CardNotFound(data={"card_id": card_id})
    stream_steer_check(actor=actor, stream=stream, what="export a prospect's personal data")
    audit_record(
        actor=actor,
        action="card.exported",
        stream_id=stream.pk,
        target_type="card",
        target_id=card_id,
    )
