"""What the intake sweep finds: jobs whose worker stopped, drafts left behind, files
kept for the download of their rejected rows past their time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from intake.models import (
    DRAFT_STATES,
    OVER_STATES,
    WORK_STATES,
    ImportFileChunk,
    ImportJob,
    ImportRowError,
    ImportState,
)
from intake.services.jobs import _job_close
from vsm.actors import SystemActor
from vsm.audit import audit_record

# A job waiting for a worker this long without a lease is sent again (its message was
# lost: a broker outage, a worker killed before it started the job).
WAITING_RESEND_SECONDS = 60
# A check that has not finished after this long is sent again (its worker was killed).
ANALYSIS_RESEND_SECONDS = 10 * 60
# An import left unconfirmed this long is discarded: its file holds personal data.
DRAFT_KEPT_HOURS = 24
# The file of an import that rejected rows is kept this long after it ended, so that
# its rejected rows can be downloaded, fixed and imported again (over a weekend);
# then it is deleted: it holds personal data.
REJECTED_ROWS_KEPT_HOURS = 72


@dataclass(frozen=True)
class Stalled:
    """Jobs to send to a worker again: (job id) to import, (job id, revision) to check."""

    runs: list[int]
    analyses: list[tuple[int, int]]


def import_jobs_stalled(*, now: datetime | None = None) -> Stalled:
    """Jobs confirmed whose lease is free or ran out and that have not moved for
    WAITING_RESEND_SECONDS (a job waiting for its stream's turn among them: its claim
    finds whether the turn is free), and checks not done after ANALYSIS_RESEND_SECONDS."""
    now = now or timezone.now()
    runs = ImportJob.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        state__in=WORK_STATES,
        updated_at__lt=now - timedelta(seconds=WAITING_RESEND_SECONDS),
    ).values_list("pk", flat=True)
    analyses = ImportJob.objects.filter(
        state=ImportState.ANALYSING,
        updated_at__lt=now - timedelta(seconds=ANALYSIS_RESEND_SECONDS),
    ).values_list("pk", "revision")
    return Stalled(runs=list(runs), analyses=list(analyses))


def import_drafts_discard(*, now: datetime | None = None) -> int:
    """Discard imports left unconfirmed for DRAFT_KEPT_HOURS (their file and preview
    are deleted); returns how many. Side effects: an audit row "import.discarded" each,
    by the system ("intake")."""
    cutoff = (now or timezone.now()) - timedelta(hours=DRAFT_KEPT_HOURS)
    discarded = 0
    for job_id in ImportJob.objects.filter(
        state__in=DRAFT_STATES, updated_at__lt=cutoff
    ).values_list("pk", flat=True):
        with transaction.atomic():
            job = (
                ImportJob.objects.select_for_update(no_key=True)
                .filter(pk=job_id, state__in=DRAFT_STATES, updated_at__lt=cutoff)
                .first()
            )
            if job is None:
                continue
            _job_close(job, state=ImportState.DISCARDED, message="Not confirmed in time.")
            audit_record(
                actor=SystemActor("intake"),
                action="import.discarded",
                stream_id=job.value_stream_id,
                target_type="import",
                target_id=job.pk,
            )
            discarded += 1
    return discarded


def rejected_rows_kept_until(job: ImportJob) -> datetime | None:
    """Until when the rejected rows of an import that ended can be downloaded."""
    if job.finished_at is None:
        return None
    return job.finished_at + timedelta(hours=REJECTED_ROWS_KEPT_HOURS)


def import_files_expire(*, now: datetime | None = None) -> int:
    """Delete the files (and the rejected rows' list) of imports that ended more than
    REJECTED_ROWS_KEPT_HOURS ago; returns how many imports had theirs deleted."""
    cutoff = (now or timezone.now()) - timedelta(hours=REJECTED_ROWS_KEPT_HOURS)
    expired = list(
        ImportJob.objects.filter(state__in=OVER_STATES, finished_at__lt=cutoff)
        .filter(pk__in=ImportFileChunk.objects.values("job_id"))
        .values_list("pk", flat=True)
    )
    for job_id in expired:
        with transaction.atomic():
            ImportFileChunk.objects.filter(job_id=job_id).delete()
            ImportRowError.objects.filter(job_id=job_id).delete()
    return len(expired)
