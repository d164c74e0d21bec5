// Inboxes on the terminal and on the parties' join page: new items arrive over Socket.IO with a
// sound and an on-screen alert; files are fetched with a progress bar, resumed with Range
// requests after a broken connection, and their SHA-256 checked before they show as received.
// Officers act with their name and PIN; the detainee and the parties sign on screen (a
// settlement agreement, a session's transcript, whose text is shown above the pad).
"use strict";

(function () {
  const box = document.getElementById("inbox");
  if (!box) return;
  const t = document.getElementById("doc-i18n").dataset;
  const list = box.querySelector(".inbox-list");
  const alertBar = document.getElementById("inbox-alert");
  const dialog = document.getElementById("officer-dialog");
  const entries = new Map();  // item id -> {item, document}
  const blobs = new Map();    // "<document id>:<sha256>" -> object URL of the verified file
  const fetching = new Set(); // downloads under way, by the same key

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer)).map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function api(method, url, body) {
    const response = await fetch(url, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
    });
    const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || data.title || response.statusText);
    return data;
  }

  function beep() {
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      for (const [at, hz] of [[0, 880], [0.25, 660], [0.5, 880]]) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.frequency.value = hz;
        gain.gain.value = 0.2;
        osc.connect(gain).connect(ctx.destination);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + 0.18);
      }
    } catch (err) { /* no audio device: the on-screen alert remains */ }
  }

  function announce(text) {
    alertBar.textContent = text;
    alertBar.hidden = false;
    alertBar.classList.add("flash");
    setTimeout(() => alertBar.classList.remove("flash"), 1500);
  }

  // Download with progress; resume from where it broke (Range); check SHA-256.
  async function fetchFile(entry, row) {
    const doc = entry.document;
    const bar = row.querySelector("progress");
    const state = row.querySelector(".file-state");
    if (!window.crypto || !window.crypto.subtle) { state.textContent = t.needHttps; return; }
    const chunks = [];
    let received = 0;
    for (let attempt = 0; attempt < 30; attempt++) {
      try {
        const headers = received ? { Range: `bytes=${received}-` } : {};
        const response = await fetch(`/api/documents/${doc.id}/file`, { headers, credentials: "same-origin" });
        if (received && response.status !== 206) { chunks.length = 0; received = 0; }
        else if (!response.ok && response.status !== 206) throw new Error(String(response.status));
        const total = doc.size || Number(response.headers.get("Content-Length")) + received;
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
          received += value.length;
          bar.max = total;
          bar.value = received;
          state.textContent = `${t.downloading} ${Math.floor((100 * received) / total)}%`;
        }
        if (received >= total) break;
      } catch (err) {
        state.textContent = t.resuming;
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * (attempt + 1), 5000)));
      }
    }
    const blob = new Blob(chunks, { type: doc.media_type });
    const digest = hex(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
    if (digest !== doc.sha256) {
      state.textContent = t.hashMismatch;
      row.dataset.file = "mismatch";
      return;
    }
    blobs.set(`${doc.id}:${doc.sha256}`, URL.createObjectURL(blob));
    await api("POST", `/api/inbox/${entry.item.id}/received`, { sha256: digest });
    row.dataset.file = "verified";
    state.textContent = t.verified;
    row.querySelector(".open").hidden = false;
    row.querySelector(".print").hidden = false;
  }

  function stateLabel(state) { return t["state" + state.charAt(0).toUpperCase() + state.slice(1)] || state; }

  function actionsFor(doc) {
    const order = doc.kind === "renewal" || doc.kind === "release";
    const actions = [];
    if (order && doc.state === "delivered") actions.push("acknowledge", "refuse");
    if (order && doc.state === "acknowledged") actions.push("serve", "refuse");
    if (order && doc.state === "served") actions.push("execute", "refuse");
    if (SIGNED_KINDS.has(doc.kind) && doc.state === "drafted" && box.dataset.canSign === "yes" && !signedHere(doc)) actions.push("sign");
    return actions;
  }

  // What the parties sign (settlement agreements, session transcripts), and whether the seat
  // this screen signs for (the debtor's at a terminal) has signed it already.
  const SIGNED_KINDS = new Set(["settlement", "transcript"]);
  function signedHere(doc) {
    const seats = (box.dataset.signSeats || "").split(",").filter(Boolean);
    const signed = (doc.steps || []).filter((s) => s.action === "sign" && s.data).map((s) => s.data.seat);
    return seats.length > 0 && seats.every((seat) => signed.includes(seat));
  }

  function render() {
    const sorted = Array.from(entries.values()).sort((a, b) => b.item.created_at.localeCompare(a.item.created_at));
    list.textContent = "";
    box.querySelector(".empty").hidden = sorted.length > 0;
    for (const entry of sorted) {
      const doc = entry.document;
      const row = document.createElement("li");
      row.className = "inbox-row";
      row.dataset.document = doc.id;
      row.dataset.state = doc.state;
      row.dataset.kind = doc.kind;
      row.innerHTML = `
        <div class="row between"><strong class="title"></strong><span class="badge state"></span></div>
        <div class="number"></div>
        <div class="row"><progress value="0" max="1"></progress><span class="file-state"></span></div>
        <div class="row actions"></div>
        <div class="row"><a class="open button" target="_blank" hidden></a><button type="button" class="print" hidden></button></div>`;
      row.querySelector(".title").textContent = doc.title;
      row.querySelector(".state").textContent = stateLabel(doc.state);
      row.querySelector(".number").textContent = doc.number;
      row.querySelector(".open").textContent = t.open;
      row.querySelector(".print").textContent = t.print;
      const actions = row.querySelector(".actions");
      for (const action of actionsFor(doc)) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = action === "refuse" ? "danger" : "primary";
        button.dataset.action = action;
        button.textContent = t[action];
        actions.appendChild(button);
      }
      list.appendChild(row);
      const key = `${doc.id}:${doc.sha256}`;
      const url = blobs.get(key);
      if (url) {
        row.dataset.file = "verified";
        row.querySelector("progress").value = 1;
        row.querySelector(".file-state").textContent = t.verified;
        row.querySelector(".open").hidden = false;
        row.querySelector(".open").href = url;
        row.querySelector(".print").hidden = false;
      } else if (doc.sha256 && !fetching.has(key)) {
        fetching.add(key);
        fetchFile(entry, row).then(() => {
          const link = row.querySelector(".open");
          if (blobs.get(key)) link.href = blobs.get(key);
        }).catch((err) => {
          row.querySelector(".file-state").textContent = err.message;
        }).finally(() => fetching.delete(key));
      }
    }
  }

  async function load() {
    const inbox = await api("GET", "/api/inbox");
    for (const entry of inbox) entries.set(entry.item.id, entry);
    render();
  }

  // Signature pad: pointer events on a canvas, exported as PNG.
  function pad(canvas) {
    const ctx = canvas.getContext("2d");
    let drawing = false;
    let strokes = 0;
    const reset = () => { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height); strokes = 0; };
    const pos = (event) => {
      const rect = canvas.getBoundingClientRect();
      return [(event.clientX - rect.left) * (canvas.width / rect.width), (event.clientY - rect.top) * (canvas.height / rect.height)];
    };
    canvas.addEventListener("pointerdown", (event) => { drawing = true; strokes++; ctx.beginPath(); ctx.moveTo(...pos(event)); canvas.setPointerCapture(event.pointerId); });
    canvas.addEventListener("pointermove", (event) => { if (!drawing) return; ctx.lineWidth = 3; ctx.lineCap = "round"; ctx.strokeStyle = "#000"; ctx.lineTo(...pos(event)); ctx.stroke(); });
    canvas.addEventListener("pointerup", () => { drawing = false; });
    reset();
    return { reset, empty: () => strokes === 0, png: () => canvas.toDataURL("image/png") };
  }

  const signature = dialog ? pad(dialog.querySelector("canvas")) : null;

  // A transcript's text, read-only, above the signature pad: what the signature is given to.
  // If the clerk saves again while it is open, the new text replaces it, with a warning.
  let reading = null; // the document whose text the dialog shows
  function textOf(doc) { return doc && doc.kind === "transcript" && doc.fields && typeof doc.fields.text === "string" ? doc.fields.text : null; }
  function showText(doc) {
    const block = dialog.querySelector(".document-text");
    if (!block) return;
    const text = textOf(doc);
    reading = text === null ? null : doc;
    block.hidden = text === null;
    block.querySelector(".text-changed").hidden = true;
    block.querySelector(".text").textContent = text || "";
  }
  function textChanged(doc) {
    if (!reading || !dialog.open || reading.id !== doc.id) return;
    const text = textOf(doc);
    if (text === null || text === textOf(reading)) return;
    reading = doc;
    const block = dialog.querySelector(".document-text");
    block.querySelector(".text").textContent = text;
    block.querySelector(".text-changed").hidden = false;
  }

  function ask(action, doc) {
    return new Promise((resolve) => {
      const needsOfficer = box.dataset.officer === "yes";
      dialog.querySelector(".dialog-title").textContent = `${t[action]} · ${doc.title}`;
      dialog.querySelector(".officer-fields").hidden = !needsOfficer;
      dialog.querySelector(".reason-field").hidden = action !== "refuse";
      dialog.querySelector(".signature-field").hidden = !(action === "serve" || action === "sign");
      dialog.querySelector(".signature-hint").textContent = action === "serve" ? t.detaineeSigns : t.youSign;
      showText(action === "sign" ? doc : null);
      dialog.querySelector(".dialog-error").textContent = "";
      signature.reset();
      dialog.querySelector("form").reset();
      dialog.returnValue = "";
      dialog.showModal();
      dialog.onclose = () => {
        if (dialog.returnValue !== "ok") return resolve(null);
        const form = new FormData(dialog.querySelector("form"));
        resolve({
          officer: form.get("officer") || null,
          pin: form.get("pin") || null,
          reason: form.get("reason") || "",
          signature: (action === "serve" || action === "sign") ? signature.png() : null,
          // The version of the text the dialog showed: the server refuses a newer one.
          version: reading && reading.fields ? reading.fields.version : null,
        });
      };
    });
  }

  if (dialog) {
    dialog.querySelector(".clear").addEventListener("click", () => signature.reset());
    dialog.querySelector(".confirm").addEventListener("click", (event) => {
      const needsSignature = !dialog.querySelector(".signature-field").hidden;
      if (needsSignature && signature.empty()) {
        event.preventDefault();
        dialog.querySelector(".dialog-error").textContent = t.signFirst;
      }
    });
  }

  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const row = button.closest(".inbox-row");
    const entry = Array.from(entries.values()).find((e) => e.document.id === row.dataset.document);
    if (!entry) return;
    if (button.classList.contains("print")) {
      const frame = document.createElement("iframe");
      frame.className = "print-frame";
      frame.src = blobs.get(`${entry.document.id}:${entry.document.sha256}`);
      frame.onload = () => frame.contentWindow.print();
      document.body.appendChild(frame);
      return;
    }
    const action = button.dataset.action;
    const answer = await ask(action, entry.document);
    if (!answer) return;
    button.disabled = true;
    try {
      let updated;
      if (action === "sign") {
        const body = { signature: answer.signature };
        if (answer.officer) { body.officer = answer.officer; body.pin = answer.pin; }
        if (answer.version !== null && answer.version !== undefined) body.version = answer.version;
        updated = await api("POST", `/api/documents/${entry.document.id}/sign`, body);
      } else {
        const body = { officer: answer.officer, pin: answer.pin, reason: answer.reason };
        if (action === "serve") body.signature = answer.signature;
        updated = await api("POST", `/api/documents/${entry.document.id}/${action}`, body);
      }
      entry.document = updated;
      announce(`${t.done}: ${t[action]} · ${updated.title}`);
      render();
    } catch (err) {
      announce(`${t.failed}: ${err.message}`);
      button.disabled = false;
    }
  });

  // A creditor confirms a payment; anyone sends a file to the court.
  const paymentForm = document.getElementById("payment-form");
  if (paymentForm) {
    paymentForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = new FormData(paymentForm);
      const fen = Math.round(Number(form.get("amount")) * 100);
      const out = document.getElementById("payment-result");
      try {
        const doc = await api("POST", `/api/cases/${paymentForm.dataset.case}/payments`, { amount_fen: fen, note: form.get("note") || "" });
        out.textContent = `${t.done}: ${doc.title} ${doc.number}`;
        paymentForm.reset();
      } catch (err) { out.textContent = `${t.failed}: ${err.message}`; }
    });
  }
  const uploadForm = document.getElementById("upload-form");
  if (uploadForm) {
    uploadForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const out = document.getElementById("upload-result");
      try {
        const response = await fetch(`/api/cases/${uploadForm.dataset.case}/uploads`, { method: "POST", body: new FormData(uploadForm), credentials: "same-origin" });
        const data = await response.json();
        if (!response.ok) throw new Error(data.detail || response.statusText);
        out.textContent = `${t.done}: ${data.file_name}`;
        uploadForm.reset();
      } catch (err) { out.textContent = `${t.failed}: ${err.message}`; }
    });
  }

  window.courtlinkInbox = {
    bind(socket) {
      socket.on("connect", () => { load().catch((err) => announce(err.message)); });
      socket.on("inbox.item", (message) => {
        entries.set(message.item.id, message);
        beep();
        announce(`${t.newItem}: ${message.document.title} ${message.document.number}`);
        render();
      });
      socket.on("document.updated", (doc) => {
        for (const entry of entries.values()) if (entry.document.id === doc.id) entry.document = doc;
        textChanged(doc);
        render();
      });
    },
    load,
  };
})();
