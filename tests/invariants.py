"""The board's invariants, read from the database: what no request, however malformed,
and no interleaving of requests may break. The fuzz test checks them after every
example; a load run can check them at its end.

- Every card is in one column of its own stream.
- Positions are unique among the open cards of a column.
- No column holds more open cards than its WIP limit unless a move into it was logged
  as an override (boards.WipOverride), or it held as many before its limit was lowered.
- The move log is chained per card: a card's first move enters the stream (from no
  column), each later one leaves the column the one before went to, and the last one
  went to the card's column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import Count, F

from boards.models import Card, CardMove, Column, Outcome, WipOverride


@dataclass(frozen=True)
class ColumnLoad:
    open_cards: int
    wip_limit: int | None


def column_loads() -> dict[int, ColumnLoad]:
    """Each column's open cards and WIP limit, by column id."""
    counts = dict(
        Card.objects.filter(outcome=Outcome.OPEN)
        .values("column_id")
        .annotate(n=Count("id"))
        .values_list("column_id", "n")
    )
    return {
        pk: ColumnLoad(counts.get(pk, 0), limit)
        for pk, limit in Column.objects.values_list("pk", "wip_limit")
    }


def board_invariant_violations(
    *, before: Mapping[int, ColumnLoad] | None = None, overrides_after: int = 0
) -> list[str]:
    """What breaks the board's invariants now, in words (empty: nothing).

    ``before``: the column loads at the start of what is checked (``column_loads()``):
    a column already over its limit then may stay so, as long as it takes no card more
    without an override. ``overrides_after``: the WipOverride rows already there then
    (their move id bound); only newer ones justify a column's growth.
    """
    problems: list[str] = []
    for card_id, column_id in Card.objects.exclude(
        value_stream_id=F("column__cycle__value_stream_id")
    ).values_list("pk", "column_id"):
        problems.append(f"card {card_id} is in column {column_id} of another stream")

    for row in (
        Card.objects.filter(outcome=Outcome.OPEN)
        .values("column_id", "position")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    ):
        problems.append(
            f"{row['n']} open cards share position {row['position']} in column {row['column_id']}"
        )

    overridden = set(
        WipOverride.objects.filter(move_id__gt=overrides_after).values_list(
            "move__to_column_id", flat=True
        )
    )
    for column_id, load in column_loads().items():
        if load.wip_limit is None or load.open_cards <= load.wip_limit:
            continue
        earlier = before.get(column_id) if before is not None else None
        if earlier is not None and load.open_cards <= earlier.open_cards:
            continue  # over since before (its limit lowered), and it took no card since
        if column_id in overridden:
            continue
        problems.append(
            f"column {column_id} holds {load.open_cards} open cards over its WIP limit of "
            f"{load.wip_limit} with no override logged"
        )

    cards = dict(Card.objects.values_list("pk", "column_id"))
    last_to: dict[int, int] = {}
    for card_id, from_column, to_column, kind in CardMove.objects.order_by(
        "card_id", "id"
    ).values_list("card_id", "from_column_id", "to_column_id", "kind"):
        if card_id not in last_to:
            if from_column is not None:
                problems.append(f"card {card_id}'s first move ({kind}) leaves column {from_column}")
        elif from_column != last_to[card_id]:
            problems.append(
                f"card {card_id}'s {kind} leaves column {from_column}, but its move before "
                f"went to column {last_to[card_id]}"
            )
        last_to[card_id] = to_column
    for card_id, to_column in last_to.items():
        if cards.get(card_id) != to_column:
            problems.append(
                f"card {card_id} is in column {cards.get(card_id)}, but its last move went "
                f"to column {to_column}"
            )
    return problems
