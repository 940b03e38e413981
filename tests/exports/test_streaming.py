"""Large exports stream: the answer is sent a chunk at a time, each chunk two queries
(its ids, then its rows), so neither the body nor the rows sit whole in memory and the
queries grow with the number of chunks only."""

from __future__ import annotations

import datetime
import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from boards.models import CardMove, MoveKind
from boards.selectors import BoardFilters
from exports.selectors import EXPORT_CHUNK_SIZE, CardExportQuery, card_export_chunks
from tests.exports.support import csv_rows
from tests.support import COLLABORATION, column_of, fill, logged_in

MOVES = 20_000


@pytest.fixture
def long_log(stream) -> int:
    """MOVES moves of twenty cards, written in bulk (the export reads rows, whatever
    made them); returns the number of moves."""
    data = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    cards = fill(data, 20)
    start = timezone.now() - datetime.timedelta(days=400)
    CardMove.objects.bulk_create(
        (
            CardMove(
                value_stream=stream,
                card=cards[n % len(cards)],
                from_column=data,
                to_column=information,
                kind=MoveKind.MOVE,
                moved_at=start + datetime.timedelta(minutes=n),
                estimated_value=n,
            )
            for n in range(MOVES)
        ),
        batch_size=2_000,
    )
    return MOVES


def test_a_long_move_log_streams_a_chunk_per_two_queries(stream, manager, long_log):
    client = logged_in(manager)
    with CaptureQueriesContext(connection) as answering:
        response = client.get(reverse("exports:move-log", args=[stream.slug]))

    assert response.status_code == 200
    assert response.streaming
    # Answering reads the session, the user, the stream and the newest move's id, and
    # writes the audit row: no move is read before the body is sent.
    assert len(answering) <= 8
    assert not any('"moved_at"' in query["sql"] for query in answering.captured_queries)

    with CaptureQueriesContext(connection) as streaming:
        pieces = [bytes(piece) for piece in response.streaming_content]

    chunks = math.ceil(long_log / EXPORT_CHUNK_SIZE)
    assert len(streaming) == 2 * chunks
    # The header, then one piece per chunk: none of them is a large share of the body.
    assert len(pieces) == 1 + chunks
    body = b"".join(pieces)
    assert max(len(piece) for piece in pieces) * 10 < len(body)
    rows = csv_rows(body.decode())
    assert len(rows) == 1 + long_log
    assert [int(row[0]) for row in rows[1:]] == sorted(int(row[0]) for row in rows[1:])


def test_the_cards_are_read_two_queries_a_chunk_with_the_filters_in_each(stream):
    cards = fill(column_of(stream, COLLABORATION, "Data"), 120)
    for card in cards[::3]:
        card.is_blocked, card.blocked_reason = True, "Waiting"
        card.save()
    query = CardExportQuery(stream=stream, now=timezone.now())

    with CaptureQueriesContext(connection) as reading:
        chunks = [len(chunk) for chunk in card_export_chunks(query, chunk_size=50)]

    assert chunks == [50, 50, 20]
    assert len(reading) == 2 * 3

    blocked = CardExportQuery(
        stream=stream,
        now=timezone.now(),
        filters=BoardFilters(blocked_only=True),
    )
    ids = [row[0] for chunk in card_export_chunks(blocked, chunk_size=15) for row in chunk]
    assert ids == [card.pk for card in cards[::3]]
