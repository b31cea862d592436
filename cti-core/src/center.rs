//! The engine thread's whole state: the [`Engine`] and what runs beside it on call
//! state: IVR sessions (hotline-ivr), the recordings they ask for, live statistics for
//! wallboards, screen pops, and the drain used by a graceful shutdown.
//!
//! Like the engine it is sans-IO: [`Center::handle`] takes the time and an input,
//! [`Center::poll_output`] gives what must be sent elsewhere (card commands, events for
//! the CTI link, records for the store), [`Center::next_deadline`] says when to call
//! again. `serve` runs it on a real clock; tests run it in virtual time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use hotline_drivers::event::PlayEnd;
use hotline_drivers::{CardEvent, Cause, ChannelId, Command, EventKind, Instant};
use hotline_ivr::{HttpAnswer, HttpRequest, Ivr, IvrOutput, RecordResult, SynthRequest, VoicemailLeft};
use hotline_recorder::RecorderEvent;
use serde::Serialize;

use crate::csta::{CallId, CstaEvent, DeviceId, EventCause, Service, ServiceResult};
use crate::engine::{Engine, Input, Output};

/// What the engine thread is handed.
#[derive(Debug)]
pub enum CenterInput {
    /// An engine input: a card event, a client request, a client gone, ...
    Engine(Input),
    /// The answer to an IVR HTTP request.
    Http(HttpAnswer),
    /// A recorder writer finished or failed a recording.
    Recorder(RecorderEvent),
    /// The TTS worker rendered (or failed to render) a text.
    Synthesized { id: u64, result: Result<std::path::PathBuf, String> },
    /// Stop taking new calls; calls in progress may go on until `limit` has passed,
    /// then they are released (SIGTERM).
    Drain { limit: Duration },
}

/// What the engine thread sends on.
#[derive(Debug)]
pub enum CenterOutput {
    /// A command for the card owning the channel.
    Command(Command),
    /// An engine event or response for the CTI link, stamped with wall-clock time.
    Link { at_unix_ms: i64, output: Output },
    /// A call was delivered to a logged-in agent's station: the agent's screen pop.
    ScreenPop(crate::link::ScreenPop),
    /// An HTTP request for the worker (IVR HTTP node).
    Http(HttpRequest),
    /// A text for the TTS worker.
    Synthesize(SynthRequest),
    /// Start a recording: the runtime calls `Recorder::begin` and taps the channels
    /// into it (`Command::StartTap` with the recorder's sink, tap id = `id as u32`).
    StartRecording(RecordingStart),
    /// End a recording (the runtime calls `Recorder::end`).
    StopRecording { id: u64 },
    /// Another channel joined a recorded conversation: the runtime calls
    /// `Recorder::add_leg` and taps the channel into the recording.
    AddLeg { id: u64, ch: ChannelId },
    /// A write for the store (call records, agent states, recordings, voicemail).
    Store(crate::store::StoreOp),
    /// A caller left a voicemail message.
    Voicemail { at_unix_ms: i64, left: VoicemailLeft },
    /// A call entered an IVR node (for the IVR report).
    IvrNode { at_unix_ms: i64, call: u64, flow: String, node: String },
    /// The figures of the wallboard, once a second.
    Stats(WallboardStats),
    /// Draining finished: no call is left (or the limit passed and the rest were
    /// released).
    Drained,
}

/// A recording the runtime should start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingStart {
    pub id: u64,
    pub call: u64,
    pub path: std::path::PathBuf,
    /// Mono recordings mix every channel; stereo puts the first left (caller) and the
    /// second right (agent).
    pub channels: Vec<ChannelId>,
    pub stereo: bool,
    pub max: Option<Duration>,
    pub silence_end: Option<Duration>,
    /// A voicemail message (the IVR asked for it), not a call recording.
    pub voicemail: bool,
}

/// Today's figures for one queue (since the start of the run or midnight, whichever
/// is later), as the wallboard shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueFigures {
    pub name: String,
    /// Callers waiting now.
    pub waiting: usize,
    /// The longest current wait, seconds.
    pub longest_wait_s: f64,
    pub ready_agents: usize,
    /// Calls that entered the queue.
    pub offered: u64,
    /// Answered by an agent.
    pub answered: u64,
    /// The caller hung up while waiting or ringing.
    pub abandoned: u64,
    /// Sent on by the queue's maximum wait (overflow).
    pub timed_out: u64,
    /// Answered within the service-level threshold.
    pub answered_in_threshold: u64,
    /// `answered_in_threshold / (answered + abandoned after the threshold)`; 1 when
    /// nothing counted yet. See docs/reports.md for the definition.
    pub service_level: f64,
    /// `abandoned / offered`, 0 when nothing was offered.
    pub abandon_rate: f64,
    /// Answered after waiting more than [`LATE_ANSWER`] (15 s).
    pub answered_late: u64,
    /// Total wait of the answered calls, seconds (ASA = this / answered).
    pub answer_wait_s: f64,
    /// Calls whose handling ended (hung up, and after-call work done): AHT's count.
    pub handled: u64,
    /// Their talk (hold included) and after-call work, seconds (AHT = this / handled).
    pub handle_s: f64,
    /// The queue's service-level target, a fraction (`service_level_target` / 100).
    pub service_level_target: f64,
    /// Member agents now: ready, on a call (ringing or talking), in after-call work,
    /// not ready. Logged-out members are not counted.
    pub agents: AgentCounts,
    /// The callers waiting now, longest first.
    pub callers: Vec<WaitingCaller>,
}

/// Agents by state, for a queue or the whole center.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AgentCounts {
    pub ready: usize,
    pub on_call: usize,
    pub wrap_up: usize,
    pub not_ready: usize,
}

impl AgentCounts {
    fn add(&mut self, state: &crate::csta::AgentState) {
        use crate::csta::AgentState as S;
        match state {
            S::Ready => self.ready += 1,
            S::Ringing | S::Busy => self.on_call += 1,
            S::WorkingAfterCall => self.wrap_up += 1,
            S::NotReady(_) => self.not_ready += 1,
            S::LoggedOut => {}
        }
    }
}

/// A caller waiting in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingCaller {
    pub call: u64,
    /// The caller's number; empty when withheld.
    pub calling: String,
    /// When the call entered the queue, Unix milliseconds.
    pub since_unix_ms: i64,
}

/// One agent on the wallboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentFigures {
    pub id: String,
    pub name: String,
    /// "logged out", "ready", "not ready", "ringing", "busy", "working after call".
    pub state: String,
    pub reason: Option<String>,
    /// How long the agent has been in this state, seconds.
    pub state_s: f64,
    pub answered_today: u64,
}

/// A call in progress on the wallboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveCall {
    pub call: u64,
    pub calling: String,
    pub called: String,
    /// "queued", "ringing", "talking", "held", "ivr", "dialling".
    pub state: String,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub since_s: f64,
}

/// Everything the wallboard and the terminal summary show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WallboardStats {
    pub at_unix_ms: i64,
    /// Seconds since the center started.
    pub uptime_s: f64,
    pub queues: Vec<QueueFigures>,
    pub agents: Vec<AgentFigures>,
    pub calls: Vec<LiveCall>,
    pub calls_today: u64,
    pub draining: bool,
    /// Calls in an IVR flow now.
    pub ivr_calls: usize,
    /// Agents by state over the whole center.
    pub agent_totals: AgentCounts,
    /// Each access number: open or closed now, and where its calls go.
    pub access: Vec<crate::engine::AccessNow>,
}

/// The service-level threshold: answered within this many seconds counts.
pub const SERVICE_LEVEL_THRESHOLD: Duration = Duration::from_secs(20);

/// Calls answered after waiting longer than this are counted apart on the wallboard.
pub const LATE_ANSWER: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
struct CallView {
    calling: String,
    called: String,
    state: &'static str,
    queue: Option<usize>,
    queued_at: Option<Instant>,
    agent_station: Option<String>,
    since: Instant,
    started: Instant,
    /// The queue the call was answered from and when (for AHT).
    answered_from: Option<(usize, Instant)>,
    /// The IVR flows the call went through (their labels name its variables).
    flows: Vec<String>,
}

/// The engine and its companions on the engine thread.
#[derive(Debug)]
pub struct Center {
    engine: Engine,
    /// Unix milliseconds at `Instant::ZERO`.
    wall_base_ms: i64,
    now: Instant,
    out: VecDeque<CenterOutput>,
    queues: Vec<QueueFigures>,
    queue_ix: HashMap<String, usize>,
    calls: BTreeMap<CallId, CallView>,
    answered: HashMap<String, u64>,
    calls_today: u64,
    station_agent: HashMap<String, String>,
    /// Agent → the queue of their last answered queue call and, while in after-call
    /// work, when it started (the work counts into the queue's AHT).
    wrap_up: HashMap<String, (usize, Option<Instant>)>,
    next_stats: Instant,
    drain_until: Option<Instant>,
    drained: bool,
    ivr: Option<Ivr>,
    /// Variables every IVR session starts with (from `[ivr] vars`).
    ivr_vars: BTreeMap<String, String>,
    /// Recordings made for the IVR: recorder id → (the IVR's request id, channel).
    ivr_recordings: HashMap<u64, (u64, ChannelId)>,
    next_recording: u64,
    /// Call records for the store.
    cdr: Option<crate::cdr::CdrBuilder>,
    /// Which calls are recorded.
    policy: Option<crate::recording::RecordingPolicy>,
    /// Call recordings running: id → the channels tapped.
    recording_taps: HashMap<u64, Vec<ChannelId>>,
    record_stereo: bool,
}

impl Center {
    /// `wall_base_ms`: Unix milliseconds at engine time zero (schedules, records and
    /// event times are wall-clock; the engine itself counts from zero).
    pub fn new(mut engine: Engine, wall_base_ms: i64) -> Center {
        engine.set_wall_clock(Instant::ZERO, wall_base_ms.div_euclid(1000));
        let queues: Vec<QueueFigures> = engine
            .config()
            .queues
            .iter()
            .map(|q| QueueFigures {
                name: q.name.clone(),
                service_level: 1.0,
                service_level_target: f64::from(q.service_level_target) / 100.0,
                ..Default::default()
            })
            .collect();
        let queue_ix = queues.iter().enumerate().map(|(i, q)| (q.name.clone(), i)).collect();
        Center {
            engine,
            wall_base_ms,
            now: Instant::ZERO,
            out: VecDeque::new(),
            queues,
            queue_ix,
            calls: BTreeMap::new(),
            answered: HashMap::new(),
            calls_today: 0,
            station_agent: HashMap::new(),
            wrap_up: HashMap::new(),
            next_stats: Instant::ZERO,
            drain_until: None,
            drained: false,
            ivr: None,
            ivr_vars: BTreeMap::new(),
            ivr_recordings: HashMap::new(),
            next_recording: IVR_RECORDING_IDS,
            cdr: None,
            policy: None,
            recording_taps: HashMap::new(),
            record_stereo: true,
        }
    }

    /// Keep call records (for the store) and record agent calls as `policy` says.
    pub fn with_records(
        mut self,
        cdr: crate::cdr::CdrBuilder,
        policy: Option<crate::recording::RecordingPolicy>,
        stereo: bool,
    ) -> Center {
        self.cdr = Some(cdr);
        if let (Some(cdr), Some(ivr)) = (self.cdr.as_mut(), self.ivr.as_ref()) {
            cdr.set_closed_branches(crate::cdr::closed_branches(ivr.flows()));
        }
        self.policy = policy;
        self.record_stereo = stereo;
        self
    }

    /// The recording schedules: (agent, from, until) in Unix ms.
    pub fn set_recording_schedules(&mut self, schedules: Vec<(String, i64, i64)>) {
        if let Some(p) = self.policy.as_mut() {
            p.set_schedules(schedules);
        }
    }

    /// Start recording a call now (an agent's or supervisor's request).
    pub fn start_recording(&mut self, call: CallId) -> Result<u64, String> {
        let now = self.now;
        let policy = self.policy.as_mut().ok_or("recording is off")?;
        let id = policy.start_on_demand(now, call.0).map_err(|e| e.to_string())?;
        self.collect();
        Ok(id)
    }

    /// Stop recording a call (an agent's or supervisor's request).
    pub fn stop_recording(&mut self, call: CallId) -> Result<u64, String> {
        let policy = self.policy.as_mut().ok_or("recording is off")?;
        let id = policy.stop_on_demand(call.0).map_err(|e| e.to_string())?;
        self.collect();
        Ok(id)
    }

    /// Run IVR flows for calls the engine hands off (`ivr:FLOW`, `voicemail:BOX`) and
    /// play queue announcements. `vars` are given to every session besides the call's
    /// own (`ani`, `dnis`, `vip`, `location`).
    pub fn with_ivr(mut self, mut ivr: Ivr, vars: BTreeMap<String, String>) -> Center {
        let offset = self.engine.config().utc_offset_secs;
        ivr.set_wall_clock(Instant::ZERO, self.wall_base_ms.div_euclid(1000), offset);
        if let Some(cdr) = self.cdr.as_mut() {
            cdr.set_closed_branches(crate::cdr::closed_branches(ivr.flows()));
        }
        self.ivr = Some(ivr);
        self.ivr_vars = vars;
        self
    }

    pub fn ivr(&self) -> Option<&Ivr> {
        self.ivr.as_ref()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, to inspect or keep after the run.
    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// Apply a new configuration to the engine (see [`Engine::reload`]).
    pub fn reload(&mut self, cfg: crate::config::Config) -> Result<Vec<String>, String> {
        self.engine.reload(cfg)
    }

    /// The time of the last input.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Unix milliseconds at an engine instant.
    pub fn unix_ms(&self, at: Instant) -> i64 {
        self.wall_base_ms + (at.as_micros() / 1000) as i64
    }

    pub fn draining(&self) -> bool {
        self.drain_until.is_some()
    }

    pub fn handle(&mut self, now: Instant, input: CenterInput) {
        self.now = self.now.max(now);
        match input {
            CenterInput::Drain { limit } => {
                if self.drain_until.is_none() {
                    self.drain_until = Some(self.now + limit);
                }
                self.engine.handle(self.now, Input::Timeout);
            }
            CenterInput::Engine(Input::Card(CardEvent { kind: EventKind::Offered { ch, .. }, .. }))
                if self.drain_until.is_some() =>
            {
                // Draining: no new calls. 42 "switching equipment congestion" tells the
                // network to try another route.
                self.out.push_back(CenterOutput::Command(Command::Reject {
                    ch,
                    cause: Cause::SWITCHING_EQUIPMENT_CONGESTION,
                }));
            }
            CenterInput::Engine(Input::Card(ev)) => {
                if let Some(cdr) = self.cdr.as_mut() {
                    cdr.handle_card(self.now, &ev);
                }
                if let Some(p) = self.policy.as_mut() {
                    p.handle_card(self.now, &ev);
                }
                // Digits and prompt ends on a channel the IVR owns are the IVR's; a
                // release ends its session and still goes to the engine.
                let taken = self.ivr.as_mut().is_some_and(|ivr| ivr.handle_card(self.now, &ev.kind));
                if !taken {
                    self.engine.handle(self.now, Input::Card(ev));
                }
            }
            CenterInput::Engine(Input::CommandFailed { command: Command::Play { ch, id, .. }, .. })
                if self.ivr.is_some() && id >= IVR_PLAY_IDS =>
            {
                // A prompt the card could not play: the IVR moves on as if it was stopped.
                let ev = EventKind::PlayFinished { ch, id, reason: PlayEnd::Stopped };
                if let Some(ivr) = self.ivr.as_mut() {
                    ivr.handle_card(self.now, &ev);
                }
            }
            CenterInput::Engine(Input::Request {
                client,
                invoke,
                service: Service::StartRecording { call },
            }) => {
                let result = self.start_recording(call).map(|_| ServiceResult::Ok).map_err(recording_refused);
                self.respond(client, invoke, result);
            }
            CenterInput::Engine(Input::Request {
                client,
                invoke,
                service: Service::StopRecording { call },
            }) => {
                let result = self.stop_recording(call).map(|_| ServiceResult::Ok).map_err(recording_refused);
                self.respond(client, invoke, result);
            }
            CenterInput::Engine(input) => self.engine.handle(self.now, input),
            CenterInput::Http(answer) => {
                if let Some(ivr) = self.ivr.as_mut() {
                    ivr.handle_http(self.now, answer);
                }
            }
            CenterInput::Synthesized { id, result } => {
                if let Some(ivr) = self.ivr.as_mut() {
                    ivr.handle_synthesized(self.now, id, result);
                }
            }
            CenterInput::Recorder(ev) => self.recorder_event(ev),
        }
        if let Some(ivr) = self.ivr.as_mut() {
            if ivr.next_deadline().is_some_and(|d| d <= self.now) {
                ivr.handle_timeout(self.now);
            }
        }
        self.collect();
        self.timers();
    }

    fn respond(&mut self, client: u32, invoke: u32, result: Result<ServiceResult, crate::csta::CstaError>) {
        if client < INTERNAL_CLIENT_MIN {
            let at = self.unix_ms(self.now);
            let output = Output::Response { client, invoke, result };
            self.out.push_back(CenterOutput::Link { at_unix_ms: at, output });
        }
    }

    fn recorder_event(&mut self, ev: RecorderEvent) {
        if let Some(chs) = self.recording_taps.remove(&ev_id(&ev)) {
            // A call recording: index what the file holds.
            let id = ev_id(&ev);
            for ch in chs {
                self.out.push_back(CenterOutput::Command(Command::StopTap { ch, id: id as u32 }));
            }
            let op = match &ev {
                RecorderEvent::Finished { duration, dropped, reason, .. } => {
                    crate::store::StoreOp::RecordingFinished {
                        id,
                        duration_ms: duration.as_millis() as i64,
                        dropped: *dropped,
                        cut_short: *reason == hotline_recorder::EndReason::MaxLength,
                    }
                }
                RecorderEvent::Failed { message, .. } => {
                    // Not indexed as present: the index line says why there is no file.
                    tracing::error!("recording {id} failed: {message}");
                    crate::store::StoreOp::RecordingFailed { id, message: message.clone() }
                }
            };
            self.out.push_back(CenterOutput::Store(op));
            return;
        }
        let (id, result) = match ev {
            RecorderEvent::Finished { id, path, duration, .. } => {
                (id, RecordResult::Recorded { path, duration })
            }
            RecorderEvent::Failed { id, message } => (id, RecordResult::Failed(message)),
        };
        if let Some((req, ch)) = self.ivr_recordings.remove(&id) {
            // The recorder ended it (silence, length): stop the card's tap too.
            self.out.push_back(CenterOutput::Command(Command::StopTap { ch, id: id as u32 }));
            if let Some(ivr) = self.ivr.as_mut() {
                ivr.handle_recorded(self.now, req, result);
            }
        }
    }

    /// Stop (after a drain, `--duration`, or a second Ctrl-C): every call still in
    /// progress is cleared and every recording, call or IVR, is ended. The runtime then
    /// keeps feeding inputs until [`Center::stopped`] (or its own time limit), so that
    /// call records close and recordings are finished and indexed.
    pub fn shutdown(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let calls: Vec<CallId> = self.calls.keys().copied().collect();
        for call in calls {
            // As at the drain's limit: the server ends it, unanswered it is missed of
            // kind `shutdown` (a stop without a drain: a second Ctrl-C, a second SIGTERM).
            if let Some(cdr) = self.cdr.as_mut() {
                cdr.shutdown(call.0);
            }
            self.engine.handle(
                self.now,
                Input::Request {
                    client: INTERNAL_CLIENT,
                    invoke: 0,
                    service: crate::csta::Service::ClearCall { call },
                },
            );
        }
        let mut ids: Vec<u64> =
            self.recording_taps.keys().chain(self.ivr_recordings.keys()).copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.out.push_back(CenterOutput::StopRecording { id });
        }
        self.collect();
    }

    /// Whether nothing is left to finish: no call in progress, no recording running.
    pub fn stopped(&self) -> bool {
        self.engine.call_count() == 0 && self.recording_taps.is_empty() && self.ivr_recordings.is_empty()
    }

    /// The next time [`Center::handle`] wants an `Input::Timeout`.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.next_stats;
        if let Some(d) = self.engine.next_deadline() {
            next = next.min(d);
        }
        if let Some(d) = self.ivr.as_ref().and_then(|i| i.next_deadline()) {
            next = next.min(d);
        }
        if let Some(d) = self.drain_until.filter(|_| !self.drained) {
            next = next.min(d);
        }
        Some(next)
    }

    pub fn poll_output(&mut self) -> Option<CenterOutput> {
        self.out.pop_front()
    }

    fn timers(&mut self) {
        if self.now >= self.next_stats {
            let stats = self.stats();
            self.out.push_back(CenterOutput::Stats(stats));
            self.next_stats = self.now + Duration::from_secs(1);
        }
        if let Some(limit) = self.drain_until {
            if !self.drained && (self.engine.call_count() == 0 || self.now >= limit) {
                if self.engine.call_count() > 0 {
                    let calls: Vec<CallId> = self.calls.keys().copied().collect();
                    for call in calls {
                        if let Some(cdr) = self.cdr.as_mut() {
                            cdr.shutdown(call.0);
                        }
                        self.engine.handle(
                            self.now,
                            Input::Request {
                                client: INTERNAL_CLIENT,
                                invoke: 0,
                                service: crate::csta::Service::ClearCall { call },
                            },
                        );
                    }
                    self.collect();
                }
                self.drained = true;
                self.out.push_back(CenterOutput::Drained);
            }
        }
    }

    fn collect(&mut self) {
        loop {
            let mut any = false;
            while let Some(o) = self.engine.poll_output() {
                any = true;
                self.engine_output(o);
            }
            while let Some(o) = self.ivr.as_mut().and_then(|i| i.poll_output()) {
                any = true;
                self.ivr_output(o);
            }
            while let Some(a) = self.policy.as_mut().and_then(|p| p.poll()) {
                any = true;
                self.record_action(a);
            }
            while let Some(op) = self.cdr.as_mut().and_then(|c| c.poll()) {
                self.out.push_back(CenterOutput::Store(op));
            }
            if !any {
                break;
            }
        }
    }

    fn record_action(&mut self, a: crate::recording::RecordAction) {
        use crate::recording::RecordAction;
        let now = self.now;
        if let Some(op) = a.index_op(self.wall_base_ms) {
            self.out.push_back(CenterOutput::Store(op));
        }
        match a {
            RecordAction::Start { call, rec_id, caller_ch, agent_ch, meta } => {
                if let Some(cdr) = self.cdr.as_mut() {
                    cdr.recording(now, call, rec_id);
                }
                self.recording_taps.insert(rec_id, vec![caller_ch, agent_ch]);
                self.out.push_back(CenterOutput::StartRecording(RecordingStart {
                    id: rec_id,
                    call,
                    path: meta.path.into(),
                    channels: vec![caller_ch, agent_ch],
                    stereo: self.record_stereo,
                    max: None,
                    silence_end: None,
                    voicemail: false,
                }));
            }
            RecordAction::Stop { rec_id } => self.out.push_back(CenterOutput::StopRecording { id: rec_id }),
            RecordAction::AddLeg { rec_id, ch } => {
                if let Some(chs) = self.recording_taps.get_mut(&rec_id) {
                    chs.push(ch);
                }
                self.out.push_back(CenterOutput::AddLeg { id: rec_id, ch });
            }
        }
    }

    fn engine_output(&mut self, o: Output) {
        let at = self.unix_ms(self.now);
        if let Some(cdr) = self.cdr.as_mut() {
            cdr.handle_output(self.now, &o);
        }
        if let Some(p) = self.policy.as_mut() {
            p.handle_output(self.now, &o);
        }
        match o {
            Output::Command(c) => self.out.push_back(CenterOutput::Command(c)),
            Output::Event(ref e) => {
                let pop = self.observe(e);
                self.hand_to_ivr(e);
                self.out.push_back(CenterOutput::Link { at_unix_ms: at, output: o });
                // The pop follows its Delivered: a desktop that answers on the pop
                // names a call the link already knows is alerting at its station.
                if let Some(pop) = pop {
                    self.out.push_back(CenterOutput::ScreenPop(pop));
                }
            }
            Output::Response { client, .. } if client >= INTERNAL_CLIENT_MIN => {}
            Output::Response { .. } => self.out.push_back(CenterOutput::Link { at_unix_ms: at, output: o }),
            // The call record builder has taken it (above); the store gets its rows.
            Output::Record(_) => {}
            Output::Announce(a) => {
                use crate::csta::Announcement as A;
                use hotline_ivr::Announcement as I;
                let Some(ivr) = self.ivr.as_mut() else { return };
                let (ch, what) = match a {
                    A::Position { ch, position, expected_wait, .. } => {
                        (ch, I::Position { position, expected_wait })
                    }
                    A::CallbackOffer { ch, .. } => (ch, I::CallbackOffer),
                    A::AgentNumber { ch, agent, .. } => (ch, I::AgentNumber { agent }),
                };
                ivr.announce(self.now, ch, what);
            }
        }
    }

    /// Start and stop IVR sessions as the engine hands calls over and clears them.
    fn hand_to_ivr(&mut self, e: &CstaEvent) {
        let now = self.now;
        match e {
            CstaEvent::HandedOff { call, to: DeviceId::Ivr(flow), ch: Some(ch) } => {
                let Some(ivr) = self.ivr.as_mut() else {
                    // No IVR configured: nobody can take the call.
                    self.engine.handle(
                        now,
                        Input::IvrDone { call: *call, next: "hangup:127".into(), data: BTreeMap::new() },
                    );
                    return;
                };
                let mut vars = self.ivr_vars.clone();
                if let Some(info) = self.engine.call_info(*call) {
                    vars.insert("ani".into(), info.ani.unwrap_or_default());
                    vars.insert("dnis".into(), info.dnis);
                    vars.insert("vip".into(), if info.vip { "1" } else { "0" }.into());
                    if let Some(l) = info.location {
                        vars.insert("location".into(), l);
                    }
                }
                if let Err(e) = ivr.start(now, call.0, *ch, flow, vars) {
                    tracing::warn!("{call}: {e}; the call is cleared");
                    self.engine.handle(
                        now,
                        Input::IvrDone { call: *call, next: "hangup:127".into(), data: BTreeMap::new() },
                    );
                }
            }
            CstaEvent::CallCleared { call, .. } => {
                if let Some(ivr) = self.ivr.as_mut() {
                    ivr.stop(call.0);
                }
            }
            _ => {}
        }
    }

    fn ivr_output(&mut self, o: IvrOutput) {
        let at = self.unix_ms(self.now);
        match o {
            IvrOutput::Command(c) => self.out.push_back(CenterOutput::Command(c)),
            IvrOutput::Http(r) => self.out.push_back(CenterOutput::Http(r)),
            IvrOutput::Synthesize(r) => self.out.push_back(CenterOutput::Synthesize(r)),
            IvrOutput::Record(r) => {
                if let Some(cdr) = self.cdr.as_mut() {
                    cdr.voicemail_started(r.call);
                }
                let id = self.next_recording;
                self.next_recording += 1;
                self.ivr_recordings.insert(id, (r.id, r.ch));
                self.out.push_back(CenterOutput::StartRecording(RecordingStart {
                    id,
                    call: r.call,
                    path: r.path,
                    channels: vec![r.ch],
                    stereo: false,
                    max: Some(r.max),
                    silence_end: r.silence_end,
                    voicemail: true,
                }));
            }
            IvrOutput::Voicemail(left) => {
                if let Some(cdr) = self.cdr.as_mut() {
                    let note = crate::cdr::VoicemailNote {
                        mailbox: left.mailbox.clone(),
                        path: left.path.display().to_string(),
                        duration_ms: left.duration.as_millis() as i64,
                        caller: left.caller.clone(),
                        access: left.dnis.clone(),
                    };
                    cdr.voicemail(self.now, left.call, note);
                }
                self.out.push_back(CenterOutput::Voicemail { at_unix_ms: at, left })
            }
            IvrOutput::Node { call, flow, node } => {
                if let Some(v) = self.calls.get_mut(&CallId(call)) {
                    if !v.flows.contains(&flow) {
                        v.flows.push(flow.clone());
                    }
                }
                if let Some(cdr) = self.cdr.as_mut() {
                    cdr.ivr_node(self.now, call, &flow, &node);
                }
                self.out.push_back(CenterOutput::IvrNode { at_unix_ms: at, call, flow, node })
            }
            IvrOutput::Done { call, next, data } => {
                // What the IVR collected travels with the call (under `ivr.` keys).
                self.engine.handle(self.now, Input::IvrDone { call: CallId(call), next, data });
            }
        }
    }

    /// Keep the wallboard's view of calls and queues from the engine's events; a
    /// `Delivered` to an agent's station gives the screen pop, to be sent after it.
    fn observe(&mut self, e: &CstaEvent) -> Option<crate::link::ScreenPop> {
        let now = self.now;
        let mut pop = None;
        match e {
            CstaEvent::ServiceInitiated { call, .. } => {
                self.view(*call, "dialling");
            }
            CstaEvent::Originated { call, called, .. } => {
                self.view(*call, "dialling").called = called.clone();
            }
            CstaEvent::Delivered { call, alerting, calling, called, .. } => {
                let v = self.view(*call, "ringing");
                if v.calling.is_empty() {
                    v.calling = calling.clone();
                }
                if v.called.is_empty() {
                    v.called = called.clone();
                }
                if let DeviceId::Station(ext) = alerting {
                    v.agent_station = Some(ext.clone());
                    v.state = "ringing";
                    v.since = now;
                    pop = self.screen_pop(*call, ext.clone());
                }
            }
            CstaEvent::Queued { call, queue, cause, .. } => {
                let &q = self.queue_ix.get(queue)?;
                let v = self.view(*call, "queued");
                let first_time_here = v.queue != Some(q);
                v.state = "queued";
                v.since = now;
                v.agent_station = None;
                if first_time_here {
                    v.queue = Some(q);
                    v.queued_at = Some(now);
                    // A missed call re-queued at the head is the same offer, not a new one.
                    if *cause != EventCause::Redirected {
                        self.queues[q].offered += 1;
                    }
                }
            }
            CstaEvent::Diverted { call, from: DeviceId::Queue(qn), cause: EventCause::Overflow, .. } => {
                if let Some(&q) = self.queue_ix.get(qn) {
                    self.queues[q].timed_out += 1;
                }
                if let Some(v) = self.calls.get_mut(call) {
                    v.queue = None;
                    v.queued_at = None;
                }
            }
            CstaEvent::Established { call, answering, .. } => {
                if let Some(v) = self.calls.get_mut(call) {
                    v.state = "talking";
                    v.since = now;
                    if let DeviceId::Station(ext) = answering {
                        v.agent_station = Some(ext.clone());
                        if let (Some(q), Some(at)) = (v.queue.take(), v.queued_at.take()) {
                            let f = &mut self.queues[q];
                            let wait = now.saturating_duration_since(at);
                            f.answered += 1;
                            f.answer_wait_s += wait.as_secs_f64();
                            if wait <= SERVICE_LEVEL_THRESHOLD {
                                f.answered_in_threshold += 1;
                            }
                            if wait > LATE_ANSWER {
                                f.answered_late += 1;
                            }
                            v.answered_from = Some((q, now));
                            if let Some(agent) = self.station_agent.get(ext) {
                                *self.answered.entry(agent.clone()).or_default() += 1;
                                self.wrap_up.insert(agent.clone(), (q, None));
                            }
                        }
                    }
                }
            }
            CstaEvent::Held { call, .. } => {
                if let Some(v) = self.calls.get_mut(call) {
                    v.state = "held";
                }
            }
            CstaEvent::Retrieved { call, .. } => {
                if let Some(v) = self.calls.get_mut(call) {
                    v.state = "talking";
                }
            }
            CstaEvent::HandedOff { call, .. } => {
                let v = self.view(*call, "ivr");
                v.state = "ivr";
                v.since = now;
                v.queue = None;
                v.queued_at = None;
            }
            CstaEvent::CallCleared { call, .. } => {
                if let Some(v) = self.calls.remove(call) {
                    if let (Some(q), Some(_)) = (v.queue, v.queued_at) {
                        self.queues[q].abandoned += 1;
                    }
                    if let Some((q, at)) = v.answered_from {
                        let f = &mut self.queues[q];
                        f.handled += 1;
                        f.handle_s += now.saturating_duration_since(at).as_secs_f64();
                    }
                }
            }
            CstaEvent::Agent { agent, kind: crate::csta::AgentEventKind::LoggedOn { station: Some(st) } } => {
                self.station_agent.retain(|_, a| a != agent);
                self.station_agent.insert(st.clone(), agent.clone());
            }
            CstaEvent::Agent { agent, kind: crate::csta::AgentEventKind::LoggedOff } => {
                self.station_agent.retain(|_, a| a != agent);
                self.wrap_up_ends(agent);
            }
            CstaEvent::Agent { agent, kind: crate::csta::AgentEventKind::WorkingAfterCall } => {
                if let Some(w) = self.wrap_up.get_mut(agent) {
                    w.1 = Some(now);
                }
            }
            CstaEvent::Agent {
                agent,
                kind: crate::csta::AgentEventKind::Ready | crate::csta::AgentEventKind::NotReady { .. },
            } => self.wrap_up_ends(agent),
            _ => {}
        }
        pop
    }

    /// The pop for the agent at `station`, from what the engine knows of the call.
    fn screen_pop(&self, call: CallId, station: String) -> Option<crate::link::ScreenPop> {
        let agent = self.station_agent.get(&station).cloned()?;
        let info = self.engine.call_info(call)?;
        let (ivr_data, attached) = split_ivr_data(info.data);
        // The labels of the flows the call went through, for the variables it carries.
        let mut ivr_labels = BTreeMap::new();
        if let (Some(ivr), Some(v)) = (self.ivr.as_ref(), self.calls.get(&call)) {
            for flow in v.flows.iter().filter_map(|f| ivr.flows().flows.get(f)) {
                for (var, label) in &flow.labels {
                    if ivr_data.contains_key(var) {
                        ivr_labels.insert(var.clone(), label.clone());
                    }
                }
            }
        }
        let pop = crate::link::ScreenPop {
            call,
            agent,
            station: Some(station),
            calling: info.ani,
            access_number: info.dnis,
            location: info.location,
            vip: info.vip,
            ivr_data,
            ivr_labels,
            attached,
            at_unix_ms: self.unix_ms(self.now),
        };
        Some(pop)
    }

    /// The view of a call, made on its first event.
    fn view(&mut self, call: CallId, state: &'static str) -> &mut CallView {
        let now = self.now;
        let today = &mut self.calls_today;
        let engine = &self.engine;
        self.calls.entry(call).or_insert_with(|| {
            *today += 1;
            let (calling, called) =
                engine.call_info(call).map(|i| (i.ani.unwrap_or_default(), i.dnis)).unwrap_or_default();
            CallView::new(now, calling, called, state)
        })
    }

    /// An agent's after-call work ended: its time counts into the queue's AHT.
    fn wrap_up_ends(&mut self, agent: &str) {
        if let Some((q, Some(at))) = self.wrap_up.get(agent).copied() {
            self.queues[q].handle_s += self.now.saturating_duration_since(at).as_secs_f64();
            self.wrap_up.insert(agent.to_string(), (q, None));
        }
    }

    /// The wallboard's figures now.
    pub fn stats(&self) -> WallboardStats {
        let now = self.now;
        let cfg = self.engine.config();
        let mut queues = self.queues.clone();
        for (i, f) in queues.iter_mut().enumerate() {
            let waiting: Vec<&CallView> =
                self.calls.values().filter(|v| v.queue == Some(i) && v.queued_at.is_some()).collect();
            f.waiting = waiting.len();
            f.longest_wait_s = waiting
                .iter()
                .filter_map(|v| v.queued_at)
                .map(|at| now.saturating_duration_since(at).as_secs_f64())
                .fold(0.0, f64::max);
            f.ready_agents = self.engine.ready_agents(&f.name).unwrap_or(0);
            let counted = f.answered + f.abandoned;
            f.service_level =
                if counted == 0 { 1.0 } else { f.answered_in_threshold as f64 / counted as f64 };
            f.abandon_rate = if f.offered == 0 { 0.0 } else { f.abandoned as f64 / f.offered as f64 };
            let mut callers: Vec<(Instant, WaitingCaller)> = self
                .calls
                .iter()
                .filter(|(_, v)| v.queue == Some(i))
                .filter_map(|(id, v)| {
                    let at = v.queued_at?;
                    let since_unix_ms = self.unix_ms(at);
                    Some((at, WaitingCaller { call: id.0, calling: v.calling.clone(), since_unix_ms }))
                })
                .collect();
            callers.sort_by_key(|(at, c)| (*at, c.call));
            f.callers = callers.into_iter().map(|(_, c)| c).collect();
        }
        let mut agent_totals = AgentCounts::default();
        for a in &cfg.agents {
            let Some((state, _)) = self.engine.agent_state(&a.id) else { continue };
            agent_totals.add(&state);
            for &(q, _) in &a.queues {
                if let Some(f) = queues.get_mut(q) {
                    f.agents.add(&state);
                }
            }
        }
        let agents = cfg
            .agents
            .iter()
            .map(|a| {
                let (state, since) = self
                    .engine
                    .agent_state(&a.id)
                    .unwrap_or((crate::csta::AgentState::LoggedOut, Instant::ZERO));
                let reason = match &state {
                    crate::csta::AgentState::NotReady(r) => Some(r.clone()),
                    _ => None,
                };
                AgentFigures {
                    id: a.id.clone(),
                    name: a.name.clone(),
                    state: state.name().to_string(),
                    reason,
                    state_s: now.saturating_duration_since(since).as_secs_f64(),
                    answered_today: self.answered.get(&a.id).copied().unwrap_or(0),
                }
            })
            .collect();
        let calls = self
            .calls
            .iter()
            .map(|(id, v)| LiveCall {
                call: id.0,
                calling: v.calling.clone(),
                called: v.called.clone(),
                state: v.state.to_string(),
                queue: v.queue.map(|q| self.queues[q].name.clone()),
                agent: v.agent_station.as_ref().and_then(|s| self.station_agent.get(s).cloned()),
                since_s: now.saturating_duration_since(v.since).as_secs_f64(),
            })
            .collect();
        WallboardStats {
            at_unix_ms: self.unix_ms(now),
            uptime_s: now.as_micros() as f64 / 1e6,
            queues,
            agents,
            calls,
            calls_today: self.calls_today,
            draining: self.drain_until.is_some(),
            ivr_calls: self.calls.values().filter(|v| v.state == "ivr").count(),
            agent_totals,
            access: self.engine.access_now(),
        }
    }

    /// Calls in progress, for the drain and the summary.
    pub fn calls_in_progress(&self) -> usize {
        self.engine.call_count()
    }

    #[doc(hidden)]
    pub fn call_started(&self, call: CallId) -> Option<Instant> {
        self.calls.get(&call).map(|v| v.started)
    }
}

impl CallView {
    fn new(now: Instant, calling: String, called: String, state: &'static str) -> CallView {
        CallView {
            calling,
            called,
            state,
            queue: None,
            queued_at: None,
            agent_station: None,
            since: now,
            started: now,
            answered_from: None,
            flows: Vec::new(),
        }
    }
}

/// Call data the IVR collected is kept under `ivr.` keys; the rest was attached by
/// desktops and CRMs.
fn split_ivr_data(data: BTreeMap<String, String>) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut ivr = BTreeMap::new();
    let mut attached = BTreeMap::new();
    for (k, v) in data {
        match k.strip_prefix("ivr.") {
            Some(name) => {
                ivr.insert(name.to_string(), v);
            }
            None => {
                attached.insert(k, v);
            }
        }
    }
    (ivr, attached)
}

/// A refused recording request as a CSTA error: the call is in no state to be recorded
/// (no agent connected, already recorded, not recorded), or recording is off.
fn recording_refused(reason: String) -> crate::csta::CstaError {
    tracing::debug!("recording request refused: {reason}");
    crate::csta::CstaError::InvalidConnectionState
}

/// Recorder ids of voicemail messages start here, far above the store's recording ids
/// and still distinct as 32-bit tap ids.
const IVR_RECORDING_IDS: u64 = 1 << 31;

fn ev_id(ev: &RecorderEvent) -> u64 {
    match ev {
        RecorderEvent::Finished { id, .. } | RecorderEvent::Failed { id, .. } => *id,
    }
}

/// Play ids from here up are the IVR's (hotline-ivr keeps to the upper half).
const IVR_PLAY_IDS: u32 = 0x8000_0000;

/// Client ids at or above this are the engine thread's own (simulated agents, the
/// drain); their responses are not sent to the link.
pub const INTERNAL_CLIENT_MIN: u32 = u32::MAX - 1_000_000;
/// The center's own client id.
pub const INTERNAL_CLIENT: u32 = u32::MAX;
