"""The nearest-rank percentile, pure (no Django): for the metrics document and the
Monte Carlo forecasts alike."""

from __future__ import annotations

import math
from typing import Protocol


class Ranked[T](Protocol):
    """Sorted values that can be counted and indexed: a list or a numpy array."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> T: ...


def percentile[T](sorted_values: Ranked[T], p: int) -> T | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it
    (None for no values). ``sorted_values`` may be a list or a sorted numpy array."""
    if len(sorted_values) == 0:
        return None
    # p x n / 100, not p / 100 x n: 7 / 100 x 100 is 7.000000000000001 in floating point.
    rank = max(1, math.ceil(p * len(sorted_values) / 100))
    return sorted_values[rank - 1]
