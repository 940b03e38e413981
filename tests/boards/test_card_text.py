"""A card's text holds no control character a board cannot show (boards.services.rules),
whichever way it comes: the board's form, the API, an import, an edit."""

from __future__ import annotations

import pytest

from boards.errors import InvalidMove
from boards.models import Card
from boards.services import card_create, card_update
from tests.support import COLLABORATION, as_actor, column_of, new_card

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("person_name", "Ada\x00Keller", "NUL"),
        ("company", "Nord\x1bwerk", "U+001B"),
        ("email", "ada\x7f@example.com", "U+007F"),
        ("notes", "call\x85back", "U+0085"),
    ],
)
def test_a_new_card_with_a_control_character_is_refused(stream, manager, field, value, shown):
    facts = {"person_name": "Ada Keller", "company": "Nordwerk", field: value}

    with pytest.raises(InvalidMove) as refused:
        card_create(
            cycle_id=column_of(stream, COLLABORATION, "Data").cycle_id,
            actor=as_actor(manager),
            **facts,
        )

    assert refused.value.field == field
    assert shown in refused.value.message
    assert not Card.objects.filter(value_stream=stream).exists()


def test_an_edit_with_a_control_character_is_refused_and_changes_nothing(stream, manager):
    card = new_card(stream, manager, person_name="Ada Keller")

    with pytest.raises(InvalidMove) as refused:
        card_update(
            card_id=card.pk,
            actor=as_actor(manager),
            person_name="Ada\x1b[31mKeller",
            company=card.company,
            email=card.email,
            channel_id=card.channel_id,
            owner_id=card.owner_id,
            estimated_value=card.estimated_value,
            notes="",
        )

    assert refused.value.field == "person_name"
    assert Card.objects.get(pk=card.pk).person_name == "Ada Keller"


def test_tabs_and_line_breaks_in_notes_are_kept(stream, manager):
    card = new_card(stream, manager, notes="first line\r\nsecond\tcolumn")

    assert Card.objects.get(pk=card.pk).notes == "first line\r\nsecond\tcolumn"
