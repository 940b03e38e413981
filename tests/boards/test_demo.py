"""The demo data: deterministic, idempotent, and shaped so the dashboards show patterns.

The seed takes tens of seconds, so it runs once for this module inside a transaction
that is rolled back at the end (on PostgreSQL a trigger refuses deleting moves, so
there is no cleaning up by DELETE). Each test runs in a savepoint inside it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from boards.demo import HISTORY_DAYS, STREAMS
from boards.models import Card, CardLoss, CardMove, Column, Handoff, MoveKind, Outcome
from metrics.demo import seed_demo
from tests.support import SALES, column_of
from vsm.models import Channel, LostReason, Membership, Role, ValueStream

pytestmark = pytest.mark.django_db

DEMO_SLUGS = [spec.slug for spec in STREAMS]


def counts() -> dict[str, int]:
    return {
        "streams": ValueStream.objects.count(),
        "cards": Card.objects.count(),
        "moves": CardMove.objects.count(),
        "handoffs": Handoff.objects.count(),
        "users": get_user_model().objects.count(),
        "memberships": Membership.objects.count(),
        "channels": Channel.objects.count(),
    }


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The demo seeded once; yields the first run's report and the counts after it."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            report = seed_demo()
            yield report, counts()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def open_count(stream: ValueStream, cycle_name: str, column_name: str) -> tuple[int, Column]:
    column = column_of(stream, cycle_name, column_name)
    return Card.objects.filter(column=column, outcome=Outcome.OPEN).count(), column


def test_seed_runs_twice_to_the_same_counts(seeded):
    first_report, after_first = seeded

    second_report = seed_demo()

    assert first_report.created is True
    assert second_report.created is False
    assert counts() == after_first
    assert after_first["streams"] == len(STREAMS)
    # Every run prints the same logins, a plain member's among them.
    assert second_report.logins == first_report.logins
    assert ("mfg-member1", "member (awareness)") in second_report.logins


def test_seed_is_big_enough_to_look_real(seeded):
    assert Card.objects.count() >= 400
    for stream in ValueStream.objects.filter(slug__in=DEMO_SLUGS):
        assert Channel.objects.filter(value_stream=stream).count() >= 6
        roles = set(
            Membership.objects.filter(team__value_stream=stream).values_list("role", flat=True)
        )
        assert roles == set(Role.values), stream
        cards = Card.objects.filter(value_stream=stream)
        assert cards.filter(outcome=Outcome.OPEN, is_blocked=True).exists()
        assert cards.filter(outcome=Outcome.WON).exists()
        assert cards.filter(outcome=Outcome.LOST).exists()
        assert Handoff.objects.filter(card__value_stream=stream).count() >= 10
        assert CardMove.objects.filter(value_stream=stream, wip_override__isnull=False).exists()


def test_every_lost_demo_card_says_why_most_with_a_reason_of_its_stream(seeded):
    for stream in ValueStream.objects.filter(slug__in=DEMO_SLUGS):
        losses = CardLoss.objects.filter(move__value_stream=stream)
        reasons = LostReason.objects.filter(value_stream=stream, is_active=True)
        lost = CardMove.objects.filter(value_stream=stream, kind=MoveKind.LOST).count()

        assert reasons.count() >= 5
        assert losses.count() == lost
        assert losses.filter(reason__in=reasons).count() >= 0.85 * lost
        assert losses.exclude(note="").exists()
        # Early losses are mostly prospects who went quiet, later ones are not.
        early = losses.filter(move__to_column__cycle__order=1)
        later = losses.filter(move__to_column__cycle__order=2)
        assert early.filter(reason__name="Went silent").count() > 0.3 * early.count()
        assert later.filter(reason__name="Went silent").count() < 0.3 * later.count()


def test_seed_history_spans_about_six_months(seeded):
    span = CardMove.objects.aggregate(first=Min("moved_at"), last=Max("moved_at"))
    now = timezone.now()

    assert now - span["first"] >= timedelta(days=HISTORY_DAYS - 7)
    assert now - span["first"] <= timedelta(days=HISTORY_DAYS + 1)
    assert now - span["last"] <= timedelta(days=7)
    # Moves are spread over the months, not bunched at one end.
    months = {moved_at.strftime("%Y-%m") for moved_at in CardMove.objects.dates("moved_at", "day")}
    assert len(months) >= 6


def test_seed_history_obeys_the_move_log_rules(seeded):
    # Every card has exactly one entry event and a handoff per handoff move.
    entries = Card.objects.annotate(n=Count("moves", filter=Q(moves__kind=MoveKind.ENTER))).exclude(
        n=1
    )
    assert not entries.exists()
    assert Handoff.objects.count() == CardMove.objects.filter(kind=MoveKind.HANDOFF).count()


@pytest.mark.parametrize("slug", DEMO_SLUGS)
def test_referral_wins_the_most_business(seeded, slug):
    won = (
        Card.objects.filter(value_stream__slug=slug, outcome=Outcome.WON)
        .values("channel__name")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    ranking = [(row["channel__name"], row["n"]) for row in won]

    assert ranking[0][0] == "Referral", ranking
    assert ranking[0][1] > ranking[1][1], ranking


@pytest.mark.parametrize("slug", DEMO_SLUGS)
def test_sales_knowledge_is_the_constraint(seeded, slug):
    stream = ValueStream.objects.get(slug=slug)
    knowledge, knowledge_column = open_count(stream, SALES, "Knowledge")
    wisdom, _ = open_count(stream, SALES, "Wisdom")
    information, _ = open_count(stream, SALES, "Information")

    assert knowledge_column.wip_limit is not None
    assert knowledge >= knowledge_column.wip_limit
    assert wisdom < knowledge
    assert information >= knowledge  # the queue before the constraint


def test_demo_has_experiments_at_each_stage_with_real_checks(seeded):
    from pdca.models import Experiment, ExperimentStage

    stages = set(Experiment.objects.values_list("stage", flat=True))
    assert stages == set(ExperimentStage.values)
    manufacturing = Experiment.objects.filter(cycle__value_stream__slug="manufacturing")
    assert set(manufacturing.values_list("stage", flat=True)) == set(ExperimentStage.values)
    conversion = manufacturing.get(targeted_metric="conversion", cycle__name=SALES)
    assert "from 30% to 40%" in conversion.hypothesis
    assert conversion.column.name == "Information"
    assert conversion.stage == ExperimentStage.CHECK
    assert conversion.measured_value is not None and conversion.baseline is not None
    assert conversion.measured_cards >= 10
    # Windows lie in the demo history; a running one is running today.
    oldest = timezone.now().date() - timedelta(days=HISTORY_DAYS)
    assert all(e.window_start > oldest for e in Experiment.objects.all())
    assert any(e.is_running for e in Experiment.objects.all())
