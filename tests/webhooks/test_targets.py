"""Sending to a URL's host only once every address it resolves to is known public: the
check comes before any connection, the connection goes to the checked address under
the URL's own name, and the delivery log says the same few words for every refusal,
so that it tells a manager nothing of the network inside (no address, no open or
closed port). An installation that allows internal URLs (the tests' receiver on
127.0.0.1) is the exception the fixtures set; these tests unset it where they say so.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from urllib.parse import urlsplit

import pytest

from tests.support import new_card
from webhooks import targets
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import webhook_deliveries_record, webhook_endpoint_deliver
from webhooks.targets import NO_PUBLIC_ADDRESS, address_is_internal

pytestmark = pytest.mark.django_db


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections made to it (and answers
    none): what an internal service sees of a probe."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def stop(self) -> int:
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()
        return self.accepted


@pytest.fixture
def listener():
    port = Listener()
    yield port
    port.stop()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def deliver_one(stream, endpoint) -> WebhookDelivery:
    webhook_deliveries_record(endpoint_id=endpoint.pk)
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)
    return WebhookDelivery.objects.get(endpoint=endpoint)


def test_an_internal_address_is_refused_before_connecting_and_says_nothing_of_it(
    stream, manager, webhook, listener, settings
):
    """An open port and a closed one, behind a name that resolves inside: the same
    words for both, no address, and no connection made to either."""
    open_hook = webhook(stream, url=f"http://localhost:{listener.port}/hook")
    closed_hook = webhook(stream, url=f"http://localhost:{closed_port()}/hook")
    new_card(stream, manager)
    settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = False  # the installation forbids it

    to_open = deliver_one(stream, open_hook)
    to_closed = deliver_one(stream, closed_hook)

    assert listener.stop() == 0
    assert (to_open.status, to_open.last_status_code) == (DeliveryStatus.FAILED, None)
    assert to_open.last_error == to_closed.last_error == NO_PUBLIC_ADDRESS
    assert "127.0.0.1" not in to_open.last_error and "::1" not in to_open.last_error


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Resolve the names in ``answers`` to those addresses (others as usual); returns
    the names looked up, in order."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        asked.append(host)
        if host not in answers:
            return real(host, port, family, type, proto, flags)
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (ip, port, 0, 0) if ":" in ip else (ip, port),
            )
            for ip in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_every_address_of_a_name_is_checked_before_any_connection(
    stream, manager, webhook, listener, settings, monkeypatch
):
    """A name with a public address and an internal one is refused whole: neither is
    tried (trying the public one first would take the connect timeout)."""
    endpoint = webhook(stream, url=f"http://hooks.example.test:{listener.port}/hook")
    new_card(stream, manager)
    settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = False
    settings.VSM_WEBHOOK_TIMEOUT_SECONDS = 2.0
    asked = fake_dns(monkeypatch, {"hooks.example.test": ["93.184.215.14", "127.0.0.1"]})

    delivery = deliver_one(stream, endpoint)

    assert delivery.last_error == NO_PUBLIC_ADDRESS
    assert delivery.response_ms < 1_000
    assert listener.stop() == 0
    assert asked == ["hooks.example.test"]


def test_the_connection_goes_to_the_checked_address_under_the_urls_name(
    stream, manager, receiver, webhook, settings, monkeypatch
):
    """The name is resolved once; the socket connects to the address that was checked
    (a second lookup, e.g. DNS rebinding, is never made); the receiver sees the URL's
    own name in Host. The check is told to call the receiver's 127.0.0.1 public, as
    an installation's real receiver would be."""
    name = "hooks.example.test"
    endpoint = webhook(stream, url=receiver.url.replace("127.0.0.1", name))
    new_card(stream, manager)
    settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = False
    monkeypatch.setattr(
        targets, "address_is_internal", lambda text: text.split("%")[0] != "127.0.0.1"
    )
    asked = fake_dns(monkeypatch, {name: ["127.0.0.1"]})

    delivery = deliver_one(stream, endpoint)

    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    received = receiver.wait_for(1)[0]
    assert received.verified
    assert received.headers["host"] == f"{name}:{urlsplit(receiver.url).port}"
    # The connection looked up no name again (an IP address is no lookup).
    assert [host for host in asked if not is_ip(host)] == [name]


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("8.8.8.8", False),
        ("::ffff:10.0.0.1", True),
        ("64:ff9b::7f00:1", True),  # NAT64 of 127.0.0.1
        ("64:ff9b::c0a8:101", True),  # NAT64 of 192.168.1.1
        ("64:ff9b::808:808", False),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::808:808", True),  # NAT64's local-use prefix
        ("2002:a00:1::1", True),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", False),  # 6to4 of 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", True),  # Teredo, client 127.0.0.1
        ("::7f00:1", True),  # IPv4-compatible 127.0.0.1
        ("2606:4700:4700::1111", False),
        ("fe80::1%eth0", True),
    ],
)
def test_ipv6_forms_that_lead_to_an_internal_ipv4_address_are_internal(address, internal):
    assert address_is_internal(address) is internal
