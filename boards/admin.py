"""Admin: configure streams, cycles, columns and WIP limits; add and edit cards; read the
move log.

Every write goes through a service (``vsm.admin.ServiceAdmin``), so the admin cannot
create a state the board would refuse: a refusal shows on the form, as on the board.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from boards import selectors, services
from boards.errors import LostReasonRefused
from boards.forms import LostNoteField
from boards.models import Card, CardMove, Column, Handoff, Outcome
from boards.services.columns import WIP_LIMIT_MAX, WIP_LIMIT_RULE
from pdca import services as pdca_services
from pdca.models import Cycle
from vsm import services as vsm_services
from vsm.actors import request_actor
from vsm.admin import (
    ProjectAdmin,
    ServiceAdmin,
    ServiceTabularInline,
    changed,
    limit_choices,
    pk_of,
)
from vsm.errors import DomainError
from vsm.forms import RowChoiceField, RowIdField, WholeNumberField
from vsm.models import Channel, LostReason, Membership, Role, Team, ValueStream


class ValueStreamForm(forms.ModelForm):
    """A stream's facts and manager, and (once it has teams) the team in which its
    manager holds the value stream manager role."""

    manager_team = RowChoiceField(
        queryset=Team.objects.none(),
        required=False,
        label="Manager's team",
        help_text="The team in which the manager holds the value stream manager role.",
    )

    class Meta:
        model = ValueStream
        fields = ["name", "slug", "customer_market", "description", "manager"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stream = self.instance
        if stream.pk is None:
            return
        limit_choices(self, "manager_team", Team.objects.filter(value_stream=stream))
        self.fields["manager_team"].required = True
        self.initial.setdefault(
            "manager_team",
            Membership.objects.filter(
                team__value_stream=stream,
                user_id=stream.manager_id,
                role=Role.VALUE_STREAM_MANAGER,
            )
            .values_list("team_id", flat=True)
            .first(),
        )


@admin.register(ValueStream)
class ValueStreamAdmin(ServiceAdmin):
    form = ValueStreamForm
    list_display = ["name", "customer_market", "manager", "created_at"]
    list_select_related = ["manager"]
    search_fields = ["name", "customer_market"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["manager"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fields = ["name", "slug", "customer_market", "description", "manager"]
        # A new stream's manager joins its default team, made with it.
        return fields if obj is None else [*fields, "manager_team"]

    def service_create(self, request, obj, form):
        # A new stream gets its default team, cycles, columns and control points.
        data = form.cleaned_data
        return services.value_stream_create(
            name=data["name"],
            slug=data["slug"],
            customer_market=data["customer_market"],
            description=data["description"],
            manager=data["manager"],
            actor=request_actor(request),
        )

    def service_update(self, request, obj, form):
        values = changed(form, "name", "slug", "customer_market", "description")
        if "manager" in form.changed_data:
            values["manager_id"] = form.cleaned_data["manager"].pk
        if "manager_team" in form.changed_data:
            values["manager_team_id"] = form.cleaned_data["manager_team"].pk
        return vsm_services.value_stream_update(
            stream_id=obj.pk, actor=request_actor(request), **values
        )

    def service_delete(self, request, obj):
        vsm_services.value_stream_delete(stream_id=obj.pk, actor=request_actor(request))


class WipLimitField(WholeNumberField):
    """A WIP limit as the services take it: empty, or from 1 to WIP_LIMIT_MAX (the
    model's field would say "at least 0" and let 0 and 100,000 through to a refusal)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.update(
            required=False,
            min_value=1,
            max_value=WIP_LIMIT_MAX,
            error_messages={
                code: WIP_LIMIT_RULE for code in ("invalid", "min_value", "max_value", "step_size")
            },
            help_text=f"Empty: no limit. Otherwise a whole number from 1 to {WIP_LIMIT_MAX:,}.",
        )
        super().__init__(**kwargs)


def _wip_limit_field(db_field: Any, request: HttpRequest, default: Any, **kwargs: Any) -> Any:
    if db_field.name == "wip_limit":
        return WipLimitField(label=db_field.verbose_name.capitalize())
    return default(db_field, request, **kwargs)


class ColumnInline(ServiceTabularInline):
    model = Column
    extra = 0
    fields = ["order", "name", "knowledge_level", "wip_limit", "split"]
    ordering = ["order"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return _wip_limit_field(db_field, request, super().formfield_for_dbfield, **kwargs)

    def service_create(self, request, parent, obj, form):
        data = form.cleaned_data
        return services.column_create(
            cycle_id=parent.pk,
            name=data["name"],
            knowledge_level=data["knowledge_level"],
            order=data["order"],
            wip_limit=data["wip_limit"],
            split=data["split"],
            actor=request_actor(request),
        )

    def service_update(self, request, parent, obj, form):
        return _column_update(request, obj, form)

    def service_delete(self, request, parent, obj):
        services.column_delete(column_id=obj.pk, actor=request_actor(request))


def _column_update(request: HttpRequest, column: Column, form: forms.ModelForm) -> Column:
    values = changed(form, "name", "knowledge_level", "order", "wip_limit", "split")
    if "cycle" in form.changed_data:
        values["cycle_id"] = form.cleaned_data["cycle"].pk
    return services.column_update(column_id=column.pk, actor=request_actor(request), **values)


def _stream_teams(form: forms.ModelForm, field: str, stream_id: int | None) -> None:
    """Offer the teams of ``stream_id`` only (all teams, named with their stream, when
    the row has no stream yet): the services refuse any other."""
    teams = Team.objects.select_related("value_stream")
    if stream_id is not None:
        teams = teams.filter(value_stream_id=stream_id)
    limit_choices(form, field, teams)


class CycleForm(forms.ModelForm):
    class Meta:
        model = Cycle
        fields = ["value_stream", "name", "order", "owning_team"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _stream_teams(self, "owning_team", self.instance.value_stream_id)


@admin.register(Cycle)
class CycleAdmin(ServiceAdmin):
    form = CycleForm
    list_display = ["name", "value_stream", "order", "owning_team"]
    list_filter = ["value_stream"]
    list_select_related = ["value_stream", "owning_team"]
    ordering = ["value_stream", "order"]
    readonly_on_change = ["value_stream"]
    inlines = [ColumnInline]

    def service_create(self, request, obj, form):
        data = form.cleaned_data
        return pdca_services.cycle_create(
            stream_id=data["value_stream"].pk,
            name=data["name"],
            order=data["order"],
            owning_team_id=pk_of(data["owning_team"]),
            actor=request_actor(request),
        )

    def service_update(self, request, obj, form):
        values = changed(form, "name", "order")
        if "owning_team" in form.changed_data:
            values["owning_team_id"] = pk_of(form.cleaned_data["owning_team"])
        return pdca_services.cycle_update(cycle_id=obj.pk, actor=request_actor(request), **values)

    def service_delete(self, request, obj):
        pdca_services.cycle_delete(cycle_id=obj.pk, actor=request_actor(request))


class ColumnForm(forms.ModelForm):
    """A column moves only among the cycles of its own stream (the service refuses any
    other, and a column that holds open cards)."""

    class Meta:
        model = Column
        fields = ["cycle", "name", "knowledge_level", "order", "wip_limit", "split"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cycles = Cycle.objects.select_related("value_stream").order_by(
            "value_stream__name", "order"
        )
        if self.instance.pk is not None:
            cycles = cycles.filter(value_stream_id=self.instance.cycle.value_stream_id)
        limit_choices(self, "cycle", cycles)


@admin.register(Column)
class ColumnAdmin(ServiceAdmin):
    form = ColumnForm
    # The stream and the cycle in columns of their own: every stream has a
    # "Collaboration / Data".
    list_display = [
        "name",
        "stream",
        "cycle_name",
        "knowledge_level",
        "order",
        "wip_limit",
        "split",
    ]
    list_display_links = ["name"]
    list_editable = ["wip_limit"]
    list_filter = ["cycle__value_stream", "knowledge_level"]
    list_select_related = ["cycle__value_stream"]
    ordering = ["cycle__value_stream__name", "cycle__order", "order"]
    search_fields = ["name", "cycle__name", "cycle__value_stream__name"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # The list's bulk edit and the change form alike.
        return _wip_limit_field(db_field, request, super().formfield_for_dbfield, **kwargs)

    @admin.display(description="Value stream", ordering="cycle__value_stream__name")
    def stream(self, column: Column) -> str:
        return column.cycle.value_stream.name

    @admin.display(description="Cycle", ordering="cycle__order")
    def cycle_name(self, column: Column) -> str:
        return column.cycle.name

    def service_create(self, request, obj, form):
        data = form.cleaned_data
        return services.column_create(
            cycle_id=data["cycle"].pk,
            name=data["name"],
            knowledge_level=data["knowledge_level"],
            order=data["order"],
            wip_limit=data["wip_limit"],
            split=data["split"],
            actor=request_actor(request),
        )

    def service_update(self, request, obj, form):
        return _column_update(request, obj, form)

    def service_delete(self, request, obj):
        services.column_delete(column_id=obj.pk, actor=request_actor(request))


@admin.action(description="Mark selected cards won")
def mark_won(modeladmin: CardAdmin, request: HttpRequest, queryset: QuerySet[Card]) -> None:
    _close_cards(request, queryset, Outcome.WON, modeladmin)


class MarkLostForm(forms.Form):
    """The reason step of "Mark selected cards lost": why, once for all the cards, which
    are of one stream (lost reasons are per stream). Whether a reason or a note is
    needed is card_close's rule: its refusal is shown on the reason."""

    lost_reason = RowChoiceField(
        queryset=LostReason.objects.none(),
        required=False,
        widget=forms.RadioSelect,
        blank=True,
        label="Why were they lost?",
        empty_label="No reason from the list (the note says why)",
    )
    lost_note = LostNoteField(label="In your words", help_text="Kept with each card's loss.")

    def __init__(self, *args: Any, stream: ValueStream, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        reasons = selectors.lost_reasons_offered(stream=stream)
        if reasons.exists():
            limit_choices(self, "lost_reason", reasons)
        else:  # the stream keeps no list: a note, or nothing
            del self.fields["lost_reason"]


@admin.action(description="Mark selected cards lost…")
def mark_lost(
    modeladmin: CardAdmin, request: HttpRequest, queryset: QuerySet[Card]
) -> TemplateResponse | None:
    """Ask why (a reason from the stream's list, a note), then close each selected open
    card through card_close and say, card by card, what was closed and what refused."""
    cards = list(queryset.select_related("value_stream", "column__cycle").order_by("pk"))
    open_cards = [card for card in cards if card.is_open]
    if not open_cards:
        modeladmin.message_user(request, "None of the selected cards is open.", messages.WARNING)
        return None
    streams = sorted({card.value_stream.name for card in open_cards})
    if len(streams) > 1:
        modeladmin.message_user(
            request,
            f"Not marked lost: the cards are of {len(streams)} value streams "
            f"({', '.join(streams)}), and each stream has its own lost reasons. Filter the "
            "list by value stream and mark each stream's cards lost on their own.",
            messages.ERROR,
        )
        return None
    stream = open_cards[0].value_stream
    form = MarkLostForm(request.POST if "apply" in request.POST else None, stream=stream)
    if form.is_valid() and _mark_lost(modeladmin, request, open_cards, form):
        _report_not_open([card for card in cards if not card.is_open], modeladmin, request)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Why were they lost?",
        "opts": modeladmin.opts,
        "stream": stream,
        "form": form,
        "cards": open_cards,
        "not_open": [card for card in cards if not card.is_open],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/boards/card/mark_lost.html", context)


def _mark_lost(
    modeladmin: CardAdmin, request: HttpRequest, cards: list[Card], form: MarkLostForm
) -> bool:
    """Close ``cards`` lost for the form's reason; False when the reason itself is
    refused (said on the form, nothing closed)."""
    reason = form.cleaned_data.get("lost_reason")
    closed: list[Card] = []
    refused: list[str] = []
    for card in cards:
        try:
            services.card_close(
                card_id=card.pk,
                outcome=Outcome.LOST,
                actor=request_actor(request),
                lost_reason_id=pk_of(reason),
                lost_note=form.cleaned_data["lost_note"],
            )
        except LostReasonRefused as error:
            if not closed and not refused:  # the same for every card: ask again
                field = error.field if error.field in form.fields else "lost_note"
                form.add_error(field, error.message)
                return False
            refused.append(f"{card}: {error.message}")
        except DomainError as error:
            refused.append(f"{card}: {error.message}")
        else:
            closed.append(card)
    if closed:
        why = f" ({reason.name})" if reason is not None else ""
        modeladmin.message_user(
            request,
            f"Marked lost{why}: {'; '.join(str(card) for card in closed)}.",
            messages.SUCCESS,
        )
    for refusal in refused:
        modeladmin.message_user(request, f"Not marked lost: {refusal}", messages.ERROR)
    return True


def _report_not_open(cards: list[Card], modeladmin: CardAdmin, request: HttpRequest) -> None:
    if cards:
        modeladmin.message_user(
            request,
            "Not open, left as they were: "
            + "; ".join(f"{card} ({card.get_outcome_display().lower()})" for card in cards)
            + ".",
            messages.WARNING,
        )


def _close_cards(request, queryset, outcome: Outcome, modeladmin: CardAdmin) -> None:
    closed = 0
    for card_id in queryset.filter(outcome=Outcome.OPEN).values_list("pk", flat=True):
        try:
            services.card_close(card_id=card_id, outcome=outcome, actor=request_actor(request))
            closed += 1
        except DomainError as error:
            modeladmin.message_user(request, f"Card {card_id}: {error}", messages.ERROR)
    modeladmin.message_user(request, f"{closed} card(s) marked {outcome.label.lower()}.")


# A prospect's facts, which card_update changes; blocking is card_set_blocked's.
CARD_FACTS = ["person_name", "company", "email", "channel", "owner", "estimated_value", "notes"]
CARD_BLOCKING = ["is_blocked", "blocked_reason"]


class _ChannelChoice(RowChoiceField):
    def label_from_instance(self, obj: Channel) -> str:
        return f"{obj.name} ({obj.value_stream.name})"


class CardAddForm(forms.ModelForm):
    """A card is added into a cycle: it enters the cycle's first column, as on the board."""

    cycle = RowChoiceField(
        queryset=Cycle.objects.select_related("value_stream").order_by(
            "value_stream__name", "order"
        ),
        help_text="The card enters this cycle's first column.",
    )
    channel = _ChannelChoice(
        queryset=Channel.objects.filter(is_active=True)
        .select_related("value_stream")
        .order_by("value_stream__name", "name"),
        required=False,
    )
    wip_override_reason = forms.CharField(
        max_length=300,
        required=False,
        label="WIP override reason",
        help_text="Only if the first column is at its WIP limit and it must take the card.",
    )

    class Meta:
        model = Card
        fields = CARD_FACTS


class CardChangeForm(forms.ModelForm):
    """A card's facts and its blocked flag. ``seen_version`` is the version the form
    was shown with: if someone changed the card meanwhile (blocked it, edited it), the
    save is refused rather than undoing their change."""

    seen_version = RowIdField(widget=forms.HiddenInput)

    class Meta:
        model = Card
        fields = [*CARD_FACTS, *CARD_BLOCKING]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        card = self.instance
        self.initial.setdefault("seen_version", card.version)
        stream_id = card.value_stream_id
        limit_choices(
            self,
            "channel",
            Channel.objects.filter(
                Q(value_stream_id=stream_id, is_active=True) | Q(pk=card.channel_id)
            ),
        )
        limit_choices(
            self,
            "owner",
            get_user_model()
            .objects.filter(
                Q(memberships__team__value_stream_id=stream_id)
                | Q(managed_value_streams=stream_id)
                | Q(pk=card.owner_id)
            )
            .distinct()
            .order_by("username"),
        )


@admin.register(Card)
class CardAdmin(ServiceAdmin):
    list_display = ["display_name", "value_stream", "column", "channel", "outcome", "is_blocked"]
    list_filter = ["value_stream", "outcome", "is_blocked", "channel"]
    list_select_related = ["value_stream", "column__cycle", "channel"]
    search_fields = ["person_name", "company", "email"]
    actions = [mark_won, mark_lost]
    # Column, position, team and outcome change only through the move services (the
    # board, the actions above), so the WIP rule and the move log hold.
    readonly_on_change = [
        "value_stream",
        "column",
        "owning_team",
        "position",
        "outcome",
        "version",
        "blocked_at",
        "created_at",
        "updated_at",
        "column_entered_at",
        "closed_at",
    ]
    refusal_fields = {"wip_limit_reached": "wip_override_reason", "reason": "blocked_reason"}

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["cycle", *CARD_FACTS, "wip_override_reason"]
        return [*CARD_FACTS, *CARD_BLOCKING, "seen_version", *self.readonly_on_change]

    def get_form(
        self, request: HttpRequest, obj: Card | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = CardAddForm if obj is None else CardChangeForm
        return super().get_form(request, obj, change, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: Card | None = None) -> bool:
        # The move log keeps every card it names.
        return False

    def service_create(self, request, obj, form):
        data = form.cleaned_data
        return services.card_create(
            cycle_id=data["cycle"].pk,
            actor=request_actor(request),
            person_name=data["person_name"],
            company=data["company"],
            email=data["email"],
            channel_id=pk_of(data["channel"]),
            owner_id=pk_of(data["owner"]),
            estimated_value=data["estimated_value"],
            notes=data["notes"],
            wip_override_reason=data["wip_override_reason"],
        ).card

    def service_update(self, request, obj, form):
        data = form.cleaned_data
        actor = request_actor(request)
        version = data["seen_version"]
        card = obj
        if set(CARD_FACTS) & set(form.changed_data):
            card = services.card_update(
                card_id=obj.pk,
                actor=actor,
                expected_version=version,
                person_name=data["person_name"],
                company=data["company"],
                email=data["email"],
                channel_id=pk_of(data["channel"]),
                owner_id=pk_of(data["owner"]),
                estimated_value=data["estimated_value"],
                notes=data["notes"],
            )
            version = card.version
        if set(CARD_BLOCKING) & set(form.changed_data):
            card = services.card_set_blocked(
                card_id=obj.pk,
                blocked=data["is_blocked"],
                reason=data["blocked_reason"],
                actor=actor,
                expected_version=version,
            )
        return card


class ReadOnlyAdmin(ProjectAdmin):
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
