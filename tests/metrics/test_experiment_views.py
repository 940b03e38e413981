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
from django.utils.html import escape

from metrics.charts import Window, with_windows
from pdca import services as pdca_services
from pdca.models import HYPOTHESIS_MAX_LENGTH, Experiment, ExperimentStage, TargetedMetric, day_text
from pdca.selectors import RUNNERS_ONLY
from tests.factories import MembershipFactory, UserFactory
from tests.support import (
    SALES,
    as_actor,
    column_of,
    experiment_checked,
    experiment_planned,
    experiment_running,
    logged_in,
    this_monday,
)
from vsm.models import AuditEntry, Channel, ChannelKind, Role, ValueStream

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
    assert 'name="hypothesis"' not in listing.text  # no plan form
    assert page.status_code == 200
    assert "Start: measure the baseline" not in page.text
    assert "Withdraw the plan" not in page.text
    assert ">Experiments</a>" in listing.text  # the stream's top bar
    # Where the form and the buttons would be, they are told why there are none.
    plan_section = listing.text.split('id="plan"', 1)[1]
    assert f'data-testid="runners-only">{escape(RUNNERS_ONLY)}' in plan_section
    assert escape(RUNNERS_ONLY) in page.text
    edit = client.get(reverse("metrics:experiment-edit", args=[stream.slug, experiment.pk]))
    assert escape(RUNNERS_ONLY) in edit.text


def test_runners_are_not_told_who_runs_experiments(stream, team, sales, leader):
    experiment = plan(stream, team, sales)
    client = logged_in(leader)

    listing = client.get(reverse("metrics:experiments", args=[stream.slug]))
    page = client.get(page_of(stream, experiment))

    assert 'data-testid="runners-only"' not in listing.text + page.text


def test_a_member_posting_the_plan_form_is_told_who_plans(stream, team, sales, member):
    client = logged_in(member)
    url = reverse("metrics:experiments", args=[stream.slug])

    response = client.post(url + "#plan", {"cycle": sales.pk, **plan_fields(team)})
    page = client.get(response.url)

    assert response.status_code == 303
    assert response.url == url + "#main"
    assert page.status_code == 200
    messages = page.text.split('class="messages"', 1)[1].split("</ul>", 1)[0]
    assert escape(RUNNERS_ONLY) in messages
    assert not Experiment.objects.exists()
    refused = AuditEntry.objects.get(action="http.experiments")
    assert (refused.actor_id, refused.refused_code) == (member.pk, "permission_refused")


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
    # To the page's top, where the message is: not to the form's "#plan", which a
    # redirect without a fragment of its own would keep.
    assert response.url == page_of(stream, experiment) + "#main"
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
    assert response.url == edit_url + "#main"
    # A window that has not begun: next Monday.
    assert follow_up.window_start == this_monday() + datetime.timedelta(weeks=1)
    edit = client.get(edit_url)
    assert "revise its hypothesis, target and window" in edit.text
    assert f'value="{follow_up.window_start.isoformat()}"' in edit.text
    assert experiment.hypothesis in edit.text  # prefilled with the plan it follows up

    revised = client.post(
        edit_url,  # in "metrics:experiment-edit"
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
    assert revised.url == page_of(stream, follow_up) + "#main"
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


def field_of(page, name: str) -> str:
    """The plan form's field ``name`` as the page shows it."""
    return re.split(f'class="field field-{name}[ "]', page.text, maxsplit=1)[1].split("</div>", 1)[
        0
    ]


def test_an_edit_of_a_plan_changed_meanwhile_keeps_the_input_and_shows_the_plan_saved(
    stream, team, sales, leader
):
    experiment = plan(stream, team, sales)
    # Another tab saved a new hypothesis and target meanwhile.
    Experiment.objects.filter(pk=experiment.pk).update(
        version=2, target=Decimal("8"), hypothesis="We believe the other tab's idea"
    )

    # This tab changed the planned weeks only; its form still holds the old hypothesis
    # and target, which the user did not touch.
    response = logged_in(leader).post(
        reverse("metrics:experiment-edit", args=[stream.slug, experiment.pk]),
        plan_fields(team, hypothesis=experiment.hypothesis, planned_weeks=6, version=1),
    )

    assert response.status_code == 409
    assert "changed this meanwhile" in response.text
    saved = response.text.split('data-testid="saved-now"', 1)[1].split("</div>", 1)[0]
    assert "We believe the other tab" in saved  # the hypothesis too
    assert "target 8 cards per week" in saved
    differs = response.text.split('data-testid="saved-differs"', 1)[1].split("</p>", 1)[0]
    assert "differs from the plan saved now in: Hypothesis, Planned weeks, Target value;" in differs
    # What was typed is kept, and each field that differs says what is saved now.
    hypothesis = field_of(response, "hypothesis")
    assert experiment.hypothesis in hypothesis
    assert "<strong>Saved now:</strong> We believe the other tab" in hypothesis
    target = field_of(response, "target")
    assert 'value="5"' in target
    assert "<strong>Saved now:</strong> 8 cards per week" in target
    weeks = field_of(response, "planned_weeks")
    assert 'value="6"' in weeks and "<strong>Saved now:</strong> 4" in weeks
    for same in ("window_start", "targeted_metric", "team"):
        assert "Saved now" not in field_of(response, same), same
    assert '<input type="hidden" name="version" value="2">' in response.text
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.hypothesis, row.target, row.planned_weeks) == (
        "We believe the other tab's idea",
        Decimal("8"),
        4,
    )


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


# --- withdrawing a plan -------------------------------------------------------------------


def test_a_runner_withdraws_a_plan_from_its_page(stream, team, sales, leader):
    experiment = plan(stream, team, sales)
    client = logged_in(leader)
    page = client.get(page_of(stream, experiment))
    assert '<details class="abandon withdraw" id="withdraw">' in page.text
    assert "<summary>Withdraw the plan</summary>" in page.text

    response = client.post(
        reverse("metrics:experiment-act", args=[stream.slug, experiment.pk]),
        {"decision": "abandon", "notes": "The offer was dropped.", "version": experiment.version},
    )
    withdrawn = client.get(response.url)

    assert response.status_code == 302
    assert response.url == page_of(stream, experiment) + "#main"
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.decision, row.decided_by_id, row.started_at) == (
        ExperimentStage.ACT,
        "abandon",
        leader.pk,
        None,
    )
    assert AuditEntry.objects.filter(action="experiment.abandoned", target_id=row.pk).exists()
    assert "Withdrawn: the plan will not start." in withdrawn.text
    assert "<strong>Abandon</strong>: the plan was withdrawn before it started" in withdrawn.text
    assert "The offer was dropped." in withdrawn.text
    assert "Never started: the plan was withdrawn." in withdrawn.text
    for gone in ("Withdraw the plan", "Edit plan", "Start: measure the baseline", "Not started."):
        assert gone not in withdrawn.text, gone
    # It leaves the plans: listed as withdrawn, no longer in Plan.
    listing = client.get(reverse("metrics:experiments", args=[stream.slug]))
    assert 'data-stage="plan"' not in listing.text
    assert ">Withdrawn</span>" in listing.text


def test_withdrawing_a_plan_without_notes_is_refused_on_its_form(stream, team, sales, leader):
    experiment = plan(stream, team, sales)

    response = logged_in(leader).post(
        reverse("metrics:experiment-act", args=[stream.slug, experiment.pk]),
        {"decision": "abandon", "notes": "  ", "version": experiment.version},
    )

    assert response.status_code == 400
    withdraw = response.text.split('id="withdraw" open>', 1)[1].split("</details>", 1)[0]
    assert "Say why the plan is withdrawn" in withdraw
    assert "Say why the plan is withdrawn" not in response.text.split('id="act"', 1)[1]
    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.PLAN


# --- the target as typed ------------------------------------------------------------------

CONVERSION_PLAN = {
    "targeted_metric": TargetedMetric.CONVERSION,
    "hypothesis": "We believe that a trial will raise conversion",
}


@pytest.mark.parametrize(
    ("metric", "typed", "saved"),
    [
        (TargetedMetric.CONVERSION, "40,5", Decimal("40.5")),
        (TargetedMetric.CONVERSION, "40.5", Decimal("40.5")),
        (TargetedMetric.CONVERSION, "40%", Decimal("40")),
        (TargetedMetric.CONVERSION, " 40,25 % ", Decimal("40.25")),
        (TargetedMetric.CONVERSION, "100", Decimal("100")),
        (TargetedMetric.THROUGHPUT, "0,5", Decimal("0.5")),
        (TargetedMetric.THROUGHPUT, "12", Decimal("12")),
    ],
)
def test_a_target_takes_a_decimal_comma_or_point_and_a_percent_for_a_share(
    stream, team, sales, sales_information, leader, metric, typed, saved
):
    response = logged_in(leader).post(
        reverse("metrics:experiments", args=[stream.slug]),
        {
            "cycle": sales.pk,
            **plan_fields(team, targeted_metric=metric, target=typed),
            "column": sales_information.pk,
        },
    )

    assert response.status_code == 302, response.text
    assert Experiment.objects.get().target == saved


@pytest.mark.parametrize(
    ("metric", "typed", "refusal"),
    [
        (TargetedMetric.CONVERSION, "4O", "Enter a number such as 40 or 40.5."),
        (TargetedMetric.CONVERSION, "1e400", "Enter a number such as 40 or 40.5."),
        (TargetedMetric.CONVERSION, "40 5", "Enter a number such as 40 or 40.5."),
        (TargetedMetric.CONVERSION, "", "Enter a number such as 40 or 40.5."),
        (TargetedMetric.CONVERSION, "%", "Enter a number such as 40 or 40.5."),
        (TargetedMetric.CONVERSION, "101", "A share is at most 100%."),
        (TargetedMetric.CONVERSION, "-5", "A target is 0 or more."),
        (
            TargetedMetric.THROUGHPUT,
            "40%",
            "Throughput of the cycle is in cards per week, not in %.",
        ),
        (TargetedMetric.THROUGHPUT, "1,000", "Enter at most 2 decimals and no thousands separator"),
        (TargetedMetric.THROUGHPUT, "40.125", "Enter at most 2 decimals"),
        (TargetedMetric.THROUGHPUT, "12345678901", "That number is too large."),
    ],
)
def test_a_target_that_is_not_a_number_is_refused_on_its_field_as_typed(
    stream, team, sales, sales_information, leader, metric, typed, refusal
):
    response = logged_in(leader).post(
        reverse("metrics:experiments", args=[stream.slug]),
        {
            "cycle": sales.pk,
            **plan_fields(team, targeted_metric=metric, target=typed),
            "column": sales_information.pk,
        },
    )

    assert response.status_code == 400
    target = field_of(response, "target")
    assert escape(refusal) in target
    # The text typed is shown again, to correct.
    if typed:
        assert f'value="{escape(typed)}"' in target
    else:
        assert "value=" not in target
    assert not Experiment.objects.exists()


def test_the_target_is_a_text_field_for_decimals(stream, team, sales, leader):
    experiment = plan(stream, team, sales, target=Decimal("6.50"))
    client = logged_in(leader)

    for url in (
        reverse("metrics:experiments", args=[stream.slug]),
        reverse("metrics:experiment-edit", args=[stream.slug, experiment.pk]),
    ):
        target = field_of(client.get(url), "target")
        assert 'type="text"' in target and 'inputmode="decimal"' in target, url
        assert 'type="number"' not in target
        assert "40.5 or 40,5" in target  # the help text


def test_an_edit_takes_a_decimal_comma(stream, team, sales, leader):
    experiment = plan(stream, team, sales)

    response = logged_in(leader).post(
        reverse("metrics:experiment-edit", args=[stream.slug, experiment.pk]),
        plan_fields(team, target="6,5", version=experiment.version),
    )

    assert response.status_code == 302
    assert Experiment.objects.get(pk=experiment.pk).target == Decimal("6.5")


# --- the hypothesis's length --------------------------------------------------------------


def test_a_hypothesis_too_long_is_refused_in_full_not_cut(stream, team, sales, leader):
    client = logged_in(leader)
    url = reverse("metrics:experiments", args=[stream.slug])
    form = client.get(url)
    too_long = "We believe " + "x" * (HYPOTHESIS_MAX_LENGTH - 10)

    response = client.post(url, {"cycle": sales.pk, **plan_fields(team, hypothesis=too_long)})

    hypothesis = field_of(form, "hypothesis")
    assert "maxlength" not in hypothesis  # the browser would cut a paste without a word
    assert f'data-max-length="{HYPOTHESIS_MAX_LENGTH}"' in hypothesis
    assert f"At most {HYPOTHESIS_MAX_LENGTH:,} characters." in hypothesis
    assert response.status_code == 400
    refused = field_of(response, "hypothesis")
    assert f"at most {HYPOTHESIS_MAX_LENGTH:,} characters; this one has 2,001." in refused
    assert too_long in refused  # kept as typed, to shorten
    assert not Experiment.objects.exists()


def test_a_line_break_counts_once_as_it_is_stored(stream, team, sales, leader):
    # Browsers send a textarea's line breaks as CR LF; the page counts them once.
    hypothesis = "We believe\r\n" + "x" * (HYPOTHESIS_MAX_LENGTH - len("We believe\n"))

    response = logged_in(leader).post(
        reverse("metrics:experiments", args=[stream.slug]),
        {"cycle": sales.pk, **plan_fields(team, hypothesis=hypothesis)},
    )

    assert response.status_code == 302
    saved = Experiment.objects.get().hypothesis
    assert (len(saved), saved[:11]) == (HYPOTHESIS_MAX_LENGTH, "We believe\n")


# --- the steps: GET, confirmations, refusals that say what to do ---------------------------


@pytest.mark.parametrize("step", ["start", "stop", "check", "act"])
def test_a_step_s_url_read_with_get_leads_to_the_experiment(
    stream, team, sales, leader, other_stream, step
):
    experiment = plan(stream, team, sales)
    client = logged_in(leader)

    response = client.get(reverse(f"metrics:experiment-{step}", args=[stream.slug, experiment.pk]))
    elsewhere = client.get(
        reverse(f"metrics:experiment-{step}", args=[other_stream.slug, experiment.pk])
    )

    assert response.status_code == 303
    assert response.url == page_of(stream, experiment)
    assert elsewhere.status_code == 404
    assert Experiment.objects.get(pk=experiment.pk).version == experiment.version


def test_start_and_stop_ask_first_what_they_do(stream, team, sales, leader):
    planned = plan(stream, team, sales)
    started = running(stream, team, sales)
    client = logged_in(leader)

    start_page = client.get(page_of(stream, planned))
    stop_page = client.get(page_of(stream, started))

    assert 'data-confirm="confirm-start"' in start_page.text
    start_dialog = start_page.text.split('<dialog id="confirm-start"', 1)[1].split("</dialog>")[0]
    assert "Start measures the baseline and locks the plan" in start_dialog
    assert 'value="confirm"' in start_dialog and 'value="cancel"' in start_dialog
    assert 'data-confirm="confirm-stop"' in stop_page.text
    stop_dialog = stop_page.text.split('<dialog id="confirm-stop"', 1)[1].split("</dialog>")[0]
    assert "Stop ends the Do today; the Check measures up to yesterday." in stop_dialog
    for page in (start_page, stop_page):
        assert "js/experiments.js" in page.text
        assert "<script>" not in page.text  # the CSP forbids inline scripts


def test_a_start_on_too_little_data_says_what_to_do(stream, team, sales, leader):
    experiment = plan(
        stream,
        team,
        sales,
        targeted_metric=TargetedMetric.CONVERSION,
        column=column_of(stream, SALES, "Information"),
        target=Decimal("40"),
    )

    response = logged_in(leader).post(
        reverse("metrics:experiment-start", args=[stream.slug, experiment.pk]),
        {"version": experiment.version},
        follow=True,
    )

    messages = response.text.split('class="messages"', 1)[1].split("</ul>", 1)[0]
    assert "The baseline has nothing to measure" in messages
    assert "lengthen the window: the baseline grows with it" in messages
    assert "or target a busier column." in messages
    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.PLAN


def test_a_start_on_a_target_equal_to_the_baseline_says_what_it_measured(
    stream, team, sales, leader
):
    # No card in the stream: its throughput is 0 cards a week, every week.
    experiment = plan(stream, team, sales, target=Decimal("0"))

    response = logged_in(leader).post(
        reverse("metrics:experiment-start", args=[stream.slug, experiment.pk]),
        {"version": experiment.version},
        follow=True,
    )

    assert "The target equals the baseline measured, 0 cards per week:" in response.text
    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.PLAN


def test_a_stop_that_finds_it_stopped_meanwhile_says_so_as_news(stream, team, sales, leader):
    experiment = running(stream, team, sales)
    other = UserFactory(first_name="Maria", last_name="Keller")
    MembershipFactory(team=team, user=other, role=Role.TEAM_COORDINATOR)
    pdca_services.experiment_stop(experiment_id=experiment.pk, actor=as_actor(other))

    response = logged_in(leader).post(
        reverse("metrics:experiment-stop", args=[stream.slug, experiment.pk]),
        {"version": experiment.version},  # the page shown before the other stop
        follow=True,
    )

    messages = response.text.split('class="messages"', 1)[1].split("</ul>", 1)[0]
    assert '<li class="message info">It was stopped meanwhile by Maria Keller, ' in messages
    assert "error" not in messages
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stopped_by_id, row.version) == (other.pk, experiment.version + 1)
