"""A stream's own facts and its manager; deleting a stream that never held a card."""

from __future__ import annotations

from typing import Final

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db.models import ProtectedError

from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.errors import DataValue, InvalidInput
from vsm.models import AuditEntry, Membership, Role, ValueStream
from vsm.services.common import (
    InUse,
    TeamNotFound,
    name_check,
    name_free_check,
    settings_change_record,
    stream_lock_for_steering,
    user_id_check,
)
from vsm.services.teams import ROLE_NUMBERS, membership_data
from vsm.transactions import locking_transaction

# A role by its number in the audit log; the manager role is never given back this way.
_ROLES_BY_NUMBER: Final[dict[object, Role]] = {
    number: Role(role) for role, number in ROLE_NUMBERS.items() if role != Role.VALUE_STREAM_MANAGER
}


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
    role in one team of the stream (``manager_team_id``, else a team they are in, else
    the stream's first team), and nobody else holds it; a previous holder gets back the
    role they had in that team, or leaves it when they joined it for the role.
    Locks: the stream, then its memberships. Raises: StreamNotFound, PermissionRefused,
    InvalidInput (blank), NotUnique (name, slug), UserNotFound, TeamNotFound.
    Side effects: an audit row ("stream.updated", and "stream.manager_changed" when the
    manager or their team changes, with one "membership.role_set" or
    "membership.removed" per previous holder of the role); "stream changed" (settings)
    after commit.
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
            given = _manager_role_give(
                stream=stream, manager_id=stream.manager_id, team_id=manager_team_id, actor=actor
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
                    **given,
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


def _manager_role_give(
    *, stream: ValueStream, manager_id: int, team_id: int | None, actor: Actor
) -> dict[str, DataValue]:
    """Make ``manager_id`` the one holder of the manager role in the stream, in the team
    ``team_id`` (else as ``_manager_team_choice`` picks); the previous holders get back
    what they had before (``_manager_role_take_back``).

    Returns what the audit row of the change keeps: the team, the membership given the
    role, whether it was made for it, and its role before (a number, or None).
    The caller holds the stream's lock, which every change of its memberships takes.
    """
    memberships = Membership.objects.filter(team__value_stream=stream)
    if team_id is not None:
        if not stream.teams.filter(pk=team_id).exists():
            raise TeamNotFound(data={"team_id": team_id}, field="manager_team")
    else:
        team_id = _manager_team_choice(stream=stream, manager_id=manager_id)
    holders = memberships.filter(role=Role.VALUE_STREAM_MANAGER).exclude(
        user_id=manager_id, team_id=team_id
    )
    for held in holders.order_by("pk"):
        _manager_role_take_back(held=held, stream_id=stream.pk, actor=actor)
    membership = memberships.filter(user_id=manager_id, team_id=team_id).first()
    created = membership is None
    previous_role = None if membership is None else ROLE_NUMBERS[membership.role]
    given = membership is None or membership.role != Role.VALUE_STREAM_MANAGER
    if membership is None:
        membership = Membership.objects.create(
            user_id=manager_id, team_id=team_id, role=Role.VALUE_STREAM_MANAGER
        )
    elif given:
        membership.role = Role.VALUE_STREAM_MANAGER
        membership.save(update_fields=["role"])
    return {
        "team_id": team_id,
        "membership_id": membership.pk,
        "role_given": given,
        "membership_created": created,
        "previous_role": previous_role if given else None,
    }


def _manager_team_choice(*, stream: ValueStream, manager_id: int) -> int:
    """The team of the manager's role when none is named: one where they hold it
    already, else one they are in (where the role is now, if they are in that team),
    else the stream's first team. Raises: InvalidInput (the stream has no team)."""
    memberships = Membership.objects.filter(team__value_stream=stream)
    own = dict(
        memberships.filter(user_id=manager_id).order_by("team_id").values_list("team_id", "role")
    )
    role_teams = set(
        memberships.filter(role=Role.VALUE_STREAM_MANAGER).values_list("team_id", flat=True)
    )
    for team_id, role in own.items():
        if role == Role.VALUE_STREAM_MANAGER:
            return team_id
    for team_id in own:
        if team_id in role_teams:
            return team_id
    if own:
        return next(iter(own))
    first: int | None = stream.teams.order_by("pk").values_list("pk", flat=True).first()
    if first is None:
        raise InvalidInput(
            "This value stream has no team yet: add one before naming its manager.",
            data={"stream_id": stream.pk},
            field="manager",
        )
    return first


def _manager_role_take_back(*, held: Membership, stream_id: int, actor: Actor) -> None:
    """Take the manager role from a previous holder's membership, back to what it was
    before the role was given to it: its former role, or no membership at all when one
    was made for the role (a manager from outside the team leaves it again). Without a
    record of that (the stream's first manager), it stays as a member.

    The record is the audit row of the change that gave the role: the model keeps no
    history of a membership.
    """
    given = (
        AuditEntry.objects.filter(
            stream_id=stream_id,
            action="stream.manager_changed",
            data__membership_id=held.pk,
            data__role_given=True,
        )
        .order_by("-id")
        .values_list("data", flat=True)
        .first()
    )
    membership_id = held.pk
    if given is not None and given.get("membership_created") is True:
        data = membership_data(held)
        held.delete()
        action = "membership.removed"
    else:
        previous = given.get("previous_role") if given is not None else None
        held.role = _ROLES_BY_NUMBER.get(previous, Role.MEMBER)
        held.save(update_fields=["role"])
        data = membership_data(held)
        action = "membership.role_set"
    audit_record(
        actor=actor,
        action=action,
        stream_id=stream_id,
        target_type="membership",
        target_id=membership_id,
        data=data,
    )


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
