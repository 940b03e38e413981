"""A stream's PDCA cycles, and the checks every pdca service shares."""

from __future__ import annotations

from django.db.models import ProtectedError, QuerySet

from pdca.errors import CycleNotFound
from pdca.models import ControlPoint, Criterion, Cycle
from vsm.actors import Actor
from vsm.errors import InvalidInput
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

ORDER_MAX = 32_767


def order_check(order: int, *, field: str = "order") -> int:
    """Raises: InvalidInput unless ``order`` is a whole number from 0 to ORDER_MAX."""
    if not 0 <= order <= ORDER_MAX:
        raise InvalidInput(
            f"An order is a whole number from 0 to {ORDER_MAX:,}.",
            data={"order": order},
            field=field,
        )
    return order


def text_check(text: str, *, what: str, field: str, max_length: int) -> str:
    """``text`` without surrounding blanks. Raises: InvalidInput (empty, too long)."""
    text = text.strip()
    if not text:
        raise InvalidInput(f"{what} cannot be empty.", field=field)
    if len(text) > max_length:
        raise InvalidInput(
            f"{what} is at most {max_length} characters.",
            data={"max_length": max_length},
            field=field,
        )
    return text


def team_of_stream_check(stream: ValueStream, team_id: int | None, *, field: str) -> None:
    """Raises: NotInStream unless the team is nobody or one of the stream's teams."""
    if team_id is not None and not stream.teams.filter(pk=team_id).exists():
        raise NotInStream(
            "That team is not one of this value stream's teams.",
            data={"team_id": team_id, "stream_id": stream.pk},
            field=field,
        )


def cycle_of_stream(stream: ValueStream, cycle_id: int, *, field: str) -> Cycle:
    """Raises: NotInStream unless the cycle is one of the stream's."""
    cycle = Cycle.objects.filter(pk=cycle_id).first()
    if cycle is None or cycle.value_stream_id != stream.pk:
        raise NotInStream(
            "That cycle is not one of this value stream's cycles.",
            data={"cycle_id": cycle_id, "stream_id": stream.pk},
            field=field,
        )
    return cycle


class NotNextCycle(InvalidInput):
    """A control point that would skip cycles or lead back: a card passes from one loop
    of the stream to the next, and the metrics follow the flow in the cycles' order."""

    code = "not_next_cycle"
    default_message = "A control point leads from a cycle to the next one."


def _next_cycles(orders: dict[int, int]) -> dict[int, int | None]:
    """{cycle id: the id of the cycle after it by order, or None for the last one}."""
    ordered = sorted(orders, key=orders.__getitem__)
    return dict(zip(ordered, [*ordered[1:], None], strict=True))


def next_cycle_check(stream: ValueStream, *, from_cycle_id: int, to_cycle_id: int) -> None:
    """Raises: NotNextCycle unless ``to_cycle_id`` is the cycle after ``from_cycle_id``
    in the stream's order (both are the stream's)."""
    cycles = {cycle.pk: cycle for cycle in stream.cycles.all()}
    following = _next_cycles({pk: cycle.order for pk, cycle in cycles.items()})[from_cycle_id]
    if following == to_cycle_id:
        return
    source = cycles[from_cycle_id].name
    raise NotNextCycle(
        f"{source} is the last cycle of this value stream: no control point leads on from it."
        if following is None
        else f"A control point leads from a cycle to the next one: after {source} comes "
        f"{cycles[following].name}.",
        data={"from_cycle_id": from_cycle_id, "to_cycle_id": to_cycle_id},
        field="to_cycle",
    )


def control_points_follow_check(
    stream: ValueStream, *, cycle_id: int | None, name: str, order: int
) -> None:
    """Raises: NotNextCycle when putting the cycle ``cycle_id`` (None: a new one, named
    ``name``) at number ``order`` makes a control point of the stream that leads to the
    next cycle now skip a cycle or lead back."""
    before = dict(stream.cycles.values_list("pk", "order"))
    after = before | {cycle_id or 0: order}  # no cycle has the id 0
    next_before, next_after = _next_cycles(before), _next_cycles(after)
    control_points = ControlPoint.objects.filter(from_cycle__value_stream=stream).select_related(
        "from_cycle", "to_cycle"
    )
    for control_point in control_points.order_by("pk"):
        pair = (control_point.from_cycle_id, control_point.to_cycle_id)
        if next_before[pair[0]] == pair[1] and next_after[pair[0]] != pair[1]:
            raise NotNextCycle(
                f"With {name} at number {order}, the control point {control_point} would no "
                "longer lead to the next cycle: a control point leads from a cycle to the "
                "next one. Change or delete the control point first.",
                data={"control_point_id": control_point.pk, "order": order},
                field="order",
            )


def stream_id_of(model: type[Cycle | ControlPoint | Criterion], pk: int, path: str) -> int | None:
    """The stream of the row ``pk`` of ``model`` (``path`` leads to it), or None."""
    return model.objects.filter(pk=pk).values_list(path, flat=True).first()


def _cycle_locked(*, cycle_id: int, actor: Actor) -> tuple[Cycle, ValueStream]:
    missing = CycleNotFound(data={"cycle_id": cycle_id})
    stream_id = stream_id_of(Cycle, cycle_id, "value_stream_id")
    if stream_id is None:
        raise missing
    stream = stream_lock_for_steering(
        actor=actor, stream_id=stream_id, what="change cycles", missing=missing
    )
    cycle = Cycle.objects.select_for_update(no_key=True).filter(pk=cycle_id).first()
    if cycle is None:
        raise missing
    return cycle, stream


def cycle_create(
    *,
    stream_id: int,
    name: str,
    actor: Actor,
    order: int | None = None,
    owning_team_id: int | None = None,
) -> Cycle:
    """Add a PDCA cycle to a stream (at the end unless ``order`` says where). It has no
    columns yet: cards enter a cycle once it has one. It does not come between the two
    cycles of a control point.

    Locks: the stream. Raises: StreamNotFound, PermissionRefused, InvalidInput,
    NotUnique (name, order), NotInStream (the owning team), NotNextCycle.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    name = text_check(name, what="A cycle's name", field="name", max_length=120)
    with locking_transaction():
        stream = stream_lock_for_steering(actor=actor, stream_id=stream_id, what="change cycles")
        cycles = stream.cycles.all()
        name_free_check(cycles, name=name, what="A cycle")
        if order is None:
            last = cycles.order_by("-order").values_list("order", flat=True).first()
            order = (last or 0) + 1
        _order_free_check(cycles, order_check(order))
        control_points_follow_check(stream, cycle_id=None, name=name, order=order)
        team_of_stream_check(stream, owning_team_id, field="owning_team")
        cycle = Cycle.objects.create(
            value_stream=stream, name=name, order=order, owning_team_id=owning_team_id
        )
        settings_change_record(
            actor=actor,
            action="cycle.created",
            stream_id=stream.pk,
            target_type="cycle",
            target_id=cycle.pk,
            data={"order": cycle.order, "owning_team_id": cycle.owning_team_id},
        )
    return cycle


def _order_free_check(cycles: QuerySet[Cycle], order: int) -> None:
    if cycles.filter(order=order).exists():
        raise NotUnique(
            f"Another cycle of this value stream is number {order}.",
            data={"order": order},
            field="order",
        )


def cycle_update(
    *,
    cycle_id: int,
    actor: Actor,
    name: str | None = None,
    order: int | None = None,
    owning_team_id: int | None | Keep = UNCHANGED,
) -> Cycle:
    """Rename, reorder a cycle or give it to another team of its stream (None: no team).
    A new order keeps every control point leading to the next cycle.

    Locks: the stream, then the cycle. Raises: CycleNotFound, PermissionRefused,
    InvalidInput, NotUnique (name, order), NotInStream (the owning team), NotNextCycle.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        cycle, stream = _cycle_locked(cycle_id=cycle_id, actor=actor)
        others = stream.cycles.exclude(pk=cycle.pk)
        if name is not None:
            name = text_check(name, what="A cycle's name", field="name", max_length=120)
            name_free_check(others, name=name, what="A cycle")
            cycle.name = name
        if order is not None and order != cycle.order:
            _order_free_check(others, order_check(order))
            control_points_follow_check(stream, cycle_id=cycle.pk, name=cycle.name, order=order)
            cycle.order = order
        if owning_team_id is not UNCHANGED:
            team_of_stream_check(stream, owning_team_id, field="owning_team")
            cycle.owning_team_id = owning_team_id
        cycle.save()
        settings_change_record(
            actor=actor,
            action="cycle.updated",
            stream_id=stream.pk,
            target_type="cycle",
            target_id=cycle.pk,
            data={"order": cycle.order, "owning_team_id": cycle.owning_team_id},
        )
    return cycle


def cycle_delete(*, cycle_id: int, actor: Actor) -> None:
    """Delete a cycle with its columns and control points, if no card ever entered it.

    Locks: the stream, then the cycle. Raises: CycleNotFound, PermissionRefused, InUse
    (cards, the move log or handoffs need it).
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        cycle, stream = _cycle_locked(cycle_id=cycle_id, actor=actor)
        try:
            cycle.delete()
        except ProtectedError as error:
            raise InUse(
                f"{cycle.name} still holds cards, or is in the move log or the handoff log; "
                "it stays so the board's history keeps its meaning.",
                data={"cycle_id": cycle_id, "protected": len(error.protected_objects)},
            ) from None
        settings_change_record(
            actor=actor,
            action="cycle.deleted",
            stream_id=stream.pk,
            target_type="cycle",
            target_id=cycle_id,
        )
