//! The CTI link: how agent desktops, wallboards and CRMs reach the engine.
//!
//! A mio server on its own thread (STYLE pattern 4) listens on TCP (one JSON object per
//! line) and on HTTP, where `/cti` upgrades to a WebSocket carrying the same messages
//! and other paths serve the web pages. It owns authentication (Argon2 hashes from the
//! configuration), roles, monitors and their snapshots, per-connection limits and the
//! screen pop's enrichment (previous contacts, CRM lookup). It talks to the engine
//! thread only through channels: requests go out as [`Input::Request`] on a bounded
//! crossbeam channel; the engine thread's outputs come back through [`LinkHandle::send`]
//! (a bounded channel plus a mio `Waker`). The wire format is docs/protocol.md.
//!
//! - [`wire`]: the JSON mapping of requests, CSTA events, results and errors;
//! - `model`: the read-side model of calls, agents and queues built from events;
//! - `server`: the poll loop, connections, transports and limits;
//! - [`auth`]: password hashing and checking;
//! - `login_pool`: the password checks' worker threads, fed fairly per address;
//! - `limits`: connection caps, failed-login backoff and lockout, the `Origin` check;
//! - `crm`: the CRM lookup worker.

pub mod auth;
mod crm;
mod limits;
mod login_pool;
mod model;
pub mod pages;
mod server;
mod time;
pub mod wire;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use serde::Deserialize;
use toml::Spanned;

use crate::config::Problem;
use crate::csta::CallId;
use crate::engine::{Input, Output};

pub use limits::LoginPolicy;
pub use time::{now_unix_ms, rfc3339};

/// What the engine thread (the glue) sends the link server.
#[derive(Debug, Clone)]
pub enum LinkMsg {
    /// An engine output at a wall-clock time. Events and responses are used; other
    /// outputs are ignored.
    Output { at_unix_ms: i64, output: Output },
    /// A call was delivered to an agent's station: the pop the agent's desktop shows.
    ScreenPop(ScreenPop),
    /// Wallboard figures, about once a second.
    Stats(WallboardStats),
    /// A system alarm raised or cleared (`SystemAlarm` to every supervisor).
    Alarm(crate::alarm::SystemAlarm),
}

/// The call data shown when a call reaches an agent. Built by the glue on `Delivered`
/// from [`crate::Engine::call_info`]; the link adds previous contacts and the CRM's
/// answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenPop {
    pub call: CallId,
    pub agent: String,
    pub station: Option<String>,
    /// The caller's number (ANI), when presented.
    pub calling: Option<String>,
    /// The number the caller dialled (DNIS).
    pub access_number: String,
    pub location: Option<String>,
    pub vip: bool,
    /// Variables collected by the IVR.
    pub ivr_data: BTreeMap<String, String>,
    /// How to show them: variable → label, from the `labels` of the flows the call
    /// went through (only variables in `ivr_data`).
    pub ivr_labels: BTreeMap<String, String>,
    /// Data attached to the call (SetCallData).
    pub attached: BTreeMap<String, String>,
    pub at_unix_ms: i64,
}

/// Figures for the wallboard, computed by the glue from the day's records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WallboardStats {
    pub at_unix_ms: i64,
    pub queues: Vec<QueueStats>,
    /// Calls in an IVR flow now.
    pub ivr_calls: usize,
    /// Agents by state over the whole center.
    pub agents: crate::center::AgentCounts,
    /// Access numbers and whether they are open now (`None`: not known yet).
    pub access_numbers: Vec<(String, Option<bool>)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    pub queue: String,
    pub waiting: usize,
    pub longest_wait_secs: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Fraction of today's calls answered within the queue's target; `None` before any.
    pub service_level: Option<f64>,
    pub abandon_rate: Option<f64>,
    /// Calls that entered the queue today.
    pub offered: u64,
    /// Answered after waiting more than 15 s.
    pub answered_late: u64,
    /// The queue's target for `service_level`, a fraction.
    pub service_level_target: f64,
    /// Average speed of answer, seconds; `None` before the first answer.
    pub asa_secs: Option<f64>,
    /// Average handling time (talk, hold and after-call work), seconds; `None` before
    /// the first call handled.
    pub aht_secs: Option<f64>,
    /// Member agents by state.
    pub agents: crate::center::AgentCounts,
    /// Callers waiting now, longest first: (call, number, queued since in Unix ms).
    pub callers: Vec<(u64, String, i64)>,
}

/// A past call of a caller, for the screen pop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub call: u64,
    pub at_unix_ms: i64,
    pub agent: Option<String>,
    pub queue: Option<String>,
    pub talk_secs: u32,
    /// `answered`, `abandoned`, `voicemail`, ...
    pub outcome: String,
}

/// One of an agent's calls today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    pub call: u64,
    pub at_unix_ms: i64,
    /// The far party's number.
    pub number: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub queue: Option<String>,
    pub talk_secs: u32,
    pub outcome: String,
}

/// The call records, as the link reads them. Called on the link thread: keep it to
/// indexed queries (the store's read connection).
pub trait History {
    /// The caller's previous contacts, newest first.
    fn previous_contacts(&self, number: &str) -> Vec<Contact>;
    /// The agent's calls since local midnight, newest first.
    fn agent_calls_today(&self, agent: &str) -> Vec<CallSummary>;
}

/// A history with nothing in it (no store configured).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHistory;

impl History for NoHistory {
    fn previous_contacts(&self, _: &str) -> Vec<Contact> {
        Vec::new()
    }
    fn agent_calls_today(&self, _: &str) -> Vec<CallSummary> {
        Vec::new()
    }
}

/// How an account proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// An Argon2 PHC string (`password_hash`).
    Hash(String),
    /// A plain `password` (demo files).
    Plain(String),
    /// Neither: refused unless `allow_no_password`.
    None,
}

/// Someone who may log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub supervisor: bool,
    pub secret: Secret,
}

/// The CRM lookup hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmConfig {
    /// With `{number}` where the caller's number goes.
    pub url: String,
    pub timeout: Duration,
}

/// A page served on the HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Request path, `/agent`.
    pub path: String,
    pub content_type: String,
    pub body: Arc<[u8]>,
}

/// The link server's configuration (`[link]` plus the accounts of the engine's file).
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub tcp: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub max_message: usize,
    /// Requests per second per connection, and the bucket's size.
    pub rate: f64,
    pub burst: f64,
    pub idle_timeout: Duration,
    /// Unsent output bytes per connection before it is dropped as too slow.
    pub max_queued: usize,
    pub allow_no_password: bool,
    /// Connections open at once, in total (never more than half the process's open-file
    /// limit) and from one client address.
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// An HTTP request head, or a TCP line once begun, must be complete within this.
    pub head_timeout: Duration,
    /// The largest HTTP request head.
    pub max_head: usize,
    /// Threads checking passwords, and Logins waiting for them (in all, and per address).
    pub login_workers: usize,
    pub login_queue: usize,
    pub login_queue_per_address: usize,
    /// Failed-login backoff and lockout.
    pub login: LoginPolicy,
    /// Web origins (`https://cc.example.com`) whose pages may open the WebSocket, besides
    /// the page's own origin when it is reached by IP address or `localhost`.
    pub allowed_origins: Vec<String>,
    pub crm: Option<CrmConfig>,
    /// Unix milliseconds at the engine's `Instant::ZERO`, to turn the engine's instants
    /// (in snapshots) into wall-clock times. Set by whoever starts the engine (the
    /// default: the time the configuration was made).
    pub wall_base_unix_ms: i64,
    pub accounts: Vec<Account>,
    pub pages: Vec<Page>,
    /// The engine's configuration, for the read-side model (agents, queues, groups).
    pub engine: crate::Config,
}

impl LinkConfig {
    /// Defaults: loopback on 7001 (TCP) and 7080 (HTTP), the accounts of `engine`.
    pub fn new(engine: &crate::Config) -> LinkConfig {
        let mut accounts = Vec::new();
        for a in &engine.agents {
            accounts.push(Account {
                id: a.id.clone(),
                name: a.name.clone(),
                supervisor: false,
                secret: secret(&a.password_hash, &a.password),
            });
        }
        for s in &engine.supervisors {
            accounts.push(Account {
                id: s.id.clone(),
                name: s.name.clone(),
                supervisor: true,
                secret: secret(&s.password_hash, &s.password),
            });
        }
        LinkConfig {
            tcp: Some(SocketAddr::from(([127, 0, 0, 1], 7001))),
            http: Some(SocketAddr::from(([127, 0, 0, 1], 7080))),
            max_message: 65_536,
            rate: 50.0,
            burst: 100.0,
            idle_timeout: Duration::from_secs(120),
            max_queued: 1 << 20,
            allow_no_password: false,
            max_connections: 4096,
            max_connections_per_address: 64,
            head_timeout: Duration::from_secs(10),
            max_head: 16 * 1024,
            login_workers: default_login_workers(),
            login_queue: 64,
            login_queue_per_address: 2,
            login: LoginPolicy::default(),
            allowed_origins: Vec::new(),
            crm: None,
            wall_base_unix_ms: now_unix_ms(),
            accounts,
            pages: Vec::new(),
            engine: engine.clone(),
        }
    }

    /// Read `[link]` (and `[link.crm]`) of an installation file whose engine part is
    /// `engine`. Problems say file:line:col and what was expected.
    pub fn parse(text: &str, origin: &str, engine: &crate::Config) -> Result<LinkConfig, Vec<Problem>> {
        let mut cfg = LinkConfig::new(engine);
        let mut problems = Vec::new();
        let at = |span: Range<usize>, message: String| {
            let offset = span.start.min(text.len());
            let line = text[..offset].matches('\n').count() + 1;
            let column = text[..offset].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            Problem { origin: origin.to_string(), line, column, message }
        };
        let root: RawRoot = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let (span, message) = hotline_drivers::text::toml_error(text, &e);
                problems.push(at(span, format!("in [link]: {message}")));
                return Err(problems);
            }
        };
        let Some(link) = root.link else { return Ok(cfg) };
        let mut addr = |v: &Option<Spanned<String>>, default: Option<SocketAddr>| match v {
            None => default,
            Some(s) if s.get_ref().is_empty() => None,
            Some(s) => match s.get_ref().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    problems.push(at(
                        s.span(),
                        format!("bad address {:?}: expected IP:PORT such as \"127.0.0.1:7001\"", s.get_ref()),
                    ));
                    default
                }
            },
        };
        cfg.tcp = addr(&link.tcp, cfg.tcp);
        cfg.http = addr(&link.http, cfg.http);
        let mut positive = |v: &Option<Spanned<i64>>, name: &str| -> Option<u64> {
            let s = v.as_ref()?;
            if *s.get_ref() <= 0 {
                problems
                    .push(at(s.span(), format!("{name} must be a positive number, found {}", s.get_ref())));
                return None;
            }
            Some(*s.get_ref() as u64)
        };
        if let Some(n) = positive(&link.max_message, "max_message") {
            cfg.max_message = n as usize;
        }
        if let Some(n) = positive(&link.rate, "rate") {
            cfg.rate = n as f64;
            cfg.burst = cfg.burst.max(cfg.rate);
        }
        if let Some(n) = positive(&link.burst, "burst") {
            cfg.burst = n as f64;
        }
        if let Some(n) = positive(&link.idle_timeout_s, "idle_timeout_s") {
            cfg.idle_timeout = Duration::from_secs(n);
        }
        if let Some(n) = positive(&link.max_queued, "max_queued") {
            cfg.max_queued = n as usize;
        }
        cfg.allow_no_password = link.allow_no_password.unwrap_or(false);
        if let Some(n) = positive(&link.max_connections, "max_connections") {
            cfg.max_connections = n as usize;
        }
        if let Some(n) = positive(&link.max_connections_per_address, "max_connections_per_address") {
            cfg.max_connections_per_address = n as usize;
        }
        if let Some(n) = positive(&link.head_timeout_s, "head_timeout_s") {
            cfg.head_timeout = Duration::from_secs(n);
        }
        if let Some(n) = positive(&link.max_head, "max_head") {
            cfg.max_head = n as usize;
        }
        if let Some(n) = positive(&link.login_workers, "login_workers") {
            cfg.login_workers = n.min(64) as usize;
        }
        if let Some(n) = positive(&link.login_queue, "login_queue") {
            cfg.login_queue = n as usize;
        }
        if let Some(n) = positive(&link.login_queue_per_address, "login_queue_per_address") {
            cfg.login_queue_per_address = n as usize;
        }
        if let Some(n) = positive(&link.login_backoff_max_s, "login_backoff_max_s") {
            cfg.login.backoff_max = Duration::from_secs(n);
        }
        if let Some(crm) = &link.crm {
            let timeout = positive(&crm.timeout_ms, "timeout_ms").unwrap_or(300);
            let url = crm.url.get_ref();
            if !url.starts_with("http://") || !url.contains("{number}") {
                problems.push(at(
                    crm.url.span(),
                    format!("bad CRM url {url:?}: expected http://HOST/PATH with {{number}} where the caller's number goes"),
                ));
            }
            cfg.crm = Some(CrmConfig { url: url.clone(), timeout: Duration::from_millis(timeout) });
        }
        let mut zero_or_more = |v: &Option<Spanned<i64>>, name: &str| -> Option<u64> {
            let s = v.as_ref()?;
            if *s.get_ref() < 0 {
                problems.push(at(s.span(), format!("{name} must be 0 or more, found {}", s.get_ref())));
                return None;
            }
            Some(*s.get_ref() as u64)
        };
        if let Some(n) = zero_or_more(&link.login_free_failures, "login_free_failures") {
            cfg.login.free_failures = n.min(u64::from(u32::MAX)) as u32;
        }
        if let Some(n) =
            zero_or_more(&link.login_free_failures_per_address, "login_free_failures_per_address")
        {
            cfg.login.address_free_failures = n.min(u64::from(u32::MAX)) as u32;
        }
        if let Some(n) = zero_or_more(&link.login_lockout_failures, "login_lockout_failures") {
            cfg.login.lockout_failures = n.min(u64::from(u32::MAX)) as u32;
        }
        if let Some(n) = zero_or_more(&link.login_lockout_s, "login_lockout_s") {
            cfg.login.lockout = (n > 0).then(|| Duration::from_secs(n));
        }
        for o in link.allowed_origins.iter().flatten() {
            let v = o.get_ref();
            let ok = (v.starts_with("http://") || v.starts_with("https://"))
                && !v
                    .trim_end_matches('/')
                    .split_once("://")
                    .is_some_and(|(_, rest)| rest.is_empty() || rest.contains('/'));
            if ok {
                cfg.allowed_origins.push(v.trim_end_matches('/').to_string());
            } else {
                problems.push(at(
                    o.span(),
                    format!("bad origin {v:?}: expected a web origin such as \"https://cc.example.com\" (scheme, host and optional port, no path)"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }
}

/// Password-check threads by default: half the cores (at least one, at most four), so a
/// flood of Logins leaves cores for the engine and the link.
fn default_login_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4))
}

fn secret(hash: &Option<String>, plain: &Option<String>) -> Secret {
    match (hash, plain) {
        (Some(h), _) => Secret::Hash(h.clone()),
        (None, Some(p)) => Secret::Plain(p.clone()),
        (None, None) => Secret::None,
    }
}

#[derive(Deserialize)]
struct RawRoot {
    link: Option<RawLink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    tcp: Option<Spanned<String>>,
    http: Option<Spanned<String>>,
    max_message: Option<Spanned<i64>>,
    rate: Option<Spanned<i64>>,
    burst: Option<Spanned<i64>>,
    idle_timeout_s: Option<Spanned<i64>>,
    max_queued: Option<Spanned<i64>>,
    allow_no_password: Option<bool>,
    max_connections: Option<Spanned<i64>>,
    max_connections_per_address: Option<Spanned<i64>>,
    head_timeout_s: Option<Spanned<i64>>,
    max_head: Option<Spanned<i64>>,
    login_workers: Option<Spanned<i64>>,
    login_queue: Option<Spanned<i64>>,
    login_queue_per_address: Option<Spanned<i64>>,
    login_free_failures: Option<Spanned<i64>>,
    login_free_failures_per_address: Option<Spanned<i64>>,
    login_backoff_max_s: Option<Spanned<i64>>,
    login_lockout_failures: Option<Spanned<i64>>,
    login_lockout_s: Option<Spanned<i64>>,
    allowed_origins: Option<Vec<Spanned<String>>>,
    crm: Option<RawCrm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrm {
    url: Spanned<String>,
    timeout_ms: Option<Spanned<i64>>,
}

/// The addresses the server actually listens on (ports resolved when 0 was asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkAddrs {
    pub tcp: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

pub(crate) struct Shared {
    pub waker: mio::Waker,
    pub stop: AtomicBool,
    /// Messages the engine thread could not hand over (channel full).
    pub lost: AtomicU64,
    /// Set by the engine thread when it wakes the server, cleared by the server before
    /// it drains the channel: a burst of messages costs one wake-up, not one each.
    pub notified: AtomicBool,
}

/// The engine thread's handle on the link server.
#[derive(Clone)]
pub struct LinkHandle {
    tx: Sender<LinkMsg>,
    shared: Arc<Shared>,
    addrs: LinkAddrs,
    thread: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for LinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkHandle").field("addrs", &self.addrs).finish_non_exhaustive()
    }
}

impl LinkHandle {
    /// Hand a message to the server and wake it. Never blocks: when the channel is
    /// full the message is dropped and counted, and clients are told events were lost
    /// (so they take a new snapshot).
    pub fn send(&self, msg: LinkMsg) {
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.lost.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
        if !self.shared.notified.swap(true, Ordering::SeqCst) {
            // A failed wake means the poll is gone; the server is shutting down.
            let _ = self.shared.waker.wake();
        }
    }

    pub fn addrs(&self) -> LinkAddrs {
        self.addrs
    }

    /// Stop the server: close every connection and end the thread (waits for it).
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.shared.waker.wake();
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// Start the link server on its own thread. Binds the listeners before returning, so
/// an address in use is reported here.
pub fn spawn(
    cfg: LinkConfig,
    to_engine: Sender<Input>,
    history: Arc<dyn History + Send + Sync>,
) -> io::Result<LinkHandle> {
    let (tx, rx) = crossbeam_channel::bounded(65_536);
    let (server, shared, addrs) = server::Server::new(cfg, rx, to_engine, history)?;
    let thread = std::thread::Builder::new().name("hotline-link".into()).spawn(move || server.run())?;
    Ok(LinkHandle { tx, shared, addrs, thread: Arc::new(std::sync::Mutex::new(Some(thread))) })
}
