"""In a real browser: the manager makes a token from the board's nav, copies the secret
the page shows once (scope "intake", preselected), and a web form's backend posts a
prospect with it but may read no card; then the manager revokes it (after a question);
the reference page loads under the CSP with nothing refused; on a phone, neither page
scrolls sideways and the tokens keep their cells' labels.

Chromium (Debian's) through Playwright against ``live_server``; the browser fixtures are
the board's (tests/boards/conftest.py).
"""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect

from api.services import api_token_create, api_token_mark_used
from boards.models import Card
from tests.boards.conftest import browser_type_launch_args, log_in  # noqa: F401 (fixtures)
from tests.support import COLLABORATION
from vsm.actors import UserActor

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_manager_makes_a_token_that_a_web_form_then_uses(
    page: Page,
    live_server,
    log_in,  # noqa: F811
    stream,
):
    log_in(page, stream.manager)
    page.goto(f"{live_server.url}/streams/{stream.slug}/board/")

    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("Website contact form")
    expect(page.get_by_role("radio", name="Intake: create prospects only")).to_be_checked()
    page.get_by_role("button", name="Make a token").click()

    secret = page.get_by_test_id("issued-secret").input_value()
    expect(page.get_by_role("row", name="Website contact form")).to_contain_text("Active")
    response = requests.post(
        f"{live_server.url}/api/v1/streams/{stream.pk}/prospects/",
        json={"person_name": "Ada Keller", "email": "ada@example.com"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    card = Card.objects.get(pk=response.json()["id"])
    assert card.column.cycle.name == COLLABORATION
    # A web form's token (scope "intake", as preselected) reads no card.
    read = requests.get(
        f"{live_server.url}/api/v1/streams/{stream.pk}/cards/",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert (read.status_code, read.json()["code"]) == (403, "token_scope")
    # Shown once: the answer reloaded (the form sent again) makes no second token.
    page.reload()
    expect(page.get_by_role("status")).to_contain_text("That form was sent before")
    assert secret not in page.content()
    expect(page.get_by_role("row", name="Website contact form")).to_have_count(1)

    # Revoking asks first: Cancel leaves the token working.
    page.get_by_role("link", name="Revoke Website contact form").click()
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("row", name="Website contact form")).to_contain_text("Active")
    page.get_by_role("link", name="Revoke Website contact form").click()
    page.get_by_role("button", name="Revoke “Website contact form”").click()
    expect(page.get_by_role("row", name="Website contact form")).to_contain_text("Revoked")
    refused = requests.get(
        f"{live_server.url}/api/v1/token/",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert refused.status_code == 401


def test_the_reference_page_loads_under_the_csp(page: Page, live_server):
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if message.type == "error" else None
    )

    page.goto(f"{live_server.url}/api/v1/docs/")

    expect(page.get_by_role("heading", name="VSM API version 1")).to_be_visible()
    expect(page.locator("#card_move")).to_contain_text(
        "POST /api/v1/streams/{stream_id}/cards/{card_id}/move/"
    )
    assert refused == []


PHONE = {"width": 390, "height": 844}


def _page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_on_a_phone_the_reference_does_not_scroll_sideways(page: Page, live_server):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/api/v1/docs/")

    assert _page_width(page) <= PHONE["width"]
    path = page.locator("#card_handoff h3")
    expect(path).to_contain_text("/api/v1/streams/{stream_id}/cards/{card_id}/handoff/")
    assert path.bounding_box()["width"] <= PHONE["width"]
    # A wide table scrolls inside its own box, its columns kept.
    table_box = page.get_by_role("region", name="Answers of card_move")
    assert table_box.evaluate("box => box.scrollWidth > box.clientWidth")
    expect(table_box.get_by_role("columnheader", name="When")).to_be_attached()


def test_on_a_phone_the_tokens_keep_their_dates_labels(
    page: Page,
    live_server,
    log_in,  # noqa: F811
    stream,
):
    used = api_token_create(
        stream_id=stream.pk, name="Website form", actor=UserActor(stream.manager)
    )
    api_token_mark_used(token=used.token)
    log_in(page, stream.manager)
    page.set_viewport_size(PHONE)

    page.goto(f"{live_server.url}/streams/{stream.slug}/api-tokens/")

    assert _page_width(page) <= PHONE["width"]
    row = page.get_by_role("row", name="Website form")
    labels = [
        row.locator("td").nth(index).evaluate("cell => getComputedStyle(cell, '::before').content")
        for index in (2, 3, 4)
    ]
    assert [label.replace('"', "").strip() for label in labels] == ["Scope", "Made", "Last used"]
