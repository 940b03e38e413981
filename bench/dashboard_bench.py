#!/usr/bin/env python
"""Dashboard benchmark: the manager's dashboard over 1,000,000 moves of history.

    .venv/bin/python bench/dashboard_bench.py [--moves 1000000] [--quick] [--reuse]
        [--rebuild] [--requests 30] [--loads 10] [--skip-browser]

A script that prints figures, not a test, on the harness in bench/harness/. It:

1. History: re-creates the database ``vsm_bench_dashboard``, migrates it and loads the
   generated history into one stream "Dashboard bench" (``harness.history``, as the
   metrics scenario), then runs the real ``stream_metrics_rebuild``: aggregates and the
   stored document exist, as a worker leaves them. The stream's manager gets a password
   (the browser logs in). ``--reuse`` keeps a database left by an earlier run when it
   holds that stream with ``--moves`` moves (a pending migration, or ``--rebuild``,
   rebuilds the aggregates; otherwise only the stored document is recomputed). Then
   ``collectstatic`` (the page names hashed static files). Production settings, DEBUG
   off, eager tasks off; broker ``memory://`` and an in-process cache.
2. Server time, in this process: Django's test ``Client`` logged in as the manager.
   Per line: wait (up to ``--quiet-wait`` s) for an idle second, warm-ups, then
   ``--requests`` timed GETs -> p50/p95, CPU per request (this process plus its
   PostgreSQL backend), the share of the cores others used, response size; then one
   request under ``CaptureQueriesContext`` and one under cProfile. For the pages,
   ``dashboard_get`` and its parts are also timed alone, and the HTML is broken down per
   chart. Lines: default filters with the worker's stored document fresh; the first
   request after a new document (cache emptied before each); the forecasts panel (as
   htmx asks for it); each chart's CSV once; the first cycle; the first cycle and the
   busiest channel; a 26-week range; the default filters computed live (the stored
   document aged an hour). A line that misses its target gets an ``EXPLAIN (ANALYZE,
   BUFFERS)`` of its slowest statement and the cProfile's top functions, printed.
3. Browser: gunicorn as in the Dockerfile (3 sync workers, whitenoise); Playwright
   drives Debian's Chromium, logs in through the login form and loads the dashboard
   (default filters, then the first cycle and busiest channel): one cold load, one
   warm-up, then ``--loads`` loads, at desktop (1440x900) and phone (390x844, scale 3)
   sizes. Time to every chart rendered: an init script's MutationObserver records
   ``performance.now()`` when static/js/dashboard.js sets
   ``<html data-charts-ready="true">``; each load also waits for the forecasts panel.

Prints a results table; raw results go to ``bench/results/dashboard_bench-<time>.json``.
A full run (not --quick) rewrites the "dashboard-bench" block of docs/performance.md.
Exits 1 when a request failed or a page never signalled its charts ready; a missed
target is reported, not an error.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from harness import arguments, history, log, percentile, summary
from harness.cpu import CpuMeter, busy_share, cpu_calibration, machine, machine_cpu, wait_for_quiet
from harness.db import Database, backend_pid, collectstatic, environment, migrate, setup_django
from harness.processes import Gunicorn
from harness.report import (
    machine_sentence,
    markdown_table,
    replace_block,
    save_results,
    text_table,
    verdict,
)
from harness.sql import captured, explain, profiled

DATABASE = Database("vsm_bench_dashboard")
STREAM_NAME = "Dashboard bench"
PASSWORD = "bench-only-password-d4sh"  # a throw-away database's user
TARGETS_MS = {"default": 250.0, "cycle_channel": 500.0, "browser": 1000.0}
FORECAST_WISH_MS = 200.0  # no target was set for the forecast panel: our wish
RANGE_WEEKS = 26
CHROMIUM_ARGS = [  # as tests/boards/conftest.py launches it
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
    response_end_ms: nav.responseEnd,
    dom_interactive_ms: nav.domInteractive,
    load_ms: nav.loadEventEnd,
    document_bytes: nav.decodedBodySize,
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
# Where a page's time goes, from a cProfile of one request. The profiler slows Python
# (above all template rendering, many small calls) more than waiting on PostgreSQL.
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
DOC_INTRO = """## Dashboard

`bench/dashboard_bench.py` measures the value stream manager's dashboard
(`/streams/<slug>/dashboard/`) on a stream with the generated history of
`bench/harness/history.py` (1,000,000 moves), after the real rebuild. Targets: server
time p50 <= 250 ms with default filters and <= 500 ms with a cycle and a channel filter;
in the browser, every chart rendered within 1 s. The forecasts panel (loaded by htmx)
has no target; we wish for <= 200 ms. The script's docstring describes the method; the
block below is rewritten by each full run (`make bench` runs it; `--reuse` keeps the
database of an earlier run)."""


def prepare(args) -> dict:
    """The stream with its history, aggregates and stored document; its manager."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    from boards.models import CardMove
    from metrics import services
    from vsm.models import ValueStream

    out: dict = {"reused": False}
    stream_id = None
    if args.reuse and DATABASE.exists():
        pending = migrate()
        stream = ValueStream.objects.filter(name=STREAM_NAME).first()
        if stream and CardMove.objects.filter(value_stream=stream).count() == args.moves:
            stream_id = stream.pk
            out.update(reused=True, migrations_applied=pending)
            if pending or args.rebuild:
                log(f"re-using {DATABASE.name}; rebuilding (migrations: {pending or 'none'})")
                out["rebuild"] = history.rebuild(stream_id)
            else:
                log(f"re-using {DATABASE.name}: recomputing the stored document only")
                start = time.perf_counter()
                services.stream_metrics_summarize(stream_id=stream_id)
                out["summarize_s"] = round(time.perf_counter() - start, 2)
        else:
            log(f"--reuse: {DATABASE.name} holds no stream of {args.moves:,} moves")
    if stream_id is None:
        log(f"re-creating database {DATABASE.name}")
        connections.close_all()
        DATABASE.recreate()
        start = time.perf_counter()
        migrate()
        log(f"migrated in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        built = history.build(args.moves, args.seed, STREAM_NAME)
        out["load_timings"] = {**built["timings"], "total_s": round(time.perf_counter() - start, 2)}
        stream_id = built["stream_id"]
        log(f"history loaded in {out['load_timings']['total_s']} s; rebuilding the metrics ...")
        out["rebuild"] = history.rebuild(stream_id)
    if out.get("rebuild"):
        log(f"rebuild {out['rebuild']}")
    manager = get_user_model().objects.get(username="bench-manager")
    manager.set_password(PASSWORD)
    manager.save(update_fields=["password"])
    out.update(
        stream_id=stream_id,
        slug=ValueStream.objects.get(pk=stream_id).slug,
        manager=manager.username,
        history=history.describe(stream_id),
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


def get(client, path: str, headers: dict | None = None) -> bytes:
    response = client.get(path, headers=headers or {})
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.content[:300]!r}")
    return response.content


def selector_time(stream_id: int, query_string: str, n: int) -> dict:
    """``dashboard_get`` alone (numbers and chart data, without the view's template and
    middleware) for the filters the view would parse from ``query_string``, n calls
    after a warm-up; then its parts, each called alone with the same query."""
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
                seconds.append(1000 * (time.perf_counter() - start))
        return seconds, value

    seconds, dashboard = timed(lambda: dashboard_get(query()), n)
    q = query()
    parts = {
        "stored document, read + parsed"
        if dashboard.stored
        else "stream_metrics_compute (live document)": lambda: (
            stored_document if dashboard.stored else stream_metrics_compute
        )(q),
        "cumulative_flow": lambda: cumulative_flow(q),
        "finished_cards (scatter dots)": lambda: finished_cards(q),
        "aging_cards (open cards)": lambda: aging_cards(q),
    }
    rows = {}
    for name, call in parts.items():
        part_ms, value = timed(call, min(n, 5))
        items = len(value) if isinstance(value, list) else None
        rows[name] = {"p50": round(percentile(part_ms, 50), 1), "items": items}
    return {**summary(seconds), "n": n, "stored": dashboard.stored, "parts": rows}


FIGURE = re.compile(r'<figure class="chart" id="chart-([^"]+)".*?</figure>', re.S)
CHART_JSON = re.compile(
    r'<script id="chart-data-[^"]+" type="application/json">(.*?)</script>', re.S
)


def page_composition(html: str) -> dict:
    """Per chart of a dashboard page: its KiB, its JSON's KiB, its data table's rows."""
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
    label,
    path,
    *,
    n,
    warmups,
    quiet_wait,
    headers=None,
    target=None,
    selector=None,
    before_each=None,
) -> dict:
    """Warm-ups, then n timed requests; then one with its statements captured and one
    under cProfile (kept, with the plan of the slowest statement, when the target is
    missed). ``selector``: (stream id, query string) of a dashboard page, to time
    ``dashboard_get`` alone too. ``before_each``: untimed, before every request."""
    quiet = wait_for_quiet(quiet_wait) if quiet_wait else None
    for _ in range(warmups):
        get(client, path, headers)
    pid = backend_pid()
    meter = CpuMeter(backends=lambda: [pid])
    seconds, body = [], b""
    for _ in range(n):
        if before_each is not None:
            before_each()
        start = time.perf_counter()
        body = get(client, path, headers)
        seconds.append(1000 * (time.perf_counter() - start))
    cpu = meter.result()
    if before_each is not None:
        before_each()  # the captured request sees the same state as the timed ones
    statements = captured(lambda: get(client, path, headers))
    slowest_sql = statements.pop("slowest_sql")
    result = {
        "label": label,
        "path": path,
        "n": n,
        "ms": summary(seconds),
        "response_bytes": len(body),
        "cpu_ms_per_request": {
            "python": round(1000 * cpu["python_cpu_s"] / n, 1),
            "postgres": round(1000 * cpu["postgres_cpu_s"] / n, 1),
        },
        "loadavg_1min": [cpu["loadavg_1min_at_start"], cpu["loadavg_1min_at_end"]],
        "machine_busy_before": None if quiet is None else round(quiet, 2),
        "others_cpu_share": round(cpu["other_share"], 2),
        **statements,
        "target_ms": target,
    }
    if selector is not None:
        result["dashboard_get_ms"] = selector_time(*selector, min(n, 10))
        result["composition"] = page_composition(body.decode())
    if before_each is not None:
        before_each()
    profile = profiled(lambda: get(client, path, headers), PROFILED, 25)
    profile["breakdown"] = [row for row in profile["breakdown"] if row["ms"]]
    result["profile"] = profile
    result["missed"] = target is not None and result["ms"]["p50"] > target
    if result["missed"]:
        result["slowest_plan"] = explain(slowest_sql, analyze=True)
    else:
        del profile["text"]
    log(
        f"{label}: p50 {result['ms']['p50']} ms, p95 {result['ms']['p95']} ms, "
        f"{result['statements']} statements ({result['sql_ms']} ms), {len(body) / 1024:.0f} KiB"
        + (f"; dashboard_get alone p50 {result['dashboard_get_ms']['p50']} ms" if selector else "")
    )
    return result


def phase_server(setup: dict, chosen: dict, n: int, warmups: int, quiet: float) -> dict:
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db.models import F
    from django.test import Client

    from metrics.models import StreamMetrics
    from metrics.selectors.query import week_start

    stream_id, slug = setup["stream_id"], setup["slug"]
    client = Client()
    client.force_login(get_user_model().objects.get(username=setup["manager"]))
    page = f"/streams/{slug}/dashboard/"
    cycle, channel = f"cycle={chosen['cycle_id']}", f"channel={chosen['channel_id']}"
    start = week_start(datetime.now(UTC).date()) - timedelta(weeks=RANGE_WEEKS)
    common = {"n": n, "warmups": warmups, "quiet_wait": quiet}
    scenarios: dict = {}

    refresh_document(stream_id)
    before = stored_state(stream_id)
    scenarios["default"] = measure(
        client,
        "default filters",
        page,
        target=TARGETS_MS["default"],
        selector=(stream_id, ""),
        **common,
    )
    scenarios["default"]["stored_document"] = {"before": before, "after": stored_state(stream_id)}
    # The first request after the worker stored a new document: the per-card reads
    # behind the page are not in the cache yet (it is emptied before each request).
    scenarios["default_first"] = measure(
        client,
        "default filters, first request after a new document (reads not cached)",
        page,
        target=TARGETS_MS["default"],
        selector=(stream_id, ""),
        before_each=cache.clear,
        **common,
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
        f"{page}forecast/",
        headers=htmx,
        target=FORECAST_WISH_MS,
        **common,
    )

    csv = {}
    for key in re.findall(r'data-chart-key="([^"]+)"', get(client, page).decode()):
        started = time.perf_counter()
        data = get(client, f"{page}{key}.csv")
        csv[key] = {
            "ms": round(1000 * (time.perf_counter() - started), 1),
            "bytes": len(data),
            "rows": data.count(b"\n") - 1,
        }
    log("CSV downloads (ms): " + ", ".join(f"{k} {v['ms']}" for k, v in csv.items()))
    csv_state = stored_state(stream_id)

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
            client, label, f"{page}?{query}", target=target, selector=(stream_id, query), **common
        )
    # The worker is behind (or down): the stored document is too old, the page
    # computes the default filters' document itself.
    StreamMetrics.objects.filter(value_stream_id=stream_id).update(
        computed_at=F("computed_at") - timedelta(hours=1)
    )
    state = stored_state(stream_id)
    scenarios["default_live"] = measure(
        client, "default filters, computed live", page, selector=(stream_id, ""), **common
    )
    scenarios["default_live"]["stored_document"] = {
        "before": state,
        "after": stored_state(stream_id),
    }
    refresh_document(stream_id)
    return {"scenarios": scenarios, "csv": csv, "csv_stored_document": csv_state}


def load_page(page, url: str, timeout_ms: float) -> dict:
    """One navigation: until the charts-ready flag, then until the forecast panel's
    answer. The flag is awaited as a selector: Playwright's string predicates are
    evaluated in the page, which the CSP forbids."""
    with page.expect_response(
        lambda r: "/dashboard/forecast/" in r.url, timeout=timeout_ms
    ) as forecast:
        page.goto(url, wait_until="commit")
        page.wait_for_selector(READY_SELECTOR, state="attached", timeout=timeout_ms)
    forecast.value.finished()
    return page.evaluate(PAGE_FIGURES)


def browser_series(loads: list[dict]) -> dict:
    for load in loads:
        # Deferred scripts run once the document is parsed: Chart.js, dashboard.js and
        # every chart drawn.
        load["scripts_ms"] = load["ready_ms"] - load["dom_interactive_ms"]

    def stats(key: str) -> dict:
        values = [load[key] for load in loads if load.get(key) is not None]
        if not values:
            return {}
        return {"p50": round(percentile(values, 50)), "p95": round(percentile(values, 95))}

    keys = ("ready_ms", "response_end_ms", "dom_interactive_ms", "scripts_ms", "forecast_end_ms")
    return {
        "n": len(loads),
        **{key: stats(key) for key in keys},
        "document_bytes": loads[-1]["document_bytes"] if loads else None,
        "charts": sorted({(load["charts"], load["charts_drawn"]) for load in loads}),
        "charts_failed": max((load["charts_failed"] for load in loads), default=0),
    }


def phase_browser(env, setup: dict, chosen: dict, loads: int, quiet_wait: float) -> dict:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    server = Gunicorn(env, workers=3, log_name="dashboard_bench-gunicorn")
    log(f"started {server.description}")
    dashboard = f"{server.base}/streams/{setup['slug']}/dashboard/"
    pages = {
        "default": dashboard,
        "cycle_channel": f"{dashboard}?cycle={chosen['cycle_id']}&channel={chosen['channel_id']}",
    }
    out: dict = {"server": "gunicorn vsm.wsgi, 3 sync workers, whitenoise", "runs": {}}
    errors: list[str] = []  # page errors and failed loads: the run fails
    console: list[str] = []  # console errors: reported
    with server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        out["chromium"] = browser.version
        for size, options in VIEWPORTS.items():
            context = browser.new_context(**options)
            context.add_init_script(READY_OBSERVER)
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
            page.on(
                "console",
                lambda m: console.append(f"{m.text} ({m.location})") if m.type == "error" else None,
            )
            page.goto(f"{server.base}/accounts/login/")
            page.get_by_label("Username").fill(setup["manager"])
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{server.base}/streams/")
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
                run = out["runs"][f"{name}/{size}"] = {
                    "viewport": options["viewport"],
                    "cold": cold,
                    "failures": failures,
                    **browser_series(runs),
                    "machine_busy_share": busy_share(machine0),
                    "loadavg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
                }
                log(f"browser {size} {name}: charts ready {run['ready_ms']} ms")
            context.close()
        browser.close()
    out.update(
        errors=errors[:20], error_count=len(errors), console_errors=sorted(set(console))[:20]
    )
    return out


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
    lines = (
        ("default", TARGETS_MS["default"], None),
        ("default_first", TARGETS_MS["default"], None),
        ("default_live", None, None),
        ("cycle", None, None),
        ("cycle_channel", TARGETS_MS["cycle_channel"], None),
        ("range", None, None),
        ("forecast", FORECAST_WISH_MS, f"none set (wish <= {FORECAST_WISH_MS:.0f} ms)"),
    )
    for key, target, target_text in lines:
        s = server.get(key)
        if s:
            rows.append(
                (
                    f"Server: {scenario_label(s)} p50",
                    f"{s['ms']['p50']:.0f} ms (p95 {s['ms']['p95']:.0f}; {s['statements']} SQL, "
                    f"{s['sql_ms']:.0f} ms)",
                    target_text or (f"<= {target:.0f} ms" if target else ""),
                    verdict(s["ms"]["p50"], target),
                )
            )
    csv = r.get("server", {}).get("csv")
    if csv:
        slowest = max(csv.items(), key=lambda kv: kv[1]["ms"])
        median = statistics.median(v["ms"] for v in csv.values())
        rows.append(
            (
                f"Server: CSV downloads, each once ({len(csv)})",
                f"max {slowest[1]['ms']:.0f} ms ({slowest[0]}), median {median:.0f} ms",
                "",
                "",
            )
        )
    for key, run in r.get("browser", {}).get("runs", {}).items():
        name, size = key.split("/")
        ready = run.get("ready_ms") or {}
        target = TARGETS_MS["browser"] if name == "default" else None
        cold = (run.get("cold") or {}).get("ready_ms")
        result = f"{ready['p50']} ms (p95 {ready['p95']}" if ready else "failed"
        if ready:
            result += f"; cold {cold:.0f})" if cold is not None else ")"
        rows.append(
            (
                f"Browser {size}, {'default filters' if name == 'default' else 'cycle + channel'}"
                ": all charts rendered p50",
                result,
                f"<= {target:.0f} ms" if target else "",
                verdict(ready.get("p50"), target),
            )
        )
    return rows


def markdown_block(r: dict) -> list[str]:
    h, chosen, args = r["setup"]["history"], r["filters"], r["args"]
    chromium = f", Chromium {r['browser']['chromium']}" if r.get("browser") else ""
    out = [
        f"Run of {r['started']} (`bench/dashboard_bench.py --moves {h['moves']}"
        f"{' --reuse' if r['setup']['reused'] else ''}`), {r['elapsed_s']:.0f} s in all; raw "
        f"results in `{r['json']}`.",
        "",
        machine_sentence(r["machine"], "PostgreSQL, gunicorn, Chromium and the bench", chromium),
        "",
        f"History: {h['moves']:,} moves, {h['cards']:,} cards ({h['open_cards']:,} open), "
        f"{h['first_move'][:10]} to {h['last_move'][:10]}. Filters measured: cycle "
        f"{chosen['cycle_name']!r} (the first; every card enters it) and the channel with the "
        f"most cards ({chosen['channel_cards']:,}).",
        "",
        *markdown_table(("measure", "result", "target", ""), results_table(r)),
    ]
    scenarios = r.get("server", {}).get("scenarios", {})
    if scenarios:
        out += [
            "",
            f"Server time: Django's test client in one process, {args['requests']} requests "
            f"after {args['warmups']} warm-ups per line; CPU per request of this process and of "
            "its PostgreSQL backend; SQL from one request under CaptureQueriesContext; others' "
            "CPU: what other processes used of the machine's cores meanwhile.",
            "",
            *markdown_table(
                (
                    "request",
                    "p50 / p95 ms",
                    "of which `dashboard_get` p50 ms",
                    "CPU ms (Python + PostgreSQL)",
                    "SQL statements",
                    "SQL ms",
                    "response",
                    "others' CPU",
                ),
                [
                    (
                        scenario_label(s),
                        f"{s['ms']['p50']:.0f} / {s['ms']['p95']:.0f}",
                        f"{s['dashboard_get_ms']['p50']:.0f}" if "dashboard_get_ms" in s else "",
                        f"{s['cpu_ms_per_request']['python']:.0f} + "
                        f"{s['cpu_ms_per_request']['postgres']:.0f}",
                        s["statements"],
                        f"{s['sql_ms']:.0f}",
                        f"{s['response_bytes'] / 1024:,.0f} KiB",
                        f"{s['others_cpu_share']:.0%}",
                    )
                    for s in scenarios.values()
                ],
            ),
        ]
    csv = r.get("server", {}).get("csv")
    if csv:
        out += [
            "",
            f"CSV downloads (default filters, stored document {r['server']['csv_stored_document']}"
            "), once each: "
            + ", ".join(f"{k} {v['ms']:.0f} ms ({v['rows']:,} rows)" for k, v in csv.items())
            + ".",
        ]
    pages = {key: s for key, s in scenarios.items() if "dashboard_get_ms" in s}
    if pages:

        def pivot(rows) -> list[str]:
            """One column per page, one row per (label, cell of a page's results)."""
            header = ("", *(SHORT_LABELS.get(key, key) for key in pages))
            return markdown_table(
                header, [(label, *(cell(s) or "" for s in pages.values())) for label, cell in rows]
            )

        def share(s: dict, meaning: str) -> str:
            row = next((x for x in s["profile"]["breakdown"] if x["meaning"] == meaning), None)
            return f"{row['share']:.0%}" if row else ""

        def part(s: dict, name: str) -> str:
            found = s["dashboard_get_ms"]["parts"].get(name)
            if not found:
                return ""
            items = f" ({found['items']:,})" if found["items"] is not None else ""
            return f"{found['p50']:.0f}{items}"

        def chart(s: dict, key: str) -> str:
            c = s["composition"]["charts"].get(key)
            return f"{c['kib']:,.0f} ({c['json_kib']:,.0f}), {c['table_rows']:,} rows" if c else ""

        seen = {row["meaning"] for s in pages.values() for row in s["profile"]["breakdown"]}
        parts = dict.fromkeys(n for s in pages.values() for n in s["dashboard_get_ms"]["parts"])
        charts = dict.fromkeys(k for s in pages.values() for k in s["composition"]["charts"])
        out += [
            "",
            "Where the time goes (1): cumulative time of these functions in a cProfile of "
            "one request per page, as a share of that request (the profiler inflates "
            "template rendering most):",
            "",
            *pivot(
                (meaning.strip(), lambda s, m=meaning: share(s, m))
                for _, _, meaning in PROFILED
                if meaning in seen
            ),
            "",
            "Where the time goes (2), without a profiler: `dashboard_get` and its parts, each "
            "called alone with the page's query (p50 ms, items returned); the rest of the "
            "page's time is the template and the middleware:",
            "",
            *pivot(
                [
                    ("page (p50)", lambda s: f"{s['ms']['p50']:.0f}"),
                    ("`dashboard_get`", lambda s: f"{s['dashboard_get_ms']['p50']:.0f}"),
                    *((name, lambda s, n=name: part(s, n)) for name in parts),
                ]
            ),
            "",
            "What the pages are made of: KiB of HTML per chart (of which its JSON), and the "
            "rows of its data table:",
            "",
            *pivot(
                [
                    ("whole page", lambda s: f"{s['composition']['page_kib']:,.0f}"),
                    *((key, lambda s, k=key: chart(s, k)) for key in charts),
                ]
            ),
        ]
    for s in (s for s in scenarios.values() if s["missed"]):
        out += ["", f"Slowest statements of one request, {s['label']} (target missed):", ""]
        out += [f"- {st['ms']:.0f} ms: `{st['sql'][:220]}`" for st in s["slowest"][:5]]
    browser = r.get("browser")
    if browser:
        rows = []
        for key, run in browser["runs"].items():
            if not run.get("ready_ms"):
                rows.append((key, "failed", *[""] * 7))
                continue
            rows.append(
                (
                    key,
                    f"{run['ready_ms']['p50']} / {run['ready_ms']['p95']}",
                    run["response_end_ms"].get("p50"),
                    run["dom_interactive_ms"].get("p50"),
                    run["scripts_ms"].get("p50"),
                    run["forecast_end_ms"].get("p50", "-"),
                    f"{(run['document_bytes'] or 0) / 1024:,.0f} KiB",
                    ", ".join(f"{d}/{c}" for c, d in run["charts"]),
                    f"{run['machine_busy_share']:.0%}",
                )
            )
        out += [
            "",
            f"Browser: {browser['server']}; Chromium from Debian, headless, software "
            "rendering (--disable-gpu). Per line: one cold load (empty cache), one warm-up, "
            f"then {args['loads']} loads; time from navigation start to "
            '`html[data-charts-ready="true"]` (set by static/js/dashboard.js), taken in the '
            "page with `performance.now()`. Phone: 390x844, device scale factor 3. Machine "
            "busy: all processes, the bench's own (gunicorn, PostgreSQL, Chromium) included.",
            "",
            *markdown_table(
                (
                    "page",
                    "charts ready p50 / p95 ms",
                    "HTML received p50 ms",
                    "HTML parsed (domInteractive) p50 ms",
                    "then scripts and charts p50 ms",
                    "forecast panel received p50 ms",
                    "HTML",
                    "charts drawn",
                    "machine busy",
                ),
                rows,
            ),
        ]
        if browser["error_count"]:
            out += ["", f"Browser errors ({browser['error_count']}): {browser['errors'][:3]}"]
    return out


def print_misses(results: dict) -> None:
    """For each line that missed its target: statements, plan, parts, profile."""
    for s in results["server"]["scenarios"].values():
        if not s["missed"]:
            continue
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
                    f"  {key:<18} {chart['kib']:8,.0f} KiB (JSON {chart['json_kib']:,.0f} KiB), "
                    f"data table {chart['table_rows']:,} rows"
                )
        print(f"cProfile of one request ({s['profile']['profiled_ms']:.0f} ms profiled):")
        for row in s["profile"]["breakdown"]:
            print(f"  {row['meaning']:<42} {row['ms']:8.1f} ms  {row['share']:4.0%}")
        print(s["profile"]["text"])


def main() -> int:
    parser = arguments(__doc__, seed=20261125, quiet_wait="default 10, --quick 2", doc_block=True)
    parser.add_argument("--moves", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 moves, fewer requests")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"keep {DATABASE.name} if it holds the stream of an earlier run with --moves moves",
    )
    parser.add_argument("--rebuild", action="store_true", help="with --reuse: rebuild anyway")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per line")
    parser.add_argument("--warmups", type=int, default=3)
    parser.add_argument("--loads", type=int, default=10, help="measured page loads per line")
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.moves = 100_000
        args.requests = min(args.requests, 10)
        args.loads = min(args.loads, 5)
    if args.quiet_wait is None:
        args.quiet_wait = 2.0 if args.quick else 10.0

    began = time.perf_counter()
    env = environment(
        DATABASE,
        web=True,
        cache="locmemcache://dashboard-bench",
        secret=os.environ.get("DASHBOARD_BENCH_SECRET"),
        # Playwright's sync API runs an event loop in this thread.
        DJANGO_ALLOW_ASYNC_UNSAFE="true",
    )
    setup_django(env)
    results: dict = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "args": vars(args)}
    load_at_start = os.getloadavg()
    results["setup"] = setup = prepare(args)
    results["machine"] = {**machine(DATABASE), "loadavg_at_start": load_at_start}
    h = setup["history"]
    log(f"history: {h['moves']:,} moves, {h['cards']:,} cards ({h['open_cards']:,} open)")
    results["filters"] = chosen = filters(setup["stream_id"])
    start = time.perf_counter()
    collectstatic()
    log(f"collectstatic in {time.perf_counter() - start:.1f} s")

    log(f"server time: {args.requests} requests per line after {args.warmups} warm-ups ...")
    results["server"] = phase_server(setup, chosen, args.requests, args.warmups, args.quiet_wait)
    browser = None
    if not args.skip_browser:
        from django.db import connections

        refresh_document(setup["stream_id"])
        connections.close_all()
        browser = results["browser"] = phase_browser(
            env, setup, chosen, args.loads, args.quiet_wait
        )
        browser["stored_document_after"] = stored_state(setup["stream_id"])

    results["machine"]["calibration_ms_end"] = cpu_calibration()
    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    json_path = save_results("dashboard_bench", results, "-quick" if args.quick else "")
    print()
    print(text_table(results_table(results)))
    print_misses(results)
    if browser and browser["error_count"]:
        print(f"\nbrowser errors ({browser['error_count']}):", *browser["errors"], sep="\n  ")
    if browser and browser["console_errors"]:
        print("\nbrowser console errors:", *browser["console_errors"], sep="\n  ")
    print(f"\nraw results: {json_path}")
    print(f"whole script: {results['elapsed_s']} s")
    if not args.no_doc and (args.doc or not args.quick):
        replace_block("dashboard-bench", markdown_block(results), DOC_INTRO)
        print("updated docs/performance.md (Dashboard section)")
    failed = browser and (
        browser["error_count"] or any(run["failures"] for run in browser["runs"].values())
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
