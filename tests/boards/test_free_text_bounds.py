"""Every free-text field has a bound: a card's notes are counted as they are typed and
refused whole past NOTES_MAX_LENGTH, with the text kept on the page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from boards.errors import InvalidMove
from boards.models import NOTES_MAX_LENGTH, Card
from boards.services import card_update
from tests.support import as_actor, logged_in, new_card

pytestmark = pytest.mark.django_db


def test_notes_past_the_bound_are_refused_on_their_field(stream, member):
    with pytest.raises(InvalidMove) as created:
        new_card(stream, member, notes="n" * (NOTES_MAX_LENGTH + 1))
    card = new_card(stream, member, notes="n" * NOTES_MAX_LENGTH)

    with pytest.raises(InvalidMove) as edited:
        card_update(
            card_id=card.pk,
            actor=as_actor(member),
            person_name=card.person_name,
            company=card.company,
            email="",
            channel_id=None,
            owner_id=None,
            estimated_value=0,
            notes="n" * (NOTES_MAX_LENGTH + 1),
        )

    assert (created.value.field, edited.value.field) == ("notes", "notes")
    assert edited.value.data == {"length": NOTES_MAX_LENGTH + 1, "limit": NOTES_MAX_LENGTH}
    assert len(Card.objects.get(pk=card.pk).notes) == NOTES_MAX_LENGTH


def test_the_card_page_counts_the_notes_and_keeps_a_refused_text(stream, member):
    card = new_card(stream, member)
    client = logged_in(member)
    url = reverse("boards:card-edit", args=[stream.slug, card.pk])
    long_notes = "Met at the fair. " * 700  # 11,900 characters

    page = client.get(reverse("boards:card-detail", args=[stream.slug, card.pk])).content.decode()
    refused = client.post(
        url,
        {
            "person_name": card.person_name,
            "company": card.company,
            "notes": long_notes,
            "estimated_value": "0",
            "version": card.version,
        },
    )

    assert f'data-max-length="{NOTES_MAX_LENGTH}"' in page
    assert refused.status_code == 400
    assert "Notes hold at most 10,000 characters; these have 11,899." in refused.content.decode()
    assert long_notes.strip() in refused.content.decode()
    assert Card.objects.get(pk=card.pk).notes == ""
