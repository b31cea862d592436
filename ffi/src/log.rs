//! The library's own log: what happened on the wire that no call returns (a junk line
//! from the server, a late reply dropped, a reconnect attempt). Off until the program
//! sets a log callback (`hotline_set_log_callback`); then every message at or above
//! the chosen level goes to it, from whichever library thread noticed.

use std::sync::{Arc, Mutex};

/// How much a log message matters (passed as a `uint32_t`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum hotline_log_level {
    /// Something failed (a connection lost, a reconnect given up).
    Error = 1,
    /// Something is wrong but the library carries on (a junk line, a late reply).
    Warn = 2,
    /// The connection's life: connected, logged in, reconnecting, reconnected.
    Info = 3,
    /// Every request sent and every failure returned.
    Debug = 4,
}

impl hotline_log_level {
    pub fn from_u32(n: u32) -> Option<hotline_log_level> {
        [Self::Error, Self::Warn, Self::Info, Self::Debug].into_iter().find(|l| *l as u32 == n)
    }
}

/// A log sink in Rust.
pub type Sink = Arc<dyn Fn(hotline_log_level, &str) + Send + Sync>;

fn sink() -> &'static Mutex<Option<(Sink, hotline_log_level)>> {
    static SINK: Mutex<Option<(Sink, hotline_log_level)>> = Mutex::new(None);
    &SINK
}

/// Set (or with `None` remove) the sink and the most detailed level it gets.
pub fn set(s: Option<(Sink, hotline_log_level)>) {
    *sink().lock().unwrap_or_else(|e| e.into_inner()) = s;
}

/// Would a message at `level` be logged? (Saves formatting it.)
pub fn enabled(level: hotline_log_level) -> bool {
    matches!(&*sink().lock().unwrap_or_else(|e| e.into_inner()), Some((_, max)) if level <= *max)
}

/// Log `text` at `level`. The sink runs without any library lock held, so it may call
/// back into the library.
pub fn log(level: hotline_log_level, text: impl FnOnce() -> String) {
    let s = match &*sink().lock().unwrap_or_else(|e| e.into_inner()) {
        Some((s, max)) if level <= *max => s.clone(),
        _ => return,
    };
    let text = text();
    // A panicking Rust sink must not take the library thread with it.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s(level, &text)));
}
