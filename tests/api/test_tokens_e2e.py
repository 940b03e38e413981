"""In a real browser: the manager makes a token from the board's nav, copies the secret
the page shows once, and a web form's backend posts a prospect with it; the reference
page loads under the CSP with nothing refused.

Chromium (Debian's) through Playwright against ``live_server``; the browser fixtures are
the board's (tests/boards/conftest.py).
"""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect

from boards.models import Card
from tests.boards.conftest import browser_type_launch_args, log_in  # noqa: F401 (fixtures)
from tests.support import COLLABORATION

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
    # Shown once: the answer reloaded (the form sent again) makes no second token.
    page.reload()
    expect(page.get_by_role("status")).to_contain_text("That form was sent before")
    assert secret not in page.content()
    expect(page.get_by_role("row", name="Website contact form")).to_have_count(1)

    page.get_by_role("button", name="Revoke Website contact form").click()
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
