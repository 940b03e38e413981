"""Celery tasks of the intake: take ids, call a service; safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from intake import services
from intake.models import WORK_STATES, ImportJob, ImportState, IntakeItem
from intake.services.jobs import import_running
from metrics.tasks import DATABASE_RETRIES
from vsm.events import stream_change_received

logger = logging.getLogger(__name__)

# A worker imports a job for this long, then sends itself the next slice: no task
# comes near CELERY_TASK_TIME_LIMIT, and other tasks get their turn.
SLICE_SECONDS = 30.0
# Run in-process (no broker: the embedded default), a slice is a web request's work:
# the confirmation runs the first, and each poll of the progress page the next.
EAGER_SLICE_SECONDS = 2.0
# A slice ended because the board was busy: the next one waits this long.
BUSY_COUNTDOWN_SECONDS = 5.0

# Retried with backoff when the database fails; acknowledged once done, so a killed
# worker's task is delivered again (the lease and the cursor make that harmless).
_DATABASE_RETRIES = DATABASE_RETRIES


def _eager() -> bool:
    from vsm.celery import app

    return bool(app.conf.task_always_eager)


def imports_run_in_process() -> bool:
    """Whether imports run in the web process (no broker, the embedded default): then
    an import goes on only while its progress page is open (``import_resume_in_process``)."""
    return _eager()


@shared_task(name="intake.import_analyse", **_DATABASE_RETRIES)
def import_analyse(job_id: int, revision: int) -> bool:
    """Check every row of an import with the mapping of ``revision`` (the preview)."""
    return services.import_analyse(job_id=job_id, revision=revision)


@shared_task(name="intake.import_run", **_DATABASE_RETRIES)
def import_run(job_id: int) -> dict:
    """Import the next slice of a job's rows; send the next slice while rows remain
    (not run in-process: there the progress page's polls go on with it)."""
    eager = _eager()
    result = services.import_run(
        job_id=job_id, seconds=EAGER_SLICE_SECONDS if eager else SLICE_SECONDS
    )
    if result.more and not eager:
        try:
            import_run.apply_async(
                (job_id,), countdown=BUSY_COUNTDOWN_SECONDS if result.busy else 0
            )
        except Exception:
            logger.warning("Could not send import %s's next slice; the sweep will", job_id)
    return {"job_id": job_id, "rows": result.rows, "state": result.state, "more": result.more}


@shared_task(name="intake.pull", **_DATABASE_RETRIES)
def pull(stream_id: int) -> dict:
    """Pull waiting prospects of the stream into their columns while there is room."""
    result = services.intake_pull(stream_id=stream_id)
    if result.more and not _eager():
        try:
            pull.apply_async((stream_id,))
        except Exception:
            logger.warning("Could not send stream %s's next pull; the sweep will", stream_id)
    return {"stream_id": stream_id, "created": result.created, "held": result.held}


@shared_task(name="intake.stream_changed", acks_late=True)
def stream_changed(stream_id: int, changes: list[str]) -> None:
    """A stream changed (vsm.events): a card left a column, or a WIP limit rose, may
    have made room for prospects waiting in intake. Nothing to do, in one query, for a
    stream with none waiting."""
    stream_change_received(stream_changed.name, stream_id, changes)
    if IntakeItem.objects.filter(value_stream_id=stream_id, held_code="").exists():
        services.intake_pull(stream_id=stream_id)


@shared_task(name="intake.sweep", acks_late=True)
def sweep() -> dict:
    """Send again what was lost: imports whose worker stopped (their lease ran out),
    checks not done, pulls of streams with prospects waiting; discard drafts left
    unconfirmed, and delete files kept for their rejected rows past their time
    (intake.services.maintenance)."""
    stalled = services.import_jobs_stalled()
    for job_id in stalled.runs:
        import_run.delay(job_id)
    for job_id, revision in stalled.analyses:
        import_analyse.delay(job_id, revision)
    waiting = list(
        IntakeItem.objects.filter(held_code="")
        .order_by("value_stream_id")
        .values_list("value_stream_id", flat=True)
        .distinct()
    )
    for stream_id in waiting:
        pull.delay(stream_id)
    discarded = services.import_drafts_discard()
    files_expired = services.import_files_expire()
    return {
        "runs": len(stalled.runs),
        "analyses": len(stalled.analyses),
        "pulls": len(waiting),
        "discarded": discarded,
        "files_expired": files_expired,
    }


def import_resume_in_process(job: ImportJob) -> bool:
    """Run the job's next slice here and now when tasks run in-process and no slice is
    running: without a worker, the progress page's polls carry the import on, a slice
    each (EAGER_SLICE_SECONDS); a job waiting for its stream's turn carries on the
    import ahead of it (whose page may be closed), and starts when that one ends. Never
    with a worker (it goes on by itself; the sweep sends a lost slice again). Whether a
    slice ran."""
    if not _eager() or job.state not in WORK_STATES:
        return False
    if job.state == ImportState.WAITING:
        job = import_running(stream_id=job.value_stream_id) or job
    if job.lease_until is not None and job.lease_until >= timezone.now():
        return False
    import_run.delay(job.pk)
    return True
