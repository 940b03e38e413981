"""A failed request never leaves a false board, in the browser: a drag whose request
fails puts the card back and says so; a session ended elsewhere leads to the login page.

Chromium (Debian's) through Playwright against ``live_server``; see tests/boards/conftest.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Route, expect

from boards.models import Card
from tests.boards.test_e2e import LIVE_UPDATE_MS, card_in, drag, open_board
from tests.support import COLLABORATION, column_of, new_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (lambda route: route.fulfill(status=500, body="boom"), "could not do that just now"),
        (lambda route: route.fulfill(status=404, body="gone"), "no longer there"),
        (lambda route: route.abort(), "Could not reach the server"),
    ],
    ids=["server error", "not found", "no answer"],
)
def test_a_drag_whose_request_fails_puts_the_card_back_and_says_so(
    live_server, page, log_in, stream, manager, failure, said
):
    card = new_card(stream, manager, person_name="Ada Keller")
    data = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    log_in(page, manager)
    open_board(page, live_server, stream)

    def fail_moves(route: Route) -> None:
        failure(route)

    page.route(re.compile(r".*/cards/\d+/move/$"), fail_moves)
    drag(page, card, information)

    alert = page.locator(".toast-failure")
    expect(alert).to_contain_text(said)
    expect(alert.get_by_role("button", name="Reload the page")).to_be_visible()
    expect(card_in(page, data, card)).to_be_visible()
    expect(card_in(page, information, card)).to_have_count(0)
    assert Card.objects.get(pk=card.pk).column_id == data.pk


def test_a_session_ended_elsewhere_leads_to_the_login_page_not_into_the_board(
    live_server, page, log_in, stream, manager
):
    new_card(stream, manager, person_name="Ada Keller")
    log_in(page, manager)
    open_board(page, live_server, stream)

    page.context.clear_cookies()  # as a logout in another tab leaves this one

    page.wait_for_url(re.compile(r"/accounts/login/\?next="), timeout=LIVE_UPDATE_MS)
    expect(page.locator("#board")).to_have_count(0)
    expect(page.get_by_label("Username")).to_be_visible()


def test_the_poll_keeps_a_search_out_of_its_url(live_server, page, log_in, stream, manager):
    new_card(stream, manager, person_name="Ada Keller")
    log_in(page, manager)
    page.goto(f"{live_server.url}/streams/{stream.slug}/board/?q=Ada")

    with page.expect_request(re.compile(r"/board/poll/"), timeout=LIVE_UPDATE_MS) as polled:
        pass

    assert "Ada" not in polled.value.url
    assert polled.value.headers["x-board-filters"] == "q=Ada"
