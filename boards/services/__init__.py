"""Every write on the board.

One write path per fact: every way a card changes column (create, drag, keyboard,
handoff, won/lost, reopen, admin) ends in ``_place_card``, which holds the WIP rule,
the position rule and the move log, under the column locks.
"""

from boards.services.activity import card_comment_add
from boards.services.cards import card_set_blocked, card_update
from boards.services.columns import (
    WIP_LIMIT_MAX,
    column_create,
    column_delete,
    column_set_wip_limit,
    column_update,
)
from boards.services.moves import (
    MoveResult,
    card_close,
    card_create,
    card_create_check,
    card_move,
    card_reopen,
    handoff_pass,
)
from boards.services.positions import POSITION_GAP
from boards.services.privacy import (
    EmailSuppressed,
    Erasure,
    closed_prospects_erase,
    email_suppression_check,
    prospect_erase,
    prospect_export_audit,
)
from boards.services.streams import (
    DEFAULT_COLUMNS,
    DEFAULT_CRITERIA,
    DEFAULT_CYCLES,
    value_stream_create,
)

__all__ = [
    "EmailSuppressed",
    "Erasure",
    "closed_prospects_erase",
    "email_suppression_check",
    "prospect_erase",
    "prospect_export_audit",
    "DEFAULT_COLUMNS",
    "DEFAULT_CRITERIA",
    "DEFAULT_CYCLES",
    "POSITION_GAP",
    "WIP_LIMIT_MAX",
    "MoveResult",
    "card_close",
    "card_comment_add",
    "card_create",
    "card_create_check",
    "card_move",
    "card_reopen",
    "card_set_blocked",
    "card_update",
    "column_create",
    "column_delete",
    "column_set_wip_limit",
    "column_update",
    "handoff_pass",
    "value_stream_create",
]
