//! Call-progress tones: tone plans as data, a generator, and a cadence-aware detector.
//!
//! A [`TonePlan`] says how a network sounds its dial, busy, ringback, congestion and
//! call-waiting tones (frequencies, level, on/off cadence). Plans are data: the built-in
//! ones ([`TonePlan::china`], the default; [`TonePlan::itu`]; [`TonePlan::north_america`];
//! [`TonePlan::uk`]) or a custom one an installer writes in TOML. Fax CNG and CED are fixed
//! by ITU-T T.30 and V.25 and belong to no plan.
//!
//! [`ToneGenerator`] plays a tone (cards and the simulator use it for FXS stations and
//! simulated exchanges). [`ToneDetector`] listens to a channel and reports each tone once
//! when it is recognised: continuous tones after a minimum duration, cadenced tones after
//! their on/off cadence has been confirmed. It must be cheap (thousands of channels per
//! core), so each 20 ms block costs one bank of f32 Goertzel filters (the plan's
//! frequencies plus 1100 and 2100 Hz) and the block energy, and nothing is allocated after
//! construction.
//!
//! How the detector decides: a 20 ms block belongs to a tone's frequencies when they hold
//! at least 60 % of the block's energy, total at least -42 dBm0, with at most 6 dB of twist
//! between the two of a dual tone (close pairs such as 440+480 Hz are unmixed first, and
//! must show their beat). Runs of such blocks make on/off segments (a one-block glitch is
//! ignored); each segment is matched against the cadences within ±15 % + 40 ms. A cadenced
//! tone is confirmed by whole cycles covering at least 1.2 s (busy: two cycles; ringback:
//! one); a continuous tone after 1 s, or just longer than the longest burst of a cadenced
//! tone on the same frequencies (so China's 1 s ringback burst is not dial tone); CED after
//! 0.6 s. A tone is reported again only after it has stopped: its cadence broke or it fell
//! silent.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::signal::Tone;

/// Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM (G.711: 3.14 dB below full scale).
const PEAK_0DBM0: f32 = 22_706.0;
/// Sample rate as f64 for oscillator arithmetic.
const RATE: f64 = crate::SAMPLE_RATE as f64;
/// Highest frequency a tone may have: the telephone band ends at 3.4 kHz.
const MAX_FREQ_HZ: f32 = 3_400.0;
/// Lowest frequency a tone may have.
const MIN_FREQ_HZ: f32 = 100.0;
/// Cadence elements shorter than this cannot be seen in 20 ms analysis blocks.
const MIN_ELEMENT_MS: u32 = 50;
/// Longest cadence element accepted.
const MAX_ELEMENT_MS: u32 = 60_000;
/// At most this many on/off elements in one cadence.
const MAX_ELEMENTS: usize = 8;

/// One tone: its frequencies, level and cadence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ToneSpecFields")]
pub struct ToneSpec {
    /// One frequency, or two sounded together, in Hz.
    pub freqs: Vec<f32>,
    /// Level of each frequency component in dBm0.
    pub level_dbm0: f32,
    /// Alternating on/off durations in ms, starting with on; empty means continuous.
    pub cadence: Vec<u32>,
}

/// The TOML form of a [`ToneSpec`], checked by `TryFrom` so a bad plan fails to load.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToneSpecFields {
    freqs: Vec<f32>,
    #[serde(default = "default_level")]
    level_dbm0: f32,
    #[serde(default)]
    cadence: Vec<u32>,
}

fn default_level() -> f32 {
    -10.0
}

impl TryFrom<ToneSpecFields> for ToneSpec {
    type Error = String;
    fn try_from(f: ToneSpecFields) -> std::result::Result<Self, String> {
        let spec = ToneSpec { freqs: f.freqs, level_dbm0: f.level_dbm0, cadence: f.cadence };
        spec.check()?;
        Ok(spec)
    }
}

impl ToneSpec {
    /// A continuous tone.
    pub fn continuous(freqs: &[f32], level_dbm0: f32) -> Self {
        ToneSpec { freqs: freqs.to_vec(), level_dbm0, cadence: Vec::new() }
    }

    /// A cadenced tone: `cadence` alternates on and off durations in ms, starting with on.
    pub fn cadenced(freqs: &[f32], level_dbm0: f32, cadence: &[u32]) -> Self {
        ToneSpec { freqs: freqs.to_vec(), level_dbm0, cadence: cadence.to_vec() }
    }

    /// Whether the tone sounds without interruption.
    pub fn is_continuous(&self) -> bool {
        self.cadence.is_empty()
    }

    /// Checks the spec; the message names the field at fault.
    fn check(&self) -> std::result::Result<(), String> {
        if self.freqs.is_empty() || self.freqs.len() > 2 {
            return Err(format!("freqs: expected 1 or 2 frequencies in Hz, got {}", self.freqs.len()));
        }
        for &f in &self.freqs {
            if !(MIN_FREQ_HZ..=MAX_FREQ_HZ).contains(&f) {
                return Err(format!(
                    "freqs: {f} Hz is outside the telephone band ({MIN_FREQ_HZ}..={MAX_FREQ_HZ} Hz)"
                ));
            }
        }
        if self.freqs.len() == 2 && (self.freqs[0] - self.freqs[1]).abs() < 30.0 {
            return Err(format!(
                "freqs: {} and {} Hz are too close to tell apart (at least 30 Hz)",
                self.freqs[0], self.freqs[1]
            ));
        }
        if !(-60.0..=3.0).contains(&self.level_dbm0) {
            return Err(format!("level_dbm0: {} is outside -60..=3 dBm0", self.level_dbm0));
        }
        if self.cadence.len() % 2 != 0 || self.cadence.len() > MAX_ELEMENTS {
            return Err(format!(
                "cadence: expected an even number (at most {MAX_ELEMENTS}) of on/off durations in ms, got {}",
                self.cadence.len()
            ));
        }
        for &d in &self.cadence {
            if !(MIN_ELEMENT_MS..=MAX_ELEMENT_MS).contains(&d) {
                return Err(format!("cadence: {d} ms is outside {MIN_ELEMENT_MS}..={MAX_ELEMENT_MS} ms"));
            }
        }
        Ok(())
    }
}

/// A network's call-progress tones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TonePlan {
    /// The plan's name, as chosen in configuration ("china", "itu", ...); "custom" when a
    /// plan written out in TOML gives none.
    #[serde(default = "custom_name")]
    pub name: String,
    pub dial: ToneSpec,
    pub busy: ToneSpec,
    pub ringback: ToneSpec,
    pub congestion: ToneSpec,
    pub call_waiting: ToneSpec,
}

fn custom_name() -> String {
    "custom".into()
}

impl Default for TonePlan {
    fn default() -> Self {
        TonePlan::china()
    }
}

impl TonePlan {
    /// Names [`TonePlan::by_name`] knows.
    pub const NAMES: [&'static str; 4] = ["china", "itu", "north_america", "uk"];

    /// China (YD/T and the former MPT plan): 450 Hz; dial continuous, busy 0.35/0.35 s,
    /// ringback 1/4 s, congestion 0.7/0.7 s, call waiting 0.4/4 s.
    pub fn china() -> Self {
        TonePlan {
            name: "china".into(),
            dial: ToneSpec::continuous(&[450.0], -10.0),
            busy: ToneSpec::cadenced(&[450.0], -10.0, &[350, 350]),
            ringback: ToneSpec::cadenced(&[450.0], -10.0, &[1000, 4000]),
            congestion: ToneSpec::cadenced(&[450.0], -10.0, &[700, 700]),
            call_waiting: ToneSpec::cadenced(&[450.0], -10.0, &[400, 4000]),
        }
    }

    /// The 425 Hz plan ITU-T Q.35 and E.180 recommend, with ETSI (ETR 187) cadences:
    /// dial continuous, busy 0.5/0.5 s, ringback 1/4 s, congestion 0.25/0.25 s, call
    /// waiting two 0.2 s bursts every 5 s.
    pub fn itu() -> Self {
        TonePlan {
            name: "itu".into(),
            dial: ToneSpec::continuous(&[425.0], -10.0),
            busy: ToneSpec::cadenced(&[425.0], -10.0, &[500, 500]),
            ringback: ToneSpec::cadenced(&[425.0], -10.0, &[1000, 4000]),
            congestion: ToneSpec::cadenced(&[425.0], -10.0, &[250, 250]),
            call_waiting: ToneSpec::cadenced(&[425.0], -10.0, &[200, 200, 200, 4400]),
        }
    }

    /// North America (the precise tone plan, ANSI T1.401): dial 350+440 Hz, busy 480+620
    /// 0.5/0.5 s, ringback 440+480 2/4 s, reorder 480+620 0.25/0.25 s, call waiting 440 Hz
    /// 0.3 s every 10 s.
    pub fn north_america() -> Self {
        TonePlan {
            name: "north_america".into(),
            dial: ToneSpec::continuous(&[350.0, 440.0], -13.0),
            busy: ToneSpec::cadenced(&[480.0, 620.0], -24.0, &[500, 500]),
            ringback: ToneSpec::cadenced(&[440.0, 480.0], -19.0, &[2000, 4000]),
            congestion: ToneSpec::cadenced(&[480.0, 620.0], -24.0, &[250, 250]),
            call_waiting: ToneSpec::cadenced(&[440.0], -13.0, &[300, 9700]),
        }
    }

    /// United Kingdom (BT SIN 350): dial 350+450 Hz, busy 400 Hz 0.375/0.375 s, ringback
    /// 400+450 Hz 0.4/0.2/0.4/2 s, congestion 400 Hz 0.4/0.35/0.225/0.525 s, call waiting
    /// 400 Hz 0.1/3 s.
    pub fn uk() -> Self {
        TonePlan {
            name: "uk".into(),
            dial: ToneSpec::continuous(&[350.0, 450.0], -13.0),
            busy: ToneSpec::cadenced(&[400.0], -13.0, &[375, 375]),
            ringback: ToneSpec::cadenced(&[400.0, 450.0], -13.0, &[400, 200, 400, 2000]),
            congestion: ToneSpec::cadenced(&[400.0], -13.0, &[400, 350, 225, 525]),
            call_waiting: ToneSpec::cadenced(&[400.0], -13.0, &[100, 3000]),
        }
    }

    /// A built-in plan by name (see [`TonePlan::NAMES`]; "etsi", "us" and "na" are accepted
    /// as aliases).
    pub fn by_name(name: &str) -> Result<TonePlan> {
        match name.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "china" | "cn" => Ok(TonePlan::china()),
            "itu" | "etsi" => Ok(TonePlan::itu()),
            "north_america" | "na" | "us" => Ok(TonePlan::north_america()),
            "uk" | "gb" => Ok(TonePlan::uk()),
            _ => Err(Error::new(
                ErrorKind::Config,
                format!("unknown tone plan `{name}`: known plans are {}", TonePlan::NAMES.join(", ")),
            )),
        }
    }

    /// A plan from TOML text: `name = "..."` and one table per tone (`[dial]`, `[busy]`,
    /// `[ringback]`, `[congestion]`, `[call_waiting]`) with `freqs`, `level_dbm0` and
    /// `cadence` (ms, on first; omitted for a continuous tone).
    pub fn from_toml(text: &str) -> Result<TonePlan> {
        let plan: TonePlan = toml::from_str(text)
            .map_err(|e| Error::new(ErrorKind::Config, format!("tone plan: {}", e.to_string().trim_end())))?;
        Ok(plan)
    }

    /// A plan from a TOML table already read (say `[card.tone_plan]` of the installation
    /// file); the message names the field at fault.
    pub fn from_table(table: &toml::Table) -> Result<TonePlan> {
        TonePlan::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
            let message = e.to_string().trim_end().replace('\n', " ");
            Error::new(ErrorKind::Config, format!("tone plan: {message}"))
        })
    }

    /// The plan as TOML text, in the form [`TonePlan::from_toml`] reads.
    pub fn to_toml(&self) -> String {
        // Serializing plain structs of numbers and strings cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks a plan built in code; plans read with serde are checked as they are read.
    pub fn validate(&self) -> Result<()> {
        for (field, spec) in [
            ("dial", &self.dial),
            ("busy", &self.busy),
            ("ringback", &self.ringback),
            ("congestion", &self.congestion),
            ("call_waiting", &self.call_waiting),
        ] {
            spec.check().map_err(|m| {
                Error::new(ErrorKind::Config, format!("tone plan `{}`: {field}.{m}", self.name))
            })?;
        }
        Ok(())
    }

    /// The spec of a tone in this plan; fax tones are the same everywhere: CNG 1100 Hz
    /// 0.5 s on / 3 s off (T.30), CED 2100 Hz continuous (T.30, V.25).
    pub fn spec(&self, tone: Tone) -> ToneSpec {
        match tone {
            Tone::Dial => self.dial.clone(),
            Tone::Busy => self.busy.clone(),
            Tone::Ringback => self.ringback.clone(),
            Tone::Congestion => self.congestion.clone(),
            Tone::CallWaiting => self.call_waiting.clone(),
            Tone::FaxCng => ToneSpec::cadenced(&[1100.0], -10.0, &[500, 3000]),
            Tone::FaxCed => ToneSpec::continuous(&[2100.0], -10.0),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Generator

/// A sine oscillator as a unit phasor rotated once per sample: exact phase continuity
/// across calls, and no `sin` per sample.
#[derive(Clone, Copy, Debug)]
struct Phasor {
    re: f64,
    im: f64,
    step_re: f64,
    step_im: f64,
}

impl Phasor {
    fn new(freq_hz: f64) -> Self {
        let w = std::f64::consts::TAU * freq_hz / RATE;
        Phasor { re: 1.0, im: 0.0, step_re: w.cos(), step_im: w.sin() }
    }
    #[inline]
    fn advance(&mut self) {
        let re = self.re * self.step_re - self.im * self.step_im;
        self.im = self.re * self.step_im + self.im * self.step_re;
        self.re = re;
    }
    /// Pulls the phasor back onto the unit circle (rounding drifts it very slowly).
    fn renormalize(&mut self) {
        let m = (self.re * self.re + self.im * self.im).sqrt();
        if m > 0.0 {
            self.re /= m;
            self.im /= m;
        }
    }
}

/// Samples of the on/off ramp: 2 ms keeps tone edges from clicking.
const RAMP: u32 = 16;

/// Plays one tone forever, following its cadence, with continuous phase across calls.
#[derive(Clone, Debug)]
pub struct ToneGenerator {
    phasors: [Phasor; 2],
    count: usize,
    amplitude: f64,
    /// Cadence in samples, on first; empty = continuous.
    cadence: Vec<u32>,
    element: usize,
    position: u32,
}

impl ToneGenerator {
    /// A generator for `spec`. Frequencies beyond the first two are ignored; an odd
    /// cadence is played twice over so that on and off keep alternating.
    pub fn new(spec: &ToneSpec) -> Self {
        let count = spec.freqs.len().min(2);
        let mut phasors = [Phasor::new(0.0); 2];
        for (p, &f) in phasors.iter_mut().zip(&spec.freqs) {
            *p = Phasor::new(f as f64);
        }
        let mut cadence: Vec<u32> =
            spec.cadence.iter().map(|&ms| ms.saturating_mul(crate::SAMPLE_RATE / 1000)).collect();
        if cadence.len() % 2 == 1 {
            cadence.extend_from_within(..);
        }
        // A cadence with no time in it would never advance: play continuously instead.
        if cadence.iter().all(|&d| d == 0) {
            cadence.clear();
        }
        ToneGenerator {
            phasors,
            count,
            amplitude: (PEAK_0DBM0 as f64) * 10f64.powf(spec.level_dbm0 as f64 / 20.0),
            cadence,
            element: 0,
            position: 0,
        }
    }

    /// A generator for `tone` as `plan` defines it.
    pub fn for_tone(plan: &TonePlan, tone: Tone) -> Self {
        ToneGenerator::new(&plan.spec(tone))
    }

    /// Fills `out` with the next samples of the tone.
    pub fn fill(&mut self, out: &mut [i16]) {
        for sample in out.iter_mut() {
            let gain = self.gain();
            let mut v = 0.0;
            for p in &mut self.phasors[..self.count] {
                v += p.im;
                p.advance();
            }
            *sample = (v * self.amplitude * gain).round().clamp(-32768.0, 32767.0) as i16;
        }
        for p in &mut self.phasors[..self.count] {
            p.renormalize();
        }
    }

    /// The envelope for the current sample, then one step along the cadence.
    #[inline]
    fn gain(&mut self) -> f64 {
        if self.cadence.is_empty() {
            return 1.0;
        }
        while self.position >= self.cadence[self.element] {
            self.position = 0;
            self.element = (self.element + 1) % self.cadence.len();
        }
        let len = self.cadence[self.element];
        let pos = self.position;
        self.position += 1;
        if self.element % 2 == 1 {
            return 0.0;
        }
        let edge = (pos + 1).min(len - pos).min(RAMP);
        edge as f64 / RAMP as f64
    }
}

// ---------------------------------------------------------------------------------------
// Detector

/// A tone recognised by [`ToneDetector`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ToneEvent {
    pub tone: Tone,
    /// Index (from the detector's start or last reset) of the sample just after the block in
    /// which the tone was recognised.
    pub at: u64,
}

/// Samples per analysis block: 20 ms, so that 50 Hz apart is one Goertzel bin apart.
const BLOCK: usize = crate::FRAME_SAMPLES;
const BLOCK_MS: u32 = (BLOCK as u32 * 1000) / crate::SAMPLE_RATE;
/// The block is run as this many independent Goertzel segments in lockstep, combined
/// afterwards: it breaks the filter's serial dependency so the CPU can overlap them.
const SEGMENTS: usize = 4;
const SEG_LEN: usize = BLOCK / SEGMENTS;
/// Frequencies from which a lane uses half-block resolution.
const WIDE_FROM_HZ: f32 = 1_000.0;
/// Filters per bank: five plan tones of two frequencies plus CNG and CED.
const MAX_FREQS: usize = 12;
/// Dual tones closer than this are unmixed (see [`Unmix`]).
const UNMIX_WITHIN_HZ: f32 = 200.0;
/// Within one block a single tone halfway between two close ones (460 Hz between 440 and
/// 480) fits the pair's filters as well as the pair does; what tells them apart is the
/// pair's beat, a deep dip in the envelope. Pairs this close must show one...
const BEAT_WITHIN_HZ: f32 = 75.0;
/// ...with the quietest 5 ms segment at most this fraction of the loudest (a pair with
/// 6 dB of twist dips to about 0.1; a steady tone stays near 1).
const BEAT_DEPTH: f32 = 0.5;
/// Filters run together (one SSE vector).
const LANES: usize = 4;
/// A tone's share of the block energy for the block to count as that tone.
const PURITY: f32 = 0.6;
/// The weaker component of a dual tone must be at least this fraction of the stronger
/// (6 dB of twist). It also keeps a single tone slightly off frequency (440 Hz + 1.5 %)
/// from passing as a dual one whose other filter catches its leakage (440+480 Hz).
const MIN_TWIST_RATIO: f32 = 0.25;
/// Weakest tone detected, total over its components.
const MIN_LEVEL_DBM0: f32 = -42.0;
/// Blocks a change must persist before it counts: one-block glitches from noise are ignored.
const DEBOUNCE: u32 = 2;
/// Cadence tolerance: relative, plus the slack of block quantisation and debouncing.
const CADENCE_TOLERANCE: f32 = 0.15;
const CADENCE_SLACK_MS: u32 = 2 * BLOCK_MS;
/// A cadenced tone is confirmed over at least this much time (whole cycles).
const MIN_CONFIRM_MS: u32 = 1_200;
/// A continuous tone is recognised after this long (and after the longest "on" of any
/// cadenced tone on the same frequencies, so ringback's 1 s burst is not dial tone).
const CONTINUOUS_MS: u32 = 1_000;
/// CED is recognised sooner: it lasts only 2.6 to 4 s.
const CED_MS: u32 = 600;
/// Completed on/off segments remembered per frequency set.
const HISTORY: usize = 16;

/// Energy over one block of a sine at `dbm0` (sum of squares of the samples).
fn block_energy(dbm0: f32) -> f32 {
    BLOCK as f32 * PEAK_0DBM0 * PEAK_0DBM0 / 2.0 * 10f32.powf(dbm0 / 10.0)
}

/// The Goertzel filters: one lane per frequency, run in SEGMENTS segments.
#[derive(Clone, Debug)]
struct GoertzelBank {
    count: usize,
    /// 2 cos w.
    coef: [f32; MAX_FREQS],
    cos: [f32; MAX_FREQS],
    sin: [f32; MAX_FREQS],
    /// Lanes at 1 kHz and above are analysed as two half blocks (100 Hz bins) summed,
    /// so that 1.5 % off frequency (31 Hz at 2100 Hz) stays inside the main lobe.
    wide: [bool; MAX_FREQS],
    /// e^{-jw(N-1)}: turns a block result into Σ x[n] e^{-jwn}, the form unmixing wants.
    back_re: [f32; MAX_FREQS],
    back_im: [f32; MAX_FREQS],
    /// Rotation bringing a segment's result to the block's phase reference.
    rot_re: [[f32; MAX_FREQS]; SEGMENTS],
    rot_im: [[f32; MAX_FREQS]; SEGMENTS],
}

impl GoertzelBank {
    fn new(freqs: &[f32]) -> Self {
        let mut bank = GoertzelBank {
            count: freqs.len(),
            coef: [0.0; MAX_FREQS],
            cos: [0.0; MAX_FREQS],
            sin: [0.0; MAX_FREQS],
            wide: [false; MAX_FREQS],
            back_re: [0.0; MAX_FREQS],
            back_im: [0.0; MAX_FREQS],
            rot_re: [[0.0; MAX_FREQS]; SEGMENTS],
            rot_im: [[0.0; MAX_FREQS]; SEGMENTS],
        };
        for (k, &f) in freqs.iter().enumerate() {
            let w = std::f64::consts::TAU * f as f64 / RATE;
            bank.coef[k] = (2.0 * w.cos()) as f32;
            bank.cos[k] = w.cos() as f32;
            bank.sin[k] = w.sin() as f32;
            bank.wide[k] = f >= WIDE_FROM_HZ;
            let back = w * (BLOCK - 1) as f64;
            bank.back_re[k] = back.cos() as f32;
            bank.back_im[k] = -back.sin() as f32;
            for s in 0..SEGMENTS {
                let a = w * (SEG_LEN * (SEGMENTS - 1 - s)) as f64;
                bank.rot_re[s][k] = a.cos() as f32;
                bank.rot_im[s][k] = a.sin() as f32;
            }
        }
        bank
    }

    /// Energy at each frequency over the block, scaled so that a sine at the filter's
    /// frequency yields its own block energy (2|X|²/N).
    fn energies(&self, x: &[f32; BLOCK], out: &mut Spectrum) {
        // Four lanes at a time: their state (4 segments x 2 x 4 lanes) fits in registers,
        // which measured faster than running eight lanes at once.
        for first in (0..self.count).step_by(LANES) {
            self.run(first, x, out);
        }
    }

    #[inline]
    fn run(&self, first: usize, x: &[f32; BLOCK], out: &mut Spectrum) {
        let mut coef = [0f32; LANES];
        coef.copy_from_slice(&self.coef[first..first + LANES]);
        let mut s1 = [[0f32; LANES]; SEGMENTS];
        let mut s2 = [[0f32; LANES]; SEGMENTS];
        for i in 0..SEG_LEN {
            for s in 0..SEGMENTS {
                let xv = x[s * SEG_LEN + i];
                for k in 0..LANES {
                    let s0 = xv - s2[s][k] + coef[k] * s1[s][k];
                    s2[s][k] = s1[s][k];
                    s1[s][k] = s0;
                }
            }
        }
        for j in 0..LANES.min(self.count - first) {
            let k = first + j;
            // Coherent sums over `group` segments, then energies of the groups added.
            let group = if self.wide[k] { SEGMENTS / 2 } else { SEGMENTS };
            let mut total = 0f32;
            for g in (0..SEGMENTS).step_by(group) {
                let (mut re, mut im) = (0f32, 0f32);
                for s in g..g + group {
                    // y = s1 - e^{-jw} s2 = Σ x[n] e^{jw(SEG_LEN-1-n)} over the segment.
                    let yr = s1[s][j] - self.cos[k] * s2[s][j];
                    let yi = self.sin[k] * s2[s][j];
                    let r = SEGMENTS - group + s - g;
                    re += self.rot_re[r][k] * yr - self.rot_im[r][k] * yi;
                    im += self.rot_re[r][k] * yi + self.rot_im[r][k] * yr;
                }
                total += (re * re + im * im) * (2.0 / (group * SEG_LEN) as f32);
                if group == SEGMENTS {
                    out.re[k] = re * self.back_re[k] - im * self.back_im[k];
                    out.im[k] = re * self.back_im[k] + im * self.back_re[k];
                }
            }
            out.energy[k] = total;
        }
    }
}

/// What the filter bank found in one block.
#[derive(Clone, Debug, Default)]
struct Spectrum {
    /// Energy at each frequency (a sine there yields its own block energy).
    energy: [f32; MAX_FREQS],
    /// Σ x[n] e^{-jwn} over the block, for full-block lanes.
    re: [f32; MAX_FREQS],
    im: [f32; MAX_FREQS],
}

/// Separates two frequencies closer than a few bins (440+480 Hz are 0.8 bin apart), whose
/// filters each catch much of the other: without it, twist between them or the beat of
/// the pair makes the weaker look absent. Models the block as c1 e^{jw1 n} + c2 e^{jw2 n}:
/// Z1 = N c1 + D c2, Z2 = D* c1 + N c2, with D = Σ e^{j(w2-w1)n}, and solves for c1, c2.
#[derive(Copy, Clone, Debug)]
struct Unmix {
    d_re: f32,
    d_im: f32,
    inv_det: f32,
}

impl Unmix {
    /// For two full-block lanes at `f1` and `f2` Hz, when they are close enough to need it.
    fn new(f1: f32, f2: f32) -> Option<Unmix> {
        if f1 >= WIDE_FROM_HZ || f2 >= WIDE_FROM_HZ || (f1 - f2).abs() > UNMIX_WITHIN_HZ {
            return None;
        }
        let d = std::f64::consts::TAU * (f2 - f1) as f64 / RATE;
        let (mut d_re, mut d_im) = (0f64, 0f64);
        for n in 0..BLOCK {
            d_re += (d * n as f64).cos();
            d_im += (d * n as f64).sin();
        }
        let n = BLOCK as f64;
        let det = n * n - (d_re * d_re + d_im * d_im);
        Some(Unmix { d_re: d_re as f32, d_im: d_im as f32, inv_det: (1.0 / det) as f32 })
    }

    /// The two components' energies, each as if heard alone.
    fn energies(&self, s: &Spectrum, a: usize, b: usize) -> (f32, f32) {
        let n = BLOCK as f32;
        let (z1r, z1i, z2r, z2i) = (s.re[a], s.im[a], s.re[b], s.im[b]);
        // c1 = (N Z1 - D Z2) / det, c2 = (N Z2 - D* Z1) / det.
        let c1r = (n * z1r - (self.d_re * z2r - self.d_im * z2i)) * self.inv_det;
        let c1i = (n * z1i - (self.d_re * z2i + self.d_im * z2r)) * self.inv_det;
        let c2r = (n * z2r - (self.d_re * z1r + self.d_im * z1i)) * self.inv_det;
        let c2i = (n * z2i - (self.d_re * z1i - self.d_im * z1r)) * self.inv_det;
        // A sine of amplitude A has |c| = A/2 and block energy A²N/2 = 2N|c|².
        (2.0 * n * (c1r * c1r + c1i * c1i), 2.0 * n * (c2r * c2r + c2i * c2i))
    }
}

/// Sum of squares of each segment, with independent accumulators so it vectorises.
fn segment_energies(x: &[f32; BLOCK]) -> [f32; SEGMENTS] {
    let mut out = [0f32; SEGMENTS];
    for (e, segment) in out.iter_mut().zip(x.chunks_exact(SEG_LEN)) {
        let mut acc = [0f32; 8];
        for chunk in segment.chunks_exact(8) {
            for (a, &v) in acc.iter_mut().zip(chunk) {
                *a += v * v;
            }
        }
        *e = acc.iter().sum();
    }
    out
}

/// An on or off interval of one frequency set, in blocks; `None` when it began before the
/// detector could see its start.
#[derive(Copy, Clone, Debug, Default)]
struct Segment {
    on: bool,
    blocks: Option<u32>,
}

/// How one tone is recognised from its frequency set's on/off segments.
#[derive(Clone, Debug)]
struct Rule {
    tone: Tone,
    /// Accepted duration window (ms) of each cadence element, on first; empty = continuous.
    windows: Vec<(u32, u32)>,
    /// Completed segments that must match before the tone is reported.
    needed: usize,
    /// Longest on and off element accepted (ms): beyond it the tone has stopped.
    max_on: u32,
    max_off: u32,
    /// For a continuous tone: how long it must last (ms).
    min_continuous: u32,
}

impl Rule {
    fn new(tone: Tone, cadence: &[u32]) -> Self {
        let mut cadence = cadence.to_vec();
        if cadence.len() % 2 == 1 {
            cadence.extend_from_within(..);
        }
        let windows: Vec<(u32, u32)> = cadence
            .iter()
            .map(|&d| {
                let lo = (d as f32 * (1.0 - CADENCE_TOLERANCE)) as u32;
                let hi = (d as f32 * (1.0 + CADENCE_TOLERANCE)).ceil() as u32;
                (lo.saturating_sub(CADENCE_SLACK_MS), hi + CADENCE_SLACK_MS)
            })
            .collect();
        let period: u32 = cadence.iter().sum();
        let cycles = if period == 0 { 1 } else { MIN_CONFIRM_MS.div_ceil(period).max(1) };
        let needed = (cadence.len() * cycles as usize).min(HISTORY);
        let max_of = |parity: usize| windows.iter().skip(parity).step_by(2).map(|w| w.1).max().unwrap_or(0);
        Rule {
            tone,
            max_on: max_of(0),
            max_off: max_of(1),
            windows,
            needed,
            min_continuous: if tone == Tone::FaxCed { CED_MS } else { CONTINUOUS_MS },
        }
    }

    fn is_continuous(&self) -> bool {
        self.windows.is_empty()
    }

    /// Whether the last `count` segments of `history` follow this cadence, in some phase.
    fn matches(&self, history: &History, count: usize) -> bool {
        let m = self.windows.len();
        if m == 0 || count == 0 || history.len < count {
            return false;
        }
        (0..m).any(|phase| {
            (0..count).all(|i| {
                let seg = history.get(history.len - count + i);
                let el = (phase + i) % m;
                let Some(blocks) = seg.blocks else { return false };
                let ms = blocks * BLOCK_MS;
                seg.on == (el % 2 == 0) && (self.windows[el].0..=self.windows[el].1).contains(&ms)
            })
        })
    }
}

/// The most recent completed segments, oldest first.
#[derive(Clone, Debug, Default)]
struct History {
    segs: [Segment; HISTORY],
    len: usize,
}

impl History {
    fn push(&mut self, seg: Segment) {
        if self.len == HISTORY {
            self.segs.copy_within(1.., 0);
            self.len -= 1;
        }
        self.segs[self.len] = seg;
        self.len += 1;
    }
    fn get(&self, i: usize) -> Segment {
        self.segs[i]
    }
}

/// One set of frequencies heard together (e.g. 450 Hz, or 480+620 Hz), the tones sounded
/// on it, and its on/off tracking.
#[derive(Clone, Debug)]
struct FreqSet {
    /// Lanes of the Goertzel bank.
    lanes: [usize; 2],
    count: usize,
    unmix: Option<Unmix>,
    /// A pair this close beats slower than a block: its envelope must be seen to beat.
    beats: bool,
    rules: Vec<Rule>,
    /// The continuous tone on this set, if any, and when to recognise it (ms).
    continuous: Option<(usize, u32)>,
    // Tracking.
    on: bool,
    /// Consecutive blocks that disagree with `on`.
    pending: u32,
    /// Block at which the current segment began.
    start: u64,
    /// Whether the current segment's start was seen.
    start_seen: bool,
    history: History,
    /// The rule last reported and not yet stopped.
    active: Option<usize>,
}

impl FreqSet {
    fn reset(&mut self) {
        self.on = false;
        self.pending = 0;
        self.start = 0;
        self.start_seen = false;
        self.history = History::default();
        self.active = None;
    }

    /// Takes this set's verdict for block `block` and reports what it recognises.
    fn update(&mut self, block: u64, present: bool, at: u64, out: &mut Vec<ToneEvent>) {
        if present == self.on {
            self.pending = 0;
        } else {
            self.pending += 1;
            if self.pending >= DEBOUNCE {
                let turn = block + 1 - self.pending as u64;
                let blocks = (turn - self.start) as u32;
                self.history.push(Segment { on: self.on, blocks: self.start_seen.then_some(blocks) });
                self.on = present;
                self.start = turn;
                // A segment under way when the detector started may have begun earlier.
                self.start_seen = turn > 0;
                self.pending = 0;
                self.segment_completed(at, out);
            }
        }
        let ongoing_ms = ((block + 1 - self.start) as u32).saturating_mul(BLOCK_MS);
        if let Some(r) = self.active {
            let rule = &self.rules[r];
            if !rule.is_continuous() {
                let limit = if self.on { rule.max_on } else { rule.max_off };
                if ongoing_ms > limit {
                    self.active = None;
                }
            }
        }
        if self.active.is_none() && self.on {
            if let Some((r, min_ms)) = self.continuous {
                if ongoing_ms >= min_ms {
                    self.active = Some(r);
                    out.push(ToneEvent { tone: self.rules[r].tone, at });
                }
            }
        }
    }

    fn segment_completed(&mut self, at: u64, out: &mut Vec<ToneEvent>) {
        if let Some(r) = self.active {
            let rule = &self.rules[r];
            let still = !rule.is_continuous() && rule.matches(&self.history, rule.windows.len());
            if !still {
                self.active = None;
            }
        }
        if self.active.is_none() {
            if let Some(r) = self.rules.iter().position(|rule| rule.matches(&self.history, rule.needed)) {
                self.active = Some(r);
                out.push(ToneEvent { tone: self.rules[r].tone, at });
            }
        }
    }
}

/// Recognises the tones of a plan, plus fax CNG and CED, in a stream of 8 kHz samples.
#[derive(Clone, Debug)]
pub struct ToneDetector {
    bank: GoertzelBank,
    sets: Vec<FreqSet>,
    /// Block energy of the weakest tone detected.
    min_energy: f32,
    spectrum: Spectrum,
    buf: [f32; BLOCK],
    filled: usize,
    /// Blocks analysed since the start or the last reset.
    blocks: u64,
}

impl ToneDetector {
    /// A detector for `plan`'s tones and the fax tones. Tones with no usable frequency
    /// (a plan built in code that [`TonePlan::validate`] would reject) are left out. When
    /// two tones sound the same (same frequencies and cadence), the first in
    /// [`Tone::ALL`] order is reported.
    pub fn new(plan: &TonePlan) -> Self {
        let mut freqs: Vec<f32> = Vec::new();
        let mut sets: Vec<FreqSet> = Vec::new();
        for tone in Tone::ALL {
            let spec = plan.spec(tone);
            let usable: Vec<f32> = spec
                .freqs
                .iter()
                .copied()
                .filter(|f| (MIN_FREQ_HZ..=MAX_FREQ_HZ).contains(f))
                .take(2)
                .collect();
            if usable.is_empty() {
                continue;
            }
            let mut lanes = [0usize; 2];
            for (lane, &f) in lanes.iter_mut().zip(&usable) {
                *lane = match freqs.iter().position(|&g| (g - f).abs() < 0.05) {
                    Some(i) => i,
                    // At most 5 plan tones x 2 + CNG + CED = MAX_FREQS distinct frequencies.
                    None => {
                        freqs.push(f);
                        freqs.len() - 1
                    }
                };
            }
            let count = usable.len();
            if count == 2 && lanes[0] > lanes[1] {
                lanes.swap(0, 1);
            }
            let set = match sets.iter().position(|s| s.count == count && s.lanes == lanes) {
                Some(i) => i,
                None => {
                    sets.push(FreqSet {
                        lanes,
                        count,
                        unmix: if count == 2 { Unmix::new(freqs[lanes[0]], freqs[lanes[1]]) } else { None },
                        beats: count == 2 && (freqs[lanes[0]] - freqs[lanes[1]]).abs() <= BEAT_WITHIN_HZ,
                        rules: Vec::new(),
                        continuous: None,
                        on: false,
                        pending: 0,
                        start: 0,
                        start_seen: false,
                        history: History::default(),
                        active: None,
                    });
                    sets.len() - 1
                }
            };
            let cadence: Vec<u32> = spec.cadence.iter().copied().take(MAX_ELEMENTS).collect();
            let cadence = if cadence.iter().all(|&d| d == 0) { Vec::new() } else { cadence };
            sets[set].rules.push(Rule::new(tone, &cadence));
        }
        for set in &mut sets {
            let longest_on = set.rules.iter().map(|r| r.max_on).max().unwrap_or(0);
            set.continuous = set.rules.iter().position(Rule::is_continuous).map(|r| {
                let min = set.rules[r].min_continuous.max(longest_on + 2 * BLOCK_MS);
                (r, min)
            });
        }
        ToneDetector {
            bank: GoertzelBank::new(&freqs),
            sets,
            min_energy: block_energy(MIN_LEVEL_DBM0),
            spectrum: Spectrum::default(),
            buf: [0.0; BLOCK],
            filled: 0,
            blocks: 0,
        }
    }

    /// Forgets everything heard: back to the state of a new detector.
    pub fn reset(&mut self) {
        self.filled = 0;
        self.blocks = 0;
        for set in &mut self.sets {
            set.reset();
        }
    }

    /// Analyses `samples` (any length; the stream continues across calls) and appends each
    /// tone recognised to `out`.
    pub fn process(&mut self, samples: &[i16], out: &mut Vec<ToneEvent>) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (BLOCK - self.filled).min(rest.len());
            for (d, &s) in self.buf[self.filled..self.filled + take].iter_mut().zip(&rest[..take]) {
                *d = s as f32;
            }
            self.filled += take;
            rest = &rest[take..];
            if self.filled == BLOCK {
                self.filled = 0;
                self.analyse_block(out);
            }
        }
    }

    fn analyse_block(&mut self, out: &mut Vec<ToneEvent>) {
        let segments = segment_energies(&self.buf);
        let total: f32 = segments.iter().sum();
        let (quietest, loudest) =
            segments.iter().fold((f32::MAX, 0f32), |(lo, hi), &e| (lo.min(e), hi.max(e)));
        let beating = quietest <= BEAT_DEPTH * loudest;
        let spectrum = &mut self.spectrum;
        // Each filter's energy is at most twice the block's (Cauchy-Schwarz) and unmixing
        // the closest pair allowed (30 Hz) multiplies that by at most about 4 per
        // component, so a block 15 dB below the weakest tone cannot hold one.
        let loud = total * 32.0 >= self.min_energy;
        if loud {
            self.bank.energies(&self.buf, spectrum);
        }
        // The block belongs to the purest set that passes; every other set hears silence.
        let mut best: Option<usize> = None;
        let mut best_energy = 0f32;
        for (i, set) in self.sets.iter().enumerate() {
            if !loud {
                break;
            }
            let e = &spectrum.energy;
            let (sum, twist_ok) = match (set.count, set.unmix) {
                (1, _) => (e[set.lanes[0]], true),
                (_, unmix) => {
                    let (a, b) = match unmix {
                        Some(u) => u.energies(spectrum, set.lanes[0], set.lanes[1]),
                        None => (e[set.lanes[0]], e[set.lanes[1]]),
                    };
                    (a + b, a.min(b) >= MIN_TWIST_RATIO * a.max(b))
                }
            };
            let present =
                sum >= self.min_energy && sum >= PURITY * total && twist_ok && (!set.beats || beating);
            if present && sum > best_energy {
                best = Some(i);
                best_energy = sum;
            }
        }
        let block = self.blocks;
        self.blocks += 1;
        let at = self.blocks * BLOCK as u64;
        for (i, set) in self.sets.iter_mut().enumerate() {
            set.update(block, best == Some(i), at, out);
        }
    }
}
