"""API tokens: one value stream's key to the REST API.

A token is shown once, when it is made; only its prefix (to find it) and the SHA-256
digest of the whole token are stored (api.services). A token of 256 random bits needs
no slow hash: nobody can guess one, so the digest only keeps a copy of the database
from being a copy of the keys.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from vsm.models import ValueStream

TOKEN_NAME_MAX_LENGTH = 80
# "vsm_" + prefix + "_" + secret: the prefix is 8 hex digits, the secret 43 url-safe
# characters (32 random bytes).
TOKEN_PREFIX_LENGTH = 8
SECRET_DIGEST_LENGTH = 64


class TokenScope(models.TextChoices):
    """What a token may do. ``intake`` is for a web form, whose token may end up in a
    page anyone can read: it creates prospects and nothing else (no card, no prospect's
    details, no metric can be read with it). ``full``: every call of the API."""

    INTAKE = "intake", "Intake: create prospects only"
    FULL = "full", "Full: read and move cards, read metrics, create prospects"


class ApiToken(models.Model):
    """A value stream's API token: it sees and works on that stream only."""

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=TOKEN_NAME_MAX_LENGTH, help_text="What uses it: “Website contact form”."
    )
    # No default: whoever makes a token says what it may do (api.services).
    scope = models.CharField(max_length=10, choices=TokenScope.choices)
    # Not secret: it finds the row; the digest proves the rest.
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, editable=False)
    secret_digest = models.CharField(max_length=SECRET_DIGEST_LENGTH, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField()
    # Moved forward at most once a minute (api.services.api_token_mark_used).
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["value_stream", "-created_at", "-id"]
        verbose_name = "API token"
        constraints = [
            models.UniqueConstraint(fields=["prefix"], name="api_apitoken_unique_prefix"),
            models.CheckConstraint(
                condition=~Q(name=""),
                name="api_apitoken_name_not_blank",
                violation_error_message="An API token needs a name.",
            ),
            models.CheckConstraint(
                condition=Q(prefix__regex=r"^[0-9a-f]{8}$"),
                name="api_apitoken_prefix_format",
                violation_error_message="A token's prefix is 8 hexadecimal digits.",
            ),
            models.CheckConstraint(
                condition=Q(secret_digest__regex=r"^[0-9a-f]{64}$"),
                name="api_apitoken_digest_format",
                violation_error_message="A token's digest is a SHA-256 in hexadecimal.",
            ),
            models.CheckConstraint(
                condition=Q(scope__in=TokenScope.values),
                name="api_apitoken_scope_known",
                violation_error_message="A token's scope is one of: "
                + ", ".join(TokenScope.values)
                + ".",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(revoked_at__gte=models.F("created_at")),
                name="api_apitoken_revoked_after_created",
                violation_error_message="A token is revoked after it was made.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (vsm_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
