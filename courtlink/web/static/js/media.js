// The media client of the join page: device check, one RTCPeerConnection to the server, remote
// videos per seat. The server makes the only offer; the browser answers. Slots are fixed: joins,
// leaves, mute and caucus change what the server forwards, never the connection.
"use strict";

(function () {
  const room = document.getElementById("room");
  if (!room) return;
  const t = document.getElementById("i18n").dataset;
  const deviceBox = document.getElementById("devices");
  const preview = document.getElementById("preview");
  const cameraSelect = document.getElementById("camera");
  const micSelect = document.getElementById("microphone");
  const deviceMessage = document.getElementById("device-message");
  const muteMic = document.getElementById("mute-mic");
  const muteCam = document.getElementById("mute-cam");

  let localStream = null;
  let pc = null;
  let socket = null;
  let slots = {};          // mid -> {seat, kind}
  let streams = {};        // seat -> MediaStream
  let restartTimer = null;
  let restartForced = false;  // the server said our connection failed: restart even if it looks up
  let statsTimer = null;
  // The server sends RTCP on every slot about once a second, even to a participant on hold or
  // in the lobby: a connection that receives nothing for this long is dead although the
  // browser may still call it connected, and the page asks for a new one (docs/protocol.md).
  const SILENCE_MS = 5000;
  let heard = { count: -1, at: 0, asked: 0 };

  function tile(seat) { return document.querySelector(`.seat-tile[data-seat="${seat}"]`); }

  function deviceError(err) {
    let text = t.deviceFailed;
    if (err && (err.name === "NotAllowedError" || err.name === "SecurityError")) text = t.permissionRefused;
    else if (err && (err.name === "NotFoundError" || err.name === "OverconstrainedError")) text = t.noDevice;
    else if (!window.isSecureContext) text = t.insecure;
    deviceMessage.textContent = text;
    deviceMessage.hidden = false;
    room.dataset.devices = "failed";
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    for (const [select, kind] of [[cameraSelect, "videoinput"], [micSelect, "audioinput"]]) {
      const current = select.value;
      select.textContent = "";
      devices.filter((d) => d.kind === kind).forEach((d, i) => {
        const option = document.createElement("option");
        option.value = d.deviceId;
        option.textContent = d.label || `${kind} ${i + 1}`;
        select.appendChild(option);
      });
      if (current) select.value = current;
    }
  }

  async function openDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      deviceError({ name: window.isSecureContext ? "NotFoundError" : "SecurityError" });
      return null;
    }
    const constraints = {
      audio: micSelect.value ? { deviceId: { exact: micSelect.value } } : true,
      video: cameraSelect.value ? { deviceId: { exact: cameraSelect.value }, width: 640, height: 480 } : { width: 640, height: 480 },
    };
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      if (localStream) localStream.getTracks().forEach((track) => track.stop());
      localStream = stream;
      preview.srcObject = stream;
      deviceMessage.hidden = true;
      room.dataset.devices = "ok";
      await listDevices();
      replaceLocalTracks();
      return stream;
    } catch (err) {
      deviceError(err);
      return null;
    }
  }

  function replaceLocalTracks() {
    if (!pc || !localStream) return;
    for (const transceiver of pc.getTransceivers()) {
      const slot = slots[transceiver.mid];
      if (slot) continue;
      const kind = transceiver.receiver.track.kind;
      const track = localStream.getTracks().find((x) => x.kind === kind);
      if (track) transceiver.sender.replaceTrack(track);
    }
  }

  function attachRemote(seat, track) {
    if (!streams[seat]) streams[seat] = new MediaStream();
    const stream = streams[seat];
    stream.getTracks().filter((x) => x.kind === track.kind).forEach((x) => stream.removeTrack(x));
    stream.addTrack(track);
    const el = tile(seat);
    if (!el) return;
    let video = el.querySelector("video.remote");
    if (!video) {
      video = document.createElement("video");
      video.className = "remote";
      video.autoplay = true;
      video.playsInline = true;
      el.insertBefore(video, el.firstChild);
    }
    if (video.srcObject !== stream) video.srcObject = stream;
    video.play().catch(() => {});
  }

  function waitForGathering(peer, ms) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { peer.removeEventListener("icegatheringstatechange", check); resolve(); };
      const check = () => { if (peer.iceGatheringState === "complete") done(); };
      peer.addEventListener("icegatheringstatechange", check);
      setTimeout(done, ms);
    });
  }

  async function onOffer(offer) {
    if (pc) pc.close();
    slots = {};
    for (const slot of offer.slots) slots[slot.mid] = slot;
    const config = { bundlePolicy: "max-bundle", iceServers: offer.ice_servers || [] };
    if (offer.ice_transport_policy) config.iceTransportPolicy = offer.ice_transport_policy;
    const peer = new RTCPeerConnection(config);
    pc = peer;
    heard = { count: -1, at: Date.now(), asked: heard.asked };
    room.dataset.peer = "connecting";
    peer.ontrack = (event) => {
      const slot = slots[event.transceiver.mid];
      if (slot) attachRemote(slot.seat, event.track);
    };
    peer.onconnectionstatechange = () => {
      if (peer !== pc) return;
      room.dataset.peer = peer.connectionState;
      if (peer.connectionState === "failed" || peer.connectionState === "disconnected") scheduleRestart();
      else if (peer.connectionState === "connected" && restartTimer && !restartForced) { clearTimeout(restartTimer); restartTimer = null; }
    };
    await peer.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    for (const transceiver of peer.getTransceivers()) {
      if (transceiver.mid === offer.own.audio || transceiver.mid === offer.own.video) {
        const kind = transceiver.mid === offer.own.audio ? "audio" : "video";
        const track = localStream && localStream.getTracks().find((x) => x.kind === kind);
        transceiver.direction = "sendonly";
        if (track) await transceiver.sender.replaceTrack(track);
      }
    }
    await peer.setLocalDescription(await peer.createAnswer());
    await waitForGathering(peer, 3000);
    socket.emit("media.answer", { sdp: peer.localDescription.sdp }, (ack) => {
      if (!ack || !ack.ok) room.dataset.peer = "refused";
    });
    startStats();
  }

  function scheduleRestart(force) {
    if (force) restartForced = true;
    if (restartTimer) return;
    // Give the network a moment; aiortc has no ICE restart, so the server builds a new
    // connection for the same seat and slots.
    restartTimer = setTimeout(() => {
      restartTimer = null;
      const forced = restartForced;
      restartForced = false;
      if (!forced && pc && (pc.connectionState === "connected")) return;
      if (socket && socket.connected) socket.emit("media.restart", {}, () => {});
    }, 2000);
  }

  function startStats() {
    if (statsTimer) return;
    statsTimer = setInterval(async () => {
      if (!pc) return;
      const peer = pc;
      const report = await peer.getStats();
      const bySeat = {};
      let received = 0;
      report.forEach((stat) => {
        if (stat.type === "transport") received += stat.packetsReceived || 0;
        if (stat.type !== "inbound-rtp" || stat.kind !== "video") return;
        const slot = slots[stat.mid];
        if (slot) bySeat[slot.seat] = stat;
      });
      for (const [seat, stat] of Object.entries(bySeat)) {
        const el = tile(seat);
        if (el) el.dataset.framesDecoded = String(stat.framesDecoded || 0);
      }
      if (peer === pc) watchSilence(peer, received);
    }, 1000);
  }

  function watchSilence(peer, received) {
    const now = Date.now();
    if (received !== heard.count) { heard.count = received; heard.at = now; return; }
    if (peer.connectionState !== "connected" || now - heard.at < SILENCE_MS) return;
    if (now - heard.asked < 2 * SILENCE_MS || !socket || !socket.connected) return;
    heard.asked = now;
    socket.emit("media.restart", {}, () => {});
  }

  function onQuality(message) {
    // {participant: {state, rtt_ms, loss}}: the server's view of each participant's connection.
    for (const el of document.querySelectorAll(".seat-tile")) {
      const who = el.dataset.participant;
      const q = who && message[who];
      const box = el.querySelector(".quality");
      if (!box) continue;
      if (!q) { box.textContent = ""; continue; }
      const parts = [];
      if (q.rtt_ms !== null && q.rtt_ms !== undefined) parts.push(`${t.rtt} ${Math.round(q.rtt_ms)} ms`);
      if (q.loss !== null && q.loss !== undefined) parts.push(`${t.loss} ${(q.loss * 100).toFixed(1)}%`);
      box.textContent = parts.join(" · ");
      el.classList.toggle("poor", (q.loss || 0) > 0.05 || (q.rtt_ms || 0) > 400);
    }
  }

  muteMic.addEventListener("click", () => {
    if (!localStream) return;
    const track = localStream.getAudioTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    muteMic.setAttribute("aria-pressed", String(!track.enabled));
    muteMic.textContent = track.enabled ? t.muteMic : t.unmuteMic;
    if (socket) socket.emit("state", { audio_muted: !track.enabled }, () => {});
  });
  muteCam.addEventListener("click", () => {
    if (!localStream) return;
    const track = localStream.getVideoTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    muteCam.setAttribute("aria-pressed", String(!track.enabled));
    muteCam.textContent = track.enabled ? t.muteCam : t.unmuteCam;
    if (socket) socket.emit("state", { video_muted: !track.enabled }, () => {});
  });
  cameraSelect.addEventListener("change", openDevices);
  micSelect.addEventListener("change", openDevices);

  // Called by join.js before joining (device check first) and once the socket exists.
  let checked = null;  // the device check of the page load: the camera is opened once, not twice
  window.courtlinkMedia = {
    ready() {
      if (!checked) checked = openDevices();
      return checked;
    },
    bind(sock) {
      socket = sock;
      sock.on("media.offer", (offer) => { onOffer(offer).catch((err) => { console.error(err); room.dataset.peer = "error"; }); });
      sock.on("media.quality", onQuality);
      // The server gave up on our connection (ICE did not complete in time, or it dropped): ask
      // for a new one, as docs/protocol.md says; the browser's own view may not have noticed.
      sock.on("media.state", (message) => { if (message && message.state === "failed" && pc) scheduleRestart(true); });
    },
    stop() {
      if (pc) pc.close();
      pc = null;
      if (restartTimer) clearTimeout(restartTimer);
      restartTimer = null;
      restartForced = false;
      if (statsTimer) clearInterval(statsTimer);
      statsTimer = null;
    },
  };
  if (deviceBox) window.courtlinkMedia.ready();
})();
