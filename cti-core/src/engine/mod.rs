//! The engine: one state machine that owns every call, queue, agent and station.
//!
//! Driving it (the loop rule, as in str0m): after each [`Engine::handle`], drain
//! [`Engine::poll_output`] until it returns `None`, then wait for the next input or
//! until [`Engine::next_deadline`], and hand the engine an [`Input::Timeout`] then.
//! Time must not go backwards. Every input first runs the timers that fell due, so a
//! late `Timeout` is harmless and an early one does nothing.
//!
//! The parts live in submodules, each an `impl Engine` block:
//! - `acd`: queues, ready-agent indexes, distribution, overflow, agent states;
//! - `station`: the analog phone: dial tone, dialling, hook flash, feature codes;
//! - `calls`: the call model: parties, clearing, transfer, media on the card's bus;
//! - `services`: CSTA services from clients and supervision.

mod acd;
mod calls;
mod reload;
mod services;
mod station;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

use hotline_drivers::event::Side;
use hotline_drivers::{CardEvent, ChannelId, Command, EventKind, Instant};

use crate::config::{Config, QueueConf, Target};
use crate::csta::{AgentState, Announcement, CallId, CstaError, CstaEvent, Record, Service, ServiceResult};

pub use acd::ReadyKey;

/// The prefix of call data keys that came from the IVR (the screen pop splits on it).
pub const IVR_PREFIX: &str = "ivr.";
/// Call data key: the agent who transferred the call into an IVR flow, for `agent:back`.
pub const IVR_FROM_AGENT: &str = "ivr.from_agent";
/// Call data key, `yes`: the call arrived while its access number was closed (no
/// schedule of its routes open, or a holiday) and went to the number's closed target.
/// The call records make such a call, unanswered, a missed call of kind `after_hours`.
pub const AFTER_HOURS: &str = "after_hours";

/// A client connection, as the runtime numbers them; responses go back to it.
pub type ClientId = u32;

/// What the engine consumes.
#[derive(Debug, Clone)]
pub enum Input {
    /// An event from a card.
    Card(CardEvent),
    /// A CSTA service request from a client, with the client's invoke id.
    Request { client: ClientId, invoke: u32, service: Service },
    /// The deadline from [`Engine::next_deadline`] has passed.
    Timeout,
    /// The IVR (or voicemail) is done with a call it was handed: attach `data` (the
    /// variables it collected) to the call under keys prefixed `ivr.`, then send it on
    /// to `next`, written as in the configuration (`queue:NAME`, `agent:ID`,
    /// `external:NUMBER`, `hangup:CAUSE`, `ivr:FLOW`, `voicemail:BOX`), or `agent:back`
    /// (also `return`): back to the agent who transferred the call into the IVR (call
    /// data `ivr.from_agent`), else to the queue it was last in. An unknown call is
    /// ignored; a bad target clears the call.
    IvrDone { call: CallId, next: String, data: BTreeMap<String, String> },
    /// The card refused a command the engine gave (the runtime reports it with the
    /// error's kind). The engine undoes what depended on it: a call that could not be
    /// placed fails, a station that could not ring is passed over.
    CommandFailed { command: Command, kind: hotline_drivers::ErrorKind },
    /// A client connection closed. Agents who logged in from it keep their state for
    /// the configured grace period; logging in again from a new connection resumes.
    ClientGone { client: ClientId },
}

/// A call's data for a screen pop ([`Engine::call_info`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// The caller's number, when presented.
    pub ani: Option<String>,
    /// The number dialled (the access number).
    pub dnis: String,
    /// The caller's location, from the number-prefix table.
    pub location: Option<String>,
    pub vip: bool,
    /// Data attached to the call (IVR variables, SetCallData).
    pub data: BTreeMap<String, String>,
}

/// What the engine produces.
#[derive(Debug, Clone)]
pub enum Output {
    /// A command for the card owning the channel.
    Command(Command),
    /// A CSTA event for clients.
    Event(CstaEvent),
    /// The answer to a client's request.
    Response { client: ClientId, invoke: u32, result: Result<ServiceResult, CstaError> },
    /// A record for storage (call detail, agent state interval).
    Record(Record),
    /// Something to tell a caller (the IVR plays it).
    Announce(Announcement),
}

pub(crate) type AgentIx = u32;
pub(crate) type QueueIx = u32;
pub(crate) type StationIx = u32;

/// Timers, each carrying the generation it was armed with; a timer whose generation no
/// longer matches its owner's was cancelled and is skipped.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// The agent did not answer in time.
    Ring { call: CallId, gen: u64 },
    /// The call waited the queue's maximum.
    MaxWait { call: CallId, gen: u64 },
    /// The call waited the maximum with no agent logged in.
    NoAgents { call: CallId, gen: u64 },
    /// The agent's after-call work is over.
    WrapUp { agent: AgentIx, gen: u64 },
    /// The station paused too long between digits.
    InterDigit { station: StationIx, gen: u64 },
    /// Time to tell a waiting caller their position.
    Announce { call: CallId, gen: u64 },
    /// Time to offer a waiting caller a callback.
    CallbackOffer { call: CallId, gen: u64 },
    /// An agent's desktop has been away for the grace period.
    DesktopGrace { agent: AgentIx, gen: u64 },
    /// A call waited `agent_wait` for the one agent it was sent to.
    AgentWait { call: CallId, gen: u64 },
}

/// A party in a call: a device's connection and, for trunks and stations, its channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Party {
    pub device: crate::csta::DeviceId,
    pub ch: Option<ChannelId>,
    pub state: crate::csta::ConnectionState,
    /// A supervisor's mode, when the party is one.
    pub supervision: Option<crate::csta::SupervisionMode>,
    /// The far number a trunk party was dialled at, or presented from.
    pub number: Option<String>,
}

/// Where a call is in its life, as far as routing cares.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Parties are being connected (station dialling, outbound alerting) or talk.
    Active,
    /// Waiting in a queue.
    Queued(QueueIx),
    /// Ringing an agent, from a queue.
    Offering(QueueIx, AgentIx),
    /// Given to an IVR flow or voicemail; the IVR owns what happens next.
    HandedOff,
    /// Sent to one agent (`agent:ID`) who is not free yet: in that agent's `awaiting`
    /// line until they are ready or `agent_wait` passes.
    Awaiting(AgentIx),
}

/// The bus state applied to the card for a call, to compute the next change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Media {
    pub pair: Option<(ChannelId, ChannelId)>,
    pub conf: Option<hotline_drivers::ConferenceId>,
    pub members: BTreeMap<ChannelId, hotline_drivers::command::MemberRights>,
}

#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub ani: Option<String>,
    pub dnis: String,
    pub location: Option<u32>,
    pub vip: bool,
    pub data: BTreeMap<String, String>,
    pub parties: Vec<Party>,
    pub stage: Stage,
    /// The queue the call was last in, for records.
    pub queue: Option<QueueIx>,
    /// Place in line: class (0 returned, 1 VIP, 2 others) and arrival sequence.
    pub line: (u8, u64),
    pub queued_at: Option<Instant>,
    pub tried: Vec<AgentIx>,
    pub ring_gen: u64,
    pub wait_gen: u64,
    /// The agent who answered it from a queue.
    pub agent: Option<AgentIx>,
    pub started: Instant,
    pub answered: Option<Instant>,
    pub media: Media,
    /// A MakeCall waiting for its station to answer, then to dial this.
    pub pending_dial: Option<String>,
    /// Trunk channels the card refused this call (blocked, busy): not tried again.
    pub refused_trunks: Vec<ChannelId>,
    /// A supervisor's phone rung for supervision: (supervisor, agent, mode) to start
    /// once it is answered.
    pub pending_supervise: Option<(String, String, crate::csta::SupervisionMode)>,
    /// Generation of the announcement and callback-offer timers.
    pub announce_gen: u64,
    pub callback_offered: bool,
}

/// An idle or busy trunk channel.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trunk {
    pub group: Option<u32>,
    pub call: Option<CallId>,
    /// We released it and wait for the card's `Released`.
    pub releasing: bool,
    pub blocked: bool,
    /// Its span is in alarm (red, blue or yellow): no calls until every alarm clears.
    pub alarm: bool,
}

impl Trunk {
    /// Free for a new outbound call.
    fn usable(&self) -> bool {
        self.call.is_none() && !self.releasing && !self.blocked && !self.alarm
    }
}

/// The engine. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Engine {
    pub(crate) cfg: Config,
    pub(crate) now: Instant,
    pub(crate) out: VecDeque<Output>,
    pub(crate) timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    pub(crate) timer_seq: u64,
    pub(crate) gen: u64,
    pub(crate) rng: u64,
    pub(crate) next_call: u64,
    pub(crate) next_play: u32,
    pub(crate) next_bridge: u16,
    pub(crate) line_seq: u64,
    /// Wall-clock anchor for schedules: (instant, Unix seconds at that instant).
    pub(crate) wall: Option<(Instant, i64)>,

    pub(crate) calls: HashMap<CallId, Call>,
    pub(crate) trunks: HashMap<ChannelId, Trunk>,
    /// Free trunk channels per group, in order.
    pub(crate) free_trunks: Vec<BTreeSet<ChannelId>>,
    /// Alarms standing on each (card, span).
    span_alarms: HashMap<(u16, u8), Vec<hotline_drivers::event::Alarm>>,
    pub(crate) stations: Vec<station::Station>,
    pub(crate) station_by_ch: HashMap<ChannelId, StationIx>,
    /// Internal numbers: extensions and queue numbers.
    pub(crate) numbers: BTreeMap<String, Dest>,
    pub(crate) agents: Vec<acd::Agent>,
    pub(crate) agent_by_id: HashMap<String, AgentIx>,
    pub(crate) queues: Vec<acd::Queue>,
    pub(crate) queue_by_name: HashMap<String, QueueIx>,
    pub(crate) access: HashMap<String, usize>,
    pub(crate) loc_ids: HashMap<String, u32>,
    /// Caller number → their dedicated agent.
    pub(crate) dedicated: HashMap<String, AgentIx>,
    /// Caller number → the agent who last served them.
    pub(crate) last_agent: HashMap<String, AgentIx>,
    /// What is playing on a channel, so a change stops it first.
    pub(crate) playing: HashMap<ChannelId, station::Playing>,
    pub(crate) bridges_in_use: BTreeSet<(u16, u16)>,
}

/// What an internal number reaches.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dest {
    Station(StationIx),
    Queue(QueueIx),
}

impl Engine {
    /// Build an engine from a validated configuration. No agent is logged in; every
    /// station is on hook; every trunk idle.
    pub fn new(cfg: Config) -> Engine {
        let mut e = Engine {
            now: Instant::ZERO,
            out: VecDeque::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            gen: 0,
            rng: cfg.seed | 1,
            next_call: 1,
            next_play: 1,
            next_bridge: 1,
            line_seq: 0,
            wall: None,
            calls: HashMap::new(),
            trunks: HashMap::new(),
            free_trunks: Vec::new(),
            span_alarms: HashMap::new(),
            stations: Vec::new(),
            station_by_ch: HashMap::new(),
            numbers: BTreeMap::new(),
            agents: Vec::new(),
            agent_by_id: HashMap::new(),
            queues: Vec::new(),
            queue_by_name: HashMap::new(),
            access: HashMap::new(),
            loc_ids: HashMap::new(),
            dedicated: HashMap::new(),
            last_agent: HashMap::new(),
            playing: HashMap::new(),
            bridges_in_use: BTreeSet::new(),
            cfg,
        };
        for (gi, g) in e.cfg.trunk_groups.iter().enumerate() {
            let mut free = BTreeSet::new();
            for &ch in &g.channels {
                e.trunks.insert(ch, Trunk { group: Some(gi as u32), ..Trunk::default() });
                free.insert(ch);
            }
            e.free_trunks.push(free);
        }
        for (si, s) in e.cfg.stations.iter().enumerate() {
            e.stations.push(station::Station::new(s.port, s.extension.clone()));
            e.station_by_ch.insert(s.port, si as StationIx);
            e.numbers.insert(s.extension.clone(), Dest::Station(si as StationIx));
        }
        let queue_confs: Vec<QueueConf> = e.cfg.queues.clone();
        for (qi, q) in queue_confs.into_iter().enumerate() {
            if let Some(n) = &q.number {
                e.numbers.insert(n.clone(), Dest::Queue(qi as QueueIx));
            }
            e.queue_by_name.insert(q.name.clone(), qi as QueueIx);
            e.queues.push(acd::Queue::new(q));
        }
        for (i, a) in e.cfg.access_numbers.iter().enumerate() {
            e.access.insert(a.dnis.clone(), i);
        }
        let names: Vec<String> = e.cfg.locations.values().cloned().collect();
        for n in names {
            e.intern_location(&n);
        }
        let agents = e.cfg.agents.clone();
        for a in &agents {
            let loc = a.location.as_deref().map(|l| e.intern_location(l));
            let ix = e.agents.len() as AgentIx;
            let memberships = a
                .queues
                .iter()
                .filter(|(q, _)| e.cfg.queues[*q].required_skills.iter().all(|s| a.skills.contains(s)))
                .map(|&(q, level)| acd::Membership { queue: q as QueueIx, level, answered: 0, key: None })
                .collect();
            e.agents.push(acd::Agent::new(
                a.id.clone(),
                a.name.clone(),
                a.password.clone(),
                loc,
                memberships,
            ));
            e.agent_by_id.insert(a.id.clone(), ix);
            for acc in &a.accounts {
                e.dedicated.insert(acc.clone(), ix);
            }
        }
        let sups = e.cfg.supervisors.clone();
        for s in sups {
            let ix = e.agents.len() as AgentIx;
            let mut agent = acd::Agent::new(s.id.clone(), s.name, s.password, None, Vec::new());
            agent.supervisor = true;
            e.agents.push(agent);
            e.agent_by_id.insert(s.id, ix);
        }
        e
    }

    /// Tell the engine which wall-clock time (Unix seconds, UTC) corresponds to `at`, so
    /// schedules and holidays can be evaluated. Until told, every schedule counts as
    /// open and no day is a holiday.
    pub fn set_wall_clock(&mut self, at: Instant, unix_secs: i64) {
        self.wall = Some((at, unix_secs));
    }

    /// Handle one input at time `now`. Timers that fell due run first.
    pub fn handle(&mut self, now: Instant, input: Input) {
        if now > self.now {
            self.now = now;
        }
        self.run_timers();
        match input {
            Input::Timeout => {}
            Input::Card(ev) => self.on_card_event(ev.kind),
            Input::ClientGone { client } => self.client_gone(client),
            Input::IvrDone { call, next, data } => self.ivr_done(call, &next, data),
            Input::CommandFailed { command, kind } => self.command_failed(command, kind),
            Input::Request { client, invoke, service } => {
                let result = self.on_service(client, service);
                self.out.push_back(Output::Response { client, invoke, result });
            }
        }
        self.prune_timers();
    }

    /// The next output, or `None` when everything is drained.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When the engine next needs an [`Input::Timeout`], if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The configuration the engine runs.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// An agent's state and since when, for snapshots.
    pub fn agent_state(&self, agent: &str) -> Option<(AgentState, Instant)> {
        let a = &self.agents[*self.agent_by_id.get(agent)? as usize];
        Some((a.state.clone(), a.since))
    }

    /// Calls waiting in a queue (not counting one ringing an agent).
    pub fn queue_length(&self, queue: &str) -> Option<usize> {
        let q = *self.queue_by_name.get(queue)?;
        Some(self.queues[q as usize].waiting.len())
    }

    /// Ready agents in a queue.
    pub fn ready_agents(&self, queue: &str) -> Option<usize> {
        let q = *self.queue_by_name.get(queue)?;
        Some(self.queues[q as usize].ready.len())
    }

    /// The routing decision the queue would make now for a caller (by number), without
    /// changing anything: the agent id that would be offered the call. For
    /// supervisors' "who is next" and for benchmarking the decision itself.
    pub fn routing_choice(&self, queue: &str, caller: Option<&str>) -> Option<&str> {
        let q = *self.queue_by_name.get(queue)?;
        let location = caller
            .and_then(|n| (1..=n.len()).rev().find_map(|k| self.cfg.locations.get(&n[..k])))
            .and_then(|l| self.loc_ids.get(l).copied());
        let a = self.choose(q, caller, location, &[])?;
        Some(&self.agents[a as usize].id)
    }

    /// An agent's display name.
    pub fn agent_name(&self, agent: &str) -> Option<&str> {
        Some(&self.agents[*self.agent_by_id.get(agent)? as usize].name)
    }

    /// Calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// A call's attached data.
    pub fn call_data(&self, call: CallId) -> Option<&BTreeMap<String, String>> {
        self.calls.get(&call).map(|c| &c.data)
    }

    /// What a screen pop shows about a call: caller, access number, location, VIP
    /// flag and attached data.
    pub fn call_info(&self, call: CallId) -> Option<CallInfo> {
        let c = self.calls.get(&call)?;
        let location =
            c.location.and_then(|l| self.loc_ids.iter().find(|(_, &id)| id == l)).map(|(n, _)| n.clone());
        Some(CallInfo {
            ani: c.ani.clone(),
            dnis: c.dnis.clone(),
            location,
            vip: c.vip,
            data: c.data.clone(),
        })
    }

    /// The call on a channel (trunk or station's active call).
    pub fn call_on(&self, ch: ChannelId) -> Option<CallId> {
        if let Some(t) = self.trunks.get(&ch) {
            return t.call;
        }
        let s = &self.stations[*self.station_by_ch.get(&ch)? as usize];
        s.mode.active_call()
    }

    /// Check the engine's internal consistency: indexes agree with states, queues and
    /// trunks point at live calls, stations at calls they take part in. For tests
    /// that drive the engine with random inputs; returns what is wrong.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        for (ai, a) in self.agents.iter().enumerate() {
            for m in &a.memberships {
                let q = &self.queues[m.queue as usize];
                let indexed = m.key.is_some_and(|k| q.ready.contains(&k));
                if indexed != (a.state == AgentState::Ready) {
                    return Err(format!(
                        "agent {} is {:?} but indexed={indexed} in {}",
                        a.id, a.state, q.conf.name
                    ));
                }
            }
            for c in &a.awaiting {
                if self.calls.get(c).map(|c| c.stage) != Some(Stage::Awaiting(ai as AgentIx)) {
                    return Err(format!("agent {} lists {c} as awaiting them wrongly", a.id));
                }
            }
            if matches!(a.state, AgentState::Ringing) && a.call.is_none() {
                return Err(format!("agent {} rings with no call", a.id));
            }
            if let Some(c) = a.call {
                if !self.calls.contains_key(&c) {
                    return Err(format!("agent {} holds gone call {c}", a.id));
                }
                let mode = a.station.map(|s| &self.stations[s as usize].mode);
                let at_phone = mode.is_some_and(|m| m.active_call() == Some(c) || m.held() == Some(c));
                if !at_phone {
                    return Err(format!("agent {} ({:?}) has {c} but the phone is {mode:?}", a.id, a.state));
                }
            }
            if let Some(s) = a.station {
                if self.stations[s as usize].agent != Some(ai as AgentIx) {
                    return Err(format!(
                        "agent {} and station {} disagree",
                        a.id, self.stations[s as usize].ext
                    ));
                }
            }
        }
        for q in &self.queues {
            for (line, c) in &q.waiting {
                match self.calls.get(c) {
                    Some(call) if call.line == *line && matches!(call.stage, Stage::Queued(_)) => {}
                    _ => return Err(format!("queue {} lists {c} wrongly", q.conf.name)),
                }
            }
        }
        for (id, c) in &self.calls {
            if let Stage::Queued(q) = c.stage {
                if self.queues[q as usize].waiting.get(&c.line) != Some(id) {
                    return Err(format!("{id} is queued but not in line"));
                }
            }
            if let Stage::Offering(_, a) = c.stage {
                if self.agents[a as usize].call != Some(*id) {
                    return Err(format!("{id} offered to an agent who does not have it"));
                }
            }
            if let Stage::Awaiting(a) = c.stage {
                if !self.agents[a as usize].awaiting.contains(id) {
                    return Err(format!(
                        "{id} awaits agent {} but is not in their line",
                        self.agents[a as usize].id
                    ));
                }
            }
        }
        // The bus: a call's applied media joins only its own connected parties, and no
        // channel is switched into two calls.
        let mut on_bus: HashMap<ChannelId, CallId> = HashMap::new();
        for (id, c) in &self.calls {
            let connected = |ch: &ChannelId| {
                c.parties
                    .iter()
                    .any(|p| p.ch == Some(*ch) && p.state == crate::csta::ConnectionState::Connected)
            };
            let chans: Vec<ChannelId> = c
                .media
                .pair
                .map(|(a, b)| vec![a, b])
                .unwrap_or_default()
                .into_iter()
                .chain(c.media.members.keys().copied())
                .collect();
            let live: Vec<ChannelId> = c
                .parties
                .iter()
                .filter(|p| p.state == crate::csta::ConnectionState::Connected)
                .filter_map(|p| p.ch)
                .collect();
            let supervised = c.parties.iter().any(|p| {
                p.supervision.is_some()
                    && p.state == crate::csta::ConnectionState::Connected
                    && p.ch.is_some()
            });
            if live.len() == 2 && !supervised {
                let (a, b) = (live[0], live[1]);
                if c.media.pair != Some((a, b)) && c.media.pair != Some((b, a)) {
                    return Err(format!(
                        "{id} has two parties talking ({a}, {b}) but they are not connected"
                    ));
                }
            }
            if (live.len() >= 3 || supervised) && c.media.members.len() != live.len() {
                return Err(format!("{id}: {} talking, {} on its bridge", live.len(), c.media.members.len()));
            }
            for ch in chans {
                if !connected(&ch) {
                    return Err(format!("{id} has {ch} on the bus but not connected in the call"));
                }
                if let Some(other) = on_bus.insert(ch, *id) {
                    return Err(format!("{ch} is on the bus for {other} and {id}"));
                }
            }
        }
        for (ch, t) in &self.trunks {
            if let Some(c) = t.call {
                let ok =
                    self.calls.get(&c).is_some_and(|call| call.parties.iter().any(|p| p.ch == Some(*ch)));
                if !ok {
                    return Err(format!("trunk {ch} points at {c}, which does not have it"));
                }
            }
        }
        use crate::csta::ConnectionState as Cs;
        for s in &self.stations {
            for c in [s.mode.active_call(), s.mode.held()].into_iter().flatten() {
                if !self.calls.contains_key(&c) {
                    return Err(format!("station {} refers to gone call {c} ({:?})", s.ext, s.mode));
                }
            }
            let state_in = |c: CallId| {
                self.calls
                    .get(&c)
                    .and_then(|call| call.parties.iter().find(|p| p.ch == Some(s.ch)).map(|p| p.state))
            };
            let ok = match s.mode {
                station::StationMode::Talking { call, .. } => state_in(call) == Some(Cs::Connected),
                station::StationMode::Ringing { call } => {
                    matches!(state_in(call), Some(Cs::Alerting | Cs::Held))
                }
                station::StationMode::OffHookAlerting { call } => state_in(call) == Some(Cs::Alerting),
                _ => true,
            } && s.mode.held().map_or(true, |h| state_in(h) == Some(Cs::Held));
            if !ok {
                return Err(format!("station {} is {:?} but its connections disagree", s.ext, s.mode));
            }
        }
        for (id, c) in &self.calls {
            for p in &c.parties {
                let Some(&si) = p.ch.and_then(|ch| self.station_by_ch.get(&ch)) else { continue };
                let m = &self.stations[si as usize].mode;
                if m.active_call() != Some(*id) && m.held() != Some(*id) {
                    return Err(format!(
                        "{id} has station {} ({:?}) which is {m:?}",
                        self.stations[si as usize].ext, p.state
                    ));
                }
            }
        }
        Ok(())
    }

    // -- plumbing shared by the submodules --

    pub(crate) fn announce(&mut self, a: Announcement) {
        self.out.push_back(Output::Announce(a));
    }

    pub(crate) fn emit(&mut self, ev: CstaEvent) {
        self.out.push_back(Output::Event(ev));
    }

    pub(crate) fn cmd(&mut self, c: Command) {
        self.out.push_back(Output::Command(c));
    }

    pub(crate) fn fresh_gen(&mut self) -> u64 {
        self.gen += 1;
        self.gen
    }

    pub(crate) fn arm(&mut self, at: Instant, t: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at, self.timer_seq, t)));
    }

    /// xorshift64*: deterministic from the configured seed.
    pub(crate) fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn intern_location(&mut self, name: &str) -> u32 {
        let n = self.loc_ids.len() as u32;
        *self.loc_ids.entry(name.to_string()).or_insert(n)
    }

    fn timer_live(&self, t: &Timer) -> bool {
        match *t {
            Timer::Ring { call, gen } => self.calls.get(&call).is_some_and(|c| c.ring_gen == gen),
            Timer::MaxWait { call, gen } | Timer::NoAgents { call, gen } | Timer::AgentWait { call, gen } => {
                self.calls.get(&call).is_some_and(|c| c.wait_gen == gen)
            }
            Timer::WrapUp { agent, gen } => self.agents[agent as usize].wrap_gen == gen,
            Timer::DesktopGrace { agent, gen } => self.agents[agent as usize].grace_gen == gen,
            Timer::InterDigit { station, gen } => self.stations[station as usize].digit_gen == gen,
            Timer::Announce { call, gen } | Timer::CallbackOffer { call, gen } => {
                self.calls.get(&call).is_some_and(|c| c.announce_gen == gen)
            }
        }
    }

    fn run_timers(&mut self) {
        while let Some(Reverse((at, _, t))) = self.timers.peek().copied() {
            if at > self.now {
                break;
            }
            self.timers.pop();
            if !self.timer_live(&t) {
                continue;
            }
            match t {
                Timer::Ring { call, .. } => self.on_ring_timeout(call),
                Timer::MaxWait { call, .. } => self.on_max_wait(call, false),
                Timer::NoAgents { call, .. } => self.on_max_wait(call, true),
                Timer::WrapUp { agent, .. } => self.on_wrap_up_end(agent),
                Timer::DesktopGrace { agent, .. } => self.on_desktop_grace_end(agent),
                Timer::InterDigit { station, .. } => self.on_inter_digit_timeout(station),
                Timer::Announce { call, gen } => self.on_announce(call, gen),
                Timer::CallbackOffer { call, .. } => self.on_callback_offer(call),
                Timer::AgentWait { call, .. } => self.on_agent_wait_over(call),
            }
        }
    }

    /// Drop cancelled timers from the top so `next_deadline` does not wake for nothing.
    fn prune_timers(&mut self) {
        while let Some(Reverse((_, _, t))) = self.timers.peek() {
            if self.timer_live(t) {
                break;
            }
            self.timers.pop();
        }
    }

    fn on_card_event(&mut self, ev: EventKind) {
        match ev {
            EventKind::Offered { ch, ani, dnis, .. } => self.on_offered(ch, ani, dnis),
            EventKind::Alerting { ch } => self.on_trunk_alerting(ch),
            EventKind::Answered { ch } => self.on_trunk_answered(ch),
            EventKind::Released { ch, cause, by } => self.on_released(ch, cause, by),
            EventKind::OffHook { ch } => self.with_station(ch, Self::on_off_hook),
            EventKind::OnHook { ch } => self.with_station(ch, Self::on_on_hook),
            EventKind::HookFlash { ch } => self.with_station(ch, Self::on_hook_flash),
            EventKind::Digit { ch, digit, .. } => {
                if let Some(&s) = self.station_by_ch.get(&ch) {
                    self.on_station_digit(s, digit);
                } else {
                    self.on_trunk_digit(ch, digit);
                }
            }
            EventKind::Blocked { ch, .. } => self.set_blocked(ch, true),
            EventKind::Unblocked { ch } => self.set_blocked(ch, false),
            EventKind::SpanAlarm { card, span, alarm, raised } => self.span_alarm(card, span, alarm, raised),
            // Tones, plays and taps carry no call logic here: the IVR and the recorder
            // consume them.
            _ => {}
        }
    }

    fn with_station(&mut self, ch: ChannelId, f: fn(&mut Self, StationIx)) {
        if let Some(&s) = self.station_by_ch.get(&ch) {
            f(self, s);
        }
    }

    fn set_blocked(&mut self, ch: ChannelId, blocked: bool) {
        let Some(t) = self.trunks.get_mut(&ch) else { return };
        t.blocked = blocked;
        self.refresh_free(ch);
    }

    /// Keep a trunk in its group's free list exactly when it can take a new call.
    fn refresh_free(&mut self, ch: ChannelId) {
        let Some(t) = self.trunks.get(&ch) else { return };
        let Some(g) = t.group else { return };
        if t.usable() {
            self.free_trunks[g as usize].insert(ch);
        } else {
            self.free_trunks[g as usize].remove(&ch);
        }
    }

    /// A span alarm raised or cleared: the span's channels leave outbound selection
    /// while any alarm stands (the card may or may not also report them Blocked).
    fn span_alarm(&mut self, card: u16, span: u8, alarm: hotline_drivers::event::Alarm, raised: bool) {
        let alarms = self.span_alarms.entry((card, span)).or_default();
        if raised {
            if !alarms.contains(&alarm) {
                alarms.push(alarm);
            }
        } else {
            alarms.retain(|&a| a != alarm);
        }
        let down = !alarms.is_empty();
        if !down {
            self.span_alarms.remove(&(card, span));
        }
        let on_span: Vec<ChannelId> = self
            .trunks
            .keys()
            .filter(|c| {
                c.card == card
                    && matches!(c.addr, hotline_drivers::ChannelAddr::E1 { span: s, .. } if s == span)
            })
            .copied()
            .collect();
        for ch in on_span {
            self.trunks.get_mut(&ch).expect("listed").alarm = down;
            self.refresh_free(ch);
        }
    }

    fn on_released(&mut self, ch: ChannelId, cause: hotline_drivers::Cause, _by: Side) {
        let Some(t) = self.trunks.get_mut(&ch) else { return };
        let call = t.call.take();
        t.releasing = false;
        self.refresh_free(ch);
        self.playing.remove(&ch);
        if let Some(call) = call {
            self.party_left(call, &crate::csta::DeviceId::Trunk(ch), cause, false);
        }
    }

    fn command_failed(&mut self, command: Command, kind: hotline_drivers::ErrorKind) {
        use hotline_drivers::{Cause, ErrorKind};
        match command {
            Command::PlaceCall { ch, called, calling, category } => {
                let Some(t) = self.trunks.get_mut(&ch) else { return };
                let Some(call) = t.call.take() else { return };
                // A blocked channel stays out of the free list until unblocked.
                if kind == ErrorKind::Blocked {
                    t.blocked = true;
                }
                let group = t.group;
                self.refresh_free(ch);
                // Blocked, or busy in the card's view (a seizure crossing ours): try
                // another free channel of the group, one this call has not been refused.
                if let (Some(g), ErrorKind::Blocked | ErrorKind::InvalidState) = (group, kind) {
                    let c = self.calls.get_mut(&call).expect("a trunk's call exists");
                    c.refused_trunks.push(ch);
                    let next =
                        self.free_trunks[g as usize].iter().find(|n| !c.refused_trunks.contains(n)).copied();
                    if let Some(next) = next {
                        if let Some(p) = c.parties.iter_mut().find(|p| p.ch == Some(ch)) {
                            p.ch = Some(next);
                            p.device = crate::csta::DeviceId::Trunk(next);
                        }
                        self.take_trunk(next, call);
                        return self.cmd(Command::PlaceCall { ch: next, called, calling, category });
                    }
                }
                let cause = match kind {
                    // Every channel of the group refused or taken: no circuit.
                    ErrorKind::Blocked | ErrorKind::InvalidState | ErrorKind::Resource => {
                        Cause::NO_CIRCUIT_AVAILABLE
                    }
                    _ => Cause::TEMPORARY_FAILURE,
                };
                self.party_left(call, &crate::csta::DeviceId::Trunk(ch), cause, true);
            }
            Command::RingStation { ch, .. } => {
                let Some(&s) = self.station_by_ch.get(&ch) else { return };
                let station::StationMode::Ringing { call } = self.stations[s as usize].mode else { return };
                match self.calls.get(&call).map(|c| c.stage) {
                    Some(Stage::Offering(_, a)) => {
                        // Give the call to the next agent and keep this phone out of it.
                        self.on_ring_timeout(call);
                        if self.agents[a as usize].state == AgentState::Ready {
                            self.set_agent_state(a, AgentState::NotReady("station unavailable".into()));
                        }
                    }
                    Some(_) => {
                        let dev = crate::csta::DeviceId::Station(self.stations[s as usize].ext.clone());
                        self.stations[s as usize].mode = station::StationMode::Idle;
                        self.party_left(call, &dev, Cause::DESTINATION_OUT_OF_ORDER, true);
                    }
                    None => {}
                }
            }
            Command::Answer { ch } => {
                if let Some(call) = self.trunks.get(&ch).and_then(|t| t.call) {
                    self.clear_call(call, Cause::TEMPORARY_FAILURE);
                }
            }
            // Bus, play and tap failures leave the call as it is; the runtime logs them.
            _ => {}
        }
    }

    fn ivr_done(&mut self, call: CallId, next: &str, data: BTreeMap<String, String>) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.stage != Stage::HandedOff {
            return;
        }
        // Who transferred the call in is read before the IVR's variables land, so a
        // flow variable cannot redirect "back".
        let from_agent = c.data.get(IVR_FROM_AGENT).cloned();
        for (k, v) in data {
            // Variables the IVR was started with may already carry the prefix.
            let key = if k.starts_with(IVR_PREFIX) { k } else { format!("{IVR_PREFIX}{k}") };
            c.data.insert(key, v);
        }
        let next = match (next, from_agent, c.queue) {
            ("agent:back" | "return", Some(agent), _) => format!("agent:{agent}"),
            ("agent:back" | "return", None, Some(q)) => {
                format!("queue:{}", self.queues[q as usize].conf.name)
            }
            _ => next.to_string(),
        };
        match crate::config::parse_target(&next, |n| self.queue_by_name.get(n).map(|&q| q as usize)) {
            Ok(Target::Agent(id)) if !self.agent_by_id.contains_key(&id) => {
                self.clear_call(call, hotline_drivers::Cause::NORMAL_UNSPECIFIED)
            }
            Ok(target) => {
                self.calls.get_mut(&call).expect("checked").stage = Stage::Active;
                self.send_to_target(call, None, target);
            }
            Err(_) => self.clear_call(call, hotline_drivers::Cause::NORMAL_UNSPECIFIED),
        }
    }

    /// Each access number now: whether it is open and where its calls go (the terminal
    /// summary and the wallboard show it).
    pub fn access_now(&self) -> Vec<AccessNow> {
        (0..self.cfg.access_numbers.len())
            .map(|i| {
                let (target, open) = self.route_now(i);
                AccessNow {
                    dnis: self.cfg.access_numbers[i].dnis.clone(),
                    open,
                    target: target_text(&self.cfg, &target),
                }
            })
            .collect()
    }

    /// Where an access number's calls go now, and whether it is open: a number with
    /// schedules is open while one of them is; on a holiday (with a holiday target) or
    /// when no schedule is open it is closed; a number without schedules is always open.
    fn route_now(&self, access: usize) -> (Target, bool) {
        let a = &self.cfg.access_numbers[access];
        let Some((at, unix)) = self.wall else {
            return (a.routes.first().map(|r| r.1.clone()).unwrap_or_else(|| a.target.clone()), true);
        };
        let secs = unix
            + (self.now.as_micros() as i64 - at.as_micros() as i64) / 1_000_000
            + i64::from(self.cfg.utc_offset_secs);
        let days = secs.div_euclid(86_400);
        let minute = (secs.rem_euclid(86_400) / 60) as u32;
        let date = civil_from_days(days);
        if let Some(t) = &a.holiday_target {
            if self.cfg.holidays.iter().any(|h| h.date == date) {
                return (t.clone(), false);
            }
        }
        // 1970-01-01 was a Thursday: Monday-first index 3.
        let weekday = (days + 3).rem_euclid(7) as usize;
        for (si, t) in &a.routes {
            let s = &self.cfg.schedules[*si];
            if s.days[weekday] && s.hours.iter().any(|&(from, to)| (from..to).contains(&minute)) {
                return (t.clone(), true);
            }
        }
        (a.target.clone(), a.routes.is_empty())
    }
}

/// An access number at one moment ([`Engine::access_now`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccessNow {
    pub dnis: String,
    pub open: bool,
    /// Where its calls go now, as written in the configuration (`ivr:main`, `queue:billing`).
    pub target: String,
}

/// A target as the configuration writes it.
fn target_text(cfg: &Config, t: &Target) -> String {
    match t {
        Target::Queue(q) => format!("queue:{}", cfg.queues.get(*q).map_or("?", |q| q.name.as_str())),
        Target::Ivr(f) => format!("ivr:{f}"),
        Target::Voicemail(b) => format!("voicemail:{b}"),
        Target::External(n) => format!("external:{n}"),
        Target::HangUp(c) => format!("hangup:{}", c.0),
        Target::Agent(a) => format!("agent:{a}"),
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (the well-known
/// era-based conversion).
pub(crate) fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn day_counts_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_759), (2026, 11, 2));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
