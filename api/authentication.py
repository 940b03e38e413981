"""Who calls the API: ``Authorization: Bearer <token>``, a token of one value stream.

The token is the request's ``auth``; the actor its services record is
``TokenActor(token id, stream id)``. What the token may call is its scope's
(``TokenScopeAllows``). Sessions are not read: a browser's cookies give no
access to the API, so it has no CSRF to guard.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from api.errors import TokenScopeRefused
from api.models import ApiToken, TokenScope
from api.selectors import api_token_for_secret
from api.services import api_token_mark_used
from vsm.actors import TokenActor

REALM = "vsm-api"
# Longer than any token: a header this long is refused before it is matched.
_HEADER_MAX_LENGTH = 200
# A view's ``token_scopes``: by default (a view that names none) only the token that may
# do everything; ANY_SCOPE for the calls a web form's token makes too.
FULL_ONLY: frozenset[TokenScope] = frozenset({TokenScope.FULL})
ANY_SCOPE: frozenset[TokenScope] = frozenset(TokenScope)


class ApiTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer vsm_…``: the token, or 401 when it is unknown or revoked.
    Without a bearer token the request is anonymous (and refused by ``HasStreamToken``
    with 401)."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, secret = header.partition(" ")
        if scheme.casefold() != self.keyword.casefold():
            return None
        secret = secret.strip()
        token = None
        if secret and len(header) <= _HEADER_MAX_LENGTH:
            token = api_token_for_secret(secret)
        if token is None:
            raise exceptions.AuthenticationFailed("This API token is unknown or was revoked.")
        api_token_mark_used(token=token)
        return AnonymousUser(), token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="{REALM}"'


class HasStreamToken(BasePermission):
    """The request carries an active API token (its stream is checked by each view,
    through vsm.access, as "not found")."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiToken)


def view_token_scopes(view: Any) -> frozenset[TokenScope]:
    """The scopes of token that reach ``view`` (a view class or instance): its
    ``token_scopes``, else FULL_ONLY."""
    scopes: frozenset[TokenScope] = getattr(view, "token_scopes", FULL_ONLY)
    return scopes


def scopes_text(scopes: frozenset[TokenScope]) -> str:
    """The scopes in words, in TokenScope's order: "“intake” or “full”"."""
    return " or ".join(f"“{scope.value}”" for scope in TokenScope if scope in scopes)


class TokenScopeAllows(BasePermission):
    """The token's scope reaches the view (``view_token_scopes``). The one place scopes
    are enforced: every view of the API (api.views.common.ApiView) lists it.

    Raises: TokenScopeRefused (403 ``token_scope``, audited as a refusal by
    api.exceptions). A request without a token is HasStreamToken's to refuse (401).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        allowed = view_token_scopes(view)
        if token.scope not in allowed:
            raise TokenScopeRefused(
                f"This token's scope is “{token.scope}”: it does not reach this call, "
                f"which needs a token of scope {scopes_text(allowed)}.",
                data={"token_id": token.pk},
            )
        return True


def token_actor(request: Request) -> TokenActor:
    """The actor of an authenticated API request: its token, in its stream."""
    token = request.auth
    assert isinstance(token, ApiToken), "HasStreamToken lets only token requests in"
    return TokenActor(token_id=token.pk, stream_id=token.value_stream_id)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the token: HTTP bearer."""

    target_class = ApiTokenAuthentication
    name = "ApiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A value stream's API token, made by its manager on the stream's "
                "“API tokens” page: `Authorization: Bearer vsm_…`. Its scope says which "
                "calls it reaches (each operation names its scopes, also in "
                "`x-token-scopes`): `intake` creates prospects only (a web form's token), "
                "`full` makes every call. Any other call is refused with `403 token_scope`."
            ),
        }
