"""The card page and the top bar on a phone (390 x 844): one column, nothing wider than
the screen, "Log out" on screen, however long a name, reason or comment.

Chromium (Debian's) through Playwright against ``live_server``; see tests/boards/conftest.py.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from boards.services import card_comment_add, card_set_blocked
from tests.support import as_actor, new_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
# Unbroken text, as people paste it: a company's registered name run together, a link.
LONG_COMPANY = "Hartmann" * 25
LONG_URL = "https://drive.example.com/contracts/" + "7f3a9c2e" * 30  # 276 characters


def scroll_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def assert_log_out_on_screen(page: Page, width: int) -> None:
    log_out = page.get_by_role("button", name="Log out")
    expect(log_out).to_be_visible()
    box = log_out.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    assert box["height"] < 30, "Log out stays on one line"


@pytest.fixture
def long_winded(stream, manager, member):
    """A card whose every text runs long, seen by a member with a long name."""
    member.first_name = "Maximiliane-Josephine Theodora"
    member.last_name = "Oberhausen-Wittgenstein-Sayn"
    member.save()
    card = new_card(stream, manager, company=LONG_COMPANY, notes=f"Contract: {LONG_URL}")
    card_set_blocked(card_id=card.pk, blocked=True, reason=LONG_URL, actor=as_actor(manager))
    card_comment_add(card_id=card.pk, text=f"The signed NDA: {LONG_URL}", actor=as_actor(member))
    return card


def test_the_card_page_is_one_column_as_wide_as_a_phone(
    live_server, page, log_in, stream, member, long_winded
):
    log_in(page, member)
    page.set_viewport_size(PHONE)

    page.goto(f"{live_server.url}/streams/{stream.slug}/cards/{long_winded.pk}/")

    expect(page.get_by_role("heading", level=1)).to_contain_text(LONG_COMPANY[:40])
    assert scroll_width(page) == PHONE["width"]
    # One column: the facts' inputs take the phone's width, the sections stack.
    for label in ("Person", "Company", "E-mail", "Estimated value", "Notes"):
        box = page.get_by_label(label, exact=False).first.bounding_box()
        assert box is not None and box["width"] >= 300, label
    sections = [
        page.locator(selector).bounding_box()
        for selector in (".prospect-section", ".actions-section", "#history")
    ]
    assert all(box is not None for box in sections)
    assert len({round(box["x"]) for box in sections}) == 1
    assert sections[0]["y"] < sections[1]["y"] < sections[2]["y"]
    # The long texts wrap inside the screen.
    for link in (".timeline .block-reason a", ".timeline .comment-text a"):
        expect(page.locator(link)).to_have_attribute("href", LONG_URL)
        box = page.locator(link).bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"], link
    assert_log_out_on_screen(page, PHONE["width"])


@pytest.mark.parametrize("width", [390, 800])
def test_the_top_bar_wraps_and_keeps_log_out_on_screen(
    live_server, page, log_in, stream, member, long_winded, width
):
    log_in(page, member)
    page.set_viewport_size({"width": width, "height": PHONE["height"]})

    for path in (f"cards/{long_winded.pk}/", "board/"):
        page.goto(f"{live_server.url}/streams/{stream.slug}/{path}")
        assert_log_out_on_screen(page, width)
        brand = page.locator(".brand").bounding_box()
        assert brand is not None and brand["height"] < 30, "the brand stays on one line"
