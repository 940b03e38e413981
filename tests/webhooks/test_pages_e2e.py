"""The webhooks pages in a real browser, at a desktop and a phone's width: nothing
makes the page itself scroll sideways (wide tables scroll in their own box), each
event's checkbox sits on its label's line, before it, and deleting asks first.

Chromium (Debian's) through Playwright against ``live_server``; the browser fixtures are
the board's (tests/boards/conftest.py). With VSM_SCREENSHOTS=<dir>, each page is saved
there as a PNG at each width.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.boards.conftest import browser_type_launch_args, log_in  # noqa: F401 (fixtures)
from tests.support import new_card
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_deliveries_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTHS = (1440, 390)


def shoot(page: Page, name: str) -> None:
    folder = os.environ.get("VSM_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def sideways_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scroll)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_the_webhooks_pages_fit_the_window_and_the_checkboxes_precede_their_labels(
    page: Page,
    live_server,
    log_in,  # noqa: F811
    stream,
    manager,
    webhook,
    width,
):
    endpoint = webhook(stream)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        url="https://hooks.example.com/vsm/incoming/moves?source=marketing-stream",
        description="The CRM's intake of won and lost deals",
    )
    new_card(stream, manager)
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    WebhookDelivery.objects.filter(endpoint=endpoint).update(
        status=DeliveryStatus.DEAD,
        attempts=6,
        next_attempt_at=None,
        last_status_code=503,
        last_error="The receiver answered HTTP 503.",
        response_ms=1234,
    )
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, manager)

    page.goto(f"{live_server.url}/streams/{stream.slug}/webhooks/")
    expect(page.get_by_role("heading", name="Add a webhook")).to_be_visible()
    shoot(page, f"webhooks-{width}")
    assert sideways_overflow(page) == 0
    if width < 700:  # the table is wider than a phone: it scrolls in its own box
        box_widths = page.locator(".webhooks-table").evaluate(
            "t => [t.parentElement.scrollWidth, t.parentElement.clientWidth]"
        )
        assert box_widths[0] > box_widths[1]
    for kind in ("enter", "won"):
        box = page.get_by_role("checkbox", name=kind).bounding_box()
        label = page.locator("label.check", has_text=f"{kind}:").bounding_box()
        assert box is not None and label is not None
        assert box["width"] < 40  # a checkbox, not a row-wide box
        assert abs(box["x"] - label["x"]) < 4  # first on its label's line
        assert box["y"] < label["y"] + label["height"] / 2 < box["y"] + box["height"] + 8

    page.goto(f"{live_server.url}/streams/{stream.slug}/webhooks/{endpoint.pk}/")
    expect(page.get_by_role("button", name="Send again now")).to_be_visible()
    shoot(page, f"endpoint-{width}")
    assert sideways_overflow(page) == 0

    # Deleting asks first: the button alone deletes nothing (the browser asks for the
    # tick; the server refuses without it too: test_pages).
    confirm = page.get_by_label("Yes, delete this webhook")
    page.get_by_role("button", name="Delete the webhook and its log").click()
    assert confirm.evaluate("box => !box.validity.valid")
    expect(page).to_have_url(f"{live_server.url}/streams/{stream.slug}/webhooks/{endpoint.pk}/")
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    confirm.check()
    page.get_by_role("button", name="Delete the webhook and its log").click()
    expect(page.locator(".messages")).to_contain_text("Deleted the webhook")
    assert not WebhookEndpoint.objects.exists()
