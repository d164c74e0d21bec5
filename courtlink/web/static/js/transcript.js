// A session's transcript (笔录), typed by the clerk or the case's judge. The text is saved
// through the API as it is typed: at most one save every five seconds while typing (each save
// is a step of the document and re-renders the parties' preview), and at once when the text
// box loses focus or the page is left. The first save starts the transcript (POST), later
// ones replace its text (PUT). Once a party has signed, the server refuses a save (409): the
// text turns read-only and the page says why, keeping what was not saved for copying.
"use strict";

(function () {
  const section = document.getElementById("transcript");
  if (!section) return;
  const t = document.getElementById("transcript-i18n").dataset;
  const area = document.getElementById("transcript-text");
  const status = document.getElementById("save-status");
  const stageBadge = document.getElementById("transcript-stage");
  const notice = document.getElementById("frozen-notice");
  const unsaved = document.getElementById("unsaved");
  const pdf = document.getElementById("transcript-pdf");
  const GAP = 5000;  // ms: at most one save this often while typing
  const IDLE = 1200; // ms: a pause this long after typing saves (if the gap allows)

  let documentId = section.dataset.document || null;
  let editable = section.dataset.editable === "yes";
  let saved = area.value; // the text the server holds
  let inFlight = null;    // the save under way
  let sending = null;     // the text it sends
  let timer = null;
  let lastStart = 0;
  let version = Number(section.dataset.version) || 0; // the newest version seen

  // China Standard Time, as every page shows times.
  function clock() { return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(11, 19); }

  function say(kind, text) {
    status.dataset.status = kind;
    status.textContent = text;
  }

  function stageOf(doc) {
    if (!doc) return "new";
    if (doc.state === "issued") return "issued";
    if (doc.state === "signed") return "signed";
    return (doc.steps || []).some((s) => s.action === "sign") ? "frozen" : "drafting";
  }

  function readOnly() {
    editable = false;
    area.readOnly = true;
    section.dataset.editable = "no";
    clearTimeout(timer);
    timer = null;
  }

  // Show what the server says the transcript is now.
  function apply(doc) {
    const stage = stageOf(doc);
    const seen = Number(doc.fields && doc.fields.version) || 0;
    if (stage === "drafting" && seen < version) return; // an older save, pushed late
    version = Math.max(version, seen);
    documentId = doc.id;
    section.dataset.document = doc.id;
    section.dataset.stage = stage;
    stageBadge.textContent = t["stage" + stage.charAt(0).toUpperCase() + stage.slice(1)] || stage;
    section.querySelector(".number").textContent = doc.number || "";
    if (doc.sha256) { pdf.href = `/api/documents/${doc.id}/file`; pdf.hidden = false; }
    const signedAt = {};
    for (const step of doc.steps || []) {
      if (step.action === "sign" && step.data && step.data.seat) signedAt[step.data.seat] = step.at;
    }
    for (const li of section.querySelectorAll("#signatures li")) {
      const at = signedAt[li.dataset.seat];
      li.dataset.signed = at ? "yes" : "no";
      li.querySelector(".signed-at").textContent = at
        ? `${t.signed} ${new Date(Date.parse(at) + 8 * 3600 * 1000).toISOString().slice(5, 19).replace("T", " ")}`
        : t.notSigned;
    }
    const text = doc.fields && typeof doc.fields.text === "string" ? doc.fields.text : null;
    if (stage !== "drafting") {
      notice.textContent = t["notice" + stage.charAt(0).toUpperCase() + stage.slice(1)] || "";
      notice.hidden = false;
      if (text !== null && area.value !== text) keepUnsaved(area.value);
      readOnly();
    }
    // Another writer's save (the judge's, the clerk's): taken unless this page has unsaved
    // text of its own, which its next save will put over it.
    if (text !== null && (area.value === saved || !editable)) { area.value = text; }
    if (text !== null) saved = text;
  }

  function keepUnsaved(text) {
    if (!text.trim() || text === saved) return;
    unsaved.querySelector("textarea").value = text;
    unsaved.hidden = false;
  }

  // Saves outlive the page (keepalive) when they are small enough for the browser's
  // keepalive quota (64 KiB): leaving the page does not cut them off half way.
  async function request(method, url, body) {
    const json = body ? JSON.stringify(body) : undefined;
    const response = await fetch(url, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": section.dataset.csrf },
      body: json,
      credentials: "same-origin",
      keepalive: !!json && json.length * 3 < 60000,
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const err = new Error(data.detail || data.title || response.statusText);
      err.status = response.status;
      throw err;
    }
    return data;
  }

  async function refused(err, text) {
    if (err.status === 409) {
      // Signed meanwhile (or started elsewhere): fetch what the server holds and stop editing.
      say("refused", t.refused);
      keepUnsaved(text);
      readOnly();
      try {
        if (documentId) apply(await request("GET", `/api/documents/${documentId}`));
      } catch (ignored) { /* the refusal above says enough */ }
      say("refused", t.refused);
    } else if (err.status === 401 || err.status === 403) {
      keepUnsaved(text);
      readOnly();
      say("refused", `${t.forbidden} (${err.message})`);
    } else if (err.status === 422) {
      say("error", err.message);
    } else {
      say("error", t.failed);
      timer = setTimeout(() => { timer = null; flush(); }, GAP);
    }
  }

  async function flush() {
    clearTimeout(timer);
    timer = null;
    while (inFlight) await inFlight;
    const text = area.value;
    if (!editable || text === saved || !text.trim()) return;
    lastStart = Date.now();
    say("saving", t.saving);
    sending = text;
    inFlight = (async () => {
      try {
        const doc = documentId
          ? await request("PUT", `/api/documents/${documentId}/transcript`, { text })
          : await request("POST", "/api/documents/transcripts", { session_id: section.dataset.session, text });
        saved = text;
        apply(doc);
        if (!editable) return;
        if (area.value === saved) say("saved", `${t.saved} ${clock()}`);
        else { say("dirty", t.unsaved); schedule(); }
      } catch (err) {
        await refused(err, text);
      } finally {
        inFlight = null;
        sending = null;
      }
    })();
    return inFlight;
  }

  function schedule() {
    if (!editable || timer) return;
    const wait = Math.max(IDLE, lastStart + GAP - Date.now());
    timer = setTimeout(() => { timer = null; flush(); }, wait);
  }

  area.addEventListener("input", () => {
    if (!editable) return;
    if (area.value !== saved && !inFlight) say("dirty", t.unsaved);
    schedule();
  });
  area.addEventListener("blur", () => { flush(); });
  // Another tab or app in front (a phone's home button): save now.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flush();
  });
  // Leaving the page: one last save that outlives it (keepalive), if anything is unsaved and
  // not already on its way.
  window.addEventListener("pagehide", () => {
    const text = area.value;
    if (!editable || text === saved || text === sending || !text.trim()) return;
    fetch(documentId ? `/api/documents/${documentId}/transcript` : "/api/documents/transcripts", {
      method: documentId ? "PUT" : "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": section.dataset.csrf },
      body: JSON.stringify(documentId ? { text } : { session_id: section.dataset.session, text }),
      credentials: "same-origin",
      keepalive: true,
    });
  });

  // Signatures and the judge's confirmation arrive live where the account's connection hears
  // document changes; a refused save says the same otherwise.
  if (window.io) {
    const socket = io({ auth: { as: "account" }, transports: ["websocket", "polling"] });
    socket.on("document.updated", (doc) => {
      if (!doc || doc.kind !== "transcript") return;
      const mine = documentId
        ? doc.id === documentId
        : doc.fields && doc.fields.session_id === section.dataset.session;
      if (!mine) return;
      if (inFlight) inFlight.then(() => apply(doc));
      else apply(doc);
    });
  }

  window.courtlinkTranscript = { flush };
})();
