"""The one access rule: which streams an actor may see, and which it may steer.

See: admins (superusers), the system, the stream's manager, members of its teams, and
an API token of that stream. Steer (WIP limits and overrides, review decisions,
configuration): admins, the system, the stream's manager and members with the value
stream manager role. Missing and forbidden are answered alike, ``StreamNotFound``
(Zulip's ``access_stream_by_id`` is the model), so nobody learns what exists beyond
their reach.
"""

from __future__ import annotations

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Value

from vsm.actors import Actor, SystemActor, TokenActor, UserActor
from vsm.errors import NotFound, PermissionRefused
from vsm.models import Membership, Role, ValueStream


class StreamNotFound(NotFound):
    code = "stream_not_found"
    default_message = "No such value stream."


def _sees_everything(actor: Actor) -> bool:
    return isinstance(actor, SystemActor) or (
        isinstance(actor, UserActor) and actor.user.is_authenticated and actor.user.is_superuser
    )


def streams_visible_to(actor: Actor) -> QuerySet[ValueStream]:
    """The streams ``actor`` may see, each annotated ``viewer_manages`` (may it steer).

    In SQL, so a page that reads its stream learns both in the same query.
    """
    streams = ValueStream.objects.all()
    if _sees_everything(actor):
        return streams.annotate(viewer_manages=Value(True))
    if isinstance(actor, TokenActor):
        return streams.filter(pk=actor.stream_id).annotate(viewer_manages=Value(False))
    assert isinstance(actor, UserActor)
    user = actor.user
    if not user.is_authenticated:
        return streams.none().annotate(viewer_manages=Value(False))
    member_of = Membership.objects.filter(user=user, team__value_stream=OuterRef("pk"))
    manager_role = member_of.filter(role=Role.VALUE_STREAM_MANAGER)
    return streams.filter(Q(manager=user) | Exists(member_of)).annotate(
        viewer_manages=ExpressionWrapper(
            Q(manager=user) | Exists(manager_role), output_field=BooleanField()
        )
    )


def stream_access(
    *,
    actor: Actor,
    slug: str | None = None,
    stream_id: int | None = None,
    steer: bool = False,
    streams: QuerySet[ValueStream] | None = None,
) -> ValueStream:
    """The stream named by ``slug`` or ``stream_id`` if ``actor`` may see it (and, with
    ``steer``, steer it), in one query; it carries ``viewer_manages``.

    ``streams``: a narrowing or annotation of ``streams_visible_to(actor)`` to read it
    from (a selector adding what its page needs to the same query).
    Raises: StreamNotFound (missing or out of reach, alike), PermissionRefused (``steer``
    asked of a stream the actor may only see).
    """
    if (slug is None) == (stream_id is None):
        raise TypeError("Name the stream by slug or by id, not both.")
    queryset = streams if streams is not None else streams_visible_to(actor)
    lookup = {"slug": slug} if slug is not None else {"pk": stream_id}
    stream = queryset.filter(**lookup).first()
    if stream is None:
        raise StreamNotFound(data={"stream_id": stream_id} if stream_id is not None else None)
    if steer:
        stream_steer_check(actor=actor, stream=stream)
    return stream


def actor_steers(*, actor: Actor, stream: ValueStream) -> bool:
    """Whether ``actor`` may steer ``stream``: free when the stream was read through
    ``streams_visible_to`` for this actor, one query otherwise."""
    annotated: bool | None = getattr(stream, "viewer_manages", None)
    if annotated is not None:
        return annotated
    steers = (
        streams_visible_to(actor)
        .filter(pk=stream.pk)
        # The plugin cannot follow an annotation made in another function.
        .values_list("viewer_manages", flat=True)  # type: ignore[misc]
    )
    return bool(steers.first())


def stream_steer_check(*, actor: Actor, stream: ValueStream, what: str = "") -> None:
    """Raises: PermissionRefused unless ``actor`` may steer ``stream``.

    ``what``: the refused action in words, for the message ("change WIP limits").
    """
    if not actor_steers(actor=actor, stream=stream):
        doing = f" {what}" if what else " do that"
        raise PermissionRefused(
            f"Only an admin or the value stream manager may{doing}.",
            data={"stream_id": stream.pk},
        )


def stream_members_check(*, stream_id: int, user_ids: set[int]) -> set[int]:
    """Those of ``user_ids`` who are not in any team of the stream (nor its manager)."""
    if not user_ids:
        return set()
    members = set(
        Membership.objects.filter(team__value_stream_id=stream_id, user_id__in=user_ids)
        .values_list("user_id", flat=True)
        .distinct()
    )
    members |= set(
        ValueStream.objects.filter(pk=stream_id, manager_id__in=user_ids).values_list(
            "manager_id", flat=True
        )
    )
    return user_ids - members
