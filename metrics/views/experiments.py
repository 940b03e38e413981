"""A stream's PDCA experiments: the list per cycle with the plan form, one experiment's
page with its Plan, Do, Check and Act, and its plan's edit page (before the start).
Members see them; the steps are offered to those who run them
(pdca.selectors.experiment_runner) when their stage and dates allow
(pdca.selectors.experiment_steps), and refused by the services for anyone else (vsm.http
answers the refusal). Every form names the version of the experiment it was shown with.

The step and Act URLs take POST; a GET (a bookmarked or reloaded step) is sent on to the
experiment's page (303). A successful form goes to the top of the page it leads to
(``#main``, where the message shows), not to the anchor the form was posted to."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from boards import selectors as board_selectors
from metrics import experiments as measuring
from metrics.forms.experiments import (
    ExperimentActForm,
    ExperimentEditForm,
    ExperimentPlanForm,
    ExperimentStepForm,
)
from metrics.selectors.experiments import (
    experiment_in_stream,
    experiment_page_get,
    experiment_teams_run_by,
)
from pdca import services as pdca_services
from pdca.errors import ExperimentNotRunning
from pdca.models import Experiment, day_text
from pdca.selectors import (
    RUNNERS_ONLY,
    ExperimentQuery,
    experiment_runner,
    experiment_scope_names,
    experiment_steps,
    experiments_by_cycle,
    person_name,
)
from vsm.actors import Actor, request_actor
from vsm.errors import DomainError, InvalidInput, PermissionRefused, Stale
from vsm.http import form_status, refusals_shown_on, refuse_back_to, respond_to_refusals
from vsm.models import ValueStream

Step = Callable[..., Experiment]


def _measured(measure: Callable[..., Experiment]) -> Step:
    """A measured step (start, check) for the version the user saw."""

    def step(*, experiment: Experiment, actor: Actor, expected_version: int) -> Experiment:
        return measure(experiment_id=experiment.pk, actor=actor, expected_version=expected_version)

    return step


def _stop(*, experiment: Experiment, actor: Actor, expected_version: int) -> Experiment:
    return pdca_services.experiment_stop(
        experiment_id=experiment.pk, actor=actor, expected_version=expected_version
    )


# The Do and Check steps a button posts: each measures (or stops) and records.
STEPS: dict[str, tuple[Step, str]] = {
    "start": (
        _measured(measuring.experiment_baseline_start),
        "Started: the baseline is measured and frozen.",
    ),
    "stop": (_stop, "Stopped: the Check measures the window up to yesterday."),
    "check": (_measured(measuring.experiment_check), "Checked: the measured value is recorded."),
}


@require_http_methods(["GET", "POST"])
def experiments(request: HttpRequest, stream_slug: str) -> HttpResponse:
    """The stream's experiments per cycle; POST plans one (back to its page), or shows
    the form again with the reason and what was typed."""
    actor = request_actor(request)
    stream = board_selectors.stream_for_actor(actor=actor, slug=stream_slug)
    teams = experiment_teams_run_by(actor=actor, stream=stream)
    if request.method == "POST" and not teams:
        # No form to show the refusal on: back to the list, which says who plans.
        refuse_back_to(request, _top(reverse("metrics:experiments", args=[stream.slug])))
        raise PermissionRefused(RUNNERS_ONLY, data={"stream_id": stream.pk})
    form = ExperimentPlanForm(request.POST or None, stream=stream, teams=teams)
    if request.method == "POST" and form.is_valid():
        with refusals_shown_on(form, request):
            experiment = pdca_services.experiment_plan(actor=actor, **form.plan())
            messages.success(request, f"Planned. {_start_when(experiment)}")
            return _to_top(stream, experiment.pk)
    context = {
        "stream": stream,
        "cycles": experiments_by_cycle(ExperimentQuery(stream=stream)),
        "form": form if teams else None,
        "runners_only": RUNNERS_ONLY,
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
    experiment = page.experiment
    context = {
        "stream": stream,
        "page": page,
        "experiment": experiment,
        "steps": experiment_steps(experiment),
        "scope_name": experiment_scope_names([experiment])[experiment.pk],
        "act_form": act_form,
        "runners_only": RUNNERS_ONLY,
    }
    return render(
        request, "metrics/experiment.html", context, status=form_status(request, act_form)
    )


@require_http_methods(["GET", "POST"])
def experiment_edit(request: HttpRequest, stream_slug: str, experiment_id: int) -> HttpResponse:
    """The plan form prefilled, before the start; POST saves it for the version the user
    saw (back to the page), or shows the form again with the reason and what was typed;
    for a plan changed meanwhile, also the plan as saved now and, on each field typed
    otherwise, the value saved."""
    actor = request_actor(request)
    stream, experiment = _in_stream(actor, stream_slug, experiment_id)
    teams = experiment_teams_run_by(actor=actor, stream=stream)
    form = ExperimentEditForm(
        request.POST or None, experiment=experiment, stream=stream, teams=teams
    )
    if request.method == "POST" and form.is_valid():
        with refusals_shown_on(form, request):
            saved = pdca_services.experiment_update_plan(
                experiment_id=experiment.pk, actor=actor, **form.changes()
            )
            messages.success(request, f"Plan saved. {_start_when(saved)}")
            return _to_top(stream, saved.pk)
        _, experiment = _in_stream(actor, stream_slug, experiment_id)  # as saved now
        if isinstance(getattr(form, "refusal", None), Stale):
            form.mark_saved(experiment)
    context = {
        "stream": stream,
        "experiment": experiment,
        "form": form,
        "can_run": experiment_runner(actor=actor, stream=stream, team_id=experiment.team_id),
        "steps": experiment_steps(experiment),
        "scope_name": experiment_scope_names([experiment])[experiment.pk],
        "runners_only": RUNNERS_ONLY,
    }
    template = "metrics/experiment_edit.html"
    return render(request, template, context, status=form_status(request, form))


@require_http_methods(["GET", "POST"])
def experiment_step(
    request: HttpRequest, stream_slug: str, experiment_id: int, step: str
) -> HttpResponse:
    """Start, stop or check the version shown; a refusal comes back as a message on the
    experiment's page (a stop refused because it was stopped meanwhile: as news)."""
    actor = request_actor(request)
    stream, experiment = _in_stream(actor, stream_slug, experiment_id)
    page_url = reverse("metrics:experiment", args=[stream.slug, experiment.pk])
    if request.method == "GET":
        return HttpResponseRedirect(page_url, status=303)
    if step == "stop":
        respond_to_refusals(request, _stop_refused(request, actor, stream, experiment.pk))
    else:
        refuse_back_to(request, page_url)
    form = ExperimentStepForm(request.POST)
    if not form.is_valid():
        raise InvalidInput("That step did not say which version of the experiment it saw.")
    service, done = STEPS[step]
    service(experiment=experiment, actor=actor, expected_version=form.cleaned_data["version"])
    messages.success(request, done)
    return HttpResponseRedirect(page_url)


def _stop_refused(
    request: HttpRequest, actor: Actor, stream: ValueStream, experiment_id: int
) -> Callable[[DomainError], HttpResponse]:
    """A stop refused because the experiment stopped meanwhile (another tab, another
    runner, its window's end) got what it asked for: say so as news, not as an error."""
    page_url = reverse("metrics:experiment", args=[stream.slug, experiment_id])

    def respond(error: DomainError) -> HttpResponse:
        if isinstance(error, Stale | ExperimentNotRunning):
            now = experiment_in_stream(actor=actor, stream=stream, experiment_id=experiment_id)
            if now.stopped_at is not None:
                when = now.stopped_at.strftime("%H:%M")
                by = (
                    f"by {person_name(now.stopped_by_id)}"
                    if now.stopped_by_id is not None or now.stopped_early
                    else "at its window's end"
                )
                messages.info(
                    request,
                    f"It was stopped meanwhile {by}, {day_text(now.stopped_at.date())} "
                    f"{when}: nothing more to stop.",
                )
                return HttpResponseRedirect(page_url, status=303)
        messages.error(request, error.message)
        return HttpResponseRedirect(page_url, status=303)

    return respond


@require_http_methods(["GET", "POST"])
def experiment_act(request: HttpRequest, stream_slug: str, experiment_id: int) -> HttpResponse:
    """Adopt, adapt (to the follow-up's edit page, to revise its plan) or abandon (after
    the Check, in the Do without one, or a plan withdrawn before it starts), with notes."""
    actor = request_actor(request)
    stream, _ = _in_stream(actor, stream_slug, experiment_id)
    if request.method == "GET":
        page_url = reverse("metrics:experiment", args=[stream.slug, experiment_id])
        return HttpResponseRedirect(page_url, status=303)
    form = ExperimentActForm(request.POST)
    if form.is_valid():
        with refusals_shown_on(form, request):
            acted = pdca_services.experiment_act(
                experiment_id=experiment_id, actor=actor, **form.act()
            )
            decided = f"Decided: {acted.experiment.get_decision_display()}."
            if (follow_up := acted.follow_up) is not None:
                messages.success(
                    request,
                    f"{decided} Its follow-up is planned from {day_text(follow_up.window_start)}: "
                    "revise its hypothesis, target and window before it starts.",
                )
                edit_url = reverse("metrics:experiment-edit", args=[stream.slug, follow_up.pk])
                return HttpResponseRedirect(_top(edit_url))
            if acted.experiment.withdrawn:
                decided = "Withdrawn: the plan will not start. It stays listed, abandoned."
            messages.success(request, decided)
            return _to_top(stream, experiment_id)
    return _page(request, stream_slug, experiment_id, form)


def _in_stream(
    actor: Actor, stream_slug: str, experiment_id: int
) -> tuple[ValueStream, Experiment]:
    """The page's stream and the experiment, if it is one of it. Raises: StreamNotFound,
    ExperimentNotFound (a 404 for both)."""
    stream = board_selectors.stream_for_actor(actor=actor, slug=stream_slug)
    return stream, experiment_in_stream(actor=actor, stream=stream, experiment_id=experiment_id)


def _top(url: str) -> str:
    """``url`` at the top of its page, where the messages are: a redirect without a
    fragment would keep the one of the form's action (``#plan``, ``#act``)."""
    return f"{url}#main"


def _to_top(stream: ValueStream, experiment_id: int) -> HttpResponse:
    """To the experiment's page, at its top."""
    return HttpResponseRedirect(
        _top(reverse("metrics:experiment", args=[stream.slug, experiment_id]))
    )


def _start_when(experiment: Experiment) -> str:
    return f"Start it in its window's first week, from {day_text(experiment.window_start)}."
