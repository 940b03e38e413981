"""The writes of API tokens: made (the secret shown once, stored as a digest), revoked,
and stamped when used."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from api.errors import ApiTokenNotFound
from api.models import TOKEN_NAME_MAX_LENGTH, TOKEN_PREFIX_LENGTH, ApiToken, TokenScope
from vsm.access import stream_access
from vsm.actors import Actor, UserActor
from vsm.audit import audit_record
from vsm.errors import InvalidInput
from vsm.transactions import locking_transaction

# What every token starts with: a reader (or a secret scanner) knows it for ours.
TOKEN_SCHEME = "vsm_"
_SECRET_BYTES = 32
# A token's last use is stamped at most this often: a write per request would make
# every API read a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_STEERING = "manage API tokens"


@dataclass(frozen=True)
class IssuedToken:
    """A token just made, and its secret: ``secret`` is the whole token as the caller
    sends it (``vsm_<prefix>_<random>``), shown once and stored nowhere."""

    token: ApiToken
    secret: str


def token_digest(secret: str) -> str:
    """The SHA-256 of a whole token, in hexadecimal: what is stored and compared."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _name_check(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("Name the token after what uses it.", field="name")
    if len(name) > TOKEN_NAME_MAX_LENGTH:
        raise InvalidInput(
            f"A token's name is at most {TOKEN_NAME_MAX_LENGTH} characters.",
            data={"max_length": TOKEN_NAME_MAX_LENGTH},
            field="name",
        )
    return name


def _scope_check(scope: str) -> TokenScope:
    if scope not in TokenScope.values:
        raise InvalidInput(
            "Choose what the token may do: " + ", ".join(TokenScope.values) + ".", field="scope"
        )
    return TokenScope(scope)


def api_token_create(
    *,
    stream_id: int,
    name: str,
    actor: Actor,
    scope: str = TokenScope.FULL,
    at: datetime | None = None,
) -> IssuedToken:
    """Make an API token for the stream ``stream_id``; the result holds its secret.

    ``scope``: what it may do (TokenScope). The default, ``full``, is what every token
    could do before scopes, kept for callers in code (a bench, a script); the tokens
    page asks, ``intake`` preselected.
    Raises: StreamNotFound, PermissionRefused (only an admin or the stream's manager
    makes tokens), InvalidInput (a blank or too long name, an unknown scope).
    Side effects: an audit row "api_token.created" (``intake_only``: its scope).
    """
    name = _name_check(name)
    scope = _scope_check(scope)
    at = at or timezone.now()
    created_by_id = actor.user_id if isinstance(actor, UserActor) else None
    with transaction.atomic():
        stream = stream_access(actor=actor, stream_id=stream_id, steer=True)
        # 32 bits of prefix: a clash is rare, and then another prefix is drawn.
        for _attempt in range(5):
            prefix = secrets.token_hex(TOKEN_PREFIX_LENGTH // 2)
            secret = f"{TOKEN_SCHEME}{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
            try:
                with transaction.atomic():
                    token = ApiToken.objects.create(
                        value_stream=stream,
                        name=name,
                        scope=scope,
                        prefix=prefix,
                        secret_digest=token_digest(secret),
                        created_by_id=created_by_id,
                        created_at=at,
                    )
                break
            except IntegrityError:
                if not ApiToken.objects.filter(prefix=prefix).exists():
                    raise
        else:  # pragma: no cover - five clashes in 2**32 prefixes
            raise RuntimeError("Could not draw a free token prefix.")
        audit_record(
            actor=actor,
            action="api_token.created",
            stream_id=stream.pk,
            target_type="api_token",
            target_id=token.pk,
            # The log holds ids, numbers and flags only: the scope as a flag.
            data={"intake_only": scope == TokenScope.INTAKE},
            at=at,
        )
    return IssuedToken(token=token, secret=secret)


def api_token_revoke(
    *, token_id: int, stream_id: int, actor: Actor, at: datetime | None = None
) -> ApiToken:
    """Revoke the token ``token_id`` of the stream ``stream_id``: from now on it is
    refused (401). Revoking a revoked token changes nothing.

    Locks: the token. Raises: StreamNotFound, PermissionRefused, ApiTokenNotFound (not
    a token of that stream).
    Side effects: an audit row "api_token.revoked" when it was active.
    """
    at = at or timezone.now()
    with locking_transaction():
        stream = stream_access(actor=actor, stream_id=stream_id, steer=True)
        token = (
            ApiToken.objects.select_for_update()
            .filter(pk=token_id, value_stream=stream)
            .order_by()
            .first()
        )
        if token is None:
            raise ApiTokenNotFound(data={"token_id": token_id, "stream_id": stream.pk})
        if token.revoked_at is not None:
            return token
        token.revoked_at = max(at, token.created_at)
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="api_token.revoked",
            stream_id=stream.pk,
            target_type="api_token",
            target_id=token.pk,
            at=at,
        )
    return token


def api_token_mark_used(*, token: ApiToken, at: datetime | None = None) -> bool:
    """Stamp the token's last use, unless it was stamped within LAST_USED_RESOLUTION.

    One conditional UPDATE (none when the token in hand was stamped recently), so that
    concurrent requests write it once. Returns whether it wrote. No audit row: a use
    changes nothing, and a row a minute per token would drown the log.
    """
    at = at or timezone.now()
    cutoff = at - LAST_USED_RESOLUTION
    if token.last_used_at is not None and token.last_used_at > cutoff:
        return False
    written = (
        ApiToken.objects.filter(pk=token.pk)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff))
        .update(last_used_at=at)
    )
    if written:
        token.last_used_at = at
    return bool(written)
