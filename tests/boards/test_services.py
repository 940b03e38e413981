"""The board's write services: stream set-up, the move rules, the move log."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from boards.errors import (
    CardNotFound,
    ColumnNotFound,
    ControlPointRequired,
    CriteriaNotMet,
    InvalidMove,
    StaleBoard,
    WipLimitReached,
)
from boards.models import Card, CardMove, Column, Handoff, KnowledgeLevel, MoveKind, Outcome
from boards.services import (
    DEFAULT_CRITERIA,
    POSITION_GAP,
    card_close,
    card_create,
    card_move,
    card_reopen,
    card_set_blocked,
    column_set_wip_limit,
    handoff_pass,
    value_stream_create,
)
from pdca.errors import CycleNotFound
from pdca.models import ControlPoint
from tests.factories import (
    CardFactory,
    ChannelFactory,
    MembershipFactory,
    TeamFactory,
    UserFactory,
)
from tests.support import (
    COLLABORATION,
    REPEAT,
    SALES,
    TEST_SYSTEM,
    as_actor,
    column_of,
    fill,
    snapshot,
)
from vsm.errors import PermissionRefused
from vsm.models import Membership, Role, ValueStream

pytestmark = pytest.mark.django_db

AT = datetime.datetime(2025, 5, 6, 9, 30, tzinfo=datetime.UTC)


def open_order(column: Column) -> list[int]:
    """Ids of the column's open cards, in board order."""
    cards = Card.objects.filter(column=column, outcome=Outcome.OPEN).order_by("position", "id")
    return list(cards.values_list("id", flat=True))


@pytest.fixture
def information(stream) -> Column:
    return column_of(stream, COLLABORATION, "Information")


@pytest.fixture
def knowledge(stream) -> Column:
    """Collaboration's Knowledge column with a WIP limit of 5."""
    column = column_of(stream, COLLABORATION, "Knowledge")
    column.wip_limit = 5
    column.save()
    return column


@pytest.fixture
def deputy(team):
    """A team member holding the value stream manager role, not the stream's manager."""
    return MembershipFactory(team=team, role=Role.VALUE_STREAM_MANAGER).user


# value_stream_create


def test_value_stream_create_makes_the_three_default_cycles_in_order(stream):
    cycles = stream.cycles.order_by("order").values_list("name", "order")

    assert list(cycles) == [(COLLABORATION, 1), (SALES, 2), (REPEAT, 3)]


def test_value_stream_create_gives_each_cycle_the_knowledge_hierarchy(stream):
    expected = [
        ("Data", KnowledgeLevel.DATA),
        ("Information", KnowledgeLevel.INFORMATION),
        ("Knowledge", KnowledgeLevel.KNOWLEDGE),
        ("Wisdom", KnowledgeLevel.WISDOM),
    ]

    for cycle in stream.cycles.all():
        columns = cycle.columns.order_by("order").values_list("name", "knowledge_level")
        assert list(columns) == expected, cycle.name
    assert Column.objects.filter(cycle__value_stream=stream).count() == 12


def test_value_stream_create_puts_a_control_point_between_consecutive_cycles(stream):
    control_points = ControlPoint.objects.filter(from_cycle__value_stream=stream)
    pairs = control_points.order_by("from_cycle__order").values_list(
        "from_cycle__name", "to_cycle__name"
    )

    assert list(pairs) == [(COLLABORATION, SALES), (SALES, REPEAT)]
    assert {cp.receiving_team for cp in control_points} == {stream.teams.get()}


def test_value_stream_create_gives_control_points_their_default_criteria(stream):
    for control_point in ControlPoint.objects.filter(from_cycle__value_stream=stream):
        criteria = list(control_point.criteria.order_by("order").values_list("text", "required"))
        expected = DEFAULT_CRITERIA[(control_point.from_cycle.name, control_point.to_cycle.name)]
        assert criteria == list(expected)
        assert any(required for _, required in criteria)


def test_value_stream_create_makes_the_manager_value_stream_manager(stream, manager):
    team = stream.teams.get()

    assert ValueStream.objects.get(pk=stream.pk).manager == manager
    assert stream.slug == "industrial-pumps"
    assert list(Membership.objects.filter(team=team).values_list("user", "role")) == [
        (manager.pk, Role.VALUE_STREAM_MANAGER)
    ]
    assert set(stream.cycles.values_list("owning_team", flat=True)) == {team.pk}


# card_create


def test_card_create_enters_the_first_column_and_logs_the_entry(stream, team, member):
    data = column_of(stream, COLLABORATION, "Data")

    result = card_create(
        cycle_id=data.cycle_id,
        actor=as_actor(member),
        person_name=" Ada Lovelace ",
        company="Engines",
        at=AT,
    )

    card = Card.objects.get()
    assert (card.column, card.value_stream, card.person_name, card.outcome, card.version) == (
        data,
        stream,
        "Ada Lovelace",
        Outcome.OPEN,
        1,
    )
    assert card.owning_team == team
    move = CardMove.objects.get()
    assert (move.card, move.from_column, move.to_column, move.kind, move.actor, move.moved_at) == (
        card,
        None,
        data,
        MoveKind.ENTER,
        member,
        AT,
    )
    assert result.move == move
    assert result.column_ids == {data.pk}


def test_card_create_puts_new_prospects_at_the_end_of_the_column(stream, member):
    data = column_of(stream, COLLABORATION, "Data")

    first = card_create(cycle_id=data.cycle_id, actor=as_actor(member), company="First").card
    second = card_create(cycle_id=data.cycle_id, actor=as_actor(member), company="Second").card

    assert open_order(data) == [first.pk, second.pk]


def test_card_create_accepts_the_first_column_of_a_later_cycle(stream, member):
    sales_data = column_of(stream, SALES, "Data")

    card_create(cycle_id=sales_data.cycle_id, actor=as_actor(member), company="Returning Ltd")

    assert Card.objects.get().column == sales_data


def test_card_create_refuses_a_cycle_of_another_stream(stream, member, manager):
    other = value_stream_create(
        actor=TEST_SYSTEM, name="Dental clinics", customer_market="Dentists", manager=manager
    )
    foreign_cycle = column_of(other, COLLABORATION, "Data").cycle_id

    with pytest.raises(CycleNotFound) as refused:
        card_create(
            cycle_id=foreign_cycle, stream_id=stream.pk, actor=as_actor(member), company="Acme"
        )

    assert refused.value.data == {"cycle_id": foreign_cycle}
    assert not Card.objects.exists()
    assert not CardMove.objects.exists()


def test_card_create_refuses_an_owner_from_outside_the_stream(stream, member):
    outsider = UserFactory()
    data = column_of(stream, COLLABORATION, "Data")

    with pytest.raises(InvalidMove, match="member of its value stream") as refused:
        card_create(
            cycle_id=data.cycle_id, actor=as_actor(member), company="Acme", owner_id=outsider.pk
        )

    assert refused.value.field == "owner"
    assert not Card.objects.exists()


def test_card_create_refuses_an_inactive_channel(stream, member):
    data = column_of(stream, COLLABORATION, "Data")
    retired = ChannelFactory(value_stream=stream, is_active=False)

    with pytest.raises(InvalidMove, match="no longer active"):
        card_create(
            cycle_id=data.cycle_id, actor=as_actor(member), company="Acme", channel_id=retired.pk
        )

    assert not Card.objects.exists()


def test_card_create_refuses_a_full_first_column(stream, member):
    data = column_of(stream, COLLABORATION, "Data")
    data.wip_limit = 1
    data.save()
    card_create(cycle_id=data.cycle_id, actor=as_actor(member), company="Acme")

    with pytest.raises(WipLimitReached) as refused:
        card_create(cycle_id=data.cycle_id, actor=as_actor(member), company="Globex")

    assert str(refused.value) == "Data is at its WIP limit, 1/1"
    assert list(Card.objects.values_list("company", flat=True)) == ["Acme"]
    assert CardMove.objects.count() == 1


def test_card_create_lets_the_manager_override_a_full_first_column(stream, manager, member):
    data = column_of(stream, COLLABORATION, "Data")
    data.wip_limit = 1
    data.save()
    card_create(cycle_id=data.cycle_id, actor=as_actor(member), company="Acme")

    result = card_create(
        cycle_id=data.cycle_id,
        actor=as_actor(manager),
        company="Globex",
        wip_override_reason="Hot referral",
    )

    assert Card.objects.filter(column=data, outcome=Outcome.OPEN).count() == 2
    assert CardMove.objects.get(card=result.card).wip_override_reason == "Hot referral"


def test_card_create_accepts_a_channel_of_the_stream(stream, member):
    data = column_of(stream, COLLABORATION, "Data")
    channel = ChannelFactory(value_stream=stream)

    card_create(
        cycle_id=data.cycle_id, actor=as_actor(member), company="Acme", channel_id=channel.pk
    )

    assert Card.objects.get().channel == channel


def test_card_create_refuses_a_channel_of_another_stream(stream, member):
    data = column_of(stream, COLLABORATION, "Data")
    foreign_channel = ChannelFactory()

    with pytest.raises(InvalidMove, match="channel"):
        card_create(
            cycle_id=data.cycle_id,
            actor=as_actor(member),
            company="Acme",
            channel_id=foreign_channel.pk,
        )

    assert not Card.objects.exists()
    assert not CardMove.objects.exists()


@pytest.mark.parametrize(("person_name", "company"), [("", ""), ("  ", "\t")])
def test_card_create_needs_a_person_or_a_company(stream, member, person_name, company):
    data = column_of(stream, COLLABORATION, "Data")

    with pytest.raises(InvalidMove, match="person or a company"):
        card_create(
            cycle_id=data.cycle_id, actor=as_actor(member), person_name=person_name, company=company
        )

    assert not Card.objects.exists()


# card_move: the WIP rule


def test_card_move_refuses_a_column_at_its_wip_limit(knowledge, information, member):
    fill(knowledge, 5)
    card = CardFactory(column=information)
    before = snapshot(card)

    with pytest.raises(WipLimitReached) as refused:
        card_move(card_id=card.pk, to_column_id=knowledge.pk, actor=as_actor(member))

    assert str(refused.value) == "Knowledge is at its WIP limit, 5/5"
    assert snapshot(card) == before
    assert Card.objects.filter(column=knowledge, outcome=Outcome.OPEN).count() == 5
    assert not CardMove.objects.exists()


def test_card_move_fills_a_column_up_to_its_limit(knowledge, information, member):
    fill(knowledge, 4)
    card = CardFactory(column=information)

    card_move(card_id=card.pk, to_column_id=knowledge.pk, actor=as_actor(member))

    assert Card.objects.get(pk=card.pk).column == knowledge


@pytest.mark.parametrize("overrider", ["manager", "deputy"])
def test_card_move_lets_a_manager_override_the_limit_with_a_reason(
    request, knowledge, information, overrider
):
    actor = request.getfixturevalue(overrider)
    fill(knowledge, 5)
    card = CardFactory(column=information)

    result = card_move(
        card_id=card.pk,
        to_column_id=knowledge.pk,
        actor=as_actor(actor),
        wip_override_reason="  Board meeting needs this deal  ",
    )

    assert Card.objects.filter(column=knowledge, outcome=Outcome.OPEN).count() == 6
    move = CardMove.objects.get()
    assert move == result.move
    assert (move.card_id, move.actor, move.wip_override_reason) == (
        card.pk,
        actor,
        "Board meeting needs this deal",
    )


def test_card_move_records_no_override_when_the_limit_was_not_reached(
    knowledge, information, manager
):
    card = CardFactory(column=information)

    card_move(
        card_id=card.pk, to_column_id=knowledge.pk, actor=as_actor(manager), wip_override_reason="x"
    )

    assert CardMove.objects.get().wip_override_reason == ""


def test_card_move_refuses_an_override_by_a_member(knowledge, information, member):
    fill(knowledge, 5)
    card = CardFactory(column=information)
    before = snapshot(card)

    with pytest.raises(PermissionRefused, match="Only an admin or the value stream manager"):
        card_move(
            card_id=card.pk,
            to_column_id=knowledge.pk,
            actor=as_actor(member),
            wip_override_reason="Urgent",
        )

    assert snapshot(card) == before
    assert not CardMove.objects.exists()


@pytest.mark.parametrize("reason", ["", "   "])
def test_card_move_refuses_an_override_without_a_reason(knowledge, information, manager, reason):
    fill(knowledge, 5)
    card = CardFactory(column=information)
    before = snapshot(card)

    with pytest.raises(WipLimitReached):
        card_move(
            card_id=card.pk,
            to_column_id=knowledge.pk,
            actor=as_actor(manager),
            wip_override_reason=reason,
        )

    assert snapshot(card) == before
    assert not CardMove.objects.exists()


# card_move: order inside a column


@pytest.mark.parametrize(
    ("after", "before", "expected"),
    [
        (None, None, "abcx"),
        ("a", "b", "axbc"),
        ("a", None, "axbc"),
        ("c", None, "abcx"),
        (None, "a", "xabc"),
        (None, "c", "abxc"),
    ],
)
def test_card_move_places_the_card_between_the_named_neighbours(
    stream, information, member, after, before, expected
):
    cards = dict(zip("abc", fill(information, 3), strict=True))
    cards["x"] = CardFactory(column=column_of(stream, COLLABORATION, "Data"))

    card_move(
        card_id=cards["x"].pk,
        to_column_id=information.pk,
        actor=as_actor(member),
        after_card_id=cards[after].pk if after else None,
        before_card_id=cards[before].pk if before else None,
    )

    assert open_order(information) == [cards[name].pk for name in expected]


def test_card_move_reorders_inside_a_column_without_logging_a_move(information, member):
    a, b, c = fill(information, 3)

    result = card_move(
        card_id=c.pk, to_column_id=information.pk, actor=as_actor(member), before_card_id=a.pk
    )

    assert open_order(information) == [c.pk, a.pk, b.pk]
    assert result.move is None
    assert not CardMove.objects.exists()
    assert Card.objects.get(pk=c.pk).version == c.version + 1


def test_card_move_renumbers_the_column_when_the_gap_runs_out(stream, information, member):
    a = CardFactory(column=information, position=1024)
    b = CardFactory(column=information, position=1025)
    c = CardFactory(column=information, position=1026)
    x = CardFactory(column=column_of(stream, COLLABORATION, "Data"))

    card_move(card_id=x.pk, to_column_id=information.pk, actor=as_actor(member), after_card_id=a.pk)
    card_move(
        card_id=c.pk, to_column_id=information.pk, actor=as_actor(member), before_card_id=b.pk
    )

    assert open_order(information) == [a.pk, x.pk, c.pk, b.pk]


def test_card_move_renumbers_a_column_holding_positions_below_zero(stream, information, member):
    # Dropping cards on top of a column (before the first card) takes positions at and
    # below zero; renumbering must not collide with them.
    a = CardFactory(column=information, position=-1024)
    b = CardFactory(column=information, position=1023)
    c = CardFactory(column=information, position=1024)
    x = CardFactory(column=column_of(stream, COLLABORATION, "Data"))

    card_move(card_id=x.pk, to_column_id=information.pk, actor=as_actor(member), after_card_id=b.pk)

    assert open_order(information) == [a.pk, b.pk, x.pk, c.pk]


def test_renumbering_keeps_the_order_and_spreads_the_column_evenly(stream, information, member):
    # Crowded, at and below zero, and out of id order: every case the renumber meets.
    positions = [-5_000, -1, 0, 1, 2, 3, 700, 701, 10**12]
    cards = [CardFactory(column=information, position=p) for p in reversed(positions)]
    cards.reverse()
    closed = CardFactory(column=information, position=2, outcome=Outcome.LOST, closed_at=AT)
    mover = CardFactory(column=column_of(stream, COLLABORATION, "Data"))

    # No room between 1 and 2: the column is renumbered, then the card dropped between.
    card_move(
        card_id=mover.pk,
        to_column_id=information.pk,
        actor=as_actor(member),
        after_card_id=cards[3].pk,
    )

    order = [card.pk for card in cards[:4]] + [mover.pk] + [card.pk for card in cards[4:]]
    assert open_order(information) == order
    spread = Card.objects.filter(column=information, outcome=Outcome.OPEN).exclude(pk=mover.pk)
    assert sorted(spread.values_list("position", flat=True)) == [
        rank * POSITION_GAP for rank in range(1, len(cards) + 1)
    ]
    # A closed card holds no place in the column: the renumber leaves it alone.
    assert Card.objects.get(pk=closed.pk).position == 2


def test_card_move_keeps_order_through_many_drops_near_the_top(stream, member):
    data = column_of(stream, COLLABORATION, "Data")
    first = card_create(cycle_id=data.cycle_id, actor=as_actor(member), company="First").card
    cards = [
        card_create(cycle_id=data.cycle_id, actor=as_actor(member), company=f"Prospect {i}").card
        for i in range(13)
    ]

    # Two cards dropped on top of the column take positions at and below zero...
    card_move(
        card_id=cards[0].pk, to_column_id=data.pk, actor=as_actor(member), before_card_id=first.pk
    )
    card_move(
        card_id=cards[1].pk,
        to_column_id=data.pk,
        actor=as_actor(member),
        before_card_id=cards[0].pk,
    )
    # ...then each next one lands just above `first`: the gap halves until it runs out.
    for card in cards[2:]:
        card_move(
            card_id=card.pk, to_column_id=data.pk, actor=as_actor(member), before_card_id=first.pk
        )

    assert open_order(data) == [cards[1].pk, cards[0].pk, *(c.pk for c in cards[2:]), first.pk]


def test_card_move_refuses_a_neighbour_that_left_the_column(stream, information, member):
    a, b = fill(information, 2)
    elsewhere = CardFactory(column=column_of(stream, COLLABORATION, "Wisdom"))
    card = CardFactory(column=column_of(stream, COLLABORATION, "Data"))
    before = snapshot(card)

    with pytest.raises(StaleBoard):
        card_move(
            card_id=card.pk,
            to_column_id=information.pk,
            actor=as_actor(member),
            after_card_id=elsewhere.pk,
        )

    assert snapshot(card) == before
    assert open_order(information) == [a.pk, b.pk]
    assert not CardMove.objects.exists()


# card_move: staleness, boundaries, the move log


def test_card_move_refuses_a_stale_version_and_changes_nothing(stream, information, member):
    card = CardFactory(column=column_of(stream, COLLABORATION, "Data"))
    card_move(
        card_id=card.pk, to_column_id=information.pk, actor=as_actor(member), expected_version=1
    )
    before = snapshot(card)

    with pytest.raises(StaleBoard):
        card_move(
            card_id=card.pk,
            to_column_id=column_of(stream, COLLABORATION, "Knowledge").pk,
            actor=as_actor(member),
            expected_version=1,
        )

    assert snapshot(card) == before
    assert before[2] == 2
    assert CardMove.objects.count() == 1


def test_card_move_refuses_a_column_of_another_stream(stream, information, member, manager):
    other = value_stream_create(
        actor=TEST_SYSTEM, name="Dental clinics", customer_market="Dentists", manager=manager
    )
    card = CardFactory(column=information)
    before = snapshot(card)

    with pytest.raises(ColumnNotFound):
        card_move(
            card_id=card.pk,
            to_column_id=column_of(other, COLLABORATION, "Information").pk,
            actor=as_actor(member),
        )

    assert snapshot(card) == before
    assert not CardMove.objects.exists()


def test_card_move_refuses_to_cross_cycles_without_a_handoff(stream, member):
    card = CardFactory(column=column_of(stream, COLLABORATION, "Wisdom"))
    before = snapshot(card)

    with pytest.raises(ControlPointRequired):
        card_move(
            card_id=card.pk,
            to_column_id=column_of(stream, SALES, "Data").pk,
            actor=as_actor(member),
        )

    assert snapshot(card) == before
    assert not CardMove.objects.exists()


def test_card_move_refuses_a_closed_card(information, knowledge, member):
    card = CardFactory(column=information, outcome=Outcome.LOST, closed_at=timezone.now())
    before = snapshot(card)

    with pytest.raises(InvalidMove, match="closed"):
        card_move(card_id=card.pk, to_column_id=knowledge.pk, actor=as_actor(member))

    assert snapshot(card) == before


def test_every_column_change_appends_exactly_one_move(stream, member, manager):
    data, information, knowledge = (
        column_of(stream, COLLABORATION, name) for name in ("Data", "Information", "Knowledge")
    )
    card = card_create(cycle_id=data.cycle_id, actor=as_actor(member), company="Acme", at=AT).card
    steps = [(information, member), (knowledge, manager), (information, member)]

    for minutes, (to_column, actor) in enumerate(steps, start=1):
        at = AT + datetime.timedelta(minutes=minutes)
        result = card_move(card_id=card.pk, to_column_id=to_column.pk, actor=as_actor(actor), at=at)
        assert result.move == CardMove.objects.order_by("id").last()

    moves = CardMove.objects.filter(card=card).order_by("id")
    assert [(m.from_column, m.to_column, m.kind, m.actor, m.moved_at) for m in moves] == [
        (None, data, MoveKind.ENTER, member, AT),
        (data, information, MoveKind.MOVE, member, AT + datetime.timedelta(minutes=1)),
        (information, knowledge, MoveKind.MOVE, manager, AT + datetime.timedelta(minutes=2)),
        (knowledge, information, MoveKind.MOVE, member, AT + datetime.timedelta(minutes=3)),
    ]
    card.refresh_from_db()
    assert (card.column, card.version, card.column_entered_at) == (
        information,
        4,
        AT + datetime.timedelta(minutes=3),
    )


def test_card_move_reports_both_columns_and_stays_in_budget(
    stream, information, member, django_assert_max_num_queries
):
    data = column_of(stream, COLLABORATION, "Data")
    fill(information, 3)
    card = CardFactory(column=data)

    # Savepoint, bounds (PostgreSQL), lock columns, lock card, count, position,
    # update, insert the move, insert its audit row, release; the card's column is
    # named, so not read first.
    with django_assert_max_num_queries(10):
        result = card_move(
            card_id=card.pk,
            to_column_id=information.pk,
            actor=as_actor(member),
            expected_column_id=data.pk,
        )

    assert result.column_ids == {data.pk, information.pk}
    assert {column.pk for column in result.columns} == {data.pk, information.pk}
    assert Card.objects.get(pk=card.pk).column_id == information.pk


@pytest.mark.parametrize("target", ["Information", "Data"])
def test_card_move_reports_the_open_counts_after_the_move(stream, information, member, target):
    data = column_of(stream, COLLABORATION, "Data")
    fill(information, 3)
    card, _ = fill(data, 2)
    CardFactory(column=data, outcome=Outcome.WON, closed_at=AT)

    result = card_move(
        card_id=card.pk,
        to_column_id=column_of(stream, COLLABORATION, target).pk,
        actor=as_actor(member),
    )

    expected = {data.pk: 1, information.pk: 4} if target == "Information" else {data.pk: 2}
    assert result.open_counts == expected
    assert {
        column: Card.objects.filter(column_id=column, outcome=Outcome.OPEN).count()
        for column in expected
    } == expected


def test_card_move_refuses_a_card_no_longer_in_the_column_the_caller_saw(
    stream, information, member
):
    data = column_of(stream, COLLABORATION, "Data")
    card = CardFactory(column=data)
    card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(member))
    before = snapshot(card)

    with pytest.raises(StaleBoard):
        card_move(
            card_id=card.pk,
            to_column_id=column_of(stream, COLLABORATION, "Knowledge").pk,
            actor=as_actor(member),
            expected_column_id=data.pk,
        )

    assert snapshot(card) == before
    assert CardMove.objects.filter(card=card).count() == 1


@pytest.mark.parametrize("seen_column", [True, False])
def test_card_move_refuses_a_card_that_no_longer_exists(stream, information, member, seen_column):
    data = column_of(stream, COLLABORATION, "Data")

    with pytest.raises(CardNotFound) as refused:
        card_move(
            card_id=10**9,
            to_column_id=information.pk,
            actor=as_actor(member),
            expected_column_id=data.pk if seen_column else None,
        )

    assert refused.value.http_status == 404
    assert refused.value.data == {"card_id": 10**9}


# handoff_pass


@pytest.fixture
def control_point(stream) -> ControlPoint:
    """Collaboration -> Sales/Buying, handing cards to a second team, "Closers"."""
    control_point = ControlPoint.objects.get(
        from_cycle__value_stream=stream, from_cycle__name=COLLABORATION
    )
    control_point.receiving_team = TeamFactory(value_stream=stream, name="Closers")
    control_point.save()
    return control_point


def criteria_ids(control_point: ControlPoint, *, required: bool) -> list[int]:
    return list(control_point.criteria.filter(required=required).values_list("id", flat=True))


def test_handoff_pass_refuses_unmet_required_criteria(stream, control_point, member):
    card = CardFactory(column=column_of(stream, COLLABORATION, "Wisdom"))
    required = criteria_ids(control_point, required=True)
    before = snapshot(card)

    with pytest.raises(CriteriaNotMet, match="Our solution matches the problem"):
        handoff_pass(
            card_id=card.pk,
            control_point_id=control_point.pk,
            criteria_met_ids=[required[0], *criteria_ids(control_point, required=False)],
            actor=as_actor(member),
        )

    assert snapshot(card) == before
    assert not Handoff.objects.exists()
    assert not CardMove.objects.exists()


def test_handoff_pass_records_who_when_what_and_to_whom(stream, team, control_point, member):
    wisdom = column_of(stream, COLLABORATION, "Wisdom")
    card = CardFactory(column=wisdom)
    met = [
        *criteria_ids(control_point, required=True),
        *criteria_ids(control_point, required=False)[:1],
    ]
    closers = control_point.receiving_team

    result = handoff_pass(
        card_id=card.pk,
        control_point_id=control_point.pk,
        criteria_met_ids=met,
        actor=as_actor(member),
        at=AT,
    )

    handoff = Handoff.objects.get()
    assert (handoff.card, handoff.control_point, handoff.actor, handoff.handed_off_at) == (
        card,
        control_point,
        member,
        AT,
    )
    assert (handoff.from_team, handoff.to_team) == (team, closers)
    assert set(handoff.criteria_met.values_list("id", flat=True)) == set(met)
    sales_data = column_of(stream, SALES, "Data")
    card.refresh_from_db()
    assert (card.column, card.owning_team, card.column_entered_at) == (sales_data, closers, AT)
    move = CardMove.objects.get()
    assert (move.from_column, move.to_column, move.kind, move.actor, move.moved_at) == (
        wisdom,
        sales_data,
        MoveKind.HANDOFF,
        member,
        AT,
    )
    assert handoff.move == move == result.move


def test_handoff_pass_without_receiving_team_hands_to_the_next_cycles_team(
    stream, control_point, member
):
    control_point.receiving_team = None
    control_point.save()
    hunters = TeamFactory(value_stream=stream, name="Hunters")
    control_point.to_cycle.owning_team = hunters
    control_point.to_cycle.save()
    card = CardFactory(column=column_of(stream, COLLABORATION, "Knowledge"))

    handoff_pass(
        card_id=card.pk,
        control_point_id=control_point.pk,
        criteria_met_ids=criteria_ids(control_point, required=True),
        actor=as_actor(member),
    )

    assert Handoff.objects.get().to_team == hunters
    assert Card.objects.get(pk=card.pk).owning_team == hunters


def test_handoff_pass_respects_the_wip_limit_of_the_next_cycle(stream, control_point, member):
    sales_data = column_of(stream, SALES, "Data")
    sales_data.wip_limit = 1
    sales_data.save()
    fill(sales_data, 1)
    card = CardFactory(column=column_of(stream, COLLABORATION, "Wisdom"))
    before = snapshot(card)

    with pytest.raises(WipLimitReached) as refused:
        handoff_pass(
            card_id=card.pk,
            control_point_id=control_point.pk,
            criteria_met_ids=criteria_ids(control_point, required=True),
            actor=as_actor(member),
        )

    assert str(refused.value) == "Data is at its WIP limit, 1/1"
    assert snapshot(card) == before
    assert not Handoff.objects.exists()
    assert not CardMove.objects.exists()


def test_handoff_pass_refuses_criteria_of_another_control_point(stream, control_point, member):
    card = CardFactory(column=column_of(stream, COLLABORATION, "Wisdom"))
    next_point = ControlPoint.objects.get(from_cycle=control_point.to_cycle)

    with pytest.raises(InvalidMove, match="do not belong"):
        handoff_pass(
            card_id=card.pk,
            control_point_id=control_point.pk,
            criteria_met_ids=[
                *criteria_ids(control_point, required=True),
                *criteria_ids(next_point, required=True),
            ],
            actor=as_actor(member),
        )

    assert not Handoff.objects.exists()


def test_handoff_pass_refuses_a_card_outside_the_control_points_cycle(
    stream, control_point, member
):
    card = CardFactory(column=column_of(stream, SALES, "Information"))
    before = snapshot(card)

    with pytest.raises(StaleBoard, match="no longer in Collaboration"):
        handoff_pass(
            card_id=card.pk,
            control_point_id=control_point.pk,
            criteria_met_ids=criteria_ids(control_point, required=True),
            actor=as_actor(member),
        )

    assert snapshot(card) == before
    assert not Handoff.objects.exists()


# card_close and card_reopen


@pytest.mark.parametrize(
    ("outcome", "kind"), [(Outcome.WON, MoveKind.WON), (Outcome.LOST, MoveKind.LOST)]
)
def test_card_close_takes_the_card_out_of_the_wip_count(
    knowledge, information, member, outcome, kind
):
    closing, *_ = fill(knowledge, 5)
    waiting = CardFactory(column=information)

    card_close(card_id=closing.pk, outcome=outcome, actor=as_actor(member), at=AT)
    card_move(card_id=waiting.pk, to_column_id=knowledge.pk, actor=as_actor(member))

    closing.refresh_from_db()
    assert (closing.outcome, closing.closed_at, closing.column) == (outcome, AT, knowledge)
    assert Card.objects.filter(column=knowledge, outcome=Outcome.OPEN).count() == 5
    assert Card.objects.get(pk=waiting.pk).column == knowledge
    move = CardMove.objects.get(card=closing)
    assert (move.from_column, move.to_column, move.kind, move.actor, move.moved_at) == (
        knowledge,
        knowledge,
        kind,
        member,
        AT,
    )


@pytest.mark.parametrize("outcome", [Outcome.OPEN, "abandoned"])
def test_card_close_needs_won_or_lost(information, member, outcome):
    card = CardFactory(column=information)
    before = snapshot(card)

    with pytest.raises(InvalidMove, match="won or lost"):
        card_close(card_id=card.pk, outcome=outcome, actor=as_actor(member))

    assert snapshot(card) == before


def test_card_close_refuses_a_closed_card(information, member):
    card = CardFactory(column=information)
    card_close(card_id=card.pk, outcome=Outcome.WON, actor=as_actor(member))

    with pytest.raises(InvalidMove, match="already won"):
        card_close(card_id=card.pk, outcome=Outcome.LOST, actor=as_actor(member))

    assert Card.objects.get(pk=card.pk).outcome == Outcome.WON
    assert CardMove.objects.filter(card=card).count() == 1


def test_card_reopen_puts_the_card_back_at_the_end_of_its_column(knowledge, member):
    card, *others = fill(knowledge, 3)
    card_close(card_id=card.pk, outcome=Outcome.LOST, actor=as_actor(member))

    card_reopen(card_id=card.pk, actor=as_actor(member), at=AT)

    card.refresh_from_db()
    assert (card.outcome, card.closed_at, card.version) == (Outcome.OPEN, None, 3)
    assert open_order(knowledge) == [*(c.pk for c in others), card.pk]
    reopen = CardMove.objects.get(card=card, kind=MoveKind.REOPEN)
    assert (reopen.from_column, reopen.to_column, reopen.actor, reopen.moved_at) == (
        knowledge,
        knowledge,
        member,
        AT,
    )
    assert list(
        CardMove.objects.filter(card=card).order_by("id").values_list("kind", flat=True)
    ) == [
        MoveKind.LOST,
        MoveKind.REOPEN,
    ]


def test_card_reopen_respects_the_wip_limit(knowledge, information, member):
    closed, *_ = fill(knowledge, 5)
    card_close(card_id=closed.pk, outcome=Outcome.WON, actor=as_actor(member), at=AT)
    card_move(
        card_id=CardFactory(column=information).pk,
        to_column_id=knowledge.pk,
        actor=as_actor(member),
    )
    before = snapshot(closed)

    with pytest.raises(WipLimitReached) as refused:
        card_reopen(card_id=closed.pk, actor=as_actor(member))

    assert str(refused.value) == "Knowledge is at its WIP limit, 5/5"
    assert snapshot(closed) == before
    assert Card.objects.get(pk=closed.pk).closed_at == AT
    assert not CardMove.objects.filter(kind=MoveKind.REOPEN).exists()


def test_card_reopen_refuses_an_open_card(information, member):
    card = CardFactory(column=information)

    with pytest.raises(InvalidMove, match="already open"):
        card_reopen(card_id=card.pk, actor=as_actor(member))

    assert not CardMove.objects.exists()


# card_set_blocked


@pytest.mark.parametrize("reason", ["", "   "])
def test_card_set_blocked_needs_a_reason(information, member, reason):
    card = CardFactory(column=information)

    with pytest.raises(InvalidMove, match="why"):
        card_set_blocked(card_id=card.pk, blocked=True, reason=reason, actor=as_actor(member))

    card.refresh_from_db()
    assert (card.is_blocked, card.blocked_reason, card.version) == (False, "", 1)


def test_card_set_blocked_blocks_and_unblocks(information, member):
    card = CardFactory(column=information)

    card_set_blocked(
        card_id=card.pk, blocked=True, reason=" Waiting for budget ", actor=as_actor(member), at=AT
    )
    card.refresh_from_db()
    assert (card.is_blocked, card.blocked_reason, card.blocked_at, card.version) == (
        True,
        "Waiting for budget",
        AT,
        2,
    )

    card_set_blocked(card_id=card.pk, blocked=False, actor=as_actor(member), expected_version=2)
    card.refresh_from_db()
    assert (card.is_blocked, card.blocked_reason, card.blocked_at, card.version) == (
        False,
        "",
        None,
        3,
    )


def test_card_set_blocked_refuses_a_stale_version(information, member):
    card = CardFactory(column=information, version=4)

    with pytest.raises(StaleBoard):
        card_set_blocked(
            card_id=card.pk,
            blocked=True,
            reason="Budget",
            actor=as_actor(member),
            expected_version=3,
        )

    assert not Card.objects.get(pk=card.pk).is_blocked


# column_set_wip_limit


@pytest.mark.parametrize("who", ["member", "user"])
def test_column_set_wip_limit_refuses_anyone_but_a_manager(request, information, who):
    actor = request.getfixturevalue(who)

    with pytest.raises(PermissionRefused):
        column_set_wip_limit(column_id=information.pk, wip_limit=3, actor=as_actor(actor))

    assert Column.objects.get(pk=information.pk).wip_limit == information.wip_limit


@pytest.mark.parametrize("who", ["manager", "deputy", "superuser"])
def test_column_set_wip_limit_lets_managers_and_admins_change_it(request, information, who):
    if who == "superuser":
        actor = UserFactory(is_superuser=True, is_staff=True)
    else:
        actor = request.getfixturevalue(who)

    column_set_wip_limit(column_id=information.pk, wip_limit=3, actor=as_actor(actor))
    assert Column.objects.get(pk=information.pk).wip_limit == 3

    column_set_wip_limit(column_id=information.pk, wip_limit=None, actor=as_actor(actor))
    assert Column.objects.get(pk=information.pk).wip_limit is None


@pytest.mark.parametrize("wip_limit", [0, -2])
def test_column_set_wip_limit_refuses_a_limit_below_one(information, manager, wip_limit):
    with pytest.raises(InvalidMove):
        column_set_wip_limit(column_id=information.pk, wip_limit=wip_limit, actor=as_actor(manager))

    assert Column.objects.get(pk=information.pk).wip_limit == information.wip_limit


# Event times: now, or a given time that is aware, not before 2000, not in the future.


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC), "before 2000-01-01"),
        (timezone.now() + datetime.timedelta(days=200), "in the future"),
        (datetime.datetime(2025, 5, 5, 9), "time zone"),
    ],
    ids=["1900", "200 days ahead", "naive"],
)
def test_an_event_dated_out_of_range_is_refused_and_nothing_is_written(
    stream, manager, information, at, message
):
    first = column_of(stream, COLLABORATION, "Data")
    card = card_create(cycle_id=first.cycle_id, actor=as_actor(manager), person_name="Dated").card
    before = snapshot(card), CardMove.objects.count()
    with pytest.raises(InvalidMove, match=message):
        card_create(cycle_id=first.cycle_id, actor=as_actor(manager), person_name="Typo", at=at)
    with pytest.raises(InvalidMove, match=message):
        card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager), at=at)
    with pytest.raises(InvalidMove, match=message):
        card_close(card_id=card.pk, outcome=Outcome.WON, actor=as_actor(manager), at=at)
    assert (snapshot(card), CardMove.objects.count()) == before
    assert not Card.objects.filter(person_name="Typo").exists()


def test_an_event_a_little_ahead_of_this_clock_is_recorded_as_given(stream, manager):
    # Another machine's clock may run a few seconds ahead.
    ahead = timezone.now() + datetime.timedelta(seconds=30)
    first = column_of(stream, COLLABORATION, "Data")
    result = card_create(
        cycle_id=first.cycle_id, actor=as_actor(manager), person_name="Ahead", at=ahead
    )
    assert result.move.moved_at == ahead
