"""Statistics of the document: nearest-rank percentiles, duration spreads, XmR."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from metrics.percentiles import percentile
from metrics.selectors.readmodel import Distribution, Signal, XmR

PERCENTILES = (50, 70, 85, 95)
XMR_SCALING = 2.66
MOVING_RANGE_SCALING = 3.268
DAY = 86_400


@dataclass(frozen=True)
class Spread:
    """What the document needs of a set of durations: how many, their total, and the
    nearest-rank percentiles (PERCENTILES), all in seconds (None for no durations)."""

    count: int = 0
    total: int = 0
    ranked: dict[int, int | None] = field(default_factory=dict)

    @classmethod
    def of(cls, seconds: Sequence[int]) -> Spread:
        ordered = sorted(seconds)
        return cls(len(ordered), sum(ordered), {p: percentile(ordered, p) for p in PERCENTILES})

    @property
    def mean_days(self) -> float | None:
        return self.total / self.count / DAY if self.count else None


def win_rate(won: int, lost: int) -> float | None:
    """Of the deals closed, the share won: won / (won + lost), 4 decimals; None when
    nothing closed (a week or a channel without closes has no win rate)."""
    return round(won / (won + lost), 4) if won + lost else None


def distribution(seconds: Sequence[int] | Spread, *, abandoned: int = 0) -> Distribution:
    """Percentiles of durations, in days, with the count they rest on, the mean, and
    the number of abandoned intervals counted beside them."""
    spread = seconds if isinstance(seconds, Spread) else Spread.of(seconds)
    ranked = {
        f"p{p}": round(value / DAY, 2) if (value := spread.ranked.get(p)) is not None else None
        for p in PERCENTILES
    }
    mean = spread.mean_days
    return Distribution(
        count=spread.count,
        mean=round(mean, 2) if mean is not None else None,
        abandoned=abandoned,
        **ranked,
    )


def xmr(values: Sequence[float | None], *, ceiling: float | None = None) -> XmR:
    """Process behaviour (XmR) limits of a weekly series and the signals they raise.

    Natural process limits: mean +/- 2.66 x average moving range, the lower one clamped
    at 0 (the series are counts, rates and durations); the moving-range chart's upper
    limit: 3.268 x average moving range. Signals: a point outside the natural limits; a
    moving range above its upper limit (a sudden jump, marked on the later week); eight
    points in a row on one side of the mean. Source: Donald J. Wheeler, *Understanding
    Variation* (1993), chapters 5-6.

    ``ceiling``: a bound the series cannot pass (1 for a rate), which caps the upper
    natural limit as 0 caps the lower one.

    ``values`` are full weeks only (the current, partial week is never passed in). A
    None is a week with no value (a rate with nothing to rate): it is skipped, the
    moving range spans it, and signal indexes stay those of ``values``.
    """
    points = [(index, value) for index, value in enumerate(values) if value is not None]
    if len(points) < 2:
        return XmR()
    present = [value for _, value in points]
    mean = statistics.fmean(present)
    moving_ranges = [abs(b - a) for a, b in zip(present, present[1:], strict=False)]
    average_range = statistics.fmean(moving_ranges)
    upper = mean + XMR_SCALING * average_range
    if ceiling is not None:
        upper = min(ceiling, upper)
    lower = max(0.0, mean - XMR_SCALING * average_range)
    range_upper = MOVING_RANGE_SCALING * average_range
    signals = []
    for index, value in points:
        if value > upper:
            signals.append(Signal(index, "above the upper limit"))
        elif value < lower:
            signals.append(Signal(index, "below the lower limit"))
    for (index, _), moving_range in zip(points[1:], moving_ranges, strict=True):
        if moving_range > range_upper:
            signals.append(Signal(index, "moving range above its upper limit"))
    run_side, run_length = 0, 0
    for index, value in points:
        side = (value > mean) - (value < mean)
        run_length = run_length + 1 if side and side == run_side else (1 if side else 0)
        run_side = side
        if run_length == 8:
            signals.append(Signal(index, "eight in a row on one side of the mean"))
    return XmR(
        mean=round(mean, 2),
        upper=round(upper, 2),
        lower=round(lower, 2),
        average_moving_range=round(average_range, 2),
        moving_range_upper=round(range_upper, 2),
        signals=sorted(signals, key=lambda signal: (signal.index, signal.rule)),
    )
