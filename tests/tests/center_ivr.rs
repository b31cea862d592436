//! The live center's engine thread (`hotline_cti::center::Center`: engine, IVR, call
//! records, recording policy) driven with the card simulator in audio mode and virtual
//! time, through the demo's IVR flow: callers' keys travel as DTMF tones, prompts are
//! real WAV files on the line, the repair lookup asks a real local HTTP service. The
//! recorder is stood in for by this harness (it collects the tapped frames); its own
//! threads are tested in recorder/tests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, TryRecvError};
use hotline_cti::cdr::Outcome;
use hotline_cti::center::{Center, CenterInput, CenterOutput, RecordingStart};
use hotline_cti::csta::{AgentRequest, Service};
use hotline_cti::report::{self, Params};
use hotline_cti::store::{Store, StoreOp};
use hotline_cti::{Config, Engine, Input};
use hotline_drivers::command::TapFrame;
use hotline_drivers::sim::SimCard;
use hotline_drivers::{Card, CardEvent, Command, Instant};
use hotline_recorder::{EndReason, RecorderEvent};

/// Wednesday 2026-11-18 10:00 in Beijing.
const WALL_MS: i64 = 1_794_967_200_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

fn installation(dir: &std::path::Path, callers: &str) -> String {
    format!(
        r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "isdn_pri"

[card.fxs]
ports = "1-2"

[simulator]
media = "audio"
seed = 3

[[simulator.station]]
ports = "1-2"
answer_after_s = [1, 1]
hang_up_after_release_s = 1

{callers}

[ivr]
flows = ["{flows}"]
prompt_dir = "{prompts}"
voice = "tones"
voicemail_dir = "{vm}"
mock_repair = "127.0.0.1:0"

[engine]
utc_offset = "+08:00"

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1-2"
extension = "2001"

[[queue]]
name = "support"
wrap_up = 1

[[queue]]
name = "priority"

[[access_number]]
dnis = "4008001000"
target = "ivr:main"

# The demo's after-hours line: its schedule is never open, so its callers always get
# the closed target, the after-hours flow.
[[schedule]]
name = "never"
days = []
hours = []

[[access_number]]
dnis = "{after_hours}"
target = "ivr:after_hours"
route = [{{ schedule = "never", target = "ivr:main" }}]

[[vip]]
number = "13900000001"

[[agent]]
id = "1001"
name = "Li Wei"
queues = {{ support = 5, priority = 5 }}
"#,
        flows = root().join("examples/flows/demo.toml").display(),
        prompts = dir.join("prompts").display(),
        vm = dir.join("voicemail").display(),
        after_hours = AFTER_HOURS_LINE,
    )
}

/// The access number closed by its schedule.
const AFTER_HOURS_LINE: &str = "4008009000";

fn caller(at_s: u32, ani: &str, steps: &[&str]) -> String {
    caller_to(at_s, ani, "4008001000", steps)
}

fn caller_to(at_s: u32, ani: &str, dnis: &str, steps: &[&str]) -> String {
    let script: Vec<String> = steps.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[[simulator.inbound]]\nat_s = {at_s}\ntrunk = \"1/1\"\nani = \"{ani}\"\ndnis = \"{dnis}\"\n\
         caller = {{ patience_s = 120, script = [{}] }}\n",
        script.join(", ")
    )
}

/// A recording the harness makes in place of the recorder: the tapped frames.
struct Taken {
    start: RecordingStart,
    frames: Receiver<TapFrame>,
    count: u64,
    loud: u64,
}

struct Rig {
    center: Center,
    card: SimCard,
    events: Receiver<CardEvent>,
    now: Instant,
    recordings: HashMap<u64, Taken>,
    finished: Vec<(RecordingStart, u64, u64)>,
    store: Vec<StoreOp>,
    voicemail: Vec<hotline_ivr::VoicemailLeft>,
    nodes: Vec<String>,
    pops: Vec<hotline_cti::link::ScreenPop>,
    stats: Vec<hotline_cti::center::WallboardStats>,
    dir: PathBuf,
}

impl Rig {
    fn new(name: &str, callers: &str) -> Rig {
        Rig::at(name, callers, WALL_MS)
    }

    /// A rig whose engine time zero is `wall_ms` (Unix ms).
    fn at(name: &str, callers: &str, wall_ms: i64) -> Rig {
        let dir = std::env::temp_dir().join(format!("hotline-center-ivr-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let text = installation(&dir, callers);
        let cfg = Config::parse(&text, "center.toml").expect("valid engine tables");
        let cards = hotline_drivers::config::parse(&text, "center.toml").expect("valid card tables");
        let (tx, events) = unbounded();
        let card = SimCard::from_config(&cards, 1, tx).expect("the simulated card");
        let setup =
            hotline_cti::install::ivr_setup(&text, "center.toml").expect("valid [ivr]").expect("an [ivr]");
        let (ivr, vars) = setup.build().expect("the IVR starts");
        let cdr = hotline_cti::cdr::CdrBuilder::new(wall_ms).with_config(&cfg);
        let policy = hotline_cti::recording::RecordingPolicy::new(
            &cfg,
            hotline_cti::recording::PolicySettings {
                dir: dir.join("recordings").display().to_string(),
                format: "wav-pcm16".into(),
                retention: "normal".into(),
                wall_base: wall_ms,
                first_id: 1,
            },
        );
        let center =
            Center::new(Engine::new(cfg), wall_ms).with_ivr(ivr, vars).with_records(cdr, Some(policy), true);
        let mut rig = Rig {
            center,
            card,
            events,
            now: Instant::ZERO,
            recordings: HashMap::new(),
            finished: Vec::new(),
            store: Vec::new(),
            voicemail: Vec::new(),
            nodes: Vec::new(),
            pops: Vec::new(),
            stats: Vec::new(),
            dir,
        };
        let login = AgentRequest::LogIn { station: Some("2001".into()), password: None };
        for request in [login, AgentRequest::Ready] {
            rig.input(Input::Request {
                client: 9,
                invoke: 1,
                service: Service::SetAgentState { agent: "1001".into(), request },
            });
        }
        rig
    }

    fn input(&mut self, i: Input) {
        self.center.handle(self.now, CenterInput::Engine(i));
        self.carry();
    }

    fn carry(&mut self) {
        while let Some(o) = self.center.poll_output() {
            let now = self.now;
            match o {
                CenterOutput::Command(c) => {
                    if let Err(e) = self.card.execute(now, c.clone()) {
                        let failed = Input::CommandFailed { command: c, kind: e.kind() };
                        self.center.handle(now, CenterInput::Engine(failed));
                    }
                }
                CenterOutput::Http(req) => {
                    // The worker's job, done in line: the mock answers at once.
                    let answer = hotline_ivr::http::perform(&req);
                    self.center.handle(now, CenterInput::Http(answer));
                }
                CenterOutput::StartRecording(start) => {
                    let (tx, rx) = unbounded();
                    for &ch in &start.channels {
                        let tap = Command::StartTap { ch, id: start.id as u32, sink: tx.clone() };
                        self.card.execute(now, tap).expect("the card taps the channel");
                    }
                    self.recordings.insert(start.id, Taken { start, frames: rx, count: 0, loud: 0 });
                }
                CenterOutput::StopRecording { id } => self.finish(id, EndReason::Stopped),
                CenterOutput::Store(op) => self.store.push(op),
                CenterOutput::Voicemail { left, .. } => self.voicemail.push(left),
                CenterOutput::IvrNode { node, .. } => self.nodes.push(node),
                CenterOutput::ScreenPop(p) => self.pops.push(p),
                CenterOutput::Stats(s) => self.stats.push(s),
                _ => {}
            }
        }
    }

    /// Collect tapped frames; a recording whose every tap has gone ends (as the
    /// recorder ends it: `ChannelGone`).
    fn drain_taps(&mut self) {
        let mut gone = Vec::new();
        for (id, t) in self.recordings.iter_mut() {
            loop {
                match t.frames.try_recv() {
                    Ok(f) => {
                        t.count += 1;
                        if f.samples.iter().any(|s| s.unsigned_abs() > 1000) {
                            t.loud += 1;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        gone.push(*id);
                        break;
                    }
                }
            }
        }
        for id in gone {
            self.finish(id, EndReason::ChannelGone);
        }
    }

    fn finish(&mut self, id: u64, reason: EndReason) {
        let Some(t) = self.recordings.remove(&id) else { return };
        let ev = RecorderEvent::Finished {
            id,
            path: t.start.path.clone(),
            duration: Duration::from_millis(20 * t.count),
            frames: t.count,
            dropped: 0,
            unplaced: 0,
            reason,
        };
        self.finished.push((t.start, t.count, t.loud));
        self.center.handle(self.now, CenterInput::Recorder(ev));
        self.carry();
    }

    fn run_until(&mut self, secs: u64) {
        let until = Instant::from_secs(secs);
        loop {
            let card_next = loop {
                let next = self.card.poll(self.now).expect("the card runs");
                let mut any = false;
                while let Ok(ev) = self.events.try_recv() {
                    any = true;
                    self.input(Input::Card(ev));
                }
                if !any {
                    break next;
                }
            };
            self.drain_taps();
            if self.now >= until {
                return;
            }
            let next = [card_next, self.center.next_deadline()].into_iter().flatten().min().unwrap_or(until);
            self.now = next.min(until).max(Instant::from_micros(self.now.as_micros() + 1));
            self.center.handle(self.now, CenterInput::Engine(Input::Timeout));
            self.carry();
        }
    }

    fn closed(&self) -> Vec<&hotline_cti::cdr::Cdr> {
        self.store
            .iter()
            .filter_map(|op| if let StoreOp::CallClosed(c) = op { Some(&**c) } else { None })
            .collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_caller_who_presses_2_reaches_the_agent_and_the_call_is_recorded_and_closed() {
    let callers = caller(1, "13800138000", &["wait_prompt", "press 2", "wait_agent", "talk 6", "hang_up"]);
    let mut rig = Rig::new("agent", &callers);
    rig.run_until(60);

    assert!(rig.nodes.iter().any(|n| n == "to_agent"), "the menu sent the caller on: {:?}", rig.nodes);
    let closed = rig.closed();
    assert_eq!(closed.len(), 1, "{closed:#?}");
    let cdr = closed[0];
    assert_eq!(cdr.agent.as_deref(), Some("1001"));
    assert_eq!(cdr.queue.as_deref(), Some("support"));
    assert_eq!(cdr.outcome, Outcome::Answered);
    assert!(cdr.ivr_entered_ms.is_some() && cdr.ivr_left_ms.is_some(), "{cdr:#?}");
    assert_eq!(cdr.recordings.len(), 1, "{cdr:#?}");

    // The recording: the caller's trunk left, the agent's phone right, from answer to
    // release, with the caller's speech in it.
    assert_eq!(rig.finished.len(), 1);
    let (start, frames, loud) = &rig.finished[0];
    assert!(start.stereo && !start.voicemail && start.channels.len() == 2, "{start:?}");
    assert_eq!(start.id, cdr.recordings[0]);
    let secs = *frames as f64 * 0.02;
    assert!((5.0..20.0).contains(&secs), "{secs} s of frames from both legs over a 6 s talk");
    assert!(*loud > 100, "the caller talked: {loud} loud frames");
    assert!(rig
        .store
        .iter()
        .any(|op| matches!(op, StoreOp::RecordingStarted(r) if r.agent.as_deref() == Some("1001"))));

    // The pop names the flow's labelled variables (the demo flow labels `ticket`), and
    // only variables the call carries.
    let pop = rig.pops.first().expect("a screen pop for the agent");
    assert!(pop.ivr_data.contains_key("ticket") && pop.ivr_data.contains_key("ani"), "{pop:#?}");
    assert_eq!(pop.ivr_labels.get("ticket").map(String::as_str), Some("Repair ticket"), "{pop:#?}");
    assert!(!pop.ivr_labels.contains_key("ani"), "internal variables have no label: {pop:#?}");
    assert!(pop.ivr_labels.keys().all(|k| pop.ivr_data.contains_key(k)), "{pop:#?}");

    // The wallboard's figures: in the IVR, then waiting with the caller's number, then
    // answered (wait and handling time counted) with the agent back to ready.
    assert!(rig.stats.iter().any(|s| s.ivr_calls == 1), "the caller was seen in the IVR");
    let waiting = rig
        .stats
        .iter()
        .flat_map(|s| s.queues.iter())
        .find(|q| q.name == "support" && !q.callers.is_empty())
        .expect("the caller seen waiting in support");
    assert_eq!(waiting.callers[0].calling, "13800138000");
    let last = rig.stats.last().expect("stats once a second");
    let support = last.queues.iter().find(|q| q.name == "support").expect("support");
    assert_eq!((support.offered, support.answered, support.abandoned), (1, 1, 0), "{support:#?}");
    assert_eq!(support.answered_late, 0, "answered at once: {support:#?}");
    assert!(support.answer_wait_s < 15.0, "{support:#?}");
    assert_eq!(support.handled, 1, "{support:#?}");
    // Six seconds of talk and one of wrap-up (the queue's wrap_up = 1).
    assert!((6.0..9.5).contains(&support.handle_s), "talk and wrap-up: {support:#?}");
    assert_eq!(support.service_level_target, 0.8);
    assert_eq!(support.agents.ready, 1, "{support:#?}");
    assert_eq!(last.agent_totals.ready, 1);
    assert_eq!(last.ivr_calls, 0);
    assert_eq!(last.access.len(), 2);
    assert!(last.access[0].open, "no schedule: always open");
    assert!(!last.access[1].open, "the after-hours line's schedule is never open");
}

#[test]
fn a_caller_who_presses_0_leaves_a_voicemail_that_reaches_the_store() {
    let callers = caller(1, "13600136000", &["wait_prompt", "press 0", "wait_prompt", "talk 4", "hang_up"]);
    let mut rig = Rig::new("voicemail", &callers);
    rig.run_until(60);

    assert_eq!(rig.voicemail.len(), 1, "nodes {:?}", rig.nodes);
    let vm = &rig.voicemail[0];
    assert_eq!(vm.mailbox, "support");
    assert_eq!(vm.caller.as_deref(), Some("13600136000"));
    assert!((3.5..6.0).contains(&vm.duration.as_secs_f64()), "{:?}", vm.duration);
    let (start, _, loud) = &rig.finished[0];
    assert!(start.voicemail && !start.stereo && *loud > 50, "{start:?}, {loud} loud frames");
    assert!(rig
        .store
        .iter()
        .any(|op| matches!(op, StoreOp::Voicemail { note, .. } if note.mailbox == "support")));
    let closed = rig.closed();
    assert_eq!(closed.len(), 1);
    assert!(closed[0].agent.is_none());
    // The caller hung up to end the message: a voicemail, not a caller lost in the IVR.
    assert_eq!(closed[0].outcome, Outcome::Voicemail, "{:#?}", closed[0]);
    assert_eq!(closed[0].missed, None);
}

#[test]
fn a_caller_who_checks_a_repair_ticket_goes_through_the_http_lookup() {
    let callers = caller(
        1,
        "13700137000",
        &["wait_prompt", "press 1", "wait_prompt", "press 12345#", "wait 30", "hang_up"],
    );
    let mut rig = Rig::new("repair", &callers);
    rig.run_until(80);

    for node in ["ask_ticket", "lookup", "say_ticket", "say_status"] {
        assert!(rig.nodes.iter().any(|n| n == node), "{node} not reached: {:?}", rig.nodes);
    }
    assert!(!rig.nodes.iter().any(|n| n == "lookup_failed"), "{:?}", rig.nodes);
    assert!(rig.store.iter().any(|op| matches!(op, StoreOp::IvrVisit { node, .. } if node == "lookup")));
    assert_eq!(rig.closed().len(), 1);
}

#[test]
fn a_caller_who_hangs_up_on_the_after_hours_message_is_a_missed_call_of_kind_after_hours() {
    // The after-hours line is closed by its schedule: the call goes to its closed
    // target, the after-hours flow, whose message the caller hangs up on.
    let callers = caller_to(1, "13500135000", AFTER_HOURS_LINE, &["wait 1", "hang_up"]);
    let mut rig = Rig::new("after-hours", &callers);
    rig.run_until(40);

    assert!(rig.nodes.iter().any(|n| n == "message"), "{:?}", rig.nodes);
    assert!(!rig.nodes.iter().any(|n| n == "menu" || n == "voicemail"), "{:?}", rig.nodes);
    let closed = rig.closed();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].outcome, Outcome::Missed, "{:#?}", closed[0]);
    assert_eq!(closed[0].missed, Some(hotline_cti::cdr::Missed::AfterHours), "{:#?}", closed[0]);
    assert_eq!(closed[0].data.get("after_hours").map(String::as_str), Some("yes"), "{:#?}", closed[0]);

    // The missed-calls report (`hotline report missed`, with and without `--by`) shows
    // it with its kind.
    let path = rig.dir.join("report.db");
    let mut store = Store::open(&path).expect("a store");
    store.apply(&rig.store).expect("the call's records are written");
    let p = Params::new(WALL_MS, WALL_MS + 3_600_000);
    let missed = report::missed_calls(&store, &p).expect("the report");
    assert_eq!(missed.len(), 1, "{missed:#?}");
    assert_eq!((missed[0].kind.as_str(), missed[0].called.as_str()), ("after_hours", AFTER_HOURS_LINE));
    let counts = report::missed_counts(&store, &p).expect("the counts");
    let (after_hours, total) = counts.iter().fold((0, 0), |(a, t), c| (a + c.after_hours, t + c.total));
    assert_eq!((after_hours, total), (1, 1), "{counts:#?}");
}

#[test]
fn a_call_to_the_open_line_is_not_marked_after_hours() {
    // The same caller on the line without a schedule: in the IVR, not out of hours.
    let callers = caller(1, "13500135000", &["wait 1", "hang_up"]);
    let mut rig = Rig::new("open-line", &callers);
    rig.run_until(40);

    let closed = rig.closed();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].missed, Some(hotline_cti::cdr::Missed::InIvr), "{:#?}", closed[0]);
    assert!(!closed[0].data.contains_key("after_hours"), "{:#?}", closed[0]);
}

#[test]
fn callers_cut_by_a_stop_without_a_drain_are_missed_calls_of_kind_shutdown() {
    // A second Ctrl-C stops the server at once: one caller waits in the queue (the
    // agent is busy with the first), one is still in the IVR's menu.
    let callers = [
        caller(1, "13800138000", &["wait_prompt", "press 2", "wait_agent", "talk 60", "hang_up"]),
        caller(2, "13800138001", &["wait_prompt", "press 2", "wait_agent", "talk 5", "hang_up"]),
        caller(20, "13800138002", &["wait 60", "hang_up"]),
    ]
    .concat();
    let mut rig = Rig::new("stop", &callers);
    rig.run_until(25);
    rig.center.shutdown(rig.now);
    rig.carry();
    rig.run_until(30);

    let closed = rig.closed();
    assert_eq!(closed.len(), 3, "{closed:#?}");
    let by = |ani: &str| closed.iter().find(|c| c.caller.as_deref() == Some(ani)).copied().unwrap();
    assert_eq!(by("13800138000").outcome, Outcome::Answered);
    for ani in ["13800138001", "13800138002"] {
        let c = by(ani);
        assert_eq!(
            (c.outcome, c.missed),
            (Outcome::Missed, Some(hotline_cti::cdr::Missed::Shutdown)),
            "{c:#?}"
        );
    }
}

#[test]
fn a_caller_still_waiting_when_the_drain_ends_is_a_missed_call_of_kind_shutdown() {
    // The first caller takes the only agent; the second waits in the queue until the
    // server drains with no time allowed.
    let callers = [
        caller(1, "13800138000", &["wait_prompt", "press 2", "wait_agent", "talk 60", "hang_up"]),
        caller(2, "13800138001", &["wait_prompt", "press 2", "wait_agent", "talk 5", "hang_up"]),
    ]
    .concat();
    let mut rig = Rig::new("shutdown", &callers);
    rig.run_until(25);
    rig.center.handle(rig.now, CenterInput::Drain { limit: Duration::ZERO });
    rig.carry();
    rig.run_until(30);

    let closed = rig.closed();
    assert_eq!(closed.len(), 2, "{closed:#?}");
    let answered = closed.iter().find(|c| c.caller.as_deref() == Some("13800138000")).unwrap();
    assert_eq!(answered.outcome, Outcome::Answered, "an answered call is not missed: {answered:#?}");
    let waiting = closed.iter().find(|c| c.caller.as_deref() == Some("13800138001")).unwrap();
    assert_eq!(waiting.outcome, Outcome::Missed, "{waiting:#?}");
    assert_eq!(waiting.missed, Some(hotline_cti::cdr::Missed::Shutdown));
    let queue_leg = waiting.legs.iter().find(|l| l.device == "queue:support").expect("a queue leg");
    assert_eq!(queue_leg.outcome, "shutdown", "not the queue's time-out: {queue_leg:?}");
    assert!(!waiting.timed_out);
}
