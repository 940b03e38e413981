from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import QueryDict

from pdca.models import Cycle
from vsm.models import Channel

if TYPE_CHECKING:
    from django.contrib.auth.models import User
else:
    User = get_user_model()

from boards.models import Outcome
from boards.selectors import BoardFilters
from boards.services.columns import WIP_LIMIT_MAX

# Ids and versions are at most signed 64-bit integers in the database: a larger number
# names nothing, and SQLite cannot even bind it (an OverflowError, a 500).
ROW_ID_MAX = 2**63 - 1


class RowIdField(forms.IntegerField):
    """A positive integer that can name a row (an id, a card's version)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(min_value=1, max_value=ROW_ID_MAX, **kwargs)


class BoardFilterForm(forms.Form):
    channel = RowIdField(required=False)
    owner = RowIdField(required=False)
    q = forms.CharField(required=False, max_length=100, strip=True)
    blocked = forms.BooleanField(required=False)
    column = RowIdField(required=False)

    def filters(self) -> BoardFilters:
        """The filters asked for; a malformed value is ignored rather than failing the board."""
        data = self.cleaned_data if self.is_valid() else {}
        return BoardFilters(
            channel_id=data.get("channel"),
            owner_id=data.get("owner"),
            text=data.get("q") or "",
            blocked_only=bool(data.get("blocked")),
            column_id=data.get("column"),
        )


def board_filters(params: QueryDict) -> BoardFilters:
    """The board filters a request's query string asks for."""
    if not any(name in params for name in BoardFilterForm.base_fields):
        # Most requests (every move) filter nothing: no form to build and validate.
        return BoardFilters()
    return BoardFilterForm(params).filters()


class CardMoveForm(forms.Form):
    to_column = RowIdField()
    after = RowIdField(required=False)
    before = RowIdField(required=False)
    version = RowIdField(required=False)
    override_reason = forms.CharField(required=False, max_length=300, strip=True)
    # A drag already shows the card where it was dropped; a keyboard move does not.
    dragged = forms.BooleanField(required=False)


class HandoffForm(forms.Form):
    version = RowIdField(required=False)
    override_reason = forms.CharField(required=False, max_length=300, strip=True)

    def __init__(self, *args, criteria=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.checklist = list(criteria)
        self.fields["criteria"] = forms.TypedMultipleChoiceField(
            choices=[(c.pk, c.text) for c in self.checklist],
            coerce=int,
            required=False,
            widget=forms.CheckboxSelectMultiple,
        )

    @property
    def criteria_checked(self) -> set[int]:
        """The criteria ticked in the posted form, to keep them ticked on a refusal."""
        if not self.is_bound:
            return set()
        if not isinstance(self.data, QueryDict):
            return set()
        ticked = RowIdField(required=False)
        checked = set()
        for value in self.data.getlist("criteria"):
            try:
                checked.add(ticked.clean(value))
            except forms.ValidationError:
                continue  # not an id: ticks nothing
        return checked


class PersonChoiceField(forms.ModelChoiceField):
    """A choice of people, each by full name (or user name when it has none)."""

    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name() or obj.get_username()


class CardForm(forms.Form):
    """The editable facts of a prospect; the column comes from the cycle on creation."""

    person_name = forms.CharField(required=False, max_length=200, label="Person")
    company = forms.CharField(required=False, max_length=200)
    email = forms.EmailField(required=False, label="E-mail")
    channel = forms.ModelChoiceField(queryset=Channel.objects.none(), required=False)
    owner = PersonChoiceField(queryset=User.objects.none(), required=False)
    estimated_value = forms.DecimalField(
        required=False, min_value=0, max_digits=12, decimal_places=2, label="Estimated value"
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(
        self, *args: Any, channels: QuerySet[Channel], owners: QuerySet[User], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["channel"]).queryset = channels
        cast(forms.ModelChoiceField, self.fields["owner"]).queryset = owners

    def clean(self) -> dict[str, Any]:
        # Parsing only: whether a prospect has enough to be one is card_create's rule.
        super().clean()
        if self.cleaned_data.get("estimated_value") is None:
            self.cleaned_data["estimated_value"] = 0
        return self.cleaned_data


class CardCreateForm(CardForm):
    cycle = forms.ModelChoiceField(
        queryset=Cycle.objects.none(), label="Enter in cycle", empty_label=None
    )
    override_reason = forms.CharField(
        required=False, max_length=300, strip=True, label="WIP override reason (managers only)"
    )

    def __init__(self, *args: Any, cycles: QuerySet[Cycle], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["cycle"]).queryset = cycles
        self.order_fields(["cycle"])


class BlockForm(forms.Form):
    action = forms.ChoiceField(required=False, choices=[("block", "Block"), ("unblock", "Unblock")])
    reason = forms.CharField(
        required=False,
        max_length=300,
        strip=True,
        error_messages={"max_length": "Keep the reason to %(limit_value)d characters."},
    )
    version = RowIdField(required=False)


class CloseForm(forms.Form):
    outcome = forms.TypedChoiceField(
        choices=[(Outcome.WON, Outcome.WON.label), (Outcome.LOST, Outcome.LOST.label)],
        coerce=Outcome,
    )
    version = RowIdField(required=False)


class HandoffTargetForm(forms.Form):
    """The column a handoff leads to: the first column of the next cycle."""

    to_column = RowIdField()


class VersionForm(forms.Form):
    version = RowIdField(required=False)
    override_reason = forms.CharField(required=False, max_length=300, strip=True)


class WipLimitForm(forms.Form):
    wip_limit = forms.IntegerField(required=False, min_value=1, max_value=WIP_LIMIT_MAX)

    def refusal(self) -> str:
        """What is wrong with the limit typed, in the service's words."""
        return f"A WIP limit is empty or a whole number from 1 to {WIP_LIMIT_MAX:,}."


class ColumnPageForm(forms.Form):
    """'Show more' of a column: how many of its cards the page shows already."""

    # No column holds more open cards than this; a larger offset names no page.
    offset = forms.IntegerField(required=False, min_value=0, max_value=10**9)

    def offset_value(self) -> int:
        """The offset asked for; a malformed one starts again from the top."""
        return (self.cleaned_data.get("offset") or 0) if self.is_valid() else 0
