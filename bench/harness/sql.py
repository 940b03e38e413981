"""Where the time goes: SQL statements timed by class (Django's ``execute_wrapper``),
the statements of one block, plans, cProfile breakdowns, and the product's timing
hooks (``vsm.timing``)."""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import time
from collections import defaultdict
from collections.abc import Callable

from harness import ROOT


class QueryTimer:
    """An ``execute_wrapper``: count and wall time per statement class (verb, first
    table, a few shapes), optionally prefixed with ``[scope]`` from ``scope()``."""

    TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"?([a-z_]+)"?', re.I)

    def __init__(self, scope: Callable[[], str] | None = None) -> None:
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.scope = scope
        self.slowest: tuple[float, str, object] = (0.0, "", None)

    @classmethod
    def classify(cls, sql: str) -> str:
        upper = sql.upper()
        words = sql.lstrip()[:6].upper().split()
        verb = words[0] if words else "?"
        match = cls.TABLE.search(sql)
        extra = ""
        if verb == "SELECT" and " JOIN " in upper:
            extra = " +join"
        if verb == "SELECT" and ("GROUP BY" in upper or "MAX(" in upper):
            extra += " +agg"
        if verb == "INSERT" and "ON CONFLICT" in upper:
            extra += " upsert"
        if verb == "UPDATE" and " CASE " in upper:
            extra += " CASE(bulk_update)"
        return f"{verb} {match.group(1) if match else '?'}{extra}"

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - start
            key = self.classify(sql)
            if self.scope is not None:
                key = f"[{self.scope()}] {key}"
            entry = self.stats[key]
            entry[0] += 1
            entry[1] += elapsed
            if elapsed > self.slowest[0] and not many:
                self.slowest = (elapsed, sql, params)

    @property
    def total(self) -> float:
        return sum(v[1] for v in self.stats.values())

    def top(self, n: int = 10) -> list[dict]:
        ordered = sorted(self.stats.items(), key=lambda kv: -kv[1][1])[:n]
        return [{"statement": k, "count": int(v[0]), "seconds": round(v[1], 3)} for k, v in ordered]

    def explain_slowest(self) -> dict | None:
        """EXPLAIN (plan only) of the slowest SELECT, as the planner sees it now."""
        seconds, sql, params = self.slowest
        if not sql or not sql.lstrip().upper().startswith("SELECT"):
            return None
        return {"seconds": round(seconds, 3), "sql": sql[:600], "plan": explain(sql, params)}


def explain(sql: str, params=None, analyze: bool = False) -> str:
    from django.db import connection

    if not sql.lstrip().upper().startswith("SELECT"):
        return ""
    with connection.cursor() as cursor:
        cursor.execute(("EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN ") + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def captured(call: Callable[[], object]) -> dict:
    """Run ``call`` under ``CaptureQueriesContext``: its statements, slowest first."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as capture:
        call()
    statements = sorted(
        ((float(q["time"]), q["sql"]) for q in capture.captured_queries), key=lambda s: -s[0]
    )
    return {
        "statements": len(statements),
        "sql_ms": round(1000 * sum(s[0] for s in statements), 1),
        "slowest": [
            {"ms": round(1000 * seconds, 1), "sql": sql[:500] + ("..." if len(sql) > 500 else "")}
            for seconds, sql in statements[:8]
        ],
        "slowest_sql": statements[0][1] if statements else "",
    }


def profiled(
    call: Callable[[], object], functions, text_lines: int = 0, own_lines: int = 15
) -> dict:
    """Run ``call`` under cProfile; the cumulative time of ``functions`` ((path suffix,
    name, meaning), ...) as ms and as a share of the whole; with ``text_lines``, the
    top functions by cumulative and by own time, as text."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    try:
        call()
    finally:
        profiler.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    rows = []
    for suffix, name, meaning in functions:
        cumulative = sum(
            value[3]
            for (path, _line, function), value in stats.stats.items()  # type: ignore[attr-defined]
            if function == name and path.endswith(suffix)
        )
        rows.append(
            {
                "function": f"{suffix.rsplit('/', 1)[-1]}:{name}",
                "meaning": meaning,
                "ms": round(1000 * cumulative, 1),
                "share": round(cumulative / total, 3),
            }
        )
    out = {"profiled_ms": round(1000 * total, 1), "breakdown": rows}
    if text_lines:
        buffer = io.StringIO()
        stats.stream = buffer  # type: ignore[attr-defined]
        stats.sort_stats("cumulative").print_stats(text_lines)
        buffer.write("\n")
        stats.sort_stats("tottime").print_stats(own_lines)
        text = re.sub(r"/[^\s:]*/site-packages/", "", buffer.getvalue())
        out["text"] = text.replace(str(ROOT) + "/", "")
    return out


def hook_seconds(collector, section: str) -> float | None:
    """Seconds the product spent in a section it marks with ``vsm.timing.timed``; None
    when it does not mark it (yet): the scenario then reports only the time around the
    public call it made."""
    return collector.seconds(section) if collector.seen(section) else None
