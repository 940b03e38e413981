from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import QueryDict

from pdca.models import Cycle
from vsm.models import Channel, ValueStream

if TYPE_CHECKING:
    from django.contrib.auth.models import User
else:
    User = get_user_model()

from boards.models import COMMENT_MAX_LENGTH, LOST_NOTE_MAX_LENGTH, Outcome
from boards.selectors import (
    COLUMN_SHOWN_MAX,
    ArchiveCursor,
    ArchiveQuery,
    BoardFilters,
    CardCursor,
)
from boards.services.columns import WIP_LIMIT_MAX

# Ids and versions are at most signed 64-bit integers in the database: a larger number
# names nothing, and SQLite cannot even bind it (an OverflowError, a 500).
ROW_ID_MAX = 2**63 - 1
ROW_ID_MIN = -(2**63)


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
    # "My cards": the viewer's own; it takes the place of an owner chosen.
    mine = forms.BooleanField(required=False)

    def filters(self, *, viewer_id: int | None = None) -> BoardFilters:
        """The filters asked for; a malformed value is ignored rather than failing the board.

        ``viewer_id``: whose cards "my cards" are (none: the filter is ignored).
        """
        data = self.cleaned_data if self.is_valid() else {}
        mine = bool(data.get("mine")) and viewer_id is not None
        return BoardFilters(
            channel_id=data.get("channel"),
            owner_id=viewer_id if mine else data.get("owner"),
            text=data.get("q") or "",
            blocked_only=bool(data.get("blocked")),
            column_id=data.get("column"),
            mine=mine,
        )


def board_filters(params: QueryDict, *, viewer_id: int | None = None) -> BoardFilters:
    """The board filters a request's query string asks for (``viewer_id``: "my cards")."""
    if not any(name in params for name in BoardFilterForm.base_fields):
        # Most requests (every move) filter nothing: no form to build and validate.
        return BoardFilters()
    return BoardFilterForm(params).filters(viewer_id=viewer_id)


def shown_cards(params: QueryDict) -> dict[int, int]:
    """How many cards the client shows of its longer columns ("show more" pressed), so
    that a refresh shows as many: ``shown=<column id>:<cards>,...``. Malformed pairs
    are ignored; counts are capped at COLUMN_SHOWN_MAX."""
    shown: dict[int, int] = {}
    for pair in params.get("shown", "")[:2000].split(","):
        column, _, count = pair.partition(":")
        if column.isdigit() and count.isdigit() and 0 < int(column) <= ROW_ID_MAX:
            shown[int(column)] = min(int(count), COLUMN_SHOWN_MAX)
    return shown


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
        required=False,
        max_length=300,
        strip=True,
        label="WIP override reason",
        help_text="Only if the first column is full: the reason is logged.",
    )

    def __init__(
        self, *args: Any, cycles: QuerySet[Cycle], can_override: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["cycle"]).queryset = cycles
        if not can_override:
            # Only those who steer the stream may override a WIP limit: no field for
            # the others (card_create refuses an override from them in any case).
            del self.fields["override_reason"]
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
    # Why a deal was lost: one of the stream's reasons (card_close checks it), a note.
    lost_reason = RowIdField(required=False)
    lost_note = forms.CharField(
        required=False,
        max_length=LOST_NOTE_MAX_LENGTH,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"max_length": "Keep the note to %(limit_value)d characters."},
    )

    def unreadable(self) -> bool:
        """Whether what the request asks cannot be read at all (not a lost form's slip)."""
        return bool({"outcome", "version", "lost_reason"} & set(self.errors))


class ReopenForm(forms.Form):
    version = RowIdField(required=False)
    override_reason = forms.CharField(required=False, max_length=300, strip=True)
    # Undo: the reopen offered to whoever just closed the card (the message says so).
    undo = forms.BooleanField(required=False)
    # The page to return to (the archive), if it is one of ours.
    next = forms.CharField(required=False, max_length=2000)


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
    """'Show more' of a column: the last card the page shows, by position and id."""

    after_position = forms.IntegerField(required=False, min_value=ROW_ID_MIN, max_value=ROW_ID_MAX)
    after_id = RowIdField(required=False)

    def cursor(self) -> CardCursor | None:
        """The card to continue after; a malformed or partial one starts from the top."""
        if not self.is_valid():
            return None
        position, card_id = self.cleaned_data["after_position"], self.cleaned_data["after_id"]
        if position is None or card_id is None:
            return None
        return (position, card_id)


class ArchiveFilterForm(forms.Form):
    """The archive's filters; a malformed one is shown as an error and ignored."""

    outcome = forms.ChoiceField(
        required=False,
        choices=[("", "Won and lost"), (Outcome.WON, "Won"), (Outcome.LOST, "Lost")],
    )
    channel = RowIdField(required=False)
    owner = RowIdField(required=False)
    lost_reason = RowIdField(required=False)
    closed_from = forms.DateField(required=False, label="Closed from")
    closed_to = forms.DateField(required=False, label="to")
    q = forms.CharField(required=False, max_length=100, strip=True, label="Search")
    older = forms.CharField(required=False, max_length=40)
    newer = forms.CharField(required=False, max_length=40)

    def query(self, stream: ValueStream) -> ArchiveQuery:
        self.is_valid()  # fills cleaned_data with the fields that could be read
        data = self.cleaned_data
        return ArchiveQuery(
            stream=stream,
            outcome=data.get("outcome") or "",
            channel_id=data.get("channel"),
            owner_id=data.get("owner"),
            lost_reason_id=data.get("lost_reason"),
            closed_from=data.get("closed_from"),
            closed_to=data.get("closed_to"),
            text=data.get("q") or "",
            older_than=ArchiveCursor.parse(data.get("older") or ""),
            newer_than=ArchiveCursor.parse(data.get("newer") or ""),
        )


class CommentForm(forms.Form):
    """A comment on a card. Whether it may be added (not empty, not too long) is
    card_comment_add's rule: its refusal is shown on this field, keeping the text."""

    text = forms.CharField(
        required=False,
        strip=False,
        label="Add a comment",
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "maxlength": COMMENT_MAX_LENGTH,
                "placeholder": "What did you learn? The customer's problem, who decides, when.",
            }
        ),
    )
