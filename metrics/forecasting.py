"""Monte Carlo forecasts of won deals from a stream's own daily throughput.

Pure and seeded: no database, no clock. The method is the one flow tools use for
"how many by a date" and "when will N be done" (Vacanti, *When Will It Be Done?*,
2020): each trial draws one day of history at random, with replacement, for every day
ahead; 10,000 trials give a distribution, read at 50, 85 and 95% confidence.

- "How many by D": at c% confidence, at least the number that c% of the trials
  reached (the (100 - c)th percentile of the trials' totals, nearest rank).
- "When will N more be won": at c% confidence, within the number of days c% of the
  trials needed (their c-th percentile).

History: a sequence of daily won counts, oldest first, calendar days with nothing won
as 0. Too little history is refused with a reason (ForecastRefused), never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

CONFIDENCES = (50, 85, 95)
TRIALS = 10_000
# Fewer days than two weeks cannot show a weekly rhythm.
MIN_HISTORY_DAYS = 14
# "When" gives up after this many days: a trial that has not got there is "later".
MAX_DAYS = 730
_CHUNK_DAYS = 91


class ForecastRefused(ValueError):
    """The history cannot support a forecast; ``str(error)`` says why, for the user."""


@dataclass(frozen=True)
class HowMany:
    """Won deals by ``days`` days from now, at least ``at_least[c]`` at c% confidence."""

    days: int
    at_least: dict[int, int]
    history_days: int
    history_won: int
    trials: int


@dataclass(frozen=True)
class When:
    """Days until ``items`` more deals are won: within ``within_days[c]`` at c%
    confidence (None: not within MAX_DAYS in at least c% of the trials)."""

    items: int
    within_days: dict[int, int | None]
    history_days: int
    history_won: int
    trials: int


@dataclass(frozen=True)
class BacktestWeek:
    """One past week: the "how many in 7 days" forecast made at its start from the
    history before it, what happened, and whether each confidence level held."""

    start_index: int
    at_least: dict[int, int]
    actual: int
    held: dict[int, bool]


@dataclass(frozen=True)
class Backtest:
    """The forecast's own accuracy over past weeks: ``held[c]`` of ``len(weeks)`` weeks
    reached at least the c% forecast (an honest 85% forecast holds in about 85%)."""

    weeks: list[BacktestWeek] = field(default_factory=list)
    held: dict[int, int] = field(default_factory=dict)


def _checked(history: Sequence[int]) -> np.ndarray:
    days = np.asarray(history, dtype=np.int64)
    if days.ndim != 1 or (days < 0).any():
        raise ForecastRefused("The history must be daily counts of won deals, none negative.")
    if len(days) < MIN_HISTORY_DAYS:
        raise ForecastRefused(
            f"The history holds {len(days)} days; a forecast needs at least "
            f"{MIN_HISTORY_DAYS} (two weeks)."
        )
    if not days.sum():
        raise ForecastRefused(
            f"No deal was won in the {len(days)} days of history: there is no throughput to sample."
        )
    return days


def _rank(sorted_values: np.ndarray, p: int) -> int:
    """Nearest rank: the value at rank ceil(p x n / 100) of the sorted values."""
    return int(sorted_values[max(1, math.ceil(p * len(sorted_values) / 100)) - 1])


def how_many(history: Sequence[int], *, days: int, trials: int = TRIALS, seed: int = 0) -> HowMany:
    """How many deals will be won in the next ``days`` days.

    Raises: ForecastRefused (too little history), ValueError (``days`` < 1).
    """
    if days < 1:
        raise ValueError("A forecast looks at least one day ahead.")
    sample = _checked(history)
    rng = np.random.default_rng(seed)
    totals = np.sort(rng.choice(sample, size=(trials, days)).sum(axis=1))
    return HowMany(
        days=days,
        at_least={c: _rank(totals, 100 - c) for c in CONFIDENCES},
        history_days=len(sample),
        history_won=int(sample.sum()),
        trials=trials,
    )


def when(history: Sequence[int], *, items: int, trials: int = TRIALS, seed: int = 0) -> When:
    """In how many days ``items`` more deals will have been won.

    Raises: ForecastRefused (too little history), ValueError (``items`` < 1).
    """
    if items < 1:
        raise ValueError("Ask for at least one deal.")
    sample = _checked(history)
    rng = np.random.default_rng(seed)
    needed = np.full(trials, MAX_DAYS + 1, dtype=np.int64)
    done = np.zeros(trials, dtype=np.int64)
    for first_day in range(0, MAX_DAYS, _CHUNK_DAYS):
        open_trials = needed > MAX_DAYS
        if not open_trials.any():
            break
        chunk = min(_CHUNK_DAYS, MAX_DAYS - first_day)
        running = done[open_trials, None] + rng.choice(
            sample, size=(open_trials.sum(), chunk)
        ).cumsum(axis=1)
        reached = running >= items
        hit = reached.any(axis=1)
        days_needed = first_day + reached.argmax(axis=1) + 1
        indexes = np.flatnonzero(open_trials)
        needed[indexes[hit]] = days_needed[hit]
        done[open_trials] = running[:, -1]
    ordered = np.sort(needed)
    within = {c: _rank(ordered, c) for c in CONFIDENCES}
    return When(
        items=items,
        within_days={c: days if days <= MAX_DAYS else None for c, days in within.items()},
        history_days=len(sample),
        history_won=int(sample.sum()),
        trials=trials,
    )


def prospects_needed(
    *, items: int, days: int, won_share: float, lead_times_days: Sequence[float]
) -> int:
    """How many new prospects must enter the stream now to expect ``items`` won within
    ``days`` days: ``items`` / (the share of entrants that end won x the share of won
    deals whose lead time was at most ``days``), rounded up.

    ``won_share``: of the cards that entered the stream, the share that ended won
    (conversion to won, 0..1). ``lead_times_days``: lead times of won deals, days.
    Raises: ForecastRefused (no conversion or no lead time fits in ``days``).
    """
    if not won_share or not lead_times_days:
        raise ForecastRefused("No deal was won yet: there is no conversion to plan with.")
    in_time = sum(1 for lead in lead_times_days if lead <= days) / len(lead_times_days)
    if not in_time:
        raise ForecastRefused(
            f"No won deal took {days} days or less from entry: none entering now would "
            "be won in time."
        )
    return math.ceil(items / (won_share * in_time))


def backtest(
    history: Sequence[int],
    *,
    weeks: int = 10,
    history_days: int = 84,
    trials: int = TRIALS,
    seed: int = 0,
) -> Backtest:
    """For each of the last ``weeks`` full weeks of ``history`` (daily won counts, oldest
    first, ending with the last full day), the 7-day "how many" forecast made from the
    ``history_days`` days before it, against what was won that week.

    Weeks whose history would be too short are left out.
    """
    days = list(history)
    results = []
    for week in range(weeks, 0, -1):
        start = len(days) - 7 * week
        if start < 0:
            continue
        past = days[max(0, start - history_days) : start]
        try:
            forecast = how_many(past, days=7, trials=trials, seed=seed + start)
        except ForecastRefused:
            continue
        actual = sum(days[start : start + 7])
        results.append(
            BacktestWeek(
                start_index=start,
                at_least=forecast.at_least,
                actual=actual,
                held={c: actual >= forecast.at_least[c] for c in CONFIDENCES},
            )
        )
    return Backtest(
        weeks=results,
        held={c: sum(week.held[c] for week in results) for c in CONFIDENCES},
    )
