//! The DAHDI backend: Digium, Sangoma, OpenVox and Xorcom cards through the DAHDI kernel
//! drivers (`/dev/dahdi/channel`), behind the same [`Card`](crate::Card) trait as the
//! simulator.
//!
//! - [`DahdiCard`] is the backend. Its logic (analog loop start / kewl start signalling,
//!   caller ID, DTMF and tone detection, prompts, taps, conferencing on the card) works on
//!   the [`ChannelDevice`] trait: the few operations DAHDI offers a channel (read, write,
//!   hook, events, conference, parameters, span status). It never reads a clock: time is
//!   passed in, and audio is clocked by the card (one 20 ms frame written per frame read).
//! - [`device`] opens real channels: `/dev/dahdi/channel`, `DAHDI_SPECIFY`, nix ioctls.
//!   It is the only file of this module with `unsafe`.
//! - [`double`] is an in-process double of the channel device. The DAHDI kernel module
//!   cannot run on the machines that build Hotline, so the tests drive the backend against
//!   this double, which follows DAHDI's documented behaviour (hook states, event codes,
//!   ring cadence events, conference modes, span alarms). It is a test double, not DAHDI.
//! - [`probe()`] reads `/proc/dahdi` and `/dev/dahdi` for `hotline cards probe` and says what
//!   to install or configure when nothing is there.
//!
//! DAHDI does the hook switch, ringing, ring cadence, hook-flash timing and conference
//! mixing in the kernel; Hotline does caller ID, DTMF and call-progress tones in software
//! with [`crate::dsp`], on the channel's received audio.
//!
//! PRI D-channels (the 16th timeslot of an E1 span configured `dchan=` in system.conf) are
//! not bearer channels: ISDN call control on DAHDI spans is libpri's (feature `pri`),
//! plugged in through [`SpanSignalling`]; `crate::pri::dahdi` opens the D-channel
//! ([`device::DahdiDevices::open_hdlc`]) and [`DahdiCard::open_system`] attaches it. Without it, E1 bearer channels carry media (play, tap,
//! connect, conference) but refuse call-control commands with `Unsupported`.

mod card;
pub mod device;
pub mod double;
mod probe;

use std::fmt;
use std::io;
use std::time::Duration;

use hotline_sys::dahdi as sys;

pub use card::{DahdiCard, DahdiOptions, SpanSignalling};
pub use probe::{probe, ProbeReport, ProbedChannel, ProbedSpan};

/// G.711 companding of a channel's audio bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Law {
    /// A-law: E1 and most of the world.
    Alaw,
    /// Mu-law: T1, North America and Japan.
    Mulaw,
}

impl Law {
    /// The `DAHDI_LAW_*` value.
    pub fn raw(self) -> i32 {
        match self {
            Law::Alaw => sys::DAHDI_LAW_ALAW,
            Law::Mulaw => sys::DAHDI_LAW_MULAW,
        }
    }
}

/// A hook operation (`DAHDI_HOOK`): what the card does to the line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Hang up (FXO), stop ringing (FXS).
    OnHook,
    /// Seize or answer the line (FXO).
    OffHook,
    Wink,
    /// A timed hook flash (FXO): recall on the exchange.
    Flash,
    /// Ring the phone with the channel's cadence (FXS).
    Ring,
    /// Stop ringing (FXS).
    RingOff,
}

impl Hook {
    /// The `DAHDI_*` hook value.
    pub fn raw(self) -> i32 {
        match self {
            Hook::OnHook => sys::DAHDI_ONHOOK,
            Hook::OffHook => sys::DAHDI_OFFHOOK,
            Hook::Wink => sys::DAHDI_WINK,
            Hook::Flash => sys::DAHDI_FLASH,
            Hook::Ring => sys::DAHDI_RING,
            Hook::RingOff => sys::DAHDI_RINGOFF,
        }
    }
}

/// An event `DAHDI_GETEVENT` returns. What it means depends on the channel's signalling:
/// on an FXS port (FXO signalling toward a phone) `RingOffHook` is the handset lifted; on
/// an FXO port (FXS signalling toward the exchange) it is ringing voltage seen.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DahdiEvent {
    OnHook,
    RingOffHook,
    WinkFlash,
    Alarm,
    NoAlarm,
    DialComplete,
    RingerOn,
    RingerOff,
    HookComplete,
    Polarity,
    RingBegin,
    Removed,
    /// Any other code, kept as it came.
    Other(i32),
}

impl DahdiEvent {
    pub fn from_raw(code: i32) -> Option<DahdiEvent> {
        use DahdiEvent::*;
        Some(match code {
            sys::DAHDI_EVENT_NONE => return None,
            sys::DAHDI_EVENT_ONHOOK => OnHook,
            sys::DAHDI_EVENT_RINGOFFHOOK => RingOffHook,
            sys::DAHDI_EVENT_WINKFLASH => WinkFlash,
            sys::DAHDI_EVENT_ALARM => Alarm,
            sys::DAHDI_EVENT_NOALARM => NoAlarm,
            sys::DAHDI_EVENT_DIALCOMPLETE => DialComplete,
            sys::DAHDI_EVENT_RINGERON => RingerOn,
            sys::DAHDI_EVENT_RINGEROFF => RingerOff,
            sys::DAHDI_EVENT_HOOKCOMPLETE => HookComplete,
            sys::DAHDI_EVENT_POLARITY => Polarity,
            sys::DAHDI_EVENT_RINGBEGIN => RingBegin,
            sys::DAHDI_EVENT_REMOVED => Removed,
            other => Other(other),
        })
    }
    pub fn raw(self) -> i32 {
        use DahdiEvent::*;
        match self {
            OnHook => sys::DAHDI_EVENT_ONHOOK,
            RingOffHook => sys::DAHDI_EVENT_RINGOFFHOOK,
            WinkFlash => sys::DAHDI_EVENT_WINKFLASH,
            Alarm => sys::DAHDI_EVENT_ALARM,
            NoAlarm => sys::DAHDI_EVENT_NOALARM,
            DialComplete => sys::DAHDI_EVENT_DIALCOMPLETE,
            RingerOn => sys::DAHDI_EVENT_RINGERON,
            RingerOff => sys::DAHDI_EVENT_RINGEROFF,
            HookComplete => sys::DAHDI_EVENT_HOOKCOMPLETE,
            Polarity => sys::DAHDI_EVENT_POLARITY,
            RingBegin => sys::DAHDI_EVENT_RINGBEGIN,
            Removed => sys::DAHDI_EVENT_REMOVED,
            Other(code) => code,
        }
    }
}

/// A channel's conference setting (`struct dahdi_confinfo` for the channel itself).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Conf {
    /// Conference number, or for the monitor modes the channel number watched. 0 with a
    /// conference mode asks DAHDI for a free conference.
    pub confno: i32,
    /// `DAHDI_CONF_*` mode in the low byte, `DAHDI_CONF_TALKER`/`LISTENER` flags above.
    pub mode: i32,
}

impl Conf {
    /// Out of every conference: the channel hears and is heard by nobody on the card.
    pub const NORMAL: Conf = Conf { confno: 0, mode: sys::DAHDI_CONF_NORMAL };

    /// A conference member with these rights.
    pub fn member(confno: i32, talk: bool, listen: bool) -> Conf {
        let mut mode = sys::DAHDI_CONF_CONF;
        if talk {
            mode |= sys::DAHDI_CONF_TALKER;
        }
        if listen {
            mode |= sys::DAHDI_CONF_LISTENER;
        }
        Conf { confno, mode }
    }
    /// Hear what channel `channo` receives (DAHDI_CONF_MONITOR).
    pub fn monitor(channo: i32) -> Conf {
        Conf { confno: channo, mode: sys::DAHDI_CONF_MONITOR }
    }
    pub fn base_mode(self) -> i32 {
        self.mode & sys::DAHDI_CONF_MODE_MASK
    }
    pub fn talks(self) -> bool {
        self.base_mode() == sys::DAHDI_CONF_CONF && self.mode & sys::DAHDI_CONF_TALKER != 0
    }
    pub fn listens(self) -> bool {
        self.base_mode() == sys::DAHDI_CONF_CONF && self.mode & sys::DAHDI_CONF_LISTENER != 0
    }
}

/// What `DAHDI_GET_PARAMS` says about a channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelParams {
    pub channo: i32,
    pub spanno: i32,
    /// Position in its span (the timeslot on an E1).
    pub chanpos: i32,
    /// `DAHDI_SIG_*`.
    pub sigtype: i32,
    pub rx_off_hook: bool,
    /// `DAHDI_LAW_*` in use.
    pub law: i32,
    pub name: String,
    /// `DAHDI_ALARM_*` bits on this channel.
    pub alarms: u32,
}

/// What `DAHDI_SPANSTAT` says about a span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanStatus {
    pub spanno: i32,
    pub name: String,
    pub desc: String,
    /// `DAHDI_ALARM_*` bits.
    pub alarms: i32,
}

/// One DAHDI channel, as the backend drives it. [`device::DahdiChannel`] does it with
/// ioctls on `/dev/dahdi/channel`; [`double::DoubleChannel`] in memory.
///
/// `read` and `write` never block: a channel with no complete frame to read returns
/// [`io::ErrorKind::WouldBlock`]. A read that fails with `ELAST` means an event is
/// waiting ([`ChannelDevice::get_event`]).
pub trait ChannelDevice {
    fn params(&mut self) -> io::Result<ChannelParams>;
    /// Samples per read and write (law mode: bytes).
    fn set_block_size(&mut self, samples: usize) -> io::Result<()>;
    fn set_law(&mut self, law: Law) -> io::Result<()>;
    /// Ring cadence of an FXS port (`DAHDI_SETCADENCE`).
    fn set_ring_cadence(&mut self, on: Duration, off: Duration) -> io::Result<()>;
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// The next event, or `None`.
    fn get_event(&mut self) -> io::Result<Option<DahdiEvent>>;
    fn hook(&mut self, hook: Hook) -> io::Result<()>;
    /// Set the channel's conference; returns the setting DAHDI made (a conference number
    /// filled in when 0 was asked).
    fn set_conf(&mut self, conf: Conf) -> io::Result<Conf>;
    fn span_status(&mut self, spanno: i32) -> io::Result<SpanStatus>;
}

/// Where channels come from: the real `/dev/dahdi/channel`, or the double.
pub trait ChannelOpener {
    type Channel: ChannelDevice;
    /// Open DAHDI channel `channo` (counting from 1 over the whole system).
    fn open(&mut self, channo: i32) -> io::Result<Self::Channel>;
}

/// Alarm bits as the installer reads them ("RED", "YELLOW"...).
pub fn alarm_names(alarms: i32) -> String {
    let names = [
        (sys::DAHDI_ALARM_RED, "RED"),
        (sys::DAHDI_ALARM_YELLOW, "YELLOW"),
        (sys::DAHDI_ALARM_BLUE, "BLUE"),
        (sys::DAHDI_ALARM_LOOPBACK, "LOOPBACK"),
        (sys::DAHDI_ALARM_RECOVER, "RECOVERING"),
        (sys::DAHDI_ALARM_NOTOPEN, "NOTOPEN"),
        (sys::DAHDI_ALARM_LOS, "LOS"),
        (sys::DAHDI_ALARM_LFA, "LFA"),
        (sys::DAHDI_ALARM_LMFA, "LMFA"),
    ];
    let v: Vec<&str> = names.iter().filter(|(bit, _)| alarms & bit != 0).map(|(_, n)| *n).collect();
    if v.is_empty() {
        "OK".to_string()
    } else {
        v.join(" ")
    }
}

/// A DAHDI signalling type in system.conf's words.
pub fn signalling_name(sigtype: i32) -> &'static str {
    match sigtype {
        sys::DAHDI_SIG_NONE => "unconfigured",
        sys::DAHDI_SIG_FXSLS => "fxsls (FXO port, loop start)",
        sys::DAHDI_SIG_FXSKS => "fxsks (FXO port, kewl start)",
        sys::DAHDI_SIG_FXSGS => "fxsgs (FXO port, ground start)",
        sys::DAHDI_SIG_FXOLS => "fxols (FXS port, loop start)",
        sys::DAHDI_SIG_FXOKS => "fxoks (FXS port, kewl start)",
        sys::DAHDI_SIG_FXOGS => "fxogs (FXS port, ground start)",
        sys::DAHDI_SIG_CLEAR => "clear (bearer)",
        sys::DAHDI_SIG_HDLCFCS | sys::DAHDI_SIG_HARDHDLC => "dchan (HDLC)",
        sys::DAHDI_SIG_CAS => "cas",
        _ => "other",
    }
}

impl fmt::Display for Law {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Law::Alaw => "alaw",
            Law::Mulaw => "mulaw",
        })
    }
}

impl DahdiCard<device::DahdiChannel> {
    /// Open a configured card on this machine's DAHDI: channel numbers from what
    /// `/proc/dahdi` reports ([`DahdiOptions::from_probe`]), channels from
    /// `/dev/dahdi/channel`. When DAHDI is not there the error says what to install or
    /// configure.
    pub fn open_system(
        card: &crate::config::CardConfig,
        law: Law,
        events: crossbeam_channel::Sender<crate::event::CardEvent>,
    ) -> crate::error::Result<Self> {
        let report = probe(std::path::Path::new("/"));
        if !report.module_loaded || !report.device_present || report.spans.is_empty() {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::Config,
                format!("card {}: DAHDI is not ready: {}", card.id, report.advice.join(" ")),
            ));
        }
        let options = DahdiOptions::from_probe(card, &report)?.with_law(law);
        #[cfg(feature = "pri")]
        let pri_events = events.clone();
        #[allow(unused_mut)]
        let mut dahdi = DahdiCard::open(card, &options, &mut device::DahdiDevices::system(), events)?;
        // ISDN PRI spans: libpri on each span's D-channel (timeslot 16).
        #[cfg(feature = "pri")]
        crate::pri::dahdi::attach_pri_spans(
            &mut dahdi,
            card,
            &pri_events,
            crate::pri::dahdi::open_system_dchannel,
        )?;
        Ok(dahdi)
    }
}
