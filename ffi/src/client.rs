//! The link protocol client in safe Rust: one TCP connection, newline-delimited JSON,
//! synchronous requests correlated by invoke id, and events handed to a callback on a
//! dispatcher thread.
//!
//! Two threads per connection. The reader reads lines: replies go straight to the
//! waiting request (so replies are never stuck behind events), events go on a queue to
//! the dispatcher, which calls the callback; a queue longer than EVENT_QUEUE ends the
//! connection. Because the callback never runs
//! on the reader, a callback may itself make requests and get their replies.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{hotline_result, Error};
use crate::event::Event;

/// The longest line accepted from the server; a longer one ends the connection (the
/// server's own limit is far lower, so this only stops a runaway peer).
pub const MAX_LINE: usize = 4 << 20;
/// Events waiting for the callback before the connection is given up as too slow.
/// The reader never waits for the callback (a callback waiting for a reply would
/// otherwise wait for itself), so this bound is what keeps memory in check.
pub const EVENT_QUEUE: usize = 10_000;
/// How long a request waits for its reply unless the caller sets another timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that has sent nothing for this long sends a `Ping`: the server closes
/// connections idle for `idle_timeout_s` (120 s by default), and a CRM that only
/// listens for screen pops would otherwise be dropped.
pub const KEEPALIVE: Duration = Duration::from_secs(30);

/// What the callback is given. `Arc` so that the dispatcher can call it without
/// holding the lock that `set_callback` takes.
pub type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

type Reply = Result<Value, Error>;

/// A request waiting for its reply.
struct Waiter {
    tx: SyncSender<Reply>,
    /// For a Login: the user and station asked for. The reader records the session
    /// before it reads on, so that an event right behind the reply (a screen pop) is
    /// handled with the session already known, e.g. by a callback that answers.
    login: Option<(String, Option<String>)>,
}

/// Who this connection logged in as (from the Login result).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub role: String,
    pub agent: Option<String>,
    pub station: Option<String>,
}

struct Shared {
    writer: Mutex<TcpStream>,
    pending: Mutex<HashMap<u64, Waiter>>,
    closed: AtomicBool,
    close_reason: Mutex<Option<String>>,
    next_invoke: AtomicU64,
    timeout_ms: AtomicU64,
    callback: Mutex<Option<Callback>>,
    last_error: Mutex<String>,
    session: Mutex<Option<Session>>,
    last_sent: Mutex<std::time::Instant>,
    keepalive_ms: AtomicU64,
    /// Events read and not yet taken by the callback thread.
    queued: AtomicUsize,
}

impl Shared {
    fn keepalive_every(&self) -> Duration {
        Duration::from_millis(self.keepalive_ms.load(Ordering::SeqCst))
    }
    fn send_line(&self, line: &str) -> std::io::Result<()> {
        let mut w = lock(&self.writer);
        w.write_all(line.as_bytes())?;
        *lock(&self.last_sent) = std::time::Instant::now();
        Ok(())
    }

    /// Send a Ping when nothing was sent for the keepalive interval. Its reply has no waiter and is
    /// dropped by the reader.
    fn keepalive(&self) {
        if self.closed.load(Ordering::SeqCst) || lock(&self.last_sent).elapsed() < self.keepalive_every() {
            return;
        }
        let invoke = self.next_invoke.fetch_add(1, Ordering::SeqCst);
        let _ = self.send_line(&format!("{{\"invoke\":{invoke},\"service\":\"Ping\"}}\n"));
    }
}

/// Poison-tolerant lock: a panic elsewhere must not turn every later call into one.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
            .field("closed", &self.is_closed())
            .field("session", &self.session())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connect to `host:port` (each resolved address is tried within `timeout`).
    pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<Client, Error> {
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|e| Error::new(hotline_result::ConnectFailed, format!("resolve {host}:{port}: {e}")))?;
        let mut last = format!("{host}:{port} resolved to no address");
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = format!("connect to {addr}: {e}"),
            }
        }
        let stream = stream.ok_or_else(|| Error::new(hotline_result::ConnectFailed, last))?;
        Client::from_stream(stream)
    }

    /// Run the protocol over an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Result<Client, Error> {
        let io = |e: std::io::Error| Error::new(hotline_result::ConnectFailed, e.to_string());
        stream.set_nodelay(true).map_err(io)?;
        // A server that stops reading must not block a request forever.
        stream.set_write_timeout(Some(DEFAULT_TIMEOUT)).map_err(io)?;
        let read_half = stream.try_clone().map_err(io)?;
        let shared = Arc::new(Shared {
            writer: Mutex::new(stream),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            next_invoke: AtomicU64::new(1),
            timeout_ms: AtomicU64::new(DEFAULT_TIMEOUT.as_millis() as u64),
            callback: Mutex::new(None),
            last_error: Mutex::new(String::new()),
            session: Mutex::new(None),
            last_sent: Mutex::new(std::time::Instant::now()),
            keepalive_ms: AtomicU64::new(KEEPALIVE.as_millis() as u64),
            queued: AtomicUsize::new(0),
        });
        let (tx, rx) = mpsc::channel::<Map<String, Value>>();
        let s = shared.clone();
        let dispatcher = thread::Builder::new()
            .name("hotline-callback".into())
            .spawn(move || dispatch(&s, rx))
            .map_err(io)?;
        let dispatcher_id = dispatcher.thread().id();
        let s = shared.clone();
        let reader = thread::Builder::new()
            .name("hotline-reader".into())
            .spawn(move || read_loop(&s, read_half, tx))
            .map_err(io)?;
        Ok(Client { shared, threads: Mutex::new(vec![reader, dispatcher]), dispatcher: dispatcher_id })
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
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

    /// The text of the last failed request on this connection ("" if none failed).
    pub fn last_error(&self) -> String {
        lock(&self.shared.last_error).clone()
    }

    /// Keep `text` as the last error (a refusal decided before anything was sent).
    pub fn set_last_error(&self, text: String) {
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

    fn request_as(
        &self,
        service: &str,
        fields: Map<String, Value>,
        login: Option<(String, Option<String>)>,
    ) -> Result<Value, Error> {
        let r = self.request_inner(service, fields, login);
        if let Err(e) = &r {
            *lock(&self.shared.last_error) = e.message.clone();
        }
        r
    }

    fn closed_error(&self) -> Error {
        let why = lock(&self.shared.close_reason).clone();
        Error::new(hotline_result::Closed, why.unwrap_or_else(|| "connection closed".into()))
    }

    fn request_inner(
        &self,
        service: &str,
        fields: Map<String, Value>,
        login: Option<(String, Option<String>)>,
    ) -> Result<Value, Error> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let invoke = self.shared.next_invoke.fetch_add(1, Ordering::SeqCst);
        let mut msg = Map::new();
        msg.insert("invoke".into(), Value::from(invoke));
        msg.insert("service".into(), Value::from(service));
        msg.extend(fields);
        let mut line = Value::Object(msg).to_string();
        line.push('\n');
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut pending = lock(&self.shared.pending);
            // Checked under the lock the reader clears on close, so no request can be
            // registered after the reader gave up on the connection.
            if self.is_closed() {
                return Err(self.closed_error());
            }
            pending.insert(invoke, Waiter { tx, login });
        }
        let written = self.shared.send_line(&line);
        if let Err(e) = written {
            // Part of the line may be out: the stream can no longer be trusted, so the
            // connection ends (the reader sees the shutdown and wakes every waiter).
            let message = format!("send {service}: {e}");
            lock(&self.shared.close_reason).get_or_insert_with(|| message.clone());
            let _ = lock(&self.shared.writer).shutdown(Shutdown::Both);
            lock(&self.shared.pending).remove(&invoke);
            return Err(Error::new(hotline_result::Io, message));
        }
        let timeout = Duration::from_millis(self.shared.timeout_ms.load(Ordering::SeqCst));
        match rx.recv_timeout(timeout) {
            Ok(reply) => reply,
            Err(RecvTimeoutError::Timeout) => {
                lock(&self.shared.pending).remove(&invoke);
                Err(Error::new(
                    hotline_result::Timeout,
                    format!("no reply to {service} (invoke {invoke}) within {} ms", timeout.as_millis()),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.closed_error()),
        }
    }

    /// Log in; the session remembers the agent and station for later defaults.
    pub fn login(&self, user: &str, password: &str, station: Option<&str>) -> Result<Session, Error> {
        let mut f = Map::new();
        f.insert("user".into(), user.into());
        f.insert("password".into(), password.into());
        if let Some(s) = station {
            f.insert("station".into(), s.into());
        }
        let login = Some((user.to_owned(), station.map(str::to_owned)));
        self.request_as("Login", f, login)?;
        let session = self.session().ok_or_else(|| {
            Error::new(hotline_result::Protocol, "the Login reply did not establish a session")
        })?;
        Ok(session)
    }

    /// End the session on this connection (the server logs the agent out at the engine
    /// and stops this connection's monitors); the connection stays open.
    pub fn logout(&self) -> Result<(), Error> {
        self.request("Logout", Map::new())?;
        *lock(&self.shared.session) = None;
        Ok(())
    }

    /// The logged-in agent, for requests that name none.
    pub fn own_agent(&self) -> Result<String, Error> {
        self.session()
            .and_then(|s| s.agent)
            .ok_or_else(|| Error::new(hotline_result::NotLoggedIn, "no agent given and not logged in"))
    }

    /// The logged-in station as a device ("station:2001"), for requests that name none.
    pub fn own_device(&self) -> Result<String, Error> {
        self.session().and_then(|s| s.station).map(|s| format!("station:{s}")).ok_or_else(|| {
            Error::new(hotline_result::NotLoggedIn, "no device given and not logged in at a station")
        })
    }

    /// Close the connection. Waits for both threads, so no callback runs after this
    /// returns, except when called from the callback itself (which cannot wait for its
    /// own thread): then the threads end once the callback returns.
    pub fn disconnect(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        lock(&self.shared.close_reason).get_or_insert_with(|| "closed by the client".into());
        let _ = lock(&self.shared.writer).shutdown(Shutdown::Both);
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

fn read_loop(shared: &Shared, stream: TcpStream, events: Sender<Map<String, Value>>) {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let reason = loop {
        match read_line(&mut r, &mut buf) {
            Ok(None) => break "closed by the server".to_owned(),
            Err(e) => break format!("read error: {e}"),
            Ok(Some(())) => {}
        }
        line_no += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let obj = match serde_json::from_slice::<Value>(&buf) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                note(shared, format!("server line {line_no}: expected a JSON object"));
                continue;
            }
            Err(e) => {
                note(shared, format!("server line {line_no}, column {}: {e}", e.column()));
                continue;
            }
        };
        let invoke = obj.get("invoke").and_then(Value::as_u64);
        let is_reply = obj.contains_key("result") || obj.contains_key("error");
        match invoke {
            Some(id) if is_reply && !obj.contains_key("event") => {
                let waiter = lock(&shared.pending).remove(&id);
                // No waiter: the request already timed out; the late reply is dropped.
                if let Some(w) = waiter {
                    let reply = reply_of(obj);
                    if let (Some((user, station)), Ok(result)) = (&w.login, &reply) {
                        *lock(&shared.session) = Some(session_of(result, user, station.as_deref()));
                    }
                    let _ = w.tx.send(reply);
                }
            }
            _ if obj.contains_key("event") => {
                if shared.queued.fetch_add(1, Ordering::SeqCst) >= EVENT_QUEUE {
                    break format!("more than {EVENT_QUEUE} events wait for the callback: it is too slow");
                }
                if events.send(obj).is_err() {
                    break "the callback thread ended".to_owned();
                }
            }
            _ => note(shared, format!("server line {line_no}: neither a reply nor an event")),
        }
    };
    let mut pending = lock(&shared.pending);
    lock(&shared.close_reason).get_or_insert(reason);
    shared.closed.store(true, Ordering::SeqCst);
    // Dropping the senders wakes every waiting request with "closed".
    pending.clear();
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

fn note(shared: &Shared, text: String) {
    *lock(&shared.last_error) = text;
}

fn reply_of(mut obj: Map<String, Value>) -> Reply {
    if let Some(err) = obj.remove("error") {
        let code = err.get("code").and_then(Value::as_str).unwrap_or("").to_owned();
        let message = err.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
        let text = match (code.is_empty(), message.is_empty()) {
            (false, false) => format!("{code}: {message}"),
            (false, true) => code.clone(),
            (true, false) => message,
            (true, true) => format!("error reply without code: {err}"),
        };
        return Err(Error::new(hotline_result::from_server_code(&code), text));
    }
    Ok(obj.remove("result").unwrap_or(Value::Null))
}

fn dispatch(shared: &Shared, events: Receiver<Map<String, Value>>) {
    let call = |ev: &Event| {
        let cb = lock(&shared.callback).clone();
        if let Some(cb) = cb {
            // A panicking Rust callback must not end the thread that serves the others.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(ev))).is_err() {
                note(shared, format!("the callback panicked on a {} event", ev.name()));
            }
        }
    };
    loop {
        match events.recv_timeout(shared.keepalive_every().min(Duration::from_secs(1))) {
            Ok(obj) => {
                shared.queued.fetch_sub(1, Ordering::SeqCst);
                call(&Event::from_json(&obj));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        shared.keepalive();
    }
    let reason = lock(&shared.close_reason).clone().unwrap_or_else(|| "closed".into());
    call(&Event::disconnected(&reason));
}
