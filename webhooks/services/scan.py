"""Recording deliveries from the move log, by cursor, so that nothing is ever skipped.

On PostgreSQL a move's id is taken when its row is inserted, and the transactions of
two moves may commit in the other order: a move with a lower id can appear after one
with a higher id was read. A cursor "every id above the last one read" would skip it.
So each endpoint keeps a watermark instead, by the metrics engine's rule
(metrics.services.SETTLE_SECONDS, docs/metrics.md): a move recorded (the database's
clock at its transaction's start) more than twice SETTLE_SECONDS ago settles every id
at or below its own, because no move's transaction outlives SETTLE_SECONDS
(vsm.transactions bounds them). A scan reads every move above the watermark that has
no delivery for the endpoint yet, records those of the subscribed kinds (once:
unique per endpoint and move), then raises the watermark to the newest settled move.
The few minutes of moves above it are read again by the next scan, and recognised.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, Max, OuterRef
from django.db.models.functions import Now
from django.utils import timezone

from boards.models import CardMove
from metrics.services import SETTLE_SECONDS
from webhooks.models import WebhookDelivery, WebhookEndpoint

BATCH_SIZE = 1_000


def _settled_move_id(*, stream_id: int, above: int) -> int | None:
    """The newest move of the stream above ``above`` that settles every id up to its
    own (see the module's docstring), by the database's clock at the start of the
    calling transaction (PostgreSQL's now()), or None."""
    settled: int | None = CardMove.objects.filter(
        value_stream_id=stream_id,
        pk__gt=above,
        recorded_at__lt=Now() - timedelta(seconds=SETTLE_SECONDS * 2),
    ).aggregate(m=Max("id"))["m"]
    return settled


def webhook_deliveries_record(*, endpoint_id: int) -> int:
    """Record a pending delivery for every move of the endpoint's stream, of a kind it
    subscribed to, above its watermark and without one yet; then raise its watermark
    to the newest settled move. Safe to run twice, and concurrently (a delivery is
    unique per endpoint and move; the watermark only rises). Returns how many
    deliveries were recorded; 0 for a paused or deleted endpoint.

    Locks: none (the endpoint's row is left to the sender's lease).
    Side effects: WebhookDelivery rows; the endpoint's watermark.
    """
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, is_active=True).first()
    if endpoint is None:
        return 0
    recorded = 0
    with transaction.atomic():
        # First, before any read of the log: the settled id is judged by the clock at
        # the transaction's start, so every move at or below it is visible below.
        settled = _settled_move_id(
            stream_id=endpoint.value_stream_id, above=endpoint.watermark_move_id
        )
        known = WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, move_id=OuterRef("pk"))
        floor = endpoint.watermark_move_id
        while True:
            move_ids = list(
                CardMove.objects.filter(
                    value_stream_id=endpoint.value_stream_id, pk__gt=floor, kind__in=endpoint.kinds
                )
                .exclude(Exists(known))
                .order_by("pk")
                .values_list("pk", flat=True)[:BATCH_SIZE]
            )
            now = timezone.now()
            WebhookDelivery.objects.bulk_create(
                [
                    WebhookDelivery(endpoint_id=endpoint.pk, move_id=move_id, next_attempt_at=now)
                    for move_id in move_ids
                ],
                ignore_conflicts=True,
            )
            recorded += len(move_ids)
            if len(move_ids) < BATCH_SIZE:
                break
            floor = move_ids[-1]
        if settled is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, watermark_move_id__lt=settled).update(
                watermark_move_id=settled
            )
    return recorded


def stream_webhooks_record(*, stream_id: int) -> list[int]:
    """``webhook_deliveries_record`` for each active endpoint of the stream, in id
    order. Returns the ids of those endpoints (one query when it has none)."""
    endpoint_ids = list(
        WebhookEndpoint.objects.filter(value_stream_id=stream_id, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for endpoint_id in endpoint_ids:
        webhook_deliveries_record(endpoint_id=endpoint_id)
    return endpoint_ids
