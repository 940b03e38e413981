"""Deliveries come from the move log by cursor: a lost announcement (the broker down)
loses nothing, the sweep delivers it later; a move committed late with a lower id is
still delivered; a paused webhook gets what happened meanwhile when resumed."""

from __future__ import annotations

import io
import logging
import socket
import threading

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction
from django.db.models import Max
from django.urls import reverse

from boards.models import Card, CardMove
from boards.services import card_create, card_move
from tests.factories import CardFactory
from tests.metrics.test_worker import reset_broker_pools
from tests.support import COLLABORATION, SALES, TEST_SYSTEM, as_actor, column_of, new_card
from vsm.celery import app as celery_app
from vsm.events import StreamChange, stream_change_received
from webhooks import selectors
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import scan as scanning
from webhooks.services import (
    webhook_deliveries_record,
    webhook_endpoint_deliver,
    webhook_endpoint_set_active,
)
from webhooks.tasks import sweep

HTMX = {"HX-Request": "true"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_down(monkeypatch):
    """Tasks published to a broker that is not there (nothing listens on its port), as
    in production with Redis down; restored after."""
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    down = f"redis://127.0.0.1:{free_port()}/0"
    # Celery reads CELERY_BROKER_URL from the environment before its own settings.
    monkeypatch.setenv("CELERY_BROKER_URL", down)
    celery_app.conf.broker_url = down
    celery_app.conf.task_always_eager = False
    reset_broker_pools()
    try:
        yield
    finally:
        celery_app.conf.update(saved)
        reset_broker_pools()


def deliveries(endpoint) -> list[tuple[int, str]]:
    return list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .order_by("move_id")
        .values_list("move_id", "status")
    )


@pytest.mark.django_db
def test_moves_made_while_the_broker_is_down_are_delivered_by_the_sweep(
    stream, member, receiver, webhook, client, caplog, broker_down,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    endpoint = webhook(stream)
    data = column_of(stream, COLLABORATION, "Data")
    information = column_of(stream, COLLABORATION, "Information")
    cards = [CardFactory(column=data) for _ in range(3)]
    client.force_login(member)
    for consumer in settings.VSM_STREAM_CHANGED_TASKS:  # no announcement pending
        stream_change_received(consumer, stream.pk, [StreamChange.MOVES])

    with caplog.at_level(logging.WARNING, logger="vsm.events"):
        for card in cards:
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(
                    reverse("boards:card-move", args=[stream.slug, card.pk]),
                    {"to_column": information.pk, "version": card.version, "dragged": "on"},
                    headers=HTMX,
                )
            assert response.status_code == 200
            assert b"toast-error" not in response.content

    moves = list(CardMove.objects.filter(value_stream=stream).order_by("pk"))
    assert len(moves) == 3  # the moves stand
    assert any("sweeper" in r.getMessage() for r in caplog.records)  # not announced
    assert deliveries(endpoint) == []  # the announcement was lost: nothing recorded
    assert endpoint.pk in selectors.webhook_endpoints_lagging()

    # The broker is back (tasks in-process here); beat's next sweep.
    celery_app.conf.task_always_eager = True
    result = sweep()

    assert result["recorded"] == 3 and result["due"] == [endpoint.pk]
    got = receiver.wait_for(3)
    assert [r.payload["event_id"] for r in got] == [m.pk for m in moves]
    assert all(r.verified for r in got)
    assert {status for _, status in deliveries(endpoint)} == {DeliveryStatus.SUCCEEDED}
    assert sweep()["due"] == []  # nothing left to send


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_move_committed_late_with_a_lower_id_is_still_delivered(
    stream, manager, receiver, webhook
):
    """Move ids are taken at insert: a move whose transaction is still open holds a
    lower id than one committed after it began. An "ids above the last one read"
    cursor would pass it by; the settled watermark waits for it."""
    endpoint = webhook(stream)
    early = new_card(stream, manager, person_name="Early")
    sales_cycle_id = column_of(stream, SALES, "Data").cycle_id
    information = column_of(stream, COLLABORATION, "Information")
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)  # the early card's enter
    moved, release = threading.Event(), threading.Event()
    late_move_ids: list[int] = []

    def slow_move() -> None:
        try:
            with transaction.atomic():
                result = card_move(
                    card_id=early.pk, to_column_id=information.pk, actor=as_actor(manager)
                )
                late_move_ids.append(result.move.pk)
                moved.set()
                release.wait(8)
        finally:
            connections.close_all()

    mover = threading.Thread(target=slow_move)
    mover.start()
    try:
        assert moved.wait(10)
        # Another move commits meanwhile (another cycle's column: no lock in common).
        later = card_create(cycle_id=sales_cycle_id, actor=TEST_SYSTEM, company="Later AG").move
        webhook_deliveries_record(endpoint_id=endpoint.pk)
        webhook_endpoint_deliver(endpoint_id=endpoint.pk)
        seen_before_commit = WebhookDelivery.objects.filter(endpoint=endpoint).aggregate(
            m=Max("move_id")
        )["m"]
    finally:
        release.set()
        mover.join(10)

    late_id = late_move_ids[0]
    assert late_id < later.pk == seen_before_commit  # a naive cursor is past it now
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).watermark_move_id < late_id
    assert CardMove.objects.filter(pk=late_id).exists()  # committed, after the later one

    webhook_deliveries_record(endpoint_id=endpoint.pk)
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)

    got = receiver.wait_for(3)
    assert [r.payload["event_id"] for r in got][1:] == [later.pk, late_id]
    assert all(r.verified for r in got)
    assert {status for _, status in deliveries(endpoint)} == {DeliveryStatus.SUCCEEDED}


@pytest.mark.django_db
def test_the_watermark_rises_to_the_newest_settled_move_only(stream, manager, webhook, monkeypatch):
    endpoint = webhook(stream)
    start = endpoint.watermark_move_id
    new_card(stream, manager)

    webhook_deliveries_record(endpoint_id=endpoint.pk)
    # Just written: not settled yet (a move with a lower id might still commit).
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).watermark_move_id == start

    monkeypatch.setattr(scanning, "SETTLE_SECONDS", 0)  # as if two minutes had passed
    webhook_deliveries_record(endpoint_id=endpoint.pk)

    newest = CardMove.objects.filter(value_stream=stream).aggregate(m=Max("id"))["m"]
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).watermark_move_id == newest
    assert endpoint.pk not in selectors.webhook_endpoints_lagging()
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


@pytest.mark.django_db
def test_a_new_webhook_gets_the_moves_made_after_it_only(stream, manager, receiver, webhook):
    new_card(stream, manager, person_name="Before")
    endpoint = webhook(stream)
    after = new_card(stream, manager, person_name="After")

    webhook_deliveries_record(endpoint_id=endpoint.pk)
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)

    assert [r.payload["card"]["id"] for r in receiver.wait_for(1)] == [after.pk]
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_a_paused_webhook_gets_what_happened_meanwhile_in_order_when_resumed(
    stream, manager, receiver, webhook, django_capture_on_commit_callbacks
):
    endpoint = webhook(stream)
    webhook_endpoint_set_active(
        actor=TEST_SYSTEM, stream_id=stream.pk, endpoint_id=endpoint.pk, active=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        cards = [new_card(stream, manager, person_name=f"Prospect {n}") for n in range(3)]
    sweep()
    assert deliveries(endpoint) == [] and receiver.received == []

    with django_capture_on_commit_callbacks(execute=True):
        webhook_endpoint_set_active(
            actor=TEST_SYSTEM, stream_id=stream.pk, endpoint_id=endpoint.pk, active=True
        )
    sweep()

    assert [r.payload["card"]["id"] for r in receiver.wait_for(3)] == [c.pk for c in cards]
    assert Card.objects.filter(value_stream=stream).count() == 3


@pytest.mark.django_db
def test_the_command_sends_what_is_due_when_no_worker_runs(stream, manager, receiver, webhook):
    endpoint = webhook(stream)
    card = new_card(stream, manager)
    out = io.StringIO()

    call_command("webhooks_deliver", stdout=out)

    assert [r.payload["card"]["id"] for r in receiver.wait_for(1)] == [card.pk]
    assert out.getvalue().startswith("Recorded 1 deliveries; sent for 1 webhooks")
    assert deliveries(endpoint)[0][1] == DeliveryStatus.SUCCEEDED


def test_the_consumer_and_the_sweep_are_wired_in_the_settings():
    entry = settings.CELERY_BEAT_SCHEDULE["webhooks-sweep"]

    assert "webhooks.stream_changed" in settings.VSM_STREAM_CHANGED_TASKS
    assert entry["task"] == sweep.name and entry["task"] in celery_app.tasks
    assert 0 < entry["options"]["expires"] <= entry["schedule"] <= 30
