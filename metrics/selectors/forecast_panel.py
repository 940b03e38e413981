"""The forecasts panel (docs/metrics.md, "Forecasts"): metrics.forecasting run on the
stream's own history, with the answers in sentences and their own track record."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta

from django.utils.dateformat import format as format_date

from metrics import forecasting
from metrics.forecasting import (
    BACKTEST_CHECKPOINTS,
    BACKTEST_STEP_DAYS,
    CONFIDENCES,
    MAX_DAYS,
    MIN_HISTORY_DAYS,
    TRIALS,
    ForecastRefused,
    LevelRecord,
)
from metrics.selectors.cards import finished_days
from metrics.selectors.forecast import (
    Entrants,
    daily_won,
    stream_entrants,
    stream_first_day,
)
from metrics.selectors.query import MetricsQuery
from metrics.selectors.statistics import percentile
from vsm.caching import cached
from vsm.models import Channel

# The track record changes once a day, when yesterday joins the history.
BACKTEST_CACHE_SECONDS = 24 * 60 * 60
# Part of the cache key: change it whenever forecasting.backtest's method changes, so
# no process reads a record computed the old way.
BACKTEST_METHOD = "horizon-checkpoints-1"
DEFAULT_HISTORY_WEEKS = 12
DEFAULT_ITEMS = 10
# The level the panel's sentences lead with, and whose backtest is judged.
LEAD_CONFIDENCE = 85
# A backtest this unlikely (or less) for an honest forecast says it promises too much.
HONESTY_TAIL = 0.05
# Fewer checkpoints than this where the lead level could fail (its forecast above 0)
# cannot judge it: on 4, an honest 85% forecast holds at all of them half the time
# (0.85^4 = 52%) and a poor one often does too.
MIN_INFORMATIVE = 5
# Conversion is measured on prospects old enough for this share of won deals (by lead
# time) to have closed: a younger cohort has not had the time to be won.
COHORT_MATURITY = 85


def end_of_next_month(today: date) -> date:
    """The last day of the month after ``today``'s: the panel's default date."""
    year, month = divmod(today.month + 1, 12)
    return date(today.year + year, month + 1, 1) - timedelta(days=1)


def days_until(today: date, by: date) -> int:
    """The days a forecast from ``today`` to ``by`` counts, both included: the history
    ends yesterday, so today is the first day ahead."""
    return (by - today).days + 1


def day_text(day: date) -> str:
    return format_date(day, "j M Y")


def between_text(first: date, last: date) -> str:
    """A span of days in words, "between 1 Jun and 24 Aug 2026": the first day's year
    too when it differs."""
    first_text = format_date(first, "j M" if first.year == last.year else "j M Y")
    return f"between {first_text} and {day_text(last)}"


def deals_text(count: int) -> str:
    return f"{count:,} deal" if count == 1 else f"{count:,} deals"


@dataclass(frozen=True)
class Level:
    """One confidence level's answer: deals (``value``), or days and the date they run to."""

    confidence: int
    value: int | None
    day: date | None = None


def _levels_text(levels: list[Level], text: Callable[[Level], str]) -> tuple[str, str]:
    """The lead level's text, and the others' as "(50%: ..., 95%: ...)"."""
    lead = next(level for level in levels if level.confidence == LEAD_CONFIDENCE)
    others = ", ".join(
        f"{level.confidence}%: {text(level)}"
        for level in levels
        if level.confidence != LEAD_CONFIDENCE
    )
    return text(lead), f"({others})"


@dataclass(frozen=True)
class HistoryWeek:
    """Won deals over the history's days ``first_day`` to ``last_day`` (7, or fewer for
    the oldest when the stream is younger than the history asked for)."""

    first_day: date
    last_day: date
    won: int


@dataclass(frozen=True)
class History:
    """The daily won throughput the forecasts sample: ``days`` full days, the last one
    yesterday, ``won`` deals in them, by 7-day block (oldest first). ``asked_days``: the
    history asked for; fewer when the stream's first prospect entered later."""

    first_day: date | None
    last_day: date
    days: int
    asked_days: int
    won: int
    weeks: list[HistoryWeek]
    stream_started: date | None

    @property
    def per_week(self) -> float | None:
        return round(self.won * 7 / self.days, 1) if self.days else None

    @property
    def shortened(self) -> bool:
        return self.days < self.asked_days


@dataclass(frozen=True)
class HowManyAnswer:
    """Deals won from today to ``by`` (``days`` days, today included): at least
    ``levels[i].value`` at each confidence; ``refused``: why there is no forecast."""

    today: date
    by: date
    days: int
    levels: list[Level]
    refused: str | None = None

    @property
    def sentence(self) -> str:
        if self.refused:
            return f"No forecast: {self.refused}"
        lead, others = _levels_text(self.levels, lambda level: f"{level.value:,}")
        deals = "deal" if lead == "1" else "deals"
        return (
            f"By {day_text(self.by)}: at least {lead} {deals} won with {LEAD_CONFIDENCE}% "
            f"confidence {others}."
        )

    @property
    def span(self) -> str:
        return (
            f"Counted from today, {day_text(self.today)}, to {day_text(self.by)}: "
            f"{self.days} days, today included."
        )


@dataclass(frozen=True)
class WhenAnswer:
    """When ``items`` more deals will have been won: by ``levels[i].day`` (after
    ``levels[i].value`` days, today the first) at each confidence; None: not within
    MAX_DAYS."""

    items: int
    levels: list[Level]
    refused: str | None = None

    @property
    def sentence(self) -> str:
        if self.refused:
            return f"No forecast: {self.refused}"

        def text(level: Level) -> str:
            if level.day is None:
                return f"not within {MAX_DAYS} days"
            return f"by {day_text(level.day)}"

        lead, others = _levels_text(self.levels, text)
        return (
            f"{self.items:,} more {'deal' if self.items == 1 else 'deals'} won: {lead} with "
            f"{LEAD_CONFIDENCE}% confidence "
            f"{others}."
        )


@dataclass(frozen=True)
class ProspectsAnswer:
    """New prospects that must enter the stream now to expect ``items`` won by ``by``
    (``days`` days, today included): ``items`` / (won share of a mature cohort x share
    of the won deals whose lead time fits in ``days``), rounded up.

    ``won_leads``: the deals won in the window (from ``won_since``; their lead times),
    ``in_time``: those that took ``days`` or less. ``entrants``: the cohort, the window
    shifted back by the COHORT_MATURITY-th percentile of those lead times (whole days,
    rounded up); None when no deal was won in the window (no lag to shift by)."""

    items: int
    by: date
    days: int
    won_since: date
    entrants: Entrants | None
    won_leads: int
    in_time: int
    prospects: int | None
    refused: str | None = None

    @property
    def won_share(self) -> float | None:
        if self.entrants is None or not self.entrants.entered:
            return None
        return self.entrants.won / self.entrants.entered

    @property
    def in_time_share(self) -> float | None:
        return self.in_time / self.won_leads if self.won_leads else None

    @property
    def sentence(self) -> str:
        if self.refused:
            return f"No estimate: {self.refused}"
        return (
            f"To expect {deals_text(self.items)} won by {day_text(self.by)} from new "
            f"prospects alone, about {self.prospects:,} new prospects must enter Data now."
        )

    @property
    def basis(self) -> str:
        entrants = self.entrants
        if entrants is None:
            return ""
        share, in_time = self.won_share or 0.0, self.in_time_share or 0.0
        still_open = ""
        if entrants.still_open:
            verb = "counts" if entrants.still_open == 1 else "count"
            still_open = f"; the {entrants.still_open:,} still open {verb} as not won"
        return (
            f"Of the {entrants.entered:,} prospects that entered "
            f"{between_text(entrants.since, entrants.until)} — old enough for "
            f"{COHORT_MATURITY}% of won deals (lead time up to {entrants.lag_days} days) to "
            f"have closed — {entrants.won:,} ended won ({share:.0%}{still_open}). "
            f"Of the {self.won_leads:,} deals won since {day_text(self.won_since)}, "
            f"{self.in_time:,} ({in_time:.0%}) took {self.days} days or less from entry to "
            f"won. Each prospect entering now brings {share * in_time:.3f} wins by then on "
            "average."
        )


@dataclass(frozen=True)
class Held:
    """One confidence level of a past checkpoint's forecast: at least ``at_least``; held
    or not. A forecast of at least 0 held whatever happened: it could not fail."""

    confidence: int
    at_least: int
    held: bool

    @property
    def could_fail(self) -> bool:
        return self.at_least > 0


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _checkpoints_text(count: int) -> str:
    return f"{count:,} checkpoint" if count == 1 else f"{count:,} checkpoints"


@dataclass(frozen=True)
class AccuracyCheckpoint:
    """A past checkpoint: the forecast for the days ``first_day`` to ``last_day`` made
    on the first of them (from the history before it, as the panel forecasts from
    today), and the deals won in those days (``actual``)."""

    first_day: date
    last_day: date
    levels: list[Held]
    actual: int

    @property
    def held_text(self) -> str:
        """The levels that held where they could fail, then those that were 0."""
        held = [f"{level.confidence}%" for level in self.levels if level.could_fail and level.held]
        zero = [f"{level.confidence}%" for level in self.levels if not level.could_fail]
        text = _and(held) if held else "none"
        if zero:
            text += f" ({_and(zero)} {'was' if len(zero) == 1 else 'were'} 0)"
        return text


@dataclass(frozen=True)
class Accuracy:
    """The forecast's own record (metrics.forecasting.backtest): at the last ``asked``
    checkpoints, ``step`` days apart, or the ``fitted`` that the stream's
    ``available_days`` of history hold, the forecast for ``horizon`` days ahead
    (``asked_horizon``, or fewer when it does not fit) made from the ``history_weeks``
    weeks before each; ``no_win`` of them left out (no win in those weeks). ``levels``:
    each confidence level's record, where it could fail and where it was 0."""

    checkpoints: list[AccuracyCheckpoint]
    levels: list[LevelRecord]
    horizon: int
    asked_horizon: int
    asked: int
    fitted: int
    no_win: int
    step: int
    history_weeks: int
    available_days: int

    @property
    def lead(self) -> LevelRecord:
        return next(level for level in self.levels if level.confidence == LEAD_CONFIDENCE)

    @property
    def shortened(self) -> bool:
        return self.horizon < self.asked_horizon

    @property
    def sentence(self) -> str | None:
        if not self.checkpoints:
            return None

        def record(level: LevelRecord) -> str:
            if not level.could_fail:
                return "could not fail"
            return f"{level.held} of {level.could_fail}"

        others = ", ".join(
            f"{level.confidence}%: {record(level)}"
            for level in self.levels
            if level.confidence != LEAD_CONFIDENCE
        )
        count = len(self.checkpoints)
        where = f"At {_checkpoints_text(count)}"
        if count > 1:
            where += f", {self.step} days apart,"
        lead = f"the {LEAD_CONFIDENCE}% forecast for the {self.horizon} days ahead"
        if not self.lead.could_fail:
            return f"{where} {lead} was 0 every time: it could not fail ({others})."
        return (
            f"{where} {lead} held at {self.lead.held} of the {self.lead.could_fail} where it "
            f"could fail ({others})."
        )

    @property
    def zeros(self) -> str | None:
        """At how many checkpoints each level was 0: those say nothing about it."""
        count = len(self.checkpoints)
        groups: dict[int, list[int]] = {}
        for level in self.levels:
            if level.was_zero:
                groups.setdefault(level.was_zero, []).append(level.confidence)
        clauses: list[str] = []
        for was_zero, confidences in groups.items():
            at = f"all {count}" if was_zero == count else f"{was_zero}"
            if not clauses:
                if was_zero != count:
                    at += f" of the {count}"
                at += " checkpoint" if count == 1 else " checkpoints"
            levels = _and([f"{c}%" for c in confidences])
            forecasts = "forecast was" if len(confidences) == 1 else "forecasts were"
            clauses.append(f"at {at} the {levels} {forecasts} 0")
        if not clauses:
            return None
        text = _and(clauses)
        return (
            f"{text[0].upper()}{text[1:]}. At least 0 always holds: those checkpoints say "
            "nothing about that level and are left out of its record."
        )

    @property
    def judged(self) -> bool:
        """Whether the lead level could fail at enough checkpoints to judge it."""
        return self.lead.could_fail >= MIN_INFORMATIVE

    @property
    def least_honest(self) -> int:
        """The fewest held checkpoints (of those where the lead level could fail) that an
        honest forecast shows in at least HONESTY_TAIL of such records."""
        n, p = self.lead.could_fail, LEAD_CONFIDENCE / 100
        return next(k for k in range(n + 1) if binomial_at_most(k, n, p) >= HONESTY_TAIL)

    @property
    def honesty(self) -> str:
        """What an honest forecast does, and whether this record looks like one."""
        n = self.lead.could_fail
        if not self.judged:
            if not n:
                could = "it could fail at none of them"
            elif n < len(self.checkpoints):
                could = f"it could fail at only {n} of the {len(self.checkpoints)}"
            else:
                could = f"there {'is' if n == 1 else 'are'} only {n}"
            return (
                f"Too few informative checkpoints to judge the {LEAD_CONFIDENCE}% forecast: "
                f"{could}, and at least {MIN_INFORMATIVE} are needed."
            )
        typical = (
            f"An honest {LEAD_CONFIDENCE}% forecast holds at about {LEAD_CONFIDENCE}% of the "
            f"checkpoints where it can fail; holding at fewer than {self.least_honest} of "
            f"{n} would happen to it by chance in under {HONESTY_TAIL:.0%} of such records."
        )
        if self.promises_too_much:
            return (
                f"{typical} This one held less often than that: read its numbers as "
                "promising too much."
            )
        return f"{typical} This record is in line with that."

    @property
    def promises_too_much(self) -> bool:
        """Whether the lead level, where it could fail, held so rarely that an honest
        forecast (one that holds with its stated probability, checkpoint by checkpoint)
        would do so in under HONESTY_TAIL of such records: a binomial tail. Never on
        fewer than MIN_INFORMATIVE such checkpoints."""
        return self.judged and (
            binomial_at_most(self.lead.held, self.lead.could_fail, LEAD_CONFIDENCE / 100)
            < HONESTY_TAIL
        )

    @property
    def scope(self) -> str:
        """What each checkpoint is, and what the stream's history cut short."""
        weeks = f"{self.history_weeks} weeks"
        parts = [
            f"Each checkpoint: the forecast for the {self.horizon} days from it, made as "
            f"this panel would have made it that day from the {weeks} before it, against "
            "the deals won in those days."
        ]
        if self.horizon > self.step and self.fitted > 1:
            parts.append(
                f"The checkpoints are {self.step} days apart, so their {self.horizon}-day "
                "windows overlap: a good or bad spell counts at several of them, and the "
                "record is less sure than its count reads."
            )
        if self.shortened or self.fitted < self.asked:
            fewer = self.fitted < self.asked
            held = (
                f"only {self.fitted} of the {self.asked} checkpoints"
                if fewer
                else f"the {self.asked} checkpoints"
            )
            ahead = ""
            if self.shortened:
                ahead = (
                    f"{', and' if fewer else ''} only for {self.horizon} days ahead, not the "
                    f"{self.asked_horizon} asked"
                )
            parts.append(
                f"The stream's {self.available_days} days of history hold {held}{ahead} "
                f"(each needs the {weeks} before it and the days ahead after it)."
            )
        if self.no_win:
            them = "it" if self.no_win == 1 else "them"
            parts.append(
                f"{_checkpoints_text(self.no_win).capitalize()} left out: no deal was won "
                f"in the {weeks} before {them}, so there was no forecast to check."
            )
        return " ".join(parts)

    @property
    def nothing(self) -> str:
        """Why there is no record, when there is none."""
        if self.fitted:
            return (
                f"Nothing to check yet: no deal was won in the {self.history_weeks} weeks "
                f"before any of the last {_checkpoints_text(self.fitted)}."
            )
        text = (
            f"Nothing to check yet: a past checkpoint needs the {self.history_weeks} weeks "
            f"of history before it and at least {self.horizon} days after it; the stream "
            f"has {self.available_days} days."
        )
        if 7 * self.history_weeks > MIN_HISTORY_DAYS:
            text += " A shorter history gives a record sooner."
        return text


def binomial_at_most(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@dataclass(frozen=True)
class ForecastPanel:
    """Everything the forecasts panel shows for one stream (one channel's deals with
    ``channel_key``), as of ``today`` (settings.TIME_ZONE)."""

    today: date
    channel_key: int | None
    channel_name: str | None
    trials: int
    max_days: int
    history: History
    how_many: HowManyAnswer
    when: WhenAnswer
    prospects: ProspectsAnswer
    accuracy: Accuracy


def forecast_panel(
    query: MetricsQuery, *, history_weeks: int, by: date, items: int
) -> ForecastPanel:
    """The panel's answers from ``query.today``: how many deals won by ``by``, when
    ``items`` more will be won, how many prospects must enter to expect ``items`` won by
    ``by`` (conversion measured on the prospects old enough for COHORT_MATURITY% of the
    window's won deals to have closed), sampling the won deals of the last
    ``history_weeks`` weeks; and how the same "how many" forecast, for as many days
    ahead, did at the last BACKTEST_CHECKPOINTS checkpoints (metrics.forecasting.backtest;
    fewer days ahead, or fewer checkpoints, when the stream's history is too short).
    ``query.cycle_id`` and its weeks are ignored: won deals are the stream's.
    Five queries at most.

    Raises: ValueError when ``by`` is not after today (the form checks it first).
    """
    today = query.today
    if by <= today:
        raise ValueError("A forecast looks at least one day ahead.")
    history_days = 7 * history_weeks
    days = days_until(today, by)
    # Enough for the backtest's oldest checkpoint: its history, then the days ahead.
    asked = history_days + BACKTEST_STEP_DAYS * (BACKTEST_CHECKPOINTS - 1) + days
    daily = daily_won(query, days=asked)
    first = today - timedelta(days=asked)
    started = stream_first_day(query)
    if started is None:
        daily = []
    elif started > first:
        daily = daily[(started - first).days :]
    recent = daily[-history_days:]
    history = _history(recent, today=today, asked_days=history_days, started=started)

    how_many, when = _throughput_answers(recent, today=today, by=by, days=days, items=items)
    window = replace(query, weeks=history_weeks, cycle_id=None)
    return ForecastPanel(
        today=today,
        channel_key=query.channel_key,
        channel_name=_channel_name(query),
        trials=TRIALS,
        max_days=MAX_DAYS,
        history=history,
        how_many=how_many,
        when=when,
        prospects=_prospects(window, by=by, days=days, items=items, started=started),
        accuracy=_accuracy(daily, today=today, history_weeks=history_weeks, days=days),
    )


def _history(recent: list[int], *, today: date, asked_days: int, started: date | None) -> History:
    weeks = []
    for end in range(len(recent), 0, -7):
        start = max(0, end - 7)
        weeks.append(
            HistoryWeek(
                first_day=today - timedelta(days=len(recent) - start),
                last_day=today - timedelta(days=len(recent) - end + 1),
                won=sum(recent[start:end]),
            )
        )
    return History(
        first_day=today - timedelta(days=len(recent)) if recent else None,
        last_day=today - timedelta(days=1),
        days=len(recent),
        asked_days=asked_days,
        won=sum(recent),
        weeks=weeks[::-1],
        stream_started=started,
    )


def _throughput_answers(
    recent: list[int], *, today: date, by: date, days: int, items: int
) -> tuple[HowManyAnswer, WhenAnswer]:
    try:
        how_many = forecasting.how_many(recent, days=days)
        when = forecasting.when(recent, items=items)
    except ForecastRefused as refusal:
        return (
            HowManyAnswer(today=today, by=by, days=days, levels=[], refused=str(refusal)),
            WhenAnswer(items=items, levels=[], refused=str(refusal)),
        )
    return (
        HowManyAnswer(
            today=today,
            by=by,
            days=days,
            levels=[Level(c, how_many.at_least[c]) for c in CONFIDENCES],
        ),
        WhenAnswer(
            items=items,
            levels=[
                Level(c, n, None if n is None else today + timedelta(days=n - 1))
                for c, n in when.within_days.items()
            ],
        ),
    )


def _prospects(
    window: MetricsQuery, *, by: date, days: int, items: int, started: date | None
) -> ProspectsAnswer:
    leads = finished_days(window)
    won_since = window.window().start
    answer = ProspectsAnswer(
        items=items,
        by=by,
        days=days,
        won_since=won_since,
        entrants=None,
        won_leads=len(leads),
        in_time=sum(1 for lead in leads if lead <= days),
        prospects=None,
    )
    if not leads:
        return replace(
            answer,
            refused=(
                f"No deal was won since {day_text(won_since)}: there is no conversion to plan with."
            ),
        )
    lag_days = percentile(leads, COHORT_MATURITY)
    assert lag_days is not None  # leads is not empty (above)
    lag = math.ceil(lag_days)
    entrants = stream_entrants(window, lag_days=lag)
    answer = replace(answer, entrants=entrants)
    if not entrants.entered:
        # Prospects before the cohort's last day mean a gap in arrivals (or in one
        # channel's), not a stream too young to measure.
        if started is None or started >= entrants.until:
            reason = (
                f"The stream's prospects are younger than {lag} days, the time "
                f"{COHORT_MATURITY}% of won deals took: too early to measure conversion."
            )
        else:
            reason = (
                f"No prospect entered {between_text(entrants.since, entrants.until)} (old "
                f"enough for {COHORT_MATURITY}% of won deals to have closed): there is no "
                "conversion to plan with."
            )
        return replace(answer, refused=reason)
    if not entrants.won:
        return replace(
            answer,
            refused=(
                f"No prospect that entered {between_text(entrants.since, entrants.until)} "
                f"has been won ({entrants.entered:,} entered): there is no conversion to plan "
                "with."
            ),
        )
    won_share = answer.won_share
    assert won_share is not None  # entrants entered (above)
    try:
        prospects = forecasting.prospects_needed(
            items=items, days=days, won_share=won_share, lead_times_days=leads
        )
    except ForecastRefused as refusal:
        return replace(answer, refused=str(refusal))
    return replace(answer, prospects=prospects)


def _backtest(daily: list[int], *, horizon: int, history_days: int) -> forecasting.Backtest:
    """forecasting.backtest, kept in the cache for a day: its answer depends only on
    the history (which ends yesterday) and the two numbers, and it runs ten 10,000-trial
    forecasts. A cache that fails is skipped, never the panel."""
    digest = hashlib.sha256(repr((daily, horizon, history_days, TRIALS)).encode()).hexdigest()
    key = f"vsm:backtest:{BACKTEST_METHOD}:{digest}"
    return cached(
        key,
        lambda: forecasting.backtest(daily, horizon=horizon, history_days=history_days),
        kind=forecasting.Backtest,
        timeout=BACKTEST_CACHE_SECONDS,
    )


def _accuracy(daily: list[int], *, today: date, history_weeks: int, days: int) -> Accuracy:
    result = _backtest(daily, horizon=days, history_days=7 * history_weeks)
    first = today - timedelta(days=len(daily))
    return Accuracy(
        checkpoints=[
            AccuracyCheckpoint(
                first_day=first + timedelta(days=point.start_index),
                last_day=first + timedelta(days=point.start_index + result.horizon - 1),
                levels=[Held(c, point.at_least[c], point.held[c]) for c in CONFIDENCES],
                actual=point.actual,
            )
            for point in result.checkpoints
        ],
        levels=[result.levels[c] for c in CONFIDENCES],
        horizon=result.horizon,
        asked_horizon=result.asked_horizon,
        asked=result.asked,
        fitted=result.fitted,
        no_win=result.no_win,
        step=BACKTEST_STEP_DAYS,
        history_weeks=history_weeks,
        available_days=len(daily),
    )


def _channel_name(query: MetricsQuery) -> str | None:
    if query.channel_key is None:
        return None
    if query.channel_key == 0:
        return "No channel"
    channel = Channel.objects.filter(value_stream=query.stream, pk=query.channel_key)
    return channel.values_list("name", flat=True).first()
