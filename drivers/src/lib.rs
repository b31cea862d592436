//! Hotline's ground floor: the model of a telephony card and the software around it.
//!
//! - [`channel`]: typed channel ids and channel kinds (E1 bearer, FXO, FXS, conference).
//! - [`cause`]: Q.850 release causes.
//! - [`time`]: the [`Instant`] every backend is driven with; nothing in
//!   this crate reads a clock, time is always passed in.
//! - [`event`] and [`command`]: what a card reports and what it is told to do.
//! - [`card`]: the [`Card`] trait every backend implements.
//! - [`dsp`]: G.711, DTMF, call-progress tones, caller ID, WAV files.
//! - [`config`]: the installation file's card section (cards, spans, ports).
//! - [`sim`]: the software card and the simulated world around it (PSTN, callers, phones).

pub mod card;
pub mod cause;
pub mod channel;
pub mod command;
pub mod config;
#[cfg(feature = "dahdi")]
pub mod dahdi;
pub mod dsp;
pub mod error;
pub mod event;
#[cfg(feature = "pri")]
pub mod pri;
pub mod signal;
pub mod sim;
pub mod text;
pub mod time;

pub use card::{Capabilities, Card};
pub use cause::Cause;
pub use channel::{ChannelAddr, ChannelId, ChannelKind, ConferenceId};
pub use command::Command;
pub use error::{Error, ErrorKind};
pub use event::{CardEvent, EventKind};
pub use time::Instant;

/// Telephony sample rate: every channel carries 8 kHz audio.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms media frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
#[cfg(any(feature = "synway", feature = "dialogic"))]
pub mod vendor;
