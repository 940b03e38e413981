// Toasts on every page: dismissed by their button; a success fades after five seconds.
(function () {
  "use strict";

  const SUCCESS_SECONDS = 5;

  document.addEventListener("click", function (event) {
    const close = event.target.closest(".toast-close");
    if (close) {
      close.closest(".toast").remove();
    }
  });

  // ---- A failed request: say so, and offer to reload ----
  // The server answers refusals with 200 and a message of its own; an error status (the
  // page expired, the server failed) or no answer at all reaches here, and would
  // otherwise pass silently. A 401 never does: htmx follows its HX-Redirect to log in.

  function failureMessage(xhr) {
    const status = xhr ? xhr.status : 0;
    const type = xhr ? xhr.getResponseHeader("Content-Type") || "" : "";
    if (type.indexOf("text/plain") === 0 && xhr.responseText && xhr.responseText.length < 300) {
      return xhr.responseText;
    }
    if (status === 0) {
      return "Could not reach the server, so nothing was saved. Check the connection, then reload.";
    }
    if (status === 403) {
      return "Not allowed, or this page has expired: nothing was saved. Reload the page.";
    }
    if (status === 404) {
      return "That is no longer there (deleted, or moved to another stream). Reload the page.";
    }
    if (status >= 500) {
      return "The server could not do that just now (error " + status + "). Reload the page to see what was saved.";
    }
    return "That request failed (error " + status + "). Reload the page to see the current state.";
  }

  function showFailure(message) {
    const box = document.getElementById("toasts");
    if (!box) {
      return;
    }
    // One at a time: a poll or a retry failing again says nothing new.
    box.querySelectorAll(".toast-failure").forEach(function (old) {
      old.remove();
    });
    const toast = document.createElement("div");
    toast.className = "toast toast-error toast-failure";
    toast.setAttribute("role", "alert");
    const text = document.createElement("p");
    text.textContent = message;
    const reload = document.createElement("button");
    reload.type = "button";
    reload.className = "toast-reload";
    reload.textContent = "Reload the page";
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";
    toast.append(text, reload, close);
    box.append(toast);
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest(".toast-reload")) {
      window.location.reload();
    }
  });

  // A request the page makes by itself (data-background, e.g. the intake badge) says
  // nothing when it fails: nothing was asked of the user's, nothing is lost.
  function background(event) {
    const elt = event.detail && event.detail.elt;
    return Boolean(elt && elt.closest && elt.closest("[data-background]"));
  }

  document.addEventListener("htmx:responseError", function (event) {
    if ((event.detail.xhr && event.detail.xhr.status === 401) || background(event)) {
      return;
    }
    showFailure(failureMessage(event.detail.xhr));
  });

  document.addEventListener("htmx:sendError", function (event) {
    if (!background(event)) {
      showFailure(failureMessage(null));
    }
  });

  document.addEventListener("htmx:oobAfterSwap", function () {
    document.querySelectorAll(".toast-success:not([data-fading])").forEach(function (toast) {
      toast.dataset.fading = "true";
      window.setTimeout(function () {
        toast.remove();
      }, SUCCESS_SECONDS * 1000);
    });
  });
})();
