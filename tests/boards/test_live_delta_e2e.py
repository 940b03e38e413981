"""A second viewer receives a move as a small fragment, not the board.

Chromium (Debian's) through Playwright against ``live_server``; see tests/boards/conftest.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.boards.test_e2e import LIVE_UPDATE_MS, card_in, drag, open_board
from tests.support import COLLABORATION, column_of, fill, new_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The whole board of this test's stream is some 60 kB; what changed, a few.
DELTA_MAX_BYTES = 12_000


def test_a_second_viewer_receives_a_move_as_a_small_fragment(
    live_server, browser, log_in, stream, manager, member
):
    data = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    knowledge = column_of(stream, COLLABORATION, "Knowledge")
    fill(knowledge, 40)
    card = new_card(stream, manager, person_name="Ada Keller")
    mover = log_in(browser.new_page(), manager)
    viewer = log_in(browser.new_page(), member)
    open_board(mover, live_server, stream)
    open_board(viewer, live_server, stream)
    viewer.evaluate("document.querySelector('.lanes').scrollLeft = 300")
    scrolled = viewer.evaluate("document.querySelector('.lanes').scrollLeft")

    with viewer.expect_response(
        lambda answer: "/board/poll/" in answer.url and answer.status == 200,
        timeout=LIVE_UPDATE_MS * 2,
    ) as polled:
        drag(mover, card, information)

    answer = polled.value
    assert answer.headers.get("x-board-delta") == "1"
    assert len(answer.body()) < DELTA_MAX_BYTES
    expect(card_in(viewer, information, card)).to_be_visible()
    expect(card_in(viewer, data, card)).to_have_count(0)
    expect(viewer.locator(f"#column-head-{information.pk} .wip")).to_have_text(
        re.compile(r"^\s*1\b")
    )
    # The rest of the viewer's board is left as it was: where it was scrolled to, and
    # the first page of Knowledge.
    assert scrolled > 0
    assert viewer.evaluate("document.querySelector('.lanes').scrollLeft") == scrolled
    expect(viewer.locator(f"#column-{knowledge.pk} li.card")).to_have_count(25)


def test_the_movers_own_card_is_left_alone_when_the_next_delta_brings_it(
    live_server, browser, log_in, stream, manager
):
    """The move's answer drew the card already: the delta every viewer shares brings it
    too (as it is now), and board.js leaves the element in place, not redrawn."""
    information = column_of(stream, COLLABORATION, "Information")
    card = new_card(stream, manager, person_name="Ada Keller")
    mover = log_in(browser.new_page(), manager)
    open_board(mover, live_server, stream)

    with mover.expect_response(lambda answer: "/move/" in answer.url) as moved:
        drag(mover, card, information)
    assert moved.value.status == 200
    expect(card_in(mover, information, card)).to_be_visible()
    mover.wait_for_timeout(100)  # the answer's swap settles
    mover.evaluate(f"document.getElementById('card-{card.pk}').dataset.drawnByMove = 'yes'")
    with mover.expect_response(
        lambda answer: "/board/poll/" in answer.url and answer.status == 200,
        timeout=LIVE_UPDATE_MS * 2,
    ) as polled:
        pass
    body = polled.value.body().decode()

    assert f'id="card-{card.pk}"' in body  # the delta named it
    assert mover.evaluate(f"document.getElementById('card-{card.pk}').dataset.drawnByMove") == "yes"
