"""The weekly digest's toggle on the dashboard: what to offer the viewer."""

from __future__ import annotations

from django import template

from metrics.selectors.digest import digest_subscription_state
from vsm.models import ValueStream

register = template.Library()


@register.simple_tag(takes_context=True)
def digest_subscription(context: template.Context, stream: ValueStream) -> str | None:
    """The viewer's digest state for the stream: "manager", "subscribed", "unsubscribed",
    or None (nothing to offer). At most one query (selectors.digest)."""
    return digest_subscription_state(context["request"].user, stream)
