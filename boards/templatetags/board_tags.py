from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def age(since: datetime | None) -> str:
    """A compact age for card badges: '45m', '6h', '12d'."""
    if since is None:
        return ""
    seconds = max(0, int((timezone.now() - since).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


@register.filter
def age_days(since: datetime | None) -> int:
    if since is None:
        return 0
    return max(0, (timezone.now() - since).days)
