"""The admin writes through the services and refuses what the board refuses.

Each test drives the admin as a superuser would, posting its forms with the test
client, and re-reads the rows. A refusal is a form error that keeps what was typed (or
a message, on a delete or a list edit), never a 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from boards.models import Card, CardMove, Column, Outcome
from boards.services import (
    card_close,
    card_create,
    card_move,
    card_set_blocked,
    handoff_pass,
    value_stream_create,
)
from boards.services.columns import WIP_LIMIT_RULE
from pdca import services as pdca_services
from pdca.models import ControlPoint, Criterion, Cycle, Experiment
from tests.factories import (
    ChannelFactory,
    MembershipFactory,
    TeamFactory,
    UserFactory,
)
from tests.support import TEST_SYSTEM, as_actor
from vsm import services as vsm_services
from vsm.audit import audit_record
from vsm.models import AuditEntry, Channel, Membership, Role, Team, ValueStream

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def other_stream(db) -> ValueStream:
    return value_stream_create(
        actor=TEST_SYSTEM,
        name="Private clinics",
        customer_market="Group practices",
        manager=UserFactory(username="clinic-manager"),
    )


def admin_url(model: type, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _posted(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return [_posted(v) for v in value]
    return value


def change_form_data(response) -> dict[str, Any]:
    """What the change page would post unchanged: its form's values and its inlines'
    existing rows (no extra rows), with their management forms."""
    data: dict[str, Any] = {}

    def add(form) -> None:
        for name in form.fields:
            value = form[name].value()
            if value is False:
                continue  # an unticked checkbox posts nothing
            data[form.add_prefix(name)] = "on" if value is True else _posted(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        data[management.add_prefix("TOTAL_FORMS")] = len(formset.initial_forms)
        for form in formset.initial_forms:
            add(form)
    return data


def form_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, response
    return {
        field: list(errors) for field, errors in response.context["adminform"].form.errors.items()
    }


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def column_of(stream: ValueStream, cycle_order: int, order: int) -> Column:
    return Column.objects.get(cycle__value_stream=stream, cycle__order=cycle_order, order=order)


def new_card(stream: ValueStream, manager, **facts: Any) -> Card:
    cycle = Cycle.objects.get(value_stream=stream, order=1)
    facts.setdefault("company", "Acme Pumps")
    return card_create(cycle_id=cycle.pk, actor=as_actor(manager), **facts).card


# --- columns -------------------------------------------------------------------------


def test_a_column_does_not_move_to_another_streams_cycle(
    admin_client, stream, manager, other_stream
):
    column = column_of(stream, 1, 1)
    card = new_card(stream, manager)
    page = admin_client.get(admin_url(Column, "change", column.pk))
    data = change_form_data(page)
    data["cycle"] = Cycle.objects.get(value_stream=other_stream, order=3).pk

    response = admin_client.post(admin_url(Column, "change", column.pk), data)

    assert "cycle" in form_errors(response)
    assert Column.objects.get(pk=column.pk).cycle_id == column.cycle_id
    assert Card.objects.get(pk=card.pk).column.cycle.value_stream_id == stream.pk


def test_a_column_holding_open_cards_does_not_move_to_another_cycle(admin_client, stream, manager):
    column = column_of(stream, 1, 4)
    card = new_card(stream, manager)
    for order in (2, 3, 4):
        card_move(card_id=card.pk, to_column_id=column_of(stream, 1, order).pk, actor=TEST_SYSTEM)
    page = admin_client.get(admin_url(Column, "change", column.pk))
    data = change_form_data(page)
    data.update(cycle=Cycle.objects.get(value_stream=stream, order=2).pk, order=9, name="Typed")

    response = admin_client.post(admin_url(Column, "change", column.pk), data)

    assert form_errors(response)["cycle"] == [
        "Wisdom still holds 1 card (open, won or lost); its history belongs to its cycle, so it "
        "stays there. Add a new column to the other cycle instead."
    ]
    # What the admin typed is still on the form.
    assert response.context["adminform"].form["name"].value() == "Typed"
    assert Column.objects.filter(pk=column.pk).values_list("cycle_id", "name").get() == (
        column.cycle_id,
        "Wisdom",
    )


def test_an_empty_column_moves_to_another_cycle_of_its_stream(admin_client, stream):
    column = column_of(stream, 1, 4)
    page = admin_client.get(admin_url(Column, "change", column.pk))
    data = change_form_data(page)
    sales = Cycle.objects.get(value_stream=stream, order=2)
    data.update(cycle=sales.pk, order=9, name="Closing")

    response = admin_client.post(admin_url(Column, "change", column.pk), data)

    assert response.status_code == 302
    assert Column.objects.filter(pk=column.pk).values_list("cycle_id", "order").get() == (
        sales.pk,
        9,
    )
    entry = AuditEntry.objects.get(action="column.updated")
    assert (entry.actor_id, entry.data["previous_cycle_id"], entry.data["cycle_id"]) == (
        response.wsgi_request.user.pk,
        column.cycle_id,
        sales.pk,
    )


def test_the_column_list_names_each_columns_stream_and_cycle(admin_client, stream, other_stream):
    response = admin_client.get(admin_url(Column, "changelist"))

    content = response.content.decode()
    assert response.status_code == 200
    for name in (stream.name, other_stream.name):
        assert content.count(f'<td class="field-stream">{name}</td>') == 12
    assert content.count('<td class="field-cycle_name">Collaboration</td>') == 8


def test_deleting_a_column_that_holds_a_won_card_says_so(admin_client, stream, manager):
    card = new_card(stream, manager)
    card_close(card_id=card.pk, outcome=Outcome.WON, actor=TEST_SYSTEM)
    column = card.column
    url = admin_url(Column, "delete", column.pk)

    refusal = (
        "Not deleted: This column still holds 1 card (open, won or lost); nothing was deleted."
    )

    page = admin_client.get(url, follow=True)
    response = admin_client.post(url, {"post": "yes"})

    # Asked to confirm, the admin is sent back to the column, told why.
    assert page.redirect_chain == [(admin_url(Column, "change", column.pk), 302)]
    assert message_texts(page) == [refusal]
    assert b"permission to delete" not in page.content
    assert (response.status_code, response.url) == (302, admin_url(Column, "change", column.pk))
    assert message_texts(response) == [refusal]
    assert Column.objects.filter(pk=column.pk).exists()


def test_deleting_a_column_in_the_move_log_says_so(admin_client, stream, manager):
    card = new_card(stream, manager)
    first = card.column
    card_move(card_id=card.pk, to_column_id=column_of(stream, 1, 2).pk, actor=TEST_SYSTEM)

    response = admin_client.post(admin_url(Column, "delete", first.pk), {"post": "yes"})

    assert message_texts(response) == [
        "Not deleted: This column is in the move log (2 moves); it stays so the metrics keep "
        "their history. Nothing was deleted."
    ]
    assert Column.objects.filter(pk=first.pk).exists()


def test_an_unused_column_is_deleted_through_the_service(admin_client, stream):
    column = column_of(stream, 3, 4)

    response = admin_client.post(admin_url(Column, "delete", column.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Column.objects.filter(pk=column.pk).exists()
    assert AuditEntry.objects.filter(action="column.deleted", target_id=column.pk).exists()


def test_deleting_a_column_from_its_cycles_page_is_refused_on_its_row(
    admin_client, stream, manager
):
    card = new_card(stream, manager)
    cycle = card.column.cycle
    page = admin_client.get(admin_url(Cycle, "change", cycle.pk))
    data = change_form_data(page)
    data["columns-0-DELETE"] = "on"
    data["name"] = "Awareness"

    response = admin_client.post(admin_url(Cycle, "change", cycle.pk), data)

    assert response.status_code == 200
    columns = response.context["inline_admin_formsets"][0].formset
    assert list(columns.non_form_errors()) == [
        "This column still holds 1 card (open, won or lost); nothing was deleted."
    ]
    assert Column.objects.filter(pk=card.column_id).exists()
    # The cycle's own change was rolled back with it.
    assert Cycle.objects.get(pk=cycle.pk).name == "Collaboration"


# --- cards ---------------------------------------------------------------------------


def card_add_data(cycle: Cycle, **fields: Any) -> dict[str, Any]:
    return {
        "cycle": cycle.pk,
        "person_name": "Ada Keller",
        "company": "Acme Pumps",
        "email": "",
        "channel": "",
        "owner": "",
        "estimated_value": "1000",
        "notes": "",
        "wip_override_reason": "",
        **fields,
    }


def test_add_card_enters_the_cycles_first_column(admin_client, stream):
    sales = Cycle.objects.get(value_stream=stream, order=2)

    response = admin_client.post(admin_url(Card, "add"), card_add_data(sales))

    assert response.status_code == 302
    card = Card.objects.get()
    assert card.column == column_of(stream, 2, 1)
    assert card.moves.get().kind == "enter"
    assert AuditEntry.objects.get(action="card.entered").target_id == card.pk


def test_add_card_into_a_full_first_column_is_a_form_error_not_a_500(admin_client, stream, manager):
    first = column_of(stream, 1, 1)
    Column.objects.filter(pk=first.pk).update(wip_limit=1)
    new_card(stream, manager)

    response = admin_client.post(admin_url(Card, "add"), card_add_data(first.cycle))

    assert form_errors(response) == {"wip_override_reason": ["Data is at its WIP limit, 1/1"]}
    assert response.context["adminform"].form["person_name"].value() == "Ada Keller"
    assert Card.objects.count() == 1

    overridden = admin_client.post(
        admin_url(Card, "add"),
        card_add_data(first.cycle, wip_override_reason="Board asked for it"),
    )

    assert overridden.status_code == 302
    assert Card.objects.filter(column=first).count() == 2


def test_add_card_refuses_another_streams_channel_and_owner(admin_client, stream, other_stream):
    cycle = Cycle.objects.get(value_stream=stream, order=1)
    foreign_channel = ChannelFactory(value_stream=other_stream)
    outsider = MembershipFactory(team=other_stream.teams.get()).user

    channel = admin_client.post(
        admin_url(Card, "add"), card_add_data(cycle, channel=foreign_channel.pk)
    )
    owner = admin_client.post(admin_url(Card, "add"), card_add_data(cycle, owner=outsider.pk))

    assert form_errors(channel) == {
        "channel": ["That channel does not belong to this value stream."]
    }
    assert form_errors(owner) == {"owner": ["A card's owner is a member of its value stream."]}
    assert not Card.objects.exists()


def test_the_card_form_offers_and_takes_its_streams_channels_and_members_only(
    admin_client, stream, manager, member, other_stream
):
    card = new_card(stream, manager)
    own_channel = ChannelFactory(value_stream=stream)
    foreign_channel = ChannelFactory(value_stream=other_stream)
    page = admin_client.get(admin_url(Card, "change", card.pk))
    form = page.context["adminform"].form
    assert set(form.fields["channel"].queryset) == {own_channel}
    assert set(form.fields["owner"].queryset) == {manager, member}

    data = change_form_data(page)
    data.update(channel=foreign_channel.pk, owner=other_stream.manager_id)
    response = admin_client.post(admin_url(Card, "change", card.pk), data)

    assert set(form_errors(response)) == {"channel", "owner"}
    row = Card.objects.get(pk=card.pk)
    assert (row.channel_id, row.owner_id, row.version) == (None, None, card.version)


def test_the_card_form_does_not_undo_a_block_made_meanwhile(admin_client, stream, manager):
    card = new_card(stream, manager)
    page = admin_client.get(admin_url(Card, "change", card.pk))
    data = change_form_data(page)
    # Someone blocks the card while the admin edits its notes.
    card_set_blocked(
        card_id=card.pk, blocked=True, reason="Waiting for legal", actor=as_actor(manager)
    )
    data["notes"] = "Met at the trade fair"

    response = admin_client.post(admin_url(Card, "change", card.pk), data)

    assert form_errors(response) == {
        "__all__": [
            "Someone else changed this card meanwhile; nothing was changed. Reload this page "
            "to see what changed."
        ]
    }
    assert response.context["adminform"].form["notes"].value() == "Met at the trade fair"
    row = Card.objects.get(pk=card.pk)
    assert (row.is_blocked, row.blocked_reason, row.notes) == (True, "Waiting for legal", "")


def test_card_edits_and_blocks_go_through_their_services(admin_client, stream, manager, member):
    card = new_card(stream, manager)
    page = admin_client.get(admin_url(Card, "change", card.pk))
    data = change_form_data(page)
    data.update(
        notes="Asked for a trial", owner=member.pk, is_blocked="on", blocked_reason="Budget"
    )

    response = admin_client.post(admin_url(Card, "change", card.pk), data)

    assert response.status_code == 302
    row = Card.objects.get(pk=card.pk)
    assert (row.notes, row.owner_id, row.is_blocked, row.blocked_reason) == (
        "Asked for a trial",
        member.pk,
        True,
        "Budget",
    )
    assert row.version == card.version + 2
    assert list(
        AuditEntry.objects.filter(target_type="card", target_id=card.pk)
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["card.entered", "card.updated", "card.blocked"]


# --- cycles and control points -------------------------------------------------------


def test_a_cycle_takes_an_owning_team_of_its_own_stream_only(admin_client, stream, other_stream):
    cycle = Cycle.objects.get(value_stream=stream, order=1)
    page = admin_client.get(admin_url(Cycle, "change", cycle.pk))
    data = change_form_data(page)
    data["owning_team"] = other_stream.teams.get().pk

    changed = admin_client.post(admin_url(Cycle, "change", cycle.pk), data)
    added = admin_client.post(
        admin_url(Cycle, "add"),
        {
            "value_stream": stream.pk,
            "name": "Referral",
            "order": 4,
            "owning_team": other_stream.teams.get().pk,
            "columns-TOTAL_FORMS": 0,
            "columns-INITIAL_FORMS": 0,
            "columns-MIN_NUM_FORMS": 0,
            "columns-MAX_NUM_FORMS": 1000,
        },
    )

    assert "owning_team" in form_errors(changed)
    assert form_errors(added) == {
        "owning_team": ["That team is not one of this value stream's teams."]
    }
    assert Cycle.objects.get(pk=cycle.pk).owning_team.value_stream_id == stream.pk
    assert not Cycle.objects.filter(name="Referral").exists()


def criteria_management(total: int = 0) -> dict[str, int]:
    return {
        "criteria-TOTAL_FORMS": total,
        "criteria-INITIAL_FORMS": 0,
        "criteria-MIN_NUM_FORMS": 0,
        "criteria-MAX_NUM_FORMS": 1000,
    }


def fourth_cycle(stream: ValueStream) -> Cycle:
    """A cycle after Repeat/Upsell, with no control point leading to it yet."""
    return pdca_services.cycle_create(stream_id=stream.pk, name="Referral", actor=TEST_SYSTEM)


def test_a_control_point_joins_cycles_and_a_team_of_one_stream(admin_client, stream, other_stream):
    cycles = list(Cycle.objects.filter(value_stream=stream).order_by("order"))
    referral = fourth_cycle(stream)
    foreign_cycle = Cycle.objects.get(value_stream=other_stream, order=1)
    foreign_team = other_stream.teams.get()

    across = admin_client.post(
        admin_url(ControlPoint, "add"),
        {"from_cycle": cycles[2].pk, "to_cycle": foreign_cycle.pk, "name": "", "receiving_team": ""}
        | criteria_management(),
    )
    other_team = admin_client.post(
        admin_url(ControlPoint, "add"),
        {
            "from_cycle": cycles[2].pk,
            "to_cycle": referral.pk,
            "name": "Referred",
            "receiving_team": foreign_team.pk,
        }
        | criteria_management(),
    )

    assert form_errors(across) == {
        "to_cycle": ["That cycle is not one of this value stream's cycles."]
    }
    assert form_errors(other_team) == {
        "receiving_team": ["That team is not one of this value stream's teams."]
    }
    assert not ControlPoint.objects.filter(from_cycle=cycles[2]).exists()


def test_a_control_point_and_its_criteria_are_saved_through_the_services(admin_client, stream):
    cycles = list(Cycle.objects.filter(value_stream=stream).order_by("order"))
    referral = fourth_cycle(stream)
    team = Team.objects.get(value_stream=stream)

    response = admin_client.post(
        admin_url(ControlPoint, "add"),
        {
            "from_cycle": cycles[2].pk,
            "to_cycle": referral.pk,
            "name": "Referred",
            "receiving_team": team.pk,
            "criteria-0-order": 1,
            "criteria-0-text": "Happy to refer others",
            "criteria-0-required": "on",
        }
        | criteria_management(total=1),
    )

    assert response.status_code == 302
    control_point = ControlPoint.objects.get(from_cycle=cycles[2])
    assert list(control_point.criteria.values_list("text", "required")) == [
        ("Happy to refer others", True)
    ]
    assert [e.action for e in AuditEntry.objects.filter(stream_id=stream.pk).order_by("id")][
        -2:
    ] == ["control_point.created", "criterion.created"]


# --- streams, teams and memberships --------------------------------------------------


def test_changing_a_streams_manager_leaves_one_manager(admin_client, stream, manager, team):
    successor = UserFactory(username="successor")
    page = admin_client.get(admin_url(ValueStream, "change", stream.pk))
    data = change_form_data(page)
    data["manager"] = successor.pk

    response = admin_client.post(admin_url(ValueStream, "change", stream.pk), data)

    assert response.status_code == 302
    assert ValueStream.objects.get(pk=stream.pk).manager_id == successor.pk
    managers = Membership.objects.filter(team__value_stream=stream, role=Role.VALUE_STREAM_MANAGER)
    assert list(managers.values_list("user_id", "team_id")) == [(successor.pk, team.pk)]
    assert Membership.objects.get(user=manager, team=team).role == Role.MEMBER


def test_the_manager_role_is_refused_to_others_on_the_teams_page(
    admin_client, stream, manager, member, team
):
    page = admin_client.get(admin_url(Team, "change", team.pk))
    data = change_form_data(page)
    rows = page.context["inline_admin_formsets"][0].formset.initial_forms
    index = next(i for i, form in enumerate(rows) if form.instance.user_id == member.pk)
    data[f"memberships-{index}-role"] = Role.VALUE_STREAM_MANAGER

    response = admin_client.post(admin_url(Team, "change", team.pk), data)

    assert response.status_code == 200
    row = response.context["inline_admin_formsets"][0].formset.forms[index]
    assert "role" in row.errors
    assert Membership.objects.get(user=member, team=team).role == Role.MEMBER


def test_deleting_a_team_that_owns_cycles_says_so(admin_client, stream, team):
    response = admin_client.post(admin_url(Team, "delete", team.pk), {"post": "yes"})

    assert message_texts(response) == [
        f"Not deleted: {team.name} owns 3 cycles: give them to another team first."
    ]
    assert Team.objects.filter(pk=team.pk).exists()


def test_a_team_is_added_with_its_memberships_through_the_services(admin_client, stream, user):
    response = admin_client.post(
        admin_url(Team, "add"),
        {
            "value_stream": stream.pk,
            "name": "Events",
            "memberships-TOTAL_FORMS": 1,
            "memberships-INITIAL_FORMS": 0,
            "memberships-MIN_NUM_FORMS": 0,
            "memberships-MAX_NUM_FORMS": 1000,
            "memberships-0-user": user.pk,
            "memberships-0-role": Role.TEAM_LEADER,
        },
    )

    assert response.status_code == 302
    team = Team.objects.get(name="Events")
    assert list(team.memberships.values_list("user_id", "role")) == [(user.pk, Role.TEAM_LEADER)]
    assert {"team.created", "membership.added"} <= set(
        AuditEntry.objects.filter(stream_id=stream.pk).values_list("action", flat=True)
    )


def test_a_team_whose_membership_is_refused_is_not_added_either(admin_client, stream, user):
    response = admin_client.post(
        admin_url(Team, "add"),
        {
            "value_stream": stream.pk,
            "name": "Events",
            "memberships-TOTAL_FORMS": 1,
            "memberships-INITIAL_FORMS": 0,
            "memberships-MIN_NUM_FORMS": 0,
            "memberships-MAX_NUM_FORMS": 1000,
            "memberships-0-user": user.pk,
            "memberships-0-role": Role.VALUE_STREAM_MANAGER,
        },
    )

    row = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert row.errors["role"] == [
        "Only the stream's manager holds the value stream manager role: change the "
        "stream's manager instead."
    ]
    assert response.context["adminform"].form["name"].value() == "Events"
    assert not Team.objects.filter(name="Events").exists()
    assert not AuditEntry.objects.filter(action="team.created").exists()


def test_a_taken_channel_name_is_a_form_error(admin_client, stream):
    ChannelFactory(value_stream=stream, name="Referral")
    web = ChannelFactory(value_stream=stream, name="Web form")

    added = admin_client.post(
        admin_url(Channel, "add"),
        {"value_stream": stream.pk, "name": "Referral", "kind": "referral", "is_active": "on"},
    )
    renamed = admin_client.post(
        admin_url(Channel, "change", web.pk),
        {"name": "Referral", "kind": "web_form", "is_active": "on"},
    )

    assert form_errors(added) == {
        "__all__": ["Channel with this Value stream and Name already exists."]
    }
    assert form_errors(renamed) == {"name": ["A channel “Referral” already exists here."]}
    assert Channel.objects.get(pk=web.pk).name == "Web form"


def test_channels_are_deactivated_not_deleted(admin_client, stream):
    channel = ChannelFactory(value_stream=stream)

    response = admin_client.post(
        admin_url(Channel, "changelist"),
        {"action": "deactivate_channels", "_selected_action": [channel.pk]},
    )

    assert response.status_code == 302
    assert Channel.objects.get(pk=channel.pk).is_active is False
    assert AuditEntry.objects.get(action="channel.deactivated").target_id == channel.pk
    assert admin_client.get(admin_url(Channel, "delete", channel.pk)).status_code == 403


def test_staff_who_do_not_steer_the_stream_are_refused_and_recorded(stream, member):
    member.is_staff = True
    member.save()
    member.user_permissions.set(
        Permission.objects.filter(codename__in=["view_column", "change_column"])
    )
    client = Client()
    client.force_login(member)
    column = column_of(stream, 1, 2)
    page = client.get(admin_url(Column, "change", column.pk))
    data = change_form_data(page)
    data["wip_limit"] = 99

    response = client.post(admin_url(Column, "change", column.pk), data)

    assert form_errors(response) == {
        "__all__": ["Only an admin or the value stream manager may change columns."]
    }
    assert Column.objects.get(pk=column.pk).wip_limit == column.wip_limit
    refusal = AuditEntry.objects.get(refused_code="permission_refused")
    assert (refusal.action, refusal.actor_id, refusal.stream_id) == (
        "admin.column",
        member.pk,
        stream.pk,
    )


# --- the audit log -------------------------------------------------------------------


def test_the_audit_log_is_read_only_and_filterable(admin_client, stream, manager):
    new_card(stream, manager)
    changelist = admin_url(AuditEntry, "changelist")

    everything = admin_client.get(changelist)
    filtered = admin_client.get(
        changelist,
        {"stream_id": stream.pk, "actor_kind": "user", "action": "card.entered", "refused": "no"},
    )
    entry = AuditEntry.objects.get(action="card.entered")
    detail = admin_client.get(admin_url(AuditEntry, "change", entry.pk))

    assert everything.status_code == filtered.status_code == detail.status_code == 200
    assert filtered.context["cl"].result_count == 1
    assert admin_client.get(admin_url(AuditEntry, "add")).status_code == 403
    assert b'name="_save"' not in detail.content
    assert admin_client.post(admin_url(AuditEntry, "delete", entry.pk)).status_code == 403
    assert "vsm-manager" in everything.content.decode()  # the actor's label


# --- finding 1: the audit log's stream filter, and the lists' date drill-down -------


@pytest.mark.parametrize("crafted", ["²", "abc", "0", "9223372036854775808", "1e3"])
def test_the_audit_logs_stream_filter_reads_ids_only(admin_client, stream, other_stream, crafted):
    changelist = admin_url(AuditEntry, "changelist")
    everything = AuditEntry.objects.count()

    ignored = admin_client.get(changelist, {"stream_id": crafted})
    filtered = admin_client.get(changelist, {"stream_id": stream.pk})

    assert ignored.status_code == filtered.status_code == 200
    assert ignored.context["cl"].result_count == everything
    assert (
        filtered.context["cl"].result_count
        == AuditEntry.objects.filter(stream_id=stream.pk).count()
    )
    assert filtered.context["cl"].result_count < everything


@pytest.mark.parametrize(
    ("model", "query", "kept"),
    [
        (AuditEntry, "at__year=99999999999", ""),
        (AuditEntry, "at__year=2026&at__month=2&at__day=99999999999999&refused=no", "refused=no"),
        (CardMove, "moved_at__year=2026&moved_at__month=99999999999999&kind=won", "kind=won"),
    ],
)
def test_a_date_no_calendar_holds_is_dropped_from_a_list_with_a_message(
    admin_client, stream, model, query, kept
):
    url = admin_url(model, "changelist")

    response = admin_client.get(f"{url}?{query}")

    assert response.status_code == 302
    assert response.url == (f"{url}?{kept}" if kept else url)
    assert message_texts(response) == [
        "That date is not in the calendar: the list is shown for every date."
    ]
    assert admin_client.get(response.url).status_code == 200


# --- finding 2: crafted selections of list actions, and crafted list-edit rows ------

CRAFTED_IDS = ["abc", "²", "9223372036854775808", "0", "-1"]


@pytest.mark.parametrize("crafted", CRAFTED_IDS)
def test_a_crafted_selection_is_refused_by_every_admin_with_a_message(
    admin_client, stream, manager, crafted
):
    card = new_card(stream, manager)
    channel = ChannelFactory(value_stream=stream)
    someone = UserFactory()
    group = Group.objects.create(name="Coaches")
    posts = [
        # With "index" (the action bar's button) and without (a confirmation page's post).
        (Card, {"action": "mark_won", "index": 0, "_selected_action": [card.pk, crafted]}),
        (Channel, {"action": "deactivate_channels", "_selected_action": [crafted]}),
        (get_user_model(), {"action": "delete_selected", "_selected_action": [crafted]}),
        (Group, {"action": "delete_selected", "index": 0, "_selected_action": [crafted]}),
    ]

    for model, data in posts:
        response = admin_client.post(admin_url(model, "changelist"), data, follow=True)

        assert response.redirect_chain == [(admin_url(model, "changelist"), 302)]
        assert message_texts(response) == [
            "Nothing was done: the selection names rows that do not exist. Select the rows again."
        ]
    assert Card.objects.get(pk=card.pk).outcome == Outcome.OPEN
    assert Channel.objects.get(pk=channel.pk).is_active
    assert get_user_model().objects.filter(pk=someone.pk).exists()
    assert Group.objects.filter(pk=group.pk).exists()


def test_a_valid_selection_still_acts(admin_client, stream, manager):
    card = new_card(stream, manager)

    response = admin_client.post(
        admin_url(Card, "changelist"),
        {"action": "mark_won", "index": 0, "_selected_action": [card.pk]},
    )

    assert response.status_code == 302
    assert Card.objects.get(pk=card.pk).outcome == Outcome.WON


def column_list_edit(rows: dict[int, Any], **extra: Any) -> dict[str, Any]:
    """The column list's bulk edit of ``rows`` ({column id: WIP limit typed})."""
    data: dict[str, Any] = {
        "form-TOTAL_FORMS": len(rows),
        "form-INITIAL_FORMS": len(rows),
        "form-MIN_NUM_FORMS": 0,
        "form-MAX_NUM_FORMS": 1000,
        "_save": "Save",
    }
    for index, (column_id, wip_limit) in enumerate(rows.items()):
        data[f"form-{index}-id"] = column_id
        data[f"form-{index}-wip_limit"] = wip_limit
    return data | extra


@pytest.mark.parametrize("crafted", CRAFTED_IDS)
def test_a_crafted_row_of_the_column_lists_edit_is_refused_with_a_message(
    admin_client, stream, crafted
):
    column = column_of(stream, 1, 2)

    response = admin_client.post(
        admin_url(Column, "changelist"), column_list_edit({column.pk: 3, crafted: 4})
    )

    assert response.status_code == 302
    assert message_texts(response) == [
        "Nothing was changed: the list names rows that do not exist. Reload the page and edit "
        "it again."
    ]
    assert Column.objects.get(pk=column.pk).wip_limit == column.wip_limit


# --- finding 3: a column's history stays in its cycle --------------------------------


def test_a_column_with_closed_cards_or_moves_does_not_move_to_another_cycle(
    admin_client, stream, manager
):
    card = new_card(stream, manager)
    knowledge, data_column = column_of(stream, 1, 3), column_of(stream, 1, 1)
    card_move(card_id=card.pk, to_column_id=knowledge.pk, actor=TEST_SYSTEM)
    card_close(card_id=card.pk, outcome=Outcome.WON, actor=TEST_SYSTEM)
    sales = Cycle.objects.get(value_stream=stream, order=2)
    stays = (
        "its history belongs to its cycle, so it stays there. Add a new column to the other "
        "cycle instead."
    )

    for column, refusal in [
        (knowledge, f"Knowledge still holds 1 card (open, won or lost); {stays}"),
        (data_column, f"Data is in the move log (2 moves); {stays}"),
    ]:
        page = admin_client.get(admin_url(Column, "change", column.pk))
        data = change_form_data(page)
        data.update(cycle=sales.pk, order=9, name="Closing")

        response = admin_client.post(admin_url(Column, "change", column.pk), data)

        assert form_errors(response) == {"cycle": [refusal]}
        row = Column.objects.get(pk=column.pk)
        assert (row.cycle_id, row.order) == (column.cycle_id, column.order)
    assert not AuditEntry.objects.filter(action="column.updated").exists()


# --- finding 4: a criterion that handoffs ticked -------------------------------------


def test_a_criterion_ticked_in_a_handoff_is_reworded_but_not_deleted(admin_client, stream, manager):
    control_point = ControlPoint.objects.get(from_cycle__value_stream=stream, from_cycle__order=1)
    ticked = control_point.criteria.order_by("order").first()
    card = new_card(stream, manager)
    handoff_pass(
        card_id=card.pk,
        control_point_id=control_point.pk,
        criteria_met_ids=control_point.criteria.values_list("pk", flat=True),
        actor=as_actor(manager),
    )
    url = admin_url(ControlPoint, "change", control_point.pk)
    page = admin_client.get(url)
    rows = page.context["inline_admin_formsets"][0].formset.initial_forms
    index = next(i for i, form in enumerate(rows) if form.instance.pk == ticked.pk)
    data = change_form_data(page)

    deleted = admin_client.post(url, data | {f"criteria-{index}-DELETE": "on"})

    assert deleted.status_code == 200
    assert list(deleted.context["inline_admin_formsets"][0].formset.non_form_errors()) == [
        "“Customer's problem understood” was ticked in 1 handoff: it stays so the handoff log "
        "keeps what was checked. Reword it or make it optional instead."
    ]
    assert Criterion.objects.filter(pk=ticked.pk).exists()

    reworded = admin_client.post(
        url, data | {f"criteria-{index}-text": "Customer's problem understood, in writing"}
    )

    assert reworded.status_code == 302
    assert Criterion.objects.get(pk=ticked.pk).text == "Customer's problem understood, in writing"
    assert card.handoffs.get().criteria_met.filter(pk=ticked.pk).exists()


# --- finding 5: control points lead to the next cycle --------------------------------


@pytest.mark.parametrize(
    ("from_order", "to_order", "refusal"),
    [
        (
            1,
            3,
            "A control point leads from a cycle to the next one: after Collaboration comes "
            "Sales/Buying.",
        ),
        (
            3,
            1,
            "Repeat/Upsell is the last cycle of this value stream: no control point leads on "
            "from it.",
        ),
        (
            2,
            1,
            "A control point leads from a cycle to the next one: after Sales/Buying comes "
            "Repeat/Upsell.",
        ),
    ],
)
def test_a_control_point_that_skips_or_reverses_cycles_is_refused(
    admin_client, stream, from_order, to_order, refusal
):
    cycles = {c.order: c for c in Cycle.objects.filter(value_stream=stream)}
    before = ControlPoint.objects.count()

    response = admin_client.post(
        admin_url(ControlPoint, "add"),
        {
            "from_cycle": cycles[from_order].pk,
            "to_cycle": cycles[to_order].pk,
            "name": "Shortcut",
            "receiving_team": "",
        }
        | criteria_management(),
    )

    assert form_errors(response) == {"to_cycle": [refusal]}
    assert ControlPoint.objects.count() == before


def test_a_control_points_cycles_and_the_cycles_order_keep_it_leading_to_the_next_cycle(
    admin_client, stream
):
    collaboration = Cycle.objects.get(value_stream=stream, order=1)
    control_point = ControlPoint.objects.get(from_cycle=collaboration)
    page = admin_client.get(admin_url(ControlPoint, "change", control_point.pk))
    data = change_form_data(page)
    data["to_cycle"] = Cycle.objects.get(value_stream=stream, order=3).pk

    skipped = admin_client.post(admin_url(ControlPoint, "change", control_point.pk), data)
    page = admin_client.get(admin_url(Cycle, "change", collaboration.pk))
    reordered = admin_client.post(
        admin_url(Cycle, "change", collaboration.pk), change_form_data(page) | {"order": 9}
    )

    assert form_errors(skipped) == {
        "to_cycle": [
            "A control point leads from a cycle to the next one: after Collaboration comes "
            "Sales/Buying."
        ]
    }
    assert form_errors(reordered) == {
        "order": [
            "With Collaboration at number 9, the control point Collaboration -> Sales/Buying "
            "would no longer lead to the next cycle: a control point leads from a cycle to the "
            "next one. Change or delete the control point first."
        ]
    }
    assert ControlPoint.objects.get(pk=control_point.pk).to_cycle.order == 2
    assert Cycle.objects.get(pk=collaboration.pk).order == 1


# --- finding 6: the database's rules, in words ---------------------------------------


def test_every_rule_of_the_database_has_words_for_a_form():
    unworded = [
        f"{model.__name__}: {constraint.name}"
        for app in ("vsm", "pdca", "boards")
        for model in apps.get_app_config(app).get_models()
        for constraint in model._meta.constraints
        if (
            isinstance(constraint, models.CheckConstraint)
            or (isinstance(constraint, models.UniqueConstraint) and constraint.condition)
        )
        and constraint.violation_error_message == constraint.default_violation_error_message
    ]

    assert unworded == []


def test_the_card_form_says_the_cards_rules_in_words(admin_client, stream, manager):
    card = new_card(stream, manager)
    page = admin_client.get(admin_url(Card, "change", card.pk))
    data = change_form_data(page) | {"person_name": "", "company": "", "estimated_value": "-5"}

    response = admin_client.post(admin_url(Card, "change", card.pk), data)

    assert form_errors(response) == {
        "__all__": [
            "A prospect needs a person or a company.",
            "An estimated value is zero or more.",
        ]
    }
    row = Card.objects.get(pk=card.pk)
    assert (row.company, row.estimated_value, row.version) == ("Acme Pumps", 0, card.version)


def test_the_control_point_form_says_its_rules_in_words(admin_client, stream):
    cycle = Cycle.objects.get(value_stream=stream, order=1)

    looped = admin_client.post(
        admin_url(ControlPoint, "add"),
        {"from_cycle": cycle.pk, "to_cycle": cycle.pk, "name": "", "receiving_team": ""}
        | criteria_management(),
    )

    assert form_errors(looped) == {"__all__": ["A control point leads from one cycle to another."]}
    assert not ControlPoint.objects.filter(to_cycle=cycle).exists()


def test_experiments_cannot_be_added_in_the_admin(admin_client):
    """Experiments are written by pdca.services only (tests/pdca/test_experiments.py):
    the admin shows them read-only."""
    assert admin_client.get(admin_url(Experiment, "add")).status_code == 403


# --- finding 7: WIP limits in the column list and forms ------------------------------


@pytest.mark.parametrize("typed", ["100000", "-3", "0"])
def test_an_invalid_wip_limit_in_the_column_list_shows_on_its_row_as_typed(
    admin_client, stream, typed
):
    first, second = column_of(stream, 1, 2), column_of(stream, 1, 3)

    response = admin_client.post(
        admin_url(Column, "changelist"), column_list_edit({first.pk: 3, second.pk: typed})
    )

    assert response.status_code == 200
    rows = {form.instance.pk: form for form in response.context["cl"].formset.forms}
    assert rows[second.pk].errors == {"wip_limit": [WIP_LIMIT_RULE]}
    assert WIP_LIMIT_RULE == "A WIP limit is empty or a whole number from 1 to 10,000."
    assert (rows[first.pk]["wip_limit"].value(), rows[second.pk]["wip_limit"].value()) == (
        "3",
        typed,
    )
    assert Column.objects.get(pk=first.pk).wip_limit == first.wip_limit
    assert Column.objects.get(pk=second.pk).wip_limit == second.wip_limit


def test_a_wip_limit_out_of_range_on_the_column_and_cycle_pages_says_the_rule(admin_client, stream):
    column = column_of(stream, 1, 2)
    page = admin_client.get(admin_url(Column, "change", column.pk))
    on_column = admin_client.post(
        admin_url(Column, "change", column.pk), change_form_data(page) | {"wip_limit": "-3"}
    )
    page = admin_client.get(admin_url(Cycle, "change", column.cycle_id))
    on_cycle = admin_client.post(
        admin_url(Cycle, "change", column.cycle_id),
        change_form_data(page) | {"columns-1-wip_limit": "100000"},
    )

    assert form_errors(on_column) == {"wip_limit": [WIP_LIMIT_RULE]}
    row = on_cycle.context["inline_admin_formsets"][0].formset.forms[1]
    assert (row.instance.pk, row.errors) == (column.pk, {"wip_limit": [WIP_LIMIT_RULE]})
    assert Column.objects.get(pk=column.pk).wip_limit == column.wip_limit


def test_a_refused_row_of_the_column_lists_edit_shows_on_its_row_as_typed(stream, member):
    member.is_staff = True
    member.save()
    member.user_permissions.set(
        Permission.objects.filter(codename__in=["view_column", "change_column"])
    )
    client = Client()
    client.force_login(member)
    column = column_of(stream, 1, 2)

    response = client.post(admin_url(Column, "changelist"), column_list_edit({column.pk: 7}))

    assert response.status_code == 200
    row = response.context["cl"].formset.forms[0]
    assert row.non_field_errors() == [
        "Only an admin or the value stream manager may change columns."
    ]
    assert row["wip_limit"].value() == "7"
    assert Column.objects.get(pk=column.pk).wip_limit == column.wip_limit
    assert AuditEntry.objects.get(refused_code="permission_refused").action == "admin.column"


# --- finding 8: names that differ only in case ---------------------------------------


def test_names_that_differ_only_in_case_are_refused(admin_client, stream):
    TeamFactory(value_stream=stream, name="Sales")
    ChannelFactory(value_stream=stream, name="Referral")
    collaboration = Cycle.objects.get(value_stream=stream, order=1)
    counts = (Team.objects.count(), Channel.objects.count(), Cycle.objects.count())
    columns = Column.objects.count()
    no_rows = {"TOTAL_FORMS": 0, "INITIAL_FORMS": 0, "MIN_NUM_FORMS": 0, "MAX_NUM_FORMS": 1000}

    team = admin_client.post(
        admin_url(Team, "add"),
        {"value_stream": stream.pk, "name": "sales"}
        | {f"memberships-{k}": v for k, v in no_rows.items()},
    )
    channel = admin_client.post(
        admin_url(Channel, "add"),
        {"value_stream": stream.pk, "name": "referral", "kind": "referral", "is_active": "on"},
    )
    cycle = admin_client.post(
        admin_url(Cycle, "add"),
        {"value_stream": stream.pk, "name": "COLLABORATION", "order": 4, "owning_team": ""}
        | {f"columns-{k}": v for k, v in no_rows.items()},
    )
    column = admin_client.post(
        admin_url(Column, "add"),
        {
            "cycle": collaboration.pk,
            "name": "data",
            "knowledge_level": "data",
            "order": 9,
            "wip_limit": "",
            "split": "",
        },
    )

    assert form_errors(team) == {"name": ["A team “Sales” already exists here."]}
    assert form_errors(channel) == {"name": ["A channel “Referral” already exists here."]}
    assert form_errors(cycle) == {"name": ["A cycle “Collaboration” already exists here."]}
    assert form_errors(column) == {"name": ["A column “Data” already exists here."]}
    assert (Team.objects.count(), Channel.objects.count(), Cycle.objects.count()) == counts
    assert Column.objects.count() == columns


# --- finding 9: the audit log's streams by name; update rows only for real updates ---


def test_the_audit_log_names_each_rows_stream_in_one_lookup_per_page(
    admin_client, stream, other_stream, django_assert_max_num_queries
):
    changelist = admin_url(AuditEntry, "changelist")
    admin_client.get(changelist)
    with CaptureQueriesContext(connection) as few_rows:
        admin_client.get(changelist)
    for n in range(30):
        audit_record(
            actor=TEST_SYSTEM,
            action="test.logged",
            stream_id=[stream.pk, other_stream.pk, 987654][n % 3],
        )

    with django_assert_max_num_queries(len(few_rows.captured_queries)):
        response = admin_client.get(changelist)

    content = response.content.decode()
    assert content.count('<td class="field-stream">Industrial pumps</td>') == 11
    assert content.count('<td class="field-stream">Private clinics</td>') == 11
    assert content.count('<td class="field-stream">Stream 987654 (deleted)</td>') == 10
    # The filter still takes the stream's id.
    assert admin_client.get(changelist, {"stream_id": 987654}).context["cl"].result_count == 10


def test_saving_a_parent_whose_inline_rows_alone_changed_records_no_update_of_it(
    admin_client, stream
):
    collaboration = Cycle.objects.get(value_stream=stream, order=1)
    control_point = ControlPoint.objects.get(from_cycle=collaboration)
    channel = ChannelFactory(value_stream=stream)
    page = admin_client.get(admin_url(Cycle, "change", collaboration.pk))
    cycle = admin_client.post(
        admin_url(Cycle, "change", collaboration.pk),
        change_form_data(page) | {"columns-1-wip_limit": 12},
    )
    page = admin_client.get(admin_url(ControlPoint, "change", control_point.pk))
    criteria = admin_client.post(
        admin_url(ControlPoint, "change", control_point.pk),
        change_form_data(page) | {"criteria-0-text": "Customer's problem written down"},
    )
    page = admin_client.get(admin_url(Channel, "change", channel.pk))
    unchanged = admin_client.post(admin_url(Channel, "change", channel.pk), change_form_data(page))

    assert cycle.status_code == criteria.status_code == unchanged.status_code == 302
    assert column_of(stream, 1, 2).wip_limit == 12
    actions = list(AuditEntry.objects.filter(actor_kind="user").values_list("action", flat=True))
    assert sorted(actions) == ["column.updated", "criterion.updated"]


# --- finding 10: inline rows that are no longer what the page showed -----------------


def test_an_inline_row_deleted_meanwhile_says_so_and_is_not_made_anew(admin_client, stream):
    control_point = ControlPoint.objects.get(from_cycle__value_stream=stream, from_cycle__order=1)
    url = admin_url(ControlPoint, "change", control_point.pk)
    page = admin_client.get(url)
    gone = page.context["inline_admin_formsets"][0].formset.initial_forms[2].instance
    data = change_form_data(page)
    pdca_services.criterion_delete(criterion_id=gone.pk, actor=TEST_SYSTEM)  # someone else

    edited = admin_client.post(url, data | {"criteria-2-text": "Decision maker met"})

    assert edited.status_code == 200
    row = edited.context["inline_admin_formsets"][0].formset.forms[2]
    assert row.non_field_errors() == [
        "This row was removed meanwhile (someone else deleted it); nothing was saved. Reload "
        "this page to see the rows as they are now."
    ]
    assert not Criterion.objects.filter(text="Decision maker met").exists()
    assert control_point.criteria.count() == 2

    # Deleting it as well is what happened already: the page saves.
    deleted = admin_client.post(url, data | {"criteria-2-DELETE": "on"})

    assert deleted.status_code == 302
    assert control_point.criteria.count() == 2


def test_a_membership_removed_meanwhile_says_so(admin_client, stream, team, member):
    url = admin_url(Team, "change", team.pk)
    page = admin_client.get(url)
    rows = page.context["inline_admin_formsets"][0].formset.initial_forms
    index = next(i for i, form in enumerate(rows) if form.instance.user_id == member.pk)
    data = change_form_data(page)
    vsm_services.membership_remove(
        membership_id=rows[index].instance.pk, actor=TEST_SYSTEM
    )  # someone else

    response = admin_client.post(url, data | {f"memberships-{index}-role": Role.TEAM_LEADER})

    assert response.status_code == 200
    row = response.context["inline_admin_formsets"][0].formset.forms[index]
    assert row.non_field_errors() == [
        "This row was removed meanwhile (someone else deleted it); nothing was saved. Reload "
        "this page to see the rows as they are now."
    ]
    assert not Membership.objects.filter(user=member).exists()


def test_a_crafted_row_of_another_parent_is_refused_not_made_anew(admin_client, stream):
    first, second = ControlPoint.objects.filter(from_cycle__value_stream=stream).order_by(
        "from_cycle__order"
    )
    foreign = second.criteria.order_by("order").first()
    url = admin_url(ControlPoint, "change", first.pk)
    data = change_form_data(admin_client.get(url))
    data |= {"criteria-0-id": foreign.pk, "criteria-0-text": "Hijacked"}

    response = admin_client.post(url, data)

    assert response.status_code == 200
    row = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert row.non_field_errors() == [
        "This row is not one of this page's rows; nothing was saved. Reload this page to see "
        "its rows."
    ]
    assert Criterion.objects.get(pk=foreign.pk).text == "First purchase made"
    assert not Criterion.objects.filter(text="Hijacked").exists()
    assert (first.criteria.count(), second.criteria.count()) == (3, 3)


# --- finding 11: the manager's role membership ---------------------------------------


def change_manager(client: Client, stream: ValueStream, **changes: Any):
    url = admin_url(ValueStream, "change", stream.pk)
    return client.post(url, change_form_data(client.get(url)) | changes)


def test_a_new_manager_holds_the_role_in_their_own_team_and_gets_their_role_back(
    admin_client, stream, manager, team
):
    sales = TeamFactory(value_stream=stream, name="Sales")
    successor = MembershipFactory(team=sales, role=Role.TEAM_LEADER).user

    handed = change_manager(admin_client, stream, manager=successor.pk)

    assert handed.status_code == 302
    assert vsm_managers(stream) == [(successor.pk, sales.pk)]
    assert not Membership.objects.filter(user=successor, team=team).exists()
    assert Membership.objects.get(user=manager, team=team).role == Role.MEMBER

    back = change_manager(admin_client, stream, manager=manager.pk)

    assert back.status_code == 302
    assert vsm_managers(stream) == [(manager.pk, team.pk)]
    assert list(Membership.objects.filter(user=successor).values_list("team_id", "role")) == [
        (sales.pk, Role.TEAM_LEADER)
    ]


def test_a_manager_from_outside_leaves_the_team_again_when_switched_back(
    admin_client, stream, manager, team
):
    outsider = UserFactory(username="interim")

    change_manager(admin_client, stream, manager=outsider.pk)
    assert vsm_managers(stream) == [(outsider.pk, team.pk)]
    change_manager(admin_client, stream, manager=manager.pk)

    assert vsm_managers(stream) == [(manager.pk, team.pk)]
    assert not Membership.objects.filter(user=outsider).exists()
    removed = AuditEntry.objects.get(action="membership.removed")
    assert (removed.data["user_id"], removed.data["team_id"]) == (outsider.pk, team.pk)


def test_the_manager_holds_the_role_in_one_team_only(admin_client, stream, manager, team):
    sales = TeamFactory(value_stream=stream, name="Sales")
    refusal = (
        f"The stream's manager holds the value stream manager role in {team.name} already: "
        "one team of the stream has it. Change the manager's team on the value stream instead."
    )

    added = admin_client.post(
        admin_url(Membership, "add"),
        {"user": manager.pk, "team": sales.pk, "role": Role.VALUE_STREAM_MANAGER},
    )
    membership = vsm_services.membership_add(
        team_id=sales.pk, user_id=manager.pk, actor=TEST_SYSTEM
    )
    page = admin_client.get(admin_url(Membership, "change", membership.pk))
    promoted = admin_client.post(
        admin_url(Membership, "change", membership.pk),
        change_form_data(page) | {"role": Role.VALUE_STREAM_MANAGER},
    )

    assert form_errors(added) == form_errors(promoted) == {"role": [refusal]}
    assert vsm_managers(stream) == [(manager.pk, team.pk)]

    # The way the refusal names: the manager's team, on the value stream.
    moved = change_manager(admin_client, stream, manager_team=sales.pk)

    assert moved.status_code == 302
    assert vsm_managers(stream) == [(manager.pk, sales.pk)]


def vsm_managers(stream: ValueStream) -> list[tuple[int, int]]:
    return sorted(
        Membership.objects.filter(
            team__value_stream=stream, role=Role.VALUE_STREAM_MANAGER
        ).values_list("user_id", "team_id")
    )
