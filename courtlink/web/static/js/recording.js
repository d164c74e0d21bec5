// The recording indicator of a session's pages: the badge shown while the session is recorded
// and, for the judge, an alert when the recording stopped on its own (disk full, an error).
// The server renders the badge from session.recorded; the Socket.IO `recording` event (and the
// join answer) keep it true while the page is open.
"use strict";

(function () {
  const badge = document.getElementById("recording-badge");
  const alertBox = document.getElementById("recording-alert");

  function show(on) {
    if (!badge) return;
    badge.hidden = !on;
    badge.dataset.recording = on ? "yes" : "no";
  }

  // The alert stays until the judge dismisses it: a recording that stopped by itself must not
  // go unnoticed because a later event (the session ending) arrived first.
  function warn(reason) {
    if (!alertBox) return;
    const text = alertBox.dataset[reason === "disk_full" ? "diskFull" : "failed"];
    alertBox.querySelector(".text").textContent = text;
    alertBox.dataset.reason = reason;
    alertBox.hidden = false;
  }

  function bind(socket) {
    socket.on("recording", (message) => {
      if (!message) return;
      show(!!message.recording);
      if (message.reason === "disk_full" || message.reason === "failed") warn(message.reason);
    });
    socket.on("session_ended", () => show(false));
  }

  document.addEventListener("courtlink:joined", (event) => {
    const session = event.detail && event.detail.ack && event.detail.ack.session;
    if (session && typeof session.recorded === "boolean" && !session.recorded) show(false);
  });

  if (alertBox) {
    alertBox.querySelector("button").addEventListener("click", () => {
      alertBox.hidden = true;
    });
  }

  window.courtlinkRecording = { bind, show, warn };
})();
