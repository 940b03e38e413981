"""Monte Carlo forecasts of won deals from a stream's own daily throughput.

Pure and seeded: no database, no clock. The method is the one flow tools use for
"how many by a date" and "when will N be done" (Vacanti, *When Will It Be Done?*,
2020): each trial draws one day of history at random, with replacement, for every day
ahead; 10,000 trials give a distribution, read at 50, 85 and 95% confidence.

- "How many by D": at c% confidence, at least the number that c% of the trials
  reached (the (100 - c)th percentile of the trials' totals, nearest rank).
- "When will N more be won": at c% confidence, within the number of days c% of the
  trials needed (their c-th percentile).
- Its own record (``backtest``): the "how many" forecast made at past checkpoints,
  against what was won after each.

History: a sequence of daily won counts, oldest first, calendar days with nothing won
as 0. Too little history is refused with a reason (ForecastRefused), never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from metrics.percentiles import percentile

CONFIDENCES = (50, 85, 95)
TRIALS = 10_000
# Fewer days than two weeks cannot show a weekly rhythm.
MIN_HISTORY_DAYS = 14
# "When" gives up after this many days: a trial that has not got there is "later".
MAX_DAYS = 730
_CHUNK_DAYS = 91
# The backtest's checkpoints: how many, and how many days apart.
BACKTEST_CHECKPOINTS = 10
BACKTEST_STEP_DAYS = 7
# A backtest shortens its horizon to fit its checkpoints, but not under a week: shorter
# windows hold too few wins to test anything, so it drops checkpoints instead.
MIN_BACKTEST_HORIZON = 7


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
class Checkpoint:
    """One past checkpoint: the "how many in ``horizon`` days" forecast made on day
    ``start_index`` of the history (its first day ahead) from the days before it, and
    the deals won in the ``horizon`` days from it (``actual``)."""

    start_index: int
    at_least: dict[int, int]
    actual: int

    @property
    def held(self) -> dict[int, bool]:
        return {c: self.actual >= n for c, n in self.at_least.items()}

    @property
    def could_fail(self) -> dict[int, bool]:
        """A forecast of at least 0 holds whatever happens: it cannot fail."""
        return {c: n > 0 for c, n in self.at_least.items()}


@dataclass(frozen=True)
class LevelRecord:
    """One confidence level over a backtest's checkpoints: at ``could_fail`` of them its
    forecast was above 0, and ``held`` of those held; at ``was_zero`` more it was 0,
    which always holds and so says nothing about the level."""

    confidence: int
    could_fail: int
    held: int
    was_zero: int


@dataclass(frozen=True)
class Backtest:
    """The forecast's own record (see ``backtest``): ``checkpoints`` oldest first,
    ``levels[c]`` for each confidence. ``horizon``: the days ahead each forecast looked,
    ``asked_horizon`` or fewer when the history is too short for it; ``fitted``: the
    checkpoints that fit in the history (``asked`` or fewer), ``no_win`` of them left
    out because no deal was won in the days before them."""

    horizon: int
    asked_horizon: int
    asked: int
    fitted: int
    no_win: int
    checkpoints: list[Checkpoint] = field(default_factory=list)
    levels: dict[int, LevelRecord] = field(default_factory=dict)

    @property
    def shortened(self) -> bool:
        return self.horizon < self.asked_horizon


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


def _trials_percentile(ordered: np.ndarray, p: int) -> int:
    """The p-th nearest-rank percentile of the trials' sorted outcomes (one per trial)."""
    value = percentile(ordered, p)
    assert value is not None  # one outcome per trial, and there are trials
    return int(value)


def how_many(history: Sequence[int], *, days: int, trials: int = TRIALS, seed: int = 0) -> HowMany:
    """How many deals will be won in the next ``days`` days.

    Raises: ForecastRefused (too little history), ValueError (``days`` < 1).
    """
    if days < 1:
        raise ValueError("A forecast looks at least one day ahead.")
    sample = _checked(history)
    rng = np.random.default_rng(seed)
    # A trial's total depends only on how many times it drew each daily count: drawing
    # those numbers at once (multinomial) is the same distribution as drawing day by
    # day, at a cost that does not grow with ``days`` (the backtest runs ten of these).
    values, counts = np.unique(sample, return_counts=True)
    totals = np.sort(rng.multinomial(days, counts / len(sample), size=trials) @ values)
    return HowMany(
        days=days,
        at_least={c: _trials_percentile(totals, 100 - c) for c in CONFIDENCES},
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
    within = {c: _trials_percentile(ordered, c) for c in CONFIDENCES}
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


def backtest_fit(
    available_days: int, *, horizon: int, history_days: int, checkpoints: int, step: int
) -> tuple[int, int]:
    """The horizon and the number of checkpoints a backtest of ``available_days`` of
    history can hold, each checkpoint with ``history_days`` before it and its horizon
    after it, ``step`` days apart: the ``horizon`` asked and all ``checkpoints`` when they
    fit; else all the checkpoints with the horizon shortened to what fits, down to
    MIN_BACKTEST_HORIZON days (or the horizon asked, when shorter); else as many
    checkpoints as fit at that shortest horizon (maybe none).
    """
    room = available_days - history_days
    if room >= step * (checkpoints - 1) + horizon:
        return horizon, checkpoints
    shortest = min(horizon, MIN_BACKTEST_HORIZON)
    if room - step * (checkpoints - 1) >= shortest:
        return room - step * (checkpoints - 1), checkpoints
    if room < shortest:
        return shortest, 0
    return shortest, (room - shortest) // step + 1


def backtest(
    history: Sequence[int],
    *,
    horizon: int,
    checkpoints: int = BACKTEST_CHECKPOINTS,
    step: int = BACKTEST_STEP_DAYS,
    history_days: int = 84,
    trials: int = TRIALS,
    seed: int = 0,
) -> Backtest:
    """How the "how many in ``horizon`` days" forecast did at the last ``checkpoints``
    checkpoints of ``history``, ``step`` days apart.

    ``history``: daily won counts, oldest first, ending with the last full day, from the
    stream's first day (days before it are no history). Units: days and won deals. The
    last checkpoint starts ``horizon`` days before the history ends, so its days end
    with it; each one before it starts ``step`` days earlier. At each, the forecast
    ``how_many`` makes from the ``history_days`` days before it (seeded ``seed`` + its
    start), as the panel would have made it that day, against the deals won in the
    ``horizon`` days from it. With a horizon longer than the step the checkpoints'
    windows overlap: a good or bad month counts at several of them, so they are not
    independent trials.

    Returns a Backtest: the checkpoints oldest first, and per confidence level a
    LevelRecord. Left out, and said so:

    - what does not fit: the horizon and the number of checkpoints are what the history
      holds (``backtest_fit``): a short history shortens the horizon (``horizon`` <
      ``asked_horizon``), then drops the oldest checkpoints (``fitted`` < ``asked``);
    - a checkpoint whose ``history_days`` held no win: ``how_many`` refuses it, there
      was no forecast to check; counted in ``no_win``, not replaced by an older one;
    - at each level, a checkpoint whose forecast was 0: "at least 0" always holds, so it
      says nothing about the level; counted in ``was_zero``, apart from ``could_fail``
      and ``held``.

    Raises: ValueError (``horizon`` or ``checkpoints`` < 1).
    """
    if horizon < 1 or checkpoints < 1:
        raise ValueError("A backtest looks at least one day ahead, at one checkpoint at least.")
    days = list(history)
    used_horizon, fitted = backtest_fit(
        len(days), horizon=horizon, history_days=history_days, checkpoints=checkpoints, step=step
    )
    results = []
    for back in range(fitted - 1, -1, -1):
        start = len(days) - used_horizon - step * back
        try:
            forecast = how_many(
                days[start - history_days : start],
                days=used_horizon,
                trials=trials,
                seed=seed + start,
            )
        except ForecastRefused:
            continue
        results.append(
            Checkpoint(
                start_index=start,
                at_least=forecast.at_least,
                actual=sum(days[start : start + used_horizon]),
            )
        )
    levels = {}
    for c in CONFIDENCES:
        informative = [point for point in results if point.could_fail[c]]
        levels[c] = LevelRecord(
            confidence=c,
            could_fail=len(informative),
            held=sum(point.held[c] for point in informative),
            was_zero=len(results) - len(informative),
        )
    return Backtest(
        horizon=used_horizon,
        asked_horizon=horizon,
        asked=checkpoints,
        fitted=fitted,
        no_win=fitted - len(results),
        checkpoints=results,
        levels=levels,
    )
