"""Sending the intake's tasks by name after commit, without ever failing the caller."""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def task_send(name: str, *args: int) -> None:
    """Send the task ``name`` with ``args`` once the caller's transaction commits (at
    once outside one). By name, so that services need not import the tasks module. Never
    raises: a broker that is down is logged, and the intake sweep (intake.sweep) sends
    it again later. Run in-process (tasks eager), the task's own failure is logged too:
    the write that asked for it is committed already."""

    def send() -> None:
        from vsm.celery import app

        try:
            app.signature(name, args=args).apply_async()
        except Exception:
            logger.warning("Could not send %s%s; the intake sweep will", name, args, exc_info=True)

    transaction.on_commit(send)
