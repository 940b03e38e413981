"""The experiment pages' forms: a plan (new, or changed before the start), a step and
an Act as typed. The rules (who, which window, which scope fits which metric, which
version is current) are the pdca services'; these only read input. Every form on an
experiment names the version the user saw, for the service's ``expected_version``."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from boards.models import Column
from pdca.models import (
    DECISION_NOTES_MAX_LENGTH,
    HYPOTHESIS_MAX_LENGTH,
    METRIC_SCOPE,
    METRIC_UNIT,
    PLANNED_WEEKS_MAX,
    Cycle,
    Experiment,
    ExperimentDecision,
    MetricScope,
    TargetedMetric,
)
from vsm.models import Channel, Team, ValueStream

HYPOTHESIS_PROMPT = "We believe that ... will ...; we will know because ..."
DEFAULT_WEEKS = 4


def this_monday() -> date:
    today = timezone.localdate()
    return today - timedelta(days=today.weekday())


class NameChoiceField(forms.ModelChoiceField):
    """Choices by their name alone: the page is the stream's already."""

    def label_from_instance(self, obj: Any) -> str:
        return obj.name


class ColumnChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.cycle.name} / {obj.name}"


class ExperimentPlanForm(forms.Form):
    """A plan: every choice limited to the stream (its cycles, columns and channels, the
    teams whose experiments the viewer runs). The column and the channel are read only
    when the metric needs them, so a choice left over from another metric is ignored."""

    cycle = NameChoiceField(queryset=Cycle.objects.none(), empty_label=None)
    team = NameChoiceField(queryset=Team.objects.none(), empty_label=None)
    hypothesis = forms.CharField(
        max_length=HYPOTHESIS_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": HYPOTHESIS_PROMPT}),
        help_text=HYPOTHESIS_PROMPT,
    )
    targeted_metric = forms.ChoiceField(
        label="Targeted metric",
        choices=TargetedMetric.choices,
        # For js/experiments.js: which scope field each metric needs (shown alone), and
        # the unit of its target.
        widget=forms.Select(
            attrs={
                "data-scopes": json.dumps({m: str(s) for m, s in METRIC_SCOPE.items()}),
                "data-units": json.dumps(METRIC_UNIT),
            }
        ),
    )
    column = ColumnChoiceField(
        queryset=Column.objects.none(),
        required=False,
        empty_label="(choose a column)",
        help_text="For a column metric: a column of the experiment's cycle.",
    )
    channel = NameChoiceField(
        queryset=Channel.objects.none(),
        required=False,
        empty_label="(choose a channel)",
        help_text="For a channel metric.",
    )
    window_start = forms.DateField(
        label="Window starts (a Monday)",
        widget=forms.DateInput(attrs={"type": "date", "step": 7}),
        help_text="The experiment starts in its window's first week.",
    )
    planned_weeks = forms.IntegerField(
        label="Planned weeks", min_value=1, max_value=PLANNED_WEEKS_MAX, initial=DEFAULT_WEEKS
    )
    target = forms.DecimalField(
        label="Target value",
        min_value=0,
        max_digits=12,
        decimal_places=2,
        help_text="In the metric's unit: % for a conversion or a win rate, days for a time, "
        "cards per week for throughput and arrivals, cards on an average day for WIP.",
    )

    def __init__(self, *args: Any, stream: ValueStream, teams: list[Team], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"window_start": this_monday()})
        super().__init__(*args, **kwargs)
        self.fields["cycle"].queryset = Cycle.objects.filter(value_stream=stream).order_by("order")  # type: ignore[attr-defined]
        self.fields["team"].queryset = Team.objects.filter(pk__in=[team.pk for team in teams])  # type: ignore[attr-defined]
        self.fields["column"].queryset = (  # type: ignore[attr-defined]
            Column.objects.filter(cycle__value_stream=stream)
            .select_related("cycle")
            .order_by("cycle__order", "order")
        )
        self.fields["channel"].queryset = Channel.objects.filter(value_stream=stream).order_by(  # type: ignore[attr-defined]
            "name"
        )
        for name in ("column", "channel"):
            self.fields[name].widget.attrs["data-scope"] = name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope = METRIC_SCOPE.get(data.get("targeted_metric", ""))
        if scope != MetricScope.COLUMN:
            data["column"] = None
        if scope != MetricScope.CHANNEL:
            data["channel"] = None
        return data

    def plan(self) -> dict[str, Any]:
        """The service's keyword arguments (pdca.services.experiment_plan)."""
        return {"cycle_id": self.cleaned_data["cycle"].pk, **self.plan_fields()}

    def plan_fields(self) -> dict[str, Any]:
        """The plan's fields as the services take them, whatever the cycle."""
        data = self.cleaned_data
        return {
            "team_id": data["team"].pk,
            "hypothesis": data["hypothesis"],
            "targeted_metric": data["targeted_metric"],
            "column_id": data["column"].pk if data["column"] else None,
            "channel_id": data["channel"].pk if data["channel"] else None,
            "window_start": data["window_start"],
            "planned_weeks": data["planned_weeks"],
            "target": data["target"],
        }


class ExperimentEditForm(ExperimentPlanForm):
    """A plan changed before its start (pdca.services.experiment_update_plan): the plan
    form without the cycle (an experiment stays on its cycle), prefilled with the plan
    as saved, naming the version the user saw."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        experiment: Experiment,
        stream: ValueStream,
        teams: list[Team],
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault(
            "initial",
            {
                "team": experiment.team_id,
                "hypothesis": experiment.hypothesis,
                "targeted_metric": experiment.targeted_metric,
                "column": experiment.column_id,
                "channel": experiment.channel_id,
                "window_start": experiment.window_start,
                "planned_weeks": experiment.planned_weeks,
                "target": experiment.target,
                "version": experiment.version,
            },
        )
        super().__init__(*args, stream=stream, teams=teams, **kwargs)
        del self.fields["cycle"]
        # Its own team too: whether the user may run it is the service's to say.
        self.fields["team"].queryset = Team.objects.filter(  # type: ignore[attr-defined]
            pk__in=[team.pk for team in teams] + [experiment.team_id]
        ).order_by("name")
        self.fields["column"].queryset = self.fields["column"].queryset.filter(  # type: ignore[attr-defined]
            cycle_id=experiment.cycle_id
        )
        self.fields["column"].help_text = "For a column metric: a column of this cycle."

    def changes(self) -> dict[str, Any]:
        """The service's keyword arguments (pdca.services.experiment_update_plan)."""
        return {**self.plan_fields(), "expected_version": self.cleaned_data["version"]}


class ExperimentStepForm(forms.Form):
    """A step's button (start, stop, check): the version of the experiment it was shown
    with, so that a step on an experiment changed meanwhile is refused (Stale)."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class ExperimentActForm(ExperimentStepForm):
    decision = forms.ChoiceField(
        choices=[c for c in ExperimentDecision.choices if c[0]], widget=forms.RadioSelect
    )
    notes = forms.CharField(
        required=False,
        max_length=DECISION_NOTES_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the team learnt, and why this decision.",
    )

    def act(self) -> dict[str, Any]:
        """The service's keyword arguments (pdca.services.experiment_act)."""
        data = self.cleaned_data
        return {
            "decision": data["decision"],
            "notes": data["notes"],
            "expected_version": data["version"],
        }
