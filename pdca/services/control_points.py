"""The gates between a stream's cycles (control points) and their checklists (criteria)."""

from __future__ import annotations

from django.db.models import ProtectedError

from pdca.errors import ControlPointNotFound, CycleNotFound
from pdca.models import ControlPoint, Criterion, Cycle
from pdca.services.cycles import (
    cycle_of_stream,
    next_cycle_check,
    order_check,
    stream_id_of,
    team_of_stream_check,
    text_check,
)
from vsm.actors import Actor
from vsm.errors import InvalidInput, NotFound
from vsm.models import ValueStream
from vsm.services import (
    UNCHANGED,
    InUse,
    Keep,
    NotUnique,
    count_of,
    settings_change_record,
    stream_lock_for_steering,
)
from vsm.transactions import locking_transaction


class CriterionNotFound(NotFound):
    code = "criterion_not_found"
    default_message = "No such criterion in this value stream."


def _control_point_locked(
    *, control_point_id: int, actor: Actor
) -> tuple[ControlPoint, ValueStream]:
    missing = ControlPointNotFound(data={"control_point_id": control_point_id})
    stream_id = stream_id_of(ControlPoint, control_point_id, "from_cycle__value_stream_id")
    if stream_id is None:
        raise missing
    stream = stream_lock_for_steering(
        actor=actor, stream_id=stream_id, what="change control points", missing=missing
    )
    control_point = (
        ControlPoint.objects.select_for_update(no_key=True).filter(pk=control_point_id).first()
    )
    if control_point is None:
        raise missing
    return control_point, stream


def _control_point_check(
    stream: ValueStream,
    *,
    from_cycle_id: int,
    to_cycle_id: int,
    receiving_team_id: int | None,
    control_point_id: int | None = None,
    cycles_changed: bool = True,
) -> None:
    """Raises: NotInStream, InvalidInput (one cycle to itself), NotNextCycle (when
    ``cycles_changed``: the cycles skip or go back), NotUnique (the pair)."""
    cycle_of_stream(stream, from_cycle_id, field="from_cycle")
    cycle_of_stream(stream, to_cycle_id, field="to_cycle")
    if from_cycle_id == to_cycle_id:
        raise InvalidInput(
            "A control point leads from one cycle to another.",
            data={"cycle_id": from_cycle_id},
            field="to_cycle",
        )
    if cycles_changed:
        next_cycle_check(stream, from_cycle_id=from_cycle_id, to_cycle_id=to_cycle_id)
    team_of_stream_check(stream, receiving_team_id, field="receiving_team")
    pairs = ControlPoint.objects.filter(from_cycle_id=from_cycle_id, to_cycle_id=to_cycle_id)
    if control_point_id is not None:
        pairs = pairs.exclude(pk=control_point_id)
    if pairs.exists():
        raise NotUnique(
            "A control point between these two cycles already exists.",
            data={"from_cycle_id": from_cycle_id, "to_cycle_id": to_cycle_id},
            field="to_cycle",
        )


def _control_point_data(control_point: ControlPoint) -> dict[str, int | bool | None]:
    return {
        "from_cycle_id": control_point.from_cycle_id,
        "to_cycle_id": control_point.to_cycle_id,
        "receiving_team_id": control_point.receiving_team_id,
    }


def control_point_create(
    *,
    from_cycle_id: int,
    to_cycle_id: int,
    actor: Actor,
    name: str = "",
    receiving_team_id: int | None = None,
) -> ControlPoint:
    """Add the gate from one cycle to the next of the same stream (by the cycles' order:
    a card passes from one loop to the next, never past one or back).

    ``receiving_team_id``: the team a card belongs to after the handoff (None: the next
    cycle's team).
    Locks: the stream. Raises: CycleNotFound, PermissionRefused, NotInStream,
    InvalidInput, NotNextCycle, NotUnique.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    missing = CycleNotFound(data={"cycle_id": from_cycle_id}, field="from_cycle")
    stream_id = stream_id_of(Cycle, from_cycle_id, "value_stream_id")
    if stream_id is None:
        raise missing
    with locking_transaction():
        stream = stream_lock_for_steering(
            actor=actor, stream_id=stream_id, what="change control points", missing=missing
        )
        _control_point_check(
            stream,
            from_cycle_id=from_cycle_id,
            to_cycle_id=to_cycle_id,
            receiving_team_id=receiving_team_id,
        )
        control_point = ControlPoint.objects.create(
            from_cycle_id=from_cycle_id,
            to_cycle_id=to_cycle_id,
            name=name.strip(),
            receiving_team_id=receiving_team_id,
        )
        settings_change_record(
            actor=actor,
            action="control_point.created",
            stream_id=stream.pk,
            target_type="control_point",
            target_id=control_point.pk,
            data=_control_point_data(control_point),
        )
    return control_point


def control_point_update(
    *,
    control_point_id: int,
    actor: Actor,
    from_cycle_id: int | None = None,
    to_cycle_id: int | None = None,
    name: str | None = None,
    receiving_team_id: int | None | Keep = UNCHANGED,
) -> ControlPoint:
    """Change a control point's cycles (within its stream, from one to the next), name
    or receiving team.

    Locks: the stream, then the control point. Raises: ControlPointNotFound,
    PermissionRefused, NotInStream, InvalidInput, NotNextCycle, NotUnique.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        control_point, stream = _control_point_locked(
            control_point_id=control_point_id, actor=actor
        )
        cycles = (control_point.from_cycle_id, control_point.to_cycle_id)
        if from_cycle_id is not None:
            control_point.from_cycle_id = from_cycle_id
        if to_cycle_id is not None:
            control_point.to_cycle_id = to_cycle_id
        if name is not None:
            control_point.name = name.strip()
        if receiving_team_id is not UNCHANGED:
            control_point.receiving_team_id = receiving_team_id
        _control_point_check(
            stream,
            from_cycle_id=control_point.from_cycle_id,
            to_cycle_id=control_point.to_cycle_id,
            receiving_team_id=control_point.receiving_team_id,
            control_point_id=control_point.pk,
            cycles_changed=cycles != (control_point.from_cycle_id, control_point.to_cycle_id),
        )
        control_point.save()
        settings_change_record(
            actor=actor,
            action="control_point.updated",
            stream_id=stream.pk,
            target_type="control_point",
            target_id=control_point.pk,
            data=_control_point_data(control_point),
        )
    return control_point


def control_point_delete(*, control_point_id: int, actor: Actor) -> None:
    """Delete a control point and its criteria, if no card was ever handed off through it.

    Locks: the stream, then the control point. Raises: ControlPointNotFound,
    PermissionRefused, InUse (handoffs need it).
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        control_point, stream = _control_point_locked(
            control_point_id=control_point_id, actor=actor
        )
        try:
            control_point.delete()
        except ProtectedError as error:
            raise InUse(
                "Cards were handed off through this control point: it stays so the "
                "handoff log keeps its meaning.",
                data={
                    "control_point_id": control_point_id,
                    "protected": len(error.protected_objects),
                },
            ) from None
        settings_change_record(
            actor=actor,
            action="control_point.deleted",
            stream_id=stream.pk,
            target_type="control_point",
            target_id=control_point_id,
        )


def _criterion_locked(*, criterion_id: int, actor: Actor) -> tuple[Criterion, ValueStream]:
    missing = CriterionNotFound(data={"criterion_id": criterion_id})
    stream_id = stream_id_of(Criterion, criterion_id, "control_point__from_cycle__value_stream_id")
    if stream_id is None:
        raise missing
    stream = stream_lock_for_steering(
        actor=actor, stream_id=stream_id, what="change control points", missing=missing
    )
    criterion = Criterion.objects.select_for_update(no_key=True).filter(pk=criterion_id).first()
    if criterion is None:
        raise missing
    return criterion, stream


def criterion_create(
    *,
    control_point_id: int,
    text: str,
    actor: Actor,
    required: bool = True,
    order: int = 0,
) -> Criterion:
    """Add an item to a control point's checklist.

    Locks: the stream, then the control point. Raises: ControlPointNotFound,
    PermissionRefused, InvalidInput.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    text = text_check(text, what="A criterion", field="text", max_length=300)
    order_check(order)
    with locking_transaction():
        control_point, stream = _control_point_locked(
            control_point_id=control_point_id, actor=actor
        )
        criterion = Criterion.objects.create(
            control_point=control_point, text=text, required=required, order=order
        )
        settings_change_record(
            actor=actor,
            action="criterion.created",
            stream_id=stream.pk,
            target_type="criterion",
            target_id=criterion.pk,
            data={"control_point_id": control_point.pk, "required": required, "order": order},
        )
    return criterion


def criterion_update(
    *,
    criterion_id: int,
    actor: Actor,
    text: str | None = None,
    required: bool | None = None,
    order: int | None = None,
) -> Criterion:
    """Reword, reorder a criterion, or make it required or optional. Handoffs that ticked
    it keep it ticked.

    Locks: the stream, then the criterion. Raises: CriterionNotFound, PermissionRefused,
    InvalidInput.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        criterion, stream = _criterion_locked(criterion_id=criterion_id, actor=actor)
        if text is not None:
            criterion.text = text_check(text, what="A criterion", field="text", max_length=300)
        if required is not None:
            criterion.required = required
        if order is not None:
            criterion.order = order_check(order)
        criterion.save()
        settings_change_record(
            actor=actor,
            action="criterion.updated",
            stream_id=stream.pk,
            target_type="criterion",
            target_id=criterion.pk,
            data={
                "control_point_id": criterion.control_point_id,
                "required": criterion.required,
                "order": criterion.order,
            },
        )
    return criterion


def criterion_delete(*, criterion_id: int, actor: Actor) -> None:
    """Take an item off a control point's checklist, if no handoff ticked it (rewording
    it, or making it optional, is allowed: the handoffs keep their tick).

    Locks: the stream, then the criterion. Raises: CriterionNotFound, PermissionRefused,
    InUse (handoffs ticked it: the handoff log keeps what was checked).
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        criterion, stream = _criterion_locked(criterion_id=criterion_id, actor=actor)
        # Handoffs live in boards, which pdca does not import: through the reverse
        # accessor of their many-to-many field.
        handoffs = criterion.handoffs.count()
        if handoffs:
            raise InUse(
                f"“{criterion.text}” was ticked in {count_of(handoffs, 'handoff')}: it stays "
                "so the handoff log keeps what was checked. Reword it or make it optional "
                "instead.",
                data={"criterion_id": criterion.pk, "handoffs": handoffs},
            )
        control_point_id = criterion.control_point_id
        criterion.delete()
        settings_change_record(
            actor=actor,
            action="criterion.deleted",
            stream_id=stream.pk,
            target_type="criterion",
            target_id=criterion_id,
            data={"control_point_id": control_point_id},
        )
