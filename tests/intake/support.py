"""Helpers of the intake's tests: CSV files as bytes, and an import taken through its
steps by the services (upload, mapping, check, confirmation, the run to its end)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from intake import services
from intake.models import DuplicatePolicy, ImportJob, ImportState
from intake.services.rows import FIELDS
from pdca.models import Cycle
from tests.support import as_actor
from vsm.models import ValueStream

HEADER = ["Name", "Company", "E-mail", "Channel", "Value", "Owner", "Notes"]


def csv_bytes(
    rows: Sequence[Sequence[str]],
    *,
    header: Sequence[str] = HEADER,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> bytes:
    """A CSV file: the header, then the rows, encoded (``utf-8-sig`` writes a BOM)."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


def row(
    name: str = "",
    company: str = "",
    email: str = "",
    channel: str = "",
    value: str = "",
    owner: str = "",
    notes: str = "",
) -> list[str]:
    return [name, company, email, channel, value, owner, notes]


def upload(stream: ValueStream, who, data: bytes, *, name: str = "prospects.csv") -> ImportJob:
    # Two pieces: the file goes through the chunked path as an upload does.
    middle = len(data) // 2
    return services.import_upload(
        stream_id=stream.pk,
        actor=as_actor(who),
        file_name=name,
        chunks=[data[:middle], data[middle:]],
        size=len(data),
    )


def mapped(
    job: ImportJob,
    who,
    *,
    cycle: Cycle | None = None,
    duplicates: str = DuplicatePolicy.SKIP,
    mapping: dict[str, int | None] | None = None,
) -> ImportJob:
    """Map the job (its guessed mapping unless given) and check every row, as the
    analysis task does after commit."""
    job.refresh_from_db()
    cycle = cycle or Cycle.objects.filter(value_stream_id=job.value_stream_id).order_by("order")[0]
    job = services.import_map(
        job_id=job.pk,
        stream_id=job.value_stream_id,
        actor=as_actor(who),
        mapping=mapping if mapping is not None else {key: job.mapping.get(key) for key in FIELDS},
        cycle_id=cycle.pk,
        duplicates=duplicates,
    )
    assert services.import_analyse(job_id=job.pk, revision=job.revision)
    job.refresh_from_db()
    assert job.state == ImportState.READY
    return job


def confirmed(job: ImportJob, who, *, create_channels: Sequence[str] = ()) -> ImportJob:
    return services.import_confirm(
        job_id=job.pk,
        stream_id=job.value_stream_id,
        actor=as_actor(who),
        revision=job.revision,
        create_channels=create_channels,
    )


def run_to_end(job: ImportJob, *, max_rows: int | None = None) -> ImportJob:
    """Run the job's slices until it is over (each at most ``max_rows`` rows)."""
    for _ in range(10_000):
        result = services.import_run(job_id=job.pk, seconds=60, max_rows=max_rows)
        if not result.more:
            break
    job.refresh_from_db()
    return job


def imported(
    stream: ValueStream,
    who,
    data: bytes,
    *,
    duplicates: str = DuplicatePolicy.SKIP,
    create_channels: Sequence[str] = (),
    cycle: Cycle | None = None,
) -> ImportJob:
    """A file taken through every step to the end of its import."""
    job = mapped(upload(stream, who, data), who, duplicates=duplicates, cycle=cycle)
    return run_to_end(confirmed(job, who, create_channels=create_channels))
