//! "Nothing completed is lost on kill -9": a child process (this test binary, run
//! again with an environment variable) runs simulated calls through the engine, the
//! CDR builder and the store writer, waits until what completed is committed, says
//! so, and is killed with SIGKILL while a call is still in progress. The parent then
//! reopens the store and checks every completed call is there and the cut one is
//! marked cut.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded};
use hotline_cti::cdr::CdrBuilder;
use hotline_cti::coupled::{self, Seen};
use hotline_cti::csta::{AgentRequest, Service};
use hotline_cti::store::{CallFilter, Store, StoreOp, StoreWriter};
use hotline_cti::{Config, Engine, Input, Output};
use hotline_drivers::sim::SimCard;
use hotline_drivers::Instant;

const CHILD_ENV: &str = "HOTLINE_STORE_CRASH_CHILD";

const INSTALLATION: &str = r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "isdn_pri"

[card.fxs]
ports = "1-2"

[simulator]
media = "signalling"
seed = 3

[[simulator.inbound]]
at_s = 1
trunk = "1/1"
ani = "01011110001"
dnis = "100"
caller = { patience_s = 60, script = ["wait_agent", "talk 20", "hang_up"] }

[[simulator.inbound]]
at_s = 2
trunk = "1/1"
ani = "01011110002"
dnis = "100"
caller = { patience_s = 60, script = ["wait_agent", "talk 25", "hang_up"] }

[[simulator.inbound]]
at_s = 40
trunk = "1/1"
ani = "01011110003"
dnis = "100"
caller = { patience_s = 60, script = ["wait_agent", "talk 3600", "hang_up"] }

[[simulator.station]]
ports = "1-2"
answer_after_s = 1
hang_up_after_release_s = 0

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1-2"
extension = "2001"

[[queue]]
name = "sales"

[[access_number]]
dnis = "100"
target = "queue:sales"

[[agent]]
id = "1001"
name = "A"
queues = { sales = 5 }

[[agent]]
id = "1002"
name = "B"
queues = { sales = 5 }
"#;

const WALL_BASE: i64 = 1_793_577_600_000;

/// The child: run 100 s of virtual time (two calls complete, one is in progress),
/// make sure it is committed, say READY, and wait to be killed.
fn child(path: &str) -> ! {
    let cards = hotline_drivers::config::parse(INSTALLATION, "crash.toml").unwrap();
    let cfg = Config::parse(INSTALLATION, "crash.toml").unwrap();
    let (tx, rx) = unbounded();
    let mut sim = SimCard::from_config(&cards, 1, tx).unwrap();
    let mut engine = Engine::new(cfg.clone());
    let mut cdr = CdrBuilder::new(WALL_BASE).with_config(&cfg);
    let (store, _writer, _) = StoreWriter::spawn(path).unwrap();
    for (agent, ext) in [("1001", "2001"), ("1002", "2002")] {
        let service = Service::SetAgentState {
            agent: agent.into(),
            request: AgentRequest::LogIn { station: Some(ext.into()), password: None },
        };
        engine.handle(Instant::ZERO, Input::Request { client: 1, invoke: 1, service });
    }
    let mut feed = |t: Instant, s: Seen<'_>| match s {
        Seen::Card(ev) => cdr.handle_card(t, ev),
        Seen::Output(o @ (Output::Event(_) | Output::Record(_))) => {
            cdr.handle_output(t, o);
            while let Some(op) = cdr.poll() {
                store.send(op).unwrap();
            }
        }
        _ => {}
    };
    coupled::carry(&mut engine, &mut sim, Instant::ZERO, &mut feed);
    let mut now = Instant::ZERO;
    coupled::run_until(&mut engine, &mut sim, &rx, &mut now, Instant::from_secs(100), &mut feed).unwrap();
    let (done_tx, done_rx) = bounded(1);
    store.send(StoreOp::Flush(done_tx)).unwrap();
    done_rx.recv().unwrap();
    println!("READY");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn temp_store() -> PathBuf {
    let p = std::env::temp_dir().join(format!("hotline-crash-{}.db", std::process::id()));
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
    }
    p
}

#[test]
fn a_store_killed_with_sigkill_keeps_every_completed_call_and_marks_the_cut_one() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path);
    }
    let path = temp_store();
    let exe = std::env::current_exe().unwrap();
    let mut kid = Command::new(exe)
        .args([
            "--exact",
            "a_store_killed_with_sigkill_keeps_every_completed_call_and_marks_the_cut_one",
            "--nocapture",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the child");
    let out = kid.stdout.take().unwrap();
    let (tx, rx) = bounded(1);
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("READY") {
                let _ = tx.send(());
                return;
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    // Child::kill is SIGKILL on Unix: no destructor, no flush, no WAL checkpoint.
    kid.kill().unwrap();
    let status = kid.wait().unwrap();
    ready.expect("the child got its calls stored");
    assert!(!status.success());

    let (_tx, writer, recovered) = StoreWriter::spawn(&path).expect("reopen after the crash");
    assert_eq!(recovered.calls_cut, 1, "{recovered:?}");
    assert_eq!(recovered.agent_intervals_closed, 2, "both agents had a state open: {recovered:?}");
    drop(_tx);
    writer.join().unwrap();

    let store = Store::open(&path).unwrap();
    let calls = store.calls(&CallFilter::default()).unwrap();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    for c in &calls[..2] {
        assert_eq!((c.state.as_str(), c.outcome.as_deref()), ("closed", Some("answered")), "{c:?}");
        assert_eq!(c.released_side.as_deref(), Some("caller"));
    }
    let cut = &calls[2];
    assert_eq!(cut.caller.as_deref(), Some("01011110003"));
    assert_eq!((cut.state.as_str(), cut.outcome.as_deref()), ("cut", Some("cut")));
    assert!(cut.answered_ms.is_some(), "the cut call had been answered: {cut:?}");
    let open = store.agent_intervals(0, i64::MAX, None).unwrap();
    assert!(open.iter().all(|i| i.to_ms.is_some()), "no interval left open: {open:#?}");
    assert_eq!(
        store.calls(&CallFilter { state: Some("open".into()), ..Default::default() }).unwrap(),
        vec![]
    );
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
}
