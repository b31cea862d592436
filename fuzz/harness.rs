//! What each fuzz target does with one input. Shared by the fuzz targets (`fuzz/`,
//! nightly) and by the stable test that replays the crashing inputs
//! (`tests/tests/p13_1_fuzz_regressions.rs`), so the replay runs exactly the fuzzed code.
//!
//! Each function must never panic or abort on any input; where the parser says what is
//! wrong, the harness also checks that it says where (file, line and column or offset).
#![allow(dead_code)]
// `cfg(fuzzing)` is set by cargo-fuzz; the stable replay test does not know it.
#![allow(unexpected_cfgs)]

use hotline_cti::install::check_installation;
use hotline_drivers::dsp::{callerid, resample, wav};
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
    if let Err(e) = hotline_drivers::config::parse(&t, ORIGIN) {
        for l in e.message().lines() {
            located(l);
        }
    }
    let engine = hotline_cti::Config::parse(&t, ORIGIN);
    if let Err(ps) = &engine {
        ps.iter().for_each(|p| located_at(&p.origin, p.line, p.column, &p.message));
    }
    if let Err(es) = hotline_recorder::config::RecordingConfig::parse(&t, ORIGIN) {
        es.iter().for_each(|p| located_at(&p.origin, p.line, p.column, &p.message));
    }
    if let Err(e) = hotline_cti::store::StoreConfig::from_toml(&t, std::path::Path::new(ORIGIN)) {
        located(&e);
    }
    if let Ok(engine) = &engine {
        if let Err(ps) = hotline_cti::link::LinkConfig::parse(&t, ORIGIN, engine) {
            ps.iter().for_each(|p| located_at(&p.origin, p.line, p.column, &p.message));
        }
    }
    if !t.contains("ivr") {
        for p in check_installation(&t, ORIGIN) {
            located_at(&p.origin, p.line, p.column, &p.message);
        }
    }
}

/// A problem that names the file, a line and column from 1, and says what is wrong.
fn located_at(origin: &str, line: usize, column: usize, message: &str) {
    assert!(
        origin == ORIGIN && line >= 1 && column >= 1 && !message.trim().is_empty(),
        "unlocated problem: {origin}:{line}:{column}: {message}"
    );
}

/// The same for a message given as text, "fuzz.toml:LINE:COL: MESSAGE".
fn located(text: &str) {
    let mut parts = text.splitn(4, ':');
    let (o, l, c, m) = (parts.next(), parts.next(), parts.next(), parts.next());
    let n = |s: Option<&str>| s.and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
    located_at(o.unwrap_or(""), n(l), n(c), m.unwrap_or(""));
}

/// A flow file, parsed and checked.
pub fn flow(data: &[u8]) {
    let Some(t) = text(data) else { return };
    match hotline_ivr::Flows::parse(&t, ORIGIN) {
        Ok(flows) => {
            for p in hotline_ivr::check::check(&flows, None) {
                located_at(&p.origin, p.line, p.column, &p.message);
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            problems.iter().for_each(|p| located_at(&p.origin, p.line, p.column, &p.message));
        }
    }
}

/// A prompt set's text file.
pub fn prompt_set(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if let Err(e) = hotline_ivr::PromptSet::parse(&t, ORIGIN, "prompts") {
        located(&e);
    }
}

/// A WAV file as `hotline prompt convert` and `hotline dsp` read it: parsed, mixed down
/// and resampled to 8 kHz.
pub fn wav(data: &[u8]) {
    match wav::read_wav(data) {
        Ok((spec, samples)) => {
            assert!(samples.len() <= data.len(), "more samples than bytes");
            // From a rate that shares few factors with 8000 Hz (383 993 Hz) the resampler's FFT
            // blocks are ~770 000 frames: a tenth of a second for a real file, but the
            // fuzzer would run a few inputs a second. It leaves those rates to the
            // regression corpus (rate_383993hz_coprime_with_8000.wav), which `cargo test` replays.
            let unit = spec.sample_rate / gcd(spec.sample_rate, hotline_drivers::SAMPLE_RATE);
            if cfg!(fuzzing) && unit > 4096 {
                return;
            }
            let card = resample::to_card_audio(&samples, spec.channels, spec.sample_rate)
                .expect("a WAV the reader accepts can be converted");
            let frames = samples.len() / usize::from(spec.channels);
            assert!(card.len() <= frames * 8 + 1, "resampling grew {frames} frames to {}", card.len());
        }
        Err(e) => assert!(e.offset().is_some(), "unlocated WAV error: {e}"),
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One line of the CTI link (TCP line or WebSocket message).
pub fn link_json(data: &[u8]) {
    let Ok(t) = std::str::from_utf8(data) else { return };
    let _ = hotline_cti::link::wire::parse_request(t);
}

/// Caller ID as it arrives on an analog line: an FSK message (type, length, data,
/// checksum) and, from the same bytes, DTMF caller ID digits. Errors say what is wrong.
pub fn caller_id(data: &[u8]) {
    if let Err(e) = callerid::decode_message(data) {
        assert!(e.to_string().contains("caller ID"), "unexplained caller ID error: {e}");
    }
    let digits: String = data.iter().map(|b| char::from(b"0123456789*#ABCD"[usize::from(b & 15)])).collect();
    let _ = callerid::parse_dtmf_caller_id(&digits);
}

/// A recording left as `.part` by a crash, as the recorder repairs it at startup: the
/// file is never made longer than it was, and what cannot be repaired is left as it
/// is with a problem that names the file.
pub fn recording_repair(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let base =
        if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
    let dir = base.join(format!(
        "hotline-fuzz-repair-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let part = dir.join("call.wav.part");
    std::fs::write(&part, data).expect("write .part");
    let r = hotline_recorder::repair::repair_file(&part);
    match &r.problem {
        None => {
            let len = std::fs::metadata(&r.path).expect("repaired file").len();
            assert!(len <= data.len() as u64, "repair grew the file from {} to {len} bytes", data.len());
            assert_eq!(r.cut_bytes, data.len() as u64 - len);
        }
        Some(p) => {
            assert!(p.starts_with(&part.display().to_string()), "{p}");
            assert_eq!(
                std::fs::read(&part).expect("the .part is left"),
                data,
                "a failed repair changed the file"
            );
        }
    }
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
}
