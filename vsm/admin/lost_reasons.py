"""Admin: a stream's lost reasons, through the services (as channels are)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from vsm import services
from vsm.actors import request_actor
from vsm.admin.base import ServiceAdmin, changed
from vsm.errors import DomainError
from vsm.models import LostReason


@admin.action(description="Deactivate selected lost reasons (no longer offered)")
def deactivate_lost_reasons(
    modeladmin: LostReasonAdmin, request: HttpRequest, queryset: QuerySet[LostReason]
) -> None:
    done = 0
    for reason_id in queryset.filter(is_active=True).values_list("pk", flat=True):
        try:
            services.lost_reason_deactivate(lost_reason_id=reason_id, actor=request_actor(request))
            done += 1
        except DomainError as error:
            modeladmin.message_user(request, f"Lost reason {reason_id}: {error}", messages.ERROR)
    modeladmin.message_user(request, f"{done} lost reason(s) deactivated.")


@admin.register(LostReason)
class LostReasonAdmin(ServiceAdmin):
    list_display = ["name", "value_stream", "order", "is_active"]
    list_filter = ["value_stream", "is_active"]
    list_select_related = ["value_stream"]
    search_fields = ["name"]
    ordering = ["value_stream__name", "order", "name"]
    readonly_on_change = ["value_stream"]
    actions = [deactivate_lost_reasons]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Lost cards keep their reason: a reason is deactivated instead.
        return False

    def service_create(self, request, obj, form):
        return services.lost_reason_create(
            stream_id=form.cleaned_data["value_stream"].pk,
            name=form.cleaned_data["name"],
            order=form.cleaned_data["order"],
            is_active=form.cleaned_data["is_active"],
            actor=request_actor(request),
        )

    def service_update(self, request, obj, form):
        return services.lost_reason_update(
            lost_reason_id=obj.pk,
            actor=request_actor(request),
            **changed(form, "name", "order", "is_active"),
        )
