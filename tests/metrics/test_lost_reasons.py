"""The dashboard's lost reasons, worked out by hand: why deals were lost, per column and
per channel, each deal once by its final loss.

Today is Wednesday 11 June 2025 (UTC); the window's first day is Monday 17 March. In
Collaboration, the cards (channel; where and why lost):

    j  Web form   Data, 2 May, before the stream kept reasons: not recorded
    a  Referral   Data, 5 May: No budget
    b  Web form   Information, 6 May: Chose a competitor
    c  Web form   Information, 7 May: No budget, with a note
    d  Web form   Data, 8 May: a note only
    e  (none)     Information, 9 May: No budget
    f  Referral   Data, 10 May: No budget; reopened on 12 May, open now: not counted
    g  Referral   Data, 10 May: Chose a competitor; reopened, moved to Information and
                  lost there on 13 May: No budget (counted once, by its final loss)
    h  Web form   Data, 1 March, before the window: not counted
    i  Web form   won: not counted

    per column         No budget  Chose a competitor  note only  not recorded  lost
    Data                   1              0               1            1         3
    Information            3              1               0            0         4

    per channel        No budget  Chose a competitor  note only  not recorded  lost
    Referral               2              0               0            0         2
    Web form               1              1               1            1         4
    No channel             1              0               0            0         1
"""

from __future__ import annotations

import csv
import datetime
import io
from unittest import mock

import pytest
from django.urls import reverse

from boards.models import Outcome
from boards.services import card_close
from metrics.charts import LOST_REASONS_CHANNELS_KEY, LOST_REASONS_KEY
from metrics.selectors import MetricsQuery
from metrics.selectors.dashboard import dashboard_chart
from metrics.selectors.lost_reasons import NO_CHANNEL, NOT_RECORDED, NOTE_ONLY, lost_reasons
from metrics.services import stream_metrics_advance
from pdca.models import Cycle
from tests.factories import ChannelFactory
from tests.metrics.scripted import Board
from tests.support import COLLABORATION, SALES, TEST_SYSTEM, as_actor, logged_in
from vsm.services import lost_reason_create

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
NOW = datetime.datetime(2025, 6, 11, 10, 0, tzinfo=UTC)
REASONS = ["No budget", "Chose a competitor", NOTE_ONLY, NOT_RECORDED]
BY_COLUMN = [
    [f"{COLLABORATION} / Data", 1, 0, 1, 1, 3],
    [f"{COLLABORATION} / Information", 3, 1, 0, 0, 4],
]
BY_CHANNEL = [
    ["Referral", 2, 0, 0, 0, 2],
    ["Web form", 1, 1, 1, 1, 4],
    [NO_CHANNEL, 1, 0, 0, 0, 1],
]


def at(month: int, day: int) -> datetime.datetime:
    return datetime.datetime(2025, month, day, 9, 0, tzinfo=UTC)


@pytest.fixture
def lost(stream, manager):
    board = Board(stream, manager)
    referral = ChannelFactory(value_stream=stream, name="Referral")
    web = ChannelFactory(value_stream=stream, name="Web form")

    def lose(key, when, **why):
        card_close(
            card_id=board.cards[key],
            outcome=Outcome.LOST,
            actor=as_actor(manager),
            at=when,
            **why,
        )

    channel_of = {"a": referral, "f": referral, "g": referral, "e": None}
    for key in "abcdefghij":
        board.enter(key, channel_of.get(key, web), 1000, at(2, 20))
    for key in "bce":
        board.move(key, "Information", at(3, 20))
    lose("h", at(3, 1))
    lose("j", at(5, 2))  # no reasons yet: nothing to record
    budget, rival = (
        lost_reason_create(stream_id=stream.pk, name=name, actor=TEST_SYSTEM).pk
        for name in ("No budget", "Chose a competitor")
    )
    lose("a", at(5, 5), lost_reason_id=budget)
    lose("b", at(5, 6), lost_reason_id=rival)
    lose("c", at(5, 7), lost_reason_id=budget, lost_note="Froze the budget")
    lose("d", at(5, 8), lost_note="Acquired")
    lose("e", at(5, 9), lost_reason_id=budget)
    lose("f", at(5, 10), lost_reason_id=budget)
    board.reopen("f", at(5, 12))
    lose("g", at(5, 10), lost_reason_id=rival)
    board.reopen("g", at(5, 11))
    board.move("g", "Information", at(5, 12))
    lose("g", at(5, 13), lost_reason_id=budget)
    board.close("i", Outcome.WON, at(5, 14))
    stream_metrics_advance(stream_id=stream.pk)
    return board


def rows_of(counts, places, reasons):
    return [[place.name, *(counts[(reason, place.key)] for reason in reasons)] for place in places]


def test_lost_deals_are_counted_once_by_reason_column_and_channel_in_one_query(
    lost, django_assert_num_queries
):
    with django_assert_num_queries(1):
        counted = lost_reasons(MetricsQuery(stream=lost.stream, now=NOW))

    assert counted.reasons == REASONS
    assert counted.total == 7
    assert rows_of(counted.by_column, counted.columns, REASONS) == [row[:-1] for row in BY_COLUMN]
    assert rows_of(counted.by_channel, counted.channels, REASONS) == [
        row[:-1] for row in BY_CHANNEL
    ]


def test_the_charts_hold_the_counts_with_their_totals_and_a_verdict(lost):
    query = MetricsQuery(stream=lost.stream, now=NOW)

    by_column = dashboard_chart(query, LOST_REASONS_KEY)
    by_channel = dashboard_chart(query, LOST_REASONS_CHANNELS_KEY)

    assert by_column.columns == ["column", *REASONS, "lost"]
    assert by_column.rows == BY_COLUMN
    assert by_column.labels == [row[0] for row in BY_COLUMN]
    assert [(s.name, s.values) for s in by_column.series] == [
        (reason, [row[1 + index] for row in BY_COLUMN]) for index, reason in enumerate(REASONS)
    ]
    assert by_channel.columns == ["channel", *REASONS, "lost"]
    assert by_channel.rows == BY_CHANNEL
    assert by_column.verdict == (
        "“No budget” is the most frequent reason: 4 of the 7 lost deals (57%). The column "
        f"with the most losses: {COLLABORATION} / Information (4)."
    )
    assert by_channel.verdict is not None
    assert by_channel.verdict.endswith("The channel with the most losses: Web form (4).")
    assert by_column.empty_reason is None


def test_the_filters_narrow_the_count(lost):
    referral = lost.stream.channels.get(name="Referral")
    sales = Cycle.objects.get(value_stream=lost.stream, name=SALES)

    one_channel = lost_reasons(MetricsQuery(stream=lost.stream, now=NOW, channel_key=referral.pk))
    no_channel = lost_reasons(MetricsQuery(stream=lost.stream, now=NOW, channel_key=0))
    other_cycle = MetricsQuery(stream=lost.stream, now=NOW, cycle_id=sales.pk)
    # 7 May, noon: its window starts on 10 February (h is in it); d to g come later.
    before = lost_reasons(
        MetricsQuery(stream=lost.stream, now=at(5, 7) + datetime.timedelta(hours=3))
    )

    assert (one_channel.total, one_channel.reasons) == (2, ["No budget"])
    assert [place.name for place in one_channel.columns] == [row[0] for row in BY_COLUMN]
    assert (no_channel.total, [p.name for p in no_channel.channels]) == (1, [NO_CHANNEL])
    assert lost_reasons(other_cycle).total == 0
    assert dashboard_chart(other_cycle, LOST_REASONS_KEY).empty_reason == (
        "No deal was lost in this period."
    )
    assert (before.total, before.reasons) == (5, ["No budget", "Chose a competitor", NOT_RECORDED])
    assert before.by_column[(NOT_RECORDED, lost.column(COLLABORATION, "Data").pk)] == 2


def test_the_dashboard_shows_both_charts_and_downloads_them(lost, manager):
    client = logged_in(manager)
    # The page's query is the present's: today is the script's Wednesday.
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        page = client.get(reverse("metrics:dashboard", args=[lost.stream.slug]))
        download = client.get(
            reverse("metrics:dashboard-csv", args=[lost.stream.slug, LOST_REASONS_KEY])
        )

    keys = [chart.key for chart in page.context["dashboard"].charts]
    assert keys.index(LOST_REASONS_KEY) == keys.index("pareto") + 1
    assert keys.index(LOST_REASONS_CHANNELS_KEY) == keys.index(LOST_REASONS_KEY) + 1
    assert f'id="chart-data-{LOST_REASONS_KEY}"'.encode() in page.content
    assert f'id="chart-{LOST_REASONS_CHANNELS_KEY}"'.encode() in page.content
    assert download.status_code == 200
    assert list(csv.reader(io.StringIO(download.content.decode()))) == [
        ["column", *REASONS, "lost"],
        *[[str(cell) for cell in row] for row in BY_COLUMN],
    ]
