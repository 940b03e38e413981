#!/usr/bin/env python
"""Board benchmark: card moves, their floor, the board page and a room of viewers, on
PostgreSQL through gunicorn (optionally through PgBouncer).

    .venv/bin/python bench/board_bench.py [--moves N] [--quick] [--sizes 100,5000,50000]
        [--viewers 50] [--read-seconds S] [--pgbouncer [--pool-size 20]]
        [--worker-class gthread|sync] [--workers 4] [--threads 2] [--quiet-wait S]

A script that prints figures, not a test, on the harness in bench/harness/. It:

1. Re-creates the database ``vsm_bench_board``, migrates it, runs ``collectstatic``.
2. Builds one value stream per size (100 and 5,000 open cards, and 50,000 when
   ``--sizes`` names it) with ``boards.services.value_stream_create`` and loads the
   cards with COPY (``Card`` rows and their 'enter' ``CardMove`` rows, by the system
   actor "bench"; triggers and constraints run as for INSERTs); only the setup takes
   that shortcut: every measured move is an HTTP request through gunicorn, the view
   and ``boards.services.card_move``.
3. Starts gunicorn (default gthread, 4 workers x 2 threads; broker ``memory://``, eager
   tasks off, so no request runs or waits on a task; the cache is Redis,
   ``--cache-url``, as in production), with ``--pgbouncer`` behind a
   local PgBouncer in transaction pooling (``harness.processes.PgBouncer``,
   ``DATABASE_POOLER=transaction``), and logs the movers in through the login form.
4. Sends what a drag sends (``board.js``): POST ``to_column``, ``after``, ``before``,
   ``version``, ``dragged=1`` with ``HX-Request`` and ``X-CSRFToken``. Each client keeps
   a model of the board: it drags one of the first cards of a column (what a column
   shows), names the neighbours at the drop point and the card's version, and reads the
   new version from the answer (parsed with tests/pages.py). In a concurrent run each
   client owns a disjoint share of the cards, so no drag is stale.
5. One client: warm-up, then N sequential moves per size, the sizes taking turns in
   blocks of 100 -> p50/p95/p99; in each block also the floor at 5,000 cards
   (``harness.floor``): a raw transaction with a drag's locks and writes, and an empty
   POST through the whole middleware stack -> move p50 / (raw p50 + empty p50). Then
   1, 4 and 8 concurrent client processes for a fixed time -> moves/s, errors.
6. Read load at 5,000 cards: 8 movers alone, then 8 movers with ``--viewers`` viewers
   polling at ``board.js``'s interval (``harness.viewers``) -> moves/s with / without,
   move p95, errors, bytes per poll, share of polls answered with the whole board.
7. The board page (full GET) and the 'nothing changed' poll; /healthz.
8. Queries per request, counted in-process with ``CaptureQueriesContext``, and the
   statements of one drag beside the floor's.

Before each phase the tables are vacuumed (autovacuum is off on our PostgreSQL) and the
bench waits up to ``--quiet-wait`` s for an idle machine. Each phase records the CPU of
gunicorn (and PgBouncer), of its PostgreSQL backends, of the clients and of everything
else.

One column (the first cycle's last) has a WIP limit of 5 and holds 5 cards that are
never dragged out; some drags aim at it, and their refusals (200 with the "is at its
WIP limit" toast) are counted apart. Any other refusal, non-200 answer or transport
failure is an error, and the script exits 1. Raw results go to
``bench/results/board_bench-<time>.json``; docs/performance.md reads the figures.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import multiprocessing as mp
import os
import random
import re
import secrets
import statistics
import sys
import time
import urllib.parse
from datetime import timedelta

from benchconf.views import EMPTY_POST_PATH
from harness import arguments, log, percentile
from harness.cpu import CpuMeter, cpu_calibration, machine, wait_for_quiet
from harness.db import (
    Database,
    collectstatic,
    copy_rows,
    environment,
    migrate,
    setup_django,
)
from harness.floor import RawMoves, statement_classes
from harness.history import seed_actor_columns
from harness.processes import Gunicorn, PgBouncer
from harness.report import fmt, pct, save_results, text_table, verdict
from harness.viewers import poll_interval_seconds, run_viewers
from harness.web import Answer, Client, board_page, card_version

DATABASE = Database("vsm_bench_board")
TABLES = ("boards_card", "boards_cardmove", "boards_column")
SIZES = (100, 5000, 50_000)
LOADED = (100, 5000)  # always loaded: the reference size, the floor's and the read load's
FLOOR_SIZE = 5000
READ_SIZE = 5000
READ_MOVERS = 8
CLIENT_COUNTS = (1, 4, 8)
POLL_KINDS = ("nothing", "delta", "board", "error")
PASSWORD = "bench-only-password-7f3a"  # a throw-away database's users
SMALL_WIP = 5  # the one column whose limit is really reached
LARGE_WIP = 10_000  # limited columns that never fill: the WIP count still runs
P_TO_SMALL_WIP = 0.10  # of the drags of a first-cycle card, how many aim at the small column
P_REORDER = 0.10  # drags that reorder inside the card's own column
LATENCY_BLOCK = 100  # sequential moves per block; the sizes take turns block by block
TARGETS = {
    "move_p50_ms": 15.0,
    "move_p95_ms": 40.0,
    "p50_ratio": 1.3,
    "board_ms": 150.0,
    "moves_per_s_8": 100.0,
    # Issue 14: the floor, 50,000 cards, a room of viewers.
    "floor_ratio": 2.0,
    "board_ms_50000": 100.0,
    "poll_ms_50000": 10.0,
    "read_share": 0.9,
    "read_p95_ms": 100.0,
}


def build_streams(seed: int, sizes: list[int], viewers: int) -> dict[int, dict]:
    """Users (the movers and the viewers), one stream per size, its columns' WIP limits
    and its open cards, loaded with COPY (cards, then their 'enter' moves)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from boards.models import Card, CardMove, Column, MoveKind, Outcome
    from boards.services import POSITION_GAP, value_stream_create
    from vsm.actors import SystemActor
    from vsm.models import Channel, ChannelKind, Membership, Role

    rng = random.Random(seed)
    user_model = get_user_model()
    hashed = make_password(PASSWORD)
    manager = user_model.objects.create(
        username="bench-manager", password=hashed, first_name="Bench", last_name="Manager"
    )
    users = user_model.objects.bulk_create(
        user_model(username=f"bench-{i}", password=hashed, first_name="Client", last_name=str(i))
        for i in range(max(CLIENT_COUNTS))
    )
    # Viewers log in with a session made here (no password check): 50 logins through
    # the form would cost 50 password hashes of the machine's time.
    watchers = user_model.objects.bulk_create(
        user_model(username=f"bench-viewer-{i}", first_name="Viewer", last_name=str(i))
        for i in range(viewers)
    )
    seeded_by = seed_actor_columns(CardMove)
    now = timezone.now()
    streams: dict[int, dict] = {}
    for size in sizes:
        started = time.perf_counter()
        with transaction.atomic():
            stream = value_stream_create(
                name=f"Bench {size}",
                customer_market="Benchmark",
                manager=manager,
                actor=SystemActor("bench"),
            )
            team = stream.teams.get()
            Membership.objects.bulk_create(
                Membership(user=user, team=team, role=Role.MEMBER) for user in users + watchers
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
            small = [c for c in columns if c.cycle_id == columns[0].cycle_id][-1]
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
            for column in others[: size - sum(counts.values())]:
                counts[column.pk] += 1
            owners = [manager, *users]
            cards: list[dict] = []
            for column in columns:
                for index in range(counts[column.pk]):
                    n = len(cards)
                    created = now - timedelta(days=rng.uniform(1, 120))
                    entered = created + (now - created) * rng.random()
                    cards.append(
                        {
                            "value_stream_id": stream.pk,
                            "column_id": column.pk,
                            "position": (index + 1) * POSITION_GAP,
                            "person_name": f"Person {n}",
                            "company": f"Company {n % 977}",
                            "email": f"person{n}@example.com",
                            "channel_id": rng.choice(channels).pk,
                            "owner_id": rng.choice(owners).pk,
                            "owning_team_id": team.pk,
                            "estimated_value": rng.randrange(0, 50_000),
                            "created_at": created,
                            "updated_at": entered,
                            "column_entered_at": entered,
                            "outcome": Outcome.OPEN.value,
                            "version": 1,
                        }
                    )
            copy_rows(Card, cards)
            copy_rows(
                CardMove,
                (
                    {
                        "value_stream_id": stream.pk,
                        "card_id": card_id,
                        "from_column_id": None,
                        "to_column_id": column_id,
                        "moved_at": created_at,
                        "kind": MoveKind.ENTER.value,
                        "channel_id": channel_id,
                        "estimated_value": value,
                        **seeded_by,
                    }
                    for card_id, column_id, created_at, channel_id, value in Card.objects.filter(
                        value_stream=stream
                    )
                    .order_by("id")
                    .values_list("id", "column_id", "created_at", "channel_id", "estimated_value")
                ),
            )
        streams[size] = {
            "id": stream.pk,
            "slug": stream.slug,
            "columns": [(c.pk, c.cycle_id) for c in columns],
            "small_wip_column": small.pk,
            "load_s": round(time.perf_counter() - started, 2),
        }
    connection.close()
    DATABASE.vacuum(*TABLES)
    return streams


def viewer_sessions(viewers: int) -> list[dict[str, str]]:
    """A logged-in session per viewer, made in-process as a login makes it; the headers
    its browser's requests carry (the session cookie)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client as DjangoClient

    auths = []
    for user in get_user_model().objects.filter(username__startswith="bench-viewer-")[:viewers]:
        client = DjangoClient()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        auths.append({"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"})
    connection.close()
    return auths


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


class BoardModel:
    """What one client believes about the cards it drags: order per column, versions."""

    def __init__(self, spec: dict, rng: random.Random):
        self.rng = rng
        self.visible = spec["visible"]
        self.own: dict[int, list[int]] = {c: list(ids) for c, ids in spec["own"].items()}
        self.versions: dict[int, int] = dict(spec["versions"])
        self.cycle_of = dict(spec["columns"])
        self.cycle_columns: dict[int, list[int]] = {}
        for column_id, cycle_id in spec["columns"]:
            self.own.setdefault(column_id, [])
            self.cycle_columns.setdefault(cycle_id, []).append(column_id)
        self.small = spec["small_wip_column"]

    def pick(self):
        """A drag as the board allows it: a shown card, a column of its cycle, a gap."""
        # The small column stays full: its cards are never dragged out.
        sources = [c for c, ids in self.own.items() if ids and c != self.small]
        if not sources:
            return None
        source = self.rng.choice(sources)
        card = self.rng.choice(self.own[source][: self.visible])
        siblings = self.cycle_columns[self.cycle_of[source]]
        roll = self.rng.random()
        if self.small in siblings and roll < P_TO_SMALL_WIP:
            target = self.small
        elif roll > 1 - P_REORDER:
            target = source
        else:
            target = self.rng.choice([c for c in siblings if c not in (source, self.small)])
        others = [c for c in self.own[target] if c != card]
        gap = self.rng.randint(0, min(self.visible, len(others)))
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

    def form(self, card: int, target: int, after, before) -> dict:
        return {
            "to_column": target,
            "after": after or "",
            "before": before or "",
            "version": self.versions[card],
            "dragged": "1",
        }


def classify(status: int | None, body: bytes, card: int) -> tuple[str, int | None]:
    """'ok' (with the card's new version), 'wip' (refused: the column is full),
    'other' (any other refusal) or 'error'."""
    if status == 200 and b"toast-error" in body:
        return ("wip" if b"is at its WIP limit" in body else "other"), None
    if status == 200:
        version = card_version(body, card)
        if version is not None:
            return "ok", version
    return "error", None


def run_client(spec: dict) -> dict:
    """Drag cards over HTTP, as board.js does, and classify every answer.

    ``count``: that many moves in a row. Otherwise moves from ``start_at`` until
    ``end_at`` (wall clock, shared by all clients); a move still in flight when the
    window closes is not counted. Warm-up moves come first and are not recorded.
    """
    model = BoardModel(spec, random.Random(spec["seed"]))
    client = Client(spec["port"], spec["auth"])
    hx = {
        "HX-Request": "true",
        "HX-Current-URL": f"http://127.0.0.1:{spec['port']}/streams/{spec['slug']}/board/",
    }
    result = {"ok": [], "wip": [], "other_refusals": 0, "errors": 0, "samples": []}
    result.update(crossed=0, reordered=0, retried=0, cpu_s=0.0)

    def one_move():
        drag = model.pick()
        if drag is None:
            time.sleep(0.01)
            return "idle", 0.0, time.time(), ()
        card, source, target, after, before = drag
        form = model.form(card, target, after, before)
        path = f"/streams/{spec['slug']}/cards/{card}/move/"
        started = time.perf_counter()
        try:
            answer = client.post(path, form, hx)
            status, body, elapsed = answer.status, answer.body, answer.seconds
            result["retried"] += answer.retried
        except (OSError, http.client.HTTPException) as error:
            client.close()
            status, body, elapsed = None, repr(error).encode(), time.perf_counter() - started
        finished = time.time()
        outcome, version = classify(status, body, card)
        if outcome == "ok":
            model.moved(card, source, target, after, before, version)
        elif outcome != "wip" and len(result["samples"]) < 3:
            text = re.sub(rb"\s+", b" ", body)[:400].decode(errors="replace")
            result["samples"].append(f"{outcome} status={status} {path} {form}: {text}")
        return outcome, elapsed, finished, (source, target)

    def record(outcome, elapsed, columns) -> None:
        if outcome == "ok":
            result["ok"].append(elapsed)
            result["crossed" if columns[0] != columns[1] else "reordered"] += 1
        elif outcome == "wip":
            result["wip"].append(elapsed)
        elif outcome in ("error", "other"):
            result["other_refusals" if outcome == "other" else "errors"] += 1

    for _ in range(spec.get("warmup", 0)):
        one_move()
    if not spec.get("count"):
        time.sleep(max(0.0, spec["start_at"] - time.time()))
    cpu0 = time.process_time()
    for _ in range(spec.get("count") or sys.maxsize):
        if not spec.get("count") and time.time() >= spec["end_at"]:
            break
        outcome, elapsed, finished, columns = one_move()
        if not spec.get("count") and finished > spec["end_at"]:
            break
        record(outcome, elapsed, columns)
    result["cpu_s"] = time.process_time() - cpu0
    client.close()
    return result


def _client_process(spec: dict, queue) -> None:
    try:
        queue.put(run_client(spec))
    except BaseException as error:  # report, don't hang the parent
        queue.put({"crash": repr(error)})


def client_specs(stream: dict, port: int, auths: list[dict], n: int, seed: int) -> list[dict]:
    """Share the stream's open cards out among n clients: each drags only its own."""
    from boards.selectors import COLUMN_PAGE_SIZE

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
                "visible": COLUMN_PAGE_SIZE,
                "own": own,
                "versions": {c: versions[c] for ids in own.values() for c in ids},
                "seed": seed * 100 + i,
            }
        )
    return specs


def run_clients(specs: list[dict], meter: CpuMeter | None = None) -> dict:
    """One process per client, their results merged; the meter brackets the measured
    part (the shared window, or the whole run)."""
    context = mp.get_context("fork")
    queue = context.Queue()
    processes = [context.Process(target=_client_process, args=(spec, queue)) for spec in specs]
    window = specs[0].get("start_at"), specs[0].get("end_at")
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
    return merge(results)


def merge(results: list[dict]) -> dict:
    merged = {"ok": [], "wip": [], "samples": []}
    counters = ("other_refusals", "errors", "crossed", "reordered", "retried", "cpu_s")
    merged.update(dict.fromkeys(counters, 0))
    for r in results:
        for key in ("ok", "wip", "samples"):
            merged[key] += r[key]
        for key in counters:
            merged[key] += r[key]
    merged["requests"] = len(merged["ok"]) + len(merged["wip"])
    merged["requests"] += merged["errors"] + merged["other_refusals"]
    return merged


# Servers besides gunicorn whose CPU is the server's (PgBouncer, with --pgbouncer).
ALSO_METERED: dict[str, int] = {}


def meter_for(server: Gunicorn) -> CpuMeter:
    return CpuMeter({"gunicorn": server.pid, **ALSO_METERED}, DATABASE.backend_pids, start=False)


def latency_phases(
    streams, sizes, server, auths, moves: int, seed: int, quiet: float, floor: Floor | None
):
    """One client, sequential moves, the sizes measured in alternating blocks, and the
    floor's two parts after them in each block: taking turns puts all under the same
    machine conditions, so their ratios are fair."""
    for size in sizes:  # warm every worker up (templates, connections) on both streams
        (warm,) = client_specs(streams[size], server.port, auths, 1, seed + size)
        run_clients([{**warm, "count": 60}])
    if floor is not None:
        floor.warm_up()
    DATABASE.vacuum(*TABLES)
    before = wait_for_quiet(quiet)
    acc = {size: {"results": [], "cpu": [], "speed": []} for size in sizes}
    blocks = math.ceil(moves / LATENCY_BLOCK)
    for block in range(blocks):
        count = min(LATENCY_BLOCK, moves - block * LATENCY_BLOCK)
        for size in sizes:
            (spec,) = client_specs(streams[size], server.port, auths, 1, seed + size + block)
            acc[size]["speed"].append(cpu_calibration(repeats=2))
            meter = meter_for(server)
            r = run_clients([{**spec, "count": count}], meter)
            acc[size]["results"].append(r)
            acc[size]["cpu"].append(meter.result(r["requests"], r["cpu_s"]))
        if floor is not None:
            floor.block(count)
    out = {}
    for size in sizes:
        r = merge(acc[size]["results"])
        ok_ms = [x * 1000 for x in r["ok"]]
        wip_ms = [x * 1000 for x in r["wip"]]
        keys = ("wall_s", "gunicorn_cpu_s", "postgres_cpu_s", "client_cpu_s", "python_cpu_s")
        cpu = {key: round(sum(c[key] for c in acc[size]["cpu"]), 3) for key in keys}
        cpu["other_cpu_s"] = round(sum(c["other_cpu_s"] for c in acc[size]["cpu"]), 3)
        capacity = cpu["wall_s"] * (os.cpu_count() or 1)
        own = sum(cpu[key] for key in keys[1:])
        cpu["machine_busy_share"] = round((own + cpu["other_cpu_s"]) / capacity, 3)
        cpu["other_share"] = round(cpu["other_cpu_s"] / capacity, 3)
        cpu["server_cpu_ms_per_request"] = round(
            1000 * (cpu["gunicorn_cpu_s"] + cpu["postgres_cpu_s"]) / max(r["requests"], 1), 2
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
            "wip_refusal_p50_ms": percentile(wip_ms, 50),
            "busy_before_share": round(before, 3),
            "speed_check_ms": round(statistics.median(acc[size]["speed"]), 1),
            "cpu": cpu,
        }
    if floor is not None:
        out["floor"] = floor.result()
    return out


class Floor:
    """The floor of a drag at one size (``harness.floor``): the raw transaction and the
    empty POST, measured in blocks between the moves' blocks."""

    def __init__(self, stream: dict, server: Gunicorn, url: str, auth: dict, seed: int):
        from django.contrib.auth import get_user_model
        from django.db import connection

        actor = get_user_model().objects.get(username="bench-0").pk
        connection.close()
        self.server = server
        self.raw = RawMoves(url, stream, actor, seed)
        self.client = Client(server.port, auth)
        self.hx = {
            "HX-Request": "true",
            "HX-Current-URL": f"http://127.0.0.1:{server.port}/streams/{stream['slug']}/board/",
        }
        # What a drag posts (the empty view reads none of it; the middleware parses it).
        column = stream["columns"][1][0]
        self.form = {"to_column": column, "after": 1, "before": 2, "version": 3, "dragged": "1"}
        self.times: dict[str, list[float]] = {"raw": [], "empty": []}
        self.cpu: dict[str, list[dict]] = {"raw": [], "empty": []}
        self.errors = 0
        self.samples: list[str] = []

    def _empty(self) -> float:
        try:
            answer = self.client.post(EMPTY_POST_PATH, self.form, self.hx)
        except (OSError, http.client.HTTPException) as error:
            self.client.close()
            answer = Answer(0, repr(error).encode(), math.nan)
        if answer.status != 200:
            self.errors += 1
            if len(self.samples) < 3:
                self.samples.append(f"empty POST status={answer.status}: {answer.body[:200]!r}")
        return answer.seconds

    def warm_up(self) -> None:
        self.raw.load()
        for _ in range(20):
            self.raw.one()
            self._empty()

    def block(self, count: int) -> None:
        self.raw.load()
        for name, one in (("raw", self.raw.one), ("empty", self._empty)):
            meter = meter_for(self.server)
            meter.start()
            times = [one() for _ in range(count)]
            meter.stop()
            self.times[name] += times
            self.cpu[name].append(meter.result(count))

    def result(self) -> dict:
        self.raw.close()
        self.client.close()
        out: dict = {"errors": self.errors, "samples": self.samples}
        for name, times in self.times.items():
            ms = [x * 1000 for x in times if not math.isnan(x)]
            cpu = self.cpu[name]
            out[name] = {
                "count": len(ms),
                "p50_ms": percentile(ms, 50),
                "p95_ms": percentile(ms, 95),
                "server_cpu_ms_per_request": round(
                    statistics.fmean(c["server_cpu_ms_per_request"] for c in cpu), 2
                ),
                "other_share": round(statistics.fmean(c["other_share"] for c in cpu), 3),
            }
        out["p50_ms"] = out["raw"]["p50_ms"] + out["empty"]["p50_ms"]
        out["raw_statements"] = statement_classes(self.raw.statements)
        return out


def throughput_phase(stream, server, auths, n: int, duration: float, seed: int, quiet: float):
    specs = client_specs(stream, server.port, auths, n, seed)
    DATABASE.vacuum(*TABLES)
    before = wait_for_quiet(quiet)
    speed = cpu_calibration(repeats=2)
    start_at = time.time() + 1.0 + 0.05 * n
    meter = meter_for(server)
    r = run_clients(
        [
            {**spec, "warmup": 5, "start_at": start_at, "end_at": start_at + duration}
            for spec in specs
        ],
        meter,
    )
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
        "p50_ms": percentile(ok_ms, 50),
        "p95_ms": percentile(ok_ms, 95),
        "busy_before_share": round(before, 3),
        "cpu": meter.result(r["requests"], r["cpu_s"]),
    }


def read_load_phase(
    stream, server, auths, viewer_auths, duration: float, seed: int, quiet: float
) -> dict:
    """READ_MOVERS movers for ``duration`` s alone, then the same with the viewers
    polling the board (``harness.viewers``): moves per second with viewers against
    without, in one phase, and what the viewers downloaded."""
    alone = throughput_phase(stream, server, auths, READ_MOVERS, duration, seed, quiet)
    specs = client_specs(stream, server.port, auths, READ_MOVERS, seed + 1)
    DATABASE.vacuum(*TABLES)
    before = wait_for_quiet(quiet)
    board_path = f"/streams/{stream['slug']}/board/"
    viewer_spec = {
        "port": server.port,
        "auths": viewer_auths,
        "board_path": board_path,
        "poll_path": f"{board_path}poll/",
        "interval": poll_interval_seconds(),
        "seed": seed,
    }
    context = mp.get_context("fork")
    queue, window = context.Queue(), context.Queue()
    viewers = context.Process(target=run_viewers, args=(viewer_spec, queue, window))
    viewers.start()
    ready = queue.get(timeout=600)
    start_at = time.time() + 1.0 + 0.05 * READ_MOVERS
    end_at = start_at + duration
    window.put((start_at, end_at))
    meter = meter_for(server)
    r = run_clients(
        [{**spec, "warmup": 5, "start_at": start_at, "end_at": end_at} for spec in specs], meter
    )
    watched = queue.get(timeout=duration + 300)
    viewers.join()
    polls = watched["polls"]
    kinds = {kind: sum(1 for p in polls if p[0] == kind) for kind in POLL_KINDS}
    answered = [p for p in polls if p[0] != "error"]
    ok_ms = [x * 1000 for x in r["ok"]]
    moves_per_s = len(ok_ms) / duration
    cpu = meter.result(r["requests"] + len(polls), r["cpu_s"] + watched["cpu_s"])
    # What the polls cost the server: all its CPU less the moves', at their cost alone.
    server_ms = cpu["server_cpu_ms_per_request"] * (r["requests"] + len(polls))
    moves_ms = alone["cpu"]["server_cpu_ms_per_request"] * r["requests"]
    return {
        "movers": READ_MOVERS,
        "viewers": len(viewer_auths),
        "seconds": duration,
        "poll_interval_s": viewer_spec["interval"],
        "alone": alone,
        "moves_per_s": moves_per_s,
        "moves_per_s_share": moves_per_s / alone["moves_per_s"]
        if alone["moves_per_s"]
        else math.nan,
        "p50_ms": percentile(ok_ms, 50),
        "p95_ms": percentile(ok_ms, 95),
        "accepted": len(ok_ms),
        "wip_refusals": len(r["wip"]),
        "other_refusals": r["other_refusals"],
        "errors": r["errors"] + kinds["error"] + len(ready["setup_errors"]) + watched["crashed"],
        "samples": r["samples"] + watched["samples"] + ready["setup_errors"][:3],
        "polls": len(polls),
        "polls_per_s": len(polls) / duration,
        "poll_kinds": kinds,
        "whole_board_share": kinds["board"] / len(polls) if polls else math.nan,
        "bytes_per_poll": statistics.fmean(p[1] for p in answered) if answered else math.nan,
        "bytes_per_changed_poll": statistics.fmean(
            [p[1] for p in answered if p[0] != "nothing"] or [math.nan]
        ),
        "poll_p50_ms": percentile([p[2] * 1000 for p in answered], 50),
        "poll_p95_ms": percentile([p[2] * 1000 for p in answered], 95),
        "server_cpu_ms_per_poll": (server_ms - moves_ms) / len(polls) if polls else math.nan,
        "busy_before_share": round(before, 3),
        "cpu": cpu,
    }


def page_phase(stream, server, auth: dict, repeats: int, quiet: float) -> dict:
    """The full board page (what a user loads), then the poll that finds nothing new."""
    board_path = f"/streams/{stream['slug']}/board/"
    client = Client(server.port, auth)
    hx = {"HX-Request": "true"}

    def poll_path(version: str) -> str:
        return (
            f"/streams/{stream['slug']}/board/poll/?{urllib.parse.urlencode({'version': version})}"
        )

    # Every worker compiles the board's templates on its first board: warm them all
    # (a sync worker takes whichever new connection comes, so ask several times over).
    for _ in range(15):
        client.get(board_path)
        client.get(poll_path(""), hx)
    DATABASE.vacuum(*TABLES)
    before = wait_for_quiet(quiet)
    speed = cpu_calibration(repeats=2)
    meter = meter_for(server)
    meter.start()
    pages = [client.get(board_path) for _ in range(repeats)]
    meter.stop()
    errors = sum(page.status != 200 for page in pages)
    version = board_page(pages[-1].body).version
    polls = [client.get(poll_path(version), hx) for _ in range(repeats + 3)][3:]
    errors += sum(poll.status != 204 for poll in polls)
    client.close()
    times = [page.seconds * 1000 for page in pages]
    poll_times = [poll.seconds * 1000 for poll in polls]
    return {
        "requests": repeats,
        "bytes": len(pages[-1].body),
        "errors": errors,
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "poll_204_p50_ms": percentile(poll_times, 50),
        "poll_204_p95_ms": percentile(poll_times, 95),
        "busy_before_share": round(before, 3),
        "speed_check_ms": speed,
        "cpu": meter.result(repeats),
    }


def healthz_phase(server, repeats: int, quiet: float) -> dict:
    """The cheapest request: /healthz (no session, one SELECT 1), through gunicorn and
    the whole middleware stack: what any request costs on this machine."""
    client = Client(server.port)
    wait_for_quiet(quiet)
    health = [client.get("/healthz").seconds * 1000 for _ in range(repeats)]
    client.close()
    return {"healthz_p50_ms": percentile(health, 50), "healthz_p95_ms": percentile(health, 95)}


def query_counts(stream: dict, seed: int) -> dict:
    """Queries per accepted drag, per WIP refusal and per board page, in-process."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    from boards.selectors import COLUMN_PAGE_SIZE

    by_column, versions = snapshot(stream["id"])
    spec = {"own": by_column, "versions": versions, "visible": COLUMN_PAGE_SIZE}
    spec.update(columns=stream["columns"], small_wip_column=stream["small_wip_column"])
    model = BoardModel(spec, random.Random(seed))
    client = DjangoClient(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="bench-0"))
    counts: dict[str, list[int]] = {"accepted": [], "wip_refusal": [], "accepted_reorder": []}
    statements: list[str] = []
    tries = 0
    while (len(counts["accepted"]) < 10 or not counts["wip_refusal"]) and tries < 300:
        tries += 1
        card, source, target, after, before = model.pick()
        form = model.form(card, target, after, before)
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(
                f"/streams/{stream['slug']}/cards/{card}/move/",
                form,
                headers={"HX-Request": "true"},
            )
        outcome, version = classify(response.status_code, response.content, card)
        if outcome == "wip":
            counts["wip_refusal"].append(len(ctx.captured_queries))
        elif outcome == "ok":
            key = "accepted" if source != target else "accepted_reorder"
            counts[key].append(len(ctx.captured_queries))
            model.moved(card, source, target, after, before, version)
            if key == "accepted" and not statements:
                statements = statement_classes([q["sql"] for q in ctx.captured_queries])
    with CaptureQueriesContext(connection) as ctx:
        client.get(f"/streams/{stream['slug']}/board/")
    board_queries = len(ctx.captured_queries)
    connection.close()
    return {
        "move_queries": sorted(set(counts["accepted"])),
        "reorder_queries": sorted(set(counts["accepted_reorder"])),
        "wip_refusal_queries": sorted(set(counts["wip_refusal"])),
        "board_page_queries": board_queries,
        "move_statements": statements,
    }


def report(results: dict) -> str:
    """The figures side by side per size measured, with the targets; '-' where a figure
    was not measured."""
    sizes = [int(size) for size in results["sizes"]]
    reference = min(sizes)

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

    def judged(values: dict[int, float], targets: dict[int, float], at_least=False):
        """The target cell and the verdict cell for the sizes that have a target."""
        shown = "; ".join(
            f"{'>=' if at_least else '<='} {target:g} at {size}"
            for size, target in targets.items()
            if size in values
        )
        verdicts = "; ".join(
            verdict(values[size], target, at_least=at_least)
            for size, target in targets.items()
            if size in values
        )
        return shown, verdicts

    def row(label, path, targets=None, at_least=False, digits=1):
        values = {size: g(size, *path) for size in sizes}
        return (
            label,
            *(fmt(values[size], digits) for size in sizes),
            *judged(values, targets or {}, at_least),
        )

    def pair(label, path_a, path_b, fmt_b=fmt):
        cells = [f"{fmt(g(size, *path_a))} / {fmt_b(g(size, *path_b))}" for size in sizes]
        return (label, *cells, "", "")

    def one(label, value, target=None, at_least=False, size=None, digits=1):
        """A figure measured at one size only, in that size's column."""
        size = size or (FLOOR_SIZE if FLOOR_SIZE in sizes else sizes[-1])
        cells = [value if s == size else "" for s in sizes]
        cells = [fmt(c, digits) if not isinstance(c, str) else c for c in cells]
        if target is None:
            return (label, *cells, "", "")
        return (label, *cells, *judged({size: value}, {size: target}, at_least))

    def title(text):
        return (text, *([""] * len(sizes)), "", "")

    rows = [title("Move, one client, sequential")]
    rows += [
        row("  p50 (ms)", ("latency", "p50_ms"), {5000: TARGETS["move_p50_ms"]}),
        row("  p95 (ms)", ("latency", "p95_ms"), {5000: TARGETS["move_p95_ms"]}),
        row("  p99 (ms)", ("latency", "p99_ms")),
    ]
    ratios = {s: g(s, "latency", "p50_ms") / g(reference, "latency", "p50_ms") for s in sizes}
    rows.append(
        (
            f"  p50 / p50 at {reference}",
            *(fmt(ratios[s], 2) if s != reference else "" for s in sizes),
            *judged(ratios, {s: TARGETS["p50_ratio"] for s in sizes if s != reference}),
        )
    )
    rows += [
        row("  WIP refusal p50 (ms)", ("latency", "wip_refusal_p50_ms")),
        row("  server CPU per move (ms)", ("latency", "cpu", "server_cpu_ms_per_request")),
        row("  CPU speed check (ms)", ("latency", "speed_check_ms")),
        pair(
            "  machine busy / others' share",
            ("latency", "cpu", "machine_busy_share"),
            ("latency", "cpu", "other_share"),
            fmt_b=pct,
        ),
    ]
    floor = results.get("floor") or {}
    if floor:
        rows.append(title(f"Floor of a drag at {FLOOR_SIZE} cards, in the same blocks"))
        rows += [
            one(
                "  raw transaction p50 / p95 (ms)",
                f"{fmt(floor['raw']['p50_ms'])} / {fmt(floor['raw']['p95_ms'])}",
            ),
            one(
                "  empty POST p50 / p95 (ms)",
                f"{fmt(floor['empty']['p50_ms'])} / {fmt(floor['empty']['p95_ms'])}",
            ),
            one("  floor: raw + empty p50 (ms)", floor["p50_ms"]),
            one(
                "  server CPU: raw / empty (ms)",
                f"{fmt(floor['raw']['server_cpu_ms_per_request'])} / "
                f"{fmt(floor['empty']['server_cpu_ms_per_request'])}",
            ),
        ]
        over = {s: g(s, "latency", "p50_ms") / floor["p50_ms"] for s in sizes}
        rows.append(
            (
                "  move p50 / floor p50",
                *(fmt(over[s], 2) for s in sizes),
                *judged(over, {FLOOR_SIZE: TARGETS["floor_ratio"]}),
            )
        )
    rows.append(title("Moves per second (accepted), concurrent clients"))
    for n in CLIENT_COUNTS:
        targets = {5000: TARGETS["moves_per_s_8"]} if n == 8 else None
        label = f"  {n} client{'s' if n > 1 else ''}"
        rows.append(row(label, ("throughput", n, "moves_per_s"), targets, at_least=True))
    for n in CLIENT_COUNTS:
        rows.append(
            pair(f"  {n}: p50 / p95 (ms)", ("throughput", n, "p50_ms"), ("throughput", n, "p95_ms"))
        )
    for n in CLIENT_COUNTS:
        cells, bad = [], {}
        for size in sizes:
            bad[size] = g(size, "throughput", n, "errors") + g(
                size, "throughput", n, "other_refusals"
            )
            cells.append(
                f"{fmt(g(size, 'throughput', n, 'wip_refusals'), 0)} / {fmt(bad[size], 0)}"
            )
        judgement = ("", "")
        if n == CLIENT_COUNTS[-1]:
            judgement = ("no errors", verdict(sum(bad.values()), 0))
        rows.append((f"  {n}: WIP refusals / errors", *cells, *judgement))
    for n in CLIENT_COUNTS:
        rows.append(
            pair(
                f"  {n}: server CPU/move (ms) / others",
                ("throughput", n, "cpu", "server_cpu_ms_per_request"),
                ("throughput", n, "cpu", "other_share"),
                fmt_b=pct,
            )
        )
    read = results.get("read_load") or {}
    if read:
        size = READ_SIZE
        rows += [
            title(
                f"Read load at {size} cards: {read['movers']} movers, {read['viewers']} "
                f"viewers polling every {read['poll_interval_s']:g} s"
            ),
            one(
                "  moves/s without / with viewers",
                f"{fmt(read['alone']['moves_per_s'])} / {fmt(read['moves_per_s'])}",
                size=size,
            ),
            one(
                "  with / without",
                read["moves_per_s_share"],
                TARGETS["read_share"],
                at_least=True,
                size=size,
                digits=2,
            ),
            one(
                "  move p50 without / with (ms)",
                f"{fmt(read['alone']['p50_ms'])} / {fmt(read['p50_ms'])}",
                size=size,
            ),
            one(
                "  move p95 without / with (ms)",
                f"{fmt(read['alone']['p95_ms'])} / {fmt(read['p95_ms'])}",
                size=size,
            ),
            one("  move p95 with viewers (ms)", read["p95_ms"], TARGETS["read_p95_ms"], size=size),
            (
                "  errors (moves and polls)",
                *(
                    fmt(read["errors"] + read["other_refusals"] + read["alone"]["errors"], 0)
                    if s == size
                    else ""
                    for s in sizes
                ),
                "no errors",
                verdict(read["errors"] + read["other_refusals"] + read["alone"]["errors"], 0),
            ),
            one("  polls (per second)", f"{read['polls']} ({fmt(read['polls_per_s'])})", size=size),
            one(
                "  polls: nothing / delta / board",
                " / ".join(str(read["poll_kinds"][k]) for k in ("nothing", "delta", "board")),
                size=size,
            ),
            one("  share of polls with the whole board", pct(read["whole_board_share"]), size=size),
            one("  bytes per poll (mean)", read["bytes_per_poll"], size=size, digits=0),
            one(
                "  poll p50 / p95 (ms)",
                f"{fmt(read['poll_p50_ms'])} / {fmt(read['poll_p95_ms'])}",
                size=size,
            ),
            one(
                "  server CPU per poll, moves' taken out (ms)",
                read["server_cpu_ms_per_poll"],
                size=size,
            ),
            one(
                "  machine busy / others' share, without / with",
                f"{fmt(read['alone']['cpu']['machine_busy_share'])} / "
                f"{pct(read['alone']['cpu']['other_share'])}, "
                f"{fmt(read['cpu']['machine_busy_share'])} / {pct(read['cpu']['other_share'])}",
                size=size,
            ),
        ]
    rows += [
        title("Board page (full GET, one client)"),
        row(
            "  p50 (ms)",
            ("page", "p50_ms"),
            {5000: TARGETS["board_ms"], 50_000: TARGETS["board_ms_50000"]},
        ),
        row("  p95 (ms)", ("page", "p95_ms"), {5000: TARGETS["board_ms"]}),
        row("  server CPU per page (ms)", ("page", "cpu", "server_cpu_ms_per_request")),
        row("  CPU speed check (ms)", ("page", "speed_check_ms")),
        pair(
            "  machine busy / others' share",
            ("page", "cpu", "machine_busy_share"),
            ("page", "cpu", "other_share"),
            fmt_b=pct,
        ),
        ("  size (kB)", *(fmt(g(s, "page", "bytes") / 1024) for s in sizes), "", ""),
        row(
            "  poll, nothing new (204) p50 (ms)",
            ("page", "poll_204_p50_ms"),
            {50_000: TARGETS["poll_ms_50000"]},
        ),
    ]
    if results.get("healthz"):
        rows.append(one("GET /healthz p50 (ms)", results["healthz"]["healthz_p50_ms"]))
    rows.append(row("Setup: loading the stream (s)", ("load_s",), digits=2))
    rows.append(title("Queries per request (in-process)"))
    for label, key in (
        ("  drag to another column", "move_queries"),
        ("  reorder in a column", "reorder_queries"),
        ("  WIP refusal", "wip_refusal_queries"),
        ("  board page", "board_page_queries"),
    ):
        values = [g(size, "queries", key) for size in sizes]
        cells = [
            ", ".join(map(str, v))
            if isinstance(v, list)
            else "-"
            if isinstance(v, float)
            else str(v)
            for v in values
        ]
        rows.append((label, *cells, "", ""))
    header = ("", *(f"{size} cards" for size in sizes), "target", "")
    return text_table(rows, header)


def statements_beside(results: dict) -> list[str]:
    """The statements of one drag (in-process) beside the floor's transaction, and the
    writes a drag makes that the floor does not (it should make none)."""
    floor = results.get("floor") or {}
    move = next(
        (e["queries"]["move_statements"] for e in results["sizes"].values() if "queries" in e), []
    )
    if not floor or not move:
        return []
    lines = [
        f"Statements of one drag ({len(move)}): " + "; ".join(move),
        f"Statements of the floor's transaction ({len(floor['raw_statements'])}): "
        + "; ".join(floor["raw_statements"]),
    ]
    writes = ("INSERT", "UPDATE", "DELETE")
    extra = sorted(
        {s for s in move if s.startswith(writes)}
        - {s for s in floor["raw_statements"] if s.startswith(writes)}
    )
    if extra:
        lines.append("WARNING: a drag writes what the floor does not: " + ", ".join(extra))
    return lines


def flush_cache(url: str) -> None:
    """Empty the run's cache database: nothing a previous run kept is read back."""
    import redis

    redis.Redis.from_url(url).flushdb()


def main() -> int:
    parser = arguments(__doc__, seed=20260101, quiet_wait="default 5, --quick 2")
    parser.add_argument("--moves", type=int, default=None, help="sequential moves (default 1000)")
    parser.add_argument("--quick", action="store_true", help="a short run to check the bench")
    parser.add_argument(
        "--seconds", type=float, default=None, help="per concurrent run (default 10)"
    )
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="gthread")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="per worker, gthread only")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, LOADED)),
        help=f"which streams to measure, among {', '.join(map(str, SIZES))} (default "
        f"{','.join(map(str, LOADED))}; those two are always loaded, 50,000 only when named)",
    )
    parser.add_argument(
        "--viewers",
        type=int,
        default=50,
        help=f"viewers polling the {READ_SIZE}-card board beside {READ_MOVERS} movers "
        "(default 50; 0: no read-load phase)",
    )
    parser.add_argument(
        "--read-seconds",
        type=float,
        default=None,
        help="each half of the read-load phase (default 20, --quick 6)",
    )
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="gunicorn reaches PostgreSQL through a local PgBouncer in transaction pooling "
        "(Debian's: apt-get install -y pgbouncer)",
    )
    parser.add_argument(
        "--pool-size", type=int, default=20, help="PgBouncer's server connections (default 20)"
    )
    parser.add_argument(
        "--cache-url",
        default="redis://127.0.0.1:6379/5",
        help="the cache gunicorn's processes share, emptied first (default %(default)s)",
    )
    args = parser.parse_args()
    moves = args.moves or (200 if args.quick else 1000)
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    read_seconds = args.read_seconds or (6.0 if args.quick else 20.0)
    page_repeats = 10 if args.quick else 30
    try:
        measured = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        parser.error(f"--sizes: numbers among {SIZES}, separated by commas")
    if not set(measured) <= set(SIZES):
        parser.error(f"--sizes: choose among {SIZES}")
    if args.viewers < 0 or args.pool_size < 1:
        parser.error("--viewers is 0 or more, --pool-size 1 or more")
    loaded = sorted({*LOADED, *measured})
    quiet = args.quiet_wait if args.quiet_wait is not None else (2.0 if args.quick else 5.0)

    began = time.time()
    # Production's cache (Redis, shared by the gunicorn processes): viewers share the
    # published board version and its rendered deltas through it.
    flush_cache(args.cache_url)
    env = environment(DATABASE, web=True, secret=secrets.token_urlsafe(50), cache=args.cache_url)
    log(f"re-creating database {DATABASE.name}")
    DATABASE.recreate()
    setup_django(env)
    migrate()
    collectstatic()
    log(f"loading streams of {', '.join(map(str, loaded))} open cards")
    streams = build_streams(args.seed, loaded, args.viewers)
    log("loaded in " + ", ".join(f"{streams[s]['load_s']} s ({s})" for s in loaded))
    viewer_auths = viewer_sessions(args.viewers)
    from django.db import connections

    connections.close_all()
    results: dict = {
        "machine": machine(DATABASE),
        "config": {
            "worker_class": args.worker_class,
            "workers": args.workers,
            "threads": args.threads if args.worker_class == "gthread" else 1,
            "moves": moves,
            "seconds": seconds,
            "read_seconds": read_seconds,
            "viewers": args.viewers,
            "page_repeats": page_repeats,
            "quiet_wait_s": quiet,
            "seed": args.seed,
            "pgbouncer": args.pgbouncer,
        },
        "sizes": {},
    }
    with contextlib.ExitStack() as stack:
        database_url = DATABASE.url
        if args.pgbouncer:
            pooler = stack.enter_context(PgBouncer(DATABASE, pool_size=args.pool_size))
            ALSO_METERED["pgbouncer"] = pooler.pid
            database_url = pooler.url
            env = {**env, "DATABASE_URL": pooler.url, "DATABASE_POOLER": "transaction"}
            results["config"]["pooler"] = pooler.description
            log(f"started {pooler.description} on port {pooler.port}")
        server = stack.enter_context(
            Gunicorn(
                env,
                workers=args.workers,
                worker_class=args.worker_class,
                threads=args.threads,
                log_name="board_bench-gunicorn",
            )
        )
        log(f"started {server.description}")
        log("logging the clients in through the login form")
        first_board = f"/streams/{streams[loaded[0]]['slug']}/board/"
        auths = []
        for i in range(max(CLIENT_COUNTS)):
            client = Client(server.port)
            auths.append(client.log_in(f"bench-{i}", PASSWORD, first_board))
            client.close()
        log("GET /healthz")
        results["healthz"] = healthz_phase(server, 200, quiet)
        log(
            f"{' and '.join(map(str, measured))} cards: {moves} sequential moves each, "
            f"and the floor at {FLOOR_SIZE}"
        )
        floor = Floor(streams[FLOOR_SIZE], server, database_url, auths[0], args.seed)
        latencies = latency_phases(streams, measured, server, auths, moves, args.seed, quiet, floor)
        results["floor"] = latencies.pop("floor")
        for size in measured:
            stream = streams[size]
            entry = results["sizes"][size] = {
                "latency": latencies[size],
                "throughput": [],
                "load_s": stream["load_s"],
            }
            for n in CLIENT_COUNTS:
                log(f"{size} cards: {n} client(s) for {seconds:.0f}s")
                phase = throughput_phase(
                    stream, server, auths, n, seconds, args.seed + size + n, quiet
                )
                entry["throughput"].append(phase)
            log(f"{size} cards: board page x{page_repeats}")
            entry["page"] = page_phase(stream, server, auths[0], page_repeats, quiet)
            log(f"{size} cards: queries per request (in-process)")
            entry["queries"] = query_counts(stream, args.seed + size + 99)
        if args.viewers:
            log(
                f"{READ_SIZE} cards: {READ_MOVERS} movers for {read_seconds:.0f}s, then with "
                f"{args.viewers} viewers"
            )
            results["read_load"] = read_load_phase(
                streams[READ_SIZE], server, auths, viewer_auths, read_seconds, args.seed + 7, quiet
            )

    errors, disturbed = results["floor"]["errors"], []
    for sample in results["floor"]["samples"]:
        print(f"  floor: {sample}")
    for size in measured:
        entry = results["sizes"][size]
        phases = [entry["latency"], *entry["throughput"]]
        errors += sum(p["errors"] + p["other_refusals"] for p in phases) + entry["page"]["errors"]
        for phase in phases:
            for sample in phase["samples"]:
                print(f"  {size} cards: {sample}")
        named = [("sequential moves", entry["latency"]), ("board page", entry["page"])]
        named += [(f"{t['clients']} clients", t) for t in entry["throughput"]]
        disturbed += [
            f"{size} cards {name} ({pct(phase['cpu']['other_share'])})"
            for name, phase in named
            if phase["cpu"]["other_share"] > 0.10
        ]
    read = results.get("read_load")
    if read:
        errors += read["errors"] + read["other_refusals"]
        errors += read["alone"]["errors"] + read["alone"]["other_refusals"]
        for sample in read["samples"] + read["alone"]["samples"]:
            print(f"  read load: {sample}")
        for name, phase in (("read load, movers alone", read["alone"]), ("read load", read)):
            if phase["cpu"]["other_share"] > 0.10:
                disturbed.append(f"{name} ({pct(phase['cpu']['other_share'])})")
    results["errors"] = errors
    results["machine"]["calibration_ms_end"] = cpu_calibration()
    results["elapsed_s"] = round(time.time() - began, 1)
    suffix = f"-{args.worker_class}-w{args.workers}" + ("-pgbouncer" if args.pgbouncer else "")
    save_results("board_bench", results, suffix)

    m = results["machine"]
    print()
    print(
        f"{m['cores']} cores, {m['cpu']}; PostgreSQL {m['postgres']} (autovacuum "
        f"{m['autovacuum']}; tables vacuumed before each phase); Python {m['python']}, "
        f"Django {m['django']}, gunicorn {m['gunicorn']}, {server.description}"
        + (f"; through {results['config']['pooler']}" if args.pgbouncer else "")
    )
    print(
        f"{moves} sequential moves per size; {seconds:.0f}s per concurrent run; "
        f"read load {read_seconds:.0f}s alone and {read_seconds:.0f}s with viewers; "
        f"board page x{page_repeats}; clients on the same machine"
    )
    print(
        f"CPU speed check (1M-iteration Python loop, CPU ms, best of 5; per phase best of 2; "
        f"the shared host's speed drifts): {m['calibration_ms_start']} ms at the start, "
        f"{m['calibration_ms_end']} ms at the end"
    )
    print(
        "'machine busy': share of both cores in use during the phase; 'others': the share "
        "used by processes that are not the bench's (gunicorn, PgBouncer, its PostgreSQL "
        "backends, the clients). Figures with others above ~10% are disturbed."
    )
    print()
    print(report(results))
    print()
    for line in statements_beside(results):
        print(line)
    if disturbed:
        print("WARNING: other load took over 10% of the machine during: " + ", ".join(disturbed))
        print("         their figures are pessimistic; run again on a quiet machine")
    print(f"raw results: {results['json']}; {results['elapsed_s']}s in all")
    if errors:
        print(f"FAILED: {errors} error(s) besides WIP refusals", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
