"""Row locks of the board's writes (ascending pk) and the card version check.

Every service here runs inside ``vsm.transactions.locking_transaction``: its bounds
turn a long wait on another's locks into ``Busy``.
"""

from __future__ import annotations

from collections.abc import Iterable

from boards.errors import CardNotFound, ColumnNotFound, StaleBoard
from boards.models import Card, Column


def _lock_columns(column_ids: Iterable[int]) -> dict[int, Column]:
    """Lock column rows in ascending pk order, so two moves A->B and B->A cannot deadlock.

    ``no_key=True``: a plain FOR UPDATE would conflict with the FOR KEY SHARE that
    concurrent inserts referencing the column (CardMove) take, and deadlock under load.
    Raises: ColumnNotFound.
    """
    ids = sorted(set(column_ids))
    # of=("self",): lock the column rows only, not the joined cycle and stream rows.
    locked = (
        Column.objects.select_for_update(no_key=True, of=("self",))
        .select_related("cycle__value_stream")
        .filter(pk__in=ids)
        .order_by("pk")
    )
    columns = {column.pk: column for column in locked}
    if len(columns) != len(ids):
        missing = sorted(set(ids) - set(columns))
        raise ColumnNotFound(data={"column_id": missing[0]})
    return columns


def _lock_card_and_columns(
    *,
    card_id: int,
    other_column_ids: Iterable[int] = (),
    expected_column_id: int | None = None,
) -> tuple[Card, dict[int, Column]]:
    """Lock the card's current column and the others (ascending pk), then the card.

    The card's column must be known before its lock: the caller names the column it
    saw the card in (``expected_column_id``), or it is read here. Either way, if the
    card is elsewhere once locked, the view that asked for this is stale.
    Raises: CardNotFound, ColumnNotFound, StaleBoard.
    """
    current_column_id = expected_column_id
    if current_column_id is None:
        # order_by(): Card.Meta.ordering would join column, cycle and stream to sort one row.
        current_column_id = (
            Card.objects.filter(pk=card_id).order_by().values_list("column_id", flat=True).first()
        )
        if current_column_id is None:
            raise CardNotFound(data={"card_id": card_id})
    columns = _lock_columns([current_column_id, *other_column_ids])
    # The related rows are what the move's answer renders (the card's channel and
    # owner); of=("self",) keeps the lock on the card row alone. The stream came with
    # the columns.
    card = (
        Card.objects.select_for_update(no_key=True, of=("self",))
        .select_related("channel", "owner")
        .filter(pk=card_id)
        .order_by()
        .first()
    )
    if card is None:
        raise CardNotFound(data={"card_id": card_id})
    if card.column_id != current_column_id:
        raise StaleBoard(data={"card_id": card_id, "column_id": card.column_id})
    return card, columns


def _lock_card(card_id: int) -> Card:
    """Lock one card row (edits that leave it in its column). Raises: CardNotFound."""
    card = Card.objects.select_for_update(no_key=True).filter(pk=card_id).order_by().first()
    if card is None:
        raise CardNotFound(data={"card_id": card_id})
    return card


def _check_version(card: Card, expected_version: int | None) -> None:
    """Raises: StaleBoard when the caller saw another version of the card."""
    if expected_version is not None and card.version != expected_version:
        # Its column too: whoever acted on the old version is shown where it is now.
        raise StaleBoard(
            data={"card_id": card.pk, "version": card.version, "column_id": card.column_id}
        )
