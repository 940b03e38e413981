"""Columns of a cycle: adding, changing, deleting them, and their WIP limit."""

from __future__ import annotations

from django.db.models import Q

from boards.errors import ColumnNotFound, InvalidMove
from boards.models import Card, CardMove, Column, ColumnSplit, KnowledgeLevel
from boards.services.locks import _lock_columns
from pdca.errors import CycleNotFound
from pdca.models import Cycle
from pdca.services import order_check
from vsm.access import stream_steer_check
from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.errors import InvalidInput
from vsm.events import StreamChange, stream_changed
from vsm.models import ValueStream
from vsm.services import (
    UNCHANGED,
    InUse,
    Keep,
    NotInStream,
    NotUnique,
    name_free_check,
    settings_change_record,
    stream_lock_for_steering,
)
from vsm.transactions import locking_transaction

# The largest WIP limit a column takes: above it a limit limits nothing.
WIP_LIMIT_MAX = 10_000
# What a WIP limit may be, as every form and refusal says it.
WIP_LIMIT_RULE = f"A WIP limit is empty or a whole number from 1 to {WIP_LIMIT_MAX:,}."


def column_set_wip_limit(*, column_id: int, wip_limit: int | None, actor: Actor) -> Column:
    """Change a column's WIP limit (None: no limit). Only those who steer the stream may.

    Locks: the column. Raises: InvalidMove (below 1 or above WIP_LIMIT_MAX),
    ColumnNotFound, PermissionRefused, Busy.
    Side effects: an audit row; when the limit changes, "stream changed" (settings)
    after commit: the metrics show each column's limit and weigh it in finding the
    constraint.
    """
    _wip_limit_check(wip_limit)
    with locking_transaction():
        column = _lock_columns([column_id])[column_id]
        stream = column.cycle.value_stream
        stream_steer_check(actor=actor, stream=stream, what="change WIP limits")
        previous = column.wip_limit
        if previous != wip_limit:
            stream_changed(stream.pk, StreamChange.SETTINGS)
        column.wip_limit = wip_limit
        column.save(update_fields=["wip_limit", "updated_at"])
        audit_record(
            actor=actor,
            action="column.wip_limit_set",
            stream_id=stream.pk,
            target_type="column",
            target_id=column.pk,
            data={"previous": previous, "wip_limit": wip_limit},
        )
    return column


def _wip_limit_check(wip_limit: int | None) -> int | None:
    """Raises: InvalidMove unless the limit is None or from 1 to WIP_LIMIT_MAX."""
    if wip_limit is not None and not 1 <= wip_limit <= WIP_LIMIT_MAX:
        raise InvalidMove(
            WIP_LIMIT_RULE,
            data={"wip_limit": wip_limit},
            field="wip_limit",
        )
    return wip_limit


def _column_settings_check(
    *, name: str | None, knowledge_level: str | None, split: str | None
) -> None:
    if name is not None and not name.strip():
        raise InvalidInput("A column needs a name.", field="name")
    if name is not None and len(name.strip()) > 120:
        raise InvalidInput("A column's name is at most 120 characters.", field="name")
    if knowledge_level is not None and knowledge_level not in KnowledgeLevel.values:
        raise InvalidInput(
            "Choose a knowledge level: Data, Information, Knowledge or Wisdom.",
            field="knowledge_level",
        )
    if split is not None and split not in ColumnSplit.values:
        raise InvalidInput("Choose whether the column is split, and how.", field="split")


def _place_in_cycle_check(
    *, cycle_id: int, name: str, order: int, column_id: int | None = None
) -> None:
    """Raises: NotUnique when another column of the cycle has the name or the order."""
    others = Column.objects.filter(cycle_id=cycle_id)
    if column_id is not None:
        others = others.exclude(pk=column_id)
    name_free_check(others, name=name, what="A column")
    if others.filter(order=order).exists():
        raise NotUnique(
            f"Another column of this cycle is number {order}.",
            data={"cycle_id": cycle_id, "order": order},
            field="order",
        )


def column_create(
    *,
    cycle_id: int,
    name: str,
    knowledge_level: str,
    actor: Actor,
    order: int | None = None,
    wip_limit: int | None = None,
    split: str = ColumnSplit.NONE,
) -> Column:
    """Add a column to a cycle (at the end unless ``order`` says where).

    Locks: the stream. Raises: CycleNotFound, PermissionRefused, InvalidInput,
    InvalidMove (the WIP limit), NotUnique (name, order).
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    _column_settings_check(name=name, knowledge_level=knowledge_level, split=split)
    _wip_limit_check(wip_limit)
    missing = CycleNotFound(data={"cycle_id": cycle_id}, field="cycle")
    stream_id = Cycle.objects.filter(pk=cycle_id).values_list("value_stream_id", flat=True).first()
    if stream_id is None:
        raise missing
    with locking_transaction():
        stream = stream_lock_for_steering(
            actor=actor, stream_id=stream_id, what="change columns", missing=missing
        )
        if order is None:
            last = (
                Column.objects.filter(cycle_id=cycle_id)
                .order_by("-order")
                .values_list("order", flat=True)
                .first()
            )
            order = (last or 0) + 1
        name = name.strip()
        _place_in_cycle_check(cycle_id=cycle_id, name=name, order=order_check(order))
        column = Column.objects.create(
            cycle_id=cycle_id,
            name=name,
            knowledge_level=knowledge_level,
            order=order,
            wip_limit=wip_limit,
            split=split,
        )
        settings_change_record(
            actor=actor,
            action="column.created",
            stream_id=stream.pk,
            target_type="column",
            target_id=column.pk,
            data={"cycle_id": cycle_id, "order": order, "wip_limit": wip_limit},
        )
    return column


def _column_locked(*, column_id: int, actor: Actor) -> tuple[Column, ValueStream]:
    missing = ColumnNotFound(data={"column_id": column_id})
    stream_id = (
        Column.objects.filter(pk=column_id).values_list("cycle__value_stream_id", flat=True).first()
    )
    if stream_id is None:
        raise missing
    stream = stream_lock_for_steering(
        actor=actor, stream_id=stream_id, what="change columns", missing=missing
    )
    return _lock_columns([column_id])[column_id], stream


def column_update(
    *,
    column_id: int,
    actor: Actor,
    cycle_id: int | None = None,
    name: str | None = None,
    knowledge_level: str | None = None,
    order: int | None = None,
    split: str | None = None,
    wip_limit: int | None | Keep = UNCHANGED,
) -> Column:
    """Change a column's name, knowledge level, order, split or WIP limit, or move it to
    another cycle of its stream.

    A column moves to another cycle only while no card and no move names it: open
    cards would change cycle without passing the control point, and a column's history
    (the cards it holds, won and lost too, and its moves) belongs to its cycle, whose
    metrics derive from it. The WIP limit follows ``column_set_wip_limit``'s rule.
    Locks: the stream, then the column (so no card enters it meanwhile).
    Raises: ColumnNotFound, PermissionRefused, InvalidInput, InvalidMove (the WIP
    limit), NotUnique (name, order), NotInStream (the cycle), InUse (cards or moves).
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    _column_settings_check(name=name, knowledge_level=knowledge_level, split=split)
    if wip_limit is not UNCHANGED:
        _wip_limit_check(wip_limit)
    with locking_transaction():
        column, stream = _column_locked(column_id=column_id, actor=actor)
        previous = {"cycle_id": column.cycle_id, "wip_limit": column.wip_limit}
        if cycle_id is not None and cycle_id != column.cycle_id:
            _column_move_check(column=column, stream=stream, cycle_id=cycle_id)
            column.cycle_id = cycle_id
        if name is not None:
            column.name = name.strip()
        if knowledge_level is not None:
            column.knowledge_level = knowledge_level
        if order is not None:
            column.order = order_check(order)
        if split is not None:
            column.split = split
        if wip_limit is not UNCHANGED:
            column.wip_limit = wip_limit
        _place_in_cycle_check(
            cycle_id=column.cycle_id, name=column.name, order=column.order, column_id=column.pk
        )
        column.save()
        settings_change_record(
            actor=actor,
            action="column.updated",
            stream_id=stream.pk,
            target_type="column",
            target_id=column.pk,
            data={
                "previous_cycle_id": previous["cycle_id"],
                "cycle_id": column.cycle_id,
                "order": column.order,
                "previous_wip_limit": previous["wip_limit"],
                "wip_limit": column.wip_limit,
            },
        )
    return column


def _column_move_check(*, column: Column, stream: ValueStream, cycle_id: int) -> None:
    """Raises: NotInStream (a cycle of another stream), InUse (cards, open or closed, or
    moves name it), as column_delete refuses."""
    if not Cycle.objects.filter(pk=cycle_id, value_stream=stream).exists():
        raise NotInStream(
            "A column moves only to another cycle of its own value stream.",
            data={"column_id": column.pk, "cycle_id": cycle_id},
            field="cycle",
        )
    stays = (
        "its history belongs to its cycle, so it stays there. Add a new column to the other "
        "cycle instead."
    )
    cards = Card.objects.filter(column=column).count()
    if cards:
        raise InUse(
            f"{column.name} still holds {_cards(cards, 'card')} (open, won or lost); {stays}",
            data={"column_id": column.pk, "cards": cards},
            field="cycle",
        )
    moves = CardMove.objects.filter(Q(from_column=column) | Q(to_column=column)).count()
    if moves:
        raise InUse(
            f"{column.name} is in the move log ({_cards(moves, 'move')}); {stays}",
            data={"column_id": column.pk, "moves": moves},
            field="cycle",
        )


def _cards(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def column_delete(*, column_id: int, actor: Actor) -> None:
    """Delete a column that holds no card and is not in the move log.

    Locks: the stream, then the column. Raises: ColumnNotFound, PermissionRefused, InUse
    (cards, open or closed, or moves name it: the metrics derive from the log).
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        column, stream = _column_locked(column_id=column_id, actor=actor)
        cards = Card.objects.filter(column=column).count()
        if cards:
            raise InUse(
                f"This column still holds {_cards(cards, 'card')} (open, won or lost); "
                "nothing was deleted.",
                data={"column_id": column.pk, "cards": cards},
            )
        moves = CardMove.objects.filter(Q(from_column=column) | Q(to_column=column)).count()
        if moves:
            raise InUse(
                f"This column is in the move log ({_cards(moves, 'move')}); it stays so the "
                "metrics keep their history. Nothing was deleted.",
                data={"column_id": column.pk, "moves": moves},
            )
        column.delete()
        settings_change_record(
            actor=actor,
            action="column.deleted",
            stream_id=stream.pk,
            target_type="column",
            target_id=column_id,
            data={"cycle_id": column.cycle_id},
        )
