"""Edits of a card that leave it where it is: its facts and notes, blocked or not."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from boards.errors import InvalidMove
from boards.models import ActivityKind, Card
from boards.services.activity import _activity_record, _edit_changes
from boards.services.clock import event_time
from boards.services.locks import _check_version, _lock_card
from boards.services.privacy import email_suppression_check
from boards.services.rules import (
    card_channel_check,
    card_notes_check,
    card_owner_check,
    card_text_check,
    prospect_name_check,
)
from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.events import StreamChange, stream_changed
from vsm.transactions import locking_transaction

# The facts of a prospect an edit may change, in the order the audit row lists them.
EDITABLE_FIELDS = (
    "person_name",
    "company",
    "email",
    "channel_id",
    "owner_id",
    "estimated_value",
    "notes",
)


def card_set_blocked(
    *,
    card_id: int,
    blocked: bool,
    reason: str = "",
    actor: Actor,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> Card:
    """Block a card with a reason, or unblock it.

    Locks: the card. Raises: InvalidMove (no reason), CardNotFound, StaleBoard.
    Side effects: an audit row; an entry in the card's history when it is blocked
    (with the reason, also when only the reason changes) or unblocked (with the reason
    it had); when the card is blocked or unblocked (not when only the reason changes),
    "stream changed" (settings) after commit: the metrics count blocked cards.
    """
    at = event_time(at)
    reason = reason.strip()
    if blocked and not reason:
        raise InvalidMove("Say why the card is blocked.", field="reason")
    with locking_transaction():
        card = _lock_card(card_id)
        _check_version(card, expected_version)
        if card.is_blocked != blocked:
            stream_changed(card.value_stream_id, StreamChange.SETTINGS)
        if blocked and (not card.is_blocked or card.blocked_reason != reason):
            _activity_record(card=card, kind=ActivityKind.BLOCKED, actor=actor, at=at, text=reason)
        elif not blocked and card.is_blocked:
            _activity_record(
                card=card, kind=ActivityKind.UNBLOCKED, actor=actor, at=at, text=card.blocked_reason
            )
        card.is_blocked = blocked
        card.blocked_reason = reason if blocked else ""
        card.blocked_at = at if blocked else None
        card.version += 1
        card.updated_at = at
        card.save(
            update_fields=["is_blocked", "blocked_reason", "blocked_at", "version", "updated_at"]
        )
        audit_record(
            actor=actor,
            action="card.blocked" if blocked else "card.unblocked",
            stream_id=card.value_stream_id,
            target_type="card",
            target_id=card.pk,
            data={"version": card.version},
            at=at,
        )
    return card


def card_update(
    *,
    card_id: int,
    actor: Actor,
    expected_version: int | None = None,
    person_name: str,
    company: str,
    email: str,
    channel_id: int | None,
    owner_id: int | None,
    estimated_value: Decimal | int,
    notes: str,
    at: datetime | None = None,
) -> Card:
    """Edit a prospect's facts and notes (not its column: that is a move).

    A new owner must be a member of the card's stream, the channel one of its
    channels (active, unless the card already has it).
    ``notes``' line breaks are kept as LF (a browser posts CRLF), so saving the form
    unchanged changes nothing.
    Locks: the card. Raises: InvalidMove, CardNotFound, StaleBoard, EmailSuppressed (a new
    e-mail whose person asked to be forgotten).
    Side effects: an audit row naming the changed fields (not their values); when a
    field changed, an entry in the card's history with each changed field's label and
    its old and new value as the form shows them (an owner or channel by name).
    """
    at = event_time(at)
    prospect_name_check(person_name=person_name, company=company)
    card_text_check(person_name=person_name, company=company, email=email, notes=notes)
    card_notes_check(notes.replace("\r\n", "\n"))
    if Decimal(estimated_value) < 0:
        raise InvalidMove("An estimated value is 0 or more.", field="estimated_value")
    with locking_transaction():
        card = _lock_card(card_id)
        _check_version(card, expected_version)
        stream_id = card.value_stream_id
        # An owner who has left the stream's teams stays until someone changes it: an
        # edit of the notes must not fail on who owns the card.
        if owner_id != card.owner_id:
            card_owner_check(stream_id=stream_id, owner_id=owner_id)
        card_channel_check(
            stream_id=stream_id, channel_id=channel_id, current_channel_id=card.channel_id
        )
        if email.strip().casefold() != card.email.strip().casefold():
            email_suppression_check(email)
        before = {field: getattr(card, field) for field in EDITABLE_FIELDS}
        card.person_name = person_name.strip()
        card.company = company.strip()
        card.email = email.strip()
        card.channel_id = channel_id
        card.owner_id = owner_id
        card.estimated_value = Decimal(estimated_value)
        card.notes = notes.replace("\r\n", "\n")
        after = {field: getattr(card, field) for field in EDITABLE_FIELDS}
        changed = [field for field in EDITABLE_FIELDS if after[field] != before[field]]
        card.version += 1
        card.updated_at = at
        card.save()
        if changed:
            _activity_record(
                card=card,
                kind=ActivityKind.EDIT,
                actor=actor,
                at=at,
                changes=_edit_changes(before, after),
            )
        audit_record(
            actor=actor,
            action="card.updated",
            stream_id=stream_id,
            target_type="card",
            target_id=card.pk,
            data={
                "version": card.version,
                "changed_fields": len(changed),
                **{f"changed_{field}": True for field in changed},
            },
            at=at,
        )
    return card
