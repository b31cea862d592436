//! Reading Q.921 frames and the Q.931 messages inside them, for traces and checks: the
//! frame kind (I, S or U: SABME, UA...), the Q.931 message type, and the cause value
//! of a clearing message. libpri does the protocol; this only looks.

use std::fmt;

use crate::cause::Cause;
use crate::time::Instant;

use super::link::Node;

/// Q.931 message types (ITU-T Q.931 table 4-2) met on a PRI.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    Alerting,
    CallProceeding,
    Progress,
    Setup,
    Connect,
    SetupAcknowledge,
    ConnectAcknowledge,
    Disconnect,
    Release,
    ReleaseComplete,
    Restart,
    RestartAcknowledge,
    Information,
    Notify,
    Facility,
    Status,
    StatusEnquiry,
    Other(u8),
}

impl MessageType {
    pub fn from_code(code: u8) -> MessageType {
        use MessageType::*;
        match code {
            0x01 => Alerting,
            0x02 => CallProceeding,
            0x03 => Progress,
            0x05 => Setup,
            0x07 => Connect,
            0x0D => SetupAcknowledge,
            0x0F => ConnectAcknowledge,
            0x45 => Disconnect,
            0x4D => Release,
            0x5A => ReleaseComplete,
            0x46 => Restart,
            0x4E => RestartAcknowledge,
            0x7B => Information,
            0x6E => Notify,
            0x62 => Facility,
            0x7D => Status,
            0x75 => StatusEnquiry,
            other => Other(other),
        }
    }

    /// The name Q.931 gives it.
    pub fn name(self) -> &'static str {
        use MessageType::*;
        match self {
            Alerting => "ALERTING",
            CallProceeding => "CALL PROCEEDING",
            Progress => "PROGRESS",
            Setup => "SETUP",
            Connect => "CONNECT",
            SetupAcknowledge => "SETUP ACKNOWLEDGE",
            ConnectAcknowledge => "CONNECT ACKNOWLEDGE",
            Disconnect => "DISCONNECT",
            Release => "RELEASE",
            ReleaseComplete => "RELEASE COMPLETE",
            Restart => "RESTART",
            RestartAcknowledge => "RESTART ACKNOWLEDGE",
            Information => "INFORMATION",
            Notify => "NOTIFY",
            Facility => "FACILITY",
            Status => "STATUS",
            StatusEnquiry => "STATUS ENQUIRY",
            Other(_) => "(other)",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageType::Other(c) => write!(f, "message type 0x{c:02X}"),
            m => f.write_str(m.name()),
        }
    }
}

/// What a Q.921 frame is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// An I frame carrying a Q.931 message.
    Info {
        message: MessageType,
        /// The call reference value and whether the sender is the side that did not
        /// originate the call (the flag bit).
        call_ref: u16,
        from_destination: bool,
        /// The cause in the message (DISCONNECT, RELEASE, RELEASE COMPLETE...), if any.
        cause: Option<Cause>,
    },
    /// An I frame whose contents are not Q.931 call control.
    InfoOther,
    /// A supervisory frame (RR, RNR, REJ).
    Supervisory,
    /// SABME: set asynchronous balanced mode extended (start multiple-frame operation).
    Sabme,
    /// UA: unnumbered acknowledgement.
    Ua,
    /// DISC: disconnect the data link.
    Disc,
    /// DM: disconnected mode.
    Dm,
    /// Another unnumbered frame (control octet with P/F cleared).
    OtherU(u8),
    /// Too short to be a frame.
    Malformed,
}

/// Decode a frame as libpri writes it: address (2), control (1 or 2), information,
/// then two FCS placeholder bytes.
pub fn decode(frame: &[u8]) -> Frame {
    if frame.len() < 3 + 2 {
        return Frame::Malformed;
    }
    let body = &frame[..frame.len() - 2];
    let control = body[2];
    if control & 0x01 == 0 {
        // I frame: two control octets, then Q.931.
        return body.get(4..).map_or(Frame::Malformed, q931);
    }
    if control & 0x03 == 0x01 {
        return Frame::Supervisory;
    }
    match control & !0x10 {
        0x6F => Frame::Sabme,
        0x63 => Frame::Ua,
        0x43 => Frame::Disc,
        0x0F => Frame::Dm,
        other => Frame::OtherU(other),
    }
}

/// A frame that crossed a D-channel: when it arrived, which side sent it, what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedFrame {
    pub at: Instant,
    pub from: Node,
    pub frame: Frame,
    pub bytes: Vec<u8>,
}

impl TracedFrame {
    /// The Q.931 message type, for an I frame that carries one.
    pub fn message(&self) -> Option<MessageType> {
        match self.frame {
            Frame::Info { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Protocol discriminator of Q.931 user-network call control.
const Q931_DISCRIMINATOR: u8 = 0x08;
/// Information element identifier of the cause (Q.931 4.5.12).
const IE_CAUSE: u8 = 0x08;

fn q931(msg: &[u8]) -> Frame {
    if msg.len() < 2 || msg[0] != Q931_DISCRIMINATOR {
        return Frame::InfoOther;
    }
    let cr_len = (msg[1] & 0x0F) as usize;
    let Some(cr) = msg.get(2..2 + cr_len) else { return Frame::Malformed };
    let Some(&mt) = msg.get(2 + cr_len) else { return Frame::Malformed };
    let from_destination = cr.first().is_some_and(|b| b & 0x80 != 0);
    let call_ref = cr.iter().enumerate().fold(0u16, |acc, (i, b)| {
        let b = if i == 0 { b & 0x7F } else { *b };
        (acc << 8) | b as u16
    });
    Frame::Info {
        message: MessageType::from_code(mt),
        call_ref,
        from_destination,
        cause: find_cause(&msg[3 + cr_len..]),
    }
}

/// Walk the information elements for the cause: octet 3 (and 3a when octet 3 has no
/// extension bit), then the cause value in the low seven bits.
fn find_cause(mut ies: &[u8]) -> Option<Cause> {
    while let Some(&id) = ies.first() {
        if id & 0x80 != 0 {
            // Single-octet element (shift, sending complete...).
            ies = &ies[1..];
            continue;
        }
        let len = *ies.get(1)? as usize;
        let content = ies.get(2..2 + len)?;
        if id == IE_CAUSE {
            let value_at = if content.first()? & 0x80 != 0 { 1 } else { 2 };
            return content.get(value_at).map(|v| Cause(v & 0x7F));
        }
        ies = &ies[2 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disconnect_with_cause_17_is_read_from_its_bytes() {
        // Address SAPI 0 TEI 0, I frame N(S)=0 N(R)=0, PD 08, CR length 2 value 0x8001,
        // DISCONNECT, cause IE: 08 02 80 91 (location user, value 17), two FCS bytes.
        let frame = [0x02, 0x01, 0x00, 0x00, 0x08, 0x02, 0x80, 0x01, 0x45, 0x08, 0x02, 0x80, 0x91, 0, 0];
        assert_eq!(
            decode(&frame),
            Frame::Info {
                message: MessageType::Disconnect,
                call_ref: 1,
                from_destination: true,
                cause: Some(Cause::USER_BUSY)
            }
        );
    }

    #[test]
    fn sabme_and_ua_are_told_apart_with_or_without_the_poll_bit() {
        assert_eq!(decode(&[0x00, 0x01, 0x7F, 0, 0]), Frame::Sabme);
        assert_eq!(decode(&[0x02, 0x01, 0x73, 0, 0]), Frame::Ua);
        assert_eq!(decode(&[0x02, 0x01]), Frame::Malformed);
    }
}
