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
from pdca.models import Experiment, ExperimentStage, TargetedMetric, day_text
from tests.support import (
    SALES,
    column_of,
    experiment_checked,
    experiment_planned,
    experiment_running,
    logged_in,
    this_monday,
)
from vsm.models import Channel, ChannelKind, ValueStream

pytestmark = pytest.mark.django_db


def plan(stream, team, sales, **fields) -> Experiment:
    return experiment_planned(sales, team, **fields)


def plan_fields(team, **changes) -> dict:
    """What the plan forms post: the factory's plan (throughput of the cycle)."""
    fields = {
        "team": team.pk,
        "hypothesis": "We believe a weekly pipeline review will raise throughput",
        "targeted_metric": TargetedMetric.THROUGHPUT,
        "window_start": this_monday(),
        "planned_weeks": 4,
        "target": "5",
    } | changes
    return {
        name: value.isoformat() if isinstance(value, datetime.date) else value
        for name, value in fields.items()
    }


def page_of(stream, experiment) -> str:
    return reverse("metrics:experiment", args=[stream.slug, experiment.pk])


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
        {"version": experiment.version},
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
        reverse("metrics:experiment-start", args=[stream.slug, experiment.pk]),
        {"version": experiment.version},
        follow=True,
    )

    assert "may run its experiments" in response.text
    experiment.refresh_from_db()
    assert experiment.stage == ExperimentStage.PLAN


def test_act_before_check_is_refused_on_the_form(stream, team, sales, leader):
    experiment = plan(stream, team, sales)
    client = logged_in(leader)

    response = client.post(
        reverse("metrics:experiment-act", args=[stream.slug, experiment.pk]),
        {"decision": "adopt", "notes": "Looks good", "version": experiment.version},
    )

    assert response.status_code == 409
    assert "once its Check is recorded" in response.text


def checked(stream, team, sales, **fields) -> Experiment:
    return experiment_checked(sales, team, **fields)


def test_the_check_shows_value_baseline_target_cards_and_the_rule(stream, team, sales, member):
    experiment = checked(stream, team, sales)

    page = logged_in(member).get(reverse("metrics:experiment", args=[stream.slug, experiment.pk]))

    assert "9 cards per week" in page.text
    assert "18 cards" in page.text
    assert "a week above the upper natural process limit" in page.text  # the rule
    assert 'id="chart-data-experiment"' in page.text


def test_a_runner_adapts_and_revises_the_follow_up_s_plan(stream, team, sales, leader):
    experiment = checked(stream, team, sales)
    client = logged_in(leader)

    response = client.post(
        reverse("metrics:experiment-act", args=[stream.slug, experiment.pk]),
        {"decision": "adapt", "notes": "Try it in two weeks", "version": experiment.version},
    )

    follow_up = Experiment.objects.get(follow_up_of=experiment)
    edit_url = reverse("metrics:experiment-edit", args=[stream.slug, follow_up.pk])
    assert response.status_code == 302
    assert response.url == edit_url
    # A window that has not begun: next Monday.
    assert follow_up.window_start == this_monday() + datetime.timedelta(weeks=1)
    edit = client.get(edit_url)
    assert "revise its hypothesis, target and window" in edit.text
    assert f'value="{follow_up.window_start.isoformat()}"' in edit.text
    assert experiment.hypothesis in edit.text  # prefilled with the plan it follows up

    revised = client.post(
        edit_url,
        plan_fields(
            team,
            hypothesis="We believe that a two-week trial will raise throughput",
            window_start=follow_up.window_start + datetime.timedelta(weeks=1),
            planned_weeks=2,
            target="7",
            version=follow_up.version,
        ),
    )

    assert revised.status_code == 302
    follow_up.refresh_from_db()
    assert (follow_up.hypothesis, follow_up.target, follow_up.planned_weeks) == (
        "We believe that a two-week trial will raise throughput",
        Decimal("7"),
        2,
    )
    assert follow_up.window_start == this_monday() + datetime.timedelta(weeks=2)
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
    return experiment_running(sales, team, **fields)


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


# --- Abandon without a Check ------------------------------------------------------------


def over_with_nothing_measured(stream, team, sales) -> Experiment:
    """A conversion started on its window's Monday two weeks ago, the one-week window
    over since last Monday, not stopped, and no card in the stream to measure."""
    window_start = this_monday() - datetime.timedelta(weeks=2)
    started_at = datetime.datetime.combine(
        window_start, datetime.time(9), tzinfo=timezone.get_default_timezone()
    )
    return running(
        stream,
        team,
        sales,
        targeted_metric=TargetedMetric.CONVERSION,
        column=column_of(stream, SALES, "Information"),
        target=Decimal("40"),
        window_start=window_start,
        planned_weeks=1,
        started_at=started_at,
    )


def test_a_check_with_too_little_data_leads_to_abandoning_without_one(
    stream, team, sales, leader, manager
):
    ten_weeks_old(stream)
    experiment = over_with_nothing_measured(stream, team, sales)
    client = logged_in(leader)
    review_url = reverse("metrics:review-latest", args=[stream.slug])
    assert page_of(stream, experiment) in logged_in(manager).get(review_url, follow=True).text

    refused = client.post(
        reverse("metrics:experiment-check", args=[stream.slug, experiment.pk]),
        {"version": experiment.version},
        follow=True,
    )

    assert refused.redirect_chain[-1][0] == page_of(stream, experiment)
    assert "nothing to measure" in refused.text
    assert '<details class="abandon" id="abandon" open>' in refused.text
    assert "Abandon without a Check" in refused.text

    abandoned = client.post(
        reverse("metrics:experiment-act", args=[stream.slug, experiment.pk]),
        {
            "decision": "abandon",
            "notes": "No prospect in the window.",
            "version": experiment.version,
        },
        follow=True,
    )

    experiment.refresh_from_db()
    assert (experiment.stage, experiment.decision, experiment.decided_by_id) == (
        ExperimentStage.ACT,
        "abandon",
        leader.pk,
    )
    assert experiment.checked_at is None
    assert "Decided: Abandon." in abandoned.text
    assert "<strong>Abandon</strong> without a Check" in abandoned.text
    assert "No prospect in the window." in abandoned.text
    assert "No Check: abandoned in its Do without one." in abandoned.text
    assert 'id="abandon"' not in abandoned.text
    review = logged_in(manager).get(review_url, follow=True)
    assert page_of(stream, experiment) not in review.text


def test_a_running_experiment_offers_abandon_folded_away(stream, team, sales, leader):
    experiment = running(stream, team, sales)

    page = logged_in(leader).get(page_of(stream, experiment))

    assert '<details class="abandon" id="abandon">' in page.text
    assert "the experiment stops now" in page.text
    assert "Stop early" in page.text
    assert "Start: measure the baseline" not in page.text


def test_abandoning_without_notes_is_refused_on_the_form(stream, team, sales, leader):
    experiment = running(stream, team, sales)

    response = logged_in(leader).post(
        reverse("metrics:experiment-act", args=[stream.slug, experiment.pk]),
        {"decision": "abandon", "notes": " ", "version": experiment.version},
    )

    assert response.status_code == 400
    assert "Say why it is abandoned without a Check" in response.text
    assert '<details class="abandon" id="abandon" open>' in response.text
    experiment.refresh_from_db()
    assert (experiment.stage, experiment.stopped_at) == (ExperimentStage.DO, None)


def test_adopting_in_the_do_is_refused_and_the_notes_are_kept(stream, team, sales, leader):
    experiment = running(stream, team, sales)

    response = logged_in(leader).post(
        reverse("metrics:experiment-act", args=[stream.slug, experiment.pk]),
        {"decision": "adopt", "notes": "It clearly works", "version": experiment.version},
    )

    assert response.status_code == 409
    assert "can only be abandoned" in response.text
    assert ">It clearly works</textarea>" in response.text
    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.DO


# --- versions: every step names the one it was shown --------------------------------------


@pytest.mark.parametrize("step", ["start", "stop", "check"])
def test_a_step_on_an_experiment_changed_meanwhile_is_refused(stream, team, sales, leader, step):
    arranged = {"start": plan, "stop": running, "check": over_with_nothing_measured}
    experiment = arranged[step](stream, team, sales)
    client = logged_in(leader)
    page = client.get(page_of(stream, experiment))
    shown = f'<input type="hidden" name="version" value="{experiment.version}">'
    assert shown in page.text
    # Someone else's change meanwhile (a plan edited, a stop from another tab).
    Experiment.objects.filter(pk=experiment.pk).update(version=experiment.version + 1)

    response = client.post(
        reverse(f"metrics:experiment-{step}", args=[stream.slug, experiment.pk]),
        {"version": experiment.version},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == page_of(stream, experiment)
    assert "changed this meanwhile" in response.text
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.stopped_at, row.version) == (
        experiment.stage,
        experiment.stopped_at,
        experiment.version + 1,
    )


def test_a_step_with_the_version_shown_goes_through(stream, team, sales, leader):
    experiment = running(stream, team, sales)
    client = logged_in(leader)
    url = reverse("metrics:experiment-stop", args=[stream.slug, experiment.pk])

    missing = client.post(url, follow=True)
    assert "did not say which version" in missing.text
    assert Experiment.objects.get(pk=experiment.pk).stopped_at is None

    response = client.post(url, {"version": experiment.version}, follow=True)

    assert "Stopped: the Check measures the window" in response.text
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stopped_at is not None, row.version) == (True, experiment.version + 1)


def test_an_act_on_an_experiment_changed_meanwhile_is_refused(stream, team, sales, leader):
    experiment = checked(stream, team, sales)
    Experiment.objects.filter(pk=experiment.pk).update(version=experiment.version + 1)

    response = logged_in(leader).post(
        reverse("metrics:experiment-act", args=[stream.slug, experiment.pk]),
        {"decision": "adopt", "notes": "Standard offer now", "version": experiment.version},
    )

    assert response.status_code == 409
    assert "changed this meanwhile" in response.text
    assert "Standard offer now" in response.text
    # The form shown again names the version as it is now.
    assert f'name="version" value="{experiment.version + 1}"' in response.text
    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.CHECK


# --- the plan's edit page -----------------------------------------------------------------


def test_the_edit_page_shows_the_plan_prefilled(stream, team, sales, leader):
    experiment = plan(stream, team, sales, target=Decimal("6.50"))

    page = logged_in(leader).get(
        reverse("metrics:experiment-edit", args=[stream.slug, experiment.pk])
    )

    assert page.status_code == 200
    assert experiment.hypothesis in page.text
    assert 'value="6.50"' in page.text
    assert f'value="{experiment.window_start.isoformat()}"' in page.text
    assert f'<input type="hidden" name="version" value="{experiment.version}">' in page.text
    assert 'name="cycle"' not in page.text  # an experiment stays on its cycle
    # Only this cycle's columns are offered.
    assert f'value="{column_of(stream, SALES, "Information").pk}"' in page.text
    other = column_of(stream, "Collaboration", "Information")
    assert f'<option value="{other.pk}"' not in page.text
    experiment_page = logged_in(leader).get(page_of(stream, experiment))
    assert "Edit plan" in experiment_page.text


def test_a_refused_edit_shows_the_reason_on_its_field_and_keeps_the_input(
    stream, team, sales, leader
):
    experiment = plan(stream, team, sales)
    passed = this_monday() - datetime.timedelta(weeks=1)

    response = logged_in(leader).post(
        reverse("metrics:experiment-edit", args=[stream.slug, experiment.pk]),
        plan_fields(
            team,
            hypothesis="We believe a shorter review will do",
            window_start=passed,
            version=experiment.version,
        ),
    )

    assert response.status_code == 409
    field = response.text.split('class="field field-window_start"', 1)[1].split("</div>", 1)[0]
    assert "is over" in field
    assert "We believe a shorter review will do" in response.text
    assert f'value="{passed.isoformat()}"' in response.text
    experiment.refresh_from_db()
    assert (experiment.window_start, experiment.version) == (this_monday(), 1)


def test_an_edit_of_a_plan_changed_meanwhile_keeps_the_input_and_shows_the_plan_saved(
    stream, team, sales, leader
):
    experiment = plan(stream, team, sales)
    Experiment.objects.filter(pk=experiment.pk).update(version=2, target=Decimal("8"))

    response = logged_in(leader).post(
        reverse("metrics:experiment-edit", args=[stream.slug, experiment.pk]),
        plan_fields(team, hypothesis="We believe my version", target="6", version=1),
    )

    assert response.status_code == 409
    assert "changed this meanwhile" in response.text
    assert "We believe my version" in response.text
    saved = response.text.split('data-testid="saved-now"', 1)[1].split("</p>", 1)[0]
    assert "target 8 cards per week" in saved
    assert '<input type="hidden" name="version" value="2">' in response.text
    assert Experiment.objects.get(pk=experiment.pk).hypothesis == experiment.hypothesis


def test_a_started_plan_is_not_edited(stream, team, sales, leader):
    experiment = running(stream, team, sales)
    client = logged_in(leader)
    url = reverse("metrics:experiment-edit", args=[stream.slug, experiment.pk])

    page = client.get(url)
    response = client.post(url, plan_fields(team, target="9", version=experiment.version))

    assert "This experiment has started" in page.text
    assert "Save the plan" not in page.text
    assert response.status_code == 409
    assert Experiment.objects.get(pk=experiment.pk).target == experiment.target
    assert "Edit plan" not in client.get(page_of(stream, experiment)).text


def test_members_read_the_edit_page_without_a_form_and_may_not_save(stream, team, sales, member):
    experiment = plan(stream, team, sales)
    client = logged_in(member)
    url = reverse("metrics:experiment-edit", args=[stream.slug, experiment.pk])

    page = client.get(url)
    response = client.post(url, plan_fields(team, target="9", version=experiment.version))

    assert page.status_code == 200 and "Save the plan" not in page.text
    assert response.status_code == 403
    assert "may run its experiments" in response.text
    assert Experiment.objects.get(pk=experiment.pk).target == experiment.target


# --- what the pages name and when they offer the start ----------------------------------


def test_conversion_names_its_step_and_from_the_last_column_handed_on_or_won(
    stream, team, sales, member
):
    middle = plan(
        stream,
        team,
        sales,
        targeted_metric=TargetedMetric.CONVERSION,
        column=column_of(stream, SALES, "Information"),
        target=Decimal("40"),
    )
    last = plan(
        stream,
        team,
        sales,
        targeted_metric=TargetedMetric.CONVERSION,
        column=column_of(stream, SALES, "Wisdom"),
        target=Decimal("30"),
    )
    client = logged_in(member)

    listing = client.get(reverse("metrics:experiments", args=[stream.slug]))
    last_page = client.get(page_of(stream, last))
    middle_page = client.get(page_of(stream, middle))

    assert "Wisdom → handed on or won" in last_page.text
    assert "Information → Knowledge" in middle_page.text
    assert "Wisdom → handed on or won" in listing.text
    assert "Information → Knowledge" in listing.text


def test_the_start_shows_only_once_the_window_opens(stream, team, sales, leader):
    next_monday = this_monday() + datetime.timedelta(weeks=1)
    ahead = plan(stream, team, sales, window_start=next_monday)
    missed = plan(stream, team, sales, window_start=this_monday() - datetime.timedelta(weeks=1))
    client = logged_in(leader)

    ahead_page = client.get(page_of(stream, ahead))
    missed_page = client.get(page_of(stream, missed))
    # Posted anyway (a page left open): refused with the date as the page gives it.
    refused = client.post(
        reverse("metrics:experiment-start", args=[stream.slug, ahead.pk]),
        {"version": ahead.version},
        follow=True,
    )

    assert "Start: measure the baseline" not in ahead_page.text
    assert f"It can start from {day_text(next_monday)}" in ahead_page.text
    assert "Start: measure the baseline" not in missed_page.text
    assert "it can no longer start" in missed_page.text
    assert f"from {day_text(next_monday)}:" in refused.text
    assert next_monday.isoformat() not in refused.text.split('class="messages"', 1)[1][:400]
    assert Experiment.objects.get(pk=ahead.pk).stage == ExperimentStage.PLAN


def test_units_read_well_and_show_with_every_value(stream, team, sales, member):
    wip = plan(
        stream,
        team,
        sales,
        targeted_metric=TargetedMetric.WIP,
        column=column_of(stream, SALES, "Knowledge"),
        target=Decimal("4"),
    )
    plan(
        stream,
        team,
        sales,
        targeted_metric=TargetedMetric.CONVERSION,
        column=column_of(stream, SALES, "Information"),
        target=Decimal("40"),
    )
    client = logged_in(member)

    page = client.get(page_of(stream, wip))
    listing = client.get(reverse("metrics:experiments", args=[stream.slug]))

    assert "WIP of a column (cards on an average day)" in page.text
    assert "((" not in page.text and "))" not in page.text
    assert "4 cards on an average day" in page.text
    targets = [
        part.split("</span>", 1)[0] for part in listing.text.split('data-testid="list-target">')[1:]
    ]
    assert sorted(targets) == ["4 cards on an average day", "40 %"]


# --- the board's badge --------------------------------------------------------------------


def test_the_board_badge_links_the_only_running_experiment_itself(
    stream, team, sales, member, django_assert_max_num_queries
):
    first = running(stream, team, sales)
    client = logged_in(member)
    board_url = reverse("boards:board", args=[stream.slug])
    client.get(board_url)  # the first request of a session may write to it

    with django_assert_max_num_queries(100) as one_running:
        one = client.get(board_url)
    running(stream, team, sales)
    with django_assert_max_num_queries(len(one_running.captured_queries)):
        two = client.get(board_url)

    def badge(page) -> str:
        return next(line for line in page.text.splitlines() if "experiment-badge" in line)

    assert f'href="{page_of(stream, first)}"' in badge(one)
    assert "1 experiment running" in badge(one)
    assert f"/experiments/#cycle-{sales.pk}" in badge(two)
    assert "2 experiments running" in badge(two)
