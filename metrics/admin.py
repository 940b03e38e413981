"""Admin: the weekly review's decisions and notes, read-only (they are kept; withdrawing
one goes through metrics.services, like the review page)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from metrics import services
from metrics.models import ReviewEntry
from vsm.actors import request_actor
from vsm.admin import ProjectAdmin
from vsm.errors import DomainError


@admin.register(ReviewEntry)
class ReviewEntryAdmin(ProjectAdmin):
    list_display = ["value_stream", "week_start", "kind", "author", "created_at", "withdrawn_at"]
    list_filter = ["value_stream", "kind", ("withdrawn_at", admin.EmptyFieldListFilter)]
    list_select_related = ["value_stream", "author"]
    date_hierarchy = "week_start"
    search_fields = ["text"]
    actions = ["withdraw"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ReviewEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ReviewEntry | None = None) -> bool:
        return False

    @admin.action(description="Withdraw the selected entries (they stay, marked withdrawn)")
    def withdraw(self, request: HttpRequest, queryset: QuerySet[ReviewEntry]) -> None:
        done = 0
        for entry_id in queryset.filter(withdrawn_at__isnull=True).values_list("pk", flat=True):
            try:
                services.review_entry_withdraw(entry_id=entry_id, actor=request_actor(request))
            except DomainError as refusal:
                self.message_user(request, f"Entry {entry_id}: {refusal}", messages.ERROR)
            else:
                done += 1
        self.message_user(request, f"{done} withdrawn.", messages.SUCCESS)
