//! Queue strategies, preferences, limits, and callers who give up.

mod common;

use std::time::Duration;

use common::{fxs, ts, Rig};
use hotline_cti::csta::{AgentState, Announcement, CstaEvent, DeviceId, EventCause, Record};
use hotline_cti::Output;
use hotline_drivers::{Cause, Command, EventKind};

const SEC: Duration = Duration::from_secs(1);

fn center(queue: &str, agents: &str) -> Rig {
    let text = format!(
        r#"
[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1-8"
extension = "2001"

[[access_number]]
dnis = "100"
target = "queue:q"

[[queue]]
name = "q"
ring_timeout = 15
wrap_up = 0
{queue}

[[queue]]
name = "spill"

[[location]]
prefix = "010"
name = "Beijing"

[[location]]
prefix = "021"
name = "Shanghai"

{agents}
"#
    );
    Rig::new(&text)
}

fn agents(n: usize, extra: impl Fn(usize) -> String) -> String {
    (1..=n).map(|i| format!("[[agent]]\nid = \"{i}\"\nname = \"A{i}\"\n{}\n", extra(i))).collect()
}

fn plain(_: usize) -> String {
    "queues = { q = 5 }".into()
}

/// Log agents 1..=n in at stations 2001.. one second apart.
fn log_in_all(r: &mut Rig, n: usize) {
    for i in 1..=n {
        r.login(&i.to_string(), &format!("{}", 2000 + i));
        r.advance(SEC);
    }
    r.take();
}

/// Offer a call, answer it at whichever station rings, hang up; return the port rung.
fn one_call(r: &mut Rig, t: u8, ani: &str) -> u16 {
    r.take();
    r.offer(t, ani, "100");
    let rung = r.rung();
    assert_eq!(rung.len(), 1, "exactly one station rings");
    let ch = rung[0].0;
    r.card(EventKind::OffHook { ch });
    r.advance(SEC);
    r.caller_hangs_up(t);
    r.card(EventKind::OnHook { ch });
    r.advance(SEC);
    match ch.addr {
        hotline_drivers::ChannelAddr::Fxs { port } => port,
        _ => unreachable!(),
    }
}

#[test]
fn round_robin_cycles_through_agents_in_login_order() {
    let mut r = center("strategy = \"round_robin\"", &agents(3, plain));
    log_in_all(&mut r, 3);
    let order: Vec<u16> = (0..6).map(|_| one_call(&mut r, 1, "01000000001")).collect();
    assert_eq!(order, vec![1, 2, 3, 1, 2, 3]);
}

#[test]
fn fewest_answered_prefers_the_agent_with_the_fewest_calls() {
    let mut r = center("strategy = \"fewest_answered\"", &agents(3, plain));
    log_in_all(&mut r, 1);
    // Agent 1 answers two calls alone, then 2 and 3 arrive.
    one_call(&mut r, 1, "01000000001");
    one_call(&mut r, 1, "01000000001");
    r.login("2", "2002");
    r.login("3", "2003");
    r.advance(SEC);
    let a = one_call(&mut r, 1, "01000000001");
    let b = one_call(&mut r, 1, "01000000001");
    assert!([a, b].contains(&2) && [a, b].contains(&3), "the two fresh agents first, got {a} and {b}");
    // Now 2 and 3 have one each, 1 has two.
    let c = one_call(&mut r, 1, "01000000001");
    assert_ne!(c, 1);
}

#[test]
fn random_strategy_spreads_calls_and_is_reproducible() {
    let run = || {
        let mut r = center("strategy = \"random\"", &agents(4, plain));
        log_in_all(&mut r, 4);
        (0..40).map(|_| one_call(&mut r, 1, "01000000001")).collect::<Vec<u16>>()
    };
    let a = run();
    assert_eq!(a, run(), "same seed, same choices");
    for port in 1..=4 {
        assert!(a.contains(&port), "agent {port} never chosen in 40 calls: {a:?}");
    }
}

#[test]
fn higher_level_agents_are_offered_first() {
    let levels = |i: usize| format!("queues = {{ q = {} }}", [2, 9, 5][i - 1]);
    let mut r = center("prefer = [\"higher_level\"]", &agents(3, levels));
    log_in_all(&mut r, 3);
    assert_eq!(one_call(&mut r, 1, "01000000001"), 2);
    // While level 9 is busy, level 5 comes next.
    r.offer(1, "01000000001", "100");
    r.card(EventKind::OffHook { ch: fxs(2) });
    r.take();
    r.offer(2, "01000000002", "100");
    assert_eq!(r.rung(), vec![(fxs(3), Some("01000000002".into()))]);
}

#[test]
fn an_agent_in_the_callers_location_is_preferred() {
    let loc = |i: usize| {
        format!("queues = {{ q = 5 }}\nlocation = \"{}\"", ["Beijing", "Shanghai", "Beijing"][i - 1])
    };
    let mut r = center("prefer = [\"location\"]", &agents(3, loc));
    log_in_all(&mut r, 3);
    assert_eq!(one_call(&mut r, 1, "02112345678"), 2, "the Shanghai agent for a Shanghai caller");
    assert_eq!(one_call(&mut r, 1, "01012345678"), 1, "the longest idle Beijing agent");
    assert_eq!(one_call(&mut r, 1, "01012345678"), 3);
    // No one in Guangzhou: the strategy decides (agent 2 idle longest now).
    assert_eq!(one_call(&mut r, 1, "02012345678"), 2);
}

#[test]
fn the_callers_dedicated_agent_comes_first_and_others_when_away() {
    let acc = |i: usize| {
        if i == 3 {
            "queues = { q = 5 }\naccounts = [\"13911112222\"]".to_string()
        } else {
            plain(i)
        }
    };
    let mut r = center("prefer = [\"dedicated_agent\"]", &agents(3, acc));
    log_in_all(&mut r, 3);
    assert_eq!(one_call(&mut r, 1, "13911112222"), 3);
    r.request(hotline_cti::Service::SetAgentState {
        agent: "3".into(),
        request: hotline_cti::AgentRequest::NotReady { reason: "meeting".into() },
    })
    .unwrap();
    assert_eq!(one_call(&mut r, 1, "13911112222"), 1, "falls back to the strategy");
}

#[test]
fn the_agent_who_served_the_caller_last_is_preferred() {
    let mut r = center("prefer = [\"last_agent\"]", &agents(3, plain));
    log_in_all(&mut r, 3);
    assert_eq!(one_call(&mut r, 1, "13900000009"), 1);
    assert_eq!(one_call(&mut r, 1, "13900000008"), 2);
    assert_eq!(one_call(&mut r, 1, "13900000009"), 1, "agent 1 again, although 3 is idle longer");
}

#[test]
fn a_full_queue_sends_the_next_caller_to_its_overflow_target() {
    let mut r = center("max_length = 2\nmax_length_action = \"hangup:17\"", &agents(1, plain));
    r.offer(1, "01000000001", "100");
    r.offer(2, "01000000002", "100");
    r.take();
    r.offer(3, "01000000003", "100");
    assert!(r.has_command(
        |c| matches!(c, Command::Release { ch, cause } if *ch == ts(3) && *cause == Cause::USER_BUSY)
    ));
    assert_eq!(r.engine.queue_length("q"), Some(2));
}

#[test]
fn with_no_agent_logged_in_the_caller_goes_elsewhere_after_the_limit() {
    let mut r = center("no_agents_wait = 10\nno_agents_action = \"queue:spill\"", &agents(1, plain));
    r.offer(1, "01000000001", "100");
    r.advance(SEC * 9);
    assert_eq!(r.engine.queue_length("q"), Some(1));
    r.advance(SEC);
    assert_eq!(r.engine.queue_length("spill"), Some(1));
    assert!(r.has_event(|e| matches!(e, CstaEvent::Diverted { cause: EventCause::Overflow, to: DeviceId::Queue(q), .. } if q == "spill")));
}

#[test]
fn a_caller_who_gives_up_in_the_queue_leaves_it() {
    let mut r = center("", &agents(1, plain));
    r.offer(1, "01000000001", "100");
    r.offer(2, "01000000002", "100");
    r.caller_hangs_up(1);
    assert_eq!(r.engine.queue_length("q"), Some(1));
    assert!(r.has_event(|e| matches!(e, CstaEvent::CallCleared { .. })));
    r.take();
    r.login("1", "2001");
    assert_eq!(r.rung(), vec![(fxs(1), Some("01000000002".into()))], "the caller still waiting");
}

#[test]
fn a_caller_who_gives_up_while_it_rings_frees_the_agent_without_a_miss() {
    let mut r = center("", &agents(1, plain));
    log_in_all(&mut r, 1);
    r.offer(1, "01000000001", "100");
    r.take();
    r.caller_hangs_up(1);
    assert!(r.has_command(|c| matches!(c, Command::StopRinging { ch } if *ch == fxs(1))));
    assert_eq!(r.engine.agent_state("1").unwrap().0, AgentState::Ready);
    assert_eq!(r.engine.call_count(), 0);
    // The next call rings the agent normally.
    r.offer(2, "01000000002", "100");
    assert_eq!(r.rung(), vec![(fxs(1), Some("01000000002".into()))]);
}

#[test]
fn not_ready_asked_for_during_a_call_applies_when_it_ends() {
    let mut r = center("", &agents(1, plain));
    log_in_all(&mut r, 1);
    r.offer(1, "01000000001", "100");
    r.card(EventKind::OffHook { ch: fxs(1) });
    r.request(hotline_cti::Service::SetAgentState {
        agent: "1".into(),
        request: hotline_cti::AgentRequest::NotReady { reason: "break".into() },
    })
    .unwrap();
    assert_eq!(r.engine.agent_state("1").unwrap().0, AgentState::Busy);
    r.caller_hangs_up(1);
    assert_eq!(r.engine.agent_state("1").unwrap().0, AgentState::NotReady("break".into()));
}

#[test]
fn waiting_callers_hear_their_position_periodically_and_get_a_callback_offer() {
    let mut r = center("announce_every = 30\ncallback_offer_after = 45", &agents(1, plain));
    r.offer(1, "01000000001", "100");
    r.offer(2, "01000000002", "100");
    r.take();
    r.advance(SEC * 30);
    let positions: Vec<(u8, usize)> = r
        .out
        .iter()
        .filter_map(|o| match o {
            Output::Announce(Announcement::Position { ch, position, .. }) => match ch.addr {
                hotline_drivers::ChannelAddr::E1 { timeslot, .. } => Some((timeslot, *position)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(positions, vec![(1, 1), (2, 2)]);
    r.take();
    r.advance(SEC * 15);
    assert!(r
        .out
        .iter()
        .any(|o| matches!(o, Output::Announce(Announcement::CallbackOffer { ch, .. }) if *ch == ts(1))));
    // The second caller takes it: pressing 1 leaves a callback record and frees the line.
    r.card(EventKind::Digit {
        ch: ts(2),
        digit: '1',
        start: hotline_drivers::Instant::ZERO,
        end: hotline_drivers::Instant::ZERO,
    });
    assert!(r.out.iter().any(
        |o| matches!(o, Output::Record(Record::Callback { number: Some(n), .. }) if n == "01000000002")
    ));
    assert_eq!(r.engine.queue_length("q"), Some(1));
    r.take();
    r.advance(SEC * 15);
    assert_eq!(
        r.out.iter().filter(|o| matches!(o, Output::Announce(Announcement::Position { .. }))).count(),
        1,
        "announcements continue for who still waits"
    );
}

#[test]
fn the_caller_is_told_the_answering_agents_number() {
    let mut r = center("announce_agent_number = true", &agents(1, plain));
    log_in_all(&mut r, 1);
    r.offer(1, "01000000001", "100");
    r.card(EventKind::OffHook { ch: fxs(1) });
    assert!(r.out.iter().any(|o| matches!(o, Output::Announce(Announcement::AgentNumber { agent, ch, .. }) if agent == "1" && *ch == ts(1))));
}

#[test]
fn a_vip_of_one_queue_is_ordinary_in_another_and_a_vip_access_number_makes_everyone_vip() {
    let text = r#"
[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1"
extension = "2001"

[[queue]]
name = "gold"

[[queue]]
name = "plain"

[[access_number]]
dnis = "100"
target = "queue:plain"

[[access_number]]
dnis = "200"
target = "queue:gold"

[[access_number]]
dnis = "300"
target = "queue:plain"
vip = true

[[vip]]
number = "13912345678"
queues = ["gold"]
"#;
    let mut r = Rig::new(text);
    // No agents: everyone waits; the order in line shows who is VIP.
    r.offer(1, "01000000001", "100");
    r.offer(2, "13912345678", "100");
    assert!(
        r.has_event(|e| matches!(e, CstaEvent::Queued { position: 2, queue, .. } if queue == "plain")),
        "not VIP in plain"
    );
    r.take();
    r.offer(3, "01000000003", "300");
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { position: 1, .. })), "everyone on 300 is VIP");
    r.take();
    r.offer(4, "01000000004", "200");
    r.offer(5, "13912345678", "200");
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { position: 1, queue, .. } if queue == "gold")));
    let _ = fxs(1);
}

#[test]
fn agents_without_a_queues_required_skills_do_not_serve_it() {
    let skills = |i: usize| {
        if i == 1 {
            "queues = { q = 5 }\nskills = [\"cantonese\"]".to_string()
        } else {
            "queues = { q = 5 }".to_string()
        }
    };
    let mut r = center("required_skills = [\"cantonese\"]", &agents(2, skills));
    r.login("2", "2002");
    r.take();
    r.offer(1, "01000000001", "100");
    assert!(r.rung().is_empty(), "agent 2 lacks the skill");
    r.login("1", "2001");
    assert_eq!(r.rung(), vec![(fxs(1), Some("01000000001".into()))]);
}

#[test]
fn with_manual_wrap_up_a_ready_request_waits_for_the_minimum_after_call_work() {
    let mut r = center("manual_wrap_up = true\nmin_wrap_up = 30", &agents(1, plain));
    log_in_all(&mut r, 1);
    r.offer(1, "01000000001", "100");
    r.card(EventKind::OffHook { ch: fxs(1) });
    r.caller_hangs_up(1);
    r.card(EventKind::OnHook { ch: fxs(1) });
    r.advance(SEC * 60);
    assert_eq!(
        r.engine.agent_state("1").unwrap().0,
        AgentState::WorkingAfterCall,
        "manual: stays until asked"
    );
    r.request(hotline_cti::Service::SetAgentState {
        agent: "1".into(),
        request: hotline_cti::AgentRequest::Ready,
    })
    .unwrap();
    assert_eq!(r.engine.agent_state("1").unwrap().0, AgentState::Ready, "past the minimum: at once");

    r.offer(2, "01000000002", "100");
    r.card(EventKind::OffHook { ch: fxs(1) });
    r.caller_hangs_up(2);
    r.card(EventKind::OnHook { ch: fxs(1) });
    r.advance(SEC * 10);
    r.request(hotline_cti::Service::SetAgentState {
        agent: "1".into(),
        request: hotline_cti::AgentRequest::Ready,
    })
    .unwrap();
    assert_eq!(r.engine.agent_state("1").unwrap().0, AgentState::WorkingAfterCall, "too early");
    r.advance(SEC * 20);
    assert_eq!(r.engine.agent_state("1").unwrap().0, AgentState::Ready);
}
