//! Shared helpers for the simulator scenarios: a card in virtual time, with every event
//! recorded, and a prompt file to play.
#![allow(dead_code)]

use std::path::PathBuf;

use crossbeam_channel::{unbounded, Receiver};
use hotline_drivers::config;
use hotline_drivers::event::Side;
use hotline_drivers::sim::clock::VirtualClock;
use hotline_drivers::sim::SimCard;
use hotline_drivers::{Card, CardEvent, Cause, ChannelId, EventKind, Instant};

/// A card on span 1 ISDN PRI, span 2 China No.1, span 3 SS7 ISUP, FXO 1-2 (FSK V.23
/// caller ID, busy-tone disconnect), FXS 1-4; card 2 has one FXO line with DTMF caller
/// ID and polarity reversal. `{media}` is replaced by the media mode.
pub const CARDS: &str = r#"
[[card]]
id = 1
tone_plan = "china"
[[card.span]]
span = 1
signalling = "isdn_pri"
[[card.span]]
span = 2
signalling = "china_no1"
[[card.span]]
span = 3
signalling = "ss7_isup"
[card.fxo]
ports = "1-2"
caller_id = "fsk_v23"
disconnect = "busy_tone"
[card.fxs]
ports = "1-4"
caller_id = "fsk_bell202"

[[card]]
id = 2
[card.fxo]
ports = "1"
caller_id = "dtmf"
disconnect = "polarity_reversal"

[simulator]
media = "{media}"
seed = {seed}
no_answer_timeout_s = 30
"#;

pub struct World {
    pub sim: SimCard,
    pub rx: Receiver<CardEvent>,
    pub clock: VirtualClock,
    pub trace: Vec<CardEvent>,
}

pub fn secs(s: f64) -> Instant {
    Instant::from_micros((s * 1e6) as u64)
}

impl World {
    /// Card `card` of `CARDS` plus `extra` TOML (more `[[simulator.*]]` entries).
    pub fn new(media: &str, seed: u64, card: u16, extra: &str) -> World {
        let text = CARDS.replace("{media}", media).replace("{seed}", &seed.to_string()) + extra;
        let cfg = config::parse(&text, "test.toml").expect("test config parses");
        let (tx, rx) = unbounded();
        let sim = SimCard::from_config(&cfg, card, tx).expect("card builds");
        World { sim, rx, clock: VirtualClock::new(Instant::ZERO), trace: Vec::new() }
    }

    /// Run until `until` seconds, recording events; `engine` plays the engine's part.
    pub fn run(&mut self, until: f64, mut engine: impl FnMut(&mut SimCard, Instant, &CardEvent)) {
        let trace = &mut self.trace;
        self.clock
            .run_until(&mut self.sim, &self.rx, secs(until), |card, now, ev| {
                engine(card, now, &ev);
                trace.push(ev);
                Ok(())
            })
            .expect("simulation runs");
    }

    /// Run without reacting to anything.
    pub fn idle(&mut self, until: f64) {
        self.run(until, |_, _, _| {});
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    pub fn on(&self, ch: ChannelId) -> Vec<&CardEvent> {
        self.trace.iter().filter(|e| e.kind.channel() == Some(ch)).collect()
    }

    pub fn first(&self, pred: impl Fn(&EventKind) -> bool) -> Option<&CardEvent> {
        self.trace.iter().find(|e| pred(&e.kind))
    }

    pub fn released(&self, ch: ChannelId) -> Option<(Cause, Side, Instant)> {
        self.trace.iter().find_map(|e| match e.kind {
            EventKind::Released { ch: c, cause, by } if c == ch => Some((cause, by, e.time)),
            _ => None,
        })
    }

    pub fn digits(&self, ch: ChannelId) -> String {
        self.trace
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Digit { ch: c, digit, .. } if c == ch => Some(digit),
                _ => None,
            })
            .collect()
    }

    /// The tones the card detected on a channel, in order.
    pub fn tones(&self, ch: ChannelId) -> Vec<hotline_drivers::signal::Tone> {
        self.on(ch)
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::ToneDetected { tone, .. } => Some(tone),
                _ => None,
            })
            .collect()
    }

    pub fn command(&mut self, cmd: hotline_drivers::Command) {
        let now = self.now();
        self.sim.execute(now, cmd).expect("command accepted");
    }
}

/// A prompt file: `secs` seconds of a quiet 400 Hz tone, written once per name.
pub fn prompt(name: &str, secs: f64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-sim-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.wav"));
    if !path.exists() {
        let n = (secs * 8000.0) as usize;
        let samples: Vec<i16> = (0..n)
            .map(|i| (3000.0 * (std::f64::consts::TAU * 400.0 * i as f64 / 8000.0).sin()) as i16)
            .collect();
        hotline_drivers::dsp::wav::write_wav_file(
            &path,
            8000,
            1,
            hotline_drivers::dsp::wav::Encoding::Pcm16,
            &samples,
        )
        .expect("prompt written");
    }
    path
}
