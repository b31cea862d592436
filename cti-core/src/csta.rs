//! The CSTA call model as clients see it (ECMA-269 names): devices, calls, connections
//! and their states, the services a client invokes, the events the engine reports,
//! and the error values a failed service returns.

use std::collections::BTreeMap;
use std::fmt;

use hotline_drivers::{Cause, ChannelId, Instant};

/// A call, numbered by the engine from 1.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call#{}", self.0)
    }
}

/// A device in the CSTA sense: something a call connects to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceId {
    /// A station (an analog phone on an FXS port), by extension number.
    Station(String),
    /// A trunk channel: the network side of an inbound or outbound call. The far
    /// party's number travels in the events (calling/called numbers).
    Trunk(ChannelId),
    /// An ACD group (queue), by name.
    Queue(String),
    /// An IVR flow or voicemail the call was handed to.
    Ivr(String),
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceId::Station(e) => write!(f, "station:{e}"),
            DeviceId::Trunk(c) => write!(f, "trunk:{c}"),
            DeviceId::Queue(q) => write!(f, "queue:{q}"),
            DeviceId::Ivr(x) => write!(f, "ivr:{x}"),
        }
    }
}

/// A connection: a device's part in a call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    pub call: CallId,
    pub device: DeviceId,
}

/// CSTA connection states.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    Null,
    /// The device is originating (off hook, dialling).
    Initiated,
    /// The device is being alerted (ringing).
    Alerting,
    Connected,
    Held,
    /// The call waits at the device (a queue).
    Queued,
    /// The call could not be completed (busy, no route).
    Fail,
}

/// Why an event happened, where CSTA names it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventCause {
    NewCall,
    Normal,
    /// Distributed by the ACD to an agent.
    Distributed,
    /// Moved by a queue's overflow rule.
    Overflow,
    /// Ring timeout: offered to the next agent.
    NoAnswer,
    Transfer,
    Conference,
    Consultation,
    Busy,
    Blocked,
    CallBack,
    /// Caught by the blacklist.
    CallNotAnswered,
    /// Re-queued at the head after an agent missed it.
    Redirected,
}

impl EventCause {
    /// The cause's name on the wire and in call records (`new_call`, `distributed`, ...).
    pub fn name(self) -> &'static str {
        match self {
            EventCause::NewCall => "new_call",
            EventCause::Normal => "normal",
            EventCause::Distributed => "distributed",
            EventCause::Overflow => "overflow",
            EventCause::NoAnswer => "no_answer",
            EventCause::Transfer => "transfer",
            EventCause::Conference => "conference",
            EventCause::Consultation => "consultation",
            EventCause::Busy => "busy",
            EventCause::Blocked => "blocked",
            EventCause::CallBack => "call_back",
            EventCause::CallNotAnswered => "call_not_answered",
            EventCause::Redirected => "redirected",
        }
    }
}

/// What a not-ready agent gives as reason, or why an agent changed state.
pub type Reason = String;

/// Agent states (CSTA agent state, plus the ringing sub-state a call center shows).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AgentState {
    LoggedOut,
    Ready,
    NotReady(Reason),
    /// A call is ringing at the agent's station.
    Ringing,
    Busy,
    WorkingAfterCall,
}

impl AgentState {
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged out",
            AgentState::Ready => "ready",
            AgentState::NotReady(_) => "not ready",
            AgentState::Ringing => "ringing",
            AgentState::Busy => "busy",
            AgentState::WorkingAfterCall => "working after call",
        }
    }
}

/// Agent events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentEventKind {
    LoggedOn {
        station: Option<String>,
    },
    LoggedOff,
    Ready,
    NotReady {
        reason: Reason,
    },
    WorkingAfterCall,
    /// A call was offered and not answered in time.
    Missed {
        call: CallId,
    },
}

/// What the engine reports to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CstaEvent {
    /// A device went off hook / started a call.
    ServiceInitiated {
        call: CallId,
        device: DeviceId,
    },
    /// A call was dialled from a device.
    Originated {
        call: CallId,
        calling: DeviceId,
        called: String,
    },
    /// A device is alerted.
    Delivered {
        call: CallId,
        alerting: DeviceId,
        calling: String,
        called: String,
        cause: EventCause,
    },
    /// A device answered.
    Established {
        call: CallId,
        answering: DeviceId,
        calling: String,
        called: String,
    },
    /// The call waits in a queue.
    Queued {
        call: CallId,
        queue: String,
        position: usize,
        cause: EventCause,
        /// The caller's number (empty when not presented) and the number dialled, as
        /// in `Delivered`.
        calling: String,
        called: String,
    },
    /// The call moved from one device to another without being answered.
    Diverted {
        call: CallId,
        from: DeviceId,
        to: DeviceId,
        cause: EventCause,
    },
    Held {
        call: CallId,
        holding: DeviceId,
    },
    Retrieved {
        call: CallId,
        retrieving: DeviceId,
    },
    /// A device left the call.
    ConnectionCleared {
        call: CallId,
        releasing: DeviceId,
        cause: Cause,
    },
    /// The whole call ended.
    CallCleared {
        call: CallId,
        cause: Cause,
    },
    /// `transferring` joined the parties of `primary` (held) and `secondary` into `primary`.
    Transferred {
        primary: CallId,
        secondary: CallId,
        transferring: DeviceId,
        /// Where the call went, when known (the consulted party, the queue).
        transferred_to: Option<DeviceId>,
    },
    Conferenced {
        primary: CallId,
        secondary: CallId,
        controller: DeviceId,
        added: Option<DeviceId>,
    },
    /// The call could not reach a device.
    Failed {
        call: CallId,
        failing: DeviceId,
        cause: Cause,
    },
    /// Something happened to an agent.
    Agent {
        agent: String,
        kind: AgentEventKind,
    },
    /// The call was handed over to an IVR flow or voicemail (the IVR takes it from here):
    /// `to` is `ivr:FLOW` or, for a voicemail box, `ivr:voicemail:BOX`; `ch` is the
    /// caller's channel, which the IVR plays to and hears keys on.
    HandedOff {
        call: CallId,
        to: DeviceId,
        ch: Option<hotline_drivers::ChannelId>,
    },
    /// A supervisor joined a call.
    Supervising {
        call: CallId,
        supervisor: String,
        mode: SupervisionMode,
    },
}

/// How a supervisor takes part in an agent's call.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SupervisionMode {
    /// Hears both parties, nobody hears the supervisor.
    Monitor,
    /// Hears both; only the agent hears the supervisor.
    Whisper,
    /// Three-way: everyone hears everyone.
    Barge,
    /// Takes the call over; the agent drops.
    Intercept,
}

/// Requests to change an agent's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentRequest {
    /// Log in at a station (extension), or with none (a supervisor who only watches).
    LogIn {
        station: Option<String>,
        password: Option<String>,
    },
    LogOut,
    Ready,
    NotReady {
        reason: Reason,
    },
}

/// The CSTA services a client invokes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Service {
    /// Call `called` from a station: the station rings first (analog), then the
    /// engine dials once it is off hook.
    MakeCall {
        calling: String,
        called: String,
    },
    /// Answer an alerting connection at an off-hook station.
    AnswerCall {
        call: CallId,
        device: DeviceId,
    },
    ClearConnection {
        call: CallId,
        device: DeviceId,
    },
    ClearCall {
        call: CallId,
    },
    HoldCall {
        call: CallId,
        device: DeviceId,
    },
    RetrieveCall {
        call: CallId,
        device: DeviceId,
    },
    /// Hold `held` and call `called` from `device`.
    ConsultationCall {
        held: CallId,
        device: DeviceId,
        called: String,
    },
    /// Join the held call's other party with the consultation call's, and drop `device`.
    TransferCall {
        held: CallId,
        active: CallId,
        device: DeviceId,
    },
    /// Send the call from `device` to `to` (an extension, a queue number, or an external
    /// number with the trunk group's prefix) without consulting.
    SingleStepTransferCall {
        call: CallId,
        device: DeviceId,
        to: String,
    },
    /// Join the held call into the active one: a conference of everyone.
    ConferenceCall {
        held: CallId,
        active: CallId,
        device: DeviceId,
    },
    SetAgentState {
        agent: String,
        request: AgentRequest,
    },
    GetAgentState {
        agent: String,
    },
    /// A supervisor at a logged-in station joins the call of an agent.
    Supervise {
        supervisor: String,
        agent: String,
        mode: SupervisionMode,
    },
    /// Add key/value data to a call; it travels with the call.
    SetCallData {
        call: CallId,
        key: String,
        value: String,
    },
    /// Hold the active call and retrieve the held one, in one step.
    AlternateCall {
        held: CallId,
        active: CallId,
        device: DeviceId,
    },
    /// Drop the active call and retrieve the held one.
    ReconnectCall {
        held: CallId,
        active: CallId,
        device: DeviceId,
    },
    /// Send a call alerting at `device` somewhere else before it is answered.
    DeflectCall {
        call: CallId,
        device: DeviceId,
        to: String,
    },
    /// Send DTMF digits from `device` into the call (toward the trunk parties).
    GenerateDigits {
        call: CallId,
        device: DeviceId,
        digits: String,
    },
    SnapshotCall {
        call: CallId,
    },
    SnapshotDevice {
        device: DeviceId,
    },
    SnapshotQueue {
        queue: String,
    },
    /// Every agent's state (of one agent group, or all), for a supervisor's wallboard.
    SnapshotAgents {
        group: Option<String>,
    },
    /// Record this call from now on (an agent's or supervisor's request; calls are
    /// recorded from answer by default, see the recording policy).
    StartRecording {
        call: CallId,
    },
    /// Stop recording this call.
    StopRecording {
        call: CallId,
    },
}

/// What a successful service returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceResult {
    Ok,
    /// A new call was created (MakeCall, ConsultationCall).
    Call(CallId),
    /// An agent's state, since when, and their counters (kept across a desktop
    /// reconnect): calls answered per queue, and calls missed in a row.
    AgentState {
        state: AgentState,
        since: Instant,
        answered: Vec<(String, u64)>,
        missed_in_a_row: u32,
    },
    /// The connections of a call and its attached data.
    CallSnapshot {
        parties: Vec<(DeviceId, ConnectionState)>,
        data: BTreeMap<String, String>,
    },
    /// The calls a device takes part in.
    DeviceSnapshot {
        calls: Vec<(CallId, ConnectionState)>,
    },
    /// (agent id, state, since), in configuration order.
    AgentsSnapshot {
        agents: Vec<(String, AgentState, Instant)>,
    },
    QueueSnapshot {
        waiting: usize,
        ready: usize,
        logged_in: usize,
        oldest_since: Option<Instant>,
    },
}

/// CSTA error values (ECMA-269 §9.2, the groups a client can act on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CstaError {
    /// Operation error: the object named does not exist.
    InvalidCallId,
    InvalidDeviceId(String),
    InvalidAgentId(String),
    /// State incompatibility: the device or call is not in a state for this.
    InvalidConnectionState,
    InvalidDeviceState,
    InvalidAgentState,
    /// Security: a wrong password.
    InvalidPassword,
    /// The device cannot do this (an analog phone cannot be taken off hook remotely).
    ServiceNotSupported,
    /// System resources: no free trunk channel, no conference bridge.
    ResourceBusy,
    /// Security: the requester may not do this (a supervisor outside their groups).
    PrivilegeViolation,
    /// System resources: an outbound call now would leave the named queue with fewer
    /// ready agents than it keeps for inbound (`reserve_idle`); try again later.
    ReservedForInbound(String),
}

impl fmt::Display for CstaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CstaError::InvalidCallId => write!(f, "invalid call id"),
            CstaError::InvalidDeviceId(d) => write!(f, "invalid device id {d}"),
            CstaError::InvalidAgentId(a) => write!(f, "invalid agent id {a}"),
            CstaError::InvalidConnectionState => write!(f, "invalid connection state"),
            CstaError::InvalidDeviceState => write!(f, "invalid device state"),
            CstaError::InvalidAgentState => write!(f, "invalid agent state"),
            CstaError::InvalidPassword => write!(f, "invalid password"),
            CstaError::ServiceNotSupported => write!(f, "service not supported"),
            CstaError::ResourceBusy => write!(f, "resource busy"),
            CstaError::PrivilegeViolation => write!(f, "privilege violation"),
            CstaError::ReservedForInbound(q) => {
                write!(f, "agents of queue {q} are reserved for inbound calls")
            }
        }
    }
}

/// A record for storage: call detail records and agent state intervals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// One call from start to clear.
    Call {
        call: CallId,
        ani: Option<String>,
        dnis: String,
        location: Option<String>,
        vip: bool,
        queue: Option<String>,
        agent: Option<String>,
        started: Instant,
        queued: Option<Instant>,
        answered: Option<Instant>,
        ended: Instant,
        cause: Cause,
        data: BTreeMap<String, String>,
    },
    /// A waiting caller asked to be called back instead (pressed 1 after the offer).
    Callback { call: CallId, number: Option<String>, queue: String, at: Instant },
    /// An agent spent `from..to` in `state`.
    AgentState { agent: String, state: AgentState, from: Instant, to: Instant },
}

/// Something the caller should be told. The engine decides when and what; the IVR
/// turns it into prompts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// The caller's place in line and the expected wait.
    Position { call: CallId, ch: ChannelId, position: usize, expected_wait: std::time::Duration },
    /// Offer to leave a callback number: press 1.
    CallbackOffer { call: CallId, ch: ChannelId },
    /// The work number of the agent who answers.
    AgentNumber { call: CallId, ch: ChannelId, agent: String },
}
