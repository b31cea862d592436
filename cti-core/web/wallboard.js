// The supervisor wallboard: agents with state and how long, queues with today's
// figures (the server's Stats events), live calls, and the supervisor's buttons
// (monitor, whisper, barge-in, intercept; force ready / not ready / logout). One
// Monitor "all" gives a snapshot, then every change is pushed; nothing is polled.
"use strict";

const link = new CtiLink();
const $ = (id) => document.getElementById(id);

const board = {
  session: null, // {user, password, station}
  agents: new Map(), // id -> {agent, name, station, state, reason, since}
  queues: new Map(), // name -> {queue, waiting, longest_wait_secs, ...}
  calls: new Map(), // call -> {call, calling, called, queue, since, parties: Map device -> state}
};

function say(text, kind = "info") {
  const box = $("messages");
  const line = el("div", { class: `message ${kind}` }, text);
  box.prepend(line);
  while (box.children.length > 6) box.lastChild.remove();
  if (kind === "info") setTimeout(() => line.remove(), 8000);
}

async function ask(service, fields) {
  try {
    return await link.request(service, fields);
  } catch (e) {
    say(e instanceof CtiError ? e.describe() : String(e.message || e), "error");
    return undefined;
  }
}

link.onStatus((status, retryIn) => {
  const c = $("conn");
  c.className = `conn ${status}`;
  c.textContent =
    status === "reconnecting" ? `reconnecting in ${Math.round(retryIn / 1000)} s` : status;
});
link.on("Error", (m) => say(`server: ${m.reason || m.message || "error"}`, "error"));

// System alarms (disk full): a banner while raised, gone when cleared.
const alarms = new Map(); // alarm -> {severity, text}
link.on("SystemAlarm", (m) => {
  if (m.state === "raised") alarms.set(m.alarm, m);
  else alarms.delete(m.alarm);
  const box = $("alarms");
  box.replaceChildren(...[...alarms.values()].map((a) =>
    el("div", { class: `alarm ${a.severity}` }, `${a.alarm.replace(/_/g, " ")}: ${a.text}`)));
  box.hidden = alarms.size === 0;
  if (m.state === "cleared") say(`cleared: ${m.alarm.replace(/_/g, " ")} (${m.text})`);
});

// ---- Log in ----

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (link.status !== "connected") {
    say("not connected to the server yet; try again in a moment", "error");
    return;
  }
  const user = $("login-user").value.trim();
  const password = $("login-password").value;
  const station = $("login-station").value.trim();
  if (await login(user, password, station)) $("login-password").value = "";
});

async function login(user, password, station) {
  const fields = { user, password };
  if (station) fields.station = station;
  const r = await ask("Login", fields);
  if (!r) return undefined;
  if (r.role !== "supervisor") {
    say(`${user} is not a supervisor: the wallboard needs a supervisor login`, "error");
    await ask("Logout", {});
    return undefined;
  }
  board.session = { user, password, station };
  $("who").textContent = `supervisor ${r.name || user}${station ? ` at station ${station}` : ""}`;
  $("login-panel").hidden = true;
  $("board").hidden = false;
  const m = await ask("Monitor", { target: "all" });
  if (m && m.snapshot) applySnapshot(m.snapshot);
  return r;
}

link.onOpen = async () => {
  if (!board.session) return;
  say("reconnected; logging in again");
  const s = board.session;
  await login(s.user, s.password, s.station);
};

setInterval(() => {
  if (link.status === "connected") link.request("Ping").catch(() => {});
}, 30000);

function applySnapshot(snap) {
  board.agents.clear();
  for (const a of snap.agents || []) setAgent(a);
  board.calls.clear();
  for (const c of snap.calls || []) {
    board.calls.set(c.call, {
      call: c.call,
      calling: c.calling || "",
      called: c.called || "",
      queue: c.queue || "",
      since: parseTime(c.started) ?? clockSkew.now(),
      parties: new Map((c.parties || []).map((p) => [p.device, p.state])),
    });
  }
  for (const q of snap.queues || []) {
    const prev = board.queues.get(q.queue) || { queue: q.queue };
    prev.waiting = Array.isArray(q.waiting) ? q.waiting.length : q.waiting;
    const oldest = Array.isArray(q.waiting) ? Math.min(...q.waiting.map((w) => parseTime(w.since) ?? Infinity)) : Infinity;
    if (Number.isFinite(oldest)) prev.longest_wait_secs = Math.max(0, Math.round((clockSkew.now() - oldest) / 1000));
    board.queues.set(q.queue, prev);
  }
  renderAgents();
  renderCalls();
  renderQueues();
}

// ---- Agents ----

function setAgent(a) {
  const prev = board.agents.get(a.agent) || { agent: a.agent };
  const next = Object.assign({}, prev);
  for (const k of ["name", "station", "state", "reason"]) if (a[k] !== undefined) next[k] = a[k];
  // An agent who never logged in has no meaningful "since" (the epoch).
  const since = parseTime(a.since);
  next.since = since > 0 ? since : a.since === undefined ? prev.since : undefined;
  board.agents.set(a.agent, next);
}

link.on("AgentState", (m) => {
  clockSkew.note(m.time);
  setAgent(m);
  renderAgents();
});

const SUPERVISE = [
  ["monitor", "Monitor"],
  ["whisper", "Whisper"],
  ["barge", "Barge in"],
  ["intercept", "Intercept"],
];

function renderAgents() {
  const rows = [...board.agents.values()];
  $("agents-body").replaceChildren(
    ...rows.map((a) => {
      const state = (a.state || "logged_out").replaceAll("_", " ");
      return el(
        "tr",
        { class: `agent state-${(a.state || "logged_out").replaceAll("_", "-")}`, dataset: { agent: a.agent } },
        el("td", {}, a.agent),
        el("td", {}, a.name || ""),
        el("td", {}, a.station || ""),
        el("td", { class: "agent-state" }, el("span", { class: `state ${state.replaceAll(" ", "-")}` }, state), a.reason ? ` (${a.reason})` : ""),
        a.since === undefined
          ? el("td", { class: "muted" }, "—")
          : el("td", { class: "duration", dataset: { since: a.since } }, formatDuration(clockSkew.now() - a.since)),
        el(
          "td",
          { class: "buttons" },
          SUPERVISE.map(([mode, label]) =>
            el("button", { type: "button", class: `sup-${mode}`, onclick: () => supervise(a.agent, mode, label) }, label),
          ),
        ),
        el(
          "td",
          { class: "buttons" },
          el("button", { type: "button", class: "force-ready", onclick: () => force(a.agent, "ready") }, "Ready"),
          el("button", { type: "button", class: "force-not-ready", onclick: () => force(a.agent, "not_ready") }, "Not ready"),
          el("button", { type: "button", class: "force-logout", onclick: () => force(a.agent, "logged_out") }, "Log out"),
        ),
      );
    }),
  );
}

async function supervise(agent, mode, label) {
  if (await ask("Supervise", { agent, mode })) say(`${label}: agent ${agent}`);
}

async function force(agent, state) {
  const fields = { agent, state };
  if (state === "not_ready") fields.reason = "supervisor";
  if (await ask("SetAgentState", fields)) say(`agent ${agent} set ${state.replaceAll("_", " ")}`);
}

// ---- Queues: today's figures are pushed by the server about once a second ----

link.on("Stats", (m) => {
  clockSkew.note(m.time);
  for (const q of m.queues || []) board.queues.set(q.queue, Object.assign(board.queues.get(q.queue) || {}, q));
  renderQueues();
});

function pct(x) {
  return x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`;
}

function renderQueues() {
  const rows = [...board.queues.values()].sort((a, b) => a.queue.localeCompare(b.queue));
  $("queues-body").replaceChildren(
    ...rows.map((q) =>
      el(
        "tr",
        { class: `queue${q.waiting > 0 ? " waiting" : ""}`, dataset: { queue: q.queue } },
        el("td", {}, q.queue),
        el("td", { class: "q-waiting" }, String(q.waiting ?? 0)),
        el("td", { class: "q-longest" }, q.longest_wait_secs ? formatDuration(q.longest_wait_secs * 1000) : "—"),
        el("td", { class: "q-sl" }, pct(q.service_level)),
        el("td", { class: "q-abandon" }, pct(q.abandon_rate)),
        el("td", {}, String(q.answered ?? 0)),
        el("td", {}, String(q.abandoned ?? 0)),
      ),
    ),
  );
}

// ---- Live calls, kept from the call events ----

function call(id, m) {
  let c = board.calls.get(id);
  if (!c) {
    c = { call: id, calling: "", called: "", queue: "", since: parseTime(m && m.time) ?? clockSkew.now(), parties: new Map() };
    board.calls.set(id, c);
  }
  if (m) {
    if (m.calling && typeof m.calling === "string" && !m.calling.startsWith("station:")) c.calling = c.calling || m.calling;
    if (m.called) c.called = c.called || m.called;
  }
  return c;
}

const callEvents = {
  ServiceInitiated: (m) => call(m.call, m).parties.set(m.device, "initiated"),
  Originated: (m) => {
    const c = call(m.call);
    c.calling = c.calling || m.calling;
    c.called = m.called;
    c.parties.set(m.calling, "connected");
  },
  Delivered: (m) => call(m.call, m).parties.set(m.alerting, "alerting"),
  Established: (m) => {
    const c = call(m.call, m);
    c.parties.set(m.answering, "connected");
    // Answered: the call has left its queue.
    for (const d of [...c.parties.keys()]) if (d.startsWith("queue:")) c.parties.delete(d);
  },
  Queued: (m) => {
    const c = call(m.call, m);
    c.queue = m.queue;
    c.parties.set(`queue:${m.queue}`, "queued");
  },
  Diverted: (m) => {
    const c = call(m.call, m);
    c.parties.delete(m.from);
    if (m.to && m.to.startsWith("queue:")) c.queue = m.to.slice(6);
  },
  Held: (m) => call(m.call).parties.set(m.holding, "held"),
  Retrieved: (m) => call(m.call).parties.set(m.retrieving, "connected"),
  ConnectionCleared: (m) => {
    const c = board.calls.get(m.call);
    if (c) c.parties.delete(m.releasing);
  },
  CallCleared: (m) => board.calls.delete(m.call),
  Failed: (m) => call(m.call).parties.set(m.failing, "fail"),
  HandedOff: (m) => {
    const c = call(m.call);
    for (const d of [...c.parties.keys()]) if (d.startsWith("queue:") || d.startsWith("station:")) c.parties.delete(d);
    c.parties.set(m.to, "connected");
  },
  Transferred: (m) => {
    const p = call(m.primary);
    p.parties.delete(m.transferring);
    if (m.secondary !== m.primary) {
      const s = board.calls.get(m.secondary);
      if (s) for (const [d, st] of s.parties) if (d !== m.transferring) p.parties.set(d, st);
      board.calls.delete(m.secondary);
    }
    for (const d of [...p.parties.keys()]) if (d.startsWith("queue:") && m.transferred_to !== d) p.parties.delete(d);
  },
  Conferenced: (m) => {
    const p = call(m.primary);
    const s = board.calls.get(m.secondary);
    if (s && m.secondary !== m.primary) {
      for (const [d, st] of s.parties) p.parties.set(d, st === "held" ? "connected" : st);
      board.calls.delete(m.secondary);
    }
    for (const [d, st] of p.parties) if (st === "held") p.parties.set(d, "connected");
  },
  Supervising: (m) => {
    const c = call(m.call);
    c.supervisor = `${m.supervisor} (${m.mode})`;
  },
};

for (const [name, f] of Object.entries(callEvents)) {
  link.on(name, (m) => {
    clockSkew.note(m.time);
    f(m);
    renderCalls();
  });
}

function renderCalls() {
  const rows = [...board.calls.values()].sort((a, b) => a.call - b.call);
  $("live-body").replaceChildren(
    ...rows.map((c) =>
      el(
        "tr",
        { class: "live-call", dataset: { call: c.call } },
        el("td", {}, String(c.call)),
        el("td", {}, deviceLabel(c.calling) || "—"),
        el("td", {}, c.called || ""),
        el("td", {}, c.queue || ""),
        el(
          "td",
          { class: "parties" },
          [...c.parties].map(([d, st]) => el("span", { class: `party ${st}` }, `${deviceLabel(d)} ${st}`)),
          c.supervisor ? el("span", { class: "party supervisor" }, `supervisor ${c.supervisor}`) : "",
        ),
        el("td", { class: "duration", dataset: { since: c.since } }, formatDuration(clockSkew.now() - c.since)),
      ),
    ),
  );
  $("no-live").hidden = rows.length > 0;
}

// ---- Durations tick locally between pushes ----

setInterval(() => {
  for (const td of document.querySelectorAll("td.duration")) {
    td.textContent = formatDuration(clockSkew.now() - Number(td.dataset.since));
  }
}, 1000);

link.connect();
