"""The exports' one write: an audit row saying that a stream's data left the product.

Personal data leaving is worth knowing about (boards.services.privacy audits a single
prospect's export the same way): the cards export holds prospects' names, e-mails and
notes; the move log, the free-text reasons given for WIP overrides and losses; the
metrics tables, the names of the cards behind the cycle-time and aging dots. The row
holds ids, numbers and flags only (vsm.audit): which export, of which stream, with
which filters; never a search text, which may be a person's name.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import models, transaction

from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.errors import DataValue
from vsm.models import AuditEntry, ValueStream


class ExportKind(models.TextChoices):
    CARDS = "cards", "Cards"
    MOVE_LOG = "moves", "Move log"
    METRICS = "metrics", "Metrics tables"


def stream_export_record(
    *,
    actor: Actor,
    stream: ValueStream,
    kind: ExportKind,
    data: Mapping[str, DataValue] | None = None,
) -> AuditEntry:
    """Record that ``actor`` exported ``kind`` of ``stream`` (which the caller read
    through ``vsm.access.stream_access`` for this actor).

    ``data``: the export's parameters as ids, numbers and flags.
    Raises: TypeError for other data (a programming error: no text reaches the log).
    Side effects: an audit row "stream.<kind>_exported", targeting the stream.
    """
    with transaction.atomic():
        return audit_record(
            actor=actor,
            action=f"stream.{kind.value}_exported",
            stream_id=stream.pk,
            target_type="stream",
            target_id=stream.pk,
            data=data,
        )
