//! The Synway adapter against the SynCTI emulator (a C test fixture, not an SDK),
//! loaded through the same run-time loading path as the real SDK.

#![allow(unsafe_code)] // calls into the emulator's control API

#[path = "sdk-emulators/emu.rs"]
mod emu;

use std::ffi::{c_char, c_int, CString};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver};
use hotline_drivers::event::{PlayEnd, Side};
use hotline_drivers::vendor::synway::{SynwayCard, SynwayOptions};
use hotline_drivers::{Card, CardEvent, Cause, ChannelId, ErrorKind, EventKind, Instant};

struct Rig {
    card: SynwayCard,
    events: Receiver<CardEvent>,
    emu: emu::Emu,
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn rig_with(trace: Option<hotline_drivers::vendor::synway::TraceHook>) -> Rig {
    let serial = emu::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = emu::build("synway_emu");
    let (tx, events) = bounded(256);
    let mut options = SynwayOptions::new(1, &path);
    options.trace = trace;
    let card = SynwayCard::open(options, tx).expect("the emulated SDK starts");
    Rig { card, events, emu: emu::Emu::open(&path), _serial: serial }
}

fn rig() -> Rig {
    rig_with(None)
}

impl Rig {
    fn next(&self) -> EventKind {
        self.events.recv_timeout(Duration::from_secs(5)).expect("an event within 5 s").kind
    }
    fn incoming(&self, ch: c_int, ani: &str, dnis: &str) {
        let f: unsafe extern "C" fn(c_int, *const c_char, *const c_char) = self.emu.f("emu_inject_incoming");
        let (a, d) = (CString::new(ani).unwrap(), CString::new(dnis).unwrap());
        unsafe { f(ch, a.as_ptr(), d.as_ptr()) }
    }
    fn far_end_hangup(&self, ch: c_int, pending: c_int, release: c_int) {
        let f: unsafe extern "C" fn(c_int, c_int, c_int) = self.emu.f("emu_far_end_hangup");
        unsafe { f(ch, pending, release) }
    }
    fn dial_progress(&self, ch: c_int, progress: c_int, failure: c_int) {
        let f: unsafe extern "C" fn(c_int, c_int, c_int) = self.emu.f("emu_dial_progress");
        unsafe { f(ch, progress, failure) }
    }
    fn dtmf(&self, ch: c_int, digit: char) {
        let f: unsafe extern "C" fn(c_int, c_char) = self.emu.f("emu_dtmf");
        unsafe { f(ch, digit as u8 as c_char) }
    }
}

const T: Instant = Instant::ZERO;
const ISDN_1: ChannelId = ChannelId::e1(1, 1, 1); // SDK channel 6
const ISDN_2: ChannelId = ChannelId::e1(1, 1, 2); // SDK channel 7

#[test]
fn channels_are_listed_by_kind_in_sdk_order() {
    let r = rig();
    let chans = r.card.channels();
    assert_eq!(chans.len(), 36);
    assert_eq!(chans[0].id, ChannelId::fxo(1, 1));
    assert_eq!(chans[4].id, ChannelId::fxs(1, 1));
    assert_eq!(chans[6].id, ISDN_1);
    assert_eq!(chans[6].signalling, "ISDN PRI");
    assert_eq!(chans[6 + 15].id, ChannelId::e1(1, 1, 17), "timeslot 16 is skipped");
    assert_eq!(r.card.sdk_channel(ISDN_2), Some(7));
}

#[test]
fn an_inbound_call_is_offered_with_ani_and_dnis_and_answered_by_ssm_pickup() {
    let mut r = rig();
    r.incoming(6, "13800138000", "4001");
    assert_eq!(
        r.next(),
        EventKind::Offered {
            ch: ISDN_1,
            ani: Some("13800138000".into()),
            dnis: "4001".into(),
            category: Default::default()
        }
    );
    r.card.accept(T, ISDN_1).unwrap();
    r.card.answer(T, ISDN_1).unwrap();
    assert!(r.emu.log().contains("SsmPickup(6)"));
    assert_eq!(r.next(), EventKind::Answered { ch: ISDN_1 });
}

#[test]
fn far_end_hang_up_is_released_with_the_isdn_cause_and_the_channel_is_hung_up() {
    let mut r = rig();
    r.incoming(6, "100", "200");
    r.next();
    r.card.answer(T, ISDN_1).unwrap();
    r.next();
    r.far_end_hangup(6, 0, 17);
    assert_eq!(r.next(), EventKind::Released { ch: ISDN_1, cause: Cause::USER_BUSY, by: Side::Remote });
    assert!(r.emu.log().contains("SsmHangup(6)"), "a pending channel is hung up to return it to idle");
}

#[test]
fn an_analog_line_hang_up_maps_the_pending_reason_to_normal_clearing() {
    let mut r = rig();
    r.incoming(0, "", "");
    assert_eq!(
        r.next(),
        EventKind::Offered {
            ch: ChannelId::fxo(1, 1),
            ani: None,
            dnis: "".into(),
            category: Default::default()
        }
    );
    r.card.answer(T, ChannelId::fxo(1, 1)).unwrap();
    r.next();
    r.far_end_hangup(0, 4, 0); // ANALOGOUT_TALKING_REMOTE_HANGUPED
    assert_eq!(
        r.next(),
        EventKind::Released { ch: ChannelId::fxo(1, 1), cause: Cause::NORMAL_CLEARING, by: Side::Remote }
    );
}

#[test]
fn an_outbound_call_alerts_then_connects() {
    let mut r = rig();
    r.card.place_call(T, ISDN_2, "02161234567", Some("4001"), Default::default()).unwrap();
    let log = r.emu.log();
    assert!(log.contains("SsmSetTxCallerId(7,4001)") && log.contains("SsmAutoDial(7,02161234567)"), "{log}");
    r.dial_progress(7, 2, 0); // DIAL_ECHOTONE
    assert_eq!(r.next(), EventKind::Alerting { ch: ISDN_2 });
    r.dial_progress(7, 7, 0); // DIAL_VOICE
    assert_eq!(r.next(), EventKind::Answered { ch: ISDN_2 });
    r.card.release(T, ISDN_2, Cause::NORMAL_CLEARING).unwrap();
    assert_eq!(r.next(), EventKind::Released { ch: ISDN_2, cause: Cause::NORMAL_CLEARING, by: Side::Local });
}

#[test]
fn a_busy_called_party_releases_with_cause_17() {
    let mut r = rig();
    r.card.place_call(T, ISDN_2, "555", None, Default::default()).unwrap();
    r.dial_progress(7, 4, 0); // DIAL_BUSYTONE
    assert_eq!(r.next(), EventKind::Released { ch: ISDN_2, cause: Cause::USER_BUSY, by: Side::Remote });
    // An ISDN failure reason carries its Q.850 cause as 100 + n.
    r.card.place_call(T, ISDN_2, "556", None, Default::default()).unwrap();
    r.dial_progress(7, 11, 134); // DIAL_FAILURE, cause 34
    assert_eq!(
        r.next(),
        EventKind::Released { ch: ISDN_2, cause: Cause::NO_CIRCUIT_AVAILABLE, by: Side::Remote }
    );
}

#[test]
fn a_prompt_plays_stops_and_barges_in_on_a_digit() {
    let mut r = rig();
    let prompt = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("synway-prompt.wav");
    std::fs::write(&prompt, b"RIFF").unwrap();
    r.card.play(T, ISDN_1, 5, hotline_drivers::command::PlaySource::Prompt(prompt.clone()), false).unwrap();
    assert!(r.emu.log().contains(&format!("SsmPlayFile(6,{})", prompt.display())));
    r.card.execute(T, hotline_drivers::Command::StopPlay { ch: ISDN_1 }).unwrap();
    assert!(r.emu.log().contains("SsmStopPlay(6)"));
    assert_eq!(r.next(), EventKind::PlayFinished { ch: ISDN_1, id: 5, reason: PlayEnd::Stopped });

    r.card.play(T, ISDN_1, 6, hotline_drivers::command::PlaySource::Prompt(prompt.clone()), true).unwrap();
    r.dtmf(6, '5');
    assert!(matches!(r.next(), EventKind::Digit { ch: ISDN_1, digit: '5', .. }));
    assert_eq!(r.next(), EventKind::PlayFinished { ch: ISDN_1, id: 6, reason: PlayEnd::Digit });

    // A new play replaces a running one, which ends as stopped.
    r.card.play(T, ISDN_1, 8, hotline_drivers::command::PlaySource::Prompt(prompt.clone()), false).unwrap();
    r.card.play(T, ISDN_1, 9, hotline_drivers::command::PlaySource::Prompt(prompt), false).unwrap();
    assert_eq!(r.next(), EventKind::PlayFinished { ch: ISDN_1, id: 8, reason: PlayEnd::Stopped });
    let end: unsafe extern "C" fn(c_int) = r.emu.f("emu_play_end");
    unsafe { end(6) };
    assert_eq!(r.next(), EventKind::PlayFinished { ch: ISDN_1, id: 9, reason: PlayEnd::Completed });

    let missing = std::path::PathBuf::from("/nonexistent/prompt.wav");
    let err =
        r.card.play(T, ISDN_1, 7, hotline_drivers::command::PlaySource::Prompt(missing), false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Media);
    assert!(err.message().contains("/nonexistent/prompt.wav"), "{}", err.message());
}

#[test]
fn connect_listen_and_disconnect_use_the_sdk_bus_calls() {
    let mut r = rig();
    r.card.connect(T, ISDN_1, ChannelId::fxs(1, 1)).unwrap();
    r.card
        .execute(T, hotline_drivers::Command::Listen { listener: ChannelId::fxs(1, 2), source: ISDN_1 })
        .unwrap();
    r.card.execute(T, hotline_drivers::Command::Disconnect { ch: ISDN_1 }).unwrap();
    let log = r.emu.log();
    for call in ["SsmTalkWith(6,4)", "SsmListenTo(5,6)", "SsmStopTalkWith(6,4)", "SsmStopListenTo(5,6)"] {
        assert!(log.contains(call), "{call} missing from\n{log}");
    }
    r.card.send_digits(T, ISDN_1, "12#").unwrap();
    assert!(r.emu.log().contains("SsmTxDtmf(6,12#)"));
    assert_eq!(r.card.send_digits(T, ISDN_1, "12x").unwrap_err().kind(), ErrorKind::Unsupported);
}

#[test]
fn a_station_goes_off_hook_and_on_hook() {
    let r = rig();
    let hook: unsafe extern "C" fn(c_int, c_int) = r.emu.f("emu_station_hook");
    unsafe { hook(4, 1) };
    assert_eq!(r.next(), EventKind::OffHook { ch: ChannelId::fxs(1, 1) });
    unsafe { hook(4, 0) };
    assert_eq!(r.next(), EventKind::OnHook { ch: ChannelId::fxs(1, 1) });
}

#[test]
fn answering_an_idle_channel_is_an_invalid_state() {
    let mut r = rig();
    assert_eq!(r.card.answer(T, ISDN_1).unwrap_err().kind(), ErrorKind::InvalidState);
    assert_eq!(r.card.answer(T, ChannelId::e1(1, 9, 1)).unwrap_err().kind(), ErrorKind::NoSuchChannel);
}

#[test]
fn a_missing_sdk_library_is_a_config_error_naming_the_path_and_what_to_install() {
    let _serial = emu::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, _rx) = bounded(1);
    let err = SynwayCard::open(SynwayOptions::new(1, "/opt/synway/lib/libshpa3.so"), tx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("/opt/synway/lib/libshpa3.so"), "{}", err.message());
    assert!(err.message().contains("Synway SynCTI driver"), "{}", err.message());
}

#[test]
fn a_panic_in_our_sdk_callback_does_not_cross_into_the_sdk() {
    let trace: hotline_drivers::vendor::synway::TraceHook = Arc::new(|ev| {
        if ev.code == 0x0c && ev.param == u32::from(b'7') {
            panic!("a trace hook that fails on digit 7");
        }
    });
    let r = rig_with(Some(trace));
    let fire: unsafe extern "C" fn(c_int, c_int, u32) -> c_int = r.emu.f("emu_fire_raw");
    let status = unsafe { fire(0x0c, 6, u32::from(b'7')) };
    assert_eq!(status, -1, "the callback reports the failure to the SDK instead of unwinding");
    assert_eq!(r.card.callback_faults(), 1);
    assert!(matches!(r.next(), EventKind::Digit { digit: '7', .. }), "the event itself is still handled");
    let null: unsafe extern "C" fn() -> c_int = r.emu.f("emu_fire_null");
    assert_eq!(unsafe { null() }, -1, "a null event is refused, not dereferenced");
}

#[test]
fn a_supervisor_barges_in_and_a_monitor_listens_through_a_conference_group() {
    use hotline_drivers::command::MemberRights;
    use hotline_drivers::ConferenceId;
    let mut r = rig();
    let conf = ConferenceId { card: 1, bridge: 3 };
    let join = |rights| hotline_drivers::Command::JoinConference { conf, ch: ISDN_1, rights };
    r.card.execute(T, join(MemberRights::full())).unwrap();
    r.card
        .execute(
            T,
            hotline_drivers::Command::JoinConference {
                conf,
                ch: ISDN_2,
                rights: MemberRights::listen_only(),
            },
        )
        .unwrap();
    r.card.execute(T, hotline_drivers::Command::LeaveConference { conf, ch: ISDN_2 }).unwrap();
    let log = r.emu.log();
    for call in
        ["SsmJoinConfGroup(3,6,speak+listen,-1)", "SsmJoinConfGroup(3,7,listen,-1)", "SsmExitConfGroup(7,1)"]
    {
        assert!(log.contains(call), "{call} missing from\n{log}");
    }
    let whisper = MemberRights { talk: true, listen: true, hidden_from: vec![ISDN_2] };
    assert_eq!(r.card.execute(T, join(whisper)).unwrap_err().kind(), ErrorKind::Unsupported);
    let leave_again = hotline_drivers::Command::LeaveConference { conf, ch: ISDN_2 };
    assert_eq!(r.card.execute(T, leave_again).unwrap_err().kind(), ErrorKind::InvalidState);
}

#[test]
fn a_station_is_rung_with_caller_id_and_answers_by_lifting_the_handset() {
    let mut r = rig();
    let station = ChannelId::fxs(1, 2); // SDK channel 5
    let id = hotline_drivers::signal::CallerId { number: Some("13800138000".into()), ..Default::default() };
    r.card.ring_station(T, station, Some(id)).unwrap();
    assert!(r.emu.log().contains("SsmStartRingWithCIDStr(5,13800138000)"));
    let hook: unsafe extern "C" fn(c_int, c_int) = r.emu.f("emu_station_hook");
    unsafe { hook(5, 1) };
    assert_eq!(r.next(), EventKind::Answered { ch: station });
    unsafe { hook(5, 0) };
    assert_eq!(r.next(), EventKind::OnHook { ch: station });
}

#[test]
fn maintenance_blocking_takes_a_channel_out_of_service_and_back() {
    let mut r = rig();
    r.card.execute(T, hotline_drivers::Command::Block { ch: ISDN_2 }).unwrap();
    assert_eq!(r.next(), EventKind::Blocked { ch: ISDN_2, reason: "blocked locally".into() });
    assert_eq!(
        r.card.place_call(T, ISDN_2, "1", None, Default::default()).unwrap_err().kind(),
        ErrorKind::InvalidState
    );
    r.card.execute(T, hotline_drivers::Command::Unblock { ch: ISDN_2 }).unwrap();
    assert_eq!(r.next(), EventKind::Unblocked { ch: ISDN_2 });
}
