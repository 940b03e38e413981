"""The metrics fold's per-move logic and its writes (used by metrics.services).

A move is a tuple of MOVE_FIELDS. ``Fold.apply`` advances one card's flow state and
gathers the deltas: finished intervals, first reaches, day buckets and all-time
counters; ``Fold.write`` writes them in a few statements. The incremental advance and
the rebuild run the very same ``apply``, so their numbers are identical by
construction; only the writing differs (COPY for a rebuild on PostgreSQL).
"""

from metrics.fold.core import Fold, fold_moves, layout_key, stream_layouts
from metrics.fold.rows import MOVE_FIELDS, CardState, read_moves
from metrics.fold.writes import AGGREGATES, insert_rows, upsert_add

__all__ = [
    "AGGREGATES",
    "MOVE_FIELDS",
    "CardState",
    "Fold",
    "fold_moves",
    "insert_rows",
    "layout_key",
    "read_moves",
    "stream_layouts",
    "upsert_add",
]
