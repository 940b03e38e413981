"""How the OpenAPI schema describes each operation beyond what drf-spectacular infers:
the token scopes that reach it, read from the view (``token_scopes``), the same
attribute api.authentication.TokenScopeAllows enforces, so the two cannot drift."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

from api.authentication import view_token_scopes
from api.models import TokenScope

# The operation's scopes, for machines (the vendor extension) and people (the description).
SCOPES_EXTENSION = "x-token-scopes"


class ApiAutoSchema(AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        scopes = [scope.value for scope in TokenScope if scope in view_token_scopes(self.view)]
        operation[SCOPES_EXTENSION] = scopes
        said = "Token scope: " + " or ".join(f"`{scope}`" for scope in scopes) + "."
        description = operation.get("description", "")
        operation["description"] = f"{description}\n\n{said}" if description else said
        return operation
