"""A board kept open all day: ages move on with the clock, a live update leaves an open
WIP editor alone, and a background check that fails closes nothing the user is typing.

Chromium (Debian's) through Playwright against ``live_server``; see tests/boards/conftest.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from boards.models import Card
from boards.services import card_move
from tests.boards.test_e2e import LIVE_UPDATE_MS, open_board
from tests.support import COLLABORATION, as_actor, column_of, new_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_cards_age_moves_on_while_the_board_stays_open(
    live_server, page, log_in, stream, manager
):
    card = new_card(stream, manager, person_name="Ada Keller")
    Card.objects.filter(pk=card.pk).update(
        column_entered_at=timezone.now() - timedelta(minutes=58, seconds=30)
    )
    page.clock.install()
    log_in(page, manager)
    open_board(page, live_server, stream)
    age = page.locator(f"#card-{card.pk} .age")
    expect(age).to_have_text("58m")

    page.clock.run_for(120_000)  # two minutes: the card itself did not change

    expect(age).to_have_text("1h")


def test_a_live_update_leaves_an_open_wip_editor_alone(live_server, page, log_in, stream, manager):
    data = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    elsewhere = new_card(stream, manager, person_name="Bo Berg")
    log_in(page, manager)
    open_board(page, live_server, stream)
    editor = page.locator(f"#column-head-{information.pk} details.wip-edit")
    editor.locator("summary").click()
    editor.locator("input[name=wip_limit]").fill("7")

    with page.expect_response(
        lambda answer: "/board/poll/" in answer.url and answer.headers.get("x-board-delta") == "1",
        timeout=LIVE_UPDATE_MS * 2,
    ):
        card_move(card_id=elsewhere.pk, to_column_id=information.pk, actor=as_actor(manager))
    page.wait_for_timeout(200)  # the delta is applied

    expect(editor).to_have_attribute("open", "")
    expect(editor.locator("input[name=wip_limit]")).to_have_value("7")
    # The rest of the board took the update: the card is in its new column.
    expect(page.locator(f"#column-{information.pk} #card-{elsewhere.pk}")).to_be_visible()
    expect(page.locator(f"#column-head-{data.pk}")).to_have_attribute("data-count", "0")


def test_a_failed_background_check_keeps_the_dialog_and_says_nothing(
    live_server, page, log_in, stream, manager
):
    page.clock.install()
    log_in(page, manager)
    open_board(page, live_server, stream)
    page.route("**/intake/badge/", lambda route: route.abort())
    page.get_by_role("link", name="New prospect").click()
    dialog = page.locator("#dialog")
    dialog.get_by_label("Person").fill("Zoe Newcomer")

    with page.expect_event("requestfailed", lambda request: "/intake/badge/" in request.url):
        page.clock.run_for(31_000)  # the badge checks every 30 s
    page.wait_for_timeout(300)  # what the failure handlers would do, done

    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Person")).to_have_value("Zoe Newcomer")
    expect(page.locator(".toast-failure")).to_have_count(0)
