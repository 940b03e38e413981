"""A filtered view of the metrics, computed live from the same aggregates: one cycle's
columns, one channel's cards (MetricsQuery)."""

from __future__ import annotations

import datetime

import pytest

from boards.models import Outcome
from metrics.selectors import MetricsQuery, stream_metrics_compute
from metrics.services import stream_metrics_advance
from pdca.models import Cycle
from tests.metrics.scripted import Board
from tests.support import SALES
from vsm.models import Channel

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 11, 18, 15, tzinfo=datetime.UTC)


def nov(day: int) -> datetime.datetime:
    return datetime.datetime(2026, 11, day, 12, tzinfo=datetime.UTC)


@pytest.fixture
def board(stream, manager) -> Board:
    # R (Referral, 300): enters 2 Nov, won 4 Nov. W (Web form, 200): enters 2 Nov, lost
    # 3 Nov. V (Web form, 100): enters 3 Nov, stays open. N (no channel): enters 5 Nov,
    # hands on to Sales/Buying 6 Nov, open there.
    board = Board(stream, manager)
    referral = Channel.objects.create(value_stream=stream, name="Referral")
    web = Channel.objects.create(value_stream=stream, name="Web form")
    board.channels = (referral, web)
    board.enter("R", referral, 300, nov(2))
    board.enter("W", web, 200, nov(2))
    board.enter("V", web, 100, nov(3))
    board.close("W", Outcome.LOST, nov(3))
    board.close("R", Outcome.WON, nov(4))
    board.enter("N", None, 0, nov(5))
    board.move("N", "Wisdom", nov(5))
    board.handoff("N", nov(6))
    stream_metrics_advance(stream_id=stream.pk, summarize=False)
    return board


def compute(stream, **filters) -> dict:
    return stream_metrics_compute(MetricsQuery(stream=stream, now=NOW, **filters)).to_json()


def test_one_channel_s_cards_only(board):
    referral, web = board.channels
    everything = compute(board.stream)
    assert sum(everything["stream"]["arrivals_weekly"]["values"]) == 4
    web_only = compute(board.stream, channel_key=web.pk)
    stream = web_only["stream"]
    assert sum(stream["arrivals_weekly"]["values"]) == 2  # W, V
    assert sum(stream["won_weekly"]["values"]) == 0
    assert sum(stream["lost_weekly"]["values"]) == 1  # W
    assert [row["name"] for row in web_only["channels"]["rows"]] == ["Web form"]
    collaboration = web_only["cycles"][0]
    assert collaboration["conversion"]["cohort"] == 2
    assert set(collaboration["conversion"]["by_channel"]) == {str(web.pk)}
    assert collaboration["cycle_time"] == {
        **collaboration["cycle_time"],
        "count": 0,
        "abandoned": 1,
    }
    assert web_only["aging"]["open_cards"] == 1  # V
    assert web_only["query"] == {"cycle_id": None, "channel_key": web.pk}
    # Cards without a channel are channel 0.
    no_channel = compute(board.stream, channel_key=0)
    assert sum(no_channel["stream"]["arrivals_weekly"]["values"]) == 1  # N
    assert no_channel["aging"]["open_cards"] == 1
    assert no_channel["cycles"][0]["cycle_time"]["count"] == 1  # N's handoff
    # Column-level flow is not split by channel: the same WIP in every view.
    assert [c["wip_now"] for c in web_only["columns"]] == [
        c["wip_now"] for c in everything["columns"]
    ]


def test_one_cycle_s_columns_only(board):
    sales = Cycle.objects.get(value_stream=board.stream, name=SALES)
    view = compute(board.stream, cycle_id=sales.pk)
    assert {column["cycle_id"] for column in view["columns"]} == {sales.pk}
    assert len(view["columns"]) == 4
    assert [cycle["name"] for cycle in view["cycles"]] == [SALES]
    assert view["cycles"][0]["wip_now"] == 1  # N
    # The constraint is still sought over the whole stream.
    assert len(view["constraint"]["ranking"]) == 12
