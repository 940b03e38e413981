"""Project plumbing: the home redirect, the health check, login, and the admin site."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse

from api.models import ApiToken
from api.services import api_token_create
from boards.models import Card, CardMove, Column, Handoff
from boards.services import (
    DEFAULT_COLUMNS,
    DEFAULT_CRITERIA,
    DEFAULT_CYCLES,
    card_create,
    handoff_pass,
)
from metrics.models import ReviewEntry
from pdca.models import ControlPoint, Cycle, Experiment
from tests.factories import PASSWORD, ChannelFactory, ExperimentFactory, UserFactory
from tests.pages import cards_by_column
from tests.support import as_actor, logged_in
from vsm.models import AuditEntry, LostReason, Membership, Role, ValueStream

pytestmark = pytest.mark.django_db


def test_home_asks_anonymous_visitors_to_log_in(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next=/"


def test_home_sends_a_logged_in_user_to_the_stream_list(user):
    response = logged_in(user).get("/")

    assert response.status_code == 302
    assert response.url == reverse("boards:stream-list")


def test_healthz_is_public_and_answers_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response["Cache-Control"]


def test_login_page_is_public_and_logs_in(client, user):
    page = client.get(reverse("login"))
    response = client.post(
        reverse("login"),
        {"username": user.username, "password": PASSWORD},
    )

    assert page.status_code == 200
    assert response.status_code == 302
    assert response.url == reverse("boards:stream-list")
    assert client.get(reverse("boards:stream-list")).status_code == 200


# Their rows are written by their services only (board moves, review entries,
# experiments): the admin shows them read-only.
READ_ONLY = {AuditEntry, CardMove, Experiment, Handoff, ReviewEntry, ApiToken}
REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def one_of_everything(stream, manager):
    """At least one row of every model registered in the admin."""
    card = card_create(
        cycle_id=Column.objects.get(cycle__value_stream=stream, cycle__order=1, order=1).cycle_id,
        actor=as_actor(manager),
        person_name="Ada Keller",
        channel_id=ChannelFactory(value_stream=stream).pk,
    ).card
    control_point = ControlPoint.objects.get(from_cycle__value_stream=stream, from_cycle__order=1)
    handoff_pass(
        card_id=card.pk,
        control_point_id=control_point.pk,
        criteria_met_ids=control_point.criteria.filter(required=True).values_list("pk", flat=True),
        actor=as_actor(manager),
    )
    ExperimentFactory(cycle=control_point.from_cycle)
    Group.objects.create(name="Coordinators")
    LostReason.objects.create(value_stream=stream, name="No budget")
    api_token_create(stream_id=stream.pk, name="Website form", actor=as_actor(manager))
    ReviewEntry.objects.create(
        value_stream=stream, week_start=date(2025, 5, 5), kind="note", text="A note", author=manager
    )


def test_admin_index_loads(superuser):
    response = logged_in(superuser).get(reverse("admin:index"))

    assert response.status_code == 200
    for model in REGISTERED:
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert changelist.encode() in response.content


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_admin_pages_load(superuser, one_of_everything, model):
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"arrange a {model.__name__} in one_of_everything"
    client = logged_in(superuser)

    changelist = client.get(reverse(f"{prefix}_changelist"))
    add = client.get(reverse(f"{prefix}_add"))
    change = client.get(reverse(f"{prefix}_change", args=[obj.pk]))

    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count >= 1
    assert add.status_code == (403 if model in READ_ONLY else 200)
    assert change.status_code == 200
    # Read-only models show their rows without a save button.
    assert (b'name="_save"' in change.content) is (model not in READ_ONLY)


def test_new_stream_from_the_admin_shows_up_on_its_own_board(superuser):
    manager = UserFactory(username="clinic-manager")
    admin_client = logged_in(superuser)

    response = admin_client.post(
        reverse("admin:vsm_valuestream_add"),
        {
            "name": "Private clinics",
            "slug": "clinics",
            "customer_market": "Group practices with 5-80 clinicians",
            "description": "",
            "manager": manager.pk,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    stream = ValueStream.objects.get()
    assert (stream.slug, stream.manager) == ("clinics", manager)
    cycles = list(Cycle.objects.filter(value_stream=stream).order_by("order"))
    assert [cycle.name for cycle in cycles] == list(DEFAULT_CYCLES)
    for cycle in cycles:
        columns = cycle.columns.order_by("order")
        assert [(c.name, c.wip_limit) for c in columns] == [
            (name, limit) for name, _, limit in DEFAULT_COLUMNS
        ]
    control_points = ControlPoint.objects.filter(from_cycle__value_stream=stream)
    assert sorted((cp.from_cycle.name, cp.to_cycle.name) for cp in control_points) == sorted(
        DEFAULT_CRITERIA
    )
    assert Membership.objects.get(user=manager).role == Role.VALUE_STREAM_MANAGER

    # Configured in the admin only: a WIP limit changed on the column's admin page.
    wisdom = Column.objects.get(cycle=cycles[0], name="Wisdom")
    changed = admin_client.post(
        reverse("admin:boards_column_change", args=[wisdom.pk]),
        {
            "cycle": wisdom.cycle_id,
            "name": "Wisdom",
            "knowledge_level": wisdom.knowledge_level,
            "order": wisdom.order,
            "wip_limit": 3,
            "split": "",
        },
    )
    assert changed.status_code == 302

    manager_client = logged_in(manager)
    listing = manager_client.get(reverse("boards:stream-list"))
    board = manager_client.get(reverse("boards:board", args=["clinics"]))

    assert list(listing.context["streams"]) == [stream]
    assert board.status_code == 200
    assert set(cards_by_column(board.content)) == set(
        Column.objects.filter(cycle__value_stream=stream).values_list("pk", flat=True)
    )
    for cycle in cycles:
        heading = re.search(rf'<h2 id="cycle-{cycle.pk}">(.*?)</h2>', board.text, re.S)
        assert heading is not None and cycle.name in heading.group(1)
    assert b"0 cards, WIP limit 3." in board.content


def test_admin_card_actions_close_through_the_service(superuser, stream, manager):
    first_column = Column.objects.get(cycle__value_stream=stream, cycle__order=1, order=1)
    cards = [
        card_create(
            cycle_id=first_column.cycle_id, actor=as_actor(manager), company=f"Company {n}"
        ).card
        for n in range(2)
    ]

    response = logged_in(superuser).post(
        reverse("admin:boards_card_changelist"),
        {"action": "mark_won", "_selected_action": [card.pk for card in cards]},
    )

    assert response.status_code == 302
    assert set(Card.objects.values_list("outcome", flat=True)) == {"won"}
    assert CardMove.objects.filter(kind="won", actor=superuser).count() == 2
