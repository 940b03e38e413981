"""The webhooks page's forms: input parsing only; the rules live in the services."""

from __future__ import annotations

from django import forms

from boards.models import MoveKind
from vsm.once import OnceForm
from webhooks.models import DESCRIPTION_MAX_LENGTH, URL_MAX_LENGTH, DeliveryStatus
from webhooks.services.endpoints import PREVIOUS_SECRET_HOURS_MAX

EVENT_HELP = {
    MoveKind.ENTER: "a prospect enters the stream",
    MoveKind.MOVE: "a card changes column inside its cycle",
    MoveKind.HANDOFF: "a card passes a control point into the next cycle",
    MoveKind.WON: "a deal is won",
    MoveKind.LOST: "a deal is lost",
    MoveKind.REOPEN: "a closed card is reopened",
}


class EndpointForm(OnceForm):
    """Sent again (the answer that showed the secret, reloaded), it adds nothing: see
    vsm.once."""

    # A CharField, not a URLField: the service judges the URL (webhooks.targets) and
    # says why it refuses one.
    url = forms.CharField(
        label="URL",
        max_length=URL_MAX_LENGTH,
        help_text="Where VSM sends each event, by POST: https://...",
    )
    description = forms.CharField(
        label="Description", max_length=DESCRIPTION_MAX_LENGTH, required=False
    )
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=[(kind.value, f"{kind.value}: {EVENT_HELP[kind]}") for kind in MoveKind],
        widget=forms.CheckboxSelectMultiple,
        initial=list(MoveKind.values),
        error_messages={"required": "Choose at least one kind of event to send."},
    )


class ActiveForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("1", "Resume"), ("0", "Pause")], coerce=int)


HOURS_MISSING = "Say how long the old secret keeps signing."


class RotateForm(OnceForm):
    """Sent again, it rotates nothing (the secret just shown keeps working)."""

    keep_previous_hours = forms.TypedChoiceField(
        label="The old secret",
        choices=[
            ("0", "stops signing now"),
            (str(PREVIOUS_SECRET_HOURS_MAX), f"also signs for {PREVIOUS_SECRET_HOURS_MAX} hours"),
        ],
        coerce=int,
        initial="0",
        error_messages={
            "required": HOURS_MISSING,
            "invalid_choice": HOURS_MISSING,
        },
    )


class DeleteForm(forms.Form):
    confirm = forms.BooleanField(
        label="Yes, delete this webhook and its delivery log",
        error_messages={"required": "Tick “Yes, delete this webhook” first: nothing was deleted."},
    )


class DeliveryLogForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "All"), *DeliveryStatus.choices], required=False, label="Status"
    )
