// A Socket.IO client on the npm socket.io-client package, driven by test_node_client.py.
//
//   node node_client.mjs <server url> '<json options>'     (or the options on stdin)
//
// options: {"auth": {...}, "cookie": "cl_invite=...", "transports": ["websocket"],
//           "actions": [{"emit": "join", "args": [{...}]},     // with an ack, printed
//                       {"wait": "replaced", "timeout": 5000}, // until the event arrives
//                       {"sleep": 100},
//                       {"disconnect": true}]}
//
// Prints one JSON object a line: {"type": "connect"}, {"type": "connect_error", "message",
// "data"}, {"type": "event", "event", "data"}, {"type": "ack", "event", "ack"},
// {"type": "timeout", "action"}, {"type": "disconnect", "reason"}, {"type": "done"}.
// Exits 0 when every action ran, 2 when the connection was refused, 3 on a timeout.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { io } = require("socket.io-client");

const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const url = process.argv[2];
const options = JSON.parse(process.argv[3] ?? readFileSync(0, "utf8"));
const actions = options.actions ?? [];

const received = [];
const waiters = [];
function note(event, data) {
  received.push({ event, data });
  for (const waiter of [...waiters]) waiter();
}

function waitFor(event, timeout) {
  return new Promise((resolve) => {
    let from = 0;
    const check = () => {
      for (; from < received.length; from++) {
        if (received[from].event === event) {
          cleanup();
          resolve(true);
          return;
        }
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      resolve(false);
    }, timeout);
    const cleanup = () => {
      clearTimeout(timer);
      const i = waiters.indexOf(check);
      if (i >= 0) waiters.splice(i, 1);
    };
    waiters.push(check);
    check();
  });
}

const socket = io(url, {
  auth: options.auth ?? {},
  extraHeaders: options.cookie ? { cookie: options.cookie } : {},
  transports: options.transports ?? ["websocket"],
  reconnection: false,
  timeout: 5000,
});

socket.onAny((event, ...args) => {
  const data = args.length === 1 ? args[0] : args;
  print({ type: "event", event, data });
  note(event, data);
});
socket.on("disconnect", (reason) => {
  print({ type: "disconnect", reason });
  note("disconnect", reason);
});

const connected = await new Promise((resolve) => {
  socket.once("connect", () => resolve(true));
  socket.once("connect_error", (err) => {
    print({ type: "connect_error", message: err.message, data: err.data ?? null });
    resolve(false);
  });
});
if (!connected) {
  socket.close();
  process.exit(2);
}
print({ type: "connect", id: socket.id });

let status = 0;
for (const action of actions) {
  if (action.emit !== undefined) {
    try {
      const args = action.args ?? [];
      const ack = await socket.timeout(action.timeout ?? 5000).emitWithAck(action.emit, ...args);
      print({ type: "ack", event: action.emit, ack });
    } catch (err) {
      print({ type: "timeout", action, message: String(err) });
      status = 3;
      break;
    }
  } else if (action.wait !== undefined) {
    if (!(await waitFor(action.wait, action.timeout ?? 5000))) {
      print({ type: "timeout", action });
      status = 3;
      break;
    }
  } else if (action.sleep !== undefined) {
    await sleep(action.sleep);
  } else if (action.disconnect) {
    socket.disconnect();
  }
}
print({ type: "done" });
socket.close();
process.exit(status);
