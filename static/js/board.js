// The board: drag and drop through SortableJS, dialogs, toasts and live updates.
// The server decides every move; this file only reports what the user did and
// shows what the server answers. Idempotent: safe to run again on swapped content.
(function () {
  "use strict";

  const POLL_MS = 2000;
  let dragging = false;
  let polling = null;

  function board() {
    return document.getElementById("board");
  }

  function urlFor(template, cardId) {
    // Templates are rendered with card id 0: ".../cards/0/move/".
    return template.replace("/cards/0/", "/cards/" + cardId + "/");
  }

  function neighbourId(element, direction) {
    let sibling = direction === "previous" ? element.previousElementSibling : element.nextElementSibling;
    while (sibling && !sibling.classList.contains("card")) {
      sibling = direction === "previous" ? sibling.previousElementSibling : sibling.nextElementSibling;
    }
    return sibling ? sibling.dataset.cardId : "";
  }

  function putBack(event) {
    // Undo the DOM move: the server has not accepted it (or a dialog must first).
    const reference = event.from.children[event.oldIndex] || null;
    event.from.insertBefore(event.item, reference);
  }

  function onDrop(event) {
    dragging = false;
    const card = event.item;
    const fromList = event.from;
    const toList = event.to;
    if (fromList === toList && event.oldIndex === event.newIndex) {
      return;
    }
    const root = board();
    if (fromList.dataset.cycleId !== toList.dataset.cycleId) {
      putBack(event);
      const url = urlFor(root.dataset.handoffUrlTemplate, card.dataset.cardId);
      htmx.ajax("GET", url + "?to_column=" + toList.dataset.columnId, { target: "#dialog-body" });
      return;
    }
    htmx.ajax("POST", urlFor(root.dataset.moveUrlTemplate, card.dataset.cardId), {
      values: {
        to_column: toList.dataset.columnId,
        after: neighbourId(card, "previous"),
        before: neighbourId(card, "next"),
        version: card.dataset.version,
        dragged: "1",
      },
      swap: "none",
    });
  }

  function initSortables(root) {
    root.querySelectorAll("ol.cards").forEach(function (list) {
      if (list.dataset.sortable === "1") {
        return;
      }
      list.dataset.sortable = "1";
      Sortable.create(list, {
        group: "board",
        draggable: ".card",
        filter: "button, a, .more-row",
        preventOnFilter: false,
        animation: 120,
        delayOnTouchOnly: true,
        delay: 150,
        forceFallback: false,
        onStart: function () {
          dragging = true;
        },
        onEnd: onDrop,
      });
    });
  }

  function dialog() {
    return document.getElementById("dialog");
  }

  function closeDialog() {
    // Only close: emptying the body would detach the form whose response htmx is
    // still swapping, and its out-of-band parts would find no targets.
    const element = dialog();
    if (element && element.open) {
      element.close();
    }
  }

  async function poll() {
    const root = board();
    if (!root || dragging || (dialog() && dialog().open) || document.hidden) {
      return;
    }
    const params = new URLSearchParams(window.location.search);
    params.set("version", root.dataset.version);
    try {
      const response = await fetch(root.dataset.pollUrl + "?" + params.toString(), {
        headers: { "HX-Request": "true" },
        credentials: "same-origin",
      });
      // A drag may have started while the request was in flight: never interrupt it.
      if (response.status !== 200 || dragging) {
        return;
      }
      const html = await response.text();
      if (!dragging && board()) {
        htmx.swap(board(), html, { swapStyle: "outerHTML" });
      }
    } catch (error) {
      // Offline for a moment: the next tick tries again.
    }
  }

  function startPolling() {
    if (polling === null) {
      polling = window.setInterval(poll, POLL_MS);
    }
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-dialog]")) {
      closeDialog();
    }
  });

  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "dialog-body") {
      const element = dialog();
      if (element && !element.open && event.detail.target.children.length) {
        element.showModal();
        const first = element.querySelector("input:not([type=hidden]), button, select, textarea, a");
        if (first) {
          first.focus();
        }
      }
    }
  });

  document.body.addEventListener("vsm:close-dialog", closeDialog);

  htmx.onLoad(function (content) {
    const root = board();
    if (root) {
      initSortables(root.contains(content) || content === root ? content : root);
      startPolling();
    }
  });
})();
