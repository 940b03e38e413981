"""Admin: control points and their criteria through pdca.services; experiments, read-only.

Cycle is registered in boards.admin, where its columns can be edited inline.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from pdca import services
from pdca.models import ControlPoint, Criterion, Cycle, Experiment
from vsm.actors import request_actor
from vsm.admin import (
    ProjectAdmin,
    ServiceAdmin,
    ServiceTabularInline,
    changed,
    limit_choices,
    pk_of,
)
from vsm.models import Team


class CriterionInline(ServiceTabularInline):
    model = Criterion
    extra = 1
    fields = ["order", "text", "required"]

    def service_create(self, request, parent, obj, form):
        return services.criterion_create(
            control_point_id=parent.pk,
            text=form.cleaned_data["text"],
            required=form.cleaned_data["required"],
            order=form.cleaned_data["order"],
            actor=request_actor(request),
        )

    def service_update(self, request, parent, obj, form):
        return services.criterion_update(
            criterion_id=obj.pk,
            actor=request_actor(request),
            **changed(form, "text", "required", "order"),
        )

    def service_delete(self, request, parent, obj):
        services.criterion_delete(criterion_id=obj.pk, actor=request_actor(request))


def cycles_of_streams() -> Any:
    return Cycle.objects.select_related("value_stream").order_by("value_stream__name", "order")


class ControlPointForm(forms.ModelForm):
    """Choices from the control point's own stream once it has one (the service refuses
    any other); a new control point offers every stream's cycles and teams, named with
    their stream."""

    class Meta:
        model = ControlPoint
        fields = ["from_cycle", "to_cycle", "name", "receiving_team"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cycles = cycles_of_streams()
        teams = Team.objects.select_related("value_stream")
        if self.instance.pk is not None:
            stream_id = self.instance.from_cycle.value_stream_id
            cycles = cycles.filter(value_stream_id=stream_id)
            teams = teams.filter(value_stream_id=stream_id)
        limit_choices(self, "from_cycle", cycles)
        limit_choices(self, "to_cycle", cycles)
        limit_choices(self, "receiving_team", teams)


@admin.register(ControlPoint)
class ControlPointAdmin(ServiceAdmin):
    form = ControlPointForm
    list_display = ["__str__", "stream", "from_cycle_name", "to_cycle_name", "receiving_team"]
    list_filter = ["from_cycle__value_stream"]
    list_select_related = ["from_cycle__value_stream", "to_cycle", "receiving_team"]
    inlines = [CriterionInline]

    @admin.display(description="Value stream", ordering="from_cycle__value_stream__name")
    def stream(self, control_point: ControlPoint) -> str:
        return control_point.from_cycle.value_stream.name

    @admin.display(description="From cycle", ordering="from_cycle__order")
    def from_cycle_name(self, control_point: ControlPoint) -> str:
        return control_point.from_cycle.name

    @admin.display(description="To cycle", ordering="to_cycle__order")
    def to_cycle_name(self, control_point: ControlPoint) -> str:
        return control_point.to_cycle.name

    def service_create(self, request, obj, form):
        data = form.cleaned_data
        return services.control_point_create(
            from_cycle_id=data["from_cycle"].pk,
            to_cycle_id=data["to_cycle"].pk,
            name=data["name"],
            receiving_team_id=pk_of(data["receiving_team"]),
            actor=request_actor(request),
        )

    def service_update(self, request, obj, form):
        values = changed(form, "from_cycle", "to_cycle", "name", "receiving_team")
        for name in ("from_cycle", "to_cycle", "receiving_team"):
            if name in values:
                values[f"{name}_id"] = pk_of(values.pop(name))
        return services.control_point_update(
            control_point_id=obj.pk, actor=request_actor(request), **values
        )

    def service_delete(self, request, obj):
        services.control_point_delete(control_point_id=obj.pk, actor=request_actor(request))


@admin.register(Experiment)
class ExperimentAdmin(ProjectAdmin):
    """Experiments, read-only: every stage is written by pdca.services (the measured
    numbers by metrics.experiments), so the admin can neither type a result nor skip a
    stage."""

    list_display = [
        "hypothesis_start",
        "stream",
        "cycle_name",
        "targeted_metric",
        "stage",
        "window_start",
        "planned_weeks",
        "signal",
        "decision",
    ]
    list_filter = ["stage", "decision", "targeted_metric", "signal", "cycle__value_stream"]
    list_select_related = ["cycle__value_stream"]
    search_fields = ["hypothesis"]
    date_hierarchy = "window_start"

    @admin.display(description="Hypothesis")
    def hypothesis_start(self, experiment: Experiment) -> str:
        return experiment.hypothesis[:80]

    @admin.display(description="Value stream", ordering="cycle__value_stream__name")
    def stream(self, experiment: Experiment) -> str:
        return experiment.cycle.value_stream.name

    @admin.display(description="Cycle", ordering="cycle__order")
    def cycle_name(self, experiment: Experiment) -> str:
        return experiment.cycle.name

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Experiment | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Experiment | None = None) -> bool:
        return False
