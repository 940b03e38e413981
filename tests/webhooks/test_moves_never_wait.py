"""A move never waits for a webhook, nor fails because of one: a receiver that hangs
costs the move nothing; the worker waits for it, within the timeout, and moves on.
The last test runs a real Celery worker on a real Redis (tests/metrics/test_worker.py)
that delivers every move of a board to a slow outside receiver, signed."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from boards.models import Card, CardMove
from tests.factories import CardFactory
from tests.metrics import test_worker as worker_tests
from tests.metrics.test_worker import with_worker
from tests.support import COLLABORATION, column_of
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import webhook_endpoint_deliver

HTMX = {"HX-Request": "true"}
# A move on a test machine takes tens of milliseconds; a webhook's wait would be seconds.
MOVE_BOUND_SECONDS = 1.0

cluster = worker_tests.cluster  # the fixture: a private Redis and its workers


def move_all(client, stream, cards) -> list[float]:
    """Move each card from Data to Information through the board; the seconds each took."""
    information = column_of(stream, COLLABORATION, "Information")
    took = []
    for card in cards:
        started = time.monotonic()
        response = client.post(
            reverse("boards:card-move", args=[stream.slug, card.pk]),
            {"to_column": information.pk, "version": card.version, "dragged": "on"},
            headers=HTMX,
        )
        took.append(time.monotonic() - started)
        assert response.status_code == 200
        assert b"toast-error" not in response.content
    assert Card.objects.filter(pk__in=[c.pk for c in cards], column=information).count() == len(
        cards
    )
    return took


@pytest.mark.django_db
def test_a_receiver_that_hangs_costs_a_move_nothing(
    stream, member, client, receiver, webhook, settings, django_capture_on_commit_callbacks
):
    settings.VSM_WEBHOOK_TIMEOUT_SECONDS = 1.0
    receiver.delay = 30.0  # never answers in time
    endpoint = webhook(stream)
    cards = [CardFactory(column=column_of(stream, COLLABORATION, "Data")) for _ in range(3)]
    client.force_login(member)
    # The process's first request compiles templates and URL patterns: not timed.
    assert client.get(reverse("boards:board", args=[stream.slug])).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):  # each move commits, announces
        took = move_all(client, stream, cards)

    assert max(took) < MOVE_BOUND_SECONDS, f"moves took {took}"
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 3  # recorded
    assert receiver.received == []  # and nothing sent from the request

    started = time.monotonic()
    result = webhook_endpoint_deliver(endpoint_id=endpoint.pk)  # the worker's part
    waited = time.monotonic() - started

    assert (result.sent, result.succeeded) == (1, 0)  # the others wait behind it
    assert waited < settings.VSM_WEBHOOK_TIMEOUT_SECONDS + 1.0
    head = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("move_id").first()
    assert (head.status, head.last_error) == (DeliveryStatus.FAILED, "No answer within 1 s.")


@with_worker
def test_a_worker_delivers_every_move_to_a_slow_receiver_and_no_move_waits(
    cluster, stream, member, client, receiver, webhook, monkeypatch
):
    monkeypatch.setenv("VSM_WEBHOOK_ALLOW_INTERNAL_URLS", "true")
    monkeypatch.setenv("VSM_WEBHOOK_TIMEOUT_SECONDS", "3")
    cluster.start_worker()
    receiver.delay = 0.5  # slow, but within the timeout
    endpoint = webhook(stream)
    cards = [CardFactory(column=column_of(stream, COLLABORATION, "Data")) for _ in range(5)]
    client.force_login(member)
    assert client.get(reverse("boards:board", args=[stream.slug])).status_code == 200

    took = move_all(client, stream, cards)

    assert max(took) < MOVE_BOUND_SECONDS, f"moves took {took}"
    moves = list(CardMove.objects.filter(value_stream=stream).order_by("pk"))
    got = receiver.wait_for(len(moves), timeout=60)
    assert [r.payload["event_id"] for r in got] == [m.pk for m in moves], cluster.logs()
    assert all(r.verified for r in got)
    assert [r.payload["card"]["id"] for r in got] == [c.pk for c in cards]
    worker_tests.wait_for(
        lambda: (
            set(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("status", flat=True))
            == {DeliveryStatus.SUCCEEDED}
        ),
        timeout=10,
        what=cluster.logs,
    )
