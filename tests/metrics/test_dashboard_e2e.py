"""The dashboard's charts in a real browser: every chart drawn from its JSON, a scatter
dot that opens its card, and the data table that holds the chart's numbers.

Chromium (Debian's) through Playwright against ``live_server``; the browser fixtures are
the board's (tests/boards/conftest.py).
"""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import Page, expect

from boards.models import Outcome
from metrics.charts import CONVERSION_WEEKLY_KEY
from metrics.selectors.query import week_start
from metrics.services import stream_metrics_advance
from tests.boards.conftest import browser_type_launch_args, log_in  # noqa: F401 (fixtures)
from tests.metrics.scripted import Board
from tests.metrics.test_conversion_weekly import conversion_experiment
from tests.support import COLLABORATION
from vsm.models import Channel, ChannelKind, ValueStream

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WON_CARDS = 10  # enough finished cards for the percentile lines
CHART_KEYS = {"cumulative-flow", "cycle-time", "throughput", "pareto", "aging", "demand"}
# Each chart's JSON against its Chart.js instance: the same canvas, and as many points per
# dataset as the JSON has values (a scatter is one dataset of dots; the aging chart's
# column indexes and percentile ticks are not datasets). A chart with no x values has no
# canvas: its note says why.
COMPARE_CHARTS_JS = """() => Array.from(
  document.querySelectorAll("figure[data-chart-key]")
).filter((figure) => figure.querySelector("canvas")).map(
  (figure) => {
    const key = figure.dataset.chartKey;
    const data = JSON.parse(document.getElementById("chart-data-" + key).textContent);
    const chart = window.vsmCharts[key];
    const datasets = chart ? chart.data.datasets : [];
    const dots = key === "cycle-time" || key === "aging";
    const series = dots ? data.series.slice(0, 1) : data.series;
    return {
      key: key,
      drawn: Boolean(chart) && chart.canvas === figure.querySelector("canvas"),
      width: chart ? chart.chartArea.width : 0,
      expected: series.map((s) => s.values.length),
      actual: datasets.map((d) => d.data.length),
    };
  })"""


@pytest.fixture
def history(stream: ValueStream, manager) -> Board:
    """Ten deals won over the last ten weeks (one every five days, each a day slower than
    the one before), two lost, three open; folded into the stream's metrics."""
    referral = Channel.objects.create(
        value_stream=stream, name="Referral", kind=ChannelKind.REFERRAL
    )
    web = Channel.objects.create(value_stream=stream, name="Web form", kind=ChannelKind.WEB_FORM)
    board = Board(stream, manager)
    start = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0)
    start -= datetime.timedelta(days=75)
    events = []

    def at(days: float):
        return start + datetime.timedelta(days=days)

    for n in range(WON_CARDS + 5):
        key, entered = f"{n:02d}", n * 5
        channel = referral if n % 3 else web
        events += [
            (at(entered), board.enter, (key, channel, 1000 * (n + 1), at(entered))),
            (at(entered + 1), board.move, (key, "Information", at(entered + 1))),
        ]
        if n < WON_CARDS + 2:
            events.append((at(entered + 2.5), board.move, (key, "Knowledge", at(entered + 2.5))))
        if n < WON_CARDS:
            won = entered + 6 + n + n / 10
            events.append((at(won), board.close, (key, Outcome.WON, at(won))))
        elif n < WON_CARDS + 2:
            events.append((at(entered + 4), board.close, (key, Outcome.LOST, at(entered + 4))))
    # One transaction: the board announces its changes once, on commit, instead of
    # refreshing the metrics after every scripted event.
    with transaction.atomic():
        for _, action, arguments in sorted(events, key=lambda event: event[0]):
            action(*arguments)
    stream_metrics_advance(stream_id=stream.pk)
    return board


def open_dashboard(page: Page, live_server, stream: ValueStream) -> list[str]:
    """Open the dashboard, wait for every chart; returns the page's errors so far."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{live_server.url}/streams/{stream.slug}/dashboard/")
    expect(page.locator("html")).to_have_attribute("data-charts-ready", "true")
    return errors


def chart_json(page: Page, key: str) -> dict:
    return page.evaluate(
        "(key) => JSON.parse(document.getElementById('chart-data-' + key).textContent)", key
    )


def test_every_chart_is_drawn_from_its_data(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    manager,
    history,
):
    log_in(page, manager)
    errors = open_dashboard(page, live_server, stream)

    charts = page.evaluate(COMPARE_CHARTS_JS)

    keys = {chart["key"] for chart in charts}
    assert keys >= CHART_KEYS
    assert any(key.startswith("funnel-") for key in keys)
    for chart in charts:
        assert chart["drawn"], chart["key"]
        assert chart["width"] > 0, chart["key"]
        assert chart["actual"] == chart["expected"], chart["key"]
    assert page.evaluate("Object.keys(window.vsmCharts).length") == len(charts)
    assert len(chart_json(page, "cycle-time")["dots"]["ids"]) == WON_CARDS
    # No experiment targets a conversion step: the weekly chart is its note, no canvas.
    empty = page.locator(f"#chart-{CONVERSION_WEEKLY_KEY}")
    expect(empty.locator(".chart-note")).to_contain_text("Plan an experiment on a conversion")
    expect(empty.locator("canvas")).to_have_count(0)
    # No script error, no Content Security Policy violation.
    assert errors == []


def test_clicking_a_dot_on_the_cycle_time_scatter_opens_its_card(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    manager,
    history,
):
    log_in(page, manager)
    open_dashboard(page, live_server, stream)
    data = chart_json(page, "cycle-time")
    dots = data["dots"]
    index = len(dots["ids"]) // 2
    name, url = dots["names"][index], f"{dots['link_prefix']}{dots['ids'][index]}/"
    canvas = page.locator("#chart-cycle-time canvas")

    def hover_the_dot() -> tuple[float, float]:
        # Measured afresh each time: on a loaded machine a chart above may still grow as
        # it is laid out, pushing this one out of the viewport (where the mouse reaches
        # nothing), and this one may still be animating its dots in (Chart.js finds the
        # dot under the mouse where it is drawn now).
        canvas.scroll_into_view_if_needed()
        dot = page.evaluate(
            "(i) => { const p = window.vsmCharts['cycle-time'].getDatasetMeta(0).data[i];"
            " return p.getProps(['x', 'y'], true); }",
            index,
        )
        box = canvas.bounding_box()
        assert box is not None
        where = (box["x"] + dot["x"], box["y"] + dot["y"])
        # From elsewhere: a move to where the mouse already is dispatches no event.
        page.mouse.move(box["x"] + 1, box["y"] + 1)
        page.mouse.move(*where)
        return where

    where = hover_the_dot()
    for _ in range(4):
        if canvas.evaluate("(c) => getComputedStyle(c).cursor") == "pointer":
            break
        page.wait_for_timeout(500)
        where = hover_the_dot()
    expect(canvas).to_have_css("cursor", "pointer")
    page.mouse.click(*where)

    page.wait_for_url(f"{live_server.url}{url}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(name.split(" (")[0])


@pytest.mark.parametrize(("key", "column"), [("throughput", "won"), ("cycle-time", "days")])
def test_the_data_table_holds_the_chart_s_numbers(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    manager,
    history,
    key,
    column,
):
    log_in(page, manager)
    open_dashboard(page, live_server, stream)
    table = page.locator(f"#chart-{key} .chart-table table")
    expect(table).to_be_hidden()

    page.locator(f"#chart-{key} .chart-table summary").click()

    expect(table).to_be_visible()
    headers = table.locator("thead th").all_inner_texts()
    cells = table.locator(f"tbody tr td:nth-child({headers.index(column) + 1})").all_inner_texts()
    drawn = page.evaluate(
        "(key) => window.vsmCharts[key].data.datasets[0].data"
        ".map((point) => typeof point === 'object' ? point.y : point)",
        key,
    )
    assert [float(cell) for cell in cells] == drawn
    assert len(drawn) > 0


def drawn_values(page: Page, key: str) -> list[float]:
    return page.evaluate(
        "(key) => window.vsmCharts[key].data.datasets[0].data"
        ".map((point) => typeof point === 'object' ? point.y : point)",
        key,
    )


def test_a_channel_filter_changes_the_data_and_stays_in_the_url(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    manager,
    history,
):
    web = Channel.objects.get(value_stream=stream, name="Web form")
    log_in(page, manager)
    open_dashboard(page, live_server, stream)
    assert len(drawn_values(page, "cycle-time")) == WON_CARDS

    filters = page.get_by_role("form", name="Dashboard filters")
    filters.get_by_label("Channel").select_option(label="Web form")
    filters.get_by_role("button", name="Apply").click()

    page.wait_for_url(f"**/dashboard/?*channel={web.pk}*")
    expect(page.locator("html")).to_have_attribute("data-charts-ready", "true")
    # Web form brought every third card (0, 3, 6, 9 of the ten won).
    assert len(drawn_values(page, "cycle-time")) == 4
    expect(filters.get_by_label("Channel")).to_have_value(str(web.pk))
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-charts-ready", "true")
    assert len(drawn_values(page, "cycle-time")) == 4


@pytest.mark.parametrize(("key", "column"), [("throughput", "won"), ("cycle-time", "days")])
def test_the_csv_download_holds_the_chart_s_numbers(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    manager,
    history,
    key,
    column,
):
    log_in(page, manager)
    open_dashboard(page, live_server, stream)
    link = page.locator(f"#chart-{key} a.csv")

    with page.expect_download() as download:
        link.click()

    table = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert download.value.suggested_filename == f"{stream.slug}-{key}.csv"
    values = [float(row[table[0].index(column)]) for row in table[1:]]
    assert values == drawn_values(page, key)
    assert values


def test_the_weekly_conversion_of_a_targeted_step_is_drawn_with_its_window_and_target(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    manager,
    history,
):
    monday = week_start(timezone.localdate())
    conversion_experiment(
        history.column(COLLABORATION, "Information"),
        window_start=monday - datetime.timedelta(weeks=2),
    )
    log_in(page, manager)
    errors = open_dashboard(page, live_server, stream)

    data = chart_json(page, CONVERSION_WEEKLY_KEY)
    drawn = page.evaluate(
        """(key) => {
          const chart = window.vsmCharts[key];
          const annotations = chart.options.plugins.annotation.annotations;
          return {
            types: chart.data.datasets.map((d) => d.type),
            values: chart.data.datasets.map((d) => d.data),
            band: annotations.band0 && [annotations.band0.xMin, annotations.band0.xMax],
            target: annotations.line0 && annotations.line0.value,
            max: chart.options.scales.y.max,
          };
        }""",
        CONVERSION_WEEKLY_KEY,
    )

    # Six baseline weeks and the window's two full weeks so far.
    assert len(data["labels"]) == 8
    assert drawn["types"] == ["line"]
    assert drawn["values"] == [data["series"][0]["values"]]
    assert any(value is not None for value in drawn["values"][0])
    # The band covers the window's weeks on the chart: the last two labels, whole.
    assert drawn["band"] == [5.5, 7.5]
    assert drawn["target"] == 40
    assert drawn["max"] == 100
    assert errors == []
