"""The card list's "Mark selected cards lost…": a step that asks why (a reason from the
stream's active list, a note), as Django's "delete selected" asks to confirm, then each
card closed through card_close, and a word per card on what was done."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from boards.errors import StaleBoard
from boards.models import Card, CardLoss, Outcome
from boards.services import card_close
from tests.factories import UserFactory
from tests.support import TEST_SYSTEM, logged_in, new_card
from vsm.models import LostReason
from vsm.services import lost_reason_create, lost_reason_deactivate

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:boards_card_changelist"


@pytest.fixture
def admin_client(db) -> Client:
    return logged_in(UserFactory(username="root", is_staff=True, is_superuser=True))


@pytest.fixture
def reasons(stream) -> list[LostReason]:
    made = [
        lost_reason_create(stream_id=stream.pk, name=name, actor=TEST_SYSTEM)
        for name in ("No budget", "Chose a competitor", "Old reason")
    ]
    lost_reason_deactivate(lost_reason_id=made[2].pk, actor=TEST_SYSTEM)
    return made


def mark_lost(client: Client, cards: list[Card], **why: Any):
    """The action bar's post ("index"), or with ``why`` the reason step's post."""
    data: dict[str, Any] = {"action": "mark_lost", "_selected_action": [c.pk for c in cards]}
    data |= {"apply": "yes", **why} if why else {"index": 0}
    return client.post(reverse(CHANGELIST), data)


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def test_marking_lost_asks_why_from_the_streams_active_reasons_first(
    admin_client, stream, manager, reasons
):
    cards = [new_card(stream, manager, person_name=name) for name in ("Ada", "Bo")]

    response = mark_lost(admin_client, cards)

    assert response.status_code == 200
    assert response.templates[0].name == "admin/boards/card/mark_lost.html"
    page = response.content.decode()
    assert f"Mark 2 cards of <strong>{stream.name}</strong> lost." in page
    offered = list(response.context["form"].fields["lost_reason"].queryset)
    assert offered == reasons[:2]  # not the one no longer offered
    assert 'data-max-length="500"' in page  # the note is counted, not cut
    for card in cards:
        assert f'name="_selected_action" value="{card.pk}"' in page
    assert all(Card.objects.get(pk=card.pk).is_open for card in cards)


def test_each_card_is_closed_with_the_reason_and_note_and_named_in_the_report(
    admin_client, stream, manager, reasons
):
    ada = new_card(stream, manager, person_name="Ada", company="")
    bo = new_card(stream, manager, person_name="Bo", company="")
    won = new_card(stream, manager, person_name="Cy", company="")
    card_close(card_id=won.pk, outcome=Outcome.WON, actor=TEST_SYSTEM)

    response = mark_lost(
        admin_client, [ada, bo, won], lost_reason=reasons[0].pk, lost_note="Froze\r\nspending"
    )

    assert (response.status_code, response.url) == (302, reverse(CHANGELIST))
    assert messages_of(response) == [
        ("success", "Marked lost (No budget): Ada; Bo."),
        ("warning", "Not open, left as they were: Cy (won)."),
    ]
    losses = CardLoss.objects.filter(move__card__in=[ada, bo]).order_by("move__card_id")
    assert [(loss.reason_id, loss.note) for loss in losses] == [
        (reasons[0].pk, "Froze\nspending")
    ] * 2
    assert Card.objects.get(pk=won.pk).outcome == Outcome.WON


def test_without_a_reason_or_note_the_step_asks_again_and_closes_nothing(
    admin_client, stream, manager, reasons
):
    card = new_card(stream, manager)

    response = mark_lost(admin_client, [card], lost_reason="", lost_note="   ")

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "lost_reason": ["Say why the deal was lost: choose a reason, write a note, or both."]
    }
    assert Card.objects.get(pk=card.pk).is_open


def test_a_note_too_long_is_refused_on_the_step_keeping_it(admin_client, stream, manager, reasons):
    card = new_card(stream, manager)
    note = "n" * 600

    response = mark_lost(admin_client, [card], lost_reason=reasons[0].pk, lost_note=note)

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "lost_note": ["A note is at most 500 characters; this one has 600."]
    }
    assert f"{note}</textarea>" in response.content.decode()
    assert Card.objects.get(pk=card.pk).is_open


def test_cards_of_several_streams_are_refused_with_why(
    admin_client, stream, other_stream, manager, reasons
):
    ours = new_card(stream, manager)
    theirs = new_card(other_stream, other_stream.manager)

    response = mark_lost(admin_client, [ours, theirs])

    assert (response.status_code, response.url) == (302, reverse(CHANGELIST))
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert text.startswith(
        f"Not marked lost: the cards are of 2 value streams ({stream.name}, "
        f"{other_stream.name}), and each stream has its own lost reasons."
    )
    assert Card.objects.get(pk=ours.pk).is_open and Card.objects.get(pk=theirs.pk).is_open


def test_a_stream_without_a_list_is_asked_for_a_note_only(admin_client, stream, manager):
    card = new_card(stream, manager, person_name="Ada", company="")

    step = mark_lost(admin_client, [card])
    done = mark_lost(admin_client, [card], lost_note="")

    assert "lost_reason" not in step.context["form"].fields
    assert messages_of(done) == [("success", "Marked lost: Ada.")]
    assert Card.objects.get(pk=card.pk).outcome == Outcome.LOST


def test_a_card_refused_by_the_service_is_named_and_the_others_closed(
    admin_client, stream, manager, reasons, monkeypatch
):
    ada = new_card(stream, manager, person_name="Ada", company="")
    bo = new_card(stream, manager, person_name="Bo", company="")

    def close_but_bo(**kwargs: Any):
        if kwargs["card_id"] == bo.pk:
            raise StaleBoard()  # someone else changed it meanwhile
        return card_close(**kwargs)

    monkeypatch.setattr("boards.services.card_close", close_but_bo)

    response = mark_lost(admin_client, [ada, bo], lost_reason=reasons[1].pk)

    assert messages_of(response) == [
        ("success", "Marked lost (Chose a competitor): Ada."),
        ("error", f"Not marked lost: Bo: {StaleBoard.default_message}"),
    ]
    assert Card.objects.get(pk=ada.pk).outcome == Outcome.LOST
    assert Card.objects.get(pk=bo.pk).is_open
