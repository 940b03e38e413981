"""The dashboard's filters, kept in the URL: cycle, channel and date range."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from metrics.fold.timeline import metrics_zone
from metrics.selectors.query import WINDOW_WEEKS, MetricsQuery, week_start
from vsm.models import ValueStream

# The longest range a page reads: two years of weeks.
MAX_WEEKS = 104
NO_CHANNEL = "0"


class DashboardFilterForm(forms.Form):
    """Cycle, channel and a date range; every field optional.

    The range is widened to whole ISO weeks (settings.TIME_ZONE): from the Monday of
    ``start``'s week to ``end``, whose week is the one "so far". Without a range: the
    last 12 full weeks and this week so far.
    """

    cycle = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    channel = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data, *, stream: ValueStream, cycles, channels, now: datetime | None = None):
        self.now = now or timezone.now()
        if data is not None and not (data.get("start") or data.get("end")):
            # Show the default range in the date fields (it is what the page shows).
            data = data.copy()
            data["start"] = self.default_start().isoformat()
            data["end"] = self.today.isoformat()
        super().__init__(data)
        self.stream = stream
        self.fields["cycle"].choices = [("", "All cycles")] + [(c.pk, c.name) for c in cycles]
        self.fields["channel"].choices = (
            [("", "All channels")]
            + [(c.pk, c.name) for c in channels]
            + [(NO_CHANNEL, "No channel")]
        )

    @property
    def today(self):
        return self.now.astimezone(metrics_zone()).date()

    def default_start(self):
        return week_start(self.today) - timedelta(weeks=WINDOW_WEEKS)

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if end is not None and end > self.today:
            self.add_error("end", f"The range ends today ({self.today.isoformat()}) at the latest.")
        if start is not None and end is not None and start > end:
            self.add_error("start", "The range starts on or before its last day.")
        elif start is not None:
            last = end or self.today
            if (week_start(last) - week_start(start)).days // 7 > MAX_WEEKS:
                self.add_error("start", f"A range spans at most {MAX_WEEKS} weeks.")
        return data

    def query(self) -> MetricsQuery:
        """The query the valid filters ask for (invalid fields fall back to defaults:
        the page shows their errors)."""
        data = self.cleaned_data if self.is_bound else {}
        errors = self.errors if self.is_bound else {}
        end = data.get("end") if "end" not in errors else None
        start = data.get("start") if "start" not in errors else None
        now = self.now
        if end is not None and end < self.today:
            # The last instant of that day, local time.
            now = datetime.combine(end + timedelta(days=1), time.min, tzinfo=metrics_zone())
            now -= timedelta(microseconds=1)
        last = end or self.today
        weeks = WINDOW_WEEKS
        if start is not None:
            weeks = max(1, (week_start(last) - week_start(start)).days // 7)
        return MetricsQuery(
            stream=self.stream,
            now=now,
            weeks=weeks,
            cycle_id=data.get("cycle") if "cycle" not in errors else None,
            channel_key=data.get("channel") if "channel" not in errors else None,
        )
