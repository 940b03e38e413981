"""Live updates send what changed: the poll answers a client's version with the cards
changed since and the heads, not the whole board (boards.selectors.changes)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from boards.models import Card
from boards.selectors import BoardVersion, board_version, cards_changed
from boards.services import card_close, card_move, card_update
from boards.views.board import DELTA_MAX_CARDS
from tests.pages import cards_by_column, cards_gone, element, has_element
from tests.support import COLLABORATION, as_actor, column_of, fill, logged_in, new_card

# Transactional: on PostgreSQL a version is a snapshot, which cannot order the writes of
# one transaction (a test wrapped in one) against each other.
pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}


def poll(client, stream, version, **headers):
    return client.get(
        reverse("boards:board-poll", args=[stream.slug]),
        {"version": str(version)},
        headers={**HTMX, **headers},
    )


def test_a_move_comes_as_the_card_in_its_new_column_and_every_head(stream, manager, member):
    card = new_card(stream, manager)
    other = new_card(stream, manager, person_name="Bo Berg")
    information = column_of(stream, COLLABORATION, "Information")
    client = logged_in(member)
    seen = board_version(stream=stream)

    card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))
    delta = poll(client, stream, seen)

    assert (delta.status_code, delta["X-Board-Delta"]) == (200, "1")
    assert cards_by_column(delta.content)[information.pk] == [card.pk]
    assert other.pk not in [c for cards in cards_by_column(delta.content).values() for c in cards]
    assert element(delta.content, f"column-head-{information.pk}")["data-count"] == "1"
    assert element(delta.content, f"column-head-{card.column_id}")["hx-swap-oob"] == "outerHTML"
    assert has_element(delta.content, f"cycle-totals-{information.cycle_id}")
    assert not has_element(delta.content, "board")
    assert poll(client, stream, delta["X-Board-Version"]).status_code == 204


def test_a_closed_card_is_gone_and_an_edit_is_the_card_again(stream, manager):
    won = new_card(stream, manager)
    edited = new_card(stream, manager, person_name="Bo Berg")
    seen = board_version(stream=stream)

    card_close(card_id=won.pk, outcome="won", actor=as_actor(manager))
    card_update(
        card_id=edited.pk,
        actor=as_actor(manager),
        person_name="Bo Berg-Lund",
        company=edited.company,
        email="",
        channel_id=None,
        owner_id=None,
        estimated_value=0,
        notes="",
    )
    delta = poll(logged_in(manager), stream, seen)

    assert cards_gone(delta.content) == [won.pk]
    assert cards_by_column(delta.content)[edited.column_id] == [edited.pk]
    assert "Bo Berg-Lund" in delta.content.decode()


def test_a_renumber_of_positions_is_no_change(stream, manager):
    card = new_card(stream, manager)
    seen = board_version(stream=stream)

    Card.objects.filter(pk=card.pk).update(position=card.position + 7)

    assert poll(logged_in(manager), stream, seen).status_code == 204


@pytest.mark.parametrize("why", ["filtered", "column edited", "too far behind", "unreadable"])
def test_the_whole_board_comes_when_a_delta_would_not_do(stream, manager, why):
    card = new_card(stream, manager)
    data = column_of(stream, COLLABORATION, "Data")
    client = logged_in(manager)
    seen = str(board_version(stream=stream))
    headers = {}
    if why == "filtered":
        headers["X-Board-Filters"] = "q=Ada"
        card_move(
            card_id=card.pk,
            to_column_id=column_of(stream, COLLABORATION, "Information").pk,
            actor=as_actor(manager),
        )
    elif why == "column edited":
        client.post(
            reverse("boards:column-wip-limit", args=[stream.slug, data.pk]), {"wip_limit": "9"}
        )
    elif why == "too far behind":
        for n in range(DELTA_MAX_CARDS + 1):
            new_card(stream, manager, person_name=f"Prospect {n}")
    else:
        seen = "42"

    answer = poll(client, stream, seen, **headers)

    assert answer.status_code == 200
    assert "X-Board-Delta" not in answer
    assert has_element(answer.content, "board")


def test_a_delta_costs_the_same_queries_however_many_cards_the_board_holds(stream, manager):
    information = column_of(stream, COLLABORATION, "Information")
    client = logged_in(manager)

    def delta_queries() -> int:
        card = new_card(stream, manager)
        seen = board_version(stream=stream)
        card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))
        with CaptureQueriesContext(connection) as queries:
            assert poll(client, stream, seen)["X-Board-Delta"] == "1"
        return len(queries)

    few = delta_queries()
    fill(column_of(stream, COLLABORATION, "Data"), 300)
    many = delta_queries()

    assert many == few


def test_a_version_is_read_back_as_written_and_nonsense_is_refused():
    assert BoardVersion.parse("") is None
    assert BoardVersion.parse("x|y") is None
    assert BoardVersion.parse("1" * 5000 + "|-") is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_move_committed_late_by_a_transaction_begun_early_is_not_skipped(stream, manager):
    """The reason for snapshots: the move's transaction is open while a viewer reads
    the board, and commits after a later move. An "ids seen" cursor would skip it."""
    early = new_card(stream, manager, person_name="Early")
    late = new_card(stream, manager, person_name="Late")
    information = column_of(stream, COLLABORATION, "Information")
    knowledge = column_of(stream, COLLABORATION, "Knowledge")
    moved, release = threading.Event(), threading.Event()

    def slow_move() -> None:
        try:
            with transaction.atomic():
                Card.objects.filter(pk=early.pk).update(
                    column=information, version=early.version + 1
                )
                moved.set()
                release.wait(10)
        finally:
            connections.close_all()

    mover = threading.Thread(target=slow_move)
    mover.start()
    assert moved.wait(10)
    seen = board_version(stream=stream)  # the slow move is in flight: not seen
    card_move(card_id=late.pk, to_column_id=knowledge.pk, actor=as_actor(manager))
    release.set()
    mover.join(10)

    assert set(cards_changed(stream=stream, since=seen, limit=10) or []) == {early.pk, late.pk}
