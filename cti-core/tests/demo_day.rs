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
