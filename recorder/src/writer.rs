//! The writer threads and the per-recording [`Session`]: frames from the card's taps are
//! placed on a 20 ms timeline by their time, the legs of each side are mixed, and every
//! slot is written once no leg can still fill it (a missing frame is silence).
//!
//! Threads: [`Recorder::spawn`] starts N writers. Each recording belongs to one writer
//! (by id) and has its own bounded frame queue, whose `Sender` goes to the card. Every
//! call the engine thread makes here returns at once: control messages go on an
//! unbounded queue (they are few), and frames never pass through the engine thread. A
//! card whose tap finds the queue full drops the frame and counts it; the writer sees the
//! hole in that leg's timeline and reports it as `dropped`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use hotline_drivers::command::TapFrame;
use hotline_drivers::{ChannelId, Instant, FRAME_SAMPLES};

use crate::sink::Sink;
use crate::{
    EndReason, ErrorKind, Format, Layout, RecorderError, RecorderEvent, RecordingSpec, Side, MP3_KBPS,
    PART_SUFFIX,
};

const FRAME: Duration = Duration::from_millis(20);
const FRAME_US: u64 = 20_000;
/// A frame more than this far ahead of the newest one is taken for a bad clock, not
/// placed (it would otherwise write minutes of silence).
const MAX_AHEAD_SLOTS: u64 = 3000;

/// How the recorder runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecorderConfig {
    /// Writer threads (default 2).
    pub writers: usize,
    /// Frames each recording's queue holds (default 250: 2.5 s of a stereo call). The
    /// card drops and counts frames beyond it.
    pub queue_depth: usize,
    /// How long a slot waits for the other legs before it is written (default 200 ms).
    pub jitter: Duration,
    /// Audio between writes to disk and, for WAV, header rewrites (default 1 s): the most
    /// a crash can lose.
    pub checkpoint_every: Duration,
    /// Mean absolute sample value under which a frame counts as silence for
    /// `silence_end` (default 100, about -50 dBFS).
    pub silence_level: u16,
    /// How often an idle writer looks at its queues (default 20 ms).
    pub tick: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            writers: 2,
            queue_depth: 250,
            jitter: Duration::from_millis(200),
            checkpoint_every: Duration::from_secs(1),
            silence_level: 100,
            tick: Duration::from_millis(20),
        }
    }
}

fn slots(d: Duration) -> u64 {
    (d.as_micros() as u64).div_ceil(FRAME_US).max(1)
}

/// One 20 ms slot of the file: left (or mono) and right.
#[derive(Clone, Debug)]
struct Slot {
    l: [i16; FRAME_SAMPLES],
    r: [i16; FRAME_SAMPLES],
}

impl Slot {
    const SILENT: Slot = Slot { l: [0; FRAME_SAMPLES], r: [0; FRAME_SAMPLES] };
}

#[derive(Debug)]
struct Leg {
    side: Side,
    /// The slot this leg's next frame should fill.
    next: Option<u64>,
}

/// One recording's state, without threads: what a writer thread runs for each of its
/// recordings. Public so that a benchmark or a test can drive the real writing path
/// synchronously.
#[derive(Debug)]
pub struct Session {
    id: u64,
    path: PathBuf,
    part: PathBuf,
    stereo: bool,
    legs: HashMap<ChannelId, Leg>,
    origin: Option<Instant>,
    /// Slot index of `slots[0]`.
    base: u64,
    slots: VecDeque<Slot>,
    newest: Option<u64>,
    sink: Option<Sink>,
    written: u64,
    since_checkpoint: u64,
    /// Silent slots held back while `silence_end` runs: written if speech resumes,
    /// dropped if the recording ends in silence.
    pending: VecDeque<Slot>,
    lag: u64,
    checkpoint: u64,
    max_slots: Option<u64>,
    silence_slots: Option<u64>,
    silence_level: u32,
    frames: u64,
    dropped: u64,
    unplaced: u64,
}

/// `PATH` → `PATH.part`.
pub fn part_path(path: &std::path::Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}

fn check_spec(spec: &RecordingSpec) -> Result<(), RecorderError> {
    if let Layout::Mono { chs } = &spec.layout {
        if chs.is_empty() {
            return Err(RecorderError::new(
                ErrorKind::InvalidSpec,
                format!("recording {}: a mono layout needs at least one channel", spec.id),
            ));
        }
    }
    if let Format::Mp3 { kbps } = spec.format {
        if !MP3_KBPS.contains(&kbps) {
            return Err(RecorderError::new(
                ErrorKind::InvalidSpec,
                format!("recording {}: MP3 at {kbps} kbit/s, expected one of {MP3_KBPS:?}", spec.id),
            ));
        }
    }
    if spec.path.as_os_str().is_empty() {
        return Err(RecorderError::new(ErrorKind::InvalidSpec, format!("recording {}: empty path", spec.id)));
    }
    Ok(())
}

impl Session {
    /// Creates `spec.path` + `.part` and gets ready for frames.
    pub fn open(spec: &RecordingSpec, cfg: &RecorderConfig) -> io::Result<Session> {
        check_spec(spec).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let part = part_path(&spec.path);
        let sink = Sink::create(&part, spec.format, spec.layout.channels())?;
        Ok(Session {
            id: spec.id,
            path: spec.path.clone(),
            part,
            stereo: matches!(spec.layout, Layout::Stereo { .. }),
            legs: spec.layout.legs().into_iter().map(|(ch, side)| (ch, Leg { side, next: None })).collect(),
            origin: None,
            base: 0,
            slots: VecDeque::new(),
            newest: None,
            sink: Some(sink),
            written: 0,
            since_checkpoint: 0,
            pending: VecDeque::new(),
            lag: (cfg.jitter.as_micros() as u64).div_ceil(FRAME_US),
            checkpoint: slots(cfg.checkpoint_every),
            max_slots: spec.max_len.map(slots),
            silence_slots: spec.silence_end.map(slots),
            silence_level: u32::from(cfg.silence_level),
            frames: 0,
            dropped: 0,
            unplaced: 0,
        })
    }

    /// Adds a channel to a side (a consultation or conference party); its audio is mixed
    /// into that side from its first frame on.
    pub fn add_leg(&mut self, ch: ChannelId, side: Side) {
        self.legs.entry(ch).or_insert(Leg { side, next: None }).side = side;
    }

    /// Places a batch of frames (as drained from the queue) on the timeline.
    pub fn accept(&mut self, batch: &[TapFrame]) {
        if self.origin.is_none() {
            // The earliest frame of the first batch is time zero, so that neither leg's
            // first frame is late.
            self.origin = batch.iter().filter(|f| self.legs.contains_key(&f.ch)).map(|f| f.time).min();
        }
        for f in batch {
            self.place(f);
        }
    }

    fn place(&mut self, f: &TapFrame) {
        let (Some(origin), Some(leg)) = (self.origin, self.legs.get_mut(&f.ch)) else {
            self.unplaced += 1;
            return;
        };
        if f.samples.len() != FRAME_SAMPLES || f.time < origin {
            self.unplaced += 1;
            return;
        }
        let s = ((f.time - origin).as_micros() as u64 + FRAME_US / 2) / FRAME_US;
        let too_far = self.newest.is_some_and(|n| s > n + MAX_AHEAD_SLOTS) || s > MAX_AHEAD_SLOTS * 1000;
        if s < self.base || too_far || leg.next.is_some_and(|n| s < n) {
            self.unplaced += 1;
            return;
        }
        if let Some(n) = leg.next {
            self.dropped += s - n;
        }
        leg.next = Some(s + 1);
        let side = leg.side;
        let idx = (s - self.base) as usize;
        while self.slots.len() <= idx {
            self.slots.push_back(Slot::SILENT);
        }
        let slot = &mut self.slots[idx];
        let into = if self.stereo && side == Side::Agent { &mut slot.r } else { &mut slot.l };
        for (o, &x) in into.iter_mut().zip(f.samples.iter()) {
            *o = o.saturating_add(x);
        }
        self.frames += 1;
        self.newest = Some(self.newest.map_or(s, |n| n.max(s)));
    }

    /// Writes every slot no leg can still fill (all of them when `all`). Returns why the
    /// recording must end, if it must.
    pub fn advance(&mut self, all: bool) -> io::Result<Option<EndReason>> {
        let Some(newest) = self.newest else { return Ok(None) };
        let limit = if all { newest + 1 } else { (newest + 1).saturating_sub(self.lag) };
        while self.base < limit {
            let slot = self.slots.pop_front().unwrap_or(Slot::SILENT);
            self.base += 1;
            if let Some(end) = self.emit(slot)? {
                return Ok(Some(end));
            }
        }
        Ok(None)
    }

    fn silent(&self, slot: &Slot) -> bool {
        let energy = |x: &[i16; FRAME_SAMPLES]| x.iter().map(|&s| s.unsigned_abs() as u32).sum::<u32>();
        let limit = self.silence_level * FRAME_SAMPLES as u32;
        energy(&slot.l) < limit && (!self.stereo || energy(&slot.r) < limit)
    }

    fn emit(&mut self, slot: Slot) -> io::Result<Option<EndReason>> {
        if let Some(quiet) = self.silence_slots {
            if self.silent(&slot) {
                self.pending.push_back(slot);
                if self.pending.len() as u64 >= quiet {
                    return Ok(Some(EndReason::Silence));
                }
            } else {
                while let Some(p) = self.pending.pop_front() {
                    self.write(&p)?;
                }
                self.write(&slot)?;
            }
        } else {
            self.write(&slot)?;
        }
        if self.max_slots.is_some_and(|m| self.written + self.pending.len() as u64 >= m) {
            while let Some(p) = self.pending.pop_front() {
                self.write(&p)?;
            }
            return Ok(Some(EndReason::MaxLength));
        }
        Ok(None)
    }

    fn write(&mut self, slot: &Slot) -> io::Result<()> {
        let sink = self.sink.as_mut().expect("sink lives until finish");
        sink.push(&slot.l, self.stereo.then_some(&slot.r));
        self.written += 1;
        self.since_checkpoint += 1;
        if self.since_checkpoint >= self.checkpoint {
            self.since_checkpoint = 0;
            sink.checkpoint()?;
        }
        Ok(())
    }

    /// Writes what remains (for [`EndReason::Stopped`] and [`EndReason::ChannelGone`];
    /// trailing silence held for `silence_end` is dropped), finalizes the file and
    /// renames it to its final path.
    pub fn finish(mut self, reason: EndReason) -> RecorderEvent {
        let mut result = Ok(());
        if matches!(reason, EndReason::Stopped | EndReason::ChannelGone) {
            result = self.advance(true).map(|_| ());
        }
        let id = self.id;
        let result = result
            .and_then(|()| self.sink.take().expect("sink lives until finish").finish())
            .and_then(|_| std::fs::rename(&self.part, &self.path));
        match result {
            Ok(()) => RecorderEvent::Finished {
                id,
                path: self.path,
                duration: FRAME * self.written as u32,
                frames: self.frames,
                dropped: self.dropped,
                unplaced: self.unplaced,
                reason,
            },
            Err(e) => RecorderEvent::Failed { id, message: format!("{}: {e}", self.part.display()) },
        }
    }

    /// The recording's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Audio written so far.
    pub fn duration(&self) -> Duration {
        FRAME * self.written as u32
    }
}

enum Ctl {
    Begin(RecordingSpec, Receiver<TapFrame>),
    AddLeg(u64, ChannelId, Side),
    End(u64),
}

#[derive(Debug)]
struct Writer {
    ctl: Sender<Ctl>,
    join: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Ctl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ctl::Begin(s, _) => write!(f, "Begin({})", s.id),
            Ctl::AddLeg(id, ch, side) => write!(f, "AddLeg({id}, {ch}, {side:?})"),
            Ctl::End(id) => write!(f, "End({id})"),
        }
    }
}

/// The recorder: writer threads and the routing of calls to them. Dropping it finishes
/// every running recording ([`EndReason::Stopped`]) and joins the threads.
#[derive(Debug)]
pub struct Recorder {
    writers: Vec<Writer>,
    active: Arc<Mutex<HashSet<u64>>>,
    queue_depth: usize,
}

impl Recorder {
    /// Starts the writer threads. Events come on the returned receiver (unbounded: a
    /// writer never waits for the engine thread either).
    pub fn spawn(cfg: RecorderConfig) -> (Recorder, Receiver<RecorderEvent>) {
        let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
        let active = Arc::new(Mutex::new(HashSet::new()));
        let writers = (0..cfg.writers.max(1))
            .map(|i| {
                let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
                let (cfg, ev_tx, active) = (cfg.clone(), ev_tx.clone(), Arc::clone(&active));
                let join = std::thread::Builder::new()
                    .name(format!("recorder-{i}"))
                    .spawn(move || writer_loop(cfg, ctl_rx, ev_tx, active))
                    .expect("spawn a recorder thread");
                Writer { ctl: ctl_tx, join: Some(join) }
            })
            .collect();
        (Recorder { writers, active, queue_depth: cfg.queue_depth.max(1) }, ev_rx)
    }

    fn writer(&self, id: u64) -> &Writer {
        &self.writers[(id % self.writers.len() as u64) as usize]
    }

    fn send(&self, id: u64, ctl: Ctl) -> Result<(), RecorderError> {
        self.writer(id).ctl.send(ctl).map_err(|_| {
            RecorderError::new(ErrorKind::Stopped, format!("recording {id}: the writer thread is gone"))
        })
    }

    /// Starts a recording. Give the returned sender (cloned) to `Command::StartTap` for
    /// each channel of the layout, and for each channel added later with
    /// [`add_leg`](Self::add_leg). The file is created on the writer thread; if that
    /// fails a [`RecorderEvent::Failed`] follows.
    pub fn begin(&self, spec: RecordingSpec) -> Result<Sender<TapFrame>, RecorderError> {
        check_spec(&spec)?;
        let id = spec.id;
        if !self.active.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
            return Err(RecorderError::new(ErrorKind::DuplicateId, format!("recording {id} runs already")));
        }
        let (tx, rx) = crossbeam_channel::bounded(self.queue_depth);
        if let Err(e) = self.send(id, Ctl::Begin(spec, rx)) {
            self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return Err(e);
        }
        Ok(tx)
    }

    /// Adds a channel to a running recording, mixed into `side` (a consultation or a
    /// conference). Tap it with a clone of the sender [`begin`](Self::begin) returned.
    pub fn add_leg(&self, id: u64, ch: ChannelId, side: Side) -> Result<(), RecorderError> {
        self.check_running(id)?;
        self.send(id, Ctl::AddLeg(id, ch, side))
    }

    /// Ends a recording: the frames already queued are written, then the file is
    /// finished and [`RecorderEvent::Finished`] follows. Unknown ids are ignored (the
    /// recording may have ended by itself a moment ago).
    pub fn end(&self, id: u64) {
        if self.check_running(id).is_ok() {
            let _ = self.send(id, Ctl::End(id));
        }
    }

    /// Whether a recording runs (begun, not yet finished).
    pub fn is_running(&self, id: u64) -> bool {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).contains(&id)
    }

    fn check_running(&self, id: u64) -> Result<(), RecorderError> {
        if self.is_running(id) {
            Ok(())
        } else {
            Err(RecorderError::new(ErrorKind::UnknownId, format!("no recording {id} runs")))
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for w in &mut self.writers {
            // Closing the control queue tells the writer to finish up.
            let (dead, _) = crossbeam_channel::unbounded();
            w.ctl = dead;
        }
        for w in &mut self.writers {
            if let Some(j) = w.join.take() {
                let _ = j.join();
            }
        }
    }
}

struct Running {
    session: Session,
    rx: Receiver<TapFrame>,
    /// After `end`: how many frames were queued then, still to be written.
    ending: Option<usize>,
}

fn writer_loop(
    cfg: RecorderConfig,
    ctl: Receiver<Ctl>,
    events: Sender<RecorderEvent>,
    active: Arc<Mutex<HashSet<u64>>>,
) {
    let mut running: HashMap<u64, Running> = HashMap::new();
    let mut batch = Vec::new();
    let mut busy = false;
    let mut open = true;
    while open || !running.is_empty() {
        // Wait only when there was nothing to do: a loaded writer runs flat out.
        let first = if !open {
            None
        } else if running.is_empty() {
            ctl.recv().ok().or_else(|| {
                open = false;
                None
            })
        } else if busy {
            match ctl.try_recv() {
                Ok(c) => Some(c),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    open = false;
                    None
                }
            }
        } else {
            match ctl.recv_timeout(cfg.tick) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    None
                }
            }
        };
        let mut next = first;
        while let Some(c) = next.take() {
            match c {
                Ctl::Begin(spec, rx) => match Session::open(&spec, &cfg) {
                    Ok(session) => {
                        running.insert(spec.id, Running { session, rx, ending: None });
                    }
                    Err(e) => {
                        active.lock().unwrap_or_else(|p| p.into_inner()).remove(&spec.id);
                        let message = format!("{}: {e}", part_path(&spec.path).display());
                        let _ = events.send(RecorderEvent::Failed { id: spec.id, message });
                    }
                },
                Ctl::AddLeg(id, ch, side) => {
                    if let Some(r) = running.get_mut(&id) {
                        r.session.add_leg(ch, side);
                    }
                }
                Ctl::End(id) => {
                    if let Some(r) = running.get_mut(&id) {
                        r.ending.get_or_insert(r.rx.len());
                    }
                }
            }
            next = ctl.try_recv().ok();
        }
        if !open {
            for r in running.values_mut() {
                r.ending.get_or_insert(r.rx.len());
            }
        }

        busy = false;
        let mut done = Vec::new();
        for (&id, r) in running.iter_mut() {
            batch.clear();
            let mut gone = false;
            // Take at most a queue's worth, so one recording cannot starve the others;
            // an ending one takes what was queued before `end` (the card may still send).
            let take = r.ending.unwrap_or(cfg.queue_depth);
            while batch.len() < take {
                match r.rx.try_recv() {
                    Ok(f) => batch.push(f),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            busy |= !batch.is_empty();
            r.session.accept(&batch);
            let finished = if r.ending.is_some() {
                Ok(Some(EndReason::Stopped))
            } else if gone {
                Ok(Some(EndReason::ChannelGone))
            } else {
                r.session.advance(false)
            };
            match finished {
                Ok(None) => {}
                Ok(Some(reason)) => done.push((id, Ok(reason))),
                Err(e) => done.push((id, Err(e))),
            }
        }
        for (id, how) in done {
            let r = running.remove(&id).expect("listed above");
            let ev = match how {
                Ok(reason) => r.session.finish(reason),
                Err(e) => {
                    let message = format!("{}: {e}", r.session.part.display());
                    RecorderEvent::Failed { id, message }
                }
            };
            active.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            let _ = events.send(ev);
        }
    }
}
