#!/usr/bin/env python
"""Metrics engine benchmark: the fold of a long move log, on PostgreSQL and Redis.

    .venv/bin/python bench/metrics_bench.py [--moves 1000000] [--quick]

A script that prints figures, not a test, on the harness in bench/harness/. It:

1. Re-creates the database ``vsm_bench_metrics`` and loads the generated history
   (``harness.history``: one stream, eight channels, about 8 moves per card over two
   years, by COPY; setup only). Production settings, DEBUG off, broker on Redis DB 5 and
   cache on Redis DB 6 (both flushed), eager tasks off: no service call folds inline.
2. (a) Full rebuild: the real ``stream_metrics_rebuild``, timed, with SQL time by
   statement and the CPU of this process and of its PostgreSQL backend. The product's
   timing hooks (``vsm.timing``: sections ``metrics.fold``, ``metrics.fold.copy``,
   ``metrics.document``) split it into the fold (with its COPY, COMMIT and ANALYZE) and
   the summary document, and give the fold's rate batch by batch; where the product
   does not mark a section yet, that figure is reported as not measured. Past
   ``--rebuild-deadline`` (default 360 s) its statements are cancelled (it rolls back)
   and the full time is extrapolated from the last quarter's rate; it is then run again
   to the end to fill the aggregates. ``stream_metrics_compute`` is then timed alone.
3. (b) One new move: real moves through ``boards.services.card_move`` on open cards,
   each followed by a timed ``stream_metrics_advance(summarize=False)`` (the fold, which
   commits on its own) and a timed ``stream_metrics_summarize`` (the document) ->
   p50/p95, statements per run (``--single-moves``, capped at ``--single-max-seconds``).
4. (c) Freshness: a real ``celery -A vsm worker --pool solo -c 1`` on the same Redis
   DBs; ``--movers`` threads (own connections, disjoint cards) issue a steady 20 moves/s
   in all through ``card_move`` for 60 s; each move's commit time is taken by an
   on-commit hook registered before the service's own, and a poller thread reads
   ``StreamMetrics.through_move_id`` (the document) and
   ``MetricsProgress.last_applied_move_id`` (the fold) every 20 ms: freshness = first
   poll showing the move minus its commit -> p50/p95/max. Task run times come from the
   worker's log.
5. Consistency: the aggregates folded run by run against a rebuild of the same log.
6. If a target is missed: cProfile of one single-move advance, and (rebuild) of the
   real rebuild's first ``--rebuild-profile-seconds`` (run last: it rolls back).

Prints a results table; raw results go to ``bench/results/metrics_bench-<time>.json``.
A full run (not --quick) rewrites the "metrics-bench" block of docs/performance.md.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from contextlib import nullcontext, suppress
from datetime import UTC, datetime

import harness
from harness import arguments, history, log, percentile, summary
from harness.cpu import CpuMeter, cpu_calibration, machine, process_cpu
from harness.db import (
    Database,
    backend_pid,
    environment,
    flush_redis,
    migrate,
    redis_url,
    setup_django,
)
from harness.processes import CeleryWorker
from harness.report import (
    dist,
    machine_sentence,
    markdown_table,
    replace_block,
    save_results,
    statements_table,
    text_table,
    verdict,
)
from harness.sql import QueryTimer, hook_seconds, profiled

DATABASE = Database("vsm_bench_metrics")
BROKER_DB, CACHE_DB = 5, 6
TARGETS = {"single_move_p95_ms": 50.0, "rebuild_s": 120.0, "freshness_p95_s": 2.0}

DOC_INTRO = """## Metrics engine

`bench/metrics_bench.py` measures the metrics fold (`metrics.services`) on PostgreSQL with
one stream holding a long move log: one new move folded, a full rebuild, and freshness
(a move's commit until `StreamMetrics` shows it) with one Celery worker at a steady rate.
Targets: one new move <= 50 ms, full rebuild of 1,000,000 moves <= 120 s, freshness p95
<= 2 s at 20 moves/s with one worker. The script's docstring describes the method; the
block below is rewritten by each full run."""


def fold_rates(spans, start: float) -> dict:
    """Moves per second over the first and the last quarter of the fold's batches
    (the ``metrics.fold`` spans), and how many moves were handed to it."""
    points, moves = [(0.0, 0)], 0
    for span in spans:
        if span.section == "metrics.fold":
            moves += span.items
            points.append((span.ended - start, moves))
    out: dict = {"fold_moves": moves if len(points) > 1 else None}
    if len(points) < 3:
        return out
    quarter = max(1, (len(points) - 1) // 4)

    def rate(a: int, b: int):
        (t0, m0), (t1, m1) = points[a], points[b]
        return round((m1 - m0) / (t1 - t0), 1) if t1 > t0 else None

    return {
        **out,
        "first_quarter_moves_per_s": rate(0, quarter),
        "last_quarter_moves_per_s": rate(len(points) - 1 - quarter, len(points) - 1),
        "batches": len(points) - 1,
        "fold_end_s": round(points[-1][0], 2),
    }


def cancelled() -> tuple[type[Exception], ...]:
    """What a statement cancelled at a deadline raises: Django's OperationalError, or
    psycopg's own from a COPY (which Django does not wrap)."""
    from django.db import OperationalError
    from psycopg.errors import QueryCanceled

    return (OperationalError, QueryCanceled)


def phase_rebuild(stream_id: int, total_moves: int, deadline_s: float | None) -> dict:
    """The real stream_metrics_rebuild, timed; cancelled (rolled back) past the
    deadline, in which case the full time is extrapolated from the batches done."""
    from django.db import connection

    from metrics import services
    from vsm import timing

    timer = QueryTimer()
    pid = backend_pid()
    meter = CpuMeter(backends=lambda: [pid])
    aborted, result = None, None
    start = time.perf_counter()
    with timing.collect(spans=True) as times, DATABASE.deadline(pid, deadline_s) as deadline:
        try:
            with connection.execute_wrapper(timer):
                result = services.stream_metrics_rebuild(stream_id=stream_id)
        except cancelled() as error:
            if not deadline["fired"]:
                raise
            aborted = f"cancelled at the {deadline_s:g} s deadline: {str(error).splitlines()[0]}"
    total = time.perf_counter() - start
    cpu = meter.result()
    document_s = hook_seconds(times, "metrics.document")
    copy_s = hook_seconds(times, "metrics.fold.copy")
    out = {
        "copy_s": round(copy_s, 2) if copy_s is not None else None,
        "copy_rows": times.items("metrics.fold.copy") if copy_s is not None else None,
        "slowest_statement": timer.explain_slowest() if result else None,
        "completed": aborted is None,
        "aborted": aborted,
        "cpu": cpu,
        "sql_s": round(timer.total, 2),
        "python_s": round(total - timer.total, 2),
        "top_statements": timer.top(12),
        "hooks": sorted(times.sections),
        **fold_rates(times.spans or [], start),
    }
    if result is not None:
        out.update(
            applied=result.applied,
            total_s=round(total, 2),
            fold_s=round(total - document_s, 2) if document_s is not None else None,
            document_s=round(document_s, 3) if document_s is not None else None,
        )
        return out
    done = out.get("fold_moves")
    out.update(applied=done, total_s=None, elapsed_s=round(total, 2), estimated_total_s=None)
    if done is not None and done >= total_moves:  # the fold finished; the document did not
        out["document_stopped"] = True
    elif done:
        recent = out.get("last_quarter_moves_per_s") or (done / total)
        out["estimated_total_s"] = round(total + (total_moves - done) / recent, 0)
        own = cpu["python_cpu_s"] + cpu["postgres_cpu_s"]
        out["estimated_cpu_s"] = round(own * total_moves / done, 0)
    return out


PROFILED = (
    ("metrics/fold/core.py", "fold_moves", "the fold of a batch, in memory"),
    ("metrics/fold/rows.py", "read_moves", "reading a batch of moves (tuples)"),
    ("metrics/fold/core.py", "apply", "Fold.apply: per-move logic"),
    ("metrics/fold/core.py", "write_intervals", "writing durations and first reaches"),
    ("metrics/fold/writes.py", "insert_rows", "COPY (PostgreSQL) of the rows"),
    ("django/db/models/query.py", "bulk_create", "bulk_create (incremental writes)"),
    ("metrics/fold/writes.py", "upsert_add", "counter upserts"),
    ("psycopg/connection.py", "wait", "waiting on PostgreSQL (all statements)"),
)


def profile_rebuild(stream_id: int, seconds: float) -> dict:
    """cProfile of the real rebuild for its first ``seconds``, then cancelled (run
    last: it rolls back)."""
    from metrics import services
    from vsm import timing

    def rebuild() -> None:
        with suppress(*cancelled()):
            services.stream_metrics_rebuild(stream_id=stream_id)

    with timing.collect() as times, DATABASE.deadline(backend_pid(), seconds):
        out = profiled(rebuild, PROFILED)
    moves = times.items("metrics.fold") if times.seen("metrics.fold") else None
    total = out["profiled_ms"] / 1000
    return {
        "profiled_s": round(total, 1),
        "moves": moves,
        "functions": [
            {**row, "cumulative_s": round(row["ms"] / 1000, 1)} for row in out["breakdown"]
        ],
    }


def phase_document(stream_id: int) -> dict:
    """stream_metrics_compute alone, three times (the tables are analyzed by then)."""
    import json

    from django.db import connection

    from metrics.selectors import MetricsQuery, stream_metrics_compute
    from vsm.models import ValueStream

    stream = ValueStream.objects.get(pk=stream_id)
    runs, timer, data = [], QueryTimer(), None
    pid = backend_pid()
    meter = CpuMeter(backends=lambda: [pid])
    for index in range(3):
        start = time.perf_counter()
        if index == 0:
            with connection.execute_wrapper(timer):
                data = stream_metrics_compute(MetricsQuery.for_stream(stream)).to_json()
        else:
            stream_metrics_compute(MetricsQuery.for_stream(stream))
        runs.append(time.perf_counter() - start)
    return {
        "runs_s": [round(r, 3) for r in runs],
        "cpu_3_runs": meter.result(),
        "sql_s_first_run": round(timer.total, 3),
        "top_statements": timer.top(10),
        "document_bytes": len(json.dumps(data, default=str)),
    }


FINGERPRINTS = {
    "metrics_cardcycle": (
        "card_id, cycle_id, channel_key, entered_at, reached_mask, outcome, closed_at",
        "card_id, cycle_id",
    ),
    "metrics_cardflowstate": (
        "card_id, last_move_id, channel_id, column_id, cycle_id, is_open, column_entered_at, "
        "cycle_entered_at, stream_entered_at, closed_kind, closed_at, closed_value, "
        "closed_move_id, next_full_mark",
        "card_id",
    ),
    "metrics_columnday": (
        "column_id, day, arrivals, departures, wip_seconds, wip_squared_seconds, full_seconds, "
        "blocked_seconds, waited_seconds, waited_cards",
        "column_id, day",
    ),
    "metrics_columnflowstate": ("column_id, wip, full_seconds_total, timeline_at", "column_id"),
    "metrics_cycleday": ("cycle_id, day, arrivals, departures, won, lost", "cycle_id, day"),
    "metrics_channelday": ("channel_key, day, arrivals, won, won_value, lost", "channel_key, day"),
    "metrics_flowduration": (
        "move_id, kind, card_id, column_id, cycle_id, channel_key, started_at, ended_at, "
        "seconds, abandoned",
        "move_id, kind",
    ),
}


def fingerprint(stream_id: int) -> dict:
    """Row count and md5 of every aggregate table's rows (ids left out), per table."""
    from django.db import connection

    out = {}
    with connection.cursor() as cursor:
        for table, (columns, order) in FINGERPRINTS.items():
            cursor.execute(
                f"SELECT count(*), md5(string_agg(concat_ws(',', {columns}), ';' "
                f"ORDER BY {order})) FROM {table} WHERE value_stream_id = %s",
                [stream_id],
            )
            out[table] = list(cursor.fetchone())
    return out


def aggregate_rows(stream_id: int) -> dict:
    from metrics.fold import AGGREGATES

    return {
        model.__name__: model.objects.filter(value_stream_id=stream_id).count()
        for model in AGGREGATES
    }


def check_consistency(stream_id: int) -> dict:
    """After (b) and (c) folded their moves run by run: every aggregate table (md5 of
    its rows) equals what a rebuild of the same log gives."""
    from metrics import services

    services.stream_metrics_advance(stream_id=stream_id)
    incremental = fingerprint(stream_id)
    start = time.perf_counter()
    services.stream_metrics_rebuild(stream_id=stream_id)
    rebuild_s = time.perf_counter() - start
    rebuilt = fingerprint(stream_id)
    return {
        "equal": incremental == rebuilt,
        "tables_differing": {
            table: {"incremental": incremental[table], "rebuilt": rebuilt[table]}
            for table in rebuilt
            if incremental[table] != rebuilt[table]
        },
        "second_rebuild_s": round(rebuild_s, 2),
    }


def open_cards(stream_id: int) -> dict[int, int]:
    from boards.models import Card, Outcome

    return dict(
        Card.objects.filter(value_stream_id=stream_id, outcome=Outcome.OPEN).values_list(
            "pk", "column_id"
        )
    )


def random_target(column_id: int, cycles: list[list[int]], rng: random.Random) -> int:
    for columns in cycles:
        if column_id in columns:
            return rng.choice([c for c in columns if c != column_id])
    raise ValueError(column_id)


def manager_actor(manager_id: int):
    from django.contrib.auth import get_user_model

    from vsm.actors import UserActor

    return UserActor(get_user_model().objects.get(pk=manager_id))


def phase_single(
    stream_id: int, manager_id: int, cycles, n: int, seed: int, max_seconds: float
) -> dict:
    """Real moves through card_move, each followed by a timed fold and document.
    Stops after n measured runs, or after max_seconds (at least 10 runs)."""
    from django.db import connection

    from boards.services import card_move
    from metrics import services

    rng = random.Random(seed + 2)
    actor = manager_actor(manager_id)
    cards = open_cards(stream_id)
    card_ids = sorted(cards)
    scope = {"name": "fold"}
    timer = QueryTimer(scope=lambda: scope["name"])
    totals, folds, documents, applied = [], [], [], []
    warmup, meter, began = 3, None, None
    pid = backend_pid()

    def move() -> None:
        card_id = rng.choice(card_ids)
        target = random_target(cards[card_id], cycles, rng)
        card_move(card_id=card_id, to_column_id=target, actor=actor)
        cards[card_id] = target

    for index in range(n + warmup):
        if index == warmup:
            meter, began = CpuMeter(backends=lambda: [pid]), time.perf_counter()
        elif began and len(totals) >= 10 and time.perf_counter() - began > max_seconds:
            break
        move()
        start = time.perf_counter()
        with connection.execute_wrapper(timer) if index >= warmup else nullcontext():
            scope["name"] = "fold"
            # The fold commits on its own: the move is processed (MetricsProgress).
            result = services.stream_metrics_advance(stream_id=stream_id, summarize=False)
            folded = time.perf_counter()
            # Then the document, in its own transaction (what the advance does next).
            scope["name"] = "document"
            services.stream_metrics_summarize(stream_id=stream_id)
            done = time.perf_counter()
        if index >= warmup:
            totals.append((done - start) * 1000)
            folds.append((folded - start) * 1000)
            documents.append((done - folded) * 1000)
            applied.append(result.applied)
    cpu = meter.result()
    move()  # one more, profiled, for the diagnosis
    profile = profiled(lambda: services.stream_metrics_advance(stream_id=stream_id), (), 30)
    runs = len(totals)
    return {
        "n": runs,
        "applied_per_run": sorted(set(applied)),
        "advance_ms": summary(totals),
        "fold_ms": summary(folds),
        "document_ms": summary(documents),
        "cpu": cpu,
        "cpu_ms_per_run": round(1000 * (cpu["python_cpu_s"] + cpu["postgres_cpu_s"]) / runs, 1),
        "top_statements_per_run": [
            {**s, "count": round(s["count"] / runs, 1), "ms": round(1000 * s["seconds"] / runs, 2)}
            for s in timer.top(16)
        ],
        "sql_ms_per_run": round(timer.total * 1000 / runs, 1),
        "profile": profile["text"],
    }


def late_scan_cost(stream_id: int) -> dict:
    """What the 'late moves' query costs when the watermark lags the whole log (moves
    recorded less than 2 x SETTLE_SECONDS ago, e.g. right after a bulk import)."""
    from django.db.models import F, Q

    from metrics.fold import read_moves
    from metrics.models import MetricsProgress

    progress = MetricsProgress.objects.get(value_stream_id=stream_id)
    start = time.perf_counter()
    rows = read_moves(
        stream_id,
        pk__gt=0,
        pk__lte=progress.last_applied_move_id,
        filter_q=Q(card__cardflowstate__isnull=True)
        | Q(card__cardflowstate__last_move_id__lt=F("id")),
    )
    return {
        "range_moves": progress.last_applied_move_id,
        "rows": len(rows),
        "seconds": round(time.perf_counter() - start, 3),
    }


class Poller(threading.Thread):
    """Every interval, one query reads how far the fold (MetricsProgress.
    last_applied_move_id) and the document (StreamMetrics.through_move_id) have got;
    records when each changes."""

    SQL = (
        "SELECT p.last_applied_move_id, m.through_move_id FROM metrics_metricsprogress p "
        "LEFT JOIN metrics_streammetrics m ON m.value_stream_id = p.value_stream_id "
        "WHERE p.value_stream_id = %s"
    )

    def __init__(self, stream_id: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.stream_id, self.interval = stream_id, interval
        self.stop_event = threading.Event()
        self.changes: dict[str, list[tuple[float, int]]] = {"fold": [], "document": []}
        self.poll_seconds: list[float] = []

    def run(self) -> None:
        from django.db import connection

        try:
            last = {"fold": None, "document": None}
            while not self.stop_event.is_set():
                start = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute(self.SQL, [self.stream_id])
                    row = cursor.fetchone() or (None, None)
                seen = time.perf_counter()
                self.poll_seconds.append(seen - start)
                for name, value in zip(("fold", "document"), row, strict=True):
                    if value is not None and value != last[name]:
                        self.changes[name].append((seen, value))
                        last[name] = value
                self.stop_event.wait(max(0.0, self.interval - (time.perf_counter() - start)))
        finally:
            connection.close()

    def visible_at(self, move_id: int, what: str = "document") -> float | None:
        return next((seen for seen, through in self.changes[what] if through >= move_id), None)


def phase_freshness(stream_id, manager_id, cycles, env, rate, duration, seed, movers) -> dict:
    """A real worker; ``movers`` threads (own connections, disjoint cards) together
    issue a steady ``rate`` moves/s through card_move; a poller watches the metrics."""
    from django.db import connection, transaction

    from boards.services import card_move
    from metrics.models import MetricsProgress, StreamMetrics

    flush_redis(BROKER_DB, CACHE_DB)
    worker = CeleryWorker(env, f"metrics_bench-worker-{time.strftime('%Y%m%d-%H%M%S')}")
    actor = manager_actor(manager_id)
    cards = open_cards(stream_id)
    card_ids = sorted(cards)
    commits: dict[int, float] = {}
    move_seconds: list[float] = []
    errors: list[str] = []
    late_starts = [0]
    poller = Poller(stream_id, 0.020)

    def one_move(rng: random.Random, own: list[int]) -> tuple[int, float]:
        card_id = rng.choice(own)
        target = random_target(cards[card_id], cycles, rng)
        committed: list[float] = []
        # The outer atomic makes the service's block a savepoint; our hook is registered
        # first, so it runs right after COMMIT, before the service's enqueue hook.
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(time.perf_counter()))
            result = card_move(card_id=card_id, to_column_id=target, actor=actor)
        cards[card_id] = target
        return result.move.pk, committed[0]

    def mover(index: int, begin: float, count: int) -> None:
        rng = random.Random(seed * 31 + index)
        own = card_ids[index::movers]
        try:
            for k in range(count):
                wait = begin + (index + k * movers) / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -movers / rate:
                    late_starts[0] += 1
                start = time.perf_counter()
                try:
                    move_id, committed = one_move(rng, own)
                except Exception as error:  # counted and reported, the run goes on
                    errors.append(repr(error))
                    continue
                move_seconds.append(time.perf_counter() - start)
                commits[move_id] = committed
        finally:
            connection.close()

    try:
        worker.wait_ready()
        poller.start()
        warm_rng = random.Random(seed + 3)  # the worker's first runs connect, import
        for _ in range(3):
            move_id, _ = one_move(warm_rng, card_ids)
            deadline = time.monotonic() + 60
            while poller.visible_at(move_id) is None and time.monotonic() < deadline:
                time.sleep(0.05)
        connection.close()
        log(f"freshness: {rate:g} moves/s from {movers} threads for {duration:g} s ...")
        n = int(duration * rate)
        worker_cpu0 = process_cpu(worker.pid)
        begin = time.perf_counter() + 0.2
        threads = [
            threading.Thread(
                target=mover, args=(i, begin, n // movers + (1 if i < n % movers else 0))
            )
            for i in range(movers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        issued_s = time.perf_counter() - begin
        last_id = max(commits)
        deadline = time.monotonic() + 120
        while poller.visible_at(last_id) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        drained_s = time.perf_counter() - begin
        worker_cpu = process_cpu(worker.pid) - worker_cpu0
    finally:
        poller.stop_event.set()
        poller.join(timeout=5)
        worker.stop()
    lags: dict[str, list[float]] = {"document": [], "fold": []}
    for move_id, committed in commits.items():
        for what, values in lags.items():
            seen = poller.visible_at(move_id, what)
            if seen is not None:
                values.append(seen - committed)
    runs = worker.task_runs("metrics.recompute_stream")
    if runs.get("runs"):
        runs["busy_fraction"] = round(runs["total_run_s"] / drained_s, 2)
    runs["cpu_s"] = round(worker_cpu, 1)
    progress = MetricsProgress.objects.get(value_stream_id=stream_id)
    metrics = StreamMetrics.objects.get(value_stream_id=stream_id)
    return {
        "rate_target": rate,
        "movers": movers,
        "moves": len(commits),
        "errors": len(errors),
        "error_samples": errors[:5],
        "achieved_rate": round(len(commits) / issued_s, 2),
        "late_starts": late_starts[0],
        "move_ms_p50": round(percentile(move_seconds, 50) * 1000, 1),
        "move_ms_p95": round(percentile(move_seconds, 95) * 1000, 1),
        "freshness_s": summary(lags["document"], 3),
        "never_visible": len(commits) - len(lags["document"]),
        "fold_freshness_s": summary(lags["fold"], 3),
        "fold_never_visible": len(commits) - len(lags["fold"]),
        "document_updates": len(poller.changes["document"]),
        "drained_s": round(drained_s, 1),
        "poll_interval_ms": 20,
        "poll_query_ms_p50": round(percentile(poller.poll_seconds, 50) * 1000, 2),
        "worker": runs,
        "worker_log": str(worker.log_path.relative_to(harness.ROOT)),
        "final_through_move_id": metrics.through_move_id,
        "final_last_applied": progress.last_applied_move_id,
        "final_watermark": progress.watermark_move_id,
    }


def results_table(r: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    single = r.get("single")
    if single:
        fold, doc, both = single["fold_ms"], single["document_ms"], single["advance_ms"]
        target = TARGETS["single_move_p95_ms"]
        rows += [
            (
                "One new move: the fold, committed (advance without document) p95",
                f"{fold['p95']:.0f} ms (p50 {fold['p50']:.0f} ms)",
                f"<= {target:.0f} ms",
                verdict(fold["p95"], target),
            ),
            (
                "  then the document, stream_metrics_summarize p95",
                f"{doc['p95']:.0f} ms (p50 {doc['p50']:.0f} ms)",
                "",
                "",
            ),
            ("  fold + document p95", f"{both['p95']:.0f} ms (p50 {both['p50']:.0f} ms)", "", ""),
        ]
    rebuild, moves = r.get("rebuild"), r["history"]["moves"]
    if rebuild:
        label, target = f"Full rebuild of {moves:,} moves", TARGETS["rebuild_s"]
        if rebuild["completed"]:
            split = (
                f"{rebuild['fold_s']:.1f} s / {rebuild['document_s']:.2f} s"
                if rebuild["document_s"] is not None
                else "not measured (no vsm.timing hook in the product yet)"
            )
            rows += [
                (
                    label,
                    f"{rebuild['total_s']:.1f} s",
                    f"<= {target:.0f} s",
                    verdict(rebuild["total_s"], target),
                ),
                ("  the fold / the document", split, "", ""),
            ]
        elif rebuild.get("estimated_total_s"):
            rows.append(
                (
                    label,
                    f"stopped at {rebuild['elapsed_s']:.0f} s after {rebuild['applied']:,} "
                    f"moves; est. {rebuild['estimated_total_s']:.0f} s",
                    f"<= {target:.0f} s",
                    "NOT MET" if rebuild["estimated_total_s"] > target else "n/a",
                )
            )
        else:
            rows.append(
                (label, f"stopped at {rebuild['elapsed_s']:.0f} s", f"<= {target:.0f} s", "NOT MET")
            )
    fresh = r.get("freshness")
    if fresh:
        f, target = fresh["freshness_s"], TARGETS["freshness_p95_s"]
        rows.append(
            (
                f"Freshness at {fresh['achieved_rate']:g} moves/s, 1 worker: p95",
                f"{f['p95']:.2f} s (p50 {f['p50']:.2f}, max {f['max']:.2f})",
                f"<= {target:.0f} s",
                verdict(f["p95"], target) if not fresh["never_visible"] else "NOT MET",
            )
        )
        f = fresh["fold_freshness_s"]
        rows.append(
            (
                "  the fold alone (MetricsProgress) p95",
                f"{f['p95']:.2f} s (p50 {f['p50']:.2f}, max {f['max']:.2f})",
                "",
                "",
            )
        )
    return rows


def markdown_block(r: dict) -> list[str]:
    h, rebuild = r["history"], r.get("rebuild")
    out = [
        f"Run of {r['started']} (`bench/metrics_bench.py --moves {h['moves']}`), "
        f"raw results in `{r['json']}`.",
        "",
        machine_sentence(r["machine"], "PostgreSQL, Redis, the worker and the bench"),
        "",
        f"History: {h['moves']:,} moves, {h['cards']:,} cards ({h['open_cards']:,} open), "
        f"{h['first_move'][:10]} to {h['last_move'][:10]}; "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(h["kinds"].items()))
        + ". Load (setup, not a target): "
        + ", ".join(f"{k.removesuffix('_s')} {v} s" for k, v in h["timings"].items())
        + ".",
        "",
        *markdown_table(("measure", "result", "target", ""), results_table(r)),
    ]
    if rebuild:
        cpu = rebuild["cpu"]
        state = "completed" if rebuild["completed"] else "stopped: " + rebuild["aborted"]
        copy = (
            f"COPY {rebuild['copy_s']} s ({rebuild['copy_rows']:,} rows)"
            if rebuild["copy_s"] is not None
            else "COPY not measured"
        )
        rates = (
            f"; fold rate {rebuild['first_quarter_moves_per_s']} moves/s over the first "
            f"quarter of the batches, {rebuild['last_quarter_moves_per_s']} over the last"
            if rebuild.get("first_quarter_moves_per_s")
            else ""
        )
        out += [
            "",
            f"Rebuild ({state}): {rebuild['applied'] or 0:,} moves folded; wall "
            f"{cpu['wall_s']} s, of which SQL {rebuild['sql_s']} s and {copy}; CPU: Python "
            f"{cpu['python_cpu_s']} s, its PostgreSQL backend {cpu['postgres_cpu_s']} s (load "
            f"average {cpu['loadavg_1min_at_start']} -> {cpu['loadavg_1min_at_end']}){rates}"
            + (
                f"; estimated CPU for the whole log {rebuild['estimated_cpu_s']:.0f} s"
                if rebuild.get("estimated_cpu_s")
                else ""
            )
            + ". Statements by time:",
            "",
            *statements_table(rebuild["top_statements"]),
        ]
        slowest = rebuild.get("slowest_statement")
        if slowest and slowest["seconds"] >= 5:
            out += [
                "",
                f"Its slowest statement ({slowest['seconds']} s) and the plan PostgreSQL "
                "chose for it, right after the run:",
                "",
                "```",
                slowest["sql"][:400] + ("..." if len(slowest["sql"]) > 400 else ""),
                "",
                slowest["plan"],
                "```",
            ]
    profile = r.get("rebuild_profile")
    if profile:
        out += [
            "",
            f"cProfile of the real rebuild's first {profile['profiled_s']} s "
            f"({profile['moves'] or 0:,} moves; profiling slows it down, the shares are what "
            "counts):",
            "",
            *markdown_table(
                ("function", "what", "cumulative s", "share"),
                [
                    (f"`{f['function']}`", f["meaning"], f["cumulative_s"], f"{f['share']:.0%}")
                    for f in profile["functions"]
                ],
            ),
        ]
    if r.get("aggregate_rows"):
        rows = ", ".join(f"{k} {v:,}" for k, v in r["aggregate_rows"].items())
        out += ["", f"Aggregate rows: {rows}."]
    consistency = r.get("consistency")
    if consistency:
        out += [
            "",
            "After (b) and (c), the aggregates folded run by run "
            + (
                "equal those of a rebuild of the same log (md5 of every aggregate table)"
                if consistency["equal"]
                else f"DIFFER from a rebuild's: {consistency['tables_differing']}"
            )
            + f"; that second rebuild, over existing aggregates, took "
            f"{consistency['second_rebuild_s']} s.",
        ]
    doc = r.get("document")
    if doc:
        out += [
            "",
            "`stream_metrics_compute` alone: "
            f"{', '.join(str(x) for x in doc['runs_s'])} s (document "
            f"{doc['document_bytes']:,} bytes of JSON; SQL {doc['sql_s_first_run']} s of the "
            "first run). Its statements:",
            "",
            *statements_table(doc["top_statements"]),
        ]
    single = r.get("single")
    if single:
        out += [
            "",
            f"One new move: {single['n']} runs, {single['applied_per_run']} move(s) folded per "
            f"run; fold (committed) {dist(single['fold_ms'], 'ms')}, document "
            f"{dist(single['document_ms'], 'ms')}, both {dist(single['advance_ms'], 'ms')}; "
            f"SQL {single['sql_ms_per_run']} ms and CPU (Python + backend) "
            f"{single['cpu_ms_per_run']} ms per run. Statements per run ([scope] = inside the "
            "document or not):",
            "",
            *statements_table(single["top_statements_per_run"], 10, per_run=True),
        ]
    late = r.get("late_scan")
    if late:
        out += [
            "",
            "The 'late moves' query over the whole log (what every run pays while the "
            "watermark lags it, e.g. for 2 x SETTLE_SECONDS after a bulk import): "
            f"{late['seconds']} s over {late['range_moves']:,} moves.",
        ]
    fresh = r.get("freshness")
    if fresh:
        w = fresh["worker"]
        out += [
            "",
            f"Freshness: {fresh['moves']} moves from {fresh['movers']} threads at "
            f"{fresh['achieved_rate']} moves/s (card_move p50 {fresh['move_ms_p50']} ms, p95 "
            f"{fresh['move_ms_p95']} ms, {fresh['errors']} errors); freshness "
            f"{dist(fresh['freshness_s'], 's', 2)}, never visible {fresh['never_visible']}; "
            "the fold alone (MetricsProgress.last_applied_move_id) "
            f"{dist(fresh['fold_freshness_s'], 's', 2)}; the document was rewritten "
            f"{fresh['document_updates']} times. Worker: {w.get('runs')} task runs, run time "
            f"p50 {w.get('run_s_p50')} s / p95 {w.get('run_s_p95')} s, "
            f"{w.get('moves_per_run_mean')} moves folded per run, busy "
            f"{w.get('busy_fraction')} of the time, {w.get('cpu_s')} s CPU.",
        ]
    return out


def main() -> int:
    parser = arguments(__doc__, seed=20261125, doc_block=True)
    parser.add_argument("--moves", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 moves, 20 s freshness")
    parser.add_argument("--single-moves", type=int, default=50)
    parser.add_argument("--single-max-seconds", type=float, default=150.0, help="cap on phase (b)")
    parser.add_argument(
        "--rebuild-deadline",
        type=float,
        default=360.0,
        help="cancel the real rebuild after this many seconds and extrapolate (0: never)",
    )
    parser.add_argument(
        "--rebuild-profile-seconds",
        type=float,
        default=60.0,
        help="if the rebuild misses its target, cProfile its first N seconds at the end (0: no)",
    )
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--movers", type=int, default=4, help="threads issuing the moves")
    parser.add_argument("--duration", type=float, default=60.0, help="freshness phase, s")
    parser.add_argument("--skip-freshness", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.moves = 100_000
        args.duration = min(args.duration, 20.0)

    env = environment(DATABASE, broker=redis_url(BROKER_DB), cache=redis_url(CACHE_DB))
    log(f"re-creating database {DATABASE.name}; flushing Redis DBs {BROKER_DB} and {CACHE_DB}")
    DATABASE.recreate()
    flush_redis(BROKER_DB, CACHE_DB)
    setup_django(env)
    import vsm.celery  # noqa: F401  the Celery app, configured from settings (eager off)

    results: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": vars(args),
        "machine": machine(DATABASE),
    }
    start = time.perf_counter()
    migrate()
    log(f"migrated in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    built = history.build(args.moves, args.seed, "Metrics bench")
    stream_id, manager_id, cycles = built["stream_id"], built["manager_id"], built["cycles"]
    results["history"] = h = {**history.describe(stream_id), "timings": built["timings"]}
    h["timings"]["total_load_s"] = round(time.perf_counter() - start, 2)
    log(
        f"history: {h['moves']:,} moves, {h['cards']:,} cards ({h['open_cards']:,} open) "
        f"loaded in {h['timings']['total_load_s']} s"
    )

    log(f"(a) full rebuild (deadline {args.rebuild_deadline:g} s) ...")
    rb = results["rebuild"] = phase_rebuild(stream_id, h["moves"], args.rebuild_deadline or None)
    if rb["completed"]:
        log(f"rebuild {rb['total_s']} s (fold {rb['fold_s']} s, document {rb['document_s']} s)")
        if rb["document_s"] is None:
            log("  (the product does not mark metrics.document with vsm.timing yet: no split)")
    else:
        log(f"rebuild stopped after {rb['elapsed_s']} s; running it to the end ...")
        history.rebuild(stream_id)
    results["aggregate_rows"] = aggregate_rows(stream_id)
    results["document"] = phase_document(stream_id)
    log(f"stream_metrics_compute alone: {results['document']['runs_s']} s")
    results["late_scan"] = late_scan_cost(stream_id)
    log(f"late-moves query over the whole log: {results['late_scan']['seconds']} s")

    log(f"(b) {args.single_moves} single moves ...")
    results["single"] = phase_single(
        stream_id, manager_id, cycles, args.single_moves, args.seed, args.single_max_seconds
    )
    log(f"advance {results['single']['advance_ms']} ms ({results['single']['n']} runs)")
    if not args.skip_freshness:
        log("(c) freshness with one worker ...")
        results["freshness"] = phase_freshness(
            stream_id, manager_id, cycles, env, args.rate, args.duration, args.seed, args.movers
        )
        log(f"freshness {results['freshness']['freshness_s']} s")
    log("consistency: the incremental aggregates against a rebuild of the same log ...")
    results["consistency"] = check_consistency(stream_id)
    log(f"consistency: {results['consistency']}")
    if args.rebuild_profile_seconds and not (
        rb["completed"] and rb["total_s"] <= TARGETS["rebuild_s"]
    ):
        log(f"profiling the real rebuild for {args.rebuild_profile_seconds:g} s ...")
        results["rebuild_profile"] = profile_rebuild(stream_id, args.rebuild_profile_seconds)

    results["machine"]["calibration_ms_end"] = cpu_calibration()
    json_path = save_results("metrics_bench", results, "-quick" if args.quick else "")
    rows = results_table(results)
    print()
    print(text_table(rows))
    if any(row[3] == "NOT MET" for row in rows):
        print("\nProfile of one single-move advance (cumulative):")
        print("\n".join(results["single"]["profile"].splitlines()[:45]))
    print(f"\nraw results: {json_path}")
    print(f"consistency with a rebuild: {results['consistency']}")
    if not args.no_doc and (args.doc or not args.quick):
        replace_block("metrics-bench", markdown_block(results), DOC_INTRO)
        print("updated docs/performance.md (Metrics engine section)")
    return 0 if results["consistency"]["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
