//! Simulator scenarios in signalling mode (no frames: digits, tones and prompt lengths as
//! events), in virtual time.

mod sim_support;

use std::time::Duration;

use hotline_drivers::command::PlaySource;
use hotline_drivers::event::{Alarm, PlayEnd, Side};
use hotline_drivers::signal::{CallerCategory, CallerId, Tone};
use hotline_drivers::sim::{
    CallerScript, CallerStep, Fault, InboundCall, OutboundRule, Outcome, PhoneBehaviour, Spread, Trunk,
};
use hotline_drivers::{Card, Cause, ChannelId, Command, ErrorKind, EventKind};
use sim_support::{prompt, secs, World};

fn script(steps: &[&str]) -> CallerScript {
    CallerScript::new(Spread::secs(30.0), steps.iter().map(|s| CallerStep::parse(s).unwrap()).collect())
}

fn sig_world() -> World {
    World::new("signalling", 7, 1, "")
}

#[test]
fn an_inbound_pri_call_is_offered_answered_hears_the_prompt_presses_digits_and_hangs_up() {
    let mut w = sig_world();
    let greeting = prompt("greeting-2s", 2.0);
    w.sim.schedule_inbound(
        secs(1.0),
        InboundCall::new(
            Trunk::Span(1),
            Some("13800138000"),
            "4008001234",
            script(&["wait_prompt", "press 12#", "wait 1", "hang_up"]),
        ),
    );
    let g = greeting.clone();
    w.run(20.0, move |card, now, ev| match &ev.kind {
        EventKind::Offered { ch, .. } => card.answer(now, *ch).unwrap(),
        EventKind::Answered { ch } => card.play(now, *ch, 7, PlaySource::Prompt(g.clone()), true).unwrap(),
        _ => {}
    });
    let offered = w.first(|k| matches!(k, EventKind::Offered { .. })).expect("offered");
    let EventKind::Offered { ch, ani, dnis, category } = offered.kind.clone() else { unreachable!() };
    assert_eq!(ch, ChannelId::e1(1, 1, 31), "ISDN hunts from the top timeslot");
    assert_eq!(
        (ani.as_deref(), dnis.as_str(), category),
        (Some("13800138000"), "4008001234", CallerCategory::Ordinary)
    );
    assert!(offered.time - secs(1.0) < Duration::from_millis(20), "SETUP carries the numbers en bloc");
    let answered = w.first(|k| matches!(k, EventKind::Answered { .. })).unwrap().time;
    assert!(answered - offered.time < Duration::from_millis(50));
    let finished = w.first(|k| matches!(k, EventKind::PlayFinished { .. })).unwrap();
    assert_eq!(finished.kind, EventKind::PlayFinished { ch, id: 7, reason: PlayEnd::Completed });
    let played = finished.time - answered;
    assert!(played >= Duration::from_millis(1990) && played <= Duration::from_millis(2010), "{played:?}");
    assert_eq!(w.digits(ch), "12#");
    let first_digit = w.first(|k| matches!(k, EventKind::Digit { .. })).unwrap();
    let EventKind::Digit { start, end, .. } = first_digit.kind else { unreachable!() };
    assert!(start > finished.time, "the caller waits for the prompt to end");
    assert_eq!(end - start, Duration::from_millis(100));
    let (cause, by, _) = w.released(ch).expect("released");
    assert_eq!((cause, by), (Cause::NORMAL_CLEARING, Side::Remote));
    assert_eq!(w.sim.heard(ch).unwrap().prompts, vec![7]);
    assert_eq!(w.sim.stats().caller_cleared, 1);
}

#[test]
fn a_digit_stops_a_prompt_played_with_barge_in() {
    let mut w = sig_world();
    let long = prompt("long-10s", 10.0);
    w.sim.schedule_inbound(
        secs(0.5),
        InboundCall::new(Trunk::Span(3), Some("1"), "2", script(&["wait 1", "press 5"])),
    );
    w.run(8.0, move |card, now, ev| match &ev.kind {
        EventKind::Offered { ch, .. } => card.answer(now, *ch).unwrap(),
        EventKind::Answered { ch } => card.play(now, *ch, 1, PlaySource::Prompt(long.clone()), true).unwrap(),
        _ => {}
    });
    let ch = ChannelId::e1(1, 3, 31);
    let kinds: Vec<_> = w.on(ch).into_iter().map(|e| e.kind.clone()).collect();
    let digit_at = kinds.iter().position(|k| matches!(k, EventKind::Digit { digit: '5', .. })).unwrap();
    assert_eq!(kinds[digit_at + 1], EventKind::PlayFinished { ch, id: 1, reason: PlayEnd::Digit });
}

#[test]
fn an_r2_call_takes_seconds_to_set_up_and_busy_maps_to_17() {
    let mut w = sig_world();
    w.sim.schedule_inbound(
        secs(1.0),
        InboundCall::new(Trunk::Span(2), Some("13912345678"), "4008001234", script(&[])),
    );
    w.sim.set_outbound_rules(vec![OutboundRule::always("139", Outcome::Busy)]);
    let out = ChannelId::e1(1, 2, 1);
    w.run(1.0, |_, _, _| {});
    w.sim.place_call(w.now(), out, "13911112222", Some("4008001234"), CallerCategory::Ordinary).unwrap();
    w.run(15.0, |_, _, _| {});
    let offered = w.first(|k| matches!(k, EventKind::Offered { .. })).unwrap();
    let setup = offered.time - secs(1.0);
    // 10 + 1 + 11 + 1 compelled digits at 100–150 ms each.
    assert!(
        setup >= Duration::from_millis(2300) && setup <= Duration::from_millis(3700),
        "R2 inbound setup {setup:?}"
    );
    let (cause, by, at) = w.released(out).unwrap();
    assert_eq!((cause, by), (Cause::USER_BUSY, Side::Remote));
    assert!(at - secs(1.0) > Duration::from_secs(2), "the B-signal comes after the digits");
}

#[test]
fn r2_only_reports_the_causes_its_b_signals_carry() {
    let mut w = sig_world();
    w.sim.set_outbound_rules(vec![
        OutboundRule::always("1", Outcome::Unallocated),
        OutboundRule::always("2", Outcome::Congestion),
        OutboundRule::always("3", Outcome::OutOfOrder),
    ]);
    let now = w.now();
    for (ts, called) in [(1, "100"), (2, "200"), (3, "300")] {
        w.sim.place_call(now, ChannelId::e1(1, 2, ts), called, None, CallerCategory::Ordinary).unwrap();
    }
    w.idle(10.0);
    let causes: Vec<u8> = (1..=3).map(|ts| w.released(ChannelId::e1(1, 2, ts)).unwrap().0 .0).collect();
    assert_eq!(causes, vec![1, 42, 42]);
}

#[test]
fn outbound_pri_calls_end_with_the_cause_of_their_outcome() {
    let mut w = sig_world();
    w.sim.set_outbound_rules(vec![
        OutboundRule::always("1", Outcome::Answer { after: Spread::secs(3.0), talk: Spread::secs(10.0) }),
        OutboundRule::always("2", Outcome::Busy),
        OutboundRule::always("3", Outcome::NoAnswer),
        OutboundRule::always("4", Outcome::Unallocated),
        OutboundRule::always("5", Outcome::Congestion),
        OutboundRule::always("6", Outcome::OutOfOrder),
    ]);
    let now = w.now();
    for ts in 1..=6u8 {
        let called = format!("{ts}0001234");
        w.sim
            .place_call(now, ChannelId::e1(1, 1, ts), &called, Some("4008001234"), CallerCategory::Ordinary)
            .unwrap();
    }
    assert_eq!(
        w.sim
            .place_call(now, ChannelId::e1(1, 1, 1), "1", None, CallerCategory::Ordinary)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidState,
        "a channel with a call cannot take another"
    );
    w.idle(60.0);
    let ch = |ts| ChannelId::e1(1, 1, ts);
    let alerting = w.first(|k| *k == EventKind::Alerting { ch: ch(1) }).unwrap().time;
    let answered = w.first(|k| *k == EventKind::Answered { ch: ch(1) }).unwrap().time;
    assert!(alerting < secs(0.4));
    assert!((answered - alerting) >= Duration::from_secs(3));
    let (cause, by, at) = w.released(ch(1)).unwrap();
    assert_eq!((cause, by), (Cause::NORMAL_CLEARING, Side::Remote));
    assert!(at - answered >= Duration::from_secs(10), "the callee talks, then hangs up");
    let expect = [(2, 17), (3, 19), (4, 1), (5, 34), (6, 27)];
    for (ts, cause) in expect {
        assert_eq!(w.released(ch(ts)).unwrap().0, Cause(cause), "timeslot {ts}");
    }
    let (_, _, no_answer_at) = w.released(ch(3)).unwrap();
    assert!(no_answer_at >= secs(30.0), "the network's no-answer timer is 30 s in the test config");
    assert!(w.first(|k| *k == EventKind::Alerting { ch: ch(3) }).is_some());
    assert!(w.first(|k| *k == EventKind::Alerting { ch: ch(2) }).is_none());
    assert_eq!(w.sim.stats().outbound_placed, 6);
    assert_eq!(w.sim.stats().outbound_answered, 1);
}

#[test]
fn an_fxo_call_rings_and_is_offered_with_the_caller_id_as_ani() {
    let mut w = sig_world();
    w.sim.schedule_inbound(
        secs(1.0),
        InboundCall::new(Trunk::AnyFxo, Some("02188886666"), "", script(&["talk 5", "hang_up"])),
    );
    w.run(20.0, |card, now, ev| {
        if let EventKind::Offered { ch, .. } = ev.kind {
            card.answer(now, ch).unwrap();
        }
    });
    let ch = ChannelId::fxo(1, 1);
    let offered = w.first(|k| matches!(k, EventKind::Offered { .. })).unwrap();
    assert_eq!(
        offered.kind,
        EventKind::Offered {
            ch,
            ani: Some("02188886666".into()),
            dnis: String::new(),
            category: CallerCategory::Ordinary
        }
    );
    let after = offered.time - secs(1.0);
    assert!(
        after > Duration::from_millis(1500) && after < Duration::from_millis(3000),
        "after the first ring and the caller ID: {after:?}"
    );
    // The caller hangs up; the exchange plays busy tone; the detector ends the call.
    let answered = w.first(|k| matches!(k, EventKind::Answered { .. })).unwrap().time;
    let busy =
        w.first(|k| *k == EventKind::ToneDetected { ch, tone: Tone::Busy }).expect("busy tone detected").time;
    let (cause, by, at) = w.released(ch).unwrap();
    assert_eq!((cause, by), (Cause::NORMAL_CLEARING, Side::Remote));
    assert!(busy - answered > Duration::from_secs(5));
    assert!(at >= busy);
}

#[test]
fn an_fxo_line_with_polarity_reversal_shows_the_hang_up_at_once() {
    let mut w = World::new("signalling", 7, 2, "");
    w.sim.schedule_inbound(
        secs(0.0),
        InboundCall::new(Trunk::AnyFxo, Some("12345"), "", script(&["talk 2", "hang_up"])),
    );
    let mut answered = None;
    w.run(20.0, |card, now, ev| match ev.kind {
        EventKind::Offered { ch, .. } => card.answer(now, ch).unwrap(),
        EventKind::Answered { .. } => answered = Some(now),
        _ => {}
    });
    let ch = ChannelId::fxo(2, 1);
    let (cause, _, at) = w.released(ch).unwrap();
    assert_eq!(cause, Cause::NORMAL_CLEARING);
    let talked = at - answered.unwrap();
    assert!(talked >= Duration::from_secs(2) && talked < Duration::from_millis(2200), "{talked:?}");
    assert!(w.first(|k| matches!(k, EventKind::ToneDetected { .. })).is_none());
}

#[test]
fn an_fxo_caller_who_gives_up_while_it_rings_is_released_when_the_rings_stop() {
    let mut w = sig_world();
    let mut impatient = script(&[]);
    impatient.patience = Spread::secs(7.0);
    w.sim.schedule_inbound(secs(0.0), InboundCall::new(Trunk::AnyFxo, Some("555"), "", impatient));
    w.idle(30.0);
    let ch = ChannelId::fxo(1, 1);
    let (cause, by, at) = w.released(ch).unwrap();
    assert_eq!((cause, by), (Cause::NORMAL_CLEARING, Side::Remote));
    // Rings at 0 and 5 s (1 s on, 4 s off); the next ring was due at 10 s.
    assert!(at > secs(9.0) && at < secs(12.0), "{at}");
    assert_eq!(w.sim.stats().inbound_abandoned, 1);
}

#[test]
fn an_outbound_fxo_call_waits_for_dial_tone_dials_and_follows_the_tones() {
    let mut w = sig_world();
    w.sim.set_outbound_rules(vec![
        OutboundRule::always("8", Outcome::Answer { after: Spread::secs(4.0), talk: Spread::secs(6.0) }),
        OutboundRule::always("9", Outcome::Busy),
    ]);
    let (a, b) = (ChannelId::fxo(1, 1), ChannelId::fxo(1, 2));
    w.sim.place_call(w.now(), a, "88001234", None, CallerCategory::Ordinary).unwrap();
    w.sim.place_call(w.now(), b, "99001234", None, CallerCategory::Ordinary).unwrap();
    w.idle(40.0);
    let tones = |ch| w.tones(ch);
    assert_eq!(tones(a), vec![Tone::Dial, Tone::Ringback, Tone::Busy]);
    assert_eq!(w.sim.heard(a).unwrap().digits, "88001234", "the exchange heard the digits");
    assert!(w.first(|k| *k == EventKind::Alerting { ch: a }).is_some());
    assert!(w.first(|k| *k == EventKind::Answered { ch: a }).is_some());
    assert_eq!(w.released(a).unwrap().0, Cause::NORMAL_CLEARING, "the callee hung up: busy tone");
    assert_eq!(tones(b), vec![Tone::Dial, Tone::Busy]);
    assert_eq!(w.released(b).unwrap().0, Cause::USER_BUSY);
}

#[test]
fn a_dead_fxo_line_gives_no_dial_tone_and_the_call_fails() {
    let mut w = sig_world();
    let ch = ChannelId::fxo(1, 2);
    w.sim.inject(secs(0.0), Fault::DeadLine { port: 2 });
    w.idle(0.1);
    w.sim.place_call(w.now(), ch, "123", None, CallerCategory::Ordinary).unwrap();
    w.idle(10.0);
    let (cause, by, at) = w.released(ch).unwrap();
    assert_eq!((cause, by), (Cause::NETWORK_OUT_OF_ORDER, Side::Local));
    assert!(at - secs(0.1) >= Duration::from_secs(3));
    assert!(w.first(|k| matches!(k, EventKind::ToneDetected { .. })).is_none());
}

#[test]
fn a_rung_station_shows_the_caller_id_answers_after_its_delay_and_flashes_then_hangs_up() {
    let mut w = sig_world();
    let st = ChannelId::fxs(1, 1);
    w.sim
        .set_station_behaviour(
            st,
            PhoneBehaviour {
                answer_after: Some(Spread::secs(7.0)),
                talk: None,
                hang_up_after_release: Some(Spread::secs(1.0)),
            },
        )
        .unwrap();
    let cid =
        CallerId { number: Some("13800138000".into()), name: Some("WANG".into()), ..CallerId::default() };
    w.sim.ring_station(w.now(), st, Some(cid.clone())).unwrap();
    w.idle(10.0);
    assert_eq!(w.sim.heard(st).unwrap().caller_ids, vec![cid], "the phone shows who calls");
    let off = w.first(|k| *k == EventKind::OffHook { ch: st }).unwrap().time;
    assert_eq!(off, secs(7.0));
    assert_eq!(
        w.sim.channels().iter().find(|c| c.id == st).unwrap().state,
        hotline_drivers::channel::ChannelState::Connected
    );
    // A 300 ms press is a flash; a 2 s one is a hang-up, reported when the flash window ends.
    w.sim.flash_hook(secs(11.0), st, Duration::from_millis(300)).unwrap();
    w.sim.flash_hook(secs(13.0), st, Duration::from_millis(50)).unwrap();
    w.sim.flash_hook(secs(15.0), st, Duration::from_secs(2)).unwrap();
    w.idle(20.0);
    let kinds: Vec<_> = w.on(st).into_iter().map(|e| (e.kind.clone(), e.time)).collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::OffHook { ch: st }, secs(7.0)),
            (EventKind::HookFlash { ch: st }, secs(11.3)),
            (EventKind::OnHook { ch: st }, secs(15.8)),
            (EventKind::OffHook { ch: st }, secs(17.0)),
        ]
    );
}

#[test]
fn a_station_going_off_hook_hears_dial_tone_and_its_digits_reach_the_card() {
    let mut w = sig_world();
    let st = ChannelId::fxs(1, 2);
    w.sim.dial_from_station(secs(1.0), st, "8001").unwrap();
    w.idle(5.0);
    assert!(w.first(|k| *k == EventKind::OffHook { ch: st }).is_some());
    assert_eq!(w.sim.heard(st).unwrap().tones, vec![Tone::Dial]);
    assert_eq!(w.digits(st), "8001");
}

#[test]
fn a_station_left_off_hook_hears_busy_tone_and_stays_off_hook() {
    let mut w = sig_world();
    let (good, bad) = (ChannelId::fxs(1, 3), ChannelId::fxs(1, 4));
    w.sim.inject(secs(0.0), Fault::LeftOffHook(bad));
    w.idle(0.5);
    let now = w.now();
    w.sim.ring_station(now, good, None).unwrap();
    w.sim.ring_station(now, bad, None).unwrap();
    w.idle(5.0);
    w.command(Command::Release { ch: good, cause: Cause::NORMAL_CLEARING });
    w.command(Command::Release { ch: bad, cause: Cause::NORMAL_CLEARING });
    w.idle(60.0);
    assert!(w.first(|k| *k == EventKind::OnHook { ch: good }).is_some());
    assert!(w.first(|k| *k == EventKind::OnHook { ch: bad }).is_none());
    assert_eq!(w.sim.heard(bad).unwrap().tones.last(), Some(&Tone::Busy));
    assert_eq!(w.sim.handset_off_hook(bad), Some(true));
    let state = |ch| w.sim.channels().into_iter().find(|c| c.id == ch).unwrap().state;
    assert_eq!(state(bad), hotline_drivers::channel::ChannelState::OffHook);
    assert_eq!(state(good), hotline_drivers::channel::ChannelState::Idle);
    assert_eq!(
        w.sim.ring_station(w.now(), bad, None).unwrap_err().kind(),
        ErrorKind::InvalidState,
        "an off-hook station cannot be rung"
    );
}

#[test]
fn a_span_alarm_mid_call_releases_the_call_blocks_the_span_and_clears() {
    let mut w = sig_world();
    w.sim
        .schedule_inbound(secs(1.0), InboundCall::new(Trunk::Span(1), Some("1"), "2", script(&["talk 100"])));
    w.sim.inject(
        secs(5.0),
        Fault::SpanAlarm { span: 1, alarm: Alarm::Los, duration: Some(Duration::from_secs(10)) },
    );
    w.run(8.0, |card, now, ev| {
        if let EventKind::Offered { ch, .. } = ev.kind {
            card.answer(now, ch).unwrap();
        }
    });
    let ch = ChannelId::e1(1, 1, 31);
    assert_eq!(w.released(ch).unwrap(), (Cause::NETWORK_OUT_OF_ORDER, Side::Remote, secs(5.0)));
    let blocked = w.trace.iter().filter(|e| matches!(e.kind, EventKind::Blocked { .. })).count();
    assert_eq!(blocked, 30);
    assert_eq!(
        w.sim
            .place_call(w.now(), ChannelId::e1(1, 1, 1), "1", None, CallerCategory::Ordinary)
            .unwrap_err()
            .kind(),
        ErrorKind::Blocked
    );
    w.idle(20.0);
    let cleared = w.first(|k| matches!(k, EventKind::SpanAlarm { raised: false, .. })).unwrap();
    assert_eq!(cleared.kind, EventKind::SpanAlarm { card: 1, span: 1, alarm: Alarm::Los, raised: false });
    assert_eq!(cleared.time, secs(15.0));
    assert_eq!(w.trace.iter().filter(|e| matches!(e.kind, EventKind::Unblocked { .. })).count(), 30);
    w.sim.place_call(w.now(), ChannelId::e1(1, 1, 1), "1", None, CallerCategory::Ordinary).unwrap();
}

#[test]
fn calls_do_not_arrive_on_a_channel_the_far_end_blocked() {
    let mut w = sig_world();
    let top = ChannelId::e1(1, 1, 31);
    w.sim.inject(secs(0.0), Fault::BlockChannel(top));
    w.sim.schedule_inbound(secs(1.0), InboundCall::new(Trunk::Span(1), None, "1", script(&[])));
    w.idle(2.0);
    assert!(w.first(|k| matches!(k, EventKind::Blocked { ch, .. } if *ch == top)).is_some());
    let offered = w.first(|k| matches!(k, EventKind::Offered { .. })).unwrap();
    assert_eq!(offered.kind.channel(), Some(ChannelId::e1(1, 1, 30)));
}

fn busy_day(seed: u64) -> Vec<hotline_drivers::CardEvent> {
    let extra = r#"
[[simulator.arrivals]]
trunk = "1/1"
rate_per_hour = 600
dnis = ["100", "200"]
ani = "138XXXXXXXX"
caller = { patience_s = [5, 20], script = ["press 1", "talk 10-60", "hang_up"] }
"#;
    let mut w = World::new("signalling", seed, 1, extra);
    let mut n = 0u32;
    w.run(1800.0, |card, now, ev| {
        if let EventKind::Offered { ch, .. } = ev.kind {
            n += 1;
            if n % 4 == 0 {
                card.reject(now, ch, Cause::USER_BUSY).unwrap();
            } else if n % 4 != 1 {
                card.answer(now, ch).unwrap();
            }
        }
    });
    w.trace
}

#[test]
fn the_same_seed_gives_the_same_event_trace_twice() {
    let a = busy_day(11);
    let b = busy_day(11);
    assert!(a.len() > 300, "a busy half hour: {} events", a.len());
    assert_eq!(a, b);
    assert_ne!(a, busy_day(12), "another seed, another day");
}

#[test]
fn a_poisson_day_of_eight_hours_runs_with_about_the_expected_number_of_calls() {
    let extra = r#"
[[simulator.arrivals]]
trunk = "1/1"
rate_per_hour = 300
dnis = ["4008001234"]
ani = "138XXXXXXXX"
caller = { patience_s = 60, script = ["wait_prompt", "press 1", "talk 60-180", "hang_up"] }
"#;
    let mut w = World::new("signalling", 2026, 1, extra);
    let greeting = prompt("greeting-3s", 3.0);
    w.run(8.0 * 3600.0, move |card, now, ev| match &ev.kind {
        EventKind::Offered { ch, .. } => card.answer(now, *ch).unwrap(),
        EventKind::Answered { ch } => {
            card.play(now, *ch, 1, PlaySource::Prompt(greeting.clone()), true).unwrap()
        }
        _ => {}
    });
    let s = w.sim.stats().clone();
    // 2400 expected; a Poisson count's standard deviation is its square root (~49).
    assert!((2200..=2600).contains(&s.inbound_attempts), "{s:?}");
    assert_eq!(s.inbound_lost, 0, "10 Erlang fits 30 channels: {s:?}");
    assert_eq!(s.inbound_offered, s.inbound_answered);
    assert_eq!(s.caller_cleared, s.inbound_answered - busy_calls_in_progress(&w));
    assert_eq!(
        w.trace.iter().filter(|e| matches!(e.kind, EventKind::Digit { digit: '1', .. })).count() as u64,
        s.digits_pressed
    );
}

/// Calls still up when the day ends.
fn busy_calls_in_progress(w: &World) -> u64 {
    w.sim.channels().iter().filter(|c| c.state != hotline_drivers::channel::ChannelState::Idle).count() as u64
}

#[test]
fn the_real_time_clock_drives_the_same_card() {
    let mut w = sig_world();
    w.sim
        .schedule_inbound(secs(0.05), InboundCall::new(Trunk::Span(1), Some("1"), "2", script(&["hang_up"])));
    let mut clock = hotline_drivers::sim::clock::RealTimeClock::start();
    let mut seen = Vec::new();
    clock
        .run_until(&mut w.sim, &w.rx, secs(0.3), |card, now, ev| {
            if let EventKind::Offered { ch, .. } = ev.kind {
                card.answer(now, ch)?;
            }
            seen.push(ev.kind);
            Ok(())
        })
        .unwrap();
    let ch = ChannelId::e1(1, 1, 31);
    assert!(matches!(seen.first(), Some(EventKind::Offered { .. })), "{seen:?}");
    assert!(seen.contains(&EventKind::Answered { ch }));
    assert!(seen.iter().any(|k| matches!(k, EventKind::Released { .. })));
}

#[test]
fn a_remote_alarm_releases_calls_with_temporary_failure() {
    let mut w = sig_world();
    w.sim
        .schedule_inbound(secs(1.0), InboundCall::new(Trunk::Span(3), Some("1"), "2", script(&["talk 100"])));
    w.sim.inject(secs(3.0), Fault::SpanAlarm { span: 3, alarm: Alarm::Rai, duration: None });
    w.run(5.0, |card, now, ev| {
        if let EventKind::Offered { ch, .. } = ev.kind {
            card.answer(now, ch).unwrap();
        }
    });
    assert_eq!(w.released(ChannelId::e1(1, 3, 31)).unwrap().0, Cause::TEMPORARY_FAILURE);
    assert!(
        w.first(|k| matches!(k, EventKind::SpanAlarm { raised: false, .. })).is_none(),
        "stays until cleared"
    );
    assert!(w
        .sim
        .channels()
        .iter()
        .filter(|c| matches!(c.id.addr, hotline_drivers::channel::ChannelAddr::E1 { span: 3, .. }))
        .all(|c| c.state == hotline_drivers::channel::ChannelState::Blocked));
}

#[test]
fn a_simulator_card_can_be_moved_to_its_own_thread() {
    fn send<T: Send>(_: &T) {}
    let w = sig_world();
    send(&w.sim);
    let audio = World::new("audio", 1, 1, "");
    send(&audio.sim);
}
