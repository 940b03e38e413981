"""The one way a service that takes row locks opens its transaction, and what a
request answers when the database fails it for a reason of the moment.

Bounded in time on PostgreSQL, so that a request never waits on another's locks for
long, and a bound that is hit becomes ``Busy`` (retry), never a 500. A connection
lost in the middle of a request (the server restarted, a backend was terminated, the
network dropped) is a reason of the moment too: ``busy_refusal`` says so, and
``vsm.http`` answers it as ``Busy`` after ``discard_broken_connections``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import InterfaceError, OperationalError, connection, connections, transaction

from vsm.errors import Busy

# Metrics can tell when no older write can still be in flight because these bounds
# hold (metrics.services.SETTLE_SECONDS must stay above their sum).
LOCK_TIMEOUT_SECONDS = 3
STATEMENT_TIMEOUT_SECONDS = 5
IDLE_IN_TRANSACTION_SECONDS = 10
# lock_not_available, query_canceled: a bound above was hit while others held the rows.
_BUSY_SQLSTATES = frozenset({"55P03", "57014"})
# The server ended the session: admin_shutdown (pg_terminate_backend), crash_shutdown,
# cannot_connect_now (starting up or shutting down); too_many_connections.
_GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def _limits(*, lock_timeout: float, statement_timeout: float) -> str:
    return (
        f"SET LOCAL lock_timeout = '{round(lock_timeout * 1000)}ms'; "
        f"SET LOCAL statement_timeout = '{round(statement_timeout * 1000)}ms'; "
        f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_SECONDS}s'"
    )


@contextmanager
def locking_transaction(
    *,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
) -> Iterator[None]:
    """``transaction.atomic()`` with time bounds on its locks and statements.

    A hot path (a move) may wait less than the defaults, never more. PostgreSQL
    restarts the lock timeout when a waiter moves up a queue of waiters (from the row's
    tuple lock to its holder's transaction), so only the statement timeout bounds a
    statement's whole wait.
    Raises: Busy when a bound is hit (nothing changed; the caller may retry).
    """
    limits = _limits(
        lock_timeout=min(lock_timeout, LOCK_TIMEOUT_SECONDS),
        statement_timeout=min(statement_timeout, STATEMENT_TIMEOUT_SECONDS),
    )
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(limits)
            yield
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) in _BUSY_SQLSTATES:
            raise Busy() from error
        raise


# What a request the database failed for a lost connection answers: true whether or
# not its transaction had committed when the connection went.
DATABASE_LOST_MESSAGE = "Could not reach the database just now; please try again."


def busy_refusal(error: BaseException) -> Busy | None:
    """``Busy`` when the database failed a request for a reason of the moment, not
    because of the request, so that the same request may succeed if sent again: a bound
    above was hit, or the connection was lost (no SQLSTATE from the driver, class 08,
    the server ending the session; SQLite busy). None for any other error."""
    if isinstance(error, InterfaceError):
        return Busy(DATABASE_LOST_MESSAGE)  # the connection was closed under the request
    if not isinstance(error, OperationalError):
        return None
    cause = error.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    sqlite_error = getattr(cause, "sqlite_errorname", None)
    if sqlstate in _BUSY_SQLSTATES or sqlite_error in {"SQLITE_BUSY", "SQLITE_LOCKED"}:
        return Busy()
    if sqlstate is not None:
        gone = sqlstate in _GONE_SQLSTATES or sqlstate.startswith("08")
        return Busy(DATABASE_LOST_MESSAGE) if gone else None
    # psycopg raises OperationalError without a SQLSTATE when the connection itself
    # failed ("server closed the connection unexpectedly", "consuming input failed").
    return Busy(DATABASE_LOST_MESSAGE) if isinstance(cause, psycopg.OperationalError) else None


def discard_broken_connections() -> None:
    """Close every connection of this thread that can no longer be used, so that the
    next query (of this request or the next one) opens a new one. Connections inside a
    transaction are left to it: ``atomic`` drops a connection it cannot roll back."""
    for each in connections.all(initialized_only=True):
        if not each.in_atomic_block:
            each.close_if_unusable_or_obsolete()
