"""The audit log's writes: one row per write service call, one per refused authorization.

``audit_record`` runs inside the caller's transaction, so the row exists exactly when
the change does. A refusal rolls the caller's transaction back, so the way in records
it afterwards with ``audit_refusal_record``, in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from vsm.actors import Actor, actor_fields
from vsm.errors import DataValue, DomainError, _checked_data
from vsm.models import AuditEntry


def audit_record(
    *,
    actor: Actor,
    action: str,
    stream_id: int | None,
    target_type: str = "",
    target_id: int | None = None,
    data: Mapping[str, DataValue] | None = None,
    at: datetime | None = None,
    refused_code: str = "",
) -> AuditEntry:
    """Append one audit row for a change the caller is making in its transaction.

    ``action``: "<entity>.<verb>" in lower case ("card.moved", "column.wip_limit_set").
    ``refused_code``: the error code when the row records a refusal.
    ``data``: ids and numbers only. Raises: TypeError for other data (a programming
    error: personal data must never reach the log).
    """
    checked = _checked_data(data)
    return AuditEntry.objects.create(
        **actor_fields(actor),
        at=at or timezone.now(),
        action=action,
        stream_id=stream_id,
        target_type=target_type,
        target_id=target_id,
        refused_code=refused_code,
        data={key: list(v) if isinstance(v, tuple) else _plain(v) for key, v in checked.items()},
    )


def _plain(value: DataValue) -> object:
    """JSON has no Decimal: amounts are stored as strings of their exact value."""
    return str(value) if isinstance(value, Decimal) else value


def audit_refusal_record(
    *,
    actor: Actor,
    action: str,
    error: DomainError,
    stream_id: int | None = None,
    target_type: str = "",
    target_id: int | None = None,
) -> AuditEntry:
    """Record that ``actor`` was refused ``action`` (not found for them, or not theirs
    to do), with the error's code and data, in a transaction of its own: the refused
    request's transaction was rolled back. Call it from a way in, outside any
    transaction (inside one it would be a savepoint, and roll back with it).
    """
    with transaction.atomic():
        entry = audit_record(
            actor=actor,
            action=action,
            stream_id=stream_id,
            target_type=target_type,
            target_id=target_id,
            data=error.data,
            refused_code=error.code,
        )
    return entry
