//! The exported C functions. Every one runs its body under `catch_unwind` (no panic
//! crosses into C), checks each pointer before use (NULL is refused with
//! `NullParameter`), and finds its connection through a registry of live handles, so a
//! freed handle is refused with `InvalidHandle` instead of being dereferenced.
//!
//! A `hotline_conn *` is a token, never a real address: the registry maps it to the
//! connection, and tokens are never reused, so even a long-freed handle is recognised.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::client::{Client, DEFAULT_TIMEOUT};
use crate::error::hotline_result;
use crate::event::hotline_event;

/// A connection to a link server. Opaque: only ever used through a pointer from
/// `hotline_connect`, released with `hotline_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct hotline_conn {
    _private: [u8; 0],
}

/// The event callback: called on the connection's callback thread with the
/// `user_data` given to `hotline_set_callback` and an event valid during the call only.
#[allow(non_camel_case_types)]
pub type hotline_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const hotline_event)>;

/// The states `hotline_set_agent_state` can request (passed as a `uint32_t`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum hotline_agent_state {
    /// Ready for calls.
    Ready = 1,
    /// Not ready, with a reason ("lunch", "training").
    NotReady = 2,
    /// Log out.
    LoggedOut = 3,
}

/// What `hotline_monitor` subscribes to (passed as a `uint32_t`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum hotline_monitor_target {
    /// A device, by name ("station:2001", "queue:sales", "trunk:1/1/5").
    Device = 1,
    /// An agent, by id.
    Agent = 2,
    /// A queue, by name.
    Queue = 3,
    /// Everything (supervisors); the name is ignored and may be NULL.
    All = 4,
}

struct Registry {
    next: usize,
    live: HashMap<usize, Arc<Client>>,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Registry { next: 1, live: HashMap::new() }))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

type R<T> = Result<T, hotline_result>;

/// Run an entry point's body; a panic becomes `Panic`.
fn guard(f: impl FnOnce() -> R<()>) -> hotline_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => hotline_result::Ok,
        Ok(Err(code)) => code,
        Err(_) => hotline_result::Panic,
    }
}

fn conn(handle: *const hotline_conn) -> R<Arc<Client>> {
    if handle.is_null() {
        return Err(hotline_result::NullParameter);
    }
    registry().live.get(&(handle as usize)).cloned().ok_or(hotline_result::InvalidHandle)
}

/// A required string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
unsafe fn text<'a>(p: *const c_char) -> R<&'a str> {
    if p.is_null() {
        return Err(hotline_result::NullParameter);
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| hotline_result::InvalidUtf8)
}

/// An optional string argument: NULL is `None`.
///
/// # Safety
/// As for [`text`].
unsafe fn opt_text<'a>(p: *const c_char) -> R<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { text(p) }.map(Some)
    }
}

/// The device argument, or the logged-in station when NULL.
///
/// # Safety
/// As for [`text`].
unsafe fn device_or_own(c: &Client, p: *const c_char) -> R<String> {
    // SAFETY: forwarded from the caller.
    match unsafe { opt_text(p) }? {
        Some("") => Err(hotline_result::InvalidArgument),
        Some(d) => Ok(d.to_owned()),
        None => c.own_device().map_err(|e| e.code),
    }
}

fn call_id(call: u64) -> R<Value> {
    if call == 0 {
        Err(hotline_result::InvalidArgument)
    } else {
        Ok(Value::from(call))
    }
}

fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn request(c: &Client, service: &str, f: Map<String, Value>) -> R<Value> {
    c.request(service, f).map_err(|e| e.code)
}

/// Write `s` and a NUL into `buf` (`len` bytes), truncating; `*out_n` (if not NULL)
/// gets the full length of `s` without the NUL.
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes; `out_n` is NULL or writable.
unsafe fn write_text(s: &str, buf: *mut c_char, len: usize, out_n: *mut usize) -> R<()> {
    if buf.is_null() {
        return Err(hotline_result::NullParameter);
    }
    if len == 0 {
        return Err(hotline_result::BufferTooSmall);
    }
    let n = s.len().min(len - 1);
    // SAFETY: buf is writable for len bytes and n + 1 <= len.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
    if !out_n.is_null() {
        // SAFETY: checked non-NULL; the caller promises it is writable.
        unsafe { *out_n = s.len() };
    }
    if n < s.len() {
        Err(hotline_result::BufferTooSmall)
    } else {
        Ok(())
    }
}

/// Write a number to an optional output.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn put<T>(out: *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: checked non-NULL; the caller promises it is writable.
        unsafe { *out = v };
    }
}

/// The version of libhotline, a static NUL-terminated string (never free it).
#[no_mangle]
pub extern "C" fn hotline_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Write the message for result `code` (any number) into `buf` as a NUL-terminated
/// string of at most `len` bytes. Returns the message's full length without the NUL,
/// like `snprintf`: a return value >= `len` means it was truncated. `buf` may be NULL
/// when `len` is 0 (to ask for the length). Never fails.
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn hotline_result_message(code: u32, buf: *mut c_char, len: usize) -> usize {
    catch_unwind(|| {
        let msg = match hotline_result::from_u32(code) {
            Some(r) => r.message().to_owned(),
            None => format!("unknown hotline_result {code}"),
        };
        if !buf.is_null() && len > 0 {
            // SAFETY: forwarded from the caller; truncation is reported by the length.
            let _ = unsafe { write_text(&msg, buf, len, std::ptr::null_mut()) };
        }
        msg.len()
    })
    .unwrap_or(0)
}

/// Connect to a link server at `host` (name or address) and TCP `port`. On success
/// `*out_conn` gets a handle to release with `hotline_free`; on failure it is not
/// written.
///
/// # Safety
/// `host` is a NUL-terminated string; `out_conn` is writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_connect(
    host: *const c_char,
    port: u16,
    out_conn: *mut *mut hotline_conn,
) -> hotline_result {
    guard(|| {
        // SAFETY: the caller's promise.
        let host = unsafe { text(host) }?;
        if out_conn.is_null() {
            return Err(hotline_result::NullParameter);
        }
        if port == 0 {
            return Err(hotline_result::InvalidArgument);
        }
        let client = Client::connect(host, port, DEFAULT_TIMEOUT).map_err(|e| e.code)?;
        let mut reg = registry();
        let id = reg.next;
        reg.next += 1;
        reg.live.insert(id, Arc::new(client));
        // SAFETY: checked non-NULL above.
        unsafe { *out_conn = id as *mut hotline_conn };
        Ok(())
    })
}

/// Close the connection: pending requests fail with `Closed`, the callback gets a last
/// `Disconnected` event, and later requests fail with `Closed`. When called from
/// outside the callback it returns after the last callback has returned. The handle
/// stays valid until `hotline_free`.
///
/// # Safety
/// `conn` is NULL or a handle (stale handles are refused).
#[no_mangle]
pub unsafe extern "C" fn hotline_disconnect(conn: *mut hotline_conn) -> hotline_result {
    guard(|| {
        self::conn(conn)?.disconnect();
        Ok(())
    })
}

/// Disconnect (if still connected) and release the handle; afterwards any use of it
/// is refused with `InvalidHandle`.
///
/// # Safety
/// `conn` is NULL or a handle (stale handles are refused).
#[no_mangle]
pub unsafe extern "C" fn hotline_free(conn: *mut hotline_conn) -> hotline_result {
    guard(|| {
        if conn.is_null() {
            return Err(hotline_result::NullParameter);
        }
        let client = registry().live.remove(&(conn as usize)).ok_or(hotline_result::InvalidHandle)?;
        // Explicitly, as another thread may still hold the connection in a request.
        client.disconnect();
        Ok(())
    })
}

/// Set (or with `cb` NULL, remove) the event callback. It is called on the
/// connection's callback thread; `user_data` is passed through untouched. A callback
/// already running finishes; later events go to the new one.
///
/// # Safety
/// `conn` is NULL or a handle; `cb` is NULL or a function that stays callable, with
/// `user_data`, until it is replaced or the connection is freed.
#[no_mangle]
pub unsafe extern "C" fn hotline_set_callback(
    conn: *mut hotline_conn,
    cb: hotline_callback,
    user_data: *mut c_void,
) -> hotline_result {
    struct UserData(*mut c_void);
    // SAFETY: the C caller hands user_data to the callback thread by calling this; the
    // library only passes the pointer back, never dereferences it.
    unsafe impl Send for UserData {}
    // SAFETY: as above; the pointer is only copied.
    unsafe impl Sync for UserData {}
    impl UserData {
        // A method, so that the closure captures the whole (Send) wrapper, not the field.
        fn ptr(&self) -> *mut c_void {
            self.0
        }
    }
    guard(|| {
        let c = self::conn(conn)?;
        let cb = cb.map(|f| {
            let ud = UserData(user_data);
            let call: crate::client::Callback = Arc::new(move |ev| {
                let view = ev.as_c();
                // SAFETY: the C caller's promise; `view` borrows `ev`, alive for the call.
                unsafe { f(ud.ptr(), &view) }
            });
            call
        });
        c.set_callback(cb);
        Ok(())
    })
}

/// Set how long requests on this connection wait for their reply (default 5000 ms).
///
/// # Safety
/// `conn` is NULL or a handle.
#[no_mangle]
pub unsafe extern "C" fn hotline_set_timeout(conn: *mut hotline_conn, timeout_ms: u32) -> hotline_result {
    guard(|| {
        if timeout_ms == 0 {
            return Err(hotline_result::InvalidArgument);
        }
        self::conn(conn)?.set_timeout(Duration::from_millis(timeout_ms.into()));
        Ok(())
    })
}

/// Copy the text of the last failed request on this connection (the server's error
/// code and message, or what went wrong locally) into `buf`; "" if none failed.
/// `*out_n` (may be NULL) gets the full length. `BufferTooSmall` if truncated.
///
/// # Safety
/// `conn` is NULL or a handle; `buf` writable for `len` bytes; `out_n` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_last_error(
    conn: *mut hotline_conn,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> hotline_result {
    guard(|| {
        let text = self::conn(conn)?.last_error();
        // SAFETY: the caller's promise.
        unsafe { write_text(&text, buf, len, out_n) }
    })
}

/// Log in as `user` with `password`, at `station` (an extension; NULL for a supervisor
/// who only watches). The agent and station become the defaults for later calls that
/// pass NULL.
///
/// # Safety
/// `conn` is NULL or a handle; the strings are NUL-terminated (station may be NULL).
#[no_mangle]
pub unsafe extern "C" fn hotline_login(
    conn: *mut hotline_conn,
    user: *const c_char,
    password: *const c_char,
    station: *const c_char,
) -> hotline_result {
    guard(|| {
        let c = self::conn(conn)?;
        // SAFETY: the caller's promise, for each string.
        let (user, password, station) = unsafe { (text(user)?, text(password)?, opt_text(station)?) };
        c.login(user, password, station).map(drop).map_err(|e| e.code)
    })
}

/// End the session: the server logs the agent out at the engine and stops this
/// connection's monitors. The connection stays open (log in again, or free it).
///
/// # Safety
/// `conn` is NULL or a handle.
#[no_mangle]
pub unsafe extern "C" fn hotline_logout(conn: *mut hotline_conn) -> hotline_result {
    guard(|| self::conn(conn)?.logout().map_err(|e| e.code))
}

/// Request an agent state: `state` is a `hotline_agent_state`; `reason` is used for
/// not ready (may be NULL); `agent` NULL means the logged-in agent.
///
/// # Safety
/// `conn` is NULL or a handle; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_set_agent_state(
    conn: *mut hotline_conn,
    agent: *const c_char,
    state: u32,
    reason: *const c_char,
) -> hotline_result {
    guard(|| {
        let c = self::conn(conn)?;
        let state = match state {
            1 => "ready",
            2 => "not_ready",
            3 => "logged_out",
            _ => return Err(hotline_result::InvalidArgument),
        };
        // SAFETY: the caller's promise.
        let (agent, reason) = unsafe { (opt_text(agent)?, opt_text(reason)?) };
        let agent = match agent {
            Some(a) => a.to_owned(),
            None => c.own_agent().map_err(|e| e.code)?,
        };
        let mut f = fields([("agent", agent.into()), ("state", state.into())]);
        if let Some(r) = reason {
            f.insert("reason".into(), r.into());
        }
        request(&c, "SetAgentState", f).map(drop)
    })
}

/// One call, one device: the shape of AnswerCall, ClearConnection, HoldCall, RetrieveCall.
///
/// # Safety
/// As for the exported functions that call it.
unsafe fn call_at_device(
    conn: *mut hotline_conn,
    service: &str,
    call: u64,
    device: *const c_char,
) -> hotline_result {
    guard(|| {
        let c = self::conn(conn)?;
        // SAFETY: forwarded from the caller.
        let device = unsafe { device_or_own(&c, device) }?;
        request(&c, service, fields([("call", call_id(call)?), ("device", device.into())])).map(drop)
    })
}

/// Answer `call` alerting at `device` (NULL: the logged-in station). CSTA AnswerCall.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_answer(
    conn: *mut hotline_conn,
    call: u64,
    device: *const c_char,
) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { call_at_device(conn, "AnswerCall", call, device) }
}

/// Hang up: clear `device`'s connection to `call` (NULL: the logged-in station).
/// CSTA ClearConnection.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_hangup(
    conn: *mut hotline_conn,
    call: u64,
    device: *const c_char,
) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { call_at_device(conn, "ClearConnection", call, device) }
}

/// Put `call` on hold at `device` (NULL: the logged-in station). CSTA HoldCall.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_hold(
    conn: *mut hotline_conn,
    call: u64,
    device: *const c_char,
) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { call_at_device(conn, "HoldCall", call, device) }
}

/// Take `call` back from hold at `device` (NULL: the logged-in station). CSTA RetrieveCall.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_retrieve(
    conn: *mut hotline_conn,
    call: u64,
    device: *const c_char,
) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { call_at_device(conn, "RetrieveCall", call, device) }
}

/// Send `call` from `device` (NULL: the logged-in station) to `to` (an extension, a
/// queue number or an external number) without consulting. CSTA SingleStepTransferCall.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated; `to` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_transfer_single_step(
    conn: *mut hotline_conn,
    call: u64,
    device: *const c_char,
    to: *const c_char,
) -> hotline_result {
    guard(|| {
        let c = self::conn(conn)?;
        // SAFETY: the caller's promise.
        let (device, to) = unsafe { (device_or_own(&c, device)?, text(to)?) };
        let f = fields([("call", call_id(call)?), ("device", device.into()), ("to", to.into())]);
        request(&c, "SingleStepTransferCall", f).map(drop)
    })
}

/// The call id in a result (`{"call": 13}` or a bare number).
fn result_call(v: &Value) -> R<u64> {
    v.get("call").and_then(Value::as_u64).or_else(|| v.as_u64()).ok_or(hotline_result::Protocol)
}

/// Hold `held` at `device` (NULL: the logged-in station) and call `called`. On success
/// `*out_call` (may be NULL) gets the new consultation call. CSTA ConsultationCall.
///
/// # Safety
/// `conn` is NULL or a handle; strings as documented; `out_call` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_consult(
    conn: *mut hotline_conn,
    held: u64,
    device: *const c_char,
    called: *const c_char,
    out_call: *mut u64,
) -> hotline_result {
    guard(|| {
        let c = self::conn(conn)?;
        // SAFETY: the caller's promise.
        let (device, called) = unsafe { (device_or_own(&c, device)?, text(called)?) };
        let f = fields([("held", call_id(held)?), ("device", device.into()), ("called", called.into())]);
        let call = result_call(&request(&c, "ConsultationCall", f)?)?;
        // SAFETY: the caller's promise.
        unsafe { put(out_call, call) };
        Ok(())
    })
}

/// Two calls at one device: TransferCall and ConferenceCall.
///
/// # Safety
/// As for the exported functions that call it.
unsafe fn two_calls(
    conn: *mut hotline_conn,
    service: &str,
    held: u64,
    active: u64,
    device: *const c_char,
) -> hotline_result {
    guard(|| {
        let c = self::conn(conn)?;
        // SAFETY: forwarded from the caller.
        let device = unsafe { device_or_own(&c, device) }?;
        let f = fields([("held", call_id(held)?), ("active", call_id(active)?), ("device", device.into())]);
        request(&c, service, f).map(drop)
    })
}

/// Complete a consultation: join the `held` call's other party with the `active`
/// call's and drop `device` (NULL: the logged-in station). CSTA TransferCall.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_transfer(
    conn: *mut hotline_conn,
    held: u64,
    active: u64,
    device: *const c_char,
) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { two_calls(conn, "TransferCall", held, active, device) }
}

/// Join the `held` call into the `active` one: a conference of everyone.
/// CSTA ConferenceCall.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_conference(
    conn: *mut hotline_conn,
    held: u64,
    active: u64,
    device: *const c_char,
) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { two_calls(conn, "ConferenceCall", held, active, device) }
}

/// Send DTMF `digits` (0-9, *, #, A-D) from `device` (NULL: the logged-in station)
/// into `call`. CSTA GenerateDigits.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated; `digits` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_send_digits(
    conn: *mut hotline_conn,
    call: u64,
    device: *const c_char,
    digits: *const c_char,
) -> hotline_result {
    guard(|| {
        let c = self::conn(conn)?;
        // SAFETY: the caller's promise.
        let (device, digits) = unsafe { (device_or_own(&c, device)?, text(digits)?) };
        if digits.is_empty() || !digits.bytes().all(|b| b"0123456789*#ABCDabcd".contains(&b)) {
            return Err(hotline_result::InvalidArgument);
        }
        let f = fields([("call", call_id(call)?), ("device", device.into()), ("digits", digits.into())]);
        request(&c, "GenerateDigits", f).map(drop)
    })
}

/// Call `called` from the station `calling` (NULL: the logged-in station's
/// extension). On success `*out_call` (may be NULL) gets the new call. CSTA MakeCall.
///
/// # Safety
/// `conn` is NULL or a handle; strings as documented; `out_call` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_make_call(
    conn: *mut hotline_conn,
    calling: *const c_char,
    called: *const c_char,
    out_call: *mut u64,
) -> hotline_result {
    guard(|| {
        let c = self::conn(conn)?;
        // SAFETY: the caller's promise.
        let (calling, called) = unsafe { (opt_text(calling)?, text(called)?) };
        let calling = match calling {
            Some(s) => s.to_owned(),
            None => c.session().and_then(|s| s.station).ok_or(hotline_result::NotLoggedIn)?,
        };
        let f = fields([("calling", calling.into()), ("called", called.into())]);
        let call = result_call(&request(&c, "MakeCall", f)?)?;
        // SAFETY: the caller's promise.
        unsafe { put(out_call, call) };
        Ok(())
    })
}

/// Subscribe to events: `target` is a `hotline_monitor_target`, `name` the device,
/// agent or queue (ignored for All). On success `*out_monitor` (may be NULL) gets the
/// monitor id the server put in the result (0 if it gave none). Events then arrive at
/// the callback.
///
/// # Safety
/// `conn` is NULL or a handle; `name` NULL or NUL-terminated; `out_monitor` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_monitor(
    conn: *mut hotline_conn,
    target: u32,
    name: *const c_char,
    out_monitor: *mut u64,
) -> hotline_result {
    guard(|| {
        let c = self::conn(conn)?;
        let key = match target {
            1 => "device",
            2 => "agent",
            3 => "queue",
            4 => "all",
            _ => return Err(hotline_result::InvalidArgument),
        };
        let target = if key == "all" {
            Value::from("all")
        } else {
            // SAFETY: the caller's promise.
            let name = unsafe { text(name) }?;
            if name.is_empty() {
                return Err(hotline_result::InvalidArgument);
            }
            Value::Object(fields([(key, name.into())]))
        };
        let result = request(&c, "Monitor", fields([("target", target)]))?;
        let id = result.get("monitor").and_then(Value::as_u64).or_else(|| result.as_u64()).unwrap_or(0);
        // SAFETY: the caller's promise.
        unsafe { put(out_monitor, id) };
        Ok(())
    })
}

/// Any service by its CSTA name, for what has no function of its own:
/// `fields_json` is a JSON object with the service's fields (NULL: none), and the
/// reply's `result` is written into `buf` as JSON (`*out_n`, may be NULL, gets its
/// full length; `BufferTooSmall` when truncated, the request itself succeeded).
///
/// # Safety
/// `conn` is NULL or a handle; strings NUL-terminated (`fields_json` may be NULL);
/// `buf` writable for `len` bytes; `out_n` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_request(
    conn: *mut hotline_conn,
    service: *const c_char,
    fields_json: *const c_char,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> hotline_result {
    guard(|| {
        let c = self::conn(conn)?;
        // SAFETY: the caller's promise.
        let (service, json) = unsafe { (text(service)?, opt_text(fields_json)?) };
        if buf.is_null() {
            return Err(hotline_result::NullParameter);
        }
        if service.is_empty() {
            return Err(hotline_result::InvalidArgument);
        }
        let refuse = |text: String| {
            c.set_last_error(text);
            Err(hotline_result::InvalidArgument)
        };
        let f = match json.map(serde_json::from_str::<Value>) {
            None => Map::new(),
            Some(Ok(Value::Object(m))) => m,
            Some(Ok(_)) => return refuse("fields_json: expected a JSON object".into()),
            // serde_json's message ends with "at line L column C".
            Some(Err(e)) => return refuse(format!("fields_json: {e}")),
        };
        if f.contains_key("invoke") || f.contains_key("service") {
            return refuse("fields_json: \"invoke\" and \"service\" are set by the library".into());
        }
        let result = request(&c, service, f)?;
        // SAFETY: the caller's promise.
        unsafe { write_text(&result.to_string(), buf, len, out_n) }
    })
}
