"""The experiment pages' forms: a plan (new, or changed before the start), a step and
an Act as typed. The rules (who, which window, which scope fits which metric, which
version is current) are the pdca services'; these only read input. Every form on an
experiment names the version the user saw, for the service's ``expected_version``."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.boundfield import BoundField
from django.utils import timezone

from boards.models import Column
from pdca.models import (
    DECISION_NOTES_MAX_LENGTH,
    HYPOTHESIS_MAX_LENGTH,
    METRIC_SCOPE,
    METRIC_UNIT,
    PERCENT_METRICS,
    PLANNED_WEEKS_MAX,
    Cycle,
    Experiment,
    ExperimentDecision,
    MetricScope,
    TargetedMetric,
    day_text,
)
from pdca.services.experiment_rules import amount_check, amount_text
from vsm.errors import InvalidInput
from vsm.forms import RowChoiceField, RowIdField, WholeNumberField
from vsm.models import Channel, Team, ValueStream

HYPOTHESIS_PROMPT = "We believe that ... will ...; we will know because ..."
DEFAULT_WEEKS = 4

# A target as people type it: digits with a decimal point or comma ("40", "40.5",
# "40,5"), and for a share a "%" after it. Anything else is refused, never guessed at:
# a browser's number input silently dropped what it could not read ("40,5" became 405).
TARGET_TYPED = re.compile(
    r"(?P<minus>-\s*)?(?P<whole>[0-9]*)(?:[.,](?P<part>[0-9]*))?\s*(?P<percent>%)?"
)
TARGET_EXAMPLE = "Enter a number such as 40 or 40.5."
TARGET_DECIMALS = 2


def target_parse(typed: str, *, metric: str | None) -> Decimal:
    """The target ``typed`` for ``metric`` (None: not known, the metric's own field was
    refused). Raises: ValidationError, in words for the field, with the service's
    bounds (pdca.services.experiment_rules.amount_check)."""
    found = TARGET_TYPED.fullmatch(typed.strip())
    if found is None or not (found["whole"] or found["part"]):
        raise ValidationError(TARGET_EXAMPLE, code="invalid")
    if found["minus"]:
        raise ValidationError("A target is 0 or more. " + TARGET_EXAMPLE, code="min_value")
    percent = metric in PERCENT_METRICS
    if found["percent"] and metric is not None and not percent:
        raise ValidationError(
            f"{TargetedMetric(metric).label} is in {METRIC_UNIT[metric]}, not in %. "
            + TARGET_EXAMPLE,
            code="invalid",
        )
    part = found["part"] or ""
    if len(part) > TARGET_DECIMALS:
        raise ValidationError(
            f"Enter at most {TARGET_DECIMALS} decimals and no thousands separator, such as "
            "1000 or 40.25.",
            code="max_decimal_places",
        )
    value = Decimal(f"{found['whole'] or '0'}.{part or '0'}")
    try:
        return amount_check(value, field="target", percent=percent)
    except InvalidInput as error:
        raise ValidationError(error.message, code="invalid") from None


class CountedTextField(forms.CharField):
    """A text whose length shows as it is typed (js/char-count.js counts against
    ``data-max-length``) instead of the browser's ``maxlength``, which cuts a longer
    paste without a word; the server refuses what is too long. Line breaks are kept as
    one character, as they are stored and counted on the page."""

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)
        if self.max_length is not None:
            attrs["data-max-length"] = str(self.max_length)
        return attrs

    def to_python(self, value: Any) -> str | None:
        text: str | None = super().to_python(value)
        return None if text is None else text.replace("\r\n", "\n")

    def validate(self, value: Any) -> None:
        # Before the length validator, to give the count as the page does ("2,001").
        super().validate(value)
        if self.max_length is not None and value and len(value) > self.max_length:
            raise ValidationError(
                self.error_messages["max_length"].format(count=len(value)), code="max_length"
            )


def too_long(subject: str, max_length: int) -> str:
    """The refusal of a text too long: "A hypothesis is at most 2,000 characters; this
    one has 2,001." (``{count}``: CountedTextField.validate)."""
    return f"{subject} at most {max_length:,} characters; this one has {{count:,}}."


def this_monday() -> date:
    today = timezone.localdate()
    return today - timedelta(days=today.weekday())


class NameChoiceField(RowChoiceField):
    """Choices by their name alone: the page is the stream's already."""

    def label_from_instance(self, obj: Any) -> str:
        return obj.name


class ColumnChoiceField(RowChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.cycle.name} / {obj.name}"


class ExperimentPlanForm(forms.Form):
    """A plan: every choice limited to the stream (its cycles, columns and channels, the
    teams whose experiments the viewer runs). The column and the channel are read only
    when the metric needs them, so a choice left over from another metric is ignored."""

    cycle = NameChoiceField(queryset=Cycle.objects.none(), empty_label=None)
    team = NameChoiceField(queryset=Team.objects.none(), empty_label=None)
    hypothesis = CountedTextField(
        max_length=HYPOTHESIS_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": HYPOTHESIS_PROMPT}),
        help_text=f"{HYPOTHESIS_PROMPT} At most {HYPOTHESIS_MAX_LENGTH:,} characters.",
        error_messages={"max_length": too_long("A hypothesis is", HYPOTHESIS_MAX_LENGTH)},
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
    planned_weeks = WholeNumberField(
        label="Planned weeks", min_value=1, max_value=PLANNED_WEEKS_MAX, initial=DEFAULT_WEEKS
    )
    # Text, not a number input: the browser's number input drops what it cannot read
    # ("40,5" became 405, "4O" 4) or sends nothing ("1e400": "required"); read here
    # instead (target_parse), and the typed text is shown again when it is refused.
    target = forms.CharField(
        label="Target value",
        max_length=40,
        widget=forms.TextInput(
            attrs={"inputmode": "decimal", "autocomplete": "off", "spellcheck": "false"}
        ),
        error_messages={"required": TARGET_EXAMPLE},
        help_text="In the metric's unit: % for a conversion or a win rate, days for a time, "
        "cards per week for throughput and arrivals, cards on an average day for WIP. A "
        "decimal point or comma: 40.5 or 40,5.",
    )

    def __init__(self, *args: Any, stream: ValueStream, teams: list[Team], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"window_start": this_monday()})
        super().__init__(*args, **kwargs)
        # {field name: the value saved now in words}, where a plan changed meanwhile
        # differs from what was typed (ExperimentEditForm.mark_saved).
        self.saved_now: dict[str, str] = {}
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

    def clean_target(self) -> Decimal:
        # The metric is cleaned before (it comes first): a "%" fits a share only.
        return target_parse(
            self.cleaned_data["target"], metric=self.cleaned_data.get("targeted_metric")
        )

    def field_rows(self) -> list[tuple[BoundField, str | None]]:
        """Each visible field with the value saved now where it differs from the one
        typed (a plan changed meanwhile: ``ExperimentEditForm.mark_saved``), else None."""
        return [(field, self.saved_now.get(field.name)) for field in self.visible_fields()]

    def differing_labels(self) -> list[str]:
        """The labels of the fields that differ from the plan saved now, in form order."""
        return [str(field.label) for field in self.visible_fields() if field.name in self.saved_now]

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

    version = RowIdField(widget=forms.HiddenInput)

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

    def mark_saved(self, experiment: Experiment) -> None:
        """After a refusal for a plan changed meanwhile (Stale): note, for each field
        whose value typed differs from ``experiment`` as saved now, the value saved, in
        words (``field_rows``), so that the user chooses field by field rather than
        overwriting the other change unseen. The form keeps what was typed."""
        data = self.cleaned_data
        typed: dict[str, tuple[Any, Any, str]] = {
            "team": (
                data["team"].pk,
                experiment.team_id,
                experiment.team.name if experiment.team else "(no team)",
            ),
            "hypothesis": (
                data["hypothesis"].strip(),
                experiment.hypothesis,
                experiment.hypothesis,
            ),
            "targeted_metric": (
                data["targeted_metric"],
                experiment.targeted_metric,
                experiment.get_targeted_metric_display(),
            ),
            "column": (
                data["column"].pk if data["column"] else None,
                experiment.column_id,
                f"{experiment.cycle.name} / {experiment.column.name}"
                if experiment.column
                else "(none)",
            ),
            "channel": (
                data["channel"].pk if data["channel"] else None,
                experiment.channel_id,
                experiment.channel.name if experiment.channel else "(none)",
            ),
            "window_start": (
                data["window_start"],
                experiment.window_start,
                day_text(experiment.window_start),
            ),
            "planned_weeks": (
                data["planned_weeks"],
                experiment.planned_weeks,
                str(experiment.planned_weeks),
            ),
            "target": (
                data["target"],
                experiment.target,
                amount_text(experiment.target, experiment.unit),
            ),
        }
        self.saved_now = {
            name: text for name, (mine, saved, text) in typed.items() if mine != saved
        }


class ExperimentStepForm(forms.Form):
    """A step's button (start, stop, check): the version of the experiment it was shown
    with, so that a step on an experiment changed meanwhile is refused (Stale)."""

    version = RowIdField(widget=forms.HiddenInput)


class ExperimentActForm(ExperimentStepForm):
    decision = forms.ChoiceField(
        choices=[c for c in ExperimentDecision.choices if c[0]], widget=forms.RadioSelect
    )
    notes = CountedTextField(
        required=False,
        max_length=DECISION_NOTES_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"What the team learnt, and why this decision. At most "
        f"{DECISION_NOTES_MAX_LENGTH:,} characters.",
        error_messages={"max_length": too_long("Notes are", DECISION_NOTES_MAX_LENGTH)},
    )

    def act(self) -> dict[str, Any]:
        """The service's keyword arguments (pdca.services.experiment_act)."""
        data = self.cleaned_data
        return {
            "decision": data["decision"],
            "notes": data["notes"],
            "expected_version": data["version"],
        }
