//! The Dialogic adapter against the GlobalCall/Voice/SRL emulator (a C test fixture,
//! not an SDK), loaded through the same run-time loading path as the real libraries.

#![allow(unsafe_code)] // calls into the emulator's control API

#[path = "sdk-emulators/emu.rs"]
mod emu;

use std::ffi::{c_char, c_int, c_long, CString};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver};
use hotline_drivers::command::PlaySource;
use hotline_drivers::event::{PlayEnd, Side};
use hotline_drivers::vendor::dialogic::{DialogicCard, DialogicChannel, DialogicOptions};
use hotline_drivers::{Card, CardEvent, Cause, ChannelId, Command, ErrorKind, EventKind, Instant};

const T: Instant = Instant::ZERO;
const B1: ChannelId = ChannelId::e1(1, 1, 1); // line device 1, voice 101, network 201
const B2: ChannelId = ChannelId::e1(1, 1, 2); // line device 2, voice 102, network 202

struct Rig {
    card: DialogicCard,
    events: Receiver<CardEvent>,
    emu: emu::Emu,
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn rig() -> Rig {
    let serial = emu::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = emu::build("dialogic_emu");
    let channels = [B1, B2]
        .iter()
        .enumerate()
        .map(|(i, &id)| DialogicChannel {
            id,
            line: format!(":N_dtiB1T{}:P_isdn", i + 1),
            voice: format!("dxxxB1C{}", i + 1),
            signalling: "ISDN PRI".into(),
        })
        .collect();
    let (tx, events) = bounded(256);
    let card = DialogicCard::open(DialogicOptions { card: 1, sdk_path: path.clone(), channels }, tx)
        .expect("the emulated SDK starts");
    let r = Rig { card, events, emu: emu::Emu::open(&path), _serial: serial };
    r.wait_log("gc_WaitCall(2)");
    r
}

impl Rig {
    fn next(&self) -> EventKind {
        self.events.recv_timeout(Duration::from_secs(5)).expect("an event within 5 s").kind
    }
    /// The event thread works asynchronously: wait (bounded) until the call shows in the log.
    fn wait_log(&self, call: &str) {
        for _ in 0..500 {
            if self.emu.log().contains(call) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{call} never called; log:\n{}", self.emu.log());
    }
    fn incoming(&self, line: c_int, ani: &str, dnis: &str) {
        let f: unsafe extern "C" fn(c_int, *const c_char, *const c_char) = self.emu.f("emu_inject_incoming");
        let (a, d) = (CString::new(ani).unwrap(), CString::new(dnis).unwrap());
        unsafe { f(line, a.as_ptr(), d.as_ptr()) }
    }
    fn line(&self, name: &str, line: c_int) {
        let f: unsafe extern "C" fn(c_int) = self.emu.f(name);
        unsafe { f(line) }
    }
    fn far_end_hangup(&self, line: c_int, cause: c_long) {
        let f: unsafe extern "C" fn(c_int, c_long) = self.emu.f("emu_far_end_hangup");
        unsafe { f(line, cause) }
    }
    fn dtmf(&self, line: c_int, digit: char) {
        let f: unsafe extern "C" fn(c_int, c_char) = self.emu.f("emu_dtmf");
        unsafe { f(line, digit as u8 as c_char) }
    }
    fn answered_inbound(&mut self) {
        self.incoming(1, "13800138000", "4001");
        self.next();
        self.card.answer(T, B1).unwrap();
        assert_eq!(self.next(), EventKind::Answered { ch: B1 });
        self.wait_log("dx_getdig(101)");
    }
}

#[test]
fn every_channel_is_opened_and_waits_for_calls() {
    let r = rig();
    let log = r.emu.log();
    assert!(log.contains("gc_OpenEx(:N_dtiB1T1:P_isdn)=1") && log.contains("dx_open(dxxxB1C2)=102"), "{log}");
    assert!(log.contains("gc_WaitCall(1)"));
    assert_eq!(r.card.channels().len(), 2);
}

#[test]
fn an_inbound_call_is_offered_with_ani_and_dnis_accepted_and_answered() {
    let mut r = rig();
    r.incoming(1, "13800138000", "4001");
    assert_eq!(
        r.next(),
        EventKind::Offered {
            ch: B1,
            ani: Some("13800138000".into()),
            dnis: "4001".into(),
            category: Default::default()
        }
    );
    r.card.accept(T, B1).unwrap();
    r.card.answer(T, B1).unwrap();
    assert_eq!(r.next(), EventKind::Answered { ch: B1 });
    let log = r.emu.log();
    assert!(log.contains("gc_AcceptCall(line=1,0)") && log.contains("gc_AnswerCall(line=1,0)"), "{log}");
}

#[test]
fn far_end_hang_up_is_dropped_released_and_reported_with_its_q850_cause() {
    let mut r = rig();
    r.answered_inbound();
    r.far_end_hangup(1, 16);
    assert_eq!(r.next(), EventKind::Released { ch: B1, cause: Cause::NORMAL_CLEARING, by: Side::Remote });
    let log = r.emu.log();
    assert!(log.contains("gc_DropCall(line=1,16)") && log.contains("gc_ReleaseCallEx(line=1,0)"), "{log}");
}

#[test]
fn an_outbound_call_alerts_connects_and_is_released_by_us() {
    let mut r = rig();
    r.card.place_call(T, B2, "02161234567", Some("4001"), Default::default()).unwrap();
    let log = r.emu.log();
    assert!(
        log.contains("gc_SetCallingNum(line=2,4001)") && log.contains("gc_MakeCall(line=2,02161234567)"),
        "{log}"
    );
    r.line("emu_alerting", 2);
    assert_eq!(r.next(), EventKind::Alerting { ch: B2 });
    r.line("emu_connected", 2);
    assert_eq!(r.next(), EventKind::Answered { ch: B2 });
    r.card.release(T, B2, Cause::NORMAL_CLEARING).unwrap();
    assert_eq!(r.next(), EventKind::Released { ch: B2, cause: Cause::NORMAL_CLEARING, by: Side::Local });
}

#[test]
fn a_busy_called_party_releases_with_cause_17() {
    let mut r = rig();
    r.card.place_call(T, B2, "555", None, Default::default()).unwrap();
    r.far_end_hangup(2, 17);
    assert_eq!(r.next(), EventKind::Released { ch: B2, cause: Cause::USER_BUSY, by: Side::Remote });
    r.card.place_call(T, B2, "556", None, Default::default()).expect("the line is free again");
}

#[test]
fn digits_from_the_sdk_are_reported_one_by_one() {
    let mut r = rig();
    r.answered_inbound();
    r.dtmf(1, '9');
    assert!(matches!(r.next(), EventKind::Digit { ch: B1, digit: '9', .. }));
    r.dtmf(1, '#');
    assert!(matches!(r.next(), EventKind::Digit { ch: B1, digit: '#', .. }));
}

#[test]
fn a_prompt_plays_stops_and_barges_in_on_a_digit() {
    let mut r = rig();
    r.answered_inbound();
    let prompt = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dialogic-prompt.wav");
    std::fs::write(&prompt, b"RIFF").unwrap();
    r.card.play(T, B1, 5, PlaySource::Prompt(prompt.clone()), false).unwrap();
    r.wait_log("dx_playiottdata(101,plain)");
    r.card.execute(T, Command::StopPlay { ch: B1 }).unwrap();
    assert_eq!(r.next(), EventKind::PlayFinished { ch: B1, id: 5, reason: PlayEnd::Stopped });

    r.card.play(T, B1, 6, PlaySource::Prompt(prompt.clone()), true).unwrap();
    r.wait_log("dx_playiottdata(101,barge-in)");
    r.dtmf(1, '5');
    assert_eq!(r.next(), EventKind::PlayFinished { ch: B1, id: 6, reason: PlayEnd::Digit });
    assert!(
        matches!(r.next(), EventKind::Digit { ch: B1, digit: '5', .. }),
        "the barge-in digit is collected"
    );

    // A new play replaces a running one, which ends as stopped; the next end is the new one's.
    r.card.play(T, B1, 8, PlaySource::Prompt(prompt.clone()), false).unwrap();
    r.card.play(T, B1, 9, PlaySource::Prompt(prompt), false).unwrap();
    assert_eq!(r.next(), EventKind::PlayFinished { ch: B1, id: 8, reason: PlayEnd::Stopped });
    r.line("emu_play_end", 1);
    assert_eq!(r.next(), EventKind::PlayFinished { ch: B1, id: 9, reason: PlayEnd::Completed });

    let err = r.card.play(T, B1, 7, PlaySource::Prompt("/nonexistent/p.wav".into()), false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Media);
    assert!(err.message().contains("/nonexistent/p.wav"));
}

#[test]
fn connect_and_listen_route_the_network_timeslots() {
    let mut r = rig();
    r.card.connect(T, B1, B2).unwrap();
    r.card.execute(T, Command::Disconnect { ch: B1 }).unwrap();
    r.card.execute(T, Command::Listen { listener: B2, source: B1 }).unwrap();
    r.card.execute(T, Command::Disconnect { ch: B1 }).unwrap();
    let log = r.emu.log();
    for call in [
        "nr_scroute(201,3,202,3,full)",
        "nr_scunroute(201,3,202,3,full)",
        "nr_scroute(201,3,202,3,half)",
        "nr_scunroute(201,3,202,3,half)",
    ] {
        assert!(log.contains(call), "{call} missing from\n{log}");
    }
    r.card.send_digits(T, B1, "123").unwrap();
    assert!(r.emu.log().contains("dx_dial(101,123)"));
}

#[test]
fn a_blocked_line_device_is_reported_and_returns_to_service() {
    let r = rig();
    let f: unsafe extern "C" fn(c_int, c_int) = r.emu.f("emu_block");
    unsafe { f(1, 1) };
    assert!(matches!(r.next(), EventKind::Blocked { ch: B1, .. }));
    unsafe { f(1, 0) };
    assert_eq!(r.next(), EventKind::Unblocked { ch: B1 });
}

#[test]
fn a_missing_runtime_library_is_a_config_error_naming_the_path() {
    let _serial = emu::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, _rx) = bounded(1);
    let options =
        DialogicOptions { card: 1, sdk_path: "/usr/dialogic/lib/libgc.so".into(), channels: Vec::new() };
    let err = DialogicCard::open(options, tx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("/usr/dialogic/lib/libgc.so") && err.message().contains("GlobalCall"));
}

#[test]
fn a_library_that_lacks_an_sdk_function_is_refused_by_name() {
    let _serial = emu::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let synway = emu::build("synway_emu");
    let (tx, _rx) = bounded(1);
    let options = DialogicOptions { card: 1, sdk_path: synway, channels: Vec::new() };
    let err = DialogicCard::open(options, tx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("no function gc_Start"), "{}", err.message());
}

#[test]
fn probing_finds_the_library_and_checks_every_function_without_starting_it() {
    let _serial = emu::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = emu::build("dialogic_emu");
    hotline_drivers::vendor::dialogic::probe(&path).expect("the emulator has every function");
    let synway = emu::build("synway_emu");
    hotline_drivers::vendor::synway::probe(&synway).expect("the SynCTI emulator has every function");
    let err = hotline_drivers::vendor::synway::probe(&path).unwrap_err();
    assert!(err.message().contains("no function SsmStartCti"), "{}", err.message());
    let err =
        hotline_drivers::vendor::dialogic::probe(std::path::Path::new("/nonexistent/libgc.so")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[test]
fn maintenance_blocking_takes_a_line_out_of_service_and_back() {
    let mut r = rig();
    r.card.execute(T, Command::Block { ch: B2 }).unwrap();
    assert!(matches!(r.next(), EventKind::Blocked { ch: B2, .. }));
    assert!(r.emu.log().contains("gc_SetChanState(line=2,out-of-service)"));
    assert_eq!(
        r.card.place_call(T, B2, "1", None, Default::default()).unwrap_err().kind(),
        ErrorKind::InvalidState
    );
    r.card.execute(T, Command::Unblock { ch: B2 }).unwrap();
    assert_eq!(r.next(), EventKind::Unblocked { ch: B2 });
    r.answered_inbound();
    assert_eq!(r.card.execute(T, Command::Block { ch: B1 }).unwrap_err().kind(), ErrorKind::InvalidState);
}
