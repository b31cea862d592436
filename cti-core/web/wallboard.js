// The supervisor wallboard: per queue today's figures and the agents by state (the
// server's Stats events), the callers waiting with their numbers, agents with state and
// how long (grouped by queue or by agent group), live calls, system alarms, and the
// supervisor's buttons (monitor, whisper, barge-in, intercept; force ready / not ready
// / logout). One Monitor "all" gives a snapshot, then every change is pushed; nothing
// is polled.
"use strict";

const link = new CtiLink();
const $ = (id) => document.getElementById(id);

const board = {
  session: null, // {user, password, station}
  // The Login result's directory: the agents this supervisor supervises (supervisors
  // are not in it), with their queues and groups; null from a server without one.
  directory: null,
  agents: new Map(), // id -> {agent, name, station, state, reason, since}
  queues: new Map(), // name -> the Stats event's queue figures
  totals: null, // the Stats event's agents, ivr_calls, access_numbers
  calls: new Map(), // call -> {call, calling, called, queue, since, parties: Map device -> state}
  alarms: new Map(), // alarm -> SystemAlarm event (raised)
  groupBy: localStorage.getItem("hotline.wallboard.groupBy") || "queue",
};

const ask = (service, fields, context) => askLink(link, service, fields, context);

link.onStatus((status, retryIn) => {
  const c = $("conn");
  c.className = `conn ${status}`;
  c.textContent =
    status === "reconnecting" ? `reconnecting in ${Math.round(retryIn / 1000)} s` : status;
});
link.on("Error", (m) => say(`server: ${m.reason || m.message || "error"}`, "error"));

// ---- Log in ----

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (link.status !== "connected") {
    say("Not connected to the server yet: wait until the top right says connected, then try again", "error");
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
    say(`${user} is an agent: agents use the agent desk (/agent); the wallboard needs a supervisor`, "error");
    await ask("Logout", {});
    return undefined;
  }
  board.session = { user, password, station };
  board.directory = r.directory && Array.isArray(r.directory.agents) ? r.directory : null;
  $("who").textContent = `supervisor ${r.name || user}${station ? ` at station ${station}` : ""}`;
  $("login-panel").hidden = true;
  $("board").hidden = false;
  const hasGroups = board.directory && board.directory.groups && board.directory.groups.length > 0;
  $("group-by").querySelector('option[value="group"]').disabled = !hasGroups;
  if (board.groupBy === "group" && !hasGroups) board.groupBy = "queue";
  $("group-by").value = board.groupBy;
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
  // Agents of the directory first (so the logged-out ones show too), then the states.
  for (const a of (board.directory && board.directory.agents) || []) setAgent({ agent: a.agent, name: a.name });
  for (const a of snap.agents || []) setAgent(a);
  board.calls.clear();
  for (const c of snap.calls || []) {
    const parties = new Map((c.parties || []).map((p) => [p.device, p.state]));
    board.calls.set(c.call, {
      call: c.call,
      calling: c.calling || "",
      called: c.called || "",
      queue: c.queue || "",
      since: parseTime(c.started) ?? clockSkew.now(),
      parties,
    });
    tidyParties(board.calls.get(c.call));
  }
  renderAgents();
  renderCalls();
  renderQueues();
}

// ---- Agents ----

const isAgent = (id) => !board.directory || board.directory.agents.some((a) => a.agent === id);

function setAgent(a) {
  // Supervisors (and agents outside this supervisor's groups) are not listed.
  if (!isAgent(a.agent)) return;
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
  ["monitor", "Monitor", "Listening in on"],
  ["whisper", "Whisper", "Whispering to"],
  ["barge", "Barge in", "Barging in on"],
  ["intercept", "Intercept", "Taking over the call of"],
];

const STATE_CLASS = { ready: "c-ready", on_call: "c-on-call", wrap_up: "c-wrap", not_ready: "c-not-ready" };
const STATE_WORD = { ready: "ready", on_call: "on call", wrap_up: "wrap-up", not_ready: "not ready" };

// "2 0 1 3" as coloured chips: ready, on call, wrap-up, not ready.
function countsEl(c) {
  c = c || {};
  return el(
    "span",
    { class: "counts", title: Object.keys(STATE_CLASS).map((k) => `${c[k] ?? 0} ${STATE_WORD[k]}`).join(" · ") },
    Object.keys(STATE_CLASS).map((k) =>
      el("span", { class: `${STATE_CLASS[k]}${(c[k] ?? 0) === 0 ? " zero" : ""}`, "aria-label": `${c[k] ?? 0} ${STATE_WORD[k]}` }, String(c[k] ?? 0)),
    ),
  );
}

function countAgents(list) {
  const c = { ready: 0, on_call: 0, wrap_up: 0, not_ready: 0 };
  for (const a of list) {
    if (a.state === "ready") c.ready++;
    else if (a.state === "ringing" || a.state === "busy") c.on_call++;
    else if (a.state === "working_after_call") c.wrap_up++;
    else if (a.state === "not_ready") c.not_ready++;
  }
  return c;
}

// The agents in the chosen grouping: [[heading, [agent]]]; one unnamed group when not
// grouped.
function groups() {
  const all = [...board.agents.values()].sort((a, b) => a.agent.localeCompare(b.agent, undefined, { numeric: true }));
  const dir = board.directory;
  if (!dir || board.groupBy === "none") return [["", all]];
  const key = board.groupBy === "group" ? "groups" : "queues";
  const names = board.groupBy === "group" ? dir.groups || [] : (dir.queues || []).map((q) => q.queue);
  const of = new Map(dir.agents.map((a) => [a.agent, a[key] || []]));
  const out = names.map((n) => [n, all.filter((a) => (of.get(a.agent) || []).includes(n))]).filter(([, l]) => l.length);
  const none = all.filter((a) => !(of.get(a.agent) || []).length);
  if (none.length) out.push([board.groupBy === "group" ? "in no group" : "in no queue", none]);
  return out;
}

// An agent's state as the row shows it: the tiles' short words ("wrap-up", not
// "working after call", which would widen the table past a 1366 px screen).
const ROW_STATE_WORD = { working_after_call: "wrap-up" };

function agentRow(a) {
  const state = ROW_STATE_WORD[a.state] || (a.state || "logged_out").replaceAll("_", " ");
  const loggedIn = a.state && a.state !== "logged_out";
  return el(
    "tr",
    { class: `agent state-${(a.state || "logged_out").replaceAll("_", "-")}`, dataset: { agent: a.agent } },
    el("td", {}, a.agent),
    el("td", { class: "agent-name" }, a.name || ""),
    el("td", {}, a.station || ""),
    el(
      "td",
      { class: "agent-state" },
      el("span", { class: `state ${state.replaceAll(" ", "-")}` }, state),
      a.reason ? el("span", { class: "reason" }, ` ${a.reason}`) : "",
    ),
    a.since === undefined || !loggedIn
      ? el("td", { class: "num muted" }, "—")
      : el("td", { class: "duration num", dataset: { since: a.since } }, formatDuration(clockSkew.now() - a.since)),
    el(
      "td",
      { class: "buttons" },
      SUPERVISE.map(([mode, label, doing]) =>
        el("button", { type: "button", class: `sup-${mode}`, disabled: !loggedIn, onclick: () => supervise(a.agent, mode, label, doing) }, label),
      ),
    ),
    el(
      "td",
      { class: "buttons" },
      el("button", { type: "button", class: "force-ready", disabled: !loggedIn, onclick: () => force(a.agent, "ready") }, "Ready"),
      el("button", { type: "button", class: "force-not-ready", disabled: !loggedIn, onclick: () => force(a.agent, "not_ready") }, "Not ready"),
      el("button", { type: "button", class: "force-logout", disabled: !loggedIn, onclick: () => force(a.agent, "logged_out") }, "Log out"),
    ),
  );
}

function renderAgents() {
  const rows = [];
  for (const [name, list] of groups()) {
    if (name) {
      const q = board.groupBy === "queue" && board.directory ? (board.directory.queues || []).find((x) => x.queue === name) : null;
      rows.push(
        el(
          "tr",
          { class: "group-head", dataset: { group: name } },
          el("td", { colspan: 7 }, `${board.groupBy === "queue" && q ? "Queue" : board.groupBy === "group" ? "Group" : ""} ${name}${q && q.number ? ` · ${q.number}` : ""}`.trim(), countsEl(countAgents(list))),
        ),
      );
    }
    for (const a of list) rows.push(agentRow(a));
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No agents.")));
  $("agents-body").replaceChildren(...rows);
}

$("group-by").addEventListener("change", () => {
  board.groupBy = $("group-by").value;
  localStorage.setItem("hotline.wallboard.groupBy", board.groupBy);
  renderAgents();
});

async function supervise(agent, mode, label, doing) {
  const what = `${doing} agent ${agent}`;
  if (await ask("Supervise", { agent, mode }, { what, mode: label.toLowerCase() })) say(`${what}: your phone rings first if it is on hook`);
}

async function force(agent, state) {
  const fields = { agent, state };
  if (state === "not_ready") fields.reason = "supervisor";
  const words = state.replaceAll("_", " ");
  if (await ask("SetAgentState", fields, { forced: true, what: `Setting agent ${agent} ${words}` })) say(`agent ${agent} set ${words}`);
}

// ---- Queues, the tiles and the waiting callers: pushed about once a second ----

link.on("Stats", (m) => {
  clockSkew.note(m.time);
  board.queues.clear();
  for (const q of m.queues || []) board.queues.set(q.queue, q);
  board.totals = { agents: m.agents, ivr_calls: m.ivr_calls, access_numbers: m.access_numbers };
  // The waiting callers' numbers fill in calls first seen without one.
  for (const q of m.queues || []) {
    for (const w of q.callers || []) {
      const c = board.calls.get(w.call);
      if (c && !c.calling && w.calling) {
        c.calling = w.calling;
        renderCalls();
      }
    }
  }
  renderQueues();
});

function pct(x) {
  return x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`;
}

const secs = (s) => (s === null || s === undefined ? "—" : formatDuration(s * 1000));

// Green at or above the target, amber within 10 points under it, red below that.
function slClass(sl, target) {
  if (sl === null || sl === undefined) return "sl";
  const t = typeof target === "number" ? target : 0.8;
  return `sl ${sl >= t ? "good" : sl >= t - 0.1 ? "warn" : "bad"}`;
}

function renderQueues() {
  const rows = [...board.queues.values()].sort((a, b) => a.queue.localeCompare(b.queue));
  $("queues-body").replaceChildren(
    ...(rows.length
      ? rows.map((q) =>
          el(
            "tr",
            { class: `queue${q.waiting > 0 ? " waiting" : ""}`, dataset: { queue: q.queue } },
            el("td", {}, el("strong", {}, q.queue)),
            el("td", { class: "num q-waiting" }, String(q.waiting ?? 0)),
            el("td", { class: "num q-longest" }, q.longest_wait_secs ? formatDuration(q.longest_wait_secs * 1000) : "—"),
            el("td", { class: "num q-offered" }, String(q.offered ?? 0)),
            el("td", { class: "num q-answered" }, String(q.answered ?? 0)),
            el("td", { class: "num q-abandoned" }, String(q.abandoned ?? 0)),
            el("td", { class: "num q-late" }, String(q.answered_late ?? 0)),
            el(
              "td",
              { class: "num q-sl" },
              el("span", { class: slClass(q.service_level, q.service_level_target) }, pct(q.service_level)),
              el("span", { class: "sl-target" }, ` / ${pct(q.service_level_target ?? null)}`),
            ),
            el("td", { class: "num q-asa" }, secs(q.asa_secs)),
            el("td", { class: "num q-aht" }, secs(q.aht_secs)),
            el("td", { class: "q-agents" }, countsEl(q.agents)),
          ),
        )
      : [el("tr", {}, el("td", { colspan: 11, class: "muted" }, "No figures yet."))]),
  );
  renderTiles();
  renderCallers();
}

function renderTiles() {
  const qs = [...board.queues.values()];
  const waiting = qs.reduce((n, q) => n + (q.waiting || 0), 0);
  const longest = qs.reduce((n, q) => Math.max(n, q.longest_wait_secs || 0), 0);
  $("t-waiting").textContent = String(waiting);
  $("tile-waiting").classList.toggle("alert", waiting > 0);
  $("t-longest").textContent = longest ? formatDuration(longest * 1000) : "—";
  $("tile-longest").classList.toggle("alert", longest > 60);
  const t = board.totals || {};
  const a = t.agents || countAgents([...board.agents.values()]);
  $("t-ivr").textContent = String(t.ivr_calls ?? 0);
  $("t-ready").textContent = String(a.ready ?? 0);
  $("t-on-call").textContent = String(a.on_call ?? 0);
  $("t-wrap").textContent = String(a.wrap_up ?? 0);
  $("t-not-ready").textContent = String(a.not_ready ?? 0);
  const access = Array.isArray(t.access_numbers) ? t.access_numbers : [];
  $("access-list").replaceChildren(
    ...(access.length
      ? access.map((n) =>
          el(
            "span",
            { class: `open-flag ${n.open === true ? "open" : n.open === false ? "closed" : ""}`, dataset: { number: n.number } },
            `${n.number === "*" ? "any number" : n.number} ${n.open === true ? "open" : n.open === false ? "closed" : "?"}`,
          ),
        )
      : [el("span", { class: "muted" }, "—")]),
  );
}

function renderCallers() {
  const list = [];
  for (const q of board.queues.values()) for (const w of q.callers || []) list.push({ ...w, queue: q.queue });
  list.sort((a, b) => (parseTime(a.since) ?? 0) - (parseTime(b.since) ?? 0));
  $("callers-body").replaceChildren(
    ...list.map((w) => {
      const since = parseTime(w.since) ?? clockSkew.now();
      return el(
        "tr",
        { class: "caller", dataset: { call: w.call } },
        el("td", {}, w.calling || "withheld"),
        el("td", {}, w.queue),
        el("td", { class: "duration num", dataset: { since } }, formatDuration(clockSkew.now() - since)),
      );
    }),
  );
  $("no-callers").hidden = list.length > 0;
}

// ---- System alarms (disk full, a span down, ...): a banner until cleared ----

link.on("SystemAlarm", (m) => {
  if (m.state === "cleared") {
    if (board.alarms.delete(m.alarm)) say(`cleared: ${m.text || m.alarm}`);
  } else {
    board.alarms.set(m.alarm, m);
  }
  renderAlarms();
});

function renderAlarms() {
  $("alarms").replaceChildren(
    ...[...board.alarms.values()].map((a) =>
      el(
        "div",
        { class: `alarm ${a.severity || ""}`, dataset: { alarm: a.alarm } },
        el("span", { class: "alarm-severity" }, a.severity || "alarm"),
        el("span", { class: "alarm-text" }, a.text || a.alarm.replaceAll("_", " ")),
        el("span", { class: "alarm-time" }, a.time ? `since ${localTime(a.time)}` : ""),
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

const dropWhere = (c, pred) => {
  for (const d of [...c.parties.keys()]) if (pred(d)) c.parties.delete(d);
};

// A call answered at a station has left the IVR and its queue; a queued call has left
// the IVR.
function tidyParties(c) {
  const answered = [...c.parties].some(([d, st]) => st === "connected" && d.startsWith("station:"));
  if (answered) dropWhere(c, (d) => d.startsWith("queue:") || d.startsWith("ivr:"));
  else if ([...c.parties.values()].includes("queued")) dropWhere(c, (d) => d.startsWith("ivr:"));
}

const callEvents = {
  ServiceInitiated: (m) => call(m.call, m).parties.set(m.device, "initiated"),
  Originated: (m) => {
    const c = call(m.call);
    c.calling = c.calling || m.calling;
    c.called = m.called;
    c.parties.set(m.calling, "connected");
  },
  Delivered: (m) => {
    const c = call(m.call, m);
    c.parties.set(m.alerting, "alerting");
    dropWhere(c, (d) => d.startsWith("ivr:"));
  },
  Established: (m) => {
    const c = call(m.call, m);
    c.parties.set(m.answering, "connected");
    // Answered: the call has left its queue and the IVR.
    dropWhere(c, (d) => d.startsWith("queue:") || d.startsWith("ivr:"));
  },
  Queued: (m) => {
    const c = call(m.call, m);
    c.queue = m.queue;
    dropWhere(c, (d) => d.startsWith("ivr:") || (d.startsWith("queue:") && d !== `queue:${m.queue}`));
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
    dropWhere(c, (d) => d.startsWith("queue:") || d.startsWith("station:") || d.startsWith("ivr:"));
    c.parties.set(m.to, m.to.startsWith("ivr:") ? "ivr" : "connected");
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

// A party as a supervisor reads it: "station 2001 (Li Wei) connected", "in IVR main",
// "waiting in queue sales".
function partyText(d, st) {
  if (d.startsWith("ivr:")) return `in IVR ${d.slice(4)}`;
  if (d.startsWith("queue:") && st === "queued") return `waiting in queue ${d.slice(6)}`;
  const text = `${deviceLabel(d)} ${st}`;
  if (d.startsWith("station:")) {
    const a = [...board.agents.values()].find((x) => x.station === d.slice(8) && x.state !== "logged_out");
    if (a && a.name) return `${a.name} · ${text}`;
  }
  return text;
}

// The trunk leg an inbound caller came in on: the Caller column says who that is.
function callerLeg(c) {
  if (!c.calling || c.calling.startsWith("station:")) return undefined;
  return [...c.parties.keys()].find((d) => d.startsWith("trunk:"));
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
        el(
          "td",
          { class: "parties" },
          [...c.parties]
            .filter(([d]) => d !== callerLeg(c) || c.parties.size === 1)
            .map(([d, st]) => el("span", { class: `party ${st}` }, partyText(d, st))),
          c.supervisor ? el("span", { class: "party supervisor" }, `supervisor ${c.supervisor}`) : "",
        ),
        el("td", { class: "duration num", dataset: { since: c.since } }, formatDuration(clockSkew.now() - c.since)),
      ),
    ),
  );
  $("no-live").hidden = rows.length > 0;
}

// ---- Durations and the clock tick locally between pushes ----

setInterval(() => {
  for (const td of document.querySelectorAll("td.duration")) {
    td.textContent = formatDuration(clockSkew.now() - Number(td.dataset.since));
  }
  $("clock").textContent = new Date(clockSkew.now()).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}, 1000);

renderAgents();
renderQueues();
link.connect();
