//! The C API against a scripted link server on loopback: each test plays the server's
//! side of docs/protocol.md line by line and checks what the library sends, returns
//! and hands to the callback.

use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::ptr;
use std::sync::{Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hotline::ffi::*;
use hotline::{hotline_event, hotline_event_kind as K, hotline_result as Res};
use serde_json::{json, Value};

/// The server's end of one connection.
struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Peer {
    fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a request");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("request {line:?} is not JSON: {e}"))
    }
    /// Keep the connection until the client closes it.
    fn wait_close(&mut self) {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.reader, &mut rest);
    }
    fn send(&mut self, v: Value) {
        self.send_raw(&v.to_string());
    }
    fn send_raw(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\n").as_bytes()).expect("send a line");
    }
    /// Read the Login and accept it as agent 1001 at station 2001.
    fn accept_login(&mut self) {
        let login = self.recv();
        assert_eq!(login["service"], "Login");
        self.send(json!({"invoke": login["invoke"], "result":
            {"role":"agent","agent":"1001","name":"Li Wei","station":"2001"}}));
    }
}

/// A one-connection server running `script`; returns its port.
fn server(script: impl FnOnce(&mut Peer) + Send + 'static) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let t = thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut peer = Peer { reader: BufReader::new(s.try_clone().expect("clone")), writer: s };
        script(&mut peer);
    });
    (port, t)
}

fn connect(port: u16) -> *mut hotline_conn {
    let mut conn = ptr::null_mut();
    let host = CString::new("127.0.0.1").expect("no NUL");
    assert_eq!(unsafe { hotline_connect(host.as_ptr(), port, &mut conn) }, Res::Ok);
    assert!(!conn.is_null());
    conn
}

fn login(conn: *mut hotline_conn) -> Res {
    let (u, p, s) = (c("1001"), c("secret"), c("2001"));
    unsafe { hotline_login(conn, u.as_ptr(), p.as_ptr(), s.as_ptr()) }
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn text(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// One event as the callback saw it: (kind, call, device, reason, json).
type Seen = (K, u64, Option<String>, Option<String>, String);

/// What the callback saw, in order.
#[derive(Default)]
struct Log {
    events: Mutex<Vec<Seen>>,
    changed: Condvar,
    conn: Mutex<usize>,
    answer: Mutex<Option<Res>>,
}

impl Log {
    fn leak() -> &'static Log {
        Box::leak(Box::default())
    }
    fn wait_for(&self, kind: K) -> Seen {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ev = self.events.lock().expect("lock");
        loop {
            if let Some(e) = ev.iter().find(|e| e.0 == kind) {
                return e.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {kind:?} event; saw {:?}", *ev);
            ev = self.changed.wait_timeout(ev, left).expect("lock").0;
        }
    }
}

unsafe extern "C" fn record(user: *mut c_void, ev: *const hotline_event) {
    let log = unsafe { &*(user as *const Log) };
    let ev = unsafe { &*ev };
    let entry = (ev.kind, ev.call, text(ev.device), text(ev.reason), text(ev.json).unwrap_or_default());
    log.events.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    log.changed.notify_all();
}

/// Answers the call of every screen pop from inside the callback.
unsafe extern "C" fn answer_on_pop(user: *mut c_void, ev: *const hotline_event) {
    let log = unsafe { &*(user as *const Log) };
    let ev = unsafe { &*ev };
    if ev.kind == K::ScreenPop {
        let conn = *log.conn.lock().expect("lock") as *mut hotline_conn;
        let r = unsafe { hotline_answer(conn, ev.call, ptr::null()) };
        *log.answer.lock().expect("lock") = Some(r);
    }
    unsafe { record(user, ev) };
}

fn set_callback(conn: *mut hotline_conn, log: &'static Log) {
    let r = unsafe { hotline_set_callback(conn, Some(record), log as *const Log as *mut c_void) };
    assert_eq!(r, Res::Ok);
}

fn last_error(conn: *mut hotline_conn) -> String {
    let mut buf = [0 as c_char; 256];
    let mut n = 0usize;
    unsafe { hotline_last_error(conn, buf.as_mut_ptr(), buf.len(), &mut n) };
    text(buf.as_ptr()).unwrap_or_default()
}

#[test]
fn a_reply_is_matched_by_invoke_even_when_an_event_arrives_before_it() {
    let (port, t) = server(|p| {
        let login = p.recv();
        assert_eq!(
            login,
            json!({"invoke": login["invoke"], "service": "Login",
            "user": "1001", "password": "secret", "station": "2001"})
        );
        p.send(json!({"event":"Delivered","monitor":1,"time":"2025-03-01T09:30:12.345Z","call":12,
            "alerting":"station:2001","calling":"13800138000","called":"4008001234","cause":"distributed"}));
        p.send(
            json!({"invoke": login["invoke"], "result": {"role":"agent","agent":"1001","station":"2001"}}),
        );
        p.wait_close();
    });
    let conn = connect(port);
    let log = Log::leak();
    set_callback(conn, log);
    assert_eq!(login(conn), Res::Ok);
    let (_, call, device, reason, _) = log.wait_for(K::Delivered);
    assert_eq!((call, device.as_deref(), reason.as_deref()), (12, Some("station:2001"), Some("distributed")));
    assert_eq!(unsafe { hotline_free(conn) }, Res::Ok);
    t.join().expect("server script");
}

#[test]
fn a_refusal_returns_its_numbered_code_and_keeps_the_servers_text() {
    let (port, t) = server(|p| {
        p.accept_login();
        let req = p.recv();
        assert_eq!(req["service"], "AnswerCall");
        assert_eq!(req["device"], "station:2002");
        p.send(json!({"invoke": req["invoke"], "error": {"code":"privilege_violation",
            "message":"agent 1001 may only control station:2001, not station:2002"}}));
        let req = p.recv();
        p.send(json!({"invoke": req["invoke"], "error": {"code":"brand_new_code","message":"later"}}));
    });
    let conn = connect(port);
    assert_eq!(login(conn), Res::Ok);
    let dev = c("station:2002");
    assert_eq!(unsafe { hotline_answer(conn, 12, dev.as_ptr()) }, Res::PrivilegeViolation);
    assert_eq!(Res::PrivilegeViolation as u32, 310);
    assert_eq!(
        last_error(conn),
        "privilege_violation: agent 1001 may only control station:2001, not station:2002"
    );
    assert_eq!(unsafe { hotline_hold(conn, 12, ptr::null()) }, Res::ServerError, "an unknown code");
    assert_eq!(last_error(conn), "brand_new_code: later");
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn the_device_and_agent_default_to_the_logged_in_ones() {
    let (port, t) = server(|p| {
        p.accept_login();
        let hold = p.recv();
        assert_eq!((hold["service"].as_str(), hold["call"].as_u64()), (Some("HoldCall"), Some(5)));
        assert_eq!(hold["device"], "station:2001");
        p.send(json!({"invoke": hold["invoke"], "result": {}}));
        let st = p.recv();
        assert_eq!(st["service"], "SetAgentState");
        assert_eq!((st["agent"].as_str(), st["state"].as_str()), (Some("1001"), Some("not_ready")));
        assert_eq!(st["reason"], "lunch");
        p.send(json!({"invoke": st["invoke"], "result": {}}));
        let consult = p.recv();
        assert_eq!(consult["service"], "ConsultationCall");
        assert_eq!((consult["held"].as_u64(), consult["called"].as_str()), (Some(5), Some("2002")));
        p.send(json!({"invoke": consult["invoke"], "result": {"call": 6}}));
        let xfer = p.recv();
        assert_eq!(xfer["service"], "TransferCall");
        assert_eq!((xfer["held"].as_u64(), xfer["active"].as_u64()), (Some(5), Some(6)));
        p.send(json!({"invoke": xfer["invoke"], "result": {}}));
        let mon = p.recv();
        assert_eq!(mon["target"], json!({"agent": "1001"}));
        p.send(json!({"invoke": mon["invoke"], "result": {"monitor": 7, "snapshot": {}}}));
    });
    let conn = connect(port);
    // Before login there is nothing to default to, and nothing is sent.
    assert_eq!(unsafe { hotline_hold(conn, 5, ptr::null()) }, Res::NotLoggedIn);
    assert_eq!(login(conn), Res::Ok);
    assert_eq!(unsafe { hotline_hold(conn, 5, ptr::null()) }, Res::Ok);
    let lunch = c("lunch");
    let st = hotline_agent_state::NotReady as u32;
    assert_eq!(unsafe { hotline_set_agent_state(conn, ptr::null(), st, lunch.as_ptr()) }, Res::Ok);
    let mut consult = 0u64;
    let to = c("2002");
    assert_eq!(unsafe { hotline_consult(conn, 5, ptr::null(), to.as_ptr(), &mut consult) }, Res::Ok);
    assert_eq!(consult, 6);
    assert_eq!(unsafe { hotline_transfer(conn, 5, consult, ptr::null()) }, Res::Ok);
    let (me, mut monitor) = (c("1001"), 0u64);
    let target = hotline_monitor_target::Agent as u32;
    assert_eq!(unsafe { hotline_monitor(conn, target, me.as_ptr(), &mut monitor) }, Res::Ok);
    assert_eq!(monitor, 7);
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn a_request_without_reply_times_out_and_its_late_reply_is_ignored() {
    let (port, t) = server(|p| {
        // The second request comes only after the first timed out; then the first's
        // reply arrives, late, just before the second's.
        let (slow, ping) = (p.recv(), p.recv());
        p.send(json!({"invoke": slow["invoke"], "result": {"time": "late"}}));
        p.send(json!({"invoke": ping["invoke"], "result": {"time": "now"}}));
    });
    let conn = connect(port);
    assert_eq!(unsafe { hotline_set_timeout(conn, 100) }, Res::Ok);
    let (ping, mut buf, mut n) = (c("Ping"), [0 as c_char; 64], 0usize);
    let r = unsafe { hotline_request(conn, ping.as_ptr(), ptr::null(), buf.as_mut_ptr(), 64, &mut n) };
    assert_eq!(r, Res::Timeout);
    assert!(last_error(conn).contains("no reply to Ping"), "{}", last_error(conn));
    assert_eq!(unsafe { hotline_set_timeout(conn, 5000) }, Res::Ok);
    let r = unsafe { hotline_request(conn, ping.as_ptr(), ptr::null(), buf.as_mut_ptr(), 64, &mut n) };
    assert_eq!(r, Res::Ok);
    assert_eq!(text(buf.as_ptr()).as_deref(), Some(r#"{"time":"now"}"#), "the late reply is not taken");
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn a_callback_may_answer_the_call_it_was_told_about() {
    let (port, t) = server(|p| {
        p.accept_login();
        p.send(json!({"event":"ScreenPop","time":"2025-03-01T09:30:12.345Z","call":12,"agent":"1001",
            "station":"2001","calling":"13800138000","access_number":"4008001234","location":"Beijing",
            "vip":true,"ivr_data":{"account":"778812"},"attached":{},"previous_contacts":[],"crm":null}));
        let answer = p.recv();
        assert_eq!(answer["service"], "AnswerCall");
        assert_eq!((answer["call"].as_u64(), answer["device"].as_str()), (Some(12), Some("station:2001")));
        p.send(json!({"invoke": answer["invoke"], "result": {}}));
        p.wait_close();
    });
    let conn = connect(port);
    let log = Log::leak();
    *log.conn.lock().expect("lock") = conn as usize;
    let ud = log as *const Log as *mut c_void;
    assert_eq!(unsafe { hotline_set_callback(conn, Some(answer_on_pop), ud) }, Res::Ok);
    assert_eq!(login(conn), Res::Ok);
    let (_, call, device, _, json) = log.wait_for(K::ScreenPop);
    assert_eq!((call, device.as_deref()), (12, Some("station:2001")));
    assert!(json.contains("778812"));
    assert_eq!(
        *log.answer.lock().expect("lock"),
        Some(Res::Ok),
        "the request from the callback got its reply"
    );
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn the_server_hanging_up_fails_the_waiting_request_and_ends_with_disconnected() {
    let (port, t) = server(|p| {
        p.recv();
        p.send_raw("this is not JSON");
        // Dropping the peer closes the connection with the request unanswered.
    });
    let conn = connect(port);
    let log = Log::leak();
    set_callback(conn, log);
    // The junk line fails the waiting Login at once (point 12.7), before the close.
    assert_eq!(login(conn), Res::Protocol);
    assert!(last_error(conn).contains("server line 1"), "{}", last_error(conn));
    let (_, _, _, reason, _) = log.wait_for(K::Disconnected);
    assert_eq!(reason.as_deref(), Some("closed by the server"));
    assert_eq!(log.events.lock().expect("lock").len(), 1, "the bad line is no event");
    // Closed, not NotLoggedIn, also where a default would need the login.
    assert_eq!(unsafe { hotline_hold(conn, 1, ptr::null()) }, Res::Closed);
    let dev = c("station:2001");
    assert_eq!(unsafe { hotline_hold(conn, 1, dev.as_ptr()) }, Res::Closed);
    // The handle stays valid until freed.
    assert_eq!(unsafe { hotline_disconnect(conn) }, Res::Ok);
    assert_eq!(unsafe { hotline_free(conn) }, Res::Ok);
    t.join().expect("server script");
}

#[test]
fn null_freed_and_invented_handles_are_refused_with_a_code() {
    let (port, t) = server(|p| {
        let mut line = String::new();
        let _ = p.reader.read_line(&mut line);
    });
    let dev = c("station:2001");
    assert_eq!(unsafe { hotline_answer(ptr::null_mut(), 1, dev.as_ptr()) }, Res::NullParameter);
    assert_eq!(unsafe { hotline_free(ptr::null_mut()) }, Res::NullParameter);
    let invented = 0xdead_beef_usize as *mut hotline_conn;
    assert_eq!(unsafe { hotline_answer(invented, 1, dev.as_ptr()) }, Res::InvalidHandle);
    let host = c("127.0.0.1");
    assert_eq!(unsafe { hotline_connect(host.as_ptr(), port, ptr::null_mut()) }, Res::NullParameter);
    assert_eq!(unsafe { hotline_connect(ptr::null(), port, &mut ptr::null_mut()) }, Res::NullParameter);
    let conn = connect(port);
    assert_eq!(unsafe { hotline_free(conn) }, Res::Ok);
    assert_eq!(unsafe { hotline_answer(conn, 1, dev.as_ptr()) }, Res::InvalidHandle);
    assert_eq!(unsafe { hotline_set_callback(conn, None, ptr::null_mut()) }, Res::InvalidHandle);
    assert_eq!(unsafe { hotline_free(conn) }, Res::InvalidHandle, "a double free is refused");
    t.join().expect("server script");
}

#[test]
fn arguments_out_of_range_are_refused_before_anything_is_sent() {
    let (port, t) = server(|p| {
        p.accept_login();
        // The next thing the client sends must be the only valid request below.
        let req = p.recv();
        assert_eq!(req["service"], "GenerateDigits");
        p.send(json!({"invoke": req["invoke"], "result": {}}));
    });
    let conn = connect(port);
    assert_eq!(login(conn), Res::Ok);
    assert_eq!(unsafe { hotline_set_agent_state(conn, ptr::null(), 99, ptr::null()) }, Res::InvalidArgument);
    assert_eq!(unsafe { hotline_answer(conn, 0, ptr::null()) }, Res::InvalidArgument);
    let (bad, good, empty) = (c("12x"), c("12#"), c(""));
    assert_eq!(unsafe { hotline_send_digits(conn, 3, ptr::null(), bad.as_ptr()) }, Res::InvalidArgument);
    assert_eq!(unsafe { hotline_answer(conn, 3, empty.as_ptr()) }, Res::InvalidArgument);
    assert_eq!(unsafe { hotline_monitor(conn, 9, ptr::null(), ptr::null_mut()) }, Res::InvalidArgument);
    let (snap, broken, buf) = (c("SnapshotCall"), c("{\"call\": 3,"), &mut [0 as c_char; 64]);
    let r = unsafe {
        hotline_request(conn, snap.as_ptr(), broken.as_ptr(), buf.as_mut_ptr(), 64, ptr::null_mut())
    };
    assert_eq!(r, Res::InvalidArgument);
    assert!(last_error(conn).ends_with("at line 1 column 11"), "{}", last_error(conn));
    let not_utf8 = [0xffu8, 0xfe, 0];
    let r = unsafe { hotline_answer(conn, 3, not_utf8.as_ptr().cast()) };
    assert_eq!(r, Res::InvalidUtf8);
    assert_eq!(unsafe { hotline_send_digits(conn, 3, ptr::null(), good.as_ptr()) }, Res::Ok);
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn a_refused_connection_is_connect_failed() {
    // Bind, read the port, close: nothing listens there any more.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let (host, mut conn) = (c("127.0.0.1"), ptr::null_mut());
    assert_eq!(unsafe { hotline_connect(host.as_ptr(), port, &mut conn) }, Res::ConnectFailed);
    assert!(conn.is_null(), "the output is written only on success");
}

#[test]
fn result_messages_fit_the_buffer_or_say_how_long_they_are() {
    let mut buf = [0 as c_char; 8];
    let full = unsafe { hotline_result_message(Res::Timeout as u32, buf.as_mut_ptr(), buf.len()) };
    assert_eq!(full, Res::Timeout.message().len());
    assert_eq!(text(buf.as_ptr()).as_deref(), Some("no repl"), "truncated and NUL-terminated");
    assert_eq!(unsafe { hotline_result_message(Res::Ok as u32, ptr::null_mut(), 0) }, 2);
    let mut big = [0 as c_char; 64];
    unsafe { hotline_result_message(4242, big.as_mut_ptr(), big.len()) };
    assert_eq!(text(big.as_ptr()).as_deref(), Some("unknown hotline_result 4242"));
    for r in Res::all() {
        assert_eq!(Res::from_u32(*r as u32), Some(*r));
        assert!(!r.message().is_empty());
    }
}

#[test]
fn two_threads_get_their_own_replies_when_the_server_answers_out_of_order() {
    let (port, t) = server(|p| {
        let (a, b) = (p.recv(), p.recv());
        // Answer the second request first; each reply echoes its request's call.
        for req in [&b, &a] {
            p.send(
                json!({"invoke": req["invoke"], "result": {"parties": [], "data": {"call": req["call"]}}}),
            );
        }
        p.wait_close();
    });
    let conn = connect(port) as usize;
    let ask = move |call: u64| {
        thread::spawn(move || {
            let (service, fields) = (c("SnapshotCall"), c(&format!("{{\"call\":{call}}}")));
            let mut buf = [0 as c_char; 128];
            let r = unsafe {
                hotline_request(
                    conn as *mut hotline_conn,
                    service.as_ptr(),
                    fields.as_ptr(),
                    buf.as_mut_ptr(),
                    buf.len(),
                    ptr::null_mut(),
                )
            };
            (r, text(buf.as_ptr()).unwrap_or_default())
        })
    };
    let (one, two) = (ask(1), ask(2));
    let (one, two) = (one.join().expect("thread"), two.join().expect("thread"));
    assert_eq!(one, (Res::Ok, r#"{"data":{"call":1},"parties":[]}"#.to_owned()));
    assert_eq!(two, (Res::Ok, r#"{"data":{"call":2},"parties":[]}"#.to_owned()));
    unsafe { hotline_free(conn as *mut hotline_conn) };
    t.join().expect("server script");
}

/// Frees its own connection from inside the callback on the first event.
unsafe extern "C" fn free_on_first_event(user: *mut c_void, ev: *const hotline_event) {
    let log = unsafe { &*(user as *const Log) };
    if unsafe { (*ev).kind } == K::Delivered {
        let conn = *log.conn.lock().expect("lock") as *mut hotline_conn;
        *log.answer.lock().expect("lock") = Some(unsafe { hotline_free(conn) });
    }
    unsafe { record(user, ev) };
}

#[test]
fn a_callback_may_free_its_own_connection() {
    let (port, t) = server(|p| {
        p.send(json!({"event":"Delivered","call":4,"alerting":"station:2001"}));
        p.wait_close();
    });
    let conn = connect(port);
    let log = Log::leak();
    *log.conn.lock().expect("lock") = conn as usize;
    let ud = log as *const Log as *mut c_void;
    assert_eq!(unsafe { hotline_set_callback(conn, Some(free_on_first_event), ud) }, Res::Ok);
    let (_, _, _, reason, _) = log.wait_for(K::Disconnected);
    assert_eq!(reason.as_deref(), Some("closed by the client"));
    assert_eq!(*log.answer.lock().expect("lock"), Some(Res::Ok));
    assert_eq!(unsafe { hotline_free(conn) }, Res::InvalidHandle, "already freed by the callback");
    t.join().expect("server script");
}

#[test]
fn after_free_returns_the_callback_is_not_called_again() {
    let (port, t) = server(|p| {
        for call in 1..=200 {
            let line = json!({"event":"Delivered","call":call,"alerting":"station:2001"});
            // The client may be gone mid-flood; that is the point of the test.
            if p.writer.write_all(format!("{line}\n").as_bytes()).is_err() {
                return;
            }
        }
        p.wait_close();
    });
    let conn = connect(port);
    let log = Log::leak();
    set_callback(conn, log);
    log.wait_for(K::Delivered);
    assert_eq!(unsafe { hotline_free(conn) }, Res::Ok);
    let seen = log.events.lock().expect("lock").len();
    assert_eq!(log.events.lock().expect("lock").last().map(|e| e.0), Some(K::Disconnected));
    thread::sleep(Duration::from_millis(50));
    assert_eq!(log.events.lock().expect("lock").len(), seen, "nothing after Disconnected");
    t.join().expect("server script");
}

#[test]
fn a_connection_that_only_listens_pings_before_the_servers_idle_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    let client = hotline::Client::connect("127.0.0.1", port, Duration::from_secs(5)).expect("connect");
    client.set_keepalive(Duration::from_millis(50));
    let (s, _) = listener.accept().expect("accept");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut peer = Peer { reader: BufReader::new(s.try_clone().expect("clone")), writer: s };
    let ping = peer.recv();
    assert_eq!(ping["service"], "Ping", "{ping}");
    // The reply has no waiter and is dropped; the connection carries on.
    peer.send(json!({"invoke": ping["invoke"], "result": {"time": "2025-03-01T09:30:12.345Z"}}));
    assert_eq!(peer.recv()["service"], "Ping");
    assert!(!client.is_closed());
    assert_eq!(client.last_error(), "");
}

#[test]
fn a_callback_that_falls_too_far_behind_ends_the_connection_and_says_why() {
    let (port, t) = server(|p| {
        for call in 1..=(hotline::client::EVENT_QUEUE as u64 + 100) {
            let line = json!({"event":"Delivered","call":call,"alerting":"station:2001"});
            if p.writer.write_all(format!("{line}\n").as_bytes()).is_err() {
                return;
            }
        }
        p.wait_close();
    });
    let client = hotline::Client::connect("127.0.0.1", port, Duration::from_secs(5)).expect("connect");
    let (release, stuck) = std::sync::mpsc::channel::<()>();
    let stuck = Mutex::new(stuck);
    // The callback blocks on its first event until the test lets it go.
    client.set_callback(Some(std::sync::Arc::new(move |_: &hotline::Event| {
        let _ = stuck.lock().map(|rx| rx.recv_timeout(Duration::from_secs(10)));
    })));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.is_closed() {
        assert!(Instant::now() < deadline, "the connection stays open with a stuck callback");
        thread::sleep(Duration::from_millis(10));
    }
    let err = client.request("Ping", Default::default()).expect_err("closed");
    assert_eq!(err.code, Res::Closed);
    assert!(err.message.contains("events wait for the callback"), "{err}");
    drop(release);
    drop(client);
    t.join().expect("server script");
}

#[test]
fn conference_single_step_transfer_make_call_and_hang_up_send_the_protocols_fields() {
    let (port, t) = server(|p| {
        p.accept_login();
        let expected = [
            json!({"service":"ConferenceCall","held":5,"active":6,"device":"station:2001"}),
            json!({"service":"SingleStepTransferCall","call":5,"device":"station:2001","to":"8001"}),
            json!({"service":"MakeCall","calling":"2001","called":"013912345678"}),
            json!({"service":"ClearConnection","call":14,"device":"station:2001"}),
        ];
        for want in expected {
            let mut got = p.recv();
            let invoke = got.as_object_mut().and_then(|o| o.remove("invoke")).expect("an invoke id");
            assert_eq!(got, want);
            let result = if want["service"] == "MakeCall" { json!({"call": 14}) } else { json!({}) };
            p.send(json!({"invoke": invoke, "result": result}));
        }
    });
    let conn = connect(port);
    assert_eq!(login(conn), Res::Ok);
    assert_eq!(unsafe { hotline_conference(conn, 5, 6, ptr::null()) }, Res::Ok);
    let to = c("8001");
    assert_eq!(unsafe { hotline_transfer_single_step(conn, 5, ptr::null(), to.as_ptr()) }, Res::Ok);
    let (number, mut call) = (c("013912345678"), 0u64);
    assert_eq!(unsafe { hotline_make_call(conn, ptr::null(), number.as_ptr(), &mut call) }, Res::Ok);
    assert_eq!(call, 14);
    assert_eq!(unsafe { hotline_hangup(conn, call, ptr::null()) }, Res::Ok);
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

// ---- Issue 12, point 7: every argument checked, the right code at once ----

/// A server that accepts the login, then expects `want` as the very next request
/// (proof that nothing before it was sent), answers it and waits for the close.
fn expect_next(want: &'static str) -> (u16, JoinHandle<()>) {
    server(move |p| {
        p.accept_login();
        let req = p.recv();
        assert_eq!(req["service"], want, "something refused was sent: {req}");
        p.send(json!({"invoke": req["invoke"], "result": {}}));
        p.wait_close();
    })
}

/// One refused call of a table of cases.
type Case = Box<dyn Fn() -> Res>;

#[test]
fn p12_7_empty_overlong_nul_and_bad_digit_strings_are_refused_before_sending() {
    let (port, t) = expect_next("Ping");
    let conn = connect(port);
    // Login's own arguments, before anything is sent.
    let (empty, user, pass, ext) = (c(""), c("1001"), c("secret"), c("2001"));
    assert_eq!(
        unsafe { hotline_login(conn, empty.as_ptr(), pass.as_ptr(), ext.as_ptr()) },
        Res::InvalidArgument
    );
    assert!(last_error(conn).starts_with("user is empty"), "{}", last_error(conn));
    assert_eq!(
        unsafe { hotline_login(conn, user.as_ptr(), empty.as_ptr(), ext.as_ptr()) },
        Res::InvalidArgument
    );
    assert_eq!(
        unsafe { hotline_login(conn, user.as_ptr(), pass.as_ptr(), empty.as_ptr()) },
        Res::InvalidArgument
    );
    assert_eq!(login(conn), Res::Ok);

    let long = c(&"1".repeat(HOTLINE_MAX_NAME + 1));
    let cases: Vec<(&str, Res, Case)> = vec![
        (
            "empty device",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_answer(conn, 3, c("").as_ptr()) }),
        ),
        (
            "device without kind",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_hold(conn, 3, c("2001").as_ptr()) }),
        ),
        (
            "lowercase digits",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_send_digits(conn, 3, ptr::null(), c("12a").as_ptr()) }),
        ),
        (
            "invalid digits",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_send_digits(conn, 3, ptr::null(), c("1 2").as_ptr()) }),
        ),
        (
            "empty digits",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_send_digits(conn, 3, ptr::null(), c("").as_ptr()) }),
        ),
        (
            "empty to",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_transfer_single_step(conn, 3, ptr::null(), c("").as_ptr()) }),
        ),
        (
            "over-long called",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_make_call(conn, ptr::null(), long.as_ptr(), ptr::null_mut()) }),
        ),
        (
            "control character",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_deflect(conn, 3, ptr::null(), c("20\n02").as_ptr()) }),
        ),
        (
            "empty reason",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_set_agent_state(conn, ptr::null(), 2, c("").as_ptr()) }),
        ),
        (
            "empty call data key",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_set_call_data(conn, 3, c("").as_ptr(), c("v").as_ptr()) }),
        ),
        (
            "over-long call data",
            Res::InvalidArgument,
            Box::new(move || unsafe {
                hotline_set_call_data(conn, 3, c("k").as_ptr(), c(&"v".repeat(HOTLINE_MAX_TEXT + 1)).as_ptr())
            }),
        ),
        (
            "NUL inside a JSON string",
            Res::InvalidArgument,
            Box::new(move || unsafe {
                let mut buf = [0 as c_char; 64];
                hotline_request(
                    conn,
                    c("SetCallData").as_ptr(),
                    c(r#"{"call":3,"key":"a\u0000b","value":"v"}"#).as_ptr(),
                    buf.as_mut_ptr(),
                    buf.len(),
                    ptr::null_mut(),
                )
            }),
        ),
        (
            "over-long request",
            Res::InvalidArgument,
            Box::new(move || unsafe {
                let mut buf = [0 as c_char; 64];
                let big = format!(r#"{{"call":3,"key":"k","value":"{}"}}"#, "v".repeat(HOTLINE_MAX_REQUEST));
                hotline_request(
                    conn,
                    c("SetCallData").as_ptr(),
                    c(&big).as_ptr(),
                    buf.as_mut_ptr(),
                    64,
                    ptr::null_mut(),
                )
            }),
        ),
        (
            "bad service name",
            Res::InvalidArgument,
            Box::new(move || unsafe {
                let mut buf = [0 as c_char; 64];
                hotline_request(
                    conn,
                    c("Snapshot Call").as_ptr(),
                    ptr::null(),
                    buf.as_mut_ptr(),
                    64,
                    ptr::null_mut(),
                )
            }),
        ),
        ("zero call", Res::InvalidArgument, Box::new(move || unsafe { hotline_clear_call(conn, 0) })),
        (
            "supervision mode",
            Res::InvalidArgument,
            Box::new(move || unsafe { hotline_supervise(conn, c("1001").as_ptr(), 7) }),
        ),
        (
            "monitor name empty",
            Res::InvalidArgument,
            Box::new(move || unsafe {
                hotline_monitor(conn, hotline_monitor_target::Queue as u32, c("").as_ptr(), ptr::null_mut())
            }),
        ),
        ("monitor 0", Res::InvalidArgument, Box::new(move || unsafe { hotline_monitor_stop(conn, 0) })),
        (
            "NULL digits",
            Res::NullParameter,
            Box::new(move || unsafe { hotline_send_digits(conn, 3, ptr::null(), ptr::null()) }),
        ),
        (
            "snapshot into NULL",
            Res::NullParameter,
            Box::new(move || unsafe { hotline_snapshot_call(conn, 3, ptr::null_mut(), 10, ptr::null_mut()) }),
        ),
    ];
    for (what, want, call) in &cases {
        assert_eq!(call(), *want, "{what}");
        assert!(!last_error(conn).is_empty(), "{what}: the refusal says why");
    }
    // Only now does anything go out.
    let mut buf = [0 as c_char; 64];
    let r = unsafe {
        hotline_request(conn, c("Ping").as_ptr(), ptr::null(), buf.as_mut_ptr(), 64, ptr::null_mut())
    };
    assert_eq!(r, Res::Ok);
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn p12_7_a_refusal_says_which_argument_and_why() {
    let (port, t) = expect_next("Ping");
    let conn = connect(port);
    assert_eq!(login(conn), Res::Ok);
    let r = unsafe { hotline_send_digits(conn, 3, ptr::null(), c("12a").as_ptr()) };
    assert_eq!(r, Res::InvalidArgument);
    assert!(last_error(conn).contains("'a' at byte 2"), "{}", last_error(conn));
    let r = unsafe { hotline_answer(conn, 0, ptr::null()) };
    assert_eq!(r, Res::InvalidArgument);
    assert_eq!(last_error(conn), "call is 0, which is no call");
    let mut buf = [0 as c_char; 64];
    let r = unsafe {
        hotline_request(conn, c("Ping").as_ptr(), ptr::null(), buf.as_mut_ptr(), 64, ptr::null_mut())
    };
    assert_eq!(r, Res::Ok);
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn p12_7_after_a_disconnect_every_call_says_closed() {
    for by_client in [false, true] {
        let (port, t) = server(move |p| {
            p.accept_login();
            if by_client {
                p.wait_close();
            }
            // else: dropping the peer closes the connection from the server's side.
        });
        let conn = connect(port);
        let log = Log::leak();
        set_callback(conn, log);
        assert_eq!(login(conn), Res::Ok);
        if by_client {
            assert_eq!(unsafe { hotline_disconnect(conn) }, Res::Ok);
        }
        log.wait_for(K::Disconnected);
        let mut buf = [0 as c_char; 64];
        let null = ptr::null();
        let calls: Vec<(&str, Res)> = vec![
            ("hold", unsafe { hotline_hold(conn, 1, null) }),
            ("answer", unsafe { hotline_answer(conn, 1, c("station:2001").as_ptr()) }),
            ("state", unsafe { hotline_set_agent_state(conn, null, 1, null) }),
            ("make_call", unsafe { hotline_make_call(conn, null, c("2002").as_ptr(), ptr::null_mut()) }),
            ("consult", unsafe { hotline_consult(conn, 1, null, c("2002").as_ptr(), ptr::null_mut()) }),
            ("digits", unsafe { hotline_send_digits(conn, 1, null, c("1").as_ptr()) }),
            ("logout", unsafe { hotline_logout(conn) }),
            ("login", login(conn)),
            ("monitor", unsafe { hotline_monitor(conn, 2, c("1001").as_ptr(), ptr::null_mut()) }),
            ("monitor_stop", unsafe { hotline_monitor_stop(conn, 3) }),
            ("clear_call", unsafe { hotline_clear_call(conn, 1) }),
            ("agent state", unsafe {
                hotline_get_agent_state(conn, null, buf.as_mut_ptr(), 64, ptr::null_mut())
            }),
            ("snapshot device", unsafe {
                hotline_snapshot_device(conn, null, buf.as_mut_ptr(), 64, ptr::null_mut())
            }),
            ("request", unsafe {
                hotline_request(conn, c("Ping").as_ptr(), null, buf.as_mut_ptr(), 64, ptr::null_mut())
            }),
        ];
        for (what, r) in calls {
            assert_eq!(
                r,
                Res::Closed,
                "{what} (closed by the {})",
                if by_client { "client" } else { "server" }
            );
        }
        unsafe { hotline_free(conn) };
        t.join().expect("server script");
    }
}

#[test]
fn p12_7_a_reply_without_result_is_a_protocol_error_at_once() {
    let (port, t) = server(|p| {
        p.accept_login();
        let req = p.recv();
        p.send(json!({"invoke": req["invoke"]}));
        p.wait_close();
    });
    let conn = connect(port);
    // A long timeout: a Timeout here would mean the reply was not recognised.
    assert_eq!(unsafe { hotline_set_timeout(conn, 60_000) }, Res::Ok);
    assert_eq!(login(conn), Res::Ok);
    assert_eq!(unsafe { hotline_hold(conn, 4, ptr::null()) }, Res::Protocol);
    assert!(last_error(conn).contains("the reply to HoldCall"), "{}", last_error(conn));
    assert!(last_error(conn).contains("neither result nor error"), "{}", last_error(conn));
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn p12_7_a_junk_line_fails_the_waiting_request_with_protocol_at_once() {
    for junk in ["this is not JSON", "[1,2]", r#"{"neither":"reply nor event"}"#] {
        let (port, t) = server(move |p| {
            p.accept_login();
            p.recv();
            p.send_raw(junk);
            p.wait_close();
        });
        let conn = connect(port);
        assert_eq!(unsafe { hotline_set_timeout(conn, 60_000) }, Res::Ok);
        assert_eq!(login(conn), Res::Ok);
        assert_eq!(unsafe { hotline_retrieve(conn, 4, ptr::null()) }, Res::Protocol, "{junk}");
        assert!(last_error(conn).starts_with("RetrieveCall failed: server line 2"), "{}", last_error(conn));
        unsafe { hotline_free(conn) };
        t.join().expect("server script");
    }
}

#[test]
fn p12_7_a_request_the_server_refused_as_too_large_is_a_protocol_error_at_once() {
    let (port, t) = server(|p| {
        p.accept_login();
        let small = p.recv();
        let big = p.recv();
        assert_eq!(
            (small["service"].as_str(), big["service"].as_str()),
            (Some("HoldCall"), Some("SetCallData"))
        );
        // The server's Error event names no invoke: the longest request waiting is it.
        p.send(json!({"event":"Error","code":"message_too_large",
            "reason":"message larger than the limit of 1024 bytes; it was skipped","time":"2025-03-01T09:30:12.345Z"}));
        p.send(json!({"invoke": small["invoke"], "result": {}}));
        p.wait_close();
    });
    let conn = connect(port) as usize;
    assert_eq!(unsafe { hotline_set_timeout(conn as *mut hotline_conn, 60_000) }, Res::Ok);
    assert_eq!(login(conn as *mut hotline_conn), Res::Ok);
    // The small request first, from a thread, so both wait at once.
    let hold = thread::spawn(move || unsafe { hotline_hold(conn as *mut hotline_conn, 4, ptr::null()) });
    thread::sleep(Duration::from_millis(100));
    let value = c(&"x".repeat(2000));
    let conn = conn as *mut hotline_conn;
    assert_eq!(unsafe { hotline_set_call_data(conn, 4, c("note").as_ptr(), value.as_ptr()) }, Res::Protocol);
    assert!(last_error(conn).contains("message_too_large"), "{}", last_error(conn));
    assert!(last_error(conn).contains("SetCallData"), "{}", last_error(conn));
    assert_eq!(hold.join().expect("thread"), Res::Ok, "the small request is not blamed");
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn p12_7_last_error_belongs_to_the_failed_call_not_a_later_junk_line() {
    let (port, t) = server(|p| {
        p.accept_login();
        let req = p.recv();
        p.send(json!({"invoke": req["invoke"], "error": {"code":"invalid_call_id","message":"no call 99"}}));
        p.send_raw("garbage after the reply");
        p.send_raw(r#"{"no":"invoke"}"#);
        p.send(json!({"event":"AgentReady","agent":"1001","time":"2025-03-01T09:30:12.345Z"}));
        p.wait_close();
    });
    let conn = connect(port);
    let log = Log::leak();
    set_callback(conn, log);
    assert_eq!(login(conn), Res::Ok);
    assert_eq!(unsafe { hotline_answer(conn, 99, ptr::null()) }, Res::InvalidCallId);
    // The event comes after the junk lines: once it is seen, they were read.
    log.wait_for(K::AgentReady);
    assert_eq!(last_error(conn), "invalid_call_id: no call 99");
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn p12_7_originated_carries_its_device() {
    let (port, t) = server(|p| {
        p.accept_login();
        p.send(json!({"event":"Originated","monitor":1,"time":"2025-03-01T09:30:12.345Z","call":14,
            "calling":"station:2001","called":"013912345678"}));
        p.wait_close();
    });
    let conn = connect(port);
    let log = Log::leak();
    set_callback(conn, log);
    assert_eq!(login(conn), Res::Ok);
    let (_, call, device, _, _) = log.wait_for(K::Originated);
    assert_eq!((call, device.as_deref()), (14, Some("station:2001")));
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

// ---- Issue 12, point 8: what a CRM integrator expects ----

#[test]
fn p12_8_typed_functions_send_every_service_of_the_link() {
    let (port, t) = server(|p| {
        p.accept_login();
        let expected = [
            json!({"service":"ClearCall","call":5}),
            json!({"service":"AlternateCall","held":5,"active":6,"device":"station:2001"}),
            json!({"service":"ReconnectCall","held":5,"active":6,"device":"station:2001"}),
            json!({"service":"DeflectCall","call":5,"device":"station:2001","to":"2002"}),
            json!({"service":"SetCallData","call":5,"key":"order","value":"A-778"}),
            json!({"service":"StartRecording","call":5}),
            json!({"service":"StopRecording","call":5}),
            json!({"service":"Supervise","agent":"1002","mode":"barge"}),
            json!({"service":"SnapshotCall","call":5}),
            json!({"service":"SnapshotDevice","device":"station:2001"}),
            json!({"service":"SnapshotQueue","queue":"sales"}),
            json!({"service":"SnapshotAgents","group":"day"}),
            json!({"service":"GetAgentState","agent":"1001"}),
            json!({"service":"AgentCallsToday"}),
            json!({"service":"Monitor","target":{"queue":"sales"}}),
            json!({"service":"MonitorStop","monitor":8}),
        ];
        for want in expected {
            let mut got = p.recv();
            let invoke = got.as_object_mut().and_then(|o| o.remove("invoke")).expect("an invoke id");
            assert_eq!(got, want);
            let result = match want["service"].as_str() {
                Some("Monitor") => {
                    json!({"monitor": 8, "snapshot": {"queues":[{"queue":"sales","waiting":[]}]}})
                }
                Some(s) if s.starts_with("Snapshot") || s.ends_with("State") || s.ends_with("Today") => {
                    json!({"of": s})
                }
                _ => json!({}),
            };
            p.send(json!({"invoke": invoke, "result": result}));
        }
        p.wait_close();
    });
    let conn = connect(port);
    assert_eq!(login(conn), Res::Ok);
    let null = ptr::null();
    assert_eq!(unsafe { hotline_clear_call(conn, 5) }, Res::Ok);
    assert_eq!(unsafe { hotline_alternate(conn, 5, 6, null) }, Res::Ok);
    assert_eq!(unsafe { hotline_reconnect_call(conn, 5, 6, null) }, Res::Ok);
    assert_eq!(unsafe { hotline_deflect(conn, 5, null, c("2002").as_ptr()) }, Res::Ok);
    assert_eq!(unsafe { hotline_set_call_data(conn, 5, c("order").as_ptr(), c("A-778").as_ptr()) }, Res::Ok);
    assert_eq!(unsafe { hotline_start_recording(conn, 5) }, Res::Ok);
    assert_eq!(unsafe { hotline_stop_recording(conn, 5) }, Res::Ok);
    let barge = hotline_supervision_mode::Barge as u32;
    assert_eq!(unsafe { hotline_supervise(conn, c("1002").as_ptr(), barge) }, Res::Ok);
    let mut buf = [0 as c_char; 128];
    let mut n = 0usize;
    let (b, l) = (buf.as_mut_ptr(), buf.len());
    assert_eq!(unsafe { hotline_snapshot_call(conn, 5, b, l, &mut n) }, Res::Ok);
    assert_eq!(text(buf.as_ptr()).as_deref(), Some(r#"{"of":"SnapshotCall"}"#));
    assert_eq!(n, r#"{"of":"SnapshotCall"}"#.len());
    let (b, l) = (buf.as_mut_ptr(), buf.len());
    assert_eq!(unsafe { hotline_snapshot_device(conn, null, b, l, ptr::null_mut()) }, Res::Ok);
    assert_eq!(unsafe { hotline_snapshot_queue(conn, c("sales").as_ptr(), b, l, ptr::null_mut()) }, Res::Ok);
    assert_eq!(unsafe { hotline_snapshot_agents(conn, c("day").as_ptr(), b, l, ptr::null_mut()) }, Res::Ok);
    assert_eq!(unsafe { hotline_get_agent_state(conn, null, b, l, ptr::null_mut()) }, Res::Ok);
    assert_eq!(text(buf.as_ptr()).as_deref(), Some(r#"{"of":"GetAgentState"}"#));
    let (b, l) = (buf.as_mut_ptr(), buf.len());
    assert_eq!(unsafe { hotline_agent_calls_today(conn, null, b, l, ptr::null_mut()) }, Res::Ok);
    let mut monitor = 0u64;
    let queue = hotline_monitor_target::Queue as u32;
    let r = unsafe {
        hotline_monitor_snapshot(conn, queue, c("sales").as_ptr(), &mut monitor, b, l, ptr::null_mut())
    };
    assert_eq!(r, Res::Ok);
    assert_eq!(monitor, 8);
    assert_eq!(text(buf.as_ptr()).as_deref(), Some(r#"{"queues":[{"queue":"sales","waiting":[]}]}"#));
    assert_eq!(unsafe { hotline_monitor_stop(conn, monitor) }, Res::Ok);
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn p12_8_an_event_filter_delivers_only_the_kinds_asked_for() {
    let (port, t) = server(|p| {
        p.accept_login();
        // Sent only after the filter is set (the client pings first).
        let ping = p.recv();
        p.send(json!({"invoke": ping["invoke"], "result": {}}));
        p.send(json!({"event":"Stats","time":"t","queues":[]}));
        p.send(json!({"event":"Delivered","call":3,"alerting":"station:2001"}));
        p.send(json!({"event":"AgentState","agent":"1001","state":"ringing"}));
        p.send(json!({"event":"ScreenPop","call":3,"agent":"1001","station":"2001"}));
    });
    let conn = connect(port);
    let log = Log::leak();
    set_callback(conn, log);
    assert_eq!(login(conn), Res::Ok);
    let mask = (1u64 << K::Delivered as u32) | (1u64 << K::ScreenPop as u32);
    assert_eq!(unsafe { hotline_set_event_filter(conn, mask) }, Res::Ok);
    let mut buf = [0 as c_char; 64];
    let r = unsafe {
        hotline_request(conn, c("Ping").as_ptr(), ptr::null(), buf.as_mut_ptr(), 64, ptr::null_mut())
    };
    assert_eq!(r, Res::Ok);
    log.wait_for(K::Disconnected);
    let kinds: Vec<K> = log.events.lock().expect("lock").iter().map(|e| e.0).collect();
    assert_eq!(kinds, [K::Delivered, K::ScreenPop, K::Disconnected], "Disconnected always comes");
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn p12_8_poll_mode_delivers_events_only_in_dispatch_on_the_calling_thread() {
    let (port, t) = server(|p| {
        p.accept_login();
        for call in 1..=3 {
            p.send(json!({"event":"Delivered","call":call,"alerting":"station:2001"}));
        }
        p.wait_close();
    });
    let conn = connect(port);
    let log = Log::leak();
    set_callback(conn, log);
    let mut fd: std::ffi::c_int = -1;
    assert_eq!(unsafe { hotline_event_fd(conn, &mut fd) }, Res::Ok);
    assert!(fd >= 0);
    let mut again: std::ffi::c_int = -1;
    assert_eq!(unsafe { hotline_event_fd(conn, &mut again) }, Res::Ok);
    assert_eq!(fd, again, "the same descriptor");
    assert_eq!(login(conn), Res::Ok);
    // Nothing reaches the callback until dispatch is called.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = 0usize;
    while got < 3 {
        assert!(log.events.lock().expect("lock").len() == got, "an event came outside dispatch");
        let mut n = 0usize;
        assert_eq!(unsafe { hotline_dispatch(conn, 1, &mut n) }, Res::Ok);
        assert!(n <= 1);
        got += n;
        assert!(Instant::now() < deadline, "only {got} events dispatched");
        if n == 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    let calls: Vec<u64> = log.events.lock().expect("lock").iter().map(|e| e.1).collect();
    assert_eq!(calls, [1, 2, 3], "in order");
    assert_eq!(unsafe { hotline_disconnect(conn) }, Res::Ok);
    let mut n = 0usize;
    assert_eq!(unsafe { hotline_dispatch(conn, 0, &mut n) }, Res::Ok);
    assert_eq!(log.events.lock().expect("lock").last().map(|e| e.0), Some(K::Disconnected));
    assert_eq!(unsafe { hotline_dispatch(conn, 0, &mut n) }, Res::Closed, "after the last event");
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

#[test]
fn p12_8_reconnect_logs_in_again_and_makes_the_monitors_again() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let t = thread::spawn(move || {
        let accept = || {
            let (s, _) = listener.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            Peer { reader: BufReader::new(s.try_clone().expect("clone")), writer: s }
        };
        let mut first = accept();
        first.accept_login();
        let mon = first.recv();
        assert_eq!(mon["target"], json!({"agent":"1001"}));
        first.send(json!({"invoke": mon["invoke"], "result": {"monitor": 4, "snapshot": {}}}));
        drop(first); // the server goes away
        let mut second = accept();
        let login = second.recv();
        assert_eq!(
            (
                login["service"].as_str(),
                login["user"].as_str(),
                login["password"].as_str(),
                login["station"].as_str()
            ),
            (Some("Login"), Some("1001"), Some("secret"), Some("2001"))
        );
        second.send(
            json!({"invoke": login["invoke"], "result": {"role":"agent","agent":"1001","station":"2001"}}),
        );
        let mon = second.recv();
        assert_eq!((mon["service"].as_str(), &mon["target"]), (Some("Monitor"), &json!({"agent":"1001"})));
        second.send(json!({"invoke": mon["invoke"], "result": {"monitor": 9, "snapshot": {"calls": []}}}));
        let hold = second.recv();
        assert_eq!(hold["service"], "HoldCall");
        second.send(json!({"invoke": hold["invoke"], "result": {}}));
        second.wait_close();
    });
    let conn = connect(port);
    let log = Log::leak();
    set_callback(conn, log);
    assert_eq!(unsafe { hotline_set_reconnect(conn, 20) }, Res::Ok);
    assert_eq!(login(conn), Res::Ok);
    let mut monitor = 0u64;
    assert_eq!(unsafe { hotline_monitor(conn, 2, c("1001").as_ptr(), &mut monitor) }, Res::Ok);
    assert_eq!(monitor, 4);
    let (_, _, _, reason, _) = log.wait_for(K::Reconnecting);
    assert_eq!(reason.as_deref(), Some("closed by the server"));
    let (_, _, _, _, json) = log.wait_for(K::Reconnected);
    let v: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["monitors"][0]["monitor"], 9);
    assert_eq!(v["monitors"][0]["was"], 4);
    assert_eq!(v["monitors"][0]["snapshot"], json!({"calls": []}));
    assert_eq!(unsafe { hotline_hold(conn, 5, ptr::null()) }, Res::Ok, "usable again, defaults kept");
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}

/// Log lines received by [`log_line`] (the log callback is global to the library).
static LOGGED: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn log_line(_: *mut c_void, level: u32, message: *const c_char) {
    let text = text(message).unwrap_or_default();
    LOGGED.lock().unwrap_or_else(|e| e.into_inner()).push((level, text));
}

#[test]
fn p12_8_the_log_callback_hears_what_no_call_returns() {
    let (port, t) = server(|p| {
        p.accept_login();
        p.send_raw("p12-8 junk line nobody waits for");
        p.send(json!({"event":"AgentReady","agent":"1001","time":"2025-03-01T09:30:12.345Z"}));
        p.wait_close();
    });
    let debug = hotline::log::hotline_log_level::Debug as u32;
    assert_eq!(
        unsafe { hotline_set_log_callback(Some(log_line), ptr::null_mut(), 99) },
        Res::InvalidArgument
    );
    assert_eq!(unsafe { hotline_set_log_callback(Some(log_line), ptr::null_mut(), debug) }, Res::Ok);
    let conn = connect(port);
    let log = Log::leak();
    set_callback(conn, log);
    assert_eq!(login(conn), Res::Ok);
    log.wait_for(K::AgentReady);
    let lines = LOGGED.lock().expect("lock").clone();
    let warn = hotline::log::hotline_log_level::Warn as u32;
    assert!(
        lines.iter().any(|(l, m)| *l == warn && m.contains("server line 2") && m.contains(&port.to_string())),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|(_, m)| m.contains("send Login")), "debug lines too: {lines:#?}");
    assert_eq!(last_error(conn), "", "the junk line is the log's, not a call's");
    unsafe { hotline_free(conn) };
    t.join().expect("server script");
}
