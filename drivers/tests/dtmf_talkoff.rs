//! Talk-off: the DTMF detector must not hear digits in speech.
//!
//! The first test needs nothing installed: it reads the speech that ships with the repo
//! (`drivers/tests/data/talkoff-speech.wav`, about 50 s of English and Mandarin from ten
//! espeak-ng voices, 8 kHz A-law; `drivers/tests/data/make-talkoff-speech.sh` regenerates
//! it) and runs it through the detector at several levels, plain and after A-law and
//! mu-law. The second, `#[ignore]`d, synthesises minutes of speech with espeak-ng at test
//! time (13 voices, every passage each); `.ci/run` runs it after installing espeak-ng:
//! `cargo test -p hotline-drivers --test dtmf_talkoff -- --ignored`.

mod speech;

use hotline_drivers::dsp::dtmf::{DtmfDetector, DtmfGenerator, DtmfParams};
use hotline_drivers::dsp::g711::{alaw_round_trip, ulaw_round_trip};
use hotline_drivers::dsp::wav::{read_wav_file, SampleFormat};
use hotline_drivers::{FRAME_SAMPLES, SAMPLE_RATE};
use speech::{at_level, espeak_present, speak, ENGLISH, ENGLISH_VOICES, MANDARIN, MANDARIN_VOICES};

/// Active speech levels tried, dBm0 (-20 is nominal on a telephone line).
const LEVELS_DBM0: &[f64] = &[-30.0, -20.0, -10.0];

const SHIPPED_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/talkoff-speech.wav");

fn digits_in(pcm: &[i16]) -> Vec<(char, f64)> {
    let mut detector = DtmfDetector::new();
    let mut events = Vec::new();
    for frame in pcm.chunks(FRAME_SAMPLES) {
        detector.process(frame, &mut events);
    }
    detector.finish(&mut events);
    events.iter().map(|e| (e.digit, e.start as f64 / f64::from(SAMPLE_RATE))).collect()
}

#[test]
#[ignore = "needs espeak-ng; .ci/run runs it"]
fn minutes_of_english_and_mandarin_speech_give_no_digits_at_any_level_or_through_g711() {
    assert!(
        espeak_present(),
        "this test synthesises speech with espeak-ng: install it (apt-get install espeak-ng)"
    );
    let mut clips = Vec::new();
    for &(voice, wpm, pitch) in ENGLISH_VOICES {
        for text in ENGLISH {
            clips
                .push((format!("{voice} {wpm} wpm, \"{}...\"", &text[..24]), speak(voice, wpm, pitch, text)));
        }
    }
    for &(voice, wpm, pitch) in MANDARIN_VOICES {
        for text in MANDARIN {
            let head: String = text.chars().take(8).collect();
            clips.push((format!("{voice} {wpm} wpm, \"{head}...\""), speak(voice, wpm, pitch, text)));
        }
    }
    let seconds: f64 = clips.iter().map(|(_, pcm)| pcm.len() as f64).sum::<f64>() / f64::from(SAMPLE_RATE);
    assert!(seconds >= 180.0, "only {seconds:.0} s of speech synthesised");

    let mut hits = Vec::new();
    let mut heard_seconds = 0.0;
    for (name, speech) in &clips {
        heard_seconds += talk_off(name, speech, &mut hits);
    }
    eprintln!("talk-off: {seconds:.0} s of speech, {heard_seconds:.0} s heard in all, {} hits", hits.len());
    assert!(hits.is_empty(), "{} talk-off hits:\n{}", hits.len(), hits.join("\n"));
}

/// Runs `speech` through the detector at each level, linear and after A-law and mu-law;
/// notes every digit heard in `hits`. Returns the seconds of audio heard.
fn talk_off(name: &str, speech: &[i16], hits: &mut Vec<String>) -> f64 {
    let mut heard_seconds = 0.0;
    for &level in LEVELS_DBM0 {
        let plain = at_level(speech, level);
        let mut alaw = plain.clone();
        alaw_round_trip(&mut alaw);
        let mut ulaw = plain.clone();
        ulaw_round_trip(&mut ulaw);
        for (path, pcm) in [("linear", plain), ("A-law", alaw), ("mu-law", ulaw)] {
            heard_seconds += pcm.len() as f64 / f64::from(SAMPLE_RATE);
            for (digit, at) in digits_in(&pcm) {
                hits.push(format!("{digit} at {at:.2} s in {name} at {level} dBm0, {path}"));
            }
        }
    }
    heard_seconds
}

fn shipped_speech() -> Vec<i16> {
    let (spec, pcm) = read_wav_file(SHIPPED_FILE).unwrap_or_else(|e| panic!("{SHIPPED_FILE}: {e}"));
    assert_eq!((spec.sample_rate, spec.channels, spec.format), (SAMPLE_RATE, 1, SampleFormat::Alaw));
    pcm
}

#[test]
fn the_shipped_english_and_mandarin_speech_gives_no_digits_at_any_level_or_through_g711() {
    let speech = shipped_speech();
    let seconds = speech.len() as f64 / f64::from(SAMPLE_RATE);
    assert!(seconds >= 40.0, "{SHIPPED_FILE} holds only {seconds:.1} s of speech");
    let mut hits = Vec::new();
    let heard = talk_off("the shipped speech", &speech, &mut hits);
    eprintln!("talk-off: {seconds:.0} s of shipped speech, {heard:.0} s heard in all, {} hits", hits.len());
    assert!(hits.is_empty(), "{} talk-off hits:\n{}", hits.len(), hits.join("\n"));
}

/// The check above can fail: the same speech with real digits laid over it (tones at
/// -7 and -5 dBm0, 80 ms on, speech at -20 dBm0) gives exactly those digits.
#[test]
fn digits_laid_over_the_shipped_speech_are_heard() {
    let mut speech = at_level(&shipped_speech(), -20.0);
    let params = DtmfParams { on_ms: 80, off_ms: 0, low_dbm0: -7.0, high_dbm0: -5.0 };
    let digits = "159#";
    for (i, d) in digits.chars().enumerate() {
        let tone = DtmfGenerator::generate(&d.to_string(), params).expect("a digit");
        let at = (i + 1) * 8 * SAMPLE_RATE as usize;
        for (s, t) in speech[at..at + tone.len()].iter_mut().zip(&tone) {
            *s = s.saturating_add(*t);
        }
    }
    let heard: String = digits_in(&speech).iter().map(|(d, _)| *d).collect();
    assert_eq!(heard, digits);
}
