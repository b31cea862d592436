//! The engine's side of the IVR hand-off: the `agent:ID` target, the IVR's collected
//! variables attached to the call as `ivr.*`, and an agent transferring a caller into
//! a flow and getting them back afterwards.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{fxs, ts, Rig, BASE};
use hotline_cti::csta::{AgentRequest, CstaEvent, DeviceId, EventCause, Service, ServiceResult};
use hotline_cti::{check_config, AgentState, CallId, Input};
use hotline_drivers::EventKind;

/// The base installation plus an access number straight into a flow and a 30 s wait
/// for a particular agent.
fn rig() -> Rig {
    let text = BASE.replace("[[trunk_group]]", "[engine]\nagent_wait = 30\n\n[[trunk_group]]")
        + "\n[[access_number]]\ndnis = \"4008003000\"\ntarget = \"ivr:main\"\n";
    Rig::new(&text)
}

/// A caller on timeslot `t` who is with the IVR now; returns their call.
fn caller_in_the_ivr(r: &mut Rig, t: u8) -> CallId {
    r.offer(t, "01066668888", "4008003000");
    assert!(r.has_event(|e| matches!(e, CstaEvent::HandedOff { to: DeviceId::Ivr(f), .. } if f == "main")));
    let call = r.engine.call_on(ts(t)).expect("the call lives with the IVR");
    r.take();
    call
}

fn ivr_done(r: &mut Rig, call: CallId, next: &str, data: &[(&str, &str)]) {
    let data: BTreeMap<String, String> = data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    r.engine.handle(r.now, Input::IvrDone { call, next: next.into(), data });
    while let Some(o) = r.engine.poll_output() {
        r.out.push(o);
    }
    r.engine.check_invariants().unwrap();
}

fn not_ready(r: &mut Rig, agent: &str) {
    let res = r.request(Service::SetAgentState {
        agent: agent.into(),
        request: AgentRequest::NotReady { reason: "break".into() },
    });
    assert_eq!(res, Ok(ServiceResult::Ok));
}

fn ready(r: &mut Rig, agent: &str) {
    let res = r.request(Service::SetAgentState { agent: agent.into(), request: AgentRequest::Ready });
    assert_eq!(res, Ok(ServiceResult::Ok));
}

#[test]
fn a_flow_that_names_an_agent_rings_that_agent_and_not_the_longest_idle() {
    let mut r = rig();
    r.login("1001", "2001");
    r.advance(Duration::from_secs(5));
    r.login("1002", "2002");
    let call = caller_in_the_ivr(&mut r, 1);
    ivr_done(&mut r, call, "agent:1002", &[]);
    assert_eq!(r.rung(), vec![(fxs(2), Some("01066668888".into()))]);
    assert!(r.has_event(|e| matches!(e,
        CstaEvent::Delivered { alerting: DeviceId::Station(s), cause: EventCause::Distributed, .. } if s == "2002")));
    r.card(EventKind::OffHook { ch: fxs(2) });
    assert!(r.connected(ts(1), fxs(2)));
    assert_eq!(r.engine.agent_state("1002").unwrap().0, AgentState::Busy);
}

#[test]
fn the_variables_the_ivr_collected_are_attached_under_ivr_keys() {
    let mut r = rig();
    r.login("1001", "2001");
    let call = caller_in_the_ivr(&mut r, 1);
    ivr_done(&mut r, call, "queue:sales", &[("ticket", "12345"), ("status", "shipped")]);
    let data = r.engine.call_data(call).unwrap();
    assert_eq!(data.get("ivr.ticket").map(String::as_str), Some("12345"));
    assert_eq!(data.get("ivr.status").map(String::as_str), Some("shipped"));
    assert!(!data.contains_key("ticket"), "nothing lands outside the ivr. prefix");
    let info = r.engine.call_info(call).unwrap();
    assert_eq!(info.data.get("ivr.ticket").map(String::as_str), Some("12345"), "the screen pop sees them");
    assert_eq!(r.rung().len(), 1, "and the call went on to the queue");
}

#[test]
fn a_call_for_a_busy_agent_waits_for_them_and_rings_when_they_are_ready() {
    let mut r = rig();
    r.login("1001", "2001");
    r.login("1002", "2002");
    not_ready(&mut r, "1002");
    let call = caller_in_the_ivr(&mut r, 1);
    ivr_done(&mut r, call, "agent:1002", &[]);
    assert!(r.rung().is_empty(), "1001 is ready but the call is for 1002");
    r.advance(Duration::from_secs(20));
    assert!(r.rung().is_empty());
    r.take();
    ready(&mut r, "1002");
    assert_eq!(r.rung(), vec![(fxs(2), Some("01066668888".into()))]);
    r.engine.check_invariants().unwrap();
}

#[test]
fn a_call_waits_no_longer_than_agent_wait_and_then_the_agents_first_queue_takes_it() {
    let mut r = rig();
    r.login("1001", "2001");
    r.login("1002", "2002");
    not_ready(&mut r, "1002");
    let call = caller_in_the_ivr(&mut r, 1);
    ivr_done(&mut r, call, "agent:1002", &[]);
    r.advance(Duration::from_secs(29));
    assert!(r.rung().is_empty());
    r.advance(Duration::from_secs(2));
    assert!(r.has_event(|e| matches!(e,
        CstaEvent::Diverted { from: DeviceId::Station(s), to: DeviceId::Queue(q), .. } if s == "2002" && q == "sales")));
    assert_eq!(r.rung(), vec![(fxs(1), Some("01066668888".into()))], "1001 in sales takes it");
    r.engine.check_invariants().unwrap();
}

#[test]
fn a_call_for_a_logged_out_agent_goes_straight_to_their_queue() {
    let mut r = rig();
    r.login("1001", "2001");
    let call = caller_in_the_ivr(&mut r, 1);
    ivr_done(&mut r, call, "agent:1002", &[]);
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "sales")));
    assert_eq!(r.rung(), vec![(fxs(1), Some("01066668888".into()))]);
}

#[test]
fn an_agent_who_misses_the_call_meant_for_them_hands_it_to_their_queue() {
    let mut r = rig();
    r.login("1001", "2001");
    r.login("1002", "2002");
    let call = caller_in_the_ivr(&mut r, 1);
    ivr_done(&mut r, call, "agent:1002", &[]);
    assert_eq!(r.rung().len(), 1);
    r.take();
    r.advance(Duration::from_secs(16));
    assert!(r.has_event(
        |e| matches!(e, CstaEvent::Queued { queue, cause: EventCause::Redirected, .. } if queue == "sales")
    ));
    assert_eq!(r.rung(), vec![(fxs(1), Some("01066668888".into()))]);
}

#[test]
fn a_caller_who_hangs_up_while_waiting_for_their_agent_leaves_nothing_behind() {
    let mut r = rig();
    r.login("1002", "2002");
    not_ready(&mut r, "1002");
    let call = caller_in_the_ivr(&mut r, 1);
    ivr_done(&mut r, call, "agent:1002", &[]);
    r.caller_hangs_up(1);
    assert!(r.has_event(|e| matches!(e, CstaEvent::CallCleared { call: c, .. } if *c == call)));
    r.engine.check_invariants().unwrap();
    r.take();
    ready(&mut r, "1002");
    assert!(r.rung().is_empty(), "no ghost call rings the agent");
}

#[test]
fn an_agent_who_logs_out_lets_the_calls_waiting_for_them_go_to_the_queue() {
    let mut r = rig();
    r.login("1001", "2001");
    r.login("1002", "2002");
    not_ready(&mut r, "1002");
    not_ready(&mut r, "1001");
    let call = caller_in_the_ivr(&mut r, 1);
    ivr_done(&mut r, call, "agent:1002", &[]);
    let res = r.request(Service::SetAgentState { agent: "1002".into(), request: AgentRequest::LogOut });
    assert_eq!(res, Ok(ServiceResult::Ok));
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "sales")));
    r.engine.check_invariants().unwrap();
    r.take();
    ready(&mut r, "1001");
    assert_eq!(r.rung(), vec![(fxs(1), Some("01066668888".into()))]);
}

/// 1001 answers a sales caller on timeslot 1 and transfers them into the "survey" flow.
fn transferred_into_a_flow(r: &mut Rig) -> CallId {
    r.login("1001", "2001");
    r.offer(1, "01066668888", "4008001000");
    r.card(EventKind::OffHook { ch: fxs(1) });
    assert!(r.connected(ts(1), fxs(1)));
    let call = r.engine.call_on(ts(1)).unwrap();
    r.take();
    let res = r.request(Service::SingleStepTransferCall {
        call,
        device: DeviceId::Station("2001".into()),
        to: "ivr:survey".into(),
    });
    assert_eq!(res, Ok(ServiceResult::Ok));
    assert!(r.has_event(|e| matches!(e, CstaEvent::HandedOff { to: DeviceId::Ivr(f), .. } if f == "survey")));
    let data = r.engine.call_data(call).unwrap();
    assert_eq!(data.get("ivr.from_agent").map(String::as_str), Some("1001"));
    r.card(EventKind::OnHook { ch: fxs(1) });
    r.take();
    call
}

#[test]
fn an_agent_transfers_a_caller_into_a_flow_and_gets_them_back_with_the_answers() {
    let mut r = rig();
    let call = transferred_into_a_flow(&mut r);
    // Someone else is free and has waited longer: "back" still means 1001.
    r.login("1002", "2002");
    r.advance(Duration::from_secs(30));
    r.take();
    ivr_done(&mut r, call, "agent:back", &[("id_verified", "yes")]);
    assert_eq!(r.rung(), vec![(fxs(1), Some("01066668888".into()))]);
    assert_eq!(r.engine.call_data(call).unwrap().get("ivr.id_verified").map(String::as_str), Some("yes"));
    r.card(EventKind::OffHook { ch: fxs(1) });
    assert!(r.connected(ts(1), fxs(1)), "the caller talks to the same agent again");
    r.engine.check_invariants().unwrap();
}

#[test]
fn return_waits_for_the_agent_who_is_on_another_call() {
    let mut r = rig();
    let call = transferred_into_a_flow(&mut r);
    // 1001 takes another caller meanwhile.
    r.offer(2, "02155556666", "4008001000");
    r.card(EventKind::OffHook { ch: fxs(1) });
    assert!(r.connected(ts(2), fxs(1)));
    r.take();
    ivr_done(&mut r, call, "return", &[]);
    assert!(r.rung().is_empty());
    r.caller_hangs_up(2);
    r.card(EventKind::OnHook { ch: fxs(1) });
    assert_eq!(r.rung(), vec![(fxs(1), Some("01066668888".into()))], "wrap-up 0: rung as soon as free");
    r.engine.check_invariants().unwrap();
}

#[test]
fn a_flow_may_send_a_transferred_caller_to_a_queue_instead() {
    let mut r = rig();
    let call = transferred_into_a_flow(&mut r);
    r.login("1004", "2004");
    r.take();
    ivr_done(&mut r, call, "queue:support", &[]);
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "support")));
    assert_eq!(r.rung().len(), 1);
    let rung = r.rung()[0].0;
    assert!(rung == fxs(1) || rung == fxs(4), "a support agent rings");
}

#[test]
fn back_with_no_transferring_agent_returns_to_the_queue_the_call_was_in() {
    let text = BASE.replace("max_wait_action = \"queue:support\"", "max_wait_action = \"ivr:sorry\"");
    let mut r = Rig::new(&text);
    r.offer(1, "01066668888", "4008001000");
    let call = r.engine.call_on(ts(1)).unwrap();
    r.advance(Duration::from_secs(61));
    assert!(r.has_event(|e| matches!(e, CstaEvent::HandedOff { to: DeviceId::Ivr(f), .. } if f == "sorry")));
    r.login("1003", "2003");
    r.take();
    ivr_done(&mut r, call, "agent:back", &[]);
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "sales")));
    assert_eq!(r.rung(), vec![(fxs(3), Some("01066668888".into()))]);
}

#[test]
fn an_unknown_agent_from_the_ivr_clears_the_call() {
    let mut r = rig();
    let call = caller_in_the_ivr(&mut r, 1);
    ivr_done(&mut r, call, "agent:4242", &[]);
    assert!(r.has_event(|e| matches!(e, CstaEvent::CallCleared { call: c, .. } if *c == call)));
}

#[test]
fn agent_targets_in_the_configuration_are_checked() {
    let text = BASE.to_string()
        + "\n[[access_number]]\ndnis = \"1\"\ntarget = \"agent:7777\"\n"
        + "\n[[access_number]]\ndnis = \"2\"\ntarget = \"agent:\"\n"
        + "\n[[agent]]\nid = \"1005\"\nname = \"No Queue\"\n"
        + "\n[[access_number]]\ndnis = \"3\"\ntarget = \"agent:1005\"\n"
        + "\n[[access_number]]\ndnis = \"4\"\ntarget = \"agent:1001\"\n";
    let problems: Vec<String> = check_config(&text, "t.toml").iter().map(|p| p.message.clone()).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("no agent with id \"7777\""), "{problems:?}");
    assert!(problems[1].contains("expected queue:NAME, agent:ID"), "{problems:?}");
    assert!(problems[2].contains("agent \"1005\" is in no queue"), "{problems:?}");
}
