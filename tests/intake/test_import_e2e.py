"""An import in a real browser: upload, mapping, preview, progress, report, and the
prospects beyond the WIP limit waiting in intake, shown on the board.

Chromium (Debian's) through Playwright against ``live_server``; the fixtures are the
board's (tests/boards/conftest.py). Tasks run in-process, as in the embedded default.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from boards.models import Card, Column, Outcome
from intake.models import ImportJob, ImportState, IntakeItem
from tests.boards.conftest import browser_type_launch_args, log_in  # noqa: F401 (fixtures)
from tests.intake.support import csv_bytes, row
from tests.support import COLLABORATION, column_of, new_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_upload_map_preview_import_and_report(
    live_server,
    eager_tasks,  # no worker here: the pages carry the import on (intake.tasks)
    page: Page,
    log_in,  # noqa: F811
    stream,
    manager,
):
    data_column = column_of(stream, COLLABORATION, "Data")
    Column.objects.filter(pk=data_column.pk).update(wip_limit=3)
    new_card(stream, manager, person_name="Already here")
    data = csv_bytes(
        [
            row("Jürgen Groß", "Straße AG", "jg@example.com", value="1.200,50"),
            row("Hélène Lefèvre", "Crème SA", "hl@example.com", channel="Salon"),
            row("No Mail", email="not-an-address"),
            row("Third In", email="third@example.com"),
            row("Fourth Waits", email="fourth@example.com"),
        ],
        delimiter=";",
        encoding="cp1252",
    )
    log_in(page, manager)
    page.goto(f"{live_server.url}/streams/{stream.slug}/board/")
    page.get_by_role("link", name="Import prospects").click()

    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "salon.csv", "mimeType": "text/csv", "buffer": data}]
    )
    page.get_by_role("button", name="Upload").click()

    # Mapping: the file read as Windows-1252 with semicolons, its columns guessed.
    expect(page.get_by_role("heading", name="Which column holds what?")).to_be_visible()
    expect(page.locator("#file-sample")).to_contain_text("Jürgen Groß")
    expect(page.locator("#mapping-form select[name=email]")).to_have_value("2")
    page.get_by_role("button", name="Check every row").click()

    # Preview: totals over the file, the rows' verdicts, the new channel offered.
    expect(page.locator('[data-total="rows"]')).to_have_text("5")
    expect(page.locator('#preview-rows tr[data-row="4"]')).to_contain_text("bad_email")
    expect(page.get_by_label("Salon")).to_be_checked()
    page.get_by_role("button", name="Import 4 prospects").click()

    # Progress, then the report: two cards fit under the limit, two wait in intake.
    progress = page.locator("#progress")
    expect(progress).to_have_attribute("data-state", "done")
    expect(page.locator("#import-progress")).to_have_attribute("value", "100")
    expect(page.locator('[data-count="created"]')).to_have_text("2")
    expect(page.locator('[data-count="queued"]')).to_have_text("2")
    expect(page.locator('[data-count="rejected"]')).to_have_text("1")
    expect(page.locator('#import-codes tr[data-code="bad_email"]')).to_contain_text("1")
    expect(page.locator("#import-errors")).to_contain_text("4")

    # A reload shows the same report.
    page.reload()
    expect(page.locator('[data-count="queued"]')).to_have_text("2")

    job = ImportJob.objects.get()
    assert job.state == ImportState.DONE
    assert Card.objects.filter(column=data_column, outcome=Outcome.OPEN).count() == 3
    assert Card.objects.get(person_name="Jürgen Groß").estimated_value == 1200.5
    assert Card.objects.get(person_name="Hélène Lefèvre").channel.name == "Salon"

    # The board says who waits; its link lists them, oldest first.
    page.goto(f"{live_server.url}/streams/{stream.slug}/board/")
    badge = page.get_by_role("link", name="2 waiting in intake")
    expect(badge).to_be_visible()
    badge.click()
    expect(page.locator("#intake-queue tbody tr").first).to_contain_text("Third In")
    expect(page.locator("#intake-queue tbody tr").nth(1)).to_contain_text("Fourth Waits")
    assert IntakeItem.objects.count() == 2
