"""CSV import through the services: the happy path, bad rows, encodings and delimiters,
duplicates (skip and merge), suppressed e-mails, a resumed job."""

from __future__ import annotations

from decimal import Decimal

import pytest

from boards.models import ActivityKind, Card, CardActivity, CardMove, MoveKind
from boards.services import card_create, prospect_erase
from intake import services
from intake.errors import ImportFileRefused, ImportFileTooLarge
from intake.models import DuplicatePolicy, ImportFileChunk, ImportJob, ImportState, IntakeItem
from intake.services.rows import RowCode
from tests.factories import ChannelFactory, UserFactory
from tests.intake.support import (
    confirmed,
    csv_bytes,
    imported,
    mapped,
    row,
    run_to_end,
    upload,
)
from tests.support import COLLABORATION, as_actor, column_of
from vsm.access import StreamNotFound
from vsm.errors import PermissionRefused
from vsm.models import AuditEntry, Channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(stream):
    return ChannelFactory(value_stream=stream, name="Web form")


def test_happy_path_creates_cards_in_the_first_column(stream, manager, member, web):
    data = csv_bytes(
        [
            row(
                "Ada Keller",
                "Nordwerk",
                "ada@nordwerk.example",
                "web form",
                "1.200,50",
                member.username,
                "Met at the fair",
            ),
            row("", "Lindqvist AB", "", "WEB FORM", "300"),
            row("Ben Ortiz", "", "ben@ortiz.example"),
        ]
    )

    job = imported(stream, manager, data)

    assert job.state == ImportState.DONE
    assert (job.created, job.merged, job.queued, job.rejected) == (3, 0, 0, 0)
    assert job.total_rows == 3 and job.rows_done == 3
    data_column = column_of(stream, COLLABORATION, "Data")
    cards = {c.display_name: c for c in Card.objects.filter(value_stream=stream)}
    ada = cards["Ada Keller (Nordwerk)"]
    assert ada.column_id == data_column.pk
    assert ada.channel_id == web.pk and ada.owner_id == member.pk
    assert ada.estimated_value == Decimal("1200.50")
    assert ada.notes == "Met at the fair"
    assert cards["Lindqvist AB"].channel_id == web.pk
    # Through the one write path: an enter move each, by the person who imported.
    moves = CardMove.objects.filter(card__in=cards.values())
    assert moves.count() == 3 and all(m.kind == MoveKind.ENTER for m in moves)
    assert {m.actor_id for m in moves} == {manager.pk}
    # The file is gone once the import is over; the report stays.
    assert not ImportFileChunk.objects.filter(job=job).exists()
    assert "first_rows" not in job.analysis
    assert AuditEntry.objects.filter(action="import.finished", target_id=job.pk).exists()


def test_bad_rows_are_rejected_by_code_with_their_row_numbers(stream, manager, web):
    Channel.objects.create(value_stream=stream, name="Old fair", is_active=False)
    data = csv_bytes(
        [
            row("Good One", email="good@example.com"),  # row 2
            row("", "", "nobody@example.com"),  # 3: no name
            row("Bad Mail", email="not-an-address"),  # 4
            row("Bad Value", value="-5"),  # 5
            row("Bad Value 2", value="12 apples"),  # 6
            row("Stranger Owned", owner="someone-else"),  # 7
            row("Long", notes="x" * 10_001),  # 8
            row("Inactive", channel="old fair"),  # 9
            row("New Channel", channel="Podcast"),  # 10: not created
            ["", "", "", "", "", "", ""],  # 11: blank
            row("Good Two"),  # 12
        ]
    )

    job = imported(stream, manager, data)

    assert (job.created, job.rejected, job.blank_rows) == (2, 8, 1)
    assert job.rejected_by_code == {
        RowCode.NO_NAME: 1,
        RowCode.BAD_EMAIL: 1,
        RowCode.BAD_VALUE: 2,
        RowCode.UNKNOWN_OWNER: 1,
        RowCode.TOO_LONG: 1,
        RowCode.INACTIVE_CHANNEL: 1,
        RowCode.UNKNOWN_CHANNEL: 1,
    }
    assert [(e["row"], e["code"]) for e in job.row_errors] == [
        (3, "no_name"),
        (4, "bad_email"),
        (5, "bad_value"),
        (6, "bad_value"),
        (7, "unknown_owner"),
        (8, "too_long"),
        (9, "inactive_channel"),
        (10, "unknown_channel"),
    ]
    assert sorted(Card.objects.values_list("person_name", flat=True)) == ["Good One", "Good Two"]


def test_the_check_before_counts_what_the_import_then_does(stream, manager, web):
    data = csv_bytes(
        [
            row("A", email="a@example.com"),
            row("B", email="a@example.com"),
            row(notes="hm"),
            row("C", channel="Podcast"),
            row("D", value="abc"),
        ]
    )
    job = mapped(upload(stream, manager, data), manager)

    assert job.analysis["rows"] == 5
    assert job.analysis["new"] == 2  # A, and C (its channel created on confirmation)
    assert job.analysis["rejected"] == {"bad_value": 1, "duplicate_in_file": 1, "no_name": 1}
    assert job.analysis["new_channels"] == ["Podcast"]
    assert [r["action"] for r in job.analysis["first_rows"]] == [
        "new",
        "reject",
        "reject",
        "new",
        "reject",
    ]

    job = run_to_end(confirmed(job, manager, create_channels=["Podcast"]))

    assert job.created == 2 and job.rejected == 3
    podcast = Channel.objects.get(value_stream=stream, name="Podcast")
    assert Card.objects.get(person_name="C").channel_id == podcast.pk


@pytest.mark.parametrize(
    ("encoding", "delimiter", "detected"),
    [
        ("utf-8-sig", ",", "utf-8-sig"),
        ("utf-8", ";", "utf-8"),
        ("cp1252", ";", "cp1252"),
        ("cp1252", "\t", "cp1252"),
        ("utf-16", "\t", "utf-16"),
    ],
)
def test_encodings_and_delimiters_are_detected(stream, manager, encoding, delimiter, detected):
    names = ["Jürgen Groß", "Hélène Lefèvre", "Zoë Ærø"]
    data = csv_bytes(
        [
            row(name, "Café Crème, Straße 5", f"p{n}@example.com", value="1,5")
            for n, name in enumerate(names)
        ],
        delimiter=delimiter,
        encoding=encoding,
    )

    job = upload(stream, manager, data)

    assert (job.encoding, job.delimiter) == (detected, delimiter)
    assert job.header[0] == "Name"  # no BOM left on the first column's name
    assert job.mapping["person_name"] == 0 and job.mapping["email"] == 2
    job = run_to_end(confirmed(mapped(job, manager), manager))
    assert sorted(Card.objects.values_list("person_name", flat=True)) == sorted(names)
    assert set(Card.objects.values_list("company", flat=True)) == {"Café Crème, Straße 5"}
    assert set(Card.objects.values_list("estimated_value", flat=True)) == {Decimal("1.50")}


def test_a_wrongly_guessed_encoding_and_delimiter_can_be_changed(stream, manager):
    # A Mac Roman file separated by bars: neither is guessed.
    data = csv_bytes([row("Hélène Lefèvre", "Crème")], encoding="mac_roman", delimiter="|")
    job = upload(stream, manager, data)
    assert job.encoding != "mac_roman" and len(job.header) == 1

    job = services.import_reading_set(
        job_id=job.pk,
        stream_id=stream.pk,
        actor=as_actor(manager),
        encoding="mac_roman",
        delimiter="|",
    )
    assert job.header[:2] == ["Name", "Company"] and job.mapping["company"] == 1
    job = run_to_end(confirmed(mapped(job, manager), manager))

    assert Card.objects.get().display_name == "Hélène Lefèvre (Crème)"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"PK\x03\x04rest-of-a-workbook", "spreadsheet workbook"),
        (b"\x00\x01\x02binary\x00", "binary"),
    ],
)
def test_files_that_are_no_csv_are_refused_and_nothing_is_kept(stream, manager, data, message):
    with pytest.raises(ImportFileRefused) as refused:
        upload(stream, manager, data)
    assert message in str(refused.value)
    assert not ImportJob.objects.exists() and not ImportFileChunk.objects.exists()


def test_a_file_over_the_size_limit_is_refused(stream, manager, settings):
    settings.VSM_IMPORT_MAX_BYTES = 100
    data = csv_bytes([row(f"Person {n}") for n in range(20)])
    with pytest.raises(ImportFileTooLarge, match="larger than"):
        services.import_upload(
            stream_id=stream.pk,
            actor=as_actor(manager),
            file_name="big.csv",
            chunks=[data],
            size=None,
        )
    assert not ImportJob.objects.exists() and not ImportFileChunk.objects.exists()


def test_duplicates_in_the_stream_are_skipped(stream, manager):
    existing = card_create(
        cycle_id=column_of(stream, COLLABORATION, "Data").cycle_id,
        actor=as_actor(manager),
        person_name="Ada Keller",
        email="Ada@Nordwerk.example",
    ).card
    data = csv_bytes(
        [
            row("Ada K.", "Nordwerk", " ada@nordwerk.EXAMPLE", value="500"),
            row("New Person", email="new@example.com"),
        ]
    )

    job = imported(stream, manager, data, duplicates=DuplicatePolicy.SKIP)

    assert (job.created, job.merged, job.rejected) == (1, 0, 1)
    assert job.rejected_by_code == {"duplicate_in_stream": 1}
    existing.refresh_from_db()
    assert (existing.company, existing.estimated_value) == ("", 0)


def test_duplicates_in_the_stream_are_merged_into_empty_fields(stream, manager, web):
    existing = card_create(
        cycle_id=column_of(stream, COLLABORATION, "Data").cycle_id,
        actor=as_actor(manager),
        person_name="Ada Keller",
        email="ada@nordwerk.example",
        notes="Our notes",
    ).card
    data = csv_bytes(
        [row("Ada K.", "Nordwerk", "ADA@nordwerk.example", "Web form", "500", notes="Their notes")]
    )

    job = imported(stream, manager, data, duplicates=DuplicatePolicy.MERGE)

    assert (job.created, job.merged, job.merged_unchanged) == (0, 1, 0)
    existing.refresh_from_db()
    # Empty fields filled, the card's own facts kept.
    assert existing.person_name == "Ada Keller" and existing.notes == "Our notes"
    assert (existing.company, existing.channel_id, existing.estimated_value) == (
        "Nordwerk",
        web.pk,
        Decimal("500"),
    )
    edit = CardActivity.objects.get(card=existing, kind=ActivityKind.EDIT)
    assert edit.actor_id == manager.pk
    assert Card.objects.count() == 1


def test_duplicates_within_the_file_are_rejected_after_the_first(stream, manager):
    data = csv_bytes(
        [
            row("First", email="same@example.com"),
            row("Second", email="SAME@example.com"),
            row("Third", email="other@example.com"),
        ]
    )

    job = imported(stream, manager, data, duplicates=DuplicatePolicy.MERGE)

    assert job.created == 2 and job.rejected_by_code == {"duplicate_in_file": 1}
    assert job.row_errors == [{"row": 3, "code": "duplicate_in_file", "field": "email"}]


def test_suppressed_emails_are_refused(stream, manager):
    card = card_create(
        cycle_id=column_of(stream, COLLABORATION, "Data").cycle_id,
        actor=as_actor(manager),
        person_name="Forget Me",
        email="forget.me@example.com",
    ).card
    prospect_erase(card_id=card.pk, actor=as_actor(manager))
    data = csv_bytes([row("Forget Me Again", email="Forget.Me@Example.com"), row("Welcome")])

    job = imported(stream, manager, data)

    assert job.rejected_by_code == {"suppressed_email": 1} and job.created == 1
    assert not Card.objects.filter(email__iexact="forget.me@example.com").exists()


def test_only_those_who_steer_the_stream_may_import(stream, member, user):
    data = csv_bytes([row("Someone")])
    with pytest.raises(PermissionRefused, match="import prospects"):
        upload(stream, member, data)
    with pytest.raises(StreamNotFound):
        upload(stream, user, data)
    assert not ImportJob.objects.exists()


def test_a_job_resumes_after_its_cursor_when_its_worker_died(stream, manager):
    data = csv_bytes([row(f"Person {n}", email=f"p{n % 7}@example.com") for n in range(20)])
    job = confirmed(mapped(upload(stream, manager, data), manager), manager)

    first = services.import_run(job_id=job.pk, seconds=60, max_rows=5)
    assert first.more and first.rows == 5
    job.refresh_from_db()
    assert job.cursor == 6 and job.created == 5
    # The next worker dies in the middle of its slice, holding the job's lease.
    second = services.import_run(job_id=job.pk, seconds=60, max_rows=4)
    assert second.rows == 4
    ImportJob.objects.filter(pk=job.pk).update(lease_token="dead-worker", lease_until=None)

    job = run_to_end(job, max_rows=3)

    assert job.state == ImportState.DONE
    # Rows 2-8 have new e-mails, every later row repeats one of them: nothing twice.
    assert (job.created, job.rejected) == (7, 13)
    assert job.rejected_by_code == {"duplicate_in_file": 13}
    assert Card.objects.count() == 7
    assert sorted(Card.objects.values_list("person_name", flat=True)) == sorted(
        f"Person {n}" for n in range(7)
    )


def test_a_second_worker_leaves_a_leased_job_alone_and_a_late_commit_rolls_back(stream, manager):
    from intake.services.run import _claim, _LeaseLost, _Runner

    data = csv_bytes([row(f"Person {n}") for n in range(3)])
    job = confirmed(mapped(upload(stream, manager, data), manager), manager)
    token = _claim(job.pk)
    assert token is not None

    assert not services.import_run(job_id=job.pk, seconds=60).claimed

    ImportJob.objects.filter(pk=job.pk).update(lease_until=None)  # the lease ran out
    job = run_to_end(job)
    assert job.state == ImportState.DONE and job.created == 3
    stale = _Runner(job=job, token=token, seconds=60, max_rows=None)
    with pytest.raises(_LeaseLost):
        stale._batch([], 0)
    job.refresh_from_db()
    assert job.created == 3


def test_the_importer_who_left_the_stream_stops_the_job(stream, manager):
    other = UserFactory(is_superuser=True)
    data = csv_bytes([row("Someone")])
    job = confirmed(mapped(upload(stream, other, data), other), other)
    other.is_superuser = False
    other.save()

    job = run_to_end(job)

    assert job.state == ImportState.FAILED and "no longer manages" in job.error_message
    assert not Card.objects.exists()
    assert IntakeItem.objects.count() == 0
    assert AuditEntry.objects.filter(action="import.failed").exists()
    assert not ImportFileChunk.objects.filter(job=job).exists()
    assert job.created == 0


def test_a_fault_that_would_recur_stops_the_job_and_says_where(stream, manager):
    data = csv_bytes([row("Someone")])
    job = confirmed(mapped(upload(stream, manager, data), manager), manager)
    ImportJob.objects.filter(pk=job.pk).update(mapping={})  # a mapping gone bad

    result = services.import_run(job_id=job.pk, seconds=60)

    job.refresh_from_db()
    assert result.state == ImportState.FAILED and not result.more
    assert job.state == ImportState.FAILED
    assert "unexpected error stopped the import after row 1" in job.error_message
    assert not Card.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_on_one_job_import_each_row_once(stream, manager):
    import threading
    import time

    from django.db import connection

    data = csv_bytes([row(f"Person {n}", email=f"p{n}@example.com") for n in range(300)])
    job = confirmed(mapped(upload(stream, manager, data), manager), manager)
    start = threading.Barrier(2)
    errors = []

    def worker() -> None:
        try:
            start.wait()
            for _ in range(200):
                result = services.import_run(job_id=job.pk, seconds=0.3)
                state = ImportJob.objects.get(pk=job.pk).state
                if state == ImportState.DONE:
                    return
                if not result.claimed:
                    time.sleep(0.05)  # the other worker holds the job
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    job.refresh_from_db()
    assert errors == []
    assert job.state == ImportState.DONE and job.created == 300
    assert Card.objects.filter(value_stream=stream).count() == 300
    assert CardMove.objects.filter(value_stream=stream).count() == 300


def test_a_nul_byte_rejects_its_row_in_the_check_and_the_import_and_the_rest_imports(
    stream, manager
):
    # Past what the upload looks at (64 KB), as in a large export with one garbled row.
    notes = "Met at the fair; " * 12
    rows = [row(f"Person {n}", email=f"p{n}@example.com", notes=notes) for n in range(400)]
    rows.insert(350, row("Bad\x00Row", email="bad@example.com"))
    rows.insert(5, row("Escaped", notes="colour \x1b[31mred"))
    data = csv_bytes(rows)
    assert data.index(b"\x00") > 64 * 1024
    nul_row = rows.index(row("Bad\x00Row", email="bad@example.com")) + 2  # after the header

    job = mapped(upload(stream, manager, data), manager)

    assert job.analysis["rejected"] == {"control_characters": 2}
    assert job.analysis["new"] == 400
    preview = job.analysis["first_rows"][5]
    assert (preview["code"], preview["detail"]) == ("control_characters", "U+001B")
    assert "\x1b" not in preview["notes"]

    job = run_to_end(confirmed(job, manager))

    assert job.state == ImportState.DONE and job.error_message == ""
    assert (job.created, job.rejected) == (400, 2)
    assert job.rejected_by_code == {"control_characters": 2}
    assert [(e["row"], e["code"], e["field"]) for e in job.row_errors] == [
        (7, "control_characters", "notes"),
        (nul_row, "control_characters", "person_name"),
    ]
    assert not Card.objects.filter(email="bad@example.com").exists()


def test_a_stray_quote_that_swallowed_rows_shows_as_a_row_of_the_wrong_width(stream, manager):
    data = (
        b"Name,E-mail,Notes\r\n"
        b"Ada,ada@example.com,fine\r\n"
        b'"Stray,quote@example.com,open\r\n'  # the quote runs on to the next one
        b"Cy,cy@example.com,swallowed\r\n"
        b'Di,"di@example.com",swallowed too\r\n'
        b"Ed,ed@example.com,after\r\n"
    )

    job = mapped(upload(stream, manager, data), manager)

    assert job.analysis["rejected"] == {"cell_count": 1}
    assert job.analysis["new"] == 2
    stray = job.analysis["first_rows"][1]
    assert (stray["row"], stray["code"]) == (3, "cell_count")
    assert stray["detail"] == "2 cells where the header has 3"
    job = run_to_end(confirmed(job, manager))
    assert sorted(Card.objects.values_list("person_name", flat=True)) == ["Ada", "Ed"]
    assert job.row_errors == [{"row": 3, "code": "cell_count", "field": ""}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Name,Company,Email\r\n", "a header and no rows"),
        (b"Name,Company,Email\r\n,,\r\n\r\n", "a header and no rows"),
        (b"col,col,col,col,col" + b"z" * 300_000 + b"\nA,B\n", "first row is longer than 64 KB"),
    ],
)
def test_a_file_of_a_header_alone_or_of_a_huge_header_is_refused_at_upload(
    stream, manager, data, message
):
    with pytest.raises(ImportFileRefused, match=message):
        upload(stream, manager, data)
    assert not ImportJob.objects.exists() and not ImportFileChunk.objects.exists()


def test_a_stray_nul_early_in_the_file_is_no_binary_file_and_rejects_its_row(stream, manager):
    data = b"Na\x00me,E-mail\r\nAda,ada@example.com\r\nB\x00en,ben@example.com\r\n"

    job = mapped(upload(stream, manager, data), manager, mapping=None)

    assert job.header == ["Na\u2400me", "E-mail"]  # shown, and storable in JSON
    assert job.analysis["rejected"] == {"control_characters": 1}
    assert job.analysis["first_rows"][1]["person_name"] == "B\u2400en"
