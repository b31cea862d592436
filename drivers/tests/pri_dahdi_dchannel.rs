//! The DAHDI D-channel of a PRI span (`pri::dahdi::DahdiDChannel`) without the kernel:
//! a small fake of an HDLC channel's file descriptor (whole frames per read and write,
//! `ELAST` while an event waits, `DAHDI_GETEVENT`) carries Q.921 between the card-side
//! libpri and a network-side libpri. The fake follows DAHDI's documented behaviour for
//! HDLC channels; it is a test fixture, not DAHDI. Run with `--features pri`.

#![cfg(all(feature = "pri", feature = "dahdi"))]

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::unbounded;
use hotline_drivers::config;
use hotline_drivers::dahdi::device::DahdiDevices;
use hotline_drivers::dahdi::double::DahdiDouble;
use hotline_drivers::dahdi::{
    ChannelDevice, ChannelParams, Conf, DahdiCard, DahdiEvent, DahdiOptions, Hook, Law, SpanSignalling,
    SpanStatus,
};
use hotline_drivers::error::ErrorKind;
use hotline_drivers::pri::dahdi::{
    attach_pri_spans, dchannel_channo, open_dchannel_at, open_system_dchannel, DChannel, DahdiDChannel,
    PriSignalling,
};
use hotline_drivers::pri::{Node, PriEvent, PriLink};
use hotline_drivers::signal::CallerCategory;
use hotline_drivers::{ChannelId, Command, Instant};
use hotline_sys::dahdi as sys;

#[derive(Debug, Default)]
struct FdState {
    /// Frames the line has received, each with its FCS, for `read`.
    rx: VecDeque<Vec<u8>>,
    /// Frames written, as written.
    tx: Vec<Vec<u8>>,
    /// Raw `DAHDI_EVENT_*` codes waiting; while any wait, `read` fails with `ELAST`.
    events: VecDeque<i32>,
    /// Transmit buffers full: `write` would block.
    tx_full: bool,
    /// Reads that fail with EINTR before the next one works.
    interrupts: usize,
}

/// The fake descriptor; clones share it, so the test keeps a handle on the far side.
#[derive(Debug, Clone, Default)]
struct FakeFd(Arc<Mutex<FdState>>);

impl FakeFd {
    fn line_sends(&self, frame: Vec<u8>) {
        self.0.lock().unwrap().rx.push_back(frame);
    }
    fn event(&self, code: i32) {
        self.0.lock().unwrap().events.push_back(code);
    }
    fn take_sent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.0.lock().unwrap().tx)
    }
}

fn unsupported<T>() -> io::Result<T> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "not an HDLC channel operation"))
}

impl ChannelDevice for FakeFd {
    fn params(&mut self) -> io::Result<ChannelParams> {
        unsupported()
    }
    fn set_block_size(&mut self, _samples: usize) -> io::Result<()> {
        unsupported()
    }
    fn set_law(&mut self, _law: Law) -> io::Result<()> {
        unsupported()
    }
    fn set_ring_cadence(&mut self, _on: Duration, _off: Duration) -> io::Result<()> {
        unsupported()
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut s = self.0.lock().unwrap();
        if s.interrupts > 0 {
            s.interrupts -= 1;
            return Err(io::ErrorKind::Interrupted.into());
        }
        if !s.events.is_empty() {
            return Err(io::Error::from_raw_os_error(sys::ELAST));
        }
        let Some(frame) = s.rx.pop_front() else { return Err(io::ErrorKind::WouldBlock.into()) };
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok(n)
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.0.lock().unwrap();
        if s.tx_full {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        s.tx.push(buf.to_vec());
        Ok(buf.len())
    }
    fn get_event(&mut self) -> io::Result<Option<DahdiEvent>> {
        Ok(self.0.lock().unwrap().events.pop_front().and_then(DahdiEvent::from_raw))
    }
    fn hook(&mut self, _hook: Hook) -> io::Result<()> {
        unsupported()
    }
    fn set_conf(&mut self, _conf: Conf) -> io::Result<Conf> {
        unsupported()
    }
    fn span_status(&mut self, _spanno: i32) -> io::Result<SpanStatus> {
        unsupported()
    }
}

/// The card side (PriSignalling on the fake D-channel) and the network's libpri.
struct Rig {
    sig: PriSignalling<DahdiDChannel<FakeFd>>,
    fd: FakeFd,
    net: PriLink,
    net_events: Vec<PriEvent>,
    now: Instant,
}

fn rig() -> Rig {
    let fd = FakeFd::default();
    let (tx, _rx) = unbounded();
    let sig = PriSignalling::new(1, 1, DahdiDChannel::new(fd.clone(), 16), tx).unwrap();
    Rig { sig, fd, net: PriLink::new(Node::Network).unwrap(), net_events: Vec::new(), now: Instant::ZERO }
}

impl Rig {
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(20);
            for f in self.net.take_frames() {
                self.fd.line_sends(f);
            }
            self.sig.poll(self.now).unwrap();
            for f in self.fd.take_sent() {
                self.net_events.extend(self.net.receive(&f));
            }
        }
    }
}

fn place_call() -> Command {
    Command::PlaceCall {
        ch: ChannelId::e1(1, 1, 3),
        called: "4008001234".into(),
        calling: None,
        category: CallerCategory::Ordinary,
    }
}

#[test]
fn q921_comes_up_over_whole_frames_read_and_written_with_their_fcs_bytes() {
    let mut r = rig();
    r.run(Duration::from_millis(200));
    assert!(r.net_events.contains(&PriEvent::DChannelUp), "{:?}", r.net_events);
    assert!(r.sig.link_up());
    let stats = r.sig.dchannel().stats();
    assert!(stats.frames_in >= 1 && stats.frames_out >= 2, "{stats:?}");
    assert_eq!(stats.bad_frames, 0);
}

#[test]
fn frames_pass_to_the_device_exactly_as_libpri_writes_them() {
    let fd = FakeFd::default();
    let mut d = DahdiDChannel::new(fd.clone(), 16);
    let frame = vec![0x02, 0x01, 0x7f, 0xaa, 0xbb];
    d.write_frame(&frame).unwrap();
    assert_eq!(fd.take_sent(), vec![frame.clone()]);
    fd.line_sends(frame.clone());
    assert_eq!(d.read_frame().unwrap(), Some(frame));
    assert_eq!(d.read_frame().unwrap(), None);
}

#[test]
fn an_alarm_on_the_d_channel_is_taken_with_getevent_and_puts_the_link_down_then_up() {
    let mut r = rig();
    r.run(Duration::from_millis(200));
    assert!(r.sig.link_up());
    r.fd.event(sys::DAHDI_EVENT_ALARM);
    r.run(Duration::from_millis(20));
    assert!(!r.sig.physical_up());
    assert!(!r.sig.link_up());
    assert!(r.fd.0.lock().unwrap().events.is_empty(), "the event was taken");
    let err = r.sig.execute(r.now, place_call()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Blocked);
    assert!(err.to_string().contains("alarm"), "{err}");
    r.fd.event(sys::DAHDI_EVENT_NOALARM);
    r.run(Duration::from_millis(200));
    assert!(r.sig.physical_up() && r.sig.link_up());
    r.sig.execute(r.now, place_call()).unwrap();
}

#[test]
fn frames_waiting_behind_an_event_are_still_read_after_it() {
    let fd = FakeFd::default();
    let mut d = DahdiDChannel::new(fd.clone(), 16);
    fd.line_sends(vec![0x02, 0x01, 0x01, 0x00, 0x00]);
    fd.event(sys::DAHDI_EVENT_ALARM);
    fd.0.lock().unwrap().interrupts = 1;
    assert_eq!(d.read_frame().unwrap(), Some(vec![0x02, 0x01, 0x01, 0x00, 0x00]));
    assert!(d.in_alarm());
    assert_eq!(d.take_link_changes(), vec![false]);
    assert_eq!(d.take_link_changes(), Vec::<bool>::new());
}

#[test]
fn bad_fcs_events_and_runt_frames_are_counted_not_handed_to_libpri() {
    let fd = FakeFd::default();
    let mut d = DahdiDChannel::new(fd.clone(), 16);
    fd.event(sys::DAHDI_EVENT_BADFCS);
    fd.event(sys::DAHDI_EVENT_ABORT);
    fd.line_sends(vec![0x02, 0x01]);
    assert_eq!(d.read_frame().unwrap(), None);
    assert_eq!(d.stats().bad_frames, 3);
    assert!(!d.in_alarm());
}

#[test]
fn a_frame_is_dropped_when_dahdis_transmit_buffers_are_full_for_q921_to_resend() {
    let fd = FakeFd::default();
    let mut d = DahdiDChannel::new(fd.clone(), 16);
    fd.0.lock().unwrap().tx_full = true;
    d.write_frame(&[0x02, 0x01, 0x7f, 0, 0]).unwrap();
    assert_eq!(d.stats().dropped_out, 1);
    assert!(fd.take_sent().is_empty());
}

fn two_span_card() -> (DahdiCard<hotline_drivers::dahdi::double::DoubleChannel>, config::CardConfig) {
    let dahdi = DahdiDouble::new();
    for spanno in 1..=2 {
        dahdi.add_span(spanno, &format!("TE2/0/{spanno}"), "T2XXP (PCI) Card 0");
        for ts in 1..=31 {
            let sig = if ts == 16 { sys::DAHDI_SIG_HARDHDLC } else { sys::DAHDI_SIG_CLEAR };
            dahdi.add_channel((spanno - 1) * 31 + ts, spanno, ts, sig);
        }
    }
    let text = "[[card]]\nid = 1\nbackend = \"dahdi\"\n[[card.span]]\nspan = 1\nsignalling = \"isdn_pri\"\n\
                [[card.span]]\nspan = 2\nsignalling = \"isdn_pri\"\n";
    let cfg = config::parse(text, "test.toml").unwrap().cards.remove(0);
    let (tx, _rx) = unbounded();
    let card = DahdiCard::open(&cfg, &DahdiOptions::numbered(&cfg), &mut dahdi.clone(), tx).unwrap();
    (card, cfg)
}

#[test]
fn each_pri_spans_d_channel_is_timeslot_16_counted_from_the_spans_first_channel() {
    let (mut card, cfg) = two_span_card();
    assert_eq!(dchannel_channo(&card, 1, 1), Some(16));
    assert_eq!(dchannel_channo(&card, 1, 2), Some(47));
    assert_eq!(dchannel_channo(&card, 1, 3), None);
    let mut opened = Vec::new();
    let (tx, _rx) = unbounded();
    attach_pri_spans(&mut card, &cfg, &tx, |channo| {
        opened.push(channo);
        Ok(DahdiDChannel::new(FakeFd::default(), channo))
    })
    .unwrap();
    assert_eq!(opened, vec![16, 47]);
}

#[test]
fn opening_a_d_channel_without_dahdi_names_the_device_file() {
    let dir = std::env::temp_dir().join(format!("hotline-no-dahdi-{}", std::process::id()));
    let err = open_dchannel_at(&mut DahdiDevices::at(&dir), 16).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&dir.join("channel").display().to_string()), "{text}");
    assert!(text.contains("D-channel 16") && text.contains("dahdi"), "{text}");
    assert_eq!(err.kind(), ErrorKind::Config);

    let (mut card, cfg) = two_span_card();
    let (tx, _rx) = unbounded();
    let err = attach_pri_spans(&mut card, &cfg, &tx, |channo| {
        open_dchannel_at(&mut DahdiDevices::at(&dir), channo)
    })
    .unwrap_err();
    assert!(err.to_string().contains("channel"), "{err}");

    if !std::path::Path::new("/dev/dahdi/channel").exists() {
        let err = open_system_dchannel(16).unwrap_err();
        assert!(err.to_string().contains("/dev/dahdi/channel"), "{err}");
    }
}
