"""The value streams a user may see and steer, and their members."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404

from boards.models import Card, Outcome
from vsm.models import ValueStream
from vsm.selectors import (
    AnyUser,
    user_manages_stream,
    value_streams_visible_to,
    with_viewer_manages,
)


def stream_for_user(*, user: AnyUser, slug: str) -> ValueStream:
    """The stream with this slug if the user may see it; 404 otherwise (no existence leak).

    It carries ``viewer_manages``, whether this user may steer it, read in the same
    query: every board request asks (see ``viewer_manages_stream``).
    """
    return get_object_or_404(with_viewer_manages(value_streams_visible_to(user), user), slug=slug)


def stream_and_card_column_for_user(
    *, user: AnyUser, slug: str, card_id: int
) -> tuple[ValueStream, int]:
    """``stream_for_user``'s stream and the column its card ``card_id`` is in, in one query.

    404 when the stream is out of reach or the card belongs elsewhere. All a move needs
    before its service locks and reads the card itself.
    """
    card_column = (
        Card.objects.filter(pk=card_id, value_stream=OuterRef("pk")).order_by().values("column_id")
    )
    streams = with_viewer_manages(value_streams_visible_to(user), user).annotate(
        card_column_id=Subquery(card_column[:1])
    )
    stream = get_object_or_404(streams, slug=slug)
    if stream.card_column_id is None:
        raise Http404("No such card.")
    return stream, stream.card_column_id


def viewer_manages_stream(*, user: AnyUser, stream: ValueStream) -> bool:
    """Whether the user may steer the stream (WIP limits, overrides).

    Free for a stream read by ``stream_for_user`` for this same user; one query otherwise.
    """
    annotated: bool | None = getattr(stream, "viewer_manages", None)
    if annotated is not None:
        return annotated
    return user_manages_stream(user, stream)


def value_streams_for_user(*, user: AnyUser) -> QuerySet[ValueStream]:
    return (
        value_streams_visible_to(user)
        .select_related("manager")
        .annotate(open_cards=Count("cards", filter=Q(cards__outcome=Outcome.OPEN)))
        .order_by("name")
    )


def stream_members(*, stream: ValueStream):
    return (
        get_user_model()
        .objects.filter(memberships__team__value_stream=stream)
        .distinct()
        .order_by("first_name", "username")
    )
