"""The dashboard's lost reasons in a real browser: drawn as bars per column and per
channel, stacked by reason, with the counts in their data table.

Chromium (Debian's) through Playwright against ``live_server``; the browser fixtures are
the board's (tests/boards/conftest.py).
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from boards.models import Outcome
from boards.services import card_close
from metrics.charts import LOST_REASONS_CHANNELS_KEY, LOST_REASONS_KEY
from metrics.services import stream_metrics_advance
from tests.boards.conftest import browser_type_launch_args, log_in  # noqa: F401 (fixtures)
from tests.factories import ChannelFactory
from tests.support import COLLABORATION, TEST_SYSTEM, new_card
from vsm.services import lost_reason_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# What each chart's Chart.js instance shows: its axis, stacking, and bars per dataset.
CHART_JS = """(key) => {
  const chart = window.vsmCharts[key];
  return {
    indexAxis: chart.options.indexAxis,
    stacked: [chart.options.scales.x.stacked, chart.options.scales.y.stacked],
    labels: chart.data.labels,
    datasets: chart.data.datasets.map((d) => [d.label, d.data]),
  };
}"""


def test_lost_reasons_are_drawn_per_column_and_channel(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    manager,
):
    web = ChannelFactory(value_stream=stream, name="Web form")
    budget, rival = (
        lost_reason_create(stream_id=stream.pk, name=name, actor=TEST_SYSTEM).pk
        for name in ("No budget", "Chose a competitor")
    )
    when = timezone.now() - datetime.timedelta(days=3)
    for n, (column, reason) in enumerate(
        [("Data", budget), ("Data", rival), ("Information", budget), ("Information", budget)]
    ):
        card = new_card(stream, manager, person_name=f"Lost {n}", column_name=column)
        card_close(
            card_id=card.pk,
            outcome=Outcome.LOST,
            actor=TEST_SYSTEM,
            at=when + datetime.timedelta(minutes=n),
            lost_reason_id=reason,
        )
    new_card(stream, manager, person_name="Web lead", channel_id=web.pk)
    stream_metrics_advance(stream_id=stream.pk)
    log_in(page, manager)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_server.url}/streams/{stream.slug}/dashboard/")
    expect(page.locator("html")).to_have_attribute("data-charts-ready", "true")

    figure = page.locator(f"#chart-{LOST_REASONS_KEY}")
    figure.scroll_into_view_if_needed()
    expect(figure.get_by_role("heading")).to_have_text("Why deals were lost, per column")
    expect(figure.locator(".chart-verdict")).to_contain_text(
        "“No budget” is the most frequent reason: 3 of the 4 lost deals (75%)."
    )
    assert page.evaluate(CHART_JS, LOST_REASONS_KEY) == {
        "indexAxis": "y",
        "stacked": [True, True],
        "labels": [f"{COLLABORATION} / Data", f"{COLLABORATION} / Information"],
        "datasets": [["No budget", [1, 2]], ["Chose a competitor", [1, 0]]],
    }
    assert page.evaluate(CHART_JS, LOST_REASONS_CHANNELS_KEY)["labels"] == ["No channel"]
    figure.get_by_text("Data table").click()
    expect(figure.locator("table tbody tr").nth(1)).to_have_text(
        f"{COLLABORATION} / Information202"  # no budget, competitor, lost
    )
    assert errors == []
