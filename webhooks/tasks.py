"""Celery tasks of the webhooks: take ids, call a service; safe to run twice.

- ``webhooks.stream_changed`` (a consumer of vsm.events): records the stream's new
  deliveries from its move log, then has each endpoint's sent by ``webhooks.deliver``.
- ``webhooks.deliver``: sends one endpoint's due deliveries (webhooks.services.delivery).
- ``webhooks.sweep`` (beat): records what a lost announcement left behind, sends what
  is due (retries, moves not announced), and prunes the old log.

No HTTP request is ever made in a web request: when tasks run in-process (the embedded
default, no broker), the consumer only records deliveries, and the sweep (beat, or
``manage.py webhooks_deliver``) sends them.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from metrics.tasks import DATABASE_RETRIES
from vsm.events import StreamChange, stream_change_received
from vsm.tasks import task_pending_clear, task_publish
from webhooks import selectors, services

logger = logging.getLogger(__name__)

PENDING_KEY = "webhooks:deliver-pending:{endpoint_id}"


@shared_task(name="webhooks.stream_changed", **DATABASE_RETRIES)
def stream_changed(stream_id: int, changes: list[str]) -> dict:
    """A stream changed (vsm.events): when its move log grew, record its endpoints'
    new deliveries, and have them sent by a worker."""
    stream_change_received(stream_changed.name, stream_id, changes)
    if StreamChange.MOVES not in changes:
        return {"stream_id": stream_id, "endpoints": []}
    endpoint_ids = services.stream_webhooks_record(stream_id=stream_id)
    if not stream_changed.app.conf.task_always_eager:
        for endpoint_id in endpoint_ids:
            _publish_deliver(endpoint_id)
    return {"stream_id": stream_id, "endpoints": endpoint_ids}


@shared_task(name="webhooks.deliver", **DATABASE_RETRIES)
def deliver(endpoint_id: int) -> dict:
    """Send the endpoint's due deliveries in move order; if the run stopped with more
    due, another run follows."""
    task_pending_clear(PENDING_KEY.format(endpoint_id=endpoint_id))
    result = services.webhook_endpoint_deliver(endpoint_id=endpoint_id)
    if result.more_due:
        _publish_deliver(endpoint_id)
    return {
        "endpoint_id": endpoint_id,
        "sent": result.sent,
        "succeeded": result.succeeded,
        "busy": result.busy,
    }


def _publish_deliver(endpoint_id: int) -> None:
    """Publish ``webhooks.deliver`` for the endpoint unless one is pending. Never raises
    (vsm.tasks.task_publish): the sweep sends what is due."""
    task_publish(
        deliver,
        endpoint_id,
        pending_key=PENDING_KEY.format(endpoint_id=endpoint_id),
        if_lost="the sweep sends its deliveries",
        # From a task's body, a sweep or an on-commit callback: the writes are committed.
        after_commit=False,
    )


def deliver_soon(endpoint_id: int, *, scan: bool = False) -> None:
    """After a change on the webhooks page (resumed, a delivery sent again): record the
    endpoint's deliveries (``scan``) and have them sent by a worker, unless tasks run
    in-process, where the sweep sends them. Never raises."""
    try:
        if scan:
            services.webhook_deliveries_record(endpoint_id=endpoint_id)
    except Exception:
        logger.warning("Webhook %s: recording left to the sweep", endpoint_id, exc_info=True)
    if not deliver.app.conf.task_always_eager:
        _publish_deliver(endpoint_id)


@shared_task(name="webhooks.sweep", acks_late=True)
def sweep() -> dict:
    """Record the deliveries of every active endpoint that lags its stream's move log,
    publish a send for every endpoint with a delivery due (run in-process when tasks
    are eager), and prune the log (settings.VSM_WEBHOOK_DELIVERY_RETENTION_DAYS)."""
    lagging = selectors.webhook_endpoints_lagging()
    recorded = sum(
        services.webhook_deliveries_record(endpoint_id=endpoint_id) for endpoint_id in lagging
    )
    due = selectors.webhook_endpoints_due()
    for endpoint_id in due:
        _publish_deliver(endpoint_id)
    pruned = services.webhook_deliveries_prune(
        older_than_days=settings.VSM_WEBHOOK_DELIVERY_RETENTION_DAYS
    )
    return {"lagging": lagging, "recorded": recorded, "due": due, "pruned": pruned}
