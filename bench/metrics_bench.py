#!/usr/bin/env python
"""Metrics engine benchmark: the fold of a long move log, on PostgreSQL and Redis.

    .venv/bin/python bench/metrics_bench.py [--moves 1000000] [--quick]

A script that prints figures, not a test. What it does:

1. Drops and re-creates the database ``vsm_metrics_bench`` on 127.0.0.1:5432 (user
   postgres) and migrates it. Settings are the production ones (``vsm.settings``, DEBUG
   off) with the broker on Redis DB 5 and the cache on Redis DB 6 (both flushed), eager
   tasks off: no service call folds inline.
2. Builds one stream with ``boards.services.value_stream_create`` and eight channels, and
   loads a generated history with PostgreSQL COPY (setup only, not a target): about
   8 moves per card over two years; each card enters a cycle's first column, walks its
   columns (with some backward moves), passes control points (handoffs), is won or lost,
   sometimes reopened; cards whose next event would be in the future stay open, and
   about 1% stall for good (aging work). Ids follow ``moved_at``; ``recorded_at`` is set
   to ``moved_at`` (the history was recorded as it happened: the fold's watermark can
   settle it). Card rows match their log (column, outcome, closed_at, version, unique
   positions among open cards). WIP limits are lifted so the measured moves are never
   refused; handoff moves get no Handoff row (the fold never reads them).
3. (a) Full rebuild: the real ``stream_metrics_rebuild``, timed, split into the fold
   (with its COPY, COMMIT and ANALYZE) and the summary document
   (``stream_metrics_compute``, timed inside the call), with SQL time by statement and
   the CPU of this process and of its PostgreSQL backend. Past ``--rebuild-deadline``
   (default 360 s) it is stopped between batches (rolled back) and the full time is
   extrapolated from the last quarter's rate; the document is bounded by a
   statement_timeout. If it was stopped, it is run again to the end to fill the
   aggregates for (b) and (c). ``stream_metrics_compute`` is then timed alone.
4. (b) One new move: real moves through ``boards.services.card_move`` on open cards,
   each followed by a timed ``stream_metrics_advance(summarize=False)`` (the fold, which
   commits on its own: the move is then processed) and a timed
   ``stream_metrics_summarize`` (the document, in its own transaction) -> p50/p95,
   statements per run (``--single-moves``, capped at ``--single-max-seconds``).
5. (c) Freshness: a real ``celery -A vsm worker --pool solo -c 1`` subprocess on the same
   Redis DBs; ``--movers`` threads (own connections, disjoint cards) issue a steady 20
   moves/s in all through ``card_move`` (which enqueues after commit) for 60 s; each
   move's commit time is taken by an on-commit hook registered before the service's
   own, and a poller thread reads ``StreamMetrics.through_move_id`` (the document) and
   ``MetricsProgress.last_applied_move_id`` (the fold) every 20 ms: freshness = first
   poll showing the move minus its commit -> p50/p95/max. Task run times come from the
   worker's log.
6. If a target is missed: cProfile of one single-move advance, and (rebuild) of the
   real rebuild's first ``--rebuild-profile-seconds`` (run last: it leaves the stream
   without aggregates).

Prints a results table; raw results go to ``bench/results/metrics_bench-<time>.json``.
A full run (not --quick) refreshes the results block of the "Metrics engine" section of
docs/performance.md (between its markers), appending the section if it is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import math
import os
import platform
import pstats
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
sys.path.insert(0, str(ROOT))

DB_NAME = "vsm_metrics_bench"
DB_HOST, DB_PORT, DB_USER = "127.0.0.1", 5432, "postgres"
DATABASE_URL = f"postgres://{DB_USER}@{DB_HOST}:{DB_PORT}/{DB_NAME}"
BROKER_DB, CACHE_DB = 5, 6
BROKER_URL = f"redis://127.0.0.1:6379/{BROKER_DB}"
CACHE_URL = f"redis://127.0.0.1:6379/{CACHE_DB}"

TARGETS = {"single_move_p95_ms": 50.0, "rebuild_s": 120.0, "freshness_p95_s": 2.0}
DAY = 86_400.0
HISTORY_DAYS = 730

DOC_BEGIN = "<!-- metrics-bench:results:begin -->"
DOC_END = "<!-- metrics-bench:results:end -->"


# --------------------------------------------------------------------------- helpers


def percentile(values: list[float], p: float) -> float:
    """Nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def bench_env(
    db_name: str = DB_NAME, broker_url: str = BROKER_URL, cache_url: str = CACHE_URL
) -> dict[str, str]:
    """The environment of this process and of the worker: production settings. Other
    benchmarks (bench/dashboard_bench.py) pass their own database and Redis DBs."""
    return {
        "DJANGO_SETTINGS_MODULE": "vsm.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": os.environ.get("METRICS_BENCH_SECRET") or secrets.token_urlsafe(40),
        "DJANGO_LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"postgres://{DB_USER}@{DB_HOST}:{DB_PORT}/{db_name}",
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CACHE_URL": cache_url,
    }


def recreate_database(db_name: str = DB_NAME) -> None:
    import psycopg

    with psycopg.connect(
        host=DB_HOST, port=DB_PORT, user=DB_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')


def flush_redis() -> None:
    import redis

    for db in (BROKER_DB, CACHE_DB):
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


def raw_connection():
    """A psycopg connection of its own to the database Django is configured with."""
    import psycopg
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    return psycopg.connect(host=DB_HOST, port=DB_PORT, user=DB_USER, dbname=name)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
        cursor.execute("SHOW work_mem")
        work_mem = cursor.fetchone()[0]
    return {
        "os": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgres": pg,
        "shared_buffers": shared_buffers,
        "work_mem": work_mem,
        "loadavg_at_start": os.getloadavg(),
        "git": git_state(),
    }


def git_state() -> dict:
    """The code measured: HEAD and whether the app code differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "uncommitted_app_changes": git(
            "status", "--porcelain", "--", "metrics", "boards", "vsm", "pdca"
        ).splitlines(),
    }


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / clock_ticks()
    except (OSError, IndexError, ValueError):
        return 0.0


def backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


class CpuMeter:
    """CPU seconds of this process and of its PostgreSQL backend over a phase, with the
    load average: on a shared machine, wall time alone over-states the cost."""

    def __init__(self) -> None:
        self.backend = backend_pid()
        self.load = os.getloadavg()[0]
        self.own0 = time.process_time()
        self.db0 = process_cpu(self.backend)
        self.wall0 = time.perf_counter()

    def result(self) -> dict:
        return {
            "wall_s": round(time.perf_counter() - self.wall0, 2),
            "python_cpu_s": round(time.process_time() - self.own0, 2),
            "postgres_cpu_s": round(process_cpu(self.backend) - self.db0, 2),
            "loadavg_1min_at_start": round(self.load, 2),
            "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
        }


SCOPE = {"name": "fold"}  # statements run inside stream_metrics_compute count as "document"


class QueryTimer:
    """execute_wrapper: wall time per statement class (scope, verb, first table)."""

    TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"?([a-z_]+)"?', re.I)

    def __init__(self, scoped: bool = False) -> None:
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.scoped = scoped
        self.slowest: tuple[float, str, object] = (0.0, "", None)

    @classmethod
    def classify(cls, sql: str) -> str:
        head = sql.lstrip()[:6].upper()
        verb = head.split()[0] if head.split() else "?"
        match = cls.TABLE.search(sql)
        table = match.group(1) if match else "?"
        extra = ""
        if verb == "SELECT" and " JOIN " in sql.upper():
            extra = " +join"
        if verb == "SELECT" and ("GROUP BY" in sql.upper() or "MAX(" in sql.upper()):
            extra += " +agg"
        if verb == "INSERT" and "ON CONFLICT" in sql.upper():
            extra += " upsert"
        if verb == "UPDATE" and " CASE " in sql.upper():
            extra += " CASE(bulk_update)"
        return f"{verb} {table}{extra}"

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = self.classify(sql)
            if self.scoped:
                key = f"[{SCOPE['name']}] {key}"
            entry = self.stats[key]
            elapsed = time.perf_counter() - start
            entry[0] += 1
            entry[1] += elapsed
            if elapsed > self.slowest[0] and not many:
                self.slowest = (elapsed, sql, params)

    def explain_slowest(self) -> dict | None:
        """EXPLAIN (plan only) of the slowest statement, as the planner sees it now."""
        from django.db import connection

        seconds, sql, params = self.slowest
        if not sql or not sql.lstrip().upper().startswith("SELECT"):
            return None
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        return {"seconds": round(seconds, 3), "sql": sql[:600], "plan": plan}

    @property
    def total(self) -> float:
        return sum(v[1] for v in self.stats.values())

    def top(self, n: int = 10) -> list[dict]:
        ordered = sorted(self.stats.items(), key=lambda kv: -kv[1][1])[:n]
        return [{"statement": k, "count": int(v[0]), "seconds": round(v[1], 3)} for k, v in ordered]


class ComputeTimer:
    """Wraps metrics.selectors.stream_metrics_compute (imported by the advance at call
    time) to time the summary document inside the service calls."""

    def __init__(self, deadline_at: float | None = None) -> None:
        """deadline_at (perf_counter time): bound the document's statements by a
        statement_timeout of the time left (at least 60 s), so that a bad plan cannot
        hold the run for ever."""
        import metrics.selectors as selectors

        self.module = selectors
        self.original = selectors.stream_metrics_compute
        self.calls: list[float] = []
        self.timeout_ms: int | None = None

        def timed(*args, **kwargs):
            from django.db import connection

            start = time.perf_counter()
            SCOPE["name"] = "document"
            if deadline_at is not None:
                self.timeout_ms = int(1000 * max(60.0, deadline_at - start))
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL statement_timeout = {self.timeout_ms}")
            try:
                return self.original(*args, **kwargs)
            finally:
                SCOPE["name"] = "fold"
                self.calls.append(time.perf_counter() - start)
                if deadline_at is not None and connection.is_usable():
                    with contextlib.suppress(Exception), connection.cursor() as cursor:
                        cursor.execute("SET LOCAL statement_timeout = 0")

        selectors.stream_metrics_compute = timed

    def take(self) -> float:
        total = sum(self.calls)
        self.calls.clear()
        return total

    def restore(self) -> None:
        self.module.stream_metrics_compute = self.original


# --------------------------------------------------------------------------- history


def generate_history(n_moves: int, cycles: list[list[int]], channels: list[int], seed: int):
    """A valid move log of about n_moves events over HISTORY_DAYS days.

    Returns (cards, events). cards[i] is the card with id i + 1: a dict of its final
    state; events are (t, card_id, seq, kind, from_column, to_column) in time order.
    """
    rng = random.Random(seed)
    now = time.time() - 600  # ten minutes ago: every history move is settled
    span = HISTORY_DAYS * DAY
    channel_weights = [30, 20, 15, 10, 8, 6, 4, 2][: len(channels)]
    channel_choices = [*channels, None]
    weights = [*channel_weights, 5]
    cards: list[dict] = []
    events: list[tuple] = []
    total = 0
    while total < n_moves:
        card_id = len(cards) + 1
        t = now - rng.random() * span
        r = rng.random()
        cycle = 0 if r < 0.85 else (1 if r < 0.97 else 2)
        k = 0
        column = cycles[cycle][0]
        own = [(t, "enter", None, column)]
        created = t
        column_entered = t
        is_open = True
        outcome, closed_at = "open", None
        stall_at = rng.randint(1, 6) if rng.random() < 0.012 else None
        steps = 0
        while True:
            if stall_at is not None and steps >= stall_at and is_open:
                break
            if is_open:
                gap = max(300.0, rng.expovariate(1 / (3.5 * DAY)))
            else:
                gap = max(3600.0, rng.expovariate(1 / (20 * DAY)))
            if t + gap >= now:
                break
            t += gap
            steps += 1
            if not is_open:  # reopen was chosen when it closed
                own.append((t, "reopen", column, column))
                is_open, outcome, closed_at = True, "open", None
                continue
            r = rng.random()
            last = k == len(cycles[cycle]) - 1
            if r < 0.045:
                kind = "lost"
            elif last and cycle == 0:
                kind = "handoff" if r < 0.78 else "lost"
            elif last and cycle == 1:
                kind = "won" if r < 0.6 else ("handoff" if r < 0.88 else "lost")
            elif last:
                kind = "won" if r < 0.85 else "lost"
            elif k > 0 and r < 0.125:
                kind = "back"
            else:
                kind = "forward"
            if kind in ("won", "lost"):
                own.append((t, kind, column, column))
                is_open, outcome, closed_at = False, kind, t
                if rng.random() >= 0.04:
                    break
                continue  # reopened later
            previous = column
            if kind == "handoff":
                cycle, k = cycle + 1, 0
            else:
                k += -1 if kind == "back" else 1
            column = cycles[cycle][k]
            own.append((t, "handoff" if kind == "handoff" else "move", previous, column))
            column_entered = t
        if total + len(own) > n_moves:  # trim the last card to hit n_moves exactly
            own = own[: n_moves - total]
            last_event = own[-1]
            column = last_event[3]
            if last_event[1] in ("won", "lost"):
                is_open, outcome, closed_at = False, last_event[1], last_event[0]
            else:
                is_open, outcome, closed_at = True, "open", None
            column_entered = max(e[0] for e in own if e[1] in ("enter", "move", "handoff"))
        channel = rng.choices(channel_choices, weights)[0]
        value = round(min(rng.lognormvariate(8.3, 1.0), 9_999_999), 2)
        cards.append(
            {
                "channel": channel,
                "value": value,
                "created": created,
                "column": column,
                "outcome": outcome,
                "closed_at": closed_at,
                "column_entered": column_entered,
                "updated": own[-1][0],
                "version": len(own),
            }
        )
        for seq, (when, kind, frm, to) in enumerate(own):
            events.append((when, card_id, seq, kind, frm, to))
        total += len(own)
    events.sort()
    return cards, events


def load_history(stream_id: int, team_id: int, cards: list[dict], events: list[tuple], seed):
    """COPY cards and moves; returns timings."""
    rng = random.Random(seed + 1)
    timings = {}

    def ts(epoch: float) -> str:
        return datetime.fromtimestamp(epoch, UTC).isoformat(sep=" ")

    null = r"\N"
    # Unique positions among open cards, per column, in the order they entered it.
    open_by_column: dict[int, list[int]] = defaultdict(list)
    for index, card in enumerate(cards):
        if card["outcome"] == "open":
            open_by_column[card["column"]].append(index)
    position = [0] * len(cards)
    for indexes in open_by_column.values():
        indexes.sort(key=lambda i: (cards[i]["column_entered"], i))
        for rank, i in enumerate(indexes):
            position[i] = (rank + 1) * 1024

    with raw_connection() as conn:
        with conn.cursor() as cur:
            # Setup shortcut: no per-row foreign-key triggers during COPY (the generator
            # makes every reference valid; they are checked in bulk below).
            cur.execute("SET LOCAL session_replication_role = replica")
            start = time.perf_counter()
            columns = (
                "id, value_stream_id, column_id, position, person_name, company, email, "
                "channel_id, owning_team_id, owner_id, estimated_value, notes, is_blocked, "
                "blocked_reason, blocked_at, outcome, created_at, updated_at, "
                "column_entered_at, closed_at, version"
            )
            with cur.copy(f"COPY boards_card ({columns}) FROM STDIN") as copy:
                buffer = []
                for index, card in enumerate(cards):
                    blocked = card["outcome"] == "open" and rng.random() < 0.02
                    buffer.append(
                        "\t".join(
                            (
                                str(index + 1),
                                str(stream_id),
                                str(card["column"]),
                                str(position[index]),
                                f"Person {index + 1}",
                                f"Company {index % 9000}",
                                "",
                                str(card["channel"]) if card["channel"] else null,
                                str(team_id),
                                null,
                                f"{card['value']:.2f}",
                                "",
                                "t" if blocked else "f",
                                "Waiting for the customer" if blocked else "",
                                ts(card["updated"]) if blocked else null,
                                card["outcome"],
                                ts(card["created"]),
                                ts(card["updated"]),
                                ts(card["column_entered"]),
                                ts(card["closed_at"]) if card["closed_at"] else null,
                                str(card["version"]),
                            )
                        )
                        + "\n"
                    )
                    if len(buffer) >= 20_000:
                        copy.write("".join(buffer))
                        buffer.clear()
                copy.write("".join(buffer))
            timings["copy_cards_s"] = time.perf_counter() - start

            start = time.perf_counter()
            columns = (
                "id, value_stream_id, card_id, from_column_id, to_column_id, actor_id, "
                "moved_at, kind, wip_override_reason, channel_id, estimated_value, recorded_at"
            )
            sid = str(stream_id)
            with cur.copy(f"COPY boards_cardmove ({columns}) FROM STDIN") as copy:
                buffer = []
                for move_id, (when, card_id, _seq, kind, frm, to) in enumerate(events, start=1):
                    card = cards[card_id - 1]
                    stamp = ts(when)
                    buffer.append(
                        f"{move_id}\t{sid}\t{card_id}\t{frm if frm else null}\t{to}\t{null}\t"
                        f"{stamp}\t{kind}\t\t{card['channel'] or null}\t{card['value']:.2f}\t"
                        f"{stamp}\n"
                    )
                    if len(buffer) >= 50_000:
                        copy.write("".join(buffer))
                        buffer.clear()
                copy.write("".join(buffer))
            timings["copy_moves_s"] = time.perf_counter() - start
            for table in ("boards_card", "boards_cardmove"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            start = time.perf_counter()
            cur.execute(
                "SELECT"
                " (SELECT count(*) FROM boards_cardmove m WHERE NOT EXISTS"
                "   (SELECT 1 FROM boards_card c WHERE c.id = m.card_id)),"
                " (SELECT count(*) FROM boards_cardmove m WHERE m.to_column_id NOT IN"
                "   (SELECT id FROM boards_column) OR m.from_column_id NOT IN"
                "   (SELECT id FROM boards_column) OR m.channel_id NOT IN"
                "   (SELECT id FROM vsm_channel) OR m.value_stream_id NOT IN"
                "   (SELECT id FROM vsm_valuestream)),"
                " (SELECT count(*) FROM boards_card c WHERE c.column_id NOT IN"
                "   (SELECT id FROM boards_column) OR c.channel_id NOT IN"
                "   (SELECT id FROM vsm_channel) OR c.owning_team_id NOT IN"
                "   (SELECT id FROM vsm_team))"
            )
            broken = cur.fetchone()
            if any(broken):
                raise RuntimeError(f"generated rows with broken references: {broken}")
            timings["check_references_s"] = time.perf_counter() - start
        conn.commit()
        conn.autocommit = True
        start = time.perf_counter()
        conn.execute("VACUUM ANALYZE boards_card")
        conn.execute("VACUUM ANALYZE boards_cardmove")
        timings["vacuum_analyze_s"] = time.perf_counter() - start
    return timings


def build(n_moves: int, seed: int, name: str = "Metrics bench") -> dict:
    from django.contrib.auth import get_user_model

    from boards.models import Column
    from boards.services import value_stream_create
    from pdca.models import Cycle
    from vsm.models import Channel, ChannelKind, Team

    manager = get_user_model().objects.create_user("bench-manager", password=None)
    stream = value_stream_create(
        name=name, customer_market="Mid-size manufacturers", manager=manager
    )
    Column.objects.filter(cycle__value_stream=stream).update(wip_limit=None)
    kinds = list(ChannelKind.values)
    channels = [
        Channel.objects.create(value_stream=stream, name=f"Channel {i + 1}", kind=kinds[i])
        for i in range(8)
    ]
    cycles = [
        list(Column.objects.filter(cycle=cycle).order_by("order").values_list("pk", flat=True))
        for cycle in Cycle.objects.filter(value_stream=stream).order_by("order")
    ]
    team = Team.objects.get(value_stream=stream)

    start = time.perf_counter()
    cards, events = generate_history(n_moves, cycles, [c.pk for c in channels], seed)
    generate_s = time.perf_counter() - start
    log(f"generated {len(events):,} moves for {len(cards):,} cards in {generate_s:.1f} s")
    timings = load_history(stream.pk, team.pk, cards, events, seed)
    timings["generate_s"] = generate_s
    kinds_count: dict[str, int] = defaultdict(int)
    for event in events:
        kinds_count[event[3]] += 1
    open_cards = sum(1 for card in cards if card["outcome"] == "open")
    first = datetime.fromtimestamp(events[0][0], UTC)
    last = datetime.fromtimestamp(events[-1][0], UTC)
    del cards, events
    return {
        "stream_id": stream.pk,
        "manager_id": manager.pk,
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "moves": sum(kinds_count.values()),
        "cards": None,  # filled below
        "open_cards": open_cards,
        "kinds": dict(kinds_count),
        "first_move": first.isoformat(),
        "last_move": last.isoformat(),
        "cycles": cycles,
    }


# --------------------------------------------------------------------------- phases


class RebuildAborted(Exception):
    pass


class FoldProgress:
    """Wraps metrics.fold.fold_moves (called through the module by the advance and the
    rebuild): records the time at each batch and stops the run (rolling it back) past a
    deadline."""

    def __init__(self, deadline_s: float | None) -> None:
        from metrics import fold

        self.services = fold
        self.original = fold.fold_moves
        self.deadline_s = deadline_s
        self.start = time.perf_counter()
        self.points: list[tuple[float, int]] = []  # (elapsed, moves handed to the fold)
        self.moves = 0

        def wrapped(fold, moves):
            elapsed = time.perf_counter() - self.start
            if self.deadline_s is not None and elapsed > self.deadline_s:
                raise RebuildAborted(f"deadline of {self.deadline_s:g} s passed")
            result = self.original(fold, moves)
            self.moves += len(moves)
            self.points.append((time.perf_counter() - self.start, self.moves))
            return result

        fold.fold_moves = wrapped

    def restore(self) -> None:
        self.services.fold_moves = self.original

    def rates(self) -> dict:
        """Moves per second over the first and the last quarter of the batches."""
        points = [(0.0, 0), *self.points]
        if len(points) < 3:
            return {}
        quarter = max(1, (len(points) - 1) // 4)

        def rate(a, b):
            (t0, m0), (t1, m1) = points[a], points[b]
            return round((m1 - m0) / (t1 - t0), 1) if t1 > t0 else None

        return {
            "first_quarter_moves_per_s": rate(0, quarter),
            "last_quarter_moves_per_s": rate(len(points) - 1 - quarter, len(points) - 1),
            "batches": len(points) - 1,
        }


METRICS_TABLES = (
    "metrics_flowduration",
    "metrics_cardreach",
    "metrics_columnreachcount",
    "metrics_cycleconversioncount",
    "metrics_cardflowstate",
    "metrics_columnday",
    "metrics_cycleday",
    "metrics_channelday",
    "metrics_metricsprogress",
    "metrics_streammetrics",
)


def analyze_metrics(vacuum: bool = False) -> float:
    from django.db import connection

    start = time.perf_counter()
    with connection.cursor() as cursor:
        for table in METRICS_TABLES:
            cursor.execute(f"{'VACUUM ' if vacuum else ''}ANALYZE {table}")
    return round(time.perf_counter() - start, 2)


def phase_rebuild(stream_id: int, total_moves: int, deadline_s: float | None) -> dict:
    """The real stream_metrics_rebuild, timed; stopped (and rolled back) past the
    deadline, in which case the full time is extrapolated from the batches done."""
    from django.db import OperationalError, connection

    from metrics import services

    timer = QueryTimer()
    meter = CpuMeter()
    progress = FoldProgress(deadline_s)
    compute = ComputeTimer(progress.start + deadline_s if deadline_s else None)
    # COPY bypasses Django's execute wrappers: time insert_rows (copy=True) where the
    # fold's writes look it up (metrics.fold.core).
    from metrics.fold import core as fold

    copy = {"s": 0.0, "rows": 0}
    original_insert = fold.insert_rows

    def timed_insert(model, fields, rows, **kwargs):
        began = time.perf_counter()
        try:
            return original_insert(model, fields, rows, **kwargs)
        finally:
            if kwargs.get("copy"):
                copy["s"] += time.perf_counter() - began
                copy["rows"] += len(rows)

    fold.insert_rows = timed_insert
    aborted = None
    start = time.perf_counter()
    try:
        with connection.execute_wrapper(timer):
            result = services.stream_metrics_rebuild(stream_id=stream_id)
    except RebuildAborted as error:
        aborted = str(error)
        result = None
    except OperationalError as error:  # the document's statement_timeout
        aborted = f"the document inside the rebuild hit its statement_timeout: {error}"
        result = None
    finally:
        progress.restore()
        compute.restore()
        fold.insert_rows = original_insert
    total = time.perf_counter() - start
    document_s = compute.take()
    cpu = meter.result()
    out = {
        "copy_s": round(copy["s"], 2),
        "copy_rows": copy["rows"],
        "slowest_statement": timer.explain_slowest(),
        "completed": aborted is None,
        "aborted": aborted,
        "cpu": cpu,
        "sql_s": round(timer.total, 2),
        "python_s": round(total - timer.total, 2),
        "top_statements": timer.top(12),
        **progress.rates(),
    }
    if result is not None:
        out.update(
            applied=result.applied,
            total_s=round(total, 2),
            fold_s=round(total - document_s, 2),
            document_s=round(document_s, 3),
        )
        return out
    done = progress.moves
    if done >= total_moves:  # the fold finished; the document did not
        out.update(
            applied=done,
            total_s=None,
            elapsed_s=round(total, 2),
            fold_s=round(progress.points[-1][0], 2),
            document_timeout_s=compute.timeout_ms / 1000 if compute.timeout_ms else None,
            estimated_total_s=None,
        )
        return out
    recent = out.get("last_quarter_moves_per_s") or (done / total)
    out.update(
        applied=done,
        total_s=None,
        elapsed_s=round(total, 2),
        estimated_total_s=round(total + (total_moves - done) / recent, 0),
        estimated_cpu_s=round(
            (cpu["python_cpu_s"] + cpu["postgres_cpu_s"]) * total_moves / max(done, 1), 0
        ),
    )
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
    """cProfile of the real rebuild for its first `seconds` (then stopped and rolled
    back: run last, it leaves the stream without aggregates)."""
    from metrics import services

    progress = FoldProgress(seconds)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    try:
        services.stream_metrics_rebuild(stream_id=stream_id)
    except RebuildAborted:
        pass
    finally:
        profiler.disable()
        progress.restore()
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    for suffix, name, meaning in PROFILED:
        cumulative = sum(
            value[3]
            for (path, _line, func), value in stats.items()
            if func == name and path.endswith(suffix)
        )
        rows.append(
            {
                "function": f"{suffix.rsplit('/', 1)[-1]}:{name}",
                "meaning": meaning,
                "cumulative_s": round(cumulative, 1),
                "share": round(cumulative / total, 3),
            }
        )
    return {"profiled_s": round(total, 1), "moves": progress.moves, "functions": rows}


def phase_document(stream_id: int) -> dict:
    """stream_metrics_compute alone, three times (the tables are analyzed by then)."""
    from django.db import connection

    from metrics.selectors import MetricsQuery, stream_metrics_compute
    from vsm.models import ValueStream

    stream = ValueStream.objects.get(pk=stream_id)
    runs = []
    timer = QueryTimer()
    meter = CpuMeter()
    data = None
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


def aggregate_rows(stream_id: int) -> dict:
    from metrics.fold import AGGREGATES

    return {
        model.__name__: model.objects.filter(value_stream_id=stream_id).count()
        for model in AGGREGATES
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


def check_consistency(stream_id: int) -> dict:
    """After (b) and (c) folded their moves one run at a time: every aggregate table
    (md5 of its rows) equals what a rebuild of the same log gives."""
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


def open_cards_by_cycle(stream_id: int, cycles: list[list[int]]) -> list[tuple[int, int]]:
    from boards.models import Card, Outcome

    return list(
        Card.objects.filter(value_stream_id=stream_id, outcome=Outcome.OPEN).values_list(
            "pk", "column_id"
        )
    )


def random_move_target(column_id: int, cycles: list[list[int]], rng: random.Random) -> int:
    for columns in cycles:
        if column_id in columns:
            return rng.choice([c for c in columns if c != column_id])
    raise ValueError(column_id)


def phase_single(
    stream_id: int, manager_id: int, cycles, n: int, seed: int, max_seconds: float
) -> dict:
    """Real moves through card_move, each followed by a timed stream_metrics_advance.

    Stops after n measured runs, or after max_seconds (at least 10 runs)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from boards.services import card_move
    from metrics import services

    rng = random.Random(seed + 2)
    actor = get_user_model().objects.get(pk=manager_id)
    cards = dict(open_cards_by_cycle(stream_id, cycles))
    card_ids = sorted(cards)
    compute = ComputeTimer()
    totals, folds, documents, applied = [], [], [], []
    timer = QueryTimer(scoped=True)
    warmup = 3
    meter = None
    began = None
    for index in range(n + warmup):
        if index == warmup:
            meter, began = CpuMeter(), time.perf_counter()
        elif began and len(totals) >= 10 and time.perf_counter() - began > max_seconds:
            break
        card_id = rng.choice(card_ids)
        target = random_move_target(cards[card_id], cycles, rng)
        card_move(card_id=card_id, to_column_id=target, actor=actor)
        cards[card_id] = target
        compute.take()
        wrapper = connection.execute_wrapper(timer) if index >= warmup else contextlib.nullcontext()
        with wrapper:
            start = time.perf_counter()
            # The fold commits on its own: the move is processed (MetricsProgress).
            result = services.stream_metrics_advance(stream_id=stream_id, summarize=False)
            folded = time.perf_counter()
            # Then the document, in its own transaction (what the advance does next).
            services.stream_metrics_summarize(stream_id=stream_id)
            done = time.perf_counter()
        compute.take()
        if index >= warmup:
            totals.append((done - start) * 1000)
            folds.append((folded - start) * 1000)
            documents.append((done - folded) * 1000)
            applied.append(result.applied)
    cpu = meter.result()
    compute.restore()

    # One more, profiled, for the diagnosis.
    card_id = rng.choice(card_ids)
    card_move(
        card_id=card_id, to_column_id=random_move_target(cards[card_id], cycles, rng), actor=actor
    )
    profiler = cProfile.Profile()
    profiler.enable()
    services.stream_metrics_advance(stream_id=stream_id)
    profiler.disable()
    stream_out = io.StringIO()
    pstats.Stats(profiler, stream=stream_out).sort_stats("cumulative").print_stats(30)
    profile_text = stream_out.getvalue()
    stream_out = io.StringIO()
    pstats.Stats(profiler, stream=stream_out).sort_stats("tottime").print_stats(15)
    profile_text += "\n" + stream_out.getvalue()

    def summary(values):
        return {
            "p50": round(percentile(values, 50), 1),
            "p95": round(percentile(values, 95), 1),
            "max": round(max(values), 1),
            "mean": round(statistics.fmean(values), 1),
        }

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
        "profile": profile_text,
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
        "watermark_now": progress.watermark_move_id,
        "last_applied_now": progress.last_applied_move_id,
    }


class Poller(threading.Thread):
    """Every interval, one query reads how far the fold (MetricsProgress.
    last_applied_move_id) and the metrics document (StreamMetrics.through_move_id) have
    got; records when each changes."""

    SQL = (
        "SELECT p.last_applied_move_id, m.through_move_id FROM metrics_metricsprogress p "
        "LEFT JOIN metrics_streammetrics m ON m.value_stream_id = p.value_stream_id "
        "WHERE p.value_stream_id = %s"
    )

    def __init__(self, stream_id: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.stream_id = stream_id
        self.interval = interval
        self.stop_event = threading.Event()
        # (time seen, move id) each time the value changes
        self.changes: dict[str, list[tuple[float, int]]] = {"fold": [], "document": []}
        self.polls = 0
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
                self.polls += 1
                self.poll_seconds.append(seen - start)
                for name, value in zip(("fold", "document"), row, strict=True):
                    if value is not None and value != last[name]:
                        self.changes[name].append((seen, value))
                        last[name] = value
                self.stop_event.wait(max(0.0, self.interval - (time.perf_counter() - start)))
        finally:
            connection.close()

    def visible_at(self, move_id: int, what: str = "document") -> float | None:
        for seen, through in self.changes[what]:
            if through >= move_id:
                return seen
        return None


class Worker:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log_file = open(log_path, "w")  # noqa: SIM115
        worker_env = {**os.environ, **env, "DJANGO_LOG_LEVEL": "INFO"}
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "celery"),
                "-A",
                "vsm",
                "worker",
                "--pool",
                "solo",
                "-c",
                "1",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"metrics-bench-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=worker_env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: see {self.log_path}")
            if "ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout} s: see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()

    def task_runs(self) -> dict:
        pattern = re.compile(
            r"Task metrics\.recompute_stream\[[^\]]+\] succeeded in ([0-9.]+)s: (\{.*\})"
        )
        seconds, applied = [], []
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = pattern.search(line)
            if match:
                seconds.append(float(match.group(1)))
                found = re.search(r"'applied': (\d+)", match.group(2))
                if found:
                    applied.append(int(found.group(1)))
        if not seconds:
            return {"runs": 0}
        return {
            "runs": len(seconds),
            "run_s_p50": round(percentile(seconds, 50), 3),
            "run_s_p95": round(percentile(seconds, 95), 3),
            "run_s_max": round(max(seconds), 3),
            "moves_per_run_mean": round(statistics.fmean(applied), 1) if applied else None,
            "busy_fraction": None,  # filled by the caller (time in runs / wall time)
            "total_run_s": round(sum(seconds), 1),
        }


def phase_freshness(
    stream_id: int,
    manager_id: int,
    cycles,
    env,
    rate: float,
    duration: float,
    seed: int,
    movers: int,
) -> dict:
    """A real worker; `movers` threads (own connections, disjoint cards) together issue a
    steady `rate` moves/s through card_move; a poller thread watches StreamMetrics."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from boards.services import card_move
    from metrics.models import MetricsProgress, StreamMetrics

    flush_redis()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    worker = Worker(env, RESULTS_DIR / f"metrics_bench-worker-{stamp}.log")
    actor = get_user_model().objects.get(pk=manager_id)
    cards = dict(open_cards_by_cycle(stream_id, cycles))
    card_ids = sorted(cards)
    commits: dict[int, float] = {}
    move_seconds: list[float] = []
    errors: list[str] = []
    late_starts = [0]
    poller = Poller(stream_id, 0.020)

    def one_move(rng: random.Random, own: list[int]) -> tuple[int, float]:
        card_id = rng.choice(own)
        target = random_move_target(cards[card_id], cycles, rng)
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
        interval = movers / rate
        try:
            for k in range(count):
                due = begin + (index + k * movers) / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -interval:
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
        # Warm-up: the worker's first runs open connections and import code.
        warm_rng = random.Random(seed + 3)
        for _ in range(3):
            move_id, _ = one_move(warm_rng, card_ids)
            deadline = time.monotonic() + 60
            while poller.visible_at(move_id) is None and time.monotonic() < deadline:
                time.sleep(0.05)
        connection.close()
        log(f"freshness: {rate:g} moves/s from {movers} threads for {duration:g} s ...")
        n = int(duration * rate)
        worker_cpu0 = process_cpu(worker.process.pid)
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
        worker_cpu = process_cpu(worker.process.pid) - worker_cpu0
    finally:
        poller.stop_event.set()
        poller.join(timeout=5)
        worker.stop()
    fresh, missing = [], 0
    fold_fresh, fold_missing = [], 0
    for move_id, committed in commits.items():
        seen = poller.visible_at(move_id)
        if seen is None:
            missing += 1
        else:
            fresh.append(seen - committed)
        seen = poller.visible_at(move_id, "fold")
        if seen is None:
            fold_missing += 1
        else:
            fold_fresh.append(seen - committed)
    runs = worker.task_runs()
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
        "freshness_s": {
            "p50": round(percentile(fresh, 50), 3),
            "p95": round(percentile(fresh, 95), 3),
            "p99": round(percentile(fresh, 99), 3),
            "max": round(max(fresh), 3) if fresh else None,
        },
        "never_visible": missing,
        "fold_freshness_s": {
            "p50": round(percentile(fold_fresh, 50), 3),
            "p95": round(percentile(fold_fresh, 95), 3),
            "max": round(max(fold_fresh), 3) if fold_fresh else None,
        },
        "fold_never_visible": fold_missing,
        "document_updates": len(poller.changes["document"]),
        "drained_s": round(drained_s, 1),
        "poll_interval_ms": 20,
        "poll_query_ms_p50": round(percentile(poller.poll_seconds, 50) * 1000, 2),
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
        "worker": runs,
        "worker_log": str(worker.log_path.relative_to(ROOT)),
        "final_through_move_id": metrics.through_move_id,
        "final_last_applied": progress.last_applied_move_id,
        "final_watermark": progress.watermark_move_id,
    }


# --------------------------------------------------------------------------- report


def verdict(value: float, target: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return "met" if value <= target else "NOT MET"


def results_table(r: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    single = r.get("single")
    if single:
        p95 = single["fold_ms"]["p95"]
        rows += [
            (
                "One new move: the fold, committed (advance without document) p95",
                f"{p95:.0f} ms (p50 {single['fold_ms']['p50']:.0f} ms)",
                f"<= {TARGETS['single_move_p95_ms']:.0f} ms",
                verdict(p95, TARGETS["single_move_p95_ms"]),
            ),
            (
                "  then the document, stream_metrics_summarize p95",
                f"{single['document_ms']['p95']:.0f} ms (p50 "
                f"{single['document_ms']['p50']:.0f} ms)",
                "",
                "",
            ),
            (
                "  fold + document p95",
                f"{single['advance_ms']['p95']:.0f} ms (p50 {single['advance_ms']['p50']:.0f} ms)",
                "",
                "",
            ),
        ]
    rebuild = r.get("rebuild")
    moves = r["history"]["moves"]
    if rebuild:
        target = f"<= {TARGETS['rebuild_s']:.0f} s"
        if rebuild["completed"]:
            rows += [
                (
                    f"Full rebuild of {moves:,} moves",
                    f"{rebuild['total_s']:.1f} s",
                    target,
                    verdict(rebuild["total_s"], TARGETS["rebuild_s"]),
                ),
                (
                    "  the fold / the document",
                    f"{rebuild['fold_s']:.1f} s / {rebuild['document_s']:.2f} s",
                    "",
                    "",
                ),
            ]
        elif rebuild.get("estimated_total_s"):
            rows.append(
                (
                    f"Full rebuild of {moves:,} moves",
                    f"stopped at {rebuild['elapsed_s']:.0f} s after {rebuild['applied']:,} "
                    f"moves; est. {rebuild['estimated_total_s']:.0f} s",
                    target,
                    "NOT MET" if rebuild["estimated_total_s"] > TARGETS["rebuild_s"] else "n/a",
                )
            )
        else:
            rows.append(
                (
                    f"Full rebuild of {moves:,} moves",
                    f"fold {rebuild['fold_s']:.0f} s, then the document stopped by its "
                    f"statement_timeout at {rebuild['elapsed_s']:.0f} s",
                    target,
                    "NOT MET",
                )
            )
    fresh = r.get("freshness")
    if fresh:
        f = fresh["freshness_s"]
        rows.append(
            (
                f"Freshness at {fresh['achieved_rate']:g} moves/s, 1 worker: p95",
                f"{f['p95']:.2f} s (p50 {f['p50']:.2f}, max {f['max']:.2f})",
                f"<= {TARGETS['freshness_p95_s']:.0f} s",
                verdict(f["p95"], TARGETS["freshness_p95_s"])
                if not fresh["never_visible"]
                else "NOT MET",
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


def print_table(rows) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    header = ("measure", "result", "target", "")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def statements_table(statements: list[dict], limit: int = 8, per_run: bool = False) -> list:
    if per_run:
        head = ["| statement | per run | ms per run |", "|---|---|---|"]
        rows = [f"| `{s['statement']}` | {s['count']} | {s['ms']} |" for s in statements[:limit]]
    else:
        head = ["| statement | count | seconds |", "|---|---|---|"]
        rows = [
            f"| `{s['statement']}` | {s['count']:,} | {s['seconds']} |" for s in statements[:limit]
        ]
    return head + rows


def dist(values: dict, unit: str, digits: int = 0) -> str:
    """'p50 1.2 / p95 3.4 / max 5.6 s' from a dict of percentiles."""
    parts = [
        f"{key} {value:.{digits}f}"
        for key, value in values.items()
        if key in ("p50", "p95", "p99", "max") and value is not None
    ]
    return " / ".join(parts) + f" {unit}"


def markdown_block(r: dict) -> str:
    m = r["machine"]
    h = r["history"]
    out = [
        DOC_BEGIN,
        f"Run of {r['started']} (`bench/metrics_bench.py --moves {h['moves']}`), "
        f"raw results in `{r['json']}`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}; "
        f"PostgreSQL {m['postgres']} (shared_buffers {m['shared_buffers']}, work_mem "
        f"{m['work_mem']}), Python {m['python']}, Django {m['django']}. PostgreSQL, Redis, "
        "the worker and the bench share the machine. Load average (1 min) at start: "
        f"{m['loadavg_at_start'][0]:.2f}. Code: {m['git']['head']} ({m['git']['subject']})"
        + (
            f" with uncommitted changes in {', '.join(m['git']['uncommitted_app_changes'])}."
            if m["git"]["uncommitted_app_changes"]
            else "."
        ),
        "",
        f"History: {h['moves']:,} moves, {h['cards']:,} cards ({h['open_cards']:,} open), "
        f"{h['first_move'][:10]} to {h['last_move'][:10]}; "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(h["kinds"].items()))
        + ". Load (setup, not a target): "
        + ", ".join(f"{k.removesuffix('_s')} {v} s" for k, v in h["timings"].items())
        + ".",
        "",
        "| measure | result | target | |",
        "|---|---|---|---|",
    ]
    for row in results_table(r):
        out.append("| " + " | ".join(c.strip() if c else "" for c in row) + " |")
    rebuild = r.get("rebuild")
    if rebuild:
        cpu = rebuild["cpu"]
        out += [
            "",
            f"Rebuild ({'completed' if rebuild['completed'] else 'stopped: ' + rebuild['aborted']}"
            f"): {rebuild['applied']:,} moves folded; wall {cpu['wall_s']} s, of which SQL "
            f"{rebuild['sql_s']} s and COPY {rebuild.get('copy_s')} s "
            f"({rebuild.get('copy_rows', 0):,} rows); CPU: Python {cpu['python_cpu_s']} s, "
            f"its PostgreSQL backend {cpu['postgres_cpu_s']} s (load average "
            f"{cpu['loadavg_1min_at_start']} "
            f"-> {cpu['loadavg_1min_at_end']}); fold rate "
            f"{rebuild.get('first_quarter_moves_per_s')} moves/s over the first quarter of the "
            f"batches, {rebuild.get('last_quarter_moves_per_s')} over the last"
            + (
                f"; estimated CPU for the whole log {rebuild['estimated_cpu_s']:.0f} s"
                if rebuild.get("estimated_cpu_s")
                else ""
            )
            + (
                f"; the fold of every move took {rebuild['fold_s']} s, then the document "
                f"inside the same transaction ran into its {rebuild['document_timeout_s']} s "
                "statement_timeout"
                if rebuild.get("document_timeout_s")
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
            f"({profile['moves']:,} moves; profiling slows it down, the shares are what "
            "counts):",
            "",
            "| function | what | cumulative s | share |",
            "|---|---|---|---|",
            *[
                f"| `{f['function']}` | {f['meaning']} | {f['cumulative_s']} | {f['share']:.0%} |"
                for f in profile["functions"]
            ],
        ]
    if r.get("aggregate_rows"):
        out += [
            "",
            f"Aggregate rows: {', '.join(f'{k} {v:,}' for k, v in r['aggregate_rows'].items())}.",
        ]
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
            f"SQL {single['sql_ms_per_run']} ms and CPU "
            f"(Python + backend) {single['cpu_ms_per_run']} ms per run. Statements per run "
            "([scope] = inside the document or not):",
            "",
            *statements_table(single["top_statements_per_run"], 10, per_run=True),
        ]
    late = r.get("late_scan")
    if late:
        out += [
            "",
            f"The 'late moves' query over the whole log (what every run pays while the "
            f"watermark lags it, e.g. for 2 x SETTLE_SECONDS after a bulk import): "
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
            f"{dist(fresh['fold_freshness_s'], 's', 2)}; the "
            f"document was rewritten {fresh['document_updates']} times. Worker: "
            f"{w.get('runs')} task runs, run time p50 {w.get('run_s_p50')} s / p95 "
            f"{w.get('run_s_p95')} s, {w.get('moves_per_run_mean')} moves folded per run, busy "
            f"{w.get('busy_fraction')} of the time, {w.get('cpu_s')} s CPU.",
        ]
    out.append(DOC_END)
    return "\n".join(out)


DOC_SECTION_INTRO = """## Metrics engine

`bench/metrics_bench.py` measures the metrics fold (`metrics.services`) on PostgreSQL with
one stream holding a long move log: one new move folded, a full rebuild, and freshness
(a move's commit until `StreamMetrics` shows it) with one Celery worker at a steady rate.
Targets: one new move <= 50 ms, full rebuild of 1,000,000 moves <= 120 s, freshness p95
<= 2 s at 20 moves/s with one worker. The script's docstring describes the method; the
block below is rewritten by each full run.

"""


def replace_doc_block(block: str, *, begin: str, end: str, intro: str) -> None:
    """Put ``block`` (which starts with ``begin`` and ends with ``end``) in place of the
    one between those markers in docs/performance.md, or append ``intro`` + ``block``.
    Shared by the benchmarks that keep a results block there."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + intro + block + "\n"
    DOC.write_text(text)


def update_doc(block: str) -> None:
    replace_doc_block(block, begin=DOC_BEGIN, end=DOC_END, intro=DOC_SECTION_INTRO)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 moves, 20 s freshness")
    parser.add_argument("--single-moves", type=int, default=50)
    parser.add_argument("--single-max-seconds", type=float, default=150.0, help="cap on phase (b)")
    parser.add_argument(
        "--rebuild-deadline",
        type=float,
        default=360.0,
        help="stop the real rebuild after this many seconds and extrapolate (0: never)",
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
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--skip-freshness", action="store_true")
    parser.add_argument("--doc", action="store_true", help="write docs even with --quick")
    parser.add_argument("--no-doc", action="store_true", help="never write docs")
    args = parser.parse_args()
    if args.quick:
        args.moves = 100_000
        args.duration = min(args.duration, 20.0)

    env = bench_env()
    os.environ.update(env)
    os.chdir(ROOT)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log(f"re-creating database {DB_NAME}; flushing Redis DBs {BROKER_DB} and {CACHE_DB}")
    recreate_database()
    flush_redis()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    import vsm.celery  # noqa: F401  the Celery app, configured from settings (eager off)

    assert not settings.CELERY_TASK_ALWAYS_EAGER and settings.CELERY_BROKER_URL == BROKER_URL
    started = datetime.now(UTC)
    results: dict = {"started": started.isoformat(timespec="seconds"), "args": vars(args)}
    results["machine"] = machine()
    start = time.perf_counter()
    call_command("migrate", verbosity=0)
    log(f"migrated in {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    history = build(args.moves, args.seed)
    from boards.models import Card

    history["cards"] = Card.objects.filter(value_stream_id=history["stream_id"]).count()
    history["timings"]["total_load_s"] = round(time.perf_counter() - start, 2)
    results["history"] = history
    log(
        f"history: {history['moves']:,} moves, {history['cards']:,} cards "
        f"({history['open_cards']:,} open) loaded in {history['timings']['total_load_s']} s "
        f"({history['timings']})"
    )
    stream_id, manager_id, cycles = history["stream_id"], history["manager_id"], history["cycles"]

    log(f"(a) full rebuild (deadline {args.rebuild_deadline:g} s) ...")
    rb = results["rebuild"] = phase_rebuild(
        stream_id, history["moves"], args.rebuild_deadline or None
    )
    if rb["completed"]:
        log(
            f"rebuild {rb['total_s']} s (fold {rb['fold_s']} s, document {rb['document_s']} s;"
            f" SQL {rb['sql_s']} s; CPU {rb['cpu']})"
        )
    else:
        log(
            f"rebuild stopped after {rb['elapsed_s']} s and {rb['applied']:,} moves; "
            f"estimated {rb['estimated_total_s']} s (CPU {rb['cpu']}); running it to the end "
            "to fill the aggregates ..."
        )
        from metrics import services

        services.stream_metrics_rebuild(stream_id=stream_id)
    results["fingerprint"] = fingerprint(stream_id)
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

    rb = results["rebuild"]
    if args.rebuild_profile_seconds and not (
        rb["completed"] and rb["total_s"] <= TARGETS["rebuild_s"]
    ):
        log(f"profiling the real rebuild for {args.rebuild_profile_seconds:g} s ...")
        results["rebuild_profile"] = profile_rebuild(stream_id, args.rebuild_profile_seconds)
        log(f"profile: {results['rebuild_profile']}")

    stamp = started.strftime("%Y%m%d-%H%M%S")
    json_path = RESULTS_DIR / f"metrics_bench-{stamp}{'-quick' if args.quick else ''}.json"
    results["json"] = str(json_path.relative_to(ROOT))
    json_path.write_text(json.dumps(results, indent=2, default=str))

    print()
    print_table(results_table(results))
    missed = [row for row in results_table(results) if row[3] == "NOT MET"]
    if missed:
        print("\nProfile of one single-move advance (cumulative):")
        print("\n".join(results["single"]["profile"].splitlines()[:45]))
    print(f"\nraw results: {json_path}")
    print(f"consistency with a rebuild: {results['consistency']}")
    if not args.no_doc and (args.doc or not args.quick):
        update_doc(markdown_block(results))
        print(f"updated {DOC.relative_to(ROOT)} (Metrics engine section)")
    return 0 if results["consistency"]["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
