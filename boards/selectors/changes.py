"""What changed on a board since a client last looked: the versions that live updates
exchange, and the cards changed since one.

A board's version is a cursor into the order in which cards changed, plus a
fingerprint of its columns (a WIP limit or a column edited: the client needs the whole
board). Each card carries a change stamp written by the database (``Card.change_stamp``).

- PostgreSQL: the stamp is the writing transaction's id and the cursor a snapshot
  (``pg_current_snapshot()``, "xmin:xmax:xip,..."). The cards changed since are those
  whose transaction the snapshot did not see (``pg_visible_in_snapshot``): a move
  committed late by a transaction that began early is not skipped, which a "newest id
  seen" cursor would do (ids are handed out at insert, not at commit).
- SQLite: one writer at a time (transactions begin IMMEDIATE), so stamps are a counter
  in commit order and the cursor the highest stamp seen.

The cursor is taken before the board or the changes are read: a change committed in
between is sent now and again next time (an idempotent replace), never lost.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Exists,
    F,
    Func,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from boards.models import Card, Column
from vsm.caching import cache_get_quietly, cache_set_quietly
from vsm.models import ValueStream

# "xmin:xmax:xip,xip,...": a snapshot as PostgreSQL prints it, bounded in length.
_SNAPSHOT = re.compile(r"[0-9]{1,20}:[0-9]{1,20}:(?:[0-9]{1,20}(?:,[0-9]{1,20}){0,200})?")
_COUNTER = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True)
class BoardVersion:
    """Where a client's board stands: ``changes`` (a snapshot on PostgreSQL, the highest
    stamp seen on SQLite) and ``columns`` (the newest column edit, ISO time, or "-")."""

    changes: str
    columns: str

    def __str__(self) -> str:
        return f"{self.changes}|{self.columns}"

    @classmethod
    def parse(cls, text: str) -> BoardVersion | None:
        """The version ``str()`` wrote, or None for anything else (an old client's
        version, a hand-made one): the client then gets the whole board."""
        changes, _, columns = text.partition("|")
        pattern = _SNAPSHOT if connection.vendor == "postgresql" else _COUNTER
        if not columns or len(columns) > 40 or not pattern.fullmatch(changes):
            return None
        return cls(changes=changes, columns=columns)


class _AsXid8(Func):
    template = "(%(expressions)s)::text::xid8"
    output_field = TextField()


class _AsSnapshot(Func):
    template = "(%(expressions)s)::pg_snapshot"
    output_field = TextField()


class _OwnTransaction(Func):
    """This transaction's id if it has one (it has written), else NULL."""

    template = "(pg_current_xact_id_if_assigned())::text::bigint"
    output_field = BigIntegerField()


class _VisibleInSnapshot(Func):
    """Whether a transaction (a stamp) is visible in a snapshot: committed before it."""

    function = "pg_visible_in_snapshot"
    output_field = BooleanField()


def _columns_edited(stream: ValueStream) -> Subquery:
    newest = Column.objects.filter(cycle__value_stream=OuterRef("pk")).order_by("-updated_at")
    return Subquery(newest.values("updated_at")[:1])


def board_version(*, stream: ValueStream) -> BoardVersion:
    """The stream's board version now, in one query; take it before reading the board."""
    changes: RawSQL | Subquery
    if connection.vendor == "postgresql":
        changes = RawSQL("pg_current_snapshot()::text", [])
    else:
        changes = Subquery(
            Card.objects.order_by()
            .values("value_stream")
            .annotate(top=Max("change_stamp"))
            .filter(value_stream=OuterRef("pk"))
            .values("top")[:1]
        )
    stamp, edited = (
        ValueStream.objects.filter(pk=stream.pk).values_list(changes, _columns_edited(stream)).get()
    )
    return BoardVersion(
        changes=str(stamp if stamp is not None else 0),
        columns=edited.isoformat() if edited else "-",
    )


PUBLISHED_KEY = "board-version-published:{stream_id}"


def board_version_published(*, stream: ValueStream, max_age_seconds: float) -> BoardVersion:
    """The stream's board version as last published to its viewers, if that is at most
    ``max_age_seconds`` old (wall clock, shared by every process through the cache);
    else the version now (one query), published in its place.

    Every viewer that polls within one such interval is told the same version, so the
    viewers' versions fall into step and they ask for the same few deltas, which are
    rendered once for all of them (boards.views.board.board_poll). A change committed
    after the version was taken reaches them at most ``max_age_seconds`` later.
    With the cache down, every call takes the version now.
    """
    key = PUBLISHED_KEY.format(stream_id=stream.pk)
    published = cache_get_quietly(key)
    if (
        isinstance(published, tuple)
        and len(published) == 2
        and isinstance(published[0], str)
        and isinstance(published[1], float)
        and 0 <= time.time() - published[1] <= max_age_seconds
    ):
        version = BoardVersion.parse(published[0])
        if version is not None:
            return version
    version = board_version(stream=stream)
    cache_set_quietly(key, (str(version), time.time()), timeout=max(60.0, 4 * max_age_seconds))
    return version


def _changed_since(stream: ValueStream, since: BoardVersion) -> QuerySet[Card]:
    cards = Card.objects.filter(value_stream=stream).order_by()
    if connection.vendor == "postgresql":
        xmin = int(since.changes.split(":", 1)[0])
        seen = _VisibleInSnapshot(_AsXid8(F("change_stamp")), _AsSnapshot(Value(since.changes)))
        # A transaction sees its own writes; no snapshot lists its own transaction as
        # visible. (The poll writes nothing, so this matters only for a reader that has
        # written in the same transaction, such as a test wrapped in one.)
        own = _OwnTransaction()
        return (
            cards.filter(change_stamp__gte=xmin)
            .alias(seen=seen)
            .filter(seen=False)
            .exclude(change_stamp=Coalesce(own, Value(0)))
        )
    return cards.filter(change_stamp__gt=int(since.changes))


def board_unchanged(*, stream: ValueStream, since: BoardVersion) -> bool:
    """Whether nothing the board shows changed since ``since``, in one query: no card
    changed and no column edited (the poll of every open board asks every 2 s)."""
    edited, changed = (
        ValueStream.objects.filter(pk=stream.pk)
        .values_list(_columns_edited(stream), Exists(_changed_since(stream, since)))
        .get()
    )
    return (edited.isoformat() if edited else "-") == since.columns and not changed


def cards_changed(*, stream: ValueStream, since: BoardVersion, limit: int) -> list[int] | None:
    """The ids of the stream's cards changed since ``since`` (open or closed now), at
    most ``limit``; None when there are more (the client is too far behind: it gets
    the whole board)."""
    ids = list(_changed_since(stream, since).values_list("pk", flat=True)[: limit + 1])
    return None if len(ids) > limit else ids
