"""The intake's pages: upload, mapping, preview, progress and report; the intake queue.

Refusals are answered in one place (vsm.http): a form shows its own, with what the
user chose kept; anything else is a message or the refused page.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from intake import selectors, services
from intake.errors import ImportFileTooLarge
from intake.forms import (
    CancelForm,
    ConfirmForm,
    MappingForm,
    PageForm,
    ReadingForm,
    UploadForm,
)
from intake.models import DRAFT_STATES, WORK_STATES, ImportJob, ImportState
from intake.tasks import import_resume_in_process, imports_run_in_process
from pdca.models import Cycle
from vsm.access import actor_steers, stream_access
from vsm.actors import request_actor
from vsm.http import HtmxHttpRequest, form_status, refusals_shown_on, refuse_back_to
from vsm.models import ValueStream

# What a multipart body adds to the file it carries, at most (boundaries, headers,
# the CSRF token): a body longer than the limit plus this is refused unread.
_MULTIPART_OVERHEAD = 64 * 1024


def _steered(request: HtmxHttpRequest, stream_slug: str) -> ValueStream:
    return stream_access(actor=request_actor(request), slug=stream_slug, steer=True)


def _job_url(job: ImportJob, page: str = "import-job") -> str:
    return reverse(f"intake:{page}", args=[job.value_stream.slug, job.pk])


@require_http_methods(["GET", "POST"])
def import_start(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    stream = _steered(request, stream_slug)
    limit: int = settings.VSM_IMPORT_MAX_BYTES
    form = UploadForm()
    refusal = None
    if request.method == "POST":
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > limit + _MULTIPART_OVERHEAD:
            # Refused before the body is read: nothing of it is stored anywhere.
            refusal = ImportFileTooLarge(services.too_large_message(limit))
        else:
            form = UploadForm(request.POST, request.FILES)
        if form.is_bound and form.is_valid():
            upload = form.cleaned_data["file"]
            with refusals_shown_on(form, request):
                job = services.import_upload(
                    stream_id=stream.pk,
                    actor=request_actor(request),
                    file_name=upload.name,
                    chunks=upload.chunks(),
                    size=upload.size,
                )
            if not form.errors:
                return redirect(_job_url(job, "import-mapping"))
    context = {
        "stream": stream,
        "form": form,
        "refusal": refusal,
        "max_mb": limit // (1024 * 1024),
        "jobs": selectors.imports_recent(stream=stream),
        "waiting": selectors.intake_waiting_count(stream=stream),
    }
    status = refusal.http_status if refusal else form_status(request, form)
    return render(request, "intake/upload.html", context, status=status)


@require_http_methods(["GET", "POST"])
def import_mapping(request: HtmxHttpRequest, stream_slug: str, job_id: int) -> HttpResponse:
    stream = _steered(request, stream_slug)
    job = selectors.import_job_in_stream(stream=stream, job_id=job_id)
    if job.state not in DRAFT_STATES:
        return redirect(_job_url(job))
    cycles = Cycle.objects.filter(value_stream=stream).order_by("order", "pk")
    reading = ReadingForm(initial={"encoding": job.encoding, "delimiter": job.delimiter})
    form = MappingForm(job=job, cycles=cycles)
    if request.method == "POST" and "read_again" in request.POST:
        reading = ReadingForm(request.POST)
        if reading.is_valid():
            with refusals_shown_on(reading, request):
                services.import_reading_set(
                    job_id=job.pk,
                    stream_id=stream.pk,
                    actor=request_actor(request),
                    **reading.cleaned_data,
                )
            if not reading.errors:
                messages.success(request, "The file was read again: check the columns below.")
                return redirect(_job_url(job, "import-mapping"))
    elif request.method == "POST":
        form = MappingForm(request.POST, job=job, cycles=cycles)
        if form.is_valid():
            with refusals_shown_on(form, request):
                services.import_map(
                    job_id=job.pk,
                    stream_id=stream.pk,
                    actor=request_actor(request),
                    mapping=form.mapping(),
                    cycle_id=form.cleaned_data["cycle"].pk,
                    duplicates=form.cleaned_data["duplicates"],
                )
            if not form.errors:
                return redirect(_job_url(job, "import-preview"))
    context = {
        "stream": stream,
        "job": job,
        "reading": reading,
        "reading_labels": selectors.file_reading(job=job),
        "form": form,
        "sample": selectors.file_sample(job=job),
    }
    bad = reading if reading.errors else form
    return render(request, "intake/mapping.html", context, status=form_status(request, bad))


@require_http_methods(["GET", "POST"])
def import_preview(request: HtmxHttpRequest, stream_slug: str, job_id: int) -> HttpResponse:
    stream = _steered(request, stream_slug)
    job = selectors.import_job_in_stream(stream=stream, job_id=job_id)
    if job.state == ImportState.UPLOADED:
        return redirect(_job_url(job, "import-mapping"))
    if job.state not in DRAFT_STATES:
        if request.htmx:  # confirmed meanwhile (another tab): the page follows
            return HttpResponseClientRedirect(_job_url(job))
        return redirect(_job_url(job))
    new_channels = job.analysis.get("new_channels", [])
    form = ConfirmForm(
        initial={"revision": job.revision, "create_channels": new_channels},
        new_channels=new_channels,
    )
    if request.method == "POST":
        form = ConfirmForm(request.POST, new_channels=new_channels)
        if form.is_valid():
            with refusals_shown_on(form, request):
                services.import_confirm(
                    job_id=job.pk,
                    stream_id=stream.pk,
                    actor=request_actor(request),
                    revision=form.cleaned_data["revision"],
                    create_channels=form.cleaned_data["create_channels"],
                )
            if not form.errors:
                return redirect(_job_url(job))
    context = {"stream": stream, "job": job, "form": form, **selectors.import_preview(job=job)}
    template = "intake/preview.html#preview" if request.htmx else "intake/preview.html"
    return render(request, template, context, status=form_status(request, form))


@require_POST
def import_discard(request: HtmxHttpRequest, stream_slug: str, job_id: int) -> HttpResponse:
    stream = _steered(request, stream_slug)
    job = selectors.import_job_in_stream(stream=stream, job_id=job_id)
    refuse_back_to(request, _job_url(job))
    services.import_discard(job_id=job.pk, stream_id=stream.pk, actor=request_actor(request))
    messages.success(request, f"The import of {job.file_name} was discarded; its file is deleted.")
    return redirect("intake:import-start", stream_slug=stream.slug)


@require_GET
def import_job(request: HtmxHttpRequest, stream_slug: str, job_id: int) -> HttpResponse:
    """The import's progress, polled while it runs (a reload shows where it is), then
    its report."""
    stream = stream_access(actor=request_actor(request), slug=stream_slug)
    job = selectors.import_job_in_stream(stream=stream, job_id=job_id)
    steers = actor_steers(actor=request_actor(request), stream=stream)
    if job.state in DRAFT_STATES and steers:
        page = "import-mapping" if job.state == ImportState.UPLOADED else "import-preview"
        return redirect(_job_url(job, page))
    if import_resume_in_process(job):
        job = selectors.import_job_in_stream(stream=stream, job_id=job_id)
    context = {
        "stream": stream,
        "job": job,
        "report": selectors.import_report(job=job),
        "can_steer": steers,
        "runs_in_process": imports_run_in_process(),
    }
    template = "intake/job.html#progress" if request.htmx else "intake/job.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def import_cancel(request: HtmxHttpRequest, stream_slug: str, job_id: int) -> HttpResponse:
    """Cancel a running import, asked first; also remove its prospects from the queue."""
    stream = _steered(request, stream_slug)
    job = selectors.import_job_in_stream(stream=stream, job_id=job_id)
    if request.method == "GET" and job.state not in WORK_STATES:
        return redirect(_job_url(job))
    if request.method == "POST":
        refuse_back_to(request, _job_url(job))
        form = CancelForm(request.POST)
        remove = form.is_valid() and form.cleaned_data["remove_queued"]
        result = services.import_cancel(
            job_id=job.pk, stream_id=stream.pk, actor=request_actor(request), remove_queued=remove
        )
        messages.success(request, _cancelled_message(result))
        return HttpResponseRedirect(_job_url(job), status=303)
    context = {"stream": stream, "job": job, "queued": selectors.intake_queued_by(job=job)}
    return render(request, "intake/cancel.html", context)


def _cancelled_message(result: services.CancelResult) -> str:
    done = "The import was cancelled" if result.cancelled else "The import had ended already"
    if result.removed:
        return f"{done}; {result.removed} of its prospects were taken out of the intake queue."
    return f"{done}."


@require_GET
def import_rejected_rows(
    request: HtmxHttpRequest, stream_slug: str, job_id: int
) -> StreamingHttpResponse:
    """Every row the import rejected, as CSV (streamed), to fix and import again."""
    stream = _steered(request, stream_slug)
    job = selectors.import_job_in_stream(stream=stream, job_id=job_id)
    pieces = selectors.rejected_rows_csv(job=job)
    services.import_rejected_rows_record(
        job_id=job.pk, stream_id=stream.pk, actor=request_actor(request)
    )
    response = StreamingHttpResponse(pieces, content_type="text/csv; charset=utf-8")
    filename = f"{stream.slug}-import-{job.pk}-rejected-rows.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def intake_queue(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    stream = stream_access(actor=request_actor(request), slug=stream_slug)
    page = PageForm(request.GET)
    number = page.cleaned_data["page"] if page.is_valid() and page.cleaned_data["page"] else 1
    context = {
        "stream": stream,
        "queue": selectors.intake_queue_page(stream=stream, page=number),
        "can_manage": actor_steers(actor=request_actor(request), stream=stream),
    }
    return render(request, "intake/queue.html", context)


@require_GET
def intake_badge(request: HtmxHttpRequest, stream_slug: str) -> HttpResponse:
    """The board's "N waiting in intake" link (nothing when none wait)."""
    stream = stream_access(actor=request_actor(request), slug=stream_slug)
    context = {"stream": stream, "waiting": selectors.intake_waiting_count(stream=stream)}
    return render(request, "intake/partials/badge.html", context)


def _queue_write(request: HtmxHttpRequest, stream_slug: str) -> tuple[ValueStream, str]:
    stream = stream_access(actor=request_actor(request), slug=stream_slug)
    back = reverse("intake:queue", args=[stream.slug])
    refuse_back_to(request, back)
    return stream, back


@require_POST
def intake_item_remove(request: HtmxHttpRequest, stream_slug: str, item_id: int) -> HttpResponse:
    stream, back = _queue_write(request, stream_slug)
    services.intake_item_remove(item_id=item_id, stream_id=stream.pk, actor=request_actor(request))
    messages.success(request, "The prospect was taken out of the intake queue.")
    return HttpResponseRedirect(back, status=303)


@require_POST
def intake_item_retry(request: HtmxHttpRequest, stream_slug: str, item_id: int) -> HttpResponse:
    stream, back = _queue_write(request, stream_slug)
    services.intake_item_retry(item_id=item_id, stream_id=stream.pk, actor=request_actor(request))
    messages.success(request, "The prospect is back in line.")
    return HttpResponseRedirect(back, status=303)
