from __future__ import annotations

import threading
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from cachetools import LRUCache
from django import template
from django.template.loader import get_template
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from vsm.models import ValueStream

if TYPE_CHECKING:
    from boards.models import Card

register = template.Library()

CARD_TEMPLATE = "boards/partials/card.html"
# Rendered cards this process keeps (about 1 kB each): a board's first view shows a
# few hundred, and each viewer's live update the same changed ones.
CARD_MEMO_SIZE = 10_000
_card_memo: LRUCache[tuple[object, ...], SafeString] = LRUCache(maxsize=CARD_MEMO_SIZE)
_card_memo_lock = threading.Lock()


def card_inputs(card: Card, stream: ValueStream, *, oob: bool) -> tuple[object, ...]:
    """Everything ``boards/partials/card.html`` shows of ``card``, as it shows it: two
    cards with the same inputs render alike. Kept beside the template: a value it
    starts to show must be added here (tests/boards/test_card_memo.py renders each
    input changed and compares with a fresh rendering)."""
    owner = card.owner if card.owner_id else None
    return (
        card.pk,
        card.version,
        card.position,
        card.person_name,
        card.company,
        card.estimated_value,
        card.channel.name if card.channel_id and card.channel else None,
        (owner.get_full_name() or owner.username) if owner else None,
        card.is_blocked,
        card.blocked_reason,
        card.column_entered_at,
        local_minute(card.column_entered_at),
        age(card.column_entered_at),
        card_url_prefix(stream),
        oob,
    )


@register.simple_tag
def card_html(card: Card, stream: ValueStream, oob: bool = False) -> SafeString:
    """The card partial for ``card``, rendered once per process for the same inputs
    (``card_inputs``): a board page renders a few hundred cards, and fifty viewers'
    live updates the same changed cards, where the template engine cost a third of a
    millisecond each (docs/performance.md)."""
    key = card_inputs(card, stream, oob=bool(oob))
    with _card_memo_lock:
        html = _card_memo.get(key)
    if html is None:
        # The template reads only the card, the stream and oob (card_inputs).
        html = mark_safe(  # noqa: S308 - the template's own escaped output
            get_template(CARD_TEMPLATE).render({"card": card, "stream": stream, "oob": oob})
        )
        with _card_memo_lock:
            _card_memo[key] = html
    return html


@register.filter
def card_url_prefix(stream: ValueStream) -> str:
    """What the stream's card URLs start with, up to the card id: '/streams/<slug>/cards/'.

    The card partial appends the id and the page: reversing two URLs for every card of
    a board was a sixth of the page's time; this is one dictionary look-up.
    """
    return _card_url_prefix(get_script_prefix(), stream.slug)


@lru_cache(maxsize=4096)
def _card_url_prefix(script_prefix: str, slug: str) -> str:
    # script_prefix is part of the key because reverse() includes it.
    return reverse("boards:card-detail", args=[slug, 0]).removesuffix("0/")


@register.filter
def age(since: datetime | None) -> str:
    """A compact age for card badges: '45m', '6h', '12d'."""
    if since is None:
        return ""
    seconds = max(0, int((timezone.now() - since).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


@register.filter
def local_minute(moment: datetime | None) -> str:
    """'2026-03-02 14:05' in the current time zone: what ``|date:'Y-m-d H:i'`` gives.

    The board shows one per card; Django's date formatting cost three times as much.
    """
    if moment is None:
        return ""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


@register.filter
def age_days(since: datetime | None) -> int:
    if since is None:
        return 0
    return max(0, (timezone.now() - since).days)


@register.filter
def money(amount: Decimal | int | None, currency: str = "") -> str:
    """An amount as a sales user reads it: '12,500', '1,250.50'; with the currency's
    code in front when there is one ('EUR 12,500'); '' for none or zero.

    Streams keep no currency yet, so the board shows plain amounts.
    """
    if not amount:
        return ""
    amount = Decimal(amount)
    text = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    return f"{currency} {text}" if currency else text
