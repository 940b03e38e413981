"""The board in a real browser: drag and drop, WIP refusals, handoffs, live updates, keyboard.

Chromium (Debian's) through Playwright against ``live_server``; see tests/boards/conftest.py.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from boards.models import Card, Column, Handoff
from boards.services import card_move
from tests.support import COLLABORATION, SALES, as_actor, column_of, new_card
from vsm.models import ValueStream

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The board polls every 2 s; a change must show within one poll and its answer.
LIVE_UPDATE_MS = 3_500


def open_board(page: Page, live_server, stream: ValueStream) -> None:
    page.goto(f"{live_server.url}/streams/{stream.slug}/board/")
    expect(page.locator("#board")).to_be_visible()


def card_in(page: Page, column: Column, card: Card) -> Locator:
    return page.locator(f"#column-{column.pk} #card-{card.pk}")


def drag(page: Page, card: Card, column: Column) -> None:
    """Drag by the card's bottom-left padding: links and buttons do not start a drag."""
    source = page.locator(f"#card-{card.pk}")
    box = source.bounding_box()
    assert box is not None
    source.drag_to(
        page.locator(f"#column-{column.pk} ol.cards"),
        source_position={"x": 8, "y": box["height"] - 4},
    )


def test_drag_a_card_to_another_column(live_server, page, log_in, stream, manager):
    card = new_card(stream, manager, person_name="Ada Keller")
    information = column_of(stream, COLLABORATION, "Information")
    log_in(page, manager)
    open_board(page, live_server, stream)

    drag(page, card, information)

    expect(card_in(page, information, card)).to_be_visible()
    # The server's answer refreshes the counts: the move was accepted, not just drawn.
    expect(page.locator(f"#column-head-{information.pk}")).to_have_attribute("data-count", "1")
    page.reload()
    expect(card_in(page, information, card)).to_be_visible()
    assert Card.objects.get(pk=card.pk).column_id == information.pk


def test_drag_into_a_full_column_is_refused(live_server, page, log_in, stream, manager):
    for n in range(5):
        new_card(stream, manager, person_name=f"Waiting {n}", column_name="Wisdom")
    card = new_card(stream, manager, person_name="Ada Keller", column_name="Knowledge")
    knowledge = column_of(stream, COLLABORATION, "Knowledge")
    wisdom = column_of(stream, COLLABORATION, "Wisdom")
    log_in(page, manager)
    open_board(page, live_server, stream)

    drag(page, card, wisdom)

    expect(page.locator(".toast-error")).to_contain_text("Wisdom is at its WIP limit, 5/5")
    expect(card_in(page, knowledge, card)).to_be_visible()
    expect(page.locator(f"#column-{wisdom.pk} li.card")).to_have_count(5)
    assert Card.objects.get(pk=card.pk).column_id == knowledge.pk


def test_drag_across_a_cycle_asks_for_the_handoff_checklist(
    live_server, page, log_in, stream, member, manager
):
    card = new_card(stream, manager, person_name="Ada Keller", column_name="Wisdom")
    sales_data = column_of(stream, SALES, "Data")
    wisdom = column_of(stream, COLLABORATION, "Wisdom")
    log_in(page, member)
    open_board(page, live_server, stream)

    drag(page, card, sales_data)

    dialog = page.locator("#dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text("Hand off Ada Keller (Nordwerk Pumps)")
    expect(card_in(page, wisdom, card)).to_be_visible()  # put back until the handoff passes
    dialog.get_by_role("button", name="Hand off").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Required criteria not met")
    assert not Handoff.objects.exists()

    dialog.get_by_label("Customer's problem understood").check()
    dialog.get_by_label("Our solution matches the problem").check()
    dialog.get_by_role("button", name="Hand off").click()

    expect(card_in(page, sales_data, card)).to_be_visible()
    expect(dialog).to_be_hidden()
    handoff = Handoff.objects.get(card=card)
    assert handoff.move.to_column_id == sales_data.pk
    assert sorted(handoff.criteria_met.values_list("text", flat=True)) == [
        "Customer's problem understood",
        "Our solution matches the problem",
    ]


def test_a_second_user_sees_the_move_without_reloading(
    live_server, new_context, log_in, stream, manager, member
):
    card = new_card(stream, manager, person_name="Ada Keller")
    information = column_of(stream, COLLABORATION, "Information")
    mover = log_in(new_context().new_page(), manager)
    watcher = log_in(new_context().new_page(), member)
    open_board(watcher, live_server, stream)
    open_board(mover, live_server, stream)
    watcher.evaluate("window.notReloaded = true")
    expect(card_in(watcher, column_of(stream, COLLABORATION, "Data"), card)).to_be_visible()

    drag(mover, card, information)
    expect(mover.locator(f"#column-head-{information.pk}")).to_have_attribute("data-count", "1")

    expect(card_in(watcher, information, card)).to_be_visible(timeout=LIVE_UPDATE_MS)
    assert watcher.evaluate("window.notReloaded") is True


def test_move_a_card_with_the_keyboard(live_server, page, log_in, stream, member, manager):
    card = new_card(stream, manager, person_name="Ada Keller")
    knowledge = column_of(stream, COLLABORATION, "Knowledge")
    log_in(page, member)
    open_board(page, live_server, stream)

    page.locator(f"#card-{card.pk} .card-menu").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_contain_text("Move Ada Keller")
    for _ in range(12):
        if page.evaluate("document.activeElement.textContent.trim()") == "Knowledge":
            break
        page.keyboard.press("Tab")
    focused = page.evaluate(
        "[document.activeElement.textContent.trim(), "
        "document.activeElement.closest('dialog') !== null]"
    )
    assert focused == ["Knowledge", True]
    page.keyboard.press("Enter")

    expect(card_in(page, knowledge, card)).to_be_visible()
    expect(dialog).to_be_hidden()
    assert Card.objects.get(pk=card.pk).column_id == knowledge.pk


def touch_drag(page: Page, card: Card, column: Column) -> None:
    """Drag with a finger: press, hold past the board's touch delay, slide, lift.

    Real touch events through the Chrome DevTools protocol (a mouse drag would not
    take SortableJS's touch path).
    """
    start = page.locator(f"#card-{card.pk}").bounding_box()
    target = page.locator(f"#column-{column.pk} ol.cards").bounding_box()
    assert start is not None and target is not None
    x0, y0 = start["x"] + 8, start["y"] + start["height"] - 4
    x1, y1 = target["x"] + target["width"] / 2, target["y"] + 20
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, x: float, y: float) -> None:
        points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", x0, y0)
    page.wait_for_timeout(300)  # board.js: delay 150 ms on touch, so a swipe still scrolls
    steps = 12
    for step in range(1, steps + 1):
        touch("touchMove", x0 + (x1 - x0) * step / steps, y0 + (y1 - y0) * step / steps)
        page.wait_for_timeout(30)
    touch("touchEnd", x1, y1)


def test_drag_a_card_by_touch(live_server, new_context, log_in, stream, manager):
    card = new_card(stream, manager, person_name="Ada Keller")
    information = column_of(stream, COLLABORATION, "Information")
    page = log_in(new_context(has_touch=True).new_page(), manager)
    open_board(page, live_server, stream)

    touch_drag(page, card, information)

    expect(page.locator(f"#column-head-{information.pk}")).to_have_attribute("data-count", "1")
    page.reload()
    expect(card_in(page, information, card)).to_be_visible()
    assert Card.objects.get(pk=card.pk).column_id == information.pk


def test_a_drag_in_progress_is_not_interrupted_by_live_updates(
    live_server, page, log_in, stream, manager
):
    dragged = new_card(stream, manager, person_name="Ada Keller")
    moved_elsewhere = new_card(stream, manager, person_name="Bo Berg")
    information = column_of(stream, COLLABORATION, "Information")
    knowledge = column_of(stream, COLLABORATION, "Knowledge")
    log_in(page, manager)
    open_board(page, live_server, stream)
    page.evaluate("window.boardBeforeDrag = document.getElementById('board')")

    source = page.locator(f"#card-{dragged.pk}")
    box = source.bounding_box()
    target = page.locator(f"#column-{knowledge.pk} ol.cards").bounding_box()
    assert box is not None and target is not None
    page.mouse.move(box["x"] + 8, box["y"] + box["height"] - 4)
    page.mouse.down()
    page.mouse.move(box["x"] + 40, box["y"] + box["height"], steps=5)
    # Someone else moves a card while the drag is held, for longer than a poll.
    card_move(card_id=moved_elsewhere.pk, to_column_id=information.pk, actor=as_actor(manager))
    page.wait_for_timeout(LIVE_UPDATE_MS)
    assert page.evaluate("document.getElementById('board') === window.boardBeforeDrag")
    page.mouse.move(target["x"] + target["width"] / 2, target["y"] + 20, steps=10)
    page.mouse.up()

    expect(page.locator(f"#column-head-{knowledge.pk}")).to_have_attribute("data-count", "1")
    assert Card.objects.get(pk=dragged.pk).column_id == knowledge.pk
    # Once the drag is over, the live update shows the other move.
    expect(card_in(page, information, moved_elsewhere)).to_be_visible(timeout=LIVE_UPDATE_MS)
