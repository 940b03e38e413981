"""What a stream's exports hold, as rows of plain values, read in bounded chunks.

Cards and moves are read by keyset (``id > last id``, ordered by id, ``chunk_size``
rows at a time), never all at once and never with a server-side cursor: that works on
SQLite, on PostgreSQL, and behind PgBouncer in transaction pooling
(``DATABASE_POOLER=transaction``), where a cursor cannot outlive its transaction. Each
chunk is two queries (its ids, then its rows), whatever the stream's size, so an export
of N rows costs about ``2 N / chunk_size`` queries and holds one chunk in memory at a
time.

Times are UTC, ISO 8601 to the second; amounts are decimal; durations are days with two
decimals (as the metrics give them); flags are "yes" or "no".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from boards.models import Card, CardLoss, CardMove, MoveKind, Outcome
from boards.selectors import BoardFilters
from metrics.charts import Chart
from metrics.selectors.dashboard import dashboard_get
from metrics.selectors.query import MetricsQuery
from metrics.selectors.readmodel import StreamMetricsDocument
from metrics.selectors.statistics import DAY
from vsm.models import ValueStream

# Rows a chunk holds: a few hundred kilobytes of text at most.
EXPORT_CHUNK_SIZE = 1000

Row = list[object]

CARD_COLUMNS = [
    "card id",
    "person",
    "company",
    "e-mail",
    "channel",
    "owner",
    "team",
    "cycle",
    "column",
    "outcome",
    "estimated value",
    "created (UTC)",
    "entered column (UTC)",
    "days in column",
    "days in stream",
    "blocked",
    "blocked reason",
    "closed (UTC)",
    "lost reason",
    "notes",
]

MOVE_COLUMNS = [
    "move id",
    "time (UTC)",
    "card id",
    "kind",
    "from cycle",
    "from column",
    "to cycle",
    "to column",
    "channel",
    "estimated value",
    "actor kind",
    "actor token id",
    "actor system",
    "WIP override",
    "WIP override reason",
    "lost reason",
    "lost note",
]


def utc_iso(moment: datetime | None) -> str:
    """``moment`` in UTC as ISO 8601 to the second ("2026-03-02T14:05:07+00:00"), or ""."""
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else ""


def _days(start: datetime | None, end: datetime | None) -> float | str:
    if start is None or end is None:
        return ""
    return round(max(0.0, (end - start).total_seconds()) / DAY, 2)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _person_name(first: str | None, last: str | None, username: str | None) -> str:
    """A person as the board names them: full name, else user name ("" for nobody)."""
    full = f"{first or ''} {last or ''}".strip()
    return full or username or ""


@dataclass(frozen=True)
class CardExportQuery:
    """A stream's cards for export: those the board's ``filters`` match (the board's own
    BoardFilters, so the file holds what the board shows), open ones only unless
    ``include_closed`` (won and lost too, the filters applied alike). Ages are measured
    at ``now``."""

    stream: ValueStream
    now: datetime
    filters: BoardFilters = field(default_factory=BoardFilters)
    include_closed: bool = False


def _final_lost_reason() -> Subquery:
    """The name of the reason of a lost card's final loss: its close time is that lost
    move's (as the archive reads it, boards.selectors.archive)."""
    losses = CardLoss.objects.filter(
        move__card=OuterRef("pk"), move__kind=MoveKind.LOST, move__moved_at=OuterRef("closed_at")
    )
    return Subquery(losses.values("reason__name")[:1])


def _export_cards(query: CardExportQuery) -> QuerySet[Card]:
    """The cards ``query`` asks for, by the board's own filters, in no order."""
    cards = Card.objects.filter(value_stream=query.stream)
    if not query.include_closed:
        cards = cards.filter(outcome=Outcome.OPEN)
    return query.filters.apply(cards)


_CARD_FIELDS = (
    "pk",
    "person_name",
    "company",
    "email",
    "channel__name",
    "owner__first_name",
    "owner__last_name",
    "owner__username",
    "owning_team__name",
    "column__cycle__name",
    "column__name",
    "outcome",
    "estimated_value",
    "created_at",
    "column_entered_at",
    "is_blocked",
    "blocked_reason",
    "closed_at",
    "notes",
)


def card_export_chunks(
    query: CardExportQuery, *, chunk_size: int = EXPORT_CHUNK_SIZE
) -> Iterator[list[Row]]:
    """The cards of ``query`` as rows of ``CARD_COLUMNS``, by card id, ``chunk_size``
    rows per chunk, two queries per chunk.

    "days in column": an open card's time in its column until ``query.now`` (empty for
    a closed card); "days in stream": from its creation to its close, or to
    ``query.now`` while open. "lost reason": the reason of a lost card's final loss.
    A card changed meanwhile is read as it is when its chunk is read; none is read twice.
    """
    rows = Card.objects.all()
    fields: tuple[str, ...] = _CARD_FIELDS
    if query.include_closed:
        rows = rows.annotate(lost_reason_name=_final_lost_reason())
        fields = (*fields, "lost_reason_name")
    for chunk in _keyset_chunks(_export_cards(query), rows.values(*fields), chunk_size):
        yield [_card_row(card, now=query.now) for card in chunk]


def _keyset_chunks(
    matching: QuerySet[Any],
    rows: QuerySet[Any, dict[str, Any]],
    chunk_size: int,
    *,
    last_id: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """``rows`` (values with their joins) of the ids ``matching`` selects, by id,
    ``chunk_size`` at a time, in two queries a chunk: the chunk's ids (a range scan of
    an index on the filters alone), then those rows with their joins, by primary key.
    No cursor is kept open between chunks.

    Not one query that joins and then LIMITs: on a table whose statistics lag (a bulk
    import not yet analysed), PostgreSQL planned that join over every row left in the
    range, ~1 s a chunk of a 200,000-move log, and a LIMITed ``IN`` subquery fared no
    better once analysed; a list of ids is planned as index look-ups whatever the
    statistics. ``last_id``: no row lies beyond it, so a full last chunk ends the
    reading without one more query.
    """
    after = 0
    while True:
        ids = list(
            matching.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:chunk_size]
        )
        if not ids:
            return
        yield list(rows.filter(pk__in=ids).order_by("pk"))
        after = ids[-1]
        if len(ids) < chunk_size or (last_id is not None and after >= last_id):
            return


def _card_row(card: dict[str, Any], *, now: datetime) -> Row:
    is_open = card["outcome"] == Outcome.OPEN
    return [
        card["pk"],
        card["person_name"],
        card["company"],
        card["email"],
        card["channel__name"] or "",
        _person_name(card["owner__first_name"], card["owner__last_name"], card["owner__username"]),
        card["owning_team__name"] or "",
        card["column__cycle__name"],
        card["column__name"],
        card["outcome"],
        card["estimated_value"],
        utc_iso(card["created_at"]),
        utc_iso(card["column_entered_at"]),
        _days(card["column_entered_at"], now) if is_open else "",
        _days(card["created_at"], now if is_open else card["closed_at"]),
        _yes_no(card["is_blocked"]),
        card["blocked_reason"],
        utc_iso(card["closed_at"]),
        card.get("lost_reason_name") or "",
        card["notes"],
    ]


def move_log_end(*, stream: ValueStream) -> int:
    """The id of the stream's newest move (0 when it has none): where an export of its
    log stops, so that moves made while it streams are left for the next one."""
    last = (
        CardMove.objects.filter(value_stream=stream)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    return last or 0


_MOVE_FIELDS = (
    "pk",
    "moved_at",
    "card_id",
    "kind",
    "from_column__cycle__name",
    "from_column__name",
    "to_column__cycle__name",
    "to_column__name",
    "channel__name",
    "estimated_value",
    "actor_kind",
    "actor_token_id",
    "actor_system",
    "wip_override__reason",
    "loss__reason__name",
    "loss__note",
)


def move_log_chunks(
    *, stream: ValueStream, through_move_id: int, chunk_size: int = EXPORT_CHUNK_SIZE
) -> Iterator[list[Row]]:
    """The stream's move log up to move ``through_move_id``, oldest id first, as rows
    of ``MOVE_COLUMNS``, ``chunk_size`` rows per chunk, two queries per chunk.

    Who moved a card is given by kind only (a person, an API token by its id, a part of
    the system by its name): the export holds no person's identity. "WIP override":
    whether the move went over the column's limit, with the reason given (blank once
    erased); "lost reason" and "lost note": why a lost move lost the deal.
    """
    moves = CardMove.objects.filter(value_stream=stream, pk__lte=through_move_id)
    rows = CardMove.objects.values(*_MOVE_FIELDS)
    for chunk in _keyset_chunks(moves, rows, chunk_size, last_id=through_move_id):
        yield [_move_row(move) for move in chunk]


def _move_row(move: dict[str, Any]) -> Row:
    reason = move["wip_override__reason"]
    return [
        move["pk"],
        utc_iso(move["moved_at"]),
        move["card_id"],
        move["kind"],
        move["from_column__cycle__name"] or "",
        move["from_column__name"] or "",
        move["to_column__cycle__name"],
        move["to_column__name"],
        move["channel__name"] or "",
        move["estimated_value"],
        move["actor_kind"],
        move["actor_token_id"] or "",
        move["actor_system"],
        # A LEFT JOIN: None when the move has no override row; "" when its reason was erased.
        _yes_no(reason is not None),
        reason or "",
        move["loss__reason__name"] or "",
        move["loss__note"] or "",
    ]


@dataclass(frozen=True)
class MetricsTables:
    """The dashboard's tables for one query, in page order: each chart's ``columns`` and
    ``rows`` (what its own CSV download holds), with the document they were drawn from
    (its window and when it was computed)."""

    query: MetricsQuery
    document: StreamMetricsDocument
    charts: Sequence[Chart]


def metrics_tables(query: MetricsQuery) -> MetricsTables:
    """Every table of the dashboard of ``query``, as ``dashboard_get`` builds them for the
    page (metrics.charts shapes them; the page, its CSV downloads and this export share
    them). As many queries as the dashboard, whatever the history's length."""
    dashboard = dashboard_get(query)
    return MetricsTables(query=query, document=dashboard.document, charts=dashboard.charts)
