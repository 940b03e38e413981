"""The counting rules users rely on (DOMAIN.md, docs/metrics.md), each worked by hand:
a card counts once by its final state; elapsed times run from the first start to the
final finish; conversion rates are shares of a cohort; the current week is partial;
days and weeks are those of the configured time zone; flow over time (time at the
WIP limit, blocked flow).

Every event is at 12:00 UTC unless said otherwise. 2 November 2026 is a Monday.
"""

from __future__ import annotations

import datetime
from fractions import Fraction
from unittest import mock

import pytest

from boards.models import Column, Outcome
from boards.services import card_create
from metrics.fold import Fold
from metrics.forecasting import how_many
from metrics.models import FlowDuration, MetricsProgress
from metrics.selectors import MetricsQuery, daily_won, stream_metrics_compute
from metrics.services import stream_metrics_advance, stream_metrics_rebuild, streams_lagging
from tests.metrics.scripted import Board
from tests.support import COLLABORATION, as_actor
from vsm.models import Channel, ChannelKind

pytestmark = pytest.mark.django_db

UTC = datetime.UTC


def nov(day: int, hour: int = 12, minute: int = 0) -> datetime.datetime:
    return datetime.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


# Wednesday 18 November 2026: the window's full weeks are the 12 ISO weeks before the
# week of Monday 16 November, the last two of them the weeks of 2 and 9 November.
NOW = nov(18, 15)


def rounded(exact, places: int = 2):
    return pytest.approx(float(exact), abs=0.5 * 10**-places + 1e-9)


def document(stream, now=NOW, **filters) -> dict:
    stream_metrics_advance(stream_id=stream.pk, summarize=False)
    return stream_metrics_compute(MetricsQuery(stream=stream, now=now, **filters)).to_json()


def week_values(series: dict, monday: datetime.date, window: dict):
    return series["values"][window["weeks"].index(monday.isoformat())]


@pytest.fixture
def board(stream, manager) -> Board:
    return Board(stream, manager)


@pytest.fixture
def referral(stream) -> Channel:
    return Channel.objects.create(value_stream=stream, name="Referral", kind=ChannelKind.REFERRAL)


def cycle_doc(doc: dict, name: str = COLLABORATION) -> dict:
    return next(cycle for cycle in doc["cycles"] if cycle["name"] == name)


def test_a_deal_won_reopened_and_won_again_counts_once(board, referral):
    # The example. X (1,000, Referral): enters Mon 2 Nov, -> Information 3 Nov,
    # won 4 Nov, reopened 5 Nov, won again 10 Nov. Y (500, Referral): enters 2 Nov,
    # won 6 Nov.
    board.enter("X", referral, 1000, nov(2))
    board.enter("Y", referral, 500, nov(2))
    board.move("X", "Information", nov(3))
    board.close("X", Outcome.WON, nov(4))
    board.reopen("X", nov(5))
    board.close("Y", Outcome.WON, nov(6))
    board.close("X", Outcome.WON, nov(10))
    doc = document(board.stream)
    window, stream = doc["window"], doc["stream"]
    # Won in the week of 2 Nov: Y only (X's first win was taken back); week of 9 Nov: X.
    assert week_values(stream["won_weekly"], datetime.date(2026, 11, 2), window) == 1
    assert week_values(stream["won_weekly"], datetime.date(2026, 11, 9), window) == 1
    assert sum(stream["won_weekly"]["values"]) == 2
    assert week_values(stream["won_value_weekly"], datetime.date(2026, 11, 9), window) == 1000
    # Referral: 2 arrivals, won 2, win rate 1.0, won value 1,500.
    (row,) = doc["channels"]["rows"]
    assert (row["name"], row["arrivals"], row["won"], row["lost"]) == ("Referral", 2, 2, 0)
    assert row["win_rate"] == 1.0
    assert row["won_value"] == "1500.00"
    # Lead times, first enter to final won: Y 4 days, X 8 days.
    lead = stream["lead_time"]
    assert (lead["count"], lead["p50"], lead["p85"], lead["mean"], lead["abandoned"]) == (
        2,
        4.0,
        8.0,
        6.0,
        0,
    )
    # The cycle counts the same: won once each, in the weeks of their final wins.
    collaboration = cycle_doc(doc)
    assert sum(collaboration["won_weekly"]["values"]) == 2
    assert sum(collaboration["departures_weekly"]["values"]) == 2
    # Cycle time from the first start to the final finish: X 8 days (its day off the
    # board, 4-5 Nov, is inside), Y 4 days.
    assert collaboration["cycle_time"]["count"] == 2
    assert collaboration["cycle_time"]["p85"] == 8.0
    # The funnel's won step: 2 cards of the cohort of 2.
    assert collaboration["conversion"]["all"][-1] == {
        "step": "won",
        "reached": 2,
        "cumulative": 1.0,
        "next_step": None,  # nobody reached Wisdom, the step before the exits
    }


def test_a_deal_won_then_reopened_then_lost_is_lost(board, referral):
    # Z (800, Referral): enters 2 Nov, won 3 Nov, reopened 4 Nov, lost 6 Nov.
    board.enter("Z", referral, 800, nov(2))
    board.close("Z", Outcome.WON, nov(3))
    board.reopen("Z", nov(4))
    board.close("Z", Outcome.LOST, nov(6))
    doc = document(board.stream)
    stream = doc["stream"]
    assert sum(stream["won_weekly"]["values"]) == 0
    assert week_values(stream["lost_weekly"], datetime.date(2026, 11, 2), doc["window"]) == 1
    (row,) = doc["channels"]["rows"]
    assert (row["won"], row["lost"], row["won_value"], row["win_rate"]) == (0, 1, "0.00", 0.0)
    # No lead time: the win was taken back; the lost card is counted beside, as abandoned.
    assert stream["lead_time"]["count"] == 0
    assert stream["lead_time"]["abandoned"] == 1
    collaboration = cycle_doc(doc)
    assert collaboration["cycle_time"]["count"] == 0
    assert collaboration["cycle_time"]["abandoned"] == 1
    assert collaboration["conversion"]["all"][-1]["reached"] == 0
    assert sum(collaboration["lost_weekly"]["values"]) == 1
    assert sum(collaboration["won_weekly"]["values"]) == 0


def test_a_reopened_card_s_cycle_time_runs_from_its_first_start(board, referral):
    # L: enters 2 Nov, lost 4 Nov, reopened 9 Nov, won 12 Nov: cycle and lead time
    # 10 days, its five days off the board inside. M: enters 2 Nov, lost 3 Nov, stays
    # lost: abandoned, out of the percentiles, counted beside them.
    board.enter("L", referral, 100, nov(2))
    board.enter("M", referral, 100, nov(2))
    board.close("M", Outcome.LOST, nov(3))
    board.close("L", Outcome.LOST, nov(4))
    board.reopen("L", nov(9))
    board.close("L", Outcome.WON, nov(12))
    doc = document(board.stream)
    cycle_time = cycle_doc(doc)["cycle_time"]
    assert (cycle_time["count"], cycle_time["p50"], cycle_time["abandoned"]) == (1, 10.0, 1)
    lead = doc["stream"]["lead_time"]
    assert (lead["count"], lead["p50"], lead["abandoned"]) == (1, 10.0, 1)
    # Its column visits stay what they were: Data 2 Nov -> 4 Nov (lost), then 9 -> 12.
    data = next(column for column in doc["columns"] if column["name"] == "Data")
    assert data["time_in_column"]["count"] == 3  # L twice, M once
    # Lost in the week of 2 Nov: M only (L's loss was taken back); won 12 Nov: L.
    assert week_values(doc["stream"]["lost_weekly"], datetime.date(2026, 11, 2), doc["window"]) == 1
    assert week_values(doc["stream"]["won_weekly"], datetime.date(2026, 11, 9), doc["window"]) == 1


@pytest.mark.parametrize("batch", [1, 2, 50_000], ids=lambda n: f"batches of {n}")
def test_a_rebuild_counts_reopened_cards_as_the_incremental_fold_does(board, referral, batch):
    # In batches of 1 or 2 moves, a close is written in one batch and taken back in a
    # later one: the rebuild must delete the rows it wrote before.
    board.enter("X", referral, 1000, nov(2))
    board.close("X", Outcome.WON, nov(4))
    stream_metrics_advance(stream_id=board.stream.pk, summarize=False)  # the win is folded
    board.reopen("X", nov(5))
    board.close("X", Outcome.LOST, nov(10))
    incremental = document(board.stream)
    with mock.patch("metrics.services.REBUILD_BATCH_SIZE", batch):
        stream_metrics_rebuild(stream_id=board.stream.pk)
    assert document(board.stream) == incremental
    assert FlowDuration.objects.filter(value_stream=board.stream, kind="lead").count() == 1
    assert incremental["stream"]["lead_time"]["abandoned"] == 1


def test_conversion_with_a_skipped_column_never_passes_one(board):
    # A and C skip Information (Data -> Knowledge); B goes Data -> Information and stays;
    # D stays in Data. Cohort: the 4 cards that entered Collaboration in the window.
    for key in "ABCD":
        board.enter(key, None, 0, nov(2))
    board.move("A", "Knowledge", nov(3))
    board.move("C", "Knowledge", nov(3))
    board.move("B", "Information", nov(3))
    board.move("A", "Wisdom", nov(4))
    doc = document(board.stream)
    conversion = cycle_doc(doc)["conversion"]
    assert conversion["cohort"] == 4
    steps = {step["step"]: step for step in conversion["all"]}
    # Reached: Data 4, Information 1 (B), Knowledge 2 (A, C), Wisdom 1 (A).
    assert [step["reached"] for step in conversion["all"]] == [4, 1, 2, 1, 0, 0]
    # Data -> Information: of the 4 in Data, 3 reached Information or went further.
    assert steps["Information"]["next_step"] == rounded(Fraction(3, 4), 4)
    # Information -> Knowledge: of the 1 in Information (B), none went further. Reached
    # Knowledge / reached Information would say 200%.
    assert steps["Knowledge"]["next_step"] == 0.0
    # Knowledge -> Wisdom: of A and C, A went on.
    assert steps["Wisdom"]["next_step"] == 0.5
    assert steps["Knowledge"]["cumulative"] == 0.5
    for step in conversion["all"]:
        for rate in (step["cumulative"], step["next_step"]):
            assert rate is None or 0 <= rate <= 1


def test_the_current_week_is_apart_and_never_averaged(board, referral):
    # Three wins in each of the 12 full weeks before Monday 16 Nov, except the week of
    # 2 Nov with 4; the "now" is Monday 16 Nov 00:30 UTC: the current week has nothing
    # yet and must raise no "below the lower limit" signal.
    monday = datetime.datetime(2026, 8, 24, 12, tzinfo=UTC)
    for week in range(12):
        wins = 4 if week == 10 else 3
        for n in range(wins):
            key = f"W{week}-{n}"
            start = monday + datetime.timedelta(weeks=week)
            board.enter(key, referral, 10, start)
            board.close(key, Outcome.WON, start + datetime.timedelta(days=1, hours=n))
    doc = document(board.stream, now=datetime.datetime(2026, 11, 16, 0, 30, tzinfo=UTC))
    window, stream = doc["window"], doc["stream"]
    assert window["weeks"][0] == "2026-08-24" and window["weeks"][-1] == "2026-11-09"
    assert (window["current_week"], window["current_week_days"]) == ("2026-11-16", 1)
    assert stream["won_weekly"] == {"values": [3] * 10 + [4, 3], "so_far": 0}
    assert stream["arrivals_weekly"]["so_far"] == 0
    # Means over the 12 full weeks: 37 / 12.
    assert stream["demand_vs_capacity"]["won_per_week"] == rounded(Fraction(37, 12))
    won_xmr = stream["xmr"]["won_weekly"]
    assert won_xmr["mean"] == rounded(Fraction(37, 12))
    assert all(signal["rule"] != "below the lower limit" for signal in won_xmr["signals"])
    # No win rate yet this week: None, not 0%.
    assert stream["win_rate_weekly"]["so_far"] is None


def test_days_and_weeks_are_those_of_the_configured_time_zone(board, referral, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    # Sunday 8 Nov 20:00 UTC is Monday 9 Nov 05:00 in Tokyo: the win falls in the week
    # of 9 Nov there.
    board.enter("T", referral, 10, nov(2))
    board.close("T", Outcome.WON, nov(8, 20))
    doc = document(board.stream)
    assert doc["window"]["time_zone"] == "Asia/Tokyo"
    assert week_values(doc["stream"]["won_weekly"], datetime.date(2026, 11, 9), doc["window"]) == 1
    assert week_values(doc["stream"]["won_weekly"], datetime.date(2026, 11, 2), doc["window"]) == 0
    # Its lead time, 2 Nov 12:00 -> 8 Nov 20:00 UTC = 6 days 8 hours, is that week's median.
    lead_medians = doc["stream"]["lead_time_median_weekly"]
    assert week_values(lead_medians, datetime.date(2026, 11, 9), doc["window"]) == 6.33


def test_time_at_the_wip_limit_and_blocked_flow(board, stream):
    # Information and Knowledge of Collaboration hold one card each (WIP limit 1).
    # A: enters Data 2 Nov 00:00; -> Knowledge 3 Nov 00:00 (Knowledge full).
    # B: enters Data 3 Nov 00:00; -> Information 4 Nov 00:00 (Information full; B waits
    #    there while Knowledge is full).
    # A: -> Wisdom 6 Nov 00:00 (Knowledge has room); B: -> Knowledge 6 Nov 12:00 (full
    #    again); B: -> Wisdom 7 Nov 00:00.
    columns = {
        column.name: column
        for column in Column.objects.filter(cycle__value_stream=stream, cycle__order=1)
    }
    Column.objects.filter(pk__in=[columns["Information"].pk, columns["Knowledge"].pk]).update(
        wip_limit=1
    )
    Column.objects.filter(cycle__value_stream=stream).exclude(
        pk__in=[columns["Information"].pk, columns["Knowledge"].pk]
    ).update(wip_limit=None)
    board.enter("A", None, 0, nov(2, 0))
    board.move("A", "Knowledge", nov(3, 0))
    board.enter("B", None, 0, nov(3, 0))
    board.move("B", "Information", nov(4, 0))
    board.move("A", "Wisdom", nov(6, 0))
    board.move("B", "Knowledge", nov(6, 12))
    board.move("B", "Wisdom", nov(7, 0))
    doc = document(board.stream)
    # The window runs from Monday 24 Aug 00:00 to NOW (18 Nov 15:00): 86.625 days.
    window_days = Fraction(86 * 24 + 15, 24)
    flow = {column["name"]: column["flow"] for column in doc["columns"][:4]}
    # Knowledge full 3 Nov 00:00 -> 6 Nov 00:00 and 6 Nov 12:00 -> 7 Nov 00:00: 3.5 days;
    # Wisdom (after it) has no limit, so it was never blocked.
    assert flow["Knowledge"]["at_limit_share"] == rounded(Fraction(7, 2) / window_days, 4)
    assert flow["Knowledge"]["blocked_share"] == 0
    # Information full 4 Nov 00:00 -> 6 Nov 12:00 (2.5 days), of which 2 days while
    # Knowledge was full too.
    assert flow["Information"]["at_limit_share"] == rounded(Fraction(5, 2) / window_days, 4)
    assert flow["Information"]["blocked_share"] == rounded(2 / window_days, 4)
    # B waited in Information 2 days because Knowledge was full: charged to Knowledge.
    assert (flow["Knowledge"]["waited_cards"], flow["Knowledge"]["waited_days_mean"]) == (1, 2.0)
    assert flow["Information"]["waited_cards"] == 0
    # Time-weighted WIP of Information: 2.5 card-days over the window.
    assert flow["Information"]["time_weighted_wip"] == rounded(Fraction(5, 2) / window_days, 3)
    # Data has no limit: no share at its limit.
    assert flow["Data"]["at_limit_share"] is None


def test_a_visit_s_length_against_the_cards_it_found_ahead(board):
    # A, B, C move into Information at 2 Nov 00:00, 01:00 and 02:00, finding 0, 1 and 2
    # cards there, and leave after 1 day, 2 days + 1 h and 3 days + 2 h: every card found
    # ahead adds 25 hours (90,000 s), exactly. Slope 90,000 s = 1.0417 days per card
    # ahead, correlation 1; 3 visits over the window's 86.625 days: utilisation 3 /
    # 86.625 x 1.0417.
    for offset, key in enumerate("ABC"):
        board.enter(key, None, 0, nov(1, offset))
        board.move(key, "Information", nov(2, offset))
    board.move("A", "Knowledge", nov(3, 0))
    board.move("B", "Knowledge", nov(4, 2))
    board.move("C", "Knowledge", nov(5, 4))
    doc = document(board.stream)
    flow = next(column for column in doc["columns"] if column["name"] == "Information")["flow"]
    per_card = Fraction(90_000, 86_400)
    assert flow["days_per_card_ahead"] == rounded(per_card, 4)
    assert flow["queue_correlation"] == 1.0
    window_days = Fraction(86 * 24 + 15, 24)
    assert flow["utilisation"] == rounded(3 / window_days * per_card, 3)
    # Data: each stayed exactly one day whatever it found: no queue.
    data = next(column for column in doc["columns"] if column["name"] == "Data")["flow"]
    assert data["days_per_card_ahead"] is None  # no spread in the visits' lengths


def test_a_new_time_zone_refolds_the_stream_instead_of_mixing_days(board, referral, settings):
    # X is won on Sunday 8 Nov 20:00 UTC, folded in UTC (the week of 2 Nov); then the
    # zone becomes Asia/Tokyo (Monday 9 Nov 05:00 there) and X is reopened: taking the
    # win back from a Tokyo day it was never counted on would leave -1 and +1.
    board.enter("X", referral, 100, nov(2))
    board.close("X", Outcome.WON, nov(8, 20))
    stream_metrics_advance(stream_id=board.stream.pk, summarize=False)
    settings.TIME_ZONE = "Asia/Tokyo"
    board.reopen("X", nov(10))
    doc = document(board.stream)
    stream = doc["stream"]
    assert stream["won_weekly"]["values"] == [0] * 12
    assert stream["lost_weekly"]["values"] == [0] * 12
    assert all(
        value >= 0 for column in doc["columns"] for value in column["departures_weekly"]["values"]
    )
    progress = MetricsProgress.objects.get(value_stream=board.stream)
    assert progress.folded_layout == Fold.for_stream(board.stream.pk).layout
    stream_metrics_rebuild(stream_id=board.stream.pk)
    assert document(board.stream) == doc


def test_a_column_added_before_the_others_refolds_the_stream(board, stream):
    # A goes Data -> Information -> Knowledge and is folded; then a column "Leads" is
    # added before Data (as the cycle's column inline in the admin allows): the columns
    # reached are kept by position in the cycle, so the stream is folded again.
    board.enter("A", None, 0, nov(2))
    board.move("A", "Information", nov(3))
    board.move("A", "Knowledge", nov(4))
    stream_metrics_advance(stream_id=stream.pk, summarize=False)
    data = Column.objects.get(cycle__value_stream=stream, cycle__order=1, name="Data")
    Column.objects.create(
        cycle=data.cycle, name="Leads", order=0, knowledge_level=data.knowledge_level
    )
    assert stream.pk in streams_lagging(), "the sweeper picks it up even without a move"
    board.columns[(COLLABORATION, "Leads")] = Column.objects.get(name="Leads", cycle=data.cycle)
    leads = board.column(COLLABORATION, "Leads")
    card_create(cycle_id=leads.cycle_id, actor=as_actor(board.actor), person_name="C", at=nov(5))
    doc = document(stream)
    reached = [step["reached"] for step in cycle_doc(doc)["conversion"]["all"][:5]]
    assert reached == [1, 1, 1, 1, 0]  # Leads C; Data, Information, Knowledge A; Wisdom
    assert stream.pk not in streams_lagging()


def test_a_forecast_samples_each_won_deal_once_on_the_day_of_its_final_win(board, referral):
    # The example again: X won 4 Nov, reopened 5 Nov, won again 10 Nov; Y won
    # 6 Nov. The 14 full days before NOW (18 Nov) run 4-17 Nov: wins on 6 and 10 Nov.
    board.enter("X", referral, 1000, nov(2))
    board.enter("Y", referral, 500, nov(2))
    board.close("X", Outcome.WON, nov(4))
    board.reopen("X", nov(5))
    board.close("Y", Outcome.WON, nov(6))
    board.close("X", Outcome.WON, nov(10))
    stream_metrics_advance(stream_id=board.stream.pk, summarize=False)
    history = daily_won(MetricsQuery(stream=board.stream, now=NOW), days=14)
    assert history == [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    # Two deals in 14 days, a week ahead: P(none) = (12/14)^7 = 0.34, P(at most one) =
    # 0.74, so at 50% confidence at least one.
    assert how_many(history, days=7, seed=1).at_least[50] == 1
