"""The forecasts panel: its answers on hand-built histories (deals entered and won through
the board's services, folded as the worker does), its form, and its HTTP endpoint.

Every event is at 09:00 UTC unless said otherwise (the tests' time zone is UTC).
``NOW`` is Wednesday 18 November 2026, 15:00 UTC: "today" is 18 Nov, and a history of
N days runs to yesterday, 17 Nov. A forecast to a date D counts D - today + 1 days,
today included (the history ends yesterday, so today is the first day ahead).
"""

from __future__ import annotations

import datetime

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date

from boards.models import Outcome
from metrics.forecasting import CONFIDENCES, MAX_DAYS, LevelRecord
from metrics.forms.forecast import MAX_ITEMS, ForecastForm
from metrics.selectors.forecast_panel import Accuracy, forecast_panel
from metrics.selectors.query import MetricsQuery
from metrics.services import stream_metrics_advance
from tests.metrics.scripted import Board
from tests.pages import element, has_element
from tests.support import COLLABORATION, logged_in
from vsm.models import Channel, ChannelKind

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
NOW = datetime.datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
TODAY = datetime.date(2026, 11, 18)
HTMX = {"HX-Request": "true"}


def at(day: datetime.date, hour: int = 9) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def nov(day: int) -> datetime.date:
    return datetime.date(2026, 11, day)


@pytest.fixture
def board(stream, manager) -> Board:
    return Board(stream, manager)


@pytest.fixture
def referral(stream) -> Channel:
    return Channel.objects.create(value_stream=stream, name="Referral", kind=ChannelKind.REFERRAL)


@pytest.fixture
def web(stream) -> Channel:
    return Channel.objects.create(value_stream=stream, name="Web form", kind=ChannelKind.WEB_FORM)


def win_daily(board: Board, channel, days: list[datetime.date]) -> None:
    """One deal a day: it enters at 09:00 and is won at 10:00 the same day."""
    for day in days:
        key = f"won {day.isoformat()}"
        board.enter(key, channel, 100, at(day))
        board.close(key, Outcome.WON, at(day, 10))


def fold(board: Board) -> None:
    stream_metrics_advance(stream_id=board.stream.pk, summarize=False)


def panel(board: Board, *, now=NOW, history_weeks=12, by=None, items=10, **filters):
    query = MetricsQuery(stream=board.stream, now=now, **filters)
    return forecast_panel(query, history_weeks=history_weeks, by=by or nov(30), items=items)


def span(first: datetime.date, days: int) -> list[datetime.date]:
    return [first + datetime.timedelta(days=n) for n in range(days)]


# The answers ------------------------------------------------------------------------


def test_one_deal_won_every_day_forecasts_one_a_day_at_every_confidence(board, referral):
    # A deal won on each of the 14 days 4-17 Nov. Every trial draws a 1 for every day
    # ahead: 18-30 Nov is 13 days, so at least 13 deals at every level; the 5th more
    # deal comes on the 5th day, 22 Nov.
    win_daily(board, referral, span(nov(4), 14))
    fold(board)
    result = panel(board, history_weeks=2, by=nov(30), items=5)

    assert [(level.confidence, level.value) for level in result.how_many.levels] == [
        (50, 13),
        (85, 13),
        (95, 13),
    ]
    assert result.how_many.sentence == (
        "By 30 Nov 2026: at least 13 deals won with 85% confidence (50%: 13, 95%: 13)."
    )
    assert result.how_many.days == 13
    assert [level.day for level in result.when.levels] == [nov(22)] * 3
    assert result.when.sentence == (
        "5 more deals won: by 22 Nov 2026 with 85% confidence "
        "(50%: by 22 Nov 2026, 95%: by 22 Nov 2026)."
    )
    history = result.history
    assert (history.first_day, history.last_day, history.days, history.won) == (
        nov(4),
        nov(17),
        14,
        14,
    )
    assert [(week.first_day, week.last_day, week.won) for week in history.weeks] == [
        (nov(4), nov(10), 7),
        (nov(11), nov(17), 7),
    ]
    assert history.per_week == 7.0


def test_days_before_the_stream_s_first_prospect_are_no_history(board, referral):
    # The same 14 winning days, asked with 12 weeks of history: the 70 days before 4 Nov
    # had no stream yet. Counted as days without a win they would dilute 1 a day to
    # 14 in 84 days; left out, the forecast stays at 1 a day.
    win_daily(board, referral, span(nov(4), 14))
    fold(board)
    result = panel(board, history_weeks=12, by=nov(30))

    assert result.history.days == 14
    assert result.history.shortened
    assert result.history.stream_started == nov(4)
    assert [level.value for level in result.how_many.levels] == [13, 13, 13]


def test_too_little_history_is_refused_with_the_reason(board, referral):
    # Wins on 9-17 Nov only: 9 days of history, under the two weeks a forecast needs.
    win_daily(board, referral, span(nov(9), 9))
    fold(board)
    result = panel(board)

    reason = "The history holds 9 days; a forecast needs at least 14 (two weeks)."
    assert result.how_many.refused == reason
    assert result.when.refused == reason
    assert result.how_many.levels == [] and result.when.levels == []
    assert result.how_many.sentence == f"No forecast: {reason}"


def test_a_goal_out_of_reach_says_not_within_two_years(board, referral):
    # One deal in the 14 days 4-17 Nov: 10,000 more take far longer than 730 days.
    board.enter("first", referral, 100, at(nov(4)))
    board.enter("won", referral, 100, at(nov(10)))
    board.close("won", Outcome.WON, at(nov(10), 10))
    fold(board)
    result = panel(board, history_weeks=2, items=MAX_ITEMS)

    assert [level.day for level in result.when.levels] == [None, None, None]
    assert f"not within {MAX_DAYS} days with 85% confidence" in result.when.sentence


def test_the_backtest_shortens_the_horizon_to_fit_its_checkpoints(board, referral):
    # Two weeks of history, by 30 Nov: 13 days ahead. A deal won every day from 26 Aug
    # (the stream's first) to 10 Nov, none in the last week (11-17 Nov): 84 days. Ten
    # checkpoints a week apart with 14 days before the first leave 84 - 14 - 63 = 7 days
    # ahead, not 13. Each forecasts 7 at every level (one a day before it); nine won 7
    # (held), the last (11-17 Nov) 0 (missed): 9 of 10 at every level.
    win_daily(board, referral, span(datetime.date(2026, 8, 26), 77))
    fold(board)
    accuracy = panel(board, history_weeks=2, by=nov(30)).accuracy

    assert (accuracy.horizon, accuracy.asked_horizon, accuracy.shortened) == (7, 13, True)
    assert (len(accuracy.checkpoints), accuracy.fitted, accuracy.asked) == (10, 10, 10)
    assert (accuracy.checkpoints[0].first_day, accuracy.checkpoints[0].last_day) == (
        datetime.date(2026, 9, 9),
        datetime.date(2026, 9, 15),
    )
    last = accuracy.checkpoints[-1]
    assert (last.first_day, last.last_day) == (nov(11), nov(17))
    assert all([h.at_least for h in point.levels] == [7, 7, 7] for point in accuracy.checkpoints)
    assert [point.actual for point in accuracy.checkpoints] == [7] * 9 + [0]
    assert [point.held_text for point in accuracy.checkpoints] == ["50%, 85% and 95%"] * 9 + [
        "none"
    ]
    assert accuracy.levels == [
        LevelRecord(c, could_fail=10, held=9, was_zero=0) for c in CONFIDENCES
    ]
    assert accuracy.sentence == (
        "At 10 checkpoints, 7 days apart, the 85% forecast for the 7 days ahead held at 9 of "
        "the 10 where it could fail (50%: 9 of 10, 95%: 9 of 10)."
    )
    assert accuracy.zeros is None
    assert accuracy.scope == (
        "Each checkpoint: the forecast for the 7 days from it, made as this panel would have "
        "made it that day from the 2 weeks before it, against the deals won in those days. "
        "The stream's 84 days of history hold the 10 checkpoints only for 7 days ahead, not "
        "the 13 asked (each needs the 2 weeks before it and the days ahead after it)."
    )
    # Binomial(10, 0.85): P(X <= 6) = 0.0500, a hair under 5%; P(X <= 7) = 0.18.
    assert accuracy.least_honest == 7
    assert accuracy.honesty == (
        "An honest 85% forecast holds at about 85% of the checkpoints where it can fail; "
        "holding at fewer than 7 of 10 would happen to it by chance in under 5% of such "
        "records. This record is in line with that."
    )


def win_days(board: Board, channel, first: datetime.date, offsets: list[int]) -> None:
    win_daily(board, channel, [first + datetime.timedelta(days=n) for n in offsets])


def test_a_level_whose_forecast_was_0_is_judged_only_where_it_could_fail(board, referral):
    # Two weeks of history, by 21 Nov: 4 days ahead. The stream starts 29 Aug (a prospect
    # that stays open): 81 days to 17 Nov, exactly 14 + 63 + 4. Its weeks from 29 Aug:
    # week 0 wins nothing; odd weeks win on their last 3 days, even weeks (from week 2)
    # on their first 4. The checkpoints start 12 Sep (day 14) to 14 Nov (day 77), a week
    # apart; checkpoint j forecasts from weeks j and j + 1 and is judged on the first 4
    # days of week j + 2.
    # - j = 0: 3 wins in 14 days. 4 days ahead win nothing in (11/14)^4 = 38% of the
    #   trials and at most 1 in 80%: at least 1 at 50%, 0 at 85% and 95%. Week 2 wins 4.
    # - j >= 1: 7 wins in 14 days, Binomial(4, 1/2): nothing in 6.25%, at most 1 in 31%,
    #   at most 2 in 69%: at least 2 at 50%, 1 at 85%, 0 at 95%. Even j: 4 won (held);
    #   odd j: 0 won (missed).
    first = datetime.date(2026, 8, 29)
    board.enter("first", referral, 100, at(first))
    win_days(board, referral, first, [7 * week + n for week in range(1, 11, 2) for n in (4, 5, 6)])
    win_days(board, referral, first, [7 * week + n for week in range(2, 11, 2) for n in range(4)])
    fold(board)
    accuracy = panel(board, history_weeks=2, by=nov(21)).accuracy

    assert (accuracy.horizon, accuracy.fitted, accuracy.no_win, accuracy.shortened) == (
        4,
        10,
        0,
        False,
    )
    points = accuracy.checkpoints
    assert (points[0].first_day, points[-1].first_day, points[-1].last_day) == (
        datetime.date(2026, 9, 12),
        nov(14),
        nov(17),
    )
    assert [[h.at_least for h in point.levels] for point in points] == [[1, 0, 0]] + [[2, 1, 0]] * 9
    assert [point.actual for point in points] == [4, 0] * 5
    assert [point.held_text for point in points[:3]] == [
        "50% (85% and 95% were 0)",
        "none (95% was 0)",
        "50% and 85% (95% was 0)",
    ]
    # Counted as held, the 0s would give 85%: 5 of 10 and 95%: 10 of 10.
    assert accuracy.levels == [
        LevelRecord(50, could_fail=10, held=5, was_zero=0),
        LevelRecord(85, could_fail=9, held=4, was_zero=1),
        LevelRecord(95, could_fail=0, held=0, was_zero=10),
    ]
    assert accuracy.sentence == (
        "At 10 checkpoints, 7 days apart, the 85% forecast for the 4 days ahead held at 4 of "
        "the 9 where it could fail (50%: 5 of 10, 95%: could not fail)."
    )
    assert accuracy.zeros == (
        "At 1 of the 10 checkpoints the 85% forecast was 0 and at all 10 the 95% forecast was "
        "0. At least 0 always holds: those checkpoints say nothing about that level and are "
        "left out of its record."
    )
    # Binomial(9, 0.85): P(X <= 5) = 0.034, P(X <= 6) = 0.141: fewer than 6 of 9 is rare.
    assert accuracy.least_honest == 6
    assert accuracy.promises_too_much
    assert accuracy.honesty.endswith(
        "holding at fewer than 6 of 9 would happen to it by chance in under 5% of such "
        "records. This one held less often than that: read its numbers as promising too much."
    )


def test_a_forecast_that_was_0_every_time_is_not_judged(board, referral):
    # The tryout's demo in small: the stream starts 26 Aug (a prospect that stays open)
    # and wins a deal every 14th day from 8 Sep to 17 Nov: 84 days; by 24 Nov, 7 days
    # ahead, which fit (14 + 63 + 7). Any two weeks hold exactly one win: 7 days ahead
    # win nothing in (13/14)^7 = 60% of the trials, so every level forecasts 0 at every
    # checkpoint, and always holds.
    first = datetime.date(2026, 8, 26)
    board.enter("first", referral, 100, at(first))
    win_days(board, referral, first, list(range(13, 84, 14)))
    fold(board)
    accuracy = panel(board, history_weeks=2, by=nov(24)).accuracy

    assert (accuracy.horizon, len(accuracy.checkpoints)) == (7, 10)
    assert all([h.at_least for h in point.levels] == [0, 0, 0] for point in accuracy.checkpoints)
    assert accuracy.levels == [
        LevelRecord(c, could_fail=0, held=0, was_zero=10) for c in CONFIDENCES
    ]
    assert accuracy.sentence == (
        "At 10 checkpoints, 7 days apart, the 85% forecast for the 7 days ahead was 0 every "
        "time: it could not fail (50%: could not fail, 95%: could not fail)."
    )
    assert accuracy.zeros.startswith(
        "At all 10 checkpoints the 50%, 85% and 95% forecasts were 0. "
    )
    assert not accuracy.judged and not accuracy.promises_too_much
    assert accuracy.honesty == (
        "Too few informative checkpoints to judge the 85% forecast: it could fail at none "
        "of them, and at least 5 are needed."
    )


def test_checkpoints_without_a_win_before_them_are_left_out_and_said(board, referral):
    # The stream starts 26 Aug (a prospect that stays open) and wins nothing until 9 Sep,
    # then one a day to 17 Nov: 84 days. By 24 Nov, 7 days ahead: checkpoints from 9 Sep
    # (day 14), whose 14 days before it won nothing: left out. The other nine had a win
    # in the 14 days before them: from 16 Sep, 7 wins in 14 days at first.
    first = datetime.date(2026, 8, 26)
    board.enter("first", referral, 100, at(first))
    win_daily(board, referral, span(datetime.date(2026, 9, 9), 70))
    fold(board)
    accuracy = panel(board, history_weeks=2, by=nov(24)).accuracy

    assert (accuracy.fitted, accuracy.no_win, len(accuracy.checkpoints)) == (10, 1, 9)
    assert accuracy.checkpoints[0].first_day == datetime.date(2026, 9, 16)
    assert accuracy.scope.endswith(
        "1 checkpoint left out: no deal was won in the 2 weeks before it, so there was no "
        "forecast to check."
    )


def test_a_young_stream_has_no_past_checkpoint_to_check(board, referral):
    # 14 days of history in all: no checkpoint has 14 days before it and 7 after.
    win_daily(board, referral, span(nov(4), 14))
    fold(board)
    accuracy = panel(board, history_weeks=2).accuracy
    assert accuracy.checkpoints == []
    assert accuracy.sentence is None
    assert accuracy.nothing == (
        "Nothing to check yet: a past checkpoint needs the 2 weeks of history before it and "
        "at least 7 days after it; the stream has 14 days."
    )
    # With 12 weeks asked, a shorter history would give a record sooner.
    assert panel(board, history_weeks=12).accuracy.nothing.endswith(
        "the stream has 14 days. A shorter history gives a record sooner."
    )


def accuracy_of(could_fail: int, held: int, checkpoints: int = 10) -> Accuracy:
    """A record whose 85% level could fail at ``could_fail`` checkpoints and held at
    ``held``; only the counts matter here."""
    return Accuracy(
        checkpoints=[None] * checkpoints,
        levels=[
            LevelRecord(50, could_fail=checkpoints, held=checkpoints, was_zero=0),
            LevelRecord(85, could_fail, held, was_zero=checkpoints - could_fail),
            LevelRecord(95, could_fail=0, held=0, was_zero=checkpoints),
        ],
        horizon=32,
        asked_horizon=32,
        asked=10,
        fitted=checkpoints,
        no_win=0,
        step=7,
        history_weeks=12,
        available_days=200,
    )


@pytest.mark.parametrize(
    ("could_fail", "held", "too_much"),
    [
        # Binomial(10, 0.85): P(X <= 6) = 0.0500, a hair under 5% (1 - 0.1969 - 0.3474 -
        # 0.2759 - 0.1298); P(X <= 7) = 0.1798.
        (10, 6, True),
        (10, 7, False),
        (10, 10, False),
        # Binomial(5, 0.85): P(X <= 2) = 0.0266 (0.15^5 + 5 x 0.85 x 0.15^4 + 10 x
        # 0.85^2 x 0.15^3); P(X <= 3) = 0.1648.
        (5, 2, True),
        (5, 3, False),
    ],
)
def test_an_85_percent_forecast_that_held_too_rarely_is_said_to_promise_too_much(
    could_fail, held, too_much
):
    accuracy = accuracy_of(could_fail, held)
    assert accuracy.judged
    assert accuracy.promises_too_much is too_much
    assert ("promising too much" in accuracy.honesty) is too_much
    assert ("in line with that" in accuracy.honesty) is not too_much


@pytest.mark.parametrize(("could_fail", "held"), [(4, 0), (4, 4), (0, 0)])
def test_fewer_than_five_informative_checkpoints_are_not_judged(could_fail, held):
    # 0 of 4 would be rare for an honest forecast (0.15^4), 4 of 4 common: neither is
    # judged on so few, and neither is said to be in line.
    accuracy = accuracy_of(could_fail, held)
    assert not accuracy.judged and not accuracy.promises_too_much
    could = "only 4 of the 10" if could_fail else "none of them"
    assert accuracy.honesty == (
        f"Too few informative checkpoints to judge the 85% forecast: it could fail at {could}, "
        "and at least 5 are needed."
    )
    assert "in line" not in accuracy.honesty


def day(month: int, day_of_month: int) -> datetime.date:
    return datetime.date(2026, month, day_of_month)


@pytest.fixture
def cohort(board, referral, web) -> Board:
    """Prospects entered in the months before a 12-week window (Mon 24 Aug to now):

    - X (Web form) enters 3 Jul, lost 20 Jul.
    - F (Referral) enters 15 Jul, lost 1 Sep.
    - H (Referral) enters 3 Aug, won 8 Sep: 36 days.
    - E (Web form) enters 10 Aug, won 29 Sep at 15:00: 50.25 days.
    - G (Web form) enters 28 Sep, stays open; I (Web form) enters 28 Sep at 16:00,
      stays open.
    - A and B (Referral), C and D (Web form) enter 1 Oct; A is handed on to
      Sales/Buying 6 Oct and won there 11 Oct (10 days from entry), B is lost 5 Oct,
      C and D stay open.

    Won in the window: H, E, A; lead times 10, 36, 50.25 days. Their 85th percentile
    (nearest rank 3 of 3) is 50.25: the lag is 51 days. The cohort entered from
    24 Aug - 51 days = 4 Jul to 18 Nov 15:00 - 51 days = 28 Sep 15:00: F, H, E, G
    (X entered a day early; I an hour late; A-D are too young). 2 of the 4 won, G is
    open."""
    board.enter("X", web, 100, at(day(7, 3)))
    board.close("X", Outcome.LOST, at(day(7, 20)))
    board.enter("F", referral, 100, at(day(7, 15)))
    board.close("F", Outcome.LOST, at(day(9, 1)))
    board.enter("H", referral, 100, at(day(8, 3)))
    board.close("H", Outcome.WON, at(day(9, 8)))
    board.enter("E", web, 100, at(day(8, 10)))
    board.close("E", Outcome.WON, at(day(9, 29), 15))
    board.enter("G", web, 100, at(day(9, 28)))
    board.enter("I", web, 100, at(day(9, 28), 16))
    for key, channel in (("A", referral), ("B", referral), ("C", web), ("D", web)):
        board.enter(key, channel, 100, at(day(10, 1)))
    board.close("B", Outcome.LOST, at(day(10, 5)))
    board.handoff("A", at(day(10, 6)))
    board.close("A", Outcome.WON, at(day(10, 11)))
    fold(board)
    return board


@pytest.mark.parametrize(
    ("by", "days", "in_time", "prospects"),
    [
        # 17 Dec: 30 days. Half the cohort ended won; of the 3 won deals only A (10 days)
        # took 30 days or less: 10 / (1/2 x 1/3) = 60.
        (datetime.date(2026, 12, 17), 30, 1, 60),
        # 31 Dec: 44 days, A and H (36) fit: 10 / (1/2 x 2/3) = 30.
        (datetime.date(2026, 12, 31), 44, 2, 30),
        # 31 Jan 2027: 75 days, all three fit: 10 / (1/2) = 20.
        (datetime.date(2027, 1, 31), 75, 3, 20),
    ],
)
def test_prospects_needed_from_a_mature_cohort_and_the_lead_times(
    cohort, by, days, in_time, prospects
):
    answer = panel(cohort, by=by, items=10).prospects
    entrants = answer.entrants
    assert (entrants.since, entrants.until, entrants.lag_days) == (day(7, 4), day(9, 28), 51)
    assert (entrants.entered, entrants.won, entrants.still_open) == (4, 2, 1)
    assert (answer.days, answer.won_since, answer.won_leads, answer.in_time) == (
        days,
        day(8, 24),
        3,
        in_time,
    )
    assert answer.prospects == prospects
    assert answer.refused is None
    assert answer.sentence == (
        f"To expect 10 deals won by {format_date(by, 'j M Y')} from new prospects alone, "
        f"about {prospects} new prospects must enter Data now."
    )


def test_the_basis_says_which_cohort_and_why(cohort):
    answer = panel(cohort, by=datetime.date(2026, 12, 17), items=10).prospects
    assert answer.basis == (
        "Of the 4 prospects that entered between 4 Jul and 28 Sep 2026 — old enough for 85% "
        "of won deals (lead time up to 51 days) to have closed — 2 ended won (50%; the 1 "
        "still open counts as not won). Of the 3 deals won since 24 Aug 2026, 1 (33%) took "
        "30 days or less from entry to won. Each prospect entering now brings 0.167 wins by "
        "then on average."
    )


def test_prospects_of_one_channel_use_its_own_lead_times_and_cohort(cohort, referral):
    # Referral won H (36 days) and A (10): the lag is 36 days, the cohort entered
    # 24 Aug - 36 days = 19 Jul to 13 Oct 15:00: H, A, B (F entered 15 Jul). H and A
    # won: 10 / (2/3 x 1/2) = 30 by 17 Dec (30 days: A fits, H does not).
    answer = panel(cohort, by=datetime.date(2026, 12, 17), channel_key=referral.pk).prospects
    entrants = answer.entrants
    assert (entrants.since, entrants.until, entrants.lag_days) == (day(7, 19), day(10, 13), 36)
    assert (entrants.entered, entrants.won, entrants.still_open) == (3, 2, 0)
    assert (answer.won_leads, answer.in_time) == (2, 1)
    assert answer.prospects == 30
    assert answer.basis.startswith(
        "Of the 3 prospects that entered between 19 Jul and 13 Oct 2026 — old enough for 85% "
        "of won deals (lead time up to 36 days) to have closed — 2 ended won (67%). "
    )


def test_prospects_are_refused_when_no_lead_time_fits(cohort):
    # By 20 Nov (3 days) no won deal was that quick.
    answer = panel(cohort, by=nov(20)).prospects
    assert answer.prospects is None
    assert answer.refused == (
        "No won deal took 3 days or less from entry: none entering now would be won in time."
    )
    assert answer.sentence == f"No estimate: {answer.refused}"


def test_prospects_are_refused_without_a_deal_won_in_the_window(board, referral):
    # W was won 1 Aug, before the window (from 24 Aug); P is open: no lead time to take
    # the cohort's lag from.
    board.enter("W", referral, 100, at(day(6, 1)))
    board.close("W", Outcome.WON, at(day(8, 1)))
    board.enter("P", referral, 100, at(day(10, 1)))
    fold(board)
    answer = panel(board).prospects
    assert answer.entrants is None
    assert answer.refused == (
        "No deal was won since 24 Aug 2026: there is no conversion to plan with."
    )


@pytest.mark.parametrize(
    ("older", "refused"),
    [
        (
            [],
            "The stream's prospects are younger than 45 days, the time 85% of won deals "
            "took: too early to measure conversion.",
        ),
        (
            # Q entered before the cohort: the stream is older, the cohort still empty.
            [("Q", day(6, 1))],
            "No prospect entered between 10 Jul and 4 Oct 2026 (old enough for 85% of won "
            "deals to have closed): there is no conversion to plan with.",
        ),
        (
            # R entered inside the cohort and was lost.
            [("R", day(8, 1))],
            "No prospect that entered between 10 Jul and 4 Oct 2026 has been won (1 "
            "entered): there is no conversion to plan with.",
        ),
    ],
    ids=["too-young", "none-in-the-cohort", "none-won"],
)
def test_prospects_are_refused_when_the_cohort_has_no_win(board, referral, older, refused):
    # P, the stream's only win, entered 4 Oct at 16:00 and was won this morning at 10:00:
    # 44.75 days, so the lag is 45 days and the cohort entered from 24 Aug - 45 days =
    # 10 Jul to 18 Nov 15:00 - 45 days = 4 Oct 15:00, an hour before P.
    for key, entered in older:
        board.enter(key, referral, 100, at(entered))
        board.close(key, Outcome.LOST, at(entered + datetime.timedelta(days=4)))
    board.enter("P", referral, 100, at(day(10, 4), 16))
    board.close("P", Outcome.WON, at(nov(18), 10))
    fold(board)
    answer = panel(board, by=datetime.date(2027, 1, 31)).prospects
    assert (answer.entrants.since, answer.entrants.until, answer.entrants.lag_days) == (
        day(7, 10),
        day(10, 4),
        45,
    )
    # Only R entered inside the cohort.
    assert answer.entrants.entered == sum(1 for key, _ in older if key == "R")
    assert answer.prospects is None
    assert answer.refused == refused


def test_the_cycle_filter_does_not_turn_lead_times_into_cycle_times(cohort):
    # A passed Collaboration in 5 days and was won 10 days after entry. By 25 Nov
    # (8 days) no won deal fits, whatever the dashboard's cycle: Collaboration's 5-day
    # passage is no lead time.
    cycle_id = cohort.column(COLLABORATION, "Data").cycle_id
    filtered = panel(cohort, by=nov(25), cycle_id=cycle_id).prospects
    assert filtered.refused == (
        "No won deal took 8 days or less from entry: none entering now would be won in time."
    )
    assert filtered == panel(cohort, by=nov(25)).prospects


# The form ---------------------------------------------------------------------------


def form(today=TODAY, **data) -> ForecastForm:
    query = QueryDict(mutable=True)
    query.update(data)
    return ForecastForm(query, today=today)


@pytest.mark.parametrize(
    ("now", "zone", "default_by"),
    [
        (NOW, "UTC", datetime.date(2026, 12, 31)),
        # 30 Nov 12:00 UTC is already 1 Dec in Auckland: next month is January there.
        (
            datetime.datetime(2026, 11, 30, 12, tzinfo=UTC),
            "Pacific/Auckland",
            datetime.date(2027, 1, 31),
        ),
        (datetime.datetime(2026, 11, 30, 12, tzinfo=UTC), "UTC", datetime.date(2026, 12, 31)),
        (datetime.datetime(2027, 1, 31, 9, tzinfo=UTC), "UTC", datetime.date(2027, 2, 28)),
    ],
)
def test_the_default_date_is_the_end_of_next_month_in_the_local_time_zone(
    settings, stream, now, zone, default_by
):
    settings.TIME_ZONE = zone
    today = MetricsQuery(stream=stream, now=now).today
    chosen = form(today=today).chosen()
    assert chosen["by"] == default_by
    assert (chosen["items"], chosen["history_weeks"]) == (10, 12)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("by", "2026-11-18", "Pick a day after today (18 Nov 2026)."),
        ("by", "2020-01-01", "Pick a day after today (18 Nov 2026)."),
        # Today + 730 days would count 731 days, today included.
        ("by", "2028-11-17", f"at most {MAX_DAYS} days ahead: pick 16 Nov 2028 or earlier."),
        ("by", "31/01/2027", "Enter a date such as 2027-01-31."),
        ("items", "0", "Ask for 1 to 10,000 deals."),
        ("items", "10001", "Ask for 1 to 10,000 deals."),
        ("items", "ten", "Enter a whole number of deals"),
        ("history_weeks", "1", "Use 2 to 104 weeks of history."),
        ("history_weeks", "105", "Use 2 to 104 weeks of history."),
    ],
)
def test_bad_input_is_an_error_on_its_field_and_the_others_are_kept(field, value, error):
    good = {"by": "2027-01-15", "items": "25", "history_weeks": "8"}
    bound = form(**{**good, field: value})
    assert not bound.is_valid()
    assert list(bound.errors) == [field]
    assert error in bound.errors[field][0]
    chosen = bound.chosen()
    kept = {"by": datetime.date(2027, 1, 15), "items": 25, "history_weeks": 8}
    defaults = {"by": datetime.date(2026, 12, 31), "items": 10, "history_weeks": 12}
    assert chosen == {**kept, field: defaults[field]}


def test_the_bounds_themselves_are_accepted():
    bound = form(by="2028-11-16", items="10000", history_weeks="104")
    assert bound.is_valid(), bound.errors
    assert bound.chosen()["by"] == TODAY + datetime.timedelta(days=MAX_DAYS - 1)
    assert form(by="2026-11-19", items="1", history_weeks="2").is_valid()


# The endpoint -----------------------------------------------------------------------


def url(stream, **params) -> str:
    query = QueryDict(mutable=True)
    query.update(params)
    base = reverse("metrics:forecast", kwargs={"stream_slug": stream.slug})
    return f"{base}?{query.urlencode()}" if params else base


@pytest.fixture
def live(board, referral) -> Board:
    """A deal won on each of the 28 days before today (real time)."""
    today = timezone.localdate()
    win_daily(board, referral, [today - datetime.timedelta(days=n) for n in range(28, 0, -1)])
    fold(board)
    return board


def test_a_member_gets_the_page_and_htmx_gets_the_fragment(live, member):
    client = logged_in(member)
    page = client.get(url(live.stream))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<html" in html and "<h1>Forecasts</h1>" in html
    assert has_element(html, "forecast") and has_element(html, "forecast-how-many")
    assert "HX-Request" in page["Vary"]

    fragment = client.get(url(live.stream), headers=HTMX)
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert "<html" not in text and "<h1>" not in text
    assert has_element(text, "forecast-title") and has_element(text, "forecast-accuracy-title")
    form_attributes = element(text, "forecast-by")
    assert form_attributes["value"] == _end_of_next_month(timezone.localdate()).isoformat()
    # 28 days of one a day: the sentence a manager reads.
    by = _end_of_next_month(timezone.localdate())
    days = (by - timezone.localdate()).days + 1
    assert f"at least {days} deals won with 85% confidence (50%: {days}, 95%: {days})." in text
    # 28 days hold no checkpoint with 12 weeks of history before it.
    assert "Nothing to check yet: a past checkpoint needs the 12 weeks of history" in text
    assert not has_element(text, "forecast-accuracy")


def test_the_fragment_shows_the_record_and_what_cut_it_short(live, member):
    # 28 days of one a day, 2 weeks of history: 28 - 14 = 14 days after the first
    # history hold 2 checkpoints a week apart, 7 days ahead (not the days to the default
    # date); each forecast 7 at every level and won 7.
    today = timezone.localdate()
    asked = (_end_of_next_month(today) - today).days + 1
    html = logged_in(member).get(url(live.stream, history_weeks="2"), headers=HTMX)
    text = html.content.decode()
    assert (
        "At 2 checkpoints, 7 days apart, the 85% forecast for the 7 days ahead held at 2 of "
        "the 2 where it could fail (50%: 2 of 2, 95%: 2 of 2)."
    ) in text
    assert (
        "Too few informative checkpoints to judge the 85% forecast: there are only 2, and at "
        "least 5 are needed."
    ) in text
    assert (
        "The stream&#x27;s 28 days of history hold only 2 of the 10 checkpoints, and only "
        f"for 7 days ahead, not the {asked} asked"
    ) in text
    assert "in line with that" not in text
    assert text.count("<td>2 of 2</td>") == 3


def _end_of_next_month(today: datetime.date) -> datetime.date:
    first_of_next = (today.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)
    return (first_of_next + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_an_outsider_gets_404(stream, user, headers):
    assert logged_in(user).get(url(stream), headers=headers).status_code == 404


def test_bad_input_shows_the_error_beside_its_field_and_keeps_the_rest(live, member):
    response = logged_in(member).get(
        url(live.stream, by="2001-01-01", items="25", history_weeks="abc"), headers=HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert element(html, "forecast-by")["aria-invalid"] == "true"
    assert "forecast-by_error" in element(html, "forecast-by")["aria-describedby"]
    assert has_element(html, "forecast-by_error") and has_element(
        html, "forecast-history_weeks_error"
    )
    assert not has_element(html, "forecast-items_error")
    assert "Pick a day after today" in html
    # What was typed stays in the fields; the valid number is used.
    assert element(html, "forecast-by")["value"] == "2001-01-01"
    assert element(html, "forecast-history_weeks")["value"] == "abc"
    assert element(html, "forecast-items")["value"] == "25"
    assert "25 more deals won: by" in html


def test_too_little_history_shows_the_refusal(board, referral, member):
    today = timezone.localdate()
    win_daily(board, referral, [today - datetime.timedelta(days=n) for n in range(5, 0, -1)])
    fold(board)
    html = logged_in(member).get(url(board.stream), headers=HTMX).content.decode()
    assert (
        "No forecast: The history holds 5 days; a forecast needs at least 14 (two weeks)." in html
    )
    assert not has_element(html, "forecast-how-many")


def test_a_stream_without_deals_refuses_everything_without_error(stream, member):
    response = logged_in(member).get(url(stream), headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No history yet" in html
    assert "No estimate: No deal was won since" in html
    assert "Nothing to check yet" in html


def test_the_dashboard_filters_ride_along_and_the_channel_applies(live, member, referral, web):
    client = logged_in(member)
    start = (timezone.localdate() - datetime.timedelta(weeks=4)).isoformat()
    html = client.get(
        url(live.stream, channel=str(web.pk), start=start), headers=HTMX
    ).content.decode()
    assert f'<input type="hidden" name="channel" value="{web.pk}">' in html
    assert f'<input type="hidden" name="start" value="{start}">' in html
    assert "Deals won through one channel: Web form." in html
    assert "do not change these forecasts" in html
    # No deal came through the web form: nothing to sample.
    assert "No forecast: No deal was won in the" in html

    html = client.get(url(live.stream, channel=str(referral.pk)), headers=HTMX).content.decode()
    assert "Deals won through one channel: Referral." in html
    assert "No forecast" not in html


def test_the_panel_reads_a_bounded_number_of_queries(live, member, django_assert_max_num_queries):
    client = logged_in(member)
    with django_assert_max_num_queries(12):
        assert client.get(url(live.stream, history_weeks="104"), headers=HTMX).status_code == 200


def test_the_track_record_is_computed_once_a_day_for_the_same_history(monkeypatch):
    from django.core.cache import cache

    from metrics import forecasting
    from metrics.selectors import forecast_panel as panel_module

    cache.clear()
    real, calls = forecasting.backtest, []

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(forecasting, "backtest", counted)
    history = [1, 0, 2, 0, 1, 3, 0] * 20
    first = panel_module._backtest(history, horizon=14, history_days=56)
    again = panel_module._backtest(history, horizon=14, history_days=56)
    assert again == first and len(calls) == 1
    panel_module._backtest([*history[1:], 5], horizon=14, history_days=56)  # a new day
    assert len(calls) == 2
