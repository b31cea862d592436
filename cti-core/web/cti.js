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
  // The refusal in words a person can act on: what failed, the server's reason and
  // what to do about it.
  describe(context = {}) {
    const what = context.what || SERVICE_WORDS[this.service] || (this.service ? `${this.service}` : "That");
    const advice = refusalAdvice(this.service, this.code, context);
    const reason = this.message && this.message !== this.code ? this.message : CODE_WORDS[this.code] || this.code;
    return `${what} refused: ${reason}${advice ? `. ${advice}` : ""}`;
  }
}

// What each service is called on screen.
const SERVICE_WORDS = {
  Login: "Login",
  Logout: "Log out",
  AnswerCall: "Answer",
  ClearConnection: "Hang up",
  HoldCall: "Hold",
  RetrieveCall: "Retrieve",
  SingleStepTransferCall: "Transfer",
  ConsultationCall: "Consultation",
  TransferCall: "Completing the transfer",
  ConferenceCall: "Conference",
  GenerateDigits: "Sending digits",
  StartRecording: "Recording",
  StopRecording: "Stopping the recording",
  SetAgentState: "Changing the state",
  Supervise: "Supervising",
  Monitor: "Watching",
  MakeCall: "Calling",
};

// The error codes of docs/protocol.md in words, for replies without a message.
const CODE_WORDS = {
  not_logged_in: "not logged in",
  invalid_password: "wrong user or password",
  privilege_violation: "not allowed",
  rate_limited: "too many requests",
  engine_busy: "the server is busy",
  invalid_call_id: "that call has ended",
  invalid_device_id: "no such station or number",
  invalid_agent_id: "no such agent",
  invalid_connection_state: "the call is not in a state for this now",
  invalid_device_state: "the station is not in a state for this now",
  invalid_agent_state: "the agent is not in a state for this now",
  service_not_supported: "the phone cannot do this",
  resource_busy: "no free line or conference bridge",
  reserved_for_inbound: "the queue's ready agents are kept for inbound calls",
  connection_lost: "the connection to the server was lost",
  not_connected: "not connected to the server",
};

// What to do after a refusal (service, code), as a sentence; "" when nothing helps.
// `context.analog`: the agent's station is an analog phone (no headset).
function refusalAdvice(service, code, context = {}) {
  const supervise = context.mode ? `${context.mode}` : "supervise";
  switch (code) {
    case "not_connected":
    case "connection_lost":
      return "Wait until the top right says connected, then try again";
    case "rate_limited":
    case "engine_busy":
      return "Wait a moment and try again";
    case "not_logged_in":
      return "Log in again";
  }
  switch (service) {
    case "Login":
      if (code === "invalid_password") return "Check your id and password and try again";
      if (code === "invalid_device_state") return "Someone else is logged in at that station: check the extension on your phone";
      if (code === "invalid_device_id") return "Check the station: it is the extension number of your phone";
      if (code === "invalid_agent_state") return "Log out at the other desk first, or log in with the same station";
      return "";
    case "AnswerCall":
      if (code === "service_not_supported") return "This phone cannot be answered from the screen: lift the handset";
      if (code === "invalid_connection_state" || code === "invalid_call_id") return "The call is no longer ringing here: the caller hung up or it went to a colleague";
      return "";
    case "ClearConnection":
      if (code === "service_not_supported") return "Put the handset down to hang up";
      if (code === "invalid_call_id") return "The call has already ended";
      return "";
    case "HoldCall":
    case "RetrieveCall":
      if (code === "service_not_supported") return "Use the phone's hold (flash) key";
      return "Select a call that is connected (hold) or held (retrieve)";
    case "SingleStepTransferCall":
    case "ConsultationCall":
      if (code === "invalid_device_id" || code === "invalid_call_id") return "Check the number: an extension, a queue's number, an IVR flow's name or an external number with its prefix";
      if (code === "resource_busy") return "No outside line is free: try again shortly";
      if (code === "reserved_for_inbound") return "Wait until more colleagues are ready";
      return "Transfer a connected call";
    case "TransferCall":
    case "ConferenceCall":
      return "Both calls must still be there: the held one and the consultation";
    case "SetAgentState":
      if (code === "invalid_agent_state") return context.forced ? "The agent cannot change state now (on a call or logged out)" : "Finish the call first; you change state between calls";
      return "";
    case "Supervise":
      if (code === "invalid_device_state") return `Log in with your own station to ${supervise}: your phone rings first`;
      if (code === "invalid_agent_state" || code === "invalid_connection_state" || code === "invalid_call_id") return `The agent is not on a call now: ${supervise} when they are`;
      if (code === "resource_busy") return "No conference bridge is free: try again shortly";
      if (code === "privilege_violation") return "You may only supervise the agents of your groups";
      return "";
    case "StartRecording":
    case "StopRecording":
      return "Recording works on a connected call with an agent";
    default:
      return "";
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

// Messages at the bottom right: information fades after 8 s; errors stay until
// closed or until the next action succeeds (clearErrors).
function say(text, kind = "info") {
  const box = document.getElementById("messages");
  const line = el(
    "div",
    { class: `message ${kind}`, role: kind === "error" ? "alert" : undefined },
    el("span", {}, text),
    el("button", { type: "button", class: "close", "aria-label": "close", onclick: () => line.remove() }, "×"),
  );
  box.prepend(line);
  while (box.children.length > 5) box.lastChild.remove();
  if (kind !== "error") setTimeout(() => line.remove(), 8000);
}

function clearErrors() {
  for (const m of document.querySelectorAll("#messages .message.error")) m.remove();
}

// Send a request; a refusal is said in words (with what to do) and gives undefined;
// success clears earlier errors.
async function askLink(link, service, fields, context) {
  try {
    const r = await link.request(service, fields);
    clearErrors();
    return r;
  } catch (e) {
    say(e instanceof CtiError ? e.describe(context) : String(e.message || e), "error");
    return undefined;
  }
}

// The wall-clock time of day, as the browser shows it.
function localTime(t) {
  const ms = parseTime(t);
  return ms === undefined ? "" : new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
