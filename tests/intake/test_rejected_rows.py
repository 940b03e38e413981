"""The download of an import's rejected rows: every one of them, with the file's own
header and cells and why each was rejected, to fix and import again; streamed,
spreadsheet-safe, kept a few days after the import ended (issue 15)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from intake import services
from intake.models import ImportFileChunk, ImportJob, ImportRowError, ImportState
from intake.selectors import REJECTED_ROWS_COLUMNS
from intake.services.maintenance import REJECTED_ROWS_KEPT_HOURS
from intake.services.run import ROW_ERRORS_KEPT
from tests.intake.support import HEADER, csv_bytes, imported, row
from tests.support import logged_in
from vsm.models import AuditEntry

pytestmark = pytest.mark.django_db


def download(client, job: ImportJob):
    return client.get(reverse("intake:import-rejected-rows", args=[job.value_stream.slug, job.pk]))


def table(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")  # Excel reads UTF-8 only with its byte order mark
    return list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))


def test_every_rejected_row_comes_with_its_cells_and_why(stream, manager):
    rows = [row(f"Good {n}", email=f"good{n}@example.com") for n in range(3)]
    rows += [
        row("Bad Mail", "Nordwerk", "not-an-address", value="12"),  # row 5
        row('=HYPERLINK("http://evil.example")', email="x@y"),  # 6: a formula, bad e-mail
        row("Bad\x00Name", email="nul@example.com"),  # 7
        ["Too", "few"],  # 8
        row(f"Long {'x' * 300}"),  # 9
    ]
    job = imported(stream, manager, csv_bytes(rows))
    assert job.rejected == 5

    response = download(logged_in(manager), job)

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    filename = f"{stream.slug}-import-{job.pk}-rejected-rows.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    lines = table(response)
    assert lines[0] == [*REJECTED_ROWS_COLUMNS, *HEADER]
    assert [line[:2] for line in lines[1:]] == [
        ["5", "bad_email"],
        ["6", "bad_email"],
        ["7", "control_characters"],
        ["8", "cell_count"],
        ["9", "too_long"],
    ]
    assert lines[1][3:] == row("Bad Mail", "Nordwerk", "not-an-address", value="12")
    assert lines[1][2] == "E-mail: The e-mail address is not a valid address."
    # A formula is neutralised; the other cells are the file's as they are.
    assert lines[2][3] == '\'=HYPERLINK("http://evil.example")'
    assert lines[3][2] == "Person's name contains a control character (NUL)."
    assert lines[3][3] == "Bad\x00Name"
    assert lines[4][2].startswith("The row has 2 cells where the header has 7")
    assert lines[4][3:] == ["Too", "few"]
    assert AuditEntry.objects.filter(
        action="import.rejected_rows_downloaded", target_id=job.pk, data__rows=5
    ).exists()


def test_all_of_them_however_many_the_report_lists(stream, manager):
    count = ROW_ERRORS_KEPT + 30
    rows = [row(f"Bad {n}", email=f"bad{n}@") for n in range(count)] + [row("Good")]
    job = imported(stream, manager, csv_bytes(rows))
    assert len(job.row_errors) == ROW_ERRORS_KEPT and job.rejected == count

    lines = table(download(logged_in(manager), job))

    assert len(lines) == 1 + count
    assert [int(line[0]) for line in lines[1:]] == list(range(2, count + 2))
    assert lines[-1][3] == f"Bad {count - 1}"


def test_the_report_offers_the_download_to_those_who_steer_the_stream(stream, manager, member):
    job = imported(stream, manager, csv_bytes([row("Bad", email="nope"), row("Good")]))
    url = reverse("intake:import-rejected-rows", args=[stream.slug, job.pk])

    report = logged_in(manager).get(reverse("intake:import-job", args=[stream.slug, job.pk]))
    assert url in report.content.decode()
    assert "Download the 1 rejected row" in report.content.decode()

    as_member = logged_in(member)
    page = as_member.get(reverse("intake:import-job", args=[stream.slug, job.pk]))
    assert url not in page.content.decode()
    assert download(as_member, job).status_code == 403


def test_an_import_without_rejections_keeps_no_file(stream, manager):
    job = imported(stream, manager, csv_bytes([row("Good")]))

    assert not ImportFileChunk.objects.filter(job=job).exists()
    response = download(logged_in(manager), job)
    assert response.status_code == 410
    assert "not kept" in response.content.decode()


def test_the_file_is_deleted_some_days_after_the_import_ended(stream, manager):
    job = imported(stream, manager, csv_bytes([row("Bad", email="nope"), row("Good")]))
    kept = imported(stream, manager, csv_bytes([row("Bad too", email="nope")]))
    assert ImportFileChunk.objects.filter(job=job).exists()
    assert ImportRowError.objects.filter(job=job).count() == 1
    ended = timezone.now() - timedelta(hours=REJECTED_ROWS_KEPT_HOURS, minutes=1)
    ImportJob.objects.filter(pk=job.pk).update(finished_at=ended)

    assert services.import_files_expire() == 1

    assert not ImportFileChunk.objects.filter(job=job).exists()
    assert not ImportRowError.objects.filter(job=job).exists()
    assert ImportFileChunk.objects.filter(job=kept).exists()
    assert download(logged_in(manager), job).status_code == 410
    job.refresh_from_db()
    assert job.state == ImportState.DONE and job.rejected_by_code == {"bad_email": 1}
