//! Our own declarations of the Synway SynCTI (`Ssm…`) functions, types and constants
//! that Hotline calls. Synway's header (`shpa3api.h`) is proprietary, so nothing here is
//! taken from it: names, signatures and numbers come from Synway's public SynCTI
//! programming manual and from public bindings of that API. Where a value is less
//! certain, its doc comment says so; check it against the installed SDK.
//!
//! The SDK library (`libshpa3.so` on Linux, `SHP_A3.dll` on Windows) is loaded at run
//! time from a configured path, so these are function-pointer types collected in
//! [`SsmApi`], filled by [`SsmApi::load`] from any symbol resolver (the drivers crate
//! uses libloading). A machine without the SDK builds and runs everything else.
//!
//! The SDK exports its functions with the Windows `WINAPI` convention, which is the C
//! convention on Linux: `extern "system"` is right on both.

use std::ffi::{c_char, c_int, c_void};

/// A 32-bit unsigned value (`DWORD` in the SDK's documentation).
pub type DWORD = u32;

// Channel types, as `SsmGetChType` returns them.

/// Analog trunk channel: an FXO port on an exchange line.
pub const ANALOG_CH: c_int = 0;
/// Station channel: an FXS port with an analog phone ("user channel").
pub const USER_CH: c_int = 2;
/// Analog recording channel (high-impedance tap).
pub const REC_CH: c_int = 3;
/// Digital trunk channel with China No.1 signalling (SS1, MFC-R2).
pub const SS1_CH: c_int = 4;
/// Fax resource channel.
pub const FAX_CH: c_int = 5;
/// Digital trunk channel with SS7 TUP. (Less certain: 6 in the manuals we read.)
pub const TUP_CH: c_int = 6;
/// Digital trunk channel with ISDN PRI, user side. (Less certain: 7.)
pub const ISDN_USER_CH: c_int = 7;
/// Digital trunk channel with ISDN PRI, network side. (Less certain: 8.)
pub const ISDN_NET_CH: c_int = 8;
/// Digital trunk channel with SS7 ISUP. (Less certain: 11.)
pub const ISUP_CH: c_int = 11;

// Channel states (`SsmGetChState`, and the low 16 bits of `E_CHG_ChState`'s parameter).

/// Idle.
pub const S_CALL_STANDBY: c_int = 0;
/// Off hook: a station's handset is up, or a trunk was seized by `SsmPickup`.
pub const S_CALL_PICKUPED: c_int = 1;
/// A call arrives (trunk) or the station rings.
pub const S_CALL_RINGING: c_int = 2;
/// Connected: talking.
pub const S_CALL_TALKING: c_int = 3;
/// Analog trunk, outbound: waiting for dial tone.
pub const S_CALL_ANALOG_WAITDIALTONE: c_int = 4;
/// Analog trunk, outbound: dialling.
pub const S_CALL_ANALOG_TXPHONUM: c_int = 5;
/// Analog trunk, outbound: waiting for the dial result.
pub const S_CALL_ANALOG_WAITDIALRESULT: c_int = 6;
/// Pending: the far end released (or the call failed); `SsmGetPendingReason` says why,
/// and the application must call `SsmHangup` to return the channel to idle.
pub const S_CALL_PENDING: c_int = 7;
/// The line is disconnected.
pub const S_CALL_OFFLINE: c_int = 8;
/// Outbound: waiting for the called party to answer.
pub const S_CALL_WAIT_REMOTE_PICKUP: c_int = 9;
/// The channel is unavailable.
pub const S_CALL_UNAVAILABLE: c_int = 11;
/// Blocked by the far end.
pub const S_CALL_REMOTE_BLOCK: c_int = 19;
/// Blocked locally (`SsmBlockLocalCh`).
pub const S_CALL_LOCAL_BLOCK: c_int = 20;

// Event codes (`SSM_EVENT::wEventCode`).

/// A DTMF digit is received; the low byte of `dwParam` is the digit's character.
pub const E_CHG_RcvDTMF: u16 = 0x000c;
/// `SsmTxDtmf` finished sending.
pub const E_PROC_SendDTMF: u16 = 0x000d;
/// A play ended.
pub const E_PROC_PlayEnd: u16 = 0x000f;
/// The channel state changed; low 16 bits of `dwParam`: the new state.
pub const E_CHG_ChState: u16 = 0x0018;
/// `SsmAutoDial` progressed; `dwParam`: a `DIAL_…` value.
pub const E_PROC_AutoDial: u16 = 0x0019;
/// A station's hook state changed.
pub const E_CHG_HookState: u16 = 0x0024;
/// A station's hook switch was flashed.
pub const E_CHG_FlashCount: u16 = 0x0023;
/// Synchronisation of a digital trunk changed (span alarm).
pub const E_CHG_PcmLinkStatus: u16 = 0x0007;

// `SsmAutoDial` progress (`SsmChkAutoDial`, `E_PROC_AutoDial`).

pub const DIAL_STANDBY: DWORD = 0;
pub const DIAL_DIALING: DWORD = 1;
/// Ringback heard / ALERTING / ACM received: the called party is being alerted.
pub const DIAL_ECHOTONE: DWORD = 2;
pub const DIAL_NO_DIALTONE: DWORD = 3;
pub const DIAL_BUSYTONE: DWORD = 4;
pub const DIAL_ECHO_NOVOICE: DWORD = 5;
pub const DIAL_NOVOICE: DWORD = 6;
/// The called party answered.
pub const DIAL_VOICE: DWORD = 7;
pub const DIAL_VOICEF1: DWORD = 8;
pub const DIAL_VOICEF2: DWORD = 9;
pub const DIAL_NOANSWER: DWORD = 10;
/// Failed; `SsmGetAutoDialFailureReason` says why.
pub const DIAL_FAILURE: DWORD = 11;
pub const DIAL_INVALID_PHONUM: DWORD = 12;

// Pending reasons (`SsmGetPendingReason`).

pub const ANALOGOUT_NO_DIALTONE: c_int = 0;
pub const ANALOGOUT_BUSYTONE: c_int = 1;
pub const ANALOGOUT_ECHO_NOVOICE: c_int = 2;
pub const ANALOGOUT_NOANSWER: c_int = 3;
pub const ANALOGOUT_TALKING_REMOTE_HANGUPED: c_int = 4;
pub const SS1IN_TALKING_REMOTE_HANGUPED: c_int = 12;
pub const SS1OUT_TALKING_REMOTE_HANGUPED: c_int = 20;
pub const SS1OUT_NOANSWER: c_int = 21;
pub const SS1OUT_BWD_A5: c_int = 24;
pub const SS1OUT_BWD_KB5: c_int = 25;
pub const SS1OUT_BWD_KB2: c_int = 26;
pub const SS1OUT_BWD_KB3: c_int = 27;
pub const SS1OUT_BWD_A4: c_int = 28;
pub const SS1OUT_BWD_KB4: c_int = 29;

// AutoDial failure reasons (`SsmGetAutoDialFailureReason`).

pub const ATDL_Cancel: c_int = 1;
pub const ATDL_WaitDialAnsTimeout: c_int = 2;
pub const ATDL_WaitRemotePickupTimeout: c_int = 3;
pub const ATDL_SS1RcvA4: c_int = 42;
pub const ATDL_SS1RcvA5: c_int = 43;
pub const ATDL_SS1RcvKB2: c_int = 50;
pub const ATDL_SS1RcvKB3: c_int = 51;
pub const ATDL_SS1RcvKB4: c_int = 52;
pub const ATDL_SS1RcvKB5: c_int = 53;
pub const ATDL_ISDNEMPTYNO: c_int = 61;
pub const ATDL_IPRemoteBusy: c_int = 69;
/// `100 + n`: the ISDN stack released with Q.850 cause `n`.
pub const ATDL_ISDN_CAUSE_BASE: c_int = 100;

// Event delivery modes (`EVENT_SET_INFO::dwWorkMode`).

/// Extended callback mode: the SDK calls `lpHandlerParam` with a `*const SSM_EVENT`.
pub const EVENT_CALLBACKA: DWORD = 5;
/// `SsmSetEvent`'s event code meaning "every event" (documented as -1 in a WORD).
pub const ALL_EVENTS: c_int = 0xffff;

/// Voice file format for `SsmPlayFile`: `-1` lets the SDK read the WAV header.
pub const FORMAT_FROM_HEADER: c_int = -1;

/// `SsmJoinConfGroup` join modes (less certain: read from public applications, which
/// join speakers with 0 and listeners with 1).
pub const CONF_SPEAK_AND_LISTEN: u16 = 0;
pub const CONF_LISTEN_ONLY: u16 = 1;
/// `SsmJoinConfGroup` mixer volume: the SDK's default.
pub const CONF_DEFAULT_VOLUME: c_int = -1;

/// One event, as the extended callback receives it. `DWORD` fields are 32 bits in the
/// Linux SDK's documentation (less certain on 64-bit builds: check the header's `DWORD`).
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct SSM_EVENT {
    pub wEventCode: u16,
    pub nReference: c_int,
    pub dwParam: DWORD,
    pub dwUser: DWORD,
    pub dwSubReason: DWORD,
    pub dwXtraInfo: DWORD,
    pub pvBuffer: *mut c_void,
    pub dwBufferLength: DWORD,
    pub dwDataLength: DWORD,
    pub dwEventFlag: DWORD,
    pub dwReserved1: DWORD,
    pub llReserved1: i64,
}

/// The extended event callback. Its return value is ignored by the SDK; we return 0,
/// or -1 when our side failed.
pub type LPFNEVENTCALLBACKA = unsafe extern "system" fn(event: *const SSM_EVENT) -> c_int;

/// How events are delivered (`SsmSetEvent`).
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct EVENT_SET_INFO {
    pub dwWorkMode: DWORD,
    pub lpHandlerParam: Option<LPFNEVENTCALLBACKA>,
    pub dwOutCondition: DWORD,
    pub dwOutParamVal: DWORD,
    pub dwUser: DWORD,
}

/// The SynCTI functions Hotline calls, resolved from the loaded library.
#[derive(Copy, Clone, Debug)]
pub struct SsmApi {
    pub SsmStartCti: unsafe extern "system" fn(cfg: *const c_char, index: *const c_char) -> c_int,
    pub SsmCloseCti: unsafe extern "system" fn() -> c_int,
    /// Writes the last error's text, NUL-terminated, into a caller buffer (we pass 512 bytes).
    pub SsmGetLastErrMsg: unsafe extern "system" fn(buf: *mut c_char),
    pub SsmGetMaxCh: unsafe extern "system" fn() -> c_int,
    pub SsmGetChType: unsafe extern "system" fn(ch: c_int) -> c_int,
    pub SsmGetChState: unsafe extern "system" fn(ch: c_int) -> c_int,
    pub SsmSetEvent: unsafe extern "system" fn(
        event: c_int,
        reference: c_int,
        enable: c_int,
        set: *const EVENT_SET_INFO,
    ) -> c_int,
    pub SsmPickup: unsafe extern "system" fn(ch: c_int) -> c_int,
    pub SsmHangup: unsafe extern "system" fn(ch: c_int) -> c_int,
    pub SsmAutoDial: unsafe extern "system" fn(ch: c_int, number: *const c_char) -> c_int,
    pub SsmSetTxCallerId: unsafe extern "system" fn(ch: c_int, number: *const c_char) -> c_int,
    /// Caller ID (ANI) of the arriving call into a caller buffer (we pass 128 bytes).
    pub SsmGetCallerId: unsafe extern "system" fn(ch: c_int, buf: *mut c_char) -> c_int,
    /// Called number (DNIS) of the arriving call into a caller buffer (we pass 128 bytes).
    pub SsmGetPhoNumStr: unsafe extern "system" fn(ch: c_int, buf: *mut c_char) -> c_int,
    pub SsmGetPendingReason: unsafe extern "system" fn(ch: c_int) -> c_int,
    pub SsmGetAutoDialFailureReason: unsafe extern "system" fn(ch: c_int) -> c_int,
    /// The release cause of an ISDN/ISUP call: a Q.850 value.
    pub SsmGetReleaseReason: unsafe extern "system" fn(ch: c_int) -> c_int,
    pub SsmPlayFile: unsafe extern "system" fn(
        ch: c_int,
        file: *const c_char,
        format: c_int,
        start: DWORD,
        len: DWORD,
    ) -> c_int,
    pub SsmStopPlay: unsafe extern "system" fn(ch: c_int) -> c_int,
    /// Whether a received DTMF digit stops the play (barge-in).
    pub SsmSetDtmfStopPlay: unsafe extern "system" fn(ch: c_int, enable: c_int) -> c_int,
    pub SsmTxDtmf: unsafe extern "system" fn(ch: c_int, digits: *const c_char) -> c_int,
    pub SsmTalkWith: unsafe extern "system" fn(a: c_int, b: c_int) -> c_int,
    pub SsmStopTalkWith: unsafe extern "system" fn(a: c_int, b: c_int) -> c_int,
    /// `listener` hears `source`.
    pub SsmListenTo: unsafe extern "system" fn(listener: c_int, source: c_int) -> c_int,
    pub SsmStopListenTo: unsafe extern "system" fn(listener: c_int, source: c_int) -> c_int,
    pub SsmStartRing: unsafe extern "system" fn(ch: c_int) -> c_int,
    /// Ring a station and send caller ID (as text) after the first ring.
    pub SsmStartRingWithCIDStr: unsafe extern "system" fn(
        ch: c_int,
        text: *const c_char,
        len: DWORD,
        first_ring_off_delay: DWORD,
    ) -> c_int,
    pub SsmStopRing: unsafe extern "system" fn(ch: c_int) -> c_int,
    /// Join a conference group (created on first join with `create_always`), leaving
    /// any group the channel was in first with `exit_previous`.
    pub SsmJoinConfGroup: unsafe extern "system" fn(
        group: c_int,
        ch: c_int,
        join_mode: u16,
        mixer_volume: c_int,
        create_always: c_int,
        exit_previous: c_int,
    ) -> c_int,
    /// Leave the channel's conference group; `free_always`: free the group when empty.
    pub SsmExitConfGroup: unsafe extern "system" fn(ch: c_int, free_always: c_int) -> c_int,
    pub SsmBlockLocalCh: unsafe extern "system" fn(ch: c_int) -> c_int,
    pub SsmUnblockLocalCh: unsafe extern "system" fn(ch: c_int) -> c_int,
}

impl SsmApi {
    /// Resolve every function with `resolve`, which is given a NUL-terminated symbol
    /// name and returns its address (never null) or an error naming what is missing.
    ///
    /// # Safety
    /// Every address `resolve` returns must be the named SynCTI function with the
    /// signature declared here, and must stay valid (the library loaded) for as long
    /// as the returned `SsmApi` is used.
    #[allow(clippy::missing_transmute_annotations)]
    pub unsafe fn load<E>(
        mut resolve: impl FnMut(&'static str) -> Result<*const c_void, E>,
    ) -> Result<SsmApi, E> {
        // Each field is resolved by its own name, so a field and its symbol cannot drift
        // apart; the transmute's target is the field's declared type.
        macro_rules! sym {
            ($name:ident) => {
                std::mem::transmute::<*const c_void, _>(resolve(concat!(stringify!($name), "\0"))?)
            };
        }
        Ok(SsmApi {
            SsmStartCti: sym!(SsmStartCti),
            SsmCloseCti: sym!(SsmCloseCti),
            SsmGetLastErrMsg: sym!(SsmGetLastErrMsg),
            SsmGetMaxCh: sym!(SsmGetMaxCh),
            SsmGetChType: sym!(SsmGetChType),
            SsmGetChState: sym!(SsmGetChState),
            SsmSetEvent: sym!(SsmSetEvent),
            SsmPickup: sym!(SsmPickup),
            SsmHangup: sym!(SsmHangup),
            SsmAutoDial: sym!(SsmAutoDial),
            SsmSetTxCallerId: sym!(SsmSetTxCallerId),
            SsmGetCallerId: sym!(SsmGetCallerId),
            SsmGetPhoNumStr: sym!(SsmGetPhoNumStr),
            SsmGetPendingReason: sym!(SsmGetPendingReason),
            SsmGetAutoDialFailureReason: sym!(SsmGetAutoDialFailureReason),
            SsmGetReleaseReason: sym!(SsmGetReleaseReason),
            SsmPlayFile: sym!(SsmPlayFile),
            SsmStopPlay: sym!(SsmStopPlay),
            SsmSetDtmfStopPlay: sym!(SsmSetDtmfStopPlay),
            SsmTxDtmf: sym!(SsmTxDtmf),
            SsmTalkWith: sym!(SsmTalkWith),
            SsmStopTalkWith: sym!(SsmStopTalkWith),
            SsmListenTo: sym!(SsmListenTo),
            SsmStopListenTo: sym!(SsmStopListenTo),
            SsmStartRing: sym!(SsmStartRing),
            SsmStartRingWithCIDStr: sym!(SsmStartRingWithCIDStr),
            SsmStopRing: sym!(SsmStopRing),
            SsmJoinConfGroup: sym!(SsmJoinConfGroup),
            SsmExitConfGroup: sym!(SsmExitConfGroup),
            SsmBlockLocalCh: sym!(SsmBlockLocalCh),
            SsmUnblockLocalCh: sym!(SsmUnblockLocalCh),
        })
    }
}
