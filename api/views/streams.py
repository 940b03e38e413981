"""The token's own stream: what it is called, and its layout (the ids a caller names)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.authentication import ANY_SCOPE, token_actor
from api.models import TokenScope
from api.selectors import stream_layout
from api.serializers import StreamLayoutSerializer
from api.views.common import READ_ERRORS, STREAM_ID, ApiView, responses
from vsm.access import stream_access

STREAMS = "Value stream"


class TokenSerializer(serializers.Serializer):
    """The token a request is made with, and its stream."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scope = serializers.ChoiceField(
        choices=TokenScope.choices,
        help_text="What the token may do: `intake` creates prospects only; `full` every call.",
    )
    stream_id = serializers.IntegerField(source="value_stream_id")
    stream_name = serializers.CharField(source="value_stream.name")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class TokenInfo(ApiView):
    # Every token may ask what it is: a web form's integrator checks its token here.
    token_scopes = ANY_SCOPE

    @extend_schema(
        tags=[STREAMS],
        operation_id="token_get",
        summary="The token in use, and its stream",
        description=(
            "Which token the request was made with (its name, prefix, scope, when it was "
            "made and last used) and the id and name of the one stream it reaches: the "
            "`stream_id` the other calls name."
        ),
        responses=responses({200: TokenSerializer}, (401, 429, 503)),
    )
    def get(self, request: Request) -> Response:
        actor = token_actor(request)
        stream_access(actor=actor, stream_id=actor.stream_id)
        return Response(TokenSerializer(request.auth).data)


class StreamDetail(ApiView):
    @extend_schema(
        tags=[STREAMS],
        operation_id="stream_get",
        summary="The stream's layout",
        description=(
            "Its cycles and columns (WIP limits, open cards), control points and their "
            "criteria, channels and lost reasons: the ids the other calls name."
        ),
        parameters=[STREAM_ID],
        responses=responses({200: StreamLayoutSerializer}, READ_ERRORS),
    )
    def get(self, request: Request, stream_id: int) -> Response:
        layout = stream_layout(stream=self.stream(request, stream_id))
        return Response(StreamLayoutSerializer(layout).data)
