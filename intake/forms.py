"""The intake's forms: the upload, the mapping of the file's columns, the confirmation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from intake.models import DuplicatePolicy, ImportJob
from intake.services.files import DELIMITER_CHOICES, ENCODING_CHOICES
from intake.services.rows import FIELDS
from pdca.models import Cycle
from vsm.forms import RowChoiceField, WholeNumberField


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="A table of prospects with a header row: UTF-8 or Windows-1252, "
        "separated by commas, semicolons or tabs.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,text/csv"}),
    )


class ReadingForm(forms.Form):
    """How the file is read: its encoding and delimiter (detected; the user may differ)."""

    encoding = forms.ChoiceField(label="Encoding", choices=list(ENCODING_CHOICES.items()))
    delimiter = forms.ChoiceField(label="Delimiter", choices=list(DELIMITER_CHOICES.items()))


class _CycleField(RowChoiceField):
    def label_from_instance(self, obj: Cycle) -> str:
        return obj.name


class MappingForm(forms.Form):
    """Which column of the file holds each field; the cycle; what duplicates do."""

    def __init__(self, *args: Any, job: ImportJob, cycles: QuerySet[Cycle], **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                **{key: "" if index is None else str(index) for key, index in job.mapping.items()},
                "cycle": job.cycle_id,
                "duplicates": job.duplicates,
            },
        )
        super().__init__(*args, **kwargs)
        columns = [("", "— not in the file —")] + [
            (str(index), name) for index, name in enumerate(job.header)
        ]
        for key, (label, _) in FIELDS.items():
            self.fields[key] = forms.TypedChoiceField(
                label=label,
                choices=columns,
                coerce=int,
                empty_value=None,
                required=False,
            )
        self.fields["cycle"] = _CycleField(
            label="Cards enter the first column of", queryset=cycles, empty_label=None
        )
        self.fields["duplicates"] = forms.ChoiceField(
            label="A row whose e-mail is already in the stream",
            choices=DuplicatePolicy.choices,
            widget=forms.RadioSelect,
        )

    def mapping(self) -> dict[str, int | None]:
        return {key: self.cleaned_data[key] for key in FIELDS}

    def field_rows(self) -> list[forms.BoundField]:
        return [self[key] for key in FIELDS]


# The preview's hidden revision came back unreadable (a page edited, or cut short).
STALE_PREVIEW_MESSAGE = (
    "This page could not be read back (it was changed or cut short): nothing was "
    "imported. Look at the preview again and confirm from there."
)


class ConfirmForm(forms.Form):
    """Start the import of the checked file; create the new channels ticked."""

    revision = WholeNumberField(
        min_value=0,
        max_value=2**31 - 1,
        widget=forms.HiddenInput,
        error_messages={
            key: STALE_PREVIEW_MESSAGE for key in ("required", "invalid", "min_value", "max_value")
        },
    )

    def __init__(self, *args: Any, new_channels: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["create_channels"] = forms.MultipleChoiceField(
            label="Create these channels",
            choices=[(name, name) for name in new_channels],
            required=False,
            widget=forms.CheckboxSelectMultiple,
        )


class CancelForm(forms.Form):
    """Cancel a running import; also take its prospects out of the intake queue."""

    remove_queued = forms.BooleanField(required=False)


class PageForm(forms.Form):
    page = WholeNumberField(min_value=1, max_value=10**9, required=False)
