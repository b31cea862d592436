//! FSK caller ID: the modulator a station port uses and the receiver an FXO port uses.
//!
//! Both standards send 1200 baud, asynchronous 8N1 bytes, least significant bit first:
//! Bell 202 (GR-30-CORE: mark 1200 Hz, space 2200 Hz) and ITU-T V.23 as used by
//! ETSI EN 300 659-1 and China YDN 069 (mark 1300 Hz, space 2100 Hz). A transmission is
//! a channel seizure signal (alternating 0 and 1 bits), a mark signal (all 1 bits),
//! then the message bytes.
//!
//! The receiver band-pass filters the line, correlates each sample window of one bit
//! with the mark and space frequencies (a matched-filter pair), and recovers the bit
//! clock from every start bit's edge, as a UART does. A message is looked for only
//! after a steady mark signal, so speech and noise do not produce messages; every
//! message found is reported, corrupted ones as errors.

use std::f32::consts::PI;

use super::message::{
    decode_message, encode_message, framed_len, MessageFormat, MDMF_CALL_SETUP, MDMF_MESSAGE_WAITING,
    SDMF_CALL_SETUP, SDMF_MESSAGE_WAITING,
};
use crate::error::{Error, ErrorKind, Result};
use crate::signal::CallerId;
use crate::SAMPLE_RATE;

/// Bits per second of both FSK standards.
pub const BAUD: u32 = 1200;

/// Peak amplitude of a 0 dBm0 sine in 16-bit linear (G.711: 3.14 dB below full scale).
const ZERO_DBM0_PEAK: f32 = 22_706.0;

/// The FSK modulation in use on the line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FskStandard {
    /// Bell 202 (North America, GR-30-CORE): mark 1200 Hz, space 2200 Hz.
    Bell202,
    /// ITU-T V.23 (ETSI EN 300 659-1, China YDN 069): mark 1300 Hz, space 2100 Hz.
    V23,
}

impl FskStandard {
    /// Frequency of a 1 bit, in Hz.
    pub fn mark_hz(self) -> f32 {
        match self {
            FskStandard::Bell202 => 1200.0,
            FskStandard::V23 => 1300.0,
        }
    }
    /// Frequency of a 0 bit, in Hz.
    pub fn space_hz(self) -> f32 {
        match self {
            FskStandard::Bell202 => 2200.0,
            FskStandard::V23 => 2100.0,
        }
    }
    /// The usual preamble: 300 seizure bits, then 180 mark bits for Bell 202 (GR-30)
    /// and 80 for V.23. ETSI EN 300 659-1 asks 80 ± 25 or 180 ± 25 mark bits depending
    /// on how the data is sent; use [`fsk_modulate`] with an [`FskPreamble`] to choose.
    pub fn default_preamble(self) -> FskPreamble {
        match self {
            FskStandard::Bell202 => FskPreamble { seizure_bits: 300, mark_bits: 180 },
            FskStandard::V23 => FskPreamble { seizure_bits: 300, mark_bits: 80 },
        }
    }
}

/// What is sent before the message: the channel seizure signal (alternating bits,
/// starting with 0) and the mark signal (1 bits).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct FskPreamble {
    pub seizure_bits: u32,
    pub mark_bits: u32,
}

/// Mark bits sent after the last byte so the stop bit is not cut short by the line
/// going quiet.
const TRAILING_MARK_BITS: u32 = 4;

fn peak_for(level_dbm0: f32) -> Result<f32> {
    let peak = ZERO_DBM0_PEAK * 10f32.powf(level_dbm0 / 20.0);
    if !peak.is_finite() || peak > f32::from(i16::MAX) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("FSK level {level_dbm0} dBm0 does not fit 16-bit audio (at most +3.1 dBm0)"),
        ));
    }
    Ok(peak)
}

/// Caller ID as FSK audio: the standard's preamble, then `cid` encoded in `format`, at
/// `level_dbm0` (GR-30 exchanges send -13.5 dBm nominal).
pub fn fsk_audio(
    cid: &CallerId,
    standard: FskStandard,
    format: MessageFormat,
    level_dbm0: f32,
) -> Result<Vec<i16>> {
    let message = encode_message(cid, format)?;
    fsk_modulate(&message, standard, standard.default_preamble(), level_dbm0)
}

/// Any bytes as FSK audio: `preamble`, then each byte as start bit, 8 data bits least
/// significant first, stop bit; phase-continuous, so the spectrum stays in band.
pub fn fsk_modulate(
    bytes: &[u8],
    standard: FskStandard,
    preamble: FskPreamble,
    level_dbm0: f32,
) -> Result<Vec<i16>> {
    let peak = peak_for(level_dbm0)?;
    let mut bits: Vec<bool> = Vec::new();
    bits.extend((0..preamble.seizure_bits).map(|i| i % 2 == 1));
    bits.extend((0..preamble.mark_bits).map(|_| true));
    for &byte in bytes {
        bits.push(false);
        bits.extend((0..8).map(|i| byte >> i & 1 == 1));
        bits.push(true);
    }
    bits.extend((0..TRAILING_MARK_BITS).map(|_| true));

    let rate = u64::from(SAMPLE_RATE);
    let baud = u64::from(BAUD);
    let total = (bits.len() as u64 * rate).div_ceil(baud);
    let mark_step = 2.0 * PI * standard.mark_hz() / SAMPLE_RATE as f32;
    let space_step = 2.0 * PI * standard.space_hz() / SAMPLE_RATE as f32;
    let mut phase = 0.0f32;
    let mut out = Vec::with_capacity(total as usize);
    for n in 0..total {
        // Bit boundaries fall between samples (6 2/3 samples a bit); each sample takes
        // the bit its instant belongs to.
        let bit = bits[(n * baud / rate) as usize];
        out.push((peak * phase.sin()).round() as i16);
        phase += if bit { mark_step } else { space_step };
        if phase > 2.0 * PI {
            phase -= 2.0 * PI;
        }
    }
    Ok(out)
}

/// A caller ID message found on the line, or the reason it could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdEvent {
    /// Sample index (counted from the receiver's first sample) of the end of the
    /// message's last stop bit, to within a few samples.
    pub at: u64,
    pub result: Result<CallerId>,
}

/// Band-pass taps (odd, so the delay is a whole number of samples).
const TAPS: usize = 31;
/// Correlation window: one bit, rounded to whole samples.
const WINDOW: usize = 7;
/// Samples of steady mark that arm the receiver for a message: 30 bits, well under
/// the shortest mark signal (ETSI: 80 - 25 bits).
const ARM_MARK_SAMPLES: u32 = 30 * SAMPLE_RATE / BAUD;
/// Least carrier power (mean square of the filtered signal over a bit): a -48 dBm0 sine.
const CARRIER_DBM0: f32 = -48.0;
/// How sure the mark/space correlation must be, (M - S) / (M + S), to count as mark
/// signal. Well below a clean mark's score, even in V.23 where the tones are only
/// 800 Hz apart and leak into each other's one-bit correlation.
const MARK_QUALITY: f32 = 0.3;
/// Consecutive 0x55 bytes that show a channel seizure signal.
const SEIZURE_BYTES: u32 = 4;
/// How long a seen seizure signal vouches for the message after it, in samples.
const SEIZURE_MEMORY: u64 = SAMPLE_RATE as u64;

#[derive(Debug, Clone)]
enum Uart {
    /// Waiting for a mark-to-space edge.
    Idle,
    /// Sampling the bits of a byte whose start edge was at `edge` (fractional sample).
    Byte { edge: f64, bit: u32, value: u16, next_at: u64 },
}

#[derive(Debug, Clone)]
enum Link {
    /// Looking for a mark signal.
    Hunt,
    /// Mark signal seen: the next byte may be a message type.
    Armed,
    /// Collecting a message's bytes.
    Message { bytes: Vec<u8>, framing_errors: Vec<usize>, last_byte_at: u64 },
}

/// Streaming FSK caller ID receiver for one line. Feed it audio in chunks of any size;
/// it reports each message it finds.
#[derive(Debug, Clone)]
pub struct FskReceiver {
    standard: FskStandard,
    taps: [f32; TAPS],
    history: [f32; TAPS],
    history_pos: usize,
    window: [f32; WINDOW],
    window_pos: usize,
    mark_ref: [(f32, f32); WINDOW],
    space_ref: [(f32, f32); WINDOW],
    carrier_floor: f32,
    samples_per_bit: f64,
    /// Samples processed so far.
    n: u64,
    prev_d: f32,
    /// The decision one sample earlier than `prev_d`.
    prev2_d: f32,
    quiet_samples: u32,
    mark_run: u32,
    seizure_run: u32,
    seizure_seen_at: Option<u64>,
    uart: Uart,
    link: Link,
}

impl FskReceiver {
    pub fn new(standard: FskStandard) -> Self {
        let fs = SAMPLE_RATE as f32;
        let lo = (standard.mark_hz() - 400.0) / fs;
        let hi = (standard.space_hz() + 400.0) / fs;
        // Windowed-sinc band-pass (Hamming), normalised to unit gain midway between
        // the tones, to keep out hum, speech fundamentals and the top of the band.
        let mid = (TAPS - 1) as f32 / 2.0;
        let mut taps = [0.0f32; TAPS];
        for (k, tap) in taps.iter_mut().enumerate() {
            let t = k as f32 - mid;
            let sinc = |f: f32| {
                if t == 0.0 {
                    2.0 * f
                } else {
                    (2.0 * PI * f * t).sin() / (PI * t)
                }
            };
            let hamming = 0.54 - 0.46 * (2.0 * PI * k as f32 / (TAPS - 1) as f32).cos();
            *tap = (sinc(hi) - sinc(lo)) * hamming;
        }
        let centre = 2.0 * PI * (standard.mark_hz() + standard.space_hz()) / 2.0 / fs;
        let (mut re, mut im) = (0.0f32, 0.0f32);
        for (k, tap) in taps.iter().enumerate() {
            re += tap * (centre * k as f32).cos();
            im += tap * (centre * k as f32).sin();
        }
        let gain = (re * re + im * im).sqrt();
        for tap in &mut taps {
            *tap /= gain;
        }
        let reference = |hz: f32| {
            let step = 2.0 * PI * hz / fs;
            let mut r = [(0.0, 0.0); WINDOW];
            for (k, slot) in r.iter_mut().enumerate() {
                *slot = ((step * k as f32).cos(), (step * k as f32).sin());
            }
            r
        };
        let floor_peak = ZERO_DBM0_PEAK * 10f32.powf(CARRIER_DBM0 / 20.0);
        FskReceiver {
            standard,
            taps,
            history: [0.0; TAPS],
            history_pos: 0,
            window: [0.0; WINDOW],
            window_pos: 0,
            mark_ref: reference(standard.mark_hz()),
            space_ref: reference(standard.space_hz()),
            carrier_floor: floor_peak * floor_peak / 2.0,
            samples_per_bit: f64::from(SAMPLE_RATE) / f64::from(BAUD),
            n: 0,
            prev_d: 0.0,
            prev2_d: 0.0,
            quiet_samples: 0,
            mark_run: 0,
            seizure_run: 0,
            seizure_seen_at: None,
            uart: Uart::Idle,
            link: Link::Hunt,
        }
    }

    pub fn standard(&self) -> FskStandard {
        self.standard
    }

    /// Samples processed so far: the index the next sample will have.
    pub fn position(&self) -> u64 {
        self.n
    }

    /// Demodulate `samples`, appending an event for each message that ends in them.
    pub fn process(&mut self, samples: &[i16], out: &mut Vec<CallerIdEvent>) {
        for &s in samples {
            self.step(f32::from(s), out);
        }
    }

    /// The input has ended: flush the filters with silence and report a message that
    /// was cut off as truncated.
    pub fn finish(&mut self, out: &mut Vec<CallerIdEvent>) {
        for _ in 0..TAPS + WINDOW + 8 {
            self.step(0.0, out);
        }
        if let Link::Message { bytes, .. } = &self.link {
            let event = self.truncated(bytes, "the input ended");
            out.push(event);
            self.reset_link();
        }
    }

    fn filter(&mut self, x: f32) -> f32 {
        self.history[self.history_pos] = x;
        self.history_pos = (self.history_pos + 1) % TAPS;
        // history_pos is now the oldest sample.
        let mut acc = 0.0;
        for k in 0..TAPS {
            acc += self.taps[k] * self.history[(self.history_pos + k) % TAPS];
        }
        acc
    }

    fn step(&mut self, x: f32, out: &mut Vec<CallerIdEvent>) {
        let y = self.filter(x);
        self.window[self.window_pos] = y;
        self.window_pos = (self.window_pos + 1) % WINDOW;
        let (mut mr, mut mi, mut sr, mut si) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for k in 0..WINDOW {
            let v = self.window[(self.window_pos + k) % WINDOW];
            mr += v * self.mark_ref[k].0;
            mi += v * self.mark_ref[k].1;
            sr += v * self.space_ref[k].0;
            si += v * self.space_ref[k].1;
        }
        let mark = mr * mr + mi * mi;
        let space = sr * sr + si * si;
        let d = mark - space;
        let quality = if mark + space > 0.0 { d / (mark + space) } else { 0.0 };
        // Power over the last bit: fast enough that a line going quiet stops the UART
        // within a bit, instead of it reading a filter's fading tail as bytes.
        let power = self.window.iter().map(|v| v * v).sum::<f32>() / WINDOW as f32;
        let carrier = power > self.carrier_floor;
        let n = self.n;

        if carrier {
            self.quiet_samples = 0;
        } else {
            self.quiet_samples = self.quiet_samples.saturating_add(1);
        }
        if carrier && quality > MARK_QUALITY {
            self.mark_run = self.mark_run.saturating_add(1);
        } else {
            self.mark_run = 0;
        }

        let byte = self.uart_step(n, d, carrier);
        self.prev2_d = self.prev_d;
        self.prev_d = d;
        self.link_step(n, byte, out);
        self.n += 1;
    }

    /// Advance the bit clock; returns a byte (and whether its stop bit was mark) when
    /// one completes.
    fn uart_step(&mut self, n: u64, d: f32, carrier: bool) -> Option<(u8, bool)> {
        match &mut self.uart {
            Uart::Idle => {
                if carrier && self.prev_d >= 0.0 && d < 0.0 {
                    // Where the decision crossed zero, between the two samples.
                    let frac = f64::from(self.prev_d / (self.prev_d - d));
                    let edge = (n as f64 - 1.0) + frac;
                    let next_at = (edge + 0.5 * self.samples_per_bit).round() as u64 + 1;
                    self.uart = Uart::Byte { edge, bit: 0, value: 0, next_at: next_at.max(n) };
                }
                None
            }
            Uart::Byte { edge, bit, value, next_at } => {
                if n < *next_at {
                    return None;
                }
                if !carrier {
                    // The line went quiet inside the byte: it was never sent whole.
                    self.uart = Uart::Idle;
                    return None;
                }
                // Three decisions around the bit centre (sampled one late for this)
                // average out noise that a single sample would pass.
                let one = d + self.prev_d + self.prev2_d > 0.0;
                let result = match *bit {
                    0 if one => {
                        // Not a start bit after all: a glitch in the mark signal.
                        self.uart = Uart::Idle;
                        return None;
                    }
                    0 => None,
                    1..=8 => {
                        *value |= u16::from(one) << (*bit - 1);
                        None
                    }
                    _ => Some((*value as u8, one)),
                };
                if result.is_some() {
                    self.uart = Uart::Idle;
                } else {
                    *bit += 1;
                    *next_at = (*edge + (f64::from(*bit) + 0.5) * self.samples_per_bit).round() as u64 + 1;
                }
                result
            }
        }
    }

    fn seizure_recent(&self, n: u64) -> bool {
        self.seizure_seen_at.is_some_and(|at| n.saturating_sub(at) < SEIZURE_MEMORY)
    }

    fn link_step(&mut self, n: u64, byte: Option<(u8, bool)>, out: &mut Vec<CallerIdEvent>) {
        if let Some((b, framed)) = byte {
            if b == 0x55 && framed {
                self.seizure_run += 1;
                if self.seizure_run >= SEIZURE_BYTES {
                    self.seizure_seen_at = Some(n);
                }
            } else {
                self.seizure_run = 0;
            }
        }
        let bit_samples = self.samples_per_bit.ceil() as u32;
        match &mut self.link {
            Link::Hunt => {
                if self.mark_run >= ARM_MARK_SAMPLES {
                    self.link = Link::Armed;
                }
            }
            Link::Armed => {
                if let Some((b, framed)) = byte {
                    let known = matches!(
                        b,
                        SDMF_CALL_SETUP | SDMF_MESSAGE_WAITING | MDMF_CALL_SETUP | MDMF_MESSAGE_WAITING
                    );
                    // An unknown first byte is only worth reporting when a seizure
                    // signal showed this is caller ID; otherwise it was not data.
                    if known || self.seizure_recent(n) {
                        self.link = Link::Message {
                            bytes: vec![b],
                            framing_errors: if framed { vec![] } else { vec![0] },
                            last_byte_at: n,
                        };
                    } else {
                        self.link = Link::Hunt;
                    }
                } else if self.quiet_samples > 2 * bit_samples {
                    self.link = Link::Hunt;
                }
            }
            Link::Message { bytes, framing_errors, last_byte_at } => {
                if let Some((b, framed)) = byte {
                    if !framed {
                        framing_errors.push(bytes.len());
                    }
                    bytes.push(b);
                    *last_byte_at = n;
                    if bytes.len() >= 2 && bytes.len() == framed_len(bytes[1]) {
                        let result = decode_message(bytes).map_err(|e| {
                            if framing_errors.is_empty() {
                                e
                            } else {
                                Error::new(
                                    e.kind(),
                                    format!(
                                        "{} (stop bits missing at byte offsets {:?})",
                                        e.message(),
                                        framing_errors
                                    ),
                                )
                            }
                        });
                        out.push(CallerIdEvent { at: self.end_index(n), result });
                        self.reset_link();
                    }
                } else if self.quiet_samples > 2 * bit_samples {
                    let event = self.truncated_current("the carrier stopped");
                    out.push(event);
                    self.reset_link();
                } else if n - *last_byte_at > u64::from(40 * bit_samples) && matches!(self.uart, Uart::Idle) {
                    let event = self.truncated_current("no start bit came for 40 bits");
                    out.push(event);
                    self.reset_link();
                }
            }
        }
    }

    /// The decision for a bit centre appears this many samples after the bit centre:
    /// the band-pass delay, half the correlation window, and the one sample the UART
    /// waits to average around the centre; the stop bit ends half a bit later.
    fn end_index(&self, n: u64) -> u64 {
        let delay = (TAPS - 1) as f64 / 2.0 + (WINDOW - 1) as f64 / 2.0 + 1.0;
        (n as f64 - delay + self.samples_per_bit / 2.0).round().max(0.0) as u64
    }

    fn truncated_current(&self, why: &str) -> CallerIdEvent {
        match &self.link {
            Link::Message { bytes, .. } => self.truncated(bytes, why),
            _ => self.truncated(&[], why),
        }
    }

    fn truncated(&self, bytes: &[u8], why: &str) -> CallerIdEvent {
        let expected = match bytes.get(1) {
            Some(&len) => format!("{} announced by the length byte", framed_len(len)),
            None => "at least 3".to_string(),
        };
        CallerIdEvent {
            at: self.end_index(self.n),
            result: Err(Error::new(
                ErrorKind::Media,
                format!(
                    "caller ID message truncated: {why} after {} bytes (type 0x{:02X}), {expected} \
                     expected",
                    bytes.len(),
                    bytes.first().copied().unwrap_or(0)
                ),
            )),
        }
    }

    fn reset_link(&mut self) {
        self.link = Link::Hunt;
        self.mark_run = 0;
        self.seizure_run = 0;
        self.seizure_seen_at = None;
    }
}
