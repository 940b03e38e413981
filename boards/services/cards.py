"""Edits of a card that leave it where it is: its facts and notes, blocked or not."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from boards.errors import InvalidMove
from boards.models import Card
from boards.services.clock import event_time
from boards.services.locks import _check_version
from metrics.tasks import enqueue_refresh
from vsm.models import Channel


def card_set_blocked(
    *,
    card_id: int,
    blocked: bool,
    reason: str = "",
    actor,
    expected_version: int | None = None,
    at: datetime | None = None,
) -> Card:
    """Block a card with a reason, or unblock it.

    Locks: the card. Raises: InvalidMove (no reason), StaleBoard.
    Side effects: when the card is blocked or unblocked (not when only the reason
    changes), asks for a fresh metrics document after commit (it counts blocked cards).
    """
    at = event_time(at)
    reason = reason.strip()
    if blocked and not reason:
        raise InvalidMove("Say why the card is blocked.")
    with transaction.atomic():
        card = Card.objects.select_for_update(no_key=True).get(pk=card_id)
        _check_version(card, expected_version)
        if card.is_blocked != blocked:
            enqueue_refresh(card.value_stream_id)
        card.is_blocked = blocked
        card.blocked_reason = reason if blocked else ""
        card.blocked_at = at if blocked else None
        card.version += 1
        card.updated_at = at
        card.save(
            update_fields=["is_blocked", "blocked_reason", "blocked_at", "version", "updated_at"]
        )
    return card


def card_update(
    *,
    card_id: int,
    actor,
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

    Locks: the card. Raises: InvalidMove, StaleBoard.
    """
    at = event_time(at)
    if not (person_name.strip() or company.strip()):
        raise InvalidMove("A prospect needs a person or a company.")
    with transaction.atomic():
        card = Card.objects.select_for_update(no_key=True).get(pk=card_id)
        _check_version(card, expected_version)
        if (
            channel_id is not None
            and not Channel.objects.filter(
                pk=channel_id, value_stream_id=card.value_stream_id
            ).exists()
        ):
            raise InvalidMove("That channel does not belong to this value stream.")
        card.person_name = person_name.strip()
        card.company = company.strip()
        card.email = email.strip()
        card.channel_id = channel_id
        card.owner_id = owner_id
        card.estimated_value = estimated_value
        card.notes = notes
        card.version += 1
        card.updated_at = at
        card.save()
    return card
