"""A card's history in a real browser: blocking, editing and commenting show in its
timeline, newest first, with who and when; "Show older" brings the rest in place.

Chromium (Debian's) through Playwright against ``live_server``; see tests/boards/conftest.py.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from boards.models import COMMENT_MAX_LENGTH, CardActivity
from boards.selectors import TIMELINE_PAGE_SIZE
from boards.services import card_comment_add
from tests.support import TEST_SYSTEM, new_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def open_card(page: Page, live_server, card) -> None:
    page.goto(f"{live_server.url}/streams/{card.value_stream.slug}/cards/{card.pk}/")
    expect(page.get_by_role("heading", name="History")).to_be_visible()


def test_blocking_editing_and_commenting_make_the_cards_timeline(
    live_server, page, log_in, stream, manager, member
):
    member.first_name, member.last_name = "Ada", "Member"
    member.save()
    card = new_card(stream, manager, company="Nordwerk Pumps")
    log_in(page, member)
    open_card(page, live_server, card)

    page.get_by_label("Block because").fill("Legal review of the data terms")
    page.get_by_role("button", name="Block", exact=True).click()
    expect(page.get_by_role("button", name="Unblock")).to_be_visible()
    page.get_by_label("Company").fill("Nordwerk Pumps GmbH")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()

    # A refused comment is said on its field, and what was typed stays.
    page.evaluate("window.notReloaded = true")
    comment = page.get_by_label("Add a comment")
    comment.fill("   ")
    page.get_by_role("button", name="Comment", exact=True).click()
    expect(page.locator("#history .field.invalid .error")).to_have_text(
        "Write something to comment."
    )
    expect(comment).to_have_value("   ")
    comment.fill("Wants a pilot on one machine before March")
    page.get_by_role("button", name="Comment", exact=True).click()

    entries = page.locator(".timeline > li.entry")
    expect(entries.locator(".entry-what")).to_have_text(
        ["Comment", "Edited", "Blocked", "Entered the stream"]
    )
    expect(entries.first).to_contain_text("Wants a pilot on one machine before March")
    expect(entries.nth(0).locator(".entry-who")).to_have_text("by Ada Member")
    change = entries.nth(1).locator(".changes li")
    expect(change.locator(".change-field")).to_have_text("Company:")
    expect(change.locator(".change-old")).to_have_text("Nordwerk Pumps")
    expect(change.locator(".change-new")).to_have_text("Nordwerk Pumps GmbH")
    expect(entries.nth(2)).to_contain_text("Legal review of the data terms")
    expect(entries.nth(3).locator(".entry-who")).to_have_text(f"by {manager.username}")
    expect(page.get_by_label("Add a comment")).to_have_value("")
    assert page.evaluate("window.notReloaded") is True  # the comment came by htmx
    assert CardActivity.objects.filter(card=card).count() == 3


def test_show_older_brings_the_rest_of_the_history_in_place(
    live_server, page, log_in, stream, manager, member
):
    card = new_card(stream, manager)
    for n in range(TIMELINE_PAGE_SIZE + 4):
        card_comment_add(card_id=card.pk, text=f"Call {n}", actor=TEST_SYSTEM)
    log_in(page, member)
    open_card(page, live_server, card)
    entries = page.locator(".timeline > li.entry")
    expect(entries).to_have_count(TIMELINE_PAGE_SIZE)
    expect(entries.first).to_contain_text(f"Call {TIMELINE_PAGE_SIZE + 3}")
    page.evaluate("window.notReloaded = true")

    page.get_by_role("link", name="Show older").click()

    expect(entries).to_have_count(TIMELINE_PAGE_SIZE + 5)
    expect(entries.last).to_contain_text("Entered the stream")
    expect(entries.nth(TIMELINE_PAGE_SIZE)).to_contain_text("Call 3")
    expect(page.get_by_role("link", name="Show older")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True


def test_a_long_comment_is_counted_as_typed_and_refused_whole_not_cut(
    live_server, page, log_in, stream, manager, member
):
    card = new_card(stream, manager)
    log_in(page, member)
    open_card(page, live_server, card)
    comment = page.get_by_label("Add a comment")
    count = page.locator("#history .char-count")
    expect(count).to_have_text(f"0 of {COMMENT_MAX_LENGTH:,} characters")

    comment.fill("Budget owner is the CFO.")
    expect(count).to_have_text(f"24 of {COMMENT_MAX_LENGTH:,} characters")
    pasted = "x" * 20_000
    comment.fill(pasted)  # as a paste: all of it, no maxlength cuts it
    expect(count).to_have_text(f"20,000 of {COMMENT_MAX_LENGTH:,} characters: 15,000 too many")
    expect(count).to_have_class("char-count is-over")
    page.get_by_role("button", name="Comment", exact=True).click()

    expect(page.locator("#history .field.invalid .error")).to_have_text(
        f"Keep a comment to {COMMENT_MAX_LENGTH:,} characters; this one has 20,000."
    )
    # The history came back by htmx: the text is kept whole, and still counted.
    expect(page.get_by_label("Add a comment")).to_have_value(pasted)
    expect(page.locator("#history .char-count")).to_have_text(
        f"20,000 of {COMMENT_MAX_LENGTH:,} characters: 15,000 too many"
    )
    assert not CardActivity.objects.filter(card=card).exists()
