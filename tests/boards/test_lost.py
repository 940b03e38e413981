"""Closing a deal deliberately: a lost deal says why (a reason from its stream's list, a
note, or both), recorded beside its lost move in the same transaction; won is one click
and the card page offers whoever closed it to undo it for a few minutes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from boards.errors import (
    InvalidMove,
    LostReasonInactive,
    LostReasonRequired,
    LostReasonUnknown,
    UndoExpired,
    WipLimitReached,
)
from boards.models import LOST_NOTE_MAX_LENGTH, Card, CardLoss, CardMove, MoveKind, Outcome
from boards.selectors import CLOSE_UNDO_WINDOW, card_closing
from boards.services import card_close, card_reopen
from tests.factories import ValueStreamFactory
from tests.support import TEST_SYSTEM, as_actor, logged_in, new_card, snapshot
from vsm.actors import UserActor
from vsm.models import AuditEntry, LostReason
from vsm.services import lost_reason_create, lost_reason_deactivate

pytestmark = pytest.mark.django_db


@pytest.fixture
def reasons(stream) -> list[LostReason]:
    return [
        lost_reason_create(stream_id=stream.pk, name=name, actor=TEST_SYSTEM)
        for name in ("No budget", "Chose a competitor")
    ]


def close_url(stream, card) -> str:
    return reverse("boards:card-close", args=[stream.slug, card.pk])


def card_url(stream, card) -> str:
    return reverse("boards:card-detail", args=[stream.slug, card.pk])


# --- the service ---------------------------------------------------------------------


def test_a_lost_deal_records_its_reason_and_note_beside_the_lost_move(stream, member, reasons):
    card = new_card(stream, member, column_name="Information")
    mark = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()

    result = card_close(
        card_id=card.pk,
        outcome=Outcome.LOST,
        actor=as_actor(member),
        expected_version=card.version,
        lost_reason_id=reasons[1].pk,
        lost_note="  Went with the incumbent's add-on.  ",
    )

    move = CardMove.objects.get(card=card, kind=MoveKind.LOST)
    loss = CardLoss.objects.get(move=move)
    assert (loss.reason_id, loss.note) == (reasons[1].pk, "Went with the incumbent's add-on.")
    assert result.move is not None and result.move.loss == loss
    assert Card.objects.get(pk=card.pk).outcome == Outcome.LOST
    # One audit row for the close (the loss hangs on the move it names), no text in it.
    rows = list(AuditEntry.objects.filter(pk__gt=mark))
    assert [(row.action, row.data["move_id"]) for row in rows] == [("card.lost", move.pk)]


def test_a_note_alone_says_why(stream, member, reasons):
    card = new_card(stream, member)

    card_close(card_id=card.pk, outcome=Outcome.LOST, actor=as_actor(member), lost_note="Acquired.")

    loss = CardLoss.objects.get(move__card=card)
    assert (loss.reason, loss.note) == (None, "Acquired.")


def test_a_stream_without_a_list_may_lose_a_deal_without_a_reason(stream, member):
    card = new_card(stream, member)
    inactive = lost_reason_create(stream_id=stream.pk, name="Old", actor=TEST_SYSTEM)
    lost_reason_deactivate(lost_reason_id=inactive.pk, actor=TEST_SYSTEM)

    card_close(card_id=card.pk, outcome=Outcome.LOST, actor=as_actor(member))

    assert Card.objects.get(pk=card.pk).outcome == Outcome.LOST
    assert not CardLoss.objects.exists()


def other_streams_reason(stream, reasons):
    return lost_reason_create(
        stream_id=ValueStreamFactory().pk, name="Their reason", actor=TEST_SYSTEM
    ).pk


def inactive_reason(stream, reasons):
    lost_reason_deactivate(lost_reason_id=reasons[0].pk, actor=TEST_SYSTEM)
    return reasons[0].pk


@pytest.mark.parametrize(
    ("arrange", "error", "code"),
    [
        (lambda stream, reasons: None, LostReasonRequired, "lost_reason_required"),
        (other_streams_reason, LostReasonUnknown, "lost_reason_unknown"),
        (lambda stream, reasons: 10**12, LostReasonUnknown, "lost_reason_unknown"),
        (inactive_reason, LostReasonInactive, "lost_reason_inactive"),
    ],
    ids=["neither", "another stream's", "missing", "inactive"],
)
def test_a_lost_deal_without_a_reason_of_its_list_is_refused_on_the_field(
    stream, member, reasons, arrange, error, code
):
    card = new_card(stream, member)
    before, moves = snapshot(card), CardMove.objects.count()

    with pytest.raises(error) as refused:
        card_close(
            card_id=card.pk,
            outcome=Outcome.LOST,
            actor=as_actor(member),
            lost_reason_id=arrange(stream, reasons),
        )

    assert (refused.value.code, refused.value.field, refused.value.http_status) == (
        code,
        "lost_reason",
        400,
    )
    assert snapshot(card) == before
    assert CardMove.objects.count() == moves
    assert not CardLoss.objects.exists()


def test_a_won_deal_has_no_lost_reason_and_a_note_has_a_length(stream, member, reasons):
    card = new_card(stream, member)

    with pytest.raises(InvalidMove) as won_with_reason:
        card_close(
            card_id=card.pk,
            outcome=Outcome.WON,
            actor=as_actor(member),
            lost_reason_id=reasons[0].pk,
        )
    with pytest.raises(InvalidMove) as too_long:
        card_close(
            card_id=card.pk,
            outcome=Outcome.LOST,
            actor=as_actor(member),
            lost_note="x" * (LOST_NOTE_MAX_LENGTH + 1),
        )

    assert won_with_reason.value.field == "lost_reason"
    assert too_long.value.field == "lost_note"
    assert too_long.value.data == {"max_length": LOST_NOTE_MAX_LENGTH}
    assert Card.objects.get(pk=card.pk).is_open


def test_lost_again_after_a_reopen_keeps_both_losses(stream, member, reasons):
    card = new_card(stream, member)
    actor = as_actor(member)
    card_close(card_id=card.pk, outcome=Outcome.LOST, actor=actor, lost_reason_id=reasons[0].pk)
    card_reopen(card_id=card.pk, actor=actor)

    card_close(card_id=card.pk, outcome=Outcome.LOST, actor=actor, lost_reason_id=reasons[1].pk)

    assert list(
        CardLoss.objects.filter(move__card=card).order_by("move_id").values_list("reason__name")
    ) == [("No budget",), ("Chose a competitor",)]


# --- undo --------------------------------------------------------------------------


def test_whoever_closed_it_may_undo_for_a_few_minutes_then_it_is_a_reopen(stream, member, manager):
    card = new_card(stream, member)
    closed = card_close(card_id=card.pk, outcome=Outcome.WON, actor=as_actor(member)).card
    moved_at = CardMove.objects.get(card=card, kind=MoveKind.WON).moved_at

    by_closer = card_closing(card=closed, actor=UserActor(member), now=moved_at)
    late = card_closing(
        card=closed, actor=UserActor(member), now=moved_at + CLOSE_UNDO_WINDOW + timedelta(1)
    )
    by_another = card_closing(card=closed, actor=UserActor(manager), now=moved_at)

    assert by_closer.can_undo and by_closer.undo_until == moved_at + CLOSE_UNDO_WINDOW
    assert not late.can_undo
    assert not by_another.can_undo
    assert by_another.move is not None and by_another.move.kind == MoveKind.WON


def test_an_undo_takes_the_card_back_into_its_column_even_when_it_has_filled_up(stream, member):
    card = new_card(stream, member, column_name="Wisdom")
    closed = card_close(card_id=card.pk, outcome=Outcome.LOST, actor=as_actor(member)).card
    for n in range(card.column.wip_limit):
        new_card(stream, member, column_name="Wisdom", person_name=f"Pulled in {n}")

    with pytest.raises(WipLimitReached):  # a reopen is a new pull: the limit holds
        card_reopen(card_id=card.pk, actor=as_actor(member), expected_version=closed.version)
    result = card_reopen(
        card_id=card.pk, actor=as_actor(member), expected_version=closed.version, undo=True
    )

    assert (result.card.outcome, result.card.column_id) == (Outcome.OPEN, card.column_id)
    assert result.move is not None and result.move.kind == MoveKind.REOPEN


def test_only_the_closer_undoes_only_the_close_just_made(stream, member, manager):
    card = new_card(stream, member)
    long_ago = timezone.now() - CLOSE_UNDO_WINDOW - timedelta(minutes=1)
    closed = card_close(card_id=card.pk, outcome=Outcome.WON, actor=as_actor(member)).card
    old = new_card(stream, member, person_name="Old deal")
    old_closed = card_close(
        card_id=old.pk, outcome=Outcome.WON, actor=as_actor(member), at=long_ago
    ).card

    with pytest.raises(UndoExpired) as by_another:
        card_reopen(
            card_id=card.pk, actor=as_actor(manager), expected_version=closed.version, undo=True
        )
    with pytest.raises(UndoExpired):
        card_reopen(
            card_id=old.pk, actor=as_actor(member), expected_version=old_closed.version, undo=True
        )
    with pytest.raises(InvalidMove):  # an undo names the version its close returned
        card_reopen(card_id=card.pk, actor=as_actor(member), undo=True)

    assert (by_another.value.code, by_another.value.http_status) == ("undo_expired", 409)
    assert Card.objects.get(pk=card.pk).outcome == Outcome.WON
    assert Card.objects.get(pk=old.pk).outcome == Outcome.WON


# --- the card page and the close page ------------------------------------------------


def test_the_card_page_offers_won_and_the_streams_reasons(stream, member, reasons):
    card = new_card(stream, member)
    inactive = lost_reason_create(stream_id=stream.pk, name="Gone", actor=TEST_SYSTEM)
    lost_reason_deactivate(lost_reason_id=inactive.pk, actor=TEST_SYSTEM)

    page = logged_in(member).get(card_url(stream, card)).content.decode()

    assert 'name="outcome" value="won"' in page
    assert "Mark lost…" in page
    for reason in reasons:
        assert f'name="lost_reason" value="{reason.pk}"' in page
    assert f'name="lost_reason" value="{inactive.pk}"' not in page


def test_losing_with_a_reason_goes_to_the_card_page_where_undo_is(stream, member, reasons):
    card = new_card(stream, member)
    client = logged_in(member)

    response = client.post(
        close_url(stream, card),
        {"outcome": "lost", "version": card.version, "lost_reason": reasons[0].pk},
    )

    assert response.status_code == 302
    assert response.url == f"{card_url(stream, card)}#closing"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"{card} marked lost: No budget."
    ]
    page = client.get(card_url(stream, card)).content.decode()
    assert "Why: <strong>No budget</strong>" in page
    assert '<button type="submit" class="primary undo">Undo</button>' in page
    # Someone else sees the close as done: theirs is a reopen.
    other = logged_in(stream.manager).get(card_url(stream, card)).content.decode()
    assert ">Reopen</button>" in other and ">Undo</button>" not in other


def test_a_lost_without_why_shows_the_form_again_with_the_error_on_the_reason(
    stream, member, reasons
):
    card = new_card(stream, member)

    response = logged_in(member).post(
        close_url(stream, card),
        {"outcome": "lost", "version": card.version, "lost_reason": "", "lost_note": ""},
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {"lost_reason": [LostReasonRequired.default_message]}
    page = response.content.decode()
    assert 'id="lost-reason-error" role="alert">' in page
    assert '<details class="lost-form" open>' in page
    assert Card.objects.get(pk=card.pk).is_open


def test_a_refused_reason_keeps_what_was_typed(stream, member, reasons):
    card = new_card(stream, member)
    lost_reason_deactivate(lost_reason_id=reasons[0].pk, actor=TEST_SYSTEM)

    response = logged_in(member).post(
        close_url(stream, card),
        {
            "outcome": "lost",
            "version": card.version,
            "lost_reason": reasons[0].pk,
            "lost_note": "They froze the budget",
        },
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {"lost_reason": [LostReasonInactive.default_message]}
    assert "They froze the budget</textarea>" in response.content.decode()
    assert Card.objects.get(pk=card.pk).is_open


def test_a_note_too_long_is_an_error_on_the_note(stream, member, reasons):
    card = new_card(stream, member)

    response = logged_in(member).post(
        close_url(stream, card),
        {
            "outcome": "lost",
            "version": card.version,
            "lost_reason": reasons[0].pk,
            "lost_note": "x" * (LOST_NOTE_MAX_LENGTH + 1),
        },
    )

    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["lost_note"]
    assert Card.objects.get(pk=card.pk).is_open


@pytest.mark.parametrize(
    "data",
    [
        {"outcome": "drawn"},
        {"outcome": "lost", "lost_reason": "abc"},
        {"outcome": "won", "version": "0"},
    ],
    ids=["outcome", "reason", "version"],
)
def test_unreadable_input_goes_back_to_the_card_with_a_message(stream, member, data):
    card = new_card(stream, member)

    response = logged_in(member).post(close_url(stream, card), data)

    assert response.status_code == 303
    assert response["Location"] == card_url(stream, card)
    assert Card.objects.get(pk=card.pk).is_open


def test_a_stale_close_goes_back_to_the_card_with_its_message(stream, member, reasons):
    card = new_card(stream, member)
    client = logged_in(member)
    client.post(close_url(stream, card), {"outcome": "won", "version": card.version})
    reopened = card_reopen(card_id=card.pk, actor=as_actor(member)).card

    response = client.post(
        close_url(stream, card),
        {"outcome": "lost", "version": card.version, "lost_reason": reasons[0].pk},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == card_url(stream, card)
    assert b"Someone else changed this card meanwhile" in response.content
    assert Card.objects.get(pk=card.pk).version == reopened.version


def test_the_close_page_asks_why_for_the_keyboard_and_without_javascript(stream, member, reasons):
    card = new_card(stream, member)

    response = logged_in(member).get(close_url(stream, card))

    assert response.status_code == 200
    page = response.content.decode()
    assert f"<h1>Close {card.display_name}</h1>" in page
    assert '<details class="lost-form" open>' in page
    assert page.count('name="lost_reason"') == len(reasons)


# --- undo and reopen through the page --------------------------------------------------


def test_undo_reopens_with_the_version_the_close_returned(stream, member, reasons):
    card = new_card(stream, member)
    client = logged_in(member)
    client.post(close_url(stream, card), {"outcome": "won", "version": card.version})
    closed = Card.objects.get(pk=card.pk)
    client.get(card_url(stream, card))  # shows the message of the close

    response = client.post(
        reverse("boards:card-reopen", args=[stream.slug, card.pk]),
        {"version": closed.version, "undo": "1"},
    )

    assert response.status_code == 302 and response.url == card_url(stream, card)
    where = f"{closed.column.cycle.name} / {closed.column.name}"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Undone: {card} is open again, in {where}."
    ]
    reopened = Card.objects.get(pk=card.pk)
    assert (reopened.outcome, reopened.version) == (Outcome.OPEN, closed.version + 1)
    assert CardMove.objects.filter(card=card).latest("id").kind == MoveKind.REOPEN


def test_an_undo_into_a_column_filled_meanwhile_says_it_went_over_the_limit(
    stream, member, manager
):
    card = new_card(stream, member, column_name="Wisdom")
    client = logged_in(manager)  # a manager is offered no override for an undo
    client.post(close_url(stream, card), {"outcome": "won", "version": card.version})
    closed = Card.objects.get(pk=card.pk)
    page = client.get(card_url(stream, card)).content.decode()
    for n in range(card.column.wip_limit):
        new_card(stream, member, column_name="Wisdom", person_name=f"Pulled in {n}")

    response = client.post(
        reverse("boards:card-reopen", args=[stream.slug, card.pk]),
        {"version": closed.version, "undo": "1"},
    )

    limit = card.column.wip_limit
    (said,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert said.endswith(
        f"Wisdom now holds {limit + 1}/{limit}, over its WIP limit: an undo puts a card back"
        " regardless."
    )
    assert "even if that column has filled up since" in page
    assert "Its column is full?" not in page


def test_an_undo_on_a_card_changed_since_is_refused(stream, member):
    card = new_card(stream, member)
    client = logged_in(member)
    client.post(close_url(stream, card), {"outcome": "won", "version": card.version})
    closed = Card.objects.get(pk=card.pk)
    card_reopen(card_id=card.pk, actor=TEST_SYSTEM)
    card_close(card_id=card.pk, outcome=Outcome.LOST, actor=TEST_SYSTEM)

    response = client.post(
        reverse("boards:card-reopen", args=[stream.slug, card.pk]),
        {"version": closed.version, "undo": "1"},
    )

    assert response.status_code == 303
    assert Card.objects.get(pk=card.pk).outcome == Outcome.LOST


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"]
)
def test_reopen_returns_only_to_a_page_of_this_site(stream, member, next_url):
    card = new_card(stream, member)
    card_close(card_id=card.pk, outcome=Outcome.WON, actor=as_actor(member))
    closed = Card.objects.get(pk=card.pk)

    response = logged_in(member).post(
        reverse("boards:card-reopen", args=[stream.slug, card.pk]),
        {"version": closed.version, "next": next_url},
    )

    assert response.url == card_url(stream, card)


def test_a_manager_reopens_into_a_full_column_with_a_reason(stream, manager, member):
    card = new_card(stream, member, column_name="Wisdom")
    card_close(card_id=card.pk, outcome=Outcome.WON, actor=as_actor(member))
    for n in range(card.column.wip_limit):
        new_card(stream, member, column_name="Wisdom", person_name=f"Waiting {n}")
    closed = Card.objects.get(pk=card.pk)
    page = logged_in(manager).get(card_url(stream, card)).content.decode()

    response = logged_in(manager).post(
        reverse("boards:card-reopen", args=[stream.slug, card.pk]),
        {"version": closed.version, "override_reason": "Board asked for it"},
    )

    assert 'name="override_reason"' in page
    assert response.status_code == 302
    assert Card.objects.get(pk=card.pk).is_open
    move = CardMove.objects.filter(card=card).latest("id")
    assert (move.kind, move.wip_override_reason) == (MoveKind.REOPEN, "Board asked for it")
    assert timezone.now() - move.moved_at < timedelta(minutes=1)


# --- long notes and what an undo records -------------------------------------------------


def test_a_long_lost_note_is_counted_and_refused_in_full_never_cut(stream, member, reasons):
    card = new_card(stream, member)
    pasted = "n" * 3_000
    client = logged_in(member)

    box = client.get(card_url(stream, card)).content.decode()
    response = client.post(
        close_url(stream, card),
        {
            "outcome": "lost",
            "version": card.version,
            "lost_reason": reasons[0].pk,
            "lost_note": pasted,
        },
    )

    # No maxlength for the browser to cut the paste with: the page counts instead.
    note_box = box[box.index('name="lost_note"') - 200 : box.index('name="lost_note"') + 200]
    assert "maxlength" not in note_box
    assert f'data-max-length="{LOST_NOTE_MAX_LENGTH}"' in note_box
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "lost_note": ["A note is at most 500 characters; this one has 3,000."]
    }
    assert f"{pasted}</textarea>" in response.content.decode()
    assert Card.objects.get(pk=card.pk).is_open
    assert not CardLoss.objects.exists()


def test_a_note_counts_a_line_break_as_one_character_as_the_page_does(stream, member, reasons):
    card = new_card(stream, member)
    typed = "Line\r\n" * 80  # 560 characters as posted, 479 as counted and kept

    response = logged_in(member).post(
        close_url(stream, card),
        {
            "outcome": "lost",
            "version": card.version,
            "lost_reason": reasons[0].pk,
            "lost_note": typed,
        },
    )

    assert response.status_code == 302
    assert CardLoss.objects.get(move__card=card).note == ("Line\n" * 80).strip()


def test_an_undo_is_audited_as_an_undo_and_a_reopen_as_a_reopen(stream, member, reasons):
    card = new_card(stream, member)
    actor = as_actor(member)
    won = card_close(card_id=card.pk, outcome=Outcome.WON, actor=actor).card
    undo = card_reopen(card_id=card.pk, actor=actor, expected_version=won.version, undo=True)
    lost = card_close(
        card_id=card.pk, outcome=Outcome.LOST, actor=actor, lost_reason_id=reasons[0].pk
    ).card
    undo_lost = card_reopen(card_id=card.pk, actor=actor, expected_version=lost.version, undo=True)
    card_close(card_id=card.pk, outcome=Outcome.WON, actor=actor)
    reopen = card_reopen(card_id=card.pk, actor=actor)

    rows = AuditEntry.objects.filter(target_id=card.pk, action__contains="undone").order_by("id")
    assert [(row.action, row.data["move_id"]) for row in rows] == [
        ("card.won_undone", undo.move.pk),
        ("card.lost_undone", undo_lost.move.pk),
    ]
    assert AuditEntry.objects.get(data__move_id=reopen.move.pk).action == "card.reopened"
    # The move log has a reopen for each: the flow is the same.
    assert {undo.move.kind, undo_lost.move.kind, reopen.move.kind} == {MoveKind.REOPEN}
