//! The simulator backend: a software card and the world around it, configured from the
//! installation file (`[[card]]` with `backend = "simulator"`, and `[simulator]`).
//!
//! - [`SimCard`] implements [`Card`](crate::Card): E1 spans with ISDN PRI, SS7 ISUP or
//!   China No.1 (MFC-R2) setup timing and causes; FXO lines with ring cadence, caller ID
//!   between the first and second ring, far-end disconnect by busy tone or polarity
//!   reversal, dial tone or none; FXS stations with phones that ring, show caller ID, go
//!   off hook, flash and hang up.
//! - [`world`]: the PSTN's callers and their scripts, Poisson arrivals, outbound outcome
//!   rules, phone behaviour, faults (span alarm, blocked channel, dead line, station left
//!   off hook). The same things can come from the `[simulator]` table.
//! - [`clock`]: drive a card in virtual time (jump to the next deadline) or real time.
//! - Two media modes. Audio: real 8 kHz frames every 20 ms through the bus and the
//!   conference bridges; digits, tones and caller ID are sound, found by the DSP
//!   detectors. Signalling: no frames; digits, tones and prompt lengths are events, so
//!   an 8-hour day runs in well under a second.
//!
//! Deterministic: a seed and the times passed in decide everything; nothing reads a
//! clock except [`clock::RealTimeClock`].
//!
//! ```
//! use crossbeam_channel::unbounded;
//! use hotline_drivers::sim::{clock::VirtualClock, CallerScript, CallerStep, InboundCall, SimCard, Spread, Trunk};
//! use hotline_drivers::{config, Card, EventKind, Instant};
//!
//! let cfg = config::parse(
//!     "[[card]]\nid = 1\n[[card.span]]\nspan = 1\nsignalling = \"isdn_pri\"\n\
//!      [simulator]\nmedia = \"signalling\"\nseed = 7\n",
//!     "example.toml",
//! )?;
//! let (tx, rx) = unbounded();
//! let mut sim = SimCard::from_config(&cfg, 1, tx)?;
//! let caller = CallerScript::new(Spread::secs(30.0), vec![CallerStep::Press("42".into()), CallerStep::HangUp]);
//! sim.schedule_inbound(Instant::from_secs(1), InboundCall::new(Trunk::Span(1), Some("13800138000"), "100", caller));
//!
//! let mut clock = VirtualClock::new(Instant::ZERO);
//! let mut digits = String::new();
//! clock.run_until(&mut sim, &rx, Instant::from_secs(10), |card, now, ev| {
//!     match ev.kind {
//!         EventKind::Offered { ch, .. } => card.answer(now, ch)?,
//!         EventKind::Digit { digit, .. } => digits.push(digit),
//!         _ => {}
//!     }
//!     Ok(())
//! })?;
//! assert_eq!(digits, "42");
//! # Ok::<(), hotline_drivers::Error>(())
//! ```

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
