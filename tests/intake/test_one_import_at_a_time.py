"""A stream imports one file at a time: a second confirmed import waits for the one
running and starts by itself when it ends, fails or is cancelled, so that two imports
never miss each other's rows and import a prospect twice (issue 15)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from boards.models import Card
from intake import services
from intake.models import ImportJob, ImportState, IntakeItem
from intake.selectors import import_report
from intake.services.maintenance import WAITING_RESEND_SECONDS
from tests.factories import UserFactory
from tests.intake.support import confirmed, csv_bytes, mapped, row, run_to_end, upload
from tests.support import as_actor, logged_in

pytestmark = pytest.mark.django_db


def twin_files(count: int) -> tuple[bytes, bytes]:
    """Two files naming the same ``count`` prospects by e-mail (one spelt in capitals)."""
    first = csv_bytes([row(f"Person {n}", email=f"p{n}@example.com") for n in range(count)])
    second = csv_bytes([row(f"Twin {n}", email=f"P{n}@Example.com") for n in range(count)])
    return first, second


def ready_twins(stream, manager, count: int) -> tuple[ImportJob, ImportJob]:
    first, second = twin_files(count)
    job_a = confirmed(mapped(upload(stream, manager, first, name="a.csv"), manager), manager)
    job_b = confirmed(mapped(upload(stream, manager, second, name="b.csv"), manager), manager)
    return job_a, job_b


def test_a_second_import_waits_for_the_one_running_and_says_for_which(stream, manager):
    job_a, job_b = ready_twins(stream, manager, 6)
    assert services.import_run(job_id=job_a.pk, seconds=60, max_rows=2).more

    second = services.import_run(job_id=job_b.pk, seconds=60)

    job_b.refresh_from_db()
    assert not second.claimed and second.rows == 0
    assert job_b.state == ImportState.WAITING and job_b.started_at is None
    assert import_report(job=job_b).waiting_for == "a.csv"
    # A worker is on the first import (run in-process, the page would carry it on).
    ImportJob.objects.filter(pk=job_a.pk).update(lease_until=timezone.now() + timedelta(minutes=1))
    page = logged_in(manager).get(reverse("intake:import-job", args=[stream.slug, job_b.pk]))
    assert "Waiting for the import" in page.content.decode()
    assert "a.csv" in page.content.decode()
    assert Card.objects.count() == 2


def test_the_waiting_import_starts_when_the_first_ends_and_skips_its_rows(
    stream, manager, committed
):
    job_a, job_b = ready_twins(stream, manager, 6)
    services.import_run(job_id=job_a.pk, seconds=60, max_rows=2)
    assert not services.import_run(job_id=job_b.pk, seconds=60).claimed

    with committed():  # the end of the first sends the second (in-process here)
        run_to_end(job_a)

    job_b.refresh_from_db()
    assert job_b.state == ImportState.DONE
    assert (job_b.created, job_b.rejected) == (0, 6)
    assert job_b.rejected_by_code == {"duplicate_in_stream": 6}
    assert Card.objects.count() == 6


def test_the_waiting_import_starts_when_the_first_fails(stream, manager, committed):
    other = UserFactory(is_superuser=True)
    first, second = twin_files(3)
    job_a = confirmed(mapped(upload(stream, other, first), other), other)
    job_b = confirmed(mapped(upload(stream, manager, second), manager), manager)
    services.import_run(job_id=job_a.pk, seconds=60, max_rows=1)
    assert not services.import_run(job_id=job_b.pk, seconds=60).claimed
    other.is_superuser = False  # the first import's importer no longer steers the stream
    other.save()

    with committed():
        run_to_end(job_a)

    job_a.refresh_from_db()
    job_b.refresh_from_db()
    assert job_a.state == ImportState.FAILED
    assert job_b.state == ImportState.DONE and job_b.created == 2


def test_the_waiting_import_starts_when_the_first_is_cancelled(stream, manager, committed):
    job_a, job_b = ready_twins(stream, manager, 4)
    services.import_run(job_id=job_a.pk, seconds=60, max_rows=1)
    assert not services.import_run(job_id=job_b.pk, seconds=60).claimed

    with committed():
        services.import_cancel(job_id=job_a.pk, stream_id=stream.pk, actor=as_actor(manager))

    job_a.refresh_from_db()
    job_b.refresh_from_db()
    assert job_a.state == ImportState.CANCELLED
    assert job_b.state == ImportState.DONE
    assert (job_b.created, job_b.rejected) == (3, 1)
    assert Card.objects.count() == 4


def test_the_sweep_sends_a_waiting_import_again_once_the_turn_is_free(stream, manager):
    job_a, job_b = ready_twins(stream, manager, 2)
    services.import_run(job_id=job_a.pk, seconds=60, max_rows=1)
    services.import_run(job_id=job_b.pk, seconds=60)
    long_ago = timezone.now() - timedelta(seconds=WAITING_RESEND_SECONDS + 1)
    ImportJob.objects.filter(pk=job_b.pk).update(updated_at=long_ago)

    assert job_b.pk in services.import_jobs_stalled().runs
    assert not services.import_run(job_id=job_b.pk, seconds=60).claimed  # still its turn
    run_to_end(job_a)  # its message to the second one is lost: no commit here

    job_b = run_to_end(job_b)  # what the sweep's resend does
    assert job_b.state == ImportState.DONE and Card.objects.count() == 2


def test_imports_of_different_streams_run_side_by_side(stream, other_stream, manager):
    job_a = confirmed(mapped(upload(stream, manager, twin_files(2)[0]), manager), manager)
    owner = other_stream.manager
    data = twin_files(2)[1]
    job_b = confirmed(mapped(upload(other_stream, owner, data), owner), owner)
    assert services.import_run(job_id=job_a.pk, seconds=60, max_rows=1).more

    assert services.import_run(job_id=job_b.pk, seconds=60).claimed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_imports_of_one_file_confirmed_at_once_create_each_prospect_once(stream, manager):
    count = 300
    job_a, job_b = ready_twins(stream, manager, count)
    start = threading.Barrier(2)
    errors: list[Exception] = []

    def worker(job_id: int) -> None:
        try:
            start.wait()
            for _ in range(2_000):
                result = services.import_run(job_id=job_id, seconds=0.2)
                state = ImportJob.objects.values_list("state", flat=True).get(pk=job_id)
                if state == ImportState.DONE:
                    return
                if not result.claimed:
                    time.sleep(0.02)  # the other import holds the stream's turn
            errors.append(AssertionError(f"import {job_id} did not end"))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(job.pk,)) for job in (job_a, job_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    job_a.refresh_from_db()
    job_b.refresh_from_db()
    assert {job_a.state, job_b.state} == {ImportState.DONE}
    # Every distinct e-mail once: a card, or a prospect waiting for room.
    prospects = Card.objects.filter(value_stream=stream).count() + IntakeItem.objects.count()
    assert prospects == count
    assert job_a.created + job_a.queued + job_b.created + job_b.queued == count
    assert job_a.rejected + job_b.rejected == count
