//! An engine that issues commands at random, on random channels, at random moments: the
//! simulator refuses what makes no sense with an error, never panics, and keeps its
//! books straight (every Released follows an Offered or a PlaceCall on that channel).

mod sim_support;

use std::collections::BTreeMap;

use hotline_drivers::command::{MemberRights, PlaySource};
use hotline_drivers::signal::{CallerCategory, CallerId, Tone};
use hotline_drivers::sim::rng::Rng;
use hotline_drivers::{Card, Cause, ChannelId, Command, ConferenceId, EventKind};
use sim_support::{prompt, World};

const TRAFFIC: &str = r#"
[[simulator.arrivals]]
trunk = "1/1"
rate_per_hour = 1200
dnis = ["100"]
ani = "138XXXXXXXX"
caller = { patience_s = [2, 20], script = ["wait_prompt", "press 12", "talk 1-20", "hang_up"] }
[[simulator.arrivals]]
trunk = "1/2"
rate_per_hour = 600
dnis = ["200"]
caller = { patience_s = [5, 30], script = ["press 9", "talk 5-30", "hang_up"] }
[[simulator.arrivals]]
trunk = "1/fxo"
rate_per_hour = 300
ani = "0XXXXXXXXXX"
caller = { patience_s = [5, 30], script = ["talk 5-30", "hang_up"] }
[[simulator.outbound]]
answer = 0.5
busy = 0.1
no_answer = 0.1
unallocated = 0.1
congestion = 0.1
out_of_order = 0.1
answer_after_s = [1, 5]
talk_s = [2, 20]
[[simulator.station]]
ports = "1-4"
answer_after_s = [0.5, 6]
talk_s = [2, 30]
[[simulator.fault]]
at_s = 100
kind = "span_alarm"
span = 2
alarm = "ais"
duration_s = 20
"#;

fn all_channels(w: &World) -> Vec<ChannelId> {
    w.sim.channels().iter().map(|c| c.id).collect()
}

fn chaos(media: &str, seconds: f64, seed: u64) {
    let mut w = World::new(media, seed, 1, TRAFFIC);
    let chans = all_channels(&w);
    let greeting = prompt("chaos-greeting", 0.5);
    let mut rng = Rng::new(seed);
    // Calls per channel that the engine has heard of and not yet seen released. Events
    // lag the card's state, so this is a balance, not a set.
    let mut calls: BTreeMap<ChannelId, i64> = BTreeMap::new();
    let mut ok = 0u32;
    let mut refused = 0u32;
    let mut log: Vec<String> = Vec::new();
    w.run(seconds, |card, now, ev| {
        log.push(format!("{} {:?}", ev.time, ev.kind));
        match ev.kind {
            EventKind::Offered { ch, .. } => *calls.entry(ch).or_default() += 1,
            EventKind::Released { ch, .. } => {
                let balance = calls.entry(ch).or_default();
                *balance -= 1;
                if *balance < 0 && ch.kind() != hotline_drivers::ChannelKind::Fxs {
                    let mine: Vec<_> =
                        log.iter().filter(|l| l.contains(&format!("{:?}", ch))).rev().take(12).collect();
                    panic!("Released without a call on {ch}: {mine:#?}");
                }
            }
            _ => {}
        }
        for _ in 0..3 {
            let ch = chans[rng.below(chans.len() as u64) as usize];
            let other = chans[rng.below(chans.len() as u64) as usize];
            let conf = ConferenceId { card: 1, bridge: 1 + rng.below(3) as u16 };
            let cmd = match rng.below(16) {
                0 => Command::Answer { ch },
                1 => Command::Accept { ch },
                2 => Command::Release { ch, cause: Cause::NORMAL_CLEARING },
                3 => Command::Reject { ch, cause: Cause::USER_BUSY },
                4 => Command::PlaceCall {
                    ch,
                    called: "0123".into(),
                    calling: None,
                    category: CallerCategory::Ordinary,
                },
                5 => Command::RingStation {
                    ch,
                    caller_id: Some(CallerId { number: Some("123".into()), ..CallerId::default() }),
                },
                6 => Command::StopRinging { ch },
                7 => {
                    Command::Play { ch, id: 1, source: PlaySource::Prompt(greeting.clone()), barge_in: true }
                }
                8 => Command::Play { ch, id: 2, source: PlaySource::Tone(Tone::Busy), barge_in: false },
                9 => Command::StopPlay { ch },
                10 => Command::SendDigits { ch, digits: "5#".into() },
                11 => Command::Connect { a: ch, b: other },
                12 => Command::Listen { listener: ch, source: other },
                13 => Command::Disconnect { ch },
                14 => Command::JoinConference { conf, ch, rights: MemberRights::full() },
                _ => Command::LeaveConference { conf, ch },
            };
            if let Command::PlaceCall { ch, .. } = &cmd {
                if card.execute(now, cmd.clone()).is_ok() {
                    *calls.entry(*ch).or_default() += 1;
                    ok += 1;
                } else {
                    refused += 1;
                }
                continue;
            }
            let desc = format!("{now} CMD {cmd:?}");
            match card.execute(now, cmd) {
                Ok(()) => {
                    log.push(desc);
                    ok += 1
                }
                Err(_) => refused += 1,
            }
        }
    });
    assert!(ok > 100 && refused > 100, "both kinds happened: {ok} accepted, {refused} refused");
    let s = w.sim.stats();
    assert!(s.inbound_attempts > 50, "{s:?}");
}

#[test]
fn random_commands_in_signalling_mode_never_break_the_card() {
    chaos("signalling", 1800.0, 3);
}

#[test]
fn random_commands_in_audio_mode_never_break_the_card() {
    chaos("audio", 150.0, 4);
}
