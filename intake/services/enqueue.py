"""Sending the intake's tasks by name after commit, without ever failing the caller."""

from __future__ import annotations

from vsm.tasks import task_publish


def task_send(name: str, *args: int) -> None:
    """Send the task ``name`` with ``args`` once the caller's transaction commits (at
    once outside one). By name, so that services need not import the tasks module. Never
    raises (vsm.tasks.task_publish): a broker that is down is logged, and the intake
    sweep (intake.sweep) sends it again later. Run in-process (tasks eager), the task's
    own failure is logged too: the write that asked for it is committed already."""
    task_publish(name, *args, if_lost="the intake sweep will")
