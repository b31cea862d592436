//! libpri: ISDN PRI signalling (ITU-T Q.921 data link, Q.931 call control, ETSI
//! EN 300 403 for `PRI_SWITCH_EUROISDN_E1`). Feature `libpri`; links `-lpri`.
//!
//! bindgen output for `libpri.h` (Debian `libpri-dev`), pre-generated and checked in as
//! `src/libpri/bindings.rs`. With the `bindgen` feature the build regenerates it into
//! `$OUT_DIR/libpri_bindings.rs` and that is compiled instead; `tests/libpri_bindings.rs` fails
//! when the two differ (run `sys/regen-bindings.sh` and commit).
//!
//! What is here: the `pri_*` functions, `pri_event` and its views, `pri_io_cb` (the
//! D-channel read/write callbacks `pri_new_cb` takes), `PRI_EVENT_*`, `PRI_SWITCH_*`,
//! `PRI_NETWORK`/`PRI_CPE`, `PRI_CAUSE_*` (Q.850), presentation, numbering plan and
//! type-of-number constants, and the Q.921/Q.931 timer indexes.
//!
//! Facts a caller needs (libpri 1.4–1.6 source):
//! - With custom callbacks, libpri never touches the `fd` given to `pri_new_cb`; it is
//!   only stored (`pri_fd` returns it, `pri_dchannel_run(.., block = 1)` selects on it).
//! - The write callback gets each Q.921 frame followed by two bytes standing in for the
//!   FCS; the read callback must hand back a frame with those two bytes, which
//!   `pri_check_event` drops. A return of 0 from the read callback means "no frame".
//! - `pri_new_cb` already writes (the SABME that starts Q.921), so the user data must
//!   be valid before the call.
//! - Timers are started against `gettimeofday`; `pri_schedule_next` returns a wall-clock
//!   `timeval`, `pri_schedule_run` compares with `gettimeofday`.
//! - The returned `pri_event *` points into the `struct pri` and is valid until the next
//!   call into libpri on that controller.

#[cfg(not(feature = "bindgen"))]
include!("libpri/bindings.rs");
#[cfg(feature = "bindgen")]
include!(concat!(env!("OUT_DIR"), "/libpri_bindings.rs"));
