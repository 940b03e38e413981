"""A stream's own facts and its manager; deleting a stream that never held a card."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db.models import ProtectedError

from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.errors import InvalidInput
from vsm.models import Membership, Role, ValueStream
from vsm.services.common import (
    InUse,
    TeamNotFound,
    name_check,
    name_free_check,
    settings_change_record,
    stream_lock_for_steering,
    user_id_check,
)
from vsm.transactions import locking_transaction


def value_stream_update(
    *,
    stream_id: int,
    actor: Actor,
    name: str | None = None,
    slug: str | None = None,
    customer_market: str | None = None,
    description: str | None = None,
    manager_id: int | None = None,
    manager_team_id: int | None = None,
) -> ValueStream:
    """Change a stream's name, slug, market, description or manager.

    The manager and the memberships agree: the manager holds the value stream manager
    role in one team of the stream (``manager_team_id``, else the team where that role
    is now, else the stream's first team), and nobody else holds it; a previous holder
    stays in their team as a member.
    Locks: the stream, then its memberships. Raises: StreamNotFound, PermissionRefused,
    InvalidInput (blank), NotUnique (name, slug), UserNotFound, TeamNotFound.
    Side effects: an audit row ("stream.updated", and "stream.manager_changed" when the
    manager or their team changes); "stream changed" (settings) after commit.
    """
    with locking_transaction():
        stream = stream_lock_for_steering(
            actor=actor, stream_id=stream_id, what="change this value stream"
        )
        others = ValueStream.objects.exclude(pk=stream.pk)
        values: dict[str, str] = {}
        if name is not None:
            values["name"] = name_check(name, what="A value stream")
            name_free_check(others, name=values["name"], what="A value stream")
        if slug is not None:
            values["slug"] = _slug_check(slug)
            name_free_check(
                others, name=values["slug"], what="The slug", field="slug", lookup="slug"
            )
        if customer_market is not None:
            values["customer_market"] = name_check(
                customer_market, what="A value stream", field="customer_market", max_length=200
            )
        if description is not None:
            values["description"] = description
        changed = [field for field, value in values.items() if getattr(stream, field) != value]
        for field, value in values.items():
            setattr(stream, field, value)
        if (
            manager_id is not None and manager_id != stream.manager_id
        ) or manager_team_id is not None:
            previous_manager_id = stream.manager_id
            stream.manager_id = user_id_check(manager_id or previous_manager_id, field="manager")
            team_id = _manager_role_give(
                stream=stream, manager_id=stream.manager_id, team_id=manager_team_id
            )
            if stream.manager_id != previous_manager_id:
                changed.append("manager")
            audit_record(
                actor=actor,
                action="stream.manager_changed",
                stream_id=stream.pk,
                target_type="stream",
                target_id=stream.pk,
                data={
                    "previous_manager_id": previous_manager_id,
                    "manager_id": stream.manager_id,
                    "team_id": team_id,
                },
            )
        stream.save()
        settings_change_record(
            actor=actor,
            action="stream.updated",
            stream_id=stream.pk,
            target_type="stream",
            target_id=stream.pk,
            data={"changed_fields": len(changed), **{f"changed_{f}": True for f in changed}},
        )
    return stream


def _slug_check(slug: str) -> str:
    slug = slug.strip()
    try:
        validate_slug(slug)
    except ValidationError:
        raise InvalidInput(
            "A slug is letters, numbers, hyphens and underscores.", field="slug"
        ) from None
    if len(slug) > 120:
        raise InvalidInput("A slug is at most 120 characters.", field="slug")
    return slug


def _manager_role_give(*, stream: ValueStream, manager_id: int, team_id: int | None) -> int:
    """Make ``manager_id`` the one holder of the manager role in the stream, in the team
    ``team_id`` (or where the role is now, or the first team); returns that team's id.

    The caller holds the stream's lock, which every change of its memberships takes.
    """
    memberships = Membership.objects.filter(team__value_stream=stream)
    if team_id is not None:
        if not stream.teams.filter(pk=team_id).exists():
            raise TeamNotFound(data={"team_id": team_id}, field="manager_team")
    else:
        holders = memberships.filter(role=Role.VALUE_STREAM_MANAGER).order_by("team_id")
        current = holders.filter(user_id=stream.manager_id).first() or holders.first()
        team_id = current.team_id if current is not None else None
        if team_id is None:
            team_id = stream.teams.order_by("pk").values_list("pk", flat=True).first()
        if team_id is None:
            raise InvalidInput(
                "This value stream has no team yet: add one before naming its manager.",
                data={"stream_id": stream.pk},
                field="manager",
            )
    # Everyone else who held the role stays in their team, as a member.
    memberships.filter(role=Role.VALUE_STREAM_MANAGER).exclude(
        user_id=manager_id, team_id=team_id
    ).update(role=Role.MEMBER)
    Membership.objects.update_or_create(
        user_id=manager_id, team_id=team_id, defaults={"role": Role.VALUE_STREAM_MANAGER}
    )
    return team_id


def value_stream_delete(*, stream_id: int, actor: Actor) -> None:
    """Delete a stream with its teams, cycles, columns and channels, if it never held a card.

    Locks: the stream. Raises: StreamNotFound, PermissionRefused, InUse (cards or moves
    need it).
    Side effects: an audit row; "stream changed" after commit (its consumers let a
    deleted stream go).
    """
    with locking_transaction():
        stream = stream_lock_for_steering(
            actor=actor, stream_id=stream_id, what="delete this value stream"
        )
        try:
            stream.delete()
        except ProtectedError as error:
            raise InUse(
                "This value stream still holds cards and their move log; it stays so its "
                "history keeps its meaning.",
                data={"stream_id": stream_id, "protected": len(error.protected_objects)},
            ) from None
        settings_change_record(
            actor=actor,
            action="stream.deleted",
            stream_id=stream_id,
            target_type="stream",
            target_id=stream_id,
        )
