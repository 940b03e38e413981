"""Webhook secrets and signatures, Stripe-style.

Each delivery carries ``X-VSM-Signature: t=<unix seconds>,v1=<hex>``, where the hex is
HMAC-SHA256 keyed with the endpoint's secret (all of it, ``whsec_`` included, as UTF-8)
over ``f"{t}.".encode() + body``, the exact bytes of the body. While a rotated-out
secret still signs (webhooks.services.endpoints), the header holds one ``v1=`` per
secret, the current one first: a receiver accepts the delivery when any of them
matches its secret. README.md ("Webhooks") shows a receiver's check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "X-VSM-Signature"
EVENT_HEADER = "X-VSM-Event"
DELIVERY_HEADER = "X-VSM-Delivery"


def secret_new() -> str:
    """A new endpoint secret: the prefix and 256 random bits, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` keyed with ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(signing_secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<hex>[,v1=<hex>...]``, one ``v1`` per secret, in order."""
    parts = [f"t={timestamp}"]
    parts += [f"v1={signature(secret, timestamp, body)}" for secret in signing_secrets]
    return ",".join(parts)
