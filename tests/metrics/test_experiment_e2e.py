"""A team leader plans, starts, stops and checks an experiment in a real browser, reads
its measured value and verdict, adapts it and revises the follow-up's plan.

The Check measures whole weeks of the window, so the test moves the server's clock on
(``timezone.now``, which the live server's thread shares with the test) past the
window's first week, and writes that week's cards at their dated times meanwhile.
"""

from __future__ import annotations

import datetime
import re
import time
from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from boards.models import Outcome
from metrics.services import stream_metrics_advance
from pdca import services as pdca_services
from pdca.models import HYPOTHESIS_MAX_LENGTH, Experiment, ExperimentStage, day_text
from pdca.services.experiment_rules import next_monday
from tests.boards.conftest import browser_type_launch_args, log_in  # noqa: F401 (fixtures)
from tests.metrics.scripted import Board
from tests.support import SALES, experiment_planned

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "/tmp/experiment-{page}-{width}.png"


def monday() -> datetime.datetime:
    now = timezone.now()
    day = now - datetime.timedelta(days=now.weekday())
    return day.replace(hour=9, minute=0, second=0, microsecond=0)


def sales_week(
    board: Board, week_start: datetime.datetime, tag: str, moving_on: int, cards: int = 5
) -> None:
    """``cards`` enter Sales/Buying on the week's Monday and reach Information on
    Tuesday; on Wednesday ``moving_on`` of them move on to Knowledge and are won, one an
    hour, the others are lost in Information (the columns stay under their limits)."""
    for n in range(cards):
        key = f"{tag}-{n}"
        board.enter(key, None, 1000, week_start, cycle=SALES)
        board.move(key, "Information", week_start + datetime.timedelta(days=1))
    for n in range(cards):
        key, hour = f"{tag}-{n}", week_start + datetime.timedelta(days=2, hours=n)
        if n < moving_on:
            board.move(key, "Knowledge", hour)
            board.close(key, Outcome.WON, hour + datetime.timedelta(minutes=30))
        else:
            board.close(key, Outcome.LOST, hour)


@pytest.fixture
def board(stream, manager) -> Board:
    """Six baseline weeks before this week: 1, 2, 1, 2, 1, 2 of 5 move on (30%)."""
    board = Board(stream, manager)
    with transaction.atomic():
        for week, moving_on in enumerate([1, 2, 1, 2, 1, 2]):
            start = monday() - datetime.timedelta(weeks=6 - week)
            sales_week(board, start, f"b{week}", moving_on)
    stream_metrics_advance(stream_id=stream.pk)
    return board


def shoot(page, name: str) -> None:
    """Screenshots at a desktop's and a phone's width; neither scrolls sideways."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)  # Chart.js redraws for the new width on its resize observer
        page.screenshot(path=SCREENSHOTS.format(page=name, width=width), full_page=True)
        wide = page.evaluate(
            "() => Array.from(document.querySelectorAll('body *')).filter("
            "(e) => e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".slice(0, 5).map((e) => e.tagName + '.' + e.className)"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, wide)
    page.set_viewport_size({"width": 1280, "height": 900})


def confirm(page, button: str) -> None:
    """Answer the confirmation a step asks for (Start, Stop early) with its button."""
    dialog = page.locator("dialog[open]")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=button, exact=True).click()


def test_a_leader_plans_starts_stops_and_checks(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    leader,
    board,  # noqa: F811
    settings,
):
    # The clock jumps eight days below: a session that lives that long stays logged in.
    settings.SESSION_COOKIE_AGE = 30 * 24 * 3600
    window_start = monday()
    log_in(page, leader)
    page.goto(f"{live_server.url}/streams/{stream.slug}/experiments/")
    page.get_by_label("Cycle").select_option(label=SALES)
    page.get_by_label("Hypothesis").fill(
        "We believe that offering a trial will raise Information to Knowledge conversion "
        "from 30% to 40%; we will know because more prospects move on to proposal."
    )
    page.get_by_label("Targeted metric").select_option("conversion")
    expect(page.get_by_label("Channel")).to_be_hidden()  # a column metric: no channel
    page.get_by_label("Column").select_option(label=f"{SALES} / Information")
    page.get_by_label("Window starts (a Monday)").fill(window_start.date().isoformat())
    page.get_by_label("Planned weeks").fill("2")
    page.get_by_label("Target value").fill("40")
    page.get_by_role("button", name="Plan the experiment").click()

    expect(page.get_by_test_id("stage")).to_have_text("Plan")
    page.get_by_role("button", name="Start: measure the baseline").click()
    confirm(page, "Start")
    expect(page.get_by_test_id("stage")).to_have_text("Do")
    expect(page.get_by_test_id("baseline")).to_contain_text("30 %")

    # Eight days on: the window's first week is over; its cards moved meanwhile.
    later = timezone.now() + datetime.timedelta(days=8)
    real_now = timezone.now
    with mock.patch("django.utils.timezone.now", lambda: real_now() + datetime.timedelta(days=8)):
        with transaction.atomic():
            sales_week(board, window_start, "w0", moving_on=9, cards=10)
        assert timezone.now() >= later - datetime.timedelta(seconds=5)
        page.reload()
        page.get_by_role("button", name="Stop early").click()
        confirm(page, "Stop early")
        expect(page.locator(".pdca-do")).to_contain_text("Stopped")
        page.get_by_role("button", name="Check: measure the window").click()

        expect(page.get_by_test_id("stage")).to_have_text("Check")
        expect(page.get_by_test_id("measured")).to_contain_text("90 %")
        verdict = page.get_by_test_id("verdict")
        expect(verdict).to_contain_text(
            "Signal, the way you aimed: a week above the upper natural process limit"
        )
        expect(verdict).to_have_class(re.compile(r"\bis-better\b"))
        expect(page.locator("html")).to_have_attribute("data-charts-ready", "true")
        experiment = Experiment.objects.get()
        assert experiment.stage == ExperimentStage.CHECK
        assert experiment.signal
        shoot(page, "detail")
        detail_url = page.url
        page.goto(f"{live_server.url}/streams/{stream.slug}/experiments/")
        shoot(page, "list")

        # Adapt: on to the follow-up's plan, to revise it before it starts.
        page.goto(detail_url)
        page.get_by_label("Adapt").check()
        page.get_by_label("Notes").fill("A trial works; try a shorter one on Knowledge too.")
        page.get_by_role("button", name="Decide").click()
        expect(page.get_by_role("heading", name="Edit the plan")).to_be_visible()
        expect(page.get_by_test_id("follow-up-note")).to_contain_text("revise its hypothesis")
        follow_up_monday = next_monday(timezone.now())
        expect(page.get_by_label("Window starts (a Monday)")).to_have_value(
            follow_up_monday.isoformat()
        )
        expect(page.locator("[data-unit-for=target]")).to_have_text("Unit: %")
        page.get_by_label("Hypothesis").fill(
            "We believe that a one-week trial raises Information to Knowledge conversion "
            "to 45%; we will know because more prospects move on."
        )
        page.get_by_label("Target value").fill("45")
        shoot(page, "edit")
        page.get_by_role("button", name="Save the plan").click()

        expect(page.get_by_test_id("stage")).to_have_text("Plan")
        expect(page.get_by_test_id("target")).to_have_text("45 %")
        expect(page.get_by_test_id("start-opens")).to_contain_text(day_text(follow_up_monday))
        expect(page.get_by_role("button", name="Start: measure the baseline")).to_have_count(0)
        follow_up = Experiment.objects.get(follow_up_of=experiment)
        assert (follow_up.target, follow_up.window_start) == (45, follow_up_monday)


# --- the forms' guards --------------------------------------------------------------------


def slowly(service):
    """``service`` answered after a while, as on a busy server: time for a second
    submission to reach the server while the first is still at work."""

    def slow(**kwargs):
        time.sleep(0.8)
        return service(**kwargs)

    return slow


def test_a_plan_sent_twice_is_planned_once_and_its_message_shows(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    leader,
):
    log_in(page, leader)
    page.set_viewport_size({"width": 390, "height": 700})
    page.goto(f"{live_server.url}/streams/{stream.slug}/experiments/")
    page.get_by_label("Cycle").select_option(label=SALES)
    page.get_by_label("Hypothesis").fill(
        "We believe that offering a trial will raise conversion; we will know because more "
        "prospects move on."
    )
    page.get_by_label("Targeted metric").select_option("conversion")
    page.get_by_label("Column").select_option(label=f"{SALES} / Information")
    target = page.get_by_label("Target value")
    target.fill("40,5")  # a decimal comma, kept as typed by the text field
    expect(target).to_have_value("40,5")

    with mock.patch.object(pdca_services, "experiment_plan", slowly(pdca_services.experiment_plan)):
        # Pressed twice, the second time while the first is still at the server.
        target.press("Enter", no_wait_after=True)
        page.wait_for_timeout(150)
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("stage")).to_have_text("Plan", timeout=10_000)

    page.wait_for_timeout(1_000)  # a second request, had it been sent, is answered by now
    experiment = Experiment.objects.get()
    assert experiment.target == Decimal("40.5")
    # The page opens at its top, where the message is: not at its Plan section.
    assert page.url.endswith(f"/experiments/{experiment.pk}/#main")
    expect(page.locator(".messages")).to_contain_text("Planned.")
    expect(page.locator(".messages")).to_be_in_viewport()

    # A form sent is disabled; shown again from the back-forward cache (which this
    # browser does not use when automated: its event is sent here), it can be sent again.
    page.goto(f"{live_server.url}/streams/{stream.slug}/experiments/")
    page.evaluate(
        "() => document.querySelector('form.plan-form')"
        ".addEventListener('submit', (event) => event.preventDefault())"
    )
    button = page.get_by_role("button", name="Plan the experiment")
    button.click()
    expect(button).to_be_disabled()
    page.evaluate(
        "() => window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))"
    )
    expect(button).to_be_enabled()


def test_start_asks_first_and_cancelling_starts_nothing(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    team,
    sales,
    sales_information,
    leader,
    board,
):
    experiment = experiment_planned(
        sales,
        team,
        targeted_metric="conversion",
        column=sales_information,
        target=Decimal("40"),
        window_start=monday().date(),
    )
    log_in(page, leader)
    page.goto(f"{live_server.url}/streams/{stream.slug}/experiments/{experiment.pk}/")

    page.get_by_role("button", name="Start: measure the baseline").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("Start measures the baseline and locks the plan")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    page.wait_for_timeout(300)
    assert Experiment.objects.get().stage == ExperimentStage.PLAN

    page.get_by_role("button", name="Start: measure the baseline").click()
    page.keyboard.press("Escape")  # closing the dialog another way: nothing either
    expect(page.locator("dialog[open]")).to_have_count(0)
    assert Experiment.objects.get().stage == ExperimentStage.PLAN

    page.get_by_role("button", name="Start: measure the baseline").click()
    confirm(page, "Start")
    expect(page.get_by_test_id("stage")).to_have_text("Do")
    page.get_by_role("button", name="Stop early").click()
    expect(page.locator("dialog[open]")).to_contain_text(
        "Stop ends the Do today; the Check measures up to yesterday."
    )
    page.locator("dialog[open]").get_by_role("button", name="Cancel").click()
    page.wait_for_timeout(300)
    assert Experiment.objects.get().stopped_at is None


def test_the_hypothesis_counts_its_characters_and_keeps_a_long_paste(
    live_server,
    page,
    log_in,  # noqa: F811
    stream,
    leader,
):
    log_in(page, leader)
    page.goto(f"{live_server.url}/streams/{stream.slug}/experiments/")
    hypothesis = page.get_by_label("Hypothesis")
    count = page.locator(".field-hypothesis .char-count")
    expect(count).to_have_text(f"0 of {HYPOTHESIS_MAX_LENGTH:,} characters")

    hypothesis.fill("We believe\nthat")
    expect(count).to_have_text(f"15 of {HYPOTHESIS_MAX_LENGTH:,} characters")
    pasted = "x" * (HYPOTHESIS_MAX_LENGTH + 45)
    hypothesis.fill(pasted)

    expect(hypothesis).to_have_value(pasted)  # nothing cut
    expect(count).to_have_text(
        f"{HYPOTHESIS_MAX_LENGTH + 45:,} of {HYPOTHESIS_MAX_LENGTH:,} characters: 45 too many"
    )
    expect(count).to_have_class(re.compile(r"\bis-over\b"))
