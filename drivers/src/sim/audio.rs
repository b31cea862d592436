//! Audio mode: every 20 ms real 8 kHz frames move.
//!
//! Each tick, for every channel in use:
//! 1. the far party (caller, callee, phone, exchange) sends a frame toward the card:
//!    DTMF from [`DtmfGenerator`], speech-like noise while talking, the exchange's tones
//!    from [`ToneGenerator`], caller ID as FSK or DTMF audio on an FXO line;
//! 2. the card's transmit frame is mixed: what plays on the channel (prompt, tone, frame
//!    stream), its own DTMF, station caller ID, and what the bus and conference bridges
//!    route to it (full duplex, one-way listen, per-member talk/listen/hidden_from), with
//!    saturation;
//! 3. the far party hears that frame through its own detectors (what a test asks with
//!    [`SimCard::heard`]);
//! 4. the card's receive side runs [`DtmfDetector`] and [`ToneDetector`] (and an
//!    [`FskReceiver`] for caller ID): digits and tones are found in sound, then reported.
//!    Taps get the received frame.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::TryRecvError;

use crate::channel::{ChannelId, ChannelState};
use crate::command::TapFrame;
use crate::config::{CallerIdMode, CardConfig};
use crate::dsp::callerid::{self, FskReceiver};
use crate::dsp::dtmf::{DigitEvent, DtmfDetector, DtmfGenerator, DtmfParams};
use crate::dsp::tones::{ToneDetector, ToneEvent, ToneGenerator, TonePlan};
use crate::error::Result;
use crate::event::PlayEnd;
use crate::signal::{CallerId, Tone};
use crate::time::Instant;
use crate::FRAME_SAMPLES;

use super::card::{Chan, Line, PlayKind, SimCard, Step};
use super::rng::Rng;
use super::timing::ms;

type Frame = [i16; FRAME_SAMPLES];
const SILENCE: Frame = [0; FRAME_SAMPLES];
const FRAME: Duration = Duration::from_millis(20);
/// Caller ID sent toward a phone or over an exchange line, in dBm0 (GR-30: -13.5 dBm).
const CID_LEVEL_DBM0: f32 = -13.5;
/// Mean square of a -50 dBm0 signal: frames above it count as sound.
const LOUD_MEAN_SQUARE: f64 = 22_706.0 * 22_706.0 / 2.0 * 1e-5;

/// The card-wide part of audio mode: the tone plan and the prompts read so far.
#[derive(Debug)]
pub(crate) struct AudioWorld {
    plan: TonePlan,
    prompts: BTreeMap<PathBuf, Arc<Vec<i16>>>,
}

impl AudioWorld {
    pub(crate) fn new(card: &CardConfig) -> Result<AudioWorld> {
        Ok(AudioWorld { plan: card.tone_plan.clone(), prompts: BTreeMap::new() })
    }

    /// A prompt's samples, read once per file.
    pub(crate) fn prompt(&mut self, path: &Path) -> Result<Arc<Vec<i16>>> {
        if let Some(p) = self.prompts.get(path) {
            return Ok(p.clone());
        }
        let samples = Arc::new(crate::dsp::wav::read_prompt(path)?);
        self.prompts.insert(path.to_path_buf(), samples.clone());
        Ok(samples)
    }
}

/// Speech-like sound: low-passed noise under a syllable-rate envelope, about -20 dBm0
/// while voiced, with pauses between words. Energy for the bus to carry; it has no
/// tonal components for the DTMF detector to mistake.
#[derive(Debug, Clone)]
struct Speech {
    rng: Rng,
    lp: f64,
    phase: f64,
    rate_hz: f64,
    pause: u32,
}

impl Speech {
    fn new(seed: u64) -> Self {
        Speech { rng: Rng::new(seed), lp: 0.0, phase: 0.0, rate_hz: 4.0, pause: 0 }
    }

    fn fill(&mut self, out: &mut Frame) {
        for s in out.iter_mut() {
            if self.pause > 0 {
                self.pause -= 1;
                *s = 0;
                continue;
            }
            // Triangular noise (two uniforms) at unit variance: cheap, and flat enough.
            let white = (self.rng.unit() + self.rng.unit() - 1.0) * 2.449;
            self.lp = 0.7 * self.lp + 0.3 * white;
            self.phase += self.rate_hz / crate::SAMPLE_RATE as f64;
            if self.phase >= 1.0 {
                // A syllable ends: sometimes a pause between words, a new pace.
                self.phase -= 1.0;
                self.rate_hz = 3.0 + 3.0 * self.rng.unit();
                if self.rng.unit() < 0.2 {
                    self.pause = 800 + self.rng.below(1600) as u32;
                }
            }
            let env = 0.5 * (1.0 - (std::f64::consts::TAU * self.phase).cos());
            *s = (self.lp * env * 9000.0).clamp(-32768.0, 32767.0) as i16;
        }
    }
}

/// Samples waiting to be sent from a given time (caller ID between rings).
#[derive(Debug)]
struct Burst {
    samples: Vec<i16>,
    pos: usize,
    from: Instant,
}

impl Burst {
    /// Adds the next frame's worth into `acc` when due; true when it has all been sent.
    fn mix_into(&mut self, frame_start: Instant, acc: &mut [i32; FRAME_SAMPLES]) -> bool {
        if frame_start < self.from {
            return false;
        }
        let n = (self.samples.len() - self.pos).min(FRAME_SAMPLES);
        for (a, s) in acc.iter_mut().zip(&self.samples[self.pos..self.pos + n]) {
            *a += *s as i32;
        }
        self.pos += n;
        self.pos >= self.samples.len()
    }
}

/// One channel's audio: the far party's sources and ears, the card's sources and
/// detectors.
#[derive(Debug)]
pub(crate) struct ChanAudio {
    /// Ringing voltage on the line (no audio; caller ID is sent between rings).
    pub ringing: bool,
    /// The far party talks from (if set) until this time.
    pub far_talk_from: Option<Instant>,
    pub far_talk_until: Option<Instant>,
    /// Caller ID the card decoded on an FXO line, for `Offered`.
    pub fxo_cid: Option<CallerId>,
    speech: Speech,
    far_dtmf: Option<(DtmfGenerator, bool)>,
    exchange: Option<ToneGenerator>,
    exchange_tone: Option<Tone>,
    fxo_cid_audio: Option<Burst>,
    fxo_fsk: Option<FskReceiver>,
    fxo_cid_mode: CallerIdMode,
    fxo_cid_digits: String,
    card_dtmf: Option<DtmfGenerator>,
    pending_digits: Option<String>,
    local: Option<(Tone, ToneGenerator)>,
    play_tone: Option<(u64, ToneGenerator)>,
    station_cid: Option<Burst>,
    /// Ringback the network plays to a caller we have not answered yet.
    network_ringback: Option<ToneGenerator>,
    phone_fsk: Option<FskReceiver>,
    phone_cid_mode: CallerIdMode,
    phone_cid_digits: String,
    dtmf_det: DtmfDetector,
    tone_det: ToneDetector,
    rx_base: Instant,
    rx_count: u64,
    far_dtmf_det: DtmfDetector,
    far_tone_det: ToneDetector,
    rx: Frame,
    tx: Frame,
    plan: TonePlan,
}

impl ChanAudio {
    pub(crate) fn new(plan: &TonePlan, seed: u64) -> Self {
        ChanAudio {
            ringing: false,
            far_talk_from: None,
            far_talk_until: None,
            fxo_cid: None,
            speech: Speech::new(seed),
            far_dtmf: None,
            exchange: None,
            exchange_tone: None,
            fxo_cid_audio: None,
            fxo_fsk: None,
            fxo_cid_mode: CallerIdMode::None,
            fxo_cid_digits: String::new(),
            card_dtmf: None,
            pending_digits: None,
            local: None,
            play_tone: None,
            station_cid: None,
            network_ringback: None,
            phone_fsk: None,
            phone_cid_mode: CallerIdMode::None,
            phone_cid_digits: String::new(),
            dtmf_det: DtmfDetector::new(),
            tone_det: ToneDetector::new(plan),
            rx_base: Instant::ZERO,
            rx_count: 0,
            far_dtmf_det: DtmfDetector::new(),
            far_tone_det: ToneDetector::new(plan),
            rx: SILENCE,
            tx: SILENCE,
            plan: plan.clone(),
        }
    }

    /// The call is over: sources stop, detectors start afresh for the next one.
    pub(crate) fn reset_call(&mut self) {
        self.ringing = false;
        self.far_talk_from = None;
        self.far_talk_until = None;
        self.fxo_cid = None;
        self.far_dtmf = None;
        self.exchange = None;
        self.exchange_tone = None;
        self.fxo_cid_audio = None;
        self.fxo_fsk = None;
        self.fxo_cid_digits.clear();
        self.card_dtmf = None;
        self.pending_digits = None;
        self.local = None;
        self.play_tone = None;
        self.station_cid = None;
        self.network_ringback = None;
        self.phone_fsk = None;
        self.phone_cid_digits.clear();
        self.dtmf_det.reset();
        self.tone_det.reset();
        self.far_dtmf_det.reset();
        self.far_tone_det.reset();
        self.rx_count = 0;
        self.rx = SILENCE;
        self.tx = SILENCE;
    }

    /// The exchange starts or stops a tone toward the card.
    pub(crate) fn set_exchange_tone(&mut self, tone: Option<Tone>) {
        if tone == self.exchange_tone {
            return;
        }
        self.exchange_tone = tone;
        self.exchange = tone.map(|t| ToneGenerator::for_tone(&self.plan, t));
    }

    /// The card sends DTMF (queued behind digits still going out).
    pub(crate) fn send_digits(&mut self, digits: &str) {
        match &mut self.pending_digits {
            Some(p) => p.push_str(digits),
            None => self.pending_digits = Some(digits.to_string()),
        }
    }

    /// Caller ID digits or FSK the card decoded on an FXO line.
    pub(crate) fn take_fxo_cid(&mut self) -> Option<CallerId> {
        match self.fxo_cid_mode {
            CallerIdMode::Dtmf => {
                let digits = std::mem::take(&mut self.fxo_cid_digits);
                callerid::parse_dtmf_caller_id(&digits).ok()
            }
            _ => self.fxo_cid.take(),
        }
    }

    fn talking(&self, at: Instant) -> bool {
        self.far_talk_until.is_some_and(|u| at < u) && self.far_talk_from.map_or(true, |f| at >= f)
    }
}

/// Caller ID as line audio in the configured way (none when it cannot be sent).
fn cid_audio(cid: &CallerId, mode: CallerIdMode) -> Option<Vec<i16>> {
    mode.line_audio(cid, CID_LEVEL_DBM0).ok().flatten()
}

fn saturate(acc: &[i32; FRAME_SAMPLES]) -> Frame {
    let mut out = SILENCE;
    for (o, a) in out.iter_mut().zip(acc) {
        *o = (*a).clamp(i16::MIN as i32, i16::MAX as i32) as i16;
    }
    out
}

fn add(acc: &mut [i32; FRAME_SAMPLES], frame: &[i16]) {
    for (a, s) in acc.iter_mut().zip(frame) {
        *a += *s as i32;
    }
}

/// What one tick found, applied after every channel has been processed.
enum Found {
    Digit(ChannelId, char, Instant, Instant),
    Tone(ChannelId, Tone),
    PlayDone(ChannelId),
    FarDigitsDone(ChannelId),
}

fn in_use(c: &Chan) -> bool {
    !matches!(c.state, ChannelState::Idle | ChannelState::Blocked)
        || c.phone.as_ref().is_some_and(|p| p.off_hook)
        || c.play.is_some()
}

impl SimCard {
    /// One 20 ms tick: the frame that ended at `self.now`.
    pub(crate) fn tick(&mut self) {
        let Some(world) = self.audio.take() else { return };
        let end = self.now;
        let start = Instant::from_micros(end.as_micros().saturating_sub(20_000));
        let active: Vec<ChannelId> = self.chans.values().filter(|c| in_use(c)).map(|c| c.id).collect();
        let mut found = Vec::new();

        // 1. What the far parties send toward the card.
        for ch in &active {
            let c = self.chans.get_mut(ch).expect("listed");
            let Some(a) = c.audio.as_mut() else { continue };
            let mut acc = [0i32; FRAME_SAMPLES];
            let mut buf = SILENCE;
            if let Some((g, _)) = a.far_dtmf.as_mut() {
                g.fill(&mut buf);
                add(&mut acc, &buf);
                if g.is_done() {
                    a.far_dtmf = None;
                    found.push(Found::FarDigitsDone(*ch));
                }
            } else if a.talking(start) {
                a.speech.fill(&mut buf);
                add(&mut acc, &buf);
            }
            if let Some(g) = a.exchange.as_mut() {
                g.fill(&mut buf);
                add(&mut acc, &buf);
            }
            if let Some(b) = a.fxo_cid_audio.as_mut() {
                if b.mix_into(start, &mut acc) {
                    a.fxo_cid_audio = None;
                }
            }
            a.rx = saturate(&acc);
        }

        // 2. What the card sends: its own sources, then the bus and the bridges.
        let rx_of = |chans: &BTreeMap<ChannelId, Chan>, id: &ChannelId| -> Frame {
            chans
                .get(id)
                .and_then(|c| c.audio.as_ref())
                .filter(|_| active.contains(id))
                .map_or(SILENCE, |a| a.rx)
        };
        let mut txs: Vec<(ChannelId, Frame)> = Vec::with_capacity(active.len());
        for ch in &active {
            let mut acc = [0i32; FRAME_SAMPLES];
            for src in self.listens.get(ch).into_iter().flatten() {
                add(&mut acc, &rx_of(&self.chans, src));
            }
            for members in self.conferences.values() {
                let Some(me) = members.get(ch) else { continue };
                if !me.listen {
                    continue;
                }
                for (other, rights) in members {
                    if other != ch && rights.talk && !rights.hidden_from.contains(ch) {
                        add(&mut acc, &rx_of(&self.chans, other));
                    }
                }
            }
            let c = self.chans.get_mut(ch).expect("listed");
            let phone_on_hook = c.phone.as_ref().is_some_and(|p| !p.off_hook);
            let local_tone = c.local_tone;
            let Some(a) = c.audio.as_mut() else { continue };
            let mut buf = SILENCE;
            match c.play.as_mut() {
                Some(p) => match &mut p.kind {
                    PlayKind::Samples { samples, pos } => {
                        let n = (samples.len() - *pos).min(FRAME_SAMPLES);
                        add(&mut acc, &samples[*pos..*pos + n]);
                        *pos += n;
                        if *pos >= samples.len() {
                            found.push(Found::PlayDone(*ch));
                        }
                    }
                    PlayKind::Tone(t) => {
                        if a.play_tone.as_ref().map_or(true, |(seq, _)| *seq != p.seq) {
                            a.play_tone = Some((p.seq, ToneGenerator::for_tone(&world.plan, *t)));
                        }
                        if let Some((_, g)) = a.play_tone.as_mut() {
                            g.fill(&mut buf);
                            add(&mut acc, &buf);
                        }
                    }
                    PlayKind::Frames(rx) => match rx.try_recv() {
                        Ok(frame) => add(&mut acc, &frame),
                        Err(TryRecvError::Empty) => {}
                        Err(TryRecvError::Disconnected) => found.push(Found::PlayDone(*ch)),
                    },
                    PlayKind::Timed => {}
                },
                None => a.play_tone = None,
            }
            match local_tone {
                Some(t) => {
                    if a.local.as_ref().map_or(true, |(lt, _)| *lt != t) {
                        a.local = Some((t, ToneGenerator::for_tone(&world.plan, t)));
                    }
                    if let Some((_, g)) = a.local.as_mut() {
                        g.fill(&mut buf);
                        add(&mut acc, &buf);
                    }
                }
                None => a.local = None,
            }
            if a.card_dtmf.is_none() {
                if let Some(d) = a.pending_digits.take() {
                    a.card_dtmf = DtmfGenerator::new(&d, DtmfParams::default()).ok();
                }
            }
            if let Some(g) = a.card_dtmf.as_mut() {
                g.fill(&mut buf);
                add(&mut acc, &buf);
                if g.is_done() {
                    a.card_dtmf = None;
                }
            }
            if let Some(b) = a.station_cid.as_mut() {
                if !phone_on_hook || b.mix_into(start, &mut acc) {
                    a.station_cid = None;
                    if a.phone_cid_mode == CallerIdMode::Dtmf {
                        let digits = std::mem::take(&mut a.phone_cid_digits);
                        if let Ok(cid) = callerid::parse_dtmf_caller_id(&digits) {
                            c.heard.caller_ids.push(cid);
                        }
                    }
                }
            }
            txs.push((*ch, saturate(&acc)));
        }

        // 3 and 4. The far party hears; the card detects; taps copy.
        let mut digits: Vec<DigitEvent> = Vec::new();
        let mut tones: Vec<ToneEvent> = Vec::new();
        let mut cids = Vec::new();
        for (ch, tx) in txs {
            let c = self.chans.get_mut(&ch).expect("listed");
            let cid_phase = matches!(c.line, Line::Fxo { .. })
                && c.call.as_ref().is_some_and(|x| x.inbound && !x.offered);
            let phone_on_hook = c.phone.as_ref().is_some_and(|p| !p.off_hook);
            // An inbound caller hears the network's ringback until we answer: after our
            // ALERTING on a digital trunk, from the first ring on an exchange line.
            let ringback = c.call.as_ref().is_some_and(|x| {
                x.inbound && !x.answered && !x.far_gone && (x.alerting || matches!(c.line, Line::Fxo { .. }))
            });
            let Some(a) = c.audio.as_mut() else { continue };
            a.tx = tx;
            let mut tx = tx;
            if ringback {
                let g = a
                    .network_ringback
                    .get_or_insert_with(|| ToneGenerator::for_tone(&a.plan, Tone::Ringback));
                let mut buf = SILENCE;
                g.fill(&mut buf);
                let mut acc = [0i32; FRAME_SAMPLES];
                add(&mut acc, &tx);
                add(&mut acc, &buf);
                tx = saturate(&acc);
            } else {
                a.network_ringback = None;
            }
            // The far party's ears.
            let mean_square = tx.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / FRAME_SAMPLES as f64;
            c.heard.frames += 1;
            c.heard.energy_sum += mean_square * FRAME_SAMPLES as f64;
            if mean_square > LOUD_MEAN_SQUARE {
                c.heard.loud_frames += 1;
            }
            digits.clear();
            a.far_dtmf_det.process(&tx, &mut digits);
            for d in &digits {
                if phone_on_hook && a.phone_cid_mode == CallerIdMode::Dtmf {
                    a.phone_cid_digits.push(d.digit);
                } else {
                    c.heard.digits.push(d.digit);
                }
            }
            tones.clear();
            a.far_tone_det.process(&tx, &mut tones);
            for t in &tones {
                c.heard.tone(t.tone);
            }
            if let Some(fsk) = a.phone_fsk.as_mut() {
                cids.clear();
                fsk.process(&tx, &mut cids);
                for e in cids.drain(..) {
                    if let Ok(cid) = e.result {
                        c.heard.caller_ids.push(cid);
                    }
                }
            }
            // The card's receive side.
            if a.rx_count == 0 {
                a.rx_base = start;
            }
            let rx = a.rx;
            let base = a.rx_base;
            let at = |n: u64| base + Duration::from_micros(n * 125);
            digits.clear();
            a.dtmf_det.process(&rx, &mut digits);
            for d in &digits {
                if cid_phase && a.fxo_cid_mode == CallerIdMode::Dtmf {
                    a.fxo_cid_digits.push(d.digit);
                } else {
                    found.push(Found::Digit(ch, d.digit, at(d.start), at(d.end)));
                }
            }
            tones.clear();
            a.tone_det.process(&rx, &mut tones);
            for t in &tones {
                found.push(Found::Tone(ch, t.tone));
            }
            if let Some(fsk) = a.fxo_fsk.as_mut() {
                cids.clear();
                fsk.process(&rx, &mut cids);
                if let Some(cid) = cids.drain(..).find_map(|e| e.result.ok()) {
                    a.fxo_cid = Some(cid);
                }
            }
            a.rx_count += FRAME_SAMPLES as u64;
            for t in c.taps.iter_mut() {
                // Never block the media tick on a recorder: a full sink costs a frame,
                // and the count of lost frames is reported when the tap ends.
                match t.sink.try_send(TapFrame { ch, id: t.id, time: start, samples: rx.to_vec() }) {
                    Ok(()) => t.frames += 1,
                    Err(_) => t.dropped += 1,
                }
            }
        }
        self.audio = Some(world);

        for f in found {
            match f {
                Found::Digit(ch, d, s, e) => {
                    if self.chans[&ch].call.is_some() || self.chans[&ch].phone.is_some() {
                        self.card_digit(ch, d, s, e);
                    }
                }
                Found::Tone(ch, t) => self.tone_detected(ch, t),
                Found::PlayDone(ch) => self.finish_play(ch, PlayEnd::Completed),
                Found::FarDigitsDone(ch) => {
                    let react = ms(&mut self.rng, 200, 600);
                    self.after(react, ch, Step::CallerNext);
                }
            }
        }
    }

    /// The far party presses keys: real DTMF toward the card.
    pub(crate) fn audio_far_press(&mut self, ch: ChannelId, digits: &str, continue_script: bool) {
        let c = self.chans.get_mut(&ch).expect("ours");
        if let Some(a) = c.audio.as_mut() {
            if let Ok(g) = DtmfGenerator::new(digits, DtmfParams::default()) {
                // Without a script to continue, the generator's end is not reported.
                a.far_dtmf = Some((g, continue_script));
            }
        }
    }

    /// The exchange sends caller ID on an FXO line `start` from now; returns how long
    /// until the card can have decoded it.
    pub(crate) fn audio_fxo_send_cid(
        &mut self,
        ch: ChannelId,
        cid: &CallerId,
        mode: CallerIdMode,
        start: Duration,
    ) -> Duration {
        let from = self.now + start;
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(a) = c.audio.as_mut() else { return Duration::ZERO };
        let Some(samples) = cid_audio(cid, mode) else { return Duration::ZERO };
        let d = Duration::from_micros(samples.len() as u64 * 125);
        a.fxo_cid_mode = mode;
        a.fxo_cid_digits.clear();
        a.fxo_fsk = mode.fsk_standard().map(FskReceiver::new);
        a.fxo_cid_audio = Some(Burst { samples, pos: 0, from });
        // Frames are whole 20 ms ticks and the detectors need a little silence after.
        d + 3 * FRAME
    }

    /// The card sends caller ID to a station's phone `start` from now.
    pub(crate) fn audio_station_send_cid(
        &mut self,
        ch: ChannelId,
        cid: &CallerId,
        mode: CallerIdMode,
        start: Duration,
    ) {
        let from = self.now + start;
        let c = self.chans.get_mut(&ch).expect("ours");
        let Some(a) = c.audio.as_mut() else { return };
        let Some(samples) = cid_audio(cid, mode) else { return };
        a.phone_cid_mode = mode;
        a.phone_cid_digits.clear();
        a.phone_fsk = mode.fsk_standard().map(FskReceiver::new);
        a.station_cid = Some(Burst { samples, pos: 0, from });
    }

    /// What the card received and sent on `ch` in the last tick (audio mode).
    pub fn last_frames(&self, ch: ChannelId) -> Option<(&[i16], &[i16])> {
        let a = self.chans.get(&ch)?.audio.as_ref()?;
        Some((&a.rx, &a.tx))
    }
}
