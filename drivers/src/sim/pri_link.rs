//! ISDN PRI through real libpri on a simulated span (feature `pri`, a span with
//! `signalling = "isdn_pri"` and `stack = "libpri"`).
//!
//! Two libpri controllers per span: the exchange's (network side) and the card's
//! (user side, [`PriSpan`], the same card-side code a real span uses). Their
//! D-channels are joined here in user space: each frame one writes is delivered to
//! the other after the time it takes on a 64 kbit/s D-channel (125 µs a byte) plus a
//! millisecond, in order, in the simulator's time. So SETUP, CALL PROCEEDING,
//! ALERTING, CONNECT, DISCONNECT, RELEASE and RELEASE COMPLETE really cross, with
//! real numbers, channel identifications and causes, and every frame is kept for
//! [`SimCard::pri_trace`].
//!
//! The world is unchanged: the simulator's callers, outbound rules and timings decide
//! what the exchange does (send a SETUP when a call arrives, answer CALL PROCEEDING at
//! once, ALERTING and CONNECT or a DISCONNECT with the rule's cause after the model's
//! delays, DISCONNECT 16 when the far party hangs up). What the card reports comes
//! only from its own libpri.
//!
//! Time: frames move in simulated time. libpri's own timers (T200, T203, T303,
//! T308...) are started against the wall clock by libpri itself; they run, by the wall
//! clock, whenever the card is polled, and are not reported as deadlines. The joined
//! D-channel loses nothing, so no exchange here waits on them: in virtual time a call
//! completes in simulated milliseconds and wall-clock microseconds, far inside the
//! shortest of them (T200, 1 s); in real time they behave as on a line.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cause::Cause;
use crate::channel::{ChannelAddr, ChannelId};
use crate::config::{CardConfig, Stack};
use crate::error::Result;
use crate::event::{EventKind, Side};
use crate::pri::q931::{self, TracedFrame};
use crate::pri::{CallRef, Node, PriEvent, PriLink, PriSpan, Setup};
use crate::time::Instant;

use super::{Command, Far, SimCard, Step};

/// The PRI spans of a card that run libpri.
#[derive(Debug, Default)]
pub(super) struct PriSims {
    spans: BTreeMap<u8, PriSim>,
    seq: u64,
}

#[derive(Debug)]
struct PriSim {
    card_side: PriSpan,
    exchange: PriLink,
    /// The exchange's calls by B-channel.
    ex_calls: BTreeMap<u8, ExCall>,
    /// What the exchange's libpri reported, in order.
    ex_log: Vec<(Instant, PriEvent)>,
    /// Frames on the wire: (due, order, sender, bytes).
    in_flight: Vec<(Instant, u64, Node, Vec<u8>)>,
    /// When each direction's wire is free again (network → user, user → network).
    busy_until: [Instant; 2],
    trace: Vec<TracedFrame>,
}

#[derive(Debug)]
struct ExCall {
    call: CallRef,
    alerted: bool,
    connected: bool,
    clearing: bool,
}

/// Propagation and processing on the D-channel, besides the bits themselves.
const LINK_DELAY: Duration = Duration::from_millis(1);
/// One byte at 64 kbit/s.
const BYTE_TIME: Duration = Duration::from_micros(125);

impl PriSims {
    pub(super) fn new(card: &CardConfig) -> Result<PriSims> {
        let mut spans = BTreeMap::new();
        for s in card.spans.iter().filter(|s| s.stack == Stack::Libpri) {
            let card_side = PriSpan::new(card.id, s.span, PriLink::new(Node::Cpe)?)?;
            let exchange = PriLink::new(Node::Network)?;
            spans.insert(
                s.span,
                PriSim {
                    card_side,
                    exchange,
                    ex_calls: BTreeMap::new(),
                    ex_log: Vec::new(),
                    in_flight: Vec::new(),
                    busy_until: [Instant::ZERO; 2],
                    trace: Vec::new(),
                },
            );
        }
        Ok(PriSims { spans, seq: 0 })
    }

    /// When the next frame arrives.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.spans.values().flat_map(|s| s.in_flight.iter().map(|f| f.0)).min()
    }
}

fn span_ts(ch: ChannelId) -> Option<(u8, u8)> {
    match ch.addr {
        ChannelAddr::E1 { span, timeslot } => Some((span, timeslot)),
        _ => None,
    }
}

impl SimCard {
    /// The frames that crossed the D-channel of a libpri span, in order.
    pub fn pri_trace(&self, span: u8) -> Option<&[TracedFrame]> {
        self.pri.spans.get(&span).map(|s| s.trace.as_slice())
    }

    /// What the exchange's libpri reported on a libpri span (the network's view).
    pub fn pri_network_log(&self, span: u8) -> Option<&[(Instant, PriEvent)]> {
        self.pri.spans.get(&span).map(|s| s.ex_log.as_slice())
    }

    /// Whether both ends of a libpri span's D-channel are in multiple-frame operation.
    pub fn pri_d_channel_up(&self, span: u8) -> Option<bool> {
        let s = self.pri.spans.get(&span)?;
        let ex_up = s.ex_log.iter().rev().find_map(|(_, e)| match e {
            PriEvent::DChannelUp => Some(true),
            PriEvent::DChannelDown => Some(false),
            _ => None,
        });
        Some(s.card_side.is_up() && ex_up == Some(true))
    }

    /// What libpri printed on each side of a libpri span: (network, user).
    pub fn pri_messages(&self, span: u8) -> Option<(&[String], &[String])> {
        self.pri.spans.get(&span).map(|s| (s.exchange.log(), s.card_side.log()))
    }

    /// The channel is on a span that runs libpri.
    pub(super) fn pri_owns(&self, ch: ChannelId) -> bool {
        span_ts(ch).is_some_and(|(span, _)| self.pri.spans.contains_key(&span))
    }

    /// Move what both controllers wrote onto the wire.
    fn pri_pump(&mut self, span: u8) {
        let now = self.now;
        let Some(s) = self.pri.spans.get_mut(&span) else { return };
        for (node, frames) in
            [(Node::Network, s.exchange.take_frames()), (Node::Cpe, s.card_side.take_frames())]
        {
            let dir = usize::from(node == Node::Cpe);
            for f in frames {
                let start = s.busy_until[dir].max(now);
                let done = start + BYTE_TIME * f.len() as u32;
                s.busy_until[dir] = done;
                self.pri.seq += 1;
                s.in_flight.push((done + LINK_DELAY, self.pri.seq, node, f));
            }
        }
    }

    /// Run libpri's timers that are due by the wall clock, on both ends of every span.
    pub(super) fn pri_timers(&mut self) {
        let spans: Vec<u8> = self.pri.spans.keys().copied().collect();
        for span in spans {
            let s = self.pri.spans.get_mut(&span).expect("listed");
            let card_events = s.card_side.run_timers();
            let ex_events = s.exchange.run_timers();
            for ev in ex_events {
                self.pri_exchange_event(span, ev);
            }
            self.pri_card_events(card_events);
            self.pri_pump(span);
        }
    }

    /// Deliver the first frame due at `at` (the earliest on any span).
    pub(super) fn pri_deliver_next(&mut self, at: Instant) {
        let Some((span, i)) = self.pri.spans.iter().find_map(|(span, s)| {
            s.in_flight
                .iter()
                .enumerate()
                .filter(|(_, f)| f.0 == at)
                .min_by_key(|(_, f)| f.1)
                .map(|(i, _)| (*span, i))
        }) else {
            return;
        };
        self.now = self.now.max(at);
        let s = self.pri.spans.get_mut(&span).expect("found");
        let (_, _, from, bytes) = s.in_flight.remove(i);
        s.trace.push(TracedFrame { at, from, frame: q931::decode(&bytes), bytes: bytes.clone() });
        match from {
            Node::Network => {
                let events = s.card_side.receive(&bytes);
                self.pri_card_events(events);
            }
            Node::Cpe => {
                if let Some(ev) = s.exchange.receive(&bytes) {
                    self.pri_exchange_event(span, ev);
                }
            }
        }
        self.pri_pump(span);
        self.ensure_tick();
    }

    // ---- The exchange (network side) ----

    /// An inbound call arrives on a libpri span: the exchange sends SETUP on the
    /// B-channel the simulator chose, with the caller's numbers.
    pub(super) fn pri_arrive(&mut self, ch: ChannelId) {
        let Some((span, ts)) = span_ts(ch) else { return };
        let (called, calling) = match self.chans[&ch].call.as_ref() {
            Some(c) => (c.dnis.clone(), c.ani.clone()),
            None => return,
        };
        let s = self.pri.spans.get_mut(&span).expect("owned");
        let setup = Setup { timeslot: ts, called: &called, calling: calling.as_deref() };
        match s.exchange.setup(&setup) {
            Ok(call) => {
                s.ex_calls.insert(ts, ExCall { call, alerted: false, connected: false, clearing: false });
            }
            Err(_) => {
                // The exchange could not send it: the call never reaches the card.
                self.stats.inbound_lost += 1;
                self.make_idle(ch);
            }
        }
        self.pri_pump(span);
    }

    /// The far party clears: the exchange sends DISCONNECT, cause 16.
    pub(super) fn pri_far_clears(&mut self, ch: ChannelId) -> bool {
        if !self.pri_owns(ch) {
            return false;
        }
        if let Some(a) = self.chans.get_mut(&ch).and_then(|c| c.audio.as_mut()) {
            a.far_talk_until = None;
        }
        self.pri_exchange_clears(ch, Cause::NORMAL_CLEARING);
        true
    }

    fn pri_exchange_clears(&mut self, ch: ChannelId, cause: Cause) {
        let Some((span, ts)) = span_ts(ch) else { return };
        let s = self.pri.spans.get_mut(&span).expect("owned");
        if let Some(x) = s.ex_calls.get_mut(&ts) {
            if !x.clearing {
                x.clearing = true;
                let call = x.call;
                let _ = s.exchange.hangup(call, cause);
            }
        }
        self.pri_pump(span);
    }

    /// World steps on a libpri span: the ones that are the network's answers to our
    /// call become Q.931 from the exchange; the card's side of them runs when its
    /// libpri reports the message (the step comes back here and passes through).
    pub(super) fn pri_step(&mut self, ch: ChannelId, step: Step) -> Option<Step> {
        if !self.pri_owns(ch) {
            return Some(step);
        }
        let (span, ts) = span_ts(ch).expect("owned channels are E1");
        let s = self.pri.spans.get_mut(&span).expect("owned");
        let Some(x) = s.ex_calls.get_mut(&ts) else {
            // The exchange has no call: only the card's own steps remain.
            return match step {
                Step::OutAlerting | Step::OutAnswer | Step::OutFail(..) => None,
                other => Some(other),
            };
        };
        let call = x.call;
        match step {
            Step::OutAlerting if !x.alerted => {
                x.alerted = true;
                let _ = s.exchange.alerting(call, ts);
            }
            Step::OutAnswer if !x.connected => {
                x.connected = true;
                let _ = s.exchange.answer(call, ts);
            }
            Step::OutFail(cause, _) => {
                self.pri_exchange_clears(ch, cause);
                return None;
            }
            other => return Some(other),
        }
        self.pri_pump(span);
        None
    }

    fn pri_exchange_event(&mut self, span: u8, ev: PriEvent) {
        let now = self.now;
        let s = self.pri.spans.get_mut(&span).expect("listed");
        s.ex_log.push((now, ev.clone()));
        let ts_of =
            |s: &PriSim, call: CallRef| s.ex_calls.iter().find_map(|(ts, x)| (x.call == call).then_some(*ts));
        match ev {
            PriEvent::Ring { call, channel, .. } => {
                // Our SETUP reached the network: CALL PROCEEDING at once, then the
                // outbound rule's answer after the model's delays.
                let Some(ts) = channel.filter(|ts| !s.ex_calls.contains_key(ts)) else {
                    let _ = s.exchange.hangup(call, Cause::REQUESTED_CHANNEL_NOT_AVAILABLE);
                    return;
                };
                let _ = s.exchange.proceeding(call, ts);
                s.ex_calls.insert(ts, ExCall { call, alerted: false, connected: false, clearing: false });
                let ch = ChannelId::e1(self.id, span, ts);
                let (outcome, called, calling) = match self.chans.get(&ch).and_then(|c| c.call.as_ref()) {
                    Some(c) => match &c.far {
                        Far::Callee { outcome, .. } => (outcome.clone(), c.dnis.clone(), c.ani.clone()),
                        Far::Caller(_) => return,
                    },
                    None => return,
                };
                let sig = crate::config::Signalling::IsdnPri;
                match outcome {
                    super::Outcome::Answer { .. } | super::Outcome::NoAnswer => {
                        let d =
                            super::timing::outbound_progress(sig, &called, calling.as_deref(), &mut self.rng);
                        self.after(d, ch, Step::OutAlerting);
                    }
                    other => {
                        let d =
                            super::timing::outbound_failure(sig, &called, calling.as_deref(), &mut self.rng);
                        let cause = super::timing::failure_cause(sig, &other);
                        self.after(d, ch, Step::OutFail(cause, Side::Remote));
                    }
                }
            }
            PriEvent::HangupReq { call, cause, .. } => {
                // The card clears: RELEASE.
                if let Some(x) = ts_of(s, call).and_then(|ts| s.ex_calls.get_mut(&ts)) {
                    x.clearing = true;
                }
                let _ = s.exchange.hangup(call, cause);
            }
            PriEvent::Hangup { call, cause, .. } | PriEvent::HangupAck { call, cause, .. } => {
                // As on the card side: only a RELEASE waits for our hangup.
                if matches!(ev, PriEvent::Hangup { .. }) {
                    let _ = s.exchange.hangup(call, cause);
                }
                if let Some(ts) = ts_of(s, call) {
                    s.ex_calls.remove(&ts);
                }
            }
            _ => {}
        }
        self.pri_pump(span);
    }

    // ---- The card (user side) ----

    fn pri_card_events(&mut self, events: Vec<EventKind>) {
        for ev in events {
            match ev {
                EventKind::Offered { ch, ani, dnis, .. } => {
                    let Some(call) = self.chans.get_mut(&ch).and_then(|c| c.call.as_mut()) else {
                        // Nobody of ours behind it: refuse.
                        if let Some((span, ts)) = span_ts(ch) {
                            if let Some(s) = self.pri.spans.get_mut(&span) {
                                let _ = s.card_side.release(ts, Cause::TEMPORARY_FAILURE);
                            }
                            self.pri_pump(span);
                        }
                        continue;
                    };
                    // What the card learnt from the SETUP, not what the world meant.
                    call.ani = ani;
                    call.dnis = dnis;
                    self.offer(ch);
                }
                EventKind::Alerting { ch } => self.step(ch, Step::OutAlerting),
                EventKind::Answered { ch } => {
                    let inbound =
                        self.chans.get(&ch).and_then(|c| c.call.as_ref()).is_some_and(|c| c.inbound);
                    self.step(ch, if inbound { Step::AnswerTakesEffect } else { Step::OutAnswer });
                }
                EventKind::Released { ch, cause, by } => {
                    let Some(c) = self.chans.get(&ch) else { continue };
                    let seen = c.engine_sees_call();
                    let failed_out = c.call.as_ref().is_some_and(|x| !x.inbound && !x.answered);
                    let busy = c.call.is_some() || c.state == crate::channel::ChannelState::Releasing;
                    if failed_out {
                        *self.stats.outbound_failed.entry(cause.0).or_default() += 1;
                    }
                    if seen {
                        self.emit(EventKind::Released { ch, cause, by });
                    }
                    if busy {
                        self.make_idle(ch);
                    }
                }
                _ => {}
            }
        }
    }

    /// Call control commands on a libpri channel go to the card's libpri; anything
    /// else comes back for the simulator.
    pub(super) fn pri_command(&mut self, cmd: Command) -> std::result::Result<Result<()>, Command> {
        let ch = match &cmd {
            Command::Accept { ch }
            | Command::Answer { ch }
            | Command::Reject { ch, .. }
            | Command::Release { ch, .. } => *ch,
            _ => return Err(cmd),
        };
        if !self.pri_owns(ch) {
            return Err(cmd);
        }
        let (span, ts) = span_ts(ch).expect("owned");
        let r = match cmd {
            Command::Accept { ch } => self.pri_accept(ch, span, ts),
            Command::Answer { ch } => self.pri_answer(ch, span, ts),
            Command::Reject { ch, cause } | Command::Release { ch, cause } => {
                self.pri_release(ch, span, ts, cause)
            }
            _ => unreachable!("filtered above"),
        };
        self.pri_pump(span);
        Ok(r)
    }

    fn pri_accept(&mut self, ch: ChannelId, span: u8, ts: u8) -> Result<()> {
        let c = self.chan(ch)?;
        if c.state != crate::channel::ChannelState::Offered || !c.call.as_ref().is_some_and(|x| x.offered) {
            return Err(super::state_err(ch, c.state, "accept"));
        }
        self.pri.spans.get_mut(&span).expect("owned").card_side.accept(ts)?;
        let audio = self.audio.is_some();
        let c = self.chan(ch)?;
        c.state = crate::channel::ChannelState::Alerting;
        if let Some(call) = c.call.as_mut() {
            call.alerting = true;
        }
        if !audio {
            c.heard.tone(crate::signal::Tone::Ringback);
        }
        Ok(())
    }

    fn pri_answer(&mut self, ch: ChannelId, span: u8, ts: u8) -> Result<()> {
        let c = self.chan(ch)?;
        let ok =
            matches!(c.state, crate::channel::ChannelState::Offered | crate::channel::ChannelState::Alerting)
                && c.call.as_ref().is_some_and(|x| x.offered && x.inbound && !x.answered);
        if !ok {
            return Err(super::state_err(ch, c.state, "answer"));
        }
        self.pri.spans.get_mut(&span).expect("owned").card_side.answer(ts)?;
        // As in the model: a new generation cancels the caller's patience.
        let c = self.chan(ch)?;
        c.gen += 1;
        c.state = crate::channel::ChannelState::Alerting;
        Ok(())
    }

    fn pri_release(&mut self, ch: ChannelId, span: u8, ts: u8, cause: Cause) -> Result<()> {
        let c = self.chan(ch)?;
        if !c.engine_sees_call() || c.state == crate::channel::ChannelState::Releasing {
            return Err(super::state_err(ch, c.state, "release"));
        }
        self.pri.spans.get_mut(&span).expect("owned").card_side.release(ts, cause)?;
        let c = self.chan(ch)?;
        c.gen += 1;
        c.state = crate::channel::ChannelState::Releasing;
        if let Some(a) = c.audio.as_mut() {
            a.far_talk_until = None;
        }
        Ok(())
    }

    /// PlaceCall on a libpri channel, after the simulator has drawn the outcome: the
    /// card sends SETUP. On failure the channel is as it was.
    pub(super) fn pri_place_call(
        &mut self,
        ch: ChannelId,
        called: &str,
        calling: Option<&str>,
    ) -> Result<()> {
        let (span, ts) = span_ts(ch).expect("owned");
        let r = self.pri.spans.get_mut(&span).expect("owned").card_side.place_call(ts, called, calling);
        if r.is_err() {
            self.stats.outbound_placed -= 1;
            let c = self.chans.get_mut(&ch).expect("ours");
            c.gen += 1;
            c.call = None;
            c.state = c.idle_state();
        }
        self.pri_pump(span);
        r
    }

    /// Layer 1 is lost on a span (an alarm): both ends forget their calls.
    pub(super) fn pri_layer1_lost(&mut self, span: u8) {
        if let Some(s) = self.pri.spans.get_mut(&span) {
            s.card_side.forget_calls();
            for (_, x) in std::mem::take(&mut s.ex_calls) {
                s.exchange.destroy_call(x.call);
            }
        }
    }
}
