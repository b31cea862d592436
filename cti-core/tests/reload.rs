//! Reloading the configuration while calls are in progress (SIGHUP).

mod common;

use common::{Rig, BASE};
use hotline_cti::csta::CstaEvent;
use hotline_cti::Config;
use hotline_drivers::{Cause, Command};

fn cfg(text: &str) -> Config {
    Config::parse(text, "reload.toml").expect("valid")
}

#[test]
fn a_reload_changes_routing_and_queue_timers_without_touching_the_waiting_caller() {
    let mut rig = Rig::base();
    rig.offer(1, "13700000001", "4008001000");
    assert!(rig.has_event(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "sales")));
    rig.take();

    // The second access number now goes to sales, a new number is blacklisted, and
    // sales rings agents for 20 s instead of 15.
    let text = BASE
        .replace(
            "dnis = \"4008002000\"\ntarget = \"queue:support\"",
            "dnis = \"4008002000\"\ntarget = \"queue:sales\"",
        )
        .replace("ring_timeout = 15\nmax_misses", "ring_timeout = 20\nmax_misses")
        + "\n[[blacklist]]\nnumber = \"13600000000\"\naction = \"reject\"\ncause = 21\n";
    let changed = rig.engine.reload(cfg(&text)).expect("applied");
    assert!(changed.iter().any(|c| c == "queue sales"), "{changed:?}");
    assert!(changed.iter().any(|c| c.starts_with("routing")), "{changed:?}");
    assert!(changed.iter().any(|c| c.starts_with("VIP and blacklist")), "{changed:?}");
    assert!(rig.take().is_empty(), "a reload by itself does nothing to calls");
    assert_eq!(rig.engine.queue_length("sales"), Some(1));

    // New calls follow the new routing and the new blacklist.
    rig.offer(2, "13700000002", "4008002000");
    assert!(rig.has_event(|e| matches!(e, CstaEvent::Queued { queue, position: 2, .. } if queue == "sales")));
    rig.offer(3, "13600000000", "4008001000");
    assert!(rig.has_command(|c| matches!(c, Command::Reject { cause, .. } | Command::Release { cause, .. } if *cause == Cause::CALL_REJECTED)));

    // The waiting caller is served by the first agent who logs in, rung for 20 s.
    rig.take();
    rig.login("1001", "2001");
    rig.engine.handle(rig.now, hotline_cti::Input::Timeout);
    assert!(!rig.rung().is_empty(), "the first caller is offered to the agent");
    rig.take();
    rig.advance(std::time::Duration::from_secs(16));
    assert!(
        !rig.has_event(|e| matches!(
            e,
            CstaEvent::Agent { kind: hotline_cti::csta::AgentEventKind::Missed { .. }, .. }
        )),
        "the old 15 s ring timeout no longer applies"
    );
    rig.advance(std::time::Duration::from_secs(5));
    assert!(rig.has_event(|e| matches!(
        e,
        CstaEvent::Agent { kind: hotline_cti::csta::AgentEventKind::Missed { .. }, .. }
    )));
}

#[test]
fn a_reload_that_needs_a_restart_is_refused_and_changes_nothing() {
    let mut rig = Rig::base();
    rig.offer(1, "13700000001", "4008001000");
    let more_stations = BASE.replace("port = \"1/fxs/1-8\"", "port = \"1/fxs/1-9\"");
    let new_strategy = BASE.replacen("strategy = \"longest_idle\"", "strategy = \"round_robin\"", 1);
    for text in [more_stations, new_strategy] {
        let err = rig.engine.reload(cfg(&text)).expect_err("refused");
        assert!(err.contains("restart"), "{err}");
    }
    let err =
        rig.engine.reload(cfg(&BASE.replace("port = \"1/fxs/1-8\"", "port = \"1/fxs/1-9\""))).unwrap_err();
    assert!(err.contains("stations changed"), "{err}");
    assert_eq!(rig.engine.queue_length("sales"), Some(1));
    assert_eq!(rig.engine.config(), &cfg(BASE));
}
