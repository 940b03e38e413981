"""Sending an endpoint's deliveries: signed, in move order, retried with backoff.

One worker at a time sends an endpoint's deliveries: it takes the endpoint's lease
(``lease_until``, ``lease_token``) in a short transaction (SELECT ... FOR UPDATE SKIP
LOCKED on PostgreSQL: a second worker passes on at once; SQLite's writers take turns),
then sends with no transaction open, so no row lock and no move ever waits on a
receiver. Before each request it renews the lease (and so stops once the endpoint is
paused or deleted, or if its lease was lost); the result is recorded only while the
lease is still its own. A send that outlived its lease (a worker killed mid-request)
may be made twice: delivery is at least once, and ``X-VSM-Delivery`` and the event id
let a receiver recognise a repeat.

Order: the endpoint's next delivery is its unfinished one with the lowest move id. If
it fails, it waits for its retry and the endpoint's later deliveries wait behind it
(other endpoints are not held up: each has its own lease and head). A failed delivery
is retried after RETRY_DELAYS (1 min, 5 min, 30 min, 2 h, 12 h, each with up to
JITTER of random spread); after MAX_ATTEMPTS it is dead, and the next one goes.
"""

from __future__ import annotations

import logging
import random
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from boards.models import CardMove
from webhooks.models import (
    LAST_ERROR_MAX_LENGTH,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from webhooks.payloads import move_for_payload, move_payload, payload_body
from webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)
from webhooks.targets import (
    NO_PUBLIC_ADDRESS,
    HostLookupTimedOut,
    InternalAddressRefused,
    guarded_session,
)

logger = logging.getLogger(__name__)

RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# Each delay is spread by up to this share either way, so that endpoints that failed
# together are not all retried in the same second.
JITTER = 0.2
# One worker's run sends at most this many deliveries, then leaves the rest to another
# run (webhooks.tasks), so one busy endpoint never holds a worker for long.
RUN_MAX_DELIVERIES = 100
USER_AGENT = "VSM-Webhooks/1"


def timeout_seconds() -> float:
    return float(settings.VSM_WEBHOOK_TIMEOUT_SECONDS)


def lease_duration() -> timedelta:
    """How long a sender holds an endpoint without renewing: far longer than one request
    (its connect and read timeouts), so a live sender never loses its lease."""
    return timedelta(seconds=4 * timeout_seconds() + 30)


def retry_delay(attempts: int) -> timedelta | None:
    """How long after its ``attempts``-th failed attempt a delivery is tried again, with
    jitter; None once it has had MAX_ATTEMPTS (it is dead)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[attempts - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)


@dataclass(frozen=True)
class Attempt:
    """How one request went. ``status_code``: None when no answer came."""

    succeeded: bool
    status_code: int | None
    error: str
    response_ms: int


@dataclass(frozen=True)
class DeliverResult:
    endpoint_id: int
    sent: int = 0
    succeeded: int = 0
    # Another worker holds the endpoint (or it is paused or gone): nothing was sent.
    busy: bool = False
    # The run stopped at RUN_MAX_DELIVERIES with a delivery still due now.
    more_due: bool = False


def _lease_take(endpoint_id: int, token: str) -> bool:
    now = timezone.now()
    with transaction.atomic():
        free = (
            WebhookEndpoint.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(pk=endpoint_id, is_active=True)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .values_list("pk", flat=True)
            .first()
        )
        if free is None:
            return False
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(
            lease_until=now + lease_duration(), lease_token=token
        )
    return True


def _lease_renew(endpoint_id: int, token: str) -> WebhookEndpoint | None:
    """The endpoint, read afresh (its secrets), if this sender still holds it and it is
    active; the lease then runs from now."""
    renewed = WebhookEndpoint.objects.filter(
        pk=endpoint_id, lease_token=token, is_active=True
    ).update(lease_until=timezone.now() + lease_duration())
    if not renewed:
        return None
    return WebhookEndpoint.objects.filter(pk=endpoint_id).first()


def _lease_release(endpoint_id: int, token: str) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint_id, lease_token=token).update(
        lease_until=None, lease_token=""
    )


def _head(endpoint_id: int) -> WebhookDelivery | None:
    """The endpoint's next delivery: its unfinished one with the lowest move id."""
    return (
        WebhookDelivery.objects.filter(endpoint_id=endpoint_id, next_attempt_at__isnull=False)
        .order_by("move_id")
        .first()
    )


def _signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


def _bounded(text: str) -> str:
    return text if len(text) <= LAST_ERROR_MAX_LENGTH else text[: LAST_ERROR_MAX_LENGTH - 1] + "…"


def _post(
    session: requests.Session, endpoint: WebhookEndpoint, delivery: WebhookDelivery, move: CardMove
) -> Attempt:
    """Sign and POST the move's payload; read the answer's status, not its body."""
    body = payload_body(move_payload(move))
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: move.kind,
        DELIVERY_HEADER: str(delivery.pk),
        SIGNATURE_HEADER: signature_header(
            _signing_secrets(endpoint, timezone.now()), timestamp, body
        ),
    }
    timeout = timeout_seconds()
    started = time.monotonic()
    status_code: int | None = None
    try:
        with session.post(
            endpoint.url,
            data=body,
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            status_code = response.status_code
        error = "" if 200 <= status_code < 300 else f"The receiver answered HTTP {status_code}."
    except InternalAddressRefused:
        error = NO_PUBLIC_ADDRESS
    except requests.Timeout:
        error = f"No answer within {timeout:g} s."
    except requests.exceptions.SSLError:
        error = "The receiver's TLS certificate or handshake was not accepted."
    except requests.RequestException as failure:
        error = _failure_text(failure)
    elapsed = round((time.monotonic() - started) * 1000)
    return Attempt(
        succeeded=not error, status_code=status_code, error=_bounded(error), response_ms=elapsed
    )


def _failure_text(failure: requests.RequestException) -> str:
    """What went wrong in a few words, from the innermost cause (the outer errors
    repeat the URL, which the page shows anyway)."""
    root: BaseException = failure
    while (inner := root.__cause__ or root.__context__) is not None:
        root = inner
    if isinstance(root, HostLookupTimedOut):
        return str(root)  # the resolver's silence: a failed attempt, retried as any
    if isinstance(root, socket.gaierror):
        # The words of a name that leads inside, so that the log does not tell the two
        # apart (webhooks.targets).
        return NO_PUBLIC_ADDRESS
    if isinstance(root, ConnectionRefusedError):
        return "Could not connect: the connection was refused."
    if isinstance(root, ConnectionResetError):
        return "The receiver closed the connection."
    return f"The request failed ({type(root).__name__})."


def _record(delivery: WebhookDelivery, attempt: Attempt, token: str) -> bool:
    """Store how the attempt went, if this sender still holds the endpoint. Returns
    whether it was stored."""
    now = timezone.now()
    attempts = delivery.attempts + 1
    if attempt.succeeded:
        status, next_attempt_at = DeliveryStatus.SUCCEEDED, None
    else:
        delay = retry_delay(attempts)
        status = DeliveryStatus.FAILED if delay is not None else DeliveryStatus.DEAD
        next_attempt_at = now + delay if delay is not None else None
    stored = WebhookDelivery.objects.filter(
        pk=delivery.pk,
        attempts=delivery.attempts,
        next_attempt_at__isnull=False,
        endpoint__lease_token=token,
    ).update(
        status=status,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        last_attempt_at=now,
        last_status_code=attempt.status_code,
        last_error=attempt.error,
        response_ms=attempt.response_ms,
    )
    return bool(stored)


def webhook_endpoint_deliver(
    *, endpoint_id: int, max_deliveries: int = RUN_MAX_DELIVERIES
) -> DeliverResult:
    """Send the endpoint's due deliveries in move order, until one fails, none is due,
    or ``max_deliveries`` were sent. Safe to run twice and concurrently: a run that
    finds the endpoint held by another (or paused, or gone) returns ``busy``.

    Must be called outside any transaction: it waits on the receiver (at most
    settings.VSM_WEBHOOK_TIMEOUT_SECONDS to connect and as much for the answer).
    Locks: the endpoint's lease (see the module's docstring), no row lock while sending.
    Side effects: HTTP POSTs; each attempt's result on its WebhookDelivery.
    """
    token = secrets.token_hex(16)
    if not _lease_take(endpoint_id, token):
        return DeliverResult(endpoint_id, busy=True)
    sent = succeeded = 0
    more_due = False
    session = guarded_session()
    try:
        while True:
            endpoint = _lease_renew(endpoint_id, token)
            head = _head(endpoint_id) if endpoint is not None else None
            due_at = head.next_attempt_at if head is not None else None
            if endpoint is None or head is None or due_at is None or due_at > timezone.now():
                break
            if sent >= max_deliveries:
                more_due = True
                break
            try:
                move = move_for_payload(head.move_id)
            except CardMove.DoesNotExist:  # the log is append-only: never, but not a crash
                logger.error("Delivery %s names a move that is gone", head.pk)
                break
            attempt = _post(session, endpoint, head, move)
            sent += 1
            if not _record(head, attempt, token) or not attempt.succeeded:
                break
            succeeded += 1
    finally:
        session.close()
        _lease_release(endpoint_id, token)
    return DeliverResult(endpoint_id, sent=sent, succeeded=succeeded, more_due=more_due)
