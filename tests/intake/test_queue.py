"""The WIP-limited intake queue: rows beyond the limit wait, are pulled in order when
room appears (a card leaves, the limit rises), never lost and never over the limit."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from boards.models import Card, CardMove, Column, MoveKind, Outcome
from boards.services import card_close, card_move, column_set_wip_limit, prospect_erase
from intake import services
from intake.errors import IntakeItemNotFound
from intake.models import DuplicatePolicy, IntakeItem
from tests.factories import ChannelFactory
from tests.intake.support import csv_bytes, imported, row
from tests.support import COLLABORATION, TEST_SYSTEM, as_actor, column_of, new_card
from vsm.actors import ActorKind
from vsm.errors import PermissionRefused
from vsm.services import channel_deactivate

pytestmark = pytest.mark.django_db


def open_in(column: Column) -> int:
    return Card.objects.filter(column=column, outcome=Outcome.OPEN).count()


@pytest.fixture
def data_column(stream) -> Column:
    """Collaboration / Data with a WIP limit of 3 and one card in it."""
    column = column_of(stream, COLLABORATION, "Data")
    Column.objects.filter(pk=column.pk).update(wip_limit=3)
    column.refresh_from_db()
    return column


def waiting_rows() -> list[int | None]:
    return list(IntakeItem.objects.order_by("queued_at", "id").values_list("source_row", flat=True))


def test_rows_beyond_the_wip_limit_wait_in_the_queue(stream, manager, data_column):
    new_card(stream, manager, person_name="Already here")
    data = csv_bytes([row(f"Prospect {n}", email=f"p{n}@example.com") for n in range(5)])

    job = imported(stream, manager, data)

    assert (job.created, job.queued, job.rejected) == (2, 3, 0)
    assert open_in(data_column) == 3
    assert waiting_rows() == [4, 5, 6]
    assert list(IntakeItem.objects.order_by("id").values_list("person_name", flat=True)) == [
        "Prospect 2",
        "Prospect 3",
        "Prospect 4",
    ]


def test_a_card_leaving_the_column_pulls_the_oldest_waiting_prospect(
    stream, manager, data_column, committed
):
    cards = [new_card(stream, manager, person_name=f"Card {n}") for n in range(3)]
    imported(stream, manager, csv_bytes([row(f"Prospect {n}") for n in range(4)]))
    assert waiting_rows() == [2, 3, 4, 5] and open_in(data_column) == 3

    # The move's announcement reaches the intake's consumer (tasks run in-process).
    with committed():
        card_move(
            card_id=cards[0].pk,
            to_column_id=column_of(stream, COLLABORATION, "Information").pk,
            actor=as_actor(manager),
        )

    assert open_in(data_column) == 3
    assert waiting_rows() == [3, 4, 5]
    pulled = Card.objects.get(person_name="Prospect 0")
    assert pulled.column_id == data_column.pk
    enter = CardMove.objects.get(card=pulled)
    assert enter.kind == MoveKind.ENTER
    assert (enter.actor_kind, enter.actor_system) == (ActorKind.SYSTEM, "intake")

    with committed():
        card_close(card_id=cards[1].pk, outcome=Outcome.WON, actor=as_actor(manager))
    with committed():
        card_close(card_id=cards[2].pk, outcome=Outcome.WON, actor=as_actor(manager))

    assert open_in(data_column) == 3
    assert waiting_rows() == [5]
    assert Card.objects.filter(person_name__startswith="Prospect").count() == 3


def test_a_higher_wip_limit_pulls_as_many_as_it_makes_room_for(
    stream, manager, data_column, committed
):
    for n in range(3):
        new_card(stream, manager, person_name=f"Card {n}")
    imported(stream, manager, csv_bytes([row(f"Prospect {n}") for n in range(4)]))

    with committed():
        column_set_wip_limit(column_id=data_column.pk, wip_limit=5, actor=as_actor(manager))

    assert open_in(data_column) == 5
    assert waiting_rows() == [4, 5]


def test_a_new_import_waits_behind_prospects_already_in_line(stream, manager, data_column):
    for n in range(3):
        new_card(stream, manager, person_name=f"Card {n}")
    imported(stream, manager, csv_bytes([row("First A"), row("Second A")]))
    # Room for one appears without anyone being told (no pull yet).
    Column.objects.filter(pk=data_column.pk).update(wip_limit=4)

    job = imported(stream, manager, csv_bytes([row("Only B")]))

    assert (job.created, job.queued) == (0, 1)
    result = services.intake_pull(stream_id=stream.pk)
    assert result.created == 1
    assert Card.objects.filter(person_name="First A").exists()
    assert list(
        IntakeItem.objects.order_by("queued_at", "id").values_list("person_name", flat=True)
    ) == ["Second A", "Only B"]
    assert open_in(data_column) == 4


def test_a_prospect_that_cannot_enter_is_held_aside_and_can_be_tried_again(
    stream, manager, data_column
):
    channel = ChannelFactory(value_stream=stream, name="Fair")
    for n in range(3):
        new_card(stream, manager, person_name=f"Card {n}")
    imported(stream, manager, csv_bytes([row("Fair Visitor", channel="fair"), row("Plain")]))
    channel_deactivate(channel_id=channel.pk, actor=as_actor(manager))
    Column.objects.filter(pk=data_column.pk).update(wip_limit=5)

    result = services.intake_pull(stream_id=stream.pk)

    assert (result.created, result.held) == (1, 1)
    held = IntakeItem.objects.get()
    assert held.person_name == "Fair Visitor"
    assert held.held_code == "invalid_move" and "no longer active" in held.held_message
    # Held aside: the next pull passes it over.
    assert services.intake_pull(stream_id=stream.pk).created == 0

    services.intake_item_retry(item_id=held.pk, stream_id=stream.pk, actor=as_actor(manager))
    held.refresh_from_db()
    assert held.held_code == "" and held.held_message == ""


def test_a_waiting_prospect_whose_person_asked_to_be_forgotten_is_dropped(
    stream, manager, data_column, other_stream
):
    for n in range(3):
        new_card(stream, manager, person_name=f"Card {n}")
    imported(stream, manager, csv_bytes([row("Soon Forgotten", email="gone@example.com")]))
    assert IntakeItem.objects.count() == 1
    # Meanwhile the person asks another stream to forget them: one list for all.
    elsewhere = new_card(other_stream, TEST_SYSTEM, email="GONE@example.com")
    prospect_erase(card_id=elsewhere.pk, actor=TEST_SYSTEM)
    Column.objects.filter(pk=data_column.pk).update(wip_limit=5)

    result = services.intake_pull(stream_id=stream.pk)

    assert (result.created, result.dropped) == (0, 1)
    assert not IntakeItem.objects.exists()
    assert not Card.objects.filter(person_name="Soon Forgotten").exists()


def test_a_duplicate_of_a_waiting_prospect_merges_into_it(stream, manager, data_column):
    for n in range(3):
        new_card(stream, manager, person_name=f"Card {n}")
    imported(stream, manager, csv_bytes([row("Waiting", email="w@example.com")]))

    job = imported(
        stream,
        manager,
        csv_bytes([row("Waiting Too", "Acme", "W@example.com", value="70")]),
        duplicates=DuplicatePolicy.MERGE,
    )

    assert (job.merged, job.queued, job.created) == (1, 0, 0)
    item = IntakeItem.objects.get()
    assert (item.person_name, item.company, str(item.estimated_value)) == (
        "Waiting",
        "Acme",
        "70.00",
    )


def test_removing_a_waiting_prospect_takes_a_steering_person(stream, manager, member, data_column):
    for n in range(3):
        new_card(stream, manager, person_name=f"Card {n}")
    imported(stream, manager, csv_bytes([row("Unwanted")]))
    item = IntakeItem.objects.get()

    with pytest.raises(PermissionRefused):
        services.intake_item_remove(item_id=item.pk, stream_id=stream.pk, actor=as_actor(member))
    services.intake_item_remove(item_id=item.pk, stream_id=stream.pk, actor=as_actor(manager))

    assert not IntakeItem.objects.exists()
    with pytest.raises(IntakeItemNotFound):
        services.intake_item_remove(item_id=item.pk, stream_id=stream.pk, actor=as_actor(manager))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_pulls_never_take_one_prospect_twice_nor_go_over_the_limit(stream, manager):
    column = column_of(stream, COLLABORATION, "Data")
    Column.objects.filter(pk=column.pk).update(wip_limit=1)
    new_card(stream, manager, person_name="Holding the column")
    imported(stream, manager, csv_bytes([row(f"Prospect {n:02d}") for n in range(12)]))
    Column.objects.filter(pk=column.pk).update(wip_limit=6)
    results = []
    errors = []
    start = threading.Barrier(4)

    def pull() -> None:
        try:
            start.wait()
            results.append(services.intake_pull(stream_id=stream.pk))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=pull) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(result.created for result in results) == 5
    assert open_in(column) == 6
    pulled = sorted(
        Card.objects.filter(person_name__startswith="Prospect").values_list(
            "person_name", flat=True
        )
    )
    assert pulled == [f"Prospect {n:02d}" for n in range(5)]
    assert IntakeItem.objects.count() == 7
