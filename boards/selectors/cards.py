"""One card: its details, its move log, and where it may be sent."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from boards.models import Card, CardMove, Column
from pdca.models import ControlPoint, Cycle
from vsm.models import ValueStream


def card_for_user(*, stream: ValueStream, card_id: int) -> Card:
    """A card of a stream the user can already see; 404 when it belongs elsewhere."""
    return get_object_or_404(
        Card.objects.select_related("column__cycle", "channel", "owner", "owning_team"),
        pk=card_id,
        value_stream=stream,
    )


def card_history(*, card: Card) -> list[CardMove]:
    """The card's whole move log, oldest first, with the handoffs' checklists."""
    return list(
        CardMove.objects.filter(card=card)
        .select_related("from_column__cycle", "to_column__cycle", "actor", "handoff__to_team")
        .prefetch_related("handoff__criteria_met")
        .order_by("moved_at", "id")
    )


def move_destinations(*, card: Card) -> list[tuple[Cycle, list[Column], ControlPoint | None]]:
    """Where a card may be sent: its own cycle's columns, and each next cycle through its
    control point."""
    columns = list(
        Column.objects.filter(cycle__value_stream_id=card.value_stream_id)
        .select_related("cycle")
        .order_by("cycle__order", "order")
    )
    control_points = {
        cp.to_cycle_id: cp for cp in ControlPoint.objects.filter(from_cycle_id=card.column.cycle_id)
    }
    by_cycle: dict[int, tuple[Cycle, list[Column], ControlPoint | None]] = {}
    for column in columns:
        if column.cycle_id not in by_cycle:
            by_cycle[column.cycle_id] = (column.cycle, [], control_points.get(column.cycle_id))
        by_cycle[column.cycle_id][1].append(column)
    return [
        entry
        for cycle_id, entry in by_cycle.items()
        if cycle_id == card.column.cycle_id or entry[2] is not None
    ]


def control_point_between(*, card: Card, to_column: Column) -> ControlPoint | None:
    return (
        ControlPoint.objects.filter(
            from_cycle_id=card.column.cycle_id, to_cycle_id=to_column.cycle_id
        )
        .select_related("from_cycle", "to_cycle", "receiving_team")
        .prefetch_related("criteria")
        .first()
    )
