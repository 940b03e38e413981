"""The value stream core: streams (one per customer market), teams, memberships, channels."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ValueStream(models.Model):
    """One customer market's path from first contact to buying and buying again."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    customer_market = models.CharField(
        max_length=200, help_text="The customer market this stream serves."
    )
    description = models.TextField(blank=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="managed_value_streams",
        help_text="The value stream manager: sets direction and reviews the weekly metrics.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="vsm_valuestream_name_not_blank"),
            models.CheckConstraint(condition=~Q(slug=""), name="vsm_valuestream_slug_not_blank"),
        ]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    """A team working in one value stream; each cycle may be owned by a different team."""

    value_stream = models.ForeignKey(ValueStream, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["value_stream", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["value_stream", "name"], name="vsm_team_unique_name_per_stream"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="vsm_team_name_not_blank"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.value_stream})"


class Role(models.TextChoices):
    VALUE_STREAM_MANAGER = "value_stream_manager", "Value stream manager"
    TEAM_COORDINATOR = "team_coordinator", "Team coordinator"
    TEAM_LEADER = "team_leader", "Team leader"
    MEMBER = "member", "Member"


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        ordering = ["team", "user"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "team"], name="vsm_membership_unique_user_team"
            ),
            models.CheckConstraint(
                condition=Q(role__in=Role.values), name="vsm_membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team.name} as {self.get_role_display()}"


class ChannelKind(models.TextChoices):
    WEB_FORM = "web_form", "Web form"
    REFERRAL = "referral", "Referral"
    EVENT = "event", "Event"
    SOCIAL = "social", "Social media"
    PARTNER = "partner", "Partner"
    OUTBOUND = "outbound", "Outbound"
    CONTENT = "content", "Content / SEO"
    OTHER = "other", "Other"


class Channel(models.Model):
    """How prospects enter a value stream: web form, referral, event, social, partner..."""

    value_stream = models.ForeignKey(ValueStream, on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=ChannelKind.choices, default=ChannelKind.OTHER)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["value_stream", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["value_stream", "name"], name="vsm_channel_unique_name_per_stream"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="vsm_channel_name_not_blank"),
            models.CheckConstraint(
                condition=Q(kind__in=ChannelKind.values), name="vsm_channel_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name
