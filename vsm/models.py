"""The value stream core: streams (one per customer market), teams, memberships, channels."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import Q
from django.utils import timezone

from vsm.actors import ActorKind


class ValueStream(models.Model):
    """One customer market's path from first contact to buying and buying again."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    customer_market = models.CharField(
        max_length=200, help_text="The customer market this stream serves."
    )
    description = models.TextField(blank=True, max_length=2000)
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
            models.CheckConstraint(
                condition=~Q(name=""),
                name="vsm_valuestream_name_not_blank",
                violation_error_message="A value stream needs a name.",
            ),
            models.CheckConstraint(
                condition=~Q(slug=""),
                name="vsm_valuestream_slug_not_blank",
                violation_error_message="A value stream needs a slug.",
            ),
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
            models.CheckConstraint(
                condition=~Q(name=""),
                name="vsm_team_name_not_blank",
                violation_error_message="A team needs a name.",
            ),
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
                condition=Q(role__in=Role.values),
                name="vsm_membership_role_valid",
                violation_error_message="Choose one of the team roles.",
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
            models.CheckConstraint(
                condition=~Q(name=""),
                name="vsm_channel_name_not_blank",
                violation_error_message="A channel needs a name.",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=ChannelKind.values),
                name="vsm_channel_kind_valid",
                violation_error_message="Choose one of the kinds of channel.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


LOST_REASON_MAX_LENGTH = 120


class LostReason(models.Model):
    """Why a deal is lost, from a list the stream's admins keep ("No budget", "Chose a
    competitor"): the board asks for one when a card is lost (plus free text), and the
    metrics count the lost cards per reason, column and channel. A reason in use is
    deactivated, never deleted, so the lost cards keep it."""

    value_stream = models.ForeignKey(
        ValueStream, on_delete=models.CASCADE, related_name="lost_reasons"
    )
    name = models.CharField(max_length=LOST_REASON_MAX_LENGTH)
    order = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["value_stream", "order", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["value_stream", "name"],
                name="vsm_lostreason_unique_name_per_stream",
                violation_error_message="This stream already has a lost reason of that name.",
            ),
            models.CheckConstraint(
                condition=~Q(name=""),
                name="vsm_lostreason_name_not_blank",
                violation_error_message="A lost reason needs a name.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ActorFields(models.Model):
    """Who did it, on a row that records an action: a person, an API token or the system.

    Filled by ``vsm.actors.actor_fields``. The person is kept by id (a user who is
    deleted leaves "a person no longer here"); a token by its id, the system by a
    short code.
    """

    # Database defaults too: bulk loads (COPY) that predate the actor columns keep working.
    actor_kind = models.CharField(
        max_length=6, choices=ActorKind.choices, default=ActorKind.USER, db_default=ActorKind.USER
    )
    # The person's id outlives the person: a deleted user must not update (or be
    # refused by) an append-only log; the id then names "a person no longer here".
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_token_id = models.PositiveBigIntegerField(null=True, blank=True)
    actor_system = models.CharField(max_length=40, blank=True, default="", db_default="")

    class Meta:
        abstract = True

    @classmethod
    def actor_constraints(cls, prefix: str) -> list[models.BaseConstraint]:
        """The named constraints that keep the actor columns consistent with the kind."""
        return [
            models.CheckConstraint(
                condition=Q(actor_kind__in=ActorKind.values),
                name=f"{prefix}_actor_kind_valid",
                violation_error_message=(
                    "Choose a kind of actor: a person, an API token or the system."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(actor_kind=ActorKind.TOKEN) | Q(actor_token_id__isnull=False),
                name=f"{prefix}_token_actor_has_token",
                violation_error_message="An API token's action names its token.",
            ),
            models.CheckConstraint(
                condition=~Q(actor_kind=ActorKind.SYSTEM) | ~Q(actor_system=""),
                name=f"{prefix}_system_actor_has_name",
                violation_error_message="A system action names the part of the system that did it.",
            ),
        ]

    @property
    def actor_label(self) -> str:
        """How the actor is named on a page: a person's name, "API token 3", "System (demo)"."""
        if self.actor_kind == ActorKind.TOKEN:
            return f"API token {self.actor_token_id}"
        if self.actor_kind == ActorKind.SYSTEM:
            return f"System ({self.actor_system})"
        if self.actor_id is None:
            return "Someone"
        try:
            person = self.actor
        except ObjectDoesNotExist:  # deleted since: an audit row keeps the id, no key
            person = None
        if person is None:
            return f"A person no longer here (user {self.actor_id})"
        return person.get_full_name() or person.get_username()


class AuditEntry(ActorFields):
    """One recorded action: who, which kind of actor, what, in which stream, on what.

    Append-only (a PostgreSQL trigger refuses UPDATE and DELETE). It holds ids and
    numbers only, no personal data, so that it never has to be erased: the stream and
    targets are plain ids that outlive the rows they name.
    """

    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=60)
    stream_id = models.PositiveBigIntegerField(null=True, blank=True)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.PositiveBigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # The error code when the action was refused (an authorization): "not_found",
    # "permission_refused"; empty when it was carried out.
    refused_code = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["stream_id", "-at"], name="vsm_audit_stream_at"),
            models.Index(fields=["action", "-at"], name="vsm_audit_action_at"),
            models.Index(fields=["actor", "-at"], name="vsm_audit_actor_at"),
        ]
        constraints = [
            *ActorFields.actor_constraints("vsm_auditentry"),
            models.CheckConstraint(
                condition=Q(action__regex=r"^[a-z_]+\.[a-z_]+$"),
                name="vsm_auditentry_action_format",
                violation_error_message="An audit action is “entity.verb”, in lower case.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label} at {self.at:%Y-%m-%d %H:%M}"
