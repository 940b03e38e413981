"""A Redis that hangs (accepts connections, never answers) costs a move about
settings.VSM_REDIS_TIMEOUT_SECONDS, never seconds, and the sweeper catches up.

The hung Redis is a local TCP server that accepts every connection and never reads
or writes. The cache and the broker point at it with the options the real settings
module gives them for such a URL (vsm/settings.py, run afresh with CACHE_URL and
CELERY_BROKER_URL set). Before the bounds a move took 2.5 s and more: the cache's
0.5 s socket timeout, then the broker's 2 s.
"""

from __future__ import annotations

import logging
import runpy
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from celery.canvas import Signature
from django.conf import settings as django_settings
from django.core.cache import cache
from django.urls import reverse

from boards.models import Card, CardMove
from metrics.services import streams_lagging
from metrics.tasks import sweep
from tests.factories import CardFactory
from tests.metrics.test_worker import reset_broker_pools
from tests.support import COLLABORATION, column_of
from vsm.celery import app as celery_app
from vsm.events import StreamChange, stream_changed

HTMX = {"HX-Request": "true"}
SETTINGS_FILE = Path(django_settings.BASE_DIR) / "vsm" / "settings.py"
LOCAL_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "vsm-faults-redis",
    }
}
# The bound the issue asks for is about 100 ms; a move itself takes tens of ms more.
MOVE_BOUND_SECONDS = 1.0


class HungRedis:
    """Accepts TCP connections on a loopback port and never answers on them."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                peer, _ = self.listener.accept()
            except OSError:
                return  # closed by stop()
            self.accepted.append(peer)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)
        for peer in self.accepted:
            peer.close()


def production_settings(monkeypatch, **environment: str) -> dict:
    """The settings module's values for this environment, computed afresh."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


@pytest.fixture(params=["cache-and-broker", "broker-only"])
def hung_redis(request, settings, monkeypatch) -> Iterator[HungRedis]:
    """The broker, and the cache unless the broker only, on a Redis that hangs; tasks
    published, as in production."""
    server = HungRedis()
    production = production_settings(
        monkeypatch, CACHE_URL=server.url(1), CELERY_BROKER_URL=server.url(0)
    )
    settings.CACHES = production["CACHES"] if request.param == "cache-and-broker" else LOCAL_CACHE
    saved = {
        key: celery_app.conf[key]
        for key in ("broker_url", "broker_transport_options", "task_always_eager")
    }
    celery_app.conf.broker_url = server.url(0)
    celery_app.conf.broker_transport_options = production["CELERY_BROKER_TRANSPORT_OPTIONS"]
    celery_app.conf.task_always_eager = False
    reset_broker_pools()
    try:
        yield server
    finally:
        celery_app.conf.update(saved)
        reset_broker_pools()
        server.stop()


def test_the_settings_bound_each_redis_command_of_a_request():
    bound = django_settings.VSM_REDIS_TIMEOUT_SECONDS
    production = runpy.run_path(str(SETTINGS_FILE))
    transport = production["CELERY_BROKER_TRANSPORT_OPTIONS"]

    assert bound <= 0.1
    assert transport["socket_timeout"] == transport["socket_connect_timeout"] == bound
    assert transport["max_retries"] == 0
    assert production["CELERY_TASK_PUBLISH_RETRY"] is False


@pytest.mark.django_db(transaction=True)
def test_moves_with_redis_hung_take_no_time_and_the_sweeper_catches_up(
    hung_redis, client, stream, member, settings, caplog
):
    data = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    cards = [CardFactory(column=data) for _ in range(2)]
    client.force_login(member)
    # The process's first request compiles templates and URL patterns: not timed.
    assert client.get(reverse("boards:board", args=[stream.slug])).status_code == 200
    url = "boards:card-move"

    for card in cards:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="vsm.events"):
            response = client.post(
                reverse(url, args=[stream.slug, card.pk]),
                {"to_column": information.pk, "version": card.version, "dragged": "on"},
                headers=HTMX,
            )
        took = time.monotonic() - started

        assert response.status_code == 200
        assert b"toast-error" not in response.content
        assert took < MOVE_BOUND_SECONDS, f"a move took {took:.2f} s with Redis hung"
    assert all(Card.objects.get(pk=card.pk).column_id == information.pk for card in cards)
    assert CardMove.objects.filter(value_stream=stream, to_column=information).count() == 2
    assert any("sweeper" in record.getMessage() for record in caplog.records)
    # The moves are in the log and not in the metrics: the sweeper's to catch up.
    assert stream.pk in streams_lagging()

    # Redis answers again (here the cache in memory, tasks in-process): the next sweep.
    settings.CACHES = LOCAL_CACHE
    celery_app.conf.task_always_eager = True
    sweep.delay()

    assert stream.pk not in streams_lagging()


# --- the announcement's own rule: give up once Redis has taken the bound ------------------


@pytest.fixture
def consumers(settings):
    settings.VSM_STREAM_CHANGED_TASKS = ["tests.first_consumer", "tests.second_consumer"]
    cache.clear()
    return settings


def slow_failure(*args, **kwargs):
    time.sleep(django_settings.VSM_REDIS_TIMEOUT_SECONDS)
    raise TimeoutError("Timeout reading from socket")


def fast_failure(*args, **kwargs):
    raise ConnectionRefusedError("Connection refused")


@pytest.mark.django_db
def test_a_cache_that_hangs_ends_the_announcement(
    consumers, stream, django_capture_on_commit_callbacks
):
    with (
        mock.patch.object(cache, "add", side_effect=slow_failure) as add,
        mock.patch.object(Signature, "apply_async", autospec=True) as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        stream_changed(stream.pk, StreamChange.MOVES)

    assert add.call_count == 1
    assert apply_async.call_count == 0  # the sweepers catch up


@pytest.mark.django_db
def test_a_cache_that_is_down_announces_without_coalescing(
    consumers, stream, django_capture_on_commit_callbacks
):
    with (
        mock.patch.object(cache, "add", side_effect=fast_failure),
        mock.patch.object(Signature, "apply_async", autospec=True) as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        stream_changed(stream.pk, StreamChange.MOVES)

    assert [call.args[0].task for call in apply_async.call_args_list] == [
        "tests.first_consumer",
        "tests.second_consumer",
    ]


@pytest.mark.django_db
def test_a_broker_that_hangs_ends_the_announcement_and_leaves_the_mark_to_expire(
    consumers, stream, django_capture_on_commit_callbacks
):
    with (
        mock.patch.object(cache, "delete_many") as delete_many,
        mock.patch.object(
            Signature, "apply_async", autospec=True, side_effect=slow_failure
        ) as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        stream_changed(stream.pk, StreamChange.MOVES)

    assert apply_async.call_count == 1
    assert delete_many.call_count == 0
