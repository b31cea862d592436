//! [`SimCard`]: the simulator backend. One software card with its spans and analog
//! ports, and the world behind them: the PSTN, its callers, the phones on the stations.
//!
//! Everything happens through a queue of timed actions, run in time order by
//! [`Card::poll`]; nothing reads a clock. In audio mode a 20 ms tick moves real frames
//! as well (see [`super::audio`]).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{Sender, TryRecvError};

use crate::card::{Capabilities, Card};
use crate::cause::Cause;
use crate::channel::{ChannelAddr, ChannelId, ChannelInfo, ChannelState, ConferenceId};
use crate::command::{Command, MemberRights, PlaySource, TapFrame};
use crate::config::{
    Arrivals, CallerIdMode, CardConfig, Config, Disconnect, MediaMode, Signalling, SimulatorConfig,
};
use crate::dsp::tones::TonePlan;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Alarm, CardEvent, EventKind, PlayEnd, Side};
use crate::signal::{CallerCategory, CallerId, Tone};
use crate::time::Instant;

use super::audio::{AudioWorld, ChanAudio};
use super::rng::Rng;
use super::timing::{self, analog, ms};
#[cfg(feature = "pri")]
#[path = "pri_link.rs"]
mod pri_link;

use super::world::{
    alarm_cause, is_dtmf_digit, CallerScript, CallerStep, Fault, InboundCall, OutboundRule, Outcome,
    PhoneBehaviour, Spread, Trunk,
};

/// What the far party on a channel (the caller, the callee, the phone, the exchange)
/// has heard from the card, since the card was made or [`SimCard::clear_heard`].
///
/// In audio mode everything here was found in the sound the card sent, by the far
/// party's own detectors; that includes whatever the bus and bridges routed to it. In
/// signalling mode there is no sound: it lists what the card itself sent (plays, tones,
/// digits, caller ID), and the frame counts stay zero.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Heard {
    /// Play ids that were played to it (started).
    pub prompts: Vec<u32>,
    /// Tones it heard, in order (repeats of the same tone in a row are listed once).
    pub tones: Vec<Tone>,
    /// DTMF digits it heard.
    pub digits: String,
    /// Caller IDs its phone displayed (stations only).
    pub caller_ids: Vec<CallerId>,
    /// Audio mode: 20 ms frames received, and how many carried sound (above -50 dBm0).
    pub frames: u64,
    pub loud_frames: u64,
    /// Audio mode: the sum of the squared samples heard (see [`Heard::level_dbm0`]).
    pub energy_sum: f64,
}

impl Heard {
    /// Mean level of what was heard, in dBm0.
    pub fn level_dbm0(&self) -> f64 {
        if self.frames == 0 || self.energy_sum <= 0.0 {
            return f64::NEG_INFINITY;
        }
        let mean_square = self.energy_sum / (self.frames as f64 * crate::FRAME_SAMPLES as f64);
        // 0 dBm0 sine: peak 22_706, mean square peak²/2.
        10.0 * (mean_square / (22_706.0f64 * 22_706.0 / 2.0)).log10()
    }
    pub(crate) fn tone(&mut self, t: Tone) {
        if self.tones.last() != Some(&t) {
            self.tones.push(t);
        }
    }
}

/// Traffic figures since the card was made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inbound calls the PSTN tried to deliver.
    pub inbound_attempts: u64,
    /// Inbound calls that found no free channel (all busy or blocked).
    pub inbound_lost: u64,
    /// Inbound calls offered to the engine.
    pub inbound_offered: u64,
    pub inbound_answered: u64,
    /// Callers who hung up before being answered.
    pub inbound_abandoned: u64,
    /// Answered calls the caller ended.
    pub caller_cleared: u64,
    pub outbound_placed: u64,
    pub outbound_answered: u64,
    /// Outbound calls that failed, by cause.
    pub outbound_failed: BTreeMap<u8, u64>,
    /// Digits people pressed.
    pub digits_pressed: u64,
    /// Events sent.
    pub events: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    E1(Signalling),
    Fxo { caller_id: CallerIdMode, disconnect: Disconnect },
    Fxs { caller_id: CallerIdMode },
}

impl Line {
    fn describe(self) -> String {
        match self {
            Line::E1(s) => s.name().to_string(),
            Line::Fxo { .. } => "loop start (FXO)".to_string(),
            Line::Fxs { .. } => "loop start (FXS)".to_string(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Caller {
    pub script: CallerScript,
    pub step: usize,
    pub rng: Rng,
    pub waiting_prompt: bool,
    /// In a `WaitForAgent` step: the script goes on when the line is connected.
    pub waiting_agent: bool,
}

#[derive(Debug)]
pub(crate) enum Far {
    Caller(Caller),
    Callee { outcome: Outcome, talk: Duration, answer_after: Duration },
}

/// Progress of a call we place on an FXO line, driven by the tones we detect.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum FxoOut {
    WaitDialTone,
    Dialing,
    AwaitProgress,
    Ringing,
    Connected,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub inbound: bool,
    pub ani: Option<String>,
    pub dnis: String,
    pub category: CallerCategory,
    pub far: Far,
    pub offered: bool,
    pub answered: bool,
    /// The far party has hung up (or was never there).
    pub far_gone: bool,
    pub alerting: bool,
    pub fxo_out: Option<FxoOut>,
    pub last_ring_end: Instant,
    pub rings: u32,
}

impl Call {
    /// A call just set up: nothing offered, answered or rung yet.
    fn new(
        inbound: bool,
        ani: Option<String>,
        dnis: String,
        category: CallerCategory,
        far: Far,
        now: Instant,
    ) -> Call {
        Call {
            inbound,
            ani,
            dnis,
            category,
            far,
            offered: false,
            answered: false,
            far_gone: false,
            alerting: false,
            fxo_out: None,
            last_ring_end: now,
            rings: 0,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Phone {
    /// The handset as the person holds it.
    pub off_hook: bool,
    /// The hook state the card has reported.
    pub card_off_hook: bool,
    pub ringing: bool,
    pub ring_cid: Option<CallerId>,
    pub on_hook_at: Option<Instant>,
    pub hook_seq: u64,
    pub behaviour: PhoneBehaviour,
    pub leave_off_hook: bool,
    pub rng: Rng,
}

#[derive(Debug)]
pub(crate) enum PlayKind {
    /// Signalling mode: ends at a scheduled time.
    Timed,
    /// Audio mode: samples of a prompt.
    Samples {
        samples: std::sync::Arc<Vec<i16>>,
        pos: usize,
    },
    Tone(Tone),
    Frames(crossbeam_channel::Receiver<Vec<i16>>),
}

#[derive(Debug)]
pub(crate) struct Playing {
    pub id: u32,
    pub seq: u64,
    pub barge_in: bool,
    pub kind: PlayKind,
}

#[derive(Debug)]
pub(crate) struct Tap {
    pub id: u32,
    pub sink: Sender<TapFrame>,
    /// Frames delivered, and frames the sink had no room for.
    pub frames: u64,
    pub dropped: u64,
}

#[derive(Debug)]
pub(crate) struct Chan {
    pub id: ChannelId,
    pub line: Line,
    pub gen: u64,
    pub state: ChannelState,
    pub call: Option<Call>,
    pub maint_blocked: bool,
    pub far_blocked: bool,
    pub alarm_blocked: bool,
    pub play: Option<Playing>,
    /// A tone the card itself plays (station dial tone, busy after a release).
    pub local_tone: Option<Tone>,
    /// A tone the exchange plays toward us on an FXO line.
    pub exchange_tone: Option<Tone>,
    pub taps: Vec<Tap>,
    pub phone: Option<Phone>,
    pub heard: Heard,
    pub audio: Option<Box<ChanAudio>>,
}

impl Chan {
    /// A call the engine knows of: offered to it, or placed by it (not one still in
    /// its register phase, which the engine has not been told about).
    fn engine_sees_call(&self) -> bool {
        self.call.as_ref().is_some_and(|c| c.offered || !c.inbound)
    }

    /// A station whose handset the card has seen off hook.
    fn station_off_hook(&self) -> bool {
        self.phone.as_ref().is_some_and(|p| p.card_off_hook)
    }

    fn blocked(&self) -> bool {
        self.maint_blocked || self.far_blocked || self.alarm_blocked
    }
    fn idle_state(&self) -> ChannelState {
        if self.blocked() {
            ChannelState::Blocked
        } else {
            ChannelState::Idle
        }
    }
    pub(crate) fn caller_mut(&mut self) -> Option<&mut Caller> {
        match self.call.as_mut().map(|c| &mut c.far) {
            Some(Far::Caller(c)) => Some(c),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) enum PhoneAct {
    OffHook,
    OnHook,
    Flash(Duration),
    Dial(String),
}

#[derive(Debug)]
pub(crate) enum Step {
    Offer,
    Abandon,
    AnswerTakesEffect,
    CallerNext,
    Digit {
        digit: char,
        start: Instant,
    },
    RemoteClear(Cause),
    LocalReleaseDone(Cause),
    OutAlerting,
    OutAnswer,
    OutFail(Cause, Side),
    CalleeHangsUp,
    RingOn,
    RingOff,
    CidDone,
    ExchangeTone(Option<Tone>),
    Detected(Tone),
    DialToneTimeout,
    DialDigitsDone,
    AnswerDetected,
    NoAnswerTimeout,
    StationRingOn,
    StationRingOff,
    StationCid,
    PhoneAnswers,
    PhoneHangsUp,
    FlashTimer(u64),
    PlayDone(u64),
    /// A caller waiting for an agent has run out of patience.
    AgentWaitOver,
}

#[derive(Debug)]
pub(crate) enum Action {
    Arrive(InboundCall),
    NextArrival(usize),
    Fault(Fault),
    Phone(ChannelId, PhoneAct),
    Chan(ChannelId, u64, Step),
    Tick,
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The simulator card. Build it from the installation file with
/// [`SimCard::from_config`] (or [`SimCard::new`] for one card's part), drive it with
/// [`Card::poll`] from [`super::clock`], and shape its world with the methods below.
#[derive(Debug)]
pub struct SimCard {
    pub(crate) id: u16,
    caps: Capabilities,
    pub(crate) events: Sender<CardEvent>,
    pub(crate) mode: MediaMode,
    pub(crate) ring_cadence: (Duration, Duration),
    plan: TonePlan,
    pub(crate) rng: Rng,
    /// Time of the action being run (or of the last poll).
    pub(crate) now: Instant,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    pub(crate) chans: BTreeMap<ChannelId, Chan>,
    spans: BTreeMap<u8, (Signalling, Vec<Alarm>)>,
    dead_lines: BTreeSet<u16>,
    outbound: Vec<OutboundRule>,
    no_answer_timeout: Duration,
    arrivals: Vec<Arrivals>,
    pub(crate) stats: Stats,
    prompt_lengths: BTreeMap<PathBuf, usize>,
    pub(crate) play_seq: u64,
    /// Bus: the channels each channel hears (its transmit carries their receive).
    pub(crate) listens: BTreeMap<ChannelId, BTreeSet<ChannelId>>,
    pub(crate) conferences: BTreeMap<ConferenceId, BTreeMap<ChannelId, MemberRights>>,
    pub(crate) audio: Option<AudioWorld>,
    tick_scheduled: bool,
    /// Spans whose ISDN signalling runs through libpri (`stack = "libpri"`).
    #[cfg(feature = "pri")]
    pri: pri_link::PriSims,
}

impl SimCard {
    /// The card `card_id` of an installation file, with the file's simulated world.
    pub fn from_config(config: &Config, card_id: u16, events: Sender<CardEvent>) -> Result<SimCard> {
        let card = config.card(card_id).ok_or_else(|| {
            Error::new(ErrorKind::Config, format!("no card {card_id} in the configuration"))
        })?;
        SimCard::new(card, &config.simulator, events)
    }

    /// A card from its configuration and the world's; the world's entries for other
    /// cards are left out.
    pub fn new(card: &CardConfig, world: &SimulatorConfig, events: Sender<CardEvent>) -> Result<SimCard> {
        let mut chans = BTreeMap::new();
        let mut spans = BTreeMap::new();
        let mut rng = Rng::new(world.seed ^ (card.id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for s in &card.spans {
            spans.insert(s.span, (s.signalling, Vec::new()));
            for ts in crate::channel::e1_bearer_timeslots() {
                let id = ChannelId::e1(card.id, s.span, ts);
                chans.insert(id, Chan::new(id, Line::E1(s.signalling), None));
            }
        }
        if let Some(fxo) = &card.fxo {
            for p in fxo.ports.iter() {
                let id = ChannelId::fxo(card.id, p);
                let line = Line::Fxo { caller_id: fxo.caller_id, disconnect: fxo.disconnect };
                chans.insert(id, Chan::new(id, line, None));
            }
        }
        if let Some(fxs) = &card.fxs {
            for p in fxs.ports.iter() {
                let id = ChannelId::fxs(card.id, p);
                let phone = Phone {
                    off_hook: false,
                    card_off_hook: false,
                    ringing: false,
                    ring_cid: None,
                    on_hook_at: None,
                    hook_seq: 0,
                    behaviour: PhoneBehaviour::default(),
                    leave_off_hook: false,
                    rng: rng.fork(),
                };
                chans.insert(id, Chan::new(id, Line::Fxs { caller_id: fxs.caller_id }, Some(phone)));
            }
        }
        #[cfg(not(feature = "pri"))]
        if let Some(s) = card.spans.iter().find(|s| s.stack == crate::config::Stack::Libpri) {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "card {} span {}: stack = \"libpri\" needs Hotline built with the `pri` feature (libpri-dev)",
                    card.id, s.span
                ),
            ));
        }
        let audio = match world.media {
            MediaMode::Audio => Some(AudioWorld::new(card)?),
            MediaMode::Signalling => None,
        };
        if audio.is_some() {
            for c in chans.values_mut() {
                c.audio = Some(Box::new(ChanAudio::new(&card.tone_plan, rng.next_u64())));
            }
        }
        let mut caps = Capabilities::new("simulator");
        caps.audio = audio.is_some();
        caps.dtmf_detection = true;
        caps.tone_detection = true;
        caps.caller_id_generation = true;
        caps.bus_switching = true;
        caps.conference_bridges = card.conference_bridges;
        caps.conference_members = card.conference_members;
        let mut sim = SimCard {
            id: card.id,
            caps,
            events,
            mode: world.media,
            ring_cadence: card.ring_cadence,
            plan: card.tone_plan.clone(),
            rng,
            now: Instant::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            chans,
            spans,
            dead_lines: BTreeSet::new(),
            outbound: world.outbound.clone(),
            no_answer_timeout: world.no_answer_timeout,
            arrivals: Vec::new(),
            stats: Stats::default(),
            prompt_lengths: BTreeMap::new(),
            play_seq: 0,
            listens: BTreeMap::new(),
            conferences: BTreeMap::new(),
            audio,
            tick_scheduled: false,
            #[cfg(feature = "pri")]
            pri: pri_link::PriSims::new(card)?,
        };
        for (c, at, call) in &world.inbound {
            if *c == card.id {
                sim.schedule_inbound(*at, call.clone());
            }
        }
        for a in &world.arrivals {
            if a.card == card.id {
                sim.add_arrivals(a.clone());
            }
        }
        for (c, ports, b) in &world.stations {
            if *c == card.id {
                for p in ports.iter() {
                    sim.set_station_behaviour(ChannelId::fxs(card.id, p), b.clone())?;
                }
            }
        }
        for (c, ports) in &world.headsets {
            if *c == card.id {
                for p in ports.iter() {
                    sim.go_off_hook(Instant::from_micros(200_000), ChannelId::fxs(card.id, p))?;
                }
            }
        }
        for (c, at, f) in &world.faults {
            if *c == card.id {
                sim.inject(*at, f.clone());
            }
        }
        Ok(sim)
    }

    // ---- The world-control API ----

    /// The PSTN sends a call at `at`.
    pub fn schedule_inbound(&mut self, at: Instant, call: InboundCall) {
        self.schedule(at, Action::Arrive(call));
    }

    /// Random inbound calls: Poisson arrivals at the given rate.
    pub fn add_arrivals(&mut self, arrivals: Arrivals) {
        let i = self.arrivals.len();
        let first = arrivals.from + self.interarrival(arrivals.rate_per_hour);
        self.arrivals.push(arrivals);
        self.schedule(first, Action::NextArrival(i));
    }

    /// Replace the outbound outcome rules (first matching prefix wins).
    pub fn set_outbound_rules(&mut self, rules: Vec<OutboundRule>) {
        self.outbound = rules;
    }

    /// How the phone on a station behaves from now on.
    pub fn set_station_behaviour(&mut self, ch: ChannelId, behaviour: PhoneBehaviour) -> Result<()> {
        let phone = self.phone_mut(ch)?;
        phone.behaviour = behaviour;
        Ok(())
    }

    /// Inject a fault at `at`.
    pub fn inject(&mut self, at: Instant, fault: Fault) {
        self.schedule(at, Action::Fault(fault));
    }

    /// The person at a station lifts the handset at `at`.
    pub fn go_off_hook(&mut self, at: Instant, ch: ChannelId) -> Result<()> {
        self.phone_mut(ch)?;
        self.schedule(at, Action::Phone(ch, PhoneAct::OffHook));
        Ok(())
    }

    /// The person at a station hangs up at `at`.
    pub fn go_on_hook(&mut self, at: Instant, ch: ChannelId) -> Result<()> {
        self.phone_mut(ch)?;
        self.schedule(at, Action::Phone(ch, PhoneAct::OnHook));
        Ok(())
    }

    /// The person presses the hook switch at `at` for `held` (a flash when 100–800 ms).
    pub fn flash_hook(&mut self, at: Instant, ch: ChannelId, held: Duration) -> Result<()> {
        self.phone_mut(ch)?;
        self.schedule(at, Action::Phone(ch, PhoneAct::Flash(held)));
        Ok(())
    }

    /// The person at a station lifts the handset (if it is down), waits for dial tone
    /// and keys `digits`.
    pub fn dial_from_station(&mut self, at: Instant, ch: ChannelId, digits: &str) -> Result<()> {
        check_digits(digits)?;
        self.phone_mut(ch)?;
        self.schedule(at, Action::Phone(ch, PhoneAct::Dial(digits.to_string())));
        Ok(())
    }

    /// What the far party on `ch` has heard.
    pub fn heard(&self, ch: ChannelId) -> Option<&Heard> {
        self.chans.get(&ch).map(|c| &c.heard)
    }

    /// Forget what the far party on `ch` has heard so far.
    pub fn clear_heard(&mut self, ch: ChannelId) {
        if let Some(c) = self.chans.get_mut(&ch) {
            c.heard = Heard::default();
        }
    }

    /// Traffic figures.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn media_mode(&self) -> MediaMode {
        self.mode
    }

    /// Whether the handset of a station is off hook (as the person holds it).
    pub fn handset_off_hook(&self, ch: ChannelId) -> Option<bool> {
        self.chans.get(&ch)?.phone.as_ref().map(|p| p.off_hook)
    }

    // ---- Internals ----

    fn phone_mut(&mut self, ch: ChannelId) -> Result<&mut Phone> {
        self.chans
            .get_mut(&ch)
            .ok_or_else(|| no_channel(ch))?
            .phone
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::InvalidState, format!("{ch} is not a station (FXS port)")))
    }

    pub(crate) fn schedule(&mut self, at: Instant, action: Action) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at, seq: self.seq, action }));
    }

    pub(crate) fn after(&mut self, d: Duration, ch: ChannelId, step: Step) {
        let gen = self.chans.get(&ch).map_or(0, |c| c.gen);
        let at = self.now + d;
        self.schedule(at, Action::Chan(ch, gen, step));
    }

    pub(crate) fn emit(&mut self, kind: EventKind) {
        self.stats.events += 1;
        // A card with nobody listening keeps running; the engine may restart its end.
        let _ = self.events.send(CardEvent { time: self.now, kind });
    }

    fn interarrival(&mut self, rate_per_hour: f64) -> Duration {
        Duration::from_secs_f64(self.rng.exponential(3600.0 / rate_per_hour))
    }

    fn chan(&mut self, ch: ChannelId) -> Result<&mut Chan> {
        self.chans.get_mut(&ch).ok_or_else(|| no_channel(ch))
    }

    fn line(&self, ch: ChannelId) -> Line {
        self.chans[&ch].line
    }

    fn run(&mut self, action: Action) {
        match action {
            Action::Arrive(call) => self.arrive(call),
            Action::NextArrival(i) => self.next_arrival(i),
            Action::Fault(f) => self.fault(f),
            Action::Phone(ch, act) => self.phone_act(ch, act),
            Action::Chan(ch, gen, step) => {
                if self.chans.get(&ch).is_some_and(|c| c.gen == gen) {
                    self.step(ch, step);
                }
            }
            Action::Tick => {
                self.tick_scheduled = false;
                self.tick();
                self.ensure_tick();
            }
        }
    }

    /// Audio mode keeps a 20 ms tick going while any channel is in use.
    pub(crate) fn ensure_tick(&mut self) {
        if self.audio.is_none() || self.tick_scheduled {
            return;
        }
        let busy = self.chans.values().any(|c| {
            c.state != ChannelState::Idle && c.state != ChannelState::Blocked
                || c.phone.as_ref().is_some_and(|p| p.off_hook)
                || c.play.is_some()
        });
        if busy {
            let period = 20_000;
            let next = Instant::from_micros((self.now.as_micros() / period + 1) * period);
            self.tick_scheduled = true;
            self.schedule(next, Action::Tick);
        }
    }

    fn next_arrival(&mut self, i: usize) {
        let a = self.arrivals[i].clone();
        if a.until.is_some_and(|u| self.now >= u) {
            return;
        }
        let dnis = if a.dnis.is_empty() {
            String::new()
        } else {
            a.dnis[self.rng.below(a.dnis.len() as u64) as usize].clone()
        };
        let ani = a.ani.as_ref().map(|p| {
            p.chars()
                .map(|c| if c == 'X' { char::from(b'0' + self.rng.below(10) as u8) } else { c })
                .collect()
        });
        self.arrive(InboundCall {
            trunk: a.trunk,
            ani,
            dnis,
            category: CallerCategory::Ordinary,
            caller: a.caller.clone(),
        });
        let next = self.now + self.interarrival(a.rate_per_hour);
        self.schedule(next, Action::NextArrival(i));
    }

    fn free_trunk(&self, trunk: Trunk) -> Option<ChannelId> {
        let free = |c: &&Chan| c.state == ChannelState::Idle && !c.blocked();
        match trunk {
            Trunk::Channel(ch) => self.chans.get(&ch).filter(free).map(|c| c.id),
            Trunk::Span(n) => self
                .chans
                .values()
                .rev()
                .filter(|c| matches!(c.id.addr, ChannelAddr::E1 { span, .. } if span == n))
                .find(free)
                .map(|c| c.id),
            Trunk::AnyFxo => self
                .chans
                .values()
                .filter(
                    |c| matches!(c.id.addr, ChannelAddr::Fxo { port } if !self.dead_lines.contains(&port)),
                )
                .find(free)
                .map(|c| c.id),
        }
    }

    fn arrive(&mut self, call: InboundCall) {
        self.stats.inbound_attempts += 1;
        let Some(ch) = self.free_trunk(call.trunk) else {
            self.stats.inbound_lost += 1;
            return;
        };
        if let ChannelAddr::Fxo { port } = ch.addr {
            if self.dead_lines.contains(&port) {
                self.stats.inbound_lost += 1;
                return;
            }
        }
        let mut rng = self.rng.fork();
        let patience = call.caller.patience.draw(&mut rng);
        let line = self.line(ch);
        let c = self.chans.get_mut(&ch).expect("free_trunk returns our channels");
        c.gen += 1;
        c.state = ChannelState::Offered;
        c.call = Some(Call::new(
            true,
            call.ani.clone(),
            call.dnis.clone(),
            call.category,
            Far::Caller(Caller {
                script: call.caller,
                step: 0,
                rng,
                waiting_prompt: false,
                waiting_agent: false,
            }),
            self.now,
        ));
        match line {
            #[cfg(feature = "pri")]
            Line::E1(_) if self.pri_owns(ch) => self.pri_arrive(ch),
            Line::E1(sig) => {
                let d = timing::inbound_setup(sig, &call.dnis, call.ani.as_deref(), &mut self.rng);
                self.after(d, ch, Step::Offer);
            }
            Line::Fxo { .. } => self.after(Duration::ZERO, ch, Step::RingOn),
            Line::Fxs { .. } => unreachable!("stations are not trunks"),
        }
        self.after(patience, ch, Step::Abandon);
        self.ensure_tick();
    }

    fn offer(&mut self, ch: ChannelId) {
        let c = self.chans.get_mut(&ch).expect("scheduled on our channel");
        let Some(call) = c.call.as_mut() else { return };
        if call.offered {
            return;
        }
        call.offered = true;
        let kind = EventKind::Offered {
            ch,
            ani: call.ani.clone(),
            dnis: call.dnis.clone(),
            category: call.category,
        };
        self.stats.inbound_offered += 1;
        self.emit(kind);
    }

    fn step(&mut self, ch: ChannelId, step: Step) {
        #[cfg(feature = "pri")]
        let Some(step) = self.pri_step(ch, step) else {
            self.ensure_tick();
            return;
        };
        let line = self.line(ch);
        match step {
            Step::Offer => self.offer(ch),
            Step::Abandon => {
                let c = self.chans.get_mut(&ch).expect("ours");
                let Some(call) = c.call.as_mut() else { return };
                if call.answered || call.far_gone {
                    return;
                }
                call.far_gone = true;
                let offered = call.offered;
                self.stats.inbound_abandoned += 1;
                self.caller_leaves(ch, offered);
            }
            Step::AnswerTakesEffect => {
                let c = self.chans.get_mut(&ch).expect("ours");
                c.state = ChannelState::Connected;
                if let Some(a) = c.audio.as_mut() {
                    a.ringing = false;
                }
                let Some(call) = c.call.as_mut() else { return };
                call.answered = true;
                let (inbound, gone) = (call.inbound, call.far_gone);
                if inbound {
                    self.stats.inbound_answered += 1;
                    self.emit(EventKind::Answered { ch });
                    if gone {
                        // The answer crossed the caller's clearing: it arrives now.
                        self.far_clears(ch);
                    } else {
                        self.after(Duration::ZERO, ch, Step::CallerNext);
                    }
                }
            }
            Step::CallerNext => self.caller_next(ch),
            Step::AgentWaitOver => {
                let c = self.chans.get_mut(&ch).expect("ours");
                match c.caller_mut() {
                    Some(caller) if caller.waiting_agent => caller.waiting_agent = false,
                    _ => return,
                }
                self.caller_next_step_is(ch, CallerStep::HangUp);
            }
            Step::Digit { digit, start } => self.card_digit(ch, digit, start, self.now),
            Step::RemoteClear(cause) => {
                self.emit(EventKind::Released { ch, cause, by: Side::Remote });
                self.make_idle(ch);
            }
            Step::LocalReleaseDone(cause) => {
                self.emit(EventKind::Released { ch, cause, by: Side::Local });
                self.make_idle(ch);
            }
            Step::OutAlerting => {
                let c = self.chans.get_mut(&ch).expect("ours");
                c.state = ChannelState::Alerting;
                let Some(call) = c.call.as_mut() else { return };
                call.alerting = true;
                let next = match &call.far {
                    Far::Callee { outcome: Outcome::Answer { .. }, answer_after, .. } => {
                        Some((*answer_after, Step::OutAnswer))
                    }
                    _ => None,
                };
                self.emit(EventKind::Alerting { ch });
                match next {
                    Some((d, s)) => self.after(d, ch, s),
                    None => {
                        let (cause, by) = match line {
                            // R2 has no backward signal for "no answer": the card's own timer ends it.
                            Line::E1(Signalling::ChinaNo1) => (Cause::NO_ANSWER, Side::Local),
                            _ => (Cause::NO_ANSWER, Side::Remote),
                        };
                        self.after(self.no_answer_timeout, ch, Step::OutFail(cause, by));
                    }
                }
            }
            Step::OutAnswer => {
                let c = self.chans.get_mut(&ch).expect("ours");
                c.state = ChannelState::Connected;
                let Some(call) = c.call.as_mut() else { return };
                call.answered = true;
                let talk = match call.far {
                    Far::Callee { talk, .. } => talk,
                    _ => Duration::ZERO,
                };
                if let Some(a) = c.audio.as_mut() {
                    a.far_talk_until = Some(self.now + talk);
                }
                self.stats.outbound_answered += 1;
                self.emit(EventKind::Answered { ch });
                self.after(talk, ch, Step::CalleeHangsUp);
            }
            Step::OutFail(cause, by) => {
                *self.stats.outbound_failed.entry(cause.0).or_default() += 1;
                self.emit(EventKind::Released { ch, cause, by });
                self.make_idle(ch);
            }
            Step::CalleeHangsUp => {
                if let Some(call) = self.chans.get_mut(&ch).expect("ours").call.as_mut() {
                    call.far_gone = true;
                }
                self.far_clears(ch);
            }
            Step::RingOn => self.fxo_ring_on(ch),
            Step::RingOff => {
                if let Some(call) = self.chans.get_mut(&ch).expect("ours").call.as_mut() {
                    call.last_ring_end = self.now;
                }
                if let Some(a) = self.chans.get_mut(&ch).expect("ours").audio.as_mut() {
                    a.ringing = false;
                }
            }
            Step::CidDone => self.fxo_cid_done(ch),
            Step::ExchangeTone(tone) => self.exchange_tone(ch, tone),
            Step::Detected(tone) => self.tone_detected(ch, tone),
            Step::DialToneTimeout => {
                let c = self.chans.get_mut(&ch).expect("ours");
                if c.call.as_ref().and_then(|x| x.fxo_out) == Some(FxoOut::WaitDialTone) {
                    *self.stats.outbound_failed.entry(Cause::NETWORK_OUT_OF_ORDER.0).or_default() += 1;
                    self.emit(EventKind::Released {
                        ch,
                        cause: Cause::NETWORK_OUT_OF_ORDER,
                        by: Side::Local,
                    });
                    self.make_idle(ch);
                }
            }
            Step::DialDigitsDone => self.fxo_dialled(ch),
            Step::AnswerDetected => {
                let c = self.chans.get_mut(&ch).expect("ours");
                c.state = ChannelState::Connected;
                if let Some(call) = c.call.as_mut() {
                    call.answered = true;
                    call.fxo_out = Some(FxoOut::Connected);
                }
                self.stats.outbound_answered += 1;
                self.emit(EventKind::Answered { ch });
            }
            Step::NoAnswerTimeout => {
                *self.stats.outbound_failed.entry(Cause::NO_ANSWER.0).or_default() += 1;
                self.emit(EventKind::Released { ch, cause: Cause::NO_ANSWER, by: Side::Local });
                self.make_idle(ch);
            }
            Step::StationRingOn => self.station_ring_on(ch),
            Step::StationRingOff => {
                if let Some(a) = self.chans.get_mut(&ch).expect("ours").audio.as_mut() {
                    a.ringing = false;
                }
            }
            Step::StationCid => self.station_cid(ch),
            Step::PhoneAnswers => {
                let ringing = self.chans[&ch].phone.as_ref().is_some_and(|p| p.ringing && !p.off_hook);
                if ringing {
                    self.phone_act(ch, PhoneAct::OffHook);
                }
            }
            Step::PhoneHangsUp => {
                if self.chans[&ch].phone.as_ref().is_some_and(|p| p.off_hook && !p.leave_off_hook) {
                    self.phone_act(ch, PhoneAct::OnHook);
                }
            }
            Step::FlashTimer(seq) => {
                let c = self.chans.get_mut(&ch).expect("ours");
                let p = c.phone.as_mut().expect("stations have phones");
                if p.hook_seq == seq && !p.off_hook && p.card_off_hook {
                    p.card_off_hook = false;
                    p.on_hook_at = None;
                    self.emit(EventKind::OnHook { ch });
                    self.station_idle(ch);
                }
            }
            Step::PlayDone(seq) => {
                if self.chans[&ch].play.as_ref().is_some_and(|p| p.seq == seq) {
                    self.finish_play(ch, PlayEnd::Completed);
                }
            }
        }
        self.ensure_tick();
    }

    /// The caller hung up (abandoned or done): release as the line shows it.
    fn caller_leaves(&mut self, ch: ChannelId, offered: bool) {
        #[cfg(feature = "pri")]
        if self.pri_far_clears(ch) {
            return;
        }
        if !offered {
            // Gone before the card saw a complete call (R2 register phase, FXO before
            // the caller ID ended): the seizure just ends.
            self.make_idle(ch);
            return;
        }
        self.far_clears(ch);
    }

    /// The far end clears; how the card learns it depends on the line.
    fn far_clears(&mut self, ch: ChannelId) {
        #[cfg(feature = "pri")]
        if self.pri_far_clears(ch) {
            return;
        }
        let line = self.line(ch);
        let c = self.chans.get_mut(&ch).expect("ours");
        let answered = c.call.as_ref().is_some_and(|x| x.answered);
        if let Some(a) = c.audio.as_mut() {
            a.far_talk_until = None;
        }
        match line {
            Line::E1(sig) => {
                let d = timing::remote_clear_delay(sig, &mut self.rng);
                self.after(d, ch, Step::RemoteClear(Cause::NORMAL_CLEARING));
            }
            Line::Fxo { disconnect, .. } => {
                if !answered {
                    // An inbound caller gives up while we ring: the rings stop, and the
                    // card only knows when the next ring fails to come.
                    let (_, off) = self.ring_cadence;
                    let last = c.call.as_ref().map_or(self.now, |x| x.last_ring_end);
                    let at = (last + off + analog::RING_GONE_MARGIN).max(self.now);
                    let gen = c.gen;
                    self.schedule(at, Action::Chan(ch, gen, Step::RemoteClear(Cause::NORMAL_CLEARING)));
                    return;
                }
                match disconnect {
                    Disconnect::PolarityReversal => {
                        self.after(analog::REVERSAL_DETECT, ch, Step::RemoteClear(Cause::NORMAL_CLEARING))
                    }
                    Disconnect::BusyTone => self.exchange_tone(ch, Some(Tone::Busy)),
                }
            }
            Line::Fxs { .. } => {}
        }
    }

    /// Back to idle: plays and taps end, people and timers of the call are forgotten.
    pub(crate) fn make_idle(&mut self, ch: ChannelId) {
        if self.chans[&ch].play.is_some() {
            self.finish_play(ch, PlayEnd::Released);
        }
        let c = self.chans.get_mut(&ch).expect("ours");
        c.gen += 1;
        c.call = None;
        c.exchange_tone = None;
        c.local_tone = None;
        c.state = c.idle_state();
        let taps = std::mem::take(&mut c.taps);
        if let Some(a) = c.audio.as_mut() {
            a.reset_call();
        }
        for t in taps {
            self.emit(EventKind::RecordFinished { ch, id: t.id, frames: t.frames, dropped: t.dropped });
        }
    }

    fn station_idle(&mut self, ch: ChannelId) {
        let c = self.chans.get_mut(&ch).expect("ours");
        if let Some(p) = c.phone.as_mut() {
            p.ringing = false;
        }
        self.make_idle(ch);
    }

    fn caller_next(&mut self, ch: ChannelId) {
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(caller) = c.caller_mut() else { return };
        let Some(step) = caller.script.steps.get(caller.step).cloned() else { return };
        caller.step += 1;
        self.caller_next_step_is(ch, step);
    }

    /// Whether the card has `ch` talking with another channel: a pair, or a bridge
    /// with someone else in it.
    fn connected_to_someone(&self, ch: ChannelId) -> bool {
        self.listens.get(&ch).is_some_and(|l| !l.is_empty())
            || self.conferences.values().any(|m| m.contains_key(&ch) && m.len() > 1)
    }

    /// The card connected `ch`: a caller waiting for an agent goes on with the script.
    fn caller_reached_someone(&mut self, ch: ChannelId) {
        let Some(caller) = self.chans.get_mut(&ch).and_then(|c| c.caller_mut()) else { return };
        if caller.waiting_agent {
            caller.waiting_agent = false;
            self.after(Duration::ZERO, ch, Step::CallerNext);
        }
    }

    fn caller_next_step_is(&mut self, ch: ChannelId, step: CallerStep) {
        let connected = self.connected_to_someone(ch);
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(caller) = c.caller_mut() else { return };
        match step {
            CallerStep::WaitForPrompt => caller.waiting_prompt = true,
            CallerStep::Press(digits) => {
                self.stats.digits_pressed += digits.len() as u64;
                self.far_press(ch, &digits, true);
            }
            CallerStep::Wait(s) => {
                let d = s.draw(&mut caller.rng);
                self.after(d, ch, Step::CallerNext);
            }
            CallerStep::Talk(s) => {
                let d = s.draw(&mut caller.rng);
                if let Some(a) = c.audio.as_mut() {
                    a.far_talk_until = Some(self.now + d);
                }
                self.after(d, ch, Step::CallerNext);
            }
            CallerStep::WaitForAgent(patience) => {
                if connected {
                    self.after(Duration::ZERO, ch, Step::CallerNext);
                } else {
                    caller.waiting_agent = true;
                    if let Some(p) = patience {
                        let d = p.draw(&mut caller.rng);
                        self.after(d, ch, Step::AgentWaitOver);
                    }
                }
            }
            CallerStep::HangUp => {
                if let Some(call) = c.call.as_mut() {
                    call.far_gone = true;
                }
                self.stats.caller_cleared += 1;
                self.far_clears(ch);
            }
        }
    }

    /// The far party keys digits toward the card. `continue_script`: the caller's next
    /// step follows the last digit.
    pub(crate) fn far_press(&mut self, ch: ChannelId, digits: &str, continue_script: bool) {
        if self.audio.is_some() {
            self.audio_far_press(ch, digits, continue_script);
            return;
        }
        let per = analog::DTMF_ON + analog::DTMF_OFF;
        let mut t = Duration::ZERO;
        for d in digits.chars() {
            let start = self.now + t;
            self.after(t + analog::DTMF_ON, ch, Step::Digit { digit: d, start });
            t += per;
        }
        if continue_script {
            let react = ms(&mut self.rng, 200, 600);
            self.after(t + react, ch, Step::CallerNext);
        }
    }

    /// A digit received by the card (found by the detector in audio mode).
    pub(crate) fn card_digit(&mut self, ch: ChannelId, digit: char, start: Instant, end: Instant) {
        let c = self.chans.get_mut(&ch).expect("ours");
        if c.local_tone == Some(Tone::Dial) {
            c.local_tone = None;
        }
        let barge = c.play.as_ref().is_some_and(|p| p.barge_in);
        self.emit(EventKind::Digit { ch, digit, start, end });
        if barge {
            self.finish_play(ch, PlayEnd::Digit);
        }
    }

    pub(crate) fn finish_play(&mut self, ch: ChannelId, reason: PlayEnd) {
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(p) = c.play.take() else { return };
        let was_prompt = !matches!(p.kind, PlayKind::Tone(_));
        let notify_caller = match c.caller_mut() {
            Some(caller) if caller.waiting_prompt && was_prompt && reason != PlayEnd::Released => {
                caller.waiting_prompt = false;
                true
            }
            _ => false,
        };
        self.emit(EventKind::PlayFinished { ch, id: p.id, reason });
        if notify_caller {
            let react = ms(&mut self.rng, 300, 800);
            self.after(react, ch, Step::CallerNext);
        }
    }

    // ---- FXO lines ----

    fn fxo_ring_on(&mut self, ch: ChannelId) {
        let (on, off) = self.ring_cadence;
        let Line::Fxo { caller_id, .. } = self.line(ch) else { return };
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(call) = c.call.as_mut() else { return };
        if call.answered || call.far_gone {
            return;
        }
        call.rings += 1;
        let first = call.rings == 1;
        if first && c.audio.is_none() {
            c.heard.tone(Tone::Ringback);
        }
        if let Some(a) = c.audio.as_mut() {
            a.ringing = true;
        }
        self.after(on, ch, Step::RingOff);
        self.after(on + off, ch, Step::RingOn);
        if first {
            if caller_id == CallerIdMode::None {
                self.after(on, ch, Step::Offer);
            } else {
                let ani = self.chans[&ch].call.as_ref().and_then(|c| c.ani.clone());
                // No number from the network: the line says it is withheld.
                let absence = if ani.is_none() { Some(crate::signal::Absence::Private) } else { None };
                let cid = CallerId { number: ani, absence, ..CallerId::default() };
                let d = if self.audio.is_some() {
                    self.audio_fxo_send_cid(ch, &cid, caller_id, on + analog::CID_AFTER_RING)
                } else {
                    cid_duration(caller_id, &cid)
                };
                self.after(on + analog::CID_AFTER_RING + d, ch, Step::CidDone);
            }
        }
    }

    fn fxo_cid_done(&mut self, ch: ChannelId) {
        let audio = self.audio.is_some();
        let c = self.chans.get_mut(&ch).expect("ours");
        let decoded = if audio { c.audio.as_mut().and_then(|a| a.take_fxo_cid()) } else { None };
        if let Some(call) = c.call.as_mut() {
            if audio {
                // What the decoder made of the line's audio, or nothing.
                call.ani = decoded.and_then(|cid| cid.number);
            }
        }
        self.offer(ch);
    }

    /// The exchange starts (or stops) a tone toward the card on an FXO line.
    fn exchange_tone(&mut self, ch: ChannelId, tone: Option<Tone>) {
        let c = self.chans.get_mut(&ch).expect("ours");
        c.exchange_tone = tone;
        if let Some(a) = c.audio.as_mut() {
            a.set_exchange_tone(tone);
            return;
        }
        if let Some(t) = tone {
            // Signalling mode: the detector would need this long to be sure.
            let d = detect_time(&self.plan, t);
            self.after(d, ch, Step::Detected(t));
        }
    }

    /// The card recognised a tone on the channel's receive side.
    pub(crate) fn tone_detected(&mut self, ch: ChannelId, tone: Tone) {
        let c = self.chans.get_mut(&ch).expect("ours");
        if self.audio.is_none() && c.exchange_tone != Some(tone) {
            return;
        }
        let line = c.line;
        let stage = c.call.as_ref().and_then(|x| x.fxo_out);
        let inbound_answered = c.call.as_ref().is_some_and(|x| x.inbound && x.answered);
        self.emit(EventKind::ToneDetected { ch, tone });
        let Line::Fxo { .. } = line else { return };
        match (tone, stage) {
            (Tone::Dial, Some(FxoOut::WaitDialTone)) => self.fxo_dial(ch),
            (Tone::Ringback, Some(FxoOut::AwaitProgress)) => {
                let c = self.chans.get_mut(&ch).expect("ours");
                c.state = ChannelState::Alerting;
                if let Some(call) = c.call.as_mut() {
                    call.fxo_out = Some(FxoOut::Ringing);
                    call.alerting = true;
                }
                self.emit(EventKind::Alerting { ch });
                self.after(self.no_answer_timeout, ch, Step::NoAnswerTimeout);
            }
            (Tone::Busy, Some(FxoOut::AwaitProgress | FxoOut::Ringing)) => {
                *self.stats.outbound_failed.entry(Cause::USER_BUSY.0).or_default() += 1;
                self.emit(EventKind::Released { ch, cause: Cause::USER_BUSY, by: Side::Remote });
                self.make_idle(ch);
            }
            (Tone::Congestion, Some(FxoOut::AwaitProgress | FxoOut::Ringing)) => {
                *self.stats.outbound_failed.entry(Cause::NO_CIRCUIT_AVAILABLE.0).or_default() += 1;
                self.emit(EventKind::Released { ch, cause: Cause::NO_CIRCUIT_AVAILABLE, by: Side::Remote });
                self.make_idle(ch);
            }
            (Tone::Busy | Tone::Congestion, Some(FxoOut::Connected)) => self.fxo_far_hung_up(ch),
            (Tone::Busy | Tone::Congestion, None) if inbound_answered => self.fxo_far_hung_up(ch),
            _ => {}
        }
    }

    /// The far end hung up and the exchange says so with busy tone.
    fn fxo_far_hung_up(&mut self, ch: ChannelId) {
        self.emit(EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Remote });
        self.make_idle(ch);
    }

    fn fxo_dial(&mut self, ch: ChannelId) {
        let c = self.chans.get_mut(&ch).expect("ours");
        c.exchange_tone = None;
        if let Some(a) = c.audio.as_mut() {
            a.set_exchange_tone(None);
        }
        let Some(call) = c.call.as_mut() else { return };
        call.fxo_out = Some(FxoOut::Dialing);
        let digits = call.dnis.clone();
        let d = self.card_send_digits(ch, &digits);
        self.after(d, ch, Step::DialDigitsDone);
    }

    /// Digits are out; the exchange routes the call and answers with a tone.
    fn fxo_dialled(&mut self, ch: ChannelId) {
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(call) = c.call.as_mut() else { return };
        call.fxo_out = Some(FxoOut::AwaitProgress);
        let (outcome, answer_after) = match &call.far {
            Far::Callee { outcome, answer_after, .. } => (outcome.clone(), *answer_after),
            Far::Caller(_) => return,
        };
        let post_dial = ms(&mut self.rng, 1000, 3000);
        let tone = match outcome {
            Outcome::Answer { .. } | Outcome::NoAnswer => Tone::Ringback,
            Outcome::Busy => Tone::Busy,
            Outcome::Unallocated | Outcome::Congestion | Outcome::OutOfOrder => Tone::Congestion,
        };
        self.after(post_dial, ch, Step::ExchangeTone(Some(tone)));
        if let Outcome::Answer { .. } = outcome {
            let at = post_dial + answer_after;
            self.after(at, ch, Step::ExchangeTone(None));
            let Line::Fxo { disconnect, .. } = self.line(ch) else { return };
            let detect = match disconnect {
                Disconnect::PolarityReversal => analog::REVERSAL_DETECT,
                Disconnect::BusyTone => analog::VOICE_ANSWER_DETECT,
            };
            self.after(at + detect, ch, Step::AnswerDetected);
            // The callee's talk starts at the answer; the callee hangs up after it.
            let talk = match &self.chans[&ch].call.as_ref().expect("in call").far {
                Far::Callee { talk, .. } => *talk,
                _ => Duration::ZERO,
            };
            if let Some(a) = self.chans.get_mut(&ch).expect("ours").audio.as_mut() {
                a.far_talk_from = Some(self.now + at);
                a.far_talk_until = Some(self.now + at + talk);
            }
            self.after(at + talk, ch, Step::CalleeHangsUp);
        }
    }

    /// The card sends DTMF on the channel; returns how long it takes.
    fn card_send_digits(&mut self, ch: ChannelId, digits: &str) -> Duration {
        let per = analog::DTMF_ON + analog::DTMF_OFF;
        let total = per * digits.len() as u32;
        let c = self.chans.get_mut(&ch).expect("ours");
        match c.audio.as_mut() {
            Some(a) => a.send_digits(digits),
            None => c.heard.digits.push_str(digits),
        }
        total
    }

    // ---- Stations ----

    fn station_ring_on(&mut self, ch: ChannelId) {
        let (on, off) = self.ring_cadence;
        let Line::Fxs { caller_id } = self.line(ch) else { return };
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(p) = c.phone.as_mut() else { return };
        if !p.ringing || p.off_hook {
            return;
        }
        let first_cid = p.ring_cid.take();
        if let Some(a) = c.audio.as_mut() {
            a.ringing = true;
        }
        self.after(on, ch, Step::StationRingOff);
        self.after(on + off, ch, Step::StationRingOn);
        if let Some(cid) = first_cid {
            if caller_id != CallerIdMode::None {
                let start = on + analog::CID_AFTER_RING;
                if self.audio.is_some() {
                    self.audio_station_send_cid(ch, &cid, caller_id, start);
                } else {
                    let d = cid_duration(caller_id, &cid);
                    self.chans.get_mut(&ch).expect("ours").phone.as_mut().expect("station").ring_cid = None;
                    self.pending_cid(ch, cid, start + d);
                }
            }
        }
    }

    fn pending_cid(&mut self, ch: ChannelId, cid: CallerId, after: Duration) {
        let c = self.chans.get_mut(&ch).expect("ours");
        if let Some(p) = c.phone.as_mut() {
            p.ring_cid = Some(cid);
        }
        self.after(after, ch, Step::StationCid);
    }

    fn station_cid(&mut self, ch: ChannelId) {
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(p) = c.phone.as_mut() else { return };
        if p.off_hook {
            return;
        }
        if let Some(cid) = p.ring_cid.take() {
            c.heard.caller_ids.push(cid);
        }
    }

    fn phone_act(&mut self, ch: ChannelId, act: PhoneAct) {
        match act {
            PhoneAct::OffHook => self.phone_off_hook(ch),
            PhoneAct::OnHook => self.phone_on_hook(ch),
            PhoneAct::Flash(held) => {
                self.phone_on_hook(ch);
                self.schedule(self.now + held, Action::Phone(ch, PhoneAct::OffHook));
            }
            PhoneAct::Dial(digits) => {
                let off = self.chans[&ch].phone.as_ref().is_some_and(|p| p.off_hook);
                if !off {
                    self.phone_off_hook(ch);
                }
                // The person listens to the dial tone a moment before keying.
                let wait = ms(&mut self.rng, 1300, 1800);
                let gen = self.chans[&ch].gen;
                self.schedule(self.now + wait, Action::Chan(ch, gen, Step::CallerNext));
                // A station has no caller script: keep the digits as a one-step script.
                let c = self.chans.get_mut(&ch).expect("ours");
                let rng = c.phone.as_mut().map(|p| p.rng.fork()).unwrap_or_else(|| Rng::new(0));
                c.call = Some(Call {
                    inbound: false,
                    ani: None,
                    dnis: String::new(),
                    category: CallerCategory::Ordinary,
                    far: Far::Caller(Caller {
                        script: CallerScript::new(Spread::ZERO, vec![CallerStep::Press(digits)]),
                        step: 0,
                        rng,
                        waiting_prompt: false,
                        waiting_agent: false,
                    }),
                    offered: false,
                    answered: true,
                    far_gone: false,
                    alerting: false,
                    fxo_out: None,
                    last_ring_end: self.now,
                    rings: 0,
                });
            }
        }
        self.ensure_tick();
    }

    fn phone_off_hook(&mut self, ch: ChannelId) {
        let now = self.now;
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(p) = c.phone.as_mut() else { return };
        if p.off_hook {
            return;
        }
        p.off_hook = true;
        if p.card_off_hook {
            // Back within the flash window (the card has not reported on hook yet).
            let held = p.on_hook_at.map_or(Duration::ZERO, |t| now - t);
            p.on_hook_at = None;
            p.hook_seq += 1;
            if held >= analog::FLASH_MIN {
                self.emit(EventKind::HookFlash { ch });
            }
            return;
        }
        p.card_off_hook = true;
        let was_ringing = std::mem::replace(&mut p.ringing, false);
        p.ring_cid = None;
        let behaviour = p.behaviour.clone();
        let talk = behaviour.talk.map(|t| t.draw(&mut p.rng));
        if let Some(a) = c.audio.as_mut() {
            a.ringing = false;
        }
        if was_ringing {
            c.state = ChannelState::Connected;
            if let Some(a) = c.audio.as_mut() {
                a.far_talk_until = talk.map(|t| now + t).or(Some(Instant::from_micros(u64::MAX)));
            }
        } else {
            c.state = ChannelState::OffHook;
            c.local_tone = Some(Tone::Dial);
            if c.audio.is_none() {
                c.heard.tone(Tone::Dial);
            }
        }
        self.emit(EventKind::OffHook { ch });
        if was_ringing {
            if let Some(t) = talk {
                self.after(t, ch, Step::PhoneHangsUp);
            }
        }
    }

    fn phone_on_hook(&mut self, ch: ChannelId) {
        let now = self.now;
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(p) = c.phone.as_mut() else { return };
        if !p.off_hook {
            return;
        }
        p.off_hook = false;
        p.on_hook_at = Some(now);
        p.hook_seq += 1;
        let seq = p.hook_seq;
        if let Some(a) = c.audio.as_mut() {
            a.far_talk_until = None;
        }
        // The card waits out the flash window before it calls this a hang-up.
        let gen = c.gen;
        self.schedule(now + analog::FLASH_MAX, Action::Chan(ch, gen, Step::FlashTimer(seq)));
    }

    // ---- Faults ----

    fn fault(&mut self, f: Fault) {
        match f {
            Fault::SpanAlarm { span, alarm, duration } => {
                let Some((_, alarms)) = self.spans.get_mut(&span) else { return };
                if alarms.contains(&alarm) {
                    return;
                }
                alarms.push(alarm);
                let first = alarms.len() == 1;
                self.emit(EventKind::SpanAlarm { card: self.id, span, alarm, raised: true });
                if first {
                    #[cfg(feature = "pri")]
                    self.pri_layer1_lost(span);
                    let cause = alarm_cause(alarm);
                    for ch in self.span_channels(span) {
                        let c = self.chans.get_mut(&ch).expect("ours");
                        let in_call = c.call.is_some() || c.state == ChannelState::Releasing;
                        let offered_or_out = c.call.as_ref().is_some_and(|x| x.offered || !x.inbound);
                        let was_blocked = c.blocked();
                        c.alarm_blocked = true;
                        if in_call {
                            if offered_or_out || c.state == ChannelState::Releasing {
                                self.emit(EventKind::Released { ch, cause, by: Side::Remote });
                            }
                            self.make_idle(ch);
                        }
                        self.chans.get_mut(&ch).expect("ours").state = ChannelState::Blocked;
                        if !was_blocked {
                            self.emit(EventKind::Blocked {
                                ch,
                                reason: format!("span {span} alarm {alarm:?}"),
                            });
                        }
                    }
                }
                if let Some(d) = duration {
                    self.schedule(self.now + d, Action::Fault(Fault::ClearSpanAlarm { span, alarm }));
                }
            }
            Fault::ClearSpanAlarm { span, alarm } => {
                let Some((_, alarms)) = self.spans.get_mut(&span) else { return };
                let Some(i) = alarms.iter().position(|a| *a == alarm) else { return };
                alarms.remove(i);
                let none_left = alarms.is_empty();
                self.emit(EventKind::SpanAlarm { card: self.id, span, alarm, raised: false });
                if none_left {
                    for ch in self.span_channels(span) {
                        let c = self.chans.get_mut(&ch).expect("ours");
                        c.alarm_blocked = false;
                        if !c.blocked() {
                            if c.state == ChannelState::Blocked {
                                c.state = ChannelState::Idle;
                            }
                            self.emit(EventKind::Unblocked { ch });
                        }
                    }
                }
            }
            Fault::BlockChannel(ch) => {
                let Some(c) = self.chans.get_mut(&ch) else { return };
                let was = c.blocked();
                c.far_blocked = true;
                if c.state == ChannelState::Idle {
                    c.state = ChannelState::Blocked;
                }
                if !was {
                    self.emit(EventKind::Blocked { ch, reason: "blocked by the far end".to_string() });
                }
            }
            Fault::UnblockChannel(ch) => {
                let Some(c) = self.chans.get_mut(&ch) else { return };
                if !c.far_blocked {
                    return;
                }
                c.far_blocked = false;
                if !c.blocked() {
                    if c.state == ChannelState::Blocked {
                        c.state = ChannelState::Idle;
                    }
                    self.emit(EventKind::Unblocked { ch });
                }
            }
            Fault::DeadLine { port } => {
                self.dead_lines.insert(port);
            }
            Fault::LineRestored { port } => {
                self.dead_lines.remove(&port);
            }
            Fault::LeftOffHook(ch) => {
                if let Some(p) = self.chans.get_mut(&ch).and_then(|c| c.phone.as_mut()) {
                    p.leave_off_hook = true;
                }
            }
        }
    }

    fn span_channels(&self, span: u8) -> Vec<ChannelId> {
        self.chans
            .keys()
            .filter(|c| matches!(c.addr, ChannelAddr::E1 { span: s, .. } if s == span))
            .copied()
            .collect()
    }

    // ---- Commands ----

    fn usable(&mut self, ch: ChannelId) -> Result<&mut Chan> {
        let c = self.chan(ch)?;
        if c.blocked() {
            return Err(Error::new(ErrorKind::Blocked, format!("{ch} is out of service")));
        }
        Ok(c)
    }

    fn command(&mut self, cmd: Command) -> Result<()> {
        #[cfg(feature = "pri")]
        let cmd = match self.pri_command(cmd) {
            Ok(done) => return done,
            Err(cmd) => cmd,
        };
        match cmd {
            Command::Accept { ch } => {
                let audio = self.audio.is_some();
                let c = self.chan(ch)?;
                if c.state != ChannelState::Offered || !c.call.as_ref().is_some_and(|x| x.offered) {
                    return Err(state_err(ch, c.state, "accept"));
                }
                c.state = ChannelState::Alerting;
                if let Some(call) = c.call.as_mut() {
                    call.alerting = true;
                }
                if !audio {
                    c.heard.tone(Tone::Ringback);
                }
                Ok(())
            }
            Command::Answer { ch } => {
                let line = self.line_of(ch)?;
                let c = self.chan(ch)?;
                let ok = matches!(c.state, ChannelState::Offered | ChannelState::Alerting)
                    && c.call.as_ref().is_some_and(|x| x.offered && x.inbound && !x.answered);
                if !ok {
                    return Err(state_err(ch, c.state, "answer"));
                }
                let d = match line {
                    Line::E1(sig) => timing::answer_delay(sig, &mut self.rng),
                    // FXO: go off hook; ringing stops at once.
                    _ => ms(&mut self.rng, 30, 60),
                };
                // A new generation cancels the rings and the caller's patience; the
                // answer takes effect under it.
                let c = self.chan(ch)?;
                c.gen += 1;
                c.state = ChannelState::Alerting;
                self.after(d, ch, Step::AnswerTakesEffect);
                Ok(())
            }
            Command::Reject { ch, cause } | Command::Release { ch, cause } => self.local_release(ch, cause),
            Command::PlaceCall { ch, called, calling, category } => {
                self.place_call(ch, called, calling, category)
            }
            Command::RingStation { ch, caller_id } => {
                let c = self.usable(ch)?;
                let Some(p) = c.phone.as_mut() else {
                    return Err(Error::new(ErrorKind::InvalidState, format!("{ch} is not a station")));
                };
                if p.off_hook || p.card_off_hook || c.state != ChannelState::Idle {
                    return Err(state_err(ch, c.state, "ring"));
                }
                p.ringing = true;
                p.ring_cid = caller_id;
                let behaviour = p.behaviour.clone();
                let answer = behaviour.answer_after.map(|a| a.draw(&mut p.rng));
                c.gen += 1;
                c.state = ChannelState::Alerting;
                self.after(Duration::ZERO, ch, Step::StationRingOn);
                if let Some(a) = answer {
                    self.after(a, ch, Step::PhoneAnswers);
                }
                Ok(())
            }
            Command::StopRinging { ch } => {
                let c = self.chan(ch)?;
                let ringing = c.phone.as_ref().is_some_and(|p| p.ringing);
                if !ringing {
                    return Err(state_err(ch, c.state, "stop ringing"));
                }
                self.station_idle(ch);
                Ok(())
            }
            Command::Play { ch, id, source, barge_in } => self.play(ch, id, source, barge_in),
            Command::StopPlay { ch } => {
                self.chan(ch)?;
                self.finish_play(ch, PlayEnd::Stopped);
                Ok(())
            }
            Command::SendDigits { ch, digits } => {
                check_digits(&digits)?;
                let c = self.chan(ch)?;
                if !c.engine_sees_call() && !c.station_off_hook() {
                    return Err(state_err(ch, c.state, "send digits on"));
                }
                self.card_send_digits(ch, &digits);
                Ok(())
            }
            Command::StartTap { ch, id, sink } => {
                let c = self.chan(ch)?;
                if c.taps.iter().any(|t| t.id == id) {
                    return Err(Error::new(
                        ErrorKind::InvalidState,
                        format!("tap {id} already runs on {ch}"),
                    ));
                }
                c.taps.push(Tap { id, sink, frames: 0, dropped: 0 });
                Ok(())
            }
            Command::StopTap { ch, id } => {
                let c = self.chan(ch)?;
                let Some(i) = c.taps.iter().position(|t| t.id == id) else {
                    return Err(Error::new(ErrorKind::InvalidState, format!("no tap {id} on {ch}")));
                };
                let t = c.taps.remove(i);
                self.emit(EventKind::RecordFinished { ch, id, frames: t.frames, dropped: t.dropped });
                Ok(())
            }
            Command::Connect { a, b } => {
                self.chan(a)?;
                self.chan(b)?;
                if a == b {
                    return Err(Error::new(ErrorKind::InvalidState, format!("cannot connect {a} to itself")));
                }
                self.listens.entry(a).or_default().insert(b);
                self.listens.entry(b).or_default().insert(a);
                self.stop_local_dial_tone(a);
                self.stop_local_dial_tone(b);
                self.caller_reached_someone(a);
                self.caller_reached_someone(b);
                Ok(())
            }
            Command::Listen { listener, source } => {
                self.chan(listener)?;
                self.chan(source)?;
                self.listens.entry(listener).or_default().insert(source);
                Ok(())
            }
            Command::Disconnect { ch } => {
                self.chan(ch)?;
                self.listens.remove(&ch);
                for set in self.listens.values_mut() {
                    set.remove(&ch);
                }
                Ok(())
            }
            Command::JoinConference { conf, ch, rights } => {
                self.chan(ch)?;
                if conf.card != self.id || conf.bridge == 0 || conf.bridge > self.caps.conference_bridges {
                    return Err(Error::new(
                        ErrorKind::NoSuchChannel,
                        format!(
                            "no bridge {conf}: this card has bridges 1 to {}",
                            self.caps.conference_bridges
                        ),
                    ));
                }
                let max = self.caps.conference_members as usize;
                let members = self.conferences.entry(conf).or_default();
                if !members.contains_key(&ch) && members.len() >= max {
                    return Err(Error::new(
                        ErrorKind::Resource,
                        format!("bridge {conf} is full ({max} members)"),
                    ));
                }
                members.insert(ch, rights);
                let all: Vec<ChannelId> =
                    if members.len() > 1 { members.keys().copied().collect() } else { Vec::new() };
                self.stop_local_dial_tone(ch);
                all.into_iter().for_each(|m| self.caller_reached_someone(m));
                Ok(())
            }
            Command::SetMemberRights { conf, ch, rights } => {
                let m =
                    self.conferences.get_mut(&conf).and_then(|m| m.get_mut(&ch)).ok_or_else(|| {
                        Error::new(ErrorKind::InvalidState, format!("{ch} is not in {conf}"))
                    })?;
                *m = rights;
                Ok(())
            }
            Command::LeaveConference { conf, ch } => {
                let members = self
                    .conferences
                    .get_mut(&conf)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidState, format!("{ch} is not in {conf}")))?;
                if members.remove(&ch).is_none() {
                    return Err(Error::new(ErrorKind::InvalidState, format!("{ch} is not in {conf}")));
                }
                if members.is_empty() {
                    self.conferences.remove(&conf);
                }
                Ok(())
            }
            Command::Block { ch } => {
                let c = self.chan(ch)?;
                if c.maint_blocked {
                    return Ok(());
                }
                if !matches!(c.state, ChannelState::Idle | ChannelState::Blocked) {
                    return Err(state_err(ch, c.state, "block"));
                }
                let was = c.blocked();
                c.maint_blocked = true;
                c.state = ChannelState::Blocked;
                if !was {
                    self.emit(EventKind::Blocked { ch, reason: "maintenance".to_string() });
                }
                Ok(())
            }
            Command::Unblock { ch } => {
                let c = self.chan(ch)?;
                if !c.maint_blocked {
                    return Ok(());
                }
                c.maint_blocked = false;
                if !c.blocked() {
                    c.state = ChannelState::Idle;
                    self.emit(EventKind::Unblocked { ch });
                }
                Ok(())
            }
        }
    }

    fn stop_local_dial_tone(&mut self, ch: ChannelId) {
        if let Some(c) = self.chans.get_mut(&ch) {
            if c.local_tone == Some(Tone::Dial) {
                c.local_tone = None;
            }
        }
    }

    fn line_of(&self, ch: ChannelId) -> Result<Line> {
        self.chans.get(&ch).map(|c| c.line).ok_or_else(|| no_channel(ch))
    }

    fn local_release(&mut self, ch: ChannelId, cause: Cause) -> Result<()> {
        let line = self.line_of(ch)?;
        let c = self.chan(ch)?;
        if let Line::Fxs { .. } = line {
            // Cut the station: a ringing phone stops, an off-hook one hears busy tone.
            let p = c.phone.as_mut().expect("stations have phones");
            if !(p.ringing || p.card_off_hook) {
                return Err(state_err(ch, c.state, "release"));
            }
            if p.ringing {
                self.emit(EventKind::Released { ch, cause, by: Side::Local });
                self.station_idle(ch);
                return Ok(());
            }
            let hang_up = if p.leave_off_hook { None } else { p.behaviour.hang_up_after_release };
            let after = hang_up.map(|h| h.draw(&mut p.rng));
            c.gen += 1;
            c.call = None;
            // Off hook with no call; busy tone until the handset goes down (the tone
            // plans have no howler, so busy it stays).
            c.state = ChannelState::OffHook;
            c.local_tone = Some(Tone::Busy);
            if c.audio.is_none() {
                c.heard.tone(Tone::Busy);
            }
            if let Some(a) = c.audio.as_mut() {
                a.far_talk_until = None;
            }
            if c.play.is_some() {
                self.finish_play(ch, PlayEnd::Released);
            }
            self.emit(EventKind::Released { ch, cause, by: Side::Local });
            if let Some(d) = after {
                self.after(d, ch, Step::PhoneHangsUp);
            }
            return Ok(());
        }
        if !c.engine_sees_call() || c.state == ChannelState::Releasing {
            return Err(state_err(ch, c.state, "release"));
        }
        c.gen += 1;
        c.state = ChannelState::Releasing;
        if let Some(a) = c.audio.as_mut() {
            a.far_talk_until = None;
        }
        let d = match line {
            Line::E1(sig) => timing::release_delay(sig, &mut self.rng),
            _ => ms(&mut self.rng, 10, 30),
        };
        self.after(d, ch, Step::LocalReleaseDone(cause));
        Ok(())
    }

    fn place_call(
        &mut self,
        ch: ChannelId,
        called: String,
        calling: Option<String>,
        category: CallerCategory,
    ) -> Result<()> {
        let line = self.line_of(ch)?;
        if let Line::Fxs { .. } = line {
            return Err(Error::new(ErrorKind::InvalidState, format!("{ch} is a station; ring it instead")));
        }
        if called.is_empty() || !called.chars().all(is_dtmf_digit) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("called number {called:?} must be digits (0-9 * # A-D)"),
            ));
        }
        let c = self.usable(ch)?;
        if c.state != ChannelState::Idle {
            return Err(state_err(ch, c.state, "place a call on"));
        }
        let outcome = self
            .outbound
            .iter()
            .find(|r| called.starts_with(&r.prefix))
            .map(|r| r.draw(&mut self.rng))
            .unwrap_or(Outcome::Answer {
                after: Spread::secs_between(2.0, 8.0),
                talk: Spread::secs_between(30.0, 180.0),
            });
        let (answer_after, talk) = match &outcome {
            Outcome::Answer { after, talk } => (after.draw(&mut self.rng), talk.draw(&mut self.rng)),
            _ => (Duration::ZERO, Duration::ZERO),
        };
        self.stats.outbound_placed += 1;
        let c = self.chans.get_mut(&ch).expect("checked");
        c.gen += 1;
        c.state = ChannelState::Dialing;
        let mut placed = Call::new(
            false,
            calling.clone(),
            called.clone(),
            category,
            Far::Callee { outcome: outcome.clone(), talk, answer_after },
            self.now,
        );
        // Our own call: the engine knows it already, there is nothing to offer.
        placed.offered = true;
        c.call = Some(placed);
        match line {
            #[cfg(feature = "pri")]
            Line::E1(_) if self.pri_owns(ch) => self.pri_place_call(ch, &called, calling.as_deref())?,
            Line::E1(sig) => match outcome {
                Outcome::Answer { .. } | Outcome::NoAnswer => {
                    let d = timing::outbound_progress(sig, &called, calling.as_deref(), &mut self.rng);
                    self.after(d, ch, Step::OutAlerting);
                }
                other => {
                    let d = timing::outbound_failure(sig, &called, calling.as_deref(), &mut self.rng);
                    let cause = timing::failure_cause(sig, &other);
                    self.after(d, ch, Step::OutFail(cause, Side::Remote));
                }
            },
            Line::Fxo { .. } => {
                let port = match ch.addr {
                    ChannelAddr::Fxo { port } => port,
                    _ => 0,
                };
                if let Some(call) = self.chans.get_mut(&ch).expect("ours").call.as_mut() {
                    call.fxo_out = Some(FxoOut::WaitDialTone);
                }
                if !self.dead_lines.contains(&port) {
                    let d = ms(&mut self.rng, 100, 300);
                    self.after(d, ch, Step::ExchangeTone(Some(Tone::Dial)));
                }
                self.after(analog::DIAL_TONE_WAIT, ch, Step::DialToneTimeout);
            }
            Line::Fxs { .. } => unreachable!("refused above"),
        }
        Ok(())
    }

    fn play(&mut self, ch: ChannelId, id: u32, source: PlaySource, barge_in: bool) -> Result<()> {
        let audio = self.audio.is_some();
        let c = self.chan(ch)?;
        if !c.engine_sees_call() && !c.station_off_hook() {
            return Err(state_err(ch, c.state, "play on"));
        }
        let (kind, ends_in) = match source {
            PlaySource::Prompt(path) => {
                if audio {
                    let samples = self.audio.as_mut().expect("audio mode").prompt(&path)?;
                    (PlayKind::Samples { samples, pos: 0 }, None)
                } else {
                    let n = match self.prompt_lengths.get(&path) {
                        Some(n) => *n,
                        None => {
                            let n = crate::dsp::wav::read_prompt(&path)?.len();
                            self.prompt_lengths.insert(path.clone(), n);
                            n
                        }
                    };
                    (PlayKind::Timed, Some(Duration::from_micros(n as u64 * 125)))
                }
            }
            PlaySource::Tone(t) => (PlayKind::Tone(t), None),
            PlaySource::Frames(rx) => (PlayKind::Frames(rx), None),
        };
        if self.chans[&ch].play.is_some() {
            self.finish_play(ch, PlayEnd::Stopped);
        }
        self.play_seq += 1;
        let seq = self.play_seq;
        let c = self.chans.get_mut(&ch).expect("checked");
        if let (PlayKind::Tone(t), false) = (&kind, audio) {
            c.heard.tone(*t);
        }
        c.heard.prompts.push(id);
        if c.local_tone == Some(Tone::Dial) {
            c.local_tone = None;
        }
        c.play = Some(Playing { id, seq, barge_in, kind });
        if let Some(d) = ends_in {
            self.after(d, ch, Step::PlayDone(seq));
        }
        Ok(())
    }

    /// Signalling mode: frame streams end when their sender goes away.
    fn drain_frame_streams(&mut self) -> bool {
        if self.audio.is_some() {
            return false;
        }
        let mut ended = Vec::new();
        let mut any = false;
        for c in self.chans.values() {
            if let Some(Playing { kind: PlayKind::Frames(rx), .. }) = &c.play {
                any = true;
                loop {
                    match rx.try_recv() {
                        Ok(_) => continue,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            ended.push(c.id);
                            break;
                        }
                    }
                }
            }
        }
        for ch in ended {
            self.finish_play(ch, PlayEnd::Completed);
        }
        any
    }
}

impl Chan {
    fn new(id: ChannelId, line: Line, phone: Option<Phone>) -> Self {
        Chan {
            id,
            line,
            gen: 0,
            state: ChannelState::Idle,
            call: None,
            maint_blocked: false,
            far_blocked: false,
            alarm_blocked: false,
            play: None,
            local_tone: None,
            exchange_tone: None,
            taps: Vec::new(),
            phone,
            heard: Heard::default(),
            audio: None,
        }
    }
}

fn no_channel(ch: ChannelId) -> Error {
    Error::new(ErrorKind::NoSuchChannel, format!("no channel {ch} on this card"))
}

fn state_err(ch: ChannelId, state: ChannelState, what: &str) -> Error {
    Error::new(ErrorKind::InvalidState, format!("cannot {what} {ch}: it is {state:?}"))
}

fn check_digits(digits: &str) -> Result<()> {
    if digits.is_empty() || !digits.chars().all(is_dtmf_digit) {
        return Err(Error::new(
            ErrorKind::InvalidState,
            format!("{digits:?}: expected DTMF digits (0-9 * # A-D)"),
        ));
    }
    Ok(())
}

/// How long caller ID takes on the line (signalling mode's stand-in for the audio).
fn cid_duration(mode: CallerIdMode, cid: &CallerId) -> Duration {
    let digits = cid.number.as_ref().map_or(1, |n| n.len()) as u64;
    match mode {
        // Channel seizure (300 bits) + marks (180 bits) + ~(digits + 10) bytes, 1200 bit/s.
        CallerIdMode::FskV23 | CallerIdMode::FskBell202 => {
            Duration::from_micros((480 + (digits + 10) * 10) * 1_000_000 / 1200)
        }
        CallerIdMode::Dtmf => (analog::DTMF_ON + analog::DTMF_OFF) * (digits as u32 + 2),
        CallerIdMode::None => Duration::ZERO,
    }
}

/// How long a cadence-aware detector needs to be sure of a tone (signalling mode): a
/// moment for a steady tone, the first burst for ringback, two cycles for the others.
fn detect_time(plan: &TonePlan, t: Tone) -> Duration {
    let spec = plan.spec(t);
    let cycle: u32 = spec.cadence.iter().sum();
    let ms = match t {
        // Our detector takes a second of a steady tone (longer than any ringback burst).
        _ if spec.is_continuous() => 1100,
        Tone::Ringback => spec.cadence[0] + 100,
        _ => 2 * cycle,
    };
    Duration::from_millis(ms as u64)
}

impl Card for SimCard {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn channels(&self) -> Vec<ChannelInfo> {
        self.chans
            .values()
            .map(|c| ChannelInfo {
                id: c.id,
                kind: c.id.kind(),
                state: c.state,
                signalling: c.line.describe(),
            })
            .collect()
    }

    fn execute(&mut self, now: Instant, command: Command) -> Result<()> {
        self.now = self.now.max(now);
        if let Some(ch) = command.channel() {
            if ch.card != self.id {
                return Err(no_channel(ch));
            }
        }
        let r = self.command(command);
        self.ensure_tick();
        r
    }

    fn poll(&mut self, now: Instant) -> Result<Option<Instant>> {
        #[cfg(feature = "pri")]
        self.pri_timers();
        loop {
            let due = self.queue.peek().map(|Reverse(s)| s.at).filter(|at| *at <= now);
            // D-channel frames (libpri spans) arrive in time order with the actions.
            #[cfg(feature = "pri")]
            if let Some(at) = self.pri.next_due().filter(|at| *at <= now && due.map_or(true, |d| *at < d)) {
                self.pri_deliver_next(at);
                continue;
            }
            if due.is_none() {
                break;
            }
            let Reverse(s) = self.queue.pop().expect("peeked");
            self.now = self.now.max(s.at);
            self.run(s.action);
        }
        self.now = self.now.max(now);
        let streams = self.drain_frame_streams();
        let next = self.queue.peek().map(|Reverse(s)| s.at);
        #[cfg(feature = "pri")]
        let next = match (next, self.pri.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if streams {
            let soon = self.now + Duration::from_millis(20);
            return Ok(Some(next.map_or(soon, |n| n.min(soon))));
        }
        Ok(next)
    }
}
