//! [`DahdiCard`]: the DAHDI backend's logic over any [`ChannelDevice`].
//!
//! Each [`Card::poll`] drains every channel's DAHDI events, then reads every complete
//! 20 ms block of received audio and, for each, writes one block back: DAHDI clocks the
//! audio, so transmit follows receive. Received audio goes through the DTMF and tone
//! detectors, the caller ID receiver on idle FXO lines, and the taps; transmitted audio
//! is the mix of what plays, digits being sent, caller ID toward a station, the local
//! dial or busy tone of a station, and whispered speech.
//!
//! Switching is DAHDI's: `Connect` puts both channels in a fresh conference (talker and
//! listener), `Listen` sets `DAHDI_CONF_MONITOR` on the source, conference members are
//! talkers and/or listeners. A DAHDI channel has one conference setting, so joining a
//! bridge replaces the channel's bus connection. DAHDI cannot keep one member's speech
//! from another inside a conference, so a member with `hidden_from` (whisper) joins as a
//! listener only and the backend adds its speech to the transmit audio of the members
//! allowed to hear it.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use hotline_sys::dahdi as sys;

use super::{alarm_names, ChannelDevice, ChannelOpener, Conf, DahdiEvent, Hook, Law};
use crate::card::{Capabilities, Card};
use crate::cause::Cause;
use crate::channel::{ChannelAddr, ChannelId, ChannelInfo, ChannelKind, ChannelState, ConferenceId};
use crate::command::{Command, MemberRights, PlaySource, TapFrame};
use crate::config::{CallerIdMode, CardConfig, Disconnect};
use crate::dsp::callerid::{CallerIdEvent, DtmfCallerIdReceiver, FskReceiver};
use crate::dsp::dtmf::{DigitEvent, DtmfDetector, DtmfGenerator, DtmfParams};
use crate::dsp::tones::{ToneDetector, ToneEvent, ToneGenerator, TonePlan};
use crate::dsp::{g711, wav};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Alarm, CardEvent, EventKind, PlayEnd, Side};
use crate::signal::{CallerCategory, CallerId, Tone};
use crate::time::Instant;
use crate::FRAME_SAMPLES;

/// Caller ID toward stations, at the level GR-30 exchanges send.
const CID_LEVEL_DBM0: f32 = -13.5;
/// Caller ID starts this long after the first ring ends (ETSI EN 300 659-1: at least 500 ms).
const CID_AFTER_RING: Duration = Duration::from_millis(500);
/// An FXO line must give dial tone within this long of going off hook.
const DIAL_TONE_WAIT: Duration = Duration::from_secs(3);
/// After this long past the expected next ring, the caller on an FXO line is gone.
const RING_GONE_MARGIN: Duration = Duration::from_millis(1500);
/// Ring events this long past a burst's length still belong to the burst.
const RING_SAME_BURST: Duration = Duration::from_millis(500);
/// A caller ID decoded while idle belongs to the ring that follows within this long.
const CID_BEFORE_RING: Duration = Duration::from_secs(6);
const SAMPLE: Duration = Duration::from_micros(125);
/// Voice answer: sound above -40 dBm0 (mean square of 16-bit samples; a 0 dBm0 sine
/// peaks at 22 706).
const LOUD_MEAN_SQUARE: f64 = 22_706.0 * 22_706.0 / 2.0 * 1e-4;
/// Voice answer: sound this long out of the ringback's cadence is someone speaking.
const VOICE_ANSWER: Duration = Duration::from_millis(200);
/// Voice answer: slack on the ringback cadence.
const CADENCE_SLACK: Duration = Duration::from_millis(300);

/// How the backend maps the card's channels to DAHDI channel numbers, and the law.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DahdiOptions {
    pub law: Law,
    /// DAHDI channel number of each Hotline channel.
    pub channels: BTreeMap<ChannelId, i32>,
}

impl DahdiOptions {
    /// DAHDI's usual numbering for this card alone: each E1 span in order takes 31
    /// channels (timeslot N is channel N of the span; 16 is the D-channel), then the FXO
    /// ports, then the FXS ports. A-law, as on E1.
    pub fn numbered(card: &CardConfig) -> Self {
        let mut channels = BTreeMap::new();
        for (i, s) in card.spans.iter().enumerate() {
            for ts in crate::channel::e1_bearer_timeslots() {
                channels.insert(ChannelId::e1(card.id, s.span, ts), i as i32 * 31 + i32::from(ts));
            }
        }
        let mut next = card.spans.len() as i32 * 31 + 1;
        for (ports, fxo) in
            [(card.fxo.as_ref().map(|f| f.ports), true), (card.fxs.as_ref().map(|f| f.ports), false)]
        {
            for p in ports.into_iter().flat_map(|r| r.iter()) {
                let id = if fxo { ChannelId::fxo(card.id, p) } else { ChannelId::fxs(card.id, p) };
                channels.insert(id, next);
                next += 1;
            }
        }
        DahdiOptions { law: Law::Alaw, channels }
    }

    /// Numbering from what DAHDI reports ([`super::probe`]): configured E1 span `n` is the
    /// n-th digital span, FXO ports take the FXS-signalled channels in order, FXS ports
    /// the FXO-signalled ones.
    pub fn from_probe(card: &CardConfig, report: &super::ProbeReport) -> Result<Self> {
        let mut channels = BTreeMap::new();
        let digital: Vec<&super::ProbedSpan> =
            report.spans.iter().filter(|s| s.line_config.is_some()).collect();
        for s in &card.spans {
            let Some(ps) = digital.get(usize::from(s.span) - 1) else {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "card {} span {}: DAHDI has only {} digital span(s)",
                        card.id,
                        s.span,
                        digital.len()
                    ),
                ));
            };
            for c in ps.channels.iter().filter(|c| c.kind == Some(ChannelKind::E1Bearer)) {
                let ts = c.channo as i64 - ps.channels[0].channo as i64 + 1;
                if let Ok(ts) = u8::try_from(ts) {
                    channels.insert(ChannelId::e1(card.id, s.span, ts), c.channo as i32);
                }
            }
        }
        for (kind, ports) in [
            (ChannelKind::Fxo, card.fxo.as_ref().map(|f| f.ports)),
            (ChannelKind::Fxs, card.fxs.as_ref().map(|f| f.ports)),
        ] {
            let Some(ports) = ports else { continue };
            let found: Vec<u32> = report.channels_of(kind).map(|c| c.channo).collect();
            for (i, p) in ports.iter().enumerate() {
                let Some(&channo) = found.get(i) else {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "card {}: {} {kind:?} port(s) configured, DAHDI has {}",
                            card.id,
                            ports.last - ports.first + 1,
                            found.len()
                        ),
                    ));
                };
                let id = if kind == ChannelKind::Fxo {
                    ChannelId::fxo(card.id, p)
                } else {
                    ChannelId::fxs(card.id, p)
                };
                channels.insert(id, channo as i32);
            }
        }
        Ok(DahdiOptions { law: Law::Alaw, channels })
    }

    pub fn with_law(mut self, law: Law) -> Self {
        self.law = law;
        self
    }

    /// Put a channel on a given DAHDI channel number.
    pub fn channel(mut self, ch: ChannelId, channo: i32) -> Self {
        self.channels.insert(ch, channo);
        self
    }
}

/// Call control of an E1 span's bearer channels, done by a signalling stack over the
/// span's D-channel (libpri, feature `pri`). The DAHDI backend hands it the commands for
/// the span's channels that are about calls, and polls it; it reports events on the
/// card's event channel. This is the seam the PRI work plugs into.
pub trait SpanSignalling: std::fmt::Debug {
    /// Carry out a call-control command (Accept, Answer, Reject, Release, PlaceCall,
    /// Block, Unblock) for a bearer channel of the span.
    fn execute(&mut self, now: Instant, command: Command) -> Result<()>;
    /// Run the D-channel: read what came, send what is due.
    fn poll(&mut self, now: Instant) -> Result<Option<Instant>>;
    /// A bearer channel's state as the signalling sees it.
    fn state(&self, ch: ChannelId) -> ChannelState;
}

#[derive(Debug)]
enum Src {
    Samples(Vec<i16>, usize),
    Tone(ToneGenerator),
    Frames(Receiver<Vec<i16>>),
}

#[derive(Debug)]
struct Playing {
    id: u32,
    src: Src,
    barge_in: bool,
}

#[derive(Debug)]
struct Tap {
    id: u32,
    sink: Sender<TapFrame>,
    /// Frames delivered, and frames the sink had no room for.
    frames: u64,
    dropped: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Bus {
    None,
    Connected(ChannelId),
    Listening(ChannelId),
    Member(ConferenceId),
}

#[derive(Debug)]
enum CidRx {
    None,
    Fsk(Box<FskReceiver>),
    Dtmf(Box<DtmfCallerIdReceiver>),
}

/// An incoming call on an FXO line, from its first ring.
#[derive(Debug)]
struct Inbound {
    last_ring: Instant,
    rings: u32,
    offered: bool,
    /// Rejected or released before answer: wait for the ringing to stop.
    ignored: bool,
    answered: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Stage {
    WaitDialTone(Instant),
    Dialing,
    AwaitProgress,
    Ringing,
    Connected,
}

#[derive(Debug)]
struct Outbound {
    called: String,
    stage: Stage,
    /// Voice answer detection: when the current loud run began, when the last ended.
    loud_since: Option<Instant>,
    quiet_since: Option<Instant>,
}

/// A station being rung.
#[derive(Debug)]
struct StationRing {
    /// FSK caller ID, sent after the first ring; DTMF caller ID goes before the ring.
    cid_after_first: Option<Vec<i16>>,
    /// Waiting for DTMF caller ID to finish before ringing.
    ring_after_cid: bool,
}

#[derive(Debug)]
struct Chan<D> {
    id: ChannelId,
    dev: D,
    channo: i32,
    spanno: i32,
    state: ChannelState,
    alarm: bool,
    maint: bool,
    station_ring: Option<StationRing>,
    inbound: Option<Inbound>,
    outbound: Option<Outbound>,
    cid_rx: CidRx,
    pending_cid: Option<(CallerId, Instant)>,
    rx_count: u64,
    dtmf: DtmfDetector,
    tones: ToneDetector,
    play: Option<Playing>,
    local_tone: Option<ToneGenerator>,
    digits_out: Option<DtmfGenerator>,
    tx_extra: VecDeque<i16>,
    taps: Vec<Tap>,
    bus: Bus,
    /// Frames read this poll, linear.
    frames: Vec<Vec<i16>>,
    /// The last frame received was above the voice threshold.
    loud: bool,
    law: Law,
}

#[derive(Debug)]
struct Bridge {
    confno: i32,
    members: BTreeMap<ChannelId, MemberRights>,
}

#[derive(Debug)]
struct SpanInfo {
    /// The configured E1 span number, for digital spans.
    span: Option<u8>,
    alarms: i32,
}

/// The DAHDI backend for one card. `D` is the channel device: [`super::device::DahdiChannel`]
/// on a server, [`super::double::DoubleChannel`] in tests.
#[derive(Debug)]
pub struct DahdiCard<D: ChannelDevice> {
    id: u16,
    caps: Capabilities,
    plan: TonePlan,
    ring_cadence: (Duration, Duration),
    fxo_cid: CallerIdMode,
    fxs_cid: CallerIdMode,
    disconnect: Disconnect,
    chans: BTreeMap<ChannelId, Chan<D>>,
    spans: BTreeMap<i32, SpanInfo>,
    bridges: BTreeMap<ConferenceId, Bridge>,
    max_bridges: u16,
    max_members: u16,
    signalling: BTreeMap<u8, Box<dyn SpanSignalling + Send>>,
    events: Sender<CardEvent>,
    out: Vec<EventKind>,
    now: Instant,
}

fn io_err(ch: ChannelId, channo: i32, what: &str, e: io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{ch} (DAHDI channel {channo}): {what}: {e}"))
}

fn state_err(ch: ChannelId, state: ChannelState, what: &str) -> Error {
    Error::new(ErrorKind::InvalidState, format!("{ch}: cannot {what} in state {state:?}"))
}

fn cid_receiver(mode: CallerIdMode) -> CidRx {
    match (mode, mode.fsk_standard()) {
        (_, Some(standard)) => CidRx::Fsk(Box::new(FskReceiver::new(standard))),
        (CallerIdMode::Dtmf, None) => CidRx::Dtmf(Box::default()),
        _ => CidRx::None,
    }
}

/// Caller ID as line audio in the configured way.
fn cid_audio(cid: &CallerId, mode: CallerIdMode) -> Result<Option<Vec<i16>>> {
    mode.line_audio(cid, CID_LEVEL_DBM0)
}

fn span_alarms(bits: i32) -> Vec<Alarm> {
    let mut v = Vec::new();
    if bits & sys::DAHDI_ALARM_LOS != 0 {
        v.push(Alarm::Los);
    }
    if bits & (sys::DAHDI_ALARM_LFA | sys::DAHDI_ALARM_LMFA) != 0 {
        v.push(Alarm::Lof);
    }
    // RED without the detail bits: DAHDI's red covers loss of signal or of framing.
    if bits & sys::DAHDI_ALARM_RED != 0 && v.is_empty() {
        v.push(Alarm::Los);
    }
    if bits & sys::DAHDI_ALARM_BLUE != 0 {
        v.push(Alarm::Ais);
    }
    if bits & sys::DAHDI_ALARM_YELLOW != 0 {
        v.push(Alarm::Rai);
    }
    v
}

impl<D: ChannelDevice> DahdiCard<D> {
    /// Open the card's channels through `opener`, numbered by `options`: block size 160,
    /// the law, the ring cadence on FXS ports; check each channel's signalling against
    /// its kind. A mismatch is a configuration error naming the channel.
    pub fn open<O: ChannelOpener<Channel = D>>(
        card: &CardConfig,
        options: &DahdiOptions,
        opener: &mut O,
        events: Sender<CardEvent>,
    ) -> Result<Self> {
        let mut caps = Capabilities::new("DAHDI");
        caps.audio = true;
        caps.dtmf_detection = true;
        caps.tone_detection = true;
        caps.caller_id_generation = card.fxs.is_some();
        caps.bus_switching = true;
        caps.conference_bridges = card.conference_bridges;
        caps.conference_members = card.conference_members;
        let mut me = DahdiCard {
            id: card.id,
            caps,
            plan: card.tone_plan.clone(),
            ring_cadence: card.ring_cadence,
            fxo_cid: card.fxo.as_ref().map_or(CallerIdMode::None, |f| f.caller_id),
            fxs_cid: card.fxs.as_ref().map_or(CallerIdMode::None, |f| f.caller_id),
            disconnect: card.fxo.as_ref().map_or(Disconnect::BusyTone, |f| f.disconnect),
            chans: BTreeMap::new(),
            spans: BTreeMap::new(),
            bridges: BTreeMap::new(),
            max_bridges: card.conference_bridges,
            max_members: card.conference_members,
            signalling: BTreeMap::new(),
            events,
            out: Vec::new(),
            now: Instant::ZERO,
        };
        for ch in card.channel_ids() {
            let Some(&channo) = options.channels.get(&ch) else {
                return Err(Error::new(ErrorKind::Config, format!("{ch}: no DAHDI channel number for it")));
            };
            let mut dev = opener.open(channo).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("{ch}: cannot open DAHDI channel {channo}: {e} (is it in /etc/dahdi/system.conf and applied with dahdi_cfg?)"),
                )
            })?;
            dev.set_block_size(FRAME_SAMPLES).map_err(|e| io_err(ch, channo, "set block size", e))?;
            dev.set_law(options.law).map_err(|e| io_err(ch, channo, "set law", e))?;
            let p = dev.params().map_err(|e| io_err(ch, channo, "get params", e))?;
            let ok = match ch.kind() {
                // An FXO port talks to the exchange with FXS signalling, and the reverse.
                ChannelKind::Fxo => p.sigtype & sys::__DAHDI_SIG_FXS != 0,
                ChannelKind::Fxs => p.sigtype & sys::__DAHDI_SIG_FXO != 0,
                ChannelKind::E1Bearer => {
                    p.sigtype & sys::DAHDI_SIG_CLEAR != 0 || p.sigtype == sys::DAHDI_SIG_CAS
                }
            };
            if !ok {
                let want = match ch.kind() {
                    ChannelKind::Fxo => "fxsks or fxsls",
                    ChannelKind::Fxs => "fxoks or fxols",
                    ChannelKind::E1Bearer => "bchan (clear)",
                };
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "{ch}: DAHDI channel {channo} has signalling {}; system.conf should say {want} for it",
                        super::signalling_name(p.sigtype)
                    ),
                ));
            }
            if ch.kind() == ChannelKind::Fxs {
                let (on, off) = card.ring_cadence;
                dev.set_ring_cadence(on, off).map_err(|e| io_err(ch, channo, "set ring cadence", e))?;
            }
            let span = match ch.addr {
                ChannelAddr::E1 { span, .. } => Some(span),
                _ => None,
            };
            if let std::collections::btree_map::Entry::Vacant(e) = me.spans.entry(p.spanno) {
                let alarms = dev.span_status(p.spanno).map(|s| s.alarms).unwrap_or(0);
                e.insert(SpanInfo { span, alarms });
            }
            let alarm = me.spans[&p.spanno].alarms != 0 || p.alarms != 0;
            let state = if alarm {
                ChannelState::Blocked
            } else if ch.kind() == ChannelKind::Fxs && p.rx_off_hook {
                ChannelState::OffHook
            } else {
                ChannelState::Idle
            };
            let cid_rx = if ch.kind() == ChannelKind::Fxo { cid_receiver(me.fxo_cid) } else { CidRx::None };
            me.chans.insert(
                ch,
                Chan {
                    id: ch,
                    dev,
                    channo,
                    spanno: p.spanno,
                    state,
                    alarm,
                    maint: false,
                    station_ring: None,
                    inbound: None,
                    outbound: None,
                    cid_rx,
                    pending_cid: None,
                    rx_count: 0,
                    dtmf: DtmfDetector::new(),
                    tones: ToneDetector::new(&me.plan),
                    play: None,
                    local_tone: None,
                    digits_out: None,
                    tx_extra: VecDeque::new(),
                    taps: Vec::new(),
                    bus: Bus::None,
                    frames: Vec::new(),
                    loud: false,
                    law: options.law,
                },
            );
        }
        Ok(me)
    }

    /// Hand an E1 span's call control to a signalling stack (libpri on its D-channel).
    pub fn set_span_signalling(&mut self, span: u8, signalling: Box<dyn SpanSignalling + Send>) {
        self.signalling.insert(span, signalling);
    }

    /// Bearer channels follow their span signalling's state; when a call ends there,
    /// the channel's plays, taps and bus connections end here.
    fn follow_bearers(&mut self) {
        let mut ended = Vec::new();
        for c in self.chans.values_mut() {
            let ChannelAddr::E1 { span, .. } = c.id.addr else { continue };
            let Some(sig) = self.signalling.get(&span) else { continue };
            let state = sig.state(c.id);
            let was_in_call = !matches!(c.state, ChannelState::Idle | ChannelState::Blocked);
            if was_in_call && matches!(state, ChannelState::Idle | ChannelState::Blocked) {
                ended.push(c.id);
            }
            c.state = if c.alarm { ChannelState::Blocked } else { state };
        }
        for ch in ended {
            let state = self.chans[&ch].state;
            self.end_call(ch);
            self.chans.get_mut(&ch).expect("ours").state = state;
        }
    }

    /// The DAHDI channel number behind a channel.
    pub fn channo(&self, ch: ChannelId) -> Option<i32> {
        self.chans.get(&ch).map(|c| c.channo)
    }

    fn emit(&mut self, kind: EventKind) {
        self.out.push(kind);
    }

    fn flush(&mut self) {
        let time = self.now;
        for kind in self.out.drain(..) {
            // The engine dropping its receiver means it is shutting down; nothing to tell.
            let _ = self.events.send(CardEvent { time, kind });
        }
    }

    fn chan(&mut self, ch: ChannelId) -> Result<&mut Chan<D>> {
        self.chans.get_mut(&ch).ok_or_else(|| {
            Error::new(ErrorKind::NoSuchChannel, format!("{ch}: not a channel of DAHDI card {}", self.id))
        })
    }

    fn hook(&mut self, ch: ChannelId, hook: Hook) -> Result<()> {
        let c = self.chan(ch)?;
        let channo = c.channo;
        c.dev.hook(hook).map_err(|e| io_err(ch, channo, &format!("hook {hook:?}"), e))
    }

    fn set_conf(&mut self, ch: ChannelId, conf: Conf) -> Result<Conf> {
        let c = self.chan(ch)?;
        let channo = c.channo;
        c.dev.set_conf(conf).map_err(|e| io_err(ch, channo, "DAHDI_SETCONF", e))
    }

    // ---- Ending things ----

    fn finish_play(&mut self, ch: ChannelId, reason: PlayEnd) {
        if let Some(p) = self.chans.get_mut(&ch).and_then(|c| c.play.take()) {
            self.emit(EventKind::PlayFinished { ch, id: p.id, reason });
        }
    }

    fn end_taps(&mut self, ch: ChannelId) {
        let taps = self.chans.get_mut(&ch).map(|c| std::mem::take(&mut c.taps)).unwrap_or_default();
        for t in taps {
            self.emit(EventKind::RecordFinished { ch, id: t.id, frames: t.frames, dropped: t.dropped });
        }
    }

    /// The call on the channel is over: media stops, bus connections go.
    fn end_call(&mut self, ch: ChannelId) {
        self.finish_play(ch, PlayEnd::Released);
        self.end_taps(ch);
        let _ = self.disconnect(ch);
        if let Some(c) = self.chans.get_mut(&ch) {
            c.digits_out = None;
            c.tx_extra.clear();
            c.local_tone = None;
            c.outbound = None;
            c.station_ring = None;
            c.dtmf.reset();
            c.tones.reset();
        }
    }

    fn make_idle(&mut self, ch: ChannelId) {
        self.end_call(ch);
        if let Some(c) = self.chans.get_mut(&ch) {
            c.inbound = None;
            c.state = if c.alarm || c.maint { ChannelState::Blocked } else { ChannelState::Idle };
        }
    }

    // ---- Switching ----

    fn disconnect(&mut self, ch: ChannelId) -> Result<()> {
        let bus = self.chan(ch)?.bus;
        match bus {
            Bus::None | Bus::Member(_) => {}
            Bus::Listening(_) => {
                self.set_conf(ch, Conf::NORMAL)?;
                self.chan(ch)?.bus = Bus::None;
            }
            Bus::Connected(peer) => {
                // A two-party connection goes as a whole: the peer would sit alone in it.
                self.set_conf(ch, Conf::NORMAL)?;
                self.chan(ch)?.bus = Bus::None;
                if self.chans.get(&peer).is_some_and(|p| p.bus == Bus::Connected(ch)) {
                    self.set_conf(peer, Conf::NORMAL)?;
                    self.chan(peer)?.bus = Bus::None;
                }
            }
        }
        Ok(())
    }

    fn connect(&mut self, a: ChannelId, b: ChannelId) -> Result<()> {
        if a == b {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("{a}: cannot connect a channel to itself"),
            ));
        }
        self.chan(a)?;
        self.chan(b)?;
        self.leave_all(a)?;
        self.leave_all(b)?;
        self.disconnect(a)?;
        self.disconnect(b)?;
        // DAHDI picks a free conference for the first; the second joins it.
        let made = self.set_conf(a, Conf::member(0, true, true))?;
        self.set_conf(b, Conf::member(made.confno, true, true))?;
        self.chan(a)?.bus = Bus::Connected(b);
        self.chan(b)?.bus = Bus::Connected(a);
        Ok(())
    }

    fn listen(&mut self, listener: ChannelId, source: ChannelId) -> Result<()> {
        let src = self.chan(source)?.channo;
        self.leave_all(listener)?;
        self.disconnect(listener)?;
        self.set_conf(listener, Conf::monitor(src))?;
        self.chan(listener)?.bus = Bus::Listening(source);
        Ok(())
    }

    fn leave_all(&mut self, ch: ChannelId) -> Result<()> {
        if let Bus::Member(conf) = self.chan(ch)?.bus {
            self.leave(conf, ch)?;
        }
        Ok(())
    }

    /// The hardware setting of a member: a whisperer (hidden from someone) only listens
    /// in DAHDI; its speech is added in software (see [`DahdiCard::whispers`]).
    fn member_conf(confno: i32, rights: &MemberRights) -> Conf {
        Conf::member(confno, rights.talk && rights.hidden_from.is_empty(), rights.listen)
    }

    fn join(&mut self, conf: ConferenceId, ch: ChannelId, rights: MemberRights) -> Result<()> {
        if conf.card != self.id {
            return Err(Error::new(
                ErrorKind::NoSuchChannel,
                format!("{conf}: not a bridge of card {}", self.id),
            ));
        }
        self.chan(ch)?;
        if let Bus::Member(other) = self.chan(ch)?.bus {
            if other == conf {
                return self.set_rights(conf, ch, rights);
            }
            self.leave(other, ch)?;
        }
        if !self.bridges.contains_key(&conf) && self.bridges.len() >= usize::from(self.max_bridges) {
            return Err(Error::new(
                ErrorKind::Resource,
                format!("{conf}: all {} bridges are in use", self.max_bridges),
            ));
        }
        if self.bridges.get(&conf).is_some_and(|b| b.members.len() >= usize::from(self.max_members)) {
            return Err(Error::new(
                ErrorKind::Resource,
                format!("{conf}: the bridge is full ({} members)", self.max_members),
            ));
        }
        self.disconnect(ch)?;
        let confno = self.bridges.get(&conf).map_or(0, |b| b.confno);
        let made = self.set_conf(ch, Self::member_conf(confno, &rights))?;
        self.bridges
            .entry(conf)
            .or_insert(Bridge { confno: made.confno, members: BTreeMap::new() })
            .members
            .insert(ch, rights);
        self.chan(ch)?.bus = Bus::Member(conf);
        Ok(())
    }

    fn set_rights(&mut self, conf: ConferenceId, ch: ChannelId, rights: MemberRights) -> Result<()> {
        let Some(b) = self.bridges.get(&conf) else {
            return Err(Error::new(ErrorKind::InvalidState, format!("{ch} is not in {conf}")));
        };
        if !b.members.contains_key(&ch) {
            return Err(Error::new(ErrorKind::InvalidState, format!("{ch} is not in {conf}")));
        }
        let confno = b.confno;
        self.set_conf(ch, Self::member_conf(confno, &rights))?;
        self.bridges.get_mut(&conf).expect("checked").members.insert(ch, rights);
        Ok(())
    }

    fn leave(&mut self, conf: ConferenceId, ch: ChannelId) -> Result<()> {
        let in_it = self.bridges.get(&conf).is_some_and(|b| b.members.contains_key(&ch));
        if !in_it {
            return Err(Error::new(ErrorKind::InvalidState, format!("{ch} is not in {conf}")));
        }
        self.set_conf(ch, Conf::NORMAL)?;
        self.chan(ch)?.bus = Bus::None;
        let b = self.bridges.get_mut(&conf).expect("checked");
        b.members.remove(&ch);
        if b.members.is_empty() {
            self.bridges.remove(&conf);
        }
        Ok(())
    }

    /// Software whisper paths: (speaker, hearer) for each member hidden from someone and
    /// each member who listens and may hear it.
    fn whispers(&self) -> Vec<(ChannelId, ChannelId)> {
        let mut v = Vec::new();
        for b in self.bridges.values() {
            for (&from, r) in &b.members {
                if !r.talk || r.hidden_from.is_empty() {
                    continue;
                }
                for (&to, r2) in &b.members {
                    if to != from && r2.listen && !r.hidden_from.contains(&to) {
                        v.push((from, to));
                    }
                }
            }
        }
        v
    }

    // ---- Events from DAHDI ----

    fn on_event(&mut self, ch: ChannelId, ev: DahdiEvent) -> Result<()> {
        let now = self.now;
        match ev {
            DahdiEvent::Alarm | DahdiEvent::NoAlarm => return self.on_alarm(ch, ev == DahdiEvent::Alarm),
            _ => {}
        }
        match ch.kind() {
            ChannelKind::Fxs => self.station_event(ch, ev),
            ChannelKind::Fxo => self.line_event(ch, ev, now),
            ChannelKind::E1Bearer => Ok(()),
        }
    }

    fn station_event(&mut self, ch: ChannelId, ev: DahdiEvent) -> Result<()> {
        match ev {
            DahdiEvent::RingOffHook => {
                let dial = ToneGenerator::for_tone(&self.plan, Tone::Dial);
                let c = self.chan(ch)?;
                let was_ringing = c.station_ring.take().is_some();
                c.tx_extra.clear();
                if was_ringing {
                    c.state = ChannelState::Connected;
                } else {
                    c.state = ChannelState::OffHook;
                    c.local_tone = Some(dial);
                }
                self.emit(EventKind::OffHook { ch });
            }
            DahdiEvent::OnHook => {
                let c = self.chan(ch)?;
                if matches!(c.state, ChannelState::OffHook | ChannelState::Connected) {
                    self.emit(EventKind::OnHook { ch });
                    self.make_idle(ch);
                }
            }
            DahdiEvent::WinkFlash => self.emit(EventKind::HookFlash { ch }),
            DahdiEvent::RingerOff => {
                let c = self.chan(ch)?;
                if let Some(r) = c.station_ring.as_mut() {
                    if let Some(audio) = r.cid_after_first.take() {
                        let gap = (CID_AFTER_RING.as_micros() / SAMPLE.as_micros()) as usize;
                        c.tx_extra.extend(std::iter::repeat(0).take(gap));
                        c.tx_extra.extend(audio);
                    }
                }
            }
            DahdiEvent::RingerOn => {
                // Caller ID still going when the next ring starts is cut: the ring wins.
                let c = self.chan(ch)?;
                if c.station_ring.is_some() {
                    c.tx_extra.clear();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn line_event(&mut self, ch: ChannelId, ev: DahdiEvent, now: Instant) -> Result<()> {
        let disconnect = self.disconnect;
        let cid_mode = self.fxo_cid;
        let ring_on = self.ring_cadence.0;
        let c = self.chan(ch)?;
        match ev {
            DahdiEvent::RingOffHook | DahdiEvent::RingBegin => {
                if c.state == ChannelState::Blocked || c.outbound.is_some() {
                    return Ok(());
                }
                let inbound = c.inbound.get_or_insert(Inbound {
                    last_ring: now,
                    rings: 0,
                    offered: false,
                    ignored: false,
                    answered: false,
                });
                if inbound.answered {
                    return Ok(());
                }
                // Depending on the driver DAHDI reports a ring's start (RINGBEGIN), its
                // end (RINGOFFHOOK), or both: events within one burst are one ring.
                if inbound.rings > 0 && now - inbound.last_ring < ring_on + RING_SAME_BURST {
                    return Ok(());
                }
                inbound.last_ring = now;
                inbound.rings += 1;
                let (rings, offered, ignored) = (inbound.rings, inbound.offered, inbound.ignored);
                if ignored || offered {
                    return Ok(());
                }
                let cid =
                    c.pending_cid.take().filter(|(_, at)| now - *at <= CID_BEFORE_RING).map(|(cid, _)| cid);
                if cid.is_some() || cid_mode == CallerIdMode::None || rings >= 2 {
                    self.offer(ch, cid);
                }
            }
            DahdiEvent::Polarity => {
                let stage = c.outbound.as_ref().map(|o| o.stage);
                let answered_in = c.inbound.as_ref().is_some_and(|i| i.answered);
                if disconnect == Disconnect::PolarityReversal {
                    match stage {
                        Some(Stage::AwaitProgress | Stage::Ringing) => {
                            c.outbound.as_mut().expect("checked").stage = Stage::Connected;
                            c.state = ChannelState::Connected;
                            self.emit(EventKind::Answered { ch });
                        }
                        Some(Stage::Connected) => self.far_cleared(ch, Cause::NORMAL_CLEARING)?,
                        None if answered_in => self.far_cleared(ch, Cause::NORMAL_CLEARING)?,
                        _ => {}
                    }
                }
            }
            DahdiEvent::OnHook => {
                // Kewl start: the exchange dropped loop current, the far end is gone.
                if matches!(c.state, ChannelState::Connected | ChannelState::Alerting | ChannelState::Dialing)
                {
                    self.far_cleared(ch, Cause::NORMAL_CLEARING)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn offer(&mut self, ch: ChannelId, cid: Option<CallerId>) {
        let Some(c) = self.chans.get_mut(&ch) else { return };
        if let Some(i) = c.inbound.as_mut() {
            i.offered = true;
        }
        c.state = ChannelState::Offered;
        self.emit(EventKind::Offered {
            ch,
            ani: cid.and_then(|c| c.number),
            dnis: String::new(),
            category: CallerCategory::Ordinary,
        });
    }

    /// The far end of an FXO line hung up: put the line on hook, report.
    fn far_cleared(&mut self, ch: ChannelId, cause: Cause) -> Result<()> {
        self.hook(ch, Hook::OnHook)?;
        self.emit(EventKind::Released { ch, cause, by: Side::Remote });
        self.make_idle(ch);
        Ok(())
    }

    fn on_alarm(&mut self, ch: ChannelId, raised: bool) -> Result<()> {
        let (spanno, channo) = {
            let c = self.chan(ch)?;
            (c.spanno, c.channo)
        };
        let status =
            self.chan(ch)?.dev.span_status(spanno).map_err(|e| io_err(ch, channo, "DAHDI_SPANSTAT", e))?;
        let info = self.spans.get_mut(&spanno).expect("every channel's span is known");
        let before = info.alarms;
        info.alarms = status.alarms;
        let span = info.span;
        let chan_alarm = if span.is_some() {
            status.alarms != 0
        } else {
            // An analog port's alarm is its own (no battery on the line).
            raised || self.chan(ch)?.dev.params().map(|p| p.alarms != 0).unwrap_or(false)
        };
        if let Some(span) = span {
            if before == status.alarms {
                return Ok(());
            }
            let (old, new) = (span_alarms(before), span_alarms(status.alarms));
            for a in new.iter().filter(|a| !old.contains(a)) {
                self.emit(EventKind::SpanAlarm { card: self.id, span, alarm: *a, raised: true });
            }
            for a in old.iter().filter(|a| !new.contains(a)) {
                self.emit(EventKind::SpanAlarm { card: self.id, span, alarm: *a, raised: false });
            }
        }
        let targets: Vec<ChannelId> = if span.is_some() {
            self.chans.values().filter(|c| c.spanno == spanno).map(|c| c.id).collect()
        } else {
            vec![ch]
        };
        let reason = match span {
            Some(s) => format!("span {s} alarm {}", alarm_names(status.alarms)),
            None => "DAHDI reports an alarm on the line".to_string(),
        };
        let cause = if span_alarms(status.alarms) == [Alarm::Rai] {
            Cause::TEMPORARY_FAILURE
        } else {
            Cause::NETWORK_OUT_OF_ORDER
        };
        for t in targets {
            let c = self.chan(t)?;
            if chan_alarm && !c.alarm {
                c.alarm = true;
                let in_call = !matches!(c.state, ChannelState::Idle | ChannelState::Blocked);
                let station = t.kind() == ChannelKind::Fxs;
                if in_call && !(station && c.state == ChannelState::OffHook) {
                    self.emit(EventKind::Released { ch: t, cause, by: Side::Remote });
                }
                let c = self.chan(t)?;
                let seized = c.outbound.is_some() || c.inbound.as_ref().is_some_and(|i| i.answered);
                if t.kind() == ChannelKind::Fxo && seized {
                    let _ = self.hook(t, Hook::OnHook);
                }
                self.make_idle(t);
                self.emit(EventKind::Blocked { ch: t, reason: reason.clone() });
            } else if !chan_alarm && c.alarm {
                c.alarm = false;
                if !c.maint {
                    c.state = ChannelState::Idle;
                    self.emit(EventKind::Unblocked { ch: t });
                }
            }
        }
        Ok(())
    }

    // ---- Audio ----

    /// Read every complete block waiting on every channel.
    fn read_all(&mut self) -> Result<Vec<(ChannelId, DahdiEvent)>> {
        let mut events = Vec::new();
        let mut buf = [0u8; FRAME_SAMPLES];
        for c in self.chans.values_mut() {
            c.frames.clear();
            loop {
                match c.dev.read(&mut buf) {
                    Ok(n) if n == FRAME_SAMPLES => {
                        let mut pcm = Vec::with_capacity(FRAME_SAMPLES);
                        match c.law {
                            Law::Alaw => g711::decode_alaw(&buf, &mut pcm),
                            Law::Mulaw => g711::decode_ulaw(&buf, &mut pcm),
                        }
                        c.frames.push(pcm);
                    }
                    Ok(0) => break,
                    Ok(n) => {
                        return Err(io_err(
                            c.id,
                            c.channo,
                            "read",
                            io::Error::other(format!("a block of {n} bytes, not {FRAME_SAMPLES}")),
                        ));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.raw_os_error() == Some(sys::ELAST) => {
                        // An event waits: take it now, read on after.
                        match c.dev.get_event() {
                            Ok(Some(ev)) => events.push((c.id, ev)),
                            Ok(None) => break,
                            Err(e) => return Err(io_err(c.id, c.channo, "DAHDI_GETEVENT", e)),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_err(c.id, c.channo, "read", e)),
                }
            }
        }
        Ok(events)
    }

    /// Received audio of one channel: detectors, caller ID, taps.
    fn receive(&mut self, ch: ChannelId, frame_index: usize, now: Instant) {
        let plan_busy_is_disconnect = self.disconnect == Disconnect::BusyTone;
        let mut digits: Vec<DigitEvent> = Vec::new();
        let mut tones: Vec<ToneEvent> = Vec::new();
        let mut cids: Vec<CallerIdEvent> = Vec::new();
        let Some(c) = self.chans.get_mut(&ch) else { return };
        let frames_left = c.frames.len() - frame_index;
        // This frame ended `frames_left - 1` frames before now.
        let end = Instant::from_micros(now.as_micros().saturating_sub((frames_left as u64 - 1) * 20_000));
        let frame = c.frames[frame_index].clone();
        c.rx_count += frame.len() as u64;
        c.loud = frame.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / FRAME_SAMPLES as f64
            > LOUD_MEAN_SQUARE;
        // Digit edges are sample indexes of the detector's input; this frame's last
        // sample is at `end`.
        let frame_end = c.dtmf.samples_seen() + FRAME_SAMPLES as u64;
        let at = |idx: u64| {
            let back = frame_end.saturating_sub(idx) * SAMPLE.as_micros() as u64;
            Instant::from_micros(end.as_micros().saturating_sub(back))
        };
        let in_call = matches!(
            c.state,
            ChannelState::Connected
                | ChannelState::OffHook
                | ChannelState::Alerting
                | ChannelState::Dialing
                | ChannelState::Offered
        );
        if in_call && c.digits_out.is_none() {
            c.dtmf.process(&frame, &mut digits);
        }
        if in_call && ch.kind() != ChannelKind::Fxs {
            c.tones.process(&frame, &mut tones);
        }
        let idle_line =
            ch.kind() == ChannelKind::Fxo && matches!(c.state, ChannelState::Idle | ChannelState::Offered);
        if idle_line && !c.inbound.as_ref().is_some_and(|i| i.offered) {
            match &mut c.cid_rx {
                CidRx::Fsk(r) => r.process(&frame, &mut cids),
                CidRx::Dtmf(r) => r.process(&frame, &mut cids),
                CidRx::None => {}
            }
        }
        for t in &mut c.taps {
            // Never block the audio path on a recorder; count what a full sink costs.
            match t.sink.try_send(TapFrame { ch, id: t.id, time: end, samples: frame.clone() }) {
                Ok(()) => t.frames += 1,
                Err(_) => t.dropped += 1,
            }
        }
        // Digits.
        for d in digits {
            let (start, end_t) = (at(d.start), at(d.end));
            let c = self.chans.get_mut(&ch).expect("ours");
            c.local_tone = None;
            let barge = c.play.as_ref().is_some_and(|p| p.barge_in);
            self.emit(EventKind::Digit { ch, digit: d.digit, start, end: end_t });
            if barge {
                self.finish_play(ch, PlayEnd::Digit);
            }
        }
        for cid in cids {
            let c = self.chans.get_mut(&ch).expect("ours");
            let Ok(cid) = cid.result else { continue };
            match c.inbound.as_ref() {
                Some(i) if !i.offered && !i.ignored => self.offer(ch, Some(cid)),
                Some(_) => {}
                None => c.pending_cid = Some((cid, now)),
            }
        }
        if ch.kind() == ChannelKind::Fxo && self.disconnect == Disconnect::BusyTone {
            self.voice_answer(ch, end);
        }
        for t in tones {
            self.emit(EventKind::ToneDetected { ch, tone: t.tone });
            if ch.kind() == ChannelKind::Fxo {
                self.line_tone(ch, t.tone, plan_busy_is_disconnect);
            }
        }
    }

    /// A line without answer supervision (busy-tone disconnect) gives no sign when the
    /// called party answers: after ringback, sound that breaks the ringback's cadence
    /// (a burst longer than its longest, or starting well inside its silence) is taken as
    /// the answer, as the simulator's callee is.
    fn voice_answer(&mut self, ch: ChannelId, end: Instant) {
        let cadence = self.plan.ringback.cadence.clone();
        let longest_on = cadence.iter().step_by(2).max().copied().unwrap_or(0);
        let shortest_off = cadence.iter().skip(1).step_by(2).min().copied().unwrap_or(0);
        let Some(c) = self.chans.get_mut(&ch) else { return };
        let loud = c.loud;
        let Some(o) = c.outbound.as_mut().filter(|o| o.stage == Stage::Ringing) else { return };
        let answered = if loud {
            let since = *o.loud_since.get_or_insert(end);
            let run = end - since;
            let early = o
                .quiet_since
                .is_some_and(|q| since - q + CADENCE_SLACK < Duration::from_millis(u64::from(shortest_off)));
            run > Duration::from_millis(u64::from(longest_on)) + CADENCE_SLACK
                || (early && run >= VOICE_ANSWER)
        } else {
            if o.loud_since.take().is_some() {
                o.quiet_since = Some(end);
            }
            false
        };
        if answered {
            o.stage = Stage::Connected;
            c.state = ChannelState::Connected;
            self.emit(EventKind::Answered { ch });
        }
    }

    /// A tone on an FXO line: dial tone to dial on, progress of our call, or the far end
    /// gone (busy or congestion on a connected call).
    fn line_tone(&mut self, ch: ChannelId, tone: Tone, busy_is_disconnect: bool) {
        let Some(c) = self.chans.get_mut(&ch) else { return };
        let stage = c.outbound.as_ref().map(|o| o.stage);
        let answered_in = c.inbound.as_ref().is_some_and(|i| i.answered);
        let result = match (tone, stage) {
            (Tone::Dial, Some(Stage::WaitDialTone(_))) => {
                let o = c.outbound.as_mut().expect("checked");
                o.stage = Stage::Dialing;
                match DtmfGenerator::new(&o.called, DtmfParams::default()) {
                    Ok(g) => c.digits_out = Some(g),
                    Err(_) => return,
                }
                Ok(())
            }
            (Tone::Ringback, Some(Stage::AwaitProgress)) => {
                c.outbound.as_mut().expect("checked").stage = Stage::Ringing;
                c.state = ChannelState::Alerting;
                self.emit(EventKind::Alerting { ch });
                Ok(())
            }
            (Tone::Busy, Some(Stage::AwaitProgress | Stage::Ringing)) => {
                self.far_cleared(ch, Cause::USER_BUSY)
            }
            (Tone::Congestion, Some(Stage::AwaitProgress | Stage::Ringing)) => {
                self.far_cleared(ch, Cause::NO_CIRCUIT_AVAILABLE)
            }
            (Tone::Busy | Tone::Congestion, Some(Stage::Connected)) if busy_is_disconnect => {
                self.far_cleared(ch, Cause::NORMAL_CLEARING)
            }
            (Tone::Busy | Tone::Congestion, None) if answered_in && busy_is_disconnect => {
                self.far_cleared(ch, Cause::NORMAL_CLEARING)
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.emit(EventKind::Blocked { ch, reason: e.to_string() });
        }
    }

    /// Build and write the transmit block that goes with received frame `i`.
    fn transmit(&mut self, ch: ChannelId, i: usize, whisper: &[(ChannelId, ChannelId)]) -> Result<()> {
        let mut acc = [0i32; FRAME_SAMPLES];
        for (from, _) in whisper.iter().filter(|(_, to)| *to == ch) {
            if let Some(f) = self.chans.get(from).and_then(|c| c.frames.get(i)) {
                for (a, &s) in acc.iter_mut().zip(f) {
                    *a += i32::from(s);
                }
            }
        }
        let mut finished = None;
        let mut buf = [0i16; FRAME_SAMPLES];
        let c = self.chan(ch)?;
        let add = |acc: &mut [i32; FRAME_SAMPLES], buf: &[i16]| {
            for (a, &s) in acc.iter_mut().zip(buf) {
                *a += i32::from(s);
            }
        };
        if let Some(p) = c.play.as_mut() {
            match &mut p.src {
                Src::Samples(s, pos) => {
                    let n = (s.len() - *pos).min(FRAME_SAMPLES);
                    add(&mut acc, &s[*pos..*pos + n]);
                    *pos += n;
                    if *pos >= s.len() {
                        finished = Some(PlayEnd::Completed);
                    }
                }
                Src::Tone(g) => {
                    g.fill(&mut buf);
                    add(&mut acc, &buf);
                }
                Src::Frames(rx) => match rx.try_recv() {
                    Ok(f) => add(&mut acc, &f[..f.len().min(FRAME_SAMPLES)]),
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => finished = Some(PlayEnd::Completed),
                },
            }
        }
        if let Some(g) = c.local_tone.as_mut() {
            g.fill(&mut buf);
            add(&mut acc, &buf);
        }
        if let Some(g) = c.digits_out.as_mut() {
            buf = [0; FRAME_SAMPLES];
            g.fill(&mut buf);
            add(&mut acc, &buf);
            if g.is_done() {
                c.digits_out = None;
                if let Some(o) = c.outbound.as_mut().filter(|o| o.stage == Stage::Dialing) {
                    o.stage = Stage::AwaitProgress;
                    c.state = ChannelState::Dialing;
                }
            }
        }
        let mut ring_now = false;
        if !c.tx_extra.is_empty() {
            let n = c.tx_extra.len().min(FRAME_SAMPLES);
            for (a, s) in acc.iter_mut().zip(c.tx_extra.drain(..n)) {
                *a += i32::from(s);
            }
            ring_now = c.tx_extra.is_empty() && c.station_ring.as_ref().is_some_and(|r| r.ring_after_cid);
        }
        // Saturate and encode on the stack: this runs for every channel every 20 ms.
        let encode = match c.law {
            Law::Alaw => g711::linear_to_alaw,
            Law::Mulaw => g711::linear_to_ulaw,
        };
        let mut bytes = [0u8; FRAME_SAMPLES];
        for (b, &a) in bytes.iter_mut().zip(&acc) {
            *b = encode(a.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
        }
        let channo = c.channo;
        match c.dev.write(&bytes) {
            Ok(_) => {}
            // DAHDI's buffers are full: this block is dropped, the line hears a gap.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io_err(ch, channo, "write", e)),
        }
        if ring_now {
            if let Some(r) = c.station_ring.as_mut() {
                r.ring_after_cid = false;
            }
            self.hook(ch, Hook::Ring)?;
        }
        if let Some(reason) = finished {
            self.finish_play(ch, reason);
        }
        Ok(())
    }

    fn timers(&mut self, now: Instant) -> Result<()> {
        let (on, off) = self.ring_cadence;
        let ids: Vec<ChannelId> = self.chans.keys().copied().collect();
        for ch in ids {
            let c = self.chan(ch)?;
            if let Some(i) = c.inbound.as_ref() {
                if !i.answered && now - i.last_ring > on + off + RING_GONE_MARGIN {
                    let offered = i.offered && !i.ignored;
                    c.inbound = None;
                    if offered {
                        // The caller gave up: the ringing stopped.
                        self.emit(EventKind::Released {
                            ch,
                            cause: Cause::NORMAL_CLEARING,
                            by: Side::Remote,
                        });
                    }
                    self.make_idle(ch);
                    continue;
                }
            }
            let c = self.chan(ch)?;
            if let Some(Stage::WaitDialTone(since)) = c.outbound.as_ref().map(|o| o.stage) {
                if now - since > DIAL_TONE_WAIT {
                    self.hook(ch, Hook::OnHook)?;
                    self.emit(EventKind::Released {
                        ch,
                        cause: Cause::NETWORK_OUT_OF_ORDER,
                        by: Side::Local,
                    });
                    self.make_idle(ch);
                }
            }
        }
        Ok(())
    }

    // ---- Commands ----

    fn signalling_for(&mut self, ch: ChannelId) -> Result<&mut Box<dyn SpanSignalling + Send>> {
        let ChannelAddr::E1 { span, .. } = ch.addr else {
            return Err(Error::new(ErrorKind::Unsupported, format!("{ch}: not an E1 channel")));
        };
        self.signalling.get_mut(&span).ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                format!("{ch}: call control on DAHDI span {span} needs its D-channel signalling (libpri, feature `pri`)"),
            )
        })
    }

    fn usable(&mut self, ch: ChannelId) -> Result<&mut Chan<D>> {
        let c = self.chan(ch)?;
        if c.alarm || c.maint {
            return Err(Error::new(ErrorKind::Blocked, format!("{ch} is out of service")));
        }
        Ok(c)
    }

    fn answer(&mut self, ch: ChannelId) -> Result<()> {
        let c = self.usable(ch)?;
        match (ch.kind(), c.state) {
            (ChannelKind::Fxo, ChannelState::Offered | ChannelState::Alerting) => {
                self.hook(ch, Hook::OffHook)?;
                let c = self.chan(ch)?;
                c.state = ChannelState::Connected;
                if let Some(i) = c.inbound.as_mut() {
                    i.answered = true;
                }
                c.tones.reset();
                self.emit(EventKind::Answered { ch });
                Ok(())
            }
            (_, s) => Err(state_err(ch, s, "answer")),
        }
    }

    fn release(&mut self, ch: ChannelId, cause: Cause) -> Result<()> {
        let c = self.chan(ch)?;
        let state = c.state;
        match ch.kind() {
            ChannelKind::Fxs => match state {
                ChannelState::Alerting => {
                    self.hook(ch, Hook::OnHook)?;
                    self.emit(EventKind::Released { ch, cause, by: Side::Local });
                    self.make_idle(ch);
                }
                ChannelState::Connected | ChannelState::OffHook => {
                    // Cut the station: busy tone until the handset goes down.
                    self.end_call(ch);
                    let busy = ToneGenerator::for_tone(&self.plan, Tone::Busy);
                    let c = self.chan(ch)?;
                    c.state = ChannelState::OffHook;
                    c.local_tone = Some(busy);
                    self.emit(EventKind::Released { ch, cause, by: Side::Local });
                }
                s => return Err(state_err(ch, s, "release")),
            },
            ChannelKind::Fxo => match state {
                ChannelState::Offered | ChannelState::Alerting
                    if self.chan(ch)?.inbound.as_ref().is_some_and(|i| !i.answered) =>
                {
                    // An analog line cannot refuse: let it ring out unanswered.
                    if let Some(i) = self.chan(ch)?.inbound.as_mut() {
                        i.ignored = true;
                    }
                    self.emit(EventKind::Released { ch, cause, by: Side::Local });
                    self.end_call(ch);
                    self.chan(ch)?.state = ChannelState::Idle;
                }
                ChannelState::Connected | ChannelState::Alerting | ChannelState::Dialing => {
                    self.hook(ch, Hook::OnHook)?;
                    self.emit(EventKind::Released { ch, cause, by: Side::Local });
                    self.make_idle(ch);
                }
                s => return Err(state_err(ch, s, "release")),
            },
            ChannelKind::E1Bearer => {
                let now = self.now;
                return self.signalling_for(ch)?.execute(now, Command::Release { ch, cause });
            }
        }
        Ok(())
    }

    fn ring_station(&mut self, ch: ChannelId, caller_id: Option<CallerId>) -> Result<()> {
        if ch.kind() != ChannelKind::Fxs {
            return Err(Error::new(ErrorKind::Unsupported, format!("{ch}: only FXS ports ring")));
        }
        let mode = self.fxs_cid;
        let c = self.usable(ch)?;
        if c.state != ChannelState::Idle {
            return Err(state_err(ch, c.state, "ring"));
        }
        let audio = match &caller_id {
            Some(cid) => cid_audio(cid, mode)?,
            None => None,
        };
        let dtmf_first = mode == CallerIdMode::Dtmf && audio.is_some();
        c.state = ChannelState::Alerting;
        if dtmf_first {
            // DTMF caller ID goes before the first ring.
            c.tx_extra.extend(audio.unwrap_or_default());
            c.station_ring = Some(StationRing { cid_after_first: None, ring_after_cid: true });
            Ok(())
        } else {
            c.station_ring = Some(StationRing { cid_after_first: audio, ring_after_cid: false });
            self.hook(ch, Hook::Ring).inspect_err(|_| {
                if let Some(c) = self.chans.get_mut(&ch) {
                    c.state = ChannelState::Idle;
                    c.station_ring = None;
                }
            })
        }
    }

    fn place_call(&mut self, ch: ChannelId, called: String) -> Result<()> {
        if let Some(bad) = called.chars().find(|c| !crate::dsp::dtmf::is_dtmf_digit(*c)) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("called number {called:?}: {bad:?} cannot be dialled as DTMF"),
            ));
        }
        let now = self.now;
        let c = self.usable(ch)?;
        if c.state != ChannelState::Idle || c.inbound.is_some() {
            return Err(state_err(ch, c.state, "place a call"));
        }
        self.hook(ch, Hook::OffHook)?;
        let c = self.chan(ch)?;
        c.state = ChannelState::Dialing;
        c.tones.reset();
        c.outbound =
            Some(Outbound { called, stage: Stage::WaitDialTone(now), loud_since: None, quiet_since: None });
        Ok(())
    }

    fn play(&mut self, ch: ChannelId, id: u32, source: PlaySource, barge_in: bool) -> Result<()> {
        let plan = self.plan.clone();
        self.chan(ch)?;
        let src = match source {
            PlaySource::Prompt(path) => Src::Samples(wav::read_prompt(&path)?, 0),
            PlaySource::Tone(t) => Src::Tone(ToneGenerator::for_tone(&plan, t)),
            PlaySource::Frames(rx) => Src::Frames(rx),
        };
        self.finish_play(ch, PlayEnd::Stopped);
        let c = self.chan(ch)?;
        c.local_tone = None;
        c.play = Some(Playing { id, src, barge_in });
        Ok(())
    }

    fn block(&mut self, ch: ChannelId, on: bool) -> Result<()> {
        let c = self.chan(ch)?;
        if c.maint == on {
            return Ok(());
        }
        c.maint = on;
        if on {
            if c.state == ChannelState::Idle {
                c.state = ChannelState::Blocked;
            }
            self.emit(EventKind::Blocked { ch, reason: "maintenance".into() });
        } else if !c.alarm {
            if c.state == ChannelState::Blocked {
                c.state = ChannelState::Idle;
            }
            self.emit(EventKind::Unblocked { ch });
        }
        Ok(())
    }
}

impl<D: ChannelDevice> Card for DahdiCard<D> {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn channels(&self) -> Vec<ChannelInfo> {
        self.chans
            .values()
            .map(|c| {
                let signalling = match c.id.addr {
                    ChannelAddr::E1 { .. } => "DAHDI bearer (clear)",
                    ChannelAddr::Fxo { .. } => "loop start (FXO, DAHDI fxs signalling)",
                    ChannelAddr::Fxs { .. } => "loop start (FXS, DAHDI fxo signalling)",
                };
                let (state, signalling) = (c.state, signalling.to_string());
                ChannelInfo { id: c.id, kind: c.id.kind(), state, signalling }
            })
            .collect()
    }

    fn execute(&mut self, now: Instant, command: Command) -> Result<()> {
        self.now = self.now.max(now);
        let result = match command {
            Command::Accept { ch } => {
                let c = self.usable(ch)?;
                match (ch.kind(), c.state) {
                    // The exchange already rings the caller back; nothing to send.
                    (ChannelKind::Fxo, ChannelState::Offered) => {
                        c.state = ChannelState::Alerting;
                        Ok(())
                    }
                    (ChannelKind::E1Bearer, _) => {
                        self.signalling_for(ch)?.execute(now, Command::Accept { ch })
                    }
                    (_, s) => Err(state_err(ch, s, "accept")),
                }
            }
            Command::Answer { ch } if ch.kind() == ChannelKind::E1Bearer => {
                self.signalling_for(ch)?.execute(now, Command::Answer { ch })
            }
            Command::Answer { ch } => self.answer(ch),
            Command::Reject { ch, cause } => match ch.kind() {
                ChannelKind::E1Bearer => self.signalling_for(ch)?.execute(now, Command::Reject { ch, cause }),
                _ => {
                    let s = self.chan(ch)?.state;
                    if !matches!(s, ChannelState::Offered | ChannelState::Alerting) {
                        return Err(state_err(ch, s, "reject"));
                    }
                    self.release(ch, cause)
                }
            },
            Command::Release { ch, cause } => self.release(ch, cause),
            Command::PlaceCall { ch, called, calling, category } => match ch.kind() {
                ChannelKind::E1Bearer => self
                    .signalling_for(ch)?
                    .execute(now, Command::PlaceCall { ch, called, calling, category }),
                ChannelKind::Fxo => self.place_call(ch, called),
                ChannelKind::Fxs => {
                    Err(Error::new(ErrorKind::Unsupported, format!("{ch}: a station is rung, not called")))
                }
            },
            Command::RingStation { ch, caller_id } => self.ring_station(ch, caller_id),
            Command::StopRinging { ch } => {
                let c = self.chan(ch)?;
                if c.station_ring.is_none() {
                    return Err(state_err(ch, c.state, "stop ringing"));
                }
                self.hook(ch, Hook::RingOff)?;
                self.make_idle(ch);
                Ok(())
            }
            Command::Play { ch, id, source, barge_in } => self.play(ch, id, source, barge_in),
            Command::StopPlay { ch } => {
                self.chan(ch)?;
                self.finish_play(ch, PlayEnd::Stopped);
                Ok(())
            }
            Command::SendDigits { ch, digits } => {
                let g = DtmfGenerator::new(&digits, DtmfParams::default())?;
                let c = self.chan(ch)?;
                c.digits_out = Some(g);
                Ok(())
            }
            Command::StartTap { ch, id, sink } => {
                self.chan(ch)?.taps.push(Tap { id, sink, frames: 0, dropped: 0 });
                Ok(())
            }
            Command::StopTap { ch, id } => {
                let c = self.chan(ch)?;
                let Some(pos) = c.taps.iter().position(|t| t.id == id) else {
                    return Err(Error::new(ErrorKind::InvalidState, format!("{ch}: no tap {id}")));
                };
                let t = c.taps.remove(pos);
                self.emit(EventKind::RecordFinished { ch, id, frames: t.frames, dropped: t.dropped });
                Ok(())
            }
            Command::Connect { a, b } => self.connect(a, b),
            Command::Listen { listener, source } => self.listen(listener, source),
            Command::Disconnect { ch } => self.disconnect(ch),
            Command::JoinConference { conf, ch, rights } => self.join(conf, ch, rights),
            Command::SetMemberRights { conf, ch, rights } => self.set_rights(conf, ch, rights),
            Command::LeaveConference { conf, ch } => self.leave(conf, ch),
            Command::Block { ch }
                if ch.kind() == ChannelKind::E1Bearer && self.signalling_for(ch).is_ok() =>
            {
                self.signalling_for(ch)?.execute(now, Command::Block { ch })
            }
            Command::Unblock { ch }
                if ch.kind() == ChannelKind::E1Bearer && self.signalling_for(ch).is_ok() =>
            {
                self.signalling_for(ch)?.execute(now, Command::Unblock { ch })
            }
            Command::Block { ch } => self.block(ch, true),
            Command::Unblock { ch } => self.block(ch, false),
        };
        self.flush();
        result
    }

    fn poll(&mut self, now: Instant) -> Result<Option<Instant>> {
        self.now = self.now.max(now);
        let mut result = Ok(());
        // Events first: a hook change or an alarm decides what the audio means.
        let ids: Vec<ChannelId> = self.chans.keys().copied().collect();
        for &ch in &ids {
            loop {
                let c = self.chans.get_mut(&ch).expect("ours");
                let ev = match c.dev.get_event() {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(e) => {
                        result = Err(io_err(ch, c.channo, "DAHDI_GETEVENT", e));
                        break;
                    }
                };
                if let Err(e) = self.on_event(ch, ev) {
                    result = Err(e);
                }
            }
        }
        match self.read_all() {
            Ok(late) => {
                for (ch, ev) in late {
                    if let Err(e) = self.on_event(ch, ev) {
                        result = Err(e);
                    }
                }
            }
            Err(e) => result = Err(e),
        }
        let whisper = self.whispers();
        for &ch in &ids {
            let n = self.chans[&ch].frames.len();
            for i in 0..n {
                self.receive(ch, i, now);
                if let Err(e) = self.transmit(ch, i, &whisper) {
                    result = Err(e);
                }
            }
        }
        if let Err(e) = self.timers(now) {
            result = Err(e);
        }
        for s in self.signalling.values_mut() {
            if let Err(e) = s.poll(now) {
                result = Err(e);
            }
        }
        self.follow_bearers();
        self.flush();
        result.map(|_| Some(now + Duration::from_millis(20)))
    }
}
