// The live panel: one websocket, reconnected with capped exponential backoff and
// jitter. State is mirrored into the DOM (ids: status, user, seconds, others,
// close-code, close-reason) for people and for the browser test.
"use strict";

const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 15000;
const REASONS = {
  4001: "session ended, reconnecting",
  1001: "server going away, reconnecting",
  1006: "connection lost, reconnecting",
};

let attempt = 0;
let connections = 0;

function show(id, text) {
  document.getElementById(id).textContent = text;
}

function log(text) {
  const item = document.createElement("li");
  item.textContent = new Date().toLocaleTimeString() + " " + text;
  const list = document.getElementById("log");
  list.prepend(item);
  while (list.children.length > 20) list.lastChild.remove();
}

function nextDelay() {
  // Doubling from BASE_DELAY_MS up to MAX_DELAY_MS, each drawn from [d/2, d].
  const delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  attempt += 1;
  return delay / 2 + Math.random() * delay / 2;
}

function onHello(user) {
  // Only a socket that got as far as "hello" resets the backoff: a server that
  // accepts and closes at once (a revoked session) cannot cause a tight loop.
  attempt = 0;
  connections += 1;
  show("status", "open");
  show("user", user === null ? "anonymous" : user);
  document.body.dataset.connections = String(connections);
  const pageUser = document.body.dataset.user || null;
  document.getElementById("stale").hidden = user === pageUser;
  log("connected as " + (user === null ? "anonymous" : user));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/ws");
  show("status", "connecting…");
  socket.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "hello") {
      onHello(data.user);
    } else if (data.type === "tick") {
      show("seconds", String(data.seconds));
      show("others", String(data.others));
    }
  };
  socket.onclose = (event) => {
    const why = REASONS[event.code] || "closed, reconnecting";
    const delay = nextDelay();
    show("status", "closed");
    show("user", "");
    show("close-code", String(event.code));
    show("close-reason", "(" + why + ")");
    log("socket closed: " + event.code + " " + why + " in " + (delay / 1000).toFixed(1) + " s");
    setTimeout(connect, delay);
  };
}

connect();
