//! The ACD: queues, agents, and the indexes that make a routing decision O(log n).
//!
//! Each queue keeps a `BTreeSet` of its ready agents ordered by a [`ReadyKey`]: the
//! level rank (when the queue prefers higher levels), then the strategy's order (idle
//! since, last offer, answered count, or a random draw), then the agent. The first
//! element is the choice. Queues that prefer the caller's location keep one such set
//! per location as well. An agent's keys are computed when they become ready and kept
//! until they leave ready, so removal finds them. Waiting calls sit in a `BTreeMap`
//! keyed by (class, arrival): missed calls returned to the head, then VIPs, then
//! everyone else, first come first served within each class.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use hotline_drivers::command::PlaySource;
use hotline_drivers::signal::{CallerId, Tone};

use super::station::Playing;
use super::{AgentIx, CallId, Engine, Output, QueueIx, Stage, StationIx, Timer};
use crate::config::{QueueConf, Strategy, Target};
use crate::csta::{
    AgentEventKind, AgentState, Announcement, ConnectionState, CstaEvent, DeviceId, EventCause, Record,
};

/// A ready agent's place in a queue's order: (level rank, strategy order, agent).
pub type ReadyKey = (u8, u64, u32);

#[derive(Clone, Debug)]
pub(crate) struct Membership {
    pub queue: QueueIx,
    pub level: u8,
    pub answered: u64,
    /// The key the agent sits under in the queue's ready set, while ready.
    pub key: Option<ReadyKey>,
}

#[derive(Clone, Debug)]
pub(crate) struct Agent {
    pub id: String,
    pub name: String,
    pub password: Option<String>,
    pub location: Option<u32>,
    pub memberships: Vec<Membership>,
    pub supervisor: bool,
    pub state: AgentState,
    pub since: Instant,
    pub station: Option<StationIx>,
    pub idle_since: Instant,
    pub last_offer: u64,
    pub misses: u32,
    /// The ACD call ringing or connected at the agent.
    pub call: Option<CallId>,
    /// Not ready asked for while busy: applied when the call ends.
    pub pending_not_ready: Option<String>,
    pub wrap_gen: u64,
    /// The desktop (client) the agent logged in from, while connected.
    pub client: Option<super::ClientId>,
    /// Generation of the desktop grace timer while the desktop is away.
    pub grace_gen: u64,
    /// Logout asked for during a call: done when it ends.
    pub pending_logout: bool,
    /// The end of the minimum after-call work of the last call.
    pub ready_not_before: Instant,
    /// Calls sent to this agent in particular (`agent:ID`), oldest first, waiting for
    /// them to be ready.
    pub awaiting: std::collections::VecDeque<CallId>,
}

use hotline_drivers::Instant;

impl Agent {
    pub fn new(
        id: String,
        name: String,
        password: Option<String>,
        location: Option<u32>,
        memberships: Vec<Membership>,
    ) -> Agent {
        Agent {
            id,
            name,
            password,
            location,
            memberships,
            supervisor: false,
            state: AgentState::LoggedOut,
            since: Instant::ZERO,
            station: None,
            idle_since: Instant::ZERO,
            last_offer: 0,
            misses: 0,
            call: None,
            pending_not_ready: None,
            wrap_gen: 0,
            client: None,
            grace_gen: 0,
            pending_logout: false,
            ready_not_before: Instant::ZERO,
            awaiting: std::collections::VecDeque::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Queue {
    pub conf: QueueConf,
    pub ready: BTreeSet<ReadyKey>,
    pub ready_by_location: HashMap<u32, BTreeSet<ReadyKey>>,
    pub waiting: BTreeMap<(u8, u64), CallId>,
    pub logged_in: u32,
    /// Average handle time (moving average), for expected-wait announcements.
    pub avg_handle: Duration,
}

impl Queue {
    pub fn new(conf: QueueConf) -> Queue {
        Queue {
            conf,
            ready: BTreeSet::new(),
            ready_by_location: HashMap::new(),
            waiting: BTreeMap::new(),
            logged_in: 0,
            avg_handle: Duration::from_secs(120),
        }
    }
}

/// Line classes: a missed call goes back ahead of everyone, then VIPs, then callers
/// by priority (the IVR queue node's `priority`: higher first; 0, the default, is
/// `CLASS_NORMAL`), oldest first within a class.
const CLASS_RETURNED: u8 = 0;
const CLASS_VIP: u8 = 1;
const CLASS_NORMAL: u8 = 128;

/// The call data key the IVR's queue node sets (`priority`, kept under `ivr.`).
const PRIORITY_KEY: &str = "ivr.priority";

/// The line class of a caller of this priority (clamped to the classes there are).
fn priority_class(priority: i64) -> u8 {
    (i64::from(CLASS_NORMAL) - priority.clamp(-125, 125)) as u8
}

impl Engine {
    fn ready_key(&mut self, a: AgentIx, m: usize) -> ReadyKey {
        let agent = &self.agents[a as usize];
        let mem = &agent.memberships[m];
        let q = &self.queues[mem.queue as usize].conf;
        let rank = if q.prefer.higher_level { 9 - mem.level } else { 0 };
        let order = match q.strategy {
            Strategy::LongestIdle => agent.idle_since.as_micros(),
            Strategy::RoundRobin => agent.last_offer,
            // Fewest answered, then longest idle among equals (ms fit in 40 bits).
            Strategy::FewestAnswered => {
                (mem.answered << 40) | (agent.idle_since.as_millis() & ((1 << 40) - 1))
            }
            Strategy::Random => self.random(),
        };
        (rank, order, a)
    }

    /// Put the agent into (or take them out of) every ready set of their queues.
    fn index_ready(&mut self, a: AgentIx, ready: bool) {
        let loc = self.agents[a as usize].location;
        for m in 0..self.agents[a as usize].memberships.len() {
            let qi = self.agents[a as usize].memberships[m].queue as usize;
            if let Some(old) = self.agents[a as usize].memberships[m].key.take() {
                self.queues[qi].ready.remove(&old);
                if let Some(l) = loc {
                    if let Some(set) = self.queues[qi].ready_by_location.get_mut(&l) {
                        set.remove(&old);
                    }
                }
            }
            if ready {
                let key = self.ready_key(a, m);
                self.agents[a as usize].memberships[m].key = Some(key);
                let q = &mut self.queues[qi];
                q.ready.insert(key);
                if let (Some(l), true) = (loc, q.conf.prefer.location) {
                    q.ready_by_location.entry(l).or_default().insert(key);
                }
            }
        }
    }

    /// Change an agent's state: close the old interval (a record), keep the indexes and
    /// logged-in counts right, report it, and give a newly ready agent waiting work.
    pub(crate) fn set_agent_state(&mut self, a: AgentIx, state: AgentState) {
        let now = self.now;
        let agent = &mut self.agents[a as usize];
        let old = std::mem::replace(&mut agent.state, state.clone());
        let from = std::mem::replace(&mut agent.since, now);
        if old != AgentState::LoggedOut || from != Instant::ZERO {
            self.out.push_back(Output::Record(Record::AgentState {
                agent: agent.id.clone(),
                state: old.clone(),
                from,
                to: now,
            }));
        }
        let was_ready = old == AgentState::Ready;
        let is_ready = state == AgentState::Ready;
        if was_ready || is_ready {
            self.index_ready(a, is_ready);
        }
        if (old == AgentState::LoggedOut) != (state == AgentState::LoggedOut) {
            let delta: i64 = if state == AgentState::LoggedOut { -1 } else { 1 };
            for m in 0..self.agents[a as usize].memberships.len() {
                let qi = self.agents[a as usize].memberships[m].queue as usize;
                self.queues[qi].logged_in = (i64::from(self.queues[qi].logged_in) + delta) as u32;
            }
        }
        let id = self.agents[a as usize].id.clone();
        let kind = match &state {
            AgentState::Ready => Some(AgentEventKind::Ready),
            AgentState::NotReady(r) => Some(AgentEventKind::NotReady { reason: r.clone() }),
            AgentState::WorkingAfterCall => Some(AgentEventKind::WorkingAfterCall),
            AgentState::LoggedOut => Some(AgentEventKind::LoggedOff),
            AgentState::Ringing | AgentState::Busy => None,
        };
        if let Some(kind) = kind {
            self.emit(CstaEvent::Agent { agent: id, kind });
        }
        if is_ready {
            self.serve_from_queues(a);
        }
    }

    /// A newly ready agent takes the oldest call sent to them in particular, else the
    /// oldest head-of-line call among their queues.
    fn serve_from_queues(&mut self, a: AgentIx) {
        if let Some(&call) = self.agents[a as usize].awaiting.front() {
            let home = self.agents[a as usize].memberships.first().map(|m| m.queue);
            if let (Some(q), Some(_)) = (home, self.agents[a as usize].station) {
                self.agents[a as usize].awaiting.pop_front();
                if let Some(c) = self.calls.get_mut(&call) {
                    c.wait_gen = 0;
                }
                // `offer` makes the agent not ready instead when the phone cannot ring;
                // the call then goes to the queue rather than wait on a broken phone.
                self.offer(q, call, a);
                if self.calls.get(&call).is_some_and(|c| c.stage == Stage::Awaiting(a)) {
                    self.calls.get_mut(&call).expect("checked").stage = Stage::Active;
                    self.enqueue(call, q, EventCause::Overflow);
                }
                return;
            }
        }
        loop {
            if self.agents[a as usize].state != AgentState::Ready {
                return;
            }
            let mut best: Option<((u8, u64), QueueIx)> = None;
            for m in &self.agents[a as usize].memberships {
                if let Some((&line, _)) = self.queues[m.queue as usize].waiting.first_key_value() {
                    if best.map_or(true, |(b, _)| line < b) {
                        best = Some((line, m.queue));
                    }
                }
            }
            let Some((_, q)) = best else { return };
            let before = self.queues[q as usize].waiting.len();
            self.dispatch(q);
            if self.queues[q as usize].waiting.len() == before {
                return;
            }
        }
    }

    /// Offer waiting calls of a queue to its ready agents while both exist.
    pub(crate) fn dispatch(&mut self, q: QueueIx) {
        while let Some((_, &call)) = self.queues[q as usize].waiting.first_key_value() {
            let Some(agent) = self.pick_agent(q, call) else { return };
            self.offer(q, call, agent);
        }
    }

    fn ready_in(&self, a: AgentIx, q: QueueIx) -> bool {
        let agent = &self.agents[a as usize];
        agent.state == AgentState::Ready && agent.memberships.iter().any(|m| m.queue == q && m.key.is_some())
    }

    /// The routing decision for a call: see [`Engine::choose`].
    pub(crate) fn pick_agent(&self, q: QueueIx, call: CallId) -> Option<AgentIx> {
        let c = &self.calls[&call];
        self.choose(q, c.ani.as_deref(), c.location, &c.tried)
    }

    /// The routing decision: preferences first (dedicated agent, last agent, location),
    /// then the strategy's order. Agents in `tried` (who let this call ring out) are
    /// passed over while anyone else is ready. At most `tried.len()` entries are
    /// skipped, so this stays O(log n).
    pub(crate) fn choose(
        &self,
        q: QueueIx,
        ani: Option<&str>,
        location: Option<u32>,
        tried: &[AgentIx],
    ) -> Option<AgentIx> {
        let queue = &self.queues[q as usize];
        let prefer = queue.conf.prefer;
        let fresh = |a: AgentIx| !tried.contains(&a);
        if let Some(ani) = ani {
            if prefer.dedicated_agent {
                if let Some(&a) = self.dedicated.get(ani) {
                    if self.ready_in(a, q) && fresh(a) {
                        return Some(a);
                    }
                }
            }
            if prefer.last_agent {
                if let Some(&a) = self.last_agent.get(ani) {
                    if self.ready_in(a, q) && fresh(a) {
                        return Some(a);
                    }
                }
            }
        }
        if let (true, Some(loc)) = (prefer.location, location) {
            if let Some(set) = queue.ready_by_location.get(&loc) {
                if let Some(&(_, _, a)) = set.iter().find(|k| fresh(k.2)) {
                    return Some(a);
                }
            }
        }
        queue.ready.iter().find(|k| fresh(k.2)).or_else(|| queue.ready.first()).map(|k| k.2)
    }

    /// Ring the agent's station with the call.
    fn offer(&mut self, q: QueueIx, call: CallId, a: AgentIx) {
        let station = self.agents[a as usize].station.expect("ready agents have a station");
        if !self.station_alertable(station) {
            // The phone is in use outside the ACD (dialling, a fault): take the agent
            // out of distribution rather than ring a phone that cannot ring.
            return self.set_agent_state(a, AgentState::NotReady("station unavailable".into()));
        }
        let line = self.calls[&call].line;
        self.queues[q as usize].waiting.remove(&line);
        self.seq_offer(a);
        self.agents[a as usize].call = Some(call);
        self.set_agent_state(a, AgentState::Ringing);
        let ring_timeout = self.queues[q as usize].conf.ring_timeout;
        let gen = self.fresh_gen();
        let c = self.calls.get_mut(&call).expect("queued call exists");
        c.stage = Stage::Offering(q, a);
        c.tried.push(a);
        c.ring_gen = gen;
        let caller = c.ani.clone();
        let dnis = c.dnis.clone();
        let at = self.now + ring_timeout;
        self.arm(at, Timer::Ring { call, gen });
        self.alert_station(station, call, CallerId { number: caller.clone(), ..CallerId::default() });
        let ext = self.stations[station as usize].ext.clone();
        self.emit(CstaEvent::Delivered {
            call,
            alerting: DeviceId::Station(ext),
            calling: caller.unwrap_or_default(),
            called: dnis,
            cause: EventCause::Distributed,
        });
    }

    fn seq_offer(&mut self, a: AgentIx) {
        self.line_seq += 1;
        self.agents[a as usize].last_offer = self.line_seq;
    }

    /// Put a call in a queue, applying the queue's length and no-agent limits.
    pub(crate) fn enqueue(&mut self, call: CallId, q: QueueIx, cause: EventCause) {
        let qc = &self.queues[q as usize].conf;
        if let Some((max, target)) = &qc.max_length {
            if self.queues[q as usize].waiting.len() >= *max {
                let target = target.clone();
                return self.overflow(call, q, target);
            }
        }
        let no_agents = (self.queues[q as usize].logged_in == 0).then(|| qc.no_agents.clone()).flatten();
        if let Some((wait, target)) = &no_agents {
            if wait.is_zero() {
                return self.overflow(call, q, target.clone());
            }
        }
        let max_wait = qc.max_wait.as_ref().map(|m| m.0);
        let music = qc.music.clone();
        let vip = {
            let c = &self.calls[&call];
            c.vip
                || c.ani
                    .as_ref()
                    .and_then(|n| self.cfg.vips.get(n))
                    .is_some_and(|qs| qs.is_empty() || qs.contains(&(q as usize)))
        };
        self.line_seq += 1;
        let seq = self.line_seq;
        let gen = self.fresh_gen();
        let now = self.now;
        let c = self.calls.get_mut(&call).expect("call exists");
        c.stage = Stage::Queued(q);
        c.queue = Some(q);
        let priority = c.data.get(PRIORITY_KEY).and_then(|p| p.trim().parse::<i64>().ok()).unwrap_or(0);
        c.line = (if vip { CLASS_VIP } else { priority_class(priority) }, seq);
        c.queued_at = Some(now);
        c.tried.clear();
        c.wait_gen = gen;
        let line = c.line;
        // Both limits may be armed; whichever acts first cancels the other (wait_gen).
        if let Some(w) = max_wait {
            self.arm(now + w, Timer::MaxWait { call, gen });
        }
        if let Some((w, _)) = no_agents {
            self.arm(now + w, Timer::NoAgents { call, gen });
        }
        let qc = &self.queues[q as usize].conf;
        let (every, offer) = (qc.announce_every, qc.callback_offer_after);
        let offered = self.calls[&call].callback_offered;
        if every.is_some() || (offer.is_some() && !offered) {
            let agen = self.fresh_gen();
            self.calls.get_mut(&call).expect("call exists").announce_gen = agen;
            if let Some(e) = every {
                self.arm(now + e, Timer::Announce { call, gen: agen });
            }
            if let (Some(o), false) = (offer, offered) {
                self.arm(now + o, Timer::CallbackOffer { call, gen: agen });
            }
        }
        let waiting = &mut self.queues[q as usize].waiting;
        waiting.insert(line, call);
        // Usually the newcomer is last in line; otherwise count those ahead of it.
        let last = waiting.last_key_value().map(|(l, _)| *l) == Some(line);
        let position = if last { waiting.len() } else { waiting.range(..=line).count() };
        let name = self.queues[q as usize].conf.name.clone();
        let (calling, called) = self.call_numbers(call);
        self.emit(CstaEvent::Queued { call, queue: name, position, cause, calling, called });
        self.start_music(call, music);
        self.dispatch(q);
    }

    /// Periodic position and expected-wait announcement for a waiting caller.
    pub(crate) fn on_announce(&mut self, call: CallId, gen: u64) {
        let Some(c) = self.calls.get(&call) else { return };
        let q = match c.stage {
            Stage::Queued(q) | Stage::Offering(q, _) => q,
            _ => return,
        };
        let Some(every) = self.queues[q as usize].conf.announce_every else { return };
        if let (Stage::Queued(_), Some(ch)) = (c.stage, c.parties.first().and_then(|p| p.ch)) {
            let queue = &self.queues[q as usize];
            let position = queue.waiting.range(..=c.line).count();
            let agents = queue.logged_in.max(1);
            let expected_wait = queue.avg_handle * position as u32 / agents;
            self.announce(Announcement::Position { call, ch, position, expected_wait });
        }
        self.arm(self.now + every, Timer::Announce { call, gen });
    }

    pub(crate) fn on_callback_offer(&mut self, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let (Stage::Queued(_), Some(ch)) = (c.stage, c.parties.first().and_then(|p| p.ch)) else { return };
        c.callback_offered = true;
        self.announce(Announcement::CallbackOffer { call, ch });
    }

    /// A digit from a trunk: a waiting caller taking the callback offer.
    pub(crate) fn on_trunk_digit(&mut self, ch: hotline_drivers::ChannelId, digit: char) {
        let Some(call) = self.trunks.get(&ch).and_then(|t| t.call) else { return };
        let c = &self.calls[&call];
        let Stage::Queued(q) = c.stage else { return };
        if !c.callback_offered || digit != '1' || c.parties.first().and_then(|p| p.ch) != Some(ch) {
            return;
        }
        let record = Record::Callback {
            call,
            number: c.ani.clone(),
            queue: self.queues[q as usize].conf.name.clone(),
            at: self.now,
        };
        self.out.push_back(Output::Record(record));
        self.data(call, "callback", "requested");
        self.clear_call(call, hotline_drivers::Cause::NORMAL_CLEARING);
    }

    /// Play the queue's music (or ringback) to the waiting caller.
    fn start_music(&mut self, call: CallId, music: Option<String>) {
        let Some(c) = self.calls.get(&call) else { return };
        let Some(ch) = c.parties.iter().find(|p| p.state == ConnectionState::Connected).and_then(|p| p.ch)
        else {
            return;
        };
        let playing = match music {
            Some(path) => Playing::Prompt(path),
            None => Playing::Tone(Tone::Ringback),
        };
        self.set_play(ch, Some(playing));
    }

    /// Take a call out of its queue, or back from the agent it rings, and make it
    /// active; returns the queue it was in.
    pub(crate) fn withdraw(&mut self, call: CallId) -> Option<QueueIx> {
        let c = self.calls.get_mut(&call)?;
        let (stage, line) = (c.stage, c.line);
        c.stage = Stage::Active;
        c.ring_gen = 0;
        c.wait_gen = 0;
        match stage {
            Stage::Queued(q) => {
                self.queues[q as usize].waiting.remove(&line);
                Some(q)
            }
            Stage::Offering(q, a) => {
                if let Some(st) = self.agents[a as usize].station {
                    self.unalert_station(st, call);
                }
                self.agent_call_ended(a, call);
                Some(q)
            }
            Stage::Awaiting(a) => {
                self.agents[a as usize].awaiting.retain(|&x| x != call);
                None
            }
            _ => None,
        }
    }

    /// A queued call's wait limit passed.
    pub(crate) fn on_max_wait(&mut self, call: CallId, no_agents: bool) {
        let Some(c) = self.calls.get(&call) else { return };
        let Stage::Queued(q) = c.stage else { return };
        let qc = &self.queues[q as usize].conf;
        let target = if no_agents {
            if self.queues[q as usize].logged_in > 0 {
                return;
            }
            qc.no_agents.as_ref().map(|x| x.1.clone())
        } else {
            qc.max_wait.as_ref().map(|x| x.1.clone())
        };
        if let Some(t) = target {
            let line = c.line;
            self.queues[q as usize].waiting.remove(&line);
            self.overflow(call, q, t);
        }
    }

    /// Send a call that cannot wait in `q` to the queue's overflow target.
    fn overflow(&mut self, call: CallId, q: QueueIx, target: Target) {
        let from = DeviceId::Queue(self.queues[q as usize].conf.name.clone());
        if let Some(c) = self.calls.get_mut(&call) {
            c.wait_gen = 0;
        }
        self.send_to_target(call, Some(from), target);
    }

    /// Route a call to a target: a queue, an IVR flow, voicemail, an external number,
    /// or a hang-up.
    pub(crate) fn send_to_target(&mut self, call: CallId, from: Option<DeviceId>, target: Target) {
        match target {
            Target::Queue(next) => {
                let to = DeviceId::Queue(self.queues[next].conf.name.clone());
                let cause = match from {
                    Some(from) => {
                        self.emit(CstaEvent::Diverted { call, from, to, cause: EventCause::Overflow });
                        EventCause::Overflow
                    }
                    None => EventCause::NewCall,
                };
                self.enqueue(call, next as QueueIx, cause);
            }
            Target::Ivr(_) | Target::Voicemail(_) => {
                // The engine hands the call off and keeps it until the IVR gives it back
                // (Input::IvrDone) or the caller hangs up.
                let flow = match target {
                    Target::Voicemail(mailbox) => format!("voicemail:{mailbox}"),
                    Target::Ivr(flow) => flow,
                    _ => unreachable!("matched above"),
                };
                if let Some(c) = self.calls.get_mut(&call) {
                    c.stage = Stage::HandedOff;
                }
                let ch = self.caller_channel(call);
                if let Some(ch) = ch {
                    self.set_play(ch, None);
                }
                self.emit(CstaEvent::HandedOff { call, to: DeviceId::Ivr(flow), ch });
            }
            Target::External(number) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.stage = Stage::Active;
                }
                if let Some(ch) = self.caller_channel(call) {
                    self.set_play(ch, Some(Playing::Tone(Tone::Ringback)));
                }
                let dialled = match from {
                    // A queue limit sends the caller outside: the call is diverted there
                    // (the queue did not answer it), whoever picks up.
                    Some(from) => self.dial_external_via(call, &number, None, false).map(|ch| {
                        let to = DeviceId::Trunk(ch);
                        self.emit(CstaEvent::Diverted { call, from, to, cause: EventCause::Overflow });
                    }),
                    None => self.dial_external(call, &number).map(|_| ()),
                };
                if let Err(cause) = dialled {
                    self.clear_call(call, cause);
                }
            }
            Target::HangUp(cause) => self.clear_call(call, cause),
            Target::Agent(id) => self.offer_to_agent(call, from, &id),
        }
    }

    /// Offer a call to one agent: ring them when ready; wait for them (in their own
    /// line, with their first queue's music) while they are logged in but busy or not
    /// ready, for up to `agent_wait`; otherwise, or once the wait is over, their first
    /// queue takes the call. A ring with no answer returns it to that queue as well.
    fn offer_to_agent(&mut self, call: CallId, from: Option<DeviceId>, id: &str) {
        let Some(&a) = self.agent_by_id.get(id) else {
            return self.clear_call(call, hotline_drivers::Cause::NORMAL_UNSPECIFIED);
        };
        // The agent's first queue answers for them: ring timeout, wrap-up, overflow.
        let Some(home) = self.agents[a as usize].memberships.first().map(|m| m.queue) else {
            return self.clear_call(call, hotline_drivers::Cause::NORMAL_UNSPECIFIED);
        };
        self.line_seq += 1;
        let seq = self.line_seq;
        let now = self.now;
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.stage = Stage::Active;
        c.queue = Some(home);
        c.tried.clear();
        c.queued_at = Some(now);
        // Should the agent miss it, it heads the queue: the caller has waited already.
        c.line = (CLASS_RETURNED, seq);
        let agent = &self.agents[a as usize];
        let ringable = agent.station.is_some_and(|s| self.station_alertable(s));
        if let Some(from) = from.clone() {
            if let Some(st) = agent.station {
                let to = DeviceId::Station(self.stations[st as usize].ext.clone());
                self.emit(CstaEvent::Diverted { call, from, to, cause: EventCause::Overflow });
            }
        }
        let agent = &self.agents[a as usize];
        if agent.state == AgentState::Ready && ringable {
            return self.offer(home, call, a);
        }
        let wait = self.cfg.agent_wait;
        if agent.state == AgentState::LoggedOut || agent.station.is_none() || wait.is_zero() {
            return self.enqueue(call, home, EventCause::Overflow);
        }
        let gen = self.fresh_gen();
        let c = self.calls.get_mut(&call).expect("checked");
        c.stage = Stage::Awaiting(a);
        c.wait_gen = gen;
        self.agents[a as usize].awaiting.push_back(call);
        self.arm(now + wait, Timer::AgentWait { call, gen });
        let music = self.queues[home as usize].conf.music.clone();
        self.start_music(call, music);
    }

    /// A call waited long enough for its one agent (or the agent logged out): the
    /// agent's first queue takes it.
    pub(crate) fn on_agent_wait_over(&mut self, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Stage::Awaiting(a) = c.stage else { return };
        c.stage = Stage::Active;
        c.wait_gen = 0;
        let home = c.queue;
        self.agents[a as usize].awaiting.retain(|&x| x != call);
        let Some(q) = home else {
            return self.clear_call(call, hotline_drivers::Cause::NO_ANSWER);
        };
        if let Some(st) = self.agents[a as usize].station {
            let from = DeviceId::Station(self.stations[st as usize].ext.clone());
            let to = DeviceId::Queue(self.queues[q as usize].conf.name.clone());
            self.emit(CstaEvent::Diverted { call, from, to, cause: EventCause::NoAnswer });
        }
        self.enqueue(call, q, EventCause::NoAnswer);
    }

    pub(crate) fn caller_channel(&self, call: CallId) -> Option<hotline_drivers::ChannelId> {
        self.calls.get(&call)?.parties.first()?.ch
    }

    /// The agent let the call ring out: the call returns to the head of the queue and
    /// the agent is passed over, or made not ready after too many misses.
    pub(crate) fn on_ring_timeout(&mut self, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.ring_gen = 0;
        let Stage::Offering(q, a) = c.stage else {
            // A MakeCall whose own station never answered, or a recall to a phone
            // that hung up with the call on hold.
            let alone = c.parties.len() == 1 && c.parties[0].state == ConnectionState::Alerting;
            if c.pending_dial.is_some() || c.pending_supervise.is_some() || alone {
                self.clear_call(call, hotline_drivers::Cause::NO_ANSWER);
                return;
            }
            let recalled: Vec<DeviceId> = c
                .parties
                .iter()
                .filter(|p| p.state == ConnectionState::Held)
                .filter(|p| {
                    p.ch.and_then(|ch| self.station_by_ch.get(&ch)).is_some_and(|&s| {
                        self.stations[s as usize].mode == super::station::StationMode::Ringing { call }
                    })
                })
                .map(|p| p.device.clone())
                .collect();
            for dev in recalled {
                self.party_left(call, &dev, hotline_drivers::Cause::NO_ANSWER, true);
            }
            return;
        };
        let original = c.line.1;
        let station = self.agents[a as usize].station.expect("agent had a station");
        self.unalert_station(station, call);
        let ext = self.stations[station as usize].ext.clone();
        let qname = self.queues[q as usize].conf.name.clone();
        self.emit(CstaEvent::Diverted {
            call,
            from: DeviceId::Station(ext),
            to: DeviceId::Queue(qname.clone()),
            cause: EventCause::NoAnswer,
        });
        let id = self.agents[a as usize].id.clone();
        self.emit(CstaEvent::Agent { agent: id, kind: AgentEventKind::Missed { call } });

        // Back to the head of the line, keeping its original arrival order.
        let c = self.calls.get_mut(&call).expect("call exists");
        c.stage = Stage::Queued(q);
        c.line = (CLASS_RETURNED, original);
        let line = c.line;
        let waited = c.queued_at.map(|t| self.now - t);
        self.queues[q as usize].waiting.insert(line, call);
        let (calling, called) = self.call_numbers(call);
        self.emit(CstaEvent::Queued {
            call,
            queue: qname,
            position: 1,
            cause: EventCause::Redirected,
            calling,
            called,
        });
        let music = self.queues[q as usize].conf.music.clone();
        self.start_music(call, music);

        let agent = &mut self.agents[a as usize];
        agent.call = None;
        agent.misses += 1;
        let max = self.queues[q as usize].conf.max_misses;
        if max > 0 && agent.misses >= max {
            agent.misses = 0;
            let reason = self.queues[q as usize].conf.missed_reason.clone();
            self.set_agent_state(a, AgentState::NotReady(reason));
        } else {
            // The miss restarts their idle time, so the strategy looks elsewhere first.
            agent.idle_since = self.now;
            self.set_agent_state(a, AgentState::Ready);
        }
        if let (Some(waited), Some((max_wait, target))) =
            (waited, self.queues[q as usize].conf.max_wait.clone())
        {
            if waited >= max_wait && self.queues[q as usize].waiting.contains_key(&line) {
                self.queues[q as usize].waiting.remove(&line);
                return self.overflow(call, q, target);
            }
        }
        self.dispatch(q);
    }

    /// The agent's station answered an ACD call.
    pub(crate) fn acd_answered(&mut self, call: CallId, a: AgentIx) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Stage::Offering(q, _) = c.stage else { return };
        c.stage = Stage::Active;
        c.ring_gen = 0;
        c.wait_gen = 0;
        c.announce_gen = 0;
        c.agent = Some(a);
        let caller_ch = c.parties.first().and_then(|p| p.ch);
        c.answered = Some(self.now);
        if let Some(ani) = c.ani.clone() {
            self.last_agent.insert(ani, a);
        }
        let agent = &mut self.agents[a as usize];
        agent.misses = 0;
        if let Some(m) = agent.memberships.iter_mut().find(|m| m.queue == q) {
            m.answered += 1;
        }
        self.set_agent_state(a, AgentState::Busy);
        if let (true, Some(ch)) = (self.queues[q as usize].conf.announce_agent_number, caller_ch) {
            let agent = self.agents[a as usize].id.clone();
            self.announce(Announcement::AgentNumber { call, ch, agent });
        }
    }

    /// An agent's call ended (or the agent left it): after-call work, then ready.
    /// Nothing happens unless `call` is the agent's call: by the time a caller's
    /// clearing reaches here the agent may already have the next one.
    pub(crate) fn agent_call_ended(&mut self, a: AgentIx, call: CallId) {
        let agent = &mut self.agents[a as usize];
        if agent.call != Some(call) {
            return;
        }
        agent.call = None;
        if agent.pending_logout {
            return self.log_out(a);
        }
        match agent.state {
            AgentState::Ringing => {
                // The caller gave up while it rang: not the agent's miss.
                self.set_agent_state(a, AgentState::Ready);
            }
            AgentState::Busy => {
                let q = self.calls.get(&call).and_then(|c| c.queue).unwrap_or(0);
                let answered = self.calls.get(&call).and_then(|c| c.answered);
                if let (Some(t), Some(queue)) = (answered, self.queues.get_mut(q as usize)) {
                    // A moving average over about the last eight calls.
                    queue.avg_handle = (queue.avg_handle * 7 + (self.now - t)) / 8;
                }
                let wrap = self.queues.get(q as usize).and_then(|q| q.conf.wrap_up);
                self.agents[a as usize].idle_since = self.now;
                let min = self.queues.get(q as usize).map_or(Duration::ZERO, |q| q.conf.min_wrap_up);
                self.agents[a as usize].ready_not_before = self.now + min;
                match wrap.map(|d| d.max(min)) {
                    Some(d) if d.is_zero() => self.after_work_done(a),
                    Some(d) => {
                        let gen = self.fresh_gen();
                        self.agents[a as usize].wrap_gen = gen;
                        self.set_agent_state(a, AgentState::WorkingAfterCall);
                        self.arm(self.now + d, Timer::WrapUp { agent: a, gen });
                    }
                    None => self.set_agent_state(a, AgentState::WorkingAfterCall),
                }
            }
            _ => {}
        }
    }

    pub(crate) fn on_wrap_up_end(&mut self, a: AgentIx) {
        self.agents[a as usize].wrap_gen = 0;
        if self.agents[a as usize].state == AgentState::WorkingAfterCall {
            self.after_work_done(a);
        }
    }

    fn after_work_done(&mut self, a: AgentIx) {
        self.agents[a as usize].idle_since = self.now;
        match self.agents[a as usize].pending_not_ready.take() {
            Some(reason) => self.set_agent_state(a, AgentState::NotReady(reason)),
            None => self.set_agent_state(a, AgentState::Ready),
        }
    }

    /// Log an agent in at a station.
    pub(crate) fn log_in(&mut self, a: AgentIx, station: Option<StationIx>) {
        self.agents[a as usize].station = station;
        if let Some(s) = station {
            self.stations[s as usize].agent = Some(a);
        }
        self.agents[a as usize].idle_since = self.now;
        self.seq_offer(a);
        let ext = station.map(|s| self.stations[s as usize].ext.clone());
        let id = self.agents[a as usize].id.clone();
        self.emit(CstaEvent::Agent { agent: id, kind: AgentEventKind::LoggedOn { station: ext } });
        // Supervisors and station-less logins watch; they take no calls.
        if station.is_some() && !self.agents[a as usize].supervisor {
            self.set_agent_state(a, AgentState::Ready);
        } else {
            self.set_agent_state(a, AgentState::NotReady("watching".into()));
        }
    }

    /// A desktop went away: its agents keep everything for the grace period.
    pub(crate) fn client_gone(&mut self, client: super::ClientId) {
        let grace = self.cfg.desktop_grace;
        for a in 0..self.agents.len() {
            if self.agents[a].client == Some(client) {
                let gen = self.fresh_gen();
                self.agents[a].client = None;
                self.agents[a].grace_gen = gen;
                self.arm(self.now + grace, Timer::DesktopGrace { agent: a as AgentIx, gen });
            }
        }
    }

    /// The grace period ran out with no desktop back: log the agent out (after the
    /// call in progress, if any).
    pub(crate) fn on_desktop_grace_end(&mut self, a: AgentIx) {
        self.agents[a as usize].grace_gen = 0;
        if self.agents[a as usize].state == AgentState::LoggedOut {
            return;
        }
        if self.agents[a as usize].call.is_some() {
            self.agents[a as usize].pending_logout = true;
        } else {
            self.log_out(a);
        }
    }

    pub(crate) fn log_out(&mut self, a: AgentIx) {
        // Calls waiting for this agent in particular stop waiting: their queue takes them.
        let awaiting: Vec<CallId> = self.agents[a as usize].awaiting.iter().copied().collect();
        for call in awaiting {
            self.on_agent_wait_over(call);
        }
        self.agents[a as usize].pending_logout = false;
        self.agents[a as usize].client = None;
        self.agents[a as usize].grace_gen = 0;
        if let Some(s) = self.agents[a as usize].station.take() {
            self.stations[s as usize].agent = None;
        }
        self.agents[a as usize].wrap_gen = 0;
        self.set_agent_state(a, AgentState::LoggedOut);
    }

    /// Ready or not ready on request; a not-ready asked for during a call waits for its end.
    pub(crate) fn request_ready(
        &mut self,
        a: AgentIx,
        ready: Option<String>,
    ) -> Result<(), crate::csta::CstaError> {
        use crate::csta::CstaError;
        let agent = &mut self.agents[a as usize];
        match (&agent.state, ready) {
            (AgentState::LoggedOut, _) => Err(CstaError::InvalidAgentState),
            (AgentState::Ringing | AgentState::Busy, Some(reason)) => {
                agent.pending_not_ready = Some(reason);
                Ok(())
            }
            (AgentState::Ringing | AgentState::Busy, None) => {
                agent.pending_not_ready = None;
                Ok(())
            }
            (_, Some(reason)) => {
                agent.wrap_gen = 0;
                self.set_agent_state(a, AgentState::NotReady(reason));
                Ok(())
            }
            (_, None) if agent.station.is_none() || agent.supervisor => Err(CstaError::InvalidAgentState),
            (AgentState::WorkingAfterCall, None) if self.now < agent.ready_not_before => {
                // Too early: ready once the minimum after-call work is done.
                let at = agent.ready_not_before;
                let gen = self.fresh_gen();
                self.agents[a as usize].wrap_gen = gen;
                self.arm(at, Timer::WrapUp { agent: a, gen });
                Ok(())
            }
            (_, None) => {
                agent.wrap_gen = 0;
                agent.misses = 0;
                if agent.state != AgentState::Ready {
                    self.set_agent_state(a, AgentState::Ready);
                }
                Ok(())
            }
        }
    }

    pub(crate) fn music_source(p: &Playing) -> PlaySource {
        match p {
            Playing::Tone(t) => PlaySource::Tone(*t),
            Playing::Prompt(path) => PlaySource::Prompt(path.into()),
        }
    }
}
