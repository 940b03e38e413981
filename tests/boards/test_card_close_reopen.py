"""Reopening a deal into a column that has filled up since it closed: an undo mends the
close (no WIP check), a reopen is a new pull that the WIP limit holds; refused, the
card's reopen page says why, and offers those who steer the stream to reopen it anyway
with a reason, as the board's refusal does. Never a silent failure."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from boards.errors import WipLimitReached
from boards.models import Card, CardMove, MoveKind, Outcome
from boards.services import card_close
from tests.support import as_actor, logged_in, new_card

pytestmark = pytest.mark.django_db


def card_url(card: Card) -> str:
    return reverse("boards:card-detail", args=[card.value_stream.slug, card.pk])


def reopen_url(card: Card) -> str:
    return reverse("boards:card-reopen", args=[card.value_stream.slug, card.pk])


def archive_url(card: Card) -> str:
    return reverse("boards:archive", args=[card.value_stream.slug])


@pytest.fixture
def closed_in_full_column(stream, member) -> Card:
    """A deal won in Collaboration / Wisdom by ``member``, whose column then filled up."""
    card = new_card(stream, member, column_name="Wisdom")
    closed = card_close(card_id=card.pk, outcome=Outcome.WON, actor=as_actor(member)).card
    for n in range(card.column.wip_limit):
        new_card(stream, member, column_name="Wisdom", person_name=f"Pulled in {n}")
    return closed


def test_an_undo_into_a_full_column_takes_the_card_back(member, closed_in_full_column):
    card = closed_in_full_column

    response = logged_in(member).post(reopen_url(card), {"version": card.version, "undo": "1"})

    assert (response.status_code, response.url) == (302, card_url(card))
    assert Card.objects.get(pk=card.pk).is_open


def test_a_reopen_refused_for_wip_says_why_on_the_page_and_who_may_override(
    member, closed_in_full_column
):
    card = closed_in_full_column
    limit = card.column.wip_limit
    moves = CardMove.objects.count()

    response = logged_in(member).post(
        reopen_url(card), {"version": card.version, "next": archive_url(card)}
    )

    assert response.status_code == WipLimitReached.http_status
    page = response.content.decode()
    assert (
        f"Wisdom is at its WIP limit, {limit}/{limit}: a value stream manager can reopen it "
        "anyway, with a reason for the log."
    ) in page
    assert 'name="override_reason"' not in page  # a member may not override
    assert f'<a href="{archive_url(card)}">&larr; Back to the archive</a>' in page
    assert Card.objects.get(pk=card.pk).outcome == Outcome.WON
    assert CardMove.objects.count() == moves


def test_a_manager_is_offered_to_reopen_anyway_and_goes_back_where_they_were(
    manager, closed_in_full_column
):
    card = closed_in_full_column
    client = logged_in(manager)
    here = f"{archive_url(card)}?outcome=won"

    refused = client.post(reopen_url(card), {"version": card.version, "next": here})
    page = refused.content.decode()
    anyway = client.post(
        reopen_url(card),
        {"version": card.version, "next": here, "override_reason": "Back with a budget"},
    )

    assert refused.status_code == 409
    assert "you may reopen it anyway as value stream manager" in page
    assert 'name="override_reason" required' in page
    assert f'name="next" value="{here}"' in page.replace("&amp;", "&")
    assert ">Reopen anyway</button>" in page
    assert (anyway.status_code, anyway.url) == (302, here)
    move = CardMove.objects.filter(card=card).latest("id")
    assert (move.kind, move.wip_override_reason) == (MoveKind.REOPEN, "Back with a budget")
    [message] = [str(m) for m in get_messages(anyway.wsgi_request)]
    assert "It went over the WIP limit; the reason is logged." in message
