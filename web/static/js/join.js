// The join page: connect to signaling, take the seat, show who is in.
// Media (camera, microphone, remote videos) is added by the media client.
"use strict";

(function () {
  const room = document.getElementById("room");
  if (!room) return;
  const t = document.getElementById("i18n").dataset;
  const statusEl = document.getElementById("status");
  const stateEl = document.getElementById("session-state");
  const joinButton = document.getElementById("join-button");
  const leaveButton = document.getElementById("leave-button");
  const sessionId = room.dataset.session;
  const mode = room.dataset.mode;
  let socket = null;
  let me = null;
  let stopped = false;

  function say(text) { statusEl.textContent = text; }

  function stateLabel(state) {
    return state === "ended" ? t.endedState : (t[state] || state);
  }

  function render(presence) {
    stateEl.textContent = stateLabel(presence.state);
    room.dataset.state = presence.state;
    for (const tile of document.querySelectorAll(".seat-tile")) {
      const seat = tile.dataset.seat;
      const held = presence.seats[seat];
      tile.classList.toggle("present", !!held);
      tile.classList.toggle("empty", !held);
      tile.classList.toggle("me", !!(held && me && held.participant === me));
      tile.querySelector(".occupant").textContent = held ? held.name : "";
      let label = held ? t.present : t.empty;
      if (held && held.state.audio_muted) label += " · " + t.muted;
      tile.querySelector(".seat-state").textContent = label;
    }
  }

  function stop(message) {
    stopped = true;
    say(message);
    joinButton.hidden = true;
    leaveButton.hidden = true;
    if (socket) socket.disconnect();
  }

  function join() {
    socket.emit("join", { session: sessionId }, (ack) => {
      if (!ack || !ack.ok) {
        say(t.refused + " " + (ack ? ack.error.message : "?"));
        joinButton.disabled = false;
        return;
      }
      me = ack.data.participant;
      room.dataset.participant = me;
      joinButton.hidden = true;
      leaveButton.hidden = false;
      say(t.joined);
      render(ack.data.presence);
      document.dispatchEvent(new CustomEvent("courtlink:joined", { detail: { socket, ack: ack.data } }));
    });
  }

  function connect() {
    socket = io({ auth: { as: mode }, transports: ["websocket", "polling"] });
    socket.on("connect", () => {
      say(t.connected);
      if (me !== null || room.dataset.autojoin === "yes") { me = null; join(); }
      else joinButton.disabled = false;
    });
    socket.on("connect_error", (err) => {
      const data = err && err.data;
      say(t.refused + " " + (data && data.message ? data.message : err.message));
      if (data && data.code && data.code.startsWith("invite_")) stop(t.refused + " " + data.message);
    });
    socket.on("disconnect", () => { if (!stopped) say(t.disconnected); });
    socket.on("presence", render);
    socket.on("replaced", () => stop(t.replaced));
    socket.on("session_ended", () => stop(t.ended));
    socket.on("removed", () => stop(t.removed));
  }

  joinButton.addEventListener("click", () => { joinButton.disabled = true; join(); });
  leaveButton.addEventListener("click", () => {
    socket.emit("leave", {}, () => {
      me = null;
      leaveButton.hidden = true;
      joinButton.hidden = false;
      joinButton.disabled = false;
      say(t.left);
    });
  });
  joinButton.disabled = true;
  connect();
})();
