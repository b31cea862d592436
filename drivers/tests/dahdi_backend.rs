//! The DAHDI backend against the in-process double of DAHDI's channel device (the kernel
//! module cannot run here; the double follows DAHDI's documented behaviour). Each test
//! plays the far end (a phone, an exchange line, a span) and checks what the backend
//! reports and what it tells DAHDI to do.
#![cfg(feature = "dahdi")]

use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use hotline_drivers::channel::ChannelState;
use hotline_drivers::command::{Command, MemberRights, PlaySource};
use hotline_drivers::config::{self, CardConfig};
use hotline_drivers::dahdi::double::DahdiDouble;
use hotline_drivers::dahdi::{Conf, DahdiCard, DahdiOptions, Hook, Law};
use hotline_drivers::dsp::callerid::{fsk_audio, FskReceiver, FskStandard, MessageFormat};
use hotline_drivers::dsp::dtmf::{DtmfDetector, DtmfGenerator, DtmfParams};
use hotline_drivers::dsp::tones::{ToneDetector, ToneGenerator, TonePlan};
use hotline_drivers::event::{Alarm, PlayEnd, Side};
use hotline_drivers::signal::{CallerId, Tone};
use hotline_drivers::{Card, CardEvent, Cause, ChannelId, ConferenceId, EventKind, Instant};
use hotline_sys::dahdi as sys;

const FXO1: ChannelId = ChannelId::fxo(1, 1);
const FXO2: ChannelId = ChannelId::fxo(1, 2);
const FXS1: ChannelId = ChannelId::fxs(1, 1);
const FXS2: ChannelId = ChannelId::fxs(1, 2);
// DahdiOptions::numbered: span 1 takes channels 1-31, then FXO 1-2, then FXS 1-2.
const CH_FXO1: i32 = 32;
const CH_FXO2: i32 = 33;
const CH_FXS1: i32 = 34;
const CH_FXS2: i32 = 35;

struct Rig {
    card: DahdiCard<hotline_drivers::dahdi::double::DoubleChannel>,
    dahdi: DahdiDouble,
    events: Receiver<CardEvent>,
    now: Instant,
    plan: TonePlan,
}

fn card_config(fxs_caller_id: &str, disconnect: &str) -> CardConfig {
    let text = r#"
[[card]]
id = 1
backend = "dahdi"
[[card.span]]
span = 1
signalling = "isdn_pri"
[card.fxo]
ports = "1-2"
caller_id = "fsk_bell202"
disconnect = "DISCONNECT"
[card.fxs]
ports = "1-2"
caller_id = "FXS_CID"
"#
    .replace("FXS_CID", fxs_caller_id)
    .replace("DISCONNECT", disconnect);
    config::parse(&text, "test.toml").unwrap().cards.remove(0)
}

fn rig() -> Rig {
    rig_with("fsk_bell202")
}

fn rig_with(fxs_caller_id: &str) -> Rig {
    rig_cfg(fxs_caller_id, "busy_tone")
}

fn rig_cfg(fxs_caller_id: &str, disconnect: &str) -> Rig {
    let dahdi = DahdiDouble::new();
    dahdi.add_span(1, "TE2/0/1", "T2XXP (PCI) Card 0 Span 1");
    for ts in 1..=31 {
        let sig = if ts == 16 { sys::DAHDI_SIG_HARDHDLC } else { sys::DAHDI_SIG_CLEAR };
        dahdi.add_channel(ts, 1, ts, sig);
    }
    dahdi.add_span(2, "WCTDM/0", "Wildcard TDM410P");
    dahdi.add_channel(CH_FXO1, 2, 1, sys::DAHDI_SIG_FXSKS);
    dahdi.add_channel(CH_FXO2, 2, 2, sys::DAHDI_SIG_FXSKS);
    dahdi.add_channel(CH_FXS1, 2, 3, sys::DAHDI_SIG_FXOKS);
    dahdi.add_channel(CH_FXS2, 2, 4, sys::DAHDI_SIG_FXOKS);
    let cfg = card_config(fxs_caller_id, disconnect);
    let (tx, events) = unbounded();
    let mut opener = dahdi.clone();
    let card = DahdiCard::open(&cfg, &DahdiOptions::numbered(&cfg), &mut opener, tx).unwrap();
    dahdi.advance_to(Instant::ZERO);
    Rig { card, dahdi, events, now: Instant::ZERO, plan: cfg.tone_plan }
}

impl Rig {
    /// Run DAHDI and the backend for `d`, 20 ms at a time; the events that came.
    fn run(&mut self, d: Duration) -> Vec<EventKind> {
        let end = self.now + d;
        let mut out = Vec::new();
        while self.now < end {
            self.now += Duration::from_millis(20);
            self.dahdi.advance_to(self.now);
            self.card.poll(self.now).unwrap();
            out.extend(self.events.try_iter().map(|e| e.kind));
        }
        out
    }
    fn exec(&mut self, c: Command) -> Vec<EventKind> {
        self.card.execute(self.now, c).unwrap();
        self.events.try_iter().map(|e| e.kind).collect()
    }
    fn state(&self, ch: ChannelId) -> ChannelState {
        self.card.channels().into_iter().find(|c| c.id == ch).unwrap().state
    }
    fn tone(&self, t: Tone, d: Duration) -> Vec<i16> {
        let mut g = ToneGenerator::for_tone(&self.plan, t);
        let mut v = vec![0i16; (d.as_millis() * 8) as usize];
        g.fill(&mut v);
        v
    }
}

fn sine(hz: f64, d: Duration) -> Vec<i16> {
    (0..(d.as_millis() * 8))
        .map(|n| (8000.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / 8000.0).sin()) as i16)
        .collect()
}

/// Level of `hz` in `s` (Goertzel), as the amplitude of a sine.
fn level_at(s: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let (mut a, mut b) = (0.0f64, 0.0f64);
    for (n, &x) in s.iter().enumerate() {
        a += f64::from(x) * (w * n as f64).cos();
        b += f64::from(x) * (w * n as f64).sin();
    }
    2.0 * (a * a + b * b).sqrt() / s.len().max(1) as f64
}

fn tones_in(plan: &TonePlan, s: &[i16]) -> Vec<Tone> {
    let mut d = ToneDetector::new(plan);
    let mut out = Vec::new();
    d.process(s, &mut out);
    out.into_iter().map(|e| e.tone).collect()
}

#[test]
fn opening_the_card_sets_160_sample_blocks_and_the_law_on_every_channel() {
    let r = rig();
    for channo in [1, 15, 17, 31, CH_FXO1, CH_FXS2] {
        assert_eq!(r.dahdi.audio_setup(channo), (160, Some(Law::Alaw)), "channel {channo}");
    }
    // The D-channel is left to the PRI stack.
    assert_eq!(r.dahdi.audio_setup(16), (0, None));
    assert_eq!(r.card.channels().len(), 30 + 4);
}

#[test]
fn a_channel_with_the_wrong_signalling_is_a_configuration_error_naming_it() {
    let dahdi = DahdiDouble::new();
    dahdi.add_span(1, "WCTDM/0", "");
    dahdi.add_channel(1, 1, 1, sys::DAHDI_SIG_FXOKS); // an FXS port where an FXO port is configured
    let cfg = config::parse("[[card]]\nid = 1\nbackend = \"dahdi\"\n[card.fxo]\nports = \"1\"\n", "t.toml")
        .unwrap();
    let (tx, _rx) = unbounded();
    let mut opener = dahdi.clone();
    let err =
        DahdiCard::open(&cfg.cards[0], &DahdiOptions::numbered(&cfg.cards[0]), &mut opener, tx).unwrap_err();
    assert_eq!(err.kind(), hotline_drivers::ErrorKind::Config);
    assert!(err.message().contains("1/fxo/1") && err.message().contains("fxsks"), "{}", err.message());
}

#[test]
fn an_agent_lifting_the_handset_is_reported_off_hook_and_hears_dial_tone_until_hanging_up() {
    let mut r = rig();
    r.dahdi.phone_off_hook(CH_FXS1);
    let ev = r.run(Duration::from_millis(40));
    assert_eq!(ev, vec![EventKind::OffHook { ch: FXS1 }]);
    assert_eq!(r.state(FXS1), ChannelState::OffHook);
    r.run(Duration::from_millis(1500));
    let heard = r.dahdi.take_heard(CH_FXS1);
    assert!(tones_in(&r.plan, &heard).contains(&Tone::Dial), "the station hears dial tone");
    r.dahdi.phone_flash(CH_FXS1);
    assert_eq!(r.run(Duration::from_millis(40)), vec![EventKind::HookFlash { ch: FXS1 }]);
    r.dahdi.phone_on_hook(CH_FXS1);
    assert_eq!(r.run(Duration::from_millis(40)), vec![EventKind::OnHook { ch: FXS1 }]);
    assert_eq!(r.state(FXS1), ChannelState::Idle);
}

#[test]
fn ringing_a_station_sends_fsk_caller_id_between_the_first_and_second_ring() {
    let mut r = rig();
    let cid = CallerId { number: Some("13800138000".into()), ..CallerId::default() };
    r.exec(Command::RingStation { ch: FXS1, caller_id: Some(cid) });
    assert_eq!(r.dahdi.last_hook(CH_FXS1), Some(Hook::Ring));
    assert!(r.dahdi.is_ringing(CH_FXS1));
    assert_eq!(r.state(FXS1), ChannelState::Alerting);
    // China's cadence (the default plan): 1 s on, 4 s off; the caller ID fits in the gap.
    r.run(Duration::from_millis(4500));
    let heard = r.dahdi.take_heard(CH_FXS1);
    let mut rx = FskReceiver::new(FskStandard::Bell202);
    let mut found = Vec::new();
    rx.process(&heard, &mut found);
    assert_eq!(found.len(), 1, "one caller ID message");
    assert_eq!(found[0].result.as_ref().unwrap().number.as_deref(), Some("13800138000"));
    let ended_at_ms = found[0].at / 8;
    assert!(
        ended_at_ms > 1500 && ended_at_ms < 5000,
        "sent after the first ring, before the second: {ended_at_ms} ms"
    );
    r.dahdi.phone_off_hook(CH_FXS1);
    assert_eq!(r.run(Duration::from_millis(40)), vec![EventKind::OffHook { ch: FXS1 }]);
    assert!(!r.dahdi.is_ringing(CH_FXS1), "ring trip stops the ringing");
    assert_eq!(r.state(FXS1), ChannelState::Connected);
}

fn offer_with_caller_id(r: &mut Rig, channo: i32, number: &str) -> Vec<EventKind> {
    let cid = CallerId { number: Some(number.into()), ..CallerId::default() };
    let fsk = fsk_audio(&cid, FskStandard::Bell202, MessageFormat::Mdmf, -13.5).unwrap();
    r.dahdi.exchange_ring(channo);
    // The ring burst (1 s), 500 ms of quiet, then the caller ID.
    r.dahdi.line_sends(channo, &vec![0; 12_000]);
    r.dahdi.line_sends(channo, &fsk);
    r.run(Duration::from_millis(3500))
}

#[test]
fn an_fxo_line_ringing_with_fsk_caller_id_is_offered_with_the_number_and_answered_off_hook() {
    let mut r = rig();
    let ev = offer_with_caller_id(&mut r, CH_FXO1, "02150001234");
    assert!(
        ev.contains(&EventKind::Offered {
            ch: FXO1,
            ani: Some("02150001234".into()),
            dnis: String::new(),
            category: Default::default()
        }),
        "{ev:?}"
    );
    assert_eq!(r.state(FXO1), ChannelState::Offered);
    assert!(!r.dahdi.line_seized(CH_FXO1));
    let ev = r.exec(Command::Answer { ch: FXO1 });
    assert_eq!(ev, vec![EventKind::Answered { ch: FXO1 }]);
    assert!(r.dahdi.line_seized(CH_FXO1), "answering takes the line off hook");
    assert_eq!(r.dahdi.last_hook(CH_FXO1), Some(Hook::OffHook));
}

#[test]
fn busy_tone_on_an_answered_fxo_line_means_the_caller_hung_up() {
    let mut r = rig();
    offer_with_caller_id(&mut r, CH_FXO1, "8888");
    r.exec(Command::Answer { ch: FXO1 });
    let busy = r.tone(Tone::Busy, Duration::from_secs(3));
    r.dahdi.line_sends(CH_FXO1, &busy);
    let ev = r.run(Duration::from_secs(3));
    assert!(ev.contains(&EventKind::ToneDetected { ch: FXO1, tone: Tone::Busy }), "{ev:?}");
    assert!(ev.contains(&EventKind::Released { ch: FXO1, cause: Cause::NORMAL_CLEARING, by: Side::Remote }));
    assert!(!r.dahdi.line_seized(CH_FXO1), "the line is put back on hook");
    assert_eq!(r.state(FXO1), ChannelState::Idle);
}

#[test]
fn a_line_without_caller_id_is_offered_at_the_second_ring_and_released_when_the_ringing_stops() {
    let mut r = rig();
    r.dahdi.exchange_ring(CH_FXO2);
    assert!(r.run(Duration::from_secs(5)).is_empty(), "waiting for caller ID until the second ring");
    r.dahdi.exchange_ring(CH_FXO2);
    let ev = r.run(Duration::from_millis(40));
    assert_eq!(
        ev,
        vec![EventKind::Offered { ch: FXO2, ani: None, dnis: String::new(), category: Default::default() }]
    );
    // No third ring: the caller gave up (1 s + 4 s cadence, and a margin).
    let ev = r.run(Duration::from_secs(7));
    assert_eq!(ev, vec![EventKind::Released { ch: FXO2, cause: Cause::NORMAL_CLEARING, by: Side::Remote }]);
    assert_eq!(r.state(FXO2), ChannelState::Idle);
}

#[test]
fn a_red_alarm_on_the_span_raises_los_and_blocks_its_channels_until_it_clears() {
    let mut r = rig();
    r.dahdi.raise_span_alarm(1, sys::DAHDI_ALARM_RED | sys::DAHDI_ALARM_LOS);
    let ev = r.run(Duration::from_millis(40));
    assert_eq!(ev[0], EventKind::SpanAlarm { card: 1, span: 1, alarm: Alarm::Los, raised: true });
    let blocked = ev.iter().filter(|e| matches!(e, EventKind::Blocked { .. })).count();
    assert_eq!(blocked, 30, "every bearer channel of the span");
    assert_eq!(r.state(ChannelId::e1(1, 1, 5)), ChannelState::Blocked);
    assert_eq!(r.state(FXO1), ChannelState::Idle, "the analog span is not affected");
    let err = r.card.execute(
        r.now,
        Command::Play {
            ch: ChannelId::e1(1, 1, 5),
            id: 1,
            source: PlaySource::Tone(Tone::Dial),
            barge_in: false,
        },
    );
    assert!(err.is_ok(), "media commands still work on a blocked channel's device");
    r.dahdi.clear_span_alarm(1);
    let ev = r.run(Duration::from_millis(40));
    assert_eq!(ev[0], EventKind::SpanAlarm { card: 1, span: 1, alarm: Alarm::Los, raised: false });
    assert_eq!(ev.iter().filter(|e| matches!(e, EventKind::Unblocked { .. })).count(), 30);
    assert_eq!(r.state(ChannelId::e1(1, 1, 5)), ChannelState::Idle);
}

#[test]
fn an_alarm_on_an_analog_line_during_a_call_releases_it_and_blocks_the_port() {
    let mut r = rig();
    offer_with_caller_id(&mut r, CH_FXO1, "1");
    r.exec(Command::Answer { ch: FXO1 });
    // The analog span has no E1 number: no SpanAlarm, but its ports are blocked.
    r.dahdi.raise_span_alarm(2, sys::DAHDI_ALARM_RED);
    let ev = r.run(Duration::from_millis(40));
    assert!(ev.iter().all(|e| !matches!(e, EventKind::SpanAlarm { .. })), "{ev:?}");
    assert!(ev.contains(&EventKind::Released {
        ch: FXO1,
        cause: Cause::NETWORK_OUT_OF_ORDER,
        by: Side::Remote
    }));
    assert!(ev.iter().any(|e| matches!(e, EventKind::Blocked { ch, .. } if *ch == FXO1)));
    assert_eq!(r.state(FXO1), ChannelState::Blocked);
    assert!(!r.dahdi.line_seized(CH_FXO1), "the line is put back on hook");
    let err = r.card.execute(
        r.now,
        Command::PlaceCall { ch: FXO1, called: "1".into(), calling: None, category: Default::default() },
    );
    assert_eq!(err.unwrap_err().kind(), hotline_drivers::ErrorKind::Blocked);
}

#[test]
fn kewl_start_loop_current_drop_means_the_far_end_hung_up() {
    let mut r = rig();
    offer_with_caller_id(&mut r, CH_FXO1, "1");
    r.exec(Command::Answer { ch: FXO1 });
    r.dahdi.exchange_drops_loop_current(CH_FXO1);
    let ev = r.run(Duration::from_millis(40));
    assert_eq!(ev, vec![EventKind::Released { ch: FXO1, cause: Cause::NORMAL_CLEARING, by: Side::Remote }]);
    assert!(!r.dahdi.line_seized(CH_FXO1));
}

#[test]
fn connect_puts_both_channels_in_one_dahdi_conference_as_talker_and_listener() {
    let mut r = rig();
    r.exec(Command::Connect { a: FXO1, b: FXS1 });
    let (a, b) = (r.dahdi.conf(CH_FXO1), r.dahdi.conf(CH_FXS1));
    assert_ne!(a.confno, 0, "DAHDI allocated a conference");
    assert_eq!(a, b);
    assert_eq!(a.mode, sys::DAHDI_CONF_CONF | sys::DAHDI_CONF_TALKER | sys::DAHDI_CONF_LISTENER);
    // The first SETCONF asked for conference 0 (DAHDI picks), the second joined it.
    let log = r.dahdi.conf_log();
    assert_eq!(log[0].1.confno, 0);
    assert_eq!(log[1].1.confno, a.confno);
    // Sound crosses: the caller's 1 kHz reaches the agent's phone.
    r.dahdi.line_sends(CH_FXO1, &sine(1000.0, Duration::from_millis(400)));
    r.run(Duration::from_millis(400));
    assert!(level_at(&r.dahdi.take_heard(CH_FXS1), 1000.0) > 4000.0);
    r.exec(Command::Disconnect { ch: FXS1 });
    assert_eq!(r.dahdi.conf(CH_FXO1), Conf::NORMAL);
    assert_eq!(r.dahdi.conf(CH_FXS1), Conf::NORMAL);
}

#[test]
fn silent_monitoring_sets_conf_monitor_on_the_source_channel() {
    let mut r = rig();
    r.exec(Command::Listen { listener: FXS2, source: FXO1 });
    assert_eq!(r.dahdi.conf(CH_FXS2), Conf { confno: CH_FXO1, mode: sys::DAHDI_CONF_MONITOR });
    r.dahdi.line_sends(CH_FXO1, &sine(700.0, Duration::from_millis(400)));
    r.dahdi.line_sends(CH_FXS2, &sine(1300.0, Duration::from_millis(400)));
    r.run(Duration::from_millis(400));
    assert!(level_at(&r.dahdi.take_heard(CH_FXS2), 700.0) > 4000.0, "the supervisor hears the caller");
    assert!(
        level_at(&r.dahdi.take_heard(CH_FXO1), 1300.0) < 100.0,
        "the caller hears nothing of the supervisor"
    );
}

#[test]
fn a_whispering_supervisor_is_heard_by_the_agent_but_not_by_the_caller_then_barges_in() {
    let mut r = rig();
    let conf = ConferenceId { card: 1, bridge: 1 };
    r.exec(Command::JoinConference { conf, ch: FXO1, rights: MemberRights::full() });
    r.exec(Command::JoinConference { conf, ch: FXS1, rights: MemberRights::full() });
    let whisper = MemberRights { talk: true, listen: true, hidden_from: vec![FXO1] };
    r.exec(Command::JoinConference { conf, ch: FXS2, rights: whisper });
    let confno = r.dahdi.conf(CH_FXO1).confno;
    let full = sys::DAHDI_CONF_CONF | sys::DAHDI_CONF_TALKER | sys::DAHDI_CONF_LISTENER;
    assert_eq!(r.dahdi.conf(CH_FXS1), Conf { confno, mode: full });
    assert_eq!(
        r.dahdi.conf(CH_FXS2),
        Conf { confno, mode: sys::DAHDI_CONF_CONF | sys::DAHDI_CONF_LISTENER },
        "in DAHDI the whisperer only listens"
    );
    r.dahdi.line_sends(CH_FXS2, &sine(1000.0, Duration::from_millis(600)));
    r.dahdi.line_sends(CH_FXO1, &sine(500.0, Duration::from_millis(600)));
    r.run(Duration::from_millis(600));
    let agent = r.dahdi.take_heard(CH_FXS1);
    let caller = r.dahdi.take_heard(CH_FXO1);
    let supervisor = r.dahdi.take_heard(CH_FXS2);
    assert!(level_at(&agent, 1000.0) > 4000.0, "the agent hears the whisper");
    assert!(level_at(&agent, 500.0) > 4000.0, "and the caller");
    assert!(level_at(&caller, 1000.0) < 100.0, "the caller does not hear the supervisor");
    assert!(level_at(&supervisor, 500.0) > 4000.0, "the supervisor hears the caller");
    // Barge in: the supervisor becomes an ordinary member.
    r.exec(Command::SetMemberRights { conf, ch: FXS2, rights: MemberRights::full() });
    assert_eq!(r.dahdi.conf(CH_FXS2), Conf { confno, mode: full });
    r.dahdi.line_sends(CH_FXS2, &sine(1000.0, Duration::from_millis(400)));
    r.run(Duration::from_millis(400));
    assert!(level_at(&r.dahdi.take_heard(CH_FXO1), 1000.0) > 4000.0, "now the caller hears the supervisor");
    for ch in [FXO1, FXS1, FXS2] {
        r.exec(Command::LeaveConference { conf, ch });
    }
    assert_eq!(r.dahdi.conf(CH_FXS2), Conf::NORMAL);
}

#[test]
fn a_call_out_on_an_fxo_line_waits_for_dial_tone_dials_in_band_and_hears_busy() {
    let mut r = rig();
    r.exec(Command::PlaceCall {
        ch: FXO2,
        called: "95511".into(),
        calling: None,
        category: Default::default(),
    });
    assert!(r.dahdi.line_seized(CH_FXO2));
    assert_eq!(r.state(FXO2), ChannelState::Dialing);
    let dial = r.tone(Tone::Dial, Duration::from_millis(1500));
    r.dahdi.line_sends(CH_FXO2, &dial);
    r.run(Duration::from_millis(1500));
    r.run(Duration::from_millis(1200));
    let heard = r.dahdi.take_heard(CH_FXO2);
    let mut det = DtmfDetector::new();
    let mut digits = Vec::new();
    det.process(&heard, &mut digits);
    det.finish(&mut digits);
    assert_eq!(digits.iter().map(|d| d.digit).collect::<String>(), "95511");
    let busy = r.tone(Tone::Busy, Duration::from_secs(3));
    r.dahdi.line_sends(CH_FXO2, &busy);
    let ev = r.run(Duration::from_secs(3));
    assert!(
        ev.contains(&EventKind::Released { ch: FXO2, cause: Cause::USER_BUSY, by: Side::Remote }),
        "{ev:?}"
    );
    assert!(!r.dahdi.line_seized(CH_FXO2));
}

#[test]
fn a_line_that_gives_no_dial_tone_is_released_as_out_of_order() {
    let mut r = rig();
    r.exec(Command::PlaceCall { ch: FXO2, called: "1".into(), calling: None, category: Default::default() });
    let ev = r.run(Duration::from_secs(4));
    assert_eq!(
        ev,
        vec![EventKind::Released { ch: FXO2, cause: Cause::NETWORK_OUT_OF_ORDER, by: Side::Local }]
    );
}

#[test]
fn digits_from_the_caller_are_reported_and_stop_a_barge_in_prompt() {
    let mut r = rig();
    offer_with_caller_id(&mut r, CH_FXO1, "1");
    r.exec(Command::Answer { ch: FXO1 });
    r.exec(Command::Play { ch: FXO1, id: 7, source: PlaySource::Tone(Tone::Ringback), barge_in: true });
    let digits = DtmfGenerator::generate("42", DtmfParams::default()).unwrap();
    r.dahdi.line_sends(CH_FXO1, &digits);
    let ev = r.run(Duration::from_millis(600));
    let got: String = ev
        .iter()
        .filter_map(|e| if let EventKind::Digit { digit, .. } = e { Some(*digit) } else { None })
        .collect();
    assert_eq!(got, "42");
    assert!(ev.contains(&EventKind::PlayFinished { ch: FXO1, id: 7, reason: PlayEnd::Digit }));
    let start =
        ev.iter().find_map(|e| if let EventKind::Digit { start, .. } = e { Some(*start) } else { None });
    let first = start.unwrap();
    assert!(
        first < r.now && r.now - first < Duration::from_millis(700),
        "digit times are in the run: {first}"
    );
}

#[test]
fn a_tap_gets_every_received_frame_until_released() {
    let mut r = rig();
    offer_with_caller_id(&mut r, CH_FXO1, "1");
    r.exec(Command::Answer { ch: FXO1 });
    let (tx, rx) = unbounded();
    r.exec(Command::StartTap { ch: FXO1, id: 3, sink: tx });
    r.dahdi.line_sends(CH_FXO1, &sine(440.0, Duration::from_millis(200)));
    r.run(Duration::from_millis(200));
    let ev = r.exec(Command::Release { ch: FXO1, cause: Cause::NORMAL_CLEARING });
    let frames: Vec<_> = rx.try_iter().collect();
    assert_eq!(frames.len(), 10);
    assert!(frames.iter().all(|f| f.samples.len() == 160 && f.ch == FXO1));
    assert!(level_at(&frames.iter().flat_map(|f| f.samples.clone()).collect::<Vec<_>>(), 440.0) > 4000.0);
    assert!(ev.contains(&EventKind::RecordFinished { ch: FXO1, id: 3, frames: 10, dropped: 0 }));
    assert!(ev.contains(&EventKind::Released { ch: FXO1, cause: Cause::NORMAL_CLEARING, by: Side::Local }));
}

#[test]
fn call_control_on_an_e1_channel_without_pri_signalling_is_unsupported_and_says_so() {
    let mut r = rig();
    let err = r.card.execute(r.now, Command::Answer { ch: ChannelId::e1(1, 1, 1) }).unwrap_err();
    assert_eq!(err.kind(), hotline_drivers::ErrorKind::Unsupported);
    assert!(err.message().contains("libpri"), "{}", err.message());
}

#[test]
fn on_a_line_without_answer_supervision_speech_after_ringback_is_the_answer() {
    let mut r = rig();
    r.exec(Command::PlaceCall { ch: FXO2, called: "8".into(), calling: None, category: Default::default() });
    let dial = r.tone(Tone::Dial, Duration::from_millis(1300));
    r.dahdi.line_sends(CH_FXO2, &dial);
    r.dahdi.line_sends(CH_FXO2, &vec![0; 4000]);
    // China ringback: 1 s on, 4 s off, twice; answered 1.5 s into the second silence.
    let ringback = r.tone(Tone::Ringback, Duration::from_millis(6500));
    r.dahdi.line_sends(CH_FXO2, &ringback);
    let ev = r.run(Duration::from_millis(8300));
    assert!(ev.contains(&EventKind::Alerting { ch: FXO2 }), "{ev:?}");
    assert!(!ev.contains(&EventKind::Answered { ch: FXO2 }), "ringback alone is not an answer: {ev:?}");
    let hello: Vec<i16> = sine(310.0, Duration::from_millis(500))
        .iter()
        .zip(sine(620.0, Duration::from_millis(500)))
        .map(|(a, b)| a / 2 + b / 3)
        .collect();
    r.dahdi.line_sends(CH_FXO2, &hello);
    let ev = r.run(Duration::from_millis(500));
    assert_eq!(ev, vec![EventKind::Answered { ch: FXO2 }]);
    assert_eq!(r.state(FXO2), ChannelState::Connected);
}

#[test]
fn dtmf_caller_id_goes_to_the_station_before_the_first_ring() {
    let mut r = rig_with("dtmf");
    let cid = CallerId { number: Some("5551234".into()), ..CallerId::default() };
    r.exec(Command::RingStation { ch: FXS2, caller_id: Some(cid) });
    assert!(!r.dahdi.is_ringing(CH_FXS2), "not yet: the digits go first");
    r.run(Duration::from_millis(2000));
    assert!(r.dahdi.is_ringing(CH_FXS2), "ringing once the digits are out");
    let heard = r.dahdi.take_heard(CH_FXS2);
    let mut rx = hotline_drivers::dsp::callerid::DtmfCallerIdReceiver::new();
    let mut found = Vec::new();
    rx.process(&heard, &mut found);
    rx.finish(&mut found);
    assert_eq!(found[0].result.as_ref().unwrap().number.as_deref(), Some("5551234"));
    r.exec(Command::StopRinging { ch: FXS2 });
    assert!(!r.dahdi.is_ringing(CH_FXS2));
    assert_eq!(r.dahdi.last_hook(CH_FXS2), Some(Hook::RingOff));
    assert_eq!(r.state(FXS2), ChannelState::Idle);
}

/// A stand-in for the PRI stack on span 1 (a test fixture): it records the commands it
/// gets and reports the states the test sets.
#[derive(Debug, Default, Clone)]
struct ScriptedPri {
    commands: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    states: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<ChannelId, ChannelState>>>,
}

impl hotline_drivers::dahdi::SpanSignalling for ScriptedPri {
    fn execute(&mut self, _now: Instant, command: Command) -> hotline_drivers::error::Result<()> {
        self.commands.lock().unwrap().push(format!("{command:?}"));
        Ok(())
    }
    fn poll(&mut self, _now: Instant) -> hotline_drivers::error::Result<Option<Instant>> {
        Ok(None)
    }
    fn state(&self, ch: ChannelId) -> ChannelState {
        self.states.lock().unwrap().get(&ch).copied().unwrap_or(ChannelState::Idle)
    }
}

#[test]
fn e1_call_control_goes_to_the_span_signalling_and_media_follows_its_calls() {
    let mut r = rig();
    let pri = ScriptedPri::default();
    r.card.set_span_signalling(1, Box::new(pri.clone()));
    let b1 = ChannelId::e1(1, 1, 1);
    pri.states.lock().unwrap().insert(b1, ChannelState::Offered);
    r.run(Duration::from_millis(20));
    r.exec(Command::Answer { ch: b1 });
    assert!(pri.commands.lock().unwrap()[0].starts_with("Answer"), "the PRI stack got the answer");
    pri.states.lock().unwrap().insert(b1, ChannelState::Connected);
    let (tx, rx) = unbounded();
    r.exec(Command::StartTap { ch: b1, id: 9, sink: tx });
    let digits = DtmfGenerator::generate("7", DtmfParams::default()).unwrap();
    r.dahdi.line_sends(1, &digits);
    let ev = r.run(Duration::from_millis(300));
    assert!(ev.iter().any(|e| matches!(e, EventKind::Digit { ch, digit: '7', .. } if *ch == b1)), "{ev:?}");
    assert_eq!(r.state(b1), ChannelState::Connected);
    // The PRI stack clears the call: the tap ends with it.
    pri.states.lock().unwrap().insert(b1, ChannelState::Idle);
    let ev = r.run(Duration::from_millis(20));
    let frames = rx.try_iter().count() as u64;
    assert!(frames >= 15);
    assert!(ev.contains(&EventKind::RecordFinished { ch: b1, id: 9, frames, dropped: 0 }), "{ev:?}");
    assert_eq!(r.state(b1), ChannelState::Idle);
}

#[test]
fn a_driver_that_reports_both_the_start_and_the_end_of_a_ring_still_counts_one_ring() {
    let mut r = rig();
    // RINGBEGIN at the start of the burst, RINGOFFHOOK at its end (1 s later).
    r.dahdi.exchange_ring(CH_FXO2);
    r.run(Duration::from_millis(1000));
    r.dahdi.exchange_ring(CH_FXO2);
    let ev = r.run(Duration::from_millis(3000));
    assert!(ev.is_empty(), "still one ring, still waiting for caller ID: {ev:?}");
    r.dahdi.exchange_ring(CH_FXO2);
    let ev = r.run(Duration::from_millis(40));
    assert!(matches!(ev.as_slice(), [EventKind::Offered { ani: None, .. }]), "{ev:?}");
}

#[test]
fn a_rejected_call_on_an_fxo_line_rings_out_without_being_offered_again() {
    let mut r = rig();
    offer_with_caller_id(&mut r, CH_FXO1, "1234");
    r.exec(Command::Accept { ch: FXO1 });
    let ev = r.exec(Command::Reject { ch: FXO1, cause: Cause::USER_BUSY });
    assert_eq!(ev, vec![EventKind::Released { ch: FXO1, cause: Cause::USER_BUSY, by: Side::Local }]);
    assert!(!r.dahdi.line_seized(CH_FXO1), "an analog line cannot refuse: it is left to ring");
    // The exchange keeps ringing: no new offer, and nothing when it stops.
    for _ in 0..2 {
        r.dahdi.exchange_ring(CH_FXO1);
        assert!(r.run(Duration::from_secs(5)).is_empty());
    }
    assert!(r.run(Duration::from_secs(3)).is_empty());
    // The next call is offered again.
    let ev = offer_with_caller_id(&mut r, CH_FXO1, "5678");
    assert!(ev.iter().any(|e| matches!(e, EventKind::Offered { ani: Some(a), .. } if a == "5678")), "{ev:?}");
}

#[test]
fn on_a_polarity_reversal_line_the_reversals_mark_answer_and_hang_up() {
    let mut r = rig_cfg("fsk_bell202", "polarity_reversal");
    r.exec(Command::PlaceCall {
        ch: FXO1,
        called: "10086".into(),
        calling: None,
        category: Default::default(),
    });
    let dial = r.tone(Tone::Dial, Duration::from_millis(1300));
    r.dahdi.line_sends(CH_FXO1, &dial);
    r.run(Duration::from_millis(3000));
    let ringback = r.tone(Tone::Ringback, Duration::from_millis(6000));
    r.dahdi.line_sends(CH_FXO1, &ringback);
    let ev = r.run(Duration::from_millis(6000));
    assert_eq!(
        ev,
        vec![EventKind::ToneDetected { ch: FXO1, tone: Tone::Ringback }, EventKind::Alerting { ch: FXO1 }]
    );
    r.dahdi.exchange_polarity_reversal(CH_FXO1);
    assert_eq!(r.run(Duration::from_millis(40)), vec![EventKind::Answered { ch: FXO1 }]);
    r.dahdi.exchange_polarity_reversal(CH_FXO1);
    let ev = r.run(Duration::from_millis(40));
    assert_eq!(ev, vec![EventKind::Released { ch: FXO1, cause: Cause::NORMAL_CLEARING, by: Side::Remote }]);
    assert!(!r.dahdi.line_seized(CH_FXO1));
}
