//! The analog phone on an FXS port, and supervisors: scenarios with hook events and
//! digits as the card reports them.

mod common;

use std::time::Duration;

use common::{fxs, ts, Rig};
use hotline_cti::csta::{
    AgentEventKind, AgentState, CstaError, CstaEvent, DeviceId, Service, ServiceResult, SupervisionMode,
};
use hotline_drivers::command::{MemberRights, PlaySource};
use hotline_drivers::event::Side;
use hotline_drivers::signal::Tone;
use hotline_drivers::{Cause, Command, EventKind, Instant};

const SEC: Duration = Duration::from_secs(1);

fn dial(r: &mut Rig, port: u16, digits: &str) {
    for d in digits.chars() {
        r.card(EventKind::Digit { ch: fxs(port), digit: d, start: Instant::ZERO, end: Instant::ZERO });
    }
}

/// The station was cut: the card gives it busy tone until the handset goes down.
fn cut(r: &Rig, port: u16) -> bool {
    r.has_command(|c| matches!(c, Command::Release { ch, .. } if *ch == fxs(port)))
}

fn plays_tone(r: &Rig, port: u16, tone: Tone) -> bool {
    r.has_command(|c| matches!(c, Command::Play { ch, source: PlaySource::Tone(t), .. } if *ch == fxs(port) && *t == tone))
}

/// Agent 1001 at 2001 answers an inbound call on timeslot 1.
fn agent_in_a_call() -> Rig {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.offer(1, "01066668888", "4008001000");
    r.card(EventKind::OffHook { ch: fxs(1) });
    assert!(r.connected(ts(1), fxs(1)));
    r.take();
    r
}

#[test]
fn off_hook_gives_dial_tone_and_an_extension_rings() {
    let mut r = Rig::base();
    r.card(EventKind::OffHook { ch: fxs(5) });
    assert!(plays_tone(&r, 5, Tone::Dial));
    r.take();
    dial(&mut r, 5, "2006");
    assert!(r.has_command(|c| matches!(c, Command::StopPlay { ch } if *ch == fxs(5))));
    assert_eq!(r.rung(), vec![(fxs(6), Some("2005".into()))]);
    assert!(plays_tone(&r, 5, Tone::Ringback), "the caller hears ringback");
    r.take();
    r.card(EventKind::OffHook { ch: fxs(6) });
    assert!(r.connected(fxs(5), fxs(6)));
    assert!(r.has_event(
        |e| matches!(e, CstaEvent::Established { answering: DeviceId::Station(x), .. } if x == "2006")
    ));
    r.take();
    r.card(EventKind::OnHook { ch: fxs(6) });
    assert!(r.has_event(|e| matches!(e, CstaEvent::CallCleared { .. })));
    assert!(cut(&r, 5), "the one left hears busy tone");
}

#[test]
fn an_external_number_is_dialled_on_the_trunk_group_after_its_prefix() {
    let mut r = Rig::base();
    r.card(EventKind::OffHook { ch: fxs(5) });
    dial(&mut r, 5, "9013800138000#");
    assert!(r.has_command(|c| matches!(c, Command::PlaceCall { ch, called, calling, .. }
        if *ch == ts(1) && called == "013800138000" && calling.as_deref() == Some("4008001000"))));
    r.take();
    r.card(EventKind::Alerting { ch: ts(1) });
    assert!(plays_tone(&r, 5, Tone::Ringback));
    r.card(EventKind::Answered { ch: ts(1) });
    assert!(r.connected(fxs(5), ts(1)));
    r.take();
    r.card(EventKind::Released { ch: ts(1), cause: Cause::NORMAL_CLEARING, by: Side::Remote });
    assert!(cut(&r, 5));
}

#[test]
fn a_number_nobody_has_gets_congestion_tone() {
    let mut r = Rig::base();
    r.card(EventKind::OffHook { ch: fxs(5) });
    dial(&mut r, 5, "7");
    assert!(plays_tone(&r, 5, Tone::Congestion));
}

#[test]
fn the_inter_digit_timeout_dials_what_was_collected() {
    let mut r = Rig::base();
    r.card(EventKind::OffHook { ch: fxs(5) });
    dial(&mut r, 5, "9123");
    assert!(!r.has_command(|c| matches!(c, Command::PlaceCall { .. })));
    r.advance(SEC * 4);
    assert!(r.has_command(|c| matches!(c, Command::PlaceCall { called, .. } if called == "123")));
}

#[test]
fn consult_transfer_by_hook_flash_and_hang_up() {
    let mut r = agent_in_a_call();
    // Flash: the caller is held (and hears music), the agent gets dial tone.
    r.card(EventKind::HookFlash { ch: fxs(1) });
    assert!(
        r.has_event(|e| matches!(e, CstaEvent::Held { holding: DeviceId::Station(x), .. } if x == "2001"))
    );
    assert!(plays_tone(&r, 1, Tone::Dial));
    assert!(r.has_command(|c| matches!(c, Command::Disconnect { .. })));
    assert!(
        r.has_command(|c| matches!(c, Command::Play { ch, .. } if *ch == ts(1))),
        "music for the held caller"
    );
    r.take();
    // Dial a colleague, who answers: agent and colleague talk, the caller still holds.
    dial(&mut r, 1, "2006");
    assert_eq!(r.rung(), vec![(fxs(6), Some("2001".into()))]);
    r.card(EventKind::OffHook { ch: fxs(6) });
    assert!(r.connected(fxs(1), fxs(6)));
    r.take();
    // The agent hangs up: the transfer completes.
    r.card(EventKind::OnHook { ch: fxs(1) });
    assert!(r.has_event(
        |e| matches!(e, CstaEvent::Transferred { transferring: DeviceId::Station(x), transferred_to: Some(DeviceId::Station(y)), .. }
            if x == "2001" && y == "2006")
    ));
    assert!(r.connected(ts(1), fxs(6)), "caller and colleague are connected");
    assert!(r.has_command(|c| matches!(c, Command::StopPlay { ch } if *ch == ts(1))));
    assert_eq!(r.engine.agent_state("1001").unwrap().0, AgentState::Ready, "sales has no wrap-up");
    // The call keeps its id and its data.
    let call = r.engine.call_on(ts(1)).unwrap();
    assert_eq!(r.engine.call_on(fxs(6)), Some(call));
    assert_eq!(r.engine.call_data(call).unwrap().get("location").map(String::as_str), Some("Beijing"));
}

#[test]
fn flash_during_a_consultation_returns_to_the_held_caller() {
    let mut r = agent_in_a_call();
    r.card(EventKind::HookFlash { ch: fxs(1) });
    dial(&mut r, 1, "2006");
    r.card(EventKind::OffHook { ch: fxs(6) });
    r.take();
    r.card(EventKind::HookFlash { ch: fxs(1) });
    assert!(r.has_event(|e| matches!(e, CstaEvent::Retrieved { .. })));
    assert!(r.connected(ts(1), fxs(1)));
    assert!(cut(&r, 6), "the colleague is cut off");
}

#[test]
fn hanging_up_with_a_caller_on_hold_rings_the_phone_back() {
    let mut r = agent_in_a_call();
    r.card(EventKind::HookFlash { ch: fxs(1) });
    r.take();
    r.card(EventKind::OnHook { ch: fxs(1) });
    assert_eq!(r.rung(), vec![(fxs(1), Some("01066668888".into()))]);
    r.card(EventKind::OffHook { ch: fxs(1) });
    assert!(r.has_event(|e| matches!(e, CstaEvent::Retrieved { .. })));
    assert!(r.connected(ts(1), fxs(1)));
}

#[test]
fn feature_codes_log_in_set_not_ready_and_log_out_from_the_phone() {
    let mut r = Rig::base();
    r.card(EventKind::OffHook { ch: fxs(2) });
    dial(&mut r, 2, "*211002#");
    assert!(r.has_event(
        |e| matches!(e, CstaEvent::Agent { agent, kind: AgentEventKind::LoggedOn { station: Some(s) } }
        if agent == "1002" && s == "2002")
    ));
    assert!(plays_tone(&r, 2, Tone::CallWaiting), "a confirmation tone");
    r.card(EventKind::OnHook { ch: fxs(2) });
    assert_eq!(r.engine.agent_state("1002").unwrap().0, AgentState::Ready);
    r.card(EventKind::OffHook { ch: fxs(2) });
    dial(&mut r, 2, "*24#");
    r.card(EventKind::OnHook { ch: fxs(2) });
    assert_eq!(r.engine.agent_state("1002").unwrap().0, AgentState::NotReady("not ready".into()));
    r.card(EventKind::OffHook { ch: fxs(2) });
    dial(&mut r, 2, "*23");
    r.card(EventKind::OnHook { ch: fxs(2) });
    assert_eq!(r.engine.agent_state("1002").unwrap().0, AgentState::Ready);
    r.card(EventKind::OffHook { ch: fxs(2) });
    dial(&mut r, 2, "*22");
    assert_eq!(r.engine.agent_state("1002").unwrap().0, AgentState::LoggedOut);
    // An unknown agent id gets congestion.
    r.card(EventKind::OnHook { ch: fxs(2) });
    r.take();
    r.card(EventKind::OffHook { ch: fxs(2) });
    dial(&mut r, 2, "*217777#");
    assert!(plays_tone(&r, 2, Tone::Congestion));
}

#[test]
fn a_headset_agent_off_hook_gets_a_call_waiting_tone_and_answers_from_the_desktop() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.card(EventKind::OffHook { ch: fxs(1) });
    r.take();
    r.offer(1, "01066668888", "4008001000");
    assert!(plays_tone(&r, 1, Tone::CallWaiting));
    let call = r.engine.call_on(ts(1)).unwrap();
    let res = r.request(Service::AnswerCall { call, device: DeviceId::Station("2001".into()) });
    assert_eq!(res, Ok(ServiceResult::Ok));
    assert!(r.connected(ts(1), fxs(1)));
}

#[test]
fn answer_call_cannot_lift_an_analog_handset() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.offer(1, "01066668888", "4008001000");
    let call = r.engine.call_on(ts(1)).unwrap();
    let res = r.request(Service::AnswerCall { call, device: DeviceId::Station("2001".into()) });
    assert_eq!(res, Err(CstaError::ServiceNotSupported));
}

/// Supervisor 9001 logged in at 2008 with the handset off hook.
fn supervisor_ready(r: &mut Rig) {
    let res = r.request(Service::SetAgentState {
        agent: "9001".into(),
        request: hotline_cti::AgentRequest::LogIn { station: Some("2008".into()), password: None },
    });
    assert_eq!(res, Ok(ServiceResult::Ok));
    r.card(EventKind::OffHook { ch: fxs(8) });
    r.take();
}

#[test]
fn a_whispering_supervisor_is_heard_by_the_agent_only() {
    let mut r = agent_in_a_call();
    supervisor_ready(&mut r);
    let res = r.request(Service::Supervise {
        supervisor: "9001".into(),
        agent: "1001".into(),
        mode: SupervisionMode::Whisper,
    });
    assert_eq!(res, Ok(ServiceResult::Ok));
    // The pair becomes a bridge: caller and agent as full members, the supervisor
    // talking and listening but hidden from the caller.
    assert!(r.has_command(|c| matches!(c, Command::Disconnect { .. })));
    let joins: Vec<(hotline_drivers::ChannelId, MemberRights)> = r
        .commands()
        .into_iter()
        .filter_map(|c| match c {
            Command::JoinConference { ch, rights, .. } => Some((*ch, rights.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(joins.len(), 3);
    assert!(joins.contains(&(ts(1), MemberRights::full())));
    assert!(joins.contains(&(fxs(1), MemberRights::full())));
    assert!(joins.contains(&(fxs(8), MemberRights { talk: true, listen: true, hidden_from: vec![ts(1)] })));
    assert!(r.has_event(|e| matches!(e, CstaEvent::Supervising { mode: SupervisionMode::Whisper, .. })));
}

#[test]
fn a_silent_monitor_only_listens() {
    let mut r = agent_in_a_call();
    supervisor_ready(&mut r);
    r.request(Service::Supervise {
        supervisor: "9001".into(),
        agent: "1001".into(),
        mode: SupervisionMode::Monitor,
    })
    .unwrap();
    assert!(r.has_command(|c| matches!(c, Command::JoinConference { ch, rights, .. } if *ch == fxs(8) && *rights == MemberRights::listen_only())));
}

#[test]
fn a_supervisor_intercepts_and_the_agent_drops() {
    let mut r = agent_in_a_call();
    supervisor_ready(&mut r);
    r.request(Service::Supervise {
        supervisor: "9001".into(),
        agent: "1001".into(),
        mode: SupervisionMode::Intercept,
    })
    .unwrap();
    assert!(r.connected(ts(1), fxs(8)), "caller and supervisor talk directly");
    assert!(cut(&r, 1), "the agent is cut off");
    assert!(r.has_event(
        |e| matches!(e, CstaEvent::ConnectionCleared { releasing: DeviceId::Station(x), .. } if x == "2001")
    ));
}

#[test]
fn a_barging_supervisor_joins_a_three_way_and_leaves_cleanly() {
    let mut r = agent_in_a_call();
    supervisor_ready(&mut r);
    r.request(Service::Supervise {
        supervisor: "9001".into(),
        agent: "1001".into(),
        mode: SupervisionMode::Barge,
    })
    .unwrap();
    assert!(r.has_command(|c| matches!(c, Command::JoinConference { ch, rights, .. } if *ch == fxs(8) && *rights == MemberRights::full())));
    r.take();
    r.card(EventKind::OnHook { ch: fxs(8) });
    // Back to a direct connection between caller and agent; the bridge is left.
    assert_eq!(r.commands().iter().filter(|c| matches!(c, Command::LeaveConference { .. })).count(), 3);
    assert!(r.connected(ts(1), fxs(1)));
}

#[test]
fn consultation_and_transfer_as_services() {
    let mut r = agent_in_a_call();
    let call = r.engine.call_on(ts(1)).unwrap();
    let dev = DeviceId::Station("2001".into());
    let Ok(ServiceResult::Call(consult)) =
        r.request(Service::ConsultationCall { held: call, device: dev.clone(), called: "2006".into() })
    else {
        panic!("consultation call")
    };
    assert_eq!(r.rung(), vec![(fxs(6), Some("2001".into()))]);
    r.card(EventKind::OffHook { ch: fxs(6) });
    r.take();
    assert_eq!(
        r.request(Service::TransferCall { held: call, active: consult, device: dev }),
        Ok(ServiceResult::Ok)
    );
    assert!(r.connected(ts(1), fxs(6)));
}

#[test]
fn conference_call_puts_three_parties_on_a_bridge() {
    let mut r = agent_in_a_call();
    let call = r.engine.call_on(ts(1)).unwrap();
    let dev = DeviceId::Station("2001".into());
    let Ok(ServiceResult::Call(consult)) =
        r.request(Service::ConsultationCall { held: call, device: dev.clone(), called: "2006".into() })
    else {
        panic!("consultation call")
    };
    r.card(EventKind::OffHook { ch: fxs(6) });
    r.take();
    assert_eq!(
        r.request(Service::ConferenceCall { held: call, active: consult, device: dev }),
        Ok(ServiceResult::Ok)
    );
    assert_eq!(r.commands().iter().filter(|c| matches!(c, Command::JoinConference { .. })).count(), 3);
    assert!(r.has_event(|e| matches!(e, CstaEvent::Conferenced { .. })));
}

#[test]
fn single_step_transfer_to_a_queue() {
    let mut r = agent_in_a_call();
    r.login("1004", "2004");
    r.take();
    let call = r.engine.call_on(ts(1)).unwrap();
    let res = r.request(Service::SingleStepTransferCall {
        call,
        device: DeviceId::Station("2001".into()),
        to: "3001".into(),
    });
    assert_eq!(res, Ok(ServiceResult::Ok));
    assert!(r.has_event(|e| matches!(e, CstaEvent::Queued { queue, .. } if queue == "sales")));
    assert!(r.has_event(
        |e| matches!(e, CstaEvent::Transferred { transferred_to: Some(DeviceId::Queue(q)), .. } if q == "sales")
    ));
}

#[test]
fn make_call_rings_the_agent_phone_first_then_dials() {
    let mut r = Rig::base();
    let res = r.request(Service::MakeCall { calling: "2003".into(), called: "2006".into() });
    assert!(matches!(res, Ok(ServiceResult::Call(_))));
    assert_eq!(r.rung(), vec![(fxs(3), Some("2006".into()))]);
    r.take();
    r.card(EventKind::OffHook { ch: fxs(3) });
    assert_eq!(r.rung(), vec![(fxs(6), Some("2003".into()))]);
}

/// Agent 2001 talks to the caller on timeslot 1 and consults 2006, who answered.
fn consulting() -> (Rig, hotline_cti::CallId, hotline_cti::CallId) {
    let mut r = agent_in_a_call();
    let call = r.engine.call_on(ts(1)).unwrap();
    let dev = DeviceId::Station("2001".into());
    let Ok(ServiceResult::Call(consult)) =
        r.request(Service::ConsultationCall { held: call, device: dev, called: "2006".into() })
    else {
        panic!("consultation call")
    };
    r.card(EventKind::OffHook { ch: fxs(6) });
    r.take();
    (r, call, consult)
}

#[test]
fn alternate_call_swaps_between_the_held_and_the_active_party() {
    let (mut r, call, consult) = consulting();
    let dev = DeviceId::Station("2001".into());
    assert_eq!(
        r.request(Service::AlternateCall { held: call, active: consult, device: dev.clone() }),
        Ok(ServiceResult::Ok)
    );
    assert!(r.connected(ts(1), fxs(1)));
    assert!(r.has_event(|e| matches!(e, CstaEvent::Held { call: c, .. } if *c == consult)));
    r.take();
    // And back.
    assert_eq!(
        r.request(Service::AlternateCall { held: consult, active: call, device: dev }),
        Ok(ServiceResult::Ok)
    );
    assert!(r.connected(fxs(6), fxs(1)));
}

#[test]
fn reconnect_call_drops_the_consultation_and_returns_to_the_caller() {
    let (mut r, call, consult) = consulting();
    let dev = DeviceId::Station("2001".into());
    assert_eq!(
        r.request(Service::ReconnectCall { held: call, active: consult, device: dev }),
        Ok(ServiceResult::Ok)
    );
    assert!(r.connected(ts(1), fxs(1)));
    assert!(r.has_event(|e| matches!(e, CstaEvent::CallCleared { call: c, .. } if *c == consult)));
}

#[test]
fn deflect_call_sends_a_ringing_internal_call_elsewhere() {
    let mut r = Rig::base();
    r.card(EventKind::OffHook { ch: fxs(5) });
    dial(&mut r, 5, "2006");
    let call = r.engine.call_on(fxs(6)).unwrap();
    r.take();
    let res =
        r.request(Service::DeflectCall { call, device: DeviceId::Station("2006".into()), to: "2007".into() });
    assert_eq!(res, Ok(ServiceResult::Ok));
    assert!(r.has_command(|c| matches!(c, Command::StopRinging { ch } if *ch == fxs(6))));
    assert_eq!(r.rung(), vec![(fxs(7), Some("2005".into()))]);
}

#[test]
fn generate_digits_sends_dtmf_toward_the_trunk() {
    let mut r = agent_in_a_call();
    let call = r.engine.call_on(ts(1)).unwrap();
    let res = r.request(Service::GenerateDigits {
        call,
        device: DeviceId::Station("2001".into()),
        digits: "12#".into(),
    });
    assert_eq!(res, Ok(ServiceResult::Ok));
    assert!(
        r.has_command(|c| matches!(c, Command::SendDigits { ch, digits } if *ch == ts(1) && digits == "12#"))
    );
    let bad = r.request(Service::GenerateDigits {
        call,
        device: DeviceId::Station("2001".into()),
        digits: "x".into(),
    });
    assert!(bad.is_err());
}

#[test]
fn snapshots_show_parties_devices_and_queues() {
    let mut r = agent_in_a_call();
    let call = r.engine.call_on(ts(1)).unwrap();
    let Ok(ServiceResult::CallSnapshot { parties, data }) = r.request(Service::SnapshotCall { call }) else {
        panic!("call snapshot")
    };
    assert_eq!(parties.len(), 2);
    assert_eq!(data.get("location").map(String::as_str), Some("Beijing"));
    let Ok(ServiceResult::DeviceSnapshot { calls }) =
        r.request(Service::SnapshotDevice { device: DeviceId::Station("2001".into()) })
    else {
        panic!("device snapshot")
    };
    assert_eq!(calls, vec![(call, hotline_cti::csta::ConnectionState::Connected)]);
    r.offer(2, "01000000002", "4008001000");
    let Ok(ServiceResult::QueueSnapshot { waiting, ready, logged_in, oldest_since }) =
        r.request(Service::SnapshotQueue { queue: "sales".into() })
    else {
        panic!("queue snapshot")
    };
    assert_eq!((waiting, ready, logged_in), (1, 0, 1));
    assert!(oldest_since.is_some());
    assert_eq!(
        r.request(Service::SnapshotCall { call: hotline_cti::CallId(999) }),
        Err(CstaError::InvalidCallId)
    );
}

#[test]
fn an_agent_on_an_outside_call_gets_no_queue_calls_until_it_ends() {
    let mut r = Rig::base();
    r.login("1001", "2001");
    r.card(EventKind::OffHook { ch: fxs(1) });
    dial(&mut r, 1, "90108");
    assert_eq!(r.engine.agent_state("1001").unwrap().0, AgentState::Busy, "dialling out");
    r.take();
    r.offer(1, "01066668888", "4008001000");
    assert!(r.rung().is_empty());
    assert!(!plays_tone(&r, 1, Tone::CallWaiting));
    dial(&mut r, 1, "#");
    let trunk = r
        .commands()
        .into_iter()
        .find_map(|c| if let Command::PlaceCall { ch, .. } = c { Some(*ch) } else { None })
        .expect("the outside call is placed");
    r.card(EventKind::Answered { ch: trunk });
    r.take();
    r.card(EventKind::OnHook { ch: fxs(1) });
    // The outside call ends; the agent is ready again and the waiting caller rings.
    assert_eq!(r.rung(), vec![(fxs(1), Some("01066668888".into()))]);
}

#[test]
fn a_supervisor_calls_an_agent_by_agent_id() {
    let mut r = Rig::base();
    r.login("1002", "2002");
    supervisor_ready(&mut r);
    let res = r.request(Service::MakeCall { calling: "2008".into(), called: "1002".into() });
    assert!(matches!(res, Ok(ServiceResult::Call(_))));
    assert_eq!(r.rung(), vec![(fxs(2), Some("2008".into()))]);
}

#[test]
fn a_held_caller_hears_the_music_on_hold() {
    let mut r = Rig::new(&format!("[engine]\nmusic_on_hold = \"prompts/moh.wav\"\n{}", common::BASE));
    r.login("1001", "2001");
    r.offer(1, "01066668888", "4008001000");
    r.card(EventKind::OffHook { ch: fxs(1) });
    r.take();
    r.card(EventKind::HookFlash { ch: fxs(1) });
    assert!(r.has_command(|c| matches!(c, Command::Play { ch, source: PlaySource::Prompt(p), .. }
        if *ch == ts(1) && p.to_str() == Some("prompts/moh.wav"))));
}

#[test]
fn dialling_its_own_number_is_a_loopback_test_that_rings_the_phone() {
    let mut r = Rig::base();
    r.card(EventKind::OffHook { ch: fxs(3) });
    dial(&mut r, 3, "2003");
    assert!(plays_tone(&r, 3, Tone::CallWaiting), "confirmed");
    r.take();
    r.card(EventKind::OnHook { ch: fxs(3) });
    assert_eq!(r.rung(), vec![(fxs(3), Some("2003".into()))]);
    r.take();
    r.card(EventKind::OffHook { ch: fxs(3) });
    assert!(plays_tone(&r, 3, Tone::Dial), "the audio path is heard");
    r.card(EventKind::OnHook { ch: fxs(3) });
    assert_eq!(r.engine.call_count(), 0);
}

#[test]
fn a_supervisor_may_only_join_calls_of_their_own_groups() {
    let text = common::BASE.replace(r#"agents = ["1001", "1002", "1003", "1004"]"#, r#"agents = ["1002"]"#);
    let mut r = Rig::new(&text);
    r.login("1001", "2001");
    r.offer(1, "01066668888", "4008001000");
    r.card(EventKind::OffHook { ch: fxs(1) });
    supervisor_ready(&mut r);
    let res = r.request(Service::Supervise {
        supervisor: "9001".into(),
        agent: "1001".into(),
        mode: SupervisionMode::Monitor,
    });
    assert_eq!(res, Err(CstaError::PrivilegeViolation));
    assert!(!r.has_command(|c| matches!(c, Command::JoinConference { .. })));
}

#[test]
fn single_step_transfer_to_an_ivr_flow_hands_the_call_off() {
    let mut r = agent_in_a_call();
    let call = r.engine.call_on(ts(1)).unwrap();
    let res = r.request(Service::SingleStepTransferCall {
        call,
        device: DeviceId::Station("2001".into()),
        to: "ivr:survey".into(),
    });
    assert_eq!(res, Ok(ServiceResult::Ok));
    assert!(r.has_event(|e| matches!(e, CstaEvent::HandedOff { to: DeviceId::Ivr(f), .. } if f == "survey")));
    assert!(r.has_command(|c| matches!(c, Command::Disconnect { .. })), "the agent is taken off the caller");
    assert_eq!(r.engine.call_on(ts(1)), Some(call), "the call lives on with the IVR");
}

#[test]
fn a_refused_outside_call_fails_and_a_phone_that_cannot_ring_is_passed_over() {
    let mut r = Rig::base();
    r.card(EventKind::OffHook { ch: fxs(5) });
    dial(&mut r, 5, "9555#");
    let command =
        r.commands().into_iter().find(|c| matches!(c, Command::PlaceCall { .. })).cloned().expect("placed");
    r.take();
    r.engine.handle(
        r.now,
        hotline_cti::Input::CommandFailed { command, kind: hotline_drivers::ErrorKind::Blocked },
    );
    while let Some(o) = r.engine.poll_output() {
        r.out.push(o);
    }
    assert!(r.has_event(
        |e| matches!(e, CstaEvent::Failed { cause, .. } if *cause == Cause::NO_CIRCUIT_AVAILABLE)
    ));
    assert!(cut(&r, 5));
    r.engine.check_invariants().unwrap();

    // An agent's phone that the card cannot ring: the call moves on, the agent stops.
    r.login("1001", "2001");
    r.advance(Duration::from_secs(1));
    r.login("1002", "2002");
    r.take();
    r.offer(2, "01066668888", "4008001000");
    let ring = r.commands().into_iter().find(|c| matches!(c, Command::RingStation { .. })).cloned().unwrap();
    r.take();
    r.engine.handle(
        r.now,
        hotline_cti::Input::CommandFailed { command: ring, kind: hotline_drivers::ErrorKind::InvalidState },
    );
    while let Some(o) = r.engine.poll_output() {
        r.out.push(o);
    }
    assert_eq!(r.rung(), vec![(fxs(2), Some("01066668888".into()))]);
    assert_eq!(r.engine.agent_state("1001").unwrap().0, AgentState::NotReady("station unavailable".into()));
    r.engine.check_invariants().unwrap();
}
