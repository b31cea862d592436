//! Caller ID messages as an exchange frames them on the wire: a message type, a length,
//! the data, and a checksum (Bell GR-30-CORE, ETSI EN 300 659-3, China YDN 069).
//!
//! - SDMF (single data message format, type 0x04): `MMDDHHMM` then the number, or a
//!   single 'P' (private) or 'O' (unavailable) in its place.
//! - MDMF (multiple data message format, type 0x80 "call set-up"): parameters, each a
//!   type, a length and a value: 0x01 date and time, 0x02 calling number, 0x04 reason
//!   for absence of the number, 0x07 calling name, 0x08 reason for absence of the name.
//!
//! The checksum is the two's complement of the sum, modulo 256, of every byte from the
//! type to the last data byte, so the whole message sums to zero.

use crate::error::{Error, ErrorKind, Result};
use crate::signal::{Absence, CallerId};

/// SDMF call set-up message (Bell GR-30; YDN 069).
pub const SDMF_CALL_SETUP: u8 = 0x04;
/// SDMF message-waiting message: recognised as caller ID traffic, not decoded.
pub const SDMF_MESSAGE_WAITING: u8 = 0x06;
/// MDMF call set-up message (Bell GR-30; ETSI EN 300 659-3).
pub const MDMF_CALL_SETUP: u8 = 0x80;
/// MDMF message-waiting message: recognised as caller ID traffic, not decoded.
pub const MDMF_MESSAGE_WAITING: u8 = 0x82;

/// MDMF parameter types (ETSI EN 300 659-3 table 3; GR-30 uses the same codes).
pub mod param {
    /// Date and time, 8 ASCII digits `MMDDHHMM`.
    pub const DATE_TIME: u8 = 0x01;
    /// Calling line identity (the number).
    pub const CALLING_NUMBER: u8 = 0x02;
    /// Reason for absence of the calling number: 'O' unavailable, 'P' private.
    pub const NUMBER_ABSENCE: u8 = 0x04;
    /// Calling party name.
    pub const CALLING_NAME: u8 = 0x07;
    /// Reason for absence of the calling name: 'O' unavailable, 'P' private.
    pub const NAME_ABSENCE: u8 = 0x08;
}

/// Which message layout to send.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MessageFormat {
    /// Single data message format: date, time and number only (no name).
    Sdmf,
    /// Multiple data message format: any of date and time, number, name, reasons.
    Mdmf,
}

fn media(message: String) -> Error {
    Error::new(ErrorKind::Media, message)
}

fn unsupported(message: String) -> Error {
    Error::new(ErrorKind::Unsupported, message)
}

fn absence_code(absence: Absence) -> u8 {
    match absence {
        Absence::Private => b'P',
        Absence::Unavailable => b'O',
    }
}

fn parse_absence(byte: u8, offset: usize, what: &str) -> Result<Absence> {
    match byte {
        b'P' => Ok(Absence::Private),
        b'O' => Ok(Absence::Unavailable),
        other => Err(media(format!(
            "caller ID: reason for absence of the {what} at offset {offset} is 0x{other:02X}; \
             expected 'P' (private) or 'O' (unavailable)"
        ))),
    }
}

/// The two's complement of the modulo-256 sum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b)).wrapping_neg()
}

fn check_time(time: (u8, u8, u8, u8)) -> Result<()> {
    let (month, day, hour, minute) = time;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(unsupported(format!(
            "caller ID time {month:02}-{day:02} {hour:02}:{minute:02} is out of range \
             (month 1-12, day 1-31, hour 0-23, minute 0-59)"
        )));
    }
    Ok(())
}

fn time_digits(time: (u8, u8, u8, u8)) -> Vec<u8> {
    let (month, day, hour, minute) = time;
    format!("{month:02}{day:02}{hour:02}{minute:02}").into_bytes()
}

fn number_bytes(number: &str) -> Result<Vec<u8>> {
    if number.is_empty() {
        return Err(unsupported(
            "caller ID number is empty; give None and a reason for absence instead".into(),
        ));
    }
    for (i, c) in number.chars().enumerate() {
        if !(c.is_ascii_digit() || matches!(c, '*' | '#' | '+')) {
            return Err(unsupported(format!(
                "caller ID number {number:?}: character {c:?} at position {i} is not a digit, \
                 '*', '#' or '+'"
            )));
        }
    }
    Ok(number.as_bytes().to_vec())
}

/// Names travel as ISO 8859-1, one byte per character.
fn name_bytes(name: &str) -> Result<Vec<u8>> {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            let code = c as u32;
            if code < 0x20 || (0x7F..0xA0).contains(&code) || code > 0xFF {
                Err(unsupported(format!(
                    "caller ID name {name:?}: character {c:?} at position {i} cannot be sent \
                     (printable ISO 8859-1 only)"
                )))
            } else {
                Ok(code as u8)
            }
        })
        .collect()
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn push_param(body: &mut Vec<u8>, kind: u8, value: &[u8]) -> Result<()> {
    let len = u8::try_from(value.len()).map_err(|_| {
        unsupported(format!("MDMF parameter 0x{kind:02X} is {} bytes; at most 255 fit", value.len()))
    })?;
    body.push(kind);
    body.push(len);
    body.extend_from_slice(value);
    Ok(())
}

/// Encode `cid` as a complete message: type, length, data, checksum.
///
/// SDMF carries no name, so a name is left out; it needs the date and time, and either
/// a number or a reason for its absence. In MDMF, a withheld number with no name also
/// sends the same reason for the name's absence, as exchanges do.
pub fn encode_message(cid: &CallerId, format: MessageFormat) -> Result<Vec<u8>> {
    if let Some(time) = cid.time {
        check_time(time)?;
    }
    if cid.number.is_some() && cid.absence.is_some() {
        return Err(unsupported("caller ID has both a number and a reason for its absence; give one".into()));
    }
    let (kind, body) = match format {
        MessageFormat::Sdmf => {
            let time = cid
                .time
                .ok_or_else(|| unsupported("SDMF caller ID needs the date and time (MMDDHHMM)".into()))?;
            let mut body = time_digits(time);
            match (&cid.number, cid.absence) {
                (Some(number), _) => body.extend(number_bytes(number)?),
                (None, Some(absence)) => body.push(absence_code(absence)),
                (None, None) => {
                    return Err(unsupported(
                        "SDMF caller ID needs a number or a reason for its absence".into(),
                    ))
                }
            }
            (SDMF_CALL_SETUP, body)
        }
        MessageFormat::Mdmf => {
            let mut body = Vec::new();
            if let Some(time) = cid.time {
                push_param(&mut body, param::DATE_TIME, &time_digits(time))?;
            }
            if let Some(number) = &cid.number {
                push_param(&mut body, param::CALLING_NUMBER, &number_bytes(number)?)?;
            } else if let Some(absence) = cid.absence {
                push_param(&mut body, param::NUMBER_ABSENCE, &[absence_code(absence)])?;
            }
            if let Some(name) = &cid.name {
                push_param(&mut body, param::CALLING_NAME, &name_bytes(name)?)?;
            } else if let (None, Some(absence)) = (&cid.number, cid.absence) {
                push_param(&mut body, param::NAME_ABSENCE, &[absence_code(absence)])?;
            }
            if body.is_empty() {
                return Err(unsupported(
                    "MDMF caller ID needs at least a number, a reason for its absence, or a name".into(),
                ));
            }
            (MDMF_CALL_SETUP, body)
        }
    };
    let len = u8::try_from(body.len()).map_err(|_| {
        unsupported(format!("caller ID message data is {} bytes; at most 255 fit", body.len()))
    })?;
    let mut bytes = Vec::with_capacity(body.len() + 3);
    bytes.push(kind);
    bytes.push(len);
    bytes.extend(body);
    bytes.push(checksum(&bytes));
    Ok(bytes)
}

/// Total length of the message that starts with `type_and_len`, once the length byte
/// is known.
pub(crate) fn framed_len(len_byte: u8) -> usize {
    3 + usize::from(len_byte)
}

/// Decode a complete message (type, length, data, checksum). Errors say what is wrong
/// and at which byte offset: truncated, trailing bytes, bad checksum, unknown type,
/// malformed parameters.
pub fn decode_message(bytes: &[u8]) -> Result<CallerId> {
    if bytes.len() < 3 {
        return Err(media(format!(
            "caller ID message truncated: {} bytes, but a message has at least 3 \
             (type, length, checksum)",
            bytes.len()
        )));
    }
    let need = framed_len(bytes[1]);
    if bytes.len() < need {
        return Err(media(format!(
            "caller ID message truncated: the length byte at offset 1 announces {} data bytes, \
             {need} bytes in all, but only {} arrived",
            bytes[1],
            bytes.len()
        )));
    }
    if bytes.len() > need {
        return Err(media(format!(
            "caller ID message has {} unexpected bytes after the checksum at offset {}",
            bytes.len() - need,
            need - 1
        )));
    }
    let sum = bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    if sum != 0 {
        return Err(media(format!(
            "caller ID checksum error: checksum byte at offset {} is 0x{:02X}, but the data \
             needs 0x{:02X}",
            need - 1,
            bytes[need - 1],
            checksum(&bytes[..need - 1])
        )));
    }
    let data = &bytes[2..need - 1];
    match bytes[0] {
        SDMF_CALL_SETUP => decode_sdmf(data),
        MDMF_CALL_SETUP => decode_mdmf(data),
        other => Err(media(format!(
            "caller ID message type 0x{other:02X} at offset 0 is not supported; expected \
             0x04 (SDMF call set-up) or 0x80 (MDMF call set-up)"
        ))),
    }
}

/// Parse `MMDDHHMM` found at message offset `offset`.
fn parse_time(digits: &[u8], offset: usize) -> Result<(u8, u8, u8, u8)> {
    let mut values = [0u8; 4];
    for (i, pair) in digits.chunks(2).enumerate() {
        for (j, &d) in pair.iter().enumerate() {
            if !d.is_ascii_digit() {
                return Err(media(format!(
                    "caller ID date and time: byte 0x{d:02X} at offset {} is not a digit",
                    offset + 2 * i + j
                )));
            }
        }
        values[i] = (pair[0] - b'0') * 10 + (pair[1] - b'0');
    }
    let [month, day, hour, minute] = values;
    let fields =
        [("month", month, 1, 12), ("day", day, 1, 31), ("hour", hour, 0, 23), ("minute", minute, 0, 59)];
    for (i, (what, value, lo, hi)) in fields.into_iter().enumerate() {
        if !(lo..=hi).contains(&value) {
            return Err(media(format!(
                "caller ID date and time: {what} {value:02} at offset {} is out of range {lo}-{hi}",
                offset + 2 * i
            )));
        }
    }
    Ok((month, day, hour, minute))
}

fn decode_sdmf(data: &[u8]) -> Result<CallerId> {
    if data.len() < 8 {
        return Err(media(format!(
            "SDMF caller ID: {} data bytes at offset 2, but the date and time alone need 8",
            data.len()
        )));
    }
    let time = Some(parse_time(&data[..8], 2)?);
    let rest = &data[8..];
    let (number, absence) = match rest {
        [] => (None, None),
        [b'P'] => (None, Some(Absence::Private)),
        [b'O'] => (None, Some(Absence::Unavailable)),
        digits => (Some(latin1(digits)), None),
    };
    Ok(CallerId { number, name: None, time, absence })
}

fn decode_mdmf(data: &[u8]) -> Result<CallerId> {
    let mut cid = CallerId::default();
    let mut i = 0;
    while i < data.len() {
        let offset = i + 2;
        let kind = data[i];
        let Some(&len) = data.get(i + 1) else {
            return Err(media(format!(
                "MDMF caller ID: parameter 0x{kind:02X} at offset {offset} has no length byte \
                 before the checksum"
            )));
        };
        let start = i + 2;
        let end = start + usize::from(len);
        if end > data.len() {
            return Err(media(format!(
                "MDMF caller ID: parameter 0x{kind:02X} at offset {offset} announces {len} bytes, \
                 but only {} remain before the checksum",
                data.len() - start
            )));
        }
        let value = &data[start..end];
        let value_offset = start + 2;
        match kind {
            param::DATE_TIME => {
                if value.len() != 8 {
                    return Err(media(format!(
                        "MDMF caller ID: date and time at offset {offset} is {len} bytes; \
                         expected 8 (MMDDHHMM)"
                    )));
                }
                cid.time = Some(parse_time(value, value_offset)?);
            }
            param::CALLING_NUMBER => cid.number = Some(latin1(value)),
            param::CALLING_NAME => cid.name = Some(latin1(value)),
            param::NUMBER_ABSENCE | param::NAME_ABSENCE => {
                let what = if kind == param::NUMBER_ABSENCE { "number" } else { "name" };
                if value.len() != 1 {
                    return Err(media(format!(
                        "MDMF caller ID: reason for absence of the {what} at offset {offset} is \
                         {len} bytes; expected 1"
                    )));
                }
                let absence = parse_absence(value[0], value_offset, what)?;
                if kind == param::NUMBER_ABSENCE {
                    cid.absence = Some(absence);
                }
            }
            // Other parameters (called number, redirection, call type...) are not part of
            // what a station is shown; skip them so newer exchanges still decode.
            _ => {}
        }
        i = end;
    }
    Ok(cid)
}
