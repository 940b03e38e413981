from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import QuerySet
from django.http import QueryDict

from pdca.models import Cycle
from vsm.models import Channel, ValueStream

if TYPE_CHECKING:
    from django.contrib.auth.models import User
else:
    User = get_user_model()

from boards.models import (
    COMMENT_MAX_LENGTH,
    LOST_NOTE_MAX_LENGTH,
    NOTES_MAX_LENGTH,
    Card,
    Outcome,
    WipOverride,
)
from boards.selectors import (
    COLUMN_SHOWN_MAX,
    ArchiveCursor,
    ArchiveQuery,
    BoardFilters,
    CardCursor,
)
from boards.services.columns import WIP_LIMIT_MAX
from vsm.errors import InvalidInput
from vsm.forms import (
    ROW_ID_MAX,
    AmountField,
    RowChoiceField,
    RowIdField,
    WholeNumberField,
    row_id,
    whole_number,
)


def _column_length(model: type[models.Model], name: str) -> int | None:
    """As many characters as the column ``name`` of ``model`` holds."""
    return cast(models.Field, model._meta.get_field(name)).max_length


def _card_length(name: str) -> int | None:
    return _column_length(Card, name)


# A reason for a move over a WIP limit, as long as its column holds.
OVERRIDE_REASON_MAX_LENGTH = _column_length(WipOverride, "reason")
_CARD_VALUE = cast(models.DecimalField, Card._meta.get_field("estimated_value"))


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


def board_filters_checked(params: QueryDict, *, viewer_id: int | None = None) -> BoardFilters:
    """``board_filters``, refusing a malformed value rather than ignoring it: a file of
    "the filtered cards" must not quietly hold them all.

    Raises: InvalidInput naming the first filter that could not be read.
    """
    if not any(name in params for name in BoardFilterForm.base_fields):
        return BoardFilters()
    form = BoardFilterForm(params)
    if not form.is_valid():
        name, problems = next(iter(form.errors.items()))
        raise InvalidInput(f"The filter “{name}” could not be read: {problems[0]}", field=name)
    return form.filters(viewer_id=viewer_id)


def shown_cards(params: QueryDict) -> dict[int, int]:
    """How many cards the client shows of its longer columns ("show more" pressed), so
    that a refresh shows as many: ``shown=<column id>:<cards>,...``. Malformed pairs
    are ignored; counts are capped at COLUMN_SHOWN_MAX."""
    shown: dict[int, int] = {}
    for pair in params.get("shown", "")[:2000].split(","):
        column, _, count = pair.partition(":")
        column_id = row_id(column)
        cards = whole_number(count, min_value=0, max_value=ROW_ID_MAX)
        if column_id is not None and cards is not None:
            shown[column_id] = min(cards, COLUMN_SHOWN_MAX)
    return shown


class CardMoveForm(forms.Form):
    to_column = RowIdField()
    after = RowIdField(required=False)
    before = RowIdField(required=False)
    version = RowIdField(required=False)
    override_reason = forms.CharField(
        required=False, max_length=OVERRIDE_REASON_MAX_LENGTH, strip=True
    )
    # A drag already shows the card where it was dropped; a keyboard move does not.
    dragged = forms.BooleanField(required=False)


class HandoffForm(forms.Form):
    version = RowIdField(required=False)
    override_reason = forms.CharField(
        required=False, max_length=OVERRIDE_REASON_MAX_LENGTH, strip=True
    )

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


class PersonChoiceField(RowChoiceField):
    """A choice of people, each by full name (or user name when it has none)."""

    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name() or obj.get_username()


class CountedTextField(forms.CharField):
    """A free text with a bound, counted as it is typed (js/char-count.js counts against
    ``data-max-length``) instead of the browser's ``maxlength``, which cuts a longer
    paste without a word: a text too long is refused in full, kept as typed. Line
    breaks are LF (a browser posts CRLF), one character each, as the page counts them.

    ``limit``: the most characters; ``too_long``: the refusal, formatted with ``limit``
    and ``length`` ("A note is at most {limit:,} characters; this one has {length:,}.").
    """

    def __init__(self, *, limit: int, too_long: str, rows: int = 3, **kwargs: Any) -> None:
        self.limit = limit
        self.too_long = too_long
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": rows}))
        super().__init__(strip=True, **kwargs)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        return super().widget_attrs(widget) | {"data-max-length": str(self.limit)}

    def to_python(self, value: Any) -> str:
        return str(super().to_python(value) or "").replace("\r\n", "\n")

    def validate(self, value: Any) -> None:
        super().validate(value)
        if len(value) > self.limit:
            raise forms.ValidationError(
                self.too_long.format(limit=self.limit, length=len(value)), code="max_length"
            )


class LostNoteField(CountedTextField):
    """Why a deal was lost, in the seller's words (optional)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            limit=LOST_NOTE_MAX_LENGTH,
            too_long="A note is at most {limit:,} characters; this one has {length:,}.",
            **kwargs,
        )


class CardForm(forms.Form):
    """The editable facts of a prospect; the column comes from the cycle on creation."""

    # As long as the columns they are saved to: a longer e-mail (a form's EmailField
    # allows 320 characters, the column 254) would fail the save itself.
    person_name = forms.CharField(
        required=False, max_length=_card_length("person_name"), label="Person"
    )
    company = forms.CharField(required=False, max_length=_card_length("company"))
    email = forms.EmailField(required=False, max_length=_card_length("email"), label="E-mail")
    channel = RowChoiceField(queryset=Channel.objects.none(), required=False)
    owner = PersonChoiceField(queryset=User.objects.none(), required=False)
    estimated_value = AmountField(
        required=False,
        min_value=0,
        max_digits=_CARD_VALUE.max_digits,
        decimal_places=_CARD_VALUE.decimal_places,
        label="Estimated value",
    )
    notes = CountedTextField(
        limit=NOTES_MAX_LENGTH,
        too_long="Notes hold at most {limit:,} characters; these have {length:,}.",
        rows=4,
    )

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


class CycleChoiceField(RowChoiceField):
    """A choice of one stream's cycles, by name alone: the stream is already named
    where the choice is made ("New prospect in <stream>")."""

    def label_from_instance(self, obj: Cycle) -> str:
        return obj.name


class CardCreateForm(CardForm):
    cycle = CycleChoiceField(
        queryset=Cycle.objects.none(), label="Enter in cycle", empty_label=None
    )
    override_reason = forms.CharField(
        required=False,
        max_length=OVERRIDE_REASON_MAX_LENGTH,
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
        max_length=_card_length("blocked_reason"),
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
    lost_note = LostNoteField()

    def unreadable(self) -> bool:
        """Whether what the request asks cannot be read at all (not a lost form's slip)."""
        return bool({"outcome", "version", "lost_reason"} & set(self.errors))


class ReopenForm(forms.Form):
    version = RowIdField(required=False)
    override_reason = forms.CharField(
        required=False, max_length=OVERRIDE_REASON_MAX_LENGTH, strip=True
    )
    # Undo: the reopen offered to whoever just closed the card (the message says so).
    undo = forms.BooleanField(required=False)
    # The page to return to (the archive), if it is one of ours.
    next = forms.CharField(required=False, max_length=2000)


class HandoffTargetForm(forms.Form):
    """The column a handoff leads to: the first column of the next cycle."""

    to_column = RowIdField()


class VersionForm(forms.Form):
    version = RowIdField(required=False)
    override_reason = forms.CharField(
        required=False, max_length=OVERRIDE_REASON_MAX_LENGTH, strip=True
    )


class WipLimitForm(forms.Form):
    wip_limit = WholeNumberField(required=False, min_value=1, max_value=WIP_LIMIT_MAX)

    def refusal(self) -> str:
        """What is wrong with the limit typed, in the service's words."""
        return f"A WIP limit is empty or a whole number from 1 to {WIP_LIMIT_MAX:,}."


class ColumnPageForm(forms.Form):
    """'Show more' of a column: the last card the page shows, by position and id."""

    after_position = WholeNumberField(required=False)
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
    # Whether the days were typed the wrong way round (and are read the right way).
    dates_swapped = False

    def clean(self) -> dict[str, Any]:
        data = self.cleaned_data
        first, last = data.get("closed_from"), data.get("closed_to")
        if first and last and first > last:
            data["closed_from"], data["closed_to"] = last, first
            self.dates_swapped = True
        return data

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
                # Counted as it is typed (js/char-count.js), not cut by a maxlength.
                "data-max-length": COMMENT_MAX_LENGTH,
                "placeholder": "What did you learn? The customer's problem, who decides, when.",
            }
        ),
    )
