//! The exported C functions. Every one runs its body under `catch_unwind` (no panic
//! crosses into C), checks each pointer before use (NULL is refused with
//! `NullParameter`), checks every argument's content before anything is sent, and
//! finds its connection through a registry of live handles, so a freed handle is
//! refused with `InvalidHandle` instead of being dereferenced.
//!
//! A `hotline_conn *` is a token, never a real address: the registry maps it to the
//! connection, and tokens are never reused, so even a long-freed handle is recognised.
//!
//! Order of the checks, the same in every function: the handle; each pointer and
//! string argument (NULL, UTF-8, content); then a closed connection (`Closed`); then
//! the defaults that need a login (`NotLoggedIn`); only then is a request sent.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::client::{Client, DEFAULT_TIMEOUT};
use crate::error::{hotline_result, Error};
use crate::event::hotline_event;
use crate::log::{self, hotline_log_level};

/// The ABI version of this header and library. It changes when a function, type or
/// value of the header changes incompatibly (additions do not change it). Compare it
/// with `hotline_abi_version()` at start-up.
pub const HOTLINE_ABI_VERSION: u32 = 1;
/// The longest name argument in bytes (user, station, device, agent, queue, number,
/// digits, key, service name).
pub const HOTLINE_MAX_NAME: usize = 256;
/// The longest text argument in bytes (password, not-ready reason, call data value).
pub const HOTLINE_MAX_TEXT: usize = 4096;
/// The longest request line the library sends, in bytes (the link's default
/// `max_message`); `hotline_request` with more is refused before sending.
pub const HOTLINE_MAX_REQUEST: usize = 65536;
/// `hotline_set_event_filter` mask that lets every event through (the default).
pub const HOTLINE_EVENTS_ALL: u64 = u64::MAX;

/// A connection to a link server. Opaque: only ever used through a pointer from
/// `hotline_connect`, released with `hotline_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct hotline_conn {
    _private: [u8; 0],
}

/// The event callback: called on the connection's callback thread (or, in poll mode,
/// in `hotline_dispatch`) with the `user_data` given to `hotline_set_callback` and an
/// event valid during the call only.
#[allow(non_camel_case_types)]
pub type hotline_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const hotline_event)>;

/// The log callback: `level` is a `hotline_log_level`, `message` a NUL-terminated
/// UTF-8 line valid during the call only. Called from any library thread.
#[allow(non_camel_case_types)]
pub type hotline_log_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: u32, message: *const c_char)>;

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

/// How `hotline_supervise` joins an agent's call (passed as a `uint32_t`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum hotline_supervision_mode {
    /// Listen only.
    Monitor = 1,
    /// The agent hears the supervisor, the caller does not.
    Whisper = 2,
    /// A three-way call.
    Barge = 3,
    /// The supervisor takes the call over; the agent drops.
    Intercept = 4,
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

type R<T> = Result<T, Error>;

fn err(code: hotline_result, text: impl Into<String>) -> Error {
    Error::new(code, text)
}

fn bad(text: impl Into<String>) -> Error {
    err(hotline_result::InvalidArgument, text)
}

/// Run an entry point's body; a panic becomes `Panic`. A failure's text becomes the
/// connection's last error (when the handle is one), so `hotline_last_error` always
/// tells about the call that failed last.
fn guard(handle: *const hotline_conn, f: impl FnOnce() -> R<()>) -> hotline_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => hotline_result::Ok,
        Ok(Err(e)) => {
            if let Ok(c) = lookup(handle) {
                if !e.message.is_empty() && c.last_error() != e.message {
                    c.set_last_error(e.message);
                }
            }
            e.code
        }
        Err(_) => hotline_result::Panic,
    }
}

fn lookup(handle: *const hotline_conn) -> R<Arc<Client>> {
    if handle.is_null() {
        return Err(err(hotline_result::NullParameter, "conn is NULL"));
    }
    registry()
        .live
        .get(&(handle as usize))
        .cloned()
        .ok_or_else(|| err(hotline_result::InvalidHandle, "not a live handle"))
}

/// The connection, refused when it is closed (for functions that send).
fn open(c: &Client) -> R<()> {
    if c.is_closed() {
        Err(c.closed_error())
    } else {
        Ok(())
    }
}

/// A required string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
unsafe fn text<'a>(p: *const c_char, what: &str) -> R<&'a str> {
    if p.is_null() {
        return Err(err(hotline_result::NullParameter, format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|e| {
        err(hotline_result::InvalidUtf8, format!("{what} is not valid UTF-8 (at byte {})", e.valid_up_to()))
    })
}

/// An optional string argument: NULL is `None`.
///
/// # Safety
/// As for [`text`].
unsafe fn opt_text<'a>(p: *const c_char, what: &str) -> R<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { text(p, what) }.map(Some)
    }
}

/// A name (user, station, agent, queue, number, key): not empty, at most
/// HOTLINE_MAX_NAME bytes, no control characters.
fn name<'a>(s: &'a str, what: &str) -> R<&'a str> {
    if s.is_empty() {
        return Err(bad(format!("{what} is empty")));
    }
    if s.len() > HOTLINE_MAX_NAME {
        return Err(bad(format!("{what} is {} bytes long; at most {HOTLINE_MAX_NAME}", s.len())));
    }
    if let Some(i) = s.bytes().position(|b| b.is_ascii_control()) {
        return Err(bad(format!("{what} has a control character at byte {i}")));
    }
    Ok(s)
}

/// A text (password, reason, call data value): not empty, at most HOTLINE_MAX_TEXT
/// bytes, no control characters but tab.
fn free_text<'a>(s: &'a str, what: &str) -> R<&'a str> {
    if s.is_empty() {
        return Err(bad(format!("{what} is empty")));
    }
    if s.len() > HOTLINE_MAX_TEXT {
        return Err(bad(format!("{what} is {} bytes long; at most {HOTLINE_MAX_TEXT}", s.len())));
    }
    if let Some(i) = s.bytes().position(|b| b.is_ascii_control() && b != b'\t') {
        return Err(bad(format!("{what} has a control character at byte {i}")));
    }
    Ok(s)
}

/// A device as the protocol writes it: `station:EXT`, `trunk:C/S/T`, `queue:NAME`,
/// `ivr:NAME`.
fn device<'a>(s: &'a str, what: &str) -> R<&'a str> {
    name(s, what)?;
    match s.split_once(':') {
        Some(("station" | "trunk" | "queue" | "ivr", rest)) if !rest.is_empty() => Ok(s),
        _ => Err(bad(format!(
            "{what} {s:?} is not a device: expected station:EXT, trunk:C/S/T, queue:NAME or ivr:NAME"
        ))),
    }
}

/// DTMF digits: 0-9, *, #, A-D (upper case), at most HOTLINE_MAX_NAME.
fn digits(s: &str) -> R<&str> {
    name(s, "digits")?;
    match s.bytes().position(|b| !b"0123456789*#ABCD".contains(&b)) {
        Some(i) => Err(bad(format!(
            "digits {s:?}: {:?} at byte {i} is not a DTMF digit (0-9 * # A-D, upper case)",
            char::from(s.as_bytes()[i])
        ))),
        None => Ok(s),
    }
}

/// The device argument; "" when NULL (filled in by [`fill_device`] once the
/// connection is known to be open).
///
/// # Safety
/// As for [`text`].
unsafe fn opt_device(p: *const c_char) -> R<String> {
    // SAFETY: forwarded from the caller.
    match unsafe { opt_text(p, "device") }? {
        Some(d) => device(d, "device").map(str::to_owned),
        None => Ok(String::new()),
    }
}

/// After every argument is checked: the connection must be open, then the defaults
/// are filled in (an empty device: the logged-in station).
fn fill_device(c: &Client, d: String) -> R<String> {
    open(c)?;
    if d.is_empty() {
        c.own_device()
    } else {
        Ok(d)
    }
}

fn call_id(call: u64, what: &str) -> R<Value> {
    if call == 0 {
        Err(bad(format!("{what} is 0, which is no call")))
    } else {
        Ok(Value::from(call))
    }
}

fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn request(c: &Client, service: &str, f: Map<String, Value>) -> R<Value> {
    open(c)?;
    c.request(service, f)
}

/// Write `s` and a NUL into `buf` (`len` bytes), truncating; `*out_n` (if not NULL)
/// gets the full length of `s` without the NUL.
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes; `out_n` is NULL or writable.
unsafe fn write_text(s: &str, buf: *mut c_char, len: usize, out_n: *mut usize) -> R<()> {
    if buf.is_null() {
        return Err(err(hotline_result::NullParameter, "buf is NULL"));
    }
    if len == 0 {
        return Err(err(
            hotline_result::BufferTooSmall,
            format!("buf has 0 bytes; the text has {}", s.len()),
        ));
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
        Err(err(
            hotline_result::BufferTooSmall,
            format!("buf has {len} bytes; the text needs {} and was truncated", s.len() + 1),
        ))
    } else {
        Ok(())
    }
}

/// An output buffer, checked before anything is sent.
fn out_buf(buf: *mut c_char, len: usize) -> R<()> {
    if buf.is_null() {
        return Err(err(hotline_result::NullParameter, "buf is NULL"));
    }
    if len == 0 {
        return Err(bad("len is 0: no room for the result"));
    }
    Ok(())
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

/// A request whose JSON result goes to the caller's buffer.
///
/// # Safety
/// `buf` writable for `len` bytes (checked non-NULL by the caller), `out_n` NULL or
/// writable.
unsafe fn result_to(
    c: &Client,
    service: &str,
    f: Map<String, Value>,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> R<()> {
    let result = request(c, service, f)?;
    // SAFETY: the caller's promise.
    unsafe { write_text(&result.to_string(), buf, len, out_n) }
}

/// The version of libhotline, a static NUL-terminated string (never free it).
#[no_mangle]
pub extern "C" fn hotline_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI version of the library (`HOTLINE_ABI_VERSION` of the header it was built
/// from). A program checks `hotline_abi_version() == HOTLINE_ABI_VERSION` at start.
#[no_mangle]
pub extern "C" fn hotline_abi_version() -> u32 {
    HOTLINE_ABI_VERSION
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

/// Send the library's log to `cb` (NULL: no log, the default), for every message at
/// `max_level` (a `hotline_log_level`) or more important. For all connections; `cb`
/// may be called from any library thread, also before this function returns to
/// another thread's call.
///
/// # Safety
/// `cb` is NULL or a function that stays callable with `user_data` until replaced.
#[no_mangle]
pub unsafe extern "C" fn hotline_set_log_callback(
    cb: hotline_log_callback,
    user_data: *mut c_void,
    max_level: u32,
) -> hotline_result {
    guard(std::ptr::null(), || {
        let Some(level) = hotline_log_level::from_u32(max_level) else {
            return Err(bad(format!("max_level {max_level} is not a hotline_log_level")));
        };
        let sink = cb.map(|f| {
            let ud = UserData(user_data);
            let s: log::Sink = Arc::new(move |level, text: &str| {
                let line = CString::new(text.replace('\0', "")).unwrap_or_default();
                // SAFETY: the C caller's promise; `line` lives for the call.
                unsafe { f(ud.ptr(), level as u32, line.as_ptr()) }
            });
            (s, level)
        });
        log::set(sink);
        Ok(())
    })
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
    guard(std::ptr::null(), || {
        // SAFETY: the caller's promise.
        let host = name(unsafe { text(host, "host") }?, "host")?;
        if out_conn.is_null() {
            return Err(err(hotline_result::NullParameter, "out_conn is NULL"));
        }
        if port == 0 {
            return Err(bad("port is 0"));
        }
        let client = Client::connect(host, port, DEFAULT_TIMEOUT)?;
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
/// `Disconnected` event, and later requests fail with `Closed` (no reconnect follows).
/// When called from outside the callback it returns after the last callback has
/// returned. The handle stays valid until `hotline_free`.
///
/// # Safety
/// `conn` is NULL or a handle (stale handles are refused).
#[no_mangle]
pub unsafe extern "C" fn hotline_disconnect(conn: *mut hotline_conn) -> hotline_result {
    guard(conn, || {
        lookup(conn)?.disconnect();
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
    guard(std::ptr::null(), || {
        if conn.is_null() {
            return Err(err(hotline_result::NullParameter, "conn is NULL"));
        }
        let client = registry()
            .live
            .remove(&(conn as usize))
            .ok_or_else(|| err(hotline_result::InvalidHandle, "not a live handle"))?;
        // Explicitly, as another thread may still hold the connection in a request.
        client.disconnect();
        Ok(())
    })
}

/// `user_data` from C, handed to the callback thread untouched.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: the pointer is only passed back to the C callback, never dereferenced here;
// the C caller is responsible for what the callback does with it.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}
impl UserData {
    /// A method (not field access) so that closures capture the whole Send wrapper.
    fn ptr(self) -> *mut c_void {
        self.0
    }
}

/// Set (or with `cb` NULL, remove) the event callback. It is called on the
/// connection's callback thread (in poll mode: inside `hotline_dispatch`);
/// `user_data` is passed through untouched. A callback already running finishes;
/// later events go to the new one.
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
    guard(conn, || {
        let c = lookup(conn)?;
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

/// Deliver only the events whose kind's bit is set in `mask`: bit
/// `(UINT64_C(1) << HOTLINE_EVENT_KIND_...)`; `HOTLINE_EVENTS_ALL` (the default) lets
/// everything through. `HOTLINE_EVENT_KIND_DISCONNECTED` is always delivered. Events
/// filtered out are dropped as they are read, before they are queued.
///
/// # Safety
/// `conn` is NULL or a handle.
#[no_mangle]
pub unsafe extern "C" fn hotline_set_event_filter(conn: *mut hotline_conn, mask: u64) -> hotline_result {
    guard(conn, || {
        lookup(conn)?.set_filter(mask);
        Ok(())
    })
}

/// Reconnect automatically when the server closes the connection or the network
/// fails: `first_delay_ms` after the loss (then doubling, at most 30 s between
/// attempts), log in again with the same user, password and station, and make the
/// monitors of `hotline_monitor` again. 0 turns it off (the default). Meanwhile
/// requests return `Closed`; events `RECONNECTING` and `RECONNECTED` tell the program.
/// A login refused after a reconnect ends the connection (`DISCONNECTED`).
///
/// # Safety
/// `conn` is NULL or a handle.
#[no_mangle]
pub unsafe extern "C" fn hotline_set_reconnect(
    conn: *mut hotline_conn,
    first_delay_ms: u32,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        c.set_reconnect((first_delay_ms > 0).then(|| Duration::from_millis(first_delay_ms.into())));
        Ok(())
    })
}

/// Poll mode, for single-threaded programs: from now on the callback is called only
/// from `hotline_dispatch`, on the thread that calls it. `*out_fd` gets a descriptor
/// that is readable (select, poll, epoll) while events wait. The descriptor belongs to
/// the library: do not read, write or close it; it stays valid until `hotline_free`.
/// Calling it again gives the same descriptor.
///
/// # Safety
/// `conn` is NULL or a handle; `out_fd` writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_event_fd(conn: *mut hotline_conn, out_fd: *mut c_int) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        if out_fd.is_null() {
            return Err(err(hotline_result::NullParameter, "out_fd is NULL"));
        }
        let fd = c.event_fd()?;
        // SAFETY: checked non-NULL; the caller's promise.
        unsafe { *out_fd = fd };
        Ok(())
    })
}

/// Poll mode: call the callback for up to `max` waiting events (0: all that wait
/// now), in order, on this thread; `*out_n` (may be NULL) gets how many. Returns `Ok`
/// also when none waited; `Closed` once the connection has ended and its last event
/// (`DISCONNECTED`) was dispatched. A call from inside the callback, or while another
/// thread dispatches, returns at once with 0 events.
///
/// # Safety
/// `conn` is NULL or a handle; `out_n` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_dispatch(
    conn: *mut hotline_conn,
    max: usize,
    out_n: *mut usize,
) -> hotline_result {
    guard(conn, || {
        let n = lookup(conn)?.dispatch(max)?;
        // SAFETY: the caller's promise.
        unsafe { put(out_n, n) };
        Ok(())
    })
}

/// Set how long requests on this connection wait for their reply (default 5000 ms).
///
/// # Safety
/// `conn` is NULL or a handle.
#[no_mangle]
pub unsafe extern "C" fn hotline_set_timeout(conn: *mut hotline_conn, timeout_ms: u32) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        if timeout_ms == 0 {
            return Err(bad("timeout_ms is 0"));
        }
        c.set_timeout(Duration::from_millis(timeout_ms.into()));
        Ok(())
    })
}

/// Copy the text of the last failed call on this connection (the server's error
/// code and message, or what was wrong locally) into `buf`; "" if none failed.
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
    // Not through `guard`: reading the last error must not replace it.
    let c = match lookup(conn) {
        Ok(c) => c,
        Err(e) => return e.code,
    };
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's promise.
        match unsafe { write_text(&c.last_error(), buf, len, out_n) } {
            Ok(()) => hotline_result::Ok,
            Err(e) => e.code,
        }
    }))
    .unwrap_or(hotline_result::Panic)
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
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise, for each string.
        let (user, password, station) =
            unsafe { (text(user, "user")?, text(password, "password")?, opt_text(station, "station")?) };
        let user = name(user, "user")?;
        let password = free_text(password, "password")?;
        let station = station.map(|s| name(s, "station")).transpose()?;
        open(&c)?;
        c.login(user, password, station).map(drop)
    })
}

/// End the session: the server logs the agent out at the engine and stops this
/// connection's monitors. The connection stays open (log in again, or free it).
///
/// # Safety
/// `conn` is NULL or a handle.
#[no_mangle]
pub unsafe extern "C" fn hotline_logout(conn: *mut hotline_conn) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        open(&c)?;
        c.logout()
    })
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
    guard(conn, || {
        let c = lookup(conn)?;
        let state = match state {
            1 => "ready",
            2 => "not_ready",
            3 => "logged_out",
            n => return Err(bad(format!("state {n} is not a hotline_agent_state"))),
        };
        // SAFETY: the caller's promise.
        let (agent, reason) = unsafe { (opt_text(agent, "agent")?, opt_text(reason, "reason")?) };
        let agent = agent.map(|a| name(a, "agent")).transpose()?;
        let reason = reason.map(|r| free_text(r, "reason")).transpose()?;
        open(&c)?;
        let agent = match agent {
            Some(a) => a.to_owned(),
            None => c.own_agent()?,
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
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: forwarded from the caller.
        let device = unsafe { opt_device(device) }?;
        let call = call_id(call, "call")?;
        let device = fill_device(&c, device)?;
        request(&c, service, fields([("call", call), ("device", device.into())])).map(drop)
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

/// End `call` for every party. CSTA ClearCall.
///
/// # Safety
/// `conn` is NULL or a handle.
#[no_mangle]
pub unsafe extern "C" fn hotline_clear_call(conn: *mut hotline_conn, call: u64) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { call_only(conn, "ClearCall", call) }
}

/// Start recording `call` now. CSTA-style StartRecording of the link.
///
/// # Safety
/// `conn` is NULL or a handle.
#[no_mangle]
pub unsafe extern "C" fn hotline_start_recording(conn: *mut hotline_conn, call: u64) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { call_only(conn, "StartRecording", call) }
}

/// Stop recording `call`. StopRecording of the link.
///
/// # Safety
/// `conn` is NULL or a handle.
#[no_mangle]
pub unsafe extern "C" fn hotline_stop_recording(conn: *mut hotline_conn, call: u64) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { call_only(conn, "StopRecording", call) }
}

/// A service that names only a call.
///
/// # Safety
/// As for the exported functions that call it.
unsafe fn call_only(conn: *mut hotline_conn, service: &str, call: u64) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        let call = call_id(call, "call")?;
        request(&c, service, fields([("call", call)])).map(drop)
    })
}

/// Send `call` from `device` to `to` (an extension, a queue number or an external
/// number) without consulting, or (`deflect`) before answering.
///
/// # Safety
/// As for the exported functions that call it.
unsafe fn call_device_to(
    conn: *mut hotline_conn,
    service: &str,
    call: u64,
    device: *const c_char,
    to: *const c_char,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let (device, to) = unsafe { (opt_device(device)?, text(to, "to")?) };
        let to = name(to, "to")?;
        let call = call_id(call, "call")?;
        let device = fill_device(&c, device)?;
        let f = fields([("call", call), ("device", device.into()), ("to", to.into())]);
        request(&c, service, f).map(drop)
    })
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
    // SAFETY: forwarded.
    unsafe { call_device_to(conn, "SingleStepTransferCall", call, device, to) }
}

/// Send `call`, alerting at `device` (NULL: the logged-in station), on to `to` without
/// answering it. CSTA DeflectCall.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated; `to` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_deflect(
    conn: *mut hotline_conn,
    call: u64,
    device: *const c_char,
    to: *const c_char,
) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { call_device_to(conn, "DeflectCall", call, device, to) }
}

/// The call id in a result (`{"call": 13}` or a bare number).
fn result_call(service: &str, v: &Value) -> R<u64> {
    v.get("call")
        .and_then(Value::as_u64)
        .or_else(|| v.as_u64())
        .ok_or_else(|| err(hotline_result::Protocol, format!("the {service} result has no call id: {v}")))
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
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let (device, called) = unsafe { (opt_device(device)?, text(called, "called")?) };
        let called = name(called, "called")?;
        let held = call_id(held, "held")?;
        let device = fill_device(&c, device)?;
        let f = fields([("held", held), ("device", device.into()), ("called", called.into())]);
        let call = result_call("ConsultationCall", &request(&c, "ConsultationCall", f)?)?;
        // SAFETY: the caller's promise.
        unsafe { put(out_call, call) };
        Ok(())
    })
}

/// Two calls at one device: TransferCall, ConferenceCall, AlternateCall, ReconnectCall.
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
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: forwarded from the caller.
        let device = unsafe { opt_device(device) }?;
        let (held, active) = (call_id(held, "held")?, call_id(active, "active")?);
        let device = fill_device(&c, device)?;
        let f = fields([("held", held), ("active", active), ("device", device.into())]);
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

/// Swap between a consultation and the held call: hold `active`, retrieve `held`, at
/// `device` (NULL: the logged-in station). CSTA AlternateCall.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_alternate(
    conn: *mut hotline_conn,
    held: u64,
    active: u64,
    device: *const c_char,
) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { two_calls(conn, "AlternateCall", held, active, device) }
}

/// Give up a consultation: clear `active` and retrieve `held` at `device` (NULL: the
/// logged-in station). CSTA ReconnectCall.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_reconnect_call(
    conn: *mut hotline_conn,
    held: u64,
    active: u64,
    device: *const c_char,
) -> hotline_result {
    // SAFETY: forwarded.
    unsafe { two_calls(conn, "ReconnectCall", held, active, device) }
}

/// Send DTMF `digits` (0-9, *, #, A-D; upper case) from `device` (NULL: the logged-in
/// station) into `call`. CSTA GenerateDigits.
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
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let (device, d) = unsafe { (opt_device(device)?, text(digits, "digits")?) };
        let d = self::digits(d)?;
        let call = call_id(call, "call")?;
        let device = fill_device(&c, device)?;
        let f = fields([("call", call), ("device", device.into()), ("digits", d.into())]);
        request(&c, "GenerateDigits", f).map(drop)
    })
}

/// Attach `key` = `value` to `call` (the data travels with the call and shows in the
/// screen pops of whoever gets it next, under `attached`). SetCallData of the link.
///
/// # Safety
/// `conn` is NULL or a handle; `key` and `value` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_set_call_data(
    conn: *mut hotline_conn,
    call: u64,
    key: *const c_char,
    value: *const c_char,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let (key, value) = unsafe { (text(key, "key")?, text(value, "value")?) };
        let (key, value) = (name(key, "key")?, free_text(value, "value")?);
        let call = call_id(call, "call")?;
        request(&c, "SetCallData", fields([("call", call), ("key", key.into()), ("value", value.into())]))
            .map(drop)
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
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let (calling, called) = unsafe { (opt_text(calling, "calling")?, text(called, "called")?) };
        let calling = calling.map(|s| name(s, "calling")).transpose()?;
        let called = name(called, "called")?;
        open(&c)?;
        let calling = match calling {
            Some(s) => s.to_owned(),
            None => c.own_station()?,
        };
        let f = fields([("calling", calling.into()), ("called", called.into())]);
        let call = result_call("MakeCall", &request(&c, "MakeCall", f)?)?;
        // SAFETY: the caller's promise.
        unsafe { put(out_call, call) };
        Ok(())
    })
}

/// Join the call of `agent` as a supervisor: `mode` is a `hotline_supervision_mode`.
/// Supervisors only (within their groups). Supervise of the link.
///
/// # Safety
/// `conn` is NULL or a handle; `agent` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hotline_supervise(
    conn: *mut hotline_conn,
    agent: *const c_char,
    mode: u32,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let agent = name(unsafe { text(agent, "agent") }?, "agent")?;
        let mode = match mode {
            1 => "monitor",
            2 => "whisper",
            3 => "barge",
            4 => "intercept",
            n => return Err(bad(format!("mode {n} is not a hotline_supervision_mode"))),
        };
        request(&c, "Supervise", fields([("agent", agent.into()), ("mode", mode.into())])).map(drop)
    })
}

/// The monitor target as the protocol writes it.
///
/// # Safety
/// `name` NULL or NUL-terminated.
unsafe fn target(target: u32, p: *const c_char) -> R<Value> {
    let key = match target {
        1 => "device",
        2 => "agent",
        3 => "queue",
        4 => return Ok(Value::from("all")),
        n => return Err(bad(format!("target {n} is not a hotline_monitor_target"))),
    };
    // SAFETY: the caller's promise.
    let n = unsafe { text(p, "name") }?;
    let n = if key == "device" { device(n, "name")? } else { name(n, "name")? };
    Ok(Value::Object(fields([(key, n.into())])))
}

/// Subscribe to events: `target` is a `hotline_monitor_target`, `name` the device,
/// agent or queue (ignored for All). On success `*out_monitor` (may be NULL) gets the
/// monitor id the server gave. Events then arrive at the callback. The monitor is
/// made again after an automatic reconnect.
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
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let t = unsafe { self::target(target, name) }?;
        open(&c)?;
        let (id, _) = c.monitor(t)?;
        // SAFETY: the caller's promise.
        unsafe { put(out_monitor, id) };
        Ok(())
    })
}

/// As `hotline_monitor`, and write the snapshot of what the monitor covers now (calls,
/// agents, queues; docs/protocol.md "Monitors") into `buf` as JSON. `BufferTooSmall`:
/// the monitor was made, the snapshot is truncated.
///
/// # Safety
/// `conn` is NULL or a handle; `name` NULL or NUL-terminated; `out_monitor` and `out_n`
/// NULL or writable; `buf` writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn hotline_monitor_snapshot(
    conn: *mut hotline_conn,
    target: u32,
    name: *const c_char,
    out_monitor: *mut u64,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let t = unsafe { self::target(target, name) }?;
        out_buf(buf, len)?;
        open(&c)?;
        let (id, snapshot) = c.monitor(t)?;
        // SAFETY: the caller's promise.
        unsafe {
            put(out_monitor, id);
            write_text(&snapshot.to_string(), buf, len, out_n)
        }
    })
}

/// Stop monitor `monitor` (from `hotline_monitor`). MonitorStop of the link.
///
/// # Safety
/// `conn` is NULL or a handle.
#[no_mangle]
pub unsafe extern "C" fn hotline_monitor_stop(conn: *mut hotline_conn, monitor: u64) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        if monitor == 0 {
            return Err(bad("monitor is 0, which is no monitor"));
        }
        open(&c)?;
        c.monitor_stop(monitor)
    })
}

/// The parties and attached data of `call`, as JSON in `buf`. SnapshotCall.
///
/// # Safety
/// `conn` is NULL or a handle; `buf` writable for `len` bytes; `out_n` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_snapshot_call(
    conn: *mut hotline_conn,
    call: u64,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        let call = call_id(call, "call")?;
        out_buf(buf, len)?;
        // SAFETY: the caller's promise.
        unsafe { result_to(&c, "SnapshotCall", fields([("call", call)]), buf, len, out_n) }
    })
}

/// The calls at `device` (NULL: the logged-in station), as JSON in `buf`. SnapshotDevice.
///
/// # Safety
/// `conn` is NULL or a handle; `device` NULL or NUL-terminated; `buf` writable for
/// `len` bytes; `out_n` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_snapshot_device(
    conn: *mut hotline_conn,
    device: *const c_char,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let device = unsafe { opt_device(device) }?;
        out_buf(buf, len)?;
        let device = fill_device(&c, device)?;
        // SAFETY: the caller's promise.
        unsafe { result_to(&c, "SnapshotDevice", fields([("device", device.into())]), buf, len, out_n) }
    })
}

/// Queue `queue`'s figures (waiting, ready, logged in, oldest wait), as JSON in `buf`.
/// SnapshotQueue.
///
/// # Safety
/// `conn` is NULL or a handle; `queue` NUL-terminated; `buf` writable for `len` bytes;
/// `out_n` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_snapshot_queue(
    conn: *mut hotline_conn,
    queue: *const c_char,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let queue = name(unsafe { text(queue, "queue") }?, "queue")?;
        out_buf(buf, len)?;
        // SAFETY: the caller's promise.
        unsafe { result_to(&c, "SnapshotQueue", fields([("queue", queue.into())]), buf, len, out_n) }
    })
}

/// Every agent's state (of `group`; NULL: all the supervisor may see), as JSON in
/// `buf`. Supervisors only. SnapshotAgents.
///
/// # Safety
/// `conn` is NULL or a handle; `group` NULL or NUL-terminated; `buf` writable for
/// `len` bytes; `out_n` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_snapshot_agents(
    conn: *mut hotline_conn,
    group: *const c_char,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let group = unsafe { opt_text(group, "group") }?.map(|g| name(g, "group")).transpose()?;
        out_buf(buf, len)?;
        let mut f = Map::new();
        if let Some(g) = group {
            f.insert("group".into(), g.into());
        }
        // SAFETY: the caller's promise.
        unsafe { result_to(&c, "SnapshotAgents", f, buf, len, out_n) }
    })
}

/// `agent`'s state, reason, since and counters (NULL: the logged-in agent), as JSON in
/// `buf`. GetAgentState.
///
/// # Safety
/// `conn` is NULL or a handle; `agent` NULL or NUL-terminated; `buf` writable for
/// `len` bytes; `out_n` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_get_agent_state(
    conn: *mut hotline_conn,
    agent: *const c_char,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let agent = unsafe { opt_text(agent, "agent") }?.map(|a| name(a, "agent")).transpose()?;
        out_buf(buf, len)?;
        open(&c)?;
        let agent = match agent {
            Some(a) => a.to_owned(),
            None => c.own_agent()?,
        };
        // SAFETY: the caller's promise.
        unsafe { result_to(&c, "GetAgentState", fields([("agent", agent.into())]), buf, len, out_n) }
    })
}

/// Today's calls of `agent` (NULL: the logged-in agent; others: supervisors), from
/// the call records, as JSON in `buf`. AgentCallsToday.
///
/// # Safety
/// `conn` is NULL or a handle; `agent` NULL or NUL-terminated; `buf` writable for
/// `len` bytes; `out_n` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hotline_agent_calls_today(
    conn: *mut hotline_conn,
    agent: *const c_char,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> hotline_result {
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let agent = unsafe { opt_text(agent, "agent") }?.map(|a| name(a, "agent")).transpose()?;
        out_buf(buf, len)?;
        let mut f = Map::new();
        if let Some(a) = agent {
            f.insert("agent".into(), a.into());
        }
        // SAFETY: the caller's promise.
        unsafe { result_to(&c, "AgentCallsToday", f, buf, len, out_n) }
    })
}

/// The first string in `v` (keys included) that holds a NUL character, as a path.
fn nul_inside(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(path.to_owned()),
        Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| nul_inside(x, &format!("{path}[{i}]"))),
        Value::Object(o) => o.iter().find_map(|(k, x)| {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            if k.contains('\0') {
                Some(format!("the key {p}"))
            } else {
                nul_inside(x, &p)
            }
        }),
        _ => None,
    }
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
    guard(conn, || {
        let c = lookup(conn)?;
        // SAFETY: the caller's promise.
        let (service, json) = unsafe { (text(service, "service")?, opt_text(fields_json, "fields_json")?) };
        out_buf(buf, len)?;
        let service = name(service, "service")?;
        if !service.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad(format!(
                "service {service:?} is not a service name (letters and digits, e.g. SnapshotCall)"
            )));
        }
        let f = match json.map(serde_json::from_str::<Value>) {
            None => Map::new(),
            Some(Ok(Value::Object(m))) => m,
            Some(Ok(_)) => return Err(bad("fields_json: expected a JSON object")),
            // serde_json's message ends with "at line L column C".
            Some(Err(e)) => return Err(bad(format!("fields_json: {e}"))),
        };
        if f.contains_key("invoke") || f.contains_key("service") {
            return Err(bad("fields_json: \"invoke\" and \"service\" are set by the library"));
        }
        if let Some(at) = nul_inside(&Value::Object(f.clone()), "") {
            return Err(bad(format!("fields_json: a NUL character (\\u0000) inside {at}")));
        }
        let size = Value::Object(f.clone()).to_string().len() + service.len() + 40;
        if size > HOTLINE_MAX_REQUEST {
            return Err(bad(format!(
                "fields_json: the request would be about {size} bytes; at most {HOTLINE_MAX_REQUEST}"
            )));
        }
        // SAFETY: the caller's promise.
        unsafe { result_to(&c, service, f, buf, len, out_n) }
    })
}
