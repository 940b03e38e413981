"""The metrics tables export: the dashboard's tables for the dashboard's filters, each
file the same as that table's own download on the dashboard, with an index."""

from __future__ import annotations

import datetime
import io
import zipfile

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from boards.models import Outcome
from exports.files import BYTE_ORDER_MARK, METRICS_INDEX_COLUMNS, METRICS_INDEX_NAME
from metrics.services import stream_metrics_advance
from tests.exports.support import csv_records, csv_rows
from tests.metrics.scripted import Board
from tests.support import SALES, logged_in
from vsm.models import AuditEntry, Channel, ChannelKind


@pytest.fixture
def history(stream, manager) -> Board:
    """Eight prospects over six weeks: five won, two lost, one open; folded into the
    stream's metrics."""
    web = Channel.objects.create(value_stream=stream, name="Web form", kind=ChannelKind.WEB_FORM)
    fair = Channel.objects.create(value_stream=stream, name="=Fair", kind=ChannelKind.EVENT)
    board = Board(stream, manager)
    start = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0)
    start -= datetime.timedelta(days=42)

    def at(days: float) -> datetime.datetime:
        return start + datetime.timedelta(days=days)

    with transaction.atomic():
        for n in range(8):
            key = f"{n}"
            board.enter(key, web if n % 2 else fair, 1000 * (n + 1), at(n * 4))
            board.move(key, "Information", at(n * 4 + 1))
            if n < 5:
                board.close(key, Outcome.WON, at(n * 4 + 2 + n))
            elif n < 7:
                board.close(key, Outcome.LOST, at(n * 4 + 2))
    stream_metrics_advance(stream_id=stream.pk)
    return board


def tables(client, stream, query: str = "") -> zipfile.ZipFile:
    url = reverse("exports:metrics", args=[stream.slug]) + (f"?{query}" if query else "")
    response = client.get(url)
    assert response.status_code == 200, response.content[-500:]
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


def the_cycle(stream) -> str:
    return str(stream.cycles.get(name=SALES).pk)


@pytest.mark.parametrize("filters", ["", "cycle", "channel"])
def test_each_table_is_the_dashboards_own_download_of_it(stream, manager, history, filters):
    query = {
        "": "",
        "cycle": f"cycle={the_cycle(stream)}",
        "channel": f"channel={Channel.objects.get(value_stream=stream, name='Web form').pk}",
    }[filters]
    client = logged_in(manager)

    archive = tables(client, stream, query)

    names = [name for name in archive.namelist() if name != METRICS_INDEX_NAME]
    assert names, "the dashboard has tables"
    for name in names:
        key = name.removeprefix(f"{stream.slug}-").removesuffix(".csv")
        own = client.get(
            reverse("metrics:dashboard-csv", args=[stream.slug, key])
            + (f"?{query}" if query else "")
        )
        assert own.status_code == 200, key
        assert archive.read(name).decode() == BYTE_ORDER_MARK + own.content.decode(), key


def test_the_tables_are_the_dashboards_in_page_order(stream, manager, history):
    client = logged_in(manager)
    page = client.get(reverse("metrics:dashboard", args=[stream.slug]))
    keys = [chart.key for chart in page.context["dashboard"].charts]

    archive = tables(client, stream)

    assert archive.namelist() == [f"{stream.slug}-{key}.csv" for key in keys] + [METRICS_INDEX_NAME]


def test_the_index_names_each_table_its_rows_filters_and_range(stream, manager, history):
    client = logged_in(manager)
    today = timezone.localdate()
    start = (today - datetime.timedelta(days=today.weekday() + 35)).isoformat()
    archive = tables(client, stream, f"cycle={the_cycle(stream)}&start={start}")

    text = archive.read(METRICS_INDEX_NAME).decode()
    assert csv_rows(text)[0] == METRICS_INDEX_COLUMNS
    index = csv_records(text)
    assert [row["file"] for row in index] == archive.namelist()[:-1]
    for row in index:
        rows = csv_rows(archive.read(row["file"]).decode())
        assert int(row["rows"]) == len(rows) - 1, row["file"]
        assert row["cycle"] == SALES
        assert row["channel"] == "All channels"
        assert row["range start"] == start
        assert row["time zone"] == "UTC"
    assert any(row["table"] == f"Won deals per week in {SALES}" for row in index)


def test_cells_a_spreadsheet_would_run_are_neutralised(stream, manager, history):
    archive = tables(logged_in(manager), stream)

    pareto = csv_records(archive.read(f"{stream.slug}-pareto.csv").decode())
    channels = {next(iter(row.values())) for row in pareto}
    assert "'=Fair" in channels
    assert "=Fair" not in channels


def test_filters_that_cannot_be_read_are_refused_with_the_reason(stream, manager, history):
    response = logged_in(manager).get(
        reverse("exports:metrics", args=[stream.slug]) + "?start=31-12-2026"
    )

    assert response.status_code == 400
    assert b"Start: Enter a valid date." in response.content
    assert not AuditEntry.objects.filter(action="stream.metrics_exported").exists()


def test_an_export_is_audited_with_its_filters(stream, manager, history):
    tables(logged_in(manager), stream, f"cycle={the_cycle(stream)}&channel=0")

    entry = AuditEntry.objects.get(action="stream.metrics_exported")
    assert entry.stream_id == stream.pk
    assert entry.data["cycle_id"] == int(the_cycle(stream))
    assert entry.data["channel_key"] == 0


def test_the_file_is_a_zip_named_after_the_stream_and_date(stream, manager, history):
    response = logged_in(manager).get(reverse("exports:metrics", args=[stream.slug]))

    today = timezone.now().astimezone(datetime.UTC).date().isoformat()
    assert response["Content-Disposition"] == (
        f'attachment; filename="{stream.slug}-metrics-{today}.zip"'
    )


def test_a_cycle_of_another_stream_is_refused(stream, other_stream, manager, history):
    elsewhere = other_stream.cycles.first()

    response = logged_in(manager).get(
        reverse("exports:metrics", args=[stream.slug]) + f"?cycle={elsewhere.pk}"
    )

    assert response.status_code == 400
    assert b"Cycle: Select a valid choice." in response.content
