//! `hotline dsp dtmf|tones|callerid FILE`: what the card's detectors find in a recording.
//! Installers use these to debug a line from a capture.

use hotline_drivers::dsp::callerid::{self, CallerIdEvent, FskReceiver, FskStandard};
use hotline_drivers::dsp::dtmf::{DigitEvent, DtmfDetector};
use hotline_drivers::dsp::tones::{ToneDetector, ToneEvent, TonePlan};
use hotline_drivers::signal::CallerId;
use hotline_drivers::FRAME_SAMPLES;
use serde_json::json;

use crate::audio::{sample_time, Audio};
use crate::exit_codes::{CliError, CliResult};

/// Silence fed after the end of the file, so a digit or tone that runs to the end is
/// closed and reported.
const TAIL_SAMPLES: usize = 8 * FRAME_SAMPLES;

fn frames_with_tail(samples: &[i16]) -> impl Iterator<Item = &[i16]> {
    static SILENCE: [i16; TAIL_SAMPLES] = [0; TAIL_SAMPLES];
    samples.chunks(FRAME_SAMPLES).chain(SILENCE.chunks(FRAME_SAMPLES))
}

pub fn find_digits(samples: &[i16]) -> Vec<DigitEvent> {
    let mut detector = DtmfDetector::new();
    let mut events = Vec::new();
    for frame in samples.chunks(FRAME_SAMPLES) {
        detector.process(frame, &mut events);
    }
    // A digit still sounding when the recording ends is reported too.
    detector.finish(&mut events);
    events
}

pub fn dtmf(audio: &Audio, json_out: bool) -> CliResult<String> {
    let events = find_digits(&audio.samples);
    let digits: String = events.iter().map(|e| e.digit).collect();
    if json_out {
        let list: Vec<_> = events
            .iter()
            .map(|e| {
                json!({
                    "digit": e.digit.to_string(),
                    "start_ms": sample_time(e.start).as_millis(),
                    "end_ms": sample_time(e.end).as_millis(),
                })
            })
            .collect();
        return Ok(json!({ "digits": digits, "events": list }).to_string());
    }
    let mut out = format!("{} ({:.2} s)\n", audio.description, audio.samples.len() as f64 / 8000.0);
    out.push_str("start         end           digit\n");
    for e in &events {
        out.push_str(&format!("{}  {}  {}\n", sample_time(e.start), sample_time(e.end), e.digit));
    }
    out.push_str(&format!("digits: {}\n", if digits.is_empty() { "(none)" } else { &digits }));
    Ok(out)
}

pub fn tones(audio: &Audio, plan_name: &str, json_out: bool) -> CliResult<String> {
    let plan = TonePlan::by_name(plan_name).map_err(|e| CliError::input(e.to_string()))?;
    let mut detector = ToneDetector::new(&plan);
    let mut events: Vec<ToneEvent> = Vec::new();
    for frame in frames_with_tail(&audio.samples) {
        detector.process(frame, &mut events);
    }
    if json_out {
        let list: Vec<_> = events
            .iter()
            .map(|e| json!({ "tone": e.tone.name(), "at_ms": sample_time(e.at).as_millis() }))
            .collect();
        return Ok(json!({ "plan": plan.name, "events": list }).to_string());
    }
    let mut out = format!(
        "{} ({:.2} s), tone plan {}\n",
        audio.description,
        audio.samples.len() as f64 / 8000.0,
        plan.name
    );
    out.push_str("recognised at  tone\n");
    for e in &events {
        out.push_str(&format!("{}   {}\n", sample_time(e.at), e.tone));
    }
    if events.is_empty() {
        out.push_str("(no tones recognised)\n");
    }
    Ok(out)
}

/// One caller ID found in a recording, and how it was sent.
struct Found {
    at: u64,
    how: &'static str,
    result: Result<CallerId, String>,
}

pub fn callerid(audio: &Audio, json_out: bool) -> CliResult<String> {
    let mut found = Vec::new();
    for (standard, how) in [(FskStandard::Bell202, "FSK Bell 202"), (FskStandard::V23, "FSK V.23")] {
        let mut rx = FskReceiver::new(standard);
        let mut events: Vec<CallerIdEvent> = Vec::new();
        for frame in frames_with_tail(&audio.samples) {
            rx.process(frame, &mut events);
        }
        found.extend(events.into_iter().map(|e| Found {
            at: e.at,
            how,
            result: e.result.map_err(|e| e.to_string()),
        }));
    }
    // DTMF caller ID: a run of digits that starts with A or D and ends with C.
    let digits = find_digits(&audio.samples);
    let mut run = String::new();
    let mut run_start = 0;
    for e in &digits {
        if e.digit == 'A' || e.digit == 'D' {
            run.clear();
            run_start = e.start;
        }
        run.push(e.digit);
        if e.digit == 'C' && (run.starts_with('A') || run.starts_with('D')) {
            let result = callerid::parse_dtmf_caller_id(&run).map_err(|e| e.to_string());
            found.push(Found { at: run_start, how: "DTMF", result });
            run.clear();
        }
    }
    found.sort_by_key(|f| f.at);
    if json_out {
        let list: Vec<_> = found
            .iter()
            .map(|f| match &f.result {
                Ok(cid) => {
                    json!({ "at_ms": sample_time(f.at).as_millis(), "signalling": f.how, "caller_id": cid })
                }
                Err(e) => json!({ "at_ms": sample_time(f.at).as_millis(), "signalling": f.how, "error": e }),
            })
            .collect();
        return Ok(json!({ "messages": list }).to_string());
    }
    let mut out = format!("{} ({:.2} s)\n", audio.description, audio.samples.len() as f64 / 8000.0);
    for f in &found {
        match &f.result {
            Ok(cid) => out.push_str(&format!("{}  {}  {}\n", sample_time(f.at), f.how, describe(cid))),
            Err(e) => out.push_str(&format!("{}  {}  bad message: {e}\n", sample_time(f.at), f.how)),
        }
    }
    if found.is_empty() {
        out.push_str("(no caller ID found: neither FSK Bell 202, FSK V.23 nor DTMF)\n");
    }
    Ok(out)
}

fn describe(cid: &CallerId) -> String {
    let mut parts = Vec::new();
    match (&cid.number, cid.absence) {
        (Some(n), _) => parts.push(format!("number {n}")),
        (None, Some(a)) => parts.push(format!("number absent ({a:?})").to_lowercase()),
        (None, None) => {}
    }
    if let Some(name) = &cid.name {
        parts.push(format!("name {name:?}"));
    }
    if let Some((mo, d, h, mi)) = cid.time {
        parts.push(format!("time {mo:02}-{d:02} {h:02}:{mi:02}"));
    }
    parts.join(", ")
}
