"""A row lock held by a stuck request: board reads never wait on it, a move on it is
refused as busy within its bound, and the web server's other threads go on serving.

Real transactions on PostgreSQL: a thread of the test holds a card's or a column's row
lock on a connection of its own (as a move does while it runs), longer than any bound.
The last test runs the production web server, gunicorn with vsm/gunicorn_conf.py, against
the test database: more moves wait on the lock than there are worker processes, and
the board still answers at once (with the former 3 sync workers it waited for them).
"""

from __future__ import annotations

import http.client
import os
import runpy
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from boards.models import Card, CardMove, Column
from boards.services.moves import MOVE_LOCK_TIMEOUT_SECONDS
from tests.boards.test_busy import row_held
from tests.factories import CardFactory
from tests.metrics.test_worker import (
    START_SECONDS,
    free_port,
    stop_process,
    wait_for,
    worker_database_url,
)
from tests.support import COLLABORATION, column_of
from vsm.errors import Busy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HTMX = {"HX-Request": "true"}
CONFIG = Path(settings.BASE_DIR) / "vsm" / "gunicorn_conf.py"
# A read that waited on a lock would take a lock bound at least (2 s and more).
READ_BOUND_SECONDS = 1.0
# Beyond the move's lock bound: the refusal, rendered on a loaded machine.
REFUSAL_MARGIN_SECONDS = 1.5
# SQL that takes or waits for row or advisory locks.
LOCKING_SQL = ("FOR UPDATE", "FOR NO KEY UPDATE", "FOR SHARE", "FOR KEY SHARE", "PG_ADVISORY")


@pytest.fixture
def data(stream) -> Column:
    return column_of(stream, COLLABORATION, "Data")


@pytest.fixture
def information(stream) -> Column:
    return column_of(stream, COLLABORATION, "Information")


def timed(call) -> tuple[object, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def locking_statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries if any(word in q["sql"].upper() for word in LOCKING_SQL)]


@pytest.mark.parametrize("held", ["card", "column"])
def test_board_reads_take_no_lock_and_never_wait_on_a_held_one(client, stream, member, data, held):
    card = CardFactory(column=data)
    client.force_login(member)
    board = reverse("boards:board", args=[stream.slug])
    poll = reverse("boards:board-poll", args=[stream.slug])

    with (
        row_held(Card if held == "card" else Column, card.pk if held == "card" else data.pk),
        CaptureQueriesContext(connection) as queries,
    ):
        page, page_took = timed(lambda: client.get(board))
        fresh, fresh_took = timed(lambda: client.get(poll, {"version": "old"}, headers=HTMX))

    assert (page.status_code, fresh.status_code) == (200, 200)
    assert f'data-card-id="{card.pk}"'.encode() in page.content
    assert f'data-card-id="{card.pk}"'.encode() in fresh.content
    assert page_took < READ_BOUND_SECONDS, f"the board took {page_took:.2f} s"
    assert fresh_took < READ_BOUND_SECONDS, f"the poll took {fresh_took:.2f} s"
    assert locking_statements(queries) == []


@pytest.mark.parametrize("held", ["card", "column"])
def test_a_move_on_a_held_row_is_refused_as_busy_within_its_bound(
    client, stream, member, data, information, held
):
    card = CardFactory(column=data)
    client.force_login(member)

    with row_held(Card if held == "card" else Column, card.pk if held == "card" else data.pk):
        response, took = timed(
            lambda: client.post(
                reverse("boards:card-move", args=[stream.slug, card.pk]),
                {"to_column": information.pk, "version": card.version, "dragged": "on"},
                headers=HTMX,
            )
        )

    assert response.status_code == 200
    assert Busy.default_message.encode() in response.content
    assert (
        MOVE_LOCK_TIMEOUT_SECONDS - 0.2
        <= took
        < MOVE_LOCK_TIMEOUT_SECONDS + (REFUSAL_MARGIN_SECONDS)
    )
    assert Card.objects.get(pk=card.pk).column_id == data.pk
    assert not CardMove.objects.filter(card=card).exists()


# --- through the production web server ---------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes
    cookies: SimpleCookie
    seconds: float = 0.0


class WebServer:
    """gunicorn with the production configuration (vsm/gunicorn_conf.py) on a free loopback
    port, reaching the test database; tasks in-process, cache in memory."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.log_path = directory / "gunicorn.log"
        with mock.patch.dict(os.environ):
            self.config = runpy.run_path(str(CONFIG))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "vsm.settings",
            "DATABASE_URL": worker_database_url(),
            "CELERY_BROKER_URL": "memory://",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "CACHE_URL": "locmemcache://faults",
            "PYTHONUNBUFFERED": "1",
        }
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        command = [gunicorn, "vsm.wsgi:application", "--config", "python:vsm.gunicorn_conf"]
        command += ["--bind", f"127.0.0.1:{self.port}"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(self._ready, timeout=START_SECONDS, what=lambda: f"gunicorn:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _ready(self) -> bool:
        assert self.process.poll() is None, self.log()
        try:
            return self.request("GET", "/healthz", headers={}).status == 200
        except OSError:
            return False

    def request(self, method: str, path: str, *, headers: dict[str, str], body: str = "") -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.monotonic()
        try:
            connection.request(method, path, body or None, headers)
            response = connection.getresponse()
            cookies = SimpleCookie(response.headers.get("Set-Cookie", ""))
            answer = Answer(response.status, response.read(), cookies)
        finally:
            connection.close()
        answer.seconds = time.monotonic() - started
        return answer

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def web_server(transactional_db, tmp_path) -> Iterator[WebServer]:
    """Requests ``transactional_db`` so that the server stops before the flush."""
    server = WebServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_moves_waiting_on_a_stuck_lock_leave_the_board_to_the_other_threads(
    web_server, client, stream, member, data, information
):
    workers = web_server.config["workers"]  # more moves than that wait below
    cards = [CardFactory(column=data) for _ in range(workers + 1)]
    client.force_login(member)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    board = reverse("boards:board", args=[stream.slug])
    page = web_server.request(
        "GET", board, headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}
    )
    assert page.status == 200, page.body[:500]
    csrf = page.cookies[settings.CSRF_COOKIE_NAME].value
    headers = {
        "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}",
        "X-CSRFToken": csrf,
        **HTMX,
    }
    moves: list[Answer] = []

    def move(card: Card) -> None:
        body = urllib.parse.urlencode(
            {"to_column": information.pk, "version": card.version, "dragged": "on"}
        )
        moves.append(
            web_server.request(
                "POST",
                reverse("boards:card-move", args=[stream.slug, card.pk]),
                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                body=body,
            )
        )

    with row_held(Column, information.pk):
        movers = [threading.Thread(target=move, args=(card,), daemon=True) for card in cards]
        for mover in movers:
            mover.start()
        # As many moves wait as there are worker processes: sync workers would all be
        # taken now, and the board would wait for the moves' lock bound.
        wait_for(
            lambda: len(waiting_on_a_lock()) >= workers,
            timeout=MOVE_LOCK_TIMEOUT_SECONDS,
            what=lambda: f"{workers} moves waiting; {waiting_on_a_lock()}\n{web_server.log()}",
        )
        read = web_server.request("GET", board, headers=headers)
        polled = web_server.request(
            "GET",
            reverse("boards:board-poll", args=[stream.slug]) + "?version=old",
            headers=headers,
        )
        for mover in movers:
            mover.join(timeout=MOVE_LOCK_TIMEOUT_SECONDS + 10)

    assert (read.status, polled.status) == (200, 200)
    assert read.seconds < READ_BOUND_SECONDS, f"the board took {read.seconds:.2f} s"
    assert polled.seconds < READ_BOUND_SECONDS, f"the poll took {polled.seconds:.2f} s"
    assert len(moves) == len(cards)
    for answer in moves:
        assert answer.status == 200
        assert Busy.default_message.encode() in answer.body
        assert answer.seconds < MOVE_LOCK_TIMEOUT_SECONDS + REFUSAL_MARGIN_SECONDS
    assert not CardMove.objects.filter(card__in=cards).exists()


def waiting_on_a_lock() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return [pid for (pid,) in cursor.fetchall()]
