//! `hotline demo --fast`: the demo's day in virtual time. The same installation as the
//! live demo (its card simulator's callers, the engine, the IVR, the simulated agents,
//! call records in a store) driven by [`crate::coupled`], the virtual-time loop, so a
//! day of traffic runs in seconds. The card carries signalling only (digits and prompt
//! lengths as events, no audio), so there are no call recordings and voicemail
//! messages are not recorded; everything else — routing, menus, queues, agents, call
//! records — is what the live demo does.

use std::cell::Cell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{unbounded, Sender};
use hotline_drivers::config::MediaMode;
use hotline_drivers::sim::SimCard;
use hotline_drivers::{Command, Instant};
use hotline_recorder::RecorderEvent;

use crate::center::{Center, CenterInput, CenterOutput};
use crate::config::{problem_lines, Config};
use crate::coupled::{self, Driven, Seen};
use crate::engine::{Engine, Input};
use crate::sim_agents::SimAgents;
use crate::store::StoreOp;

/// What to run.
#[derive(Clone, Debug)]
pub struct DayOptions {
    /// The installation file's text and where it came from (for messages).
    pub text: String,
    pub origin: String,
    /// Unix milliseconds at the start of the run.
    pub start_ms: i64,
    /// How long the day is; calls still in progress then may finish (up to
    /// [`DayOptions::drain_limit`]), new ones are refused.
    pub length: Duration,
    pub drain_limit: Duration,
    /// Agents left for people (they stay logged out: nobody is at their desks).
    pub people: Vec<String>,
    /// The store for the day's records; it must not exist yet.
    pub store: PathBuf,
}

/// What the run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRun {
    /// Calls offered to the center.
    pub calls: u64,
    /// Simulated agents that logged in.
    pub agents: usize,
    /// Unix milliseconds at the end (the last call ended, or the drain limit).
    pub end_ms: i64,
    /// Store writes dropped (none unless the writer failed).
    pub store_errors: u64,
}

/// The center with its simulated agents and stand-ins for its worker threads: HTTP
/// requests are made in line (the IVR's lookups go to the mock repair service on a
/// loopback port), recordings and TTS are refused, store writes go to the writer.
struct DayCenter {
    center: Center,
    agents: SimAgents,
    store: Sender<StoreOp>,
    back: VecDeque<CenterInput>,
    store_errors: u64,
}

impl Driven for DayCenter {
    type Output = CenterOutput;

    fn handle(&mut self, now: Instant, input: Input) {
        if matches!(input, Input::Timeout) {
            for i in self.agents.poll(now) {
                self.center.handle(now, CenterInput::Engine(i));
            }
        }
        self.center.handle(now, CenterInput::Engine(input));
    }

    fn next_deadline(&self) -> Option<Instant> {
        [self.center.next_deadline(), self.agents.next_deadline()].into_iter().flatten().min()
    }

    fn poll_output(&mut self) -> Option<CenterOutput> {
        loop {
            let Some(o) = self.center.poll_output() else {
                let input = self.back.pop_front()?;
                self.center.handle(self.center.now(), input);
                continue;
            };
            match o {
                CenterOutput::Http(req) => {
                    self.back.push_back(CenterInput::Http(hotline_ivr::http::perform(&req)))
                }
                CenterOutput::Synthesize(req) => self.back.push_back(CenterInput::Synthesized {
                    id: req.id,
                    result: Err("no TTS in virtual time".into()),
                }),
                CenterOutput::StartRecording(r) => {
                    self.back.push_back(CenterInput::Recorder(RecorderEvent::Failed {
                        id: r.id,
                        message: "no audio in virtual time (hotline demo --fast)".into(),
                    }))
                }
                CenterOutput::Store(op) => {
                    if self.store.send(op).is_err() {
                        self.store_errors += 1;
                    }
                }
                other => return Some(other),
            }
        }
    }

    fn command(output: &CenterOutput) -> Option<&Command> {
        match output {
            CenterOutput::Command(c) => Some(c),
            _ => None,
        }
    }
}

/// Run the day. Errors say what is wrong with the installation or the store.
pub fn run(opts: &DayOptions) -> Result<DayRun, String> {
    let cfg = Config::parse(&opts.text, &opts.origin).map_err(|problems| problem_lines(&problems))?;
    let mut cards = hotline_drivers::config::parse(&opts.text, &opts.origin).map_err(|e| e.to_string())?;
    let card_id = match cards.cards.as_slice() {
        [c] if c.backend == hotline_drivers::config::Backend::Simulator => c.id,
        _ => {
            return Err(format!("{}: the day in virtual time needs exactly one simulated card", opts.origin))
        }
    };
    // Signalling only: the same events without frames, so a day takes seconds.
    cards.simulator.media = MediaMode::Signalling;
    let headsets = crate::serve::headset_stations(&cards);

    if opts.store.exists() {
        return Err(format!(
            "{}: already exists (the day's records go into a new store)",
            opts.store.display()
        ));
    }
    if let Some(dir) = opts.store.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let (store_tx, writer, _) = crate::store::StoreWriter::spawn(&opts.store).map_err(|e| e.to_string())?;

    let ivr =
        crate::install::ivr_setup(&opts.text, &opts.origin).map_err(|problems| problem_lines(&problems))?;
    let agents = SimAgents::new(&cfg, cfg.seed, &opts.people, &headsets);
    let seated = agents.seats().count();
    let cdr = crate::cdr::CdrBuilder::new(opts.start_ms).with_config(&cfg);
    let mut center = Center::new(Engine::new(cfg), opts.start_ms).with_records(cdr, None, false);
    if let Some(setup) = ivr {
        let (ivr, vars) = setup.build()?;
        center = center.with_ivr(ivr, vars);
    }
    let (tx, events) = unbounded();
    let mut card = SimCard::from_config(&cards, card_id, tx).map_err(|e| e.to_string())?;
    let mut day = DayCenter { center, agents, store: store_tx, back: VecDeque::new(), store_errors: 0 };

    let calls = Cell::new(0u64);
    let drained = Cell::new(false);
    let mut seen = |_: Instant, s: Seen<'_, CenterOutput>| match s {
        Seen::Card(ev) if matches!(ev.kind, hotline_drivers::EventKind::Offered { .. }) => {
            calls.set(calls.get() + 1)
        }
        Seen::Output(CenterOutput::Drained) => drained.set(true),
        _ => {}
    };
    let mut now = Instant::ZERO;
    coupled::carry(&mut day, &mut card, now, &mut seen);
    let end = Instant::ZERO + opts.length;
    coupled::run_until(&mut day, &mut card, &events, &mut now, end, &mut seen).map_err(|e| e.to_string())?;
    // The day is over: no new calls; the calls in progress end as they would.
    day.center.handle(now, CenterInput::Drain { limit: opts.drain_limit });
    let last = end + opts.drain_limit + Duration::from_secs(1);
    let mut step = now;
    let mut drained_at = None;
    while drained_at.is_none() && step < last {
        step = (step + Duration::from_secs(1)).min(last);
        coupled::run_until(&mut day, &mut card, &events, &mut now, step, &mut seen)
            .map_err(|e| e.to_string())?;
        if drained.get() {
            drained_at = Some(now);
        }
    }
    let end_ms = day.center.unix_ms(drained_at.unwrap_or(now));
    let store_errors = day.store_errors;
    // The writer commits what is queued and ends when its last sender is gone.
    drop(day);
    let _ = writer.join().map_err(|_| "the store writer panicked".to_string())?;
    Ok(DayRun { calls: calls.get(), agents: seated, end_ms, store_errors })
}

/// The day's store next to the installation's own: `DIR/NAME-day.db` for `DIR/NAME.db`.
pub fn day_store(store: &Path) -> PathBuf {
    let stem = store.file_stem().map_or("hotline".into(), |s| s.to_string_lossy().to_string());
    store.with_file_name(format!("{stem}-day.db"))
}
