"""How long the delivery log keeps finished deliveries."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from webhooks.models import WebhookDelivery

PRUNE_BATCH_SIZE = 5_000


def webhook_deliveries_prune(*, older_than_days: int, limit: int = PRUNE_BATCH_SIZE) -> int:
    """Delete up to ``limit`` finished deliveries (delivered or dead) recorded more than
    ``older_than_days`` days ago; 0 days keeps them all. Returns how many went.

    Only deliveries of moves at or below their endpoint's watermark: a scan never reads
    those moves again, so a pruned delivery is never recorded (and sent) a second time.
    Side effects: deletes WebhookDelivery rows.
    """
    if older_than_days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=older_than_days)
    doomed = list(
        WebhookDelivery.objects.filter(
            next_attempt_at__isnull=True,
            created_at__lt=cutoff,
            move_id__lte=F("endpoint__watermark_move_id"),
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not doomed:
        return 0
    deleted, _ = WebhookDelivery.objects.filter(pk__in=doomed).delete()
    return deleted
