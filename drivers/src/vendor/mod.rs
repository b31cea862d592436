//! Backends for vendor card SDKs: a Synway-style SynCTI adapter ([`synway`]) and a
//! Dialogic-style GlobalCall/Voice adapter ([`dialogic`]), each a [`Card`](crate::Card).
//!
//! The SDK is a shared library loaded at run time from a configured path
//! ([`SdkLibrary`]), so a machine without it builds and runs everything else; a missing
//! library is a [`ErrorKind::Config`] error naming the path and what to install.
//!
//! Events: the SDK reports on its own threads (Synway's callback) or on a thread of
//! ours waiting in the SDK (Dialogic's `sr_waitevt`). Either way, raw SDK events go
//! through a bounded crossbeam channel to a translator thread that owns the mapping to
//! [`CardEvent`](crate::CardEvent)s, so an SDK thread never blocks on the engine and no
//! panic or Rust error ever crosses back into the SDK.
//!
//! The tests drive both adapters against SDK emulators: small C libraries in
//! `drivers/tests/sdk-emulators/`, loaded through this same path. They are test
//! fixtures, not SDKs.

use std::ffi::{c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::time::Instant;

#[cfg(feature = "dialogic")]
pub mod dialogic;
#[cfg(feature = "synway")]
pub mod synway;

/// A vendor SDK library, loaded from a path. Keeps the library mapped for as long as it
/// lives; the function tables built from it must not outlive it (each adapter holds both).
#[derive(Debug)]
pub struct SdkLibrary {
    path: PathBuf,
    lib: libloading::Library,
}

impl SdkLibrary {
    /// Load the library at `path`. `what` names the SDK and its package for the error
    /// ("the Synway SynCTI driver (libshpa3.so)").
    pub fn open(path: &Path, what: &str) -> Result<SdkLibrary> {
        if !path.exists() {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{}: no such file: the card needs {what}; install it, or set the card's SDK path to where it is",
                    path.display()
                ),
            ));
        }
        // Safety: loading runs the library's initialisers; the configured path is trusted
        // to be the vendor SDK (or an emulator of it), as with any driver library.
        #[allow(unsafe_code)]
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "{}: cannot load {what}: {e}; install the SDK or fix the card's SDK path",
                    path.display()
                ),
            )
        })?;
        Ok(SdkLibrary { path: path.to_path_buf(), lib })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The address of a NUL-terminated symbol, or a Config error naming it.
    pub fn symbol(&self, name: &'static str) -> Result<*const c_void> {
        // Safety: the symbol is only looked up here; its type is asserted by the caller
        // (the sys crate's `load`), which is where the declaration lives.
        #[allow(unsafe_code)]
        let sym = unsafe { self.lib.get::<*const c_void>(name.as_bytes()) };
        match sym {
            Ok(s) if !s.is_null() => Ok(*s),
            _ => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{}: the library has no function {}: it is not the expected SDK, or its version is too old",
                    self.path.display(),
                    name.trim_end_matches('\0')
                ),
            )),
        }
    }
}

/// Stamps events seen on SDK threads with the engine's time base: the last `now`
/// handed to the card plus the real time elapsed since. Only stamps; no logic reads it.
#[derive(Debug)]
pub(crate) struct Stamp {
    base: Mutex<(Instant, std::time::Instant)>,
}

impl Stamp {
    pub(crate) fn new() -> Stamp {
        Stamp { base: Mutex::new((Instant::ZERO, std::time::Instant::now())) }
    }
    pub(crate) fn set(&self, now: Instant) {
        if let Ok(mut b) = self.base.lock() {
            *b = (now, std::time::Instant::now());
        }
    }
    pub(crate) fn now(&self) -> Instant {
        match self.base.lock() {
            Ok(b) => b.0 + b.1.elapsed(),
            Err(_) => Instant::ZERO,
        }
    }
}

/// A C string for the SDK, or an error saying which argument had a NUL in it.
pub(crate) fn c_string(what: &str, s: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(s)
        .map_err(|_| Error::new(ErrorKind::Unsupported, format!("{what} {s:?} contains a NUL byte")))
}

/// The text in a buffer the SDK wrote a NUL-terminated string into.
pub(crate) fn from_c_buf(buf: &[u8]) -> String {
    match CStr::from_bytes_until_nul(buf) {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => String::from_utf8_lossy(buf).into_owned(),
    }
}

/// Digits a card can send or receive in band (ITU-T Q.23 keypad plus A–D).
pub(crate) fn check_digits(digits: &str) -> Result<()> {
    match digits.chars().find(|c| !matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')) {
        Some(c) => Err(Error::new(ErrorKind::Unsupported, format!("digit {c:?} in {digits:?} is not DTMF"))),
        None => Ok(()),
    }
}
