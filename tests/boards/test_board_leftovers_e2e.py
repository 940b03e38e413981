"""The board in a browser after a new user's tryout: what was left to mend (focus lost
after a move, an empty "My cards" that explained nothing, a huge toast for a long name,
the stream named in every cycle, bare "Cancel" buttons, a CSP rule kept to one page).

Chromium (Debian's) through Playwright against ``live_server``; see tests/boards/conftest.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from boards.models import Card, CardMove
from pdca.models import Cycle
from tests.boards.test_board_e2e import in_viewport, open_move_menu
from tests.boards.test_e2e import LIVE_UPDATE_MS, card_in, open_board
from tests.support import COLLABORATION, column_of, new_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# What makes a button look like one: the secondary ".button" of the toolbar and dialogs.
BUTTON_LOOK = ("background-color", "border-top", "border-radius", "padding-left", "color")


def look(locator: Locator) -> dict[str, str]:
    return locator.evaluate(
        "(element, names) => Object.fromEntries("
        "names.map(name => [name, getComputedStyle(element).getPropertyValue(name)]))",
        list(BUTTON_LOOK),
    )


def a_live_update(page: Page) -> None:
    """Wait until the board's poll has swapped in a fresh board (a new version)."""
    board = page.locator("#board")
    version = board.get_attribute("data-version")
    assert version is not None
    expect(board).not_to_have_attribute("data-version", version, timeout=LIVE_UPDATE_MS)


def test_focus_stays_on_the_card_after_moving_it_anyway_and_the_next_live_update(
    live_server, page, log_in, stream, manager
):
    for n in range(5):
        new_card(stream, manager, person_name=f"Waiting {n}", column_name="Wisdom")
    card = new_card(stream, manager, person_name="Ada Keller", column_name="Knowledge")
    wisdom = column_of(stream, COLLABORATION, "Wisdom")
    log_in(page, manager)
    open_board(page, live_server, stream)

    dialog = open_move_menu(page, card)
    full = dialog.locator(".full-destination")
    full.locator("summary").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.type("Buyer signs this week")
    page.keyboard.press("Tab")
    expect(full.get_by_role("button", name="Move anyway")).to_be_focused()
    page.keyboard.press("Enter")

    expect(dialog).to_be_hidden()
    menu = card_in(page, wisdom, card).locator(".card-menu")
    expect(menu).to_be_focused()
    # The move changed the board: the poll brings all of it anew, focus stays put.
    a_live_update(page)
    expect(menu).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("heading")).to_contain_text("Move Ada Keller")
    assert CardMove.objects.filter(card=card).latest("id").to_column_id == wisdom.pk


def test_focus_stays_on_a_new_prospect_through_the_next_live_update(
    live_server, page, log_in, stream, member
):
    log_in(page, member)
    open_board(page, live_server, stream)

    page.get_by_role("link", name="New prospect").click()
    page.locator("#dialog").get_by_label("Person").fill("Zoe Newcomer")
    page.keyboard.press("Enter")

    created = page.locator(".card", has_text="Zoe Newcomer").locator(".card-title")
    expect(created).to_be_focused()
    a_live_update(page)
    expect(created).to_be_focused()


def test_my_cards_with_none_owned_says_so_and_offers_everyones(
    live_server, page, log_in, stream, manager, member
):
    theirs = new_card(stream, manager, person_name="Bo Berg", owner_id=manager.pk)
    log_in(page, member)
    open_board(page, live_server, stream)

    page.get_by_label("My cards").check()

    note = page.get_by_role("status").filter(has_text="You own no open cards in this stream.")
    expect(note).to_be_visible()
    expect(page.locator(f"#card-{theirs.pk}")).to_have_count(0)
    note.get_by_role("link", name="Show everyone’s cards").click()
    expect(page.locator(f"#card-{theirs.pk}")).to_be_visible()
    expect(page.get_by_label("My cards")).not_to_be_checked()
    expect(page).not_to_have_url(re.compile(r"mine=1"))
    expect(note).to_have_count(0)


def test_the_new_prospect_dialog_names_cycles_alone_and_its_cancel_is_a_button(
    live_server, page, log_in, stream, member
):
    log_in(page, member)
    open_board(page, live_server, stream)
    secondary = page.get_by_role("button", name="Compact cards")
    expect(secondary).to_be_visible()

    page.get_by_role("link", name="New prospect").click()
    dialog = page.locator("#dialog")
    cycles = dialog.get_by_label("Enter in cycle").locator("option")

    expect(cycles).to_have_text(
        [cycle.name for cycle in Cycle.objects.filter(value_stream=stream).order_by("order")]
    )
    cancel = dialog.get_by_role("button", name="Cancel")
    assert look(cancel) == look(secondary)
    cancel.click()
    expect(dialog).to_be_hidden()


def test_the_move_dialogs_cancel_is_a_button(live_server, page, log_in, stream, member, manager):
    card = new_card(stream, manager, person_name="Ada Keller")
    log_in(page, member)
    open_board(page, live_server, stream)

    dialog = open_move_menu(page, card)

    assert look(dialog.get_by_role("button", name="Cancel")) == look(
        page.get_by_role("button", name="Compact cards")
    )


def test_a_long_name_makes_a_short_toast_on_a_phone(live_server, page, log_in, stream, member):
    company = "Nordwerk" + "Pumpen" * 32  # 200 characters, no space to wrap at
    log_in(page, member)
    page.set_viewport_size({"width": 390, "height": 844})
    open_board(page, live_server, stream)

    page.get_by_role("link", name="New prospect").click()
    dialog = page.locator("#dialog")
    dialog.get_by_label("Company").fill(company)
    dialog.get_by_role("button", name="Create").click()

    toast = page.locator(".toast-success")
    expect(toast).to_contain_text(f"… entered {COLLABORATION}.")
    assert company not in toast.inner_text()
    assert in_viewport(page, toast)
    box = toast.bounding_box()
    assert box is not None and box["height"] < 100  # three lines at most, not a wall
    assert Card.objects.filter(company=company).exists()


def test_no_page_settles_style_attributes_the_csp_refuses(
    live_server, page, log_in, stream, member, manager
):
    card = new_card(stream, manager, person_name="Ada Keller")
    log_in(page, member)
    pages = ("/streams/", f"/streams/{stream.slug}/cards/{card.pk}/")

    for path in pages:
        page.goto(f"{live_server.url}{path}")
        settled = page.evaluate("htmx.config.attributesToSettle")
        assert settled == ["class", "width", "height"], path
