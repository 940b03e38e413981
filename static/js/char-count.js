// Every page: a textarea with data-max-length counts its characters as they are typed
// ("1,234 of 2,000 characters"), instead of the browser's maxlength, which cuts a longer
// paste without a word: the count says how many are too many, and the server refuses
// them, keeping the text. Idempotent; also wires textareas that htmx swaps in (a card's
// history after a comment).
(function () {
  "use strict";

  function counted(value) {
    // Characters as the server counts them: code points, a line break as one, without
    // the blanks around the text (which are not kept).
    return Array.from(value.trim()).length;
  }

  function wireCount(textarea) {
    const limit = Number(textarea.dataset.maxLength);
    if (!limit) {
      return;
    }
    const count = document.createElement("small");
    count.className = "char-count";
    count.id = (textarea.id || textarea.name) + "-count";
    textarea.insertAdjacentElement("afterend", count);
    const described = textarea.getAttribute("aria-describedby");
    textarea.setAttribute("aria-describedby", (described ? described + " " : "") + count.id);

    function update() {
      const used = counted(textarea.value);
      const over = used - limit;
      count.textContent =
        used.toLocaleString("en") +
        " of " +
        limit.toLocaleString("en") +
        " characters" +
        (over > 0 ? ": " + over.toLocaleString("en") + " too many" : "");
      count.classList.toggle("is-over", over > 0);
    }

    textarea.addEventListener("input", update);
    update();
  }

  function wireAll() {
    document.querySelectorAll("main textarea[data-max-length]").forEach(function (textarea) {
      if (!textarea.dataset.countWired) {
        textarea.dataset.countWired = "true";
        wireCount(textarea);
      }
    });
  }

  document.addEventListener("htmx:load", wireAll);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wireAll);
  } else {
    wireAll();
  }
})();
