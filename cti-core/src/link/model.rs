//! The link server's read-side model: calls, agents and queues as the engine's events
//! describe them. It answers snapshots on subscribe, decides which monitors an event
//! matches, checks that an agent names only its own calls, and derives the displayed
//! agent state (`ringing` and `busy` have no CSTA agent event).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::time::rfc3339;
use super::wire::Target;
use crate::csta::{AgentEventKind, CstaEvent, DeviceId};

#[derive(Clone, Debug, Default)]
pub struct CallView {
    pub calling: Option<String>,
    pub called: Option<String>,
    pub queue: Option<String>,
    pub started_ms: i64,
    /// Current parties: (device, connection state).
    pub parties: Vec<(String, &'static str)>,
    /// Every device that ever took part (monitors of a device see the whole call).
    pub ever: BTreeSet<String>,
    /// Every queue the call waited in.
    pub queues: BTreeSet<String>,
}

#[derive(Clone, Debug)]
pub struct AgentView {
    pub name: String,
    pub supervisor: bool,
    pub station: Option<String>,
    pub state: &'static str,
    pub reason: Option<String>,
    pub since_ms: i64,
}

/// What an event touched, for matching monitors.
#[derive(Debug, Default)]
pub struct Scope {
    pub devices: BTreeSet<String>,
    pub queues: BTreeSet<String>,
    pub agents: BTreeSet<String>,
    /// Agents whose displayed state changed with this event.
    pub state_changed: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Model {
    pub calls: BTreeMap<u64, CallView>,
    pub agents: BTreeMap<String, AgentView>,
    /// Queue → waiting calls (call, since), in arrival order.
    pub queues: BTreeMap<String, Vec<(u64, i64)>>,
    /// Agent groups: supervisor id → agents they may supervise (absent: everyone).
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// Scoped supervisor id → the queues in their scope: those with at least one
    /// member among their agents.
    pub group_queues: BTreeMap<String, BTreeSet<String>>,
    /// Queue → member agents.
    pub members: BTreeMap<String, BTreeSet<String>>,
}

/// Who looks: a scoped supervisor sees and acts only within their scope (their
/// agents, the queues those agents serve, their own station).
#[derive(Clone, Copy, Debug)]
pub struct Viewer<'a> {
    pub user: &'a str,
    /// `station:EXT` of the viewer's connection.
    pub own: Option<&'a str>,
}

impl Model {
    /// `since_ms`: when the agents' first state began (the link's start).
    pub fn new(cfg: &crate::Config, since_ms: i64) -> Model {
        let mut m = Model::default();
        for a in &cfg.agents {
            m.agents.insert(a.id.clone(), AgentView::new(&a.name, false, since_ms));
            for &(q, _) in &a.queues {
                m.members.entry(cfg.queues[q].name.clone()).or_default().insert(a.id.clone());
            }
        }
        for q in &cfg.queues {
            m.queues.insert(q.name.clone(), Vec::new());
        }
        for s in &cfg.supervisors {
            m.agents.insert(s.id.clone(), AgentView::new(&s.name, true, since_ms));
            if !s.groups.is_empty() {
                let agents: BTreeSet<String> = s
                    .groups
                    .iter()
                    .flat_map(|&g| cfg.agent_groups[g].agents.iter().map(|&a| cfg.agents[a].id.clone()))
                    .collect();
                let queues = m
                    .members
                    .iter()
                    .filter(|(_, members)| !members.is_disjoint(&agents))
                    .map(|(q, _)| q.clone())
                    .collect();
                m.group_queues.insert(s.id.clone(), queues);
                m.groups.insert(s.id.clone(), agents);
            }
        }
        m
    }

    /// Is this supervisor limited to groups?
    pub fn scoped(&self, supervisor: &str) -> bool {
        self.groups.contains_key(supervisor)
    }

    /// Is the queue in the supervisor's scope?
    pub fn supervises_queue(&self, supervisor: &str, queue: &str) -> bool {
        self.group_queues.get(supervisor).map_or(true, |q| q.contains(queue))
    }

    /// Is the device in the viewer's scope: their own station, a station where one of
    /// their agents is logged in, a queue of theirs? (Everything for an unscoped one.)
    pub fn device_in_scope(&self, v: Viewer<'_>, device: &str) -> bool {
        if !self.scoped(v.user) || v.own == Some(device) {
            return true;
        }
        if let Some(ext) = device.strip_prefix("station:") {
            return self.agent_at(ext).is_some_and(|a| a == v.user || self.supervises(v.user, a));
        }
        device.strip_prefix("queue:").is_some_and(|q| self.supervises_queue(v.user, q))
    }

    /// Is a call in progress in the viewer's scope now: one of its live connections is
    /// in scope (their agent's station, the queue it waits in, their own station)?
    pub fn call_in_scope(&self, v: Viewer<'_>, call: u64) -> bool {
        self.calls
            .get(&call)
            .is_some_and(|c| c.parties.iter().any(|(d, st)| *st != "fail" && self.device_in_scope(v, d)))
    }

    /// May the viewer see what an event touched (monitors of a scoped supervisor,
    /// `"all"` included, carry only what touches their scope)?
    pub fn visible(&self, v: Viewer<'_>, scope: &Scope) -> bool {
        if !self.scoped(v.user) {
            return true;
        }
        scope.agents.iter().any(|a| a == v.user || self.supervises(v.user, a))
            || scope.queues.iter().any(|q| self.supervises_queue(v.user, q))
            || v.own.is_some_and(|o| scope.devices.contains(o))
    }

    /// Does the device have a live connection in the call now (not one it had before
    /// a transfer, a deflection or leaving)?
    pub fn is_party(&self, call: u64, device: &str) -> bool {
        self.calls.get(&call).is_some_and(|c| c.parties.iter().any(|(d, st)| d == device && *st != "fail"))
    }

    /// The agent logged in at a station.
    pub fn agent_at(&self, ext: &str) -> Option<&str> {
        self.agents.iter().find(|(_, a)| a.station.as_deref() == Some(ext)).map(|(id, _)| id.as_str())
    }

    /// May this supervisor act on this agent (groups)?
    pub fn supervises(&self, supervisor: &str, agent: &str) -> bool {
        self.groups.get(supervisor).map_or(true, |g| g.contains(agent))
    }

    fn set_party(&mut self, call: u64, device: &DeviceId, state: &'static str, at: i64) -> &mut CallView {
        let c = self.calls.entry(call).or_insert_with(|| CallView { started_ms: at, ..CallView::default() });
        let d = device.to_string();
        c.ever.insert(d.clone());
        match c.parties.iter_mut().find(|(p, _)| *p == d) {
            Some(p) => p.1 = state,
            None => c.parties.push((d, state)),
        }
        c
    }

    fn drop_party(&mut self, call: u64, device: &DeviceId) {
        if let Some(c) = self.calls.get_mut(&call) {
            let d = device.to_string();
            c.ever.insert(d.clone());
            c.parties.retain(|(p, _)| *p != d);
        }
        if let DeviceId::Queue(q) = device {
            self.unqueue(q, call);
        }
    }

    fn unqueue(&mut self, q: &str, call: u64) {
        if let Some(w) = self.queues.get_mut(q) {
            w.retain(|(c, _)| *c != call);
        }
    }

    fn unqueue_all(&mut self, call: u64) {
        for w in self.queues.values_mut() {
            w.retain(|(c, _)| *c != call);
        }
    }

    fn station_agent_state(&mut self, device: &DeviceId, state: &'static str, at: i64, scope: &mut Scope) {
        let DeviceId::Station(ext) = device else { return };
        let Some(id) = self.agent_at(ext).map(str::to_string) else { return };
        let a = self.agents.get_mut(&id).expect("listed");
        if a.supervisor || a.state == state {
            return;
        }
        a.state = state;
        a.reason = None;
        a.since_ms = at;
        scope.state_changed.push(id);
    }

    /// Apply an event; return what it touched (including every device of the calls
    /// involved, before a cleared call is forgotten).
    pub fn apply(&mut self, ev: &CstaEvent, at: i64) -> Scope {
        let mut scope = Scope::default();
        let mut calls: Vec<u64> = Vec::new();
        let mut forget: Vec<u64> = Vec::new();
        match ev {
            CstaEvent::ServiceInitiated { call, device } => {
                self.set_party(call.0, device, "initiated", at);
                calls.push(call.0);
            }
            CstaEvent::Originated { call, calling, called } => {
                let c = self.set_party(call.0, calling, "connected", at);
                c.called = Some(called.clone());
                if let DeviceId::Station(ext) = calling {
                    c.calling.get_or_insert_with(|| ext.clone());
                }
                calls.push(call.0);
            }
            CstaEvent::Delivered { call, alerting, calling, called, .. } => {
                let c = self.set_party(call.0, alerting, "alerting", at);
                c.calling.get_or_insert_with(|| calling.clone());
                c.called.get_or_insert_with(|| called.clone());
                if let Some(q) = c.queue.clone() {
                    self.unqueue(&q, call.0);
                }
                self.station_agent_state(alerting, "ringing", at, &mut scope);
                calls.push(call.0);
            }
            CstaEvent::Established { call, answering, calling, called } => {
                let c = self.set_party(call.0, answering, "connected", at);
                c.calling.get_or_insert_with(|| calling.clone());
                c.called.get_or_insert_with(|| called.clone());
                // Whoever else was waiting on this call's answer is now talking.
                for p in c.parties.iter_mut() {
                    if p.1 == "initiated" || (p.1 == "alerting" && p.0.starts_with("trunk:")) {
                        p.1 = "connected";
                    }
                }
                self.station_agent_state(answering, "busy", at, &mut scope);
                calls.push(call.0);
            }
            CstaEvent::Queued { call, queue, calling, called, .. } => {
                let d = DeviceId::Queue(queue.clone());
                let c = self.set_party(call.0, &d, "queued", at);
                c.calling.get_or_insert_with(|| calling.clone());
                c.called.get_or_insert_with(|| called.clone());
                c.queue = Some(queue.clone());
                c.queues.insert(queue.clone());
                let w = self.queues.entry(queue.clone()).or_default();
                if !w.iter().any(|(c, _)| *c == call.0) {
                    w.push((call.0, at));
                }
                scope.queues.insert(queue.clone());
                calls.push(call.0);
            }
            CstaEvent::Diverted { call, from, to, .. } => {
                self.drop_party(call.0, from);
                if let Some(c) = self.calls.get_mut(&call.0) {
                    c.ever.insert(to.to_string());
                }
                calls.push(call.0);
            }
            CstaEvent::Held { call, holding } => {
                self.set_party(call.0, holding, "held", at);
                calls.push(call.0);
            }
            CstaEvent::Retrieved { call, retrieving } => {
                self.set_party(call.0, retrieving, "connected", at);
                calls.push(call.0);
            }
            CstaEvent::ConnectionCleared { call, releasing, .. } => {
                self.drop_party(call.0, releasing);
                calls.push(call.0);
            }
            CstaEvent::CallCleared { call, .. } => {
                calls.push(call.0);
                forget.push(call.0);
            }
            CstaEvent::Transferred { primary, secondary, transferring, transferred_to } => {
                let moved = self.calls.get(&secondary.0).map(|c| c.parties.clone()).unwrap_or_default();
                self.drop_party(primary.0, transferring);
                let t = transferring.to_string();
                if let Some(p) = self.calls.get_mut(&primary.0) {
                    for (d, s) in moved.into_iter().filter(|(d, _)| *d != t) {
                        p.ever.insert(d.clone());
                        if !p.parties.iter().any(|(x, _)| *x == d) {
                            p.parties.push((d, s));
                        }
                    }
                    if let Some(to) = transferred_to {
                        p.ever.insert(to.to_string());
                    }
                }
                calls.push(primary.0);
                calls.push(secondary.0);
                // A single-step transfer names the same call twice: it goes on.
                if secondary != primary {
                    forget.push(secondary.0);
                }
                scope.devices.insert(t);
            }
            CstaEvent::Conferenced { primary, secondary, controller, added } => {
                let moved = self.calls.get(&secondary.0).map(|c| c.parties.clone()).unwrap_or_default();
                if let Some(p) = self.calls.get_mut(&primary.0) {
                    for (d, s) in moved {
                        p.ever.insert(d.clone());
                        if !p.parties.iter().any(|(x, _)| *x == d) {
                            p.parties.push((d, s));
                        }
                    }
                    for p in p.parties.iter_mut() {
                        p.1 = "connected";
                    }
                    if let Some(a) = added {
                        p.ever.insert(a.to_string());
                    }
                }
                scope.devices.insert(controller.to_string());
                calls.push(primary.0);
                calls.push(secondary.0);
                if secondary != primary {
                    forget.push(secondary.0);
                }
            }
            CstaEvent::Failed { call, failing, .. } => {
                self.set_party(call.0, failing, "fail", at);
                calls.push(call.0);
            }
            CstaEvent::HandedOff { call, to, .. } => {
                self.unqueue_all(call.0);
                self.set_party(call.0, to, "connected", at);
                calls.push(call.0);
            }
            CstaEvent::Supervising { call, supervisor, .. } => {
                scope.agents.insert(supervisor.clone());
                calls.push(call.0);
            }
            CstaEvent::Agent { agent, kind } => {
                scope.agents.insert(agent.clone());
                if let Some(a) = self.agents.get_mut(agent) {
                    let new = match kind {
                        AgentEventKind::LoggedOn { station } => {
                            a.station = station.clone();
                            None
                        }
                        AgentEventKind::LoggedOff => {
                            a.station = None;
                            Some(("logged_out", None))
                        }
                        AgentEventKind::Ready => Some(("ready", None)),
                        AgentEventKind::NotReady { reason } => Some(("not_ready", Some(reason.clone()))),
                        AgentEventKind::WorkingAfterCall => Some(("working_after_call", None)),
                        AgentEventKind::Missed { call } => {
                            calls.push(call.0);
                            None
                        }
                    };
                    if let Some((state, reason)) = new {
                        a.state = state;
                        a.reason = reason;
                        a.since_ms = at;
                        scope.state_changed.push(agent.clone());
                    }
                }
            }
        }
        for c in &calls {
            if let Some(v) = self.calls.get(c) {
                scope.devices.extend(v.ever.iter().cloned());
                scope.queues.extend(v.queues.iter().cloned());
            }
        }
        for c in forget {
            self.calls.remove(&c);
            self.unqueue_all(c);
        }
        // Agents sitting at a station the event touched: their monitors see it.
        for d in &scope.devices {
            if let Some(ext) = d.strip_prefix("station:") {
                if let Some(id) = self.agent_at(ext) {
                    scope.agents.insert(id.to_string());
                }
            }
        }
        scope
    }

    /// Does a monitor's target match what an event touched?
    pub fn matches(&self, target: &Target, scope: &Scope) -> bool {
        match target {
            Target::All => true,
            Target::Device(d) => scope.devices.contains(d),
            Target::Queue(q) => scope.queues.contains(q),
            Target::Agent(a) => scope.agents.contains(a),
        }
    }

    pub fn agent_json(&self, id: &str) -> Value {
        let a = &self.agents[id];
        json!({"agent":id,"name":a.name,"station":a.station,"state":a.state,"reason":a.reason,
               "since":rfc3339(a.since_ms)})
    }

    /// The `AgentState` event for an agent.
    pub fn agent_state_event(&self, id: &str, time: &str) -> Value {
        let mut v = self.agent_json(id);
        v["event"] = Value::String("AgentState".into());
        v["time"] = Value::String(time.to_string());
        if let Value::Object(o) = &mut v {
            o.remove("name");
        }
        v
    }

    fn call_json(&self, id: u64) -> Value {
        let c = &self.calls[&id];
        let parties: Vec<Value> = c.parties.iter().map(|(d, s)| json!({"device":d,"state":s})).collect();
        // Numbers not presented are empty strings; `queue` is null for a call that
        // never waited in one.
        json!({"call":id,"calling":c.calling.clone().unwrap_or_default(),
               "called":c.called.clone().unwrap_or_default(),"queue":c.queue,
               "started":rfc3339(c.started_ms),"parties":parties})
    }

    fn queue_json(&self, q: &str) -> Value {
        let waiting: Vec<Value> = self
            .queues
            .get(q)
            .map(|w| w.iter().map(|(c, at)| json!({"call":c,"since":rfc3339(*at)})).collect())
            .unwrap_or_default();
        json!({"queue":q,"waiting":waiting})
    }

    /// What a new monitor covers now, as far as the viewer may see (a scoped
    /// supervisor: the calls, agents and queues of their scope).
    pub fn snapshot(&self, target: &Target, viewer: Viewer<'_>) -> Value {
        let (calls, agents, queues): (Vec<u64>, Vec<String>, Vec<String>) = match target {
            Target::All => (
                self.calls.keys().copied().collect(),
                self.agents.keys().cloned().collect(),
                self.queues.keys().cloned().collect(),
            ),
            Target::Device(d) => {
                let agents = d.strip_prefix("station:").and_then(|e| self.agent_at(e)).map(str::to_string);
                (self.calls_with(d), agents.into_iter().collect(), Vec::new())
            }
            Target::Agent(a) => {
                let calls = match self.agents.get(a).and_then(|v| v.station.as_ref()) {
                    Some(ext) => self.calls_with(&format!("station:{ext}")),
                    None => Vec::new(),
                };
                (calls, self.agents.contains_key(a).then(|| a.clone()).into_iter().collect(), Vec::new())
            }
            Target::Queue(q) => {
                let calls =
                    self.calls.iter().filter(|(_, c)| c.queues.contains(q)).map(|(id, _)| *id).collect();
                let agents = self.members.get(q).map(|m| m.iter().cloned().collect()).unwrap_or_default();
                (calls, agents, vec![q.clone()])
            }
        };
        let scoped = self.scoped(viewer.user);
        let calls: Vec<u64> =
            calls.into_iter().filter(|c| !scoped || self.call_visible(viewer, *c)).collect();
        let agents: Vec<String> = agents
            .into_iter()
            .filter(|a| !scoped || a == viewer.user || self.supervises(viewer.user, a))
            .collect();
        let queues: Vec<String> =
            queues.into_iter().filter(|q| self.supervises_queue(viewer.user, q)).collect();
        json!({
            "calls": calls.iter().map(|c| self.call_json(*c)).collect::<Vec<_>>(),
            "agents": agents.iter().map(|a| self.agent_json(a)).collect::<Vec<_>>(),
            "queues": queues.iter().map(|q| self.queue_json(q)).collect::<Vec<_>>(),
        })
    }

    /// May a scoped viewer see this call in a snapshot: the same test as for its
    /// events (a station of theirs took part, it waited in a queue of theirs).
    fn call_visible(&self, v: Viewer<'_>, call: u64) -> bool {
        let Some(c) = self.calls.get(&call) else { return false };
        c.ever.iter().any(|d| d.starts_with("station:") && self.device_in_scope(v, d))
            || c.queues.iter().any(|q| self.supervises_queue(v.user, q))
    }

    fn calls_with(&self, device: &str) -> Vec<u64> {
        self.calls
            .iter()
            .filter(|(_, c)| c.parties.iter().any(|(d, _)| d == device))
            .map(|(id, _)| *id)
            .collect()
    }
}

impl AgentView {
    fn new(name: &str, supervisor: bool, since_ms: i64) -> AgentView {
        AgentView {
            name: name.to_string(),
            supervisor,
            station: None,
            state: "logged_out",
            reason: None,
            since_ms,
        }
    }
}
