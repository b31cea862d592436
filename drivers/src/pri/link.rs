//! [`PriLink`]: one libpri D-channel controller with its I/O in Rust queues.
//!
//! libpri is made with `pri_new_cb` and two `extern "C"` trampolines that move Q.921
//! frames between libpri and an in-memory queue: whoever owns the link moves frames
//! from [`PriLink::take_frames`] to the far end (another link, or a DAHDI D-channel)
//! and hands received frames to [`PriLink::receive`]. libpri only stores the `fd` it is
//! given when callbacks are supplied, so we pass -1.
//!
//! Safety: the queues live in a box owned by the link, whose address is libpri's user
//! data; the trampolines run under `catch_unwind` and turn a panic into "no frame", so
//! no panic crosses into C. libpri's error and message printers are process-wide: ours
//! collect the text in a thread-local buffer that each link drains into its own log
//! after every call it makes into libpri (libpri calls back synchronously).
//!
//! Time: libpri starts its timers (Q.921 T200/T203, Q.931 T303, T305, T308, T313...)
//! against `gettimeofday`, and [`PriLink::run_timers`] runs those that are due by the
//! wall clock. So libpri's timers follow real elapsed time, never a simulated clock;
//! see [`PriLink::next_timer`].
//!
//! Lifetime: libpri 1.6 has no function that frees a controller (its destructor is
//! private), and freeing the block ourselves would depend on its private layout. On
//! drop the link detaches its user data, so nothing can reach the freed queues, and
//! leaves the controller (a few KB) allocated.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotline_sys::libpri as sys;

use crate::cause::Cause;
use crate::error::{Error, ErrorKind, Result};

/// Which end of the interface a controller plays (Q.921/Q.931 user or network side).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// The exchange's side.
    Network,
    /// The customer's side: a card on a PBX or call-center trunk.
    Cpe,
}

/// A call inside one controller: libpri's `q931_call *`, kept as a number. libpri
/// checks every call pointer it is handed against its own call list, so a stale one
/// is refused, never dereferenced.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(usize);

/// What a controller reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PriEvent {
    /// Q.921 multiple-frame operation established (SABME answered by UA).
    DChannelUp,
    /// The data link is down.
    DChannelDown,
    /// The far end restarted a channel (0: the interface).
    Restart { channel: Option<u8> },
    /// A SETUP arrived: an offered call.
    Ring {
        call: CallRef,
        /// The B-channel (E1 timeslot) in the channel identification, if any.
        channel: Option<u8>,
        called: String,
        /// The calling number, when present and not empty.
        calling: Option<String>,
        /// Presentation indicator of the calling number (Q.931 4.5.10).
        calling_presentation: i32,
        /// Sending complete was seen.
        complete: bool,
        /// The Q.931 call reference value (without the flag bit).
        call_reference: u16,
    },
    /// CALL PROCEEDING.
    Proceeding { call: CallRef, channel: Option<u8> },
    /// PROGRESS.
    Progress { call: CallRef, channel: Option<u8> },
    /// ALERTING.
    Ringing { call: CallRef, channel: Option<u8> },
    /// CONNECT.
    Answer { call: CallRef, channel: Option<u8> },
    /// CONNECT ACKNOWLEDGE.
    ConnectAck { call: CallRef, channel: Option<u8> },
    /// DISCONNECT: the far end clears; answer with [`PriLink::hangup`].
    HangupReq { call: CallRef, channel: Option<u8>, cause: Cause },
    /// RELEASE: the call is gone (libpri has answered RELEASE COMPLETE).
    Hangup { call: CallRef, channel: Option<u8>, cause: Cause },
    /// RELEASE COMPLETE after our clearing: the call is gone.
    HangupAck { call: CallRef, channel: Option<u8>, cause: Cause },
    /// A protocol or configuration error libpri reports.
    ConfigError(String),
    /// Another event (`PRI_EVENT_*` number) we do not act on.
    Other(i32),
}

impl PriEvent {
    /// The call the event is about.
    pub fn call(&self) -> Option<CallRef> {
        use PriEvent::*;
        match self {
            Ring { call, .. }
            | Proceeding { call, .. }
            | Progress { call, .. }
            | Ringing { call, .. }
            | Answer { call, .. }
            | ConnectAck { call, .. }
            | HangupReq { call, .. }
            | Hangup { call, .. }
            | HangupAck { call, .. } => Some(*call),
            _ => None,
        }
    }
}

/// What a SETUP carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup<'a> {
    /// The B-channel (E1 timeslot 1–15, 17–31), asked for exclusively.
    pub timeslot: u8,
    pub called: &'a str,
    pub calling: Option<&'a str>,
}

/// The frames in each direction, as libpri reads and writes them.
#[derive(Debug, Default)]
struct Io {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
}

/// One libpri controller: `PRI_SWITCH_EUROISDN_E1`, point to point, TEI 0.
#[derive(Debug)]
pub struct PriLink {
    ctrl: NonNull<sys::pri>,
    /// libpri's user data; owned here (from `Box::into_raw`), freed on drop.
    io: *mut Io,
    node: Node,
    log: Vec<String>,
}

// SAFETY: a controller is not tied to the thread that made it (no thread-locals in
// libpri); the link is used from one thread at a time through `&mut self`, as
// Asterisk runs one controller per span thread.
unsafe impl Send for PriLink {}

/// The most libpri messages a link keeps.
const LOG_LIMIT: usize = 1000;

thread_local! {
    static MESSAGES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

static INSTALL_PRINTERS: Once = Once::new();

unsafe extern "C" fn print_trampoline(_ctrl: *mut sys::pri, text: *mut c_char) {
    let _ = catch_unwind(|| {
        if text.is_null() {
            return;
        }
        // SAFETY: libpri passes a NUL-terminated string it owns for the call.
        let s = unsafe { CStr::from_ptr(text) }.to_string_lossy().trim_end().to_string();
        let _ = MESSAGES.try_with(|m| {
            if let Ok(mut m) = m.try_borrow_mut() {
                m.push(s);
            }
        });
    });
}

unsafe extern "C" fn read_trampoline(ctrl: *mut sys::pri, buf: *mut c_void, buflen: c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the user data is null or the live `Io` of the link that owns `ctrl`
        // (see `PriLink::new` and `Drop`); libpri gives a buffer of `buflen` bytes.
        unsafe {
            let io = sys::pri_get_userdata(ctrl) as *mut Io;
            if io.is_null() || buf.is_null() || buflen <= 0 {
                return 0;
            }
            let Some(frame) = (*io).rx.pop_front() else { return 0 };
            let n = frame.len().min(buflen as usize);
            ptr::copy_nonoverlapping(frame.as_ptr(), buf as *mut u8, n);
            n as c_int
        }
    }))
    .unwrap_or(0)
}

unsafe extern "C" fn write_trampoline(ctrl: *mut sys::pri, buf: *mut c_void, buflen: c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `read_trampoline`; libpri passes `buflen` readable bytes.
        unsafe {
            let io = sys::pri_get_userdata(ctrl) as *mut Io;
            if io.is_null() || buf.is_null() || buflen <= 0 {
                return 0;
            }
            let frame = std::slice::from_raw_parts(buf as *const u8, buflen as usize).to_vec();
            (*io).tx.push(frame);
            buflen
        }
    }))
    .unwrap_or(0)
}

/// A NUL-terminated `char` array from libpri as a string.
fn text(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// libpri's channel number: the B-channel in the low byte, -1 or 0 for none.
fn channel(c: c_int) -> Option<u8> {
    if c < 0 {
        return None;
    }
    let ch = (c & 0xff) as u8;
    (ch != 0).then_some(ch)
}

fn cause(c: c_int) -> Cause {
    Cause(u8::try_from(c).ok().filter(|c| (1..=127).contains(c)).unwrap_or(Cause::NORMAL_UNSPECIFIED.0))
}

fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s)
        .map_err(|_| Error::new(ErrorKind::InvalidState, format!("{what} {s:?} contains a NUL byte")))
}

impl PriLink {
    /// A controller for this end of an E1 PRI (ETSI EuroISDN). It starts Q.921 at once:
    /// its SABME is already in [`take_frames`](Self::take_frames).
    pub fn new(node: Node) -> Result<PriLink> {
        INSTALL_PRINTERS.call_once(|| {
            // SAFETY: the printers are `extern "C"` functions that live for the process.
            unsafe {
                sys::pri_set_error(Some(print_trampoline));
                sys::pri_set_message(Some(print_trampoline));
            }
        });
        let node_type = match node {
            Node::Network => sys::PRI_NETWORK,
            Node::Cpe => sys::PRI_CPE,
        } as c_int;
        let io = Box::into_raw(Box::<Io>::default());
        // SAFETY: the callbacks match `pri_io_cb`; `io` is valid until `Drop` detaches it.
        let ctrl = unsafe {
            sys::pri_new_cb(
                -1,
                node_type,
                sys::PRI_SWITCH_EUROISDN_E1 as c_int,
                Some(read_trampoline),
                Some(write_trampoline),
                io as *mut c_void,
            )
        };
        let Some(ctrl) = NonNull::new(ctrl) else {
            // SAFETY: libpri did not keep `io` (it failed before storing it anywhere we
            // could reach again); it came from `Box::into_raw` above.
            drop(unsafe { Box::from_raw(io) });
            return Err(Error::new(ErrorKind::Resource, "libpri could not make a D-channel controller"));
        };
        let mut link = PriLink { ctrl, io, node, log: Vec::new() };
        link.collect_messages();
        Ok(link)
    }

    pub fn node(&self) -> Node {
        self.node
    }

    /// Frames libpri has written since the last call, oldest first (each a Q.921 frame
    /// followed by two FCS placeholder bytes).
    pub fn take_frames(&mut self) -> Vec<Vec<u8>> {
        // SAFETY: not inside a libpri call, so nothing else touches `io`.
        std::mem::take(unsafe { &mut (*self.io).tx })
    }

    /// Hand libpri one received frame (as the far end's `take_frames` gave it).
    pub fn receive(&mut self, frame: &[u8]) -> Option<PriEvent> {
        // SAFETY: as in `take_frames`.
        unsafe { (*self.io).rx.push_back(frame.to_vec()) };
        // SAFETY: `ctrl` is live; the returned event is read before the next call.
        let ev = unsafe {
            let e = sys::pri_check_event(self.ctrl.as_ptr());
            Self::convert(e)
        };
        // A frame libpri did not read (it reads exactly one per call) is dropped.
        // SAFETY: as in `take_frames`: the libpri call has returned.
        unsafe { (*self.io).rx.clear() };
        self.collect_messages();
        ev
    }

    /// Run the timers that are due by the wall clock; their events, in order.
    pub fn run_timers(&mut self) -> Vec<PriEvent> {
        let mut out = Vec::new();
        // A timer that fires may start another due at once; stop after a bounded number.
        for _ in 0..64 {
            // SAFETY: `ctrl` is live; the event is read before the next call.
            let ev = unsafe {
                let e = sys::pri_schedule_run(self.ctrl.as_ptr());
                if e.is_null() {
                    break;
                }
                Self::convert(e)
            };
            out.extend(ev);
        }
        self.collect_messages();
        out
    }

    /// How long until libpri's next timer is due by the wall clock (zero when overdue),
    /// or `None` when none runs.
    pub fn next_timer(&self) -> Option<Duration> {
        // SAFETY: `ctrl` is live; the timeval is read at once.
        let tv = unsafe {
            let tv = sys::pri_schedule_next(self.ctrl.as_ptr());
            if tv.is_null() {
                return None;
            }
            *tv
        };
        let due = Duration::new(tv.tv_sec.max(0) as u64, (tv.tv_usec.clamp(0, 999_999) * 1000) as u32);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Some(due.saturating_sub(now))
    }

    /// What libpri printed (errors and messages) for this link, oldest first.
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// Send SETUP for a new call; returns the call.
    pub fn setup(&mut self, setup: &Setup<'_>) -> Result<CallRef> {
        let called = cstring("called number", setup.called)?;
        let calling = setup.calling.map(|c| cstring("calling number", c)).transpose()?;
        // SAFETY: `ctrl` is live. The request keeps pointers to the strings, which live
        // until after `pri_setup`; the request is freed before returning.
        let res = unsafe {
            let ctrl = self.ctrl.as_ptr();
            let call = sys::pri_new_call(ctrl);
            if call.is_null() {
                self.collect_messages();
                return Err(Error::new(ErrorKind::Resource, "libpri has no room for another call"));
            }
            let sr = sys::pri_sr_new();
            if sr.is_null() {
                sys::pri_destroycall(ctrl, call);
                return Err(Error::new(ErrorKind::Resource, "libpri could not make a setup request"));
            }
            sys::pri_sr_set_channel(sr, setup.timeslot as c_int, 1, 0);
            sys::pri_sr_set_bearer(sr, sys::PRI_TRANS_CAP_SPEECH as c_int, sys::PRI_LAYER_1_ALAW as c_int);
            sys::pri_sr_set_called(sr, called.as_ptr() as *mut c_char, sys::PRI_UNKNOWN as c_int, 1);
            if let Some(c) = &calling {
                sys::pri_sr_set_caller(
                    sr,
                    c.as_ptr() as *mut c_char,
                    ptr::null_mut(),
                    sys::PRI_UNKNOWN as c_int,
                    sys::PRES_ALLOWED_USER_NUMBER_NOT_SCREENED as c_int,
                );
            }
            let r = sys::pri_setup(ctrl, call, sr);
            sys::pri_sr_free(sr);
            if r != 0 {
                sys::pri_destroycall(ctrl, call);
                Err(r)
            } else {
                Ok(CallRef(call as usize))
            }
        };
        self.collect_messages();
        res.map_err(|r| Error::new(ErrorKind::Io, format!("libpri refused the SETUP ({r})")))
    }

    /// CALL PROCEEDING on an offered call.
    pub fn proceeding(&mut self, call: CallRef, timeslot: u8) -> Result<()> {
        // SAFETY: libpri validates `call` before use.
        let r = unsafe { sys::pri_proceeding(self.ctrl.as_ptr(), call.ptr(), timeslot as c_int, 0) };
        self.done("CALL PROCEEDING", r)
    }

    /// ALERTING on an offered call, saying ringback is sent in band.
    pub fn alerting(&mut self, call: CallRef, timeslot: u8) -> Result<()> {
        // SAFETY: libpri validates `call` before use.
        let r = unsafe { sys::pri_acknowledge(self.ctrl.as_ptr(), call.ptr(), timeslot as c_int, 1) };
        self.done("ALERTING", r)
    }

    /// CONNECT: answer an offered call.
    pub fn answer(&mut self, call: CallRef, timeslot: u8) -> Result<()> {
        // SAFETY: libpri validates `call` before use.
        let r = unsafe { sys::pri_answer(self.ctrl.as_ptr(), call.ptr(), timeslot as c_int, 0) };
        self.done("CONNECT", r)
    }

    /// Clear a call with a Q.850 cause: DISCONNECT (or RELEASE / RELEASE COMPLETE, as
    /// the call's state requires). Called again after the far end's clearing, it
    /// completes it.
    pub fn hangup(&mut self, call: CallRef, cause: Cause) -> Result<()> {
        // SAFETY: libpri validates `call` before use.
        let r = unsafe { sys::pri_hangup(self.ctrl.as_ptr(), call.ptr(), cause.0 as c_int) };
        self.done("clearing", r)
    }

    /// Forget a call without signalling (after a layer 1 loss).
    pub fn destroy_call(&mut self, call: CallRef) {
        // SAFETY: libpri validates `call` before use.
        unsafe { sys::pri_destroycall(self.ctrl.as_ptr(), call.ptr()) };
        self.collect_messages();
    }

    fn done(&mut self, what: &str, r: c_int) -> Result<()> {
        self.collect_messages();
        if r == 0 {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::InvalidState,
                format!("libpri refused {what} ({r}): the call is not in a state for it"),
            ))
        }
    }

    fn collect_messages(&mut self) {
        let msgs = MESSAGES.with(|m| std::mem::take(&mut *m.borrow_mut()));
        for m in msgs {
            if self.log.len() >= LOG_LIMIT {
                self.log.remove(0);
            }
            self.log.push(m);
        }
    }

    /// Our view of a libpri event.
    ///
    /// # Safety
    /// `e` is null or the event libpri just returned, not yet overwritten.
    unsafe fn convert(e: *mut sys::pri_event) -> Option<PriEvent> {
        if e.is_null() {
            return None;
        }
        // SAFETY: the caller's promise; each union view is read for its own event code.
        unsafe {
            let code = (*e).e as u32;
            let call = |p: *mut sys::q931_call| CallRef(p as usize);
            Some(match code {
                sys::PRI_EVENT_DCHAN_UP => PriEvent::DChannelUp,
                sys::PRI_EVENT_DCHAN_DOWN => PriEvent::DChannelDown,
                sys::PRI_EVENT_RESTART => PriEvent::Restart { channel: channel((*e).restart.channel) },
                sys::PRI_EVENT_CONFIG_ERR => PriEvent::ConfigError(text(&(*e).err.err)),
                sys::PRI_EVENT_RING => {
                    let r = &(*e).ring;
                    let calling = text(&r.callingnum);
                    PriEvent::Ring {
                        call: call(r.call),
                        channel: channel(r.channel),
                        called: text(&r.callednum),
                        calling: (!calling.is_empty()).then_some(calling),
                        calling_presentation: r.callingpres,
                        complete: r.complete != 0,
                        call_reference: (r.cref & 0x7FFF) as u16,
                    }
                }
                sys::PRI_EVENT_PROCEEDING => {
                    let p = &(*e).proceeding;
                    PriEvent::Proceeding { call: call(p.call), channel: channel(p.channel) }
                }
                sys::PRI_EVENT_PROGRESS => {
                    let p = &(*e).proceeding;
                    PriEvent::Progress { call: call(p.call), channel: channel(p.channel) }
                }
                sys::PRI_EVENT_RINGING => {
                    let r = &(*e).ringing;
                    PriEvent::Ringing { call: call(r.call), channel: channel(r.channel) }
                }
                sys::PRI_EVENT_ANSWER => {
                    let a = &(*e).answer;
                    PriEvent::Answer { call: call(a.call), channel: channel(a.channel) }
                }
                sys::PRI_EVENT_CONNECT_ACK => {
                    let a = &(*e).connect_ack;
                    PriEvent::ConnectAck { call: call(a.call), channel: channel(a.channel) }
                }
                sys::PRI_EVENT_HANGUP_REQ | sys::PRI_EVENT_HANGUP | sys::PRI_EVENT_HANGUP_ACK => {
                    let h = &(*e).hangup;
                    let (call, channel, cause) = (call(h.call), channel(h.channel), cause(h.cause));
                    match code {
                        sys::PRI_EVENT_HANGUP_REQ => PriEvent::HangupReq { call, channel, cause },
                        sys::PRI_EVENT_HANGUP => PriEvent::Hangup { call, channel, cause },
                        _ => PriEvent::HangupAck { call, channel, cause },
                    }
                }
                other => PriEvent::Other(other as i32),
            })
        }
    }
}

impl CallRef {
    fn ptr(self) -> *mut sys::q931_call {
        self.0 as *mut sys::q931_call
    }
}

impl Drop for PriLink {
    fn drop(&mut self) {
        // SAFETY: after detaching, libpri can no longer reach `io`, which came from
        // `Box::into_raw` in `new` and is freed exactly once here.
        unsafe {
            sys::pri_set_userdata(self.ctrl.as_ptr(), ptr::null_mut());
            drop(Box::from_raw(self.io));
        }
    }
}
