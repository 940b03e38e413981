"""The one access rule: which streams each kind of actor sees, and which it steers.

Missing and forbidden are answered alike (StreamNotFound, same message); a stream that
may be seen but not steered is PermissionRefused; ``viewer_manages`` comes in the
same query as the stream.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from boards.services import value_stream_create
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.support import TEST_SYSTEM
from vsm.access import (
    StreamNotFound,
    actor_steers,
    stream_access,
    stream_steer_check,
    streams_visible_to,
)
from vsm.actors import SystemActor, TokenActor, UserActor
from vsm.errors import PermissionRefused
from vsm.models import Role, ValueStream

pytestmark = pytest.mark.django_db

# An id no stream has: the tests' streams are few.
MISSING_ID = 987_654


@pytest.fixture
def other_stream(db) -> ValueStream:
    return value_stream_create(
        actor=TEST_SYSTEM,
        name="Water treatment",
        customer_market="Municipal utilities",
        manager=UserFactory(),
    )


@pytest.fixture
def actors(stream, other_stream, manager, member, team):
    """Every kind of actor, named, with what it may see and steer of ``stream`` and
    ``other_stream``: (actor, sees stream, steers stream, sees other, steers other)."""
    vsm_role = MembershipFactory(team=team, role=Role.VALUE_STREAM_MANAGER).user
    coordinator = MembershipFactory(team=team, role=Role.TEAM_COORDINATOR).user
    # Manages the other stream by role, and is a plain member of this one: the role
    # must not carry over from one stream to the other.
    manager_elsewhere = MembershipFactory(team=team, role=Role.MEMBER).user
    MembershipFactory(
        user=manager_elsewhere,
        team=TeamFactory(value_stream=other_stream),
        role=Role.VALUE_STREAM_MANAGER,
    )
    return {
        "superuser": (UserActor(UserFactory(is_superuser=True)), True, True, True, True),
        "manager": (UserActor(manager), True, True, False, False),
        "member with the manager role": (UserActor(vsm_role), True, True, False, False),
        "team coordinator": (UserActor(coordinator), True, False, False, False),
        "member": (UserActor(member), True, False, False, False),
        "manager elsewhere": (UserActor(manager_elsewhere), True, False, True, True),
        "outsider": (UserActor(UserFactory()), False, False, False, False),
        "anonymous": (UserActor(AnonymousUser()), False, False, False, False),
        "system": (SystemActor("sweeper"), True, True, True, True),
        "token of the stream": (
            TokenActor(token_id=1, stream_id=stream.pk),
            True,
            False,
            False,
            False,
        ),
        "token of another stream": (
            TokenActor(token_id=2, stream_id=other_stream.pk),
            False,
            False,
            True,
            False,
        ),
    }


ACTOR_NAMES = [
    "superuser",
    "manager",
    "member with the manager role",
    "team coordinator",
    "member",
    "manager elsewhere",
    "outsider",
    "anonymous",
    "system",
    "token of the stream",
    "token of another stream",
]


def test_every_actor_kind_is_covered(actors):
    assert sorted(actors) == sorted(ACTOR_NAMES)


@pytest.mark.parametrize("name", ACTOR_NAMES)
def test_streams_visible_to_each_actor_with_whether_it_steers_them(
    name, actors, stream, other_stream
):
    actor, sees, steers, sees_other, steers_other = actors[name]
    expected = {}
    if sees:
        expected[stream.pk] = steers
    if sees_other:
        expected[other_stream.pk] = steers_other

    visible = streams_visible_to(actor).values_list("pk", "viewer_manages")

    assert dict(visible) == expected
    assert len(visible) == len(expected), "a stream is listed more than once"


@pytest.mark.parametrize("name", ACTOR_NAMES)
def test_stream_access_by_slug_answers_what_the_actor_may_see(name, actors, stream):
    actor, sees, steers, *_ = actors[name]

    if not sees:
        with pytest.raises(StreamNotFound):
            stream_access(actor=actor, slug=stream.slug)
        return
    found = stream_access(actor=actor, slug=stream.slug)
    assert found.pk == stream.pk
    assert found.viewer_manages is steers


@pytest.mark.parametrize("name", ACTOR_NAMES)
def test_stream_access_to_steer_by_id(name, actors, stream):
    actor, sees, steers, *_ = actors[name]

    if not sees:
        with pytest.raises(StreamNotFound) as refused:
            stream_access(actor=actor, stream_id=stream.pk, steer=True)
        assert refused.value.data == {"stream_id": stream.pk}
    elif not steers:
        with pytest.raises(PermissionRefused) as refused:
            stream_access(actor=actor, stream_id=stream.pk, steer=True)
        assert refused.value.code == "permission_refused"
        assert refused.value.http_status == 403
        assert refused.value.data == {"stream_id": stream.pk}
    else:
        found = stream_access(actor=actor, stream_id=stream.pk, steer=True)
        assert found.pk == stream.pk
        assert found.viewer_manages is True


@pytest.mark.parametrize("name", ["outsider", "member", "token of another stream", "anonymous"])
def test_missing_and_forbidden_are_answered_alike(name, actors, stream):
    actor = actors[name][0]

    with pytest.raises(StreamNotFound) as missing_by_slug:
        stream_access(actor=actor, slug="no-such-stream")
    with pytest.raises(StreamNotFound) as missing_by_id:
        stream_access(actor=actor, stream_id=MISSING_ID)
    answers = {str(missing_by_slug.value), str(missing_by_id.value)}
    if not actors[name][1]:
        with pytest.raises(StreamNotFound) as forbidden_by_slug:
            stream_access(actor=actor, slug=stream.slug)
        with pytest.raises(StreamNotFound) as forbidden_by_id:
            stream_access(actor=actor, stream_id=stream.pk)
        answers |= {str(forbidden_by_slug.value), str(forbidden_by_id.value)}
        assert forbidden_by_slug.value.data == {}
        assert type(forbidden_by_id.value) is type(missing_by_id.value)

    assert answers == {StreamNotFound.default_message}
    assert missing_by_slug.value.code == "stream_not_found"
    assert missing_by_slug.value.http_status == 404


def test_a_superuser_also_finds_a_missing_stream_missing(actors):
    with pytest.raises(StreamNotFound):
        stream_access(actor=actors["superuser"][0], slug="no-such-stream")


def test_stream_access_names_the_stream_one_way(stream, manager):
    with pytest.raises(TypeError):
        stream_access(actor=UserActor(manager))
    with pytest.raises(TypeError):
        stream_access(actor=UserActor(manager), slug=stream.slug, stream_id=stream.pk)


@pytest.mark.parametrize("name", ["manager", "member", "token of the stream", "system"])
def test_viewer_manages_comes_in_the_same_query_as_the_stream(
    name, actors, stream, django_assert_num_queries
):
    actor, _, steers, *_ = actors[name]

    with django_assert_num_queries(1):
        found = stream_access(actor=actor, slug=stream.slug)
        manages = found.viewer_manages
        asked_again = actor_steers(actor=actor, stream=found)

    assert manages is asked_again is steers


def test_a_steer_check_of_a_stream_read_through_access_reads_nothing_more(
    stream, manager, django_assert_num_queries
):
    with django_assert_num_queries(1):
        stream_access(actor=UserActor(manager), stream_id=stream.pk, steer=True)


def test_actor_steers_reads_a_plain_stream_in_one_query(
    stream, member, manager, django_assert_num_queries
):
    plain = ValueStream.objects.get(pk=stream.pk)

    with django_assert_num_queries(2):
        member_steers = actor_steers(actor=UserActor(member), stream=plain)
        manager_steers = actor_steers(actor=UserActor(manager), stream=plain)

    assert (member_steers, manager_steers) == (False, True)


def test_steer_check_refuses_with_what_was_refused(stream, member):
    plain = ValueStream.objects.get(pk=stream.pk)

    with pytest.raises(PermissionRefused) as refused:
        stream_steer_check(actor=UserActor(member), stream=plain, what="change WIP limits")

    assert str(refused.value) == "Only an admin or the value stream manager may change WIP limits."
    assert refused.value.data == {"stream_id": stream.pk}


def test_leaving_the_stream_s_teams_ends_its_access(stream, member):
    member.memberships.all().delete()

    with pytest.raises(StreamNotFound):
        stream_access(actor=UserActor(member), slug=stream.slug)
    assert not streams_visible_to(UserActor(member)).exists()


def test_a_member_of_two_teams_of_a_stream_sees_it_once(stream, member):
    MembershipFactory(user=member, team=TeamFactory(value_stream=stream))

    visible = list(streams_visible_to(UserActor(member)).values_list("pk", flat=True))

    assert visible == [stream.pk]
