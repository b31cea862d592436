//! DTMF caller ID: the calling number sent as DTMF digits before the first ring, as in
//! China, Denmark, the Netherlands, Sweden and others (the DTMF alternative to FSK that
//! ETSI's on-hook data transmission documents allow).
//!
//! The variant here is the Danish one (TDC's CLIP specification): `A` + number + `C`
//! for a number; `D` + one code digit + `C` when it is absent: `D1` the caller
//! restricted presentation (private), `D2` the call is international and `D3` the
//! number is unavailable for technical reasons (both read as unavailable; `D3` is
//! sent). Some exchanges end with `#` instead of `C`; both are accepted when parsing.
//! Date, time and name are not carried.

use super::fsk::CallerIdEvent;
use crate::dsp::dtmf::{DigitEvent, DtmfDetector, DtmfGenerator, DtmfParams};
use crate::error::{Error, ErrorKind, Result};
use crate::signal::{Absence, CallerId};
use crate::SAMPLE_RATE;

fn media(message: String) -> Error {
    Error::new(ErrorKind::Media, message)
}

/// The digit string for `cid`: `A0123456789C`, `D1C` (private) or `D3C` (unavailable).
///
/// Never fails, for callers that must send something: characters of the number other
/// than 0-9 (a leading `+`, spaces) are left out, a number wins over a reason for
/// absence, and a caller ID with neither (or a number with no digits) is sent as
/// unavailable. Use [`try_dtmf_caller_id_digits`] to be told about such input instead.
pub fn dtmf_caller_id_digits(cid: &CallerId) -> String {
    let digits: Option<String> =
        cid.number.as_ref().map(|n| n.chars().filter(char::is_ascii_digit).collect());
    match (digits, cid.absence) {
        (Some(d), _) if !d.is_empty() => format!("A{d}C"),
        (_, Some(Absence::Private)) => "D1C".to_string(),
        _ => "D3C".to_string(),
    }
}

/// The digit string for `cid`, or an error if it cannot be sent exactly: a number with
/// anything but digits 0-9 (DTMF `*` and `#` mean other things here), both a number and
/// a reason for absence, or neither.
pub fn try_dtmf_caller_id_digits(cid: &CallerId) -> Result<String> {
    match (&cid.number, cid.absence) {
        (Some(number), None) => {
            if number.is_empty() {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "DTMF caller ID number is empty; give None and a reason for absence",
                ));
            }
            if let Some((i, c)) = number.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "DTMF caller ID number {number:?}: character {c:?} at position {i} is \
                         not a digit 0-9"
                    ),
                ));
            }
            Ok(format!("A{number}C"))
        }
        (None, Some(Absence::Private)) => Ok("D1C".to_string()),
        (None, Some(Absence::Unavailable)) => Ok("D3C".to_string()),
        (Some(_), Some(_)) => Err(Error::new(
            ErrorKind::Unsupported,
            "caller ID has both a number and a reason for its absence; give one",
        )),
        (None, None) => Err(Error::new(
            ErrorKind::Unsupported,
            "DTMF caller ID needs a number or a reason for its absence",
        )),
    }
}

/// Parse a received DTMF caller ID digit string. Errors name the position and what was
/// expected there.
pub fn parse_dtmf_caller_id(digits: &str) -> Result<CallerId> {
    let chars: Vec<char> = digits.chars().map(|c| c.to_ascii_uppercase()).collect();
    let Some(&start) = chars.first() else {
        return Err(media("DTMF caller ID is empty; expected 'A' or 'D' first".into()));
    };
    if start != 'A' && start != 'D' {
        return Err(media(format!(
            "DTMF caller ID {digits:?}: {start:?} at position 0 is not a start digit; expected \
             'A' (number) or 'D' (reason for absence)"
        )));
    }
    let Some(end) = chars.iter().position(|&c| c == 'C' || c == '#') else {
        return Err(media(format!(
            "DTMF caller ID {digits:?} has no end digit; expected 'C' (or '#') after the {}",
            if start == 'A' { "number" } else { "absence code" }
        )));
    };
    if end + 1 != chars.len() {
        return Err(media(format!(
            "DTMF caller ID {digits:?}: {} digits after the end digit at position {end}",
            chars.len() - end - 1
        )));
    }
    let body = &chars[1..end];
    if let Some(i) = body.iter().position(|c| !c.is_ascii_digit()) {
        return Err(media(format!(
            "DTMF caller ID {digits:?}: {:?} at position {} is not a digit 0-9",
            body[i],
            i + 1
        )));
    }
    let body: String = body.iter().collect();
    if start == 'A' {
        if body.is_empty() {
            return Err(media(format!("DTMF caller ID {digits:?}: no number between 'A' and the end digit")));
        }
        return Ok(CallerId { number: Some(body), ..CallerId::default() });
    }
    let absence = match body.as_str() {
        "1" => Absence::Private,
        "2" | "3" => Absence::Unavailable,
        other => {
            return Err(media(format!(
                "DTMF caller ID {digits:?}: absence code {other:?} at position 1 is unknown; \
                 expected 1 (private), 2 (international) or 3 (unavailable)"
            )))
        }
    };
    Ok(CallerId { absence: Some(absence), ..CallerId::default() })
}

/// DTMF timing for caller ID: 70 ms tones with 70 ms pauses (the Danish specification
/// asks at least 50 ms each), at the usual -7/-5 dBm0.
pub fn dtmf_caller_id_params() -> DtmfParams {
    DtmfParams { on_ms: 70, off_ms: 70, ..DtmfParams::default() }
}

/// DTMF caller ID as audio: the digits of [`try_dtmf_caller_id_digits`] played with
/// `params` (see [`dtmf_caller_id_params`]). A number that DTMF cannot carry exactly is
/// an error rather than sent altered.
pub fn dtmf_caller_id_audio(cid: &CallerId, params: DtmfParams) -> Result<Vec<i16>> {
    DtmfGenerator::generate(&try_dtmf_caller_id_digits(cid)?, params)
}

/// Longest pause between two digits of one caller ID before it counts as cut off:
/// digits come every 100-200 ms.
const DIGIT_GAP_SAMPLES: u64 = SAMPLE_RATE as u64;

/// Streaming DTMF caller ID receiver for an FXO line: finds `A…C` and `D…C` strings in
/// the audio and reports each as a [`CallerIdEvent`]. Digits outside such a string are
/// ignored (they are someone dialling, not caller ID).
#[derive(Debug, Clone, Default)]
pub struct DtmfCallerIdReceiver {
    detector: DtmfDetector,
    digits: Vec<DigitEvent>,
    scratch: Vec<DigitEvent>,
}

impl DtmfCallerIdReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Demodulate `samples`, appending an event for each caller ID that ends in them.
    pub fn process(&mut self, samples: &[i16], out: &mut Vec<CallerIdEvent>) {
        self.detector.process(samples, &mut self.scratch);
        self.take_digits(out);
        let now = self.detector.samples_seen();
        if let Some(last) = self.digits.last() {
            if now.saturating_sub(last.end) > DIGIT_GAP_SAMPLES {
                self.report_cut_off(out);
            }
        }
    }

    /// The input has ended: report a caller ID still being received as cut off.
    pub fn finish(&mut self, out: &mut Vec<CallerIdEvent>) {
        self.detector.finish(&mut self.scratch);
        self.take_digits(out);
        if !self.digits.is_empty() {
            self.report_cut_off(out);
        }
    }

    fn take_digits(&mut self, out: &mut Vec<CallerIdEvent>) {
        for event in std::mem::take(&mut self.scratch) {
            let digit = event.digit.to_ascii_uppercase();
            if let Some(last) = self.digits.last() {
                if event.start.saturating_sub(last.end) > DIGIT_GAP_SAMPLES {
                    self.report_cut_off(out);
                }
            }
            if self.digits.is_empty() && digit != 'A' && digit != 'D' {
                continue;
            }
            self.digits.push(event);
            if digit == 'C' || digit == '#' {
                let text: String = self.digits.iter().map(|d| d.digit).collect();
                out.push(CallerIdEvent { at: event.end, result: parse_dtmf_caller_id(&text) });
                self.digits.clear();
            }
        }
    }

    fn report_cut_off(&mut self, out: &mut Vec<CallerIdEvent>) {
        let text: String = self.digits.iter().map(|d| d.digit).collect();
        let at = self.digits.last().map_or(0, |d| d.end);
        out.push(CallerIdEvent {
            at,
            result: Err(media(format!(
                "DTMF caller ID truncated: {text:?} was not ended by 'C' within a second"
            ))),
        });
        self.digits.clear();
    }
}
