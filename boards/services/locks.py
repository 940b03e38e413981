"""A move's bounded transaction, its row locks (ascending pk) and the card version check."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import OperationalError, connection, transaction

from boards.errors import BoardBusy, InvalidMove, StaleBoard
from boards.models import Card, Column

# Bounds on a move's transaction, so that metrics can tell when no older move can
# still be in flight (metrics.services.SETTLE_SECONDS must stay above their sum).
_MOVE_TRANSACTION_LIMITS = (
    "SET LOCAL lock_timeout = '3s'; SET LOCAL statement_timeout = '5s'; "
    "SET LOCAL idle_in_transaction_session_timeout = '10s'"
)


# lock_not_available, query_canceled: a bound above was hit while others held the rows.
_BUSY_SQLSTATES = frozenset({"55P03", "57014"})


@contextmanager
def _move_transaction() -> Iterator[None]:
    """A move's transaction; hitting its time bounds is a refusal the user can retry."""
    try:
        with transaction.atomic():
            yield
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) in _BUSY_SQLSTATES:
            raise BoardBusy() from error
        raise


def _bound_transaction() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_MOVE_TRANSACTION_LIMITS)


def _lock_columns(column_ids: Iterable[int]) -> dict[int, Column]:
    """Lock column rows in ascending pk order, so two moves A->B and B->A cannot deadlock.

    ``no_key=True``: a plain FOR UPDATE would conflict with the FOR KEY SHARE that
    concurrent inserts referencing the column (CardMove) take, and deadlock under load.
    """
    _bound_transaction()
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
        raise InvalidMove("That column no longer exists.")
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
    Raises: InvalidMove (no such card), StaleBoard.
    """
    current_column_id = expected_column_id
    if current_column_id is None:
        # order_by(): Card.Meta.ordering would join column, cycle and stream to sort one row.
        current_column_id = (
            Card.objects.filter(pk=card_id).order_by().values_list("column_id", flat=True).first()
        )
        if current_column_id is None:
            raise InvalidMove("That card no longer exists.")
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
        raise InvalidMove("That card no longer exists.")
    if card.column_id != current_column_id:
        raise StaleBoard()
    return card, columns


def _check_version(card: Card, expected_version: int | None) -> None:
    if expected_version is not None and card.version != expected_version:
        raise StaleBoard()
