"""Refusals of the intake: an upload, a mapping, a confirmation, the intake queue."""

from __future__ import annotations

from vsm.errors import Conflict, DomainError, InvalidInput, NotFound


class ImportFileRefused(InvalidInput):
    """The uploaded file cannot be imported as it is (too large, empty, not a table)."""

    code = "import_file_refused"
    default_message = "That file cannot be imported."


class ImportFileTooLarge(ImportFileRefused):
    code = "import_file_too_large"
    http_status = 413


class ImportMappingRefused(InvalidInput):
    """The mapping of the file's columns cannot be used (no name column, a bad column)."""

    code = "import_mapping_refused"
    default_message = "That mapping of the file's columns cannot be used."


class ImportNotFound(NotFound):
    code = "import_not_found"
    default_message = "No such import in this value stream."


class ImportStateConflict(Conflict):
    """The import is not in a state that allows this (confirmed already, over, checking)."""

    code = "import_state"
    default_message = "This import has moved on meanwhile; nothing was changed."


class IntakeItemNotFound(NotFound):
    code = "intake_item_not_found"
    default_message = "No such prospect in this stream's intake queue."


class ImportRejectedRowsGone(DomainError):
    """The rejected rows of an import cannot be downloaded: none, not over yet, or its
    file was deleted meanwhile (some days after it ended)."""

    code = "import_rejected_rows_gone"
    http_status = 410
    default_message = (
        "The rejected rows of this import are not kept (any more): its file is deleted "
        "a few days after it ends. Fix your own copy of the file with the row numbers "
        "listed."
    )
