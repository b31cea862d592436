//! [`PriSpan`]: the card side (user side, CPE) of an E1 PRI span. It turns our call
//! commands into Q.931 through libpri and libpri's events into our [`EventKind`]s.
//!
//! - A SETUP is answered with CALL PROCEEDING at once (the network's T303 stops) and
//!   reported as `Offered` on the B-channel the network chose, with the called number
//!   as DNIS and the calling number as ANI.
//! - `accept` sends ALERTING, `answer` CONNECT; the answer takes effect, and `Answered`
//!   is reported, when the network's CONNECT ACKNOWLEDGE arrives.
//! - `release` and `reject` send DISCONNECT with the cause; `place_call` sends SETUP on
//!   the channel asked for (exclusive), the called and calling numbers in it.
//! - Clearing ends with RELEASE / RELEASE COMPLETE; only then is the channel idle and
//!   `Released` reported, with the cause of the first clearing message and the side
//!   that sent it.
//!
//! [`execute`](PriSpan::execute) and [`state`](PriSpan::state) are what a card backend
//! needs to hand a span's call control over (the DAHDI backend's span-signalling seam).
//!
//! The D-channel is the owner's business: it moves frames between
//! [`take_frames`](PriSpan::take_frames) and the far end, and gives received frames to
//! [`receive`](PriSpan::receive). A simulated span joins them to a network-side
//! [`PriLink`]; a real span to its HDLC D-channel.

use std::collections::BTreeMap;

use crate::cause::Cause;
use crate::channel::{ChannelAddr, ChannelId, ChannelState};
use crate::command::Command;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{EventKind, Side};
use crate::signal::CallerCategory;

use super::link::{CallRef, Node, PriEvent, PriLink, Setup};
use super::q931::{self, Frame, MessageType};

/// Where a call on the span stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// Inbound, SETUP received, CALL PROCEEDING sent.
    Offered,
    /// Inbound, ALERTING sent.
    Alerting,
    /// Inbound, CONNECT sent, waiting for CONNECT ACKNOWLEDGE.
    Answering,
    /// Outbound, SETUP sent.
    Dialing,
    /// Outbound, ALERTING received.
    Ringing,
    /// Answered either way.
    Active,
    /// Clearing started (by either side).
    Clearing,
}

#[derive(Debug)]
struct SpanCall {
    call: CallRef,
    /// Q.931 call reference of an inbound call, to match the CONNECT ACKNOWLEDGE.
    call_reference: Option<u16>,
    state: State,
    /// The cause and side of the first clearing message.
    cleared: Option<(Cause, Side)>,
}

/// The user side of one PRI span.
#[derive(Debug)]
pub struct PriSpan {
    card: u16,
    span: u8,
    link: PriLink,
    /// Calls by B-channel (E1 timeslot).
    calls: BTreeMap<u8, SpanCall>,
    up: bool,
}

impl PriSpan {
    /// The span `span` of card `card`, signalling through `link` (a user-side link).
    pub fn new(card: u16, span: u8, link: PriLink) -> Result<PriSpan> {
        if link.node() != Node::Cpe {
            return Err(Error::new(ErrorKind::Config, "the card side of a PRI span is the user side (CPE)"));
        }
        Ok(PriSpan { card, span, link, calls: BTreeMap::new(), up: false })
    }

    /// Multiple-frame operation is established on the D-channel.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether a call (in any state) holds the B-channel.
    pub fn has_call(&self, timeslot: u8) -> bool {
        self.calls.contains_key(&timeslot)
    }

    /// Frames to send on the D-channel.
    pub fn take_frames(&mut self) -> Vec<Vec<u8>> {
        self.link.take_frames()
    }

    /// What libpri printed for this span.
    pub fn log(&self) -> &[String] {
        self.link.log()
    }

    /// libpri's next timer by the wall clock (see [`PriLink::next_timer`]).
    pub fn next_timer(&self) -> Option<std::time::Duration> {
        self.link.next_timer()
    }

    /// A frame from the D-channel; what it means for our calls.
    pub fn receive(&mut self, frame: &[u8]) -> Vec<EventKind> {
        let mut out = Vec::new();
        // libpri does not report a CONNECT ACKNOWLEDGE to the side that answered; the
        // answer takes effect when it arrives, so look for it here.
        if let Frame::Info {
            message: MessageType::ConnectAcknowledge,
            call_ref,
            from_destination: false,
            ..
        } = q931::decode(frame)
        {
            let ts = self.calls.iter().find_map(|(ts, c)| {
                (c.state == State::Answering && c.call_reference == Some(call_ref)).then_some(*ts)
            });
            if let Some(ts) = ts {
                self.calls.get_mut(&ts).expect("found").state = State::Active;
                out.push(EventKind::Answered { ch: self.ch(ts) });
            }
        }
        if let Some(ev) = self.link.receive(frame) {
            self.handle(ev, &mut out);
        }
        out
    }

    /// Run libpri's timers that are due by the wall clock.
    pub fn run_timers(&mut self) -> Vec<EventKind> {
        let mut out = Vec::new();
        for ev in self.link.run_timers() {
            self.handle(ev, &mut out);
        }
        out
    }

    /// ALERTING on an offered call: the caller hears ringback.
    pub fn accept(&mut self, timeslot: u8) -> Result<()> {
        let c = self.call_in(timeslot, &[State::Offered], "accept")?;
        let call = c.call;
        self.link.alerting(call, timeslot)?;
        self.calls.get_mut(&timeslot).expect("checked").state = State::Alerting;
        Ok(())
    }

    /// CONNECT on an offered call.
    pub fn answer(&mut self, timeslot: u8) -> Result<()> {
        let c = self.call_in(timeslot, &[State::Offered, State::Alerting], "answer")?;
        let call = c.call;
        self.link.answer(call, timeslot)?;
        self.calls.get_mut(&timeslot).expect("checked").state = State::Answering;
        Ok(())
    }

    /// Clear the call on the B-channel with a Q.850 cause (a reject, when it is an
    /// unanswered inbound call).
    pub fn release(&mut self, timeslot: u8, cause: Cause) -> Result<()> {
        let c = self.call_in(
            timeslot,
            &[
                State::Offered,
                State::Alerting,
                State::Answering,
                State::Dialing,
                State::Ringing,
                State::Active,
            ],
            "release",
        )?;
        let call = c.call;
        self.link.hangup(call, cause)?;
        let c = self.calls.get_mut(&timeslot).expect("checked");
        c.state = State::Clearing;
        c.cleared = Some((cause, Side::Local));
        Ok(())
    }

    /// SETUP on the B-channel (exclusive), with the called and calling numbers.
    pub fn place_call(&mut self, timeslot: u8, called: &str, calling: Option<&str>) -> Result<()> {
        self.check_timeslot(timeslot)?;
        if !self.up {
            return Err(Error::new(
                ErrorKind::Blocked,
                format!("span {} of card {}: the D-channel is down", self.span, self.card),
            ));
        }
        if self.calls.contains_key(&timeslot) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("{} already has a call", self.ch(timeslot)),
            ));
        }
        let call = self.link.setup(&Setup { timeslot, called, calling })?;
        self.calls
            .insert(timeslot, SpanCall { call, call_reference: None, state: State::Dialing, cleared: None });
        Ok(())
    }

    /// Carry out a call-control command for one of the span's bearer channels
    /// (Accept, Answer, Reject, Release, PlaceCall); others are `Unsupported` here.
    pub fn execute(&mut self, command: &Command) -> Result<()> {
        let ch =
            command.channel().ok_or_else(|| Error::new(ErrorKind::Unsupported, "not a channel command"))?;
        let ts = self.own_timeslot(ch)?;
        match command {
            Command::Accept { .. } => self.accept(ts),
            Command::Answer { .. } => self.answer(ts),
            Command::Reject { cause, .. } | Command::Release { cause, .. } => self.release(ts, *cause),
            Command::PlaceCall { called, calling, .. } => self.place_call(ts, called, calling.as_deref()),
            other => Err(Error::new(
                ErrorKind::Unsupported,
                format!("ISDN call control does not carry {other:?} on {ch}"),
            )),
        }
    }

    /// A bearer channel's state as the span's Q.931 sees it.
    pub fn state(&self, ch: ChannelId) -> ChannelState {
        let Ok(ts) = self.own_timeslot(ch) else { return ChannelState::Idle };
        match self.calls.get(&ts).map(|c| c.state) {
            None => ChannelState::Idle,
            Some(State::Offered) => ChannelState::Offered,
            Some(State::Alerting | State::Answering | State::Ringing) => ChannelState::Alerting,
            Some(State::Dialing) => ChannelState::Dialing,
            Some(State::Active) => ChannelState::Connected,
            Some(State::Clearing) => ChannelState::Releasing,
        }
    }

    fn own_timeslot(&self, ch: ChannelId) -> Result<u8> {
        match ch.addr {
            ChannelAddr::E1 { span, timeslot } if ch.card == self.card && span == self.span => {
                self.check_timeslot(timeslot)?;
                Ok(timeslot)
            }
            _ => Err(Error::new(
                ErrorKind::NoSuchChannel,
                format!("{ch} is not on span {} of card {}", self.span, self.card),
            )),
        }
    }

    /// Layer 1 is lost: forget every call without signalling (both ends clear their
    /// calls locally). Returns the B-channels that had calls.
    pub fn forget_calls(&mut self) -> Vec<u8> {
        let calls = std::mem::take(&mut self.calls);
        for c in calls.values() {
            self.link.destroy_call(c.call);
        }
        calls.into_keys().collect()
    }

    fn ch(&self, timeslot: u8) -> ChannelId {
        ChannelId::e1(self.card, self.span, timeslot)
    }

    fn check_timeslot(&self, timeslot: u8) -> Result<()> {
        if timeslot == 0 || timeslot == 16 || timeslot > 31 {
            return Err(Error::new(
                ErrorKind::NoSuchChannel,
                format!("timeslot {timeslot} is not a bearer channel of span {}", self.span),
            ));
        }
        Ok(())
    }

    fn call_in(&self, timeslot: u8, states: &[State], what: &str) -> Result<&SpanCall> {
        self.check_timeslot(timeslot)?;
        match self.calls.get(&timeslot) {
            Some(c) if states.contains(&c.state) => Ok(c),
            Some(c) => Err(Error::new(
                ErrorKind::InvalidState,
                format!("cannot {what} {}: its ISDN call is {:?}", self.ch(timeslot), c.state),
            )),
            None => Err(Error::new(
                ErrorKind::InvalidState,
                format!("cannot {what} {}: no call", self.ch(timeslot)),
            )),
        }
    }

    fn timeslot_of(&self, call: CallRef) -> Option<u8> {
        self.calls.iter().find_map(|(ts, c)| (c.call == call).then_some(*ts))
    }

    fn handle(&mut self, ev: PriEvent, out: &mut Vec<EventKind>) {
        match ev {
            PriEvent::DChannelUp => self.up = true,
            PriEvent::DChannelDown => self.up = false,
            PriEvent::Ring { call, channel, called, calling, call_reference, .. } => {
                let refuse = match channel {
                    None => Some(Cause::REQUESTED_CHANNEL_NOT_AVAILABLE),
                    Some(ts) if self.check_timeslot(ts).is_err() => {
                        Some(Cause::REQUESTED_CHANNEL_NOT_AVAILABLE)
                    }
                    Some(ts) if self.calls.contains_key(&ts) => Some(Cause::REQUESTED_CHANNEL_NOT_AVAILABLE),
                    Some(_) => None,
                };
                let ts = channel.unwrap_or(0);
                if let Some(cause) = refuse {
                    // Nothing of ours to report: the network hears why.
                    let _ = self.link.hangup(call, cause);
                    return;
                }
                if self.link.proceeding(call, ts).is_err() {
                    return;
                }
                self.calls.insert(
                    ts,
                    SpanCall {
                        call,
                        call_reference: Some(call_reference),
                        state: State::Offered,
                        cleared: None,
                    },
                );
                out.push(EventKind::Offered {
                    ch: self.ch(ts),
                    ani: calling,
                    dnis: called,
                    category: CallerCategory::Ordinary,
                });
            }
            PriEvent::Ringing { call, .. } => {
                if let Some(ts) = self.timeslot_of(call) {
                    let c = self.calls.get_mut(&ts).expect("found");
                    if c.state == State::Dialing {
                        c.state = State::Ringing;
                        out.push(EventKind::Alerting { ch: self.ch(ts) });
                    }
                }
            }
            PriEvent::Answer { call, .. } => {
                if let Some(ts) = self.timeslot_of(call) {
                    let c = self.calls.get_mut(&ts).expect("found");
                    if matches!(c.state, State::Dialing | State::Ringing) {
                        c.state = State::Active;
                        out.push(EventKind::Answered { ch: self.ch(ts) });
                    }
                }
            }
            PriEvent::HangupReq { call, cause, .. } => {
                // DISCONNECT from the network: answer with RELEASE; the call ends when
                // RELEASE COMPLETE comes back.
                if let Some(ts) = self.timeslot_of(call) {
                    let c = self.calls.get_mut(&ts).expect("found");
                    c.state = State::Clearing;
                    c.cleared.get_or_insert((cause, Side::Remote));
                }
                let _ = self.link.hangup(call, cause);
            }
            PriEvent::Hangup { call, cause, .. } | PriEvent::HangupAck { call, cause, .. } => {
                // After RELEASE (or a RELEASE COMPLETE out of the blue) libpri waits for
                // our hangup to complete and free the call; after the RELEASE COMPLETE
                // that ends our own clearing it has freed the call itself.
                if matches!(ev, PriEvent::Hangup { .. }) {
                    let _ = self.link.hangup(call, cause);
                }
                if let Some(ts) = self.timeslot_of(call) {
                    let c = self.calls.remove(&ts).expect("found");
                    let (cause, by) = c.cleared.unwrap_or((cause, Side::Remote));
                    out.push(EventKind::Released { ch: self.ch(ts), cause, by });
                }
            }
            PriEvent::Restart { channel } => {
                // The network restarted a channel (or the interface): its calls are gone.
                let hit: Vec<u8> = match channel {
                    Some(ts) => self.calls.contains_key(&ts).then_some(ts).into_iter().collect(),
                    None => self.calls.keys().copied().collect(),
                };
                for ts in hit {
                    let c = self.calls.remove(&ts).expect("listed");
                    self.link.destroy_call(c.call);
                    out.push(EventKind::Released {
                        ch: self.ch(ts),
                        cause: Cause::TEMPORARY_FAILURE,
                        by: Side::Remote,
                    });
                }
            }
            PriEvent::Proceeding { .. }
            | PriEvent::Progress { .. }
            | PriEvent::ConnectAck { .. }
            | PriEvent::ConfigError(_)
            | PriEvent::Other(_) => {}
        }
    }
}
