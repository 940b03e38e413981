"""A prospect's personal data: export (JSON, CSV), erasure that keeps the numbers, the
suppression list, and the retention of closed prospects' data."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse
from django.utils import timezone

from boards.errors import CardNotFound, StaleBoard
from boards.models import (
    Card,
    CardActivity,
    CardLoss,
    CardMove,
    Outcome,
    SuppressedEmail,
    WipOverride,
)
from boards.services import (
    EmailSuppressed,
    card_close,
    card_comment_add,
    card_move,
    card_reopen,
    card_set_blocked,
    card_update,
    closed_prospects_erase,
    prospect_erase,
)
from boards.services.privacy import ERASED_NAME, email_digest
from boards.tasks import closed_prospects_erase_due
from tests.factories import UserFactory
from tests.support import TEST_SYSTEM, as_actor, column_of, fill, logged_in, new_card
from vsm.errors import PermissionRefused
from vsm.models import AuditEntry
from vsm.services import lost_reason_create
from vsm.spreadsheet import spreadsheet_cell

pytestmark = pytest.mark.django_db

EMAIL = "Ada.Keller@Nordwerk.example"


def card_with_a_history(stream, member, manager) -> Card:
    """A lost card with every kind of text written about it: an edit, a comment, a
    block reason, a WIP override reason and a lost note."""
    card = new_card(stream, member, email=EMAIL, notes="Met at the Hanover fair.")
    actor = as_actor(member)
    card_update(
        card_id=card.pk,
        actor=actor,
        person_name="Ada Keller-Brandt",
        company=card.company,
        email=EMAIL,
        channel_id=None,
        owner_id=None,
        estimated_value=1200,
        notes="Met at the Hanover fair. Married name Brandt.",
    )
    card_comment_add(card_id=card.pk, text="Her mobile is 0171 555 0101.", actor=actor)
    card_set_blocked(card_id=card.pk, blocked=True, reason="Ada on leave until May", actor=actor)
    information = column_of(stream, "Collaboration", "Information")
    information.wip_limit = 1
    information.save()
    fill(information, 1)
    card_move(
        card_id=card.pk,
        to_column_id=information.pk,
        actor=as_actor(manager),
        wip_override_reason="Ada's boss asked for a call",
    )
    reason = lost_reason_create(stream_id=stream.pk, name="No budget", actor=TEST_SYSTEM)
    card_close(
        card_id=card.pk,
        outcome=Outcome.LOST,
        actor=actor,
        lost_reason_id=reason.pk,
        lost_note="Ada said the budget went to robots",
    )
    return Card.objects.get(pk=card.pk)


def texts_about(card: Card) -> list[str]:
    """Every free text held about the card, wherever it is kept."""
    row = Card.objects.get(pk=card.pk)
    texts = [row.person_name, row.company, row.email, row.notes, row.blocked_reason]
    for activity in CardActivity.objects.filter(card=card):
        texts.append(activity.text)
        texts.extend(f"{c['old']} {c['new']}" for c in activity.changes)
    texts += list(CardLoss.objects.filter(move__card=card).values_list("note", flat=True))
    texts += list(WipOverride.objects.filter(move__card=card).values_list("reason", flat=True))
    return texts


def move_log(card: Card) -> list[tuple]:
    return list(
        CardMove.objects.filter(card=card)
        .order_by("id")
        .values_list("kind", "from_column_id", "to_column_id", "moved_at", "estimated_value")
    )


# --- erasure ---------------------------------------------------------------------------


def test_erasure_blanks_every_text_about_the_prospect_and_keeps_the_numbers(
    stream, member, manager
):
    card = card_with_a_history(stream, member, manager)
    assert any("Ada" in text for text in texts_about(card))
    moves_before = move_log(card)
    mark = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first()

    erasure = prospect_erase(card_id=card.pk, actor=as_actor(manager))

    assert not any("Ada" in text or "Brandt" in text for text in texts_about(card))
    row = Card.objects.get(pk=card.pk)
    assert (row.person_name, row.company, row.email, row.notes) == (ERASED_NAME, "", "", "")
    assert (row.outcome, row.estimated_value, row.column_id) == (
        Outcome.LOST,
        1200,
        card.column_id,
    )
    assert row.erased_at is not None and row.version == card.version + 1
    assert move_log(card) == moves_before
    assert CardActivity.objects.filter(card=card, erased_at__isnull=True).count() == 0
    assert (erasure.comments, erasure.edits, erasure.blockings) == (1, 1, 1)
    assert (erasure.lost_notes, erasure.override_reasons, erasure.suppressed) == (1, 1, True)
    assert SuppressedEmail.objects.filter(digest=email_digest(EMAIL)).exists()
    (audit,) = AuditEntry.objects.filter(pk__gt=mark)
    assert (audit.action, audit.target_id, audit.data["comments"]) == ("card.erased", card.pk, 1)


def test_erasure_renames_the_card_in_the_admins_log(stream, member, manager):
    card = new_card(stream, member)
    admin = UserFactory(is_superuser=True, is_staff=True)
    LogEntry.objects.log_actions(
        user_id=admin.pk, queryset=[card], action_flag=CHANGE, change_message="[]"
    )

    prospect_erase(card_id=card.pk, actor=as_actor(manager))

    assert list(LogEntry.objects.values_list("object_repr", flat=True)) == [ERASED_NAME]


def test_erasure_keeps_a_blocked_card_blocked_and_a_second_erasure_changes_nothing(
    stream, member, manager
):
    card = new_card(stream, member)
    card_set_blocked(
        card_id=card.pk, blocked=True, reason="Waiting for Ada", actor=as_actor(member)
    )
    prospect_erase(card_id=card.pk, actor=as_actor(manager))
    erased = Card.objects.get(pk=card.pk)

    again = prospect_erase(card_id=card.pk, actor=as_actor(manager))

    assert erased.is_blocked and erased.blocked_reason == "(erased)"
    assert Card.objects.get(pk=card.pk).version == erased.version
    assert (again.comments, again.blockings, again.suppressed) == (0, 0, False)


def test_only_an_admin_or_the_streams_manager_may_erase_and_others_see_no_card(
    stream, member, other_stream
):
    card = new_card(stream, member)
    outsider = UserFactory()

    with pytest.raises(PermissionRefused):
        prospect_erase(card_id=card.pk, actor=as_actor(member))
    with pytest.raises(CardNotFound):
        prospect_erase(card_id=card.pk, actor=as_actor(outsider))
    with pytest.raises(StaleBoard):
        prospect_erase(
            card_id=card.pk, actor=as_actor(UserFactory(is_superuser=True)), expected_version=99
        )

    assert Card.objects.get(pk=card.pk).person_name == "Ada Keller"


# --- suppression -----------------------------------------------------------------------


def test_a_suppressed_email_cannot_be_created_or_typed_in_again_in_any_case(
    stream, member, manager, other_stream
):
    card = new_card(stream, member, email=EMAIL)
    prospect_erase(card_id=card.pk, actor=as_actor(manager))
    other = new_card(stream, member, email="someone@else.example")

    with pytest.raises(EmailSuppressed) as created:
        new_card(stream, member, email="  ada.keller@nordwerk.EXAMPLE ")
    for same_mailbox in (
        "ADA.KELLER@NORDWERK.EXAMPLE\u200b",  # a zero-width space
        "ada.keller@nordwerk.\uff45xample",  # a full-width e
        '"ada.keller"@nordwerk.example',  # quotes that add nothing
    ):
        with pytest.raises(EmailSuppressed):
            new_card(stream, member, email=same_mailbox)
    with pytest.raises(EmailSuppressed) as edited:
        card_update(
            card_id=other.pk,
            actor=as_actor(member),
            person_name=other.person_name,
            company=other.company,
            email=EMAIL,
            channel_id=None,
            owner_id=None,
            estimated_value=0,
            notes="",
        )

    assert (created.value.code, created.value.field) == ("email_suppressed", "email")
    assert edited.value.field == "email"
    assert Card.objects.get(pk=other.pk).email == "someone@else.example"
    # Only a digest is kept: the address itself is nowhere.
    assert not SuppressedEmail.objects.filter(digest__icontains="ada").exists()


# --- retention -------------------------------------------------------------------------


def test_retention_erases_cards_closed_long_enough_ago_and_suppresses_nothing(
    stream, member, settings
):
    old, recent, reopened, still_open = (
        new_card(stream, member, email=f"p{n}@example.com") for n in range(4)
    )
    for card in (old, recent, reopened):
        card_close(card_id=card.pk, outcome=Outcome.WON, actor=as_actor(member))
    card_reopen(card_id=reopened.pk, actor=as_actor(member))
    long_ago = timezone.now() - timedelta(days=40)
    Card.objects.filter(pk=old.pk).update(closed_at=long_ago)
    settings.VSM_CLOSED_CARD_RETENTION_DAYS = 30

    assert closed_prospects_erase_due() == 1

    names = dict(Card.objects.values_list("pk", "person_name"))
    assert names[old.pk] == ERASED_NAME
    assert ERASED_NAME not in {names[recent.pk], names[reopened.pk], names[still_open.pk]}
    assert not SuppressedEmail.objects.exists()
    assert closed_prospects_erase_due() == 0


def test_retention_is_off_by_default_and_refuses_nonsense(stream, member, settings):
    card = new_card(stream, member)
    card_close(card_id=card.pk, outcome=Outcome.WON, actor=as_actor(member))
    Card.objects.filter(pk=card.pk).update(closed_at=timezone.now() - timedelta(days=4000))
    settings.VSM_CLOSED_CARD_RETENTION_DAYS = 0

    assert closed_prospects_erase_due() == 0
    with pytest.raises(ValueError):
        closed_prospects_erase(retention_days=0)
    assert Card.objects.get(pk=card.pk).erased_at is None


# --- the pages -------------------------------------------------------------------------


def page_url(stream, card, suffix: str = "") -> str:
    name = f"boards:card-personal-data{suffix}"
    return reverse(name, args=[stream.slug, card.pk])


def test_the_manager_exports_everything_held_as_json_and_csv_and_it_is_audited(
    stream, member, manager
):
    card = card_with_a_history(stream, member, manager)
    card_comment_add(card_id=card.pk, text='=HYPERLINK("http://x")', actor=as_actor(member))
    client = logged_in(manager)

    answer = client.get(page_url(stream, card, "-json"))
    as_csv = client.get(page_url(stream, card, "-csv"))

    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    assert answer["Content-Disposition"] == f'attachment; filename="prospect-{card.pk}.json"'
    export = json.loads(answer.content)
    assert export["card"]["email"] == EMAIL
    dumped = json.dumps(export)
    for text in ("0171 555 0101", "budget went to robots", "boss asked", "on leave", "Brandt"):
        assert text in dumped
    rows = list(csv.reader(io.StringIO(as_csv.content.decode())))
    assert rows[0] == ["section", "at (UTC)", "what", "by", "field", "value"]
    assert ["card", "", "", "", "email", EMAIL] in rows
    assert any(row[-1] == '\'=HYPERLINK("http://x")' for row in rows)
    assert list(
        AuditEntry.objects.filter(action="card.exported").values_list("target_id", flat=True)
    ) == [card.pk, card.pk]


def test_a_member_may_neither_see_the_page_nor_export(stream, member):
    card = new_card(stream, member)
    client = logged_in(member)

    assert client.get(page_url(stream, card)).status_code == 403
    assert client.get(page_url(stream, card, "-json")).status_code == 403
    posted = client.post(page_url(stream, card), {"version": card.version, "confirm": "on"})

    # A refused post goes back with the refusal said (vsm.http), and erases nothing.
    assert posted.status_code == 303
    said = client.get("/streams/").content.decode()
    assert "Only an admin or the value stream manager may" in said
    assert Card.objects.get(pk=card.pk).erased_at is None


def test_the_erase_form_asks_for_a_confirmation_then_erases(stream, member, manager):
    card = new_card(stream, member, email=EMAIL)
    client = logged_in(manager)

    unconfirmed = client.post(page_url(stream, card), {"version": card.version})
    stale = client.post(page_url(stream, card), {"version": card.version + 5, "confirm": "on"})
    done = client.post(page_url(stream, card), {"version": card.version, "confirm": "on"})

    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm the erasure." in unconfirmed.content.decode()
    assert stale.status_code == 409
    assert done.status_code == 302
    assert done["Location"] == reverse("boards:card-detail", args=[stream.slug, card.pk])
    assert Card.objects.get(pk=card.pk).person_name == ERASED_NAME
    page = client.get(done["Location"]).content.decode()
    assert "Personal data erased" in page and "suppression list" in page


def test_a_suppressed_email_is_refused_on_the_new_prospect_form(stream, member, manager):
    card = new_card(stream, member, email=EMAIL)
    prospect_erase(card_id=card.pk, actor=as_actor(manager))
    cycle = column_of(stream, "Collaboration", "Data").cycle

    answer = logged_in(member).post(
        reverse("boards:card-create", args=[stream.slug]),
        {"cycle": cycle.pk, "person_name": "Ada", "email": EMAIL, "estimated_value": "0"},
    )

    assert answer.status_code == 400
    assert "asked to be forgotten" in answer.content.decode()
    assert not Card.objects.filter(person_name="Ada").exists()


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+49 171", "'+49 171"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("\n=cmd", "'\n=cmd"),
        ("  =1+1", "'  =1+1"),
        ("\u00a0@SUM(A1)", "'\u00a0@SUM(A1)"),
        ("plain", "plain"),
        (" plain = fine", " plain = fine"),
        (-3, -3),
        (None, ""),
    ],
)
def test_a_spreadsheet_cell_never_starts_a_formula(value, cell):
    assert spreadsheet_cell(value) == cell


def test_the_card_page_links_the_personal_data_page_for_its_manager_only(stream, member, manager):
    card = new_card(stream, member)
    url = reverse("boards:card-detail", args=[stream.slug, card.pk])
    link = page_url(stream, card)

    assert link in logged_in(manager).get(url).content.decode()
    assert link not in logged_in(member).get(url).content.decode()


def test_a_retention_backlog_is_erased_in_runs_that_queue_the_next(
    stream, member, settings, monkeypatch, eager_tasks
):
    cards = [new_card(stream, member, person_name=f"Closed {n}") for n in range(5)]
    for card in cards:
        card_close(card_id=card.pk, outcome=Outcome.WON, actor=as_actor(member))
    Card.objects.filter(pk__in=[c.pk for c in cards]).update(
        closed_at=timezone.now() - timedelta(days=40)
    )
    settings.VSM_CLOSED_CARD_RETENTION_DAYS = 30
    monkeypatch.setattr("boards.tasks.ERASURES_PER_RUN", 2)

    first_run = closed_prospects_erase_due.apply().get()  # eager: its follow-ups run too

    assert first_run == 2
    assert Card.objects.filter(person_name=ERASED_NAME).count() == 5
