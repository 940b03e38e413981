"""A killed Celery worker delays a stream's metrics by one sweep interval at most, and
the broker never gives a live worker's message to another (docs/performance.md,
"Faults").

A worker killed with a message unacknowledged (``acks_late``) leaves it to Redis,
which hands it to another worker only after the visibility timeout. That timeout must
outlast anything a live worker may still be doing with a message (waiting out a
retry's countdown, then running the task), or the task would run twice meanwhile: so
it is long, and the metrics do not wait for it. The sweeper finds every stream whose
metrics lag its move log and catches it up, every ``SWEEP_BOUND_SECONDS``.

The real test kills a worker in the middle of a recompute (tests/metrics/test_worker.py
starts the Redis and the workers) and lets beat's schedule, from the settings, catch
the stream up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from boards.services import card_move
from metrics.models import ColumnDay
from metrics.services import SUMMARY_MIN_INTERVAL, stream_metrics_advance
from metrics.tasks import BUSY_RETRY_SECONDS
from tests.metrics import test_worker as worker_tests
from tests.metrics.test_worker import (
    REPO_ROOT,
    START_SECONDS,
    Cluster,
    collaboration_columns,
    new_cards,
    newest_move_id,
    progress_of,
    row_locked,
    stop_process,
    todays_row,
    wait_for,
    with_worker,
    worker_database_url,
)
from tests.support import as_actor
from vsm.celery import PATIENT_BROKER_TIMEOUTS, _patient_broker
from vsm.celery import app as celery_app

# What docs/performance.md promises: a stream's metrics lag a killed worker's lost
# messages by at most this (plus the fold's own time).
SWEEP_BOUND_SECONDS = 10.0
# The fold of a few moves, and a loaded CI machine's scheduling.
FOLD_MARGIN_SECONDS = 5.0
SWEEP = "metrics-sweep"

cluster = worker_tests.cluster  # the fixture: a private Redis and its workers


def longest_countdown(task) -> float:
    """The longest a worker may hold one of the task's messages before running it: the
    countdown of its retries (autoretry_for with backoff, capped by
    retry_backoff_max; Celery's default cap is 600 s)."""
    if not getattr(task, "autoretry_for", ()):
        return 0.0
    if getattr(task, "retry_backoff", False):
        return float(getattr(task, "retry_backoff_max", None) or 600)
    return float(task.default_retry_delay)


def our_tasks() -> list:
    return [task for name, task in celery_app.tasks.items() if not name.startswith("celery.")]


def test_no_message_a_live_worker_holds_is_given_to_another():
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    tasks = our_tasks()
    held = max(
        [longest_countdown(task) for task in tasks]
        + [BUSY_RETRY_SECONDS, SUMMARY_MIN_INTERVAL.total_seconds()]
    )
    longest_run = max(task.time_limit or 0 for task in tasks)

    assert {"metrics.sweep", "metrics.recompute_stream", "metrics.weekly_digest"} <= {
        task.name for task in tasks
    }
    assert settings.CELERY_TASK_TIME_LIMIT, "no task may run unbounded"
    assert longest_run == settings.CELERY_TASK_TIME_LIMIT
    assert held == 3600  # metrics.weekly_digest's longest retry backoff
    assert visibility > held + longest_run
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_the_sweeper_runs_within_the_bound_and_a_late_sweep_is_dropped():
    entry = settings.CELERY_BEAT_SCHEDULE[SWEEP]

    assert entry["task"] == "metrics.sweep"
    assert entry["schedule"] <= SWEEP_BOUND_SECONDS
    # Sweeps queued while no worker ran do not pile up: the newest covers the others.
    assert 0 < entry["options"]["expires"] <= entry["schedule"]


def test_workers_and_beat_wait_on_the_broker_longer_than_a_request_does():
    saved = dict(celery_app.conf.broker_transport_options)
    try:
        _patient_broker(sender=None)
        patient = dict(celery_app.conf.broker_transport_options)
    finally:
        celery_app.conf.broker_transport_options = saved

    assert saved["socket_timeout"] == settings.VSM_REDIS_TIMEOUT_SECONDS
    assert patient == {**saved, **PATIENT_BROKER_TIMEOUTS}
    assert patient["socket_timeout"] > settings.VSM_REDIS_TIMEOUT_SECONDS
    assert patient["visibility_timeout"] == saved["visibility_timeout"]


class Beat:
    """``celery -A vsm beat`` with the settings' schedule, on the cluster's Redis."""

    def __init__(self, cluster: Cluster, directory: Path) -> None:
        self.log_path = directory / "beat.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "vsm.settings",
            "DATABASE_URL": worker_database_url(),
            "CELERY_BROKER_URL": cluster.redis.url(0),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CACHE_URL": cluster.redis.url(1),
            "PYTHONUNBUFFERED": "1",
        }
        command = [sys.executable, "-m", "celery", "-A", "vsm", "beat", "-l", "info"]
        command += ["--schedule", str(directory / "beat-schedule")]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def beat(cluster, tmp_path) -> Iterator:
    """Starts beat when called; stops it after the test."""
    started: list[Beat] = []

    def start() -> Beat:
        started.append(Beat(cluster, tmp_path))
        wait_for(
            lambda: "beat: Starting..." in started[-1].log(),
            timeout=START_SECONDS,
            what=lambda: f"beat to start:\n{started[-1].log()}",
        )
        return started[-1]

    yield start
    for process in started:
        stop_process(process.process)


@with_worker
def test_a_worker_killed_mid_recompute_delays_the_metrics_by_one_sweep_at_most(
    cluster, beat, stream, member
):
    data, information, knowledge, _ = collaboration_columns(stream)
    cards = new_cards(stream, member, 3, prefix="Killed")
    stream_metrics_advance(stream_id=stream.pk)
    folded = newest_move_id(stream)
    with cluster.redis.client() as client:
        client.flushall()  # no task or mark left by the arrangement
    # The recompute stops on this row's lock, inside its transaction: mid-task.
    with row_locked(ColumnDay, todays_row(data).pk):
        doomed = cluster.start_worker()
        with transaction.atomic():
            for card in cards:
                card_move(card_id=card.pk, to_column_id=information.pk, actor=as_actor(member))
            card_move(card_id=cards[0].pk, to_column_id=knowledge.pk, actor=as_actor(member))
        newest = newest_move_id(stream)
        doomed.wait_for_log("Task metrics.recompute_stream[")
        [stuck] = wait_for(
            lambda: worker_tests._backends_waiting_on(ColumnDay._meta.db_table),
            timeout=worker_tests.CATCH_UP_SECONDS,
            what=lambda: "the recompute waiting on the locked day row\n" + cluster.logs(),
        )
        doomed.kill()  # its message stays unacknowledged in Redis
    wait_for(
        lambda: not worker_tests._backend_alive(stuck),
        timeout=worker_tests.CATCH_UP_SECONDS,
        what=lambda: f"backend {stuck} of the killed worker to end",
    )
    assert progress_of(stream) == (folded, folded)

    # The worker comes back, as its container restarts it, and so does beat: a fresh
    # beat's first sweep comes one interval after it starts, the worst case.
    cluster.start_worker()
    schedule = beat()
    back = time.monotonic()
    wait_for(
        lambda: progress_of(stream) == (newest, newest),
        timeout=SWEEP_BOUND_SECONDS + FOLD_MARGIN_SECONDS,
        what=lambda: (
            f"metrics through move {newest} within one sweep; (applied, through) = "
            f"{progress_of(stream)}\n{cluster.logs()}\n--- beat\n{schedule.log()}"
        ),
    )
    lag = time.monotonic() - back

    assert "Sending due task metrics-sweep (metrics.sweep)" in schedule.log()
    assert lag <= SWEEP_BOUND_SECONDS + FOLD_MARGIN_SECONDS
    worker_tests.assert_no_task_failed(cluster)
