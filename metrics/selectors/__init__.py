"""Metrics computed from the running aggregates (never from the raw move log).

Every number here is defined in docs/metrics.md; the reads are bounded by the
window (default 12 full ISO weeks and the current week so far) or by the size of the
board, not by the history. Section selectors take one MetricsQuery; the document
(``stream_metrics_compute``) is a typed, versioned read model (``readmodel``).
"""

from metrics.selectors.constraint import LIMITING_SHARE
from metrics.selectors.document import stream_metrics_compute
from metrics.selectors.durations import window_durations
from metrics.selectors.flow import LITTLE_TOLERANCE, cumulative_flow
from metrics.selectors.forecast import daily_won
from metrics.selectors.query import WINDOW_WEEKS, MetricsQuery, week_start
from metrics.selectors.readmodel import SCHEMA_VERSION, SchemaError, StreamMetricsDocument
from metrics.selectors.statistics import (
    DAY,
    MOVING_RANGE_SCALING,
    PERCENTILES,
    XMR_SCALING,
    Spread,
    distribution,
    percentile,
    xmr,
)

__all__ = [
    "DAY",
    "LIMITING_SHARE",
    "LITTLE_TOLERANCE",
    "MOVING_RANGE_SCALING",
    "PERCENTILES",
    "SCHEMA_VERSION",
    "WINDOW_WEEKS",
    "XMR_SCALING",
    "MetricsQuery",
    "SchemaError",
    "Spread",
    "StreamMetricsDocument",
    "cumulative_flow",
    "daily_won",
    "distribution",
    "percentile",
    "stream_metrics_compute",
    "week_start",
    "window_durations",
    "xmr",
]
