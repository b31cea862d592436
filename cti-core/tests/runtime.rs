//! The engine on its own thread, in real time, over crossbeam channels.

use std::time::Duration;

use crossbeam_channel::bounded;
use hotline_cti::runtime::{run, RealClock};
use hotline_cti::{Config, Engine, Input, Output};
use hotline_drivers::{CardEvent, ChannelId, Command, EventKind, Instant};

const CONFIG: &str = r#"
[engine]
inter_digit_timeout = 1

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]
dial_prefix = "9"

[[station]]
port = "1/fxs/1"
extension = "2001"
"#;

#[test]
fn the_runtime_feeds_the_engine_and_wakes_it_for_timers() {
    let engine = Engine::new(Config::parse(CONFIG, "rt.toml").unwrap());
    let (in_tx, in_rx) = bounded::<Input>(64);
    let (out_tx, out_rx) = bounded::<Output>(256);
    let worker = std::thread::spawn(move || run(engine, &RealClock::new(), &in_rx, &out_tx));
    let station = ChannelId::fxs(1, 1);
    let ev = |kind| Input::Card(CardEvent { time: Instant::ZERO, kind });
    in_tx.send(ev(EventKind::OffHook { ch: station })).unwrap();
    for d in "9555".chars() {
        in_tx
            .send(ev(EventKind::Digit { ch: station, digit: d, start: Instant::ZERO, end: Instant::ZERO }))
            .unwrap();
    }
    // No '#': the one-second inter-digit timer fires in the runtime and the call is placed.
    let placed = loop {
        match out_rx.recv_timeout(Duration::from_secs(5)).expect("the runtime keeps producing") {
            Output::Command(Command::PlaceCall { called, .. }) => break called,
            _ => continue,
        }
    };
    assert_eq!(placed, "555");
    drop(in_tx);
    let engine = worker.join().expect("the runtime thread ends when inputs close");
    assert_eq!(engine.call_count(), 1);
}
