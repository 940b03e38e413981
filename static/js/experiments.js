// The plan forms (a new plan, and a plan's edit page): show the scope field (column or
// channel) the chosen metric needs, only the chosen cycle's columns (the edit page has
// no cycle to choose: its columns are its cycle's), and the target's unit. Without
// JavaScript both fields show, with hints, and the server ignores the one the metric does
// not take. Idempotent.
(function () {
  "use strict";

  function wire(form) {
    if (form.dataset.scopeWired) {
      return;
    }
    form.dataset.scopeWired = "true";
    const metric = form.querySelector("select[data-scopes]");
    const cycle = form.querySelector("select[name=cycle]");
    const column = form.querySelector("select[name=column]");
    if (!metric) {
      return;
    }
    const scopes = JSON.parse(metric.dataset.scopes);
    const units = JSON.parse(metric.dataset.units || "{}");
    const unit = form.querySelector("[data-unit-for=target]");

    function update() {
      const scope = scopes[metric.value];
      if (unit) {
        unit.textContent = units[metric.value] ? "Unit: " + units[metric.value] : "";
        unit.hidden = !units[metric.value];
      }
      form.querySelectorAll("[data-scope-field]").forEach(function (field) {
        field.hidden = field.dataset.scopeField !== scope;
      });
      if (column && cycle) {
        const prefix = cycle.options[cycle.selectedIndex].text + " / ";
        Array.from(column.options).forEach(function (option) {
          option.hidden = Boolean(option.value) && option.text.indexOf(prefix) !== 0;
        });
        const chosen = column.options[column.selectedIndex];
        if (chosen && chosen.hidden) {
          column.value = "";
        }
      }
    }

    metric.addEventListener("change", update);
    if (cycle) {
      cycle.addEventListener("change", update);
    }
    update();
  }

  function wireAll() {
    document.querySelectorAll("form.plan-form").forEach(wire);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wireAll);
  } else {
    wireAll();
  }
})();
