// Hotline CTI link client for the browser pages: one WebSocket to /cti carrying the
// link protocol (docs/protocol.md), requests correlated by invoke id, events handed to
// listeners, and reconnection with exponential backoff. Shared by the agent desktop and
// the supervisor wallboard; no framework, no build step.
"use strict";

class CtiLink {
  constructor(opts = {}) {
    this.url = opts.url || CtiLink.defaultUrl();
    this.nextInvoke = 1;
    this.pending = new Map(); // invoke -> {resolve, reject, service}
    this.listeners = new Map(); // event name or "*" -> [fn]
    this.statusListeners = [];
    this.ws = null;
    this.backoff = 500; // ms, doubled up to maxBackoff after each failed attempt
    this.maxBackoff = 15000;
    this.wanted = false;
    this.retryTimer = null;
    this.status = "offline";
    // Called after every (re)connection before queued requests go out, so a page can
    // log in again and re-subscribe: the server forgets a connection's session.
    this.onOpen = null;
  }

  static defaultUrl() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/cti`;
  }

  connect() {
    this.wanted = true;
    this.open();
  }

  disconnect() {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close();
  }

  open() {
    clearTimeout(this.retryTimer);
    this.setStatus("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = async () => {
      this.backoff = 500;
      this.setStatus("connected");
      if (this.onOpen) {
        try {
          await this.onOpen();
        } catch (e) {
          this.emit("Error", { event: "Error", reason: e.message || String(e) });
        }
      }
    };
    ws.onmessage = (m) => this.receive(m.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const [, p] of this.pending) p.reject(new CtiError("connection_lost", "the connection to the server was lost"));
      this.pending.clear();
      this.setStatus("offline");
      if (this.wanted) this.scheduleRetry();
    };
    ws.onerror = () => {}; // onclose follows and handles it
  }

  scheduleRetry() {
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.maxBackoff);
    this.setStatus("reconnecting", wait);
    this.retryTimer = setTimeout(() => this.open(), wait);
  }

  setStatus(status, retryIn) {
    this.status = status;
    for (const f of this.statusListeners) f(status, retryIn);
  }

  onStatus(f) {
    this.statusListeners.push(f);
  }

  on(event, f) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(f);
  }

  emit(event, msg) {
    for (const f of this.listeners.get(event) || []) f(msg);
    for (const f of this.listeners.get("*") || []) f(msg);
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      this.emit("Error", { event: "Error", reason: `unreadable message from the server: ${e.message}` });
      return;
    }
    if (msg.invoke !== undefined && msg.event === undefined) {
      const p = this.pending.get(msg.invoke);
      if (!p) return;
      this.pending.delete(msg.invoke);
      if (msg.error) p.reject(new CtiError(msg.error.code, msg.error.message, p.service));
      else p.resolve(msg.result === undefined ? {} : msg.result);
      return;
    }
    if (msg.event) this.emit(msg.event, msg);
  }

  // Send a request; resolves with its result, rejects with a CtiError (the server's
  // refusal, or a lost connection).
  request(service, fields = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new CtiError("not_connected", "not connected to the server", service));
    }
    const invoke = this.nextInvoke++;
    const msg = Object.assign({ invoke, service }, fields);
    return new Promise((resolve, reject) => {
      this.pending.set(invoke, { resolve, reject, service });
      this.ws.send(JSON.stringify(msg));
    });
  }
}

class CtiError extends Error {
  constructor(code, message, service) {
    super(message || code);
    this.code = code;
    this.service = service;
  }
  describe() {
    const what = this.service ? `${this.service} refused` : "refused";
    return `${what}: ${this.message}${this.code && !this.message.includes(this.code) ? ` (${this.code})` : ""}`;
  }
}

// Small DOM helpers shared by the pages.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// "1:05", "12:03:09": how long since `sinceMs` (a Date.now() value).
function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

// Parse an RFC 3339 time into Date.now() milliseconds; `undefined` when absent.
function parseTime(t) {
  if (!t) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

// Offset between the server's clock and ours, learnt from event times, so a state
// duration counts from the server's "since" even when the browser's clock is off.
const clockSkew = {
  offset: 0,
  seen: false,
  note(serverTime) {
    const t = parseTime(serverTime);
    if (t === undefined) return;
    const off = t - Date.now();
    // Keep the largest: network delay only ever makes the offset look smaller.
    if (!this.seen || off > this.offset) this.offset = off;
    this.seen = true;
  },
  now() {
    return Date.now() + this.offset;
  },
};

function deviceLabel(d) {
  if (!d) return "";
  if (typeof d !== "string") return JSON.stringify(d);
  const [kind, rest] = d.split(/:(.*)/s);
  switch (kind) {
    case "station":
      return `station ${rest}`;
    case "trunk":
      return `trunk ${rest}`;
    case "queue":
      return `queue ${rest}`;
    case "ivr":
      return `IVR ${rest}`;
    default:
      return d;
  }
}
