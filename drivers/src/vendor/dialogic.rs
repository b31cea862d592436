//! The Dialogic-style adapter: a [`Card`] over GlobalCall (`gc_…`) for call control,
//! the Voice API (`dx_…`) for prompts and DTMF, SCbus routing (`nr_…`) for connecting
//! channels, and the Standard Runtime Library (`sr_…`) for events, all loaded at run time.
//!
//! Each channel is a pair of devices named in the options: a GlobalCall line device
//! (`gc_OpenEx`, e.g. `:N_dtiB1T1:P_isdn`) and a voice device (`dx_open`, `dxxxB1C1`).
//!
//! Events: a thread of ours waits in `sr_waitevt`, reads each event (`sr_getevttype`,
//! `gc_GetMetaEvent`, `gc_ResultInfo`), translates it and sends [`CardEvent`]s on the
//! engine's bounded channel. GlobalCall's call flow is followed as documented:
//!
//! | SDK | ours |
//! | --- | --- |
//! | `GCEV_UNBLOCKED` after `gc_OpenEx` | `gc_WaitCall` (no event); later ones `Unblocked` |
//! | `GCEV_OFFERED` | `Offered` (ANI/DNIS from `gc_GetCallInfo`) |
//! | `GCEV_ALERTING` | `Alerting` |
//! | `GCEV_ANSWERED`, `GCEV_CONNECTED` | `Answered`; digit collection (`dx_getdig`) starts |
//! | `GCEV_DISCONNECTED` | `gc_DropCall`, cause from `gc_ResultInfo` (Q.850) |
//! | `GCEV_DROPCALL` | `gc_ReleaseCallEx` |
//! | `GCEV_RELEASECALL` | `Released` |
//! | `GCEV_BLOCKED` | `Blocked` |
//! | `GCEV_SETCHANSTATE` after `Block`/`Unblock` | `Blocked` / `Unblocked` |
//! | `TDX_PLAY` | `PlayFinished` (`ATDX_TERMMSK` tells a barge-in digit) |
//! | `TDX_GETDIG` | `Digit`, and collection is re-armed |
//!
//! A voice device runs one I/O function at a time: digit collection is stopped while a
//! prompt plays, and a barge-in digit that ends a prompt is collected right after it,
//! so `PlayFinished { reason: Digit }` comes before the `Digit`.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{c_int, c_long, CStr};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use hotline_sys::dialogic as gc;

use super::{c_string, check_digits, from_c_buf, SdkLibrary, Stamp};
use crate::card::{Capabilities, Card};
use crate::cause::Cause;
use crate::channel::{ChannelId, ChannelInfo, ChannelState};
use crate::command::{Command, PlaySource};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{CardEvent, EventKind, PlayEnd, Side};
use crate::signal::CallerCategory;
use crate::time::Instant;

const WHAT: &str =
    "the Dialogic GlobalCall/Voice runtime (libgc, libdxxx, libsrl; from the Dialogic system release)";

/// How long the event thread waits in `sr_waitevt` before checking for shutdown.
const WAIT_MS: c_long = 100;

/// One channel of a Dialogic card: the devices that make it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialogicChannel {
    pub id: ChannelId,
    /// The GlobalCall line device name for `gc_OpenEx` (`:N_dtiB1T1:P_isdn`).
    pub line: String,
    /// The voice device name for `dx_open` (`dxxxB1C1`).
    pub voice: String,
    /// The signalling, as shown to people ("ISDN PRI").
    pub signalling: String,
}

/// How to open a Dialogic card.
#[derive(Clone, Debug)]
pub struct DialogicOptions {
    pub card: u16,
    /// The runtime library exporting the `gc_`, `dx_`, `sr_` and `nr_` functions.
    pub sdk_path: PathBuf,
    pub channels: Vec<DialogicChannel>,
}

/// A play in progress. The voice API reads the I/O tables and the file until `TDX_PLAY`,
/// so they live here, boxed (stable addresses), until then.
struct Play {
    id: u32,
    stop_requested: bool,
    _file: File,
    _iott: Box<gc::DX_IOTT>,
    _tpt: Box<gc::DV_TPT>,
    _xpb: Box<gc::DX_XPB>,
}

struct Chan {
    id: ChannelId,
    signalling: String,
    ld: gc::LINEDEV,
    vdev: c_int,
    opened: bool,
    state: ChannelState,
    crn: gc::CRN,
    ending: Option<(Cause, Side)>,
    play: Option<Play>,
    /// `TDX_PLAY`s still to come for plays already reported (replaced by a new play).
    stale_play_ends: u32,
    getdig_armed: bool,
    /// A `gc_SetChanState` in flight: out of service (true) or back in (false).
    blocking: Option<bool>,
    /// `dx_getdig` writes here until `TDX_GETDIG`: boxed for a stable address.
    digits: Box<gc::DV_DIGIT>,
    digit_tpt: Box<gc::DV_TPT>,
    /// Bus routes: (other channel's index, full duplex); a half-duplex entry sits on the
    /// listener and names its source.
    links: Vec<(usize, bool)>,
}

// Safety: the raw pointers inside (I/O tables, digit buffers) point only into boxes the
// channel owns; the table is always behind a Mutex, so one thread touches them at a time.
unsafe impl Send for Chan {}

struct Inner {
    api: gc::DialogicApi,
    chans: Mutex<Vec<Chan>>,
    by_ld: HashMap<gc::LINEDEV, usize>,
    by_vdev: HashMap<c_int, usize>,
    events: Sender<CardEvent>,
    stamp: Stamp,
    stop: AtomicBool,
}

fn q850(info: &gc::GC_INFO) -> Cause {
    // ISDN call control reports the Q.850 cause in ccValue's low 7 bits.
    match (info.ccValue & 0x7f) as u8 {
        0 => Cause::NORMAL_CLEARING,
        c => Cause(c),
    }
}

impl Inner {
    fn gc_error(&self, call: &str, ch: ChannelId) -> Error {
        let mut info = gc::GC_INFO::default();
        // Safety: gc_ErrorInfo fills the struct; its strings are the library's own.
        let msg = if unsafe { (self.api.gc_ErrorInfo)(&mut info) } == 0 && !info.gcMsg.is_null() {
            unsafe { CStr::from_ptr(info.gcMsg) }.to_string_lossy().into_owned()
        } else {
            "no error information".to_string()
        };
        Error::new(ErrorKind::Io, format!("{ch}: {call} failed: {msg}"))
    }

    fn gc_check(&self, call: &str, ch: ChannelId, rc: c_int) -> Result<()> {
        if rc < 0 {
            Err(self.gc_error(call, ch))
        } else {
            Ok(())
        }
    }

    fn dx_check(&self, call: &str, c: &Chan, rc: c_int) -> Result<()> {
        if rc >= 0 {
            return Ok(());
        }
        // Safety: ATDV_ERRMSGP returns the library's own static text, or null.
        let p = unsafe { (self.api.ATDV_ERRMSGP)(c.vdev) };
        let msg = if p.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        };
        Err(Error::new(ErrorKind::Io, format!("{}: {call} failed: {msg}", c.id)))
    }

    fn emit(&self, kind: EventKind) {
        let _ = self.events.send(CardEvent { time: self.stamp.now(), kind });
    }

    /// Start collecting one digit on the channel's voice device.
    fn arm_digits(&self, c: &mut Chan) {
        if c.getdig_armed || c.play.is_some() || c.state != ChannelState::Connected {
            return;
        }
        *c.digits = gc::DV_DIGIT::default();
        *c.digit_tpt = gc::DV_TPT {
            tp_type: gc::IO_EOT,
            tp_termno: gc::DX_MAXDTMF,
            tp_length: 1,
            tp_flags: gc::TF_MAXDTMF,
            tp_data: 0,
            rfu: 0,
            tp_nextp: std::ptr::null_mut(),
        };
        // Safety: both boxes live in the channel until TDX_GETDIG (or the card closes,
        // after the event thread has stopped).
        let rc =
            unsafe { (self.api.dx_getdig)(c.vdev, &mut *c.digit_tpt, &mut *c.digits, gc::EV_ASYNC as u16) };
        c.getdig_armed = rc >= 0;
    }

    /// Stop the voice device's current I/O (digit collection) synchronously.
    fn stop_voice(&self, c: &mut Chan) {
        if c.getdig_armed || c.play.is_some() {
            // Safety: plain call on an open voice device.
            unsafe { (self.api.dx_stopch)(c.vdev, gc::EV_SYNC as u16) };
            c.getdig_armed = false;
        }
    }

    /// Wait for and handle events until told to stop. Runs on the event thread.
    fn run_events(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            // Safety: plain SRL calls on the event thread, the only one that waits.
            if unsafe { (self.api.sr_waitevt)(WAIT_MS) } < 0 {
                continue;
            }
            let kind = unsafe { (self.api.sr_getevttype)(0) };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if (gc::DT_GC..gc::DT_GC + 0x100).contains(&kind) {
                    let mut me = gc::METAEVENT::default();
                    // Safety: fills the struct from the current event.
                    if unsafe { (self.api.gc_GetMetaEvent)(&mut me) } < 0 {
                        return;
                    }
                    let cause = if me.evttype == gc::GCEV_DISCONNECTED {
                        let mut info = gc::GC_INFO::default();
                        // Safety: the metaevent is the current one; the info is filled in.
                        if unsafe { (self.api.gc_ResultInfo)(&me, &mut info) } == 0 {
                            q850(&info)
                        } else {
                            Cause::NORMAL_UNSPECIFIED
                        }
                    } else {
                        Cause::NORMAL_CLEARING
                    };
                    self.on_gc(&me, cause);
                } else {
                    // Safety: plain SRL query on the current event.
                    let dev = unsafe { (self.api.sr_getevtdev)(0) };
                    self.on_voice(kind, dev as c_int);
                }
            }));
            if outcome.is_err() {
                eprintln!("dialogic: handling SDK event {kind:#x} panicked; event dropped");
            }
        }
    }

    fn on_gc(&self, me: &gc::METAEVENT, cause: Cause) {
        let Some(&i) = self.by_ld.get(&me.linedev) else { return };
        let Ok(mut chans) = self.chans.lock() else { return };
        let c = &mut chans[i];
        let ch = c.id;
        let api = &self.api;
        match me.evttype {
            gc::GCEV_UNBLOCKED => {
                // Safety: plain call on an open line device.
                unsafe {
                    (api.gc_WaitCall)(c.ld, std::ptr::null_mut(), std::ptr::null_mut(), 0, gc::EV_ASYNC)
                };
                if !c.opened {
                    c.opened = true;
                } else if c.state == ChannelState::Blocked {
                    c.state = ChannelState::Idle;
                    self.emit(EventKind::Unblocked { ch });
                }
            }
            gc::GCEV_OPENEX_FAIL | gc::GCEV_BLOCKED => {
                c.state = ChannelState::Blocked;
                let reason =
                    if me.evttype == gc::GCEV_BLOCKED { "line device blocked" } else { "gc_OpenEx failed" };
                self.emit(EventKind::Blocked { ch, reason: reason.to_string() });
            }
            gc::GCEV_SETCHANSTATE => match c.blocking.take() {
                Some(true) => {
                    c.state = ChannelState::Blocked;
                    self.emit(EventKind::Blocked { ch, reason: "blocked locally".to_string() });
                }
                Some(false) => {
                    c.state = ChannelState::Idle;
                    self.emit(EventKind::Unblocked { ch });
                }
                None => {}
            },
            gc::GCEV_OFFERED if c.state == ChannelState::Idle => {
                c.crn = me.crn;
                c.ending = None;
                let info = |id| {
                    let mut buf = [0u8; gc::GC_ADDRSIZE];
                    // Safety: the buffer holds GC_ADDRSIZE bytes, as the API requires.
                    let rc = unsafe { (api.gc_GetCallInfo)(me.crn, id, buf.as_mut_ptr().cast()) };
                    if rc < 0 {
                        String::new()
                    } else {
                        from_c_buf(&buf)
                    }
                };
                let (ani, dnis) = (info(gc::ORIGINATION_ADDRESS), info(gc::DESTINATION_ADDRESS));
                c.state = ChannelState::Offered;
                self.emit(EventKind::Offered {
                    ch,
                    ani: (!ani.is_empty()).then_some(ani),
                    dnis,
                    category: CallerCategory::Ordinary,
                });
            }
            gc::GCEV_ALERTING if c.state == ChannelState::Dialing => {
                c.state = ChannelState::Alerting;
                self.emit(EventKind::Alerting { ch });
            }
            gc::GCEV_ANSWERED | gc::GCEV_CONNECTED if c.crn != 0 && c.ending.is_none() => {
                c.state = ChannelState::Connected;
                self.emit(EventKind::Answered { ch });
                self.arm_digits(c);
            }
            gc::GCEV_DISCONNECTED if c.crn != 0 && c.ending.is_none() => {
                c.ending = Some((cause, Side::Remote));
                c.state = ChannelState::Releasing;
                // Safety: plain call on the live CRN.
                unsafe { (api.gc_DropCall)(c.crn, gc::GC_NORMAL_CLEARING, gc::EV_ASYNC) };
            }
            gc::GCEV_DROPCALL if c.crn != 0 => {
                // Safety: plain call on the live CRN.
                unsafe { (api.gc_ReleaseCallEx)(c.crn, gc::EV_ASYNC) };
            }
            gc::GCEV_RELEASECALL => {
                self.stop_voice(c);
                if let Some(p) = c.play.take() {
                    c.stale_play_ends += 1;
                    self.emit(EventKind::PlayFinished { ch, id: p.id, reason: PlayEnd::Released });
                }
                let (cause, by) = c.ending.take().unwrap_or((Cause::NORMAL_CLEARING, Side::Remote));
                c.crn = 0;
                c.state = ChannelState::Idle;
                self.emit(EventKind::Released { ch, cause, by });
            }
            _ => {}
        }
    }

    fn on_voice(&self, kind: c_long, dev: c_int) {
        let Some(&i) = self.by_vdev.get(&dev) else { return };
        let Ok(mut chans) = self.chans.lock() else { return };
        let c = &mut chans[i];
        let ch = c.id;
        match kind {
            gc::TDX_PLAY if c.stale_play_ends > 0 => c.stale_play_ends -= 1,
            gc::TDX_PLAY => {
                let Some(p) = c.play.take() else { return };
                // Safety: plain query on an open voice device.
                let term = unsafe { (self.api.ATDX_TERMMSK)(c.vdev) };
                let reason = if p.stop_requested {
                    PlayEnd::Stopped
                } else if term & gc::TM_MAXDTMF != 0 {
                    PlayEnd::Digit
                } else {
                    PlayEnd::Completed
                };
                self.emit(EventKind::PlayFinished { ch, id: p.id, reason });
                self.arm_digits(c);
            }
            gc::TDX_GETDIG if c.getdig_armed => {
                c.getdig_armed = false;
                let bytes: Vec<u8> = c.digits.dg_value.iter().map(|&b| b as u8).collect();
                let t = self.stamp.now();
                for digit in from_c_buf(&bytes).chars() {
                    if check_digits(&digit.to_string()).is_ok() {
                        self.emit(EventKind::Digit { ch, digit, start: t, end: t });
                    }
                }
                self.arm_digits(c);
            }
            _ => {}
        }
    }
}

/// A card driven through a Dialogic-style GlobalCall/Voice SDK.
pub struct DialogicCard {
    caps: Capabilities,
    inner: Arc<Inner>,
    by_id: HashMap<ChannelId, usize>,
    thread: Option<JoinHandle<()>>,
    // Declared last: dropped after everything that points into it.
    _lib: SdkLibrary,
}

impl std::fmt::Debug for DialogicCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialogicCard")
            .field("sdk", &self._lib.path())
            .field("channels", &self.by_id.len())
            .finish()
    }
}

/// Check that `sdk_path` is a loadable GlobalCall/Voice/SRL library with every function
/// the adapter calls, without starting it (for `hotline cards probe`).
pub fn probe(sdk_path: &std::path::Path) -> Result<()> {
    let lib = SdkLibrary::open(sdk_path, WHAT)?;
    // Safety: the table is only built to check the symbols, never called.
    unsafe { gc::DialogicApi::load(|name| lib.symbol(name)) }.map(|_| ())
}

impl DialogicCard {
    /// Load the SDK, start GlobalCall, open every channel's devices and start the event thread.
    pub fn open(options: DialogicOptions, events: Sender<CardEvent>) -> Result<DialogicCard> {
        let lib = SdkLibrary::open(&options.sdk_path, WHAT)?;
        // Safety: the symbols come from the loaded library, kept alive in `_lib` for as
        // long as `api` is used; the event thread is joined in Drop before unloading.
        let api = unsafe { gc::DialogicApi::load(|name| lib.symbol(name))? };
        let card_err =
            |what: &str| Error::new(ErrorKind::Io, format!("{}: {what}", options.sdk_path.display()));
        // Safety: a null start structure starts every installed call control library.
        if unsafe { (api.gc_Start)(std::ptr::null()) } < 0 {
            return Err(card_err("gc_Start failed"));
        }
        let mut chans: Vec<Chan> = Vec::new();
        let close_all = |chans: &[Chan]| {
            for c in chans {
                // Safety: closing devices this function opened.
                unsafe {
                    (api.gc_Close)(c.ld);
                    (api.dx_close)(c.vdev);
                }
            }
            unsafe { (api.gc_Stop)() };
        };
        for dc in &options.channels {
            let voice = c_string("voice device name", &dc.voice)?;
            let line = c_string("line device name", &dc.line)?;
            // Safety: valid NUL-terminated names for the calls; ld is written on success.
            let vdev = unsafe { (api.dx_open)(voice.as_ptr(), 0) };
            if vdev < 0 {
                close_all(&chans);
                return Err(card_err(&format!("{}: dx_open {:?} failed", dc.id, dc.voice)));
            }
            let mut ld: gc::LINEDEV = 0;
            if unsafe { (api.gc_OpenEx)(&mut ld, line.as_ptr(), gc::EV_ASYNC as c_int, std::ptr::null_mut()) }
                < 0
            {
                unsafe { (api.dx_close)(vdev) };
                close_all(&chans);
                return Err(card_err(&format!("{}: gc_OpenEx {:?} failed", dc.id, dc.line)));
            }
            chans.push(Chan {
                id: dc.id,
                signalling: dc.signalling.clone(),
                ld,
                vdev,
                opened: false,
                state: ChannelState::Idle,
                crn: 0,
                ending: None,
                play: None,
                stale_play_ends: 0,
                getdig_armed: false,
                blocking: None,
                digits: Box::default(),
                digit_tpt: Box::new(gc::DV_TPT {
                    tp_type: gc::IO_EOT,
                    tp_termno: 0,
                    tp_length: 0,
                    tp_flags: 0,
                    tp_data: 0,
                    rfu: 0,
                    tp_nextp: std::ptr::null_mut(),
                }),
                links: Vec::new(),
            });
        }
        let by_ld = chans.iter().enumerate().map(|(i, c)| (c.ld, i)).collect();
        let by_vdev = chans.iter().enumerate().map(|(i, c)| (c.vdev, i)).collect();
        let by_id = chans.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        let inner = Arc::new(Inner {
            api,
            chans: Mutex::new(chans),
            by_ld,
            by_vdev,
            events,
            stamp: Stamp::new(),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name(format!("dialogic-card-{}", options.card))
                .spawn(move || inner.run_events())
                .map_err(|e| {
                    Error::new(ErrorKind::Io, format!("cannot start the Dialogic event thread: {e}"))
                })?
        };
        let mut caps = Capabilities::new("Dialogic GlobalCall");
        caps.audio = true;
        caps.dtmf_detection = true;
        caps.bus_switching = true;
        Ok(DialogicCard { caps, inner, by_id, thread: Some(thread), _lib: lib })
    }

    fn index(&self, ch: ChannelId) -> Result<usize> {
        self.by_id.get(&ch).copied().ok_or_else(|| {
            Error::new(ErrorKind::NoSuchChannel, format!("{ch}: no such channel on this Dialogic card"))
        })
    }

    fn network_handle(&self, c: &Chan) -> Result<c_int> {
        let mut h: c_int = 0;
        // Safety: h is written on success.
        self.inner
            .gc_check("gc_GetNetworkH", c.id, unsafe { (self.inner.api.gc_GetNetworkH)(c.ld, &mut h) })?;
        Ok(h)
    }

    fn run(&mut self, command: Command) -> Result<()> {
        let inner = self.inner.clone();
        let api = inner.api;
        let mut chans =
            inner.chans.lock().map_err(|_| Error::new(ErrorKind::Io, "Dialogic channel table poisoned"))?;
        let invalid = |c: &Chan, what: &str| {
            Err(Error::new(
                ErrorKind::InvalidState,
                format!("{}: cannot {what} in state {:?}", c.id, c.state),
            ))
        };
        match command {
            Command::Accept { ch } => {
                let c = &mut chans[self.index(ch)?];
                if c.state != ChannelState::Offered {
                    return invalid(c, "accept");
                }
                // Safety: plain call on the live CRN.
                inner.gc_check("gc_AcceptCall", ch, unsafe { (api.gc_AcceptCall)(c.crn, 0, gc::EV_ASYNC) })?;
                c.state = ChannelState::Alerting;
                Ok(())
            }
            Command::Answer { ch } => {
                let c = &mut chans[self.index(ch)?];
                if !matches!(c.state, ChannelState::Offered | ChannelState::Alerting) || c.crn == 0 {
                    return invalid(c, "answer");
                }
                // Safety: plain call on the live CRN.
                inner.gc_check("gc_AnswerCall", ch, unsafe { (api.gc_AnswerCall)(c.crn, 0, gc::EV_ASYNC) })
            }
            Command::Reject { ch, cause } | Command::Release { ch, cause } => {
                let c = &mut chans[self.index(ch)?];
                if c.crn == 0 || c.ending.is_some() {
                    return invalid(c, "release");
                }
                // GlobalCall's drop causes are numbered as Q.850's.
                // Safety: plain call on the live CRN.
                let rc = unsafe { (api.gc_DropCall)(c.crn, c_int::from(cause.0), gc::EV_ASYNC) };
                inner.gc_check("gc_DropCall", ch, rc)?;
                c.ending = Some((cause, Side::Local));
                c.state = ChannelState::Releasing;
                Ok(())
            }
            Command::PlaceCall { ch, called, calling, .. } => {
                let c = &mut chans[self.index(ch)?];
                if c.state != ChannelState::Idle || c.crn != 0 {
                    return invalid(c, "place a call");
                }
                let called = c_string("called number", &called)?;
                if let Some(calling) = calling {
                    let calling = c_string("calling number", &calling)?;
                    // Safety: valid string for the call.
                    let rc = unsafe { (api.gc_SetCallingNum)(c.ld, calling.as_ptr()) };
                    inner.gc_check("gc_SetCallingNum", ch, rc)?;
                }
                let mut crn: gc::CRN = 0;
                // Safety: valid string; crn is written on success.
                let rc = unsafe {
                    (api.gc_MakeCall)(c.ld, &mut crn, called.as_ptr(), std::ptr::null_mut(), 0, gc::EV_ASYNC)
                };
                inner.gc_check("gc_MakeCall", ch, rc)?;
                c.crn = crn;
                c.ending = None;
                c.state = ChannelState::Dialing;
                Ok(())
            }
            Command::Play { ch, id, source, barge_in } => {
                let c = &mut chans[self.index(ch)?];
                let PlaySource::Prompt(path) = source else {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("{ch}: the Dialogic adapter plays prompt files only (tones and frame streams are not mapped)"),
                    ));
                };
                let file = File::open(&path)
                    .map_err(|e| Error::new(ErrorKind::Media, format!("{ch}: cannot open prompt {}: {e}", path.display())))?;
                // A new play replaces the one running, which ends as stopped (as on every
                // card); the synchronous stop frees the old I/O tables before they drop.
                let replaced = c.play.as_ref().map(|p| p.id);
                inner.stop_voice(c);
                if let Some(old) = replaced {
                    c.play = None;
                    c.stale_play_ends += 1;
                    inner.emit(EventKind::PlayFinished { ch, id: old, reason: PlayEnd::Stopped });
                }
                let mut iott = Box::new(gc::DX_IOTT {
                    io_type: gc::IO_DEV | gc::IO_EOT,
                    rfu: 0,
                    io_fhandle: file.as_raw_fd(),
                    io_bufp: std::ptr::null_mut(),
                    io_offset: 0,
                    io_length: -1,
                    io_nextp: std::ptr::null_mut(),
                    io_prevp: std::ptr::null_mut(),
                });
                let mut tpt = Box::new(gc::DV_TPT {
                    tp_type: gc::IO_EOT,
                    tp_termno: if barge_in { gc::DX_MAXDTMF } else { 0 },
                    tp_length: u16::from(barge_in),
                    tp_flags: gc::TF_MAXDTMF,
                    tp_data: 0,
                    rfu: 0,
                    tp_nextp: std::ptr::null_mut(),
                });
                let mut xpb = Box::new(gc::DX_XPB {
                    wFileFormat: gc::FILE_FORMAT_WAVE,
                    wDataFormat: gc::DATA_FORMAT_PCM,
                    nSamplesPerSec: gc::DRT_8KHZ,
                    wBitsPerSample: 16,
                });
                // Safety: the tables and the file stay alive in `c.play` until TDX_PLAY.
                let tptp: *mut gc::DV_TPT = if barge_in { &mut *tpt } else { std::ptr::null_mut() };
                let rc = unsafe { (api.dx_playiottdata)(c.vdev, &mut *iott, tptp, &mut *xpb, gc::EV_ASYNC as u16) };
                if rc < 0 {
                    let e = inner.dx_check("dx_playiottdata", c, rc).unwrap_err();
                    inner.arm_digits(c);
                    return Err(Error::new(ErrorKind::Media, format!("{} ({})", e.message(), path.display())));
                }
                c.play =
                    Some(Play { id, stop_requested: false, _file: file, _iott: iott, _tpt: tpt, _xpb: xpb });
                Ok(())
            }
            Command::StopPlay { ch } => {
                let c = &mut chans[self.index(ch)?];
                let vdev = c.vdev;
                let Some(p) = &mut c.play else { return Ok(()) };
                p.stop_requested = true;
                // Safety: plain call on an open voice device.
                let rc = unsafe { (api.dx_stopch)(vdev, gc::EV_ASYNC as u16) };
                inner.dx_check("dx_stopch", c, rc)
            }
            Command::SendDigits { ch, digits } => {
                let c = &chans[self.index(ch)?];
                check_digits(&digits)?;
                let d = c_string("digits", &digits)?;
                // Safety: valid string for the call; no call-progress analysis.
                let rc = unsafe { (api.dx_dial)(c.vdev, d.as_ptr(), std::ptr::null_mut(), gc::EV_ASYNC as u16) };
                inner.dx_check("dx_dial", c, rc)
            }
            Command::Connect { a, b } => {
                let (ia, ib) = (self.index(a)?, self.index(b)?);
                let (na, nb) = (self.network_handle(&chans[ia])?, self.network_handle(&chans[ib])?);
                // Safety: plain call on two network devices.
                let rc = unsafe { (api.nr_scroute)(na, gc::SC_DTI, nb, gc::SC_DTI, gc::SC_FULLDUP) };
                inner.gc_check("nr_scroute", a, rc)?;
                chans[ia].links.push((ib, true));
                chans[ib].links.push((ia, true));
                Ok(())
            }
            Command::Listen { listener, source } => {
                let (il, is) = (self.index(listener)?, self.index(source)?);
                let (nl, ns) = (self.network_handle(&chans[il])?, self.network_handle(&chans[is])?);
                // Half duplex: the second device listens to the first.
                // Safety: plain call on two network devices.
                let rc = unsafe { (api.nr_scroute)(ns, gc::SC_DTI, nl, gc::SC_DTI, gc::SC_HALFDUP) };
                inner.gc_check("nr_scroute", listener, rc)?;
                chans[il].links.push((is, false));
                Ok(())
            }
            Command::Disconnect { ch } => {
                let i = self.index(ch)?;
                let me = self.network_handle(&chans[i])?;
                for (j, duplex) in std::mem::take(&mut chans[i].links) {
                    let other = self.network_handle(&chans[j])?;
                    let (a, b, mode) = if duplex { (me, other, gc::SC_FULLDUP) } else { (other, me, gc::SC_HALFDUP) };
                    // Safety: plain call on two network devices.
                    let rc = unsafe { (api.nr_scunroute)(a, gc::SC_DTI, b, gc::SC_DTI, mode) };
                    inner.gc_check("nr_scunroute", ch, rc)?;
                    chans[j].links.retain(|&(k, _)| k != i);
                }
                for j in 0..chans.len() {
                    if chans[j].links.iter().any(|&(k, d)| k == i && !d) {
                        let l = self.network_handle(&chans[j])?;
                        // Safety: plain call on two network devices.
                        let rc = unsafe { (api.nr_scunroute)(me, gc::SC_DTI, l, gc::SC_DTI, gc::SC_HALFDUP) };
                        inner.gc_check("nr_scunroute", ch, rc)?;
                        chans[j].links.retain(|&(k, _)| k != i);
                    }
                }
                Ok(())
            }
            Command::Block { ch } | Command::Unblock { ch } => {
                let c = &mut chans[self.index(ch)?];
                let out = matches!(command, Command::Block { .. });
                let ready = if out { c.state == ChannelState::Idle } else { c.state == ChannelState::Blocked };
                if !ready || c.blocking.is_some() {
                    return invalid(c, if out { "block" } else { "unblock" });
                }
                let state = if out { gc::GCLS_OUT_OF_SERVICE } else { gc::GCLS_INSERVICE };
                // Safety: plain call on an open line device.
                let rc = unsafe { (api.gc_SetChanState)(c.ld, state, gc::EV_ASYNC) };
                inner.gc_check("gc_SetChanState", ch, rc)?;
                c.blocking = Some(out);
                Ok(())
            }
            other => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{}: {} is not mapped on the Dialogic adapter (stations, taps and conferences are not done)",
                    other.channel().map(|c| c.to_string()).unwrap_or_default(),
                    command_name(&other)
                ),
            )),
        }
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::RingStation { .. } | Command::StopRinging { .. } => "ringing a station",
        Command::StartTap { .. } | Command::StopTap { .. } => "tapping",
        Command::JoinConference { .. }
        | Command::SetMemberRights { .. }
        | Command::LeaveConference { .. } => "conferencing",
        _ => "this command",
    }
}

impl Card for DialogicCard {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn channels(&self) -> Vec<ChannelInfo> {
        let Ok(chans) = self.inner.chans.lock() else { return Vec::new() };
        chans
            .iter()
            .map(|c| ChannelInfo {
                id: c.id,
                kind: c.id.kind(),
                state: c.state,
                signalling: c.signalling.clone(),
            })
            .collect()
    }

    fn execute(&mut self, now: Instant, command: Command) -> Result<()> {
        self.inner.stamp.set(now);
        self.run(command)
    }

    fn poll(&mut self, now: Instant) -> Result<Option<Instant>> {
        self.inner.stamp.set(now);
        if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            return Err(Error::new(ErrorKind::Io, "the Dialogic event thread stopped: reopen the card"));
        }
        Ok(None)
    }
}

impl Drop for DialogicCard {
    fn drop(&mut self) {
        // Stop the event thread (it wakes every WAIT_MS), then close devices and
        // GlobalCall: only then may the library be unloaded.
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let api = self.inner.api;
        if let Ok(mut chans) = self.inner.chans.lock() {
            for c in chans.iter_mut() {
                self.inner.stop_voice(c);
                // Safety: closing devices opened in `open`.
                unsafe {
                    (api.gc_Close)(c.ld);
                    (api.dx_close)(c.vdev);
                }
            }
        }
        // Safety: GlobalCall was started in `open`.
        unsafe { (api.gc_Stop)() };
    }
}
