"""A failed request never leaves a false board: what the server answers when a session
ended, a form expired, or a move acted on a card someone else moved meanwhile."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from boards.errors import StaleBoard
from boards.services import card_move
from tests.pages import cards_by_column, element
from tests.support import COLLABORATION, as_actor, column_of, fill, logged_in, new_card

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def move_url(stream, card) -> str:
    return reverse("boards:card-move", args=[stream.slug, card.pk])


def test_an_htmx_request_without_a_session_gets_401_and_the_way_to_log_in(stream, manager):
    board = reverse("boards:board", args=[stream.slug])
    poll = reverse("boards:board-poll", args=[stream.slug])

    polled = Client().get(
        poll,
        {"version": "x"},
        headers={**HTMX, "HX-Current-URL": f"http://testserver{board}?q=Ada"},
    )
    page = Client().get(board)

    assert polled.status_code == 401
    assert polled["HX-Redirect"] == "/accounts/login/?next=%2Fstreams%2F" + (
        f"{stream.slug}%2Fboard%2F%3Fq%3DAda"
    )
    assert "no-store" in polled["Cache-Control"]
    # A page read without htmx still gets Django's redirect to the login page.
    assert page.status_code == 302 and page.url.startswith("/accounts/login/?next=")


def test_an_expired_form_says_so_for_htmx_and_on_a_page(stream, manager):
    card = new_card(stream, manager)
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    information = column_of(stream, COLLABORATION, "Information")

    by_htmx = client.post(move_url(stream, card), {"to_column": information.pk}, headers=HTMX)
    by_form = client.post(move_url(stream, card), {"to_column": information.pk})

    assert by_htmx.status_code == 403 and by_htmx["Content-Type"].startswith("text/plain")
    assert "This page has expired" in by_htmx.content.decode()
    assert by_form.status_code == 403
    assert "reload the page and try again" in by_form.content.decode()
    card.refresh_from_db()
    assert card.column.name == "Data"


def test_a_stale_move_names_the_column_the_card_is_in_now(stream, manager):
    card = new_card(stream, manager)
    knowledge = column_of(stream, COLLABORATION, "Knowledge")
    card_move(card_id=card.pk, to_column_id=knowledge.pk, actor=as_actor(manager))

    with pytest.raises(StaleBoard) as stale:
        card_move(
            card_id=card.pk,
            to_column_id=column_of(stream, COLLABORATION, "Information").pk,
            actor=as_actor(manager),
            expected_version=card.version,
        )

    assert stale.value.data["column_id"] == knowledge.pk


def test_the_move_anyway_offer_names_the_version_the_board_shows(stream, manager):
    wisdom = column_of(stream, COLLABORATION, "Wisdom")
    fill(wisdom, wisdom.wip_limit)
    card = new_card(stream, manager, column_name="Knowledge")

    refused = logged_in(manager).post(
        move_url(stream, card),
        {"to_column": wisdom.pk, "version": card.version, "dragged": "1"},
        headers=HTMX,
    )

    offer = refused.content.decode()
    assert "Move anyway" in offer
    assert f'<input type="hidden" name="version" value="{card.version}">' in offer
    assert card.pk in cards_by_column(refused.content)[card.column_id]
    assert element(refused.content, f"column-{card.column_id}") is not None


def test_the_poll_reads_the_filters_from_its_header(stream, manager):
    ada = new_card(stream, manager, person_name="Ada Keller")
    bo = new_card(stream, manager, person_name="Bo Berg")
    poll = reverse("boards:board-poll", args=[stream.slug])

    polled = logged_in(manager).get(
        poll, {"version": "old"}, headers={**HTMX, "X-Board-Filters": "q=Ada"}
    )

    shown = [card for cards in cards_by_column(polled.content).values() for card in cards]
    assert shown == [ada.pk] and bo.pk not in shown


def test_debug_mode_leaves_failed_requests_to_the_pages_own_scripts(stream, member, settings):
    # django-htmx's debug script would replace the whole page with any 4xx/5xx answer,
    # so `make run` (DEBUG on) would not show what users of the product see.
    settings.DEBUG = True

    page = logged_in(member).get(reverse("boards:board", args=[stream.slug])).content.decode()

    assert "django_htmx/htmx-2.min.js" in page
    assert "django-htmx.js" not in page
