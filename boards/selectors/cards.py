"""One card: its details, its move log, and where it may be sent."""

from __future__ import annotations

from boards.errors import CardNotFound, ColumnNotFound
from boards.models import Card, CardMove, Column
from pdca.models import ControlPoint, Cycle
from vsm.models import ValueStream


def card_in_stream(*, stream: ValueStream, card_id: int) -> Card:
    """A card of a stream the actor was given access to.

    Raises: CardNotFound when it belongs elsewhere or does not exist.
    """
    card = (
        Card.objects.select_related("column__cycle", "channel", "owner", "owning_team")
        .filter(pk=card_id, value_stream=stream)
        .first()
    )
    if card is None:
        raise CardNotFound(data={"card_id": card_id, "stream_id": stream.pk})
    return card


def card_history(*, card: Card) -> list[CardMove]:
    """The card's whole move log, oldest first, with the handoffs' checklists."""
    return list(
        CardMove.objects.filter(card=card)
        .select_related(
            "from_column__cycle",
            "to_column__cycle",
            "actor",
            "handoff__to_team",
            "wip_override",
        )
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


def column_in_stream(*, stream: ValueStream, column_id: int) -> Column:
    """A column of the stream, with its cycle. Raises: ColumnNotFound."""
    column = (
        Column.objects.select_related("cycle").filter(pk=column_id, cycle__value_stream=stream)
    ).first()
    if column is None:
        raise ColumnNotFound(data={"column_id": column_id, "stream_id": stream.pk})
    return column


def control_point_between(*, card: Card, to_column: Column) -> ControlPoint | None:
    return (
        ControlPoint.objects.filter(
            from_cycle_id=card.column.cycle_id, to_cycle_id=to_column.cycle_id
        )
        .select_related("from_cycle", "to_cycle", "receiving_team")
        .prefetch_related("criteria")
        .first()
    )
