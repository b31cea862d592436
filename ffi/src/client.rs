//! The link protocol client in safe Rust: one TCP connection, newline-delimited JSON,
//! synchronous requests correlated by invoke id, and events handed to a callback on a
//! dispatcher thread (or, in poll mode, queued for [`Client::dispatch`]).
//!
//! Two threads per connection. The reader reads lines: replies go straight to the
//! waiting request (so replies are never stuck behind events), events go on a queue to
//! the dispatcher, which calls the callback; a queue longer than EVENT_QUEUE ends the
//! connection. Because the callback never runs on the reader, a callback may itself
//! make requests and get their replies.
//!
//! With reconnect on ([`Client::set_reconnect`]), the reader does not end when the
//! server goes away: it connects again (with a growing delay), and a restore thread
//! logs in again with the same credentials and makes the same monitors again.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::error::{hotline_result, Error};
use crate::event::{hotline_event_kind, Event};
use crate::log::{hotline_log_level as Level, log};

/// The longest line accepted from the server; a longer one ends the connection (the
/// server's own limit is far lower, so this only stops a runaway peer).
pub const MAX_LINE: usize = 4 << 20;
/// Events waiting for the callback (or for `dispatch`) before the connection is given
/// up as too slow. The reader never waits for the callback (a callback waiting for a
/// reply would otherwise wait for itself), so this bound is what keeps memory in check.
pub const EVENT_QUEUE: usize = 10_000;
/// How long a request waits for its reply unless the caller sets another timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that has sent nothing for this long sends a `Ping`: the server closes
/// connections idle for `idle_timeout_s` (120 s by default), and a CRM that only
/// listens for screen pops would otherwise be dropped.
pub const KEEPALIVE: Duration = Duration::from_secs(30);
/// The longest wait between two reconnect attempts (the delay doubles up to this).
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(30);

/// What the callback is given. `Arc` so that the dispatcher can call it without
/// holding the lock that `set_callback` takes.
pub type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

type Reply = Result<Value, Error>;

/// What a Login asked for, kept to log in again after a reconnect.
#[derive(Clone)]
struct Credentials {
    user: String,
    password: String,
    station: Option<String>,
}

/// A request waiting for its reply.
struct Waiter {
    tx: SyncSender<Reply>,
    service: String,
    /// The length of the request line, to know which request the server refused as
    /// too large (its `Error` event carries no invoke).
    len: usize,
    /// For a Login: what was asked for. The reader records the session before it
    /// reads on, so that an event right behind the reply (a screen pop) is handled
    /// with the session already known, e.g. by a callback that answers.
    login: Option<Credentials>,
}

/// The requests waiting for replies on the current stream.
struct Pending {
    map: HashMap<u64, Waiter>,
    /// Which stream (1 for the first, +1 per reconnect) and whether it is still read.
    stream: u64,
    alive: bool,
}

/// Who this connection logged in as (from the Login result).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub role: String,
    pub agent: Option<String>,
    pub station: Option<String>,
}

/// A monitor this connection made through [`Client::monitor`], made again after a
/// reconnect.
#[derive(Clone, Debug)]
struct Monitor {
    id: u64,
    target: Value,
}

/// Poll mode: events wait here for `dispatch`; `wake_rx` is readable exactly while
/// the queue is not empty.
struct Poll {
    queue: VecDeque<Event>,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

/// What the reader hands to the dispatcher.
enum Msg {
    Server(Map<String, Value>),
    Local(Box<Event>),
}

struct Shared {
    peer: SocketAddr,
    name: String,
    writer: Mutex<Option<TcpStream>>,
    pending: Mutex<Pending>,
    /// Requests are refused with Closed (the link is down, being restored, or ended).
    closed: AtomicBool,
    /// The connection has ended for good (no more reconnects).
    finished: AtomicBool,
    close_reason: Mutex<Option<String>>,
    down_reason: Mutex<Option<String>>,
    next_invoke: AtomicU64,
    timeout_ms: AtomicU64,
    callback: Mutex<Option<Callback>>,
    /// Bit `1 << kind` set: events of that kind are delivered.
    filter: AtomicU64,
    last_error: Mutex<String>,
    session: Mutex<Option<Session>>,
    credentials: Mutex<Option<Credentials>>,
    monitors: Mutex<Vec<Monitor>>,
    /// First delay before reconnecting, 0 when reconnect is off.
    reconnect_ms: AtomicU64,
    last_sent: Mutex<Instant>,
    keepalive_ms: AtomicU64,
    /// Events read and not yet taken by the callback thread.
    queued: AtomicUsize,
    poll: Mutex<Option<Poll>>,
    dispatching: AtomicBool,
    /// The final Disconnected event has been delivered (or queued in poll mode).
    ended: AtomicBool,
}

/// Poison-tolerant lock: a panic elsewhere must not turn every later call into one.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn keepalive_every(&self) -> Duration {
        Duration::from_millis(self.keepalive_ms.load(Ordering::SeqCst))
    }

    fn send_line(&self, line: &str) -> std::io::Result<()> {
        let mut w = lock(&self.writer);
        let w = w
            .as_mut()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotConnected, "reconnecting"))?;
        w.write_all(line.as_bytes())?;
        *lock(&self.last_sent) = Instant::now();
        Ok(())
    }

    /// Send a Ping when nothing was sent for the keepalive interval. Its reply has no
    /// waiter and is dropped by the reader.
    fn keepalive(&self) {
        if self.closed.load(Ordering::SeqCst) || lock(&self.last_sent).elapsed() < self.keepalive_every() {
            return;
        }
        let invoke = self.invoke();
        let _ = self.send_line(&format!("{{\"invoke\":{invoke},\"service\":\"Ping\"}}\n"));
    }

    /// A fresh invoke id (the server reads invoke ids as 32-bit numbers).
    fn invoke(&self) -> u64 {
        self.next_invoke.fetch_add(1, Ordering::SeqCst) % u64::from(u32::MAX) + 1
    }

    fn closed_error(&self) -> Error {
        let why = if self.finished.load(Ordering::SeqCst) {
            lock(&self.close_reason).clone()
        } else {
            lock(&self.down_reason).clone()
        };
        Error::new(hotline_result::Closed, why.unwrap_or_else(|| "connection closed".into()))
    }

    /// End the connection for good with `reason` (the reader sees the shutdown).
    fn finish(&self, reason: String) {
        lock(&self.close_reason).get_or_insert(reason);
        self.finished.store(true, Ordering::SeqCst);
        self.closed.store(true, Ordering::SeqCst);
        if let Some(w) = lock(&self.writer).as_ref() {
            let _ = w.shutdown(Shutdown::Both);
        }
    }

    /// Send `service` and wait for its reply. `stream`: `None` for a request of the
    /// program (refused while the link is down), `Some(n)` for the restore thread's
    /// requests on stream `n` (sent while the link is being restored).
    fn request(
        &self,
        service: &str,
        fields: Map<String, Value>,
        login: Option<Credentials>,
        stream: Option<u64>,
    ) -> Result<Value, Error> {
        if stream.is_none() && self.closed.load(Ordering::SeqCst) {
            return Err(self.closed_error());
        }
        let invoke = self.invoke();
        let mut msg = Map::new();
        msg.insert("invoke".into(), Value::from(invoke));
        msg.insert("service".into(), Value::from(service));
        msg.extend(fields);
        let mut line = Value::Object(msg).to_string();
        line.push('\n');
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut pending = lock(&self.pending);
            // Checked under the lock the reader takes when a stream ends, so no request
            // is registered after the reader gave up on its stream.
            let usable = match stream {
                None => !self.closed.load(Ordering::SeqCst),
                Some(n) => pending.stream == n && !self.finished.load(Ordering::SeqCst),
            };
            if !usable || !pending.alive {
                return Err(self.closed_error());
            }
            pending.map.insert(invoke, Waiter { tx, service: service.to_owned(), len: line.len(), login });
        }
        log(Level::Debug, || {
            format!("{}: send {service} (invoke {invoke}, {} bytes)", self.name, line.len())
        });
        if let Err(e) = self.send_line(&line) {
            // Part of the line may be out: the stream can no longer be trusted, so it
            // ends (the reader sees the shutdown and wakes every waiter).
            let message = format!("send {service}: {e}");
            lock(&self.down_reason).get_or_insert_with(|| message.clone());
            if let Some(w) = lock(&self.writer).as_ref() {
                let _ = w.shutdown(Shutdown::Both);
            }
            lock(&self.pending).map.remove(&invoke);
            return Err(Error::new(hotline_result::Io, message));
        }
        let timeout = Duration::from_millis(self.timeout_ms.load(Ordering::SeqCst));
        match rx.recv_timeout(timeout) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) => {
                lock(&self.pending).map.remove(&invoke);
                Err(Error::new(
                    hotline_result::Timeout,
                    format!("no reply to {service} (invoke {invoke}) within {} ms", timeout.as_millis()),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.closed_error()),
        }
    }

    /// Hand an event to the program: the callback, or the poll queue in poll mode.
    fn deliver(&self, ev: &Event) {
        {
            let mut poll = lock(&self.poll);
            if let Some(p) = poll.as_mut() {
                if p.queue.is_empty() {
                    let _ = (&p.wake_tx).write(&[1]);
                }
                p.queue.push_back(ev.clone());
                let n = p.queue.len();
                drop(poll);
                if n > EVENT_QUEUE && ev.kind != hotline_event_kind::Disconnected {
                    let why = format!(
                        "more than {EVENT_QUEUE} events wait for hotline_dispatch: it is called too rarely"
                    );
                    log(Level::Error, || format!("{}: {why}", self.name));
                    self.finish(why);
                }
                return;
            }
        }
        self.call(ev);
    }

    fn call(&self, ev: &Event) {
        let cb = lock(&self.callback).clone();
        if let Some(cb) = cb {
            // A panicking Rust callback must not end the thread that serves the others.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(ev))).is_err() {
                log(Level::Error, || {
                    format!("{}: the callback panicked on a {} event", self.name, ev.name())
                });
            }
        }
    }

    fn wanted(&self, kind: hotline_event_kind) -> bool {
        kind == hotline_event_kind::Disconnected
            || self.filter.load(Ordering::SeqCst) & (1u64 << kind as u32) != 0
    }
}

/// One connection to a link server.
pub struct Client {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    dispatcher: ThreadId,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.shared.peer)
            .field("closed", &self.is_closed())
            .field("session", &self.session())
            .finish_non_exhaustive()
    }
}

fn connect_any(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Error> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::new(hotline_result::ConnectFailed, format!("resolve {host}:{port}: {e}")))?;
    let mut last = format!("{host}:{port} resolved to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect to {addr}: {e}"),
        }
    }
    Err(Error::new(hotline_result::ConnectFailed, last))
}

fn prepare(stream: &TcpStream) -> std::io::Result<TcpStream> {
    stream.set_nodelay(true)?;
    // A server that stops reading must not block a request forever.
    stream.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
    stream.try_clone()
}

impl Client {
    /// Connect to `host:port` (each resolved address is tried within `timeout`).
    pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<Client, Error> {
        let r = connect_any(host, port, timeout).and_then(Client::from_stream);
        match &r {
            Ok(_) => log(Level::Info, || format!("{host}:{port}: connected")),
            Err(e) => log(Level::Error, || format!("{host}:{port}: {}", e.message)),
        }
        r
    }

    /// Run the protocol over an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Result<Client, Error> {
        let io = |e: std::io::Error| Error::new(hotline_result::ConnectFailed, e.to_string());
        let read_half = prepare(&stream).map_err(io)?;
        let peer = stream.peer_addr().map_err(io)?;
        let shared = Arc::new(Shared {
            peer,
            name: peer.to_string(),
            writer: Mutex::new(Some(stream)),
            pending: Mutex::new(Pending { map: HashMap::new(), stream: 1, alive: true }),
            closed: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            down_reason: Mutex::new(None),
            next_invoke: AtomicU64::new(0),
            timeout_ms: AtomicU64::new(DEFAULT_TIMEOUT.as_millis() as u64),
            callback: Mutex::new(None),
            filter: AtomicU64::new(u64::MAX),
            last_error: Mutex::new(String::new()),
            session: Mutex::new(None),
            credentials: Mutex::new(None),
            monitors: Mutex::new(Vec::new()),
            reconnect_ms: AtomicU64::new(0),
            last_sent: Mutex::new(Instant::now()),
            keepalive_ms: AtomicU64::new(KEEPALIVE.as_millis() as u64),
            queued: AtomicUsize::new(0),
            poll: Mutex::new(None),
            dispatching: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel::<Msg>();
        let s = shared.clone();
        let dispatcher = thread::Builder::new()
            .name("hotline-callback".into())
            .spawn(move || dispatch_loop(&s, rx))
            .map_err(io)?;
        let dispatcher_id = dispatcher.thread().id();
        let s = shared.clone();
        let reader = thread::Builder::new()
            .name("hotline-reader".into())
            .spawn(move || run_link(&s, read_half, tx))
            .map_err(io)?;
        Ok(Client { shared, threads: Mutex::new(vec![reader, dispatcher]), dispatcher: dispatcher_id })
    }

    /// Requests are refused (the link is down, being restored, or ended).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// The connection has ended for good: no reconnect will follow.
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::SeqCst)
    }

    /// The error every request gets now that the connection is closed.
    pub fn closed_error(&self) -> Error {
        self.shared.closed_error()
    }

    pub fn set_timeout(&self, timeout: Duration) {
        self.shared.timeout_ms.store(timeout.as_millis().max(1) as u64, Ordering::SeqCst);
    }

    /// Send a Ping after `every` without anything sent (KEEPALIVE unless changed). The
    /// callback thread checks at that interval, between callbacks.
    pub fn set_keepalive(&self, every: Duration) {
        self.shared.keepalive_ms.store(every.as_millis().max(1) as u64, Ordering::SeqCst);
    }

    pub fn set_callback(&self, cb: Option<Callback>) {
        *lock(&self.shared.callback) = cb;
    }

    /// Deliver only events whose kind has its bit (`1 << kind`) set in `mask`;
    /// Disconnected is always delivered.
    pub fn set_filter(&self, mask: u64) {
        self.shared.filter.store(mask, Ordering::SeqCst);
    }

    /// Reconnect when the server goes away: first after `first_delay`, then doubling up
    /// to RECONNECT_MAX_DELAY; `None` turns it off (the default).
    pub fn set_reconnect(&self, first_delay: Option<Duration>) {
        let ms = first_delay.map_or(0, |d| d.as_millis().clamp(1, u128::from(u32::MAX)) as u64);
        self.shared.reconnect_ms.store(ms, Ordering::SeqCst);
    }

    /// The text of the last failed call on this connection ("" if none failed).
    pub fn last_error(&self) -> String {
        lock(&self.shared.last_error).clone()
    }

    /// Keep `text` as the last error (a refusal decided before anything was sent).
    pub fn set_last_error(&self, text: String) {
        log(Level::Debug, || format!("{}: {text}", self.shared.name));
        *lock(&self.shared.last_error) = text;
    }

    pub fn session(&self) -> Option<Session> {
        lock(&self.shared.session).clone()
    }

    /// Send `service` with `fields` and wait for the reply with the same invoke id.
    /// On failure the text is also kept as this connection's last error.
    pub fn request(&self, service: &str, fields: Map<String, Value>) -> Result<Value, Error> {
        self.request_as(service, fields, None)
    }

    fn request_as(&self, service: &str, fields: Map<String, Value>, login: Option<Credentials>) -> Reply {
        let r = self.shared.request(service, fields, login, None);
        if let Err(e) = &r {
            self.set_last_error(e.message.clone());
        }
        r
    }

    /// Log in; the session remembers the agent and station for later defaults, and the
    /// credentials for logging in again after a reconnect.
    pub fn login(&self, user: &str, password: &str, station: Option<&str>) -> Result<Session, Error> {
        let mut f = Map::new();
        f.insert("user".into(), user.into());
        f.insert("password".into(), password.into());
        if let Some(s) = station {
            f.insert("station".into(), s.into());
        }
        let creds = Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
            station: station.map(str::to_owned),
        };
        self.request_as("Login", f, Some(creds))?;
        let session = self.session().ok_or_else(|| {
            Error::new(hotline_result::Protocol, "the Login reply did not establish a session")
        })?;
        log(Level::Info, || format!("{}: logged in as {user}", self.shared.name));
        Ok(session)
    }

    /// End the session on this connection (the server logs the agent out at the engine
    /// and stops this connection's monitors); the connection stays open.
    pub fn logout(&self) -> Result<(), Error> {
        self.request("Logout", Map::new())?;
        *lock(&self.shared.session) = None;
        *lock(&self.shared.credentials) = None;
        lock(&self.shared.monitors).clear();
        Ok(())
    }

    /// Subscribe to `target` (`{"agent":..}`, `"all"`, ...): the monitor id and the
    /// snapshot from the reply. The monitor is made again after a reconnect.
    pub fn monitor(&self, target: Value) -> Result<(u64, Value), Error> {
        let mut result = self.request("Monitor", Map::from_iter([("target".to_owned(), target.clone())]))?;
        let id = result.get("monitor").and_then(Value::as_u64).ok_or_else(|| {
            let e = Error::new(
                hotline_result::Protocol,
                format!("the Monitor reply has no monitor id: {result}"),
            );
            self.set_last_error(e.message.clone());
            e
        })?;
        let snapshot = result.get_mut("snapshot").map(Value::take).unwrap_or(Value::Null);
        lock(&self.shared.monitors).push(Monitor { id, target });
        Ok((id, snapshot))
    }

    /// Stop monitor `id`.
    pub fn monitor_stop(&self, id: u64) -> Result<(), Error> {
        self.request("MonitorStop", Map::from_iter([("monitor".to_owned(), Value::from(id))]))?;
        lock(&self.shared.monitors).retain(|m| m.id != id);
        Ok(())
    }

    /// The logged-in agent, for requests that name none.
    pub fn own_agent(&self) -> Result<String, Error> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        self.session()
            .and_then(|s| s.agent)
            .ok_or_else(|| Error::new(hotline_result::NotLoggedIn, "no agent given and not logged in"))
    }

    /// The logged-in station's extension, for requests that name none.
    pub fn own_station(&self) -> Result<String, Error> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        self.session().and_then(|s| s.station).ok_or_else(|| {
            Error::new(hotline_result::NotLoggedIn, "no device given and not logged in at a station")
        })
    }

    /// The logged-in station as a device ("station:2001"), for requests that name none.
    pub fn own_device(&self) -> Result<String, Error> {
        self.own_station().map(|s| format!("station:{s}"))
    }

    /// Poll mode: from now on events wait for [`Client::dispatch`] instead of going to
    /// the callback thread; the returned descriptor is readable while events wait.
    pub fn event_fd(&self) -> Result<RawFd, Error> {
        let mut poll = lock(&self.shared.poll);
        if let Some(p) = poll.as_ref() {
            return Ok(p.wake_rx.as_raw_fd());
        }
        let io = |e: std::io::Error| Error::new(hotline_result::Io, format!("event descriptor: {e}"));
        let (wake_tx, wake_rx) = UnixStream::pair().map_err(io)?;
        wake_rx.set_nonblocking(true).map_err(io)?;
        wake_tx.set_nonblocking(true).map_err(io)?;
        let fd = wake_rx.as_raw_fd();
        *poll = Some(Poll { queue: VecDeque::new(), wake_tx, wake_rx });
        Ok(fd)
    }

    /// Poll mode: call the callback, on this thread, for up to `max` waiting events
    /// (0: all that wait now). The number delivered. A nested call (from the callback)
    /// or one while another thread dispatches delivers nothing.
    pub fn dispatch(&self, max: usize) -> Result<usize, Error> {
        let sh = &self.shared;
        if lock(&sh.poll).is_none() {
            return Err(Error::new(
                hotline_result::InvalidArgument,
                "hotline_dispatch: the connection is not in poll mode (call hotline_event_fd first)",
            ));
        }
        if sh.dispatching.swap(true, Ordering::SeqCst) {
            return Ok(0);
        }
        let limit = if max == 0 { lock(&sh.poll).as_ref().map_or(0, |p| p.queue.len()) } else { max };
        let mut n = 0;
        let mut saw_end = false;
        while n < limit {
            let ev = {
                let mut poll = lock(&sh.poll);
                let Some(p) = poll.as_mut() else { break };
                let ev = p.queue.pop_front();
                if p.queue.is_empty() {
                    let mut sink = [0u8; 64];
                    while matches!((&p.wake_rx).read(&mut sink), Ok(k) if k > 0) {}
                }
                ev
            };
            let Some(ev) = ev else { break };
            saw_end |= ev.kind == hotline_event_kind::Disconnected;
            sh.call(&ev);
            n += 1;
        }
        sh.dispatching.store(false, Ordering::SeqCst);
        let empty = lock(&sh.poll).as_ref().map_or(true, |p| p.queue.is_empty());
        if n == 0 && !saw_end && empty && sh.ended.load(Ordering::SeqCst) {
            return Err(self.closed_error());
        }
        Ok(n)
    }

    /// Close the connection. Waits for both threads, so no callback runs after this
    /// returns, except when called from the callback itself (which cannot wait for its
    /// own thread): then the threads end once the callback returns.
    pub fn disconnect(&self) {
        self.shared.finish("closed by the client".into());
        let threads: Vec<_> = lock(&self.threads).drain(..).collect();
        if thread::current().id() == self.dispatcher {
            return;
        }
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// Read one line of at most MAX_LINE bytes (without the newline). `Ok(None)` at EOF.
fn read_line(r: &mut BufReader<TcpStream>, buf: &mut Vec<u8>) -> std::io::Result<Option<()>> {
    buf.clear();
    let n = r.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a server message is longer than {MAX_LINE} bytes"),
        ));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(()))
}

/// The reader thread: reads the stream; with reconnect on, connects again when it ends.
fn run_link(shared: &Arc<Shared>, first: TcpStream, events: Sender<Msg>) {
    let mut stream = first;
    let mut number = 1u64;
    loop {
        let reason = read_stream(shared, stream, &events);
        {
            let mut pending = lock(&shared.pending);
            pending.alive = false;
            shared.closed.store(true, Ordering::SeqCst);
            // Dropping the senders wakes every waiting request with "closed".
            pending.map.clear();
        }
        let first_delay = shared.reconnect_ms.load(Ordering::SeqCst);
        if shared.finished.load(Ordering::SeqCst) || first_delay == 0 {
            shared.finish(reason);
            break;
        }
        log(Level::Warn, || format!("{}: connection lost ({reason}); reconnecting", shared.name));
        *lock(&shared.down_reason) = Some(format!("connection lost ({reason}); reconnecting"));
        *lock(&shared.writer) = None;
        send_local(shared, &events, Event::local("Reconnecting", json!({ "reason": reason })));
        let Some(next) = reconnect(shared, first_delay) else {
            shared.finish(reason);
            break;
        };
        stream = next;
        number += 1;
        {
            let mut pending = lock(&shared.pending);
            pending.stream = number;
            pending.alive = true;
        }
        let (s, ev) = (shared.clone(), events.clone());
        let restorer =
            thread::Builder::new().name("hotline-restore".into()).spawn(move || restore(&s, number, &ev));
        if restorer.is_err() {
            shared.finish("could not start the thread that logs in again".into());
        }
    }
}

/// Connect again, waiting `first_delay` ms before the first attempt and doubling.
/// `None` when the program disconnected meanwhile.
fn reconnect(shared: &Shared, first_delay: u64) -> Option<TcpStream> {
    let mut delay = Duration::from_millis(first_delay);
    let mut attempt = 0u32;
    loop {
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if shared.finished.load(Ordering::SeqCst) {
                return None;
            }
            thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(20)));
        }
        if shared.finished.load(Ordering::SeqCst) {
            return None;
        }
        attempt += 1;
        let r = TcpStream::connect_timeout(&shared.peer, DEFAULT_TIMEOUT)
            .and_then(|s| prepare(&s).map(|r| (s, r)));
        match r {
            Ok((s, read_half)) => {
                log(Level::Info, || format!("{}: reconnected (attempt {attempt})", shared.name));
                *lock(&shared.writer) = Some(s);
                if shared.finished.load(Ordering::SeqCst) {
                    return None;
                }
                return Some(read_half);
            }
            Err(e) => {
                log(Level::Warn, || format!("{}: reconnect attempt {attempt}: {e}", shared.name));
                *lock(&shared.down_reason) = Some(format!("reconnecting (attempt {attempt}: {e})"));
            }
        }
        delay = (delay * 2).min(RECONNECT_MAX_DELAY.max(Duration::from_millis(first_delay)));
    }
}

/// After a reconnect: log in again and make the monitors again, then open the
/// connection for requests and tell the program (a Reconnected event with the new
/// monitor ids and their snapshots).
fn restore(shared: &Shared, stream: u64, events: &Sender<Msg>) {
    let creds = lock(&shared.credentials).clone();
    let mut restored = Vec::new();
    if let Some(c) = creds {
        let mut f = Map::new();
        f.insert("user".into(), c.user.clone().into());
        f.insert("password".into(), c.password.clone().into());
        if let Some(s) = &c.station {
            f.insert("station".into(), s.clone().into());
        }
        match shared.request("Login", f, Some(c.clone()), Some(stream)) {
            Ok(_) => {}
            // The new stream ended too: the reader tries again.
            Err(e) if e.code == hotline_result::Closed => return,
            Err(e) => {
                let why = format!("reconnected, but logging in again failed: {}", e.message);
                log(Level::Error, || format!("{}: {why}", shared.name));
                shared.finish(why);
                return;
            }
        }
        let monitors = lock(&shared.monitors).clone();
        let mut kept = Vec::new();
        for m in monitors {
            let f = Map::from_iter([("target".to_owned(), m.target.clone())]);
            match shared.request("Monitor", f, None, Some(stream)) {
                Ok(mut r) => match r.get("monitor").and_then(Value::as_u64) {
                    Some(id) => {
                        let snapshot = r.get_mut("snapshot").map(Value::take).unwrap_or(Value::Null);
                        restored.push(
                            json!({"monitor": id, "was": m.id, "target": m.target, "snapshot": snapshot}),
                        );
                        kept.push(Monitor { id, target: m.target });
                    }
                    None => log(Level::Warn, || format!("{}: the Monitor reply has no id: {r}", shared.name)),
                },
                Err(e) if e.code == hotline_result::Closed => return,
                Err(e) => log(Level::Warn, || {
                    format!("{}: monitor {} ({}) not restored: {}", shared.name, m.id, m.target, e.message)
                }),
            }
        }
        *lock(&shared.monitors) = kept;
    }
    {
        let pending = lock(&shared.pending);
        if pending.stream != stream || !pending.alive || shared.finished.load(Ordering::SeqCst) {
            return;
        }
        *lock(&shared.down_reason) = None;
        shared.closed.store(false, Ordering::SeqCst);
    }
    log(Level::Info, || format!("{}: connection restored", shared.name));
    send_local(shared, events, Event::local("Reconnected", json!({ "monitors": restored })));
}

/// Queue an event the library makes itself (counted before it is sent: the dispatcher
/// may take it at once).
fn send_local(shared: &Shared, events: &Sender<Msg>, ev: Event) {
    if shared.wanted(ev.kind) {
        shared.queued.fetch_add(1, Ordering::SeqCst);
        if events.send(Msg::Local(Box::new(ev))).is_err() {
            shared.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A line the library cannot place: every waiting request fails with Protocol at once
/// (the stream is out of step; waiting for their replies would only end in timeouts).
fn junk(shared: &Shared, text: String) {
    log(Level::Warn, || format!("{}: {text}", shared.name));
    let waiters: Vec<Waiter> = lock(&shared.pending).map.drain().map(|(_, w)| w).collect();
    for w in waiters {
        let _ = w.tx.send(Err(Error::new(hotline_result::Protocol, format!("{} failed: {text}", w.service))));
    }
}

/// Read one stream until it ends; the reason it ended.
fn read_stream(shared: &Shared, stream: TcpStream, events: &Sender<Msg>) -> String {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        match read_line(&mut r, &mut buf) {
            Ok(None) => return "closed by the server".to_owned(),
            Err(e) => return format!("read error: {e}"),
            Ok(Some(())) => {}
        }
        line_no += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut obj = match serde_json::from_slice::<Value>(&buf) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                junk(shared, format!("server line {line_no}: expected a JSON object"));
                continue;
            }
            Err(e) => {
                junk(shared, format!("server line {line_no}, column {}: {e}", e.column()));
                continue;
            }
        };
        if obj.contains_key("event") {
            let name = obj.get("event").and_then(Value::as_str).unwrap_or("");
            if name == "Error" && obj.get("code").and_then(Value::as_str) == Some("message_too_large") {
                too_large(shared, &obj);
            }
            if !shared.wanted(hotline_event_kind::from_name(name)) {
                continue;
            }
            if shared.queued.fetch_add(1, Ordering::SeqCst) >= EVENT_QUEUE {
                return format!("more than {EVENT_QUEUE} events wait for the callback: it is too slow");
            }
            if events.send(Msg::Server(obj)).is_err() {
                return "the callback thread ended".to_owned();
            }
            continue;
        }
        let Some(id) = obj.get("invoke").and_then(Value::as_u64) else {
            junk(shared, format!("server line {line_no}: neither a reply (no invoke) nor an event"));
            continue;
        };
        let waiter = lock(&shared.pending).map.remove(&id);
        let Some(w) = waiter else {
            // The request already timed out (or was a keepalive Ping).
            log(Level::Debug, || format!("{}: reply to invoke {id} without a waiter dropped", shared.name));
            continue;
        };
        let reply = if let Some(err) = obj.remove("error") {
            Err(error_of(&err))
        } else if let Some(result) = obj.remove("result") {
            Ok(result)
        } else {
            let text = format!(
                "server line {line_no}: the reply to {} (invoke {id}) has neither result nor error",
                w.service
            );
            log(Level::Warn, || format!("{}: {text}", shared.name));
            Err(Error::new(hotline_result::Protocol, text))
        };
        if let (Some(c), Ok(result)) = (&w.login, &reply) {
            *lock(&shared.session) = Some(session_of(result, &c.user, c.station.as_deref()));
            *lock(&shared.credentials) = Some(c.clone());
        }
        let _ = w.tx.send(reply);
    }
}

/// The server skipped a line as too large: that is the longest request waiting (its
/// `Error` event names no invoke); it fails with Protocol now instead of timing out.
fn too_large(shared: &Shared, obj: &Map<String, Value>) {
    let reason = obj.get("reason").and_then(Value::as_str).unwrap_or("message too large");
    let w = {
        let mut pending = lock(&shared.pending);
        let id = pending.map.iter().max_by_key(|(id, w)| (w.len, std::cmp::Reverse(**id))).map(|(id, _)| *id);
        id.and_then(|id| pending.map.remove(&id).map(|w| (id, w)))
    };
    if let Some((id, w)) = w {
        let text = format!(
            "the server refused {} (invoke {id}, {} bytes): message_too_large: {reason}",
            w.service, w.len
        );
        log(Level::Warn, || format!("{}: {text}", shared.name));
        let _ = w.tx.send(Err(Error::new(hotline_result::Protocol, text)));
    }
}

/// The session a Login result establishes (`{"role","agent","station"}`), falling back
/// to what was asked for when the server leaves a field out.
fn session_of(result: &Value, user: &str, station: Option<&str>) -> Session {
    let get = |k: &str| result.get(k).and_then(Value::as_str).map(str::to_owned);
    Session {
        role: get("role").unwrap_or_default(),
        agent: get("agent").or_else(|| Some(user.to_owned())),
        station: get("station").or_else(|| station.map(str::to_owned)),
    }
}

fn error_of(err: &Value) -> Error {
    let code = err.get("code").and_then(Value::as_str).unwrap_or("").to_owned();
    let message = err.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
    let text = match (code.is_empty(), message.is_empty()) {
        (false, false) => format!("{code}: {message}"),
        (false, true) => code.clone(),
        (true, false) => message,
        (true, true) => format!("error reply without code: {err}"),
    };
    Error::new(hotline_result::from_server_code(&code), text)
}

fn dispatch_loop(shared: &Shared, events: Receiver<Msg>) {
    loop {
        match events.recv_timeout(shared.keepalive_every().min(Duration::from_secs(1))) {
            Ok(msg) => {
                shared.queued.fetch_sub(1, Ordering::SeqCst);
                let ev = match msg {
                    Msg::Server(obj) => Event::from_json(&obj),
                    Msg::Local(ev) => *ev,
                };
                shared.deliver(&ev);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        shared.keepalive();
    }
    let reason = lock(&shared.close_reason).clone().unwrap_or_else(|| "closed".into());
    shared.deliver(&Event::disconnected(&reason));
    shared.ended.store(true, Ordering::SeqCst);
}
