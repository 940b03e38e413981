"""Admin: configure streams, cycles, columns and WIP limits; read the move log.

Writes that the board depends on go through boards.services, so the admin cannot
bypass the WIP rule or the move log.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from boards import services
from boards.errors import BoardError
from boards.models import Card, CardMove, Column, Handoff, Outcome
from pdca.models import Cycle
from vsm.models import ValueStream


@admin.register(ValueStream)
class ValueStreamAdmin(admin.ModelAdmin):
    list_display = ["name", "customer_market", "manager", "created_at"]
    search_fields = ["name", "customer_market"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["manager"]

    def save_model(self, request: HttpRequest, obj: ValueStream, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new stream gets its default team, cycles, columns and control points.
        created = services.value_stream_create(
            name=obj.name,
            slug=obj.slug,
            customer_market=obj.customer_market,
            description=obj.description,
            manager=obj.manager,
        )
        obj.pk = created.pk
        obj.created_at = created.created_at
        obj._state.adding = False


def _save_column(request: HttpRequest, column: Column, form, save) -> None:
    """Save an admin's column form; a changed WIP limit goes through
    column_set_wip_limit (its lock, and the metrics refresh it asks for)."""
    if column.pk is None or "wip_limit" not in form.changed_data:
        save()
        return
    wip_limit = column.wip_limit
    column.wip_limit = form.initial.get("wip_limit")
    save()
    services.column_set_wip_limit(column_id=column.pk, wip_limit=wip_limit, actor=request.user)
    column.wip_limit = wip_limit


class ColumnInline(admin.TabularInline):
    model = Column
    extra = 0
    fields = ["order", "name", "knowledge_level", "wip_limit", "split"]
    ordering = ["order"]


@admin.register(Cycle)
class CycleAdmin(admin.ModelAdmin):
    list_display = ["name", "value_stream", "order", "owning_team"]
    list_filter = ["value_stream"]
    list_select_related = ["value_stream", "owning_team"]
    ordering = ["value_stream", "order"]
    inlines = [ColumnInline]

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        if formset.model is not Column:
            super().save_formset(request, form, formset, change)
            return
        columns = formset.save(commit=False)
        for column_form in formset.forms:
            column = column_form.instance
            if column in columns:
                _save_column(request, column, column_form, column.save)
        for column in formset.deleted_objects:
            column.delete()
        formset.save_m2m()


@admin.register(Column)
class ColumnAdmin(admin.ModelAdmin):
    list_display = ["name", "cycle", "knowledge_level", "order", "wip_limit", "split"]
    list_editable = ["wip_limit"]
    list_filter = ["cycle__value_stream", "knowledge_level"]
    list_select_related = ["cycle__value_stream"]
    ordering = ["cycle__value_stream", "cycle__order", "order"]

    def save_model(self, request: HttpRequest, obj: Column, form, change: bool) -> None:
        _save_column(
            request,
            obj,
            form,
            lambda: super(ColumnAdmin, self).save_model(request, obj, form, change),
        )


@admin.action(description="Mark selected cards won")
def mark_won(modeladmin: CardAdmin, request: HttpRequest, queryset: QuerySet[Card]) -> None:
    _close_cards(request, queryset, Outcome.WON, modeladmin)


@admin.action(description="Mark selected cards lost")
def mark_lost(modeladmin: CardAdmin, request: HttpRequest, queryset: QuerySet[Card]) -> None:
    _close_cards(request, queryset, Outcome.LOST, modeladmin)


def _close_cards(request, queryset, outcome: Outcome, modeladmin: CardAdmin) -> None:
    closed = 0
    for card_id in queryset.filter(outcome=Outcome.OPEN).values_list("pk", flat=True):
        try:
            services.card_close(card_id=card_id, outcome=outcome, actor=request.user)
            closed += 1
        except BoardError as error:
            modeladmin.message_user(request, f"Card {card_id}: {error}", messages.ERROR)
    modeladmin.message_user(request, f"{closed} card(s) marked {outcome.label.lower()}.")


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = ["display_name", "value_stream", "column", "channel", "outcome", "is_blocked"]
    list_filter = ["value_stream", "outcome", "is_blocked", "channel"]
    list_select_related = ["value_stream", "column__cycle", "channel"]
    search_fields = ["person_name", "company", "email"]
    actions = [mark_won, mark_lost]
    # Column, position and outcome change only through the move service (the board or
    # the actions above), so the WIP rule and the move log hold.
    readonly_fields = [
        "value_stream",
        "position",
        "outcome",
        "version",
        "created_at",
        "updated_at",
        "column_entered_at",
        "closed_at",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Card | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "column"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: Card, form, change: bool) -> None:
        if change:
            blocking = {"is_blocked", "blocked_reason"} & set(form.changed_data)
            blocked, reason = obj.is_blocked, obj.blocked_reason
            if blocking:  # set by card_set_blocked below, which the metrics follow
                obj.is_blocked = form.initial.get("is_blocked", False)
                obj.blocked_reason = form.initial.get("blocked_reason", "")
            obj.version += 1
            super().save_model(request, obj, form, change)
            if blocking:
                card = services.card_set_blocked(
                    card_id=obj.pk, blocked=blocked, reason=reason, actor=request.user
                )
                obj.is_blocked, obj.blocked_reason = card.is_blocked, card.blocked_reason
                obj.version = card.version
            return
        result = services.card_create(
            column_id=obj.column_id,
            actor=request.user,
            person_name=obj.person_name,
            company=obj.company,
            email=obj.email,
            channel_id=obj.channel_id,
            owner=obj.owner,
            estimated_value=obj.estimated_value,
            notes=obj.notes,
        )
        obj.pk = result.card.pk
        obj._state.adding = False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(CardMove)
class CardMoveAdmin(ReadOnlyAdmin):
    list_display = ["moved_at", "kind", "card", "from_column", "to_column", "actor"]
    list_filter = ["kind", "value_stream"]
    list_select_related = ["card", "from_column__cycle", "to_column__cycle", "actor"]
    date_hierarchy = "moved_at"


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyAdmin):
    list_display = ["handed_off_at", "card", "control_point", "from_team", "to_team", "actor"]
    list_select_related = [
        "card",
        "from_team",
        "to_team",
        "actor",
        "control_point__from_cycle",
        "control_point__to_cycle",
    ]
