// The experiment pages' forms. Idempotent; without JavaScript every form still works.
//
// - The plan forms (a new plan, a plan's edit page): show the scope field (column or
//   channel) the chosen metric needs, only the chosen cycle's columns (the edit page has
//   no cycle to choose: its columns are its cycle's), and the target's unit. Without
//   JavaScript both fields show, with hints, and the server ignores the one the metric
//   does not take.
// - Every form that posts is sent once: Enter pressed twice or a double click would
//   plan two experiments. Its buttons are disabled once it is sent, and enabled again
//   when the page is shown again (the back button, the back-forward cache).
// - A form with data-confirm="<dialog id>" (Start, Stop early) opens that dialog first;
//   the dialog's button with value="confirm" sends the form, any other way out does not.
// (A textarea's character count is js/char-count.js's, on every page.)
(function () {
  "use strict";

  function wireScope(form) {
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

  function submitButtons(form) {
    return Array.from(form.querySelectorAll("button, input[type=submit]")).filter(
      function (button) {
        return button.type === "submit";
      }
    );
  }

  // Ready to be sent again: on the page shown anew, or a confirmation turned down.
  function release(form) {
    delete form.dataset.sending;
    delete form.dataset.confirmed;
    submitButtons(form).forEach(function (button) {
      if (button.dataset.sendingDisabled) {
        button.disabled = false;
        delete button.dataset.sendingDisabled;
      }
    });
  }

  function wireOnce(form) {
    const dialog = form.dataset.confirm ? document.getElementById(form.dataset.confirm) : null;
    const confirms = dialog && typeof dialog.showModal === "function";
    if (confirms) {
      dialog.addEventListener("close", function () {
        if (dialog.returnValue !== "confirm") {
          return;
        }
        form.dataset.confirmed = "true";
        form.requestSubmit();
      });
    }
    form.addEventListener("submit", function (event) {
      if (form.dataset.sending) {
        event.preventDefault();
        return;
      }
      if (confirms && !form.dataset.confirmed) {
        event.preventDefault();
        dialog.returnValue = "";
        dialog.showModal();
        return;
      }
      form.dataset.sending = "true";
      // After the event: a button disabled while it is being sent would leave the data.
      window.setTimeout(function () {
        submitButtons(form).forEach(function (button) {
          if (!button.disabled) {
            button.disabled = true;
            button.dataset.sendingDisabled = "true";
          }
        });
      }, 0);
    });
  }

  function wireAll() {
    document.querySelectorAll("main form").forEach(function (form) {
      if (form.dataset.experimentWired) {
        return;
      }
      form.dataset.experimentWired = "true";
      if (form.classList.contains("plan-form")) {
        wireScope(form);
      }
      if (form.method === "post") {
        wireOnce(form);
      }
    });
  }

  window.addEventListener("pageshow", function () {
    document.querySelectorAll("main form[data-experiment-wired]").forEach(release);
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wireAll);
  } else {
    wireAll();
  }
})();
