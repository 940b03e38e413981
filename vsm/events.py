"""Announcing that a stream changed, to whoever consumes it, by task name after commit.

A lower app never imports a higher one to notify it: a write calls
``stream_changed``, and after its transaction commits each consumer task named in
``settings.VSM_STREAM_CHANGED_TASKS`` is sent the stream's id, unless an announcement
of the same change is still pending for that consumer (it clears its marks when it
starts: ``stream_change_received``). Each consumer owns what it does with a change and
its own coalescing (the metrics worker skips a recompute that one already pending
covers), publishing its own tasks with ``vsm.tasks.task_publish``.

The sending follows vsm.tasks's rule (after commit, a pending mark, never failing the
write, bounded when Redis hangs), for several consumers in one message each: a mark
per consumer and kind of change, and one time bound for them all.
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from vsm.tasks import PENDING_SECONDS, task_pending_clear

logger = logging.getLogger(__name__)


class StreamChange(StrEnum):
    """What changed: the move log grew, or something the metrics read besides the log
    (a card blocked or unblocked, a WIP limit, the stream's configuration)."""

    MOVES = "moves"
    SETTINGS = "settings"


class _Announcement:
    """The after-commit callback of one transaction's changes to one stream."""

    def __init__(self, stream_id: int, change: StreamChange) -> None:
        self.stream_id = stream_id
        self.changes = {change}
        self.sent = False

    def __call__(self) -> None:
        self.sent = True
        _send(self.stream_id, sorted(self.changes))


def stream_changed(stream_id: int, change: StreamChange) -> None:
    """Announce after commit that the stream changed; once per stream and transaction,
    however many changes the transaction holds (their kinds are merged).

    Side effects: after commit, sends each consumer task ``(stream_id, changes)`` where
    ``changes`` is the sorted list of kinds. Never fails the write: a broker error is
    logged, and each consumer's sweeper catches up. Nothing is sent on rollback.
    """
    connection = transaction.get_connection()
    for _, callback, _ in connection.run_on_commit:
        if (
            isinstance(callback, _Announcement)
            and callback.stream_id == stream_id
            and not callback.sent
        ):
            callback.changes.add(change)
            return
    transaction.on_commit(_Announcement(stream_id, change))


# A sent announcement counts as pending for its consumer as a published task does
# (vsm.tasks): the consumer clears the mark when it starts (``stream_change_received``);
# a lost message's mark expires after PENDING_SECONDS, and its sweeper catches up.
def _pending_key(task_name: str, stream_id: int, change: str) -> str:
    return f"vsm:stream-changed:{task_name}:{stream_id}:{change}"


def _send(stream_id: int, changes: list[str]) -> None:
    """Send each consumer the changes it has no pending announcement of yet: a burst of
    moves on one stream makes one message per consumer until it starts, not one each
    (a message is a broker round trip for the request and a task run for the worker).

    Never waits on Redis much longer than settings.VSM_REDIS_TIMEOUT_SECONDS: each
    command gives up after it (the cache's and the broker's socket timeouts), and once
    a failure has taken that long (Redis hangs) nothing more is tried. A send that
    hung keeps its pending mark until the mark expires, so the writes meanwhile send
    nothing and wait for nothing. The consumers' sweepers catch up what was not sent.
    """
    from vsm.celery import app

    gives_up_at = time.monotonic() + settings.VSM_REDIS_TIMEOUT_SECONDS
    for task_name in settings.VSM_STREAM_CHANGED_TASKS:
        try:
            fresh = [change for change in changes if _mark_pending(task_name, stream_id, change)]
            marked = True
        except Exception:
            if time.monotonic() >= gives_up_at:
                logger.warning(
                    "Cache not answering; stream %s's change left to the sweepers",
                    stream_id,
                    exc_info=True,
                )
                return
            logger.warning("Cache unavailable; announcing without coalescing", exc_info=True)
            fresh, marked = changes, False
        if not fresh:
            continue
        try:
            # A signature by name runs in-process when tasks are eager (the embedded
            # default) if its app registered it (each consumer's AppConfig.ready imports
            # its tasks), and is published to the broker otherwise.
            app.signature(task_name, args=(stream_id, fresh)).apply_async()
        except Exception:
            hung = time.monotonic() >= gives_up_at
            if marked and not hung:
                stream_change_received(task_name, stream_id, fresh)
            logger.warning(
                "Could not announce a change of stream %s to %s; its sweeper catches up",
                stream_id,
                task_name,
                exc_info=True,
            )
            if hung:
                return


def _mark_pending(task_name: str, stream_id: int, change: str) -> bool:
    """Mark the change pending for the consumer; False if it was pending already.
    Raises what the cache raises (with the cache down, every change is sent: nothing
    coalesces, nothing is lost)."""
    return bool(cache.add(_pending_key(task_name, stream_id, change), 1, PENDING_SECONDS))


def stream_change_received(task_name: str, stream_id: int, changes: list[str]) -> None:
    """A consumer calls this first when it runs: changes announced from now on are sent
    to it again (it reads the stream after this, so it sees those before). Never raises."""
    task_pending_clear(*(_pending_key(task_name, stream_id, change) for change in changes))
