//! The engine thread's whole state: the [`Engine`] and what runs beside it on call
//! state (live statistics for wallboards, the drain used by a graceful shutdown).
//!
//! Like the engine it is sans-IO: [`Center::handle`] takes the time and an input,
//! [`Center::poll_output`] gives what must be sent elsewhere (card commands, events for
//! the CTI link, records for the store), [`Center::next_deadline`] says when to call
//! again. `serve` runs it on a real clock; tests run it in virtual time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use hotline_drivers::{CardEvent, Cause, Command, EventKind, Instant};
use serde::Serialize;

use crate::csta::{CallId, CstaEvent, DeviceId, EventCause, Record};
use crate::engine::{Engine, Input, Output};

/// What the engine thread is handed.
#[derive(Debug)]
pub enum CenterInput {
    /// An engine input: a card event, a client request, a client gone, ...
    Engine(Input),
    /// Stop taking new calls; calls in progress may go on until `limit` has passed,
    /// then they are released (SIGTERM).
    Drain { limit: Duration },
}

/// What the engine thread sends on.
#[derive(Debug)]
pub enum CenterOutput {
    /// A command for the card owning the channel.
    Command(Command),
    /// An engine event or response for the CTI link, stamped with wall-clock time.
    Link { at_unix_ms: i64, output: Output },
    /// A call was delivered to a logged-in agent's station: the agent's screen pop.
    ScreenPop(crate::link::ScreenPop),
    /// A record for the store.
    Record { at_unix_ms: i64, record: Record },
    /// The figures of the wallboard, once a second.
    Stats(WallboardStats),
    /// Draining finished: no call is left (or the limit passed and the rest were
    /// released).
    Drained,
}

/// Today's figures for one queue (since the start of the run or midnight, whichever
/// is later), as the wallboard shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueFigures {
    pub name: String,
    /// Callers waiting now.
    pub waiting: usize,
    /// The longest current wait, seconds.
    pub longest_wait_s: f64,
    pub ready_agents: usize,
    /// Calls that entered the queue.
    pub offered: u64,
    /// Answered by an agent.
    pub answered: u64,
    /// The caller hung up while waiting or ringing.
    pub abandoned: u64,
    /// Sent on by the queue's maximum wait (overflow).
    pub timed_out: u64,
    /// Answered within the service-level threshold.
    pub answered_in_threshold: u64,
    /// `answered_in_threshold / (answered + abandoned after the threshold)`; 1 when
    /// nothing counted yet. See docs/reports.md for the definition.
    pub service_level: f64,
    /// `abandoned / offered`, 0 when nothing was offered.
    pub abandon_rate: f64,
}

/// One agent on the wallboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentFigures {
    pub id: String,
    pub name: String,
    /// "logged out", "ready", "not ready", "ringing", "busy", "working after call".
    pub state: String,
    pub reason: Option<String>,
    /// How long the agent has been in this state, seconds.
    pub state_s: f64,
    pub answered_today: u64,
}

/// A call in progress on the wallboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveCall {
    pub call: u64,
    pub calling: String,
    pub called: String,
    /// "queued", "ringing", "talking", "held", "ivr", "dialling".
    pub state: String,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub since_s: f64,
}

/// Everything the wallboard and the terminal summary show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WallboardStats {
    pub at_unix_ms: i64,
    /// Seconds since the center started.
    pub uptime_s: f64,
    pub queues: Vec<QueueFigures>,
    pub agents: Vec<AgentFigures>,
    pub calls: Vec<LiveCall>,
    pub calls_today: u64,
    pub draining: bool,
}

/// The service-level threshold: answered within this many seconds counts.
pub const SERVICE_LEVEL_THRESHOLD: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
struct CallView {
    calling: String,
    called: String,
    state: &'static str,
    queue: Option<usize>,
    queued_at: Option<Instant>,
    agent_station: Option<String>,
    since: Instant,
    started: Instant,
}

/// The engine and its companions on the engine thread.
#[derive(Debug)]
pub struct Center {
    engine: Engine,
    /// Unix milliseconds at `Instant::ZERO`.
    wall_base_ms: i64,
    now: Instant,
    out: VecDeque<CenterOutput>,
    queues: Vec<QueueFigures>,
    queue_ix: HashMap<String, usize>,
    calls: BTreeMap<CallId, CallView>,
    answered: HashMap<String, u64>,
    calls_today: u64,
    station_agent: HashMap<String, String>,
    next_stats: Instant,
    drain_until: Option<Instant>,
    drained: bool,
}

impl Center {
    /// `wall_base_ms`: Unix milliseconds at engine time zero (schedules, records and
    /// event times are wall-clock; the engine itself counts from zero).
    pub fn new(mut engine: Engine, wall_base_ms: i64) -> Center {
        engine.set_wall_clock(Instant::ZERO, wall_base_ms.div_euclid(1000));
        let queues: Vec<QueueFigures> = engine
            .config()
            .queues
            .iter()
            .map(|q| QueueFigures { name: q.name.clone(), service_level: 1.0, ..Default::default() })
            .collect();
        let queue_ix = queues.iter().enumerate().map(|(i, q)| (q.name.clone(), i)).collect();
        Center {
            engine,
            wall_base_ms,
            now: Instant::ZERO,
            out: VecDeque::new(),
            queues,
            queue_ix,
            calls: BTreeMap::new(),
            answered: HashMap::new(),
            calls_today: 0,
            station_agent: HashMap::new(),
            next_stats: Instant::ZERO,
            drain_until: None,
            drained: false,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, to inspect or keep after the run.
    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// Apply a new configuration to the engine (see [`Engine::reload`]).
    pub fn reload(&mut self, cfg: crate::config::Config) -> Result<Vec<String>, String> {
        self.engine.reload(cfg)
    }

    /// The time of the last input.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Unix milliseconds at an engine instant.
    pub fn unix_ms(&self, at: Instant) -> i64 {
        self.wall_base_ms + (at.as_micros() / 1000) as i64
    }

    pub fn draining(&self) -> bool {
        self.drain_until.is_some()
    }

    pub fn handle(&mut self, now: Instant, input: CenterInput) {
        self.now = self.now.max(now);
        match input {
            CenterInput::Drain { limit } => {
                if self.drain_until.is_none() {
                    self.drain_until = Some(self.now + limit);
                }
                self.engine.handle(self.now, Input::Timeout);
            }
            CenterInput::Engine(Input::Card(CardEvent { kind: EventKind::Offered { ch, .. }, .. }))
                if self.drain_until.is_some() =>
            {
                // Draining: no new calls. 42 "switching equipment congestion" tells the
                // network to try another route.
                self.out.push_back(CenterOutput::Command(Command::Reject {
                    ch,
                    cause: Cause::SWITCHING_EQUIPMENT_CONGESTION,
                }));
            }
            CenterInput::Engine(input) => self.engine.handle(self.now, input),
        }
        self.collect();
        self.timers();
    }

    /// The next time [`Center::handle`] wants an `Input::Timeout`.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.next_stats;
        if let Some(d) = self.engine.next_deadline() {
            next = next.min(d);
        }
        if let Some(d) = self.drain_until.filter(|_| !self.drained) {
            next = next.min(d);
        }
        Some(next)
    }

    pub fn poll_output(&mut self) -> Option<CenterOutput> {
        self.out.pop_front()
    }

    fn timers(&mut self) {
        if self.now >= self.next_stats {
            let stats = self.stats();
            self.out.push_back(CenterOutput::Stats(stats));
            self.next_stats = self.now + Duration::from_secs(1);
        }
        if let Some(limit) = self.drain_until {
            if !self.drained && (self.engine.call_count() == 0 || self.now >= limit) {
                if self.engine.call_count() > 0 {
                    let calls: Vec<CallId> = self.calls.keys().copied().collect();
                    for call in calls {
                        self.engine.handle(
                            self.now,
                            Input::Request {
                                client: INTERNAL_CLIENT,
                                invoke: 0,
                                service: crate::csta::Service::ClearCall { call },
                            },
                        );
                    }
                    self.collect();
                }
                self.drained = true;
                self.out.push_back(CenterOutput::Drained);
            }
        }
    }

    fn collect(&mut self) {
        while let Some(o) = self.engine.poll_output() {
            let at = self.unix_ms(self.now);
            match o {
                Output::Command(c) => self.out.push_back(CenterOutput::Command(c)),
                Output::Event(ref e) => {
                    self.observe(e);
                    self.out.push_back(CenterOutput::Link { at_unix_ms: at, output: o });
                }
                Output::Response { client, .. } if client >= INTERNAL_CLIENT_MIN => {}
                Output::Response { .. } => {
                    self.out.push_back(CenterOutput::Link { at_unix_ms: at, output: o })
                }
                Output::Record(record) => self.out.push_back(CenterOutput::Record { at_unix_ms: at, record }),
                // Queue announcements need the IVR's prompts; without an IVR they are
                // not played.
                Output::Announce(_) => {}
            }
        }
    }

    /// Keep the wallboard's view of calls and queues from the engine's events.
    fn observe(&mut self, e: &CstaEvent) {
        let now = self.now;
        match e {
            CstaEvent::ServiceInitiated { call, .. } => {
                self.view(*call, "dialling");
            }
            CstaEvent::Originated { call, called, .. } => {
                self.view(*call, "dialling").called = called.clone();
            }
            CstaEvent::Delivered { call, alerting, calling, called, .. } => {
                let v = self.view(*call, "ringing");
                if v.calling.is_empty() {
                    v.calling = calling.clone();
                }
                if v.called.is_empty() {
                    v.called = called.clone();
                }
                if let DeviceId::Station(ext) = alerting {
                    v.agent_station = Some(ext.clone());
                    v.state = "ringing";
                    v.since = now;
                    self.screen_pop(*call, ext.clone());
                }
            }
            CstaEvent::Queued { call, queue, cause, .. } => {
                let Some(&q) = self.queue_ix.get(queue) else { return };
                let v = self.view(*call, "queued");
                let first_time_here = v.queue != Some(q);
                v.state = "queued";
                v.since = now;
                v.agent_station = None;
                if first_time_here {
                    v.queue = Some(q);
                    v.queued_at = Some(now);
                    // A missed call re-queued at the head is the same offer, not a new one.
                    if *cause != EventCause::Redirected {
                        self.queues[q].offered += 1;
                    }
                }
            }
            CstaEvent::Diverted { call, from: DeviceId::Queue(qn), cause: EventCause::Overflow, .. } => {
                if let Some(&q) = self.queue_ix.get(qn) {
                    self.queues[q].timed_out += 1;
                }
                if let Some(v) = self.calls.get_mut(call) {
                    v.queue = None;
                    v.queued_at = None;
                }
            }
            CstaEvent::Established { call, answering, .. } => {
                if let Some(v) = self.calls.get_mut(call) {
                    v.state = "talking";
                    v.since = now;
                    if let DeviceId::Station(ext) = answering {
                        v.agent_station = Some(ext.clone());
                        if let (Some(q), Some(at)) = (v.queue.take(), v.queued_at.take()) {
                            let f = &mut self.queues[q];
                            f.answered += 1;
                            if now.saturating_duration_since(at) <= SERVICE_LEVEL_THRESHOLD {
                                f.answered_in_threshold += 1;
                            }
                            if let Some(agent) = self.station_agent.get(ext) {
                                *self.answered.entry(agent.clone()).or_default() += 1;
                            }
                        }
                    }
                }
            }
            CstaEvent::Held { call, .. } => {
                if let Some(v) = self.calls.get_mut(call) {
                    v.state = "held";
                }
            }
            CstaEvent::Retrieved { call, .. } => {
                if let Some(v) = self.calls.get_mut(call) {
                    v.state = "talking";
                }
            }
            CstaEvent::HandedOff { call, .. } => {
                if let Some(v) = self.calls.get_mut(call) {
                    v.state = "ivr";
                    v.since = now;
                }
            }
            CstaEvent::CallCleared { call, .. } => {
                if let Some(v) = self.calls.remove(call) {
                    if let (Some(q), Some(_)) = (v.queue, v.queued_at) {
                        self.queues[q].abandoned += 1;
                    }
                }
            }
            CstaEvent::Agent { agent, kind: crate::csta::AgentEventKind::LoggedOn { station: Some(st) } } => {
                self.station_agent.retain(|_, a| a != agent);
                self.station_agent.insert(st.clone(), agent.clone());
            }
            CstaEvent::Agent { agent, kind: crate::csta::AgentEventKind::LoggedOff } => {
                self.station_agent.retain(|_, a| a != agent);
            }
            _ => {}
        }
    }

    /// The pop for the agent at `station`, from what the engine knows of the call.
    fn screen_pop(&mut self, call: CallId, station: String) {
        let Some(agent) = self.station_agent.get(&station).cloned() else { return };
        let Some(info) = self.engine.call_info(call) else { return };
        let (ivr_data, attached) = split_ivr_data(info.data);
        let pop = crate::link::ScreenPop {
            call,
            agent,
            station: Some(station),
            calling: info.ani,
            access_number: info.dnis,
            location: info.location,
            vip: info.vip,
            ivr_data,
            attached,
            at_unix_ms: self.unix_ms(self.now),
        };
        self.out.push_back(CenterOutput::ScreenPop(pop));
    }

    /// The view of a call, made on its first event.
    fn view(&mut self, call: CallId, state: &'static str) -> &mut CallView {
        let now = self.now;
        let today = &mut self.calls_today;
        self.calls.entry(call).or_insert_with(|| {
            *today += 1;
            CallView::new(now, String::new(), String::new(), state)
        })
    }

    /// The wallboard's figures now.
    pub fn stats(&self) -> WallboardStats {
        let now = self.now;
        let cfg = self.engine.config();
        let mut queues = self.queues.clone();
        for (i, f) in queues.iter_mut().enumerate() {
            let waiting: Vec<&CallView> =
                self.calls.values().filter(|v| v.queue == Some(i) && v.queued_at.is_some()).collect();
            f.waiting = waiting.len();
            f.longest_wait_s = waiting
                .iter()
                .filter_map(|v| v.queued_at)
                .map(|at| now.saturating_duration_since(at).as_secs_f64())
                .fold(0.0, f64::max);
            f.ready_agents = self.engine.ready_agents(&f.name).unwrap_or(0);
            let counted = f.answered + f.abandoned;
            f.service_level =
                if counted == 0 { 1.0 } else { f.answered_in_threshold as f64 / counted as f64 };
            f.abandon_rate = if f.offered == 0 { 0.0 } else { f.abandoned as f64 / f.offered as f64 };
        }
        let agents = cfg
            .agents
            .iter()
            .map(|a| {
                let (state, since) = self
                    .engine
                    .agent_state(&a.id)
                    .unwrap_or((crate::csta::AgentState::LoggedOut, Instant::ZERO));
                let reason = match &state {
                    crate::csta::AgentState::NotReady(r) => Some(r.clone()),
                    _ => None,
                };
                AgentFigures {
                    id: a.id.clone(),
                    name: a.name.clone(),
                    state: state.name().to_string(),
                    reason,
                    state_s: now.saturating_duration_since(since).as_secs_f64(),
                    answered_today: self.answered.get(&a.id).copied().unwrap_or(0),
                }
            })
            .collect();
        let calls = self
            .calls
            .iter()
            .map(|(id, v)| LiveCall {
                call: id.0,
                calling: v.calling.clone(),
                called: v.called.clone(),
                state: v.state.to_string(),
                queue: v.queue.map(|q| self.queues[q].name.clone()),
                agent: v.agent_station.as_ref().and_then(|s| self.station_agent.get(s).cloned()),
                since_s: now.saturating_duration_since(v.since).as_secs_f64(),
            })
            .collect();
        WallboardStats {
            at_unix_ms: self.unix_ms(now),
            uptime_s: now.as_micros() as f64 / 1e6,
            queues,
            agents,
            calls,
            calls_today: self.calls_today,
            draining: self.drain_until.is_some(),
        }
    }

    /// Calls in progress, for the drain and the summary.
    pub fn calls_in_progress(&self) -> usize {
        self.engine.call_count()
    }

    #[doc(hidden)]
    pub fn call_started(&self, call: CallId) -> Option<Instant> {
        self.calls.get(&call).map(|v| v.started)
    }
}

impl CallView {
    fn new(now: Instant, calling: String, called: String, state: &'static str) -> CallView {
        CallView {
            calling,
            called,
            state,
            queue: None,
            queued_at: None,
            agent_station: None,
            since: now,
            started: now,
        }
    }
}

/// Call data the IVR collected is kept under `ivr.` keys; the rest was attached by
/// desktops and CRMs.
fn split_ivr_data(data: BTreeMap<String, String>) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut ivr = BTreeMap::new();
    let mut attached = BTreeMap::new();
    for (k, v) in data {
        match k.strip_prefix("ivr.") {
            Some(name) => {
                ivr.insert(name.to_string(), v);
            }
            None => {
                attached.insert(k, v);
            }
        }
    }
    (ivr, attached)
}

/// Client ids at or above this are the engine thread's own (simulated agents, the
/// drain); their responses are not sent to the link.
pub const INTERNAL_CLIENT_MIN: u32 = u32::MAX - 1_000_000;
/// The center's own client id.
pub const INTERNAL_CLIENT: u32 = u32::MAX;
