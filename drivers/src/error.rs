//! The error every card operation returns.

use std::fmt;

/// What went wrong, and so what the caller should do.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No such channel or bridge on this card: a configuration mismatch; do not retry.
    NoSuchChannel,
    /// The channel's state does not allow this now (answering an idle channel, ringing a
    /// station that is off hook). The caller's view of the channel is stale: wait for
    /// the events in flight, then decide again.
    InvalidState,
    /// The channel is out of service (alarm, blocked): choose another channel.
    Blocked,
    /// The card cannot do this at all (see its [`Capabilities`](crate::Capabilities)).
    Unsupported,
    /// A card resource is exhausted (conference bridges, DSP): retry later or elsewhere.
    Resource,
    /// A prompt or other media could not be read: fix the file.
    Media,
    /// The configuration is wrong: fix it; the message says where.
    Config,
    /// The driver or hardware failed: the backend may need to be restarted.
    Io,
}

/// An error from a card backend or the DSP: a kind to act on and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
