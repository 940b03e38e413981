"""A card's history: comments, edits and blocking beside the move log, one timeline.

The services write the entries (``card_comment_add``, and ``card_update`` and
``card_set_blocked`` as they change a card); ``card_timeline`` reads them with the moves,
newest first, a page at a time, in a number of queries that does not grow with the
history; the card page shows them and takes comments.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from boards.demo import STREAMS, _StreamSimulation
from boards.errors import CardNotFound
from boards.forms import CardForm, CommentForm
from boards.models import (
    COMMENT_MAX_LENGTH,
    ActivityKind,
    Card,
    CardActivity,
    CardLoss,
    MoveKind,
    Outcome,
)
from boards.selectors import (
    TIMELINE_PAGE_SIZE,
    TimelineCursor,
    card_timeline,
)
from boards.services import (
    card_close,
    card_comment_add,
    card_move,
    card_reopen,
    card_set_blocked,
    card_update,
    handoff_pass,
)
from boards.services.activity import FIELD_LABELS
from pdca.models import ControlPoint
from tests.factories import CardMoveFactory, ChannelFactory
from tests.support import (
    COLLABORATION,
    TEST_SYSTEM,
    as_actor,
    column_of,
    logged_in,
    new_card,
)
from vsm.actors import ActorKind, TokenActor, actor_fields
from vsm.errors import InvalidInput
from vsm.models import AuditEntry, LostReason, Membership, Role

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def card_url(card: Card) -> str:
    return reverse("boards:card-detail", args=[card.value_stream.slug, card.pk])


def comment_url(card: Card) -> str:
    return reverse("boards:card-comment", args=[card.value_stream.slug, card.pk])


def edit(card: Card, actor, **changes):
    """card_update with the card's current facts, but for ``changes``."""
    card.refresh_from_db()
    facts = {
        "person_name": card.person_name,
        "company": card.company,
        "email": card.email,
        "channel_id": card.channel_id,
        "owner_id": card.owner_id,
        "estimated_value": card.estimated_value,
        "notes": card.notes,
    }
    return card_update(card_id=card.pk, actor=as_actor(actor), **(facts | changes))


def activities(card: Card) -> list[CardActivity]:
    return list(CardActivity.objects.filter(card=card).order_by("at", "id"))


# Comments ----------------------------------------------------------------------------


def test_a_member_comments_on_a_card(stream, manager, member, announced):
    card = new_card(stream, manager)
    version = card.version

    with announced() as sent:
        comment = card_comment_add(
            card_id=card.pk,
            text="  Budget owner is the CFO.\r\nCall her in May.  ",
            actor=as_actor(member),
        )

    row = CardActivity.objects.get(pk=comment.pk)
    assert (row.kind, row.card_id, row.value_stream_id) == (
        ActivityKind.COMMENT,
        card.pk,
        stream.pk,
    )
    assert row.text == "Budget owner is the CFO.\nCall her in May."
    assert (row.actor_kind, row.actor_id) == (ActorKind.USER, member.pk)
    # A comment changes nothing of the card: an edit open elsewhere is not made stale,
    # and the board and the metrics have nothing to refresh.
    assert Card.objects.get(pk=card.pk).version == version
    assert sent == []
    audit = AuditEntry.objects.get(action="card.commented")
    assert (audit.stream_id, audit.target_type, audit.target_id) == (stream.pk, "card", card.pk)
    assert audit.data == {"activity_id": row.pk, "length": len(row.text)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Write something to comment."),
        (" \r\n\t ", "Write something to comment."),
        ("x" * (COMMENT_MAX_LENGTH + 1), "Keep a comment to 5,000 characters; this one has 5,001."),
    ],
)
def test_an_empty_or_too_long_comment_is_refused(stream, manager, member, text, message):
    card = new_card(stream, manager)

    with pytest.raises(InvalidInput) as refused:
        card_comment_add(card_id=card.pk, text=text, actor=as_actor(member))

    assert (refused.value.message, refused.value.field) == (message, "text")
    assert not CardActivity.objects.exists()
    assert not AuditEntry.objects.filter(action="card.commented").exists()


def test_a_comment_may_be_as_long_as_the_limit(stream, manager, member):
    card = new_card(stream, manager)

    comment = card_comment_add(
        card_id=card.pk, text="x" * COMMENT_MAX_LENGTH, actor=as_actor(member)
    )

    assert len(comment.text) == COMMENT_MAX_LENGTH


def test_who_may_comment_is_who_may_see_the_stream(stream, other_stream, manager, member, user):
    card = new_card(stream, manager)
    own_token = TokenActor(token_id=3, stream_id=stream.pk)
    other_token = TokenActor(token_id=4, stream_id=other_stream.pk)

    for outsider in (as_actor(user), other_token, as_actor(other_stream.manager)):
        with pytest.raises(CardNotFound):
            card_comment_add(card_id=card.pk, text="Hello", actor=outsider)
    for insider in (as_actor(member), as_actor(manager), own_token, TEST_SYSTEM):
        comment = card_comment_add(card_id=card.pk, text="Hello", actor=insider)
        assert {k: getattr(comment, k) for k in actor_fields(insider)} == actor_fields(insider)

    assert CardActivity.objects.count() == 4


# Edits ---------------------------------------------------------------------------------


def test_the_card_form_shows_the_labels_an_edit_records():
    form = CardForm(channels=None, owners=None)
    shown = {name: str(form[name].label) for name in form.fields}

    assert {name.removesuffix("_id"): label for name, label in FIELD_LABELS.items()} == shown


def test_an_edit_records_only_what_changed_as_the_form_shows_it(stream, manager, member):
    old_channel = ChannelFactory(value_stream=stream, name="Trade show")
    new_channel = ChannelFactory(value_stream=stream, name="Referral")
    manager.first_name, manager.last_name = "Maria", "Manager"
    manager.save()
    card = new_card(
        stream,
        manager,
        company="Nordwerk",
        channel_id=old_channel.pk,
        owner_id=manager.pk,
        estimated_value=Decimal("12000"),
        notes="What: pricing.\nWhen: Q3.",
    )

    edit(
        card,
        member,
        company="Nordwerk Pumps GmbH",
        channel_id=new_channel.pk,
        owner_id=member.pk,
        estimated_value=Decimal("15500.50"),
        notes="What: pricing.\r\nWhen: Q3.",  # the same notes, as a browser posts them
    )

    (entry,) = activities(card)
    assert (entry.kind, entry.actor_id) == (ActivityKind.EDIT, member.pk)
    assert entry.changes == [
        {"field": "Company", "old": "Nordwerk", "new": "Nordwerk Pumps GmbH"},
        {"field": "Channel", "old": "Trade show", "new": "Referral"},
        {"field": "Owner", "old": "Maria Manager", "new": member.username},
        {"field": "Estimated value", "old": "12,000", "new": "15,500.50"},
    ]
    assert Card.objects.get(pk=card.pk).notes == "What: pricing.\nWhen: Q3."


def test_an_edit_that_changes_nothing_records_nothing(stream, manager):
    card = new_card(stream, manager, notes="Line one\nLine two")

    edit(card, manager, notes="Line one\r\nLine two")

    assert activities(card) == []


def test_clearing_a_field_records_it_as_empty(stream, manager):
    channel = ChannelFactory(value_stream=stream, name="Webinar")
    card = new_card(stream, manager, email="ada@nordwerk.example", channel_id=channel.pk)

    edit(card, manager, email="", channel_id=None)

    assert activities(card)[0].changes == [
        {"field": "E-mail", "old": "ada@nordwerk.example", "new": ""},
        {"field": "Channel", "old": "Webinar", "new": ""},
    ]


# Blocking ------------------------------------------------------------------------------


def test_blocking_and_unblocking_are_in_the_history_with_the_reason(stream, manager, member):
    card = new_card(stream, manager)

    card_set_blocked(card_id=card.pk, blocked=True, reason="Legal review", actor=as_actor(member))
    card_set_blocked(card_id=card.pk, blocked=True, reason="Legal review", actor=as_actor(member))
    card_set_blocked(card_id=card.pk, blocked=True, reason="Budget freeze", actor=as_actor(member))
    card_set_blocked(card_id=card.pk, blocked=False, actor=as_actor(manager))
    card_set_blocked(card_id=card.pk, blocked=False, actor=as_actor(manager))

    assert [(a.kind, a.text, a.actor_id) for a in activities(card)] == [
        (ActivityKind.BLOCKED, "Legal review", member.pk),
        # The same reason again changes nothing; a new reason is news.
        (ActivityKind.BLOCKED, "Budget freeze", member.pk),
        # Unblocked: with the reason it had; unblocking an unblocked card is no news.
        (ActivityKind.UNBLOCKED, "Budget freeze", manager.pk),
    ]


def test_a_refused_block_leaves_no_history(stream, manager, member):
    card = new_card(stream, manager)

    with pytest.raises(InvalidInput):
        card_set_blocked(card_id=card.pk, blocked=True, reason=" ", actor=as_actor(member))

    assert activities(card) == []


# The timeline --------------------------------------------------------------------------


@pytest.fixture
def rich_card(stream, manager, member):
    """A card with moves, a handoff, comments, an edit and a block, an hour apart, and
    two entries at one instant (a move and a comment), oldest first:
    enter, comment, move, edit, blocked, comment, handoff + comment (same instant)."""
    start = timezone.now() - timedelta(days=1)
    hour = timedelta(hours=1)
    actor = as_actor(member)
    card = new_card(stream, member, at=start)
    card_comment_add(card_id=card.pk, text="First call", actor=actor, at=start + hour)
    card_move(
        card_id=card.pk,
        to_column_id=column_of(stream, COLLABORATION, "Wisdom").pk,
        actor=actor,
        at=start + 2 * hour,
    )
    edit(card, member, company="Nordwerk Pumps GmbH", at=start + 3 * hour)
    card_set_blocked(
        card_id=card.pk, blocked=True, reason="Legal review", actor=actor, at=start + 4 * hour
    )
    card_comment_add(card_id=card.pk, text="Legal is done", actor=actor, at=start + 5 * hour)
    control_point = ControlPoint.objects.get(from_cycle__value_stream=stream, from_cycle__order=1)
    handoff_pass(
        card_id=card.pk,
        control_point_id=control_point.pk,
        criteria_met_ids=list(control_point.criteria.values_list("pk", flat=True)),
        actor=actor,
        at=start + 6 * hour,
    )
    card_comment_add(card_id=card.pk, text="Handed to sales", actor=actor, at=start + 6 * hour)
    return card


NEWEST_FIRST = [
    ActivityKind.COMMENT,  # at the handoff's instant: an activity sorts after the move
    MoveKind.HANDOFF,
    ActivityKind.COMMENT,
    ActivityKind.BLOCKED,
    ActivityKind.EDIT,
    MoveKind.MOVE,
    ActivityKind.COMMENT,
    MoveKind.ENTER,
]


def test_the_timeline_merges_moves_and_activity_newest_first(rich_card, member):
    timeline = card_timeline(card=rich_card)

    assert [entry.kind for entry in timeline.entries] == NEWEST_FIRST
    assert timeline.older is None and timeline.from_newest
    assert {entry.who for entry in timeline.entries} == {member.username}
    times = [entry.at for entry in timeline.entries]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8])
def test_the_timeline_pages_through_everything_once(rich_card, limit):
    seen, before, pages = [], None, 0
    while True:
        timeline = card_timeline(card=rich_card, before=before, limit=limit)
        pages += 1
        assert len(timeline.entries) <= limit
        seen += timeline.entries
        if timeline.older is None:
            break
        # The cursor survives the round trip through a URL.
        before = TimelineCursor.parse(str(timeline.older))
        assert not timeline.from_newest or pages == 1

    assert [entry.kind for entry in seen] == NEWEST_FIRST
    assert len({entry.cursor for entry in seen}) == len(NEWEST_FIRST)
    assert pages == -(-len(NEWEST_FIRST) // limit)


@pytest.mark.parametrize(
    "text", ["x", "1.2", "1.2.3.4", "1.5.3", "1.0.0", "1.0.-3", "9" * 30 + ".0.1"]
)
def test_a_cursor_that_is_not_one_is_refused(text):
    with pytest.raises(InvalidInput):
        TimelineCursor.parse(text)


def history_of(card: Card, *, comments: int) -> None:
    for n in range(comments):
        card_comment_add(card_id=card.pk, text=f"Note {n}", actor=TEST_SYSTEM)


def test_the_card_page_reads_its_history_in_the_same_queries_however_long(stream, manager, member):
    short, long = new_card(stream, manager), new_card(stream, manager)
    for card in (short, long):
        edit(card, manager, company="Nordwerk Pumps GmbH")
        card_set_blocked(card_id=card.pk, blocked=True, reason="Legal", actor=as_actor(manager))
    history_of(short, comments=1)
    history_of(long, comments=3 * TIMELINE_PAGE_SIZE)
    for n in range(3):
        card_move(
            card_id=long.pk,
            to_column_id=column_of(stream, COLLABORATION, ["Information", "Data"][n % 2]).pk,
            actor=as_actor(manager),
        )
    client = logged_in(member)
    urls = {"short": card_url(short), "long": card_url(long)}
    client.get(urls["short"])  # the session and the content types are warm

    queries = {}
    for name, url in urls.items():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        queries[name] = len(captured)

    assert queries["short"] == queries["long"]
    assert len(response.context["timeline"].entries) == TIMELINE_PAGE_SIZE
    assert response.content.count(b'class="entry entry-') == TIMELINE_PAGE_SIZE


# The card page -------------------------------------------------------------------------


def test_the_card_page_shows_who_changed_what_and_when(rich_card, member):
    member.first_name, member.last_name = "Ada", "Member"
    member.save()

    page = logged_in(member).get(card_url(rich_card)).content.decode()

    assert page.count("by Ada Member") == len(NEWEST_FIRST)
    order = [page.index(text) for text in ("Handed to sales", "Legal is done", "First call")]
    assert order == sorted(order)  # newest first
    assert 'Company:</span> <span class="change-old">Nordwerk Pumps</span>' in page
    assert '<span class="change-new">Nordwerk Pumps GmbH</span>' in page
    assert '<p class="entry-body block-reason">Legal review</p>' in page
    assert "Collaboration / Data &rarr; Collaboration / Wisdom" in page


def test_links_in_a_comment_are_links_and_markup_is_text(stream, manager, member):
    card = new_card(stream, manager)
    text = "<b>Signed</b> https://drive.example.com/nda?v=2&x=1\nNext: <script>x()</script>"
    card_comment_add(card_id=card.pk, text=text, actor=as_actor(member))

    page = logged_in(member).get(card_url(card)).content.decode()

    assert (
        '&lt;b&gt;Signed&lt;/b&gt; <a href="https://drive.example.com/nda?v=2&amp;x=1" '
        'rel="nofollow">https://drive.example.com/nda?v=2&amp;x=1</a><br>'
        "Next: &lt;script&gt;x()&lt;/script&gt;"
    ) in page


def test_a_lost_deal_in_the_history_says_why(stream, manager, member):
    """The close itself is the closing's (tests of card_close); the history shows it."""
    card = new_card(stream, manager, column_name="Knowledge")
    lost = CardMoveFactory(
        card=card, kind=MoveKind.LOST, from_column=card.column, to_column=card.column
    )
    reason = LostReason.objects.create(value_stream=stream, name="Chose a competitor")
    CardLoss.objects.create(move=lost, reason=reason, note="Went with the incumbent")

    page = logged_in(member).get(card_url(card)).content.decode()

    assert "Why: Chose a competitor · <q>Went with the incumbent</q>" in page


def test_a_comment_from_the_page_goes_back_to_the_history(stream, manager, member):
    card = new_card(stream, manager)

    response = logged_in(member).post(comment_url(card), {"text": "Wants a pilot"})

    assert response.status_code == 302
    assert response.url == f"{card_url(card)}#history"
    assert CardActivity.objects.get(card=card).text == "Wants a pilot"
    page = logged_in(member).get(response.url)
    assert b"Wants a pilot" in page.content


def test_a_comment_by_htmx_answers_the_history_with_an_empty_form(stream, manager, member):
    card = new_card(stream, manager)

    response = logged_in(member).post(comment_url(card), {"text": "Wants a pilot"}, headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="history"')
    assert "Wants a pilot</p>" in html
    assert "Wants a pilot</textarea>" not in html


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["plain", "htmx"])
def test_a_refused_comment_is_shown_on_its_field_keeping_the_text(stream, manager, member, headers):
    card = new_card(stream, manager)
    typed = "y" * (COMMENT_MAX_LENGTH + 2)

    response = logged_in(member).post(comment_url(card), {"text": typed}, headers=headers)

    assert response.status_code == (200 if headers else 400)
    html = response.content.decode()
    assert "Keep a comment to 5,000 characters; this one has 5,002." in html
    assert f">\n{typed}</textarea>" in html
    assert 'aria-invalid="true"' in html
    assert not CardActivity.objects.exists()


def test_the_comment_field_is_the_forms(stream, manager, member):
    page = logged_in(member).get(card_url(new_card(stream, manager)))

    assert str(CommentForm()["text"]) in page.content.decode()


def test_show_older_brings_the_next_page_of_the_history(stream, manager, member):
    card = new_card(stream, manager)
    history_of(card, comments=TIMELINE_PAGE_SIZE + 3)
    client = logged_in(member)

    first = client.get(card_url(card))
    older = first.context["timeline"].older
    fragment = client.get(card_url(card), {"older": str(older)}, headers=HTMX)
    page = client.get(card_url(card), {"older": str(older)})

    assert b"Show older" in first.content
    # For htmx, the older entries alone, to put in place of the button.
    html = fragment.content.decode()
    assert html.lstrip().startswith('<li class="entry entry-comment">')
    assert "<html" not in html and "Show older" not in html
    assert html.count('class="entry entry-') == 4  # three comments and the entry
    assert "Note 2<" in html and "Note 3<" not in html
    # Without JavaScript, the card page from there on, with the way back.
    assert page.status_code == 200
    assert b"Back to the newest" in page.content
    assert [e.kind for e in page.context["timeline"].entries] == [ActivityKind.COMMENT] * 3 + [
        MoveKind.ENTER
    ]


def test_a_broken_show_older_link_is_refused_not_a_crash(stream, manager, member):
    card = new_card(stream, manager)

    for headers in ({}, HTMX):
        response = logged_in(member).get(card_url(card), {"older": "2.x.1"}, headers=headers)
        assert response.status_code in (200, 400)
        assert b"That page of the history could not be read." in response.content


# The demo ------------------------------------------------------------------------------


def test_the_demo_gives_some_cards_a_history_by_their_team():
    """Two weeks of one demo stream (the whole demo takes minutes): the cards longest in
    the busiest columns, and a blocked one, have comments and edits by the people of
    their cycle."""
    import random

    spec = STREAMS[0]
    simulation = _StreamSimulation(spec, random.Random(1), timezone.now() - timedelta(days=15))
    simulation._people()
    simulation._configure()
    simulation.open, simulation.counts = {}, Counter()
    for day in range(15):
        for card_id in sorted(
            simulation.open, key=lambda c: (-simulation.open[c][1], -simulation.open[c][2])
        ):
            simulation._advance(card_id, day)
        for _ in range(3):
            simulation._new_card(day)
    simulation._block_some()

    simulation._history_some()

    comments = CardActivity.objects.filter(kind=ActivityKind.COMMENT).select_related("card")
    edits = CardActivity.objects.filter(kind=ActivityKind.EDIT)
    assert comments.count() >= 6
    assert edits.count() >= 2
    assert {c.card_id for c in comments} >= set(edits.values_list("card_id", flat=True))
    assert all(c.card.outcome == "open" for c in comments)
    assert Card.objects.filter(activity__kind=ActivityKind.COMMENT, is_blocked=True).exists()
    stream_people = set(
        Membership.objects.filter(team__value_stream=simulation.stream)
        .exclude(role=Role.TEAM_COORDINATOR)
        .values_list("user_id", flat=True)
    )
    assert set(comments.values_list("actor_id", flat=True)) <= stream_people
    assert all(
        change["field"] in ("Estimated value", "Notes") for e in edits for change in e.changes
    )
    for entry in CardActivity.objects.all():
        assert entry.at <= timezone.now()


# Long texts are counted, not cut; an undo says what it undid --------------------------


def test_the_comment_box_counts_its_characters_instead_of_cutting_a_long_paste(
    stream, manager, member
):
    card = new_card(stream, manager)
    pasted = "z" * 20_000
    client = logged_in(member)

    box = str(CommentForm()["text"])
    refused = client.post(comment_url(card), {"text": pasted})

    # The browser's maxlength would cut the paste to 5,000 without a word: the page
    # counts instead (js/char-count.js), and the server refuses the whole of it.
    assert "maxlength" not in box
    assert f'data-max-length="{COMMENT_MAX_LENGTH}"' in box
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "Keep a comment to 5,000 characters; this one has 20,000." in html
    assert f">\n{pasted}</textarea>" in html
    assert not CardActivity.objects.exists()


def test_an_undo_is_undid_won_in_the_timeline_and_a_reopen_is_a_reopen(stream, manager, member):
    undone = new_card(stream, manager, person_name="Undone")
    reopened = new_card(stream, manager, person_name="Reopened")
    actor = as_actor(member)
    won = card_close(card_id=undone.pk, outcome=Outcome.WON, actor=actor).card
    card_reopen(card_id=undone.pk, actor=actor, expected_version=won.version, undo=True)
    lost = card_close(card_id=reopened.pk, outcome=Outcome.LOST, actor=actor).card
    card_reopen(card_id=reopened.pk, actor=actor, expected_version=lost.version)

    undo = card_timeline(card=undone).entries[0]
    reopen = card_timeline(card=reopened).entries[0]
    page = logged_in(member).get(card_url(undone)).content.decode()

    assert (undo.kind, undo.undid) == ("undo", "won")
    assert undo.move is not None and undo.move.kind == MoveKind.REOPEN  # the same flow
    assert (reopen.kind, reopen.undid) == (MoveKind.REOPEN, "")
    assert '<strong class="entry-what">Undid won</strong>' in page
    assert '<li class="entry entry-undo">' in page
    assert "Reopened</strong>" not in page


def test_the_timeline_reads_undos_in_one_query_and_none_without_a_reopen(
    stream, manager, member, django_assert_num_queries
):
    card = new_card(stream, manager)
    plain = new_card(stream, manager, person_name="Plain")
    actor = as_actor(member)
    for _ in range(3):
        closed = card_close(card_id=card.pk, outcome=Outcome.LOST, actor=actor).card
        card_reopen(card_id=card.pk, actor=actor, expected_version=closed.version, undo=True)

    with django_assert_num_queries(3):  # moves, activity, the undos' audit rows
        entries = card_timeline(card=card).entries
    with django_assert_num_queries(2):
        card_timeline(card=plain)

    assert [entry.undid for entry in entries if entry.kind == "undo"] == ["lost"] * 3
