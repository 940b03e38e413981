"""Timing hooks: the product marks the sections a benchmark wants timed.

    from vsm.timing import timed

    with timed("metrics.fold", items=len(moves)):
        ...

    @timed_calls("metrics.document")
    def stream_metrics_compute(query): ...

Nothing is recorded unless a collector is active in the current context; then each
``timed`` block adds its wall time (and ``items``) to the collector under its section
name. Without a collector ``timed`` costs one context-variable lookup and returns a
shared no-op, so the hooks stay in production code. A collector is per context: threads
and other processes (gunicorn, a Celery worker) are not timed by a collector opened
here.

    from vsm.timing import collect

    with collect(spans=True) as times:
        stream_metrics_rebuild(stream_id=stream.pk)
    times.seconds("metrics.document")

Section names are ``<app>.<what>``; ``docs/performance.md`` lists the ones in use.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType


@dataclass
class Section:
    """What the timed blocks of one section added up to."""

    calls: int = 0
    seconds: float = 0.0
    items: int = 0


@dataclass(frozen=True)
class Span:
    """One timed block: its section, when it ended (``time.perf_counter()``), its
    duration and its items."""

    section: str
    ended: float
    seconds: float
    items: int


class Collector:
    """The sections timed while it was active; ``open`` lists the sections entered and
    not yet left, innermost last (e.g. to label SQL statements by section)."""

    def __init__(self, *, spans: bool = False) -> None:
        self.sections: dict[str, Section] = {}
        self.spans: list[Span] | None = [] if spans else None
        self.open: list[str] = []

    def seconds(self, section: str) -> float:
        found = self.sections.get(section)
        return found.seconds if found else 0.0

    def items(self, section: str) -> int:
        found = self.sections.get(section)
        return found.items if found else 0

    def seen(self, section: str) -> bool:
        return section in self.sections

    def clear(self) -> None:
        self.sections.clear()
        if self.spans is not None:
            self.spans.clear()

    def _record(self, section: str, ended: float, seconds: float, items: int) -> None:
        totals = self.sections.get(section)
        if totals is None:
            totals = self.sections[section] = Section()
        totals.calls += 1
        totals.seconds += seconds
        totals.items += items
        if self.spans is not None:
            self.spans.append(Span(section, ended, seconds, items))


_collector: ContextVar[Collector | None] = ContextVar("vsm_timing_collector", default=None)


class _Timed:
    __slots__ = ("collector", "items", "section", "started")

    def __init__(self, collector: Collector, section: str, items: int) -> None:
        self.collector = collector
        self.section = section
        self.items = items
        self.started = 0.0

    def __enter__(self) -> None:
        self.collector.open.append(self.section)
        self.started = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        ended = time.perf_counter()
        self.collector.open.pop()
        self.collector._record(self.section, ended, ended - self.started, self.items)


class _Untimed:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


_UNTIMED = _Untimed()


def timed(section: str, *, items: int = 0) -> _Timed | _Untimed:
    """A context manager that adds its block's wall time to ``section`` of the active
    collector, if there is one (a block that raises is counted too)."""
    collector = _collector.get()
    if collector is None:
        return _UNTIMED
    return _Timed(collector, section, items)


def timed_calls[**P, R](section: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator: each call of the function is a ``timed(section)`` block."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def timed_function(*args: P.args, **kwargs: P.kwargs) -> R:
            collector = _collector.get()
            if collector is None:
                return function(*args, **kwargs)
            with _Timed(collector, section, 0):
                return function(*args, **kwargs)

        return timed_function

    return decorate


def active() -> Collector | None:
    """The collector of the current context, if one is collecting."""
    return _collector.get()


@contextmanager
def collect(*, spans: bool = False) -> Iterator[Collector]:
    """Collect the timed sections of the code run inside the block (in this context);
    ``spans``: keep every block, not only the totals per section."""
    collector = Collector(spans=spans)
    token = _collector.set(collector)
    try:
        yield collector
    finally:
        _collector.reset(token)
