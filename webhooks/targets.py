"""Where VSM sends webhooks: http(s) URLs of machines on the internet, nothing inside.

A webhook's URL is typed by a stream's manager and fetched by VSM's workers from
inside the network they run in. A URL naming a machine there (the database, Redis, a
cloud's metadata service at 169.254.169.254) would let whoever manages a stream make
the workers talk to it: server-side request forgery. So, unless
``settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS`` (an installation whose receivers live on
its own network, and the tests' receiver on 127.0.0.1):

- at registration (``webhook_url_check``) a URL is refused when its host is an
  internal address (loopback, private, link-local, shared, reserved, multicast) or a
  local name (``localhost``, a name without a dot such as Compose's ``redis``, or one
  under .local, .internal, .localdomain, .home.arpa);
- at sending (``guarded_session``), the host is resolved once, every address it
  resolves to is checked, and only then is a connection made, to a checked address
  (the Host header and TLS's server name stay the URL's): a public name that resolves
  to an internal address, or starts to later, is refused there, before any packet
  reaches it. The refusal is one message whatever the address, the same as for a
  name that does not resolve, so the delivery log tells a manager nothing about the
  network inside (no address, no open or closed port);
- redirects are never followed (a 3xx answer is a failed attempt), and proxies from
  the environment are not used (the check is on the peer the worker connects to).

Looking the name up takes at most the request's connect timeout (``resolve``): a
resolver that does not answer would otherwise hold the worker for its own full timeout
(often 5 s per attempt, several attempts). A lookup that runs out of time is a failed
attempt, retried like any other, and says so (``HostLookupTimedOut``): it tells
nothing of the network inside either, whichever way the name would have resolved.

Plain http is accepted (the issue asks for http and https); the page flags it, since
a delivery carries prospects' names.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import socket
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

from webhooks.errors import WebhookUrlRefused
from webhooks.models import URL_MAX_LENGTH

logger = logging.getLogger(__name__)

SCHEMES = ("https", "http")
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
# IPv6 forms that carry an IPv4 address in their last 32 bits and reach it: NAT64's
# well-known prefix (RFC 6052), and the deprecated IPv4-compatible form. NAT64's
# local-use prefix (RFC 8215) is internal whatever it carries.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# The one message of a refusal at sending (see the module's docstring).
NO_PUBLIC_ADDRESS = "Could not connect: the host name does not lead to a public address."


def internal_urls_allowed() -> bool:
    return bool(getattr(settings, "VSM_WEBHOOK_ALLOW_INTERNAL_URLS", False))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and leads to: 6to4 (2002::/16), Teredo
    (2001::/32: its server and client), NAT64 (64:ff9b::/96), IPv4-compatible (::/96)."""
    embedded: list[ipaddress.IPv4Address] = []
    if address.sixtofour is not None:
        embedded.append(address.sixtofour)
    if address.teredo is not None:
        embedded.extend(address.teredo)
    if address in NAT64 or address in IPV4_COMPATIBLE:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return embedded


def _ip_is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not address.is_global or address.is_multicast


def address_is_internal(text: str) -> bool:
    """Whether the IP address ``text`` is one a webhook may not reach: anything not
    globally routable (loopback, private, link-local, shared, reserved), and multicast.
    An IPv4 address written as IPv6 (``::ffff:127.0.0.1``) is judged as IPv4; an IPv6
    address that carries an IPv4 one and leads to it (6to4, Teredo, NAT64) is internal
    when that IPv4 address is.

    Raises: ValueError when ``text`` is not an IP address."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _ip_is_internal(address.ipv4_mapped)
        if address in NAT64_LOCAL or any(map(_ip_is_internal, _embedded_ipv4(address))):
            return True
    return _ip_is_internal(address)


def _host_is_internal(host: str) -> bool:
    try:
        return address_is_internal(host)
    except ValueError:
        pass  # a name, not an address
    name = host.rstrip(".").lower()
    return name == "localhost" or "." not in name or name.endswith(LOCAL_SUFFIXES)


def webhook_url_check(url: str) -> str:
    """The URL to store for ``url``: stripped, its scheme and host in lower case.

    Raises: WebhookUrlRefused (field "url") for anything but an http(s) URL with a
    host, for a user name or password in it, and for an internal host (see the
    module's docstring) unless internal URLs are allowed.
    """
    url = url.strip()
    if not url:
        raise WebhookUrlRefused("Give the URL to send to.", field="url")
    if len(url) > URL_MAX_LENGTH:
        raise WebhookUrlRefused(
            f"A webhook URL has at most {URL_MAX_LENGTH} characters.", field="url"
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise WebhookUrlRefused("A webhook URL starts with https:// or http://.", field="url")
    try:
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        raise WebhookUrlRefused("That is not a URL VSM can send to.", field="url") from None
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlRefused(
            "Put no user name or password in the URL: the signature proves that VSM sent it.",
            field="url",
        )
    if host and not internal_urls_allowed() and _host_is_internal(host):
        raise WebhookUrlRefused(
            "That URL names a machine inside VSM's own network; give a public address.",
            field="url",
        )
    try:
        URLValidator(schemes=list(SCHEMES))(url)
    except ValidationError:
        raise WebhookUrlRefused("That is not a URL VSM can send to.", field="url") from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return parts._replace(scheme=parts.scheme.lower(), netloc=netloc).geturl()


class InternalAddressRefused(Exception):
    """The URL's host resolves to an internal address (one of its addresses is): no
    connection was made. Its message is NO_PUBLIC_ADDRESS, whatever the address."""

    def __init__(self) -> None:
        super().__init__(NO_PUBLIC_ADDRESS)


class HostLookupTimedOut(Exception):
    """The URL's host name was not looked up within the time given: no connection was
    made. Its message says so, for the delivery log."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"Could not connect: looking up the host name took longer than {seconds:g} s."
        )


AddressInfo = tuple[Any, ...]
_LookupAnswer = tuple[list[AddressInfo], Exception | None]


def resolve(host: str, port: int, *, timeout: float) -> list[AddressInfo]:
    """``socket.getaddrinfo``'s answer for ``host`` (TCP), within ``timeout`` seconds.

    getaddrinfo cannot be interrupted, so it runs in a thread of its own, a daemon
    that the caller stops waiting for at the deadline: the thread ends when the
    resolver gives up (a thread per lookup, not a pool: nothing to share across a
    worker's fork, nothing for the interpreter to wait on at exit, and a worker sends
    one delivery at a time, so few lookups ever hang at once).

    Raises: socket.gaierror (the name does not resolve, or has no address),
    HostLookupTimedOut (no answer within ``timeout``)."""
    answers: queue.SimpleQueue[_LookupAnswer] = queue.SimpleQueue()

    def look_up() -> None:
        try:
            answers.put(
                (socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM), None)
            )
        except Exception as error:
            answers.put(([], error))

    threading.Thread(target=look_up, name="webhook-host-lookup", daemon=True).start()
    try:
        found, error = answers.get(timeout=timeout)
    except queue.Empty:
        logger.warning("Webhook host %s: no lookup answer within %g s", host, timeout)
        # Raised below, outside this clause, so that queue.Empty is not its context:
        # the delivery log names the innermost cause.
        found, error = [], HostLookupTimedOut(timeout)
    if error is not None:
        raise error
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return found


def public_addresses(host: str, port: int, *, timeout: float) -> list[AddressInfo]:
    """``resolve``'s answer for ``host`` (TCP), once every address in it is checked to
    be public.

    Raises: socket.gaierror (the name does not resolve), HostLookupTimedOut (no answer
    within ``timeout`` seconds), InternalAddressRefused (one of its addresses is
    internal: a name that mixes both is refused whole)."""
    found = resolve(host, port, timeout=timeout)
    internal = [str(info[4][0]) for info in found if address_is_internal(str(info[4][0]))]
    if internal:
        # For the installation's operators; the delivery log says none of it.
        logger.warning("Webhook host %s resolves to internal %s: refused", host, internal)
        raise InternalAddressRefused()
    return found


class _CheckedConnect(HTTPConnection):
    """urllib3's connection, connecting only to addresses checked before: the host is
    resolved here once, within the connect timeout (``public_addresses``, or only
    ``resolve`` where internal URLs are allowed), and the socket connects to the
    checked IP itself, so a second lookup cannot answer differently. ``self.host`` is
    left as it is: the Host header, TLS's server name and the certificate check use
    the URL's name. The errors are urllib3's own, as its ``_new_conn`` raises them; a
    lookup that timed out is the cause of a NewConnectionError."""

    def _new_conn(self) -> socket.socket:
        # urllib3 gives a number, or None / its default marker for "no timeout given":
        # a lookup is bounded all the same.
        lookup_timeout = (
            float(self.timeout)
            if isinstance(self.timeout, int | float)
            else float(settings.VSM_WEBHOOK_TIMEOUT_SECONDS)
        )
        try:
            if internal_urls_allowed():
                found = resolve(self._dns_host, self.port, timeout=lookup_timeout)
            else:
                found = public_addresses(self._dns_host, self.port, timeout=lookup_timeout)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except HostLookupTimedOut as error:
            raise NewConnectionError(self, str(error)) from error
        last: Exception | None = None
        for info in found:
            checked = (str(info[4][0]), self.port)  # an IP: connecting looks nothing up
            try:
                sock = create_connection(
                    checked,
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as error:
                last = ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                )
                last.__cause__ = error
            except OSError as error:
                last = NewConnectionError(self, f"Failed to establish a new connection: {error}")
                last.__cause__ = error
            else:
                sys.audit("http.client.connect", self, self.host, self.port)
                return sock
        if last is None:  # never: public_addresses returns at least one
            raise NewConnectionError(self, "No address to connect to.")
        raise last


class _GuardedHTTPConnection(_CheckedConnect):
    pass


class _GuardedHTTPSConnection(_CheckedConnect, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


def guarded_session() -> requests.Session:
    """A requests session that connects only to public addresses, checked before it
    connects (unless internal URLs are allowed), with no proxies or credentials from
    the environment, and no retries."""
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
