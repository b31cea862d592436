//! DTMF (dual-tone multi-frequency) signalling on 8 kHz audio: the generator a card uses
//! to dial and to send DTMF caller ID, and the detector that finds the digits callers
//! press in received audio.
//!
//! Tone pairs are those of ITU-T Q.23 (a low-group row tone plus a high-group column
//! tone). The detector is built to the limits of ITU-T Q.24 as switches test them:
//! accept frequency errors up to ±1.5% and reject ±3.5%, accept 8 dB normal twist (low
//! group louder) and 4 dB reverse twist, detect over more than 35 dB of level, detect
//! 40 ms tones separated by 40 ms pauses and ignore bursts shorter than 20 ms.
//!
//! The detector runs one f32 Goertzel filter per DTMF frequency over blocks of
//! [`BLOCK_SAMPLES`] samples (12.75 ms), cheap enough for thousands of channels per core.
//! A block is a candidate when one tone per group stands out, the pair carries most of
//! the block's energy and both halves of the block hold the tone (so a tone that fills
//! only part of a block, as a short burst does, is not a candidate). A digit is confirmed
//! by two consecutive candidate blocks whose phase advance gives each tone's frequency
//! precisely; level and twist are then judged over the two blocks together (25.5 ms),
//! where the other group's tone leaks little. A digit ends after two blocks without it
//! and is reported once, when it ends.

use crate::{Error, ErrorKind};

/// Low-group (row) frequencies in Hz, ITU-T Q.23.
pub const LOW_GROUP_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group (column) frequencies in Hz, ITU-T Q.23.
pub const HIGH_GROUP_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// The keypad: row = low-group tone, column = high-group tone.
const KEYPAD: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

/// Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM (G.711: 3.14 dB below full scale).
const DBM0_PEAK: f32 = 22_706.0;

/// Whether `c` is one of the 16 DTMF keys: `0`-`9`, `*`, `#`, `A`-`D`.
pub fn is_dtmf_digit(c: char) -> bool {
    digit_frequencies(c).is_some()
}

/// The (low, high) tone frequencies in Hz of a DTMF key, or `None` if `c` is not one.
pub fn digit_frequencies(c: char) -> Option<(f32, f32)> {
    let (row, col) = key_position(c)?;
    Some((LOW_GROUP_HZ[row], HIGH_GROUP_HZ[col]))
}

fn key_position(c: char) -> Option<(usize, usize)> {
    KEYPAD.iter().enumerate().find_map(|(row, keys)| keys.iter().position(|&k| k == c).map(|col| (row, col)))
}

/// Timing and levels of generated DTMF.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DtmfParams {
    /// Tone duration of each digit, in milliseconds (at least 1).
    pub on_ms: u32,
    /// Silence after each digit, in milliseconds.
    pub off_ms: u32,
    /// Level of the low-group tone in dBm0.
    pub low_dbm0: f32,
    /// Level of the high-group tone in dBm0.
    pub high_dbm0: f32,
}

impl Default for DtmfParams {
    /// 100 ms tone, 100 ms pause; -7 dBm0 low and -5 dBm0 high, the usual 2 dB of
    /// pre-emphasis on the high group that compensates for line loss.
    fn default() -> Self {
        DtmfParams { on_ms: 100, off_ms: 100, low_dbm0: -7.0, high_dbm0: -5.0 }
    }
}

/// Highest accepted tone level: a +3 dBm0 sine is the loudest G.711 carries unclipped.
const MAX_TONE_DBM0: f32 = 3.0;

/// Generates the DTMF for a string of digits as 8 kHz linear PCM: for each digit a tone
/// of `on_ms` followed by `off_ms` of silence (after the last digit too).
#[derive(Debug, Clone)]
pub struct DtmfGenerator {
    /// Per digit, the phase increments (radians per sample) of its low and high tones.
    steps: Vec<(f64, f64)>,
    amp_low: f64,
    amp_high: f64,
    on_samples: u64,
    period_samples: u64,
    digit: usize,
    pos: u64,
}

impl DtmfGenerator {
    /// A generator for `digits` (`0`-`9`, `*`, `#`, `A`-`D`). Any other character, a zero
    /// `on_ms` or a level that is not a number at most +3 dBm0 is an error saying which.
    pub fn new(digits: &str, params: DtmfParams) -> Result<Self, Error> {
        let mut steps = Vec::with_capacity(digits.len());
        for (position, c) in digits.chars().enumerate() {
            let Some((low, high)) = digit_frequencies(c) else {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "DTMF digits {digits:?}: character {c:?} at position {} is not a DTMF \
                         digit (expected 0-9, *, #, A-D)",
                        position + 1
                    ),
                ));
            };
            steps.push((step(low), step(high)));
        }
        if params.on_ms == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "DTMF on_ms is 0: a digit needs a tone of at least 1 ms",
            ));
        }
        for (name, level) in [("low_dbm0", params.low_dbm0), ("high_dbm0", params.high_dbm0)] {
            if level.is_nan() || level > MAX_TONE_DBM0 {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "DTMF {name} is {level}: expected a level in dBm0 no higher than +{MAX_TONE_DBM0}"
                    ),
                ));
            }
        }
        let per_ms = u64::from(crate::SAMPLE_RATE / 1000);
        let on_samples = u64::from(params.on_ms) * per_ms;
        Ok(DtmfGenerator {
            steps,
            amp_low: dbm0_to_peak(params.low_dbm0),
            amp_high: dbm0_to_peak(params.high_dbm0),
            on_samples,
            period_samples: on_samples + u64::from(params.off_ms) * per_ms,
            digit: 0,
            pos: 0,
        })
    }

    /// The whole signal for `digits` at once.
    pub fn generate(digits: &str, params: DtmfParams) -> Result<Vec<i16>, Error> {
        let mut generator = DtmfGenerator::new(digits, params)?;
        let mut out = vec![0; generator.total_samples() as usize];
        let written = generator.fill(&mut out);
        debug_assert_eq!(written, out.len());
        Ok(out)
    }

    /// Samples in the whole signal.
    pub fn total_samples(&self) -> u64 {
        self.steps.len() as u64 * self.period_samples
    }

    /// Writes the next samples into `out`, returning how many (fewer than `out.len()` only
    /// at the end; 0 once done).
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut written = 0;
        while written < out.len() && self.digit < self.steps.len() {
            let (low, high) = self.steps[self.digit];
            let run = ((self.period_samples - self.pos) as usize).min(out.len() - written);
            for slot in &mut out[written..written + run] {
                *slot = if self.pos < self.on_samples {
                    // Each digit starts both tones at phase 0; phase from the sample index
                    // keeps long tones exact.
                    let n = self.pos as f64;
                    let v = self.amp_low * (low * n).sin() + self.amp_high * (high * n).sin();
                    v.round().clamp(i16::MIN as f64, i16::MAX as f64) as i16
                } else {
                    0
                };
                self.pos += 1;
            }
            written += run;
            if self.pos == self.period_samples {
                self.pos = 0;
                self.digit += 1;
            }
        }
        written
    }

    /// Whether every sample has been written.
    pub fn is_done(&self) -> bool {
        self.digit >= self.steps.len()
    }
}

fn step(hz: f32) -> f64 {
    2.0 * std::f64::consts::PI * f64::from(hz) / f64::from(crate::SAMPLE_RATE)
}

fn dbm0_to_peak(dbm0: f32) -> f64 {
    f64::from(DBM0_PEAK) * 10f64.powf(f64::from(dbm0) / 20.0)
}

/// A digit found by [`DtmfDetector`], in sample indexes counted from the detector's start
/// (or last [`reset`](DtmfDetector::reset)): the tone covers `start..end`, each edge
/// estimated to within a few milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitEvent {
    pub digit: char,
    /// First sample of the tone.
    pub start: u64,
    /// One past the last sample of the tone.
    pub end: u64,
}

/// Samples per analysis block: 12.75 ms, the usual choice that separates the adjacent
/// low-group tones (73 Hz apart) while fitting two blocks in a 40 ms tone.
pub const BLOCK_SAMPLES: usize = 102;
const HALF: usize = BLOCK_SAMPLES / 2;
const BINS: usize = 8;

/// Weakest tone accepted, per tone: between the -38 dBm0 that must be detected and the
/// -45 dBm0 that must not.
const MIN_TONE_DBM0: f32 = -42.0;
/// Twist limits in dB: Q.24 asks to accept 8 dB normal and 4 dB reverse twist; switches
/// reject 10 dB and 6 dB. The limits sit halfway.
const MAX_NORMAL_TWIST_DB: f32 = 9.0;
const MAX_REVERSE_TWIST_DB: f32 = 5.0;
/// Largest frequency error accepted, as a fraction: halfway between Q.24's 1.5% (accept)
/// and 3.5% (reject).
const MAX_DEVIATION: f32 = 0.025;
/// Share of the signal's energy the two tones must carry over a confirming block pair,
/// counting the tone as if it filled both blocks. White noise at 15 dB S/N leaves a tone
/// 97%; a burst of 20 ms fills at most 160 of the pair's 204 samples (78%); voiced speech
/// whose harmonics fall on a DTMF pair keeps 7% or more in its other harmonics. (At 12 dB
/// S/N a few percent of tones are lost: talk-off immunity is preferred.)
const MIN_TONE_SHARE: f32 = 0.93;

/// Power ratio of each tone between the two blocks of a confirming pair (-3 dB). A
/// candidate block at the tone's edge is at least ~85% filled, -1.4 dB.
const PAIR_MIN_POWER_RATIO: f32 = 0.6;

/// Largest share of a tone's power in its four half-block terms that departs from a
/// steady sine at the measured frequency. Steady tones stay below 0.025 even when one
/// block is only partly filled; speech glides in pitch and level.
const MAX_UNSTEADINESS: f32 = 0.03;

/// Loose per-block limits, only to pick candidates; the confirming pair is judged strictly.
const BLOCK_MIN_SHARE: f32 = 0.5;
/// Power of the runner-up tone in a group relative to the strongest (-6 dB).
const BLOCK_MAX_RUNNER_UP: f32 = 0.25;
/// Power ratio of the weaker half-block to the stronger: a tone filling the whole block
/// gives 1; one that starts or stops inside it gives less. 0.5 (-3 dB) asks a candidate
/// block to be about 85% covered, so that a 20 ms burst rarely yields two candidate
/// blocks in a row (the energy share over the pair then rejects it).
const BLOCK_MIN_HALF_RATIO: f32 = 0.5;
const BLOCK_MAX_TWIST_DB: f32 = 14.0;
const BLOCK_MAX_DEVIATION: f32 = 0.06;

/// A complex number, for the Goertzel outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Cx {
    re: f32,
    im: f32,
}

impl Cx {
    fn new(re: f32, im: f32) -> Self {
        Cx { re, im }
    }
    fn mul(self, o: Cx) -> Cx {
        Cx::new(self.re * o.re - self.im * o.im, self.re * o.im + self.im * o.re)
    }
    /// `self * conj(o)`: its argument is the phase of `self` relative to `o`.
    fn mul_conj(self, o: Cx) -> Cx {
        Cx::new(self.re * o.re + self.im * o.im, self.im * o.re - self.re * o.im)
    }
    fn add(self, o: Cx) -> Cx {
        Cx::new(self.re + o.re, self.im + o.im)
    }
    fn sub(self, o: Cx) -> Cx {
        Cx::new(self.re - o.re, self.im - o.im)
    }
    fn norm2(self) -> f32 {
        self.re * self.re + self.im * self.im
    }
    fn arg(self) -> f32 {
        self.im.atan2(self.re)
    }
    fn unit(phase: f64) -> Cx {
        Cx::new(phase.cos() as f32, phase.sin() as f32)
    }
}

/// Per-bin constants, fixed at 8 kHz.
#[derive(Debug, Clone)]
struct Bins {
    omega: [f32; BINS],
    /// Goertzel feedback coefficient 2·cos(ω).
    coef: [f32; BINS],
    /// coef² - 1, for two steps at once.
    coef2: [f32; BINS],
    cos: [f32; BINS],
    sin: [f32; BINS],
    /// e^{-jω(L-1)} turns the Goertzel output after L samples into the DFT term
    /// Σ x[n]·e^{-jωn} referenced to the block's first sample.
    rot_half: [Cx; BINS],
    rot_full: [Cx; BINS],
    /// e^{-jωN}: the reference phase advance from one block to the next.
    rot_block: [Cx; BINS],
    /// For each (low, high) pair and half-block, how much of the high tone shows in the
    /// low tone's DFT term, relative to its own: Σ e^{j(ωh-ωl)n} / M over the half. The
    /// reverse leak is its conjugate. At 51 samples the other group leaks up to -16 dB.
    leak: [[[Cx; 2]; 4]; 4],
    /// N·max|x| below which a block cannot hold a candidate tone.
    max_quiet: f32,
}

impl Bins {
    fn new() -> Self {
        let mut b = Bins {
            omega: [0.0; BINS],
            coef: [0.0; BINS],
            coef2: [0.0; BINS],
            cos: [0.0; BINS],
            sin: [0.0; BINS],
            rot_half: [Cx::default(); BINS],
            rot_full: [Cx::default(); BINS],
            rot_block: [Cx::default(); BINS],
            leak: [[[Cx::default(); 2]; 4]; 4],
            max_quiet: 0.0,
        };
        // A candidate's tone bins need power (min_amp·N/2)²/4, so |X| ≥ min_amp·N/4.
        b.max_quiet = DBM0_PEAK * 10f32.powf(MIN_TONE_DBM0 / 20.0) * BLOCK_SAMPLES as f32 / 4.0;
        for (i, hz) in LOW_GROUP_HZ.iter().chain(HIGH_GROUP_HZ.iter()).enumerate() {
            let w = step(*hz);
            b.omega[i] = w as f32;
            b.coef[i] = (2.0 * w.cos()) as f32;
            b.coef2[i] = (4.0 * w.cos() * w.cos() - 1.0) as f32;
            b.cos[i] = w.cos() as f32;
            b.sin[i] = w.sin() as f32;
            b.rot_half[i] = Cx::unit(-w * (HALF - 1) as f64);
            b.rot_full[i] = Cx::unit(-w * (BLOCK_SAMPLES - 1) as f64);
            b.rot_block[i] = Cx::unit(-w * BLOCK_SAMPLES as f64);
        }
        for (lo, &low_hz) in LOW_GROUP_HZ.iter().enumerate() {
            for (hi, &high_hz) in HIGH_GROUP_HZ.iter().enumerate() {
                let diff = step(high_hz) - step(low_hz);
                for half in 0..2 {
                    let (re, im) = (half * HALF..(half + 1) * HALF)
                        .map(|n| (diff * n as f64).sin_cos())
                        .fold((0.0, 0.0), |(re, im), (s, c)| (re + c, im + s));
                    b.leak[lo][hi][half] = Cx::new((re / HALF as f64) as f32, (im / HALF as f64) as f32);
                }
            }
        }
        b
    }

    /// The DFT term of bin `i` from the Goertzel state `s1` = s[L-1], `s2` = s[L-2],
    /// given `rot` = e^{-jω(L-1)}.
    fn dft(&self, i: usize, s1: f32, s2: f32, rot: Cx) -> Cx {
        Cx::new(s1 - self.cos[i] * s2, self.sin[i] * s2).mul(rot)
    }

    /// Separates the two tones' half-block DFT terms `x` = [low, high] from each other's
    /// leakage (taking both tones as on their bins): x_l = u_l + g·u_h, x_h = conj(g)·u_l + u_h.
    fn unmix(&self, low: usize, high: usize, half: usize, x: [Cx; 2]) -> [Cx; 2] {
        let g = self.leak[low][high][half];
        let g_rev = Cx::new(g.re, -g.im);
        let det = 1.0 - g.norm2();
        let u_low = x[0].sub(g.mul(x[1]));
        let u_high = x[1].sub(g_rev.mul(x[0]));
        [Cx::new(u_low.re / det, u_low.im / det), Cx::new(u_high.re / det, u_high.im / det)]
    }
}

/// A block where one DTMF pair stands out.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    low: usize,
    high: usize,
    /// DFT terms over the block, low then high tone.
    x: [Cx; 2],
    /// The same over each half-block, unmixed: `halves[tone][half]`.
    halves: [[Cx; 2]; 2],
    /// Frequency error of each tone in radians per sample, estimated from the phase
    /// advance between the block's halves (coarse: ambiguous only beyond ±78 Hz).
    coarse: [f32; 2],
    /// Signal energy in the block, DC removed.
    energy: f32,
}

/// The digit being heard.
#[derive(Debug, Clone, Copy)]
struct Track {
    low: usize,
    high: usize,
    start: u64,
    /// Estimated end, updated at each block that holds the digit and at the first that
    /// does not.
    end: u64,
    confirmed: bool,
    misses: u32,
    /// Bin powers of the digit's tones in its last candidate block.
    power: [f32; 2],
}

/// Finds DTMF digits in 8 kHz linear PCM, streaming over chunks of any size. See the
/// [module documentation](self) for the method.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    bins: Bins,
    s1: [f32; BINS],
    s2: [f32; BINS],
    /// Goertzel state at the middle of the block.
    h1: [f32; BINS],
    h2: [f32; BINS],
    energy: i64,
    sum: i64,
    /// The block being filled, and how far.
    buf: [i16; BLOCK_SAMPLES],
    pos: usize,
    /// Sample index of the current block's first sample.
    block_start: u64,
    prev_power: [f32; BINS],
    prev_candidate: Option<Candidate>,
    track: Option<Track>,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDetector {
    /// A detector for 8 kHz audio.
    pub fn new() -> Self {
        DtmfDetector {
            bins: Bins::new(),
            s1: [0.0; BINS],
            s2: [0.0; BINS],
            h1: [0.0; BINS],
            h2: [0.0; BINS],
            energy: 0,
            sum: 0,
            buf: [0; BLOCK_SAMPLES],
            pos: 0,
            block_start: 0,
            prev_power: [0.0; BINS],
            prev_candidate: None,
            track: None,
        }
    }

    /// Back to the state of a new detector; sample indexes count from 0 again.
    pub fn reset(&mut self) {
        *self = DtmfDetector { bins: self.bins.clone(), ..DtmfDetector::new() };
    }

    /// Samples seen since the start.
    pub fn samples_seen(&self) -> u64 {
        self.block_start + self.pos as u64
    }

    /// Feeds `samples`, appending to `out` each digit that has ended.
    pub fn process(&mut self, samples: &[i16], out: &mut Vec<DigitEvent>) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (BLOCK_SAMPLES - self.pos).min(rest.len());
            self.buf[self.pos..self.pos + take].copy_from_slice(&rest[..take]);
            self.pos += take;
            rest = &rest[take..];
            if self.pos == BLOCK_SAMPLES {
                // A block whose every sample is this quiet cannot give a tone bin the
                // power a candidate needs (|X| ≤ N·max|x|): the filters are skipped, so
                // silence and pauses cost next to nothing.
                let loudest = self.buf.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
                if f32::from(loudest) * (BLOCK_SAMPLES as f32) >= self.bins.max_quiet {
                    let buf = self.buf;
                    self.accumulate(&buf[..HALF]);
                    self.h1 = self.s1;
                    self.h2 = self.s2;
                    self.accumulate(&buf[HALF..]);
                }
                self.end_block(out);
            }
        }
    }

    /// Reports a digit still sounding at the end of the input (a recording that stops
    /// mid-tone), if it has been confirmed.
    pub fn finish(&mut self, out: &mut Vec<DigitEvent>) {
        if let Some(track) = self.track.take() {
            if track.confirmed {
                out.push(event(&track));
            }
        }
        self.prev_candidate = None;
    }

    fn accumulate(&mut self, samples: &[i16]) {
        let coef = self.bins.coef;
        let coef2 = self.bins.coef2;
        let mut s1 = self.s1;
        let mut s2 = self.s2;
        // Integer sums: exact, and without the latency of a float add per sample.
        let mut energy = self.energy;
        let mut sum = self.sum;
        let mut pairs = samples.chunks_exact(2);
        for pair in &mut pairs {
            let (a, b) = (i32::from(pair[0]), i32::from(pair[1]));
            energy += i64::from(a * a) + i64::from(b * b);
            sum += i64::from(a + b);
            let (x0, x1) = (a as f32, b as f32);
            // Two Goertzel steps at once, both from the state before them, so the
            // loop-carried chain is one multiply and two adds per two samples.
            for i in 0..BINS {
                let next = x0 + coef[i] * s1[i] - s2[i];
                let after = (x1 + coef[i] * x0) + coef2[i] * s1[i] - coef[i] * s2[i];
                s2[i] = next;
                s1[i] = after;
            }
        }
        for &x in pairs.remainder() {
            let a = i32::from(x);
            energy += i64::from(a * a);
            sum += i64::from(a);
            for i in 0..BINS {
                let s0 = a as f32 + coef[i] * s1[i] - s2[i];
                s2[i] = s1[i];
                s1[i] = s0;
            }
        }
        self.s1 = s1;
        self.s2 = s2;
        self.energy = energy;
        self.sum = sum;
    }

    fn end_block(&mut self, out: &mut Vec<DigitEvent>) {
        let mut power = [0.0f32; BINS];
        for (i, p) in power.iter_mut().enumerate() {
            let (s1, s2) = (self.s1[i], self.s2[i]);
            *p = s1 * s1 + s2 * s2 - self.bins.coef[i] * s1 * s2;
        }
        let mean = self.sum as f64 / BLOCK_SAMPLES as f64;
        let energy = (self.energy as f64 - mean * self.sum as f64).max(0.0) as f32;
        let candidate = self.candidate(&power, energy);
        self.track_digit(candidate, &power, out);
        self.prev_candidate = candidate;
        self.prev_power = power;
        self.s1 = [0.0; BINS];
        self.s2 = [0.0; BINS];
        self.energy = 0;
        self.sum = 0;
        self.pos = 0;
        self.block_start += BLOCK_SAMPLES as u64;
    }

    /// The cheap per-block tests first (most blocks are silence, speech or noise), then
    /// the half-block ones on the two winning bins only.
    fn candidate(&self, power: &[f32; BINS], energy: f32) -> Option<Candidate> {
        let n = BLOCK_SAMPLES as f32;
        let min_amp = DBM0_PEAK * 10f32.powf(MIN_TONE_DBM0 / 20.0);
        // A tone of peak A gives bin power (A·N/2)² and block energy A²·N/2.
        let min_power = (min_amp * n / 2.0) * (min_amp * n / 2.0) * 0.25;
        if energy < min_amp * min_amp * n / 2.0 * 0.5 {
            return None;
        }
        let (low, low_p, low_runner) = strongest(&power[..4]);
        let (high, high_p, high_runner) = strongest(&power[4..]);
        if low_p < min_power || high_p < min_power {
            return None;
        }
        if low_runner > low_p * BLOCK_MAX_RUNNER_UP || high_runner > high_p * BLOCK_MAX_RUNNER_UP {
            return None;
        }
        if (low_p + high_p) * 2.0 / n < energy * BLOCK_MIN_SHARE {
            return None;
        }
        let twist_limit = 10f32.powf(BLOCK_MAX_TWIST_DB / 10.0);
        if low_p > high_p * twist_limit || high_p > low_p * twist_limit {
            return None;
        }
        let (l, h) = (low, high + 4);
        let full = [
            self.bins.dft(l, self.s1[l], self.s2[l], self.bins.rot_full[l]),
            self.bins.dft(h, self.s1[h], self.s2[h], self.bins.rot_full[h]),
        ];
        let raw1 = [
            self.bins.dft(l, self.h1[l], self.h2[l], self.bins.rot_half[l]),
            self.bins.dft(h, self.h1[h], self.h2[h], self.bins.rot_half[h]),
        ];
        let raw2 = [full[0].sub(raw1[0]), full[1].sub(raw1[1])];
        let half1 = self.bins.unmix(low, high, 0, raw1);
        let half2 = self.bins.unmix(low, high, 1, raw2);
        let mut coarse = [0.0f32; 2];
        for k in 0..2 {
            coarse[k] = half2[k].mul_conj(half1[k]).arg() / HALF as f32;
            if coarse[k].abs() > self.bins.omega[[l, h][k]] * BLOCK_MAX_DEVIATION {
                return None;
            }
        }
        let first = half1[0].norm2() + half1[1].norm2();
        let second = half2[0].norm2() + half2[1].norm2();
        if first.min(second) < first.max(second) * BLOCK_MIN_HALF_RATIO {
            return None;
        }
        let x = [half1[0].add(half2[0]), half1[1].add(half2[1])];
        let halves = [[half1[0], half2[0]], [half1[1], half2[1]]];
        Some(Candidate { low, high, x, halves, coarse, energy })
    }

    /// Whether two consecutive candidate blocks of the same pair make a digit: exact
    /// frequencies from the phase advance between the blocks, then level, twist and
    /// energy share over both blocks as one 25.5 ms window.
    fn confirms(&self, a: &Candidate, b: &Candidate) -> bool {
        let n = BLOCK_SAMPLES as f32;
        let mut amp = [0.0f32; 2];
        for (k, bin) in [a.low, a.high + 4].into_iter().enumerate() {
            // A key holds its tones steady; voiced speech swells and fades.
            let (pa, pb) = (a.x[k].norm2(), b.x[k].norm2());
            if pa.min(pb) < pa.max(pb) * PAIR_MIN_POWER_RATIO {
                return false;
            }
            let omega = self.bins.omega[bin];
            let rot = self.bins.rot_block[bin];
            // Phase advance beyond the bin's own, ambiguous modulo 2π/N (±39 Hz); the
            // half-block estimate picks the right turn.
            let fine = b.x[k].mul_conj(a.x[k]).mul(rot).arg() / n;
            let turn = std::f32::consts::TAU / n;
            let coarse = (a.coarse[k] + b.coarse[k]) / 2.0;
            let delta = fine + ((coarse - fine) / turn).round() * turn;
            if delta.abs() > omega * MAX_DEVIATION {
                return false;
            }
            // The four half-blocks with b's reference moved to a's start, each turned
            // back by the tone's own phase advance: a steady tone leaves them equal.
            let quarters = [a.halves[k][0], a.halves[k][1], b.halves[k][0].mul(rot), b.halves[k][1].mul(rot)];
            let mut mean = Cx::default();
            let mut total = 0.0;
            let mut turned = [Cx::default(); 4];
            for (q, (t, h)) in turned.iter_mut().zip(quarters).enumerate() {
                *t = h.mul(Cx::new((delta * (q * HALF) as f32).cos(), -(delta * (q * HALF) as f32).sin()));
                mean = mean.add(*t);
                total += t.norm2();
            }
            let mean = Cx::new(mean.re / 4.0, mean.im / 4.0);
            let residual = turned.iter().map(|t| t.sub(mean).norm2()).sum::<f32>() / total;
            if residual > MAX_UNSTEADINESS {
                return false;
            }
            amp[k] = 2.0 * mean.norm2().sqrt() / dirichlet(delta, HALF);
        }
        let min_amp = DBM0_PEAK * 10f32.powf(MIN_TONE_DBM0 / 20.0);
        if amp[0] < min_amp || amp[1] < min_amp {
            return false;
        }
        let twist_db = 20.0 * (amp[0] / amp[1]).log10();
        if twist_db > MAX_NORMAL_TWIST_DB || -twist_db > MAX_REVERSE_TWIST_DB {
            return false;
        }
        let tone_energy = (amp[0] * amp[0] + amp[1] * amp[1]) / 2.0 * 2.0 * n;
        tone_energy >= (a.energy + b.energy) * MIN_TONE_SHARE
    }

    fn track_digit(&mut self, candidate: Option<Candidate>, power: &[f32; BINS], out: &mut Vec<DigitEvent>) {
        let n = BLOCK_SAMPLES as u64;
        let block_end = self.block_start + n;
        match candidate {
            Some(c) => {
                let tone_power = [power[c.low], power[c.high + 4]];
                let same = self.track.is_some_and(|t| t.low == c.low && t.high == c.high);
                if same {
                    let already = self.track.is_some_and(|t| t.confirmed);
                    let confirms = match self.prev_candidate {
                        Some(prev) if !already && prev.low == c.low && prev.high == c.high => {
                            self.confirms(&prev, &c)
                        }
                        _ => false,
                    };
                    let track = self.track.as_mut().expect("track present");
                    track.misses = 0;
                    track.end = block_end;
                    track.power = tone_power;
                    track.confirmed |= confirms;
                    return;
                }
                // A new pair: whatever was sounding has ended inside this block.
                if let Some(mut old) = self.track.take() {
                    if old.misses == 0 {
                        old.end =
                            self.block_start + coverage([power[old.low], power[old.high + 4]], old.power, n);
                    }
                    if old.confirmed {
                        out.push(event(&old));
                    }
                }
                // The tone may have started inside the previous block: how much of it
                // the tone filled shows in that block's power at the tone bins.
                let lead = coverage([self.prev_power[c.low], self.prev_power[c.high + 4]], tone_power, n);
                self.track = Some(Track {
                    low: c.low,
                    high: c.high,
                    start: self.block_start.saturating_sub(lead),
                    end: block_end,
                    confirmed: false,
                    misses: 0,
                    power: tone_power,
                });
            }
            None => {
                let Some(track) = self.track.as_mut() else { return };
                if track.misses == 0 {
                    track.end = self.block_start
                        + coverage([power[track.low], power[track.high + 4]], track.power, n);
                }
                track.misses += 1;
                // Unconfirmed candidates need consecutive blocks; a confirmed digit
                // rides over one lost block (a noise burst) but two end it, which a
                // 40 ms pause always gives.
                if !track.confirmed || track.misses >= 2 {
                    let track = self.track.take().expect("track present");
                    if track.confirmed {
                        out.push(event(&track));
                    }
                }
            }
        }
    }
}

fn event(track: &Track) -> DigitEvent {
    DigitEvent { digit: KEYPAD[track.low][track.high], start: track.start, end: track.end }
}

/// Index, power and runner-up power of the strongest of a group's bins.
fn strongest(power: &[f32]) -> (usize, f32, f32) {
    let mut best = 0;
    for i in 1..power.len() {
        if power[i] > power[best] {
            best = i;
        }
    }
    let runner = power.iter().enumerate().filter(|&(i, _)| i != best).map(|(_, &p)| p).fold(0.0, f32::max);
    (best, power[best], runner)
}

/// How many of a block's `n` samples a tone filled, from its bin powers there relative
/// to a block it filled (a partial tone's DFT term scales with the samples it covers).
fn coverage(partial: [f32; 2], full: [f32; 2], n: u64) -> u64 {
    let ratio = ((partial[0] / full[0]).sqrt() + (partial[1] / full[1]).sqrt()) / 2.0;
    let ratio = if ratio.is_finite() { ratio.clamp(0.0, 1.0) } else { 0.0 };
    (ratio * n as f32).round() as u64
}

/// |Σ_{n<len} e^{jδn}|: the gain of a `len`-sample DFT term for a tone `delta` radians per
/// sample off the bin.
fn dirichlet(delta: f32, len: usize) -> f32 {
    let half = delta / 2.0;
    if half.abs() < 1e-6 {
        len as f32
    } else {
        ((half * len as f32).sin() / half.sin()).abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_terms_match_a_direct_dft() {
        let bins = Bins::new();
        let x: Vec<f32> = (0..BLOCK_SAMPLES).map(|n| ((n * 37 % 101) as f32 - 50.0) * 10.0).collect();
        for i in 0..BINS {
            let (mut s1, mut s2, mut h) = (0.0f32, 0.0f32, (0.0, 0.0));
            for (n, &v) in x.iter().enumerate() {
                let s0 = v + bins.coef[i] * s1 - s2;
                s2 = s1;
                s1 = s0;
                if n + 1 == HALF {
                    h = (s1, s2);
                }
            }
            let direct = |len: usize| {
                x[..len].iter().enumerate().fold(Cx::default(), |acc, (n, &v)| {
                    acc.add(Cx::unit(-(bins.omega[i] as f64) * n as f64).mul(Cx::new(v, 0.0)))
                })
            };
            for (got, want) in [
                (bins.dft(i, s1, s2, bins.rot_full[i]), direct(BLOCK_SAMPLES)),
                (bins.dft(i, h.0, h.1, bins.rot_half[i]), direct(HALF)),
            ] {
                assert!(got.sub(want).norm2().sqrt() < 1.0, "bin {i}: {got:?} vs {want:?}");
            }
        }
    }
}
