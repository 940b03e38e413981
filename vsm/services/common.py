"""What the configuration services share: the refusals they give, "keep this value",
the stream lock of a steered change, name checks, and the audit-and-announce record."""

from __future__ import annotations

from enum import Enum
from typing import Final, Literal

from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet

from vsm.access import StreamNotFound, stream_access, stream_steer_check, streams_visible_to
from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.errors import Conflict, DomainError, InvalidInput, NotFound
from vsm.events import StreamChange, stream_changed
from vsm.models import ValueStream


class Unchanged(Enum):
    """The type of ``UNCHANGED``: an update's "keep this value" where None means empty."""

    UNCHANGED = "unchanged"


UNCHANGED: Final = Unchanged.UNCHANGED
Keep = Literal[Unchanged.UNCHANGED]


class NotUnique(InvalidInput):
    """A name, slug, order or membership that another row of the same scope already has."""

    code = "not_unique"
    default_message = "That is already taken."


class NotInStream(InvalidInput):
    """A team, cycle or channel named from another value stream than the row's own."""

    code = "not_in_stream"
    default_message = "That belongs to another value stream."


class InUse(Conflict):
    """A row that others still need (cards, the move log, cycles) cannot be deleted."""

    code = "in_use"
    default_message = "This is still in use; nothing was deleted."


class ManagerRoleReserved(Conflict):
    """The value stream manager role goes with the stream's manager, and only with them."""

    code = "manager_role_reserved"
    default_message = (
        "Only the stream's manager holds the value stream manager role: change the "
        "stream's manager instead."
    )


class ManagerRoleHeldElsewhere(Conflict):
    """The stream's manager holds the value stream manager role in one team of the
    stream: a second membership with it would leave "their team" ambiguous."""

    code = "manager_role_held_elsewhere"
    default_message = (
        "The stream's manager holds the value stream manager role in another team already: "
        "change the manager's team on the value stream instead."
    )


class ManagerMembershipRequired(Conflict):
    """The stream's manager keeps a membership with the manager role in one of its teams."""

    code = "manager_membership_required"
    default_message = (
        "The stream's manager keeps the value stream manager role in one of its teams: "
        "change the stream's manager first."
    )


class TeamNotFound(NotFound):
    code = "team_not_found"
    default_message = "No such team in this value stream."


class MembershipNotFound(NotFound):
    code = "membership_not_found"
    default_message = "No such membership in this value stream."


class ChannelNotFound(NotFound):
    code = "channel_not_found"
    default_message = "No such channel in this value stream."


class UserNotFound(NotFound):
    code = "user_not_found"
    default_message = "No such user."


def stream_lock_for_steering(
    *, actor: Actor, stream_id: int, what: str, missing: DomainError | None = None
) -> ValueStream:
    """Lock the stream row for a configuration change that ``actor`` must steer.

    ``missing``: the error to raise when the stream is missing or out of the actor's
    reach (the row the caller was asked about, e.g. TeamNotFound), so that a caller
    learns nothing about rows beyond its reach. Call it inside the caller's
    ``locking_transaction``.
    Locks: the stream row (no key: cards and moves may keep referencing it).
    Raises: ``missing`` or StreamNotFound, PermissionRefused.
    """
    locked = streams_visible_to(actor).select_for_update(no_key=True, of=("self",))
    try:
        stream = stream_access(actor=actor, stream_id=stream_id, streams=locked)
    except StreamNotFound:
        if missing is None:
            raise
        raise missing from None
    stream_steer_check(actor=actor, stream=stream, what=what)
    return stream


def name_check(name: str, *, what: str, field: str = "name", max_length: int = 120) -> str:
    """``name`` without surrounding blanks. Raises: InvalidInput (empty, too long)."""
    name = name.strip()
    if not name:
        raise InvalidInput(f"{what} needs a name.", field=field)
    if len(name) > max_length:
        raise InvalidInput(
            f"{what}'s name is at most {max_length} characters.",
            data={"max_length": max_length},
            field=field,
        )
    return name


def name_free_check(
    queryset: QuerySet[Model], *, name: str, what: str, field: str = "name", lookup: str = "name"
) -> None:
    """Raises: NotUnique when a row of ``queryset`` (the scope, without the row being
    changed) already has ``name``, in any case: "sales" beside "Sales" would read as one
    team on every page and in every chart.

    Compared in Python (``str.casefold``): SQLite folds the case of ASCII letters only,
    and a scope (a stream's teams, channels or cycles, a cycle's columns, the streams)
    holds few names. The configuration services call it under the stream's lock, so no
    name of the scope is added meanwhile.
    """
    folded = name.casefold()
    for taken in queryset.values_list(lookup, flat=True).iterator():
        if taken.casefold() == folded:
            raise NotUnique(f"{what} “{taken}” already exists here.", field=field)


def settings_change_record(
    *,
    actor: Actor,
    action: str,
    stream_id: int,
    target_type: str,
    target_id: int | None,
    data: dict[str, int | bool | None] | None = None,
) -> None:
    """Record a change of the stream's configuration in the audit log, and announce
    "stream changed" (settings) after commit: the metrics read the configuration."""
    stream_changed(stream_id, StreamChange.SETTINGS)
    audit_record(
        actor=actor,
        action=action,
        stream_id=stream_id,
        target_type=target_type,
        target_id=target_id,
        data=data,
    )


def user_id_check(user_id: int, *, field: str) -> int:
    """Raises: UserNotFound unless the user exists."""
    if not get_user_model().objects.filter(pk=user_id).exists():
        raise UserNotFound(data={"user_id": user_id}, field=field)
    return user_id


def count_of(n: int, noun: str) -> str:
    """The count with its noun: "1 cycle", "3 cycles"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
