"""The nearest-rank percentile, pure (no Django): for the metrics document and the
Monte Carlo forecasts alike."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], p: int) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it
    (None for no values). ``sorted_values`` may be a list or a sorted numpy array."""
    if len(sorted_values) == 0:
        return None
    # p x n / 100, not p / 100 x n: 7 / 100 x 100 is 7.000000000000001 in floating point.
    rank = max(1, math.ceil(p * len(sorted_values) / 100))
    return sorted_values[rank - 1]
