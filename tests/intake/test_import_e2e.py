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


def _fits(page: Page) -> bool:
    """Whether the page is no wider than the window (nothing to scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _beside(page: Page, label_text: str) -> None:
    """The radio or checkbox of ``label_text`` sits just left of its words, on their line."""
    label = page.locator("label", has_text=label_text).first
    box = label.bounding_box()
    control = label.locator("input").bounding_box()
    assert box is not None and control is not None
    assert control["x"] - box["x"] < 4
    assert (
        box["y"] - 4 <= control["y"]
        and control["y"] + control["height"] <= box["y"] + box["height"] + 4
    )


@pytest.mark.parametrize("width", [1440, 390])
def test_long_names_wrap_and_choices_sit_by_their_words(
    live_server,
    eager_tasks,
    page: Page,
    log_in,  # noqa: F811
    stream,
    manager,
    width,
):
    long_name = "X" * 300
    data = csv_bytes(
        [
            row(long_name, "Nordwerk", "long@example.com", channel="Podcast"),
            row("Ada Keller", "", "ada@example.com", channel="Fair 2026"),
            row("", "Lindqvist AB", "", value="12"),
        ]
    )
    file_name = "prospects-" + "y" * 80 + ".csv"
    log_in(page, manager)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/streams/{stream.slug}/import/")
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": file_name, "mimeType": "text/csv", "buffer": data}]
    )
    page.get_by_role("button", name="Upload").click()

    expect(page.get_by_role("heading", name="Which column holds what?")).to_be_visible()
    assert _fits(page)
    _beside(page, "Merge: fill the card")
    empty = page.locator("#file-sample tbody tr").nth(1).locator("td.empty-cell").first
    expect(empty).to_have_attribute("data-label", "Company")
    if width < 760:  # a phone: each value named, an empty one said
        after = empty.evaluate("cell => getComputedStyle(cell, '::after').content")
        before = empty.evaluate("cell => getComputedStyle(cell, '::before').content")
        assert after == '"empty"' and before.startswith('"Company')
    page.get_by_role("button", name="Check every row").click()

    expect(page.locator('[data-total="rows"]')).to_have_text("3")
    expect(page.locator('#preview-rows tr[data-row="2"]')).to_contain_text("too_long")
    assert _fits(page)
    _beside(page, "Fair 2026")
    heading = page.get_by_role("heading", name="Preview of").bounding_box()
    assert heading is not None and heading["x"] + heading["width"] <= width


def test_a_second_import_waits_its_turn_and_can_be_cancelled(
    live_server,
    eager_tasks,
    page: Page,
    log_in,  # noqa: F811
    stream,
    manager,
):
    from datetime import timedelta

    from django.utils import timezone

    from tests.intake.support import upload

    first = csv_bytes([row(f"Person {n}", email=f"p{n}@example.com") for n in range(5)])
    holder = upload(stream, manager, first, name="first.csv")
    # A worker is importing it (so this page does not carry it on).
    ImportJob.objects.filter(pk=holder.pk).update(
        state=ImportState.RUNNING,
        started_at=timezone.now(),
        lease_token="a-worker",
        lease_until=timezone.now() + timedelta(hours=1),
    )
    log_in(page, manager)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/streams/{stream.slug}/import/")
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "second.csv", "mimeType": "text/csv", "buffer": first}]
    )
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("button", name="Check every row").click()
    page.get_by_role("button", name="Import 5 prospects").click()

    expect(page.locator("#progress")).to_have_attribute("data-state", "waiting")
    expect(page.locator("#progress-title")).to_have_text(
        "Waiting for the import first.csv to finish"
    )
    expect(page.locator("#in-process-note")).to_be_visible()
    page.get_by_role("link", name="Cancel import").click()

    expect(page.get_by_role("heading", name="Cancel the import of second.csv?")).to_be_visible()
    page.get_by_role("button", name="Cancel import").click()

    expect(page.locator("#progress")).to_have_attribute("data-state", "cancelled")
    expect(page.get_by_text("The import was cancelled.")).to_be_visible()
    expect(page.get_by_role("link", name="Cancel import")).to_have_count(0)
    second = ImportJob.objects.get(file_name="second.csv")
    assert second.state == ImportState.CANCELLED and second.started_at is None
    holder.refresh_from_db()
    assert holder.state == ImportState.RUNNING
