"""Refusals of the board, on the domain error base of ``vsm.errors``.

Messages are true for any caller; a screen adds what it now shows.
"""

from __future__ import annotations

from vsm.errors import Conflict, InvalidInput, NotFound, Stale


class WipLimitReached(Conflict):
    """The target column holds as many open cards as its WIP limit allows."""

    code = "wip_limit_reached"

    def __init__(self, *, column_id: int, column_name: str, count: int, limit: int) -> None:
        self.column_id = column_id
        self.column_name = column_name
        self.count = count
        self.limit = limit
        super().__init__(
            f"{column_name} is at its WIP limit, {count}/{limit}",
            data={"column_id": column_id, "count": count, "limit": limit},
        )


class StaleBoard(Stale):
    """The caller acted on a card or column someone else has changed meanwhile."""

    default_message = "Someone else changed this card meanwhile; nothing was changed."


class ControlPointRequired(Conflict):
    """A card crosses from one cycle to another only through their control point."""

    code = "control_point_required"


class CriteriaNotMet(Conflict):
    """A required criterion of the control point's checklist is not ticked."""

    code = "criteria_not_met"


class InvalidMove(InvalidInput):
    """The move or edit cannot be carried out as asked (a closed card, a bad column)."""

    code = "invalid_move"


class CardNotFound(NotFound):
    code = "card_not_found"
    default_message = "No such card in this value stream."


class ColumnNotFound(NotFound):
    code = "column_not_found"
    default_message = "No such column in this value stream."


class LostReasonRefused(InvalidInput):
    """Why a deal was lost was refused: a form shows it on its lost reason field."""

    code = "lost_reason_refused"


class LostReasonRequired(LostReasonRefused):
    """A deal is lost in a stream that keeps a list of lost reasons: say why."""

    code = "lost_reason_required"
    default_message = "Say why the deal was lost: choose a reason, write a note, or both."


class LostReasonUnknown(LostReasonRefused):
    """The lost reason named is not one of the card's stream's reasons."""

    code = "lost_reason_unknown"
    default_message = "Choose one of this value stream's lost reasons."


class LostReasonInactive(LostReasonRefused):
    """The lost reason named is no longer offered by the stream's admins."""

    code = "lost_reason_inactive"
    default_message = "That lost reason is no longer offered; choose another."


class UndoExpired(Conflict):
    """Only the close just made can be undone, by whoever made it, for a few minutes."""

    code = "undo_expired"
    default_message = "Too late to undo: reopen the card instead."
