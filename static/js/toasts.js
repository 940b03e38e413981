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

  document.addEventListener("htmx:oobAfterSwap", function () {
    document.querySelectorAll(".toast-success:not([data-fading])").forEach(function (toast) {
      toast.dataset.fading = "true";
      window.setTimeout(function () {
        toast.remove();
      }, SUCCESS_SECONDS * 1000);
    });
  });
})();
