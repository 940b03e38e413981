"""Reads of the intake: a stream's imports, a job's preview and report, the queue."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from boards.models import Column, Outcome
from intake.errors import ImportNotFound, ImportRejectedRowsGone
from intake.models import (
    DRAFT_STATES,
    ImportFileChunk,
    ImportJob,
    ImportRowError,
    ImportState,
    IntakeItem,
)
from intake.services.files import DELIMITER_CHOICES, ENCODING_CHOICES, RowUnreadable, file_rows
from intake.services.jobs import import_running
from intake.services.maintenance import rejected_rows_kept_until
from intake.services.rows import (
    FIELDS,
    control_characters_shown,
    row_code_meaning,
    row_error_text,
)
from pdca.models import Cycle
from vsm.models import ValueStream
from vsm.spreadsheet import write_spreadsheet_rows

# Imports listed on the upload page.
RECENT_IMPORTS = 10
# Waiting prospects per page of the intake queue.
QUEUE_PAGE_SIZE = 100


def import_job_in_stream(*, stream: ValueStream, job_id: int) -> ImportJob:
    """The stream's import ``job_id``. Raises: ImportNotFound (missing or elsewhere)."""
    job = (
        ImportJob.objects.select_related("cycle", "created_by")
        .filter(pk=job_id, value_stream=stream)
        .first()
    )
    if job is None:
        raise ImportNotFound(data={"job_id": job_id})
    return job


def imports_recent(*, stream: ValueStream) -> QuerySet[ImportJob]:
    """The stream's latest imports, newest first, without their heavy JSON columns."""
    return (
        ImportJob.objects.filter(value_stream=stream)
        .exclude(state=ImportState.DISCARDED)
        .select_related("created_by")
        .defer("header", "mapping", "analysis", "row_errors")
        .order_by("-created_at", "-id")[:RECENT_IMPORTS]
    )


@dataclass(frozen=True)
class Room:
    """The first column of a cycle: how many more cards it takes now (None: no limit)
    and how many prospects wait in line for it."""

    cycle_name: str
    column_name: str
    wip_limit: int | None
    open_cards: int
    waiting: int

    @property
    def free(self) -> int | None:
        return None if self.wip_limit is None else max(self.wip_limit - self.open_cards, 0)


def cycle_room(*, cycle: Cycle) -> Room | None:
    """The room in the cycle's first column; None for a cycle without columns."""
    column = (
        Column.objects.filter(cycle=cycle)
        .order_by("order")
        .annotate(open_cards=Count("cards", filter=Q(cards__outcome=Outcome.OPEN)))
        .first()
    )
    if column is None:
        return None
    waiting = IntakeItem.objects.filter(cycle=cycle, held_code="").count()
    return Room(
        cycle_name=cycle.name,
        column_name=column.name,
        wip_limit=column.wip_limit,
        open_cards=column.open_cards,
        waiting=waiting,
    )


@dataclass(frozen=True)
class CodeCount:
    code: str
    rows: int
    meaning: str


def codes_counted(counts: dict[str, int]) -> list[CodeCount]:
    """Rows per reject code, most first, each with what it means."""
    return [
        CodeCount(code=code, rows=rows, meaning=row_code_meaning(code))
        for code, rows in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


@dataclass(frozen=True)
class Reading:
    """How the file is read, as the mapping page shows it."""

    encoding: str
    encoding_label: str
    detected_encoding_label: str
    delimiter_label: str
    detected_delimiter_label: str


def file_reading(*, job: ImportJob) -> Reading:
    return Reading(
        encoding=job.encoding,
        encoding_label=ENCODING_CHOICES.get(job.encoding, job.encoding),
        detected_encoding_label=ENCODING_CHOICES.get(job.detected_encoding, job.detected_encoding),
        delimiter_label=DELIMITER_CHOICES.get(job.delimiter, job.delimiter),
        detected_delimiter_label=DELIMITER_CHOICES.get(
            job.detected_delimiter, job.detected_delimiter
        ),
    )


def field_labels() -> dict[str, str]:
    """Each prospect field's label, by its key."""
    return {key: label for key, (label, _) in FIELDS.items()}


def intake_waiting_count(*, stream: ValueStream) -> int:
    """Prospects waiting in the stream's intake queue, held ones included."""
    return IntakeItem.objects.filter(value_stream=stream).count()


@dataclass(frozen=True)
class QueuePage:
    """A page of the intake queue: its items oldest first (held ones first of all),
    the counts per cycle in line, and the totals."""

    items: list[IntakeItem]
    per_cycle: Sequence[Mapping[str, object]]
    total: int
    held: int
    page: int
    pages: int


def intake_queue_page(*, stream: ValueStream, page: int = 1) -> QueuePage:
    """The stream's intake queue, QUEUE_PAGE_SIZE items a page (``page`` from 1; past
    the end gives the last page)."""
    waiting = IntakeItem.objects.filter(value_stream=stream)
    total = waiting.count()
    held = waiting.exclude(held_code="").count()
    pages = max((total + QUEUE_PAGE_SIZE - 1) // QUEUE_PAGE_SIZE, 1)
    page = min(max(page, 1), pages)
    items = list(
        waiting.select_related("cycle", "channel", "owner", "source_job").order_by(
            "-held_code", "queued_at", "id"
        )[(page - 1) * QUEUE_PAGE_SIZE : page * QUEUE_PAGE_SIZE]
    )
    per_cycle = list(
        waiting.filter(held_code="")
        .order_by("cycle__order")
        .values("cycle_id", "cycle__name")
        .annotate(waiting=Count("id"))
    )
    return QueuePage(
        items=items, per_cycle=per_cycle, total=total, held=held, page=page, pages=pages
    )


# Rows of the file the mapping page shows under its header.
SAMPLE_ROWS = 5


def file_sample(*, job: ImportJob) -> list[list[tuple[str, str]]]:
    """The file's first data rows as read now, for the mapping page: each cell with its
    column's name (as many as the header has; control characters made visible). None
    once the file is gone or cannot be read."""
    sample: list[list[tuple[str, str]]] = []
    if job.is_over:
        return sample
    width = len(job.header)
    try:
        for _, cells in file_rows(job_id=job.pk, encoding=job.encoding, delimiter=job.delimiter):
            if cells:
                padded = (cells + [""] * width)[:width]
                sample.append(
                    [
                        (name, control_characters_shown(cell[:80]))
                        for name, cell in zip(job.header, padded, strict=True)
                    ]
                )
            if len(sample) >= SAMPLE_ROWS:
                break
    except RowUnreadable:
        pass
    return sample


def import_preview(*, job: ImportJob) -> dict:
    """What the preview page shows besides the job: the room in the chosen cycle's first
    column, rows rejected per code, the first rows with each one's verdict."""
    analysis = job.analysis
    labels = field_labels()
    first_rows = [
        {
            **row,
            "meaning": row_error_text(row["code"], row["field"], row.get("detail", ""))
            if row["code"]
            else "",
            "field_label": labels.get(row["field"], ""),
        }
        for row in analysis.get("first_rows", [])
    ]
    return {
        "room": cycle_room(cycle=job.cycle) if job.cycle else None,
        "rejected": codes_counted(analysis.get("rejected", {})),
        "first_rows": first_rows,
        "checking": job.state == ImportState.ANALYSING,
        "to_import": analysis.get("new", 0) + analysis.get("merge", 0),
    }


@dataclass(frozen=True)
class Report:
    """An import's progress and outcome, as its page shows them. ``percent``: of the
    file's rows whose outcome is committed (0-100); ``rows_done`` of ``rows_total``:
    its data rows, blank rows left out (as the preview counts them).
    ``waiting_for``: the import of the stream that this one waits for, by its file
    name. ``rejected_rows_until``: until when the rejected rows can be downloaded
    (None: they cannot). ``queued_now``: its prospects still in the intake queue."""

    rows_done: int
    rows_total: int | None
    percent: int
    working: bool
    over: bool
    draft: bool
    codes: list[CodeCount]
    errors: list[dict]
    errors_not_listed: int
    room: Room | None
    waiting_for: str
    rejected_rows_until: datetime | None
    queued_now: int


def import_report(*, job: ImportJob) -> Report:
    total = job.analysis.get("rows", job.total_rows)
    done = max(job.rows_done - job.blank_rows, 0)
    if total is not None:
        done = min(done, total)
    if job.state == ImportState.DONE:
        percent = 100
    elif job.total_rows:
        percent = min(100 * job.rows_done // job.total_rows, 99)
    else:
        percent = 0
    labels = field_labels()
    errors = [
        {
            **error,
            "meaning": row_code_meaning(error["code"]),
            "field_label": labels.get(error["field"], ""),
        }
        for error in job.row_errors
    ]
    waiting_for = ""
    if job.state == ImportState.WAITING:
        ahead = import_running(stream_id=job.value_stream_id)
        waiting_for = ahead.file_name if ahead is not None else ""
    return Report(
        rows_done=done,
        rows_total=total,
        percent=percent,
        working=job.state in (ImportState.QUEUED, ImportState.WAITING, ImportState.RUNNING),
        over=job.is_over,
        draft=job.state in DRAFT_STATES,
        codes=codes_counted(job.rejected_by_code),
        errors=errors,
        errors_not_listed=max(job.rejected - len(errors), 0),
        room=cycle_room(cycle=job.cycle) if job.cycle and job.queued else None,
        waiting_for=waiting_for,
        rejected_rows_until=rejected_rows_kept_until(job) if _rejected_rows_kept(job) else None,
        queued_now=intake_queued_by(job=job) if job.queued else 0,
    )


def _rejected_rows_kept(job: ImportJob) -> bool:
    return (
        job.is_over
        and job.state != ImportState.DISCARDED
        and job.rejected > 0
        and ImportFileChunk.objects.filter(job=job).exists()
    )


# The first columns of the download of an import's rejected rows; the file's own follow.
REJECTED_ROWS_COLUMNS = ["vsm_row", "vsm_error_code", "vsm_error"]
# Rows of the download written (and sent) together; rejected rows read together.
REJECTED_ROWS_CHUNK = 500
BYTE_ORDER_MARK = "\ufeff"


def rejected_rows_csv(*, job: ImportJob) -> Iterator[str]:
    """Every row the import rejected, as CSV text in pieces to stream: the file's own
    header and cells as they are in the file, after REJECTED_ROWS_COLUMNS (the row's
    number, its code, why in words), so that the rows can be fixed and imported again.
    In the stored file's order, one stored chunk and REJECTED_ROWS_CHUNK rows in memory.
    Cells a spreadsheet would run as a formula are neutralised (vsm.spreadsheet). UTF-8
    with a byte order mark, as the exports are (Excel reads it right).

    Raises (at once, before the first piece): ImportRejectedRowsGone (the import is not
    over, rejected nothing, or its file was deleted).
    """
    if not _rejected_rows_kept(job):
        raise ImportRejectedRowsGone(data={"job_id": job.pk})
    return _rejected_rows_pieces(job)


def _rejected_rows_pieces(job: ImportJob) -> Iterator[str]:
    errors = _row_errors_in_order(job)
    error = next(errors, None)
    rows: list[list[str]] = []
    try:
        for row, cells in file_rows(
            job_id=job.pk, encoding=job.encoding, delimiter=job.delimiter, after_row=0
        ):
            if row == 1:
                yield BYTE_ORDER_MARK + _csv_text([[*REJECTED_ROWS_COLUMNS, *cells]])
                continue
            while error is not None and error.row < row:
                error = next(errors, None)
            if error is None:
                break
            if error.row == row:
                why = row_error_text(error.code, error.field, error.detail)
                rows.append([str(row), error.code, why, *cells])
                if len(rows) >= REJECTED_ROWS_CHUNK:
                    yield _csv_text(rows)
                    rows = []
    except RowUnreadable:
        pass  # the import stopped there too: no row after it was rejected
    if rows:
        yield _csv_text(rows)


def _row_errors_in_order(job: ImportJob) -> Iterator[ImportRowError]:
    """The job's rejected rows in row order, read REJECTED_ROWS_CHUNK at a time."""
    last = 0
    while True:
        page = list(
            ImportRowError.objects.filter(job=job, row__gt=last)
            .order_by("row")
            .only("row", "code", "field", "detail")[:REJECTED_ROWS_CHUNK]
        )
        yield from page
        if len(page) < REJECTED_ROWS_CHUNK:
            return
        last = page[-1].row


def _csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    write_spreadsheet_rows(out, rows)
    return out.getvalue()


def intake_queued_by(*, job: ImportJob) -> int:
    """The job's prospects still waiting in the intake queue (held ones included)."""
    return IntakeItem.objects.filter(source_job=job).count()
