"""The measuring of experiments, worked out by hand: a stream driven by dated events
through the board services, every expected number computed in the comments below from
the definitions (metrics.experiments, docs/metrics.md), not by the code.

The script (all at 09:00 UTC; settings.TIME_ZONE is UTC). Ten weeks, Mondays from
2025-03-03: weeks 0-5 (Mar 3 ... Apr 7) are the baseline, weeks 6-9 (Apr 14 ... May 5)
the window. Every week, in each of the three cycles, four cards n = 0..3:

- Monday: enter the cycle's Data column (in Sales/Buying, n = 0 and 2 through Referral,
  n = 1 and 3 through Web form; elsewhere no channel);
- Tuesday: all four move to Information;
- Wednesday: the week's first m cards (n < m, "movers") move on to Knowledge;
- Thursday: the others are lost, in Information;
- Friday: the movers are won, in Knowledge.

m per week, the same baseline in every cycle, then the window:

    baseline (weeks 0-5)   1  2  1  2  1  1
    Sales/Buying           3  3  4  3     a signal beyond the upper limit
    Collaboration          3  3  2  3     3 of 4 weeks closer to the upper limit
    Repeat/Upsell          2  1  2  1     routine variation

Conversion from Information (of the cards that left it, the share that moved on, by the
week they left; every card leaves in the week it entered): the baseline weeks are 1/4,
2/4, ... = 25, 50, 25, 50, 25, 25 %; over the six weeks 8 / 24 = 33.33 %, on 24 cards.

Its natural process limits (XmR, Wheeler): mean 200 / 6 = 33.333; moving ranges 25,
25, 25, 25, 0, average 100 / 5 = 20; upper limit 33.333 + 2.66 x 20 = 86.53; lower
33.333 - 53.2 < 0, clamped at 0. The halfway line to the upper limit (rule 2):
(33.33 + 86.53) / 2 = 59.93.

- Sales/Buying's window: 75, 75, 100, 75 %; 13 / 16 = 81.25 %. Its third week, 100, is
  above 86.53: rule 1, "beyond_upper_limit", at week index 2.
- Collaboration's: 75, 75, 50, 75 %; 11 / 16 = 68.75 %. No week above 86.53; 75, 75, 75
  of the four are above 59.93: rule 2, "three_of_four_upper", completed at index 3.
- Repeat/Upsell's: 50, 25, 50, 25 %; 6 / 16 = 37.5 %. Nothing beyond 86.53 or 0, no
  three of four beyond 59.93 or below 16.67, and four weeks cannot make a run of 8:
  routine variation, no signal, though 37.5 is nearer the target of 40.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from boards.models import Outcome
from boards.services import value_stream_create
from metrics import tasks
from metrics.experiments import (
    MEASURES,
    Measurement,
    Period,
    Scope,
    experiment_baseline_start,
    experiment_check,
    experiment_limits,
    experiment_verdict,
)
from metrics.selectors.experiments import experiments_due_for_check
from metrics.selectors.readmodel import XmR
from metrics.services import stream_metrics_advance
from pdca.errors import CheckNotReady, ExperimentStarted, TooLittleData
from pdca.models import (
    Cycle,
    Experiment,
    ExperimentStage,
    SignalRule,
    TargetedMetric,
)
from pdca.services import experiment_plan, experiment_stop
from tests.factories import MembershipFactory
from tests.metrics.scripted import Board
from tests.support import COLLABORATION, REPEAT, SALES, TEST_SYSTEM, as_actor
from vsm.errors import PermissionRefused
from vsm.models import AuditEntry, Channel, ChannelKind, Role, Team

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
FIRST_MONDAY = datetime.date(2025, 3, 3)
WINDOW_START = datetime.date(2025, 4, 14)
PLANNED_AT = datetime.datetime(2025, 4, 10, 9, 0, tzinfo=UTC)
STARTED_AT = datetime.datetime(2025, 4, 14, 9, 30, tzinfo=UTC)
BASELINE_MOVERS = [1, 2, 1, 2, 1, 1]
MOVERS = {
    SALES: [*BASELINE_MOVERS, 3, 3, 4, 3],
    COLLABORATION: [*BASELINE_MOVERS, 3, 3, 2, 3],
    REPEAT: [*BASELINE_MOVERS, 2, 1, 2, 1],
}
BASELINE = Period(FIRST_MONDAY, datetime.date(2025, 4, 13))
WINDOW = Period(WINDOW_START, datetime.date(2025, 5, 11))


def key(cycle: str, week: int, n: int) -> str:
    return f"{cycle} {week}.{n}"


@pytest.fixture(scope="module")
def board(django_db_setup, django_db_blocker):
    """Built once for the module (the script has some 450 events) inside a transaction
    rolled back at the end; each test runs in a savepoint inside it."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield _script()
        transaction.set_rollback(True)


def _script() -> Board:
    manager = get_user_model().objects.create(username="experiment-manager")
    stream = value_stream_create(
        actor=TEST_SYSTEM,
        name="Experiment pumps",
        customer_market="Mid-sized manufacturers",
        manager=manager,
    )
    referral = Channel.objects.create(
        value_stream=stream, name="Referral", kind=ChannelKind.REFERRAL
    )
    web = Channel.objects.create(value_stream=stream, name="Web form", kind=ChannelKind.WEB_FORM)
    b = Board(stream, manager)
    for week, monday in enumerate(FIRST_MONDAY + datetime.timedelta(weeks=w) for w in range(10)):

        def day(offset: int, monday=monday) -> datetime.datetime:
            return datetime.datetime.combine(
                monday + datetime.timedelta(days=offset), datetime.time(9), tzinfo=UTC
            )

        for cycle in MOVERS:
            for n in range(4):
                channel = (referral if n % 2 == 0 else web) if cycle == SALES else None
                b.enter(key(cycle, week, n), channel, 100, day(0), cycle=cycle)
        for cycle in MOVERS:
            for n in range(4):
                b.move(key(cycle, week, n), "Information", day(1))
        for cycle, movers in MOVERS.items():
            for n in range(movers[week]):
                b.move(key(cycle, week, n), "Knowledge", day(2))
        for cycle, movers in MOVERS.items():
            for n in range(movers[week], 4):
                b.close(key(cycle, week, n), Outcome.LOST, day(3))
        for cycle, movers in MOVERS.items():
            for n in range(movers[week]):
                b.close(key(cycle, week, n), Outcome.WON, day(4))
    stream_metrics_advance(stream_id=stream.pk)
    b.channels = (referral, web)
    return b


@pytest.fixture
def manager(board):
    return board.stream.manager


def cycle_of(board: Board, name: str) -> Cycle:
    return Cycle.objects.get(value_stream=board.stream, name=name)


def plan(board: Board, cycle: str, **changes) -> Experiment:
    fields = {
        "cycle_id": cycle_of(board, cycle).pk,
        "team_id": Team.objects.get(value_stream=board.stream).pk,
        "hypothesis": "We believe a trial raises Information to Knowledge conversion.",
        "targeted_metric": TargetedMetric.CONVERSION,
        "column_id": board.column(cycle, "Information").pk,
        "window_start": WINDOW_START,
        "planned_weeks": 4,
        "target": Decimal("40"),
        "actor": as_actor(board.stream.manager),
        "at": PLANNED_AT,
    }
    return experiment_plan(**(fields | changes))


# --- the Check, end to end ------------------------------------------------------------


def test_the_baseline_is_measured_and_frozen_at_the_start(board, manager):
    experiment = plan(board, SALES)

    started = experiment_baseline_start(
        experiment_id=experiment.pk, actor=as_actor(manager), at=STARTED_AT
    )

    row = Experiment.objects.get(pk=started.pk)
    assert (row.stage, row.started_at) == (ExperimentStage.DO, STARTED_AT)
    assert (row.baseline, row.baseline_cards) == (Decimal("33.33"), 24)
    assert row.baseline_weekly == [25.0, 50.0, 25.0, 50.0, 25.0, 25.0]
    assert row.direction == 1  # a target of 40 is a rise from 33.33
    limits = experiment_limits(row)
    assert (limits.mean, limits.average_moving_range, limits.upper, limits.lower) == (
        33.33,
        20.0,
        86.53,
        0.0,
    )


@pytest.mark.parametrize(
    ("cycle", "value", "weekly", "rule"),
    [
        (SALES, "81.25", [75.0, 75.0, 100.0, 75.0], SignalRule.BEYOND_UPPER_LIMIT),
        (COLLABORATION, "68.75", [75.0, 75.0, 50.0, 75.0], SignalRule.THREE_OF_FOUR_UPPER),
        (REPEAT, "37.50", [50.0, 25.0, 50.0, 25.0], SignalRule.NONE),
    ],
)
def test_the_check_measures_the_window_and_names_the_rule(
    board, manager, cycle, value, weekly, rule
):
    experiment = plan(board, cycle)
    experiment_baseline_start(experiment_id=experiment.pk, actor=as_actor(manager), at=STARTED_AT)

    checked = experiment_check(experiment_id=experiment.pk, actor=as_actor(manager))

    row = Experiment.objects.get(pk=checked.pk)
    assert row.stage == ExperimentStage.CHECK
    assert (row.measured_value, row.measured_cards, row.measured_weekly) == (
        Decimal(value),
        16,
        weekly,
    )
    assert (row.signal, row.signal_rule) == (rule != SignalRule.NONE, rule)
    # The window ran out: its end is the stop, Monday May 12 at 00:00.
    assert (row.stopped_at, row.stopped_early) == (
        datetime.datetime(2025, 5, 12, tzinfo=UTC),
        False,
    )
    entry = AuditEntry.objects.filter(action="experiment.checked").latest("id")
    assert (entry.target_id, entry.actor_id, entry.data["measured_value"]) == (
        row.pk,
        manager.pk,
        value,
    )


def test_the_verdict_names_the_week_the_rule_fired(board, manager):
    experiment = plan(board, COLLABORATION)
    experiment_baseline_start(experiment_id=experiment.pk, actor=as_actor(manager), at=STARTED_AT)
    experiment.refresh_from_db()

    verdict = experiment_verdict(experiment_limits(experiment), [75.0, 75.0, 50.0, 75.0])

    assert (verdict.signal, verdict.rule, verdict.week) == (
        True,
        SignalRule.THREE_OF_FOUR_UPPER,
        3,
    )


def test_a_check_with_too_little_data_is_refused(board, manager):
    """Stopped on Monday Apr 21 at 09:00: the Do is the week of Apr 14 (one full week),
    whose cohort has 4 cards reaching Information, fewer than MIN_CHECK_CARDS (10)."""
    experiment = plan(board, SALES)
    experiment_baseline_start(experiment_id=experiment.pk, actor=as_actor(manager), at=STARTED_AT)
    experiment_stop(
        experiment_id=experiment.pk,
        actor=as_actor(manager),
        at=datetime.datetime(2025, 4, 21, 9, 0, tzinfo=UTC),
    )

    with pytest.raises(TooLittleData) as refused:
        experiment_check(experiment_id=experiment.pk, actor=as_actor(manager))

    assert refused.value.data == {"experiment_id": experiment.pk, "cards": 4, "min_cards": 10}
    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.measured_value, row.stopped_early) == (ExperimentStage.DO, None, True)


def test_the_check_counts_moves_the_fold_has_not_seen_yet(board, manager):
    experiment = plan(board, SALES)
    experiment_baseline_start(experiment_id=experiment.pk, actor=as_actor(manager), at=STARTED_AT)
    # A 17th card of the window, entered Tuesday Apr 15, on to Knowledge the day after.
    board.enter("late", None, 100, datetime.datetime(2025, 4, 15, 9, tzinfo=UTC), cycle=SALES)
    board.move("late", "Information", datetime.datetime(2025, 4, 15, 10, tzinfo=UTC))
    board.move("late", "Knowledge", datetime.datetime(2025, 4, 16, 10, tzinfo=UTC))

    checked = experiment_check(experiment_id=experiment.pk, actor=as_actor(manager))

    # 14 / 17 = 82.35 %; the week of Apr 14: 4 / 5 = 80 %.
    assert (checked.measured_value, checked.measured_cards) == (Decimal("82.35"), 17)
    assert checked.measured_weekly == [80.0, 75.0, 100.0, 75.0]


def test_nothing_is_measured_for_a_step_the_stage_refuses(board, manager):
    experiment = plan(board, SALES)
    experiment_baseline_start(experiment_id=experiment.pk, actor=as_actor(manager), at=STARTED_AT)

    with pytest.raises(ExperimentStarted):
        experiment_baseline_start(experiment_id=experiment.pk, actor=as_actor(manager))
    with pytest.raises(CheckNotReady):
        experiment_check(
            experiment_id=experiment.pk,
            actor=as_actor(manager),
            at=datetime.datetime(2025, 5, 1, 12, 0, tzinfo=UTC),
        )

    row = Experiment.objects.get(pk=experiment.pk)
    assert (row.stage, row.baseline, row.measured_value) == (
        ExperimentStage.DO,
        Decimal("33.33"),
        None,
    )


def test_a_member_may_not_take_the_check(board, manager):
    experiment = plan(board, SALES)
    experiment_baseline_start(experiment_id=experiment.pk, actor=as_actor(manager), at=STARTED_AT)
    member = MembershipFactory(
        team=Team.objects.get(value_stream=board.stream), role=Role.MEMBER
    ).user

    with pytest.raises(PermissionRefused):
        experiment_check(experiment_id=experiment.pk, actor=as_actor(member))

    assert Experiment.objects.get(pk=experiment.pk).stage == ExperimentStage.DO


def test_the_task_takes_the_check_as_the_system_and_a_refusal_is_no_failure(
    board, manager, eager_tasks
):
    experiment = plan(board, SALES)
    experiment_baseline_start(experiment_id=experiment.pk, actor=as_actor(manager), at=STARTED_AT)

    assert tasks.experiment_check.delay(experiment.pk).get() == {
        "experiment_id": experiment.pk,
        "checked": True,
        "signal": True,
    }
    entry = AuditEntry.objects.filter(action="experiment.checked").latest("id")
    assert (entry.actor_kind, entry.actor_system) == ("system", "experiment-check")
    assert tasks.experiment_check.delay(experiment.pk + 1000).get() == {
        "experiment_id": experiment.pk + 1000,
        "checked": False,
        "refused": "experiment_not_found",
    }


def test_the_system_checks_an_experiment_once_its_window_is_over(board, manager, eager_tasks):
    """Window 14 Apr - 11 May 2025: over at midnight on 12 May. Checked by the hourly
    task on 12 May; not during the window, nor 15 days after it (its team decides)."""
    experiment = plan(board, SALES)
    experiment_baseline_start(experiment_id=experiment.pk, actor=as_actor(manager), at=STARTED_AT)
    over = datetime.datetime(2025, 5, 12, tzinfo=UTC)

    assert experiments_due_for_check(at=over - datetime.timedelta(hours=1)) == []
    assert experiments_due_for_check(at=over + datetime.timedelta(days=15)) == []
    with mock.patch("django.utils.timezone.now", lambda: over + datetime.timedelta(hours=7)):
        assert tasks.experiment_checks_due.delay().get() == {"queued": 1}
        assert experiments_due_for_check() == []  # checked: out of Do

    experiment.refresh_from_db()
    assert (experiment.stage, experiment.measured_value) == (ExperimentStage.CHECK, 81.25)
    entry = AuditEntry.objects.filter(action="experiment.checked").latest("id")
    assert entry.actor_system == "experiment-check"


# --- the measuring table, metric by metric --------------------------------------------


def test_every_targeted_metric_has_its_measure():
    assert set(MEASURES) == set(TargetedMetric.values)


# Sales/Buying, by hand. Per week, with m movers: 4 departures (m won Friday, 4 - m lost
# Thursday). Each won card took Monday 09:00 to Friday 09:00 in the cycle: 4 days (the
# lost ones are abandoned, outside the percentiles). In Information a mover stayed
# Tuesday to Wednesday (1 day), a lost card Tuesday to Thursday (2 days). Information's
# end-of-day WIP: Mon 0, Tue 4, Wed 4 - m, Thu-Sun 0, a weekly mean of (8 - m) / 7.
# Referral (n = 0, 2): 2 arrivals a week; won when n < m: 1 of 2 in every baseline week
# (m = 1 or 2), both in every window week (m = 3 or 4).
#
# Baseline (m = 1 2 1 2 1 1; 8 movers, 16 lost):
# - time in Information: 8 x 1 day, 16 x 2 days; p50 = rank 12 of 24 = 2; p85 = rank
#   ceil(20.4) = 21 = 2. Weekly p50 (rank 2 of 4): m = 1 -> [1 2 2 2] = 2, m = 2 -> 1.
#   Weekly p85 (rank 4 of 4): 2.
# - WIP: weekly 7/7, 6/7, 7/7, 6/7, 7/7, 7/7; mean (6 x 8 - 8) / 42 = 0.952381.
# Window (m = 3 3 4 3; 13 movers, 3 lost):
# - time in Information: 13 x 1, 3 x 2; p50 = rank 8 of 16 = 1; p85 = rank
#   ceil(13.6) = 14 = 2. Weekly p85: m = 3 -> [1 1 1 2] = 2, m = 4 -> 1.
# - WIP: weekly 5/7, 5/7, 4/7, 5/7; mean 19 / 28 = 0.678571.
SALES_BY_HAND = {
    TargetedMetric.CONVERSION: (
        Measurement(100 / 3, 24, [25.0, 50.0, 25.0, 50.0, 25.0, 25.0]),
        Measurement(81.25, 16, [75.0, 75.0, 100.0, 75.0]),
    ),
    TargetedMetric.CYCLE_TIME_P50: (
        Measurement(4.0, 8, [4.0] * 6),
        Measurement(4.0, 13, [4.0] * 4),
    ),
    TargetedMetric.CYCLE_TIME_P85: (
        Measurement(4.0, 8, [4.0] * 6),
        Measurement(4.0, 13, [4.0] * 4),
    ),
    TargetedMetric.TIME_IN_COLUMN_P50: (
        Measurement(2.0, 24, [2.0, 1.0, 2.0, 1.0, 2.0, 2.0]),
        Measurement(1.0, 16, [1.0] * 4),
    ),
    TargetedMetric.TIME_IN_COLUMN_P85: (
        Measurement(2.0, 24, [2.0] * 6),
        Measurement(2.0, 16, [2.0, 2.0, 1.0, 2.0]),
    ),
    TargetedMetric.THROUGHPUT: (Measurement(4.0, 24, [4.0] * 6), Measurement(4.0, 16, [4.0] * 4)),
    TargetedMetric.WIP: (
        Measurement(40 / 42, 24, [1.0, 0.8571, 1.0, 0.8571, 1.0, 1.0]),
        Measurement(19 / 28, 16, [0.7143, 0.7143, 0.5714, 0.7143]),
    ),
    TargetedMetric.ARRIVALS: (Measurement(2.0, 12, [2.0] * 6), Measurement(2.0, 8, [2.0] * 4)),
    TargetedMetric.WIN_RATE: (
        Measurement(50.0, 12, [50.0] * 6),
        Measurement(100.0, 8, [100.0] * 4),
    ),
}


@pytest.mark.parametrize("metric", SALES_BY_HAND)
def test_each_measure_by_hand(board, metric):
    referral, _ = board.channels
    scope = Scope(
        stream=board.stream,
        cycle_id=cycle_of(board, SALES).pk,
        column_id=board.column(SALES, "Information").pk
        if metric in (TargetedMetric.CONVERSION, TargetedMetric.WIP)
        or metric.startswith("time_in_column")
        else None,
        channel_id=referral.pk
        if metric in (TargetedMetric.ARRIVALS, TargetedMetric.WIN_RATE)
        else None,
    )
    baseline, window = SALES_BY_HAND[metric]

    for period, expected in ((BASELINE, baseline), (WINDOW, window)):
        measured = MEASURES[metric](scope, period)
        assert measured.value == pytest.approx(expected.value)
        assert (measured.cards, measured.weekly) == (expected.cards, expected.weekly)


def test_a_trailing_partial_week_counts_in_the_value_not_as_a_point(board):
    """Arrivals through Referral from Mon Apr 14 to Wed Apr 23: 2 in the first week, 2 more
    on Monday Apr 21 (a partial week): 4 over 10 days = 2.8 a week; one weekly point."""
    referral, _ = board.channels
    scope = Scope(stream=board.stream, cycle_id=cycle_of(board, SALES).pk, channel_id=referral.pk)

    measured = MEASURES[TargetedMetric.ARRIVALS](
        scope, Period(WINDOW_START, datetime.date(2025, 4, 23))
    )

    assert (measured.value, measured.cards, measured.weekly) == (pytest.approx(2.8), 4, [2.0])


# --- the detection rules --------------------------------------------------------------

# Limits 4 .. 16 around 10: the halfway lines are 7 and 13.
LIMITS = XmR(mean=10.0, upper=16.0, lower=4.0, average_moving_range=2.26)


@pytest.mark.parametrize(
    ("weekly", "rule", "week"),
    [
        ([12.0, 17.0], SignalRule.BEYOND_UPPER_LIMIT, 1),
        ([12.0, 3.0], SignalRule.BEYOND_LOWER_LIMIT, 1),
        ([14.0, 14.0, 12.0, 14.0], SignalRule.THREE_OF_FOUR_UPPER, 3),
        ([6.0, 11.0, 6.0, 6.0], SignalRule.THREE_OF_FOUR_LOWER, 3),
        ([None, 14.0, 14.0, None, 12.0, 14.0], SignalRule.THREE_OF_FOUR_UPPER, 5),
        ([14.0, 14.0, 14.0, 17.0], SignalRule.BEYOND_UPPER_LIMIT, 3),  # rule 1 first
        ([11.0] * 8, SignalRule.RUN_OF_EIGHT_ABOVE, 7),
        ([9.0] * 9, SignalRule.RUN_OF_EIGHT_BELOW, 7),
        ([11.0] * 7, SignalRule.NONE, None),  # too short for a run
        ([9.0] * 4 + [10.0] + [9.0] * 4, SignalRule.NONE, None),  # on the line: no run
        ([14.0, 14.0, 14.0], SignalRule.NONE, None),  # three weeks: no "3 of 4"
        ([13.0, 13.0, 13.0, 13.0], SignalRule.NONE, None),  # on the halfway line
    ],
)
def test_wheeler_s_detection_rules(weekly, rule, week):
    verdict = experiment_verdict(LIMITS, weekly)

    assert (verdict.rule, verdict.week, verdict.signal) == (rule, week, rule != SignalRule.NONE)


def test_no_limits_no_signal():
    assert experiment_verdict(XmR(), [100.0, 0.0]).rule == SignalRule.NONE


def test_a_share_s_upper_limit_is_capped_at_100():
    """95 +/- 2.66 x 10 would put the upper limit at 121.6: a share cannot pass 100."""
    experiment = Experiment(
        targeted_metric=TargetedMetric.WIN_RATE, baseline_weekly=[90, 100, 90, 100, 90, 100]
    )

    limits = experiment_limits(experiment)

    assert (limits.mean, limits.upper, limits.lower) == (95.0, 100.0, 68.4)
    assert experiment_verdict(limits, [100.0]).rule == SignalRule.NONE


# --- conversion at the column's exit, by hand ------------------------------------------
#
# A stream of its own; the period is the two weeks from Mon 2 June 2025 to Sun 15 June.
# Information of Sales/Buying (all at 09:00 UTC):
#   A  Information 28 May, Knowledge 3 Jun                   left in wk 0, moved on
#   B  Information 3 Jun, Knowledge 16 Jun                   left after the period
#   C  Information 3 Jun, back to Data 4 Jun, Information
#      5 Jun, Knowledge 11 Jun                               last left in wk 1, moved on
#   D  Information 4 Jun, won 5 Jun                          left in wk 0, moved on
#   E  Information 4 Jun, lost 5 Jun                         left in wk 0, did not
#   F  Information 3 Jun, back to Data 9 Jun                 left in wk 1, did not
#   G  Information 27 May, Knowledge 30 May                  left before the period
#   J  Information 3 Jun, still there                        has not left
# Left: A C D E F = 5, moved on A C D = 3: 60 %. A weekly value counts a card by its
# last exit in that week: week 0, A D of A C D E = 50 % (C went back); week 1, C of
# C F = 50 %.
# Wisdom, the cycle's last column, whose next step is leaving the cycle:
#   H  Wisdom 8 Jun, handed on 9 Jun                         left in wk 1, moved on
#   I  Wisdom 9 Jun, still there                             has not left
#   K  Wisdom 2 Jun, lost 4 Jun                              left in wk 0, did not
# 1 of 2 = 50 %; weekly 0 %, 100 %.
def test_conversion_counts_the_cards_that_left_the_column_in_the_period():
    manager = get_user_model().objects.create(username="exit-manager")
    stream = value_stream_create(
        actor=TEST_SYSTEM, name="Exits", customer_market="Anyone", manager=manager
    )
    b = Board(stream, manager)

    def at(month: int, day: int) -> datetime.datetime:
        return datetime.datetime(2025, month, day, 9, tzinfo=UTC)

    script = [
        *(("enter", card, at(5, 26)) for card in "ABCDEFGHIJK"),
        ("Information", "G", at(5, 27)), ("Information", "A", at(5, 28)),
        ("Knowledge", "G", at(5, 30)), ("Wisdom", "K", at(6, 2)),
        ("Information", "B", at(6, 3)), ("Information", "C", at(6, 3)),
        ("Information", "F", at(6, 3)), ("Information", "J", at(6, 3)),
        ("Knowledge", "A", at(6, 3)),
        ("Data", "C", at(6, 4)), ("Information", "D", at(6, 4)),
        ("Information", "E", at(6, 4)), ("lost", "K", at(6, 4)),
        ("Information", "C", at(6, 5)), ("won", "D", at(6, 5)), ("lost", "E", at(6, 5)),
        ("Wisdom", "H", at(6, 8)), ("handoff", "H", at(6, 9)), ("Wisdom", "I", at(6, 9)),
        ("Data", "F", at(6, 9)), ("Knowledge", "C", at(6, 11)),
        ("Knowledge", "B", at(6, 16)),
    ]  # fmt: skip
    for step, card, when in script:
        if step == "enter":
            b.enter(card, None, 100, when, cycle=SALES)
        elif step == "handoff":
            b.handoff(card, when)
        elif step in ("won", "lost"):
            b.close(card, Outcome(step), when)
        else:
            b.move(card, step, when)
    period = Period(datetime.date(2025, 6, 2), datetime.date(2025, 6, 15))
    cycle_id = b.column(SALES, "Information").cycle_id

    def measured(column: str) -> Measurement:
        scope = Scope(stream=stream, cycle_id=cycle_id, column_id=b.column(SALES, column).pk)
        return MEASURES[TargetedMetric.CONVERSION](scope, period)

    assert measured("Information") == Measurement(60.0, 5, [50.0, 50.0])
    assert measured("Wisdom") == Measurement(50.0, 2, [0.0, 100.0])
