// The judge's playback of a recorded session: every seat's video (and, in a paired <audio>,
// its sound) side by side, one seek bar and one play button for all.
//
// One master clock drives everything: `position`, in seconds on the session clock, advanced
// from performance.now() while playing. Each file starts at its offset_seconds on that clock;
// every tick each element is told where it should be (played, paused, or parked at its first or
// last picture when the seat was not in the session at that moment). Drift above DRIFT is
// corrected: small drift by nudging the element's playbackRate (no visible jump), larger by a
// seek. The clock waits while an element that should be playing is seeking or buffering, so a
// slow file holds the others back instead of falling ever further behind.
"use strict";

(function () {
  const player = document.getElementById("player");
  if (!player) return;
  const t = document.getElementById("playback-i18n").dataset;
  const seekBar = document.getElementById("seek");
  const playButton = document.getElementById("play");
  const clock = document.getElementById("clock");
  const total = Number(player.dataset.duration) || 0;
  const DRIFT = 0.1; // s: beyond this an element is corrected
  const JUMP = 0.5; // s: beyond this it is corrected by seeking rather than by its rate
  const MAX_HOLD = 2000; // ms: a stalled element holds the clock back at most this long

  const tracks = Array.from(player.querySelectorAll("video[data-offset], audio[data-offset]")).map((el) => ({
    el,
    offset: Number(el.dataset.offset) || 0,
    listed: Number(el.dataset.duration) || 0,
    tile: el.closest(".playback-tile"),
  }));

  let position = 0;
  let playing = false;
  let last = performance.now();
  let heldSince = null;
  let dragging = false;

  // The manifest's duration; the file's own if the manifest has none (a recording cut short).
  function length(track) {
    if (track.listed > 0) return track.listed;
    const d = track.el.duration;
    return Number.isFinite(d) ? d : total;
  }

  function isActive(track) {
    const x = position - track.offset;
    return x >= 0 && x < length(track);
  }

  function stalled() {
    return tracks.some((track) => {
      if (!isActive(track)) return false;
      // Near its end an element cannot have "future data"; that is not a stall.
      if (position - track.offset > length(track) - 0.3) return false;
      return track.el.seeking || track.el.readyState < HTMLMediaElement.HAVE_FUTURE_DATA;
    });
  }

  function place(track, exact) {
    const el = track.el;
    const x = position - track.offset;
    const end = length(track);
    if (x < 0 || x >= end) {
      if (!el.paused) el.pause();
      el.playbackRate = 1;
      // Parked at its first or last picture while the seat was not in the session.
      const edge = x < 0 ? 0 : Math.max(0, end - 0.05);
      if (!el.seeking && Math.abs(el.currentTime - edge) > DRIFT) el.currentTime = edge;
      return;
    }
    const drift = el.currentTime - x;
    if (exact || !playing) {
      if (Math.abs(drift) > 0.02 && !el.seeking) el.currentTime = x;
      el.playbackRate = 1;
    } else if (Math.abs(drift) > JUMP) {
      if (!el.seeking) el.currentTime = x;
      el.playbackRate = 1;
    } else if (Math.abs(drift) > DRIFT) {
      el.playbackRate = drift > 0 ? 0.9 : 1.1;
    } else if (Math.abs(drift) < 0.03) {
      el.playbackRate = 1;
    }
    if (playing && el.paused) el.play().catch(() => {});
    if (!playing && !el.paused) el.pause();
  }

  function format(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60);
    const h = Math.floor(m / 60);
    const mm = h ? String(m % 60).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s % 60).padStart(2, "0");
  }

  function show() {
    if (!dragging) seekBar.value = String(position);
    clock.textContent = format(position) + " / " + format(total);
    player.dataset.position = position.toFixed(3);
    player.dataset.playing = playing ? "yes" : "no";
    for (const tile of player.querySelectorAll(".playback-tile[data-present=yes]")) {
      const mine = tracks.filter((track) => track.tile === tile);
      tile.querySelector(".not-yet").hidden = mine.some(isActive);
    }
  }

  function tick() {
    const now = performance.now();
    if (playing) {
      if (stalled()) {
        if (heldSince === null) heldSince = now;
      } else {
        heldSince = null;
      }
      if (heldSince === null || now - heldSince > MAX_HOLD) {
        position = Math.min(total, position + (now - last) / 1000);
      }
      if (position >= total) stop();
    }
    last = now;
    for (const track of tracks) place(track, false);
    show();
  }

  function seekTo(seconds) {
    position = Math.min(total, Math.max(0, seconds));
    heldSince = null;
    for (const track of tracks) place(track, true);
    show();
  }

  function start() {
    if (position >= total) position = 0;
    playing = true;
    last = performance.now();
    playButton.textContent = t.pause;
    playButton.setAttribute("aria-pressed", "true");
    seekTo(position);
  }

  function stop() {
    playing = false;
    playButton.textContent = t.play;
    playButton.setAttribute("aria-pressed", "false");
    for (const track of tracks) if (!track.el.paused) track.el.pause();
    show(); // the page says "paused" at once, not at the next tick
  }

  playButton.addEventListener("click", () => (playing ? stop() : start()));
  seekBar.addEventListener("input", () => {
    dragging = true;
    seekTo(Number(seekBar.value));
  });
  seekBar.addEventListener("change", () => {
    dragging = false;
    seekTo(Number(seekBar.value));
  });

  // A timer rather than requestAnimationFrame: the clock must keep the elements in step even
  // when the tab is in the background (the sound goes on playing there).
  setInterval(tick, 50);
  seekTo(0);
  playButton.disabled = false;
})();
