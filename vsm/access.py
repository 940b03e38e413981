"""The one access rule: which streams an actor may see, and which it may steer.

See: admins (superusers), the system, the stream's manager, members of its teams, and
an API token of that stream. Steer (WIP limits and overrides, review decisions,
configuration): admins, the system, the stream's manager and members with the value
stream manager role. Missing and forbidden are answered alike, ``StreamNotFound``
(Zulip's ``access_stream_by_id`` is the model), so nobody learns what exists beyond
their reach.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Value

from vsm.actors import Actor, SystemActor, TokenActor, UserActor
from vsm.errors import NotFound, PermissionRefused
from vsm.models import Membership, Role, ValueStream
from vsm.queryshapes import QueryShape


class StreamNotFound(NotFound):
    code = "stream_not_found"
    default_message = "No such value stream."


def _sees_everything(actor: Actor) -> bool:
    return isinstance(actor, SystemActor) or (
        isinstance(actor, UserActor) and actor.user.is_authenticated and actor.user.is_superuser
    )


def _streams_of_user(user_id: int) -> QuerySet[ValueStream]:
    """The streams the user ``user_id`` manages or is a member of, with ``viewer_manages``."""
    member_of = Membership.objects.filter(user_id=user_id, team__value_stream=OuterRef("pk"))
    manager_role = member_of.filter(role=Role.VALUE_STREAM_MANAGER)
    return ValueStream.objects.filter(Q(manager_id=user_id) | Exists(member_of)).annotate(
        viewer_manages=ExpressionWrapper(
            Q(manager_id=user_id) | Exists(manager_role), output_field=BooleanField()
        )
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
    return _streams_of_user(user.pk)


# What a caller adds to the access query for its own page (an annotation), and the
# slots of the values that addition takes.
Extension = Callable[..., QuerySet[ValueStream]]


class StreamAccessQuery:
    """The access rule's lookup of one stream, compiled once per kind of actor and of
    lookup (``vsm.queryshapes``): every request checks access, and building this query
    in the ORM costs more than the database's answer.

    ``extend(streams, **values)``: an addition to the query (say, an annotation the
    page needs), taking the ``slots`` named here; its values are given to ``first``.
    """

    def __init__(self, extend: Extension | None = None, *, slots: dict[str, type] | None = None):
        self._extend = extend
        self._extra_slots = dict(slots or {})
        self._shapes: dict[tuple[str, str], QueryShape[ValueStream]] = {}

    def _shape(self, kind: str, lookup: str) -> QueryShape[ValueStream]:
        shape = self._shapes.get((kind, lookup))
        if shape is None:
            slots: dict[str, type] = {"key": str if lookup == "slug" else int}
            if kind in ("token", "user"):
                slots["who"] = int

            def build(*, key: object, who: int = 0, **extra: object) -> QuerySet[ValueStream]:
                streams = (
                    _streams_of_user(who)
                    if kind == "user"
                    else ValueStream.objects.annotate(viewer_manages=Value(kind == "everything"))
                )
                if kind == "token":
                    streams = streams.filter(pk=who)
                if self._extend is not None:
                    streams = self._extend(streams, **extra)
                return streams.filter(**{lookup: key}).order_by("pk")[:1]

            shape = self._shapes[(kind, lookup)] = QueryShape(
                build, slots={**slots, **self._extra_slots}
            )
        return shape

    def first(
        self,
        *,
        actor: Actor,
        slug: str | None = None,
        stream_id: int | None = None,
        **extra: object,
    ) -> ValueStream | None:
        """The stream named by ``slug`` or ``stream_id`` if ``actor`` may see it, with
        ``viewer_manages`` (a bool) and the extension's annotations; else None."""
        lookup, key = ("slug", slug) if slug is not None else ("pk", stream_id)
        values: dict[str, object] = {"key": key, **extra}
        if _sees_everything(actor):
            kind = "everything"
        elif isinstance(actor, TokenActor):
            kind, values["who"] = "token", actor.stream_id
        else:
            assert isinstance(actor, UserActor)
            if not actor.user.is_authenticated:
                return None
            kind, values["who"] = "user", actor.user.pk
        stream = self._shape(kind, lookup).first(**values)
        if stream is not None:
            # SQLite answers a boolean expression as 0 or 1.
            stream.viewer_manages = bool(stream.viewer_manages)  # type: ignore[attr-defined]
        return stream


_STREAM_ACCESS = StreamAccessQuery()


def stream_access(
    *,
    actor: Actor,
    slug: str | None = None,
    stream_id: int | None = None,
    steer: bool = False,
    streams: QuerySet[ValueStream] | None = None,
    query: StreamAccessQuery | None = None,
    query_values: Mapping[str, object] | None = None,
) -> ValueStream:
    """The stream named by ``slug`` or ``stream_id`` if ``actor`` may see it (and, with
    ``steer``, steer it), in one query; it carries ``viewer_manages``.

    ``streams``: a narrowing of ``streams_visible_to(actor)`` to read it from (say,
    locked ``FOR UPDATE``). ``query`` and ``query_values``: instead, a compiled access
    query extended with what the caller's page needs, and the values it takes.
    Raises: StreamNotFound (missing or out of reach, alike), PermissionRefused (``steer``
    asked of a stream the actor may only see), TypeError (both or neither of slug and
    stream_id; a value of the wrong type).
    """
    if (slug is None) == (stream_id is None):
        raise TypeError("Name the stream by slug or by id, not both.")
    if streams is not None:
        lookup = {"slug": slug} if slug is not None else {"pk": stream_id}
        stream = streams.filter(**lookup).first()
    else:
        stream = (query or _STREAM_ACCESS).first(
            actor=actor, slug=slug, stream_id=stream_id, **(query_values or {})
        )
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
