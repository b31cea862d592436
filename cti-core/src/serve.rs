//! The live installation (`hotline serve`, `hotline demo`): threads around the
//! sans-IO [`Center`], joined by bounded crossbeam channels.
//!
//! - the card thread owns the card backends: it polls them on a real clock, forwards
//!   their events to the engine thread and carries out the commands it is sent;
//! - the engine thread owns all call state (the [`Center`]) and never waits on disk or
//!   network: what it sends elsewhere goes with `try_send`, and a full queue is counted
//!   and logged, never waited on;
//! - the caller's thread gets the wallboard figures once a second and decides when to
//!   drain, reload or stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use hotline_drivers::config::{Backend, CardConfig};
use hotline_drivers::{Card, CardEvent, Command, ErrorKind};

use crate::center::{Center, CenterInput, CenterOutput, RecordingStart, WallboardStats};
use crate::config::{problem_lines, Config};
use crate::engine::{Engine, Input};
use crate::link::{History, LinkConfig, LinkHandle, LinkMsg};
use crate::runtime::{Clock, RealClock};
use crate::sim_agents::SimAgents;
use hotline_ivr::{HttpAnswer, HttpRequest, SynthRequest};
use hotline_recorder::{Format, Layout, Recorder, RecorderEvent, RecordingSpec};

/// How to run.
#[derive(Clone)]
pub struct ServeOptions {
    /// The installation file's text and where it came from (for messages).
    pub text: String,
    pub origin: String,
    /// Run simulated agents at the desktops (the demo).
    pub sim_agents: bool,
    /// Agents the simulated agents leave for people (who log in from the desktop).
    pub people: Vec<String>,
    /// Unix milliseconds now (the wall clock is read by the caller, not here).
    pub wall_ms: i64,
    /// Past calls for screen pops and the agent's calls today.
    /// Past calls for screen pops and the agent's calls today (default: the store).
    pub history: Option<Arc<dyn History + Send + Sync>>,
    /// When the configured link ports are taken, use any free ones (the demo).
    pub any_port_if_busy: bool,
    /// Adjust the link's configuration after it is read (tests: port 0).
    pub link_override: Option<fn(&mut LinkConfig)>,
    /// Tests: while set, every store commit fails as on a full disk.
    pub store_fault: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// The installation file itself, for `hotline ctl reload` (none: the built-in demo).
    pub config_path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("origin", &self.origin)
            .field("sim_agents", &self.sim_agents)
            .finish_non_exhaustive()
    }
}

impl ServeOptions {
    pub fn new(text: String, origin: String, wall_ms: i64) -> ServeOptions {
        ServeOptions {
            text,
            origin,
            sim_agents: false,
            people: Vec::new(),
            wall_ms,
            history: None,
            any_port_if_busy: false,
            link_override: None,
            store_fault: None,
            config_path: None,
        }
    }
}

/// Messages to the engine thread.
#[derive(Debug)]
pub enum EngineMsg {
    Input(CenterInput),
    /// Apply a new configuration (SIGHUP); the answer lists what changed or why
    /// nothing was applied.
    Reload(Box<Config>, Vec<(String, i64, i64)>, Sender<Result<Vec<String>, String>>),
    /// Stop now (after a drain, or on a second Ctrl-C).
    Stop,
    /// A question from the control socket (`hotline ctl`), answered from the engine
    /// thread's state.
    Ctl(crate::ctl::Query, Sender<crate::ctl::Answer>),
}

/// What other threads see of a running installation.
#[derive(Debug)]
pub struct Running {
    /// The wallboard figures, once a second.
    pub stats: Receiver<WallboardStats>,
    /// The CTI link server (TCP, WebSocket, web pages).
    pub link: LinkHandle,
    /// Set when the drain has finished.
    pub drained: Receiver<()>,
    to_engine: Sender<EngineMsg>,
    inputs: Sender<Input>,
    sim_calls: Sender<SimulatedCall>,
    store_path: std::path::PathBuf,
    /// Messages dropped because a queue was full, by queue.
    pub dropped: Arc<Counters>,
    engine: Option<JoinHandle<Engine>>,
    cards: Option<JoinHandle<Result<(), String>>>,
    store: Option<JoinHandle<crate::store::WriterStats>>,
    /// The system alarms (disk full), raised and cleared by the threads that see them.
    pub alarms: Arc<crate::alarm::Alarms>,
    /// One process per store: held until the store is closed.
    lock: Option<crate::store::StoreLock>,
    retention: Option<(Sender<()>, JoinHandle<()>)>,
    ctl: Option<crate::ctl::CtlHandle>,
}

/// A caller to make arrive on a simulated card now (`Running::simulate_call`).
#[derive(Debug)]
pub struct SimulatedCall {
    pub card: u16,
    pub call: hotline_drivers::sim::InboundCall,
}

/// Counters of queue overflows between threads.
#[derive(Debug, Default)]
pub struct Counters {
    pub to_card: AtomicU64,
    pub to_store: AtomicU64,
    pub to_workers: AtomicU64,
    pub to_engine: AtomicU64,
}

const QUEUE: usize = 8192;

impl Running {
    /// A sender for engine inputs (the CTI link's requests).
    pub fn input_sender(&self) -> Sender<Input> {
        self.inputs.clone()
    }

    /// Make a caller arrive now on a simulated card (demos, tests, the web fixture);
    /// on a hardware card it is logged and ignored.
    pub fn simulate_call(&self, card: u16, call: hotline_drivers::sim::InboundCall) -> Result<(), String> {
        self.sim_calls
            .send(SimulatedCall { card, call })
            .map_err(|_| "the card thread has stopped".to_string())
    }

    /// Begin a graceful drain: new calls are refused, calls in progress continue up to
    /// `limit`.
    pub fn drain(&self, limit: Duration) {
        let _ = self.to_engine.send(EngineMsg::Input(CenterInput::Drain { limit }));
    }

    /// Reload the engine's configuration from the installation file's text without
    /// dropping calls (see `Engine::reload` for what can change). Card tables are not
    /// reloaded.
    pub fn reload(&self, text: &str, origin: &str) -> Result<Vec<String>, String> {
        let (msg, rx) = reload_message(text, origin, &self.store_path)?;
        self.to_engine.send(msg).map_err(|_| "the engine thread has stopped".to_string())?;
        rx.recv_timeout(Duration::from_secs(5)).map_err(|_| "the engine thread did not answer".to_string())?
    }

    /// The control socket (`hotline ctl`), when it could be opened.
    pub fn control_socket(&self) -> Option<&std::path::Path> {
        self.ctl.as_ref().map(|c| c.path.as_path())
    }

    /// Stop the threads and wait for them. Returns the engine (for a final report).
    pub fn stop(mut self) -> Result<Engine, String> {
        if let Some(mut c) = self.ctl.take() {
            c.shutdown();
        }
        let _ = self.to_engine.send(EngineMsg::Stop);
        self.link.shutdown();
        let engine =
            self.engine.take().map(|h| h.join().map_err(|_| "the engine thread panicked".to_string()));
        if let Some(h) = self.cards.take() {
            h.join().map_err(|_| "the card thread panicked".to_string())??;
        }
        if let Some((stop, h)) = self.retention.take() {
            drop(stop);
            h.join().map_err(|_| "the retention thread panicked".to_string())?;
        }
        // The engine thread has ended (its calls cleared, its recordings finished and
        // indexed, a `Closing` sent) and dropped its store sender: the writer commits
        // what is queued and closes the database.
        if let Some(h) = self.store.take() {
            let stats = h.join().map_err(|_| "the store writer panicked".to_string())?;
            if stats.lost > 0 {
                tracing::error!("store closed; {} operations could not be written: {stats:?}", stats.lost);
            } else {
                tracing::info!("store closed cleanly: {stats:?}");
            }
        }
        drop(self.lock.take());
        match engine {
            Some(r) => r,
            None => Err("already stopped".into()),
        }
    }
}

/// A reload for the engine thread from an installation file's text, and where its
/// answer comes (SIGHUP, `hotline ctl reload`).
#[allow(clippy::type_complexity)]
pub(crate) fn reload_message(
    text: &str,
    origin: &str,
    store_path: &std::path::Path,
) -> Result<(EngineMsg, Receiver<Result<Vec<String>, String>>), String> {
    let cfg = Config::parse(text, origin).map_err(|problems| problem_lines(&problems))?;
    // Recording schedules added from the CLI since the start come with it.
    let schedules = crate::store::Store::open(store_path)
        .and_then(|s| s.schedules())
        .map_err(|e| format!("recording schedules: {e}"))?
        .into_iter()
        .map(|s| (s.agent, s.from_ms, s.from_ms + s.duration_ms))
        .collect();
    let (tx, rx) = bounded(1);
    Ok((EngineMsg::Reload(Box::new(cfg), schedules, tx), rx))
}

/// Start the card and engine threads for an installation file.
pub fn start(opts: ServeOptions) -> Result<Running, String> {
    let cfg = Config::parse(&opts.text, &opts.origin).map_err(|problems| problem_lines(&problems))?;
    let cards_cfg = hotline_drivers::config::parse(&opts.text, &opts.origin).map_err(|e| e.to_string())?;
    if cards_cfg.cards.is_empty() {
        return Err(format!("{}: no [[card]] is configured", opts.origin));
    }
    let headsets = headset_stations(&cards_cfg);
    // The store: recovery after a crash, then one writer thread; a read connection for
    // the link's history and the recording policy's start.
    let store_cfg = crate::store::StoreConfig::from_toml(&opts.text, std::path::Path::new(&opts.origin))?;
    if let Some(dir) = store_cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // One process per store: a second serve or demo on this database stops here.
    let lock =
        crate::store::StoreLock::acquire(&store_cfg.path, &command_line()).map_err(|e| e.to_string())?;
    let alarms = Arc::new(crate::alarm::Alarms::new());
    let writer_opts = crate::store::WriterOptions {
        alarms: Some(alarms.clone()),
        fault: opts.store_fault.clone(),
        spool_capacity: None,
        close_grace: None,
    };
    let (store_tx, store_join, recovered) =
        crate::store::StoreWriter::spawn_with(&store_cfg.path, writer_opts).map_err(|e| e.to_string())?;
    if recovered != crate::store::Recovered::default() {
        tracing::warn!("the store was not closed cleanly; recovered: {recovered:?}");
    }
    let reader = crate::store::Store::open(&store_cfg.path).map_err(|e| e.to_string())?;
    let first_id = reader.next_recording_id().map_err(|e| e.to_string())?;
    let schedules = reader.schedules().map_err(|e| e.to_string())?;

    let clock = RealClock::new();
    let (to_engine, control_rx) = bounded::<EngineMsg>(64);
    let (inputs_tx, inputs_rx) = bounded::<Input>(QUEUE);
    let (to_card, card_rx) = bounded::<Command>(QUEUE);
    let (sim_calls, sim_calls_rx) = bounded::<SimulatedCall>(64);
    let (stats_tx, stats) = bounded(4);
    let (drained_tx, drained) = bounded(1);
    let dropped = Arc::new(Counters::default());

    // The card thread opens the cards itself: hardware handles stay on one thread.
    let (ready_tx, ready_rx) = bounded::<Result<(), String>>(1);
    let cards = {
        let to_engine = inputs_tx.clone();
        let dropped = dropped.clone();
        std::thread::Builder::new()
            .name("hotline-cards".into())
            .spawn(move || card_thread(cards_cfg, clock, card_rx, sim_calls_rx, to_engine, ready_tx, dropped))
            .map_err(|e| format!("cannot start the card thread: {e}"))?
    };
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = cards.join();
            return Err(e);
        }
        Err(_) => return Err("the card thread ended while opening the cards".into()),
    }

    let mut link_cfg =
        LinkConfig::parse(&opts.text, &opts.origin, &cfg).map_err(|problems| problem_lines(&problems))?;
    link_cfg.wall_base_unix_ms = opts.wall_ms;
    link_cfg.pages = crate::link::pages::web_pages();
    if let Some(f) = &opts.link_override {
        f(&mut link_cfg);
    }
    let history: Arc<dyn History + Send + Sync> = match &opts.history {
        Some(h) => h.clone(),
        None => Arc::new(StoreHistory {
            store: std::sync::Mutex::new(
                crate::store::Store::open(&store_cfg.path).map_err(|e| e.to_string())?,
            ),
            utc_offset_ms: i64::from(cfg.utc_offset_secs) * 1000,
        }),
    };
    let link = match crate::link::spawn(link_cfg.clone(), inputs_tx.clone(), history.clone()) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && opts.any_port_if_busy => {
            // The demo runs beside other things: any free port will do, it prints the URL.
            let any = |a: Option<std::net::SocketAddr>| {
                a.map(|mut a| {
                    a.set_port(0);
                    a
                })
            };
            link_cfg.tcp = any(link_cfg.tcp);
            link_cfg.http = any(link_cfg.http);
            crate::link::spawn(link_cfg, inputs_tx.clone(), history)
                .map_err(|e| format!("cannot start the CTI link: {e}"))?
        }
        Err(e) => {
            let _ = cards.join();
            return Err(format!(
                "cannot start the CTI link on {:?} / {:?}: {e}",
                link_cfg.tcp, link_cfg.http
            ));
        }
    };

    alarms.set_link(link.clone());

    // Recordings: the `[recording]` table (defaults when absent); files left by a
    // crash are repaired before anything new is written.
    let rec_cfg = hotline_recorder::config::RecordingConfig::parse(&opts.text, &opts.origin)
        .map_err(|es| es.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))?;
    match hotline_recorder::repair_dir(&rec_cfg.dir) {
        Ok(fixed) if !fixed.is_empty() => {
            tracing::warn!(
                "{} recording(s) cut short by a crash were repaired in {}",
                fixed.len(),
                rec_cfg.dir.display()
            );
            index_repaired(&reader, &store_tx, &fixed);
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot check {} for recordings cut short: {e}", rec_cfg.dir.display()),
    }
    let (recorder, recorder_events) = Recorder::spawn(rec_cfg.recorder.clone());
    // Retention classes and the disk watermark, on a thread of their own.
    let (retention_stop, retention_stop_rx) = bounded::<()>(1);
    let retention = crate::retention::Sweep {
        policy: rec_cfg.retention.clone(),
        dir: rec_cfg.dir.clone(),
        store_path: store_cfg.path.clone(),
        store: store_tx.clone(),
        alarms: alarms.clone(),
        disk: None,
    }
    .spawn(retention_stop_rx)
    .map_err(|e| format!("cannot start the retention thread: {e}"))?;

    let ivr =
        crate::install::ivr_setup(&opts.text, &opts.origin).map_err(|problems| problem_lines(&problems))?;
    if let Some(setup) = &ivr {
        for v in &setup.voices {
            tracing::info!("prompts {v}");
        }
    }
    let (http_tx, http_rx) = bounded::<HttpRequest>(256);
    let (http_ans_tx, http_ans_rx) = bounded::<HttpAnswer>(256);
    // A few workers, so one slow business system does not hold up the others.
    for i in 0..4 {
        let (rx, tx) = (http_rx.clone(), http_ans_tx.clone());
        std::thread::Builder::new()
            .name(format!("hotline-http-{i}"))
            .spawn(move || hotline_ivr::http_worker(rx, tx))
            .map_err(|e| format!("cannot start an HTTP worker: {e}"))?;
    }
    let (synth_tx, synth_rx) = bounded::<SynthRequest>(64);
    let (synth_ans_tx, synth_ans_rx) = bounded(64);
    let tts = ivr.as_ref().and_then(|s| s.tts.clone());
    std::thread::Builder::new()
        .name("hotline-tts".into())
        .spawn(move || {
            for req in synth_rx {
                let result = match &tts {
                    Some(t) => hotline_ivr::prompts::synthesize(t, &req),
                    None => Err("no TTS is configured ([ivr] tts)".to_string()),
                };
                if synth_ans_tx.send((req.id, result)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the TTS worker: {e}"))?;

    let agents = opts.sim_agents.then(|| SimAgents::new(&cfg, cfg.seed, &opts.people, &headsets));
    let format_name = match rec_cfg.format {
        Format::Wav(e) => format!("wav-{}", format!("{e:?}").to_lowercase()),
        Format::Mp3 { kbps } => format!("mp3-{kbps}"),
    };
    let mut policy = crate::recording::RecordingPolicy::new(
        &cfg,
        crate::recording::PolicySettings {
            dir: rec_cfg.dir.display().to_string(),
            format: format_name,
            retention: "normal".into(),
            wall_base: opts.wall_ms,
            first_id,
        },
    );
    policy.set_schedules(
        schedules.iter().map(|s| (s.agent.clone(), s.from_ms, s.from_ms + s.duration_ms)).collect(),
    );
    let cdr = crate::cdr::CdrBuilder::new(opts.wall_ms).with_config(&cfg);
    let mut center = Center::new(Engine::new(cfg), opts.wall_ms).with_records(
        cdr,
        Some(policy),
        rec_cfg.layout == hotline_recorder::config::LayoutKind::Stereo,
    );
    if let Some(setup) = ivr {
        let (ivr, vars) = setup.build()?;
        center = center.with_ivr(ivr, vars);
    }
    let engine = {
        let to_card = to_card.clone();
        let dropped = dropped.clone();
        let outs = Outs {
            to_card,
            http: http_tx,
            synth: synth_tx,
            recorder,
            recording_format: rec_cfg.format,
            voicemail_format: Format::Wav(hotline_drivers::dsp::wav::Encoding::Pcm16),
            store: Some(store_tx),
            sinks: std::cell::RefCell::new(HashMap::new()),
            stats: stats_tx,
            link: link.clone(),
            drained: drained_tx,
            dropped,
            alarms: alarms.clone(),
            wall_base_ms: opts.wall_ms,
        };
        let returns = Returns { http: http_ans_rx, synth: synth_ans_rx, recorder: recorder_events };
        std::thread::Builder::new()
            .name("hotline-engine".into())
            .spawn(move || engine_thread(center, agents, clock, inputs_rx, control_rx, returns, outs))
            .map_err(|e| format!("cannot start the engine thread: {e}"))?
    };
    drop(to_card);
    // The control socket beside the store (`hotline ctl`); a server runs without one
    // when it cannot be made, and says so.
    let ctl_ctx = crate::ctl::Context {
        to_engine: to_engine.clone(),
        config_path: opts.config_path.clone(),
        origin: opts.origin.clone(),
        store_path: store_cfg.path.clone(),
        recordings_dir: rec_cfg.dir.clone(),
        dropped: dropped.clone(),
    };
    let ctl = match crate::ctl::spawn(crate::ctl::socket_path(&store_cfg.path), ctl_ctx) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("no control socket: {e}");
            None
        }
    };
    Ok(Running {
        stats,
        link,
        drained,
        to_engine,
        inputs: inputs_tx,
        sim_calls,
        store_path: store_cfg.path.clone(),
        dropped,
        engine: Some(engine),
        cards: Some(cards),
        store: Some(store_join),
        alarms,
        lock: Some(lock),
        retention: Some((retention_stop, retention)),
        ctl,
    })
}

/// How this process was started, for the store's lock file (`hotline demo --duration 60`).
fn command_line() -> String {
    let mut args = std::env::args();
    let first = args.next().map(|a| {
        std::path::Path::new(&a).file_name().map_or(a.clone(), |n| n.to_string_lossy().into_owned())
    });
    first.into_iter().chain(args).collect::<Vec<_>>().join(" ")
}

/// The simulator's headset stations (answered from the desktop).
pub fn headset_stations(cards: &hotline_drivers::config::Config) -> Vec<hotline_drivers::ChannelId> {
    let h = &cards.simulator.headsets;
    h.iter()
        .flat_map(|&(card, ports)| ports.iter().map(move |p| hotline_drivers::ChannelId::fxs(card, p)))
        .collect()
}

/// Give the recording index the length of each recording the crash repair finished.
/// `Store::recover` marked them cut short but could not know how much audio reached
/// the disk. A file is `DIR/DAY/ID.EXT` (the recording policy's naming); one whose
/// index line has another path, or a length already, is left alone.
fn index_repaired(
    reader: &crate::store::Store,
    store: &Sender<crate::store::StoreOp>,
    fixed: &[hotline_recorder::Repaired],
) {
    for r in fixed.iter().filter(|r| r.problem.is_none()) {
        let Some(id) = r.path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let Ok(row) = reader.recording(id) else { continue };
        if std::path::Path::new(&row.path) != r.path || row.duration_ms.is_some() {
            continue;
        }
        let op = crate::store::StoreOp::RecordingFinished {
            id,
            duration_ms: r.duration.as_millis() as i64,
            dropped: row.dropped.max(0) as u64,
            cut_short: true,
        };
        // The writer has just started with an empty queue: this cannot be full.
        if store.try_send(op).is_err() {
            tracing::warn!("recording {id}: the repaired length could not be indexed");
        }
    }
}

struct Outs {
    to_card: Sender<Command>,
    http: Sender<HttpRequest>,
    synth: Sender<SynthRequest>,
    recorder: Recorder,
    recording_format: Format,
    voicemail_format: Format,
    store: Option<Sender<crate::store::StoreOp>>,
    /// The sinks of running call recordings, for legs that join later (the engine
    /// thread's own, hence a plain cell).
    sinks: std::cell::RefCell<HashMap<u64, Sender<hotline_drivers::command::TapFrame>>>,
    stats: Sender<WallboardStats>,
    link: LinkHandle,
    drained: Sender<()>,
    dropped: Arc<Counters>,
    alarms: Arc<crate::alarm::Alarms>,
    /// Unix ms at the clock's zero (the store's `Closing` time).
    wall_base_ms: i64,
}

fn offer<T>(tx: &Sender<T>, v: T, counter: &AtomicU64, what: &str) -> Result<(), T> {
    match tx.try_send(v) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(v)) => {
            if counter.fetch_add(1, Ordering::Relaxed) % 1000 == 0 {
                tracing::warn!("the {what} queue is full; dropping (counted)");
            }
            Err(v)
        }
        Err(TrySendError::Disconnected(v)) => Err(v),
    }
}

/// What flows back to the engine thread from its workers.
struct Returns {
    http: Receiver<HttpAnswer>,
    synth: Receiver<(u64, Result<std::path::PathBuf, String>)>,
    recorder: Receiver<RecorderEvent>,
}

fn engine_thread(
    mut center: Center,
    mut agents: Option<SimAgents>,
    clock: RealClock,
    inputs: Receiver<Input>,
    control: Receiver<EngineMsg>,
    returns: Returns,
    outs: Outs,
) -> Engine {
    loop {
        let now = clock.now();
        if let Some(a) = agents.as_mut() {
            for input in a.poll(now) {
                center.handle(now, CenterInput::Engine(input));
            }
        }
        dispatch(&mut center, &outs);
        let next = [center.next_deadline(), agents.as_ref().and_then(|a| a.next_deadline())]
            .into_iter()
            .flatten()
            .min();
        let wait = next.map(|t| t.saturating_duration_since(clock.now())).unwrap_or(Duration::from_secs(1));
        crossbeam_channel::select! {
            recv(inputs) -> m => match m {
                Ok(i) => center.handle(clock.now(), CenterInput::Engine(i)),
                Err(_) => break,
            },
            recv(control) -> m => match m {
                Ok(EngineMsg::Input(i)) => center.handle(clock.now(), i),
                Ok(EngineMsg::Reload(cfg, schedules, reply)) => {
                    center.set_recording_schedules(schedules);
                    let _ = reply.send(center.reload(*cfg));
                }
                Ok(EngineMsg::Ctl(q, reply)) => {
                    let _ = reply.try_send(crate::ctl::answer(&mut center, clock.now(), q));
                }
                Ok(EngineMsg::Stop) | Err(_) => break,
            },
            recv(returns.http) -> m => if let Ok(a) = m {
                center.handle(clock.now(), CenterInput::Http(a));
            },
            recv(returns.synth) -> m => if let Ok((id, result)) = m {
                center.handle(clock.now(), CenterInput::Synthesized { id, result });
            },
            recv(returns.recorder) -> m => if let Ok(ev) = m {
                recorder_alarm(&outs.alarms, &ev);
                center.handle(clock.now(), CenterInput::Recorder(ev));
            },
            default(wait) => center.handle(clock.now(), CenterInput::Engine(Input::Timeout)),
        }
        // Take what else is queued before sleeping again (bounded, so control
        // messages are not starved).
        for _ in 0..256 {
            match inputs.try_recv() {
                Ok(i) => center.handle(clock.now(), CenterInput::Engine(i)),
                Err(_) => break,
            }
        }
        dispatch(&mut center, &outs);
    }
    finish(&mut center, &clock, &inputs, &returns, &outs);
    center.into_engine()
}

/// How long a stop waits for calls to clear and recordings to be finished.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The clean end of a run: clear the calls still in progress, end every recording and
/// wait (up to [`STOP_GRACE`]) for the card to confirm the releases and the recorder to
/// finish the files, so that call records close and recordings are indexed with their
/// length; then tell the store the run ends (open agent states close now). The next
/// start finds nothing to recover.
fn finish(center: &mut Center, clock: &RealClock, inputs: &Receiver<Input>, returns: &Returns, outs: &Outs) {
    dispatch(center, outs);
    center.shutdown(clock.now());
    dispatch(center, outs);
    let end = clock.now() + STOP_GRACE;
    while !center.stopped() && clock.now() < end {
        crossbeam_channel::select! {
            recv(inputs) -> m => match m {
                Ok(i) => center.handle(clock.now(), CenterInput::Engine(i)),
                Err(_) => break,
            },
            recv(returns.recorder) -> m => if let Ok(ev) = m {
                recorder_alarm(&outs.alarms, &ev);
                center.handle(clock.now(), CenterInput::Recorder(ev));
            },
            default(Duration::from_millis(20)) => center.handle(clock.now(), CenterInput::Engine(Input::Timeout)),
        }
        dispatch(center, outs);
    }
    if !center.stopped() {
        tracing::warn!(
            "stop: {} call(s) still in progress after {} s; their records are closed as cut",
            center.engine().call_count(),
            STOP_GRACE.as_secs()
        );
    }
    let at_ms = outs.wall_base_ms + (clock.now().as_micros() / 1000) as i64;
    if let Some(store) = &outs.store {
        // Blocking here is fine: the engine has stopped, and the writer drains the queue.
        let _ = store.send_timeout(crate::store::StoreOp::Closing { at_ms }, Duration::from_secs(5));
    }
}

/// The recorder's events say whether recordings reach the disk: a file that cannot be
/// written for want of space raises `disk_full`; the next one finished clears it.
fn recorder_alarm(alarms: &crate::alarm::Alarms, ev: &RecorderEvent) {
    match ev {
        RecorderEvent::Failed { id, message } if disk_full_message(message) => alarms.raise(
            crate::alarm::DISK_FULL,
            "recorder",
            &format!("recording {id} could not be written ({message}); calls are not being recorded: free space on the recording disk"),
        ),
        RecorderEvent::Finished { .. } => {
            alarms.clear(crate::alarm::DISK_FULL, "recorder", "recordings are written again")
        }
        RecorderEvent::Failed { .. } => {}
    }
}

/// An I/O error that says the disk (or the file size limit) is full: ENOSPC, EDQUOT,
/// EFBIG, as `std::io::Error` prints them.
fn disk_full_message(m: &str) -> bool {
    ["os error 28)", "os error 122)", "os error 27)"].iter().any(|k| m.contains(k))
}

fn dispatch(center: &mut Center, outs: &Outs) {
    // Answers that go straight back to the center (refused commands, recordings that
    // could not start), handled after the outputs are drained.
    let mut back: Vec<CenterInput> = Vec::new();
    loop {
        while let Some(o) = center.poll_output() {
            match o {
                CenterOutput::Command(c) => {
                    if let Err(command) = offer(&outs.to_card, c, &outs.dropped.to_card, "card command") {
                        // The engine undoes what depended on it.
                        back.push(CenterInput::Engine(Input::CommandFailed {
                            command,
                            kind: ErrorKind::Resource,
                        }));
                    }
                }
                CenterOutput::Link { at_unix_ms, output } => {
                    outs.link.send(LinkMsg::Output { at_unix_ms, output });
                }
                CenterOutput::ScreenPop(pop) => outs.link.send(LinkMsg::ScreenPop(pop)),
                // The call record builder has seen these; the store gets its rows.
                CenterOutput::IvrNode { .. } => {}
                CenterOutput::Stats(s) => {
                    outs.link.send(LinkMsg::Stats(link_stats(&s)));
                    let _ = outs.stats.try_send(s);
                }
                CenterOutput::Drained => {
                    let _ = outs.drained.try_send(());
                }
                CenterOutput::Http(req) => {
                    let id = req.id;
                    if offer(&outs.http, req, &outs.dropped.to_workers, "HTTP worker").is_err() {
                        let result = Err("too many HTTP requests in progress".to_string());
                        back.push(CenterInput::Http(hotline_ivr::HttpAnswer { id, result }));
                    }
                }
                CenterOutput::Synthesize(req) => {
                    let id = req.id;
                    if offer(&outs.synth, req, &outs.dropped.to_workers, "TTS worker").is_err() {
                        back.push(CenterInput::Synthesized {
                            id,
                            result: Err("the TTS worker is busy".into()),
                        });
                    }
                }
                CenterOutput::StartRecording(r) => {
                    if let Some(failed) = start_recording(outs, r) {
                        back.push(failed);
                    }
                }
                CenterOutput::StopRecording { id } => {
                    outs.sinks.borrow_mut().remove(&id);
                    outs.recorder.end(id);
                }
                CenterOutput::AddLeg { id, ch } => {
                    match outs.recorder.add_leg(id, ch, hotline_recorder::Side::Agent) {
                        Ok(()) => {
                            let sink = outs.sinks.borrow().get(&id).cloned();
                            if let Some(sink) = sink {
                                let tap = Command::StartTap { ch, id: id as u32, sink };
                                let _ = offer(&outs.to_card, tap, &outs.dropped.to_card, "card command");
                            }
                        }
                        Err(e) => tracing::warn!("recording {id}: cannot add {ch}: {e}"),
                    }
                }
                CenterOutput::Store(op) => {
                    if let Some(store) = &outs.store {
                        let _ = offer(store, op, &outs.dropped.to_store, "store");
                    }
                }
                CenterOutput::Voicemail { left, .. } => {
                    tracing::info!(
                        "voicemail for {} from {}: {} ({:.1} s)",
                        left.mailbox,
                        left.caller.as_deref().unwrap_or("unknown"),
                        left.path.display(),
                        left.duration.as_secs_f64()
                    );
                }
            }
        }
        if back.is_empty() {
            return;
        }
        let now = center.now();
        for input in back.drain(..) {
            center.handle(now, input);
        }
    }
}

/// Begin a recording and tap its channels into it. `Some`: it could not start (the
/// center is told as if the recorder had failed it).
fn start_recording(outs: &Outs, r: RecordingStart) -> Option<CenterInput> {
    let format = if r.voicemail { outs.voicemail_format } else { outs.recording_format };
    let layout = match (r.stereo, r.channels.as_slice()) {
        (true, [left, right]) => Layout::Stereo { left: *left, right: *right },
        _ => Layout::Mono { chs: r.channels.clone() },
    };
    let spec = RecordingSpec {
        id: r.id,
        path: r.path.clone(),
        format,
        layout,
        max_len: r.max,
        silence_end: r.silence_end,
    };
    match outs.recorder.begin(spec) {
        Ok(sink) => {
            if !r.voicemail {
                outs.sinks.borrow_mut().insert(r.id, sink.clone());
            }
            for ch in r.channels {
                let tap = Command::StartTap { ch, id: r.id as u32, sink: sink.clone() };
                if offer(&outs.to_card, tap, &outs.dropped.to_card, "card command").is_err() {
                    outs.recorder.end(r.id);
                }
            }
            None
        }
        Err(e) => Some(CenterInput::Recorder(RecorderEvent::Failed { id: r.id, message: e.to_string() })),
    }
}

/// The link's view of past calls, read from the store (WAL: reads never wait for the
/// writer; this runs on the link's thread, never the engine's).
struct StoreHistory {
    store: std::sync::Mutex<crate::store::Store>,
    utc_offset_ms: i64,
}

impl History for StoreHistory {
    fn previous_contacts(&self, number: &str) -> Vec<crate::link::Contact> {
        let Ok(store) = self.store.lock() else { return Vec::new() };
        match store.previous_contacts(number, 11) {
            Ok(rows) => rows
                .into_iter()
                // The call being popped is in progress: it is not a previous contact.
                .filter(|c| c.outcome.is_some())
                .take(10)
                .map(|c| crate::link::Contact {
                    call: c.call,
                    at_unix_ms: c.arrived_ms,
                    agent: c.agent,
                    queue: c.queue,
                    talk_secs: (c.duration_ms.unwrap_or(0) / 1000).max(0) as u32,
                    outcome: c.outcome.unwrap_or_else(|| "in progress".into()),
                })
                .collect(),
            Err(e) => {
                tracing::warn!("previous contacts of {number}: {e}");
                Vec::new()
            }
        }
    }

    fn agent_calls_today(&self, agent: &str) -> Vec<crate::link::CallSummary> {
        let local = crate::link::now_unix_ms() + self.utc_offset_ms;
        let midnight = local - local.rem_euclid(86_400_000) - self.utc_offset_ms;
        let Ok(store) = self.store.lock() else { return Vec::new() };
        match store.agent_calls_since(agent, midnight) {
            Ok(rows) => rows
                .into_iter()
                .map(|c| crate::link::CallSummary {
                    call: c.call,
                    at_unix_ms: c.answered_ms,
                    number: c.caller,
                    direction: "inbound".into(),
                    queue: c.queue,
                    talk_secs: c.ended_ms.map_or(0, |e| ((e - c.answered_ms) / 1000).max(0) as u32),
                    outcome: if c.ended_ms.is_some() { "answered" } else { "in progress" }.into(),
                })
                .collect(),
            Err(e) => {
                tracing::warn!("calls of {agent} today: {e}");
                Vec::new()
            }
        }
    }
}

/// The wallboard figures as the link carries them.
fn link_stats(s: &WallboardStats) -> crate::link::WallboardStats {
    crate::link::WallboardStats {
        at_unix_ms: s.at_unix_ms,
        queues: s
            .queues
            .iter()
            .map(|q| crate::link::QueueStats {
                queue: q.name.clone(),
                waiting: q.waiting,
                longest_wait_secs: q.longest_wait_s as u64,
                answered: q.answered,
                abandoned: q.abandoned,
                service_level: (q.answered + q.abandoned > 0).then_some(q.service_level),
                abandon_rate: (q.offered > 0).then_some(q.abandon_rate),
                offered: q.offered,
                answered_late: q.answered_late,
                service_level_target: q.service_level_target,
                asa_secs: (q.answered > 0).then(|| q.answer_wait_s / q.answered as f64),
                aht_secs: (q.handled > 0).then(|| q.handle_s / q.handled as f64),
                agents: q.agents,
                callers: q.callers.iter().map(|c| (c.call, c.calling.clone(), c.since_unix_ms)).collect(),
            })
            .collect(),
        ivr_calls: s.ivr_calls,
        agents: s.agent_totals,
        access_numbers: s.access.iter().map(|a| (a.dnis.clone(), Some(a.open))).collect(),
    }
}

/// An opened card: the simulator is kept as itself so that callers can be made to
/// arrive on it ([`Running::simulate_call`]).
enum Opened {
    Sim(Box<hotline_drivers::sim::SimCard>),
    Hardware(Box<dyn Card>),
}

impl Opened {
    fn card(&mut self) -> &mut dyn Card {
        match self {
            Opened::Sim(c) => c.as_mut(),
            Opened::Hardware(c) => c.as_mut(),
        }
    }
}

fn open_card(
    card: &CardConfig,
    all: &hotline_drivers::config::Config,
    tx: Sender<CardEvent>,
) -> Result<Opened, String> {
    open_backend(card, all, tx.clone()).map(|c| match c {
        Ok(sim) => Opened::Sim(sim),
        Err(hw) => Opened::Hardware(hw),
    })
}

type Backends = Result<Box<hotline_drivers::sim::SimCard>, Box<dyn Card>>;

fn open_backend(
    card: &CardConfig,
    all: &hotline_drivers::config::Config,
    tx: Sender<CardEvent>,
) -> Result<Backends, String> {
    let hw = |c: Result<Box<dyn Card>, String>| c.map(Err);
    match card.backend {
        Backend::Simulator => {
            hotline_drivers::sim::SimCard::from_config(all, card.id, tx).map(|c| Ok(Box::new(c))).map_err(|e| e.to_string())
        }
        #[cfg(all(target_os = "linux", feature = "dahdi"))]
        Backend::Dahdi => hw(hotline_drivers::dahdi::DahdiCard::open_system(card, hotline_drivers::dahdi::Law::Alaw, tx)
            .map(|c| Box::new(c) as Box<dyn Card>)
            .map_err(|e| e.to_string())),
        #[cfg(feature = "synway")]
        Backend::Synway => {
            let sdk = card.sdk_path.clone().ok_or_else(|| format!("card {}: sdk_path is required", card.id))?;
            hw(hotline_drivers::vendor::synway::SynwayCard::open(
                hotline_drivers::vendor::synway::SynwayOptions::new(card.id, sdk),
                tx,
            )
            .map(|c| Box::new(c) as Box<dyn Card>)
            .map_err(|e| e.to_string()))
        }
        other => Err(format!(
            "card {}: backend {other:?} cannot be run by `hotline serve` yet (it is not built in, \
             or its channel map is not derived from the configuration); `hotline cards probe` checks the hardware",
            card.id
        )),
    }
}

fn card_thread(
    cfg: hotline_drivers::config::Config,
    clock: RealClock,
    commands: Receiver<Command>,
    calls: Receiver<SimulatedCall>,
    to_engine: Sender<Input>,
    ready: Sender<Result<(), String>>,
    dropped: Arc<Counters>,
) -> Result<(), String> {
    let (ev_tx, ev_rx) = bounded::<CardEvent>(QUEUE);
    let mut cards: Vec<(u16, Opened)> = Vec::new();
    for c in &cfg.cards {
        match open_card(c, &cfg, ev_tx.clone()) {
            Ok(card) => cards.push((c.id, card)),
            Err(e) => {
                let _ = ready.send(Err(e.clone()));
                return Err(e);
            }
        }
    }
    let _ = ready.send(Ok(()));
    let forward = |ev_rx: &Receiver<CardEvent>| -> bool {
        while let Ok(ev) = ev_rx.try_recv() {
            // The engine must see every card event: block rather than lose one, the
            // card's own buffers absorb the wait.
            if to_engine.send(Input::Card(ev)).is_err() {
                return false;
            }
        }
        true
    };
    loop {
        let now = clock.now();
        let mut next = now + Duration::from_millis(20);
        while let Ok(call) = calls.try_recv() {
            match cards.iter_mut().find(|(id, _)| *id == call.card) {
                Some((_, Opened::Sim(sim))) => sim.schedule_inbound(now, call.call),
                _ => tracing::warn!("card {}: not a simulator; no simulated caller", call.card),
            }
        }
        for (id, card) in cards.iter_mut() {
            match card.card().poll(now) {
                Ok(Some(t)) => next = next.min(t),
                Ok(None) => {}
                Err(e) => tracing::error!("card {id}: {e}"),
            }
        }
        if !forward(&ev_rx) {
            return Ok(());
        }
        // Simulated callers are asked for rarely: look for them at least every 20 ms.
        let wait = next.saturating_duration_since(clock.now()).min(Duration::from_millis(20));
        let first = match commands.recv_timeout(wait) {
            Ok(c) => Some(c),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        for command in first.into_iter().chain(std::iter::from_fn(|| commands.try_recv().ok())) {
            let now = clock.now();
            let card_id = command_card(&command);
            let Some((_, card)) = cards.iter_mut().find(|(id, _)| Some(*id) == card_id) else {
                let kind = ErrorKind::NoSuchChannel;
                let _ = to_engine.send(Input::CommandFailed { command, kind });
                continue;
            };
            if let Err(e) = card.card().execute(now, command.clone()) {
                tracing::debug!("card refused {command:?}: {e}");
                if to_engine.try_send(Input::CommandFailed { command, kind: e.kind() }).is_err() {
                    dropped.to_engine.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if !forward(&ev_rx) {
            return Ok(());
        }
    }
}

/// The card a command is for.
fn command_card(c: &Command) -> Option<u16> {
    c.channel().map(|ch| ch.card)
}
