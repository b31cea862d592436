//! The Synway-style SynCTI adapter: a [`Card`] over the `Ssm…` API, loaded at run time.
//!
//! Channels: `SsmGetMaxCh` and `SsmGetChType` list them; analog trunks become FXO ports,
//! stations FXS ports, and digital trunk channels (China No.1, TUP, ISDN, ISUP) E1
//! bearer channels, 30 per span in SDK order (timeslots 1–15, 17–31).
//!
//! Events: the SDK calls our `on_sdk_event` on its own thread (extended callback mode,
//! `SsmSetEvent`). The callback copies the event into a bounded crossbeam channel and
//! returns; it runs under `catch_unwind`, so nothing of ours unwinds into the SDK. A
//! translator thread maps channel states to [`EventKind`]s:
//!
//! | SDK | ours |
//! | --- | --- |
//! | `S_CALL_RINGING` on a trunk | `Offered` (ANI `SsmGetCallerId`, DNIS `SsmGetPhoNumStr`) |
//! | `E_PROC_AutoDial` `DIAL_ECHOTONE` | `Alerting` |
//! | `S_CALL_TALKING`, `DIAL_VOICE` | `Answered` |
//! | `S_CALL_PENDING` (far end released) | `SsmHangup`, then `Released` (cause from the pending or release reason) |
//! | `DIAL_BUSYTONE`, `DIAL_NOANSWER`, `DIAL_FAILURE`… | `Released` with 17, 19, the failure reason's cause… |
//! | `E_CHG_RcvDTMF` | `Digit` |
//! | `E_PROC_PlayEnd` | `PlayFinished` |
//! | `S_CALL_PICKUPED` / `S_CALL_STANDBY` on a station | `OffHook` / `OnHook` |
//! | blocked states | `Blocked` / `Unblocked` |
//!
//! SynCTI is process-global (one `SsmStartCti` per process), so only one
//! [`SynwayCard`] may be open at a time.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use hotline_sys::synway as ssm;

use super::{c_string, check_digits, from_c_buf, SdkLibrary, Stamp};
use crate::card::{Capabilities, Card};
use crate::cause::Cause;
use crate::channel::{e1_bearer_timeslots, ChannelId, ChannelInfo, ChannelState};
use crate::command::{Command, PlaySource};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{CardEvent, EventKind, PlayEnd, Side};
use crate::signal::CallerCategory;
use crate::time::Instant;

/// What the Synway SDK is, for error messages.
const WHAT: &str =
    "the Synway SynCTI driver library (libshpa3.so / SHP_A3.dll, from Synway's driver package)";

/// How many raw SDK events may wait for the translator before new ones are dropped
/// (and counted): the SDK thread must never block on us.
const RAW_QUEUE: usize = 4096;

/// One SDK event, copied out of the callback.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SdkEvent {
    /// `wEventCode`.
    pub code: u16,
    /// `nReference`: the SDK channel number, for channel events.
    pub reference: i32,
    /// `dwParam`.
    pub param: u32,
}

/// A hook that sees every raw SDK event on the SDK's thread, before translation: for
/// field diagnostics (logging what the card really said). It must be quick; a panic in
/// it is caught, counted in [`SynwayCard::callback_faults`], and the event still handled.
pub type TraceHook = Arc<dyn Fn(&SdkEvent) + Send + Sync>;

/// How to open a Synway card.
#[derive(Clone)]
pub struct SynwayOptions {
    /// Our card id.
    pub card: u16,
    /// The SDK library: `/opt/synway/lib/libshpa3.so` or wherever the driver installed it.
    pub sdk_path: PathBuf,
    /// The SDK's own configuration (`ShConfig.ini`), written with Synway's tools.
    pub sdk_config: PathBuf,
    /// The SDK's voice index file (`ShIndex.ini`).
    pub sdk_index: PathBuf,
    pub trace: Option<TraceHook>,
}

impl std::fmt::Debug for SynwayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynwayOptions")
            .field("card", &self.card)
            .field("sdk_path", &self.sdk_path)
            .field("sdk_config", &self.sdk_config)
            .field("sdk_index", &self.sdk_index)
            .field("trace", &self.trace.is_some())
            .finish()
    }
}

impl SynwayOptions {
    /// Options with the SDK configuration files next to the library.
    pub fn new(card: u16, sdk_path: impl AsRef<Path>) -> SynwayOptions {
        let sdk_path = sdk_path.as_ref().to_path_buf();
        let dir = sdk_path.parent().map(Path::to_path_buf).unwrap_or_default();
        SynwayOptions {
            card,
            sdk_config: dir.join("ShConfig.ini"),
            sdk_index: dir.join("ShIndex.ini"),
            sdk_path,
            trace: None,
        }
    }
}

/// Where the SDK callback delivers: one per process, like the SDK.
struct CallbackSink {
    raw: Sender<SdkEvent>,
    trace: Option<TraceHook>,
    dropped: Arc<AtomicU64>,
    faults: Arc<AtomicU64>,
}

static SINK: RwLock<Option<Arc<CallbackSink>>> = RwLock::new(None);

/// The SDK's event callback. Copies the event and returns; never unwinds.
unsafe extern "system" fn on_sdk_event(event: *const ssm::SSM_EVENT) -> c_int {
    // Safety: the SDK passes a valid event for the duration of the call, or null.
    let Some(ev) = (unsafe { event.as_ref() }) else { return -1 };
    let ev = SdkEvent { code: ev.wEventCode, reference: ev.nReference, param: ev.dwParam };
    let sink = match SINK.read() {
        Ok(s) => s.clone(),
        Err(_) => return -1,
    };
    let Some(sink) = sink else { return -1 };
    let mut status = 0;
    if let Some(trace) = &sink.trace {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| trace(&ev))).is_err() {
            sink.faults.fetch_add(1, Ordering::Relaxed);
            status = -1;
        }
    }
    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.raw.try_send(ev)));
    match sent {
        Ok(Ok(())) => status,
        Ok(Err(TrySendError::Full(_))) => {
            sink.dropped.fetch_add(1, Ordering::Relaxed);
            -1
        }
        Ok(Err(TrySendError::Disconnected(_))) => -1,
        Err(_) => {
            sink.faults.fetch_add(1, Ordering::Relaxed);
            -1
        }
    }
}

/// A play in progress.
#[derive(Debug)]
struct Play {
    id: u32,
    barge_in: bool,
    stop_requested: bool,
    digit_seen: bool,
}

#[derive(Debug)]
struct Chan {
    id: ChannelId,
    sdk: c_int,
    sdk_type: c_int,
    signalling: &'static str,
    state: ChannelState,
    /// How the call is ending, once we know: the cause and who ended it.
    ending: Option<(Cause, Side)>,
    play: Option<Play>,
    /// `E_PROC_PlayEnd`s still to come for plays already reported (replaced by a new play).
    stale_play_ends: u32,
    /// Bus links: (other channel's SDK number, full duplex).
    links: Vec<(c_int, bool)>,
    /// The conference bridge the channel is in.
    conf: Option<u16>,
}

impl Chan {
    fn is_trunk(&self) -> bool {
        self.id.is_trunk()
    }
    fn in_call(&self) -> bool {
        matches!(
            self.state,
            ChannelState::Offered | ChannelState::Dialing | ChannelState::Alerting | ChannelState::Connected
        )
    }
}

struct Inner {
    api: ssm::SsmApi,
    chans: Mutex<Vec<Chan>>,
    by_sdk: HashMap<c_int, usize>,
    events: Sender<CardEvent>,
    stamp: Stamp,
}

impl Inner {
    fn last_error(&self) -> String {
        let mut buf = [0u8; 512];
        // Safety: SsmGetLastErrMsg writes a NUL-terminated string of under 512 bytes.
        unsafe { (self.api.SsmGetLastErrMsg)(buf.as_mut_ptr().cast()) };
        from_c_buf(&buf)
    }

    /// Turn an SDK return code into a Result: -1 is failure with the SDK's message.
    fn check(&self, call: &str, ch: ChannelId, rc: c_int) -> Result<()> {
        if rc == -1 {
            Err(Error::new(ErrorKind::Io, format!("{ch}: {call} failed: {}", self.last_error())))
        } else {
            Ok(())
        }
    }

    fn emit(&self, kind: EventKind) {
        // The engine dropping its receiver means it is shutting down: nothing to do.
        let _ = self.events.send(CardEvent { time: self.stamp.now(), kind });
    }

    fn sdk_string(
        &self,
        ch: c_int,
        f: unsafe extern "system" fn(c_int, *mut std::ffi::c_char) -> c_int,
    ) -> String {
        let mut buf = [0u8; 128];
        // Safety: the SDK writes a NUL-terminated number of under 128 bytes.
        let rc = unsafe { f(ch, buf.as_mut_ptr().cast()) };
        if rc == -1 {
            String::new()
        } else {
            from_c_buf(&buf)
        }
    }

    /// Translate one SDK event. Runs on the translator thread.
    fn handle(&self, ev: SdkEvent) {
        let Some(&idx) = self.by_sdk.get(&ev.reference) else { return };
        let Ok(mut chans) = self.chans.lock() else { return };
        let c = &mut chans[idx];
        let ch = c.id;
        match ev.code {
            ssm::E_CHG_ChState => self.state_changed(c, (ev.param & 0xffff) as c_int),
            ssm::E_PROC_AutoDial => self.dial_progress(c, ev.param),
            ssm::E_CHG_RcvDTMF => {
                let digit = (ev.param & 0xff) as u8 as char;
                if check_digits(&digit.to_string()).is_ok() {
                    if let Some(p) = &mut c.play {
                        p.digit_seen = true;
                    }
                    let t = self.stamp.now();
                    self.emit(EventKind::Digit { ch, digit, start: t, end: t });
                }
            }
            ssm::E_PROC_PlayEnd if c.stale_play_ends > 0 => c.stale_play_ends -= 1,
            ssm::E_PROC_PlayEnd => {
                if let Some(p) = c.play.take() {
                    let reason = if p.stop_requested {
                        PlayEnd::Stopped
                    } else if p.barge_in && p.digit_seen {
                        PlayEnd::Digit
                    } else {
                        PlayEnd::Completed
                    };
                    self.emit(EventKind::PlayFinished { ch, id: p.id, reason });
                }
            }
            _ => {}
        }
    }

    fn state_changed(&self, c: &mut Chan, new: c_int) {
        let ch = c.id;
        match new {
            ssm::S_CALL_RINGING if c.is_trunk() && c.state == ChannelState::Idle => {
                let ani = self.sdk_string(c.sdk, self.api.SsmGetCallerId);
                let dnis = self.sdk_string(c.sdk, self.api.SsmGetPhoNumStr);
                c.state = ChannelState::Offered;
                c.ending = None;
                self.emit(EventKind::Offered {
                    ch,
                    ani: (!ani.is_empty()).then_some(ani),
                    dnis,
                    category: CallerCategory::Ordinary,
                });
            }
            ssm::S_CALL_PICKUPED if !c.is_trunk() => {
                if c.state == ChannelState::Alerting {
                    c.state = ChannelState::Connected;
                    self.emit(EventKind::Answered { ch });
                } else if c.state == ChannelState::Idle {
                    c.state = ChannelState::OffHook;
                    self.emit(EventKind::OffHook { ch });
                }
            }
            ssm::S_CALL_TALKING if c.in_call() && c.state != ChannelState::Connected => {
                c.state = ChannelState::Connected;
                self.emit(EventKind::Answered { ch });
            }
            ssm::S_CALL_PENDING if c.in_call() && c.ending.is_none() => {
                let cause = self.pending_cause(c);
                self.end_call(c, cause, Side::Remote);
            }
            ssm::S_CALL_STANDBY => {
                self.finish_play(c);
                if !c.is_trunk() {
                    if matches!(c.state, ChannelState::OffHook | ChannelState::Connected) {
                        self.emit(EventKind::OnHook { ch });
                    }
                    c.state = ChannelState::Idle;
                    return;
                }
                if c.state == ChannelState::Blocked {
                    c.state = ChannelState::Idle;
                    self.emit(EventKind::Unblocked { ch });
                    return;
                }
                let ending = c.ending.take();
                let was_in_call = c.in_call() || c.state == ChannelState::Releasing;
                c.state = ChannelState::Idle;
                match ending {
                    Some((cause, by)) => self.emit(EventKind::Released { ch, cause, by }),
                    // The line went idle under a call without a pending state (an analog
                    // caller who gave up while ringing): a normal remote clearing.
                    None if was_in_call => {
                        self.emit(EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Remote })
                    }
                    None => {}
                }
            }
            ssm::S_CALL_REMOTE_BLOCK
            | ssm::S_CALL_LOCAL_BLOCK
            | ssm::S_CALL_UNAVAILABLE
            | ssm::S_CALL_OFFLINE
                if c.state != ChannelState::Blocked =>
            {
                let reason = match new {
                    ssm::S_CALL_REMOTE_BLOCK => "blocked by the far end",
                    ssm::S_CALL_LOCAL_BLOCK => "blocked locally",
                    ssm::S_CALL_OFFLINE => "line disconnected",
                    _ => "channel unavailable",
                };
                if c.in_call() {
                    self.finish_play(c);
                    self.emit(EventKind::Released { ch, cause: Cause::TEMPORARY_FAILURE, by: Side::Remote });
                }
                c.state = ChannelState::Blocked;
                c.ending = None;
                self.emit(EventKind::Blocked { ch, reason: reason.to_string() });
            }
            _ => {}
        }
    }

    fn dial_progress(&self, c: &mut Chan, progress: u32) {
        let ch = c.id;
        if !matches!(c.state, ChannelState::Dialing | ChannelState::Alerting) {
            return;
        }
        let failed = match progress {
            ssm::DIAL_ECHOTONE => {
                if c.state == ChannelState::Dialing {
                    c.state = ChannelState::Alerting;
                    self.emit(EventKind::Alerting { ch });
                }
                None
            }
            ssm::DIAL_VOICE | ssm::DIAL_VOICEF1 | ssm::DIAL_VOICEF2 => {
                c.state = ChannelState::Connected;
                self.emit(EventKind::Answered { ch });
                None
            }
            ssm::DIAL_BUSYTONE => Some(Cause::USER_BUSY),
            ssm::DIAL_NOANSWER | ssm::DIAL_ECHO_NOVOICE => Some(Cause::NO_ANSWER),
            ssm::DIAL_NOVOICE => Some(Cause::NO_USER_RESPONDING),
            ssm::DIAL_NO_DIALTONE => Some(Cause::NO_CIRCUIT_AVAILABLE),
            ssm::DIAL_INVALID_PHONUM => Some(Cause::UNALLOCATED_NUMBER),
            ssm::DIAL_FAILURE => {
                // Safety: plain query on a valid channel number.
                let reason = unsafe { (self.api.SsmGetAutoDialFailureReason)(c.sdk) };
                Some(autodial_failure_cause(reason))
            }
            _ => None,
        };
        if let Some(cause) = failed {
            self.end_call(c, cause, Side::Remote);
        }
    }

    /// The far end's release cause, from the pending reason (analog, China No.1) or,
    /// on ISDN and ISUP channels, the Q.850 release reason.
    fn pending_cause(&self, c: &Chan) -> Cause {
        if matches!(c.sdk_type, ssm::ISDN_USER_CH | ssm::ISDN_NET_CH | ssm::ISUP_CH) {
            // Safety: plain query on a valid channel number.
            let r = unsafe { (self.api.SsmGetReleaseReason)(c.sdk) };
            if (1..=127).contains(&r) {
                return Cause(r as u8);
            }
        }
        // Safety: plain query on a valid channel number.
        pending_reason_cause(unsafe { (self.api.SsmGetPendingReason)(c.sdk) })
    }

    /// Record how the call ends and hang the channel up; `Released` follows when the
    /// SDK reports the channel idle.
    fn end_call(&self, c: &mut Chan, cause: Cause, by: Side) {
        c.ending = Some((cause, by));
        c.state = ChannelState::Releasing;
        // Safety: plain call on a valid channel number. A failure leaves the channel
        // pending; the SDK's own error text is all we could add, so it is not raised.
        unsafe { (self.api.SsmHangup)(c.sdk) };
    }

    fn finish_play(&self, c: &mut Chan) {
        if let Some(p) = c.play.take() {
            self.emit(EventKind::PlayFinished { ch: c.id, id: p.id, reason: PlayEnd::Released });
        }
    }
}

/// Q.850 cause for a SynCTI pending reason.
pub fn pending_reason_cause(reason: c_int) -> Cause {
    match reason {
        ssm::ANALOGOUT_BUSYTONE | ssm::SS1OUT_BWD_KB2 | ssm::SS1OUT_BWD_KB3 => Cause::USER_BUSY,
        ssm::ANALOGOUT_NOANSWER | ssm::SS1OUT_NOANSWER | ssm::ANALOGOUT_ECHO_NOVOICE => Cause::NO_ANSWER,
        ssm::ANALOGOUT_NO_DIALTONE => Cause::NO_CIRCUIT_AVAILABLE,
        ssm::ANALOGOUT_TALKING_REMOTE_HANGUPED
        | ssm::SS1IN_TALKING_REMOTE_HANGUPED
        | ssm::SS1OUT_TALKING_REMOTE_HANGUPED => Cause::NORMAL_CLEARING,
        ssm::SS1OUT_BWD_A5 | ssm::SS1OUT_BWD_KB5 => Cause::UNALLOCATED_NUMBER,
        ssm::SS1OUT_BWD_A4 | ssm::SS1OUT_BWD_KB4 => Cause::SWITCHING_EQUIPMENT_CONGESTION,
        // The remaining China No.1 reasons are signalling timeouts and undefined signals.
        30..=38 => Cause::RECOVERY_ON_TIMER_EXPIRY,
        _ => Cause::NORMAL_UNSPECIFIED,
    }
}

/// Q.850 cause for a SynCTI AutoDial failure reason.
pub fn autodial_failure_cause(reason: c_int) -> Cause {
    match reason {
        r if r > ssm::ATDL_ISDN_CAUSE_BASE && r <= ssm::ATDL_ISDN_CAUSE_BASE + 127 => {
            Cause((r - ssm::ATDL_ISDN_CAUSE_BASE) as u8)
        }
        ssm::ATDL_SS1RcvKB2 | ssm::ATDL_SS1RcvKB3 | ssm::ATDL_IPRemoteBusy => Cause::USER_BUSY,
        ssm::ATDL_SS1RcvA5 | ssm::ATDL_SS1RcvKB5 | ssm::ATDL_ISDNEMPTYNO => Cause::UNALLOCATED_NUMBER,
        ssm::ATDL_SS1RcvA4 | ssm::ATDL_SS1RcvKB4 => Cause::SWITCHING_EQUIPMENT_CONGESTION,
        ssm::ATDL_WaitDialAnsTimeout | ssm::ATDL_WaitRemotePickupTimeout => Cause::NO_ANSWER,
        ssm::ATDL_Cancel => Cause::NORMAL_CLEARING,
        _ => Cause::NORMAL_UNSPECIFIED,
    }
}

/// A card driven through a Synway-style SynCTI SDK.
pub struct SynwayCard {
    caps: Capabilities,
    inner: Arc<Inner>,
    by_id: HashMap<ChannelId, usize>,
    translator: Option<JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
    faults: Arc<AtomicU64>,
    // Declared last: dropped after everything that points into it.
    _lib: SdkLibrary,
}

impl std::fmt::Debug for SynwayCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynwayCard")
            .field("sdk", &self._lib.path())
            .field("channels", &self.by_id.len())
            .finish()
    }
}

/// Check that `sdk_path` is a loadable SynCTI library with every function the adapter
/// calls, without starting it (for `hotline cards probe`).
pub fn probe(sdk_path: &Path) -> Result<()> {
    let lib = SdkLibrary::open(sdk_path, WHAT)?;
    // Safety: the table is only built to check the symbols, never called.
    unsafe { ssm::SsmApi::load(|name| lib.symbol(name)) }.map(|_| ())
}

impl SynwayCard {
    /// Load the SDK, start it, list its channels and start taking its events.
    pub fn open(options: SynwayOptions, events: Sender<CardEvent>) -> Result<SynwayCard> {
        let lib = SdkLibrary::open(&options.sdk_path, WHAT)?;
        // Safety: the symbols are resolved from the loaded library, kept alive in `_lib`
        // for as long as `api` is used (both live in the card; the translator thread is
        // joined in Drop before the library is unloaded).
        let api = unsafe { ssm::SsmApi::load(|name| lib.symbol(name))? };
        {
            let sink =
                SINK.read().map_err(|_| Error::new(ErrorKind::Io, "Synway callback state poisoned"))?;
            if sink.is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidState,
                    "a Synway card is already open in this process: the SynCTI SDK is process-global, open it once",
                ));
            }
        }
        let cfg = c_string("SDK config path", &options.sdk_config.to_string_lossy())?;
        let idx = c_string("SDK index path", &options.sdk_index.to_string_lossy())?;
        let inner_err = |what: &str| {
            let mut buf = [0u8; 512];
            // Safety: as in Inner::last_error.
            unsafe { (api.SsmGetLastErrMsg)(buf.as_mut_ptr().cast()) };
            Error::new(
                ErrorKind::Io,
                format!("{}: {what} failed: {}", options.sdk_path.display(), from_c_buf(&buf)),
            )
        };
        // Safety: both are valid NUL-terminated strings for the duration of the call.
        if unsafe { (api.SsmStartCti)(cfg.as_ptr(), idx.as_ptr()) } == -1 {
            return Err(inner_err("SsmStartCti"));
        }
        // From here on the SDK is started: close it on every error path.
        let fail = |e: Error| {
            // Safety: the SDK was started above.
            unsafe { (api.SsmCloseCti)() };
            e
        };
        // Safety: plain queries once the SDK is started.
        let max = unsafe { (api.SsmGetMaxCh)() };
        if max < 0 {
            return Err(fail(inner_err("SsmGetMaxCh")));
        }
        let mut chans = Vec::new();
        let (mut fxo, mut fxs, mut digital) = (0u16, 0u16, 0usize);
        let bearer: Vec<u8> = e1_bearer_timeslots().collect();
        for sdk in 0..max {
            // Safety: plain query on a channel number below SsmGetMaxCh.
            let t = unsafe { (api.SsmGetChType)(sdk) };
            let (id, signalling) = match t {
                ssm::ANALOG_CH => {
                    fxo += 1;
                    (ChannelId::fxo(options.card, fxo), "loop start")
                }
                ssm::USER_CH => {
                    fxs += 1;
                    (ChannelId::fxs(options.card, fxs), "loop start")
                }
                ssm::SS1_CH | ssm::TUP_CH | ssm::ISDN_USER_CH | ssm::ISDN_NET_CH | ssm::ISUP_CH => {
                    let span = (digital / bearer.len() + 1) as u8;
                    let ts = bearer[digital % bearer.len()];
                    digital += 1;
                    let sig = match t {
                        ssm::SS1_CH => "China No.1 (MFC-R2)",
                        ssm::TUP_CH => "SS7 TUP",
                        ssm::ISUP_CH => "SS7 ISUP",
                        _ => "ISDN PRI",
                    };
                    (ChannelId::e1(options.card, span, ts), sig)
                }
                // Recording taps, fax and other resource channels carry no calls of ours.
                _ => continue,
            };
            chans.push(Chan {
                id,
                sdk,
                sdk_type: t,
                signalling,
                state: ChannelState::Idle,
                ending: None,
                play: None,
                stale_play_ends: 0,
                links: Vec::new(),
                conf: None,
            });
        }
        let by_sdk = chans.iter().enumerate().map(|(i, c)| (c.sdk, i)).collect();
        let by_id = chans.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        let inner = Arc::new(Inner { api, chans: Mutex::new(chans), by_sdk, events, stamp: Stamp::new() });

        let (raw_tx, raw_rx) = bounded::<SdkEvent>(RAW_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let faults = Arc::new(AtomicU64::new(0));
        {
            let mut sink = SINK
                .write()
                .map_err(|_| fail(Error::new(ErrorKind::Io, "Synway callback state poisoned")))?;
            *sink = Some(Arc::new(CallbackSink {
                raw: raw_tx,
                trace: options.trace.clone(),
                dropped: dropped.clone(),
                faults: faults.clone(),
            }));
        }
        let translator = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name(format!("synway-card-{}", options.card))
                .spawn(move || translate(inner, raw_rx))
                .map_err(|e| {
                    clear_sink();
                    fail(Error::new(ErrorKind::Io, format!("cannot start the Synway event thread: {e}")))
                })?
        };
        let set = ssm::EVENT_SET_INFO {
            dwWorkMode: ssm::EVENT_CALLBACKA,
            lpHandlerParam: Some(on_sdk_event),
            dwOutCondition: 0,
            dwOutParamVal: 0,
            dwUser: 0,
        };
        // Safety: `set` is valid for the call; the callback is a plain function.
        if unsafe { (api.SsmSetEvent)(ssm::ALL_EVENTS, -1, 1, &set) } == -1 {
            let e = inner_err("SsmSetEvent");
            clear_sink();
            let _ = translator.join();
            return Err(fail(e));
        }
        let mut caps = Capabilities::new("Synway SynCTI");
        caps.audio = true;
        caps.dtmf_detection = true;
        caps.caller_id_generation = true;
        caps.bus_switching = true;
        // SynCTI's conference resource is sized in its own configuration; these are the
        // limits Hotline uses (the same defaults as the simulator's).
        caps.conference_bridges = 32;
        caps.conference_members = 16;
        Ok(SynwayCard { caps, inner, by_id, translator: Some(translator), dropped, faults, _lib: lib })
    }

    /// SDK events dropped because the translator fell behind (the queue holds 4096).
    pub fn dropped_events(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Panics caught in the SDK callback (a trace hook that panicked).
    pub fn callback_faults(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }

    /// The SDK's channel number for one of ours.
    pub fn sdk_channel(&self, ch: ChannelId) -> Option<i32> {
        let chans = self.inner.chans.lock().ok()?;
        self.by_id.get(&ch).map(|&i| chans[i].sdk)
    }

    fn index(&self, ch: ChannelId) -> Result<usize> {
        self.by_id.get(&ch).copied().ok_or_else(|| {
            Error::new(ErrorKind::NoSuchChannel, format!("{ch}: no such channel on this Synway card"))
        })
    }

    fn run(&mut self, command: Command) -> Result<()> {
        let inner = self.inner.clone();
        let api = inner.api;
        let mut chans =
            inner.chans.lock().map_err(|_| Error::new(ErrorKind::Io, "Synway channel table poisoned"))?;
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
                // SynCTI alerts the network itself when a call rings in (ISDN ALERTING,
                // R2 KB): accepting is bookkeeping only.
                c.state = ChannelState::Alerting;
                Ok(())
            }
            Command::Answer { ch } => {
                let c = &mut chans[self.index(ch)?];
                if !matches!(c.state, ChannelState::Offered | ChannelState::Alerting) || !c.is_trunk() {
                    return invalid(c, "answer");
                }
                // Safety: plain call on a valid channel number.
                inner.check("SsmPickup", ch, unsafe { (api.SsmPickup)(c.sdk) })
            }
            Command::Reject { ch, cause } | Command::Release { ch, cause } => {
                let c = &mut chans[self.index(ch)?];
                if !(c.in_call() || c.state == ChannelState::OffHook) {
                    return invalid(c, "release");
                }
                c.ending = Some((cause, Side::Local));
                c.state = ChannelState::Releasing;
                // Safety: plain call on a valid channel number.
                inner.check("SsmHangup", ch, unsafe { (api.SsmHangup)(c.sdk) })
            }
            Command::PlaceCall { ch, called, calling, .. } => {
                let c = &mut chans[self.index(ch)?];
                if c.state != ChannelState::Idle || !c.is_trunk() {
                    return invalid(c, "place a call");
                }
                let called_c = c_string("called number", &called)?;
                if let Some(calling) = calling {
                    let calling = c_string("calling number", &calling)?;
                    // Safety: valid NUL-terminated string for the call.
                    inner.check("SsmSetTxCallerId", ch, unsafe {
                        (api.SsmSetTxCallerId)(c.sdk, calling.as_ptr())
                    })?;
                }
                // Safety: valid NUL-terminated string for the call.
                inner.check("SsmAutoDial", ch, unsafe { (api.SsmAutoDial)(c.sdk, called_c.as_ptr()) })?;
                c.state = ChannelState::Dialing;
                c.ending = None;
                Ok(())
            }
            Command::RingStation { ch, caller_id } => {
                let c = &mut chans[self.index(ch)?];
                if c.is_trunk() || c.state != ChannelState::Idle {
                    return invalid(c, "ring");
                }
                let rc = match caller_id.and_then(|id| id.number) {
                    Some(number) => {
                        let text = c_string("caller ID", &number)?;
                        // Safety: valid string and its length; 0: the SDK's default delay.
                        unsafe { (api.SsmStartRingWithCIDStr)(c.sdk, text.as_ptr(), number.len() as u32, 0) }
                    }
                    // Safety: plain call on a valid channel number.
                    None => unsafe { (api.SsmStartRing)(c.sdk) },
                };
                inner.check("SsmStartRing", ch, rc)?;
                c.state = ChannelState::Alerting;
                Ok(())
            }
            Command::StopRinging { ch } => {
                let c = &mut chans[self.index(ch)?];
                if c.is_trunk() || c.state != ChannelState::Alerting {
                    return invalid(c, "stop ringing");
                }
                // Safety: plain call on a valid channel number.
                inner.check("SsmStopRing", ch, unsafe { (api.SsmStopRing)(c.sdk) })?;
                c.state = ChannelState::Idle;
                Ok(())
            }
            Command::Play { ch, id, source, barge_in } => {
                let c = &mut chans[self.index(ch)?];
                let PlaySource::Prompt(path) = source else {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("{ch}: the Synway adapter plays prompt files only (tones and frame streams are not mapped)"),
                    ));
                };
                let file = c_string("prompt path", &path.to_string_lossy())?;
                // A new play replaces the one running, which ends as stopped (as on every card).
                if let Some(old) = c.play.take() {
                    // Safety: plain call on a valid channel number.
                    inner.check("SsmStopPlay", ch, unsafe { (api.SsmStopPlay)(c.sdk) })?;
                    c.stale_play_ends += 1;
                    inner.emit(EventKind::PlayFinished { ch, id: old.id, reason: PlayEnd::Stopped });
                }
                // Safety: plain calls; the path is a valid string for the call.
                inner.check("SsmSetDtmfStopPlay", ch, unsafe {
                    (api.SsmSetDtmfStopPlay)(c.sdk, barge_in as c_int)
                })?;
                let rc =
                    unsafe { (api.SsmPlayFile)(c.sdk, file.as_ptr(), ssm::FORMAT_FROM_HEADER, 0, u32::MAX) };
                if rc == -1 {
                    return Err(Error::new(
                        ErrorKind::Media,
                        format!("{ch}: SsmPlayFile {} failed: {}", path.display(), inner.last_error()),
                    ));
                }
                c.play = Some(Play { id, barge_in, stop_requested: false, digit_seen: false });
                Ok(())
            }
            Command::StopPlay { ch } => {
                let c = &mut chans[self.index(ch)?];
                let Some(p) = &mut c.play else { return Ok(()) };
                p.stop_requested = true;
                // Safety: plain call on a valid channel number.
                inner.check("SsmStopPlay", ch, unsafe { (api.SsmStopPlay)(c.sdk) })
            }
            Command::SendDigits { ch, digits } => {
                let c = &chans[self.index(ch)?];
                check_digits(&digits)?;
                let d = c_string("digits", &digits)?;
                // Safety: valid NUL-terminated string for the call.
                inner.check("SsmTxDtmf", ch, unsafe { (api.SsmTxDtmf)(c.sdk, d.as_ptr()) })
            }
            Command::Connect { a, b } => {
                let (ia, ib) = (self.index(a)?, self.index(b)?);
                let (sa, sb) = (chans[ia].sdk, chans[ib].sdk);
                // Safety: plain call on valid channel numbers.
                inner.check("SsmTalkWith", a, unsafe { (api.SsmTalkWith)(sa, sb) })?;
                chans[ia].links.push((sb, true));
                chans[ib].links.push((sa, true));
                Ok(())
            }
            Command::Listen { listener, source } => {
                let (il, is) = (self.index(listener)?, self.index(source)?);
                let (sl, ss) = (chans[il].sdk, chans[is].sdk);
                // Safety: plain call on valid channel numbers.
                inner.check("SsmListenTo", listener, unsafe { (api.SsmListenTo)(sl, ss) })?;
                chans[il].links.push((ss, false));
                Ok(())
            }
            Command::Disconnect { ch } => {
                let i = self.index(ch)?;
                let me = chans[i].sdk;
                for (other, duplex) in std::mem::take(&mut chans[i].links) {
                    // Safety: plain calls on valid channel numbers.
                    let rc = if duplex {
                        unsafe { (api.SsmStopTalkWith)(me, other) }
                    } else {
                        unsafe { (api.SsmStopListenTo)(me, other) }
                    };
                    inner.check(if duplex { "SsmStopTalkWith" } else { "SsmStopListenTo" }, ch, rc)?;
                    if let Some(&j) = inner.by_sdk.get(&other) {
                        chans[j].links.retain(|&(s, _)| s != me);
                    }
                }
                // Others listening to this channel stop hearing it too.
                for j in 0..chans.len() {
                    if chans[j].links.iter().any(|&(s, d)| s == me && !d) {
                        let l = chans[j].sdk;
                        // Safety: plain call on valid channel numbers.
                        inner.check("SsmStopListenTo", ch, unsafe { (api.SsmStopListenTo)(l, me) })?;
                        chans[j].links.retain(|&(s, _)| s != me);
                    }
                }
                Ok(())
            }
            Command::Block { ch } => {
                let c = &chans[self.index(ch)?];
                // Safety: plain call on a valid channel number.
                inner.check("SsmBlockLocalCh", ch, unsafe { (api.SsmBlockLocalCh)(c.sdk) })
            }
            Command::Unblock { ch } => {
                let c = &chans[self.index(ch)?];
                // Safety: plain call on a valid channel number.
                inner.check("SsmUnblockLocalCh", ch, unsafe { (api.SsmUnblockLocalCh)(c.sdk) })
            }
            Command::StartTap { ch, .. } | Command::StopTap { ch, .. } => Err(Error::new(
                ErrorKind::Unsupported,
                format!("{ch}: taps are not mapped on the Synway adapter yet (SsmRecToMem)"),
            )),
            Command::JoinConference { conf, ch, rights } | Command::SetMemberRights { conf, ch, rights } => {
                let c = &mut chans[self.index(ch)?];
                if conf.card != ch.card || conf.bridge >= self.caps.conference_bridges {
                    return Err(Error::new(
                        ErrorKind::NoSuchChannel,
                        format!("{conf}: no such bridge on this card"),
                    ));
                }
                if !rights.listen || !rights.hidden_from.is_empty() {
                    // SynCTI groups have speakers and listeners, no per-member matrix.
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("{conf}: Synway conference groups cannot hide a member from another or mute listening"),
                    ));
                }
                let mode = if rights.talk { ssm::CONF_SPEAK_AND_LISTEN } else { ssm::CONF_LISTEN_ONLY };
                // Safety: plain call on a valid channel; the SDK creates the group on first
                // join and moves the channel out of any other group.
                let rc = unsafe {
                    (api.SsmJoinConfGroup)(
                        c_int::from(conf.bridge),
                        c.sdk,
                        mode,
                        ssm::CONF_DEFAULT_VOLUME,
                        1,
                        1,
                    )
                };
                inner.check("SsmJoinConfGroup", ch, rc)?;
                c.conf = Some(conf.bridge);
                Ok(())
            }
            Command::LeaveConference { conf, ch } => {
                let c = &mut chans[self.index(ch)?];
                if c.conf != Some(conf.bridge) {
                    return invalid(c, &format!("leave {conf}, which it is not in,"));
                }
                // Safety: plain call on a valid channel; the group is freed when empty.
                inner.check("SsmExitConfGroup", ch, unsafe { (api.SsmExitConfGroup)(c.sdk, 1) })?;
                c.conf = None;
                Ok(())
            }
        }
    }
}

fn clear_sink() {
    if let Ok(mut s) = SINK.write() {
        *s = None;
    }
}

/// The translator thread: raw SDK events in, CardEvents out, until the card closes.
fn translate(inner: Arc<Inner>, raw: Receiver<SdkEvent>) {
    for ev in raw.iter() {
        // A bug in translation must not stop the card's events: log and go on.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.handle(ev))).is_err() {
            eprintln!("synway: translating SDK event {ev:?} panicked; event dropped");
        }
    }
}

impl Card for SynwayCard {
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
                signalling: c.signalling.to_string(),
            })
            .collect()
    }

    fn execute(&mut self, now: Instant, command: Command) -> Result<()> {
        self.inner.stamp.set(now);
        self.run(command)
    }

    fn poll(&mut self, now: Instant) -> Result<Option<Instant>> {
        self.inner.stamp.set(now);
        if self.translator.as_ref().is_some_and(|t| t.is_finished()) {
            return Err(Error::new(ErrorKind::Io, "the Synway event thread stopped: reopen the card"));
        }
        // Everything arrives from the SDK's threads; nothing is due on a timer.
        Ok(None)
    }
}

impl Drop for SynwayCard {
    fn drop(&mut self) {
        // Stop the SDK first (no more callbacks), then close the channel the translator
        // reads, then wait for it: only then may the library be unloaded.
        // Safety: the SDK was started in `open`.
        unsafe { (self.inner.api.SsmCloseCti)() };
        clear_sink();
        if let Some(t) = self.translator.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_no1_busy_and_vacant_signals_map_to_q850() {
        assert_eq!(pending_reason_cause(ssm::SS1OUT_BWD_KB2), Cause::USER_BUSY);
        assert_eq!(pending_reason_cause(ssm::SS1OUT_BWD_KB5), Cause::UNALLOCATED_NUMBER);
        assert_eq!(autodial_failure_cause(ssm::ATDL_ISDN_CAUSE_BASE + 17), Cause::USER_BUSY);
        assert_eq!(autodial_failure_cause(ssm::ATDL_SS1RcvA4), Cause::SWITCHING_EQUIPMENT_CONGESTION);
        assert_eq!(autodial_failure_cause(9999), Cause::NORMAL_UNSPECIFIED);
    }
}
