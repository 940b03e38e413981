"""Publishing a Celery task after commit, coalesced, never failing the caller.

No task lives here: this is how the apps ask for one (``task_publish``). Every such
publish needs the same four things, whoever asks:

- After commit: the task is published once the caller's transaction commits (at once
  outside one), so its worker reads what the caller wrote, and a rollback publishes
  nothing.
- Coalesced, when the caller names a ``pending_key``: the task is published only if
  no run of it is pending already (a cache mark, set when it is published). The task
  clears its mark as it starts, before it reads anything (``task_pending_clear``): a
  change committed from then on publishes a new run, and one committed before is seen
  by the run that started. A lost message's mark expires after PENDING_SECONDS, and
  the caller's sweeper catches up meanwhile. A publish that failed clears its mark,
  so the next one is tried again.
- Never failing the caller: a cache that is down only stops the coalescing (the task
  is published, nothing is lost); a broker that is down, or run in-process the task's
  own failure, is logged with who catches up (``if_lost``).
- Bounded: never waits on Redis much longer than settings.VSM_REDIS_TIMEOUT_SECONDS
  (each command gives up after it: the cache's and the broker's socket timeouts).
  Once a failure has taken that long (Redis hangs), nothing more is tried: a cache
  that hung publishes nothing, and a publish that hung keeps its mark until it
  expires, so the publishes meanwhile wait for nothing either.

``vsm.events`` is the same rule for an announcement to several consumers at once,
with one mark per kind of change (its consumers call ``stream_change_received``).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

# How long a published task counts as pending if it never starts (a lost message):
# longer than a message waits for a free worker; the sweepers catch up meanwhile.
PENDING_SECONDS = 30


def task_publish(
    task: Task | str,
    *args: Any,
    pending_key: str | None = None,
    countdown: float | None = None,
    if_lost: str,
    after_commit: bool = True,
) -> None:
    """Publish ``task`` (a task, or its name for a caller that must not import it) with
    ``args`` after the caller's transaction commits, at once outside one; with a
    ``pending_key``, only if no run of it is pending (the task then calls
    ``task_pending_clear(pending_key)`` first thing when it runs).

    ``countdown``: seconds before a worker may run it (None: at once). ``if_lost`` says
    in the log who catches up when the publish fails (e.g. "the sweeper will").
    ``after_commit=False`` publishes at once even inside a transaction: for a caller
    whose writes are committed already (a task's body after its services returned, a
    sweep, an on-commit callback), so that a task run in-process inside an outer
    transaction (a test's, a command's) still starts the next one.

    Side effects: a cache mark ``pending_key`` for PENDING_SECONDS and a message to
    the broker (when tasks run in-process, the task runs right there), both after
    commit unless told otherwise. Never raises, not even at commit: every failure is
    logged (see the module's docstring).
    """
    publish = partial(
        _publish, task, args, pending_key=pending_key, countdown=countdown, if_lost=if_lost
    )
    if after_commit:
        transaction.on_commit(publish)
    else:
        publish()


def task_pending_clear(*pending_keys: str) -> None:
    """A task calls this first when it runs, with the mark(s) it was published under:
    what is published from now on is published again (and the task reads the database
    after this, so it sees what was committed before). Never raises."""
    try:
        cache.delete_many(list(pending_keys))
    except Exception:
        logger.warning("Cache unavailable; the pending marks expire by themselves", exc_info=True)


def _publish(
    task: Task | str,
    args: tuple[Any, ...],
    *,
    pending_key: str | None,
    countdown: float | None,
    if_lost: str,
) -> None:
    name = task if isinstance(task, str) else task.name
    gives_up_at = time.monotonic() + settings.VSM_REDIS_TIMEOUT_SECONDS
    marked: str | None = None  # the key this publish marked pending
    if pending_key is not None:
        try:
            if not cache.add(pending_key, 1, PENDING_SECONDS):
                return  # the run that is pending will see what this one would
            marked = pending_key
        except Exception:
            if time.monotonic() >= gives_up_at:
                logger.warning(
                    "Cache not answering; %s%s not enqueued, %s", name, args, if_lost, exc_info=True
                )
                return
            logger.warning(
                "Cache unavailable; enqueueing %s without coalescing", name, exc_info=True
            )
    # celery-types declares ``countdown: float``; Celery takes None as "no delay".
    try:
        if isinstance(task, str):
            from vsm.celery import app

            # By name: runs in-process when tasks are eager if its app registered it
            # (each AppConfig.ready imports its tasks), published to the broker otherwise.
            app.signature(task, args=args).apply_async(countdown=countdown)  # type: ignore[arg-type]
        else:
            task.apply_async(args, countdown=countdown)  # type: ignore[arg-type]
    except Exception:
        # After a publish that hung, clearing the mark would wait on Redis once more.
        if marked is not None and time.monotonic() < gives_up_at:
            task_pending_clear(marked)
        logger.warning("Could not enqueue %s%s; %s", name, args, if_lost, exc_info=True)
