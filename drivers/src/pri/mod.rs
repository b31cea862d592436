//! ISDN PRI through libpri (feature `pri`; needs `libpri-dev`).
//!
//! - [`link`]: [`PriLink`], the safe wrapper of one libpri controller (network or user
//!   side, ETSI EuroISDN E1), its D-channel frames in Rust queues, its events as
//!   [`PriEvent`]. The only file here with `unsafe`.
//! - [`span`]: [`PriSpan`], the card side of a PRI span: our commands become Q.931
//!   (ALERTING, CONNECT, DISCONNECT with a Q.850 cause, SETUP) and libpri's events
//!   become [`EventKind`](crate::EventKind)s (Offered with ANI, DNIS and the B-channel
//!   the network chose; Alerting; Answered; Released with the cause). The same code
//!   serves a simulated span and a span on a real card; only the D-channel differs.
//! - `dahdi` (with the `dahdi` feature): [`PriSignalling`](dahdi::PriSignalling), a
//!   span's call control on a DAHDI card's D-channel, through the backend's
//!   span-signalling seam.
//! - [`q931`]: reading Q.921 frames and Q.931 message types and causes, for traces.
//!
//! The simulator joins a network-side and a user-side link in user space; see
//! `docs/simulator.md` ("ISDN PRI through libpri").

#[cfg(feature = "dahdi")]
pub mod dahdi;
pub mod link;
pub mod q931;
pub mod span;

pub use link::{CallRef, Node, PriEvent, PriLink, Setup};
pub use span::PriSpan;
