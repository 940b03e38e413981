"""The Export menus in a real browser: on the board, the cards the filter bar shows
(changed by htmx, without a reload) and the move log; on the dashboard, its tables.

Chromium (Debian's) through Playwright against ``live_server``; the browser fixtures are
the board's (tests/boards/conftest.py).
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from exports.files import METRICS_INDEX_NAME
from exports.selectors import MOVE_COLUMNS
from tests.boards.conftest import browser_type_launch_args, log_in  # noqa: F401 (fixtures)
from tests.exports.support import csv_records, csv_rows
from tests.factories import ChannelFactory
from tests.support import new_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def today() -> str:
    return timezone.now().astimezone(UTC).date().isoformat()


def download(page: Page, link_name: str):
    """Open the page's Export menu, click ``link_name``; the download it starts."""
    page.locator("details.export-menu > summary").click()
    with page.expect_download() as started:
        page.get_by_role("link", name=re.compile(f"^{re.escape(link_name)}")).click()
    return started.value


def test_the_board_exports_the_cards_its_filters_show_and_the_move_log(
    live_server,
    page: Page,
    log_in,  # noqa: F811
    stream,
    manager,
):
    web = ChannelFactory(value_stream=stream, name="Web form")
    ada = new_card(stream, manager, person_name="Ada Keller", channel_id=web.pk)
    bo = new_card(stream, manager, person_name="Bo Lind")
    log_in(page, manager)
    page.goto(f"{live_server.url}/streams/{stream.slug}/board/")

    # The filter bar refreshes the board through htmx: the page is not reloaded.
    page.get_by_label("Channel").select_option(label="Web form")
    expect(page.locator(f"#card-{bo.pk}")).to_have_count(0)
    expect(page.locator(f"#card-{ada.pk}")).to_have_count(1)

    cards = download(page, "Open cards")

    assert cards.suggested_filename == f"{stream.slug}-cards-{today()}.csv"
    rows = csv_records(Path(cards.path()).read_text("utf-8"))
    assert [(row["card id"], row["person"]) for row in rows] == [(str(ada.pk), "Ada Keller")]
    # The menu closes behind the download; the page stays the board.
    expect(page.locator("details.export-menu")).not_to_have_attribute("open", "")
    assert page.url.startswith(f"{live_server.url}/streams/{stream.slug}/board/")

    moves = download(page, "Move log")

    assert moves.suggested_filename == f"{stream.slug}-move-log-{today()}.csv"
    log = csv_rows(Path(moves.path()).read_text("utf-8"))
    assert log[0] == MOVE_COLUMNS
    # Both cards' entries: the move log takes no board filter.
    assert {row[2] for row in log[1:]} == {str(ada.pk), str(bo.pk)}


def test_the_dashboard_exports_its_tables(
    live_server,
    page: Page,
    log_in,  # noqa: F811
    stream,
    manager,
):
    new_card(stream, manager, person_name="Ada Keller")
    log_in(page, manager)
    page.goto(f"{live_server.url}/streams/{stream.slug}/dashboard/")

    tables = download(page, "Dashboard tables")

    assert tables.suggested_filename == f"{stream.slug}-metrics-{today()}.zip"
    archive = zipfile.ZipFile(io.BytesIO(Path(tables.path()).read_bytes()))
    assert METRICS_INDEX_NAME in archive.namelist()
    assert f"{stream.slug}-throughput.csv" in archive.namelist()
