"""Metrics through the API: the dashboard's own tiles and charts (metrics.selectors.
dashboard), for the dashboard's filters, on the oracle's stream (tests/metrics/
test_oracle.py); nothing is recomputed by the API."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from api.serializers import ChartSerializer, TileSerializer
from api.services import api_token_create
from boards import selectors as board_selectors
from metrics.forms.filters import DashboardFilterForm
from metrics.selectors.dashboard import dashboard_chart, dashboard_get
from tests.api.conftest import bearer
from tests.metrics.test_oracle import board, channels  # noqa: F401 (the oracle's stream)
from tests.support import TEST_SYSTEM

pytestmark = pytest.mark.django_db

# The oracle's last full week ends on Sunday 8 June 2025.
PARAMS = {"end": "2025-06-08"}


@pytest.fixture
def oracle_api(board) -> APIClient:  # noqa: F811
    return bearer(api_token_create(stream_id=board.stream.pk, name="BI", actor=TEST_SYSTEM).secret)


def _query(stream, params):
    form = DashboardFilterForm(
        params,
        stream=stream,
        cycles=board_selectors.stream_cycles(stream=stream),
        channels=board_selectors.stream_channels(stream=stream),
    )
    assert form.is_valid(), form.errors
    return form.query()


def test_the_summary_is_the_dashboards_tiles(oracle_api, board):  # noqa: F811
    stream = board.stream

    response = oracle_api.get(reverse("api:metrics", args=[stream.pk]), PARAMS)

    assert response.status_code == 200, response.content
    body = response.json()
    dashboard = dashboard_get(_query(stream, PARAMS))
    assert body["tiles"] == TileSerializer(dashboard.tiles, many=True).data
    tiles = {tile["key"]: tile for tile in body["tiles"]}
    # The oracle's numbers, as tests/metrics/test_dashboard.py has them by hand.
    assert (tiles["arrivals"]["value"], tiles["arrivals"]["previous"]) == (1, 1)
    assert body["week"] == "2025-06-02"
    assert body["window"]["weeks"][-1] == "2025-06-02"
    assert [chart["key"] for chart in body["charts"]] == [c.key for c in dashboard.charts]
    assert body["charts"][0]["url"].endswith("?end=2025-06-08")


def test_each_chart_is_the_dashboards_chart(oracle_api, board):  # noqa: F811
    stream = board.stream
    summary = oracle_api.get(reverse("api:metrics", args=[stream.pk]), PARAMS).json()
    query = _query(stream, PARAMS)

    for listed in summary["charts"]:
        response = oracle_api.get(listed["url"])
        assert response.status_code == 200, listed
        expected = dashboard_chart(query, listed["key"])
        assert response.json() == json.loads(JSONRenderer().render(ChartSerializer(expected).data))
        assert response.json()["rows"] == [list(row) for row in expected.rows]
    throughput = oracle_api.get(
        reverse("api:metrics-chart", args=[stream.pk, "throughput"]), PARAMS
    ).json()
    assert len(throughput["labels"]) == len(throughput["series"][0]["values"]) > 0


def test_filters_are_the_dashboards(oracle_api, board):  # noqa: F811
    stream = board.stream
    cycle = stream.cycles.order_by("order").first()
    params = {**PARAMS, "cycle": str(cycle.pk), "start": "2025-04-01"}

    body = oracle_api.get(reverse("api:metrics", args=[stream.pk]), params).json()

    dashboard = dashboard_get(_query(stream, params))
    assert body["tiles"] == TileSerializer(dashboard.tiles, many=True).data
    assert body["window"]["start"] == "2025-03-31"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": "2999-01-01"}, "end"),
        ({"start": "2025-06-08", "end": "2025-06-01"}, "start"),
        ({"start": "1999-12-31"}, "start"),
        ({"channel": "-1"}, "channel"),
        ({"end": "yesterday"}, "end"),
    ],
)
def test_filters_out_of_range_are_400(oracle_api, board, params, field):  # noqa: F811
    response = oracle_api.get(reverse("api:metrics", args=[board.stream.pk]), params)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert field in response.json()["data"]["fields"]


def test_an_unknown_chart_is_404(oracle_api, board):  # noqa: F811
    response = oracle_api.get(reverse("api:metrics-chart", args=[board.stream.pk, "pie"]))

    assert response.status_code == 404
    assert response.json()["code"] == "chart_not_found"


def test_a_new_stream_has_empty_metrics_not_errors(api, stream):
    summary = api.get(reverse("api:metrics", args=[stream.pk]))
    chart = api.get(reverse("api:metrics-chart", args=[stream.pk, "throughput"]))

    assert summary.status_code == chart.status_code == 200
    assert summary.json()["week"] is None
    assert chart.json()["empty_reason"]
