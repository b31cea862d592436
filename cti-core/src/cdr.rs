//! Call detail records: one record per call with every leg and timestamp, built
//! sans-IO from what the engine reports.
//!
//! [`CdrBuilder`] runs on the engine thread next to the engine. Feed it every engine
//! output ([`CdrBuilder::handle_output`]: CSTA events *and* records; a call is closed
//! by the engine's `Record::Call`), the card events the engine is given
//! ([`CdrBuilder::handle_card`]: an `Offered` tells it the caller and called number
//! of the call the engine creates next), and notes from the IVR and the recorder
//! ([`CdrBuilder::ivr_node`], [`CdrBuilder::voicemail`], [`CdrBuilder::recording`]).
//! Drain [`CdrBuilder::poll`] and send each [`StoreOp`] to the store writer.
//!
//! A call is written open when it is first seen, each step of its life is written as
//! it happens (the timeline in `call_events`), and the closing record carries the
//! summary and the legs. A crash therefore loses nothing that completed, and a call
//! it cut is found open and marked so by [`crate::store::Store::recover`].
//!
//! Legs: every device the call visited is a leg — the IVR flows (`ivr:FLOW`), the
//! queues (`queue:NAME`, entered to left), each agent's station rung (answered or
//! not), outside numbers dialled, and parties that joined by transfer or conference.

use std::collections::{BTreeMap, HashMap, VecDeque};

use hotline_drivers::{CardEvent, EventKind, Instant};

use crate::csta::{AgentEventKind, AgentState, CallId, CstaEvent, DeviceId, EventCause, Record};
use crate::engine::Output;
use crate::store::StoreOp;

/// A call as the store keys it: engine call numbers start again at 1 on every run, so
/// the run (Unix ms at the engine's time zero) is part of the key.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey {
    pub run: i64,
    pub call: u64,
}

/// Which way a call goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Offered on a trunk.
    Inbound,
    /// From a station to an outside number.
    Outbound,
    /// Station to station (or to a queue number).
    Internal,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        }
    }
}

/// How a call ended, for reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Someone answered (an agent, a station, the far end of an outbound call).
    Answered,
    /// Unanswered: see [`Missed`] for which kind.
    Missed,
    /// The caller left a voicemail.
    Voicemail,
    /// The caller asked to be called back.
    Callback,
    /// The IVR ended the call on purpose (an information line, a hang-up node).
    EndedInIvr,
    /// Refused or failed (blacklist, unallocated number, no circuit, busy).
    Failed,
    /// Merged into another call by a transfer or conference.
    Merged,
    /// A queue limit sent it to an outside number (overflow `external:`): nobody of
    /// the center answered it, whoever picked up outside.
    Diverted,
    /// Cut by a crash (set by recovery, never by the builder).
    Cut,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Missed => "missed",
            Outcome::Voicemail => "voicemail",
            Outcome::Callback => "callback",
            Outcome::EndedInIvr => "ended_in_ivr",
            Outcome::Failed => "failed",
            Outcome::Merged => "merged",
            Outcome::Diverted => "diverted",
            Outcome::Cut => "cut",
        }
    }
}

/// The four kinds of missed call (definitions in docs/reports.md).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Missed {
    /// The caller hung up in the IVR before reaching a queue.
    InIvr,
    /// Queued, and no agent took it: a queue limit sent it away and it ended unanswered,
    /// or the caller hung up while no agent of the queue was logged in.
    NoAgent,
    /// An agent's phone rang (at least once) and nobody answered before the caller
    /// hung up.
    NotAnswered,
    /// The caller hung up while waiting in the queue, with agents logged in, before any
    /// phone rang.
    Abandoned,
    /// Out of hours: the IVR took a time node's default (closed) branch and the call
    /// ended there without a message left.
    AfterHours,
    /// The server ended it unanswered while shutting down (the drain's limit passed).
    Shutdown,
}

impl Missed {
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::InIvr => "in_ivr",
            Missed::NoAgent => "no_agent",
            Missed::NotAnswered => "not_answered",
            Missed::Abandoned => "abandoned",
            Missed::AfterHours => "after_hours",
            Missed::Shutdown => "shutdown",
        }
    }
    pub fn parse(s: &str) -> Option<Missed> {
        Some(match s {
            "in_ivr" => Missed::InIvr,
            "no_agent" => Missed::NoAgent,
            "not_answered" => Missed::NotAnswered,
            "abandoned" => Missed::Abandoned,
            "after_hours" => Missed::AfterHours,
            "shutdown" => Missed::Shutdown,
            _ => return None,
        })
    }
}

/// Who ended a call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Side {
    /// The party that started it (the outside caller of an inbound call).
    Caller,
    /// An agent's (or station's) side.
    Agent,
    /// Another party (an outside number the call was sent to).
    Other,
    /// Hotline itself: a queue limit, the IVR, a supervisor's ClearCall.
    System,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Caller => "caller",
            Side::Agent => "agent",
            Side::Other => "other",
            Side::System => "system",
        }
    }
}

/// The default branch of every IVR time node, (flow, time node, default node), for
/// [`CdrBuilder::set_closed_branches`].
pub fn closed_branches(flows: &hotline_ivr::flow::Flows) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, flow) in &flows.flows {
        for (id, node) in &flow.nodes {
            if let hotline_ivr::flow::NodeKind::Time { default, .. } = &node.kind {
                out.push((name.clone(), id.clone(), default.node.clone()));
            }
        }
    }
    out
}

/// A call as first seen: written open so a crash leaves a trace of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOpened {
    pub key: CallKey,
    pub direction: Direction,
    pub caller: Option<String>,
    pub called: Option<String>,
    pub arrived_ms: i64,
}

/// What happened to a call, one step of its timeline.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    Arrived,
    IvrEntered,
    IvrNode,
    IvrLeft,
    Queued,
    /// Back at the head of the queue after an agent missed it.
    Requeued,
    /// Left the queue because of a queue limit (max wait, no agents, max length).
    QueueTimedOut,
    Rung,
    Answered,
    /// An agent let it ring out or refused it.
    NotAnswered,
    Diverted,
    Held,
    Retrieved,
    Transferred,
    Conferenced,
    Supervised,
    Dialled,
    Failed,
    PartyLeft,
    Callback,
    Recording,
    Voicemail,
    Released,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Arrived => "arrived",
            StepKind::IvrEntered => "ivr_entered",
            StepKind::IvrNode => "ivr_node",
            StepKind::IvrLeft => "ivr_left",
            StepKind::Queued => "queued",
            StepKind::Requeued => "requeued",
            StepKind::QueueTimedOut => "queue_timed_out",
            StepKind::Rung => "rung",
            StepKind::Answered => "answered",
            StepKind::NotAnswered => "not_answered",
            StepKind::Diverted => "diverted",
            StepKind::Held => "held",
            StepKind::Retrieved => "retrieved",
            StepKind::Transferred => "transferred",
            StepKind::Conferenced => "conferenced",
            StepKind::Supervised => "supervised",
            StepKind::Dialled => "dialled",
            StepKind::Failed => "failed",
            StepKind::PartyLeft => "party_left",
            StepKind::Callback => "callback",
            StepKind::Recording => "recording",
            StepKind::Voicemail => "voicemail",
            StepKind::Released => "released",
        }
    }
}

/// One step of a call's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub key: CallKey,
    pub at_ms: i64,
    pub kind: StepKind,
    pub device: Option<String>,
    pub agent: Option<String>,
    pub detail: Option<String>,
}

/// A device's part in a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    /// `queue:sales`, `station:2001`, `ivr:main`, `external:0105551234`, `trunk:1/1/5`.
    pub device: String,
    /// The agent logged in at a station leg.
    pub agent: Option<String>,
    /// When the leg began: rung (stations, outside numbers), entered (queues, IVR).
    pub rung_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// `answered`, `not_answered`, `caller_gone`, `transferred`, `timed_out`,
    /// `abandoned`, `left` (queue or IVR left onward), `joined`, `failed`, `deflected`.
    pub outcome: String,
}

/// The closing record of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cdr {
    pub key: CallKey,
    pub direction: Direction,
    pub caller: Option<String>,
    pub called: Option<String>,
    pub location: Option<String>,
    pub vip: bool,
    /// The last queue it was in.
    pub queue: Option<String>,
    /// The agent who answered it (from a queue, or at their station).
    pub agent: Option<String>,
    pub arrived_ms: i64,
    pub ivr_entered_ms: Option<i64>,
    pub ivr_left_ms: Option<i64>,
    pub queued_ms: Option<i64>,
    /// The first time an agent's phone rang with it.
    pub rung_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub ended_ms: i64,
    /// The device whose leaving ended the call; `None` when Hotline ended it.
    pub released_by: Option<String>,
    pub released_side: Side,
    /// Q.850 cause.
    pub cause: u8,
    pub outcome: Outcome,
    pub missed: Option<Missed>,
    /// A queue limit moved it on at least once.
    pub timed_out: bool,
    pub holds: u32,
    pub hold_ms: i64,
    pub transfers: u32,
    pub conferences: u32,
    pub recordings: Vec<u64>,
    pub data: BTreeMap<String, String>,
    pub legs: Vec<Leg>,
}

/// An agent state interval (closed) or the state an agent is in now (open).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentInterval {
    pub agent: String,
    /// `logged out`, `ready`, `not ready`, `ringing`, `busy`, `working after call`.
    pub state: String,
    pub reason: Option<String>,
    pub from_ms: i64,
    pub to_ms: Option<i64>,
}

/// A voicemail the IVR took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoicemailNote {
    pub mailbox: String,
    pub path: String,
    pub duration_ms: i64,
    pub caller: Option<String>,
    /// The access number the caller dialled.
    pub access: Option<String>,
}

#[derive(Debug)]
struct Open {
    cdr: Cdr,
    /// Index in `cdr.legs` of each device's current leg.
    current: HashMap<String, usize>,
    in_ivr: Option<usize>,
    in_queue: Option<usize>,
    /// Stations rung now, by device.
    ringing: Vec<String>,
    hold_since: HashMap<String, i64>,
    /// A call handed off last to a voicemail box (only known when the IVR notes one).
    voicemail: bool,
    failed: bool,
    /// Agents who had a queue's call ringing and let it go.
    missed_once: bool,
    /// A queue limit diverted it to an outside number.
    diverted_out: bool,
    /// The last IVR node entered (flow, node).
    last_node: Option<(String, String)>,
    /// The IVR took a time node's default branch: out of hours.
    after_hours: bool,
    /// Ended by the server's shutdown (the drain's limit).
    shutdown: bool,
}

/// Builds [`StoreOp`]s for calls, agent states, IVR visits and voicemail. Sans-IO: it
/// reads no clock; `wall_base` turns engine instants into Unix milliseconds.
#[derive(Debug)]
pub struct CdrBuilder {
    wall_base: i64,
    calls: HashMap<CallId, Open>,
    out: VecDeque<StoreOp>,
    /// The caller and called number of the last `Offered`, for the call it creates.
    offered: Option<(Option<String>, String)>,
    agent_at: HashMap<String, String>,
    /// Agents whose new state started at this time and is not yet known.
    pending_state: HashMap<String, i64>,
    /// What a station's call event said an agent's state becomes, and when.
    hints: HashMap<String, (String, i64)>,
    logged_in: HashMap<String, bool>,
    /// Which agents serve which queue (from the configuration), to tell a queue with
    /// nobody logged in from one whose agents were busy.
    members: HashMap<String, Vec<String>>,
    /// Closed calls that were taking a voicemail, with their queue: the message's row
    /// comes when the recording ends, often after the call closed. Oldest first,
    /// bounded.
    voicemail_queue: VecDeque<(CallId, Option<String>)>,
    /// The default (out of hours) branch of each IVR time node: (flow, time node) →
    /// the node it leads to.
    closed_branches: HashMap<(String, String), String>,
}

/// How many closed calls' queues are kept for voicemail rows still to come.
const VOICEMAIL_PENDING: usize = 4096;

impl CdrBuilder {
    /// `wall_base`: Unix milliseconds at engine `Instant::ZERO`; it is also the run's
    /// key in the store.
    pub fn new(wall_base: i64) -> CdrBuilder {
        CdrBuilder {
            wall_base,
            calls: HashMap::new(),
            out: VecDeque::new(),
            offered: None,
            agent_at: HashMap::new(),
            pending_state: HashMap::new(),
            hints: HashMap::new(),
            logged_in: HashMap::new(),
            members: HashMap::new(),
            voicemail_queue: VecDeque::new(),
            closed_branches: HashMap::new(),
        }
    }

    /// The IVR's time nodes and their default branches, (flow, time node, default
    /// node): a call that goes from such a node to its default is out of hours.
    pub fn set_closed_branches(&mut self, branches: impl IntoIterator<Item = (String, String, String)>) {
        self.closed_branches = branches.into_iter().map(|(f, t, d)| ((f, t), d)).collect();
    }

    /// The server is ending this call while shutting down (the drain's limit passed):
    /// unanswered, it is a missed call of kind `shutdown`.
    pub fn shutdown(&mut self, call: u64) {
        if let Some(o) = self.calls.get_mut(&CallId(call)) {
            o.shutdown = true;
        }
    }

    /// Learn queue membership from the configuration (for the "no agent" kind of
    /// missed call). Without it, a queue counts as staffed when any agent is logged in.
    pub fn with_config(mut self, cfg: &crate::Config) -> CdrBuilder {
        for a in &cfg.agents {
            for (q, _) in &a.queues {
                self.members.entry(cfg.queues[*q].name.clone()).or_default().push(a.id.clone());
            }
        }
        self
    }

    /// Unix milliseconds of an engine instant.
    pub fn unix_ms(&self, t: Instant) -> i64 {
        self.wall_base + t.as_millis() as i64
    }

    /// The next operation for the store writer.
    pub fn poll(&mut self) -> Option<StoreOp> {
        self.out.pop_front()
    }

    /// Calls not yet closed.
    pub fn open_calls(&self) -> usize {
        self.calls.len()
    }

    /// A card event the engine is about to handle (or has just handled).
    pub fn handle_card(&mut self, _now: Instant, ev: &CardEvent) {
        self.offered = match &ev.kind {
            EventKind::Offered { ani, dnis, .. } => Some((ani.clone(), dnis.clone())),
            _ => None,
        };
    }

    /// An engine output: events and records are used, commands and responses ignored.
    pub fn handle_output(&mut self, now: Instant, out: &Output) {
        match out {
            Output::Event(ev) => self.handle_event(now, ev),
            Output::Record(r) => self.handle_record(now, r),
            _ => {}
        }
    }

    fn step(
        &mut self,
        call: CallId,
        at: i64,
        kind: StepKind,
        device: Option<String>,
        detail: Option<String>,
    ) {
        let agent = device.as_ref().and_then(|d| self.agent_of(d));
        let key = self.key(call);
        self.out.push_back(StoreOp::Step(Step { key, at_ms: at, kind, device, agent, detail }));
    }

    fn key(&self, call: CallId) -> CallKey {
        CallKey { run: self.wall_base, call: call.0 }
    }

    fn agent_of(&self, device: &str) -> Option<String> {
        device.strip_prefix("station:").and_then(|ext| self.agent_at.get(ext)).cloned()
    }

    /// The call's state, opening it (and writing it open) when first seen.
    fn open(&mut self, now: Instant, call: CallId, direction: Direction) -> &mut Open {
        if !self.calls.contains_key(&call) {
            let at = self.unix_ms(now);
            let (direction, caller, called) = match self.offered.take() {
                Some((ani, dnis)) => (Direction::Inbound, ani, Some(dnis)),
                None => (direction, None, None),
            };
            let key = self.key(call);
            self.out.push_back(StoreOp::CallOpened(CallOpened {
                key,
                direction,
                caller: caller.clone(),
                called: called.clone(),
                arrived_ms: at,
            }));
            self.out.push_back(StoreOp::Step(Step {
                key,
                at_ms: at,
                kind: StepKind::Arrived,
                device: None,
                agent: None,
                detail: None,
            }));
            let cdr = Cdr {
                key,
                direction,
                caller,
                called,
                location: None,
                vip: false,
                queue: None,
                agent: None,
                arrived_ms: at,
                ivr_entered_ms: None,
                ivr_left_ms: None,
                queued_ms: None,
                rung_ms: None,
                answered_ms: None,
                ended_ms: at,
                released_by: None,
                released_side: Side::System,
                cause: 16,
                outcome: Outcome::Missed,
                missed: None,
                timed_out: false,
                holds: 0,
                hold_ms: 0,
                transfers: 0,
                conferences: 0,
                recordings: Vec::new(),
                data: BTreeMap::new(),
                legs: Vec::new(),
            };
            self.calls.insert(
                call,
                Open {
                    cdr,
                    current: HashMap::new(),
                    in_ivr: None,
                    in_queue: None,
                    ringing: Vec::new(),
                    hold_since: HashMap::new(),
                    voicemail: false,
                    failed: false,
                    missed_once: false,
                    diverted_out: false,
                    last_node: None,
                    after_hours: false,
                    shutdown: false,
                },
            );
        }
        self.calls.get_mut(&call).expect("inserted")
    }

    /// A CSTA event. Calls close only on the engine's `Record::Call`
    /// ([`CdrBuilder::handle_output`] passes both).
    pub fn handle_event(&mut self, now: Instant, ev: &CstaEvent) {
        let at = self.unix_ms(now);
        match ev {
            CstaEvent::ServiceInitiated { call, device } => {
                self.open(now, *call, Direction::Internal);
                let d = device.to_string();
                if let DeviceId::Station(ext) = device {
                    if let Some(agent) = self.agent_at.get(ext).cloned() {
                        self.hint(&agent, "busy", at);
                    }
                }
                let o = self.calls.get_mut(call).expect("open");
                if o.cdr.caller.is_none() {
                    if let DeviceId::Station(ext) = device {
                        o.cdr.caller = Some(ext.clone());
                    }
                }
                add_leg(o, &d, None, Some(at), Some(at));
            }
            CstaEvent::Originated { call, called, .. } => {
                self.open(now, *call, Direction::Internal);
                let o = self.calls.get_mut(call).expect("open");
                if o.cdr.direction != Direction::Inbound && o.cdr.called.is_none() {
                    o.cdr.called = Some(called.clone());
                }
                self.step(*call, at, StepKind::Dialled, None, Some(called.clone()));
            }
            CstaEvent::Delivered { call, alerting, calling, called, cause } => {
                self.open(now, *call, Direction::Internal);
                let d = alerting.to_string();
                let agent = self.agent_of(&d);
                if let (Some(a), EventCause::Distributed) = (&agent, cause) {
                    let a = a.clone();
                    self.hint(&a, "ringing", at);
                }
                let o = self.calls.get_mut(call).expect("open");
                if o.cdr.caller.is_none() && !calling.is_empty() {
                    o.cdr.caller = Some(calling.clone());
                }
                if o.cdr.called.is_none() && !called.is_empty() {
                    o.cdr.called = Some(called.clone());
                }
                match alerting {
                    DeviceId::Trunk(_) => {
                        if o.cdr.direction == Direction::Internal {
                            o.cdr.direction = Direction::Outbound;
                        }
                        add_leg(o, &d, None, Some(at), None);
                    }
                    DeviceId::Station(_) => {
                        if agent.is_some() && o.cdr.rung_ms.is_none() {
                            o.cdr.rung_ms = Some(at);
                        }
                        add_leg(o, &d, agent.clone(), Some(at), None);
                        o.ringing.push(d.clone());
                    }
                    _ => {}
                }
                self.step(*call, at, StepKind::Rung, Some(d), Some(cause.name().into()));
            }
            CstaEvent::Established { call, answering, .. } => {
                self.open(now, *call, Direction::Internal);
                let d = answering.to_string();
                let agent = self.agent_of(&d);
                if let Some(a) = &agent {
                    let a = a.clone();
                    self.hint(&a, "busy", at);
                }
                let o = self.calls.get_mut(call).expect("open");
                o.ringing.retain(|r| r != &d);
                if let DeviceId::Trunk(_) = answering {
                    if o.cdr.direction == Direction::Internal {
                        o.cdr.direction = Direction::Outbound;
                    }
                }
                let i = match o.current.get(&d) {
                    Some(&i) => i,
                    None => add_leg(o, &d, agent.clone(), Some(at), None),
                };
                let leg = &mut o.cdr.legs[i];
                if leg.answered_ms.is_none() {
                    leg.answered_ms = Some(at);
                    leg.outcome = "answered".into();
                }
                // The outside number a queue limit diverted the call to is not an
                // answer of the center's.
                let outside = o.diverted_out && matches!(answering, DeviceId::Trunk(_));
                if o.cdr.answered_ms.is_none() && !outside {
                    o.cdr.answered_ms = Some(at);
                }
                if let (Some(a), None) = (&agent, &o.cdr.agent) {
                    o.cdr.agent = Some(a.clone());
                }
                if let Some(q) = o.in_queue.take() {
                    let leg = &mut o.cdr.legs[q];
                    leg.answered_ms = Some(at);
                    leg.ended_ms = Some(at);
                    leg.outcome = "answered".into();
                }
                self.step(*call, at, StepKind::Answered, Some(d), None);
            }
            CstaEvent::Queued { call, queue, cause, .. } => {
                self.open(now, *call, Direction::Internal);
                let d = format!("queue:{queue}");
                let o = self.calls.get_mut(call).expect("open");
                leave_ivr(o, at, "left");
                o.cdr.queue = Some(queue.clone());
                let kind = if *cause == EventCause::Redirected && o.in_queue.is_some() {
                    StepKind::Requeued
                } else {
                    if let Some(q) = o.in_queue.take() {
                        end_leg(o, q, at, "left");
                    }
                    if o.cdr.queued_ms.is_none() {
                        o.cdr.queued_ms = Some(at);
                    }
                    let i = add_leg(o, &d, None, Some(at), None);
                    o.in_queue = Some(i);
                    StepKind::Queued
                };
                self.step(*call, at, kind, Some(d), Some(cause.name().into()));
            }
            CstaEvent::Diverted { call, from, to, cause } => {
                self.open(now, *call, Direction::Internal);
                let (f, t) = (from.to_string(), to.to_string());
                let o = self.calls.get_mut(call).expect("open");
                let kind = match (from, cause) {
                    (DeviceId::Queue(_), EventCause::Overflow) => {
                        o.cdr.timed_out = true;
                        if let DeviceId::Trunk(_) = to {
                            o.diverted_out = true;
                        }
                        if let Some(q) = o.in_queue.take() {
                            end_leg(o, q, at, "timed_out");
                        }
                        StepKind::QueueTimedOut
                    }
                    (DeviceId::Station(_), EventCause::NoAnswer) => {
                        o.ringing.retain(|r| r != &f);
                        o.missed_once = true;
                        if let Some(&i) = o.current.get(&f) {
                            end_leg(o, i, at, "not_answered");
                        }
                        StepKind::NotAnswered
                    }
                    _ => {
                        o.ringing.retain(|r| r != &f);
                        if let Some(&i) = o.current.get(&f) {
                            end_leg(o, i, at, "deflected");
                        }
                        StepKind::Diverted
                    }
                };
                self.step(*call, at, kind, Some(f), Some(t));
            }
            CstaEvent::HandedOff { call, to, .. } => {
                self.open(now, *call, Direction::Internal);
                let d = to.to_string();
                let o = self.calls.get_mut(call).expect("open");
                if let Some(q) = o.in_queue.take() {
                    // A queue limit sent it to an IVR flow or voicemail.
                    o.cdr.timed_out = true;
                    end_leg(o, q, at, "timed_out");
                }
                leave_ivr(o, at, "left");
                if o.cdr.ivr_entered_ms.is_none() {
                    o.cdr.ivr_entered_ms = Some(at);
                }
                let i = add_leg(o, &d, None, Some(at), None);
                o.in_ivr = Some(i);
                self.step(*call, at, StepKind::IvrEntered, Some(d), None);
            }
            CstaEvent::Held { call, holding } => {
                let d = holding.to_string();
                if let Some(o) = self.calls.get_mut(call) {
                    o.cdr.holds += 1;
                    o.hold_since.insert(d.clone(), at);
                }
                self.step(*call, at, StepKind::Held, Some(d), None);
            }
            CstaEvent::Retrieved { call, retrieving } => {
                let d = retrieving.to_string();
                if let Some(o) = self.calls.get_mut(call) {
                    if let Some(t) = o.hold_since.remove(&d) {
                        o.cdr.hold_ms += at - t;
                    }
                }
                self.step(*call, at, StepKind::Retrieved, Some(d), None);
            }
            CstaEvent::ConnectionCleared { call, releasing, .. } => {
                let d = releasing.to_string();
                if let Some(o) = self.calls.get_mut(call) {
                    let was_ringing = o.ringing.contains(&d);
                    o.ringing.retain(|r| r != &d);
                    if let Some(t) = o.hold_since.remove(&d) {
                        o.cdr.hold_ms += at - t;
                    }
                    if let Some(&i) = o.current.get(&d) {
                        let outcome = if was_ringing { "caller_gone" } else { "answered" };
                        if o.cdr.legs[i].ended_ms.is_none() {
                            let outcome = if o.cdr.legs[i].answered_ms.is_some() {
                                answered_outcome(&o.cdr.legs[i])
                            } else {
                                outcome
                            };
                            end_leg(o, i, at, outcome);
                        }
                        o.current.remove(&d);
                    }
                    self.step(*call, at, StepKind::PartyLeft, Some(d), None);
                }
            }
            CstaEvent::CallCleared { call, cause } => {
                if let Some(o) = self.calls.get_mut(call) {
                    o.cdr.ended_ms = at;
                    o.cdr.cause = cause.0;
                }
            }
            CstaEvent::Transferred { primary, secondary, transferring, transferred_to } => {
                let d = transferring.to_string();
                let to = transferred_to.as_ref().map(|t| t.to_string());
                if let Some(o) = self.calls.get_mut(primary) {
                    o.cdr.transfers += 1;
                    // What the transferring party held is joined now: the hold is over.
                    if let Some(t) = o.hold_since.remove(&d) {
                        o.cdr.hold_ms += at - t;
                    }
                    if let Some(&i) = o.current.get(&d) {
                        end_leg(o, i, at, "transferred");
                        o.current.remove(&d);
                    }
                }
                self.merge(now, *primary, *secondary, &d);
                self.step(*primary, at, StepKind::Transferred, Some(d), to);
            }
            CstaEvent::Conferenced { primary, secondary, controller, added } => {
                let d = controller.to_string();
                if let Some(o) = self.calls.get_mut(primary) {
                    o.cdr.conferences += 1;
                    if let Some(t) = o.hold_since.remove(&d) {
                        o.cdr.hold_ms += at - t;
                    }
                }
                self.merge(now, *primary, *secondary, &d);
                self.step(
                    *primary,
                    at,
                    StepKind::Conferenced,
                    Some(d),
                    added.as_ref().map(|a| a.to_string()),
                );
            }
            CstaEvent::Failed { call, failing, cause } => {
                let d = failing.to_string();
                if let Some(o) = self.calls.get_mut(call) {
                    o.failed = true;
                    if let Some(&i) = o.current.get(&d) {
                        end_leg(o, i, at, "failed");
                    }
                }
                self.open(now, *call, Direction::Internal).failed = true;
                self.step(*call, at, StepKind::Failed, Some(d), Some(cause.0.to_string()));
            }
            CstaEvent::Supervising { call, supervisor, mode } => {
                self.step(*call, at, StepKind::Supervised, None, Some(format!("{supervisor} {mode:?}")));
            }
            CstaEvent::Agent { agent, kind } => self.agent_event(at, agent, kind),
        }
    }

    /// A consultation merged into `primary` (transfer, conference): the consulted
    /// parties join the primary call as legs; the consultation call is closed as merged.
    fn merge(&mut self, now: Instant, primary: CallId, secondary: CallId, except: &str) {
        if primary == secondary {
            return;
        }
        let at = self.unix_ms(now);
        let Some(mut s) = self.calls.remove(&secondary) else { return };
        let joined: Vec<Leg> = s
            .current
            .iter()
            .filter(|(d, _)| d.as_str() != except)
            .map(|(_, &i)| s.cdr.legs[i].clone())
            .filter(|l| l.answered_ms.is_some() && !l.device.starts_with("queue:"))
            .collect();
        if let Some(p) = self.calls.get_mut(&primary) {
            for l in joined {
                let i = add_leg(p, &l.device, l.agent.clone(), Some(at), Some(at));
                p.cdr.legs[i].outcome = "joined".into();
            }
        }
        for (_, i) in s.current.drain().collect::<Vec<_>>() {
            if s.cdr.legs[i].ended_ms.is_none() {
                s.cdr.legs[i].ended_ms = Some(at);
            }
        }
        s.cdr.ended_ms = at;
        s.cdr.outcome = Outcome::Merged;
        s.cdr.data.insert("merged_into".into(), primary.0.to_string());
        self.out.push_back(StoreOp::CallClosed(Box::new(s.cdr)));
    }

    fn agent_event(&mut self, at: i64, agent: &str, kind: &AgentEventKind) {
        match kind {
            AgentEventKind::LoggedOn { station } => {
                // The first login of a run closes no interval (the engine keeps no
                // "logged out since the start"): the state it begins starts now.
                if self.logged_in.insert(agent.to_string(), true) != Some(true) {
                    self.pending_state.entry(agent.to_string()).or_insert(at);
                }
                if let Some(ext) = station {
                    self.agent_at.retain(|_, a| a != agent);
                    self.agent_at.insert(ext.clone(), agent.to_string());
                }
            }
            AgentEventKind::LoggedOff => {
                self.logged_in.insert(agent.to_string(), false);
                self.agent_at.retain(|_, a| a != agent);
                self.open_pending_state(agent, "logged out", None, at);
            }
            AgentEventKind::Ready => self.open_pending_state(agent, "ready", None, at),
            AgentEventKind::NotReady { reason } => {
                self.open_pending_state(agent, "not ready", Some(reason.clone()), at)
            }
            AgentEventKind::WorkingAfterCall => {
                self.open_pending_state(agent, "working after call", None, at)
            }
            AgentEventKind::Missed { .. } => {}
        }
    }

    /// A call event at the agent's station says what their state is becoming
    /// (ringing, busy); the engine's interval record may come just before or just
    /// after it, at the same instant.
    fn hint(&mut self, agent: &str, state: &str, at: i64) {
        if self.pending_state.get(agent) == Some(&at) {
            self.open_pending_state(agent, state, None, at);
        } else {
            self.hints.insert(agent.to_string(), (state.to_string(), at));
        }
    }

    /// The agent's new state is now known: write it open (a crash closes it).
    fn open_pending_state(&mut self, agent: &str, state: &str, reason: Option<String>, at: i64) {
        self.hints.remove(agent);
        let Some(from) = self.pending_state.remove(agent) else { return };
        let _ = at;
        self.out.push_back(StoreOp::AgentStateOpened(AgentInterval {
            agent: agent.to_string(),
            state: state.to_string(),
            reason,
            from_ms: from,
            to_ms: None,
        }));
    }

    fn handle_record(&mut self, now: Instant, r: &Record) {
        match r {
            Record::AgentState { agent, state, from, to } => {
                let reason = match state {
                    AgentState::NotReady(r) => Some(r.clone()),
                    _ => None,
                };
                let to_ms = self.unix_ms(*to);
                self.out.push_back(StoreOp::AgentInterval(AgentInterval {
                    agent: agent.clone(),
                    state: state.name().to_string(),
                    reason,
                    from_ms: self.unix_ms(*from),
                    to_ms: Some(to_ms),
                }));
                self.pending_state.insert(agent.clone(), to_ms);
                if let Some((state, at)) = self.hints.remove(agent) {
                    if at == to_ms {
                        self.open_pending_state(agent, &state, None, at);
                    }
                }
            }
            Record::Callback { call, number, queue, at } => {
                let at = self.unix_ms(*at);
                if let Some(o) = self.calls.get_mut(call) {
                    o.cdr.data.insert("callback".into(), "requested".into());
                }
                self.step(*call, at, StepKind::Callback, Some(format!("queue:{queue}")), number.clone());
            }
            Record::Call {
                call,
                ani,
                dnis,
                location,
                vip,
                queue,
                agent,
                answered,
                ended,
                cause,
                data,
                ..
            } => {
                let ended_ms = self.unix_ms(*ended);
                let answered_ms = answered.map(|a| self.unix_ms(a));
                let mut o = match self.calls.remove(call) {
                    Some(o) => o,
                    None => {
                        self.open(now, *call, Direction::Internal);
                        self.calls.remove(call).expect("opened")
                    }
                };
                let members = queue.as_ref().and_then(|q| self.members.get(q));
                let staffed = match members {
                    Some(m) => m.iter().any(|a| self.logged_in.get(a).copied().unwrap_or(false)),
                    None => self.logged_in.values().any(|&l| l),
                };
                let c = &mut o.cdr;
                c.ended_ms = ended_ms;
                c.cause = cause.0;
                if c.caller.is_none() {
                    c.caller = ani.clone();
                }
                if c.direction == Direction::Inbound {
                    c.called = Some(dnis.clone());
                }
                c.location = location.clone();
                c.vip = *vip;
                if queue.is_some() {
                    c.queue = queue.clone();
                }
                if agent.is_some() {
                    c.agent = agent.clone();
                }
                if c.answered_ms.is_none() && !o.diverted_out {
                    c.answered_ms = answered_ms;
                }
                for (k, v) in data {
                    c.data.insert(k.clone(), v.clone());
                }
                c.released_by = c.data.remove("released_by");
                let first = c.legs.first().map(|l| l.device.clone());
                c.released_side = match &c.released_by {
                    None => Side::System,
                    Some(d) if d.starts_with("trunk:") && c.direction == Direction::Inbound => {
                        // The inbound caller is the trunk the call came in on: the
                        // first trunk leg, or, before any trunk leg, any trunk.
                        let first_trunk = c.legs.iter().find(|l| l.device.starts_with("trunk:"));
                        match first_trunk {
                            Some(l) if l.device != *d && l.rung_ms.is_some() => Side::Other,
                            _ => Side::Caller,
                        }
                    }
                    Some(d) if Some(d) == first.as_ref() => Side::Caller,
                    Some(d) if d.starts_with("station:") => Side::Agent,
                    Some(_) => Side::Other,
                };
                // Close what is still open: the IVR, the queue, ringing phones.
                let ringing = !o.ringing.is_empty();
                let in_ivr = o.in_ivr.is_some();
                let in_queue = o.in_queue.is_some();
                let side = o.cdr.released_side;
                let leaving = match (side, o.shutdown) {
                    (Side::Caller, _) => ("caller_gone", "abandoned"),
                    // The server stopping is not the IVR's or the queue's doing.
                    (_, true) => ("shutdown", "shutdown"),
                    _ => ("ended", "timed_out"),
                };
                leave_ivr(&mut o, ended_ms, leaving.0);
                if let Some(q) = o.in_queue.take() {
                    end_leg(&mut o, q, ended_ms, leaving.1);
                    if leaving.1 == "timed_out" {
                        o.cdr.timed_out = true;
                    }
                }
                for (d, i) in o.current.clone() {
                    if o.cdr.legs[i].ended_ms.is_none() {
                        let outcome = if o.cdr.legs[i].answered_ms.is_some() {
                            answered_outcome(&o.cdr.legs[i])
                        } else {
                            "caller_gone"
                        };
                        end_leg(&mut o, i, ended_ms, outcome);
                    }
                    o.current.remove(&d);
                }
                for (_, t) in o.hold_since.drain() {
                    o.cdr.hold_ms += ended_ms - t;
                }
                let c = &mut o.cdr;
                let side = c.released_side;
                (c.outcome, c.missed) = if c.answered_ms.is_some() {
                    (Outcome::Answered, None)
                } else if o.diverted_out {
                    (Outcome::Diverted, None)
                } else if o.voicemail {
                    (Outcome::Voicemail, None)
                } else if c.data.get("callback").is_some_and(|v| v == "requested") {
                    (Outcome::Callback, None)
                } else if c.direction != Direction::Inbound || (o.failed && c.queued_ms.is_none()) {
                    (if o.failed { Outcome::Failed } else { Outcome::Missed }, None)
                } else if in_ivr && c.queued_ms.is_none() {
                    if side == Side::Caller {
                        (Outcome::Missed, Some(Missed::InIvr))
                    } else {
                        (Outcome::EndedInIvr, None)
                    }
                } else if c.queued_ms.is_none() {
                    (Outcome::Failed, None)
                } else if ringing || o.missed_once || c.rung_ms.is_some() {
                    (Outcome::Missed, Some(Missed::NotAnswered))
                } else if c.timed_out || side != Side::Caller || !staffed {
                    (Outcome::Missed, Some(Missed::NoAgent))
                } else if in_queue || side == Side::Caller {
                    (Outcome::Missed, Some(Missed::Abandoned))
                } else {
                    (Outcome::Missed, Some(Missed::NoAgent))
                };
                // Cut by the server: the shutdown; or out of hours: the access number was
                // closed when it arrived (whatever its closed target did with it, a
                // message or a hang-up), or the IVR took a time node's default branch.
                let closed = c.data.get(crate::engine::AFTER_HOURS).is_some_and(|v| v == "yes");
                let unanswered = matches!(c.outcome, Outcome::Missed | Outcome::EndedInIvr | Outcome::Failed);
                if c.direction == Direction::Inbound && unanswered {
                    if o.shutdown && !o.failed {
                        (c.outcome, c.missed) = (Outcome::Missed, Some(Missed::Shutdown));
                    } else if closed || (o.after_hours && !o.failed && c.outcome != Outcome::Failed) {
                        (c.outcome, c.missed) = (Outcome::Missed, Some(Missed::AfterHours));
                    }
                }
                if o.voicemail {
                    if self.voicemail_queue.len() >= VOICEMAIL_PENDING {
                        self.voicemail_queue.pop_front();
                    }
                    self.voicemail_queue.push_back((*call, o.cdr.queue.clone()));
                }
                let cdr = o.cdr;
                self.out.push_back(StoreOp::Step(Step {
                    key: cdr.key,
                    at_ms: ended_ms,
                    kind: StepKind::Released,
                    device: cdr.released_by.clone(),
                    agent: None,
                    detail: Some(cause.0.to_string()),
                }));
                self.out.push_back(StoreOp::CallClosed(Box::new(cdr)));
            }
        }
    }

    /// The IVR entered a node of a flow with this call (its `IvrOutput::Node`).
    pub fn ivr_node(&mut self, now: Instant, call: u64, flow: &str, node: &str) {
        let at = self.unix_ms(now);
        let key = self.key(CallId(call));
        if let Some(o) = self.calls.get_mut(&CallId(call)) {
            let closed = o
                .last_node
                .take()
                .and_then(|prev| self.closed_branches.get(&prev))
                .is_some_and(|d| d == node);
            o.after_hours |= closed;
            o.last_node = Some((flow.to_string(), node.to_string()));
        }
        self.out.push_back(StoreOp::IvrVisit {
            key,
            at_ms: at,
            flow: flow.to_string(),
            node: node.to_string(),
        });
        self.step(CallId(call), at, StepKind::IvrNode, Some(format!("ivr:{flow}")), Some(node.to_string()));
    }

    /// The IVR took a voicemail on this call.
    pub fn voicemail(&mut self, now: Instant, call: u64, note: VoicemailNote) {
        let at = self.unix_ms(now);
        let key = self.key(CallId(call));
        let queue = match self.calls.get_mut(&CallId(call)) {
            Some(o) => {
                o.voicemail = true;
                o.cdr.queue.clone()
            }
            // Closed already (the caller hung up at the end of the message): the queue
            // it overflowed from was kept for this.
            None => {
                let i = self.voicemail_queue.iter().position(|(c, _)| c.0 == call);
                i.and_then(|i| self.voicemail_queue.remove(i)).and_then(|(_, q)| q)
            }
        };
        self.step(CallId(call), at, StepKind::Voicemail, Some(format!("voicemail:{}", note.mailbox)), None);
        self.out.push_back(StoreOp::Voicemail { key: Some(key), left_ms: at, queue, note });
    }

    /// The IVR started recording a message on this call (a voicemail, or a flow's
    /// record node). The message's row
    /// comes with [`CdrBuilder::voicemail`] when the recording ends, often after the
    /// caller has hung up and the call is closed; the call's outcome is `voicemail`
    /// from here on, not a caller lost in the IVR.
    pub fn voicemail_started(&mut self, call: u64) {
        if let Some(o) = self.calls.get_mut(&CallId(call)) {
            o.voicemail = true;
        }
    }

    /// A recording of this call started with this id (the policy's `Start`).
    pub fn recording(&mut self, now: Instant, call: u64, rec_id: u64) {
        let at = self.unix_ms(now);
        if let Some(o) = self.calls.get_mut(&CallId(call)) {
            o.cdr.recordings.push(rec_id);
        }
        self.step(CallId(call), at, StepKind::Recording, None, Some(rec_id.to_string()));
    }
}

/// How an answered leg ended: a party that joined by transfer or conference keeps
/// saying so.
fn answered_outcome(l: &Leg) -> &'static str {
    if l.outcome == "joined" {
        "joined"
    } else {
        "answered"
    }
}

fn add_leg(
    o: &mut Open,
    device: &str,
    agent: Option<String>,
    rung: Option<i64>,
    answered: Option<i64>,
) -> usize {
    if let Some(&i) = o.current.get(device) {
        if o.cdr.legs[i].ended_ms.is_none() {
            return i;
        }
    }
    o.cdr.legs.push(Leg {
        device: device.to_string(),
        agent,
        rung_ms: rung,
        answered_ms: answered,
        ended_ms: None,
        outcome: if answered.is_some() { "answered".into() } else { "open".into() },
    });
    let i = o.cdr.legs.len() - 1;
    o.current.insert(device.to_string(), i);
    i
}

fn end_leg(o: &mut Open, i: usize, at: i64, outcome: &str) {
    let leg = &mut o.cdr.legs[i];
    leg.ended_ms = Some(at);
    leg.outcome = outcome.to_string();
    let d = leg.device.clone();
    if o.current.get(&d) == Some(&i) {
        o.current.remove(&d);
    }
}

fn leave_ivr(o: &mut Open, at: i64, outcome: &str) {
    if let Some(i) = o.in_ivr.take() {
        o.cdr.ivr_left_ms = Some(at);
        end_leg(o, i, at, outcome);
    }
}
