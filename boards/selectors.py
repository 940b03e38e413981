"""Reads of the board, scoped to what the user may see.

The board is read in a fixed number of queries whatever the number of cards: the
columns, one aggregate for the counts, and one windowed query for the first page
of every column.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Max, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.shortcuts import get_object_or_404

from boards.models import Card, CardMove, Column, Outcome
from pdca.models import ControlPoint, Cycle
from vsm.models import Channel, ValueStream
from vsm.selectors import AnyUser, value_streams_visible_to

COLUMN_PAGE_SIZE = 25


@dataclass(frozen=True)
class BoardFilters:
    channel_id: int | None = None
    owner_id: int | None = None
    text: str = ""
    blocked_only: bool = False

    @property
    def active(self) -> bool:
        return bool(self.channel_id or self.owner_id or self.text or self.blocked_only)

    def querystring(self) -> str:
        """The filters as URL parameters, to carry them into 'show more' requests."""
        params = {
            "channel": self.channel_id or "",
            "owner": self.owner_id or "",
            "q": self.text,
            "blocked": "1" if self.blocked_only else "",
        }
        return urlencode({key: value for key, value in params.items() if value})

    def apply(self, cards: QuerySet[Card]) -> QuerySet[Card]:
        if self.channel_id:
            cards = cards.filter(channel_id=self.channel_id)
        if self.owner_id:
            cards = cards.filter(owner_id=self.owner_id)
        if self.text:
            cards = cards.filter(
                Q(person_name__icontains=self.text)
                | Q(company__icontains=self.text)
                | Q(email__icontains=self.text)
                | Q(notes__icontains=self.text)
            )
        if self.blocked_only:
            cards = cards.filter(is_blocked=True)
        return cards


@dataclass
class ColumnView:
    column: Column
    open_count: int = 0
    shown_count: int = 0
    cards: list[Card] = field(default_factory=list)

    @property
    def wip_state(self) -> str:
        """'over', 'at' or 'under' the WIP limit ('' when the column has none)."""
        limit = self.column.wip_limit
        if limit is None:
            return ""
        if self.open_count > limit:
            return "over"
        return "at" if self.open_count == limit else "under"

    @property
    def has_more(self) -> bool:
        return self.shown_count > len(self.cards)


@dataclass
class CycleView:
    cycle: Cycle
    columns: list[ColumnView]
    outgoing_control_point: ControlPoint | None = None


@dataclass
class Board:
    stream: ValueStream
    cycles: list[CycleView]
    filters: BoardFilters
    version: str

    @property
    def column_views(self) -> list[ColumnView]:
        return [column for cycle in self.cycles for column in cycle.columns]


def stream_for_user(*, user: AnyUser, slug: str) -> ValueStream:
    """The stream with this slug if the user may see it; 404 otherwise (no existence leak)."""
    return get_object_or_404(value_streams_visible_to(user).select_related("manager"), slug=slug)


def value_streams_for_user(*, user: AnyUser) -> QuerySet[ValueStream]:
    return (
        value_streams_visible_to(user)
        .select_related("manager")
        .annotate(open_cards=Count("cards", filter=Q(cards__outcome=Outcome.OPEN)))
        .order_by("name")
    )


def _card_queryset() -> QuerySet[Card]:
    return Card.objects.select_related("channel", "owner", "owning_team").order_by("position", "id")


def board_version(*, stream: ValueStream) -> str:
    """A fingerprint that changes whenever anything shown on the board changes.

    Moves bump the last move id; edits bump a card's updated_at; WIP limit or column
    changes bump a column's updated_at. Cheap: three index-backed aggregates.
    """
    last_move = CardMove.objects.filter(value_stream=stream).aggregate(m=Max("id"))["m"] or 0
    last_card: datetime | None = Card.objects.filter(value_stream=stream).aggregate(
        m=Max("updated_at")
    )["m"]
    last_column: datetime | None = Column.objects.filter(cycle__value_stream=stream).aggregate(
        m=Max("updated_at")
    )["m"]
    stamps = [
        str(last_move),
        last_card.isoformat() if last_card else "-",
        last_column.isoformat() if last_column else "-",
    ]
    return ".".join(stamps)


def _column_views(
    *, stream: ValueStream, columns: list[Column], filters: BoardFilters, with_cards: bool = True
) -> dict[int, ColumnView]:
    """Counts and first pages for these columns, in three queries whatever their size."""
    views = {column.pk: ColumnView(column=column) for column in columns}
    open_cards = Card.objects.filter(
        value_stream=stream, outcome=Outcome.OPEN, column_id__in=list(views)
    )
    for row in open_cards.values("column_id").annotate(n=Count("id")):
        views[row["column_id"]].open_count = row["n"]
    if filters.active:
        for row in filters.apply(open_cards).values("column_id").annotate(n=Count("id")):
            views[row["column_id"]].shown_count = row["n"]
    else:
        for view in views.values():
            view.shown_count = view.open_count
    if not with_cards:
        return views

    first_pages = (
        filters.apply(
            _card_queryset().filter(
                value_stream=stream, outcome=Outcome.OPEN, column_id__in=list(views)
            )
        )
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("column_id")],
                order_by=[F("position").asc(), F("id").asc()],
            )
        )
        .filter(rank__lte=COLUMN_PAGE_SIZE)
    )
    for card in first_pages:
        views[card.column_id].cards.append(card)
    return views


def board_columns(
    *,
    stream: ValueStream,
    column_ids: Iterable[int],
    filters: BoardFilters | None = None,
    with_cards: bool = True,
) -> list[ColumnView]:
    """Fresh views of some columns of a stream, to re-render them after a change."""
    columns = list(
        Column.objects.filter(cycle__value_stream=stream, pk__in=list(column_ids))
        .select_related("cycle")
        .order_by("cycle__order", "order")
    )
    views = _column_views(
        stream=stream, columns=columns, filters=filters or BoardFilters(), with_cards=with_cards
    )
    return list(views.values())


def board_get(*, stream: ValueStream, filters: BoardFilters | None = None) -> Board:
    """The whole board of a stream: cycles, columns, counts, and each column's first page."""
    filters = filters or BoardFilters()
    columns = list(
        Column.objects.filter(cycle__value_stream=stream)
        .select_related("cycle__owning_team")
        .order_by("cycle__order", "order")
    )
    views = _column_views(stream=stream, columns=columns, filters=filters)

    control_points = {
        cp.from_cycle_id: cp
        for cp in ControlPoint.objects.filter(from_cycle__value_stream=stream).select_related(
            "to_cycle"
        )
    }
    cycles: dict[int, CycleView] = {}
    for column in columns:
        cycle_view = cycles.get(column.cycle_id)
        if cycle_view is None:
            cycle_view = cycles[column.cycle_id] = CycleView(
                cycle=column.cycle,
                columns=[],
                outgoing_control_point=control_points.get(column.cycle_id),
            )
        cycle_view.columns.append(views[column.pk])
    return Board(
        stream=stream,
        cycles=list(cycles.values()),
        filters=filters,
        version=board_version(stream=stream),
    )


def column_cards_page(
    *, stream: ValueStream, column_id: int, filters: BoardFilters, offset: int
) -> tuple[Column, list[Card], bool]:
    """One further page of a column's open cards, for 'show more'."""
    column = get_object_or_404(
        Column.objects.select_related("cycle"), pk=column_id, cycle__value_stream=stream
    )
    cards = list(
        filters.apply(_card_queryset().filter(column=column, outcome=Outcome.OPEN))[
            offset : offset + COLUMN_PAGE_SIZE + 1
        ]
    )
    return column, cards[:COLUMN_PAGE_SIZE], len(cards) > COLUMN_PAGE_SIZE


def board_filter_choices(*, stream: ValueStream) -> dict[str, list]:
    """Channels and owners to offer in the board's filter bar."""
    owners = (
        get_user_model()
        .objects.filter(owned_cards__value_stream=stream, owned_cards__outcome=Outcome.OPEN)
        .distinct()
        .order_by("first_name", "username")
    )
    return {
        "channels": list(Channel.objects.filter(value_stream=stream).order_by("name")),
        "owners": list(owners),
    }


def card_for_user(*, stream: ValueStream, card_id: int) -> Card:
    """A card of a stream the user can already see; 404 when it belongs elsewhere."""
    return get_object_or_404(
        Card.objects.select_related("column__cycle", "channel", "owner", "owning_team"),
        pk=card_id,
        value_stream=stream,
    )


def card_history(*, card: Card) -> list[CardMove]:
    """The card's whole move log, oldest first, with the handoffs' checklists."""
    return list(
        CardMove.objects.filter(card=card)
        .select_related("from_column__cycle", "to_column__cycle", "actor", "handoff__to_team")
        .prefetch_related("handoff__criteria_met")
        .order_by("moved_at", "id")
    )


def move_destinations(*, card: Card) -> list[tuple[Cycle, list[Column], ControlPoint | None]]:
    """Where a card may be sent: its own cycle's columns, and each next cycle through its
    control point."""
    columns = list(
        Column.objects.filter(cycle__value_stream_id=card.value_stream_id)
        .select_related("cycle")
        .order_by("cycle__order", "order")
    )
    control_points = {
        cp.to_cycle_id: cp for cp in ControlPoint.objects.filter(from_cycle_id=card.column.cycle_id)
    }
    by_cycle: dict[int, tuple[Cycle, list[Column], ControlPoint | None]] = {}
    for column in columns:
        if column.cycle_id not in by_cycle:
            by_cycle[column.cycle_id] = (column.cycle, [], control_points.get(column.cycle_id))
        by_cycle[column.cycle_id][1].append(column)
    return [
        entry
        for cycle_id, entry in by_cycle.items()
        if cycle_id == card.column.cycle_id or entry[2] is not None
    ]


def control_point_between(*, card: Card, to_column: Column) -> ControlPoint | None:
    return (
        ControlPoint.objects.filter(
            from_cycle_id=card.column.cycle_id, to_cycle_id=to_column.cycle_id
        )
        .select_related("from_cycle", "to_cycle", "receiving_team")
        .prefetch_related("criteria")
        .first()
    )


def stream_members(*, stream: ValueStream):
    return (
        get_user_model()
        .objects.filter(memberships__team__value_stream=stream)
        .distinct()
        .order_by("first_name", "username")
    )
