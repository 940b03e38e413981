"""A card's timeline: its moves (the move log) and its activity (comments, edits,
blocking), merged, newest first, a page at a time.

Newest first, as a CRM's activity timeline reads (Salesforce, HubSpot, Pipedrive): the
latest of what the team knows about the prospect is what the next person on the card
needs, right under the comment box; "Show older" goes back in time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from django.db.models import Q

from boards.models import Card, CardActivity, CardMove, MoveKind
from boards.services.moves import CLOSE_UNDONE_ACTIONS
from vsm.errors import InvalidInput
from vsm.models import AuditEntry

TIMELINE_PAGE_SIZE = 20


class Source(IntEnum):
    """Where an entry comes from. At the same instant a move counts as the earlier (a
    card blocked in the instant it moved was blocked where it arrived)."""

    MOVE = 0
    ACTIVITY = 1


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# What str() writes, in ASCII digits: int() alone would also read "١" or " 1_0".
_CURSOR_TEXT = re.compile(r"-?[0-9]{1,20}\.[0-9]\.[0-9]{1,19}")


@dataclass(frozen=True, order=True)
class TimelineCursor:
    """Where a page of the timeline stops: its last (oldest) entry's time, source and
    id. The next page holds the entries older than it, in the timeline's order."""

    at: datetime
    source: Source
    id: int

    def __str__(self) -> str:
        """As a URL carries it: "<microseconds since 1970>.<source>.<id>"."""
        return f"{(self.at - _EPOCH) // _MICROSECOND}.{int(self.source)}.{self.id}"

    @classmethod
    def parse(cls, text: str) -> TimelineCursor | None:
        """The cursor ``str()`` wrote; None for "" (the newest page).

        Raises: InvalidInput when ``text`` is not one (hand-made, or cut short).
        """
        if not text:
            return None
        if _CURSOR_TEXT.fullmatch(text) is None:
            raise InvalidInput("That page of the history could not be read.")
        try:
            micros, source, row_id = (int(part) for part in text.split("."))
            cursor = cls(at=_EPOCH + micros * _MICROSECOND, source=Source(source), id=row_id)
        except (ValueError, OverflowError):
            cursor = None
        if cursor is None or not 0 < cursor.id < 2**63:
            raise InvalidInput("That page of the history could not be read.")
        return cursor


@dataclass(frozen=True)
class TimelineEntry:
    """One entry: a move (``move`` set) or an activity (``activity`` set).

    ``kind``: the move's kind ("enter", "move", "handoff", "won", "lost", "reopen";
    "undo" for a reopen that undid a close) or the activity's ("comment", "edit",
    "blocked", "unblocked"). ``who``: the actor as a page names them. ``undid``: for an
    undo, the outcome it took back ("won" or "lost").
    """

    at: datetime
    kind: str
    who: str
    move: CardMove | None = None
    activity: CardActivity | None = None
    undid: str = ""

    @property
    def cursor(self) -> TimelineCursor:
        row = self.move or self.activity
        assert row is not None
        return TimelineCursor(self.at, Source.MOVE if self.move else Source.ACTIVITY, row.pk)


@dataclass(frozen=True)
class Timeline:
    """A page of a card's timeline, newest first.

    ``older``: the cursor of the next page ("Show older"), None when this page reaches
    the card's first entry. ``from_newest``: whether the page starts at the newest entry.
    """

    entries: list[TimelineEntry]
    older: TimelineCursor | None
    from_newest: bool


def card_timeline(
    *, card: Card, before: TimelineCursor | None = None, limit: int = TIMELINE_PAGE_SIZE
) -> Timeline:
    """The card's moves and activity, newest first: the ``limit`` entries older than
    ``before`` (from the newest when None).

    In four queries whatever the length of the history: the page's moves (with their
    columns, actor, handoff, WIP override and loss), the handoffs' criteria (when the
    page has a handoff), the page's activity (with its actor); and, when the page has a
    reopen, the audit rows that say which reopens undid a close. Each source is read
    ``limit + 1`` rows deep past the cursor, which is enough to fill the merged page
    and to know whether an older one exists.
    """
    moves = (
        CardMove.objects.filter(card=card)
        .select_related(
            "from_column__cycle",
            "to_column__cycle",
            "actor",
            "handoff__to_team",
            "wip_override",
            "loss__reason",
        )
        .prefetch_related("handoff__criteria_met")
        .order_by("-moved_at", "-id")
    )
    activity = CardActivity.objects.filter(card=card).select_related("actor").order_by("-at", "-id")
    if before is not None:
        moves = moves.filter(_older_than(before, "moved_at", Source.MOVE))
        activity = activity.filter(_older_than(before, "at", Source.ACTIVITY))
    page_moves = list(moves[: limit + 1])
    undid = _undos(card, [m.pk for m in page_moves if m.kind == MoveKind.REOPEN])
    entries = [
        TimelineEntry(
            at=m.moved_at,
            kind="undo" if m.pk in undid else m.kind,
            who=m.actor_label,
            move=m,
            undid=undid.get(m.pk, ""),
        )
        for m in page_moves
    ] + [
        TimelineEntry(at=a.at, kind=a.kind, who=a.actor_label, activity=a)
        for a in activity[: limit + 1]
    ]
    entries.sort(key=lambda entry: entry.cursor, reverse=True)
    page = entries[:limit]
    older = page[-1].cursor if len(entries) > limit else None
    return Timeline(entries=page, older=older, from_newest=before is None)


# What each undo action took back, as the timeline says it ("Undid won").
_UNDID = {action: str(kind) for kind, action in CLOSE_UNDONE_ACTIONS.items()}


def _undos(card: Card, reopen_ids: list[int]) -> dict[int, str]:
    """Which of the reopens ``reopen_ids`` undid a close, and what it was ("won",
    "lost"): the move log has a reopen for both, the audit row of the move says which
    (``boards.services.card_reopen``). No query without a reopen."""
    if not reopen_ids:
        return {}
    rows = AuditEntry.objects.filter(
        target_type="card", target_id=card.pk, action__in=list(_UNDID)
    ).values_list("action", "data")
    wanted = set(reopen_ids)
    return {
        data["move_id"]: _UNDID[action]
        for action, data in rows
        if isinstance(data, dict) and data.get("move_id") in wanted
    }


def _older_than(cursor: TimelineCursor, time_field: str, source: Source) -> Q:
    """The rows of ``source`` that sort after ``cursor`` in the newest-first timeline:
    by (time, source, id), descending."""
    at_the_same_time = Q(**{time_field: cursor.at})
    if source < cursor.source:
        same_time_older = at_the_same_time
    elif source == cursor.source:
        same_time_older = at_the_same_time & Q(id__lt=cursor.id)
    else:
        same_time_older = Q(pk__in=[])
    return Q(**{f"{time_field}__lt": cursor.at}) | same_time_older
