//! The DTMF generator and detector against ITU-T Q.23/Q.24 as switches test a receiver:
//! every key, frequency tolerance, twist, level range, timing, noise, G.711 and
//! call-progress tones.

use hotline_drivers::dsp::dtmf::{
    digit_frequencies, is_dtmf_digit, DigitEvent, DtmfDetector, DtmfGenerator, DtmfParams, HIGH_GROUP_HZ,
    LOW_GROUP_HZ,
};
use hotline_drivers::dsp::g711::{alaw_round_trip, ulaw_round_trip};
use hotline_drivers::FRAME_SAMPLES;

const KEYS: &str = "123A456B789C*0#D";
const DBM0_PEAK: f64 = 22_706.0;
const RATE: f64 = 8000.0;
const TAU: f64 = std::f64::consts::TAU;

/// A tiny seeded PRNG (splitmix64) so every run hears the same noise and alignments.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Standard normal (Box-Muller).
    fn gauss(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn peak(dbm0: f64) -> f64 {
    DBM0_PEAK * 10f64.powf(dbm0 / 20.0)
}

/// A signal under construction, in f64 so that noise and tones add before rounding.
#[derive(Default)]
struct Signal(Vec<f64>);

impl Signal {
    fn silence(&mut self, samples: usize) -> &mut Self {
        self.0.extend(std::iter::repeat(0.0).take(samples));
        self
    }
    fn tones(&mut self, parts: &[(f64, f64)], samples: usize, phase: f64) -> &mut Self {
        for n in 0..samples {
            let t = n as f64 / RATE;
            self.0.push(
                parts
                    .iter()
                    .map(|&(hz, dbm0)| peak(dbm0) * (std::f64::consts::TAU * hz * t + phase).sin())
                    .sum(),
            );
        }
        self
    }
    fn pair(&mut self, low: (f64, f64), high: (f64, f64), samples: usize, phase: f64) -> &mut Self {
        self.tones(&[low, high], samples, phase)
    }
    fn pcm(&self) -> Vec<i16> {
        self.0.iter().map(|v| v.round().clamp(-32768.0, 32767.0) as i16).collect()
    }
}

fn ms(ms: usize) -> usize {
    ms * 8
}

/// Runs the detector over 20 ms frames, then enough silence to end any digit.
fn detect(pcm: &[i16]) -> Vec<DigitEvent> {
    detect_in_chunks(pcm, FRAME_SAMPLES)
}

fn detect_in_chunks(pcm: &[i16], chunk: usize) -> Vec<DigitEvent> {
    let mut detector = DtmfDetector::new();
    let mut events = Vec::new();
    for frame in pcm.chunks(chunk) {
        detector.process(frame, &mut events);
    }
    detector.process(&[0; 800], &mut events);
    events
}

fn digits(events: &[DigitEvent]) -> String {
    events.iter().map(|e| e.digit).collect()
}

fn nominal(key: char) -> (f64, f64) {
    let (low, high) = digit_frequencies(key).expect("a DTMF key");
    (f64::from(low), f64::from(high))
}

/// One key as a tone between silences, with a random lead so block alignment varies.
fn single_key(rng: &mut SplitMix, low: (f64, f64), high: (f64, f64), tone_ms: usize) -> Vec<i16> {
    let mut s = Signal::default();
    s.silence(ms(20) + rng.below(160) as usize)
        .pair(low, high, ms(tone_ms), rng.unit() * TAU)
        .silence(ms(60));
    s.pcm()
}

#[test]
fn every_key_of_the_keypad_is_generated_and_detected_once_with_its_timing() {
    let params = DtmfParams::default();
    let pcm = DtmfGenerator::generate(KEYS, params).unwrap();
    assert_eq!(pcm.len(), KEYS.len() * ms(200));
    let events = detect(&pcm);
    assert_eq!(digits(&events), KEYS);
    for (i, e) in events.iter().enumerate() {
        let start = (i * ms(200)) as i64;
        let end = start + ms(100) as i64;
        assert!((e.start as i64 - start).abs() <= 24, "{e:?}: tone starts at {start}");
        assert!((e.end as i64 - end).abs() <= 24, "{e:?}: tone ends at {end}");
    }
}

#[test]
fn chunk_size_does_not_change_what_is_detected() {
    let pcm =
        DtmfGenerator::generate("0123456789", DtmfParams { on_ms: 50, off_ms: 50, ..Default::default() })
            .unwrap();
    let reference = detect(&pcm);
    assert_eq!(digits(&reference), "0123456789");
    for chunk in [1, 7, 80, 102, 160, 1000, pcm.len()] {
        assert_eq!(detect_in_chunks(&pcm, chunk), reference, "chunks of {chunk}");
    }
}

#[test]
fn the_generator_streams_in_any_frame_size_and_then_stops() {
    let params = DtmfParams { on_ms: 40, off_ms: 60, ..Default::default() };
    let whole = DtmfGenerator::generate("159#", params).unwrap();
    let mut generator = DtmfGenerator::new("159#", params).unwrap();
    let mut streamed = Vec::new();
    let mut frame = [0i16; 77];
    loop {
        let n = generator.fill(&mut frame);
        if n == 0 {
            break;
        }
        streamed.extend_from_slice(&frame[..n]);
    }
    assert!(generator.is_done());
    assert_eq!(streamed, whole);
    // -7 dBm0 + -5 dBm0 tones peak at most at the sum of their amplitudes.
    let max = whole.iter().map(|v| v.unsigned_abs()).max().unwrap();
    assert!(f64::from(max) <= peak(-7.0) + peak(-5.0) + 1.0 && f64::from(max) > peak(-5.0));
}

#[test]
fn a_dial_string_with_a_stray_character_is_refused_naming_it_and_where() {
    let err = DtmfGenerator::new("12x4", DtmfParams::default()).unwrap_err();
    assert!(err.message().contains("'x'") && err.message().contains("position 3"), "{}", err.message());
    assert!(DtmfGenerator::new("", DtmfParams::default()).unwrap().is_done());
    let zero_tone = DtmfParams { on_ms: 0, ..Default::default() };
    assert!(DtmfGenerator::new("1", zero_tone).unwrap_err().message().contains("on_ms"));
    let too_loud = DtmfParams { high_dbm0: 10.0, ..Default::default() };
    assert!(DtmfGenerator::new("1", too_loud).unwrap_err().message().contains("high_dbm0"));
    assert!(KEYS.chars().all(is_dtmf_digit));
    assert!(!"xE a,".chars().any(is_dtmf_digit));
}

/// Each of the 8 frequencies moved up and down by `percent`, the other at nominal; returns
/// for each case the digits heard.
fn detuned_cases(percent: f64) -> Vec<(String, String)> {
    let mut rng = SplitMix(percent.to_bits());
    let mut cases = Vec::new();
    for (row, &low) in LOW_GROUP_HZ.iter().enumerate() {
        for sign in [-1.0, 1.0] {
            let key = KEYS.chars().nth(row * 4 + row % 4).unwrap();
            let (_, high) = nominal(key);
            let low = f64::from(low) * (1.0 + sign * percent / 100.0);
            let heard = digits(&detect(&single_key(&mut rng, (low, -10.0), (high, -10.0), 60)));
            cases.push((format!("{key}: low {low:.1} Hz"), heard));
        }
    }
    for (col, &high) in HIGH_GROUP_HZ.iter().enumerate() {
        for sign in [-1.0, 1.0] {
            let key = KEYS.chars().nth((3 - col) * 4 + col).unwrap();
            let (low, _) = nominal(key);
            let high = f64::from(high) * (1.0 + sign * percent / 100.0);
            let heard = digits(&detect(&single_key(&mut rng, (low, -10.0), (high, -10.0), 60)));
            cases.push((format!("{key}: high {high:.1} Hz"), heard));
        }
    }
    cases
}

#[test]
fn tones_off_frequency_by_1_5_percent_either_way_are_accepted() {
    for (case, heard) in detuned_cases(1.5) {
        let key = case.chars().next().unwrap();
        assert_eq!(heard, key.to_string(), "{case}");
    }
}

#[test]
fn tones_off_frequency_by_3_5_percent_either_way_are_rejected() {
    for (case, heard) in detuned_cases(3.5) {
        assert_eq!(heard, "", "{case}");
    }
}

fn heard_with_levels(key: char, low_dbm0: f64, high_dbm0: f64, seed: u64) -> String {
    let (low, high) = nominal(key);
    let mut rng = SplitMix(seed);
    digits(&detect(&single_key(&mut rng, (low, low_dbm0), (high, high_dbm0), 60)))
}

#[test]
fn normal_twist_of_8_db_and_reverse_twist_of_4_db_are_accepted_on_every_key() {
    for (i, key) in KEYS.chars().enumerate() {
        assert_eq!(heard_with_levels(key, -8.0, -16.0, i as u64), key.to_string(), "{key} low 8 dB louder");
        assert_eq!(heard_with_levels(key, -14.0, -10.0, i as u64), key.to_string(), "{key} high 4 dB louder");
    }
}

#[test]
fn normal_twist_of_10_db_and_reverse_twist_of_6_db_are_rejected_on_every_key() {
    for (i, key) in KEYS.chars().enumerate() {
        assert_eq!(heard_with_levels(key, -8.0, -18.0, i as u64), "", "{key} low 10 dB louder");
        assert_eq!(heard_with_levels(key, -16.0, -10.0, i as u64), "", "{key} high 6 dB louder");
    }
}

#[test]
fn digits_are_detected_from_minus_3_to_minus_38_dbm0_per_tone() {
    for (i, key) in KEYS.chars().enumerate() {
        for level in [-3.0, -10.0, -20.0, -30.0, -35.0, -38.0] {
            assert_eq!(
                heard_with_levels(key, level, level, i as u64),
                key.to_string(),
                "{key} at {level} dBm0"
            );
        }
    }
}

#[test]
fn tones_at_minus_45_dbm0_are_below_the_floor() {
    for (i, key) in KEYS.chars().enumerate() {
        assert_eq!(heard_with_levels(key, -45.0, -45.0, i as u64), "", "{key} at -45 dBm0");
    }
}

#[test]
fn a_40_ms_tone_is_detected_wherever_it_falls_in_the_blocks() {
    let mut rng = SplitMix(40);
    for trial in 0..200 {
        let key = KEYS.chars().nth(trial % 16).unwrap();
        let (low, high) = nominal(key);
        let heard = digits(&detect(&single_key(&mut rng, (low, -15.0), (high, -13.0), 40)));
        assert_eq!(heard, key.to_string(), "trial {trial}");
    }
}

#[test]
fn bursts_of_20_ms_or_less_are_ignored_wherever_they_fall() {
    let mut rng = SplitMix(20);
    for trial in 0..300 {
        let key = KEYS.chars().nth(trial % 16).unwrap();
        let (low, high) = nominal(key);
        let burst_ms = [10, 15, 20][trial % 3];
        let heard = digits(&detect(&single_key(&mut rng, (low, -6.0), (high, -4.0), burst_ms)));
        assert_eq!(heard, "", "trial {trial}: {burst_ms} ms burst of {key}");
    }
}

#[test]
fn a_40_ms_pause_keeps_digits_apart_even_the_same_digit_repeated() {
    let mut rng = SplitMix(4040);
    for trial in 0..60 {
        let dial: String = (0..6).map(|_| KEYS.chars().nth(rng.below(16) as usize).unwrap()).collect();
        let dial = if trial % 3 == 0 { "5555##".to_string() } else { dial };
        let mut s = Signal::default();
        s.silence(rng.below(102) as usize);
        for key in dial.chars() {
            let (low, high) = nominal(key);
            s.pair((low, -8.0), (high, -6.0), ms(40), rng.unit() * TAU).silence(ms(40));
        }
        assert_eq!(digits(&detect(&s.pcm())), dial, "trial {trial}");
    }
}

#[test]
fn no_digit_is_missed_or_doubled_in_white_noise_at_15_db_snr() {
    let mut rng = SplitMix(15);
    let trials = 200;
    for trial in 0..trials {
        let key = KEYS.chars().nth(trial % 16).unwrap();
        let (low, high) = nominal(key);
        let level = -5.0 - rng.unit() * 20.0;
        let mut s = Signal::default();
        s.silence(ms(30) + rng.below(102) as usize)
            .pair((low, level), (high, level), ms(50), rng.unit() * TAU)
            .silence(ms(60));
        // Pair power: two sines of peak A carry A² together; noise 15 dB below over the band.
        let sigma = (peak(level).powi(2) / 10f64.powf(1.5)).sqrt();
        for v in &mut s.0 {
            *v += sigma * rng.gauss();
        }
        assert_eq!(digits(&detect(&s.pcm())), key.to_string(), "trial {trial} at {level:.1} dBm0");
    }
}

#[test]
fn digits_survive_an_a_law_or_mu_law_round_trip_across_the_level_range_and_twist() {
    let mut rng = SplitMix(711);
    let cases =
        [(-3.0, -3.0), (-20.0, -18.0), (-38.0, -38.0), (-10.0, -18.0), (-18.0, -14.0), (-36.0, -32.0)];
    for (name, codec) in [("A-law", alaw_round_trip as fn(&mut [i16])), ("mu-law", ulaw_round_trip)] {
        for key in KEYS.chars() {
            let (low, high) = nominal(key);
            for (low_dbm0, high_dbm0) in cases {
                let mut pcm = single_key(&mut rng, (low, low_dbm0), (high, high_dbm0), 45);
                codec(&mut pcm);
                let heard = digits(&detect(&pcm));
                assert_eq!(heard, key.to_string(), "{key} through {name}, {low_dbm0}/{high_dbm0} dBm0");
            }
        }
        let mut dialled = DtmfGenerator::generate(
            "0123456789*#ABCD",
            DtmfParams { on_ms: 40, off_ms: 40, ..Default::default() },
        )
        .unwrap();
        codec(&mut dialled);
        assert_eq!(digits(&detect(&dialled)), "0123456789*#ABCD", "fast dialling through {name}");
    }
}

#[test]
fn noise_alone_gives_no_digits() {
    let mut rng = SplitMix(99);
    let mut s = Signal::default();
    for _ in 0..ms(20_000) {
        s.0.push(peak(-15.0) * rng.gauss());
    }
    assert_eq!(digits(&detect(&s.pcm())), "");
}

#[test]
fn dial_tones_and_other_call_progress_tones_give_no_digits() {
    // (name, tones as (Hz, dBm0), on ms, off ms)
    type Plan = (&'static str, &'static [(f64, f64)], usize, usize);
    let plans: &[Plan] = &[
        ("Chinese dial tone 450 Hz", &[(450.0, -10.0)], 3000, 0),
        ("ITU dial tone 425 Hz", &[(425.0, -10.0)], 3000, 0),
        ("North American dial tone 350+440 Hz", &[(350.0, -13.0), (440.0, -13.0)], 3000, 0),
        ("Chinese busy 450 Hz 350/350", &[(450.0, -10.0)], 350, 350),
        ("North American busy 480+620 Hz", &[(480.0, -24.0), (620.0, -24.0)], 500, 500),
        ("North American ringback 440+480 Hz", &[(440.0, -19.0), (480.0, -19.0)], 2000, 4000),
        ("UK ringback 400+450 Hz", &[(400.0, -10.0), (450.0, -10.0)], 400, 200),
        ("Special information tone 950/1400/1800 Hz", &[(950.0, -10.0)], 330, 0),
        ("SIT 1400", &[(1400.0, -10.0)], 330, 0),
        ("SIT 1800", &[(1800.0, -10.0)], 330, 0),
        ("SIT 913.8 Hz", &[(913.8, -10.0)], 380, 0),
        ("SIT 1370.6 Hz", &[(1370.6, -10.0)], 380, 0),
        ("SIT 1776.7 Hz", &[(1776.7, -10.0)], 380, 0),
        ("Fax CNG 1100 Hz", &[(1100.0, -10.0)], 500, 3000),
        ("Answer tone CED 2100 Hz", &[(2100.0, -10.0)], 3000, 0),
        ("Loud 450 Hz with its harmonics", &[(450.0, -3.0), (900.0, -15.0), (1350.0, -20.0)], 3000, 0),
    ];
    for &(name, parts, on, off) in plans {
        let mut s = Signal::default();
        for _ in 0..3 {
            s.tones(parts, ms(on), 0.3).silence(ms(off));
        }
        assert_eq!(digits(&detect(&s.pcm())), "", "{name}");
    }
}

#[test]
fn reset_starts_counting_samples_again() {
    let pcm = DtmfGenerator::generate("7", DtmfParams::default()).unwrap();
    let mut detector = DtmfDetector::new();
    let mut events = Vec::new();
    detector.process(&pcm, &mut events);
    detector.process(&pcm, &mut events);
    detector.reset();
    let mut after = Vec::new();
    detector.process(&pcm, &mut after);
    assert_eq!(digits(&events), "77");
    assert_eq!(after.len(), 1);
    assert!(after[0].start <= 24 && after[0].end.abs_diff(800) <= 24, "{:?}", after[0]);
}

#[test]
fn a_recording_that_stops_mid_tone_still_reports_the_digit_on_finish() {
    let pcm =
        DtmfGenerator::generate("9", DtmfParams { on_ms: 80, off_ms: 0, ..Default::default() }).unwrap();
    let mut detector = DtmfDetector::new();
    let mut events = Vec::new();
    detector.process(&pcm, &mut events);
    assert!(events.is_empty());
    detector.finish(&mut events);
    assert_eq!(digits(&events), "9");
}
