//! The interpreter: one session per call handed to the IVR, each walking its flow's
//! nodes. Sans-IO like the engine: time is passed in, card events, HTTP answers and
//! recording results come in through `handle_*`, and everything it wants done comes out
//! of [`Ivr::poll_output`] (card commands, HTTP requests, recordings, voicemail, the
//! node visited, the call handed back). The loop rule: after each input drain the
//! outputs, then call [`Ivr::handle_timeout`] at [`Ivr::next_deadline`].
//!
//! Digits are kept in a per-call buffer: a key pressed during a prompt that allows
//! barge-in stops it, and keys pressed ahead (type-ahead) are used by the next menu or
//! digit collection, whose prompts are then skipped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use hotline_drivers::command::PlaySource;
use hotline_drivers::event::PlayEnd;
use hotline_drivers::{ChannelId, Command, EventKind, Instant};

use crate::flow::{Flow, Flows, Node, NodeKind, Pos, PromptRef, Ref, Test};
use crate::http::{self, HttpAnswer, HttpRequest};
use crate::prompts::{Prompts, SynthRequest};
use crate::say::{self, Lang};
use crate::template;

/// What the engine asks the IVR to tell a waiting caller (mirrors the engine's
/// `csta::Announcement`, without the call: the channel says who).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// "You are caller number N; the expected wait is M minutes."
    Position { position: usize, expected_wait: Duration },
    /// "To be called back instead, press 1."
    CallbackOffer,
    /// "Agent number N will take your call."
    AgentNumber { agent: String },
}

/// A recording the glue makes through the recorder; answer with [`Ivr::handle_recorded`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRequest {
    pub id: u64,
    pub call: u64,
    pub ch: ChannelId,
    pub path: PathBuf,
    pub max: Duration,
    /// End after this much silence (`None`: only `max` or the caller's hang-up).
    pub silence_end: Option<Duration>,
}

/// How a recording ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordResult {
    Recorded { path: PathBuf, duration: Duration },
    Failed(String),
}

/// A voicemail message left by a caller (the store keeps the row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoicemailLeft {
    pub call: u64,
    pub mailbox: String,
    pub path: PathBuf,
    pub duration: Duration,
    /// The caller's number, when presented (variable `ani`).
    pub caller: Option<String>,
    /// The number called (variable `dnis`).
    pub dnis: Option<String>,
}

/// What the interpreter wants done.
#[derive(Clone, Debug)]
pub enum IvrOutput {
    /// Play / StopPlay on the caller's channel.
    Command(Command),
    /// Perform a request (off the engine thread); answer with [`Ivr::handle_http`].
    Http(HttpRequest),
    /// Record the caller; answer with [`Ivr::handle_recorded`].
    Record(RecordRequest),
    /// Speak a text (TTS is on); answer with [`Ivr::handle_synthesized`].
    Synthesize(SynthRequest),
    /// A voicemail message was left.
    Voicemail(VoicemailLeft),
    /// The call entered a node (for the IVR report).
    Node { call: u64, flow: String, node: String },
    /// Hand the call back to the engine: `next` is `queue:NAME`, `agent:ID`,
    /// `voicemail:BOX`, `external:NUMBER`, `hangup[:CAUSE]` or `ivr:FLOW`; `data` the
    /// variables collected. The session is over.
    Done { call: u64, next: String, data: BTreeMap<String, String> },
}

/// Why a session could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IvrError {
    /// No flow of that name: the configuration points at a flow the flow files lack
    /// (`hotline flow check` and `hotline config check` together find it). Send the
    /// call elsewhere.
    UnknownFlow(String),
    /// The call already has a session (the glue started it twice).
    AlreadyRunning(u64),
}

impl fmt::Display for IvrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IvrError::UnknownFlow(n) => write!(f, "no IVR flow named {n:?}"),
            IvrError::AlreadyRunning(c) => write!(f, "call {c} is already in the IVR"),
        }
    }
}

impl std::error::Error for IvrError {}

/// Something to play: a file of the set, or a text for the TTS.
#[derive(Clone, Debug)]
enum Item {
    File(PathBuf),
    Tts(String),
}

/// What to do when the prompts of a phase have played.
#[derive(Clone, Debug)]
enum After {
    Goto(String),
    MenuInput { attempts: u32 },
    CollectInput { attempts: u32 },
    Record { var: String, max: Duration, silence_end: Option<Duration>, next: String },
    Voicemail { mailbox: String, max: Duration, silence_end: Option<Duration> },
    Done(String),
}

#[derive(Clone, Debug)]
enum Phase {
    Idle,
    Playing { queue: VecDeque<Item>, current: Option<u32>, barge_in: bool, after: After },
    Synth { id: u64, queue: VecDeque<Item>, barge_in: bool, after: After },
    Menu { attempts: u32 },
    Collect { attempts: u32, got: String },
    Http { id: u64 },
    Record { id: u64, var: String, next: String },
    Voicemail { id: u64, mailbox: String },
}

#[derive(Debug)]
struct Session {
    call: u64,
    ch: ChannelId,
    flow: String,
    node: String,
    vars: BTreeMap<String, String>,
    digits: VecDeque<char>,
    /// Menus left through a choice, most recent last (for `back`).
    menus: Vec<String>,
    phase: Phase,
    deadline: Option<Instant>,
    /// The caller hung up while a voicemail was being recorded: wait for the result,
    /// then end quietly.
    gone: bool,
}

/// Plays to a waiting caller that is not in an IVR session (queue announcements).
#[derive(Debug)]
struct Announcing {
    queue: VecDeque<PathBuf>,
    current: Option<u32>,
}

/// Node entries without waiting for anything before a session is judged to loop
/// (a `set` and a `condition` pointing at each other).
const MAX_INSTANT_STEPS: u32 = 256;

/// Play ids the IVR uses: the upper half of the range, so that they never meet the
/// engine's (music on hold, tones).
const PLAY_ID_BASE: u32 = 0x8000_0000;

/// The IVR: every session, keyed by call.
#[derive(Debug)]
pub struct Ivr {
    flows: Flows,
    prompts: Prompts,
    sessions: BTreeMap<u64, Session>,
    by_ch: HashMap<ChannelId, u64>,
    announcing: HashMap<ChannelId, Announcing>,
    out: VecDeque<IvrOutput>,
    next_id: u64,
    next_play: u32,
    /// (engine instant, Unix seconds UTC at it, UTC offset seconds).
    wall: Option<(Instant, i64, i32)>,
    record_dir: PathBuf,
}

impl Ivr {
    pub fn new(flows: Flows, prompts: Prompts) -> Ivr {
        Ivr {
            flows,
            prompts,
            sessions: BTreeMap::new(),
            by_ch: HashMap::new(),
            announcing: HashMap::new(),
            out: VecDeque::new(),
            next_id: 1,
            next_play: PLAY_ID_BASE,
            wall: None,
            record_dir: PathBuf::from("voicemail"),
        }
    }

    /// Where recordings and voicemail messages are written (`vm-CALL-ID.wav`).
    pub fn set_record_dir(&mut self, dir: impl Into<PathBuf>) {
        self.record_dir = dir.into();
    }

    /// Tell the IVR the wall-clock time (Unix seconds, UTC) at `at` and the local
    /// offset, for time-of-day nodes. Until told, the first rule of each is taken.
    pub fn set_wall_clock(&mut self, at: Instant, unix_secs: i64, utc_offset_secs: i32) {
        self.wall = Some((at, unix_secs, utc_offset_secs));
    }

    pub fn flows(&self) -> &Flows {
        &self.flows
    }

    /// Calls in the IVR now.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Whether a call's session waits for keys (a menu or a digit collection, its
    /// prompts done).
    pub fn waiting_for_keys(&self, call: u64) -> bool {
        self.sessions
            .get(&call)
            .is_some_and(|s| matches!(s.phase, Phase::Menu { .. } | Phase::Collect { .. }))
    }

    /// The variables of a call's session.
    pub fn vars(&self, call: u64) -> Option<&BTreeMap<String, String>> {
        self.sessions.get(&call).map(|s| &s.vars)
    }

    /// Take a call into `flow` (or `voicemail:BOX`, a built-in flow that leaves a
    /// message in that box). `vars` are the call's known facts: `ani`, `dnis`, `vip`,
    /// data attached by an agent, ...
    pub fn start(
        &mut self,
        now: Instant,
        call: u64,
        ch: ChannelId,
        flow: &str,
        vars: BTreeMap<String, String>,
    ) -> Result<(), IvrError> {
        if self.sessions.contains_key(&call) {
            return Err(IvrError::AlreadyRunning(call));
        }
        let flow = flow.strip_prefix("ivr:").unwrap_or(flow);
        if !self.flows.flows.contains_key(flow) {
            match flow.strip_prefix("voicemail:") {
                Some(mailbox) if !mailbox.is_empty() => {
                    let f = builtin_voicemail(flow, mailbox);
                    self.flows.flows.insert(flow.to_string(), f);
                }
                _ => return Err(IvrError::UnknownFlow(flow.to_string())),
            }
        }
        // A queue announcement still playing on the channel is cut short.
        if self.announcing.remove(&ch).is_some() {
            self.out.push_back(IvrOutput::Command(Command::StopPlay { ch }));
        }
        let start = self.flows.flows[flow].start.node.clone();
        self.sessions.insert(
            call,
            Session {
                call,
                ch,
                flow: flow.to_string(),
                node: start.clone(),
                vars,
                digits: VecDeque::new(),
                menus: Vec::new(),
                phase: Phase::Idle,
                deadline: None,
                gone: false,
            },
        );
        self.by_ch.insert(ch, call);
        self.enter(now, call, start);
        Ok(())
    }

    /// The language of queue announcements: the prompt set's, when there is one; with
    /// several, the `main` flow's language if it has a set, else English if loaded.
    pub fn announce_lang(&self) -> Lang {
        let langs: Vec<Lang> = self.prompts.langs().collect();
        match langs.as_slice() {
            [only] => *only,
            _ => {
                let main = self.flows.flows.get("main").map(|f| f.lang);
                main.filter(|l| langs.contains(l))
                    .or_else(|| langs.contains(&Lang::En).then_some(Lang::En))
                    .or_else(|| langs.first().copied())
                    .unwrap_or(Lang::En)
            }
        }
    }

    /// Tell a caller waiting in a queue (not in a session) where they stand, in the
    /// language of [`Ivr::announce_lang`].
    pub fn announce(&mut self, _now: Instant, ch: ChannelId, what: Announcement) {
        if self.by_ch.contains_key(&ch) {
            return;
        }
        let lang = self.announce_lang();
        let names = announcement_prompts(&what, lang);
        let queue: VecDeque<PathBuf> = names.iter().filter_map(|n| self.prompts.path(lang, n)).collect();
        if self.announcing.remove(&ch).is_some() {
            self.out.push_back(IvrOutput::Command(Command::StopPlay { ch }));
        }
        let mut a = Announcing { queue, current: None };
        if let Some(p) = a.queue.pop_front() {
            let id = self.play_id();
            a.current = Some(id);
            self.out.push_back(IvrOutput::Command(Command::Play {
                ch,
                id,
                source: PlaySource::Prompt(p),
                barge_in: false,
            }));
            self.announcing.insert(ch, a);
        }
    }

    /// A card event. Returns true when it was the IVR's (a digit or a play end on a
    /// channel it owns) and need not go to the engine. `Released` ends the session
    /// but returns false: the engine owns the call and must see it too.
    pub fn handle_card(&mut self, now: Instant, ev: &EventKind) -> bool {
        let Some(ch) = ev.channel() else { return false };
        if let Some(a) = self.announcing.get_mut(&ch) {
            match ev {
                EventKind::PlayFinished { id, .. } if a.current == Some(*id) => {
                    a.current = None;
                    if let Some(p) = a.queue.pop_front() {
                        let id = self.play_id();
                        if let Some(a) = self.announcing.get_mut(&ch) {
                            a.current = Some(id);
                        }
                        self.out.push_back(IvrOutput::Command(Command::Play {
                            ch,
                            id,
                            source: PlaySource::Prompt(p),
                            barge_in: false,
                        }));
                    } else {
                        self.announcing.remove(&ch);
                    }
                    return true;
                }
                EventKind::Released { .. } => {
                    self.announcing.remove(&ch);
                    return false;
                }
                _ => {}
            }
        }
        let Some(&call) = self.by_ch.get(&ch) else { return false };
        match ev {
            EventKind::Digit { digit, .. } => {
                self.digit(now, call, *digit);
                true
            }
            EventKind::PlayFinished { id, .. } => {
                self.play_finished(now, call, *id);
                true
            }
            EventKind::Released { .. } => {
                self.by_ch.remove(&ch);
                let waiting_vm =
                    self.sessions.get(&call).is_some_and(|s| matches!(s.phase, Phase::Voicemail { .. }));
                if waiting_vm {
                    // The caller ends a voicemail message by hanging up: the recording
                    // result is still to come.
                    if let Some(s) = self.sessions.get_mut(&call) {
                        s.gone = true;
                        s.deadline = None;
                    }
                } else {
                    self.sessions.remove(&call);
                }
                false
            }
            _ => false,
        }
    }

    /// An HTTP answer for a request this IVR asked for.
    pub fn handle_http(&mut self, now: Instant, answer: HttpAnswer) {
        let Some(call) = self
            .sessions
            .values()
            .find(|s| matches!(s.phase, Phase::Http { id } if id == answer.id))
            .map(|s| s.call)
        else {
            return;
        };
        let Some(NodeKind::Http(node)) = self.node(call).map(|n| n.kind.clone()) else { return };
        let s = self.sessions.get_mut(&call).expect("found above");
        s.phase = Phase::Idle;
        s.deadline = None;
        let ok = match answer.result {
            Ok(resp) => {
                s.vars.insert("http_status".into(), resp.status.to_string());
                if !(200..300).contains(&resp.status) {
                    s.vars.insert("http_error".into(), format!("status {}", resp.status));
                    false
                } else {
                    match serde_json::from_str::<serde_json::Value>(&resp.body) {
                        Ok(json) => {
                            for (var, path) in &node.fields {
                                match http::field(&json, path) {
                                    Some(v) => s.vars.insert(var.clone(), v),
                                    None => s.vars.remove(var),
                                };
                            }
                            true
                        }
                        Err(e) => {
                            s.vars.insert("http_error".into(), format!("answer is not JSON: {e}"));
                            false
                        }
                    }
                }
            }
            Err(e) => {
                s.vars.insert("http_error".into(), e);
                false
            }
        };
        let to = if ok { node.next.node } else { node.failure.node };
        self.enter(now, call, to);
    }

    /// The result of a recording this IVR asked for.
    pub fn handle_recorded(&mut self, now: Instant, id: u64, result: RecordResult) {
        let Some(call) = self
            .sessions
            .values()
            .find(|s| matches!(s.phase, Phase::Record { id: i, .. } | Phase::Voicemail { id: i, .. } if i == id))
            .map(|s| s.call)
        else {
            return;
        };
        let s = self.sessions.get_mut(&call).expect("found above");
        let phase = std::mem::replace(&mut s.phase, Phase::Idle);
        s.deadline = None;
        match phase {
            Phase::Record { var, next, .. } => {
                match &result {
                    RecordResult::Recorded { path, .. } => {
                        s.vars.insert(var, path.display().to_string());
                    }
                    RecordResult::Failed(e) => {
                        s.vars.insert("record_error".into(), e.clone());
                    }
                }
                if s.gone {
                    self.sessions.remove(&call);
                } else {
                    self.enter(now, call, next);
                }
            }
            Phase::Voicemail { mailbox, .. } => {
                if let RecordResult::Recorded { path, duration } = result {
                    if !duration.is_zero() {
                        self.out.push_back(IvrOutput::Voicemail(VoicemailLeft {
                            call,
                            mailbox,
                            path,
                            duration,
                            caller: s.vars.get("ani").cloned(),
                            dnis: s.vars.get("dnis").cloned(),
                        }));
                    }
                }
                if s.gone {
                    self.sessions.remove(&call);
                    return;
                }
                // The goodbye, then hang up.
                let goodbye = match self.node(call).map(|n| &n.kind) {
                    Some(NodeKind::Voicemail { goodbye, .. }) => goodbye.clone(),
                    _ => Vec::new(),
                };
                self.play(now, call, &goodbye, false, After::Done("hangup".into()));
            }
            _ => {}
        }
    }

    /// A text was spoken into `path` (or could not be).
    pub fn handle_synthesized(&mut self, now: Instant, id: u64, result: Result<PathBuf, String>) {
        let Some(call) = self
            .sessions
            .values()
            .find(|s| matches!(s.phase, Phase::Synth { id: i, .. } if i == id))
            .map(|s| s.call)
        else {
            return;
        };
        let s = self.sessions.get_mut(&call).expect("found above");
        let Phase::Synth { mut queue, barge_in, after, .. } = std::mem::replace(&mut s.phase, Phase::Idle)
        else {
            return;
        };
        // A text that could not be spoken is left out rather than stopping the caller.
        if let Ok(path) = result {
            queue.push_front(Item::File(path));
        }
        s.phase = Phase::Playing { queue, current: None, barge_in, after };
        self.pump(now, call);
    }

    /// The engine took the call away, or it cleared. A voicemail being recorded is
    /// kept until its result arrives.
    pub fn stop(&mut self, call: u64) {
        let recording_vm =
            self.sessions.get(&call).is_some_and(|s| matches!(s.phase, Phase::Voicemail { .. }));
        if recording_vm {
            // The message being recorded is still the caller's: keep the session until
            // its result arrives (`handle_recorded`), as when the caller hangs up.
            if let Some(s) = self.sessions.get_mut(&call) {
                s.gone = true;
                s.deadline = None;
                self.by_ch.remove(&s.ch);
            }
        } else if let Some(s) = self.sessions.remove(&call) {
            self.by_ch.remove(&s.ch);
        }
    }

    /// Run what fell due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<u64> =
            self.sessions.values().filter(|s| s.deadline.is_some_and(|d| d <= now)).map(|s| s.call).collect();
        for call in due {
            let Some(s) = self.sessions.get_mut(&call) else { continue };
            s.deadline = None;
            match std::mem::replace(&mut s.phase, Phase::Idle) {
                Phase::Menu { attempts } => self.menu_miss(now, call, attempts, false),
                Phase::Collect { attempts, got } => {
                    if got.is_empty() {
                        self.collect_miss(now, call, attempts);
                    } else {
                        self.collect_done(now, call, attempts, got);
                    }
                }
                Phase::Http { id } => {
                    // The worker never answered: treat it as a failure.
                    s.phase = Phase::Http { id };
                    self.handle_http(
                        now,
                        HttpAnswer { id, result: Err("no answer from the HTTP worker".into()) },
                    );
                }
                other => s.phase = other,
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.sessions.values().filter_map(|s| s.deadline).min()
    }

    pub fn poll_output(&mut self) -> Option<IvrOutput> {
        self.out.pop_front()
    }

    // -----------------------------------------------------------------------------------

    fn play_id(&mut self) -> u32 {
        let id = self.next_play;
        self.next_play = if self.next_play == u32::MAX { PLAY_ID_BASE } else { self.next_play + 1 };
        id
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn flow_of(&self, call: u64) -> Option<&Flow> {
        self.sessions.get(&call).and_then(|s| self.flows.flows.get(&s.flow))
    }

    fn node(&self, call: u64) -> Option<&Node> {
        let s = self.sessions.get(&call)?;
        self.flows.flows.get(&s.flow)?.nodes.get(&s.node)
    }

    fn lang(&self, call: u64) -> Lang {
        self.flow_of(call).map_or(Lang::En, |f| f.lang)
    }

    /// Hand the call back and end the session.
    fn done(&mut self, call: u64, next: String) {
        if let Some(s) = self.sessions.remove(&call) {
            self.by_ch.remove(&s.ch);
            self.out.push_back(IvrOutput::Done { call, next, data: s.vars });
        }
    }

    /// Go to a node and run it until it waits for something.
    fn enter(&mut self, now: Instant, call: u64, mut to: String) {
        for _ in 0..MAX_INSTANT_STEPS {
            let Some(s) = self.sessions.get_mut(&call) else { return };
            s.node = to.clone();
            s.phase = Phase::Idle;
            s.deadline = None;
            let flow = s.flow.clone();
            let Some(node) = self.flows.flows.get(&flow).and_then(|f| f.nodes.get(&to)).cloned() else {
                // `flow check` reports branches to missing nodes; at run time the caller
                // is not left in silence.
                s.vars.insert("ivr_error".into(), format!("no node {to:?} in flow {flow:?}"));
                self.done(call, "hangup:41".into());
                return;
            };
            self.out.push_back(IvrOutput::Node { call, flow: flow.clone(), node: to.clone() });
            match self.run_node(now, call, &node) {
                Some(next) => to = next,
                None => return,
            }
        }
        if let Some(s) = self.sessions.get_mut(&call) {
            s.vars.insert("ivr_error".into(), format!("flow loops without waiting at node {to:?}"));
        }
        self.done(call, "hangup:41".into());
    }

    /// Start a node; `Some(next)` when it finished at once and the session goes on.
    fn run_node(&mut self, now: Instant, call: u64, node: &Node) -> Option<String> {
        let lang = self.lang(call);
        match &node.kind {
            NodeKind::Play { prompts, barge_in, next } => {
                self.play(now, call, prompts, *barge_in, After::Goto(next.node.clone()));
                None
            }
            NodeKind::Menu(m) => {
                let prompts = if self.has_digits(call) { Vec::new() } else { m.prompts.clone() };
                self.play(now, call, &prompts, true, After::MenuInput { attempts: 0 });
                None
            }
            NodeKind::Collect(c) => {
                let prompts = if self.has_digits(call) { Vec::new() } else { c.prompts.clone() };
                self.play(now, call, &prompts, true, After::CollectInput { attempts: 0 });
                None
            }
            NodeKind::Say { what, value, lang: l, barge_in, next } => {
                let s = self.sessions.get_mut(&call)?;
                let value = template::expand_plain(value, &s.vars);
                let l = l.unwrap_or(lang);
                match say::say(*what, &value, l) {
                    Ok(names) => {
                        let items =
                            names.iter().filter_map(|n| self.prompts.path(l, n).map(Item::File)).collect();
                        self.play_items(now, call, items, *barge_in, After::Goto(next.node.clone()));
                        None
                    }
                    Err(e) => {
                        s.vars.insert("say_error".into(), e);
                        Some(next.node.clone())
                    }
                }
            }
            NodeKind::Record { prompts, var, max, silence_end, next } => {
                let after = After::Record {
                    var: var.clone(),
                    max: *max,
                    silence_end: *silence_end,
                    next: next.node.clone(),
                };
                self.play(now, call, prompts, false, after);
                None
            }
            NodeKind::Queue { prompts, queue, priority, data } => {
                let s = self.sessions.get_mut(&call)?;
                for (k, v) in data {
                    let v = template::expand_plain(v, &s.vars);
                    s.vars.insert(k.clone(), v);
                }
                if let Some(p) = priority {
                    s.vars.insert("priority".into(), p.to_string());
                }
                self.play(now, call, prompts, false, After::Done(format!("queue:{queue}")));
                None
            }
            NodeKind::Agent { prompts, agent, data } => {
                let s = self.sessions.get_mut(&call)?;
                for (k, v) in data {
                    let v = template::expand_plain(v, &s.vars);
                    s.vars.insert(k.clone(), v);
                }
                let agent = template::expand_plain(agent, &s.vars);
                self.play(now, call, prompts, false, After::Done(format!("agent:{agent}")));
                None
            }
            NodeKind::Voicemail { mailbox, greeting, max, silence_end, .. } => {
                let after =
                    After::Voicemail { mailbox: mailbox.clone(), max: *max, silence_end: *silence_end };
                self.play(now, call, greeting, true, after);
                None
            }
            NodeKind::Transfer { prompts, number } => {
                let s = self.sessions.get(&call)?;
                let number = template::expand_plain(number, &s.vars);
                self.play(now, call, prompts, false, After::Done(format!("external:{number}")));
                None
            }
            NodeKind::HangUp { prompts, cause } => {
                let next = match cause {
                    Some(c) => format!("hangup:{c}"),
                    None => "hangup".into(),
                };
                self.play(now, call, prompts, false, After::Done(next));
                None
            }
            NodeKind::Goto { flow: None, node: Some(r) } => Some(r.node.clone()),
            NodeKind::Goto { flow: Some((f, _)), node } => {
                let Some(target) = self.flows.flows.get(f) else {
                    self.done(call, "hangup:41".into());
                    return None;
                };
                let start = node.as_ref().map_or(target.start.node.clone(), |n| n.node.clone());
                let s = self.sessions.get_mut(&call)?;
                s.flow = f.clone();
                s.menus.clear();
                Some(start)
            }
            NodeKind::Goto { flow: None, node: None } => {
                self.done(call, "hangup:41".into());
                None
            }
            NodeKind::Back => {
                let start = self.flow_of(call)?.start.node.clone();
                let s = self.sessions.get_mut(&call)?;
                let current = s.menus.pop();
                Some(s.menus.pop().or(current).unwrap_or(start))
            }
            NodeKind::Top => {
                let start = self.flow_of(call)?.start.node.clone();
                self.sessions.get_mut(&call)?.menus.clear();
                Some(start)
            }
            NodeKind::Set { vars, next } => {
                let s = self.sessions.get_mut(&call)?;
                let expanded: Vec<(String, String)> =
                    vars.iter().map(|(k, v)| (k.clone(), template::expand_plain(v, &s.vars))).collect();
                s.vars.extend(expanded);
                Some(next.node.clone())
            }
            NodeKind::Condition { cases, default } => {
                let s = self.sessions.get(&call)?;
                let hit =
                    cases.iter().find(|c| test(s.vars.get(&c.var).map(String::as_str), &c.test, &s.vars));
                Some(hit.map_or(&default.node, |c| &c.next.node).clone())
            }
            NodeKind::Time { rules, default } => {
                let Some((at, unix, off)) = self.wall else {
                    return Some(rules.first().map_or(&default.node, |r| &r.next.node).clone());
                };
                let t = crate::flow::LocalTime::at(
                    unix + (now.as_micros() as i64 - at.as_micros() as i64).div_euclid(1_000_000),
                    off,
                );
                let hit = crate::flow::time_branch(rules, t).map(|i| &rules[i]);
                Some(hit.map_or(&default.node, |r| &r.next.node).clone())
            }
            NodeKind::Http(h) => {
                let id = self.id();
                let s = self.sessions.get_mut(&call)?;
                let url = template::expand_url(&h.url, &s.vars);
                let body = (!h.body.is_empty()).then(|| {
                    let fields =
                        h.body.iter().map(|(k, v)| (k.clone(), template::expand_plain(v, &s.vars))).collect();
                    http::json_body(&fields)
                });
                let headers =
                    h.headers.iter().map(|(k, v)| (k.clone(), template::expand_plain(v, &s.vars))).collect();
                s.phase = Phase::Http { id };
                // A little longer than the request's own timeout: the worker answers
                // first unless it is stuck.
                s.deadline = Some(now + h.timeout + Duration::from_secs(2));
                self.out.push_back(IvrOutput::Http(HttpRequest {
                    id,
                    method: h.method.clone(),
                    url,
                    headers,
                    body,
                    timeout: h.timeout,
                }));
                None
            }
        }
    }

    fn has_digits(&self, call: u64) -> bool {
        self.sessions.get(&call).is_some_and(|s| !s.digits.is_empty())
    }

    fn play(&mut self, now: Instant, call: u64, prompts: &[PromptRef], barge_in: bool, after: After) {
        let lang = self.lang(call);
        let Some(s) = self.sessions.get(&call) else { return };
        let items = prompts
            .iter()
            .filter_map(|p| {
                let name = template::expand_plain(&p.name, &s.vars);
                match name.strip_prefix("tts:") {
                    Some(text) => Some(Item::Tts(text.to_string())),
                    None => self.prompts.path(lang, &name).map(Item::File),
                }
            })
            .collect();
        self.play_items(now, call, items, barge_in, after);
    }

    fn play_items(&mut self, now: Instant, call: u64, queue: VecDeque<Item>, barge_in: bool, after: After) {
        let Some(s) = self.sessions.get_mut(&call) else { return };
        // Keys already pressed skip prompts that allow barge-in (type-ahead).
        let queue = if barge_in && !s.digits.is_empty() { VecDeque::new() } else { queue };
        s.phase = Phase::Playing { queue, current: None, barge_in, after };
        self.pump(now, call);
    }

    /// Start the next prompt, or, with none left, go on.
    fn pump(&mut self, now: Instant, call: u64) {
        let lang = self.lang(call);
        let tts = self.prompts.tts().cloned();
        let play_id = self.play_id();
        let synth_id = self.id();
        let Some(s) = self.sessions.get_mut(&call) else { return };
        let Phase::Playing { queue, current, barge_in, .. } = &mut s.phase else { return };
        if current.is_some() {
            return;
        }
        while let Some(item) = queue.pop_front() {
            match item {
                Item::File(path) => {
                    *current = Some(play_id);
                    let cmd = Command::Play {
                        ch: s.ch,
                        id: play_id,
                        source: PlaySource::Prompt(path),
                        barge_in: *barge_in,
                    };
                    self.out.push_back(IvrOutput::Command(cmd));
                    return;
                }
                Item::Tts(text) => {
                    // Without a TTS configured the text is skipped.
                    let Some(tts) = &tts else { continue };
                    let text = template::expand_plain(&text, &s.vars);
                    let path = tts.cache_path(lang, &text);
                    let Phase::Playing { queue, barge_in, after, .. } =
                        std::mem::replace(&mut s.phase, Phase::Idle)
                    else {
                        return;
                    };
                    s.phase = Phase::Synth { id: synth_id, queue, barge_in, after };
                    self.out.push_back(IvrOutput::Synthesize(SynthRequest {
                        id: synth_id,
                        lang,
                        text,
                        path,
                    }));
                    return;
                }
            }
        }
        let Phase::Playing { after, .. } = std::mem::replace(&mut s.phase, Phase::Idle) else { return };
        self.after(now, call, after);
    }

    fn after(&mut self, now: Instant, call: u64, after: After) {
        match after {
            After::Goto(n) => self.enter(now, call, n),
            After::Done(next) => self.done(call, next),
            After::MenuInput { attempts } => self.menu_input(now, call, attempts),
            After::CollectInput { attempts } => {
                if let Some(s) = self.sessions.get_mut(&call) {
                    s.phase = Phase::Collect { attempts, got: String::new() };
                }
                self.collect_input(now, call);
            }
            After::Record { var, max, silence_end, next } => {
                let id = self.id();
                let path = self.record_dir.join(format!("rec-{call}-{id}.wav"));
                let Some(s) = self.sessions.get_mut(&call) else { return };
                s.phase = Phase::Record { id, var, next };
                let ch = s.ch;
                self.out.push_back(IvrOutput::Record(RecordRequest { id, call, ch, path, max, silence_end }));
            }
            After::Voicemail { mailbox, max, silence_end } => {
                let id = self.id();
                let path = self.record_dir.join(format!("vm-{call}-{id}.wav"));
                let Some(s) = self.sessions.get_mut(&call) else { return };
                // Keys pressed during the greeting are not a menu choice.
                s.digits.clear();
                s.phase = Phase::Voicemail { id, mailbox };
                let ch = s.ch;
                self.out.push_back(IvrOutput::Record(RecordRequest { id, call, ch, path, max, silence_end }));
            }
        }
    }

    fn digit(&mut self, now: Instant, call: u64, d: char) {
        let Some(s) = self.sessions.get_mut(&call) else { return };
        s.digits.push_back(d);
        match &mut s.phase {
            Phase::Playing { queue, current, barge_in: true, .. } => {
                // Barge-in: the card stops the prompt on the key itself (the Play asked
                // for it); the rest of the node's prompts are dropped.
                queue.clear();
                if current.is_none() {
                    self.pump(now, call);
                }
            }
            Phase::Menu { attempts } => {
                let attempts = *attempts;
                self.menu_input(now, call, attempts);
            }
            Phase::Collect { .. } => self.collect_input(now, call),
            _ => {}
        }
    }

    fn play_finished(&mut self, now: Instant, call: u64, id: u32) {
        let Some(s) = self.sessions.get_mut(&call) else { return };
        if let Phase::Playing { current, queue, barge_in, .. } = &mut s.phase {
            if *current == Some(id) {
                *current = None;
                if *barge_in && !s.digits.is_empty() {
                    queue.clear();
                }
                self.pump(now, call);
            }
        }
        let _ = PlayEnd::Completed;
    }

    fn menu_input(&mut self, now: Instant, call: u64, attempts: u32) {
        let Some(NodeKind::Menu(m)) = self.node(call).map(|n| n.kind.clone()) else { return };
        let Some(s) = self.sessions.get_mut(&call) else { return };
        match s.digits.pop_front() {
            Some(d) => match m.choices.get(&d) {
                Some(r) => {
                    let node = s.node.clone();
                    s.menus.push(node);
                    s.vars.insert("last_key".into(), d.to_string());
                    self.enter(now, call, r.node.clone());
                }
                None => {
                    s.digits.clear();
                    self.menu_miss(now, call, attempts, true);
                }
            },
            None => {
                s.phase = Phase::Menu { attempts };
                s.deadline = Some(now + m.timeout);
            }
        }
    }

    /// No key in time (`invalid = false`) or a key that is no choice.
    fn menu_miss(&mut self, now: Instant, call: u64, attempts: u32, invalid: bool) {
        let Some(NodeKind::Menu(m)) = self.node(call).map(|n| n.kind.clone()) else { return };
        let attempts = attempts + 1;
        if attempts > m.retries {
            self.enter(now, call, m.failure.node.clone());
            return;
        }
        let mut prompts = if invalid { m.invalid.clone() } else { m.no_input.clone() };
        prompts.extend(m.prompts.iter().cloned());
        self.play(now, call, &prompts, true, After::MenuInput { attempts });
    }

    fn collect_input(&mut self, now: Instant, call: u64) {
        let Some(NodeKind::Collect(c)) = self.node(call).map(|n| n.kind.clone()) else { return };
        let Some(s) = self.sessions.get_mut(&call) else { return };
        let Phase::Collect { attempts, got } = &mut s.phase else { return };
        let attempts = *attempts;
        while let Some(d) = s.digits.pop_front() {
            if Some(d) == c.terminator {
                let got = std::mem::take(got);
                self.collect_done(now, call, attempts, got);
                return;
            }
            got.push(d);
            if got.len() >= c.max {
                let got = std::mem::take(got);
                self.collect_done(now, call, attempts, got);
                return;
            }
        }
        s.deadline = Some(now + if got.is_empty() { c.timeout } else { c.inter_digit });
    }

    fn collect_done(&mut self, now: Instant, call: u64, attempts: u32, got: String) {
        let Some(NodeKind::Collect(c)) = self.node(call).map(|n| n.kind.clone()) else { return };
        let Some(s) = self.sessions.get_mut(&call) else { return };
        s.deadline = None;
        if got.is_empty() {
            self.collect_miss(now, call, attempts);
        } else if got.len() < c.min {
            s.digits.clear();
            let attempts = attempts + 1;
            if attempts > c.retries {
                self.enter(now, call, c.failure.node.clone());
            } else {
                let mut prompts = c.invalid.clone();
                prompts.extend(c.prompts.iter().cloned());
                self.play(now, call, &prompts, true, After::CollectInput { attempts });
            }
        } else {
            s.vars.insert(c.var.clone(), got);
            self.enter(now, call, c.next.node.clone());
        }
    }

    fn collect_miss(&mut self, now: Instant, call: u64, attempts: u32) {
        let Some(NodeKind::Collect(c)) = self.node(call).map(|n| n.kind.clone()) else { return };
        let attempts = attempts + 1;
        if attempts > c.retries {
            self.enter(now, call, c.failure.node.clone());
        } else {
            self.play(now, call, &c.prompts, true, After::CollectInput { attempts });
        }
    }
}

fn test(value: Option<&str>, t: &Test, vars: &BTreeMap<String, String>) -> bool {
    let v = value.unwrap_or("");
    let num = |s: &str| s.trim().parse::<f64>().ok();
    // Operands may name variables too: eq = "{ticket}".
    let rhs = |s: &String| template::expand_plain(s, vars);
    match t {
        Test::Eq(x) => v == rhs(x),
        Test::Ne(x) => v != rhs(x),
        Test::Lt(x) => matches!((num(v), num(&rhs(x))), (Some(a), Some(b)) if a < b),
        Test::Gt(x) => matches!((num(v), num(&rhs(x))), (Some(a), Some(b)) if a > b),
        Test::Prefix(x) => v.starts_with(&rhs(x)),
        Test::Empty => v.is_empty(),
        Test::Set => !v.is_empty(),
    }
}

/// The flow behind `voicemail:BOX` (a queue overflow or an agent's transfer): the
/// standard greeting, a message of up to two minutes, goodbye.
fn builtin_voicemail(name: &str, mailbox: &str) -> Flow {
    let at = Pos::default();
    let node = Node {
        id: "leave".into(),
        kind: NodeKind::Voicemail {
            mailbox: mailbox.to_string(),
            greeting: vec![PromptRef { name: "vm_greeting".into(), at }],
            max: Duration::from_secs(120),
            silence_end: Some(Duration::from_secs(5)),
            goodbye: vec![PromptRef { name: "vm_thanks".into(), at }],
        },
        at,
    };
    Flow {
        name: name.to_string(),
        start: Ref { node: "leave".into(), at },
        lang: Lang::En,
        nodes: BTreeMap::from([("leave".to_string(), node)]),
        at,
        labels: BTreeMap::new(),
    }
}

/// The prompts of a queue announcement, in the language's word order:
/// "You are caller number 3. Your expected wait is 2 minutes." and
/// "您现在排在第 三 位，预计等待 两 分钟。" (两, not 二, before the measure word).
fn announcement_prompts(what: &Announcement, lang: Lang) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    match what {
        Announcement::Position { position, expected_wait } => {
            let minutes = expected_wait.as_secs().div_ceil(60).max(1);
            names.push("queue_position".into());
            say::integer(*position as u64, lang, &mut names);
            if lang == Lang::Zh {
                names.push("queue_place".into());
            }
            names.push("queue_wait".into());
            match (lang, minutes) {
                (Lang::Zh, 2) => names.push("liang".into()),
                _ => say::integer(minutes, lang, &mut names),
            }
            names.push("minutes".into());
        }
        Announcement::CallbackOffer => names.push("callback_offer".into()),
        Announcement::AgentNumber { agent } => {
            names.push("agent_number".into());
            if let Ok(d) = say::say(say::SayKind::Digits, agent, lang) {
                names.extend(d);
            }
            if lang == Lang::Zh {
                names.push("agent_number_end".into());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompts::PromptSet;

    const FLOW: &str = "[flow.main]\nstart = \"bye\"\n\n[flow.main.bye]\ntype = \"hangup\"\n";

    fn ivr_with(sets: &[&str]) -> Ivr {
        let mut prompts = Prompts::default();
        for file in sets {
            let text = std::fs::read_to_string(format!("{}/../prompts/{file}", env!("CARGO_MANIFEST_DIR")))
                .expect("the shipped prompt set");
            prompts = prompts.with(PromptSet::parse(&text, file, format!("/p/{file}")).expect("parses"));
        }
        Ivr::new(Flows::parse(FLOW, "t.toml").expect("flow parses"), prompts)
    }

    /// Announce and play it to the end: the prompt names in order, and their set.
    fn heard(ivr: &mut Ivr, what: Announcement) -> Vec<String> {
        let ch = ChannelId::e1(1, 1, 7);
        ivr.announce(Instant::ZERO, ch, what);
        let mut names = Vec::new();
        while let Some(out) = ivr.poll_output() {
            if let IvrOutput::Command(Command::Play { id, source: PlaySource::Prompt(p), .. }) = out {
                let set = p.parent().and_then(|d| d.file_name()).unwrap().to_string_lossy().to_string();
                names.push(format!("{set}:{}", p.file_stem().unwrap().to_string_lossy()));
                let done = EventKind::PlayFinished { ch, id, reason: PlayEnd::Completed };
                assert!(ivr.handle_card(Instant::ZERO, &done));
            }
        }
        names
    }

    #[test]
    fn a_chinese_prompt_set_announces_the_queue_position_in_chinese_word_order() {
        let mut ivr = ivr_with(&["zh.toml"]);
        assert_eq!(ivr.announce_lang(), Lang::Zh);
        let got =
            heard(&mut ivr, Announcement::Position { position: 3, expected_wait: Duration::from_secs(90) });
        let want = ["queue_position", "n3", "queue_place", "queue_wait", "liang", "minutes"];
        assert_eq!(got, want.map(|n| format!("zh.toml:{n}")));
        let got = heard(&mut ivr, Announcement::AgentNumber { agent: "1002".into() });
        let want = ["agent_number", "n1", "n0", "n0", "n2", "agent_number_end"];
        assert_eq!(got, want.map(|n| format!("zh.toml:{n}")));
    }

    #[test]
    fn an_english_prompt_set_announces_in_english() {
        let mut ivr = ivr_with(&["en.toml"]);
        assert_eq!(ivr.announce_lang(), Lang::En);
        let got =
            heard(&mut ivr, Announcement::Position { position: 12, expected_wait: Duration::from_secs(120) });
        let want = ["queue_position", "n12", "queue_wait", "n2", "minutes"];
        assert_eq!(got, want.map(|n| format!("en.toml:{n}")));
    }

    #[test]
    fn with_both_sets_the_main_flows_language_decides() {
        let zh_main = FLOW.replace("start = ", "lang = \"zh\"\nstart = ");
        let sets = ["en.toml", "zh.toml"];
        let mut ivr = ivr_with(&sets);
        assert_eq!(ivr.announce_lang(), Lang::En, "the main flow is in English by default");
        ivr.flows = Flows::parse(&zh_main, "t.toml").unwrap();
        assert_eq!(ivr.announce_lang(), Lang::Zh);
        assert_eq!(heard(&mut ivr, Announcement::CallbackOffer), vec!["zh.toml:callback_offer".to_string()]);
    }
}
