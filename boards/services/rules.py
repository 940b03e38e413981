"""Rules about what a card may hold, checked by every service that writes a card."""

from __future__ import annotations

import re

from boards.errors import InvalidMove
from boards.models import NOTES_MAX_LENGTH
from vsm.access import stream_members_check
from vsm.models import Channel

# Characters a card's text may not hold: the C0 controls but tab, line feed and carriage
# return (notes keep line breaks), DEL and the C1 controls. PostgreSQL refuses NUL in
# text outright; the others it stores, but a board cannot show them, a search cannot
# find them, and they come from a program that garbled the text (C1 controls:
# Windows-1252 read as ISO-8859).
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character(text: str) -> str:
    """The name of the first control character ``text`` may not hold ("NUL", "U+001B"),
    or "" when it holds none."""
    found = CONTROL_CHARACTER.search(text)
    if found is None:
        return ""
    code = ord(found.group())
    return "NUL" if code == 0 else f"U+{code:04X}"


def card_text_check(**texts: str) -> None:
    """Raises: InvalidMove (``field`` the first such text's name) when a card's text
    holds a control character (``control_character``)."""
    for name, text in texts.items():
        found = CONTROL_CHARACTER.search(text)
        if found:
            raise InvalidMove(
                f"That text holds a control character ({control_character(text)}) a card "
                "cannot show.",
                data={"code_point": ord(found.group())},
                field=name,
            )


def prospect_name_check(*, person_name: str, company: str) -> None:
    """Raises: InvalidMove unless the prospect has a person or a company."""
    if not (person_name.strip() or company.strip()):
        raise InvalidMove("A prospect needs a person or a company.", field="person_name")


def card_notes_check(notes: str) -> None:
    """Raises: InvalidMove (field "notes") when the notes are over NOTES_MAX_LENGTH."""
    if len(notes) > NOTES_MAX_LENGTH:
        raise InvalidMove(
            f"Keep the notes to {NOTES_MAX_LENGTH:,} characters; these have {len(notes):,}."
            " Longer stories belong in comments.",
            data={"length": len(notes), "limit": NOTES_MAX_LENGTH},
            field="notes",
        )


def card_owner_check(*, stream_id: int, owner_id: int | None) -> None:
    """Raises: InvalidMove unless the owner is nobody or a member of the stream."""
    if owner_id is not None and stream_members_check(stream_id=stream_id, user_ids={owner_id}):
        raise InvalidMove(
            "A card's owner is a member of its value stream.",
            data={"owner_id": owner_id, "stream_id": stream_id},
            field="owner",
        )


def card_channel_check(
    *, stream_id: int, channel_id: int | None, current_channel_id: int | None = None
) -> None:
    """Raises: InvalidMove unless the channel is nobody or an active channel of the
    stream. A card may keep the channel it already has after it was deactivated
    (``current_channel_id``): deactivating a channel stops new cards, not old ones."""
    if channel_id is None:
        return
    channel = Channel.objects.filter(pk=channel_id).values("value_stream_id", "is_active").first()
    if channel is None or channel["value_stream_id"] != stream_id:
        raise InvalidMove(
            "That channel does not belong to this value stream.",
            data={"channel_id": channel_id, "stream_id": stream_id},
            field="channel",
        )
    if not channel["is_active"] and channel_id != current_channel_id:
        raise InvalidMove(
            "That channel is no longer active.", data={"channel_id": channel_id}, field="channel"
        )
