"""The metrics document as a typed, versioned read model: JSON round trips, and
documents stored under schema 1 stay readable."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path

import pytest

from boards.models import Outcome
from metrics.models import WeeklySnapshot
from metrics.selectors import (
    SCHEMA_VERSION,
    MetricsQuery,
    SchemaError,
    StreamMetricsDocument,
    stream_metrics_compute,
)
from metrics.services import stream_metrics_advance
from tests.metrics.scripted import Board

pytestmark = pytest.mark.django_db

# Stored by the schema-1 code (commit 7557932) on 29 Nov 2026: A (Referral, 500) won
# 6 Nov, reopened 9 Nov, won again 17 Nov; B lost 18 Nov. Schema 1 counted both wins,
# hence Referral's win rate of 2.0.
V1 = json.loads((Path(__file__).parent / "data" / "metrics_document_v1.json").read_text())
NOW = datetime.datetime(2026, 11, 18, 15, tzinfo=datetime.UTC)


def test_a_computed_document_survives_a_json_round_trip(stream, manager):
    board = Board(stream, manager)
    board.enter("A", None, 250, datetime.datetime(2026, 11, 2, 12, tzinfo=datetime.UTC))
    board.move("A", "Information", datetime.datetime(2026, 11, 3, 12, tzinfo=datetime.UTC))
    board.close("A", Outcome.WON, datetime.datetime(2026, 11, 5, 12, tzinfo=datetime.UTC))
    stream_metrics_advance(stream_id=stream.pk, summarize=False)
    document = stream_metrics_compute(MetricsQuery(stream=stream, now=NOW))
    data = document.to_json()
    assert data["schema_version"] == SCHEMA_VERSION == 2
    assert json.loads(json.dumps(data)) == data  # plain JSON: strings, numbers, lists
    assert StreamMetricsDocument.from_json(data) == document


def test_a_schema_1_document_reads_as_schema_2():
    document = StreamMetricsDocument.from_json(V1)
    assert document.schema_version == SCHEMA_VERSION
    # Schema 1's twelve weeks ended with the current one: it becomes "so far".
    assert [week.isoformat() for week in document.window.weeks] == V1["window"]["weeks"][:-1]
    assert document.window.current_week == datetime.date(2026, 11, 23)
    assert document.stream.won_weekly.values == V1["stream"]["won_weekly"][:-1]
    assert document.stream.won_weekly.so_far == V1["stream"]["won_weekly"][-1]
    (referral,) = (row for row in document.channels.rows if row.name == "Referral")
    assert (referral.won, referral.won_value, referral.win_rate) == (2, Decimal("1000.00"), 2.0)
    assert document.stream.lead_time.count == V1["stream"]["lead_time"]["count"]
    assert document.stream.lead_time.abandoned == 0  # schema 1 did not count them
    first = document.columns[0]
    assert first.arrivals_weekly.values == V1["columns"][0]["weekly"]["arrivals"][:-1]
    assert first.flow.at_limit_share is None  # schema 1 had no flow over time
    assert document.cycles[0].won_weekly.so_far == V1["cycles"][0]["weekly"]["won"][-1]
    assert document.constraint.name == V1["constraint"]["name"]
    assert document.constraint.ranking == []  # other evidence: not carried over
    # And it can be stored again, as schema 2.
    assert StreamMetricsDocument.from_json(document.to_json()) == document


def test_a_weekly_snapshot_stored_under_schema_1_stays_readable(stream):
    snapshot = WeeklySnapshot.objects.create(
        value_stream=stream,
        week_start=datetime.date(2026, 11, 23),
        through_move_id=7,
        taken_at=NOW,
        data=V1,
    )
    snapshot.refresh_from_db()
    assert StreamMetricsDocument.from_json(snapshot.data).channels.pareto_80 == ["Referral"]


@pytest.mark.parametrize(
    "data",
    [
        {**V1, "schema_version": 99},
        {**V1, "schema_version": 2.0},
        {"schema_version": 2, "columns": "none"},
        {"window": {}},
        {**V1, "window": {**V1["window"], "weeks": []}},
        None,
        "garbage",
        [1, 2],
        5,
    ],
    ids=[
        "unknown version",
        "version not an integer",
        "not a document",
        "schema 1 without its parts",
        "schema 1 without weeks",
        "null",
        "a string",
        "a list",
        "a number",
    ],
)
def test_data_that_is_no_known_document_is_refused_with_a_clear_error(data):
    with pytest.raises(SchemaError):
        StreamMetricsDocument.from_json(data)
