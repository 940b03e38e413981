"""Why deals are lost: a stream's list of lost reasons, kept by those who steer it.

The board asks for one of the active reasons when a card is lost; the metrics count
lost cards per reason. A reason that was ever given stays (deactivated, not deleted),
so lost cards keep it.
"""

from __future__ import annotations

from django.db.models import Max

from vsm.actors import Actor
from vsm.errors import InvalidInput, NotFound
from vsm.models import LOST_REASON_MAX_LENGTH, LostReason
from vsm.services.common import (
    name_check,
    name_free_check,
    settings_change_record,
    stream_lock_for_steering,
)
from vsm.transactions import locking_transaction

# An order is a small whole number (the column is a PositiveSmallIntegerField).
LOST_REASON_ORDER_MAX = 32767
_WHAT = "A lost reason"
_STEERING = "change lost reasons"


class LostReasonNotFound(NotFound):
    code = "lost_reason_not_found"
    default_message = "No such lost reason in this value stream."


def _order_check(order: int) -> int:
    if not 0 <= order <= LOST_REASON_ORDER_MAX:
        raise InvalidInput(
            f"An order is a whole number from 0 to {LOST_REASON_ORDER_MAX:,}.",
            data={"max": LOST_REASON_ORDER_MAX},
            field="order",
        )
    return order


def lost_reason_create(
    *,
    stream_id: int,
    name: str,
    actor: Actor,
    order: int | None = None,
    is_active: bool = True,
) -> LostReason:
    """Add a lost reason to a stream's list; its name is unique there (in any case).

    ``order``: its place in the list; by default after the last one.
    Locks: the stream. Raises: StreamNotFound, PermissionRefused, InvalidInput, NotUnique.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    name = name_check(name, what=_WHAT, max_length=LOST_REASON_MAX_LENGTH)
    if order is not None:
        order = _order_check(order)
    with locking_transaction():
        stream = stream_lock_for_steering(actor=actor, stream_id=stream_id, what=_STEERING)
        reasons = LostReason.objects.filter(value_stream=stream)
        name_free_check(reasons, name=name, what=_WHAT)
        if order is None:
            last = reasons.aggregate(last=Max("order"))["last"]
            order = min(LOST_REASON_ORDER_MAX, 0 if last is None else last + 1)
        reason = LostReason.objects.create(
            value_stream=stream, name=name, order=order, is_active=is_active
        )
        settings_change_record(
            actor=actor,
            action="lost_reason.created",
            stream_id=stream.pk,
            target_type="lost_reason",
            target_id=reason.pk,
            data={"active": reason.is_active, "order": reason.order},
        )
    return reason


def lost_reason_update(
    *,
    lost_reason_id: int,
    actor: Actor,
    name: str | None = None,
    order: int | None = None,
    is_active: bool | None = None,
) -> LostReason:
    """Rename a lost reason, move it in the list, or (de)activate it. A deactivated
    reason is no longer offered; the lost cards that have it keep it.

    Locks: the stream, then the reason. Raises: LostReasonNotFound, PermissionRefused,
    InvalidInput, NotUnique.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        return _lost_reason_change(
            lost_reason_id=lost_reason_id,
            actor=actor,
            action="lost_reason.updated",
            name=name,
            order=order,
            is_active=is_active,
        )


def lost_reason_deactivate(*, lost_reason_id: int, actor: Actor) -> LostReason:
    """Stop offering a lost reason; the lost cards that have it keep it.

    Locks: the stream, then the reason. Raises: LostReasonNotFound, PermissionRefused.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        return _lost_reason_change(
            lost_reason_id=lost_reason_id,
            actor=actor,
            action="lost_reason.deactivated",
            is_active=False,
        )


def _lost_reason_change(
    *,
    lost_reason_id: int,
    actor: Actor,
    action: str,
    name: str | None = None,
    order: int | None = None,
    is_active: bool | None = None,
) -> LostReason:
    missing = LostReasonNotFound(data={"lost_reason_id": lost_reason_id})
    stream_id = (
        LostReason.objects.filter(pk=lost_reason_id)
        .values_list("value_stream_id", flat=True)
        .first()
    )
    if stream_id is None:
        raise missing
    stream = stream_lock_for_steering(
        actor=actor, stream_id=stream_id, what=_STEERING, missing=missing
    )
    reason = LostReason.objects.select_for_update(no_key=True).filter(pk=lost_reason_id).first()
    if reason is None:
        raise missing
    if name is not None:
        name = name_check(name, what=_WHAT, max_length=LOST_REASON_MAX_LENGTH)
        others = LostReason.objects.filter(value_stream=stream).exclude(pk=reason.pk)
        name_free_check(others, name=name, what=_WHAT)
        reason.name = name
    if order is not None:
        reason.order = _order_check(order)
    if is_active is not None:
        reason.is_active = is_active
    reason.save()
    settings_change_record(
        actor=actor,
        action=action,
        stream_id=stream.pk,
        target_type="lost_reason",
        target_id=reason.pk,
        data={"active": reason.is_active, "order": reason.order},
    )
    return reason
