"""Celery tasks: take ids, re-fetch, call a service; safe to run twice."""

from __future__ import annotations

import contextlib
import logging

from celery import shared_task
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, transaction

from metrics import services

logger = logging.getLogger(__name__)

PENDING_KEY = "metrics:pending:{stream_id}"
PENDING_SECONDS = 30
BUSY_RETRY_SECONDS = 0.5


@shared_task(
    name="metrics.recompute_stream",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def recompute_stream(stream_id: int) -> dict:
    # Clear the pending mark before reading the log: a move committed from here on
    # enqueues a new run, and one committed before is seen by this run. (Without the
    # cache nothing coalesces, and nothing is lost either.)
    with contextlib.suppress(Exception):
        cache.delete(PENDING_KEY.format(stream_id=stream_id))
    # Run in-process (eager), a deferred document would have nobody to recompute it.
    eager = bool(recompute_stream.app.conf.task_always_eager)
    result = services.stream_metrics_advance(stream_id=stream_id, throttle=not eager)
    if result.skipped_busy:
        # Another worker is folding this stream and may have read the log before the
        # move that asked for this run committed: look again once it is done.
        _publish_coalesced(stream_id, countdown=BUSY_RETRY_SECONDS)
    elif result.summary_due_in is not None:
        _publish_coalesced(stream_id, countdown=result.summary_due_in)
    return {
        "stream_id": stream_id,
        "applied": result.applied,
        "through": result.last_applied_move_id,
        "busy": result.skipped_busy,
    }


def _publish_coalesced(stream_id: int, *, countdown: float | None = None) -> None:
    """Publish a recompute unless one is pending for the stream (the cache mark): a
    pending run will see everything this one would.

    Never raises: the cache only coalesces, and a broker that is down loses nothing
    (the sweeper catches the stream up), so either failure is logged and passed over.
    """
    key = PENDING_KEY.format(stream_id=stream_id)
    marked = False
    try:
        if not cache.add(key, 1, PENDING_SECONDS):
            return
        marked = True
    except Exception:
        logger.warning("Cache unavailable; enqueueing without coalescing", exc_info=True)
    try:
        recompute_stream.apply_async((stream_id,), countdown=countdown)
    except Exception:
        if marked:
            with contextlib.suppress(Exception):
                cache.delete(key)
        logger.warning(
            "Could not enqueue metrics for stream %s; the sweeper will", stream_id, exc_info=True
        )


@shared_task(name="metrics.sweep", acks_late=True)
def sweep() -> list[int]:
    """Catch up every stream whose metrics lag its move log (broker down, worker killed)."""
    lagging = services.streams_lagging()
    for stream_id in lagging:
        recompute_stream.delay(stream_id)
    return lagging


@shared_task(
    name="metrics.weekly_snapshots",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
)
def weekly_snapshots() -> int:
    from vsm.models import ValueStream

    stream_ids = list(ValueStream.objects.values_list("pk", flat=True))
    for stream_id in stream_ids:
        services.weekly_snapshot_take(stream_id=stream_id)
    return len(stream_ids)


def enqueue_recompute(stream_id: int) -> None:
    """Ask for a recompute once the current transaction commits.

    Never lets the broker hold up or fail the user's move: a publish error is logged
    and the sweeper catches the stream up later. A recent, not yet started run for the
    stream makes this one unnecessary (bursts coalesce).
    """

    def publish() -> None:
        _publish_coalesced(stream_id)

    # One recompute per stream and transaction is enough, however many moves it holds.
    connection = transaction.get_connection()
    if any(
        getattr(callback, "metrics_stream_id", None) == stream_id
        for _, callback, _ in connection.run_on_commit
    ):
        return
    publish.metrics_stream_id = stream_id  # type: ignore[attr-defined]
    transaction.on_commit(publish)
