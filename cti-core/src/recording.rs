//! The recording policy: which calls are recorded, when recording starts and stops,
//! and which channels join a recording. Sans-IO: it reads the engine's outputs and the
//! card events the engine is given, and emits [`RecordAction`]s that the engine thread
//! turns into `Recorder::begin`/`end` calls, `Command::StartTap`s, and a line in the
//! recording index ([`RecordAction::index_op`]).
//!
//! Three reasons to record:
//! - policy: every call an agent answers, from answer to release. On by default;
//!   `record = false` on a queue turns it off for that queue's calls, and `record` on
//!   an agent overrides the queue either way.
//! - on demand: [`RecordingPolicy::start_on_demand`] / [`RecordingPolicy::stop_on_demand`]
//!   (an agent's desktop or a supervisor; the glue checks who may).
//! - scheduled: this agent, from this time, for this long
//!   ([`RecordingPolicy::set_schedules`], from the store's `recording_schedules`): an
//!   agent call answered inside the window is recorded to its end, whatever the policy.
//!
//! A recording follows one agent in one call: it stops when the call clears or the
//! agent leaves it (a transfer away), and whoever joins later by conference is added
//! as a leg ([`RecordAction::AddLeg`]).

use std::collections::{HashMap, VecDeque};

use hotline_drivers::{CardEvent, ChannelId, EventKind, Instant};

use crate::cdr::CallKey;
use crate::csta::{AgentEventKind, CallId, CstaEvent, DeviceId};
use crate::engine::Output;
use crate::store::{RecordingReason, RecordingStarted, StoreOp};
use crate::Config;

/// What the recorder should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordAction {
    /// Start recording `call`: the caller's side is `caller_ch` (left channel in
    /// stereo), the agent's `agent_ch` (right).
    Start { call: u64, rec_id: u64, caller_ch: ChannelId, agent_ch: ChannelId, meta: RecordingMeta },
    /// Stop and close the file.
    Stop { rec_id: u64 },
    /// Another channel joined the recorded conversation (a conference): mix it in.
    AddLeg { rec_id: u64, ch: ChannelId },
}

impl RecordAction {
    /// The recording index line for a `Start` (send it to the store writer).
    pub fn index_op(&self, run: i64) -> Option<StoreOp> {
        let RecordAction::Start { call, rec_id, meta, .. } = self else { return None };
        Some(StoreOp::RecordingStarted(RecordingStarted {
            id: *rec_id,
            call: Some(CallKey { run, call: *call }),
            agent: meta.agent.clone(),
            queue: meta.queue.clone(),
            caller: meta.caller.clone(),
            started_ms: meta.started_ms,
            path: meta.path.clone(),
            format: meta.format.clone(),
            reason: meta.reason,
            retention: meta.retention.clone(),
        }))
    }
}

/// What is known about a recording when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingMeta {
    pub agent: Option<String>,
    pub queue: Option<String>,
    pub caller: Option<String>,
    pub started_ms: i64,
    /// Where the file goes: `DIR/YYYYMMDD/ID.EXT`.
    pub path: String,
    pub format: String,
    pub reason: RecordingReason,
    pub retention: String,
}

/// Why an on-demand request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordingError {
    /// No such call, or nobody in it is connected to an agent's station yet.
    NotRecordable,
    /// It is being recorded already (start) / is not being recorded (stop).
    AlreadyRecording,
    NotRecording,
}

impl std::fmt::Display for RecordingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordingError::NotRecordable => "the call has no connected agent to record",
            RecordingError::AlreadyRecording => "the call is being recorded already",
            RecordingError::NotRecording => "the call is not being recorded",
        })
    }
}

/// Settings of the policy (from the configuration).
#[derive(Clone, Debug)]
pub struct PolicySettings {
    pub dir: String,
    /// File extension and index name: `wav-pcm16` → `.wav`, `mp3-32` → `.mp3`.
    pub format: String,
    pub retention: String,
    /// Unix ms at engine time zero.
    pub wall_base: i64,
    /// The first recording id to give (the store's `next_recording_id`).
    pub first_id: u64,
}

#[derive(Debug, Default)]
struct CallInfo {
    /// The first party: the inbound trunk, or the station that started the call.
    first: Option<(DeviceId, Option<ChannelId>)>,
    queue: Option<String>,
    caller: Option<String>,
    /// Connected parties other than the first, with channels.
    connected: Vec<(DeviceId, ChannelId)>,
    /// (rec id, agent station) of the running recording.
    recording: Option<(u64, DeviceId)>,
}

/// The policy. See the module documentation.
#[derive(Debug)]
pub struct RecordingPolicy {
    s: PolicySettings,
    next_id: u64,
    queue_record: HashMap<String, bool>,
    agent_record: HashMap<String, Option<bool>>,
    station_ch: HashMap<String, ChannelId>,
    agent_at: HashMap<String, String>,
    schedules: Vec<(String, i64, i64)>,
    calls: HashMap<CallId, CallInfo>,
    offered: Option<(ChannelId, Option<String>)>,
    out: VecDeque<RecordAction>,
}

impl RecordingPolicy {
    pub fn new(cfg: &Config, settings: PolicySettings) -> RecordingPolicy {
        RecordingPolicy {
            next_id: settings.first_id.max(1),
            s: settings,
            queue_record: cfg.queues.iter().map(|q| (q.name.clone(), q.record)).collect(),
            agent_record: cfg.agents.iter().map(|a| (a.id.clone(), a.record)).collect(),
            station_ch: cfg.stations.iter().map(|s| (s.extension.clone(), s.port)).collect(),
            agent_at: HashMap::new(),
            schedules: Vec::new(),
            calls: HashMap::new(),
            offered: None,
            out: VecDeque::new(),
        }
    }

    /// Replace the recording schedules: (agent, from Unix ms, until Unix ms).
    pub fn set_schedules(&mut self, schedules: Vec<(String, i64, i64)>) {
        self.schedules = schedules;
    }

    pub fn poll(&mut self) -> Option<RecordAction> {
        self.out.pop_front()
    }

    /// A card event given to the engine: an `Offered` names the trunk of the next call.
    pub fn handle_card(&mut self, _now: Instant, ev: &CardEvent) {
        self.offered = match &ev.kind {
            EventKind::Offered { ch, ani, .. } => Some((*ch, ani.clone())),
            _ => None,
        };
    }

    fn info(&mut self, call: CallId) -> &mut CallInfo {
        if !self.calls.contains_key(&call) {
            let mut info = CallInfo::default();
            if let Some((ch, ani)) = self.offered.take() {
                info.first = Some((DeviceId::Trunk(ch), Some(ch)));
                info.caller = ani;
            }
            self.calls.insert(call, info);
        }
        self.calls.get_mut(&call).expect("inserted")
    }

    fn channel(&self, d: &DeviceId) -> Option<ChannelId> {
        match d {
            DeviceId::Trunk(ch) => Some(*ch),
            DeviceId::Station(ext) => self.station_ch.get(ext).copied(),
            _ => None,
        }
    }

    fn agent_of(&self, d: &DeviceId) -> Option<String> {
        match d {
            DeviceId::Station(ext) => self.agent_at.get(ext).cloned(),
            _ => None,
        }
    }

    /// An engine output.
    pub fn handle_output(&mut self, now: Instant, out: &Output) {
        let Output::Event(ev) = out else { return };
        match ev {
            CstaEvent::Agent { agent, kind: AgentEventKind::LoggedOn { station } } => {
                self.agent_at.retain(|_, a| a != agent);
                if let Some(ext) = station {
                    self.agent_at.insert(ext.clone(), agent.clone());
                }
            }
            CstaEvent::Agent { agent, kind: AgentEventKind::LoggedOff } => {
                self.agent_at.retain(|_, a| a != agent)
            }
            CstaEvent::ServiceInitiated { call, device } => {
                let ch = self.channel(device);
                let info = self.info(*call);
                info.first = Some((device.clone(), ch));
            }
            CstaEvent::Queued { call, queue, .. } => self.info(*call).queue = Some(queue.clone()),
            // A call that meets the IVR first: its trunk is the caller's side.
            CstaEvent::HandedOff { call, ch, .. } => {
                let info = self.info(*call);
                if info.first.is_none() {
                    info.first = ch.map(|ch| (DeviceId::Trunk(ch), Some(ch)));
                }
            }
            CstaEvent::Delivered { call, calling, .. } => {
                let info = self.info(*call);
                if info.caller.is_none() && !calling.is_empty() {
                    info.caller = Some(calling.clone());
                }
            }
            CstaEvent::Established { call, answering, .. } => self.established(now, *call, answering),
            CstaEvent::Retrieved { .. } => {}
            CstaEvent::ConnectionCleared { call, releasing, .. } => {
                let Some(info) = self.calls.get_mut(call) else { return };
                info.connected.retain(|(d, _)| d != releasing);
                if let Some((id, agent_dev)) = &info.recording {
                    if agent_dev == releasing {
                        self.out.push_back(RecordAction::Stop { rec_id: *id });
                        info.recording = None;
                    }
                }
            }
            CstaEvent::CallCleared { call, .. } => {
                if let Some(CallInfo { recording: Some((id, _)), .. }) = self.calls.remove(call) {
                    self.out.push_back(RecordAction::Stop { rec_id: id });
                }
            }
            CstaEvent::Conferenced { primary, secondary, added, .. } => {
                let joined = self.calls.remove(secondary);
                if let Some((id, _)) = joined.as_ref().and_then(|j| j.recording.clone()) {
                    // The consultation was recorded on its own: it ends here, the
                    // primary recording carries on with everyone.
                    self.out.push_back(RecordAction::Stop { rec_id: id });
                }
                let ch = added.as_ref().and_then(|d| self.channel(d));
                let Some(info) = self.calls.get_mut(primary) else { return };
                if let (Some(d), Some(ch)) = (added, ch) {
                    info.connected.push((d.clone(), ch));
                    if let Some((id, _)) = &info.recording {
                        self.out.push_back(RecordAction::AddLeg { rec_id: *id, ch });
                    }
                }
            }
            CstaEvent::Transferred { primary, secondary, transferring, transferred_to } => {
                if primary != secondary {
                    if let Some(CallInfo { recording: Some((id, _)), .. }) = self.calls.remove(secondary) {
                        self.out.push_back(RecordAction::Stop { rec_id: id });
                    }
                }
                let Some(info) = self.calls.get_mut(primary) else { return };
                info.connected.retain(|(d, _)| d != transferring);
                if let Some((id, agent_dev)) = &info.recording {
                    if agent_dev == transferring {
                        self.out.push_back(RecordAction::Stop { rec_id: *id });
                        info.recording = None;
                    }
                }
                // The party the call went to, when already talking, is an agent call now.
                if let Some(to) = transferred_to.clone() {
                    if let Some(ch) = self.channel(&to) {
                        if matches!(to, DeviceId::Station(_)) {
                            let info = self.calls.get_mut(primary).expect("present");
                            if !info.connected.iter().any(|(d, _)| *d == to) {
                                info.connected.push((to.clone(), ch));
                            }
                            self.consider(now, *primary, &to, None);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn established(&mut self, now: Instant, call: CallId, answering: &DeviceId) {
        let ch = self.channel(answering);
        let info = self.info(call);
        if let Some(ch) = ch {
            if !info.connected.iter().any(|(d, _)| d == answering) {
                info.connected.push((answering.clone(), ch));
            }
        }
        if self.agent_of(answering).is_some() {
            self.consider(now, call, answering, None);
        } else if let Some((first, _)) = self.calls.get(&call).and_then(|i| i.first.clone()) {
            // An agent's own call (outbound, consultation): recorded from the answer.
            if self.agent_of(&first).is_some() {
                self.consider(now, call, &first, None);
            }
        }
    }

    /// Whether to record the call for the agent at `agent_dev`; start if so.
    fn consider(
        &mut self,
        now: Instant,
        call: CallId,
        agent_dev: &DeviceId,
        force: Option<RecordingReason>,
    ) -> bool {
        let Some(agent) = self.agent_of(agent_dev) else { return false };
        let at = self.s.wall_base + now.as_millis() as i64;
        let Some(info) = self.calls.get(&call) else { return false };
        if info.recording.is_some() {
            return false;
        }
        let reason = match force {
            Some(r) => r,
            None => {
                let by_queue =
                    info.queue.as_ref().and_then(|q| self.queue_record.get(q).copied()).unwrap_or(true);
                let on = self.agent_record.get(&agent).copied().flatten().unwrap_or(by_queue);
                let scheduled = self
                    .schedules
                    .iter()
                    .any(|(a, from, until)| *a == agent && (*from..*until).contains(&at));
                if on {
                    RecordingReason::Policy
                } else if scheduled {
                    RecordingReason::Scheduled
                } else {
                    return false;
                }
            }
        };
        let Some(agent_ch) = self.channel(agent_dev) else { return false };
        // The other side: the first party, or, when the agent is the first party, the
        // first other connected party.
        let other = match &info.first {
            Some((d, Some(ch))) if d != agent_dev => Some(*ch),
            _ => info.connected.iter().find(|(d, _)| d != agent_dev).map(|(_, ch)| *ch),
        };
        let Some(caller_ch) = other else { return false };
        let rec_id = self.next_id;
        self.next_id += 1;
        let ext = if self.s.format.starts_with("mp3") { "mp3" } else { "wav" };
        let day = crate::report::format_local(at, 0);
        let path =
            format!("{}/{}/{rec_id}.{ext}", self.s.dir.trim_end_matches('/'), &day[..10].replace('-', ""));
        let meta = RecordingMeta {
            agent: Some(agent),
            queue: info.queue.clone(),
            caller: info.caller.clone(),
            started_ms: at,
            path,
            format: self.s.format.clone(),
            reason,
            retention: self.s.retention.clone(),
        };
        let extra: Vec<ChannelId> = info
            .connected
            .iter()
            .filter(|(d, ch)| d != agent_dev && *ch != caller_ch)
            .map(|(_, ch)| *ch)
            .collect();
        self.calls.get_mut(&call).expect("present").recording = Some((rec_id, agent_dev.clone()));
        self.out.push_back(RecordAction::Start { call: call.0, rec_id, caller_ch, agent_ch, meta });
        for ch in extra {
            self.out.push_back(RecordAction::AddLeg { rec_id, ch });
        }
        true
    }

    /// Start recording a call now (an agent's or supervisor's request).
    pub fn start_on_demand(&mut self, now: Instant, call: u64) -> Result<u64, RecordingError> {
        let call = CallId(call);
        let info = self.calls.get(&call).ok_or(RecordingError::NotRecordable)?;
        if info.recording.is_some() {
            return Err(RecordingError::AlreadyRecording);
        }
        let agent_dev = info
            .connected
            .iter()
            .map(|(d, _)| d)
            .chain(info.first.as_ref().map(|(d, _)| d))
            .find(|d| self.agent_of(d).is_some())
            .cloned()
            .ok_or(RecordingError::NotRecordable)?;
        if !self.consider(now, call, &agent_dev, Some(RecordingReason::OnDemand)) {
            return Err(RecordingError::NotRecordable);
        }
        Ok(self.calls[&call].recording.as_ref().expect("started").0)
    }

    /// Stop recording a call now.
    pub fn stop_on_demand(&mut self, call: u64) -> Result<u64, RecordingError> {
        let info = self.calls.get_mut(&CallId(call)).ok_or(RecordingError::NotRecording)?;
        let (id, _) = info.recording.take().ok_or(RecordingError::NotRecording)?;
        self.out.push_back(RecordAction::Stop { rec_id: id });
        Ok(id)
    }

    /// The recording running on a call, if any.
    pub fn recording_of(&self, call: u64) -> Option<u64> {
        self.calls.get(&CallId(call))?.recording.as_ref().map(|r| r.0)
    }
}
