from django.contrib import admin

from pdca.models import ControlPoint, Criterion, Experiment

# Cycle is registered in boards.admin, where its columns can be edited inline.


class CriterionInline(admin.TabularInline):
    model = Criterion
    extra = 1
    fields = ["order", "text", "required"]


@admin.register(ControlPoint)
class ControlPointAdmin(admin.ModelAdmin):
    list_display = ["__str__", "from_cycle", "to_cycle", "receiving_team"]
    list_filter = ["from_cycle__value_stream"]
    list_select_related = ["from_cycle__value_stream", "to_cycle", "receiving_team"]
    inlines = [CriterionInline]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["hypothesis", "cycle", "targeted_metric", "stage", "decision", "window_end"]
    list_filter = ["stage", "decision", "cycle__value_stream"]
    list_select_related = ["cycle__value_stream"]
    search_fields = ["hypothesis"]
