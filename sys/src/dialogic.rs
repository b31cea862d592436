//! Our own declarations of the Dialogic-style GlobalCall (`gc_…`), Voice (`dx_…`),
//! Standard Runtime Library (`sr_…`) and SCbus routing (`nr_…`) functions, types and
//! constants that Hotline calls. Dialogic's headers (`gclib.h`, `dxxxlib.h`,
//! `srllib.h`) are proprietary, so nothing here is taken from them: names, signatures
//! and numbers come from the public API library references and public bindings of
//! that API. Values marked "less certain" must be checked against the installed SDK.
//!
//! The libraries (`libgc.so`, `libdxxx.so`, `libsrl.so`; an installation usually also
//! ships them together) are loaded at run time from a configured path, so these are
//! function-pointer types collected in [`DialogicApi`], filled by
//! [`DialogicApi::load`] from any symbol resolver. A machine without the SDK builds and
//! runs everything else.

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_ushort, c_void};

/// A GlobalCall line device handle.
pub type LINEDEV = c_long;
/// A GlobalCall call reference number.
pub type CRN = c_long;

/// Asynchronous mode: the function returns at once, completion comes as an event.
pub const EV_ASYNC: c_ulong = 0x8000;
/// Synchronous mode.
pub const EV_SYNC: c_ulong = 0x0000;

/// Base of GlobalCall event codes.
pub const DT_GC: c_long = 0x800;
pub const GCEV_TASKFAIL: c_long = DT_GC | 0x01;
/// `gc_AnswerCall` completed: the inbound call is connected.
pub const GCEV_ANSWERED: c_long = DT_GC | 0x02;
/// `gc_AcceptCall` completed: the caller hears ringback.
pub const GCEV_ACCEPT: c_long = DT_GC | 0x04;
/// `gc_DropCall` completed.
pub const GCEV_DROPCALL: c_long = DT_GC | 0x05;
/// `gc_SetChanState` completed.
pub const GCEV_SETCHANSTATE: c_long = DT_GC | 0x09;
/// `gc_OpenEx` completed.
pub const GCEV_OPENEX: c_long = DT_GC | 0x17;
pub const GCEV_OPENEX_FAIL: c_long = DT_GC | 0x18;
/// The far end of our outbound call is being alerted.
pub const GCEV_ALERTING: c_long = DT_GC | 0x21;
/// The far end answered our outbound call.
pub const GCEV_CONNECTED: c_long = DT_GC | 0x22;
pub const GCEV_ERROR: c_long = DT_GC | 0x23;
/// A call arrives.
pub const GCEV_OFFERED: c_long = DT_GC | 0x24;
/// The far end or the network released; `gc_ResultInfo` says why.
pub const GCEV_DISCONNECTED: c_long = DT_GC | 0x26;
pub const GCEV_PROCEEDING: c_long = DT_GC | 0x27;
/// The line device went out of service.
pub const GCEV_BLOCKED: c_long = DT_GC | 0x32;
/// The line device is back in service (and after `gc_OpenEx`, ready for `gc_WaitCall`).
pub const GCEV_UNBLOCKED: c_long = DT_GC | 0x33;
/// `gc_ReleaseCallEx` completed: the CRN is gone, the line is idle.
pub const GCEV_RELEASECALL: c_long = DT_GC | 0x59;

// Voice events (less certain: TDX_ codes are numbered from 0x81 in the references we read).

/// `dx_playiottdata` ended.
pub const TDX_PLAY: c_long = 0x81;
/// `dx_getdig` ended.
pub const TDX_GETDIG: c_long = 0x83;
/// `dx_dial` ended.
pub const TDX_DIAL: c_long = 0x84;

/// `gc_SetChanState` states (less certain values).
pub const GCLS_INSERVICE: c_int = 0;
pub const GCLS_OUT_OF_SERVICE: c_int = 2;

/// `gc_GetCallInfo` item: the calling number (ANI).
pub const ORIGINATION_ADDRESS: c_int = 0x107;
/// `gc_GetCallInfo` item: the called number (DNIS).
pub const DESTINATION_ADDRESS: c_int = 0x108;
/// Size of the buffer `gc_GetCallInfo` writes an address into.
pub const GC_ADDRSIZE: usize = 128;

/// `gc_DropCall` causes. GlobalCall numbers these as Q.850 does (less certain for
/// protocols other than ISDN, where the call control library maps them).
pub const GC_UNASSIGNED_NUMBER: c_int = 0x01;
pub const GC_NORMAL_CLEARING: c_int = 0x10;
pub const GC_USER_BUSY: c_int = 0x11;
pub const GC_CALL_REJECTED: c_int = 0x15;

// Terminating conditions and I/O transfer tables for the voice API (less certain values).

/// `DV_TPT::tp_termno`: stop after this many DTMF digits.
pub const DX_MAXDTMF: c_ushort = 1;
/// `DV_TPT::tp_flags` for `DX_MAXDTMF`: the level-triggered default.
pub const TF_MAXDTMF: c_ushort = 0;
/// `DV_TPT::tp_type` / `DX_IOTT::io_type`: last entry of the table.
pub const IO_EOT: c_ushort = 0x02;
/// `DX_IOTT::io_type`: the data is in a file descriptor.
pub const IO_DEV: c_ushort = 0x00;
/// `DX_XPB::wFileFormat`: a WAV file.
pub const FILE_FORMAT_WAVE: c_ushort = 2;
/// `DX_XPB::wDataFormat`: linear PCM.
pub const DATA_FORMAT_PCM: c_ushort = 1;
/// `DX_XPB::nSamplesPerSec`: 8 kHz.
pub const DRT_8KHZ: c_ulong = 0x30;
/// `ATDX_TERMMSK` bit: the I/O ended on the `DX_MAXDTMF` digit count (less certain).
pub const TM_MAXDTMF: c_long = 0x01;
/// Digits `DV_DIGIT` holds.
pub const DG_MAXDIGS: usize = 31;

/// SCbus device types for `nr_scroute` (less certain values).
pub const SC_VOX: c_ushort = 1;
pub const SC_LSI: c_ushort = 2;
pub const SC_DTI: c_ushort = 3;
/// `nr_scroute` modes: both directions, or `devh2` hears `devh1` only.
pub const SC_FULLDUP: c_uint = 0;
pub const SC_HALFDUP: c_uint = 1;

/// A GlobalCall event, as `gc_GetMetaEvent` fills it in.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct METAEVENT {
    pub magicno: c_long,
    pub flags: c_ulong,
    pub evtdatap: *mut c_void,
    pub evtlen: c_long,
    pub evtdev: c_long,
    pub evttype: c_long,
    pub linedev: LINEDEV,
    pub crn: CRN,
    pub extevtdatap: *mut c_void,
    pub usrattr: *mut c_void,
    pub cclibid: c_int,
    pub rfu1: c_int,
}

impl Default for METAEVENT {
    fn default() -> Self {
        METAEVENT {
            magicno: 0,
            flags: 0,
            evtdatap: std::ptr::null_mut(),
            evtlen: 0,
            evtdev: 0,
            evttype: 0,
            linedev: 0,
            crn: 0,
            extevtdatap: std::ptr::null_mut(),
            usrattr: std::ptr::null_mut(),
            cclibid: 0,
            rfu1: 0,
        }
    }
}

/// Result information (`gc_ResultInfo`, `gc_ErrorInfo`): the GlobalCall value and the
/// call control library's own value (for ISDN, the Q.850 cause in its low 7 bits).
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct GC_INFO {
    pub gcValue: c_int,
    pub gcMsg: *const c_char,
    pub ccLibId: c_int,
    pub ccLibName: *const c_char,
    pub ccValue: c_long,
    pub ccMsg: *const c_char,
    pub additionalInfo: *const c_char,
}

impl Default for GC_INFO {
    fn default() -> Self {
        GC_INFO {
            gcValue: 0,
            gcMsg: std::ptr::null(),
            ccLibId: 0,
            ccLibName: std::ptr::null(),
            ccValue: 0,
            ccMsg: std::ptr::null(),
            additionalInfo: std::ptr::null(),
        }
    }
}

/// One entry of an I/O transfer table: where play data comes from.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct DX_IOTT {
    pub io_type: c_ushort,
    pub rfu: c_ushort,
    pub io_fhandle: c_int,
    pub io_bufp: *mut c_char,
    pub io_offset: c_ulong,
    pub io_length: c_long,
    pub io_nextp: *mut DX_IOTT,
    pub io_prevp: *mut DX_IOTT,
}

/// One terminating condition.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct DV_TPT {
    pub tp_type: c_ushort,
    pub tp_termno: c_ushort,
    pub tp_length: c_ushort,
    pub tp_flags: c_ushort,
    pub tp_data: c_ushort,
    pub rfu: c_ushort,
    pub tp_nextp: *mut DV_TPT,
}

/// The format of play data.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default)]
pub struct DX_XPB {
    pub wFileFormat: c_ushort,
    pub wDataFormat: c_ushort,
    pub nSamplesPerSec: c_ulong,
    pub wBitsPerSample: c_ulong,
}

/// Digits collected by `dx_getdig`, NUL-terminated.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct DV_DIGIT {
    pub dg_value: [c_char; DG_MAXDIGS + 1],
    pub dg_type: [c_char; DG_MAXDIGS + 1],
}

impl Default for DV_DIGIT {
    fn default() -> Self {
        DV_DIGIT { dg_value: [0; DG_MAXDIGS + 1], dg_type: [0; DG_MAXDIGS + 1] }
    }
}

/// The functions Hotline calls, resolved from the loaded library.
#[derive(Copy, Clone, Debug)]
pub struct DialogicApi {
    /// Start GlobalCall; a null argument starts every installed call control library.
    pub gc_Start: unsafe extern "C" fn(startp: *const c_void) -> c_int,
    pub gc_Stop: unsafe extern "C" fn() -> c_int,
    pub gc_OpenEx: unsafe extern "C" fn(
        linedevp: *mut LINEDEV,
        name: *const c_char,
        mode: c_int,
        usrattr: *mut c_void,
    ) -> c_int,
    pub gc_Close: unsafe extern "C" fn(linedev: LINEDEV) -> c_int,
    pub gc_WaitCall: unsafe extern "C" fn(
        linedev: LINEDEV,
        crnp: *mut CRN,
        waitcallp: *mut c_void,
        timeout: c_int,
        mode: c_ulong,
    ) -> c_int,
    pub gc_GetMetaEvent: unsafe extern "C" fn(metaeventp: *mut METAEVENT) -> c_int,
    pub gc_GetCallInfo: unsafe extern "C" fn(crn: CRN, info_id: c_int, valuep: *mut c_char) -> c_int,
    pub gc_AcceptCall: unsafe extern "C" fn(crn: CRN, rings: c_int, mode: c_ulong) -> c_int,
    pub gc_AnswerCall: unsafe extern "C" fn(crn: CRN, rings: c_int, mode: c_ulong) -> c_int,
    pub gc_SetCallingNum: unsafe extern "C" fn(linedev: LINEDEV, number: *const c_char) -> c_int,
    pub gc_MakeCall: unsafe extern "C" fn(
        linedev: LINEDEV,
        crnp: *mut CRN,
        number: *const c_char,
        makecallp: *mut c_void,
        timeout: c_int,
        mode: c_ulong,
    ) -> c_int,
    pub gc_DropCall: unsafe extern "C" fn(crn: CRN, cause: c_int, mode: c_ulong) -> c_int,
    pub gc_ReleaseCallEx: unsafe extern "C" fn(crn: CRN, mode: c_ulong) -> c_int,
    pub gc_ResultInfo: unsafe extern "C" fn(metaeventp: *const METAEVENT, infop: *mut GC_INFO) -> c_int,
    pub gc_ErrorInfo: unsafe extern "C" fn(infop: *mut GC_INFO) -> c_int,
    /// Put a line device in or out of service (maintenance blocking).
    pub gc_SetChanState: unsafe extern "C" fn(linedev: LINEDEV, state: c_int, mode: c_ulong) -> c_int,
    /// The network (timeslot) device of a line device, for SCbus routing.
    pub gc_GetNetworkH: unsafe extern "C" fn(linedev: LINEDEV, networkhp: *mut c_int) -> c_int,
    pub dx_open: unsafe extern "C" fn(name: *const c_char, oflags: c_int) -> c_int,
    pub dx_close: unsafe extern "C" fn(chdev: c_int) -> c_int,
    pub dx_playiottdata: unsafe extern "C" fn(
        chdev: c_int,
        iottp: *mut DX_IOTT,
        tptp: *mut DV_TPT,
        xpbp: *mut DX_XPB,
        mode: c_ushort,
    ) -> c_int,
    pub dx_stopch: unsafe extern "C" fn(chdev: c_int, mode: c_ushort) -> c_int,
    pub dx_dial: unsafe extern "C" fn(
        chdev: c_int,
        dialstr: *const c_char,
        capp: *mut c_void,
        mode: c_ushort,
    ) -> c_int,
    pub dx_getdig:
        unsafe extern "C" fn(chdev: c_int, tptp: *mut DV_TPT, digitp: *mut DV_DIGIT, mode: c_ushort) -> c_int,
    /// The text of a voice device's last error.
    pub ATDV_ERRMSGP: unsafe extern "C" fn(dev: c_int) -> *const c_char,
    /// Wait up to `timeout` ms for an event; 0 when one is current, -1 on timeout.
    pub sr_waitevt: unsafe extern "C" fn(timeout: c_long) -> c_long,
    /// The current event's type (the argument is the event handle, 0 for the current one).
    pub sr_getevttype: unsafe extern "C" fn(handle: c_long) -> c_long,
    pub sr_getevtdev: unsafe extern "C" fn(handle: c_long) -> c_long,
    /// Why a voice device's last I/O ended: a `TM_…` bit mask.
    pub ATDX_TERMMSK: unsafe extern "C" fn(chdev: c_int) -> c_long,
    pub nr_scroute: unsafe extern "C" fn(
        devh1: c_int,
        type1: c_ushort,
        devh2: c_int,
        type2: c_ushort,
        mode: c_uint,
    ) -> c_int,
    pub nr_scunroute: unsafe extern "C" fn(
        devh1: c_int,
        type1: c_ushort,
        devh2: c_int,
        type2: c_ushort,
        mode: c_uint,
    ) -> c_int,
}

impl DialogicApi {
    /// Resolve every function with `resolve` (given a NUL-terminated symbol name).
    ///
    /// # Safety
    /// Every address `resolve` returns must be the named function with the signature
    /// declared here, valid for as long as the returned `DialogicApi` is used.
    #[allow(clippy::missing_transmute_annotations)]
    pub unsafe fn load<E>(
        mut resolve: impl FnMut(&'static str) -> Result<*const c_void, E>,
    ) -> Result<DialogicApi, E> {
        // Each field is resolved by its own name, so a field and its symbol cannot drift
        // apart; the transmute's target is the field's declared type.
        macro_rules! sym {
            ($name:ident) => {
                std::mem::transmute::<*const c_void, _>(resolve(concat!(stringify!($name), "\0"))?)
            };
        }
        Ok(DialogicApi {
            gc_Start: sym!(gc_Start),
            gc_Stop: sym!(gc_Stop),
            gc_OpenEx: sym!(gc_OpenEx),
            gc_Close: sym!(gc_Close),
            gc_WaitCall: sym!(gc_WaitCall),
            gc_GetMetaEvent: sym!(gc_GetMetaEvent),
            gc_GetCallInfo: sym!(gc_GetCallInfo),
            gc_AcceptCall: sym!(gc_AcceptCall),
            gc_AnswerCall: sym!(gc_AnswerCall),
            gc_SetCallingNum: sym!(gc_SetCallingNum),
            gc_MakeCall: sym!(gc_MakeCall),
            gc_DropCall: sym!(gc_DropCall),
            gc_ReleaseCallEx: sym!(gc_ReleaseCallEx),
            gc_ResultInfo: sym!(gc_ResultInfo),
            gc_ErrorInfo: sym!(gc_ErrorInfo),
            gc_SetChanState: sym!(gc_SetChanState),
            gc_GetNetworkH: sym!(gc_GetNetworkH),
            dx_open: sym!(dx_open),
            dx_close: sym!(dx_close),
            dx_playiottdata: sym!(dx_playiottdata),
            dx_stopch: sym!(dx_stopch),
            dx_dial: sym!(dx_dial),
            dx_getdig: sym!(dx_getdig),
            ATDV_ERRMSGP: sym!(ATDV_ERRMSGP),
            sr_waitevt: sym!(sr_waitevt),
            sr_getevttype: sym!(sr_getevttype),
            sr_getevtdev: sym!(sr_getevtdev),
            ATDX_TERMMSK: sym!(ATDX_TERMMSK),
            nr_scroute: sym!(nr_scroute),
            nr_scunroute: sym!(nr_scunroute),
        })
    }
}
