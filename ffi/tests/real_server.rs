//! The C API against the real link server and engine on loopback (see tests/common):
//! what docs/protocol.md promises, seen through libhotline's functions and events.

mod common;

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use common::Center;
use hotline::ffi::*;
use hotline::{hotline_event, hotline_event_kind as K, hotline_result as Res};
use hotline_drivers::{ChannelId, EventKind};

#[derive(Clone, Debug)]
struct Seen {
    kind: K,
    call: u64,
    device: Option<String>,
    calling: Option<String>,
    called: Option<String>,
    access_number: Option<String>,
    state: Option<String>,
    reason: Option<String>,
    json: String,
}

#[derive(Default)]
struct Log {
    events: Mutex<Vec<Seen>>,
    changed: Condvar,
}

fn text(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

unsafe extern "C" fn record(user: *mut c_void, ev: *const hotline_event) {
    let (log, ev) = unsafe { (&*(user as *const Log), &*ev) };
    log.events.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
        kind: ev.kind,
        call: ev.call,
        device: text(ev.device),
        calling: text(ev.calling),
        called: text(ev.called),
        access_number: text(ev.access_number),
        state: text(ev.state),
        reason: text(ev.reason),
        json: text(ev.json).unwrap_or_default(),
    });
    log.changed.notify_all();
}

impl Log {
    /// The first event after `from` (an index) that `pred` accepts; its index and it.
    fn wait(&self, from: usize, what: &str, pred: impl Fn(&Seen) -> bool) -> (usize, Seen) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ev = self.events.lock().expect("lock");
        loop {
            if let Some((i, e)) = ev.iter().enumerate().skip(from).find(|(_, e)| pred(e)) {
                return (i + 1, e.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {what}; saw {:#?}", &ev[from.min(ev.len())..]);
            ev = self.changed.wait_timeout(ev, left).expect("lock").0;
        }
    }
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn last_error(conn: *mut hotline_conn) -> String {
    let mut buf = [0 as c_char; 256];
    unsafe { hotline_last_error(conn, buf.as_mut_ptr(), buf.len(), ptr::null_mut()) };
    text(buf.as_ptr()).unwrap_or_default()
}

#[test]
fn an_agent_on_the_c_api_takes_holds_and_clears_a_call_on_the_real_server() {
    let center = Center::start();
    let log: &'static Log = Box::leak(Box::default());
    let (host, mut conn) = (c("127.0.0.1"), ptr::null_mut());
    assert_eq!(unsafe { hotline_connect(host.as_ptr(), center.port, &mut conn) }, Res::Ok);
    let ud = log as *const Log as *mut c_void;
    assert_eq!(unsafe { hotline_set_callback(conn, Some(record), ud) }, Res::Ok);

    let (wrong, user, pass, ext) = (c("guess"), c("1001"), c("secret"), c("2001"));
    let r = unsafe { hotline_login(conn, user.as_ptr(), wrong.as_ptr(), ext.as_ptr()) };
    assert_eq!(r, Res::InvalidPassword);
    assert!(last_error(conn).starts_with("invalid_password"), "{}", last_error(conn));
    assert_eq!(unsafe { hotline_login(conn, user.as_ptr(), pass.as_ptr(), ext.as_ptr()) }, Res::Ok);
    let mut monitor = 0u64;
    let agent = hotline_monitor_target::Agent as u32;
    assert_eq!(unsafe { hotline_monitor(conn, agent, user.as_ptr(), &mut monitor) }, Res::Ok);
    assert!(monitor > 0, "the server names the monitor");
    let (nr, lunch) = (hotline_agent_state::NotReady as u32, c("lunch"));
    assert_eq!(unsafe { hotline_set_agent_state(conn, ptr::null(), nr, lunch.as_ptr()) }, Res::Ok);
    let (at, not_ready) = log.wait(0, "AgentNotReady", |e| e.kind == K::AgentNotReady);
    assert_eq!(not_ready.reason.as_deref(), Some("lunch"), "{}", not_ready.json);
    let ready = hotline_agent_state::Ready as u32;
    assert_eq!(unsafe { hotline_set_agent_state(conn, ptr::null(), ready, ptr::null()) }, Res::Ok);
    let (mut at, _) =
        log.wait(at, "AgentState ready", |e| e.kind == K::AgentState && e.state.as_deref() == Some("ready"));

    center.card(EventKind::OffHook { ch: ChannelId::fxs(1, 1) });
    center.card(EventKind::Offered {
        ch: ChannelId::e1(1, 1, 1),
        ani: Some("01066668888".into()),
        dnis: "4008001000".into(),
        category: Default::default(),
    });
    let (i, pop) = log.wait(at, "ScreenPop", |e| e.kind == K::ScreenPop);
    assert_eq!(pop.calling.as_deref(), Some("01066668888"));
    assert_eq!(pop.access_number.as_deref(), Some("4008001000"));
    assert_eq!(pop.device.as_deref(), Some("station:2001"));
    let call = pop.call;
    let (_, delivered) = log.wait(at, "Delivered", |e| e.kind == K::Delivered && e.call == call);
    assert_eq!(delivered.device.as_deref(), Some("station:2001"));
    assert_eq!(
        (delivered.calling.as_deref(), delivered.called.as_deref()),
        (Some("01066668888"), Some("4008001000"))
    );
    at = i;

    // An agent controls only its own station.
    let other = c("station:2002");
    assert_eq!(unsafe { hotline_answer(conn, call, other.as_ptr()) }, Res::PrivilegeViolation);
    assert!(last_error(conn).starts_with("privilege_violation"), "{}", last_error(conn));

    assert_eq!(unsafe { hotline_answer(conn, call, ptr::null()) }, Res::Ok);
    (at, _) = log.wait(at, "Established", |e| e.kind == K::Established && e.call == call);
    assert_eq!(unsafe { hotline_hold(conn, call, ptr::null()) }, Res::Ok);
    let (i, held) = log.wait(at, "Held", |e| e.kind == K::Held);
    assert_eq!((held.call, held.device.as_deref()), (call, Some("station:2001")));
    assert_eq!(unsafe { hotline_hold(conn, call, ptr::null()) }, Res::InvalidConnectionState);
    assert_eq!(unsafe { hotline_retrieve(conn, call, ptr::null()) }, Res::Ok);
    (at, _) = log.wait(i, "Retrieved", |e| e.kind == K::Retrieved && e.call == call);
    let digits = c("12#");
    assert_eq!(unsafe { hotline_send_digits(conn, call, ptr::null(), digits.as_ptr()) }, Res::Ok);

    // Anything else through the generic request: a snapshot of the call.
    let (snap, fields) = (c("SnapshotCall"), c(&format!("{{\"call\":{call}}}")));
    let mut buf = [0 as c_char; 512];
    let r = unsafe {
        hotline_request(conn, snap.as_ptr(), fields.as_ptr(), buf.as_mut_ptr(), 512, ptr::null_mut())
    };
    assert_eq!(r, Res::Ok);
    let snapshot = text(buf.as_ptr()).unwrap_or_default();
    assert!(snapshot.contains("\"station:2001\"") && snapshot.contains("connected"), "{snapshot}");

    assert_eq!(unsafe { hotline_hangup(conn, call, ptr::null()) }, Res::Ok);
    let (_, cleared) =
        log.wait(at, "ConnectionCleared", |e| e.kind == K::ConnectionCleared && e.call == call);
    assert_eq!(cleared.device.as_deref(), Some("station:2001"));
    assert!(
        cleared.reason.as_deref().is_some_and(|r| r.parse::<u32>().is_ok()),
        "a Q.850 number: {cleared:?}"
    );
    // The call has ended: no such call in progress.
    assert_eq!(unsafe { hotline_answer(conn, call, ptr::null()) }, Res::InvalidCallId);

    assert_eq!(unsafe { hotline_logout(conn) }, Res::Ok);
    assert_eq!(unsafe { hotline_answer(conn, call, ptr::null()) }, Res::NotLoggedIn);
    assert_eq!(unsafe { hotline_free(conn) }, Res::Ok);
}

fn connect_and_login(center: &Center) -> *mut hotline_conn {
    let (host, mut conn) = (c("127.0.0.1"), ptr::null_mut());
    assert_eq!(unsafe { hotline_connect(host.as_ptr(), center.port, &mut conn) }, Res::Ok);
    let (user, pass, ext) = (c("1001"), c("secret"), c("2001"));
    assert_eq!(unsafe { hotline_login(conn, user.as_ptr(), pass.as_ptr(), ext.as_ptr()) }, Res::Ok);
    conn
}

#[test]
fn p12_7_on_the_real_server_codes_match_the_doc_and_a_too_large_request_fails_at_once() {
    let center = Center::start_with(Some(1024));
    let conn = connect_and_login(&center);
    // A long timeout: a Timeout would mean a reply was missed.
    assert_eq!(unsafe { hotline_set_timeout(conn, 60_000) }, Res::Ok);
    // An unknown call, as docs/c-api.md says: every service naming it gets
    // invalid_call_id (301).
    assert_eq!(unsafe { hotline_clear_call(conn, 999) }, Res::InvalidCallId, "{}", last_error(conn));
    assert_eq!(Res::InvalidCallId as u32, 301);
    assert!(last_error(conn).starts_with("invalid_call_id"), "{}", last_error(conn));
    let mut snap = [0 as c_char; 64];
    let r = unsafe { hotline_snapshot_call(conn, 999, snap.as_mut_ptr(), 64, ptr::null_mut()) };
    assert_eq!(r, Res::InvalidCallId, "{}", last_error(conn));
    let r = unsafe { hotline_answer(conn, 999, ptr::null()) };
    assert_eq!(r, Res::InvalidCallId, "{}", last_error(conn));
    // An unknown service: malformed, 312.
    let mut buf = [0 as c_char; 256];
    let r = unsafe {
        hotline_request(
            conn,
            c("NoSuchService").as_ptr(),
            ptr::null(),
            buf.as_mut_ptr(),
            256,
            ptr::null_mut(),
        )
    };
    assert_eq!(r, Res::MalformedRequest, "{}", last_error(conn));
    // Over the server's max_message (1024 here): refused as too large, Protocol at once.
    let value = c(&"x".repeat(2000));
    let r = unsafe { hotline_set_call_data(conn, 999, c("note").as_ptr(), value.as_ptr()) };
    assert_eq!(r, Res::Protocol, "{}", last_error(conn));
    assert!(last_error(conn).contains("message_too_large"), "{}", last_error(conn));
    // The connection carries on.
    let r = unsafe {
        hotline_request(conn, c("Ping").as_ptr(), ptr::null(), buf.as_mut_ptr(), 256, ptr::null_mut())
    };
    assert_eq!(r, Res::Ok);
    // The server goes away: Closed from then on, also where a default needs the login.
    let log: &'static Log = Box::leak(Box::default());
    assert_eq!(
        unsafe { hotline_set_callback(conn, Some(record), log as *const Log as *mut c_void) },
        Res::Ok
    );
    drop(center);
    log.wait(0, "Disconnected", |e| e.kind == K::Disconnected);
    assert_eq!(unsafe { hotline_hold(conn, 1, ptr::null()) }, Res::Closed);
    assert_eq!(unsafe { hotline_set_agent_state(conn, ptr::null(), 1, ptr::null()) }, Res::Closed);
    assert_eq!(unsafe { hotline_logout(conn) }, Res::Closed);
    assert_eq!(unsafe { hotline_free(conn) }, Res::Ok);
}

#[test]
fn p12_8_a_crm_attaches_data_snapshots_and_clears_a_call_on_the_real_server() {
    let center = Center::start();
    let log: &'static Log = Box::leak(Box::default());
    let conn = connect_and_login(&center);
    assert_eq!(
        unsafe { hotline_set_callback(conn, Some(record), log as *const Log as *mut c_void) },
        Res::Ok
    );
    let mut buf = vec![0 as c_char; 4096];
    let (mut monitor, mut n) = (0u64, 0usize);
    let agent = hotline_monitor_target::Agent as u32;
    let r = unsafe {
        hotline_monitor_snapshot(
            conn,
            agent,
            c("1001").as_ptr(),
            &mut monitor,
            buf.as_mut_ptr(),
            4096,
            &mut n,
        )
    };
    assert_eq!(r, Res::Ok, "{}", last_error(conn));
    let snapshot: serde_json::Value =
        serde_json::from_str(&text(buf.as_ptr()).unwrap_or_default()).expect("JSON");
    assert!(snapshot.get("calls").is_some() && snapshot.get("agents").is_some(), "{snapshot}");
    assert!(monitor > 0);
    let (nr, lunch) = (hotline_agent_state::NotReady as u32, c("lunch"));
    assert_eq!(unsafe { hotline_set_agent_state(conn, ptr::null(), nr, lunch.as_ptr()) }, Res::Ok);
    let (at, _) = log.wait(0, "AgentNotReady", |e| e.kind == K::AgentNotReady);
    let ready = hotline_agent_state::Ready as u32;
    assert_eq!(unsafe { hotline_set_agent_state(conn, ptr::null(), ready, ptr::null()) }, Res::Ok);
    let (at, _) =
        log.wait(at, "AgentState ready", |e| e.kind == K::AgentState && e.state.as_deref() == Some("ready"));

    center.card(EventKind::OffHook { ch: ChannelId::fxs(1, 1) });
    center.card(EventKind::Offered {
        ch: ChannelId::e1(1, 1, 1),
        ani: Some("01066668888".into()),
        dnis: "4008001000".into(),
        category: Default::default(),
    });
    let (at, pop) = log.wait(at, "ScreenPop", |e| e.kind == K::ScreenPop);
    let call = pop.call;
    assert_eq!(unsafe { hotline_answer(conn, call, ptr::null()) }, Res::Ok, "{}", last_error(conn));
    let (at, _) = log.wait(at, "Established", |e| e.kind == K::Established && e.call == call);

    let (key, value) = (c("order"), c("A-778"));
    assert_eq!(
        unsafe { hotline_set_call_data(conn, call, key.as_ptr(), value.as_ptr()) },
        Res::Ok,
        "{}",
        last_error(conn)
    );
    assert_eq!(unsafe { hotline_snapshot_call(conn, call, buf.as_mut_ptr(), 4096, &mut n) }, Res::Ok);
    let snap = text(buf.as_ptr()).unwrap_or_default();
    assert!(snap.contains("\"order\":\"A-778\""), "{snap}");
    assert_eq!(
        unsafe { hotline_snapshot_device(conn, ptr::null(), buf.as_mut_ptr(), 4096, &mut n) },
        Res::Ok
    );
    let dev = text(buf.as_ptr()).unwrap_or_default();
    assert!(dev.contains(&format!("\"call\":{call}")), "{dev}");
    assert_eq!(
        unsafe { hotline_get_agent_state(conn, ptr::null(), buf.as_mut_ptr(), 4096, &mut n) },
        Res::Ok
    );
    let state = text(buf.as_ptr()).unwrap_or_default();
    assert!(state.contains("\"agent\":\"1001\""), "{state}");
    let mut small = [0 as c_char; 8];
    let r = unsafe { hotline_snapshot_call(conn, call, small.as_mut_ptr(), small.len(), &mut n) };
    assert_eq!(r, Res::BufferTooSmall);
    assert_eq!(n, snap.len(), "the full length");

    assert_eq!(unsafe { hotline_clear_call(conn, call) }, Res::Ok, "{}", last_error(conn));
    log.wait(at, "CallCleared", |e| e.kind == K::CallCleared && e.call == call);
    assert_eq!(unsafe { hotline_monitor_stop(conn, monitor) }, Res::Ok);
    assert_eq!(unsafe { hotline_monitor_stop(conn, monitor) }, Res::UnknownMonitor);
    assert_eq!(unsafe { hotline_free(conn) }, Res::Ok);
}
