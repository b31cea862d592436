//! A PRI span's call control on a DAHDI card: [`PriSignalling`] is the card side of
//! Q.931 ([`PriSpan`]) on a D-channel, plugged into the DAHDI backend through its
//! [`SpanSignalling`] seam (`DahdiCard::set_span_signalling`).
//!
//! The D-channel is a [`DChannel`]: whole Q.921 frames, each followed by two FCS bytes,
//! which is how a DAHDI HDLC channel (the span's `dchan=` timeslot) reads and writes
//! them and how libpri hands them over, so frames pass through unchanged.

use crossbeam_channel::Sender;

use crate::channel::{ChannelId, ChannelState};
use crate::command::Command;
use crate::dahdi::SpanSignalling;
use crate::error::Result;
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
}

/// ISDN PRI call control for one span of a card: libpri's user side on a D-channel.
#[derive(Debug)]
pub struct PriSignalling<D: DChannel> {
    span: PriSpan,
    dchan: D,
    events: Sender<CardEvent>,
}

impl<D: DChannel> PriSignalling<D> {
    /// Span `span` of card `card` on `dchan`; events go to `events` (the card's channel).
    /// Q.921 starts at once: the first SABME is written before this returns.
    pub fn new(card: u16, span: u8, dchan: D, events: Sender<CardEvent>) -> Result<Self> {
        let mut s =
            PriSignalling { span: PriSpan::new(card, span, PriLink::new(Node::Cpe)?)?, dchan, events };
        s.flush()?;
        Ok(s)
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
        self.span.execute(&command)?;
        self.flush()
    }

    fn poll(&mut self, now: Instant) -> Result<Option<Instant>> {
        while let Some(frame) = self.dchan.read_frame()? {
            let kinds = self.span.receive(&frame);
            self.report(now, kinds);
            self.flush()?;
        }
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
