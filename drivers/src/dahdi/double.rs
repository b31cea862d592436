//! An in-process double of DAHDI's channel device, for tests. The DAHDI kernel module
//! cannot run on the machines that build Hotline, so this stands in for it: a test
//! double that follows DAHDI's documented behaviour, not DAHDI itself.
//!
//! What it models, per channel: the signalling type (an FXS port is FXO-signalled toward
//! its phone, an FXO port FXS-signalled toward the exchange), block size and law, the
//! event queue (`DAHDI_GETEVENT`; a `read` while events wait fails with `ELAST`), hook
//! operations (`DAHDI_RING` starts the ring cadence with `RINGERON`/`RINGEROFF` events;
//! the phone going off hook stops it and queues `RINGOFFHOOK`), receive audio from the
//! line, transmit audio clocked out one block per 20 ms, and conferencing
//! (`DAHDI_SETCONF`: conference members with talker/listener flags, `confno` 0
//! allocating a free conference, `DAHDI_CONF_MONITOR` of another channel's receive side),
//! mixed into what each line hears. Spans carry `DAHDI_ALARM_*` bits; raising or clearing
//! them queues `ALARM`/`NOALARM` on each of the span's channels.
//!
//! The test side ([`DahdiDouble`]) plays the far end: a phone lifted, hung up or flashed;
//! an exchange ringing a line; audio arriving from the line; what each line heard.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hotline_sys::dahdi as sys;

use super::{ChannelDevice, ChannelOpener, ChannelParams, Conf, DahdiEvent, Hook, Law, SpanStatus};
use crate::dsp::g711;
use crate::time::Instant;
use crate::FRAME_SAMPLES;

const FRAME: Duration = Duration::from_millis(20);
/// Transmit blocks DAHDI buffers before a write would block (its default is 2 buffers;
/// the double is a little more generous so a test's frame timing need not be exact).
const TX_BLOCKS: usize = 4;

#[derive(Debug)]
struct DChan {
    spanno: i32,
    chanpos: i32,
    sigtype: i32,
    opened: bool,
    block: usize,
    law: Option<Law>,
    cadence: (Duration, Duration),
    /// The last `DAHDI_HOOK` operation.
    hook: Option<Hook>,
    /// FXS port: the phone's handset is up. FXO port: we hold the line off hook.
    off_hook: bool,
    /// FXS port ringing: when ringing started, and the number of cadence edges reported.
    ringing: Option<(Instant, u64)>,
    events: VecDeque<i32>,
    /// Linear audio the line will send, one block per frame; silence when empty.
    line_audio: VecDeque<i16>,
    /// Receive bytes waiting for `read`.
    rx: VecDeque<u8>,
    /// The last frame received (for conference mixing), linear.
    last_rx: Vec<i16>,
    /// Bytes written and not yet clocked out.
    tx: VecDeque<u8>,
    /// Everything the line heard, linear (written audio plus conference mix).
    heard: Vec<i16>,
    conf: Conf,
    alarms: u32,
}

#[derive(Debug)]
struct DSpan {
    name: String,
    desc: String,
    alarms: i32,
}

#[derive(Debug, Default)]
struct State {
    chans: BTreeMap<i32, DChan>,
    spans: BTreeMap<i32, DSpan>,
    now: Option<Instant>,
    /// Every `DAHDI_SETCONF` made, in order: (channel, setting asked, setting made).
    conf_log: Vec<(i32, Conf, Conf)>,
}

/// The double's test side, and the [`ChannelOpener`] the backend is given. Clones share
/// one state.
#[derive(Debug, Clone, Default)]
pub struct DahdiDouble {
    state: Arc<Mutex<State>>,
}

/// A channel of the double, opened by the backend.
#[derive(Debug)]
pub struct DoubleChannel {
    state: Arc<Mutex<State>>,
    channo: i32,
}

fn einval(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.into())
}

impl DahdiDouble {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("the double's lock is never poisoned by its own code")
    }

    /// Add a span (`spanno` counting from 1) with a name as `/proc/dahdi` shows it.
    pub fn add_span(&self, spanno: i32, name: &str, desc: &str) {
        self.lock().spans.insert(spanno, DSpan { name: name.into(), desc: desc.into(), alarms: 0 });
    }

    /// Add a channel: its number, span, position in the span and `DAHDI_SIG_*` type.
    pub fn add_channel(&self, channo: i32, spanno: i32, chanpos: i32, sigtype: i32) {
        self.lock().chans.insert(
            channo,
            DChan {
                spanno,
                chanpos,
                sigtype,
                opened: false,
                block: 0,
                law: None,
                cadence: (Duration::from_secs(2), Duration::from_secs(4)),
                hook: None,
                off_hook: false,
                ringing: None,
                events: VecDeque::new(),
                line_audio: VecDeque::new(),
                rx: VecDeque::new(),
                last_rx: vec![0; FRAME_SAMPLES],
                tx: VecDeque::new(),
                heard: Vec::new(),
                conf: Conf::NORMAL,
                alarms: 0,
            },
        );
    }

    /// Run DAHDI's clock to `now`: each 20 ms every open channel receives one block from
    /// its line, clocks one written block out, and the conferences are mixed; ring
    /// cadences advance.
    pub fn advance_to(&self, now: Instant) {
        let mut st = self.lock();
        let mut t = match st.now {
            Some(t) => t,
            None => {
                st.now = Some(now);
                return;
            }
        };
        while t + FRAME <= now {
            t += FRAME;
            st.tick(t);
        }
        st.now = Some(t);
    }

    // ---- The far end ----

    /// The phone on an FXS port is lifted (or the exchange answers nothing: only FXS).
    pub fn phone_off_hook(&self, channo: i32) {
        let mut st = self.lock();
        let c = st.chans.get_mut(&channo).expect("no such channel in the double");
        if !c.off_hook {
            c.off_hook = true;
            // Ring trip: DAHDI stops ringing the moment the handset comes up.
            c.ringing = None;
            c.events.push_back(sys::DAHDI_EVENT_RINGOFFHOOK);
        }
    }

    /// The phone on an FXS port is hung up (longer than the flash time).
    pub fn phone_on_hook(&self, channo: i32) {
        let mut st = self.lock();
        let c = st.chans.get_mut(&channo).expect("no such channel in the double");
        if c.off_hook {
            c.off_hook = false;
            c.events.push_back(sys::DAHDI_EVENT_ONHOOK);
        }
    }

    /// The hook switch is flashed: DAHDI times it and reports a flash, not on/off hook.
    pub fn phone_flash(&self, channo: i32) {
        self.push_event(channo, sys::DAHDI_EVENT_WINKFLASH);
    }

    /// The exchange starts a ring burst on an FXO port: DAHDI reports `RINGOFFHOOK`.
    pub fn exchange_ring(&self, channo: i32) {
        self.push_event(channo, sys::DAHDI_EVENT_RINGOFFHOOK);
    }

    /// The exchange reverses the line's polarity on an FXO port.
    pub fn exchange_polarity_reversal(&self, channo: i32) {
        self.push_event(channo, sys::DAHDI_EVENT_POLARITY);
    }

    /// Kewl start disconnect supervision: the exchange drops loop current; DAHDI reports
    /// `ONHOOK` on the FXO port.
    pub fn exchange_drops_loop_current(&self, channo: i32) {
        self.push_event(channo, sys::DAHDI_EVENT_ONHOOK);
    }

    fn push_event(&self, channo: i32, code: i32) {
        let mut st = self.lock();
        st.chans.get_mut(&channo).expect("no such channel in the double").events.push_back(code);
    }

    /// Audio the line will send toward the card, after what is already queued.
    pub fn line_sends(&self, channo: i32, samples: &[i16]) {
        let mut st = self.lock();
        st.chans.get_mut(&channo).expect("no such channel in the double").line_audio.extend(samples);
    }

    /// Raise alarm bits on a span: each of its channels gets `DAHDI_EVENT_ALARM`.
    pub fn raise_span_alarm(&self, spanno: i32, alarms: i32) {
        let mut st = self.lock();
        st.spans.get_mut(&spanno).expect("no such span in the double").alarms = alarms;
        for c in st.chans.values_mut().filter(|c| c.spanno == spanno) {
            c.alarms = alarms as u32;
            c.events.push_back(sys::DAHDI_EVENT_ALARM);
        }
    }

    /// Clear a span's alarms: each of its channels gets `DAHDI_EVENT_NOALARM`.
    pub fn clear_span_alarm(&self, spanno: i32) {
        let mut st = self.lock();
        st.spans.get_mut(&spanno).expect("no such span in the double").alarms = 0;
        for c in st.chans.values_mut().filter(|c| c.spanno == spanno) {
            c.alarms = 0;
            c.events.push_back(sys::DAHDI_EVENT_NOALARM);
        }
    }

    // ---- What the test observes ----

    /// The last hook operation the backend made on the channel.
    pub fn last_hook(&self, channo: i32) -> Option<Hook> {
        self.lock().chans[&channo].hook
    }

    /// The card holds an FXO line off hook.
    pub fn line_seized(&self, channo: i32) -> bool {
        let st = self.lock();
        let c = &st.chans[&channo];
        c.sigtype & sys::__DAHDI_SIG_FXS != 0 && c.off_hook
    }

    /// An FXS port is ringing.
    pub fn is_ringing(&self, channo: i32) -> bool {
        self.lock().chans[&channo].ringing.is_some()
    }

    /// The channel's conference setting.
    pub fn conf(&self, channo: i32) -> Conf {
        self.lock().chans[&channo].conf
    }

    /// Every `DAHDI_SETCONF` so far: (channel, asked, made).
    pub fn conf_log(&self) -> Vec<(i32, Conf, Conf)> {
        self.lock().conf_log.clone()
    }

    /// Block size and law the backend set.
    pub fn audio_setup(&self, channo: i32) -> (usize, Option<Law>) {
        let st = self.lock();
        (st.chans[&channo].block, st.chans[&channo].law)
    }

    /// Everything the line heard since the last call, linear.
    pub fn take_heard(&self, channo: i32) -> Vec<i16> {
        std::mem::take(&mut self.lock().chans.get_mut(&channo).expect("no such channel").heard)
    }
}

impl State {
    fn tick(&mut self, now: Instant) {
        // Ring cadence: edges at on, on+off, 2on+off, ...
        for c in self.chans.values_mut() {
            let Some((start, edges)) = c.ringing else { continue };
            let (on, off) = c.cadence;
            let elapsed = now - start;
            let cycle = on + off;
            let cycles = (elapsed.as_micros() / cycle.as_micros()) as u64;
            let in_cycle = elapsed - cycle * cycles as u32;
            let due = cycles * 2 + u64::from(in_cycle >= on) + 1;
            let mut n = edges;
            while n < due {
                // Edge 0 is the first RINGERON (queued when ringing began).
                c.events.push_back(if n % 2 == 0 {
                    sys::DAHDI_EVENT_RINGERON
                } else {
                    sys::DAHDI_EVENT_RINGEROFF
                });
                n += 1;
            }
            c.ringing = Some((start, n));
        }
        // Receive: one block from each line.
        for c in self.chans.values_mut().filter(|c| c.opened && c.block > 0) {
            let mut frame = vec![0i16; c.block];
            for s in frame.iter_mut() {
                *s = c.line_audio.pop_front().unwrap_or(0);
            }
            let law = c.law.unwrap_or(Law::Mulaw);
            c.rx.extend(frame.iter().map(|&s| encode(law, s)));
            c.last_rx = frame;
        }
        // Transmit: each line hears one written block plus what the conferences give it.
        let rx: BTreeMap<i32, (Vec<i16>, Conf)> =
            self.chans.iter().map(|(&n, c)| (n, (c.last_rx.clone(), c.conf))).collect();
        for (&channo, c) in self.chans.iter_mut().filter(|(_, c)| c.opened && c.block > 0) {
            let law = c.law.unwrap_or(Law::Mulaw);
            let mut acc: Vec<i32> =
                (0..c.block).map(|_| c.tx.pop_front().map_or(0, |b| i32::from(decode(law, b)))).collect();
            let mut add = |frame: &[i16]| {
                for (a, &s) in acc.iter_mut().zip(frame) {
                    *a += i32::from(s);
                }
            };
            if c.conf.listens() {
                for (&other, (frame, conf)) in &rx {
                    if other != channo && conf.talks() && conf.confno == c.conf.confno {
                        add(frame);
                    }
                }
            } else if c.conf.base_mode() == sys::DAHDI_CONF_MONITOR {
                if let Some((frame, _)) = rx.get(&c.conf.confno) {
                    add(frame);
                }
            }
            c.heard.extend(acc.iter().map(|&a| a.clamp(-32768, 32767) as i16));
        }
    }
}

fn encode(law: Law, s: i16) -> u8 {
    match law {
        Law::Alaw => g711::linear_to_alaw(s),
        Law::Mulaw => g711::linear_to_ulaw(s),
    }
}

fn decode(law: Law, b: u8) -> i16 {
    match law {
        Law::Alaw => g711::alaw_to_linear(b),
        Law::Mulaw => g711::ulaw_to_linear(b),
    }
}

impl ChannelOpener for DahdiDouble {
    type Channel = DoubleChannel;
    fn open(&mut self, channo: i32) -> io::Result<DoubleChannel> {
        let mut st = self.lock();
        // DAHDI_SPECIFY on a channel that does not exist fails with ENXIO.
        let c = st.chans.get_mut(&channo).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("DAHDI_SPECIFY {channo}: no such channel"))
        })?;
        if c.opened {
            // DAHDI lets one opener bind a channel at a time.
            return Err(io::Error::from_raw_os_error(nix::libc::EBUSY));
        }
        c.opened = true;
        Ok(DoubleChannel { state: self.state.clone(), channo })
    }
}

impl DoubleChannel {
    fn with<T>(&self, f: impl FnOnce(&mut DChan, &mut State) -> T) -> T {
        let mut guard = self.state.lock().expect("the double's lock is never poisoned by its own code");
        let st = &mut *guard;
        let mut c = st.chans.remove(&self.channo).expect("open channels stay in the double");
        let out = f(&mut c, st);
        st.chans.insert(self.channo, c);
        out
    }
}

impl Drop for DoubleChannel {
    fn drop(&mut self) {
        if let Ok(mut st) = self.state.lock() {
            if let Some(c) = st.chans.get_mut(&self.channo) {
                c.opened = false;
            }
        }
    }
}

impl ChannelDevice for DoubleChannel {
    fn params(&mut self) -> io::Result<ChannelParams> {
        let channo = self.channo;
        Ok(self.with(|c, _| ChannelParams {
            channo,
            spanno: c.spanno,
            chanpos: c.chanpos,
            sigtype: c.sigtype,
            rx_off_hook: c.off_hook,
            law: c.law.map_or(sys::DAHDI_LAW_DEFAULT, Law::raw),
            name: format!("DOUBLE/{}/{}", c.spanno, c.chanpos),
            alarms: c.alarms,
        }))
    }

    fn set_block_size(&mut self, samples: usize) -> io::Result<()> {
        if samples == 0 || samples > sys::DAHDI_MAX_BLOCKSIZE as usize {
            return Err(einval(format!("block size {samples}")));
        }
        self.with(|c, _| c.block = samples);
        Ok(())
    }

    fn set_law(&mut self, law: Law) -> io::Result<()> {
        self.with(|c, _| c.law = Some(law));
        Ok(())
    }

    fn set_ring_cadence(&mut self, on: Duration, off: Duration) -> io::Result<()> {
        self.with(|c, _| c.cadence = (on, off));
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|c, _| {
            if !c.events.is_empty() {
                return Err(io::Error::from_raw_os_error(sys::ELAST));
            }
            if c.block == 0 || c.rx.len() < c.block {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(c.block);
            for b in buf.iter_mut().take(n) {
                *b = c.rx.pop_front().expect("checked above");
            }
            Ok(n)
        })
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with(|c, _| {
            let room = (TX_BLOCKS * c.block.max(1)).saturating_sub(c.tx.len());
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(room);
            c.tx.extend(&buf[..n]);
            Ok(n)
        })
    }

    fn get_event(&mut self) -> io::Result<Option<DahdiEvent>> {
        Ok(self.with(|c, _| c.events.pop_front()).and_then(DahdiEvent::from_raw))
    }

    fn hook(&mut self, hook: Hook) -> io::Result<()> {
        self.with(|c, st| {
            let fxs_port = c.sigtype & sys::__DAHDI_SIG_FXO != 0;
            match (hook, fxs_port) {
                (Hook::Ring, true) => {
                    if c.off_hook {
                        // DAHDI refuses to ring a phone that is off hook.
                        return Err(io::Error::from_raw_os_error(nix::libc::EBUSY));
                    }
                    let now = st.now.unwrap_or_default();
                    c.ringing = Some((now, 1));
                    c.events.push_back(sys::DAHDI_EVENT_RINGERON);
                }
                (Hook::RingOff | Hook::OnHook, true) => c.ringing = None,
                (Hook::OffHook, false) => c.off_hook = true,
                (Hook::OnHook, false) => c.off_hook = false,
                (Hook::Flash | Hook::Wink, _) => {}
                (h, _) => return Err(einval(format!("{h:?} on a channel with sigtype {:#x}", c.sigtype))),
            }
            c.hook = Some(hook);
            Ok(())
        })
    }

    fn set_conf(&mut self, conf: Conf) -> io::Result<Conf> {
        let channo = self.channo;
        self.with(|c, st| {
            let mode = conf.base_mode();
            let made = match mode {
                m if m == sys::DAHDI_CONF_NORMAL => Conf::NORMAL,
                m if m == sys::DAHDI_CONF_CONF => {
                    let confno = if conf.confno == 0 {
                        // DAHDI gives the first conference nobody uses.
                        let used: Vec<i32> = st
                            .chans
                            .values()
                            .chain([&*c])
                            .filter(|x| x.conf.base_mode() == sys::DAHDI_CONF_CONF)
                            .map(|x| x.conf.confno)
                            .collect();
                        (1..=sys::DAHDI_MAX_CONF)
                            .find(|n| !used.contains(n))
                            .ok_or_else(|| einval("no free conference"))?
                    } else if (1..=sys::DAHDI_MAX_CONF).contains(&conf.confno) {
                        conf.confno
                    } else {
                        return Err(einval(format!("conference {}", conf.confno)));
                    };
                    Conf { confno, mode: conf.mode }
                }
                m if m == sys::DAHDI_CONF_MONITOR
                    || m == sys::DAHDI_CONF_MONITORTX
                    || m == sys::DAHDI_CONF_MONITORBOTH =>
                {
                    if !st.chans.contains_key(&conf.confno) {
                        return Err(einval(format!("monitor of channel {}: no such channel", conf.confno)));
                    }
                    conf
                }
                _ => return Err(einval(format!("conference mode {:#x}", conf.mode))),
            };
            c.conf = made;
            st.conf_log.push((channo, conf, made));
            Ok(made)
        })
    }

    fn span_status(&mut self, spanno: i32) -> io::Result<SpanStatus> {
        self.with(|_, st| {
            let s = st.spans.get(&spanno).ok_or_else(|| einval(format!("span {spanno}")))?;
            Ok(SpanStatus { spanno, name: s.name.clone(), desc: s.desc.clone(), alarms: s.alarms })
        })
    }
}
