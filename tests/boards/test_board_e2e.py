"""The board in a browser, as a new user meets it (issue 12): dragging by the name,
seeing the whole stream, money, "my cards", the keyboard, and the small things that
erode trust (a toast that lies, a stale dialog, a stale board after Back).

Chromium (Debian's) through Playwright against ``live_server``; see tests/boards/conftest.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Locator, Page, expect

from boards.models import Card, CardMove, Column
from boards.selectors import COLUMN_PAGE_SIZE
from boards.services import card_move
from tests.boards.test_e2e import LIVE_UPDATE_MS, card_in, open_board
from tests.factories import CardFactory
from tests.support import COLLABORATION, as_actor, column_of, fill, new_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Less than one poll (2 s): what is shown this fast was not brought by the poll.
SOONER_THAN_A_POLL_MS = 1_200


def board_url(live_server, stream) -> str:
    return f"{live_server.url}/streams/{stream.slug}/board/"


def in_viewport(page: Page, locator: Locator) -> bool:
    """Whether the element's box lies inside the window (as far as the eye goes)."""
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    return (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"]
        and box["y"] + box["height"] <= size["height"]
    )


def touch_drag(page: Page, source: Locator, target: Locator) -> None:
    """Press with a finger on ``source``, hold past the board's touch delay, slide to
    ``target``, lift (real touch events through the Chrome DevTools protocol)."""
    start, end = source.bounding_box(), target.bounding_box()
    assert start is not None and end is not None
    x0, y0 = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    x1, y1 = end["x"] + end["width"] / 2, end["y"] + 20
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, x: float, y: float) -> None:
        points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", x0, y0)
    page.wait_for_timeout(300)
    steps = 12
    for step in range(1, steps + 1):
        touch("touchMove", x0 + (x1 - x0) * step / steps, y0 + (y1 - y0) * step / steps)
        page.wait_for_timeout(30)
    touch("touchEnd", x1, y1)


# 1. Drag from anywhere on the card, including its name.


def test_drag_a_card_by_its_name(live_server, page, log_in, stream, manager):
    card = new_card(stream, manager, person_name="Ada Keller")
    information = column_of(stream, COLLABORATION, "Information")
    log_in(page, manager)
    open_board(page, live_server, stream)

    page.locator(f"#card-{card.pk} .card-title").drag_to(
        page.locator(f"#column-{information.pk} ol.cards")
    )

    expect(page.locator(f"#column-head-{information.pk}")).to_have_attribute("data-count", "1")
    expect(card_in(page, information, card)).to_be_visible()
    assert Card.objects.get(pk=card.pk).column_id == information.pk
    assert page.url == board_url(live_server, stream)  # the drag opened no page


def test_drag_a_card_by_its_name_with_a_finger(live_server, new_context, log_in, stream, manager):
    card = new_card(stream, manager, person_name="Ada Keller")
    information = column_of(stream, COLLABORATION, "Information")
    page = log_in(new_context(has_touch=True).new_page(), manager)
    open_board(page, live_server, stream)

    touch_drag(
        page,
        page.locator(f"#card-{card.pk} .card-title"),
        page.locator(f"#column-{information.pk} ol.cards"),
    )

    expect(page.locator(f"#column-head-{information.pk}")).to_have_attribute("data-count", "1")
    assert Card.objects.get(pk=card.pk).column_id == information.pk
    assert page.url == board_url(live_server, stream)


def test_a_click_on_the_name_still_opens_the_card(live_server, page, log_in, stream, manager):
    card = new_card(stream, manager, person_name="Ada Keller")
    log_in(page, manager)
    open_board(page, live_server, stream)

    page.locator(f"#card-{card.pk} .card-title").click()

    page.wait_for_url(f"{live_server.url}/streams/{stream.slug}/cards/{card.pk}/")
    assert Card.objects.get(pk=card.pk).column_id == card.column_id


# 2. See the whole stream.


def test_a_collapsed_cycle_stays_collapsed_for_this_user_on_this_stream(
    live_server, new_context, log_in, stream, other_stream, manager
):
    page = log_in(new_context().new_page(), manager)
    open_board(page, live_server, stream)
    collaboration = page.locator("section.cycle").first
    columns = collaboration.locator(".columns")
    toggle = collaboration.get_by_role("button", name=COLLABORATION)
    expect(toggle).to_have_attribute("aria-expanded", "true")

    toggle.click()

    expect(columns).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(collaboration.locator(".cycle-totals")).to_be_visible()
    page.reload()
    expect(page.locator("section.cycle").first.locator(".columns")).to_be_hidden()
    # Another stream of the same user is not affected.
    other_stream.manager = manager
    other_stream.save()
    open_board(page, live_server, other_stream)
    expect(page.locator("section.cycle").first.locator(".columns")).to_be_visible()
    # Expanding it again is remembered too.
    open_board(page, live_server, stream)
    page.locator("section.cycle").first.get_by_role("button", name=COLLABORATION).click()
    page.reload()
    expect(page.locator("section.cycle").first.locator(".columns")).to_be_visible()


def test_compact_cards_are_remembered(live_server, page, log_in, stream, manager):
    card = new_card(stream, manager, person_name="Ada Keller", company="Nordwerk Pumps")
    log_in(page, manager)
    open_board(page, live_server, stream)
    company = page.locator(f"#card-{card.pk} .card-company")
    expect(company).to_be_visible()
    tall = page.locator(f"#card-{card.pk}").bounding_box()

    page.get_by_role("button", name="Compact cards").click()

    expect(page.get_by_role("button", name="Compact cards")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(company).to_be_hidden()
    short = page.locator(f"#card-{card.pk}").bounding_box()
    assert tall is not None and short is not None and short["height"] < tall["height"]
    page.reload()
    expect(page.locator(f"#card-{card.pk} .card-company")).to_be_hidden()


def test_the_jump_bar_shows_counts_and_scrolls_the_board_to_a_column(
    live_server, page, log_in, stream, manager
):
    new_card(stream, manager, person_name="Ada Keller", column_name="Wisdom")
    repeat_wisdom = Column.objects.get(cycle__value_stream=stream, cycle__order=3, name="Wisdom")
    sales_data = Column.objects.get(cycle__value_stream=stream, cycle__order=2, name="Data")
    fill(sales_data, 3)
    log_in(page, manager)
    page.set_viewport_size({"width": 1280, "height": 900})
    open_board(page, live_server, stream)
    jump_bar = page.get_by_role("navigation", name="Columns of the board")
    expect(jump_bar.locator(f"#jump-{sales_data.pk}")).to_contain_text("Data 3")
    target = page.locator(f"#column-{repeat_wisdom.pk}")
    assert not in_viewport(page, target)

    jump_bar.locator(f"#jump-{repeat_wisdom.pk}").click()

    expect(target).to_be_in_viewport(ratio=1)
    expect(target).to_be_focused()


# 2 and 5. A new prospect shows where it landed, with its value.


def test_a_new_prospect_is_scrolled_into_view_and_highlighted_with_its_value(
    live_server, page, log_in, stream, member
):
    data_column = column_of(stream, COLLABORATION, "Data")
    fill(data_column, COLUMN_PAGE_SIZE + 15)  # the new card lands past the first page
    log_in(page, member)
    page.set_viewport_size({"width": 1280, "height": 900})
    open_board(page, live_server, stream)

    page.get_by_role("link", name="New prospect").click()
    dialog = page.locator("#dialog")
    dialog.get_by_label("Person").fill("Zoe Newcomer")
    dialog.get_by_label("Estimated value").fill("12500")
    dialog.get_by_role("button", name="Create").click()

    expect(dialog).to_be_hidden()
    created = Card.objects.get(person_name="Zoe Newcomer")
    card = page.locator(f"#column-{data_column.pk} #card-{created.pk}")
    expect(card).to_have_class(re.compile(r"\bjust-added\b"))
    expect(card).to_be_in_viewport(ratio=1)
    expect(card.locator(".card-title")).to_be_focused()
    expect(card.locator(".value")).to_have_text("12,500")
    expect(page.locator(f"#column-head-{data_column.pk} .open-value")).to_have_text("12,500")
    expect(card).not_to_have_class(re.compile(r"\bjust-added\b"), timeout=4_000)


# 7. "My cards".


def test_my_cards_in_one_click_kept_across_live_updates(
    live_server, page, log_in, stream, manager, member
):
    mine = new_card(stream, manager, person_name="Ada Keller", owner_id=member.pk)
    theirs = new_card(stream, manager, person_name="Bo Berg", owner_id=manager.pk)
    moved_meanwhile = new_card(stream, manager, person_name="Cleo Mine", owner_id=member.pk)
    information = column_of(stream, COLLABORATION, "Information")
    log_in(page, member)
    open_board(page, live_server, stream)

    page.get_by_label("My cards").check()

    expect(page.locator(f"#card-{theirs.pk}")).to_have_count(0)
    expect(page.locator(f"#card-{mine.pk}")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]mine=1"))
    card_move(card_id=moved_meanwhile.pk, to_column_id=information.pk, actor=as_actor(manager))
    expect(card_in(page, information, moved_meanwhile)).to_be_visible(timeout=LIVE_UPDATE_MS)
    expect(page.locator(f"#card-{theirs.pk}")).to_have_count(0)
    page.reload()
    expect(page.get_by_label("My cards")).to_be_checked()
    expect(page.locator(f"#card-{theirs.pk}")).to_have_count(0)
    # Choosing an owner takes the place of "my cards" (one filter, not two that clash).
    page.get_by_label("Owner").select_option(str(manager.pk))
    expect(page.get_by_label("My cards")).not_to_be_checked()
    expect(page.locator(f"#card-{theirs.pk}")).to_be_visible()
    expect(page.locator(f"#card-{mine.pk}")).to_have_count(0)
    expect(page).not_to_have_url(re.compile(r"mine=1"))


# 8. The keyboard.


def open_move_menu(page: Page, card: Card) -> Locator:
    page.locator(f"#card-{card.pk} .card-menu").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#dialog")
    expect(dialog).to_be_visible()
    return dialog


def test_focus_returns_to_the_moved_card_after_move_to(
    live_server, page, log_in, stream, member, manager
):
    card = new_card(stream, manager, person_name="Ada Keller")
    knowledge = column_of(stream, COLLABORATION, "Knowledge")
    log_in(page, member)
    open_board(page, live_server, stream)

    dialog = open_move_menu(page, card)
    dialog.get_by_role("button", name="Knowledge", exact=True).press("Enter")

    expect(dialog).to_be_hidden()
    menu = card_in(page, knowledge, card).locator(".card-menu")
    expect(menu).to_be_focused()
    # And the keyboard goes on from there: the same card's menu again.
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("heading")).to_contain_text("Move Ada Keller")


def test_the_dialog_marks_full_columns_and_a_manager_overrides_from_it(
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
    expect(full).to_contain_text("Wisdom full, 5/5")
    full.locator("summary").click()
    full.get_by_label(re.compile("Override the WIP limit")).fill("Buyer signs this week")
    full.get_by_role("button", name="Move anyway").click()

    expect(dialog).to_be_hidden()
    expect(card_in(page, wisdom, card)).to_be_visible()
    expect(page.locator(".toast")).to_contain_text("Moved over the WIP limit of Wisdom")
    move = CardMove.objects.filter(card=card).latest("id")
    assert (move.to_column_id, move.wip_override_reason) == (wisdom.pk, "Buyer signs this week")


def test_a_member_sees_full_columns_marked_and_offered_no_override(
    live_server, page, log_in, stream, manager, member
):
    for n in range(5):
        new_card(stream, manager, person_name=f"Waiting {n}", column_name="Wisdom")
    card = new_card(stream, manager, person_name="Ada Keller", column_name="Knowledge")
    log_in(page, member)
    open_board(page, live_server, stream)

    dialog = open_move_menu(page, card)

    expect(dialog.locator(".full-destination")).to_contain_text("Wisdom full, 5/5")
    expect(dialog.get_by_role("button", name="Move anyway")).to_have_count(0)
    expect(dialog.get_by_role("button", name="Information", exact=True)).to_be_visible()


# 10. Small things that erode trust.


def test_move_anyway_toast_goes_once_the_override_succeeded(
    live_server, page, log_in, stream, manager
):
    for n in range(5):
        new_card(stream, manager, person_name=f"Waiting {n}", column_name="Wisdom")
    card = new_card(stream, manager, person_name="Ada Keller", column_name="Knowledge")
    wisdom = column_of(stream, COLLABORATION, "Wisdom")
    log_in(page, manager)
    open_board(page, live_server, stream)
    source = page.locator(f"#card-{card.pk}")
    box = source.bounding_box()
    assert box is not None
    source.drag_to(
        page.locator(f"#column-{wisdom.pk} ol.cards"),
        source_position={"x": 8, "y": box["height"] - 4},
    )
    refusal = page.locator(".toast-error")
    expect(refusal).to_contain_text("Wisdom is at its WIP limit, 5/5")

    refusal.get_by_label(re.compile("Override")).fill("Buyer signs this week")
    refusal.get_by_role("button", name="Move anyway").click()

    expect(card_in(page, wisdom, card)).to_be_visible()
    expect(page.locator(".toast-error")).to_have_count(0)
    expect(page.get_by_role("button", name="Move anyway")).to_have_count(0)


def test_a_stale_move_to_dialog_closes_on_the_refusal(
    live_server, page, log_in, stream, manager, member
):
    card = new_card(stream, manager, person_name="Ada Keller")
    information = column_of(stream, COLLABORATION, "Information")
    log_in(page, member)
    open_board(page, live_server, stream)
    dialog = open_move_menu(page, card)
    # Meanwhile someone else moves the card.
    card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))

    dialog.get_by_role("button", name="Knowledge", exact=True).click()

    expect(page.locator(".toast-error")).to_contain_text("changed this card meanwhile")
    expect(dialog).to_be_hidden()
    expect(card_in(page, information, card)).to_be_visible()


def test_back_shows_the_current_board_at_once(live_server, page, log_in, stream, manager):
    card = new_card(stream, manager, person_name="Ada Keller")
    data_column = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    log_in(page, manager)
    open_board(page, live_server, stream)
    page.locator(f"#card-{card.pk} .card-title").click()
    page.wait_for_url(re.compile(rf"/cards/{card.pk}/$"))
    card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))

    page.go_back()

    expect(card_in(page, information, card)).to_be_visible(timeout=SOONER_THAN_A_POLL_MS)
    expect(card_in(page, data_column, card)).to_have_count(0)


def test_back_through_the_filters_shows_the_current_board_at_once(
    live_server, page, log_in, stream, manager
):
    card = new_card(stream, manager, person_name="Ada Keller")
    information = column_of(stream, COLLABORATION, "Information")
    page.clock.install()  # its time flows until paused
    log_in(page, manager)
    open_board(page, live_server, stream)
    page.get_by_label("Blocked only").check()
    expect(page).to_have_url(re.compile(r"blocked=1"))
    expect(page.locator(f"#card-{card.pk}")).to_have_count(0)
    # From now on no poll runs: only an immediate refresh can show the move.
    page.clock.pause_at(datetime.now(UTC) + timedelta(seconds=1))
    card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))

    page.go_back()

    expect(card_in(page, information, card)).to_be_visible()


def test_an_expanded_column_stays_expanded_across_live_updates(
    live_server, page, log_in, stream, manager
):
    data_column = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    cards = fill(data_column, COLUMN_PAGE_SIZE + 10)
    other = new_card(stream, manager, person_name="Bo Berg", column_name="Knowledge")
    log_in(page, manager)
    open_board(page, live_server, stream)
    listed = page.locator(f"#column-{data_column.pk} li.card")
    expect(listed).to_have_count(COLUMN_PAGE_SIZE)

    page.locator(f"#column-{data_column.pk}").get_by_role("button", name="Show more").click()
    expect(listed).to_have_count(COLUMN_PAGE_SIZE + 10)
    card_move(card_id=other.pk, to_column_id=information.pk, actor=as_actor(manager))

    expect(card_in(page, information, other)).to_be_visible(timeout=LIVE_UPDATE_MS)
    expect(listed).to_have_count(COLUMN_PAGE_SIZE + 10)
    expect(card_in(page, data_column, cards[-1])).to_be_attached()


def test_a_drag_and_its_refresh_log_no_csp_error(live_server, page, log_in, stream, manager):
    cards = [new_card(stream, manager, person_name=f"Prospect {n}") for n in range(6)]
    information = column_of(stream, COLLABORATION, "Information")
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    log_in(page, manager)
    open_board(page, live_server, stream)
    source = page.locator(f"#card-{cards[2].pk}")
    box = source.bounding_box()
    assert box is not None

    source.drag_to(
        page.locator(f"#column-{information.pk} ol.cards"),
        source_position={"x": 8, "y": box["height"] - 4},
    )
    expect(page.locator(f"#column-head-{information.pk}")).to_have_attribute("data-count", "1")
    # A live update re-renders the whole board, the animated cards too.
    card_move(card_id=cards[0].pk, to_column_id=information.pk, actor=as_actor(manager))
    expect(card_in(page, information, cards[0])).to_be_visible(timeout=LIVE_UPDATE_MS)

    assert [error for error in errors if "Content Security Policy" in error] == []


# 9. Long unbroken text wraps on the card.


def test_long_unbroken_text_wraps_on_the_card(live_server, page, log_in, stream, manager):
    data_column = column_of(stream, COLLABORATION, "Data")
    card = CardFactory(
        column=data_column,
        person_name="Ada Keller",
        company="Nordwerk" + "Pumpen" * 32,
        is_blocked=True,
        blocked_reason="Waiting for https://example.com/" + "tender-documents/" * 12,
    )
    log_in(page, manager)
    page.set_viewport_size({"width": 390, "height": 844})
    open_board(page, live_server, stream)
    shown = page.locator(f"#card-{card.pk}")
    expect(shown).to_be_visible()

    # Nothing sticks out of the card, and the card does not stick out of its column
    # (whose list would cut it off).
    edges = shown.evaluate(
        """card => ({
            list: card.parentElement.getBoundingClientRect().right,
            listOverflow: card.parentElement.scrollWidth - card.parentElement.clientWidth,
            card: card.getBoundingClientRect().right,
            cardOverflow: card.scrollWidth - card.clientWidth,
            parts: [...card.querySelectorAll('.card-title, .card-company, .blocked-reason')]
                .map(part => part.getBoundingClientRect().right),
        })"""
    )
    assert edges["listOverflow"] <= 0 and edges["cardOverflow"] <= 0
    assert edges["card"] <= edges["list"]
    assert all(right <= edges["card"] for right in edges["parts"])


def test_no_page_snapshot_with_prospects_stays_in_session_storage(
    live_server, page, log_in, stream, manager
):
    new_card(stream, manager, person_name="Ada Keller")
    log_in(page, manager)
    open_board(page, live_server, stream)
    page.get_by_label("Blocked only").check()
    expect(page).to_have_url(re.compile(r"blocked=1"))
    page.get_by_label("Blocked only").uncheck()
    expect(page).not_to_have_url(re.compile(r"blocked=1"))

    stored = page.evaluate(
        "() => Object.keys(sessionStorage).map(key => sessionStorage.getItem(key)).join(' ')"
    )

    # htmx would keep each pushed page's HTML (names included) under htmx-history-cache.
    assert "Ada Keller" not in stored
