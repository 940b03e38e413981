"""The experiment pages: members read them, runners plan and take the steps, outsiders
get 404, and refusals come back in words on the page they were asked from."""

from __future__ import annotations

import datetime
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from metrics.charts import Window, with_windows
from pdca.models import Cycle, Experiment, ExperimentStage, SignalRule, TargetedMetric
from tests.factories import ExperimentFactory, MembershipFactory
from tests.support import SALES, column_of, logged_in
from vsm.models import Channel, ChannelKind, Role, ValueStream

pytestmark = pytest.mark.django_db


def this_monday() -> datetime.date:
    today = timezone.localdate()
    return today - datetime.timedelta(days=today.weekday())


@pytest.fixture
def leader(team):
    return MembershipFactory(team=team, role=Role.TEAM_LEADER).user


@pytest.fixture
def sales(stream) -> Cycle:
    return Cycle.objects.get(value_stream=stream, name=SALES)


def plan(stream, team, sales, **fields) -> Experiment:
    return ExperimentFactory(cycle=sales, team=team, **fields)


def test_members_see_the_list_and_the_page_without_buttons(stream, team, sales, member):
    experiment = plan(stream, team, sales)
    client = logged_in(member)

    listing = client.get(reverse("metrics:experiments", args=[stream.slug]))
    page = client.get(reverse("metrics:experiment", args=[stream.slug, experiment.pk]))

    assert listing.status_code == 200
    assert experiment.hypothesis in listing.text
    assert "Plan an experiment" not in listing.text
    assert page.status_code == 200
    assert "Start: measure the baseline" not in page.text
    assert ">Experiments</a>" in listing.text  # the stream's top bar


def test_outsiders_get_404(stream, team, sales, user, other_stream):
    experiment = plan(stream, team, sales)
    client = logged_in(user)

    assert client.get(reverse("metrics:experiments", args=[stream.slug])).status_code == 404
    assert (
        client.get(reverse("metrics:experiment", args=[stream.slug, experiment.pk])).status_code
        == 404
    )
    # Another stream's slug with this experiment's id: not found either.
    other = logged_in(other_stream.manager)
    url = reverse("metrics:experiment", args=[other_stream.slug, experiment.pk])
    assert other.get(url).status_code == 404
    stop = reverse("metrics:experiment-stop", args=[other_stream.slug, experiment.pk])
    assert other.post(stop).status_code == 404


def test_a_leader_plans_through_the_form(stream, team, sales, leader):
    client = logged_in(leader)
    information = column_of(stream, SALES, "Information")
    Channel.objects.create(value_stream=stream, name="Referral", kind=ChannelKind.REFERRAL)

    response = client.post(
        reverse("metrics:experiments", args=[stream.slug]),
        {
            "cycle": sales.pk,
            "team": team.pk,
            "hypothesis": "We believe that a trial will raise conversion; we will know because",
            "targeted_metric": TargetedMetric.CONVERSION,
            "column": information.pk,
            "channel": Channel.objects.get().pk,  # ignored: conversion takes a column
            "window_start": this_monday().isoformat(),
            "planned_weeks": 4,
            "target": "40",
        },
    )

    experiment = Experiment.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("metrics:experiment", args=[stream.slug, experiment.pk])
    assert (experiment.column_id, experiment.channel_id) == (information.pk, None)
    assert experiment.target == Decimal("40")
    page = client.get(response.url)
    assert "Start: measure the baseline" in page.text


def test_a_refused_plan_shows_the_reason_and_keeps_the_input(stream, team, sales, leader):
    client = logged_in(leader)

    response = client.post(
        reverse("metrics:experiments", args=[stream.slug]),
        {
            "cycle": sales.pk,
            "team": team.pk,
            "hypothesis": "We believe that WIP will fall",
            "targeted_metric": TargetedMetric.WIP,  # needs a column: none given
            "window_start": this_monday().isoformat(),
            "planned_weeks": 4,
            "target": "3",
        },
    )

    assert response.status_code == 400
    assert "needs a column of the cycle" in response.text
    assert "We believe that WIP will fall" in response.text
    assert not Experiment.objects.exists()


def test_a_refused_step_comes_back_as_a_message(stream, team, sales, leader):
    experiment = plan(stream, team, sales)
    client = logged_in(leader)
    page_url = reverse("metrics:experiment", args=[stream.slug, experiment.pk])

    response = client.post(
        reverse("metrics:experiment-stop", args=[stream.slug, experiment.pk]),
        HTTP_REFERER="http://testserver" + page_url,
        follow=True,
    )

    assert response.redirect_chain[-1][0].endswith(page_url)
    assert "This experiment is not running." in response.text
    experiment.refresh_from_db()
    assert experiment.stage == ExperimentStage.PLAN


def test_members_may_not_take_a_step(stream, team, sales, member):
    experiment = plan(stream, team, sales)
    client = logged_in(member)

    response = client.post(
        reverse("metrics:experiment-start", args=[stream.slug, experiment.pk]), follow=True
    )

    assert "may run its experiments" in response.text
    experiment.refresh_from_db()
    assert experiment.stage == ExperimentStage.PLAN


def test_act_before_check_is_refused_on_the_form(stream, team, sales, leader):
    experiment = plan(stream, team, sales)
    client = logged_in(leader)

    response = client.post(
        reverse("metrics:experiment-act", args=[stream.slug, experiment.pk]),
        {"decision": "adopt", "notes": "Looks good"},
    )

    assert response.status_code == 409
    assert "once its Check is recorded" in response.text


def checked(stream, team, sales, **fields) -> Experiment:
    started = timezone.now() - datetime.timedelta(days=20)
    return plan(
        stream,
        team,
        sales,
        window_start=this_monday() - datetime.timedelta(weeks=4),
        stage=ExperimentStage.CHECK,
        started_at=started,
        baseline=Decimal("3"),
        baseline_cards=30,
        baseline_weekly=[2, 3, 4, 3, 2, 4],
        stopped_at=started + datetime.timedelta(days=15),
        stopped_early=True,
        measured_value=Decimal("9"),
        measured_cards=18,
        measured_weekly=[9, 9],
        signal=True,
        signal_rule=SignalRule.BEYOND_UPPER_LIMIT,
        checked_at=timezone.now(),
        **fields,
    )


def test_the_check_shows_value_baseline_target_cards_and_the_rule(stream, team, sales, member):
    experiment = checked(stream, team, sales)

    page = logged_in(member).get(reverse("metrics:experiment", args=[stream.slug, experiment.pk]))

    assert "9 cards per week" in page.text
    assert "18 cards" in page.text
    assert "Signal: a week above the upper natural process limit" in page.text
    assert 'id="chart-data-experiment"' in page.text


def test_a_runner_adapts_and_lands_on_the_follow_up(stream, team, sales, leader):
    experiment = checked(stream, team, sales)
    client = logged_in(leader)

    response = client.post(
        reverse("metrics:experiment-act", args=[stream.slug, experiment.pk]),
        {"decision": "adapt", "notes": "Try it in two weeks"},
    )

    follow_up = Experiment.objects.get(follow_up_of=experiment)
    assert response.url == reverse("metrics:experiment", args=[stream.slug, follow_up.pk])
    page = client.get(reverse("metrics:experiment", args=[stream.slug, experiment.pk]))
    assert "Adapt" in page.text and "Try it in two weeks" in page.text
    assert reverse("metrics:experiment", args=[stream.slug, follow_up.pk]) in page.text


def test_windows_become_bands_clipped_to_the_chart():
    from metrics.charts import Chart, Series

    chart = Chart(
        key="throughput",
        title="t",
        caption="c",
        labels=["2026-01-05", "2026-01-12", "2026-01-19"],
        series=[Series("won", [1, 2, 3])],
        columns=[],
        rows=[],
    )
    window = Window("Experiment: trial", datetime.date(2026, 1, 14), datetime.date(2026, 2, 8))
    outside = Window("old", datetime.date(2025, 1, 1), datetime.date(2025, 1, 5))

    marked = with_windows(chart, [window, outside], weekly=True)

    assert marked.to_json()["bands"] == [
        {"label": "Experiment: trial", "start": "2026-01-12", "end": "2026-01-19"}
    ]


def ten_weeks_old(stream) -> None:
    """The stream's history starts ten weeks ago: its charts and review have full weeks."""
    ValueStream.objects.filter(pk=stream.pk).update(
        created_at=timezone.now() - datetime.timedelta(weeks=10)
    )
    stream.refresh_from_db()


def running(stream, team, sales, **fields) -> Experiment:
    return plan(
        stream,
        team,
        sales,
        stage=ExperimentStage.DO,
        started_at=timezone.now() - datetime.timedelta(days=1),
        baseline=Decimal("3"),
        baseline_cards=30,
        baseline_weekly=[2, 3, 4, 3, 2, 4],
        **fields,
    )


def test_the_dashboards_weekly_and_daily_charts_mark_a_running_window(stream, team, sales, member):
    ten_weeks_old(stream)
    running(stream, team, sales, window_start=this_monday() - datetime.timedelta(weeks=1))

    page = logged_in(member).get(reverse("metrics:dashboard", args=[stream.slug]))

    for key in ("throughput", "demand", "cumulative-flow"):
        found = re.search(
            rf'<script id="chart-data-{key}" type="application/json">(.*?)</script>',
            page.text,
            re.S,
        )
        assert found, key
        bands = json.loads(found.group(1))["bands"]
        assert len(bands) == 1, key
        assert bands[0]["label"].startswith("Experiment: We believe")


def test_the_weekly_review_lists_experiments_ready_for_their_check(stream, team, sales, manager):
    ten_weeks_old(stream)
    experiment = running(
        stream,
        team,
        sales,
        window_start=this_monday() - datetime.timedelta(weeks=2),
        planned_weeks=1,
    )
    page = logged_in(manager).get(reverse("metrics:review-latest", args=[stream.slug]), follow=True)

    assert "Experiments ready for their Check" in page.text
    assert reverse("metrics:experiment", args=[stream.slug, experiment.pk]) in page.text
