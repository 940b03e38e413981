"""Metrics computed from the running aggregates (never from the raw move log).

Every number here is defined in docs/metrics.md; the reads are bounded by the
window (default 12 ISO weeks) or by the size of the board, not by the history.
"""

from metrics.selectors.constraint import STARVING_WEIGHT
from metrics.selectors.document import (
    WINDOW_WEEKS,
    _window_durations,  # noqa: F401 (private, but tests read the window directly)
    stream_metrics_compute,
)
from metrics.selectors.flow import LITTLE_TOLERANCE, cumulative_flow
from metrics.selectors.statistics import (
    DAY,
    PERCENTILES,
    XMR_SCALING,
    Spread,
    distribution,
    percentile,
    week_start,
    xmr,
)

__all__ = [
    "DAY",
    "LITTLE_TOLERANCE",
    "PERCENTILES",
    "STARVING_WEIGHT",
    "WINDOW_WEEKS",
    "XMR_SCALING",
    "Spread",
    "cumulative_flow",
    "distribution",
    "percentile",
    "stream_metrics_compute",
    "week_start",
    "xmr",
]
