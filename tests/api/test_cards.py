"""Cards through the API: each endpoint's happy path, and the board's refusals (WIP
limits, versions, control points, criteria, lost reasons, suppressed e-mails) answered
as {"code", "message", "data"} with their status, nothing changed; the board's
invariants hold after each. A prospect meeting a full first column waits in the intake
queue: tests/api/test_prospect_intake.py."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from django.urls import reverse

from boards.models import (
    Card,
    CardLoss,
    CardMove,
    Column,
    Handoff,
    MoveKind,
    Outcome,
    SuppressedEmail,
)
from boards.services import card_close, card_create
from boards.services.privacy import email_digest
from pdca.models import ControlPoint
from tests.factories import ChannelFactory
from tests.invariants import board_invariant_violations
from tests.support import (
    COLLABORATION,
    SALES,
    TEST_SYSTEM,
    column_of,
    fill,
    first_column,
    new_card,
    snapshot,
)
from vsm.actors import ActorKind
from vsm.models import LostReason

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _invariants_hold_after_each_test(db):
    yield
    assert board_invariant_violations() == []


def _prospects(stream) -> str:
    return reverse("api:prospect-create", args=[stream.pk])


def _card_url(stream, card, action: str = "") -> str:
    name = f"api:card-{action}" if action else "api:card-detail"
    return reverse(name, args=[stream.pk, card.pk])


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["data"], dict)
    return body


# Prospects (a web form's entry).


def test_a_web_form_posts_a_prospect_into_a_channel_by_name(api, stream, issued):
    ChannelFactory(value_stream=stream, name="Website form")

    response = api.post(
        _prospects(stream),
        {
            "person_name": "Ada Keller",
            "company": "Nordwerk Pumps",
            "email": "ada@nordwerk.example",
            "channel_name": " website FORM ",
            "estimated_value": "12500.50",
            "notes": "Asked for a quote\nfor 40 pumps.",
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    card = Card.objects.get(pk=body["id"])
    assert response["Location"] == _card_url(stream, card)
    assert (card.person_name, card.company, card.email) == (
        "Ada Keller",
        "Nordwerk Pumps",
        "ada@nordwerk.example",
    )
    assert card.channel.name == "Website form"
    assert card.estimated_value == Decimal("12500.50")
    assert card.notes == "Asked for a quote\nfor 40 pumps."
    assert card.column == first_column(stream)  # the stream's first cycle, first column
    assert body["column_id"] == card.column_id and body["cycle_name"] == COLLABORATION
    assert body["channel_name"] == "Website form" and body["estimated_value"] == "12500.50"
    assert body["version"] == 1 and body["outcome"] == "open"
    move = CardMove.objects.get(card=card)
    assert (move.kind, move.actor_kind, move.actor_token_id) == (
        MoveKind.ENTER,
        ActorKind.TOKEN,
        issued.token.pk,
    )


def test_a_prospect_enters_the_cycle_asked_for_by_channel_id(api, stream):
    channel = ChannelFactory(value_stream=stream)
    sales_data = column_of(stream, SALES, "Data")

    response = api.post(
        _prospects(stream),
        {"company": "Acme", "channel_id": channel.pk, "cycle_id": sales_data.cycle_id},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["column_id"] == sales_data.pk
    assert response.json()["channel_id"] == channel.pk


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"person_name": " ", "company": ""}, 400, "invalid_input", None),
        ({"email": "ada@example.com"}, 400, "invalid_input", None),
        ({"company": "Acme", "channel_name": "No such"}, 404, "channel_not_found", "channel_name"),
        ({"company": "Acme", "estimated_value": "-1"}, 400, "invalid_input", None),
        ({"company": "Acme", "estimated_value": "1e400"}, 400, "invalid_input", None),
        ({"company": "Acme", "estimated_value": "1e5"}, 400, "invalid_input", None),
        ({"company": "Acme", "email": "not an address"}, 400, "invalid_input", None),
        ({"company": "Acme\x00"}, 400, "invalid_input", None),
        ({"company": "x" * 201}, 400, "invalid_input", None),
        ({"company": "Acme", "cycle_id": 2**63}, 400, "invalid_input", None),
        ({"company": "Acme", "cycle_id": "١"}, 400, "invalid_input", None),
        ({"company": "Acme", "channel_id": 1, "channel_name": "Web"}, 400, "invalid_input", None),
    ],
)
def test_a_prospect_the_board_would_refuse_is_refused_with_its_reason(
    api, stream, body, status, code, field
):
    response = api.post(_prospects(stream), body, format="json")

    answer = _error(response, status, code)
    if field:
        assert answer["field"] == field
    if code == "invalid_input":
        assert answer["data"]["fields"]
    assert not Card.objects.exists()


@pytest.mark.parametrize("named_by", ["channel_id", "channel_name"])
def test_an_inactive_channel_is_refused_naming_the_input_the_request_used(api, stream, named_by):
    channel = ChannelFactory(value_stream=stream, name="Old list", is_active=False)
    named = channel.pk if named_by == "channel_id" else "old LIST"

    response = api.post(_prospects(stream), {"company": "Acme", named_by: named})

    body = _error(response, 400, "invalid_move")
    assert body["field"] == named_by
    assert body["data"] == {"channel_id": channel.pk}
    assert not Card.objects.exists()


def test_a_suppressed_email_is_refused(api, stream):
    SuppressedEmail.objects.create(digest=email_digest("gone@example.com"))

    response = api.post(_prospects(stream), {"company": "Acme", "email": "GONE@example.com"})

    _error(response, 400, "email_suppressed")
    assert not Card.objects.exists()


def test_malformed_json_and_other_media_are_refused_in_the_error_shape(api, stream):
    broken = api.post(_prospects(stream), "{not json", content_type="application/json")
    form = api.post(
        _prospects(stream), "company=Acme", content_type="application/x-www-form-urlencoded"
    )
    wrong_method = api.delete(_prospects(stream))

    _error(broken, 400, "invalid_input")
    _error(form, 415, "unsupported_media_type")
    _error(wrong_method, 405, "method_not_allowed")
    assert not Card.objects.exists()


# Reading cards.


def test_the_card_list_filters_as_the_board_does(api, stream, manager, member):
    channel = ChannelFactory(value_stream=stream)
    ada = new_card(stream, manager, person_name="Ada", company="", channel_id=channel.pk)
    bob = new_card(stream, manager, person_name="Bob", company="", column_name="Information")
    cleo = new_card(
        stream, manager, person_name="Cleo", company="", owner_id=member.pk, notes="pumps"
    )
    won = new_card(stream, manager, person_name="Dan", company="")
    card_close(card_id=won.pk, outcome=Outcome.WON, actor=TEST_SYSTEM)
    sales = column_of(stream, SALES, "Data").cycle_id
    other_cycle = card_create(cycle_id=sales, actor=TEST_SYSTEM, person_name="Eve").card
    url = reverse("api:card-list", args=[stream.pk])

    def ids(**params) -> list[int]:
        response = api.get(url, params)
        assert response.status_code == 200, response.content
        return [card["id"] for card in response.json()["results"]]

    assert ids() == [ada.pk, bob.pk, cleo.pk, won.pk, other_cycle.pk]
    assert ids(column=bob.column_id) == [bob.pk]
    assert ids(channel=channel.pk) == [ada.pk]
    assert ids(owner=member.pk) == [cleo.pk]
    assert ids(outcome="won") == [won.pk]
    assert ids(outcome="open", cycle=ada.column.cycle_id) == [ada.pk, bob.pk, cleo.pk]
    assert ids(search="PUMPS") == [cleo.pk]
    assert ids(blocked="true") == []
    _error(api.get(url, {"outcome": "maybe"}), 400, "invalid_input")
    _error(api.get(url, {"column": "0"}), 400, "invalid_input")


def test_channel_0_lists_the_cards_without_a_channel_as_the_metrics_filter_means(
    api, stream, manager
):
    channel = ChannelFactory(value_stream=stream)
    new_card(stream, manager, person_name="Ada", channel_id=channel.pk)
    bob = new_card(stream, manager, person_name="Bob")
    url = reverse("api:card-list", args=[stream.pk])

    response = api.get(url, {"channel": "0"})

    assert response.status_code == 200, response.content
    assert [card["id"] for card in response.json()["results"]] == [bob.pk]
    assert api.get(reverse("api:metrics", args=[stream.pk]), {"channel": "0"}).status_code == 200
    for refused in ("-1", "\u0661"):
        for name in ("api:card-list", "api:metrics"):
            _error(
                api.get(reverse(name, args=[stream.pk]), {"channel": refused}), 400, "invalid_input"
            )


def test_the_card_list_pages_by_a_stable_cursor(api, stream, manager):
    cards = [new_card(stream, manager, person_name=f"P{n}") for n in range(5)]
    url = reverse("api:card-list", args=[stream.pk])

    first = api.get(url, {"page_size": 2}).json()
    # A card added meanwhile lands at the end; the pages already read do not shift.
    late = new_card(stream, manager, person_name="Late")
    seen = [card["id"] for card in first["results"]]
    next_url = first["next"]
    while next_url:
        page = api.get(next_url).json()
        seen += [card["id"] for card in page["results"]]
        next_url = page["next"]

    assert seen == [card.pk for card in cards] + [late.pk]
    assert first["previous"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        base64.b64encode(b"p=abc").decode(),
        base64.b64encode(b"p=99999999999999999999").decode(),
        base64.b64encode(b"o=-1").decode(),
        "\u0661",
    ],
)
def test_a_crafted_cursor_is_refused(api, stream, manager, cursor):
    new_card(stream, manager)

    response = api.get(reverse("api:card-list", args=[stream.pk]), {"cursor": cursor})

    assert _error(response, 400, "invalid_input")["data"]["fields"] == {
        "cursor": ["That page cursor is not valid."]
    }


def test_a_card_reads_with_its_version_column_and_links(api, stream, manager):
    card = new_card(stream, manager, column_name="Information", email="ada@example.com")

    body = api.get(_card_url(stream, card)).json()

    assert body["id"] == card.pk and body["version"] == card.version
    assert (body["column_id"], body["column_name"], body["cycle_name"]) == (
        card.column_id,
        "Information",
        COLLABORATION,
    )
    assert body["links"] == {
        "self": _card_url(stream, card),
        "history": _card_url(stream, card, "history"),
        "web": reverse("boards:card-detail", args=[stream.slug, card.pk]),
    }
    history = api.get(body["links"]["history"]).json()
    assert [entry["kind"] for entry in history["entries"]] == ["move", "enter"]
    assert history["entries"][0]["move"]["to_column_id"] == card.column_id
    assert history["older"] is None
    refused = _error(
        api.get(body["links"]["history"], {"older": "yesterday"}), 400, "invalid_input"
    )
    assert list(refused["data"]["fields"]) == ["older"]


def test_the_history_pages_back_in_time(api, stream, manager):
    card = new_card(stream, manager)
    for name in ["Information", "Data"] * 12:
        column = column_of(stream, COLLABORATION, name)
        api.post(
            _card_url(stream, card, "move"),
            {"to_column_id": column.pk, "version": Card.objects.get(pk=card.pk).version},
            format="json",
        )
    url = _card_url(stream, card, "history")

    first = api.get(url).json()
    second = api.get(url, {"older": first["older"]}).json()

    assert len(first["entries"]) == 20 and first["older"]
    assert len(second["entries"]) == 5 and second["older"] is None
    assert second["entries"][-1]["kind"] == "enter"


# Moves.


def test_a_move_goes_through_the_service_and_answers_the_new_version(api, stream, manager):
    card = new_card(stream, manager)
    target = column_of(stream, COLLABORATION, "Information")

    response = api.post(
        _card_url(stream, card, "move"),
        {"to_column_id": target.pk, "version": card.version},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["card"]["column_id"] == target.pk
    assert body["card"]["version"] == card.version + 1
    assert body["unchanged"] is False
    move = CardMove.objects.get(pk=body["move"]["id"])
    assert (move.from_column_id, move.to_column_id, move.kind) == (
        card.column_id,
        target.pk,
        MoveKind.MOVE,
    )
    assert body["move"]["from_column_id"] == card.column_id
    assert move.actor_kind == ActorKind.TOKEN


def test_a_move_places_the_card_between_the_neighbours_named(api, stream, manager):
    first, second, third = (new_card(stream, manager, person_name=n) for n in "ABC")

    response = api.post(
        _card_url(stream, third, "move"),
        {
            "to_column_id": third.column_id,
            "version": third.version,
            "after_card_id": first.pk,
            "before_card_id": second.pk,
        },
        format="json",
    )

    assert response.status_code == 200
    order = list(
        Card.objects.filter(column=first.column).order_by("position", "id").values_list("pk")
    )
    assert [pk for (pk,) in order] == [first.pk, third.pk, second.pk]


@pytest.mark.parametrize("field", ["after_card_id", "before_card_id"])
@pytest.mark.parametrize("whose", ["missing", "other stream"])
def test_a_neighbour_not_of_the_stream_is_404_naming_the_field(
    api, stream, other_stream, manager, field, whose
):
    card = new_card(stream, manager)
    neighbour = (
        987_654_321 if whose == "missing" else new_card(other_stream, other_stream.manager).pk
    )
    before = snapshot(card)

    response = api.post(
        _card_url(stream, card, "move"),
        {"to_column_id": card.column_id, "version": card.version, field: neighbour},
        format="json",
    )

    body = _error(response, 404, "card_not_found")
    assert body["field"] == field
    assert body["data"] == {field: neighbour}
    assert snapshot(card) == before


def test_a_card_named_as_its_own_neighbour_is_400_naming_the_field(api, stream, manager):
    card = new_card(stream, manager)

    response = api.post(
        _card_url(stream, card, "move"),
        {"to_column_id": card.column_id, "version": card.version, "after_card_id": card.pk},
        format="json",
    )

    assert list(_error(response, 400, "invalid_input")["data"]["fields"]) == ["after_card_id"]


def test_a_neighbour_that_moved_away_is_still_409_stale(api, stream, manager):
    card, neighbour = new_card(stream, manager), new_card(stream, manager, column_name="Wisdom")

    response = api.post(
        _card_url(stream, card, "move"),
        {"to_column_id": card.column_id, "version": card.version, "after_card_id": neighbour.pk},
        format="json",
    )

    _error(response, 409, "stale")


def test_a_move_into_the_column_it_is_in_changes_nothing(api, stream, manager):
    card = new_card(stream, manager)

    response = api.post(
        _card_url(stream, card, "move"),
        {"to_column_id": card.column_id, "version": card.version},
        format="json",
    )

    assert response.json()["unchanged"] is True and response.json()["move"] is None
    assert snapshot(card) == snapshot(Card.objects.get(pk=card.pk))


def test_a_move_into_a_full_column_is_409_wip_limit_reached(api, stream, manager):
    card = new_card(stream, manager)
    wisdom = column_of(stream, COLLABORATION, "Wisdom")
    fill(wisdom, wisdom.wip_limit)
    before = snapshot(card)

    response = api.post(
        _card_url(stream, card, "move"),
        {"to_column_id": wisdom.pk, "version": card.version},
        format="json",
    )

    body = _error(response, 409, "wip_limit_reached")
    assert body["data"] == {"column_id": wisdom.pk, "count": 5, "limit": 5}
    assert "WIP limit" in body["message"]
    assert snapshot(card) == before


def test_a_move_on_a_stale_version_is_409_stale(api, stream, manager):
    card = new_card(stream, manager)
    target = column_of(stream, COLLABORATION, "Information")
    before = snapshot(card)

    response = api.post(
        _card_url(stream, card, "move"),
        {"to_column_id": target.pk, "version": card.version - 1 or 99},
        format="json",
    )

    _error(response, 409, "stale")
    assert snapshot(card) == before


def test_a_move_into_another_cycle_needs_the_control_point(api, stream, manager):
    card = new_card(stream, manager, column_name="Wisdom")
    before = snapshot(card)

    response = api.post(
        _card_url(stream, card, "move"),
        {"to_column_id": column_of(stream, SALES, "Data").pk, "version": card.version},
        format="json",
    )

    _error(response, 409, "control_point_required")
    assert snapshot(card) == before


@pytest.mark.parametrize(
    "body",
    [
        {"version": 1},
        {"to_column_id": "two", "version": 1},
        {"to_column_id": 1, "version": 0},
        {"to_column_id": 1, "version": True},
        [],
        "text",
    ],
)
def test_a_move_that_cannot_be_read_is_400_with_the_field_errors(api, stream, manager, body):
    card = new_card(stream, manager)

    response = api.post(_card_url(stream, card, "move"), body, format="json")

    _error(response, 400, "invalid_input")
    assert snapshot(card) == snapshot(Card.objects.get(pk=card.pk))


# Handoffs.


def _collaboration_to_sales(stream) -> ControlPoint:
    return ControlPoint.objects.get(from_cycle__value_stream=stream, from_cycle__order=1)


def test_a_handoff_passes_the_control_point_with_its_criteria(api, stream, manager, team):
    card = new_card(stream, manager, column_name="Wisdom")
    control_point = _collaboration_to_sales(stream)
    met = list(control_point.criteria.values_list("pk", flat=True))

    response = api.post(
        _card_url(stream, card, "handoff"),
        {"control_point_id": control_point.pk, "criteria_met_ids": met, "version": card.version},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["card"]["column_id"] == column_of(stream, SALES, "Data").pk
    assert body["move"]["kind"] == MoveKind.HANDOFF
    handoff = Handoff.objects.get(card=card)
    assert set(handoff.criteria_met.values_list("pk", flat=True)) == set(met)
    assert handoff.actor_kind == ActorKind.TOKEN


def test_a_handoff_without_its_required_criteria_is_409(api, stream, manager):
    card = new_card(stream, manager, column_name="Wisdom")
    control_point = _collaboration_to_sales(stream)
    optional = list(control_point.criteria.filter(required=False).values_list("pk", flat=True))
    before = snapshot(card)

    response = api.post(
        _card_url(stream, card, "handoff"),
        {"control_point_id": control_point.pk, "criteria_met_ids": optional, "version": 1},
        format="json",
    )

    body = _error(response, 409, "criteria_not_met")
    assert body["field"] == "criteria"
    required = control_point.criteria.filter(required=True).values_list("pk", flat=True)
    assert body["data"]["criterion_ids"] == sorted(required)
    assert snapshot(card) == before


def test_a_handoff_through_a_control_point_not_from_the_cards_cycle_is_400(api, stream, manager):
    card = new_card(stream, manager, column_name="Wisdom")
    sales_onwards = ControlPoint.objects.get(from_cycle__value_stream=stream, from_cycle__order=2)
    before = snapshot(card)

    response = api.post(
        _card_url(stream, card, "handoff"),
        {"control_point_id": sales_onwards.pk, "version": card.version},
        format="json",
    )

    body = _error(response, 400, "invalid_input")
    assert list(body["data"]["fields"]) == ["control_point_id"]
    assert COLLABORATION in body["data"]["fields"]["control_point_id"][0]
    assert snapshot(card) == before
    assert not Handoff.objects.exists()


def test_a_handoff_on_a_stale_version_is_409_stale_whatever_the_control_point(api, stream, manager):
    card = new_card(stream, manager, column_name="Wisdom")
    sales_onwards = ControlPoint.objects.get(from_cycle__value_stream=stream, from_cycle__order=2)

    response = api.post(
        _card_url(stream, card, "handoff"),
        {
            "control_point_id": sales_onwards.pk,
            "criteria_met_ids": list(sales_onwards.criteria.values_list("pk", flat=True)),
            "version": card.version - 1,
        },
        format="json",
    )

    _error(response, 409, "stale")


def test_a_handoff_into_a_full_cycle_is_409_wip_limit_reached(api, stream, manager):
    card = new_card(stream, manager, column_name="Wisdom")
    sales_data = column_of(stream, SALES, "Data")
    Column.objects.filter(pk=sales_data.pk).update(wip_limit=1)
    fill(sales_data, 1)
    control_point = _collaboration_to_sales(stream)

    response = api.post(
        _card_url(stream, card, "handoff"),
        {
            "control_point_id": control_point.pk,
            "criteria_met_ids": list(control_point.criteria.values_list("pk", flat=True)),
            "version": card.version,
        },
        format="json",
    )

    _error(response, 409, "wip_limit_reached")
    assert not Handoff.objects.exists()


# Close and reopen.


def test_a_card_is_won_then_reopened(api, stream, manager):
    card = new_card(stream, manager, column_name="Information")

    won = api.post(_card_url(stream, card, "close"), {"outcome": "won", "version": card.version})
    assert won.status_code == 200, won.content
    assert won.json()["card"]["outcome"] == "won" and won.json()["card"]["closed_at"]
    reopened = api.post(
        _card_url(stream, card, "reopen"), {"version": won.json()["card"]["version"]}
    )

    assert reopened.status_code == 200
    assert reopened.json()["card"]["outcome"] == "open"
    assert reopened.json()["move"]["kind"] == MoveKind.REOPEN
    assert Card.objects.get(pk=card.pk).column_id == card.column_id


def test_a_lost_card_says_why(api, stream, manager):
    reason = LostReason.objects.create(value_stream=stream, name="No budget")
    card = new_card(stream, manager)

    unsaid = api.post(_card_url(stream, card, "close"), {"outcome": "lost", "version": 1})
    lost = api.post(
        _card_url(stream, card, "close"),
        {"outcome": "lost", "version": 1, "lost_reason_id": reason.pk, "lost_note": "Next year"},
    )

    assert _error(unsaid, 400, "lost_reason_required")["field"] == "lost_reason"
    assert lost.status_code == 200
    loss = CardLoss.objects.get(move_id=lost.json()["move"]["id"])
    assert (loss.reason, loss.note) == (reason, "Next year")


def test_closing_a_closed_card_and_reopening_an_open_one_are_refused(api, stream, manager):
    card = new_card(stream, manager)

    _error(api.post(_card_url(stream, card, "reopen"), {"version": 1}), 400, "invalid_move")
    api.post(_card_url(stream, card, "close"), {"outcome": "won", "version": 1})
    again = api.post(_card_url(stream, card, "close"), {"outcome": "won", "version": 2})

    _error(again, 400, "invalid_move")
    _error(
        api.post(_card_url(stream, card, "close"), {"outcome": "open", "version": 2}),
        400,
        "invalid_input",
    )


def test_a_reopen_into_a_full_column_is_409(api, stream, manager):
    card = new_card(stream, manager, column_name="Wisdom")
    api.post(_card_url(stream, card, "close"), {"outcome": "lost", "version": card.version})
    fill(column_of(stream, COLLABORATION, "Wisdom"), 5)

    response = api.post(_card_url(stream, card, "reopen"), {"version": card.version + 1})

    _error(response, 409, "wip_limit_reached")
    assert Card.objects.get(pk=card.pk).outcome == Outcome.LOST


def test_a_page_of_cards_costs_the_same_few_queries_however_many(
    api, stream, manager, django_assert_max_num_queries
):
    for index in range(3):
        new_card(stream, manager, person_name=f"P{index}")
    url = reverse("api:card-list", args=[stream.pk])
    api.get(url)  # the token's last use is stamped once a minute: not in the budget

    with django_assert_max_num_queries(3) as few:
        assert len(api.get(url).json()["results"]) == 3
    for index in range(30):
        new_card(stream, manager, person_name=f"Q{index}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(api.get(url).json()["results"]) == 33
