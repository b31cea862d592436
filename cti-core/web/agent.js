// The agent desktop ("agent bar"): log in at a station, agent state, call control, the
// screen pop and the agent's calls today, over the CTI link (cti.js). The page keeps
// only what the server tells it: the calls at the agent's station are rebuilt from
// events, and from a device snapshot after a reconnect. Until the login succeeds only
// the login form shows. The common actions have keys (see the page's key line).
"use strict";

const link = new CtiLink();
const $ = (id) => document.getElementById(id);

const desk = {
  session: null, // {agent, station, device, password}
  state: "logged out",
  reason: "",
  since: undefined, // server ms
  calls: new Map(), // call id -> {call, party, state, since, pop}
  selected: undefined, // call id the agent clicked, if any
  pops: new Map(), // call id -> ScreenPop event
  lastPop: undefined,
  crm: false, // the server looks pops up in a CRM (Login result)
};

// Every refusal is said in words with what to do (cti.js); a success clears them.
const ask = (service, fields, context) => askLink(link, service, fields, context);

// ---- Connection status ----

link.onStatus((status, retryIn) => {
  const c = $("conn");
  c.className = `conn ${status}`;
  c.textContent =
    status === "reconnecting" ? `reconnecting in ${Math.round(retryIn / 1000)} s` : status;
});

link.on("Error", (m) => say(`server: ${m.reason || m.message || "error"}`, "error"));

// ---- Log in and the agent's state ----

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const user = $("login-user").value.trim();
  const password = $("login-password").value;
  const station = $("login-station").value.trim();
  if (link.status !== "connected") {
    say("not connected to the server yet; try again in a moment", "error");
    return;
  }
  const r = await login(user, password, station);
  if (r) $("login-password").value = "";
});

async function login(user, password, station) {
  const r = await ask("Login", { user, password, station });
  if (!r) return undefined;
  if (r.role && r.role !== "agent") {
    say(`${user} is a ${r.role}: supervisors use the wallboard (/wallboard)`, "error");
    return undefined;
  }
  const st = r.station || station;
  desk.session = { agent: r.agent || user, station: st, device: `station:${st}`, password };
  desk.crm = r.crm === true;
  $("who").textContent = `${r.name ? `${r.name} · ` : ""}agent ${desk.session.agent} at station ${st}`;
  $("station-label").textContent = `station ${st}`;
  $("login-panel").hidden = true;
  $("desk").hidden = false;
  fillReasons(r.reasons);
  // One monitor on ourselves covers our state, the calls at our station and our pops;
  // its snapshot shows a call already under way.
  const m = await ask("Monitor", { target: { agent: desk.session.agent } });
  if (m && m.snapshot) applySnapshot(m.snapshot);
  else await refreshState();
  await refreshToday();
  return r;
}

// After a reconnect the server has forgotten us: log in again with what we know.
link.onOpen = async () => {
  if (!desk.session) return;
  const s = desk.session;
  say("reconnected; logging in again");
  desk.calls.clear();
  await login(s.agent, s.password, s.station);
};

// The not-ready reasons of the configuration (the Login result's `reasons`); when
// there are none the agent types one.
function fillReasons(reasons) {
  const sel = $("reason-select");
  const list = (Array.isArray(reasons) ? reasons : []).filter((r) => r && (typeof r === "string" || r.name));
  sel.replaceChildren(
    ...list.map((r) => {
      const name = typeof r === "string" ? r : r.name;
      return el("option", { value: name }, name);
    }),
  );
  sel.hidden = list.length === 0;
  $("reason-input").hidden = list.length > 0;
}

async function refreshState() {
  const r = await ask("GetAgentState", { agent: desk.session.agent });
  if (r) showState(r.state, r.reason, r.since);
}

function showState(state, reason, since) {
  desk.state = (state || "logged_out").replaceAll("_", " ");
  desk.reason = reason || "";
  const t = parseTime(since);
  desk.since = t === undefined ? clockSkew.now() : t;
  const s = $("agent-state");
  s.textContent = desk.state;
  s.className = `state ${desk.state.replaceAll(" ", "-")}`;
  $("agent-reason").textContent = desk.reason ? `(${desk.reason})` : "";
  tick();
  if (desk.state === "logged out" && desk.session) {
    // Logged out by a supervisor or from the phone: back to the login form.
    $("who").textContent = "";
    $("login-panel").hidden = false;
    $("desk").hidden = true;
    $("login-user").value = desk.session.agent;
    $("login-station").value = desk.session.station;
    desk.session = null;
  }
}

// The server's display summary of an agent's state (the CSTA agent events carry the
// same changes, without ringing and busy).
link.on("AgentState", (m) => {
  clockSkew.note(m.time);
  if (desk.session && m.agent === desk.session.agent) showState(m.state, m.reason, m.since);
});
link.on("AgentMissed", (m) => {
  if (desk.session && m.agent === desk.session.agent) say(`you missed call ${m.call}`, "error");
});

function goReady() {
  ask("SetAgentState", { agent: desk.session.agent, state: "ready" });
}
function goNotReady() {
  const reason = ($("reason-select").hidden ? $("reason-input").value : $("reason-select").value).trim();
  ask("SetAgentState", { agent: desk.session.agent, state: "not_ready", reason });
}
$("ready-button").addEventListener("click", goReady);
$("not-ready-button").addEventListener("click", goNotReady);
$("logout-button").addEventListener("click", async () => {
  if (await ask("Logout", {})) showState("logged_out");
});

// Idle connections are closed by the server (idle_timeout_s): ping while quiet.
setInterval(() => {
  if (link.status === "connected") link.request("Ping").catch(() => {});
}, 30000);

// ---- Calls at the station ----

const mine = (d) => desk.session && d === desk.session.device;

function setCall(call, fields) {
  const prev = desk.calls.get(call) || { call, party: "", state: "", since: clockSkew.now() };
  const next = Object.assign({}, prev, fields);
  if (fields.state && fields.state !== prev.state) next.since = clockSkew.now();
  desk.calls.set(call, next);
  renderCalls();
}

function dropCall(call) {
  desk.calls.delete(call);
  if (desk.selected === call) desk.selected = undefined;
  renderCalls();
}

link.on("Delivered", (m) => {
  clockSkew.note(m.time);
  if (mine(m.alerting)) setCall(m.call, { party: m.calling || "unknown caller", called: m.called, state: "alerting" });
  else if (desk.calls.has(m.call)) setCall(m.call, { party: m.alerting, state: "ringing" });
});
link.on("Originated", (m) => {
  if (mine(m.calling)) setCall(m.call, { party: m.called, state: "dialling" });
});
link.on("ServiceInitiated", (m) => {
  if (mine(m.device)) setCall(m.call, { party: "", state: "initiated" });
});
link.on("Established", (m) => {
  if (mine(m.answering)) setCall(m.call, { party: desk.calls.get(m.call)?.party || m.calling, state: "connected" });
  else if (desk.calls.has(m.call)) setCall(m.call, { party: m.answering, state: "connected" });
});
link.on("Held", (m) => {
  if (mine(m.holding)) setCall(m.call, { state: "held" });
});
link.on("Retrieved", (m) => {
  if (mine(m.retrieving)) setCall(m.call, { state: "connected" });
});
link.on("Queued", (m) => {
  if (desk.calls.has(m.call)) setCall(m.call, { party: `queue ${m.queue}`, state: "queued" });
});
link.on("Diverted", (m) => {
  if (mine(m.from)) dropCall(m.call);
});
link.on("ConnectionCleared", (m) => {
  if (mine(m.releasing)) dropCall(m.call);
});
link.on("CallCleared", (m) => {
  if (desk.calls.has(m.call)) dropCall(m.call);
});
link.on("Failed", (m) => {
  if (desk.calls.has(m.call)) {
    setCall(m.call, { state: "failed" });
    say(`call ${m.call} to ${deviceLabel(m.failing)} failed${causeText(m.cause)}`, "error");
  }
});
link.on("Transferred", (m) => {
  if (mine(m.transferring)) {
    dropCall(m.primary);
    dropCall(m.secondary);
    say(`call transferred${m.transferred_to ? ` to ${deviceLabel(m.transferred_to)}` : ""}`);
  } else if (m.secondary !== m.primary && desk.calls.has(m.secondary)) {
    // We were consulted: our call is now the transferred one.
    const c = desk.calls.get(m.secondary);
    desk.calls.delete(m.secondary);
    setCall(m.primary, Object.assign({}, c, { call: m.primary }));
  }
});
link.on("Conferenced", (m) => {
  if (desk.calls.has(m.secondary) || desk.calls.has(m.primary)) {
    desk.calls.delete(m.secondary);
    setCall(m.primary, { party: "conference", state: "connected" });
  }
});

function causeText(cause) {
  if (cause === undefined || cause === null) return "";
  if (typeof cause === "object") return ` (cause ${cause.value ?? JSON.stringify(cause)}${cause.name ? ` ${cause.name}` : ""})`;
  return ` (cause ${cause})`;
}

// A monitor's snapshot: our state and the calls at our station right now.
function applySnapshot(snap) {
  const me = (snap.agents || []).find((a) => a.agent === desk.session.agent);
  if (me) showState(me.state, me.reason, me.since);
  if (!desk.session) return;
  desk.calls.clear();
  for (const c of snap.calls || []) {
    const parties = c.parties || [];
    const at = parties.find((p) => p.device === desk.session.device);
    if (!at) continue;
    const other = parties.find((p) => p.device !== desk.session.device);
    const party = other && other.device.startsWith("trunk:") ? c.calling || other.device : other ? other.device : c.calling;
    const started = parseTime(c.started);
    desk.calls.set(c.call, { call: c.call, party: party || "", state: at.state, since: started ?? clockSkew.now() });
  }
  renderCalls();
}

function renderCalls() {
  const body = $("calls-body");
  const rows = [...desk.calls.values()].sort((a, b) => a.call - b.call);
  body.replaceChildren(
    ...rows.map((c) =>
      el(
        "tr",
        {
          class: `call ${c.state}${desk.selected === c.call ? " selected" : ""}`,
          dataset: { call: c.call },
          onclick: () => {
            desk.selected = desk.selected === c.call ? undefined : c.call;
            renderCalls();
          },
        },
        el("td", {}, String(c.call)),
        el("td", {}, deviceLabel(c.party) || "—"),
        el("td", { class: "call-state" }, c.state),
        el("td", { class: "duration num", dataset: { since: c.since } }, formatDuration(clockSkew.now() - c.since)),
        el("td", {}, desk.pops.has(c.call) ? "pop" : ""),
      ),
    ),
  );
  $("no-calls").hidden = rows.length > 0;
  const has = (st) => rows.some((c) => c.state === st);
  $("answer-button").disabled = !has("alerting");
  $("hold-button").disabled = !has("connected");
  $("retrieve-button").disabled = !has("held");
  $("record-button").disabled = !has("connected");
  $("stop-record-button").disabled = !has("connected");
  $("hangup-button").disabled = rows.length === 0;
  $("complete-button").disabled = !(has("held") && rows.length > 1);
  $("conference-button").disabled = !(has("held") && rows.length > 1);
}

// The call a button acts on: the one clicked if it is in a fitting state, else the
// first in one of `states`.
function pick(...states) {
  const sel = desk.calls.get(desk.selected);
  if (sel && states.includes(sel.state)) return sel.call;
  for (const st of states) {
    const c = [...desk.calls.values()].find((c) => c.state === st);
    if (c) return c.call;
  }
  return undefined;
}

function withCall(states, what, f) {
  const call = pick(...states);
  if (call === undefined) {
    const words = { alerting: "ringing", connected: "connected", held: "held" };
    say(`There is no ${[...new Set(states.map((s) => words[s] || s))].slice(0, 2).join(" or ")} call to ${what}`, "error");
    return;
  }
  f(call);
}

const dev = () => desk.session.device;

const answer = () => withCall(["alerting"], "answer", (call) => ask("AnswerCall", { call, device: dev() }));
const hangUp = () =>
  withCall(["connected", "dialling", "ringing", "initiated", "failed", "held", "alerting"], "hang up", (call) =>
    ask("ClearConnection", { call, device: dev() }),
  );
const hold = () => withCall(["connected"], "hold", (call) => ask("HoldCall", { call, device: dev() }));
const retrieve = () => withCall(["held"], "retrieve", (call) => ask("RetrieveCall", { call, device: dev() }));
$("answer-button").addEventListener("click", answer);
$("hangup-button").addEventListener("click", hangUp);
$("hold-button").addEventListener("click", hold);
$("retrieve-button").addEventListener("click", retrieve);
// Recording on demand (calls are recorded from answer unless the installation says not).
$("record-button").addEventListener("click", () =>
  withCall(["connected"], "record", (call) => ask("StartRecording", { call }).then((r) => r !== undefined && say(`recording call ${call}`))),
);
$("stop-record-button").addEventListener("click", () =>
  withCall(["connected"], "stop recording", (call) =>
    ask("StopRecording", { call }).then((r) => r !== undefined && say(`recording of call ${call} stopped`)),
  ),
);

// What the transfer box names, as a phone would dial it: an agent's extension, a
// queue's number and an external number (with the trunk prefix) as typed; an IVR flow
// as `ivr:FLOW`.
function transferTarget() {
  const kind = $("transfer-kind").value;
  const v = $("transfer-target").value.trim();
  if (!v) {
    say("type where to transfer to first", "error");
    return undefined;
  }
  if (kind === "ivr") return v.startsWith("ivr:") ? v : `ivr:${v}`;
  return v;
}

$("transfer-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const to = transferTarget();
  if (to === undefined) return;
  withCall(["connected"], "transfer", (call) => ask("SingleStepTransferCall", { call, device: dev(), to }));
});
$("consult-button").addEventListener("click", () => {
  const called = transferTarget();
  if (called === undefined) return;
  withCall(["connected"], "consult on", (held) => ask("ConsultationCall", { held, device: dev(), called }));
});

function heldAndActive(what, f) {
  const held = pick("held");
  const active = [...desk.calls.values()].find((c) => c.call !== held && c.state !== "held");
  if (held === undefined || !active) {
    say(`${what} needs a held call and a consultation call`, "error");
    return;
  }
  f(held, active.call);
}

$("complete-button").addEventListener("click", () =>
  heldAndActive("completing a transfer", (held, active) => ask("TransferCall", { held, active, device: dev() })),
);
$("conference-button").addEventListener("click", () =>
  heldAndActive("a conference", (held, active) => ask("ConferenceCall", { held, active, device: dev() })),
);

$("digits-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const digits = $("digits-input").value.trim().toUpperCase();
  if (!/^[0-9*#A-D]+$/.test(digits)) {
    say("digits are 0-9, *, # and A-D", "error");
    return;
  }
  withCall(["connected"], "send digits on", async (call) => {
    if (await ask("GenerateDigits", { call, device: dev(), digits })) $("digits-input").value = "";
  });
});

// ---- The screen pop ----

link.on("ScreenPop", (m) => {
  if (desk.session && m.agent && m.agent !== desk.session.agent) return;
  desk.pops.set(m.call, m);
  desk.lastPop = m;
  renderPop(m);
  renderCalls();
});

// The CRM's answer comes after the pop (the lookup never delays the call).
link.on("ScreenPopUpdate", (m) => {
  const pop = desk.pops.get(m.call);
  if (!pop) return;
  pop.crm = m.crm;
  pop.crm_error = m.crm_error;
  if (desk.lastPop === pop) renderPop(pop);
});

function kv(obj, labels = {}) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return el("span", { class: "muted" }, "none");
  return el(
    "dl",
    { class: "kv" },
    entries.flatMap(([k, v]) => [el("dt", {}, labels[k] || k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]),
  );
}

// What the caller told the IVR: the variables its flow labels, under their labels;
// the flow's other (internal) variables folded away.
function ivrSection(data, labels) {
  const all = Object.entries(data || {});
  if (!all.length) return []; // the call did not go through an IVR
  // A labelled variable the caller never filled (asked for an agent at the menu, say)
  // is not shown as a label without a value.
  const shown = all.filter(([k, v]) => labels[k] && v !== "" && v !== null && v !== undefined);
  const rest = all.filter(([k]) => !labels[k]);
  const parts = [
    el("h3", {}, "From the IVR"),
    shown.length ? kv(Object.fromEntries(shown), labels) : el("span", { class: "muted" }, "nothing entered"),
  ];
  if (rest.length) {
    parts.push(el("details", { class: "more" }, el("summary", {}, `Other IVR variables (${rest.length})`), kv(Object.fromEntries(rest))));
  }
  return parts;
}

function renderPop(m) {
  const prev = Array.isArray(m.previous_contacts) ? m.previous_contacts : [];
  const rows = [
    ["Call", String(m.call)],
    ["Caller", m.calling || "withheld"],
    ["Access number", m.access_number || m.called || ""],
    ["Location", m.location || "unknown"],
  ];
  const labels = m.ivr_labels && typeof m.ivr_labels === "object" ? m.ivr_labels : {};
  $("pop").className = `pop${m.vip ? " vip" : ""}`;
  $("pop").replaceChildren(
    m.vip ? el("div", { class: "vip-flag" }, "VIP") : "",
    el("dl", { class: "kv" }, rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: `pop-${k.toLowerCase().replaceAll(" ", "-")}` }, v)])),
    ...ivrSection(m.ivr_data, labels),
    el("h3", {}, "Attached data"),
    kv(m.attached),
    el("h3", {}, "Previous contacts"),
    prev.length
      ? el(
          "ul",
          { class: "contacts" },
          prev.map((c) =>
            el(
              "li",
              {},
              [
                localTime(c.time),
                c.agent ? `agent ${c.agent}` : "",
                c.queue ? `queue ${c.queue}` : "",
                c.talk_secs !== undefined && c.talk_secs !== null ? `talked ${formatDuration(c.talk_secs * 1000)}` : "",
                c.outcome || "",
              ]
                .filter(Boolean)
                .join(" · "),
            ),
          ),
        )
      : el("span", { class: "muted" }, "none"),
    // The CRM's part only where a CRM is configured.
    desk.crm || m.crm || m.crm_error ? el("h3", { class: "crm-head" }, "CRM") : "",
    !(desk.crm || m.crm || m.crm_error)
      ? ""
      : m.crm_error
        ? el("span", { class: "error crm" }, `lookup failed: ${m.crm_error}`)
        : m.crm === null || m.crm === undefined
          ? el("span", { class: "muted crm" }, "looking up…")
          : el("div", { class: "crm" }, kv(typeof m.crm === "object" ? m.crm : { record: m.crm })),
  );
}

// ---- Calls today ----

async function refreshToday() {
  const r = await ask("AgentCallsToday", {});
  if (r && Array.isArray(r.calls)) renderToday(r.calls);
}

function renderToday(list) {
  $("today-body").replaceChildren(
    ...(list.length
      ? list.map((c) =>
          el(
            "tr",
            {},
            el("td", {}, localTime(c.time)),
            el("td", {}, `${c.number || ""}${c.direction === "outbound" ? " (out)" : ""}`),
            el("td", {}, c.queue || ""),
            el("td", { class: "num" }, c.talk_secs !== undefined && c.talk_secs !== null ? formatDuration(c.talk_secs * 1000) : ""),
            el("td", {}, c.outcome || ""),
          ),
        )
      : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No calls yet today."))]),
  );
}

// When a call of ours ends, the day's list has one more (once its record is stored).
link.on("CallCleared", () => {
  if (desk.session) setTimeout(() => desk.session && refreshToday(), 1000);
});

// ---- Durations tick locally ----

function tick() {
  if (desk.since !== undefined) $("agent-since").textContent = formatDuration(clockSkew.now() - desk.since);
  for (const td of document.querySelectorAll("#calls-body td.duration")) {
    td.textContent = formatDuration(clockSkew.now() - Number(td.dataset.since));
  }
}
setInterval(tick, 1000);

// ---- Keys for the common actions (not while typing in a box) ----

const KEYS = {
  a: answer,
  h: hangUp,
  o: () => (pick("connected") !== undefined ? hold() : retrieve()),
  r: goReady,
  n: goNotReady,
  t: () => {
    $("transfer-target").focus();
    $("transfer-target").select();
  },
};

document.addEventListener("keydown", (ev) => {
  const t = ev.target;
  const typing = t instanceof HTMLElement && (t.matches("input, select, textarea") || t.isContentEditable);
  if (ev.key === "Escape" && typing) {
    t.blur();
    return;
  }
  if (typing || ev.ctrlKey || ev.altKey || ev.metaKey || !desk.session) return;
  const f = KEYS[ev.key.toLowerCase()];
  if (!f) return;
  ev.preventDefault();
  f();
});

renderCalls();
link.connect();
