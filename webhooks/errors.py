"""The webhook services' refusals (codes, statuses and data as vsm.errors says)."""

from __future__ import annotations

from vsm.errors import Conflict, InvalidInput, NotFound


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    default_message = "No such webhook in this value stream."


class DeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    default_message = "No such delivery for this webhook."


class WebhookUrlRefused(InvalidInput):
    """A URL VSM will not send to: not http(s), with a password in it, or naming a
    machine inside the network VSM runs in (webhooks.targets)."""

    code = "webhook_url_refused"
    default_message = "VSM cannot send webhooks to that URL."


class WebhookEventTypesRequired(InvalidInput):
    code = "webhook_event_types_required"
    default_message = "Choose at least one kind of event to send."


class WebhookUrlTaken(Conflict):
    """The stream has an active webhook to that URL already (one receiver, one secret:
    a second would deliver each event twice, signed differently)."""

    code = "webhook_url_taken"
    default_message = (
        "This stream already has an active webhook to that URL: use that one (rotate its "
        "secret on its page if it was lost), or pause it first."
    )
