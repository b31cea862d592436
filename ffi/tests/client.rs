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
    assert_eq!(login(conn), Res::Closed);
    let (_, _, _, reason, _) = log.wait_for(K::Disconnected);
    assert_eq!(reason.as_deref(), Some("closed by the server"));
    assert_eq!(log.events.lock().expect("lock").len(), 1, "the bad line is no event");
    assert_eq!(unsafe { hotline_hold(conn, 1, ptr::null()) }, Res::NotLoggedIn);
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
