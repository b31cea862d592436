//! The demo's installation (examples/demo.toml) as a newcomer meets it: the service
//! line is open at any hour of any day, the after-hours line never is, and the
//! simulated agents leave agents 1001-1003 and the headset stations to people, and a
//! person who goes ready gets the next call of their queues.

mod common;

use std::time::Duration;

use common::{fxs, ts, Rig};
use hotline_cti::csta::{AgentRequest, AgentState, Service, ServiceResult};
use hotline_cti::sim_agents::SimAgents;
use hotline_cti::{Config, Engine};
use hotline_drivers::Instant;

const DEMO: &str = include_str!("../../examples/demo.toml");

#[test]
fn the_service_line_is_open_at_every_hour_of_the_week_and_the_after_hours_line_never() {
    let cfg = Config::parse(DEMO, "examples/demo.toml").expect("the demo's file is valid");
    let mut engine = Engine::new(cfg);
    // Monday 2026-11-30 00:00 UTC, then every hour for a week (and a few odd minutes).
    let monday = 1_795_996_800i64;
    for hour in 0..7 * 24 {
        let unix = monday + hour * 3600 + (hour % 7) * 60 * 7;
        engine.set_wall_clock(Instant::ZERO, unix);
        let access = engine.access_now();
        let find = |dnis: &str| access.iter().find(|a| a.dnis == dnis).expect("configured").clone();
        let service = find("4008001000");
        assert!(service.open && service.target == "ivr:main", "hour {hour}: {service:?}");
        let billing = find("4008002000");
        assert!(billing.open && billing.target == "queue:billing", "hour {hour}: {billing:?}");
        let closed = find("4008009000");
        assert!(!closed.open && closed.target == "ivr:after_hours", "hour {hour}: {closed:?}");
    }
}

#[test]
fn the_simulated_agents_leave_1001_to_1003_and_the_headset_stations_to_people() {
    let cfg = Config::parse(DEMO, "examples/demo.toml").expect("the demo's file is valid");
    let cards = hotline_drivers::config::parse(DEMO, "examples/demo.toml").expect("card tables");
    let headsets = hotline_cti::serve::headset_stations(&cards);
    let head_ext: Vec<&str> =
        cfg.stations.iter().filter(|s| headsets.contains(&s.port)).map(|s| s.extension.as_str()).collect();
    assert_eq!(head_ext, ["2101", "2102", "2103"]);
    let people: Vec<String> = ["1001", "1002", "1003"].map(String::from).to_vec();
    let sim = SimAgents::new(&cfg, 1, &people, &headsets);
    let seats: Vec<(String, String)> = sim.seats().map(|(a, s)| (a.to_string(), s.to_string())).collect();
    let expected: Vec<(String, String)> =
        (4..=12).map(|i| (format!("{}", 1000 + i), format!("{}", 2000 + i - 3))).collect();
    assert_eq!(seats, expected, "agents 1004-1012 at the analog phones 2001-2009");
    // The people's agents exist with the password the README gives.
    for id in &people {
        let a = cfg.agents.iter().find(|a| &a.id == id).expect("agent configured");
        assert_eq!(a.password.as_deref(), Some("demo"));
    }
    assert!(cfg.supervisors.iter().any(|s| s.id == "9001" && s.password.as_deref() == Some("demo")));
}

/// The demo with a test access number straight to the support queue (the service line
/// reaches it through the IVR, which the bare engine does not run).
fn demo_with_support_line(text: &str) -> Rig {
    Rig::new(&format!("{text}\n[[access_number]]\ndnis = \"4008003001\"\ntarget = \"queue:support\"\n"))
}

/// The support queue's simulated agents at their analog phones (2001-2008), ready and
/// idle for a minute; then the person logs in at the headset station 2101 and goes
/// ready. Returns the station the next support caller rings.
fn next_support_call_after_a_person_goes_ready(
    r: &mut Rig,
) -> Vec<(hotline_drivers::ChannelId, Option<String>)> {
    let ready = |r: &mut Rig, agent: &str, ext: &str| {
        let request = AgentRequest::LogIn { station: Some(ext.into()), password: Some("demo".into()) };
        let login = r.request(Service::SetAgentState { agent: agent.into(), request });
        assert_eq!(login, Ok(ServiceResult::Ok), "{agent} logs in at {ext}");
        let ready = r.request(Service::SetAgentState { agent: agent.into(), request: AgentRequest::Ready });
        assert_eq!(ready, Ok(ServiceResult::Ok), "{agent} ready");
    };
    for (agent, ext) in [
        ("1004", "2001"),
        ("1005", "2002"),
        ("1006", "2003"),
        ("1009", "2006"),
        ("1010", "2007"),
        ("1011", "2008"),
    ] {
        ready(r, agent, ext);
    }
    r.advance(Duration::from_secs(60));
    ready(r, "1001", "2101");
    assert_eq!(r.engine.agent_state("1001").map(|s| s.0), Some(AgentState::Ready));
    r.advance(Duration::from_secs(1));
    r.take();
    r.offer(1, "13800138000", "4008003001");
    r.rung()
}

#[test]
fn a_person_who_goes_ready_gets_the_next_support_call_before_the_idle_simulated_agents() {
    let mut r = demo_with_support_line(DEMO);
    // Station 2101 is the first headset, FXS port 12.
    assert_eq!(
        next_support_call_after_a_person_goes_ready(&mut r),
        vec![(fxs(12), Some("13800138000".into()))]
    );
    assert!(r.engine.call_on(ts(1)).is_some());

    // Without the demo's preference for the higher level, longest idle alone would
    // ring a simulated agent who has waited a minute: the person would wait for a
    // moment when all six are busy.
    let plain = DEMO.replacen("prefer = [\"higher_level\"]", "", 1);
    assert_ne!(plain, DEMO, "the support queue prefers the higher level");
    let mut r = demo_with_support_line(&plain);
    let rung = next_support_call_after_a_person_goes_ready(&mut r);
    assert_eq!(rung.len(), 1, "{rung:?}");
    assert_ne!(rung[0].0, fxs(12), "longest idle alone passes over the person who just went ready");
}
