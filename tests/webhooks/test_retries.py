"""A failed delivery is retried with backoff and jitter, then given up; an endpoint's
deliveries go out in move order behind a failing one, and never hold up another
endpoint; two workers never send the same delivery."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from boards.models import CardMove
from boards.services import card_move
from tests.support import COLLABORATION, as_actor, column_of, new_card
from tests.webhooks.receiver import Receiver
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    webhook_deliveries_record,
    webhook_endpoint_deliver,
)
from webhooks.services.delivery import JITTER
from webhooks.targets import NO_PUBLIC_ADDRESS

pytestmark = pytest.mark.django_db


def moves_of(stream, manager, count: int) -> list[CardMove]:
    """``count`` prospects entered: one enter move each."""
    for n in range(count):
        new_card(stream, manager, person_name=f"Prospect {n}")
    return list(CardMove.objects.filter(value_stream=stream).order_by("pk"))


def time_passes(delivery: WebhookDelivery) -> None:
    """Its retry comes due: the wait is over."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def fresh(delivery: WebhookDelivery) -> WebhookDelivery:
    return WebhookDelivery.objects.get(pk=delivery.pk)


def test_a_failed_delivery_is_retried_after_its_backoff_and_then_delivered(
    stream, manager, receiver, webhook
):
    endpoint = webhook(stream)
    moves_of(stream, manager, 1)
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    receiver.answers.extend([500])

    first = webhook_endpoint_deliver(endpoint_id=endpoint.pk)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)

    assert (first.sent, first.succeeded) == (1, 0)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.FAILED,
        1,
        500,
    )
    assert "HTTP 500" in delivery.last_error
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert RETRY_DELAYS[0] * (1 - JITTER) <= wait <= RETRY_DELAYS[0] * (1 + JITTER)
    # Not due yet: nothing is sent.
    assert webhook_endpoint_deliver(endpoint_id=endpoint.pk).sent == 0
    assert len(receiver.received) == 1

    time_passes(delivery)
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)

    delivery = fresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.SUCCEEDED,
        2,
        200,
    )
    assert delivery.next_attempt_at is None and delivery.last_error == ""
    got = receiver.wait_for(2)
    assert [r.answered for r in got] == [500, 200]
    assert got[0].body == got[1].body  # the same event, byte for byte
    assert got[0].headers["x-vsm-delivery"] == got[1].headers["x-vsm-delivery"]
    assert all(r.verified for r in got)


def test_after_the_last_attempt_it_is_given_up_and_the_next_one_goes(
    stream, manager, receiver, webhook
):
    endpoint = webhook(stream)
    first_move, second_move = moves_of(stream, manager, 2)
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    receiver.answers.extend([503] * MAX_ATTEMPTS)
    head = WebhookDelivery.objects.get(endpoint=endpoint, move=first_move)

    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        webhook_endpoint_deliver(endpoint_id=endpoint.pk)
        head = fresh(head)
        assert head.attempts == attempt
        if head.next_attempt_at is not None:
            waits.append(head.next_attempt_at - head.last_attempt_at)
            time_passes(head)

    assert head.status == DeliveryStatus.DEAD
    assert head.next_attempt_at is None and head.last_status_code == 503
    assert len(waits) == len(RETRY_DELAYS) == MAX_ATTEMPTS - 1
    for wait, planned in zip(waits, RETRY_DELAYS, strict=True):
        assert planned * (1 - JITTER) <= wait <= planned * (1 + JITTER)
    # The later delivery waited behind it all along (move order), and goes at the
    # endpoint's next run (the sweep's, within seconds).
    assert {r.payload["event_id"] for r in receiver.received} == {first_move.pk}
    assert len(receiver.received) == MAX_ATTEMPTS
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)
    assert WebhookDelivery.objects.get(move=second_move).status == DeliveryStatus.SUCCEEDED
    assert receiver.received[-1].payload["event_id"] == second_move.pk


def test_a_failing_endpoint_holds_its_own_later_deliveries_only(stream, manager, receiver, webhook):
    other = Receiver().start()
    try:
        failing = webhook(stream)
        healthy = webhook(stream, url=other.url)
        other.secrets = list(receiver.secrets)
        moves = moves_of(stream, manager, 3)
        receiver.answers.extend([500])
        for endpoint in (failing, healthy):
            webhook_deliveries_record(endpoint_id=endpoint.pk)
            webhook_endpoint_deliver(endpoint_id=endpoint.pk)

        assert [r.payload["event_id"] for r in receiver.received] == [moves[0].pk]
        assert [r.payload["event_id"] for r in other.wait_for(3)] == [m.pk for m in moves]
        statuses = dict(
            WebhookDelivery.objects.filter(endpoint=failing).values_list("move_id", "status")
        )
        assert statuses == {
            moves[0].pk: DeliveryStatus.FAILED,
            moves[1].pk: DeliveryStatus.PENDING,
            moves[2].pk: DeliveryStatus.PENDING,
        }

        time_passes(WebhookDelivery.objects.get(endpoint=failing, move=moves[0]))
        webhook_endpoint_deliver(endpoint_id=failing.pk)

        assert [r.payload["event_id"] for r in receiver.wait_for(4)] == [
            moves[0].pk,
            *(m.pk for m in moves),
        ]
    finally:
        other.stop()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("failure", ["refused", "hangs", "redirect", "internal"])
def test_each_failure_is_recorded_in_a_few_words(
    stream, manager, receiver, webhook, settings, failure
):
    url = f"http://127.0.0.1:{closed_port()}/hook" if failure == "refused" else None
    endpoint = webhook(stream, url=url)
    moves_of(stream, manager, 1)
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    settings.VSM_WEBHOOK_TIMEOUT_SECONDS = 0.5
    if failure == "hangs":
        receiver.delay = 3.0
    elif failure == "redirect":
        receiver.answers.append(302)
    elif failure == "internal":
        settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = False  # an installation that forbids it

    webhook_endpoint_deliver(endpoint_id=endpoint.pk)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)

    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    expected = {
        "refused": (None, "Could not connect: the connection was refused."),
        "hangs": (None, "No answer within 0.5 s."),
        "redirect": (302, "The receiver answered HTTP 302."),
        "internal": (None, NO_PUBLIC_ADDRESS),
    }[failure]
    assert (delivery.last_status_code, delivery.last_error) == expected
    if failure == "internal":
        assert receiver.received == []  # nothing was sent to it
    if failure == "hangs":
        assert delivery.response_ms < 2_000


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_the_same_delivery(stream, manager, receiver, webhook):
    endpoint = webhook(stream)
    moves = moves_of(stream, manager, 6)
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    receiver.delay = 0.2  # each request takes a while: the workers overlap
    start = threading.Barrier(4)
    results = []

    def worker() -> None:
        try:
            start.wait(10)
            results.append(webhook_endpoint_deliver(endpoint_id=endpoint.pk))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(30)

    assert len(results) == 4 and any(r.busy for r in results)
    assert sum(r.sent for r in results) == 6
    assert [r.payload["event_id"] for r in receiver.received] == [m.pk for m in moves]
    assert set(
        WebhookDelivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)
    ) == {DeliveryStatus.SUCCEEDED}


def test_a_move_made_meanwhile_is_not_lost_by_a_run_in_progress(stream, manager, receiver, webhook):
    endpoint = webhook(stream)
    card = new_card(stream, manager)
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)

    card_move(
        card_id=card.pk,
        to_column_id=column_of(stream, COLLABORATION, "Information").pk,
        actor=as_actor(manager),
    )
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    webhook_deliveries_record(endpoint_id=endpoint.pk)  # twice: still one delivery each
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)

    assert [r.payload["type"] for r in receiver.wait_for(2)] == ["enter", "move"]
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 2
