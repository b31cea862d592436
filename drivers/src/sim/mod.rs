//! The simulator backend: a software card and the world around it, configured from the
//! installation file (`[[card]]` with `backend = "simulator"` and `[simulator]`).
//!
//! - [`SimCard`] implements [`Card`](crate::Card): E1 spans with ISDN PRI, SS7 ISUP or
//!   China No.1 (MFC-R2) timings and causes, FXO lines with ring cadence, caller ID and
//!   far-end disconnect as the line shows it, FXS stations with phones on them.
//! - [`world`]: the PSTN's callers and their scripts, outbound outcome rules, phone
//!   behaviour, faults.
//! - [`clock`]: drive a card in virtual time (jump to the next deadline) or real time.
//! - Media: in audio mode real frames move every 20 ms and digits and tones are found
//!   by the DSP detectors; in signalling mode they are events, for fast traffic runs.
//!
//! Deterministic: a seed and the times passed in decide everything.

mod audio;
mod card;
pub mod clock;
pub mod rng;
mod timing;
pub mod world;

pub use card::{Heard, SimCard, Stats};
pub use world::{
    CallerScript, CallerStep, Fault, InboundCall, OutboundRule, Outcome, PhoneBehaviour, Spread, Trunk,
};
