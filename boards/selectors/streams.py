"""The value streams an actor may see and steer, and their members."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from boards.errors import CardNotFound
from boards.models import Card, Outcome
from pdca.models import Cycle
from vsm.access import StreamAccessQuery, actor_steers, stream_access, streams_visible_to
from vsm.actors import Actor
from vsm.models import Channel, ValueStream


def stream_for_actor(*, actor: Actor, slug: str) -> ValueStream:
    """The stream with this slug if the actor may see it, carrying ``viewer_manages``.

    Raises: StreamNotFound (missing or out of reach alike).
    """
    return stream_access(actor=actor, slug=slug)


def _with_card_column(streams: QuerySet[ValueStream], *, card_id: int) -> QuerySet[ValueStream]:
    card_column = (
        Card.objects.filter(pk=card_id, value_stream=OuterRef("pk")).order_by().values("column_id")
    )
    return streams.annotate(card_column_id=Subquery(card_column[:1]))


_STREAM_WITH_CARD_COLUMN = StreamAccessQuery(_with_card_column, slots={"card_id": int})


def stream_and_card_column_for_actor(
    *, actor: Actor, slug: str, card_id: int
) -> tuple[ValueStream, int]:
    """``stream_for_actor``'s stream and the column its card ``card_id`` is in, in one
    query: all a move needs before its service locks and reads the card itself.

    Raises: StreamNotFound, CardNotFound (the card belongs elsewhere, or to no stream).
    """
    stream = stream_access(
        actor=actor,
        slug=slug,
        query=_STREAM_WITH_CARD_COLUMN,
        query_values={"card_id": card_id},
    )
    # Annotated above; the plugin cannot see it through stream_access.
    card_column_id: int | None = stream.card_column_id  # type: ignore[attr-defined]
    if card_column_id is None:
        raise CardNotFound(data={"card_id": card_id, "stream_id": stream.pk})
    return stream, card_column_id


def viewer_manages_stream(*, actor: Actor, stream: ValueStream) -> bool:
    """Whether the actor may steer the stream (WIP limits, overrides): free for a
    stream read by ``stream_for_actor`` for this same actor, one query otherwise."""
    return actor_steers(actor=actor, stream=stream)


def value_streams_for_actor(*, actor: Actor) -> QuerySet[ValueStream]:
    return (
        streams_visible_to(actor)
        .select_related("manager")
        .annotate(open_cards=Count("cards", filter=Q(cards__outcome=Outcome.OPEN)))
        .order_by("name")
    )


def stream_cycles(*, stream: ValueStream) -> QuerySet[Cycle]:
    """The stream's cycles in their order (Collaboration, Sales/Buying, ...)."""
    return Cycle.objects.filter(value_stream=stream).order_by("order")


def stream_channels(*, stream: ValueStream, active_only: bool = False) -> QuerySet[Channel]:
    """The stream's channels by name; ``active_only``: those new cards may come from."""
    channels = Channel.objects.filter(value_stream=stream).order_by("name")
    return channels.filter(is_active=True) if active_only else channels


def card_form_choices(*, stream: ValueStream, card: Card | None = None) -> dict[str, QuerySet]:
    """The channels and owners a card's form offers: the stream's active channels and
    its members, plus what the card already has (a channel deactivated since, an owner
    who left the stream's teams), so that saving the form keeps them."""
    channels = stream_channels(stream=stream, active_only=True)
    owners = stream_members(stream=stream)
    if card is not None and card.channel_id is not None:
        channels = (channels | stream_channels(stream=stream).filter(pk=card.channel_id)).order_by(
            "name"
        )
    if card is not None and card.owner_id is not None:
        owners = (
            get_user_model()
            .objects.filter(Q(pk__in=owners.values("pk")) | Q(pk=card.owner_id))
            .order_by("first_name", "username")
        )
    return {"channels": channels, "owners": owners}


def stream_members(*, stream: ValueStream) -> QuerySet[AbstractBaseUser]:
    """The people in any team of the stream, by first name: who may own its cards."""
    return (
        get_user_model()
        .objects.filter(memberships__team__value_stream=stream)
        .distinct()
        .order_by("first_name", "username")
    )
