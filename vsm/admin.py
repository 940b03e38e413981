from django.contrib import admin

from vsm.models import Channel, Membership, Team

# ValueStream is registered in boards.admin: creating one builds its default cycles,
# columns and control points, which live in the higher apps.


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "value_stream"]
    list_filter = ["value_stream"]
    search_fields = ["name", "value_stream__name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role"]
    list_filter = ["role", "team__value_stream"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "value_stream", "is_active"]
    list_filter = ["value_stream", "kind", "is_active"]
    search_fields = ["name"]
