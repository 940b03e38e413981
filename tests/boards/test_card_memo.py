"""The card partial rendered once per process for the same inputs (board_tags.card_html):
whatever a card shows that changes, the memo renders it anew, never an old card."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.template.loader import get_template
from django.utils import timezone

from boards.templatetags import board_tags
from tests.factories import CardFactory, ChannelFactory, UserFactory

pytestmark = pytest.mark.django_db


def fresh(card, stream, *, oob: bool = False) -> str:
    return get_template(board_tags.CARD_TEMPLATE).render(
        {"card": card, "stream": stream, "oob": oob}
    )


@pytest.fixture
def card(stream, sales_information):
    owner = UserFactory(first_name="Ada", last_name="Lovelace")
    return CardFactory(
        column=sales_information,
        channel=ChannelFactory(value_stream=stream, name="Trade fair"),
        owner=owner,
        estimated_value=Decimal("12500"),
        column_entered_at=timezone.now() - timedelta(days=3),
    )


def test_the_memo_renders_what_the_template_renders(card, stream):
    for oob in (False, True):
        assert board_tags.card_html(card, stream, oob) == fresh(card, stream, oob=oob)


def test_the_same_card_is_rendered_once(card, stream, monkeypatch):
    board_tags._card_memo.clear()
    rendered = []
    real = board_tags.get_template

    def counting(name):
        rendered.append(name)
        return real(name)

    monkeypatch.setattr(board_tags, "get_template", counting)
    first = board_tags.card_html(card, stream)
    second = board_tags.card_html(card, stream)

    assert first == second
    assert len(rendered) == 1


def _rename_channel(card):
    card.channel.name = "Webinar"


def _rename_owner(card):
    card.owner.first_name = "Grace"


def _drop_owner(card):
    card.owner = None


def _block(card):
    card.is_blocked, card.blocked_reason = True, "Waiting for legal"


def _age(card):
    card.column_entered_at -= timedelta(days=10)


CHANGES = {
    "person": lambda card: setattr(card, "person_name", "Someone else"),
    "company": lambda card: setattr(card, "company", "Another company"),
    "value": lambda card: setattr(card, "estimated_value", Decimal("99.50")),
    "position": lambda card: setattr(card, "position", card.position + 7),
    "version": lambda card: setattr(card, "version", card.version + 1),
    "channel renamed": _rename_channel,
    "owner renamed": _rename_owner,
    "owner removed": _drop_owner,
    "blocked": _block,
    "older": _age,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_of_anything_shown_is_rendered_anew(change, card, stream):
    before = board_tags.card_html(card, stream)

    CHANGES[change](card)
    after = board_tags.card_html(card, stream)

    assert after == fresh(card, stream)
    if change != "version" or 'data-version="' in before:
        assert after != before


def test_another_time_zone_is_rendered_anew(card, stream):
    board_tags.card_html(card, stream)

    with timezone.override("Asia/Tokyo"):
        tokyo = board_tags.card_html(card, stream)
        assert tokyo == fresh(card, stream)


def test_another_stream_slug_is_rendered_anew(card, stream):
    board_tags.card_html(card, stream)
    stream.slug = "renamed-market"
    board_tags._card_url_prefix.cache_clear()

    assert board_tags.card_html(card, stream) == fresh(card, stream)
    assert "/streams/renamed-market/cards/" in board_tags.card_html(card, stream)


def test_the_age_shown_moves_on_with_the_clock(card, stream, monkeypatch):
    card.column_entered_at = timezone.now() - timedelta(minutes=59)
    before = board_tags.card_html(card, stream)
    later = timezone.now() + timedelta(minutes=2)

    monkeypatch.setattr(timezone, "now", lambda: later)
    after = board_tags.card_html(card, stream)

    assert ">59m<" in before
    assert ">1h<" in after
    assert after == fresh(card, stream)
