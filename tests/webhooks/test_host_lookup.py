"""Looking up a webhook's host takes at most the request's connect timeout: a resolver
that does not answer costs one failed attempt, which says so and is retried with the
normal backoff, and never holds the worker for the resolver's own timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support import new_card
from webhooks import targets
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import RETRY_DELAYS, webhook_deliveries_record, webhook_endpoint_deliver
from webhooks.services.delivery import JITTER
from webhooks.targets import HostLookupTimedOut, resolve

pytestmark = pytest.mark.django_db

NAME = "hooks.example.test"
# Far longer than the lookup's bound, far shorter than a resolver's real timeout.
RESOLVER_SILENCE_SECONDS = 5.0
LOOKUP_BOUND_SECONDS = 0.3


class SlowResolver:
    """Stands in for socket.getaddrinfo: NAME resolves to 127.0.0.1, other names as
    usual; while ``silent``, a lookup of NAME answers only after
    RESOLVER_SILENCE_SECONDS (or once the test ends)."""

    def __init__(self) -> None:
        self.real = socket.getaddrinfo
        self.silent = True
        self.released = threading.Event()
        self.asked: list[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        if host != NAME:
            return self.real(host, port, family, type, proto, flags)
        self.asked.append(host)
        if self.silent:
            self.released.wait(RESOLVER_SILENCE_SECONDS)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]


@pytest.fixture
def slow_resolver(monkeypatch, settings) -> Iterator[SlowResolver]:
    resolver = SlowResolver()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    settings.VSM_WEBHOOK_TIMEOUT_SECONDS = LOOKUP_BOUND_SECONDS
    yield resolver
    resolver.released.set()  # the lookup threads left waiting end with the test


@pytest.fixture(params=["internal URLs refused", "internal URLs allowed"])
def installation(request, settings, monkeypatch):
    """``installation()`` once the webhook is made: both ways of sending, through the
    address check (told to call the receiver's 127.0.0.1 public, as an installation's
    real receiver would be), and without it."""

    def configure() -> None:
        if request.param == "internal URLs refused":
            settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = False
            monkeypatch.setattr(targets, "address_is_internal", lambda text: text != "127.0.0.1")

    return configure


def test_a_resolver_that_does_not_answer_fails_the_attempt_within_the_bound_and_it_is_retried(
    stream, manager, receiver, webhook, slow_resolver, installation
):
    endpoint = webhook(stream, url=receiver.url.replace("127.0.0.1", NAME))
    new_card(stream, manager)
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    installation()

    started = time.monotonic()
    first = webhook_endpoint_deliver(endpoint_id=endpoint.pk)
    took = time.monotonic() - started

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (first.sent, first.succeeded) == (1, 0)
    assert took < RESOLVER_SILENCE_SECONDS / 2, f"the lookup held the sender {took:.2f} s"
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.FAILED,
        1,
        None,
    )
    assert delivery.last_error == str(HostLookupTimedOut(LOOKUP_BOUND_SECONDS))
    assert "looking up the host name" in delivery.last_error
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert RETRY_DELAYS[0] * (1 - JITTER) <= wait <= RETRY_DELAYS[0] * (1 + JITTER)
    assert receiver.received == []

    # The resolver answers again by the retry: the delivery goes out.
    slow_resolver.silent = False
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert receiver.wait_for(1)[0].verified
    assert slow_resolver.asked == [NAME, NAME]


def test_resolve_gives_up_at_its_deadline(slow_resolver):
    started = time.monotonic()
    with pytest.raises(HostLookupTimedOut) as timed_out:
        resolve(NAME, 443, timeout=0.2)
    took = time.monotonic() - started

    assert 0.2 <= took < 1.0
    assert timed_out.value.seconds == 0.2


def test_resolve_answers_as_getaddrinfo_does_when_it_answers_in_time(slow_resolver):
    slow_resolver.silent = False

    found = resolve(NAME, 443, timeout=2.0)

    assert [info[4] for info in found] == [("127.0.0.1", 443)]


def test_resolve_passes_on_a_name_that_does_not_resolve(monkeypatch):
    def no_such_name(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)

    with pytest.raises(socket.gaierror):
        resolve("nowhere.example.test", 443, timeout=2.0)
