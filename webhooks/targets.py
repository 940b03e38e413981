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
- at sending, the address the connection really reached is checked, after DNS and
  before a byte of the request is written (``guarded_session``): a public name that
  resolves to an internal address, or starts to later, is refused there;
- redirects are never followed (a 3xx answer is a failed attempt), and proxies from
  the environment are not used (the check is on the peer the worker connects to).

Plain http is accepted (the issue asks for http and https); the page flags it, since
a delivery carries prospects' names.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from webhooks.errors import WebhookUrlRefused
from webhooks.models import URL_MAX_LENGTH

SCHEMES = ("https", "http")
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def internal_urls_allowed() -> bool:
    return bool(getattr(settings, "VSM_WEBHOOK_ALLOW_INTERNAL_URLS", False))


def address_is_internal(text: str) -> bool:
    """Whether the IP address ``text`` is one a webhook may not reach: anything not
    globally routable (loopback, private, link-local, shared, reserved), and multicast.
    An IPv4 address written as IPv6 (``::ffff:127.0.0.1``) is judged as IPv4."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


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
    """The connection reached an internal address; nothing was sent."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"Refused: the URL leads to an internal address ({address}).")


def _peer_checked(sock: Any) -> Any:
    if internal_urls_allowed():
        return sock
    address = sock.getpeername()[0]
    if address_is_internal(address):
        sock.close()
        raise InternalAddressRefused(address)
    return sock


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> Any:
        return _peer_checked(super()._new_conn())


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> Any:
        return _peer_checked(super()._new_conn())


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
    """A requests session whose connections refuse internal peers (unless allowed),
    with no proxies or credentials from the environment, and no retries."""
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
