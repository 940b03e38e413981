"""Everything held about a prospect, for the person who asks for it (a data subject
access request): the card's facts and its whole history, as JSON or as CSV rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from boards.models import Card
from boards.selectors.history import TimelineCursor, TimelineEntry, card_timeline

# A card's history is read in pages of this many entries (bounded memory per page).
EXPORT_PAGE_SIZE = 500

CSV_HEADER = ["section", "at (UTC)", "what", "by", "field", "value"]


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _card_facts(card: Card) -> dict[str, Any]:
    return {
        "id": card.pk,
        "value_stream": card.value_stream.name,
        "person_name": card.person_name,
        "company": card.company,
        "email": card.email,
        "notes": card.notes,
        "channel": card.channel.name if card.channel else "",
        "owner": (card.owner.get_full_name() or card.owner.get_username()) if card.owner else "",
        "estimated_value": str(card.estimated_value),
        "column": card.column.name,
        "cycle": card.column.cycle.name,
        "outcome": card.outcome,
        "is_blocked": card.is_blocked,
        "blocked_reason": card.blocked_reason,
        "created_at": _iso(card.created_at),
        "updated_at": _iso(card.updated_at),
        "closed_at": _iso(card.closed_at),
        "erased_at": _iso(card.erased_at),
    }


def _entry(entry: TimelineEntry) -> dict[str, Any]:
    """One history entry with every text it holds about the prospect."""
    record: dict[str, Any] = {"at": _iso(entry.at), "kind": entry.kind, "by": entry.who}
    if entry.move is not None:
        move = entry.move
        record["from_column"] = move.from_column.name if move.from_column else ""
        record["to_column"] = move.to_column.name
        override = getattr(move, "wip_override", None)
        if override is not None:
            record["wip_override_reason"] = override.reason
        loss = getattr(move, "loss", None)
        if loss is not None:
            record["lost_reason"] = loss.reason.name if loss.reason else ""
            record["lost_note"] = loss.note
    if entry.activity is not None:
        record["text"] = entry.activity.text
        record["changes"] = list(entry.activity.changes)
    return record


def _history(card: Card) -> Iterator[TimelineEntry]:
    """The card's whole timeline, oldest page last (newest first), a page at a time."""
    before: TimelineCursor | None = None
    while True:
        page = card_timeline(card=card, before=before, limit=EXPORT_PAGE_SIZE)
        yield from page.entries
        if page.older is None:
            return
        before = page.older


def prospect_export(*, card: Card) -> dict[str, Any]:
    """What is held about the prospect of ``card``, JSON-ready:
    ``{"card": {...facts}, "history": [{"at", "kind", "by", ...texts}, ...]}``, the
    history newest first, times in UTC (ISO 8601), amounts as decimal strings.

    ``card`` as read by ``card_in_stream`` (with its column, cycle, channel, owner).
    """
    return {
        "card": _card_facts(card),
        "history": [_entry(entry) for entry in _history(card)],
    }


def prospect_export_rows(export: dict[str, Any]) -> Iterator[list[str]]:
    """``prospect_export``'s answer as CSV rows (``CSV_HEADER``): one row per card fact,
    then one per text of each history entry (an edit: one row per changed field)."""
    for name, value in export["card"].items():
        yield ["card", "", "", "", name, _text(value)]
    for entry in export["history"]:
        base = ["history", entry["at"], entry["kind"], entry["by"]]
        details = {k: v for k, v in entry.items() if k not in {"at", "kind", "by", "changes"}}
        for change in entry.get("changes", []):
            was, now = change.get("old", ""), change.get("new", "")
            yield [*base, str(change.get("field", "")), f"{was} -> {now}"]
        for name, value in details.items():
            yield [*base, name, _text(value)]
        if not details and not entry.get("changes"):
            yield [*base, "", ""]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)
