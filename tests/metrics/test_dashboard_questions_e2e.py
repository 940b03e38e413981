"""The issue's "done when": on the demo data, a manager who has never seen the product
opens the dashboard and answers four questions without help. The browser walks them:
where the constraint is and why, which channel brings most won value, how many deals
will be won by the end of next month and how sure that is, and whether last week's
throughput was a signal or noise.

Chromium (Debian's) through Playwright against ``live_server``; the browser fixtures are
the board's (tests/boards/conftest.py). The demo is seeded once for the test (about 15 s).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateformat import format as format_date
from playwright.sync_api import Page, expect

from boards.demo import DEMO_PASSWORD, seed_demo
from metrics.fold.timeline import metrics_zone
from metrics.selectors import MetricsQuery
from metrics.selectors.dashboard import dashboard_get
from metrics.selectors.forecast_panel import end_of_next_month
from metrics.services import stream_metrics_advance
from tests.boards.conftest import browser_type_launch_args  # noqa: F401 (fixture)
from vsm.models import ValueStream

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo() -> ValueStream:
    seed_demo()
    # The demo's password hash is made once per process, maybe under another test's
    # hashers: set it under this test's.
    manager = get_user_model().objects.get(username="mfg-manager")
    manager.set_password(DEMO_PASSWORD)
    manager.save(update_fields=["password"])
    for stream in ValueStream.objects.all():
        # CI points Celery at a broker with no worker: fold here, as a worker would.
        stream_metrics_advance(stream_id=stream.pk)
    return ValueStream.objects.get(slug="manufacturing")


def test_a_new_manager_answers_the_four_questions(live_server, page: Page, demo):
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("mfg-manager")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # From the stream list, the way a newcomer finds it.
    page.locator("li", has_text=demo.name).get_by_role("link", name="Dashboard").click()
    expect(page.locator("html")).to_have_attribute("data-charts-ready", "true")
    document_week = MetricsQuery.for_stream(demo).window().weeks[-1]

    # 1. Where is the constraint, and why? The demo's designed constraint, with evidence.
    panel = page.locator("#constraint")
    expect(panel.locator(".constraint-name")).to_have_text(
        "Sales/Buying / Knowledge limits the flow."
    )
    evidence = panel.locator(".evidence li")
    expect(evidence.first).to_contain_text("At its WIP limit (5)")
    assert evidence.count() >= 2
    panel.get_by_role("link", name="See its cards on the board").click()
    expect(page).to_have_url(re.compile(r"/board/\?column=\d+"))
    focused = page.locator("section.column.focused")
    expect(focused).to_have_count(1)
    expect(focused.locator("h3, .column-title").first).to_contain_text("Knowledge")
    page.go_back()
    expect(page.locator("html")).to_have_attribute("data-charts-ready", "true")

    # 2. Which channel brings most won value? Said in words above the Pareto chart, and
    # the chart's first bar is that channel.
    expect(page.locator("#chart-pareto-verdict")).to_contain_text(
        re.compile(r"^Referral brings the most won value: \d+% of it\.")
    )
    first_bar = page.evaluate("() => window.vsmCharts.pareto.data.labels[0]")
    assert first_bar == "Referral"

    # 3. How many deals will we win by the end of next month, and how sure is that?
    by = end_of_next_month(timezone.now().astimezone(metrics_zone()).date())
    answer = page.locator("#forecast-how-many")
    expect(answer).to_contain_text(
        re.compile(
            rf"By {re.escape(format_date(by, 'j M Y'))}: at least \d+ deals? won with 85% "
            r"confidence \(50%: \d+, 95%: \d+\)"
        )
    )
    expect(page.locator("#forecast")).to_contain_text(
        re.compile(
            r"the 85% forecast for the \d+ days ahead (held at \d+ of the \d+ where it could "
            r"fail|was 0 every time)"
        )
    )

    # 4. Was last week's throughput a signal or noise? The verdict names the week and
    # classifies it the way the XmR chart's signals do.
    document = dashboard_get(MetricsQuery.for_stream(demo)).document
    last = len(document.window.weeks) - 1
    signalled = any(s.index == last for s in document.stream.xmr.won_weekly.signals)
    verdict = page.locator("#chart-throughput-verdict")
    expect(verdict).to_contain_text(f"Last week (from {format_date(document_week, 'j M Y')})")
    expect(verdict).to_contain_text("a signal (" if signalled else "routine variation (noise)")
