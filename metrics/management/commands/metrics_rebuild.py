import logging
import re
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from metrics.services import stream_metrics_rebuild
from vsm.models import ValueStream

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Recompute a stream's metrics (or every stream's) from its whole move log. A stream "
        "that fails is reported and skipped; the command then exits non-zero."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("stream", nargs="?", help="slug (or else id) of one value stream")

    def handle(self, *args, stream: str | None = None, **options) -> None:
        streams = ValueStream.objects.order_by("pk")
        if stream:
            # A slug may be all digits: it wins over an id.
            by_slug = streams.filter(slug=stream)
            streams = (
                by_slug
                if by_slug.exists()
                else streams.filter(
                    Q(pk=int(stream)) if re.fullmatch(r"[0-9]{1,18}", stream) else Q(pk__in=[])
                )
            )
            if not streams.exists():
                raise CommandError(f"No value stream {stream!r}.")
        failed = []
        for value_stream in streams:
            started = time.perf_counter()
            try:
                result = stream_metrics_rebuild(stream_id=value_stream.pk)
            except Exception as error:
                logger.exception(
                    "Rebuild of stream %s (%s) failed", value_stream.pk, value_stream.slug
                )
                self.stderr.write(f"{value_stream.slug}: failed: {error!r}")
                failed.append(value_stream.slug)
                continue
            self.stdout.write(
                f"{value_stream.slug}: {result.applied} moves folded through move "
                f"{result.last_applied_move_id} in {time.perf_counter() - started:.2f} s"
            )
        if failed:
            raise CommandError(f"{len(failed)} stream(s) failed: " + ", ".join(failed))
