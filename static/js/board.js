// The board: drag and drop through SortableJS, dialogs, toasts and live updates, and
// the ways to see the whole stream (collapsed cycles, compact cards, the jump bar).
// The server decides every move; this file only reports what the user did and
// shows what the server answers. Idempotent: safe to run again on swapped content.
(function () {
  "use strict";

  const POLL_MS = 2000;
  // Ages are shown in minutes at the finest.
  const AGE_REFRESH_MS = 30000;
  const HIGHLIGHT_MS = 2600;
  let dragging = false;
  let polling = null;
  // Where focus goes when the dialog closes: the card it was about (its "Move to..."
  // button, or the name of a card just created), since the element that opened the
  // dialog was replaced meanwhile by the refreshed column.
  let pendingFocus = null;
  // The card of a drag whose request is in flight, and where it came from.
  let failedDropPlace = null;

  function board() {
    return document.getElementById("board");
  }

  function urlFor(template, cardId) {
    // Templates are rendered with card id 0: ".../cards/0/move/".
    return template.replace("/cards/0/", "/cards/" + cardId + "/");
  }

  // ---- What this user chose to see, per stream (kept in this browser) ----

  function prefsKey(name) {
    const root = board();
    return root && root.dataset.prefs ? root.dataset.prefs + "." + name : null;
  }

  function readPref(name, fallback) {
    const key = prefsKey(name);
    try {
      const stored = key && window.localStorage.getItem(key);
      return stored ? JSON.parse(stored) : fallback;
    } catch (error) {
      return fallback; // storage refused (private mode) or an unreadable value
    }
  }

  function writePref(name, value) {
    const key = prefsKey(name);
    try {
      if (key) {
        window.localStorage.setItem(key, JSON.stringify(value));
      }
    } catch (error) {
      // Not remembered; the choice still holds on this page.
    }
  }

  function collapsedCycles() {
    const ids = readPref("collapsed", []);
    return Array.isArray(ids) ? ids.map(String) : [];
  }

  function setCollapsed(section, collapsed) {
    section.classList.toggle("collapsed", collapsed);
    const toggle = section.querySelector(".cycle-toggle");
    if (toggle) {
      toggle.setAttribute("aria-expanded", collapsed ? "false" : "true");
    }
  }

  function toggleCycle(section, collapsed) {
    setCollapsed(section, collapsed);
    const id = section.dataset.cycleId;
    const others = collapsedCycles().filter(function (other) {
      return other !== id;
    });
    writePref("collapsed", collapsed ? others.concat([id]) : others);
  }

  function applyPrefs() {
    const root = board();
    if (!root) {
      return;
    }
    const collapsed = collapsedCycles();
    root.querySelectorAll("section.cycle").forEach(function (section) {
      setCollapsed(section, collapsed.indexOf(section.dataset.cycleId) !== -1);
    });
    const compact = readPref("density", "comfortable") === "compact";
    const main = document.getElementById("main");
    if (main) {
      main.classList.toggle("board-compact", compact);
    }
    const toggle = document.querySelector("[data-density-toggle]");
    if (toggle) {
      toggle.hidden = false;
      toggle.setAttribute("aria-pressed", compact ? "true" : "false");
    }
  }

  function expandCycleOf(element) {
    const section = element && element.closest("section.cycle");
    if (section && section.classList.contains("collapsed")) {
      toggleCycle(section, false);
    }
  }

  function showCard(cardId, options) {
    // Bring a card into view (its cycle expanded); options: highlight it, focus a part
    // of it (a selector), scroll smoothly to the middle rather than just into view.
    const card = document.getElementById("card-" + cardId);
    if (!card) {
      return;
    }
    expandCycleOf(card);
    if (options.scroll !== false) {
      card.scrollIntoView(
        options.centre
          ? { block: "center", inline: "center", behavior: "smooth" }
          : { block: "nearest", inline: "nearest" }
      );
    }
    if (options.highlight) {
      card.classList.add("just-added");
      window.setTimeout(function () {
        card.classList.remove("just-added");
      }, HIGHLIGHT_MS);
    }
    const target = options.focus && card.querySelector(options.focus);
    if (target) {
      target.focus({ preventScroll: true });
    }
  }

  function jumpTo(element) {
    expandCycleOf(element);
    element.scrollIntoView({ block: "nearest", inline: "start", behavior: "smooth" });
    element.classList.add("flash");
    window.setTimeout(function () {
      element.classList.remove("flash");
    }, 1200);
    element.focus({ preventScroll: true });
  }

  // ---- Drag and drop ----

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

  function placeBefore(event) {
    // Where the card was before the drop: the element that followed it in its list.
    const items = event.from.children;
    if (event.from !== event.to) {
      return items[event.oldIndex] || null;
    }
    return items[event.newIndex > event.oldIndex ? event.oldIndex : event.oldIndex + 1] || null;
  }

  function onDrop(event) {
    dragging = false;
    const card = event.item;
    const fromList = event.from;
    const toList = event.to;
    if (fromList === toList && event.oldIndex === event.newIndex) {
      return;
    }
    // If the move's request fails, the card goes back there (see "A failed request").
    failedDropPlace = { card: card, list: fromList, before: placeBefore(event) };
    const root = board();
    if (fromList.dataset.cycleId !== toList.dataset.cycleId) {
      putBack(event);
      pendingFocus = { cardId: card.dataset.cardId, focus: ".card-menu" };
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
      source: card,
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
        // The card's name (a link) drags the card too; a click on it still opens the
        // card (no drag, no move). Its "Move to..." button and "Show more" do not drag.
        filter: "button, .more-row",
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

  // ---- Dialog ----

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

  // ---- Live updates ----

  function shownParam(root) {
    // Columns that show more than a first page ("Show more"): a refresh shows as many.
    const pageSize = parseInt(root.dataset.pageSize || "0", 10);
    const pairs = [];
    root.querySelectorAll("ol.cards").forEach(function (list) {
      const count = list.querySelectorAll(":scope > li.card").length;
      if (pageSize && count > pageSize) {
        pairs.push(list.dataset.columnId + ":" + count);
      }
    });
    return pairs.join(",");
  }

  async function poll() {
    const root = board();
    if (!root || dragging || (dialog() && dialog().open) || document.hidden) {
      return;
    }
    // The board's filters go in a header: a search for a name must not be repeated
    // into access logs every two seconds.
    const params = new URLSearchParams();
    const held = root.dataset.version;
    params.set("version", held);
    const shown = shownParam(root);
    if (shown) {
      params.set("shown", shown);
    }
    try {
      const response = await fetch(root.dataset.pollUrl + "?" + params.toString(), {
        headers: {
          "HX-Request": "true",
          "HX-Current-URL": window.location.href,
          "X-Board-Filters": window.location.search.replace(/^\?/, ""),
        },
        credentials: "same-origin",
      });
      if (response.status === 401 && response.headers.get("HX-Redirect")) {
        // The session ended (logged out in another tab): to the login page, and back.
        window.location.href = response.headers.get("HX-Redirect");
        return;
      }
      if (response.status === 204) {
        // Nothing changed for this board, though its version moved on: hold the new
        // one (unless the board was drawn anew meanwhile), to ask for the same deltas
        // as the other viewers.
        const next = response.headers.get("X-Board-Version");
        if (next && board() && board().dataset.version === held) {
          board().dataset.version = next;
        }
        return;
      }
      // A drag may have started while the request was in flight: never interrupt it.
      if (response.status !== 200 || dragging) {
        return;
      }
      const html = await response.text();
      if (dragging || !board()) {
        return;
      }
      if (response.headers.get("X-Board-Delta") === "1") {
        applyDelta(html, response.headers.get("X-Board-Version"));
      } else {
        const scrolled = rememberScroll();
        htmx.swap(board(), html, { swapStyle: "outerHTML" });
        applyPrefs(); // in the same task as the swap: no frame shows a cycle expanded
        restoreScroll(scrolled);
      }
    } catch (error) {
      // Offline for a moment: the next tick tries again.
    }
  }

  // ---- Where the user has scrolled: kept when the board or a column is drawn anew ----

  function rememberScroll() {
    const root = board();
    const lanes = root && root.querySelector(".lanes");
    const lists = {};
    if (root) {
      root.querySelectorAll("ol.cards").forEach(function (list) {
        if (list.scrollTop) {
          lists[list.dataset.columnId] = list.scrollTop;
        }
      });
    }
    return { left: lanes ? lanes.scrollLeft : 0, lists: lists };
  }

  function restoreScroll(scrolled) {
    const root = board();
    const lanes = root && root.querySelector(".lanes");
    if (lanes && scrolled.left) {
      lanes.scrollLeft = scrolled.left;
    }
    Object.keys(scrolled.lists).forEach(function (columnId) {
      const list = document.querySelector('ol.cards[data-column-id="' + columnId + '"]');
      if (list) {
        list.scrollTop = scrolled.lists[columnId];
      }
    });
  }

  // ---- A delta: the cards changed since this client's version, and every head ----

  function sortKey(card) {
    return [Number(card.dataset.position), Number(card.dataset.cardId)];
  }

  function placeCard(card, list) {
    // Where the board's order (position, then id) puts it among the cards shown; past
    // the last one shown while more follow ("Show more"), it is not shown yet.
    const key = sortKey(card);
    const shown = list.querySelectorAll(":scope > li.card");
    for (const other of shown) {
      const otherKey = sortKey(other);
      if (otherKey[0] > key[0] || (otherKey[0] === key[0] && otherKey[1] > key[1])) {
        list.insertBefore(card, other);
        return true;
      }
    }
    const more = list.querySelector(":scope > .more-row");
    if (more) {
      return false;
    }
    list.append(card);
    return true;
  }

  function applyDelta(html, version) {
    const holder = document.createElement("template");
    holder.innerHTML = html;
    const delta = holder.content.getElementById("board-delta");
    const focused = document.activeElement && document.activeElement.id;
    if (delta) {
      delta.content.querySelectorAll("[data-delta-gone]").forEach(function (gone) {
        const card = document.getElementById("card-" + gone.dataset.deltaGone);
        if (card) {
          card.remove();
        }
      });
      delta.content.querySelectorAll("[data-delta-column]").forEach(function (wrapper) {
        const fresh = wrapper.querySelector("li.card");
        const old = document.getElementById(fresh.id);
        if (
          old &&
          old.dataset.version === fresh.dataset.version &&
          old.dataset.position === fresh.dataset.position &&
          old.parentElement.dataset.columnId === wrapper.dataset.deltaColumn
        ) {
          // Shown as it is already (the mover's own move, drawn by its answer): left
          // alone, so nothing flickers and focus stays where it is.
          return;
        }
        if (old) {
          old.remove();
        }
        const list = document.querySelector('ol.cards[data-column-id="' + wrapper.dataset.deltaColumn + '"]');
        if (list && placeCard(fresh, list)) {
          htmx.process(fresh);
        }
      });
      delta.remove();
    }
    // A head whose WIP editor is open keeps it, with what is being typed: the next
    // update (every one carries every head) redraws the head once it is closed.
    board().querySelectorAll("details.wip-edit[open]").forEach(function (editor) {
      const head = editor.closest(".column-head");
      const incoming = head && holder.content.getElementById(head.id);
      if (incoming) {
        incoming.remove();
      }
    });
    // The heads, jump-bar entries and cycle totals, out of band.
    htmx.swap(board(), holder.innerHTML, { swapStyle: "none" });
    if (version) {
      board().dataset.version = version;
    }
    if (focused && document.getElementById(focused) && document.activeElement === document.body) {
      document.getElementById(focused).focus({ preventScroll: true });
    }
  }

  function startPolling() {
    if (polling === null) {
      polling = window.setInterval(poll, POLL_MS);
      window.setInterval(refreshAges, AGE_REFRESH_MS);
    }
  }

  // ---- Work item age: a card is redrawn only when it changes, its age must move on ----

  // The server's clock against this browser's, taken when a board arrives (data-now):
  // ages are counted as the server counts them (board_tags.age), whatever this clock says.
  let clockSkewMs = 0;

  function takeServerClock(root) {
    const serverNow = Date.parse(root.dataset.now || "");
    if (!Number.isNaN(serverNow)) {
      clockSkewMs = serverNow - Date.now();
    }
  }

  function compactAge(seconds) {
    if (seconds < 3600) {
      return Math.floor(seconds / 60) + "m";
    }
    if (seconds < 86400) {
      return Math.floor(seconds / 3600) + "h";
    }
    return Math.floor(seconds / 86400) + "d";
  }

  function refreshAges() {
    const now = Date.now() + clockSkewMs;
    document.querySelectorAll("#board .age[data-since]").forEach(function (badge) {
      const since = Date.parse(badge.dataset.since);
      if (!Number.isNaN(since)) {
        const text = compactAge(Math.max(0, Math.floor((now - since) / 1000)));
        if (badge.textContent !== text) {
          badge.textContent = text;
        }
      }
    });
  }

  function refreshWhole() {
    // Ask for the whole board whatever the version the client holds: after a request
    // that failed, what the page shows cannot be trusted.
    const root = board();
    if (root) {
      root.dataset.version = "";
      poll();
    }
  }

  function refreshNow() {
    // Back and Forward may show the board as it was: ask for the current one at once.
    closeDialog(); // a dialog restored with the page acts on what it showed then
    poll();
  }

  // ---- Events ----

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-dialog]")) {
      closeDialog();
      return;
    }
    const toggle = event.target.closest(".cycle-toggle");
    if (toggle) {
      const section = toggle.closest("section.cycle");
      toggleCycle(section, !section.classList.contains("collapsed"));
      return;
    }
    const jump = event.target.closest("[data-jump-column], [data-jump-cycle]");
    if (jump) {
      const target = jump.dataset.jumpColumn
        ? document.getElementById("column-" + jump.dataset.jumpColumn)
        : document.getElementById("cycle-section-" + jump.dataset.jumpCycle);
      if (target) {
        event.preventDefault();
        jumpTo(target);
      }
      return;
    }
    const density = event.target.closest("[data-density-toggle]");
    if (density) {
      const compact = density.getAttribute("aria-pressed") !== "true";
      writePref("density", compact ? "compact" : "comfortable");
      applyPrefs();
    }
  });

  // "My cards" and an owner chosen are one filter: choosing one clears the other
  // (in the capture phase, before htmx reads the form).
  document.addEventListener(
    "change",
    function (event) {
      const field = event.target;
      const form = field.closest && field.closest("form.filters");
      if (!form) {
        return;
      }
      if (field.name === "mine" && field.checked && form.elements.owner) {
        form.elements.owner.value = "";
      } else if (field.name === "owner" && field.value && form.elements.mine) {
        form.elements.mine.checked = false;
      }
    },
    true
  );

  // A move's or a new card's answer draws its columns anew (out of band): keep scrolling.
  let scrolledBeforeSwap = null;
  document.body.addEventListener("htmx:beforeSwap", function () {
    scrolledBeforeSwap = board() ? rememberScroll() : null;
  });
  document.body.addEventListener("htmx:afterSettle", function () {
    if (scrolledBeforeSwap) {
      restoreScroll(scrolledBeforeSwap);
      scrolledBeforeSwap = null;
    }
  });

  document.body.addEventListener("htmx:configRequest", function (event) {
    // A move or a new card re-renders columns: as long as the client shows them.
    const root = board();
    if (root && event.detail.verb === "post") {
      const shown = shownParam(root);
      if (shown) {
        event.detail.parameters["shown"] = shown;
      }
    }
  });

  document.body.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    if (target && target.id === "board") {
      applyPrefs();
    }
    if (target && target.id === "dialog-body") {
      // What the dialog is about: a card's "Move to..." (focus returns to the card),
      // a step inside the dialog or a drag's handoff (unchanged), or "New prospect"
      // (the browser returns focus to it).
      const opener = event.detail.requestConfig && event.detail.requestConfig.elt;
      const card = opener && opener.closest && opener.closest(".card");
      if (card) {
        pendingFocus = { cardId: card.dataset.cardId, focus: ".card-menu" };
      } else if (opener && opener !== document.body && !opener.closest("#dialog")) {
        pendingFocus = null;
      }
    }
  });

  document.body.addEventListener("htmx:afterSettle", function (event) {
    // Open the dialog once htmx has processed what it shows (on settle, not on swap):
    // a form filled in and sent before that would be posted without htmx, and leave
    // the board for a page.
    const target = event.detail.target;
    const element = dialog();
    if (target && target.id === "dialog-body" && element && !element.open && target.children.length) {
      element.showModal();
      const first = element.querySelector("input:not([type=hidden]), button, select, textarea, a, summary");
      if (first) {
        first.focus();
      }
    }
  });

  document.body.addEventListener("htmx:afterRequest", function (event) {
    // "Move anyway" in a toast: done (or answered by a fresh toast), so it goes.
    const toast = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest(".toast");
    if (toast && event.detail.elt.matches("form.override")) {
      toast.remove();
    }
  });

  // ---- A failed request (no answer, or an error status: htmx swaps nothing) ----

  // A request the page makes by itself, not the user's (data-background): its failure
  // loses nothing, so it must not close what the user is typing nor reload the board.
  function isBackground(event) {
    const elt = event.detail && event.detail.elt;
    return Boolean(elt && elt.closest && elt.closest("[data-background]"));
  }
  // The server answers every refusal with 200 and the board as it is; an error status
  // or no answer at all means the request may not have been carried out. A dropped card
  // goes back where it was, the message says what happened (toasts.js), and the whole
  // board is fetched again, so no false state stays on screen.

  function requestFailed(event) {
    if (isBackground(event)) {
      return; // a check of its own (the intake badge): the next one tries again
    }
    const place = failedDropPlace;
    if (place && event.detail.elt === place.card) {
      failedDropPlace = null;
      place.list.insertBefore(place.card, place.before && place.before.parentNode === place.list ? place.before : null);
    }
    closeDialog();
    refreshWhole();
  }

  document.body.addEventListener("htmx:responseError", requestFailed);
  document.body.addEventListener("htmx:sendError", requestFailed);
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (failedDropPlace && event.detail.elt === failedDropPlace.card && event.detail.successful) {
      failedDropPlace = null;
    }
  });

  document.body.addEventListener("vsm:close-dialog", closeDialog);

  document.body.addEventListener("vsm:card-added", function (event) {
    // A new prospect: in view, highlighted a moment, and focused once the dialog is gone.
    const cardId = event.detail && event.detail.card_id ? String(event.detail.card_id) : "";
    if (!cardId) {
      return;
    }
    const wanted = { cardId: cardId, focus: ".card-title", centre: true, highlight: true };
    if (dialog() && dialog().open) {
      // Once it is closed: closing returns focus (and scrolls) to "New prospect".
      pendingFocus = wanted;
    } else {
      showCard(cardId, wanted);
    }
  });

  // "close" does not bubble: listen in the capture phase, which also outlives the
  // dialog element being replaced (htmx's history restore swaps the whole body).
  document.addEventListener(
    "close",
    function (event) {
      if (event.target !== dialog()) {
        return;
      }
      const wanted = pendingFocus;
      pendingFocus = null;
      if (wanted) {
        showCard(wanted.cardId, wanted);
      }
    },
    true
  );

  window.addEventListener("pageshow", function (event) {
    const navigation = performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
    if (event.persisted || (navigation && navigation.type === "back_forward")) {
      refreshNow();
    }
  });

  document.body.addEventListener("htmx:historyRestore", refreshNow);

  htmx.onLoad(function (content) {
    const root = board();
    if (root) {
      if (content === root || content.contains(root)) {
        takeServerClock(root);
      }
      initSortables(root.contains(content) || content === root ? content : root);
      startPolling();
    }
  });

  applyPrefs();
})();
