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
