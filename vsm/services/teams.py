"""A stream's teams, and who is in them with which role."""

from __future__ import annotations

from typing import Final

from vsm.actors import Actor
from vsm.errors import InvalidInput
from vsm.models import Membership, Role, Team, ValueStream
from vsm.services.common import (
    InUse,
    ManagerMembershipRequired,
    ManagerRoleHeldElsewhere,
    ManagerRoleReserved,
    MembershipNotFound,
    NotUnique,
    TeamNotFound,
    count_of,
    name_check,
    name_free_check,
    settings_change_record,
    stream_lock_for_steering,
    user_id_check,
)
from vsm.transactions import locking_transaction

# The audit log holds numbers, not words: a role is recorded by its number here.
# Append new roles at the end; never renumber.
ROLE_NUMBERS: Final[dict[str, int]] = {
    Role.VALUE_STREAM_MANAGER: 1,
    Role.TEAM_COORDINATOR: 2,
    Role.TEAM_LEADER: 3,
    Role.MEMBER: 4,
}


def _team_locked(*, team_id: int, actor: Actor, what: str) -> tuple[Team, ValueStream]:
    missing = TeamNotFound(data={"team_id": team_id})
    stream_id = Team.objects.filter(pk=team_id).values_list("value_stream_id", flat=True).first()
    if stream_id is None:
        raise missing
    stream = stream_lock_for_steering(actor=actor, stream_id=stream_id, what=what, missing=missing)
    team = Team.objects.select_for_update(no_key=True).filter(pk=team_id).first()
    if team is None:
        raise missing
    return team, stream


def team_create(*, stream_id: int, name: str, actor: Actor) -> Team:
    """Add a team to a stream.

    Locks: the stream. Raises: StreamNotFound, PermissionRefused, InvalidInput, NotUnique.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    name = name_check(name, what="A team")
    with locking_transaction():
        stream = stream_lock_for_steering(actor=actor, stream_id=stream_id, what="change teams")
        name_free_check(stream.teams.all(), name=name, what="A team")
        team = Team.objects.create(value_stream=stream, name=name)
        settings_change_record(
            actor=actor,
            action="team.created",
            stream_id=stream.pk,
            target_type="team",
            target_id=team.pk,
        )
    return team


def team_rename(*, team_id: int, name: str, actor: Actor) -> Team:
    """Rename a team.

    Locks: the stream, then the team. Raises: TeamNotFound, PermissionRefused,
    InvalidInput, NotUnique.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    name = name_check(name, what="A team")
    with locking_transaction():
        team, stream = _team_locked(team_id=team_id, actor=actor, what="change teams")
        name_free_check(stream.teams.exclude(pk=team.pk), name=name, what="A team")
        team.name = name
        team.save(update_fields=["name"])
        settings_change_record(
            actor=actor,
            action="team.renamed",
            stream_id=stream.pk,
            target_type="team",
            target_id=team.pk,
        )
    return team


def team_delete(*, team_id: int, actor: Actor) -> None:
    """Delete a team and its memberships.

    Refused while the team owns a cycle, receives cards at a control point, or holds the
    stream manager's manager role. Cards, handoffs and experiments that name it keep no
    team afterwards.
    Locks: the stream, then the team. Raises: TeamNotFound, PermissionRefused, InUse.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        team, stream = _team_locked(team_id=team_id, actor=actor, what="change teams")
        cycles = team.owned_cycles.count()
        if cycles:
            raise InUse(
                f"{team.name} owns {count_of(cycles, 'cycle')}: give "
                f"{'it' if cycles == 1 else 'them'} to another team first.",
                data={"team_id": team.pk, "cycles": cycles},
            )
        control_points = team.receiving_control_points.count()
        if control_points:
            raise InUse(
                f"{team.name} receives the cards of {count_of(control_points, 'control point')}: "
                "name another receiving team first.",
                data={"team_id": team.pk, "control_points": control_points},
            )
        if team.memberships.filter(
            user_id=stream.manager_id, role=Role.VALUE_STREAM_MANAGER
        ).exists():
            raise ManagerMembershipRequired(
                f"The stream's manager holds the value stream manager role in {team.name}: "
                "change the stream's manager (or their team) first.",
                data={"team_id": team.pk},
            )
        team.delete()
        settings_change_record(
            actor=actor,
            action="team.deleted",
            stream_id=stream.pk,
            target_type="team",
            target_id=team_id,
        )


def _role_check(role: str) -> Role:
    if role not in Role.values:
        raise InvalidInput("Choose one of the team roles.", field="role")
    return Role(role)


def _membership_locked(*, membership_id: int, actor: Actor) -> tuple[Membership, ValueStream]:
    missing = MembershipNotFound(data={"membership_id": membership_id})
    stream_id = (
        Membership.objects.filter(pk=membership_id)
        .values_list("team__value_stream_id", flat=True)
        .first()
    )
    if stream_id is None:
        raise missing
    stream = stream_lock_for_steering(
        actor=actor, stream_id=stream_id, what="change memberships", missing=missing
    )
    membership = (
        Membership.objects.select_for_update(no_key=True, of=("self",))
        .select_related("team")
        .filter(pk=membership_id)
        .first()
    )
    if membership is None:
        raise missing
    return membership, stream


def _manager_role_held_check(
    *, stream: ValueStream, user_id: int, membership_id: int | None = None
) -> None:
    """Raises: ManagerRoleReserved unless ``user_id`` is the stream's manager;
    ManagerRoleHeldElsewhere when they hold the role already in another membership."""
    if user_id != stream.manager_id:
        raise ManagerRoleReserved(data={"user_id": user_id}, field="role")
    holding = Membership.objects.filter(
        team__value_stream=stream, user_id=user_id, role=Role.VALUE_STREAM_MANAGER
    )
    if membership_id is not None:
        holding = holding.exclude(pk=membership_id)
    held = holding.select_related("team").first()
    if held is not None:
        raise ManagerRoleHeldElsewhere(
            f"The stream's manager holds the value stream manager role in {held.team.name} "
            "already: one team of the stream has it. Change the manager's team on the value "
            "stream instead.",
            data={"membership_id": held.pk, "team_id": held.team_id},
            field="role",
        )


def _is_last_manager_membership(membership: Membership, stream: ValueStream) -> bool:
    """Whether ``membership`` is the one that gives the stream's manager the manager role."""
    if membership.user_id != stream.manager_id or membership.role != Role.VALUE_STREAM_MANAGER:
        return False
    return not (
        Membership.objects.filter(
            team__value_stream=stream, user_id=stream.manager_id, role=Role.VALUE_STREAM_MANAGER
        )
        .exclude(pk=membership.pk)
        .exists()
    )


def membership_data(membership: Membership) -> dict[str, int | bool | None]:
    """A membership in the audit log: ids and the role's number."""
    return {
        "membership_id": membership.pk,
        "user_id": membership.user_id,
        "team_id": membership.team_id,
        "role": ROLE_NUMBERS[membership.role],
    }


def membership_add(
    *, team_id: int, user_id: int, actor: Actor, role: str = Role.MEMBER
) -> Membership:
    """Add a person to a team with a role (one membership per person and team).

    The value stream manager role is the stream manager's only, in one team.
    Locks: the stream. Raises: TeamNotFound, PermissionRefused, UserNotFound,
    InvalidInput (role), NotUnique (already in the team), ManagerRoleReserved,
    ManagerRoleHeldElsewhere.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    role = _role_check(role)
    with locking_transaction():
        team, stream = _team_locked(team_id=team_id, actor=actor, what="change memberships")
        user_id_check(user_id, field="user")
        if team.memberships.filter(user_id=user_id).exists():
            raise NotUnique(
                f"That person is already a member of {team.name}: change their role instead.",
                data={"team_id": team.pk, "user_id": user_id},
                field="user",
            )
        if role == Role.VALUE_STREAM_MANAGER:
            _manager_role_held_check(stream=stream, user_id=user_id)
        membership = Membership.objects.create(team=team, user_id=user_id, role=role)
        settings_change_record(
            actor=actor,
            action="membership.added",
            stream_id=stream.pk,
            target_type="membership",
            target_id=membership.pk,
            data=membership_data(membership),
        )
    return membership


def membership_set_role(*, membership_id: int, role: str, actor: Actor) -> Membership:
    """Change a member's role in their team. The value stream manager role is the stream
    manager's only, in one team.

    Locks: the stream, then the membership. Raises: MembershipNotFound,
    PermissionRefused, InvalidInput, ManagerRoleReserved, ManagerRoleHeldElsewhere,
    ManagerMembershipRequired.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    role = _role_check(role)
    with locking_transaction():
        membership, stream = _membership_locked(membership_id=membership_id, actor=actor)
        if role == Role.VALUE_STREAM_MANAGER:
            _manager_role_held_check(
                stream=stream, user_id=membership.user_id, membership_id=membership.pk
            )
        if role != Role.VALUE_STREAM_MANAGER and _is_last_manager_membership(membership, stream):
            raise ManagerMembershipRequired(data={"membership_id": membership.pk}, field="role")
        membership.role = role
        membership.save(update_fields=["role"])
        settings_change_record(
            actor=actor,
            action="membership.role_set",
            stream_id=stream.pk,
            target_type="membership",
            target_id=membership.pk,
            data=membership_data(membership),
        )
    return membership


def membership_remove(*, membership_id: int, actor: Actor) -> None:
    """Take a person out of a team. Cards they own keep them until someone changes it.

    Locks: the stream, then the membership. Raises: MembershipNotFound,
    PermissionRefused, ManagerMembershipRequired.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        membership, stream = _membership_locked(membership_id=membership_id, actor=actor)
        if _is_last_manager_membership(membership, stream):
            raise ManagerMembershipRequired(data={"membership_id": membership.pk})
        data = membership_data(membership)
        membership.delete()
        settings_change_record(
            actor=actor,
            action="membership.removed",
            stream_id=stream.pk,
            target_type="membership",
            target_id=membership_id,
            data=data,
        )
