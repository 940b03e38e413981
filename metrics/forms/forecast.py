"""The forecasts panel's questions: by which date, how many more deals, how much history."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.http import QueryDict

from metrics.forecasting import MAX_DAYS, MIN_HISTORY_DAYS
from metrics.forms.filters import MAX_WEEKS, DashboardFilterForm
from metrics.selectors.forecast_panel import (
    DEFAULT_HISTORY_WEEKS,
    DEFAULT_ITEMS,
    day_text,
    days_until,
    end_of_next_month,
)
from vsm.forms import WholeNumberField

MAX_ITEMS = 10_000
MIN_HISTORY_WEEKS = MIN_HISTORY_DAYS // 7


class ForecastForm(forms.Form):
    """The date D, the number N and the history in weeks; a field left empty takes its
    default (D: the end of next month, N: 10, 12 weeks). ``chosen()`` gives the valid
    values, and the default for each invalid one (whose error shows beside it)."""

    by = forms.DateField(
        label="By date",
        help_text="How many deals will be won from today to this day?",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter a date such as 2027-01-31."},
    )
    items = WholeNumberField(
        label="More deals won",
        help_text="When will this many more be won?",
        min_value=1,
        max_value=MAX_ITEMS,
        error_messages={
            "invalid": f"Enter a whole number of deals, 1 to {MAX_ITEMS:,}.",
            "min_value": f"Ask for 1 to {MAX_ITEMS:,} deals.",
            "max_value": f"Ask for 1 to {MAX_ITEMS:,} deals.",
        },
    )
    history_weeks = WholeNumberField(
        label="History (weeks)",
        help_text="The past weeks whose daily wins the forecast samples.",
        min_value=MIN_HISTORY_WEEKS,
        max_value=MAX_WEEKS,
        error_messages={
            "invalid": f"Enter a whole number of weeks, {MIN_HISTORY_WEEKS} to {MAX_WEEKS}.",
            "min_value": f"Use {MIN_HISTORY_WEEKS} to {MAX_WEEKS} weeks of history.",
            "max_value": f"Use {MIN_HISTORY_WEEKS} to {MAX_WEEKS} weeks of history.",
        },
    )

    def __init__(self, data: QueryDict, *, today: date) -> None:
        self.today = today
        self.latest = today + timedelta(days=MAX_DAYS - 1)
        self.defaults = {
            "by": end_of_next_month(today),
            "items": DEFAULT_ITEMS,
            "history_weeks": DEFAULT_HISTORY_WEEKS,
        }
        given = {name: data.get(name, "").strip() for name in self.defaults}
        super().__init__(
            {name: given[name] or str(default) for name, default in self.defaults.items()},
            auto_id="forecast-%s",
        )
        self.fields["by"].widget.attrs.update(
            min=(today + timedelta(days=1)).isoformat(), max=self.latest.isoformat()
        )

    def clean_by(self) -> date:
        by = self.cleaned_data["by"]
        if by <= self.today:
            raise forms.ValidationError(f"Pick a day after today ({day_text(self.today)}).")
        if days_until(self.today, by) > MAX_DAYS:
            raise forms.ValidationError(
                f"A forecast looks at most {MAX_DAYS} days ahead: pick "
                f"{day_text(self.latest)} or earlier."
            )
        return by

    def chosen(self) -> dict:
        """by, items and history_weeks: the valid input, else the default."""
        self.is_valid()
        return {
            name: self.cleaned_data.get(name, default) for name, default in self.defaults.items()
        }


def dashboard_filters(data: QueryDict) -> list[tuple[str, str]]:
    """The dashboard's filters in ``data`` as (name, value) pairs, to carry along."""
    return [
        (name, value)
        for name in DashboardFilterForm.base_fields
        for value in data.getlist(name)
        if value
    ]
