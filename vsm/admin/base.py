"""How every admin of the project reads its input and writes: through the services.

``ProjectAdmin`` is the base of every admin of ours: crafted list input (the rows an
action is for, a list edit's row ids, the date drill-down) is answered with a message,
never a 500. ``ServiceAdmin`` and ``ServiceTabularInline`` save and delete by calling
services, and a service's refusal becomes an error on the form the admin typed into
(its field, the row of a list edit or an inline, or the form as a whole), never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms.formsets import DELETION_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from vsm.actors import request_actor
from vsm.audit import audit_refusal_record
from vsm.errors import DomainError, NotFound, PermissionRefused, Stale
from vsm.forms import RowChoiceField, WholeNumberField, row_id, whole_number

_REFUSAL_ATTRIBUTE = "vsm_admin_refusal"
_RERUN_ATTRIBUTE = "vsm_admin_rerun"

# The date drill-down of a list: Django builds a date of them, and a number no date
# holds fails that date (an OverflowError Django does not catch).
_DATE_PARTS: Final = {"year": (1, 9999), "month": (1, 12), "day": (1, 31)}
# What Django's list filters put in a list's URL after a field: a choice, a boolean or
# a related row (exact, isnull), a date range (gte, lt), an empty value (isempty).
_LIST_FILTER_LOOKUPS: Final = frozenset({"exact", "isnull", "gte", "lt", "isempty"})


@dataclass(frozen=True)
class _Refusal:
    """A service's refusal during an admin save, and the form it is about: the main
    form, or the form ``form_index`` of the inline formset ``formset_prefix``."""

    error: DomainError
    field: str
    formset_prefix: str = ""
    form_index: int = 0
    deleting: bool = False
    row: str = ""

    @property
    def message(self) -> str:
        if isinstance(self.error, Stale):
            return f"{self.error.message} Reload this page to see what changed."
        return self.error.message


def _refusal(request: HttpRequest) -> _Refusal | None:
    return getattr(request, _REFUSAL_ATTRIBUTE, None)


def _form_showing(form_class: type[forms.BaseForm], refusal: _Refusal) -> type[forms.BaseForm]:
    """``form_class``, with the refusal as an error: on its field if the form has it."""

    class RefusedForm(form_class):  # type: ignore[valid-type,misc]
        def clean(self) -> dict[str, Any]:
            cleaned: dict[str, Any] = super().clean()
            self.add_error(refusal.field if refusal.field in self.fields else None, refusal.message)
            return cleaned

    RefusedForm.__name__ = form_class.__name__
    return RefusedForm


def _formset_showing(formset_class: type[Any], refusal: _Refusal) -> type[Any]:
    """``formset_class``, with the refusal on the inline form it is about (or, for a
    row being deleted, above the formset: a deleted row's errors are not shown)."""

    class RefusedFormSet(formset_class):
        def clean(self) -> None:
            super().clean()
            if self.prefix != refusal.formset_prefix:
                return
            if refusal.deleting or refusal.form_index >= len(self.forms):
                raise ValidationError(
                    f"{refusal.row}: {refusal.message}" if refusal.row else refusal.message
                )
            form = self.forms[refusal.form_index]
            form.add_error(refusal.field if refusal.field in form.fields else None, refusal.message)

    return RefusedFormSet


def _refusing_stale_rows(formset_class: type[Any]) -> type[Any]:
    """``formset_class``, refusing a row that is no longer the row it was: deleted
    meanwhile by someone else, or (crafted) a row of another parent. Django would make
    it a new row (an inline) or refuse it on its hidden id, which no page shows."""

    class StaleRowsRefused(formset_class):
        def clean(self) -> None:
            super().clean()
            for form in self.initial_forms:
                if not form.instance._state.adding:
                    continue
                if self.can_delete and self._should_delete_form(form):
                    continue  # gone already, as asked: saving skips it
                form.add_error(None, _stale_row_message(self.model, form))

    return StaleRowsRefused


def _stale_row_message(model: type[models.Model], form: forms.BaseForm) -> str:
    pk = row_id(form.data.get(form.add_prefix(model._meta.pk.name)))
    if pk is not None and model._default_manager.filter(pk=pk).exists():
        return (
            "This row is not one of this page's rows; nothing was saved. Reload this page to "
            "see its rows."
        )
    return (
        "This row was removed meanwhile (someone else deleted it); nothing was saved. Reload "
        "this page to see the rows as they are now."
    )


def _adopt(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's object the row a service saved (its pk, its fields as stored)."""
    for field in obj._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


def delete_refusal(delete: Callable[[], None]) -> DomainError | None:
    """Whether the service refuses a delete: it is asked, and whatever it did is rolled
    back (its audit row and its announcement with it)."""
    try:
        with transaction.atomic():
            delete()
            transaction.set_rollback(True)
    except DomainError as error:
        return error
    return None


def _record_authorization_refusal(request: HttpRequest, action: str, error: DomainError) -> None:
    """Refused authorizations go to the audit log, in a transaction of their own (the
    admin's transaction was rolled back)."""
    if not isinstance(error, NotFound | PermissionRefused):
        return
    stream_id = error.data.get("stream_id")
    audit_refusal_record(
        actor=request_actor(request),
        action=action,
        error=error,
        stream_id=stream_id if isinstance(stream_id, int) else None,
    )


def _number_fields(db_field: models.Field, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The form fields of the admin's forms for ``db_field``: numbers and ids parsed as
    the apps' forms parse them (vsm.forms), "١" and 2**63 refused before any query."""
    if isinstance(db_field, models.ForeignKey):
        return {"form_class": RowChoiceField, **kwargs}
    if isinstance(db_field, models.IntegerField) and not db_field.choices:
        return {"form_class": WholeNumberField, **kwargs}
    return kwargs


class ProjectAdmin(admin.ModelAdmin):
    """The base of every admin of the project: input no row can answer is refused with
    a message before Django builds a query of it (a value no database key holds makes
    the query itself fail, a 500).

    Checked: the rows an action is for (``_selected_action``), the row ids of a list
    edit, the list's date drill-down, the id in a row's URL and the ids of its choices
    of other rows (RowChoiceField: "١" is no id, though ``int()`` reads it as 1).
    """

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        """Only the lookups the list's own filters and date drill-down make.

        Django lets a list's URL filter by any lookup of the model's own fields, and
        some fail in the database rather than in the form: ``?id__regex=(`` (a regular
        expression PostgreSQL refuses), ``?created_at__year=10000``, ``?id__in=`` with
        a number past 64 bits. Refused lookups answer 400 (DisallowedModelAdminLookup).
        """
        parts = lookup.split(models.constants.LOOKUP_SEP)
        own_parameters = {
            entry.parameter_name
            for entry in self.list_filter
            if isinstance(entry, type) and issubclass(entry, admin.SimpleListFilter)
        }
        if self.date_hierarchy:
            own_parameters |= {f"{self.date_hierarchy}__{part}" for part in _DATE_PARTS}
        if lookup in own_parameters:
            return super().lookup_allowed(lookup, value, request)
        filtered = {
            str(entry[0] if isinstance(entry, tuple) else entry).split("__")[0]
            for entry in self.list_filter
            if isinstance(entry, str | tuple)
        }
        # A bare field name is an exact match, as a list filter may link it.
        if parts[0] not in filtered or (len(parts) > 1 and parts[-1] not in _LIST_FILTER_LOOKUPS):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        if from_field is None and row_id(object_id) is None:
            return None  # the admin says that no such row exists
        return super().get_object(request, object_id, from_field)

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> Any:
        return super().formfield_for_dbfield(db_field, request, **_number_fields(db_field, kwargs))

    def response_action(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        action_location: admin.ActionLocation = admin.ActionLocation.CHANGE_LIST,
    ) -> HttpResponse | None:
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if any(row_id(value) is None for value in selected):
            self.message_user(
                request,
                "Nothing was done: the selection names rows that do not exist. Select the "
                "rows again.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset, action_location)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST" and "_save" in request.POST and self.list_editable:
            pattern = re.compile(rf"form-\d+-{re.escape(self.opts.pk.name)}$")
            ids = [v for k, v in request.POST.items() if pattern.match(k)]
            if any(row_id(value) is None for value in ids):
                self.message_user(
                    request,
                    "Nothing was changed: the list names rows that do not exist. Reload the "
                    "page and edit it again.",
                    messages.ERROR,
                )
                return HttpResponseRedirect(request.get_full_path())
        drilldown = self._date_drilldown_refused(request)
        if drilldown is not None:
            return drilldown
        return super().changelist_view(request, extra_context)

    def _date_drilldown_refused(self, request: HttpRequest) -> HttpResponse | None:
        """The list without its date drill-down, if a part of it is no date's."""
        if not self.date_hierarchy:
            return None
        names = {part: f"{self.date_hierarchy}__{part}" for part in _DATE_PARTS}
        if all(
            whole_number(value, min_value=low, max_value=high) is not None
            for part, (low, high) in _DATE_PARTS.items()
            for value in request.GET.getlist(names[part])
        ):
            return None
        params = request.GET.copy()
        for name in names.values():
            params.pop(name, None)
        self.message_user(
            request,
            "That date is not in the calendar: the list is shown for every date.",
            messages.WARNING,
        )
        query = params.urlencode()
        return HttpResponseRedirect(f"{request.path}?{query}" if query else request.path)


class ServiceAdmin(ProjectAdmin):
    """A ModelAdmin whose saves and deletes call services (``service_create``,
    ``service_update``, ``service_delete``), and whose inlines do the same
    (``ServiceTabularInline``).

    A refusal rolls the admin's transaction back (its own ``atomic`` block), and the
    page is shown again with the refusal as a form error, keeping what was typed. A
    delete is asked of the service first, in a transaction rolled back, so the page says
    why it is refused before anyone confirms; a refused list edit changes nothing and
    shows the list again as typed, the refusal on its row. A save whose page changed
    only inline rows does not update (nor record an update of) the row itself, and an
    inline or list row that is no longer the row the page showed is refused on its row.
    """

    # Where a refusal shows, when the service's field name differs from the form's:
    # {error field or code: form field}.
    refusal_fields: ClassVar[dict[str, str]] = {}
    # Fields that are set when a row is added and never changed afterwards.
    readonly_on_change: ClassVar[list[str]] = []

    def service_create(self, request: HttpRequest, obj: Any, form: forms.ModelForm) -> Any:
        raise NotImplementedError

    def service_update(self, request: HttpRequest, obj: Any, form: forms.ModelForm) -> Any:
        raise NotImplementedError

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError

    def refusal_field(self, error: DomainError) -> str:
        return self.refusal_fields.get(error.code) or self.refusal_fields.get(
            error.field, error.field
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return fields + self.readonly_on_change if obj is not None else fields

    def get_actions(
        self,
        request: HttpRequest,
        action_location: admin.ActionLocation = admin.ActionLocation.CHANGE_LIST,
    ) -> dict[str, Any]:
        # Deleting goes through a service, one row at a time, with its reasons to refuse.
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change and not form.has_changed():
            # Only the inlines changed (a cycle's columns, a control point's criteria):
            # the row itself is not updated, and no update of it is recorded.
            return
        try:
            saved = (
                self.service_update(request, obj, form)
                if change
                else self.service_create(request, obj, form)
            )
        except DomainError as error:
            if form.prefix:  # a row of the list's edit ("form-3"): the refusal goes there
                formset_prefix, _, index = form.prefix.rpartition("-")
                setattr(
                    request,
                    _REFUSAL_ATTRIBUTE,
                    _Refusal(
                        error=error,
                        field=self.refusal_field(error),
                        formset_prefix=formset_prefix,
                        form_index=int(index),
                        row=str(obj),
                    ),
                )
            raise
        _adopt(obj, saved)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.service_delete(request, obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        inline: ServiceTabularInline | None = getattr(formset, "service_inline", None)
        if inline is None:
            super().save_formset(request, form, formset, change)
            return
        inline.save_through_services(request, form.instance, formset)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form_class = super().get_form(request, obj, change, **kwargs)
        refusal = _refusal(request)
        if refusal is None or refusal.formset_prefix:
            return form_class
        return _form_showing(form_class, refusal)

    def get_formsets_with_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        refusal = _refusal(request)
        for formset_class, inline in super().get_formsets_with_inlines(request, obj):
            if refusal is not None and refusal.formset_prefix:
                formset_class = _formset_showing(formset_class, refusal)
            yield formset_class, inline

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            if getattr(request, _RERUN_ATTRIBUTE, False):
                raise  # shown by vsm.http's middleware: a message, and back
            refusal = _refusal(request)
            if refusal is None or refusal.error is not error:
                refusal = _Refusal(error=error, field=self.refusal_field(error))
                setattr(request, _REFUSAL_ATTRIBUTE, refusal)
            _record_authorization_refusal(request, f"admin.{self.opts.model_name}", error)
            setattr(request, _RERUN_ATTRIBUTE, True)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and self.has_delete_permission(request, obj):
            error = delete_refusal(lambda: self.service_delete(request, obj))
            if error is not None:
                return self._refused_delete(request, obj, error)
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            return self._refused_delete(request, obj, error)

    def _refused_delete(self, request: HttpRequest, obj: Any, error: DomainError) -> HttpResponse:
        _record_authorization_refusal(request, f"admin.{self.opts.model_name}", error)
        self.message_user(request, f"Not deleted: {error.message}", messages.ERROR)
        opts = self.opts
        return HttpResponseRedirect(
            reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=[obj.pk],
                current_app=self.admin_site.name,
            )
        )

    def get_changelist_formset(self, request: HttpRequest, **kwargs: Any) -> Any:
        formset_class = _refusing_stale_rows(super().get_changelist_formset(request, **kwargs))
        refusal = _refusal(request)
        if refusal is not None and refusal.formset_prefix:
            formset_class = _formset_showing(formset_class, refusal)
        return formset_class

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().changelist_view(request, extra_context)
        except DomainError as error:
            # The list edit's transaction was rolled back: no row changed.
            _record_authorization_refusal(request, f"admin.{self.opts.model_name}", error)
            refusal = _refusal(request)
            if (
                refusal is not None
                and refusal.error is error
                and not getattr(request, _RERUN_ATTRIBUTE, False)
            ):
                # The list again, as typed, with the refusal on the row it is about.
                setattr(request, _RERUN_ATTRIBUTE, True)
                return super().changelist_view(request, extra_context)
            self.message_user(request, f"Nothing was changed: {error.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class ServiceTabularInline(admin.TabularInline):
    """An inline whose rows are added, changed and deleted through services
    (``service_create``, ``service_update``, ``service_delete``, each given the parent
    row); its ModelAdmin must be a ``ServiceAdmin``."""

    refusal_fields: ClassVar[dict[str, str]] = {}

    def service_create(
        self, request: HttpRequest, parent: Any, obj: Any, form: forms.ModelForm
    ) -> Any:
        raise NotImplementedError

    def service_update(
        self, request: HttpRequest, parent: Any, obj: Any, form: forms.ModelForm
    ) -> Any:
        raise NotImplementedError

    def service_delete(self, request: HttpRequest, parent: Any, obj: Any) -> None:
        raise NotImplementedError

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest, **kwargs: Any
    ) -> Any:
        return super().formfield_for_dbfield(db_field, request, **_number_fields(db_field, kwargs))

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset_class = _refusing_stale_rows(super().get_formset(request, obj, **kwargs))
        formset_class.service_inline = self  # read by ServiceAdmin.save_formset
        inline = self
        form_class: type[Any] = formset_class.form

        class ServiceDeleteForm(form_class):
            def hand_clean_DELETE(self) -> None:
                # A row ticked for deletion says why its service refuses (the admin's
                # own check would name the protected rows of the move log instead).
                if self.cleaned_data.get(DELETION_FIELD_NAME) and not self.instance._state.adding:
                    error = delete_refusal(
                        lambda: inline.service_delete(request, obj, self.instance)
                    )
                    if error is not None:
                        raise ValidationError(error.message, code=error.code)

        formset_class.form = ServiceDeleteForm
        return formset_class

    def save_through_services(self, request: HttpRequest, parent: Any, formset: Any) -> None:
        """Deletes, then changes, then additions (so a freed name or order can be
        reused), each through its service; fills what the admin's history reads."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        deleted = formset.deleted_forms if formset.can_delete else []
        initial = list(enumerate(formset.initial_forms))
        extra = list(enumerate(formset.extra_forms, start=len(initial)))
        for index, form in initial:
            if form in deleted and not form.instance._state.adding:  # (else: gone already)
                self._attempt(request, formset, index, form, "delete")
                formset.deleted_objects.append(form.instance)
        for index, form in initial:
            if form not in deleted and form.has_changed():
                saved = self._attempt(request, formset, index, form, "update")
                formset.changed_objects.append((saved, form.changed_data))
        for index, form in extra:
            if form not in deleted and form.has_changed():
                saved = self._attempt(request, formset, index, form, "create")
                formset.new_objects.append(saved)

    def _attempt(
        self,
        request: HttpRequest,
        formset: Any,
        index: int,
        form: Any,
        write: Literal["create", "update", "delete"],
    ) -> Any:
        """``write`` ("create", "update" or "delete") the row of ``form`` through its
        service: an initial form's row is updated or deleted, never created anew."""
        parent = formset.instance
        try:
            if write == "delete":
                self.service_delete(request, parent, form.instance)
                return None
            if write == "create":
                return self.service_create(request, parent, form.instance, form)
            return self.service_update(request, parent, form.instance, form)
        except DomainError as error:
            field = self.refusal_fields.get(error.code) or self.refusal_fields.get(
                error.field, error.field
            )
            refusal = _Refusal(
                error=error,
                field=field,
                formset_prefix=formset.prefix,
                form_index=index,
                deleting=write == "delete",
            )
            setattr(request, _REFUSAL_ATTRIBUTE, refusal)
            raise


def changed(form: forms.ModelForm, *names: str) -> dict[str, Any]:
    """The cleaned values of those of ``names`` that the admin changed on ``form``."""
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


def pk_of(value: models.Model | None) -> int | None:
    return value.pk if value is not None else None


def limit_choices(form: forms.BaseForm, name: str, queryset: QuerySet[Any]) -> None:
    """Offer only ``queryset`` in the form's choice field ``name``, if the form has it
    (the services refuse anything else; this keeps the list to what they accept)."""
    field = form.fields.get(name)
    if isinstance(field, forms.ModelChoiceField):
        field.queryset = queryset
