"""A database that fails a request for a reason of the moment: "busy, try again", never
a 500, and the next request works.

A connection lost under a request (the server restarted, its backend terminated, the
network dropped) or a time bound hit is answered as ``Busy`` by every view
(vsm.http.DomainErrorMiddleware), and the broken connection is discarded so that the
next request connects afresh. A few test views (this module is their URLconf, on top
of the site's) raise each kind of database error, as Django raises it; on PostgreSQL,
the backends of real board requests are terminated under them (pg_terminate_backend).
"""

from __future__ import annotations

import logging
import os
import runpy
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import psycopg
import psycopg.errors
import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.db import (
    Error,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
)
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse

from boards import selectors
from boards.models import Card, CardMove, Column
from tests.factories import CardFactory
from tests.pages import element
from tests.support import COLLABORATION, column_of
from vsm import urls as site_urls
from vsm.errors import Busy
from vsm.http import respond_to_refusals
from vsm.transactions import DATABASE_LOST_MESSAGE, busy_refusal

HTMX = {"HX-Request": "true"}
ROOT = Path(settings.BASE_DIR)


def django_error(kind: type[Error], cause: BaseException) -> Error:
    """A Django database error as Django's wrapper raises it: the driver's as its cause."""
    error = kind(*cause.args)
    error.__cause__ = cause
    return error


def sqlite_error(message: str, name: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = name  # as sqlite3 sets it on the errors it raises
    return error


LOST = {
    "server-closed": django_error(
        OperationalError, psycopg.OperationalError("server closed the connection unexpectedly")
    ),
    "connection-failure-08006": django_error(
        OperationalError, psycopg.errors.ConnectionFailure("connection failure")
    ),
    "terminated-57P01": django_error(
        OperationalError,
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    ),
    "starting-up-57P03": django_error(
        OperationalError, psycopg.errors.CannotConnectNow("the database system is starting up")
    ),
    "too-many-connections-53300": django_error(
        OperationalError, psycopg.errors.TooManyConnections("too many clients already")
    ),
    "already-closed": django_error(
        InterfaceError, psycopg.InterfaceError("the connection is closed")
    ),
}
BOUND_HIT = {
    "lock-timeout-55P03": django_error(
        OperationalError, psycopg.errors.LockNotAvailable("canceling statement: lock timeout")
    ),
    "statement-timeout-57014": django_error(
        OperationalError, psycopg.errors.QueryCanceled("canceling statement: statement timeout")
    ),
    "sqlite-busy": django_error(
        OperationalError, sqlite_error("database is locked", "SQLITE_BUSY")
    ),
}
NOT_OF_THE_MOMENT = {
    "disk-full-53100": django_error(
        OperationalError, psycopg.errors.DiskFull("could not extend file")
    ),
    "sqlite-no-such-table": django_error(
        OperationalError, sqlite_error("no such table: boards_card", "SQLITE_ERROR")
    ),
    "integrity": django_error(IntegrityError, psycopg.errors.UniqueViolation("duplicate key")),
}
FAULTS = {**LOST, **BOUND_HIT}


# --- which errors are faults of the moment ---------------------------------------------


@pytest.mark.parametrize("error", LOST.values(), ids=LOST.keys())
def test_a_lost_connection_is_busy_with_a_message_true_whether_or_not_it_committed(error):
    refusal = busy_refusal(error)

    assert isinstance(refusal, Busy)
    assert (refusal.code, refusal.http_status) == ("busy", 503)
    assert refusal.message == DATABASE_LOST_MESSAGE
    assert "nothing changed" not in refusal.message


@pytest.mark.parametrize("error", BOUND_HIT.values(), ids=BOUND_HIT.keys())
def test_a_bound_hit_is_busy_and_nothing_changed(error):
    refusal = busy_refusal(error)

    assert isinstance(refusal, Busy)
    assert refusal.message == Busy.default_message


@pytest.mark.parametrize("error", NOT_OF_THE_MOMENT.values(), ids=NOT_OF_THE_MOMENT.keys())
def test_other_database_errors_are_no_fault_of_the_moment(error):
    assert busy_refusal(error) is None


# --- the web server bounds every statement ----------------------------------------------


def test_the_web_server_runs_threads_and_bounds_every_statement():
    with mock.patch.dict(os.environ):
        os.environ.pop("DATABASE_STATEMENT_TIMEOUT", None)
        config = runpy.run_path(str(ROOT / "vsm" / "gunicorn_conf.py"))
        bound = os.environ.get("DATABASE_STATEMENT_TIMEOUT")

    assert config["worker_class"] == "gthread"
    assert config["threads"] > 1
    assert bound == "10"


@pytest.mark.parametrize(
    ("bound", "options"), [("10", "-c statement_timeout=10000"), (None, None), ("0", None)]
)
def test_the_settings_pass_the_statement_bound_to_postgresql(monkeypatch, bound, options):
    monkeypatch.setenv("DATABASE_URL", "postgres://vsm@db.example:5432/vsm")
    if bound is None:
        monkeypatch.delenv("DATABASE_STATEMENT_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", bound)

    database = runpy.run_path(str(ROOT / "vsm" / "settings.py"))["DATABASES"]["default"]

    assert database.get("OPTIONS", {}).get("options") == options


# --- every view answers a fault as "busy": test views -----------------------------------


def failing(request: HttpRequest, kind: str) -> HttpResponse:
    raise FAULTS.get(kind) or NOT_OF_THE_MOMENT[kind]


def answering(request: HttpRequest, kind: str) -> HttpResponse:
    """A page that answers refusals itself from the database (as the board redraws its
    columns), which is still out of reach when it tries."""

    def respond(error):
        raise LOST["server-closed"]

    respond_to_refusals(request, respond)
    raise FAULTS[kind]


urlpatterns = [
    path("test/failing/<str:kind>/", failing),
    path("test/answering/<str:kind>/", answering),
    *site_urls.urlpatterns,
]
with_test_views = pytest.mark.urls(__name__)


def message_of(kind: str) -> str:
    refusal = busy_refusal(FAULTS[kind])
    assert refusal is not None
    return refusal.message


@with_test_views
@pytest.mark.django_db
@pytest.mark.parametrize("kind", FAULTS.keys())
def test_a_page_the_database_failed_answers_503_try_again(client, user, kind, caplog):
    client.force_login(user)

    with caplog.at_level(logging.WARNING, logger="vsm.http"):
        response = client.get(f"/test/failing/{kind}/")

    assert response.status_code == 503
    assert message_of(kind) in response.content.decode()
    assert b'class="refusal" role="alert"' in response.content
    assert b'<header class="topbar">' in response.content  # a page of the site
    [warning] = [record for record in caplog.records if record.name == "vsm.http"]
    assert warning.levelno == logging.WARNING
    assert warning.exc_info is not None


@with_test_views
@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("kind", ["server-closed", "already-closed", "lock-timeout-55P03"])
def test_an_htmx_request_the_database_failed_gets_the_busy_toast(client, user, kind, method):
    client.force_login(user)

    response = getattr(client, method)(f"/test/failing/{kind}/", headers=HTMX)

    assert response.status_code == 200  # htmx 2 swaps no 5xx body
    assert response["HX-Reswap"] == "none"
    assert element(response.content, "toasts")["hx-swap-oob"] == "beforeend"
    assert message_of(kind).encode() in response.content
    assert b'class="toast toast-error" role="alert"' in response.content


@with_test_views
@pytest.mark.django_db
def test_a_plain_form_post_the_database_failed_goes_back_with_the_message(client, user):
    client.force_login(user)
    referer = "http://testserver/streams/pumps/board/"

    response = client.post("/test/failing/terminated-57P01/", headers={"Referer": referer})

    assert response.status_code == 303
    assert response["Location"] == referer
    assert [str(m) for m in get_messages(response.wsgi_request)] == [DATABASE_LOST_MESSAGE]


@with_test_views
@pytest.mark.django_db
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_a_page_s_own_answer_that_fails_too_falls_back_to_try_again(client, user, headers):
    client.force_login(user)

    response = client.get("/test/answering/lock-timeout-55P03/", headers=headers)

    assert response.status_code == (200 if headers else 503)
    assert DATABASE_LOST_MESSAGE.encode() in response.content


@with_test_views
@pytest.mark.django_db
@pytest.mark.parametrize("kind", NOT_OF_THE_MOMENT.keys())
def test_other_database_errors_still_fail_loudly(client, user, kind):
    client.force_login(user)

    with pytest.raises(Error) as raised:
        client.get(f"/test/failing/{kind}/")

    assert raised.value is NOT_OF_THE_MOMENT[kind]


# --- real requests on PostgreSQL: the backend terminated under them ---------------------

# Longer than the bound a move waits for locks: the holder is released by the
# terminator long before.
HOLD_SECONDS = 10


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate(pid: int) -> None:
    """Terminate a backend from this thread's connection, and wait until it is gone."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert cursor.fetchone()[0], f"backend {pid} was not terminated"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone() is None:
                return
        time.sleep(0.02)
    pytest.fail(f"backend {pid} outlived its termination")


def in_another_thread(work: Callable[[], object]) -> None:
    """Run ``work`` on a connection of its own (a thread), and wait for it."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # reported to the test below
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert not failures, failures


@contextmanager
def backend_terminated_while_waiting_on(model, pk: int) -> Iterator[list[int]]:
    """Another connection holds the row's lock; the first backend that waits for it (a
    move in the middle of taking its locks) is terminated, then the lock is released.
    Yields the terminated backends' pids, filled once the block has run."""
    holding, release = threading.Event(), threading.Event()
    terminated: list[int] = []
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            from django.db import transaction

            with transaction.atomic():
                model.objects.select_for_update(no_key=True).get(pk=pk)
                holding.set()
                release.wait(timeout=HOLD_SECONDS)
        except BaseException as error:
            failures.append(error)
        finally:
            holding.set()
            connection.close()

    def terminate_the_waiter() -> None:
        try:
            deadline = time.monotonic() + HOLD_SECONDS
            while time.monotonic() < deadline and not terminated:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                    )
                    waiting = [pid for (pid,) in cursor.fetchall()]
                if waiting:
                    terminate(waiting[0])
                    terminated.append(waiting[0])
                time.sleep(0.01)
        except BaseException as error:
            failures.append(error)
        finally:
            release.set()
            connection.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(timeout=10), "the holder never took the lock"
    terminator = threading.Thread(target=terminate_the_waiter, daemon=True)
    terminator.start()
    try:
        yield terminated
    finally:
        release.set()
        terminator.join(timeout=HOLD_SECONDS + 5)
        holder.join(timeout=HOLD_SECONDS + 5)
    assert not failures, failures


@pytest.fixture
def data_and_information(stream) -> tuple[Column, Column]:
    return column_of(stream, COLLABORATION, "Data"), column_of(stream, COLLABORATION, "Information")


def move(client, stream, card: Card, to: Column, *, headers=HTMX):
    return client.post(
        reverse("boards:card-move", args=[stream.slug, card.pk]),
        {"to_column": to.pk, "version": card.version, "dragged": "on"},
        headers=headers,
    )


@pytest.mark.parametrize("headers", [HTMX, {}], ids=["drag", "plain-form"])
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_move_whose_backend_is_terminated_is_busy_then_the_next_one_moves(
    client, stream, member, data_and_information, headers
):
    data, information = data_and_information
    card = CardFactory(column=data)
    client.force_login(member)
    request_backend = backend_pid()

    with backend_terminated_while_waiting_on(Column, information.pk) as terminated:
        response = move(client, stream, card, information, headers=headers)

    assert terminated == [request_backend], "the move's own backend was terminated"
    if headers:
        # The columns as they really are (the card snaps back) and the toast.
        assert response.status_code == 200
        assert DATABASE_LOST_MESSAGE.encode() in response.content
        assert f'data-card-id="{card.pk}"'.encode() in response.content
    else:
        assert response.status_code == 302
        assert response["Location"] == reverse("boards:board", args=[stream.slug])
        assert [str(m) for m in get_messages(response.wsgi_request)] == [DATABASE_LOST_MESSAGE]
    assert Card.objects.get(pk=card.pk).column_id == data.pk  # no partial move
    assert not CardMove.objects.filter(card=card).exists()

    again = move(client, stream, card, information)

    assert again.status_code == 200
    assert DATABASE_LOST_MESSAGE.encode() not in again.content
    assert Card.objects.get(pk=card.pk).column_id == information.pk
    assert CardMove.objects.filter(card=card, to_column=information).count() == 1
    assert backend_pid() != request_backend


def dies_first(read: Callable, *, how: str) -> Callable:
    """``read``, whose request's backend is terminated first: by itself (the statement
    fails with "terminating connection", 57P01), or by another connection (the next
    statement finds the connection closed, with no SQLSTATE)."""

    def dying(*args, **kwargs):
        if how == "itself":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        else:
            pid = backend_pid()
            in_another_thread(lambda: terminate(pid))
        return read(*args, **kwargs)

    return dying


@pytest.mark.parametrize("how", ["itself", "by-another"])
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_board_read_whose_backend_is_terminated_is_503_then_the_next_one_reads(
    client, stream, member, how
):
    client.force_login(member)
    url = reverse("boards:board", args=[stream.slug])
    client.get(url)  # the session and connection are warm
    request_backend = backend_pid()

    with mock.patch.object(
        selectors, "board_get", dies_first(selectors.board_get, how=how)
    ) as patched:
        response = client.get(url)

    assert patched.__name__ == "dying"
    assert response.status_code == 503
    assert DATABASE_LOST_MESSAGE.encode() in response.content
    assert client.get(url).status_code == 200
    assert backend_pid() != request_backend


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_poll_whose_backend_is_terminated_gets_the_toast_then_the_next_one_answers(
    client, stream, member
):
    client.force_login(member)
    url = reverse("boards:board-poll", args=[stream.slug])

    with mock.patch.object(
        selectors, "board_get", dies_first(selectors.board_get, how="by-another")
    ):
        response = client.get(url, {"version": "stale"}, headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Reswap"] == "none"
    assert DATABASE_LOST_MESSAGE.encode() in response.content
    fresh = client.get(url, {"version": "stale"}, headers=HTMX)
    assert fresh.status_code == 200
    assert DATABASE_LOST_MESSAGE.encode() not in fresh.content
