"""Querysets compiled once (vsm.queryshapes): each call binds its own values into the
SQL the ORM compiled once, and a slot the ORM transforms is refused, not mis-bound."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

from tests.factories import MembershipFactory, UserFactory, ValueStreamFactory
from vsm.models import Membership, ValueStream
from vsm.queryshapes import QueryShape

pytestmark = pytest.mark.django_db


def _counting(builds: list[dict[str, object]]):
    def build(*, slug: object, user_id: object) -> QuerySet[ValueStream]:
        builds.append({"slug": slug, "user_id": user_id})
        member = Membership.objects.filter(user_id=user_id, team__value_stream_id=1)
        return (
            ValueStream.objects.filter(slug=slug)
            .exclude(manager_id=user_id)
            .filter(pk__gte=0)
            .exclude(pk__in=member.values("team__value_stream_id"))
            .order_by("pk")
        )

    return build


def test_each_call_binds_its_own_values_into_sql_compiled_once():
    builds: list[dict[str, object]] = []
    shape = QueryShape(_counting(builds), slots={"slug": str, "user_id": int})
    first, second = ValueStreamFactory(), ValueStreamFactory()
    someone = UserFactory()

    found = [shape.first(slug=stream.slug, user_id=someone.pk) for stream in (first, second)]
    managed_by_them = shape.first(slug=first.slug, user_id=first.manager_id)

    assert [stream.pk for stream in found if stream] == [first.pk, second.pk]
    assert managed_by_them is None, "the user id was not bound where the ORM put it"
    assert len(builds) == 1, "the queryset was built more than once"
    assert builds[0]["slug"] != first.slug


def test_the_answer_is_the_orms():
    stream = ValueStreamFactory()
    member = MembershipFactory(team__value_stream=stream).user
    shape = QueryShape(_counting([]), slots={"slug": str, "user_id": int})

    for user in (member, stream.manager, UserFactory()):
        expected = list(_counting([])(slug=stream.slug, user_id=user.pk).values_list("pk"))
        got = [(row.pk,) for row in shape.fetch(slug=stream.slug, user_id=user.pk)]
        assert got == expected, user


def test_a_slot_the_orm_transforms_is_refused():
    shape = QueryShape(
        lambda *, name: ValueStream.objects.filter(name__icontains=name), slots={"name": str}
    )

    with pytest.raises(ImproperlyConfigured, match="name"):
        shape.fetch(name="Steel")


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"slug": "a"},
        {"slug": "a", "user_id": "1"},
        {"slug": 1, "user_id": 1},
        {"slug": "a", "user_id": True},
        {"slug": "a", "user_id": 1, "extra": 2},
    ],
)
def test_values_are_checked_against_the_slots(values):
    shape = QueryShape(_counting([]), slots={"slug": str, "user_id": int})

    with pytest.raises(TypeError):
        shape.fetch(**values)


def test_a_slot_type_is_an_int_or_a_str():
    shape = QueryShape(lambda *, when: ValueStream.objects.filter(pk=when), slots={"when": float})

    with pytest.raises(TypeError, match="when"):
        shape.fetch(when=1.0)
