"""Webhook endpoints of a value stream and their deliveries, one per move and endpoint.

An endpoint is a URL outside VSM that receives, for each move of its stream of a kind
it subscribed to, a JSON body signed with the endpoint's secret (webhooks.signing).
Deliveries are made from the move log by cursor (webhooks.services.scan), so a lost
"stream changed" message loses no event; they are sent by a worker, never inside a
move's transaction or a web request (webhooks.services.delivery).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import MD5
from django.utils import timezone

from boards.models import CardMove, MoveKind
from vsm.models import ValueStream

URL_MAX_LENGTH = 2000
DESCRIPTION_MAX_LENGTH = 200
LAST_ERROR_MAX_LENGTH = 300
# "enter", "move", ... joined by commas, in MoveKind's order.
EVENT_TYPES_PATTERN = r"^({kinds})(,({kinds}))*$".format(kinds="|".join(MoveKind.values))


class WebhookEndpoint(models.Model):
    """A URL that receives the stream's moves of the kinds in ``event_types``.

    ``secret``: signs every delivery (HMAC-SHA256); shown once, when the endpoint is
    created and when it is rotated, never again. It is stored as it is, because the
    server needs it to sign. ``previous_secret`` also signs until
    ``previous_secret_expires_at`` after a rotation that kept the old one a while.
    ``watermark_move_id``: every move of the stream at or below it has its delivery
    (if its kind is subscribed), and no move at or below it can still appear (its
    transaction is settled: metrics.services.SETTLE_SECONDS). The scan starts above it.
    ``lease_until`` / ``lease_token``: the worker sending this endpoint's deliveries
    now; one at a time, so deliveries go out in move order.
    """

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=URL_MAX_LENGTH)
    description = models.CharField(max_length=DESCRIPTION_MAX_LENGTH, blank=True)
    event_types = models.CharField(
        max_length=60, help_text="The move kinds delivered, comma-separated (MoveKind)."
    )
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    watermark_move_id = models.BigIntegerField(default=0, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    lease_token = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        ordering = ["value_stream", "created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(event_types__regex=EVENT_TYPES_PATTERN),
                name="webhooks_endpoint_event_types_valid",
                violation_error_message="Choose at least one kind of event.",
            ),
            models.CheckConstraint(
                condition=Q(url__startswith="https://") | Q(url__startswith="http://"),
                name="webhooks_endpoint_url_http",
                violation_error_message="A webhook URL starts with https:// or http://.",
            ),
            models.CheckConstraint(
                condition=~Q(secret=""),
                name="webhooks_endpoint_secret_not_blank",
                violation_error_message="An endpoint has a secret to sign with.",
            ),
            models.CheckConstraint(
                condition=Q(previous_secret="", previous_secret_expires_at__isnull=True)
                | (~Q(previous_secret="") & Q(previous_secret_expires_at__isnull=False)),
                name="webhooks_endpoint_previous_secret_expires",
                violation_error_message="A previous secret keeps signing until a set time.",
            ),
            # On the URL's digest: a URL of URL_MAX_LENGTH characters, not all ASCII,
            # is longer than a PostgreSQL index entry may be.
            models.UniqueConstraint(
                F("value_stream"),
                MD5("url"),
                condition=Q(is_active=True),
                name="webhooks_endpoint_unique_active_url",
                violation_error_message="A value stream has one active webhook per URL.",
            ),
            models.CheckConstraint(
                condition=Q(watermark_move_id__gte=0),
                name="webhooks_endpoint_watermark_not_negative",
                violation_error_message="A watermark is a move id or 0.",
            ),
        ]

    def __str__(self) -> str:
        return f"Webhook {self.pk} of {self.value_stream_id}"

    @property
    def kinds(self) -> list[str]:
        """The subscribed move kinds, in MoveKind's order."""
        chosen = set(self.event_types.split(","))
        return [kind for kind in MoveKind.values if kind in chosen]

    @property
    def secret_fingerprint(self) -> str:
        """A short digest of the secret, to tell which one a receiver holds; not the
        secret, nor any part of it."""
        return hashlib.sha256(self.secret.encode()).hexdigest()[:8]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    FAILED = "failed", "Failed, will retry"
    SUCCEEDED = "succeeded", "Delivered"
    DEAD = "dead", "Gave up"


UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


class WebhookDelivery(models.Model):
    """One move sent to one endpoint: its state, attempts and the last answer.

    Unfinished (pending, or failed and retrying) exactly when ``next_attempt_at`` is
    set: the time it may be sent. ``response_ms``: how long the last attempt took, in
    milliseconds. ``last_error``: why the last attempt failed, in a few words (never
    the receiver's body).
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    move = models.ForeignKey(CardMove, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=9, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=LAST_ERROR_MAX_LENGTH, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["endpoint", "-move_id"]
        indexes = [
            # The endpoint's next delivery: its unfinished ones in move order.
            models.Index(
                fields=["endpoint", "move"],
                condition=Q(next_attempt_at__isnull=False),
                name="webhooks_delivery_unfinished",
            ),
            models.Index(fields=["created_at"], name="webhooks_delivery_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "move"],
                name="webhooks_delivery_unique_move_per_endpoint",
                violation_error_message="A move is delivered to an endpoint once.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values),
                name="webhooks_delivery_status_valid",
                violation_error_message="Choose a delivery status.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=UNFINISHED, next_attempt_at__isnull=False)
                | (~Q(status__in=UNFINISHED) & Q(next_attempt_at__isnull=True)),
                name="webhooks_delivery_next_attempt_when_unfinished",
                violation_error_message="Only a delivery still to send has a next attempt.",
            ),
            models.CheckConstraint(
                condition=Q(status=DeliveryStatus.PENDING) | Q(attempts__gte=1),
                name="webhooks_delivery_attempted_unless_pending",
                violation_error_message="A delivery that succeeded or failed was attempted.",
            ),
        ]

    def __str__(self) -> str:
        return f"Move {self.move_id} to webhook {self.endpoint_id}: {self.status}"
