"""What every API view shares: token authentication, the caller's stream, parsing,
and the errors the schema documents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.contrib.auth.decorators import login_not_required
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from api.authentication import FULL_ONLY, HasStreamToken, TokenScopeAllows, token_actor
from api.models import TokenScope
from api.schema import ApiAutoSchema
from api.serializers import ErrorSerializer
from vsm.access import stream_access
from vsm.forms import ROW_ID_MAX
from vsm.models import ValueStream


# A view of the API: a stream's token required, of a scope in ``token_scopes`` (checked
# by TokenScopeAllows, and said in the schema by ApiAutoSchema); no session, no login
# redirect (LoginRequiredMiddleware lets it through: the token is checked here, after the
# middleware). A comment, not a docstring: drf-spectacular would show a view's
# docstring, inherited, as the description of any operation that has none of its own.
class ApiView(APIView):
    permission_classes = [HasStreamToken, TokenScopeAllows]
    schema = ApiAutoSchema()
    # Only a "full" token, unless a view opens itself to more scopes.
    token_scopes: ClassVar[frozenset[TokenScope]] = FULL_ONLY

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        return login_not_required(super().as_view(**initkwargs))

    def stream(self, request: Request, stream_id: int) -> ValueStream:
        """The stream of the URL, if it is the token's. Raises: StreamNotFound (any
        other stream, as a missing one)."""
        return stream_access(actor=token_actor(request), stream_id=stream_id)


def valid[S: serializers.Serializer](serializer_class: type[S], data: Any) -> dict[str, Any]:
    """``data`` parsed by ``serializer_class``. Raises: ValidationError (400,
    invalid_input, the errors by field)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    validated: dict[str, Any] = serializer.validated_data
    return validated


def _id_parameter(name: str, what: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        {"type": "integer", "minimum": 1, "maximum": ROW_ID_MAX},
        OpenApiParameter.PATH,
        description=what,
    )


STREAM_ID = _id_parameter("stream_id", "The value stream's id: the token's own stream.")
CARD_ID = _id_parameter("card_id", "A card of the stream.")
CHART_KEY = OpenApiParameter(
    "chart_key",
    {"type": "string", "pattern": "^[a-z0-9-]{1,60}$"},
    OpenApiParameter.PATH,
    description="A chart's key, as the summary lists them (throughput, funnel-12, ...).",
)

_ERRORS = {
    400: "Invalid input (`invalid_input`, with the errors by field in `data.fields`) or "
    "a refusal of the request as given (`invalid_move`, `email_suppressed`, ...).",
    401: "No API token, or one unknown or revoked.",
    403: "The token's scope does not reach this call (`token_scope`): an `intake` token "
    "only creates prospects.",
    404: "Not found, or not the token's stream (answered alike).",
    409: "The current state forbids it: `wip_limit_reached`, `stale` (the version named is "
    "not the card's, or a neighbour named left the column: read again, then retry), "
    "`control_point_required`, `criteria_not_met`, `undo_expired`.",
    429: "Too many requests with this token (`Retry-After` says when to try again).",
    503: "Busy: rows were locked too long or the database was out of reach; nothing "
    "changed, try again.",
}
READ_ERRORS = (400, 401, 403, 404, 429, 503)
WRITE_ERRORS = (400, 401, 403, 404, 409, 429, 503)
# A call every scope reaches: never 403.
ANY_SCOPE_WRITE_ERRORS = (400, 401, 404, 409, 429, 503)


def responses(ok: Mapping[int, Any], errors: tuple[int, ...]) -> dict[int, Any]:
    """The responses of an operation for the schema: its answers, and its errors in
    the one error shape."""
    documented: dict[int, Any] = dict(ok)
    for status in errors:
        documented[status] = OpenApiResponse(ErrorSerializer, description=_ERRORS[status])
    return documented


__all__ = [
    "ANY_SCOPE_WRITE_ERRORS",
    "CARD_ID",
    "CHART_KEY",
    "READ_ERRORS",
    "STREAM_ID",
    "WRITE_ERRORS",
    "ApiView",
    "responses",
    "valid",
]
