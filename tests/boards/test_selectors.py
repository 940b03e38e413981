"""The board's reads: who may steer a stream, and the move's one-query access check."""

from __future__ import annotations

import pytest

from boards.models import Column
from boards.selectors import (
    column_heads,
    stream_and_card_column_for_actor,
    stream_for_actor,
    viewer_manages_stream,
)
from boards.services import value_stream_create
from tests.factories import CardFactory, MembershipFactory, UserFactory
from tests.support import TEST_SYSTEM, as_actor, first_column
from vsm.access import actor_steers
from vsm.errors import NotFound
from vsm.models import Role, ValueStream

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(stream, team, member) -> dict:
    return {
        "manager": stream.manager,
        "deputy": MembershipFactory(team=team, role=Role.VALUE_STREAM_MANAGER).user,
        "member": member,
        "superuser": UserFactory(is_superuser=True, is_staff=True),
        "deputy elsewhere": MembershipFactory(role=Role.VALUE_STREAM_MANAGER).user,
    }


@pytest.mark.parametrize(
    ("who", "manages"),
    [
        ("manager", True),
        ("deputy", True),
        ("superuser", True),
        ("member", False),
    ],
)
def test_the_stream_carries_whether_its_viewer_manages_it(
    stream, people, who, manages, django_assert_num_queries
):
    user = people[who]

    seen = stream_for_actor(actor=as_actor(user), slug=stream.slug)

    with django_assert_num_queries(0):
        assert viewer_manages_stream(actor=as_actor(user), stream=seen) is manages
    # The same rule when the stream was read without it, as the services read it.
    assert (
        actor_steers(actor=as_actor(user), stream=ValueStream.objects.get(pk=stream.pk)) is manages
    )


def test_a_manager_role_in_another_stream_does_not_count(stream, people):
    other = value_stream_create(
        actor=TEST_SYSTEM, name="Valves", customer_market="Utilities", manager=people["manager"]
    )
    MembershipFactory(team=other.teams.get(), user=people["deputy elsewhere"], role=Role.MEMBER)

    seen = stream_for_actor(actor=as_actor(people["deputy elsewhere"]), slug=other.slug)

    assert viewer_manages_stream(actor=as_actor(people["deputy elsewhere"]), stream=seen) is False


def test_a_stream_read_otherwise_is_asked_about(stream, member, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert viewer_manages_stream(actor=as_actor(member), stream=stream) is False


def test_stream_and_card_column_in_one_query(stream, member, django_assert_num_queries):
    card = CardFactory(column=first_column(stream))

    with django_assert_num_queries(1):
        seen, column_id = stream_and_card_column_for_actor(
            actor=as_actor(member), slug=stream.slug, card_id=card.pk
        )

    assert (seen, column_id) == (stream, card.column_id)
    assert viewer_manages_stream(actor=as_actor(member), stream=seen) is False


def test_a_card_of_another_stream_is_not_found(stream, member, manager):
    other = value_stream_create(
        actor=TEST_SYSTEM, name="Valves", customer_market="Utilities", manager=manager
    )
    elsewhere = CardFactory(column=first_column(other))

    with pytest.raises(NotFound):
        stream_and_card_column_for_actor(
            actor=as_actor(member), slug=stream.slug, card_id=elsewhere.pk
        )


def test_an_outsider_does_not_find_the_stream(stream, user):
    card = CardFactory(column=first_column(stream))

    with pytest.raises(NotFound):
        stream_and_card_column_for_actor(actor=as_actor(user), slug=stream.slug, card_id=card.pk)


def test_column_heads_use_counts_given_or_count_once(stream, django_assert_num_queries):
    data, information = Column.objects.filter(cycle__value_stream=stream).select_related("cycle")[
        :2
    ]
    CardFactory(column=data)

    with django_assert_num_queries(0):
        given = column_heads(
            stream=stream,
            columns=[information, data],
            open_counts={information.pk: 4, data.pk: 7},
        )
    with django_assert_num_queries(1):
        counted = column_heads(stream=stream, columns=[information, data])

    # Board order (cycle, then column), whatever the order asked in.
    assert [(view.column, view.open_count) for view in given] == [(data, 7), (information, 4)]
    assert [(view.column, view.open_count) for view in counted] == [(data, 1), (information, 0)]
