"""An import job before it runs: upload, how to read the file, mapping, confirmation,
discarding. Only those who steer the stream (vsm.access) may import into it: an
import changes the board wholesale and may create channels, which are configuration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from intake.errors import (
    ImportFileRefused,
    ImportFileTooLarge,
    ImportMappingRefused,
    ImportNotFound,
    ImportStateConflict,
)
from intake.models import (
    DRAFT_STATES,
    OVER_STATES,
    WORK_STATES,
    DuplicatePolicy,
    ImportFileChunk,
    ImportJob,
    ImportRowError,
    ImportState,
    IntakeItem,
)
from intake.services.enqueue import task_send
from intake.services.files import (
    DELIMITER_CHOICES,
    ENCODING_CHOICES,
    file_store,
    stored_header,
)
from intake.services.rows import channel_key, mapping_check, mapping_guess, seen_forget
from pdca.errors import CycleNotFound
from pdca.models import Cycle
from vsm.access import stream_access, stream_steer_check
from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.models import ValueStream
from vsm.services import NotUnique, channel_create
from vsm.transactions import locking_transaction

ANALYSE_TASK = "intake.import_analyse"
RUN_TASK = "intake.import_run"
# Prospects of a cancelled import taken out of the intake queue per statement.
REMOVE_BATCH = 1_000


def _stream_steered(*, actor: Actor, stream_id: int) -> ValueStream:
    stream = stream_access(actor=actor, stream_id=stream_id)
    stream_steer_check(actor=actor, stream=stream, what="import prospects")
    return stream


def _job_locked(*, job_id: int, stream_id: int, actor: Actor) -> ImportJob:
    """The job, locked, if it belongs to the stream and the actor steers the stream.
    Raises: StreamNotFound, PermissionRefused, ImportNotFound."""
    _stream_steered(actor=actor, stream_id=stream_id)
    job = (
        ImportJob.objects.select_for_update(no_key=True)
        .filter(pk=job_id, value_stream_id=stream_id)
        .first()
    )
    if job is None:
        raise ImportNotFound(data={"job_id": job_id})
    return job


def _bounded(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ImportFileTooLarge(too_large_message(limit), data={"limit": limit}, field="file")
        yield chunk


def too_large_message(limit: int) -> str:
    return (
        f"The file is larger than {limit / (1024 * 1024):.0f} MB: split it into smaller "
        "files and import them one by one."
    )


def import_upload(
    *,
    stream_id: int,
    actor: Actor,
    file_name: str,
    chunks: Iterable[bytes],
    size: int | None = None,
) -> ImportJob:
    """Store an uploaded CSV file as a new import job of the stream and detect how to
    read it: its encoding, delimiter and header; the mapping is guessed from the header.

    ``chunks``: the file's bytes, in order; ``size``: its length when known (refused at
    once when over the limit). Bounded by settings.VSM_IMPORT_MAX_BYTES.
    Raises: StreamNotFound, PermissionRefused, ImportFileTooLarge, ImportFileRefused
    (empty, a workbook, binary, no header). Nothing is kept of a refused file.
    Side effects: an audit row "import.uploaded" (size in bytes).
    """
    stream = _stream_steered(actor=actor, stream_id=stream_id)
    limit: int = settings.VSM_IMPORT_MAX_BYTES
    if size is not None and size > limit:
        raise ImportFileTooLarge(too_large_message(limit), data={"limit": limit}, field="file")
    first_cycle = Cycle.objects.filter(value_stream=stream).order_by("order", "pk").first()
    with transaction.atomic():
        job = ImportJob.objects.create(
            value_stream=stream,
            created_by_id=actor.user_id,
            state=ImportState.UPLOADED,
            file_name=(file_name or "upload.csv")[-255:],
            file_size=0,
            encoding="utf-8",
            detected_encoding="utf-8",
            delimiter=",",
            detected_delimiter=",",
            cycle=first_cycle,
        )
        job.file_size, detected = file_store(job_id=job.pk, chunks=_bounded(chunks, limit))
        job.encoding = job.detected_encoding = detected.encoding
        job.delimiter = job.detected_delimiter = detected.delimiter
        job.header = detected.header
        job.mapping = mapping_guess(detected.header)
        job.save()
        audit_record(
            actor=actor,
            action="import.uploaded",
            stream_id=stream.pk,
            target_type="import",
            target_id=job.pk,
            data={"bytes": job.file_size, "columns": len(job.header)},
        )
    return job


def import_reading_set(
    *, job_id: int, stream_id: int, actor: Actor, encoding: str, delimiter: str
) -> ImportJob:
    """Read the job's file with another encoding or delimiter than detected: its header
    is read again and the mapping guessed again from it.

    Locks: the job. Raises: StreamNotFound, PermissionRefused, ImportNotFound,
    ImportStateConflict (confirmed or over), ImportFileRefused (an encoding or delimiter
    not offered; a header that cannot be read so). Side effects: an audit row
    "import.reread".
    """
    if encoding not in ENCODING_CHOICES:
        raise ImportFileRefused("Choose one of the encodings offered.", field="encoding")
    if delimiter not in DELIMITER_CHOICES:
        raise ImportFileRefused("Choose one of the delimiters offered.", field="delimiter")
    with transaction.atomic():
        job = _job_locked(job_id=job_id, stream_id=stream_id, actor=actor)
        _draft_check(job)
        job.header = stored_header(job_id=job.pk, encoding=encoding, delimiter=delimiter)
        job.encoding = encoding
        job.delimiter = delimiter
        job.mapping = mapping_guess(job.header)
        job.state = ImportState.UPLOADED
        job.revision += 1
        job.analysis = {}
        job.updated_at = timezone.now()
        job.save()
        audit_record(
            actor=actor,
            action="import.reread",
            stream_id=stream_id,
            target_type="import",
            target_id=job.pk,
            data={"columns": len(job.header)},
        )
    return job


def _draft_check(job: ImportJob) -> None:
    if job.state not in DRAFT_STATES:
        raise ImportStateConflict(
            "This import was confirmed or is over: its mapping can no longer change.",
            data={"job_id": job.pk},
        )


def import_map(
    *,
    job_id: int,
    stream_id: int,
    actor: Actor,
    mapping: Mapping[str, int | None],
    cycle_id: int,
    duplicates: str,
) -> ImportJob:
    """Save how the file's columns map to a prospect's fields, the cycle its cards enter
    and what duplicates do, and have every row checked (``import_analyse``, in the
    background) for the preview.

    Locks: the job. Raises: StreamNotFound, PermissionRefused, ImportNotFound,
    ImportStateConflict, ImportMappingRefused, CycleNotFound.
    Side effects: an audit row "import.mapped"; after commit, the check is sent to a
    worker (intake.import_analyse).
    """
    if duplicates not in DuplicatePolicy.values:
        raise ImportMappingRefused("Choose what duplicates do: skip or merge.", field="duplicates")
    with transaction.atomic():
        job = _job_locked(job_id=job_id, stream_id=stream_id, actor=actor)
        _draft_check(job)
        checked = mapping_check(mapping, columns=len(job.header))
        if not Cycle.objects.filter(pk=cycle_id, value_stream_id=stream_id).exists():
            raise CycleNotFound(data={"cycle_id": cycle_id}, field="cycle")
        job.mapping = checked
        job.cycle_id = cycle_id
        job.duplicates = duplicates
        job.revision += 1
        job.state = ImportState.ANALYSING
        job.analysis = {}
        job.updated_at = timezone.now()
        job.save()
        audit_record(
            actor=actor,
            action="import.mapped",
            stream_id=stream_id,
            target_type="import",
            target_id=job.pk,
            data={"revision": job.revision, "cycle_id": cycle_id},
        )
        task_send(ANALYSE_TASK, job.pk, job.revision)
    return job


def import_confirm(
    *, job_id: int, stream_id: int, actor: Actor, revision: int, create_channels: Sequence[str]
) -> ImportJob:
    """Start importing the checked file: first create the new channels the user chose
    (of those the check found), then hand the job to a worker.

    ``revision``: the mapping the user saw checked; a job confirmed already with it is
    returned as it is (a second click changes nothing).
    Locks: the job (then the stream, to create channels). Raises: StreamNotFound,
    PermissionRefused, ImportNotFound, ImportStateConflict (the check is not done, or
    is of another mapping), ImportFileRefused (a row cannot be read; no rows).
    Side effects: an audit row "import.confirmed" (and one per channel created); after
    commit, the import is sent to a worker (intake.import_run).
    """
    with transaction.atomic():
        job = _job_locked(job_id=job_id, stream_id=stream_id, actor=actor)
        if job.revision == revision and job.state in (*WORK_STATES, ImportState.DONE):
            return job
        if job.state != ImportState.READY or job.revision != revision:
            raise ImportStateConflict(
                "The check shown is not the latest one; look at the preview again.",
                data={"job_id": job.pk},
            )
        unreadable = job.analysis.get("unreadable")
        if unreadable:
            raise ImportFileRefused(
                f"Row {unreadable['row']} of the file cannot be read ({unreadable['reason']}): "
                "fix the file and upload it again.",
                data={"row": unreadable["row"]},
            )
        if not job.analysis.get("rows"):
            raise ImportFileRefused("The file has no rows to import.")
        offered = {channel_key(name): name for name in job.analysis.get("new_channels", [])}
        chosen = {channel_key(name) for name in create_channels} & set(offered)
        for key in sorted(chosen):
            with contextlib.suppress(NotUnique):  # created meanwhile: its rows find it
                channel_create(stream_id=stream_id, name=offered[key], actor=actor)
        seen_forget(job_id=job.pk)
        job.state = ImportState.QUEUED
        job.cursor = 1
        job.updated_at = timezone.now()
        job.save()
        audit_record(
            actor=actor,
            action="import.confirmed",
            stream_id=stream_id,
            target_type="import",
            target_id=job.pk,
            data={
                "cycle_id": job.cycle_id,
                "merge": job.duplicates == DuplicatePolicy.MERGE,
                "channels_created": len(chosen),
                "rows": job.analysis.get("rows", 0),
            },
        )
        task_send(RUN_TASK, job.pk)
    return job


def import_discard(*, job_id: int, stream_id: int, actor: Actor) -> ImportJob:
    """Drop an import that was not confirmed: its file and its check are deleted.

    Locks: the job. Raises: StreamNotFound, PermissionRefused, ImportNotFound,
    ImportStateConflict (confirmed already). Side effects: an audit row
    "import.discarded".
    """
    with transaction.atomic():
        job = _job_locked(job_id=job_id, stream_id=stream_id, actor=actor)
        if job.state == ImportState.DISCARDED:
            return job
        if job.state not in DRAFT_STATES:
            raise ImportStateConflict(
                "This import was confirmed: it can no longer be discarded.",
                data={"job_id": job.pk},
            )
        _job_close(job, state=ImportState.DISCARDED)
        audit_record(
            actor=actor,
            action="import.discarded",
            stream_id=stream_id,
            target_type="import",
            target_id=job.pk,
        )
    return job


def import_running(*, stream_id: int) -> ImportJob | None:
    """The stream's import that holds its turn to import (RUNNING), or None."""
    return ImportJob.objects.filter(value_stream_id=stream_id, state=ImportState.RUNNING).first()


def import_next_send(*, stream_id: int) -> None:
    """Send the stream's oldest import waiting for its turn to a worker (after commit):
    the turn is free, or about to be."""
    waiting = (
        ImportJob.objects.filter(
            value_stream_id=stream_id, state__in=(ImportState.QUEUED, ImportState.WAITING)
        )
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if waiting is not None:
        task_send(RUN_TASK, waiting)


def _job_close(job: ImportJob, *, state: ImportState, message: str = "") -> None:
    """End a job in the caller's transaction: its first rows per e-mail and the
    preview's rows (personal data) are deleted; its counts and row errors stay. Its
    file is deleted too, unless rows were rejected: then it stays for the download of
    the rejected rows, REJECTED_ROWS_KEPT_HOURS (intake.services.maintenance). A job
    that was importing hands the stream's turn to the next one waiting."""
    assert state in OVER_STATES
    was_working = job.state in WORK_STATES
    if state == ImportState.DISCARDED or not job.rejected:
        ImportFileChunk.objects.filter(job=job).delete()
        ImportRowError.objects.filter(job=job).delete()
    seen_forget(job_id=job.pk)
    now = timezone.now()
    job.state = state
    job.analysis = {key: value for key, value in job.analysis.items() if key != "first_rows"}
    job.error_message = message[:500]
    job.lease_token = ""
    job.lease_until = None
    job.finished_at = now
    job.updated_at = now
    job.save()
    if was_working:
        import_next_send(stream_id=job.value_stream_id)


def import_rejected_rows_record(*, job_id: int, stream_id: int, actor: Actor) -> None:
    """Record that ``actor`` downloads the rejected rows of an import (personal data
    leaving the product, as an export does).

    Raises: StreamNotFound, PermissionRefused. Side effects: an audit row
    "import.rejected_rows_downloaded" (the number of rows).
    """
    _stream_steered(actor=actor, stream_id=stream_id)
    rejected = ImportJob.objects.filter(pk=job_id).values_list("rejected", flat=True).first()
    audit_record(
        actor=actor,
        action="import.rejected_rows_downloaded",
        stream_id=stream_id,
        target_type="import",
        target_id=job_id,
        data={"rows": rejected or 0},
    )


@dataclass(frozen=True)
class CancelResult:
    """What a cancellation did: ``cancelled`` (False: the import was over already) and
    how many of its prospects it ``removed`` from the intake queue."""

    job: ImportJob
    cancelled: bool
    removed: int


def import_cancel(
    *, job_id: int, stream_id: int, actor: Actor, remove_queued: bool = False
) -> CancelResult:
    """Stop a confirmed import where it is: the rows committed stay imported, the next
    batch of its worker finds the job cancelled and stops (its lease is gone). With
    ``remove_queued``, the prospects it put in the intake queue are removed as well,
    in the same transaction (also when it ended meanwhile). Cancelling a cancelled
    import again changes nothing.

    Locks: the job (after the batch being committed), then its prospects in the intake
    queue (SKIP LOCKED: one that a pull is taking into its column becomes a card).
    Raises: StreamNotFound, PermissionRefused, ImportNotFound, ImportStateConflict (not
    confirmed: it is discarded instead; ended meanwhile, with nothing to remove), Busy.
    Side effects: an audit row "import.cancelled"; one "intake_item.removed" for the
    job (the number removed); after commit, the stream's next import waiting is sent.
    """
    with locking_transaction():
        job = _job_locked(job_id=job_id, stream_id=stream_id, actor=actor)
        if job.state in DRAFT_STATES:
            raise ImportStateConflict(
                "This import was not confirmed: discard it instead.", data={"job_id": job.pk}
            )
        cancelled = job.state in WORK_STATES
        if not cancelled and not remove_queued and job.state != ImportState.CANCELLED:
            raise ImportStateConflict(
                "This import ended meanwhile: there is nothing left to cancel.",
                data={"job_id": job.pk},
            )
        if cancelled:
            message = (
                f"Cancelled after row {job.cursor}: the rest of the file was not imported."
                if job.rows_done
                else "Cancelled before its first row."
            )
            _job_close(job, state=ImportState.CANCELLED, message=message)
            audit_record(
                actor=actor,
                action="import.cancelled",
                stream_id=stream_id,
                target_type="import",
                target_id=job.pk,
                data={"rows": job.rows_done, "created": job.created, "queued": job.queued},
            )
        removed = _queued_remove(job, actor=actor) if remove_queued else 0
    return CancelResult(job=job, cancelled=cancelled, removed=removed)


def _queued_remove(job: ImportJob, *, actor: Actor) -> int:
    """Remove the job's prospects from the intake queue, in the caller's transaction;
    how many. One audit row for all of them."""
    removed = 0
    last = 0
    while True:
        batch = list(
            IntakeItem.objects.select_for_update(skip_locked=True)
            .filter(source_job_id=job.pk, value_stream_id=job.value_stream_id, pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:REMOVE_BATCH]
        )
        if not batch:
            break
        removed += IntakeItem.objects.filter(pk__in=batch).delete()[0]
        last = batch[-1]
    if removed:
        audit_record(
            actor=actor,
            action="intake_item.removed",
            stream_id=job.value_stream_id,
            target_type="import",
            target_id=job.pk,
            data={"items": removed},
        )
    return removed
