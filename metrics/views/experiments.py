"""A stream's PDCA experiments: the list per cycle with the plan form, and one
experiment's page with its Plan, Do, Check and Act. Members see them; the steps are
offered to those who run them (pdca.selectors.experiment_runner) and refused by the
services for anyone else (vsm.http answers the refusal)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from boards import selectors as board_selectors
from metrics import experiments as measuring
from metrics.forms.experiments import ExperimentActForm, ExperimentPlanForm
from metrics.selectors.experiments import (
    experiment_in_stream,
    experiment_page_get,
    experiment_teams_run_by,
)
from pdca import services as pdca_services
from pdca.models import Experiment
from pdca.selectors import ExperimentQuery, experiments_by_cycle
from vsm.actors import Actor, request_actor
from vsm.http import form_status, refusals_shown_on
from vsm.models import ValueStream


def _stop(*, experiment_id: int, actor: Actor) -> Experiment:
    return pdca_services.experiment_stop(experiment_id=experiment_id, actor=actor)


# The Do and Check steps a button posts: each measures (or stops) and records.
STEPS: dict[str, tuple[Callable[..., Experiment], str]] = {
    "start": (measuring.experiment_baseline_start, "Started: the baseline is measured and frozen."),
    "stop": (_stop, "Stopped: the Check measures the window up to yesterday."),
    "check": (measuring.experiment_check, "Checked: the measured value is recorded."),
}


@require_http_methods(["GET", "POST"])
def experiments(request: HttpRequest, stream_slug: str) -> HttpResponse:
    """The stream's experiments per cycle; POST plans one (back to its page), or shows
    the form again with the reason and what was typed."""
    actor = request_actor(request)
    stream = board_selectors.stream_for_actor(actor=actor, slug=stream_slug)
    teams = experiment_teams_run_by(actor=actor, stream=stream)
    form = ExperimentPlanForm(request.POST or None, stream=stream, teams=teams)
    if request.method == "POST" and form.is_valid():
        with refusals_shown_on(form, request):
            experiment = pdca_services.experiment_plan(actor=actor, **form.plan())
            messages.success(request, "Planned. Start it in its window's first week.")
            return redirect(
                "metrics:experiment", stream_slug=stream.slug, experiment_id=experiment.pk
            )
    context = {
        "stream": stream,
        "cycles": experiments_by_cycle(ExperimentQuery(stream=stream)),
        "form": form if teams else None,
    }
    return render(request, "metrics/experiments.html", context, status=form_status(request, form))


@require_http_methods(["GET"])
def experiment(request: HttpRequest, stream_slug: str, experiment_id: int) -> HttpResponse:
    return _page(request, stream_slug, experiment_id, ExperimentActForm())


def _page(
    request: HttpRequest, stream_slug: str, experiment_id: int, act_form: ExperimentActForm
) -> HttpResponse:
    actor = request_actor(request)
    stream = board_selectors.stream_for_actor(actor=actor, slug=stream_slug)
    page = experiment_page_get(actor=actor, stream=stream, experiment_id=experiment_id)
    context = {"stream": stream, "page": page, "experiment": page.experiment, "act_form": act_form}
    return render(
        request, "metrics/experiment.html", context, status=form_status(request, act_form)
    )


@require_POST
def experiment_step(
    request: HttpRequest, stream_slug: str, experiment_id: int, step: str
) -> HttpResponse:
    """Start, stop or check; a refusal comes back as a message on the page (vsm.http)."""
    actor = request_actor(request)
    stream = _stream_of(actor, stream_slug, experiment_id)
    service, done = STEPS[step]
    service(experiment_id=experiment_id, actor=actor)
    messages.success(request, done)
    return redirect("metrics:experiment", stream_slug=stream.slug, experiment_id=experiment_id)


@require_POST
def experiment_act(request: HttpRequest, stream_slug: str, experiment_id: int) -> HttpResponse:
    """Adopt, adapt (to the follow-up's page) or abandon, with notes."""
    actor = request_actor(request)
    stream = _stream_of(actor, stream_slug, experiment_id)
    form = ExperimentActForm(request.POST)
    if form.is_valid():
        with refusals_shown_on(form, request):
            acted = pdca_services.experiment_act(
                experiment_id=experiment_id, actor=actor, **form.cleaned_data
            )
            follow_up = acted.follow_up
            messages.success(request, f"Decided: {acted.experiment.get_decision_display()}.")
            shown = follow_up.pk if follow_up is not None else experiment_id
            return redirect("metrics:experiment", stream_slug=stream.slug, experiment_id=shown)
    return _page(request, stream_slug, experiment_id, form)


def _stream_of(actor: Actor, stream_slug: str, experiment_id: int) -> ValueStream:
    """The page's stream, if the experiment is one of it. Raises: StreamNotFound,
    ExperimentNotFound (a 404 for both)."""
    stream = board_selectors.stream_for_actor(actor=actor, slug=stream_slug)
    experiment_in_stream(actor=actor, stream=stream, experiment_id=experiment_id)
    return stream
