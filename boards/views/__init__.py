from boards.views.archive import archive
from boards.views.board import board, board_poll, column_more, column_wip_limit, stream_list
from boards.views.cards import (
    card_block,
    card_close,
    card_create,
    card_detail,
    card_edit,
    card_handoff,
    card_move,
    card_move_menu,
    card_reopen,
)
from boards.views.history import card_comment
from boards.views.privacy import card_personal_data, card_personal_data_export

__all__ = [
    "archive",
    "board",
    "board_poll",
    "card_block",
    "card_close",
    "card_comment",
    "card_create",
    "card_detail",
    "card_edit",
    "card_handoff",
    "card_move",
    "card_move_menu",
    "card_personal_data",
    "card_personal_data_export",
    "card_reopen",
    "column_more",
    "column_wip_limit",
    "stream_list",
]
