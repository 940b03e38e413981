"""The benchmarks' harness: what every scenario in ``bench/`` shares.

- ``harness.db``: the bench databases (``vsm_bench_*``: create, reuse, vacuum, their
  PostgreSQL backends), the Django environment of a run, COPY of a model's rows, Redis
  DBs to flush;
- ``harness.processes``: gunicorn, a Celery worker and PgBouncer as subprocesses,
  started and stopped;
- ``harness.cpu``: CPU accounting of processes and of the machine, the speed check,
  waiting for a quiet machine, what the machine is;
- ``harness.web``: an HTTP client that logs in through the login form and reads the
  board with the tests' HTML parser (``tests/pages.py``), and a poll's answer as
  ``board.js`` reads it;
- ``harness.viewers``: people keeping a board open, polling it as ``board.js`` does;
- ``harness.floor``: the floor of a move (a raw transaction with a drag's locks and
  writes; the empty POST of ``benchconf.views``);
- ``harness.sql``: statements timed by class, cProfile breakdowns, the product's
  timing hooks (``vsm.timing``);
- ``harness.history``: the generated two-year move log loaded with COPY;
- ``harness.report``: tables, the raw-results file, and the one writer of a named block
  of ``docs/performance.md``.

A scenario (``bench/<name>_bench.py``) is a script: ``python bench/<name>_bench.py
--help``. Importing this package puts the project root and ``bench/`` on ``sys.path``.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
DOC = ROOT / "docs" / "performance.md"

for _path in (str(BENCH_DIR), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values, p: int) -> float:
    """Nearest rank, the product's own (``metrics.percentiles``); NaN for no values."""
    from metrics.percentiles import percentile as nearest_rank

    found = nearest_rank(sorted(values), p)
    return math.nan if found is None else found


def summary(values, digits: int = 1) -> dict:
    """p50, p95, p99, min, max and mean of some values, rounded."""
    if not values:
        return {}
    return {
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "p99": round(percentile(values, 99), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "mean": round(statistics.fmean(values), digits),
    }


def arguments(doc: str, *, seed: int, quiet_wait: str = "", doc_block: bool = False):
    """The scenario's command line, with the options every scenario shares: ``--quick``
    (help given by the scenario: add it first), ``--seed``, ``--quiet-wait`` (when
    ``quiet_wait`` describes its default) and ``--doc``/``--no-doc`` (``doc_block``)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=seed)
    if quiet_wait:
        parser.add_argument(
            "--quiet-wait",
            type=float,
            default=None,
            help="before each phase, wait up to this many seconds for the machine to be idle "
            f"({quiet_wait}; 0: don't wait)",
        )
    if doc_block:
        parser.add_argument("--doc", action="store_true", help="write docs even with --quick")
        parser.add_argument("--no-doc", action="store_true", help="never write docs")
    return parser
