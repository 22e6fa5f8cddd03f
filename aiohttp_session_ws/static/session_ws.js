// aiohttp_session_ws browser client: one websocket that follows the session.
// A dependency-free ES module (no build step). Serve it with
// `aiohttp_session_ws.add_client_route(app)`; see the README's "Browser client".
//
// Close-code policy (see CLOSE_ACTIONS below and the README's close-code table):
//   sessionEndedCode (4001): call onSessionEnded, then reconnect at once; if the
//     socket had not yet been open for `stableAfter` ms (4001 again right after
//     connecting, e.g. a stale cookie), back off instead.
//   stopCodes (1002, 1003, 1007, 1008, 1009, 1010 by default): stop for good.
//   anything else (1000, 1001, 1006, 1011, 1012, 1013, 1014, other 4xxx): back off.
//   a handshake that fails before open while the server answers HTTP (403 origin
//     refused, 404...): stop after `refusedAfter` such failures in a row.
"use strict";

/** Close codes after which the client stops instead of reconnecting. */
export const DEFAULT_STOP_CODES = Object.freeze([1002, 1003, 1007, 1008, 1009, 1010]);

/** The library's default session-ended code (the registry's `close_code`). */
export const SESSION_ENDED_CODE = 4001;

/**
 * @typedef {"idle"|"connecting"|"open"|"waiting"|"paused"|"stopped"} SessionSocketState
 * idle: not started; connecting: handshake in progress; open: connected;
 * waiting: closed, a retry is scheduled at `nextRetryAt`; paused: not retrying while
 * the page is hidden or the browser offline (`pauseReason`); stopped: no more retries
 * (`stopReason`), until `start()` is called again.
 */

/**
 * @typedef {"reconnect"|"backoff"|"stop"|"pause"} CloseAction
 * What the client did after a close: reconnect at once, retry after a backoff delay,
 * stop, or pause until the page is visible / the browser online again.
 */

/**
 * @typedef {object} CloseInfo
 * @property {number} code  CloseEvent.code (1006 when the connection was lost or the
 *   handshake failed)
 * @property {string} reason  CloseEvent.reason ("" if none)
 * @property {boolean} wasClean  CloseEvent.wasClean: the closing handshake completed
 * @property {boolean} opened  whether this socket had opened (false: the handshake failed)
 * @property {number} at  when it closed (ms since the epoch, Date.now())
 * @property {CloseAction} action  what the client does next
 * @property {number|null} delay  ms until the next try (0: at once; null: none planned)
 */

/**
 * @typedef {object} SessionSocketOptions
 * @property {string|string[]} [protocols]  WebSocket subprotocols
 * @property {string} [binaryType]  "blob" (default) or "arraybuffer"
 * @property {number} [sessionEndedCode=4001]  the server registry's `close_code`
 * @property {number[]} [stopCodes=DEFAULT_STOP_CODES]  close codes after which the client
 *   stops; add yours with `[...DEFAULT_STOP_CODES, 4403]`
 * @property {number} [minDelay=500]  ms: first backoff delay bound (see `retryDelay`)
 * @property {number} [maxDelay=30000]  ms: cap on backoff delays
 * @property {number} [stableAfter=3000]  ms a socket must stay open before the backoff
 *   resets and a session-ended close reconnects at once again
 * @property {boolean} [preflight=true]  after a failed handshake, GET the socket's URL
 *   over http(s) to tell a refused handshake (the server answers) from an unreachable
 *   server (network error); false: never stop on failed handshakes
 * @property {number} [refusedAfter=3]  failed handshakes in a row, each with the server
 *   answering the preflight (status < 500, not 429), after which the client stops
 * @property {boolean} [pauseWhenOffline=true]  close and stop retrying while
 *   `navigator.onLine` is false; connect at once when back online
 * @property {boolean} [pauseWhenHidden=false]  close the socket while the page is hidden
 *   (`document.visibilityState`); connect at once when visible again
 * @property {(event: MessageEvent, client: SessionSocket) => void} [onMessage]
 * @property {(client: SessionSocket) => void} [onOpen]
 * @property {(close: CloseInfo, client: SessionSocket) => void} [onClose]  every close,
 *   including failed handshakes, after the action is decided
 * @property {(close: CloseInfo, client: SessionSocket) => (void|Promise<void>)} [onSessionEnded]
 *   the session ended (login, logout, revocation): reload state, re-authorize; the
 *   client reconnects once the returned promise settles
 * @property {(client: SessionSocket) => void} [onChange]  any change of `state`,
 *   `lastClose` or `nextRetryAt` (for UIs)
 * @property {(client: SessionSocket) => void} [onStop]  the client stopped (`stopReason`)
 */

/**
 * The delay before the n-th retry in a row (n = 0, 1, ...): uniform in [d/2, d], with
 * d = min(maxDelay, minDelay * 2**n).
 * @param {number} n
 * @param {number} minDelay
 * @param {number} maxDelay
 * @param {() => number} [random=Math.random]
 * @returns {number} ms
 */
export function retryDelay(n, minDelay, maxDelay, random = Math.random) {
  const d = Math.min(maxDelay, minDelay * 2 ** n);
  return d / 2 + random() * (d / 2);
}

/**
 * A websocket that reconnects and acts on the aiohttp_session_ws close codes.
 *
 * ```js
 * import { SessionSocket } from "/aiohttp_session_ws/session_ws.js";
 * const live = new SessionSocket("/ws", {
 *   onMessage: (event) => render(JSON.parse(event.data)),
 *   onSessionEnded: async () => { await refreshWhoAmI(); },
 *   onChange: (client) => showStatus(client.state, client.lastClose, client.nextRetryAt),
 * });
 * live.start();
 * ```
 */
export class SessionSocket {
  /**
   * @param {string|(() => string)} url  ws:, wss:, http(s): or a path relative to the
   *   page; a function is called before every attempt (e.g. to pick a node)
   * @param {SessionSocketOptions} [options]
   */
  constructor(url, options = {}) {
    this.url = url;
    /** @type {Required<Pick<SessionSocketOptions, "sessionEndedCode"|"stopCodes"|"minDelay"|"maxDelay"|"stableAfter"|"preflight"|"refusedAfter"|"pauseWhenOffline"|"pauseWhenHidden">> & SessionSocketOptions} */
    this.options = {
      sessionEndedCode: SESSION_ENDED_CODE,
      stopCodes: [...DEFAULT_STOP_CODES],
      minDelay: 500,
      maxDelay: 30000,
      stableAfter: 3000,
      preflight: true,
      refusedAfter: 3,
      pauseWhenOffline: true,
      pauseWhenHidden: false,
      ...options,
    };
    /** @type {SessionSocketState} */
    this.state = "idle";
    /** @type {CloseInfo|null} the latest close, of an open socket or a failed handshake */
    this.lastClose = null;
    /** @type {number|null} when the next attempt starts (ms since the epoch), if waiting */
    this.nextRetryAt = null;
    /** @type {number} retries in a row since the last socket that stayed open `stableAfter` ms */
    this.retries = 0;
    /** @type {number} handshakes in a row that failed while the server answered HTTP */
    this.refusals = 0;
    /** @type {string|null} why the client stopped: "refused", "close code N", "stop()",
     * "cannot open a socket: ..." */
    this.stopReason = null;
    /** @type {"hidden"|"offline"|null} */
    this.pauseReason = null;
    /** @type {WebSocket|null} the current socket, if any */
    this.socket = null;
    /** @type {number|null} when the current socket opened (ms since the epoch) */
    this.openedAt = null;
    this._timer = null;
    this._stableTimer = null;
    this._listening = false;
    this._onOnline = () => this._resume();
    this._onOffline = () => this._pause("offline");
    this._onVisibility = () =>
      document.visibilityState === "hidden" ? this._pause("hidden") : this._resume();
  }

  /** Connect now (also after `stop()` or while waiting for a retry). */
  start() {
    this.stopReason = null;
    this.retries = 0;
    this.refusals = 0;
    this._listen(true);
    this._clearTimer();
    const reason = this._pauseNeeded();
    if (reason) {
      this._pause(reason);
    } else if (!this.socket) {
      this._connect();
    }
  }

  /**
   * Close the socket and stop reconnecting.
   * @param {number} [code=1000]
   * @param {string} [reason=""]
   */
  stop(code = 1000, reason = "") {
    this._listen(false);
    this._clearTimer();
    this.stopReason = "stop()";
    this._setState("stopped");
    this._drop(code, reason);
  }

  /**
   * Send on the open socket.
   * @param {string|ArrayBufferLike|Blob|ArrayBufferView} data
   * @returns {boolean} false when there is no open socket (nothing was sent)
   */
  send(data) {
    if (this.state !== "open" || !this.socket) return false;
    this.socket.send(data);
    return true;
  }

  /** @returns {string} the URL of the next attempt, as ws: or wss: */
  socketUrl() {
    const raw = typeof this.url === "function" ? this.url() : this.url;
    const url = new URL(raw, location.href);
    if (url.protocol === "http:") url.protocol = "ws:";
    if (url.protocol === "https:") url.protocol = "wss:";
    return url.href;
  }

  _connect() {
    this._clearTimer();
    this.nextRetryAt = null;
    let url, socket;
    try {
      url = this.socketUrl();
      socket = new WebSocket(url, this.options.protocols);
    } catch (error) {
      // a URL that cannot be a websocket's (bad syntax, ws: from an https: page): final
      this._listen(false);
      this.stopReason = `cannot open a socket: ${error.message}`;
      this._setState("stopped");
      this.options.onStop?.(this);
      return;
    }
    if (this.options.binaryType) socket.binaryType = /** @type {BinaryType} */ (this.options.binaryType);
    this.socket = socket;
    this.openedAt = null;
    this._setState("connecting");
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.openedAt = Date.now();
      this.refusals = 0;
      this._stableTimer = setTimeout(() => {
        this._stableTimer = null;
        this.retries = 0;
      }, this.options.stableAfter);
      this._setState("open");
      this.options.onOpen?.(this);
    };
    socket.onmessage = (event) => {
      if (this.socket === socket) this.options.onMessage?.(event, this);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return; // a socket we dropped on purpose
      this.socket = null;
      this._closed(event, url).catch((error) => {
        console.error("SessionSocket: a hook failed after a close", error);
      });
    };
  }

  /**
   * Decide what a close means, tell the hooks, then reconnect, back off, pause or stop.
   * @param {CloseEvent} event
   * @param {string} url  the closed socket's URL
   */
  async _closed(event, url) {
    const opened = this.openedAt !== null;
    if (opened && this._stableTimer === null) this.retries = 0; // it had become stable
    clearTimeout(this._stableTimer);
    this._stableTimer = null;
    this.openedAt = null;
    const sessionEnded = opened && event.code === this.options.sessionEndedCode;
    /** @type {CloseInfo} */
    const close = {
      code: event.code,
      reason: event.reason,
      wasClean: event.wasClean,
      opened,
      at: Date.now(),
      action: "backoff",
      delay: null,
    };
    this._setState("waiting"); // deciding; nextRetryAt stays null until scheduled
    const pause = this._pauseNeeded();
    let stopReason = null;
    if (pause) {
      close.action = "pause";
    } else if (this.options.stopCodes.includes(event.code)) {
      stopReason = `close code ${event.code}`;
    } else if (sessionEnded && this.retries === 0) {
      close.action = "reconnect";
    } else if (!opened && (await this._refused(url))) {
      stopReason = "refused";
    }
    if (this.state !== "waiting" || this.socket) return; // stop(), start() or a pause meanwhile
    if (stopReason) {
      close.action = "stop";
    } else if (close.action === "reconnect") {
      close.delay = 0;
    } else if (close.action === "backoff") {
      close.delay = retryDelay(this.retries, this.options.minDelay, this.options.maxDelay);
    }
    this.lastClose = close;
    this.options.onClose?.(close, this);
    if (stopReason) {
      this._listen(false);
      this.stopReason = stopReason;
      this._setState("stopped");
      this.options.onStop?.(this);
      return;
    }
    if (pause) {
      this._pause(pause);
      return;
    }
    if (sessionEnded) {
      try {
        await this.options.onSessionEnded?.(close, this);
      } catch (error) {
        console.error("SessionSocket: the onSessionEnded hook failed", error);
      }
      if (this.state !== "waiting" || this.socket) return;
    }
    this.retries += 1;
    this._schedule(close.delay ?? 0);
  }

  /**
   * Whether a failed handshake was refused by a server that answers HTTP.
   * @param {string} url  the socket's ws(s) URL
   * @returns {Promise<boolean>} true once `refusedAfter` refusals came in a row
   */
  async _refused(url) {
    if (!this.options.preflight) return false;
    const target = new URL(url);
    target.protocol = target.protocol === "wss:" ? "https:" : "http:";
    const sameOrigin = target.origin === location.origin;
    let answered = false;
    try {
      const response = await fetch(target.href, {
        method: "GET",
        cache: "no-store",
        credentials: "same-origin",
        mode: sameOrigin ? "same-origin" : "no-cors",
        redirect: "manual",
      });
      // an opaque answer (no-cors) has status 0: the server answered, status unknown
      answered = response.status === 0 || (response.status < 500 && response.status !== 429);
    } catch {
      answered = false; // network error: the server (or the network) is unreachable
    }
    this.refusals = answered ? this.refusals + 1 : 0;
    return this.refusals >= this.options.refusedAfter;
  }

  /** @param {number} delay ms */
  _schedule(delay) {
    this._clearTimer();
    this.nextRetryAt = Date.now() + delay;
    this._timer = setTimeout(() => {
      this._timer = null;
      this._connect();
    }, delay);
    this._setState("waiting");
  }

  /** @returns {"hidden"|"offline"|null} */
  _pauseNeeded() {
    if (this.options.pauseWhenOffline && navigator.onLine === false) return "offline";
    if (this.options.pauseWhenHidden && document.visibilityState === "hidden") return "hidden";
    return null;
  }

  /** @param {"hidden"|"offline"} reason */
  _pause(reason) {
    if (this.state === "stopped") return;
    if (reason === "offline" && !this.options.pauseWhenOffline) return;
    if (reason === "hidden" && !this.options.pauseWhenHidden) return;
    this._clearTimer();
    this.nextRetryAt = null;
    this.pauseReason = reason;
    this._setState("paused");
    this._drop(1000, reason === "hidden" ? "page hidden" : "offline");
  }

  /** Leave the paused state once nothing calls for it any more: connect at once. */
  _resume() {
    if (this.state !== "paused") return;
    const still = this._pauseNeeded();
    if (still) {
      this.pauseReason = still;
      this._setState("paused");
    } else {
      this._connect();
    }
  }

  /** Close the current socket without reacting to its close event. */
  _drop(code, reason) {
    const socket = this.socket;
    this.socket = null;
    this.openedAt = null;
    clearTimeout(this._stableTimer);
    this._stableTimer = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(code, reason);
  }

  _clearTimer() {
    clearTimeout(this._timer);
    this._timer = null;
  }

  /** @param {boolean} on */
  _listen(on) {
    if (on === this._listening) return;
    this._listening = on;
    const method = on ? "addEventListener" : "removeEventListener";
    window[method]("online", this._onOnline);
    window[method]("offline", this._onOffline);
    document[method]("visibilitychange", this._onVisibility);
  }

  /** @param {SessionSocketState} state */
  _setState(state) {
    this.state = state;
    if (state !== "waiting") this.nextRetryAt = null;
    if (state !== "paused") this.pauseReason = null;
    this.options.onChange?.(this);
  }
}
