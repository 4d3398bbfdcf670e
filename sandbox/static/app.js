// accessbot sandbox: sends what a person types and clicks to the sandbox
// server (which signs it as Slack would and posts it to the bot), and keeps
// the page up to date by polling for the panes that changed.
"use strict";
(function () {
  const me = document.body.dataset.me;
  if (!me) return;
  const base = "/as/" + encodeURIComponent(me);

  async function post(path, data) {
    const body = new URLSearchParams(data);
    const res = await fetch(base + path, {
      method: "POST",
      body,
      headers: { "X-Sandbox": "1" },
    });
    refreshSoon();
    return res;
  }

  // ---- keeping the page up to date ----

  let timer = null;
  let busy = false;
  let homeTimer = null;

  function nearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 60;
  }

  function formValues(form) {
    const values = {};
    if (!form) return values;
    for (const el of form.elements) {
      if (el.name) values[el.name] = el.value;
    }
    return values;
  }

  function replacePane(name, pane) {
    const el = document.querySelector('[data-pane="' + name + '"]');
    if (!el || el.dataset.hash === pane.hash) return false;
    const oldForm = el.querySelector("form.modal");
    const oldView = oldForm && oldForm.dataset.view;
    const kept = formValues(oldForm);
    const focused = document.activeElement && el.contains(document.activeElement) ? document.activeElement.name : null;
    const stick = nearBottom(el);
    el.innerHTML = pane.html;
    el.dataset.hash = pane.hash;
    // A modal updated by the app keeps what the person typed, as in Slack.
    const form = el.querySelector("form.modal");
    if (form && form.dataset.view === oldView) {
      for (const input of form.elements) {
        if (!input.name || !(input.name in kept) || input.name === "__view") continue;
        const v = kept[input.name];
        if (input.tagName === "SELECT") {
          if (v && !input.value && [...input.options].some((o) => o.value === v)) input.value = v;
        } else if (!input.value) {
          input.value = v;
        }
      }
      if (focused && form.elements[focused]) form.elements[focused].focus();
    }
    if (el.classList.contains("scroll") && (stick || name === "dm")) el.scrollTop = el.scrollHeight;
    loadTypeaheads(el);
    return true;
  }

  // An external select starts with the options the bot offers for an
  // empty query, as Slack asks when min_query_length is 0.
  function loadTypeaheads(root) {
    for (const box of root.querySelectorAll("input.typeahead")) {
      const sel = document.getElementById(box.dataset.for);
      if (sel && sel.options.length <= 2) box.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch(base + "/panes", { cache: "no-store" });
      if (!res.ok) return;
      const panes = await res.json();
      let talk = false;
      for (const [name, pane] of Object.entries(panes)) {
        if (replacePane(name, pane) && (name === "dm" || name === "channel")) talk = true;
      }
      // Something new arrived: look at the Home tab again, as a person
      // switching to it would, so it shows the same state.
      if (talk) {
        clearTimeout(homeTimer);
        homeTimer = setTimeout(() => post("/home", {}), 400);
      }
      document.body.classList.remove("offline");
    } catch (e) {
      document.body.classList.add("offline");
    } finally {
      busy = false;
    }
  }

  function refreshSoon() {
    setTimeout(refresh, 150);
    setTimeout(refresh, 600);
  }

  timer = setInterval(refresh, 1000);
  setTimeout(() => loadTypeaheads(document), 0);
  for (const el of document.querySelectorAll(".pane.scroll")) el.scrollTop = el.scrollHeight;

  // ---- a confirm dialog for buttons that ask for one ----

  function confirmFirst(btn) {
    if (!btn.dataset.confirmTitle) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wrap = document.createElement("div");
      wrap.className = "overlay confirm";
      const box = document.createElement("div");
      box.className = "modal";
      const h = document.createElement("h2");
      h.textContent = btn.dataset.confirmTitle;
      const p = document.createElement("p");
      p.textContent = btn.dataset.confirmText || "";
      const foot = document.createElement("footer");
      const no = document.createElement("button");
      no.type = "button";
      no.className = "btn";
      no.textContent = btn.dataset.confirmNo || "Cancel";
      const yes = document.createElement("button");
      yes.type = "button";
      yes.className = "btn btn-primary";
      yes.textContent = btn.dataset.confirmYes || "Yes";
      foot.append(no, yes);
      box.append(h, p, foot);
      wrap.append(box);
      document.body.append(wrap);
      const end = (ok) => {
        wrap.remove();
        resolve(ok);
      };
      no.onclick = () => end(false);
      yes.onclick = () => end(true);
    });
  }

  function surface(el) {
    const d = el.dataset;
    return { kind: d.kind || "", channel: d.channel || "", ts: d.ts || "", view: d.view || "" };
  }

  // ---- what people do ----

  document.addEventListener("click", async (ev) => {
    const home = ev.target.closest("[data-home]");
    if (home) {
      ev.preventDefault();
      post("/home", {});
      return;
    }
    const close = ev.target.closest("[data-close]");
    if (close) {
      ev.preventDefault();
      const form = close.closest("form.modal");
      if (form) {
        form.closest(".overlay").classList.add("closing");
        post("/close", { __view: form.dataset.view });
      }
      return;
    }
    const btn = ev.target.closest("button[data-action]");
    if (!btn) return;
    ev.preventDefault();
    if (!(await confirmFirst(btn))) return;
    if (btn.dataset.url) window.open(btn.dataset.url, "_blank", "noopener");
    btn.disabled = true;
    btn.classList.add("pressed");
    try {
      await post("/action", Object.assign(surface(btn), { action_id: btn.dataset.action, value: btn.dataset.value || "" }));
    } finally {
      setTimeout(() => {
        btn.disabled = false;
      }, 800);
    }
  });

  document.addEventListener("change", (ev) => {
    const sel = ev.target.closest("select[data-action]");
    if (!sel || !sel.value) return;
    post("/action", Object.assign(surface(sel), { action_id: sel.dataset.action, value: sel.value }));
  });

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (form.id === "composer") {
      ev.preventDefault();
      const input = form.elements.command;
      const command = input.value.trim();
      if (!command) return;
      input.value = "";
      await post("/command", { command });
      return;
    }
    if (form.classList.contains("modal")) {
      ev.preventDefault();
      const submit = form.querySelector('button[type="submit"]');
      if (submit) submit.disabled = true;
      try {
        await post("/submit", new FormData(form));
      } finally {
        if (submit) submit.disabled = false;
      }
    }
  });

  // Typeahead for external selects: the bot's options endpoint answers.
  let typeTimer = null;
  document.addEventListener("input", (ev) => {
    const box = ev.target.closest("input.typeahead");
    if (!box) return;
    clearTimeout(typeTimer);
    typeTimer = setTimeout(async () => {
      const form = box.closest("form.modal");
      const sel = document.getElementById(box.dataset.for);
      if (!form || !sel) return;
      const res = await fetch(base + "/suggest", {
        method: "POST",
        headers: { "X-Sandbox": "1" },
        body: new URLSearchParams({ __view: form.dataset.view, action_id: box.dataset.actionId, q: box.value }),
      });
      if (!res.ok) return;
      const options = await res.json();
      const keep = sel.value;
      sel.length = 1;
      for (const o of options) sel.add(new Option(o.label, o.value, false, o.value === keep));
    }, 200);
  });
})();
