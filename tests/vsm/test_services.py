"""The value stream's configuration services: streams, teams, memberships, channels.

Each refusal, each audit row (re-read from the database), and one "stream changed"
announcement per committed write, none for a refusal.
"""

from __future__ import annotations

import pytest

from boards.services import card_create
from pdca.models import ControlPoint, Cycle
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.support import TEST_SYSTEM, as_actor
from vsm import services
from vsm.access import StreamNotFound, stream_steer_check
from vsm.actors import ActorKind, SystemActor
from vsm.errors import InvalidInput, PermissionRefused
from vsm.models import AuditEntry, Channel, ChannelKind, Membership, Role, Team, ValueStream

pytestmark = pytest.mark.django_db


def last_audit(action: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action).latest("id")


@pytest.fixture
def spare_team(stream) -> Team:
    """A team of the stream that owns nothing and receives nothing."""
    return TeamFactory(value_stream=stream, name="Events")


def vsm_memberships(stream: ValueStream) -> list[tuple[int, int]]:
    return sorted(
        Membership.objects.filter(
            team__value_stream=stream, role=Role.VALUE_STREAM_MANAGER
        ).values_list("user_id", "team_id")
    )


# --- the stream ----------------------------------------------------------------------


def test_stream_update_changes_its_facts_with_an_audit_row_and_one_announcement(
    stream, manager, announced
):
    with announced() as sent:
        services.value_stream_update(
            stream_id=stream.pk,
            actor=as_actor(manager),
            name="Pumps and valves",
            slug="pumps",
            customer_market="Manufacturers of 50-500",
            description="Two product lines.",
        )

    row = ValueStream.objects.get(pk=stream.pk)
    assert (row.name, row.slug, row.customer_market, row.description) == (
        "Pumps and valves",
        "pumps",
        "Manufacturers of 50-500",
        "Two product lines.",
    )
    entry = last_audit("stream.updated")
    assert (entry.stream_id, entry.target_type, entry.target_id) == (stream.pk, "stream", stream.pk)
    assert (entry.actor_kind, entry.actor_id) == (ActorKind.USER, manager.pk)
    assert entry.data == {
        "changed_fields": 4,
        "changed_name": True,
        "changed_slug": True,
        "changed_customer_market": True,
        "changed_description": True,
    }
    assert sent == [(stream.pk, ["settings"])]


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"name": "  "}, InvalidInput, "name"),
        ({"name": "Private clinics"}, services.NotUnique, "name"),
        ({"slug": "private-clinics"}, services.NotUnique, "slug"),
        ({"slug": "not a slug"}, InvalidInput, "slug"),
        ({"customer_market": ""}, InvalidInput, "customer_market"),
        ({"manager_id": 987654}, services.UserNotFound, "manager"),
    ],
)
def test_stream_update_refuses_bad_input_and_changes_nothing(
    stream, manager, other_stream, announced, change, error, field
):
    before = ValueStream.objects.filter(pk=stream.pk).values().get()

    with announced() as sent, pytest.raises(error) as refused:
        services.value_stream_update(stream_id=stream.pk, actor=as_actor(manager), **change)

    assert refused.value.field == field
    assert ValueStream.objects.filter(pk=stream.pk).values().get() == before
    assert not AuditEntry.objects.filter(action="stream.updated").exists()
    assert sent == []


def test_only_those_who_steer_the_stream_change_it(stream, member, user):
    with pytest.raises(PermissionRefused):
        services.value_stream_update(stream_id=stream.pk, actor=as_actor(member), name="Mine")
    # Beyond the stream, it does not exist.
    with pytest.raises(StreamNotFound):
        services.value_stream_update(stream_id=stream.pk, actor=as_actor(user), name="Mine")

    services.value_stream_update(
        stream_id=stream.pk, actor=SystemActor("import"), name="The system may"
    )
    admin = UserFactory(is_superuser=True, is_staff=True)
    services.value_stream_update(stream_id=stream.pk, actor=as_actor(admin), name="So may admins")

    assert ValueStream.objects.get(pk=stream.pk).name == "So may admins"


def test_a_new_manager_takes_the_manager_role_and_the_old_one_becomes_a_member(
    stream, manager, member, team, announced
):
    with announced() as sent:
        services.value_stream_update(
            stream_id=stream.pk, actor=as_actor(manager), manager_id=member.pk
        )

    assert ValueStream.objects.get(pk=stream.pk).manager_id == member.pk
    assert vsm_memberships(stream) == [(member.pk, team.pk)]
    assert Membership.objects.get(user=manager, team=team).role == Role.MEMBER
    # The old manager no longer steers the stream; the new one does.
    with pytest.raises(PermissionRefused):
        stream_steer_check(actor=as_actor(manager), stream=ValueStream.objects.get(pk=stream.pk))
    stream_steer_check(actor=as_actor(member), stream=ValueStream.objects.get(pk=stream.pk))
    entry = last_audit("stream.manager_changed")
    assert entry.data == {
        "previous_manager_id": manager.pk,
        "manager_id": member.pk,
        "team_id": team.pk,
        "membership_id": Membership.objects.get(user=member, team=team).pk,
        "role_given": True,
        "membership_created": False,
        "previous_role": services.ROLE_NUMBERS[Role.MEMBER],
    }
    assert last_audit("stream.updated").data["changed_manager"] is True
    assert sent == [(stream.pk, ["settings"])]


def test_a_new_manager_from_outside_joins_the_streams_first_team(stream, manager, team, spare_team):
    outsider = UserFactory()

    services.value_stream_update(stream_id=stream.pk, actor=TEST_SYSTEM, manager_id=outsider.pk)

    assert vsm_memberships(stream) == [(outsider.pk, team.pk)]
    assert not Membership.objects.filter(user=outsider, team=spare_team).exists()
    assert Membership.objects.get(user=manager).role == Role.MEMBER


def test_the_manager_role_can_move_to_another_team_of_the_stream(stream, manager, team, spare_team):
    services.value_stream_update(
        stream_id=stream.pk, actor=TEST_SYSTEM, manager_team_id=spare_team.pk
    )

    assert vsm_memberships(stream) == [(manager.pk, spare_team.pk)]
    assert Membership.objects.get(user=manager, team=team).role == Role.MEMBER


def test_the_manager_role_goes_to_a_team_of_the_stream_only(stream, manager, other_stream):
    foreign_team = other_stream.teams.get()

    with pytest.raises(services.TeamNotFound) as refused:
        services.value_stream_update(
            stream_id=stream.pk, actor=TEST_SYSTEM, manager_team_id=foreign_team.pk
        )

    assert refused.value.field == "manager_team"
    assert ValueStream.objects.get(pk=stream.pk).manager_id == manager.pk


def test_a_stream_that_holds_cards_is_not_deleted(stream, manager, announced):
    cycle = Cycle.objects.get(value_stream=stream, order=1)
    card_create(cycle_id=cycle.pk, actor=as_actor(manager), company="Acme")

    with announced() as sent, pytest.raises(services.InUse) as refused:
        services.value_stream_delete(stream_id=stream.pk, actor=TEST_SYSTEM)

    assert "still holds cards" in refused.value.message
    assert ValueStream.objects.filter(pk=stream.pk).exists()
    assert sent == []


def test_an_empty_stream_is_deleted_with_its_configuration(stream, announced):
    stream_id = stream.pk

    with announced() as sent:
        services.value_stream_delete(stream_id=stream_id, actor=TEST_SYSTEM)

    assert not ValueStream.objects.filter(pk=stream_id).exists()
    assert not Cycle.objects.filter(value_stream_id=stream_id).exists()
    entry = last_audit("stream.deleted")
    assert (entry.stream_id, entry.target_id, entry.actor_system) == (stream_id, stream_id, "test")
    assert sent == [(stream_id, ["settings"])]


# --- teams ---------------------------------------------------------------------------


def test_team_create_and_rename_with_audit_rows(stream, manager, announced):
    with announced() as sent:
        team = services.team_create(stream_id=stream.pk, name=" Sales ", actor=as_actor(manager))
    with announced() as sent_again:
        services.team_rename(team_id=team.pk, name="Inside sales", actor=as_actor(manager))

    assert Team.objects.get(pk=team.pk).name == "Inside sales"
    assert (last_audit("team.created").target_id, last_audit("team.renamed").target_id) == (
        team.pk,
        team.pk,
    )
    assert sent == sent_again == [(stream.pk, ["settings"])]


def test_a_team_name_is_unique_in_its_stream_and_not_blank(stream, team, spare_team, announced):
    with announced() as sent:
        with pytest.raises(services.NotUnique) as taken:
            services.team_create(stream_id=stream.pk, name=team.name, actor=TEST_SYSTEM)
        with pytest.raises(services.NotUnique):
            services.team_rename(team_id=spare_team.pk, name=team.name, actor=TEST_SYSTEM)
        with pytest.raises(InvalidInput):
            services.team_create(stream_id=stream.pk, name="", actor=TEST_SYSTEM)

    assert taken.value.code == "not_unique"
    assert taken.value.field == "name"
    assert Team.objects.get(pk=spare_team.pk).name == "Events"
    assert sent == []


def test_a_team_that_owns_cycles_is_not_deleted(stream, team):
    with pytest.raises(services.InUse) as refused:
        services.team_delete(team_id=team.pk, actor=TEST_SYSTEM)

    assert refused.value.message.startswith(f"{team.name} owns 3 cycles")
    assert refused.value.data == {"team_id": team.pk, "cycles": 3}
    assert Team.objects.filter(pk=team.pk).exists()


def test_a_team_that_receives_cards_at_a_control_point_is_not_deleted(stream, spare_team):
    ControlPoint.objects.filter(from_cycle__value_stream=stream).update(receiving_team=spare_team)

    with pytest.raises(services.InUse) as refused:
        services.team_delete(team_id=spare_team.pk, actor=TEST_SYSTEM)

    assert "receives the cards of 2 control points" in refused.value.message
    assert Team.objects.filter(pk=spare_team.pk).exists()


def test_the_team_of_the_managers_role_is_not_deleted(stream, team, spare_team):
    Cycle.objects.filter(value_stream=stream).update(owning_team=spare_team)
    ControlPoint.objects.filter(from_cycle__value_stream=stream).update(receiving_team=spare_team)

    with pytest.raises(services.ManagerMembershipRequired):
        services.team_delete(team_id=team.pk, actor=TEST_SYSTEM)

    assert Team.objects.filter(pk=team.pk).exists()


def test_a_team_is_deleted_with_its_memberships(stream, spare_team, announced):
    MembershipFactory(team=spare_team)

    with announced() as sent:
        services.team_delete(team_id=spare_team.pk, actor=TEST_SYSTEM)

    assert not Team.objects.filter(pk=spare_team.pk).exists()
    assert not Membership.objects.filter(team_id=spare_team.pk).exists()
    assert last_audit("team.deleted").target_id == spare_team.pk
    assert sent == [(stream.pk, ["settings"])]


def test_a_team_beyond_the_actors_reach_is_not_found(stream, team, user, member):
    with pytest.raises(services.TeamNotFound):
        services.team_rename(team_id=team.pk, name="Mine", actor=as_actor(user))
    with pytest.raises(services.TeamNotFound):
        services.team_rename(team_id=987654, name="Mine", actor=TEST_SYSTEM)
    with pytest.raises(PermissionRefused):
        services.team_rename(team_id=team.pk, name="Mine", actor=as_actor(member))


# --- memberships ---------------------------------------------------------------------


def test_membership_add_with_an_audit_row_of_ids_and_numbers(stream, team, user, announced):
    with announced() as sent:
        membership = services.membership_add(
            team_id=team.pk, user_id=user.pk, role=Role.TEAM_LEADER, actor=TEST_SYSTEM
        )

    assert Membership.objects.get(pk=membership.pk).role == Role.TEAM_LEADER
    entry = last_audit("membership.added")
    assert entry.data == {
        "membership_id": membership.pk,
        "user_id": user.pk,
        "team_id": team.pk,
        "role": services.ROLE_NUMBERS[Role.TEAM_LEADER],
    }
    assert sent == [(stream.pk, ["settings"])]


def test_membership_add_refusals(stream, team, member, user, announced):
    with announced() as sent:
        with pytest.raises(services.NotUnique) as twice:
            services.membership_add(team_id=team.pk, user_id=member.pk, actor=TEST_SYSTEM)
        with pytest.raises(services.ManagerRoleReserved) as manager_role:
            services.membership_add(
                team_id=team.pk,
                user_id=user.pk,
                role=Role.VALUE_STREAM_MANAGER,
                actor=TEST_SYSTEM,
            )
        with pytest.raises(InvalidInput) as bad_role:
            services.membership_add(
                team_id=team.pk, user_id=user.pk, role="boss", actor=TEST_SYSTEM
            )
        with pytest.raises(services.UserNotFound):
            services.membership_add(team_id=team.pk, user_id=987654, actor=TEST_SYSTEM)

    assert (twice.value.field, manager_role.value.field, bad_role.value.field) == (
        "user",
        "role",
        "role",
    )
    assert not Membership.objects.filter(user=user).exists()
    assert sent == []


def test_membership_set_role(stream, team, member, announced):
    membership = Membership.objects.get(user=member, team=team)

    with announced() as sent:
        services.membership_set_role(
            membership_id=membership.pk, role=Role.TEAM_COORDINATOR, actor=TEST_SYSTEM
        )

    assert Membership.objects.get(pk=membership.pk).role == Role.TEAM_COORDINATOR
    assert (
        last_audit("membership.role_set").data["role"]
        == services.ROLE_NUMBERS[Role.TEAM_COORDINATOR]
    )
    assert sent == [(stream.pk, ["settings"])]


def test_the_manager_role_stays_with_the_manager(stream, manager, team, member):
    managers = Membership.objects.get(user=manager, team=team)
    members = Membership.objects.get(user=member, team=team)

    with pytest.raises(services.ManagerMembershipRequired):
        services.membership_set_role(membership_id=managers.pk, role=Role.MEMBER, actor=TEST_SYSTEM)
    with pytest.raises(services.ManagerMembershipRequired):
        services.membership_remove(membership_id=managers.pk, actor=TEST_SYSTEM)
    with pytest.raises(services.ManagerRoleReserved):
        services.membership_set_role(
            membership_id=members.pk, role=Role.VALUE_STREAM_MANAGER, actor=TEST_SYSTEM
        )

    assert vsm_memberships(stream) == [(manager.pk, team.pk)]
    assert Membership.objects.get(pk=members.pk).role == Role.MEMBER


def test_membership_remove(stream, team, member, announced):
    membership = Membership.objects.get(user=member, team=team)

    with announced() as sent:
        services.membership_remove(membership_id=membership.pk, actor=TEST_SYSTEM)

    assert not Membership.objects.filter(pk=membership.pk).exists()
    entry = last_audit("membership.removed")
    assert (entry.target_id, entry.data["user_id"]) == (membership.pk, member.pk)
    assert sent == [(stream.pk, ["settings"])]


def test_a_member_who_does_not_steer_cannot_change_memberships(stream, team, member, user):
    with pytest.raises(PermissionRefused):
        services.membership_add(team_id=team.pk, user_id=user.pk, actor=as_actor(member))
    membership = Membership.objects.get(user=member)
    with pytest.raises(PermissionRefused):
        services.membership_remove(membership_id=membership.pk, actor=as_actor(member))
    with pytest.raises(services.MembershipNotFound):
        services.membership_remove(membership_id=membership.pk, actor=as_actor(user))


# --- channels ------------------------------------------------------------------------


def test_channel_create_update_and_deactivate(stream, manager, announced):
    actor = as_actor(manager)
    with announced() as created:
        channel = services.channel_create(
            stream_id=stream.pk, name="Referral", kind=ChannelKind.REFERRAL, actor=actor
        )
    with announced() as updated:
        services.channel_update(channel_id=channel.pk, name="Referrals", actor=actor)
    with announced() as deactivated:
        services.channel_deactivate(channel_id=channel.pk, actor=actor)

    row = Channel.objects.get(pk=channel.pk)
    assert (row.name, row.kind, row.is_active) == ("Referrals", ChannelKind.REFERRAL, False)
    assert [
        (entry.action, entry.target_id, entry.data)
        for entry in AuditEntry.objects.filter(target_type="channel").order_by("id")
    ] == [
        ("channel.created", channel.pk, {"active": True}),
        ("channel.updated", channel.pk, {"active": True}),
        ("channel.deactivated", channel.pk, {"active": False}),
    ]
    assert created == updated == deactivated == [(stream.pk, ["settings"])]


def test_a_channel_name_is_unique_in_its_stream_as_a_clear_refusal(stream, other_stream, announced):
    services.channel_create(stream_id=stream.pk, name="Referral", actor=TEST_SYSTEM)
    web = services.channel_create(stream_id=stream.pk, name="Web form", actor=TEST_SYSTEM)

    with announced() as sent:
        with pytest.raises(services.NotUnique) as taken:
            services.channel_create(stream_id=stream.pk, name="Referral", actor=TEST_SYSTEM)
        with pytest.raises(services.NotUnique):
            services.channel_update(channel_id=web.pk, name="Referral", actor=TEST_SYSTEM)
        with pytest.raises(InvalidInput) as bad_kind:
            services.channel_create(stream_id=stream.pk, name="Fax", kind="fax", actor=TEST_SYSTEM)

    assert taken.value.message == "A channel “Referral” already exists here."
    assert (taken.value.field, bad_kind.value.field) == ("name", "kind")
    # Another stream may have its own "Referral".
    services.channel_create(stream_id=other_stream.pk, name="Referral", actor=TEST_SYSTEM)
    assert Channel.objects.filter(name="Referral").count() == 2
    assert sent == []


def test_channels_are_steered(stream, member, user):
    with pytest.raises(PermissionRefused):
        services.channel_create(stream_id=stream.pk, name="Mine", actor=as_actor(member))
    channel = services.channel_create(stream_id=stream.pk, name="Event", actor=TEST_SYSTEM)
    with pytest.raises(services.ChannelNotFound):
        services.channel_deactivate(channel_id=channel.pk, actor=as_actor(user))

    assert Channel.objects.get(pk=channel.pk).is_active


# --- names in any case ---------------------------------------------------------------


def test_names_that_differ_only_in_case_are_taken(stream, team, spare_team, other_stream):
    services.channel_create(stream_id=stream.pk, name="Referral", actor=TEST_SYSTEM)
    web = services.channel_create(stream_id=stream.pk, name="Web form", actor=TEST_SYSTEM)
    services.team_create(stream_id=stream.pk, name="Ärzte", actor=TEST_SYSTEM)

    refusals = [
        lambda: services.team_create(stream_id=stream.pk, name="events", actor=TEST_SYSTEM),
        lambda: services.team_create(stream_id=stream.pk, name="ÄRZTE", actor=TEST_SYSTEM),
        lambda: services.team_rename(
            team_id=spare_team.pk, name=team.name.upper(), actor=TEST_SYSTEM
        ),
        lambda: services.channel_create(stream_id=stream.pk, name="referral", actor=TEST_SYSTEM),
        lambda: services.channel_update(channel_id=web.pk, name="REFERRAL", actor=TEST_SYSTEM),
        lambda: services.value_stream_update(
            stream_id=stream.pk, name="private clinics", actor=TEST_SYSTEM
        ),
        lambda: services.value_stream_update(
            stream_id=stream.pk, slug="Private-Clinics", actor=TEST_SYSTEM
        ),
    ]
    messages = []
    for refused in refusals:
        with pytest.raises(services.NotUnique) as taken:
            refused()
        messages.append(taken.value.message)

    assert messages == [
        "A team “Events” already exists here.",
        "A team “Ärzte” already exists here.",
        f"A team “{team.name}” already exists here.",
        "A channel “Referral” already exists here.",
        "A channel “Referral” already exists here.",
        "A value stream “Private clinics” already exists here.",
        "The slug “private-clinics” already exists here.",
    ]
    assert sorted(Team.objects.filter(value_stream=stream).values_list("name", flat=True)) == [
        "Events",
        "Industrial pumps team",
        "Ärzte",
    ]
    assert Channel.objects.get(pk=web.pk).name == "Web form"
    # A name may change its own case.
    services.team_rename(team_id=spare_team.pk, name="EVENTS", actor=TEST_SYSTEM)
    assert Team.objects.get(pk=spare_team.pk).name == "EVENTS"


# --- the manager's role membership ---------------------------------------------------


def test_a_new_manager_holds_the_role_in_a_team_they_are_in(stream, manager, team, spare_team):
    successor = MembershipFactory(team=spare_team, role=Role.TEAM_COORDINATOR).user

    services.value_stream_update(stream_id=stream.pk, actor=TEST_SYSTEM, manager_id=successor.pk)

    assert vsm_memberships(stream) == [(successor.pk, spare_team.pk)]
    assert not Membership.objects.filter(user=successor, team=team).exists()
    assert Membership.objects.get(user=manager, team=team).role == Role.MEMBER


def test_switching_the_manager_back_gives_each_their_membership_as_it_was(
    stream, manager, team, spare_team
):
    coordinator = MembershipFactory(team=team, role=Role.TEAM_COORDINATOR).user
    outsider = UserFactory()

    for manager_id in (coordinator.pk, outsider.pk, manager.pk):
        services.value_stream_update(stream_id=stream.pk, actor=TEST_SYSTEM, manager_id=manager_id)

    assert vsm_memberships(stream) == [(manager.pk, team.pk)]
    assert Membership.objects.get(user=coordinator).role == Role.TEAM_COORDINATOR
    # The outsider joined the team for the role only, and left it with the role.
    assert not Membership.objects.filter(user=outsider).exists()
    assert [
        (entry.action, entry.data["user_id"])
        for entry in AuditEntry.objects.filter(target_type="membership").order_by("id")
    ] == [
        ("membership.role_set", manager.pk),  # the stream's first manager: a member
        ("membership.role_set", coordinator.pk),  # back to coordinator
        ("membership.removed", outsider.pk),
    ]


def test_moving_the_role_to_a_team_the_manager_was_not_in_and_back(
    stream, manager, team, spare_team
):
    services.value_stream_update(
        stream_id=stream.pk, actor=TEST_SYSTEM, manager_team_id=spare_team.pk
    )
    services.value_stream_update(stream_id=stream.pk, actor=TEST_SYSTEM, manager_team_id=team.pk)

    assert vsm_memberships(stream) == [(manager.pk, team.pk)]
    assert not Membership.objects.filter(user=manager, team=spare_team).exists()


def test_the_manager_holds_the_role_in_one_team_only(stream, manager, team, spare_team):
    membership = services.membership_add(
        team_id=spare_team.pk, user_id=manager.pk, actor=TEST_SYSTEM
    )

    with pytest.raises(services.ManagerRoleHeldElsewhere) as promoted:
        services.membership_set_role(
            membership_id=membership.pk, role=Role.VALUE_STREAM_MANAGER, actor=TEST_SYSTEM
        )
    services.membership_remove(membership_id=membership.pk, actor=TEST_SYSTEM)
    with pytest.raises(services.ManagerRoleHeldElsewhere) as added:
        services.membership_add(
            team_id=spare_team.pk,
            user_id=manager.pk,
            role=Role.VALUE_STREAM_MANAGER,
            actor=TEST_SYSTEM,
        )

    assert (promoted.value.code, promoted.value.field, added.value.field) == (
        "manager_role_held_elsewhere",
        "role",
        "role",
    )
    assert promoted.value.data == {
        "membership_id": Membership.objects.get(user=manager, team=team).pk,
        "team_id": team.pk,
    }
    assert vsm_memberships(stream) == [(manager.pk, team.pk)]
    # Their own membership may be set to the role it has.
    own = Membership.objects.get(user=manager, team=team)
    services.membership_set_role(
        membership_id=own.pk, role=Role.VALUE_STREAM_MANAGER, actor=TEST_SYSTEM
    )
