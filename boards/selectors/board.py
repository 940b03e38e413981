"""The board of a stream and its columns.

The board is read in a fixed number of queries whatever the number of cards: the
columns, one aggregate for the counts and open values, and one windowed query for the
first page of every column (or as many cards as the client already shows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber

from boards.models import Card, Column, Outcome
from boards.selectors.cards import column_in_stream
from boards.selectors.changes import BoardVersion, board_version_published
from pdca.models import ControlPoint, Cycle
from pdca.selectors import ExperimentQuery, cycles_running
from vsm.models import Channel, ValueStream

COLUMN_PAGE_SIZE = 25
# The most cards one column shows at once: what a client that pressed "show more" many
# times may ask a refresh for, and the page of a column a card was just added to the
# end of (so it shows where it landed).
COLUMN_SHOWN_MAX = 500

# A "show more" cursor: the (position, id) of the last card a column shows.
CardCursor = tuple[int, int]


@dataclass(frozen=True)
class BoardFilters:
    channel_id: int | None = None
    owner_id: int | None = None
    text: str = ""
    blocked_only: bool = False
    # One column's cards only (the dashboard's link to the constraint).
    column_id: int | None = None
    # "My cards": owner_id is then the viewer's id; the URL says mine=1, so a link to
    # "my cards" shows each person their own.
    mine: bool = False

    @property
    def active(self) -> bool:
        return bool(
            self.channel_id or self.owner_id or self.text or self.blocked_only or self.column_id
        )

    def querystring(self) -> str:
        """The filters as URL parameters, to carry them into 'show more' requests."""
        params = {
            "channel": self.channel_id or "",
            "owner": "" if self.mine else self.owner_id or "",
            "mine": "1" if self.mine else "",
            "q": self.text,
            "blocked": "1" if self.blocked_only else "",
            "column": self.column_id or "",
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
        if self.column_id:
            cards = cards.filter(column_id=self.column_id)
        return cards


@dataclass
class ColumnView:
    column: Column
    open_count: int = 0
    shown_count: int = 0
    cards: list[Card] = field(default_factory=list)
    # The estimated value of the column's open cards; None when not read (a head
    # rendered from counts alone).
    open_value: Decimal | None = None

    @property
    def level_note(self) -> str:
        """The column's knowledge level and split, as its head shows them under its name.

        The level is left out when the name already says it ("Data", not "Data / DATA").
        """
        column = self.column
        level = column.get_knowledge_level_display()
        parts = [] if column.name.strip().casefold() == str(level).casefold() else [str(level)]
        if column.split:
            parts.append(str(column.get_split_display()))
        return " · ".join(parts)

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
    # The experiments running in the cycle (pdca.selectors.cycles_running): its badge,
    # a link to the only one, or to the cycle's experiments when several run.
    running_experiment_ids: tuple[int, ...] = ()

    @property
    def open_count(self) -> int:
        return sum(view.open_count for view in self.columns)

    @property
    def open_value(self) -> Decimal:
        return sum((view.open_value or Decimal(0) for view in self.columns), Decimal(0))

    @property
    def running_experiments(self) -> int:
        return len(self.running_experiment_ids)

    @property
    def running_experiment_id(self) -> int | None:
        """The experiment running in the cycle when it is the only one."""
        ids = self.running_experiment_ids
        return ids[0] if len(ids) == 1 else None


@dataclass
class Board:
    stream: ValueStream
    cycles: list[CycleView]
    filters: BoardFilters
    version: str
    # Cards a column shows before "show more" (board.js asks a refresh for as many
    # cards as a longer column shows).
    page_size: int = COLUMN_PAGE_SIZE

    @property
    def column_views(self) -> list[ColumnView]:
        return [column for cycle in self.cycles for column in cycle.columns]


def _card_queryset() -> QuerySet[Card]:
    """Cards with the related rows their partial shows (boards/partials/card.html)."""
    return Card.objects.select_related("channel", "owner").order_by("position", "id")


def _column_views(
    *,
    stream: ValueStream,
    columns: list[Column],
    filters: BoardFilters,
    with_cards: bool = True,
    shown: Mapping[int, int] | None = None,
) -> dict[int, ColumnView]:
    """Counts, open values and first pages for these columns, in three queries whatever
    their size.

    ``shown``: columns to show more of than a first page, and how many cards (at most
    COLUMN_SHOWN_MAX): what the client already shows, so a refresh keeps it.
    """
    views = {column.pk: ColumnView(column=column, open_value=Decimal(0)) for column in columns}
    # order_by(): Card.Meta.ordering would join column, cycle and stream into the counts.
    open_cards = Card.objects.filter(
        value_stream=stream, outcome=Outcome.OPEN, column_id__in=list(views)
    ).order_by()
    totals = open_cards.values("column_id").annotate(n=Count("*"), value=Sum("estimated_value"))
    for row in totals:
        view = views[row["column_id"]]
        view.open_count = row["n"]
        view.open_value = row["value"] or Decimal(0)
    if filters.active:
        for shown_row in filters.apply(open_cards).values("column_id").annotate(n=Count("id")):
            views[shown_row["column_id"]].shown_count = shown_row["n"]
    else:
        for view in views.values():
            view.shown_count = view.open_count
    if not with_cards:
        return views

    longer = {
        column_id: min(count, COLUMN_SHOWN_MAX)
        for column_id, count in (shown or {}).items()
        if column_id in views and count > COLUMN_PAGE_SIZE
    }
    if connection.features.supports_slicing_ordering_in_compound:
        first_page_ids = _first_page_ids_by_column(stream, filters, list(views), longer)
    else:
        first_page_ids = _first_page_ids_ranked(stream, filters, list(views), longer)
    first_pages = _card_queryset().filter(pk__in=first_page_ids)
    for card in first_pages:
        views[card.column_id].cards.append(card)
    return views


def _first_page_ids_by_column(
    stream: ValueStream, filters: BoardFilters, column_ids: list[int], longer: Mapping[int, int]
) -> QuerySet[Card, int]:
    """Each column's first page, one LIMIT per column joined by UNION ALL (PostgreSQL):
    each walks its column's index in the board's order and stops at the page, so the
    cost does not grow with the column (a window over every open card did)."""
    pages = [
        filters.apply(Card.objects.filter(value_stream=stream, outcome=Outcome.OPEN))
        .filter(column_id=column_id)
        .order_by("position", "id")
        .values_list("pk", flat=True)[: longer.get(column_id, COLUMN_PAGE_SIZE)]
        for column_id in column_ids
    ]
    return (
        pages[0].union(*pages[1:], all=True)
        if pages
        else Card.objects.none().values_list("pk", flat=True)
    )


def _first_page_ids_ranked(
    stream: ValueStream, filters: BoardFilters, column_ids: list[int], longer: Mapping[int, int]
) -> QuerySet[Card, int]:
    """Each column's first page by ranking the open cards' narrow rows (SQLite, which
    takes no LIMIT inside a UNION): grows with the stream, for small boards."""
    ranked = (
        filters.apply(
            Card.objects.filter(value_stream=stream, outcome=Outcome.OPEN, column_id__in=column_ids)
        )
        .order_by()
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("column_id")],
                order_by=[F("position").asc(), F("id").asc()],
            )
        )
    )
    if longer:
        # Each column's own page length, in the same query.
        page = Case(
            *[When(column_id=column_id, then=Value(n)) for column_id, n in longer.items()],
            default=Value(COLUMN_PAGE_SIZE),
        )
        ranked = ranked.annotate(page=page).filter(rank__lte=F("page"))
    else:
        ranked = ranked.filter(rank__lte=COLUMN_PAGE_SIZE)
    return ranked.values_list("pk", flat=True)


def board_columns(
    *,
    stream: ValueStream,
    column_ids: Iterable[int],
    filters: BoardFilters | None = None,
    with_cards: bool = True,
    shown: Mapping[int, int] | None = None,
) -> list[ColumnView]:
    """Fresh views of some columns of a stream, to re-render them after a change.

    ``shown``: as many cards as to show of some columns (see ``_column_views``).
    """
    columns = list(
        Column.objects.filter(cycle__value_stream=stream, pk__in=list(column_ids))
        .select_related("cycle")
        .order_by("cycle__order", "order")
    )
    views = _column_views(
        stream=stream,
        columns=columns,
        filters=filters or BoardFilters(),
        with_cards=with_cards,
        shown=shown,
    )
    return list(views.values())


def column_heads(
    *,
    stream: ValueStream,
    columns: Iterable[Column],
    open_counts: Mapping[int, int] | None = None,
    open_values: Mapping[int, Decimal] | None = None,
) -> list[ColumnView]:
    """Views of columns already read (e.g. locked by a move), for their heads.

    ``open_counts`` (and ``open_values``): their open cards and those cards' value if
    already summed up (under the move's locks); otherwise one query counts them.
    """
    ordered = sorted(columns, key=lambda column: (column.cycle.order, column.order))
    if open_counts is None:
        views = _column_views(
            stream=stream, columns=ordered, filters=BoardFilters(), with_cards=False
        )
        return list(views.values())
    return [
        ColumnView(
            column=column,
            open_count=open_counts[column.pk],
            shown_count=open_counts[column.pk],
            open_value=open_values.get(column.pk) if open_values is not None else None,
        )
        for column in ordered
    ]


def board_get(
    *,
    stream: ValueStream,
    filters: BoardFilters | None = None,
    shown: Mapping[int, int] | None = None,
) -> Board:
    """The whole board of a stream: cycles, columns, counts and open values, and each
    column's first page (``shown``: or as many cards as the client shows already)."""
    filters = filters or BoardFilters()
    # Before anything is read: a change committed meanwhile is sent again, never missed.
    # The version published to every viewer (at most VSM_BOARD_PUBLISH_SECONDS old, so
    # earlier still): the page's first poll asks for the deltas the others ask for.
    version = board_version_published(
        stream=stream, max_age_seconds=settings.VSM_BOARD_PUBLISH_SECONDS
    )
    columns = list(
        Column.objects.filter(cycle__value_stream=stream)
        .select_related("cycle__owning_team")
        .order_by("cycle__order", "order")
    )
    views = _column_views(stream=stream, columns=columns, filters=filters, shown=shown)

    control_points = {
        cp.from_cycle_id: cp
        for cp in ControlPoint.objects.filter(from_cycle__value_stream=stream)
        .select_related("from_cycle", "to_cycle")
        .order_by()
    }
    running = cycles_running(ExperimentQuery(stream=stream))
    cycles: dict[int, CycleView] = {}
    for column in columns:
        cycle_view = cycles.get(column.cycle_id)
        if cycle_view is None:
            cycle_view = cycles[column.cycle_id] = CycleView(
                cycle=column.cycle,
                columns=[],
                outgoing_control_point=control_points.get(column.cycle_id),
                running_experiment_ids=running.get(column.cycle_id, ()),
            )
        cycle_view.columns.append(views[column.pk])
    return Board(
        stream=stream,
        cycles=list(cycles.values()),
        filters=filters,
        version=str(version),
    )


@dataclass(frozen=True)
class BoardDelta:
    """What changed on a board since a client's version, to send instead of the board:
    the changed cards still open (``cards``, in their columns), those gone from it
    (``gone``: closed, or moved to another stream), every column's head and every
    cycle's totals, and the version the client holds after applying it."""

    cards: list[Card]
    gone: list[int]
    cycles: list[CycleView]
    version: str

    @property
    def column_views(self) -> list[ColumnView]:
        return [view for cycle in self.cycles for view in cycle.columns]


def board_delta(
    *, stream: ValueStream, card_ids: Iterable[int], version: BoardVersion
) -> BoardDelta:
    """The changes of ``card_ids`` (from ``cards_changed``) and the heads, in three
    queries: the cards, the columns, their counts and values. Unfiltered boards only:
    a filtered board shows counts of matches, which the client gets with the board."""
    wanted = list(card_ids)
    cards = list(_card_queryset().filter(value_stream=stream, pk__in=wanted, outcome=Outcome.OPEN))
    shown = {card.pk for card in cards}
    columns = list(
        Column.objects.filter(cycle__value_stream=stream)
        .select_related("cycle")
        .order_by("cycle__order", "order")
    )
    views = column_heads(stream=stream, columns=columns)
    cycles: dict[int, CycleView] = {}
    for view in views:
        cycle = view.column.cycle
        cycles.setdefault(cycle.pk, CycleView(cycle=cycle, columns=[])).columns.append(view)
    return BoardDelta(
        cards=cards,
        gone=[card_id for card_id in wanted if card_id not in shown],
        cycles=list(cycles.values()),
        version=str(version),
    )


def column_cards_page(
    *, stream: ValueStream, column_id: int, filters: BoardFilters, after: CardCursor | None
) -> tuple[Column, list[Card], bool]:
    """One further page of a column's open cards, for 'show more': those after the
    card at ``after`` (its position and id), in the board's order.

    A keyset, not an offset: a card moved out of the column (or into it) meanwhile
    shifts no later card past the page boundary, so none is skipped or shown twice.
    Raises: ColumnNotFound.
    """
    column = column_in_stream(stream=stream, column_id=column_id)
    cards = _card_queryset().filter(column=column, outcome=Outcome.OPEN)
    if after is not None:
        position, card_id = after
        cards = cards.filter(Q(position__gt=position) | Q(position=position, pk__gt=card_id))
    page = list(filters.apply(cards)[: COLUMN_PAGE_SIZE + 1])
    return column, page[:COLUMN_PAGE_SIZE], len(page) > COLUMN_PAGE_SIZE


def board_filter_choices(*, stream: ValueStream) -> dict[str, list]:
    """Channels and owners to offer in the board's filter bar."""
    # A semi-join: joining and DISTINCT-ing every open card's owner row grew with the stream.
    owns_open_card = Card.objects.filter(
        owner=OuterRef("pk"), value_stream=stream, outcome=Outcome.OPEN
    )
    owners = (
        get_user_model().objects.filter(Exists(owns_open_card)).order_by("first_name", "username")
    )
    return {
        "channels": list(Channel.objects.filter(value_stream=stream).order_by("name")),
        "owners": list(owners),
    }
