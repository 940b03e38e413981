"""The cards export: its columns and rows, the board's filters (the file holds the cards
the board shows for the same query), closed cards on request, neutralised formulas, and
the audit row."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from boards.forms import board_filters
from boards.models import Card, Outcome
from boards.services import card_close, card_set_blocked
from exports.selectors import CARD_COLUMNS, CardExportQuery, card_export_chunks, utc_iso
from tests.exports.support import body_text, csv_records, csv_rows
from tests.factories import ChannelFactory
from tests.pages import cards_by_column
from tests.support import COLLABORATION, SALES, as_actor, column_of, logged_in, new_card
from vsm.models import AuditEntry, LostReason, Team


@pytest.fixture
def prospects(stream, manager, member):
    """Three open cards (one blocked, one in Information), one won, one lost with a
    reason and a note; two channels; the member owns Ada's card."""
    member.first_name, member.last_name = "Ada", "Member"
    member.save()
    web = ChannelFactory(value_stream=stream, name="Web form")
    fair = ChannelFactory(value_stream=stream, name="Trade show")
    ada = new_card(
        stream,
        manager,
        person_name="Ada Keller",
        company="Nordwerk Pumps",
        email="ada@nordwerk.example",
        channel_id=web.pk,
        owner_id=member.pk,
        estimated_value=Decimal("1250.50"),
        notes="Wants a trial.\nCall back in May.",
    )
    bo = new_card(
        stream,
        manager,
        person_name="Bo Lind",
        company="Lind AB",
        channel_id=fair.pk,
        column_name="Information",
    )
    card_set_blocked(
        card_id=bo.pk, blocked=True, reason="Waiting for budget", actor=as_actor(manager)
    )
    carver = new_card(
        stream,
        manager,
        person_name="",
        company="Carver Tools",
        channel_id=web.pk,
        owner_id=manager.pk,
    )
    won = new_card(stream, manager, person_name="Dana Won", channel_id=web.pk)
    card_close(card_id=won.pk, outcome=Outcome.WON, actor=as_actor(manager))
    reason = LostReason.objects.create(value_stream=stream, name="Chose a competitor")
    lost = new_card(stream, manager, person_name="Eli Lost", channel_id=fair.pk)
    card_close(
        card_id=lost.pk,
        outcome=Outcome.LOST,
        lost_reason_id=reason.pk,
        lost_note="Went with Acme",
        actor=as_actor(manager),
    )
    return SimpleNamespace(
        web=web, fair=fair, ada=ada, bo=bo, carver=carver, won=won, lost=lost, member=member
    )


def export(user, stream, query: str = "") -> list[dict[str, str]]:
    url = reverse("exports:cards", args=[stream.slug]) + (f"?{query}" if query else "")
    response = logged_in(user).get(url)
    assert response.status_code == 200
    return csv_records(body_text(response))


def test_the_header_is_the_documented_columns(stream, manager, prospects):
    response = logged_in(manager).get(reverse("exports:cards", args=[stream.slug]))

    header = csv_rows(body_text(response))[0]

    assert header == CARD_COLUMNS


def test_open_cards_by_id_with_their_facts(stream, manager, prospects):
    rows = export(manager, stream)

    assert [int(row["card id"]) for row in rows] == sorted(
        [prospects.ada.pk, prospects.bo.pk, prospects.carver.pk]
    )
    ada = Card.objects.select_related("owning_team").get(pk=prospects.ada.pk)
    row = rows[0]
    assert {name: row[name] for name in CARD_COLUMNS if "days" not in name} == {
        "card id": str(ada.pk),
        "person": "Ada Keller",
        "company": "Nordwerk Pumps",
        "e-mail": "ada@nordwerk.example",
        "channel": "Web form",
        "owner": "Ada Member",
        "team": ada.owning_team.name,
        "cycle": COLLABORATION,
        "column": "Data",
        "outcome": "open",
        "estimated value": "1250.50",
        "created (UTC)": utc_iso(ada.created_at),
        "entered column (UTC)": utc_iso(ada.column_entered_at),
        "blocked": "no",
        "blocked reason": "",
        "closed (UTC)": "",
        "lost reason": "",
        "notes": "Wants a trial.\nCall back in May.",
    }
    assert 0 <= float(row["days in column"]) < 1
    assert 0 <= float(row["days in stream"]) < 1
    by_id = {int(row["card id"]): row for row in rows}
    assert by_id[prospects.bo.pk]["column"] == "Information"
    assert by_id[prospects.bo.pk]["blocked"] == "yes"
    assert by_id[prospects.bo.pk]["blocked reason"] == "Waiting for budget"
    assert by_id[prospects.carver.pk]["person"] == ""
    assert by_id[prospects.carver.pk]["owner"] == manager.username


def test_closed_cards_on_request_with_the_reason_of_the_loss(stream, manager, prospects):
    rows = {int(row["card id"]): row for row in export(manager, stream, "closed=1")}

    assert set(rows) == {
        prospects.ada.pk,
        prospects.bo.pk,
        prospects.carver.pk,
        prospects.won.pk,
        prospects.lost.pk,
    }
    lost = Card.objects.get(pk=prospects.lost.pk)
    assert rows[lost.pk]["outcome"] == "lost"
    assert rows[lost.pk]["lost reason"] == "Chose a competitor"
    assert rows[lost.pk]["closed (UTC)"] == utc_iso(lost.closed_at)
    assert rows[lost.pk]["days in column"] == ""
    assert rows[prospects.won.pk]["outcome"] == "won"
    assert rows[prospects.won.pk]["lost reason"] == ""
    assert rows[prospects.ada.pk]["closed (UTC)"] == ""


@pytest.mark.parametrize("closed", ["0", "", "no", "false"])
def test_only_open_cards_unless_closed_is_asked_for(stream, manager, prospects, closed):
    ids = {int(row["card id"]) for row in export(manager, stream, f"closed={closed}")}

    assert ids == {prospects.ada.pk, prospects.bo.pk, prospects.carver.pk}


def test_ages_are_measured_at_the_moment_of_the_export(stream, prospects):
    ada = Card.objects.get(pk=prospects.ada.pk)
    lost = Card.objects.get(pk=prospects.lost.pk)
    now = ada.column_entered_at + timedelta(days=3, hours=12)
    query = CardExportQuery(stream=stream, now=now, include_closed=True)

    rows = {row[0]: row for chunk in card_export_chunks(query) for row in chunk}

    days_in_column, days_in_stream = (
        CARD_COLUMNS.index(n) for n in ("days in column", "days in stream")
    )
    assert rows[ada.pk][days_in_column] == 3.5
    assert rows[ada.pk][days_in_stream] == round((now - ada.created_at).total_seconds() / 86400, 2)
    assert lost.closed_at is not None
    assert rows[lost.pk][days_in_stream] == round(
        (lost.closed_at - lost.created_at).total_seconds() / 86400, 2
    )


# The board's filter parameters, each as the board's filter bar sends them.
FILTERS = {
    "channel": lambda p, stream: f"channel={p.web.pk}",
    "owner": lambda p, stream: f"owner={p.member.pk}",
    "text in a company": lambda p, stream: "q=nordwerk",
    "text in the notes": lambda p, stream: "q=TRIAL",
    "blocked only": lambda p, stream: "blocked=1",
    "one column": lambda p, stream: f"column={column_of(stream, COLLABORATION, 'Information').pk}",
    "an empty column": lambda p, stream: f"column={column_of(stream, SALES, 'Data').pk}",
    "channel and owner": lambda p, stream: f"channel={p.web.pk}&owner={p.member.pk}",
}


@pytest.mark.parametrize("name", FILTERS)
def test_the_file_holds_the_cards_the_board_shows_for_the_same_filters(
    stream, manager, prospects, name
):
    query = FILTERS[name](prospects, stream)
    board = logged_in(manager).get(reverse("boards:board", args=[stream.slug]) + f"?{query}")
    on_board = {card for cards in cards_by_column(board.content).values() for card in cards}

    exported = {int(row["card id"]) for row in export(manager, stream, query)}

    assert exported == on_board
    assert exported < {prospects.ada.pk, prospects.bo.pk, prospects.carver.pk}


def test_my_cards_are_the_viewers_own(stream, manager, prospects):
    assert {int(row["card id"]) for row in export(prospects.member, stream, "mine=1")} == {
        prospects.ada.pk
    }
    assert {int(row["card id"]) for row in export(manager, stream, "mine=1")} == {
        prospects.carver.pk
    }


def test_the_filters_apply_to_closed_cards_alike(stream, manager, prospects):
    rows = export(manager, stream, f"closed=1&channel={prospects.fair.pk}")

    assert {int(row["card id"]) for row in rows} == {prospects.bo.pk, prospects.lost.pk}


def test_the_selector_takes_the_boards_own_filters(stream, prospects):
    # The board's parser, as the view calls it: the export reads no filter itself.
    filters = board_filters(QueryDict(f"channel={prospects.fair.pk}"))
    query = CardExportQuery(stream=stream, now=prospects.bo.created_at, filters=filters)

    assert [row[0] for chunk in card_export_chunks(query) for row in chunk] == [prospects.bo.pk]


def test_text_a_spreadsheet_would_run_is_neutralised(stream, manager, member):
    channel = ChannelFactory(value_stream=stream, name="\tTabbed channel")
    member.first_name = "@Owner"
    member.save()
    card = new_card(
        stream,
        manager,
        person_name='=HYPERLINK("http://evil.example","click")',
        company="+49 30 1234567",
        channel_id=channel.pk,
        owner_id=member.pk,
        notes="-5% if they sign\n=1+1",
    )
    card_set_blocked(card_id=card.pk, blocked=True, reason="@SUM(A1:A2)", actor=as_actor(manager))
    Team.objects.filter(pk=card.owning_team_id).update(name="\rCR first")

    row = export(manager, stream)[0]

    assert row["person"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["company"] == "'+49 30 1234567"
    assert row["notes"] == "'-5% if they sign\n=1+1"
    assert row["channel"] == "'\tTabbed channel"
    assert row["owner"] == "'@Owner"
    assert row["blocked reason"] == "'@SUM(A1:A2)"
    assert row["team"] == "'\rCR first"
    # Numbers are numbers, not text: nothing to neutralise.
    assert row["estimated value"] == "0.00"


def test_an_export_is_audited_with_ids_and_flags_only(stream, manager, prospects):
    export(manager, stream, f"q=Keller&channel={prospects.web.pk}&closed=1")

    entry = AuditEntry.objects.get(action="stream.cards_exported")
    assert entry.actor_id == manager.pk
    assert (entry.stream_id, entry.target_type, entry.target_id) == (stream.pk, "stream", stream.pk)
    assert entry.data == {
        "channel_id": prospects.web.pk,
        "owner_id": None,
        "column_id": None,
        "blocked_only": False,
        "mine": False,
        "text_filter": True,
        "include_closed": True,
    }
    assert "Keller" not in json.dumps(entry.data)


def test_a_closed_parameter_that_says_neither_yes_nor_no_is_refused(stream, manager, prospects):
    response = logged_in(manager).get(
        reverse("exports:cards", args=[stream.slug]) + "?closed=maybe"
    )

    assert response.status_code == 400
    assert b"closed=1" in response.content
    assert not AuditEntry.objects.filter(action="stream.cards_exported").exists()


@pytest.mark.parametrize("query", ["channel=abc", "owner=99999999999999999999999", "column=-1"])
def test_a_filter_that_cannot_be_read_is_refused_not_ignored(stream, manager, prospects, query):
    response = logged_in(manager).get(reverse("exports:cards", args=[stream.slug]) + "?" + query)

    assert response.status_code == 400
    assert query.split("=")[0].encode() in response.content
    assert not AuditEntry.objects.filter(action="stream.cards_exported").exists()


def test_the_file_is_named_after_the_stream_and_the_utc_date(stream, manager, prospects):
    response = logged_in(manager).get(reverse("exports:cards", args=[stream.slug]))

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.now().astimezone(UTC).date().isoformat()
    assert response["Content-Disposition"] == (
        f'attachment; filename="{stream.slug}-cards-{today}.csv"'
    )
