//! The link server's poll loop: listeners, connections (TCP lines, HTTP pages,
//! WebSocket), limits, login, roles, monitors and event fan-out.
//!
//! One mio `Poll` on one thread. Sockets are edge-triggered and always drained until
//! `WouldBlock` (mio's contract). Every connection's output goes through its own byte
//! queue (`Pipe`), written to the socket as far as it takes it; the queue's size is what
//! the slow-client limit checks, so memory per connection stays bounded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
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

use super::model::{Model, Scope, Viewer};
use super::time::{now_unix_ms, rfc3339};
use super::wire::{self, Request, Target};
use super::{auth, crm, Account, History, LinkAddrs, LinkConfig, LinkMsg, ScreenPop, Secret, Shared};
use crate::csta::{AgentRequest, CstaError, DeviceId, Service, ServiceResult};
use crate::engine::{Input, Output};

const WAKER: Token = Token(0);
const TCP_LISTENER: Token = Token(1);
const HTTP_LISTENER: Token = Token(2);
const FIRST_CONN: u32 = 16;
/// How often idle connections are looked for.
const TICK: Duration = Duration::from_millis(250);
/// An HTTP request head larger than this is refused.
const MAX_HTTP_HEAD: usize = 16 * 1024;

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
    inbuf: Vec<u8>,
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

struct AuthJob {
    conn: u32,
    invoke: u32,
    account: Option<Account>,
    password: String,
    station: Option<String>,
    allow_no_password: bool,
}

struct AuthDone {
    conn: u32,
    invoke: u32,
    account: Option<Account>,
    password: String,
    station: Option<String>,
    ok: bool,
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
    auth_tx: Sender<AuthJob>,
    auth_rx: Receiver<AuthDone>,
    crm_tx: Option<Sender<crm::Lookup>>,
    crm_rx: Receiver<crm::Answer>,
    lost_seen: u64,
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

        // Password checks run on their own thread: Argon2 is slow on purpose.
        let (auth_tx, jobs) = crossbeam_channel::bounded::<AuthJob>(256);
        let (done_tx, auth_rx) = crossbeam_channel::bounded::<AuthDone>(256);
        let s2 = shared.clone();
        std::thread::Builder::new().name("hotline-link-auth".into()).spawn(move || {
            // Checked against for unknown users, so timing does not tell users apart.
            let dummy = auth::hash_password("no such user").unwrap_or_default();
            for j in jobs {
                let ok = match &j.account {
                    Some(a) => auth::verify(&a.secret, &j.password, j.allow_no_password),
                    None => {
                        let _ = auth::verify(&Secret::Hash(dummy.clone()), &j.password, false);
                        false
                    }
                };
                let d = AuthDone {
                    conn: j.conn,
                    invoke: j.invoke,
                    account: j.account,
                    password: j.password,
                    station: j.station,
                    ok,
                };
                if done_tx.send(d).is_err() {
                    return;
                }
                let _ = s2.waker.wake();
            }
        })?;

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
            auth_tx,
            auth_rx,
            crm_tx,
            crm_rx,
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
            let wait = if self.dirty.is_empty() { TICK } else { Duration::ZERO };
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
            self.take_messages();
            while let Ok(d) = self.auth_rx.try_recv() {
                self.auth_done(d);
            }
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
                Ok((mut sock, _)) => {
                    let id = self.next_conn;
                    self.next_conn = self.next_conn.wrapping_add(1).max(FIRST_CONN);
                    let _ = sock.set_nodelay(true);
                    if self
                        .poll
                        .registry()
                        .register(&mut sock, Token(id as usize), Interest::READABLE | Interest::WRITABLE)
                        .is_err()
                    {
                        continue;
                    }
                    let now = Instant::now();
                    self.conns.insert(
                        id,
                        Conn {
                            pipe: Pipe { sock, out: Vec::new(), sent: 0 },
                            proto: if http { Proto::Http } else { Proto::Tcp },
                            inbuf: Vec::new(),
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
                    // Out of file descriptors and the like: try again on the next event.
                    tracing::warn!("link: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Read everything the socket has and act on each complete message.
    fn read_conn(&mut self, id: u32) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(c) = self.conns.get_mut(&id) else { return };
            if c.dead {
                return;
            }
            if let Proto::Ws(_) = c.proto {
                self.read_ws(id);
                return;
            }
            match c.pipe.sock.read(&mut buf) {
                Ok(0) => {
                    c.dead = true;
                    return;
                }
                Ok(n) => {
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

    fn tcp_lines(&mut self, id: u32) {
        let max = self.cfg.max_message;
        loop {
            let Some(c) = self.conns.get_mut(&id) else { return };
            let Some(pos) = c.inbuf.iter().position(|&b| b == b'\n') else {
                if c.inbuf.len() > max {
                    c.inbuf.clear();
                    if !c.skipping {
                        c.skipping = true;
                        self.too_large(id);
                    }
                }
                return;
            };
            let mut line: Vec<u8> = c.inbuf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if std::mem::take(&mut c.skipping) {
                continue;
            }
            if line.len() > max {
                self.too_large(id);
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match String::from_utf8(line) {
                Ok(text) => self.handle_text(id, &text),
                Err(e) => {
                    let msg = format!("not UTF-8 at byte {} of the line", e.utf8_error().valid_up_to());
                    self.send_to(id, &wire::error_event("malformed", &msg, &rfc3339(now_unix_ms())));
                }
            }
        }
    }

    fn too_large(&mut self, id: u32) {
        let msg = format!("message larger than the limit of {} bytes; it was skipped", self.cfg.max_message);
        self.send_to(id, &wire::error_event("message_too_large", &msg, &rfc3339(now_unix_ms())));
    }

    /// An HTTP request head: a page, or the WebSocket upgrade at `/cti`.
    fn http_head(&mut self, id: u32) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        let Some(end) = c.inbuf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if c.inbuf.len() > MAX_HTTP_HEAD {
                http_reply(
                    c,
                    "431 Request Header Fields Too Large",
                    "text/plain",
                    b"request head too large\n",
                );
            }
            return;
        };
        let head = String::from_utf8_lossy(&c.inbuf[..end]).into_owned();
        let rest = c.inbuf[end + 4..].to_vec();
        c.inbuf.clear();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("");
        let mut key = None;
        let mut upgrade = false;
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "sec-websocket-key" {
                    key = Some(v.to_string());
                } else if k == "upgrade" && v.eq_ignore_ascii_case("websocket") {
                    upgrade = true;
                }
            }
        }
        if method != "GET" {
            http_reply(c, "405 Method Not Allowed", "text/plain", b"only GET\n");
            return;
        }
        if path == "/cti" {
            let Some(key) = key.filter(|_| upgrade) else {
                http_reply(c, "400 Bad Request", "text/plain", b"/cti is a WebSocket endpoint\n");
                return;
            };
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
        loop {
            let Some(c) = self.conns.get_mut(&id) else { return };
            let Proto::Ws(ws) = &mut c.proto else { return };
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
                    let msg = "binary messages are not used: send JSON as text";
                    self.send_to(id, &wire::error_event("malformed", msg, &rfc3339(now_unix_ms())));
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
        let (invoke, req) = match wire::parse_request(text) {
            Ok(r) => r,
            Err(bad) => {
                match bad.invoke {
                    Some(i) => self.refuse(id, i, "malformed", &bad.message),
                    None => self
                        .send_to(id, &wire::error_event("malformed", &bad.message, &rfc3339(now_unix_ms()))),
                }
                return;
            }
        };
        let (rate, burst) = (self.cfg.rate, self.cfg.burst);
        let Some(c) = self.conns.get_mut(&id) else { return };
        let now = Instant::now();
        c.tokens = (c.tokens + now.duration_since(c.refilled).as_secs_f64() * rate).min(burst);
        c.refilled = now;
        if c.tokens < 1.0 {
            let msg = format!("more than {rate} requests per second; slow down");
            self.refuse(id, invoke, "rate_limited", &msg);
            return;
        }
        c.tokens -= 1.0;
        self.dispatch(id, invoke, req);
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
                c.login_busy = true;
                let job = AuthJob {
                    conn: id,
                    invoke,
                    account: self.accounts.get(&user).cloned(),
                    password,
                    station,
                    allow_no_password: self.cfg.allow_no_password,
                };
                if self.auth_tx.try_send(job).is_err() {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.login_busy = false;
                    }
                    self.refuse(id, invoke, "engine_busy", "too many logins at once; retry shortly");
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

    fn auth_done(&mut self, d: AuthDone) {
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
                let role = if account.supervisor { "supervisor" } else { "agent" };
                let v = json!({"role":role,"agent":account.id,"name":account.name,"station":station});
                c.session = Some(Session {
                    user: account.id,
                    supervisor: account.supervisor,
                    station,
                    engine_client,
                });
                self.reply(d.conn, d.invoke, v);
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
                let queues: Vec<Value> = stats
                    .queues
                    .iter()
                    .map(|q| {
                        json!({"queue":q.queue,"waiting":q.waiting,"longest_wait_secs":q.longest_wait_secs,
                               "answered":q.answered,"abandoned":q.abandoned,"service_level":q.service_level,
                               "abandon_rate":q.abandon_rate})
                    })
                    .collect();
                let text =
                    json!({"event":"Stats","time":rfc3339(stats.at_unix_ms),"queues":queues}).to_string();
                let ids: Vec<u32> =
                    self.conns.iter().filter(|(_, c)| c.session.is_some()).map(|(i, _)| *i).collect();
                for id in ids {
                    self.send_to(id, &text);
                }
            }
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
            "vip":pop.vip,"ivr_data":wire::string_map(&pop.ivr_data),"attached":wire::string_map(&pop.attached),
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
                        let role = if account.supervisor { "supervisor" } else { "agent" };
                        let v = json!({"role":role,"agent":account.id,"name":account.name,"station":station});
                        if let Some(c) = self.conns.get_mut(&p.conn) {
                            c.session = Some(Session {
                                user: account.id,
                                supervisor: account.supervisor,
                                station,
                                engine_client,
                            });
                        }
                        self.reply(p.conn, p.invoke, v);
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
