"""The archive in a real browser: from the stream's navigation to a closed deal, found by
search, opened, and reopened; on a phone its rows fit the screen.

Chromium (Debian's) through Playwright against ``live_server``; see tests/boards/conftest.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from boards.models import Card, Outcome
from boards.services import card_close, column_set_wip_limit
from tests.support import TEST_SYSTEM, new_card
from vsm.services import lost_reason_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def closed(stream, manager):
    budget = lost_reason_create(stream_id=stream.pk, name="No budget", actor=TEST_SYSTEM)
    won = new_card(stream, manager, person_name="Ada Keller", company="Nordwerk Pumps")
    lost = new_card(
        stream,
        manager,
        person_name="Bo Berg",
        company="Baltic Castings " + "Werkzeugmaschinenfabrik" * 6,
        email="bo@baltic.example",
    )
    card_close(card_id=won.pk, outcome=Outcome.WON, actor=TEST_SYSTEM)
    card_close(
        card_id=lost.pk,
        outcome=Outcome.LOST,
        actor=TEST_SYSTEM,
        lost_reason_id=budget.pk,
        lost_note="Spending freeze until Q3.",
    )
    return {"won": won, "lost": lost}


def test_find_a_lost_deal_open_it_and_reopen_it(live_server, page, log_in, stream, member, closed):
    log_in(page, member)
    page.goto(f"{live_server.url}/streams/{stream.slug}/board/")

    page.get_by_role("navigation", name="Value stream").get_by_role("link", name="Archive").click()
    expect(page.get_by_role("heading", name="Archive")).to_be_visible()
    expect(page.locator("table.archive tbody tr")).to_have_count(2)
    page.get_by_label("Search").fill("baltic")
    page.get_by_role("button", name="Filter").click()

    rows = page.locator("table.archive tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("No budget")
    expect(rows.first).to_contain_text("Spending freeze until Q3.")
    rows.first.get_by_role("link", name="Bo Berg").click()
    expect(page.get_by_role("heading", name="Closed")).to_be_visible()
    page.go_back()

    page.get_by_role("button", name="Reopen Bo Berg").click()

    expect(page.locator(".messages")).to_contain_text("Reopened: Bo Berg")
    expect(page.get_by_label("Search")).to_have_value("baltic")
    expect(page.locator("table.archive tbody")).to_contain_text("No closed deal matches")
    assert Card.objects.get(pk=closed["lost"].pk).is_open


def test_the_archive_fits_a_phone(live_server, page, log_in, stream, member, closed):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, member)

    page.goto(f"{live_server.url}/streams/{stream.slug}/archive/")

    row = page.locator("table.archive tbody tr").first
    expect(row).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = row.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    expect(page.get_by_role("button", name="Reopen Bo Berg")).to_be_visible()


def test_a_reopen_into_a_full_column_says_why_and_a_manager_reopens_anyway(
    live_server, page, log_in, stream, manager, closed
):
    lost = closed["lost"]
    column_set_wip_limit(column_id=lost.column_id, wip_limit=2, actor=TEST_SYSTEM)
    for n in range(2):
        new_card(stream, manager, person_name=f"Pulled in {n}")
    log_in(page, manager)
    page.goto(f"{live_server.url}/streams/{stream.slug}/archive/?outcome=lost")

    page.get_by_role("button", name="Reopen Bo Berg").click()

    expect(page.get_by_role("alert")).to_contain_text(
        "Data is at its WIP limit, 2/2: you may reopen it anyway as value stream manager"
    )
    page.get_by_label("Override as value stream manager, because").fill("Budget is back")
    page.get_by_role("button", name="Reopen anyway").click()

    expect(page).to_have_url(re.compile(r"/archive/\?outcome=lost$"))
    expect(page.locator(".messages")).to_contain_text("It went over the WIP limit")
    page.locator(".messages").get_by_role("link", name="Open its card").click()
    expect(page.get_by_role("heading", name="Close the deal")).to_be_visible()
    assert Card.objects.get(pk=lost.pk).is_open
