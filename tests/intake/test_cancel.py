"""Cancelling a running import: it stops at its next batch, what it did stays, and on
request the prospects it put in the intake queue are removed with it (issue 15)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.urls import reverse

from boards.models import Card, Column
from intake import services
from intake.errors import ImportStateConflict
from intake.models import ImportJob, ImportState, IntakeItem
from intake.services.run import _claim, _LeaseLost, _Runner
from tests.intake.support import confirmed, csv_bytes, imported, mapped, row, upload
from tests.support import COLLABORATION, as_actor, column_of, logged_in, new_card
from vsm.models import AuditEntry

pytestmark = pytest.mark.django_db


def started(stream, manager, count: int, *, rows_first: int) -> ImportJob:
    data = csv_bytes([row(f"Person {n}", email=f"p{n}@example.com") for n in range(count)])
    job = confirmed(mapped(upload(stream, manager, data), manager), manager)
    assert services.import_run(job_id=job.pk, seconds=60, max_rows=rows_first).more
    job.refresh_from_db()
    return job


@pytest.fixture
def full_column(stream, manager) -> Column:
    """Collaboration's Data column at its WIP limit: imported rows wait in intake."""
    column = column_of(stream, COLLABORATION, "Data")
    Column.objects.filter(pk=column.pk).update(wip_limit=1)
    new_card(stream, manager, person_name="In the column")
    return column


def test_a_cancelled_import_stops_and_keeps_what_it_did(stream, manager):
    job = started(stream, manager, 6, rows_first=2)

    result = services.import_cancel(job_id=job.pk, stream_id=stream.pk, actor=as_actor(manager))

    job.refresh_from_db()
    assert result.cancelled and result.removed == 0
    assert job.state == ImportState.CANCELLED and job.finished_at is not None
    assert job.error_message == "Cancelled after row 3: the rest of the file was not imported."
    assert not services.import_run(job_id=job.pk, seconds=60).claimed
    assert Card.objects.count() == 2 and job.created == 2
    assert AuditEntry.objects.filter(
        action="import.cancelled", target_id=job.pk, data__rows=2
    ).exists()


def test_a_worker_in_the_middle_of_a_slice_stops_at_its_next_batch(stream, manager):
    job = started(stream, manager, 4, rows_first=1)
    token = _claim(job.pk)
    assert token is not None
    job.refresh_from_db()
    runner = _Runner(job=job, token=token, seconds=60, max_rows=None)

    services.import_cancel(job_id=job.pk, stream_id=stream.pk, actor=as_actor(manager))

    with pytest.raises(_LeaseLost):
        runner._batch([], 0)
    job.refresh_from_db()
    assert job.state == ImportState.CANCELLED and Card.objects.count() == 1


def test_cancelling_also_removes_the_prospects_it_queued_with_one_audit_row(
    stream, manager, full_column
):
    other = imported(stream, manager, csv_bytes([row("Someone else's")]))
    job = started(stream, manager, 5, rows_first=3)
    assert job.queued == 3 and other.queued == 1

    result = services.import_cancel(
        job_id=job.pk, stream_id=stream.pk, actor=as_actor(manager), remove_queued=True
    )

    assert result.cancelled and result.removed == 3
    assert list(IntakeItem.objects.values_list("source_job_id", flat=True)) == [other.pk]
    removals = AuditEntry.objects.filter(action="intake_item.removed")
    assert removals.count() == 1
    assert removals.get().data == {"items": 3} and removals.get().target_id == job.pk


def test_cancelling_again_or_too_late_or_too_early(stream, manager, full_column):
    job = started(stream, manager, 3, rows_first=1)
    services.import_cancel(job_id=job.pk, stream_id=stream.pk, actor=as_actor(manager))

    again = services.import_cancel(job_id=job.pk, stream_id=stream.pk, actor=as_actor(manager))
    assert not again.cancelled and again.removed == 0
    assert AuditEntry.objects.filter(action="import.cancelled").count() == 1
    # Over: its waiting prospects can still be removed.
    late = services.import_cancel(
        job_id=job.pk, stream_id=stream.pk, actor=as_actor(manager), remove_queued=True
    )
    assert late.removed == 1 and not IntakeItem.objects.exists()

    done = imported(stream, manager, csv_bytes([row("Done")]))
    with pytest.raises(ImportStateConflict, match="ended meanwhile"):
        services.import_cancel(job_id=done.pk, stream_id=stream.pk, actor=as_actor(manager))
    draft = upload(stream, manager, csv_bytes([row("Draft")]))
    with pytest.raises(ImportStateConflict, match="discard it instead"):
        services.import_cancel(job_id=draft.pk, stream_id=stream.pk, actor=as_actor(manager))


def test_the_progress_page_asks_first_then_cancels(stream, manager, member, full_column):
    job = started(stream, manager, 4, rows_first=2)
    job_url = reverse("intake:import-job", args=[stream.slug, job.pk])
    cancel_url = reverse("intake:import-cancel", args=[stream.slug, job.pk])
    # A worker holds the import (run in-process, the page would carry it on).
    ImportJob.objects.filter(pk=job.pk).update(lease_until="2999-01-01T00:00:00Z")
    client = logged_in(manager)

    assert cancel_url in client.get(job_url).content.decode()
    assert cancel_url not in logged_in(member).get(job_url).content.decode()
    assert logged_in(member).get(cancel_url).status_code == 403
    asked = client.get(cancel_url).content.decode()
    assert "Cancel the import of" in asked
    assert 'name="remove_queued"' in asked and "(2 wait there now)" in asked

    response = client.post(cancel_url, {"remove_queued": "1"})

    assert response.status_code == 303 and response["Location"] == job_url
    job.refresh_from_db()
    assert job.state == ImportState.CANCELLED and not IntakeItem.objects.exists()
    report = client.get(job_url).content.decode()
    assert "2 of its prospects were taken out of the intake queue" in report
    assert cancel_url not in report and 'data-state="cancelled"' in report
    assert client.get(cancel_url).status_code == 302  # nothing left to cancel


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_prospect_that_a_pull_is_taking_stays_when_the_others_are_removed(
    stream, manager, full_column
):
    job = started(stream, manager, 4, rows_first=3)
    assert job.queued == 3
    taken = IntakeItem.objects.order_by("queued_at", "id").first()
    assert taken is not None
    locked = threading.Event()
    release = threading.Event()

    def pull_holding_its_item() -> None:
        try:
            with transaction.atomic():
                list(IntakeItem.objects.select_for_update().filter(pk=taken.pk))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    puller = threading.Thread(target=pull_holding_its_item)
    puller.start()
    try:
        assert locked.wait(10)
        result = services.import_cancel(
            job_id=job.pk, stream_id=stream.pk, actor=as_actor(manager), remove_queued=True
        )
    finally:
        release.set()
        puller.join()

    assert result.removed == 2
    assert list(IntakeItem.objects.values_list("pk", flat=True)) == [taken.pk]
