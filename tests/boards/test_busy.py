"""A write that waits on another's row locks past the bound is "busy, try again".

Real transactions on PostgreSQL: a second thread holds a row lock for longer than
``vsm.transactions.LOCK_TIMEOUT_SECONDS``; the service gives up with ``Busy`` (never an
OperationalError), nothing changes, and the view answers the retry message instead
of a 500. Each refusal waits out the lock timeout once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.contrib.messages import get_messages
from django.db import OperationalError, connection, transaction
from django.urls import reverse

from boards.models import Card, Column
from boards.services import DEFAULT_CYCLES, card_set_blocked, column_set_wip_limit
from tests.factories import CardFactory
from tests.support import as_actor
from vsm.errors import Busy
from vsm.models import AuditEntry
from vsm.transactions import LOCK_TIMEOUT_SECONDS

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HTMX = {"HX-Request": "true"}
# Long enough to outlast the lock timeout, short enough to keep the run quick; the
# holder is released as soon as the refused call returns.
HOLD_SECONDS = LOCK_TIMEOUT_SECONDS + 5


@contextmanager
def row_held(model, pk: int, *, seconds: float = HOLD_SECONDS) -> Iterator[None]:
    """Another connection holds the row's lock (as a move does) while the block runs,
    or for ``seconds`` at most."""
    holding, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                model.objects.select_for_update(no_key=True).get(pk=pk)
                holding.set()
                release.wait(timeout=seconds)
        except BaseException as error:  # reported to the test below
            failures.append(error)
        finally:
            holding.set()
            connection.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(timeout=10), "the holder never took the lock"
    assert not failures, failures
    try:
        yield
    finally:
        release.set()
        holder.join(timeout=HOLD_SECONDS + 5)
    assert not holder.is_alive()
    assert not failures, failures


@pytest.fixture
def information(stream) -> Column:
    return Column.objects.get(cycle__value_stream=stream, cycle__name=DEFAULT_CYCLES[0], order=2)


@pytest.fixture
def card(information) -> Card:
    return CardFactory(column=information)


def audit_actions() -> list[str]:
    return list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))


def test_a_wip_limit_change_on_a_locked_column_is_busy(information, manager):
    before, actions = information.wip_limit, audit_actions()

    started = time.monotonic()
    with row_held(Column, information.pk), pytest.raises(Busy) as refused:
        column_set_wip_limit(column_id=information.pk, wip_limit=3, actor=as_actor(manager))
    waited = time.monotonic() - started

    assert isinstance(refused.value.__cause__, OperationalError)
    assert refused.value.http_status == 503
    assert LOCK_TIMEOUT_SECONDS - 0.5 <= waited < HOLD_SECONDS
    assert Column.objects.get(pk=information.pk).wip_limit == before
    assert audit_actions() == actions


def test_a_wip_limit_change_waits_for_a_lock_released_in_time(information, manager):
    with row_held(Column, information.pk, seconds=0.5):
        column_set_wip_limit(column_id=information.pk, wip_limit=3, actor=as_actor(manager))

    assert Column.objects.get(pk=information.pk).wip_limit == 3


def test_the_wip_limit_view_answers_busy_try_again(client, stream, information, manager):
    client.force_login(manager)
    before = information.wip_limit

    with row_held(Column, information.pk):
        response = client.post(
            reverse("boards:column-wip-limit", args=[stream.slug, information.pk]),
            {"wip_limit": "3"},
            headers=HTMX,
        )

    assert response.status_code == 200
    assert Busy.default_message.encode() in response.content
    assert b'role="alert"' in response.content
    assert Column.objects.get(pk=information.pk).wip_limit == before


def test_blocking_a_locked_card_is_busy(card, member):
    actions = audit_actions()

    with row_held(Card, card.pk), pytest.raises(Busy) as refused:
        card_set_blocked(card_id=card.pk, blocked=True, reason="Waiting", actor=as_actor(member))

    assert isinstance(refused.value.__cause__, OperationalError)
    stored = Card.objects.get(pk=card.pk)
    assert (stored.is_blocked, stored.version) == (False, card.version)
    assert audit_actions() == actions


def test_the_block_view_answers_busy_try_again(client, stream, card, member):
    client.force_login(member)

    with row_held(Card, card.pk):
        response = client.post(
            reverse("boards:card-block", args=[stream.slug, card.pk]),
            {"action": "block", "reason": "Waiting", "version": card.version},
        )

    assert response.status_code == 303  # see other: back to the card page, as a GET
    assert response["Location"] == reverse("boards:card-detail", args=[stream.slug, card.pk])
    assert [str(m) for m in get_messages(response.wsgi_request)] == [Busy.default_message]
    assert Card.objects.get(pk=card.pk).is_blocked is False
