"""The archive of a stream: its won and lost cards, newest close first, filtered and
paged by a keyset cursor (the close time and id of the page's last card), so a page
costs the same few queries however many cards the stream has closed, and a card
closed or reopened meanwhile never shifts the next page."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from boards.models import Card, CardLoss, MoveKind, Outcome
from vsm.models import Channel, LostReason, ValueStream

ARCHIVE_PAGE_SIZE = 25
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ASCII digits only (\d is any script's), and no line break after ($ would allow one).
_CURSOR = re.compile(r"([0-9]{1,16})-([0-9]{1,19})")
_ID_MAX = 2**63 - 1


@dataclass(frozen=True)
class ArchiveCursor:
    """Where a page of the archive starts: after (or before) the card closed at
    ``closed_at`` with id ``card_id``, in the archive's order."""

    closed_at: datetime
    card_id: int

    @classmethod
    def of(cls, card: Card) -> ArchiveCursor:
        assert card.closed_at is not None, "an archived card is closed"
        return cls(card.closed_at, card.pk)

    @property
    def token(self) -> str:
        """The cursor as a URL parameter: microseconds since 1970, a dash, the id."""
        return f"{(self.closed_at - _EPOCH) // timedelta(microseconds=1)}-{self.card_id}"

    @classmethod
    def parse(cls, token: str) -> ArchiveCursor | None:
        """The cursor a token names, or None when it names none (typed or crafted)."""
        match = _CURSOR.fullmatch(token or "")
        if match is None:
            return None
        card_id = int(match[2])
        if not 1 <= card_id <= _ID_MAX:
            return None
        try:
            closed_at = _EPOCH + timedelta(microseconds=int(match[1]))
        except OverflowError:
            return None
        return cls(closed_at, card_id)

    def older(self) -> Q:
        """The cards after this one in the archive's order (closed earlier)."""
        return Q(closed_at__lt=self.closed_at) | Q(closed_at=self.closed_at, pk__lt=self.card_id)

    def newer(self) -> Q:
        return Q(closed_at__gt=self.closed_at) | Q(closed_at=self.closed_at, pk__gt=self.card_id)


@dataclass(frozen=True)
class ArchiveQuery:
    """What the archive is asked for: a stream's closed cards, filtered by outcome
    ("won", "lost" or "" for both), channel, owner, lost reason (the reason of the card's
    final loss), the days they were closed (first and last, in the site's time zone),
    and a text in the person's name, company or e-mail; one page after ``older_than``
    or before ``newer_than`` (the first page without either)."""

    stream: ValueStream
    outcome: str = ""
    channel_id: int | None = None
    owner_id: int | None = None
    lost_reason_id: int | None = None
    closed_from: date | None = None
    closed_to: date | None = None
    text: str = ""
    older_than: ArchiveCursor | None = None
    newer_than: ArchiveCursor | None = None

    @property
    def filtered(self) -> bool:
        return bool(
            self.outcome
            or self.channel_id
            or self.owner_id
            or self.lost_reason_id
            or self.closed_from
            or self.closed_to
            or self.text
        )


@dataclass(frozen=True)
class ArchiveRow:
    """A closed card (with its channel, owner and column) and, for a lost one, why."""

    card: Card
    loss: CardLoss | None = None


@dataclass(frozen=True)
class ArchivePage:
    """One page of the archive; ``older`` and ``newer``: the cursors of the pages on
    either side (None: nothing there). ``total``: every card the filters match."""

    rows: list[ArchiveRow]
    total: int
    older: ArchiveCursor | None = None
    newer: ArchiveCursor | None = None


def _final_losses() -> QuerySet[CardLoss]:
    """The loss of a card's final close (a card lost, reopened and lost again keeps
    both; its close time is its last lost move's)."""
    return CardLoss.objects.filter(
        move__card=OuterRef("pk"), move__kind=MoveKind.LOST, move__moved_at=OuterRef("closed_at")
    )


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def archived_cards(query: ArchiveQuery) -> QuerySet[Card]:
    """The closed cards of ``query.stream`` that its filters match, in no order."""
    cards = Card.objects.filter(value_stream=query.stream).exclude(outcome=Outcome.OPEN)
    if query.outcome in (Outcome.WON, Outcome.LOST):
        cards = cards.filter(outcome=query.outcome)
    if query.channel_id:
        cards = cards.filter(channel_id=query.channel_id)
    if query.owner_id:
        cards = cards.filter(owner_id=query.owner_id)
    if query.lost_reason_id:
        cards = cards.filter(
            Exists(_final_losses().filter(reason_id=query.lost_reason_id)), outcome=Outcome.LOST
        )
    if query.closed_from:
        cards = cards.filter(closed_at__gte=_local_midnight(query.closed_from))
    if query.closed_to and query.closed_to < date.max:
        cards = cards.filter(closed_at__lt=_local_midnight(query.closed_to + timedelta(days=1)))
    if query.text:
        cards = cards.filter(
            Q(person_name__icontains=query.text)
            | Q(company__icontains=query.text)
            | Q(email__icontains=query.text)
        )
    return cards


def archive_page(query: ArchiveQuery, *, size: int = ARCHIVE_PAGE_SIZE) -> ArchivePage:
    """One page of the archive, newest close first. At most four queries, whatever the
    number of cards: the count, the page, whether a page lies on its other side (when
    paging), and the losses of its lost cards."""
    matching = archived_cards(query)
    total = matching.count()
    shown = matching.select_related("channel", "owner", "column__cycle").annotate(
        final_loss_id=Subquery(_final_losses().values("move_id")[:1])
    )
    older = newer = None
    if query.newer_than is not None:
        window = list(
            shown.filter(query.newer_than.newer()).order_by("closed_at", "id")[: size + 1]
        )
        cards = list(reversed(window[:size]))
        if len(window) > size:
            newer = ArchiveCursor.of(cards[0])
        if cards and matching.filter(ArchiveCursor.of(cards[-1]).older()).exists():
            older = ArchiveCursor.of(cards[-1])
    else:
        if query.older_than is not None:
            shown = shown.filter(query.older_than.older())
        window = list(shown.order_by("-closed_at", "-id")[: size + 1])
        cards = window[:size]
        if len(window) > size:
            older = ArchiveCursor.of(cards[-1])
        paged = query.older_than is not None and cards
        if paged and matching.filter(ArchiveCursor.of(cards[0]).newer()).exists():
            newer = ArchiveCursor.of(cards[0])
    return ArchivePage(rows=_with_losses(cards), total=total, older=older, newer=newer)


def _with_losses(cards: Sequence[Card]) -> list[ArchiveRow]:
    """The rows of ``cards``, each lost one with its final loss and reason: one query."""
    loss_ids = [loss_id for card in cards if (loss_id := _final_loss_id(card)) is not None]
    losses: dict[int, CardLoss] = {}
    if loss_ids:
        losses = {
            loss.pk: loss
            for loss in CardLoss.objects.filter(pk__in=loss_ids).select_related("reason")
        }
    return [ArchiveRow(card, losses.get(_final_loss_id(card) or 0)) for card in cards]


def _final_loss_id(card: Card) -> int | None:
    # Annotated by archive_page; the plugin cannot see an annotation made there.
    loss_id: int | None = card.final_loss_id  # type: ignore[attr-defined]
    return loss_id


def archive_filter_choices(*, stream: ValueStream) -> dict[str, list]:
    """What the archive's filters offer: every channel and lost reason of the stream
    (those no longer offered too: old cards have them), and the owners of its closed
    cards. Three queries."""
    owns_closed_card = Card.objects.filter(owner=OuterRef("pk"), value_stream=stream).exclude(
        outcome=Outcome.OPEN
    )
    owners: QuerySet[AbstractBaseUser] = (
        get_user_model().objects.filter(Exists(owns_closed_card)).order_by("first_name", "username")
    )
    return {
        "channels": list(Channel.objects.filter(value_stream=stream).order_by("name")),
        "owners": list(owners),
        "lost_reasons": list(
            LostReason.objects.filter(value_stream=stream).order_by("-is_active", "order", "name")
        ),
    }
