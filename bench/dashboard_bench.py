#!/usr/bin/env python
"""Dashboard benchmark: the manager's dashboard over 1,000,000 moves of history.

    .venv/bin/python bench/dashboard_bench.py [--moves 1000000] [--quick] [--reuse]
        [--rebuild] [--requests 30] [--loads 10] [--skip-browser]

A script that prints figures, not a test. What it does:

1. History: drops and re-creates the database ``vsm_dashboard_bench`` on 127.0.0.1:5432
   (user postgres), migrates it and builds one stream "Dashboard bench" with
   ``metrics_bench.build`` (eight channels, a generated two-year move log loaded by COPY;
   see bench/metrics_bench.py), then runs the real ``stream_metrics_rebuild``
   (``metrics_bench.phase_rebuild``): aggregates and the stored document exist, as a
   worker leaves them. The stream's manager gets a password (the browser logs in).
   ``--reuse`` keeps a database left by an earlier run when it holds that stream with
   ``--moves`` moves (any pending migration, or ``--rebuild``, rebuilds the aggregates;
   otherwise only the stored document is recomputed). Then ``collectstatic`` (the page
   names hashed static files).
   Settings are the production ones (``benchconf.settings``: ``vsm.settings`` with the
   static files collected under bench/results), DEBUG off, eager tasks off; broker
   ``memory://`` and an in-process cache (no page publishes a task or reads the cache).
2. Server time, in this process: Django's test ``Client`` logged in as the manager
   (``force_login``) against that database. Per line: wait (up to ``--quiet-wait`` s)
   for an idle second, 3 warm-ups, then ``--requests`` timed GETs -> p50/p95, CPU per
   request (this process plus its PostgreSQL backend), the share of the cores other
   processes used meanwhile, response size; then one request under
   ``CaptureQueriesContext`` (statement count, slowest statements) and one under cProfile
   (cumulative time of the dashboard's functions). For the pages, ``dashboard_get`` and
   its parts (stored or live document, cumulative flow, finished and open cards) are also
   timed alone, without a profiler, and the page's HTML is broken down per chart (bytes,
   JSON bytes, data-table rows). Lines: default filters with the worker's stored document
   fresh (checked with ``metrics.selectors.dashboard.stored_document`` before and after);
   the same computed live (``computed_at`` pushed back an hour: the stored document is
   stale); the first cycle; the first cycle and the busiest channel; a 26-week range; the
   forecasts panel (as htmx asks for it); then each chart's CSV download once. A line
   that misses its target gets an ``EXPLAIN (ANALYZE, BUFFERS)`` of its slowest statement
   and the cProfile's top 25 functions by cumulative time, printed.
3. Browser: gunicorn as in the Dockerfile (``vsm.wsgi``, 3 sync workers; whitenoise
   serves the hashed static files) on a loopback port; Playwright drives Debian's
   Chromium (``/usr/bin/chromium``, the launch arguments of tests/boards/conftest.py),
   logs in through the login form and loads the dashboard (default filters, then the
   first cycle and busiest channel): one cold load (empty cache), one warm-up, then
   ``--loads`` measured loads, at desktop (1440x900) and phone (390x844, device scale
   factor 3, mobile) sizes. Time to every chart rendered: an init script's
   MutationObserver records ``performance.now()`` (milliseconds since navigation start)
   when static/js/dashboard.js sets ``<html data-charts-ready="true">``; each load also
   waits for the forecasts panel's answer and reads the navigation timing.

Prints a results table (measure, result, target, verdict); raw results go to
``bench/results/dashboard_bench-<time>.json`` (ignored by git). A full run (not --quick)
refreshes the results block of the "Dashboard" section of docs/performance.md (between
its markers), appending the section if it is missing. Exits 1 when a request failed or a
page never signalled its charts ready; a missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
DOC = ROOT / "docs" / "performance.md"
for _path in (str(ROOT), str(BENCH_DIR)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import metrics_bench as mb  # noqa: E402  (bench/ is on sys.path now)
from board_bench import (  # noqa: E402
    cpu_calibration,
    free_port,
    machine_cpu,
    request,
    wait_for_quiet,
)

DB_NAME = "vsm_dashboard_bench"
STREAM_NAME = "Dashboard bench"
PASSWORD = "bench-only-password-d4sh"  # a throw-away database's user

TARGETS_MS = {"default": 250.0, "cycle_channel": 500.0, "browser": 1000.0}
FORECAST_WISH_MS = 200.0  # no target was set for the forecast panel: our wish
RANGE_WEEKS = 26

CHROMIUM_ARGS = [  # tests/boards/conftest.py
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1440, "height": 900}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
}
READY_SELECTOR = 'html[data-charts-ready="true"]'
# Runs before any script of each document: records when dashboard.js raises the flag.
READY_OBSERVER = """
new MutationObserver(function (records, observer) {
  if (document.documentElement && document.documentElement.dataset.chartsReady === "true") {
    window.__benchChartsReadyAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-charts-ready"]});
"""
PAGE_FIGURES = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const forecast = performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/dashboard/forecast/"))[0];
  const figures = document.querySelectorAll("figure[data-chart-key]");
  return {
    ready_ms: window.__benchChartsReadyAt,
    response_start_ms: nav.responseStart,
    response_end_ms: nav.responseEnd,
    dom_interactive_ms: nav.domInteractive,
    dom_content_loaded_ms: nav.domContentLoadedEventEnd,
    load_ms: nav.loadEventEnd,
    document_bytes: nav.decodedBodySize,
    document_transfer_bytes: nav.transferSize,
    charts: figures.length,
    charts_drawn: Array.from(figures).filter((f) => {
      const canvas = f.querySelector("canvas");
      return canvas && window.Chart && window.Chart.getChart(canvas);
    }).length,
    charts_failed: document.querySelectorAll("figure.chart-failed").length,
    forecast_end_ms: forecast ? forecast.responseEnd : null,
  };
}"""

SHORT_LABELS = {
    "default": "default, stored",
    "default_first": "default, first after a new document",
    "default_live": "default, live",
    "cycle": "cycle",
    "cycle_channel": "cycle + channel",
    "range": f"{RANGE_WEEKS} weeks",
}

DOC_BEGIN = "<!-- dashboard-bench:results:begin -->"
DOC_END = "<!-- dashboard-bench:results:end -->"

log = mb.log
percentile = mb.percentile


# --------------------------------------------------------------------------- setup


def environment(secret_key: str) -> dict[str, str]:
    """This process's settings, and the gunicorn's: production, on the bench database."""
    # No page publishes a task or reads the cache: no Redis is needed (as board_bench).
    env = mb.bench_env(
        db_name=DB_NAME, broker_url="memory://", cache_url="locmemcache://dashboard-bench"
    )
    env.update(
        DJANGO_SETTINGS_MODULE="benchconf.settings",
        DJANGO_SECRET_KEY=secret_key,
        DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1",
        # TLS ends before the app in production; here requests are plain HTTP.
        DJANGO_SECURE_SSL_REDIRECT="false",
        # Keep one backend per process for the run: its CPU is counted per phase.
        DATABASE_CONN_MAX_AGE="600",
        # Playwright's sync API runs an event loop in this thread.
        DJANGO_ALLOW_ASYNC_UNSAFE="true",
    )
    return env


def database_exists() -> bool:
    import psycopg

    with psycopg.connect(
        host=mb.DB_HOST, port=mb.DB_PORT, user=mb.DB_USER, dbname="postgres", autocommit=True
    ) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()


def pending_migrations() -> list[str]:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def reusable_stream(moves: int) -> int | None:
    """The stream of an earlier run, if it holds ``moves`` moves."""
    from boards.models import CardMove
    from vsm.models import ValueStream

    stream = ValueStream.objects.filter(name=STREAM_NAME).first()
    if stream is None:
        return None
    count = CardMove.objects.filter(value_stream=stream).count()
    return stream.pk if count == moves else None


def describe_history(stream_id: int) -> dict:
    """The history as the database holds it (the same after a build or a reuse)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, count(*), min(moved_at), max(moved_at) FROM boards_cardmove "
            "WHERE value_stream_id = %s GROUP BY kind",
            [stream_id],
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE outcome = 'open') FROM boards_card "
            "WHERE value_stream_id = %s",
            [stream_id],
        )
        cards, open_cards = cursor.fetchone()
    return {
        "moves": sum(row[1] for row in rows),
        "kinds": {row[0]: row[1] for row in rows},
        "first_move": min(row[2] for row in rows).isoformat(),
        "last_move": max(row[3] for row in rows).isoformat(),
        "cards": cards,
        "open_cards": open_cards,
    }


def prepare(args) -> dict:
    """The stream with its history, aggregates and stored document; its manager."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from metrics import services
    from vsm.models import ValueStream

    out: dict = {"reused": False}
    stream_id = None
    if args.reuse and database_exists():
        pending = pending_migrations()
        call_command("migrate", verbosity=0)
        stream_id = reusable_stream(args.moves)
        if stream_id is None:
            log(f"--reuse: {DB_NAME} holds no stream of {args.moves:,} moves; building one")
        else:
            out["reused"] = True
            out["migrations_applied"] = pending
            if pending or args.rebuild:
                log(f"re-using {DB_NAME}; rebuilding (migrations applied: {pending or 'none'})")
                out["rebuild"] = mb.phase_rebuild(stream_id, args.moves, None)
            else:
                log(f"re-using {DB_NAME}: recomputing the stored document only")
                start = time.perf_counter()
                services.stream_metrics_summarize(stream_id=stream_id)
                out["summarize_s"] = round(time.perf_counter() - start, 2)
    if stream_id is None:
        log(f"re-creating database {DB_NAME}")
        mb.recreate_database(DB_NAME)
        start = time.perf_counter()
        call_command("migrate", verbosity=0)
        log(f"migrated in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        built = mb.build(args.moves, args.seed, name=STREAM_NAME)
        out["load_timings"] = {**built["timings"], "total_s": round(time.perf_counter() - start, 2)}
        stream_id = built["stream_id"]
        log(f"history loaded in {out['load_timings']['total_s']} s; rebuilding the metrics ...")
        out["rebuild"] = mb.phase_rebuild(stream_id, args.moves, None)
    if out.get("rebuild"):
        rebuild = out["rebuild"]
        log(
            f"rebuild {rebuild.get('total_s')} s (fold {rebuild.get('fold_s')} s, document "
            f"{rebuild.get('document_s')} s)"
        )
    stream = ValueStream.objects.get(pk=stream_id)
    manager = get_user_model().objects.get(username="bench-manager")
    manager.set_password(PASSWORD)
    manager.save(update_fields=["password"])
    out.update(
        stream_id=stream_id,
        slug=stream.slug,
        manager=manager.username,
        history=describe_history(stream_id),
    )
    return out


def filters(stream_id: int) -> dict:
    """The filters measured: the first cycle (every card enters it) and the channel
    with the most cards."""
    from django.db.models import Count

    from boards.models import Card
    from pdca.models import Cycle

    cycle = Cycle.objects.filter(value_stream_id=stream_id).order_by("order").first()
    channel_id, cards = (
        Card.objects.filter(value_stream_id=stream_id, channel__isnull=False)
        .values("channel_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("channel_id", "n")
        .first()
    )
    return {
        "cycle_id": cycle.pk,
        "cycle_name": cycle.name,
        "channel_id": channel_id,
        "channel_cards": cards,
    }


# --------------------------------------------------------------------------- server time


def stored_state(stream_id: int) -> str:
    """Whether the page with default filters would use the worker's stored document."""
    from metrics.models import StreamMetrics
    from metrics.selectors.dashboard import stored_document
    from metrics.selectors.query import MetricsQuery
    from vsm.models import ValueStream

    query = MetricsQuery.for_stream(ValueStream.objects.get(pk=stream_id))
    if stored_document(query) is not None:
        return "fresh"
    return "stale" if StreamMetrics.objects.filter(value_stream_id=stream_id).exists() else "absent"


def refresh_document(stream_id: int) -> None:
    from metrics import services

    if stored_state(stream_id) != "fresh":
        services.stream_metrics_summarize(stream_id=stream_id)
    assert stored_state(stream_id) == "fresh"


def age_document(stream_id: int, by: timedelta) -> None:
    from django.db.models import F

    from metrics.models import StreamMetrics

    StreamMetrics.objects.filter(value_stream_id=stream_id).update(
        computed_at=F("computed_at") - by
    )


def get(client, path: str, headers: dict | None = None):
    response = client.get(path, headers=headers or {})
    body = response.content
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {body[:300]!r}")
    return response, body


def summary_ms(seconds: list[float]) -> dict:
    values = [s * 1000 for s in seconds]
    return {
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "mean": round(statistics.fmean(values), 1),
    }


def captured_request(client, path: str, headers: dict | None = None) -> dict:
    """One request under CaptureQueriesContext: its statements, slowest first."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        get(client, path, headers)
    statements = sorted(
        ((float(q["time"]), q["sql"]) for q in captured.captured_queries), key=lambda s: -s[0]
    )
    return {
        "statements": len(statements),
        "sql_ms": round(1000 * sum(s[0] for s in statements), 1),
        "slowest": [
            {"ms": round(1000 * seconds, 1), "sql": sql[:500] + ("..." if len(sql) > 500 else "")}
            for seconds, sql in statements[:8]
        ],
        "_slowest_sql": statements[0][1] if statements else "",
    }


def explain(sql: str) -> str:
    from django.db import connection

    if not sql.lstrip().upper().startswith("SELECT"):
        return ""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


# Where a page's time goes, from a cProfile of one request (module path suffix,
# function, meaning). The profiler slows Python (above all template rendering, which
# makes many small calls) more than waiting on PostgreSQL: read the shares loosely.
PROFILED = (
    ("metrics/selectors/dashboard.py", "dashboard_get", "dashboard_get: numbers and chart data"),
    ("metrics/selectors/dashboard.py", "stored_document", "  the stored document, read + parsed"),
    ("metrics/selectors/document.py", "stream_metrics_compute", "  the document, computed live"),
    ("metrics/selectors/flow.py", "cumulative_flow", "  cumulative flow (always live)"),
    ("metrics/selectors/cards.py", "finished_cards", "  finished cards (scatter dots)"),
    ("metrics/selectors/cards.py", "aging_cards", "  open cards (aging dots)"),
    ("metrics/selectors/dashboard.py", "headline_tiles", "  headline tiles"),
    ("django/shortcuts.py", "render", "template rendering, all of it"),
    ("metrics/templatetags/metrics_tags.py", "chart_data", "  charts' JSON (json_script)"),
    ("metrics/charts.py", "csv", "CSV writing"),
    ("psycopg/connection.py", "wait", "waiting on PostgreSQL (all statements)"),
)


def profile_request(client, path: str, headers: dict | None = None) -> dict:
    """One request under cProfile: its breakdown (PROFILED) and the top functions."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    get(client, path, headers)
    profiler.disable()
    total = time.perf_counter() - start
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    out.write("\n")
    stats.sort_stats("tottime").print_stats(15)
    text = re.sub(r"/[^\s:]*/site-packages/", "", out.getvalue()).replace(str(ROOT) + "/", "")
    breakdown = []
    for suffix, name, meaning in PROFILED:
        cumulative = sum(
            value[3]
            for (file, _line, function), value in stats.stats.items()  # type: ignore[attr-defined]
            if function == name and file.endswith(suffix)
        )
        if cumulative:
            breakdown.append(
                {
                    "function": f"{suffix.rsplit('/', 1)[-1]}:{name}",
                    "meaning": meaning,
                    "ms": round(1000 * cumulative, 1),
                    "share": round(cumulative / total, 3),
                }
            )
    return {"profiled_ms": round(1000 * total, 1), "breakdown": breakdown, "text": text}


def selector_time(stream_id: int, query_string: str, n: int) -> dict:
    """``dashboard_get`` alone (the numbers and chart data, without the view's template
    and middleware) for the filters the view would parse from ``query_string``: one
    warm-up, then n calls; then its parts, each called alone with the same query."""
    from django.http import QueryDict

    from metrics.forms.filters import DashboardFilterForm
    from metrics.selectors.cards import aging_cards, finished_cards
    from metrics.selectors.dashboard import dashboard_get, stored_document
    from metrics.selectors.document import stream_metrics_compute
    from metrics.selectors.flow import cumulative_flow
    from pdca.models import Cycle
    from vsm.models import Channel, ValueStream

    stream = ValueStream.objects.get(pk=stream_id)

    def query():
        form = DashboardFilterForm(
            QueryDict(query_string),
            stream=stream,
            cycles=Cycle.objects.filter(value_stream=stream).order_by("order"),
            channels=Channel.objects.filter(value_stream=stream).order_by("name"),
        )
        form.is_valid()
        return form.query()

    def timed(call, runs: int) -> tuple[list[float], object]:
        seconds, value = [], None
        for index in range(runs + 1):
            start = time.perf_counter()
            value = call()
            if index:
                seconds.append(time.perf_counter() - start)
        return seconds, value

    seconds, dashboard = timed(lambda: dashboard_get(query()), n)
    q = query()
    document = stored_document if dashboard.stored else stream_metrics_compute
    parts = {
        "stored document, read + parsed"
        if dashboard.stored
        else "stream_metrics_compute (live document)": lambda: document(q),
        "cumulative_flow": lambda: cumulative_flow(q),
        "finished_cards (scatter dots)": lambda: finished_cards(q),
        "aging_cards (open cards)": lambda: aging_cards(q),
    }
    rows = {}
    for name, call in parts.items():
        part_seconds, value = timed(call, min(n, 5))
        rows[name] = {
            "p50": round(1000 * percentile(part_seconds, 50), 1),
            "items": len(value) if isinstance(value, list) else None,
        }
    return {**summary_ms(seconds), "n": n, "stored": dashboard.stored, "parts": rows}


FIGURE = re.compile(r'<figure class="chart" id="chart-([^"]+)".*?</figure>', re.S)
CHART_JSON = re.compile(
    r'<script id="chart-data-[^"]+" type="application/json">(.*?)</script>', re.S
)


def page_composition(html: str) -> dict:
    """What a dashboard page is made of: per chart, its bytes, its JSON's bytes and the
    rows of its data table."""
    charts = {}
    for figure in FIGURE.finditer(html):
        body = figure.group(0)
        data = CHART_JSON.search(body)
        charts[figure.group(1)] = {
            "kib": round(len(body.encode()) / 1024, 1),
            "json_kib": round(len(data.group(1).encode()) / 1024, 1) if data else 0,
            "table_rows": max(0, body.count("<tr>") - 1),
        }
    return {"page_kib": round(len(html.encode()) / 1024, 1), "charts": charts}


def measure(
    client,
    label: str,
    path: str,
    *,
    n: int,
    warmups: int,
    headers=None,
    target=None,
    selector: tuple[int, str] | None = None,
    quiet_wait: float = 0.0,
    before_each=None,
) -> dict:
    """Warm-ups, then n timed requests; then one with its statements captured, and one
    under cProfile (its text is kept when the target is missed, with the plan of the
    slowest statement). ``selector``: (stream id, query string) of a dashboard page,
    to time ``dashboard_get`` alone too. Waits up to ``quiet_wait`` s for an idle
    second first, and records the share of the machine's CPU that others used."""
    quiet = wait_for_quiet(quiet_wait) if quiet_wait else None
    for _ in range(warmups):
        get(client, path, headers)
    meter = mb.CpuMeter()
    machine0 = machine_cpu()
    seconds, size = [], 0
    for _ in range(n):
        if before_each is not None:
            before_each()  # not timed
        start = time.perf_counter()
        _, body = get(client, path, headers)
        seconds.append(time.perf_counter() - start)
        size = len(body)
    cpu = meter.result()
    machine1 = machine_cpu()
    others = machine1[0] - machine0[0] - cpu["python_cpu_s"] - cpu["postgres_cpu_s"]
    if before_each is not None:
        before_each()  # the captured request sees the same state as the timed ones
    result = {
        "label": label,
        "path": path,
        "n": n,
        "ms": summary_ms(seconds),
        "response_bytes": size,
        "cpu_ms_per_request": {
            "python": round(1000 * cpu["python_cpu_s"] / n, 1),
            "postgres": round(1000 * cpu["postgres_cpu_s"] / n, 1),
        },
        "loadavg_1min": [cpu["loadavg_1min_at_start"], cpu["loadavg_1min_at_end"]],
        "machine_busy_before": None if quiet is None else round(quiet, 2),
        # CPU used by other processes while the requests ran, as a share of all cores.
        "others_cpu_share": round(max(0.0, others) / max(machine1[1] - machine0[1], 1e-9), 2),
        **captured_request(client, path, headers),
        "target_ms": target,
    }
    slowest_sql = result.pop("_slowest_sql")
    if selector is not None:
        result["dashboard_get_ms"] = selector_time(*selector, min(n, 10))
        result["composition"] = page_composition(body.decode())
    if before_each is not None:
        before_each()
    result["profile"] = profile_request(client, path, headers)
    result["missed"] = target is not None and result["ms"]["p50"] > target
    if result["missed"]:
        result["slowest_plan"] = explain(slowest_sql)
    else:
        del result["profile"]["text"]
    log(
        f"{label}: p50 {result['ms']['p50']} ms, p95 {result['ms']['p95']} ms, "
        f"{result['statements']} statements ({result['sql_ms']} ms), "
        f"{size / 1024:.0f} KiB"
        + (f"; dashboard_get alone p50 {result['dashboard_get_ms']['p50']} ms" if selector else "")
    )
    return result


def phase_server(
    stream_id: int, slug: str, manager: str, chosen: dict, n: int, warmups: int, quiet: float
):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from metrics.selectors.query import week_start

    client = Client()
    client.force_login(get_user_model().objects.get(username=manager))
    page = f"/streams/{slug}/dashboard/"
    cycle = f"cycle={chosen['cycle_id']}"
    channel = f"channel={chosen['channel_id']}"
    start = week_start(datetime.now(UTC).date()) - timedelta(weeks=RANGE_WEEKS)
    out: dict = {"scenarios": {}}
    scenarios = out["scenarios"]

    refresh_document(stream_id)
    before = stored_state(stream_id)
    scenarios["default"] = measure(
        client,
        "default filters",
        page,
        n=n,
        warmups=warmups,
        quiet_wait=quiet,
        target=TARGETS_MS["default"],
        selector=(stream_id, ""),
    )
    scenarios["default"]["stored_document"] = {"before": before, "after": stored_state(stream_id)}

    # The first request after the worker stored a new document: the per-card reads
    # behind the page are not in the cache yet (it is emptied before each request).
    from django.core.cache import cache

    scenarios["default_first"] = measure(
        client,
        "default filters, first request after a new document (reads not cached)",
        page,
        n=n,
        warmups=warmups,
        quiet_wait=quiet,
        target=TARGETS_MS["default"],
        selector=(stream_id, ""),
        before_each=cache.clear,
    )

    # What htmx sends when the page loads the panel (hx-trigger="load").
    htmx = {
        "HX-Request": "true",
        "HX-Target": "forecast",
        "HX-Current-URL": f"http://testserver{page}",
    }
    scenarios["forecast"] = measure(
        client,
        "forecast panel",
        f"/streams/{slug}/dashboard/forecast/",
        n=n,
        warmups=warmups,
        quiet_wait=quiet,
        headers=htmx,
        target=FORECAST_WISH_MS,
    )

    _, body = get(client, page)
    keys = re.findall(r'data-chart-key="([^"]+)"', body.decode())
    csv = {}
    for key in keys:
        started = time.perf_counter()
        _, data = get(client, f"/streams/{slug}/dashboard/{key}.csv")
        csv[key] = {
            "ms": round(1000 * (time.perf_counter() - started), 1),
            "bytes": len(data),
            "rows": data.count(b"\n") - 1,
        }
    out["csv"] = csv
    out["csv_stored_document"] = stored_state(stream_id)
    log("CSV downloads (ms): " + ", ".join(f"{k} {v['ms']}" for k, v in csv.items()))

    for key, label, query, target in (
        ("cycle", f"cycle filter ({chosen['cycle_name']})", cycle, None),
        (
            "cycle_channel",
            "cycle + channel filters",
            f"{cycle}&{channel}",
            TARGETS_MS["cycle_channel"],
        ),
        ("range", f"{RANGE_WEEKS}-week range", f"start={start.isoformat()}", None),
    ):
        scenarios[key] = measure(
            client,
            label,
            f"{page}?{query}",
            n=n,
            warmups=warmups,
            quiet_wait=quiet,
            target=target,
            selector=(stream_id, query),
        )

    # The worker is behind (or down): the stored document is too old, the page
    # computes the default filters' document itself.
    age_document(stream_id, timedelta(hours=1))
    state = stored_state(stream_id)
    scenarios["default_live"] = measure(
        client,
        "default filters, computed live",
        page,
        n=n,
        warmups=warmups,
        quiet_wait=quiet,
        selector=(stream_id, ""),
    )
    scenarios["default_live"]["stored_document"] = {
        "before": state,
        "after": stored_state(stream_id),
    }
    refresh_document(stream_id)
    return out


# --------------------------------------------------------------------------- browser


class Gunicorn:
    """gunicorn as the Dockerfile runs it (3 sync workers), on a loopback port."""

    def __init__(self, env: dict[str, str], workers: int = 3) -> None:
        self.port = free_port()
        self.log_path = RESULTS_DIR / "dashboard_bench-gunicorn.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        server_env = {
            **os.environ,
            **env,
            "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(ROOT)]),
        }
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "gunicorn"),
                "vsm.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=server_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                if request(self.port, "GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not answer /healthz; see {self.log_path}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def load_page(page, url: str, timeout_ms: float) -> dict:
    """One navigation: until the charts-ready flag, then until the forecast panel's
    answer (htmx asks for it on load). The flag is awaited as a selector: Playwright's
    string predicates are evaluated in the page, which the CSP forbids."""
    with page.expect_response(
        lambda response: "/dashboard/forecast/" in response.url, timeout=timeout_ms
    ) as forecast:
        page.goto(url, wait_until="commit")
        page.wait_for_selector(READY_SELECTOR, state="attached", timeout=timeout_ms)
    forecast.value.finished()
    return page.evaluate(PAGE_FIGURES)


def browser_series(loads: list[dict]) -> dict:
    for load in loads:
        load["after_html_ms"] = load["ready_ms"] - load["response_end_ms"]
        # Deferred scripts run once the document is parsed: Chart.js, dashboard.js and
        # every chart drawn.
        load["scripts_ms"] = load["ready_ms"] - load["dom_interactive_ms"]

    def stats(key: str) -> dict:
        values = [load[key] for load in loads if load.get(key) is not None]
        if not values:
            return {}
        return {"p50": round(percentile(values, 50)), "p95": round(percentile(values, 95))}

    return {
        "n": len(loads),
        "ready_ms": stats("ready_ms"),
        "response_end_ms": stats("response_end_ms"),
        # The browser's own part: from the last byte of HTML to every chart drawn.
        "after_html_ms": stats("after_html_ms"),
        "dom_interactive_ms": stats("dom_interactive_ms"),
        "scripts_ms": stats("scripts_ms"),
        "dom_content_loaded_ms": stats("dom_content_loaded_ms"),
        "forecast_end_ms": stats("forecast_end_ms"),
        "document_bytes": loads[-1]["document_bytes"] if loads else None,
        "charts": sorted({(load["charts"], load["charts_drawn"]) for load in loads}),
        "charts_failed": max((load["charts_failed"] for load in loads), default=0),
    }


def busy_share(machine0: tuple[float, float]) -> float:
    """The machine's busy share (all processes, all cores) since ``machine0``."""
    busy, total = machine_cpu()
    return round((busy - machine0[0]) / max(total - machine0[1], 1e-9), 2)


def phase_browser(
    env: dict, slug: str, manager: str, chosen: dict, loads: int, quiet_wait: float
) -> dict:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    log("starting gunicorn ...")
    server = Gunicorn(env)
    base = f"http://127.0.0.1:{server.port}"
    pages = {
        "default": f"{base}/streams/{slug}/dashboard/",
        "cycle_channel": (
            f"{base}/streams/{slug}/dashboard/?cycle={chosen['cycle_id']}"
            f"&channel={chosen['channel_id']}"
        ),
    }
    out: dict = {"server": "gunicorn vsm.wsgi, 3 sync workers, whitenoise", "runs": {}}
    errors: list[str] = []  # page errors and failed loads: the run fails
    console: list[str] = []  # console errors: reported
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=CHROMIUM_ARGS,
            )
            out["chromium"] = browser.version
            for size, options in VIEWPORTS.items():
                context = browser.new_context(**options)
                context.add_init_script(READY_OBSERVER)
                page = context.new_page()
                page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
                page.on(
                    "console",
                    lambda message: (
                        console.append(f"{message.text} ({message.location})")
                        if message.type == "error"
                        else None
                    ),
                )
                page.goto(f"{base}/accounts/login/")
                page.get_by_label("Username").fill(manager)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url(f"{base}/streams/")
                for name, url in pages.items():
                    runs, cold, failures = [], None, 0
                    if quiet_wait:
                        wait_for_quiet(quiet_wait)
                    machine0, load0 = machine_cpu(), os.getloadavg()[0]
                    for index in range(loads + 2):  # a cold load, a warm-up, then `loads`
                        try:
                            figures = load_page(page, url, 30_000)
                        except PlaywrightError as error:
                            failures += 1
                            errors.append(f"{size} {name}: {str(error).splitlines()[0]}")
                            continue
                        if index == 0:
                            cold = figures
                        elif index >= 2:
                            runs.append(figures)
                    out["runs"][f"{name}/{size}"] = {
                        "viewport": options["viewport"],
                        "cold": cold,
                        "failures": failures,
                        **browser_series(runs),
                        "machine_busy_share": busy_share(machine0),
                        "loadavg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
                    }
                    ready = out["runs"][f"{name}/{size}"]["ready_ms"]
                    log(f"browser {size} {name}: charts ready {ready} ms")
                context.close()
            browser.close()
    finally:
        server.stop()
    out["errors"] = errors[:20]
    out["error_count"] = len(errors)
    out["console_errors"] = sorted(set(console))[:20]
    return out


# --------------------------------------------------------------------------- report


def verdict(value: float | None, target: float | None) -> str:
    if target is None:
        return ""
    if value is None:
        return "n/a"
    return "met" if value <= target else "NOT MET"


def scenario_label(s: dict) -> str:
    """The scenario's label, with the state of the stored document when it matters."""
    state = s.get("stored_document")
    if state and state["before"] == state["after"]:
        return f"{s['label']} (stored document {state['before']})"
    if state:
        return f"{s['label']} (stored document {state['before']} before, {state['after']} after)"
    return s["label"]


def results_table(r: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    server = r.get("server", {}).get("scenarios", {})

    def line(key: str, target: float | None, target_text: str | None = None) -> None:
        s = server.get(key)
        if not s:
            return
        label = scenario_label(s)
        rows.append(
            (
                f"Server: {label} p50",
                f"{s['ms']['p50']:.0f} ms (p95 {s['ms']['p95']:.0f}; {s['statements']} SQL, "
                f"{s['sql_ms']:.0f} ms)",
                target_text or (f"<= {target:.0f} ms" if target else ""),
                verdict(s["ms"]["p50"], target),
            )
        )

    line("default", TARGETS_MS["default"])
    line("default_first", TARGETS_MS["default"])
    line("default_live", None)
    line("cycle", None)
    line("cycle_channel", TARGETS_MS["cycle_channel"])
    line("range", None)
    line("forecast", FORECAST_WISH_MS, f"none set (wish <= {FORECAST_WISH_MS:.0f} ms)")
    csv = r.get("server", {}).get("csv")
    if csv:
        slowest = max(csv.items(), key=lambda kv: kv[1]["ms"])
        rows.append(
            (
                f"Server: CSV downloads, each once ({len(csv)})",
                f"max {slowest[1]['ms']:.0f} ms ({slowest[0]}), median "
                f"{statistics.median(v['ms'] for v in csv.values()):.0f} ms",
                "",
                "",
            )
        )
    browser = r.get("browser", {}).get("runs", {})
    for key, run in browser.items():
        name, size = key.split("/")
        ready = run.get("ready_ms") or {}
        target = TARGETS_MS["browser"] if name == "default" else None
        cold = (run.get("cold") or {}).get("ready_ms")
        rows.append(
            (
                f"Browser {size}, {'default filters' if name == 'default' else 'cycle + channel'}"
                ": all charts rendered p50",
                (
                    f"{ready['p50']} ms (p95 {ready['p95']}; cold {cold:.0f})"
                    if ready and cold is not None
                    else (f"{ready['p50']} ms (p95 {ready['p95']})" if ready else "failed")
                ),
                f"<= {target:.0f} ms" if target else "",
                verdict(ready.get("p50"), target) if target else "",
            )
        )
    return rows


def print_table(rows) -> None:
    header = ("measure", "result", "target", "")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def markdown_block(r: dict) -> str:
    m = r["machine"]
    h = r["setup"]["history"]
    chosen = r["filters"]
    out = [
        DOC_BEGIN,
        f"Run of {r['started']} (`bench/dashboard_bench.py --moves {h['moves']}"
        f"{' --reuse' if r['setup']['reused'] else ''}`), {r['elapsed_s']:.0f} s in all; raw "
        f"results in `{r['json']}`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}; "
        f"PostgreSQL {m['postgres']} (shared_buffers {m['shared_buffers']}, work_mem "
        f"{m['work_mem']}), Python {m['python']}, Django {m['django']}"
        + (f", Chromium {r['browser']['chromium']}" if r.get("browser") else "")
        + ". PostgreSQL, gunicorn, Chromium and the bench share the machine (other work "
        f"too); load average (1 min) at start {m['loadavg_at_start'][0]:.2f}; a fixed Python "
        f"loop took {m['calibration_ms_start']} ms at the start and "
        f"{m['calibration_ms_end']} ms at the end. Code: "
        f"{m['git']['head']} ({m['git']['subject']})"
        + (
            f" with uncommitted changes in {len(m['git']['uncommitted_app_changes'])} app files."
            if m["git"]["uncommitted_app_changes"]
            else "."
        ),
        "",
        f"History: {h['moves']:,} moves, {h['cards']:,} cards ({h['open_cards']:,} open), "
        f"{h['first_move'][:10]} to {h['last_move'][:10]}. Filters measured: cycle "
        f"{chosen['cycle_name']!r} (the first; every card enters it) and the channel with the "
        f"most cards ({chosen['channel_cards']:,}).",
        "",
        "| measure | result | target | |",
        "|---|---|---|---|",
    ]
    for row in results_table(r):
        out.append("| " + " | ".join(c.strip() for c in row) + " |")
    scenarios = r.get("server", {}).get("scenarios", {})
    if scenarios:
        out += [
            "",
            f"Server time: Django's test client in one process, {r['args']['requests']} "
            f"requests after {r['args']['warmups']} warm-ups per line; CPU per request of "
            "this process and of its PostgreSQL backend; SQL from one request under "
            "CaptureQueriesContext; others' CPU: what other processes used of the machine's "
            "cores meanwhile.",
            "",
            "| request | p50 / p95 ms | of which `dashboard_get` p50 ms | CPU ms (Python + "
            "PostgreSQL) | SQL statements | SQL ms | response | others' CPU |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in scenarios.values():
            cpu = s["cpu_ms_per_request"]
            selector = s.get("dashboard_get_ms")
            out.append(
                f"| {scenario_label(s)} | {s['ms']['p50']:.0f} / {s['ms']['p95']:.0f} | "
                + (f"{selector['p50']:.0f}" if selector else "")
                + f" | {cpu['python']:.0f} + {cpu['postgres']:.0f} | {s['statements']} | "
                f"{s['sql_ms']:.0f} | {s['response_bytes'] / 1024:,.0f} KiB | "
                f"{s['others_cpu_share']:.0%} |"
            )
    csv = r.get("server", {}).get("csv")
    if csv:
        out += [
            "",
            "CSV downloads (default filters, stored document "
            f"{r['server']['csv_stored_document']}), once each: "
            + ", ".join(f"{k} {v['ms']:.0f} ms ({v['rows']:,} rows)" for k, v in csv.items())
            + ".",
        ]
    pages = {key: s for key, s in scenarios.items() if "dashboard_get_ms" in s}
    if pages:
        header = "| | " + " | ".join(SHORT_LABELS.get(key, key) for key in pages) + " |"
        rule = "|---|" + "---|" * len(pages)
        seen = {row["meaning"] for s in pages.values() for row in s["profile"]["breakdown"]}
        out += [
            "",
            "Where the time goes (1): cumulative time of these functions in a cProfile of "
            "one request per page, as a share of that request (the profiler inflates "
            "template rendering most):",
            "",
            header,
            rule,
        ]
        for name in (meaning for _, _, meaning in PROFILED if meaning in seen):
            cells = []
            for s in pages.values():
                row = next((r for r in s["profile"]["breakdown"] if r["meaning"] == name), None)
                cells.append(f"{row['share']:.0%}" if row else "")
            out.append(f"| {name.strip()} | " + " | ".join(cells) + " |")
        out += [
            "",
            "Where the time goes (2), without a profiler: `dashboard_get` and its parts, each "
            "called alone with the page's query (p50 ms, items returned); the rest of the "
            "page's time is the template and the middleware:",
            "",
            header,
            rule,
            "| page (p50) | " + " | ".join(f"{s['ms']['p50']:.0f}" for s in pages.values()) + " |",
            "| `dashboard_get` | "
            + " | ".join(f"{s['dashboard_get_ms']['p50']:.0f}" for s in pages.values())
            + " |",
        ]
        part_names = []
        for s in pages.values():
            part_names += [n for n in s["dashboard_get_ms"]["parts"] if n not in part_names]
        for name in part_names:
            cells = []
            for s in pages.values():
                part = s["dashboard_get_ms"]["parts"].get(name)
                items = f" ({part['items']:,})" if part and part["items"] is not None else ""
                cells.append(f"{part['p50']:.0f}{items}" if part else "")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        charts = []
        for s in pages.values():
            charts += [key for key in s["composition"]["charts"] if key not in charts]
        out += [
            "",
            "What the pages are made of: KiB of HTML per chart (of which its JSON), and the "
            "rows of its data table:",
            "",
            header,
            rule,
            "| whole page | "
            + " | ".join(f"{s['composition']['page_kib']:,.0f}" for s in pages.values())
            + " |",
        ]
        for chart in charts:
            cells = []
            for s in pages.values():
                c = s["composition"]["charts"].get(chart)
                cells.append(
                    f"{c['kib']:,.0f} ({c['json_kib']:,.0f}), {c['table_rows']:,} rows" if c else ""
                )
            out.append(f"| {chart} | " + " | ".join(cells) + " |")
    for s in (s for s in scenarios.values() if s["missed"]):
        out += ["", f"Slowest statements of one request, {s['label']} (target missed):", ""]
        out += [f"- {st['ms']:.0f} ms: `{st['sql'][:220]}`" for st in s["slowest"][:5]]
    browser = r.get("browser")
    if browser:
        out += [
            "",
            f"Browser: {browser['server']}; Chromium from Debian, headless, software "
            "rendering (--disable-gpu). Per line: one cold load (empty cache), one warm-up, "
            f"then {r['args']['loads']} loads; time from navigation start to "
            '`html[data-charts-ready="true"]` (set by static/js/dashboard.js), taken in the '
            "page with `performance.now()`. Phone: 390x844, device scale factor 3. Machine "
            "busy: all processes, the bench's own (gunicorn, PostgreSQL, Chromium) included.",
            "",
            "| page | charts ready p50 / p95 ms | HTML received p50 ms | HTML parsed "
            "(domInteractive) p50 ms | then scripts and charts p50 ms | forecast panel "
            "received p50 ms | HTML | charts drawn | machine busy |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for key, run in browser["runs"].items():
            if not run.get("ready_ms"):
                out.append(f"| {key} | failed | | | | | | | |")
                continue
            drawn = ", ".join(f"{d}/{c}" for c, d in run["charts"])
            out.append(
                f"| {key} | {run['ready_ms']['p50']} / {run['ready_ms']['p95']} | "
                f"{run['response_end_ms'].get('p50')} | {run['dom_interactive_ms'].get('p50')} | "
                f"{run['scripts_ms'].get('p50')} | "
                f"{run['forecast_end_ms'].get('p50', '-')} | "
                f"{(run['document_bytes'] or 0) / 1024:,.0f} KiB | {drawn} | "
                f"{run['machine_busy_share']:.0%} |"
            )
        if browser["error_count"]:
            out += ["", f"Browser errors ({browser['error_count']}): {browser['errors'][:3]}"]
    out.append(DOC_END)
    return "\n".join(out)


DOC_SECTION_INTRO = """## Dashboard

`bench/dashboard_bench.py` measures the value stream manager's dashboard
(`/streams/<slug>/dashboard/`) on the stream of `bench/metrics_bench.py`'s history
(1,000,000 moves), after the real rebuild. Targets: server time p50 <= 250 ms with
default filters and <= 500 ms with a cycle and a channel filter; in the browser, every
chart rendered within 1 s. The forecasts panel (loaded by htmx) has no target; we wish
for <= 200 ms. The script's docstring describes the method; the block below is rewritten
by each full run (`make bench` runs it; `--reuse` keeps the database of an earlier run).

"""


def update_doc(block: str) -> None:
    mb.replace_doc_block(block, begin=DOC_BEGIN, end=DOC_END, intro=DOC_SECTION_INTRO)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 moves, fewer requests")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"keep {DB_NAME} if it holds the stream of an earlier run with --moves moves",
    )
    parser.add_argument("--rebuild", action="store_true", help="with --reuse: rebuild anyway")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per line")
    parser.add_argument("--warmups", type=int, default=3)
    parser.add_argument("--loads", type=int, default=10, help="measured page loads per line")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="before each line, wait up to this many seconds for an idle second "
        "(default 10, --quick 2; 0: don't wait)",
    )
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--doc", action="store_true", help="write docs even with --quick")
    parser.add_argument("--no-doc", action="store_true", help="never write docs")
    args = parser.parse_args()
    if args.quick:
        args.moves = 100_000
        args.requests = min(args.requests, 10)
        args.loads = min(args.loads, 5)
    if args.quiet_wait is None:
        args.quiet_wait = 2.0 if args.quick else 10.0

    began = time.perf_counter()
    env = environment(os.environ.get("DASHBOARD_BENCH_SECRET") or secrets.token_urlsafe(50))
    os.environ.update(env)
    os.chdir(ROOT)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)

    import logging

    import django

    django.setup()
    # Nothing here should publish a task; if something does, kombu's notes are noise.
    logging.getLogger("kombu").setLevel(logging.ERROR)

    started = datetime.now(UTC)
    results: dict = {"started": started.isoformat(timespec="seconds"), "args": vars(args)}
    load_at_start = os.getloadavg()
    results["setup"] = setup = prepare(args)
    results["machine"] = {
        **mb.machine(),
        "loadavg_at_start": load_at_start,
        # CPU ms of a fixed Python loop: how fast the shared machine ran Python then.
        "calibration_ms_start": cpu_calibration(),
    }
    h = setup["history"]
    log(f"history: {h['moves']:,} moves, {h['cards']:,} cards ({h['open_cards']:,} open)")
    results["filters"] = chosen = filters(setup["stream_id"])
    # The page names hashed static files (the manifest storage): collect them first.
    from django.core.management import call_command

    start = time.perf_counter()
    call_command("collectstatic", verbosity=0, interactive=False)
    log(f"collectstatic in {time.perf_counter() - start:.1f} s")

    log(f"server time: {args.requests} requests per line after {args.warmups} warm-ups ...")
    results["server"] = phase_server(
        setup["stream_id"],
        setup["slug"],
        setup["manager"],
        chosen,
        args.requests,
        args.warmups,
        args.quiet_wait,
    )
    if not args.skip_browser:
        from django.db import connections

        refresh_document(setup["stream_id"])
        connections.close_all()
        results["browser"] = phase_browser(
            env, setup["slug"], setup["manager"], chosen, args.loads, args.quiet_wait
        )
        results["browser"]["stored_document_after"] = stored_state(setup["stream_id"])

    results["machine"]["calibration_ms_end"] = cpu_calibration()
    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    json_path = RESULTS_DIR / f"dashboard_bench-{stamp}{'-quick' if args.quick else ''}.json"
    results["json"] = str(json_path.relative_to(ROOT))
    json_path.write_text(json.dumps(results, indent=2, default=str))

    print()
    print_table(results_table(results))
    for s in results["server"]["scenarios"].values():
        if s["missed"]:
            print(f"\n{s['label']}: p50 {s['ms']['p50']} ms > {s['target_ms']:.0f} ms.")
            print("Slowest statements of one request:")
            for statement in s["slowest"][:6]:
                print(f"  {statement['ms']:7.1f} ms  {statement['sql'][:300]}")
            if s.get("slowest_plan"):
                print("Plan of the slowest (EXPLAIN ANALYZE, BUFFERS):")
                print("\n".join("  " + line for line in s["slowest_plan"].splitlines()[:40]))
            selector = s.get("dashboard_get_ms")
            if selector:
                print(f"dashboard_get alone p50 {selector['p50']} ms; its parts alone (p50):")
                for name, part in selector["parts"].items():
                    items = f" ({part['items']:,} items)" if part["items"] is not None else ""
                    print(f"  {name:<42} {part['p50']:8.1f} ms{items}")
                composition = s["composition"]
                print(f"The page: {composition['page_kib']:,.0f} KiB; its largest charts:")
                largest = sorted(composition["charts"].items(), key=lambda kv: -kv[1]["kib"])
                for key, chart in largest[:4]:
                    print(
                        f"  {key:<18} {chart['kib']:8,.0f} KiB (JSON {chart['json_kib']:,.0f} "
                        f"KiB), data table {chart['table_rows']:,} rows"
                    )
            print(f"cProfile of one request ({s['profile']['profiled_ms']:.0f} ms profiled):")
            for row in s["profile"]["breakdown"]:
                print(f"  {row['meaning']:<42} {row['ms']:8.1f} ms  {row['share']:4.0%}")
            print(s["profile"]["text"])
    browser = results.get("browser")
    if browser and browser["error_count"]:
        print(f"\nbrowser errors ({browser['error_count']}):", *browser["errors"], sep="\n  ")
    if browser and browser["console_errors"]:
        print("\nbrowser console errors:", *browser["console_errors"], sep="\n  ")
    print(f"\nraw results: {json_path}")
    print(f"whole script: {results['elapsed_s']} s")
    if not args.no_doc and (args.doc or not args.quick):
        update_doc(markdown_block(results))
        print(f"updated {DOC.relative_to(ROOT)} (Dashboard section)")
    failed = browser and (
        browser["error_count"] or any(run["failures"] for run in browser["runs"].values())
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
