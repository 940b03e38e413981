"""How prospects enter a stream: its channels."""

from __future__ import annotations

from vsm.actors import Actor
from vsm.errors import InvalidInput
from vsm.models import Channel, ChannelKind
from vsm.services.common import (
    ChannelNotFound,
    name_check,
    name_free_check,
    settings_change_record,
    stream_lock_for_steering,
)
from vsm.transactions import locking_transaction


def _kind_check(kind: str) -> ChannelKind:
    if kind not in ChannelKind.values:
        raise InvalidInput("Choose one of the kinds of channel.", field="kind")
    return ChannelKind(kind)


def channel_create(
    *,
    stream_id: int,
    name: str,
    actor: Actor,
    kind: str = ChannelKind.OTHER,
    is_active: bool = True,
) -> Channel:
    """Add a channel (a way prospects enter) to a stream; its name is unique there.

    Locks: the stream. Raises: StreamNotFound, PermissionRefused, InvalidInput, NotUnique.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    name = name_check(name, what="A channel")
    kind = _kind_check(kind)
    with locking_transaction():
        stream = stream_lock_for_steering(actor=actor, stream_id=stream_id, what="change channels")
        name_free_check(stream.channels.all(), name=name, what="A channel")
        channel = Channel.objects.create(
            value_stream=stream, name=name, kind=kind, is_active=is_active
        )
        settings_change_record(
            actor=actor,
            action="channel.created",
            stream_id=stream.pk,
            target_type="channel",
            target_id=channel.pk,
            data={"active": channel.is_active},
        )
    return channel


def channel_update(
    *,
    channel_id: int,
    actor: Actor,
    name: str | None = None,
    kind: str | None = None,
    is_active: bool | None = None,
) -> Channel:
    """Rename a channel, change its kind, or (de)activate it. A deactivated channel takes
    no new cards; cards that have it keep it.

    Locks: the stream, then the channel. Raises: ChannelNotFound, PermissionRefused,
    InvalidInput, NotUnique.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        return _channel_change(
            channel_id=channel_id,
            actor=actor,
            name=name,
            kind=kind,
            is_active=is_active,
            action="channel.updated",
        )


def channel_deactivate(*, channel_id: int, actor: Actor) -> Channel:
    """Stop a channel from taking new cards; cards that have it keep it.

    Locks: the stream, then the channel. Raises: ChannelNotFound, PermissionRefused.
    Side effects: an audit row; "stream changed" (settings) after commit.
    """
    with locking_transaction():
        return _channel_change(
            channel_id=channel_id, actor=actor, is_active=False, action="channel.deactivated"
        )


def _channel_change(
    *,
    channel_id: int,
    actor: Actor,
    action: str,
    name: str | None = None,
    kind: str | None = None,
    is_active: bool | None = None,
) -> Channel:
    missing = ChannelNotFound(data={"channel_id": channel_id})
    stream_id = (
        Channel.objects.filter(pk=channel_id).values_list("value_stream_id", flat=True).first()
    )
    if stream_id is None:
        raise missing
    stream = stream_lock_for_steering(
        actor=actor, stream_id=stream_id, what="change channels", missing=missing
    )
    channel = Channel.objects.select_for_update(no_key=True).filter(pk=channel_id).first()
    if channel is None:
        raise missing
    if name is not None:
        name = name_check(name, what="A channel")
        name_free_check(stream.channels.exclude(pk=channel.pk), name=name, what="A channel")
        channel.name = name
    if kind is not None:
        channel.kind = _kind_check(kind)
    if is_active is not None:
        channel.is_active = is_active
    channel.save()
    settings_change_record(
        actor=actor,
        action=action,
        stream_id=stream.pk,
        target_type="channel",
        target_id=channel.pk,
        data={"active": channel.is_active},
    )
    return channel
