"""The intake's pages over HTTP: upload, mapping, preview, progress and report, the
queue and the board's badge; refusals answered, never a 500."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from boards.models import Card, Column
from intake import services
from intake.models import ImportFileChunk, ImportJob, ImportState, IntakeItem
from tests.intake.support import confirmed, csv_bytes, imported, mapped, row, upload
from tests.support import COLLABORATION, column_of, logged_in, new_card

pytestmark = pytest.mark.django_db


def url(name: str, *args) -> str:
    return reverse(f"intake:{name}", args=args)


def post_file(client, stream, data: bytes, name: str = "prospects.csv"):
    return client.post(
        url("import-start", stream.slug), {"file": SimpleUploadedFile(name, data, "text/csv")}
    )


def test_importing_takes_a_steering_person(client, stream, manager, member):
    assert logged_in(member).get(url("import-start", stream.slug)).status_code == 403
    answer = client.get(url("import-start", stream.slug))
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]
    assert logged_in(manager).get(url("import-start", stream.slug)).status_code == 200
    response = post_file(logged_in(member), stream, csv_bytes([row("Someone")]))
    assert response.status_code in (303, 403) and not ImportJob.objects.exists()


def test_upload_then_mapping_with_guesses_and_the_file_s_first_rows(stream, manager):
    client = logged_in(manager)
    data = csv_bytes([row("Ada Keller", "Nordwerk", "ada@example.com")], delimiter=";")

    response = post_file(client, stream, data)

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("import-mapping", stream.slug, job.pk)
    page = client.get(response["Location"]).content.decode()
    assert "Semicolon" in page and "Ada Keller" in page
    # The guessed column is selected for the e-mail field.
    assert re.search(r'name="email"[^>]*>.*?<option value="2" selected>E-mail</option>', page, re.S)


def test_a_file_over_the_limit_is_refused_before_it_is_read(stream, manager, settings):
    settings.VSM_IMPORT_MAX_BYTES = 1_000
    data = csv_bytes([row(f"Person {n}", notes="x" * 100) for n in range(1_000)])

    response = post_file(logged_in(manager), stream, data)

    assert response.status_code == 413
    assert "larger than" in response.content.decode()
    assert not ImportJob.objects.exists() and not ImportFileChunk.objects.exists()


def test_a_workbook_is_refused_with_what_to_do(stream, manager):
    response = post_file(logged_in(manager), stream, b"PK\x03\x04....", name="list.xlsx")

    assert response.status_code == 400
    assert "save it as CSV" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_mapping_preview_confirm_progress_and_report(stream, manager, committed):
    client = logged_in(manager)
    data = csv_bytes(
        [
            row("Ada Keller", email="ada@example.com"),
            row("", ""),
            row("No Mail", email="nope"),
            row(notes="only notes"),
        ]
    )
    job = upload(stream, manager, data)
    mapping = {key: "" if index is None else str(index) for key, index in job.mapping.items()}
    cycle = column_of(stream, COLLABORATION, "Data").cycle

    with committed():  # the check is sent after commit: here it runs in-process
        response = client.post(
            url("import-mapping", stream.slug, job.pk),
            {**mapping, "cycle": cycle.pk, "duplicates": "skip"},
        )
    assert response.status_code == 302
    assert response["Location"] == url("import-preview", stream.slug, job.pk)
    preview = client.get(response["Location"]).content.decode()
    assert 'data-total="rows">3<' in preview and 'data-total="new">1<' in preview
    assert 'data-code="bad_email"' in preview and 'data-code="no_name"' in preview
    job.refresh_from_db()

    with committed():
        response = client.post(
            url("import-preview", stream.slug, job.pk), {"revision": job.revision}
        )
    assert response.status_code == 302
    assert response["Location"] == url("import-job", stream.slug, job.pk)
    report = client.get(response["Location"]).content.decode()

    assert 'data-state="done"' in report and 'value="100"' in report
    assert 'data-count="created">1<' in report and 'data-count="rejected">2<' in report
    assert 'data-code="bad_email"' in report and "hx-trigger" not in report
    assert Card.objects.get().person_name == "Ada Keller"


def test_a_stale_preview_cannot_be_confirmed(stream, manager):
    job = mapped(upload(stream, manager, csv_bytes([row("Ada")])), manager)

    response = logged_in(manager).post(
        url("import-preview", stream.slug, job.pk), {"revision": job.revision - 1}
    )

    assert response.status_code == 409 and "not the latest" in response.content.decode()
    job.refresh_from_db()
    assert job.state == ImportState.READY


def test_the_preview_polls_while_the_rows_are_checked(stream, manager):
    job = upload(stream, manager, csv_bytes([row("Ada")]))
    ImportJob.objects.filter(pk=job.pk).update(state=ImportState.ANALYSING)

    answer = logged_in(manager).get(
        url("import-preview", stream.slug, job.pk), HTTP_HX_REQUEST="true"
    )

    assert answer.status_code == 200
    assert 'hx-trigger="every 1s"' in answer.content.decode()
    assert "Checking every row" in answer.content.decode()


def test_the_progress_page_carries_an_import_on_without_a_worker(stream, manager, eager_tasks):
    data = csv_bytes([row(f"Person {n}") for n in range(5)])
    job = confirmed(mapped(upload(stream, manager, data), manager), manager)
    assert job.state == ImportState.QUEUED  # its task was not sent: no commit here

    page = logged_in(manager).get(url("import-job", stream.slug, job.pk))

    assert page.status_code == 200 and 'data-state="done"' in page.content.decode()
    assert Card.objects.count() == 5


def test_a_member_follows_an_import_but_cannot_discard_it(stream, manager, member):
    job = imported(stream, manager, csv_bytes([row("Ada")]))
    client = logged_in(member)

    assert client.get(url("import-job", stream.slug, job.pk)).status_code == 200
    draft = upload(stream, manager, csv_bytes([row("Ben")]))
    response = client.post(url("import-discard", stream.slug, draft.pk))
    assert response.status_code == 303  # refused: back, with the message
    draft.refresh_from_db()
    assert draft.state == ImportState.UPLOADED


def test_a_draft_is_discarded_with_its_file(stream, manager):
    job = upload(stream, manager, csv_bytes([row("Ada")]))

    response = logged_in(manager).post(url("import-discard", stream.slug, job.pk))

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == ImportState.DISCARDED
    assert not ImportFileChunk.objects.filter(job=job).exists()


def test_an_import_of_another_stream_is_not_found(stream, other_stream, manager):
    job = upload(stream, manager, csv_bytes([row("Ada")]))
    superuser_client = logged_in(other_stream.manager)
    for name in ("import-job", "import-mapping", "import-preview"):
        assert superuser_client.get(url(name, other_stream.slug, job.pk)).status_code in (403, 404)
    assert logged_in(manager).get(url("import-job", stream.slug, 10**9)).status_code == 404


@pytest.fixture
def queued(stream, manager):
    """Two prospects waiting in intake: Collaboration's Data column is full."""
    data_column = column_of(stream, COLLABORATION, "Data")
    Column.objects.filter(pk=data_column.pk).update(wip_limit=1)
    new_card(stream, manager, person_name="In the column")
    imported(
        stream,
        manager,
        csv_bytes([row("Waiting One", email="one@example.com"), row("Waiting Two")]),
    )
    return list(IntakeItem.objects.order_by("id"))


def test_the_board_shows_the_import_link_and_how_many_wait(stream, manager, member, queued):
    board = logged_in(manager).get(reverse("boards:board", args=[stream.slug])).content.decode()
    assert url("import-start", stream.slug) in board
    assert url("badge", stream.slug) in board
    assert (
        url("import-start", stream.slug)
        not in logged_in(member).get(reverse("boards:board", args=[stream.slug])).content.decode()
    )

    badge = logged_in(member).get(url("badge", stream.slug), HTTP_HX_REQUEST="true")

    assert "2 waiting in intake" in badge.content.decode()
    assert url("queue", stream.slug) in badge.content.decode()


def test_the_badge_says_nothing_when_nobody_waits(stream, manager):
    badge = logged_in(manager).get(url("badge", stream.slug), HTTP_HX_REQUEST="true")
    assert badge.status_code == 200 and badge.content.decode().strip() == ""


def test_the_queue_lists_the_waiting_oldest_first_and_removes_one(stream, manager, member, queued):
    page = logged_in(member).get(url("queue", stream.slug)).content.decode()
    assert page.index("Waiting One") < page.index("Waiting Two")
    assert "2 prospects waiting" in page and "Remove" not in page

    refused = logged_in(member).post(url("item-remove", stream.slug, queued[0].pk))
    assert refused.status_code == 303 and IntakeItem.objects.count() == 2

    client = logged_in(manager)
    assert "Remove" in client.get(url("queue", stream.slug)).content.decode()
    response = client.post(url("item-remove", stream.slug, queued[0].pk))

    assert response.status_code == 303
    assert list(IntakeItem.objects.values_list("person_name", flat=True)) == ["Waiting Two"]
    again = client.post(url("item-remove", stream.slug, queued[0].pk))
    assert again.status_code == 404


@pytest.mark.parametrize("revision", ["abc", "", "-1", "99999999999999999999", "1e3"])
def test_a_tampered_revision_is_refused_with_a_message(stream, manager, revision):
    job = mapped(upload(stream, manager, csv_bytes([row("Ada")])), manager)

    response = logged_in(manager).post(
        url("import-preview", stream.slug, job.pk), {"revision": revision}
    )

    assert response.status_code == 400
    assert "could not be read back" in response.content.decode()
    job.refresh_from_db()
    assert job.state == ImportState.READY


def test_a_file_of_a_header_alone_is_refused_at_upload_with_what_to_do(stream, manager):
    response = post_file(logged_in(manager), stream, b"Name,Company,Email\r\n")

    assert response.status_code == 400
    assert "a header and no rows" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_member_sees_an_unconfirmed_import_without_links_it_may_not_follow(
    stream, manager, member
):
    job = upload(stream, manager, csv_bytes([row("Ada")]))

    page = logged_in(member).get(url("import-job", stream.slug, job.pk))

    body = page.content.decode()
    assert page.status_code == 200 and "Not confirmed yet" in body
    assert url("import-start", stream.slug) not in body
    assert 'id="import-progress"' not in body
    done = imported(stream, manager, csv_bytes([row("Ben")]))
    as_manager = logged_in(manager).get(url("import-job", stream.slug, done.pk))
    assert url("import-start", stream.slug) in as_manager.content.decode()


def test_the_progress_counts_data_rows_as_the_preview_does(stream, manager):
    data = csv_bytes([row("Ada"), row(), row("Ben"), row(), row("Cy")])
    job = confirmed(mapped(upload(stream, manager, data), manager), manager)
    assert job.analysis["rows"] == 3 and job.total_rows == 5
    services.import_run(job_id=job.pk, seconds=60, max_rows=2)  # Ada and a blank row
    ImportJob.objects.filter(pk=job.pk).update(lease_until="2999-01-01T00:00:00Z")

    page = logged_in(manager).get(url("import-job", stream.slug, job.pk)).content.decode()

    assert "1 of 3 rows" in page and "1 blank row passed over" in page


def test_without_a_worker_the_progress_page_says_to_keep_it_open(stream, manager, eager_tasks):
    data = csv_bytes([row(f"Person {n}") for n in range(5)])
    job = confirmed(mapped(upload(stream, manager, data), manager), manager)
    ImportJob.objects.filter(pk=job.pk).update(lease_until="2999-01-01T00:00:00Z")

    page = logged_in(manager).get(url("import-job", stream.slug, job.pk)).content.decode()

    assert 'id="in-process-note"' in page and "keep it open" in page


def test_with_a_worker_the_progress_page_does_not_ask_to_stay(stream, manager):
    from vsm.celery import app

    data = csv_bytes([row(f"Person {n}") for n in range(5)])
    job = confirmed(mapped(upload(stream, manager, data), manager), manager)
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        page = logged_in(manager).get(url("import-job", stream.slug, job.pk)).content.decode()
    finally:
        app.conf.task_always_eager = saved

    assert 'data-state="queued"' in page and 'id="in-process-note"' not in page
