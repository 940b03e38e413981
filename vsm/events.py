"""Announcing that a stream changed, to whoever consumes it, by task name after commit.

A lower app never imports a higher one to notify it: a write calls
``stream_changed``, and after its transaction commits each consumer task named in
``settings.VSM_STREAM_CHANGED_TASKS`` is sent the stream's id. Each consumer owns its
coalescing (the metrics worker skips a recompute that one already pending covers).
"""

from __future__ import annotations

import logging
from enum import StrEnum

from django.conf import settings
from django.db import transaction

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


def _send(stream_id: int, changes: list[str]) -> None:
    from vsm.celery import app

    for task_name in settings.VSM_STREAM_CHANGED_TASKS:
        try:
            # A signature by name runs in-process when tasks are eager (the embedded
            # default) if its app registered it (each consumer's AppConfig.ready imports
            # its tasks), and is published to the broker otherwise.
            app.signature(task_name, args=(stream_id, changes)).apply_async()
        except Exception:
            logger.warning(
                "Could not announce a change of stream %s to %s; its sweeper catches up",
                stream_id,
                task_name,
                exc_info=True,
            )
