"""The board's answers behind issue 12: money in the heads and on the cards, "my cards",
the "Move to..." dialog's full columns, a keyset "show more", refreshes that keep
what the client shows, and the small things that erode trust.

Browser-level behaviour of the same items: tests/boards/test_board_e2e.py.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from boards.models import Card, CardMove, Column, Outcome
from boards.selectors import COLUMN_PAGE_SIZE, COLUMN_SHOWN_MAX, board_get
from boards.services import card_move
from boards.templatetags.board_tags import money
from pdca.models import Cycle
from tests.boards.test_views import HTMX, client_events, move_url, poll
from tests.factories import CardFactory, UserFactory
from tests.pages import cards_by_column, element, has_element
from tests.support import COLLABORATION, as_actor, column_of, fill, logged_in, new_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def full_wisdom(stream) -> Column:
    """Collaboration / Wisdom at its WIP limit of 5."""
    wisdom = column_of(stream, COLLABORATION, "Wisdom")
    fill(wisdom, 5)
    return wisdom


def board_page(client, stream, **params):
    return client.get(reverse("boards:board", args=[stream.slug]), params)


def more_url(stream, column: Column) -> str:
    return reverse("boards:column-more", args=[stream.slug, column.pk])


def after(card: Card) -> dict[str, int]:
    card.refresh_from_db()
    return {"after_position": card.position, "after_id": card.pk}


# 5. Money.


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (Decimal("12500.00"), "", "12,500"),
        (Decimal("1250.50"), "", "1,250.50"),
        (Decimal("1234567"), "EUR", "EUR 1,234,567"),
        (Decimal("0.00"), "", ""),
        (None, "", ""),
    ],
)
def test_money_reads_as_a_sales_user_expects(amount, currency, shown):
    assert money(amount, currency) == shown


def test_the_board_shows_open_value_per_card_column_and_cycle(stream, manager):
    data_column = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    valued = CardFactory(column=data_column, estimated_value=Decimal("12500"))
    CardFactory(column=data_column, estimated_value=Decimal("2500.50"))
    CardFactory(column=information, estimated_value=Decimal("40000"))
    CardFactory(
        column=information,
        estimated_value=Decimal("99999"),
        outcome=Outcome.WON,
        closed_at=timezone.now(),
    )
    unvalued = CardFactory(column=information)

    page = board_page(logged_in(manager), stream)

    html = page.content.decode()
    head = html[html.index(f'id="column-head-{data_column.pk}"') :]
    assert '<span class="open-value" title="Estimated value of the open cards">15,000.50' in head
    head = html[html.index(f'id="column-head-{information.pk}"') :]
    assert "40,000</span>" in head[: head.index("</header>")]
    cycle = html[html.index('id="cycle-section-') :]
    assert "55,000.50</span>" in cycle[: cycle.index("</header>")]
    card = html[html.index(f'id="card-{valued.pk}"') :]
    assert (
        '<span class="value" title="Estimated value">12,500</span>' in card[: card.index("</li>")]
    )
    card = html[html.index(f'id="card-{unvalued.pk}"') :]
    assert 'class="value"' not in card[: card.index("</li>")]


def test_open_values_are_summed_per_column_and_cycle(stream):
    data_column = column_of(stream, COLLABORATION, "Data")
    fill(data_column, 3)
    Card.objects.update(estimated_value=Decimal("100"))

    board = board_get(stream=stream)

    views = {view.column.pk: view for view in board.column_views}
    assert views[data_column.pk].open_value == Decimal("300")
    assert board.cycles[0].open_value == Decimal("300")
    assert board.cycles[0].open_count == 3


def test_a_drag_answers_the_heads_with_their_open_values(stream, manager):
    card = new_card(stream, manager, estimated_value=Decimal("7000"))
    new_card(stream, manager, person_name="Bo Berg", estimated_value=Decimal("500"))
    information = column_of(stream, COLLABORATION, "Information")

    response = logged_in(manager).post(
        move_url(stream, card),
        {"to_column": information.pk, "version": card.version, "dragged": "1"},
        headers=HTMX,
    )

    html = response.content.decode()
    data_head = html[html.index("column-head-") :]
    assert ">500</span>" in data_head[: data_head.index("</header>")]
    head = html[html.index(f'id="column-head-{information.pk}"') :]
    assert ">7,000</span>" in head[: head.index("</header>")]
    # The jump bar's counts follow too.
    assert element(response.content, f"jump-{information.pk}")["hx-swap-oob"] == "outerHTML"


# 7. "My cards".


def test_my_cards_shows_the_viewers_own_and_travels_in_the_url(stream, manager, member):
    data_column = column_of(stream, COLLABORATION, "Data")
    mine = CardFactory(column=data_column, owner=member)
    CardFactory(column=data_column, owner=manager)
    CardFactory(column=data_column)

    page = board_page(logged_in(member), stream, mine="1", owner=manager.pk)
    theirs = board_page(logged_in(manager), stream, mine="1")

    assert cards_by_column(page.content)[data_column.pk] == [mine.pk]
    assert b'name="mine" value="1" checked' in page.content
    assert page.context["filters"].querystring() == "mine=1"
    assert len(cards_by_column(theirs.content)[data_column.pk]) == 1
    assert cards_by_column(theirs.content)[data_column.pk] != [mine.pk]


def test_show_more_keeps_my_cards(stream, member):
    data_column = column_of(stream, COLLABORATION, "Data")
    own = [CardFactory(column=data_column, owner=member) for _ in range(COLUMN_PAGE_SIZE + 2)]
    CardFactory(column=data_column)  # someone else's, last

    more = logged_in(member).get(
        more_url(stream, data_column), {"mine": "1", **after(own[COLUMN_PAGE_SIZE - 1])}
    )

    assert cards_by_column(more.content)[0] == [card.pk for card in own[COLUMN_PAGE_SIZE:]]


# 10. "Show more" by a keyset; refreshes keep what the client shows.


def test_show_more_skips_no_card_when_one_above_moved_meanwhile(stream, manager):
    data_column = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    cards = fill(data_column, COLUMN_PAGE_SIZE + 5)
    client = logged_in(manager)
    page = board_page(client, stream)
    assert f"after_id={cards[COLUMN_PAGE_SIZE - 1].pk}".encode() in page.content

    # A card of the first page leaves the column before "Show more" is pressed.
    card_move(card_id=cards[2].pk, to_column_id=information.pk, actor=as_actor(manager))
    more = client.get(more_url(stream, data_column), after(cards[COLUMN_PAGE_SIZE - 1]))

    # An offset of 25 would now start at the 27th card and skip the 26th.
    assert cards_by_column(more.content)[0] == [card.pk for card in cards[COLUMN_PAGE_SIZE:]]
    assert b"Show more" not in more.content


def test_show_more_with_a_malformed_cursor_starts_from_the_top(stream, manager):
    data_column = column_of(stream, COLLABORATION, "Data")
    cards = fill(data_column, 3)

    for params in ({"after_position": "x", "after_id": "1"}, {"after_id": "5"}, {}):
        more = logged_in(manager).get(more_url(stream, data_column), params)
        assert cards_by_column(more.content)[0] == [card.pk for card in cards], params


def test_a_refresh_shows_as_many_cards_as_the_client_does(stream, manager):
    data_column = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    cards = fill(data_column, COLUMN_PAGE_SIZE + 10)
    other = new_card(stream, manager, column_name="Knowledge")
    client = logged_in(manager)
    # A version the server cannot read (an old client's): the whole board comes back.
    seen = "old"
    card_move(card_id=other.pk, to_column_id=information.pk, actor=as_actor(manager))

    shown = client.get(
        reverse("boards:board-poll", args=[stream.slug]),
        {"version": seen, "shown": f"{data_column.pk}:{COLUMN_PAGE_SIZE + 10},junk,:,9x:1"},
        headers=HTMX,
    )
    plain = poll(client, stream, seen)

    assert cards_by_column(shown.content)[data_column.pk] == [card.pk for card in cards]
    assert len(cards_by_column(plain.content)[data_column.pk]) == COLUMN_PAGE_SIZE


def test_a_refresh_asked_for_too_many_cards_shows_at_most_the_cap(stream, manager):
    data_column = column_of(stream, COLLABORATION, "Data")
    fill(data_column, COLUMN_PAGE_SIZE + 1)

    board = board_get(stream=stream, shown={data_column.pk: 10**12})
    assert len(board.column_views[0].cards) == COLUMN_PAGE_SIZE + 1
    assert COLUMN_SHOWN_MAX < 10**12


def test_a_refresh_of_a_long_column_costs_no_more_queries(
    stream, manager, django_assert_max_num_queries
):
    data_column = column_of(stream, COLLABORATION, "Data")
    fill(data_column, COLUMN_PAGE_SIZE + 10)
    client = logged_in(manager)
    board_page(client, stream)
    with django_assert_max_num_queries(50) as plain:
        poll(client, stream, "old")
    with django_assert_max_num_queries(len(plain.captured_queries)):
        client.get(
            reverse("boards:board-poll", args=[stream.slug]),
            {"version": "old", "shown": f"{data_column.pk}:{COLUMN_PAGE_SIZE + 10}"},
            headers=HTMX,
        )


def test_a_new_prospect_past_the_first_page_is_in_the_answer(stream, member):
    data_column = column_of(stream, COLLABORATION, "Data")
    fill(data_column, COLUMN_PAGE_SIZE + 5)
    collaboration = Cycle.objects.get(value_stream=stream, name=COLLABORATION)

    response = logged_in(member).post(
        reverse("boards:card-create", args=[stream.slug]),
        {"cycle": collaboration.pk, "company": "Tyne Gears"},
        headers=HTMX,
    )

    card = Card.objects.get(company="Tyne Gears")
    assert cards_by_column(response.content)[data_column.pk][-1] == card.pk
    assert f'"vsm:card-added": {{"card_id": {card.pk}}}' in client_events(response)


def test_a_keyboard_move_into_a_long_column_shows_the_card(stream, manager):
    information = column_of(stream, COLLABORATION, "Information")
    information.wip_limit = None
    information.save()
    fill(information, COLUMN_PAGE_SIZE + 5)
    card = new_card(stream, manager)

    response = logged_in(manager).post(
        move_url(stream, card), {"to_column": information.pk, "version": card.version}, headers=HTMX
    )

    assert cards_by_column(response.content)[information.pk][-1] == card.pk


# 8. The keyboard's "Move to...".


def move_menu(client, stream, card):
    return client.get(reverse("boards:card-move-menu", args=[stream.slug, card.pk]), headers=HTMX)


def test_the_move_dialog_marks_full_columns_and_offers_the_override_to_managers(
    stream, manager, member, full_wisdom
):
    card = new_card(stream, manager, column_name="Knowledge")

    for who, offered in ((manager, True), (member, False)):
        html = move_menu(logged_in(who), stream, card).content.decode()
        assert 'Wisdom <span class="full-note">full, 5/5</span>' in html
        assert ("Move anyway" in html) is offered
        assert ('name="override_reason"' in html) is offered
        assert '<button type="submit" class="button">Information</button>' in html
        assert "Knowledge (here)" in html


def test_a_refused_move_closes_the_dialog_it_came_from(stream, manager, member):
    card = new_card(stream, manager)
    information = column_of(stream, COLLABORATION, "Information")
    card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))

    response = logged_in(member).post(
        move_url(stream, card),
        {"to_column": column_of(stream, COLLABORATION, "Knowledge").pk, "version": card.version},
        headers=HTMX,
    )

    assert b"changed this card meanwhile" in response.content
    assert "vsm:close-dialog" in client_events(response)


# 10. Small things that erode trust.


def test_the_wip_override_on_new_prospect_is_offered_only_to_those_who_may_use_it(
    stream, manager, member
):
    url = reverse("boards:card-create", args=[stream.slug])

    for who, offered in ((manager, True), (member, False)):
        form = logged_in(who).get(url, headers=HTMX).content
        assert (b'name="override_reason"' in form) is offered


def test_a_member_posting_an_override_on_new_prospect_is_still_refused(stream, manager, member):
    data_column = column_of(stream, COLLABORATION, "Data")
    data_column.wip_limit = 1
    data_column.save()
    fill(data_column, 1)
    collaboration = Cycle.objects.get(value_stream=stream, name=COLLABORATION)

    response = logged_in(member).post(
        reverse("boards:card-create", args=[stream.slug]),
        {"cycle": collaboration.pk, "company": "Tyne Gears", "override_reason": "please"},
        headers=HTMX,
    )

    assert b"Data is at its WIP limit, 1/1" in response.content
    assert not Card.objects.filter(company="Tyne Gears").exists()


def test_move_anyway_twice_moves_once_and_says_so(stream, manager, full_wisdom):
    card = new_card(stream, manager, column_name="Knowledge")
    client = logged_in(manager)
    override = {"to_column": full_wisdom.pk, "override_reason": "Buyer signs this week"}

    first = client.post(move_url(stream, card), override, headers=HTMX)
    card.refresh_from_db()
    moves = CardMove.objects.filter(card=card).count()
    again = client.post(move_url(stream, card), override, headers=HTMX)

    assert b"Moved over the WIP limit of Wisdom" in first.content
    assert b"is already in Wisdom; nothing moved." in again.content
    assert b"Moved over" not in again.content
    assert CardMove.objects.filter(card=card).count() == moves
    after_repeat = Card.objects.get(pk=card.pk)
    assert (after_repeat.position, after_repeat.version) == (card.position, card.version)


def test_a_column_head_names_the_level_only_when_the_name_does_not(stream, manager):
    data_column = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    information.name = "Qualified"
    information.save()

    html = board_page(logged_in(manager), stream).content.decode()

    data_head = html[html.index(f'id="column-head-{data_column.pk}"') :]
    data_head = data_head[: data_head.index("</header>")]
    assert 'class="level' not in data_head
    head = html[html.index(f'id="column-head-{information.pk}"') :]
    head = head[: head.index("</header>")]
    assert '<span class="level level-information">Information</span>' in head


def test_the_board_is_never_kept_by_the_browser(stream, manager):
    """Back and Forward fetch the board again rather than show a stale copy."""
    client = logged_in(manager)

    page = board_page(client, stream)
    polled = poll(client, stream, "old")

    for response in (page, polled):
        assert "no-store" in response["Cache-Control"]


def test_the_board_names_whose_choices_it_remembers(stream, manager, member):
    """The board names whose and which stream's choices (collapsed cycles, density) apply."""
    mine = element(board_page(logged_in(member), stream).content, "board")["data-prefs"]
    theirs = element(board_page(logged_in(manager), stream).content, "board")["data-prefs"]

    assert mine == f"vsm.board.{member.pk}.{stream.pk}"
    assert theirs == f"vsm.board.{manager.pk}.{stream.pk}"
    assert not has_element(board_page(logged_in(UserFactory()), stream).content, "board")


# After the tryout: an empty "My cards", long names in toasts, the stream named twice.

MINE_EMPTY = "You own no open cards in this stream."
NOTHING_MATCHES = "No open cards match these filters."


def test_filters_that_hide_every_card_say_so_and_offer_to_clear_them(stream, manager, member):
    CardFactory(column=column_of(stream, COLLABORATION, "Data"), owner=manager, company="Tyne")
    client = logged_in(member)
    board_url = reverse("boards:board", args=[stream.slug])
    polled_mine = client.get(
        reverse("boards:board-poll", args=[stream.slug]), {"version": "old", "mine": "1"}
    )

    for response in (board_page(client, stream, mine="1"), polled_mine):
        note = response.content.decode()
        assert MINE_EMPTY in note
        assert f'<a href="{board_url}">Show everyone&rsquo;s cards</a>' in note
    for params in ({"q": "nobody"}, {"mine": "1", "blocked": "1"}):
        note = board_page(client, stream, **params).content.decode()
        assert NOTHING_MATCHES in note
        assert f'<a href="{board_url}">Clear the filters</a>' in note
        assert MINE_EMPTY not in note
    for params, who in (({}, member), ({"mine": "1"}, manager), ({"q": "tyne"}, member)):
        shown = board_page(logged_in(who), stream, **params).content.decode()
        assert MINE_EMPTY not in shown and NOTHING_MATCHES not in shown


def toast_text(html: str) -> str:
    toast = html[html.index('class="toast ') :]
    return toast[toast.index("<p") : toast.index("</p>")]


def test_a_new_prospects_toast_names_a_long_name_short(stream, member):
    company = "Nordwerk" + "Pumpen" * 32  # 200 characters, no space to wrap at
    collaboration = Cycle.objects.get(value_stream=stream, name=COLLABORATION)

    response = logged_in(member).post(
        reverse("boards:card-create", args=[stream.slug]),
        {"cycle": collaboration.pk, "company": company},
        headers=HTMX,
    )

    toast = toast_text(response.content.decode())
    assert company not in toast
    assert f">{company[:59]}… entered {COLLABORATION}." in toast
    assert Card.objects.get(company=company).column.cycle == collaboration


def test_a_long_toast_shows_its_start_and_keeps_the_whole_in_its_title(stream):
    message = "Refused: " + "a very long reason " * 15
    short = "Nordwerk Pumps moved."

    long_toast = render_to_string("boards/partials/toast.html", {"message": message})
    short_toast = render_to_string("boards/partials/toast.html", {"message": short})

    assert f'<p title="{message}">{message[:159]}…</p>' in long_toast
    assert f"<p>{short}</p>" in short_toast


def test_new_prospect_names_the_cycles_without_the_stream(stream, member):
    """The dialog's heading names the stream; its cycle list need not, again and again."""
    form = (
        logged_in(member)
        .get(reverse("boards:card-create", args=[stream.slug]), headers=HTMX)
        .content.decode()
    )

    assert f"New prospect in {stream.name}" in form
    for cycle in Cycle.objects.filter(value_stream=stream):
        assert f'<option value="{cycle.pk}"' in form
        assert f">{cycle.name}</option>" in form
    assert form.count(stream.name) == 1
