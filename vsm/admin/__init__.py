"""Admin: teams, memberships, channels and lost reasons through the services; the audit
log, read-only; Django's users and groups on the project's admin base.

ValueStream is registered in boards.admin: creating one builds its default cycles,
columns and control points, which live in the higher apps.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest

from vsm import services
from vsm.actors import request_actor
from vsm.admin.base import (
    ProjectAdmin,
    ServiceAdmin,
    ServiceTabularInline,
    changed,
    delete_refusal,
    limit_choices,
    pk_of,
)
from vsm.admin.lost_reasons import LostReasonAdmin
from vsm.errors import DomainError, InvalidInput
from vsm.forms import ROW_ID_MAX, row_id
from vsm.models import AuditEntry, Channel, Membership, Team, ValueStream

__all__ = [
    "ROW_ID_MAX",
    "LostReasonAdmin",
    "ProjectAdmin",
    "ServiceAdmin",
    "ServiceTabularInline",
    "changed",
    "delete_refusal",
    "limit_choices",
    "pk_of",
    "row_id",
]


class MembershipInline(ServiceTabularInline):
    model = Membership
    extra = 1
    fields = ["user", "role"]
    autocomplete_fields = ["user"]

    def service_create(self, request, parent, obj, form):
        return services.membership_add(
            team_id=parent.pk,
            user_id=form.cleaned_data["user"].pk,
            role=form.cleaned_data["role"],
            actor=request_actor(request),
        )

    def service_update(self, request, parent, obj, form):
        return _membership_update(request, obj, form)

    def service_delete(self, request, parent, obj):
        services.membership_remove(membership_id=obj.pk, actor=request_actor(request))


def _membership_update(request: HttpRequest, obj: Membership, form: forms.ModelForm) -> Membership:
    if {"user", "team"} & set(form.changed_data):
        raise InvalidInput(
            "A membership stays with its person and team: remove it and add the new one.",
            field="user",
        )
    if "role" not in form.changed_data:
        return obj
    return services.membership_set_role(
        membership_id=obj.pk, role=form.cleaned_data["role"], actor=request_actor(request)
    )


@admin.register(Team)
class TeamAdmin(ServiceAdmin):
    list_display = ["name", "value_stream"]
    list_filter = ["value_stream"]
    list_select_related = ["value_stream"]
    search_fields = ["name", "value_stream__name"]
    readonly_on_change = ["value_stream"]
    inlines = [MembershipInline]

    def service_create(self, request, obj, form):
        return services.team_create(
            stream_id=form.cleaned_data["value_stream"].pk,
            name=form.cleaned_data["name"],
            actor=request_actor(request),
        )

    def service_update(self, request, obj, form):
        if "name" not in form.changed_data:
            return obj
        return services.team_rename(
            team_id=obj.pk, name=form.cleaned_data["name"], actor=request_actor(request)
        )

    def service_delete(self, request, obj):
        services.team_delete(team_id=obj.pk, actor=request_actor(request))


@admin.register(Membership)
class MembershipAdmin(ServiceAdmin):
    list_display = ["user", "team", "role"]
    list_filter = ["role", "team__value_stream"]
    list_select_related = ["user", "team__value_stream"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]
    readonly_on_change = ["user", "team"]

    def service_create(self, request, obj, form):
        return services.membership_add(
            team_id=form.cleaned_data["team"].pk,
            user_id=form.cleaned_data["user"].pk,
            role=form.cleaned_data["role"],
            actor=request_actor(request),
        )

    def service_update(self, request, obj, form):
        return _membership_update(request, obj, form)

    def service_delete(self, request, obj):
        services.membership_remove(membership_id=obj.pk, actor=request_actor(request))


@admin.action(description="Deactivate selected channels (no new cards)")
def deactivate_channels(
    modeladmin: ChannelAdmin, request: HttpRequest, queryset: QuerySet[Channel]
) -> None:
    done = 0
    for channel_id in queryset.filter(is_active=True).values_list("pk", flat=True):
        try:
            services.channel_deactivate(channel_id=channel_id, actor=request_actor(request))
            done += 1
        except DomainError as error:
            modeladmin.message_user(request, f"Channel {channel_id}: {error}", messages.ERROR)
    modeladmin.message_user(request, f"{done} channel(s) deactivated.")


@admin.register(Channel)
class ChannelAdmin(ServiceAdmin):
    list_display = ["name", "kind", "value_stream", "is_active"]
    list_filter = ["value_stream", "kind", "is_active"]
    list_select_related = ["value_stream"]
    search_fields = ["name"]
    readonly_on_change = ["value_stream"]
    actions = [deactivate_channels]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Cards and the move log keep their channel: a channel is deactivated instead.
        return False

    def service_create(self, request, obj, form):
        return services.channel_create(
            stream_id=form.cleaned_data["value_stream"].pk,
            name=form.cleaned_data["name"],
            kind=form.cleaned_data["kind"],
            is_active=form.cleaned_data["is_active"],
            actor=request_actor(request),
        )

    def service_update(self, request, obj, form):
        return services.channel_update(
            channel_id=obj.pk,
            actor=request_actor(request),
            **changed(form, "name", "kind", "is_active"),
        )


class StreamFilter(admin.SimpleListFilter):
    """The audit log's stream, by name: it keeps plain ids, which outlive the streams."""

    title = "value stream"
    parameter_name = "stream_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in ValueStream.objects.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> Any:
        stream_id = row_id(self.value()) if self.value() else None
        return queryset if stream_id is None else queryset.filter(stream_id=stream_id)


class RefusedFilter(admin.SimpleListFilter):
    title = "refused"
    parameter_name = "refused"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Refused"), ("no", "Carried out")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> Any:
        if self.value() == "yes":
            return queryset.exclude(refused_code="")
        if self.value() == "no":
            return queryset.filter(refused_code="")
        return queryset


class AuditChangeList(ChangeList):
    """The audit log's page, with the names of its streams looked up in one query."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        entries: list[Any] = list(self.result_list)
        stream_ids = {entry.stream_id for entry in entries if entry.stream_id is not None}
        names = dict(
            ValueStream.objects.filter(pk__in=stream_ids).values_list("pk", "name")
            if stream_ids
            else []
        )
        for entry in entries:
            entry.stream_name = names.get(entry.stream_id)
        self.result_list = entries


@admin.register(AuditEntry)
class AuditEntryAdmin(ProjectAdmin):
    """The audit log, read-only: written by the services only, and append-only."""

    list_display = [
        "at",
        "action",
        "who",
        "actor_kind",
        "stream",
        "target_type",
        "target_id",
        "refused_code",
    ]
    list_filter = [StreamFilter, "actor_kind", "actor", "action", RefusedFilter]
    list_select_related = ["actor"]
    date_hierarchy = "at"
    search_fields = ["action", "refused_code"]
    show_full_result_count = False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return AuditChangeList

    @admin.display(description="Actor")
    def who(self, entry: AuditEntry) -> str:
        return entry.actor_label

    @admin.display(description="Value stream", ordering="stream_id")
    def stream(self, entry: AuditEntry) -> str | None:
        """The stream's name (looked up for the whole page by AuditChangeList); a stream
        deleted since is named by its id, which the log keeps."""
        if entry.stream_id is None:
            return None
        name: str | None = getattr(entry, "stream_name", None)
        return name or f"Stream {entry.stream_id} (deleted)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Django's own admins of users and groups, on the project's base: their list actions
# (delete selected) refuse crafted row ids as ours do.
User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(ProjectAdmin, auth_admin.UserAdmin):
    pass


@admin.register(Group)
class GroupAdmin(ProjectAdmin, auth_admin.GroupAdmin):
    pass
