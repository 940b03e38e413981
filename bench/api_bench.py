#!/usr/bin/env python
"""API benchmark (issue 15): a card move through the REST API against the board's drag.

    .venv/bin/python bench/api_bench.py [--moves 600] [--quick] [--extras 20]
        [--workers 4] [--threads 2] [--cache-url redis://127.0.0.1:6379/7]

A script that prints figures, not a test, on the harness in bench/harness/. It:

1. Re-creates the database ``vsm_bench_api``, migrates it, runs ``collectstatic``.
2. Builds one value stream of 5,000 open cards with board_bench's loader
   (``board_bench.build_streams``: ``value_stream_create``, then the cards and their
   'enter' moves by COPY; its WIP limits: one full column of 5, the other limited
   columns at 10,000), and makes an API token for it with
   ``api.services.api_token_create`` as its manager.
3. Starts gunicorn (production settings, default gthread 4 workers x 2 threads; the
   cache on Redis, ``--cache-url``, emptied first; broker ``memory://``, eager tasks
   off). The API's rate limit (``VSM_API_RATE``) is raised to 1,000,000/min so the
   sequential client is never throttled; the throttle still counts every request in
   Redis, as in production.
4. Shares the stream's open cards out in two (board_bench's ``client_specs``): the
   htmx client drags the cards of one share, the API client moves the other's. Both
   pick their moves with the same model (board_bench's ``BoardModel``: one of the first
   25 cards of a column, another column of its cycle or a reorder, neighbours named at
   the drop point), never into the full column. The htmx client logs in through the
   login form and sends what ``board.js`` sends (form POST ``to_column``, ``after``,
   ``before``, ``version``, ``dragged=1`` with ``HX-Request`` and ``X-CSRFToken``) and
   reads the new version from the card fragment; the API client sends
   ``POST /api/v1/streams/{id}/cards/{card}/move/`` with ``Authorization: Bearer`` and
   JSON ``to_column_id``, ``version``, ``after_card_id``, ``before_card_id`` and reads
   ``card.version`` from the answer.
5. Measures in interleaved blocks of 100, so machine noise hits both alike: per block,
   100 sequential htmx drags and 100 sequential API moves (their order alternating from
   block to block), then ``--extras`` API prospect creations (``POST
   .../prospects/``) and ``--extras`` first pages of the card list (``GET
   .../cards/?outcome=open``, 50 cards). Each sub-phase opens a fresh keep-alive connection and is
   metered (``harness.cpu.CpuMeter``: gunicorn and its PostgreSQL backends, this
   process, everything else). -> p50/p95/p99 of each, API p50 / htmx p50, server CPU
   per request, the others' share of the machine.
6. Queries per request, counted in-process with ``CaptureQueriesContext`` (Django's
   test client on the same settings): a drag, an API move, a prospect, a list page;
   then 40 moves of each kind under cProfile, in 4 rounds taking turns, split into
   authentication, the view, the service (``card_move``) and the answer
   (``harness.sql.profiled``).

Every answer must be 2xx (200 with the new version for a move, 201 for a prospect);
anything else, a refusal toast or a transport failure is an error, and then the script
exits 1. Raw results go to ``bench/results/api_bench-<time>.json``; docs/performance.md
("API: a move through the REST API against the board's drag") reads the figures.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import re
import secrets
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable

import board_bench
from board_bench import BoardModel, classify, client_specs, flush_cache
from harness import arguments, log, percentile
from harness.cpu import CpuMeter, cpu_calibration, machine, wait_for_quiet
from harness.db import Database, collectstatic, environment, migrate, setup_django
from harness.floor import statement_classes
from harness.processes import Gunicorn
from harness.report import fmt, pct, save_results, text_table
from harness.sql import profiled
from harness.web import Answer, Client

DATABASE = Database("vsm_bench_api")
# board_bench's loader, client shares and snapshots use its module's database: ours.
board_bench.DATABASE = DATABASE
SIZE = 5000
BLOCK = 100  # moves per block and kind; the kinds take turns block by block
API_RATE = "1000000/min"  # never reached by one sequential client; still counted
PHASES = ("htmx", "api", "create", "list")
# Where a move's time goes in-process (cProfile, cumulative): (path suffix, function,
# meaning) per kind. Profiling slows Python more than waits on PostgreSQL: read shares.
PROFILED = {
    "htmx": (
        ("django/core/handlers/base.py", "get_response", "the whole request in Django"),
        ("django/contrib/sessions/backends/db.py", "load", "session read"),
        ("boards/views/cards.py", "card_move", "the view"),
        ("boards/services/moves.py", "card_move", "the service (card_move)"),
        ("boards/views/common.py", "move_done_response", "the answer (HTML fragments)"),
    ),
    "api": (
        ("django/core/handlers/base.py", "get_response", "the whole request in Django"),
        ("api/authentication.py", "authenticate", "token look-up and stamp"),
        ("api/throttling.py", "allow_request", "rate count (Redis)"),
        ("api/views/cards.py", "post", "the view"),
        ("boards/services/moves.py", "card_move", "the service (card_move)"),
        ("api/views/cards.py", "_move_response", "the answer (card re-read, serializer)"),
        ("api/serializers.py", "get_links", "the answer's links (3 reverse())"),
        ("rest_framework/response.py", "rendered_content", "JSON rendering"),
    ),
}
PROFILED_MOVES = 40
PROFILE_ROUNDS = 4
LABELS = {
    "htmx": "htmx drag (board.js)",
    "api": "API move",
    "create": "API create prospect",
    "list": "API card list, first page",
}


class Board(BoardModel):
    """board_bench's model of one client's cards, never dropping into the full column
    (a WIP refusal would be an answer of another kind, not a move)."""

    def pick(self):
        for _ in range(100):
            drag = super().pick()
            if drag is None or drag[2] != self.small:
                return drag
        return None


def setup(seed: int) -> dict:
    """The stream (board_bench's loader), its API token, its channels, and the two
    clients' shares of its cards."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from api.services import api_token_create
    from vsm.actors import UserActor
    from vsm.models import Channel

    stream = board_bench.build_streams(seed, [SIZE], viewers=0)[SIZE]
    manager = get_user_model().objects.get(username="bench-manager")
    issued = api_token_create(stream_id=stream["id"], name="api bench", actor=UserActor(manager))
    channels = list(
        Channel.objects.filter(value_stream_id=stream["id"])
        .order_by("id")
        .values_list("id", flat=True)
    )
    # Port and sessions come later: the shares are all that is used here.
    specs = client_specs(stream, 0, [{}, {}], 2, seed)
    connection.close()
    return {**stream, "token": issued.secret, "channels": channels, "shares": specs}


class Phases:
    """The four kinds of request, each with its own client, model and records."""

    def __init__(self, stream: dict, port: int, session: dict, seed: int) -> None:
        self.stream = stream
        self.port = port
        self.htmx_client = Client(port, session)
        self.api_client = Client(port, {"Authorization": f"Bearer {stream['token']}"})
        self.models = {
            "htmx": Board(stream["shares"][0], random.Random(seed)),
            "api": Board(stream["shares"][1], random.Random(seed + 1)),
        }
        self.rng = random.Random(seed + 2)
        self.hx = {
            "HX-Request": "true",
            "HX-Current-URL": f"http://127.0.0.1:{port}/streams/{stream['slug']}/board/",
        }
        self.api_base = f"/api/v1/streams/{stream['id']}"
        self.created = 0
        self.records = {
            kind: {
                "ms": [],
                "bytes": [],
                "errors": 0,
                "warmup_errors": 0,
                "samples": [],
                "retried": 0,
            }
            for kind in PHASES
        }
        self.kinds = {kind: {"crossed": 0, "reordered": 0} for kind in ("htmx", "api")}
        self.cpu: dict[str, list[dict]] = {kind: [] for kind in PHASES}

    # One request of each kind: (ok, answer, what was sent).

    def _send(self, client: Client, method: str, path: str, body: str | None, headers: dict):
        try:
            return client.send(method, path, body, headers)
        except (OSError, http.client.HTTPException) as error:
            client.close()
            return Answer(0, repr(error).encode(), math.nan)

    def _drag(self, kind: str) -> tuple[bool, Answer, str]:
        model = self.models[kind]
        drag = model.pick()
        if drag is None:
            raise SystemExit(f"{kind}: no card left to move")
        card, source, target, after, before = drag
        if kind == "htmx":
            form = model.form(card, target, after, before)
            path = f"/streams/{self.stream['slug']}/cards/{card}/move/"
            answer = self._send(
                self.htmx_client,
                "POST",
                path,
                urllib.parse.urlencode(form),
                {"Content-Type": "application/x-www-form-urlencoded", **self.hx},
            )
            outcome, version = classify(answer.status, answer.body, card)
            ok = outcome == "ok"
        else:
            body = {
                "to_column_id": target,
                "version": model.versions[card],
                "after_card_id": after,
                "before_card_id": before,
            }
            path = f"{self.api_base}/cards/{card}/move/"
            answer = self._send(
                self.api_client,
                "POST",
                path,
                json.dumps(body),
                {"Content-Type": "application/json", "Accept": "application/json"},
            )
            version = None
            if answer.status == 200:
                with_card = json.loads(answer.body).get("card") or {}
                version = with_card.get("version")
            ok = version is not None
        if ok:
            model.moved(card, source, target, after, before, version)
            self.kinds[kind]["crossed" if source != target else "reordered"] += 1
        return ok, answer, path

    def _create(self) -> tuple[bool, Answer, str]:
        n = self.created
        self.created += 1
        body = {
            "person_name": f"Web form {n}",
            "company": f"Form Company {n % 313}",
            "email": f"webform{n}@example.com",
            "channel_id": self.rng.choice(self.stream["channels"]),
            "estimated_value": self.rng.randrange(0, 20_000),
            "notes": "Asked for a demo on the pricing page.",
        }
        path = f"{self.api_base}/prospects/"
        answer = self._send(
            self.api_client,
            "POST",
            path,
            json.dumps(body),
            {"Content-Type": "application/json", "Accept": "application/json"},
        )
        return answer.status == 201, answer, path

    def _list(self) -> tuple[bool, Answer, str]:
        path = f"{self.api_base}/cards/?outcome=open"
        answer = self._send(self.api_client, "GET", path, None, {"Accept": "application/json"})
        ok = answer.status == 200 and len(json.loads(answer.body).get("results", ())) > 0
        return ok, answer, path

    def one(self, kind: str) -> tuple[bool, Answer, str]:
        if kind in ("htmx", "api"):
            return self._drag(kind)
        return self._create() if kind == "create" else self._list()

    def run(self, kind: str, count: int, meter: CpuMeter | None = None) -> None:
        """``count`` requests of ``kind`` in a row, on a fresh connection; recorded and
        metered when ``meter`` is given (else a warm-up)."""
        for client in (self.htmx_client, self.api_client):
            client.close()
        record = self.records[kind]
        if meter is not None:
            meter.start()
        results = [self.one(kind) for _ in range(count)]
        if meter is not None:
            meter.stop()
        for ok, answer, path in results:
            if meter is None:
                if not ok:
                    record["warmup_errors"] += 1
                    self._sample(record, kind, answer, path)
                continue
            record["retried"] += answer.retried
            if ok:
                record["ms"].append(answer.seconds * 1000)
                record["bytes"].append(len(answer.body))
            else:
                record["errors"] += 1
                self._sample(record, kind, answer, path)
        if meter is not None:
            self.cpu[kind].append(meter.result(count))

    @staticmethod
    def _sample(record: dict, kind: str, answer: Answer, path: str) -> None:
        if len(record["samples"]) < 3:
            text = re.sub(rb"\s+", b" ", answer.body)[:400].decode(errors="replace")
            record["samples"].append(f"{kind} status={answer.status} {path}: {text}")

    def close(self) -> None:
        self.htmx_client.close()
        self.api_client.close()


def meter_for(server: Gunicorn) -> CpuMeter:
    return CpuMeter({"gunicorn": server.pid}, DATABASE.backend_pids, start=False)


def combined_cpu(cpus: list[dict], requests: int) -> dict:
    """The blocks' CPU figures of one kind, summed over its sub-phases."""
    keys = ("wall_s", "gunicorn_cpu_s", "postgres_cpu_s", "python_cpu_s", "other_cpu_s")
    cpu = {key: round(sum(c[key] for c in cpus), 3) for key in keys}
    capacity = cpu["wall_s"] * (os.cpu_count() or 1)
    busy = sum(cpu[key] for key in keys[1:])
    cpu["machine_busy_share"] = round(busy / capacity, 3) if capacity else math.nan
    cpu["other_share"] = round(cpu["other_cpu_s"] / capacity, 3) if capacity else math.nan
    cpu["server_cpu_ms_per_request"] = round(
        1000 * (cpu["gunicorn_cpu_s"] + cpu["postgres_cpu_s"]) / max(requests, 1), 2
    )
    return cpu


def measure(phases: Phases, server: Gunicorn, moves: int, extras: int, quiet: float) -> dict:
    """Warm every worker up, then the blocks: drags and API moves in turn, then the
    prospects and the list pages."""
    for _ in range(12):  # fresh connections land on different workers
        for kind in PHASES:
            phases.run(kind, 3)
    warm_errors = sum(phases.records[kind]["warmup_errors"] for kind in PHASES)
    phases.kinds = {kind: {"crossed": 0, "reordered": 0} for kind in ("htmx", "api")}
    DATABASE.vacuum(*board_bench.TABLES)
    blocks = math.ceil(moves / BLOCK)
    speed, busy_before = [], []
    for block in range(blocks):
        count = min(BLOCK, moves - block * BLOCK)
        busy_before.append(wait_for_quiet(quiet))
        speed.append(cpu_calibration(repeats=2))
        order = ("htmx", "api") if block % 2 == 0 else ("api", "htmx")
        for kind in order:
            phases.run(kind, count, meter_for(server))
        for kind in ("create", "list") if block % 2 == 0 else ("list", "create"):
            phases.run(kind, extras, meter_for(server))
        done = {k: len(phases.records[k]["ms"]) for k in ("htmx", "api")}
        log(f"block {block + 1}/{blocks}: {done['htmx']} drags, {done['api']} API moves")
    out: dict = {
        "blocks": blocks,
        "warmup_errors": warm_errors,
        "speed_check_ms": round(statistics.median(speed), 1),
        "busy_before_share": round(statistics.median(busy_before), 3),
    }
    for kind in PHASES:
        record = phases.records[kind]
        ms = record["ms"]
        requests = len(ms) + record["errors"]
        out[kind] = {
            "requests": requests,
            "ok": len(ms),
            "errors": record["errors"],
            "samples": record["samples"],
            "retried_stale_connections": record["retried"],
            "p50_ms": percentile(ms, 50),
            "p95_ms": percentile(ms, 95),
            "p99_ms": percentile(ms, 99),
            "max_ms": max(ms, default=math.nan),
            "mean_ms": statistics.fmean(ms) if ms else math.nan,
            "bytes_mean": round(statistics.fmean(record["bytes"])) if record["bytes"] else 0,
            "cpu": combined_cpu(phases.cpu[kind], requests),
            "cpu_blocks": phases.cpu[kind],
            "raw_ms": [round(x, 3) for x in ms],
        }
        out[kind].update(phases.kinds.get(kind, {}))
    return out


def in_process(phases: Phases, session_user: str) -> dict:
    """Queries per request in-process (Django's test client, same settings): drags and
    API moves of the same models as the run, prospects, a list page; the statements of
    one drag and one API move; then ``PROFILED_MOVES`` moves of each kind under
    cProfile (``PROFILED``)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    browser = DjangoClient(HTTP_HOST="127.0.0.1")
    browser.force_login(get_user_model().objects.get(username=session_user))
    api = DjangoClient(
        HTTP_HOST="127.0.0.1", headers={"Authorization": f"Bearer {phases.stream['token']}"}
    )
    slug, base = phases.stream["slug"], phases.api_base
    counts: dict[str, list[int]] = {kind: [] for kind in PHASES}
    statements: dict[str, list[str]] = {}
    failures: list[str] = []

    def move(kind: str, capture: bool) -> None:
        """One move to another column, as the run's client of ``kind`` sends it."""
        model = phases.models[kind]
        for _ in range(100):
            drag = model.pick()
            if drag is None or drag[1] != drag[2]:  # a reorder: counted by board_bench
                break
        if drag is None:
            raise SystemExit(f"{kind}: no card left to move")
        card, source, target, after, before = drag
        if kind == "htmx":
            form = model.form(card, target, after, before)
            path = f"/streams/{slug}/cards/{card}/move/"

            def send():
                return browser.post(path, form, headers={"HX-Request": "true"})
        else:
            body = json.dumps(
                {
                    "to_column_id": target,
                    "version": model.versions[card],
                    "after_card_id": after,
                    "before_card_id": before,
                }
            )
            path = f"{base}/cards/{card}/move/"

            def send():
                return api.post(path, body, content_type="application/json")

        response = captured(kind, send) if capture else send()
        if kind == "htmx":
            outcome, version = classify(response.status_code, response.content, card)
        else:
            ok = response.status_code == 200
            version = response.json()["card"]["version"] if ok else None
            outcome = "ok" if version is not None else "error"
        if outcome != "ok":
            failures.append(f"{kind} in-process: {response.status_code} {path}")
            return
        model.moved(card, source, target, after, before, version)

    def captured(kind: str, send: Callable[[], object]):
        with CaptureQueriesContext(connection) as ctx:
            response = send()
        counts[kind].append(len(ctx.captured_queries))
        statements.setdefault(kind, statement_classes([q["sql"] for q in ctx.captured_queries]))
        return response

    for kind in ("htmx", "api"):
        for _ in range(10):
            move(kind, capture=True)
    for n in range(5):
        body = json.dumps({"person_name": f"In-process {n}", "email": f"inprocess{n}@example.com"})
        response = captured(
            "create",
            lambda b=body: api.post(f"{base}/prospects/", b, content_type="application/json"),
        )
        if response.status_code != 201:
            failures.append(f"create in-process: {response.status_code}")
    for _ in range(3):
        response = captured("list", lambda: api.get(f"{base}/cards/?outcome=open"))
        if response.status_code != 200:
            failures.append(f"list in-process: {response.status_code}")
    # The kinds take turns in rounds, so both see the same machine; times add up.
    total = dict.fromkeys(("htmx", "api"), 0.0)
    parts: dict[str, dict[str, float]] = {"htmx": {}, "api": {}}
    per_round = PROFILED_MOVES // PROFILE_ROUNDS
    for _ in range(PROFILE_ROUNDS):
        for kind in ("htmx", "api"):
            found = profiled(
                lambda k=kind: [move(k, capture=False) for _ in range(per_round)],
                PROFILED[kind],
            )
            total[kind] += found["profiled_ms"]
            for row in found["breakdown"]:
                parts[kind][row["meaning"]] = parts[kind].get(row["meaning"], 0.0) + row["ms"]
    moves = per_round * PROFILE_ROUNDS
    profiles = {
        kind: {
            "moves": moves,
            "ms_per_move": round(total[kind] / moves, 2),
            "breakdown": [
                {"meaning": meaning, "ms_per_move": round(ms / moves, 2)}
                for meaning, ms in parts[kind].items()
            ],
        }
        for kind in ("htmx", "api")
    }
    connection.close()
    return {
        "queries": {kind: sorted(set(found)) for kind, found in counts.items()},
        "statements": {kind: statements.get(kind, []) for kind in ("htmx", "api")},
        "profiles": profiles,
        "failures": failures,
    }


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def report(results: dict) -> str:
    r = results["run"]
    q = results["queries"]["queries"]
    h, a = r["htmx"], r["api"]

    def both(label: str, key: str, digits: int = 1, path: tuple = ()) -> tuple:
        def get(entry: dict) -> float:
            node = entry
            for step in (*path, key):
                node = node[step]
            return node

        x, y = get(h), get(a)
        return (label, fmt(x, digits), fmt(y, digits), fmt(ratio(y, x), 2))

    rows = [
        (f"Move at {SIZE} cards, one client, sequential", "", "", ""),
        both("  p50 (ms)", "p50_ms"),
        both("  p95 (ms)", "p95_ms"),
        both("  p99 (ms)", "p99_ms"),
        both("  max (ms)", "max_ms"),
        both("  server CPU per request (ms)", "server_cpu_ms_per_request", path=("cpu",)),
        both("  answer size (bytes, mean)", "bytes_mean", digits=0),
        (
            "  queries per request",
            ", ".join(map(str, q["htmx"])),
            ", ".join(map(str, q["api"])),
            "",
        ),
        (
            "  machine busy / others' share",
            f"{pct(h['cpu']['machine_busy_share'])} / {pct(h['cpu']['other_share'])}",
            f"{pct(a['cpu']['machine_busy_share'])} / {pct(a['cpu']['other_share'])}",
            "",
        ),
        (
            "  accepted (crossed / reordered)",
            *(f"{e['ok']} ({e['crossed']} / {e['reordered']})" for e in (h, a)),
            "",
        ),
        ("  errors", str(h["errors"]), str(a["errors"]), ""),
    ]
    header = ("", "htmx drag", "API move", "API / htmx")
    first = text_table(rows, header)
    rows = []
    for kind in ("create", "list"):
        e = r[kind]
        rows.append(
            (
                LABELS[kind],
                fmt(e["p50_ms"]),
                fmt(e["p95_ms"]),
                fmt(e["cpu"]["server_cpu_ms_per_request"]),
                ", ".join(map(str, q[kind])),
                str(e["bytes_mean"]),
                f"{pct(e['cpu']['other_share'])}",
                str(e["errors"]),
            )
        )
    second = text_table(
        rows,
        ("", "p50 (ms)", "p95 (ms)", "server CPU (ms)", "queries", "bytes", "others", "errors"),
    )
    return first + "\n\n" + second


def main() -> int:
    parser = arguments(__doc__, seed=20261201, quiet_wait="default 3, --quick 1")
    parser.add_argument("--quick", action="store_true", help="a short run to check the bench")
    parser.add_argument(
        "--moves",
        type=int,
        default=None,
        help="drags and API moves each (default 600, --quick 100)",
    )
    parser.add_argument(
        "--extras",
        type=int,
        default=None,
        help="API prospects and list pages per block (default 20, --quick 10)",
    )
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="gthread")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="per worker, gthread only")
    parser.add_argument(
        "--cache-url",
        default="redis://127.0.0.1:6379/7",
        help="the cache gunicorn's processes share, emptied first (default %(default)s; "
        "board_bench and metrics_bench use DBs 5 and 6)",
    )
    args = parser.parse_args()
    moves = args.moves or (100 if args.quick else 600)
    extras = args.extras if args.extras is not None else (10 if args.quick else 20)
    quiet = args.quiet_wait if args.quiet_wait is not None else (1.0 if args.quick else 3.0)
    if moves < 1 or extras < 1 or args.workers < 1:
        parser.error("--moves, --extras and --workers are 1 or more")

    began = time.time()
    flush_cache(args.cache_url)
    env = environment(
        DATABASE,
        web=True,
        secret=secrets.token_urlsafe(50),
        cache=args.cache_url,
        VSM_API_RATE=API_RATE,
    )
    log(f"re-creating database {DATABASE.name}")
    DATABASE.recreate()
    setup_django(env)
    migrate()
    collectstatic()
    log(f"loading a stream of {SIZE} open cards, making its API token")
    stream = setup(args.seed)
    log(f"loaded in {stream['load_s']} s")
    results: dict = {
        "machine": machine(DATABASE),
        "config": {
            "size": SIZE,
            "moves": moves,
            "extras_per_block": extras,
            "block": BLOCK,
            "worker_class": args.worker_class,
            "workers": args.workers,
            "threads": args.threads if args.worker_class == "gthread" else 1,
            "cache": args.cache_url,
            "api_rate": API_RATE,
            "quiet_wait_s": quiet,
            "seed": args.seed,
        },
        "load_s": stream["load_s"],
    }
    with Gunicorn(
        env,
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.threads,
        log_name="api_bench-gunicorn",
    ) as server:
        log(f"started {server.description}")
        login = Client(server.port)
        session = login.log_in("bench-0", board_bench.PASSWORD, f"/streams/{stream['slug']}/board/")
        login.close()
        phases = Phases(stream, server.port, session, args.seed)
        log(
            f"{moves} drags and {moves} API moves in blocks of {BLOCK}, {extras} prospects "
            "and list pages per block"
        )
        results["run"] = measure(phases, server, moves, extras, quiet)
        phases.close()
    log("queries per request and a profile of each kind of move (in-process)")
    results["queries"] = in_process(phases, "bench-0")
    run = results["run"]
    run["p50_ratio_api_over_htmx"] = ratio(run["api"]["p50_ms"], run["htmx"]["p50_ms"])
    run["cpu_ratio_api_over_htmx"] = ratio(
        run["api"]["cpu"]["server_cpu_ms_per_request"],
        run["htmx"]["cpu"]["server_cpu_ms_per_request"],
    )
    errors = run["warmup_errors"] + sum(run[k]["errors"] for k in PHASES)
    errors += len(results["queries"]["failures"])
    results["errors"] = errors
    results["machine"]["calibration_ms_end"] = cpu_calibration()
    results["elapsed_s"] = round(time.time() - began, 1)
    save_results("api_bench", results, "-quick" if args.quick else "")

    m = results["machine"]
    print()
    print(
        f"{m['cores']} cores, {m['cpu']}; PostgreSQL {m['postgres']} (autovacuum "
        f"{m['autovacuum']}); Python {m['python']}, Django {m['django']}, gunicorn "
        f"{m['gunicorn']}, {server.description}; cache {args.cache_url}"
    )
    print(
        f"{moves} drags and {moves} API moves at {SIZE} cards in {run['blocks']} interleaved "
        f"blocks; {extras} prospects and list pages per block; client on the same machine"
    )
    print(
        f"CPU speed check (ms, best of 5): {m['calibration_ms_start']} at the start, "
        f"{m['calibration_ms_end']} at the end, median per block {run['speed_check_ms']}"
    )
    print(
        "'others': the share of both cores used by processes that are not the bench's "
        "(gunicorn, its PostgreSQL backends, this client). Above ~10% a figure is disturbed."
    )
    print()
    print(report(results))
    print()
    print(
        f"API p50 / htmx p50: {fmt(run['p50_ratio_api_over_htmx'], 2)}; server CPU API / "
        f"htmx: {fmt(run['cpu_ratio_api_over_htmx'], 2)}"
    )
    for kind in ("htmx", "api"):
        found = results["queries"]["statements"][kind]
        print(f"Statements of one {LABELS[kind]} ({len(found)}): " + "; ".join(found))
    for kind in ("htmx", "api"):
        found = results["queries"]["profiles"][kind]
        print(
            f"Profiled in-process, {LABELS[kind]} ({found['moves']} moves, cProfile, "
            f"{found['ms_per_move']} ms each): "
            + "; ".join(f"{r['meaning']} {r['ms_per_move']} ms" for r in found["breakdown"])
        )
    for kind in PHASES:
        for sample in run[kind]["samples"]:
            print(f"  {sample}")
    for failure in results["queries"]["failures"]:
        print(f"  {failure}")
    disturbed = [k for k in PHASES if run[k]["cpu"]["other_share"] > 0.10]
    if disturbed:
        print(
            "WARNING: other load took over 10% of the machine during: "
            + ", ".join(f"{LABELS[k]} ({pct(run[k]['cpu']['other_share'])})" for k in disturbed)
        )
    print(f"raw results: {results['json']}; {results['elapsed_s']}s in all")
    if errors:
        print(f"FAILED: {errors} non-2xx answer(s) or failure(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
