//! Outbound work: agents kept idle for inbound (`reserve_idle`), and trunk selection
//! around blocked channels and spans in alarm.

mod common;

use common::{fxs, ts, Rig, BASE};
use hotline_cti::csta::{AgentRequest, CstaError, CstaEvent, Service, ServiceResult};
use hotline_cti::Input;
use hotline_drivers::command::PlaySource;
use hotline_drivers::event::Alarm;
use hotline_drivers::signal::Tone;
use hotline_drivers::{Cause, ChannelId, Command, ErrorKind, EventKind, Instant};

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

/// Station 2005 (no agent) dials an external number through the `9` prefix.
fn dial_out(r: &mut Rig, port: u16) {
    r.card(EventKind::OffHook { ch: fxs(port) });
    for d in "901066668888#".chars() {
        r.card(EventKind::Digit { ch: fxs(port), digit: d, start: Instant::ZERO, end: Instant::ZERO });
    }
}

/// The channels the engine asked the card to place calls on, in order.
fn placed(r: &Rig) -> Vec<ChannelId> {
    r.commands()
        .into_iter()
        .filter_map(|c| match c {
            Command::PlaceCall { ch, .. } => Some(*ch),
            _ => None,
        })
        .collect()
}

/// The card refuses the last PlaceCall with `kind`.
fn refuse_last_place_call(r: &mut Rig, kind: ErrorKind) {
    let command = r
        .commands()
        .into_iter()
        .rev()
        .find(|c| matches!(c, Command::PlaceCall { .. }))
        .cloned()
        .expect("a PlaceCall to refuse");
    r.engine.handle(r.now, Input::CommandFailed { command, kind });
    while let Some(o) = r.engine.poll_output() {
        r.out.push(o);
    }
}

fn two_span_rig() -> Rig {
    Rig::new(&BASE.replace("1/1/1-1/1/31", "1/1/1-1/2/31"))
}

#[test]
fn a_span_in_alarm_is_left_out_of_outbound_selection_until_it_clears() {
    let mut r = two_span_rig();
    // Only the alarm: a card that does not also report each channel blocked.
    r.card(EventKind::SpanAlarm { card: 1, span: 1, alarm: Alarm::Los, raised: true });
    r.card(EventKind::SpanAlarm { card: 1, span: 1, alarm: Alarm::Rai, raised: true });
    r.take();
    dial_out(&mut r, 5);
    assert_eq!(placed(&r), vec![ChannelId::e1(1, 2, 1)], "the call goes out on span 2");
    r.take();

    // One alarm clears, the other stands: still out of service.
    r.card(EventKind::SpanAlarm { card: 1, span: 1, alarm: Alarm::Los, raised: false });
    dial_out(&mut r, 6);
    assert_eq!(placed(&r), vec![ChannelId::e1(1, 2, 2)]);
    r.take();
    r.card(EventKind::SpanAlarm { card: 1, span: 1, alarm: Alarm::Rai, raised: false });
    dial_out(&mut r, 7);
    assert_eq!(placed(&r), vec![ts(1)], "span 1 is back");
    r.engine.check_invariants().unwrap();
}

#[test]
fn a_refused_place_call_tries_the_next_free_channel_of_the_group() {
    let mut r = Rig::base();
    r.card(EventKind::Blocked { ch: ts(1), reason: "far end blocking".into() });
    dial_out(&mut r, 5);
    assert_eq!(placed(&r), vec![ts(2)], "a channel reported blocked is skipped");
    refuse_last_place_call(&mut r, ErrorKind::Blocked);
    assert_eq!(placed(&r), vec![ts(2), ts(3)], "blocked under us: the next channel");
    refuse_last_place_call(&mut r, ErrorKind::InvalidState);
    assert_eq!(placed(&r), vec![ts(2), ts(3), ts(4)], "seized under us: the next channel");
    assert!(!r.has_event(|e| matches!(e, CstaEvent::Failed { .. } | CstaEvent::CallCleared { .. })));
    r.engine.check_invariants().unwrap();
    r.take();

    // The channel seized under us is free again for others; the blocked one is not.
    dial_out(&mut r, 6);
    assert_eq!(placed(&r), vec![ts(3)]);
    r.engine.check_invariants().unwrap();
}

#[test]
fn when_every_channel_refuses_the_call_fails_with_no_circuit() {
    let mut r = Rig::new(&BASE.replace("1/1/1-1/1/31", "1/1/1-1/1/2"));
    dial_out(&mut r, 5);
    refuse_last_place_call(&mut r, ErrorKind::Blocked);
    refuse_last_place_call(&mut r, ErrorKind::InvalidState);
    assert_eq!(placed(&r), vec![ts(1), ts(2)]);
    assert!(
        r.has_event(
            |e| matches!(e, CstaEvent::Failed { cause, .. } if *cause == Cause::NO_CIRCUIT_AVAILABLE)
        ),
        "{:?}",
        r.events()
    );
    assert!(
        r.has_command(|c| matches!(c, Command::Release { ch, .. } if *ch == fxs(5))),
        "{:?}",
        r.commands()
    );
    r.engine.check_invariants().unwrap();
}
