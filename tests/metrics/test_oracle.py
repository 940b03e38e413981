"""An oracle for the metrics document: a small stream driven by hand-written events,
with every expected number worked out by hand from docs/metrics.md (not by the code).

The stream is the default one (3 cycles x Data, Information, Knowledge, Wisdom). In
the comments below, D1 I1 K1 W1 are Collaboration's columns and D2 I2 K2 W2 are
Sales/Buying's. Every event happens at 09:00 UTC on the day named; ``NOW`` is
Wednesday 2025-06-11 15:00 UTC, so every age ends in .25 days and no hand-rounded
number sits on a rounding tie.

The window is the 12 full ISO weeks before NOW's week (Mondays 2025-03-17 ...
2025-06-02) and NOW's week so far (Monday 2025-06-09 to Wednesday 2025-06-11, 3 days),
so it starts on 2025-03-17 and holds 87 days (Mar 17-31: 15, Apr: 30, May: 31, Jun 1-11:
11), or 86.625 days to NOW. All events fall inside it. Weekly series hold the 12 full
weeks (index 0 = Mar 17, 3 = Apr 7, 4 = Apr 14, 5 = Apr 21, 6 = Apr 28, 7 = May 5,
8 = May 12, 9 = May 19, 10 = May 26, 11 = Jun 2) and ``so_far`` (the week of Jun 9).

The counting rules: a card counts once, by its final state (B's loss on Apr 15 was
taken back by its reopen on Apr 22); elapsed times run from the first start to the
final finish; a card counts under the channel it arrived through.
"""

from __future__ import annotations

import datetime
from fractions import Fraction

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from boards.models import Column, ColumnSplit, Outcome
from boards.services import (
    value_stream_create,
)
from metrics.selectors import MetricsQuery, cumulative_flow, stream_metrics_compute
from metrics.services import stream_metrics_advance, stream_metrics_rebuild
from tests.metrics.scripted import Board
from tests.support import COLLABORATION, REPEAT, SALES, TEST_SYSTEM
from vsm.models import Channel, ChannelKind

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
NOW = datetime.datetime(2025, 6, 11, 15, 0, tzinfo=UTC)

COLUMN_NAMES = ("Data", "Information", "Knowledge", "Wisdom")
WEEKS = [
    "2025-03-17",
    "2025-03-24",
    "2025-03-31",
    "2025-04-07",
    "2025-04-14",
    "2025-04-21",
    "2025-04-28",
    "2025-05-05",
    "2025-05-12",
    "2025-05-19",
    "2025-05-26",
    "2025-06-02",
]
EMPTY_DISTRIBUTION = {
    "count": 0,
    "p50": None,
    "p70": None,
    "p85": None,
    "p95": None,
    "mean": None,
    "abandoned": 0,
}
WINDOW_DAYS_TO_NOW = Fraction(86 * 24 + 15, 24)


def on(month: int, day: int, hour: int = 9) -> datetime.datetime:
    return datetime.datetime(2025, month, day, hour, tzinfo=UTC)


def rounded(exact, places: int):
    """The document rounds; this accepts exactly the values the hand-computed ``exact``
    (a Fraction or an int) may round to at ``places`` decimals."""
    return pytest.approx(float(exact), abs=0.5 * 10**-places + 1e-9)


def dist(values_days: list, mean, abandoned: int = 0) -> dict:
    """A distribution worked out by hand: nearest-rank p50/p70/p85/p95 of the sorted
    values (rank = ceil(p/100 x n)), their count and the exact mean."""
    ordered = sorted(values_days)
    n = len(ordered)
    ranks = {50: -(-50 * n // 100), 70: -(-70 * n // 100), 85: -(-85 * n // 100)}
    ranks[95] = -(-95 * n // 100)
    return {
        "count": n,
        **{f"p{p}": float(ordered[rank - 1]) for p, rank in ranks.items()},
        "mean": rounded(mean, 2),
        "abandoned": abandoned,
    }


@pytest.fixture(scope="module")
def board(django_db_setup, django_db_blocker):
    """Six prospects, A-F. The script, in time order (09:00 UTC each):

    A (Referral, 400): Apr 7 enter D1; Apr 9 -> I1; Apr 14 -> K1; Apr 16 -> I1
        (backwards: a second visit to I1); Apr 17 -> K1 (second visit to K1);
        Apr 21 -> W1; Apr 23 handoff -> D2; Apr 28 -> I2; May 5 won (in I2).
    B (Referral, 500): Apr 8 enter D1; Apr 10 -> I1; Apr 15 lost (in I1);
        Apr 22 reopen (in I1); Apr 24 -> K1; Apr 25 -> W1; Apr 29 handoff -> D2; open.
    C (Web form, 2000): Apr 14 enter D1; Apr 15 -> I1; Apr 18 -> K1; May 2 won (in
        K1); May 6 its value is edited to 9999 (no event: past numbers keep 2000).
    D (Web form, 300): May 12 enter D1; May 15 its channel is edited to Referral;
        May 19 -> I1 (this event records Referral); open.
    E (Referral, 700): May 26 enter D1; May 28 lost (in D1).
    F (Web form, 100): Jun 2 enter D1; Jun 3 -> I1; Jun 9 -> D1 (backwards); open.

    Collaboration's Knowledge is the "doing" half and Wisdom the "done" half of a
    split step, so Collaboration has a flow efficiency. No WIP limit is reached.

    Built once for the module (the script is long) inside a transaction that is rolled
    back at the end; each test runs in a savepoint inside it and only reads.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield _script()
        transaction.set_rollback(True)


def _script() -> Board:
    manager = get_user_model().objects.create(username="oracle-manager")
    stream = value_stream_create(
        actor=TEST_SYSTEM,
        name="Oracle pumps",
        customer_market="Mid-sized manufacturers",
        manager=manager,
    )
    referral = Channel.objects.create(
        value_stream=stream, name="Referral", kind=ChannelKind.REFERRAL
    )
    web = Channel.objects.create(value_stream=stream, name="Web form", kind=ChannelKind.WEB_FORM)
    Column.objects.filter(cycle__value_stream=stream, cycle__name=COLLABORATION).filter(
        name="Knowledge"
    ).update(split=ColumnSplit.DOING)
    Column.objects.filter(cycle__value_stream=stream, cycle__name=COLLABORATION).filter(
        name="Wisdom"
    ).update(split=ColumnSplit.DONE)
    b = Board(stream, manager)
    b.enter("A", referral, 400, on(4, 7))
    b.enter("B", referral, 500, on(4, 8))
    b.move("A", "Information", on(4, 9))
    b.move("B", "Information", on(4, 10))
    b.move("A", "Knowledge", on(4, 14))
    b.enter("C", web, 2000, on(4, 14))
    b.close("B", Outcome.LOST, on(4, 15))
    b.move("C", "Information", on(4, 15))
    b.move("A", "Information", on(4, 16))
    b.move("A", "Knowledge", on(4, 17))
    b.move("C", "Knowledge", on(4, 18))
    b.move("A", "Wisdom", on(4, 21))
    b.reopen("B", on(4, 22))
    b.handoff("A", on(4, 23))
    b.move("B", "Knowledge", on(4, 24))
    b.move("B", "Wisdom", on(4, 25))
    b.move("A", "Information", on(4, 28))
    b.handoff("B", on(4, 29))
    b.close("C", Outcome.WON, on(5, 2))
    b.close("A", Outcome.WON, on(5, 5))
    stream_metrics_advance(stream_id=stream.pk)  # a fold mid-way: the numbers are incremental
    b.edit("C", value=9999, when=on(5, 6))
    b.enter("D", web, 300, on(5, 12))
    b.edit("D", channel=referral, when=on(5, 15))
    b.move("D", "Information", on(5, 19))
    b.enter("E", referral, 700, on(5, 26))
    b.close("E", Outcome.LOST, on(5, 28))
    b.enter("F", web, 100, on(6, 2))
    b.move("F", "Information", on(6, 3))
    b.move("F", "Data", on(6, 9))
    stream_metrics_advance(stream_id=stream.pk)
    b.channels = (referral, web)
    return b


@pytest.fixture
def channels(board) -> tuple[Channel, Channel]:
    return board.channels


@pytest.fixture
def document(board) -> dict:
    return compute(board.stream)


def compute(stream) -> dict:
    return stream_metrics_compute(MetricsQuery(stream=stream, now=NOW)).to_json()


def column_doc(document: dict, board: Board, cycle: str, name: str) -> dict:
    column_id = board.column(cycle, name).pk
    return next(doc for doc in document["columns"] if doc["id"] == column_id)


def cycle_doc(document: dict, board: Board, cycle: str) -> dict:
    return next(doc for doc in document["cycles"] if doc["name"] == cycle)


def test_window_is_twelve_full_iso_weeks_and_the_current_one_so_far(document):
    assert document["window"] == {
        "time_zone": "UTC",
        "weeks": WEEKS,
        "current_week": "2025-06-09",
        "current_week_days": 3,
        "start": "2025-03-17",
        "end": "2025-06-11",
        "days": 87,
    }


def test_column_arrivals_departures_and_wip_now(document, board):
    # Arrivals: enter/move/handoff into the column, reopen in it.
    # Departures: move/handoff out of it, won/lost in it.
    # D1 in : A B C D E F (enter) + F (Jun 9, back)               = 7
    #    out: A B C D F (-> I1) + E (lost)                         = 6   WIP 1 (F)
    # I1 in : A A(back) B C D F (moves) + B (reopen)               = 7
    #    out: A A C F(back) B (-> K1 / D1) + B (lost Apr 15)       = 6   WIP 1 (D)
    # K1 in : A A B C = 4; out: A(back) A(-> W1) B(-> W1) C(won) = 4   WIP 0
    # W1 in : A B = 2; out: A B (handoffs) = 2                          WIP 0
    # D2 in : A B (handoffs) = 2; out: A (-> I2) = 1                    WIP 1 (B)
    # I2 in : A = 1; out: A (won) = 1                                   WIP 0
    expected = {
        (COLLABORATION, "Data"): (7, 6, 1),
        (COLLABORATION, "Information"): (7, 6, 1),
        (COLLABORATION, "Knowledge"): (4, 4, 0),
        (COLLABORATION, "Wisdom"): (2, 2, 0),
        (SALES, "Data"): (2, 1, 1),
        (SALES, "Information"): (1, 1, 0),
    }
    for cycle in (COLLABORATION, SALES, REPEAT):
        for name in COLUMN_NAMES:
            doc = column_doc(document, board, cycle, name)
            got = (doc["arrivals_total"], doc["departures_total"], doc["wip_now"])
            assert got == expected.get((cycle, name), (0, 0, 0)), (cycle, name)
            assert doc["wip_at_window_start"] == 0, (cycle, name)
    assert [doc["wip_now"] for doc in document["cycles"]] == [2, 1, 0]


def test_time_in_column_percentiles(document, board):
    # I1 visits (each ended in the window):
    #   A Apr 9 -> Apr 14 (-> K1)   5 d     A Apr 16 -> Apr 17 (second visit)  1 d
    #   B Apr 10 -> Apr 15 (lost)   5 d     B Apr 22 (reopen) -> Apr 24        2 d
    #   C Apr 15 -> Apr 18          3 d     F Jun 3 -> Jun 9 (back to D1)      6 d
    #   (D is still in I1: no visit yet.)
    # Sorted 1 2 3 5 5 6, n = 6: p50 rank 3 = 3; p70 rank ceil(4.2) = 5 -> 5;
    # p85 rank ceil(5.1) = 6 -> 6; p95 rank 6 -> 6; mean 22/6 = 3.67.
    assert column_doc(document, board, COLLABORATION, "Information")["time_in_column"] == {
        "count": 6,
        "p50": 3.0,
        "p70": 5.0,
        "p85": 6.0,
        "p95": 6.0,
        "mean": rounded(Fraction(22, 6), 2),
        "abandoned": 0,
    }
    # D1: A 2, B 2, C 1, D 7 (May 12 -> 19), E 2 (lost), F 1 (F's second visit is open).
    # Sorted 1 1 2 2 2 7: p50 rank 3 = 2, p70 rank 5 = 2, p85 rank 6 = 7; mean 15/6.
    assert column_doc(document, board, COLLABORATION, "Data")["time_in_column"] == {
        "count": 6,
        "p50": 2.0,
        "p70": 2.0,
        "p85": 7.0,
        "p95": 7.0,
        "mean": 2.5,
        "abandoned": 0,
    }
    # K1: A Apr 14 -> 16 = 2, A Apr 17 -> 21 = 4, B Apr 24 -> 25 = 1, C Apr 18 -> May 2
    # (won) = 14. Sorted 1 2 4 14: p50 rank 2 = 2, p70 rank 3 = 4, p85 rank 4 = 14.
    assert column_doc(document, board, COLLABORATION, "Knowledge")["time_in_column"] == {
        "count": 4,
        "p50": 2.0,
        "p70": 4.0,
        "p85": 14.0,
        "p95": 14.0,
        "mean": 5.25,
        "abandoned": 0,
    }
    # W1: A Apr 21 -> 23 = 2, B Apr 25 -> 29 = 4. D2: A Apr 23 -> 28 = 5. I2: A 7.
    assert column_doc(document, board, COLLABORATION, "Wisdom")["time_in_column"] == dist([2, 4], 3)
    assert column_doc(document, board, SALES, "Data")["time_in_column"] == dist([5], 5)
    assert column_doc(document, board, SALES, "Information")["time_in_column"] == dist([7], 7)
    assert column_doc(document, board, SALES, "Knowledge")["time_in_column"] == EMPTY_DISTRIBUTION


def test_cycle_time_and_lead_time(document, board):
    # Collaboration cycle times, from the first start in the cycle (enter or handoff)
    # to the final finish (handoff or won); a reopen does not restart it:
    #   A Apr 7 -> Apr 23 (handoff; the backward move does not restart it)  16 d
    #   B Apr 8 -> Apr 29 (handoff): its loss on Apr 15 was taken back by
    #     its reopen on Apr 22, and the week off the board is inside          21 d
    #   C Apr 14 -> May 2 (won)                                             18 d
    #   E lost May 28: abandoned, counted beside the percentiles.
    # Sorted 16 18 21: p50 rank 2 = 18, p70 rank ceil(2.1) = 3 -> 21; mean 55/3.
    assert cycle_doc(document, board, COLLABORATION)["cycle_time"] == {
        "count": 3,
        "p50": 18.0,
        "p70": 21.0,
        "p85": 21.0,
        "p95": 21.0,
        "mean": rounded(Fraction(55, 3), 2),
        "abandoned": 1,
    }
    # Sales/Buying: A Apr 23 -> May 5 (won) 12 d; B is still in it.
    assert cycle_doc(document, board, SALES)["cycle_time"] == dist([12], 12)
    assert cycle_doc(document, board, REPEAT)["cycle_time"] == EMPTY_DISTRIBUTION
    # Lead times (first enter -> final won): C Apr 14 -> May 2 = 18, A Apr 7 -> May 5 =
    # 28. Sorted 18 28: p50 rank 1 = 18, p70 rank 2 = 28; mean 23. E (lost) abandoned.
    assert document["stream"]["lead_time"] == {
        "count": 2,
        "p50": 18.0,
        "p70": 28.0,
        "p85": 28.0,
        "p95": 28.0,
        "mean": 23.0,
        "abandoned": 1,
    }


def test_cycle_weekly_counts(document, board):
    # Collaboration arrivals (enter or handoff in; a reopen is not one): A B enter
    #   (wk 3), C (4), D (8), E (10), F (11).
    # departures (handoff out, final won or lost): A handoff Apr 23 (5), B handoff
    #   Apr 29 and C won May 2 (6), E lost May 28 (10). B's loss on Apr 15 was taken
    #   back by its reopen: not a departure, not a loss.
    assert cycle_doc(document, board, COLLABORATION)["arrivals_weekly"] == {
        "values": [0, 0, 0, 2, 1, 0, 0, 0, 1, 0, 1, 1],
        "so_far": 0,
    }
    assert cycle_doc(document, board, COLLABORATION)["departures_weekly"] == {
        "values": [0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 0],
        "so_far": 0,
    }
    assert cycle_doc(document, board, COLLABORATION)["won_weekly"]["values"] == [
        0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0
    ]  # fmt: skip
    assert cycle_doc(document, board, COLLABORATION)["lost_weekly"]["values"] == [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0
    ]  # fmt: skip
    # Sales/Buying: A in Apr 23 (5), B in Apr 29 (6); A won May 5 (7).
    sales = cycle_doc(document, board, SALES)
    assert sales["arrivals_weekly"]["values"] == [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    assert sales["departures_weekly"]["values"] == [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert sales["won_weekly"]["values"] == [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert sales["lost_weekly"] == {"values": [0] * 12, "so_far": 0}


def funnel(reached: list[int], moved_on: list[tuple[int, int] | None], cohort: int) -> list:
    """Steps worked out by hand: ``reached`` per step, and per step the (moved on past
    the step before, reached the step before) pair its next-step rate divides."""
    steps = ["Data", "Information", "Knowledge", "Wisdom", "next cycle", "won"]
    rows = []
    for step, count, pair in zip(steps, reached, moved_on, strict=True):
        rows.append(
            {
                "step": step,
                "reached": count,
                "cumulative": rounded(Fraction(count, cohort), 4) if cohort else None,
                "next_step": rounded(Fraction(*pair), 4) if pair and pair[1] else None,
            }
        )
    return rows


def test_conversion_of_the_first_cycle(document, board, channels):
    referral, web = channels
    # The cohort: the cards that entered Collaboration in the window, A-F (6).
    # Reached (at least once): Data 6; Information A B C D F = 5; Knowledge A B C = 3;
    # Wisdom A B = 2; next cycle (handed on) A B = 2; won (final state) C = 1.
    # Next step = of the cards that reached the step before, those that moved on past
    # it (to this step or any later one, the next cycle or won):
    #   Data: 6 of the cohort 6. Information: of 6 in Data, A B C D F moved on = 5/6.
    #   Knowledge: of 5 in Information, A B C = 3/5. Wisdom: of A B C in Knowledge, all
    #   moved on (A B to Wisdom, C won) = 3/3. Exits, of the 2 in Wisdom (A B): next
    #   cycle 2/2, won 0/2.
    conversion = cycle_doc(document, board, COLLABORATION)["conversion"]
    assert conversion["cohort"] == 6
    assert conversion["all"] == funnel(
        [6, 5, 3, 2, 2, 1], [(6, 6), (5, 6), (3, 5), (3, 3), (2, 2), (0, 2)], 6
    )
    # Per channel, each card under the channel it arrived through (D arrived through
    # Web form; its later edit to Referral does not move it):
    #   Referral A B E: Data 3, Information A B 2, Knowledge 2, Wisdom 2, next 2, won 0.
    #   Web form C D F: Data 3, Information 3, Knowledge C 1, Wisdom 0, next 0, won C 1;
    #   of C in Knowledge, C moved on (won) = 1/1; nobody reached Wisdom: no exit rate.
    assert set(conversion["by_channel"]) == {str(referral.pk), str(web.pk)}
    assert conversion["by_channel"][str(referral.pk)] == funnel(
        [3, 2, 2, 2, 2, 0], [(3, 3), (2, 3), (2, 2), (2, 2), (2, 2), (0, 2)], 3
    )
    assert conversion["by_channel"][str(web.pk)] == funnel(
        [3, 3, 1, 0, 0, 1], [(3, 3), (3, 3), (1, 3), (1, 1), None, None], 3
    )
    # Sales/Buying's cohort: A, B. Data 2, Information A 1, none further, won A 1.
    # Information: of 2 in Data, A moved on = 1/2; Knowledge: of A in Information, A
    # moved on (won) = 1/1; Wisdom: nobody reached Knowledge.
    assert cycle_doc(document, board, SALES)["conversion"]["all"] == funnel(
        [2, 1, 0, 0, 0, 1], [(2, 2), (1, 2), (1, 1), None, None, None], 2
    )


def test_channel_pareto(document, channels):
    referral, web = channels
    # Per channel a card arrived through, over the window, each card by its final state:
    #   Web form: arrivals C D F = 3; won C (value on the won event: 2000; the later
    #     edit to 9999 does not count); lost 0; win rate won / (won + lost) = 1/1.
    #   Referral: arrivals A B E = 3; won A (400); lost E = 1 (B's loss was taken back
    #     by its reopen); win rate 1/2.
    # Sorted by won value: Web form 2000, Referral 400; total 2400.
    #   Web form: share before 0 < 80% -> in the set; cumulative 2000/2400 = 0.8333.
    #   Referral: share before 0.8333 >= 80% -> out; cumulative 1.0.
    assert document["channels"] == {
        "rows": [
            {
                "channel_id": web.pk,
                "name": "Web form",
                "arrivals": 3,
                "won": 1,
                "lost": 0,
                "won_value": "2000.00",
                "win_rate": 1.0,
                "cumulative_share": rounded(Fraction(2000, 2400), 4),
                "in_pareto_80": True,
            },
            {
                "channel_id": referral.pk,
                "name": "Referral",
                "arrivals": 3,
                "won": 1,
                "lost": 1,
                "won_value": "400.00",
                "win_rate": 0.5,
                "cumulative_share": 1.0,
                "in_pareto_80": False,
            },
        ],
        "pareto_80": ["Web form"],
    }


def test_stream_weekly_flow_demand_and_xmr(document):
    stream = document["stream"]
    # Arrivals (enter): A B wk 3, C wk 4, D wk 8, E wk 10, F wk 11; none so far.
    assert stream["arrivals_weekly"] == {
        "values": [0, 0, 0, 2, 1, 0, 0, 0, 1, 0, 1, 1],
        "so_far": 0,
    }
    # Won: C May 2 (wk 6), A May 5 (wk 7). Lost: E May 28 (wk 10) only.
    assert stream["won_weekly"]["values"] == [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert stream["won_value_weekly"]["values"][6:8] == [2000.0, 400.0]
    assert stream["lost_weekly"]["values"] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    # Win rate = won / (won + lost) of the week; a week in which nothing closed has no
    # rate (None), not 0%.
    assert stream["win_rate_weekly"] == {
        "values": [None, None, None, None, None, None, 1, 1, None, None, 0, None],
        "so_far": None,
    }
    # Means over the 12 full weeks: demand 6/12 = 0.5; won 2/12; closed 3/12.
    assert stream["demand_vs_capacity"] == {
        "arrivals_per_week": 0.5,
        "won_per_week": rounded(Fraction(2, 12), 2),
        "departures_per_week": 0.25,
    }
    # XmR of weekly won: mean 2/12; moving ranges 0 0 0 0 0 1 0 1 0 0 0 -> 2/11;
    # upper 1/6 + 2.66 x 2/11 = 0.6503; lower max(0, negative) = 0; moving-range upper
    # limit 3.268 x 2/11 = 0.5942.
    # Signals: weeks 6 and 7 (1 won each) above the upper limit; the moving ranges of 1
    # into week 6 and into week 8 above 0.5942; no run of eight (six weeks below the
    # mean, two above, four below).
    won_xmr = stream["xmr"]["won_weekly"]
    assert won_xmr["mean"] == rounded(Fraction(2, 12), 2)
    assert won_xmr["average_moving_range"] == rounded(Fraction(2, 11), 2)
    assert won_xmr["upper"] == rounded(Fraction(1, 6) + Fraction(266, 100) * Fraction(2, 11), 2)
    assert won_xmr["lower"] == 0
    assert won_xmr["moving_range_upper"] == rounded(Fraction(3268, 1000) * Fraction(2, 11), 2)
    assert [(s["index"], s["rule"]) for s in won_xmr["signals"]] == [
        (6, "above the upper limit"),
        (6, "moving range above its upper limit"),
        (7, "above the upper limit"),
        (8, "moving range above its upper limit"),
    ]
    # XmR of the win rate skips the weeks with nothing closed: points 1 1 0 (weeks 6 7
    # 10). Mean 2/3; moving ranges 0 1 -> 1/2; upper 2/3 + 1.33 = 2.0, capped at 1 (a
    # rate); lower 0; moving range upper 1.634. No signal.
    assert stream["xmr"]["win_rate_weekly"] == {
        "mean": rounded(Fraction(2, 3), 2),
        "upper": 1.0,
        "lower": 0,
        "average_moving_range": 0.5,
        "moving_range_upper": rounded(Fraction(1634, 1000), 2),
        "signals": [],
    }
    # Weekly median lead time: C (won wk 6) 18 d, A (won wk 7) 28 d; the other weeks
    # have no lead time and are skipped. Mean 23; moving range 10; upper 23 + 26.6 =
    # 49.6; lower max(0, 23 - 26.6) = 0; moving range upper 32.68.
    assert stream["xmr"]["lead_time_median_weekly"] == {
        "mean": 23.0,
        "upper": 49.6,
        "lower": 0,
        "average_moving_range": 10.0,
        "moving_range_upper": 32.68,
        "signals": [],
    }


def test_cumulative_flow_on_given_days(board):
    query = MetricsQuery(stream=board.stream, now=NOW)
    flow = cumulative_flow(query, start=datetime.date(2025, 4, 7))
    assert flow["days"][0] == "2025-04-07" and flow["days"][-1] == "2025-06-11"
    assert len(flow["days"]) == 66  # Apr 7-30: 24, May: 31, Jun 1-11: 11

    def at_day(cycle: str, name: str, day: str) -> tuple[int, int, int]:
        column_id = board.column(cycle, name).pk
        series = next(c for c in flow["columns"] if c["id"] == column_id)
        index = flow["days"].index(day)
        return series["arrived"][index], series["departed"][index], series["wip"][index]

    # The cumulative flow is the board's history: a card that was lost and reopened
    # left its column and came back (B, Apr 15 and Apr 22).
    # End of Apr 15: D1 in A B C, out A B C -> 0. I1 in A B C, out A(-> K1) B(lost)
    # -> 1 (C). K1 in A -> 1.
    assert at_day(COLLABORATION, "Data", "2025-04-15") == (3, 3, 0)
    assert at_day(COLLABORATION, "Information", "2025-04-15") == (3, 2, 1)
    assert at_day(COLLABORATION, "Knowledge", "2025-04-15") == (1, 0, 1)
    # Apr 16: A goes back K1 -> I1: I1 holds A and C, K1 is empty.
    assert at_day(COLLABORATION, "Information", "2025-04-16") == (4, 2, 2)
    assert at_day(COLLABORATION, "Knowledge", "2025-04-16") == (1, 1, 0)
    # Apr 23: I1 in A A B C B(reopen) = 5, out A A B(lost) C = 4 -> 1 (B).
    # K1 in A A C = 3, out A A = 2 -> 1 (C). W1 in A, out A (handoff) -> 0. D2 holds A.
    assert at_day(COLLABORATION, "Information", "2025-04-23") == (5, 4, 1)
    assert at_day(COLLABORATION, "Knowledge", "2025-04-23") == (3, 2, 1)
    assert at_day(COLLABORATION, "Wisdom", "2025-04-23") == (1, 1, 0)
    assert at_day(SALES, "Data", "2025-04-23") == (1, 0, 1)
    # May 20: D1 in A B C D, out A B C D -> 0; I1 in 6, out 5 -> 1 (D);
    # D2 in A B, out A -> 1 (B); I2 in A, out A (won) -> 0.
    assert at_day(COLLABORATION, "Data", "2025-05-20") == (4, 4, 0)
    assert at_day(COLLABORATION, "Information", "2025-05-20") == (6, 5, 1)
    assert at_day(SALES, "Data", "2025-05-20") == (2, 1, 1)
    assert at_day(SALES, "Information", "2025-05-20") == (1, 1, 0)
    # A day seen from a window that starts later carries the earlier totals in.
    late = cumulative_flow(query, start=datetime.date(2025, 5, 20), end=datetime.date(2025, 5, 20))
    i1 = next(
        c for c in late["columns"] if c["id"] == board.column(COLLABORATION, "Information").pk
    )
    assert (i1["arrived"], i1["departed"], i1["wip"]) == ([6], [5], [1])


def test_aging_flags(document, board):
    # Open cards: B (Sales/Buying, D2), D (Collaboration, I1), F (Collaboration, D1).
    # Cycle p85: Collaboration 21 d, Sales/Buying 12 d.
    # B entered Sales/Buying Apr 29 09:00: age 43.25 d > 12 -> flagged (column too).
    # D entered Collaboration May 12 09:00: 30.25 d > 21 -> flagged; in I1 since
    #   May 19 09:00: 23.25 d.
    # F entered Collaboration Jun 2 09:00: 9.25 d <= 21 -> not flagged.
    aging = document["aging"]
    assert aging["open_cards"] == 3
    assert aging["over_cycle_p85_count"] == 2
    assert aging["over_cycle_p85"] == [
        {
            "card_id": board.cards["B"],
            "column_id": board.column(SALES, "Data").pk,
            "cycle_id": board.column(SALES, "Data").cycle_id,
            "age_in_cycle_days": 43.25,
            "age_in_column_days": 43.25,
            "cycle_p85_days": 12.0,
        },
        {
            "card_id": board.cards["D"],
            "column_id": board.column(COLLABORATION, "Information").pk,
            "cycle_id": board.column(COLLABORATION, "Information").cycle_id,
            "age_in_cycle_days": 30.25,
            "age_in_column_days": 23.25,
            "cycle_p85_days": 21.0,
        },
    ]
    # Median age in column of open cards: D1 F (Jun 9 09:00) 2.25; I1 D 23.25; D2 B 43.25.
    ages = {
        (cycle, name): column_doc(document, board, cycle, name)["median_age_days"]
        for cycle in (COLLABORATION, SALES)
        for name in COLUMN_NAMES
    }
    assert ages == {
        (COLLABORATION, "Data"): 2.25,
        (COLLABORATION, "Information"): 23.25,
        (COLLABORATION, "Knowledge"): None,
        (COLLABORATION, "Wisdom"): None,
        (SALES, "Data"): 43.25,
        (SALES, "Information"): None,
        (SALES, "Knowledge"): None,
        (SALES, "Wisdom"): None,
    }


def test_littles_law_inputs_for_information(document, board):
    doc = column_doc(document, board, COLLABORATION, "Information")
    # End-of-day WIP of I1 over the 87 window days:
    #   Mar 17-Apr 8: 0 | Apr 9: 1 | Apr 10-13: 2 x 4 = 8 | Apr 14: 1 | Apr 15: 1
    #   (C in, B lost) | Apr 16: 2 | Apr 17: 1 | Apr 18-21: 0 | Apr 22-23: 1 x 2 = 2
    #   | Apr 24-May 18: 0 | May 19-Jun 2: 1 x 15 = 15 | Jun 3-8: 2 x 6 = 12
    #   | Jun 9-11: 1 x 3 = 3.  Sum 46 -> L = 46/87.
    average_wip = Fraction(46, 87)
    # Departures in the window: 6 -> lambda = 6/87 per day; W = mean visit 22/6 d.
    # lambda W = 22/87; gap = |46 - 22| / 46 = 12/23 = 0.5217 > 0.25.
    throughput_x_time = Fraction(6, 87) * Fraction(22, 6)
    gap = abs(average_wip - throughput_x_time) / max(average_wip, throughput_x_time)
    assert doc["average_wip"] == rounded(average_wip, 2)
    assert sum(doc["departures_weekly"]["values"]) + doc["departures_weekly"]["so_far"] == 6
    assert doc["littles_law"] == {
        "checked": True,
        "reason": None,
        "average_wip": rounded(average_wip, 2),
        "throughput_x_time": rounded(throughput_x_time, 2),
        "relative_gap": rounded(gap, 3),
        "disagrees": True,
    }
    # A column with no finished visit is not checked.
    knowledge = column_doc(document, board, SALES, "Knowledge")
    assert knowledge["littles_law"]["checked"] is False


def test_flow_over_time_of_information(document, board):
    # I1's WIP over time (09:00 to 09:00 unless said): Apr 9-10: 1 | Apr 10-14: 2 (4 d)
    # | Apr 14-15: 1 | Apr 15-16: 1 (B lost, C in) | Apr 16-17: 2 | Apr 17-18: 1 |
    # Apr 22-24: 1 (2 d) | May 19-Jun 3: 1 (15 d) | Jun 3-9: 2 (6 d) | Jun 9 09:00 -
    # NOW Jun 11 15:00: 1 (2.25 d).
    # WIP x days = 1 + 8 + 1 + 1 + 2 + 1 + 2 + 15 + 12 + 2.25 = 45.25;
    # WIP^2 x days = 1 + 16 + 1 + 1 + 4 + 1 + 2 + 15 + 24 + 2.25 = 67.25.
    # Over the 86.625 days from the window's start to NOW: mean 45.25 / 86.625; the
    # dispersion (variance / mean) = 67.25 / 45.25 - 45.25 / 86.625.
    flow = column_doc(document, board, COLLABORATION, "Information")["flow"]
    mean = Fraction(4525, 100) / WINDOW_DAYS_TO_NOW
    assert flow["time_weighted_wip"] == rounded(mean, 3)
    assert flow["wip_dispersion"] == rounded(Fraction(6725, 4525) - mean, 3)
    # Its WIP limit (the default stream's) was never reached: nothing waited on it.
    assert flow["at_limit_share"] == 0
    assert flow["blocked_share"] == 0
    assert (flow["waited_cards"], flow["waited_days_mean"]) == (0, None)


def test_flow_efficiency(document, board):
    # Collaboration splits Knowledge (doing) / Wisdom (done). Visits ended in window:
    # active (not done): D1 15 + I1 22 + K1 21 = 58 d; waiting (W1): 2 + 4 = 6 d.
    assert cycle_doc(document, board, COLLABORATION)["flow_efficiency"] == {
        "active_days": 58.0,
        "waiting_days": 6.0,
        "efficiency": rounded(Fraction(58, 64), 4),
    }
    # Sales/Buying has no split column: no flow efficiency.
    assert cycle_doc(document, board, SALES)["flow_efficiency"] is None


def test_constraint_ranks_every_column_by_its_score(document, board):
    # No column reached its WIP limit, so no column holds the flow at its limit: the
    # ranking rests on the queues' dispersion. Its inputs are checked above (flow over
    # time); here: every column is ranked once, best first, and the named one leads.
    constraint = document["constraint"]
    ranking = constraint["ranking"]
    assert sorted(entry["column_id"] for entry in ranking) == sorted(
        column.pk for column in board.columns.values()
    )
    scores = [entry["score"] for entry in ranking]
    assert scores == sorted(scores, reverse=True)
    assert all(entry["limiting_share"] in (0, None) for entry in ranking)
    if constraint["column_id"] is not None:
        assert constraint["column_id"] == ranking[0]["column_id"]
        assert constraint["evidence"]


def test_a_rebuild_from_the_log_gives_the_same_document(board):
    # The board was folded in two runs (mid-script and at the end); a rebuild from
    # the first event changes nothing.
    before = compute(board.stream)
    stream_metrics_rebuild(stream_id=board.stream.pk)
    after = compute(board.stream)
    assert before == after
    assert after["channels"]["pareto_80"] == ["Web form"]


# A card won, reopened and won again: conversion counts cards, not wins.


def test_conversion_counts_a_card_won_twice_once(stream, manager):
    b = Board(stream, manager)
    partner = Channel.objects.create(value_stream=stream, name="Partner")
    # P (no channel): Apr 7 enter D1; Apr 8 -> I1; Apr 10 won; Apr 14 reopen (in I1);
    #   Apr 15 its channel is edited to Partner; Apr 15 12:00 -> K1; Apr 16 won again.
    # Q (no channel): Apr 7 enter D1; Apr 9 lost.
    b.enter("P", None, 100, on(4, 7))
    b.enter("Q", None, 100, on(4, 7))
    b.move("P", "Information", on(4, 8))
    b.close("Q", Outcome.LOST, on(4, 9))
    b.close("P", Outcome.WON, on(4, 10))
    b.reopen("P", on(4, 14))
    b.edit("P", channel=partner, when=on(4, 15))
    b.move("P", "Knowledge", on(4, 15, 12))
    b.close("P", Outcome.WON, on(4, 16))
    stream_metrics_advance(stream_id=stream.pk)
    document = compute(stream)
    collaboration = cycle_doc(document, b, COLLABORATION)
    # Cohort P Q; reached Data 2, Information P 1, Knowledge P 1; won (final) P: 1 of 2.
    won = collaboration["conversion"]["all"][-1]
    assert (won["step"], won["reached"], won["cumulative"]) == ("won", 1, 0.5)
    # Both arrived without a channel: P's edit to Partner does not move it.
    by_channel = collaboration["conversion"]["by_channel"]
    assert set(by_channel) == {"0"}
    assert [row["reached"] for row in by_channel["0"]] == [2, 1, 1, 0, 0, 1]
    # Cycle and lead time from the first start to the final win: Apr 7 -> Apr 16 = 9 d
    # (the first win was taken back by the reopen); Q's loss is abandoned, beside them.
    assert collaboration["cycle_time"] == dist([9], 9, abandoned=1)
    assert document["stream"]["lead_time"] == dist([9], 9, abandoned=1)
    # Throughput: one win, in the week of its final win (Apr 14, index 4).
    assert document["stream"]["won_weekly"]["values"] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]


def test_next_cycle_step_counts_only_cards_from_this_cycle(stream, manager):
    b = Board(stream, manager)
    # R: Apr 7 enter D1; Apr 8 -> W1; Apr 9 handoff -> D2.
    # S: Apr 7 enter D1 (stays).
    # T: Apr 10 enters Sales/Buying directly (its first column, D2): it never was in
    #    Collaboration, so it is not in Collaboration's funnel.
    b.enter("R", None, 0, on(4, 7))
    b.enter("S", None, 0, on(4, 7))
    b.move("R", "Wisdom", on(4, 8))
    b.handoff("R", on(4, 9))
    b.enter("T", None, 0, on(4, 10), cycle=SALES)
    stream_metrics_advance(stream_id=stream.pk)
    document = compute(stream)
    # Collaboration: Data R S = 2, Information 0, Knowledge 0, Wisdom R = 1,
    # next cycle R = 1 (of the 2 that reached Data: 0.5), won 0.
    conversion = cycle_doc(document, b, COLLABORATION)["conversion"]
    assert [row["reached"] for row in conversion["all"]] == [2, 0, 0, 1, 1, 0]
    assert conversion["all"][4]["cumulative"] == 0.5
    assert conversion["all"][4]["next_step"] == 1.0  # R, the one in Wisdom, went on
    assert [row["reached"] for row in conversion["by_channel"]["0"]] == [2, 0, 0, 1, 1, 0]
    # Sales/Buying's own funnel starts with both cards that reached its Data: R and T.
    sales = cycle_doc(document, b, SALES)["conversion"]
    assert sales["cohort"] == 2
    assert sales["all"][0]["reached"] == 2
