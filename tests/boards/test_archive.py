"""The archive: a stream's won and lost cards stay findable (filters, search, keyset
pages whose cost does not grow with the cards), each row links to its card, and a card
is reopened from there."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from boards.models import Card, Outcome
from boards.selectors import ArchiveCursor, ArchiveQuery, archive_page
from boards.services import card_close, card_reopen
from tests.factories import ChannelFactory, MembershipFactory, UserFactory
from tests.support import TEST_SYSTEM, as_actor, logged_in, new_card
from vsm.models import LostReason, ValueStream
from vsm.services import lost_reason_create

pytestmark = pytest.mark.django_db


def archive_url(stream: ValueStream) -> str:
    return reverse("boards:archive", args=[stream.slug])


def close(card: Card, outcome: Outcome, *, at: datetime | None = None, **why) -> Card:
    return card_close(card_id=card.pk, outcome=outcome, actor=TEST_SYSTEM, at=at, **why).card


def listed(response) -> list[int]:
    """The ids of the cards the archive page lists, in its order."""
    return [row.card.pk for row in response.context["page"].rows]


@pytest.fixture
def deals(stream, manager, team):
    """Four closed deals and an open card: won by Referral, lost for a reason, lost
    with a note only, and one closed long ago."""
    referral = ChannelFactory(value_stream=stream, name="Referral")
    web = ChannelFactory(value_stream=stream, name="Web form")
    cleo = MembershipFactory(team=team, user=UserFactory(first_name="Cleo")).user
    budget = lost_reason_create(stream_id=stream.pk, name="No budget", actor=TEST_SYSTEM)
    now = timezone.now()
    won = new_card(
        stream,
        manager,
        person_name="Ada Keller",
        company="Nordwerk Pumps",
        email="ada@nordwerk.example",
        channel_id=referral.pk,
        owner_id=cleo.pk,
        estimated_value=Decimal("12000"),
    )
    lost = new_card(
        stream, manager, person_name="Bo Berg", company="Baltic Castings", channel_id=web.pk
    )
    noted = new_card(stream, manager, person_name="", company="Falun Forge", channel_id=web.pk)
    old = new_card(stream, manager, person_name="Olga Novak", company="Lumen Optics")
    open_card = new_card(stream, manager, person_name="Still Open", company="Ostara Plastics")
    return {
        "won": close(won, Outcome.WON, at=now - timedelta(hours=1)),
        "lost": close(lost, Outcome.LOST, at=now - timedelta(hours=2), lost_reason_id=budget.pk),
        "noted": close(noted, Outcome.LOST, at=now - timedelta(hours=3), lost_note="Acquired."),
        "old": close(old, Outcome.WON, at=now - timedelta(days=40)),
        "open": open_card,
        "referral": referral,
        "cleo": cleo,
        "budget": budget,
    }


def test_the_archive_lists_closed_deals_newest_first_each_linking_to_its_card(
    stream, member, deals
):
    response = logged_in(member).get(archive_url(stream))

    assert response.status_code == 200
    assert listed(response) == [deals[key].pk for key in ("won", "lost", "noted", "old")]
    page = response.content.decode()
    for key in ("won", "lost", "noted", "old"):
        assert f'href="{reverse("boards:card-detail", args=[stream.slug, deals[key].pk])}"' in page
    assert "Still Open" not in page
    assert "<strong>No budget</strong>" in page and "<q>Acquired.</q>" in page
    assert "4 closed deals." in page


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"outcome": "won"}, ["won", "old"]),
        ({"outcome": "lost"}, ["lost", "noted"]),
        ({"channel": "@referral"}, ["won"]),
        ({"owner": "@cleo"}, ["won"]),
        ({"lost_reason": "@budget"}, ["lost"]),
        ({"q": "nordwerk"}, ["won"]),
        ({"q": "ADA@"}, ["won"]),
        ({"q": "berg"}, ["lost"]),
        ({"closed_from": "days:-1"}, ["won", "lost", "noted"]),
        ({"closed_to": "days:-30"}, ["old"]),
        ({"closed_from": "days:-41", "closed_to": "days:-39"}, ["old"]),
        ({"outcome": "won", "lost_reason": "@budget"}, []),
    ],
)
def test_the_archive_filters(stream, member, deals, params, expected):
    today = timezone.localdate()
    query = {}
    for name, value in params.items():
        if value.startswith("@"):  # a row of the deals'
            value = deals[value[1:]].pk
        elif value.startswith("days:"):  # a day from today
            value = (today + timedelta(days=int(value[5:]))).isoformat()
        query[name] = value

    response = logged_in(member).get(archive_url(stream), query)

    assert response.status_code == 200
    assert listed(response) == [deals[key].pk for key in expected]
    assert response.context["page"].total == len(expected)


@pytest.mark.parametrize(
    "query",
    [
        {"channel": "abc", "owner": "2" * 30, "closed_from": "2026-02-31", "older": "x"},
        {"older": "99999999999999999-1"},
        {"newer": "1-99999999999999999999"},
        {"closed_to": "9999-12-31", "closed_from": "0001-01-01", "q": "%_"},
    ],
)
def test_malformed_filters_are_ignored_never_a_500(stream, member, deals, query):
    response = logged_in(member).get(archive_url(stream), query)

    assert response.status_code == 200


def test_a_filter_of_another_stream_finds_nothing_of_it(stream, member, deals, manager):
    theirs = ChannelFactory(name="Theirs")

    response = logged_in(member).get(archive_url(stream), {"channel": theirs.pk})

    assert listed(response) == []


def test_an_outsider_gets_not_found(stream, deals):
    assert logged_in(UserFactory()).get(archive_url(stream)).status_code == 404


def test_the_stream_pages_link_to_the_archive(stream, member):
    board = logged_in(member).get(reverse("boards:board", args=[stream.slug]))
    archive = logged_in(member).get(archive_url(stream))

    assert f'href="{archive_url(stream)}"'.encode() in board.content
    assert f'<a href="{archive_url(stream)}" aria-current="page">Archive</a>'.encode() in (
        archive.content
    )


# --- pages -----------------------------------------------------------------------


def closed_cards(stream, manager, count: int, *, start: datetime) -> list[Card]:
    """``count`` cards closed a minute apart, the last one newest; two share a moment."""
    cards = []
    for n in range(count):
        card = new_card(stream, manager, person_name=f"Deal {n}")
        at = start + timedelta(minutes=n if n != 1 else 0)  # deals 0 and 1 tie
        cards.append(close(card, Outcome.WON if n % 2 else Outcome.LOST, at=at))
    return cards


def test_keyset_pages_cover_every_card_once_in_order_both_ways(stream, manager):
    cards = closed_cards(stream, manager, 7, start=timezone.now() - timedelta(hours=1))
    newest_first = [card.pk for card in sorted(cards, key=lambda c: (c.closed_at, c.pk))][::-1]

    seen, query, pages = [], ArchiveQuery(stream=stream), []
    while True:
        page = archive_page(query, size=3)
        pages.append(page)
        seen += [row.card.pk for row in page.rows]
        if page.older is None:
            break
        query = ArchiveQuery(stream=stream, older_than=page.older)
    back = archive_page(ArchiveQuery(stream=stream, newer_than=pages[-1].newer), size=3)

    assert seen == newest_first
    assert [len(page.rows) for page in pages] == [3, 3, 1]
    assert pages[0].newer is None and pages[1].newer is not None
    assert [row.card.pk for row in back.rows] == newest_first[3:6]
    assert back.newer is not None and back.older is not None


def test_a_card_closed_meanwhile_does_not_shift_the_next_page(stream, manager):
    cards = closed_cards(stream, manager, 6, start=timezone.now() - timedelta(hours=1))
    first = archive_page(ArchiveQuery(stream=stream), size=3)
    close(new_card(stream, manager, person_name="Late deal"), Outcome.WON)
    card_reopen(card_id=first.rows[0].card.pk, actor=TEST_SYSTEM)

    second = archive_page(ArchiveQuery(stream=stream, older_than=first.older), size=3)

    shown_first = [row.card.pk for row in first.rows]
    assert [row.card.pk for row in second.rows] == [
        card.pk for card in sorted(cards, key=lambda c: (c.closed_at, c.pk), reverse=True)
    ][3:]
    assert not set(shown_first) & {row.card.pk for row in second.rows}


def test_the_cursor_round_trips_through_its_token():
    cursor = ArchiveCursor(timezone.now().replace(microsecond=123456), 42)

    assert ArchiveCursor.parse(cursor.token) == cursor
    assert ArchiveCursor.parse("nonsense") is None
    assert ArchiveCursor.parse(f"1-{2**63}") is None


def test_the_pages_link_older_and_newer_keeping_the_filters(stream, manager, member):
    closed_cards(stream, manager, 30, start=timezone.now() - timedelta(hours=2))
    client = logged_in(member)

    first = client.get(archive_url(stream), {"q": "deal"})
    older = first.context["page"].older
    second = client.get(archive_url(stream), {"q": "deal", "older": older.token})
    newer = second.context["page"].newer

    assert f"?q=deal&amp;older={older.token}".encode() in first.content
    assert b"Newer" not in first.content
    assert (len(listed(first)), len(listed(second))) == (25, 5)
    assert second.context["page"].older is None
    assert f"?q=deal&amp;newer={newer.token}".encode() in second.content
    assert (
        client.get(archive_url(stream), {"q": "deal", "newer": newer.token}).context["page"].rows
        == first.context["page"].rows
    )


def test_a_page_reads_the_same_few_queries_whatever_the_number_of_cards(
    stream, manager, member, django_assert_max_num_queries
):
    budget = lost_reason_create(stream_id=stream.pk, name="No budget", actor=TEST_SYSTEM)
    start = timezone.now() - timedelta(days=2)

    def add(count: int, offset: int) -> None:
        for n in range(count):
            card = new_card(
                stream,
                manager,
                person_name=f"Deal {offset + n}",
                channel_id=ChannelFactory(value_stream=stream).pk,
                owner_id=manager.pk,
            )
            at = start + timedelta(minutes=offset + n)
            close(card, Outcome.LOST, at=at, lost_reason_id=budget.pk, lost_note="Froze it")

    client = logged_in(member)
    add(5, 0)
    client.get(archive_url(stream))  # the session and the stream's rows warm
    with django_assert_max_num_queries(100) as few:
        small = client.get(archive_url(stream), {"q": "deal"})
    add(40, 5)
    with django_assert_max_num_queries(len(few.captured_queries)):
        big = client.get(archive_url(stream), {"q": "deal"})
    with django_assert_max_num_queries(len(few.captured_queries) + 1):  # + the newer probe
        client.get(archive_url(stream), {"older": big.context["page"].older.token})

    assert len(listed(small)) == 5 and len(listed(big)) == 25
    assert big.context["page"].total == 45


# --- reopening from the archive --------------------------------------------------------


def test_reopen_from_the_archive_comes_back_to_it(stream, member, deals):
    client = logged_in(member)
    here = f"{archive_url(stream)}?outcome=lost"
    card = deals["lost"]

    response = client.post(
        reverse("boards:card-reopen", args=[stream.slug, card.pk]),
        {"version": card.version, "next": here},
        follow=True,
    )

    assert response.redirect_chain == [(here, 302)]
    assert f"Reopened: {card} is open again".encode() in response.content
    assert listed(response) == [deals["noted"].pk]
    assert Card.objects.get(pk=card.pk).outcome == Outcome.OPEN


def test_a_refused_reopen_comes_back_to_the_archive_with_why(stream, member, deals):
    card = deals["old"]
    stale = card.version
    card_reopen(card_id=card.pk, actor=as_actor(member))
    close(Card.objects.get(pk=card.pk), Outcome.WON)
    here = archive_url(stream)

    response = logged_in(member).post(
        reverse("boards:card-reopen", args=[stream.slug, card.pk]),
        {"version": stale, "next": here},
    )

    assert (response.status_code, response["Location"]) == (303, here)
    assert Card.objects.get(pk=card.pk).outcome == Outcome.WON


def test_lost_reasons_no_longer_offered_still_filter_the_archive(stream, member, deals):
    LostReason.objects.filter(pk=deals["budget"].pk).update(is_active=False)

    response = logged_in(member).get(archive_url(stream), {"lost_reason": deals["budget"].pk})

    assert listed(response) == [deals["lost"].pk]
    assert "No budget (no longer offered)" in response.content.decode()


# --- found walking the archive ----------------------------------------------------------


def test_days_typed_the_wrong_way_round_are_read_the_right_way_and_said(stream, member, deals):
    today = timezone.localdate()
    first, last = today - timedelta(days=41), today - timedelta(days=39)

    response = logged_in(member).get(
        archive_url(stream), {"closed_from": last.isoformat(), "closed_to": first.isoformat()}
    )

    assert listed(response) == [deals["old"].pk]  # not "0 closed deals" without a word
    page = response.content.decode()
    assert "The first day was after the last: read the other way round" in page
    assert f'name="closed_from" value="{first.isoformat()}"' in page
    assert f'name="closed_to" value="{last.isoformat()}"' in page


def test_the_last_day_is_named_for_a_screen_reader(stream, member, deals):
    page = logged_in(member).get(archive_url(stream)).content.decode()

    assert '<label><span class="visually-hidden">Closed </span>to <input type="date"' in page


def test_a_reopen_from_the_archive_links_to_the_card_it_took_out_of_it(stream, member, deals):
    card = deals["lost"]
    card_url = reverse("boards:card-detail", args=[stream.slug, card.pk])

    response = logged_in(member).post(
        reverse("boards:card-reopen", args=[stream.slug, card.pk]),
        {"version": card.version, "next": archive_url(stream)},
        follow=True,
    )

    assert f'is open again, in Collaboration / Data. <a href="{card_url}">Open its card</a>' in (
        response.content.decode()
    )


def test_a_closed_cards_page_leads_back_to_the_archive_and_says_when_it_closed(
    stream, member, deals
):
    card = deals["old"]

    page = (
        logged_in(member)
        .get(reverse("boards:card-detail", args=[stream.slug, card.pk]))
        .content.decode()
    )

    assert f'<a href="{archive_url(stream)}">Archive</a>' in page
    assert "Collaboration / Data</strong> since <time" in page
    assert f"{timezone.localtime(card.closed_at):%-d %b %Y}</time>" in page
