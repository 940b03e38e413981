#!/usr/bin/env python
"""Board benchmark: card moves and the board page, on PostgreSQL through gunicorn.

    .venv/bin/python bench/board_bench.py [--moves N] [--quick] [--sizes 5000]
        [--worker-class gthread|sync] [--workers 4] [--threads 2] [--quiet-wait S]

A script that prints figures, not a test, on the harness in bench/harness/. It:

1. Re-creates the database ``vsm_bench_board``, migrates it, runs ``collectstatic``.
2. Builds one value stream per size (100 and 5,000 open cards) with
   ``boards.services.value_stream_create`` and bulk-loads the cards (``Card`` rows and
   their 'enter' ``CardMove`` rows, by the system actor "bench"); only the setup takes
   that shortcut: every measured move is an HTTP request through gunicorn, the view
   and ``boards.services.card_move``.
3. Starts gunicorn (default gthread, 4 workers x 2 threads; broker ``memory://``, eager
   tasks off, so no request runs or waits on a task) and logs the bench users in
   through the login form.
4. Sends what a drag sends (``board.js``): POST ``to_column``, ``after``, ``before``,
   ``version``, ``dragged=1`` with ``HX-Request`` and ``X-CSRFToken``. Each client keeps
   a model of the board: it drags one of the first cards of a column (what a column
   shows), names the neighbours at the drop point and the card's version, and reads the
   new version from the answer (parsed with tests/pages.py). In a concurrent run each
   client owns a disjoint share of the cards, so no drag is stale.
5. One client: warm-up, then N sequential moves per size, the sizes taking turns in
   blocks of 100 -> p50/p95/p99. Then 1, 4 and 8 concurrent client processes for a
   fixed time -> moves/s, errors, WIP refusals.
6. The board page (full GET) and the 'nothing changed' poll; /healthz as the floor.
7. Queries per request, counted in-process with ``CaptureQueriesContext``.

Before each phase the tables are vacuumed (autovacuum is off on our PostgreSQL) and the
bench waits up to ``--quiet-wait`` s for an idle machine. Each phase records the CPU of
gunicorn, of its PostgreSQL backends, of the clients and of everything else.

One column (the first cycle's last) has a WIP limit of 5 and holds 5 cards that are
never dragged out; some drags aim at it, and their refusals (200 with the "is at its
WIP limit" toast) are counted apart. Any other refusal, non-200 answer or transport
failure is an error, and the script exits 1. Raw results go to
``bench/results/board_bench-<time>.json``; docs/performance.md reads the figures.
"""

from __future__ import annotations

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

from harness import arguments, log, percentile
from harness.cpu import CpuMeter, cpu_calibration, machine, wait_for_quiet
from harness.db import Database, collectstatic, environment, migrate, setup_django
from harness.history import seed_actor_columns
from harness.processes import Gunicorn
from harness.report import fmt, pct, save_results, text_table, verdict
from harness.web import Client, board_page, card_version

DATABASE = Database("vsm_bench_board")
TABLES = ("boards_card", "boards_cardmove", "boards_column")
SIZES = (100, 5000)
CLIENT_COUNTS = (1, 4, 8)
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
}


def build_streams(seed: int) -> dict[int, dict]:
    """Users, one stream per size, its columns' WIP limits and its open cards."""
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
    seeded_by = seed_actor_columns(CardMove)
    now = timezone.now()
    streams: dict[int, dict] = {}
    for size in SIZES:
        with transaction.atomic():
            stream = value_stream_create(
                name=f"Bench {size}",
                customer_market="Benchmark",
                manager=manager,
                actor=SystemActor("bench"),
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
            CardMove.objects.bulk_create(
                (
                    CardMove(
                        value_stream=stream,
                        card=card,
                        from_column=None,
                        to_column=card.column,
                        moved_at=card.created_at,
                        kind=MoveKind.ENTER,
                        channel_id=card.channel_id,
                        estimated_value=card.estimated_value,
                        **seeded_by,
                    )
                    for card in cards
                ),
                batch_size=1000,
            )
        streams[size] = {
            "id": stream.pk,
            "slug": stream.slug,
            "columns": [(c.pk, c.cycle_id) for c in columns],
            "small_wip_column": small.pk,
        }
    connection.close()
    DATABASE.vacuum(*TABLES)
    return streams


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


def meter_for(server: Gunicorn) -> CpuMeter:
    return CpuMeter({"gunicorn": server.pid}, DATABASE.backend_pids, start=False)


def latency_phases(streams, sizes, server, auths, moves: int, seed: int, quiet: float):
    """One client, sequential moves, the sizes measured in alternating blocks: taking
    turns puts both under the same machine conditions, so their ratio is fair."""
    for size in sizes:  # warm every worker up (templates, connections) on both streams
        (warm,) = client_specs(streams[size], server.port, auths, 1, seed + size)
        run_clients([{**warm, "count": 60}])
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


def floor_phase(server, repeats: int, quiet: float) -> dict:
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

    def row(label, path, target=None, at_least=False):
        values = [g(size, *path) for size in SIZES]
        shown = "" if target is None else f"{'>=' if at_least else '<='} {target:g}"
        return (
            label,
            *(fmt(v) for v in values),
            shown,
            verdict(values[1], target, at_least=at_least),
        )

    def pair(label, path_a, path_b, fmt_b=fmt):
        cells = [f"{fmt(g(size, *path_a))} / {fmt_b(g(size, *path_b))}" for size in SIZES]
        return (label, *cells, "", "")

    ratio = g(big, "latency", "p50_ms") / g(small, "latency", "p50_ms")
    rows = [
        ("Move, one client, sequential", "", "", "", ""),
        row("  p50 (ms)", ("latency", "p50_ms"), TARGETS["move_p50_ms"]),
        row("  p95 (ms)", ("latency", "p95_ms"), TARGETS["move_p95_ms"]),
        row("  p99 (ms)", ("latency", "p99_ms")),
        (
            f"  p50 at {big} / p50 at {small}",
            "",
            fmt(ratio, 2),
            f"<= {TARGETS['p50_ratio']}",
            verdict(ratio, TARGETS["p50_ratio"]),
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
        target = TARGETS["moves_per_s_8"] if n == 8 else None
        label = f"  {n} client{'s' if n > 1 else ''}"
        rows.append(row(label, ("throughput", n, "moves_per_s"), target, at_least=True))
    for n in CLIENT_COUNTS:
        rows.append(
            pair(f"  {n}: p50 / p95 (ms)", ("throughput", n, "p50_ms"), ("throughput", n, "p95_ms"))
        )
    for n in CLIENT_COUNTS:
        cells = []
        for size in SIZES:
            bad = g(size, "throughput", n, "errors") + g(size, "throughput", n, "other_refusals")
            cells.append(f"{fmt(g(size, 'throughput', n, 'wip_refusals'), 0)} / {fmt(bad, 0)}")
        bad = g(big, "throughput", n, "errors") + g(big, "throughput", n, "other_refusals")
        last = n == CLIENT_COUNTS[-1]
        rows.append(
            (
                f"  {n}: WIP refusals / errors",
                *cells,
                "no errors" if last else "",
                verdict(bad, 0) if last else "",
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
        row("  p50 (ms)", ("page", "p50_ms"), TARGETS["board_ms"]),
        row("  p95 (ms)", ("page", "p95_ms"), TARGETS["board_ms"]),
        row("  server CPU per page (ms)", ("page", "cpu", "server_cpu_ms_per_request")),
        row("  CPU speed check (ms)", ("page", "speed_check_ms")),
        pair(
            "  machine busy / others' share",
            ("page", "cpu", "machine_busy_share"),
            ("page", "cpu", "other_share"),
            fmt_b=pct,
        ),
        ("  size (kB)", *(fmt(g(s, "page", "bytes") / 1024) for s in SIZES), "", ""),
        row("  poll, nothing new (204) p50 (ms)", ("page", "poll_204_p50_ms")),
    ]
    if results.get("floor"):
        rows.append(
            ("Floor: GET /healthz p50 (ms)", fmt(results["floor"]["healthz_p50_ms"]), "", "", "")
        )
    rows.append(("Queries per request (in-process)", "", "", "", ""))
    for label, key in (
        ("  drag to another column", "move_queries"),
        ("  reorder in a column", "reorder_queries"),
        ("  WIP refusal", "wip_refusal_queries"),
        ("  board page", "board_page_queries"),
    ):
        values = [g(size, "queries", key) for size in SIZES]
        cells = [
            ", ".join(map(str, v))
            if isinstance(v, list)
            else "-"
            if isinstance(v, float)
            else str(v)
            for v in values
        ]
        rows.append((label, *cells, "", ""))
    return text_table(rows, ("", f"{small} cards", f"{big} cards", f"target at {big}", ""))


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
        default=",".join(map(str, SIZES)),
        help="which of the streams to measure (both are always loaded), e.g. 5000",
    )
    args = parser.parse_args()
    moves = args.moves or (200 if args.quick else 1000)
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    page_repeats = 10 if args.quick else 30
    measured = [int(size) for size in args.sizes.split(",")]
    if not set(measured) <= set(SIZES):
        parser.error(f"--sizes: choose among {SIZES}")
    quiet = args.quiet_wait if args.quiet_wait is not None else (2.0 if args.quick else 5.0)

    began = time.time()
    env = environment(DATABASE, web=True, secret=secrets.token_urlsafe(50))
    log(f"re-creating database {DATABASE.name}")
    DATABASE.recreate()
    setup_django(env)
    migrate()
    collectstatic()
    log(f"loading streams of {', '.join(map(str, SIZES))} open cards")
    streams = build_streams(args.seed)
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
            "page_repeats": page_repeats,
            "quiet_wait_s": quiet,
            "seed": args.seed,
        },
        "sizes": {},
    }
    server = Gunicorn(
        env,
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.threads,
        log_name="board_bench-gunicorn",
    )
    log(f"started {server.description}")
    with server:
        log("logging the clients in through the login form")
        first_board = f"/streams/{streams[SIZES[0]]['slug']}/board/"
        auths = []
        for i in range(max(CLIENT_COUNTS)):
            client = Client(server.port)
            auths.append(client.log_in(f"bench-{i}", PASSWORD, first_board))
            client.close()
        log("request floor: /healthz")
        results["floor"] = floor_phase(server, 200, quiet)
        log(f"{' and '.join(map(str, measured))} cards: {moves} sequential moves each")
        latencies = latency_phases(streams, measured, server, auths, moves, args.seed, quiet)
        for size in measured:
            stream = streams[size]
            entry = results["sizes"][size] = {"latency": latencies[size], "throughput": []}
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

    errors, disturbed = 0, []
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
    results["errors"] = errors
    results["machine"]["calibration_ms_end"] = cpu_calibration()
    results["elapsed_s"] = round(time.time() - began, 1)
    save_results("board_bench", results, f"-{args.worker_class}")

    m = results["machine"]
    print()
    print(
        f"{m['cores']} cores, {m['cpu']}; PostgreSQL {m['postgres']} (autovacuum "
        f"{m['autovacuum']}; tables vacuumed before each phase); Python {m['python']}, "
        f"Django {m['django']}, gunicorn {m['gunicorn']}, {server.description}"
    )
    print(
        f"{moves} sequential moves per size; {seconds:.0f}s per concurrent run; "
        f"board page x{page_repeats}; clients on the same machine"
    )
    print(
        f"CPU speed check (1M-iteration Python loop, CPU ms, best of 5; per phase best of 2; "
        f"the shared host's speed drifts): {m['calibration_ms_start']} ms at the start, "
        f"{m['calibration_ms_end']} ms at the end"
    )
    print(
        "'machine busy': share of both cores in use during the phase; 'others': the share "
        "used by processes that are not the bench's (gunicorn, its PostgreSQL backends, "
        "the clients). Figures with others above ~10% are disturbed."
    )
    print()
    print(report(results))
    print()
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
