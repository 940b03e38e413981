"""Card order inside a column: gapped integer positions, computed under the column lock."""

from __future__ import annotations

from django.db import connection
from django.db.models import Max, OuterRef, QuerySet, Subquery

from boards.errors import StaleBoard
from boards.models import Card, Column, Outcome

# Room for 20 drops into the same gap before the column is renumbered (positions are
# 64-bit: a column could take 2**43 cards appended at its end).
POSITION_GAP = 2**20


def _open_cards(column: Column) -> QuerySet[Card]:
    return Card.objects.filter(column=column, outcome=Outcome.OPEN)


# Plain SQL: the ORM cannot update from a window function, and the CASE with one
# branch per card it would take instead cost 130-170 ms of Python at 700 cards.
# UPDATE ... FROM needs SQLite 3.33 or later.
_SHIFT_BELOW_ZERO_AND_ALL = """
    UPDATE "boards_card" SET "position" = "position" - (
        SELECT MAX("position") - MIN(CASE WHEN "position" < 0 THEN "position" ELSE 0 END) + 1
        FROM "boards_card" WHERE "column_id" = %s AND "outcome" = %s
    )
    WHERE "column_id" = %s AND "outcome" = %s
"""
_SPREAD_BY_RANK = """
    UPDATE "boards_card" SET "position" = ranked."card_rank" * %s
    FROM (
        SELECT "id", ROW_NUMBER() OVER (ORDER BY "position", "id") AS "card_rank"
        FROM "boards_card" WHERE "column_id" = %s AND "outcome" = %s
    ) AS ranked
    WHERE "boards_card"."id" = ranked."id"
"""


def _renumber(column: Column) -> None:
    """Spread the open cards of a locked column to evenly gapped positions, keeping their order.

    Two statements, because the unique (column, position) index is checked row by row:
    first shift every position below both zero and the lowest current one (a uniform
    shift keeps them distinct and clear of every current and every new position), then
    write the new positives from each card's rank by (position, id). Positions can be
    zero or negative (drops on top of the column), so flipping signs would collide with
    a current positive position.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _SHIFT_BELOW_ZERO_AND_ALL, [column.pk, Outcome.OPEN, column.pk, Outcome.OPEN]
        )
        cursor.execute(_SPREAD_BY_RANK, [POSITION_GAP, column.pk, Outcome.OPEN])


def _position_in(
    column: Column,
    *,
    moving_card_id: int | None,
    after_card_id: int | None,
    before_card_id: int | None,
) -> int:
    """The position for a card placed between the neighbours the client names.

    ``after_card_id`` is the card just above the drop point, ``before_card_id`` the one
    just below; neither means the end of the column. The column must be locked.
    Raises: StaleBoard when a named neighbour is no longer open in this column.
    """
    # order_by(): Card.Meta.ordering would join column, cycle and stream into every read.
    others = _open_cards(column).order_by()
    if moving_card_id:
        others = others.exclude(pk=moving_card_id)

    def neighbour_and_next(card_id: int, *, downwards: bool) -> tuple[int, int | None]:
        """A named neighbour's position and the next position past it, in one statement.

        ``downwards``: the next one below the neighbour, else the next one above it;
        None when there is none.
        """
        if downwards:
            beyond = others.filter(position__gt=OuterRef("position")).order_by("position")
        else:
            beyond = others.filter(position__lt=OuterRef("position")).order_by("-position")
        row = (
            others.filter(pk=card_id)
            .annotate(next_position=Subquery(beyond.values("position")[:1]))
            .values_list("position", "next_position")
            .first()
        )
        if row is None:
            raise StaleBoard(
                "A neighbouring card moved meanwhile; nothing was changed.",
                data={"card_id": card_id, "column_id": column.pk},
            )
        return row

    for attempt in range(2):
        if after_card_id is not None:
            lower, next_below = neighbour_and_next(after_card_id, downwards=True)
            if next_below is None:
                return lower + POSITION_GAP
            upper = next_below
        elif before_card_id is not None:
            upper, next_above = neighbour_and_next(before_card_id, downwards=False)
            if next_above is None:
                return upper - POSITION_GAP
            lower = next_above
        else:
            last = others.aggregate(p=Max("position"))["p"]
            return POSITION_GAP if last is None else last + POSITION_GAP
        if upper - lower >= 2:
            return (lower + upper) // 2
        if attempt == 0:
            _renumber(column)
    raise AssertionError("a renumbered column always has a free position")  # pragma: no cover
