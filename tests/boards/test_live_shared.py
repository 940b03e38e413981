"""Viewers share live updates: they are told the same board version for a moment
(VSM_BOARD_PUBLISH_SECONDS), so they ask for the same deltas, each rendered once
(boards.views.board.board_poll, boards.selectors.changes.board_version_published)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from boards.selectors import board_version
from boards.selectors import changes as changes_module
from boards.services import card_move
from tests.pages import cards_by_column
from tests.support import COLLABORATION, as_actor, column_of, logged_in, new_card

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}


@pytest.fixture
def published(settings):
    settings.VSM_BOARD_PUBLISH_SECONDS = 60.0


def poll(client, stream, version):
    return client.get(
        reverse("boards:board-poll", args=[stream.slug]),
        {"version": str(version)},
        headers=HTMX,
    )


def told_version(client, stream) -> str:
    """The version a viewer is told to hold (the one published to every viewer)."""
    sent = str(board_version(stream=stream))
    return poll(client, stream, sent).get("X-Board-Version", sent)


def card_queries(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if '"boards_card"' in q["sql"]]


def test_viewers_get_one_rendering_of_a_change_and_read_no_card_for_it(
    published, stream, manager, member
):
    card = new_card(stream, manager)
    seen = board_version(stream=stream)
    information = column_of(stream, COLLABORATION, "Information")
    card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))
    viewers = [logged_in(member) for _ in range(5)]

    first = poll(viewers[0], stream, seen)
    with CaptureQueriesContext(connection) as queries:
        others = [poll(viewer, stream, seen) for viewer in viewers[1:]]

    assert first["X-Board-Delta"] == "1"
    assert cards_by_column(first.content)[information.pk] == [card.pk]
    assert {answer.content for answer in others} == {first.content}
    assert {answer["X-Board-Version"] for answer in others} == {first["X-Board-Version"]}
    assert card_queries(queries) == []


def test_a_viewer_holding_the_published_version_is_answered_without_reading_the_board(
    published, stream, manager, member
):
    new_card(stream, manager)
    client = logged_in(member)
    told = told_version(client, stream)

    with CaptureQueriesContext(connection) as queries:
        answer = poll(client, stream, told)

    assert answer.status_code == 204
    assert card_queries(queries) == []
    assert not [q for q in queries.captured_queries if '"boards_column"' in q["sql"]]


def test_a_change_after_the_published_version_arrives_once_it_is_renewed(
    published, stream, manager, member, monkeypatch
):
    card = new_card(stream, manager)
    client = logged_in(member)
    held = told_version(client, stream)
    information = column_of(stream, COLLABORATION, "Information")
    card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(manager))

    assert poll(client, stream, held).status_code == 204  # within the published moment
    later = changes_module.time.time() + 61
    monkeypatch.setattr(changes_module.time, "time", lambda: later)
    answer = poll(client, stream, held)

    assert answer["X-Board-Delta"] == "1"
    assert cards_by_column(answer.content)[information.pk] == [card.pk]
    assert answer["X-Board-Version"] != held


def test_nothing_changed_since_a_version_is_204_with_the_version_to_hold(stream, manager):
    new_card(stream, manager)
    client = logged_in(manager)
    now = board_version(stream=stream)
    ahead = f"{now}".replace(now.changes, _ahead(now.changes), 1)

    answer = poll(client, stream, ahead)

    assert answer.status_code == 204
    assert answer["X-Board-Version"] == str(board_version(stream=stream))


def _ahead(changes: str) -> str:
    """A version that has seen more than ``changes``: nothing changed since it."""
    if connection.vendor == "postgresql":
        xmax = int(changes.split(":")[1]) + 1000
        return f"{xmax}:{xmax}:"
    return str(int(changes) + 1000)


def test_a_shared_delta_holds_no_csrf_token_and_the_wip_form_only_for_managers(
    published, stream, manager, member
):
    card = new_card(stream, manager)
    seen = board_version(stream=stream)
    card_move(
        card_id=card.pk,
        to_column_id=column_of(stream, COLLABORATION, "Information").pk,
        actor=as_actor(manager),
    )

    for_manager = poll(logged_in(manager), stream, seen).content.decode()
    for_member = poll(logged_in(member), stream, seen).content.decode()

    assert "csrfmiddlewaretoken" not in for_manager + for_member
    assert 'name="wip_limit"' in for_manager
    assert 'name="wip_limit"' not in for_member
