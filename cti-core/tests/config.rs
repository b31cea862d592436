//! The engine's configuration: what `hotline config check FILE` reports, and routing
//! by schedule.

mod common;

use common::{fxs, ts, Rig, BASE};
use hotline_cti::config::{Strategy, Target};
use hotline_cti::csta::CstaEvent;
use hotline_cti::{check_config, Config};
use hotline_drivers::{Cause, Command, Instant};

#[test]
fn the_sample_installation_checks_clean() {
    assert_eq!(check_config(BASE, "hotline.toml"), vec![]);
    let cfg = Config::parse(BASE, "hotline.toml").unwrap();
    assert_eq!(cfg.trunk_groups[0].channels.len(), 30);
    assert_eq!(cfg.stations.len(), 8);
    assert_eq!(cfg.stations[7].extension, "2008");
    assert_eq!(cfg.queues[2].strategy, Strategy::RoundRobin);
    assert_eq!(cfg.queues[0].max_wait.as_ref().map(|m| m.1.clone()), Some(Target::Queue(1)));
}

#[test]
fn every_problem_is_reported_with_its_line_and_column() {
    let text = r#"
[[queue]]
name = "sales"
strategy = "fastest"
max_wait = 30

[[agent]]
id = "1001"
name = "A"
queues = { sales = 12, nowhere = 1 }

[[station]]
port = "1/fxo/1"
extension = "2001"

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/40"]

[[access_number]]
dnis = "400"
target = "queue:missing"

[[schedule]]
name = "day"
days = ["mon", "funday"]
hours = ["18:00-09:00"]

[[queues]]
name = "typo"
"#;
    let problems = check_config(text, "bad.toml");
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let has = |line: usize, what: &str| {
        assert!(
            problems.iter().any(|p| p.line == line && p.message.contains(what)),
            "expected a problem on line {line} about {what:?}, got:\n{}",
            shown.join("\n")
        )
    };
    has(4, "unknown strategy \"fastest\"");
    has(3, "max_wait is set but its action is not");
    has(10, "level 12 out of range");
    has(10, "no queue named \"nowhere\"");
    has(13, "not an FXS port");
    has(18, "bad channel range");
    has(22, "no queue named \"missing\"");
    has(26, "bad day \"funday\"");
    has(27, "bad hours");
    has(29, "did you mean `queue`");
    assert!(shown[0].starts_with("bad.toml:"), "{}", shown[0]);
    // Columns point at the value.
    let strategy = problems.iter().find(|p| p.message.contains("fastest")).unwrap();
    assert_eq!(strategy.column, 12);
}

#[test]
fn a_syntax_error_and_a_type_error_are_both_located() {
    let text = "[[queue]]\nname = \"a\"\nring_timeout = \"long\"\n\n[[agent]\nid = 1\n";
    let problems = check_config(text, "x.toml");
    assert!(problems.iter().any(|p| p.line == 5 && p.message.contains("TOML syntax")), "{problems:?}");
    assert!(problems.iter().any(|p| p.line == 3 && p.message.contains("[[queue]]")), "{problems:?}");
}

#[test]
fn unknown_keys_in_a_table_are_named() {
    let text = "[[queue]]\nname = \"a\"\nring_timout = 10\n";
    let problems = check_config(text, "x.toml");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, 3);
    assert!(problems[0].message.contains("ring_timout"), "{}", problems[0].message);
}

const SCHEDULED: &str = r#"
[engine]
utc_offset = "+08:00"

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1"
extension = "2001"

[[queue]]
name = "sales"

[[schedule]]
name = "office"
days = ["mon", "tue", "wed", "thu", "fri"]
hours = ["09:00-12:00", "13:00-18:00"]

[[holiday]]
name = "National Day"
date = "2026-10-01"

[[access_number]]
dnis = "4008001000"
target = "hangup:31"
holiday_target = "voicemail:closed"
route = [{ schedule = "office", target = "queue:sales" }]
"#;

/// 2026-11-02 was a Monday; Unix time of 00:00 UTC that day.
const MONDAY_UTC: i64 = 20_759 * 86_400;

#[test]
fn office_hours_go_to_the_queue_and_after_hours_are_refused() {
    let mut r = Rig::new(SCHEDULED);
    // 10:00 local (+08:00) on a Monday is 02:00 UTC.
    r.engine.set_wall_clock(Instant::ZERO, MONDAY_UTC + 2 * 3600);
    r.offer(1, "01000000001", "4008001000");
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "sales")));
    r.take();
    // 12:30 local: lunch, after hours.
    r.engine.set_wall_clock(Instant::ZERO, MONDAY_UTC + 4 * 3600 + 1800);
    r.offer(2, "01000000002", "4008001000");
    assert!(
        r.has_command(|c| matches!(c, Command::Reject { ch, cause } if *ch == ts(2) && *cause == Cause(31)))
    );
    let _ = fxs(1);
}

#[test]
fn a_holiday_goes_to_its_own_target() {
    let mut r = Rig::new(SCHEDULED);
    // 2026-10-01 10:00 local, a Thursday.
    let oct1 = MONDAY_UTC - 32 * 86_400;
    r.engine.set_wall_clock(Instant::ZERO, oct1 + 2 * 3600);
    r.offer(1, "01000000001", "4008001000");
    assert!(r.has_event(|e| matches!(e, CstaEvent::HandedOff { .. })));
}

#[test]
fn a_call_the_ivr_is_done_with_goes_on_to_its_next_target() {
    let mut r = Rig::new(SCHEDULED);
    let oct1 = MONDAY_UTC - 32 * 86_400;
    r.engine.set_wall_clock(Instant::ZERO, oct1 + 2 * 3600);
    r.offer(1, "01000000001", "4008001000");
    let call = r.engine.call_on(ts(1)).unwrap();
    r.take();
    r.engine.handle(
        r.now,
        hotline_cti::Input::IvrDone { call, next: "queue:sales".into(), data: Default::default() },
    );
    while let Some(o) = r.engine.poll_output() {
        r.out.push(o);
    }
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "sales")));
}

#[test]
fn the_shipped_example_installation_has_no_engine_problems() {
    let text = include_str!("../../examples/hotline.toml");
    assert_eq!(check_config(text, "examples/hotline.toml"), vec![]);
}

#[test]
fn a_call_on_an_analog_line_is_routed_by_its_groups_inbound_number() {
    let text = r#"
[[trunk_group]]
name = "lines"
channels = ["1/fxo/1-4"]
inbound_dnis = "88886666"

[[queue]]
name = "sales"

[[access_number]]
dnis = "88886666"
target = "queue:sales"
"#;
    let mut r = Rig::new(text);
    r.card(hotline_drivers::EventKind::Offered {
        ch: hotline_drivers::ChannelId::fxo(1, 2),
        ani: Some("01012345678".into()),
        dnis: String::new(),
        category: Default::default(),
    });
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "sales")));
}

#[test]
fn an_access_number_is_open_in_its_schedules_hours_and_closed_after_hours_and_on_holidays() {
    let mut r = Rig::new(SCHEDULED);
    // 10:00 local on a Monday: open.
    r.engine.set_wall_clock(Instant::ZERO, MONDAY_UTC + 2 * 3600);
    assert!(r.engine.access_now()[0].open);
    // 12:30 local: the lunch gap between the office hours.
    r.engine.set_wall_clock(Instant::ZERO, MONDAY_UTC + 4 * 3600 + 1800);
    assert!(!r.engine.access_now()[0].open);
    // Saturday 10:00 local.
    r.engine.set_wall_clock(Instant::ZERO, MONDAY_UTC + 5 * 86_400 + 2 * 3600);
    assert!(!r.engine.access_now()[0].open);
    // National Day (a Thursday) at 10:00 local: the holiday target, closed.
    r.engine.set_wall_clock(Instant::ZERO, MONDAY_UTC - 32 * 86_400 + 2 * 3600);
    assert!(!r.engine.access_now()[0].open);
    assert_eq!(r.engine.access_now().len(), 1, "one access number");
}

#[test]
fn a_queue_takes_its_service_level_target_in_percent() {
    let text = SCHEDULED.replace("name = \"sales\"\n", "name = \"sales\"\nservice_level_target = 90\n");
    let cfg = Config::parse(&text, "t.toml").expect("valid");
    assert_eq!(cfg.queues[0].service_level_target, 90);
    assert_eq!(Config::parse(SCHEDULED, "t.toml").expect("valid").queues[0].service_level_target, 80);
    let bad = SCHEDULED.replace("name = \"sales\"\n", "name = \"sales\"\nservice_level_target = 0\n");
    let problems = Config::parse(&bad, "t.toml").expect_err("0 % is no target");
    assert!(problems[0].message.contains("percentage from 1 to 100"), "{}", problems[0].message);
    assert!(problems[0].line > 0, "located: {:?}", problems[0]);
}
