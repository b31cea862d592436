//! The analog phone on an FXS port, as agents expect it to behave: off hook gives dial
//! tone; digits dial an extension, a queue, or an external number after a trunk
//! group's prefix; hook flash during a call holds it and gives dial tone for a
//! consultation, and hanging up then transfers; flash again returns to the held call;
//! hanging up with a call still on hold rings the phone back. Feature codes log the
//! agent in and out and set ready / not ready from the phone alone.

use hotline_drivers::signal::{CallerId, Tone};
use hotline_drivers::{Cause, ChannelId, Command};

use super::{AgentIx, CallId, Dest, Engine, Party, QueueIx, Stage, StationIx, Timer};
use crate::csta::{AgentState, ConnectionState, CstaEvent, DeviceId, EventCause};

/// How long MakeCall rings the calling station before giving up.
const MAKE_CALL_RING: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a phone hung up with a call on hold rings back before giving up.
const RECALL_RING: std::time::Duration = std::time::Duration::from_secs(60);

/// What is playing on a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Playing {
    Tone(Tone),
    Prompt(String),
}

/// What a station is doing. `held` is a call the station holds (a consultation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StationMode {
    /// On hook, nothing happening.
    Idle,
    /// On hook and ringing with a call.
    Ringing { call: CallId },
    /// Off hook and idle with a call offered by a call-waiting tone (a headset agent):
    /// AnswerCall or a hook flash takes it.
    OffHookAlerting { call: CallId },
    /// Off hook, collecting digits (dial tone until the first).
    Dialing { digits: String, held: Option<CallId> },
    /// Off hook in a call (which may still be alerting its far end).
    Talking { call: CallId, held: Option<CallId> },
    /// Off hook with nothing live: the far end left, a dial failed, a feature code
    /// was confirmed. Hears a tone until it hangs up.
    Cut { held: Option<CallId> },
}

impl StationMode {
    pub fn active_call(&self) -> Option<CallId> {
        match *self {
            StationMode::Ringing { call }
            | StationMode::OffHookAlerting { call }
            | StationMode::Talking { call, .. } => Some(call),
            _ => None,
        }
    }
    pub fn held(&self) -> Option<CallId> {
        match *self {
            StationMode::Dialing { held, .. }
            | StationMode::Talking { held, .. }
            | StationMode::Cut { held } => held,
            _ => None,
        }
    }
    /// A call was merged into another: follow it.
    pub fn rename_call(&mut self, from: CallId, to: CallId) {
        let fix = |c: &mut CallId| {
            if *c == from {
                *c = to;
            }
        };
        match self {
            StationMode::Ringing { call } | StationMode::OffHookAlerting { call } => fix(call),
            StationMode::Talking { call, held } => {
                fix(call);
                if let Some(h) = held {
                    fix(h);
                }
            }
            StationMode::Dialing { held: Some(h), .. } | StationMode::Cut { held: Some(h) } => fix(h),
            _ => {}
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Station {
    pub ch: ChannelId,
    pub ext: String,
    pub mode: StationMode,
    pub agent: Option<AgentIx>,
    pub digit_gen: u64,
    /// The phone dialled its own number: ring it back once it hangs up (a test).
    pub loopback: bool,
}

impl Station {
    pub fn new(ch: ChannelId, ext: String) -> Station {
        Station { ch, ext, mode: StationMode::Idle, agent: None, digit_gen: 0, loopback: false }
    }
}

/// What dialled digits reach.
pub(crate) enum Dialled {
    Internal(Dest),
    External { group: usize, number: String },
}

enum Feature {
    Login,
    Logout,
    Ready,
    NotReady,
}

impl Engine {
    fn dev(&self, s: StationIx) -> DeviceId {
        DeviceId::Station(self.stations[s as usize].ext.clone())
    }

    fn set_mode(&mut self, s: StationIx, mode: StationMode) {
        self.stations[s as usize].mode = mode;
        self.station_busy_changed(s);
    }

    /// Calls that are not from a queue still make the agent busy, and free them after.
    fn station_busy_changed(&mut self, s: StationIx) {
        let Some(a) = self.stations[s as usize].agent else { return };
        let mode = &self.stations[s as usize].mode;
        // Dialling a number makes the agent busy; keying a feature code does not.
        let dialling = matches!(mode, StationMode::Dialing { digits, .. }
            if !digits.is_empty() && !self.cfg.is_feature_code(digits));
        // Ringing back for its own held call counts as busy too.
        let recalling = matches!(mode, StationMode::Ringing { call } if self.calls.get(call).is_some_and(|c| {
            c.parties.iter().any(|p| p.ch == Some(self.stations[s as usize].ch) && p.state == ConnectionState::Held)
        }));
        let busy =
            matches!(mode, StationMode::Talking { .. }) || dialling || recalling || mode.held().is_some();
        let agent = &self.agents[a as usize];
        if agent.call.is_some() {
            return;
        }
        match (&agent.state, busy) {
            (AgentState::Ready, true) => self.set_agent_state(a, AgentState::Busy),
            (AgentState::Busy, false) => self.set_agent_state(a, AgentState::Ready),
            _ => {}
        }
    }

    /// Whether a call can be offered to the station now (ringing or a waiting tone).
    pub(crate) fn station_alertable(&self, s: StationIx) -> bool {
        match &self.stations[s as usize].mode {
            StationMode::Idle | StationMode::Cut { held: None } => true,
            StationMode::Dialing { digits, held: None } => digits.is_empty(),
            _ => false,
        }
    }

    pub(crate) fn on_off_hook(&mut self, s: StationIx) {
        match self.stations[s as usize].mode.clone() {
            StationMode::Idle => {
                let ch = self.stations[s as usize].ch;
                self.set_mode(s, StationMode::Dialing { digits: String::new(), held: None });
                self.set_play(ch, Some(Playing::Tone(Tone::Dial)));
            }
            StationMode::Ringing { call } => self.station_answer(s, call),
            _ => {}
        }
        self.station_busy_changed(s);
    }

    pub(crate) fn on_on_hook(&mut self, s: StationIx) {
        let ch = self.stations[s as usize].ch;
        self.stations[s as usize].digit_gen = 0;
        match self.stations[s as usize].mode.clone() {
            StationMode::Idle | StationMode::Ringing { .. } => {}
            StationMode::Dialing { held, .. } | StationMode::Cut { held } => {
                self.set_play(ch, None);
                if let Some(h) = held {
                    // Straight from holding to ringing back: the agent stays busy.
                    self.recall(s, h);
                    self.station_busy_changed(s);
                } else {
                    self.set_mode(s, StationMode::Idle);
                    if std::mem::take(&mut self.stations[s as usize].loopback) {
                        self.ring_loopback(s);
                    }
                }
            }
            StationMode::OffHookAlerting { call } => {
                // Hung up on a waiting call: ring instead.
                self.set_play(ch, None);
                self.stations[s as usize].mode = StationMode::Ringing { call };
                let number = self.calls.get(&call).and_then(|c| c.ani.clone());
                self.cmd(Command::RingStation {
                    ch,
                    caller_id: Some(CallerId { number, ..CallerId::default() }),
                });
            }
            StationMode::Talking { call, held: None } => {
                self.set_play(ch, None);
                self.set_mode(s, StationMode::Idle);
                let dev = self.dev(s);
                self.party_left(call, &dev, Cause::NORMAL_CLEARING, true);
            }
            StationMode::Talking { call, held: Some(h) } => {
                // Hanging up during a consultation completes the transfer.
                self.set_play(ch, None);
                self.stations[s as usize].mode = StationMode::Idle;
                self.transfer(s, h, call);
                self.station_busy_changed(s);
            }
        }
    }

    /// The loopback test call: the phone rings with its own number; answered, it
    /// hears dial tone, which proves ringing, hook detection and the audio path.
    fn ring_loopback(&mut self, s: StationIx) {
        let (ch, ext) = (self.stations[s as usize].ch, self.stations[s as usize].ext.clone());
        let call = self.new_call(Some(ext.clone()), ext.clone());
        let gen = self.fresh_gen();
        let c = self.calls.get_mut(&call).expect("new");
        c.data.insert("test".into(), "loopback".into());
        c.parties.push(Party {
            device: DeviceId::Station(ext.clone()),
            ch: Some(ch),
            state: ConnectionState::Alerting,
            supervision: None,
            number: None,
        });
        c.ring_gen = gen;
        self.stations[s as usize].mode = StationMode::Ringing { call };
        self.cmd(Command::RingStation {
            ch,
            caller_id: Some(CallerId { number: Some(ext), ..CallerId::default() }),
        });
        self.arm(self.now + MAKE_CALL_RING, Timer::Ring { call, gen });
    }

    /// Ring the station back for a call it left on hold.
    fn recall(&mut self, s: StationIx, held: CallId) {
        let ch = self.stations[s as usize].ch;
        let number = self.calls.get(&held).and_then(|c| c.ani.clone());
        self.stations[s as usize].mode = StationMode::Ringing { call: held };
        self.cmd(Command::RingStation { ch, caller_id: Some(CallerId { number, ..CallerId::default() }) });
        // Unanswered, the recall gives up and the held party is released.
        let gen = self.fresh_gen();
        if let Some(c) = self.calls.get_mut(&held) {
            c.ring_gen = gen;
        }
        self.arm(self.now + RECALL_RING, Timer::Ring { call: held, gen });
    }

    /// A call can be held once someone else in it has answered, and not by a
    /// supervisor listening in.
    pub(crate) fn holdable(&self, s: StationIx, call: CallId) -> bool {
        let dev = self.dev(s);
        self.calls.get(&call).is_some_and(|c| {
            c.parties.iter().any(|p| p.device == dev && p.supervision.is_none())
                && c.parties.iter().any(|p| p.device != dev && p.state == ConnectionState::Connected)
        })
    }

    pub(crate) fn on_hook_flash(&mut self, s: StationIx) {
        match self.stations[s as usize].mode.clone() {
            StationMode::Talking { call, held: None } if self.holdable(s, call) => self.hold(s, call),
            StationMode::Talking { call, held: Some(h) } => {
                // Flash during a consultation drops it and returns to the held call.
                self.stations[s as usize].mode = StationMode::Cut { held: Some(h) };
                let dev = self.dev(s);
                self.party_left(call, &dev, Cause::NORMAL_CLEARING, true);
                self.retrieve(s, h);
            }
            StationMode::Dialing { held: Some(h), .. } | StationMode::Cut { held: Some(h) } => {
                self.retrieve(s, h)
            }
            StationMode::OffHookAlerting { call } => self.station_answer(s, call),
            _ => {}
        }
    }

    /// Put the station's call on hold and give dial tone for a consultation.
    pub(crate) fn hold(&mut self, s: StationIx, call: CallId) {
        let dev = self.dev(s);
        let ch = self.stations[s as usize].ch;
        if let Some(p) =
            self.calls.get_mut(&call).and_then(|c| c.parties.iter_mut().find(|p| p.device == dev))
        {
            p.state = ConnectionState::Held;
        }
        self.emit(CstaEvent::Held { call, holding: dev });
        self.set_mode(s, StationMode::Dialing { digits: String::new(), held: Some(call) });
        self.remix(call);
        self.set_play(ch, Some(Playing::Tone(Tone::Dial)));
    }

    pub(crate) fn retrieve(&mut self, s: StationIx, call: CallId) {
        let dev = self.dev(s);
        let ch = self.stations[s as usize].ch;
        self.stations[s as usize].digit_gen = 0;
        if let Some(p) =
            self.calls.get_mut(&call).and_then(|c| c.parties.iter_mut().find(|p| p.device == dev))
        {
            p.state = ConnectionState::Connected;
        }
        self.set_play(ch, None);
        self.set_mode(s, StationMode::Talking { call, held: None });
        self.emit(CstaEvent::Retrieved { call, retrieving: dev });
        self.remix(call);
    }

    /// The station's part in `call` is gone: update what the phone does.
    pub(crate) fn station_left_call(&mut self, s: StationIx, call: CallId) {
        let ch = self.stations[s as usize].ch;
        let mode = self.stations[s as usize].mode.clone();
        let new = match mode {
            StationMode::Ringing { call: c } if c == call => {
                self.cmd(Command::StopRinging { ch });
                StationMode::Idle
            }
            StationMode::OffHookAlerting { call: c } if c == call => {
                self.set_play(ch, None);
                StationMode::Cut { held: None }
            }
            StationMode::Talking { call: c, held } if c == call => {
                // Cut the station: the card gives it busy tone until the handset goes
                // down (and stops whatever played to it).
                self.playing.remove(&ch);
                self.cmd(Command::Release { ch, cause: Cause::NORMAL_CLEARING });
                StationMode::Cut { held }
            }
            StationMode::Talking { call: c, held: Some(h) } if h == call => {
                StationMode::Talking { call: c, held: None }
            }
            StationMode::Dialing { digits, held: Some(h) } if h == call => {
                StationMode::Dialing { digits, held: None }
            }
            StationMode::Cut { held: Some(h) } if h == call => StationMode::Cut { held: None },
            other => other,
        };
        self.set_mode(s, new);
        if let Some(a) = self.stations[s as usize].agent {
            self.agent_call_ended(a, call);
        }
    }

    pub(crate) fn on_station_digit(&mut self, s: StationIx, digit: char) {
        let ch = self.stations[s as usize].ch;
        let StationMode::Dialing { digits, .. } = &mut self.stations[s as usize].mode else { return };
        let first = digits.is_empty();
        digits.push(digit);
        if first {
            self.set_play(ch, None);
            self.station_busy_changed(s);
        }
        let gen = self.fresh_gen();
        self.stations[s as usize].digit_gen = gen;
        let at = self.now + self.cfg.inter_digit_timeout;
        self.arm(at, Timer::InterDigit { station: s, gen });
        self.evaluate_digits(s, false);
    }

    pub(crate) fn on_inter_digit_timeout(&mut self, s: StationIx) {
        self.stations[s as usize].digit_gen = 0;
        self.evaluate_digits(s, true);
    }

    /// Decide whether the digits so far are a feature code, a number to dial, worth
    /// waiting on, or wrong.
    fn evaluate_digits(&mut self, s: StationIx, timed_out: bool) {
        let StationMode::Dialing { digits, .. } = &self.stations[s as usize].mode else { return };
        let digits = digits.clone();
        let complete = digits.ends_with('#');
        let body = digits.trim_end_matches('#');
        let f = &self.cfg.features;
        let codes = [
            (f.login.clone(), Feature::Login, true),
            (f.logout.clone(), Feature::Logout, false),
            (f.ready.clone(), Feature::Ready, false),
            (f.not_ready.clone(), Feature::NotReady, true),
        ];
        for (code, feature, takes_arg) in codes {
            if body.starts_with(&code) {
                let arg = &body[code.len()..];
                if complete || timed_out || (!takes_arg && arg.is_empty()) {
                    let ok = self.feature(s, feature, arg);
                    return self.finish_dialing(s, ok);
                }
                return;
            }
        }
        let mut maybe_more = self.cfg.features_start_with(body);
        let prefixes: Vec<(usize, String)> = self
            .cfg
            .trunk_groups
            .iter()
            .enumerate()
            .filter_map(|(g, t)| t.dial_prefix.clone().map(|p| (g, p)))
            .collect();
        for (g, p) in &prefixes {
            if body.len() > p.len() && body.starts_with(p.as_str()) {
                let number = &body[p.len()..];
                if complete || timed_out || number.len() >= 20 {
                    if self.reserve_refuses(s).is_some() {
                        // Congestion tone: the agent is needed for inbound now.
                        return self.finish_dialing(s, false);
                    }
                    return self.place_from_station(
                        s,
                        body.to_string(),
                        Dialled::External { group: *g, number: number.into() },
                    );
                }
                return;
            }
            maybe_more |= p.starts_with(body);
        }
        let exact = self.numbers.get(body).copied();
        let longer = self
            .numbers
            .range(body.to_string()..)
            .find(|(n, _)| n.as_str() != body)
            .is_some_and(|(n, _)| n.starts_with(body));
        match exact {
            Some(Dest::Station(t)) if t == s && (complete || timed_out || !longer) => {
                // Its own number: a loopback test. Hang up and the phone rings.
                self.stations[s as usize].loopback = true;
                return self.finish_dialing(s, true);
            }
            Some(dest) if complete || timed_out || !longer => {
                return self.place_from_station(s, body.to_string(), Dialled::Internal(dest));
            }
            _ => {}
        }
        if (longer || maybe_more) && !complete && !timed_out {
            return;
        }
        self.finish_dialing(s, false);
    }

    /// Dialling ended without a call: a short confirmation or congestion tone.
    fn finish_dialing(&mut self, s: StationIx, ok: bool) {
        let ch = self.stations[s as usize].ch;
        let held = self.stations[s as usize].mode.held();
        self.stations[s as usize].digit_gen = 0;
        self.set_mode(s, StationMode::Cut { held });
        let tone = if ok { Tone::CallWaiting } else { Tone::Congestion };
        self.set_play(ch, Some(Playing::Tone(tone)));
    }

    fn feature(&mut self, s: StationIx, feature: Feature, arg: &str) -> bool {
        let current = self.stations[s as usize].agent;
        match feature {
            Feature::Login => {
                let (id, pw) = match arg.split_once('*') {
                    Some((id, pw)) => (id, Some(pw)),
                    None => (arg, None),
                };
                let Some(&a) = self.agent_by_id.get(id) else { return false };
                let agent = &self.agents[a as usize];
                if current.is_some() || agent.state != AgentState::LoggedOut {
                    return false;
                }
                if agent.password.is_some() && agent.password.as_deref() != pw {
                    return false;
                }
                self.log_in(a, Some(s));
                true
            }
            Feature::Logout => match current {
                Some(a)
                    if !matches!(self.agents[a as usize].state, AgentState::Ringing)
                        && self.agents[a as usize].call.is_none() =>
                {
                    self.log_out(a);
                    true
                }
                _ => false,
            },
            Feature::Ready => current.is_some_and(|a| self.request_ready(a, None).is_ok()),
            Feature::NotReady => {
                let reason = arg
                    .parse::<u8>()
                    .ok()
                    .and_then(|c| self.cfg.not_ready_reasons.get(&c).cloned())
                    .unwrap_or_else(|| "not ready".to_string());
                current.is_some_and(|a| self.request_ready(a, Some(reason)).is_ok())
            }
        }
    }

    /// The queue whose inbound reserve (`reserve_idle`) an outbound call by the agent at
    /// station `s` would break: fewer ready members than the reserve besides this agent.
    pub(crate) fn reserve_refuses(&self, s: StationIx) -> Option<String> {
        let a = self.stations[s as usize].agent?;
        self.agents[a as usize].memberships.iter().find_map(|m| {
            let q = &self.queues[m.queue as usize];
            let others = q.ready.len() - usize::from(m.key.is_some());
            (others < q.conf.reserve_idle).then(|| q.conf.name.clone())
        })
    }

    fn resolve(&self, number: &str) -> Option<Dialled> {
        if let Some(&d) = self.numbers.get(number) {
            return Some(Dialled::Internal(d));
        }
        // An agent id reaches the station the agent is logged in at.
        if let Some(s) = self.agent_by_id.get(number).and_then(|&a| self.agents[a as usize].station) {
            return Some(Dialled::Internal(Dest::Station(s)));
        }
        self.cfg.trunk_groups.iter().enumerate().find_map(|(g, t)| {
            let p = t.dial_prefix.as_deref()?;
            (number.len() > p.len() && number.starts_with(p))
                .then(|| Dialled::External { group: g, number: number[p.len()..].to_string() })
        })
    }

    /// A new call from the station to what it dialled.
    fn place_from_station(&mut self, s: StationIx, number: String, to: Dialled) {
        let (ch, ext) = (self.stations[s as usize].ch, self.stations[s as usize].ext.clone());
        let held = self.stations[s as usize].mode.held();
        self.stations[s as usize].digit_gen = 0;
        let call = self.new_call(Some(ext.clone()), number.clone());
        self.calls.get_mut(&call).expect("new").parties.push(Party {
            device: DeviceId::Station(ext.clone()),
            ch: Some(ch),
            state: ConnectionState::Connected,
            supervision: None,
            number: None,
        });
        self.set_mode(s, StationMode::Talking { call, held });
        self.emit(CstaEvent::ServiceInitiated { call, device: DeviceId::Station(ext) });
        self.route_dialled(s, call, &number, Some(to));
    }

    /// Dial `number` for a call the station is connected to (after MakeCall rang it).
    pub(crate) fn dial_into(&mut self, s: StationIx, call: CallId, number: &str) {
        self.route_dialled(s, call, number, None);
    }

    fn route_dialled(&mut self, s: StationIx, call: CallId, number: &str, to: Option<Dialled>) {
        let ch = self.stations[s as usize].ch;
        let dev = self.dev(s);
        self.emit(CstaEvent::Originated { call, calling: dev, called: number.to_string() });
        if let Err(cause) = self.route_number(call, number, to, Some(s)) {
            // Clearing cuts the station, which gives busy tone; other failures say so
            // with congestion tone.
            self.clear_call(call, cause);
            if cause != Cause::USER_BUSY {
                self.set_play(ch, Some(Playing::Tone(Tone::Congestion)));
            }
        }
    }

    /// Send a call to a dialled number: a station, a queue, or out on a trunk.
    pub(crate) fn route_number(
        &mut self,
        call: CallId,
        number: &str,
        to: Option<Dialled>,
        from: Option<StationIx>,
    ) -> Result<(), Cause> {
        let to = match to {
            Some(t) => t,
            None => self.resolve(number).ok_or(Cause::UNALLOCATED_NUMBER)?,
        };
        match to {
            Dialled::Internal(Dest::Station(t)) => {
                let st = &self.stations[t as usize];
                let target = DeviceId::Station(st.ext.clone());
                let caller = self.calls.get(&call).and_then(|c| c.ani.clone());
                if from == Some(t)
                    || !self.alert_station(
                        t,
                        call,
                        CallerId { number: caller.clone(), ..CallerId::default() },
                    )
                {
                    self.emit(CstaEvent::Failed { call, failing: target, cause: Cause::USER_BUSY });
                    return Err(Cause::USER_BUSY);
                }
                let called = self.stations[t as usize].ext.clone();
                self.emit(CstaEvent::Delivered {
                    call,
                    alerting: target,
                    calling: caller.unwrap_or_default(),
                    called,
                    cause: EventCause::NewCall,
                });
                Ok(())
            }
            Dialled::Internal(Dest::Queue(q)) => {
                self.enqueue(call, q as QueueIx, EventCause::NewCall);
                Ok(())
            }
            // A station dialling has reported `Originated` itself (route_dialled).
            Dialled::External { group, number } => {
                self.dial_external_via(call, &number, Some(group), from.is_none()).map(|_| ())
            }
        }
    }

    /// MakeCall from a station: dial now if the handset is off hook and idle, else ring
    /// the phone first and dial once it is answered.
    pub(crate) fn make_call(&mut self, s: StationIx, called: &str) -> Result<CallId, crate::csta::CstaError> {
        use crate::csta::CstaError;
        let Some(to) = self.resolve(called) else {
            return Err(CstaError::InvalidDeviceId(called.to_string()));
        };
        if let (Dialled::External { .. }, Some(queue)) = (&to, self.reserve_refuses(s)) {
            return Err(CstaError::ReservedForInbound(queue));
        }
        let ch = self.stations[s as usize].ch;
        match self.stations[s as usize].mode.clone() {
            // Off hook and idle, possibly holding a call (a consultation).
            StationMode::Dialing { ref digits, .. } if digits.is_empty() => {
                self.set_play(ch, None);
                self.place_from_station(s, called.to_string(), to);
                Ok(CallId(self.next_call - 1))
            }
            StationMode::Cut { .. } => {
                self.set_play(ch, None);
                self.place_from_station(s, called.to_string(), to);
                Ok(CallId(self.next_call - 1))
            }
            StationMode::Idle => {
                let call = self.ring_to_start(s, called);
                self.calls.get_mut(&call).expect("new").pending_dial = Some(called.to_string());
                Ok(call)
            }
            _ => Err(CstaError::InvalidDeviceState),
        }
    }

    /// An analog phone on hook cannot be taken off hook remotely: ring it (showing
    /// `shown`) in a call of its own, which the caller gives its purpose (a number to
    /// dial, a call to supervise) and which gives up unanswered after a while.
    pub(crate) fn ring_to_start(&mut self, s: StationIx, shown: &str) -> CallId {
        let (ch, ext) = (self.stations[s as usize].ch, self.stations[s as usize].ext.clone());
        let call = self.new_call(Some(ext.clone()), shown.to_string());
        self.calls.get_mut(&call).expect("new").parties.push(Party {
            device: DeviceId::Station(ext.clone()),
            ch: Some(ch),
            state: ConnectionState::Alerting,
            supervision: None,
            number: None,
        });
        self.stations[s as usize].mode = StationMode::Ringing { call };
        self.cmd(Command::RingStation {
            ch,
            caller_id: Some(CallerId { number: Some(shown.to_string()), ..CallerId::default() }),
        });
        let gen = self.fresh_gen();
        self.calls.get_mut(&call).expect("new").ring_gen = gen;
        self.arm(self.now + MAKE_CALL_RING, Timer::Ring { call, gen });
        self.emit(CstaEvent::ServiceInitiated { call, device: DeviceId::Station(ext) });
        call
    }

    /// Complete a consultation transfer: the held call's parties meet the
    /// consultation's, the station drops out of both.
    pub(crate) fn transfer(&mut self, s: StationIx, held: CallId, consult: CallId) {
        let dev = self.dev(s);
        // A consultation still waiting in a queue or ringing an agent leaves it; the
        // transferred call takes its place below.
        let requeue = self.withdraw(consult);
        for c in [held, consult] {
            if let Some(call) = self.calls.get_mut(&c) {
                call.parties.retain(|p| p.device != dev);
            }
        }
        let to = self.merge_calls(held, consult, &dev);
        self.emit(CstaEvent::Transferred {
            primary: held,
            secondary: consult,
            transferring: dev,
            transferred_to: to,
        });
        if let Some(a) = self.stations[s as usize].agent {
            self.agent_call_ended(a, held);
        }
        if let Some(q) = requeue {
            if let Some(c) = self.calls.get_mut(&held) {
                c.stage = Stage::Active;
            }
            return self.enqueue(held, q, EventCause::Transfer);
        }
        let talkers = self.calls.get(&held).map_or(0, |c| c.parties.len());
        if talkers < 2 {
            self.clear_call(held, Cause::NORMAL_CLEARING);
        } else {
            self.remix(held);
        }
    }
}
