"""Reads of the board, scoped to what the user may see.

The board is read in a fixed number of queries whatever the number of cards: the
columns, one aggregate for the counts, and one windowed query for the first page
of every column.
"""

from boards.selectors.archive import (
    ARCHIVE_PAGE_SIZE,
    ArchiveCursor,
    ArchivePage,
    ArchiveQuery,
    archive_filter_choices,
    archive_page,
)
from boards.selectors.board import (
    COLUMN_PAGE_SIZE,
    COLUMN_SHOWN_MAX,
    Board,
    BoardDelta,
    BoardFilters,
    CardCursor,
    ColumnView,
    CycleView,
    board_columns,
    board_delta,
    board_filter_choices,
    board_get,
    column_cards_page,
    column_heads,
)
from boards.selectors.cards import (
    card_in_stream,
    card_version,
    column_in_stream,
    control_point_between,
    move_destinations,
    move_menu,
)
from boards.selectors.changes import (
    BoardVersion,
    board_unchanged,
    board_version,
    board_version_published,
    cards_changed,
)
from boards.selectors.closing import (
    CLOSE_UNDO_WINDOW,
    Closing,
    card_closing,
    lost_reasons_offered,
)
from boards.selectors.history import (
    TIMELINE_PAGE_SIZE,
    Timeline,
    TimelineCursor,
    TimelineEntry,
    card_timeline,
)
from boards.selectors.privacy import CSV_HEADER as PROSPECT_CSV_HEADER
from boards.selectors.privacy import prospect_export, prospect_export_rows
from boards.selectors.streams import (
    card_form_choices,
    stream_and_card_column_for_actor,
    stream_channels,
    stream_cycles,
    stream_for_actor,
    stream_members,
    value_streams_for_actor,
    viewer_manages_stream,
)

__all__ = [
    "BoardDelta",
    "BoardVersion",
    "board_delta",
    "board_unchanged",
    "cards_changed",
    "card_version",
    "PROSPECT_CSV_HEADER",
    "prospect_export",
    "prospect_export_rows",
    "ARCHIVE_PAGE_SIZE",
    "CLOSE_UNDO_WINDOW",
    "ArchiveCursor",
    "ArchivePage",
    "ArchiveQuery",
    "Closing",
    "archive_filter_choices",
    "archive_page",
    "card_closing",
    "lost_reasons_offered",
    "card_form_choices",
    "COLUMN_PAGE_SIZE",
    "COLUMN_SHOWN_MAX",
    "CardCursor",
    "Board",
    "BoardFilters",
    "ColumnView",
    "CycleView",
    "board_columns",
    "board_filter_choices",
    "board_get",
    "board_version",
    "board_version_published",
    "card_in_stream",
    "card_timeline",
    "TIMELINE_PAGE_SIZE",
    "Timeline",
    "TimelineCursor",
    "TimelineEntry",
    "column_cards_page",
    "column_in_stream",
    "column_heads",
    "control_point_between",
    "move_destinations",
    "move_menu",
    "stream_and_card_column_for_actor",
    "stream_for_actor",
    "stream_channels",
    "stream_cycles",
    "stream_members",
    "value_streams_for_actor",
    "viewer_manages_stream",
]
