"""Every named constraint of the vsm models: the valid row saves, the invalid one is refused."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.constraints import violates
from tests.factories import (
    PASSWORD,
    ChannelFactory,
    MembershipFactory,
    TeamFactory,
    UserFactory,
    ValueStreamFactory,
)
from vsm.models import Channel, ChannelKind, Membership, Role, Team, ValueStream

pytestmark = pytest.mark.django_db


def test_value_stream_name_not_blank():
    assert ValueStreamFactory(name="Dental clinics").pk

    with violates(ValueStream, "vsm_valuestream_name_not_blank"):
        ValueStreamFactory(name="")


def test_value_stream_slug_not_blank():
    assert ValueStreamFactory(slug="dental-clinics").pk

    with violates(ValueStream, "vsm_valuestream_slug_not_blank"):
        ValueStreamFactory(slug="")


def test_team_name_unique_per_stream():
    team = TeamFactory(name="Hunters")
    elsewhere = TeamFactory(name="Hunters")
    assert Team.objects.get(pk=elsewhere.pk).value_stream_id != team.value_stream_id

    with violates(Team, "vsm_team_unique_name_per_stream"):
        TeamFactory(value_stream=team.value_stream, name="Hunters")


def test_team_name_not_blank():
    assert TeamFactory(name="Farmers").pk

    with violates(Team, "vsm_team_name_not_blank"):
        TeamFactory(name="")


def test_membership_unique_per_user_and_team():
    membership = MembershipFactory()
    elsewhere = MembershipFactory(user=membership.user)
    assert Membership.objects.get(pk=elsewhere.pk).team_id != membership.team_id

    with violates(Membership, "vsm_membership_unique_user_team"):
        MembershipFactory(user=membership.user, team=membership.team, role=Role.TEAM_LEADER)


@pytest.mark.parametrize("role", Role.values)
def test_membership_role_valid_accepts_every_role(role):
    membership = MembershipFactory(role=role)

    assert Membership.objects.get(pk=membership.pk).role == role


def test_membership_role_valid_refuses_unknown_role():
    with violates(Membership, "vsm_membership_role_valid"):
        MembershipFactory(role="overlord")


def test_channel_name_unique_per_stream():
    channel = ChannelFactory(name="Trade fair")
    elsewhere = ChannelFactory(name="Trade fair")
    assert Channel.objects.get(pk=elsewhere.pk).value_stream_id != channel.value_stream_id

    with violates(Channel, "vsm_channel_unique_name_per_stream"):
        ChannelFactory(value_stream=channel.value_stream, name="Trade fair")


def test_channel_name_not_blank():
    assert ChannelFactory(name="Newsletter").pk

    with violates(Channel, "vsm_channel_name_not_blank"):
        ChannelFactory(name="")


@pytest.mark.parametrize("kind", ChannelKind.values)
def test_channel_kind_valid_accepts_every_kind(kind):
    channel = ChannelFactory(kind=kind)

    assert Channel.objects.get(pk=channel.pk).kind == kind


def test_channel_kind_valid_refuses_unknown_kind():
    with violates(Channel, "vsm_channel_kind_valid"):
        ChannelFactory(kind="carrier_pigeon")


def test_user_factory_makes_a_user_who_can_log_in():
    user = UserFactory()

    assert get_user_model().objects.get(pk=user.pk).check_password(PASSWORD)
