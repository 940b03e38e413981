"""The manager's dashboard: headline tiles worked out by hand on the oracle's stream,
the page's access rule, its filters in the URL, CSV downloads, and a query count that
does not grow with the history."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from boards.models import Outcome
from metrics.fold.timeline import metrics_zone
from metrics.selectors import MetricsQuery, stream_metrics_compute
from metrics.selectors.dashboard import dashboard_chart, dashboard_get, stored_document
from metrics.services import stream_metrics_advance
from tests.metrics.scripted import Board
from tests.metrics.test_oracle import NOW, board, channels  # noqa: F401 (the oracle's stream)
from tests.support import COLLABORATION, logged_in
from vsm.models import Channel, ValueStream

pytestmark = pytest.mark.django_db


def tiles_of(query: MetricsQuery) -> dict:
    return {tile.key: tile for tile in dashboard_get(query).tiles}


def test_tiles_are_the_last_full_week_against_the_week_before_and_the_average(board):  # noqa: F811
    tiles = tiles_of(MetricsQuery(stream=board.stream, now=NOW))
    # The week of Monday 2 June 2025: F arrived; the week before, E. Six arrivals in 12 weeks.
    assert (tiles["arrivals"].value, tiles["arrivals"].previous) == (1, 1)
    assert tiles["arrivals"].average == 0.5
    assert tiles["arrivals"].change_vs_average == 0.5
    # Won: C (week of 28 Apr) and A (week of 5 May), none since.
    assert (tiles["won"].value, tiles["won"].previous) == (0, 0)
    assert tiles["won"].average == pytest.approx(2 / 12, abs=1e-4)
    assert tiles["won-value"].average == pytest.approx((2000 + 400) / 12, abs=1e-4)
    # Lead times: C 18 days (won 2 May), A 28 days (won 5 May); none in the last 2 weeks.
    assert tiles["time-p50"].value is None and tiles["time-p50"].previous is None
    assert tiles["time-p50"].average == 23.0
    assert tiles["time-p85"].average == 23.0
    assert tiles["time-p50"].change_vs_average is None
    # Final states: B's loss was taken back by its reopen; C and A won, E lost.
    assert tiles["win-rate"].value is None
    assert tiles["win-rate"].previous == 0.0
    assert tiles["win-rate"].average == pytest.approx(2 / 3, abs=1e-4)
    assert (tiles["throughput"].value, tiles["throughput"].previous) == (0, 1)
    assert tiles["throughput"].average == 0.25


def test_wip_tile_counts_the_cards_in_process_each_sunday(board):  # noqa: F811
    tiles = tiles_of(MetricsQuery(stream=board.stream, now=NOW))
    # Sunday 8 June: B (Sales Data), D and F (Collaboration Information); 1 June: B, D.
    assert (tiles["wip"].value, tiles["wip"].previous) == (3, 2)


def test_a_cycle_filter_times_the_cycle_and_lists_only_its_charts(board):  # noqa: F811
    cycle_id = board.column(COLLABORATION, "Data").cycle_id
    dashboard = dashboard_get(MetricsQuery(stream=board.stream, now=NOW, cycle_id=cycle_id))
    tiles = {tile.key: tile for tile in dashboard.tiles}
    assert tiles["time-p50"].label == "Cycle time p50"
    assert [chart.key for chart in dashboard.charts if chart.key.startswith("funnel-")] == [
        f"funnel-{cycle_id}"
    ]


def test_the_stored_document_answers_the_default_query_only_while_fresh(board):  # noqa: F811
    stream = board.stream
    from metrics.services import stream_metrics_summarize

    stream_metrics_summarize(stream_id=stream.pk)
    now = timezone.now()
    assert stored_document(MetricsQuery(stream=stream, now=now)) is not None
    assert stored_document(MetricsQuery(stream=stream, now=now, cycle_id=1)) is None
    assert stored_document(MetricsQuery(stream=stream, now=now + timedelta(hours=1))) is None
    live = stream_metrics_compute(MetricsQuery(stream=stream, now=now))
    assert dashboard_get(MetricsQuery(stream=stream, now=now)).stored is True
    assert dashboard_get(MetricsQuery(stream=stream, now=now)).document.stream == live.stream


def url(stream, **params) -> str:
    base = reverse("metrics:dashboard", args=[stream.slug])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def test_members_see_the_dashboard_outsiders_get_404(stream, manager, member, user):
    assert logged_in(manager).get(url(stream)).status_code == 200
    assert logged_in(member).get(url(stream)).status_code == 200
    assert logged_in(user).get(url(stream)).status_code == 404
    assert (
        logged_in(user)
        .get(reverse("metrics:dashboard-csv", args=[stream.slug, "throughput"]))
        .status_code
        == 404
    )
    anonymous = Client().get(url(stream))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_the_board_and_the_stream_list_link_to_the_dashboard(stream, manager):
    client = logged_in(manager)
    target = url(stream)
    assert target in client.get(reverse("boards:board", args=[stream.slug])).content.decode()
    assert target in client.get(reverse("boards:stream-list")).content.decode()


def test_filters_are_read_from_the_url_and_bad_ones_are_explained(stream, manager):
    client = logged_in(manager)
    cycle = stream.cycles.order_by("order").first()
    page = client.get(url(stream, cycle=cycle.pk))
    assert page.status_code == 200
    assert page.context["dashboard"].query.cycle_id == cycle.pk
    today = timezone.localdate()
    start = today - timedelta(days=30)
    page = client.get(url(stream, start=start.isoformat(), end=today.isoformat()))
    assert (
        page.context["dashboard"].query.weeks
        == (
            (today - timedelta(days=today.weekday())) - (start - timedelta(days=start.weekday()))
        ).days
        // 7
    )
    for bad in (
        {"cycle": "999999"},
        {"channel": "abc"},
        {"start": "yesterday"},
        {"end": (today + timedelta(days=3)).isoformat()},
        {"start": today.isoformat(), "end": (today - timedelta(days=9)).isoformat()},
        {"start": "1990-01-01"},
    ):
        page = client.get(url(stream, **bad))
        assert page.status_code == 200, bad
        assert page.context["filter_form"].errors, bad
        assert b'role="alert"' in page.content


def test_the_csv_is_exactly_the_chart_s_table_with_formulas_neutralised(stream, manager):
    Channel.objects.create(value_stream=stream, name="=HYPERLINK(evil)")
    channel = Channel.objects.get(value_stream=stream)
    b = Board(stream, manager)
    start = timezone.now() - timedelta(days=20)
    b.enter("A", channel, 900, start)
    b.move("A", "Information", start + timedelta(days=2))
    b.close("A", Outcome.WON, start + timedelta(days=5))
    stream_metrics_advance(stream_id=stream.pk)
    response = logged_in(manager).get(
        reverse("metrics:dashboard-csv", args=[stream.slug, "pareto"])
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="{stream.slug}-pareto.csv"' in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == ["channel", "arrivals", "won", "lost", "win rate", "won value", "cumulative"]
    assert table[1][0] == "'=HYPERLINK(evil)" and table[1][2] == "1" and table[1][5] == "900.00"
    missing = logged_in(manager).get(reverse("metrics:dashboard-csv", args=[stream.slug, "nope"]))
    assert missing.status_code == 404


def _history(stream, manager, cards: int, *, days_ago: int = 100) -> None:
    channel = Channel.objects.create(value_stream=stream, name=f"Channel {cards}")
    b = Board(stream, manager)
    start = timezone.now() - timedelta(days=days_ago)  # by default older than the window
    for n in range(cards):
        when = start + timedelta(hours=5 * n)
        b.enter(f"c{n}", channel, 100, when)
        b.move(f"c{n}", "Information", when + timedelta(hours=1))
        b.close(f"c{n}", Outcome.WON if n % 2 else Outcome.LOST, when + timedelta(hours=2))
    stream_metrics_advance(stream_id=stream.pk)


@pytest.mark.parametrize("params", [{}, {"channel": 0}], ids=["stored document", "filtered"])
def test_the_page_s_query_count_does_not_grow_with_the_history(stream, manager, params):
    client = logged_in(manager)
    _history(stream, manager, 4)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url(stream, **params)).status_code == 200
    _history(stream, manager, 40)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url(stream, **params))
    assert response.status_code == 200
    assert response.context["dashboard"].stored is (not params)
    assert len(many) == len(few)


def test_a_week_s_query_ends_as_that_week_does(board):  # noqa: F811
    from datetime import date

    query = MetricsQuery.for_week(board.stream, date(2025, 5, 5))
    dashboard = dashboard_get(query)
    assert dashboard.week == date(2025, 5, 5)
    tiles = {tile.key: tile for tile in dashboard.tiles}
    # A won on 5 May after 28 days; C the week before after 18 days.
    assert (tiles["won"].value, tiles["won"].previous) == (1, 1)
    assert (tiles["time-p50"].value, tiles["time-p50"].previous) == (28.0, 18.0)
    with pytest.raises(ValueError, match="starts on a Monday"):
        MetricsQuery.for_week(board.stream, date(2025, 5, 6))


def test_a_range_in_the_past_shows_no_work_item_age(board):  # noqa: F811
    # NOW (June 2025) is before today: where each card is and its age are today's.
    aging = dashboard_get(MetricsQuery(stream=board.stream, now=NOW)).chart("aging")
    assert aging.rows == [] and aging.verdict is None
    assert aging.empty_reason == "Work item age is today's: set the range to end today to see it."


def test_a_past_week_leaves_out_cards_that_came_later(board):  # noqa: F811
    from datetime import date

    # The week of 21 April: D, E and F entered in May and June; B is in Sales/Buying's
    # Data since 29 April. None of them may show a (negative) age then.
    document = stream_metrics_compute(MetricsQuery.for_week(board.stream, date(2025, 4, 21)))
    ages = [column.median_age_days for column in document.columns]
    assert all(age is None or age >= 0 for age in ages)
    assert document.aging.open_cards == 0  # B, D and F, today's open cards, all moved later


@pytest.mark.parametrize(
    ("params", "weeks", "last_full_week", "window_end"),
    [
        # Monday 23 to Sunday 29 Nov: that full week, and nothing "so far" after it.
        ({"start": "2026-11-23", "end": "2026-11-29"}, ["2026-11-23"], "2026-11-23", "2026-11-29"),
        # Two full weeks ending on a Sunday.
        (
            {"start": "2026-11-16", "end": "2026-11-29"},
            ["2026-11-16", "2026-11-23"],
            "2026-11-23",
            "2026-11-29",
        ),
        # A Wednesday end: its week is the one so far, up to that day.
        ({"start": "2026-11-16", "end": "2026-11-25"}, ["2026-11-16"], "2026-11-16", "2026-11-25"),
        # Within one week: no full week at all.
        ({"start": "2026-11-24", "end": "2026-11-25"}, [], None, "2026-11-25"),
        # No start: 12 full weeks before the end's week.
        ({"end": "2026-11-29"}, 12, "2026-11-23", "2026-11-29"),
    ],
)
def test_a_date_range_is_whole_iso_weeks_and_a_sunday_closes_one(
    stream, params, weeks, last_full_week, window_end
):
    from datetime import UTC, date, datetime

    from metrics.forms.filters import DashboardFilterForm

    # A stream older than the window: its first week does not cut it short.
    ValueStream.objects.filter(pk=stream.pk).update(created_at=datetime(2025, 1, 6, tzinfo=UTC))
    stream.refresh_from_db()
    form = DashboardFilterForm(
        params,
        stream=stream,
        cycles=[],
        channels=[],
        now=datetime(2026, 12, 2, 12, 0, tzinfo=UTC),  # a Wednesday
    )
    assert form.is_valid(), form.errors
    window = form.query().window()
    if isinstance(weeks, int):
        assert len(window.weeks) == weeks
    else:
        assert [week.isoformat() for week in window.weeks] == weeks
    assert (window.weeks[-1].isoformat() if window.weeks else None) == last_full_week
    assert window.end == date.fromisoformat(window_end)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"end": "0001-01-01"}, "end", "The range ends on 1 Jan 2000 or later."),
        ({"start": "1999-12-31"}, "start", "The range starts on 1 Jan 2000 or later."),
        ({"start": "2026-12-03"}, "start", "The range starts today (2 Dec 2026) at the latest."),
        ({"start": "9999-12-31"}, "start", "The range starts today (2 Dec 2026) at the latest."),
        ({"start": "2022-01-03", "end": "2026-12-01"}, "start", "A range spans at most 104 weeks."),
    ],
)
def test_dates_out_of_range_are_refused_with_the_reason(stream, params, field, message):
    from datetime import UTC, datetime

    from metrics.forms.filters import DashboardFilterForm

    form = DashboardFilterForm(
        params, stream=stream, cycles=[], channels=[], now=datetime(2026, 12, 2, 12, tzinfo=UTC)
    )
    assert not form.is_valid()
    assert form.errors[field] == [message]
    form.query().window()  # the defaults stand in: no OverflowError, no 500


def test_the_earliest_dates_get_an_error_not_a_500(stream, manager):
    client = logged_in(manager)
    for params in ({"end": "0001-01-01"}, {"start": "0001-01-01", "end": "0001-01-07"}):
        assert client.get(url(stream, **params)).status_code == 200
        csv_url = reverse("metrics:dashboard-csv", args=[stream.slug, "throughput"])
        assert client.get(csv_url, params).status_code == 200


def test_a_cycle_filter_counts_the_cycle_s_own_flow(board):  # noqa: F811
    cycle_id = board.column(COLLABORATION, "Data").cycle_id
    tiles = tiles_of(MetricsQuery(stream=board.stream, now=NOW, cycle_id=cycle_id))
    # Collaboration: F entered in the week of 2 June, E the week before.
    assert (tiles["arrivals"].value, tiles["arrivals"].previous) == (1, 1)
    # Won in Collaboration: only C (2 May, in Knowledge); A was won in Sales/Buying.
    assert tiles["won"].average == pytest.approx(1 / 12, abs=1e-4)
    # Left Collaboration: A handed on (week of 21 Apr), B handed on and C won (28 Apr),
    # E lost (26 May); B's loss on 15 Apr was taken back by its reopen.
    assert (tiles["throughput"].value, tiles["throughput"].previous) == (0, 1)
    assert tiles["throughput"].average == pytest.approx(4 / 12, abs=1e-4)
    assert tiles["throughput"].label == "Throughput"
    assert tiles["won-value"].label == "Won value (whole stream)"


def test_percentile_tiles_say_how_many_cards_they_rest_on(board):  # noqa: F811
    from datetime import date

    tiles = tiles_of(MetricsQuery(stream=board.stream, now=NOW))
    assert tiles["time-p85"].basis == "No card finished in the week."
    tiles = tiles_of(MetricsQuery.for_week(board.stream, date(2025, 5, 5)))
    assert tiles["time-p85"].basis == "From 1 card only: a rough figure."
    assert tiles["arrivals"].basis is None


def test_one_chart_alone_is_the_dashboard_s_chart(board):  # noqa: F811
    query = MetricsQuery(stream=board.stream, now=NOW)
    dashboard = dashboard_get(query)
    for chart in dashboard.charts:
        assert dashboard_chart(query, chart.key) == chart
    with pytest.raises(KeyError):
        dashboard_chart(query, "funnel-0")


def test_to_json_holds_every_field_of_the_chart(board):  # noqa: F811
    import json
    from dataclasses import asdict

    for chart in dashboard_get(MetricsQuery(stream=board.stream, now=NOW)).charts:
        expected = json.loads(json.dumps(asdict(chart)))
        if chart.dots is not None:
            # A dot chart sends its cards, not its rows: each dot's card and link.
            expected["rows"] = []
            links = [f"{chart.dots.link_prefix}{card_id}/" for card_id in chart.dots.ids]
            assert links == [row[-1] for row in chart.rows]
            assert chart.dots.names == [row[0] for row in chart.rows]
        assert json.loads(json.dumps(chart.to_json())) == expected


def test_the_page_s_table_shows_the_first_rows_and_says_the_csv_has_them_all(stream, manager):
    from metrics.charts import TABLE_ROWS_SHOWN

    _history(stream, manager, 2 * TABLE_ROWS_SHOWN + 5, days_ago=60)  # every other card won
    page = logged_in(manager).get(url(stream))
    scatter = page.context["dashboard"].chart("cycle-time")
    shown = len(scatter.rows)
    assert shown > TABLE_ROWS_SHOWN
    html = page.content.decode()
    section = html[html.index('id="chart-cycle-time"') : html.index('id="chart-throughput"')]
    assert section.count("<tr><td>") == TABLE_ROWS_SHOWN
    assert (
        f"The first {TABLE_ROWS_SHOWN} of {shown} rows; the CSV download has them all." in section
    )
    csv_rows = logged_in(manager).get(
        reverse("metrics:dashboard-csv", args=[stream.slug, "cycle-time"])
    )
    assert len(csv_rows.content.decode().strip().splitlines()) == shown + 1


def test_a_young_stream_s_window_starts_at_its_first_week(stream, manager):
    from metrics.selectors.query import week_start

    channel = Channel.objects.create(value_stream=stream, name="Web form")
    b = Board(stream, manager)
    entered = timezone.now() - timedelta(days=25)
    b.enter("A", channel, 100, entered)
    stream_metrics_advance(stream_id=stream.pk)
    page = logged_in(manager).get(url(stream))
    window = page.context["dashboard"].document.window
    # Weeks before the stream's first would be zeros in every average.
    assert window.start == week_start(entered.astimezone(metrics_zone()).date())
    assert len(window.weeks) == (week_start(timezone.localdate()) - window.start).days // 7


def test_a_stored_document_s_page_reads_the_cards_once_as_of_its_moment(stream, manager):
    from django.core.cache import cache

    cache.clear()
    client = logged_in(manager)
    _history(stream, manager, 2)  # the stream is older than the window
    _history(stream, manager, 6, days_ago=20)
    with CaptureQueriesContext(connection) as first:
        page = client.get(url(stream))
    dashboard = page.context["dashboard"]
    assert dashboard.stored is True
    with CaptureQueriesContext(connection) as again:
        assert client.get(url(stream)).context["dashboard"].tiles == dashboard.tiles
    reads = ("metrics_flowduration", "metrics_cardflowstate", "metrics_columnday")
    assert any(table in q["sql"] for q in first.captured_queries for table in reads)
    assert not any(table in q["sql"] for q in again.captured_queries for table in reads)
    assert len(dashboard.chart("cycle-time").rows) == 3  # every other card of 6 was won


def test_a_window_that_ends_with_a_week_counts_nothing_after_it(board):  # noqa: F811
    from datetime import date

    # The week of 7 April ends at Monday 14 April 00:00; C entered on 14 April at 09:00.
    document = stream_metrics_compute(MetricsQuery.for_week(board.stream, date(2025, 4, 7)))
    assert document.window.end == date(2025, 4, 13)
    assert document.window.current_week_days == 0
    assert document.stream.arrivals_weekly.so_far == 0
    assert document.stream.arrivals_weekly.values[-1] == 2  # A and B
    from metrics.charts import throughput_run_chart

    assert "so far" not in throughput_run_chart(document).caption


def test_with_a_cycle_the_tiles_and_their_charts_count_the_same_flow(board, channels):  # noqa: F811
    cycle_id = board.column(COLLABORATION, "Data").cycle_id
    for channel_key in (None, channels[0].pk):
        dashboard = dashboard_get(
            MetricsQuery(stream=board.stream, now=NOW, cycle_id=cycle_id, channel_key=channel_key)
        )
        tiles = {tile.key: tile for tile in dashboard.tiles}
        demand, throughput = dashboard.chart("demand"), dashboard.chart("throughput")
        assert demand.series[0].values[-1] == tiles["arrivals"].value
        assert demand.series[2].values[-2:] == [
            tiles["throughput"].previous,
            tiles["throughput"].value,
        ]
        # Won in Collaboration: C only (28 Apr week); A was won in Sales/Buying.
        assert throughput.series[0].values == [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
        assert throughput.title.startswith("Won deals per week in Collaboration")
        all_channels = channel_key is not None
        assert tiles["won"].label == ("Won (all channels)" if all_channels else "Won")
        assert throughput.title.endswith("(all channels)") is all_channels
