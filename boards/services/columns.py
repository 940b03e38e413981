"""Column settings: the WIP limit."""

from __future__ import annotations

from django.db import transaction

from boards.errors import InvalidMove, PermissionRefused
from boards.models import Column
from boards.services.locks import _lock_columns
from metrics.tasks import enqueue_refresh
from vsm.selectors import user_manages_stream


def column_set_wip_limit(*, column_id: int, wip_limit: int | None, actor) -> Column:
    """Change a column's WIP limit. Only admins and the stream's manager may.

    Locks: the column. Raises: PermissionRefused, InvalidMove.
    Side effects: when the limit changes, asks for a fresh metrics document after commit
    (it shows each column's limit and weighs it in finding the constraint).
    """
    if wip_limit is not None and wip_limit < 1:
        raise InvalidMove("A WIP limit is empty or at least 1.")
    with transaction.atomic():
        column = _lock_columns([column_id])[column_id]
        if not user_manages_stream(actor, column.cycle.value_stream):
            raise PermissionRefused(
                "Only an admin or the value stream manager may change WIP limits."
            )
        if column.wip_limit != wip_limit:
            enqueue_refresh(column.cycle.value_stream_id)
        column.wip_limit = wip_limit
        column.save(update_fields=["wip_limit", "updated_at"])
    return column
