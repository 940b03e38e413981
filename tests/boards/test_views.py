"""The board's HTTP endpoints: who may see what, htmx answers, and the rows they write."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from boards import urls as board_urls
from boards.models import Card, CardMove, Column, Handoff, MoveKind, Outcome
from boards.selectors import COLUMN_PAGE_SIZE, board_version
from boards.services import card_move, card_update, value_stream_create
from pdca.models import ControlPoint, Cycle
from tests.factories import CardFactory, ChannelFactory, MembershipFactory, UserFactory
from tests.pages import cards_by_column, element, has_element
from tests.support import (
    COLLABORATION,
    SALES,
    TEST_SYSTEM,
    as_actor,
    column_of,
    fill,
    logged_in,
    new_card,
)
from vsm.models import Role, ValueStream

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
STALE = "Someone else changed this card meanwhile"


def client_events(response) -> str:
    """The events the response asks htmx to trigger, whenever in the swap it fires them."""
    headers = ("HX-Trigger", "HX-Trigger-After-Swap", "HX-Trigger-After-Settle")
    return " ".join(response.headers.get(header, "") for header in headers)


def state(card: Card) -> tuple:
    card.refresh_from_db()
    return (card.column_id, card.version, card.outcome, card.is_blocked, card.person_name)


URL_NAMES = [pattern.name for pattern in board_urls.urlpatterns]


def url_for(name: str, *, stream: ValueStream, card: Card, column: Column) -> str:
    pattern = next(p for p in board_urls.urlpatterns if p.name == name)
    values = {"stream_slug": stream.slug, "card_id": card.pk, "column_id": column.pk}
    kwargs = {key: values[key] for key in pattern.pattern.converters}
    return reverse(f"boards:{name}", kwargs=kwargs)


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", URL_NAMES)
def test_anonymous_request_redirects_to_login(client, stream, manager, name, method):
    card = new_card(stream, manager)
    column = column_of(stream, COLLABORATION, "Information")
    url = url_for(name, stream=stream, card=card, column=column)
    before = state(card)

    data = {"to_column": column.pk, "version": card.version, "outcome": "won", "wip_limit": 2}
    response = getattr(client, method)(url, data if method == "post" else None)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"
    assert state(card) == before
    column.refresh_from_db()
    assert column.wip_limit == 15


# Every boards URL except the stream list is scoped to one stream.
OUTSIDER_REQUESTS = [
    ("board", "get"),
    ("board-poll", "get"),
    ("column-more", "get"),
    ("column-wip-limit", "post"),
    ("card-create", "get"),
    ("card-create", "post"),
    ("card-detail", "get"),
    ("card-move", "post"),
    ("card-move-menu", "get"),
    ("card-handoff", "get"),
    ("card-handoff", "post"),
    ("card-edit", "post"),
    ("card-block", "post"),
    ("card-comment", "post"),
    ("card-close", "get"),
    ("card-close", "post"),
    ("card-reopen", "post"),
    ("card-personal-data", "get"),
    ("card-personal-data", "post"),
    ("card-personal-data-json", "get"),
    ("card-personal-data-csv", "get"),
    ("archive", "get"),
]


def test_outsider_cases_cover_every_stream_url():
    assert {name for name, _ in OUTSIDER_REQUESTS} == set(URL_NAMES) - {"stream-list"}


@pytest.mark.parametrize(("name", "method"), OUTSIDER_REQUESTS)
def test_user_outside_the_stream_gets_404(stream, manager, user, name, method):
    card = new_card(stream, manager)
    information = column_of(stream, COLLABORATION, "Information")
    sales_data = column_of(stream, SALES, "Data")
    url = url_for(name, stream=stream, card=card, column=information)
    # Input that would succeed for a member, so only the scoping can refuse it.
    data = {
        "to_column": sales_data.pk if name == "card-handoff" else information.pk,
        "version": card.version,
        "dragged": "1",
        "outcome": "won",
        "reason": "Budget frozen",
        "text": "Mallory was here",
        "wip_limit": "2",
        "cycle": Cycle.objects.get(value_stream=stream, name=COLLABORATION).pk,
        "person_name": "Mallory",
        "company": "Intruders Ltd",
        "confirm": "on",
        "criteria": list(
            ControlPoint.objects.get(
                from_cycle__value_stream=stream, from_cycle__order=1
            ).criteria.values_list("pk", flat=True)
        ),
    }
    before, cards_before = state(card), Card.objects.count()
    client = logged_in(user)

    if method == "get":
        response = client.get(url, {"to_column": data["to_column"]}, headers=HTMX)
    else:
        response = client.post(url, data, headers=HTMX)

    assert response.status_code == 404
    assert state(card) == before
    assert Card.objects.count() == cards_before
    assert not Handoff.objects.exists()
    information.refresh_from_db()
    assert information.wip_limit == 15


def test_member_sees_the_board(stream, member, manager):
    card = new_card(stream, manager, column_name="Knowledge")

    response = logged_in(member).get(reverse("boards:board", args=[stream.slug]))

    assert response.status_code == 200
    columns = cards_by_column(response.content)
    assert set(columns) == set(
        Column.objects.filter(cycle__value_stream=stream).values_list("pk", flat=True)
    )
    assert columns[card.column_id] == [card.pk]
    assert b"Industrial pumps" in response.content


def test_member_cannot_change_a_wip_limit(stream, member):
    knowledge = column_of(stream, COLLABORATION, "Knowledge")

    response = logged_in(member).post(
        reverse("boards:column-wip-limit", args=[stream.slug, knowledge.pk]),
        {"wip_limit": "3"},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert b"Only an admin or the value stream manager may change WIP limits." in response.content
    knowledge.refresh_from_db()
    assert knowledge.wip_limit == 10


@pytest.mark.parametrize(("posted", "saved"), [("3", 3), ("", None)])
def test_manager_changes_a_wip_limit(stream, manager, posted, saved):
    knowledge = column_of(stream, COLLABORATION, "Knowledge")

    response = logged_in(manager).post(
        reverse("boards:column-wip-limit", args=[stream.slug, knowledge.pk]),
        {"wip_limit": posted},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert b"WIP limit of Knowledge saved." in response.content
    assert element(response.content, f"column-{knowledge.pk}")["hx-swap-oob"] == "outerHTML"
    knowledge.refresh_from_db()
    assert knowledge.wip_limit == saved


def test_invalid_wip_limit_is_refused_without_htmx(stream, manager):
    knowledge = column_of(stream, COLLABORATION, "Knowledge")
    client = logged_in(manager)

    response = client.post(
        reverse("boards:column-wip-limit", args=[stream.slug, knowledge.pk]),
        {"wip_limit": "0"},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("boards:board", args=[stream.slug]), 302)]
    assert b"A WIP limit is empty or a whole number from 1 to 10,000." in response.content
    knowledge.refresh_from_db()
    assert knowledge.wip_limit == 10


def test_stream_list_shows_only_the_users_streams(stream, member):
    other = value_stream_create(
        actor=TEST_SYSTEM,
        name="Private clinics",
        customer_market="Group practices",
        manager=UserFactory(),
    )
    MembershipFactory(team__value_stream=other, role=Role.MEMBER)

    member_page = logged_in(member).get(reverse("boards:stream-list"))
    outsider_page = logged_in(UserFactory()).get(reverse("boards:stream-list"))

    assert member_page.status_code == 200
    assert list(member_page.context["streams"]) == [stream]
    assert reverse("boards:board", args=[stream.slug]).encode() in member_page.content
    assert reverse("boards:board", args=[other.slug]).encode() not in member_page.content
    assert list(outsider_page.context["streams"]) == []
    assert b"You are not a member of any value stream" in outsider_page.content


def move_url(stream: ValueStream, card: Card) -> str:
    return reverse("boards:card-move", args=[stream.slug, card.pk])


def test_drag_answers_the_column_heads_and_the_card(stream, member, manager):
    card = new_card(stream, manager)
    data_column = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")

    response = logged_in(member).post(
        move_url(stream, card),
        {"to_column": information.pk, "version": card.version, "dragged": "1"},
        headers=HTMX,
    )

    assert response.status_code == 200
    old_head = element(response.content, f"column-head-{data_column.pk}")
    new_head = element(response.content, f"column-head-{information.pk}")
    assert (old_head["data-count"], new_head["data-count"]) == ("0", "1")
    assert old_head["hx-swap-oob"] == new_head["hx-swap-oob"] == "outerHTML"
    rendered_card = element(response.content, f"card-{card.pk}")
    assert rendered_card["hx-swap-oob"] == "outerHTML"
    assert rendered_card["data-version"] == str(card.version + 1)
    # A drag's answer is small: the browser already shows the card where it was dropped.
    assert not has_element(response.content, f"column-{information.pk}")
    moved = Card.objects.get(pk=card.pk)
    assert (moved.column_id, moved.version) == (information.pk, card.version + 1)
    last = CardMove.objects.filter(card=card).latest("id")
    assert (last.kind, last.from_column_id, last.to_column_id, last.actor) == (
        MoveKind.MOVE,
        data_column.pk,
        information.pk,
        member,
    )


@pytest.fixture
def full_wisdom(stream):
    """Collaboration / Wisdom at its WIP limit of 5."""
    wisdom = column_of(stream, COLLABORATION, "Wisdom")
    fill(wisdom, 5)
    return wisdom


@pytest.mark.parametrize(("who", "offered"), [("manager", True), ("member", False)])
def test_wip_refusal_answers_200_with_message_and_fresh_columns(
    request, stream, manager, full_wisdom, who, offered
):
    card = new_card(stream, manager, column_name="Knowledge")
    knowledge = column_of(stream, COLLABORATION, "Knowledge")
    moves_before = CardMove.objects.count()

    response = logged_in(request.getfixturevalue(who)).post(
        move_url(stream, card),
        {"to_column": full_wisdom.pk, "version": card.version, "dragged": "1"},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert b"Wisdom is at its WIP limit, 5/5" in response.content
    columns = cards_by_column(response.content)
    assert columns[knowledge.pk] == [card.pk]
    assert len(columns[full_wisdom.pk]) == 5 and card.pk not in columns[full_wisdom.pk]
    assert element(response.content, f"column-{knowledge.pk}")["hx-swap-oob"] == "outerHTML"
    assert (b"Move anyway" in response.content) is offered
    assert (b'name="override_reason"' in response.content) is offered
    assert Card.objects.get(pk=card.pk).column_id == knowledge.pk
    assert CardMove.objects.count() == moves_before


def test_manager_override_moves_over_the_limit_and_logs_the_reason(stream, manager, full_wisdom):
    card = new_card(stream, manager, column_name="Knowledge")

    response = logged_in(manager).post(
        move_url(stream, card),
        {"to_column": full_wisdom.pk, "override_reason": "Board asked for a demo"},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert b"Moved over the WIP limit of Wisdom; the reason is logged." in response.content
    assert Card.objects.get(pk=card.pk).column_id == full_wisdom.pk
    assert CardMove.objects.filter(card=card).latest("id").wip_override_reason == (
        "Board asked for a demo"
    )


def test_member_override_is_refused(stream, manager, member, full_wisdom):
    card = new_card(stream, manager, column_name="Knowledge")

    response = logged_in(member).post(
        move_url(stream, card),
        {"to_column": full_wisdom.pk, "override_reason": "I insist"},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert (
        b"Only an admin or the value stream manager may override the WIP limit" in response.content
    )
    assert Card.objects.get(pk=card.pk).column.name == "Knowledge"


def test_stale_version_is_refused_and_nothing_changes(stream, manager, member):
    card = new_card(stream, manager)
    information = column_of(stream, COLLABORATION, "Information")
    before, moves_before = state(card), CardMove.objects.count()

    response = logged_in(member).post(
        move_url(stream, card),
        {"to_column": information.pk, "version": card.version + 1, "dragged": "1"},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert STALE.encode() in response.content
    assert cards_by_column(response.content)[card.column_id] == [card.pk]
    assert state(card) == before
    assert CardMove.objects.count() == moves_before


def test_move_across_a_cycle_is_refused_with_the_handoff_hint(stream, manager):
    card = new_card(stream, manager, column_name="Wisdom")

    response = logged_in(manager).post(
        move_url(stream, card),
        {"to_column": column_of(stream, SALES, "Data").pk, "version": card.version},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert b"passes a control point: use its handoff checklist." in response.content
    assert Card.objects.get(pk=card.pk).column.cycle.name == COLLABORATION


def test_keyboard_move_answers_both_full_columns_and_closes_the_dialog(stream, manager):
    card = new_card(stream, manager)
    data_column = column_of(stream, COLLABORATION, "Data")
    knowledge = column_of(stream, COLLABORATION, "Knowledge")

    response = logged_in(manager).post(
        move_url(stream, card), {"to_column": knowledge.pk, "version": card.version}, headers=HTMX
    )

    assert response.status_code == 200
    columns = cards_by_column(response.content)
    assert (columns[data_column.pk], columns[knowledge.pk]) == ([], [card.pk])
    assert "vsm:close-dialog" in client_events(response)
    assert Card.objects.get(pk=card.pk).column_id == knowledge.pk


def test_plain_post_moves_and_redirects_to_the_board_with_a_message(stream, manager):
    card = new_card(stream, manager)
    information = column_of(stream, COLLABORATION, "Information")

    response = logged_in(manager).post(
        move_url(stream, card), {"to_column": information.pk, "version": card.version}, follow=True
    )

    assert response.redirect_chain == [(reverse("boards:board", args=[stream.slug]), 302)]
    assert b"Ada Keller (Nordwerk Pumps) moved." in response.content
    assert cards_by_column(response.content)[information.pk] == [card.pk]
    assert Card.objects.get(pk=card.pk).column_id == information.pk


def test_plain_post_refusal_redirects_with_the_error(stream, manager, full_wisdom):
    card = new_card(stream, manager, column_name="Knowledge")

    response = logged_in(manager).post(
        move_url(stream, card), {"to_column": full_wisdom.pk}, follow=True
    )

    assert response.redirect_chain == [(reverse("boards:board", args=[stream.slug]), 302)]
    assert b"Wisdom is at its WIP limit, 5/5" in response.content
    assert Card.objects.get(pk=card.pk).column.name == "Knowledge"


def handoff_url(stream: ValueStream, card: Card) -> str:
    return reverse("boards:card-handoff", args=[stream.slug, card.pk])


@pytest.fixture
def control_point(stream) -> ControlPoint:
    return ControlPoint.objects.get(from_cycle__value_stream=stream, from_cycle__name=COLLABORATION)


def test_handoff_dialog_lists_the_criteria(stream, manager, control_point):
    card = new_card(stream, manager, column_name="Wisdom")

    response = logged_in(manager).get(
        handoff_url(stream, card), {"to_column": column_of(stream, SALES, "Data").pk}, headers=HTMX
    )

    assert response.status_code == 200
    for criterion in control_point.criteria.all():
        assert f'value="{criterion.pk}"'.encode() in response.content
    assert b"Decision maker identified" in response.content
    assert b"<html" not in response.content  # the dialog fragment, not a page


def test_handoff_without_required_criteria_shows_the_error(stream, member, manager, control_point):
    card = new_card(stream, manager, column_name="Wisdom")
    optional = control_point.criteria.get(required=False)
    before = state(card)

    response = logged_in(member).post(
        handoff_url(stream, card),
        {
            "to_column": column_of(stream, SALES, "Data").pk,
            "version": card.version,
            "criteria": [optional.pk],
        },
        headers=HTMX,
    )

    assert response.status_code == 200
    assert b"Required criteria not met: Customer&#x27;s problem understood; Our solution" in (
        response.content
    )
    # The dialog comes back with the ticked criterion still ticked.
    assert f'value="{optional.pk}" checked'.encode() in response.content
    assert state(card) == before
    assert not Handoff.objects.exists()


@pytest.mark.parametrize("tick", ["\u00b2", "-1", str(2**63), "x"])
def test_a_criterion_tick_that_is_no_id_is_refused_without_an_error(
    stream, member, manager, control_point, tick
):
    card = new_card(stream, manager, column_name="Wisdom")
    optional = control_point.criteria.get(required=False)

    response = logged_in(member).post(
        handoff_url(stream, card),
        {
            "to_column": column_of(stream, SALES, "Data").pk,
            "version": card.version,
            "criteria": [optional.pk, tick],
        },
        headers=HTMX,
    )

    assert response.status_code == 200
    assert b"could not be read" in response.content or b"Select a valid choice" in response.content
    assert f'value="{optional.pk}" checked'.encode() in response.content
    assert not Handoff.objects.exists()


def test_handoff_with_required_criteria_passes_the_card(stream, member, manager, control_point):
    card = new_card(stream, manager, column_name="Wisdom")
    required = list(control_point.criteria.filter(required=True))
    sales_data = column_of(stream, SALES, "Data")

    response = logged_in(member).post(
        handoff_url(stream, card),
        {"to_column": sales_data.pk, "version": card.version, "criteria": [c.pk for c in required]},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert "vsm:close-dialog" in client_events(response)
    assert cards_by_column(response.content)[sales_data.pk] == [card.pk]
    handoff = Handoff.objects.get(card=card)
    assert set(handoff.criteria_met.all()) == set(required)
    assert (handoff.control_point, handoff.actor, handoff.move.kind) == (
        control_point,
        member,
        MoveKind.HANDOFF,
    )
    card.refresh_from_db()
    assert card.column_id == sales_data.pk
    assert card.owning_team_id == control_point.receiving_team_id


def test_handoff_to_a_cycle_without_control_point_explains_why(stream, manager):
    card = new_card(stream, manager)
    repeat_data = Column.objects.get(cycle__value_stream=stream, cycle__order=3, order=1)

    response = logged_in(manager).get(
        handoff_url(stream, card), {"to_column": repeat_data.pk}, headers=HTMX
    )

    assert response.status_code == 200
    assert b"No control point leads from Collaboration to Repeat/Upsell" in response.content


def poll(client: Client, stream: ValueStream, version: str):
    return client.get(
        reverse("boards:board-poll", args=[stream.slug]), {"version": version}, headers=HTMX
    )


# Transactional: on PostgreSQL the poll's version is a snapshot (boards.selectors.changes),
# which cannot order the writes of one transaction against each other.
@pytest.mark.django_db(transaction=True)
def test_poll_answers_204_until_something_moves(stream, manager, member):
    card = new_card(stream, manager)
    client = logged_in(member)
    page = client.get(reverse("boards:board", args=[stream.slug]))
    seen = element(page.content, "board")["data-version"]

    unchanged = poll(client, stream, seen)
    information = column_of(stream, COLLABORATION, "Information")
    card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))
    changed = poll(client, stream, seen)

    assert (unchanged.status_code, unchanged.content) == (204, b"")
    # What changed, not the board: the card in its new column and the heads.
    assert (changed.status_code, changed["X-Board-Delta"]) == (200, "1")
    fresh = changed["X-Board-Version"]
    assert fresh != seen
    assert cards_by_column(changed.content)[information.pk] == [card.pk]
    assert not has_element(changed.content, "board")
    assert poll(client, stream, fresh).status_code == 204


# Transactional: on PostgreSQL the poll's version is a snapshot (boards.selectors.changes),
# which cannot order the writes of one transaction against each other.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["edit", "block", "wip_limit"])
def test_poll_sees_changes_other_than_moves(stream, manager, change):
    card = new_card(stream, manager)
    client = logged_in(manager)
    seen = board_version(stream=stream)
    assert poll(client, stream, seen).status_code == 204

    if change == "edit":
        response = client.post(
            reverse("boards:card-edit", args=[stream.slug, card.pk]),
            {"person_name": "Ada Novak", "company": "Nordwerk Pumps", "version": card.version},
        )
    elif change == "block":
        response = client.post(
            reverse("boards:card-block", args=[stream.slug, card.pk]),
            {"reason": "Budget frozen", "version": card.version},
        )
    else:
        response = client.post(
            reverse("boards:column-wip-limit", args=[stream.slug, card.column_id]),
            {"wip_limit": "4"},
        )
    assert response.status_code == 302
    card = Card.objects.select_related("column").get(pk=card.pk)
    # The change was saved (and none of them is a move).
    assert (card.person_name, card.is_blocked, card.column.wip_limit) != ("Ada Keller", False, None)
    assert not CardMove.objects.filter(card=card).exclude(kind=MoveKind.ENTER).exists()

    assert poll(client, stream, seen).status_code == 200


def test_card_create_enters_the_chosen_cycle(stream, manager, member):
    channel = ChannelFactory(value_stream=stream, name="Referral")
    sales = Cycle.objects.get(value_stream=stream, name=SALES)

    response = logged_in(manager).post(
        reverse("boards:card-create", args=[stream.slug]),
        {
            "cycle": sales.pk,
            "person_name": "Elif Rossi",
            "company": "Baltic Castings",
            "email": "elif@baltic.example",
            "channel": channel.pk,
            "owner": member.pk,
            "estimated_value": "12500.00",
            "notes": "Met at the trade show.",
        },
    )

    assert response.status_code == 302
    assert response.url == reverse("boards:board", args=[stream.slug])
    card = Card.objects.get(person_name="Elif Rossi")
    assert (card.column, card.channel, card.owner, card.estimated_value) == (
        column_of(stream, SALES, "Data"),
        channel,
        member,
        Decimal("12500.00"),
    )
    assert card.owning_team == sales.owning_team
    enter = CardMove.objects.get(card=card)
    assert (enter.kind, enter.from_column, enter.actor) == (MoveKind.ENTER, None, manager)


def test_card_create_over_htmx_answers_the_column(stream, member):
    collaboration = Cycle.objects.get(value_stream=stream, name=COLLABORATION)

    response = logged_in(member).post(
        reverse("boards:card-create", args=[stream.slug]),
        {"cycle": collaboration.pk, "company": "Tyne Gears"},
        headers=HTMX,
    )

    card = Card.objects.get(company="Tyne Gears")
    assert response.status_code == 200
    assert cards_by_column(response.content)[card.column_id] == [card.pk]
    assert "vsm:close-dialog" in client_events(response)


def test_card_create_without_person_or_company_shows_the_form_again(stream, member):
    collaboration = Cycle.objects.get(value_stream=stream, name=COLLABORATION)

    response = logged_in(member).post(
        reverse("boards:card-create", args=[stream.slug]),
        {"cycle": collaboration.pk, "email": "who@example.com"},
        headers=HTMX,
    )

    assert response.status_code == 200
    # The service's rule, shown beside the field it is about.
    assert b"A prospect needs a person or a company." in response.content
    assert not Card.objects.exists()


def edit_data(card: Card, **changes) -> dict:
    data = {
        "person_name": card.person_name,
        "company": card.company,
        "email": card.email,
        "estimated_value": str(card.estimated_value),
        "notes": card.notes,
        "version": card.version,
    }
    return {**data, **changes}


def test_editing_a_card_keeps_a_channel_deactivated_since_and_an_owner_who_left(
    stream, manager, member
):
    retired = ChannelFactory(value_stream=stream, is_active=False)
    card = CardFactory(
        column=column_of(stream, COLLABORATION, "Data"), channel=retired, owner=member
    )
    member.memberships.all().delete()  # the owner leaves the stream's teams
    page = logged_in(manager).get(reverse("boards:card-detail", args=[stream.slug, card.pk]))
    # The form offers what the card has, selected, so saving it keeps them.
    assert f'<option value="{retired.pk}" selected>'.encode() in page.content
    assert f'<option value="{member.pk}" selected>'.encode() in page.content

    response = logged_in(manager).post(
        reverse("boards:card-edit", args=[stream.slug, card.pk]),
        edit_data(card, notes="Asked for references.", channel=retired.pk, owner=member.pk),
    )

    assert response.status_code == 302
    edited = Card.objects.get(pk=card.pk)
    assert (edited.channel_id, edited.owner_id, edited.notes) == (
        retired.pk,
        member.pk,
        "Asked for references.",
    )


def test_a_new_card_cannot_take_a_deactivated_channel(stream, member):
    retired = ChannelFactory(value_stream=stream, is_active=False)
    collaboration = Cycle.objects.get(value_stream=stream, name=COLLABORATION)

    response = logged_in(member).post(
        reverse("boards:card-create", args=[stream.slug]),
        {"cycle": collaboration.pk, "company": "Acme", "channel": retired.pk},
        headers=HTMX,
    )

    assert b"Select a valid choice" in response.content
    assert not Card.objects.exists()


def test_card_edit_saves_and_bumps_the_version(stream, manager):
    card = new_card(stream, manager)
    url = reverse("boards:card-edit", args=[stream.slug, card.pk])

    response = logged_in(manager).post(url, edit_data(card, notes="Wants a pilot in May."))

    assert response.status_code == 302
    assert response.url == reverse("boards:card-detail", args=[stream.slug, card.pk])
    edited = Card.objects.get(pk=card.pk)
    assert (edited.notes, edited.version) == ("Wants a pilot in May.", card.version + 1)


def test_card_edit_on_a_stale_version_answers_409(stream, manager, member):
    card = new_card(stream, manager)
    url = reverse("boards:card-edit", args=[stream.slug, card.pk])
    seen = edit_data(card, notes="My notes")
    card_move(
        card_id=card.pk,
        to_column_id=column_of(stream, COLLABORATION, "Information").pk,
        actor=as_actor(manager),
    )
    before = state(card)

    response = logged_in(member).post(url, seen)

    assert response.status_code == 409
    assert STALE.encode() in response.content
    assert state(card) == before
    assert Card.objects.get(pk=card.pk).notes == ""


def test_card_detail_shows_the_history(stream, manager, member):
    card = new_card(stream, manager, column_name="Knowledge")

    response = logged_in(member).get(reverse("boards:card-detail", args=[stream.slug, card.pk]))

    assert response.status_code == 200
    # Newest first (tests/boards/test_card_history.py has the whole timeline).
    assert [entry.kind for entry in response.context["timeline"].entries] == [
        MoveKind.MOVE,
        MoveKind.ENTER,
    ]
    assert b"Collaboration / Data &rarr; Collaboration / Knowledge" in response.content


def test_block_and_unblock(stream, manager, member):
    card = new_card(stream, manager)
    client = logged_in(member)
    url = reverse("boards:card-block", args=[stream.slug, card.pk])

    blocked = client.post(url, {"reason": "Legal review", "version": card.version}, follow=True)
    card.refresh_from_db()
    assert (card.is_blocked, card.blocked_reason) == (True, "Legal review")
    assert card.blocked_at is not None
    assert b"Blocked." in blocked.content

    client.post(url, {"action": "unblock", "version": card.version})
    card.refresh_from_db()
    assert (card.is_blocked, card.blocked_reason, card.blocked_at) == (False, "", None)


def test_block_without_a_reason_is_refused(stream, manager, member):
    card = new_card(stream, manager)

    response = logged_in(member).post(
        reverse("boards:card-block", args=[stream.slug, card.pk]),
        {"reason": "  ", "version": card.version},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse(
        "boards:card-detail", args=[stream.slug, card.pk]
    )
    assert b"Say why the card is blocked." in response.content
    assert Card.objects.get(pk=card.pk).is_blocked is False


@pytest.mark.parametrize(
    ("outcome", "kind"), [(Outcome.WON, MoveKind.WON), (Outcome.LOST, MoveKind.LOST)]
)
def test_close_then_reopen(stream, manager, member, outcome, kind):
    card = new_card(stream, manager, column_name="Information")
    client = logged_in(member)

    client.post(
        reverse("boards:card-close", args=[stream.slug, card.pk]),
        {"outcome": outcome, "version": card.version},
    )
    card.refresh_from_db()
    assert (card.outcome, card.column.name) == (outcome, "Information")
    assert card.closed_at is not None
    assert CardMove.objects.filter(card=card).latest("id").kind == kind

    client.post(
        reverse("boards:card-reopen", args=[stream.slug, card.pk]), {"version": card.version}
    )
    card.refresh_from_db()
    assert (card.outcome, card.closed_at) == (Outcome.OPEN, None)
    reopen = CardMove.objects.filter(card=card).latest("id")
    assert (reopen.kind, reopen.actor) == (MoveKind.REOPEN, member)


def test_closing_a_closed_card_is_refused(stream, manager):
    card = new_card(stream, manager)
    client = logged_in(manager)
    url = reverse("boards:card-close", args=[stream.slug, card.pk])
    client.post(url, {"outcome": "won"})

    response = client.post(url, {"outcome": "lost"}, follow=True)

    assert b"This card is already won." in response.content
    assert Card.objects.get(pk=card.pk).outcome == Outcome.WON
    assert CardMove.objects.filter(card=card, kind=MoveKind.LOST).count() == 0


def after(card: Card) -> dict[str, int]:
    """The "show more" cursor after this card, as the button sends it."""
    card.refresh_from_db()
    return {"after_position": card.position, "after_id": card.pk}


def card_links(stream: ValueStream, card: Card) -> list[bytes]:
    """The card's two links as its partial renders them: its page and its 'Move to...'."""
    detail = reverse("boards:card-detail", args=[stream.slug, card.pk])
    menu = reverse("boards:card-move-menu", args=[stream.slug, card.pk])
    return [f'href="{detail}"'.encode(), f'hx-get="{menu}"'.encode()]


def test_every_rendering_of_a_card_links_to_its_page_and_its_move_menu(stream, manager):
    shown = new_card(stream, manager, column_name="Information")
    data_column = column_of(stream, COLLABORATION, "Data")
    hidden = fill(data_column, COLUMN_PAGE_SIZE + 1)[-1]
    client = logged_in(manager)

    page = client.get(reverse("boards:board", args=[stream.slug]))
    more = client.get(
        reverse("boards:column-more", args=[stream.slug, data_column.pk]),
        after(Card.objects.filter(column=data_column).order_by("position", "id")[24]),
    )
    dragged = client.post(
        move_url(stream, shown),
        {"to_column": column_of(stream, COLLABORATION, "Knowledge").pk, "dragged": "1"},
        headers=HTMX,
    )

    for response, card in [(page, shown), (more, hidden), (dragged, shown)]:
        assert response.status_code == 200
        for link in card_links(stream, card):
            assert link in response.content


def test_board_filters_by_owner_and_offers_the_owners_of_open_cards(stream, manager):
    data_column = column_of(stream, COLLABORATION, "Data")
    ada, bob, cleo = (UserFactory(first_name=name) for name in ("Ada", "Bob", "Cleo"))
    adas = CardFactory(column=data_column, owner=ada)
    CardFactory(column=data_column, owner=bob)
    CardFactory(column=data_column, owner=bob)
    CardFactory(column=data_column, owner=cleo, outcome=Outcome.WON, closed_at=timezone.now())
    client = logged_in(manager)

    page = client.get(reverse("boards:board", args=[stream.slug]), {"owner": ada.pk})
    unfiltered = client.get(reverse("boards:board", args=[stream.slug]))

    assert cards_by_column(page.content)[data_column.pk] == [adas.pk]
    assert len(cards_by_column(unfiltered.content)[data_column.pk]) == 3
    offered = page.context["owners"]
    assert offered == [ada, bob]


def test_show_more_returns_the_rest_of_a_column(stream, manager):
    data_column = column_of(stream, COLLABORATION, "Data")
    cards = fill(data_column, COLUMN_PAGE_SIZE + 5)
    client = logged_in(manager)

    page = client.get(reverse("boards:board", args=[stream.slug]))
    more = client.get(
        reverse("boards:column-more", args=[stream.slug, data_column.pk]),
        after(cards[COLUMN_PAGE_SIZE - 1]),
    )

    first_page = cards_by_column(page.content)[data_column.pk]
    assert first_page == [card.pk for card in cards[:COLUMN_PAGE_SIZE]]
    assert b"Show more" in page.content
    assert cards_by_column(more.content)[0] == [card.pk for card in cards[COLUMN_PAGE_SIZE:]]
    assert b"Show more" not in more.content


# PostgreSQL's counts; SQLite has no transaction bounds to set (one statement less).
# A move writes its audit row in its transaction: one insert.
# The board page: one more for the cycles with a running experiment (their badge).
BOARD_QUERY_BUDGET = 11
# The poll that finds nothing new holds the published version: no board read at all.
POLL_QUERY_BUDGET = 3
DRAG_QUERY_BUDGET = 13
KEYBOARD_MOVE_QUERY_BUDGET = 16


def stream_with_cards(name: str, count: int):
    """A stream whose cards sit in four columns, each card with its own owner and channel."""
    manager = UserFactory()
    stream = value_stream_create(
        actor=TEST_SYSTEM, name=name, customer_market="Pump makers", manager=manager
    )
    owners = [MembershipFactory(team__value_stream=stream).user for _ in range(3)]
    channels = [ChannelFactory(value_stream=stream) for _ in range(3)]
    columns = [
        column_of(stream, COLLABORATION, "Data"),
        column_of(stream, SALES, "Data"),
        Column.objects.get(cycle__value_stream=stream, cycle__order=3, order=1),
        column_of(stream, COLLABORATION, "Information"),
    ]
    cards = [
        CardFactory(column=columns[i % 4], owner=owners[i % 3], channel=channels[i % 3])
        for i in range(count)
    ]
    return stream, manager, cards[0]


def measure_board_and_moves(stream: ValueStream, manager, card: Card, assert_max_queries):
    """Query counts of the board page, the poll that finds nothing new, a drag and a
    keyboard move; and the board page."""
    client = logged_in(manager)
    board_url = reverse("boards:board", args=[stream.slug])
    knowledge = column_of(stream, COLLABORATION, "Knowledge")
    client.get(board_url)  # the first request of a session may write to it
    with assert_max_queries(BOARD_QUERY_BUDGET) as board_queries:
        page = client.get(board_url)
    with assert_max_queries(POLL_QUERY_BUDGET) as poll_queries:
        unchanged = poll(client, stream, element(page.content, "board")["data-version"])
    assert unchanged.status_code == 204
    with assert_max_queries(DRAG_QUERY_BUDGET) as drag_queries:
        dragged = client.post(
            move_url(stream, card),
            {"to_column": knowledge.pk, "version": card.version, "dragged": "1"},
            headers=HTMX,
        )
    assert Card.objects.get(pk=card.pk).column_id == knowledge.pk
    with assert_max_queries(KEYBOARD_MOVE_QUERY_BUDGET) as keyboard_queries:
        back = client.post(
            move_url(stream, card),
            {"to_column": card.column_id, "version": card.version + 1},
            headers=HTMX,
        )
    assert Card.objects.get(pk=card.pk).column_id == card.column_id
    assert page.status_code == dragged.status_code == back.status_code == 200
    counts = [board_queries, poll_queries, drag_queries, keyboard_queries]
    return tuple(len(queries) for queries in counts), page


def test_board_and_move_queries_do_not_grow_with_cards(django_assert_max_num_queries, settings):
    # Production's published version, which the page hands to its first poll.
    settings.VSM_BOARD_PUBLISH_SECONDS = 60.0
    small = stream_with_cards("Small", 5)
    large = stream_with_cards("Large", 120)

    small_counts, _ = measure_board_and_moves(*small, django_assert_max_num_queries)
    large_counts, large_page = measure_board_and_moves(*large, django_assert_max_num_queries)

    # 30 cards in each of four columns: the board shows one page of each, and "Show more".
    shown = sorted(len(ids) for ids in cards_by_column(large_page.content).values())
    assert shown[-4:] == [COLUMN_PAGE_SIZE] * 4
    assert large_page.content.count(b"Show more") == 4
    assert small_counts == large_counts


def test_ids_too_large_for_the_database_are_refused_not_a_500(stream, manager):
    # 99999999999999999999 does not fit 64 bits: SQLite could not even bind it.
    client = logged_in(manager)
    card = new_card(stream, manager)
    board = reverse("boards:board", args=[stream.slug])
    too_large = "99999999999999999999"
    for params in ({"channel": too_large}, {"owner": too_large}):
        response = client.get(board, params)
        assert response.status_code == 200, params  # the malformed filter is ignored
    moved = client.post(move_url(stream, card), {"to_column": too_large}, HTTP_HX_REQUEST="true")
    assert moved.status_code in (200, 400)
    assert Card.objects.get(pk=card.pk).column_id == card.column_id


def test_the_board_narrowed_to_one_column_shows_only_its_cards(stream, manager):
    data_column = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    in_data = CardFactory(column=data_column)
    CardFactory(column=information)
    client = logged_in(manager)

    page = client.get(reverse("boards:board", args=[stream.slug]), {"column": information.pk})

    shown = cards_by_column(page.content)
    assert shown[data_column.pk] == []
    assert len(shown[information.pk]) == 1
    assert b'class="column focused"' in page.content or b' focused"' in page.content
    assert f'name="column" value="{information.pk}"'.encode() in page.content
    whole = cards_by_column(client.get(reverse("boards:board", args=[stream.slug])).content)
    assert whole[data_column.pk] == [in_data.pk]


def test_the_board_marks_a_cycle_with_a_running_experiment(stream, member):
    from datetime import timedelta

    from pdca.models import ExperimentStage
    from tests.factories import ExperimentFactory

    sales = Cycle.objects.get(value_stream=stream, name=SALES)
    experiment = ExperimentFactory(
        cycle=sales,
        window_start=timezone.localdate() - timedelta(days=timezone.localdate().weekday()),
        stage=ExperimentStage.DO,
        started_at=timezone.now(),
        baseline=Decimal("3"),
        baseline_cards=20,
        baseline_weekly=[3, 3, 3, 3, 3, 3],
    )
    ExperimentFactory(cycle=Cycle.objects.get(value_stream=stream, order=1))  # a plan

    page = logged_in(member).get(reverse("boards:board", args=[stream.slug]))

    badges = [line for line in page.text.splitlines() if "experiment-badge" in line]
    assert len(badges) == 1
    assert "1 experiment running" in badges[0]
    assert f"/experiments/{experiment.pk}/" in badges[0]


def test_the_handoff_page_of_the_card_page_posts_plainly_and_returns_to_the_card(
    stream, manager, control_point
):
    card = new_card(stream, manager, column_name="Wisdom")
    sales_data = column_of(stream, SALES, "Data")
    client = logged_in(manager)
    url = handoff_url(stream, card)

    page = client.get(url, {"to_column": sales_data.pk}).content.decode()
    done = client.post(
        url,
        {
            "to_column": sales_data.pk,
            "version": card.version,
            "criteria": list(control_point.criteria.values_list("pk", flat=True)),
        },
    )

    # A page of its own: no htmx target that exists only in the board's dialog.
    assert "hx-post" not in page and 'hx-target="#dialog-body"' not in page
    assert f'href="{reverse("boards:card-detail", args=[stream.slug, card.pk])}">Cancel' in page
    assert done.status_code == 302
    assert done.url == reverse("boards:card-detail", args=[stream.slug, card.pk])
    assert Card.objects.get(pk=card.pk).column_id == sales_data.pk


def test_a_stale_edit_says_what_was_saved_meanwhile_on_each_field(stream, manager, member):
    card = new_card(stream, manager, estimated_value=1111)
    referral = ChannelFactory(value_stream=stream, name="Referral")
    card_update(
        card_id=card.pk,
        actor=as_actor(manager),
        person_name=card.person_name,
        company=card.company,
        email="",
        channel_id=referral.pk,
        owner_id=None,
        estimated_value=250000,
        notes="",
    )

    stale = logged_in(member).post(
        reverse("boards:card-edit", args=[stream.slug, card.pk]),
        {
            "person_name": card.person_name,
            "company": card.company,
            "estimated_value": "1111",
            "notes": "Called her back.",
            "version": card.version,
        },
    )

    page = stale.content.decode()
    assert stale.status_code == 409
    assert "Someone else changed this card meanwhile" in page
    assert "Saved meanwhile as “250,000.00”" in page
    assert "Saved meanwhile as “Referral”" in page
    assert "Called her back." in page  # what was typed is kept
    saved = Card.objects.get(pk=card.pk)
    assert (saved.estimated_value, saved.channel_id, saved.notes) == (250000, referral.pk, "")
