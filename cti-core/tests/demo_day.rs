//! The demo's center in virtual time (`hotline demo --fast`, `hotline_cti::demo_day`):
//! a person who logs in at a headset station and goes ready is offered a call from the
//! simulated callers within a minute, while the nine simulated agents work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hotline_cti::csta::{AgentRequest, Service};
use hotline_cti::demo_day::{Day, DayOptions};
use hotline_cti::Input;
use hotline_drivers::Instant;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// examples/demo.toml with its files under `dir` and prompts as tones (quick, and the
/// same on every machine).
fn demo_in(dir: &Path) -> String {
    let text = std::fs::read_to_string(root().join("examples/demo.toml")).expect("the demo's file");
    let flows = root().join("examples/flows/demo.toml");
    text.replace("\"examples/flows/demo.toml\"", &format!("{:?}", flows.display().to_string()))
        .replace("\"var/", &format!("\"{}/var/", dir.display()))
        .replace("prompt_dir =", "voice = \"tones\"\nprompt_dir =")
}

#[test]
fn a_person_who_goes_ready_at_a_headset_is_offered_a_call_within_a_minute() {
    let dir = std::env::temp_dir().join(format!("hotline-demo-day-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let people: Vec<String> = ["1001", "1002", "1003"].map(String::from).to_vec();
    let opts = DayOptions {
        text: demo_in(&dir),
        origin: "examples/demo.toml".into(),
        // Wednesday 2026-11-18 15:00 UTC: 23:00 in the demo's time zone.
        start_ms: 1_795_014_000_000,
        length: Duration::from_secs(3600),
        drain_limit: Duration::from_secs(300),
        people: people.clone(),
        store: dir.join("day.db"),
    };
    let mut day = Day::start(&opts).expect("the demo's center starts");
    let joined = Instant::from_secs(600);
    day.run_until(joined).unwrap();
    assert!(day.pops().len() > 20, "the simulated agents take calls: {} pops", day.pops().len());
    assert!(day.pops().iter().all(|(_, a)| !people.contains(a)), "nobody offers calls to logged-out people");
    for (i, id) in people.iter().enumerate() {
        let station = format!("{}", 2101 + i);
        let login = AgentRequest::LogIn { station: Some(station), password: Some("demo".into()) };
        for request in [login, AgentRequest::Ready] {
            let service = Service::SetAgentState { agent: id.clone(), request };
            day.input(Input::Request { client: 1 + i as u32, invoke: 1, service });
        }
    }
    // The support and priority queues prefer the people (the highest skill level): the
    // next callers who ask for an agent are theirs. One person is offered a call within
    // a minute; three who go ready at the same moment share the four or so such callers
    // a minute (examples/demo.toml), so each of them within two.
    day.run_until(joined + Duration::from_secs(120)).unwrap();
    let first = |id: &str| day.pops().iter().find(|(_, a)| a == id).map(|(t, _)| *t - joined);
    let firsts: Vec<_> = people.iter().map(|id| (id.as_str(), first(id))).collect();
    let soonest = firsts.iter().filter_map(|(_, d)| *d).min();
    assert!(soonest.is_some_and(|d| d <= Duration::from_secs(60)), "first calls: {firsts:?}");
    for (id, d) in &firsts {
        assert!(d.is_some_and(|d| d <= Duration::from_secs(120)), "agent {id}: first call after {d:?}");
    }
    day.run_until(Instant::ZERO + opts.length).unwrap();
    let run = day.finish(opts.drain_limit).unwrap();
    // About 470 calls an hour arrive (examples/demo.toml).
    assert!((300..700).contains(&run.calls), "{} calls in the hour", run.calls);
    assert_eq!(run.agents, 9);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The demo's hour without people (nobody at the headsets), its records in a store.
fn an_hour_of_the_demo(name: &str, start_ms: i64) -> (PathBuf, hotline_cti::demo_day::DayRun) {
    let dir = std::env::temp_dir().join(format!("hotline-demo-day-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = DayOptions {
        text: demo_in(&dir),
        origin: "examples/demo.toml".into(),
        start_ms,
        length: Duration::from_secs(3600),
        drain_limit: Duration::from_secs(300),
        people: ["1001", "1002", "1003"].map(String::from).to_vec(),
        store: dir.join("day.db"),
    };
    let run = hotline_cti::demo_day::run(&opts).expect("the demo's hour runs");
    (dir, run)
}

#[test]
fn in_the_demos_hour_some_queued_callers_give_up_and_the_closed_lines_calls_are_marked_after_hours() {
    use hotline_cti::report::{self, Params};
    // Wednesday 2026-11-18 02:00 UTC: 10:00 in the demo's time zone.
    let start_ms = 1_794_967_200_000;
    let (dir, run) = an_hour_of_the_demo("abandons", start_ms);
    let store = hotline_cti::store::Store::open(dir.join("day.db")).expect("the day's store");
    let p = Params::new(start_ms, run.end_ms + 1);
    let queues = report::queue_report(&store, &p).expect("the queue report");
    let offered: u64 = queues.iter().map(|q| q.offered).sum();
    let abandoned: u64 = queues.iter().map(|q| q.abandoned).sum();
    let longest = queues.iter().map(|q| q.longest_wait_s).fold(0.0, f64::max);
    // The demo's callers hold on in a queue for 20 s to 3 minutes (their `wait_agent`);
    // with about 7 Erlangs on nine agents some waits run longer than that.
    println!("{} calls; queued {offered}, abandoned {abandoned}, longest wait {longest:.0} s", run.calls);
    assert!(abandoned > 0, "nobody gave up in an hour: {queues:#?}");
    assert!(abandoned * 4 < offered, "most callers wait for an agent: {queues:#?}");
    let missed = report::missed_counts(&store, &p).expect("the missed-calls report");
    println!("missed: {missed:?}");
    assert!(missed.iter().map(|m| m.abandoned).sum::<u64>() > 0, "{missed:#?}");
    // The after-hours line is never open: every call to it is marked so; its callers
    // leave a message (not missed) or are missed out of hours.
    let calls = store.calls(&hotline_cti::store::CallFilter::default()).expect("the calls");
    let closed: Vec<_> = calls.iter().filter(|c| c.called.as_deref() == Some("4008009000")).collect();
    assert!(closed.len() > 5, "about 20 calls an hour to the after-hours line: {}", closed.len());
    for c in &closed {
        assert!(c.data.contains(r#""after_hours":"yes""#), "{c:?}");
        assert!(matches!(c.missed.as_deref(), None | Some("after_hours")), "{c:?}");
    }
    let after_hours = report::missed_calls(&store, &p).expect("the missed calls");
    assert!(after_hours.iter().filter(|m| m.kind == "after_hours").all(|m| m.called == "4008009000"));
    assert!(calls
        .iter()
        .filter(|c| c.called.as_deref() != Some("4008009000"))
        .all(|c| !c.data.contains("after_hours")));
    let _ = std::fs::remove_dir_all(&dir);
}
