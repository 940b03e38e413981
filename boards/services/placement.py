"""``_place_card``, the one write path of a card into a column: WIP rule, position, move log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Sum

from boards.errors import WipLimitReached
from boards.models import Card, CardMove, Column, MoveKind, Outcome, WipOverride
from boards.services.positions import _open_cards, _position_in
from vsm.access import stream_steer_check
from vsm.actors import Actor, actor_fields
from vsm.audit import audit_record
from vsm.events import StreamChange, stream_changed
from vsm.models import ValueStream

# The audit log's action for each kind of move ("card.<verb>").
AUDIT_ACTIONS: dict[str, str] = {
    MoveKind.ENTER: "card.entered",
    MoveKind.MOVE: "card.moved",
    MoveKind.HANDOFF: "card.handed_off",
    MoveKind.WON: "card.won",
    MoveKind.LOST: "card.lost",
    MoveKind.REOPEN: "card.reopened",
}


def _open_totals(column_ids: Iterable[int]) -> tuple[dict[int, int], dict[int, Decimal]]:
    """Open cards per column and their estimated value, in one query. Exact only while
    the columns are locked."""
    counts = dict.fromkeys(column_ids, 0)
    values = dict.fromkeys(counts, Decimal(0))
    rows = (
        Card.objects.filter(column_id__in=list(counts), outcome=Outcome.OPEN)
        .order_by()
        .values_list("column_id")
        .annotate(n=Count("id"), value=Sum("estimated_value"))
    )
    for column_id, count, value in rows:
        counts[column_id] = count
        values[column_id] = value or Decimal(0)
    return counts, values


def _check_wip(
    column: Column, *, actor: Actor, stream: ValueStream, override_reason: str, count: int | None
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
        raise WipLimitReached(
            column_id=column.pk, column_name=column.name, count=count, limit=column.wip_limit
        )
    stream_steer_check(
        actor=actor,
        stream=stream,
        what=f"override the WIP limit of {column.name} ({count}/{column.wip_limit})",
    )
    return override_reason


def _place_card(
    *,
    card: Card,
    to_column: Column,
    kind: MoveKind,
    actor: Actor,
    at: datetime,
    from_column: Column | None,
    after_card_id: int | None = None,
    before_card_id: int | None = None,
    wip_override_reason: str = "",
    check_wip: bool = True,
    to_column_open_count: int | None = None,
    audit_action: str = "",
) -> CardMove | None:
    """Put a locked card into a locked column and log the event. The one write path.

    ``to_column_open_count``: the target's open cards, if the caller counted them under
    the lock; otherwise the WIP check counts them. ``audit_action``: the audit row's
    action when the move's kind does not say it all (a reopen that undoes a close).
    Raises: WipLimitReached, PermissionRefused (an override by someone who does not
    steer the stream), StaleBoard (a named neighbour moved).
    Side effects: an audit row; after commit, "stream changed" (moves) for a flow event.
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
    move = None
    if changes_column or kind != MoveKind.MOVE:  # a reorder inside a column is no flow event
        stream_changed(card.value_stream_id, StreamChange.MOVES)
        move = CardMove.objects.create(
            value_stream_id=card.value_stream_id,
            card=card,
            from_column=from_column,
            to_column=to_column,
            **actor_fields(actor),
            moved_at=at,
            kind=kind,
            channel_id=card.channel_id,
            estimated_value=card.estimated_value,
        )
        if used_override:
            # Setting move= caches the override on the move: its answer reads no row.
            WipOverride.objects.create(move=move, reason=used_override)
        else:
            # Known to have none: asking the move for its reason reads no row either.
            CardMove.wip_override.related.set_cached_value(move, None)
    audit_record(
        actor=actor,
        action=audit_action or (AUDIT_ACTIONS[kind] if move is not None else "card.reordered"),
        stream_id=card.value_stream_id,
        target_type="card",
        target_id=card.pk,
        data={
            "from_column_id": from_column.pk if from_column else None,
            "to_column_id": to_column.pk,
            "move_id": move.pk if move else None,
            "wip_overridden": bool(used_override),
        },
        at=at,
    )
    return move
