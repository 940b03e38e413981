"""Every named constraint of the boards models, and the append-only move log."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from boards.models import (
    Card,
    CardMove,
    Column,
    ColumnSplit,
    Handoff,
    KnowledgeLevel,
    MoveKind,
    Outcome,
)
from tests.constraints import violates
from tests.factories import (
    CardFactory,
    CardMoveFactory,
    ColumnFactory,
    CriterionFactory,
    HandoffFactory,
)

pytestmark = pytest.mark.django_db


def test_column_order_unique_per_cycle():
    column = ColumnFactory(order=1)
    elsewhere = ColumnFactory(order=1)
    assert Column.objects.get(pk=elsewhere.pk).cycle_id != column.cycle_id

    with violates(Column, "boards_column_unique_order"):
        ColumnFactory(cycle=column.cycle, order=1)


def test_column_name_unique_per_cycle():
    column = ColumnFactory(name="Knowledge")
    elsewhere = ColumnFactory(name="Knowledge")
    assert Column.objects.get(pk=elsewhere.pk).cycle_id != column.cycle_id

    with violates(Column, "boards_column_unique_name_per_cycle"):
        ColumnFactory(cycle=column.cycle, name="Knowledge")


@pytest.mark.parametrize("wip_limit", [None, 1, 7])
def test_column_wip_limit_empty_or_positive_accepts(wip_limit):
    column = ColumnFactory(wip_limit=wip_limit)

    assert Column.objects.get(pk=column.pk).wip_limit == wip_limit


def test_column_wip_limit_empty_or_positive_refuses_zero():
    with violates(Column, "boards_column_wip_limit_empty_or_positive"):
        ColumnFactory(wip_limit=0)


@pytest.mark.parametrize("level", KnowledgeLevel.values)
def test_column_knowledge_level_valid_accepts_every_level(level):
    column = ColumnFactory(knowledge_level=level)

    assert Column.objects.get(pk=column.pk).knowledge_level == level


def test_column_knowledge_level_valid_refuses_unknown_level():
    with violates(Column, "boards_column_knowledge_level_valid"):
        ColumnFactory(knowledge_level="rumour")


@pytest.mark.parametrize("split", ColumnSplit.values)
def test_column_split_valid_accepts_every_split(split):
    column = ColumnFactory(split=split)

    assert Column.objects.get(pk=column.pk).split == split


def test_column_split_valid_refuses_unknown_split():
    with violates(Column, "boards_column_split_valid"):
        ColumnFactory(split="later")


def test_column_name_not_blank():
    assert ColumnFactory(name="Wisdom").pk

    with violates(Column, "boards_column_name_not_blank"):
        ColumnFactory(name="")


def test_card_factory_keeps_the_card_in_its_columns_stream():
    card = Card.objects.select_related("column__cycle").get(pk=CardFactory().pk)

    assert card.value_stream_id == card.column.cycle.value_stream_id


def test_card_open_position_unique_per_column():
    card = CardFactory()
    # The same position in another column, and a closed card at the same place, are fine.
    CardFactory(position=card.position)
    CardFactory(
        column=card.column, position=card.position, outcome=Outcome.WON, closed_at=timezone.now()
    )
    assert Card.objects.filter(column=card.column, position=card.position).count() == 2

    with violates(Card, "boards_card_unique_open_position"):
        CardFactory(column=card.column, position=card.position)


@pytest.mark.parametrize(
    ("person_name", "company"), [("Ada Lovelace", ""), ("", "Analytical Engines"), ("Ada", "AE")]
)
def test_card_person_or_company_accepts(person_name, company):
    card = CardFactory(person_name=person_name, company=company)

    assert Card.objects.filter(pk=card.pk, person_name=person_name, company=company).exists()


def test_card_person_or_company_refuses_neither():
    with violates(Card, "boards_card_person_or_company"):
        CardFactory(person_name="", company="")


def test_card_estimated_value_not_negative():
    assert CardFactory(estimated_value=Decimal("0.00")).pk

    with violates(Card, "boards_card_estimated_value_not_negative"):
        CardFactory(estimated_value=Decimal("-0.01"))


def test_card_blocked_needs_reason():
    assert CardFactory(is_blocked=True, blocked_reason="Waiting for the buyer's budget").pk
    assert CardFactory(is_blocked=False, blocked_reason="").pk

    with violates(Card, "boards_card_blocked_needs_reason"):
        CardFactory(is_blocked=True, blocked_reason="")


@pytest.mark.parametrize("outcome", [Outcome.WON, Outcome.LOST])
def test_card_outcome_valid_accepts_closed_outcomes(outcome):
    card = CardFactory(outcome=outcome, closed_at=timezone.now())

    assert Card.objects.get(pk=card.pk).outcome == outcome


def test_card_outcome_valid_refuses_unknown_outcome():
    with violates(Card, "boards_card_outcome_valid"):
        CardFactory(outcome="meh", closed_at=timezone.now())


@pytest.mark.parametrize(
    ("outcome", "closed"),
    [(Outcome.OPEN, True), (Outcome.WON, False), (Outcome.LOST, False)],
)
def test_card_closed_at_matches_outcome(outcome, closed):
    assert CardFactory(outcome=Outcome.OPEN, closed_at=None).pk
    assert CardFactory(outcome=Outcome.LOST, closed_at=timezone.now()).pk

    with violates(Card, "boards_card_closed_at_matches_outcome"):
        CardFactory(outcome=outcome, closed_at=timezone.now() if closed else None)


def test_card_version_positive():
    assert CardFactory(version=1).pk

    with violates(Card, "boards_card_version_positive"):
        CardFactory(version=0)


@pytest.mark.parametrize("kind", sorted(set(MoveKind.values) - {MoveKind.ENTER}))
def test_cardmove_kind_valid_accepts_every_kind(kind):
    card = CardFactory()
    move = CardMoveFactory(card=card, from_column=card.column, kind=kind)

    assert CardMove.objects.get(pk=move.pk).kind == kind


def test_cardmove_kind_valid_refuses_unknown_kind():
    card = CardFactory()

    with violates(CardMove, "boards_cardmove_kind_valid"):
        CardMoveFactory(card=card, from_column=card.column, kind="teleport")


def test_cardmove_only_the_entry_has_no_origin():
    card = CardFactory()
    other = ColumnFactory(cycle=card.column.cycle)
    assert CardMoveFactory(card=card, kind=MoveKind.ENTER, from_column=None).pk
    assert CardMoveFactory(card=card, kind=MoveKind.MOVE, from_column=other).pk

    with violates(CardMove, "boards_cardmove_origin_matches_kind"):
        CardMoveFactory(card=card, kind=MoveKind.ENTER, from_column=other)
    with violates(CardMove, "boards_cardmove_origin_matches_kind"):
        CardMoveFactory(card=card, kind=MoveKind.MOVE, from_column=None)


def test_handoff_factory_is_coherent():
    criterion = CriterionFactory()
    handoff = HandoffFactory(
        card__column__cycle=criterion.control_point.from_cycle,
        control_point=criterion.control_point,
        criteria_met=[criterion],
    )

    handoff = Handoff.objects.select_related(
        "control_point", "card__column", "move__to_column"
    ).get(pk=handoff.pk)
    assert handoff.control_point.from_cycle_id == handoff.card.column.cycle_id
    assert handoff.move.to_column.cycle_id == handoff.control_point.to_cycle_id
    assert handoff.move.kind == MoveKind.HANDOFF
    assert list(handoff.criteria_met.all()) == [criterion]


@pytest.mark.postgres
def test_cardmove_update_refused_by_trigger():
    move = CardMoveFactory()

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CardMove.objects.filter(pk=move.pk).update(kind=MoveKind.WON)

    assert CardMove.objects.get(pk=move.pk).kind == MoveKind.ENTER


@pytest.mark.postgres
def test_cardmove_delete_refused_by_trigger():
    move = CardMoveFactory()

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CardMove.objects.filter(pk=move.pk).delete()

    assert CardMove.objects.filter(pk=move.pk).exists()
