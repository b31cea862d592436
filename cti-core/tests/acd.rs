//! ACD scenarios: the engine driven with card events in virtual time.

mod common;

use std::time::Duration;

use common::{fxs, ts, Rig, BASE};
use hotline_cti::csta::{AgentEventKind, AgentRequest, AgentState, CstaEvent, DeviceId, EventCause, Service};
use hotline_cti::Output;
use hotline_drivers::{Cause, Command, EventKind};

const SEC: Duration = Duration::from_secs(1);

#[test]
fn a_call_is_routed_to_the_longest_idle_agent() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.advance(SEC);
    r.login("1002", "2002");
    r.advance(SEC);
    r.login("1003", "2003");
    r.advance(SEC);

    // 1001 has been idle longest and gets the first call.
    r.take();
    r.offer(1, "01066668888", "4008001000");
    assert!(r.has_command(|c| matches!(c, Command::Answer { ch } if *ch == ts(1))));
    assert_eq!(r.rung(), vec![(fxs(1), Some("01066668888".into()))]);
    r.card(EventKind::OffHook { ch: fxs(1) });
    assert!(r.connected(ts(1), fxs(1)));
    r.advance(SEC * 20);
    r.caller_hangs_up(1);
    r.card(EventKind::OnHook { ch: fxs(1) });
    r.advance(SEC);

    // Now 1001 has just finished: 1002 (idle since t=1 s) is the longest idle.
    r.take();
    r.offer(2, "02155556666", "4008001000");
    assert_eq!(r.rung(), vec![(fxs(2), Some("02155556666".into()))]);
    // The caller's location was found from the number prefix and travels with the call.
    let call = r.engine.call_on(ts(2)).expect("a call on the trunk");
    assert_eq!(r.engine.call_data(call).unwrap().get("location").map(String::as_str), Some("Shanghai"));
}

#[test]
fn a_vip_caller_jumps_the_queue() {
    let mut r = Rig::base();
    r.login("1003", "2003");
    // The only sales agent is busy on a first call.
    r.offer(1, "01000000001", "4008001000");
    r.card(EventKind::OffHook { ch: fxs(3) });
    r.offer(2, "01000000002", "4008001000");
    r.offer(3, "01000000003", "4008001000");
    r.offer(4, "13900000001", "4008001000");
    assert_eq!(r.engine.queue_length("sales"), Some(3));
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { position: 1, queue, .. } if queue == "sales")));

    r.take();
    r.caller_hangs_up(1);
    r.card(EventKind::OnHook { ch: fxs(3) });
    // Wrap-up is 0 in sales: the agent is ready at once and gets the VIP first.
    assert_eq!(r.rung(), vec![(fxs(3), Some("13900000001".into()))]);
    r.card(EventKind::OffHook { ch: fxs(3) });
    r.caller_hangs_up(4);
    r.take();
    r.card(EventKind::OnHook { ch: fxs(3) });
    // Then first come, first served.
    assert_eq!(r.rung(), vec![(fxs(3), Some("01000000002".into()))]);
}

#[test]
fn ring_timeout_moves_the_call_to_the_next_agent() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.advance(SEC);
    r.login("1002", "2002");
    r.take();
    r.offer(1, "01000000001", "4008001000");
    assert_eq!(r.rung(), vec![(fxs(1), Some("01000000001".into()))]);
    r.take();
    r.advance(SEC * 14);
    assert!(r.rung().is_empty(), "still ringing the first agent at 14 s");
    r.advance(SEC * 2);
    assert!(r.has_command(|c| matches!(c, Command::StopRinging { ch } if *ch == fxs(1))));
    assert_eq!(r.rung(), vec![(fxs(2), Some("01000000001".into()))]);
    assert!(r.has_event(
        |e| matches!(e, CstaEvent::Agent { agent, kind: AgentEventKind::Missed { .. } } if agent == "1001")
    ));
    assert!(r.has_event(|e| matches!(e,
        CstaEvent::Diverted { from: DeviceId::Station(x), cause: EventCause::NoAnswer, .. } if x == "2001")));
    // One miss is not enough to make the agent not ready.
    assert_eq!(r.engine.agent_state("1001").unwrap().0, AgentState::Ready);
}

#[test]
fn a_missed_call_returns_to_the_head_of_the_queue_ahead_of_vips() {
    let mut r = Rig::base();
    r.login("1003", "2003");
    r.offer(1, "01000000001", "4008001000");
    assert_eq!(r.rung(), vec![(fxs(3), Some("01000000001".into()))]);
    // A VIP and an ordinary caller arrive while it rings.
    r.offer(2, "13900000001", "4008001000");
    r.offer(3, "01000000003", "4008001000");
    r.take();
    r.advance(SEC * 15);
    // The missed call is back first in line, ahead of the VIP.
    assert!(
        r.has_event(|e| matches!(e, CstaEvent::Queued { position: 1, cause: EventCause::Redirected, .. }))
    );
    assert_eq!(
        r.rung(),
        vec![(fxs(3), Some("01000000001".into()))],
        "the head of the line is the missed call"
    );
}

#[test]
fn three_misses_in_a_row_make_the_agent_not_ready() {
    let mut r = Rig::base();
    r.login("1003", "2003");
    r.offer(1, "01000000001", "4008001000");
    r.take();
    r.advance(SEC * 15);
    r.advance(SEC * 15);
    // The only agent: the call rings them again after each of the first two misses.
    assert_eq!(r.engine.agent_state("1003").unwrap().0, AgentState::Ringing);
    assert_eq!(r.rung().len(), 2);
    r.advance(SEC * 15);
    assert_eq!(r.engine.agent_state("1003").unwrap().0, AgentState::NotReady("missed calls".into()));
    assert!(r.has_event(|e| matches!(e,
        CstaEvent::Agent { agent, kind: AgentEventKind::NotReady { reason } } if agent == "1003" && reason == "missed calls")));
    // The call waits for someone else.
    assert_eq!(r.engine.queue_length("sales"), Some(1));
}

#[test]
fn overflow_to_another_queue_on_max_wait() {
    let mut r = Rig::base();
    r.login("1003", "2003");
    r.request(Service::SetAgentState {
        agent: "1003".into(),
        request: AgentRequest::NotReady { reason: "break".into() },
    })
    .unwrap();
    r.login("1004", "2004");
    r.request(Service::SetAgentState {
        agent: "1004".into(),
        request: AgentRequest::NotReady { reason: "break".into() },
    })
    .unwrap();
    r.offer(1, "01000000001", "4008001000");
    r.advance(SEC * 30);
    // Support's agent becomes ready but the call is still in sales.
    r.request(Service::SetAgentState { agent: "1004".into(), request: AgentRequest::Ready }).unwrap();
    r.take();
    r.advance(SEC * 29);
    assert!(r.rung().is_empty());
    r.advance(SEC);
    assert!(r.has_event(|e| matches!(e, CstaEvent::Diverted { from: DeviceId::Queue(a), to: DeviceId::Queue(b), cause: EventCause::Overflow, .. }
        if a == "sales" && b == "support")));
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "support")));
    assert_eq!(r.rung(), vec![(fxs(4), Some("01000000001".into()))]);
}

#[test]
fn the_wrap_up_timer_returns_the_agent_to_ready() {
    let mut r = Rig::base();
    r.login("1004", "2004");
    r.offer(1, "01000000001", "4008002000");
    r.card(EventKind::OffHook { ch: fxs(4) });
    assert_eq!(r.engine.agent_state("1004").unwrap().0, AgentState::Busy);
    r.advance(SEC * 30);
    r.caller_hangs_up(1);
    assert_eq!(r.engine.agent_state("1004").unwrap().0, AgentState::WorkingAfterCall);
    // The agent's phone is cut (busy tone from the card until they hang up).
    assert!(r.has_command(|c| matches!(c, Command::Release { ch, .. } if *ch == fxs(4))));
    r.card(EventKind::OnHook { ch: fxs(4) });
    // A call arriving during wrap-up waits.
    r.offer(2, "01000000002", "4008002000");
    r.take();
    r.advance(SEC * 9);
    assert!(r.rung().is_empty());
    r.advance(SEC);
    assert!(r.has_event(
        |e| matches!(e, CstaEvent::Agent { agent, kind: AgentEventKind::Ready } if agent == "1004")
    ));
    // Ready, and at once offered the waiting call.
    assert_eq!(r.engine.agent_state("1004").unwrap().0, AgentState::Ringing);
    assert_eq!(r.rung(), vec![(fxs(4), Some("01000000002".into()))]);
}

#[test]
fn a_blacklisted_caller_is_rejected_with_its_cause() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.offer(5, "13800000000", "4008001000");
    assert!(r.has_command(
        |c| matches!(c, Command::Reject { ch, cause } if *ch == ts(5) && *cause == Cause::CALL_REJECTED)
    ));
    assert!(!r.has_command(|c| matches!(c, Command::Answer { .. })));
    assert!(r.rung().is_empty());
    assert!(r.has_event(|e| matches!(e, CstaEvent::Failed { cause, .. } if *cause == Cause(21))));
    assert!(r.has_event(|e| matches!(e, CstaEvent::CallCleared { .. })));
    assert_eq!(r.engine.call_count(), 0);
}

#[test]
fn an_unknown_number_is_rejected_as_unallocated() {
    let mut r = Rig::base();
    r.offer(5, "01000000001", "12345");
    assert!(
        r.has_command(|c| matches!(c, Command::Reject { cause, .. } if *cause == Cause::UNALLOCATED_NUMBER))
    );
}

#[test]
fn agent_state_intervals_are_recorded() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.advance(SEC * 5);
    r.request(Service::SetAgentState {
        agent: "1001".into(),
        request: AgentRequest::NotReady { reason: "lunch".into() },
    })
    .unwrap();
    let rec = r.out.iter().find_map(|o| match o {
        Output::Record(hotline_cti::csta::Record::AgentState {
            agent,
            state: AgentState::Ready,
            from,
            to,
        }) if agent == "1001" => Some(*to - *from),
        _ => None,
    });
    assert_eq!(rec, Some(SEC * 5));
}

#[test]
fn the_engine_asks_for_no_wakeups_when_idle() {
    let mut r = Rig::new(BASE);
    r.login("1001", "2001");
    assert_eq!(r.engine.next_deadline(), None);
}

#[test]
fn an_agent_whose_desktop_drops_resumes_within_the_grace_period() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.request(Service::SetAgentState {
        agent: "1001".into(),
        request: AgentRequest::NotReady { reason: "email".into() },
    })
    .unwrap();
    let since = r.engine.agent_state("1001").unwrap().1;
    r.engine.handle(r.now, hotline_cti::Input::ClientGone { client: 7 });
    r.advance(SEC * 59);
    // Back before the minute is out: same state, same start time.
    r.login("1001", "2001");
    assert_eq!(r.engine.agent_state("1001").unwrap(), (AgentState::NotReady("email".into()), since));
    r.advance(SEC * 120);
    assert_eq!(r.engine.agent_state("1001").unwrap().0, AgentState::NotReady("email".into()));
}

#[test]
fn an_agent_whose_desktop_stays_away_is_logged_out_after_the_grace_period() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.engine.handle(r.now, hotline_cti::Input::ClientGone { client: 7 });
    r.advance(SEC * 59);
    assert_eq!(r.engine.agent_state("1001").unwrap().0, AgentState::Ready, "still taking calls meanwhile");
    r.advance(SEC);
    assert_eq!(r.engine.agent_state("1001").unwrap().0, AgentState::LoggedOut);
}

#[test]
fn a_forced_logout_during_a_call_happens_when_it_ends() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.offer(1, "01000000001", "4008001000");
    r.card(EventKind::OffHook { ch: fxs(1) });
    assert_eq!(
        r.request(Service::SetAgentState { agent: "1001".into(), request: AgentRequest::LogOut }),
        Ok(hotline_cti::ServiceResult::Ok)
    );
    assert_eq!(r.engine.agent_state("1001").unwrap().0, AgentState::Busy);
    r.caller_hangs_up(1);
    assert_eq!(r.engine.agent_state("1001").unwrap().0, AgentState::LoggedOut);
}

#[test]
fn get_agent_state_reports_counters_that_survive_a_desktop_reconnect() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.offer(1, "01000000001", "4008001000");
    r.card(EventKind::OffHook { ch: fxs(1) });
    r.caller_hangs_up(1);
    r.card(EventKind::OnHook { ch: fxs(1) });
    r.engine.handle(r.now, hotline_cti::Input::ClientGone { client: 7 });
    r.advance(SEC * 10);
    r.login("1001", "2001");
    let Ok(hotline_cti::ServiceResult::AgentState { state, answered, missed_in_a_row, .. }) =
        r.request(Service::GetAgentState { agent: "1001".into() })
    else {
        panic!("agent state")
    };
    assert_eq!(state, AgentState::Ready);
    assert_eq!(answered, vec![("sales".to_string(), 1), ("support".to_string(), 0)]);
    assert_eq!(missed_in_a_row, 0);
}

#[test]
fn a_supervisor_sees_every_agent_of_a_group_on_the_wallboard() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.login("1002", "2002");
    r.offer(1, "01000000001", "4008001000");
    let Ok(hotline_cti::ServiceResult::AgentsSnapshot { agents }) =
        r.request(Service::SnapshotAgents { group: Some("team-a".into()) })
    else {
        panic!("agents snapshot")
    };
    let states: Vec<(String, AgentState)> = agents.into_iter().map(|(id, s, _)| (id, s)).collect();
    assert_eq!(
        states,
        vec![
            ("1001".into(), AgentState::Ringing),
            ("1002".into(), AgentState::Ready),
            ("1003".into(), AgentState::LoggedOut),
            ("1004".into(), AgentState::LoggedOut),
        ]
    );
    assert!(r.request(Service::SnapshotAgents { group: Some("nobody".into()) }).is_err());
}
