//! A queued caller (`wait_agent`): the line is answered at once, the caller holds on
//! until the card connects them to someone, and only then starts talking; an impatient
//! one hangs up if nobody comes in time.

mod sim_support;

use std::time::Duration;

use hotline_drivers::command::MemberRights;
use hotline_drivers::event::Side;
use hotline_drivers::sim::{CallerScript, CallerStep, InboundCall, Spread, Trunk};
use hotline_drivers::{Card, Cause, ChannelId, Command, ConferenceId, EventKind};
use sim_support::{secs, World};

fn caller(steps: &[&str]) -> InboundCall {
    let script =
        CallerScript::new(Spread::secs(30.0), steps.iter().map(|s| CallerStep::parse(s).unwrap()).collect());
    InboundCall::new(Trunk::Span(1), Some("13800138000"), "100", script)
}

fn answered_world(steps: &[&str]) -> (World, ChannelId) {
    let mut w = World::new("signalling", 3, 1, "");
    w.sim.schedule_inbound(secs(1.0), caller(steps));
    w.run(20.0, |card, now, ev| {
        if let EventKind::Offered { ch, .. } = ev.kind {
            card.answer(now, ch).unwrap();
        }
    });
    (w, ChannelId::e1(1, 1, 31))
}

#[test]
fn a_queued_caller_talks_only_once_connected_to_an_agent() {
    let (mut w, trunk) = answered_world(&["wait_agent", "talk 10", "hang_up"]);
    assert_eq!(w.released(trunk), None, "still holding on after 19 s in the queue");
    w.command(Command::Connect { a: trunk, b: ChannelId::fxs(1, 1) });
    w.idle(60.0);
    let (cause, by, at) = w.released(trunk).expect("the caller hangs up after talking");
    assert_eq!((cause, by), (Cause::NORMAL_CLEARING, Side::Remote));
    let talked = at - secs(20.0);
    assert!(talked >= Duration::from_secs(10) && talked < Duration::from_millis(10_100), "{talked:?}");
}

#[test]
fn a_caller_already_connected_does_not_wait() {
    let mut w = World::new("signalling", 3, 1, "");
    w.sim.schedule_inbound(secs(1.0), caller(&["wait 2", "wait_agent 1", "talk 5", "hang_up"]));
    w.run(2.0, |card, now, ev| {
        if let EventKind::Offered { ch, .. } = ev.kind {
            card.answer(now, ch).unwrap();
        }
    });
    let trunk = ChannelId::e1(1, 1, 31);
    let conf = ConferenceId { card: 1, bridge: 1 };
    w.command(Command::JoinConference { conf, ch: trunk, rights: MemberRights::full() });
    w.command(Command::JoinConference { conf, ch: ChannelId::fxs(1, 2), rights: MemberRights::full() });
    w.idle(30.0);
    let (_, by, at) = w.released(trunk).expect("hung up after talking");
    assert_eq!(by, Side::Remote);
    assert!(at > secs(8.0) && at < secs(8.2), "wait 2 from the answer at ~1 s, then 5 s of talk: {at:?}");
}

#[test]
fn an_impatient_queued_caller_hangs_up_when_nobody_comes() {
    let (mut w, trunk) = answered_world(&["wait_agent 5", "talk 10", "hang_up"]);
    w.idle(40.0);
    let (_, by, at) = w.released(trunk).expect("gave up");
    assert_eq!(by, Side::Remote);
    assert!(at > secs(6.0) && at < secs(6.2), "answered at ~1 s, gave up 5 s later: {at:?}");
    assert_eq!(w.sim.stats().caller_cleared, 1);
}

#[test]
fn wait_agent_parses_with_and_without_patience() {
    assert_eq!(CallerStep::parse("wait_agent"), Ok(CallerStep::WaitForAgent(None)));
    assert_eq!(
        CallerStep::parse("wait_agent 10-90"),
        Ok(CallerStep::WaitForAgent(Some(Spread::secs_between(10.0, 90.0))))
    );
    assert!(CallerStep::parse("wait_agent soon").unwrap_err().contains("expected seconds"));
}
