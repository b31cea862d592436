//! The control socket: `hotline ctl` talks to a running `serve` (or `demo`) over a
//! local Unix socket, like `asterisk -rx` or `fs_cli -x` (docs/operations.md).
//!
//! The socket is the store's path with the extension `.ctl` (`var/demo/hotline.db` →
//! `var/demo/hotline.ctl`), so anything that finds the installation file finds the
//! server. It is made with mode 0600: only the user that runs the server (and root)
//! may connect; the file permissions are the access control.
//!
//! One request per connection: a line of text (at most [`MAX_REQUEST`] bytes, read
//! within [`IO_TIMEOUT`]), answered with `ok` or `error` on the first line and the text
//! after it, then the server closes the connection. Connections are served one at a
//! time by the control thread, which talks to the engine thread only through its
//! bounded control channel ([`EngineMsg::Ctl`]): the engine thread answers from the
//! state it holds ([`answer`]) and never waits on the socket. Store and disk figures
//! are read by the control thread itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};
use hotline_drivers::{ChannelAddr, Instant};

use crate::center::{Center, CenterInput, WallboardStats, INTERNAL_CLIENT};
use crate::csta::{AgentRequest, AgentState, Service};
use crate::engine::Input;
use crate::serve::{Counters, EngineMsg};

/// The longest request line.
pub const MAX_REQUEST: usize = 1024;
/// How long a client may take to send its request, and the server to write the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the control thread waits for the engine thread's answer.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

/// The control socket of an installation whose store is at `store`.
pub fn socket_path(store: &Path) -> PathBuf {
    store.with_extension("ctl")
}

/// The commands, with their arguments and what they do (for `help` and completion).
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("status", "", "spans, channels, calls, agents, queues, store and disk at a glance"),
    ("agents", "", "every agent: state, reason, for how long, calls answered today"),
    ("queues", "", "every queue: waiting, longest wait, ready agents, today's figures"),
    ("calls", "", "the calls in progress"),
    ("kick", "AGENT", "log an agent out (at the end of their call, if on one)"),
    ("force", "AGENT ready|not-ready [REASON]|logout", "set an agent's state"),
    ("reload", "", "read the installation file again and apply what can change (like SIGHUP)"),
    ("drain", "[SECONDS]", "refuse new calls; calls in progress may go on this long (300), then stop"),
    ("clock", "", "the server's time, time zone, and which access numbers are open now"),
    ("help", "", "this list"),
];

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Status,
    Agents,
    Queues,
    Calls,
    Kick {
        agent: String,
    },
    Force {
        agent: String,
        state: Forced,
    },
    Reload,
    Drain {
        limit_s: u64,
    },
    Clock,
    Help,
    /// Agent ids and queue names, one per line (for the shell's completion).
    Names,
}

/// A state `force` sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forced {
    Ready,
    NotReady(String),
    LoggedOut,
}

impl Request {
    /// Parse a request line: a command and its arguments separated by blanks.
    pub fn parse(line: &str) -> Result<Request, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            return Err("empty request; try `help`".into());
        };
        let none = |r: Request| {
            if args.is_empty() {
                Ok(r)
            } else {
                Err(format!("`{cmd}` takes no arguments"))
            }
        };
        match cmd {
            "status" => none(Request::Status),
            "agents" => none(Request::Agents),
            "queues" => none(Request::Queues),
            "calls" => none(Request::Calls),
            "reload" => none(Request::Reload),
            "clock" => none(Request::Clock),
            "help" => none(Request::Help),
            "names" => none(Request::Names),
            "kick" => match args {
                [agent] => Ok(Request::Kick { agent: agent.to_string() }),
                _ => Err("usage: kick AGENT".into()),
            },
            "force" => {
                let usage = || "usage: force AGENT ready|not-ready [REASON]|logout".to_string();
                let (agent, rest) = args.split_first().ok_or_else(usage)?;
                let state = match rest {
                    ["ready"] => Forced::Ready,
                    ["logout"] | ["logged-out"] => Forced::LoggedOut,
                    ["not-ready", reason @ ..] => Forced::NotReady(reason.join(" ")),
                    _ => return Err(usage()),
                };
                Ok(Request::Force { agent: agent.to_string(), state })
            }
            "drain" => match args {
                [] => Ok(Request::Drain { limit_s: 300 }),
                [s] => s
                    .parse()
                    .map(|limit_s| Request::Drain { limit_s })
                    .map_err(|_| format!("drain: {s:?} is not a number of seconds")),
                _ => Err("usage: drain [SECONDS]".into()),
            },
            other => Err(format!("unknown command `{other}`; try `help`")),
        }
    }
}

/// What the engine thread is asked.
#[derive(Debug)]
pub enum Query {
    /// Everything `status`, `agents`, `queues`, `calls` and `clock` show.
    Snapshot,
    /// Set an agent's state as a supervisor would force it.
    Force { agent: String, state: Forced },
}

/// The engine thread's view, taken in one go.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub stats: WallboardStats,
    pub trunks: Vec<TrunkLine>,
    pub stations: usize,
    pub stations_in_call: usize,
    pub utc_offset_secs: i32,
    /// Each access number, where its calls go now and whether that is its open route.
    pub access: Vec<(String, String, Openness)>,
    pub supervisors: Vec<String>,
    pub agent_stations: Vec<(String, Option<String>)>,
}

/// Whether an access number's schedule is open now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Openness {
    /// No schedule: always the same target.
    Always,
    Open,
    /// Outside every schedule (or a holiday): the after-hours target.
    Closed,
}

/// A span (E1) or a card's analog trunk lines (FXO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkLine {
    /// `1/1` (card 1 span 1) or `1/fxo`.
    pub name: String,
    pub channels: usize,
    pub in_use: usize,
    pub blocked: usize,
    pub alarm: bool,
}

/// The engine thread's answer.
#[derive(Debug)]
pub enum Answer {
    Snapshot(Box<Snapshot>),
    Done(Result<String, String>),
}

/// Answer a query on the engine thread, from the state it holds (no I/O).
pub fn answer(center: &mut Center, now: Instant, q: Query) -> Answer {
    match q {
        Query::Snapshot => Answer::Snapshot(Box::new(snapshot(center))),
        Query::Force { agent, state } => Answer::Done(force(center, now, &agent, state)),
    }
}

fn snapshot(center: &Center) -> Snapshot {
    let engine = center.engine();
    let mut trunks: std::collections::BTreeMap<(u16, u16), TrunkLine> = Default::default();
    for (ch, t) in &engine.trunks {
        let (key, name) = match ch.addr {
            ChannelAddr::E1 { span, .. } => ((ch.card, u16::from(span)), format!("{}/{span}", ch.card)),
            ChannelAddr::Fxo { .. } => ((ch.card, u16::MAX), format!("{}/fxo", ch.card)),
            ChannelAddr::Fxs { .. } => continue,
        };
        let line = trunks.entry(key).or_insert_with(|| TrunkLine {
            name,
            channels: 0,
            in_use: 0,
            blocked: 0,
            alarm: false,
        });
        line.channels += 1;
        line.in_use += usize::from(t.call.is_some() || t.releasing);
        line.blocked += usize::from(t.blocked);
        line.alarm |= t.alarm;
    }
    let cfg = engine.config();
    // Open or closed as the engine routes calls now (one rule for the terminal, the
    // wallboard and `ctl`); "no schedule" is a fact of the configuration.
    let access = engine
        .access_now()
        .into_iter()
        .zip(&cfg.access_numbers)
        .map(|(now, a)| {
            let open = if a.routes.is_empty() && a.holiday_target.is_none() {
                Openness::Always
            } else if now.open {
                Openness::Open
            } else {
                Openness::Closed
            };
            (now.dnis, now.target, open)
        })
        .collect();
    let agent_stations = engine
        .agents
        .iter()
        .map(|a| (a.id.clone(), a.station.map(|s| engine.stations[s as usize].ext.clone())))
        .collect();
    Snapshot {
        stats: center.stats(),
        trunks: trunks.into_values().collect(),
        stations: engine.stations.len(),
        stations_in_call: engine.stations.iter().filter(|s| s.mode.active_call().is_some()).count(),
        utc_offset_secs: cfg.utc_offset_secs,
        access,
        supervisors: cfg.supervisors.iter().map(|s| s.id.clone()).collect(),
        agent_stations,
    }
}

/// Force an agent's state through the engine's own service (as a supervisor's
/// request would), then read back what the engine made of it.
fn force(center: &mut Center, now: Instant, agent: &str, state: Forced) -> Result<String, String> {
    let Some((before, _)) = center.engine().agent_state(agent) else {
        return Err(format!("no agent {agent}"));
    };
    let request = match &state {
        Forced::Ready => AgentRequest::Ready,
        Forced::NotReady(r) => AgentRequest::NotReady { reason: r.clone() },
        Forced::LoggedOut => AgentRequest::LogOut,
    };
    if before == AgentState::LoggedOut {
        return Err(format!("{agent} is logged out"));
    }
    let service = Service::SetAgentState { agent: agent.to_string(), request };
    center.handle(now, CenterInput::Engine(Input::Request { client: INTERNAL_CLIENT, invoke: 0, service }));
    let (after, _) = center.engine().agent_state(agent).unwrap_or((AgentState::LoggedOut, now));
    let pending = center
        .engine()
        .agents
        .iter()
        .find(|a| a.id == agent)
        .map(|a| (a.pending_logout, a.pending_not_ready.clone()))
        .unwrap_or_default();
    match (&state, &after) {
        (Forced::LoggedOut, AgentState::LoggedOut) => Ok(format!("{agent} logged out")),
        (Forced::LoggedOut, _) if pending.0 => Ok(format!("{agent} is on a call: logged out when it ends")),
        (Forced::Ready, AgentState::Ready) => Ok(format!("{agent} is ready")),
        (Forced::NotReady(_), AgentState::NotReady(r)) => Ok(format!("{agent} is not ready ({r})")),
        (Forced::NotReady(_), _) if pending.1.is_some() => {
            Ok(format!("{agent} is on a call: not ready when it ends"))
        }
        _ if after == before => Err(format!("refused: {agent} stays {}", describe(&after))),
        _ => Ok(format!("{agent} is now {}", describe(&after))),
    }
}

fn describe(s: &AgentState) -> String {
    match s {
        AgentState::NotReady(r) if !r.is_empty() => format!("not ready ({r})"),
        other => other.name().to_string(),
    }
}

/// What the control thread needs besides the engine.
#[derive(Debug, Clone)]
pub struct Context {
    pub to_engine: Sender<EngineMsg>,
    /// The installation file, when there is one to reload.
    pub config_path: Option<PathBuf>,
    /// Where the configuration came from (for messages).
    pub origin: String,
    pub store_path: PathBuf,
    pub recordings_dir: PathBuf,
    pub dropped: Arc<Counters>,
}

/// The running control thread.
#[derive(Debug)]
pub struct CtlHandle {
    pub path: PathBuf,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl CtlHandle {
    /// Stop serving and remove the socket.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for CtlHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Bind the control socket and start its thread. A socket file nobody answers on (left
/// by a crash) is replaced; one a server answers on is an error.
pub fn spawn(path: PathBuf, ctx: Context) -> Result<CtlHandle, String> {
    if path.as_os_str().len() > 100 {
        return Err(format!("{}: the control socket's path is too long for a Unix socket", path.display()));
    }
    if path.exists() {
        if UnixStream::connect(&path).is_ok() {
            return Err(format!(
                "{}: another server answers on this control socket (is one running on this store?)",
                path.display()
            ));
        }
        use std::os::unix::fs::FileTypeExt;
        let is_socket = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket());
        if !is_socket {
            return Err(format!("{}: exists and is not a socket; move it away", path.display()));
        }
        std::fs::remove_file(&path)
            .map_err(|e| format!("{}: cannot remove the old socket: {e}", path.display()))?;
    }
    let listener = UnixListener::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    listener.set_nonblocking(true).map_err(|e| format!("{}: {e}", path.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let join = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("hotline-ctl".into())
            .spawn(move || serve_socket(listener, ctx, stop))
            .map_err(|e| format!("cannot start the control thread: {e}"))?
    };
    Ok(CtlHandle { path, stop, join: Some(join) })
}

fn serve_socket(listener: UnixListener, ctx: Context, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = serve_one(stream, &ctx) {
                    tracing::debug!("control socket: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::warn!("control socket: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn serve_one(stream: UnixStream, ctx: &Context) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = String::new();
    let mut r = BufReader::new((&stream).take(MAX_REQUEST as u64 + 1));
    r.read_line(&mut line)?;
    let reply = if line.len() > MAX_REQUEST {
        Err(format!("request longer than {MAX_REQUEST} bytes"))
    } else {
        match Request::parse(&line) {
            Ok(req) => {
                tracing::info!("control: {}", line.trim());
                execute(ctx, req)
            }
            Err(e) => Err(e),
        }
    };
    let mut w = &stream;
    match reply {
        Ok(text) => write!(w, "ok\n{text}")?,
        Err(text) => write!(w, "error\n{text}\n")?,
    }
    w.flush()
}

fn ask(ctx: &Context, q: Query) -> Result<Answer, String> {
    let (tx, rx) = bounded(1);
    ctx.to_engine
        .send_timeout(EngineMsg::Ctl(q, tx), ENGINE_TIMEOUT)
        .map_err(|_| "the engine thread does not take requests (stopped or overloaded)".to_string())?;
    rx.recv_timeout(ENGINE_TIMEOUT).map_err(|_| "the engine thread did not answer".to_string())
}

fn snapshot_of(ctx: &Context) -> Result<Snapshot, String> {
    match ask(ctx, Query::Snapshot)? {
        Answer::Snapshot(s) => Ok(*s),
        Answer::Done(_) => Err("the engine thread answered something else".into()),
    }
}

/// Carry out a request on the control thread.
pub fn execute(ctx: &Context, req: Request) -> Result<String, String> {
    match req {
        Request::Help => Ok(help()),
        Request::Status => Ok(status(ctx, &snapshot_of(ctx)?)),
        Request::Agents => Ok(agents(&snapshot_of(ctx)?)),
        Request::Queues => Ok(queues(&snapshot_of(ctx)?)),
        Request::Calls => Ok(calls(&snapshot_of(ctx)?)),
        Request::Clock => Ok(clock(&snapshot_of(ctx)?)),
        Request::Names => {
            let s = snapshot_of(ctx)?;
            let mut out = String::new();
            for a in &s.stats.agents {
                out.push_str(&format!("agent {}\n", a.id));
            }
            for q in &s.stats.queues {
                out.push_str(&format!("queue {}\n", q.name));
            }
            Ok(out)
        }
        Request::Kick { agent } => done(ask(ctx, Query::Force { agent, state: Forced::LoggedOut })?),
        Request::Force { agent, state } => done(ask(ctx, Query::Force { agent, state })?),
        Request::Reload => {
            let Some(path) = &ctx.config_path else {
                return Err(format!("{}: there is no file to reload", ctx.origin));
            };
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}; nothing changed", path.display()))?;
            let (msg, answer) =
                crate::serve::reload_message(&text, &path.display().to_string(), &ctx.store_path)?;
            ctx.to_engine
                .send_timeout(msg, ENGINE_TIMEOUT)
                .map_err(|_| "the engine thread does not take requests".to_string())?;
            match answer
                .recv_timeout(ENGINE_TIMEOUT)
                .map_err(|_| "the engine thread did not answer".to_string())?
            {
                Ok(changed) if changed.is_empty() => {
                    Ok(format!("{} reloaded; nothing changed\n", path.display()))
                }
                Ok(changed) => Ok(format!("{} reloaded: {}\n", path.display(), changed.join(", "))),
                Err(e) => Err(e),
            }
        }
        Request::Drain { limit_s } => {
            let limit = Duration::from_secs(limit_s);
            ctx.to_engine
                .send_timeout(EngineMsg::Input(CenterInput::Drain { limit }), ENGINE_TIMEOUT)
                .map_err(|_| "the engine thread does not take requests".to_string())?;
            Ok(format!(
                "draining: new calls are refused (cause 42); calls in progress have {limit_s} s, then the server stops\n"
            ))
        }
    }
}

fn done(a: Answer) -> Result<String, String> {
    match a {
        Answer::Done(r) => r.map(|t| t + "\n"),
        Answer::Snapshot(_) => Err("the engine thread answered something else".into()),
    }
}

fn help() -> String {
    let mut out = String::new();
    for (c, args, what) in COMMANDS {
        let head = if args.is_empty() { c.to_string() } else { format!("{c} {args}") };
        out.push_str(&format!("{head:<44} {what}\n"));
    }
    out
}

/// `m:ss`, or `h:mm:ss` from an hour.
fn dur(secs: f64) -> String {
    crate::report::clock_duration(secs)
}

fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{:.0} kB", n / 1e3)
    }
}

fn status(ctx: &Context, s: &Snapshot) -> String {
    let st = &s.stats;
    let mut out = String::new();
    let state = if st.draining { "draining (new calls refused)" } else { "taking calls" };
    out.push_str(&format!("server    {}: up {}, {state}\n", ctx.origin, dur(st.uptime_s)));
    if s.trunks.is_empty() {
        out.push_str("spans     none\n");
    }
    for (i, t) in s.trunks.iter().enumerate() {
        let what = if t.name.ends_with("fxo") { "analog lines" } else { "channels" };
        let alarm = if t.alarm { "IN ALARM" } else { "no alarm" };
        out.push_str(&format!(
            "{:<10}{} {}: {} {what}, {} in use, {} blocked; {alarm}\n",
            if i == 0 { "spans" } else { "" },
            if t.name.ends_with("fxo") { "card" } else { "span" },
            t.name,
            t.channels,
            t.in_use,
            t.blocked
        ));
    }
    out.push_str(&format!("stations  {} phones, {} in a call\n", s.stations, s.stations_in_call));
    let count = |state: &str| st.calls.iter().filter(|c| c.state == state).count();
    out.push_str(&format!(
        "calls     {} in progress: {} in IVR, {} queued, {} ringing, {} talking, {} held; {} today\n",
        st.calls.len(),
        count("ivr"),
        count("queued"),
        count("ringing"),
        count("talking"),
        count("held"),
        st.calls_today
    ));
    let agents: Vec<_> = st.agents.iter().filter(|a| !s.supervisors.contains(&a.id)).collect();
    let n = |state: &str| agents.iter().filter(|a| a.state == state).count();
    out.push_str(&format!(
        "agents    {} logged in of {}: {} ready, {} ringing, {} on a call, {} wrap-up, {} not ready\n",
        agents.iter().filter(|a| a.state != "logged out").count(),
        agents.len(),
        n("ready"),
        n("ringing"),
        n("busy"),
        n("working after call"),
        n("not ready")
    ));
    for (i, q) in st.queues.iter().enumerate() {
        out.push_str(&format!(
            "{:<10}{}: {} waiting (longest {}), {} ready agents; service level {:.1}%\n",
            if i == 0 { "queues" } else { "" },
            q.name,
            q.waiting,
            dur(q.longest_wait_s),
            q.ready_agents,
            100.0 * q.service_level
        ));
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = ctx.store_path.with_extension(
        ctx.store_path
            .extension()
            .map(|e| format!("{}-wal", e.to_string_lossy()))
            .unwrap_or_else(|| "wal".into()),
    );
    let dropped = ctx.dropped.to_store.load(Ordering::Relaxed);
    out.push_str(&format!(
        "store     {}: {} (+ {} journal); {}\n",
        ctx.store_path.display(),
        bytes(size(&ctx.store_path)),
        bytes(size(&wal)),
        if dropped == 0 {
            "no write lost".to_string()
        } else {
            format!("{dropped} writes DROPPED (queue full)")
        }
    ));
    for (label, dir) in
        [("store", ctx.store_path.parent()), ("recordings", Some(ctx.recordings_dir.as_path()))]
    {
        let dir = match dir {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let line = match hotline_recorder::retention::disk_usage(dir) {
            Ok(u) => format!(
                "{} free of {} ({:.1}% used)",
                bytes(u.available),
                bytes(u.total),
                100.0 * u.used_fraction()
            ),
            Err(e) => format!("cannot read: {e}"),
        };
        let head = if label == "store" { "disk" } else { "" };
        out.push_str(&format!("{head:<10}{label} ({}): {line}\n", dir.display()));
    }
    let d = &ctx.dropped;
    let lost = [
        ("card", d.to_card.load(Ordering::Relaxed)),
        ("worker", d.to_workers.load(Ordering::Relaxed)),
        ("engine", d.to_engine.load(Ordering::Relaxed)),
    ];
    if lost.iter().any(|(_, n)| *n > 0) {
        let parts: Vec<String> = lost.iter().map(|(w, n)| format!("{w} {n}")).collect();
        out.push_str(&format!("queues    full, messages dropped: {}\n", parts.join(", ")));
    }
    out
}

fn agents(s: &Snapshot) -> String {
    let mut out = format!(
        "{:<8} {:<20} {:<8} {:<20} {:>8} {:>9}\n",
        "Agent", "Name", "Station", "State", "For", "Answered"
    );
    for a in &s.stats.agents {
        let station = s.agent_stations.iter().find(|(id, _)| *id == a.id).and_then(|(_, st)| st.clone());
        let state = match &a.reason {
            Some(r) if !r.is_empty() => format!("{} ({r})", a.state),
            _ => a.state.clone(),
        };
        let role = if s.supervisors.contains(&a.id) { " (supervisor)" } else { "" };
        out.push_str(&format!(
            "{:<8} {:<20} {:<8} {:<20} {:>8} {:>9}{role}\n",
            a.id,
            a.name,
            station.unwrap_or_else(|| "-".into()),
            state,
            dur(a.state_s),
            a.answered_today
        ));
    }
    out
}

fn queues(s: &Snapshot) -> String {
    let mut out = format!(
        "{:<12} {:>7} {:>8} {:>6} {:>8} {:>9} {:>10} {:>10} {:>14}\n",
        "Queue",
        "Waiting",
        "Longest",
        "Ready",
        "Offered",
        "Answered",
        "Abandoned",
        "Timed out",
        "Service level"
    );
    for q in &s.stats.queues {
        out.push_str(&format!(
            "{:<12} {:>7} {:>8} {:>6} {:>8} {:>9} {:>10} {:>10} {:>13.1}%\n",
            q.name,
            q.waiting,
            dur(q.longest_wait_s),
            q.ready_agents,
            q.offered,
            q.answered,
            q.abandoned,
            q.timed_out,
            100.0 * q.service_level
        ));
    }
    out
}

fn calls(s: &Snapshot) -> String {
    if s.stats.calls.is_empty() {
        return "no calls in progress\n".into();
    }
    let mut out = format!(
        "{:>6} {:<16} {:<12} {:<8} {:<10} {:<8} {:>8}\n",
        "Call", "Caller", "Called", "State", "Queue", "Agent", "For"
    );
    for c in &s.stats.calls {
        out.push_str(&format!(
            "{:>6} {:<16} {:<12} {:<8} {:<10} {:<8} {:>8}\n",
            c.call,
            if c.calling.is_empty() { "-" } else { &c.calling },
            c.called,
            c.state,
            c.queue.as_deref().unwrap_or("-"),
            c.agent.as_deref().unwrap_or("-"),
            dur(c.since_s)
        ));
    }
    out
}

fn clock(s: &Snapshot) -> String {
    let at = s.stats.at_unix_ms;
    let off = s.utc_offset_secs;
    let sign = if off < 0 { '-' } else { '+' };
    let mut out = format!(
        "server time  {} (UTC{sign}{:02}:{:02}; {} UTC)\nup           {}\n",
        crate::report::format_local(at, off),
        off.unsigned_abs() / 3600,
        off.unsigned_abs() / 60 % 60,
        crate::report::format_local(at, 0),
        dur(s.stats.uptime_s)
    );
    for (dnis, target, open) in &s.access {
        let open = match open {
            Openness::Always => "no schedule",
            Openness::Open => "open",
            Openness::Closed => "CLOSED (after hours)",
        };
        out.push_str(&format!("access {dnis:<14} {open:<22} → {target}\n"));
    }
    out
}

/// Send one request to a server's control socket and read its answer: `Ok(text)` when
/// the server said `ok`, `Err(text)` when it said `error` (or could not be reached).
pub fn request(path: &Path, line: &str) -> Result<String, String> {
    let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
            "no server answers at {} ({e}): is `hotline serve` (or `hotline demo`) running with this configuration?",
            path.display()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "{}: permission denied; run as the user that runs the server (or root)",
            path.display()
        ),
        _ => format!("{}: {e}", path.display()),
    })?;
    stream.set_read_timeout(Some(ENGINE_TIMEOUT + IO_TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    (&stream).write_all(format!("{}\n", line.trim()).as_bytes()).map_err(|e| e.to_string())?;
    let mut text = String::new();
    (&stream).read_to_string(&mut text).map_err(|e| format!("{}: {e}", path.display()))?;
    match text.split_once('\n') {
        Some(("ok", body)) => Ok(body.to_string()),
        Some(("error", body)) => Err(body.trim_end().to_string()),
        _ => Err(format!("{}: an answer that is not from a Hotline server: {text:?}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_say_what_is_wrong() {
        assert_eq!(Request::parse("status\n"), Ok(Request::Status));
        assert_eq!(Request::parse("  kick 1001 "), Ok(Request::Kick { agent: "1001".into() }));
        assert_eq!(
            Request::parse("force 1001 not-ready Lunch break"),
            Ok(Request::Force { agent: "1001".into(), state: Forced::NotReady("Lunch break".into()) })
        );
        assert_eq!(Request::parse("drain 30"), Ok(Request::Drain { limit_s: 30 }));
        assert_eq!(Request::parse("drain"), Ok(Request::Drain { limit_s: 300 }));
        assert!(Request::parse("drain soon").unwrap_err().contains("not a number"));
        assert!(Request::parse("status now").unwrap_err().contains("takes no arguments"));
        assert!(Request::parse("force 1001 sleepy").unwrap_err().starts_with("usage"));
        assert!(Request::parse("frobnicate").unwrap_err().contains("unknown command `frobnicate`"));
        assert!(Request::parse("").is_err());
        // Every listed command parses (with sample arguments).
        for (c, args, _) in COMMANDS {
            let sample = match *c {
                "kick" => "kick 1001".to_string(),
                "force" => "force 1001 ready".to_string(),
                _ => c.to_string(),
            };
            assert!(Request::parse(&sample).is_ok(), "{c} {args}");
        }
    }

    #[test]
    fn the_socket_sits_beside_the_store() {
        assert_eq!(socket_path(Path::new("var/demo/hotline.db")), PathBuf::from("var/demo/hotline.ctl"));
    }
}
