// The live panel, on the library's browser client (aiohttp_session_ws/static/session_ws.js,
// served by add_client_route; its URL comes in data-client-url). The client reconnects and
// acts on the close codes; this file only shows what it does, and keeps the page true to
// the session: when the session behind the page changed (logout or login in another tab,
// "log out everywhere" on another device, a restart that forgot the session) the page
// reloads over HTTP, with a notice saying what happened.
const panel = document.getElementById("panel");
const { SessionSocket } = await import(panel.dataset.clientUrl);

const pageUser = document.body.dataset.user || null;
const restartLogsOut = panel.dataset.restartLogsOut === "true";
const NOTICE_KEY = "demo_auth_notice";
const RELOADED_KEY = "demo_auth_reloaded_at";
const WORDS = {
  1000: "closed",
  1001: "server going away",
  1006: "connection lost",
  1011: "server error",
  1012: "server restarting",
  1013: "try again later",
  4001: "session ended",
};

let lastOpenClose = null; // the close that ended the last socket that had opened
let failed = 0; // attempts in a row that failed before opening
let leaving = false; // a form was submitted or the page is going: the browser navigates away

// Logging out here closes this page's own socket too (4001): the form's response, not a
// reload, must decide what the browser shows next.
document.addEventListener("submit", () => {
  leaving = true;
});
window.addEventListener("pagehide", () => {
  leaving = true;
});

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

function words(close) {
  return WORDS[close.code] || close.reason || "closed";
}

function showNotice(text) {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.hidden = false;
}

/**
 * Reload the page over HTTP to show `user`'s state, carrying `notice` over. Not again
 * within 5 s for the same user: a page that still disagrees right after reloading for
 * that user would reload in a loop.
 */
function reloadWith(user, notice) {
  if (leaving) return true; // the next page shows the session as it is
  showNotice(notice);
  const last = JSON.parse(sessionStorage.getItem(RELOADED_KEY) || "null");
  if (last && last.user === user && Date.now() - last.at < 5000) return false;
  sessionStorage.setItem(NOTICE_KEY, notice);
  sessionStorage.setItem(RELOADED_KEY, JSON.stringify({ user, at: Date.now() }));
  location.reload();
  return true;
}

function nowYou(user) {
  return user === null ? "you are logged out" : `you are logged in as ${user}`;
}

function render(client) {
  const { state } = client;
  show("status", state === "waiting" ? "closed, will retry" : state);
  if (state !== "open") show("user", "");
  show(
    "connected-for",
    state === "open" ? `${Math.floor((Date.now() - client.openedAt) / 1000)} s` : "not connected",
  );
  if (lastOpenClose) {
    const at = new Date(lastOpenClose.at).toLocaleTimeString();
    show("close-code", String(lastOpenClose.code));
    show("close-reason", `${words(lastOpenClose)} (${at})`);
  }
  let next = "—";
  if (state === "waiting" && client.nextRetryAt !== null) {
    const seconds = Math.max(0, (client.nextRetryAt - Date.now()) / 1000).toFixed(1);
    next = `in ${seconds} s`;
    if (failed > 0) {
      next += ` (${failed} failed attempt${failed > 1 ? "s" : ""}: the server does not answer)`;
    }
  } else if (state === "paused") {
    next = client.pauseReason === "offline" ? "when the browser is back online" : "when visible";
  } else if (state === "stopped") {
    next = `none: ${client.stopReason} (reload the page)`;
  }
  show("next-try", next);
}

const carried = sessionStorage.getItem(NOTICE_KEY);
if (carried) {
  sessionStorage.removeItem(NOTICE_KEY);
  showNotice(carried);
}

const live = new SessionSocket("/ws", {
  maxDelay: 15000,
  onMessage(event) {
    const data = JSON.parse(event.data);
    if (data.type === "hello") {
      failed = 0;
      show("user", data.user === null ? "anonymous" : data.user);
      log("connected as " + (data.user === null ? "anonymous" : data.user));
      if (data.user !== pageUser) {
        // The session changed while this page was open, and no 4001 told us: the
        // server was away (its restart forgot the session) or the page was stale.
        const why =
          lastOpenClose && lastOpenClose.code !== 4001
            ? "The server restarted and your session did not survive it" +
              (restartLogsOut
                ? " (without --redis the demo keeps its login state in memory, so every" +
                  " restart logs everyone out)"
                : "")
            : "Your session changed in another tab or on another device";
        reloadWith(data.user, `${why}: ${nowYou(data.user)}.`);
      }
    } else if (data.type === "tick") {
      show("others", String(data.others));
    }
  },
  onClose(close, client) {
    if (close.opened) {
      lastOpenClose = close;
      failed = 0;
    } else {
      failed += 1;
    }
    const what = close.opened ? `socket closed: ${close.code} ${words(close)}` : "could not connect";
    const then =
      close.action === "stop"
        ? "; stopped"
        : close.delay === null
          ? ""
          : `; retrying in ${(close.delay / 1000).toFixed(1)} s`;
    log(what + then);
    render(client);
  },
  async onSessionEnded() {
    // Login, logout or "log out everywhere" elsewhere: show the session as it is now.
    const response = await fetch("/api/me", { cache: "no-store" });
    const { user } = await response.json();
    const notice = `Your session changed in another tab or on another device: ${nowYou(user)}.`;
    if (user !== pageUser && reloadWith(user, notice)) {
      await new Promise(() => {}); // the page reloads; no reconnect meanwhile
    }
  },
  onChange: render,
});
live.start();
setInterval(() => render(live), 250);
window.live = live; // for the browser tests and the curious
