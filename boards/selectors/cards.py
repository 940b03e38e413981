"""One card: its details, and where it may be sent (its timeline: boards.selectors.history)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from boards.errors import CardNotFound, ColumnNotFound
from boards.models import Card, Column, Outcome
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


def card_version(*, stream: ValueStream, card_id: int) -> int | None:
    """The card's current version (None: no such card in the stream): what an offer to
    act on it again (the WIP override) must name, so it acts on what the user sees."""
    return (
        Card.objects.filter(pk=card_id, value_stream=stream)
        .values_list("version", flat=True)
        .first()
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


@dataclass(frozen=True)
class Destination:
    """A column the "Move to..." dialog offers, with its open cards."""

    column: Column
    open_count: int
    here: bool = False

    @property
    def full(self) -> bool:
        """At its WIP limit: a move there is refused unless a manager overrides it
        (the rule of boards.services.placement._check_wip)."""
        limit = self.column.wip_limit
        return limit is not None and self.open_count >= limit


@dataclass(frozen=True)
class DestinationCycle:
    cycle: Cycle
    control_point: ControlPoint | None
    destinations: list[Destination]


def move_menu(*, card: Card) -> list[DestinationCycle]:
    """Where the "Move to..." dialog offers to send a card (``move_destinations``), each
    column with its open cards so the dialog marks the full ones. Three queries."""
    cycles = move_destinations(card=card)
    column_ids = [column.pk for _, columns, _ in cycles for column in columns]
    counts = dict(
        Card.objects.filter(column_id__in=column_ids, outcome=Outcome.OPEN)
        .order_by()
        .values_list("column_id")
        .annotate(n=Count("id"))
    )
    return [
        DestinationCycle(
            cycle=cycle,
            control_point=control_point,
            destinations=[
                Destination(
                    column=column,
                    open_count=counts.get(column.pk, 0),
                    here=column.pk == card.column_id,
                )
                for column in columns
            ],
        )
        for cycle, columns, control_point in cycles
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
