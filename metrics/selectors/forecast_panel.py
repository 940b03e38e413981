"""The forecasts panel (docs/metrics.md, "Forecasts"): metrics.forecasting run on the
stream's own history, with the answers in sentences and their own track record."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, timedelta

from django.utils.dateformat import format as format_date

from metrics import forecasting
from metrics.forecasting import CONFIDENCES, MAX_DAYS, TRIALS, ForecastRefused
from metrics.selectors.cards import finished_cards
from metrics.selectors.forecast import (
    Entrants,
    daily_won,
    stream_entrants,
    stream_first_day,
)
from metrics.selectors.query import MetricsQuery
from metrics.selectors.statistics import percentile
from vsm.models import Channel

DEFAULT_HISTORY_WEEKS = 12
DEFAULT_ITEMS = 10
BACKTEST_WEEKS = 10
# The level the panel's sentences lead with, and whose backtest is judged.
LEAD_CONFIDENCE = 85
# A backtest this unlikely (or less) for an honest forecast says it promises too much.
HONESTY_TAIL = 0.05
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


def _levels_text(levels: list[Level], text) -> tuple[str, str]:
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
    """One confidence level of a past week's forecast: at least ``at_least``; held or not."""

    confidence: int
    at_least: int
    held: bool


@dataclass(frozen=True)
class AccuracyWeek:
    """A past week (``first_day`` to ``last_day``): the 7-day forecast made at its start
    from the history before it, and the deals won in it (``actual``)."""

    first_day: date
    last_day: date
    levels: list[Held]
    actual: int

    @property
    def held_text(self) -> str:
        held = [f"{level.confidence}%" for level in self.levels if level.held]
        if not held:
            return "none"
        return held[0] if len(held) == 1 else f"{', '.join(held[:-1])} and {held[-1]}"


@dataclass(frozen=True)
class Accuracy:
    """The forecast's own record over the last ``asked`` weeks (those with enough history
    before them): each level held in ``held[i].value`` of ``len(weeks)`` weeks."""

    weeks: list[AccuracyWeek]
    held: list[Level]
    asked: int
    history_weeks: int

    @property
    def lead_held(self) -> int:
        return next(level.value for level in self.held if level.confidence == LEAD_CONFIDENCE)

    @property
    def sentence(self) -> str | None:
        if not self.weeks:
            return None
        others = ", ".join(
            f"{level.confidence}%: {level.value}"
            for level in self.held
            if level.confidence != LEAD_CONFIDENCE
        )
        return (
            f"The {LEAD_CONFIDENCE}% forecast held in {self.lead_held} of {len(self.weeks)} "
            f"past weeks ({others})."
        )

    @property
    def honesty(self) -> str:
        """What an honest forecast does, and whether this record looks like one."""
        typical = (
            f"An honest {LEAD_CONFIDENCE}% forecast holds in about {LEAD_CONFIDENCE}% of "
            "weeks: 8 or 9 of 10, now and then 7 or all 10."
        )
        if self.promises_too_much:
            return (
                f"{typical} This one held less often than an honest forecast would by "
                "chance: read its numbers as promising too much."
            )
        return f"{typical} This record is in line with that."

    @property
    def promises_too_much(self) -> bool:
        """Whether the lead level held so rarely that an honest forecast (one that holds
        with its stated probability, week by week) would do so in under HONESTY_TAIL of
        such records: a binomial tail."""
        return bool(self.weeks) and (
            binomial_at_most(self.lead_held, len(self.weeks), LEAD_CONFIDENCE / 100) < HONESTY_TAIL
        )


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
    ``history_weeks`` weeks; and how the same forecast did over the last BACKTEST_WEEKS
    weeks. ``query.cycle_id`` and its weeks are ignored: won deals are the stream's.
    Five queries at most.

    Raises: ValueError when ``by`` is not after today (the form checks it first).
    """
    today = query.today
    if by <= today:
        raise ValueError("A forecast looks at least one day ahead.")
    history_days = 7 * history_weeks
    asked = history_days + 7 * BACKTEST_WEEKS
    daily = daily_won(query, days=asked)
    first = today - timedelta(days=asked)
    started = stream_first_day(query)
    if started is None:
        daily = []
    elif started > first:
        daily = daily[(started - first).days :]
    recent = daily[-history_days:]
    history = _history(recent, today=today, asked_days=history_days, started=started)

    days = days_until(today, by)
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
        accuracy=_accuracy(daily, today=today, history_weeks=history_weeks),
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
    leads = sorted(card.days for card in finished_cards(window))
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
    lag = math.ceil(percentile(leads, COHORT_MATURITY))
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
    try:
        prospects = forecasting.prospects_needed(
            items=items, days=days, won_share=answer.won_share, lead_times_days=leads
        )
    except ForecastRefused as refusal:
        return replace(answer, refused=str(refusal))
    return replace(answer, prospects=prospects)


def _accuracy(daily: list[int], *, today: date, history_weeks: int) -> Accuracy:
    result = forecasting.backtest(daily, weeks=BACKTEST_WEEKS, history_days=7 * history_weeks)
    first = today - timedelta(days=len(daily))
    return Accuracy(
        weeks=[
            AccuracyWeek(
                first_day=first + timedelta(days=week.start_index),
                last_day=first + timedelta(days=week.start_index + 6),
                levels=[Held(c, week.at_least[c], week.held[c]) for c in CONFIDENCES],
                actual=week.actual,
            )
            for week in result.weeks
        ],
        held=[Level(c, result.held[c]) for c in CONFIDENCES],
        asked=BACKTEST_WEEKS,
        history_weeks=history_weeks,
    )


def _channel_name(query: MetricsQuery) -> str | None:
    if query.channel_key is None:
        return None
    if query.channel_key == 0:
        return "No channel"
    channel = Channel.objects.filter(value_stream=query.stream, pk=query.channel_key)
    return channel.values_list("name", flat=True).first()
