"""A stream's webhook endpoints: register, pause and resume, rotate the secret, delete,
and send a delivery again. An admin or the stream's manager only (vsm.access: steer).
Each records an audit row (ids and numbers) in its transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from boards.models import CardMove, MoveKind
from vsm.access import stream_access
from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.errors import Conflict, InvalidInput
from vsm.services.common import stream_lock_for_steering
from vsm.transactions import locking_transaction
from webhooks.errors import (
    DeliveryNotFound,
    WebhookEventTypesRequired,
    WebhookNotFound,
    WebhookUrlTaken,
)
from webhooks.models import (
    DESCRIPTION_MAX_LENGTH,
    UNFINISHED,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from webhooks.signing import secret_new
from webhooks.targets import webhook_url_check

# Each endpoint gets one delivery per move: a bound on what one stream's moves cost.
ENDPOINTS_PER_STREAM_MAX = 10
# How long a rotated-out secret may keep signing, so receivers can switch over.
PREVIOUS_SECRET_HOURS_MAX = 24


class WebhookLimitReached(Conflict):
    code = "webhook_limit_reached"
    default_message = f"A value stream has at most {ENDPOINTS_PER_STREAM_MAX} webhooks."


class DeliveryNotRetryable(Conflict):
    code = "webhook_delivery_not_retryable"
    default_message = "This delivery was delivered; it is not sent again."


@dataclass(frozen=True)
class EndpointWithSecret:
    """An endpoint and its secret, to show once (on creation and rotation)."""

    endpoint: WebhookEndpoint
    secret: str


def _event_types(kinds: Iterable[str]) -> str:
    chosen = set(kinds)
    unknown = chosen - set(MoveKind.values)
    if unknown:
        raise InvalidInput("Choose kinds of events from the list.", field="event_types")
    if not chosen:
        raise WebhookEventTypesRequired(field="event_types")
    return ",".join(kind for kind in MoveKind.values if kind in chosen)


def _description(text: str) -> str:
    text = text.strip()
    if len(text) > DESCRIPTION_MAX_LENGTH:
        raise InvalidInput(
            f"A description has at most {DESCRIPTION_MAX_LENGTH} characters.", field="description"
        )
    return text


def webhook_endpoint_create(
    *, actor: Actor, stream_id: int, url: str, event_types: Iterable[str], description: str = ""
) -> EndpointWithSecret:
    """Register a URL that receives the stream's moves of ``event_types`` (MoveKind
    values), from the next move on (earlier ones are not sent).

    Returns the endpoint and its secret, which is shown this once.
    Locks: the stream. Raises: StreamNotFound, PermissionRefused (not an admin or the
    stream's manager), WebhookUrlRefused, WebhookEventTypesRequired, InvalidInput,
    WebhookLimitReached, WebhookUrlTaken (an active webhook of the stream has that URL).
    Side effects: an audit row "webhook.created".
    """
    url = webhook_url_check(url)
    types = _event_types(event_types)
    description = _description(description)
    with locking_transaction():
        # The stream's row, so that two additions take turns under the limit.
        stream = stream_lock_for_steering(
            actor=actor, stream_id=stream_id, what="manage its webhooks"
        )
        if WebhookEndpoint.objects.filter(value_stream=stream).count() >= (
            ENDPOINTS_PER_STREAM_MAX
        ):
            raise WebhookLimitReached(data={"stream_id": stream.pk})
        _refuse_a_second_active(stream_id=stream.pk, url=url)
        newest = CardMove.objects.filter(value_stream=stream).aggregate(m=Max("id"))["m"]
        secret = secret_new()
        endpoint = WebhookEndpoint.objects.create(
            value_stream=stream,
            url=url,
            description=description,
            event_types=types,
            secret=secret,
            created_by_id=actor.user_id,
            watermark_move_id=newest or 0,
        )
        audit_record(
            actor=actor,
            action="webhook.created",
            stream_id=stream.pk,
            target_type="webhook",
            target_id=endpoint.pk,
            data={"event_types": len(endpoint.kinds)},
        )
    return EndpointWithSecret(endpoint, secret)


def _refuse_a_second_active(*, stream_id: int, url: str, other_than: int | None = None) -> None:
    """Raises: WebhookUrlTaken when an active webhook of the stream (other than
    ``other_than``) has ``url``. The constraint webhooks_endpoint_unique_active_url
    holds the rule; this says so in words first."""
    taken = WebhookEndpoint.objects.filter(value_stream_id=stream_id, url=url, is_active=True)
    if other_than is not None:
        taken = taken.exclude(pk=other_than)
    existing = taken.values_list("pk", flat=True).first()
    if existing is not None:
        raise WebhookUrlTaken(field="url", data={"stream_id": stream_id, "endpoint_id": existing})


def _endpoint_locked(*, actor: Actor, stream_id: int, endpoint_id: int) -> WebhookEndpoint:
    """The stream's endpoint, its row locked; call inside a transaction.

    Raises: StreamNotFound, PermissionRefused, WebhookNotFound (also another stream's).
    """
    stream = stream_access(actor=actor, stream_id=stream_id, steer=True)
    endpoint = (
        WebhookEndpoint.objects.select_for_update(no_key=True)
        .filter(pk=endpoint_id, value_stream=stream)
        .first()
    )
    if endpoint is None:
        raise WebhookNotFound(data={"stream_id": stream.pk, "endpoint_id": endpoint_id})
    return endpoint


def webhook_endpoint_set_active(
    *, actor: Actor, stream_id: int, endpoint_id: int, active: bool
) -> WebhookEndpoint:
    """Pause the endpoint (nothing is recorded or sent for it) or resume it (the moves
    made while it was paused are delivered then, in order). Idempotent.

    Locks: the endpoint. Raises: StreamNotFound, PermissionRefused, WebhookNotFound,
    WebhookUrlTaken (resuming it while another active webhook has its URL).
    Side effects: an audit row "webhook.paused" or "webhook.resumed" when it changed;
    after commit, a resumed endpoint is caught up (webhooks.tasks).
    """
    with transaction.atomic():
        endpoint = _endpoint_locked(actor=actor, stream_id=stream_id, endpoint_id=endpoint_id)
        if endpoint.is_active == active:
            return endpoint
        if active:
            _refuse_a_second_active(
                stream_id=endpoint.value_stream_id, url=endpoint.url, other_than=endpoint.pk
            )
        endpoint.is_active = active
        try:
            # Two paused twins resumed at the same moment: the constraint decides.
            with transaction.atomic():
                endpoint.save(update_fields=["is_active"])
        except IntegrityError:
            raise WebhookUrlTaken(
                field="url",
                data={"stream_id": endpoint.value_stream_id, "endpoint_id": endpoint.pk},
            ) from None
        audit_record(
            actor=actor,
            action="webhook.resumed" if active else "webhook.paused",
            stream_id=endpoint.value_stream_id,
            target_type="webhook",
            target_id=endpoint.pk,
        )
        if active:
            _catch_up_after_commit(endpoint.pk)
    return endpoint


def webhook_endpoint_rotate_secret(
    *, actor: Actor, stream_id: int, endpoint_id: int, keep_previous_hours: int = 0
) -> EndpointWithSecret:
    """Give the endpoint a new secret, shown this once. With ``keep_previous_hours``
    (0 to PREVIOUS_SECRET_HOURS_MAX), deliveries are signed with the old secret too for
    that long (a second ``v1``), so the receiver can switch without refusing any.

    Locks: the endpoint. Raises: StreamNotFound, PermissionRefused, WebhookNotFound,
    InvalidInput (hours out of range).
    Side effects: an audit row "webhook.secret_rotated".
    """
    if not 0 <= keep_previous_hours <= PREVIOUS_SECRET_HOURS_MAX:
        raise InvalidInput(
            f"Keep the old secret from 0 to {PREVIOUS_SECRET_HOURS_MAX} hours.",
            field="keep_previous_hours",
        )
    with transaction.atomic():
        endpoint = _endpoint_locked(actor=actor, stream_id=stream_id, endpoint_id=endpoint_id)
        now = timezone.now()
        secret = secret_new()
        if keep_previous_hours:
            endpoint.previous_secret = endpoint.secret
            endpoint.previous_secret_expires_at = now + timedelta(hours=keep_previous_hours)
        else:
            endpoint.previous_secret = ""
            endpoint.previous_secret_expires_at = None
        endpoint.secret = secret
        endpoint.secret_rotated_at = now
        endpoint.save(
            update_fields=[
                "secret",
                "previous_secret",
                "previous_secret_expires_at",
                "secret_rotated_at",
            ]
        )
        audit_record(
            actor=actor,
            action="webhook.secret_rotated",
            stream_id=endpoint.value_stream_id,
            target_type="webhook",
            target_id=endpoint.pk,
            data={"keep_previous_hours": keep_previous_hours},
        )
    return EndpointWithSecret(endpoint, secret)


def webhook_endpoint_delete(*, actor: Actor, stream_id: int, endpoint_id: int) -> int:
    """Delete the endpoint and its delivery log; a send in progress stops after its
    current request. Returns how many deliveries were deleted with it.

    Locks: the endpoint. Raises: StreamNotFound, PermissionRefused, WebhookNotFound.
    Side effects: an audit row "webhook.deleted".
    """
    with transaction.atomic():
        endpoint = _endpoint_locked(actor=actor, stream_id=stream_id, endpoint_id=endpoint_id)
        deliveries, _ = WebhookDelivery.objects.filter(endpoint=endpoint).delete()
        stream_id, pk = endpoint.value_stream_id, endpoint.pk
        endpoint.delete()
        audit_record(
            actor=actor,
            action="webhook.deleted",
            stream_id=stream_id,
            target_type="webhook",
            target_id=pk,
            data={"deliveries": deliveries},
        )
    return deliveries


def webhook_delivery_retry(
    *, actor: Actor, stream_id: int, endpoint_id: int, delivery_id: int
) -> WebhookDelivery:
    """Send a delivery that failed again now, or one that was given up (dead) with a
    fresh round of attempts. Deliveries go out in move order: it is sent before the
    endpoint's later ones.

    Locks: the endpoint, the delivery. Raises: StreamNotFound, PermissionRefused,
    WebhookNotFound, DeliveryNotFound, DeliveryNotRetryable (it was delivered).
    Side effects: an audit row "webhook_delivery.retried"; after commit, the endpoint's
    deliveries are sent (webhooks.tasks).
    """
    with transaction.atomic():
        endpoint = _endpoint_locked(actor=actor, stream_id=stream_id, endpoint_id=endpoint_id)
        delivery = (
            WebhookDelivery.objects.select_for_update(no_key=True)
            .filter(pk=delivery_id, endpoint=endpoint)
            .first()
        )
        if delivery is None:
            raise DeliveryNotFound(data={"endpoint_id": endpoint.pk, "delivery_id": delivery_id})
        if delivery.status == DeliveryStatus.SUCCEEDED:
            raise DeliveryNotRetryable(data={"delivery_id": delivery.pk})
        if delivery.status not in UNFINISHED:
            delivery.status = DeliveryStatus.PENDING
            delivery.attempts = 0
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
        audit_record(
            actor=actor,
            action="webhook_delivery.retried",
            stream_id=endpoint.value_stream_id,
            target_type="webhook_delivery",
            target_id=delivery.pk,
            data={"endpoint_id": endpoint.pk, "move_id": delivery.move_id},
        )
        _catch_up_after_commit(endpoint.pk)
    return delivery


def _catch_up_after_commit(endpoint_id: int) -> None:
    """After commit, record and send the endpoint's deliveries by a worker (never in
    this process when tasks run in-process: the sweep does it then)."""
    from webhooks.tasks import deliver_soon

    transaction.on_commit(lambda: deliver_soon(endpoint_id, scan=True))
