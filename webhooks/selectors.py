"""Reads of the webhooks app: the webhooks page, one endpoint's delivery log, and what
the sweep has to do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django.utils import timezone

from boards.models import CardMove
from vsm.access import stream_access
from vsm.actors import Actor
from vsm.models import ValueStream
from webhooks.errors import WebhookNotFound
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

DELIVERY_LOG_LIMIT = 50


def webhook_stream_for_actor(*, actor: Actor, slug: str) -> ValueStream:
    """The stream whose webhooks ``actor`` manages: an admin or its manager.

    Raises: StreamNotFound (missing or out of reach), PermissionRefused (a member).
    """
    return stream_access(actor=actor, slug=slug, steer=True)


@dataclass(frozen=True)
class EndpointRow:
    """An endpoint with its deliveries counted by status."""

    endpoint: WebhookEndpoint
    pending: int
    failed: int
    succeeded: int
    dead: int
    last_attempt_at: datetime | None


def _counted(endpoints: list[WebhookEndpoint]) -> list[EndpointRow]:
    ids = [endpoint.pk for endpoint in endpoints]
    counts: dict[int, dict[str, Any]] = {
        row["endpoint_id"]: dict(row)
        for row in WebhookDelivery.objects.filter(endpoint_id__in=ids)
        .values("endpoint_id")
        .annotate(
            pending=Count("pk", filter=Q(status=DeliveryStatus.PENDING)),
            failed=Count("pk", filter=Q(status=DeliveryStatus.FAILED)),
            succeeded=Count("pk", filter=Q(status=DeliveryStatus.SUCCEEDED)),
            dead=Count("pk", filter=Q(status=DeliveryStatus.DEAD)),
            last=Max("last_attempt_at"),
        )
        .order_by()
    }
    rows = []
    for endpoint in endpoints:
        row: dict[str, Any] = counts.get(endpoint.pk, {})
        rows.append(
            EndpointRow(
                endpoint=endpoint,
                pending=row.get("pending", 0),
                failed=row.get("failed", 0),
                succeeded=row.get("succeeded", 0),
                dead=row.get("dead", 0),
                last_attempt_at=row.get("last"),
            )
        )
    return rows


def webhook_endpoints_of_stream(*, stream: ValueStream) -> list[EndpointRow]:
    """The stream's endpoints, oldest first, with their deliveries counted (2 queries)."""
    return _counted(list(WebhookEndpoint.objects.filter(value_stream=stream).order_by("pk")))


@dataclass(frozen=True)
class EndpointPage:
    """One endpoint's page: its counts, its next delivery, and the newest deliveries
    (each with its move), filtered by ``status`` when given."""

    row: EndpointRow
    next_delivery: WebhookDelivery | None
    deliveries: list[WebhookDelivery]
    status: str
    limit: int


def webhook_endpoint_page(
    *, stream: ValueStream, endpoint_id: int, status: str = "", limit: int = DELIVERY_LOG_LIMIT
) -> EndpointPage:
    """The endpoint of ``stream`` and its delivery log, newest move first, at most
    ``limit`` rows; ``status`` one of DeliveryStatus or "" for all.

    Raises: WebhookNotFound (not this stream's).
    """
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, value_stream=stream).first()
    if endpoint is None:
        raise WebhookNotFound(data={"stream_id": stream.pk, "endpoint_id": endpoint_id})
    log = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("move")
    if status:
        log = log.filter(status=status)
    next_delivery = (
        WebhookDelivery.objects.filter(endpoint=endpoint, next_attempt_at__isnull=False)
        .select_related("move")
        .order_by("move_id")
        .first()
    )
    return EndpointPage(
        row=_counted([endpoint])[0],
        next_delivery=next_delivery,
        deliveries=list(log.order_by("-move_id")[:limit]),
        status=status,
        limit=limit,
    )


def webhook_endpoints_lagging() -> list[int]:
    """Active endpoints whose watermark is below their stream's newest move: the sweep
    records their deliveries (a lost "stream changed", moves not settled yet)."""
    newest = (
        CardMove.objects.filter(value_stream_id=OuterRef("value_stream_id"))
        .order_by("-pk")
        .values("pk")[:1]
    )
    return list(
        WebhookEndpoint.objects.filter(is_active=True)
        .annotate(newest=Subquery(newest))
        .filter(newest__gt=F("watermark_move_id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def webhook_endpoints_due() -> list[int]:
    """Active endpoints whose next delivery is due and that no sender holds now."""
    now = timezone.now()
    head_due = (
        WebhookDelivery.objects.filter(endpoint_id=OuterRef("pk"), next_attempt_at__isnull=False)
        .order_by("move_id")
        .values("next_attempt_at")[:1]
    )
    return list(
        WebhookEndpoint.objects.filter(is_active=True)
        .exclude(lease_until__gt=now)
        .annotate(head_due=Subquery(head_due))
        .filter(head_due__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
