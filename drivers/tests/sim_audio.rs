//! Simulator scenarios in audio mode: real 8 kHz frames every 20 ms; digits, tones and
//! caller ID are sound, found by the DSP detectors on the card's and the far side.

mod sim_support;

use std::time::Duration;

use crossbeam_channel::unbounded;
use hotline_drivers::command::{MemberRights, PlaySource};
use hotline_drivers::event::{PlayEnd, Side};
use hotline_drivers::signal::{CallerCategory, CallerId, Tone};
use hotline_drivers::sim::{
    CallerScript, CallerStep, InboundCall, OutboundRule, Outcome, PhoneBehaviour, Spread, Trunk,
};
use hotline_drivers::{Card, Cause, ChannelId, Command, ConferenceId, EventKind};
use sim_support::{prompt, secs, World};

fn script(steps: &[&str]) -> CallerScript {
    CallerScript::new(Spread::secs(30.0), steps.iter().map(|s| CallerStep::parse(s).unwrap()).collect())
}

fn audio_world() -> World {
    World::new("audio", 5, 1, "")
}

fn answer_all(
    card: &mut hotline_drivers::sim::SimCard,
    now: hotline_drivers::Instant,
    ev: &hotline_drivers::CardEvent,
) {
    if let EventKind::Offered { ch, .. } = ev.kind {
        card.answer(now, ch).unwrap();
    }
}

#[test]
fn the_callers_key_presses_are_found_by_the_dtmf_detector_after_the_prompt() {
    let mut w = audio_world();
    let greeting = prompt("audio-greeting-1s", 1.0);
    w.sim.schedule_inbound(
        secs(0.5),
        InboundCall::new(
            Trunk::Span(1),
            Some("13800138000"),
            "4008001234",
            script(&["wait_prompt", "press 4*9#", "wait 1", "hang_up"]),
        ),
    );
    w.run(10.0, move |card, now, ev| match &ev.kind {
        EventKind::Offered { ch, .. } => card.answer(now, *ch).unwrap(),
        EventKind::Answered { ch } => {
            card.play(now, *ch, 3, PlaySource::Prompt(greeting.clone()), true).unwrap()
        }
        _ => {}
    });
    let ch = ChannelId::e1(1, 1, 31);
    assert_eq!(w.digits(ch), "4*9#");
    let played = w.first(|k| matches!(k, EventKind::PlayFinished { .. })).unwrap();
    assert_eq!(played.kind, EventKind::PlayFinished { ch, id: 3, reason: PlayEnd::Completed });
    for e in w.on(ch) {
        if let EventKind::Digit { start, end, .. } = e.kind {
            let len = end - start;
            assert!(
                len >= Duration::from_millis(85) && len <= Duration::from_millis(115),
                "tone length {len:?}"
            );
            assert!(start > played.time, "pressed after the prompt");
            assert!(e.time >= end, "reported after the tone ended");
        }
    }
    assert_eq!(w.released(ch).unwrap().0, Cause::NORMAL_CLEARING);
    let heard = w.sim.heard(ch).unwrap();
    assert!(heard.loud_frames >= 45 && heard.loud_frames <= 55, "the caller heard 1 s of prompt: {heard:?}");
}

#[test]
fn fxo_caller_id_is_decoded_from_the_line_audio_into_the_offered_ani() {
    let mut v23 = audio_world();
    v23.sim
        .schedule_inbound(secs(0.0), InboundCall::new(Trunk::AnyFxo, Some("02188886666"), "", script(&[])));
    v23.idle(5.0);
    let offered = v23.first(|k| matches!(k, EventKind::Offered { .. })).expect("offered");
    assert_eq!(
        offered.kind,
        EventKind::Offered {
            ch: ChannelId::fxo(1, 1),
            ani: Some("02188886666".into()),
            dnis: String::new(),
            category: CallerCategory::Ordinary
        }
    );
    let mut dtmf = World::new("audio", 5, 2, "");
    dtmf.sim
        .schedule_inbound(secs(0.0), InboundCall::new(Trunk::AnyFxo, Some("13912345678"), "", script(&[])));
    dtmf.idle(6.0);
    let offered = dtmf.first(|k| matches!(k, EventKind::Offered { .. })).expect("offered");
    let EventKind::Offered { ani, .. } = &offered.kind else { unreachable!() };
    assert_eq!(ani.as_deref(), Some("13912345678"), "DTMF caller ID digits decoded");
    assert!(
        dtmf.first(|k| matches!(k, EventKind::Digit { .. })).is_none(),
        "caller ID digits are not call digits"
    );
}

#[test]
fn the_far_end_hanging_up_an_fxo_call_is_found_by_busy_tone_detection() {
    let mut w = audio_world();
    w.sim.schedule_inbound(
        secs(0.0),
        InboundCall::new(Trunk::AnyFxo, Some("555"), "", script(&["talk 3", "hang_up"])),
    );
    w.run(15.0, answer_all);
    let ch = ChannelId::fxo(1, 1);
    let busy =
        w.first(|k| *k == EventKind::ToneDetected { ch, tone: Tone::Busy }).expect("busy tone found").time;
    let answered = w.first(|k| matches!(k, EventKind::Answered { .. })).unwrap().time;
    let (cause, by, at) = w.released(ch).unwrap();
    assert_eq!((cause, by), (Cause::NORMAL_CLEARING, Side::Remote));
    assert_eq!(at, busy);
    let gap = busy - answered;
    assert!(
        gap > Duration::from_secs(3) && gap < Duration::from_secs(6),
        "talk 3 s, then the cadence: {gap:?}"
    );
}

#[test]
fn an_outbound_fxo_call_hears_dial_tone_sends_real_dtmf_and_detects_ringback() {
    let mut w = audio_world();
    w.sim.set_outbound_rules(vec![
        OutboundRule::always("8", Outcome::Answer { after: Spread::secs(6.0), talk: Spread::secs(5.0) }),
        OutboundRule::always("9", Outcome::Congestion),
    ]);
    let (a, b) = (ChannelId::fxo(1, 1), ChannelId::fxo(1, 2));
    w.sim.place_call(w.now(), a, "88001234", None, CallerCategory::Ordinary).unwrap();
    w.sim.place_call(w.now(), b, "99", None, CallerCategory::Ordinary).unwrap();
    w.idle(30.0);
    let tones = |ch| w.tones(ch);
    assert_eq!(&tones(a)[..2], &[Tone::Dial, Tone::Ringback]);
    assert_eq!(w.sim.heard(a).unwrap().digits, "88001234", "the exchange's detector found our digits");
    assert!(w.first(|k| *k == EventKind::Alerting { ch: a }).is_some());
    assert!(w.first(|k| *k == EventKind::Answered { ch: a }).is_some());
    assert_eq!(w.released(a).unwrap().0, Cause::NORMAL_CLEARING, "the callee hung up: busy tone");
    assert_eq!(tones(b), vec![Tone::Dial, Tone::Congestion]);
    assert_eq!(w.released(b).unwrap().0, Cause::NO_CIRCUIT_AVAILABLE);
}

#[test]
fn a_rung_station_decodes_the_fsk_caller_id_and_hears_busy_tone_after_release() {
    let mut w = audio_world();
    let st = ChannelId::fxs(1, 1);
    w.sim
        .set_station_behaviour(
            st,
            PhoneBehaviour {
                answer_after: Some(Spread::secs(8.0)),
                talk: None,
                hang_up_after_release: Some(Spread::secs(3.0)),
            },
        )
        .unwrap();
    let cid = CallerId {
        number: Some("13800138000".into()),
        name: Some("LI LEI".into()),
        time: Some((11, 21, 9, 30)),
        absence: None,
    };
    w.sim.ring_station(w.now(), st, Some(cid.clone())).unwrap();
    w.idle(10.0);
    assert_eq!(w.sim.heard(st).unwrap().caller_ids, vec![cid], "the phone decoded the MDMF message");
    assert_eq!(w.first(|k| *k == EventKind::OffHook { ch: st }).unwrap().time, secs(8.0));
    w.command(Command::Release { ch: st, cause: Cause::NORMAL_CLEARING });
    w.idle(20.0);
    assert!(w.sim.heard(st).unwrap().tones.contains(&Tone::Busy), "{:?}", w.sim.heard(st));
    let on = w.first(|k| *k == EventKind::OnHook { ch: st }).unwrap().time;
    assert_eq!(
        on,
        secs(10.0) + Duration::from_millis(3800),
        "hangs up 3 s later; reported after the flash window"
    );
}

#[test]
fn a_station_off_hook_hears_dial_tone_and_its_keys_are_detected() {
    let mut w = audio_world();
    let st = ChannelId::fxs(1, 2);
    w.sim.dial_from_station(secs(0.5), st, "2580").unwrap();
    w.idle(4.0);
    assert_eq!(w.sim.heard(st).unwrap().tones, vec![Tone::Dial]);
    assert_eq!(w.digits(st), "2580");
}

#[test]
fn the_bus_carries_speech_both_ways_on_connect_and_one_way_on_listen() {
    let mut w = audio_world();
    let talk = || script(&["talk 100"]);
    for _ in 0..4 {
        w.sim.schedule_inbound(secs(0.1), InboundCall::new(Trunk::Span(1), Some("1"), "2", talk()));
    }
    w.run(1.0, answer_all);
    let [a, b, c, d] = [31, 30, 29, 28].map(|ts| ChannelId::e1(1, 1, ts));
    for ch in [a, b, c, d] {
        w.sim.clear_heard(ch);
    }
    w.command(Command::Connect { a, b });
    w.command(Command::Listen { listener: c, source: d });
    w.idle(11.0);
    let loud = |ch| w.sim.heard(ch).unwrap().loud_frames;
    assert!(loud(a) > 200 && loud(b) > 200, "a {} b {}", loud(a), loud(b));
    assert!(loud(c) > 200, "the listener hears the source: {}", loud(c));
    assert_eq!(loud(d), 0, "the source hears nothing from the listener");
    assert!(w.sim.heard(d).unwrap().level_dbm0() == f64::NEG_INFINITY);
    let level = w.sim.heard(a).unwrap().level_dbm0();
    assert!(level > -35.0 && level < -10.0, "speech level {level} dBm0");
}

#[test]
fn digits_pressed_by_one_party_are_heard_by_the_party_connected_to_it() {
    let mut w = audio_world();
    w.sim.schedule_inbound(
        secs(0.1),
        InboundCall::new(Trunk::Span(1), Some("1"), "2", script(&["wait 2", "press 159"])),
    );
    w.sim.schedule_inbound(secs(0.1), InboundCall::new(Trunk::Span(1), Some("3"), "4", script(&[])));
    w.run(1.0, answer_all);
    let (a, b) = (ChannelId::e1(1, 1, 31), ChannelId::e1(1, 1, 30));
    w.command(Command::Connect { a, b });
    w.idle(5.0);
    assert_eq!(w.digits(a), "159", "the card detects them on the presser's channel");
    assert_eq!(w.sim.heard(b).unwrap().digits, "159", "and the far party on the bus hears them");
}

#[test]
fn a_whispering_supervisor_is_heard_by_the_agent_but_not_by_the_caller() {
    let mut w = audio_world();
    let caller = ChannelId::e1(1, 1, 31);
    let (agent, supervisor) = (ChannelId::fxs(1, 1), ChannelId::fxs(1, 2));
    w.sim
        .set_station_behaviour(
            agent,
            PhoneBehaviour {
                answer_after: Some(Spread::secs(1.0)),
                talk: Some(Spread::secs(30.0)),
                hang_up_after_release: None,
            },
        )
        .unwrap();
    w.sim.schedule_inbound(
        secs(0.1),
        InboundCall::new(Trunk::Span(1), Some("1"), "2", script(&["wait 6", "press 3"])),
    );
    w.run(1.0, answer_all);
    w.sim.ring_station(w.now(), agent, None).unwrap();
    w.sim.go_off_hook(secs(1.5), supervisor).unwrap();
    w.idle(2.5);
    let conf = ConferenceId { card: 1, bridge: 1 };
    w.command(Command::JoinConference { conf, ch: caller, rights: MemberRights::full() });
    w.command(Command::JoinConference { conf, ch: agent, rights: MemberRights::full() });
    let whisper = MemberRights { talk: true, listen: true, hidden_from: vec![caller] };
    w.command(Command::JoinConference { conf, ch: supervisor, rights: whisper });
    w.sim.dial_from_station(secs(2.6), supervisor, "7").unwrap();
    w.idle(9.0);
    assert_eq!(w.sim.heard(agent).unwrap().digits, "73", "the agent hears the supervisor and the caller");
    assert_eq!(w.sim.heard(supervisor).unwrap().digits, "3", "the supervisor hears the caller");
    assert_eq!(w.sim.heard(caller).unwrap().digits, "", "the caller does not hear the whisper");
    assert_eq!(w.digits(supervisor), "7");
}

#[test]
fn a_tap_copies_every_received_frame_until_stopped() {
    let mut w = audio_world();
    w.sim.schedule_inbound(secs(0.1), InboundCall::new(Trunk::Span(1), Some("1"), "2", script(&["talk 30"])));
    w.run(1.0, answer_all);
    let ch = ChannelId::e1(1, 1, 31);
    let (tx, rx) = unbounded();
    w.command(Command::StartTap { ch, id: 9, sink: tx });
    w.idle(3.0);
    w.command(Command::StopTap { ch, id: 9 });
    w.idle(4.0);
    let frames: Vec<_> = rx.try_iter().collect();
    assert_eq!(frames.len(), 100, "2 s of 20 ms frames");
    assert!(frames.windows(2).all(|f| f[1].time - f[0].time == Duration::from_millis(20)));
    assert!(frames.iter().all(|f| f.ch == ch && f.id == 9 && f.samples.len() == 160));
    let loud = frames.iter().filter(|f| f.samples.iter().any(|s| s.unsigned_abs() > 1000)).count();
    assert!(loud > 50, "the caller is talking: {loud} loud frames");
    assert_eq!(
        w.first(|k| matches!(k, EventKind::RecordFinished { .. })).unwrap().kind,
        EventKind::RecordFinished { ch, id: 9, frames: 100, dropped: 0 }
    );
}

#[test]
fn a_recorder_that_falls_behind_loses_frames_that_are_counted_not_hidden() {
    let mut w = audio_world();
    w.sim.schedule_inbound(secs(0.1), InboundCall::new(Trunk::Span(1), Some("1"), "2", script(&["talk 30"])));
    w.run(1.0, answer_all);
    let ch = ChannelId::e1(1, 1, 31);
    // A sink with room for 10 frames that nobody reads.
    let (tx, rx) = crossbeam_channel::bounded(10);
    w.command(Command::StartTap { ch, id: 4, sink: tx });
    w.idle(3.0);
    w.command(Command::StopTap { ch, id: 4 });
    w.idle(4.0);
    assert_eq!(rx.try_iter().count(), 10);
    assert_eq!(
        w.first(|k| matches!(k, EventKind::RecordFinished { .. })).unwrap().kind,
        EventKind::RecordFinished { ch, id: 4, frames: 10, dropped: 90 }
    );
}

#[test]
fn audio_mode_gives_the_same_trace_for_the_same_seed() {
    let run = || {
        let mut w = World::new("audio", 99, 1, "");
        w.sim.schedule_inbound(
            secs(0.0),
            InboundCall::new(
                Trunk::AnyFxo,
                Some("02188886666"),
                "",
                script(&["press 12", "talk 2", "hang_up"]),
            ),
        );
        w.sim.schedule_inbound(
            secs(0.3),
            InboundCall::new(Trunk::Span(2), Some("139"), "100", script(&["press 5", "hang_up"])),
        );
        w.run(15.0, answer_all);
        w.trace
    };
    let first = run();
    assert!(first.len() >= 10);
    assert_eq!(first, run());
}

#[test]
fn a_dead_fxo_line_never_gives_dial_tone_to_the_detector() {
    let mut w = audio_world();
    w.sim.inject(secs(0.0), hotline_drivers::sim::Fault::DeadLine { port: 1 });
    w.idle(0.1);
    let ch = ChannelId::fxo(1, 1);
    w.sim.place_call(w.now(), ch, "123", None, CallerCategory::Ordinary).unwrap();
    w.idle(5.0);
    assert_eq!(w.released(ch).map(|(c, by, _)| (c, by)), Some((Cause::NETWORK_OUT_OF_ORDER, Side::Local)));
    assert!(w.first(|k| matches!(k, EventKind::ToneDetected { .. })).is_none());
}

#[test]
fn a_station_with_dtmf_caller_id_decodes_the_digits_between_rings() {
    let text =
        "[[card]]\nid = 1\n[card.fxs]\nports = \"1\"\ncaller_id = \"dtmf\"\n[simulator]\nmedia = \"audio\"\n";
    let cfg = hotline_drivers::config::parse(text, "dtmf-cid.toml").unwrap();
    let (tx, rx) = unbounded();
    let mut sim = hotline_drivers::sim::SimCard::from_config(&cfg, 1, tx).unwrap();
    let st = ChannelId::fxs(1, 1);
    sim.set_station_behaviour(st, PhoneBehaviour::absent()).unwrap();
    let cid = CallerId { number: Some("01087654321".into()), ..CallerId::default() };
    sim.ring_station(hotline_drivers::Instant::ZERO, st, Some(cid)).unwrap();
    let mut clock = hotline_drivers::sim::clock::VirtualClock::new(hotline_drivers::Instant::ZERO);
    clock.run_until(&mut sim, &rx, secs(6.0), |_, _, _| Ok(())).unwrap();
    let shown: Vec<_> = sim.heard(st).unwrap().caller_ids.iter().map(|c| c.number.clone()).collect();
    assert_eq!(shown, vec![Some("01087654321".to_string())]);
    assert_eq!(sim.heard(st).unwrap().digits, "", "caller ID digits are not call audio");
}

#[test]
fn a_frame_stream_plays_until_its_sender_is_dropped() {
    let mut w = audio_world();
    w.sim.schedule_inbound(secs(0.1), InboundCall::new(Trunk::Span(1), Some("1"), "2", script(&[])));
    w.run(1.0, answer_all);
    let ch = ChannelId::e1(1, 1, 31);
    w.sim.clear_heard(ch);
    let (tx, rx) = unbounded();
    w.command(Command::Play { ch, id: 4, source: PlaySource::Frames(rx), barge_in: false });
    // 25 frames of music on hold: a 1 kHz tone at about -10 dBm0.
    for f in 0..25 {
        let frame: Vec<i16> = (0..160)
            .map(|i| (7000.0 * (std::f64::consts::TAU * 1000.0 * (f * 160 + i) as f64 / 8000.0).sin()) as i16)
            .collect();
        tx.send(frame).unwrap();
    }
    drop(tx);
    w.idle(3.0);
    assert_eq!(w.sim.heard(ch).unwrap().loud_frames, 25);
    let done = w.first(|k| matches!(k, EventKind::PlayFinished { .. })).unwrap();
    assert_eq!(done.kind, EventKind::PlayFinished { ch, id: 4, reason: PlayEnd::Completed });
}

#[test]
fn a_caller_hears_ringback_from_our_alerting_until_the_answer() {
    let mut w = audio_world();
    w.sim.schedule_inbound(secs(0.5), InboundCall::new(Trunk::Span(1), Some("1"), "2", script(&[])));
    w.run(12.0, |card, now, ev| {
        if let EventKind::Offered { ch, .. } = ev.kind {
            card.accept(now, ch).unwrap();
        }
    });
    let ch = ChannelId::e1(1, 1, 31);
    assert_eq!(w.sim.heard(ch).unwrap().tones, vec![Tone::Ringback]);
    w.command(Command::Answer { ch });
    w.sim.clear_heard(ch);
    w.idle(20.0);
    assert_eq!(w.sim.heard(ch).unwrap().loud_frames, 0, "silence once answered");
}
