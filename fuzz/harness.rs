//! What each fuzz target does with one input. Shared by the fuzz targets (`fuzz/`,
//! nightly) and by the stable test that replays the crashing inputs
//! (`tests/tests/p13_1_fuzz_regressions.rs`), so the replay runs exactly the fuzzed code.
//!
//! Each function must never panic or abort on any input; where the parser says what is
//! wrong, the harness also checks that it says where (file, line and column or offset).
#![allow(dead_code)]

use hotline_cti::install::check_installation;
use hotline_drivers::dsp::{resample, wav};
use hotline_drivers::text::decode;

const ORIGIN: &str = "fuzz.toml";

/// Text as every text parser gets it: invalid UTF-8 is an error located by line and
/// column.
fn text(data: &[u8]) -> Option<String> {
    match decode(data.to_vec(), ORIGIN) {
        Ok(t) => Some(t),
        Err(e) => {
            assert!(e.starts_with("fuzz.toml:") && e.contains("byte offset"), "unlocated UTF-8 error: {e}");
            None
        }
    }
}

/// The installation file: cards and simulator, the engine's tables, [recording],
/// [store], [link] and `hotline config check`'s view of them all. `[ivr]` names flow
/// files on disk, so a file that mentions it is checked without the IVR part.
pub fn config(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let _ = hotline_drivers::config::parse(&t, ORIGIN);
    let engine = hotline_cti::Config::parse(&t, ORIGIN);
    let _ = hotline_recorder::config::RecordingConfig::parse(&t, ORIGIN);
    let _ = hotline_cti::store::StoreConfig::from_toml(&t, std::path::Path::new(ORIGIN));
    if let Ok(engine) = &engine {
        let _ = hotline_cti::link::LinkConfig::parse(&t, ORIGIN, engine);
    }
    if !t.contains("ivr") {
        for p in check_installation(&t, ORIGIN) {
            assert_eq!(p.origin, ORIGIN, "{p}");
        }
    }
}

/// A flow file, parsed and checked.
pub fn flow(data: &[u8]) {
    let Some(t) = text(data) else { return };
    match hotline_ivr::Flows::parse(&t, ORIGIN) {
        Ok(flows) => {
            let _ = hotline_ivr::check::check(&flows, None);
        }
        Err(problems) => assert!(!problems.is_empty()),
    }
}

/// A prompt set's text file.
pub fn prompt_set(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if let Err(e) = hotline_ivr::PromptSet::parse(&t, ORIGIN, "prompts") {
        assert!(e.starts_with("fuzz.toml:"), "{e}");
    }
}

/// A WAV file as `hotline prompt convert` and `hotline dsp` read it: parsed, mixed down
/// and resampled to 8 kHz.
pub fn wav(data: &[u8]) {
    match wav::read_wav(data) {
        Ok((spec, samples)) => {
            assert!(samples.len() <= data.len(), "more samples than bytes");
            let card = resample::to_card_audio(&samples, spec.channels, spec.sample_rate)
                .expect("a WAV the reader accepts can be converted");
            let frames = samples.len() / usize::from(spec.channels);
            assert!(card.len() <= frames * 8 + 1, "resampling grew {frames} frames to {}", card.len());
        }
        Err(e) => assert!(e.offset().is_some(), "unlocated WAV error: {e}"),
    }
}

/// One line of the CTI link (TCP line or WebSocket message).
pub fn link_json(data: &[u8]) {
    let Ok(t) = std::str::from_utf8(data) else { return };
    let _ = hotline_cti::link::wire::parse_request(t);
}
