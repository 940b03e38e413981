"""Every aggregate table of a stream, read for comparison (incremental against rebuilt)."""

from __future__ import annotations

from metrics.fold.rows import _CARD_CYCLE_FIELDS, _STATE_FIELDS
from metrics.models import (
    COLUMN_DAY_COUNTERS,
    CardCycle,
    CardFlowState,
    ChannelDay,
    ColumnDay,
    ColumnFlowState,
    CycleDay,
    FlowDuration,
)


def _sort_key(row: tuple) -> tuple:
    return tuple((value is not None, value if value is not None else 0) for value in row)


def _rows(model, stream_id: int, *fields: str) -> list[tuple]:
    rows = model.objects.filter(value_stream_id=stream_id).values_list(*fields)
    return sorted(rows, key=_sort_key)


def aggregate_rows(stream_id: int) -> dict[str, list[tuple]]:
    """Every aggregate table of the stream, by meaningful fields (no surrogate ids)."""
    return {
        "column_days": _rows(ColumnDay, stream_id, "column_id", "day", *COLUMN_DAY_COUNTERS),
        "cycle_days": _rows(
            CycleDay, stream_id, "cycle_id", "day", "arrivals", "departures", "won", "lost"
        ),
        "channel_days": _rows(
            ChannelDay, stream_id, "channel_key", "day", "arrivals", "won", "won_value", "lost"
        ),
        "card_cycles": _rows(CardCycle, stream_id, *_CARD_CYCLE_FIELDS),
        "durations": _rows(
            FlowDuration,
            stream_id,
            "move_id",
            "kind",
            "card_id",
            "column_id",
            "cycle_id",
            "channel_key",
            "started_at",
            "ended_at",
            "abandoned",
            "seconds",
        ),
        "states": _rows(CardFlowState, stream_id, *_STATE_FIELDS),
        "column_timeline": _rows(
            ColumnFlowState, stream_id, "column_id", "wip", "full_seconds_total", "timeline_at"
        ),
    }
