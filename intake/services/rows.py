"""From a file's row to a prospect, and each row's verdict: new, merge, or rejected why.

The same classification serves the check before the import (the preview's totals) and
the import itself, chunk by chunk, so that the preview says what the import does.
Each rejected row gets a stable code (``RowCode``); the report counts rows per code.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q

from boards.models import NOTES_MAX_LENGTH, Card, Outcome, SuppressedEmail
from boards.services.privacy import email_digest
from boards.services.rules import CONTROL_CHARACTER, control_character
from intake.errors import ImportMappingRefused
from intake.models import DuplicatePolicy, ImportSeenEmail, IntakeItem
from vsm.models import Channel, Membership, ValueStream

# The fields a column maps to, with how the mapping page names them and the header
# names (normalised: letters and digits, lower case, no accents) that suggest them.
FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "person_name": (
        "Person's name",
        (
            "name",
            "fullname",
            "person",
            "personname",
            "contact",
            "contactname",
            "firstname",
            "givenname",
            "vorname",
            "prenom",
        ),
    ),
    "last_name": (
        "Last name (added to the person's name)",
        ("lastname", "surname", "familyname", "nachname", "nom", "nomdefamille"),
    ),
    "company": (
        "Company",
        (
            "company",
            "companyname",
            "organisation",
            "organization",
            "account",
            "accountname",
            "firm",
            "firma",
            "unternehmen",
            "business",
            "societe",
            "entreprise",
        ),
    ),
    "email": (
        "E-mail",
        ("email", "emailaddress", "mail", "mailaddress", "courriel", "emailadresse"),
    ),
    "channel": ("Channel", ("channel", "source", "leadsource", "origin", "kanal", "quelle")),
    "estimated_value": (
        "Estimated value",
        (
            "estimatedvalue",
            "value",
            "amount",
            "dealvalue",
            "dealsize",
            "revenue",
            "budget",
            "wert",
            "betrag",
            "montant",
        ),
    ),
    "owner": (
        "Owner",
        (
            "owner",
            "assignedto",
            "assignee",
            "salesrep",
            "rep",
            "accountowner",
            "leadowner",
            "responsible",
            "besitzer",
        ),
    ),
    "notes": (
        "Notes",
        ("notes", "note", "comments", "comment", "description", "remarks", "details"),
    ),
}
# Guessed in this order (the most telling first), each column at most once.
_GUESS_ORDER = (
    "email",
    "company",
    "last_name",
    "person_name",
    "channel",
    "estimated_value",
    "owner",
    "notes",
)
# Limits of the card's fields (boards.models.Card).
NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 254
# Below 10**10: a card's estimated value has 12 digits, 2 of them after the point.
VALUE_LIMIT = Decimal(10) ** 10


class RowCode(StrEnum):
    """Why a row was not imported: stable codes, counted in the report."""

    NO_NAME = "no_name"
    BAD_EMAIL = "bad_email"
    BAD_VALUE = "bad_value"
    UNKNOWN_OWNER = "unknown_owner"
    UNKNOWN_CHANNEL = "unknown_channel"
    INACTIVE_CHANNEL = "inactive_channel"
    TOO_LONG = "too_long"
    SUPPRESSED_EMAIL = "suppressed_email"
    DUPLICATE_IN_FILE = "duplicate_in_file"
    DUPLICATE_IN_STREAM = "duplicate_in_stream"
    CONTROL_CHARACTERS = "control_characters"
    CELL_COUNT = "cell_count"


ROW_CODE_MEANINGS: dict[str, str] = {
    RowCode.NO_NAME: "Neither a person's name nor a company.",
    RowCode.BAD_EMAIL: "The e-mail address is not a valid address.",
    RowCode.BAD_VALUE: "The estimated value is not an amount of 0 or more (below 10 billion).",
    RowCode.UNKNOWN_OWNER: "The owner is not a member of this value stream (by user name, "
    "e-mail or full name).",
    RowCode.UNKNOWN_CHANNEL: "The channel is not one of this stream's channels, and was not "
    "created.",
    RowCode.INACTIVE_CHANNEL: "The channel is no longer active.",
    RowCode.TOO_LONG: "A value is longer than a card keeps (names 200 characters, notes "
    f"{NOTES_MAX_LENGTH:,}).",
    RowCode.SUPPRESSED_EMAIL: "The person with this e-mail address asked to be forgotten.",
    RowCode.DUPLICATE_IN_FILE: "The same e-mail address as an earlier row of the file.",
    RowCode.DUPLICATE_IN_STREAM: "A card (or a prospect waiting in intake) of this stream has "
    "this e-mail address; skipped, as chosen.",
    RowCode.CONTROL_CHARACTERS: "A value contains a control character (NUL, ESC, ...) that "
    "a card cannot keep or show: the file was probably saved by a program that "
    "garbled it.",
    RowCode.CELL_COUNT: "The row has fewer or more cells than the header has columns: a "
    "quote left open may have joined rows together.",
}


def control_characters_shown(text: str) -> str:
    """``text`` with each control character it may not hold shown as a visible sign
    (U+2400's control pictures; "\ufffd" for DEL and the C1 controls), for a page."""

    def picture(found: re.Match[str]) -> str:
        code = ord(found.group())
        return chr(0x2400 + code) if code < 0x20 else "\ufffd"

    return CONTROL_CHARACTER.sub(picture, text)


def row_code_meaning(code: str) -> str:
    """What a row code means, for the report; a service's refusal code as it is."""
    return ROW_CODE_MEANINGS.get(code, f"Refused when the card was created ({code}).")


def row_error_text(code: str, field_name: str = "", detail: str = "") -> str:
    """Why a row was rejected, in a sentence: its field and detail when known."""
    label = FIELDS[field_name][0] if field_name in FIELDS else ""
    if code == RowCode.CONTROL_CHARACTERS and detail:
        return f"{label or 'A value'} contains a control character ({detail})."
    if code == RowCode.CELL_COUNT and detail:
        return f"The row has {detail}: a quote left open may have joined rows together."
    meaning = row_code_meaning(code)
    return f"{label}: {meaning}" if label else meaning


def _normalised(text: str) -> str:
    """A header or channel name compared loosely: letters and digits, no accents, folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalnum()).casefold()


def mapping_guess(header: Sequence[str]) -> dict[str, int | None]:
    """A first mapping of the header's columns to the fields, from their names: an exact
    (normalised) name first, then a name containing one (e.g. "Contact e-mail")."""
    names = [_normalised(name) for name in header]
    taken: set[int] = set()
    guess: dict[str, int | None] = dict.fromkeys(FIELDS)
    for key in _GUESS_ORDER:
        synonyms = FIELDS[key][1]
        found = next(
            (i for i, name in enumerate(names) if i not in taken and name in synonyms), None
        )
        if found is None:
            found = next(
                (
                    i
                    for i, name in enumerate(names)
                    if i not in taken and any(len(s) >= 5 and s in name for s in synonyms)
                ),
                None,
            )
        if found is not None:
            guess[key] = found
            taken.add(found)
    if guess["last_name"] is not None and guess["person_name"] is None:
        guess["person_name"], guess["last_name"] = guess["last_name"], None
    return guess


def mapping_check(mapping: Mapping[str, int | None], *, columns: int) -> dict[str, int | None]:
    """The mapping as stored: every field, each a column index or None.

    Raises: ImportMappingRefused (no person or company column, a column out of range,
    one column for two fields).
    """
    checked: dict[str, int | None] = {}
    for key in FIELDS:
        index = mapping.get(key)
        if index is not None and not 0 <= index < columns:
            raise ImportMappingRefused(f"{FIELDS[key][0]}: the file has no such column.", field=key)
        checked[key] = index
    if checked["person_name"] is None and checked["company"] is None:
        raise ImportMappingRefused(
            "Choose the column of the person's name or of the company: a prospect needs one.",
            field="person_name",
        )
    used = [index for index in checked.values() if index is not None]
    if len(used) != len(set(used)):
        raise ImportMappingRefused("Map each column of the file to one field at most.")
    return checked


def value_parse(text: str) -> Decimal | None:
    """An amount as people type it: "1200", "1.234,56", "1,234.56", "€ 1 200", "1200 EUR",
    "12'000". One separator followed by exactly three digits groups thousands ("1,234" is
    1234); otherwise it is the decimal point ("1,5" is 1.5). Rounded to cents; empty is 0.
    None when it is not an amount, is negative, or is 10 billion or more."""
    text = re.sub(r"[\s\u00a0\u202f'’]", "", text)
    if not text:
        return Decimal(0)
    text = re.sub(r"^(?:[A-Za-z]{1,3}|[€$£¥₣])|(?:[A-Za-z]{1,3}|[€$£¥₣])$", "", text)
    if not re.fullmatch(r"[0-9][0-9.,]*|[.,][0-9]+", text):
        return None
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        point = "." if text.rfind(".") > text.rfind(",") else ","
        grouping = "," if point == "." else "."
        if text.count(point) > 1:
            return None
        text = text.replace(grouping, "").replace(point, ".")
    elif dots or commas:
        parts = text.split("." if dots else ",")
        grouped = 1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:])
        if len(parts) > 2:
            if not grouped:
                return None
            text = "".join(parts)
        elif grouped and parts[0] != "0":
            text = "".join(parts)
        else:
            text = f"{parts[0] or '0'}.{parts[1]}"
    try:
        value = Decimal(text).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    return value if value < VALUE_LIMIT else None


def channel_key(name: str) -> str:
    """A channel's name compared case-insensitively, its spaces collapsed."""
    return " ".join(name.split()).casefold()


@dataclass
class StreamLookups:
    """The stream's channels (by ``channel_key``: id and active) and its members (by
    user name, e-mail and full name, folded; a name two members share is left out)."""

    channels: dict[str, tuple[int, bool]]
    owners: dict[str, int]

    @classmethod
    def build(cls, stream_id: int) -> StreamLookups:
        channels = {
            channel_key(name): (pk, active)
            for pk, name, active in Channel.objects.filter(value_stream_id=stream_id)
            .order_by("pk")
            .values_list("pk", "name", "is_active")
        }
        member_ids = set(
            Membership.objects.filter(team__value_stream_id=stream_id).values_list(
                "user_id", flat=True
            )
        )
        member_ids |= set(
            ValueStream.objects.filter(pk=stream_id).values_list("manager_id", flat=True)
        )
        owners: dict[str, int] = {}
        ambiguous: set[str] = set()
        people = (
            get_user_model()
            .objects.filter(pk__in=member_ids)
            .order_by("pk")
            .values_list("pk", "username", "email", "first_name", "last_name")
        )
        for pk, username, email, first, last in people:
            full = " ".join(f"{first} {last}".split())
            for key in {username.casefold(), email.strip().casefold(), full.casefold()} - {""}:
                if key in owners and owners[key] != pk:
                    ambiguous.add(key)
                owners[key] = pk
        for key in ambiguous:
            del owners[key]
        return cls(channels=channels, owners=owners)


@dataclass
class Prospect:
    """A row's prospect as a card takes it."""

    person_name: str = ""
    company: str = ""
    email: str = ""
    digest: str = ""
    channel_id: int | None = None
    owner_id: int | None = None
    estimated_value: Decimal = Decimal(0)
    notes: str = ""


@dataclass
class Verdict:
    """What becomes of one row. ``action``: "new", "merge", "reject" or "blank".

    ``code``/``field``: why it is rejected; ``detail``: what exactly, without personal
    data ("NUL", "3 cells where the header has 8"). ``merge_card_id``/``merge_item_id``: the
    card, or the prospect waiting in intake, a duplicate merges into.
    ``new_channel``: the channel value, not yet a channel of the stream (a check before
    the import assumes it will be created; the import rejects the row).
    """

    row: int
    action: str
    prospect: Prospect = field(default_factory=Prospect)
    code: str = ""
    field: str = ""
    detail: str = ""
    merge_card_id: int | None = None
    merge_item_id: int | None = None
    new_channel: str = ""


def _cell(cells: Sequence[str], index: int | None) -> str:
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


def _reject(
    row: int, code: RowCode, field_name: str, prospect: Prospect, detail: str = ""
) -> Verdict:
    return Verdict(
        row=row, action="reject", code=code, field=field_name, prospect=prospect, detail=detail
    )


def header_width(header: Sequence[str]) -> int:
    """The cells a row of this header must have at least: one per column up to the last
    with a name of its own (a delimiter at the end of the header line makes a blank
    column, "Column N", that rows may leave out)."""
    width = len(header)
    while width > 1 and header[width - 1] == f"Column {width}":
        width -= 1
    return width


def _cells_checked(
    row: int,
    cells: Sequence[str],
    *,
    mapping: Mapping[str, int | None],
    header: Sequence[str] | None,
) -> Verdict | None:
    """The rejection of a row whose cells cannot be read as the header's: fewer cells
    than the header has columns, more that are not blank (trailing delimiters are
    harmless), or a control character in a mapped cell. None when they can."""
    if header is not None and (
        len(cells) < header_width(header) or any(cell.strip() for cell in cells[len(header) :])
    ):
        detail = (
            f"{len(cells)} cell{'s' if len(cells) != 1 else ''} where the header has {len(header)}"
        )
        return _reject(row, RowCode.CELL_COUNT, "", Prospect(), detail)
    for key in FIELDS:
        found = control_character(_cell(cells, mapping.get(key)))
        if found:
            return _reject(row, RowCode.CONTROL_CHARACTERS, key, Prospect(), found)
    return None


def row_read(
    row: int,
    cells: Sequence[str],
    *,
    mapping: Mapping[str, int | None],
    lookups: StreamLookups,
    new_channels_rejected: bool = True,
    header: Sequence[str] | None = None,
) -> Verdict:
    """A row's prospect, or why it cannot be one, from its cells alone (no duplicate or
    suppression check: those need the rows around it).

    ``new_channels_rejected``: a channel value the stream does not have rejects the
    row (the import); otherwise the row goes on, its value in ``new_channel`` (the
    check before it, which offers to create them). ``header``: the file's; a row with
    another number of cells is rejected (None: not checked).
    """
    if not any(cell.strip() for cell in cells):
        return Verdict(row=row, action="blank")
    refused = _cells_checked(row, cells, mapping=mapping, header=header)
    if refused is not None:
        return refused
    person = " ".join(
        " ".join(part.split())
        for part in (_cell(cells, mapping["person_name"]), _cell(cells, mapping["last_name"]))
        if part
    )
    prospect = Prospect(
        person_name=person,
        company=" ".join(_cell(cells, mapping["company"]).split()),
        email=_cell(cells, mapping["email"]),
        notes=_cell(cells, mapping["notes"]).replace("\r\n", "\n").replace("\r", "\n"),
    )
    if not (prospect.person_name or prospect.company):
        return _reject(row, RowCode.NO_NAME, "person_name", prospect)
    for name in ("person_name", "company"):
        if len(getattr(prospect, name)) > NAME_MAX_LENGTH:
            return _reject(row, RowCode.TOO_LONG, name, prospect)
    if len(prospect.notes) > NOTES_MAX_LENGTH:
        return _reject(row, RowCode.TOO_LONG, "notes", prospect)
    if prospect.email:
        if prospect.email.startswith("mailto:"):
            prospect.email = prospect.email.removeprefix("mailto:")
        try:
            if len(prospect.email) > EMAIL_MAX_LENGTH:
                raise ValidationError("too long")
            validate_email(prospect.email)
        except ValidationError:
            return _reject(row, RowCode.BAD_EMAIL, "email", prospect)
        prospect.digest = email_digest(prospect.email)
    value = value_parse(_cell(cells, mapping["estimated_value"]))
    if value is None:
        return _reject(row, RowCode.BAD_VALUE, "estimated_value", prospect)
    prospect.estimated_value = value
    owner = " ".join(_cell(cells, mapping["owner"]).split()).casefold()
    if owner:
        prospect.owner_id = lookups.owners.get(owner)
        if prospect.owner_id is None:
            return _reject(row, RowCode.UNKNOWN_OWNER, "owner", prospect)
    channel = " ".join(_cell(cells, mapping["channel"]).split())
    verdict = Verdict(row=row, action="new", prospect=prospect)
    if channel:
        known = lookups.channels.get(channel_key(channel))
        if known is None and new_channels_rejected:
            return _reject(row, RowCode.UNKNOWN_CHANNEL, "channel", prospect)
        if known is None:
            verdict.new_channel = channel[:120]
        elif not known[1]:
            return _reject(row, RowCode.INACTIVE_CHANNEL, "channel", prospect)
        else:
            prospect.channel_id = known[0]
    return verdict


@dataclass
class StreamEmails:
    """The stream's cards by the digest of their e-mail's canonical form, an open card
    before a closed one, the newest first: what a duplicate merges into.

    In memory: it grows with the stream's cards that have an e-mail (about 150 bytes
    each), not with the file. ``before``: only cards created before then (an import
    leaves out the cards it creates itself: its own rows are duplicates in the file).
    """

    cards: dict[str, int]

    @classmethod
    def build(cls, stream_id: int, *, before: datetime | None = None) -> StreamEmails:
        cards: dict[str, tuple[bool, int]] = {}
        rows = Card.objects.filter(value_stream_id=stream_id).exclude(email="").order_by("pk")
        if before is not None:
            rows = rows.filter(created_at__lt=before)
        for pk, email, outcome in rows.values_list("pk", "email", "outcome").iterator(
            chunk_size=5_000
        ):
            rank = (outcome == Outcome.OPEN, pk)
            digest = email_digest(email)
            if digest not in cards or rank > cards[digest]:
                cards[digest] = rank
        return cls(cards={digest: pk for digest, (_, pk) in cards.items()})


@dataclass
class RowContext:
    """What classifying a job's rows needs: its stream, mapping, lookups, its stream's
    e-mails, the duplicate policy, the phase its first rows per e-mail are kept under
    (``ImportSeenEmail``), and the file's header (its rows' width)."""

    job_id: int
    stream_id: int
    mapping: dict[str, int | None]
    duplicates: str
    lookups: StreamLookups
    emails: StreamEmails
    phase: int
    header: Sequence[str] | None = None
    new_channels_rejected: bool = True


def chunk_classify(rows: Iterable[tuple[int, list[str]]], *, context: RowContext) -> list[Verdict]:
    """The verdict of each row of a chunk, in order: read, then refused if its e-mail is
    suppressed, a duplicate of an earlier row of the file, or (by the policy) of a card
    or a waiting prospect of the stream.

    Writes the chunk's first rows per e-mail (``ImportSeenEmail``; idempotent: a chunk
    classified again gets the same verdicts). Four queries per chunk.
    """
    verdicts = [
        row_read(
            row,
            cells,
            mapping=context.mapping,
            lookups=context.lookups,
            new_channels_rejected=context.new_channels_rejected,
            header=context.header,
        )
        for row, cells in rows
    ]
    with_email = [v for v in verdicts if v.action == "new" and v.prospect.digest]
    if not with_email:
        return verdicts
    digests = {v.prospect.digest for v in with_email}
    suppressed = set(
        SuppressedEmail.objects.filter(digest__in=digests).values_list("digest", flat=True)
    )
    for verdict in with_email:
        if verdict.prospect.digest in suppressed:
            verdict.action, verdict.code = "reject", RowCode.SUPPRESSED_EMAIL
            verdict.field = "email"
    _duplicates_in_file([v for v in with_email if v.action == "new"], context=context)
    _duplicates_in_stream([v for v in with_email if v.action == "new"], context=context)
    return verdicts


def _duplicates_in_file(verdicts: list[Verdict], *, context: RowContext) -> None:
    if not verdicts:
        return
    first_here: dict[str, int] = {}
    for verdict in verdicts:
        first_here.setdefault(verdict.prospect.digest, verdict.row)
    seen = dict(
        ImportSeenEmail.objects.filter(
            job_id=context.job_id, phase=context.phase, digest__in=list(first_here)
        ).values_list("digest", "first_row")
    )
    ImportSeenEmail.objects.bulk_create(
        [
            ImportSeenEmail(job_id=context.job_id, phase=context.phase, digest=d, first_row=row)
            for d, row in first_here.items()
            if d not in seen
        ],
        ignore_conflicts=True,
    )
    for verdict in verdicts:
        digest = verdict.prospect.digest
        first = min(seen.get(digest, verdict.row), first_here[digest])
        if first < verdict.row:
            verdict.action, verdict.code, verdict.field = (
                "reject",
                RowCode.DUPLICATE_IN_FILE,
                "email",
            )


def _duplicates_in_stream(verdicts: list[Verdict], *, context: RowContext) -> None:
    if not verdicts:
        return
    waiting = dict(
        IntakeItem.objects.filter(
            value_stream_id=context.stream_id,
            email_digest__in={v.prospect.digest for v in verdicts},
        )
        .order_by("-id")
        .values_list("email_digest", "pk")
    )
    for verdict in verdicts:
        card_id = context.emails.cards.get(verdict.prospect.digest)
        item_id = waiting.get(verdict.prospect.digest)
        if card_id is None and item_id is None:
            continue
        if context.duplicates == DuplicatePolicy.MERGE:
            verdict.action = "merge"
            verdict.merge_card_id = card_id
            verdict.merge_item_id = item_id if card_id is None else None
        else:
            verdict.action, verdict.code, verdict.field = (
                "reject",
                RowCode.DUPLICATE_IN_STREAM,
                "email",
            )


def seen_forget(*, job_id: int, phase: int | None = None, row: int | None = None) -> None:
    """Forget first rows kept for the job: all of them, one phase's, or (``row``) one row
    that the import refused after all, so a later row with its e-mail is no duplicate."""
    rows = ImportSeenEmail.objects.filter(job_id=job_id)
    if phase is not None:
        rows = rows.filter(phase=phase)
    if row is not None:
        rows = rows.filter(first_row=row)
    rows.delete()


def other_phases_forget(*, job_id: int, keep: int) -> None:
    """Forget the first rows kept for every phase of the job but ``keep``."""
    ImportSeenEmail.objects.filter(Q(job_id=job_id) & ~Q(phase=keep)).delete()
