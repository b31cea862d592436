//! The link server's poll loop: listeners, connections (TCP lines, HTTP pages,
//! WebSocket), limits, login, roles, monitors and event fan-out.
//!
//! One mio `Poll` on one thread. Sockets are edge-triggered and always drained until
//! `WouldBlock` (mio's contract). Every connection's output goes through its own byte
//! queue (`Pipe`), written to the socket as far as it takes it; the queue's size is what
//! the slow-client limit checks, so memory per connection stays bounded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::Message;

use super::limits::{self, ConnCount, Failures, Hold};
use super::login_pool::{AuthDone, AuthJob, Busy, LoginPool};
use super::model::{Model, Scope, Viewer};
use super::time::{now_unix_ms, rfc3339};
use super::wire::{self, Request, Target};
use super::{crm, Account, History, LinkAddrs, LinkConfig, LinkMsg, ScreenPop, Shared};
use crate::csta::{AgentRequest, CstaError, DeviceId, Service, ServiceResult};
use crate::engine::{Input, Output};

const WAKER: Token = Token(0);
const TCP_LISTENER: Token = Token(1);
const HTTP_LISTENER: Token = Token(2);
const FIRST_CONN: u32 = 16;
/// How often idle connections are looked for.
const TICK: Duration = Duration::from_millis(250);
/// Bytes read from one connection per poll turn before the others get their turn.
const READ_BUDGET: usize = 64 * 1024;
/// WebSocket messages read from one connection per poll turn.
const WS_READ_BUDGET: usize = 16;
/// User names longer than this are tracked for backoff by their first this many bytes.
const MAX_TRACKED_NAME: usize = 128;

/// A connection's socket and its queue of unsent bytes. Writing to it never blocks:
/// bytes are queued, then `push` writes what the socket takes.
struct Pipe {
    sock: TcpStream,
    out: Vec<u8>,
    sent: usize,
}

impl Pipe {
    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Write queued bytes until the socket would block. Err: the connection is broken.
    fn push(&mut self) -> io::Result<()> {
        while self.sent < self.out.len() {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        } else if self.sent > 64 * 1024 {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Which connections watch what, so an event is matched to its subscribers without
/// looking at every connection. Counts, because one connection may hold several monitors
/// on the same target. Kept in step with each `Conn::monitors` (the source of truth).
#[derive(Default)]
struct MonitorIndex {
    all: BTreeMap<u32, u32>,
    devices: HashMap<String, BTreeMap<u32, u32>>,
    agents: HashMap<String, BTreeMap<u32, u32>>,
    queues: HashMap<String, BTreeMap<u32, u32>>,
}

impl MonitorIndex {
    fn add(&mut self, conn: u32, target: &Target) {
        let set = match target {
            Target::All => &mut self.all,
            Target::Device(k) => self.devices.entry(k.clone()).or_default(),
            Target::Agent(k) => self.agents.entry(k.clone()).or_default(),
            Target::Queue(k) => self.queues.entry(k.clone()).or_default(),
        };
        *set.entry(conn).or_default() += 1;
    }

    fn remove(&mut self, conn: u32, target: &Target) {
        fn dec(set: &mut BTreeMap<u32, u32>, conn: u32) {
            if let Some(n) = set.get_mut(&conn) {
                *n -= 1;
                if *n == 0 {
                    set.remove(&conn);
                }
            }
        }
        fn dec_in(map: &mut HashMap<String, BTreeMap<u32, u32>>, key: &str, conn: u32) {
            if let Some(set) = map.get_mut(key) {
                dec(set, conn);
                if set.is_empty() {
                    map.remove(key);
                }
            }
        }
        match target {
            Target::All => dec(&mut self.all, conn),
            Target::Device(k) => dec_in(&mut self.devices, k, conn),
            Target::Agent(k) => dec_in(&mut self.agents, k, conn),
            Target::Queue(k) => dec_in(&mut self.queues, k, conn),
        }
    }

    /// The connections with a monitor that an event of `scope` matches, in connection
    /// order (oldest first).
    fn candidates(&self, scope: &Scope) -> Vec<u32> {
        let mut out: Vec<u32> = self.all.keys().copied().collect();
        let before = out.len();
        let pick =
            |map: &HashMap<String, BTreeMap<u32, u32>>, keys: &BTreeSet<String>, out: &mut Vec<u32>| {
                for k in keys {
                    if let Some(set) = map.get(k) {
                        out.extend(set.keys().copied());
                    }
                }
            };
        pick(&self.devices, &scope.devices, &mut out);
        pick(&self.agents, &scope.agents, &mut out);
        pick(&self.queues, &scope.queues, &mut out);
        if out.len() != before {
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

enum Proto {
    /// Newline-delimited JSON.
    Tcp,
    /// Reading an HTTP request head (a page, or the WebSocket upgrade).
    Http,
    Ws(Box<WebSocketContext>),
}

struct Session {
    user: String,
    supervisor: bool,
    station: Option<String>,
    /// The connection whose Login logged the person in at the engine: the engine
    /// knows the person by it, and hears `ClientGone` for it when the last of the
    /// person's connections closes.
    engine_client: u32,
}

struct Conn {
    pipe: Pipe,
    proto: Proto,
    /// The client's address (connection caps, login backoff).
    ip: IpAddr,
    inbuf: Vec<u8>,
    /// How much of `inbuf` has been looked at for the end of a line or head: what
    /// arrives later is scanned from there, never the whole buffer again.
    scanned: usize,
    /// When the HTTP head or TCP line now being received began (`head_timeout`).
    partial_since: Option<Instant>,
    /// When the connection was first seen closing (a closing client that does not read
    /// what is left to send is dropped after `head_timeout`).
    closing_since: Option<Instant>,
    /// Requests refused as over the rate in a row; a client that goes on regardless is
    /// disconnected.
    refused_in_row: u32,
    /// Skipping the rest of an oversized TCP line.
    skipping: bool,
    last_seen: Instant,
    tokens: f64,
    refilled: Instant,
    session: Option<Session>,
    login_busy: bool,
    monitors: Vec<(u32, Target)>,
    close_after_flush: bool,
    dead: bool,
    /// Listed in `Server::dirty`: has bytes queued this poll turn.
    dirty: bool,
}

enum PendingKind {
    Plain,
    GetAgentState {
        agent: String,
    },
    /// SnapshotAgents for a supervisor limited to groups: only these agents are shown.
    AgentsIn(BTreeSet<String>),
    Login {
        account: Account,
        station: Option<String>,
    },
    Logout,
}

struct Pending {
    conn: u32,
    invoke: u32,
    kind: PendingKind,
}

pub(super) struct Server {
    cfg: LinkConfig,
    poll: Poll,
    tcp: Option<TcpListener>,
    http: Option<TcpListener>,
    rx: Receiver<LinkMsg>,
    to_engine: Sender<Input>,
    history: Arc<dyn History + Send + Sync>,
    shared: Arc<Shared>,
    conns: HashMap<u32, Conn>,
    monitors: MonitorIndex,
    /// Connections with output queued this turn; written once each at the turn's end,
    /// so the events of one wake-up go out in one write per connection.
    dirty: Vec<u32>,
    next_conn: u32,
    next_monitor: u32,
    next_invoke: u32,
    pending: HashMap<u32, Pending>,
    model: Model,
    accounts: HashMap<String, Account>,
    pool: LoginPool,
    conn_count: ConnCount,
    /// `max_connections`, lowered to half the descriptor limit when that is less.
    max_connections: usize,
    /// Failed logins and bad requests per client address (backoff only).
    addr_failures: Failures<IpAddr>,
    /// Failed logins per user name as typed (backoff, then lockout).
    account_failures: Failures<String>,
    /// Connections with input left unread after their turn's budget.
    again: Vec<u32>,
    /// Accepting failed (descriptors exhausted): try again on the next tick.
    accept_again: bool,
    /// Connections refused by the caps since the last log line about it.
    refused_conns: u64,
    crm_tx: Option<Sender<crm::Lookup>>,
    crm_rx: Receiver<crm::Answer>,
    lost_seen: u64,
    /// System alarms raised now, by name (sent to a supervisor who logs in or starts a
    /// monitor).
    alarms: std::collections::BTreeMap<String, crate::alarm::SystemAlarm>,
    /// Logins whose password checked out while the same person's Login was still at
    /// the engine: decided once that one is answered.
    deferred_logins: Vec<AuthDone>,
    /// Screen pops (and their updates) for connections whose Login is at the engine:
    /// sent right after the Login reply, so a call that rings while the desktop logs
    /// in still pops.
    held_pops: HashMap<u32, Vec<String>>,
}

impl Server {
    pub fn new(
        cfg: LinkConfig,
        rx: Receiver<LinkMsg>,
        to_engine: Sender<Input>,
        history: Arc<dyn History + Send + Sync>,
    ) -> io::Result<(Server, Arc<Shared>, LinkAddrs)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let shared = Arc::new(Shared {
            waker,
            stop: AtomicBool::new(false),
            lost: AtomicU64::new(0),
            notified: AtomicBool::new(false),
        });
        let bind = |addr: Option<std::net::SocketAddr>, token: Token| -> io::Result<Option<TcpListener>> {
            let Some(addr) = addr else { return Ok(None) };
            let mut l = TcpListener::bind(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("link: cannot listen on {addr}: {e}")))?;
            poll.registry().register(&mut l, token, Interest::READABLE)?;
            Ok(Some(l))
        };
        let tcp = bind(cfg.tcp, TCP_LISTENER)?;
        let http = bind(cfg.http, HTTP_LISTENER)?;
        let addrs = LinkAddrs {
            tcp: tcp.as_ref().map(|l| l.local_addr()).transpose()?,
            http: http.as_ref().map(|l| l.local_addr()).transpose()?,
        };

        // Password checks run on a small pool: Argon2 is slow on purpose.
        let pool = LoginPool::start(
            cfg.login_workers,
            cfg.login_queue,
            cfg.login_queue_per_address,
            &cfg.accounts,
            shared.clone(),
        )?;
        let fd_limit = limits::fd_limit();
        let max_connections = limits::effective_max_connections(cfg.max_connections, fd_limit);
        if max_connections < cfg.max_connections {
            tracing::warn!(
                "link: at most {max_connections} connections (max_connections is {}, but the open-file limit is {}; raise it, e.g. LimitNOFILE, for more)",
                cfg.max_connections,
                fd_limit.unwrap_or(0)
            );
        }
        let addr_failures = Failures::new(cfg.login, 65_536, false);
        let account_failures = Failures::new(cfg.login, 16_384, true);

        let (crm_answer_tx, crm_rx) = crossbeam_channel::bounded(1024);
        let crm_tx = match &cfg.crm {
            Some(c) => {
                let (tx, jobs) = crossbeam_channel::bounded(256);
                let (c, s2) = (c.clone(), shared.clone());
                std::thread::Builder::new()
                    .name("hotline-link-crm".into())
                    .spawn(move || crm::worker(c, jobs, crm_answer_tx, s2))?;
                Some(tx)
            }
            None => None,
        };

        let accounts = cfg.accounts.iter().map(|a| (a.id.clone(), a.clone())).collect();
        let model = Model::new(&cfg.engine, cfg.wall_base_unix_ms);
        let server = Server {
            cfg,
            poll,
            tcp,
            http,
            rx,
            to_engine,
            history,
            shared: shared.clone(),
            conns: HashMap::new(),
            monitors: MonitorIndex::default(),
            dirty: Vec::new(),
            next_conn: FIRST_CONN,
            next_monitor: 1,
            next_invoke: 1,
            pending: HashMap::new(),
            model,
            accounts,
            pool,
            conn_count: ConnCount::default(),
            max_connections,
            addr_failures,
            account_failures,
            again: Vec::new(),
            accept_again: false,
            refused_conns: 0,
            crm_tx,
            crm_rx,
            alarms: std::collections::BTreeMap::new(),
            lost_seen: 0,
            deferred_logins: Vec::new(),
            held_pops: HashMap::new(),
        };
        Ok((server, shared, addrs))
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut last_tick = Instant::now();
        loop {
            // Output left over from a busy turn: look at the sockets without waiting.
            let wait = if self.dirty.is_empty() && self.again.is_empty() { TICK } else { Duration::ZERO };
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("link: poll failed: {e}");
                    return;
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    TCP_LISTENER => self.accept(false),
                    HTTP_LISTENER => self.accept(true),
                    Token(t) => {
                        let id = t as u32;
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read_conn(id);
                        }
                        if ev.is_writable() {
                            if let Some(c) = self.conns.get_mut(&id) {
                                if c.pipe.push().is_err() {
                                    c.dead = true;
                                }
                            }
                        }
                    }
                }
            }
            // Connections that had more to read than one turn's share.
            for id in std::mem::take(&mut self.again) {
                self.read_conn(id);
            }
            self.take_messages();
            while let Ok(d) = self.pool.done.try_recv() {
                self.auth_done(d);
            }
            let conns = &self.conns;
            self.pool.pump(|id| conns.contains_key(&id));
            while let Ok(a) = self.crm_rx.try_recv() {
                self.crm_answer(a);
            }
            let lost = self.shared.lost.load(Ordering::Relaxed);
            if lost != self.lost_seen {
                let n = lost - self.lost_seen;
                self.lost_seen = lost;
                let text = wire::error_event(
                    "events_lost",
                    &format!("{n} engine messages were lost (link overloaded): take a new snapshot"),
                    &rfc3339(now_unix_ms()),
                );
                let ids: Vec<u32> =
                    self.conns.iter().filter(|(_, c)| c.session.is_some()).map(|(i, _)| *i).collect();
                for id in ids {
                    self.send_to(id, &text);
                }
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.idle_check();
                if std::mem::take(&mut self.accept_again) {
                    self.accept(false);
                    self.accept(true);
                }
                if self.refused_conns > 0 {
                    tracing::warn!(
                        "link: refused {} connections (max_connections {}, max_connections_per_address {})",
                        std::mem::take(&mut self.refused_conns),
                        self.max_connections,
                        self.cfg.max_connections_per_address
                    );
                }
            }
            self.flush();
            self.reap();
            if self.shared.stop.load(Ordering::SeqCst) {
                let ids: Vec<u32> = self.conns.keys().copied().collect();
                for id in ids {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.dead = true;
                    }
                }
                self.reap();
                return;
            }
        }
    }

    fn accept(&mut self, http: bool) {
        loop {
            let l = if http { self.http.as_ref() } else { self.tcp.as_ref() };
            let Some(l) = l else { return };
            match l.accept() {
                Ok((mut sock, peer)) => {
                    let ip = peer.ip();
                    let admitted =
                        self.conn_count.admit(ip, self.max_connections, self.cfg.max_connections_per_address);
                    if let Err(refusal) = admitted {
                        self.refused_conns += 1;
                        refuse_connection(sock, http, &refusal.message());
                        continue;
                    }
                    let id = self.next_conn;
                    self.next_conn = self.next_conn.wrapping_add(1).max(FIRST_CONN);
                    let _ = sock.set_nodelay(true);
                    if self
                        .poll
                        .registry()
                        .register(&mut sock, Token(id as usize), Interest::READABLE | Interest::WRITABLE)
                        .is_err()
                    {
                        self.conn_count.release(ip);
                        continue;
                    }
                    let now = Instant::now();
                    self.conns.insert(
                        id,
                        Conn {
                            pipe: Pipe { sock, out: Vec::new(), sent: 0 },
                            proto: if http { Proto::Http } else { Proto::Tcp },
                            ip,
                            inbuf: Vec::new(),
                            scanned: 0,
                            // The request head is due from the moment of connecting.
                            partial_since: http.then_some(now),
                            closing_since: None,
                            refused_in_row: 0,
                            skipping: false,
                            last_seen: now,
                            tokens: self.cfg.burst,
                            refilled: now,
                            session: None,
                            login_busy: false,
                            monitors: Vec::new(),
                            close_after_flush: false,
                            dead: false,
                            dirty: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors and the like: try again on the next tick
                    // (the listener is edge-triggered: no new event may come).
                    tracing::warn!("link: accept failed: {e}");
                    self.accept_again = true;
                    return;
                }
            }
        }
    }

    /// Read what the socket has, up to this turn's share ([`READ_BUDGET`]), and act on
    /// each complete message. A connection with more to read is read again next turn,
    /// after the others: one client sending fast never holds up the rest.
    fn read_conn(&mut self, id: u32) {
        let mut buf = [0u8; 16 * 1024];
        let mut taken = 0;
        loop {
            let Some(c) = self.conns.get_mut(&id) else { return };
            // A connection on its way out is not read any more (its answer is sent).
            if c.dead || c.close_after_flush {
                return;
            }
            if let Proto::Ws(_) = c.proto {
                self.read_ws(id);
                return;
            }
            if taken >= READ_BUDGET {
                self.again.push(id);
                return;
            }
            match c.pipe.sock.read(&mut buf) {
                Ok(0) => {
                    c.dead = true;
                    return;
                }
                Ok(n) => {
                    taken += n;
                    c.last_seen = Instant::now();
                    c.inbuf.extend_from_slice(&buf[..n]);
                    match c.proto {
                        Proto::Tcp => self.tcp_lines(id),
                        Proto::Http => self.http_head(id),
                        Proto::Ws(_) => {}
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.dead = true;
                    return;
                }
            }
        }
    }

    /// Act on each complete line in the input. Each byte is looked at once: the search
    /// for the end of a line goes on from where the last one stopped, and the lines
    /// taken are removed from the buffer in one go.
    fn tcp_lines(&mut self, id: u32) {
        let max = self.cfg.max_message;
        let mut start = 0;
        loop {
            let Some(c) = self.conns.get_mut(&id) else { return };
            if c.dead || c.close_after_flush {
                // Closing: the rest of the input is not acted on.
                c.inbuf = Vec::new();
                c.scanned = 0;
                return;
            }
            let from = c.scanned.max(start);
            let Some(pos) = c.inbuf[from..].iter().position(|&b| b == b'\n').map(|p| from + p) else {
                c.inbuf.drain(..start);
                c.scanned = c.inbuf.len();
                if c.inbuf.len() > max {
                    c.inbuf.clear();
                    c.scanned = 0;
                    if !c.skipping {
                        c.skipping = true;
                        self.too_large(id);
                    }
                }
                let Some(c) = self.conns.get_mut(&id) else { return };
                if c.inbuf.is_empty() && !c.skipping {
                    c.partial_since = None;
                } else if start > 0 || c.partial_since.is_none() {
                    // A line begun in this read.
                    c.partial_since = Some(Instant::now());
                }
                return;
            };
            let mut end = pos;
            if end > start && c.inbuf[end - 1] == b'\r' {
                end -= 1;
            }
            let line_start = start;
            start = pos + 1;
            c.scanned = start;
            if std::mem::take(&mut c.skipping) {
                continue;
            }
            if end - line_start > max {
                self.too_large(id);
                continue;
            }
            let line = &c.inbuf[line_start..end];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match std::str::from_utf8(line) {
                Ok(text) => {
                    let text = text.to_string();
                    self.handle_text(id, &text);
                }
                Err(e) => {
                    let msg = format!("not UTF-8 at byte {} of the line", e.valid_up_to());
                    self.handle_malformed(id, None, &msg);
                }
            }
        }
    }

    fn too_large(&mut self, id: u32) {
        let msg = format!("message larger than the limit of {} bytes; it was skipped", self.cfg.max_message);
        self.send_to(id, &wire::error_event("message_too_large", &msg, &rfc3339(now_unix_ms())));
    }

    /// An HTTP request head: a page, or the WebSocket upgrade at `/cti`. The search for
    /// the head's end goes on from where the last read's stopped; a head larger than
    /// `max_head` is refused (431) and the connection closed without reading more.
    fn http_head(&mut self, id: u32) {
        let max_head = self.cfg.max_head;
        let Some(c) = self.conns.get_mut(&id) else { return };
        let from = c.scanned.saturating_sub(3);
        let found = c.inbuf[from..].windows(4).position(|w| w == b"\r\n\r\n").map(|p| from + p);
        let end = match found {
            Some(end) if end <= max_head => end,
            Some(_) => c.inbuf.len(),
            None => {
                c.scanned = c.inbuf.len();
                if c.inbuf.len() <= max_head {
                    return;
                }
                c.inbuf.len()
            }
        };
        if end > max_head {
            c.inbuf = Vec::new();
            let msg = format!("request head larger than {max_head} bytes\n");
            http_reply(c, "431 Request Header Fields Too Large", "text/plain", msg.as_bytes());
            let ip = c.ip;
            self.strike(ip);
            return;
        }
        c.partial_since = None;
        let head = String::from_utf8_lossy(&c.inbuf[..end]).into_owned();
        let rest = c.inbuf[end + 4..].to_vec();
        c.inbuf = Vec::new();
        c.scanned = 0;
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("");
        let mut key = None;
        let mut upgrade = false;
        let (mut origin, mut host) = (None, None);
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "sec-websocket-key" {
                    key = Some(v.to_string());
                } else if k == "upgrade" && v.eq_ignore_ascii_case("websocket") {
                    upgrade = true;
                } else if k == "origin" {
                    origin = Some(v.to_string());
                } else if k == "host" {
                    host = Some(v.to_string());
                }
            }
        }
        let ip = c.ip;
        if method != "GET" {
            http_reply(c, "405 Method Not Allowed", "text/plain", b"only GET\n");
            self.strike(ip);
            return;
        }
        if path == "/cti" {
            let Some(key) = key.filter(|_| upgrade) else {
                http_reply(c, "400 Bad Request", "text/plain", b"/cti is a WebSocket endpoint\n");
                self.strike(ip);
                return;
            };
            if !limits::origin_allowed(&self.cfg, origin.as_deref(), host.as_deref()) {
                let msg = format!(
                    "origin {} may not open the link: list it in [link] allowed_origins\n",
                    origin.as_deref().unwrap_or("")
                );
                http_reply(c, "403 Forbidden", "text/plain", msg.as_bytes());
                self.strike(ip);
                return;
            }
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            let resp = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            c.pipe.out.extend_from_slice(resp.as_bytes());
            let config = WebSocketConfig::default()
                .max_message_size(Some(self.cfg.max_message))
                .max_frame_size(Some(self.cfg.max_message));
            c.proto =
                Proto::Ws(Box::new(WebSocketContext::from_partially_read(rest, Role::Server, Some(config))));
            if c.pipe.push().is_err() {
                c.dead = true;
                return;
            }
            self.read_ws(id);
            return;
        }
        match self.cfg.pages.iter().find(|p| p.path == path) {
            Some(p) => {
                let (ct, body) = (p.content_type.clone(), p.body.clone());
                http_reply(c, "200 OK", &ct, &body);
            }
            None => http_reply(c, "404 Not Found", "text/plain", b"not found\n"),
        }
    }

    fn read_ws(&mut self, id: u32) {
        let mut budget = WS_READ_BUDGET;
        loop {
            let Some(c) = self.conns.get_mut(&id) else { return };
            if c.dead || c.close_after_flush {
                break;
            }
            let Proto::Ws(ws) = &mut c.proto else { return };
            if budget == 0 {
                self.again.push(id);
                break;
            }
            budget -= 1;
            let r = ws.read(&mut c.pipe);
            // Pongs and close replies tungstenite queued go out now.
            let _ = ws.flush(&mut c.pipe);
            match r {
                Ok(Message::Text(t)) => {
                    c.last_seen = Instant::now();
                    let text = t.as_str().to_string();
                    self.handle_text(id, &text);
                }
                Ok(Message::Binary(_)) => {
                    c.last_seen = Instant::now();
                    self.handle_malformed(id, None, "binary messages are not used: send JSON as text");
                }
                Ok(Message::Close(_)) => c.close_after_flush = true,
                Ok(_) => c.last_seen = Instant::now(),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::Capacity(_)) => {
                    self.too_large(id);
                    self.close_ws(id, CloseCode::Size, "message too large");
                    break;
                }
                Err(_) => {
                    c.dead = true;
                    break;
                }
            }
        }
        if let Some(c) = self.conns.get_mut(&id) {
            if c.pipe.push().is_err() {
                c.dead = true;
            }
        }
    }

    fn close_ws(&mut self, id: u32, code: CloseCode, reason: &str) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        if let Proto::Ws(ws) = &mut c.proto {
            let _ = ws.close(&mut c.pipe, Some(CloseFrame { code, reason: reason.to_string().into() }));
            let _ = ws.flush(&mut c.pipe);
        }
        c.close_after_flush = true;
        if c.pipe.push().is_err() {
            c.dead = true;
        }
    }

    /// Queue one message for a connection; drop the connection when it is too far
    /// behind.
    fn send_to(&mut self, id: u32, text: &str) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        if c.dead || c.close_after_flush {
            return;
        }
        match &mut c.proto {
            Proto::Tcp => {
                c.pipe.out.extend_from_slice(text.as_bytes());
                c.pipe.out.push(b'\n');
            }
            Proto::Ws(ws) => {
                if ws.write(&mut c.pipe, Message::text(text)).is_err() || ws.flush(&mut c.pipe).is_err() {
                    c.dead = true;
                    return;
                }
            }
            Proto::Http => return,
        }
        self.queued(id);
    }

    /// Note that a connection has output queued this turn (it is written by `flush`),
    /// and drop it when it is too far behind.
    fn queued(&mut self, id: u32) {
        let max_queued = self.cfg.max_queued;
        let Some(c) = self.conns.get_mut(&id) else { return };
        if c.pipe.pending() > max_queued {
            tracing::info!("link: connection {id} dropped: {} bytes unsent (slow client)", c.pipe.pending());
            c.dead = true;
        } else if !c.dirty {
            c.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Everything the engine thread has sent so far.
    fn take_messages(&mut self) {
        // Cleared before draining: a message sent after this wakes the poll again.
        self.shared.notified.store(false, Ordering::SeqCst);
        while let Ok(msg) = self.rx.try_recv() {
            self.handle_msg(msg);
        }
    }

    /// Write what this turn queued: one write per connection, oldest connection first.
    /// Writing to many sockets takes a while, and one card event usually brings a few
    /// engine events in quick succession; messages that arrive meanwhile are taken in
    /// between, so connections not yet written get them in the same write instead of
    /// waiting for another round over every connection.
    fn flush(&mut self) {
        for _ in 0..4 {
            let mut batch = std::mem::take(&mut self.dirty);
            if batch.is_empty() {
                return;
            }
            batch.sort_unstable();
            for (n, id) in batch.iter().enumerate() {
                if n % 32 == 31 && !self.rx.is_empty() {
                    self.take_messages();
                }
                let Some(c) = self.conns.get_mut(id) else { continue };
                c.dirty = false;
                if !c.dead && c.pipe.push().is_err() {
                    c.dead = true;
                }
            }
        }
        // Still more (a steady stream): the rest goes out on the next turn, which does
        // not wait (see `run`), so sockets and requests are not starved meanwhile.
    }

    fn reply(&mut self, id: u32, invoke: u32, result: Value) {
        self.send_to(id, &wire::reply_ok(invoke, result));
    }

    fn refuse(&mut self, id: u32, invoke: u32, code: &str, message: &str) {
        self.send_to(id, &wire::reply_err(invoke, code, message));
    }

    fn handle_text(&mut self, id: u32, text: &str) {
        match wire::parse_request(text) {
            Ok((invoke, req)) => {
                if self.take_token(id, Some(invoke)) {
                    self.dispatch(id, invoke, req);
                }
            }
            Err(bad) => self.handle_malformed(id, bad.invoke, &bad.message),
        }
    }

    /// A request that could not be read: it costs a token like any other, then gets
    /// `malformed` (a reply when its invoke was read, else an `Error` event).
    fn handle_malformed(&mut self, id: u32, invoke: Option<u32>, message: &str) {
        if !self.take_token(id, invoke) {
            return;
        }
        match invoke {
            Some(i) => self.refuse(id, i, "malformed", message),
            None => self.send_to(id, &wire::error_event("malformed", message, &rfc3339(now_unix_ms()))),
        }
    }

    /// The connection's token bucket: false (and the refusal sent) when the request is
    /// over the rate. A client that sends `burst` more requests after being refused,
    /// without one getting through, is disconnected.
    fn take_token(&mut self, id: u32, invoke: Option<u32>) -> bool {
        let (rate, burst) = (self.cfg.rate, self.cfg.burst);
        let Some(c) = self.conns.get_mut(&id) else { return false };
        let now = Instant::now();
        c.tokens = (c.tokens + now.duration_since(c.refilled).as_secs_f64() * rate).min(burst);
        c.refilled = now;
        if c.tokens >= 1.0 {
            c.tokens -= 1.0;
            c.refused_in_row = 0;
            return true;
        }
        c.refused_in_row = c.refused_in_row.saturating_add(1);
        if f64::from(c.refused_in_row) > burst {
            let msg = format!(
                "went on sending after {} requests were refused as over the rate; closing",
                c.refused_in_row - 1
            );
            tracing::info!("link: connection {id} from {} closed: {msg}", c.ip);
            let ip = c.ip;
            self.send_to(id, &wire::error_event("rate_limited", &msg, &rfc3339(now_unix_ms())));
            self.close_conn(id);
            self.strike(ip);
            return false;
        }
        let msg = format!("more than {rate} requests per second; slow down");
        match invoke {
            Some(i) => self.refuse(id, i, "rate_limited", &msg),
            None => self.send_to(id, &wire::error_event("rate_limited", &msg, &rfc3339(now_unix_ms()))),
        }
        false
    }

    /// Close after what is queued is sent (WebSocket: with a close frame).
    fn close_conn(&mut self, id: u32) {
        let is_ws = matches!(self.conns.get(&id).map(|c| &c.proto), Some(Proto::Ws(_)));
        if is_ws {
            self.close_ws(id, CloseCode::Policy, "closed by the server");
        } else if let Some(c) = self.conns.get_mut(&id) {
            c.close_after_flush = true;
        }
    }

    /// A bad request or failed login from `ip`: counts toward that address's backoff.
    fn strike(&mut self, ip: IpAddr) {
        self.addr_failures.fail(&ip, Instant::now());
    }

    fn dispatch(&mut self, id: u32, invoke: u32, req: Request) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        match req {
            Request::Ping => {
                self.reply(id, invoke, json!({"time": rfc3339(now_unix_ms())}));
                return;
            }
            Request::Login { user, password, station } => {
                if let Some(s) = &c.session {
                    let msg = format!("this connection is already logged in as {}", s.user);
                    self.refuse(id, invoke, "invalid_agent_state", &msg);
                    return;
                }
                if c.login_busy {
                    self.refuse(id, invoke, "invalid_agent_state", "a Login is already in progress");
                    return;
                }
                let (ip, now) = (c.ip, Instant::now());
                let key = tracked_name(&user);
                if let Err(hold) = self.addr_failures.check(&ip, now) {
                    let msg =
                        format!("too many failed logins or bad requests from {ip}; {}", hold_text(hold));
                    self.refuse(id, invoke, "login_backoff", &msg);
                    return;
                }
                match self.account_failures.check(&key, now) {
                    Ok(()) => {}
                    Err(hold @ Hold::Locked(_)) => {
                        let msg = format!(
                            "too many failed logins for this user: locked; {} (a supervisor lifts it with UnlockAccount)",
                            hold_text(hold)
                        );
                        self.refuse(id, invoke, "account_locked", &msg);
                        return;
                    }
                    Err(hold) => {
                        let msg = format!("too many failed logins for this user; {}", hold_text(hold));
                        self.refuse(id, invoke, "login_backoff", &msg);
                        return;
                    }
                }
                let job = AuthJob {
                    conn: id,
                    invoke,
                    addr: ip,
                    user: key,
                    account: self.accounts.get(&user).cloned(),
                    password,
                    station,
                    allow_no_password: self.cfg.allow_no_password,
                };
                let suspect = self.addr_failures.has_record(&ip);
                match self.pool.submit(job, suspect) {
                    Ok(displaced) => {
                        if let Some(c) = self.conns.get_mut(&id) {
                            c.login_busy = true;
                        }
                        if let Some(d) = displaced {
                            if let Some(c) = self.conns.get_mut(&d.conn) {
                                c.login_busy = false;
                            }
                            let msg = "Logins from addresses without failures go first and took this one's place; retry shortly";
                            self.refuse(d.conn, d.invoke, "engine_busy", msg);
                        }
                    }
                    Err(Busy::Address(n)) => {
                        let msg = format!(
                            "{n} Logins from this address are already waiting to be checked; retry shortly"
                        );
                        self.refuse(id, invoke, "rate_limited", &msg);
                    }
                    Err(Busy::Full(n)) => {
                        let msg = format!("{n} Logins are already waiting to be checked; retry shortly");
                        self.refuse(id, invoke, "engine_busy", &msg);
                    }
                }
                return;
            }
            _ => {}
        }
        let Some(session) = &c.session else {
            self.refuse(id, invoke, "not_logged_in", "Login first");
            return;
        };
        let (user, supervisor) = (session.user.clone(), session.supervisor);
        let own = session.station.as_ref().map(|e| format!("station:{e}"));
        match req {
            Request::Ping | Request::Login { .. } => {}
            Request::Logout => {
                let service = Service::SetAgentState { agent: user, request: AgentRequest::LogOut };
                self.forward(id, invoke, service, PendingKind::Logout);
            }
            Request::Monitor(target) => {
                let viewer = Viewer { user: &user, own: own.as_deref() };
                let allowed = match (&target, supervisor) {
                    (Target::Agent(a), false) => *a == user,
                    (Target::Device(d), false) => Some(d) == own.as_ref(),
                    (_, false) => false,
                    (Target::Agent(a), true) => *a == user || self.model.supervises(&user, a),
                    (Target::Device(d), true) => self.model.device_in_scope(viewer, d),
                    (Target::Queue(q), true) => self.model.supervises_queue(&user, q),
                    // Limited to what their groups cover (see `fan_out`).
                    (Target::All, true) => true,
                };
                if !allowed {
                    let msg = if supervisor {
                        let what = match &target {
                            Target::Agent(a) => format!("agent {a}"),
                            Target::Device(d) => format!("{d} (not their station or one of their agents')"),
                            Target::Queue(q) => format!("queue {q} (none of their agents serves it)"),
                            Target::All => "everything".into(),
                        };
                        format!("supervisor {user} does not supervise {what}")
                    } else {
                        format!(
                            "agent {user} may only monitor itself or {}; only supervisors monitor others",
                            own.as_deref().unwrap_or("its own station")
                        )
                    };
                    self.refuse(id, invoke, "privilege_violation", &msg);
                    return;
                }
                let m = self.next_monitor;
                self.next_monitor += 1;
                let snapshot = self.model.snapshot(&target, viewer);
                if let Some(c) = self.conns.get_mut(&id) {
                    self.monitors.add(id, &target);
                    c.monitors.push((m, target));
                }
                self.reply(id, invoke, json!({"monitor": m, "snapshot": snapshot}));
                if supervisor {
                    self.send_active_alarms(id);
                }
            }
            Request::MonitorStop(m) => {
                let removed = match self.conns.get_mut(&id) {
                    Some(c) => match c.monitors.iter().position(|(x, _)| *x == m) {
                        Some(i) => {
                            let (_, target) = c.monitors.remove(i);
                            self.monitors.remove(id, &target);
                            true
                        }
                        None => false,
                    },
                    None => false,
                };
                if removed {
                    self.reply(id, invoke, json!({}));
                } else {
                    self.refuse(
                        id,
                        invoke,
                        "unknown_monitor",
                        &format!("this connection has no monitor {m}"),
                    );
                }
            }
            Request::UnlockAccount { user: who, address } => {
                self.unlock(id, invoke, &user, supervisor, who, address)
            }
            Request::LoginLockouts => self.lockouts(id, invoke, &user, supervisor),
            Request::AgentCallsToday { agent } => {
                let agent = agent.unwrap_or_else(|| user.clone());
                if agent != user && !(supervisor && self.model.supervises(&user, &agent)) {
                    let msg = format!("{user} may not read the calls of agent {agent}");
                    self.refuse(id, invoke, "privilege_violation", &msg);
                    return;
                }
                let calls: Vec<Value> = self
                    .history
                    .agent_calls_today(&agent)
                    .into_iter()
                    .map(|c| {
                        json!({"call":c.call,"time":rfc3339(c.at_unix_ms),"number":c.number,"direction":c.direction,
                               "queue":c.queue,"talk_secs":c.talk_secs,"outcome":c.outcome})
                    })
                    .collect();
                self.reply(id, invoke, json!({"calls": calls}));
            }
            Request::Engine(mut service) => {
                if let Err((code, msg)) = self.authorize(&user, supervisor, own.as_deref(), &mut service) {
                    self.refuse(id, invoke, code, &msg);
                    return;
                }
                let kind = match &service {
                    Service::GetAgentState { agent } => PendingKind::GetAgentState { agent: agent.clone() },
                    Service::SnapshotAgents { .. } if supervisor && self.model.scoped(&user) => {
                        let mut mine = self.model.groups.get(&user).cloned().unwrap_or_default();
                        mine.insert(user.clone());
                        PendingKind::AgentsIn(mine)
                    }
                    _ => PendingKind::Plain,
                };
                self.forward(id, invoke, service, kind);
            }
        }
    }

    /// Roles: an agent controls only its own station, calls and state; supervisors
    /// also supervise, force states and watch (within their groups). A call is
    /// controlled only through a live connection of the caller's own station in it
    /// (not one it had before a transfer, a deflection or leaving); supervisors read
    /// and record the calls of their scope. Err: the error code and why.
    fn authorize(
        &self,
        user: &str,
        supervisor: bool,
        own: Option<&str>,
        s: &mut Service,
    ) -> Result<(), (&'static str, String)> {
        const DENIED: &str = "privilege_violation";
        let who = if supervisor { "supervisor" } else { "agent" };
        let viewer = Viewer { user, own };
        let own_dev = |d: &DeviceId| -> Result<(), (&'static str, String)> {
            let d = d.to_string();
            match own {
                Some(o) if o == d => Ok(()),
                Some(o) => Err((DENIED, format!("{who} {user} may only control {o}, not {d}"))),
                None => {
                    Err((DENIED, format!("{who} {user} logged in without a station and controls no device")))
                }
            }
        };
        let known = |call: &crate::csta::CallId| -> Result<(), (&'static str, String)> {
            if self.model.calls.contains_key(&call.0) {
                Ok(())
            } else {
                Err(("invalid_call_id", format!("no {call} in progress")))
            }
        };
        // The caller's station has a live connection in the call.
        let own_call = |call: &crate::csta::CallId| -> Result<(), (&'static str, String)> {
            known(call)?;
            match own {
                Some(o) if self.model.is_party(call.0, o) => Ok(()),
                Some(o) => Err((
                    DENIED,
                    format!("{who} {user} may only control its own calls; {o} has no connection in {call}"),
                )),
                None => {
                    Err((DENIED, format!("{who} {user} logged in without a station and controls no call")))
                }
            }
        };
        // Its own call, or (supervisors) a call of their scope.
        let read_call = |call: &crate::csta::CallId| -> Result<(), (&'static str, String)> {
            known(call)?;
            if supervisor && self.model.call_in_scope(viewer, call.0) {
                return Ok(());
            }
            own_call(call).map_err(|(code, msg)| {
                if supervisor {
                    (code, format!("supervisor {user} does not supervise anyone in {call}"))
                } else {
                    (code, msg)
                }
            })
        };
        let may_manage = |agent: &str| -> Result<(), (&'static str, String)> {
            if agent == user || (supervisor && self.model.supervises(user, agent)) {
                Ok(())
            } else if supervisor {
                Err((DENIED, format!("supervisor {user} does not supervise agent {agent}")))
            } else {
                Err((DENIED, format!("agent {user} may only change or read its own state, not agent {agent}'s; only supervisors act on others")))
            }
        };
        let supervisors_only = |what: &str| -> Result<(), (&'static str, String)> {
            if supervisor {
                Ok(())
            } else {
                Err((DENIED, format!("agent {user} may not {what}: supervisors only")))
            }
        };
        match s {
            Service::MakeCall { calling, .. } => own_dev(&DeviceId::Station(calling.clone())),
            Service::AnswerCall { call, device }
            | Service::ClearConnection { call, device }
            | Service::HoldCall { call, device }
            | Service::RetrieveCall { call, device }
            | Service::SingleStepTransferCall { call, device, .. }
            | Service::DeflectCall { call, device, .. }
            | Service::GenerateDigits { call, device, .. } => {
                own_dev(device)?;
                own_call(call)
            }
            Service::ConsultationCall { held, device, .. } => {
                own_dev(device)?;
                own_call(held)
            }
            Service::TransferCall { held, active, device }
            | Service::ConferenceCall { held, active, device }
            | Service::AlternateCall { held, active, device }
            | Service::ReconnectCall { held, active, device } => {
                own_dev(device)?;
                own_call(held)?;
                own_call(active)
            }
            Service::ClearCall { call } | Service::SetCallData { call, .. } => own_call(call),
            Service::StartRecording { call }
            | Service::StopRecording { call }
            | Service::SnapshotCall { call } => read_call(call),
            Service::SetAgentState { agent, .. } | Service::GetAgentState { agent } => may_manage(agent),
            Service::Supervise { supervisor: sup, agent, .. } => {
                supervisors_only("monitor, whisper, barge or intercept")?;
                if sup.is_empty() {
                    *sup = user.to_string();
                } else if sup != user {
                    return Err((
                        DENIED,
                        format!("supervisor {user} may only supervise as themself, not as {sup}"),
                    ));
                }
                may_manage(agent)
            }
            Service::SnapshotDevice { device } if !supervisor => own_dev(device),
            Service::SnapshotDevice { device } => {
                let d = device.to_string();
                if self.model.device_in_scope(viewer, &d) {
                    Ok(())
                } else {
                    Err((DENIED, format!("supervisor {user} does not supervise {d}")))
                }
            }
            Service::SnapshotAgents { group } => {
                supervisors_only("list every agent's state")?;
                match group {
                    Some(g)
                        if self.model.scoped(user)
                            && !self.cfg.engine.supervisors.iter().any(|sv| {
                                sv.id == user
                                    && sv.groups.iter().any(|&i| self.cfg.engine.agent_groups[i].name == *g)
                            }) =>
                    {
                        Err((DENIED, format!("supervisor {user} does not supervise group {g}")))
                    }
                    _ => Ok(()),
                }
            }
            Service::SnapshotQueue { queue } => {
                if !supervisor || self.model.supervises_queue(user, queue) {
                    Ok(())
                } else {
                    Err((DENIED, format!("supervisor {user} does not supervise queue {queue} (none of their agents serves it)")))
                }
            }
        }
    }

    fn forward(&mut self, id: u32, invoke: u32, service: Service, kind: PendingKind) {
        let internal = self.next_invoke;
        self.next_invoke = self.next_invoke.wrapping_add(1);
        match self.to_engine.try_send(Input::Request { client: id, invoke: internal, service }) {
            Ok(()) => {
                self.pending.insert(internal, Pending { conn: id, invoke, kind });
            }
            Err(TrySendError::Full(_)) => {
                self.refuse(id, invoke, "engine_busy", "the engine is busy; retry shortly")
            }
            Err(TrySendError::Disconnected(_)) => {
                self.refuse(id, invoke, "engine_busy", "the engine has stopped")
            }
        }
    }

    /// `UnlockAccount`: a supervisor lifts a user's lockout or backoff (an agent it
    /// supervises; a supervisor's or an unknown name's only when it supervises
    /// everyone), or an address's backoff (likewise only when it supervises everyone).
    fn unlock(
        &mut self,
        id: u32,
        invoke: u32,
        by: &str,
        supervisor: bool,
        user: Option<String>,
        address: Option<String>,
    ) {
        if !supervisor {
            let msg = format!("agent {by} may not lift login lockouts: supervisors only");
            return self.refuse(id, invoke, "privilege_violation", &msg);
        }
        let everyone = !self.model.groups.contains_key(by);
        let ip = match address.as_deref().map(str::parse::<IpAddr>) {
            None => None,
            Some(Ok(ip)) => Some(ip),
            Some(Err(_)) => {
                let msg = format!(
                    "UnlockAccount: `address` {:?} is not an IP address",
                    address.unwrap_or_default()
                );
                return self.refuse(id, invoke, "malformed", &msg);
            }
        };
        if let Some(u) = &user {
            let is_agent = self.accounts.get(u).is_some_and(|a| !a.supervisor);
            if !(everyone || is_agent && self.model.supervises(by, u)) {
                let msg = format!("supervisor {by} does not supervise {u}");
                return self.refuse(id, invoke, "privilege_violation", &msg);
            }
        }
        if ip.is_some() && !everyone {
            let msg = format!("supervisor {by} supervises some groups only: lifting an address's backoff takes a supervisor of everyone");
            return self.refuse(id, invoke, "privilege_violation", &msg);
        }
        let mut lifted = false;
        if let Some(u) = &user {
            lifted |= self.account_failures.lift(&tracked_name(u));
        }
        if let Some(ip) = ip {
            lifted |= self.addr_failures.lift(&ip);
        }
        tracing::info!(
            "link: supervisor {by} lifted login holds (user {user:?}, address {address:?}): {lifted}"
        );
        self.reply(id, invoke, json!({"user":user,"address":address,"lifted":lifted}));
    }

    /// `LoginLockouts`: who is locked or held back now (within the supervisor's scope).
    fn lockouts(&mut self, id: u32, invoke: u32, by: &str, supervisor: bool) {
        if !supervisor {
            let msg = format!("agent {by} may not list login lockouts: supervisors only");
            return self.refuse(id, invoke, "privilege_violation", &msg);
        }
        let everyone = !self.model.groups.contains_key(by);
        let now = Instant::now();
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
        let mut users: Vec<Value> = self
            .account_failures
            .held(now)
            .into_iter()
            .filter(|(u, ..)| {
                everyone || self.accounts.get(u).is_some_and(|a| !a.supervisor) && self.model.supervises(by, u)
            })
            .map(|(u, n, locked, left)| json!({"user":u,"failures":n,"locked":locked,"retry_after_ms":ms(left)}))
            .collect();
        users.sort_by(|a, b| a["user"].as_str().cmp(&b["user"].as_str()));
        let mut addresses: Vec<Value> = if everyone {
            self.addr_failures
                .held(now)
                .into_iter()
                .map(
                    |(a, n, _, left)| json!({"address":a.to_string(),"failures":n,"retry_after_ms":ms(left)}),
                )
                .collect()
        } else {
            Vec::new()
        };
        addresses.sort_by(|a, b| a["address"].as_str().cmp(&b["address"].as_str()));
        self.reply(id, invoke, json!({"users":users,"addresses":addresses}));
    }

    fn auth_done(&mut self, d: AuthDone) {
        let now = Instant::now();
        let ok = d.ok && d.account.is_some();
        self.pool.finished(d.addr, ok, now);
        if ok {
            self.account_failures.succeed(&d.user);
        } else {
            self.addr_failures.fail(&d.addr, now);
            if self.account_failures.fail(&d.user, now) {
                tracing::warn!(
                    "link: user {:?} locked after {} failed logins (the last from {}); a supervisor lifts it with UnlockAccount",
                    d.user,
                    self.cfg.login.lockout_failures,
                    d.addr
                );
            }
        }
        let Some(c) = self.conns.get_mut(&d.conn) else { return };
        let account = match (d.ok, d.account) {
            (true, Some(a)) => a,
            _ => {
                c.login_busy = false;
                self.refuse(d.conn, d.invoke, "invalid_password", "wrong user or password");
                return;
            }
        };
        // The same person's Login still at the engine: decide this one after it.
        let busy = self
            .pending
            .values()
            .any(|p| matches!(&p.kind, PendingKind::Login { account: a, .. } if a.id == account.id));
        if busy {
            self.deferred_logins.push(AuthDone { account: Some(account), ..d });
            return;
        }
        // The same person on another connection (desktop, wallboard, CRM): share the
        // login. An agent has one station; a second connection that names none is at
        // it too. A supervisor's connections may each be with or without the station.
        let sessions: Vec<&Session> =
            self.conns.values().filter_map(|c| c.session.as_ref()).filter(|s| s.user == account.id).collect();
        if let Some(first) = sessions.first() {
            let engine_client = first.engine_client;
            let live_station = sessions.iter().find_map(|s| s.station.clone());
            let station = match (&d.station, &live_station) {
                (None, _) if account.supervisor => Some(None),
                (None, live) => Some(live.clone()),
                (Some(want), Some(live)) if want == live => Some(Some(want.clone())),
                // A supervisor watching from elsewhere takes a station: the engine attaches it.
                (Some(_), None) if account.supervisor => None,
                (Some(_), _) => {
                    let msg = format!(
                        "{} is logged in at {} on another connection (one station per person)",
                        account.id,
                        live_station.as_deref().map_or("no station".to_string(), |s| format!("station {s}"))
                    );
                    let Some(c) = self.conns.get_mut(&d.conn) else { return };
                    c.login_busy = false;
                    self.refuse(d.conn, d.invoke, "invalid_agent_state", &msg);
                    return;
                }
            };
            if let Some(station) = station {
                let Some(c) = self.conns.get_mut(&d.conn) else { return };
                c.login_busy = false;
                let v = login_result(&self.cfg, &self.model, &account, &station);
                let supervisor = account.supervisor;
                c.session = Some(Session { user: account.id, supervisor, station, engine_client });
                self.reply(d.conn, d.invoke, v);
                if supervisor {
                    self.send_active_alarms(d.conn);
                }
                return;
            }
        }
        let service = Service::SetAgentState {
            agent: account.id.clone(),
            request: AgentRequest::LogIn { station: d.station.clone(), password: Some(d.password) },
        };
        self.forward(d.conn, d.invoke, service, PendingKind::Login { account, station: d.station });
        if let Some(c) = self.conns.get_mut(&d.conn) {
            // to_engine refused (engine busy): the client may try again.
            c.login_busy = self
                .pending
                .values()
                .any(|p| p.conn == d.conn && matches!(p.kind, PendingKind::Login { .. }));
        }
    }

    /// Logins of `user` that waited for another of theirs at the engine: decide them
    /// now (an empty `user`: every one whose person has no Login at the engine).
    fn retry_deferred_logins(&mut self, user: &str) {
        let busy = |pending: &HashMap<u32, Pending>, id: &str| {
            pending
                .values()
                .any(|p| matches!(&p.kind, PendingKind::Login { account, .. } if account.id == id))
        };
        let (ready, wait): (Vec<AuthDone>, Vec<AuthDone>) =
            std::mem::take(&mut self.deferred_logins).into_iter().partition(|d| {
                let id = d.account.as_ref().map_or("", |a| a.id.as_str());
                (user.is_empty() || id == user) && !busy(&self.pending, id)
            });
        self.deferred_logins = wait;
        for d in ready {
            if self.conns.contains_key(&d.conn) {
                self.auth_done(d);
            }
        }
    }

    fn handle_msg(&mut self, msg: LinkMsg) {
        match msg {
            LinkMsg::Output { at_unix_ms, output } => match output {
                Output::Event(ev) => {
                    let scope = self.model.apply(&ev, at_unix_ms);
                    let time = rfc3339(at_unix_ms);
                    let body = wire::event(&ev, &time).to_string();
                    self.fan_out(&scope, &body, None);
                    for agent in &scope.state_changed {
                        let mut s = Scope::default();
                        s.agents.insert(agent.clone());
                        if let Some(st) = self.model.agents.get(agent).and_then(|a| a.station.as_ref()) {
                            s.devices.insert(format!("station:{st}"));
                        }
                        let body = self.model.agent_state_event(agent, &time).to_string();
                        self.fan_out(&s, &body, None);
                    }
                }
                Output::Response { client, invoke, result } => self.response(client, invoke, result),
                _ => {}
            },
            LinkMsg::ScreenPop(pop) => self.screen_pop(pop),
            LinkMsg::Stats(stats) => {
                // Supervisors also get the waiting callers' numbers; agents do not.
                let [for_agents, for_supervisors] =
                    [false, true].map(|sup| stats_json(&stats, sup).to_string());
                let ids: Vec<(u32, bool, String)> = self
                    .conns
                    .iter()
                    .filter_map(|(i, c)| c.session.as_ref().map(|s| (*i, s.supervisor, s.user.clone())))
                    .collect();
                // A supervisor limited to groups sees only the queues of their scope.
                let mut scoped: HashMap<String, String> = HashMap::new();
                for (id, sup, user) in ids {
                    let text = if sup && self.model.scoped(&user) {
                        let model = &self.model;
                        scoped
                            .entry(user)
                            .or_insert_with_key(|user| {
                                let mut mine = stats.clone();
                                mine.queues.retain(|q| model.supervises_queue(user, &q.queue));
                                stats_json(&mine, true).to_string()
                            })
                            .clone()
                    } else if sup {
                        for_supervisors.clone()
                    } else {
                        for_agents.clone()
                    };
                    self.send_to(id, &text);
                }
            }
            LinkMsg::Alarm(a) => {
                let text = alarm_event(&a);
                if a.raised {
                    self.alarms.insert(a.alarm.clone(), a);
                } else {
                    self.alarms.remove(&a.alarm);
                }
                let ids: Vec<u32> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.session.as_ref().is_some_and(|s| s.supervisor))
                    .map(|(i, _)| *i)
                    .collect();
                for id in ids {
                    self.send_to(id, &text);
                }
            }
        }
    }

    /// The alarms raised now, to a supervisor's connection that has just logged in or
    /// started a monitor, each as if it had just been raised.
    fn send_active_alarms(&mut self, id: u32) {
        let active: Vec<String> = self.alarms.values().map(alarm_event).collect();
        for text in active {
            self.send_to(id, &text);
        }
    }

    /// Send an event body to every connection with a matching monitor (once, with the
    /// lowest monitor id), and to the connections of `also` (an agent) without one.
    fn fan_out(&mut self, scope: &Scope, body: &str, also: Option<&str>) {
        let mut out: Vec<(u32, Option<u32>)> = Vec::new();
        for id in self.monitors.candidates(scope) {
            let Some(c) = self.conns.get(&id) else { continue };
            let Some(session) = &c.session else { continue };
            let m = c.monitors.iter().filter(|(_, t)| self.model.matches(t, scope)).map(|(m, _)| *m).min();
            // A supervisor limited to groups hears only what touches their scope.
            let own = session.station.as_ref().map(|e| format!("station:{e}"));
            let viewer = Viewer { user: &session.user, own: own.as_deref() };
            if m.is_some() && (!session.supervisor || self.model.visible(viewer, scope)) {
                out.push((id, m));
            }
        }
        if let Some(user) = also {
            // The agent's own connections hear it even without a monitor. Rare (screen
            // pops): a scan is fine.
            let mut own: Vec<u32> = self
                .conns
                .iter()
                .filter(|(_, c)| c.session.as_ref().is_some_and(|s| s.user == user))
                .map(|(id, _)| *id)
                .filter(|id| !out.iter().any(|(o, _)| o == id))
                .collect();
            own.sort_unstable();
            out.extend(own.into_iter().map(|id| (id, None)));
        }
        for (id, m) in out {
            self.queue_event(id, m, body);
        }
    }

    /// Queue an event body (serialized once for all subscribers) for a connection,
    /// with its monitor id written in front: `{"monitor":N,` + the body after its `{`.
    fn queue_event(&mut self, id: u32, monitor: Option<u32>, body: &str) {
        let Some(m) = monitor else { return self.send_to(id, body) };
        let Some(c) = self.conns.get_mut(&id) else { return };
        if let Proto::Tcp = c.proto {
            if c.dead || c.close_after_flush {
                return;
            }
            let out = &mut c.pipe.out;
            out.extend_from_slice(b"{\"monitor\":");
            out.extend_from_slice(m.to_string().as_bytes());
            out.push(b',');
            out.extend_from_slice(&body.as_bytes()[1..]);
            out.push(b'\n');
            self.queued(id);
        } else {
            self.send_to(id, &format!("{{\"monitor\":{m},{}", &body[1..]));
        }
    }

    fn pop_scope(&self, agent: &str, station: Option<&str>) -> Scope {
        let mut s = Scope::default();
        s.agents.insert(agent.to_string());
        if let Some(st) =
            station.map(str::to_string).or_else(|| self.model.agents.get(agent)?.station.clone())
        {
            s.devices.insert(format!("station:{st}"));
        }
        s
    }

    fn screen_pop(&mut self, pop: ScreenPop) {
        let contacts: Vec<Value> = match &pop.calling {
            Some(n) => self
                .history
                .previous_contacts(n)
                .into_iter()
                .map(|c| {
                    json!({"call":c.call,"time":rfc3339(c.at_unix_ms),"agent":c.agent,"queue":c.queue,
                           "talk_secs":c.talk_secs,"outcome":c.outcome})
                })
                .collect(),
            None => Vec::new(),
        };
        let body = json!({"event":"ScreenPop","time":rfc3339(pop.at_unix_ms),"call":pop.call.0,"agent":pop.agent,
            "station":pop.station,"calling":pop.calling,"access_number":pop.access_number,"location":pop.location,
            "vip":pop.vip,"ivr_data":wire::string_map(&pop.ivr_data),"ivr_labels":wire::string_map(&pop.ivr_labels),"attached":wire::string_map(&pop.attached),
            "previous_contacts":contacts,"crm":null})
        .to_string();
        let scope = self.pop_scope(&pop.agent, pop.station.as_deref());
        self.fan_out(&scope, &body, Some(&pop.agent));
        self.hold_for_login(&pop.agent, &body);
        if let (Some(tx), Some(number)) = (&self.crm_tx, &pop.calling) {
            let lookup = crm::Lookup { call: pop.call.0, agent: pop.agent.clone(), number: number.clone() };
            if tx.try_send(lookup).is_err() {
                self.crm_answer(crm::Answer {
                    call: pop.call.0,
                    agent: pop.agent,
                    result: Err("CRM lookups are backed up; skipped".into()),
                });
            }
        }
    }

    fn crm_answer(&mut self, a: crm::Answer) {
        let time = rfc3339(now_unix_ms());
        let body = match a.result {
            Ok(v) => json!({"event":"ScreenPopUpdate","time":time,"call":a.call,"agent":a.agent,"crm":v}),
            Err(e) => json!({"event":"ScreenPopUpdate","time":time,"call":a.call,"agent":a.agent,"crm":null,
                             "crm_error":e}),
        }
        .to_string();
        let scope = self.pop_scope(&a.agent, None);
        self.fan_out(&scope, &body, Some(&a.agent));
        self.hold_for_login(&a.agent, &body);
    }

    /// Keep a pop for the agent's connections whose Login is at the engine: the engine
    /// may ring the phone while logging the agent in, before the Login's answer.
    fn hold_for_login(&mut self, agent: &str, body: &str) {
        let waiting: Vec<u32> = self
            .pending
            .values()
            .filter(|p| matches!(&p.kind, PendingKind::Login { account, .. } if account.id == agent))
            .map(|p| p.conn)
            .collect();
        for conn in waiting {
            let held = self.held_pops.entry(conn).or_default();
            // Bounded: a login is answered within one engine turn.
            if held.len() < 16 {
                held.push(body.to_string());
            }
        }
    }

    fn response(&mut self, client: u32, invoke: u32, result: Result<ServiceResult, CstaError>) {
        let Some(p) = self.pending.remove(&invoke) else { return };
        if p.conn != client {
            return;
        }
        let wall = self.cfg.wall_base_unix_ms;
        match p.kind {
            PendingKind::Login { account, station } => {
                let Some(c) = self.conns.get_mut(&p.conn) else {
                    self.held_pops.remove(&p.conn);
                    self.retry_deferred_logins(&account.id);
                    return;
                };
                c.login_busy = false;
                // Joining a live login (a supervisor adding a station) keeps the
                // connection the engine knows the person by.
                let engine_client = self
                    .conns
                    .values()
                    .filter_map(|c| c.session.as_ref())
                    .find(|s| s.user == account.id)
                    .map_or(p.conn, |s| s.engine_client);
                let user = account.id.clone();
                match result {
                    Ok(_) => {
                        let v = login_result(&self.cfg, &self.model, &account, &station);
                        let supervisor = account.supervisor;
                        if let Some(c) = self.conns.get_mut(&p.conn) {
                            c.session =
                                Some(Session { user: account.id, supervisor, station, engine_client });
                        }
                        self.reply(p.conn, p.invoke, v);
                        if supervisor {
                            // Raised before this login, the alarms went to nobody here.
                            self.send_active_alarms(p.conn);
                        }
                        for pop in self.held_pops.remove(&p.conn).unwrap_or_default() {
                            self.send_to(p.conn, &pop);
                        }
                    }
                    Err(e) => {
                        self.held_pops.remove(&p.conn);
                        self.refuse(p.conn, p.invoke, wire::error_code(&e), &login_error(&e))
                    }
                }
                self.retry_deferred_logins(&user);
            }
            PendingKind::Logout => {
                // Logging out ends the person's session on every connection.
                let user = self.conns.get(&p.conn).and_then(|c| c.session.as_ref()).map(|s| s.user.clone());
                for (id, c) in self.conns.iter_mut() {
                    if c.session.as_ref().map(|s| &s.user) == user.as_ref() {
                        c.session = None;
                        for (_, target) in c.monitors.drain(..) {
                            self.monitors.remove(*id, &target);
                        }
                    }
                }
                self.reply(p.conn, p.invoke, json!({}));
            }
            PendingKind::Plain | PendingKind::GetAgentState { .. } | PendingKind::AgentsIn(_) => match result
            {
                Ok(r) => {
                    let mut v = result_json(&r, wall);
                    match p.kind {
                        PendingKind::GetAgentState { agent } => v["agent"] = Value::String(agent),
                        PendingKind::AgentsIn(mine) => {
                            if let Some(list) = v["agents"].as_array_mut() {
                                list.retain(|a| a["agent"].as_str().is_some_and(|a| mine.contains(a)));
                            }
                        }
                        _ => {}
                    }
                    self.reply(p.conn, p.invoke, v);
                }
                Err(e) => self.refuse(p.conn, p.invoke, wire::error_code(&e), &e.to_string()),
            },
        }
    }

    fn idle_check(&mut self) {
        let limit = self.cfg.idle_timeout;
        let idle: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.dead && !c.close_after_flush && c.last_seen.elapsed() > limit)
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            let msg =
                format!("nothing received for {} s; closing (send Ping to stay connected)", limit.as_secs());
            self.send_to(id, &wire::error_event("idle_timeout", &msg, &rfc3339(now_unix_ms())));
            let is_ws = matches!(self.conns.get(&id).map(|c| &c.proto), Some(Proto::Ws(_)));
            if is_ws {
                self.close_ws(id, CloseCode::Away, "idle timeout");
            } else if let Some(c) = self.conns.get_mut(&id) {
                c.close_after_flush = true;
            }
        }
        self.deadlines();
    }

    /// A request head or line begun but not finished within `head_timeout` (sent byte
    /// by byte, or never ended) closes the connection: HTTP with `408`, TCP with a
    /// `message_timeout` error. A closing connection that does not take what is left to
    /// send within `head_timeout` is dropped.
    fn deadlines(&mut self) {
        let limit = self.cfg.head_timeout;
        let now = Instant::now();
        let mut late = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            if c.dead {
                continue;
            }
            if c.close_after_flush {
                match c.closing_since {
                    None => c.closing_since = Some(now),
                    Some(t) if now.duration_since(t) > limit => c.dead = true,
                    Some(_) => {}
                }
            } else if c.partial_since.is_some_and(|t| now.duration_since(t) > limit) {
                late.push(*id);
            }
        }
        for id in late {
            let Some(c) = self.conns.get_mut(&id) else { continue };
            let ip = c.ip;
            c.inbuf = Vec::new();
            c.partial_since = None;
            let what = if let Proto::Http = c.proto { "request head" } else { "line" };
            let msg = format!("a {what} was not complete within {} s; closing", limit.as_secs());
            if let Proto::Http = c.proto {
                http_reply(c, "408 Request Timeout", "text/plain", format!("{msg}\n").as_bytes());
            } else {
                self.send_to(id, &wire::error_event("message_timeout", &msg, &rfc3339(now_unix_ms())));
                self.close_conn(id);
            }
            self.strike(ip);
        }
    }

    /// Close what is dead or done; tell the engine about sessions that went away.
    fn reap(&mut self) {
        let gone: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| c.dead || (c.close_after_flush && c.pipe.pending() == 0))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            let Some(mut c) = self.conns.remove(&id) else { continue };
            self.conn_count.release(c.ip);
            for (_, target) in &c.monitors {
                self.monitors.remove(id, target);
            }
            let _ = c.pipe.push();
            let _ = self.poll.registry().deregister(&mut c.pipe.sock);
            let _ = c.pipe.sock.shutdown(std::net::Shutdown::Both);
            // Blocking is fine here: the engine thread never waits on the link.
            match &c.session {
                Some(s)
                    if !self.conns.values().any(|o| o.session.as_ref().is_some_and(|x| x.user == s.user)) =>
                {
                    let _ = self.to_engine.send(Input::ClientGone { client: s.engine_client });
                }
                Some(_) => {}
                None if c.login_busy => {
                    let _ = self.to_engine.send(Input::ClientGone { client: id });
                }
                None => {}
            }
            self.pending.retain(|_, p| p.conn != id);
            self.held_pops.remove(&id);
            // A Login given up with the connection: logins of the same person that
            // waited on it go ahead.
            self.deferred_logins.retain(|d| d.conn != id);
            if !self.deferred_logins.is_empty() {
                self.retry_deferred_logins("");
            }
        }
    }
}

/// Refuse a connection over the caps: say why (a JSON `Error` event on TCP, `503` on
/// HTTP) and close. What the client already sent is read first (a little), so the
/// answer is not lost to a reset.
fn refuse_connection(mut sock: TcpStream, http: bool, message: &str) {
    let mut scratch = [0u8; 4096];
    let _ = sock.read(&mut scratch);
    let text = if http {
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\nRetry-After: 10\r\n\r\n{message}\n",
            message.len() + 1
        )
    } else {
        format!("{}\n", wire::error_event("too_many_connections", message, &rfc3339(now_unix_ms())))
    };
    let _ = sock.write(text.as_bytes());
    let _ = sock.shutdown(std::net::Shutdown::Write);
}

/// The key a user name is tracked under for backoff (long names cut, so records stay
/// small).
fn tracked_name(user: &str) -> String {
    let mut end = user.len().min(MAX_TRACKED_NAME);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_string()
}

fn hold_text(hold: Hold) -> String {
    let secs = |d: Duration| d.as_millis().div_ceil(1000).max(1);
    match hold {
        Hold::Backoff(d) => format!("retry in {} s", secs(d)),
        Hold::Locked(Some(d)) => format!("it ends in {} s", secs(d)),
        Hold::Locked(None) => "until a supervisor lifts it".into(),
    }
}

/// A successful `Login`'s result (docs/protocol.md): who, the not-ready reasons of the
/// configuration, whether pops get a CRM lookup, and for supervisors the directory of
/// the agents they supervise (queues and agent groups, for the wallboard's grouping).
fn login_result(
    cfg: &LinkConfig,
    model: &Model,
    account: &super::Account,
    station: &Option<String>,
) -> Value {
    let role = if account.supervisor { "supervisor" } else { "agent" };
    let reasons: Vec<Value> =
        cfg.engine.not_ready_reasons.iter().map(|(code, name)| json!({"code":code,"name":name})).collect();
    let mut v = json!({"role":role,"agent":account.id,"name":account.name,"station":station,
                       "reasons":reasons,"crm":cfg.crm.is_some()});
    if account.supervisor {
        let e = &cfg.engine;
        let agents: Vec<Value> = e
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| model.supervises(&account.id, &a.id))
            .map(|(i, a)| {
                let queues: Vec<&str> = a.queues.iter().map(|&(q, _)| e.queues[q].name.as_str()).collect();
                let groups: Vec<&str> = e
                    .agent_groups
                    .iter()
                    .filter(|g| g.agents.contains(&i))
                    .map(|g| g.name.as_str())
                    .collect();
                json!({"agent":a.id,"name":a.name,"queues":queues,"groups":groups})
            })
            .collect();
        let queues: Vec<Value> = e
            .queues
            .iter()
            .map(|q| json!({"queue":q.name,"number":q.number,"service_level_target":f64::from(q.service_level_target) / 100.0}))
            .collect();
        let groups: Vec<&str> = e.agent_groups.iter().map(|g| g.name.as_str()).collect();
        v["directory"] = json!({"agents":agents,"queues":queues,"groups":groups});
    }
    v
}

/// The `Stats` event (docs/protocol.md); `callers` lists waiting callers' numbers.
fn stats_json(stats: &super::WallboardStats, callers: bool) -> Value {
    let counts = |a: &crate::center::AgentCounts| json!({"ready":a.ready,"on_call":a.on_call,"wrap_up":a.wrap_up,"not_ready":a.not_ready});
    let secs = |x: Option<f64>| x.map(|s| s.round() as u64);
    let queues: Vec<Value> = stats
        .queues
        .iter()
        .map(|q| {
            let mut v = json!({"queue":q.queue,"waiting":q.waiting,"longest_wait_secs":q.longest_wait_secs,
                   "offered":q.offered,"answered":q.answered,"answered_late":q.answered_late,
                   "abandoned":q.abandoned,"service_level":q.service_level,
                   "service_level_target":q.service_level_target,"abandon_rate":q.abandon_rate,
                   "asa_secs":secs(q.asa_secs),"aht_secs":secs(q.aht_secs),"agents":counts(&q.agents)});
            if callers {
                v["callers"] = q
                    .callers
                    .iter()
                    .map(|(call, number, since)| {
                        json!({"call":call,"calling":(!number.is_empty()).then_some(number),"since":rfc3339(*since)})
                    })
                    .collect();
            }
            v
        })
        .collect();
    let access: Vec<Value> =
        stats.access_numbers.iter().map(|(n, open)| json!({"number":n,"open":open})).collect();
    json!({"event":"Stats","time":rfc3339(stats.at_unix_ms),"queues":queues,"agents":counts(&stats.agents),
           "ivr_calls":stats.ivr_calls,"access_numbers":access})
}

fn login_error(e: &CstaError) -> String {
    match e {
        CstaError::InvalidDeviceState => "the station is taken by someone else".into(),
        CstaError::InvalidAgentState => "already logged in elsewhere (at another station)".into(),
        CstaError::InvalidDeviceId(d) => format!("no station {d}"),
        other => other.to_string(),
    }
}

fn http_reply(c: &mut Conn, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-cache\r\n\r\n",
        body.len()
    );
    c.pipe.out.extend_from_slice(head.as_bytes());
    c.pipe.out.extend_from_slice(body);
    c.close_after_flush = true;
    if c.pipe.push().is_err() {
        c.dead = true;
    }
}

/// A service's result as the wire writes it; engine instants become wall-clock times.
fn result_json(r: &ServiceResult, wall: i64) -> Value {
    let t = |i: hotline_drivers::Instant| rfc3339(wall + i.as_millis() as i64);
    match r {
        ServiceResult::Ok => json!({}),
        ServiceResult::Call(c) => json!({"call": c.0}),
        ServiceResult::AgentState { state, since, answered, missed_in_a_row } => {
            let (s, reason) = wire::agent_state(state);
            let answered: serde_json::Map<String, Value> =
                answered.iter().map(|(q, n)| (q.clone(), Value::from(*n))).collect();
            json!({"state":s,"reason":reason,"since":t(*since),"answered":answered,"missed_in_a_row":missed_in_a_row})
        }
        ServiceResult::CallSnapshot { parties, data } => {
            let parties: Vec<Value> = parties
                .iter()
                .map(|(d, s)| json!({"device":d.to_string(),"state":wire::connection_state(*s)}))
                .collect();
            json!({"parties":parties,"data":wire::string_map(data)})
        }
        ServiceResult::DeviceSnapshot { calls } => {
            let calls: Vec<Value> =
                calls.iter().map(|(c, s)| json!({"call":c.0,"state":wire::connection_state(*s)})).collect();
            json!({ "calls": calls })
        }
        ServiceResult::AgentsSnapshot { agents } => {
            let agents: Vec<Value> = agents
                .iter()
                .map(|(a, s, since)| {
                    let (s, reason) = wire::agent_state(s);
                    json!({"agent":a,"state":s,"reason":reason,"since":t(*since)})
                })
                .collect();
            json!({ "agents": agents })
        }
        ServiceResult::QueueSnapshot { waiting, ready, logged_in, oldest_since } => json!({
            "waiting":waiting,"ready":ready,"logged_in":logged_in,"oldest_since":oldest_since.map(t)}),
    }
}

/// A system alarm as the link sends it (docs/protocol.md, `SystemAlarm`).
fn alarm_event(a: &crate::alarm::SystemAlarm) -> String {
    json!({"event":"SystemAlarm","time":rfc3339(a.at_unix_ms),"alarm":a.alarm,"severity":a.severity,
           "state":if a.raised { "raised" } else { "cleared" },"text":a.text})
    .to_string()
}
