"""The move log export: every move of the stream by id, with its columns and cycles,
its kind, who by kind only (no person's identity), WIP overrides with their reason, and
why a lost deal was lost; up to the newest move when the export starts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.urls import reverse

from boards.models import CardMove, MoveKind, Outcome
from boards.services import card_close, card_move, prospect_erase
from exports.selectors import MOVE_COLUMNS, utc_iso
from tests.exports.support import body_text, csv_records, csv_rows
from tests.factories import ChannelFactory
from tests.support import COLLABORATION, TEST_SYSTEM, as_actor, column_of, logged_in, new_card
from vsm.actors import TokenActor
from vsm.models import AuditEntry, LostReason


@pytest.fixture
def log(stream, manager):
    """Ada enters (by the manager) and moves to Information over its WIP limit (an
    override with a reason); an API token moves her on; Bo enters and is lost by the
    system, with a reason and a note."""
    manager.first_name, manager.last_name = "Maria", "Manager"
    manager.save()
    web = ChannelFactory(value_stream=stream, name="Web form")
    information = column_of(stream, COLLABORATION, "Information")
    information.wip_limit = 1
    information.save()
    new_card(stream, manager, person_name="Full Column", column_name="Information")
    ada = new_card(
        stream, manager, person_name="Ada Keller", channel_id=web.pk, estimated_value=900
    )
    card_move(
        card_id=ada.pk,
        to_column_id=information.pk,
        actor=as_actor(manager),
        wip_override_reason="=Customer visit on Monday",
    )
    token = TokenActor(token_id=7, stream_id=stream.pk)
    card_move(
        card_id=ada.pk,
        to_column_id=column_of(stream, COLLABORATION, "Knowledge").pk,
        actor=token,
    )
    reason = LostReason.objects.create(value_stream=stream, name="No budget")
    bo = new_card(stream, manager, person_name="Bo Lind")
    card_close(
        card_id=bo.pk,
        outcome=Outcome.LOST,
        lost_reason_id=reason.pk,
        lost_note="@Finance said no",
        actor=TEST_SYSTEM,
    )
    return SimpleNamespace(ada=ada, bo=bo, web=web)


def export_text(user, stream) -> str:
    response = logged_in(user).get(reverse("exports:move-log", args=[stream.slug]))
    assert response.status_code == 200
    return body_text(response)


def test_every_move_of_the_stream_by_id_with_the_documented_columns(stream, manager, log):
    text = export_text(manager, stream)

    assert csv_rows(text)[0] == MOVE_COLUMNS
    rows = csv_records(text)
    moves = list(CardMove.objects.filter(value_stream=stream).order_by("pk"))
    assert [int(row["move id"]) for row in rows] == [move.pk for move in moves]
    assert [row["time (UTC)"] for row in rows] == [utc_iso(move.moved_at) for move in moves]
    assert [row["kind"] for row in rows] == [move.kind for move in moves]


def test_a_cards_moves_say_where_from_where_to_and_what_it_was_worth(stream, manager, log):
    rows = [
        row
        for row in csv_records(export_text(manager, stream))
        if row["card id"] == str(log.ada.pk)
    ]

    entered, overridden, by_token = rows
    assert {k: entered[k] for k in MOVE_COLUMNS[3:]} == {
        "kind": "enter",
        "from cycle": "",
        "from column": "",
        "to cycle": COLLABORATION,
        "to column": "Data",
        "channel": "Web form",
        "estimated value": "900.00",
        "actor kind": "user",
        "actor token id": "",
        "actor system": "",
        "WIP override": "no",
        "WIP override reason": "",
        "lost reason": "",
        "lost note": "",
    }
    assert (overridden["from column"], overridden["to column"]) == ("Data", "Information")
    assert overridden["WIP override"] == "yes"
    # Free text, neutralised.
    assert overridden["WIP override reason"] == "'=Customer visit on Monday"
    assert (by_token["actor kind"], by_token["actor token id"]) == ("token", "7")
    assert by_token["WIP override"] == "no"


def test_a_lost_move_says_why(stream, manager, log):
    lost = next(
        row
        for row in csv_records(export_text(manager, stream))
        if row["card id"] == str(log.bo.pk) and row["kind"] == MoveKind.LOST
    )

    assert (lost["actor kind"], lost["actor system"]) == ("system", TEST_SYSTEM.name)
    assert lost["lost reason"] == "No budget"
    assert lost["lost note"] == "'@Finance said no"


def test_no_persons_identity_is_in_the_file(stream, manager, log):
    text = export_text(manager, stream)

    for word in ("Maria", "Manager", manager.username, str(manager.email)):
        assert word not in text


def test_an_erased_override_reason_still_says_there_was_an_override(stream, manager, log):
    prospect_erase(card_id=log.ada.pk, actor=as_actor(manager))

    overridden = next(
        row for row in csv_records(export_text(manager, stream)) if row["WIP override"] == "yes"
    )
    assert overridden["WIP override reason"] == ""


def test_moves_made_while_it_streams_are_left_for_the_next_export(stream, manager, log):
    response = logged_in(manager).get(reverse("exports:move-log", args=[stream.slug]))
    newest = CardMove.objects.filter(value_stream=stream).order_by("-pk").first()
    card_move(
        card_id=log.ada.pk,
        to_column_id=column_of(stream, COLLABORATION, "Wisdom").pk,
        actor=as_actor(manager),
    )

    ids = [int(row["move id"]) for row in csv_records(body_text(response))]

    assert newest is not None and ids[-1] == newest.pk
    entry = AuditEntry.objects.get(action="stream.moves_exported")
    assert entry.data == {"through_move_id": newest.pk}


def test_another_streams_moves_are_not_in_it(stream, other_stream, manager, log):
    new_card(other_stream, other_stream.manager, person_name="Elsewhere")

    ids = {int(row["move id"]) for row in csv_records(export_text(manager, stream))}

    assert ids == set(CardMove.objects.filter(value_stream=stream).values_list("pk", flat=True))
    assert CardMove.objects.filter(value_stream=other_stream).exists()


def test_a_stream_without_moves_exports_its_header(stream, manager):
    text = export_text(manager, stream)

    assert csv_rows(text) == [MOVE_COLUMNS]


def test_a_member_who_does_not_steer_may_export_it(stream, member, log):
    assert (
        len(csv_records(export_text(member, stream)))
        == CardMove.objects.filter(value_stream=stream).count()
    )
