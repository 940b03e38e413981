"""Refusals of the API's own: its tokens, and what their scopes allow. Everything else
an API caller is refused with is a service's domain error (vsm.errors and the apps'
errors), answered as JSON by api.exceptions."""

from __future__ import annotations

from vsm.errors import NotFound, PermissionRefused


class ApiTokenNotFound(NotFound):
    code = "api_token_not_found"
    default_message = "No such API token in this value stream."


class TokenScopeRefused(PermissionRefused):
    """The token's scope does not reach the endpoint (an ``intake`` token reading cards)."""

    code = "token_scope"
    default_message = "This token's scope does not allow this call."
