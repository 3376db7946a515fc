// Live search and live sync. Everything works without this script (forms post, pages
// reload); it only makes pages update in place.
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

  // ---- live sync ---------------------------------------------------------------------
  if (document.body.dataset.liveSync !== "on" || !("WebSocket" in window)) return;

  // Re-fetches this page and swaps in its live region, so rendering stays on the server.
  async function refresh() {
    const live = document.getElementById("live");
    if (!live) return;
    const res = await fetch(location.href, { credentials: "same-origin", headers: { "x-live-refresh": "1" } });
    if (res.redirected || !res.ok) { location.reload(); return; }
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const fresh = doc.getElementById("live");
    if (fresh) live.replaceWith(fresh);
  }

  let delay = 1000;
  let ended = false;
  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/ws");
    ws.addEventListener("open", () => {
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
    ws.addEventListener("close", (ev) => {
      document.body.dataset.ws = "closed";
      if (ev.code === 1008) {
        ended = true;
        notice("Your session ended. Reloading…");
        setTimeout(() => location.reload(), 1200);
        return;
      }
      if (!ended) {
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      }
    });
  }
  connect();
})();
