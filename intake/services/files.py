"""The uploaded file: stored in the database in chunks, its encoding and delimiter
detected, and read back as a stream of rows whatever its size.

Memory stays flat: the file is written and read one chunk (CHUNK_BYTES) at a time,
decoded incrementally and parsed by ``csv`` as it streams.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Buffer, Iterable, Iterator
from dataclasses import dataclass

import charset_normalizer

from intake.errors import ImportFileRefused
from intake.models import ImportFileChunk
from intake.services.rows import control_characters_shown

# The size of a stored piece of the file: a few rows of the chunk table per megabyte.
CHUNK_BYTES = 256 * 1024
# What encoding and delimiter detection look at, from the start of the file (besides
# the strict UTF-8 check, which reads all of it): charset-normalizer's memory grows with
# what it is given (about 30 MB for 512 KB), and a few hundred rows tell.
DETECTION_BYTES = 64 * 1024
DELIMITER_SAMPLE_CHARS = 64 * 1024
# Detected among these; the mapping page also offers "|".
DETECTED_DELIMITERS = (",", ";", "\t")
DELIMITER_CHOICES = {",": "Comma (,)", ";": "Semicolon (;)", "\t": "Tab", "|": "Bar (|)"}
# Python codec names offered on the mapping page, with how they are shown.
ENCODING_CHOICES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16 (Excel's Unicode text)",
    "cp1252": "Windows-1252 (Western Europe)",
    "cp1250": "Windows-1250 (Central Europe)",
    "iso8859_15": "ISO-8859-15 (Latin-9)",
    "mac_roman": "Mac Roman",
}
# Columns a file may have: more is not a prospect list.
MAX_COLUMNS = 200


@dataclass(frozen=True)
class DetectedFile:
    """What the upload found: the file's encoding, delimiter and header (its first row)."""

    encoding: str
    delimiter: str
    header: list[str]


class RowUnreadable(Exception):
    """The file cannot be parsed past this row (an unclosed quote, a NUL byte)."""

    def __init__(self, row: int, reason: str) -> None:
        self.row = row
        self.reason = reason
        super().__init__(f"row {row}: {reason}")


def file_store(*, job_id: int, chunks: Iterable[bytes]) -> tuple[int, DetectedFile]:
    """Store an uploaded file's bytes as the job's chunks and detect how to read it.

    Runs in the caller's transaction. Returns (size in bytes, what was detected).
    Raises: ImportFileRefused (empty, a workbook or another binary file, no header).
    """
    size = 0
    seq = 0
    pending = bytearray()
    sample = bytearray()
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
    utf8_ok = True
    for piece in chunks:
        size += len(piece)
        if len(sample) < DETECTION_BYTES:
            sample += piece[: DETECTION_BYTES - len(sample)]
        if utf8_ok:
            try:
                utf8.decode(piece)
            except UnicodeDecodeError:
                utf8_ok = False
        pending += piece
        while len(pending) >= CHUNK_BYTES:
            piece_data = bytes(pending[:CHUNK_BYTES])
            ImportFileChunk.objects.create(job_id=job_id, seq=seq, data=piece_data)
            del pending[:CHUNK_BYTES]
            seq += 1
    if pending:
        ImportFileChunk.objects.create(job_id=job_id, seq=seq, data=bytes(pending))
    if utf8_ok:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    return size, detect(bytes(sample), utf8_ok=utf8_ok, whole=size <= DETECTION_BYTES)


def detect(sample: bytes, *, utf8_ok: bool, whole: bool = False) -> DetectedFile:
    """The encoding, delimiter and header of a file from its first bytes.

    ``utf8_ok``: the whole file decodes as strict UTF-8 (checked while it was stored);
    ``whole``: the sample is the whole file (then a file of a header alone is refused).
    Raises: ImportFileRefused.
    """
    if not sample.strip():
        raise ImportFileRefused("The file is empty.", field="file")
    if sample.startswith(b"PK\x03\x04") or sample.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileRefused(
            "This is a spreadsheet workbook, not a CSV file: save it as CSV "
            "(File › Save as › CSV) and upload that.",
            field="file",
        )
    encoding = detect_encoding(sample, utf8_ok=utf8_ok)
    if encoding != "utf-16" and _looks_binary(sample):
        raise ImportFileRefused("This looks like a binary file, not a CSV text file.", field="file")
    text = _decoded_sample(sample, encoding)
    if len(sample) >= DETECTION_BYTES and not any(end in text for end in "\r\n"):
        raise ImportFileRefused(
            f"The file's first row is longer than {DETECTION_BYTES // 1024} KB: it is not a "
            "header row naming the columns. Save the table as CSV with a header row and "
            "upload that.",
            data={"limit": DETECTION_BYTES},
            field="file",
        )
    delimiter = detect_delimiter(text)
    header = header_of(text, delimiter=delimiter)
    if whole and not _has_data_row(text, delimiter=delimiter):
        raise ImportFileRefused(
            "The file has a header and no rows: add the prospects below the header and "
            "upload it again.",
            field="file",
        )
    return DetectedFile(encoding=encoding, delimiter=delimiter, header=header)


def _has_data_row(text: str, *, delimiter: str) -> bool:
    """Whether a row after the header has a value (a row csv cannot read counts: the
    check of every row says what is wrong with it)."""
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=delimiter)
    try:
        next(rows, None)
        return any(any(cell.strip() for cell in cells) for cells in rows)
    except csv.Error:
        return True


# Bytes that text other than UTF-16 does not hold: the C0 controls but tab, line feed,
# vertical tab, form feed and carriage return.
_BINARY_BYTES = bytes(range(0x00, 0x09)) + bytes(range(0x0E, 0x20))


def _looks_binary(sample: bytes) -> bool:
    """A binary file: NUL bytes, and control bytes a tenth of it or more. A text file may
    hold a stray NUL, whose row the check rejects (intake.services.rows,
    "control_characters")."""
    if b"\x00" not in sample:
        return False
    controls = len(sample) - len(sample.translate(None, _BINARY_BYTES))
    return controls * 10 >= len(sample)


def detect_encoding(sample: bytes, *, utf8_ok: bool) -> str:
    """A byte order mark first; then strict UTF-8 (the whole file decoded); then
    charset-normalizer's guess, preferring Windows-1252 whenever it reads the text as
    well as the best guess (a French or German list reads the same in Windows-1250, and
    its è would become č)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if utf8_ok:
        return "utf-8"
    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None:
        return "cp1252"
    for match in matches:
        if match.chaos <= best.chaos + 0.02 and "cp1252" in match.could_be_from_charset:
            return "cp1252"
    name = codecs.lookup(best.encoding).name
    return name if name in ENCODING_CHOICES else "cp1252"


def _decoded_sample(sample: bytes, encoding: str) -> str:
    text = sample.decode(encoding, errors="replace")
    text = text.removeprefix("\ufeff")
    # Whole lines only: the sample may stop in the middle of one.
    if len(sample) >= DETECTION_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    return text


def detect_delimiter(text: str) -> str:
    """The delimiter of a CSV text: csv.Sniffer restricted to comma, semicolon and
    tab; when it cannot tell, or its answer leaves the header one column, the one of
    the three that splits the header into most columns (a comma when none does)."""
    sample = text[:DELIMITER_SAMPLE_CHARS]
    if len(text) > DELIMITER_SAMPLE_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DETECTED_DELIMITERS)).delimiter
    except csv.Error:
        sniffed = ""
    if sniffed and len(header_of(sample, delimiter=sniffed)) > 1:
        return sniffed
    widths = {d: len(header_of(sample, delimiter=d)) for d in DETECTED_DELIMITERS}
    best = max(DETECTED_DELIMITERS, key=lambda d: widths[d])
    return best if widths[best] > 1 else ","


def header_of(text: str, *, delimiter: str) -> list[str]:
    """The first row of a CSV text, as column names: trimmed, a blank name becomes
    "Column N". Raises: ImportFileRefused (no row, too many columns, unreadable)."""
    try:
        first = next(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=delimiter))
    except StopIteration:
        raise ImportFileRefused("The file has no rows.", field="file") from None
    except csv.Error as error:
        raise ImportFileRefused(f"The file's first row cannot be read: {error}.") from None
    if len(first) > MAX_COLUMNS:
        raise ImportFileRefused(
            f"The file has {len(first)} columns; a prospect list has at most {MAX_COLUMNS}.",
            data={"columns": len(first), "limit": MAX_COLUMNS},
            field="file",
        )
    # Control characters made visible: a name is shown, and PostgreSQL's JSON refuses NUL.
    return [
        control_characters_shown(name.strip()[:120]) or f"Column {n}"
        for n, name in enumerate(first, start=1)
    ]


def stored_header(*, job_id: int, encoding: str, delimiter: str) -> list[str]:
    """The header of the job's stored file read with this encoding and delimiter (the
    mapping page's choice). Raises: ImportFileRefused."""
    raw = io.BufferedReader(_StoredFile(job_id), buffer_size=CHUNK_BYTES)
    sample = raw.read(DETECTION_BYTES)
    return header_of(_decoded_sample(sample, encoding), delimiter=delimiter)


class _StoredFile(io.RawIOBase):
    """The job's stored chunks as one readable byte stream, one chunk in memory."""

    def __init__(self, job_id: int) -> None:
        self._job_id = job_id
        self._seq = 0
        self._chunk = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer, /) -> int:
        while not self._chunk:
            if self._done:
                return 0
            data = (
                ImportFileChunk.objects.filter(job_id=self._job_id, seq=self._seq)
                .values_list("data", flat=True)
                .first()
            )
            if data is None:
                self._done = True
                return 0
            self._chunk = memoryview(bytes(data))
            self._seq += 1
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._chunk))
        view[:count] = self._chunk[:count]
        self._chunk = self._chunk[count:]
        return count


def file_rows(
    *, job_id: int, encoding: str, delimiter: str, after_row: int = 1
) -> Iterator[tuple[int, list[str]]]:
    """The data rows of the job's file as (row number, cells), after ``after_row``
    (``after_row=0``: the header first).

    Rows are numbered as a spreadsheet shows them: the header is row 1. A blank row
    comes as an empty list. Streams: one stored chunk and one row in memory at a time.
    Raises: RowUnreadable (csv cannot parse on; the rows before it came).
    """
    text = io.TextIOWrapper(
        io.BufferedReader(_StoredFile(job_id), buffer_size=CHUNK_BYTES),
        encoding=encoding,
        errors="replace",
        newline="",
    )
    reader = csv.reader(text, delimiter=delimiter)
    row = 0
    try:
        for cells in reader:
            row += 1
            if row > after_row:
                yield row, cells
    except csv.Error as error:
        raise RowUnreadable(row + 1, str(error)) from None
    finally:
        text.close()
