"""The JSON body of a delivery: one move of the log, and the card it moved.

Shape (``schema_version`` 1)::

    {"schema_version": 1,
     "event_id": 1234,                       # the move's id: unique, increasing
     "type": "move",                         # enter | move | handoff | won | lost | reopen
     "occurred_at": "2025-03-04T10:15:00.000Z",   # when the move happened, UTC
     "stream": {"id": 3, "slug": "industrial-pumps", "name": "Industrial pumps"},
     "from_column": {"id": 11, "name": "Data", "knowledge_level": "data",
                     "cycle": {"id": 4, "name": "Collaboration"}},   # null for enter
     "to_column": {... the same shape ...},
     "estimated_value": "1200.00",           # the card's value at the move, a decimal string
     "channel": {"id": 2, "name": "Referral"},   # the card's channel at the move, or null
     "actor": {"kind": "user"},              # user | token | system
     "card": {"id": 77, "person_name": "...", "company": "...", "display_name": "...",
              "outcome": "open", "estimated_value": "1500.00",
              "column": {... the same shape as from_column ...}}}

The move's fields are as the log recorded them, so a retry sends the same event. The
card's are as it is when the delivery is sent (its name, where it is now, its outcome):
an erased prospect (boards.services.privacy) goes out with its erased, blank names.
No e-mail address, notes or person's id leaves VSM.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from boards.models import CardMove, Column

PAYLOAD_SCHEMA_VERSION = 1


def move_for_payload(move_id: int) -> CardMove:
    """The move with everything its payload reads, in one query.

    Raises: CardMove.DoesNotExist.
    """
    return CardMove.objects.select_related(
        "value_stream",
        "channel",
        "from_column__cycle",
        "to_column__cycle",
        "card__column__cycle",
    ).get(pk=move_id)


def _column(column: Column | None) -> dict[str, Any] | None:
    if column is None:
        return None
    return {
        "id": column.pk,
        "name": column.name,
        "knowledge_level": column.knowledge_level,
        "cycle": {"id": column.cycle_id, "name": column.cycle.name},
    }


def move_payload(move: CardMove) -> dict[str, Any]:
    """The payload of ``move`` (read with ``move_for_payload``); see the module's docstring."""
    card = move.card
    stream = move.value_stream
    occurred = move.moved_at.astimezone(UTC).isoformat(timespec="milliseconds")
    return {
        "schema_version": PAYLOAD_SCHEMA_VERSION,
        "event_id": move.pk,
        "type": move.kind,
        "occurred_at": occurred.replace("+00:00", "Z"),
        "stream": {"id": stream.pk, "slug": stream.slug, "name": stream.name},
        "from_column": _column(move.from_column),
        "to_column": _column(move.to_column),
        "estimated_value": str(move.estimated_value),
        "channel": {"id": move.channel.pk, "name": move.channel.name} if move.channel else None,
        "actor": {"kind": move.actor_kind},
        "card": {
            "id": card.pk,
            "person_name": card.person_name,
            "company": card.company,
            "display_name": card.display_name,
            "outcome": card.outcome,
            "estimated_value": str(card.estimated_value),
            "column": _column(card.column),
        },
    }


def payload_body(payload: dict[str, Any]) -> bytes:
    """The bytes sent and signed: compact JSON, keys sorted, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
