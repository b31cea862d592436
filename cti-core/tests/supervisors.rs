//! Supervisors whose phone is on hook: the phone rings first, and monitor, whisper,
//! barge-in or intercept starts when the supervisor answers.

mod common;

use std::time::Duration;

use common::{fxs, ts, Rig};
use hotline_cti::csta::{AgentRequest, CstaEvent, DeviceId, Service, ServiceResult, SupervisionMode};
use hotline_drivers::command::{MemberRights, PlaySource};
use hotline_drivers::signal::Tone;
use hotline_drivers::{Command, EventKind};

/// Agent 1001 at 2001 talks with a caller on timeslot 1; supervisor 9001 is logged in
/// at 2008 with the handset down.
fn agent_talking_supervisor_on_hook() -> Rig {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.offer(1, "01066668888", "4008001000");
    r.card(EventKind::OffHook { ch: fxs(1) });
    assert!(r.connected(ts(1), fxs(1)));
    let res = r.request(Service::SetAgentState {
        agent: "9001".into(),
        request: AgentRequest::LogIn { station: Some("2008".into()), password: None },
    });
    assert_eq!(res, Ok(ServiceResult::Ok));
    r.take();
    r
}

fn supervise(r: &mut Rig, mode: SupervisionMode) {
    let res = r.request(Service::Supervise { supervisor: "9001".into(), agent: "1001".into(), mode });
    assert_eq!(res, Ok(ServiceResult::Ok));
}

#[test]
fn an_on_hook_supervisor_is_rung_and_intercepts_on_answering() {
    let mut r = agent_talking_supervisor_on_hook();
    supervise(&mut r, SupervisionMode::Intercept);
    assert_eq!(r.rung(), vec![(fxs(8), Some("2001".into()))], "the phone shows whose call it is");
    assert!(!r.has_event(|e| matches!(e, CstaEvent::Supervising { .. })), "nothing starts while it rings");
    assert!(!r.has_command(|c| matches!(c, Command::Release { ch, .. } if *ch == fxs(1))));
    r.take();

    r.card(EventKind::OffHook { ch: fxs(8) });
    assert!(
        r.has_event(|e| matches!(e,
        CstaEvent::Supervising { supervisor, mode: SupervisionMode::Intercept, .. } if supervisor == "9001"))
    );
    assert!(r.connected(ts(1), fxs(8)), "caller and supervisor talk directly");
    assert!(r.has_command(|c| matches!(c, Command::Release { ch, .. } if *ch == fxs(1))), "the agent drops");
    assert!(r.has_event(
        |e| matches!(e, CstaEvent::ConnectionCleared { releasing: DeviceId::Station(x), .. } if x == "2001")
    ));
    r.engine.check_invariants().unwrap();
}

#[test]
fn an_on_hook_supervisor_monitors_silently_once_answered() {
    let mut r = agent_talking_supervisor_on_hook();
    supervise(&mut r, SupervisionMode::Monitor);
    assert!(!r.has_command(|c| matches!(c, Command::JoinConference { .. })));
    r.card(EventKind::OffHook { ch: fxs(8) });
    assert!(r.has_command(|c| matches!(c,
        Command::JoinConference { ch, rights, .. } if *ch == fxs(8) && *rights == MemberRights::listen_only())));
    r.engine.check_invariants().unwrap();
    // Hanging up leaves the call as it was.
    r.take();
    r.card(EventKind::OnHook { ch: fxs(8) });
    assert!(r.connected(ts(1), fxs(1)));
    r.engine.check_invariants().unwrap();
}

#[test]
fn a_supervisor_who_never_answers_changes_nothing() {
    let mut r = agent_talking_supervisor_on_hook();
    supervise(&mut r, SupervisionMode::Barge);
    r.advance(Duration::from_secs(60));
    assert!(!r.has_event(|e| matches!(e, CstaEvent::Supervising { .. })));
    assert!(!r.has_command(|c| matches!(c, Command::JoinConference { .. })));
    assert_eq!(r.engine.call_count(), 1, "only the caller's call is left");
    r.engine.check_invariants().unwrap();
    // The phone is free again: picking it up gives dial tone.
    r.take();
    r.card(EventKind::OffHook { ch: fxs(8) });
    assert!(r.has_command(|c| matches!(c,
        Command::Play { ch, source: PlaySource::Tone(Tone::Dial), .. } if *ch == fxs(8))));
}

#[test]
fn when_the_call_ends_before_the_supervisor_answers_they_hear_congestion() {
    let mut r = agent_talking_supervisor_on_hook();
    supervise(&mut r, SupervisionMode::Whisper);
    r.caller_hangs_up(1);
    r.take();
    r.card(EventKind::OffHook { ch: fxs(8) });
    assert!(!r.has_command(|c| matches!(c, Command::JoinConference { .. })));
    assert!(r.has_command(|c| matches!(c,
        Command::Play { ch, source: PlaySource::Tone(Tone::Congestion), .. } if *ch == fxs(8))));
    r.engine.check_invariants().unwrap();
}
