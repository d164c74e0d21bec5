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
  const mediaLostBanner = document.getElementById("media-lost");

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
  // Nothing for this long (the whole connection, or one seat) is called lost: the banner and
  // the tiles say so before the page asks for a new connection at SILENCE_MS.
  const LOST_MS = 3000;
  // A tile's indicator judges the last few seconds of its stats (freezes, loss), so one bad
  // second shows as weak for a while instead of flickering.
  const WINDOW_MS = 4500;
  // The server's media.quality is about once a second; older than this it says nothing.
  const QUALITY_STALE_MS = 5000;
  let hadMedia = false;     // media arrived once since the page joined: later silence is a loss
  let mediaLost = false;
  let samples = {};         // seat -> [{at, vBytes, aBytes, packets, lost, freezes, freezeSec, fps, jitter}]
  let arrived = {};         // seat -> {audio, video}: when bytes of each kind last arrived
  let holders = {};         // seat -> the participant its samples are about
  let serverQuality = { message: null, at: 0 };
  // Our video sender and the most the offer lets it send; the bitrate the server last asked of
  // it (send_kbps in media.quality), applied as the encoding's maxBitrate.
  let publishing = { sender: null, max: 0, applied: 0 };

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

  // How the server wants our camera sent (docs/protocol.md, "publish"): VP8 in temporal layers,
  // so that the SFU can leave the upper layers out for a weak viewer, and at most a bitrate.
  // Chromium takes the encodings of the answering side once the answer is set locally.
  async function applyPublish(peer, offer) {
    delete room.dataset.publish;
    const wanted = offer.publish && offer.publish.video;
    if (!wanted) return;
    const transceiver = peer.getTransceivers().find((x) => x.mid === offer.own.video);
    if (!transceiver) return;
    const sender = transceiver.sender;
    publishing = { sender, max: wanted.max_bitrate_bps || 0, applied: wanted.max_bitrate_bps || 0 };
    const apply = async (fields) => {
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) params.encodings = [{}];
      Object.assign(params.encodings[0], fields);
      await sender.setParameters(params);
    };
    const fields = {};
    if (wanted.max_bitrate_bps) fields.maxBitrate = wanted.max_bitrate_bps;
    if (wanted.scalability_mode) fields.scalabilityMode = wanted.scalability_mode;
    try {
      await apply(fields);
      room.dataset.publish = wanted.scalability_mode || "bitrate";
    } catch (err) {
      // A browser or codec without that mode: the bitrate alone, one layer as before.
      console.warn("publish parameters refused", err);
      delete fields.scalabilityMode;
      try {
        if (Object.keys(fields).length) await apply(fields);
        room.dataset.publish = "bitrate";
      } catch (again) {
        console.warn("publish bitrate refused", again);
      }
    }
  }

  async function onOffer(offer) {
    if (pc) pc.close();
    slots = {};
    samples = {};
    arrived = {};
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
      updateMediaState();
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
    await applyPublish(peer, offer);
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
      const audioBySeat = {};
      let received = 0;
      report.forEach((stat) => {
        if (stat.type === "transport") received += stat.packetsReceived || 0;
        if (stat.type !== "inbound-rtp") return;
        const slot = slots[stat.mid];
        if (!slot) return;
        if (stat.kind === "video") bySeat[slot.seat] = stat;
        else if (stat.kind === "audio") audioBySeat[slot.seat] = stat;
      });
      for (const [seat, stat] of Object.entries(bySeat)) {
        const el = tile(seat);
        if (el) el.dataset.framesDecoded = String(stat.framesDecoded || 0);
      }
      if (peer !== pc) return;
      watchSilence(peer, received);
      remember(bySeat, audioBySeat);
      updateMediaState();
    }, 1000);
  }

  // One sample per seat and second from the page's own stats; counters are cumulative.
  function remember(video, audio) {
    const now = Date.now();
    const seats = new Set([...Object.keys(video), ...Object.keys(audio)]);
    for (const seat of seats) {
      const v = video[seat] || {};
      const a = audio[seat] || {};
      const sample = {
        at: now,
        vBytes: v.bytesReceived || 0,
        aBytes: a.bytesReceived || 0,
        packets: v.packetsReceived || 0,
        lost: Math.max(0, v.packetsLost || 0),
        freezes: v.freezeCount || 0,
        freezeSec: v.totalFreezesDuration || 0,
        fps: v.framesPerSecond,
        jitter: v.jitter,
      };
      const list = samples[seat] || (samples[seat] = []);
      const previous = list[list.length - 1];
      const seen = arrived[seat] || (arrived[seat] = { audio: 0, video: 0 });
      if (sample.aBytes > (previous ? previous.aBytes : 0)) seen.audio = now;
      if (sample.vBytes > (previous ? previous.vBytes : 0)) seen.video = now;
      list.push(sample);
      while (list.length > 1 && now - list[0].at > WINDOW_MS) list.shift();
    }
  }

  // The page's media as a whole: lost while the connection is down, or nothing arrived for
  // LOST_MS (the same count watchSilence restarts on), or a new connection is not up yet.
  function updateMediaState() {
    const now = Date.now();
    const state = pc ? pc.connectionState : "closed";
    const up = state === "connected" && heard.count >= 0 && now - heard.at < LOST_MS;
    if (up) hadMedia = true;
    const lost = !!pc && (state === "failed" || state === "disconnected" || (hadMedia && !up));
    mediaLost = lost;
    room.dataset.media = !pc ? "" : lost ? "lost" : up ? "ok" : "connecting";
    if (mediaLostBanner) mediaLostBanner.hidden = !lost;
    renderQuality();
  }

  function watchSilence(peer, received) {
    const now = Date.now();
    if (received !== heard.count) { heard.count = received; heard.at = now; return; }
    if (peer.connectionState !== "connected" || now - heard.at < SILENCE_MS) return;
    if (now - heard.asked < 2 * SILENCE_MS || !socket || !socket.connected) return;
    heard.asked = now;
    socket.emit("media.restart", {}, () => {});
  }

  function serverView() {
    if (!serverQuality.message || Date.now() - serverQuality.at > QUALITY_STALE_MS) return {};
    return serverQuality.message;
  }

  // What the SFU sends us of a seat's video: "full", "reduced" (fewer temporal layers) or
  // "audio_only" (our link cannot carry it); from media.quality, about ourselves.
  function receivingOf(seat) {
    const mine = serverView()[room.dataset.participant];
    return (mine && mine.receiving && mine.receiving[seat]) || null;
  }

  // Whether the judge keeps this seat's media from us on purpose (docs/protocol.md, the lobby
  // and caucus): a tile in the lobby or on hold, or, when we are on hold ourselves, every tile
  // but the other held side's; in the lobby we receive nothing.
  function heldApart(el) {
    const mine = [...document.querySelectorAll(".seat-tile.me")];
    if (mine.some((x) => x.classList.contains("in-lobby"))) return true;
    const held = el.classList.contains("on-hold");
    if (mine.some((x) => x.classList.contains("on-hold"))) return !held;
    return held || el.classList.contains("in-lobby");
  }

  // [good | weak | lost, why] for one remote seat's tile, or [null, ""] when there is nothing
  // to say (an empty seat, our own, a seat held apart, a connection still starting). "why"
  // (data-quality-why) names the rule, for a support call and the tests.
  function judge(seat, el) {
    if (!pc || !el.classList.contains("present") || el.classList.contains("me")) return [null, ""];
    if (heldApart(el)) return [null, ""];
    if (holders[seat] !== el.dataset.participant) {
      // Somebody else holds the seat now (a new join): what came before was theirs.
      holders[seat] = el.dataset.participant;
      delete samples[seat];
      delete arrived[seat];
    }
    if (mediaLost) return ["lost", "page"];
    if (!hadMedia) return [null, ""];  // our own connection is still starting
    const now = Date.now();
    const view = serverView();
    const theirs = view[el.dataset.participant];
    const mine = view[room.dataset.participant];
    if (theirs && (theirs.state === "failed" || theirs.state === "closed")) return ["lost", "server-state"];
    const list = samples[seat] || [];
    const last = list[list.length - 1];
    const first = list[0];
    const seen = arrived[seat] || { audio: 0, video: 0 };
    const receiving = receivingOf(seat);
    // Lost when everything that came from the seat and should still come has stopped: not the
    // video the SFU keeps from us (audio only), not the sound the judge muted.
    const expected = [];
    if (seen.video && receiving !== "audio_only") expected.push(seen.video);
    if (seen.audio && !el.classList.contains("muted")) expected.push(seen.audio);
    if (expected.length && expected.every((at) => now - at >= LOST_MS)) return ["lost", "nothing-arrives"];
    if (!seen.audio && !seen.video && !(theirs && theirs.state === "connected")) return [null, ""];
    if (receiving === "reduced" || receiving === "audio_only") return ["weak", "receiving"];
    if (theirs && ((theirs.loss || 0) > 0.05 || (theirs.rtt_ms || 0) > 400)) return ["weak", "their-link"];
    if (mine && (mine.rtt_ms || 0) > 400) return ["weak", "my-rtt"];
    if (seen.video && now - seen.video >= LOST_MS) return ["weak", "still-picture"];  // sound, but a still picture
    if (last && first && last !== first) {
      const packets = last.packets - first.packets;
      const lost = last.lost - first.lost;
      if (packets + lost >= 20 && lost / (packets + lost) > 0.05) return ["weak", "loss"];
      if (last.freezes - first.freezes >= 3 || last.freezeSec - first.freezeSec >= 0.8) return ["weak", "freezes"];
      const kbps = ((last.vBytes - first.vBytes) * 8) / Math.max(1, last.at - first.at);
      if (typeof last.fps === "number" && last.fps < 5 && kbps > 30) return ["weak", "fps"];
    }
    if (last && typeof last.jitter === "number" && last.jitter > 0.1) return ["weak", "jitter"];
    return ["good", "ok"];
  }

  function renderQuality() {
    const labels = { good: t.linkGood, weak: t.linkWeak, lost: t.linkLost };
    const view = serverView();
    const mine = view[room.dataset.participant];
    for (const el of document.querySelectorAll(".seat-tile")) {
      const seat = el.dataset.seat;
      const [quality, why] = judge(seat, el);
      el.dataset.qualityWhy = why;
      const box = el.querySelector(".link");
      if (quality) el.dataset.quality = quality;
      else delete el.dataset.quality;
      if (box) {
        box.hidden = !quality;
        box.querySelector(".link-text").textContent = quality ? labels[quality] : "";
        const last = (samples[seat] || []).slice(-1)[0];
        const details = [];
        if (last && typeof last.fps === "number") details.push(`${Math.round(last.fps)} fps`);
        if (mine && typeof mine.estimate_kbps === "number") details.push(`${t.downlink} ${mine.estimate_kbps} kbps`);
        box.title = details.join(" · ");
      }
      const receiving = quality ? receivingOf(seat) : null;
      el.dataset.receiving = receiving || "";
      const audioOnly = receiving === "audio_only";
      el.classList.toggle("audio-only", audioOnly);
      const note = el.querySelector(".audio-only-note");
      if (note) note.hidden = !audioOnly;
    }
  }

  // The server asks each publisher for a bitrate (what its viewers' links and its own uplink
  // carry). Chromium's sender no longer follows the server's REMB, so the page sets it as the
  // encoding's maxBitrate, never above what the offer allowed; small changes are left alone.
  async function followSendRate(kbps) {
    const { sender, max } = publishing;
    if (!sender || !max || typeof kbps !== "number" || kbps <= 0) return;
    const wanted = Math.min(max, Math.round(kbps * 1000));
    const applied = publishing.applied;
    if (applied && Math.abs(wanted - applied) < 0.1 * applied && wanted !== max) return;
    if (wanted === applied) return;
    publishing.applied = wanted;
    try {
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) return;
      params.encodings[0].maxBitrate = wanted;
      await sender.setParameters(params);
      room.dataset.sendKbps = String(Math.round(wanted / 1000));
    } catch (err) {
      console.warn("send bitrate refused", err);
    }
  }

  function onQuality(message) {
    // {participant: {state, rtt_ms, loss, estimate_kbps?, send_kbps?, receiving?}}: the
    // server's view of each participant's connection (and of what it receives of each seat).
    serverQuality = { message: message || {}, at: Date.now() };
    const own = (message || {})[room.dataset.participant];
    if (own && own.send_kbps) followSendRate(own.send_kbps);
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
    renderQuality();
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
      hadMedia = false;
      samples = {};
      arrived = {};
      updateMediaState();
    },
  };
  if (deviceBox) window.courtlinkMedia.ready();
})();
