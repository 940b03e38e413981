"""The tuples the fold reads and writes: moves, intervals, first reaches, card states."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from operator import attrgetter

from django.db.models import Q

from boards.models import CardMove, MoveKind
from metrics.models import DurationKind

# A move as the fold reads it: a tuple of these fields, in this order.
MOVE_FIELDS = (
    "id",
    "card_id",
    "kind",
    "to_column_id",
    "moved_at",
    "channel_id",
    "estimated_value",
)
_ENTER, _MOVE, _HANDOFF, _WON, _LOST, _REOPEN = (
    str(MoveKind.ENTER),
    str(MoveKind.MOVE),
    str(MoveKind.HANDOFF),
    str(MoveKind.WON),
    str(MoveKind.LOST),
    str(MoveKind.REOPEN),
)
_COLUMN, _CYCLE, _LEAD = str(DurationKind.COLUMN), str(DurationKind.CYCLE), str(DurationKind.LEAD)

_DURATION_FIELDS = (
    "value_stream_id",
    "card_id",
    "kind",
    "column_id",
    "cycle_id",
    "channel_key",
    "started_at",
    "ended_at",
    "seconds",
    "move_id",
    "abandoned",
)
_STATE_FIELDS = (
    "card_id",
    "value_stream_id",
    "last_move_id",
    "channel_id",
    "column_id",
    "cycle_id",
    "is_open",
    "column_entered_at",
    "cycle_entered_at",
    "stream_entered_at",
    "closed_kind",
    "closed_at",
    "closed_value",
    "closed_move_id",
    "next_full_mark",
    "column_entered_wip",
)
# A CardCycle row, as the fold keeps it: a list in this order (mutable, written whole).
_CARD_CYCLE_FIELDS = (
    "value_stream_id",
    "card_id",
    "cycle_id",
    "channel_key",
    "entered_at",
    "reached_mask",
    "outcome",
    "closed_at",
)
CC_MASK, CC_OUTCOME, CC_CLOSED_AT = 5, 6, 7


class CardState:
    """A card's flow state (a CardFlowState row) plus its passages through cycles
    (CardCycle rows as lists in _CARD_CYCLE_FIELDS order, by cycle id)."""

    __slots__ = (*_STATE_FIELDS, "cycles")

    # The slots, typed (set by __init__ from a row in _STATE_FIELDS order).
    card_id: int
    value_stream_id: int
    last_move_id: int
    channel_id: int | None
    column_id: int
    cycle_id: int
    is_open: bool
    column_entered_at: datetime
    cycle_entered_at: datetime
    stream_entered_at: datetime
    closed_kind: str
    closed_at: datetime | None
    closed_value: Decimal | None
    closed_move_id: int | None
    next_full_mark: int | None
    column_entered_wip: int | None

    def __init__(self, row: tuple) -> None:
        for name, value in zip(_STATE_FIELDS, row, strict=True):
            setattr(self, name, value)
        self.cycles: dict[int, list] = {}

    @property
    def channel_key(self) -> int:
        return self.channel_id or 0

    def row(self) -> tuple:
        """The CardFlowState row, in _STATE_FIELDS order."""
        return _state_row(self)


_state_row = attrgetter(*_STATE_FIELDS)


def read_moves(
    stream_id: int, *, filter_q: Q | None = None, limit: int | None = None, **filters
) -> list[tuple]:
    """Moves of the stream as tuples in MOVE_FIELDS order, by id."""
    moves = (
        CardMove.objects.filter(value_stream_id=stream_id, **filters)
        .filter(filter_q or Q())
        .order_by("id")
        .values_list(*MOVE_FIELDS)
    )
    return list(moves[:limit] if limit else moves)
