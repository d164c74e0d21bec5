// The judge's and approver's dashboard: forms that call the API, and the documents section
// refreshed live whenever a document changes (a terminal received, acknowledged, executed...).
"use strict";

(function () {
  const t = document.getElementById("dash-i18n").dataset;
  const overdueBar = document.getElementById("overdue-alert");
  const csrf = () => (document.getElementById("documents") || {}).dataset.csrf || "";

  async function api(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || data.title || response.statusText);
    return data;
  }

  let refreshing = null;
  async function refresh() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      const response = await fetch("/dashboard/documents", { credentials: "same-origin" });
      if (!response.ok) return;
      const holder = document.createElement("div");
      holder.innerHTML = await response.text();
      const fresh = holder.querySelector("#documents");
      const current = document.getElementById("documents");
      if (fresh && current) current.replaceWith(fresh);
    })().finally(() => { refreshing = null; });
    return refreshing;
  }

  function report(text) {
    const out = document.querySelector("#documents .form-result");
    if (out) out.textContent = text;
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("#documents button[data-api]");
    if (!button) return;
    button.disabled = true;
    try {
      await api(button.dataset.api);
      await refresh();
    } catch (err) {
      report(`${t.failed}: ${err.message}`);
      button.disabled = false;
    }
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form.api-form");
    if (!form) return;
    event.preventDefault();
    const data = new FormData(form);
    const body = {};
    if (form.dataset.detention) {
      body.detention_id = form.dataset.detention;
      body.kind = data.get("kind");
      body.reason = data.get("reason");
      if (body.kind === "renewal") body.days = Number(data.get("days"));
    } else {
      body.case_id = data.get("case_id");
      body.terms = data.get("terms");
      body.amount_fen = Math.round(Number(data.get("amount")) * 100);
      body.due = data.get("due") || "";
    }
    try {
      await api(form.dataset.api, body);
      form.reset();
      form.closest("details").open = false;
      await refresh();
      report(t.saved);
    } catch (err) {
      report(`${t.failed}: ${err.message}`);
    }
  });

  const socket = io({ auth: { as: "account" }, transports: ["websocket", "polling"] });
  socket.on("document.updated", () => { refresh(); });
  socket.on("document.overdue", (message) => {
    overdueBar.textContent = `${t.overdue}: ${message.document.title} ${message.document.number}`;
    overdueBar.hidden = false;
    refresh();
  });
})();
