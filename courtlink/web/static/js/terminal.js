// The detention-center terminal: one Socket.IO connection kept open whenever the terminal is
// on, so the court's orders arrive at once; after a break the inbox is fetched again.
"use strict";

(function () {
  const badge = document.getElementById("terminal-link");
  const t = document.getElementById("terminal-i18n").dataset;
  const socket = io({ auth: { as: "terminal" }, transports: ["websocket", "polling"], reconnectionDelayMax: 3000 });
  socket.on("connect", () => { badge.textContent = t.online; badge.dataset.state = "online"; });
  socket.on("disconnect", () => { badge.textContent = t.offline; badge.dataset.state = "offline"; });
  window.courtlinkInbox.bind(socket);
})();
