//! The demo's installation (examples/demo.toml) as a newcomer meets it: the service
//! line is open at any hour of any day, the after-hours line never is, and the
//! simulated agents leave agents 1001-1003 and the headset stations to people.

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
