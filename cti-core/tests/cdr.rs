//! Call records and the recording policy on scenarios run through the engine and the
//! card simulator: a plain queue call, and a consultation with hold ending in a
//! transfer.

use std::time::Duration;

use crossbeam_channel::unbounded;
use hotline_cti::cdr::AgentInterval;
use hotline_cti::cdr::{Cdr, CdrBuilder, Missed, Outcome, Side};
use hotline_cti::coupled::{self, Seen};
use hotline_cti::csta::{AgentRequest, Service};
use hotline_cti::recording::{PolicySettings, RecordAction, RecordingPolicy};
use hotline_cti::store::StoreOp;
use hotline_cti::{Config, Engine, Input};
use hotline_drivers::sim::SimCard;
use hotline_drivers::{ChannelId, Instant};

const INSTALLATION: &str = r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "isdn_pri"

[card.fxs]
ports = "1-4"

[simulator]
media = "signalling"
seed = 11

[[simulator.inbound]]
at_s = 2
trunk = "1/1"
ani = "01066668888"
dnis = "4008001000"
caller = { patience_s = 60, script = ["talk 90", "hang_up"] }

[[simulator.station]]
ports = "1-4"
answer_after_s = 2
hang_up_after_release_s = 1

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1-4"
extension = "2001"

[[queue]]
name = "sales"
wrap_up = 5

[[access_number]]
dnis = "4008001000"
target = "queue:sales"

[[agent]]
id = "1001"
name = "Li Wei"
queues = { sales = 5 }

[[agent]]
id = "1002"
name = "Wang Fang"
queues = { sales = 5 }
"#;

const BASE: i64 = 1_793_577_600_000;

struct Run {
    ops: Vec<StoreOp>,
    actions: Vec<RecordAction>,
}

impl Run {
    fn closed(&self) -> Vec<&Cdr> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                StoreOp::CallClosed(c) => Some(&**c),
                _ => None,
            })
            .collect()
    }
    fn intervals(&self, agent: &str) -> Vec<&AgentInterval> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                StoreOp::AgentInterval(i) | StoreOp::AgentStateOpened(i) if i.agent == agent => Some(i),
                _ => None,
            })
            .collect()
    }
}

/// Run the installation for `secs`, agents 1001 at 2001 and
/// 1002 at 2002 logged in, `script` acting on the simulated phones.
fn run(text: &str, secs: u64, script: impl FnOnce(&mut SimCard)) -> Run {
    let cards = hotline_drivers::config::parse(text, "cdr.toml").unwrap();
    let cfg = Config::parse(text, "cdr.toml").unwrap();
    let (tx, rx) = unbounded();
    let mut sim = SimCard::from_config(&cards, 1, tx).unwrap();
    let mut engine = Engine::new(cfg.clone());
    // As the live center does: engine time zero is BASE, for schedules.
    engine.set_wall_clock(Instant::ZERO, BASE / 1000);
    let mut cdr = CdrBuilder::new(BASE).with_config(&cfg);
    let settings = PolicySettings {
        dir: "/rec".into(),
        format: "wav-pcm16".into(),
        retention: "normal".into(),
        wall_base: BASE,
        first_id: 1,
    };
    let mut policy = RecordingPolicy::new(&cfg, settings);
    for (agent, ext) in [("1001", "2001"), ("1002", "2002")] {
        let service = Service::SetAgentState {
            agent: agent.into(),
            request: AgentRequest::LogIn { station: Some(ext.into()), password: None },
        };
        engine.handle(Instant::ZERO, Input::Request { client: 1, invoke: 1, service });
    }
    script(&mut sim);
    let mut feed = |t: Instant, s: Seen<'_>| match s {
        Seen::Card(ev) => {
            cdr.handle_card(t, ev);
            policy.handle_card(t, ev);
        }
        Seen::Output(o) => {
            cdr.handle_output(t, o);
            policy.handle_output(t, o);
        }
        Seen::Refused { command, error } => panic!("refused {command:?}: {error}"),
    };
    coupled::carry(&mut engine, &mut sim, Instant::ZERO, &mut feed);
    let mut now = Instant::ZERO;
    coupled::run_until(&mut engine, &mut sim, &rx, &mut now, Instant::from_secs(secs), &mut feed).unwrap();
    let mut r = Run { ops: Vec::new(), actions: Vec::new() };
    while let Some(op) = cdr.poll() {
        r.ops.push(op);
    }
    while let Some(a) = policy.poll() {
        r.actions.push(a);
    }
    r
}

#[test]
fn a_queue_call_answered_by_an_agent_has_its_legs_times_and_a_recording() {
    let r = run(INSTALLATION, 150, |_| {});
    let calls = r.closed();
    assert_eq!(calls.len(), 1);
    let c = calls[0];
    assert_eq!((c.outcome, c.missed, c.released_side), (Outcome::Answered, None, Side::Caller));
    assert_eq!(c.caller.as_deref(), Some("01066668888"));
    assert_eq!(c.called.as_deref(), Some("4008001000"));
    assert_eq!(c.queue.as_deref(), Some("sales"));
    let agent = c.agent.clone().unwrap();
    let queued = c.queued_ms.unwrap();
    let rung = c.rung_ms.unwrap();
    let answered = c.answered_ms.unwrap();
    assert!(c.arrived_ms <= queued && queued <= rung && rung < answered && answered < c.ended_ms, "{c:?}");
    assert_eq!(answered - rung, 2_000, "the phone answers 2 s after it rings");
    // The caller's script starts when the trunk is answered: 90 s of talk, then hang-up.
    assert!((90_000..90_200).contains(&(c.ended_ms - c.arrived_ms)), "{c:?}");
    let devices: Vec<(&str, &str)> = c.legs.iter().map(|l| (l.device.as_str(), l.outcome.as_str())).collect();
    assert!(devices.contains(&("queue:sales", "answered")), "{devices:?}");
    let station = c.legs.iter().find(|l| l.device.starts_with("station:")).unwrap();
    assert_eq!((station.agent.as_deref(), station.outcome.as_str()), (Some(agent.as_str()), "answered"));

    // Recorded from answer to release, caller left, agent right.
    let ext_port = if agent == "1001" { 1 } else { 2 };
    match &r.actions[..] {
        [RecordAction::Start { call, rec_id, caller_ch, agent_ch, meta }, RecordAction::Stop { rec_id: stopped }] =>
        {
            assert_eq!(*call, c.key.call);
            assert_eq!(*stopped, *rec_id);
            assert!(caller_ch.is_trunk());
            assert_eq!(*agent_ch, ChannelId::fxs(1, ext_port));
            assert_eq!(meta.started_ms, answered);
            assert_eq!(meta.agent.as_deref(), Some(agent.as_str()));
            assert_eq!(meta.caller.as_deref(), Some("01066668888"));
            assert!(meta.path.starts_with("/rec/20261102/") && meta.path.ends_with(".wav"), "{}", meta.path);
        }
        other => panic!("expected a start and a stop: {other:#?}"),
    }
    // Agent state: ready, ringing, busy, wrap-up, ready — back to back.
    let iv = r.intervals(&agent);
    let closed: Vec<&&AgentInterval> = iv.iter().filter(|i| i.to_ms.is_some()).collect();
    let states: Vec<&str> = closed.iter().map(|i| i.state.as_str()).collect();
    assert_eq!(states, vec!["ready", "ringing", "busy", "working after call"]);
    for w in closed.windows(2) {
        assert_eq!(w[0].to_ms, Some(w[1].from_ms), "no gaps: {closed:#?}");
    }
    assert_eq!(iv.last().unwrap().state, "ready");
    assert_eq!(iv.last().unwrap().to_ms, None, "the current state is written open");
}

#[test]
fn a_consultation_with_hold_ending_in_a_transfer_is_one_record_with_every_leg() {
    let text = INSTALLATION.replace("\"talk 90\"", "\"talk 120\"");
    let agent = ChannelId::fxs(1, 1);
    // Agent 1001 at 2001 takes the call (first in line); at 10 s they flash, dial 2002
    // (agent 1002's phone, which answers in 2 s) and hang up at 20 s to transfer.
    let r = run(&text, 200, |sim| {
        sim.flash_hook(Instant::from_secs(10), agent, Duration::from_millis(300)).unwrap();
        sim.dial_from_station(Instant::from_secs(11), agent, "2002").unwrap();
        sim.go_on_hook(Instant::from_secs(20), agent).unwrap();
    });
    let calls = r.closed();
    let primary =
        calls.iter().find(|c| c.caller.as_deref() == Some("01066668888")).expect("the caller's call");
    let consult = calls.iter().find(|c| c.outcome == Outcome::Merged).expect("the consultation, merged");
    assert_eq!(consult.data.get("merged_into"), Some(&primary.key.call.to_string()));
    assert_eq!(primary.transfers, 1);
    assert_eq!(primary.holds, 1);
    assert!(primary.hold_ms > 0 && primary.hold_ms < 12_000, "{primary:?}");
    let legs: Vec<(&str, &str)> =
        primary.legs.iter().map(|l| (l.device.as_str(), l.outcome.as_str())).collect();
    assert!(legs.contains(&("station:2001", "transferred")), "{legs:?}");
    assert!(legs.contains(&("station:2002", "joined")), "{legs:?}");
    assert_eq!(primary.outcome, Outcome::Answered);

    // The agent's recording stops when they transfer away; the consultation was
    // recorded on its own and stops at the transfer too.
    let starts: Vec<u64> = r
        .actions
        .iter()
        .filter_map(|a| if let RecordAction::Start { rec_id, .. } = a { Some(*rec_id) } else { None })
        .collect();
    let stops: Vec<u64> = r
        .actions
        .iter()
        .filter_map(|a| if let RecordAction::Stop { rec_id } = a { Some(*rec_id) } else { None })
        .collect();
    assert!(starts.len() >= 2, "{:#?}", r.actions);
    for s in &starts {
        assert!(stops.contains(s), "every recording stops: {:#?}", r.actions);
    }
}

#[test]
fn a_queue_with_recording_off_records_nothing_unless_asked() {
    let text = INSTALLATION
        .replace("name = \"sales\"\nwrap_up = 5", "name = \"sales\"\nwrap_up = 5\nrecord = false");
    let r = run(&text, 150, |_| {});
    assert!(r.actions.is_empty(), "{:#?}", r.actions);
    // An agent set to record overrides the queue.
    let text = text
        .replace("name = \"Li Wei\"", "name = \"Li Wei\"\nrecord = true")
        .replace("name = \"Wang Fang\"", "name = \"Wang Fang\"\nrecord = true");
    let r = run(&text, 150, |_| {});
    assert_eq!(r.actions.iter().filter(|a| matches!(a, RecordAction::Start { .. })).count(), 1);
}

#[test]
fn a_caller_who_hangs_up_while_the_phone_rings_is_a_missed_call_not_answered() {
    let text = INSTALLATION
        .replace(
            "caller = { patience_s = 60, script = [\"talk 90\", \"hang_up\"] }",
            "caller = { patience_s = 60, script = [\"wait_agent 1\", \"hang_up\"] }",
        )
        .replace("answer_after_s = 2", "answer_after_s = 30");
    let r = run(&text, 100, |_| {});
    let c = r.closed()[0].clone();
    assert_eq!(
        (c.outcome, c.missed, c.released_side),
        (Outcome::Missed, Some(Missed::NotAnswered), Side::Caller)
    );
    let station = c.legs.iter().find(|l| l.device.starts_with("station:")).unwrap();
    assert_eq!(station.outcome, "caller_gone");
    assert!(r.actions.is_empty(), "nothing answered, nothing recorded");
}

/// The installation with its access number closed by a schedule that is never open,
/// its calls going to `closed` meanwhile, and the caller's script.
fn closed_line(closed: &str, script: &str) -> String {
    INSTALLATION
        .replace(
            "[[access_number]]\ndnis = \"4008001000\"\ntarget = \"queue:sales\"\n",
            &format!(
                "[[schedule]]\nname = \"never\"\ndays = []\nhours = []\n\n[[access_number]]\ndnis = \"4008001000\"\n\
                 target = \"{closed}\"\nroute = [{{ schedule = \"never\", target = \"queue:sales\" }}]\n"
            ),
        )
        .replace("script = [\"talk 90\", \"hang_up\"]", &format!("script = [{script}]"))
}

#[test]
fn a_call_refused_by_a_closed_access_numbers_hangup_target_is_missed_after_hours() {
    let text = closed_line("hangup:31", "");
    assert!(text.contains("hangup:31") && text.contains("script = []"), "{text}");
    let r = run(&text, 20, |_| {});
    let c = r.closed()[0].clone();
    assert_eq!((c.outcome, c.missed, c.cause), (Outcome::Missed, Some(Missed::AfterHours), 31), "{c:#?}");
    assert_eq!(c.data.get("after_hours").map(String::as_str), Some("yes"));
}

#[test]
fn a_caller_who_gives_up_in_the_queue_a_closed_number_sends_to_is_missed_after_hours() {
    // Closed, the number's calls go to the same queue: a caller who hangs up there is
    // out of hours, not an abandon.
    // The agents' phones ring on (nobody answers within the caller's 3 s).
    let text = closed_line("queue:sales", "\"wait_agent 3\", \"hang_up\"")
        .replace("answer_after_s = 2", "answer_after_s = 30");
    let r = run(&text, 30, |_| {});
    let c = r.closed()[0].clone();
    assert_eq!((c.outcome, c.missed), (Outcome::Missed, Some(Missed::AfterHours)), "{c:#?}");
    // Open (no schedule), the same caller is missed while the phone rang.
    let text = INSTALLATION
        .replace("script = [\"talk 90\", \"hang_up\"]", "script = [\"wait_agent 3\", \"hang_up\"]")
        .replace("answer_after_s = 2", "answer_after_s = 30");
    let r = run(&text, 30, |_| {});
    let c = r.closed()[0].clone();
    assert_eq!((c.outcome, c.missed), (Outcome::Missed, Some(Missed::NotAnswered)), "{c:#?}");
    assert!(!c.data.contains_key("after_hours"), "{c:#?}");
}
