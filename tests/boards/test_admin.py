"""The admin writes through the services and refuses what the board refuses.

Each test drives the admin as a superuser would, posting its forms with the test
client, and re-reads the rows. A refusal is a form error that keeps what was typed (or
a message, on a delete or a list edit), never a 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from boards.models import Card, Column, Outcome
from boards.services import (
    card_close,
    card_create,
    card_move,
    card_set_blocked,
    value_stream_create,
)
from pdca.models import ControlPoint, Cycle
from tests.factories import ChannelFactory, MembershipFactory, UserFactory
from tests.support import TEST_SYSTEM, as_actor
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
        "Wisdom still holds 1 open card: move it out before moving the column to another cycle."
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


def test_a_refused_wip_limit_in_the_column_list_changes_nothing(admin_client, stream):
    first, second = column_of(stream, 1, 2), column_of(stream, 1, 3)
    data = {
        "form-TOTAL_FORMS": 2,
        "form-INITIAL_FORMS": 2,
        "form-MIN_NUM_FORMS": 0,
        "form-MAX_NUM_FORMS": 1000,
        "form-0-id": first.pk,
        "form-0-wip_limit": 3,
        "form-1-id": second.pk,
        "form-1-wip_limit": 20_000,
        "_save": "Save",
    }

    response = admin_client.post(admin_url(Column, "changelist"), data)

    assert response.status_code == 302
    assert message_texts(response) == [
        "Nothing was changed: A WIP limit is empty or a whole number from 1 to 10,000."
    ]
    assert Column.objects.get(pk=first.pk).wip_limit == first.wip_limit
    assert Column.objects.get(pk=second.pk).wip_limit == second.wip_limit


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


def test_a_control_point_joins_cycles_and_a_team_of_one_stream(admin_client, stream, other_stream):
    cycles = list(Cycle.objects.filter(value_stream=stream).order_by("order"))
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
            "to_cycle": cycles[0].pk,
            "name": "Renewal",
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
    team = Team.objects.get(value_stream=stream)

    response = admin_client.post(
        admin_url(ControlPoint, "add"),
        {
            "from_cycle": cycles[2].pk,
            "to_cycle": cycles[0].pk,
            "name": "Renewal",
            "receiving_team": team.pk,
            "criteria-0-order": 1,
            "criteria-0-text": "Renewal date known",
            "criteria-0-required": "on",
        }
        | criteria_management(total=1),
    )

    assert response.status_code == 302
    control_point = ControlPoint.objects.get(from_cycle=cycles[2])
    assert list(control_point.criteria.values_list("text", "required")) == [
        ("Renewal date known", True)
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
