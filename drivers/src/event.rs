//! What a card reports. Backends send [`CardEvent`]s on the crossbeam channel they were
//! created with; the engine consumes them in order.

use serde::{Deserialize, Serialize};

use crate::cause::Cause;
use crate::channel::ChannelId;
use crate::signal::{CallerCategory, Tone};
use crate::time::Instant;

/// One event from a card, stamped with the time the backend saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardEvent {
    pub time: Instant,
    pub kind: EventKind,
}

/// Which side ended a call.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// We released (a [`Command::Release`](crate::Command::Release) or a reject).
    Local,
    /// The network or the far end released.
    Remote,
}

/// Why a play ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayEnd {
    /// Played to the end.
    Completed,
    /// Stopped by a command.
    Stopped,
    /// Stopped by a DTMF digit (barge-in was asked for).
    Digit,
    /// The channel was released while playing.
    Released,
}

/// E1 span alarms (ITU-T G.704/G.732 and their usual names).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alarm {
    /// Loss of signal (red).
    Los,
    /// Loss of frame alignment (red).
    Lof,
    /// Alarm indication signal, all ones from upstream (blue).
    Ais,
    /// Remote alarm indication: the far end has lost our signal (yellow).
    Rai,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A call arrives on a trunk (ISDN SETUP, ISUP IAM, R2 seizure with digits, FXO ring
    /// with caller ID).
    Offered {
        ch: ChannelId,
        /// The calling number (ANI), when presented.
        ani: Option<String>,
        /// The called number (DNIS); empty on an FXO line that carries none.
        dnis: String,
        category: CallerCategory,
    },
    /// A call we placed is alerting at the far end (ISDN ALERTING, ringback heard).
    Alerting { ch: ChannelId },
    /// A call is answered: the far end answered our call, or our answer took effect.
    Answered { ch: ChannelId },
    /// The call on the channel is released; the channel is idle again.
    Released { ch: ChannelId, cause: Cause, by: Side },
    /// A station's handset went off hook.
    OffHook { ch: ChannelId },
    /// A station's handset went on hook.
    OnHook { ch: ChannelId },
    /// A station's hook switch was flashed (on hook for 100–800 ms).
    HookFlash { ch: ChannelId },
    /// A DTMF digit was received: when the tone started and when it ended.
    Digit { ch: ChannelId, digit: char, start: Instant, end: Instant },
    /// A call-progress or fax tone was recognised (its cadence, where it has one).
    ToneDetected { ch: ChannelId, tone: Tone },
    /// A play ended.
    PlayFinished { ch: ChannelId, id: u32, reason: PlayEnd },
    /// A tap (recording) ended: stopped, or the channel was released. `frames` were
    /// delivered to the sink; `dropped` found it full (a recorder that fell behind) and
    /// were lost, counted here so that a gap in a recording is never silent.
    RecordFinished { ch: ChannelId, id: u32, frames: u64, dropped: u64 },
    /// A span alarm was raised (`raised = true`) or cleared.
    SpanAlarm { card: u16, span: u8, alarm: Alarm, raised: bool },
    /// A channel went out of service (alarm, maintenance, far end blocking).
    Blocked { ch: ChannelId, reason: String },
    /// A channel is back in service.
    Unblocked { ch: ChannelId },
}

impl EventKind {
    /// The channel the event is about, if it is about one.
    pub fn channel(&self) -> Option<ChannelId> {
        use EventKind::*;
        match self {
            Offered { ch, .. }
            | Alerting { ch }
            | Answered { ch }
            | Released { ch, .. }
            | OffHook { ch }
            | OnHook { ch }
            | HookFlash { ch }
            | Digit { ch, .. }
            | ToneDetected { ch, .. }
            | PlayFinished { ch, .. }
            | RecordFinished { ch, .. }
            | Blocked { ch, .. }
            | Unblocked { ch } => Some(*ch),
            SpanAlarm { .. } => None,
        }
    }
}
