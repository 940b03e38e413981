#!/usr/bin/env python
"""Board benchmark: card moves and the board page, on PostgreSQL through gunicorn.

    .venv/bin/python bench/board_bench.py [--moves N] [--quick] [--sizes 5000]
        [--worker-class gthread|sync] [--workers 4] [--threads 2] [--quiet-wait S]

What it does (a script that prints figures, not a test):

1. Drops and re-creates the database ``vsm_bench`` on 127.0.0.1:5432 (user postgres),
   migrates it and runs ``collectstatic`` (into ``bench/results/staticfiles``).
2. Builds one value stream per size (100 and 5,000 open cards) with
   ``boards.services.value_stream_create`` and bulk-loads the cards: ``Card`` rows and
   their 'enter' ``CardMove`` rows are written with ``bulk_create`` for setup speed. Only
   the setup takes that shortcut: every measured move is a real HTTP request through
   gunicorn, the view and ``boards.services.card_move``.
3. Starts gunicorn (``vsm.wsgi:application``, DEBUG off, manifest static storage,
   broker ``memory://`` with eager tasks off so no request runs or waits on a task;
   default gthread, 4 workers x 2 threads) on a free loopback port, and logs the
   bench users in through the login form.
4. Sends the request a drag sends (``board.js``): POST ``to_column``, ``after``,
   ``before``, ``version``, ``dragged=1`` with ``HX-Request: true`` and ``X-CSRFToken``.
   Each client keeps a model of the board: it drags one of the first 25 cards of a
   column (what the board shows), names the neighbours at the drop point and the
   card's version, and reads the new version back from the answer's card fragment.
   In a concurrent run every client owns a disjoint share of the cards, so no drag is
   stale; the neighbour it names as ``after`` is its own card, which is the one the
   server uses (``before`` only counts when there is no ``after``).
5. One client: warm-up, then N sequential moves -> p50/p95/p99. Then 1, 4 and 8
   concurrent client processes for a fixed time -> moves/s, errors, WIP refusals.
6. The board page (full GET) and the 'nothing changed' poll, sequentially.
7. Queries per request, counted in-process with ``CaptureQueriesContext``.

Before each phase the bench VACUUMs its tables (autovacuum is off on our PostgreSQL)
and waits up to ``--quiet-wait`` seconds for the machine to be idle. Each phase records
the CPU used by gunicorn, by its PostgreSQL backends, by the clients and by everything
else on the machine: server CPU per request, and how disturbed the phase was.

One column (the first cycle's last column) has a WIP limit of 5 and holds 5 cards that
are never dragged out, and some drags aim at it: the refusals that come back (200 with
the "is at its WIP limit" toast) are counted apart from errors. Every other refusal, any
non-200 answer and any transport failure is an error, and the script exits 1 when there
was one.

Raw results go to ``bench/results/board_bench-<time>.json``; docs/performance.md holds
the figures and how to read them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"

DB_NAME = "vsm_bench"
DB_HOST, DB_PORT, DB_USER = "127.0.0.1", 5432, "postgres"
DATABASE_URL = f"postgres://{DB_USER}@{DB_HOST}:{DB_PORT}/{DB_NAME}"

SIZES = (100, 5000)
CLIENT_COUNTS = (1, 4, 8)
N_USERS = max(CLIENT_COUNTS)
PASSWORD = "bench-only-password-7f3a"  # a throw-away database's users
VISIBLE = 25  # boards.selectors.COLUMN_PAGE_SIZE: what a column shows, what gets dragged
POSITION_GAP = 1024
SMALL_WIP = 5  # the one column whose limit is really reached
LARGE_WIP = 10_000  # limited columns that never fill: the WIP count still runs
P_TO_SMALL_WIP = 0.10  # of the drags of a first-cycle card, how many aim at the small column
P_REORDER = 0.10  # drags that reorder inside the card's own column

TARGETS = {
    "move_p50_ms": 15.0,
    "move_p95_ms": 40.0,
    "p50_ratio": 1.3,
    "board_ms": 150.0,
    "moves_per_s_8": 100.0,
}

CARD_RE = re.compile(rb'data-card-id="(\d+)" data-version="(\d+)"')
CSRF_FORM_RE = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
CSRF_HX_RE = re.compile(rb'"X-CSRFToken": "([^"]+)"')
BOARD_VERSION_RE = re.compile(rb'id="board" class="board" data-version="([^"]+)"')


# --------------------------------------------------------------------------- helpers


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(secret_key: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="benchconf.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secret_key,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_LOG_LEVEL="WARNING",
        DATABASE_URL=DATABASE_URL,
        CELERY_BROKER_URL="memory://",
        # Production publishes tasks and returns; eager mode would run them inside the
        # request. With eager off and the in-memory transport, a publish never waits.
        CELERY_TASK_ALWAYS_EAGER="false",
        CACHE_URL="locmemcache://bench",
        # Production recycles connections after 60 s; a recycled backend's CPU would be
        # lost to the per-phase accounting (it exits mid-phase), so keep them for the run.
        DATABASE_CONN_MAX_AGE="600",
        PYTHONPATH=os.pathsep.join([str(BENCH_DIR), str(ROOT)]),
    )
    return env


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(
        host=DB_HOST, port=DB_PORT, user=DB_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def setup_django(secret_key: str) -> None:
    os.environ.update({k: v for k, v in server_env(secret_key).items() if k != "PYTHONPATH"})
    for path in (str(ROOT), str(BENCH_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)
    import logging

    import django

    django.setup()
    # In-process query counting publishes the metrics task to the in-memory broker;
    # kombu warns once that memory:// names no host.
    logging.getLogger("kombu").setLevel(logging.ERROR)


# --------------------------------------------------------------------------- data


def build_streams(sizes: tuple[int, ...], seed: int) -> dict[int, dict]:
    """Users, one stream per size, its columns' WIP limits and its open cards."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from boards.models import Card, CardMove, Column, MoveKind, Outcome
    from boards.services import value_stream_create
    from vsm.models import Channel, ChannelKind, Membership, Role

    rng = random.Random(seed)
    user_model = get_user_model()
    hashed = make_password(PASSWORD)
    manager = user_model.objects.create(
        username="bench-manager", password=hashed, first_name="Bench", last_name="Manager"
    )
    users = user_model.objects.bulk_create(
        user_model(username=f"bench-{i}", password=hashed, first_name="Client", last_name=str(i))
        for i in range(N_USERS)
    )
    move_fields = {f.name for f in CardMove._meta.get_fields()}
    now = timezone.now()
    streams: dict[int, dict] = {}
    for size in sizes:
        with transaction.atomic():
            stream = value_stream_create(
                name=f"Bench {size}", customer_market="Benchmark", manager=manager
            )
            team = stream.teams.get()
            Membership.objects.bulk_create(
                Membership(user=user, team=team, role=Role.MEMBER) for user in users
            )
            channels = Channel.objects.bulk_create(
                Channel(value_stream=stream, name=f"Channel {i}", kind=kind)
                for i, kind in enumerate(ChannelKind.values[:5])
            )
            columns = list(
                Column.objects.filter(cycle__value_stream=stream)
                .select_related("cycle")
                .order_by("cycle__order", "order")
            )
            first_cycle_id = columns[0].cycle_id
            small = [c for c in columns if c.cycle_id == first_cycle_id][-1]
            for column in columns:
                if column.pk == small.pk:
                    column.wip_limit = SMALL_WIP
                elif column.wip_limit is not None:
                    column.wip_limit = LARGE_WIP
            Column.objects.bulk_update(columns, ["wip_limit"])

            # Most work waits in the early columns of each cycle: 40/30/20/10 %.
            weights = {1: 0.4, 2: 0.3, 3: 0.2, 4: 0.1}
            others = [c for c in columns if c.pk != small.pk]
            total_weight = sum(weights[c.order] for c in others)
            counts = {
                c.pk: int((size - SMALL_WIP) * weights[c.order] / total_weight) for c in others
            }
            counts[small.pk] = SMALL_WIP
            leftover = size - sum(counts.values())
            for column in others[:leftover]:
                counts[column.pk] += 1

            owners = [manager, *users]
            cards: list[Card] = []
            for column in columns:
                for index in range(counts[column.pk]):
                    n = len(cards)
                    created = now - timedelta(days=rng.uniform(1, 120))
                    entered = created + (now - created) * rng.random()
                    cards.append(
                        Card(
                            value_stream=stream,
                            column=column,
                            position=(index + 1) * POSITION_GAP,
                            person_name=f"Person {n}",
                            company=f"Company {n % 977}",
                            email=f"person{n}@example.com",
                            channel=rng.choice(channels),
                            owner=rng.choice(owners),
                            owning_team=team,
                            estimated_value=rng.randrange(0, 50_000),
                            created_at=created,
                            updated_at=entered,
                            column_entered_at=entered,
                            outcome=Outcome.OPEN,
                            version=1,
                        )
                    )
            Card.objects.bulk_create(cards, batch_size=1000)
            moves = []
            for card in cards:
                extra = {}
                if "channel" in move_fields:
                    extra["channel_id"] = card.channel_id
                if "estimated_value" in move_fields:
                    extra["estimated_value"] = card.estimated_value
                moves.append(
                    CardMove(
                        value_stream=stream,
                        card=card,
                        from_column=None,
                        to_column=card.column,
                        actor=manager,
                        moved_at=card.created_at,
                        kind=MoveKind.ENTER,
                        **extra,
                    )
                )
            CardMove.objects.bulk_create(moves, batch_size=1000)
        streams[size] = {
            "id": stream.pk,
            "slug": stream.slug,
            "columns": [(c.pk, c.cycle_id, c.name, c.wip_limit) for c in columns],
            "small_wip_column": small.pk,
        }
    connection.close()
    vacuum()
    return streams


def vacuum() -> None:
    """VACUUM (ANALYZE) the board's tables of the bench database.

    Autovacuum is off on our machines' PostgreSQL (check: ``SHOW autovacuum``), so the
    dead row versions every move leaves (a move changes indexed columns: no HOT update)
    would pile up over the run and slow the later phases. Production runs autovacuum:
    vacuuming before each phase stands in for it.
    """
    import psycopg

    with psycopg.connect(
        host=DB_HOST, port=DB_PORT, user=DB_USER, dbname=DB_NAME, autocommit=True
    ) as conn:
        conn.execute("VACUUM (ANALYZE) boards_card, boards_cardmove, boards_column")


def snapshot(stream_id: int) -> tuple[dict[int, list[int]], dict[int, int]]:
    """The open cards of a stream per column in board order, and their versions."""
    from django.db import connection

    from boards.models import Card, Outcome

    by_column: dict[int, list[int]] = {}
    versions: dict[int, int] = {}
    rows = (
        Card.objects.filter(value_stream_id=stream_id, outcome=Outcome.OPEN)
        .order_by("column_id", "position", "id")
        .values_list("id", "column_id", "version")
    )
    for card_id, column_id, version in rows:
        by_column.setdefault(column_id, []).append(card_id)
        versions[card_id] = version
    connection.close()
    return by_column, versions


# --------------------------------------------------------------------------- CPU accounting

# The machine is shared (other people's test suites, browsers): every phase records
# how much CPU the bench's own processes used and how much went to everything else,
# so a slow figure can be told apart from a busy machine.
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    busy = user + nice + system + irq + softirq + steal
    return busy / CLOCK_TICK, (busy + idle + iowait) / CLOCK_TICK


def process_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def child_pids(parent: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == parent:
                        children.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return children


def bench_backends() -> list[int]:
    """PostgreSQL backends serving the bench database (the server's connections)."""
    import psycopg

    with psycopg.connect(host=DB_HOST, port=DB_PORT, user=DB_USER, dbname="postgres") as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (DB_NAME,)
        ).fetchall()
    return [pid for (pid,) in rows]


class CpuMeter:
    """CPU seconds used in a window by gunicorn, its PostgreSQL backends, and the rest."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def _own(self) -> tuple[dict[int, float], dict[int, float]]:
        server = [self.server_pid, *child_pids(self.server_pid)]
        return (
            {pid: process_cpu(pid) for pid in server},
            {pid: process_cpu(pid) for pid in bench_backends()},
        )

    def start(self) -> None:
        self.server0, self.db0 = self._own()
        self.machine0 = machine_cpu()
        self.wall0 = time.time()
        self.self0 = sum(os.times()[:2])

    def stop(self) -> None:
        self.wall1 = time.time()
        self.machine1 = machine_cpu()
        self.server1, self.db1 = self._own()
        self.self1 = sum(os.times()[:2])

    def result(self, client_cpu: float = 0.0, requests: int = 0) -> dict:
        wall = self.wall1 - self.wall0
        own_self = self.self1 - self.self0
        server = sum(v - self.server0.get(pid, 0.0) for pid, v in self.server1.items())
        db = sum(v - self.db0.get(pid, 0.0) for pid, v in self.db1.items())
        busy = self.machine1[0] - self.machine0[0]
        capacity = self.machine1[1] - self.machine0[1]
        other = max(0.0, busy - server - db - client_cpu - own_self)
        return {
            "wall_s": round(wall, 3),
            "gunicorn_cpu_s": round(server, 3),
            "postgres_cpu_s": round(db, 3),
            "client_cpu_s": round(client_cpu + own_self, 3),
            "other_cpu_s": round(other, 3),
            "machine_busy_share": round(busy / capacity, 3) if capacity else math.nan,
            "other_share": round(other / capacity, 3) if capacity else math.nan,
            # Server-side CPU per request: gunicorn worker plus its PostgreSQL backend.
            "server_cpu_ms_per_request": round(1000 * (server + db) / requests, 2)
            if requests
            else math.nan,
        }


def cpu_calibration(repeats: int = 5) -> float:
    """CPU ms of a fixed pure-Python loop: how fast this machine runs Python right now.

    The shared host's speed varies between runs (other tenants); set a run's figures
    against this number before comparing them with another run's.
    """
    best = math.inf
    for _ in range(repeats):
        started = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def wait_for_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (at most max_wait s) for a second in which the machine is under threshold busy."""
    deadline = time.time() + max_wait
    while True:
        busy0, total0 = machine_cpu()
        time.sleep(1.0)
        busy1, total1 = machine_cpu()
        share = (busy1 - busy0) / max(total1 - total0, 1e-9)
        if share < threshold or time.time() >= deadline:
            return share


# --------------------------------------------------------------------------- gunicorn


class Server:
    def __init__(self, *, secret_key: str, worker_class: str, workers: int, threads: int):
        self.port = free_port()
        self.log_path = RESULTS_DIR / "board_bench-gunicorn.log"
        command = [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "vsm.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--log-level",
            "warning",
        ]
        if worker_class == "gthread":
            command += ["--threads", str(threads)]
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=server_env(secret_key),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 30
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited; see {self.log_path}")
            try:
                status, _, _ = request(self.port, "GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self.stop()
                raise SystemExit(f"gunicorn did not answer /healthz; see {self.log_path}")
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


def send(conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    """One request on a keep-alive connection: (status, body, seconds, retried).

    A keep-alive connection the server closed while idle (gunicorn's keepalive is 2 s)
    fails before any answer; like a browser, send again once on a fresh connection.
    The time counted is the successful attempt's.
    """
    reused = conn.sock is not None
    started = time.perf_counter()
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, response.read(), time.perf_counter() - started, False
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        conn.close()
        if not reused:
            raise
    started = time.perf_counter()
    conn.request(method, path, body, headers or {})
    response = conn.getresponse()
    return response.status, response.read(), time.perf_counter() - started, True


def request(port: int, method: str, path: str, body: str = "", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body or None, headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def cookies_from(headers, jar: dict[str, str]) -> None:
    for header in headers.get_all("Set-Cookie") or ():
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            jar[name] = morsel.value


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def log_in(port: int, username: str, board_path: str) -> dict:
    """Log in through the login form; return the cookie and CSRF headers a page would use."""
    jar: dict[str, str] = {}
    status, headers, body = request(port, "GET", "/accounts/login/")
    cookies_from(headers, jar)
    match = CSRF_FORM_RE.search(body)
    if status != 200 or not match:
        raise SystemExit(f"login page: {status}")
    form = urllib.parse.urlencode(
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": match[1].decode()}
    )
    status, headers, _ = request(
        port,
        "POST",
        "/accounts/login/",
        form,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie_header(jar),
        },
    )
    cookies_from(headers, jar)
    if status != 302 or "sessionid" not in jar:
        raise SystemExit(f"login of {username} failed: {status}")
    status, headers, body = request(port, "GET", board_path, headers={"Cookie": cookie_header(jar)})
    cookies_from(headers, jar)
    match = CSRF_HX_RE.search(body)
    if status != 200 or not match:
        raise SystemExit(f"board page for {username}: {status}")
    return {"Cookie": cookie_header(jar), "X-CSRFToken": match[1].decode()}


# --------------------------------------------------------------------------- the client


class BoardModel:
    """What one client believes about the cards it drags: order per column, versions."""

    def __init__(self, spec: dict, rng: random.Random):
        self.rng = rng
        self.own: dict[int, list[int]] = {c: list(ids) for c, ids in spec["own"].items()}
        for column_id, _, _, _ in spec["columns"]:
            self.own.setdefault(column_id, [])
        self.versions: dict[int, int] = dict(spec["versions"])
        self.cycle_of = {c: cycle for c, cycle, _, _ in spec["columns"]}
        self.cycle_columns: dict[int, list[int]] = {}
        for column_id, cycle_id, _, _ in spec["columns"]:
            self.cycle_columns.setdefault(cycle_id, []).append(column_id)
        self.small = spec["small_wip_column"]

    def pick(self):
        """A drag as the board allows it: a shown card, a column of its cycle, a gap."""
        # The small column stays full: its cards are never dragged out.
        sources = [c for c, ids in self.own.items() if ids and c != self.small]
        if not sources:
            return None
        source = self.rng.choice(sources)
        card = self.rng.choice(self.own[source][:VISIBLE])
        siblings = self.cycle_columns[self.cycle_of[source]]
        roll = self.rng.random()
        if self.small in siblings and source != self.small and roll < P_TO_SMALL_WIP:
            target = self.small
        elif roll > 1 - P_REORDER:
            target = source
        else:
            target = self.rng.choice([c for c in siblings if c not in (source, self.small)])
        others = [c for c in self.own[target] if c != card]
        gap = self.rng.randint(0, min(VISIBLE, len(others)))
        after = others[gap - 1] if gap > 0 else None
        before = others[gap] if gap < len(others) else None
        return card, source, target, after, before

    def moved(self, card: int, source: int, target: int, after, before, version: int) -> None:
        self.own[source].remove(card)
        column = self.own[target]
        if after is not None:
            column.insert(column.index(after) + 1, card)
        elif before is not None:
            column.insert(column.index(before), card)
        else:
            column.append(card)
        self.versions[card] = version


def run_client(spec: dict) -> dict:
    """Drag cards over HTTP, as board.js does, and classify every answer.

    ``count`` mode: that many moves in a row. Otherwise: moves from ``start_at`` until
    ``end_at`` (wall clock, shared by all clients); a move still in flight when the
    window closes is not counted. Warm-up moves come first and are not recorded.
    """
    rng = random.Random(spec["seed"])
    model = BoardModel(spec, rng)
    base_headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "HX-Request": "true",
        "HX-Current-URL": f"http://127.0.0.1:{spec['port']}/streams/{spec['slug']}/board/",
        **spec["auth"],
    }
    conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=60)
    result = {
        "ok": [],  # latency (s) of accepted moves
        "wip": [],  # latency of WIP refusals
        "other_refusals": 0,
        "errors": 0,
        "samples": [],
        "crossed": 0,
        "reordered": 0,
        "retried": 0,  # stale keep-alive connections sent again (not errors)
        "cpu_s": 0.0,
    }

    def one_move() -> tuple[str, float, float, tuple, str]:
        drag = model.pick()
        if drag is None:
            time.sleep(0.01)
            return "idle", 0.0, time.time(), (), ""
        card, source, target, after, before = drag
        body = urllib.parse.urlencode(
            {
                "to_column": target,
                "after": after or "",
                "before": before or "",
                "version": model.versions[card],
                "dragged": "1",
            }
        )
        path = f"/streams/{spec['slug']}/cards/{card}/move/"
        started = time.perf_counter()
        try:
            status, data, elapsed, retried = send(conn, "POST", path, body, base_headers)
            result["retried"] += retried
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            status, data, elapsed = None, repr(error).encode(), time.perf_counter() - started
        finished = time.time()
        outcome, note = "error", ""
        if status == 200 and b"toast-error" in data:
            outcome = "wip" if b"is at its WIP limit" in data else "other"
        elif status == 200:
            match = CARD_RE.search(data)
            if match and int(match[1]) == card:
                outcome = "ok"
                model.moved(card, source, target, after, before, int(match[2]))
        if outcome in ("error", "other"):
            text = re.sub(rb"\s+", b" ", data)[:400].decode(errors="replace")
            note = f"{outcome} status={status} {path} {body}: {text}"
        return outcome, elapsed, finished, (source, target), note

    def record(outcome, elapsed, columns, note) -> None:
        if outcome == "ok":
            result["ok"].append(elapsed)
            result["crossed" if columns[0] != columns[1] else "reordered"] += 1
        elif outcome == "wip":
            result["wip"].append(elapsed)
        elif outcome in ("error", "other"):
            result["other_refusals" if outcome == "other" else "errors"] += 1
            if len(result["samples"]) < 3:
                result["samples"].append(note)

    for _ in range(spec.get("warmup", 0)):
        one_move()
    if spec.get("count"):
        cpu0 = sum(os.times()[:2])
        for _ in range(spec["count"]):
            outcome, elapsed, _, columns, note = one_move()
            record(outcome, elapsed, columns, note)
    else:
        time.sleep(max(0.0, spec["start_at"] - time.time()))
        cpu0 = sum(os.times()[:2])
        while time.time() < spec["end_at"]:
            outcome, elapsed, finished, columns, note = one_move()
            if finished > spec["end_at"]:
                break
            record(outcome, elapsed, columns, note)
    result["cpu_s"] = sum(os.times()[:2]) - cpu0
    conn.close()
    return result


def _client_process(spec: dict, queue) -> None:
    try:
        queue.put(run_client(spec))
    except BaseException as error:  # report, don't hang the parent
        queue.put({"crash": repr(error)})


def client_specs(stream: dict, port: int, auths: list[dict], n: int, seed: int) -> list[dict]:
    """Share the stream's open cards out among n clients: each drags only its own."""
    by_column, versions = snapshot(stream["id"])
    shuffled = sorted(versions)
    random.Random(seed).shuffle(shuffled)
    owner_of = {card: i % n for i, card in enumerate(shuffled)}
    specs = []
    for i in range(n):
        own = {c: [card for card in ids if owner_of[card] == i] for c, ids in by_column.items()}
        specs.append(
            {
                "port": port,
                "slug": stream["slug"],
                "auth": auths[i],
                "columns": stream["columns"],
                "small_wip_column": stream["small_wip_column"],
                "own": own,
                "versions": {c: versions[c] for ids in own.values() for c in ids},
                "seed": seed * 100 + i,
            }
        )
    return specs


def run_clients(specs: list[dict], meter: CpuMeter | None = None) -> list[dict]:
    """Run one process per client; the meter brackets the measured part."""
    context = mp.get_context("fork")
    queue = context.Queue()
    processes = [context.Process(target=_client_process, args=(spec, queue)) for spec in specs]
    window = (specs[0].get("start_at"), specs[0].get("end_at"))
    if meter and window[0] is None:
        meter.start()
    for process in processes:
        process.start()
    if meter and window[0] is not None:
        time.sleep(max(0.0, window[0] - time.time()))
        meter.start()
        time.sleep(max(0.0, window[1] - time.time()))
        meter.stop()
    results = [queue.get() for _ in processes]
    if meter and window[0] is None:
        meter.stop()
    for process in processes:
        process.join()
    crashed = [r["crash"] for r in results if "crash" in r]
    if crashed:
        raise SystemExit(f"a client crashed: {crashed[0]}")
    return results


def merge(results: list[dict]) -> dict:
    merged = {"ok": [], "wip": [], "other_refusals": 0, "errors": 0, "samples": []}
    merged["crossed"] = merged["reordered"] = merged["retried"] = 0
    merged["cpu_s"] = 0.0
    for r in results:
        merged["ok"] += r["ok"]
        merged["wip"] += r["wip"]
        for key in ("other_refusals", "errors", "crossed", "reordered", "retried", "cpu_s"):
            merged[key] += r[key]
        merged["samples"] += r["samples"]
    return merged


# --------------------------------------------------------------------------- phases


LATENCY_BLOCK = 100  # sequential moves per block; the sizes take turns block by block


def latency_phases(
    streams: dict, sizes: list[int], server, auths, moves: int, seed: int, quiet: float
) -> dict[int, dict]:
    """One client, sequential moves, the sizes measured in alternating blocks.

    Taking turns in blocks of 100 moves puts the two sizes under the same machine
    conditions (the shared host's speed drifts over minutes), so their ratio is fair.
    """
    for size in sizes:  # warm every worker up (templates, connections) on both streams
        (warm,) = client_specs(streams[size], server.port, auths, 1, seed + size)
        warm.update(count=60)
        run_clients([warm])
    vacuum()
    before = wait_for_quiet(quiet)
    acc = {size: {"ok": [], "wip": [], "results": [], "cpu": [], "speed": []} for size in sizes}
    blocks = math.ceil(moves / LATENCY_BLOCK)
    for block in range(blocks):
        count = min(LATENCY_BLOCK, moves - block * LATENCY_BLOCK)
        for size in sizes:
            (spec,) = client_specs(streams[size], server.port, auths, 1, seed + size + block)
            spec.update(count=count)
            acc[size]["speed"].append(cpu_calibration(repeats=2))
            meter = CpuMeter(server.process.pid)
            r = merge(run_clients([spec], meter))
            requests = len(r["ok"]) + len(r["wip"]) + r["errors"] + r["other_refusals"]
            acc[size]["results"].append(r)
            acc[size]["cpu"].append(meter.result(r["cpu_s"], requests))
    out = {}
    for size in sizes:
        r = merge(acc[size]["results"])
        ok_ms = [x * 1000 for x in r["ok"]]
        wip_ms = [x * 1000 for x in r["wip"]]
        requests = len(ok_ms) + len(wip_ms) + r["errors"] + r["other_refusals"]
        cpu = {
            key: round(sum(c[key] for c in acc[size]["cpu"]), 3)
            for key in ("wall_s", "gunicorn_cpu_s", "postgres_cpu_s", "client_cpu_s", "other_cpu_s")
        }
        capacity = cpu["wall_s"] * (os.cpu_count() or 1)
        own = cpu["gunicorn_cpu_s"] + cpu["postgres_cpu_s"] + cpu["client_cpu_s"]
        cpu["machine_busy_share"] = round((own + cpu["other_cpu_s"]) / capacity, 3)
        cpu["other_share"] = round(cpu["other_cpu_s"] / capacity, 3)
        cpu["server_cpu_ms_per_request"] = round(
            1000 * (cpu["gunicorn_cpu_s"] + cpu["postgres_cpu_s"]) / max(requests, 1), 2
        )
        out[size] = {
            "moves": moves,
            "blocks": blocks,
            "accepted": len(ok_ms),
            "crossed_columns": r["crossed"],
            "reordered": r["reordered"],
            "retried_stale_connections": r["retried"],
            "wip_refusals": len(wip_ms),
            "other_refusals": r["other_refusals"],
            "errors": r["errors"],
            "samples": r["samples"],
            "p50_ms": percentile(ok_ms, 50),
            "p95_ms": percentile(ok_ms, 95),
            "p99_ms": percentile(ok_ms, 99),
            "max_ms": max(ok_ms, default=math.nan),
            "all_p50_ms": percentile(ok_ms + wip_ms, 50),
            "all_p95_ms": percentile(ok_ms + wip_ms, 95),
            "wip_refusal_p50_ms": percentile(wip_ms, 50),
            "busy_before_share": round(before, 3),
            "speed_check_ms": round(statistics.median(acc[size]["speed"]), 1),
            "cpu": cpu,
        }
    return out


def throughput_phase(stream, server, auths, n: int, duration: float, seed: int, quiet: float):
    specs = client_specs(stream, server.port, auths, n, seed)
    vacuum()
    before = wait_for_quiet(quiet)
    speed = cpu_calibration(repeats=2)
    start_at = time.time() + 1.0 + 0.05 * n
    for spec in specs:
        spec.update(warmup=5, start_at=start_at, end_at=start_at + duration)
    meter = CpuMeter(server.process.pid)
    r = merge(run_clients(specs, meter))
    requests = len(r["ok"]) + len(r["wip"]) + r["errors"] + r["other_refusals"]
    ok_ms = [x * 1000 for x in r["ok"]]
    return {
        "clients": n,
        "seconds": duration,
        "retried_stale_connections": r["retried"],
        "accepted": len(ok_ms),
        "wip_refusals": len(r["wip"]),
        "other_refusals": r["other_refusals"],
        "errors": r["errors"],
        "samples": r["samples"],
        "speed_check_ms": speed,
        "moves_per_s": len(ok_ms) / duration,
        "requests_per_s": (len(ok_ms) + len(r["wip"])) / duration,
        "p50_ms": percentile(ok_ms, 50),
        "p95_ms": percentile(ok_ms, 95),
        "busy_before_share": round(before, 3),
        "cpu": meter.result(r["cpu_s"], requests),
    }


def poll_path_for(stream: dict, version: str) -> str:
    query = urllib.parse.urlencode({"version": version})
    return f"/streams/{stream['slug']}/board/poll/?{query}"


def page_phase(stream, server, auth: dict, repeats: int, quiet: float) -> dict:
    """The full board page (what a user loads), then the poll that finds nothing new."""
    board_path = f"/streams/{stream['slug']}/board/"
    headers = {"Cookie": auth["Cookie"]}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

    def get(path, extra=None):
        status, body, elapsed, _ = send(conn, "GET", path, None, {**headers, **(extra or {})})
        return elapsed, status, body

    times, poll_times, size, errors = [], [], 0, 0
    # Every worker compiles the board's templates on its first board: warm them all
    # (a sync worker takes whichever new connection comes, so ask several times over).
    for _ in range(15):
        get(board_path)
        get(poll_path_for(stream, ""), {"HX-Request": "true"})
    vacuum()
    before = wait_for_quiet(quiet)
    speed = cpu_calibration(repeats=2)
    meter = CpuMeter(server.process.pid)
    meter.start()
    for _ in range(repeats):
        elapsed, status, body = get(board_path)
        errors += status != 200
        times.append(elapsed * 1000)
        size = len(body)
    meter.stop()
    version = BOARD_VERSION_RE.search(body)
    poll_path = poll_path_for(stream, version[1].decode() if version else "")
    for i in range(repeats + 3):
        elapsed, status, _ = get(poll_path, {"HX-Request": "true"})
        errors += status != 204
        if i >= 3:
            poll_times.append(elapsed * 1000)
    conn.close()
    return {
        "requests": repeats,
        "bytes": size,
        "errors": errors,
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "poll_204_p50_ms": percentile(poll_times, 50),
        "poll_204_p95_ms": percentile(poll_times, 95),
        "busy_before_share": round(before, 3),
        "speed_check_ms": speed,
        "cpu": meter.result(0.0, repeats),
    }


def floor_phase(server, repeats: int, quiet: float) -> dict:
    """The cheapest request: /healthz (no session, one SELECT 1), through gunicorn and
    the whole middleware stack: what any request costs on this machine."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

    def timed(method, path, body=None, headers=None) -> tuple[float, int]:
        status, _, elapsed, _ = send(conn, method, path, body, headers)
        return elapsed * 1000, status

    wait_for_quiet(quiet)
    health = [timed("GET", "/healthz")[0] for _ in range(repeats)]
    conn.close()
    return {"healthz_p50_ms": percentile(health, 50), "healthz_p95_ms": percentile(health, 95)}


def query_counts(stream: dict, seed: int) -> dict:
    """Queries per accepted drag, per WIP refusal and per board page, in-process."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    by_column, versions = snapshot(stream["id"])
    model = BoardModel(
        {
            "own": by_column,
            "versions": versions,
            "columns": stream["columns"],
            "small_wip_column": stream["small_wip_column"],
        },
        random.Random(seed),
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="bench-0"))
    hx = {"HX-Request": "true"}
    counts: dict[str, list[int]] = {"accepted": [], "wip_refusal": [], "accepted_reorder": []}
    tries = 0
    while (len(counts["accepted"]) < 10 or not counts["wip_refusal"]) and tries < 300:
        tries += 1
        card, source, target, after, before = model.pick()
        data = {
            "to_column": target,
            "after": after or "",
            "before": before or "",
            "version": model.versions[card],
            "dragged": "1",
        }
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(
                f"/streams/{stream['slug']}/cards/{card}/move/", data, headers=hx
            )
        body = response.content
        if b"is at its WIP limit" in body:
            counts["wip_refusal"].append(len(ctx.captured_queries))
        elif (match := CARD_RE.search(body)) and b"toast-error" not in body:
            key = "accepted" if source != target else "accepted_reorder"
            counts[key].append(len(ctx.captured_queries))
            model.moved(card, source, target, after, before, int(match[2]))
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as ctx:
        client.get(f"/streams/{stream['slug']}/board/")
    board_queries = len(ctx.captured_queries)
    connection.close()
    return {
        "move_queries": sorted(set(counts["accepted"])),
        "reorder_queries": sorted(set(counts["accepted_reorder"])),
        "wip_refusal_queries": sorted(set(counts["wip_refusal"])),
        "board_page_queries": board_queries,
    }


# --------------------------------------------------------------------------- report


def machine() -> dict:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import psycopg

    with psycopg.connect(host=DB_HOST, port=DB_PORT, user=DB_USER, dbname="postgres") as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        autovacuum = conn.execute("SHOW autovacuum").fetchone()[0]
    import django
    import gunicorn

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "postgresql": pg,
        "autovacuum": autovacuum,
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        "kernel": platform.release(),
    }


def fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def pct(share: float) -> str:
    return "-" if share is None or math.isnan(share) else f"{100 * share:.0f}%"


def report(results: dict) -> str:
    """The figures side by side, with the targets; '-' where a size was not measured."""
    small, big = SIZES

    def g(size: int, *path):
        """results["sizes"][size][path...], with throughput runs keyed by client count."""
        node = results["sizes"].get(size)
        for key in path:
            if node is None:
                return math.nan
            if isinstance(node, list):
                node = next((t for t in node if t["clients"] == key), None)
            else:
                node = node.get(key)
        return math.nan if node is None else node

    def row(label, path, digits=1, target="", check=None):
        values = [g(size, *path) for size in SIZES]
        mark = ""
        if check is not None:
            value = values[1]
            mark = "-" if isinstance(value, float) and math.isnan(value) else verdict(check(value))
        return (label, *(fmt(v, digits) for v in values), target, mark)

    def pair(label, path_a, path_b, unit_a="", fmt_b=fmt):
        cells = [f"{fmt(g(size, *path_a))}{unit_a} / {fmt_b(g(size, *path_b))}" for size in SIZES]
        return (label, *cells, "", "")

    ratio = g(big, "latency", "p50_ms") / g(small, "latency", "p50_ms")
    rows = [
        ("Move, one client, sequential", "", "", "", ""),
        row(
            "  p50 (ms)",
            ("latency", "p50_ms"),
            target=f"<= {TARGETS['move_p50_ms']:.0f}",
            check=lambda v: v <= TARGETS["move_p50_ms"],
        ),
        row(
            "  p95 (ms)",
            ("latency", "p95_ms"),
            target=f"<= {TARGETS['move_p95_ms']:.0f}",
            check=lambda v: v <= TARGETS["move_p95_ms"],
        ),
        row("  p99 (ms)", ("latency", "p99_ms")),
        (
            f"  p50 at {big} / p50 at {small}",
            "",
            fmt(ratio, 2),
            f"<= {TARGETS['p50_ratio']}",
            "-" if math.isnan(ratio) else verdict(ratio <= TARGETS["p50_ratio"]),
        ),
        row("  WIP refusal p50 (ms)", ("latency", "wip_refusal_p50_ms")),
        row("  server CPU per move (ms)", ("latency", "cpu", "server_cpu_ms_per_request")),
        row("  CPU speed check (ms)", ("latency", "speed_check_ms")),
        pair(
            "  machine busy / others' share",
            ("latency", "cpu", "machine_busy_share"),
            ("latency", "cpu", "other_share"),
            fmt_b=pct,
        ),
        ("Moves per second (accepted), concurrent clients", "", "", "", ""),
    ]
    for n in CLIENT_COUNTS:
        if n == 8:
            rows.append(
                row(
                    f"  {n} clients",
                    ("throughput", n, "moves_per_s"),
                    target=f">= {TARGETS['moves_per_s_8']:.0f}",
                    check=lambda v: v >= TARGETS["moves_per_s_8"],
                )
            )
        else:
            rows.append(
                row(f"  {n} client{'s' if n > 1 else ''}", ("throughput", n, "moves_per_s"))
            )
    for n in CLIENT_COUNTS:
        rows.append(
            pair(f"  {n}: p50 / p95 (ms)", ("throughput", n, "p50_ms"), ("throughput", n, "p95_ms"))
        )
    for n in CLIENT_COUNTS:
        cells = []
        for size in SIZES:
            wip = g(size, "throughput", n, "wip_refusals")
            bad = g(size, "throughput", n, "errors") + g(size, "throughput", n, "other_refusals")
            cells.append(f"{fmt(wip, 0)} / {fmt(bad, 0)}")
        bad_big = g(big, "throughput", n, "errors") + g(big, "throughput", n, "other_refusals")
        mark = "-" if math.isnan(bad_big) else verdict(bad_big == 0)
        rows.append(
            (
                f"  {n}: WIP refusals / errors",
                *cells,
                "no errors" if n == 8 else "",
                mark if n == 8 else "",
            )
        )
    for n in CLIENT_COUNTS:
        rows.append(
            pair(
                f"  {n}: server CPU/move (ms) / others",
                ("throughput", n, "cpu", "server_cpu_ms_per_request"),
                ("throughput", n, "cpu", "other_share"),
                fmt_b=pct,
            )
        )
    rows += [
        ("Board page (full GET, one client)", "", "", "", ""),
        row(
            "  p50 (ms)",
            ("page", "p50_ms"),
            target=f"<= {TARGETS['board_ms']:.0f}",
            check=lambda v: v <= TARGETS["board_ms"],
        ),
        row(
            "  p95 (ms)",
            ("page", "p95_ms"),
            target=f"<= {TARGETS['board_ms']:.0f}",
            check=lambda v: v <= TARGETS["board_ms"],
        ),
        row("  server CPU per page (ms)", ("page", "cpu", "server_cpu_ms_per_request")),
        row("  CPU speed check (ms)", ("page", "speed_check_ms")),
        pair(
            "  machine busy / others' share",
            ("page", "cpu", "machine_busy_share"),
            ("page", "cpu", "other_share"),
            fmt_b=pct,
        ),
        (("  size (kB)", *(fmt(g(s, "page", "bytes") / 1024) for s in SIZES), "", "")),
        row("  poll, nothing new (204) p50 (ms)", ("page", "poll_204_p50_ms")),
    ]
    floor = results.get("floor")
    if floor:
        rows.append(("Floor: GET /healthz p50 (ms)", fmt(floor["healthz_p50_ms"]), "", "", ""))
    rows.append(("Queries per request (in-process)", "", "", "", ""))
    for label, key in (
        ("  drag to another column", "move_queries"),
        ("  reorder in a column", "reorder_queries"),
        ("  WIP refusal", "wip_refusal_queries"),
        ("  board page", "board_page_queries"),
    ):
        cells = []
        for size in SIZES:
            value = g(size, "queries", key)
            cells.append(
                "-"
                if isinstance(value, float)
                else ", ".join(map(str, value))
                if isinstance(value, list)
                else str(value)
            )
        rows.append((label, *cells, "", ""))
    header = ("", f"{small} cards", f"{big} cards", f"target at {big}", "")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=None, help="sequential moves (default 1000)")
    parser.add_argument("--quick", action="store_true", help="a short run to check the bench")
    parser.add_argument(
        "--seconds", type=float, default=None, help="per concurrent run (default 10)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="before each phase, wait up to this many seconds for the machine to be idle "
        "(default 5; 0: don't wait)",
    )
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="gthread")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="per worker, gthread only")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="which of the streams to measure (both are always loaded), e.g. 5000",
    )
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args()
    moves = args.moves or (200 if args.quick else 1000)
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    page_repeats = 10 if args.quick else 30
    measured = [int(size) for size in args.sizes.split(",")]
    if not set(measured) <= set(SIZES):
        parser.error(f"--sizes: choose among {SIZES}")
    quiet = args.quiet_wait if args.quiet_wait is not None else (2.0 if args.quick else 5.0)

    began = time.time()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    secret_key = secrets.token_urlsafe(50)

    def step(text: str) -> None:
        print(f"[{time.time() - began:6.1f}s] {text}", flush=True)

    step(f"re-creating database {DB_NAME}")
    recreate_database()
    setup_django(secret_key)
    from django.core.management import call_command
    from django.db import connections

    step("migrate")
    call_command("migrate", verbosity=0, interactive=False)
    step("collectstatic")
    call_command("collectstatic", verbosity=0, interactive=False)
    step(f"loading streams of {', '.join(map(str, SIZES))} open cards")
    streams = build_streams(SIZES, args.seed)
    connections.close_all()

    results: dict = {
        "machine": {**machine(), "calibration_ms_start": cpu_calibration()},
        "config": {
            "worker_class": args.worker_class,
            "workers": args.workers,
            "threads": args.threads if args.worker_class == "gthread" else 1,
            "moves": moves,
            "seconds": seconds,
            "page_repeats": page_repeats,
            "quiet_wait_s": quiet,
            "seed": args.seed,
        },
        "sizes": {},
    }
    config = results["config"]
    step(
        f"starting gunicorn ({args.worker_class}, {args.workers} workers"
        + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
        + ")"
    )
    server = Server(
        secret_key=secret_key,
        worker_class=args.worker_class,
        workers=args.workers,
        threads=args.threads,
    )
    try:
        step("logging the clients in through the login form")
        first_board = f"/streams/{streams[SIZES[0]]['slug']}/board/"
        auths = [log_in(server.port, f"bench-{i}", first_board) for i in range(N_USERS)]
        step("request floor: /healthz")
        results["floor"] = floor_phase(server, 200, quiet)
        step(
            f"{' and '.join(map(str, measured))} cards: {moves} sequential moves each, one "
            f"client, in alternating blocks of {LATENCY_BLOCK}"
        )
        latencies = latency_phases(streams, measured, server, auths, moves, args.seed, quiet)
        for size in measured:
            stream = streams[size]
            entry = results["sizes"][size] = {"latency": latencies[size]}
            entry["throughput"] = []
            for n in CLIENT_COUNTS:
                step(f"{size} cards: {n} client(s) for {seconds:.0f}s")
                entry["throughput"].append(
                    throughput_phase(stream, server, auths, n, seconds, args.seed + size + n, quiet)
                )
            step(f"{size} cards: board page x{page_repeats}")
            entry["page"] = page_phase(stream, server, auths[0], page_repeats, quiet)
            step(f"{size} cards: queries per request (in-process)")
            entry["queries"] = query_counts(stream, args.seed + size + 99)
    finally:
        server.stop()

    errors = 0
    for size in measured:
        entry = results["sizes"][size]
        phases = [entry["latency"], *entry["throughput"]]
        errors += sum(p["errors"] + p["other_refusals"] for p in phases) + entry["page"]["errors"]
        for phase in phases:
            for sample in phase["samples"]:
                print(f"  {size} cards: {sample}")
    results["errors"] = errors
    results["machine"]["calibration_ms_end"] = cpu_calibration()
    results["elapsed_s"] = round(time.time() - began, 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS_DIR / f"board_bench-{stamp}-{args.worker_class}.json"
    out.write_text(json.dumps(results, indent=2, default=str))

    m = results["machine"]
    print()
    print(
        f"{m['nproc']} cores, {m['cpu']}; PostgreSQL {m['postgresql']} (autovacuum "
        f"{m['autovacuum']}; tables vacuumed before each phase); Python {m['python']}, "
        f"Django {m['django']}, gunicorn {m['gunicorn']} "
        f"{config['worker_class']} x{config['workers']}"
        + (f" ({config['threads']} threads)" if config["worker_class"] == "gthread" else "")
    )
    print(
        f"{moves} sequential moves per size; {seconds:.0f}s per concurrent run; "
        f"board page x{page_repeats}; clients on the same machine"
    )
    print(
        f"CPU speed check (1M-iteration Python loop, CPU ms, best of 5; per phase best of 2; "
        f"the shared host's speed drifts): "
        f"{m['calibration_ms_start']} ms at the start, {m['calibration_ms_end']} ms at the end"
    )
    print(
        "'machine busy': share of both cores in use during the phase; 'others': the share "
        "used by processes that are not the bench's (gunicorn, its PostgreSQL backends, "
        "the clients). Figures with others above ~10% are disturbed."
    )
    print()
    print(report(results))
    print()
    disturbed = []
    for size in measured:
        entry = results["sizes"][size]
        named = [("sequential moves", entry["latency"]), ("board page", entry["page"])]
        named += [(f"{t['clients']} clients", t) for t in entry["throughput"]]
        disturbed += [
            f"{size} cards {name} ({pct(phase['cpu']['other_share'])})"
            for name, phase in named
            if phase["cpu"]["other_share"] > 0.10
        ]
    if disturbed:
        print("WARNING: other load took over 10% of the machine during: " + ", ".join(disturbed))
        print("         their figures are pessimistic; run again on a quiet machine")
    print(f"raw results: {out.relative_to(ROOT)}; {results['elapsed_s']}s in all")
    if errors:
        print(f"FAILED: {errors} error(s) besides WIP refusals", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
