"""The one way a service that takes row locks opens its transaction.

Bounded in time on PostgreSQL, so that a request never waits on another's locks for
long, and a bound that is hit becomes ``Busy`` (retry), never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import OperationalError, connection, transaction

from vsm.errors import Busy

# Metrics can tell when no older write can still be in flight because these bounds
# hold (metrics.services.SETTLE_SECONDS must stay above their sum).
LOCK_TIMEOUT_SECONDS = 3
STATEMENT_TIMEOUT_SECONDS = 5
IDLE_IN_TRANSACTION_SECONDS = 10
_LIMITS = (
    f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'; "
    f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT_SECONDS}s'; "
    f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_SECONDS}s'"
)
# lock_not_available, query_canceled: a bound above was hit while others held the rows.
_BUSY_SQLSTATES = frozenset({"55P03", "57014"})


@contextmanager
def locking_transaction() -> Iterator[None]:
    """``transaction.atomic()`` with time bounds on its locks and statements.

    Raises: Busy when a bound is hit (nothing changed; the caller may retry).
    """
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(_LIMITS)
            yield
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) in _BUSY_SQLSTATES:
            raise Busy() from error
        raise
