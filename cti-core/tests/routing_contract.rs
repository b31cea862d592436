//! Issue 12, points 5 and 6: the engine routes as the configuration says, and the call
//! records and reports say what happened. The engine in virtual time (tests/common),
//! its outputs fed to the call record builder, the records stored and reported.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Rig;
use hotline_cti::cdr::{Cdr, CdrBuilder, Outcome, VoicemailNote};
use hotline_cti::csta::{CallId, CstaEvent, DeviceId, EventCause};
use hotline_cti::report::{self, Params};
use hotline_cti::store::{Store, StoreOp};
use hotline_cti::Input;
use hotline_drivers::EventKind;

const BASE: i64 = 1_793_577_600_000;

const CONFIG: &str = r#"
[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]
dial_prefix = "9"

[[station]]
port = "1/fxs/1-4"
extension = "2001"

[[queue]]
name = "sales"
max_wait = 30
max_wait_action = "external:01012345678"

[[queue]]
name = "support"
max_wait = 30
max_wait_action = "voicemail:support"

[[access_number]]
dnis = "4008001000"
target = "ivr:main"

[[access_number]]
dnis = "4008002000"
target = "queue:sales"

[[access_number]]
dnis = "4008003000"
target = "queue:support"

[[agent]]
id = "1001"
name = "Li Wei"
queues = { sales = 5, support = 5 }
"#;

/// The rig with a call record builder beside the engine.
struct Run {
    rig: Rig,
    cdr: CdrBuilder,
    ops: Vec<StoreOp>,
    events: Vec<CstaEvent>,
}

impl Run {
    fn new() -> Run {
        let rig = Rig::new(CONFIG);
        let cdr = CdrBuilder::new(BASE).with_config(rig.engine.config());
        Run { rig, cdr, ops: Vec::new(), events: Vec::new() }
    }

    /// Hand what the engine put out to the record builder.
    fn feed(&mut self) {
        let now = self.rig.now;
        for o in self.rig.take() {
            if let hotline_cti::Output::Event(e) = &o {
                self.events.push(e.clone());
            }
            self.cdr.handle_output(now, &o);
        }
        while let Some(op) = self.cdr.poll() {
            self.ops.push(op);
        }
    }

    fn offer(&mut self, t: u8, ani: &str, dnis: &str) {
        self.rig.offer(t, ani, dnis);
        self.feed();
    }

    fn advance(&mut self, d: Duration) {
        self.rig.advance(d);
        self.feed();
    }

    fn card(&mut self, kind: EventKind) {
        self.rig.card(kind);
        self.feed();
    }

    fn closed(&self) -> Vec<&Cdr> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                StoreOp::CallClosed(c) => Some(&**c),
                _ => None,
            })
            .collect()
    }
}

/// Point 5: an agent's first state is recorded from the moment of login.
#[test]
fn p12_5_agent_states_has_a_row_from_the_moment_of_login() {
    let mut run = Run::new();
    run.advance(Duration::from_secs(5));
    run.rig.login("1001", "2001");
    run.feed();
    let opened: Vec<_> = run
        .ops
        .iter()
        .filter_map(|o| match o {
            StoreOp::AgentStateOpened(i) if i.agent == "1001" => Some(i.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(opened.len(), 1, "{:?}", run.ops);
    assert_eq!(opened[0].state, "ready");
    assert_eq!(opened[0].from_ms, BASE + 5_000);
}

/// Point 6: the IVR queue node's priority puts the caller ahead of earlier ordinary
/// callers.
#[test]
fn p12_6_the_ivr_queue_nodes_priority_is_used() {
    let mut r = Rig::new(CONFIG);
    r.offer(1, "13800000001", "4008001000");
    r.offer(2, "13800000002", "4008001000");
    let handed: Vec<CallId> = r
        .events()
        .iter()
        .filter_map(|e| match e {
            CstaEvent::HandedOff { call, .. } => Some(*call),
            _ => None,
        })
        .collect();
    assert_eq!(handed.len(), 2);
    r.take();
    let done = |call: CallId, priority: Option<&str>| {
        let data: BTreeMap<String, String> =
            priority.map(|p| ("priority".to_string(), p.to_string())).into_iter().collect();
        Input::IvrDone { call, next: "queue:sales".into(), data }
    };
    r.engine.handle(r.now, done(handed[0], None));
    r.engine.handle(r.now, done(handed[1], Some("5")));
    while let Some(o) = r.engine.poll_output() {
        r.out.push(o);
    }
    let positions: Vec<(CallId, usize)> = r
        .events()
        .iter()
        .filter_map(|e| match e {
            CstaEvent::Queued { call, position, .. } => Some((*call, *position)),
            _ => None,
        })
        .collect();
    assert_eq!(positions, vec![(handed[0], 1), (handed[1], 1)], "the priority caller goes ahead");
    r.take();
    r.login("1001", "2001");
    let first = r.events().iter().find_map(|e| match e {
        CstaEvent::Delivered { call, .. } => Some(*call),
        _ => None,
    });
    assert_eq!(first, Some(handed[1]), "the agent gets the priority caller first");
    r.engine.check_invariants().unwrap();
}

/// Point 6: an overflow to an outside number is a diversion, not an answer: in the
/// events, the call record and the reports.
#[test]
fn p12_6_overflow_to_an_external_number_ends_as_diverted() {
    let mut run = Run::new();
    run.offer(1, "13800000001", "4008002000");
    run.advance(Duration::from_secs(31));
    let diverted = run.events.iter().find_map(|e| match e {
        CstaEvent::Diverted {
            from: DeviceId::Queue(q),
            to: DeviceId::Trunk(ch),
            cause: EventCause::Overflow,
            ..
        } if q == "sales" => Some(*ch),
        _ => None,
    });
    assert!(diverted.is_some(), "Diverted from the queue to the outside line: {:?}", run.events);
    let ch = diverted.expect("checked");
    assert!(
        !run.events.iter().any(|e| matches!(e, CstaEvent::Originated { .. })),
        "a diversion, not a call the caller originated: {:?}",
        run.events
    );
    run.card(EventKind::Alerting { ch });
    run.card(EventKind::Answered { ch });
    run.advance(Duration::from_secs(20));
    run.rig.caller_hangs_up(1);
    run.feed();
    let closed = run.closed();
    assert_eq!(closed.len(), 1);
    let cdr = closed[0];
    assert_eq!(cdr.outcome, Outcome::Diverted, "{cdr:?}");
    assert_eq!(cdr.answered_ms, None, "{cdr:?}");
    assert_eq!(cdr.queue.as_deref(), Some("sales"));
    let queue_leg = cdr.legs.iter().find(|l| l.device == "queue:sales").expect("queue leg");
    assert_eq!(queue_leg.outcome, "timed_out", "{cdr:?}");

    // The reports: not answered in the queue, the call says diverted.
    let path = std::env::temp_dir().join(format!("hotline-p12-6-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut store = Store::open(&path).expect("store");
    store.apply(&run.ops).expect("stored");
    let p = Params::new(BASE, BASE + 3_600_000);
    let q = report::queue_report(&store, &p).expect("queue report");
    let sales = q.iter().find(|f| f.queue == "sales").expect("sales");
    assert_eq!((sales.offered, sales.answered, sales.timed_out), (1, 0, 1), "{sales:?}");
    let calls = report::call_detail(&store, &p).expect("calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].outcome, "diverted", "{:?}", calls[0]);
    drop(store);
    let _ = std::fs::remove_file(&path);
}

/// Point 6: voicemail reached through a queue's overflow keeps the queue, also when
/// the message is done after the caller hung up.
#[test]
fn p12_6_voicemail_reached_through_queue_overflow_keeps_its_queue() {
    let mut run = Run::new();
    run.offer(1, "13800000001", "4008003000");
    run.advance(Duration::from_secs(31));
    assert!(
        run.events.iter().any(
            |e| matches!(e, CstaEvent::HandedOff { to: DeviceId::Ivr(f), .. } if f == "voicemail:support")
        ),
        "{:?}",
        run.events
    );
    // The IVR records the message; the caller hangs up; the message is done after.
    run.cdr.voicemail_started(1);
    run.advance(Duration::from_secs(10));
    run.rig.caller_hangs_up(1);
    run.feed();
    let now = run.rig.now;
    let note = VoicemailNote {
        mailbox: "support".into(),
        path: "/tmp/vm.wav".into(),
        duration_ms: 9_000,
        caller: Some("13800000001".into()),
        access: Some("4008003000".into()),
    };
    run.cdr.voicemail(now, 1, note);
    run.feed();
    let closed = run.closed();
    assert_eq!(closed[0].outcome, Outcome::Voicemail);
    assert_eq!(closed[0].queue.as_deref(), Some("support"));
    let vm = run.ops.iter().find_map(|o| match o {
        StoreOp::Voicemail { queue, .. } => Some(queue.clone()),
        _ => None,
    });
    assert_eq!(vm, Some(Some("support".to_string())), "the message's row keeps the queue");
}
