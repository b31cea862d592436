//! `hotline demo --fast`: the demo's day in virtual time. The same installation as the
//! live demo (its card simulator's callers, the engine, the IVR, the simulated agents,
//! call records in a store) driven by [`crate::coupled`], the virtual-time loop, so a
//! day of traffic runs in seconds. The card carries signalling only (digits and prompt
//! lengths as events, no audio), so there are no call recordings and voicemail
//! messages are not recorded; everything else — routing, menus, queues, agents, call
//! records — is what the live demo does.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use hotline_drivers::config::MediaMode;
use hotline_drivers::sim::SimCard;
use hotline_drivers::{CardEvent, Command, Instant};
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

/// The demo's center running in virtual time, for `hotline demo --fast` ([`run`]) and
/// for tests that act as a person at one of the desks.
pub struct Day {
    day: DayCenter,
    card: SimCard,
    events: Receiver<CardEvent>,
    now: Instant,
    seen: Tally,
    writer: std::thread::JoinHandle<crate::store::WriterStats>,
    seated: usize,
}

impl std::fmt::Debug for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Day").field("now", &self.now).field("calls", &self.seen.calls).finish_non_exhaustive()
    }
}

/// What the loop saw.
#[derive(Default)]
struct Tally {
    calls: u64,
    drained: bool,
    /// Screen pops: (when, agent).
    pops: Vec<(Instant, String)>,
}

impl Tally {
    fn see(&mut self, now: Instant, s: Seen<'_, CenterOutput>) {
        match s {
            Seen::Card(ev) if matches!(ev.kind, hotline_drivers::EventKind::Offered { .. }) => {
                self.calls += 1
            }
            Seen::Output(CenterOutput::Drained) => self.drained = true,
            Seen::Output(CenterOutput::ScreenPop(p)) => self.pops.push((now, p.agent.clone())),
            _ => {}
        }
    }
}

impl Day {
    /// Open the store and build the center at `opts.start_ms`; nothing has run yet.
    pub fn start(opts: &DayOptions) -> Result<Day, String> {
        let cfg = Config::parse(&opts.text, &opts.origin).map_err(|problems| problem_lines(&problems))?;
        let mut cards =
            hotline_drivers::config::parse(&opts.text, &opts.origin).map_err(|e| e.to_string())?;
        let card_id = match cards.cards.as_slice() {
            [c] if c.backend == hotline_drivers::config::Backend::Simulator => c.id,
            _ => {
                return Err(format!(
                    "{}: the day in virtual time needs exactly one simulated card",
                    opts.origin
                ))
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
        let (store_tx, writer, _) =
            crate::store::StoreWriter::spawn(&opts.store).map_err(|e| e.to_string())?;

        let ivr = crate::install::ivr_setup(&opts.text, &opts.origin)
            .map_err(|problems| problem_lines(&problems))?;
        let agents = SimAgents::new(&cfg, cfg.seed, &opts.people, &headsets);
        let seated = agents.seats().count();
        let cdr = crate::cdr::CdrBuilder::new(opts.start_ms).with_config(&cfg);
        let mut center = Center::new(Engine::new(cfg), opts.start_ms).with_records(cdr, None, false);
        if let Some(setup) = ivr {
            let (ivr, vars) = setup.build()?;
            center = center.with_ivr(ivr, vars);
        }
        let (tx, events) = unbounded();
        let card = SimCard::from_config(&cards, card_id, tx).map_err(|e| e.to_string())?;
        let day = DayCenter { center, agents, store: store_tx, back: VecDeque::new(), store_errors: 0 };
        let mut d = Day { day, card, events, now: Instant::ZERO, seen: Tally::default(), writer, seated };
        let seen = &mut d.seen;
        coupled::carry(&mut d.day, &mut d.card, d.now, &mut |t, s| seen.see(t, s));
        Ok(d)
    }

    /// Run until `until` (time since the start).
    pub fn run_until(&mut self, until: Instant) -> Result<(), String> {
        let seen = &mut self.seen;
        coupled::run_until(&mut self.day, &mut self.card, &self.events, &mut self.now, until, &mut |t, s| {
            seen.see(t, s)
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// An engine input now, as from a desktop (a person logging in, going ready).
    pub fn input(&mut self, input: Input) {
        self.day.handle(self.now, input);
        let seen = &mut self.seen;
        coupled::carry(&mut self.day, &mut self.card, self.now, &mut |t, s| seen.see(t, s));
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// The screen pops so far: (when, agent).
    pub fn pops(&self) -> &[(Instant, String)] {
        &self.seen.pops
    }

    /// End the day: no new calls; the calls in progress end as they would, up to
    /// `drain_limit`. The store is closed when this returns.
    pub fn finish(mut self, drain_limit: Duration) -> Result<DayRun, String> {
        self.day.center.handle(self.now, CenterInput::Drain { limit: drain_limit });
        let last = self.now + drain_limit + Duration::from_secs(1);
        let mut step = self.now;
        while !self.seen.drained && step < last {
            step = (step + Duration::from_secs(1)).min(last);
            self.run_until(step)?;
        }
        let end_ms = self.day.center.unix_ms(self.now);
        let run = DayRun {
            calls: self.seen.calls,
            agents: self.seated,
            end_ms,
            store_errors: self.day.store_errors,
        };
        // The writer commits what is queued and ends when its last sender is gone.
        drop(self.day);
        self.writer.join().map_err(|_| "the store writer panicked".to_string())?;
        Ok(run)
    }
}

/// Run the day. Errors say what is wrong with the installation or the store.
pub fn run(opts: &DayOptions) -> Result<DayRun, String> {
    let mut day = Day::start(opts)?;
    day.run_until(Instant::ZERO + opts.length)?;
    day.finish(opts.drain_limit)
}

/// The day's store next to the installation's own: `DIR/NAME-day.db` for `DIR/NAME.db`.
pub fn day_store(store: &Path) -> PathBuf {
    let stem = store.file_stem().map_or("hotline".into(), |s| s.to_string_lossy().to_string());
    store.with_file_name(format!("{stem}-day.db"))
}
