"""A web form's prospect through the API: a card (201) when the first column of its cycle
has room and nobody waits for it; else a place in the intake queue (202), behind those
queued before it, never over the WIP limit, never lost. A prospect the board would
refuse is refused at once, never queued."""

from __future__ import annotations

import threading
from datetime import datetime
from unittest import mock

import pytest
from django.db import connection
from django.urls import reverse

from api.services import api_token_create
from boards.models import Card, CardMove, Column, MoveKind, Outcome, SuppressedEmail
from boards.services import card_move
from boards.services.privacy import email_digest
from intake import services as intake_services
from intake.models import IntakeItem
from intake.services.queue import PULL_TASK
from tests.api.conftest import bearer
from tests.factories import ChannelFactory
from tests.invariants import board_invariant_violations
from tests.support import COLLABORATION, SALES, TEST_SYSTEM, column_of, first_column, new_card
from vsm.actors import ActorKind
from vsm.celery import app as celery_app
from vsm.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _invariants_hold_after_each_test(db):
    yield
    assert board_invariant_violations() == []


@pytest.fixture
def entry(stream) -> Column:
    """Collaboration / Data, where prospects enter, with a WIP limit of 2."""
    column = first_column(stream)
    Column.objects.filter(pk=column.pk).update(wip_limit=2)
    column.refresh_from_db()
    return column


def _prospects(stream) -> str:
    return reverse("api:prospect-create", args=[stream.pk])


def _open_in(column: Column) -> int:
    return Card.objects.filter(column=column, outcome=Outcome.OPEN).count()


def _queued(response, position: int) -> IntakeItem:
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert set(body["intake_item"]) == {"id", "queued_at", "position"}
    assert body["intake_item"]["position"] == position
    item = IntakeItem.objects.get(pk=body["intake_item"]["id"])
    assert datetime.fromisoformat(body["intake_item"]["queued_at"]) == item.queued_at
    assert not response.has_header("Location")
    return item


def _post(api, stream, **body):
    return api.post(_prospects(stream), {"company": "Acme"} | body, format="json")


def test_a_prospect_with_room_and_nobody_waiting_is_a_card_at_once(api, stream, entry):
    response = _post(api, stream, person_name="Ada Keller")

    assert response.status_code == 201, response.content
    card = Card.objects.get(pk=response.json()["id"])
    assert card.column == entry and card.person_name == "Ada Keller"
    assert response["Location"] == reverse("api:card-detail", args=[stream.pk, card.pk])
    assert not IntakeItem.objects.exists()


def test_a_prospect_meeting_a_full_first_column_waits_in_the_intake_queue(
    api, stream, entry, issued, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(value_stream=stream, name="Website form")
    new_card(stream, stream.manager, person_name="One")
    new_card(stream, stream.manager, person_name="Two")

    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(
            api,
            stream,
            person_name=" Ada Keller ",
            email="Ada@Nordwerk.example",
            channel_name="website form",
            estimated_value="1250.50",
            notes="Asked for a quote.",
        )

    item = _queued(response, position=1)
    assert _open_in(entry) == 2 and Card.objects.count() == 2
    assert (item.value_stream_id, item.cycle_id, item.source_job_id) == (
        stream.pk,
        entry.cycle_id,
        None,
    )
    assert (item.person_name, item.company, item.email, item.channel_id) == (
        "Ada Keller",
        "Acme",
        "Ada@Nordwerk.example",
        channel.pk,
    )
    assert str(item.estimated_value) == "1250.50" and item.notes == "Asked for a quote."
    assert item.email_digest == email_digest("ada@nordwerk.example")
    assert item.held_code == ""
    audit = AuditEntry.objects.get(action="intake_item.queued")
    assert (audit.stream_id, audit.target_type, audit.target_id) == (
        stream.pk,
        "intake_item",
        item.pk,
    )
    assert (audit.actor_kind, audit.actor_token_id) == (ActorKind.TOKEN, issued.token.pk)
    assert audit.data == {"cycle_id": entry.cycle_id, "position": 1}
    # The column was full: room, when it appears, pulls (intake.stream_changed); no pull
    # is asked for now.
    assert callbacks == []


def test_once_a_prospect_waits_later_ones_queue_behind_it_even_when_room_appears(
    api, stream, entry, django_capture_on_commit_callbacks
):
    cards = [new_card(stream, stream.manager, person_name=f"Card {n}") for n in range(2)]
    first = _queued(_post(api, stream, person_name="First in line"), position=1)
    # A card leaves the column; the pull its announcement starts has not run yet.
    card_move(
        card_id=cards[0].pk,
        to_column_id=column_of(stream, COLLABORATION, "Information").pk,
        actor=TEST_SYSTEM,
    )
    assert _open_in(entry) == 1

    with django_capture_on_commit_callbacks() as callbacks:
        second = _queued(_post(api, stream, person_name="Second in line"), position=2)

    assert _open_in(entry) == 1  # no newcomer jumped the line
    assert len(callbacks) == 1  # and a pull was asked for, as room may be there
    with mock.patch.object(celery_app, "signature") as signature:
        callbacks[0]()
    assert signature.call_args_list == [mock.call(PULL_TASK, args=(stream.pk,))]

    pulled = intake_services.intake_pull(stream_id=stream.pk)

    assert (pulled.created, pulled.more) == (1, False)
    assert list(IntakeItem.objects.values_list("pk", flat=True)) == [second.pk]
    card = Card.objects.get(person_name="First in line")
    assert card.column == entry
    enter = CardMove.objects.get(card=card)
    assert (enter.kind, enter.actor_kind, enter.actor_system) == (
        MoveKind.ENTER,
        ActorKind.SYSTEM,
        "intake",
    )
    assert first.pk not in IntakeItem.objects.values_list("pk", flat=True)


def test_prospects_held_aside_do_not_make_a_line(api, stream, entry):
    new_card(stream, stream.manager, person_name="One")
    new_card(stream, stream.manager, person_name="Two")
    held = _queued(_post(api, stream, person_name="Held"), position=1)
    IntakeItem.objects.filter(pk=held.pk).update(
        held_code="invalid_move", held_message="That channel is no longer active."
    )
    Column.objects.filter(pk=entry.pk).update(wip_limit=3)

    response = _post(api, stream, person_name="Newcomer")

    assert response.status_code == 201, response.content
    assert _open_in(entry) == 3


def test_each_cycle_has_its_own_line(api, stream, entry):
    new_card(stream, stream.manager, person_name="One")
    new_card(stream, stream.manager, person_name="Two")
    _queued(_post(api, stream, person_name="Waiting for Collaboration"), position=1)
    sales_data = column_of(stream, SALES, "Data")

    response = _post(api, stream, person_name="Into Sales", cycle_id=sales_data.cycle_id)

    assert response.status_code == 201, response.content
    assert response.json()["column_id"] == sales_data.pk


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"channel_id": "inactive"}, 400, "invalid_move", "channel_id"),
        ({"channel_name": "Old list"}, 400, "invalid_move", "channel_name"),
        ({"email": "gone@example.com"}, 400, "email_suppressed", "email"),
        ({"cycle_id": "other stream's"}, 404, "cycle_not_found", None),
    ],
)
@pytest.mark.parametrize("line", ["full column", "prospects waiting"])
def test_a_prospect_the_board_would_refuse_is_refused_not_queued(
    api, stream, other_stream, entry, body, status, code, field, line
):
    inactive = ChannelFactory(value_stream=stream, name="Old list", is_active=False)
    SuppressedEmail.objects.create(digest=email_digest("gone@example.com"))
    new_card(stream, stream.manager, person_name="One")
    new_card(stream, stream.manager, person_name="Two")
    if line == "prospects waiting":
        _queued(_post(api, stream, person_name="Waiting"), position=1)
        Column.objects.filter(pk=entry.pk).update(wip_limit=None)
    waiting = list(IntakeItem.objects.values_list("pk", flat=True))
    if body.get("channel_id") == "inactive":
        body = {"channel_id": inactive.pk}
    if body.get("cycle_id") == "other stream's":
        body = {"cycle_id": first_column(other_stream).cycle_id}

    response = _post(api, stream, **body)

    assert response.status_code == status, response.content
    answer = response.json()
    assert answer["code"] == code
    assert answer.get("field") == field
    assert list(IntakeItem.objects.values_list("pk", flat=True)) == waiting
    assert (
        not AuditEntry.objects.filter(action="intake_item.queued")
        .exclude(target_id__in=waiting)
        .exists()
    )
    assert Card.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("room", "created", "queued"), [(1, 1, 1), (0, 0, 2)])
def test_two_prospects_posted_at_once_are_never_lost_nor_over_the_limit(
    stream, room, created, queued
):
    entry = first_column(stream)
    Column.objects.filter(pk=entry.pk).update(wip_limit=2)
    for n in range(2 - room):
        new_card(stream, stream.manager, person_name=f"Holding {n}")
    secret = api_token_create(stream_id=stream.pk, name="Web form", actor=TEST_SYSTEM).secret
    statuses: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def post(name: str) -> None:
        try:
            client = bearer(secret)
            start.wait()
            response = client.post(_prospects(stream), {"person_name": name}, format="json")
            statuses.append(response.status_code)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(f"Racer {n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(statuses) == sorted([201] * created + [202] * queued)
    assert _open_in(entry) == 2 - room + created <= 2
    racers = set(Card.objects.filter(person_name__startswith="Racer").values_list("person_name"))
    waiting = set(IntakeItem.objects.values_list("person_name"))
    assert racers | waiting == {("Racer 0",), ("Racer 1",)} and not racers & waiting
    positions = sorted(
        AuditEntry.objects.filter(action="intake_item.queued").values_list(
            "data__position", flat=True
        )
    )
    assert positions == list(range(1, queued + 1))
