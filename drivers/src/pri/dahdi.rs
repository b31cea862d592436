//! A PRI span's call control on a DAHDI card: [`PriSignalling`] is the card side of
//! Q.931 ([`PriSpan`]) on a D-channel, plugged into the DAHDI backend through its
//! [`SpanSignalling`] seam (`DahdiCard::set_span_signalling`).
//!
//! The D-channel is a [`DChannel`]: whole Q.921 frames, each followed by two FCS bytes,
//! which is how a DAHDI HDLC channel (the span's `dchan=` timeslot) reads and writes
//! them and how libpri hands them over, so frames pass through unchanged.
//!
//! [`DahdiDChannel`] is that D-channel on any [`ChannelDevice`]: the real
//! `/dev/dahdi/channel` ([`open_system_dchannel`], set up as DAHDI's HDLC channels are:
//! `DAHDI_SPECIFY`, `DAHDI_SET_BUFINFO`, non-blocking), or a test's fake. A read that
//! fails with `ELAST` means DAHDI has an event for the channel: it is taken with
//! `DAHDI_GETEVENT`; `DAHDI_EVENT_ALARM` / `NOALARM` put the D-channel's physical link
//! down / up, which [`PriSignalling`] reports through [`PriSignalling::link_up`] and by
//! refusing new calls while the link is down. (The span's alarm events themselves come
//! from the card, which sees the same alarm on every bearer channel.)
//!
//! [`attach_pri_spans`] gives every `signalling = "isdn_pri"` span of a DAHDI card its
//! [`PriSignalling`] on the span's D-channel; `DahdiCard::open_system` calls it with the
//! real device when Hotline is built with `pri`.

use std::io;

use crossbeam_channel::Sender;
use hotline_sys::dahdi as sys;

use crate::channel::{ChannelId, ChannelState};
use crate::command::Command;
use crate::config::{CardConfig, Signalling};
use crate::dahdi::device::{DahdiChannel, DahdiDevices};
use crate::dahdi::{ChannelDevice, DahdiCard, DahdiEvent, SpanSignalling};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{CardEvent, EventKind};
use crate::time::Instant;

use super::link::{Node, PriLink};
use super::span::PriSpan;

/// A D-channel that carries whole frames (each with its two FCS bytes at the end).
pub trait DChannel: std::fmt::Debug + Send {
    /// The next received frame, or `None` when nothing is waiting; never blocks.
    fn read_frame(&mut self) -> Result<Option<Vec<u8>>>;
    /// Send one frame.
    fn write_frame(&mut self, frame: &[u8]) -> Result<()>;
    /// Changes of the physical link since the last call, oldest first (`true`: up).
    /// A D-channel that cannot see its link reports none.
    fn take_link_changes(&mut self) -> Vec<bool> {
        Vec::new()
    }
}

/// Buffers DAHDI keeps each way on a D-channel: enough for a burst of Q.921 frames
/// (a window of 7 I-frames and their supervisory frames) with room to spare.
pub const DCHANNEL_NUMBUFS: i32 = 32;
/// Bytes per buffer: one HDLC frame each. A Q.921 frame is at most 3 + 260 (N201)
/// octets plus 2 FCS; 1024 leaves room for any D-channel frame.
pub const DCHANNEL_BUFSIZE: i32 = 1024;
/// A Q.921 frame is at least an address (2 octets) and a control octet, plus 2 FCS.
const MIN_FRAME: usize = 5;
/// Reads and writes interrupted by events give up after this many in one call, so a
/// device that keeps raising events cannot hold the card's poll.
const EVENT_LIMIT: usize = 64;

/// The DAHDI channel number of span `span`'s D-channel on `card`: timeslot 16, i.e. the
/// span's first channel (timeslot 1) + 15.
pub fn dchannel_channo<D: ChannelDevice>(card: &DahdiCard<D>, card_id: u16, span: u8) -> Option<i32> {
    card.channo(ChannelId::e1(card_id, span, 1)).map(|first| first + 15)
}

/// What a D-channel saw that was not a frame, for status and logs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DChannelStats {
    /// Frames read and handed to libpri.
    pub frames_in: u64,
    /// Frames written.
    pub frames_out: u64,
    /// Frames DAHDI reported bad (`DAHDI_EVENT_BADFCS`, `ABORT`, `OVERRUN`) or too short
    /// to be Q.921.
    pub bad_frames: u64,
    /// Frames not written because DAHDI's transmit buffers were full (Q.921 resends).
    pub dropped_out: u64,
}

/// A span's D-channel on a DAHDI HDLC channel (`dchan=` in system.conf).
#[derive(Debug)]
pub struct DahdiDChannel<C> {
    dev: C,
    channo: i32,
    in_alarm: bool,
    changes: Vec<bool>,
    stats: DChannelStats,
}

impl<C: ChannelDevice> DahdiDChannel<C> {
    /// A D-channel on `dev`, already opened and set up as DAHDI channel `channo`.
    pub fn new(dev: C, channo: i32) -> Self {
        DahdiDChannel { dev, channo, in_alarm: false, changes: Vec::new(), stats: DChannelStats::default() }
    }

    pub fn channo(&self) -> i32 {
        self.channo
    }

    /// The physical link is in alarm (since `DAHDI_EVENT_ALARM`, until `NOALARM`).
    pub fn in_alarm(&self) -> bool {
        self.in_alarm
    }

    pub fn stats(&self) -> DChannelStats {
        self.stats
    }

    fn error(&self, what: &str, e: io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{what} on D-channel (DAHDI channel {}): {e}", self.channo))
    }

    /// Take the waiting event (`ELAST`): alarms move the link; HDLC errors are counted.
    fn take_event(&mut self) -> Result<()> {
        match self.dev.get_event().map_err(|e| self.error("DAHDI_GETEVENT", e))? {
            Some(DahdiEvent::Alarm) if !self.in_alarm => {
                self.in_alarm = true;
                self.changes.push(false);
            }
            Some(DahdiEvent::NoAlarm) if self.in_alarm => {
                self.in_alarm = false;
                self.changes.push(true);
            }
            Some(DahdiEvent::Other(
                sys::DAHDI_EVENT_BADFCS | sys::DAHDI_EVENT_ABORT | sys::DAHDI_EVENT_OVERRUN,
            )) => self.stats.bad_frames += 1,
            _ => {}
        }
        Ok(())
    }
}

fn is_elast(e: &io::Error) -> bool {
    e.raw_os_error() == Some(sys::ELAST)
}

impl<C: ChannelDevice + std::fmt::Debug + Send> DChannel for DahdiDChannel<C> {
    fn read_frame(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; DCHANNEL_BUFSIZE as usize];
        for _ in 0..EVENT_LIMIT {
            match self.dev.read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) if n < MIN_FRAME => self.stats.bad_frames += 1,
                Ok(n) => {
                    self.stats.frames_in += 1;
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if is_elast(&e) => self.take_event()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error("read", e)),
            }
        }
        Ok(None)
    }

    fn write_frame(&mut self, frame: &[u8]) -> Result<()> {
        for _ in 0..EVENT_LIMIT {
            match self.dev.write(frame) {
                Ok(n) if n == frame.len() => {
                    self.stats.frames_out += 1;
                    return Ok(());
                }
                Ok(n) => {
                    let e = io::Error::other(format!("wrote {n} of a {}-byte frame", frame.len()));
                    return Err(self.error("write", e));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if is_elast(&e) => self.take_event()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error("write", e)),
            }
        }
        // DAHDI's transmit buffers are full (or the events never stopped): Q.921's own
        // retransmission (T200) sends the frame again.
        self.stats.dropped_out += 1;
        Ok(())
    }

    fn take_link_changes(&mut self) -> Vec<bool> {
        std::mem::take(&mut self.changes)
    }
}

/// Open DAHDI channel `channo` of this machine (`/dev/dahdi/channel`) as a D-channel.
/// When the device is not there the error names the file and what to install.
pub fn open_system_dchannel(channo: i32) -> Result<DahdiDChannel<DahdiChannel>> {
    open_dchannel_at(&mut DahdiDevices::system(), channo)
}

/// Open DAHDI channel `channo` under `devices` as a D-channel.
pub fn open_dchannel_at(devices: &mut DahdiDevices, channo: i32) -> Result<DahdiDChannel<DahdiChannel>> {
    match devices.open_hdlc(channo, DCHANNEL_NUMBUFS, DCHANNEL_BUFSIZE) {
        Ok(dev) => Ok(DahdiDChannel::new(dev, channo)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::new(
            ErrorKind::Config,
            format!(
                "D-channel {channo}: {} not found: load the DAHDI kernel modules (package dahdi-dkms) and run dahdi_cfg",
                devices.channel_path().display()
            ),
        )),
        Err(e) => Err(Error::new(ErrorKind::Io, format!("D-channel {channo}: {e}"))),
    }
}

/// Give each `signalling = "isdn_pri"` span of `cfg` its [`PriSignalling`] on the span's
/// D-channel (timeslot 16: [`dchannel_channo`]), opened with `open`.
pub fn attach_pri_spans<D, C, F>(
    card: &mut DahdiCard<D>,
    cfg: &CardConfig,
    events: &Sender<CardEvent>,
    mut open: F,
) -> Result<()>
where
    D: ChannelDevice,
    C: DChannel + 'static,
    F: FnMut(i32) -> Result<C>,
{
    for s in cfg.spans.iter().filter(|s| s.signalling == Signalling::IsdnPri) {
        let channo = dchannel_channo(card, cfg.id, s.span).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("card {} span {}: no DAHDI channel for timeslot 1, so no D-channel", cfg.id, s.span),
            )
        })?;
        let dchan = open(channo)?;
        let sig = PriSignalling::new(cfg.id, s.span, dchan, events.clone())?;
        card.set_span_signalling(s.span, Box::new(sig));
    }
    Ok(())
}

/// ISDN PRI call control for one span of a card: libpri's user side on a D-channel.
#[derive(Debug)]
pub struct PriSignalling<D: DChannel> {
    span: PriSpan,
    dchan: D,
    events: Sender<CardEvent>,
    /// The D-channel's physical link (false between DAHDI's ALARM and NOALARM).
    physical_up: bool,
}

impl<D: DChannel> PriSignalling<D> {
    /// Span `span` of card `card` on `dchan`; events go to `events` (the card's channel).
    /// Q.921 starts at once: the first SABME is written before this returns.
    pub fn new(card: u16, span: u8, dchan: D, events: Sender<CardEvent>) -> Result<Self> {
        let mut s = PriSignalling {
            span: PriSpan::new(card, span, PriLink::new(Node::Cpe)?)?,
            dchan,
            events,
            physical_up: true,
        };
        s.flush()?;
        Ok(s)
    }

    /// The D-channel carries Q.921: its physical link is out of alarm and libpri has the
    /// data link established.
    pub fn link_up(&self) -> bool {
        self.physical_up && self.span.is_up()
    }

    /// The D-channel's physical link is out of alarm.
    pub fn physical_up(&self) -> bool {
        self.physical_up
    }

    pub fn dchannel(&self) -> &D {
        &self.dchan
    }

    fn take_link_changes(&mut self) {
        for up in self.dchan.take_link_changes() {
            self.physical_up = up;
        }
    }

    /// The Q.931 side, for status and logs.
    pub fn span(&self) -> &PriSpan {
        &self.span
    }

    fn flush(&mut self) -> Result<()> {
        for f in self.span.take_frames() {
            self.dchan.write_frame(&f)?;
        }
        Ok(())
    }

    fn report(&self, now: Instant, kinds: Vec<EventKind>) {
        for kind in kinds {
            // Nobody listening: the card keeps running, as the simulator does.
            let _ = self.events.send(CardEvent { time: now, kind });
        }
    }
}

impl<D: DChannel> SpanSignalling for PriSignalling<D> {
    fn execute(&mut self, _now: Instant, command: Command) -> Result<()> {
        if let Command::PlaceCall { ch, .. } = &command {
            if !self.physical_up {
                return Err(Error::new(
                    ErrorKind::Blocked,
                    format!("{ch}: the span's D-channel is in alarm (link down)"),
                ));
            }
        }
        self.span.execute(&command)?;
        self.flush()
    }

    fn poll(&mut self, now: Instant) -> Result<Option<Instant>> {
        while let Some(frame) = self.dchan.read_frame()? {
            let kinds = self.span.receive(&frame);
            self.report(now, kinds);
            self.flush()?;
        }
        self.take_link_changes();
        let kinds = self.span.run_timers();
        self.report(now, kinds);
        self.flush()?;
        // libpri's timers run on the wall clock; on a real card `now` is wall time too.
        Ok(self.span.next_timer().map(|d| now + d))
    }

    fn state(&self, ch: ChannelId) -> ChannelState {
        self.span.state(ch)
    }
}
