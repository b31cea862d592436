//! `hotline demo`: the simulated card at work. Scripted and random callers arrive on an
//! E1 span and analog lines; a small switchboard script (standing in for the call engine,
//! which is not built yet) answers them, plays a greeting and acts on the digit pressed:
//! 1 rings a station and connects the caller to whoever answers, 2 dials out on an FXO
//! line and connects the caller to it. Everything printed is an event the card
//! reported: in audio mode digits, tones and caller ID are found in real 8 kHz audio by
//! the DSP detectors.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hotline_drivers::command::PlaySource;
use hotline_drivers::config::{self, MediaMode};
use hotline_drivers::dsp::{resample, wav};
use hotline_drivers::event::Alarm;
use hotline_drivers::signal::{CallerCategory, CallerId, Tone};
use hotline_drivers::sim::clock::{RealTimeClock, VirtualClock};
use hotline_drivers::sim::{Fault, SimCard};
use hotline_drivers::{
    Card, CardEvent, Cause, ChannelId, ChannelKind, ErrorKind, EventKind, Instant, SAMPLE_RATE,
};

use crate::exit_codes::{CliError, CliResult};

/// The installation file the demo uses when none is given: the one in `examples/`,
/// built in so the demo runs from any directory.
const DEMO_CONFIG: &str = include_str!("../../examples/hotline.toml");

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// An installation file to use instead of the built-in examples/hotline.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// How long to run, in seconds of (simulated) time.
    #[arg(long, default_value_t = 40)]
    duration: u64,
    /// Run in virtual time: the same events, as fast as the machine goes.
    #[arg(long)]
    fast: bool,
    /// Seed for the simulated world (overrides the file's).
    #[arg(long)]
    seed: Option<u64>,
}

/// What the switchboard knows about a channel it is handling.
#[derive(Debug, Default)]
struct Leg {
    /// The other channel this one is (or will be) connected to.
    peer: Option<ChannelId>,
    /// The calling number, for caller ID to a station.
    ani: Option<String>,
    /// The greeting was played; the next digit is a menu choice.
    in_menu: bool,
    /// We placed this call (an outside line dialled for a caller).
    outbound: bool,
}

struct Switchboard {
    greeting: PlaySource,
    /// Play ids of greetings (the others are tones).
    greetings: Vec<u32>,
    legs: HashMap<ChannelId, Leg>,
    next_play: u32,
    /// Blocked channels per span, to print one line per span rather than thirty.
    blocked: BTreeMap<(u16, u8), usize>,
    digits: usize,
    tones: usize,
    offered: usize,
}

fn line(now: Instant, who: impl std::fmt::Display, what: impl std::fmt::Display) {
    println!("{now}  {:<9} {what}", who.to_string());
}

impl Switchboard {
    fn on_event(
        &mut self,
        card: &mut SimCard,
        now: Instant,
        ev: CardEvent,
    ) -> hotline_drivers::error::Result<()> {
        match ev.kind {
            EventKind::Offered { ch, ani, dnis, category } => {
                self.offered += 1;
                let from = ani.clone().unwrap_or_else(|| "(no caller ID)".to_string());
                let to = if dnis.is_empty() { "this line".to_string() } else { dnis };
                let cat = if category == CallerCategory::Ordinary {
                    String::new()
                } else {
                    format!(" ({category:?})")
                };
                let via = if ch.kind() == ChannelKind::Fxo && ani.is_some() {
                    " (caller ID decoded between the rings)"
                } else {
                    ""
                };
                line(now, ch, format!("offered: {from} calls {to}{cat}{via}; answering"));
                self.legs.insert(ch, Leg { ani, ..Leg::default() });
                card.answer(now, ch)?;
            }
            EventKind::Answered { ch } => {
                let Some(leg) = self.legs.get_mut(&ch) else { return Ok(()) };
                if let Some(peer) = leg.peer {
                    // Our outbound call was answered: the caller is already connected.
                    line(now, ch, format!("answered by the far end; talking with {peer}"));
                } else {
                    line(
                        now,
                        ch,
                        "answered; playing the greeting (press 1 for an agent, 2 for an outside line)",
                    );
                    leg.in_menu = true;
                    self.next_play += 1;
                    self.greetings.push(self.next_play);
                    card.play(now, ch, self.next_play, self.greeting.clone(), true)?;
                }
            }
            EventKind::Digit { ch, digit, start, end } => {
                self.digits += 1;
                line(
                    now,
                    ch,
                    format!("digit {digit} (tone {start} to {end}, {} ms)", (end - start).as_millis()),
                );
                let in_menu = self.legs.get(&ch).is_some_and(|l| l.in_menu);
                if in_menu {
                    self.menu_choice(card, now, ch, digit)?;
                }
            }
            EventKind::ToneDetected { ch, tone } => {
                self.tones += 1;
                line(now, ch, format!("{tone} tone detected"));
                let outbound = self.legs.get(&ch).is_some_and(|l| l.outbound);
                if matches!(tone, Tone::Busy | Tone::Congestion) && outbound {
                    // The outside line we dialled is busy or congested: give up on it.
                    // (An inbound analog line's busy tone is the far end hanging up;
                    // the card ends that call itself.)
                    card.release(
                        now,
                        ch,
                        if tone == Tone::Busy {
                            Cause::USER_BUSY
                        } else {
                            Cause::SWITCHING_EQUIPMENT_CONGESTION
                        },
                    )?;
                }
            }
            EventKind::PlayFinished { ch, id, reason } => {
                let what = if self.greetings.contains(&id) { "greeting" } else { "tone" };
                line(now, ch, format!("{what} ended ({reason:?})").to_lowercase());
            }
            EventKind::OffHook { ch } => {
                let caller = self.legs.iter().find(|(_, l)| l.peer == Some(ch)).map(|(c, _)| *c);
                match caller {
                    Some(caller) => {
                        let shown = card
                            .heard(ch)
                            .and_then(|h| h.caller_ids.last())
                            .and_then(|c| c.number.clone())
                            .unwrap_or_else(|| "nothing".to_string());
                        line(
                            now,
                            ch,
                            format!("station off hook (its display showed {shown}): connected to {caller}"),
                        );
                        card.execute(now, hotline_drivers::Command::StopPlay { ch: caller })?;
                        card.connect(now, caller, ch)?;
                    }
                    None => line(now, ch, "station off hook"),
                }
            }
            EventKind::OnHook { ch } => line(now, ch, "station on hook"),
            EventKind::HookFlash { ch } => line(now, ch, "hook flash"),
            EventKind::Alerting { ch } => line(now, ch, "far end alerting"),
            EventKind::Released { ch, cause, by } => {
                let side = if by == hotline_drivers::event::Side::Remote { "the far end" } else { "us" };
                line(now, ch, format!("released by {side}: cause {cause}"));
                if let Some(leg) = self.legs.remove(&ch) {
                    if let Some(peer) = leg.peer {
                        if self.legs.contains_key(&peer) || peer.kind() == ChannelKind::Fxs {
                            self.legs.remove(&peer);
                            if peer.kind() == ChannelKind::Fxs && card.handset_off_hook(peer) != Some(true) {
                                card.execute(now, hotline_drivers::Command::StopRinging { ch: peer })?;
                            } else {
                                card.release(now, peer, Cause::NORMAL_CLEARING)?;
                            }
                        }
                    }
                }
                // A station's caller hung up first: the station leg is not in `legs`.
                let callers: Vec<ChannelId> =
                    self.legs.iter().filter(|(_, l)| l.peer == Some(ch)).map(|(c, _)| *c).collect();
                for c in callers {
                    if let Some(l) = self.legs.get_mut(&c) {
                        l.peer = None;
                    }
                    card.release(now, c, Cause::NORMAL_CLEARING)?;
                }
            }
            EventKind::SpanAlarm { card: c, span, alarm, raised } => {
                let what = match alarm {
                    Alarm::Los => "loss of signal (LOS)",
                    Alarm::Lof => "loss of frame (LOF)",
                    Alarm::Ais => "alarm indication signal (AIS)",
                    Alarm::Rai => "remote alarm (RAI)",
                };
                line(
                    now,
                    format!("{c}/{span}"),
                    format!("span alarm {} : {what}", if raised { "raised" } else { "cleared" }),
                );
            }
            EventKind::Blocked { ch, reason } => {
                if let hotline_drivers::ChannelAddr::E1 { span, .. } = ch.addr {
                    *self.blocked.entry((ch.card, span)).or_default() += 1;
                } else {
                    line(now, ch, format!("blocked: {reason}"));
                }
            }
            EventKind::Unblocked { ch } => {
                if let hotline_drivers::ChannelAddr::E1 { span, .. } = ch.addr {
                    self.blocked.remove(&(ch.card, span));
                } else {
                    line(now, ch, "unblocked");
                }
            }
            EventKind::RecordFinished { .. } => {}
        }
        Ok(())
    }

    fn menu_choice(
        &mut self,
        card: &mut SimCard,
        now: Instant,
        ch: ChannelId,
        digit: char,
    ) -> hotline_drivers::error::Result<()> {
        let ani = self.legs.get(&ch).and_then(|l| l.ani.clone());
        let idle = |kind: ChannelKind, not: ChannelId| {
            card.channels()
                .into_iter()
                .find(|c| {
                    c.kind == kind && c.id != not && c.state == hotline_drivers::channel::ChannelState::Idle
                })
                .map(|c| c.id)
        };
        match digit {
            '1' => {
                let Some(station) = idle(ChannelKind::Fxs, ch) else {
                    line(now, ch, "no free station; playing busy tone");
                    self.next_play += 1;
                    return card.play(now, ch, self.next_play, PlaySource::Tone(Tone::Busy), false);
                };
                line(
                    now,
                    station,
                    format!(
                        "ringing the station for {ch}, caller ID {}",
                        ani.as_deref().unwrap_or("withheld")
                    ),
                );
                let cid = CallerId { number: ani, time: Some((11, 21, 9, 30)), ..CallerId::default() };
                card.ring_station(now, station, Some(cid))?;
                self.next_play += 1;
                card.play(now, ch, self.next_play, PlaySource::Tone(Tone::Ringback), false)?;
                self.set_peer(ch, station);
            }
            '2' => {
                let Some(line_out) = idle(ChannelKind::Fxo, ch) else {
                    line(now, ch, "no free outside line");
                    return Ok(());
                };
                let number = "01087654321";
                line(now, line_out, format!("dialling {number} for {ch}; the caller hears the line"));
                card.place_call(now, line_out, number, ani.as_deref(), CallerCategory::Ordinary)?;
                card.connect(now, ch, line_out)?;
                self.set_peer(ch, line_out);
                self.legs.insert(line_out, Leg { peer: Some(ch), outbound: true, ..Leg::default() });
            }
            _ => return Ok(()),
        }
        Ok(())
    }

    fn set_peer(&mut self, ch: ChannelId, peer: ChannelId) {
        if let Some(l) = self.legs.get_mut(&ch) {
            l.peer = Some(peer);
            l.in_menu = false;
        }
    }
}

/// The greeting: spoken by espeak-ng when it is installed, a two-note chime otherwise;
/// either way written as an 8 kHz A-law prompt file, as a card plays it.
fn make_greeting(dir: &Path) -> CliResult<(PathBuf, &'static str)> {
    let path = dir.join("greeting.wav");
    let text = "Welcome to Hotline. For an agent, press 1. For an outside line, press 2.";
    let spoken = std::process::Command::new("espeak-ng").args(["--stdout", "-s", "165", text]).output();
    let (samples, how) = match spoken {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => {
            let (spec, pcm) = wav::read_wav(&out.stdout)
                .map_err(|e| CliError::failure(format!("espeak-ng output: {e}")))?;
            let mono = resample::to_mono(&pcm, spec.channels);
            let s = resample::resample(&mono, spec.sample_rate, SAMPLE_RATE)
                .map_err(|e| CliError::failure(e.to_string()))?;
            (s, "spoken by espeak-ng")
        }
        _ => (chime(), "a chime (install espeak-ng for a spoken greeting)"),
    };
    wav::write_wav_file(&path, SAMPLE_RATE, 1, wav::Encoding::Alaw, &samples)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    Ok((path, how))
}

fn chime() -> Vec<i16> {
    let mut out = Vec::new();
    for (freq, ms) in [(659.0f32, 400), (523.0, 600)] {
        let n = SAMPLE_RATE as usize * ms / 1000;
        out.extend((0..n).map(|i| {
            let t = i as f32 / SAMPLE_RATE as f32;
            let env = (1.0 - i as f32 / n as f32).powi(2);
            (8000.0 * env * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
        }));
    }
    out
}

pub fn run(args: DemoArgs) -> CliResult {
    let (text, origin) = match &args.config {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| CliError::input(format!("cannot read {}: {e}", p.display())))?,
            p.display().to_string(),
        ),
        None => (DEMO_CONFIG.to_string(), "examples/hotline.toml (built in)".to_string()),
    };
    let mut cfg = config::parse(&text, &origin).map_err(|e| CliError::input(e.to_string()))?;
    if let Some(seed) = args.seed {
        cfg.simulator.seed = seed;
    }
    let card_id = cfg
        .cards
        .iter()
        .find(|c| c.backend == config::Backend::Simulator)
        .map(|c| c.id)
        .ok_or_else(|| CliError::input(format!("{origin}: no card with backend = \"simulator\"")))?;

    let dir = std::env::temp_dir().join(format!("hotline-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;
    let (greeting, how) = make_greeting(&dir)?;

    let (tx, rx) = crossbeam_channel::unbounded();
    let mut sim = SimCard::from_config(&cfg, card_id, tx).map_err(|e| CliError::input(e.to_string()))?;
    // Show an alarm too: span 2 loses its signal for a few seconds near the end.
    if cfg.cards.iter().any(|c| c.id == card_id && c.spans.iter().any(|s| s.span == 2)) && args.duration > 12
    {
        let at = Instant::from_secs(args.duration.saturating_sub(10));
        sim.inject(
            at,
            Fault::SpanAlarm { span: 2, alarm: Alarm::Los, duration: Some(Duration::from_secs(4)) },
        );
    }

    let media = match cfg.simulator.media {
        MediaMode::Audio => "audio: digits, tones and caller ID are found in real 8 kHz sound",
        MediaMode::Signalling => "signalling only: digits and tones as events",
    };
    println!("Hotline demo: the card simulator with a switchboard script ({origin})");
    println!("media: {media}; greeting: {how}");
    println!(
        "{} s of {} time, seed {}\n",
        args.duration,
        if args.fast { "virtual" } else { "real" },
        cfg.simulator.seed
    );

    let mut board = Switchboard {
        greeting: PlaySource::Prompt(greeting),
        greetings: Vec::new(),
        legs: HashMap::new(),
        next_play: 0,
        blocked: BTreeMap::new(),
        digits: 0,
        tones: 0,
        offered: 0,
    };
    let until = Instant::from_secs(args.duration);
    let handler = |card: &mut SimCard, now: Instant, ev: CardEvent| {
        match board.on_event(card, now, ev) {
            // The script acted on a view of a channel that events in flight have
            // already changed: say so and carry on, as the engine will.
            Err(e) if e.kind() == ErrorKind::InvalidState => {
                line(now, "script", format!("command refused: {e}"));
                Ok(())
            }
            other => other,
        }
    };
    let result = if args.fast {
        VirtualClock::new(Instant::ZERO).run_until(&mut sim, &rx, until, handler)
    } else {
        RealTimeClock::start().run_until(&mut sim, &rx, until, handler)
    };
    let _ = std::fs::remove_dir_all(&dir);
    result.map_err(|e| CliError::failure(format!("the simulated card failed: {e}")))?;

    let s = sim.stats();
    println!(
        "\n{} calls offered, {} answered, {} abandoned; {} outbound placed, {} answered; {} digits and {} tones detected",
        board.offered, s.inbound_answered, s.inbound_abandoned, s.outbound_placed, s.outbound_answered, board.digits, board.tones
    );
    Ok(())
}
