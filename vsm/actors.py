"""Who acts: a person, a stream's API token, or the system itself.

Every write service takes one keyword-only ``actor``; moves, handoffs and audit rows
record its kind, so that "who did this" has an answer for every way in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.http import HttpRequest


class ActorKind(models.TextChoices):
    USER = "user", "Person"
    TOKEN = "token", "API token"
    SYSTEM = "system", "System"


@dataclass(frozen=True)
class UserActor:
    """A signed-in person (or, before the access rule refuses them, an anonymous one)."""

    user: User | AnonymousUser
    kind: Literal[ActorKind.USER] = ActorKind.USER

    @property
    def user_id(self) -> int | None:
        return self.user.pk if self.user.is_authenticated else None

    def __str__(self) -> str:
        return f"user {self.user_id}"


@dataclass(frozen=True)
class TokenActor:
    """An API token of one value stream: it sees and works on that stream only."""

    token_id: int
    stream_id: int
    kind: Literal[ActorKind.TOKEN] = ActorKind.TOKEN

    @property
    def user_id(self) -> None:
        return None

    def __str__(self) -> str:
        return f"token {self.token_id}"


@dataclass(frozen=True)
class SystemActor:
    """The product itself: the demo data, an import job, a sweeper, a management command.

    ``name`` says which part ("demo", "import", "admin-command"): a short code, no
    personal data.
    """

    name: str
    kind: Literal[ActorKind.SYSTEM] = ActorKind.SYSTEM

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 40:
            raise ValueError("A system actor's name is 1 to 40 characters.")

    @property
    def user_id(self) -> None:
        return None

    def __str__(self) -> str:
        return f"system {self.name}"


Actor = UserActor | TokenActor | SystemActor


def request_actor(request: HttpRequest) -> UserActor:
    """The actor behind a browser request: its user, signed in or not."""
    return UserActor(request.user)


def actor_fields(actor: Actor) -> dict[str, object]:
    """The columns of ``vsm.models.ActorFields`` that record ``actor`` on a row."""
    return {
        "actor_kind": actor.kind,
        "actor_id": actor.user_id,
        "actor_token_id": actor.token_id if isinstance(actor, TokenActor) else None,
        "actor_system": actor.name if isinstance(actor, SystemActor) else "",
    }
