"""``_place_card``, the one write path of a card into a column: WIP rule, position, move log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count

from boards.errors import PermissionRefused, WipLimitReached
from boards.models import Card, CardMove, Column, MoveKind, Outcome
from boards.services.positions import _open_cards, _position_in
from metrics.tasks import enqueue_recompute
from vsm.models import ValueStream
from vsm.selectors import user_manages_stream


def _open_counts(column_ids: Iterable[int]) -> dict[int, int]:
    """Open cards per column, in one query. Exact only while the columns are locked."""
    counts = dict.fromkeys(column_ids, 0)
    rows = (
        Card.objects.filter(column_id__in=list(counts), outcome=Outcome.OPEN)
        .order_by()
        .values_list("column_id")
        .annotate(n=Count("id"))
    )
    counts.update(rows)
    return counts


def _check_wip(
    column: Column, *, actor, stream: ValueStream, override_reason: str, count: int | None
) -> str:
    """Enforce the column's WIP limit; return the override reason that was used, if any.

    ``count``: the column's open cards if the caller counted them under the lock.
    Locks: the column must already be locked, so the count cannot change under us.
    Raises: WipLimitReached, PermissionRefused.
    """
    if column.wip_limit is None:
        return ""
    if count is None:
        count = _open_cards(column).count()
    if count < column.wip_limit:
        return ""
    override_reason = override_reason.strip()
    if not override_reason:
        raise WipLimitReached(column_name=column.name, count=count, limit=column.wip_limit)
    if actor is None or not user_manages_stream(actor, stream):
        raise PermissionRefused(
            f"{column.name} is at its WIP limit, {count}/{column.wip_limit}; only the value "
            "stream manager may override it."
        )
    return override_reason


def _place_card(
    *,
    card: Card,
    to_column: Column,
    kind: MoveKind,
    actor,
    at: datetime,
    from_column: Column | None,
    after_card_id: int | None = None,
    before_card_id: int | None = None,
    wip_override_reason: str = "",
    check_wip: bool = True,
    to_column_open_count: int | None = None,
) -> CardMove | None:
    """Put a locked card into a locked column and log the event. The one write path.

    ``to_column_open_count``: the target's open cards, if the caller counted them under
    the lock; otherwise the WIP check counts them.
    """
    changes_column = from_column is None or from_column.pk != to_column.pk
    enters_flow = changes_column or kind == MoveKind.REOPEN
    used_override = ""
    if enters_flow and check_wip:
        used_override = _check_wip(
            to_column,
            actor=actor,
            stream=to_column.cycle.value_stream,
            override_reason=wip_override_reason,
            count=to_column_open_count,
        )
    if kind in (MoveKind.WON, MoveKind.LOST):
        position = card.position
    else:
        position = _position_in(
            to_column,
            moving_card_id=card.pk,
            after_card_id=after_card_id,
            before_card_id=before_card_id,
        )
    card.column = to_column
    card.position = position
    card.updated_at = at
    if changes_column:
        card.column_entered_at = at
    card.version = (card.version or 0) + 1 if card.pk else 1
    card.save()
    if not changes_column and kind == MoveKind.MOVE:
        return None  # a reorder inside a column is not a flow event
    enqueue_recompute(card.value_stream_id)
    return CardMove.objects.create(
        value_stream_id=card.value_stream_id,
        card=card,
        from_column=from_column,
        to_column=to_column,
        actor=actor if getattr(actor, "pk", None) else None,
        moved_at=at,
        kind=kind,
        wip_override_reason=used_override,
        channel_id=card.channel_id,
        estimated_value=card.estimated_value,
    )
