"""Reads about streams and who may see or steer them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Value

from vsm.models import Membership, Role, ValueStream

AnyUser = AbstractBaseUser | AnonymousUser


def value_streams_visible_to(user: AnyUser) -> QuerySet[ValueStream]:
    """Streams whose board the user may see: superusers see all, others their teams' streams."""
    streams = ValueStream.objects.all()
    if not user.is_authenticated:
        return streams.none()
    if user.is_superuser:
        return streams
    member_of = Membership.objects.filter(user=user, team__value_stream=OuterRef("pk"))
    return streams.filter(Q(manager=user) | Exists(member_of))


def with_viewer_manages(streams: QuerySet[ValueStream], user: AnyUser) -> QuerySet[ValueStream]:
    """Annotate ``viewer_manages`` onto each stream: whether this user may steer it.

    The one statement of the rule: admins, the stream's manager and members with the
    manager role steer a stream (WIP limits, overrides). In SQL, so a page that reads
    its stream learns it in the same query.
    """
    if not user.is_authenticated:
        return streams.annotate(viewer_manages=Value(False))
    if user.is_superuser:
        return streams.annotate(viewer_manages=Value(True))
    manager_membership = Membership.objects.filter(
        user=user, team__value_stream=OuterRef("pk"), role=Role.VALUE_STREAM_MANAGER
    )
    return streams.annotate(
        viewer_manages=ExpressionWrapper(
            Q(manager=user) | Exists(manager_membership), output_field=BooleanField()
        )
    )


def user_manages_stream(user: AnyUser, value_stream: ValueStream) -> bool:
    """Whether the user may steer the stream (see ``with_viewer_manages``); one query."""
    manages = (
        with_viewer_manages(ValueStream.objects.filter(pk=value_stream.pk), user)
        .values_list("viewer_manages", flat=True)
        .first()
    )
    return bool(manages)
