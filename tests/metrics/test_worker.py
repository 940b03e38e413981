"""The metrics pipeline with a real Celery worker on a real Redis: nothing is ever lost.

Each test starts its own ``redis-server`` on a spare loopback port and its own
``celery worker`` subprocesses, points this process's broker and cache at that Redis,
and stops only what it started. The worker reaches the test database through
DATABASE_URL, so the data must be committed (``transaction=True``) and the database
must be one that two processes can share: PostgreSQL. On SQLite the test database is
in memory, so these tests are skipped there; CI runs them on PostgreSQL.

No beat runs here: a test that needs the sweeper calls ``sweep.delay()`` itself, as
beat would every 30 s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import environ
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from kombu import pools as kombu_pools

from boards.models import Card, CardMove, Column, MoveKind, Outcome
from boards.services import card_close, card_create, card_move
from metrics.models import (
    CardFlowState,
    ColumnDay,
    MetricsProgress,
    StreamMetrics,
)
from metrics.services import (
    _document_store,
    stream_metrics_advance,
    stream_metrics_rebuild,
    streams_lagging,
)
from metrics.tasks import recompute_stream, sweep
from tests.metrics.aggregates import aggregate_rows
from tests.support import COLLABORATION, as_actor
from vsm.celery import app as celery_app
from vsm.models import ValueStream

REPO_ROOT = Path(django_settings.BASE_DIR)
REDIS_SERVER = shutil.which("redis-server")
CATCH_UP_SECONDS = 20.0
START_SECONDS = 30.0  # generous: a loaded CI machine imports slowly
# Arrivals into a column / departures out of one, by move kind (docs/metrics.md).
ARRIVING_KINDS = (MoveKind.ENTER, MoveKind.MOVE, MoveKind.HANDOFF, MoveKind.REOPEN)
DEPARTING_KINDS = (MoveKind.MOVE, MoveKind.HANDOFF, MoveKind.WON, MoveKind.LOST)
# Parts of the metrics document that depend on the clock at computation time.
# Flow over time runs to the moment the document was computed (the time since the last
# event counts at the WIP it left), and the constraint rests on it; the aggregates it is
# computed from are compared exactly (column_days).
CLOCK_KEYS = frozenset(
    {
        "computed_at",
        "median_age_days",
        "age_in_cycle_days",
        "age_in_column_days",
        "window",
        "flow",
        "constraint",
    }
)

needs_worker = [
    pytest.mark.celery_worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason=(
            "a Celery worker in another process cannot share this run's "
            f"{connection.vendor} test database (SQLite's is in memory); CI runs these "
            "on PostgreSQL"
        ),
    ),
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]


def with_worker(test: Callable) -> Callable:
    for mark in reversed(needs_worker):
        test = mark(test)
    return test


# --- processes --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_process(process: subprocess.Popen | None, *, timeout: float = 10.0) -> None:
    """Terminate, wait, then kill: the process is gone when this returns."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def wait_for(predicate: Callable[[], object], *, timeout: float, what: Callable[[], str]):
    """Poll until the predicate is truthy; fail with ``what()`` after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s: {what()}")
        time.sleep(0.05)


class RedisServer:
    """A private redis-server on a spare loopback port, no persistence."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = directory / f"redis-{self.port}.log"

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=1)

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def answers() -> bool:
            assert self.process.poll() is None, self.log_path.read_text()
            with contextlib.suppress(redis.RedisError), self.client() as client:
                return client.ping()
            return False

        wait_for(answers, timeout=START_SECONDS, what=lambda: f"redis on {self.port}")

    def stop(self) -> None:
        stop_process(self.process)


class Worker:
    """A ``celery -A vsm worker`` subprocess logging to a file."""

    def __init__(self, *, env: dict[str, str], log_path: Path, pool: str, concurrency: int):
        self.log_path = log_path
        self.hostname = f"metrics-test-{uuid.uuid4().hex[:8]}@%h"
        command = [sys.executable, "-m", "celery", "-A", "vsm", "worker", "-l", "info"]
        command += ["-P", pool, "-c", str(concurrency), "-n", self.hostname]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, *, timeout: float = START_SECONDS) -> None:
        def logged() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.log()}")
            return text in self.log()

        wait_for(logged, timeout=timeout, what=lambda: f"{text!r} in the worker log:\n{self.log()}")

    def stop(self) -> None:
        """Warm shutdown: the task in progress finishes first."""
        stop_process(self.process, timeout=15)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def worker_database_url() -> str:
    """The URL of the database this test process uses: pytest-django's test database."""
    db = connection.settings_dict
    auth = ""
    if db["USER"]:
        auth = quote(db["USER"], safe="")
        if db["PASSWORD"]:
            auth += ":" + quote(db["PASSWORD"], safe="")
        auth += "@"
    host = quote(db["HOST"] or "localhost", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"


class Cluster:
    """A private Redis, this process configured to publish to it, and its workers."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.redis = RedisServer(directory)
        self.workers: list[Worker] = []

    def start_worker(self, *, pool: str = "solo", concurrency: int = 1) -> Worker:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "vsm.settings",
            "DATABASE_URL": worker_database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": self.redis.url(0),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CACHE_URL": self.redis.url(1),
            "PYTHONUNBUFFERED": "1",
        }
        worker = Worker(
            env=env,
            log_path=self.directory / f"worker-{len(self.workers)}.log",
            pool=pool,
            concurrency=concurrency,
        )
        self.workers.append(worker)
        worker.wait_for_log(" ready.")
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log()[-4000:]}" for w in self.workers)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()


def reset_broker_pools() -> None:
    """Forget every broker connection pool, so publishing follows the new broker_url.

    kombu keeps pools in a process-wide registry: closing only the app's pool would
    leave a closed pool there for the next lookup of the same broker.
    """
    with contextlib.suppress(Exception):
        kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def cluster(transactional_db, settings, tmp_path, monkeypatch) -> Iterator[Cluster]:
    """Requests ``transactional_db`` so the workers are stopped before the flush."""
    cluster = Cluster(tmp_path)
    try:
        cluster.redis.start()
        # This process publishes to the same broker and shares the "pending" marks.
        settings.CACHES = {"default": environ.Env.cache_url_config(cluster.redis.url(1))}
        saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
        # Celery reads CELERY_BROKER_URL from the environment before its own settings
        # (CI sets it for the whole run): point both at this test's Redis.
        monkeypatch.setenv("CELERY_BROKER_URL", cluster.redis.url(0))
        celery_app.conf.broker_url = cluster.redis.url(0)
        celery_app.conf.task_always_eager = False
        reset_broker_pools()
        try:
            yield cluster
        finally:
            celery_app.conf.update(saved)
            reset_broker_pools()
    finally:
        for worker in cluster.workers:
            worker.stop()  # terminate, wait, kill
        cluster.redis.stop()


# --- reading the state ----------------------------------------------------------------


def collaboration_columns(stream: ValueStream) -> list[Column]:
    return list(
        Column.objects.filter(cycle__value_stream=stream, cycle__name=COLLABORATION).order_by(
            "order"
        )
    )


def newest_move_id(stream: ValueStream) -> int:
    return CardMove.objects.filter(value_stream=stream).aggregate(m=Max("id"))["m"] or 0


def progress_of(stream: ValueStream) -> tuple[int, int | None]:
    """(last applied move, move the metrics document is computed through)."""
    applied = (
        MetricsProgress.objects.filter(value_stream=stream)
        .values_list("last_applied_move_id", flat=True)
        .first()
    )
    through = (
        StreamMetrics.objects.filter(value_stream=stream)
        .values_list("through_move_id", flat=True)
        .first()
    )
    return applied or 0, through


def wait_caught_up(cluster: Cluster, stream: ValueStream, move_id: int) -> None:
    wait_for(
        lambda: progress_of(stream) == (move_id, move_id),
        timeout=CATCH_UP_SECONDS,
        what=lambda: (
            f"metrics through move {move_id}; (applied, through) = {progress_of(stream)}\n"
            + cluster.logs()
        ),
    )


def without_clock(value):
    """The metrics document minus what depends on the clock when it was computed.

    The aging list is ordered by age, a clock value (and ties come in database order):
    compare it by card instead.
    """
    if isinstance(value, dict):
        document = {k: without_clock(v) for k, v in value.items() if k not in CLOCK_KEYS}
        if isinstance(document.get("over_cycle_p85"), list):
            document["over_cycle_p85"].sort(key=lambda entry: entry["card_id"])
        return document
    if isinstance(value, list):
        return [without_clock(item) for item in value]
    return value


def snapshot(stream: ValueStream) -> dict:
    """Every aggregate of the stream by its meaningful fields, without surrogate ids."""
    progress = MetricsProgress.objects.get(value_stream=stream)
    metrics = StreamMetrics.objects.get(value_stream=stream)
    return {
        **aggregate_rows(stream.pk),
        "progress": (progress.last_applied_move_id, progress.applied_moves),
        "metrics": (metrics.through_move_id, without_clock(metrics.data)),
    }


def differences(left, right, path: str = "") -> list[str]:
    """Where two nested documents differ, as readable paths (for assertion messages)."""
    if isinstance(left, dict) and isinstance(right, dict):
        return [
            found
            for key in sorted(left.keys() | right.keys(), key=str)
            for found in differences(left.get(key), right.get(key), f"{path}.{key}")
        ]
    if (
        isinstance(left, list | tuple)
        and isinstance(right, list | tuple)
        and (len(left) == len(right))
    ):
        return [
            found
            for index, (a, b) in enumerate(zip(left, right, strict=True))
            for found in differences(a, b, f"{path}[{index}]")
        ]
    return [] if left == right else [f"{path}: {left!r} != {right!r}"]


def assert_equals_a_rebuild(stream: ValueStream) -> dict:
    incremental = snapshot(stream)
    assert incremental["column_days"], "nothing was folded at all"
    stream_metrics_rebuild(stream_id=stream.pk)
    rebuilt = snapshot(stream)
    for part in rebuilt:
        assert incremental[part] == rebuilt[part], (
            f"{part} differs from a full rebuild (incremental != rebuilt):\n"
            + "\n".join(differences(incremental[part], rebuilt[part])[:20])
        )
    return rebuilt


def assert_every_move_applied_once(stream: ValueStream) -> None:
    moves = CardMove.objects.filter(value_stream=stream)
    newest_per_card = dict(
        moves.values("card_id").annotate(m=Max("id")).values_list("card_id", "m")
    )
    states = dict(
        CardFlowState.objects.filter(value_stream=stream).values_list("card_id", "last_move_id")
    )
    assert states == newest_per_card
    column_days = ColumnDay.objects.filter(value_stream=stream)
    assert sum(column_days.values_list("arrivals", flat=True)) == (
        moves.filter(kind__in=ARRIVING_KINDS).count()
    )
    assert sum(column_days.values_list("departures", flat=True)) == (
        moves.filter(kind__in=DEPARTING_KINDS).count()
    )
    progress = MetricsProgress.objects.get(value_stream=stream)
    assert progress.applied_moves == moves.count()


def board_wip(stream: ValueStream) -> dict[int, int]:
    """Open cards per column of the stream, as the board shows them."""
    counts = {column.pk: 0 for column in Column.objects.filter(cycle__value_stream=stream)}
    for column_id in Card.objects.filter(value_stream=stream, outcome=Outcome.OPEN).values_list(
        "column_id", flat=True
    ):
        counts[column_id] += 1
    return counts


def metrics_wip(stream: ValueStream) -> dict[int, int]:
    """WIP per column as the stream's metrics document has it."""
    document = StreamMetrics.objects.get(value_stream=stream).data
    return {column["id"]: column["wip_now"] for column in document["columns"]}


def new_cards(stream: ValueStream, actor, count: int, *, prefix: str) -> list[Card]:
    first = collaboration_columns(stream)[0]
    return [
        card_create(
            cycle_id=first.cycle_id, actor=as_actor(actor), person_name=f"{prefix} {n}"
        ).card
        for n in range(count)
    ]


# --- the tests --------------------------------------------------------------------------


@with_worker
def test_a_move_over_http_reaches_the_metrics(cluster, stream, member, client):
    data, information, *_ = collaboration_columns(stream)
    cluster.start_worker()
    cards = new_cards(stream, member, 3, prefix="Http")
    wait_caught_up(cluster, stream, newest_move_id(stream))
    card = Card.objects.get(pk=cards[0].pk)
    client.force_login(member)

    response = client.post(
        reverse("boards:card-move", kwargs={"stream_slug": stream.slug, "card_id": card.pk}),
        {"to_column": information.pk, "version": card.version},
    )

    assert response.status_code == 302
    move = CardMove.objects.filter(card=card).latest("id")
    assert (move.kind, move.from_column_id, move.to_column_id) == (
        MoveKind.MOVE,
        data.pk,
        information.pk,
    )
    assert move.pk == newest_move_id(stream)
    wait_caught_up(cluster, stream, move.pk)
    wip = metrics_wip(stream)
    assert wip == board_wip(stream)
    assert (wip[data.pk], wip[information.pk]) == (2, 1)


@with_worker
def test_moves_succeed_fast_with_redis_down_and_the_sweeper_catches_up(cluster, stream, member):
    data, information, knowledge, _ = collaboration_columns(stream)
    worker = cluster.start_worker()
    cards = new_cards(stream, member, 4, prefix="Outage")
    before_outage = newest_move_id(stream)
    wait_caught_up(cluster, stream, before_outage)

    cluster.redis.stop()
    actions: list[Callable[[], object]] = [
        *(
            lambda card=card: card_move(
                card_id=card.pk, to_column_id=information.pk, actor=as_actor(member)
            )
            for card in cards
        ),
        lambda: card_move(card_id=cards[0].pk, to_column_id=knowledge.pk, actor=as_actor(member)),
        lambda: card_close(card_id=cards[1].pk, outcome=Outcome.WON, actor=as_actor(member)),
        lambda: card_create(cycle_id=data.cycle_id, actor=as_actor(member), person_name="Walk-in"),
    ]
    for action in actions:
        started = time.monotonic()
        action()  # no exception: the broker is never the user's problem
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"a move took {elapsed:.2f} s with Redis down"
    newest = newest_move_id(stream)
    assert newest > before_outage
    assert CardMove.objects.filter(value_stream=stream, pk__gt=before_outage).count() == 7
    assert progress_of(stream) == (before_outage, before_outage), "metrics should lag"

    cluster.redis.start()  # same port, empty: the moves' tasks were never published
    assert progress_of(stream) == (before_outage, before_outage)
    sweep.delay()
    wait_caught_up(cluster, stream, newest)
    assert worker.process.poll() is None, "the worker did not survive the outage"
    cluster.stop_workers()

    rebuilt = assert_equals_a_rebuild(stream)
    assert rebuilt["metrics"][0] == newest
    assert_every_move_applied_once(stream)
    assert metrics_wip(stream) == board_wip(stream)


@contextlib.contextmanager
def row_locked(model, row_pk: int) -> Iterator[None]:
    """Hold a row lock from another connection (a thread) until the block ends.

    A fold that upserts this row waits on it inside its transaction, holding the
    stream's progress lock: a task stopped mid-way, on purpose.
    """
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                model.objects.select_for_update().get(pk=row_pk)
                locked.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert locked.wait(timeout=10), "could not lock the row"
        yield
    finally:
        release.set()
        holder.join(timeout=10)


def todays_row(column: Column) -> ColumnDay:
    return ColumnDay.objects.get(column=column, day=timezone.now().date())


def assert_no_task_failed(cluster: Cluster) -> None:
    logs = cluster.logs()
    assert "raised unexpected" not in logs, logs
    assert "IntegrityError" not in logs, logs


def _backends_waiting_on(table: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE %s",
            [f"%{table}%"],
        )
        return [pid for (pid,) in cursor.fetchall()]


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


@with_worker
def test_a_worker_killed_mid_task_loses_nothing(cluster, stream, member):
    data, information, knowledge, _ = collaboration_columns(stream)
    cards = new_cards(stream, member, 3, prefix="Early")
    stream_metrics_advance(stream_id=stream.pk)
    folded = newest_move_id(stream)
    # Forget the tasks and "pending" marks the arrangement left: one task per burst.
    with cluster.redis.client() as client:
        client.flushall()
    # The fold will stop on this row's lock, inside its transaction: mid-task.
    with row_locked(ColumnDay, todays_row(data).pk):
        doomed = cluster.start_worker()
        with transaction.atomic():  # a burst: one transaction, so one task
            cards += new_cards(stream, member, 2, prefix="Burst")
            for card in cards[:4]:
                card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(member))
            card_move(card_id=cards[0].pk, to_column_id=knowledge.pk, actor=as_actor(member))
            card_close(card_id=cards[4].pk, outcome=Outcome.LOST, actor=as_actor(member))
        newest = newest_move_id(stream)
        doomed.wait_for_log("Task metrics.recompute_stream[")
        [stuck] = wait_for(
            lambda: _backends_waiting_on(ColumnDay._meta.db_table),
            timeout=CATCH_UP_SECONDS,
            what=lambda: "the fold waiting on the locked day row\n" + cluster.logs(),
        )
        doomed.kill()
    # PostgreSQL rolls the killed worker's transaction back once it sees the client gone.
    wait_for(
        lambda: not _backend_alive(stuck),
        timeout=CATCH_UP_SECONDS,
        what=lambda: f"backend {stuck} of the killed worker to end",
    )
    assert progress_of(stream) == (folded, folded), "the killed run must have committed nothing"
    # (The "stream changed" announcement that asked for the run did succeed.)
    assert not [
        line
        for line in doomed.log().splitlines()
        if "metrics.recompute_stream[" in line and "succeeded" in line
    ]

    cluster.start_worker()
    # With acks_late the killed task comes back only after the visibility timeout
    # (600 s): the sweeper is what catches the stream up.
    sweep.delay()
    wait_caught_up(cluster, stream, newest)
    cluster.stop_workers()

    assert_no_task_failed(cluster)
    assert_equals_a_rebuild(stream)
    assert_every_move_applied_once(stream)


@with_worker
def test_duplicate_concurrent_runs_leave_the_newest_result(cluster, stream, member):
    data, information, knowledge, wisdom = collaboration_columns(stream)
    cards = new_cards(stream, member, 8, prefix="Dup")
    stream_metrics_advance(stream_id=stream.pk)
    # With no worker running yet, the moves' task and six duplicates wait in the queue.
    for card in cards[:6]:
        card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(member))
    for card in cards[:3]:
        card_move(card_id=card.pk, to_column_id=knowledge.pk, actor=as_actor(member))
    card_move(card_id=cards[0].pk, to_column_id=wisdom.pk, actor=as_actor(member))
    card_close(card_id=cards[0].pk, outcome=Outcome.WON, actor=as_actor(member))
    card_close(card_id=cards[7].pk, outcome=Outcome.LOST, actor=as_actor(member))
    with ThreadPoolExecutor(max_workers=6) as pool:
        for result in [pool.submit(recompute_stream.delay, stream.pk) for _ in range(6)]:
            result.result(timeout=10)

    # The first run to start stops on this lock mid-fold, so the others surely overlap it.
    with row_locked(ColumnDay, todays_row(data).pk):
        worker = cluster.start_worker(pool="threads", concurrency=4)
        worker.wait_for_log("'busy': True", timeout=CATCH_UP_SECONDS)
        assert progress_of(stream)[0] < newest_move_id(stream)
    wait_caught_up(cluster, stream, newest_move_id(stream))

    # Once more after: a new move, and a duplicate run on top of it.
    card_move(card_id=cards[1].pk, to_column_id=wisdom.pk, actor=as_actor(member))
    recompute_stream.delay(stream.pk)
    newest = newest_move_id(stream)
    wait_caught_up(cluster, stream, newest)
    cluster.stop_workers()

    assert_no_task_failed(cluster)
    assert progress_of(stream) == (newest, newest)
    assert_equals_a_rebuild(stream)
    assert_every_move_applied_once(stream)


@pytest.mark.django_db
def test_advancing_twice_applies_nothing_the_second_time(stream, member):
    cards = new_cards(stream, member, 3, prefix="Twice")
    information = collaboration_columns(stream)[1]
    card_move(card_id=cards[0].pk, to_column_id=information.pk, actor=as_actor(member))
    card_close(card_id=cards[1].pk, outcome=Outcome.WON, actor=as_actor(member))

    first = stream_metrics_advance(stream_id=stream.pk)
    before = snapshot(stream)
    document = StreamMetrics.objects.values_list("computed_at", "data").get(value_stream=stream)
    second = stream_metrics_advance(stream_id=stream.pk)

    assert first.applied == 5
    assert first.last_applied_move_id == newest_move_id(stream)
    assert second.applied == 0
    assert second.last_applied_move_id == first.last_applied_move_id
    assert snapshot(stream) == before
    assert (
        StreamMetrics.objects.values_list("computed_at", "data").get(value_stream=stream)
        == document
    )


@pytest.mark.django_db
def test_a_stale_run_never_replaces_a_newer_document(stream, member):
    cards = new_cards(stream, member, 2, prefix="Stale")
    stream_metrics_advance(stream_id=stream.pk)
    stored = StreamMetrics.objects.get(value_stream=stream)
    through, computed_at = stored.through_move_id, stored.computed_at
    earlier = computed_at - timezone.timedelta(seconds=5)
    later = computed_at + timezone.timedelta(seconds=5)

    # A run that computed from an older fold, or from the same fold but earlier,
    # finishes last: it must change nothing.
    assert not _document_store(stream.pk, through - 1, later, {"stale": "older fold"})
    assert not _document_store(stream.pk, through, earlier, {"stale": "computed earlier"})
    assert StreamMetrics.objects.get(value_stream=stream).data == stored.data

    # The same fold computed later, or a later fold, replaces it.
    assert _document_store(stream.pk, through, later, {"fresh": "same fold"})
    assert StreamMetrics.objects.get(value_stream=stream).data == {"fresh": "same fold"}
    card_move(
        card_id=cards[0].pk,
        to_column_id=collaboration_columns(stream)[1].pk,
        actor=as_actor(member),
    )
    result = stream_metrics_advance(stream_id=stream.pk)
    assert result.last_applied_move_id > through
    metrics = StreamMetrics.objects.get(value_stream=stream)
    assert metrics.through_move_id == result.last_applied_move_id
    assert "columns" in metrics.data
    progress = MetricsProgress.objects.get(value_stream=stream)
    assert progress.summary_move_id == result.last_applied_move_id


@pytest.mark.django_db
def test_the_fold_commits_even_when_the_document_fails(stream, member):
    new_cards(stream, member, 2, prefix="Doc")
    with (
        mock.patch("metrics.selectors.stream_metrics_compute", side_effect=RuntimeError),
        pytest.raises(RuntimeError),
    ):
        stream_metrics_advance(stream_id=stream.pk)
    # The fold was committed before the document was attempted; the document lags,
    # which the sweeper sees.
    applied, through = progress_of(stream)
    assert applied == newest_move_id(stream)
    assert through is None
    assert stream.pk in streams_lagging()
    stream_metrics_advance(stream_id=stream.pk)
    assert progress_of(stream) == (applied, applied)
    assert stream.pk not in streams_lagging()
