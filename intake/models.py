"""Prospect intake: CSV import jobs (their file, mapping and progress) and the intake queue.

An import job keeps its uploaded file in the database (``ImportFileChunk``), so that the
web process that received it and the worker that imports it may be different machines.
The file and the preview rows (personal data) are deleted once the job is over; the file
of a job that rejected rows stays a few days more, for the download of those rows.

The intake queue (``IntakeItem``) holds prospects waiting for room in the first column of
their cycle: a row that met a full column is queued, never lost and never put over the
WIP limit, and is pulled into the column, oldest first, when room appears.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from boards.models import NOTES_MAX_LENGTH
from pdca.models import Cycle
from vsm.models import Channel, ValueStream


class ImportState(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded: map its columns"
    ANALYSING = "analysing", "Checking every row"
    READY = "ready", "Checked: waiting for confirmation"
    QUEUED = "queued", "Waiting for a worker"
    WAITING = "waiting", "Waiting for another import of this stream to finish"
    RUNNING = "running", "Importing"
    DONE = "done", "Done"
    FAILED = "failed", "Stopped"
    CANCELLED = "cancelled", "Cancelled"
    DISCARDED = "discarded", "Discarded"


# A job in one of these states may still be changed by its user (mapping, discard).
DRAFT_STATES = (ImportState.UPLOADED, ImportState.ANALYSING, ImportState.READY)
# A job in one of these states is being (or waiting to be) imported by a worker. One job
# of a stream at a time is RUNNING (it holds the stream's turn to import, between its
# slices too); the others wait their turn (WAITING), see intake.services.run._claim.
WORK_STATES = (ImportState.QUEUED, ImportState.WAITING, ImportState.RUNNING)
# Over: only the counts and the row errors stay. The file is deleted, unless rows were
# rejected: then it stays REJECTED_ROWS_KEPT_HOURS (intake.services.maintenance) for
# the download of the rejected rows.
OVER_STATES = (
    ImportState.DONE,
    ImportState.FAILED,
    ImportState.CANCELLED,
    ImportState.DISCARDED,
)


class DuplicatePolicy(models.TextChoices):
    SKIP = "skip", "Skip the row (the card stays as it is)"
    MERGE = "merge", "Merge: fill the card's empty fields from the row"


class ImportJob(models.Model):
    """One CSV file imported into one value stream: from upload to its final report.

    Counts are of the file's data rows (the header is row 1, as a spreadsheet numbers
    rows). ``cursor``: the last row whose outcome is committed; a job resumes after it.
    ``rejected_by_code``: {code: rows}; ``row_errors``: [{"row", "code", "field"}], the
    first ROW_ERRORS_KEPT of them (the report's list), no values (no personal data);
    every rejected row is in ``ImportRowError``.
    """

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, related_name="import_jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=10, choices=ImportState.choices)
    # The file.
    file_name = models.CharField(max_length=255)
    file_size = models.PositiveBigIntegerField()
    encoding = models.CharField(max_length=20)
    detected_encoding = models.CharField(max_length=20)
    delimiter = models.CharField(max_length=1)
    detected_delimiter = models.CharField(max_length=1)
    header = models.JSONField(default=list)
    # The mapping: {field: column index}, the cycle cards enter, what duplicates do.
    revision = models.PositiveIntegerField(default=0)
    mapping = models.JSONField(default=dict, blank=True)
    cycle = models.ForeignKey(
        Cycle, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    duplicates = models.CharField(
        max_length=5, choices=DuplicatePolicy.choices, default=DuplicatePolicy.SKIP
    )
    # The check of every row before the import (see intake.services.analysis).
    analysis = models.JSONField(default=dict, blank=True)
    # The import.
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    cursor = models.PositiveIntegerField(default=1)
    created = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    merged_unchanged = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    blank_rows = models.PositiveIntegerField(default=0)
    rejected_by_code = models.JSONField(default=dict, blank=True)
    row_errors = models.JSONField(default=list, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Who imports it now: a worker holds the lease while it works, and renews it with
    # every commit; a lease that ran out (a killed worker) is taken over.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["value_stream", "-created_at"], name="intake_job_stream_created"),
            # Not on updated_at nor the lease: a running job's row is updated with every
            # batch, and an indexed column changed would make each update leave a dead
            # version behind in the index (no HOT update).
            models.Index(fields=["state"], name="intake_job_state"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=ImportState.values),
                name="intake_importjob_state_valid",
                violation_error_message="Choose a state of an import.",
            ),
            models.CheckConstraint(
                condition=Q(duplicates__in=DuplicatePolicy.values),
                name="intake_importjob_duplicates_valid",
                violation_error_message="Choose what duplicates do: skip or merge.",
            ),
            models.CheckConstraint(
                condition=Q(delimiter__in=[",", ";", "\t", "|"]),
                name="intake_importjob_delimiter_valid",
                violation_error_message="A delimiter is a comma, a semicolon, a tab or a bar.",
            ),
            models.CheckConstraint(
                condition=Q(cursor__gte=1),
                name="intake_importjob_cursor_after_header",
                violation_error_message="The cursor starts at the header, row 1.",
            ),
            # Two jobs importing into one stream at once would each miss the other's
            # rows when they look for duplicates: a stream imports one file at a time.
            models.UniqueConstraint(
                fields=["value_stream"],
                condition=Q(state="running"),
                name="intake_importjob_one_running_per_stream",
                violation_error_message="A stream imports one file at a time.",
            ),
        ]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.file_name}) into {self.value_stream_id}"

    @property
    def is_over(self) -> bool:
        return self.state in OVER_STATES

    @property
    def rows_done(self) -> int:
        """Data rows whose outcome is committed."""
        return self.cursor - 1


class ImportFileChunk(models.Model):
    """A piece of an uploaded file, in order: the file is stored in the database, never
    on a disk that one process has and another has not."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "seq"], name="intake_importfilechunk_unique_seq")
        ]

    def __str__(self) -> str:
        return f"Chunk {self.seq} of import {self.job_id}"


class ImportRowError(models.Model):
    """A row of a job's file that the import rejected, and why: its number (the header
    is row 1), its code (intake.services.rows.RowCode, or a service's refusal code),
    the field it is about and a detail without personal data ("NUL", "3 cells where
    the header has 8"). All of them, for the download of the rejected rows, which reads
    the rows' cells from the stored file; deleted with the file."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="+")
    row = models.PositiveIntegerField()
    code = models.CharField(max_length=40)
    field = models.CharField(max_length=40, blank=True)
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "row"], name="intake_importrowerror_unique_row")
        ]

    def __str__(self) -> str:
        return f"Row {self.row} of import {self.job_id}: {self.code}"


class ImportSeenEmail(models.Model):
    """The first row of a job's file that imports an e-mail address (by the digest of its
    canonical form): later rows with it are duplicates in the file. In the database, so
    that memory does not grow with the file and a resumed job knows the rows before its
    cursor. ``phase``: 0 for the import, the mapping's revision for its check."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="+")
    phase = models.PositiveIntegerField()
    digest = models.CharField(max_length=64)
    first_row = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "phase", "digest"], name="intake_importseenemail_unique_digest"
            )
        ]

    def __str__(self) -> str:
        return f"E-mail first in row {self.first_row} of import {self.job_id}"


class IntakeItem(models.Model):
    """A prospect waiting for room in the first column of ``cycle``: pulled in, oldest
    first, through ``boards.services.card_create`` when the WIP limit allows.

    ``held_code``/``held_message``: why the item could not enter (its channel was
    deactivated, its owner left the stream): it waits aside, visible, until someone
    tries it again or removes it; empty while it is in line.
    """

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.PROTECT, related_name="intake_items"
    )
    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="intake_items")
    source_job = models.ForeignKey(
        ImportJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="intake_items"
    )
    source_row = models.PositiveIntegerField(null=True, blank=True)
    person_name = models.CharField(max_length=200, blank=True)
    company = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    # SHA-256 of the e-mail's canonical form (boards.services.privacy.email_digest), or "".
    email_digest = models.CharField(max_length=64, blank=True)
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    estimated_value = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    notes = models.TextField(blank=True, max_length=NOTES_MAX_LENGTH)
    queued_at = models.DateTimeField(default=timezone.now)
    held_code = models.CharField(max_length=40, blank=True)
    held_message = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["queued_at", "id"]
        indexes = [
            models.Index(fields=["cycle", "held_code", "queued_at"], name="intake_item_line"),
            models.Index(fields=["value_stream", "email_digest"], name="intake_item_stream_email"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(person_name="") | ~Q(company=""),
                name="intake_intakeitem_person_or_company",
                violation_error_message="A prospect needs a person or a company.",
            ),
            models.CheckConstraint(
                condition=Q(estimated_value__gte=0),
                name="intake_intakeitem_estimated_value_not_negative",
                violation_error_message="An estimated value is zero or more.",
            ),
            models.CheckConstraint(
                condition=Q(held_code="") | ~Q(held_message=""),
                name="intake_intakeitem_held_says_why",
                violation_error_message="A held item says why it is held.",
            ),
        ]

    def __str__(self) -> str:
        return f"Intake item {self.pk} for cycle {self.cycle_id}"

    @property
    def display_name(self) -> str:
        if self.person_name and self.company:
            return f"{self.person_name} ({self.company})"
        return self.person_name or self.company
