"""Closing a deal, as the card page shows it: the stream's lost reasons to choose from,
and for a closed card how and why it was closed, and whether the viewer may undo it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from boards.models import Card, CardLoss, CardMove, MoveKind
from boards.services.moves import CLOSE_UNDO_WINDOW, close_undoable_by
from vsm.actors import Actor
from vsm.models import LostReason, ValueStream

# Whether a close may be undone is card_reopen's rule (its undo): the page offers "Undo"
# exactly when the service would take it, "Reopen" otherwise.
__all__ = ["CLOSE_UNDO_WINDOW", "Closing", "card_closing", "lost_reasons_offered"]


def lost_reasons_offered(*, stream: ValueStream) -> QuerySet[LostReason]:
    """The stream's active lost reasons, in the order its admins gave them."""
    return _offered(stream.pk)


def _offered(stream_id: int) -> QuerySet[LostReason]:
    return LostReason.objects.filter(value_stream_id=stream_id, is_active=True).order_by(
        "order", "name"
    )


@dataclass(frozen=True)
class Closing:
    """``reasons``: what an open card may be lost for (the stream's active list).
    ``move`` and ``loss``: a closed card's close (its last won or lost move) and why it
    was lost (None: no reason recorded). ``undo_until``: until when the viewer, who
    closed it, is offered to undo it (None: not theirs to undo, or too late)."""

    card: Card
    reasons: list[LostReason] = field(default_factory=list)
    move: CardMove | None = None
    loss: CardLoss | None = None
    undo_until: datetime | None = None

    @property
    def can_undo(self) -> bool:
        return self.undo_until is not None


def card_closing(*, card: Card, actor: Actor, now: datetime | None = None) -> Closing:
    """How the card page offers closing ``card`` (open) or reopening it (closed). One
    query."""
    if card.is_open:
        return Closing(card=card, reasons=list(_offered(card.value_stream_id)))
    move = (
        CardMove.objects.filter(card=card, kind__in=[MoveKind.WON, MoveKind.LOST])
        .select_related("actor", "loss__reason", "to_column__cycle")
        .order_by("-moved_at", "-id")
        .first()
    )
    if move is None:  # closed by a row written directly (a factory), without its move
        return Closing(card=card)
    try:
        loss: CardLoss | None = move.loss
    except CardLoss.DoesNotExist:
        loss = None
    now = now or timezone.now()
    if not close_undoable_by(move=move, actor=actor, at=now):
        return Closing(card=card, move=move, loss=loss)
    return Closing(card=card, move=move, loss=loss, undo_until=move.moved_at + CLOSE_UNDO_WINDOW)
