//! Outbound work: agents kept idle for inbound (`reserve_idle`), and trunk selection
//! around blocked channels and spans in alarm.

mod common;

use common::{fxs, Rig, BASE};
use hotline_cti::csta::{AgentRequest, CstaError, Service, ServiceResult};
use hotline_drivers::command::PlaySource;
use hotline_drivers::signal::Tone;
use hotline_drivers::{Command, EventKind, Instant};

/// The base installation with sales keeping one agent idle for inbound.
fn reserving_rig() -> Rig {
    let mut r = Rig::new(&BASE.replace("name = \"sales\"\n", "name = \"sales\"\nreserve_idle = 1\n"));
    r.login("1001", "2001");
    r.login("1002", "2002");
    r
}

fn agent(r: &mut Rig, id: &str, request: AgentRequest) {
    assert_eq!(r.request(Service::SetAgentState { agent: id.into(), request }), Ok(ServiceResult::Ok));
}

fn make_call(r: &mut Rig, from: &str, to: &str) -> Result<ServiceResult, CstaError> {
    r.request(Service::MakeCall { calling: from.into(), called: to.into() })
}

#[test]
fn an_agent_cannot_call_out_when_it_would_leave_the_queue_without_an_idle_agent() {
    let mut r = reserving_rig();
    agent(&mut r, "1002", AgentRequest::NotReady { reason: "break".into() });
    r.take();
    assert_eq!(make_call(&mut r, "2001", "901066668888"), Err(CstaError::ReservedForInbound("sales".into())));
    assert!(r.commands().is_empty(), "nothing happens on the card: {:?}", r.commands());

    // Internal calls are not outbound work.
    assert!(matches!(make_call(&mut r, "2001", "2005"), Ok(ServiceResult::Call(_))));
}

#[test]
fn once_a_colleague_is_ready_the_outbound_call_goes_ahead() {
    let mut r = reserving_rig();
    agent(&mut r, "1002", AgentRequest::NotReady { reason: "break".into() });
    assert!(make_call(&mut r, "2001", "901066668888").is_err());
    agent(&mut r, "1002", AgentRequest::Ready);
    r.take();
    assert!(matches!(make_call(&mut r, "2001", "901066668888"), Ok(ServiceResult::Call(_))));
    assert_eq!(r.rung().first().map(|x| x.0), Some(fxs(1)), "the agent's phone rings to start the call");
}

#[test]
fn an_agent_dialling_out_from_the_phone_hears_congestion_while_the_reserve_is_short() {
    let mut r = reserving_rig();
    agent(&mut r, "1002", AgentRequest::NotReady { reason: "break".into() });
    r.card(EventKind::OffHook { ch: fxs(1) });
    r.take();
    for d in "901066668888#".chars() {
        r.card(EventKind::Digit { ch: fxs(1), digit: d, start: Instant::ZERO, end: Instant::ZERO });
    }
    assert!(!r.has_command(|c| matches!(c, Command::PlaceCall { .. })), "{:?}", r.commands());
    assert!(r.has_command(|c| matches!(c,
        Command::Play { ch, source: PlaySource::Tone(Tone::Congestion), .. } if *ch == fxs(1))));

    // The same digits go out once a colleague is back.
    r.card(EventKind::OnHook { ch: fxs(1) });
    agent(&mut r, "1002", AgentRequest::Ready);
    r.card(EventKind::OffHook { ch: fxs(1) });
    r.take();
    for d in "901066668888#".chars() {
        r.card(EventKind::Digit { ch: fxs(1), digit: d, start: Instant::ZERO, end: Instant::ZERO });
    }
    assert!(r.has_command(|c| matches!(c, Command::PlaceCall { called, .. } if called == "01066668888")));
}

#[test]
fn an_agent_not_in_a_reserving_queue_calls_out_freely() {
    let mut r = reserving_rig();
    r.login("1004", "2004"); // support only
    agent(&mut r, "1001", AgentRequest::NotReady { reason: "break".into() });
    agent(&mut r, "1002", AgentRequest::NotReady { reason: "break".into() });
    assert!(matches!(make_call(&mut r, "2004", "901066668888"), Ok(ServiceResult::Call(_))));
}
