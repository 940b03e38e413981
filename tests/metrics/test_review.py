"""The weekly review: the week of 5 May 2025 on the oracle's stream worked out by hand
(its script is in tests/metrics/test_oracle.py; its first event, A's arrival, is on
Monday 7 April 2025: the review starts with that week, and its windows hold the weeks
from it, fewer than 12), anomalies first and in order, the snapshot or the move log as
its source, the managers' decisions and notes (recorded, refused, withdrawn, shown at
the next review), access, the week picker, CSV downloads, and a query count that does
not grow with the history."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from boards.models import Outcome
from metrics.models import REVIEW_ENTRY_MAX_LENGTH, ReviewEntry, ReviewEntryKind, WeeklySnapshot
from metrics.selectors import MetricsQuery, stream_metrics_compute
from metrics.selectors.dashboard import dashboard_get
from metrics.selectors.review import (
    WeekNotReviewable,
    last_full_week,
    stream_first_week,
    week_dashboard_get,
    week_query,
    weekly_review_get,
)
from metrics.services import (
    ReviewEntryInvalid,
    review_entry_record,
    review_entry_withdraw,
    stream_metrics_advance,
    weekly_snapshot_take,
)
from tests.constraints import violates
from tests.factories import MembershipFactory, UserFactory
from tests.metrics.scripted import Board
from tests.metrics.test_oracle import NOW, board  # noqa: F401 (the oracle's stream)
from tests.support import SALES, as_actor, logged_in
from vsm.access import StreamNotFound
from vsm.errors import PermissionRefused
from vsm.models import Channel, Role, Team

pytestmark = pytest.mark.django_db

MAR_31, APR_7 = date(2025, 3, 31), date(2025, 4, 7)
APR_21, APR_28 = date(2025, 4, 21), date(2025, 4, 28)
MAY_5, MAY_12, MAY_19 = date(2025, 5, 5), date(2025, 5, 12), date(2025, 5, 19)
# A Wednesday: the last full week is the one of 5 May.
MAY_14 = datetime(2025, 5, 14, 12, 0, tzinfo=UTC)


def review_of(board, monday: date):  # noqa: F811
    return weekly_review_get(board.stream, monday, now=NOW)


def review_query(stream, monday: date) -> MetricsQuery:
    """The query the review reads the week with (its window starts no earlier than the
    stream's first week)."""
    return week_query(stream, monday, first_week=stream_first_week(stream))


def document_json(board, monday: date) -> dict:  # noqa: F811
    """The document the week's replay computes, as a snapshot stores it."""
    return stream_metrics_compute(review_query(board.stream, monday)).to_json()


def snapshot(stream, *, taken_on: date, data: dict) -> WeeklySnapshot:
    """A snapshot as beat takes it, on Monday ``taken_on`` at 00:10 UTC."""
    return WeeklySnapshot.objects.create(
        value_stream=stream,
        week_start=taken_on,
        through_move_id=0,
        taken_at=datetime.combine(taken_on, time(0, 10), tzinfo=UTC),
        data=data,
    )


def oracle_member(board):  # noqa: F811
    team = Team.objects.get(value_stream=board.stream)
    return MembershipFactory(team=team, role=Role.MEMBER).user


def review_url(stream, week, name: str = "metrics:review", *extra) -> str:
    return reverse(name, args=[stream.slug, week, *extra])


# The week of 5 May 2025, replayed from the move log.


def test_the_week_of_5_may_shows_a_won_against_c_the_week_before(board):  # noqa: F811
    review = review_of(board, MAY_5)
    assert review.dashboard.week == MAY_5 and review.week_end == date(2025, 5, 11)
    tiles = {tile.key: tile for tile in review.dashboard.tiles}
    # A won on Mon 5 May after 28 days (Apr 7 - May 5); C the week before after 18 (Apr 14 - May 2).
    # The average is of the 5 weeks from the stream's first (7 Apr): 0, 0, 0, 1, 1.
    assert [week.isoformat() for week in review.dashboard.document.window.weeks] == [
        "2025-04-07",
        "2025-04-14",
        "2025-04-21",
        "2025-04-28",
        "2025-05-05",
    ]
    assert (tiles["won"].value, tiles["won"].previous) == (1, 1)
    assert tiles["won"].average == pytest.approx(2 / 5)
    assert tiles["won-value"].value == 400 and tiles["won-value"].previous == 2000
    assert (tiles["time-p50"].value, tiles["time-p50"].previous) == (28.0, 18.0)
    # No arrival that week (D came on 12 May); C the week of 14 April... A and B in April.
    assert tiles["arrivals"].value == 0
    assert review.snapshot_taken_at is None and not review.from_snapshot
    assert (review.previous_week, review.next_week) == (APR_28, MAY_12)


def test_the_week_of_5_may_raises_no_signal_and_names_the_old_card(board):  # noqa: F811
    review = review_of(board, MAY_5)
    # Won per week over the 5 weeks from 7 Apr: 0, 0, 0, C (week of Apr 28), A (May 5).
    # Mean 2/5 = 0.4; moving ranges 0, 0, 1, 0 -> 0.25; upper natural process limit
    # 0.4 + 2.66 x 0.25 = 1.07: A's week (1) is within it (counted over 12 weeks, the seven
    # before the stream existed as zeros, it was "above the limit (0.41)"). The moving
    # range into the week is 0 (1 -> 1): no jump; the jump into Apr 28 (1, above 3.268 x
    # 0.25 = 0.82) is that week's. Conversion (1.0, 1.0) and the lead time median (18,
    # 28; limit 49.6) raise nothing. The constraint is Collaboration / Knowledge both
    # weeks: no change.
    # B entered Sales/Buying on Apr 29 09:00: at the week's end (May 12 00:00) 12.625 days,
    # over Sales/Buying's 85th percentile, A's 12 days (Apr 23 - May 5), its only passage.
    assert [anomaly.kind for anomaly in review.anomalies] == ["aging"]
    (aging,) = review.anomalies
    assert aging.text == (
        "Prospect B: 12.6 days in Sales/Buying (in its Data column), older than the "
        "cycle's 85th percentile (12.0 days)."
    )
    assert aging.href == f"/streams/{board.stream.slug}/cards/{board.cards['B']}/"


def test_the_week_of_28_april_moves_the_constraint(board):  # noqa: F811
    review = review_of(board, APR_28)
    # Won: C, in the stream's fourth week: 0, 0, 0, 1. Mean 0.25, average moving range
    # 1/3: upper limit 0.25 + 2.66 / 3 = 1.14, moving-range limit 3.268 / 3 = 1.09: no
    # signal (over 12 weeks, the eight before the stream existed counted as zeros, C's
    # win was "above the upper limit (0.33)" and "a jump above the moving-range limit").
    # The constraint: Collaboration / Knowledge has no card at its WIP limit, so its
    # utilisation decides (docs/metrics.md). Its visits ended by 28 Apr 00:00 were A 2 days
    # and A 4 days finding no card, B 1 day finding C: longer with fewer cards ahead, a
    # negative slope, utilisation 0; Data's small positive one (7% over the 3 weeks from
    # 7 Apr) led. By 5 May C's visit ended too, 14 days after finding A: visits (0, 2)
    # (0, 4) (1, 1) (1, 14), slope cov 4.5 / var 1 = 4.5 days per card ahead, utilisation
    # 4 visits / 28 days x 4.5 = 64%: Knowledge leads. No card is old yet: Sales/Buying
    # has no finished passage by 5 May 00:00, so no 85th percentile; D and F came later.
    texts = [anomaly.text for anomaly in review.anomalies]
    assert texts == [
        "The constraint moved from Collaboration / Data to Collaboration / Knowledge.",
    ]
    assert not review.previous_from_snapshot


def test_signals_are_told_in_words_series_by_series(board):  # noqa: F811
    # A snapshot that recorded more signals on the week (and one on the week before, which
    # is not this review's): won, then conversion to won, then the lead time median.
    data = document_json(board, MAY_5)
    last = len(data["window"]["weeks"]) - 1
    xmr = data["stream"]["xmr"]
    xmr["won_weekly"] |= {
        "upper": 0.9,
        "signals": [{"index": last, "rule": "above the upper limit"}],
    }
    data["stream"]["win_rate_weekly"]["values"][-1] = 0.25
    xmr["win_rate_weekly"] |= {
        "lower": 0.5,
        "signals": [{"index": last, "rule": "below the lower limit"}],
    }
    xmr["lead_time_median_weekly"] |= {
        "mean": 10.0,
        "signals": [
            {"index": last - 1, "rule": "above the upper limit"},
            {"index": last, "rule": "eight in a row on one side of the mean"},
        ],
    }
    snapshot(board.stream, taken_on=MAY_12, data=data)
    signals = [a for a in review_of(board, MAY_5).anomalies if a.kind == "signal"]
    assert [a.text for a in signals] == [
        "Won: 1 in the week, above the upper natural process limit (0.9): more than "
        "routine variation explains.",
        "Conversion to won: 25% in the week, below the lower natural process limit (50%): "
        "more than routine variation explains.",
        "Lead time median: the eighth week in a row above its mean (10.0 days): the process "
        "has shifted.",
    ]
    assert [a.href for a in signals] == ["#tile-won", "#tile-win-rate", "#tile-time-p50"]


def test_a_change_of_constraint_comes_between_signals_and_old_cards(board):  # noqa: F811
    # The week as its snapshot (taken Mon 12 May) recorded a signal on won; the week
    # before as its snapshot (taken Mon 5 May) had Sales/Buying's Data as constraint.
    data = document_json(board, MAY_5)
    data["stream"]["xmr"]["won_weekly"]["signals"] = [
        {"index": len(data["window"]["weeks"]) - 1, "rule": "above the upper limit"}
    ]
    snapshot(board.stream, taken_on=MAY_12, data=data)
    sales_data = board.column(SALES, "Data")
    before = document_json(board, APR_28)
    before["constraint"] = {
        "column_id": sales_data.pk,
        "name": "Sales/Buying / Data",
        "evidence": [],
        "ranking": [],
    }
    snapshot(board.stream, taken_on=MAY_5, data=before)
    review = review_of(board, MAY_5)
    assert review.previous_from_snapshot
    assert [anomaly.kind for anomaly in review.anomalies] == ["signal", "constraint", "aging"]
    assert review.anomalies[1].text == (
        "The constraint moved from Sales/Buying / Data to Collaboration / Knowledge."
    )
    assert review.anomalies[1].href == "#constraint"


def test_a_constraint_where_there_was_none_is_a_change_too(board):  # noqa: F811
    before = document_json(board, APR_28)
    before["constraint"] = {"column_id": None, "name": None, "evidence": [], "ranking": []}
    snapshot(board.stream, taken_on=MAY_5, data=before)
    texts = [a.text for a in review_of(board, MAY_5).anomalies if a.kind == "constraint"]
    assert texts == [
        "Collaboration / Knowledge became the constraint; the week before no column stood out."
    ]


# Snapshot or replay.


def test_the_snapshot_taken_the_monday_after_is_the_source_when_there_is_one(board):  # noqa: F811
    data = document_json(board, MAY_5)
    # What the snapshot recorded then, told apart from today's replay: 5 won, no old card.
    data["stream"]["won_weekly"]["values"][-1] = 5
    data["aging"] = {"over_cycle_p85": [], "over_cycle_p85_count": 0, "open_cards": 2}
    snapshot(board.stream, taken_on=MAY_12, data=data)
    review = review_of(board, MAY_5)
    assert review.snapshot_taken_at == datetime(2025, 5, 12, 0, 10, tzinfo=UTC)
    tiles = {tile.key: tile for tile in review.dashboard.tiles}
    assert (tiles["won"].value, tiles["won"].previous) == (5, 1)
    assert review.anomalies == []  # not today's replay's old card, B
    assert review.weeks[[w.monday for w in review.weeks].index(MAY_5)].snapshot
    page = logged_in(board.actor).get(review_url(board.stream, MAY_5))
    assert "From the snapshot taken 12 May 2025, 00:10" in page.content.decode()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("next week's", id="a snapshot of another week"),
        pytest.param({"schema_version": 99}, id="an unknown schema"),
    ],
)
def test_a_snapshot_that_does_not_hold_the_week_is_not_used(board, data):  # noqa: F811
    if data == "next week's":
        data = document_json(board, MAY_12)  # taken by hand later, filed under 12 May
    snapshot(board.stream, taken_on=MAY_12, data=data)
    review = review_of(board, MAY_5)
    assert review.snapshot_taken_at is None
    assert {tile.key: tile.value for tile in review.dashboard.tiles}["won"] == 1
    page = logged_in(board.actor).get(review_url(board.stream, MAY_5))
    assert "Replayed from the move log" in page.content.decode()
    assert "their ages counted to the week's end" in page.content.decode()


def test_a_snapshot_review_has_the_dashboard_s_tiles_and_charts(board):  # noqa: F811
    snapshot(board.stream, taken_on=MAY_12, data=document_json(board, MAY_5))
    from_snapshot, taken_at = week_dashboard_get(board.stream, MAY_5)
    replayed = dashboard_get(review_query(board.stream, MAY_5))
    assert taken_at is not None and from_snapshot.stored
    assert [c.key for c in from_snapshot.charts] == [c.key for c in replayed.charts]
    assert [c.to_json() for c in from_snapshot.charts] == [c.to_json() for c in replayed.charts]
    assert from_snapshot.tiles == replayed.tiles


def test_each_chart_s_csv_is_the_review_s_own(board):  # noqa: F811
    data = document_json(board, MAY_5)
    data["stream"]["won_weekly"]["values"][-1] = 5
    snapshot(board.stream, taken_on=MAY_12, data=data)
    client = logged_in(board.actor)
    page = client.get(review_url(board.stream, MAY_5))
    csv_url = review_url(board.stream, MAY_5, "metrics:review-csv", "throughput")
    assert f'href="{csv_url}"' in page.content.decode()
    response = client.get(csv_url)
    assert response.status_code == 200
    assert (
        'filename="oracle-pumps-week-2025-05-05-throughput.csv"'
        in (response["Content-Disposition"])
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["week", "won", "signal"]
    assert rows[-1][:2] == ["2025-05-05", "5"]  # the snapshot's, not today's replay
    assert len(rows) == 6  # the 5 weeks from the stream's first, 7 Apr
    missing = client.get(review_url(board.stream, MAY_5, "metrics:review-csv", "nope"))
    assert missing.status_code == 404


def test_a_replayed_week_counts_the_cards_ages_to_its_end(board):  # noqa: F811
    # B has stayed in Sales/Buying's Data since 29 Apr 09:00: 12.625 days at the end of the
    # week of 5 May (Mon 12 May 00:00), 19.625 at the end of the week of 12 May; today's
    # position (it has not moved since), that week's end's age.
    texts = {
        week: [a.text for a in review_of(board, week).anomalies if a.kind == "aging"]
        for week in (MAY_5, MAY_12)
    }
    assert texts == {
        MAY_5: [
            "Prospect B: 12.6 days in Sales/Buying (in its Data column), older than the "
            "cycle's 85th percentile (12.0 days)."
        ],
        MAY_12: [
            "Prospect B: 19.6 days in Sales/Buying (in its Data column), older than the "
            "cycle's 85th percentile (12.0 days)."
        ],
    }
    page = logged_in(board.actor).get(review_url(board.stream, MAY_12)).content.decode()
    assert (
        "The fold keeps no past positions, so the open cards are today's that were already "
        "in their present column at the week's end, their ages counted to the week's end; a "
        "card moved or closed since is left out."
    ) in page
    assert "ages are today" not in page


def test_one_more_old_card_than_listed_is_one_card(board):  # noqa: F811
    data = document_json(board, MAY_5)
    data["aging"]["over_cycle_p85_count"] = 2  # B listed, one more counted
    snapshot(board.stream, taken_on=MAY_12, data=data)
    aging = [a.text for a in review_of(board, MAY_5).anomalies if a.kind == "aging"]
    assert aging[-1] == "And 1 more open card older than its cycle's 85th percentile."


# The weeks the review covers: from the stream's first.


def test_the_review_starts_with_the_week_of_the_stream_s_first_event(board):  # noqa: F811
    assert stream_first_week(board.stream) == APR_7  # A entered on Monday 7 Apr
    first = review_of(board, APR_7)
    assert (first.previous_week, first.next_week) == (None, date(2025, 4, 14))
    # The picker's 26 weeks before 9 Jun would reach back to 16 Dec 2024.
    assert [choice.monday for choice in first.weeks][-1] == APR_7
    assert len(first.weeks) == 9  # 7 Apr to 2 Jun
    for before in (MAR_31, date(2020, 12, 28)):
        with pytest.raises(WeekNotReviewable, match="the stream's first week"):
            review_of(board, before)

    client = logged_in(board.actor)
    page = client.get(review_url(board.stream, APR_7)).content.decode()
    assert 'rel="prev"' not in page
    assert "the stream's first week: there is no week before it to compare with." in page
    for before in (MAR_31, date(2020, 12, 28)):
        assert client.get(review_url(board.stream, before)).status_code == 404
        csv_url = review_url(board.stream, before, "metrics:review-csv", "throughput")
        assert client.get(csv_url).status_code == 404
        record_url = review_url(board.stream, before, "metrics:review-entry-record")
        assert client.post(record_url, {"kind": "note", "text": "Hi"}).status_code == 404
    # A Sunday of the week before the first: 404, not a redirect to that week.
    assert client.get(f"/streams/{board.stream.slug}/review/2025-04-06/").status_code == 404
    assert not ReviewEntry.objects.filter(value_stream=board.stream).exists()


def test_an_early_week_averages_only_the_weeks_since_the_stream_s_first(board):  # noqa: F811
    review = review_of(board, APR_28)
    # The 4 weeks from 7 Apr, not 12 of which 8 came before the stream: arrivals 2 (A, B),
    # 1 (C), 0, 0; won 0, 0, 0, 1 (C).
    window = review.dashboard.document.window
    assert (window.weeks[0], len(window.weeks)) == (APR_7, 4)
    tiles = {tile.key: tile for tile in review.dashboard.tiles}
    assert (tiles["arrivals"].average, tiles["won"].average) == (0.75, 0.25)
    page = logged_in(board.actor).get(review_url(board.stream, APR_28)).content.decode()
    assert (
        "against the week before and the average of the 4 weeks from the stream's first, "
        "the week of 7 Apr 2025."
    ) in page


def test_a_snapshot_counting_weeks_before_the_stream_is_not_used(board):  # noqa: F811
    # The Monday snapshot stored the 12 weeks that end with 5 May: seven of them (17 Feb
    # to 31 Mar) before the stream's first event, counted as zeros.
    data = stream_metrics_compute(MetricsQuery.for_week(board.stream, MAY_5)).to_json()
    snapshot(board.stream, taken_on=MAY_12, data=data)
    review = review_of(board, MAY_5)
    assert not review.from_snapshot
    assert len(review.dashboard.document.window.weeks) == 5


def test_a_stream_whose_first_week_is_not_over_has_no_review_yet(stream, manager):
    client = logged_in(manager)
    latest = reverse("metrics:review-latest", args=[stream.slug])
    response = client.get(latest, follow=True)
    assert response.redirect_chain == [(reverse("metrics:dashboard", args=[stream.slug]), 302)]
    monday = last_full_week() + timedelta(weeks=2)  # the stream was created this week
    assert [str(m) for m in response.context["messages"]] == [
        "The weekly review starts once the stream's first week is over: on Monday "
        f"{monday.day} {monday:%b %Y}."
    ]
    assert client.get(review_url(stream, last_full_week())).status_code == 404


@pytest.mark.parametrize(
    ("asked", "shown", "message"),
    [
        (
            "9999-12-31",
            "last",
            "There is no review of the week of 27 Dec 9999: the review covers the weeks of "
            "7 Apr 2025 (the stream's first) to {last}.",
        ),
        (
            "0001-01-01",
            "first",
            "There is no review of the week of 1 Jan 0001: the review covers the weeks of "
            "7 Apr 2025 (the stream's first) to {last}.",
        ),
        (
            "2025-04-06",
            "first",
            "There is no review of the week of 31 Mar 2025: the review covers the weeks of "
            "7 Apr 2025 (the stream's first) to {last}.",
        ),
        ("tomorrow", "last", "Pick a week by a day of it, as YYYY-MM-DD."),
        ("2025-04-09", "first", None),
    ],
    ids=["year 9999", "year 1", "before the first week", "no date", "a Wednesday"],
)
def test_the_picker_says_why_it_cannot_show_a_week(board, asked, shown, message):  # noqa: F811
    last = last_full_week()
    response = logged_in(board.actor).get(
        reverse("metrics:review-latest", args=[board.stream.slug]) + f"?week={asked}",
        follow=True,
    )
    assert response.status_code == 200
    week = {"first": APR_7, "last": last}[shown]
    assert response.redirect_chain == [(review_url(board.stream, week), 302)]
    expected = [message.format(last=f"{last.day} {last:%b %Y}")] if message else []
    assert [str(m) for m in response.context["messages"]] == expected


# Decisions and notes: the service.


def test_a_manager_records_a_decision_stripped_of_blanks(board):  # noqa: F811
    entry = review_entry_record(
        stream_id=board.stream.pk,
        week_start=MAY_5,
        kind=ReviewEntryKind.DECISION,
        text="  Call every referral within a day.\r\nReview again in two weeks.  ",
        actor=as_actor(board.actor),
        at=MAY_14,
    )
    entry.refresh_from_db()
    assert entry.text == "Call every referral within a day.\nReview again in two weeks."
    assert (entry.value_stream_id, entry.week_start, entry.kind) == (
        board.stream.pk,
        MAY_5,
        "decision",
    )
    assert entry.author == board.actor and entry.created_at == MAY_14
    assert entry.withdrawn_at is None


def test_only_those_who_steer_the_stream_record(board):  # noqa: F811
    member = oracle_member(board)
    # A member sees the stream but may not steer it; an outsider does not even see it.
    for actor, refusal in ((member, PermissionRefused), (UserFactory(), StreamNotFound)):
        with pytest.raises(refusal):
            review_entry_record(
                stream_id=board.stream.pk,
                week_start=MAY_5,
                kind=ReviewEntryKind.NOTE,
                text="A note",
                actor=as_actor(actor),
                at=MAY_14,
            )
    manager_member = MembershipFactory(
        team=Team.objects.get(value_stream=board.stream), role=Role.VALUE_STREAM_MANAGER
    ).user
    admin = get_user_model().objects.create(username="review-admin", is_superuser=True)
    for actor in (manager_member, admin):
        review_entry_record(
            stream_id=board.stream.pk,
            week_start=MAY_5,
            kind=ReviewEntryKind.NOTE,
            text="A note",
            actor=as_actor(actor),
            at=MAY_14,
        )
    assert ReviewEntry.objects.filter(value_stream=board.stream).count() == 2


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"text": ""}, "text", "it is empty"),
        ({"text": " \r\n\t "}, "text", "it is empty"),
        ({"text": "x" * (REVIEW_ENTRY_MAX_LENGTH + 1)}, "text", "this has 2,001"),
        ({"kind": "rumour"}, "kind", "a decision or a note"),
        ({"week_start": date(2025, 5, 6)}, "week", "2025-05-06 is a Tuesday"),
        ({"week_start": MAY_12}, "week", "2025-05-12 is not over yet"),
        ({"week_start": MAY_19}, "week", "2025-05-19 is not over yet"),
    ],
    ids=["empty", "blank", "too long", "kind", "not a Monday", "this week", "future week"],
)
def test_refused_entries_say_why_and_write_nothing(board, changes, field, message):  # noqa: F811
    arguments = {
        "stream_id": board.stream.pk,
        "week_start": MAY_5,
        "kind": ReviewEntryKind.NOTE,
        "text": "A note",
        "actor": as_actor(board.actor),
        "at": MAY_14,
    } | changes
    with pytest.raises(ReviewEntryInvalid, match=message) as refused:
        review_entry_record(**arguments)
    assert refused.value.field == field
    assert not ReviewEntry.objects.filter(value_stream=board.stream).exists()


def test_the_longest_text_fits_counting_a_line_break_once(board):  # noqa: F811
    text = "x" * (REVIEW_ENTRY_MAX_LENGTH - 2) + "\r\ny"
    entry = review_entry_record(
        stream_id=board.stream.pk,
        week_start=MAY_5,
        kind=ReviewEntryKind.NOTE,
        text=text,
        actor=as_actor(board.actor),
        at=MAY_14,
    )
    entry.refresh_from_db()
    assert len(entry.text) == REVIEW_ENTRY_MAX_LENGTH


def test_the_database_holds_the_entry_rules(board):  # noqa: F811
    fields = {
        "value_stream": board.stream,
        "week_start": MAY_5,
        "kind": "note",
        "text": "ok",
        "author": board.actor,
    }
    with violates(ReviewEntry, "metrics_reviewentry_text_length"):
        ReviewEntry.objects.create(**fields | {"text": ""})
    with violates(ReviewEntry, "metrics_reviewentry_text_length"):
        ReviewEntry.objects.create(**fields | {"text": "x" * (REVIEW_ENTRY_MAX_LENGTH + 1)})
    with violates(ReviewEntry, "metrics_reviewentry_week_is_monday"):
        ReviewEntry.objects.create(**fields | {"week_start": date(2025, 5, 11)})
    with violates(ReviewEntry, "metrics_reviewentry_kind_valid"):
        ReviewEntry.objects.create(**fields | {"kind": "rumour"})
    with violates(ReviewEntry, "metrics_reviewentry_withdrawal_dated"):
        ReviewEntry.objects.create(**fields | {"withdrawn_by": board.actor})
    ReviewEntry.objects.create(**fields)


def _record(board, week: date, kind: str, text: str, actor=None) -> ReviewEntry:  # noqa: F811
    return review_entry_record(
        stream_id=board.stream.pk,
        week_start=week,
        kind=kind,
        text=text,
        actor=as_actor(actor or board.actor),
        at=NOW,
    )


def test_an_entry_is_withdrawn_by_its_author_or_a_manager_and_kept(board):  # noqa: F811
    other_manager = MembershipFactory(
        team=Team.objects.get(value_stream=board.stream), role=Role.VALUE_STREAM_MANAGER
    ).user
    mine = _record(board, MAY_5, "decision", "Mine", actor=as_actor(other_manager))
    theirs = _record(board, MAY_5, "note", "Theirs")
    with pytest.raises(
        PermissionRefused, match="Only an admin or the value stream manager may withdraw another"
    ):
        review_entry_withdraw(entry_id=mine.pk, actor=as_actor(oracle_member(board)))
    review_entry_withdraw(entry_id=mine.pk, actor=as_actor(other_manager), at=NOW)
    review_entry_withdraw(entry_id=theirs.pk, actor=as_actor(other_manager), at=NOW)
    with pytest.raises(ReviewEntryInvalid, match="withdrawn already"):
        review_entry_withdraw(entry_id=mine.pk, actor=as_actor(board.actor))
    kept = ReviewEntry.objects.filter(value_stream=board.stream).order_by("pk")
    assert [(e.text, e.withdrawn_by, e.withdrawn_at) for e in kept] == [
        ("Mine", other_manager, NOW),
        ("Theirs", other_manager, NOW),
    ]
    # The author no longer steers the stream, and still withdraws their own entry.
    former = _record(board, MAY_5, "note", "Former", actor=as_actor(other_manager))
    other_manager.memberships.update(role=Role.MEMBER)
    review_entry_withdraw(entry_id=former.pk, actor=as_actor(other_manager))
    assert ReviewEntry.objects.get(pk=former.pk).withdrawn


# Decisions and notes: shown at the next review.


def test_the_last_decisions_are_shown_at_the_next_review(board):  # noqa: F811
    _record(board, APR_21, "decision", "Older decision")
    first = _record(board, APR_28, "decision", "Call referrals within a day")
    _record(board, APR_28, "note", "A note is no decision")
    withdrawn = _record(board, APR_28, "decision", "Withdrawn decision")
    second = _record(board, APR_28, "decision", "Split Knowledge into doing and done")
    review_entry_withdraw(entry_id=withdrawn.pk, actor=as_actor(board.actor))
    this_week = _record(board, MAY_5, "note", "This week's note")

    review = review_of(board, MAY_5)
    assert review.last_time_week == APR_28
    assert review.decided_last_time == [first, second]
    assert review.entries == [this_week]
    # A week later, with nothing recorded for 5 May, the decisions of 28 April stand.
    assert review_of(board, MAY_12).decided_last_time == [first, second]
    assert review_of(board, APR_21).decided_last_time == []
    page = logged_in(board.actor).get(review_url(board.stream, MAY_5)).content.decode()
    last_time = page[page.index('id="decided-last-time"') : page.index('class="tiles"')]
    assert "Split Knowledge into doing and done" in last_time
    assert "Withdrawn decision" not in last_time and "A note is no decision" not in last_time
    choices = {choice.monday: choice.entries for choice in review.weeks}
    assert (choices[APR_21], choices[APR_28], choices[MAY_5]) == (1, 4, 1)


# The pages.


def test_members_see_the_review_outsiders_get_404_anonymous_log_in(board):  # noqa: F811
    url = review_url(board.stream, MAY_5)
    manager_page = logged_in(board.actor).get(url)
    assert manager_page.status_code == 200
    assert b'class="review-entry-form"' in manager_page.content
    who = "Only the stream's managers record decisions and notes."
    assert who not in manager_page.content.decode()
    member_page = logged_in(oracle_member(board)).get(url)
    assert member_page.status_code == 200
    assert b'class="review-entry-form"' not in member_page.content
    assert who in member_page.content.decode()
    outsider = logged_in(UserFactory())
    assert outsider.get(url).status_code == 404
    assert outsider.get(reverse("metrics:review-latest", args=[board.stream.slug])).status_code == (
        404
    )
    csv_url = review_url(board.stream, MAY_5, "metrics:review-csv", "throughput")
    assert outsider.get(csv_url).status_code == 404
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_the_page_shows_anomalies_first_then_tiles_and_charts(board):  # noqa: F811
    page = logged_in(board.actor).get(review_url(board.stream, MAY_5)).content.decode()
    order = [
        page.index('id="anomalies"'),
        page.index('id="tile-won"'),
        page.index('id="chart-throughput"'),
        page.index('id="entries"'),
    ]
    assert order == sorted(order)
    assert "Prospect B: 12.6 days in Sales/Buying" in page
    assert f'href="/streams/{board.stream.slug}/cards/{board.cards["B"]}/"' in page
    assert "js/dashboard.js" in page and 'id="chart-data-throughput"' in page
    assert '<option value="2025-05-05" selected>' in page
    assert f'href="{review_url(board.stream, APR_28)}"' in page  # the week before
    assert f'href="{review_url(board.stream, MAY_12)}"' in page  # the week after
    assert "style=" not in page and "<script>" not in page


def test_weeks_are_picked_by_monday_and_anything_else_is_redirected_or_404(board):  # noqa: F811
    client = logged_in(board.actor)
    slug = board.stream.slug
    latest = reverse("metrics:review-latest", args=[slug])
    last = last_full_week()
    assert client.get(latest)["Location"] == review_url(board.stream, last)
    assert client.get(latest + "?week=2025-05-08")["Location"] == review_url(board.stream, MAY_5)
    assert client.get(latest + "?week=tomorrow")["Location"] == review_url(board.stream, last)
    this_week = last + timedelta(weeks=1)
    assert client.get(latest + f"?week={this_week}")["Location"] == review_url(board.stream, last)
    assert client.get(f"/streams/{slug}/review/2025-05-08/")["Location"] == review_url(
        board.stream, MAY_5
    )
    for missing in ("2025-02-30", "2025-5-5", "1999-12-27", "0001-01-01", str(this_week)):
        assert client.get(f"/streams/{slug}/review/{missing}/").status_code == 404, missing
    assert client.get(f"/streams/{slug}/review/{this_week + timedelta(days=2)}/").status_code == (
        404
    )


def test_a_manager_records_through_the_page_post_redirect_get(board):  # noqa: F811
    client = logged_in(board.actor)
    url = review_url(board.stream, MAY_5, "metrics:review-entry-record")
    response = client.post(url, {"kind": "decision", "text": "  Protect the referral channel "})
    assert response.status_code == 302
    assert response["Location"] == review_url(board.stream, MAY_5) + "#entries"
    entry = ReviewEntry.objects.get(value_stream=board.stream)
    assert (entry.week_start, entry.kind, entry.text) == (
        MAY_5,
        "decision",
        "Protect the referral channel",
    )
    page = client.get(response["Location"]).content.decode()
    assert "Decision recorded." in page and "Protect the referral channel" in page
    assert client.get(url).status_code == 405


def test_a_refused_entry_re_renders_with_the_reason_and_the_typed_text(board):  # noqa: F811
    client = logged_in(board.actor)
    url = review_url(board.stream, MAY_5, "metrics:review-entry-record")
    typed = "Too long: " + "x" * REVIEW_ENTRY_MAX_LENGTH
    response = client.post(url, {"kind": "note", "text": typed})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Keep it to 2,000 characters" in page and 'role="alert"' in page
    assert typed in page
    assert client.post(url, {"kind": "note", "text": "   "}).status_code == 400
    assert client.post(url, {"kind": "gossip", "text": "Hi"}).status_code == 400
    assert not ReviewEntry.objects.filter(value_stream=board.stream).exists()


def test_members_cannot_record_through_the_page(board):  # noqa: F811
    url = review_url(board.stream, MAY_5, "metrics:review-entry-record")
    response = logged_in(oracle_member(board)).post(url, {"kind": "note", "text": "Hi"})
    assert response.status_code == 403
    assert "Only an admin or the value stream manager may record" in response.content.decode()
    assert logged_in(UserFactory()).post(url, {"kind": "note", "text": "Hi"}).status_code == 404
    anonymous = Client().post(url, {"kind": "note", "text": "Hi"})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    future = review_url(board.stream, last_full_week() + timedelta(weeks=1))
    assert logged_in(board.actor).post(
        future + "entries/", {"kind": "note", "text": "Hi"}
    ).status_code == (404)
    assert not ReviewEntry.objects.filter(value_stream=board.stream).exists()


def test_withdrawing_through_the_page_keeps_the_entry_struck_through(board):  # noqa: F811
    entry = _record(board, MAY_5, "decision", "Hire a second analyst")
    url = review_url(board.stream, MAY_5, "metrics:review-entry-withdraw", entry.pk)
    refused = logged_in(oracle_member(board)).post(url, follow=True)
    assert "may withdraw another person&#x27;s decision" in refused.content.decode()
    assert not ReviewEntry.objects.get(pk=entry.pk).withdrawn
    wrong_week = review_url(board.stream, APR_28, "metrics:review-entry-withdraw", entry.pk)
    assert logged_in(board.actor).post(wrong_week).status_code == 404
    response = logged_in(board.actor).post(url)
    assert response["Location"] == review_url(board.stream, MAY_5) + "#entries"
    page = logged_in(board.actor).get(response["Location"]).content.decode()
    assert '<del class="review-entry-text">Hire a second analyst</del>' in page
    assert "withdrawn by oracle-manager" in page


def test_the_stream_pages_link_to_the_review_and_the_dashboard_keeps_its_tiles(board):  # noqa: F811
    client = logged_in(board.actor)
    target = reverse("metrics:review-latest", args=[board.stream.slug])
    dashboard = client.get(reverse("metrics:dashboard", args=[board.stream.slug])).content.decode()
    assert f'href="{target}"' in dashboard
    assert 'id="tile-won"' in dashboard and "vs week before" in dashboard
    board_page = client.get(reverse("boards:board", args=[board.stream.slug])).content.decode()
    assert f'href="{target}"' in board_page


def test_the_admin_lists_entries_read_only(board):  # noqa: F811
    admin = get_user_model().objects.create(
        username="review-admin", is_superuser=True, is_staff=True
    )
    entry = _record(board, MAY_5, "note", "Seen in the admin")
    client = logged_in(admin)
    assert client.get(reverse("admin:metrics_reviewentry_changelist")).status_code == 200
    assert client.get(reverse("admin:metrics_reviewentry_add")).status_code == 403
    assert client.get(reverse("admin:metrics_reviewentry_delete", args=[entry.pk])).status_code == (
        403
    )
    response = client.post(
        reverse("admin:metrics_reviewentry_changelist"),
        {"action": "withdraw", "_selected_action": [entry.pk]},
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.withdrawn_by == admin


# Query count.


def _history(stream, manager, cards: int, entries: int) -> None:
    channel = Channel.objects.create(value_stream=stream, name=f"Channel {cards}")
    b = Board(stream, manager)
    start = timezone.now() - timedelta(days=60)
    for n in range(cards):
        when = start + timedelta(hours=5 * n)
        b.enter(f"c{cards}-{n}", channel, 100, when)
        b.move(f"c{cards}-{n}", "Information", when + timedelta(hours=1))
        if n % 4:  # every fourth card stays open, days older than the cycle's p85 (hours)
            outcome = Outcome.WON if n % 2 else Outcome.LOST
            b.close(f"c{cards}-{n}", outcome, when + timedelta(hours=2))
    stream_metrics_advance(stream_id=stream.pk)
    for week in range(entries):
        for kind in ("decision", "note"):
            review_entry_record(
                stream_id=stream.pk,
                week_start=last_full_week() - timedelta(weeks=week),
                kind=kind,
                text=f"Entry {cards}-{week}",
                actor=as_actor(manager),
            )


@pytest.mark.parametrize("snapshots", [False, True], ids=["replayed", "from snapshots"])
def test_the_page_s_query_count_does_not_grow_with_the_history(stream, manager, snapshots):
    client = logged_in(manager)
    last = last_full_week()
    url = review_url(stream, last)

    def take_snapshots() -> None:
        if snapshots:
            for monday in (last, last + timedelta(weeks=1)):
                weekly_snapshot_take(stream_id=stream.pk, week_start=monday)
            # Filed under the Mondays after the weeks they hold, as beat files them.
            data = stream_metrics_compute(review_query(stream, last)).to_json()
            WeeklySnapshot.objects.filter(
                value_stream=stream, week_start=last + timedelta(weeks=1)
            ).update(data=data)
            data = stream_metrics_compute(review_query(stream, last - timedelta(weeks=1))).to_json()
            WeeklySnapshot.objects.filter(value_stream=stream, week_start=last).update(data=data)

    _history(stream, manager, 4, 1)
    take_snapshots()
    with CaptureQueriesContext(connection) as few:
        page = client.get(url)
        assert page.status_code == 200
    assert page.context["review"].from_snapshot is snapshots
    assert [a.kind for a in page.context["review"].anomalies].count("aging") == 1
    _history(stream, manager, 40, 12)
    take_snapshots()
    with CaptureQueriesContext(connection) as many:
        page = client.get(url)
        assert page.status_code == 200
    assert len(page.context["review"].entries) == 4
    old_cards = [a for a in page.context["review"].anomalies if a.kind == "aging"]
    assert len(old_cards) == 11  # one of the first 4 cards and 10 of the next 40
    assert len(many) == len(few)
