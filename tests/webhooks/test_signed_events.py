"""Every kind of move reaches an outside receiver as signed JSON that the README's
verifier accepts; only the kinds a webhook chose; with the card as it is."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from boards.models import CardMove, MoveKind, Outcome
from boards.services import card_close, card_move, card_reopen, handoff_pass
from pdca.models import ControlPoint
from tests.support import COLLABORATION, SALES, as_actor, column_of, new_card
from tests.webhooks.receiver import verify
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.signing import signature_header
from webhooks.tasks import deliver

pytestmark = pytest.mark.django_db


def every_kind_of_move(stream, manager) -> list[CardMove]:
    """One card through enter, move, handoff, won, reopen and lost; its moves in order."""
    actor = as_actor(manager)
    card = new_card(stream, manager, email="ada@nordwerk.example", estimated_value=1200)
    card_move(
        card_id=card.pk, to_column_id=column_of(stream, COLLABORATION, "Wisdom").pk, actor=actor
    )
    control_point = ControlPoint.objects.get(from_cycle__value_stream=stream, from_cycle__order=1)
    handoff_pass(
        card_id=card.pk,
        control_point_id=control_point.pk,
        criteria_met_ids=control_point.criteria.values_list("pk", flat=True),
        actor=actor,
    )
    card_close(card_id=card.pk, outcome=Outcome.WON, actor=actor)
    card_reopen(card_id=card.pk, actor=actor)
    card_close(card_id=card.pk, outcome=Outcome.LOST, actor=actor, lost_note="Budget cut")
    return list(CardMove.objects.filter(card=card).order_by("pk"))


def test_every_kind_of_move_arrives_signed_in_order(
    stream, manager, receiver, webhook, django_capture_on_commit_callbacks
):
    endpoint = webhook(stream)

    # Each move commits and announces itself; the consumer records its delivery.
    with django_capture_on_commit_callbacks(execute=True):
        moves = every_kind_of_move(stream, manager)
    recorded = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("move_id"))
    assert [d.move_id for d in recorded] == [m.pk for m in moves]
    assert {d.status for d in recorded} == {DeliveryStatus.PENDING}
    assert receiver.received == []  # recorded by the consumer, sent by a worker

    result = deliver(endpoint.pk)

    got = receiver.wait_for(6)
    assert result["sent"] == result["succeeded"] == 6
    assert [r.payload["type"] for r in got] == [
        MoveKind.ENTER,
        MoveKind.MOVE,
        MoveKind.HANDOFF,
        MoveKind.WON,
        MoveKind.REOPEN,
        MoveKind.LOST,
    ]
    assert all(r.verified for r in got)
    assert [r.payload["event_id"] for r in got] == [m.pk for m in moves]
    assert [r.headers["x-vsm-event"] for r in got] == [m.kind for m in moves]
    assert [int(r.headers["x-vsm-delivery"]) for r in got] == [d.pk for d in recorded]
    assert {r.headers["content-type"] for r in got} == {"application/json"}
    for received, move in zip(got, moves, strict=True):
        occurred = datetime.fromisoformat(received.payload["occurred_at"])
        assert received.payload["occurred_at"].endswith("Z")
        assert occurred.utcoffset().total_seconds() == 0
        assert abs((occurred - move.moved_at.astimezone(UTC)).total_seconds()) < 0.001
        assert received.payload["stream"]["id"] == stream.pk
        assert received.payload["to_column"]["id"] == move.to_column_id
    enter, _, handoff, won, _, lost = (r.payload for r in got)
    assert enter["from_column"] is None
    assert enter["estimated_value"] == "1200.00"
    assert enter["actor"] == {"kind": "user"}
    assert handoff["from_column"]["cycle"]["name"] == COLLABORATION
    assert handoff["to_column"]["cycle"]["name"] == SALES
    assert handoff["to_column"]["name"] == column_of(stream, SALES, "Data").name
    # The card as it is when sent: lost by then, in Sales/Buying.
    assert won["card"]["outcome"] == lost["card"]["outcome"] == Outcome.LOST
    assert won["card"]["column"]["cycle"]["name"] == SALES
    assert won["card"]["person_name"] == "Ada Keller"
    assert won["card"]["display_name"] == "Ada Keller (Nordwerk Pumps)"
    assert all(b"ada@nordwerk.example" not in r.body for r in got)
    delivered = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert {(d.status, d.attempts, d.last_status_code) for d in delivered} == {
        (DeliveryStatus.SUCCEEDED, 1, 200)
    }
    assert all(d.response_ms is not None and d.next_attempt_at is None for d in delivered)


def test_a_webhook_gets_only_the_kinds_it_chose(
    stream, manager, receiver, webhook, django_capture_on_commit_callbacks
):
    # Another URL of the same receiver: a stream has one active webhook per URL.
    closes = webhook(stream, kinds=[MoveKind.WON, MoveKind.LOST], url=f"{receiver.url}?closes")
    everything = webhook(stream)

    with django_capture_on_commit_callbacks(execute=True):
        moves = every_kind_of_move(stream, manager)
    deliver(closes.pk)
    deliver(everything.pk)

    receiver.wait_for(8)
    assert [
        r.payload["type"] for r in receiver.received if r.payload["event_id"] in {moves[3].pk}
    ] == ["won", "won"]
    assert sorted(
        WebhookDelivery.objects.filter(endpoint=closes).values_list("move__kind", flat=True)
    ) == ["lost", "won"]
    assert WebhookDelivery.objects.filter(endpoint=everything).count() == 6


def test_the_verifier_refuses_a_changed_body_a_wrong_secret_and_an_old_signature():
    body = b'{"event_id":1,"type":"won"}'
    now = int(time.time())
    header = signature_header(["whsec_right"], now, body)

    assert verify("whsec_right", header, body)
    assert not verify("whsec_right", header, body.replace(b"won", b"lost"))
    assert not verify("whsec_wrong", header, body)
    assert not verify("whsec_right", signature_header(["whsec_right"], now - 600, body), body)
    assert not verify("whsec_right", header.replace(f"t={now}", f"t={now + 1}"), body)
    assert not verify("whsec_right", "v1=" + header.split("v1=")[1], body)  # no timestamp
