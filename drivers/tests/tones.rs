//! Call-progress tones: every tone of every plan is generated and recognised as itself,
//! through G.711, noise, timing and frequency errors; nothing is recognised from what is
//! not a tone; plans load from TOML and bad ones are refused with the field named.

use hotline_drivers::dsp::g711::{alaw_round_trip, ulaw_round_trip};
use hotline_drivers::dsp::tones::{ToneDetector, ToneEvent, ToneGenerator, TonePlan, ToneSpec};
use hotline_drivers::signal::Tone;
use hotline_drivers::ErrorKind;

const RATE: usize = 8000;

/// xorshift64* with Box-Muller: seeded white Gaussian noise.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((r >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn plans() -> Vec<TonePlan> {
    vec![TonePlan::china(), TonePlan::itu(), TonePlan::north_america(), TonePlan::uk()]
}

/// Long enough to confirm any tone: two and a bit cycles, or 4 s.
fn seconds_for(spec: &ToneSpec) -> f64 {
    let period: u32 = spec.cadence.iter().sum();
    (2.2 * period as f64 / 1000.0 + 1.0).max(4.0)
}

fn render(spec: &ToneSpec, seconds: f64) -> Vec<i16> {
    let mut out = vec![0i16; (seconds * RATE as f64) as usize];
    let mut g = ToneGenerator::new(spec);
    for frame in out.chunks_mut(160) {
        g.fill(frame);
    }
    out
}

/// Mean power of the tone while it sounds.
fn on_power(spec: &ToneSpec) -> f64 {
    let a = 22_706.0 * 10f64.powf(spec.level_dbm0 as f64 / 20.0);
    spec.freqs.len() as f64 * a * a / 2.0
}

fn add_noise(samples: &mut [i16], spec: &ToneSpec, snr_db: f64, seed: u64) {
    let sigma = (on_power(spec) / 10f64.powf(snr_db / 10.0)).sqrt();
    let mut noise = Noise(seed);
    for s in samples {
        *s = (*s as f64 + sigma * noise.gaussian()).round().clamp(-32768.0, 32767.0) as i16;
    }
}

fn detect_in_chunks(plan: &TonePlan, samples: &[i16], chunk: usize) -> Vec<ToneEvent> {
    let mut d = ToneDetector::new(plan);
    let mut events = Vec::new();
    for c in samples.chunks(chunk) {
        d.process(c, &mut events);
    }
    events
}

fn detect(plan: &TonePlan, samples: &[i16]) -> Vec<ToneEvent> {
    detect_in_chunks(plan, samples, 160)
}

/// Runs `make` for every tone of every plan and checks the tone, and only it, is heard.
fn each_tone_is_recognised(what: &str, make: impl Fn(&TonePlan, Tone, &ToneSpec) -> Vec<i16>) {
    for plan in plans() {
        for tone in Tone::ALL {
            let spec = plan.spec(tone);
            let samples = make(&plan, tone, &spec);
            let events = detect(&plan, &samples);
            let tones: Vec<Tone> = events.iter().map(|e| e.tone).collect();
            assert_eq!(tones, vec![tone], "{what}: plan {}, {tone}: heard {events:?}", plan.name);
        }
    }
}

fn scaled_cadence(spec: &ToneSpec, factor: f64) -> ToneSpec {
    let mut s = spec.clone();
    s.cadence = s.cadence.iter().map(|&d| (d as f64 * factor).round() as u32).collect();
    s
}

fn shifted(spec: &ToneSpec, factor: f32) -> ToneSpec {
    let mut s = spec.clone();
    s.freqs = s.freqs.iter().map(|&f| f * factor).collect();
    s
}

#[test]
fn every_tone_of_every_plan_is_recognised_as_itself() {
    each_tone_is_recognised("clean", |_, _, spec| render(spec, seconds_for(spec)));
}

#[test]
fn tones_are_recognised_whatever_the_chunk_size() {
    for plan in plans() {
        for tone in [Tone::Dial, Tone::Busy, Tone::Congestion] {
            let spec = plan.spec(tone);
            let samples = render(&spec, seconds_for(&spec));
            let whole = detect(&plan, &samples);
            for chunk in [1, 37, 80, 1000, samples.len()] {
                assert_eq!(detect_in_chunks(&plan, &samples, chunk), whole, "chunks of {chunk}");
            }
        }
    }
}

#[test]
fn a_tone_already_playing_when_listening_starts_is_recognised() {
    for plan in plans() {
        for tone in Tone::ALL {
            let spec = plan.spec(tone);
            let samples = render(&spec, seconds_for(&spec) + 1.0);
            // Join at an odd moment, inside the first burst.
            let join = (spec.cadence.first().copied().unwrap_or(500) as usize * RATE) / 1000 / 3 + 7;
            let tones: Vec<Tone> = detect(&plan, &samples[join..]).iter().map(|e| e.tone).collect();
            assert_eq!(tones, vec![tone], "plan {}, joined {tone} at sample {join}", plan.name);
        }
    }
}

#[test]
fn tones_survive_an_alaw_round_trip() {
    each_tone_is_recognised("A-law", |_, _, spec| {
        let mut s = render(spec, seconds_for(spec));
        alaw_round_trip(&mut s);
        s
    });
}

#[test]
fn tones_survive_a_mulaw_round_trip() {
    each_tone_is_recognised("mu-law", |_, _, spec| {
        let mut s = render(spec, seconds_for(spec));
        ulaw_round_trip(&mut s);
        s
    });
}

#[test]
fn tones_are_recognised_in_white_noise_at_15_db_snr() {
    each_tone_is_recognised("15 dB S/N", |_, tone, spec| {
        let mut s = render(spec, seconds_for(spec));
        add_noise(&mut s, spec, 15.0, 0x5EED ^ tone as u64);
        s
    });
}

#[test]
fn tones_are_recognised_with_noise_after_alaw() {
    each_tone_is_recognised("18 dB S/N then A-law", |_, tone, spec| {
        let mut s = render(spec, seconds_for(spec));
        add_noise(&mut s, spec, 18.0, 0xA1A1 ^ tone as u64);
        alaw_round_trip(&mut s);
        s
    });
}

#[test]
fn cadences_ten_percent_fast_or_slow_are_accepted() {
    for factor in [0.9, 1.1] {
        each_tone_is_recognised(&format!("cadence x{factor}"), |_, _, spec| {
            let spec = scaled_cadence(spec, factor);
            render(&spec, seconds_for(&spec))
        });
    }
}

#[test]
fn frequencies_off_by_one_and_a_half_percent_are_accepted() {
    for factor in [0.985, 1.015] {
        each_tone_is_recognised(&format!("frequency x{factor}"), |_, _, spec| {
            render(&shifted(spec, factor), seconds_for(spec))
        });
    }
}

#[test]
fn silence_gives_nothing() {
    for plan in plans() {
        assert_eq!(detect(&plan, &vec![0i16; 10 * RATE]), vec![]);
    }
}

#[test]
fn white_noise_gives_nothing() {
    for (i, plan) in plans().into_iter().enumerate() {
        for level in [-40.0, -20.0, -10.0] {
            let mut s = vec![0i16; 10 * RATE];
            // Noise as loud as a tone at `level` dBm0 would be.
            add_noise(&mut s, &ToneSpec::continuous(&[1000.0], level), 0.0, 77 + i as u64);
            assert_eq!(detect(&plan, &s), vec![], "plan {}, noise at {level} dBm0", plan.name);
        }
    }
}

#[test]
fn dtmf_like_dual_tones_give_nothing() {
    // Digit bursts (697+1209, 941+1336, 770+1477 Hz) at call-progress cadences, and held.
    for plan in plans() {
        for pair in [[697.0, 1209.0], [941.0, 1336.0], [770.0, 1477.0]] {
            for cadence in [vec![100, 100], vec![350, 350], vec![]] {
                let spec = ToneSpec::cadenced(&pair, -10.0, &cadence);
                let s = render(&spec, 6.0);
                assert_eq!(detect(&plan, &s), vec![], "plan {}, {pair:?} {cadence:?}", plan.name);
            }
        }
    }
}

#[test]
fn a_tone_of_the_wrong_frequency_gives_nothing() {
    for plan in plans() {
        for freq in [1000.0, 600.0, 500.0, 300.0] {
            for cadence in [vec![], vec![350, 350], vec![1000, 4000]] {
                let spec = ToneSpec::cadenced(&[freq], -10.0, &cadence);
                let s = render(&spec, 8.0);
                assert_eq!(detect(&plan, &s), vec![], "plan {}, {freq} Hz", plan.name);
            }
        }
    }
}

/// Speech from espeak-ng (Debian package espeak-ng), resampled to 8 kHz.
fn speech(voice: &str, pitch: u32, text: &str) -> Vec<i16> {
    let out = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-p", &pitch.to_string(), "-s", "150", "--stdout", text])
        .output()
        .expect("espeak-ng makes the test speech: apt-get install espeak-ng");
    assert!(out.status.success(), "espeak-ng failed: {}", String::from_utf8_lossy(&out.stderr));
    let (spec, samples) = hotline_drivers::dsp::wav::read_wav(&out.stdout).unwrap();
    let mono = hotline_drivers::dsp::resample::to_mono(&samples, spec.channels);
    hotline_drivers::dsp::resample::resample(&mono, spec.sample_rate, RATE as u32).unwrap()
}

/// The speech that ships with the repo for the DTMF talk-off test (English and Mandarin,
/// 8 kHz A-law; `drivers/tests/data/make-talkoff-speech.sh` regenerates it).
fn shipped_speech() -> Vec<i16> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/talkoff-speech.wav");
    let (spec, pcm) =
        hotline_drivers::dsp::wav::read_wav_file(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(spec.sample_rate as usize, RATE, "{path}");
    pcm
}

#[test]
fn the_shipped_speech_gives_nothing() {
    let mut s = shipped_speech();
    assert!(s.len() > 40 * RATE, "only {} s of speech", s.len() / RATE);
    for plan in plans() {
        assert_eq!(detect(&plan, &s), vec![], "plan {}", plan.name);
    }
    for level in [-12.0f64, 6.0] {
        let gain = 10f64.powf(level / 20.0);
        let scaled: Vec<i16> =
            s.iter().map(|&x| (f64::from(x) * gain).clamp(-32768.0, 32767.0) as i16).collect();
        for plan in plans() {
            assert_eq!(detect(&plan, &scaled), vec![], "plan {}, {level:+} dB", plan.name);
        }
    }
    alaw_round_trip(&mut s);
    assert_eq!(detect(&TonePlan::china(), &s), vec![], "A-law");
}

#[test]
#[ignore = "needs espeak-ng (apt-get install espeak-ng); .ci/run runs it"]
fn a_minute_of_speech_from_espeak_ng_gives_nothing() {
    let english = "Thank you for calling. All of our agents are busy at the moment. \
        Please hold the line, and your call will be answered in the order it was received. \
        Oh, hello? Yes, I was calling about my order, number four five zero, placed on Monday. \
        Hmm. Mmm. Ooooh, aaaah, eeeee. It is ringing and ringing, nobody answers the phone.";
    let chinese = "您好，欢迎致电客户服务中心。所有座席都在忙，请稍候。您的电话对我们很重要。";
    let mut total = 0;
    for (voice, pitch, text) in
        [("en", 30, english), ("en+f3", 70, english), ("cmn", 50, chinese), ("en", 99, english)]
    {
        let mut s = speech(voice, pitch, text);
        total += s.len();
        for plan in plans() {
            assert_eq!(detect(&plan, &s), vec![], "plan {}, voice {voice} pitch {pitch}", plan.name);
        }
        alaw_round_trip(&mut s);
        assert_eq!(detect(&TonePlan::china(), &s), vec![], "A-law, voice {voice}");
    }
    assert!(total > 60 * RATE, "only {} s of speech", total / RATE);
}

#[test]
fn a_vowel_like_harmonic_buzz_gives_nothing() {
    // A voice-like source: harmonics of a pitch gliding 100-180 Hz (so 450 Hz is crossed by
    // the 3rd and 4th harmonics), amplitude falling as 1/k, pulsed like syllables.
    for plan in plans() {
        let mut s = vec![0i16; 8 * RATE];
        let mut phase = 0f64;
        for (n, v) in s.iter_mut().enumerate() {
            let t = n as f64 / RATE as f64;
            let pitch = 140.0 + 40.0 * (std::f64::consts::TAU * 0.3 * t).sin();
            phase += std::f64::consts::TAU * pitch / RATE as f64;
            let syllable = if (t * 4.0).fract() < 0.7 { 1.0 } else { 0.0 };
            let buzz: f64 = (1..=20).map(|k| (k as f64 * phase).sin() / k as f64).sum();
            *v = (3000.0 * syllable * buzz) as i16;
        }
        assert_eq!(detect(&plan, &s), vec![], "plan {}", plan.name);
    }
}

#[test]
fn tones_are_recognised_from_0_to_minus_36_dbm0_but_not_at_minus_48() {
    for plan in plans() {
        for tone in [Tone::Dial, Tone::Busy] {
            for (level, heard) in [(0.0, true), (-20.0, true), (-36.0, true), (-48.0, false)] {
                let mut spec = plan.spec(tone);
                spec.level_dbm0 = level;
                let events = detect(&plan, &render(&spec, seconds_for(&spec)));
                assert_eq!(!events.is_empty(), heard, "{} {tone} at {level}: {events:?}", plan.name);
            }
        }
    }
}

#[test]
fn dual_tones_with_up_to_5_db_of_twist_are_recognised_but_not_one_half_alone() {
    let plan = TonePlan::north_america();
    let mix = |tone: Tone, twist_db: f32| {
        let spec = plan.spec(tone);
        let loud = ToneSpec { freqs: vec![spec.freqs[0]], ..spec.clone() };
        let soft =
            ToneSpec { freqs: vec![spec.freqs[1]], level_dbm0: spec.level_dbm0 - twist_db, ..spec.clone() };
        let secs = seconds_for(&spec);
        let (a, b) = (render(&loud, secs), render(&soft, secs));
        let s: Vec<i16> = a.iter().zip(&b).map(|(&x, &y)| x.saturating_add(y)).collect();
        detect(&plan, &s).iter().map(|e| e.tone).collect::<Vec<_>>()
    };
    for tone in [Tone::Dial, Tone::Busy, Tone::Ringback, Tone::Congestion] {
        for twist in [-5.0, 5.0] {
            assert_eq!(mix(tone, twist), vec![tone], "{tone} with {twist} dB twist");
        }
        // With one half 20 dB down it is a single tone, not this one.
        assert!(!mix(tone, 20.0).contains(&tone), "{tone} with one half missing");
    }
}

#[test]
fn a_steady_tone_between_the_two_of_a_close_pair_is_not_the_pair() {
    // 460 Hz sits between North America's 440+480 ringback; 425 Hz between the UK's 400+450.
    for (plan, freq) in [(TonePlan::north_america(), 460.0), (TonePlan::uk(), 425.0), (TonePlan::uk(), 428.0)]
    {
        for cadence in [plan.ringback.cadence.clone(), vec![]] {
            let spec = ToneSpec::cadenced(&[freq], -15.0, &cadence);
            let mut s = render(&spec, 14.0);
            add_noise(&mut s, &spec, 20.0, 9);
            assert_eq!(detect(&plan, &s), vec![], "plan {}, {freq} Hz {cadence:?}", plan.name);
        }
    }
}

#[test]
fn busy_is_not_taken_for_congestion_nor_congestion_for_busy() {
    for plan in plans() {
        for (played, other) in [(Tone::Busy, Tone::Congestion), (Tone::Congestion, Tone::Busy)] {
            for factor in [0.9, 1.0, 1.1] {
                let spec = scaled_cadence(&plan.spec(played), factor);
                let events = detect(&plan, &render(&spec, 20.0));
                assert!(events.iter().all(|e| e.tone != other), "{}: {events:?}", plan.name);
                assert_eq!(events.len(), 1, "{} {played} reported once: {events:?}", plan.name);
            }
        }
    }
}

#[test]
fn dial_tone_is_not_ringback_and_ringback_is_not_dial_tone() {
    for plan in plans() {
        let dial = detect(&plan, &render(&plan.dial, 20.0));
        assert_eq!(dial.iter().map(|e| e.tone).collect::<Vec<_>>(), vec![Tone::Dial]);
        let ringback = detect(&plan, &render(&plan.ringback, 30.0));
        assert_eq!(ringback.iter().map(|e| e.tone).collect::<Vec<_>>(), vec![Tone::Ringback]);
    }
}

#[test]
fn tones_are_recognised_promptly() {
    let plan = TonePlan::china();
    // Seconds from the start of the tone (after half a second of silence) to its event.
    let after = |tone| {
        let spec = plan.spec(tone);
        let mut s = vec![0i16; RATE / 2];
        s.extend(render(&spec, seconds_for(&spec)));
        let e = detect(&plan, &s);
        e[0].at as f64 / RATE as f64 - 0.5
    };
    // Dial waits out ringback's 1 s burst; busy takes two cycles; ringback one.
    let dial = after(Tone::Dial);
    assert!((1.0..=1.5).contains(&dial), "dial after {dial} s");
    let busy = after(Tone::Busy);
    assert!((1.3..=1.6).contains(&busy), "busy after {busy} s");
    let congestion = after(Tone::Congestion);
    assert!((1.3..=1.6).contains(&congestion), "congestion after {congestion} s");
    let ringback = after(Tone::Ringback);
    assert!((5.0..=5.3).contains(&ringback), "ringback after {ringback} s");
    let ced = after(Tone::FaxCed);
    assert!((0.5..=1.0).contains(&ced), "CED after {ced} s");
}

#[test]
fn fax_calling_and_answer_tones_are_recognised_under_every_plan() {
    for plan in plans() {
        let mut s = render(&plan.spec(Tone::FaxCng), 8.0);
        s.extend(vec![0; RATE]);
        s.extend(render(&plan.spec(Tone::FaxCed), 3.3));
        let tones: Vec<Tone> = detect(&plan, &s).iter().map(|e| e.tone).collect();
        assert_eq!(tones, vec![Tone::FaxCng, Tone::FaxCed], "plan {}", plan.name);
    }
}

#[test]
fn a_tone_is_reported_once_and_again_only_after_it_stopped_and_came_back() {
    let plan = TonePlan::china();
    let mut s = render(&plan.busy, 10.0);
    s.extend(vec![0; 3 * RATE]);
    s.extend(render(&plan.busy, 3.0));
    s.extend(render(&plan.dial, 5.0));
    let events = detect(&plan, &s);
    let tones: Vec<Tone> = events.iter().map(|e| e.tone).collect();
    assert_eq!(tones, vec![Tone::Busy, Tone::Busy, Tone::Dial], "{events:?}");
    assert!(events[1].at > 13 * RATE as u64 && events[2].at > 16 * RATE as u64);
}

#[test]
fn reset_forgets_what_was_heard() {
    let plan = TonePlan::china();
    let mut d = ToneDetector::new(&plan);
    let mut events = Vec::new();
    let dial = render(&plan.dial, 3.0);
    d.process(&dial, &mut events);
    assert_eq!(events.len(), 1);
    d.reset();
    d.process(&dial[..RATE / 2], &mut events);
    assert_eq!(events.len(), 1, "half a second after reset is not yet dial tone");
    d.process(&dial[RATE / 2..], &mut events);
    assert_eq!(events[1], ToneEvent { tone: Tone::Dial, at: events[1].at });
    assert!(events[1].at < 3 * RATE as u64, "sample index counts from the reset");
}

#[test]
fn a_custom_plan_from_toml_is_parsed_and_its_tones_recognised() {
    let text = r#"
        name = "pabx"
        [dial]
        freqs = [400]
        [busy]
        freqs = [400]
        level_dbm0 = -20
        cadence = [250, 250]
        [ringback]
        freqs = [400, 450]
        cadence = [400, 200, 400, 2000]
        [congestion]
        freqs = [400]
        cadence = [500, 500]
        [call_waiting]
        freqs = [1400]
        level_dbm0 = -15
        cadence = [150, 5000]
    "#;
    let plan = TonePlan::from_toml(text).unwrap();
    assert_eq!(plan.name, "pabx");
    assert_eq!(plan.busy, ToneSpec::cadenced(&[400.0], -20.0, &[250, 250]));
    assert_eq!(plan.dial.level_dbm0, -10.0, "level defaults to -10 dBm0");
    for tone in Tone::ALL {
        let spec = plan.spec(tone);
        let tones: Vec<Tone> =
            detect(&plan, &render(&spec, seconds_for(&spec))).iter().map(|e| e.tone).collect();
        assert_eq!(tones, vec![tone]);
    }
    // And a plan written out reads back the same.
    for plan in plans() {
        assert_eq!(TonePlan::from_toml(&plan.to_toml()).unwrap(), plan);
    }
}

#[test]
fn a_malformed_plan_is_refused_with_the_field_named() {
    let good = TonePlan::china().to_toml();
    let cases = [
        (good.replace("[busy]", "[busy]\ncadance = [1, 2]"), "cadance"),
        (good.replacen("cadence = [350, 350]", "cadence = [350]", 1), "cadence"),
        (good.replacen("cadence = [350, 350]", "cadence = [350, 10]", 1), "cadence"),
        (good.replacen("freqs = [450.0]", "freqs = []", 1), "freqs"),
        (good.replacen("freqs = [450.0]", "freqs = [5000.0]", 1), "freqs"),
        (good.replacen("freqs = [450.0]", "freqs = \"450\"", 1), "freqs"),
        (good.replacen("level_dbm0 = -10.0", "level_dbm0 = 40.0", 1), "level_dbm0"),
        (good.replace("[call_waiting]", "[call_wait]"), "call_waiting"),
    ];
    for (text, field) in cases {
        assert_ne!(text, good, "case for {field} changed nothing");
        let err = TonePlan::from_toml(&text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains(field), "{field} not named in: {err}");
        assert!(err.message().contains("line"), "no line in: {err}");
    }
    // A table already read from a larger file, as the installation file holds it.
    let table: toml::Table = toml::from_str(&good.replace("name = \"china\"\n", "")).unwrap();
    assert_eq!(TonePlan::from_table(&table).unwrap().name, "custom");
    let mut bad = table.clone();
    bad["ringback"].as_table_mut().unwrap().insert("cadence".into(), toml::Value::Array(vec![]));
    bad["ringback"].as_table_mut().unwrap().insert("freqs".into(), toml::Value::Array(vec![]));
    let err = TonePlan::from_table(&bad).unwrap_err();
    assert!(err.message().contains("freqs") && err.message().contains("ringback"), "{err}");
    let mut plan = TonePlan::uk();
    plan.busy.freqs.clear();
    let err = plan.validate().unwrap_err();
    assert!(err.message().contains("busy.freqs"), "{err}");
}

#[test]
fn plans_are_found_by_name_and_an_unknown_name_lists_the_known_ones() {
    assert_eq!(TonePlan::by_name("china").unwrap(), TonePlan::china());
    assert_eq!(TonePlan::by_name("North-America").unwrap(), TonePlan::north_america());
    assert_eq!(TonePlan::default(), TonePlan::china());
    for name in TonePlan::NAMES {
        let plan = TonePlan::by_name(name).unwrap();
        assert_eq!(plan.name, name);
        plan.validate().unwrap();
    }
    let err = TonePlan::by_name("atlantis").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("atlantis"));
    for name in TonePlan::NAMES {
        assert!(err.message().contains(name), "{err}");
    }
}

#[test]
fn the_generator_plays_the_level_frequency_and_cadence_asked_for() {
    // 0 dBm0 at 1 kHz: peak 22 706 and a thousand cycles a second.
    let s = render(&ToneSpec::continuous(&[1000.0], 0.0), 1.0);
    let peak = s.iter().map(|&v| (v as i32).abs()).max().unwrap();
    assert!((22_690..=22_707).contains(&peak), "peak {peak}");
    let rising = s.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    assert!((999..=1001).contains(&rising), "{rising} cycles in 1 s");
    // China busy: 0.35 s on, 0.35 s off.
    let s = render(&TonePlan::china().busy, 1.4);
    let on = |from: f64, to: f64| s[(from * 8000.0) as usize..(to * 8000.0) as usize].iter().any(|&v| v != 0);
    assert!(on(0.0, 0.35) && !on(0.351, 0.699) && on(0.7, 1.05) && !on(1.051, 1.399));
}

#[test]
fn the_generator_keeps_its_phase_across_calls() {
    let spec = TonePlan::north_america().ringback;
    let whole = render(&spec, 3.0);
    let mut g = ToneGenerator::for_tone(&TonePlan::north_america(), Tone::Ringback);
    let mut pieces = vec![0i16; whole.len()];
    let mut at = 0;
    for n in [1usize, 7, 160, 333, 5000].iter().cycle() {
        if at >= pieces.len() {
            break;
        }
        let end = (at + n).min(pieces.len());
        g.fill(&mut pieces[at..end]);
        at = end;
    }
    let diff = whole.iter().zip(&pieces).map(|(a, b)| (a - b).abs()).max().unwrap();
    assert!(diff <= 1, "pieces differ from one fill by {diff}");
}
