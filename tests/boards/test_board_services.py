"""card_move's answers for the board (issue 12): a repeat changes nothing and says so,
and the heads' open values come from the move's own count."""

from __future__ import annotations

from decimal import Decimal

import pytest

from boards.models import Card, CardMove
from boards.services import card_move
from tests.support import COLLABORATION, as_actor, column_of, new_card, snapshot

pytestmark = pytest.mark.django_db


def test_a_card_sent_to_its_own_column_at_no_place_stays_where_it_is(stream, manager):
    card = new_card(stream, manager, column_name="Information")
    new_card(stream, manager, person_name="Bo Berg", column_name="Information")
    before, moves = snapshot(card), CardMove.objects.count()

    result = card_move(card_id=card.pk, to_column_id=card.column_id, actor=as_actor(manager))

    assert result.unchanged and result.move is None
    assert snapshot(card) == before
    assert CardMove.objects.count() == moves
    assert result.open_counts == {
        column.pk: 2 if column.pk == card.column_id else 0 for column in result.columns
    }


def test_a_reorder_inside_the_column_is_still_a_change(stream, manager):
    card = new_card(stream, manager, column_name="Information")
    other = new_card(stream, manager, person_name="Bo Berg", column_name="Information")

    result = card_move(
        card_id=card.pk,
        to_column_id=card.column_id,
        actor=as_actor(manager),
        after_card_id=other.pk,
    )

    assert not result.unchanged
    assert Card.objects.get(pk=card.pk).position > Card.objects.get(pk=other.pk).position


def test_a_move_reports_the_open_values_after_it(stream, manager):
    card = new_card(stream, manager, estimated_value=Decimal("7000"))
    new_card(stream, manager, person_name="Bo Berg", estimated_value=Decimal("500.50"))
    data_column = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")

    result = card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))

    assert result.open_values == {
        data_column.pk: Decimal("500.50"),
        information.pk: Decimal("7000"),
    }
    assert result.open_counts == {data_column.pk: 1, information.pk: 1}
