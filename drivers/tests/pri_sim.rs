//! ISDN PRI through real libpri on the simulator: the exchange's libpri (network side)
//! and the card's (user side) talk Q.931 over a D-channel joined in user space.
//! Run with `cargo test -p hotline-drivers --features pri`.

#![cfg(feature = "pri")]

use crossbeam_channel::{unbounded, Receiver};
use hotline_drivers::event::Side;
use hotline_drivers::pri::q931::{Frame, MessageType};
use hotline_drivers::pri::{Node, PriEvent};
use hotline_drivers::signal::CallerCategory;
use hotline_drivers::sim::clock::VirtualClock;
use hotline_drivers::sim::{
    CallerScript, CallerStep, InboundCall, OutboundRule, Outcome, SimCard, Spread, Trunk,
};
use hotline_drivers::{config, Card, CardEvent, Cause, ChannelId, ErrorKind, EventKind, Instant};

const CONFIG: &str = r#"
[[card]]
id = 1
[[card.span]]
span = 1
signalling = "isdn_pri"
stack = "libpri"

[simulator]
media = "signalling"
seed = 11
"#;

fn card() -> (SimCard, Receiver<CardEvent>) {
    let cfg = config::parse(CONFIG, "pri-test.toml").expect("config");
    let (tx, rx) = unbounded();
    (SimCard::from_config(&cfg, 1, tx).expect("card"), rx)
}

fn secs(s: f64) -> Instant {
    Instant::from_micros((s * 1e6) as u64)
}

fn caller(steps: &[&str]) -> CallerScript {
    CallerScript::new(Spread::secs(30.0), steps.iter().map(|s| CallerStep::parse(s).unwrap()).collect())
}

/// Run until `until`, answering offered calls if `answer`; returns every event.
fn run(
    sim: &mut SimCard,
    rx: &Receiver<CardEvent>,
    clock: &mut VirtualClock,
    until: f64,
    answer: bool,
) -> Vec<EventKind> {
    let mut seen = Vec::new();
    clock
        .run_until(sim, rx, secs(until), |card, now, ev| {
            if let (true, EventKind::Offered { ch, .. }) = (answer, &ev.kind) {
                card.accept(now, *ch)?;
                card.answer(now, *ch)?;
            }
            seen.push(ev.kind);
            Ok(())
        })
        .expect("run");
    seen
}

fn messages(sim: &SimCard) -> Vec<(Node, MessageType, Option<Cause>)> {
    sim.pri_trace(1)
        .expect("libpri span")
        .iter()
        .filter_map(|t| match t.frame {
            Frame::Info { message, cause, .. } => Some((t.from, message, cause)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_d_channel_comes_up_with_sabme_and_ua_from_both_ends() {
    let (mut sim, rx) = card();
    let mut clock = VirtualClock::new(Instant::ZERO);
    assert_eq!(sim.pri_d_channel_up(1), Some(false));
    run(&mut sim, &rx, &mut clock, 0.1, false);
    assert_eq!(sim.pri_d_channel_up(1), Some(true));
    let trace = sim.pri_trace(1).unwrap();
    for from in [Node::Network, Node::Cpe] {
        assert!(trace.iter().any(|t| t.from == from && t.frame == Frame::Sabme), "{from:?} sent SABME");
        assert!(trace.iter().any(|t| t.from == from && t.frame == Frame::Ua), "{from:?} answered with UA");
    }
    assert!(trace.iter().all(|t| t.at > Instant::ZERO), "frames take time on the wire");
    assert_eq!(sim.pri_d_channel_up(2), None, "no span 2");
}

#[test]
fn an_inbound_setup_is_offered_with_its_numbers_on_the_b_channel_the_network_chose() {
    let (mut sim, rx) = card();
    let mut clock = VirtualClock::new(Instant::ZERO);
    sim.schedule_inbound(
        secs(1.0),
        InboundCall::new(Trunk::Span(1), Some("13800138000"), "4008001234", caller(&[])),
    );
    sim.schedule_inbound(
        secs(2.0),
        InboundCall::new(Trunk::Channel(ChannelId::e1(1, 1, 5)), None, "95555", caller(&[])),
    );
    let seen = run(&mut sim, &rx, &mut clock, 3.0, false);
    let offered: Vec<_> = seen.iter().filter(|e| matches!(e, EventKind::Offered { .. })).cloned().collect();
    assert_eq!(
        offered,
        vec![
            EventKind::Offered {
                ch: ChannelId::e1(1, 1, 31),
                ani: Some("13800138000".into()),
                dnis: "4008001234".into(),
                category: CallerCategory::Ordinary,
            },
            EventKind::Offered {
                ch: ChannelId::e1(1, 1, 5),
                ani: None,
                dnis: "95555".into(),
                category: CallerCategory::Ordinary
            },
        ]
    );
    // The SETUP really carried them: the card's CALL PROCEEDING answered each.
    let m = messages(&sim);
    assert_eq!(m.iter().filter(|(f, t, _)| *f == Node::Network && *t == MessageType::Setup).count(), 2);
    assert_eq!(m.iter().filter(|(f, t, _)| *f == Node::Cpe && *t == MessageType::CallProceeding).count(), 2);
}

#[test]
fn an_answered_call_ends_with_cause_16_when_the_caller_hangs_up() {
    let (mut sim, rx) = card();
    let mut clock = VirtualClock::new(Instant::ZERO);
    sim.schedule_inbound(
        secs(1.0),
        InboundCall::new(Trunk::Span(1), Some("13800138000"), "100", caller(&["wait 2", "hang_up"])),
    );
    let seen = run(&mut sim, &rx, &mut clock, 6.0, true);
    let ch = ChannelId::e1(1, 1, 31);
    let kinds: Vec<_> = seen.iter().filter(|e| e.channel() == Some(ch)).cloned().collect();
    assert!(matches!(kinds[0], EventKind::Offered { .. }));
    assert_eq!(kinds[1], EventKind::Answered { ch });
    assert_eq!(kinds[2], EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Remote });
    assert_eq!(kinds.len(), 3);
    assert_eq!(sim.stats().inbound_answered, 1);
    // The channel is free again: a new call can take it.
    assert!(sim.channels().iter().all(|c| c.state == hotline_drivers::channel::ChannelState::Idle));
}

#[test]
fn a_trace_of_a_call_shows_every_q931_message_crossing_in_order() {
    let (mut sim, rx) = card();
    let mut clock = VirtualClock::new(Instant::ZERO);
    sim.schedule_inbound(
        secs(1.0),
        InboundCall::new(Trunk::Span(1), Some("13800138000"), "100", caller(&["wait 1", "hang_up"])),
    );
    run(&mut sim, &rx, &mut clock, 5.0, true);
    let m = messages(&sim);
    use MessageType::*;
    use Node::*;
    let got: Vec<_> = m.iter().map(|(f, t, _)| (*f, *t)).collect();
    assert_eq!(
        got,
        vec![
            (Network, Setup),
            (Cpe, CallProceeding),
            (Cpe, Alerting),
            (Cpe, Connect),
            (Network, ConnectAcknowledge),
            (Network, Disconnect),
            (Cpe, Release),
            (Network, ReleaseComplete),
        ]
    );
    let disconnect = m.iter().find(|(_, t, _)| *t == Disconnect).unwrap();
    assert_eq!(disconnect.2, Some(Cause::NORMAL_CLEARING));
    let (net, user) = sim.pri_messages(1).unwrap();
    assert!(net.is_empty() && user.is_empty(), "libpri complained: {net:?} {user:?}");
}

#[test]
fn an_outbound_call_to_a_busy_number_is_released_with_cause_17() {
    let (mut sim, rx) = card();
    sim.set_outbound_rules(vec![
        OutboundRule::always("555", Outcome::Busy),
        OutboundRule::always("999", Outcome::Unallocated),
    ]);
    let mut clock = VirtualClock::new(Instant::ZERO);
    run(&mut sim, &rx, &mut clock, 0.5, false);
    let (a, b) = (ChannelId::e1(1, 1, 1), ChannelId::e1(1, 1, 2));
    sim.place_call(clock.now(), a, "5551234", Some("4008001234"), CallerCategory::Ordinary).unwrap();
    sim.place_call(clock.now(), b, "9990000", None, CallerCategory::Ordinary).unwrap();
    let seen = run(&mut sim, &rx, &mut clock, 3.0, false);
    assert!(
        seen.contains(&EventKind::Released { ch: a, cause: Cause::USER_BUSY, by: Side::Remote }),
        "{seen:?}"
    );
    assert!(
        seen.contains(&EventKind::Released { ch: b, cause: Cause::UNALLOCATED_NUMBER, by: Side::Remote }),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|e| matches!(e, EventKind::Answered { .. } | EventKind::Alerting { .. })));
    // The exchange saw our SETUPs with their numbers.
    let log = sim.pri_network_log(1).unwrap();
    let rings: Vec<_> = log
        .iter()
        .filter_map(|(_, e)| match e {
            PriEvent::Ring { channel, called, calling, .. } => {
                Some((*channel, called.clone(), calling.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        rings,
        vec![(Some(1), "5551234".into(), Some("4008001234".into())), (Some(2), "9990000".into(), None)]
    );
    let m = messages(&sim);
    assert!(m.contains(&(Node::Network, MessageType::Disconnect, Some(Cause::USER_BUSY))));
    // libpri clears an unallocated number before alerting with RELEASE COMPLETE at
    // once (Q.931 5.2.5.2 allows either).
    assert!(
        m.iter().any(|(f, t, c)| *f == Node::Network
            && matches!(t, MessageType::Disconnect | MessageType::ReleaseComplete)
            && *c == Some(Cause::UNALLOCATED_NUMBER)),
        "{m:?}"
    );
    assert_eq!(sim.stats().outbound_failed.get(&17), Some(&1));
    let (net, user) = sim.pri_messages(1).unwrap();
    assert!(net.is_empty() && user.is_empty(), "libpri complained: {net:?} {user:?}");
}

#[test]
fn an_outbound_call_alerts_is_answered_and_ends_when_the_callee_hangs_up() {
    let (mut sim, rx) = card();
    sim.set_outbound_rules(vec![OutboundRule::always(
        "",
        Outcome::Answer { after: Spread::secs(2.0), talk: Spread::secs(3.0) },
    )]);
    let mut clock = VirtualClock::new(Instant::ZERO);
    run(&mut sim, &rx, &mut clock, 0.5, false);
    let ch = ChannelId::e1(1, 1, 9);
    sim.place_call(clock.now(), ch, "13900139000", Some("4008001234"), CallerCategory::Ordinary).unwrap();
    let seen = run(&mut sim, &rx, &mut clock, 10.0, false);
    assert_eq!(
        seen,
        vec![
            EventKind::Alerting { ch },
            EventKind::Answered { ch },
            EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Remote },
        ]
    );
}

#[test]
fn our_release_with_cause_21_is_seen_by_the_network() {
    let (mut sim, rx) = card();
    let mut clock = VirtualClock::new(Instant::ZERO);
    sim.schedule_inbound(
        secs(1.0),
        InboundCall::new(Trunk::Span(1), Some("13800138000"), "100", caller(&[])),
    );
    run(&mut sim, &rx, &mut clock, 2.0, true);
    let ch = ChannelId::e1(1, 1, 31);
    sim.release(clock.now(), ch, Cause::CALL_REJECTED).unwrap();
    assert_eq!(
        sim.release(clock.now(), ch, Cause::CALL_REJECTED).unwrap_err().kind(),
        ErrorKind::InvalidState
    );
    let seen = run(&mut sim, &rx, &mut clock, 3.0, false);
    assert_eq!(seen, vec![EventKind::Released { ch, cause: Cause::CALL_REJECTED, by: Side::Local }]);
    let log = sim.pri_network_log(1).unwrap();
    assert!(
        log.iter().any(|(_, e)| matches!(e, PriEvent::HangupReq { channel: Some(31), cause, .. } if *cause == Cause::CALL_REJECTED)),
        "the exchange got DISCONNECT with cause 21: {log:?}"
    );
    let m = messages(&sim);
    assert!(m.contains(&(Node::Cpe, MessageType::Disconnect, Some(Cause::CALL_REJECTED))));
}

#[test]
fn a_rejected_offer_reaches_the_network_with_its_cause() {
    let (mut sim, rx) = card();
    let mut clock = VirtualClock::new(Instant::ZERO);
    sim.schedule_inbound(
        secs(1.0),
        InboundCall::new(Trunk::Span(1), Some("13800138000"), "100", caller(&[])),
    );
    let mut seen = Vec::new();
    clock
        .run_until(&mut sim, &rx, secs(3.0), |card, now, ev| {
            if let EventKind::Offered { ch, .. } = ev.kind {
                card.reject(now, ch, Cause::USER_BUSY)?;
            }
            seen.push(ev.kind);
            Ok(())
        })
        .unwrap();
    let ch = ChannelId::e1(1, 1, 31);
    assert!(seen.contains(&EventKind::Released { ch, cause: Cause::USER_BUSY, by: Side::Local }), "{seen:?}");
    let log = sim.pri_network_log(1).unwrap();
    assert!(log
        .iter()
        .any(|(_, e)| matches!(e, PriEvent::HangupReq { cause, .. } if *cause == Cause::USER_BUSY)));
}

#[test]
fn libpri_is_refused_on_a_span_that_is_not_isdn() {
    let text = CONFIG.replace("isdn_pri", "china_no1");
    let err = config::parse(&text, "bad.toml").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().starts_with("bad.toml:7:"), "{}", err.message());
    assert!(err.message().contains("isdn_pri"), "{}", err.message());
}

#[test]
fn an_unanswered_outbound_call_is_cleared_by_the_network_with_cause_19() {
    let (mut sim, rx) = card();
    sim.set_outbound_rules(vec![OutboundRule::always("", Outcome::NoAnswer)]);
    let mut clock = VirtualClock::new(Instant::ZERO);
    run(&mut sim, &rx, &mut clock, 0.5, false);
    let ch = ChannelId::e1(1, 1, 3);
    sim.place_call(clock.now(), ch, "13900139000", None, CallerCategory::Ordinary).unwrap();
    // The network's no-answer timer is 60 s by default.
    let seen = run(&mut sim, &rx, &mut clock, 70.0, false);
    assert_eq!(
        seen,
        vec![
            EventKind::Alerting { ch },
            EventKind::Released { ch, cause: Cause::NO_ANSWER, by: Side::Remote }
        ]
    );
    assert!(messages(&sim).contains(&(Node::Network, MessageType::Disconnect, Some(Cause::NO_ANSWER))));
}

#[test]
fn a_caller_who_gives_up_while_ringing_is_released_with_cause_16() {
    let (mut sim, rx) = card();
    let mut clock = VirtualClock::new(Instant::ZERO);
    let impatient = CallerScript::new(Spread::secs(3.0), vec![]);
    sim.schedule_inbound(secs(1.0), InboundCall::new(Trunk::Span(1), Some("13800138000"), "100", impatient));
    let mut seen = Vec::new();
    clock
        .run_until(&mut sim, &rx, secs(8.0), |card, now, ev| {
            if let EventKind::Offered { ch, .. } = ev.kind {
                card.accept(now, ch)?;
            }
            seen.push(ev.kind);
            Ok(())
        })
        .unwrap();
    let ch = ChannelId::e1(1, 1, 31);
    assert_eq!(
        seen.last(),
        Some(&EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Remote })
    );
    assert_eq!(sim.stats().inbound_abandoned, 1);
    let m = messages(&sim);
    assert!(m.contains(&(Node::Cpe, MessageType::Alerting, None)));
    assert!(!m.iter().any(|(_, t, _)| *t == MessageType::Connect));
}

#[test]
fn a_span_alarm_releases_the_call_and_the_span_carries_calls_again_after_it_clears() {
    use hotline_drivers::event::Alarm;
    use hotline_drivers::sim::Fault;
    let (mut sim, rx) = card();
    let mut clock = VirtualClock::new(Instant::ZERO);
    sim.schedule_inbound(secs(1.0), InboundCall::new(Trunk::Span(1), Some("1"), "100", caller(&[])));
    sim.inject(
        secs(3.0),
        Fault::SpanAlarm { span: 1, alarm: Alarm::Los, duration: Some(std::time::Duration::from_secs(2)) },
    );
    sim.schedule_inbound(
        secs(6.0),
        InboundCall::new(Trunk::Span(1), Some("2"), "200", caller(&["wait 1", "hang_up"])),
    );
    let seen = run(&mut sim, &rx, &mut clock, 10.0, true);
    let ch = ChannelId::e1(1, 1, 31);
    assert!(seen.contains(&EventKind::Released { ch, cause: Cause::NETWORK_OUT_OF_ORDER, by: Side::Remote }));
    let after: Vec<_> = seen
        .iter()
        .skip_while(|e| !matches!(e, EventKind::Offered { ani: Some(a), .. } if a == "2"))
        .filter(|e| e.channel() == Some(ch))
        .cloned()
        .collect();
    assert_eq!(after.len(), 3, "offered, answered, released: {after:?}");
    assert_eq!(after[2], EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Remote });
}

#[test]
fn in_audio_mode_the_caller_s_dtmf_is_heard_on_the_b_channel_libpri_set_up() {
    let cfg = config::parse(&CONFIG.replace("\"signalling\"", "\"audio\""), "pri-audio.toml").unwrap();
    let (tx, rx) = unbounded();
    let mut sim = SimCard::from_config(&cfg, 1, tx).unwrap();
    let mut clock = VirtualClock::new(Instant::ZERO);
    sim.schedule_inbound(
        secs(0.5),
        InboundCall::new(Trunk::Span(1), Some("1"), "100", caller(&["wait 0.5", "press 42", "hang_up"])),
    );
    let seen = run(&mut sim, &rx, &mut clock, 3.0, true);
    let digits: String = seen
        .iter()
        .filter_map(|e| match e {
            EventKind::Digit { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "42");
    assert!(
        matches!(seen.last(), Some(EventKind::Released { cause, .. }) if *cause == Cause::NORMAL_CLEARING)
    );
}
