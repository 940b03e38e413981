"""Celery tasks: take ids, re-fetch, call a service; safe to run twice."""

from __future__ import annotations

import logging
import smtplib
from datetime import date, timedelta
from typing import TypedDict

from celery import shared_task
from django.db import InterfaceError, OperationalError, transaction

from metrics import experiments, services
from metrics.selectors.experiments import experiments_due_for_check
from vsm.actors import SystemActor
from vsm.errors import DomainError
from vsm.events import stream_change_received
from vsm.models import ValueStream
from vsm.tasks import task_pending_clear, task_publish

logger = logging.getLogger(__name__)

PENDING_KEY = "metrics:pending:{stream_id}"
REFRESH_KEY = "metrics:refresh-pending:{stream_id}"
BUSY_RETRY_SECONDS = 0.5


class _RetryOptions(TypedDict):
    """Typed so that ``**DATABASE_RETRIES`` checks against shared_task's options."""

    acks_late: bool
    autoretry_for: tuple[type[Exception], ...]
    retry_backoff: bool
    retry_backoff_max: int
    retry_jitter: bool
    max_retries: int


# A task that lost its database connection is retried with backoff; acknowledged only
# once done, so a killed worker's task is redelivered (tasks are safe to run twice).
DATABASE_RETRIES: _RetryOptions = {
    "acks_late": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="metrics.recompute_stream", **DATABASE_RETRIES)
def recompute_stream(stream_id: int) -> dict:
    # Cleared before reading the log (vsm.tasks): a move committed from here on
    # enqueues a new run, and one committed before is seen by this run.
    task_pending_clear(PENDING_KEY.format(stream_id=stream_id))
    # Run in-process (eager), a deferred document would have nobody to recompute it.
    eager = bool(recompute_stream.app.conf.task_always_eager)
    result = services.stream_metrics_advance(stream_id=stream_id, throttle=not eager)
    if result.skipped_busy:
        # Another worker is folding this stream and may have read the log before the
        # move that asked for this run committed: look again once it is done.
        _publish_recompute(stream_id, countdown=BUSY_RETRY_SECONDS)
    elif result.summary_due_in is not None:
        _publish_recompute(stream_id, countdown=result.summary_due_in)
    return {
        "stream_id": stream_id,
        "applied": result.applied,
        "through": result.last_applied_move_id,
        "busy": result.skipped_busy,
    }


def _publish_recompute(stream_id: int, *, countdown: float | None = None) -> None:
    """Publish a recompute unless one is pending for the stream: a pending run will see
    everything this one would. Never raises (vsm.tasks.task_publish)."""
    task_publish(
        recompute_stream,
        stream_id,
        pending_key=PENDING_KEY.format(stream_id=stream_id),
        countdown=countdown,
        if_lost="the sweeper will",
        after_commit=False,  # from a task's body or a sweep: the writes are committed
    )


def _publish_refresh(stream_id: int, *, if_lost: str) -> None:
    """Publish a refresh of the stream's document unless one is pending. Never raises
    (vsm.tasks.task_publish)."""
    task_publish(
        refresh_document,
        stream_id,
        pending_key=REFRESH_KEY.format(stream_id=stream_id),
        if_lost=if_lost,
        after_commit=False,  # from a task's body or a sweep: the writes are committed
    )


@shared_task(name="metrics.refresh_document", **DATABASE_RETRIES)
def refresh_document(stream_id: int) -> dict:
    """Recompute the stream's metrics document though its log has no new move: the
    board changed something the document reads from it directly (a card blocked or
    unblocked, a WIP limit)."""
    # Cleared before reading, as in recompute_stream.
    task_pending_clear(REFRESH_KEY.format(stream_id=stream_id))
    try:
        stored = services.stream_metrics_summarize(stream_id=stream_id)
    except ValueStream.DoesNotExist:
        return {"stream_id": stream_id, "stored": False}  # deleted since
    return {"stream_id": stream_id, "stored": stored}


@shared_task(name="metrics.sweep", acks_late=True)
def sweep() -> list[int]:
    """Catch up every stream whose metrics lag its move log (broker down, worker killed),
    and refresh every other stream whose document is older than
    services.DOCUMENT_MAX_AGE (a lost refresh, or the clock). Returns the lagging ones."""
    lagging = services.streams_lagging()
    for stream_id in lagging:
        recompute_stream.delay(stream_id)
    for stream_id in set(services.streams_with_stale_documents()) - set(lagging):
        _publish_refresh(stream_id, if_lost="the next sweep will")
    return lagging


@shared_task(
    name="metrics.weekly_snapshot",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=60,
    retry_backoff_max=30 * 60,
    retry_jitter=True,
    max_retries=5,
)
def weekly_snapshot(stream_id: int, week_start: str) -> dict:
    """Take one stream's snapshot of the ISO week starting on ``week_start`` (an ISO
    date, fixed by the fan-out so that a retry files under the same week). Retried
    with backoff on any failure; taking it again replaces the week's snapshot. Once it
    is taken, enqueues the weekly digest of the week before (the last full week)."""
    try:
        snapshot = services.weekly_snapshot_take(
            stream_id=stream_id, week_start=date.fromisoformat(week_start)
        )
    except ValueStream.DoesNotExist:
        logger.info("Stream %s is gone; no snapshot for the week of %s", stream_id, week_start)
        return {"stream_id": stream_id, "week_start": week_start, "through": None}
    # The week this snapshot opens follows the week the digest reviews.
    reviewed = (date.fromisoformat(week_start) - timedelta(weeks=1)).isoformat()
    transaction.on_commit(lambda: _publish_digest(stream_id, reviewed))
    return {"stream_id": stream_id, "week_start": week_start, "through": snapshot.through_move_id}


def _publish_digest(stream_id: int, week_start: str) -> None:
    """Enqueue the weekly digest of the stream's week ``week_start``. Never fails the
    snapshot that asks for it (its retry would take the snapshot again): a publish
    error, or run in-process the digest's own failure, is logged."""
    try:
        weekly_digest.apply_async((stream_id, week_start))
    except Exception:
        logger.exception("Weekly digest of stream %s, week of %s: not sent", stream_id, week_start)


@shared_task(
    name="metrics.weekly_digest",
    acks_late=True,
    # The mail server (smtplib.SMTPException is an OSError) or the database.
    autoretry_for=(smtplib.SMTPException, OSError, OperationalError, InterfaceError),
    retry_backoff=60,
    retry_backoff_max=60 * 60,
    retry_jitter=True,
    max_retries=8,
)
def weekly_digest(stream_id: int, week_start: str) -> dict:
    """E-mail the weekly digest of the stream's ISO week starting on ``week_start`` (an
    ISO date: the reviewed week's Monday) to its manager and the members who asked for
    it. Retried with backoff when the mail server or the database fails; a retry sends
    only the messages not delivered yet (services.weekly_digest_send)."""
    try:
        sent = services.weekly_digest_send(
            stream_id=stream_id, week_start=date.fromisoformat(week_start)
        )
    except ValueStream.DoesNotExist:
        logger.info("Stream %s is gone; no digest for the week of %s", stream_id, week_start)
        sent = 0
    return {"stream_id": stream_id, "week_start": week_start, "sent": sent}


@shared_task(
    name="metrics.weekly_snapshots",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
)
def weekly_snapshots() -> dict:
    """Enqueue this ISO week's snapshot (in the configured time zone) of every stream,
    one task per stream: a stream that fails is retried on its own and never holds up
    the others."""
    week_start = services.snapshot_week_start().isoformat()
    stream_ids = list(ValueStream.objects.order_by("pk").values_list("pk", flat=True))
    failed = []
    for stream_id in stream_ids:
        try:
            weekly_snapshot.apply_async((stream_id, week_start))
        except Exception:
            # The broker refused it, or (run eagerly) the snapshot failed for good.
            logger.exception(
                "Weekly snapshot of stream %s, week of %s failed", stream_id, week_start
            )
            failed.append(stream_id)
    if failed:
        logger.error(
            "Weekly snapshots, week of %s: %d of %d streams failed: %s",
            week_start,
            len(failed),
            len(stream_ids),
            failed,
        )
    else:
        logger.info(
            "Weekly snapshots, week of %s: %d streams enqueued", week_start, len(stream_ids)
        )
    return {"week_start": week_start, "streams": len(stream_ids), "failed": failed}


@shared_task(name="metrics.stream_changed", acks_late=True)
def stream_changed(stream_id: int, changes: list[str]) -> None:
    """A stream changed (``vsm.events``): "moves" asks for a recompute of its metrics,
    "settings" (a card blocked, a WIP limit) for a fresh document. Coalesced here: a
    run already pending for the stream covers this change too. Never raises (a broker
    or cache error is logged; the sweeper catches up)."""
    stream_change_received(stream_changed.name, stream_id, changes)
    if "moves" in changes:
        _publish_recompute(stream_id)
    if "settings" in changes:
        _publish_refresh(stream_id, if_lost="the document catches up at the stream's next move")


@shared_task(name="metrics.experiment_check", **DATABASE_RETRIES)
def experiment_check(experiment_id: int) -> dict:
    """Take an experiment's Check as the system, once it has stopped or its window is
    over (metrics.experiments.experiment_check). Safe to run twice: a Check may be taken
    again until the Act. A refusal (not ready, decided, too little data, deleted) is no
    failure: it is logged and returned, and nothing is retried."""
    try:
        experiment = experiments.experiment_check(
            experiment_id=experiment_id, actor=SystemActor("experiment-check")
        )
    except DomainError as refusal:
        logger.info("Experiment %s: no Check taken (%s)", experiment_id, refusal.code)
        return {"experiment_id": experiment_id, "checked": False, "refused": refusal.code}
    return {"experiment_id": experiment_id, "checked": True, "signal": experiment.signal}


@shared_task(name="metrics.experiment_checks_due")
def experiment_checks_due() -> dict:
    """Queue the Check of every experiment whose window ended or that stopped lately
    (``metrics.selectors.experiments.experiments_due_for_check``), so a team finds its
    Check measured on the morning after the window. Run by beat every hour; a Check
    taken already by its team is not taken again (it left Do)."""
    due = experiments_due_for_check()
    for experiment_id in due:
        experiment_check.delay(experiment_id)
    return {"queued": len(due)}
