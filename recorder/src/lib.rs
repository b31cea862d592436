//! Hotline's call recorder: writers on their own threads that turn tapped channel audio
//! into WAV or MP3 files, crash repair, and retention.
//!
//! How it fits: the engine thread decides *what* to record (the recording policy in
//! hotline-cti) and calls [`Recorder::begin`], which returns the `Sender<TapFrame>` to
//! hand to `Command::StartTap` for every channel of the call. From then on the card
//! sends 20 ms frames straight to a writer thread; the engine thread never touches audio
//! and never waits on the disk. When the recording ends (the engine calls
//! [`Recorder::end`], or the writer ends it itself on max length, silence or when every
//! tap is gone) a [`RecorderEvent`] comes back on the receiver [`Recorder::spawn`] gave.
//!
//! - [`writer`]: the writer threads, frame alignment and mixing.
//! - [`sink`]: the file formats (WAV PCM16, A-law, mu-law; MP3 through LAME).
//! - [`repair`]: crash repair on startup ([`repair_dir`]).
//! - [`retention`]: what to delete when (classes, tags, disk watermark), free space.
//! - [`config`]: the `[recording]` table of the installation file.
//! - [`decode`]: our files back to 8 kHz PCM, and playback behind the `audio` feature.
//!
//! A recording is a single file with no sidecar: what the store needs to index it comes
//! in the [`RecorderEvent`] and from the file itself. While it is written the file is
//! named `PATH.part`; it is renamed to `PATH` when finished.

#![deny(unsafe_code)]

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use hotline_drivers::ChannelId;

pub mod config;
pub mod decode;
pub mod repair;
pub mod retention;
pub mod sink;
pub mod writer;

pub use config::RecordingConfig;
pub use repair::{repair_dir, Repaired};
pub use writer::{Recorder, RecorderConfig};

/// The suffix a recording carries while it is being written.
pub const PART_SUFFIX: &str = ".part";

/// How the audio is stored.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// RIFF WAVE at 8 kHz in one of the card encodings.
    Wav(WavEncoding),
    /// MPEG-2.5 layer III at 8 kHz, constant bit rate: 8, 16, 24, 32, 40, 48 or 64 kbit/s.
    Mp3 { kbps: u16 },
}

/// The sample encoding of a WAV recording.
pub type WavEncoding = hotline_drivers::dsp::wav::Encoding;

impl Format {
    /// The file name extension for this format (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Wav(_) => "wav",
            Format::Mp3 { .. } => "mp3",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Wav(e) => write!(f, "wav/{e}"),
            Format::Mp3 { kbps } => write!(f, "mp3/{kbps}k"),
        }
    }
}

/// Which channel of the file a leg goes to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's side: the left channel of a stereo file.
    Caller,
    /// The agent's side: the right channel of a stereo file.
    Agent,
}

/// What goes where in the file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Two channels: the caller's trunk channel left, the agent's station right.
    Stereo { left: ChannelId, right: ChannelId },
    /// One channel: every listed channel mixed (a voicemail has one).
    Mono { chs: Vec<ChannelId> },
}

impl Layout {
    /// The channels the recording starts with, and their sides (mono legs are all
    /// [`Side::Caller`]; in a mono file sides do not matter).
    pub fn legs(&self) -> Vec<(ChannelId, Side)> {
        match self {
            Layout::Stereo { left, right } => vec![(*left, Side::Caller), (*right, Side::Agent)],
            Layout::Mono { chs } => chs.iter().map(|&c| (c, Side::Caller)).collect(),
        }
    }

    /// Channels in the file: 2 for stereo, 1 for mono.
    pub fn channels(&self) -> u16 {
        match self {
            Layout::Stereo { .. } => 2,
            Layout::Mono { .. } => 1,
        }
    }
}

/// One recording to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSpec {
    /// The caller's identifier (the store's recording id). Unique among running
    /// recordings.
    pub id: u64,
    /// The finished file's path; it is written as `path.part` until it is finished. The
    /// directory is created if missing.
    pub path: PathBuf,
    pub format: Format,
    pub layout: Layout,
    /// End by itself after this much audio ([`EndReason::MaxLength`]).
    pub max_len: Option<Duration>,
    /// End by itself after this much continuous silence ([`EndReason::Silence`]); the
    /// trailing silence is not kept. For voicemail.
    pub silence_end: Option<Duration>,
}

/// Why a recording ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// [`Recorder::end`] was called.
    Stopped,
    /// It reached its `max_len`.
    MaxLength,
    /// It was silent for `silence_end`.
    Silence,
    /// Every sender of its frames was dropped (the card drops a tap's sender when the
    /// channel is released or the tap stopped) before [`Recorder::end`].
    ChannelGone,
}

impl EndReason {
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Stopped => "stopped",
            EndReason::MaxLength => "max_length",
            EndReason::Silence => "silence",
            EndReason::ChannelGone => "channel_gone",
        }
    }
}

/// What a writer reports back to the engine thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecorderEvent {
    /// The file is complete at `path`.
    Finished {
        id: u64,
        path: PathBuf,
        /// Audio in the file.
        duration: Duration,
        /// Frames received and placed, all legs together.
        frames: u64,
        /// Frames missing from a leg's timeline (written as silence): what a card's full
        /// tap queue costs, since the card drops frames it cannot send.
        dropped: u64,
        /// Frames that arrived but could not be placed: too late for their slot, a
        /// duplicate, from a channel that is no leg of the recording, or with a time far
        /// out of line.
        unplaced: u64,
        reason: EndReason,
    },
    /// The recording could not be written (disk full, no permission). What was written
    /// before is kept: a `.part` file that [`repair_dir`] will finish on next startup.
    Failed { id: u64, message: String },
}

/// What went wrong, so what the caller should do.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A recording with this id runs already: pick another id.
    DuplicateId,
    /// No recording with this id runs (it ended, or never began): nothing to do.
    UnknownId,
    /// The spec is wrong (no channels, unsupported MP3 bit rate): fix the caller.
    InvalidSpec,
    /// The recorder's writer threads are gone (shut down or panicked): restart it.
    Stopped,
}

/// An error from the recorder's API: a kind to act on, a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecorderError {
    kind: ErrorKind,
    message: String,
}

impl RecorderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RecorderError { kind, message: message.into() }
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RecorderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RecorderError {}

/// The MP3 bit rates LAME offers at 8 kHz (MPEG-2.5 layer III) through the encoder crate.
pub const MP3_KBPS: [u16; 7] = [8, 16, 24, 32, 40, 48, 64];
