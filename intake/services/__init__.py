"""Every write of the intake: import jobs (upload, mapping, check, confirmation, the
import itself) and the intake queue (a web form's prospect, pull, remove, retry)."""

from intake.services.analysis import import_analyse
from intake.services.jobs import (
    CancelResult,
    import_cancel,
    import_confirm,
    import_discard,
    import_map,
    import_reading_set,
    import_rejected_rows_record,
    import_upload,
    too_large_message,
)
from intake.services.maintenance import (
    import_drafts_discard,
    import_files_expire,
    import_jobs_stalled,
)
from intake.services.queue import (
    IntakeResult,
    PullResult,
    intake_item_remove,
    intake_item_retry,
    intake_pull,
    prospect_intake,
)
from intake.services.run import SliceResult, import_run

__all__ = [
    "CancelResult",
    "IntakeResult",
    "PullResult",
    "SliceResult",
    "import_analyse",
    "import_cancel",
    "import_confirm",
    "import_discard",
    "import_drafts_discard",
    "import_files_expire",
    "import_jobs_stalled",
    "import_map",
    "import_reading_set",
    "import_rejected_rows_record",
    "import_run",
    "import_upload",
    "intake_item_remove",
    "intake_item_retry",
    "intake_pull",
    "prospect_intake",
    "too_large_message",
]
