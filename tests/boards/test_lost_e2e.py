"""Closing a deal in a real browser: lost asks why (and says so when nobody answered),
won and lost can be undone right after, from the card page.

Chromium (Debian's) through Playwright against ``live_server``; see tests/boards/conftest.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from boards.errors import LostReasonRequired
from boards.models import LOST_NOTE_MAX_LENGTH, Card, CardLoss, Outcome
from tests.support import TEST_SYSTEM, new_card
from vsm.services import lost_reason_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def open_card(page: Page, live_server, card: Card) -> None:
    page.goto(f"{live_server.url}/streams/{card.value_stream.slug}/cards/{card.pk}/")
    expect(page.get_by_role("heading", name="Close the deal")).to_be_visible()


def test_lost_asks_why_then_offers_to_undo(live_server, page, log_in, stream, member):
    for name in ("No budget", "Chose a competitor"):
        lost_reason_create(stream_id=stream.pk, name=name, actor=TEST_SYSTEM)
    card = new_card(stream, member, person_name="Ada Keller", column_name="Information")
    log_in(page, member)
    open_card(page, live_server, card)

    page.get_by_text("Mark lost…").click()
    page.get_by_role("button", name="Mark lost", exact=True).click()

    # Nobody said why: the form is shown again, open, with the error on the reasons.
    expect(page.locator("#lost-reason-error")).to_have_text(LostReasonRequired.default_message)
    assert Card.objects.get(pk=card.pk).is_open
    page.get_by_label("Chose a competitor").check()
    page.get_by_label("In your words").fill("Went with the incumbent's add-on.")
    page.get_by_role("button", name="Mark lost", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/cards/{card.pk}/#closing$"))
    expect(page.locator(".messages")).to_contain_text("marked lost: Chose a competitor.")
    closing = page.locator("#closing")
    expect(closing).to_contain_text("Why: Chose a competitor")
    expect(closing.locator(".outcome-lost")).to_have_text("Lost")
    loss = CardLoss.objects.get(move__card=card)
    assert (loss.reason.name, loss.note) == (
        "Chose a competitor",
        "Went with the incumbent's add-on.",
    )

    closing.get_by_role("button", name="Undo").click()

    expect(page.locator(".messages")).to_contain_text("Undone: Ada Keller")
    expect(page.get_by_role("button", name="Mark won")).to_be_visible()
    assert Card.objects.get(pk=card.pk).outcome == Outcome.OPEN


def test_won_is_one_click_and_undone_on_a_phone(live_server, page, log_in, stream, member):
    card = new_card(stream, member, person_name="Bo Berg")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, member)
    open_card(page, live_server, card)

    page.get_by_role("button", name="Mark won").click()

    undo = page.locator("#closing").get_by_role("button", name="Undo")
    # Back on the card page at its closing panel: the undo is on screen, not below it.
    expect(undo).to_be_in_viewport()
    assert Card.objects.get(pk=card.pk).outcome == Outcome.WON
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    undo.click()
    expect(page.get_by_role("button", name="Mark won")).to_be_visible()
    assert Card.objects.get(pk=card.pk).outcome == Outcome.OPEN


def test_a_long_lost_note_is_counted_and_kept_whole_when_refused(
    live_server, page, log_in, stream, member
):
    lost_reason_create(stream_id=stream.pk, name="No budget", actor=TEST_SYSTEM)
    card = new_card(stream, member, person_name="Ada Keller")
    log_in(page, member)
    open_card(page, live_server, card)
    page.get_by_text("Mark lost…").click()
    note = page.get_by_label("In your words")
    count = page.locator("#closing .char-count")
    expect(count).to_have_text(f"0 of {LOST_NOTE_MAX_LENGTH} characters")

    pasted = "n" * 3_000
    note.fill(pasted)
    expect(count).to_have_text(f"3,000 of {LOST_NOTE_MAX_LENGTH} characters: 2,500 too many")
    page.get_by_label("No budget").check()
    page.get_by_role("button", name="Mark lost", exact=True).click()

    expect(page.locator("#closing .field.invalid .error")).to_have_text(
        f"A note is at most {LOST_NOTE_MAX_LENGTH} characters; this one has 3,000."
    )
    expect(page.get_by_label("In your words")).to_have_value(pasted)
    assert Card.objects.get(pk=card.pk).is_open
