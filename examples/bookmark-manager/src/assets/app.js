// Live search, live sync, kept form input and the vault's buttons. Everything works
// without this script (forms post, pages reload); it only makes pages update in place and
// keeps what the user typed when a session ends under them.
"use strict";

(function () {
  const status = document.getElementById("live-status");

  function notice(text, ms) {
    if (!status) return;
    status.textContent = text;
    status.hidden = false;
    clearTimeout(notice.timer);
    if (ms) notice.timer = setTimeout(() => { status.hidden = true; }, ms);
  }

  // ---- kept form input ---------------------------------------------------------------
  // A form marked data-keep is copied to sessionStorage (this tab only) when sent, and when
  // the session ends while it holds typed text. Passwords and hidden fields (the CSRF
  // token) are never copied. The copy is dropped once the form went through, and put back
  // when the form comes back: after a refused submission (a validation error, an expired
  // form) or after logging in again.
  const DRAFTS = "bm.drafts";
  const DRAFT_LIFE = 60 * 60 * 1000;

  function loadDrafts() {
    try {
      const all = JSON.parse(sessionStorage.getItem(DRAFTS) || "{}");
      const now = Date.now();
      for (const k of Object.keys(all)) if (!(now - all[k].at < DRAFT_LIFE)) delete all[k];
      return all;
    } catch (_) { return {}; }
  }
  function saveDrafts(all) {
    try {
      if (Object.keys(all).length) sessionStorage.setItem(DRAFTS, JSON.stringify(all));
      else sessionStorage.removeItem(DRAFTS);
    } catch (_) { /* storage full or off: nothing is kept */ }
  }
  function keptFields(form) {
    const fields = {};
    let typed = false;
    for (const el of form.elements) {
      if (!el.name || el.type === "password" || el.type === "hidden" || el.type === "submit") continue;
      // A secret shown in clear (generated, or "Show") is still a secret.
      if (el.hasAttribute("data-secret")) continue;
      if (el.type === "checkbox" || el.type === "radio") continue;
      fields[el.name] = el.value;
      if (el.value !== el.defaultValue) typed = true;
    }
    return { fields, typed };
  }
  function keep(form, state) {
    const { fields } = keptFields(form);
    const all = loadDrafts();
    all[form.getAttribute("action")] = { fields, state, at: Date.now() };
    saveDrafts(all);
  }
  // Every form with typed text, when the session ends.
  function keepTyped() {
    for (const form of document.querySelectorAll("form[data-keep]")) {
      if (keptFields(form).typed) keep(form, "kept");
    }
  }
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.matches("form[data-keep]") && !ev.defaultPrevented) keep(form, "sent");
  });

  (function restore() {
    const all = loadDrafts();
    if (!Object.keys(all).length) return;
    const refused = document.querySelector("[data-form-refused]");
    const failed = document.querySelector("[data-form-error]");
    let restored = false;
    for (const action of Object.keys(all)) {
      const draft = all[action];
      if (refused) {
        // The form was not accepted: keep the copy for when the form is shown again.
        draft.state = "kept";
        continue;
      }
      const form = Array.from(document.querySelectorAll("form[data-keep]"))
        .find((f) => f.getAttribute("action") === action);
      if (form && (draft.state === "kept" || failed)) {
        for (const el of form.elements) {
          if (el.name && Object.prototype.hasOwnProperty.call(draft.fields, el.name)) el.value = draft.fields[el.name];
        }
        delete all[action];
        restored = restored || draft.state === "kept";
      } else if (draft.state === "sent") {
        delete all[action]; // it went through
      }
    }
    saveDrafts(all);
    if (Object.values(all).some((d) => d.state === "kept")) {
      for (const el of document.querySelectorAll("[data-if-kept]")) el.hidden = false;
    }
    if (restored) notice("What you typed before is back in the form: check it and send it again.", 8000);
  })();

  // ---- confirmations and the vault's buttons -----------------------------------------
  // A form with data-confirm asks once in place: the first click arms its button.
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!form.matches("form[data-confirm]") || form.dataset.armed === "yes") return;
    ev.preventDefault();
    form.dataset.armed = "yes";
    const button = form.querySelector("button");
    const question = document.createElement("span");
    question.className = "confirm-question";
    question.setAttribute("role", "alert");
    question.textContent = form.dataset.confirm;
    form.prepend(question);
    if (button) { button.dataset.label = button.textContent; button.textContent = "Yes, delete"; button.focus(); }
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "small ghost";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", () => {
      form.dataset.armed = "";
      question.remove();
      cancel.remove();
      if (button) button.textContent = button.dataset.label;
    });
    form.append(cancel);
  }, true);

  function generate(length) {
    const chars = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.!@#%+=";
    const out = [];
    const bytes = new Uint8Array(length * 2);
    while (out.length < length) {
      crypto.getRandomValues(bytes);
      // Only bytes below a multiple of the alphabet's size: no character is likelier.
      const limit = 256 - (256 % chars.length);
      for (const b of bytes) if (b < limit && out.length < length) out.push(chars[b % chars.length]);
    }
    return out.join("");
  }

  function bindButtons(root) {
    for (const b of root.querySelectorAll("[data-generate], [data-show-input], [data-copy], [data-hide]")) {
      if (b.dataset.bound) continue;
      b.dataset.bound = "yes";
      b.hidden = false;
      if (b.dataset.generate) {
        b.addEventListener("click", () => {
          const input = document.getElementById(b.dataset.generate);
          input.value = generate(20);
          input.type = "text";
          const toggle = root.querySelector("[data-show-input=\"" + b.dataset.generate + "\"]");
          if (toggle) toggle.textContent = "Hide";
        });
      } else if (b.dataset.showInput) {
        b.addEventListener("click", () => {
          const input = document.getElementById(b.dataset.showInput);
          const show = input.type === "password";
          input.type = show ? "text" : "password";
          b.textContent = show ? "Hide" : "Show";
        });
      } else if (b.dataset.copy) {
        b.addEventListener("click", async () => {
          const text = document.getElementById(b.dataset.copy).textContent;
          try {
            await navigator.clipboard.writeText(text);
            notice("Copied to the clipboard", 2000);
          } catch (_) {
            // No clipboard access (plain http on another host): select it for Ctrl+C.
            const range = document.createRange();
            range.selectNodeContents(document.getElementById(b.dataset.copy));
            const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
            notice("Selected: press Ctrl+C to copy", 3000);
          }
        });
      } else if (b.dataset.hide) {
        b.addEventListener("click", () => {
          const shown = document.getElementById(b.dataset.hide);
          const masked = document.createElement("span");
          masked.className = "secret masked";
          masked.setAttribute("aria-label", "hidden secret");
          masked.textContent = "••••••••";
          shown.replaceWith(masked);
        });
      }
    }
  }
  bindButtons(document);

  // A chosen bookmark file is read here and sent as the form's text field.
  for (const input of document.querySelectorAll("input[type=file][data-file-into]")) {
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (file) document.getElementById(input.dataset.fileInto).value = await file.text();
    });
  }

  // ---- live search -------------------------------------------------------------------
  const box = document.querySelector("[data-search]");
  const results = document.getElementById("search-results");
  if (box && results) {
    let timer = null;
    let latest = 0;
    box.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(search, 150);
    });
    async function search() {
      const seq = ++latest;
      const q = box.value.trim();
      if (!q) { results.replaceChildren(); return; }
      const res = await fetch("/api/search?q=" + encodeURIComponent(q), { credentials: "same-origin" });
      // A slower, older answer must not overwrite a newer one.
      if (seq !== latest) return;
      if (res.status === 401) { sessionEnded(); return; }
      if (!res.ok) { results.replaceChildren(line("Search failed (" + res.status + ").", "muted")); return; }
      render(await res.json());
    }
    function line(text, cls) {
      const li = document.createElement("li");
      li.textContent = text;
      if (cls) li.className = cls;
      return li;
    }
    // textContent only: result text is user input and must never become markup.
    function render(data) {
      const list = document.createElement("ul");
      list.className = "plain search-hits";
      for (const b of data.bookmarks) {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = b.url; a.textContent = b.title; a.rel = "noopener noreferrer"; a.target = "_blank";
        const kind = document.createElement("span");
        kind.className = "tag"; kind.textContent = "bookmark";
        li.append(kind, " ", a);
        list.append(li);
      }
      for (const n of data.notes) {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = "/notes/" + n.id + "/edit"; a.textContent = n.title;
        const kind = document.createElement("span");
        kind.className = "tag"; kind.textContent = "note";
        const snip = document.createElement("span");
        snip.className = "muted"; snip.textContent = " " + n.snippet;
        li.append(kind, " ", a, snip);
        list.append(li);
      }
      if (!list.children.length) list.append(line("Nothing matches “" + data.q + "”.", "muted"));
      results.replaceChildren(list);
    }
  }

  // ---- session ended -----------------------------------------------------------------
  let ended = false;
  // The session is over (logged out elsewhere, revoked, expired, the server forgot it):
  // no more retries; keep what was typed, say so, then load this page's address again
  // (a GET, never a re-sent form), which the server answers with the login page, an
  // explanation and the way back here.
  function sessionEnded() {
    if (ended || document.body.dataset.liveSync !== "on") return;
    ended = true;
    document.body.dataset.session = "ended";
    keepTyped();
    const banner = document.createElement("div");
    banner.className = "banner";
    banner.id = "session-ended";
    banner.setAttribute("role", "alert");
    banner.textContent = "Your session has ended. What you typed is kept in this tab; taking you to the login…";
    document.body.prepend(banner);
    setTimeout(() => location.replace(location.pathname + location.search), 1500);
  }

  // ---- live sync ---------------------------------------------------------------------
  if (document.body.dataset.liveSync !== "on" || !("WebSocket" in window)) return;

  // Re-fetches this page and swaps in its live region, so rendering stays on the server.
  // It never reloads: the page may be the answer to a form, which a reload would send again.
  async function refresh() {
    const live = document.getElementById("live");
    if (!live) return;
    let res;
    try {
      res = await fetch(location.pathname + location.search, { credentials: "same-origin", headers: { "x-live-refresh": "1" } });
    } catch (_) { return; }
    if (res.redirected && new URL(res.url).pathname === "/login") { sessionEnded(); return; }
    if (res.redirected || !res.ok) { notice("This page changed in another browser: reload it to see the change.", 6000); return; }
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const fresh = doc.getElementById("live");
    if (!fresh) return;
    // A secret shown here stays shown (the server shows it once, to the page it opened).
    const shown = document.getElementById("revealed");
    live.replaceWith(fresh);
    if (shown) {
      const masked = fresh.querySelector("[data-id=\"" + shown.dataset.id + "\"] .secret.masked");
      if (masked) masked.replaceWith(shown);
    }
    bindButtons(fresh);
  }

  let delay = 1000;
  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/ws");
    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
      document.body.dataset.ws = "open";
      // Changes made while disconnected were missed: catch up once.
      if (delay > 1000) refresh();
      delay = 1000;
    });
    ws.addEventListener("message", (ev) => {
      let change;
      try { change = JSON.parse(ev.data); } catch (_) { return; }
      const live = document.getElementById("live");
      const kinds = live ? live.dataset.live.split(" ") : [];
      if (kinds.includes(change.kind)) {
        refresh();
        notice("Updated from another browser", 2500);
      }
    });
    ws.addEventListener("close", async (ev) => {
      document.body.dataset.ws = "closed";
      if (ended) return;
      // 1008: the server ended the socket because the session ended.
      if (ev.code === 1008) { sessionEnded(); return; }
      // A refused upgrade (401) shows here only as a close: ask whether the login holds.
      if (!opened || ev.code !== 1000) {
        try {
          const me = await fetch("/api/me", { credentials: "same-origin" });
          if (me.status === 401) { sessionEnded(); return; }
        } catch (_) {
          notice("Offline: reconnecting…", Math.min(delay, 5000));
        }
      }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }
  connect();
})();
