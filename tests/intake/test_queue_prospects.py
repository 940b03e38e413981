"""``prospect_intake``: one prospect (a web form's) into its cycle's first column, or
into the intake queue behind those already waiting; checked before either."""

from __future__ import annotations

from decimal import Decimal

import pytest

from boards.errors import InvalidMove
from boards.models import NOTES_MAX_LENGTH, Card, Column
from intake.models import IntakeItem
from intake.services import IntakeResult, prospect_intake
from pdca.errors import CycleNotFound
from tests.factories import UserFactory
from tests.support import COLLABORATION, SALES, TEST_SYSTEM, column_of, new_card
from vsm.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def full(stream) -> Column:
    """Collaboration / Data at its WIP limit of 1."""
    column = column_of(stream, COLLABORATION, "Data")
    Column.objects.filter(pk=column.pk).update(wip_limit=1)
    new_card(stream, stream.manager, person_name="Holding the column")
    return column


def _intake(stream, column: Column, **fields) -> IntakeResult:
    return prospect_intake(
        cycle_id=column.cycle_id, stream_id=stream.pk, actor=TEST_SYSTEM, **fields
    )


def test_the_position_counts_the_cycles_line_held_prospects_aside(stream, full):
    first = _intake(stream, full, person_name="First")
    held = _intake(stream, full, person_name="Held")
    IntakeItem.objects.filter(pk=held.item.pk).update(held_code="x", held_message="Held aside.")
    sales = column_of(stream, SALES, "Data")
    Column.objects.filter(pk=sales.pk).update(wip_limit=1)
    sales_card = _intake(stream, sales, person_name="Sales card")
    other_line = _intake(stream, sales, person_name="Sales waiting")

    third = _intake(stream, full, person_name="Third")

    assert (first.queued, first.position, first.card) == (True, 1, None)
    assert held.position == 2
    assert sales_card.card is not None and not sales_card.queued
    assert other_line.position == 1
    assert third.position == 2  # behind "First"; "Held" waits aside
    assert third.item is not None and third.item.cycle_id == full.cycle_id


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"company": "Acme", "owner_id": "outsider"}, "owner"),
        ({"company": "Acme", "estimated_value": Decimal("-1")}, "estimated_value"),
        ({"company": "Acme", "notes": "x" * (NOTES_MAX_LENGTH + 1)}, "notes"),
        ({"person_name": " ", "company": ""}, "person_name"),
    ],
)
def test_a_prospect_card_create_would_refuse_is_never_queued(stream, full, fields, field):
    if fields.get("owner_id") == "outsider":
        fields = fields | {"owner_id": UserFactory().pk}

    with pytest.raises(InvalidMove) as refused:
        _intake(stream, full, **fields)

    assert refused.value.field == field
    assert not IntakeItem.objects.exists()
    assert not AuditEntry.objects.filter(action="intake_item.queued").exists()


def test_another_streams_cycle_is_not_found(stream, other_stream, full):
    theirs = column_of(other_stream, COLLABORATION, "Data")

    with pytest.raises(CycleNotFound):
        prospect_intake(
            cycle_id=theirs.cycle_id, stream_id=stream.pk, actor=TEST_SYSTEM, company="Acme"
        )

    assert not IntakeItem.objects.exists()
    assert not Card.objects.filter(company="Acme").exists()
