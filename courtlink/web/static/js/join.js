// The join page: connect to signaling, take the seat, show who is in and what the judge
// decided (lobby, caucus, mute); for the judge, the moderation controls. Media lives in media.js.
"use strict";

(function () {
  const room = document.getElementById("room");
  if (!room) return;
  const t = document.getElementById("i18n").dataset;
  const statusEl = document.getElementById("status");
  const myStatus = document.getElementById("my-status");
  const stateEl = document.getElementById("session-state");
  const joinButton = document.getElementById("join-button");
  const leaveButton = document.getElementById("leave-button");
  const controls = document.getElementById("controls");
  const lobbyToggle = document.getElementById("lobby-toggle");
  const caucusSelect = document.getElementById("caucus");
  const endButton = document.getElementById("end-session");
  const sessionId = room.dataset.session;
  const mode = room.dataset.mode;
  const isJudge = room.dataset.judge === "yes";
  const media = window.courtlinkMedia;
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
    let mine = null;
    for (const tile of document.querySelectorAll(".seat-tile")) {
      const seat = tile.dataset.seat;
      const held = presence.seats[seat];
      const status = (held && held.status) || {};
      tile.classList.toggle("present", !!held);
      tile.classList.toggle("empty", !held);
      tile.classList.toggle("me", !!(held && me && held.participant === me));
      tile.classList.toggle("on-hold", !!status.on_hold);
      tile.classList.toggle("in-lobby", !!status.in_lobby);
      tile.classList.toggle("muted", !!status.muted);
      tile.dataset.participant = held ? held.participant : "";
      tile.dataset.status = held ? [status.in_lobby && "lobby", status.on_hold && "hold", status.muted && "muted"].filter(Boolean).join(" ") : "";
      tile.querySelector(".occupant").textContent = held ? held.name : "";
      let label = held ? t.present : t.empty;
      if (held && held.state.audio_muted) label += " · " + t.muted;
      tile.querySelector(".seat-state").textContent = label;
      const badges = [];
      if (status.in_lobby) badges.push(t.inLobby);
      if (status.on_hold) badges.push(t.onHold);
      if (status.muted) badges.push(t.mutedByJudge);
      tile.querySelector(".badges").textContent = badges.join(" · ");
      const buttons = tile.querySelector(".seat-controls");
      if (buttons) {
        buttons.hidden = !held;
        buttons.querySelector('[data-action="mute"]').hidden = !!status.muted;
        buttons.querySelector('[data-action="unmute"]').hidden = !status.muted;
        const admit = buttons.querySelector('[data-action="admit"]');
        if (admit) admit.hidden = !status.in_lobby;
      }
      if (held && me && held.participant === me) mine = status;
    }
    if (mine && (mine.in_lobby || mine.on_hold || mine.muted)) {
      myStatus.textContent = mine.in_lobby ? t.myLobby : mine.on_hold ? t.myHold : t.myMuted;
      myStatus.hidden = false;
    } else {
      myStatus.hidden = true;
    }
    if (controls && presence.moderation) {
      lobbyToggle.checked = presence.moderation.lobby;
      caucusSelect.value = presence.moderation.caucus || "";
    }
  }

  function stop(message) {
    stopped = true;
    say(message);
    joinButton.hidden = true;
    leaveButton.hidden = true;
    if (controls) controls.hidden = true;
    if (media) media.stop();
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
      if (controls && isJudge) {
        controls.hidden = false;
        document.querySelectorAll(".seat-controls").forEach((el) => { el.hidden = false; });
      }
      say(t.joined);
      render(ack.data.presence);
      document.dispatchEvent(new CustomEvent("courtlink:joined", { detail: { socket, ack: ack.data } }));
    });
  }

  function moderate(event, payload) {
    socket.emit(event, payload, (ack) => {
      if (!ack || !ack.ok) say(t.refused + " " + (ack ? ack.error.message : "?"));
    });
  }

  function connect() {
    // The session in the query lets a load balancer keep a session's connections on one node.
    socket = io({ auth: { as: mode }, query: { session: sessionId }, transports: ["websocket", "polling"], reconnectionDelayMax: 2000 });
    if (media) media.bind(socket);
    if (window.courtlinkInbox) window.courtlinkInbox.bind(socket);
    if (window.courtlinkRecording) window.courtlinkRecording.bind(socket);
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
      if (controls) controls.hidden = true;
      if (media) media.stop();
      say(t.left);
    });
  });
  if (controls) {
    lobbyToggle.addEventListener("change", () => moderate("lobby", { enabled: lobbyToggle.checked }));
    caucusSelect.addEventListener("change", () => moderate("caucus", { side: caucusSelect.value || null }));
    endButton.addEventListener("click", () => { if (window.confirm(t.confirmEnd)) moderate("end", {}); });
    room.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const seat = button.dataset.seat;
      const action = button.dataset.action;
      if (action === "mute" || action === "unmute") moderate("mute", { seat, muted: action === "mute" });
      else if (action === "admit") moderate("admit", { seat });
      else if (action === "remove" && window.confirm(t.confirmRemove)) moderate("remove", { seat });
    });
  }
  joinButton.disabled = true;
  const ready = media ? media.ready() : Promise.resolve();
  ready.finally(connect);
})();
