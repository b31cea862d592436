//! What a card is told to do. The engine decides; a backend only carries out.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use crate::cause::Cause;
use crate::channel::{ChannelId, ConferenceId};
use crate::signal::{CallerCategory, CallerId, Tone};
use crate::time::Instant;

/// What to play on a channel.
#[derive(Debug, Clone)]
pub enum PlaySource {
    /// A prompt file: WAV, 8 kHz mono, PCM16, A-law or mu-law (`hotline prompt convert`).
    Prompt(PathBuf),
    /// A call-progress tone from the card's tone plan, until stopped.
    Tone(Tone),
    /// A stream of 20 ms frames (160 linear samples at 8 kHz), for music on hold or
    /// synthesized speech; the play ends when the sender is dropped.
    Frames(Receiver<Vec<i16>>),
}

/// Received audio from a tapped channel, one 20 ms frame at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapFrame {
    pub ch: ChannelId,
    pub id: u32,
    pub time: Instant,
    /// 160 linear samples at 8 kHz.
    pub samples: Vec<i16>,
}

/// A conference member's rights: who hears whom. A whispering supervisor talks but the
/// caller must not hear: that is done by a member the caller's channel does not listen
/// to, see [`Command::JoinConference`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemberRights {
    /// Others hear this member.
    pub talk: bool,
    /// This member hears the others.
    pub listen: bool,
    /// Members this one's speech is kept from (by channel), for whisper: a supervisor
    /// whispering to an agent joins with `talk`, `listen` and `hidden_from = [caller]`.
    pub hidden_from: Vec<ChannelId>,
}

impl MemberRights {
    /// Talks and listens: an ordinary conference party (barge-in).
    pub fn full() -> Self {
        MemberRights { talk: true, listen: true, hidden_from: Vec::new() }
    }
    /// Listens only: silent monitoring.
    pub fn listen_only() -> Self {
        MemberRights { talk: false, listen: true, hidden_from: Vec::new() }
    }
}

impl Default for MemberRights {
    fn default() -> Self {
        MemberRights::full()
    }
}

/// A command to a card. Each names the channel (or bridge) it acts on.
#[derive(Debug, Clone)]
pub enum Command {
    /// Tell the network the offered call is being alerted, without answering
    /// (ISDN ALERTING, R2 ringback): the caller hears ringing.
    Accept { ch: ChannelId },
    /// Answer an offered call (ISDN CONNECT, FXO off hook).
    Answer { ch: ChannelId },
    /// Refuse an offered call with a cause.
    Reject { ch: ChannelId, cause: Cause },
    /// Release the call on the channel (or, on a station, cut it: the phone hears
    /// busy tone until it hangs up).
    Release { ch: ChannelId, cause: Cause },
    /// Place a call on a trunk channel.
    PlaceCall { ch: ChannelId, called: String, calling: Option<String>, category: CallerCategory },
    /// Ring a station, sending caller ID between the first and second ring.
    RingStation { ch: ChannelId, caller_id: Option<CallerId> },
    /// Stop ringing a station.
    StopRinging { ch: ChannelId },
    /// Play to the channel (what its far end hears). `barge_in`: a DTMF digit stops it.
    Play { ch: ChannelId, id: u32, source: PlaySource, barge_in: bool },
    /// Stop whatever plays on the channel.
    StopPlay { ch: ChannelId },
    /// Send DTMF digits on the channel (in band: real tones, ITU-T Q.23 frequencies).
    SendDigits { ch: ChannelId, digits: String },
    /// Copy the channel's received audio to `sink` until stopped or released.
    StartTap { ch: ChannelId, id: u32, sink: Sender<TapFrame> },
    /// Stop a tap.
    StopTap { ch: ChannelId, id: u32 },
    /// Connect two channels on the card's bus, full duplex.
    Connect { a: ChannelId, b: ChannelId },
    /// One-way: `listener` hears `source`; `source` hears nothing from `listener`.
    Listen { listener: ChannelId, source: ChannelId },
    /// Undo every bus connection of the channel (it hears nothing, nobody hears it);
    /// conference memberships are left alone.
    Disconnect { ch: ChannelId },
    /// Add a channel to a conference bridge (created on first join) with these rights.
    JoinConference { conf: ConferenceId, ch: ChannelId, rights: MemberRights },
    /// Change a member's rights.
    SetMemberRights { conf: ConferenceId, ch: ChannelId, rights: MemberRights },
    /// Remove a channel from a bridge; the bridge is freed when its last member leaves.
    LeaveConference { conf: ConferenceId, ch: ChannelId },
    /// Take a channel out of service (maintenance blocking).
    Block { ch: ChannelId },
    /// Return a channel to service.
    Unblock { ch: ChannelId },
}

impl Command {
    /// The channel the command acts on, if one.
    pub fn channel(&self) -> Option<ChannelId> {
        use Command::*;
        match self {
            Accept { ch }
            | Answer { ch }
            | Reject { ch, .. }
            | Release { ch, .. }
            | PlaceCall { ch, .. }
            | RingStation { ch, .. }
            | StopRinging { ch }
            | Play { ch, .. }
            | StopPlay { ch }
            | SendDigits { ch, .. }
            | StartTap { ch, .. }
            | StopTap { ch, .. }
            | Disconnect { ch }
            | JoinConference { ch, .. }
            | SetMemberRights { ch, .. }
            | LeaveConference { ch, .. }
            | Block { ch }
            | Unblock { ch } => Some(*ch),
            Connect { a, .. } => Some(*a),
            Listen { listener, .. } => Some(*listener),
        }
    }
}
