"""Admin: a stream's API tokens, read-only, with a "revoke" action (through the
service). Tokens are made on the stream's API tokens page, which shows the secret
once: the admin's messages would keep it in a cookie or the session."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from api import services
from api.models import ApiToken
from vsm.actors import request_actor
from vsm.admin import ProjectAdmin
from vsm.errors import DomainError

_FIELDS = [
    "value_stream",
    "name",
    "scope",
    "prefix",
    "secret_digest",
    "created_by",
    "created_at",
    "last_used_at",
    "revoked_at",
]


@admin.register(ApiToken)
class ApiTokenAdmin(ProjectAdmin):
    list_display = [
        "name",
        "value_stream",
        "scope",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["value_stream", "scope", "revoked_at"]
    list_select_related = ["value_stream"]
    search_fields = ["name", "prefix"]
    fields = tuple(_FIELDS)
    readonly_fields = _FIELDS
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # read-only; the list's action revokes

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked, not deleted: the audit log names tokens by id

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked, refused = 0, []
        for token in queryset.order_by("pk"):
            try:
                services.api_token_revoke(
                    token_id=token.pk, stream_id=token.value_stream_id, actor=request_actor(request)
                )
            except DomainError as error:
                refused.append(f"{token.name}: {error.message}")
            else:
                revoked += 1
        if revoked:
            self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, f"Not revoked: {message}", messages.ERROR)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        # Any admin who sees the tokens may ask; the service refuses whoever does not
        # steer the token's stream.
        return self.has_view_permission(request)
