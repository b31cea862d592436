//! The [`Card`] trait: what every backend (the simulator, DAHDI, a vendor SDK) offers the
//! engine.
//!
//! The required core is small: describe yourself, carry out a [`Command`], and advance
//! to a point in time. Events go out on the crossbeam [`Sender`](crossbeam_channel::Sender)
//! the backend was created with, so a hardware backend can send from its own threads and
//! the engine thread never waits on a card. Time is always passed in; no backend reads a
//! clock for its logic, so the simulator runs the same in virtual and real time.
//! Backends never decide call logic: they report and obey.

use crate::cause::Cause;
use crate::channel::{ChannelId, ChannelInfo};
use crate::command::{Command, PlaySource};
use crate::error::Result;
use crate::signal::{CallerCategory, CallerId};
use crate::time::Instant;

/// What a card can do, as data. New fields come with defaults, so backends written
/// against an older version keep compiling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// A name for logs and `hotline cards`: "simulator", "DAHDI", ...
    pub backend: String,
    /// Media flows as real 8 kHz audio (prompts, taps, in-band DTMF and tones).
    /// False for a signalling-only card (the simulator's fast mode).
    pub audio: bool,
    /// DTMF detection on received audio, reported as [`EventKind::Digit`](crate::EventKind::Digit).
    pub dtmf_detection: bool,
    /// Call-progress and fax tone detection.
    pub tone_detection: bool,
    /// Caller ID generation toward stations.
    pub caller_id_generation: bool,
    /// Switching channels on the card's bus (connect, one-way listen).
    pub bus_switching: bool,
    /// How many conference bridges the card has.
    pub conference_bridges: u16,
    /// How many members one bridge takes.
    pub conference_members: u16,
}

impl Capabilities {
    /// Capabilities with every field at its default, named for `backend`; set the
    /// fields the backend has.
    pub fn new(backend: impl Into<String>) -> Self {
        Capabilities { backend: backend.into(), ..Default::default() }
    }
}

/// A telephony card.
pub trait Card {
    /// What the card can do.
    fn capabilities(&self) -> &Capabilities;

    /// Every channel on the card, with its kind and current state.
    fn channels(&self) -> Vec<ChannelInfo>;

    /// Carry out a command at time `now`. An error means nothing was done; the reason's
    /// [`ErrorKind`](crate::ErrorKind) says what to do about it. Results of a command
    /// that take time (an answer, a finished play) arrive later as events.
    fn execute(&mut self, now: Instant, command: Command) -> Result<()>;

    /// Advance the card to `now`: run what was due, send the events that became due.
    /// Returns when it next needs to be polled (`None`: only when a command arrives).
    fn poll(&mut self, now: Instant) -> Result<Option<Instant>>;

    // Provided conveniences over `execute`.

    fn accept(&mut self, now: Instant, ch: ChannelId) -> Result<()> {
        self.execute(now, Command::Accept { ch })
    }
    fn answer(&mut self, now: Instant, ch: ChannelId) -> Result<()> {
        self.execute(now, Command::Answer { ch })
    }
    fn reject(&mut self, now: Instant, ch: ChannelId, cause: Cause) -> Result<()> {
        self.execute(now, Command::Reject { ch, cause })
    }
    fn release(&mut self, now: Instant, ch: ChannelId, cause: Cause) -> Result<()> {
        self.execute(now, Command::Release { ch, cause })
    }
    fn place_call(
        &mut self,
        now: Instant,
        ch: ChannelId,
        called: &str,
        calling: Option<&str>,
        category: CallerCategory,
    ) -> Result<()> {
        self.execute(
            now,
            Command::PlaceCall {
                ch,
                called: called.to_string(),
                calling: calling.map(str::to_string),
                category,
            },
        )
    }
    fn ring_station(&mut self, now: Instant, ch: ChannelId, caller_id: Option<CallerId>) -> Result<()> {
        self.execute(now, Command::RingStation { ch, caller_id })
    }
    fn play(
        &mut self,
        now: Instant,
        ch: ChannelId,
        id: u32,
        source: PlaySource,
        barge_in: bool,
    ) -> Result<()> {
        self.execute(now, Command::Play { ch, id, source, barge_in })
    }
    fn send_digits(&mut self, now: Instant, ch: ChannelId, digits: &str) -> Result<()> {
        self.execute(now, Command::SendDigits { ch, digits: digits.to_string() })
    }
    fn connect(&mut self, now: Instant, a: ChannelId, b: ChannelId) -> Result<()> {
        self.execute(now, Command::Connect { a, b })
    }
}
