//! Signals and call attributes that cross the card interface: call-progress tones,
//! caller categories, and caller ID as a station is shown it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Tones a card plays or detects. Frequencies and cadences come from the configured
/// tone plan ([`crate::dsp::tones::TonePlan`]); fax tones are fixed by ITU-T T.30/V.25.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// Dial tone: the line is ready for digits (continuous).
    Dial,
    /// Busy tone: the called party is busy.
    Busy,
    /// Ringing tone (ringback): the called party is being alerted.
    Ringback,
    /// Congestion tone: no route or no circuit (reorder).
    Congestion,
    /// Call waiting tone: a second call is waiting (stations only).
    CallWaiting,
    /// Fax calling tone, CNG: 1100 Hz, 0.5 s on / 3 s off (T.30).
    FaxCng,
    /// Answer tone, CED: 2100 Hz continuous (T.30, V.25).
    FaxCed,
}

impl Tone {
    pub const ALL: [Tone; 7] = [
        Tone::Dial,
        Tone::Busy,
        Tone::Ringback,
        Tone::Congestion,
        Tone::CallWaiting,
        Tone::FaxCng,
        Tone::FaxCed,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Tone::Dial => "dial",
            Tone::Busy => "busy",
            Tone::Ringback => "ringback",
            Tone::Congestion => "congestion",
            Tone::CallWaiting => "call-waiting",
            Tone::FaxCng => "fax-cng",
            Tone::FaxCed => "fax-ced",
        }
    }
}

impl fmt::Display for Tone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The calling party's category (ISUP Q.763 3.11, China No.1 KA/II digits).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerCategory {
    #[default]
    Ordinary,
    Priority,
    Operator,
    Payphone,
    Data,
    Test,
}

/// Caller ID as sent to a station between rings or received on an FXO line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerId {
    /// The calling number, when presented.
    pub number: Option<String>,
    /// The calling name (MDMF only).
    pub name: Option<String>,
    /// Date and time of the call: month, day, hour, minute (local time).
    pub time: Option<(u8, u8, u8, u8)>,
    /// Why the number is absent, when it is.
    pub absence: Option<Absence>,
}

/// Why a caller ID number is absent.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Absence {
    /// Withheld by the caller ('P').
    Private,
    /// Not available, out of area ('O').
    Unavailable,
}
