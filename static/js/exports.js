// The Export menus (templates/exports/partials/): the board's card exports follow the
// filter bar, which htmx changes without reloading the page, so a link carries the
// filters the bar shows when it is used; a menu closes on a click elsewhere or Escape.
// Idempotent: listeners are set once on the document, whatever includes the script.
(function () {
  "use strict";
  if (window.vsmExportMenus) return;
  window.vsmExportMenus = true;

  function filterForm(link) {
    const toolbar = link.closest(".board-toolbar");
    return toolbar ? toolbar.querySelector("form.filters") : null;
  }

  function withFilters(link) {
    const form = link.hasAttribute("data-export-filters") ? filterForm(link) : null;
    if (!form) return;
    const params = new URLSearchParams();
    if (link.hasAttribute("data-export-closed")) params.append("closed", "1");
    for (const [name, value] of new FormData(form)) {
      if (typeof value === "string" && value !== "") params.append(name, value);
    }
    const url = new URL(link.href, document.baseURI);
    url.search = params.toString();
    link.href = url.pathname + url.search;
  }

  function refresh(scope) {
    scope.querySelectorAll("a[data-export-filters]").forEach(withFilters);
  }

  document.addEventListener("toggle", function (event) {
    const menu = event.target;
    if (menu instanceof HTMLDetailsElement && menu.matches(".export-menu") && menu.open) {
      refresh(menu);
    }
  }, true);

  document.addEventListener("change", function (event) {
    if (event.target.closest && event.target.closest(".board-toolbar form.filters")) refresh(document);
  });
  document.addEventListener("input", function (event) {
    if (event.target.closest && event.target.closest(".board-toolbar form.filters")) refresh(document);
  });

  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.export-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
    const link = event.target.closest && event.target.closest(".export-items a");
    if (link) {
      withFilters(link);
      // The download starts; the page stays: close the menu behind it.
      link.closest("details").open = false;
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    const menu = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("details.export-menu[open]")
      : null;
    if (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
})();
