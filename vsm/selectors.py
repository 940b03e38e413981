"""Reads about streams and who may see or steer them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet

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


def user_manages_stream(user: AnyUser, value_stream: ValueStream) -> bool:
    """Admins, the stream's manager and members with the manager role may steer the stream."""
    if not user.is_authenticated:
        return False
    if user.is_superuser or value_stream.manager_id == user.pk:
        return True
    return Membership.objects.filter(
        user=user, team__value_stream=value_stream, role=Role.VALUE_STREAM_MANAGER
    ).exists()
