"""Cards as dots on a chart: the ones that finished in the window, the open ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.db.models import QuerySet
from django.db.models.functions import TruncDate

from boards.models import card_display_name
from boards.templatetags.board_tags import card_url_prefix
from metrics.fold.timeline import metrics_zone
from metrics.models import CardFlowState, DurationKind, FlowDuration
from metrics.selectors.query import MetricsQuery
from metrics.selectors.statistics import DAY


# slots, not frozen: a page builds thousands of these, and frozen dataclasses are
# several times slower to create.
@dataclass(slots=True)
class FinishedCard:
    """A card that finished in the window: its name, a link, the local day it finished
    and its elapsed time in days (lead time, or cycle time in one cycle)."""

    card_id: int
    name: str
    url: str
    finished_on: date
    days: float


@dataclass(slots=True)
class AgingCard:
    """An open card: its column and how long it has been there, in days."""

    card_id: int
    name: str
    url: str
    column_id: int
    days: float


def _card_urls(query: MetricsQuery) -> Callable[[int], str]:
    prefix = card_url_prefix(query.stream)
    return lambda card_id: f"{prefix}{card_id}/"


def _finished(query: MetricsQuery) -> QuerySet[FlowDuration]:
    """The lead times (or, with ``query.cycle_id``, the passages through that cycle)
    that ended in the window and not in a loss."""
    rows = FlowDuration.objects.filter(
        value_stream=query.stream,
        ended_at__gte=query.start_moment(),
        ended_at__lte=query.now,
        abandoned=False,
    )
    if query.cycle_id is not None:
        rows = rows.filter(kind=DurationKind.CYCLE, cycle_id=query.cycle_id)
    else:
        rows = rows.filter(kind=DurationKind.LEAD)
    if query.channel_key is not None:
        rows = rows.filter(channel_key=query.channel_key)
    return rows


def finished_days(query: MetricsQuery) -> list[float]:
    """The days of ``finished_cards(query)``, shortest first, without the cards: one
    statement (no join to the cards for their names)."""
    return [
        round(seconds / DAY, 2)
        for seconds in _finished(query).order_by("seconds").values_list("seconds", flat=True)
    ]


def finished_cards(query: MetricsQuery) -> list[FinishedCard]:
    """The cards whose lead time (or, with ``query.cycle_id``, whose passage through that
    cycle) ended in the window and not in a loss, oldest first; one statement."""
    rows = _finished(query)
    url = _card_urls(query)
    # The local day and the days computed by the database: converting thousands of
    # timestamps here cost more than the query.
    rows = rows.annotate(
        finished_on=TruncDate("ended_at", tzinfo=metrics_zone()),
    ).order_by("ended_at", "move_id")
    return [
        FinishedCard(
            card_id=card_id,
            name=card_display_name(person, company),
            url=url(card_id),
            finished_on=finished_on,
            days=round(seconds / DAY, 2),
        )
        for card_id, person, company, finished_on, seconds in rows.values_list(
            "card_id", "card__person_name", "card__company", "finished_on", "seconds"
        )
    ]


def aging_cards(query: MetricsQuery) -> list[AgingCard]:
    """The open cards (one channel's with ``query.channel_key``) with their age in
    their column at ``query.now``, oldest first; one statement."""
    states = CardFlowState.objects.filter(
        value_stream=query.stream, is_open=True, column_entered_at__lte=query.now
    )
    if query.channel_key is not None:
        # Channel 0: the cards that arrived through no channel.
        states = (
            states.filter(channel_id=query.channel_key)
            if query.channel_key
            else states.filter(channel_id__isnull=True)
        )
    url = _card_urls(query)
    now = query.now.timestamp()
    # Oldest first: the earliest entry into the column (ties by card) sorts in SQL.
    return [
        AgingCard(
            card_id=card_id,
            name=card_display_name(person, company),
            url=url(card_id),
            column_id=column_id,
            days=round(max(0.0, now - entered.timestamp()) / DAY, 2),
        )
        for card_id, person, company, column_id, entered in states.order_by(
            "column_entered_at", "card_id"
        ).values_list(
            "card_id", "card__person_name", "card__company", "column_id", "column_entered_at"
        )
    ]
